/*  orr_rpc: call a method of a service over the bus: wraps the body in a Call, unwraps the
 *  Result (proto/orrery/rpc.proto), and turns bus failures into HTTP-like statuses
 *  (503 when no worker answered, 429 when the service is busy) so every caller handles
 *  one kind of outcome.
 */
#ifndef ORR_RPC_H
#define ORR_RPC_H

#include "orr_bus_client.h"

#include <protobuf-c/protobuf-c.h>

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int status;
    char error[256];
    uint8_t *body;            /* malloc'd reply body (may be NULL); orr_rpc_reply_clear frees */
    size_t len;
} orr_rpc_reply_t;

/* Returns reply->status (200 on success). request_id NULL = fresh. */
int orr_rpc_call (orr_bus_client_t *client, const char *service, const char *method, const char *request_id,
                  const void *body, size_t len, orr_rpc_reply_t *reply);
void orr_rpc_reply_clear (orr_rpc_reply_t *reply);

/* orr_rpc_call with a protobuf message as body. Returns the status and fills message on
 * failure (the service's error text, else "<service> service unavailable"); on success,
 * *reply (if not NULL) is the unpacked reply of type reply_desc (free with
 * protobuf_c_message_free_unpacked), or 502 when the body is not one. */
int orr_rpc_call_msg (orr_bus_client_t *client, const char *service, const char *method,
                      const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *reply_desc,
                      ProtobufCMessage **reply, char *message, size_t msglen);

#endif
