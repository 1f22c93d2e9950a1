/*  sched_cache: one scheduler replica's picture of the nodes.
 *
 *  Placement must look at hundreds of nodes in well under a millisecond, so it cannot read
 *  them from Redis each time: it reads this cache, which heartbeat events, the replies of
 *  this replica's own reservations and a periodic re-read keep close to Redis. Being a
 *  hint is safe because the reservation itself re-checks the fit in Redis (sched_store.c).
 *
 *  Nodes live in an array, because placement walks them in order from a rotating start,
 *  and in a czmq hash from name to array slot. The array only grows: a node that vanishes
 *  stops heartbeating and so stops passing the readiness filter.
 */
#include "scheduler.h"
#include "orr_util.h"

#include <czmq.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sched_cache_t {
    sched_node_t **nodes;
    size_t count, cap;
    zhashx_t *index;          /* name -> slot + 1 (so that 0 is never a stored value) */
    size_t start;
};

sched_cache_t *
sched_cache_new (void)
{
    sched_cache_t *self = orr_zalloc (sizeof *self);
    self->index = zhashx_new ();
    return self;
}

static void
s_node_free (sched_node_t *node)
{
    sched_labels_free (node->labels, node->nlabels);
    sched_taints_free (node->taints, node->ntaints);
    free (node->name);
    free (node);
}

void
sched_cache_destroy (sched_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sched_cache_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        s_node_free (self->nodes[i]);
    free (self->nodes);
    zhashx_destroy (&self->index);
    free (self);
    *self_p = NULL;
}

size_t
sched_cache_count (const sched_cache_t *self)
{
    return self->count;
}

sched_node_t *
sched_cache_at (sched_cache_t *self, size_t i)
{
    return i < self->count ? self->nodes[i] : NULL;
}

sched_node_t *
sched_cache_find (sched_cache_t *self, const char *name)
{
    uintptr_t slot = (uintptr_t) zhashx_lookup (self->index, name);
    return slot ? self->nodes[slot - 1] : NULL;
}

sched_node_t *
sched_cache_upsert (sched_cache_t *self, const char *name)
{
    sched_node_t *node = sched_cache_find (self, name);
    if (node)
        return node;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->nodes = orr_realloc (self->nodes, self->cap * sizeof *self->nodes);
    }
    node = orr_zalloc (sizeof *node);
    node->name = orr_strdup (name);
    self->nodes[self->count++] = node;
    zhashx_insert (self->index, name, (void *) (uintptr_t) self->count);
    return node;
}

size_t
sched_cache_start (const sched_cache_t *self)
{
    return self->count ? self->start % self->count : 0;
}

void
sched_cache_advance (sched_cache_t *self, size_t processed)
{
    if (self->count)
        self->start = (self->start + processed) % self->count;
}

static char *
s_dup_or_empty (const char *s)
{
    return orr_strdup (s ? s : "");
}

void
sched_node_set_meta (sched_node_t *node, const sched_label_t *labels, size_t nlabels, const sched_taint_t *taints,
                     size_t ntaints)
{
    sched_labels_free (node->labels, node->nlabels);
    sched_taints_free (node->taints, node->ntaints);
    node->labels = nlabels ? orr_zalloc (nlabels * sizeof *node->labels) : NULL;
    for (size_t i = 0; i < nlabels; i++) {
        node->labels[i].key = s_dup_or_empty (labels[i].key);
        node->labels[i].value = s_dup_or_empty (labels[i].value);
    }
    node->nlabels = nlabels;
    node->taints = ntaints ? orr_zalloc (ntaints * sizeof *node->taints) : NULL;
    for (size_t i = 0; i < ntaints; i++) {
        node->taints[i].key = s_dup_or_empty (taints[i].key);
        node->taints[i].value = s_dup_or_empty (taints[i].value);
        node->taints[i].effect = taints[i].effect;
    }
    node->ntaints = ntaints;
}
