/*  orr_rpc: Call/Result over orr_bus_client. See orr_rpc.h. Kept apart from the client
 *  so the bus itself stays payload-agnostic (the broker and the bus tests never need
 *  protobuf).
 */
#include "orr_rpc.h"
#include "orr_util.h"
#include "orrery/rpc.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
orr_rpc_call (orr_bus_client_t *client, const char *service, const char *method, const char *request_id,
              const void *body, size_t len, orr_rpc_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    Orrery__Call call = ORRERY__CALL__INIT;
    call.method = (char *) method;
    call.body.data = (uint8_t *) body;
    call.body.len = len;
    size_t n = orrery__call__get_packed_size (&call);
    uint8_t *buf = orr_zalloc (n);
    orrery__call__pack (&call, buf);
    char *raw = NULL;
    size_t raw_len = 0;
    orr_bus_status_t st = orr_bus_client_request (client, service, request_id, buf, n, &raw, &raw_len, reply->error,
                                                  sizeof reply->error);
    free (buf);
    if (st == ORR_BUS_OK) {
        Orrery__Result *res = orrery__result__unpack (NULL, raw_len, (uint8_t *) raw);
        if (!res) {
            reply->status = 502;
            snprintf (reply->error, sizeof reply->error, "service %s sent a reply that is not an orrery.Result", service);
        }
        else {
            reply->status = res->status ? res->status : 200;
            snprintf (reply->error, sizeof reply->error, "%s", res->error ? res->error : "");
            if (res->body.len) {
                reply->body = orr_zalloc (res->body.len);
                memcpy (reply->body, res->body.data, res->body.len);
                reply->len = res->body.len;
            }
            orrery__result__free_unpacked (res, NULL);
        }
    }
    else if (st == ORR_BUS_REFUSED)
        reply->status = strstr (reply->error, "busy") ? 429 : 503;
    else if (st == ORR_BUS_INTERRUPTED)
        reply->status = 503;
    else
        reply->status = 504;
    free (raw);
    return reply->status;
}

void
orr_rpc_reply_clear (orr_rpc_reply_t *reply)
{
    free (reply->body);
    memset (reply, 0, sizeof *reply);
}

int
orr_rpc_call_msg (orr_bus_client_t *client, const char *service, const char *method, const ProtobufCMessage *msg,
                  const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, char *message,
                  size_t msglen)
{
    size_t n = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = orr_zalloc (n + 1);
    protobuf_c_message_pack (msg, buf);
    orr_rpc_reply_t r;
    int status = orr_rpc_call (client, service, method, NULL, buf, n, &r);
    free (buf);
    if (reply)
        *reply = NULL;
    if (status != 200 && r.error[0])
        snprintf (message, msglen, "%s", r.error);
    else if (status != 200)
        snprintf (message, msglen, "%s service unavailable", service);
    else if (reply && reply_desc) {
        *reply = protobuf_c_message_unpack (reply_desc, NULL, r.len, r.body);
        if (!*reply) {
            status = 502;
            snprintf (message, msglen, "bad reply from the %s service", service);
        }
    }
    orr_rpc_reply_clear (&r);
    return status;
}
