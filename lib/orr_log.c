/*  orr_log: structured JSON-lines logging on stderr.
 *
 *  Design: the process-wide identity (service, replica) is set once at start; the request
 *  id is thread-local so concurrent work logs its own. Each line is formatted into a stack
 *  buffer and written with a single write(2): POSIX makes writes to a pipe atomic up to
 *  PIPE_BUF, and O_APPEND files keep whole lines, which is what the supervisor relies on.
 *  The message is JSON-escaped here, so callers may log peer input verbatim.
 */
#include "orr_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_MSG_MAX 2048

static char s_service[64] = "orrery";
static char s_replica[96] = "";
static orr_log_level_t s_level = ORR_LOG_INFO;
static _Thread_local char s_request_id[80];

static const char *s_level_names[] = { "debug", "info", "warn", "error" };

void
orr_log_init (const char *service, const char *replica_id)
{
    snprintf (s_service, sizeof s_service, "%s", service ? service : "orrery");
    snprintf (s_replica, sizeof s_replica, "%s", replica_id ? replica_id : "");
}

int
orr_log_set_level (const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp (name, s_level_names[i]) == 0) {
            s_level = (orr_log_level_t) i;
            return 0;
        }
    return -1;
}

void
orr_log_set_request_id (const char *request_id)
{
    snprintf (s_request_id, sizeof s_request_id, "%s", request_id ? request_id : "");
}

const char *
orr_log_replica_id (void)
{
    return s_replica;
}

const char *
orr_log_service (void)
{
    return s_service;
}

/* Appends `src` JSON-escaped; never writes past `end`, always leaves room for the NUL. */
static char *
s_append_escaped (char *out, char *end, const char *src)
{
    for (const unsigned char *p = (const unsigned char *) src; *p && out < end - 7; p++) {
        switch (*p) {
        case '"':  *out++ = '\\'; *out++ = '"'; break;
        case '\\': *out++ = '\\'; *out++ = '\\'; break;
        case '\n': *out++ = '\\'; *out++ = 'n'; break;
        case '\r': *out++ = '\\'; *out++ = 'r'; break;
        case '\t': *out++ = '\\'; *out++ = 't'; break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                out += snprintf (out, 7, "\\u%04x", *p);
            else
                *out++ = (char) *p;
        }
    }
    *out = '\0';
    return out;
}

static char *
s_append (char *out, char *end, const char *src)
{
    while (*src && out < end - 1)
        *out++ = *src++;
    *out = '\0';
    return out;
}

void
orr_log (orr_log_level_t level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);

    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char when[96];
    snprintf (when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);

    char line[LOG_LINE_MAX];
    char *end = line + sizeof line - 2; /* room for "}\n" */
    char *p = line;
    p = s_append (p, end, "{\"time\":\"");
    p = s_append (p, end, when);
    p = s_append (p, end, "\",\"level\":\"");
    p = s_append (p, end, s_level_names[level]);
    p = s_append (p, end, "\",\"service\":\"");
    p = s_append_escaped (p, end, s_service);
    p = s_append (p, end, "\",\"replica\":\"");
    p = s_append_escaped (p, end, s_replica);
    p = s_append (p, end, "\",\"request_id\":");
    if (s_request_id[0]) {
        p = s_append (p, end, "\"");
        p = s_append_escaped (p, end, s_request_id);
        p = s_append (p, end, "\"");
    }
    else
        p = s_append (p, end, "null");
    p = s_append (p, end, ",\"message\":\"");
    p = s_append_escaped (p, end, msg);
    p = s_append (p, end, "\"");
    *p++ = '}';
    *p++ = '\n';
    ssize_t rc = write (STDERR_FILENO, line, (size_t) (p - line));
    (void) rc;
}
