/*  orr_hubservices: parsed once at start-up into an array; lookups are linear (services
 *  number in the tens). The raw token never outlives parsing: only its hash is kept.
 */
#include "orr_hubservices.h"
#include "orr_crypto.h"
#include "orr_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    orr_hubservice_t pub;
    char *name, *url, *client_id, *redirect_uri;
    char token_hash[ORR_SHA256_HEX_LEN + 1];
    bool display;
    json_t *info;
} service_t;

struct orr_hubservices_t {
    service_t *items;
    size_t n;
};

static const char *
s_str (const json_t *obj, const char *key, const char *def)
{
    const char *v = json_string_value (json_object_get (obj, key));
    return v ? v : def;
}

orr_hubservices_t *
orr_hubservices_new (const char *config_value, char *err, size_t errlen)
{
    orr_hubservices_t *self = orr_zalloc (sizeof *self);
    if (!config_value || !*config_value)
        return self;
    json_error_t jerr;
    const char *p = config_value;
    while (*p == ' ' || *p == '\n' || *p == '\t')
        p++;
    json_t *list = *p == '[' ? json_loads (p, 0, &jerr) : json_load_file (p, 0, &jerr);
    if (!json_is_array (list)) {
        snprintf (err, errlen, "services: %s", list ? "must be a JSON list" : jerr.text);
        json_decref (list);
        orr_hubservices_destroy (&self);
        return NULL;
    }
    self->items = orr_zalloc ((json_array_size (list) + 1) * sizeof (service_t));
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        const char *name = s_str (e, "name", NULL);
        const char *token = s_str (e, "api_token", "");
        if (!name || !*name || strchr (name, '/') || orr_hubservices_find (self, name)) {
            snprintf (err, errlen, "services entry %zu: needs a unique name without '/'", i);
            break;
        }
        if (*token && strlen (token) < 8) {
            snprintf (err, errlen, "service %s: api_token must be at least 8 characters", name);
            break;
        }
        service_t *s = &self->items[self->n++];
        s->name = orr_strdup (name);
        s->url = orr_strdup (s_str (e, "url", ""));
        char *def_client = orr_sprintf ("service-%s", name);
        s->client_id = orr_strdup (s_str (e, "oauth_client_id", def_client));
        free (def_client);
        s->redirect_uri = orr_strdup (s_str (e, "oauth_redirect_uri", ""));
        if (*token)
            orr_sha256_hex (token, strlen (token), s->token_hash);
        s->display = !json_is_false (json_object_get (e, "display"));
        s->info = json_is_object (json_object_get (e, "info")) ? json_incref (json_object_get (e, "info")) : json_object ();
        s->pub = (orr_hubservice_t) {
            .name = s->name,
            .admin = json_is_true (json_object_get (e, "admin")),
            .url = s->url,
            .oauth_client_id = s->client_id,
            .oauth_redirect_uri = s->redirect_uri,
            .oauth_no_confirm = json_is_true (json_object_get (e, "oauth_no_confirm")),
            .token_hash = s->token_hash,
        };
    }
    bool failed = i < json_array_size (list);
    json_decref (list);
    if (failed)
        orr_hubservices_destroy (&self);
    return self;
}

void
orr_hubservices_destroy (orr_hubservices_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_hubservices_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        service_t *s = &self->items[i];
        free (s->name);
        free (s->url);
        free (s->client_id);
        free (s->redirect_uri);
        json_decref (s->info);
    }
    free (self->items);
    free (self);
    *self_p = NULL;
}

size_t
orr_hubservices_count (const orr_hubservices_t *self)
{
    return self->n;
}

const orr_hubservice_t *
orr_hubservices_at (const orr_hubservices_t *self, size_t i)
{
    return i < self->n ? &self->items[i].pub : NULL;
}

const orr_hubservice_t *
orr_hubservices_find (const orr_hubservices_t *self, const char *name)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp (self->items[i].name, name) == 0)
            return &self->items[i].pub;
    return NULL;
}

const orr_hubservice_t *
orr_hubservices_by_token_hash (const orr_hubservices_t *self, const char *token_hash)
{
    const orr_hubservice_t *found = NULL;
    for (size_t i = 0; i < self->n; i++)
        if (self->items[i].token_hash[0] && orr_secret_equal (self->items[i].token_hash, token_hash))
            found = &self->items[i].pub;
    return found;
}

const orr_hubservice_t *
orr_hubservices_by_client (const orr_hubservices_t *self, const char *client_id)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp (self->items[i].client_id, client_id) == 0)
            return &self->items[i].pub;
    return NULL;
}

json_t *
orr_hubservices_model (const orr_hubservices_t *self, const orr_hubservice_t *svc, const orr_roles_t *roles)
{
    const service_t *s = (const service_t *) svc;   /* pub is the first member */
    char *prefix = *s->url ? orr_sprintf ("/services/%s/", s->name) : orr_strdup ("");
    json_t *m = json_pack ("{s:s, s:s, s:b, s:o, s:s, s:s, s:[], s:i, s:O, s:b}", "kind", "service", "name", s->name,
                           "admin", svc->admin, "roles", orr_roles_of_service (roles, s->name, svc->admin), "url",
                           s->url, "prefix", prefix, "command", "pid", 0, "info", s->info, "display", s->display);
    free (prefix);
    return m;
}
