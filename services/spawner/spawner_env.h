/*  spawner_env: what a single-user server is told — its URL, its OAuth client, and the
 *  environment of JupyterHub's contract (shared/reference/jupyterhub-api.md §9).
 *
 *  Pure functions, so the exact variables are tested on their own (test_spawner_env)
 *  and both backends (local processes, Kubernetes pods) give servers the same contract.
 */
#ifndef SPAWNER_ENV_H
#define SPAWNER_ENV_H

#include "spawner_profile.h"

#include <stddef.h>

/* base_url + "user/<quoted user>/" [+ "<quoted server>/"]: the server's prefix. Caller frees. */
char *spawner_server_url (const char *base_url, const char *user, const char *server);
/* "jupyterhub-user-<quoted user>" [+ "-<quoted server>"]. Caller frees. */
char *spawner_client_id (const char *user, const char *server);
/* The scopes that reach this server: JSON text
 * ["access:servers!server=<user>/<server>", "access:servers!user=<user>"]. Caller frees. */
char *spawner_access_scopes_json (const char *user, const char *server);

typedef struct {
    const char *user;
    const char *server;           /* "" = default */
    const char *base_url;         /* "/" */
    const char *hub_api_url;      /* http://127.0.0.1:8081/hub/api (no trailing slash) */
    const char *public_host;      /* JUPYTERHUB_HOST: "" without subdomains */
    const char *token;            /* the server's API token = OAuth client secret */
    const char *bind_url;         /* http://127.0.0.1:PORT (what the server binds) */
    const char *home;             /* HOME, and the working directory */
    const char *singleuser_app;   /* JUPYTERHUB_SINGLEUSER_APP, NULL/"" = not set */
    const char *stack_id;         /* ORRERY_STACK (finds a stack's processes after a restart) */
    const spawner_profile_t *profile; /* MEM_LIMIT & co; NULL = none */
} spawner_env_spec_t;

/* The environment as "K=V" strings, NULL-terminated, in a stable order. Caller frees with
 * orr_strv_free. */
char **spawner_env_build (const spawner_env_spec_t *spec);

#endif
