/*  orr_time: timestamps as JupyterHub 3.0 writes and reads them.
 *
 *  Orrery stores times as integer microseconds since the epoch (UTC) and shows them as
 *  ISO-8601 UTC with a 'Z' and microseconds only when non-zero:
 *  "2022-11-16T08:42:30Z", "2022-11-16T08:42:30.123456Z" (jupyterhub-api.md §1).
 */
#ifndef ORR_TIME_H
#define ORR_TIME_H

#include <stddef.h>
#include <stdint.h>

#define ORR_ISO_LEN 32

/* Formats `us` into out (>= ORR_ISO_LEN bytes); returns out. */
char *orr_time_format (int64_t us, char *out);

/* Parses an ISO-8601 date-time: "YYYY-MM-DDTHH:MM:SS[.frac][Z|+HH:MM|-HH:MM|+HHMM]"
 * (a space may replace the 'T'; no zone = UTC). 0 and *us set, or -1 on anything else. */
int orr_time_parse (const char *text, int64_t *us);

#endif
