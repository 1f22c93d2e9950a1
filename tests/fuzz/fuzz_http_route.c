/*  fuzz_http_route: libFuzzer target for the gateway's request handling up to routing.
 *
 *  Input: "METHOD\nPATH\nQUERY\nBODY" -- the first three fields end at '\n' (a NUL ends
 *  them early, as MHD hands the gateway C strings); the body is every byte after the third
 *  '\n', NULs included, in a buffer of exactly its length (no terminator) so any read past
 *  body_len is an ASan report.
 *
 *  What runs, against the real gateway code (every .c file of services/gateway/ but main.c is
 *  linked; no daemon, no Redis, no bus):
 *   - gw_router_match (gw_router.c) on the real table gw_routes[] (gw_routes.c), checked
 *     against a segment-by-segment re-reading of the rules in gw_api.h: same index (first
 *     match for the method, HEAD answered by GET), -2 when only another method matches,
 *     -1 when no pattern does; on a match the params are non-empty, hold no '/', and put
 *     back into the pattern give the path again. Params are freed (leaks are reported).
 *   - gw_form_value (gw_http.c) for every field name the handlers ask for and for QUERY
 *     as a name, checked against an independent urlencoded-form decoder (first field of
 *     that name; '+' and %XX decoded; a value holding a NUL once decoded is refused as if
 *     absent, as gw_http.c documents). gw_form_value reads only req->body and
 *     req->body_len (no MHD call), so the request has conn NULL.
 *   - orr_time_parse (lib/orr_time.c) on QUERY and on each value of its '&'-separated
 *     "k=v" pairs: an accepted text names a date that exists (its day is within its
 *     month), and for years 1970..9999 orr_time_format then orr_time_parse gives the
 *     same instant back.
 *  Not covered: libmicrohttpd's own parsing and the static access handler of gw_http.c
 *  (base-URL stripping, body collection), which need a live connection.
 */
#include "gw_api.h"
#include "orr_time.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* For messages: a string that may be NULL. */
static const char *
s_or_empty (const char *s)
{
    return s ? s : "";
}

#define CHECK(cond, what, s)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf (stderr, "fuzz_http_route: invariant violated: %s\n  (%s) [%s]\n", what, #cond, \
                     s_or_empty (s));                                                 \
            abort ();                                                                 \
        }                                                                             \
    } while (0)

/* Every form field a handler reads (gw_pages.c, gw_oauth.c). */
static const char *const s_form_names[] = {
    "_xsrf", "username", "password", "next", "client_id", "client_secret", "grant_type", "code", "redirect_uri",
    "old_password", "new_password", "new_password_confirm", "", NULL,
};

/* --- routing oracle --------------------------------------------------------------------- */

/* Does `path` match `pattern` segment by segment ("{}" = one non-empty segment)? */
static bool
s_pattern_matches (const char *pattern, const char *path)
{
    const char *p = pattern, *s = path;
    for (;;) {
        const char *pe = strchr (p, '/'), *se = strchr (s, '/');
        size_t pl = pe ? (size_t) (pe - p) : strlen (p), sl = se ? (size_t) (se - s) : strlen (s);
        if (pl == 2 && memcmp (p, "{}", 2) == 0) {
            if (sl == 0)
                return false;
        }
        else if (pl != sl || memcmp (p, s, pl) != 0)
            return false;
        if (!pe || !se)
            return !pe && !se;
        p = pe + 1;
        s = se + 1;
    }
}

static int
s_oracle_route (const char *method, const char *path)
{
    const char *m = strcmp (method, "HEAD") == 0 ? "GET" : method;
    bool known = false;
    for (size_t i = 0; i < gw_nroutes; i++) {
        if (!s_pattern_matches (gw_routes[i].pattern, path))
            continue;
        if (strcmp (gw_routes[i].method, m) == 0)
            return (int) i;
        known = true;
    }
    return known ? -2 : -1;
}

static void
s_check_route (const char *method, const char *path)
{
    char *params[GW_MAX_PARAMS] = { 0 };
    int i = gw_router_match (gw_routes, gw_nroutes, method, path, params);
    CHECK (i >= -2 && i < (int) gw_nroutes, "gw_router_match returns a table index, -1 or -2", path);
    CHECK (i == s_oracle_route (method, path), "gw_router_match agrees with the segment-wise oracle", path);
    if (i >= 0) {
        /* the params, put back into the pattern, give the path */
        size_t cap = strlen (path) + 1, used = 0, np = 0;
        char *rebuilt = calloc (1, cap + strlen (gw_routes[i].pattern) + 1);
        for (const char *p = gw_routes[i].pattern; *p;) {
            if (p[0] == '{' && p[1] == '}') {
                CHECK (np < GW_MAX_PARAMS && params[np], "a {} segment has a param", path);
                CHECK (params[np][0] && !strchr (params[np], '/'), "a param is one non-empty segment", params[np]);
                size_t l = strlen (params[np]);
                CHECK (used + l < cap, "params are no longer than the path", path);
                memcpy (rebuilt + used, params[np], l);
                used += l;
                np++;
                p += 2;
            }
            else
                rebuilt[used++] = *p++;
        }
        CHECK (strcmp (rebuilt, path) == 0, "params put back into the pattern give the path", path);
        for (size_t k = np; k < GW_MAX_PARAMS; k++)
            CHECK (params[k] == NULL, "no param beyond the pattern's {}", path);
        free (rebuilt);
    }
    else
        for (size_t k = 0; k < GW_MAX_PARAMS; k++)
            CHECK (params[k] == NULL, "no params without a match", path);
    for (size_t k = 0; k < GW_MAX_PARAMS; k++)
        free (params[k]);
}

/* --- form oracle ------------------------------------------------------------------------ */

static int
s_hex (unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The decoded value of the first field named exactly `name`, or NULL; *len its length.
 * A value that decodes to hold a NUL is refused as if absent (gw_http.c: "alice%00x" must
 * not become "alice"). */
static char *
s_oracle_form (const char *body, size_t body_len, const char *name, size_t *len)
{
    size_t nlen = strlen (name), start = 0;
    while (start < body_len) {
        size_t stop = start;
        while (stop < body_len && body[stop] != '&')
            stop++;
        size_t eq = start;
        while (eq < stop && body[eq] != '=')
            eq++;
        if (eq < stop && eq - start == nlen && memcmp (body + start, name, nlen) == 0) {
            char *out = malloc (stop - eq);
            size_t o = 0;
            for (size_t i = eq + 1; i < stop; i++) {
                unsigned char c = (unsigned char) body[i];
                if (c == '+')
                    out[o++] = ' ';
                else if (c == '%' && i + 2 < stop && s_hex ((unsigned char) body[i + 1]) >= 0
                         && s_hex ((unsigned char) body[i + 2]) >= 0) {
                    out[o++] = (char) (s_hex ((unsigned char) body[i + 1]) * 16 + s_hex ((unsigned char) body[i + 2]));
                    i += 2;
                }
                else
                    out[o++] = (char) c;
            }
            *len = o;
            if (memchr (out, '\0', o)) {
                free (out);
                return NULL;
            }
            return out;
        }
        start = stop + 1;
    }
    return NULL;
}

static void
s_check_form (const gw_request_t *req, const char *name)
{
    char *got = gw_form_value (req, name);
    size_t want_len = 0;
    char *want = s_oracle_form (req->body, req->body_len, name, &want_len);
    CHECK ((got == NULL) == (want == NULL), "gw_form_value finds the same field as the oracle", name);
    if (got)
        CHECK (strlen (got) == want_len && memcmp (got, want, want_len) == 0, "gw_form_value decodes like the oracle",
               name);
    free (got);
    free (want);
}

/* --- timestamps ------------------------------------------------------------------------- */

static int
s_days_in_month (int year, int mon)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon == 2 && leap ? 29 : days[mon - 1];
}

static void
s_check_time (const char *text)
{
    int64_t us = 0;
    if (orr_time_parse (text, &us) != 0)
        return;
    /* accepted: the text starts YYYY-MM-DD (orr_time.h), and that date must exist */
    int year = 0, mon = 0, day = 0;
    CHECK (sscanf (text, "%4d-%2d-%2d", &year, &mon, &day) == 3 && mon >= 1 && mon <= 12,
           "an accepted time starts with YYYY-MM-DD", text);
    CHECK (day >= 1 && day <= s_days_in_month (year, mon), "an accepted time names a date that exists", text);
    if (us >= 0 && us < INT64_C (253402300800000000)) {   /* 1970-01-01 .. 9999-12-31 */
        char iso[ORR_ISO_LEN];
        orr_time_format (us, iso);
        int64_t again = -1;
        CHECK (orr_time_parse (iso, &again) == 0 && again == us, "orr_time_format output parses back to the same time",
               iso);
    }
}

/* --- input ------------------------------------------------------------------------------ */

/* Next '\n'-terminated field as a C string (cut at a NUL); advances *pos. */
static char *
s_field (const uint8_t *data, size_t size, size_t *pos)
{
    size_t start = *pos, end = start;
    while (end < size && data[end] != '\n')
        end++;
    *pos = end < size ? end + 1 : size;
    return strndup ((const char *) data + start, end - start);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t pos = 0;
    char *method = s_field (data, size, &pos);
    char *path = s_field (data, size, &pos);
    char *query = s_field (data, size, &pos);
    size_t body_len = size - pos;
    char *body = malloc (body_len ? body_len : 1);
    memcpy (body, data + pos, body_len);

    s_check_route (method, path);
    if (strcmp (method, "HEAD") != 0)
        s_check_route ("HEAD", path);

    gw_request_t req = { .conn = NULL, .method = method, .path = path, .body = body, .body_len = body_len };
    for (int i = 0; s_form_names[i]; i++)
        s_check_form (&req, s_form_names[i]);
    s_check_form (&req, query);

    s_check_time (query);
    for (char *save = NULL, *pair = strtok_r (query, "&", &save); pair; pair = strtok_r (NULL, "&", &save)) {
        char *eq = strchr (pair, '=');
        s_check_time (eq ? eq + 1 : pair);
    }

    free (method);
    free (path);
    free (query);
    free (body);
    return 0;
}
