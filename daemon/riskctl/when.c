/* daemon/riskctl/when.c - the times and stream entry ids options take.
 *
 * --since and --from take an RFC 3339 time or a duration back from now
 * ("2h": two hours ago); --from also takes a stream entry id (tail.c);
 * numbers (--port, --db) are whole and in range.
 * A value that is none of these is refused with one line saying what was
 * expected and what was given, so "yesterday" is never read as 0. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskctl.h"

int rk__ctl_is_entry_id(const char *s)
{
    const char *p = s;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '-') {
        p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0' && p - s < 48;
}

int rk__ctl_parse_past(const char *opt, const char *also, const char *s, int64_t now,
                       int64_t *out)
{
    int64_t d;
    if (rk__parse_rfc3339(s, out) == 0)
        return 0;
    if (rk_kit_parse_duration(s, &d) == 0 && d <= now) {
        *out = now - d;
        return 0;
    }
    fprintf(stderr, "riskctl: %s: expected %san RFC 3339 time (2025-03-01T18:00:00+08:00) "
            "or a duration like 2h, 30m, 7d, got '", opt, also ? also : "");
    rk__ctl_put_clean(stderr, s);
    fputs("'\n", stderr);
    return -1;
}

int rk__ctl_conn_opt(opts *o, int opt, const char *arg)
{
    switch (opt) {
    case 'c': o->config = arg; return 1;
    case RK_CTL_L_HOST: o->host = arg; return 1;
    case 'a': o->password = arg; return 1;
    case RK_CTL_L_USER: o->user = arg; return 1;
    case 'p': return rk__ctl_parse_int("--port", arg, 1, 65535, &o->port) == 0 ? 1 : -1;
    case 'n': return rk__ctl_parse_int("--db", arg, 0, 1000000, &o->db) == 0 ? 1 : -1;
    default: return 0;
    }
}

int rk__ctl_parse_int(const char *opt, const char *s, int min, int max, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "riskctl: %s: expected a whole number from %d to %d, got '", opt, min,
                max);
        rk__ctl_put_clean(stderr, s);
        fputs("'\n", stderr);
        return -1;
    }
    *out = (int)v;
    return 0;
}
