/*  auth_ldap: the LDAP authenticator (interface; see auth_ldap.c). */
#ifndef AUTH_LDAP_H
#define AUTH_LDAP_H

#include "orr_config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct auth_ldap_t auth_ldap_t;

typedef struct {
    const char *url;
    char **bind_dn_templates;
    const char *search_base;
    const char *search_filter;
    const char *user_attribute;
    const char *search_bind_dn;
    const char *search_bind_password;
    char **allowed_groups;
    bool starttls;
    const char *ca_file;
    bool tls_verify;
    int timeout_ms;
    const char *username_pattern;
} auth_ldap_opts_t;

typedef enum { AUTH_LDAP_OK = 0, AUTH_LDAP_DENIED = 1, AUTH_LDAP_UNAVAILABLE = -1 } auth_ldap_result_t;

auth_ldap_t *auth_ldap_new (const auth_ldap_opts_t *opts);
void auth_ldap_destroy (auth_ldap_t **self_p);
auth_ldap_result_t auth_ldap_authenticate (auth_ldap_t *self, const char *username, size_t username_len,
                                           const char *password, char *err, size_t errlen);
char *auth_ldap_escape_filter (const char *value, size_t len);
char *auth_ldap_escape_dn (const char *value, size_t len);
extern const orr_setting_t auth_ldap_settings[];
auth_ldap_t *auth_ldap_new_from_config (orr_config_t *config);

#endif
