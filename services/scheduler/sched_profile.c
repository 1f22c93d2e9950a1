/*  sched_profile: scheduling profiles, each a named set of score weights.
 *
 *  Two are built in. `spread` (the default) is paper 1's LeastRequested + Balanced +
 *  SelectorSpread with equal weights, plus PreferNoSchedule at Kubernetes' TaintToleration
 *  weight of 3: new servers go where the most room is left, so the nodes fill evenly.
 *  `pack` is z2jh's user-scheduler: MostAllocated alone (and the soft taints), so a node
 *  fills before the next one gets a server and an autoscaler can remove the empty ones.
 *  Operators add or replace profiles with PROFILES, a JSON object
 *  {"name": {"least_allocated": 1, "most_allocated": 0, "balanced_allocation": 1,
 *            "group_spread": 1, "prefer_no_schedule": 3}}  (missing weights are 0).
 */
#include "sched.h"
#include "orr_util.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define PROFILES_MAX 32
#define WEIGHT_MAX 1000

struct sched_profiles_t {
    sched_profile_t profiles[PROFILES_MAX];
    size_t count;
    size_t default_index;
};

static const sched_profile_t s_builtin[] = {
    { "spread", 1, 0, 1, 1, 3 },
    { "pack", 0, 1, 0, 0, 3 },
};

static sched_profile_t *
s_slot (sched_profiles_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->profiles[i].name, name) == 0)
            return &self->profiles[i];
    if (self->count == PROFILES_MAX)
        return NULL;
    sched_profile_t *p = &self->profiles[self->count++];
    memset (p, 0, sizeof *p);
    snprintf (p->name, sizeof p->name, "%s", name);
    return p;
}

static int
s_parse (sched_profiles_t *self, const char *json, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loads (json, 0, &jerr);
    if (!doc || !json_is_object (doc)) {
        snprintf (err, errlen, "PROFILES: not a JSON object (%s)", doc ? "wrong type" : jerr.text);
        json_decref (doc);
        return -1;
    }
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        { "least_allocated", offsetof (sched_profile_t, least_allocated) },
        { "most_allocated", offsetof (sched_profile_t, most_allocated) },
        { "balanced_allocation", offsetof (sched_profile_t, balanced_allocation) },
        { "group_spread", offsetof (sched_profile_t, group_spread) },
        { "prefer_no_schedule", offsetof (sched_profile_t, prefer_no_schedule) },
    };
    const char *name;
    json_t *weights;
    int rc = 0;
    json_object_foreach (doc, name, weights) {
        if (!*name || strlen (name) >= sizeof ((sched_profile_t *) 0)->name || !json_is_object (weights)) {
            snprintf (err, errlen, "PROFILES: profile \"%s\": a name of 1 to 63 bytes mapping to an object", name);
            rc = -1;
            break;
        }
        sched_profile_t *p = s_slot (self, name);
        if (!p) {
            snprintf (err, errlen, "PROFILES: more than %d profiles", PROFILES_MAX);
            rc = -1;
            break;
        }
        snprintf (p->name, sizeof p->name, "%s", name);
        memset ((char *) p + sizeof p->name, 0, sizeof *p - sizeof p->name);
        const char *key;
        json_t *value;
        json_object_foreach (weights, key, value) {
            size_t f = 0;
            while (f < sizeof fields / sizeof fields[0] && strcmp (fields[f].key, key) != 0)
                f++;
            if (f == sizeof fields / sizeof fields[0] || !json_is_integer (value) || json_integer_value (value) < 0
                || json_integer_value (value) > WEIGHT_MAX) {
                snprintf (err, errlen,
                          "PROFILES: profile \"%s\": \"%s\" must be one of least_allocated, most_allocated, "
                          "balanced_allocation, group_spread, prefer_no_schedule, with an integer weight 0..%d",
                          name, key, WEIGHT_MAX);
                rc = -1;
                break;
            }
            *(int *) ((char *) p + fields[f].offset) = (int) json_integer_value (value);
        }
        if (rc)
            break;
    }
    json_decref (doc);
    return rc;
}

sched_profiles_t *
sched_profiles_new (const char *json, const char *default_name, char *err, size_t errlen)
{
    sched_profiles_t *self = orr_zalloc (sizeof *self);
    for (size_t i = 0; i < sizeof s_builtin / sizeof s_builtin[0]; i++)
        self->profiles[self->count++] = s_builtin[i];
    if (json && *json && s_parse (self, json, err, errlen) != 0) {
        sched_profiles_destroy (&self);
        return NULL;
    }
    const char *want = default_name && *default_name ? default_name : "spread";
    for (self->default_index = 0; self->default_index < self->count; self->default_index++)
        if (strcmp (self->profiles[self->default_index].name, want) == 0)
            return self;
    snprintf (err, errlen, "DEFAULT_PROFILE: no profile named \"%s\"", want);
    sched_profiles_destroy (&self);
    return NULL;
}

void
sched_profiles_destroy (sched_profiles_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

const sched_profile_t *
sched_profiles_find (const sched_profiles_t *self, const char *name)
{
    if (!name || !*name)
        return &self->profiles[self->default_index];
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->profiles[i].name, name) == 0)
            return &self->profiles[i];
    return NULL;
}
