/* inputlog.c - input that is not simply applied: late events, unknown
 * types, bad entries. Counted for the metrics, logged at a bounded rate.
 *
 * Each engine (one per partition) has one rk__inlog. The engine reports
 * what happens to an entry; this file counts it and decides, through the
 * limiters of logrl.c and the process-wide line budget, whether a line is
 * written now, held for a later summary, or nothing:
 *
 *   late events      riskd_late_events_total{stream}, the lateness in the
 *                    histogram riskd_event_lateness_seconds (1 s ... 30 d),
 *                    and the first late event of each minute logged with its
 *                    lateness; the others of that minute are summarised.
 *   unknown types    riskd_unknown_events_total{stream,type}: the first
 *                    RK_INLOG_TYPES distinct type names get a label value of
 *                    their own (cut to RK_INLOG_TYPE_MAX bytes), every later
 *                    one counts as "other", so a producer sending random
 *                    types cannot grow the metrics without bound. Each type
 *                    (and "other") is logged at its first occurrence, then
 *                    at most once an hour with the count since.
 *   bad entries      invalid (dead-lettered), trimmed pending entries,
 *                    poison, a detector failing on an entry or a timer: one
 *                    category each; the first is logged in full, then at
 *                    most one summary per 10 s.
 *
 * rk__inlog_flush (the engine's housekeeping timer, every 250 ms) writes
 * the summaries that are due. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

#define BAD_WINDOW (10 * RK_SECOND)
#define LATE_WINDOW RK_MINUTE
#define TYPE_WINDOW RK_HOUR

/* Upper bounds of riskd_event_lateness_seconds, in seconds. */
static const int64_t late_le[RK_INLOG_LATE_BUCKETS] = {
    1, 10, 60, 600, 3600, 21600, 86400, 259200, 604800, 2592000
};

typedef struct bad_kind {
    rk_log_level level;
    const char *prefix, *suffix;    /* full line: prefix text suffix */
    const char *what;               /* summary: "<n> <what> in the last ..." */
    const char *first;              /* "..., <first>: <text>" */
} bad_kind;

static const bad_kind bad_kinds[RK_INLOG__KINDS] = {
    [RK_INLOG_INVALID] = {RK_LOG_WARNING, "invalid entry ", "; dead-lettered",
                          "entries dead-lettered", "first error"},
    [RK_INLOG_TRIMMED] = {RK_LOG_WARNING, "pending entry ",
                          " no longer exists (trimmed); acknowledged",
                          "pending entries found trimmed and acknowledged", "first"},
    [RK_INLOG_POISON] = {RK_LOG_ERR, "entry ", "; dead-lettered",
                         "poison entries dead-lettered", "first"},
    [RK_INLOG_DETECTOR] = {RK_LOG_WARNING, "", "; dead-lettered",
                           "entries dead-lettered after a detector failed on them",
                           "first"},
    [RK_INLOG_TIMER] = {RK_LOG_WARNING, "", "", "detector failures on timers", "first"},
};

struct rk__inlog_type {
    uint64_t n[RK_STREAM_COUNT];
    rk__logrl rl;
    char name[RK_INLOG_TYPE_MAX + 1];
};

void rk__inlog_init(rk__inlog *l)
{
    int k;
    memset(l, 0, sizeof(*l));
    for (k = 0; k < RK_INLOG__KINDS; k++)
        rk__logrl_init(&l->bad[k], BAD_WINDOW);
    rk__logrl_init(&l->late_rl, LATE_WINDOW);
    rk_map_init(&l->type_index);
    l->budget = rk__logbudget_global();
}

void rk__inlog_free(rk__inlog *l)
{
    size_t i;
    for (i = 0; i < l->ntypes; i++)
        free(l->types[i]);
    free(l->other);
    rk_map_clear(&l->type_index, NULL);
    memset(l, 0, sizeof(*l));
}

/* n with thousands separators ("41,233"). */
static void fmt_count(uint64_t n, char *buf, size_t len)
{
    char d[32], out[48];
    int nd = snprintf(d, sizeof(d), "%llu", (unsigned long long)n), i, o = 0;
    for (i = 0; i < nd; i++) {
        if (i > 0 && (nd - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = d[i];
    }
    out[o] = '\0';
    snprintf(buf, len, "%s", out);
}

void rk__inlog_fmt_span(int64_t ms, char *buf, size_t len)
{
    static const struct { int64_t ms; const char *u; } units[] = {
        {RK_DAY, "d"}, {RK_HOUR, "h"}, {RK_MINUTE, "m"}, {RK_SECOND, "s"}
    };
    size_t i;
    if (ms < 0)
        ms = 0;
    for (i = 0; i < 4; i++) {
        if (ms >= units[i].ms) {
            int64_t a = ms / units[i].ms, b = 0;
            if (i + 1 < 4)
                b = (ms % units[i].ms) / units[i + 1].ms;
            if (b > 0)
                snprintf(buf, len, "%lld%s %lld%s", (long long)a, units[i].u,
                         (long long)b, units[i + 1].u);
            else
                snprintf(buf, len, "%lld%s", (long long)a, units[i].u);
            return;
        }
    }
    snprintf(buf, len, "%lldms", (long long)ms);
}

/* ===================================================================
 * Bad entries
 * =================================================================== */

void rk__inlog_bad(rk__inlog *l, int kind, int64_t now, const char *fmt, ...)
{
    char text[RK_LOGRL_TEXT];
    va_list ap;
    if (kind < 0 || kind >= RK_INLOG__KINDS)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (rk__logrl_hit(&l->bad[kind], l->budget, now, text))
        rk__log(bad_kinds[kind].level, "%s%s%s", bad_kinds[kind].prefix, text,
                bad_kinds[kind].suffix);
}

/* ===================================================================
 * Late events
 * =================================================================== */

void rk__inlog_late(rk__inlog *l, unsigned si, const char *stream, const char *id,
                    int64_t lateness, int64_t now)
{
    char text[RK_LOGRL_TEXT], span[48];
    int b;
    if (si >= RK_STREAM_COUNT)
        return;
    l->late[si]++;
    l->late_count++;
    l->late_sum_ms += (double)lateness;
    for (b = 0; b < RK_INLOG_LATE_BUCKETS; b++)
        if (lateness <= late_le[b] * RK_SECOND) {
            l->late_hist[b]++;
            break;
        }
    rk__inlog_fmt_span(lateness, span, sizeof(span));
    snprintf(text, sizeof(text), "%s/%s: %s behind the watermark", stream, id, span);
    if (rk__logrl_hit(&l->late_rl, l->budget, now, text))
        rk__log(RK_LOG_NOTICE, "late event %s", text);
}

/* ===================================================================
 * Unknown types
 * =================================================================== */

/* The record of type name (cut), created while fewer than RK_INLOG_TYPES
 * exist; "other" after that. NULL only when out of memory. */
static rk__inlog_type *type_get(rk__inlog *l, const char *name, bool *is_other)
{
    char cut[RK_INLOG_TYPE_MAX + 1];
    size_t n = strlen(name);
    rk__inlog_type *t;
    void *v;

    if (n > RK_INLOG_TYPE_MAX) {
        n = RK_INLOG_TYPE_MAX;
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--;                    /* never cut a UTF-8 sequence */
    }
    memcpy(cut, name, n);
    cut[n] = '\0';
    *is_other = false;
    if ((v = rk_map_get(&l->type_index, cut)) != NULL)
        return l->types[(uintptr_t)v - 1];
    if (l->ntypes < RK_INLOG_TYPES) {
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return NULL;
        memcpy(t->name, cut, n + 1);
        rk__logrl_init(&t->rl, TYPE_WINDOW);
        if (rk_map_put(&l->type_index, cut, (void *)(uintptr_t)(l->ntypes + 1), NULL) == NULL) {
            free(t);
            return NULL;
        }
        l->types[l->ntypes++] = t;
        return t;
    }
    *is_other = true;
    if (l->other == NULL) {
        l->other = calloc(1, sizeof(*l->other));
        if (l->other == NULL)
            return NULL;
        snprintf(l->other->name, sizeof(l->other->name), "other");
        rk__logrl_init(&l->other->rl, TYPE_WINDOW);
    }
    return l->other;
}

void rk__inlog_unknown(rk__inlog *l, unsigned si, const char *stream, const char *id,
                       const char *type, int64_t now)
{
    char text[RK_LOGRL_TEXT];
    rk__inlog_type *t;
    bool other;

    if (si >= RK_STREAM_COUNT)
        return;
    t = type_get(l, type ? type : "", &other);
    if (t == NULL)
        return;
    t->n[si]++;
    snprintf(text, sizeof(text), "\"%.*s\" in %s/%s", RK_INLOG_TYPE_MAX, type ? type : "",
             stream, id);
    if (rk__logrl_hit(&t->rl, l->budget, now, text))
        rk__log(RK_LOG_WARNING, "unknown event type %s (skipped%s)", text,
                other ? "; more than " RK_INLOG_TYPES_STR " distinct unknown types "
                        "seen, counted as type \"other\"" : "");
}

/* ===================================================================
 * Summaries
 * =================================================================== */

void rk__inlog_flush(rk__inlog *l, int64_t now)
{
    char first[RK_LOGRL_TEXT], num[48];
    uint64_t held;
    int64_t elapsed;
    size_t i;
    int k;

    for (k = 0; k < RK_INLOG__KINDS; k++)
        if (rk__logrl_flush(&l->bad[k], l->budget, now, &held, &elapsed, first,
                            sizeof(first))) {
            fmt_count(held, num, sizeof(num));
            rk__log(bad_kinds[k].level, "%s %s in the last %lld s, %s: %s", num,
                    bad_kinds[k].what, (long long)((elapsed + 999) / 1000),
                    bad_kinds[k].first, first);
        }
    if (rk__logrl_flush(&l->late_rl, l->budget, now, &held, &elapsed, first, sizeof(first))) {
        if (held > 1) {
            fmt_count(held - 1, num, sizeof(num));
            rk__log(RK_LOG_NOTICE, "late event %s (%s more late events in the last minute)",
                    first, num);
        } else {
            rk__log(RK_LOG_NOTICE, "late event %s", first);
        }
    }
    for (i = 0; i <= l->ntypes; i++) {
        rk__inlog_type *t = i < l->ntypes ? l->types[i] : l->other;
        if (t == NULL ||
            !rk__logrl_flush(&t->rl, l->budget, now, &held, &elapsed, first, sizeof(first)))
            continue;
        fmt_count(held - 1, num, sizeof(num));
        rk__log(RK_LOG_WARNING, "unknown event type %s (skipped; %s more %ssince the last "
                "report)", first, num, t == l->other ? "of other unknown types " : "");
    }
}

/* ===================================================================
 * Metrics
 * =================================================================== */

/* Append s as a Prometheus label value (\\, \" and \n escaped). */
/* s as a label value: backslash, quote and newline escaped. */
static void label_value(const char *s, char *out, size_t len)
{
    size_t k = 0;
    for (; *s && k + 3 < len; s++) {
        if (*s == '\\' || *s == '"')
            out[k++] = '\\';
        if (*s == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else {
            out[k++] = *s;
        }
    }
    out[k] = '\0';
}

static void render_type(const rk__inlog_type *t, rk__prom *m, const char *const *stream_keys)
{
    char name[512];
    unsigned si;
    label_value(t->name, name, sizeof(name));
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        if (t->n[si] == 0)
            continue;
        rk__prom_sample(m, "riskd_unknown_events_total", "{stream=\"%s\",type=\"%s\"} %llu",
                        stream_keys[si], name, (unsigned long long)t->n[si]);
    }
}

void rk__inlog_metrics(const rk__inlog *l, rk__prom *m, const char *const *stream_keys)
{
    uint64_t cum = 0;
    unsigned si;
    size_t i;
    int k;

    rk__prom_family(m, "riskd_unknown_events_total",
        "# HELP riskd_unknown_events_total Entries of an unknown type, skipped " "(the first "
        RK_INLOG_TYPES_STR " type names, then \"other\").\n"
        "# TYPE riskd_unknown_events_total counter\n");
    for (i = 0; i < l->ntypes; i++)
        render_type(l->types[i], m, stream_keys);
    if (l->other != NULL)
        render_type(l->other, m, stream_keys);
    rk__prom_family(m, "riskd_late_events_total",
        "# HELP riskd_late_events_total Events read with a ts older than the "
        "watermark (applied at their ts).\n"
        "# TYPE riskd_late_events_total counter\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        rk__prom_sample(m, "riskd_late_events_total", "{stream=\"%s\"} %llu", stream_keys[si],
                        (unsigned long long)l->late[si]);
    rk__prom_family(m, "riskd_event_lateness_seconds",
        "# HELP riskd_event_lateness_seconds How far behind the watermark late " "events were.\n"
        "# TYPE riskd_event_lateness_seconds histogram\n");
    for (k = 0; k < RK_INLOG_LATE_BUCKETS; k++) {
        cum += l->late_hist[k];
        rk__prom_sample(m, "riskd_event_lateness_seconds_bucket", "{le=\"%lld\"} %llu",
                        (long long)late_le[k], (unsigned long long)cum);
    }
    rk__prom_sample(m, "riskd_event_lateness_seconds_bucket", "{le=\"+Inf\"} %llu",
                    (unsigned long long)l->late_count);
    rk__prom_sample(m, "riskd_event_lateness_seconds_sum", " %.3f", l->late_sum_ms / 1000.0);
    rk__prom_sample(m, "riskd_event_lateness_seconds_count", " %llu",
                    (unsigned long long)l->late_count);
}

void rk__inlog_render(const rk__inlog *l, rk_buf *b, const char *const *stream_keys)
{
    rk__prom m = {0};
    rk__inlog_metrics(l, &m, stream_keys);
    rk__prom_finish(&m, b);
}
