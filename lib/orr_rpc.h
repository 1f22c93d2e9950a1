/*  orr_rpc: call a method of a service over the bus: wraps the body in a Call, unwraps the
 *  Result (proto/orrery/rpc.proto), and turns bus failures into HTTP-like statuses
 *  (503 when no worker answered, 429 when the service is busy) so every caller handles
 *  one kind of outcome.
 */
#ifndef ORR_RPC_H
#define ORR_RPC_H

#include "orr_bus_client.h"

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

#endif
