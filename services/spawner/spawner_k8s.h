/*  spawner_k8s: the Kubernetes backend as the engine uses it — a server is a pod (and,
 *  with a pvc profile, a claim that outlives it), created from the profile, followed
 *  through a list+watch of the spawner's pods, deleted on stop.
 *
 *  The watch (k8s_watch.c) runs on its own thread and only records each pod's latest
 *  state in a table under a lock and wakes the engine; the engine reads the table when
 *  its jobs advance, so a pod turning Running or Failed is seen at once, without a GET
 *  per pod per tick. Creates and deletes are made by the engine's thread with its own
 *  client (k8s_client is one per thread).
 */
#ifndef SPAWNER_K8S_H
#define SPAWNER_K8S_H

#include "k8s_objects.h"
#include "k8s_watch.h"
#include "orr_config.h"

#include <stdbool.h>
#include <stddef.h>

#define SPAWNER_K8S_PORT 8888          /* the port servers listen on inside their pods */
#define SPAWNER_K8S_STOP_GRACE_S 10    /* pod deletion's grace: the reference's SIGINT wait */

typedef struct spawner_k8s_t spawner_k8s_t;

/* From the K8S_* settings; `wake(ctx)` is called (on the watch's thread) when a pod
 * changes. NULL with the reason in err. */
spawner_k8s_t *spawner_k8s_new (orr_config_t *config, void (*wake) (void *), void *ctx, char *err, size_t errlen);
void spawner_k8s_destroy (spawner_k8s_t **self_p);

/* Creates the server's PVC (when its profile has one; an existing claim is the user's
 * storage and is kept) and its pod. An existing pod of the same name is taken as this
 * server's (a take-over after a spawner died). 0 and *pod_name (caller frees), or -1
 * with err. Engine thread only. */
int spawner_k8s_start (spawner_k8s_t *self, const k8s_server_spec_t *spec, char **pod_name, char *err, size_t errlen);

/* What the watch last saw of a pod. false when it has not reported the pod yet. */
typedef struct {
    k8s_phase_t phase;                 /* K8S_PHASE_DELETED once gone */
    bool ready;
    bool terminating;
    char pod_ip[64];
    char reason[512];
} spawner_pod_t;
bool spawner_k8s_pod (spawner_k8s_t *self, const char *pod_name, spawner_pod_t *out);
/* True once the watch has listed the pods at least once (before that, "not reported"
 * means nothing). */
bool spawner_k8s_synced (spawner_k8s_t *self);

/* Deletes the pod with a grace period; 0 when accepted or already gone, -1 with err. */
int spawner_k8s_delete (spawner_k8s_t *self, const char *pod_name, int grace_s, char *err, size_t errlen);

/* The names of pods the watch knows (for the orphan sweep): calls fn for each pod with
 * its user and server annotations. Runs under the table's lock: fn must not call back. */
typedef void (spawner_k8s_pod_fn) (void *ctx, const char *pod_name, const char *user, const char *server);
void spawner_k8s_each_pod (spawner_k8s_t *self, spawner_k8s_pod_fn *fn, void *ctx);

/* The backend's default image (K8S_IMAGE). */
const char *spawner_k8s_image (spawner_k8s_t *self);

#endif
