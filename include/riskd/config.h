/* riskd/config.h - validating a detector's configuration (plugin kit).
 *
 * What create() and reconfigure() need to turn the detector's JSON object
 * into typed settings with the daemon's error style ("<key>: expected
 * ..."), so that a plugin reports mistakes like the built-in detectors:
 *
 *   rk_kit_cfg_int, _double, _bool, _duration, _enum
 *                      typed getters: absent key -> the default; present ->
 *                      type and range checked.
 *   rk_kit_cfg_known_keys
 *                      rejects a key the detector does not know (a typo).
 *   rk_kit_parse_duration, rk_kit_format_duration
 *                      "90s", "10m", "24h", "30d" <-> milliseconds, for
 *                      durations the getters do not cover (inside arrays)
 *                      and for summaries.
 *   rk_kit_errf        snprintf into the caller's err buffer.
 *   rk_kit_unconst     const json_t * -> json_t * for jansson's iterators.
 *   RK_SECOND ... RK_DAY  milliseconds per unit.
 *
 * Header-only (static inline) and independent of the ABI version: a
 * plugin compiles it in and needs no symbol from the daemon.
 */
#ifndef RISKD_CONFIG_H
#define RISKD_CONFIG_H

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RK_SECOND  INT64_C(1000)
#define RK_MINUTE  (60 * RK_SECOND)
#define RK_HOUR    (60 * RK_MINUTE)
#define RK_DAY     (24 * RK_HOUR)

/* ===================================================================
 * Errors
 * =================================================================== */

static inline void rk_kit_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline void rk_kit_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* jansson's iteration API takes json_t * even for reading; this drops
 * const without a cast (keeps -Wcast-qual quiet). */
static inline json_t *rk_kit_unconst(const json_t *j)
{
    union { const json_t *c; json_t *m; } u;
    u.c = j;
    return u.m;
}

/* ===================================================================
 * Durations
 * =================================================================== */

/* Parse a duration string: a non-negative integer followed by one unit,
 * "ms", "s", "m", "h" or "d" ("90s", "10m", "24h", "30d"). Stores
 * milliseconds in *out and returns 0; returns -1 on anything else (no unit,
 * unknown unit, sign, spaces, fraction, overflow). */
static inline int rk_kit_parse_duration(const char *s, int64_t *out)
{
    const char *p = s;
    int64_t n = 0, mul;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    while (*p >= '0' && *p <= '9') {
        if (n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*p - '0');
        p++;
    }
    if (strcmp(p, "ms") == 0) mul = 1;
    else if (strcmp(p, "s") == 0) mul = RK_SECOND;
    else if (strcmp(p, "m") == 0) mul = RK_MINUTE;
    else if (strcmp(p, "h") == 0) mul = RK_HOUR;
    else if (strcmp(p, "d") == 0) mul = RK_DAY;
    else return -1;
    /* Cap at 100 years: nothing here needs more, and sums stay far from
     * overflow. */
    if (n > (INT64_C(36500) * RK_DAY) / mul)
        return -1;
    *out = n * mul;
    return 0;
}

/* Format a duration in ms as the largest exact unit ("30d", "90s"). */
static inline void rk_kit_format_duration(int64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % RK_DAY == 0) snprintf(buf, len, "%lldd", (long long)(ms / RK_DAY));
    else if (ms != 0 && ms % RK_HOUR == 0) snprintf(buf, len, "%lldh", (long long)(ms / RK_HOUR));
    else if (ms != 0 && ms % RK_MINUTE == 0) snprintf(buf, len, "%lldm", (long long)(ms / RK_MINUTE));
    else if (ms % RK_SECOND == 0) snprintf(buf, len, "%llds", (long long)(ms / RK_SECOND));
    else snprintf(buf, len, "%lldms", (long long)ms);
}

/* ===================================================================
 * Configuration getters
 *
 * Each getter reads obj[key]. When the key is absent (or obj is NULL) it
 * stores the default and returns 0. When present it checks type and range
 * and returns 0, or writes "<prefix><key>: expected ..." into err and
 * returns -1. `prefix` is the path of obj ("" or "overrides[0].set.").
 * =================================================================== */

static inline int rk_kit_cfg_int(const json_t *obj, const char *prefix,
                                 const char *key, long long min, long long max,
                                 long long def, long long *out,
                                 char *err, size_t errlen)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (v == NULL) { *out = def; return 0; }
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        rk_kit_errf(err, errlen, "%s%s: expected an integer from %lld to %lld",
                    prefix, key, min, max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static inline int rk_kit_cfg_double(const json_t *obj, const char *prefix,
                                    const char *key, double min, double max,
                                    double def, double *out,
                                    char *err, size_t errlen)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    double d;
    if (v == NULL) { *out = def; return 0; }
    if (!json_is_number(v) || (d = json_number_value(v)) < min || d > max ||
        isnan(d)) {
        rk_kit_errf(err, errlen, "%s%s: expected a number from %g to %g",
                    prefix, key, min, max);
        return -1;
    }
    *out = d;
    return 0;
}

static inline int rk_kit_cfg_bool(const json_t *obj, const char *prefix,
                                  const char *key, int def, int *out,
                                  char *err, size_t errlen)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (v == NULL) { *out = def; return 0; }
    if (!json_is_boolean(v)) {
        rk_kit_errf(err, errlen, "%s%s: expected true or false", prefix, key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* A duration; min_ms is the smallest accepted value (0 or 1, usually). */
static inline int rk_kit_cfg_duration(const json_t *obj, const char *prefix,
                                      const char *key, int64_t min_ms,
                                      int64_t def, int64_t *out,
                                      char *err, size_t errlen)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    int64_t ms;
    if (v == NULL) { *out = def; return 0; }
    if (!json_is_string(v) || rk_kit_parse_duration(json_string_value(v), &ms) != 0) {
        rk_kit_errf(err, errlen, "%s%s: expected a duration such as \"90s\", "
                    "\"10m\", \"24h\" or \"30d\"", prefix, key);
        return -1;
    }
    if (ms < min_ms) {
        rk_kit_errf(err, errlen, "%s%s: expected a duration of at least %lldms",
                    prefix, key, (long long)min_ms);
        return -1;
    }
    *out = ms;
    return 0;
}

/* A string from a fixed set: stores the index into `choices` (NULL-ended). */
static inline int rk_kit_cfg_enum(const json_t *obj, const char *prefix,
                                  const char *key, const char *const *choices,
                                  int def, int *out, char *err, size_t errlen)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    char list[256];
    size_t used = 0;
    int i;
    if (v == NULL) { *out = def; return 0; }
    if (json_is_string(v)) {
        for (i = 0; choices[i] != NULL; i++) {
            if (strcmp(json_string_value(v), choices[i]) == 0) {
                *out = i;
                return 0;
            }
        }
    }
    list[0] = '\0';
    for (i = 0; choices[i] != NULL && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
                         i ? ", " : "", choices[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    rk_kit_errf(err, errlen, "%s%s: expected one of %s", prefix, key, list);
    return -1;
}

/* Fail on the first key of obj not in `allowed` (NULL-ended). A NULL obj
 * passes. A non-object fails as "<prefix without dot>: expected an object". */
static inline int rk_kit_cfg_known_keys(const json_t *obj, const char *prefix,
                                        const char *const *allowed,
                                        char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    if (obj == NULL)
        return 0;
    if (!json_is_object(obj)) {
        size_t n = strlen(prefix);
        if (n > 0 && prefix[n - 1] == '.') n--;
        rk_kit_errf(err, errlen, "%.*s: expected an object", (int)n, prefix);
        return -1;
    }
    json_object_foreach(rk_kit_unconst(obj), key, v) {
        int i, found = 0;
        (void)v;
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(key, allowed[i]) == 0) { found = 1; break; }
        if (!found) {
            rk_kit_errf(err, errlen, "%s%s: unknown key", prefix, key);
            return -1;
        }
    }
    return 0;
}

#ifdef __cplusplus
}
#endif
#endif /* RISKD_CONFIG_H */
