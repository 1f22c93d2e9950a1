/*  k8s_client: the Kubernetes API calls the backend makes, on pods and PVCs of one namespace.
 *
 *  create (POST), get, delete (with gracePeriodSeconds) and list (labelSelector,
 *  resourceVersion) over lib/orr_http, plus the cluster-scoped list of nodes (K8S_NODE).
 *  Each call returns a k8s_result_t that names what Kubernetes answered, so callers
 *  decide on meaning rather than on HTTP codes: creating what exists is K8S_EXISTS (fine
 *  for a user's PVC, which outlives servers), deleting what is gone is K8S_NOT_FOUND (the
 *  goal is reached). err always gets a sentence with the verb, the object and the API's
 *  own message ("POST pods: 403 Forbidden: pods is forbidden: User ... cannot create
 *  resource ...").
 *
 *  A client holds one orr_http handle (keep-alive to the API server) and is not
 *  thread-safe: one per thread. The config it borrows is, and must outlive it.
 *  Watching is in k8s_watch.h.
 */
#ifndef K8S_CLIENT_H
#define K8S_CLIENT_H

#include "k8s_config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    K8S_POD = 0,
    K8S_PVC,
    K8S_NODE,             /* cluster-scoped: only k8s_list is meant for it (k8s_nodes.c) */
} k8s_kind_t;

typedef enum {
    K8S_OK = 0,           /* 200 or 201 */
    K8S_EXISTS,           /* 409 AlreadyExists (create) */
    K8S_NOT_FOUND,        /* 404 */
    K8S_GONE,             /* 410: the resourceVersion asked for is too old; list again */
    K8S_UNAUTHORIZED,     /* 401: the token was refused */
    K8S_FORBIDDEN,        /* 403: RBAC says no */
    K8S_INVALID,          /* 400 or 422: the object was refused */
    K8S_CONFLICT,         /* 409 other than AlreadyExists */
    K8S_ERROR,            /* no answer (refused, timeout, TLS), a 5xx or another status, or no JSON */
} k8s_result_t;

typedef struct k8s_client_t k8s_client_t;

/* A client over `config` (borrowed). Caller owns the result. */
k8s_client_t *k8s_client_new (k8s_config_t *config);
void k8s_client_destroy (k8s_client_t **self_p);

/* "pods", "persistentvolumeclaims" or "nodes" */
const char *k8s_kind_resource (k8s_kind_t kind);
/* "created", "exists", ... for logs */
const char *k8s_result_name (k8s_result_t result);

/* POST the object (borrowed) to its collection. K8S_OK with the created object in
 * *created (may be NULL; caller owns), K8S_EXISTS when the name is taken. */
k8s_result_t k8s_create (k8s_client_t *self, k8s_kind_t kind, json_t *object, json_t **created, char *err,
                         size_t errlen);
/* GET one object: K8S_OK with *object (caller owns), or K8S_NOT_FOUND. */
k8s_result_t k8s_get (k8s_client_t *self, k8s_kind_t kind, const char *name, json_t **object, char *err, size_t errlen);
/* DELETE with gracePeriodSeconds (< 0: the object's own default). K8S_OK when the
 * deletion was accepted (a pod then terminates and disappears), K8S_NOT_FOUND when
 * there was nothing to delete. */
k8s_result_t k8s_delete (k8s_client_t *self, k8s_kind_t kind, const char *name, int grace_seconds, char *err,
                         size_t errlen);
/* GET the collection. label_selector and resource_version may be NULL or "" ("0" lets
 * the API server answer from its cache, the cheap list for a re-list). K8S_OK with the
 * list object in *list (caller owns): its "items" and metadata.resourceVersion. */
k8s_result_t k8s_list (k8s_client_t *self, k8s_kind_t kind, const char *label_selector, const char *resource_version,
                       json_t **list, char *err, size_t errlen);

/* --- shared with k8s_watch ------------------------------------------------------------ */

/* The collection's URL (/api/v1/nodes for K8S_NODE, else in the namespace) with a query (NULL = none) whose values are already escaped.
 * Caller frees. */
char *k8s_collection_url (const k8s_config_t *config, k8s_kind_t kind, const char *query);
/* Percent-encodes a query value (everything but A-Z a-z 0-9 - . _ ~). Caller frees. */
char *k8s_query_escape (const char *value);
/* What a status and a response body (JSON Status, or anything) mean, and a sentence
 * "VERB what: CODE Reason: message" in err. `body` may be NULL. */
k8s_result_t k8s_result_from (long status, json_t *body, const char *verb, const char *what, char *err, size_t errlen);

#endif
