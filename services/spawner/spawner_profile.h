/*  spawner_profile: the server profiles users choose from (KubeSpawner's profile_list).
 *
 *  The setting SERVER_PROFILES is a JSON array of profiles; each says what a server gets
 *  (guarantees, limits, GPUs), where it may run (scheduling profile, node selector,
 *  tolerations) and, for the Kubernetes backend, how its pod looks (image, uid/gid,
 *  labels, storage). Both backends read the same profile: the local backend uses the
 *  resources and placement, the Kubernetes backend everything.
 *
 *      [{"slug": "small", "display_name": "Small", "description": "...", "default": true,
 *        "cpu_guarantee": 0.5, "cpu_limit": 1, "mem_guarantee": "512M", "mem_limit": "1G",
 *        "gpus": 0, "pids_limit": 512, "scheduling_profile": "spread",
 *        "node_selector": {"zone": "a"},
 *        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "user",
 *                         "effect": "NoSchedule"}],
 *        "kubernetes": {"image": "debian-jupyter:latest", "image_pull_policy": "IfNotPresent",
 *                       "uid": 1000, "gid": 100, "fs_gid": 100, "labels": {}, "annotations": {},
 *                       "service_account": "",
 *                       "storage": {"type": "pvc", "capacity": "10Gi", "storage_class": "standard",
 *                                   "access_modes": ["ReadWriteOnce"]}}}]
 *
 *  Without the setting there is one built-in profile, "default", with no guarantees, no
 *  limits and no storage. Every field but "slug" may be left out; an unknown field is an
 *  error (a misspelt "mem_limt" would otherwise silently give no limit). Errors name the
 *  profile's index and the field: `SERVER_PROFILES[1].mem_limit: ...`.
 *
 *  Quantities: memory is a JSON integer of bytes or a string "<number><suffix>" where K, M,
 *  G, T are powers of 1024 (JupyterHub's ByteSpecification, so "1G" = 2^30, not 10^9 as
 *  Kubernetes would read it) and Ki, Mi, Gi, Ti the same; a fraction is allowed ("1.5G")
 *  and the result is truncated to whole bytes. CPU is cores as a JSON number (0.5) or a
 *  string ("0.5", "500m"), kept as millicores, rounded up to a whole millicore as
 *  Kubernetes does. A limit of 0 (or none) means unlimited; a limit below its guarantee
 *  is an error.
 *
 *  Types: the shapes follow the scheduler's (resources in millicores and bytes, labels as
 *  key/value, tolerations as Kubernetes has them) but are the spawner's own: the two meet
 *  only in orrery.PlaceRequest (proto/orrery/scheduler.proto), which is what lib/ shares.
 *  Tolerations are kept as the four strings of that message.
 */
#ifndef SPAWNER_PROFILE_H
#define SPAWNER_PROFILE_H

#include "orr_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The profile settings, for the spawner's settings table (docs/configuration.md). The
 * name is not "PROFILES": the scheduler's scheduling profiles already use that one, and
 * every service of a stack reads the same environment and settings file. */
#define SPAWNER_PROFILE_SETTINGS                                                                                       \
    { "SERVER_PROFILES", NULL,                                                                                         \
      "server profiles users choose from (KubeSpawner's profile_list as JSON, docs/kubernetes.md); "                   \
      "unset = one profile \"default\" without guarantees or limits" }

/* The same as a table of its own, ending with a NULL name. */
extern const orr_setting_t spawner_profile_settings[];

/* Limits (explicit, checked when the setting is read). */
#define SPAWNER_PROFILES_MAX 64
#define SPAWNER_SLUG_MAX 63           /* a DNS label: slugs appear in names and labels */
#define SPAWNER_TEXT_MAX 1024         /* display_name, description, image, paths */
#define SPAWNER_LABELS_MAX 64         /* node_selector, kubernetes.labels, kubernetes.annotations */
#define SPAWNER_TOLERATIONS_MAX 64    /* as many as the scheduler accepts */
#define SPAWNER_ANNOTATION_VALUE_MAX 4096
#define SPAWNER_CPU_MILLIS_MAX (INT64_C (1000) * 1000 * 1000)  /* a million cores */
#define SPAWNER_MEMORY_BYTES_MAX (INT64_C (1) << 60)          /* an exbibyte */
#define SPAWNER_GPUS_MAX 1024
#define SPAWNER_PIDS_MAX (INT64_C (1) << 22)                   /* the kernel's pid_max ceiling */
#define SPAWNER_ID_MAX INT64_C (2147483647)                    /* uid, gid, fs_gid */

/* What a server asks for; 0 in any field = nothing asked (no guarantee, no limit). */
typedef struct {
    int64_t cpu_millis;
    int64_t memory_bytes;
    int64_t gpus;
} spawner_resources_t;

typedef struct {
    char *key;
    char *value;
} spawner_label_t;

typedef struct {
    spawner_label_t *items;
    size_t count;
} spawner_labels_t;

/* As Kubernetes and orrery.Toleration have it: operator "Equal" or "Exists", effect "",
 * "NoSchedule" or "PreferNoSchedule" ("" tolerates every effect). */
typedef struct {
    char *key;
    char *operator_;
    char *value;
    char *effect;
} spawner_toleration_t;

typedef enum {
    SPAWNER_STORAGE_NONE = 0,
    SPAWNER_STORAGE_PVC,              /* a PersistentVolumeClaim per server: claim-{user_server} */
    SPAWNER_STORAGE_NFS,              /* one shared NFS export, each user in a sub-path */
} spawner_storage_type_t;

typedef struct {
    spawner_storage_type_t type;
    /* pvc */
    int64_t capacity_bytes;           /* default 10 GiB */
    char *storage_class;              /* "" = the cluster's default class */
    char **access_modes;              /* NULL-terminated; default {"ReadWriteOnce"} */
    size_t naccess_modes;
    /* nfs */
    char *server;
    char *path;                       /* absolute path of the export */
    char *sub_path;                   /* template: {username}, {servername}, {user_server}; default "{username}" */
} spawner_storage_t;

/* The "kubernetes" part: how the pod looks. Ignored by the local backend. */
typedef struct {
    char *image;                      /* "" = the backend's default image */
    char *image_pull_policy;          /* "", "Always", "IfNotPresent" or "Never" */
    int64_t uid;                      /* -1 = not set (the image's user) */
    int64_t gid;                      /* -1 = not set */
    int64_t fs_gid;                   /* -1 = not set */
    spawner_labels_t labels;          /* added to the pod's (never the four it always has) */
    spawner_labels_t annotations;
    char *service_account;            /* "" = none, and no API token mounted in the pod */
    spawner_storage_t storage;
} spawner_k8s_profile_t;

typedef struct {
    char *slug;
    char *display_name;               /* the slug when not given */
    char *description;                /* "" when not given */
    bool is_default;
    spawner_resources_t guarantees;   /* what the scheduler reserves; Kubernetes requests */
    spawner_resources_t limits;       /* what the backend enforces; gpus = guarantees.gpus */
    int64_t pids_limit;               /* 0 = none (local backend only) */
    char *scheduling_profile;         /* "" = the scheduler's default */
    spawner_labels_t node_selector;
    spawner_toleration_t *tolerations;
    size_t ntolerations;
    spawner_k8s_profile_t kubernetes;
} spawner_profile_t;

typedef struct spawner_profiles_t spawner_profiles_t;

/* Parses SERVER_PROFILES. `json` NULL or blank (or "[]") gives the built-in "default".
 * NULL with the reason in err ("SERVER_PROFILES[2].cpu_limit: ...") on any error.
 * Caller owns the result. */
spawner_profiles_t *spawner_profiles_new (const char *json, char *err, size_t errlen);
void spawner_profiles_destroy (spawner_profiles_t **self_p);

size_t spawner_profiles_count (const spawner_profiles_t *self);
/* The i-th profile in configured order, or NULL past the end. Borrowed. */
const spawner_profile_t *spawner_profiles_at (const spawner_profiles_t *self, size_t i);
/* The profile with this slug; NULL or "" = the default one (the one marked "default",
 * else the first). NULL when there is no such slug. Borrowed. */
const spawner_profile_t *spawner_profiles_find (const spawner_profiles_t *self, const char *slug);

/* The profile a spawn asks for in its JupyterHub user_options (JSON text: the body of
 * POST /users/{name}/server, or what the options form produced): {"profile": "slug"}.
 * No options, an empty object, or no "profile" key = the default profile. NULL with a
 * message fit for a 400 in err when the options are not a JSON object, "profile" is not
 * a string, or no profile has that slug. Borrowed. */
const spawner_profile_t *spawner_profiles_pick (const spawner_profiles_t *self, const char *user_options_json,
                                                char *err, size_t errlen);

/* --- quantities (pure; exposed for tests and for the backends' use) -------------------- */

/* Memory text as above ("512M", "1Gi", "1073741824") into bytes. 0, or -1 with the reason
 * in err. Negative, empty, unknown suffix, or over SPAWNER_MEMORY_BYTES_MAX: -1. */
int spawner_parse_memory (const char *text, int64_t *bytes, char *err, size_t errlen);
/* CPU text ("0.5", "2", "500m") into millicores, rounded up. 0 or -1 as above. */
int spawner_parse_cpu (const char *text, int64_t *millis, char *err, size_t errlen);

/* The environment JupyterHub's Spawner.get_env adds for a profile's resources (reference
 * §9 "optional"): MEM_LIMIT, MEM_GUARANTEE (bytes), CPU_LIMIT, CPU_GUARANTEE (cores, as
 * "0.5"), each only when set. Calls `fn` once per variable in that order. */
typedef void (spawner_env_fn) (void *ctx, const char *name, const char *value);
void spawner_profile_env (const spawner_profile_t *profile, spawner_env_fn *fn, void *ctx);

#endif
