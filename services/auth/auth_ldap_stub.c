/* TEMPORARY stand-in until auth_ldap.c lands; deleted then. */
#include "auth_ldap.h"
#include "orr_log.h"
#include <stdio.h>
const orr_setting_t auth_ldap_settings[] = { { NULL, NULL, NULL } };
auth_ldap_t *auth_ldap_new_from_config (orr_config_t *config) { orr_error ("LDAP not built yet"); return NULL; }
void auth_ldap_destroy (auth_ldap_t **self_p) { }
auth_ldap_result_t auth_ldap_authenticate (auth_ldap_t *self, const char *u, size_t l, const char *p, char *err, size_t n) { snprintf (err, n, "no LDAP"); return AUTH_LDAP_UNAVAILABLE; }
