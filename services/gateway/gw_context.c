/*  gw_context: what every handler needs from its thread and from the request's origin --
 *  the thread's own Redis store and bus client, calls to other services (auth, the
 *  scheduler) over the bus, and URLs.
 *
 *  MHD's pool threads live as long as the daemon, so the per-thread bus client is made on
 *  first use and freed by a pthread key destructor when the thread ends.
 */
#include "gw.h"
#include "gw_reply_cache.h"
#include "orr_log.h"
#include "orr_rpc.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

static pthread_key_t s_bus_key;
static pthread_once_t s_bus_once = PTHREAD_ONCE_INIT;

static void
s_bus_free (void *p)
{
    orr_bus_client_t *client = p;
    orr_bus_client_destroy (&client);
}

static void
s_bus_key_make (void)
{
    pthread_key_create (&s_bus_key, s_bus_free);
}

orr_bus_client_t *
gw_bus (gw_t *gw)
{
    pthread_once (&s_bus_once, s_bus_key_make);
    orr_bus_client_t *client = pthread_getspecific (s_bus_key);
    if (!client) {
        client = orr_bus_client_new (gw->bus);
        pthread_setspecific (s_bus_key, client);
    }
    return client;
}

void
gw_forget_cached (gw_t *gw)
{
    gw_cache_flush (gw->cache);
    gw_reply_cache_invalidate (gw->replies);
}

orr_store_t *
gw_store (gw_t *gw)
{
    return orr_store_thread (gw->redis_url);
}

bool
gw_is_member (void *ctx, const char *user, const char *group)
{
    return orr_identity_is_member (gw_store (ctx), user, group);
}

int
gw_call (gw_t *gw, const char *service, const char *method, const ProtobufCMessage *msg,
         const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, char *message, size_t msglen)
{
    return orr_rpc_call_msg (gw_bus (gw), service, method, msg, reply_desc, reply, message, msglen);
}

int
gw_call_auth (gw_t *gw, const char *method, const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *reply_desc,
              ProtobufCMessage **reply, char *message, size_t msglen)
{
    return gw_call (gw, "auth", method, msg, reply_desc, reply, message, msglen);
}

char *
gw_url (gw_t *gw, const char *rel)
{
    return orr_sprintf ("%s%s", gw->base_url, rel[0] == '/' ? rel + 1 : rel);
}

char *
gw_absolute_url (gw_t *gw, const gw_request_t *req, const char *path_and_query)
{
    const char *proto = gw_header (req, "X-Forwarded-Proto");
    const char *host = gw_header (req, "X-Forwarded-Host");
    if (!host)
        host = gw_header (req, "Host");
    char scheme[16];
    /* a proxy chain lists several: the first is what the client used */
    snprintf (scheme, sizeof scheme, "%s", proto && *proto ? proto : "http");
    char *comma = strchr (scheme, ',');
    if (comma)
        *comma = '\0';
    char *rel = gw_url (gw, path_and_query);
    char *url = orr_sprintf ("%s://%s%s", scheme, host ? host : "127.0.0.1", rel);
    free (rel);
    return url;
}
