/*  route: what a route is, independent of Redis and HTTP (see proxyctl.h).
 *
 *  The canonical path is the one configurable-http-proxy itself would key the route by,
 *  so the table and every CHP compare byte for byte and a sync never churns:
 *  - CHP percent-decodes the path of an API URL (decodeURIComponent) before storing it,
 *    and decodes each proxied request's path before matching; JupyterHub-style paths
 *    arrive quoted ("/user/a%20b/"), so they are decoded here the same way ("/user/a b").
 *    decodeURIComponent throws on a malformed escape or bytes that are not UTF-8, so
 *    those are refused, and %00 too (C strings).
 *  - CHP drops a trailing slash ("/user/alice/" is shown as "/user/alice"); here every
 *    trailing slash goes, so "/a/", "/a//" and "/a" are one route.
 *  On the way back out (route_chp_url) everything but a few safe bytes is re-escaped, so
 *  CHP decodes the URL to exactly the canonical path.
 */
#include "proxyctl.h"
#include "orr_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* --- names and targets -------------------------------------------------------------------- */

static bool
s_utf8_ok (const char *text, size_t len)
{
    json_t *probe = json_stringn (text, len);   /* jansson refuses invalid UTF-8 */
    bool ok = probe != NULL;
    json_decref (probe);
    return ok;
}

bool
route_name_ok (const char *name)
{
    size_t n = name ? strlen (name) : 0;
    return name && n <= ROUTE_NAME_MAX && s_utf8_ok (name, n);
}

bool
route_target_ok (const char *target)
{
    if (!target || strlen (target) > ROUTE_TARGET_MAX)
        return false;
    const char *host = strncmp (target, "http://", 7) == 0    ? target + 7
                       : strncmp (target, "https://", 8) == 0 ? target + 8
                                                              : NULL;
    if (!host || !*host || *host == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *) target; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* --- paths ------------------------------------------------------------------------------- */

static int
s_hex (int c)
{
    return isdigit (c) ? c - '0' : isxdigit (c) ? tolower (c) - 'a' + 10 : -1;
}

/* Percent-decodes `in` into a new string; NULL on a malformed escape or %00. */
static char *
s_percent_decode (const char *in, size_t *len)
{
    char *out = orr_zalloc (strlen (in) + 1);
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p != '%') {
            out[n++] = *p;
            continue;
        }
        int hi = s_hex ((unsigned char) p[1]), lo = hi < 0 ? -1 : s_hex ((unsigned char) p[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free (out);
            return NULL;
        }
        out[n++] = (char) (hi * 16 + lo);
        p += 2;
    }
    *len = n;
    return out;
}

int
route_path_canonical (const char *path, char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || path[0] != '/' || strlen (path) > ROUTE_PATH_MAX) {
        snprintf (err, errlen, "a path starts with '/' and has at most %d bytes", ROUTE_PATH_MAX);
        return -1;
    }
    size_t len = 0;
    char *decoded = s_percent_decode (path, &len);
    if (!decoded || !s_utf8_ok (decoded, len)) {
        snprintf (err, errlen, "path %.64s: a bad %%-escape, %%00, or bytes that are not UTF-8", path);
        free (decoded);
        return -1;
    }
    while (len > 1 && decoded[len - 1] == '/')
        decoded[--len] = '\0';
    if (strcmp (decoded, "/") == 0) {
        snprintf (err, errlen, "the route / is the hub's (ORRERY_HUB_URL), not a table route");
        free (decoded);
        return -1;
    }
    *out = decoded;
    return 0;
}

static bool
s_url_safe (unsigned char c)
{
    return isalnum (c) || strchr ("-._~/@:", c) != NULL;
}

char *
route_chp_url (const char *api, const char *path)
{
    size_t n = strlen (path), k = 0;
    char *escaped = orr_zalloc (3 * n + 1);
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *) path; *p; p++) {
        if (s_url_safe (*p))
            escaped[k++] = (char) *p;
        else {
            escaped[k++] = '%';
            escaped[k++] = hex[*p >> 4];
            escaped[k++] = hex[*p & 15];
        }
    }
    char *url = orr_sprintf ("%s/api/routes%s", api, escaped);
    free (escaped);
    return url;
}

/* --- the route at CHP ---------------------------------------------------------------------- */

json_t *
route_chp_body (const route_t *route)
{
    return json_pack ("{s:s, s:b, s:s, s:s}", "target", route->target, "jupyterhub", 1, "user", route->user,
                      "server_name", route->server);
}

static bool
s_string_is (json_t *object, const char *key, const char *want)
{
    const char *have = json_string_value (json_object_get (object, key));
    return have && strcmp (have, want) == 0;
}

bool
route_chp_managed (json_t *chp_entry)
{
    return json_is_true (json_object_get (chp_entry, "jupyterhub"));
}

bool
route_chp_matches (const route_t *route, json_t *chp_entry)
{
    return route_chp_managed (chp_entry) && s_string_is (chp_entry, "target", route->target)
           && s_string_is (chp_entry, "user", route->user) && s_string_is (chp_entry, "server_name", route->server);
}

/* --- the route in Redis ---------------------------------------------------------------------- */

char *
route_encode (const route_t *route)
{
    json_t *doc = json_pack ("{s:s, s:s, s:s, s:I}", "target", route->target, "user", route->user, "server",
                             route->server, "created_us", (json_int_t) route->created_us);
    char *text = json_dumps (doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (doc);
    return text;
}

int
route_decode (const char *path, const char *json, route_t *out)
{
    memset (out, 0, sizeof *out);
    json_t *doc = json_loads (json, 0, NULL);
    const char *target = json_string_value (json_object_get (doc, "target"));
    const char *user = json_string_value (json_object_get (doc, "user"));
    const char *server = json_string_value (json_object_get (doc, "server"));
    json_t *created = json_object_get (doc, "created_us");
    int rc = -1;
    if (target && user && server && json_is_integer (created)) {
        *out = (route_t) { orr_strdup (path), orr_strdup (target), orr_strdup (user), orr_strdup (server),
                           (int64_t) json_integer_value (created) };
        rc = 0;
    }
    json_decref (doc);
    return rc;
}

void
route_clear (route_t *route)
{
    free (route->path);
    free (route->target);
    free (route->user);
    free (route->server);
    memset (route, 0, sizeof *route);
}

route_t
route_copy (const route_t *route)
{
    return (route_t) { orr_strdup (route->path), orr_strdup (route->target), orr_strdup (route->user),
                       orr_strdup (route->server), route->created_us };
}

/* --- the table ----------------------------------------------------------------------------- */

static int
s_by_path (const void *a, const void *b)
{
    return strcmp (((const route_t *) a)->path, ((const route_t *) b)->path);
}

void
route_table_sort (route_table_t *table)
{
    if (table->n > 1)
        qsort (table->v, table->n, sizeof *table->v, s_by_path);
}

const route_t *
route_table_find (const route_table_t *table, const char *path)
{
    route_t key = { .path = (char *) path };
    return table->n ? bsearch (&key, table->v, table->n, sizeof *table->v, s_by_path) : NULL;
}

void
route_table_clear (route_table_t *table)
{
    for (size_t i = 0; i < table->n; i++)
        route_clear (&table->v[i]);
    free (table->v);
    table->v = NULL;
    table->n = 0;
}
