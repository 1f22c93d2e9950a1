/*  zap: admits CURVE clients whose public key is on the allow-list, and names them.
 *
 *  libzmq asks a ZAP handler (RFC 27) about every new CURVE connection on a socket with
 *  the server role. We answer 200 with User-Id = the key's principal when the key is
 *  listed, 400 otherwise; libzmq then refuses the handshake, so an unlisted peer's
 *  requests and events never reach the broker's code. Receivers read the principal from
 *  each message's "User-Id" property.
 *
 *  The allow-list is a text file of "<40-char Z85 public key> <principal>" lines. It is
 *  re-read when its modification time changes (checked at most once a second), so an
 *  operator can add or revoke a key without restarting brokers.
 */
#include "zap.h"
#include "orr_bus.h"
#include "orr_log.h"
#include "orr_util.h"

#include <czmq.h>
#include <string.h>
#include <sys/stat.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_RELOAD_CHECK_MS 1000

struct zap_t {
    zsock_t *rep;
    char *allow_file;
    zhashx_t *principals;    /* Z85 public key -> principal (owned strings) */
    struct timespec loaded_mtime;
    int64_t checked_at;
};

static int
s_load (zap_t *self)
{
    struct stat st;
    if (stat (self->allow_file, &st) != 0) {
        orr_error ("CURVE allow-list %s: cannot stat", self->allow_file);
        return -1;
    }
    FILE *f = fopen (self->allow_file, "r");
    if (!f) {
        orr_error ("CURVE allow-list %s: cannot read", self->allow_file);
        return -1;
    }
    zhashx_t *fresh = zhashx_new ();
    zhashx_set_destructor (fresh, (zhashx_destructor_fn *) zstr_free);
    char line[512];
    int lineno = 0, bad = 0;
    while (fgets (line, sizeof line, f)) {
        lineno++;
        char *s = orr_strtrim (line);
        /* '#' is a Z85 digit, but never the first of a key: the first digit of a 32-bit
         * group is at most the 83rd of 85, and '#' is the 85th. */
        if (!*s || *s == '#')
            continue;
        char key[41] = "", principal[ORR_BUS_PRINCIPAL_MAX + 1] = "";
        if (sscanf (s, "%40s %128s", key, principal) != 2 || strlen (key) != 40) {
            orr_warn ("CURVE allow-list %s:%d: expected '<Z85 key> <principal>'", self->allow_file, lineno);
            bad++;
            continue;
        }
        zhashx_update (fresh, key, orr_strdup (principal));
    }
    fclose (f);
    zhashx_destroy (&self->principals);
    self->principals = fresh;
    self->loaded_mtime = st.st_mtim;
    orr_info ("CURVE allow-list %s: %zu keys (%d bad lines)", self->allow_file, zhashx_size (fresh), bad);
    return 0;
}

static void
s_maybe_reload (zap_t *self)
{
    int64_t now = orr_mono_ms ();
    if (now - self->checked_at < ZAP_RELOAD_CHECK_MS)
        return;
    self->checked_at = now;
    struct stat st;
    if (stat (self->allow_file, &st) == 0
        && (st.st_mtim.tv_sec != self->loaded_mtime.tv_sec || st.st_mtim.tv_nsec != self->loaded_mtime.tv_nsec))
        s_load (self);
}

zap_t *
zap_new (const char *allow_file)
{
    zap_t *self = orr_zalloc (sizeof *self);
    self->allow_file = orr_strdup (allow_file ? allow_file : "");
    if (s_load (self) != 0)
        goto fail;
    self->checked_at = orr_mono_ms ();
    self->rep = zsock_new (ZMQ_REP);
    if (!self->rep || zsock_bind (self->rep, ZAP_ENDPOINT) != 0) {
        orr_error ("cannot bind the ZAP handler at %s", ZAP_ENDPOINT);
        goto fail;
    }
    return self;
fail:
    zap_destroy (&self);
    return NULL;
}

void
zap_destroy (zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zap_t *self = *self_p;
    zsock_destroy (&self->rep);
    zhashx_destroy (&self->principals);
    free (self->allow_file);
    free (self);
    *self_p = NULL;
}

void *
zap_sock (zap_t *self)
{
    return self->rep;
}

/* RFC 27 request: version, request id, domain, address, identity, mechanism, credentials */
void
zap_handle (zap_t *self)
{
    zmsg_t *req = zmsg_recv (self->rep);
    if (!req)
        return;
    s_maybe_reload (self);
    char *version = zmsg_popstr (req);
    char *request_id = zmsg_popstr (req);
    char *domain = zmsg_popstr (req);
    char *address = zmsg_popstr (req);
    char *identity = zmsg_popstr (req);
    char *mechanism = zmsg_popstr (req);
    zframe_t *credential = zmsg_pop (req);

    const char *status = "400", *text = "not on the allow-list", *principal = "";
    if (version && strcmp (version, "1.0") == 0 && mechanism && strcmp (mechanism, "CURVE") == 0
        && credential && zframe_size (credential) == 32) {
        char key[41];
        zmq_z85_encode (key, zframe_data (credential), 32);
        const char *found = zhashx_lookup (self->principals, key);
        if (found) {
            status = "200";
            text = "OK";
            principal = found;
        }
        else
            orr_warn ("refused CURVE key %s from %s", key, address ? address : "?");
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, request_id ? request_id : "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, principal);
    zmsg_addmem (reply, "", 0);
    zmsg_send (&reply, self->rep);

    zstr_free (&version);
    zstr_free (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zframe_destroy (&credential);
    zmsg_destroy (&req);
}
