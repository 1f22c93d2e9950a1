/*  up: `orrery up` runs the whole stack on one machine, supervised.
 *
 *  What runs, in start order (stopped in reverse): a private redis-server (AOF on, data
 *  in <state>/redis), the bus broker(s), auth, scheduler, spawner, proxyctl, the
 *  gateway(s) and configurable-http-proxy on the public port. Every other port is chosen
 *  free below 32768 unless configured; the addresses go to the children as ORRERY_*
 *  variables and to <state>/orrery.env, which `orrery events` and the other commands read.
 *  A lock file keeps a second `orrery up` off the same state directory; different state
 *  directories and ports run side by side.
 */
#include "cli.h"
#include "supervisor.h"
#include "orr_config.h"
#include "orr_events.h"
#include "orr_http.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define UP_MAX_REPLICAS 16
#define UP_HEALTH_TIMEOUT_MS 30000
#define UP_STOP_GRACE_MS 10000

static const orr_setting_t s_up_settings[] = {
    { "PORT", "8000", "the proxy's public port (what users open)" },
    { "IP", "127.0.0.1", "the proxy's public address" },
    { "BASE_URL", "/", "URL prefix of everything Orrery serves; every service reads the same ORRERY_BASE_URL" },
    { "STATE_DIR", "./.orrery", "Redis data, logs and per-user directories" },
    { "REPLICAS", "", "replica counts, e.g. gateway=3,spawner=2 (services: bus auth scheduler spawner proxyctl gateway)" },
    { "REDIS_SERVER", "redis-server", "the redis-server program" },
    { "CHP", "configurable-http-proxy", "the configurable-http-proxy program" },
    { "NODE_PATH", "/usr/share/nodejs", "NODE_PATH for Debian's configurable-http-proxy" },
    { "REDIS_PORT", "0", "Redis port (0 = a free one)" },
    { "BUS_PORT", "0", "first broker's port; broker k uses BUS_PORT+3k..+2 (0 = free ones)" },
    { "GATEWAY_PORT", "0", "gateway port shared by its replicas (0 = a free one)" },
    { "PROXY_API_PORT", "0", "CHP's REST API port (0 = a free one)" },
    { NULL, NULL, NULL },
};

/* stopped in reverse order: the spawner stops servers (STOP_SERVERS_ON_EXIT) while proxyctl,
 * the scheduler and auth still answer */
static const char *s_services[] = { "bus", "auth", "scheduler", "proxyctl", "spawner", "gateway" };
#define N_SERVICES 6

static int
s_parse_replicas (const char *spec, int counts[N_SERVICES])
{
    for (int i = 0; i < N_SERVICES; i++)
        counts[i] = 1;
    size_t n;
    char **items = orr_split (spec, ',', &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr (items[i], '=');
        long v;
        int k = -1;
        if (eq) {
            *eq = '\0';
            for (int s = 0; s < N_SERVICES; s++)
                if (strcmp (items[i], s_services[s]) == 0)
                    k = s;
        }
        if (!eq || k < 0 || orr_parse_long (eq + 1, &v) != 0 || v < 1 || v > UP_MAX_REPLICAS) {
            fprintf (stderr, "orrery up: bad --replicas item '%s': expected SERVICE=N with N 1..%d and SERVICE one of bus auth scheduler spawner proxyctl gateway\n",
                     items[i], UP_MAX_REPLICAS);
            rc = -1;
            continue;
        }
        counts[k] = (int) v;
    }
    orr_strv_free (&items);
    return rc;
}

/* A free port p (and p+1, p+2 when `three`), or the configured one. */
static int
s_port (orr_config_t *config, const char *name, bool three)
{
    long p = orr_config_int (config, name);
    if (p > 0)
        return (int) p;
    for (int i = 0; i < 200; i++) {
        int q = orr_free_port ();
        if (q < 0)
            return -1;
        if (!three)
            return q;
        if (q + 2 < 32768 && orr_port_free (q + 1) && orr_port_free (q + 2))
            return q;
    }
    return -1;
}

static int
s_lock_state_dir (const char *dir)
{
    char *path = orr_sprintf ("%s/lock", dir);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free (path);
    if (fd < 0 || flock (fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf (stderr, "orrery up: another `orrery up` is using %s\n", dir);
        if (fd >= 0)
            close (fd);
        return -1;
    }
    return fd;
}

static int
s_wait_healthy (const char *url, supervisor_t *sup)
{
    orr_http_t *http = orr_http_new ();
    orr_http_response_t resp = { 0 };
    int64_t deadline = orr_mono_ms () + UP_HEALTH_TIMEOUT_MS;
    int rc = -1;
    while (orr_mono_ms () < deadline && !orr_signal_stop_requested ()) {
        supervisor_tend (sup);
        if (orr_http_request (http, "GET", url, NULL, NULL, 0, 1000, &resp) == 0 && resp.status == 200) {
            rc = 0;
            break;
        }
        orr_sleep_ms (50);
    }
    orr_http_response_clear (&resp);
    orr_http_destroy (&http);
    return rc;
}

int
cli_up (int argc, char **argv)
{
    orr_config_t *config = orr_config_new ("orrery up", "Runs the whole Orrery stack on this machine, supervised.", s_up_settings);
    int rc = orr_config_load (config, argc, argv);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    orr_config_apply_logging (config, "up");
    int counts[N_SERVICES];
    rc = 2;
    int lock_fd = -1;
    supervisor_t *sup = NULL;
    char *state = NULL, *logs = NULL, *redis_dir = NULL, *bus = NULL, *token = NULL, *base_url = NULL;
    if (s_parse_replicas (orr_config_get (config, "REPLICAS"), counts) != 0)
        goto done;
    long public_port = orr_config_int (config, "PORT");
    if (public_port < 1 || public_port > 65535) {
        fprintf (stderr, "orrery up: --port must be 1..65535\n");
        goto done;
    }
    const char *ip = orr_config_get (config, "IP");
    /* "/", or "/prefix/" as the services normalise it; every URL we print or probe has it */
    const char *b = orr_config_get (config, "BASE_URL");
    size_t blen = strlen (b);
    if (blen > 200 || strspn (b, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") != blen) {
        fprintf (stderr, "orrery up: --base-url must be a URL path of letters, digits, '-', '.', '_', '~' and '/'\n");
        goto done;
    }
    base_url = orr_sprintf ("%s%s%s", b[0] == '/' ? "" : "/", b, blen && b[blen - 1] == '/' ? "" : "/");
    state = cli_absolute (orr_config_get (config, "STATE_DIR"));
    logs = orr_sprintf ("%s/logs", state);
    redis_dir = orr_sprintf ("%s/redis", state);
    if (cli_mkdirs (state) != 0 || cli_mkdirs (logs) != 0 || cli_mkdirs (redis_dir) != 0) {
        fprintf (stderr, "orrery up: cannot create %s: %s\n", state, strerror (errno));
        goto done;
    }
    if ((lock_fd = s_lock_state_dir (state)) < 0)
        goto done;
    if (!orr_port_free ((int) public_port)) {
        fprintf (stderr, "orrery up: port %ld is in use (choose another with --port)\n", public_port);
        goto done;
    }

    int redis_port = s_port (config, "REDIS_PORT", false);
    int gateway_port = s_port (config, "GATEWAY_PORT", false);
    int api_port = s_port (config, "PROXY_API_PORT", false);
    int bus_base = (int) orr_config_int (config, "BUS_PORT");
    if (redis_port < 0 || gateway_port < 0 || api_port < 0) {
        fprintf (stderr, "orrery up: no free port found\n");
        goto done;
    }
    /* broker k: three ports each */
    size_t cap = 64 * (size_t) counts[0];
    bus = orr_zalloc (cap);
    for (int k = 0; k < counts[0]; k++) {
        int p = bus_base > 0 ? bus_base + 3 * k : s_port (config, "BUS_PORT", true);
        if (p < 0) {
            fprintf (stderr, "orrery up: no free ports for the bus\n");
            goto done;
        }
        snprintf (bus + strlen (bus), cap - strlen (bus), "%stcp://127.0.0.1:%d", k ? "," : "", p);
    }
    token = orr_zalloc (65);
    orr_random_hex (token, 32);

    char env_redis[96], env_bus[1100], env_state[PATH_MAX + 32], env_gwport[48], env_proxy[96], env_token[128],
        env_hub[96], env_public[400], env_public_ip[96];
    snprintf (env_redis, sizeof env_redis, "ORRERY_REDIS_URL=redis://127.0.0.1:%d/0", redis_port);
    snprintf (env_bus, sizeof env_bus, "ORRERY_BUS=%s", bus);
    snprintf (env_state, sizeof env_state, "ORRERY_STATE_DIR=%s", state);
    snprintf (env_gwport, sizeof env_gwport, "ORRERY_GATEWAY_PORT=%d", gateway_port);
    snprintf (env_proxy, sizeof env_proxy, "ORRERY_PROXY_API_URLS=http://127.0.0.1:%d", api_port);
    snprintf (env_token, sizeof env_token, "ORRERY_PROXY_AUTH_TOKEN=%s", token);
    snprintf (env_hub, sizeof env_hub, "ORRERY_HUB_URL=http://127.0.0.1:%d", gateway_port);
    snprintf (env_public, sizeof env_public, "ORRERY_PUBLIC_URL=http://%s:%ld%s", ip, public_port, base_url);
    snprintf (env_public_ip, sizeof env_public_ip, "ORRERY_PUBLIC_IP=%s", ip);

    /* what `orrery events` and friends read to find this stack */
    char *envfile = orr_sprintf ("%s/orrery.env", state);
    FILE *f = fopen (envfile, "w");
    if (f) {
        fchmod (fileno (f), 0600);
        fprintf (f, "# written by orrery up; read by orrery events/publish\n%s\n%s\n", env_redis, env_bus);
        fclose (f);
    }
    free (envfile);

    sup = supervisor_new (logs);
    char port_s[16], redis_port_s[16];
    snprintf (port_s, sizeof port_s, "%ld", public_port);
    snprintf (redis_port_s, sizeof redis_port_s, "%d", redis_port);
    {
        char *argv_redis[] = { (char *) orr_config_get (config, "REDIS_SERVER"), "--port", redis_port_s, "--bind", "127.0.0.1",
                               "--dir", redis_dir, "--appendonly", "yes", "--appendfsync", "everysec",
                               "--save", "", "--daemonize", "no", "--protected-mode", "yes", NULL };
        char *env_none[] = { NULL };
        if (supervisor_start (sup, "redis", argv_redis, env_none) < 0 || orr_wait_port (redis_port, 10000) != 0) {
            fprintf (stderr, "orrery up: redis-server did not start (see %s/redis.log)\n", logs);
            goto done;
        }
    }
    char **brokers = orr_split (bus, ',', NULL);
    for (int svc = 0; svc < N_SERVICES; svc++) {
        char *bin = cli_sibling (s_services[svc]);
        for (int k = 0; k < counts[svc]; k++) {
            char name[64], env_replica[96], env_bind[128];
            snprintf (name, sizeof name, "%s-%d", s_services[svc], k);
            snprintf (env_replica, sizeof env_replica, "ORRERY_REPLICA_ID=%s", name);
            snprintf (env_bind, sizeof env_bind, "ORRERY_BUS_BIND=%s", svc == 0 ? brokers[k] : "");
            char *argv_svc[] = { bin, NULL };
            /* a stack that stops leaves no user's server behind, unless told otherwise */
            char *env_stop_servers = getenv ("ORRERY_STOP_SERVERS_ON_EXIT") ? NULL : "ORRERY_STOP_SERVERS_ON_EXIT=true";
            char *env_svc[] = { env_redis, env_bus, env_state, env_gwport, env_proxy, env_token, env_hub,
                                env_public, env_public_ip, env_replica, svc == 0 ? env_bind : env_stop_servers, NULL };
            if (supervisor_start (sup, name, argv_svc, env_svc) < 0) {
                fprintf (stderr, "orrery up: cannot start %s\n", name);
                free (bin);
                orr_strv_free (&brokers);
                goto done;
            }
        }
        if (svc == 0)
            for (int k = 0; k < counts[0]; k++) {
                if (orr_wait_port (atoi (strrchr (brokers[k], ':') + 1) + 2, 10000) != 0) {
                    fprintf (stderr, "orrery up: broker %s did not start (see %s/bus-%d.log)\n", brokers[k], logs, k);
                    free (bin);
                    orr_strv_free (&brokers);
                    goto done;
                }
            }
        free (bin);
    }
    orr_strv_free (&brokers);
    {
        char api_port_s[16], target[96], error_target[128], env_auth[128], env_node[PATH_MAX + 16];
        snprintf (api_port_s, sizeof api_port_s, "%d", api_port);
        snprintf (target, sizeof target, "http://127.0.0.1:%d", gateway_port);
        snprintf (error_target, sizeof error_target, "http://127.0.0.1:%d%shub/error", gateway_port, base_url);
        snprintf (env_auth, sizeof env_auth, "CONFIGPROXY_AUTH_TOKEN=%s", token);
        snprintf (env_node, sizeof env_node, "NODE_PATH=%s", orr_config_get (config, "NODE_PATH"));
        char *argv_chp[] = { (char *) orr_config_get (config, "CHP"), "--ip", (char *) ip, "--port", port_s,
                             "--api-ip", "127.0.0.1", "--api-port", api_port_s, "--default-target", target,
                             "--error-target", error_target, "--log-level", "warn", NULL };
        char *env_chp[] = { env_auth, env_node, NULL };
        if (supervisor_start (sup, "proxy", argv_chp, env_chp) < 0) {
            fprintf (stderr, "orrery up: cannot start configurable-http-proxy\n");
            goto done;
        }
    }
    char *public_url = orr_sprintf ("http://%s:%ld%s", ip, public_port, base_url);
    char *health = orr_sprintf ("%shub/health", public_url);
    if (s_wait_healthy (health, sup) != 0) {
        free (public_url);
        free (health);
        if (orr_signal_stop_requested ()) {
            rc = 0;      /* asked to stop while starting: an orderly stop, not a failure */
            goto done;
        }
        fprintf (stderr, "orrery up: the stack did not answer /hub/health within %d s (logs in %s)\n",
                 UP_HEALTH_TIMEOUT_MS / 1000, logs);
        goto done;
    }
    printf ("Orrery is running at %s\n"
            "  REST API:  %shub/api   (JupyterHub 3.0 compatible)\n"
            "  state:     %s   (logs in %s)\n"
            "  events:    orrery events --state-dir %s\n"
            ,
            public_url, public_url, state, logs, state);
    cli_first_admin (bus, env_redis + strlen ("ORRERY_REDIS_URL="), public_url, state, stdout);
    printf ("Press Ctrl-C to stop.\n");
    fflush (stdout);
    free (public_url);
    free (health);
    /* hub.shutdown (POST /hub/api/shutdown, or an integrator) stops the whole stack, not
     * just the services that obey it and would otherwise be restarted */
    orr_bus_opts_t bus_opts;
    orr_bus_opts_init (&bus_opts, bus);
    const char *topics[] = { "hub.shutdown", NULL };
    orr_events_sub_t *sub = orr_events_sub_new (&bus_opts, topics);
    while (!orr_signal_stop_requested ()) {
        supervisor_tend (sup);
        orr_event_t ev;
        if (orr_events_recv (sub, &ev, 100) == 1) {
            if (orr_bus_principal_is_trusted (ev.principal)) {
                orr_info ("hub.shutdown from %s: stopping the stack", ev.principal);
                orr_signal_request_stop ();
            }
            orr_event_clear (&ev);
        }
    }
    orr_events_sub_destroy (&sub);
    orr_bus_opts_clear (&bus_opts);
    printf ("Stopping Orrery...\n");
    fflush (stdout);
    rc = 0;
done:
    if (sup)
        supervisor_stop_all (sup, UP_STOP_GRACE_MS);
    supervisor_destroy (&sup);
    if (lock_fd >= 0)
        close (lock_fd);
    free (state);
    free (logs);
    free (redis_dir);
    free (bus);
    free (token);
    free (base_url);
    orr_config_destroy (&config);
    return rc;
}
