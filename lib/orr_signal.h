/*  orr_signal: graceful shutdown. SIGINT and SIGTERM only set a flag (and wake blocking
 *  calls with EINTR); each main loop checks orr_signal_stop_requested() at every wake-up
 *  and finishes its in-flight work before exiting. SIGPIPE is ignored.
 */
#ifndef ORR_SIGNAL_H
#define ORR_SIGNAL_H

#include <stdbool.h>

/* Installs the handlers (and turns czmq's own off). Call before creating any socket. */
void orr_signal_install (void);
bool orr_signal_stop_requested (void);
/* The flag itself, for loops that take a `volatile int *stop`. */
volatile int *orr_signal_stop_flag (void);
/* Asks for a stop from inside the process (e.g. a hub.shutdown event). */
void orr_signal_request_stop (void);
/* The last signal received (0 if none). */
int orr_signal_last (void);

#endif
