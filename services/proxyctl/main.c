/*  orrery-proxyctl: keeps every configurable-http-proxy replica's route table equal to
 *  the one Orrery wants.
 *
 *  This revision keeps the hub route: "/" -> the gateway(s), marked "jupyterhub": true,
 *  on each CHP in ORRERY_PROXY_API_URLS, checked every ORRERY_PROXY_SYNC_MS, so a CHP
 *  that restarts empty is refilled within one interval. User routes (kept in Redis as
 *  the source of truth) join with the servers issue.
 */
#include "orr_http.h"
#include "orr_log.h"
#include "orr_service.h"
#include "orr_util.h"

#include <jansson.h>
#include <string.h>

static const orr_setting_t s_settings[] = {
    { "PROXY_API_URLS", "http://127.0.0.1:8001", "comma-separated CHP API base URLs (one per proxy replica)" },
    { "PROXY_AUTH_TOKEN", NULL, "CHP's API token (CONFIGPROXY_AUTH_TOKEN)" },
    { "HUB_URL", "http://127.0.0.1:8081", "where the proxy sends /hub/ and everything unrouted: the gateway" },
    { "PROXY_SYNC_MS", "1000", "how often every proxy's table is compared with the wanted one" },
    { NULL, NULL, NULL },
};

typedef struct {
    char **apis;
    char *auth_header;
    char *hub_url;
    orr_http_t *http;
    bool *in_sync;
    size_t napis;
} proxyctl_t;

/* Makes sure proxy `api` routes "/" to the hub; logs only on changes of state. */
static void
s_sync_one (proxyctl_t *self, size_t i)
{
    const char *headers[] = { self->auth_header, NULL };
    char url[1024], err[256];
    long status = 0;
    snprintf (url, sizeof url, "%s/api/routes", self->apis[i]);
    json_t *routes = orr_http_json (self->http, "GET", url, headers, NULL, 2000, &status, err, sizeof err);
    json_t *hub = routes ? json_object_get (routes, "/") : NULL;
    const char *target = hub ? json_string_value (json_object_get (hub, "target")) : NULL;
    bool ok = target && strcmp (target, self->hub_url) == 0;
    if (!routes) {
        if (self->in_sync[i])
            orr_warn ("proxy %s unreachable: %s", self->apis[i], err);
        self->in_sync[i] = false;
    }
    else if (!ok) {
        json_t *body = json_pack ("{s:s, s:b}", "target", self->hub_url, "jupyterhub", 1);
        snprintf (url, sizeof url, "%s/api/routes/", self->apis[i]);
        json_t *r = orr_http_json (self->http, "POST", url, headers, body, 2000, &status, err, sizeof err);
        json_decref (body);
        json_decref (r);
        if (status == 201 || status == 200) {
            orr_info ("proxy %s: hub route / -> %s added", self->apis[i], self->hub_url);
            self->in_sync[i] = true;
        }
        else
            orr_warn ("proxy %s refused the hub route: HTTP %ld %s", self->apis[i], status, err);
    }
    else
        self->in_sync[i] = true;
    json_decref (routes);
}

static void
s_sync (void *ctx)
{
    proxyctl_t *self = ctx;
    for (size_t i = 0; i < self->napis; i++)
        s_sync_one (self, i);
}

static int
s_setup (orr_service_t *svc, orr_config_t *config, void **state)
{
    proxyctl_t *self = orr_zalloc (sizeof *self);
    *state = self;
    self->apis = orr_split (orr_config_get (config, "PROXY_API_URLS"), ',', &self->napis);
    const char *token = orr_config_get (config, "PROXY_AUTH_TOKEN");
    self->auth_header = orr_sprintf ("Authorization: token %s", token ? token : "");
    self->hub_url = orr_strdup (orr_config_get (config, "HUB_URL"));
    self->http = orr_http_new ();
    self->in_sync = orr_zalloc ((self->napis + 1) * sizeof (bool));
    long every = orr_config_int (config, "PROXY_SYNC_MS");
    if (self->napis == 0 || every < 10) {
        orr_error ("ORRERY_PROXY_API_URLS must name at least one proxy and ORRERY_PROXY_SYNC_MS be >= 10");
        return 1;
    }
    s_sync (self);
    orr_service_every (svc, (int) every, s_sync, self);
    return 0;
}

static void
s_teardown (void *state)
{
    proxyctl_t *self = state;
    if (!self)
        return;
    orr_strv_free (&self->apis);
    free (self->auth_header);
    free (self->hub_url);
    free (self->in_sync);
    orr_http_destroy (&self->http);
    free (self);
}

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "proxyctl", "Orrery proxyctl: keeps every proxy's routes.", s_settings,
                             s_setup, s_teardown);
}
