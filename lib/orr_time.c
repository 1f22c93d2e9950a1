/*  orr_time: ISO-8601 formatting and parsing over integer microseconds.
 *
 *  Written by hand rather than with strptime: strptime's %z does not accept "+05:30" on
 *  every libc and silently ignores trailing junk, and the activity endpoint must refuse
 *  malformed times with a 400 (jupyterhub-api.md §6). timegm() converts the broken-down
 *  UTC time without touching the process's TZ.
 */
#include "orr_time.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

char *
orr_time_format (int64_t us, char *out)
{
    time_t secs = (time_t) (us / 1000000);
    int frac = (int) (us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r (&secs, &tm);
    size_t n = strftime (out, ORR_ISO_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf (out + n, ORR_ISO_LEN - n, ".%06dZ", frac);
    else
        snprintf (out + n, ORR_ISO_LEN - n, "Z");
    return out;
}

/* Reads exactly `n` digits at *p; advances. -1 if they are not all digits. */
static int
s_digits (const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit ((unsigned char) (*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static bool
s_expect (const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

int
orr_time_parse (const char *text, int64_t *us)
{
    const char *p = text;
    struct tm tm = { 0 };
    int year = s_digits (&p, 4);
    if (year < 0 || !s_expect (&p, '-'))
        return -1;
    int mon = s_digits (&p, 2);
    if (mon < 1 || mon > 12 || !s_expect (&p, '-'))
        return -1;
    int day = s_digits (&p, 2);
    if (day < 1 || day > 31 || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    int hour = s_digits (&p, 2);
    if (hour < 0 || hour > 23 || !s_expect (&p, ':'))
        return -1;
    int min = s_digits (&p, 2);
    if (min < 0 || min > 59 || !s_expect (&p, ':'))
        return -1;
    int sec = s_digits (&p, 2);
    if (sec < 0 || sec > 60)
        return -1;
    int64_t frac_us = 0;
    if (*p == '.') {
        p++;
        int ndigits = 0;
        while (isdigit ((unsigned char) *p)) {
            if (ndigits < 6)
                frac_us = frac_us * 10 + (*p - '0');
            ndigits++;
            p++;
        }
        if (ndigits == 0)
            return -1;
        for (int i = ndigits; i < 6; i++)
            frac_us *= 10;
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh = s_digits (&p, 2);
        if (oh < 0 || oh > 23)
            return -1;
        if (*p == ':')
            p++;
        int om = s_digits (&p, 2);
        if (om < 0 || om > 59)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    }
    if (*p != '\0')
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    /* a leap second (:60) is the next second; the date is checked without it */
    tm.tm_sec = sec == 60 ? 59 : sec;
    time_t secs = timegm (&tm);
    if (secs == (time_t) -1)
        return -1;
    /* timegm normalises 31 February into March; refuse dates that do not exist */
    struct tm check;
    gmtime_r (&secs, &check);
    if (check.tm_mday != day || check.tm_mon != mon - 1)
        return -1;
    if (sec == 60)
        secs += 1;
    *us = ((int64_t) secs - offset_s) * 1000000 + frac_us;
    return 0;
}
