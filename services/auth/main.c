/*  orrery-auth: identity for Orrery (users, groups, roles, tokens, sessions, OAuth).
 *
 *  Owns those keys in Redis and decides logins and token checks for the gateway. In this
 *  revision it is a bus worker answering "ping"; the identity methods are the subject of
 *  issue 3 (see docs/architecture.md for what each service will own).
 */
#include "orr_service.h"

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "auth", "Orrery auth: users, tokens, scopes and logins.", NULL, NULL, NULL);
}
