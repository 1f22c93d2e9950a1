/*  orr_oauth: one lookup over the two homes of OAuth clients (configuration, then Redis). */
#include "orr_oauth.h"
#include "orr_keys.h"
#include "orr_util.h"

#include <string.h>

static char *
s_field (const redisReply *h, const char *f)
{
    return orr_strdup (orr_reply_field (h, f, ""));
}

static json_t *
s_list (const char *text)
{
    json_t *v = json_loads (text, 0, NULL);
    if (!json_is_array (v)) {
        json_decref (v);
        v = json_array ();
    }
    return v;
}

int
orr_oauth_client_load (orr_store_t *store, const orr_hubservices_t *services, const char *client_id,
                       orr_oauth_client_t *out)
{
    memset (out, 0, sizeof *out);
    const orr_hubservice_t *svc = services ? orr_hubservices_by_client (services, client_id) : NULL;
    if (svc) {
        out->client_id = orr_strdup (svc->oauth_client_id);
        out->secret_hash = orr_strdup (svc->token_hash);
        out->redirect_uri = orr_strdup (svc->oauth_redirect_uri);
        out->description = orr_sprintf ("Service %s", svc->name);
        out->owner = orr_strdup ("");
        out->access_scopes = json_pack ("[s+]", "access:services!service=", svc->name);
        out->allowed_scopes = json_array ();
        out->no_confirm = svc->oauth_no_confirm;
        return *svc->oauth_redirect_uri ? 1 : 0;
    }
    char *key = orr_key_oauth_client (client_id);
    redisReply *h = orr_store_command (store, "HGETALL %s", key);
    free (key);
    if (!h)
        return -1;
    int found = h->type == REDIS_REPLY_ARRAY && h->elements > 0;
    if (found) {
        out->client_id = orr_strdup (client_id);
        out->secret_hash = s_field (h, "secret_hash");
        out->redirect_uri = s_field (h, "redirect_uri");
        out->description = s_field (h, "description");
        out->owner = s_field (h, "owner");
        char *a = s_field (h, "access_scopes"), *b = s_field (h, "allowed_scopes");
        out->access_scopes = s_list (a);
        out->allowed_scopes = s_list (b);
        free (a);
        free (b);
    }
    freeReplyObject (h);
    return found;
}

void
orr_oauth_client_clear (orr_oauth_client_t *c)
{
    free (c->client_id);
    free (c->secret_hash);
    free (c->redirect_uri);
    free (c->description);
    free (c->owner);
    json_decref (c->access_scopes);
    json_decref (c->allowed_scopes);
    memset (c, 0, sizeof *c);
}
