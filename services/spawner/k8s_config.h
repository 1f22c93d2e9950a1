/*  k8s_config: how the spawner reaches the Kubernetes API from inside a cluster.
 *
 *  In-cluster service-account configuration, as client-go's rest.InClusterConfig does it:
 *  the API server is https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the
 *  bearer token, the CA certificate and the namespace are the files Kubernetes mounts at
 *  /var/run/secrets/kubernetes.io/serviceaccount/. Each has a setting (K8S_API_URL,
 *  K8S_TOKEN_FILE, K8S_CA_FILE, K8S_NAMESPACE_FILE, K8S_NAMESPACE) so that tests and
 *  out-of-cluster runs can point elsewhere.
 *
 *  Service-account tokens are projected and rotated by the kubelet (bound tokens live
 *  about an hour), so the token is re-read from its file when the file changes or a
 *  minute has passed, as client-go does; k8s_config_auth_header is thread-safe for that.
 *  Everything else is fixed at k8s_config_new.
 */
#ifndef K8S_CONFIG_H
#define K8S_CONFIG_H

#include "orr_config.h"

#include <stddef.h>

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* The Kubernetes backend's settings, for the spawner's settings table. */
#define SPAWNER_K8S_SETTINGS                                                                                           \
    { "K8S_API_URL", NULL,                                                                                             \
      "Kubernetes API server URL; unset = https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (in-cluster)" },   \
    { "K8S_TOKEN_FILE", K8S_SA_DIR "/token", "bearer token file (re-read when it changes); empty = send no token" },   \
    { "K8S_CA_FILE", K8S_SA_DIR "/ca.crt", "CA certificate(s) of the API server (PEM); empty = the system's CAs" },    \
    { "K8S_NAMESPACE", NULL, "namespace of users' pods and PVCs; unset = the contents of K8S_NAMESPACE_FILE" },         \
    { "K8S_NAMESPACE_FILE", K8S_SA_DIR "/namespace", "file naming the namespace (used when K8S_NAMESPACE is unset)" }, \
    { "K8S_IMAGE", "jupyterhub/singleuser:3.0", "image of profiles that name none" },                                   \
    { "K8S_TIMEOUT_MS", "10000", "timeout of each Kubernetes API request, ms (100..300000)" },                         \
    { "K8S_WATCH_TIMEOUT_S", "300", "a pod watch is re-opened after this many seconds (10..3600)" }

/* The same as a table of its own, ending with a NULL name. */
extern const orr_setting_t spawner_k8s_settings[];

#define K8S_TIMEOUT_MS_MIN 100
#define K8S_TIMEOUT_MS_MAX 300000
#define K8S_WATCH_TIMEOUT_S_MIN 10
#define K8S_WATCH_TIMEOUT_S_MAX 3600
#define K8S_TOKEN_MAX 16384          /* bytes of a token file */
#define K8S_TOKEN_REREAD_MS 60000
#define K8S_AUTH_HEADER_MAX (K8S_TOKEN_MAX + 32) /* room for "Authorization: Bearer " + a token */

/* Where each piece comes from; NULL or "" fields take the in-cluster defaults above,
 * except token_file and ca_file, where "" means none. */
typedef struct {
    const char *api_url;             /* NULL = from KUBERNETES_SERVICE_HOST/PORT */
    const char *token_file;          /* NULL = K8S_SA_DIR/token; "" = no token */
    const char *ca_file;             /* NULL = K8S_SA_DIR/ca.crt; "" = system CAs */
    const char *namespace_;          /* NULL or "" = read namespace_file */
    const char *namespace_file;      /* NULL = K8S_SA_DIR/namespace */
    const char *image;               /* NULL = "jupyterhub/singleuser:3.0" */
    long timeout_ms;                 /* 0 = 10000 */
    long watch_timeout_s;            /* 0 = 300 */
} k8s_config_options_t;

typedef struct k8s_config_t k8s_config_t;

/* Checks and loads the configuration: the URL (http or https, no path), the namespace
 * (a DNS label), the token (readable when a file is named), the CA file (readable when
 * named and the URL is https). NULL with the reason in err. Caller owns the result. */
k8s_config_t *k8s_config_new (const k8s_config_options_t *options, char *err, size_t errlen);
/* The same from the K8S_* settings (SPAWNER_K8S_SETTINGS must be in the table). */
k8s_config_t *k8s_config_from_settings (orr_config_t *config, char *err, size_t errlen);
void k8s_config_destroy (k8s_config_t **self_p);

/* Borrowed; valid for the config's life. */
const char *k8s_config_api_url (const k8s_config_t *self);    /* no trailing slash */
const char *k8s_config_namespace (const k8s_config_t *self);
const char *k8s_config_ca_file (const k8s_config_t *self);    /* NULL = system CAs */
const char *k8s_config_token_file (const k8s_config_t *self); /* NULL = no token */
const char *k8s_config_image (const k8s_config_t *self);
long k8s_config_timeout_ms (const k8s_config_t *self);
long k8s_config_watch_timeout_s (const k8s_config_t *self);

/* "Authorization: Bearer <token>" into out (re-reading the token file when due), or ""
 * when no token is configured. 0, or -1 with the reason in err when the token file can
 * no longer be read (the last good token is then still written to out). Thread-safe. */
int k8s_config_auth_header (k8s_config_t *self, char *out, size_t outlen, char *err, size_t errlen);

#endif
