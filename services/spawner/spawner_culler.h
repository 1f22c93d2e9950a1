/*  spawner_culler: the built-in idle culler (what jupyterhub-idle-culler does as a hub
 *  service, reference §11, without the extra process and its API polling).
 *
 *  Every CULL_EVERY_S one replica — whichever wins a short Redis lock for that round, so
 *  at most one acts — walks the ready servers and stops those idle longer than
 *  CULL_IDLE_TIMEOUT_S (activity: orr:{u:U}:activity, fed by the proxies and the servers'
 *  own activity reports; a server without any counts from when it became ready), or
 *  older than CULL_MAX_AGE_S. With CULL_USERS, users left without servers whose own
 *  last_activity is older than the timeout are deleted (admins never are).
 */
#ifndef SPAWNER_CULLER_H
#define SPAWNER_CULLER_H

#include "orr_config.h"
#include "orr_service.h"

#define SPAWNER_CULLER_SETTINGS                                                                                        \
    { "CULL_IDLE_TIMEOUT_S", "0", "stop servers idle longer than this (0 = the culler is off)" },                      \
    { "CULL_EVERY_S", "0", "how often the culler looks (0 = half the timeout, at least 1)" },                          \
    { "CULL_MAX_AGE_S", "0", "also stop servers running longer than this, idle or not (0 = no limit)" },               \
    { "CULL_USERS", "false", "also delete users left without servers and idle longer than the timeout" }

typedef struct spawner_culler_t spawner_culler_t;

/* NULL when the culler is off (or the settings are bad: *rc != 0 and logged). Stops
 * servers through the records (spawner_records.c) and wakes the engine with poke(ctx). */
spawner_culler_t *spawner_culler_new (orr_service_t *svc, orr_config_t *config, const char *holder,
                                      void (*poke) (void *), void *poke_ctx, int *rc);
void spawner_culler_destroy (spawner_culler_t **self_p);

#endif
