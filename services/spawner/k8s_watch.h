/*  k8s_watch: list + watch of the server pods, reporting each pod's changes of state.
 *
 *  A watch lists the pods matching a label selector, then watches from the list's
 *  resourceVersion (GET ...?watch=1: one JSON event per line, ADDED, MODIFIED, DELETED,
 *  BOOKMARK or ERROR), re-opening the stream when the server ends it and listing again
 *  when the version is too old (410 Gone, as a status or as an ERROR event) or any ERROR
 *  event arrives. Pods that vanished between two lists are reported deleted, so nothing
 *  is missed across a gap.
 *
 *  What it reports is a pod's state, not raw events: phase (Pending → Running →
 *  Succeeded/Failed), readiness, IP, node, whether it is terminating, and why (a waiting
 *  container's reason such as ErrImagePull, a terminated one's such as OOMKilled with its
 *  exit code, an eviction), each time one of those changes. The watch remembers what it
 *  last reported per pod (in memory, a cache only: a new watch starts empty), so its first
 *  list reports every pod, which is how a restarted spawner learns the state of every
 *  server, and a re-list reports only what changed during the gap. After each list it
 *  reports K8S_WATCH_SYNCED: from then on, a pod never reported does not exist.
 *
 *  Threading: each watch runs on its own thread, started by k8s_watch_new and stopped and
 *  joined by k8s_watch_destroy. THE CALLBACK RUNS ON THAT THREAD: it must be quick and
 *  must not use anything the caller's loop uses without a lock (hand the state over to
 *  the loop). Why a thread: a watch is a response that never ends, and the spawner's
 *  loop (lib/orr_service) polls only its bus sockets and timers; a thread keeps the stream
 *  read as it arrives and keeps the blocking list calls off the loop that answers spawns.
 *  Inside the thread the stream is a libcurl multi handle rather than a blocking easy
 *  call, so that destroy can wake it at once (curl_multi_wakeup) instead of waiting for
 *  the next byte or for a progress callback's next tick. A list in progress when destroy
 *  is called finishes first (at most K8S_TIMEOUT_MS).
 */
#ifndef K8S_WATCH_H
#define K8S_WATCH_H

#include "k8s_client.h"
#include "k8s_config.h"

#include <stdbool.h>
#include <stddef.h>

#define K8S_WATCH_LINE_MAX (4 << 20)   /* largest event line accepted (a pod is a few KB) */
#define K8S_WATCH_BACKOFF_MIN_MS 500
#define K8S_WATCH_BACKOFF_MAX_MS 30000

typedef enum {
    K8S_PHASE_PENDING = 0,
    K8S_PHASE_RUNNING,
    K8S_PHASE_SUCCEEDED,
    K8S_PHASE_FAILED,
    K8S_PHASE_UNKNOWN,
    K8S_PHASE_DELETED,                 /* the pod is gone from the API */
} k8s_phase_t;

/* One pod's state. Borrowed strings, valid during the callback only; never NULL. */
typedef struct {
    const char *name;                  /* the pod's name */
    const char *uid;                   /* metadata.uid: a pod re-created under the same name has a new one */
    const char *username;              /* unescaped, from the hub.jupyter.org/username annotation */
    const char *servername;            /* "" for a default server */
    k8s_phase_t phase;
    bool ready;                        /* the Ready condition is True */
    bool terminating;                  /* a deletion is under way (deletionTimestamp) */
    const char *pod_ip;                /* "" until the pod has one */
    const char *node_name;
    const char *reason;                /* why it waits or ended, "" when nothing to say */
    const char *resource_version;
} k8s_pod_state_t;

typedef enum {
    K8S_WATCH_POD = 0,                 /* a pod's state changed (or was listed) */
    K8S_WATCH_SYNCED,                  /* a list has been reported in full */
    K8S_WATCH_ERROR,                   /* the watch cannot proceed for now; it retries */
} k8s_watch_event_kind_t;

typedef struct {
    k8s_watch_event_kind_t kind;
    const k8s_pod_state_t *pod;        /* K8S_WATCH_POD */
    k8s_result_t result;               /* K8S_WATCH_ERROR: K8S_UNAUTHORIZED, K8S_FORBIDDEN, K8S_ERROR, ... */
    const char *error;                 /* K8S_WATCH_ERROR: a sentence for the log */
} k8s_watch_event_t;

typedef void (k8s_watch_fn) (void *ctx, const k8s_watch_event_t *event);

typedef struct k8s_watch_t k8s_watch_t;

/* Starts watching the pods that match `label_selector` (NULL = K8S_SERVER_SELECTOR) in
 * the config's namespace; `fn` gets every report on the watch's thread. The config is
 * borrowed and must outlive the watch. Caller owns the result. */
k8s_watch_t *k8s_watch_new (k8s_config_t *config, const char *label_selector, k8s_watch_fn *fn, void *ctx);
/* Stops the thread and waits for it; no callback runs after it returns. */
void k8s_watch_destroy (k8s_watch_t **self_p);

/* Successful lists so far (the first one, then one per re-list). Thread-safe. */
int k8s_watch_lists (k8s_watch_t *self);

/* The state of a pod object as reported (pure; strings borrowed from `pod` or static;
 * `reason` is written into the caller's buffer). Exposed for tests. */
void k8s_pod_state_from (json_t *pod, k8s_pod_state_t *state, char *reason, size_t reasonlen);
const char *k8s_phase_name (k8s_phase_t phase);

#endif
