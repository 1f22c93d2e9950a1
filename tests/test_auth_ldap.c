/*  The auth service's LDAP authenticator against a real slapd (tests/fixtures/slapd, whose
 *  header lists the users and groups): RFC 4514/4515 escaping; template binds, searches
 *  (with and without a service account) and both together; groups of the three kinds;
 *  empty passwords refused before any bind (proved against a server that accepts them);
 *  injection attempts with a strict and with a permissive username pattern; bad options;
 *  the settings table; and a directory that hangs (SIGSTOP), stops, and comes back on
 *  the same port and data, with every call bounded by the timeout.
 */
#include "auth_ldap.h"
#include "orr_config.h"
#include "orr_util.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ldap.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUFFIX "dc=orrery,dc=test"
#define PEOPLE "ou=people," SUFFIX
#define GROUPS "ou=groups," SUFFIX
#define READER "cn=reader," SUFFIX
#define TIMEOUT_MS 1000
/* what a call may take beyond the timeout: scheduling, ASan, slow CI */
#define SLACK_MS 1500

static char *s_dir;          /* the fixture's directory (config, data, pid, logs) */
static int s_port;
static char s_url[64];
static bool s_slapd_running;
static bool s_cleaning_up;

/* Runs the fixture script; its output goes to DIR/fixture.log, shown on failure. */
static int
s_fixture (const char *action)
{
    char port[16];
    snprintf (port, sizeof port, "%d", s_port);
    char *owner = orr_sprintf ("FIXTURE_OWNER_PID=%d", (int) getpid ());
    char *log = orr_sprintf ("%s/fixture.log", s_dir);
    char *argv[] = { ORRERY_SLAPD_FIXTURE, (char *) action, s_dir, strcmp (action, "start") == 0 ? port : NULL, NULL };
    char *env[] = { owner, NULL };
    pid_t pid = tu_spawn (argv, env, log);
    int status = tu_stop (pid, 0, 30000);   /* signal 0: just wait */
    int code = WIFEXITED (status) ? WEXITSTATUS (status) : -1;
    if (code != 0 && !s_cleaning_up) {
        fprintf (stderr, "fixture %s exited %d; its output:\n", action, code);
        FILE *f = fopen (log, "r");
        char line[512];
        while (f && fgets (line, sizeof line, f))
            fputs (line, stderr);
        if (f)
            fclose (f);
    }
    unlink (log);
    free (log);
    free (owner);
    return code;
}

/* On s_port; with `new_port`, on a fresh free port per attempt (another test may bind
 * the one orr_free_port gave us first). */
static void
s_slapd_start (bool new_port)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        if (new_port) {
            s_port = orr_free_port ();
            CHECK (s_port > 0 && s_port < 32768);
        }
        if (s_fixture ("start") == 0) {
            s_slapd_running = true;
            snprintf (s_url, sizeof s_url, "ldap://127.0.0.1:%d", s_port);
            return;
        }
        orr_sleep_ms (200);
    }
    CHECK (false, "slapd would not start (port %d)", s_port);
}

static void
s_slapd_stop (void)
{
    CHECK_EQ_INT (s_fixture ("stop"), 0);
    s_slapd_running = false;
}

static pid_t
s_slapd_pid (void)
{
    char *path = orr_sprintf ("%s/slapd.pid", s_dir);
    FILE *f = fopen (path, "r");
    free (path);
    int pid = -1;
    CHECK (f && fscanf (f, "%d", &pid) == 1, "no slapd.pid");
    fclose (f);
    return pid;
}

/* kill() returns before every thread of the target has stopped; a connection accepted
 * meanwhile would be answered. Waits until each thread shows state T. */
static void
s_wait_stopped (pid_t pid)
{
    char *tasks = orr_sprintf ("/proc/%d/task", (int) pid);
    int64_t deadline = orr_mono_ms () + 5000;
    bool all_stopped = false;
    while (!all_stopped && orr_mono_ms () < deadline) {
        DIR *d = opendir (tasks);
        CHECK (d, "%s: %s", tasks, strerror (errno));
        all_stopped = true;
        for (struct dirent *e = readdir (d); e && all_stopped; e = readdir (d)) {
            if (e->d_name[0] == '.')
                continue;
            char *stat_path = orr_sprintf ("%s/%s/stat", tasks, e->d_name);
            FILE *f = fopen (stat_path, "r");
            char line[512] = "";
            if (f) {
                if (!fgets (line, sizeof line, f))
                    line[0] = '\0';
                fclose (f);
            }
            free (stat_path);
            const char *after_name = strrchr (line, ')');   /* "tid (comm) S ..." */
            if (f && (!after_name || after_name[1] != ' ' || after_name[2] != 'T'))
                all_stopped = false;
        }
        closedir (d);
        if (!all_stopped)
            orr_sleep_ms (5);
    }
    CHECK (all_stopped, "slapd %d did not stop", (int) pid);
    free (tasks);
}

/* Also runs when a CHECK fails (exit), so no slapd outlives the test. */
static void
s_cleanup (void)
{
    s_cleaning_up = true;
    if (s_slapd_running) {
        s_fixture ("stop");
        s_slapd_running = false;
    }
    tu_tmpdir_remove (&s_dir);
}

/* One login; err must mention `err_part` when given. */
static auth_ldap_result_t
s_login (auth_ldap_t *a, const char *user, size_t len, const char *password, const char *err_part)
{
    char err[256] = "untouched";
    auth_ldap_result_t r = auth_ldap_authenticate (a, user, len, password, err, sizeof err);
    if (r == AUTH_LDAP_OK)
        CHECK_EQ_STR (err, "");
    else
        CHECK (err[0] && strcmp (err, "untouched") != 0, "no reason given for user '%s'", user);
    if (err_part)
        CHECK (strstr (err, err_part), "user '%s': err \"%s\" does not mention \"%s\"", user, err, err_part);
    return r;
}

#define EXPECT(a, user, password, expected)                                                \
    CHECK_EQ_INT (s_login ((a), (user), strlen (user), (password), NULL), (expected))

static void
s_check_escaping (void)
{
    char *s;
#define ESCAPES(fn, in, len, out)                                                          \
    s = fn ((in), (len));                                                                  \
    CHECK_EQ_STR (s, (out));                                                               \
    free (s)
    /* RFC 4515 */
    ESCAPES (auth_ldap_escape_filter, "alice", 5, "alice");
    ESCAPES (auth_ldap_escape_filter, "", 0, "");
    ESCAPES (auth_ldap_escape_filter, "*", 1, "\\2a");
    ESCAPES (auth_ldap_escape_filter, "a*b(c)d\\e", 9, "a\\2ab\\28c\\29d\\5ce");
    ESCAPES (auth_ldap_escape_filter, "*)(uid=*", 8, "\\2a\\29\\28uid=\\2a");
    ESCAPES (auth_ldap_escape_filter, "alice\0x", 7, "alice\\00x");
    ESCAPES (auth_ldap_escape_filter, "\0", 1, "\\00");
    ESCAPES (auth_ldap_escape_filter, "x,y o'brien #+=;<>\"", 19, "x,y o'brien #+=;<>\"");   /* not special in filters */
    ESCAPES (auth_ldap_escape_filter, "\xc3\xa9", 2, "\xc3\xa9");                            /* UTF-8 passes */
    ESCAPES (auth_ldap_escape_filter, "uid=x\\2Cy", 9, "uid=x\\5c2Cy");                      /* a DN inside a filter */
    /* RFC 4514 */
    ESCAPES (auth_ldap_escape_dn, "alice", 5, "alice");
    ESCAPES (auth_ldap_escape_dn, "", 0, "");
    ESCAPES (auth_ldap_escape_dn, "x,y", 3, "x\\,y");
    ESCAPES (auth_ldap_escape_dn, "o'brien", 7, "o'brien");
    ESCAPES (auth_ldap_escape_dn, "a+b\"c\\d<e>f;g=h", 15, "a\\+b\\\"c\\\\d\\<e\\>f\\;g\\=h");
    ESCAPES (auth_ldap_escape_dn, " lead", 5, "\\ lead");
    ESCAPES (auth_ldap_escape_dn, "trail ", 6, "trail\\ ");
    ESCAPES (auth_ldap_escape_dn, "in side", 7, "in side");
    ESCAPES (auth_ldap_escape_dn, " ", 1, "\\ ");
    ESCAPES (auth_ldap_escape_dn, "  ", 2, "\\ \\ ");
    ESCAPES (auth_ldap_escape_dn, "#hash", 5, "\\#hash");
    ESCAPES (auth_ldap_escape_dn, "mid#dle#", 8, "mid#dle#");
    ESCAPES (auth_ldap_escape_dn, "alice\0x", 7, "alice\\00x");
    ESCAPES (auth_ldap_escape_dn, "*()", 3, "*()");   /* not special in DNs */
    ESCAPES (auth_ldap_escape_dn, "admin,ou=x", 10, "admin\\,ou\\=x");
#undef ESCAPES
}

static void
s_check_bad_options (void)
{
    char *people[] = { "uid={username}," PEOPLE, NULL };
    char *no_token[] = { "uid=alice," PEOPLE, NULL };
    char *bad_group[] = { "not a dn", NULL };
    auth_ldap_opts_t good = { .url = s_url, .bind_dn_templates = people, .timeout_ms = TIMEOUT_MS };
    auth_ldap_t *a = auth_ldap_new (&good);
    CHECK (a);
    auth_ldap_destroy (&a);
    CHECK (a == NULL);
    auth_ldap_destroy (&a);   /* harmless twice */

    auth_ldap_opts_t o;
#define REFUSED(...)                                                                       \
    o = good;                                                                              \
    __VA_ARGS__;                                                                           \
    a = auth_ldap_new (&o);                                                                \
    CHECK (a == NULL, "accepted: %s", #__VA_ARGS__);
    REFUSED (o.url = NULL);
    REFUSED (o.url = "");
    REFUSED (o.url = "http://127.0.0.1:1/");
    REFUSED (o.bind_dn_templates = NULL);                       /* and no search base */
    REFUSED (o.bind_dn_templates = no_token);
    REFUSED (o.username_pattern = "([a-z");
    REFUSED (o.search_base = "ou=people," SUFFIX; o.search_filter = "(uid=alice)");
    REFUSED (o.search_base = "not a dn");
    REFUSED (o.search_base = PEOPLE; o.user_attribute = "uid)(x");
    REFUSED (o.search_base = PEOPLE; o.search_bind_dn = READER);   /* no password */
    REFUSED (o.search_base = PEOPLE; o.search_bind_dn = READER; o.search_bind_password = "");
    REFUSED (o.allowed_groups = bad_group);
    REFUSED (o.url = "ldaps://127.0.0.1:1/"; o.starttls = true);
    REFUSED (o.ca_file = "/nonexistent/ca.pem");
    REFUSED (o.timeout_ms = -1);
#undef REFUSED
    CHECK_EQ_INT (auth_ldap_authenticate (NULL, "alice", 5, "alice-pw", NULL, 0), AUTH_LDAP_UNAVAILABLE);
}

/* The hazard the empty-password rule exists for: this slapd accepts "DN + empty
 * password" as an anonymous bind, so an authenticator that passed it on would say OK. */
static void
s_check_server_accepts_empty_password (void)
{
    LDAP *ld = NULL;
    CHECK_EQ_INT (ldap_initialize (&ld, s_url), LDAP_SUCCESS);
    int version = LDAP_VERSION3;
    ldap_set_option (ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    struct berval empty = { 0, "" };
    CHECK_EQ_INT (ldap_sasl_bind_s (ld, "uid=alice," PEOPLE, LDAP_SASL_SIMPLE, &empty, NULL, NULL, NULL), LDAP_SUCCESS);
    ldap_unbind_ext_s (ld, NULL, NULL);
}

static const char *s_injections[] = { "*", "*)(uid=*", "admin)(|(uid=*", "alice*", "alice)", "(uid=alice)",
                                      "alice,ou=people," SUFFIX, "uid=alice," PEOPLE, "al*ce", "\\61lice", NULL };

/* Every injection attempt, with alice's password, is refused, as is a NUL inside a name. */
static void
s_check_injections (auth_ldap_t *a)
{
    for (const char **u = s_injections; *u; u++)
        CHECK_EQ_INT (s_login (a, *u, strlen (*u), "alice-pw", NULL), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "alice\0x", 7, "alice-pw", "NUL"), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "alice\0", 6, "alice-pw", "NUL"), AUTH_LDAP_DENIED);
    /* the same names that must be refused are not refused for a boring reason */
    EXPECT (a, "alice", "alice-pw", AUTH_LDAP_OK);
}

static void
s_check_common (auth_ldap_t *a)
{
    EXPECT (a, "alice", "alice-pw", AUTH_LDAP_OK);
    EXPECT (a, "bob", "bob-pw", AUTH_LDAP_OK);
    EXPECT (a, "x,y", "special-pw", AUTH_LDAP_OK);       /* DN escaping (or a search) at work */
    EXPECT (a, "o'brien", "special-pw", AUTH_LDAP_OK);
    EXPECT (a, "alice", "wrong", AUTH_LDAP_DENIED);
    EXPECT (a, "alice", "bob-pw", AUTH_LDAP_DENIED);
    EXPECT (a, "nobody", "alice-pw", AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "alice", 5, "", "empty password"), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "alice", 5, NULL, "empty password"), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "", 0, "alice-pw", NULL), AUTH_LDAP_DENIED);
    /* names the default pattern refuses (with the right password where there is one) */
    CHECK_EQ_INT (s_login (a, " alice", 6, "alice-pw", "pattern"), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "alice ", 6, "alice-pw", "pattern"), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "alice!", 6, "alice-pw", "pattern"), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (a, "al\nice", 6, "alice-pw", "pattern"), AUTH_LDAP_DENIED);
    char long_name[AUTH_LDAP_USERNAME_MAX + 2];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK_EQ_INT (s_login (a, long_name, strlen (long_name), "alice-pw", "longer"), AUTH_LDAP_DENIED);
}

typedef struct {
    auth_ldap_t *auth;
    int failures;
} login_thread_t;

static void *
s_login_thread (void *arg)
{
    login_thread_t *t = arg;
    for (int i = 0; i < 15; i++) {
        const char *user = i % 2 ? "alice" : "bob";
        const char *password = i % 3 == 0 ? "wrong" : i % 2 ? "alice-pw" : "bob-pw";
        auth_ldap_result_t want = i % 3 == 0 ? AUTH_LDAP_DENIED : AUTH_LDAP_OK;
        if (auth_ldap_authenticate (t->auth, user, strlen (user), password, NULL, 0) != want)
            t->failures++;
    }
    return NULL;
}

/* A call that must fail fast or within the timeout, with a clear message. */
static void
s_check_unavailable (auth_ldap_t *a, const char *what)
{
    char err[256];
    int64_t start = orr_mono_ms ();
    auth_ldap_result_t r = auth_ldap_authenticate (a, "alice", 5, "alice-pw", err, sizeof err);
    int64_t took = orr_mono_ms () - start;
    fprintf (stderr, "%s: %d after %lld ms: %s\n", what, (int) r, (long long) took, err);
    CHECK_EQ_INT (r, AUTH_LDAP_UNAVAILABLE);
    CHECK (strstr (err, "LDAP server unavailable: "), "err: %s", err);
    CHECK (took <= TIMEOUT_MS + SLACK_MS, "%s took %lld ms", what, (long long) took);
}

int
main (void)
{
    /* libldap writes sockets with write(2); every service ignores SIGPIPE (orr_signal) */
    signal (SIGPIPE, SIG_IGN);
    int64_t test_start = orr_mono_ms ();
    s_check_escaping ();

    s_dir = tu_tmpdir ("ldap");
    atexit (s_cleanup);
    s_slapd_start (true);
    s_check_server_accepts_empty_password ();
    s_check_bad_options ();

    /* templates: a DN made from the name, then a bind */
    char *people[] = { "uid={username}," PEOPLE, NULL };
    auth_ldap_opts_t template_opts = { .url = s_url, .bind_dn_templates = people, .timeout_ms = TIMEOUT_MS };
    auth_ldap_t *by_template = auth_ldap_new (&template_opts);
    CHECK (by_template);
    s_check_common (by_template);
    s_check_injections (by_template);
    /* a permissive pattern leaves only the escaping between the name and the directory */
    auth_ldap_opts_t loose = template_opts;
    loose.username_pattern = ".*";
    auth_ldap_t *by_template_loose = auth_ldap_new (&loose);
    CHECK (by_template_loose);
    s_check_injections (by_template_loose);
    /* several templates, tried in order */
    char *two_templates[] = { "uid={username},ou=nowhere," SUFFIX, "uid={username}," PEOPLE, NULL };
    auth_ldap_opts_t two = template_opts;
    two.bind_dn_templates = two_templates;
    auth_ldap_t *by_second_template = auth_ldap_new (&two);
    CHECK (by_second_template);
    EXPECT (by_second_template, "carol", "carol-pw", AUTH_LDAP_OK);
    EXPECT (by_second_template, "carol", "alice-pw", AUTH_LDAP_DENIED);
    auth_ldap_destroy (&by_second_template);
    /* a stricter pattern is applied */
    auth_ldap_opts_t strict = template_opts;
    strict.username_pattern = "[a-z]+";
    auth_ldap_t *by_template_strict = auth_ldap_new (&strict);
    CHECK (by_template_strict);
    EXPECT (by_template_strict, "alice", "alice-pw", AUTH_LDAP_OK);
    CHECK_EQ_INT (s_login (by_template_strict, "o'brien", 7, "special-pw", "pattern"), AUTH_LDAP_DENIED);
    CHECK_EQ_INT (s_login (by_template_strict, "alice1", 6, "alice-pw", "pattern"), AUTH_LDAP_DENIED);
    auth_ldap_destroy (&by_template_strict);

    /* search: the reader finds the DN, then a bind as it */
    auth_ldap_opts_t search_opts = { .url = s_url, .search_base = PEOPLE, .search_bind_dn = READER,
                                     .search_bind_password = "reader-pw", .timeout_ms = TIMEOUT_MS };
    auth_ldap_t *by_search = auth_ldap_new (&search_opts);
    CHECK (by_search);
    s_check_common (by_search);
    s_check_injections (by_search);
    loose = search_opts;
    loose.username_pattern = ".*";
    auth_ldap_t *by_search_loose = auth_ldap_new (&loose);
    CHECK (by_search_loose);
    /* unescaped, "alice*" would find alice alone and let alice's password in */
    s_check_injections (by_search_loose);
    auth_ldap_destroy (&by_search_loose);
    /* a name that matches two entries is refused, not resolved to the first */
    auth_ldap_opts_t dept = search_opts;
    dept.user_attribute = "departmentNumber";
    auth_ldap_t *by_department = auth_ldap_new (&dept);
    CHECK (by_department);
    CHECK_EQ_INT (s_login (by_department, "research", 8, "alice-pw", "several"), AUTH_LDAP_DENIED);
    auth_ldap_destroy (&by_department);
    /* a custom filter */
    auth_ldap_opts_t custom = search_opts;
    custom.search_filter = "(&(objectClass=inetOrgPerson)({user_attribute}={username}))";
    auth_ldap_t *by_custom_filter = auth_ldap_new (&custom);
    CHECK (by_custom_filter);
    EXPECT (by_custom_filter, "bob", "bob-pw", AUTH_LDAP_OK);
    EXPECT (by_custom_filter, "bob", "alice-pw", AUTH_LDAP_DENIED);
    auth_ldap_destroy (&by_custom_filter);
    /* anonymous lookups may not see ou=people here, and slapd hides it ("No such object"):
     * a configuration problem, so unavailable (never a login) */
    auth_ldap_opts_t anonymous = search_opts;
    anonymous.search_bind_dn = NULL;
    anonymous.search_bind_password = NULL;
    auth_ldap_t *by_anonymous_search = auth_ldap_new (&anonymous);
    CHECK (by_anonymous_search);
    CHECK_EQ_INT (s_login (by_anonymous_search, "bob", 3, "bob-pw", "No such object"), AUTH_LDAP_UNAVAILABLE);
    auth_ldap_destroy (&by_anonymous_search);
    /* a wrong service password or a missing base is the operator's problem: unavailable */
    auth_ldap_opts_t misconfigured = search_opts;
    misconfigured.search_bind_password = "wrong";
    auth_ldap_t *bad_reader = auth_ldap_new (&misconfigured);
    CHECK (bad_reader);
    CHECK_EQ_INT (s_login (bad_reader, "bob", 3, "bob-pw", "unavailable"), AUTH_LDAP_UNAVAILABLE);
    auth_ldap_destroy (&bad_reader);
    misconfigured = search_opts;
    misconfigured.search_base = "ou=nowhere," SUFFIX;
    auth_ldap_t *bad_base = auth_ldap_new (&misconfigured);
    CHECK (bad_base);
    CHECK_EQ_INT (s_login (bad_base, "bob", 3, "bob-pw", "unavailable"), AUTH_LDAP_UNAVAILABLE);
    auth_ldap_destroy (&bad_base);
    /* a template that fails falls back to the search */
    char *nowhere[] = { "uid={username},ou=nowhere," SUFFIX, NULL };
    auth_ldap_opts_t both = search_opts;
    both.bind_dn_templates = nowhere;
    auth_ldap_t *by_both = auth_ldap_new (&both);
    CHECK (by_both);
    EXPECT (by_both, "bob", "bob-pw", AUTH_LDAP_OK);
    EXPECT (by_both, "bob", "wrong", AUTH_LDAP_DENIED);
    auth_ldap_destroy (&by_both);

    /* groups: groupOfNames checked on the user's own bind (templates, no service account) */
    char *researchers[] = { "cn=researchers," GROUPS, NULL };
    auth_ldap_opts_t group_opts = template_opts;
    group_opts.allowed_groups = researchers;
    auth_ldap_t *researchers_only = auth_ldap_new (&group_opts);
    CHECK (researchers_only);
    EXPECT (researchers_only, "alice", "alice-pw", AUTH_LDAP_OK);
    EXPECT (researchers_only, "bob", "bob-pw", AUTH_LDAP_OK);
    CHECK_EQ_INT (s_login (researchers_only, "carol", 5, "carol-pw", "group"), AUTH_LDAP_DENIED);
    EXPECT (researchers_only, "carol", "wrong", AUTH_LDAP_DENIED);
    EXPECT (researchers_only, "alice", "wrong", AUTH_LDAP_DENIED);
    auth_ldap_destroy (&researchers_only);
    /* posixGroup (memberUid) and groupOfUniqueNames, checked by the service account */
    char *staff_and_leads[] = { "cn=researchers," GROUPS, "cn=staff," GROUPS, "cn=leads," GROUPS, NULL };
    group_opts = search_opts;
    group_opts.allowed_groups = staff_and_leads;
    auth_ldap_t *three_groups = auth_ldap_new (&group_opts);
    CHECK (three_groups);
    EXPECT (three_groups, "carol", "carol-pw", AUTH_LDAP_OK);     /* memberUid */
    EXPECT (three_groups, "x,y", "special-pw", AUTH_LDAP_OK);     /* uniqueMember, escaped DN in the filter */
    EXPECT (three_groups, "alice", "alice-pw", AUTH_LDAP_OK);
    EXPECT (three_groups, "o'brien", "special-pw", AUTH_LDAP_DENIED);
    auth_ldap_destroy (&three_groups);
    char *leads_or_missing[] = { "cn=missing," GROUPS, "cn=leads," GROUPS, NULL };
    group_opts.allowed_groups = leads_or_missing;
    auth_ldap_t *leads_only = auth_ldap_new (&group_opts);
    CHECK (leads_only);
    EXPECT (leads_only, "x,y", "special-pw", AUTH_LDAP_OK);
    EXPECT (leads_only, "alice", "alice-pw", AUTH_LDAP_DENIED);
    EXPECT (leads_only, "carol", "carol-pw", AUTH_LDAP_DENIED);
    auth_ldap_destroy (&leads_only);

    /* the settings table and the constructor from a config */
    orr_config_t *config = orr_config_new ("test", "test", auth_ldap_settings);
    char *config_argv[] = { "test", NULL };
    CHECK_EQ_INT (orr_config_load (config, 1, config_argv), 0);
    CHECK_EQ_STR (orr_config_get (config, "LDAP_TIMEOUT_MS"), "5000");
    CHECK_EQ_STR (orr_config_get (config, "LDAP_USER_ATTRIBUTE"), "uid");
    CHECK_EQ_STR (orr_config_get (config, "LDAP_TLS_VERIFY"), "true");
    CHECK (auth_ldap_new_from_config (config) == NULL);   /* no URL */
    orr_config_set (config, "LDAP_URL", s_url);
    CHECK (auth_ldap_new_from_config (config) == NULL);   /* no template, no base */
    orr_config_set (config, "LDAP_BIND_DN_TEMPLATE", "uid={username},ou=nowhere," SUFFIX "; uid={username}," PEOPLE);
    orr_config_set (config, "LDAP_ALLOWED_GROUPS", "cn=other," GROUPS ";cn=researchers," GROUPS);
    orr_config_set (config, "LDAP_TIMEOUT_MS", "2000");
    orr_config_set (config, "LDAP_TLS_VERIFY", "flase");
    CHECK (auth_ldap_new_from_config (config) == NULL);   /* a typo must not turn verification off */
    orr_config_set (config, "LDAP_TLS_VERIFY", "true");
    auth_ldap_t *from_config = auth_ldap_new_from_config (config);
    CHECK (from_config);
    EXPECT (from_config, "bob", "bob-pw", AUTH_LDAP_OK);
    EXPECT (from_config, "carol", "carol-pw", AUTH_LDAP_OK);
    EXPECT (from_config, "x,y", "special-pw", AUTH_LDAP_DENIED);   /* in no allowed group */
    auth_ldap_destroy (&from_config);
    orr_config_destroy (&config);

    /* StartTLS against a server without TLS: refused, and said so */
    auth_ldap_opts_t tls_opts = template_opts;
    tls_opts.starttls = true;
    tls_opts.tls_verify = true;
    auth_ldap_t *with_starttls = auth_ldap_new (&tls_opts);
    CHECK (with_starttls);
    s_check_unavailable (with_starttls, "StartTLS refused");
    auth_ldap_destroy (&with_starttls);

    /* parallel calls on one object */
    login_thread_t threads[4] = { { by_template, 0 }, { by_search, 0 }, { by_template, 0 }, { by_search, 0 } };
    pthread_t ids[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT (pthread_create (&ids[i], NULL, s_login_thread, &threads[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join (ids[i], NULL);
        CHECK_EQ_INT (threads[i].failures, 0);
    }

    /* outages. A closed port: refused at once; the next URL in the list is used. */
    int closed_port = orr_free_port ();
    CHECK (closed_port > 0 && closed_port != s_port);
    char closed_url[64], failover_url[160];
    snprintf (closed_url, sizeof closed_url, "ldap://127.0.0.1:%d", closed_port);
    snprintf (failover_url, sizeof failover_url, "%s %s", closed_url, s_url);
    auth_ldap_opts_t outage_opts = template_opts;
    outage_opts.url = closed_url;
    auth_ldap_t *nothing_there = auth_ldap_new (&outage_opts);
    CHECK (nothing_there);
    s_check_unavailable (nothing_there, "closed port");
    auth_ldap_destroy (&nothing_there);
    outage_opts.url = failover_url;
    auth_ldap_t *failover = auth_ldap_new (&outage_opts);
    CHECK (failover);
    EXPECT (failover, "alice", "alice-pw", AUTH_LDAP_OK);
    auth_ldap_destroy (&failover);

    /* A hung server (SIGSTOP: the kernel still accepts connections, nothing answers):
     * each mode gives up after one timeout. */
    pid_t slapd_pid = s_slapd_pid ();
    CHECK_EQ_INT (kill (slapd_pid, SIGSTOP), 0);
    s_wait_stopped (slapd_pid);
    s_check_unavailable (by_template, "hung server, template");
    s_check_unavailable (by_search, "hung server, search");
    CHECK_EQ_INT (kill (slapd_pid, SIGCONT), 0);
    EXPECT (by_template, "alice", "alice-pw", AUTH_LDAP_OK);

    /* Stopped: unavailable at once, with the library's reason. */
    s_slapd_stop ();
    char err[256];
    CHECK_EQ_INT (auth_ldap_authenticate (by_template, "alice", 5, "alice-pw", err, sizeof err), AUTH_LDAP_UNAVAILABLE);
    CHECK_EQ_STR (err, "LDAP server unavailable: Can't contact LDAP server");
    s_check_unavailable (by_template, "stopped server, template");
    s_check_unavailable (by_search, "stopped server, search");
    /* wrong passwords and bad names are still refused without the server */
    EXPECT (by_template, "alice", "", AUTH_LDAP_DENIED);
    EXPECT (by_template, "*", "alice-pw", AUTH_LDAP_DENIED);

    /* Back on the same port and data: the same objects work again, no restart needed. */
    s_slapd_start (false);
    EXPECT (by_template, "alice", "alice-pw", AUTH_LDAP_OK);
    EXPECT (by_search, "bob", "bob-pw", AUTH_LDAP_OK);
    EXPECT (by_template, "alice", "wrong", AUTH_LDAP_DENIED);

    auth_ldap_destroy (&by_template);
    auth_ldap_destroy (&by_template_loose);
    auth_ldap_destroy (&by_search);
    s_slapd_stop ();
    fprintf (stderr, "test_auth_ldap: ok in %lld ms\n", (long long) (orr_mono_ms () - test_start));
    return 0;
}
