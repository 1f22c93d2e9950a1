/*  orr_log: structured logs, one JSON object per line on stderr.
 *
 *  Every line carries time, level, service, replica id, the current request id (kept per
 *  thread, set by the worker library around each request) and the message. Lines are
 *  written with one write(2) so lines from threads and from several processes sharing a
 *  log file never interleave.
 */
#ifndef ORR_LOG_H
#define ORR_LOG_H

typedef enum { ORR_LOG_DEBUG = 0, ORR_LOG_INFO, ORR_LOG_WARN, ORR_LOG_ERROR } orr_log_level_t;

/* Names this process in every line. Strings are copied. */
void orr_log_init (const char *service, const char *replica_id);
/* "debug", "info", "warn" or "error"; returns -1 (and changes nothing) on anything else. */
int orr_log_set_level (const char *name);
/* The request id of the calling thread's current work; NULL clears it. Copied. */
void orr_log_set_request_id (const char *request_id);
const char *orr_log_replica_id (void);
const char *orr_log_service (void);

void orr_log (orr_log_level_t level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#define orr_debug(...) orr_log (ORR_LOG_DEBUG, __VA_ARGS__)
#define orr_info(...)  orr_log (ORR_LOG_INFO, __VA_ARGS__)
#define orr_warn(...)  orr_log (ORR_LOG_WARN, __VA_ARGS__)
#define orr_error(...) orr_log (ORR_LOG_ERROR, __VA_ARGS__)

#endif
