/*  gw_api_nodes: /hub/api/nodes, /hub/api/nodes/{name} and /hub/api/nodes/{name}/cordon
 *  and .../uncordon -- the admin's view of the scheduler's nodes, an Orrery extension to
 *  JupyterHub 3.0 (docs/api.md, "Orrery extensions"), guarded by admin:nodes.
 *
 *  The scheduler owns nodes (docs/architecture.md), so reads as well as changes are bus
 *  calls to it ("nodes" and "cordon", proto/orrery/scheduler.proto) rather than Redis
 *  reads: readiness (heartbeat age) and the reserved sums are its to compute, and its
 *  key layout stays its own. The gateway checks the scope and the body, sorts and pages
 *  the list, and shows each NodeInfo as the node model (gw_node_model).
 */
#include "gw_api.h"
#include "orrery/scheduler.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define GW_CORDON_REASON_MAX 256   /* bytes */

static const char *const s_need[] = { "admin:nodes", NULL };

/* The reply for a scheduler call that did not return 200. `node` names the node asked
 * for (NULL for the list). No scheduler worker is usually 504 rather than 503 by the time
 * the bus client gives up (it stops retrying before the broker's queue TTL runs out), so
 * both mean "unavailable" to the API client. */
static enum MHD_Result
s_reply_failed (const gw_request_t *req, int status, const char *node, const char *message)
{
    if (status == 503 || status == 504)
        return gw_reply_error (req, 503, "scheduler unavailable");
    if (status == 404 && node)
        return gw_reply_errorf (req, 404, "No such node: %s", node);
    return gw_reply_error (req, (unsigned) status, message);
}

/* scheduler.nodes for one node, or all when name is NULL. */
static int
s_nodes (gw_t *gw, const char *name, Orrery__NodeList **list, char *message, size_t msglen)
{
    Orrery__NodesRequest m = ORRERY__NODES_REQUEST__INIT;
    m.node = (char *) (name ? name : "");
    return gw_call (gw, "scheduler", "nodes", &m.base, &orrery__node_list__descriptor, (ProtobufCMessage **) list,
                    message, msglen);
}

static int
s_by_name (const void *a, const void *b)
{
    const Orrery__NodeInfo *x = *(Orrery__NodeInfo *const *) a, *y = *(Orrery__NodeInfo *const *) b;
    return strcmp (x->name ? x->name : "", y->name ? y->name : "");
}

enum MHD_Result
gw_api_nodes_list (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    if (!gw_allowed (gw, req, caller, s_need, NULL, &rc))
        return rc;
    gw_page_t page;
    char msg[256];
    if (gw_page_parse (gw, req, &page, msg, sizeof msg) != 0)
        return gw_reply_error (req, 400, msg);
    Orrery__NodeList *list = NULL;
    int st = s_nodes (gw, NULL, &list, msg, sizeof msg);
    if (st != 200)
        return s_reply_failed (req, st, NULL, msg);
    /* the scheduler answers in any order */
    qsort (list->nodes, list->n_nodes, sizeof *list->nodes, s_by_name);
    long total = (long) list->n_nodes;
    size_t first = (size_t) (page.offset < total ? page.offset : total);
    size_t count = list->n_nodes - first < (size_t) page.limit ? list->n_nodes - first : (size_t) page.limit;
    json_t *items = json_array ();
    for (size_t i = first; i < first + count; i++) {
        json_t *m = gw_node_model (list->nodes[i]);
        if (m)
            json_array_append_new (items, m);
    }
    orrery__node_list__free_unpacked (list, NULL);
    return gw_reply_jsonv (req, 200, gw_page_wrap (gw, req, &page, items, total));
}

enum MHD_Result
gw_api_node_get (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    if (!gw_allowed (gw, req, caller, s_need, NULL, &rc))
        return rc;
    char msg[256];
    Orrery__NodeList *list = NULL;
    int st = s_nodes (gw, params[0], &list, msg, sizeof msg);
    if (st != 200)
        return s_reply_failed (req, st, params[0], msg);
    const Orrery__NodeInfo *node = NULL;
    for (size_t i = 0; i < list->n_nodes && !node; i++)
        if (list->nodes[i]->name && strcmp (list->nodes[i]->name, params[0]) == 0)
            node = list->nodes[i];
    json_t *m = node ? gw_node_model (node) : NULL;
    if (!node)
        rc = s_reply_failed (req, 404, params[0], NULL);
    else
        rc = m ? gw_reply_jsonv (req, 200, m) : gw_reply_error (req, 502, "bad reply from the scheduler");
    orrery__node_list__free_unpacked (list, NULL);
    return rc;
}

/* Cordons (with an optional reason) or uncordons (no body keys) node `name`; 200 with
 * the node's model. */
static enum MHD_Result
s_cordon (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *name, bool cordon)
{
    enum MHD_Result rc;
    if (!gw_allowed (gw, req, caller, s_need, NULL, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    static const char *const cordon_keys[] = { "reason", NULL };
    static const char *const uncordon_keys[] = { NULL };
    json_t *reason = json_is_object (body) ? json_object_get (body, "reason") : NULL;
    if (body && !json_is_object (body))
        rc = gw_reply_error (req, 400, "Body must be a JSON object");
    else if (body && !gw_keys_ok (req, body, cordon ? cordon_keys : uncordon_keys, &rc))
        ;
    else if (reason && !json_is_string (reason) && !json_is_null (reason))
        rc = gw_reply_error (req, 400, "reason must be a string");
    else if (json_is_string (reason) && json_string_length (reason) > GW_CORDON_REASON_MAX)
        rc = gw_reply_errorf (req, 400, "reason must be at most %d bytes", GW_CORDON_REASON_MAX);
    else {
        Orrery__CordonRequest m = ORRERY__CORDON_REQUEST__INIT;
        m.node = (char *) name;
        m.cordon = cordon;
        m.reason = (char *) (json_is_string (reason) ? json_string_value (reason) : "");
        Orrery__NodeInfo *info = NULL;
        char msg[256];
        int st = gw_call (gw, "scheduler", "cordon", &m.base, &orrery__node_info__descriptor,
                          (ProtobufCMessage **) &info, msg, sizeof msg);
        json_t *model = st == 200 ? gw_node_model (info) : NULL;
        if (st != 200)
            rc = s_reply_failed (req, st, name, msg);
        else
            rc = model ? gw_reply_jsonv (req, 200, model) : gw_reply_error (req, 502, "bad reply from the scheduler");
        if (info)
            orrery__node_info__free_unpacked (info, NULL);
    }
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_node_cordon (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_cordon (gw, req, caller, params[0], true);
}

enum MHD_Result
gw_api_node_uncordon (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_cordon (gw, req, caller, params[0], false);
}
