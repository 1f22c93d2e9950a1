/*  k8s_client: create, get, delete and list pods and PVCs through the Kubernetes REST API.
 *
 *  It owns the translation between the API's HTTP answers and what the backend needs to
 *  know. The API server answers errors with a Status object ({"kind": "Status", "code":
 *  409, "reason": "AlreadyExists", "message": "pods \"x\" already exists"}); the reason
 *  tells apart a name that is taken (AlreadyExists) from a write that lost a race
 *  (Conflict), both 409, so k8s_result_from reads it rather than the code alone. The
 *  message goes into err verbatim: RBAC refusals name the missing verb and resource,
 *  which is exactly what an operator needs to fix the Role.
 *
 *  Requests go through lib/orr_http (libcurl easy, keep-alive), with the bearer token
 *  header fetched from the config at every call (it may have rotated) and the config's CA
 *  file for https. Object names reach URLs unescaped: they are DNS labels by
 *  construction (k8s_objects), and a name that is not is refused here before any request.
 */
#include "k8s_client.h"

#include "orr_http.h"
#include "orr_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct k8s_client_t {
    k8s_config_t *config;            /* borrowed */
    orr_http_t *http;
};

static void
s_fail (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fail (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
}

k8s_client_t *
k8s_client_new (k8s_config_t *config)
{
    k8s_client_t *self = orr_zalloc (sizeof *self);
    self->config = config;
    self->http = orr_http_new ();
    orr_http_set_ca_file (self->http, k8s_config_ca_file (config));
    return self;
}

void
k8s_client_destroy (k8s_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_http_destroy (&(*self_p)->http);
    free (*self_p);
    *self_p = NULL;
}

const char *
k8s_kind_resource (k8s_kind_t kind)
{
    return kind == K8S_PVC ? "persistentvolumeclaims" : kind == K8S_NODE ? "nodes" : "pods";
}

const char *
k8s_result_name (k8s_result_t result)
{
    static const char *const names[] = { "ok",        "exists",  "not found", "gone",  "unauthorized",
                                         "forbidden", "invalid", "conflict",  "error" };
    return (unsigned) result < sizeof names / sizeof names[0] ? names[result] : "error";
}

char *
k8s_query_escape (const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen (value);
    char *out = orr_zalloc (len * 3 + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'
            || *p == '_' || *p == '~')
            *o++ = (char) *p;
        else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0xf];
        }
    }
    *o = '\0';
    return out;
}

char *
k8s_collection_url (const k8s_config_t *config, k8s_kind_t kind, const char *query)
{
    if (kind == K8S_NODE)
        return orr_sprintf ("%s/api/v1/nodes%s%s", k8s_config_api_url (config), query && *query ? "?" : "",
                            query ? query : "");
    return orr_sprintf ("%s/api/v1/namespaces/%s/%s%s%s", k8s_config_api_url (config), k8s_config_namespace (config),
                        k8s_kind_resource (kind), query && *query ? "?" : "", query ? query : "");
}

k8s_result_t
k8s_result_from (long status, json_t *body, const char *verb, const char *what, char *err, size_t errlen)
{
    if (status >= 200 && status <= 202)
        return K8S_OK;
    const char *reason = NULL, *message = NULL;
    if (json_is_object (body) && json_is_string (json_object_get (body, "kind"))
        && strcmp (json_string_value (json_object_get (body, "kind")), "Status") == 0) {
        reason = json_string_value (json_object_get (body, "reason"));
        message = json_string_value (json_object_get (body, "message"));
    }
    k8s_result_t result;
    switch (status) {
    case 404: result = K8S_NOT_FOUND; break;
    case 410: result = K8S_GONE; break;
    case 401: result = K8S_UNAUTHORIZED; break;
    case 403: result = K8S_FORBIDDEN; break;
    case 400:
    case 422: result = K8S_INVALID; break;
    case 409: result = reason && strcmp (reason, "AlreadyExists") == 0 ? K8S_EXISTS : K8S_CONFLICT; break;
    default: result = K8S_ERROR; break;
    }
    s_fail (err, errlen, "%s %s: %ld %s: %s", verb, what, status, reason ? reason : "(no Status)",
            message ? message : "(no message)");
    return result;
}

static bool
s_is_dns_name (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-'
              || name[i] == '.'))
            return false;
    return true;
}

/* One request: JSON in and out, the status mapped. *reply is the parsed body (caller
 * owns) whatever the status, or NULL on a transport failure. */
static k8s_result_t
s_call (k8s_client_t *self, const char *verb, const char *url, const char *what, json_t *body, json_t **reply,
        char *err, size_t errlen)
{
    *reply = NULL;
    char *auth = orr_zalloc (K8S_AUTH_HEADER_MAX);
    char why[512] = "";
    if (k8s_config_auth_header (self->config, auth, K8S_AUTH_HEADER_MAX, why, sizeof why) < 0 && !*auth) {
        s_fail (err, errlen, "%s %s: no token: %s", verb, what, why);
        free (auth);
        return K8S_UNAUTHORIZED;
    }
    const char *headers[] = { auth, NULL };
    long status = 0;
    json_t *answer = orr_http_json (self->http, verb, url, *auth ? headers : NULL, body,
                                    k8s_config_timeout_ms (self->config), &status, why, sizeof why);
    free (auth);
    if (!answer) {
        s_fail (err, errlen, "%s %s: %s", verb, what, why);
        return K8S_ERROR;
    }
    k8s_result_t result = k8s_result_from (status, answer, verb, what, err, errlen);
    if (result == K8S_UNAUTHORIZED && k8s_config_token_file (self->config)) {
        size_t len = err ? strnlen (err, errlen) : 0;
        if (err && len + 1 < errlen)
            snprintf (err + len, errlen - len, " (the API server refused the token from %s)",
                      k8s_config_token_file (self->config));
    }
    if (result == K8S_OK && !json_is_object (answer)) {
        s_fail (err, errlen, "%s %s: %ld with a body that is not a JSON object", verb, what, status);
        result = K8S_ERROR;
    }
    *reply = answer;
    return result;
}

k8s_result_t
k8s_create (k8s_client_t *self, k8s_kind_t kind, json_t *object, json_t **created, char *err, size_t errlen)
{
    if (created)
        *created = NULL;
    char *url = k8s_collection_url (self->config, kind, NULL);
    json_t *reply;
    k8s_result_t result = s_call (self, "POST", url, k8s_kind_resource (kind), object, &reply, err, errlen);
    free (url);
    if (result == K8S_OK && created)
        *created = json_incref (reply);
    json_decref (reply);
    return result;
}

/* The object's URL, or NULL with err set when the name cannot be one. */
static char *
s_object_url (k8s_client_t *self, k8s_kind_t kind, const char *name, const char *query, const char *verb, char *err,
              size_t errlen)
{
    if (!s_is_dns_name (name)) {
        s_fail (err, errlen, "%s %s: \"%.64s\" is not an object name", verb, k8s_kind_resource (kind), name ? name : "");
        return NULL;
    }
    char *base = k8s_collection_url (self->config, kind, NULL);
    char *url = orr_sprintf ("%s/%s%s%s", base, name, query ? "?" : "", query ? query : "");
    free (base);
    return url;
}

k8s_result_t
k8s_get (k8s_client_t *self, k8s_kind_t kind, const char *name, json_t **object, char *err, size_t errlen)
{
    *object = NULL;
    char *url = s_object_url (self, kind, name, NULL, "GET", err, errlen);
    if (!url)
        return K8S_INVALID;
    char *what = orr_sprintf ("%s/%s", k8s_kind_resource (kind), name);
    json_t *reply;
    k8s_result_t result = s_call (self, "GET", url, what, NULL, &reply, err, errlen);
    free (url);
    free (what);
    if (result == K8S_OK)
        *object = json_incref (reply);
    json_decref (reply);
    return result;
}

k8s_result_t
k8s_delete (k8s_client_t *self, k8s_kind_t kind, const char *name, int grace_seconds, char *err, size_t errlen)
{
    char query[48] = "";
    if (grace_seconds >= 0)
        snprintf (query, sizeof query, "gracePeriodSeconds=%d", grace_seconds);
    char *url = s_object_url (self, kind, name, *query ? query : NULL, "DELETE", err, errlen);
    if (!url)
        return K8S_INVALID;
    char *what = orr_sprintf ("%s/%s", k8s_kind_resource (kind), name);
    json_t *reply;
    k8s_result_t result = s_call (self, "DELETE", url, what, NULL, &reply, err, errlen);
    free (url);
    free (what);
    json_decref (reply);
    return result;
}

k8s_result_t
k8s_list (k8s_client_t *self, k8s_kind_t kind, const char *label_selector, const char *resource_version,
          json_t **list, char *err, size_t errlen)
{
    *list = NULL;
    char *selector = k8s_query_escape (label_selector ? label_selector : "");
    char *version = k8s_query_escape (resource_version ? resource_version : "");
    char *query = orr_sprintf ("%s%s%s%s%s", *selector ? "labelSelector=" : "", selector,
                               *selector && *version ? "&" : "", *version ? "resourceVersion=" : "", version);
    char *url = k8s_collection_url (self->config, kind, query);
    free (selector);
    free (version);
    free (query);
    json_t *reply;
    k8s_result_t result = s_call (self, "GET", url, k8s_kind_resource (kind), NULL, &reply, err, errlen);
    free (url);
    if (result == K8S_OK && !json_is_array (json_object_get (reply, "items"))) {
        s_fail (err, errlen, "GET %s: the list has no \"items\" array", k8s_kind_resource (kind));
        result = K8S_ERROR;
    }
    if (result == K8S_OK)
        *list = json_incref (reply);
    json_decref (reply);
    return result;
}
