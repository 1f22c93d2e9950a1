/*  sched_fixture: see sched_fixture.h. */
#include "sched_fixture.h"
#include "orr_rpc.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

pid_t
ts_scheduler_start (const char *dir, const char *bus, const char *redis_url, const char *replica,
                    char *const *extra_env)
{
    char *bin = tu_bin ("orrery-scheduler");
    char *busv = orr_sprintf ("ORRERY_BUS=%s", bus);
    char *redis = orr_sprintf ("ORRERY_REDIS_URL=%s", redis_url);
    char *rep = orr_sprintf ("ORRERY_REPLICA_ID=%s", replica);
    char *env[24] = { busv, redis, rep };
    int n = 3;
    for (char *const *e = extra_env; e && *e && n < 23; e++)
        env[n++] = *e;
    env[n] = NULL;
    char *log = orr_sprintf ("%s/%s.log", dir, replica);
    char *argv[] = { bin, NULL };
    pid_t pid = tu_spawn (argv, env, log);
    free (log);
    free (bin);
    free (busv);
    free (redis);
    free (rep);
    return pid;
}

/* "a=b,c=d" into Label messages (pointers into `copy`, which the caller frees). */
static size_t
s_pairs (const char *text, char **copy, Orrery__Label *labels, Orrery__Label **ptrs, size_t max)
{
    *copy = orr_strdup (text ? text : "");
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r (*copy, ",", &save); tok && n < max; tok = strtok_r (NULL, ",", &save)) {
        orrery__label__init (&labels[n]);
        char *eq = strchr (tok, '=');
        labels[n].key = tok;
        labels[n].value = "";
        if (eq) {
            *eq = '\0';
            labels[n].value = eq + 1;
        }
        ptrs[n] = &labels[n];
        n++;
    }
    return n;
}

void
ts_heartbeat (orr_events_pub_t *pub, const ts_node_t *node)
{
    Orrery__NodeHeartbeat hb = ORRERY__NODE_HEARTBEAT__INIT;
    Orrery__Resources cap = ORRERY__RESOURCES__INIT;
    cap.cpu_millis = node->cpu_millis;
    cap.memory_bytes = node->memory_bytes;
    cap.gpus = (int32_t) node->gpus;
    cap.servers = (int32_t) node->servers;
    hb.node = (char *) node->name;
    hb.capacity = &cap;
    hb.agent = "test";
    hb.time_us = orr_now_us ();
    Orrery__Label labels[16], *lptr[16];
    char *lcopy;
    hb.n_labels = s_pairs (node->labels, &lcopy, labels, lptr, 16);
    hb.labels = lptr;
    /* taints: "k=v:Effect" */
    Orrery__Taint taints[16], *tptr[16];
    char *tcopy = orr_strdup (node->taints ? node->taints : "");
    size_t nt = 0;
    for (char *save = NULL, *tok = strtok_r (tcopy, ",", &save); tok && nt < 16; tok = strtok_r (NULL, ",", &save)) {
        orrery__taint__init (&taints[nt]);
        char *colon = strrchr (tok, ':');
        char *eq = strchr (tok, '=');
        taints[nt].effect = colon ? colon + 1 : "";
        if (colon)
            *colon = '\0';
        taints[nt].key = tok;
        taints[nt].value = "";
        if (eq) {
            *eq = '\0';
            taints[nt].value = eq + 1;
        }
        tptr[nt] = &taints[nt];
        nt++;
    }
    hb.n_taints = nt;
    hb.taints = tptr;
    size_t len = orrery__node_heartbeat__get_packed_size (&hb);
    uint8_t *buf = orr_zalloc (len + 1);
    orrery__node_heartbeat__pack (&hb, buf);
    CHECK (orr_events_publish (pub, "node.heartbeat", buf, len) == 0, "publish heartbeat");
    free (buf);
    free (lcopy);
    free (tcopy);
}

void
ts_register_nodes (orr_events_pub_t *pub, orr_bus_client_t *client, const ts_node_t *nodes, size_t n)
{
    int64_t deadline = orr_mono_ms () + 20000;
    size_t ready = 0;
    while (orr_mono_ms () < deadline) {
        for (size_t i = 0; i < n; i++)
            ts_heartbeat (pub, &nodes[i]);
        orr_sleep_ms (200);
        Orrery__NodeList *list = NULL;
        if (ts_nodes (client, NULL, &list) != 200)
            continue;
        ready = 0;
        for (size_t i = 0; i < list->n_nodes; i++)
            for (size_t j = 0; j < n; j++)
                if (strcmp (list->nodes[i]->name, nodes[j].name) == 0 && list->nodes[i]->ready)
                    ready++;
        orrery__node_list__free_unpacked (list, NULL);
        if (ready == n)
            return;
    }
    CHECK (false, "only %zu of %zu nodes registered within 20 s", ready, n);
}

/* One call: packs msg, unpacks the reply with desc. */
static int
s_call (orr_bus_client_t *client, const char *method, const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *desc,
        ProtobufCMessage **out, char *err, size_t errlen)
{
    size_t len = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = orr_zalloc (len + 1);
    protobuf_c_message_pack (msg, buf);
    orr_rpc_reply_t r;
    int status = orr_rpc_call (client, "scheduler", method, NULL, buf, len, &r);
    free (buf);
    if (out)
        *out = NULL;
    if (status == 200 && out && desc) {
        *out = protobuf_c_message_unpack (desc, NULL, r.len, r.body);
        CHECK (*out, "%s: reply does not unpack", method);
    }
    if (err && errlen)
        snprintf (err, errlen, "%s", r.error);
    orr_rpc_reply_clear (&r);
    return status;
}

int
ts_place (orr_bus_client_t *client, const ts_place_t *p, Orrery__PlaceResult **out, char *err, size_t errlen)
{
    Orrery__PlaceRequest req = ORRERY__PLACE_REQUEST__INIT;
    Orrery__Resources g = ORRERY__RESOURCES__INIT;
    g.cpu_millis = p->cpu_millis;
    g.memory_bytes = p->memory_bytes;
    g.gpus = (int32_t) p->gpus;
    req.reservation = (char *) p->reservation;
    req.guarantees = &g;
    req.profile = (char *) (p->profile ? p->profile : "");
    req.group = (char *) (p->group ? p->group : "");
    req.user = req.group;
    Orrery__Label sel[16], *sptr[16];
    char *scopy;
    req.n_node_selector = s_pairs (p->selector, &scopy, sel, sptr, 16);
    req.node_selector = sptr;
    Orrery__Toleration tol[16], *tptr[16];
    char *tcopy = orr_strdup (p->tolerations ? p->tolerations : "");
    size_t nt = 0;
    for (char *save = NULL, *tok = strtok_r (tcopy, ",", &save); tok && nt < 16; tok = strtok_r (NULL, ",", &save)) {
        orrery__toleration__init (&tol[nt]);
        char *colon = strrchr (tok, ':');
        tol[nt].effect = "";
        if (colon) {
            *colon = '\0';
            if (strcmp (colon + 1, "Exists") == 0)
                tol[nt].operator_ = "Exists";
            else
                tol[nt].effect = colon + 1;
        }
        char *eq = strchr (tok, '=');
        tol[nt].key = tok;
        tol[nt].value = "";
        if (eq) {
            *eq = '\0';
            tol[nt].value = eq + 1;
        }
        tptr[nt] = &tol[nt];
        nt++;
    }
    req.n_tolerations = nt;
    req.tolerations = tptr;
    int status = s_call (client, "place", &req.base, &orrery__place_result__descriptor, (ProtobufCMessage **) out, err,
                         errlen);
    free (scopy);
    free (tcopy);
    return status;
}

int
ts_release (orr_bus_client_t *client, const char *reservation, Orrery__ReleaseResult **out)
{
    Orrery__ReservationRef ref = ORRERY__RESERVATION_REF__INIT;
    ref.reservation = (char *) reservation;
    return s_call (client, "release", &ref.base, &orrery__release_result__descriptor, (ProtobufCMessage **) out, NULL, 0);
}

int
ts_bind (orr_bus_client_t *client, const char *reservation)
{
    Orrery__ReservationRef ref = ORRERY__RESERVATION_REF__INIT;
    ref.reservation = (char *) reservation;
    return s_call (client, "bind", &ref.base, NULL, NULL, NULL, 0);
}

int
ts_nodes (orr_bus_client_t *client, const char *node, Orrery__NodeList **out)
{
    Orrery__NodesRequest req = ORRERY__NODES_REQUEST__INIT;
    req.node = (char *) (node ? node : "");
    return s_call (client, "nodes", &req.base, &orrery__node_list__descriptor, (ProtobufCMessage **) out, NULL, 0);
}

int
ts_cordon (orr_bus_client_t *client, const char *node, bool cordon, const char *reason)
{
    Orrery__CordonRequest req = ORRERY__CORDON_REQUEST__INIT;
    req.node = (char *) node;
    req.cordon = cordon;
    req.reason = (char *) (reason ? reason : "");
    return s_call (client, "cordon", &req.base, NULL, NULL, NULL, 0);
}
