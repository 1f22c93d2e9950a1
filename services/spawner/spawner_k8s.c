/*  spawner_k8s: pods for servers, and the watch that follows them. See spawner_k8s.h.
 *
 *  The table maps pod name → the latest reported state, with user and server from the
 *  pod's annotations so the orphan sweep can ask whether a record still wants it. Deleted
 *  pods stay in the table as DELETED until the engine has seen it (they are few, and a
 *  re-created pod of the same name simply overwrites the entry).
 */
#include "spawner_k8s.h"
#include "k8s_client.h"
#include "orr_log.h"
#include "orr_util.h"

#include <czmq.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define POD_TABLE_MAX 200000         /* pods followed; more are not recorded (logged once) */

typedef struct {
    spawner_pod_t state;
    char *user;
    char *server;
} pod_entry_t;

struct spawner_k8s_t {
    k8s_config_t *config;
    k8s_client_t *client;            /* engine thread */
    k8s_watch_t *watch;
    pthread_mutex_t lock;
    zhashx_t *pods;                  /* name -> pod_entry_t */
    bool synced;
    bool full_logged;
    void (*wake) (void *);
    void *wake_ctx;
};

static void
s_entry_destroy (void **item)
{
    pod_entry_t *e = *item;
    if (!e)
        return;
    free (e->user);
    free (e->server);
    free (e);
    *item = NULL;
}

/* On the watch's thread: record the state, wake the engine. */
static void
s_on_watch (void *ctx, const k8s_watch_event_t *ev)
{
    spawner_k8s_t *self = ctx;
    if (ev->kind == K8S_WATCH_ERROR) {
        orr_warn ("kubernetes: pod watch: %s", ev->error ? ev->error : "error");
        return;
    }
    pthread_mutex_lock (&self->lock);
    if (ev->kind == K8S_WATCH_SYNCED)
        self->synced = true;
    else if (ev->pod) {
        const k8s_pod_state_t *p = ev->pod;
        pod_entry_t *e = zhashx_lookup (self->pods, p->name);
        if (!e && zhashx_size (self->pods) < POD_TABLE_MAX) {
            e = orr_zalloc (sizeof *e);
            zhashx_insert (self->pods, p->name, e);
        }
        else if (!e && !self->full_logged) {
            orr_warn ("kubernetes: more than %d pods; the rest are not followed", POD_TABLE_MAX);
            self->full_logged = true;
        }
        if (e) {
            free (e->user);
            free (e->server);
            e->user = orr_strdup (p->username);
            e->server = orr_strdup (p->servername);
            e->state.phase = p->phase;
            e->state.ready = p->ready;
            e->state.terminating = p->terminating;
            snprintf (e->state.pod_ip, sizeof e->state.pod_ip, "%s", p->pod_ip);
            snprintf (e->state.reason, sizeof e->state.reason, "%s", p->reason);
        }
    }
    pthread_mutex_unlock (&self->lock);
    if (self->wake)
        self->wake (self->wake_ctx);
}

spawner_k8s_t *
spawner_k8s_new (orr_config_t *config, void (*wake) (void *), void *ctx, char *err, size_t errlen)
{
    spawner_k8s_t *self = orr_zalloc (sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    self->pods = zhashx_new ();
    zhashx_set_destructor (self->pods, s_entry_destroy);
    self->wake = wake;
    self->wake_ctx = ctx;
    self->config = k8s_config_from_settings (config, err, errlen);
    if (!self->config || !(self->client = k8s_client_new (self->config))) {
        spawner_k8s_destroy (&self);
        return NULL;
    }
    self->watch = k8s_watch_new (self->config, NULL, s_on_watch, self);
    if (!self->watch) {
        snprintf (err, errlen, "kubernetes: cannot start the pod watch");
        spawner_k8s_destroy (&self);
        return NULL;
    }
    return self;
}

void
spawner_k8s_destroy (spawner_k8s_t **self_p)
{
    spawner_k8s_t *self = *self_p;
    if (!self)
        return;
    k8s_watch_destroy (&self->watch);
    k8s_client_destroy (&self->client);
    k8s_config_destroy (&self->config);
    zhashx_destroy (&self->pods);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

const char *
spawner_k8s_image (spawner_k8s_t *self)
{
    return k8s_config_image (self->config);
}

int
spawner_k8s_start (spawner_k8s_t *self, const k8s_server_spec_t *spec, char **pod_name, char *err, size_t errlen)
{
    *pod_name = NULL;
    if (spec->profile->kubernetes.storage.type == SPAWNER_STORAGE_PVC) {
        json_t *pvc = k8s_pvc_build (spec, err, errlen);
        if (!pvc)
            return -1;
        k8s_result_t r = k8s_create (self->client, K8S_PVC, pvc, NULL, err, errlen);
        json_decref (pvc);
        if (r != K8S_OK && r != K8S_EXISTS)
            return -1;
    }
    json_t *pod = k8s_pod_build (spec, err, errlen);
    if (!pod)
        return -1;
    k8s_result_t r = k8s_create (self->client, K8S_POD, pod, NULL, err, errlen);
    json_decref (pod);
    if (r != K8S_OK && r != K8S_EXISTS)
        return -1;
    *pod_name = k8s_pod_name (spec->user, spec->server_name);
    if (r == K8S_EXISTS)
        orr_info ("kubernetes: pod %s exists already; taking it as %s's server", *pod_name, spec->user);
    return 0;
}

bool
spawner_k8s_pod (spawner_k8s_t *self, const char *pod_name, spawner_pod_t *out)
{
    pthread_mutex_lock (&self->lock);
    pod_entry_t *e = zhashx_lookup (self->pods, pod_name);
    if (e)
        *out = e->state;
    pthread_mutex_unlock (&self->lock);
    return e != NULL;
}

bool
spawner_k8s_synced (spawner_k8s_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool synced = self->synced;
    pthread_mutex_unlock (&self->lock);
    return synced;
}

int
spawner_k8s_delete (spawner_k8s_t *self, const char *pod_name, int grace_s, char *err, size_t errlen)
{
    k8s_result_t r = k8s_delete (self->client, K8S_POD, pod_name, grace_s, err, errlen);
    return r == K8S_OK || r == K8S_NOT_FOUND ? 0 : -1;
}

void
spawner_k8s_each_pod (spawner_k8s_t *self, spawner_k8s_pod_fn *fn, void *ctx)
{
    pthread_mutex_lock (&self->lock);
    for (pod_entry_t *e = zhashx_first (self->pods); e; e = zhashx_next (self->pods))
        if (e->state.phase != K8S_PHASE_DELETED)
            fn (ctx, zhashx_cursor (self->pods), e->user ? e->user : "", e->server ? e->server : "");
    pthread_mutex_unlock (&self->lock);
}
