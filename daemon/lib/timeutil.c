/* daemon/lib/timeutil.c - event times: RFC 3339 parsing and formatting.
 *
 * Every time inside the daemon is an int64_t of milliseconds since the Unix
 * epoch. This file converts between that and RFC 3339 text without touching
 * the C library's time zone machinery (no TZ, timegm or gmtime_r): dates go
 * through Howard Hinnant's days-from-civil / civil-from-days arithmetic on
 * the proleptic Gregorian calendar, which is exact for every year and uses
 * floor division so times before 1970 format correctly too.
 *
 * The parser is strict: "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" and nothing
 * else (no spaces, nothing before or after). 'T' and 'Z' may be lower case.
 * Any number of fraction digits is accepted and truncated to milliseconds;
 * a leap second (second 60) is read as 59.999. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "internal.h"

#define MS_PER_DAY INT64_C(86400000)

/* ===================================================================
 * Calendar arithmetic
 * =================================================================== */

/* Return the number of days from 1970-01-01 to the date y-m-d (m 1..12,
 * d 1..31) of the proleptic Gregorian calendar; negative before 1970. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);                  /* 0..399 */
    unsigned mp = m > 2 ? m - 3 : m + 9;                       /* March = 0 */
    unsigned doy = (153 * mp + 2) / 5 + d - 1;                 /* 0..365 */
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;      /* 0..146096 */
    return era * 146097 + (int64_t)doe - 719468;
}

/* Store in *y, *m, *d the civil date of day z counted from 1970-01-01
 * (negative before); the inverse of days_from_civil(). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ===================================================================
 * Parsing
 * =================================================================== */

/* Read exactly n decimal digits at s into *out. Returns 0, or -1 at the
 * first character that is not a digit (it never reads past a NUL). */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int rk__parse_rfc3339(const char *s, int64_t *out)
{
    int year, mon, day, hour, min, sec, ms = 0, off_min = 0;

    if (s == NULL || out == NULL)
        return -1;
    if (digits(s, 4, &year) < 0 || s[4] != '-' ||
        digits(s + 5, 2, &mon) < 0 || s[7] != '-' ||
        digits(s + 8, 2, &day) < 0 || (s[10] != 'T' && s[10] != 't') ||
        digits(s + 11, 2, &hour) < 0 || s[13] != ':' ||
        digits(s + 14, 2, &min) < 0 || s[16] != ':' ||
        digits(s + 17, 2, &sec) < 0)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            if (n < 3) {
                ms = ms * 10 + (*p - '0');
                n++;
            }
        for (; n < 3; n++)              /* ".5" is 500 ms */
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        if (digits(p + 1, 2, &oh) < 0 || p[3] != ':' || digits(p + 4, 2, &om) < 0)
            return -1;
        if (oh > 23 || om > 59)
            return -1;
        off_min = sign * (oh * 60 + om);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;

    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
        hour > 23 || min > 59 || sec > 60)
        return -1;
    if (sec == 60) {                    /* leap second: 59.999 */
        sec = 59;
        ms = 999;
    }
    int64_t days = days_from_civil(year, (unsigned)mon, (unsigned)day);
    *out = days * MS_PER_DAY + (int64_t)hour * 3600000 + (int64_t)min * 60000 +
           (int64_t)sec * 1000 + ms - (int64_t)off_min * 60000;
    return 0;
}

/* ===================================================================
 * Formatting
 * =================================================================== */

void rk__format_rfc3339(int64_t ms, int offset_s, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    /* Whole minutes only, and at most 23:59 either way, so the text
     * always states the offset that was applied. */
    int off_min = offset_s / 60;
    if (off_min > 23 * 60 + 59)
        off_min = 23 * 60 + 59;
    if (off_min < -(23 * 60 + 59))
        off_min = -(23 * 60 + 59);
    int64_t shift = (int64_t)off_min * 60000;
    int64_t local;
    if (shift > 0 && ms > INT64_MAX - shift)
        local = INT64_MAX;
    else if (shift < 0 && ms < INT64_MIN - shift)
        local = INT64_MIN;
    else
        local = ms + shift;

    int64_t days = local / MS_PER_DAY;
    int64_t rem = local % MS_PER_DAY;
    if (rem < 0) {                      /* floor division */
        rem += MS_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int hh = (int)(rem / 3600000);
    int mi = (int)(rem / 60000 % 60);
    int ss = (int)(rem / 1000 % 60);
    int fr = (int)(rem % 1000);

    char zone[8];
    if (off_min == 0) {
        zone[0] = 'Z';
        zone[1] = '\0';
    } else {
        int a = off_min < 0 ? -off_min : off_min;
        snprintf(zone, sizeof zone, "%c%02d:%02d", off_min < 0 ? '-' : '+',
                 a / 60 % 100, a % 60);
    }
    snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d:%02d.%03d%s", (long long)y,
             m, d, hh, mi, ss, fr, zone);
}

/* ===================================================================
 * Wall clock
 * =================================================================== */

int64_t rk__wall_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
