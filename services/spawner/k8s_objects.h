/*  k8s_objects: the Pod and PersistentVolumeClaim of one user's server, as JSON.
 *
 *  Pure functions: (user, server name, profile, node, environment, command) in, a jansson
 *  object out, the same every time, so tests compare them with golden files
 *  (tests/k8s_expected/). Names and labels follow KubeSpawner, so tools written for
 *  KubeSpawner's pods (z2jh's network policies, the idle culler's label selectors, a
 *  cluster admin's `kubectl get pods -l component=singleuser-server`) work unchanged:
 *
 *    pod    jupyter-{user_server}     labels app=jupyterhub, component=singleuser-server,
 *    pvc    claim-{user_server}              hub.jupyter.org/username, hub.jupyter.org/servername
 *
 *  {user_server} is the escaped user name, followed for a named server by "--" and the
 *  escaped server name. Escaping is KubeSpawner's (escapism): a-z and 0-9 stay, any other
 *  byte becomes "-XX" (its hex code), then everything is lower-cased ("Alice" → "-41lice",
 *  "a.b" → "a-2eb"). A name longer than 63 is cut and given a hash of the whole name, as
 *  KubeSpawner 7's safe slugs are: the first 52 bytes, "---", 8 hex digits of SHA-256.
 */
#ifndef K8S_OBJECTS_H
#define K8S_OBJECTS_H

#include "spawner_profile.h"

#include <jansson.h>
#include <stddef.h>

#define K8S_NAME_MAX 63               /* pod and PVC names, label values: DNS labels */
#define K8S_NOTEBOOK_PORT 8888
#define K8S_HOME_MOUNT "/home/jovyan"
#define K8S_CONTAINER_NAME "notebook"
#define K8S_HOME_VOLUME "home"
#define K8S_GPU_RESOURCE "nvidia.com/gpu"

#define K8S_LABEL_USERNAME "hub.jupyter.org/username"
#define K8S_LABEL_SERVERNAME "hub.jupyter.org/servername"
/* The label selector of every server pod the spawner manages. */
#define K8S_SERVER_SELECTOR "app=jupyterhub,component=singleuser-server"

typedef struct {
    const char *name;
    const char *value;
} k8s_env_var_t;

/* One server to build objects for. Borrowed pointers, none owned. */
typedef struct {
    const char *user;                     /* JupyterHub's user name, unescaped */
    const char *server_name;              /* "" or NULL for the default server */
    const spawner_profile_t *profile;
    const char *node_name;                /* the scheduler's choice; NULL or "" = Kubernetes chooses */
    const k8s_env_var_t *env;             /* reference §9's variables, in order */
    size_t nenv;
    const char *const *command;           /* NULL-terminated, or NULL = the image's entrypoint */
    const char *const *args;              /* NULL-terminated, or NULL = none */
    const char *default_image;            /* when the profile names none (K8S_IMAGE) */
} k8s_server_spec_t;

/* KubeSpawner's escaping of one name into out (see above; not yet cut to length).
 * Returns out, always NUL-terminated; a result longer than outlen - 1 is cut. */
char *k8s_escape (const char *name, char *out, size_t outlen);

/* A DNS-label-safe name from a prefix and the server: "jupyter-" + user_server, cut with
 * a hash above 63 (see above). Caller frees. */
char *k8s_pod_name (const char *user, const char *server_name);
char *k8s_pvc_name (const char *user, const char *server_name);

/* The Pod. NULL with the reason in err when the spec is incomplete (no user, no profile,
 * no image), an environment variable has no name, or a string is not UTF-8. Caller owns. */
json_t *k8s_pod_build (const k8s_server_spec_t *spec, char *err, size_t errlen);
/* The PVC of a profile with storage type pvc; NULL with the reason in err otherwise. */
json_t *k8s_pvc_build (const k8s_server_spec_t *spec, char *err, size_t errlen);

/* A Kubernetes quantity for bytes: the largest of Ti, Gi, Mi, Ki that divides it
 * exactly, else plain bytes ("1Gi", "1536Mi", "1000"). */
void k8s_format_bytes (int64_t bytes, char *out, size_t outlen);
/* For millicores: whole cores as "2", else "500m". */
void k8s_format_cpu (int64_t millis, char *out, size_t outlen);

#endif
