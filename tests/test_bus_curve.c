/*  With CURVE on: a client whose key is not allowed gets no answer and its published
 *  events reach no subscriber; an allowed key works, and receivers see its principal.
 *
 *  Also: a key whose principal is not service:* cannot register as a worker, a peer
 *  without CURVE gets nothing, and adding a key to the allow-list file admits it without
 *  restarting the broker.
 */
#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_events.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>

static char *
s_cert (const char *dir, const char *name, zcert_t **out)
{
    zcert_t *cert = zcert_new ();
    char *path = orr_sprintf ("%s/%s.cert", dir, name);
    CHECK (zcert_save (cert, path) == 0);
    *out = cert;
    char *secret = orr_sprintf ("%s_secret", path);
    free (path);
    return secret;
}

static void
s_client_opts (orr_bus_opts_t *opts, const char *bus, const char *server_public, const char *cert)
{
    tb_opts (opts, bus, 700, 1);
    if (cert) {
        opts->curve = true;
        opts->curve_server_public = orr_strdup (server_public);
        opts->curve_cert = orr_strdup (cert);
    }
}

/* The full reply "<replica>|<principal>|<body>", or NULL on no answer. */
static char *
s_ask (const char *bus, const char *server_public, const char *cert)
{
    orr_bus_opts_t opts;
    s_client_opts (&opts, bus, server_public, cert);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    char *reply = NULL, err[256];
    size_t len;
    if (orr_bus_client_request (client, "echo", NULL, "hi", 2, &reply, &len, err, sizeof err) != ORR_BUS_OK) {
        free (reply);
        reply = NULL;
    }
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    return reply;
}

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("bus-curve");
    zcert_t *server, *alice, *mallory, *worker, *bob;
    char *server_path = s_cert (dir, "broker", &server);
    char *alice_path = s_cert (dir, "alice", &alice);
    char *mallory_path = s_cert (dir, "mallory", &mallory);
    char *worker_path = s_cert (dir, "worker", &worker);
    char *bob_path = s_cert (dir, "bob", &bob);
    char *allow = orr_sprintf ("%s/allow", dir);
    FILE *f = fopen (allow, "w");
    fprintf (f, "# key principal\n%s client:alice\n%s service:echo\n%s client:bob\n", zcert_public_txt (alice),
             zcert_public_txt (worker), zcert_public_txt (bob));
    fclose (f);

    char *e_curve = "ORRERY_CURVE=true";
    char *e_server = orr_sprintf ("ORRERY_CURVE_SERVER_CERT=%s", server_path);
    char *e_allow = orr_sprintf ("ORRERY_CURVE_ALLOW=%s", allow);
    char *e_public = orr_sprintf ("ORRERY_CURVE_SERVER_PUBLIC=%s", zcert_public_txt (server));
    char *e_worker = orr_sprintf ("ORRERY_CURVE_CERT=%s", worker_path);
    char *e_bob = orr_sprintf ("ORRERY_CURVE_CERT=%s", bob_path);
    tb_broker_t b = { 0 };
    char *broker_env[] = { e_curve, e_server, e_allow, NULL };
    tb_broker_start (&b, dir, broker_env);
    char *worker_env[] = { e_curve, e_public, e_worker, NULL };
    pid_t w = tb_worker_start (dir, b.addr, "good", worker_env);
    char *rogue_env[] = { e_curve, e_public, e_bob, NULL };
    pid_t rogue = tb_worker_start (dir, b.addr, "rogue", rogue_env);
    const char *pub = zcert_public_txt (server);

    /* allowed: answered, and the worker sees who asked */
    char *reply = NULL;
    for (int i = 0; i < 20 && !reply; i++)
        reply = s_ask (b.addr, pub, alice_path);
    CHECK (reply != NULL, "allowed client got no answer");
    CHECK_EQ_STR (reply, "good|client:alice|hi");
    free (reply);
    /* a principal that is not service:* cannot serve */
    for (int i = 0; i < 20; i++) {
        reply = s_ask (b.addr, pub, alice_path);
        CHECK (reply && strncmp (reply, "good|", 5) == 0, "answered by %s", reply ? reply : "(nobody)");
        free (reply);
    }
    /* not allowed, or no CURVE at all: no answer */
    reply = s_ask (b.addr, pub, mallory_path);
    CHECK (reply == NULL, "refused key got an answer: %s", reply);
    reply = s_ask (b.addr, pub, NULL);
    CHECK (reply == NULL, "plain-text client got an answer: %s", reply);

    /* events: mallory's reach nobody, alice's arrive stamped with her principal */
    orr_bus_opts_t sub_opts, bad_opts, good_opts;
    s_client_opts (&sub_opts, b.addr, pub, alice_path);
    s_client_opts (&bad_opts, b.addr, pub, mallory_path);
    s_client_opts (&good_opts, b.addr, pub, alice_path);
    const char *prefixes[] = { "test.", NULL };
    orr_events_sub_t *sub = orr_events_sub_new (&sub_opts, prefixes);
    CHECK (orr_events_sub_wait_ready (sub, 5000) == 0, "allowed subscriber got no tick");
    orr_events_pub_t *bad = orr_events_pub_new (&bad_opts);
    CHECK (orr_events_pub_wait_ready (bad, 1500) != 0, "the broker subscribed to a refused publisher");
    for (int i = 0; i < 10; i++)
        orr_events_publish (bad, "test.evil", "x", 1);
    orr_events_pub_t *good = orr_events_pub_new (&good_opts);
    CHECK (orr_events_pub_wait_ready (good, 5000) == 0);
    orr_events_publish (good, "test.good", "y", 1);
    orr_event_t ev;
    CHECK (orr_events_recv (sub, &ev, 3000) == 1, "allowed event never arrived");
    CHECK_EQ_STR (ev.topic, "test.good");
    CHECK_EQ_STR (ev.principal, "client:alice");
    orr_event_clear (&ev);
    CHECK (orr_events_recv (sub, &ev, 1000) == 0, "unexpected event %s from %s", ev.topic, ev.principal);

    /* the allow-list is re-read: admit mallory without restarting the broker */
    orr_sleep_ms (1100);
    f = fopen (allow, "a");
    fprintf (f, "%s client:mallory\n", zcert_public_txt (mallory));
    fclose (f);
    orr_sleep_ms (1100);
    reply = NULL;
    for (int i = 0; i < 5 && !reply; i++)
        reply = s_ask (b.addr, pub, mallory_path);
    CHECK (reply != NULL, "key added to the allow-list still refused");
    CHECK_EQ_STR (reply, "good|client:mallory|hi");
    free (reply);

    orr_events_pub_destroy (&bad);
    orr_events_pub_destroy (&good);
    orr_events_sub_destroy (&sub);
    orr_bus_opts_clear (&sub_opts);
    orr_bus_opts_clear (&bad_opts);
    orr_bus_opts_clear (&good_opts);
    tb_worker_stop (w);
    tb_worker_stop (rogue);
    tb_broker_stop (&b, SIGTERM);
    /* the refused worker backs off instead of re-registering in a loop */
    FILE *log = fopen (b.log, "r");
    char line[1024];
    int refusals = 0;
    while (log && fgets (line, sizeof line, log))
        refusals += strstr (line, "refused worker registration") != NULL;
    if (log)
        fclose (log);
    printf ("the rogue worker was refused %d times in the test's run\n", refusals);
    CHECK (refusals >= 1 && refusals <= 30, "rogue worker refused %d times", refusals);
    zcert_t *certs[] = { server, alice, mallory, worker, bob };
    for (int i = 0; i < 5; i++)
        zcert_destroy (&certs[i]);
    char *frees[] = { server_path, alice_path, mallory_path, worker_path, bob_path, allow, e_server, e_allow, e_public, e_worker, e_bob };
    for (size_t i = 0; i < sizeof frees / sizeof *frees; i++)
        free (frees[i]);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
