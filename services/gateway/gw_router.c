/*  gw_router: matching a method and path against the route table.
 *
 *  Patterns are literal segments and "{}" placeholders; a path segment matched by "{}"
 *  must be non-empty and may hold any byte but '/'. Paths are compared segment by
 *  segment, so "/hub/api/users/" and "/hub/api/users" are different paths, as in
 *  JupyterHub (trailing slashes are handled by listing both in the table where the hub
 *  accepts both). No I/O: the fuzz target drives this file alone.
 */
#include "gw_api.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

/* Does path match pattern? Fills params[] (owned copies) on success. */
static bool
s_match (const char *pattern, const char *path, char **params)
{
    size_t np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr (s, '/');
            size_t len = end ? (size_t) (end - s) : strlen (s);
            if (len == 0 || np >= GW_MAX_PARAMS)
                goto fail;
            params[np++] = orr_strndup (s, len);
            s += len;
            p += 2;
        }
        else if (*p == *s) {
            p++;
            s++;
        }
        else
            goto fail;
    }
    if (*p == '\0' && *s == '\0')
        return true;
fail:
    for (size_t i = 0; i < np; i++) {
        free (params[i]);
        params[i] = NULL;
    }
    return false;
}

int
gw_router_match (const gw_route_t *routes, size_t nroutes, const char *method, const char *path, char **params)
{
    bool path_known = false;
    const char *m = strcmp (method, "HEAD") == 0 ? "GET" : method;
    for (size_t i = 0; i < nroutes; i++) {
        char *tmp[GW_MAX_PARAMS] = { 0 };
        if (!s_match (routes[i].pattern, path, tmp))
            continue;
        if (strcmp (routes[i].method, m) == 0) {
            memcpy (params, tmp, sizeof tmp);
            return (int) i;
        }
        path_known = true;
        for (size_t k = 0; k < GW_MAX_PARAMS; k++)
            free (tmp[k]);
    }
    return path_known ? -2 : -1;
}
