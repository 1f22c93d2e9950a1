/*  orr_signal: SIGINT/SIGTERM -> a flag the main loop reads.
 *
 *  Handlers do nothing but store into a sig_atomic_t, as mosquitto's do; the work of
 *  stopping (finishing requests, deregistering, closing sockets) happens in the loop.
 *  They are installed without SA_RESTART so zmq_poll and friends return EINTR and the
 *  loop sees the flag at once. czmq's own handler is switched off so exactly one
 *  mechanism decides. zsys_interrupted is deliberately left alone: once set, czmq's
 *  zsock_wait returns at once, so zactor_destroy would free an actor's state while its
 *  thread still runs. Our loops poll with timeouts and read the flag themselves.
 */
#include "orr_signal.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t s_stop = 0;
static volatile sig_atomic_t s_last = 0;
static volatile int s_stop_int = 0;

static void
s_handler (int sig)
{
    s_stop = 1;
    s_stop_int = 1;
    s_last = sig;
}

void
orr_signal_install (void)
{
    zsys_handler_set (NULL);
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_handler;
    sigemptyset (&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
}

bool
orr_signal_stop_requested (void)
{
    return s_stop != 0;
}

volatile int *
orr_signal_stop_flag (void)
{
    return &s_stop_int;
}

void
orr_signal_request_stop (void)
{
    s_stop = 1;
    s_stop_int = 1;
}

int
orr_signal_last (void)
{
    return (int) s_last;
}
