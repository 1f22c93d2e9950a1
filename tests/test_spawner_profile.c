/*  test_spawner_profile: server profiles (services/spawner/spawner_profile.c) against
 *  values worked out by hand: JupyterHub's byte quantities (K/M/G/T = powers of 1024) and
 *  Kubernetes' (Ki/Mi/Gi/Ti), cores to millicores rounded up, the full example profile
 *  field by field, the built-in default, picking a profile from user_options, the
 *  environment JupyterHub adds for limits, and malformed documents, each with the message
 *  it must produce (profile index and field). Pure functions: no Redis, no bus.
 */
#include "spawner_profile.h"
#include "testutil.h"

#include <string.h>

#define KiB INT64_C (1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)
#define TiB (GiB * 1024)

static void
test_memory (void)
{
    static const struct {
        const char *text;
        int64_t bytes;
    } ok[] = {
        { "0", 0 },
        { "100", 100 },
        { "1K", 1024 },
        { "1Ki", 1024 },
        { "0.5K", 512 },
        { "1.1K", 1126 },                /* 1126.4, truncated as int() does */
        { "512M", 536870912 },           /* 512 * 2^20 */
        { "512Mi", 536870912 },
        { "1G", 1073741824 },            /* JupyterHub: 2^30, not 10^9 */
        { "1Gi", 1073741824 },
        { "1.5G", 1610612736 },          /* 1.5 * 2^30 */
        { "10Gi", 10737418240 },
        { "2T", 2199023255552 },         /* 2 * 2^40 */
        { "1048576T", INT64_C (1) << 60 }, /* 2^20 * 2^40: exactly the maximum */
        { "0.001G", 1073741 },           /* 1073741.824 truncated */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t bytes = -1;
        char err[256] = "";
        CHECK (spawner_parse_memory (ok[i].text, &bytes, err, sizeof err) == 0, "%s: %s", ok[i].text, err);
        CHECK (bytes == ok[i].bytes, "%s = %lld, expected %lld", ok[i].text, (long long) bytes, (long long) ok[i].bytes);
    }
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        { "", "empty" },
        { "1GB", "unknown unit \"GB\"" },
        { "1g", "unknown unit \"g\"" },
        { "1Mb", "unknown unit" },
        { "-1G", "not a memory quantity" },
        { "G", "not a memory quantity" },
        { "1.G", "not a memory quantity" },
        { "1e9", "unknown unit \"e9\"" },
        { "1 G", "unknown unit \" G\"" },
        { "1048577T", "more than 1152921504606846976 bytes" },
        { "99999999999999999999", "not a memory quantity" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t bytes = 7;
        char err[256] = "";
        CHECK (spawner_parse_memory (bad[i].text, &bytes, err, sizeof err) < 0, "\"%s\" accepted", bad[i].text);
        CHECK (strstr (err, bad[i].why), "\"%s\": error \"%s\" lacks \"%s\"", bad[i].text, err, bad[i].why);
        CHECK_EQ_INT (bytes, 7);
    }
}

static void
test_cpu (void)
{
    static const struct {
        const char *text;
        int64_t millis;
    } ok[] = {
        { "0", 0 },     { "0.5", 500 },  { "2", 2000 },       { "500m", 500 },  { "1.25", 1250 },
        { "0.0001", 1 }, /* a tenth of a millicore rounds up to one, as in Kubernetes */
        { "1.2345", 1235 }, { "0.5m", 1 }, { "1000000", INT64_C (1000000000) },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t m = -1;
        char err[256] = "";
        CHECK (spawner_parse_cpu (ok[i].text, &m, err, sizeof err) == 0, "%s: %s", ok[i].text, err);
        CHECK (m == ok[i].millis, "%s = %lld, expected %lld", ok[i].text, (long long) m, (long long) ok[i].millis);
    }
    const char *bad[] = { "", "-1", "1c", "m", "1.5.5", "0.5 ", "1000001", "2M" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t m = 0;
        char err[256] = "";
        CHECK (spawner_parse_cpu (bad[i], &m, err, sizeof err) < 0, "\"%s\" accepted", bad[i]);
        CHECK (err[0], "no message for \"%s\"", bad[i]);
    }
}

static const char *s_example =
    "[{\"slug\":\"small\",\"display_name\":\"Small\",\"description\":\"A small server\",\"default\":true,"
    "  \"cpu_guarantee\":0.5,\"cpu_limit\":1,\"mem_guarantee\":\"512M\",\"mem_limit\":\"1G\",\"gpus\":0,\"pids_limit\":512,"
    "  \"scheduling_profile\":\"spread\",\"node_selector\":{\"zone\":\"a\"},"
    "  \"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"user\",\"effect\":\"NoSchedule\"}],"
    "  \"kubernetes\":{\"image\":\"debian-jupyter:latest\",\"image_pull_policy\":\"IfNotPresent\",\"uid\":1000,\"gid\":100,"
    "     \"fs_gid\":100,\"labels\":{\"team\":\"physics\"},\"annotations\":{\"note\":\"any text: here\"},"
    "     \"service_account\":\"\","
    "     \"storage\":{\"type\":\"pvc\",\"capacity\":\"10Gi\",\"storage_class\":\"standard\","
    "                  \"access_modes\":[\"ReadWriteOnce\"]}}},"
    " {\"slug\":\"shared\",\"cpu_guarantee\":\"250m\",\"mem_guarantee\":1073741824,"
    "  \"kubernetes\":{\"storage\":{\"type\":\"nfs\",\"server\":\"10.0.0.5\",\"path\":\"/export/home\"}}},"
    " {\"slug\":\"gpu\",\"display_name\":\"One GPU\",\"gpus\":1,\"cpu_guarantee\":0.3,\"mem_limit\":\"16Gi\","
    "  \"tolerations\":[{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\"},{\"operator\":\"Exists\"}]}]";

static void
test_example (void)
{
    char err[512] = "";
    spawner_profiles_t *profiles = spawner_profiles_new (s_example, err, sizeof err);
    CHECK (profiles, "%s", err);
    CHECK_EQ_INT (spawner_profiles_count (profiles), 3);

    const spawner_profile_t *p = spawner_profiles_find (profiles, "small");
    CHECK (p && p == spawner_profiles_at (profiles, 0), "small is the first");
    CHECK (spawner_profiles_find (profiles, NULL) == p, "small is the default");
    CHECK (spawner_profiles_find (profiles, "") == p, "\"\" is the default");
    CHECK_EQ_STR (p->display_name, "Small");
    CHECK_EQ_STR (p->description, "A small server");
    CHECK (p->is_default, "default");
    CHECK_EQ_INT (p->guarantees.cpu_millis, 500);
    CHECK_EQ_INT (p->limits.cpu_millis, 1000);
    CHECK_EQ_INT (p->guarantees.memory_bytes, 512 * MiB);
    CHECK_EQ_INT (p->limits.memory_bytes, GiB);
    CHECK_EQ_INT (p->guarantees.gpus, 0);
    CHECK_EQ_INT (p->pids_limit, 512);
    CHECK_EQ_STR (p->scheduling_profile, "spread");
    CHECK_EQ_INT (p->node_selector.count, 1);
    CHECK_EQ_STR (p->node_selector.items[0].key, "zone");
    CHECK_EQ_STR (p->node_selector.items[0].value, "a");
    CHECK_EQ_INT (p->ntolerations, 1);
    CHECK_EQ_STR (p->tolerations[0].key, "dedicated");
    CHECK_EQ_STR (p->tolerations[0].operator_, "Equal");
    CHECK_EQ_STR (p->tolerations[0].value, "user");
    CHECK_EQ_STR (p->tolerations[0].effect, "NoSchedule");
    const spawner_k8s_profile_t *k = &p->kubernetes;
    CHECK_EQ_STR (k->image, "debian-jupyter:latest");
    CHECK_EQ_STR (k->image_pull_policy, "IfNotPresent");
    CHECK_EQ_INT (k->uid, 1000);
    CHECK_EQ_INT (k->gid, 100);
    CHECK_EQ_INT (k->fs_gid, 100);
    CHECK_EQ_INT (k->labels.count, 1);
    CHECK_EQ_STR (k->labels.items[0].key, "team");
    CHECK_EQ_STR (k->annotations.items[0].value, "any text: here");
    CHECK_EQ_STR (k->service_account, "");
    CHECK_EQ_INT (k->storage.type, SPAWNER_STORAGE_PVC);
    CHECK_EQ_INT (k->storage.capacity_bytes, 10 * GiB);
    CHECK_EQ_STR (k->storage.storage_class, "standard");
    CHECK_EQ_INT (k->storage.naccess_modes, 1);
    CHECK_EQ_STR (k->storage.access_modes[0], "ReadWriteOnce");
    CHECK (k->storage.access_modes[1] == NULL, "NULL-terminated");

    p = spawner_profiles_find (profiles, "shared");
    CHECK (p, "shared");
    CHECK_EQ_STR (p->display_name, "shared"); /* the slug when not given */
    CHECK_EQ_STR (p->description, "");
    CHECK (!p->is_default, "not the default");
    CHECK_EQ_INT (p->guarantees.cpu_millis, 250);
    CHECK_EQ_INT (p->limits.cpu_millis, 0);
    CHECK_EQ_INT (p->guarantees.memory_bytes, GiB);
    CHECK_EQ_INT (p->kubernetes.uid, -1);
    CHECK_EQ_STR (p->kubernetes.image, "");
    CHECK_EQ_INT (p->kubernetes.storage.type, SPAWNER_STORAGE_NFS);
    CHECK_EQ_STR (p->kubernetes.storage.server, "10.0.0.5");
    CHECK_EQ_STR (p->kubernetes.storage.path, "/export/home");
    CHECK_EQ_STR (p->kubernetes.storage.sub_path, "{username}");

    p = spawner_profiles_find (profiles, "gpu");
    CHECK (p, "gpu");
    CHECK_EQ_INT (p->guarantees.gpus, 1);
    CHECK_EQ_INT (p->limits.gpus, 1);
    CHECK_EQ_INT (p->guarantees.cpu_millis, 300); /* 0.3 * 1000 is 300.00000000000006 in binary */
    CHECK_EQ_INT (p->limits.memory_bytes, 16 * GiB);
    CHECK_EQ_INT (p->ntolerations, 2);
    CHECK_EQ_STR (p->tolerations[0].operator_, "Exists");
    CHECK_EQ_STR (p->tolerations[1].key, "");
    CHECK_EQ_INT (p->kubernetes.storage.type, SPAWNER_STORAGE_NONE);

    CHECK (spawner_profiles_find (profiles, "large") == NULL, "unknown slug");
    CHECK (spawner_profiles_at (profiles, 3) == NULL, "past the end");
    spawner_profiles_destroy (&profiles);
    CHECK (profiles == NULL, "destroy NULLs the pointer");
    spawner_profiles_destroy (&profiles); /* NULL-safe */
}

static void
test_builtin_default (void)
{
    const char *none[] = { NULL, "", "  \n", "[]" };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        char err[256] = "";
        spawner_profiles_t *profiles = spawner_profiles_new (none[i], err, sizeof err);
        CHECK (profiles, "%s", err);
        CHECK_EQ_INT (spawner_profiles_count (profiles), 1);
        const spawner_profile_t *p = spawner_profiles_find (profiles, NULL);
        CHECK (p, "a default");
        CHECK_EQ_STR (p->slug, "default");
        CHECK (p->is_default, "marked default");
        CHECK_EQ_INT (p->guarantees.cpu_millis, 0);
        CHECK_EQ_INT (p->guarantees.memory_bytes, 0);
        CHECK_EQ_INT (p->limits.cpu_millis, 0);
        CHECK_EQ_INT (p->limits.memory_bytes, 0);
        CHECK_EQ_INT (p->ntolerations, 0);
        CHECK_EQ_INT (p->kubernetes.storage.type, SPAWNER_STORAGE_NONE);
        CHECK_EQ_STR (p->scheduling_profile, "");
        spawner_profiles_destroy (&profiles);
    }
    /* no profile marked: the first is the default (KubeSpawner's rule) */
    char err[256] = "";
    spawner_profiles_t *profiles = spawner_profiles_new ("[{\"slug\":\"a\"},{\"slug\":\"b\"}]", err, sizeof err);
    CHECK (profiles, "%s", err);
    CHECK_EQ_STR (spawner_profiles_find (profiles, NULL)->slug, "a");
    CHECK (spawner_profiles_at (profiles, 0)->is_default, "first marked default");
    spawner_profiles_destroy (&profiles);
    profiles = spawner_profiles_new ("[{\"slug\":\"a\"},{\"slug\":\"b\",\"default\":true}]", err, sizeof err);
    CHECK_EQ_STR (spawner_profiles_find (profiles, NULL)->slug, "b");
    CHECK (!spawner_profiles_at (profiles, 0)->is_default, "only b is the default");
    spawner_profiles_destroy (&profiles);
}

static void
test_pick (void)
{
    char err[512] = "";
    spawner_profiles_t *profiles = spawner_profiles_new (s_example, err, sizeof err);
    CHECK (profiles, "%s", err);
    const struct {
        const char *options;
        const char *slug;
    } ok[] = {
        { NULL, "small" },
        { "", "small" },
        { "{}", "small" },
        { "{\"profile\":\"gpu\"}", "gpu" },
        { "{\"profile\":\"shared\",\"other\":1}", "shared" },
        { "{\"profile\":null}", "small" },
        { "{\"profile\":\"\"}", "small" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        err[0] = '\0';
        const spawner_profile_t *p = spawner_profiles_pick (profiles, ok[i].options, err, sizeof err);
        CHECK (p, "%s: %s", ok[i].options ? ok[i].options : "(null)", err);
        CHECK_EQ_STR (p->slug, ok[i].slug);
    }
    const struct {
        const char *options;
        const char *why;
    } bad[] = {
        { "{\"profile\":\"large\"}", "unknown profile \"large\"; the profiles are: small, shared, gpu" },
        { "{\"profile\":3}", "user_options.profile must be a string" },
        { "[\"gpu\"]", "user_options must be a JSON object" },
        { "{not json", "user_options must be a JSON object" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK (spawner_profiles_pick (profiles, bad[i].options, err, sizeof err) == NULL, "%s accepted", bad[i].options);
        CHECK (strstr (err, bad[i].why), "%s: \"%s\" lacks \"%s\"", bad[i].options, err, bad[i].why);
    }
    /* a small buffer is cut, never overrun */
    char tiny[16];
    CHECK (spawner_profiles_pick (profiles, "{\"profile\":\"large\"}", tiny, sizeof tiny) == NULL, "refused");
    CHECK_EQ_INT (strlen (tiny), sizeof tiny - 1);
    spawner_profiles_destroy (&profiles);
}

typedef struct {
    char text[512];
} env_text_t;

static void
s_collect_env (void *ctx, const char *name, const char *value)
{
    env_text_t *env = ctx;
    size_t len = strlen (env->text);
    snprintf (env->text + len, sizeof env->text - len, "%s=%s;", name, value);
}

static void
test_env (void)
{
    char err[512] = "";
    spawner_profiles_t *profiles = spawner_profiles_new (s_example, err, sizeof err);
    CHECK (profiles, "%s", err);
    env_text_t env = { "" };
    spawner_profile_env (spawner_profiles_find (profiles, "small"), s_collect_env, &env);
    CHECK_EQ_STR (env.text, "MEM_LIMIT=1073741824;MEM_GUARANTEE=536870912;CPU_LIMIT=1.0;CPU_GUARANTEE=0.5;");
    env.text[0] = '\0';
    spawner_profile_env (spawner_profiles_find (profiles, "shared"), s_collect_env, &env);
    CHECK_EQ_STR (env.text, "MEM_GUARANTEE=1073741824;CPU_GUARANTEE=0.25;");
    env.text[0] = '\0';
    spawner_profile_env (spawner_profiles_find (profiles, "gpu"), s_collect_env, &env);
    CHECK_EQ_STR (env.text, "MEM_LIMIT=17179869184;CPU_GUARANTEE=0.3;");
    spawner_profiles_destroy (&profiles);
}

static void
test_malformed (void)
{
    static const struct {
        const char *json;
        const char *why;
    } bad[] = {
        { "{\"slug\":\"a\"}", "SERVER_PROFILES: must be a JSON array of profiles" },
        { "[{\"slug\":\"a\"},", "SERVER_PROFILES: not JSON" },
        { "[{\"slug\":\"a\",\"slug\":\"b\"}]", "SERVER_PROFILES: not JSON" }, /* duplicate key */
        { "[3]", "SERVER_PROFILES[0]: must be an object" },
        { "[{}]", "SERVER_PROFILES[0].slug: required, a string" },
        { "[{\"slug\":\"a\"},{\"slug\":\"Big\"}]", "SERVER_PROFILES[1].slug: \"Big\" must match" },
        { "[{\"slug\":\"-a\"}]", "SERVER_PROFILES[0].slug: \"-a\" must match" },
        { "[{\"slug\":\"a-\"}]", "SERVER_PROFILES[0].slug" },
        { "[{\"slug\":\"a_b\"}]", "SERVER_PROFILES[0].slug" },
        { "[{\"slug\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]", "at most 63 long" },
        { "[{\"slug\":\"a\"},{\"slug\":\"a\"}]", "SERVER_PROFILES[1].slug: \"a\" is also the slug of profile 0" },
        { "[{\"slug\":\"a\",\"default\":true},{\"slug\":\"b\",\"default\":true}]",
          "SERVER_PROFILES[1].default: profile 0 is the default already" },
        { "[{\"slug\":\"a\",\"default\":\"yes\"}]", "SERVER_PROFILES[0].default: must be true or false" },
        { "[{\"slug\":\"a\",\"mem_limt\":\"1G\"}]", "SERVER_PROFILES[0]: unknown field \"mem_limt\"" },
        { "[{\"slug\":\"a\",\"mem_limit\":\"1GB\"}]", "SERVER_PROFILES[0].mem_limit: \"1GB\": unknown unit \"GB\"" },
        { "[{\"slug\":\"a\",\"mem_limit\":-5}]", "SERVER_PROFILES[0].mem_limit: must be from 0" },
        { "[{\"slug\":\"a\",\"mem_limit\":true}]", "SERVER_PROFILES[0].mem_limit: must be a number of bytes" },
        { "[{\"slug\":\"a\",\"cpu_limit\":-1}]", "SERVER_PROFILES[0].cpu_limit: must be from 0" },
        { "[{\"slug\":\"a\",\"cpu_limit\":\"1c\"}]", "SERVER_PROFILES[0].cpu_limit: \"1c\" is not a CPU quantity" },
        { "[{\"slug\":\"a\",\"cpu_guarantee\":2,\"cpu_limit\":1}]",
          "SERVER_PROFILES[0].cpu_limit: 1000m is below cpu_guarantee (2000m)" },
        { "[{\"slug\":\"a\",\"mem_guarantee\":\"2G\",\"mem_limit\":\"1G\"}]",
          "SERVER_PROFILES[0].mem_limit: 1073741824 bytes is below mem_guarantee (2147483648 bytes)" },
        { "[{\"slug\":\"a\",\"gpus\":1.5}]", "SERVER_PROFILES[0].gpus: must be a whole number from 0 to 1024" },
        { "[{\"slug\":\"a\",\"gpus\":2000}]", "SERVER_PROFILES[0].gpus: must be a whole number from 0 to 1024" },
        { "[{\"slug\":\"a\",\"pids_limit\":-1}]", "SERVER_PROFILES[0].pids_limit" },
        { "[{\"slug\":\"a\",\"display_name\":7}]", "SERVER_PROFILES[0].display_name: must be a string" },
        { "[{\"slug\":\"a\",\"scheduling_profile\":\"two words\"}]", "SERVER_PROFILES[0].scheduling_profile" },
        { "[{\"slug\":\"a\",\"node_selector\":[\"zone\"]}]", "SERVER_PROFILES[0].node_selector: must be an object" },
        { "[{\"slug\":\"a\",\"node_selector\":{\"zone\":1}}]",
          "SERVER_PROFILES[0].node_selector: the value of \"zone\" must be a string" },
        { "[{\"slug\":\"a\",\"node_selector\":{\"bad key!\":\"x\"}}]",
          "SERVER_PROFILES[0].node_selector: key \"bad key!\" is not a Kubernetes label key" },
        { "[{\"slug\":\"a\",\"node_selector\":{\"zone\":\"-a\"}}]", "is not a Kubernetes label value" },
        { "[{\"slug\":\"a\",\"tolerations\":{}}]", "SERVER_PROFILES[0].tolerations: must be an array" },
        { "[{\"slug\":\"a\",\"tolerations\":[{\"key\":\"k\",\"operator\":\"In\"}]}]",
          "SERVER_PROFILES[0].tolerations[0]: operator must be \"Equal\" or \"Exists\"" },
        { "[{\"slug\":\"a\",\"tolerations\":[{\"value\":\"v\"}]}]", "SERVER_PROFILES[0].tolerations[0]: operator Equal needs a key" },
        { "[{\"slug\":\"a\",\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\",\"value\":\"v\"}]}]",
          "operator Exists takes no value" },
        { "[{\"slug\":\"a\",\"tolerations\":[{\"key\":\"k\"},{\"key\":\"k\",\"effect\":\"NoExecute\"}]}]",
          "SERVER_PROFILES[0].tolerations[1]: effect must be" },
        { "[{\"slug\":\"a\",\"tolerations\":[{\"key\":\"k\",\"tolerationSeconds\":5}]}]",
          "SERVER_PROFILES[0].tolerations[0]: unknown field \"tolerationSeconds\"" },
        { "[{\"slug\":\"a\",\"kubernetes\":[]}]", "SERVER_PROFILES[0].kubernetes: must be an object" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"imag\":\"x\"}}]", "SERVER_PROFILES[0].kubernetes: unknown field \"imag\"" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"image\":\"a b\"}}]", "SERVER_PROFILES[0].kubernetes.image" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"image_pull_policy\":\"Sometimes\"}}]",
          "SERVER_PROFILES[0].kubernetes.image_pull_policy: must be \"Always\", \"IfNotPresent\" or \"Never\"" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"uid\":-1}}]", "SERVER_PROFILES[0].kubernetes.uid: must be a whole number" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"fs_gid\":\"100\"}}]", "SERVER_PROFILES[0].kubernetes.fs_gid" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"service_account\":\"Hub_SA\"}}]", "kubernetes.service_account" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"labels\":{\"app\":\"mine\"}}}]",
          "SERVER_PROFILES[0].kubernetes.labels: \"app\" is set by the spawner" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"annotations\":{\"a\":\"line\\nbreak\"}}}]",
          "SERVER_PROFILES[0].kubernetes.annotations: the value of \"a\" must be text" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"disk\"}}}]",
          "SERVER_PROFILES[0].kubernetes.storage: \"type\" must be \"pvc\", \"nfs\" or \"none\", not \"disk\"" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{}}}]", "kubernetes.storage: \"type\" must be" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"none\",\"capacity\":\"1Gi\"}}}]",
          "kubernetes.storage: unknown field \"capacity\"" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"pvc\",\"capacity\":\"10GB\"}}}]",
          "SERVER_PROFILES[0].kubernetes.storage.capacity: \"10GB\": unknown unit" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"pvc\",\"capacity\":\"0\"}}}]",
          "kubernetes.storage.capacity: must be more than 0" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"pvc\",\"access_modes\":[\"RWO\"]}}}]",
          "kubernetes.storage.access_modes: item 0 must be" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"pvc\",\"access_modes\":[]}}}]",
          "kubernetes.storage.access_modes: must be an array of 1 to 4" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"pvc\",\"access_modes\":[\"ReadWriteOnce\",\"ReadWriteOnce\"]}}}]",
          "\"ReadWriteOnce\" is listed twice" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"pvc\",\"storage_class\":\"Fast SSD\"}}}]",
          "kubernetes.storage.storage_class" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"nfs\",\"path\":\"/x\"}}}]",
          "SERVER_PROFILES[0].kubernetes.storage.server: an NFS server's name or address is required" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"nfs\",\"server\":\"s\",\"path\":\"x\"}}}]",
          "kubernetes.storage.path: an absolute export path" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"nfs\",\"server\":\"s\",\"path\":\"/x\",\"sub_path\":\"{user}\"}}}]",
          "kubernetes.storage.sub_path: a relative path" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"nfs\",\"server\":\"s\",\"path\":\"/x\",\"sub_path\":\"../{username}\"}}}]",
          "kubernetes.storage.sub_path" },
        { "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"nfs\",\"server\":\"s\",\"path\":\"/x\",\"sub_path\":\"/abs\"}}}]",
          "kubernetes.storage.sub_path" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[512] = "";
        spawner_profiles_t *profiles = spawner_profiles_new (bad[i].json, err, sizeof err);
        CHECK (profiles == NULL, "accepted: %s", bad[i].json);
        CHECK (strstr (err, bad[i].why), "%s\n  error \"%s\"\n  lacks \"%s\"", bad[i].json, err, bad[i].why);
    }
    /* 65 profiles: one over the limit */
    char *many = malloc (65 * 24 + 8);
    strcpy (many, "[");
    for (int i = 0; i < 65; i++)
        sprintf (many + strlen (many), "%s{\"slug\":\"p%d\"}", i ? "," : "", i);
    strcat (many, "]");
    char err[256] = "";
    CHECK (spawner_profiles_new (many, err, sizeof err) == NULL, "65 profiles accepted");
    CHECK (strstr (err, "SERVER_PROFILES: 65 profiles, at most 64"), "%s", err);
    strcpy (strrchr (many, ',') , "]"); /* 64 is fine */
    spawner_profiles_t *profiles = spawner_profiles_new (many, err, sizeof err);
    CHECK (profiles, "%s", err);
    CHECK_EQ_INT (spawner_profiles_count (profiles), 64);
    spawner_profiles_destroy (&profiles);
    free (many);
    /* good edge cases */
    const char *good[] = {
        "[{\"slug\":\"a\",\"cpu_guarantee\":1,\"cpu_limit\":1,\"mem_guarantee\":\"1G\",\"mem_limit\":\"1Gi\"}]",
        "[{\"slug\":\"a\",\"cpu_guarantee\":1,\"mem_guarantee\":\"1G\"}]",          /* no limit: unlimited */
        "[{\"slug\":\"a\",\"node_selector\":{\"kubernetes.io/arch\":\"amd64\",\"empty\":\"\"}}]",
        "[{\"slug\":\"0\"}]",
        "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"nfs\",\"server\":\"nfs.example.org\",\"path\":\"/x\","
        "\"sub_path\":\"homes/{username}/{servername}\"}}}]",
        "[{\"slug\":\"a\",\"kubernetes\":{\"storage\":{\"type\":\"none\"},\"uid\":null}}]",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        profiles = spawner_profiles_new (good[i], err, sizeof err);
        CHECK (profiles, "%s: %s", good[i], err);
        spawner_profiles_destroy (&profiles);
    }
}

int
main (void)
{
    test_memory ();
    test_cpu ();
    test_example ();
    test_builtin_default ();
    test_pick ();
    test_env ();
    test_malformed ();
    printf ("test_spawner_profile: ok\n");
    return 0;
}
