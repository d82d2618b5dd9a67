/* tests/bench/gen.c - the benchmark's event generator (see gen.h).
 *
 * Filings ("T<n>") arrive every `spacing` ms of event time, spacing chosen
 * so that `entries` events span `days`. Each filing is done by one unit's
 * officers (officer o belongs to unit o % units) at a random enterprise and
 * schedules, in a min-heap keyed by (ts, seq):
 *
 *   inspection.scanned   99.5 %, up to 30 min after planned_at
 *   inspection.rated     60 %, 10 min .. 24 h after the scan; scores 5/4/3
 *                        mostly, 1 % of them <= 2, plus a share `probe`
 *                        scored 1 (each fires bad_rating at once: the
 *                        latency benchmark's probes)
 *   case.opened          10 % (source inspection, with task_id), then
 *                        case.decided 85 % (fine 200..20,200 yuan, some
 *                        confiscation) and case.review 5 %
 *   case.complaint       2 % about the filing's officers
 *   inspection.reported  1 % by the inspected enterprise (a filed visit)
 *   clock.tick           every 10 min of event time on enforce:case (unless
 *                        no_ticks)
 *
 * A share `anomaly` of the filings instead carries one of nine anomalies:
 * never scanned; scanned by another enterprise; rated 1; three complaints
 * about one officer within hours; a scan of an unknown task; a report of an
 * unfiled visit; an inspection case without task_id; a fine 30 times the
 * usual; a filing by a single officer. `filings_only` makes only filings,
 * planned at their own ts, for the memory benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define TICK_MS (10 * MIN_MS)

enum { K_FILE, K_SCAN, K_RATE, K_OPEN, K_DECIDE, K_REVIEW, K_COMPLAINT, K_REPORT,
       K_TICK, K_ORPHAN_SCAN };

enum { A_NONE = -1, A_NOT_SCANNED, A_MISMATCH, A_BAD_RATING, A_COMPLAINTS,
       A_ORPHAN_SCAN, A_UNFILED_REPORT, A_CASE_NO_TASK, A_FINE_SPIKE, A_ONE_OFFICER,
       A__COUNT };

typedef struct item {
    int64_t ts;
    uint64_t seq;
    long long task;         /* task number; case number for case items */
    int32_t unit, ent, off[3];
    uint8_t kind, noff, anomaly, extra;
} item;

struct bg_gen {
    bg_opts o;
    uint64_t rng;
    double spacing;         /* ms of event time between filings */
    double next_file;       /* event time of the next filing */
    long long tasks, cases, complaints, orphans;
    item *heap;
    size_t n, cap;
    uint64_t seq;
    int last_unit;          /* unit of the last event, -1 for a tick */
};

int64_t bg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t bg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void bg_opts_default(bg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->entries = 1000000;
    o->units = 1000;
    o->officers = 20000;
    o->enterprises = 200000;
    o->days = 0;                /* entries / 20000 */
    o->anomaly = 0.01;
    o->start_ms = 1735660800000LL; /* 2025-01-01T00:00:00+08:00 */
    o->seed = 42;
}

static uint64_t rnd(bg_gen *g)
{
    uint64_t x = g->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double unif(bg_gen *g)
{
    return (double)(rnd(g) >> 11) * (1.0 / 9007199254740992.0);
}

static int64_t between(bg_gen *g, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(unif(g) * (double)(hi - lo));
}

static int pick(bg_gen *g, int n)
{
    return (int)(rnd(g) % (uint64_t)n);
}

/* An officer of unit u (or any officer when there are fewer than units). */
static int officer_of(bg_gen *g, int u)
{
    int per;
    if (g->o.officers <= g->o.units)
        return pick(g, g->o.officers);
    per = (g->o.officers - u + g->o.units - 1) / g->o.units;
    return u + pick(g, per) * g->o.units;
}

static int item_before(const item *a, const item *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

static int push(bg_gen *g, const item *it)
{
    size_t i;
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 4096;
        item *nh = realloc(g->heap, nc * sizeof(*nh));
        if (nh == NULL)
            return -1;
        g->heap = nh;
        g->cap = nc;
    }
    i = g->n++;
    g->heap[i] = *it;
    g->heap[i].seq = g->seq++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        item t;
        if (!item_before(&g->heap[i], &g->heap[p]))
            break;
        t = g->heap[p];
        g->heap[p] = g->heap[i];
        g->heap[i] = t;
        i = p;
    }
    return 0;
}

static item pop(bg_gen *g)
{
    item top = g->heap[0];
    size_t i = 0;
    g->heap[0] = g->heap[--g->n];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        item t;
        if (l < g->n && item_before(&g->heap[l], &g->heap[m]))
            m = l;
        if (r < g->n && item_before(&g->heap[r], &g->heap[m]))
            m = r;
        if (m == i)
            break;
        t = g->heap[m];
        g->heap[m] = g->heap[i];
        g->heap[i] = t;
        i = m;
    }
    return top;
}

bg_gen *bg_gen_new(const bg_opts *o)
{
    bg_gen *g;
    double per_day, filings_per_day;
    item tick;

    if (o->units < 1 || o->officers < 1 || o->enterprises < 1 || o->entries < 1 ||
        o->days < 0 || o->anomaly < 0 || o->anomaly > 1 || o->probe < 0 || o->probe > 1)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->o = *o;
    if (g->o.days <= 0)
        g->o.days = (double)o->entries / 20000.0;
    g->rng = o->seed * 0x9E3779B97F4A7C15ULL + 1;
    per_day = (double)o->entries / g->o.days;
    if (o->filings_only) {
        filings_per_day = per_day;
    } else {
        /* events per filing: 1 + 0.995 + 0.6 + 0.1 * (1 + 0.85 * 1.05)
         * + 0.02 + 0.01, plus the ticks */
        filings_per_day = (per_day - (o->no_ticks ? 0 : (double)DAY_MS / TICK_MS)) / 2.82;
        if (filings_per_day < 1)
            filings_per_day = 1;
    }
    g->spacing = (double)DAY_MS / filings_per_day;
    g->next_file = (double)o->start_ms;
    if (!o->filings_only && !o->no_ticks) {
        memset(&tick, 0, sizeof(tick));
        tick.kind = K_TICK;
        tick.ts = o->start_ms + TICK_MS;
        if (push(g, &tick) != 0) {
            bg_gen_free(g);
            return NULL;
        }
    }
    return g;
}

void bg_gen_free(bg_gen *g)
{
    if (g) {
        free(g->heap);
        free(g);
    }
}

/* Format ms since the epoch as RFC 3339 at +08:00 into buf (>= 40 bytes). */
static void fmt_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)((ms + 8 * HOUR_MS) / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+08:00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms % 1000));
}

/* Plan the follow-ups of filing f (already filled in). */
static int plan(bg_gen *g, const item *f, int64_t planned)
{
    item it = *f;
    int64_t scan_ts = planned + between(g, -10 * MIN_MS, 30 * MIN_MS);
    int i;

    if (scan_ts <= f->ts)
        scan_ts = f->ts + 1;
    if (f->anomaly != A_NOT_SCANNED && unif(g) < 0.995) {
        it.kind = K_SCAN;
        it.ts = scan_ts;
        if (push(g, &it) != 0)
            return -1;
    }
    if (f->anomaly == A_BAD_RATING || unif(g) < 0.6) {
        double r = unif(g);
        it.kind = K_RATE;
        it.ts = scan_ts + between(g, 10 * MIN_MS, DAY_MS);
        it.extra = f->anomaly == A_BAD_RATING || unif(g) < g->o.probe ? 1
                 : r < 0.003 ? 1 : r < 0.01 ? 2 : r < 0.10 ? 3 : r < 0.40 ? 4 : 5;
        if (push(g, &it) != 0)
            return -1;
    }
    if (f->anomaly == A_CASE_NO_TASK || f->anomaly == A_FINE_SPIKE || unif(g) < 0.1) {
        it.kind = K_OPEN;
        it.task = f->task;
        it.ts = scan_ts + between(g, HOUR_MS, 3 * DAY_MS);
        if (push(g, &it) != 0)
            return -1;
    }
    if (unif(g) < 0.02) {
        it.kind = K_COMPLAINT;
        it.ts = scan_ts + between(g, HOUR_MS, 5 * DAY_MS);
        if (push(g, &it) != 0)
            return -1;
    }
    if (f->anomaly == A_COMPLAINTS) {
        for (i = 0; i < 3; i++) {
            it.kind = K_COMPLAINT;
            it.ts = scan_ts + between(g, HOUR_MS, 6 * HOUR_MS);
            if (push(g, &it) != 0)
                return -1;
        }
    }
    if (unif(g) < 0.01) {
        it.kind = K_REPORT;
        it.ts = scan_ts + between(g, 0, 2 * HOUR_MS);
        if (push(g, &it) != 0)
            return -1;
    }
    if (f->anomaly == A_UNFILED_REPORT) {
        it.kind = K_REPORT;
        it.unit = pick(g, g->o.units);
        it.ent = pick(g, g->o.enterprises);
        it.ts = scan_ts + between(g, 0, 2 * HOUR_MS);
        if (push(g, &it) != 0)
            return -1;
    }
    if (f->anomaly == A_ORPHAN_SCAN) {
        it = *f;
        it.kind = K_ORPHAN_SCAN;
        it.task = g->orphans++;
        it.ts = scan_ts;
        if (push(g, &it) != 0)
            return -1;
    }
    return 0;
}

static int officers_json(const item *it, char *buf, size_t len)
{
    int n = 0, i;
    n += snprintf(buf + n, len - (size_t)n, "[");
    for (i = 0; i < it->noff; i++)
        n += snprintf(buf + n, len - (size_t)n, "%s\"O%d\"", i ? "," : "", it->off[i]);
    n += snprintf(buf + n, len - (size_t)n, "]");
    return n;
}

int bg_gen_next(bg_gen *g, int64_t ts_override, int *stream, int64_t *ts,
                char *buf, size_t len)
{
    static const char *const bases[] = {"routine", "complaint", "special", "random"};
    static const char *const items[] = {"food", "fire", "price", "license", "quality"};
    static const char *const cats[] = {"attitude", "procedure", "fee", "delay"};
    static const char *const outcomes[] = {"upheld", "upheld", "confirmed_illegal",
                                           "altered", "revoked", "mediated"};
    char t[48], t2[48], offs[96];
    item it;
    int n = 0;

    if (len < 1024)
        return -1;
    if (g->n > 0 && (double)g->heap[0].ts <= g->next_file) {
        it = pop(g);
        g->last_unit = it.kind == K_TICK ? -1 : it.unit;
    } else {
        int64_t planned;
        memset(&it, 0, sizeof(it));
        it.kind = K_FILE;
        it.ts = (int64_t)g->next_file;
        g->next_file += g->spacing;
        it.task = g->tasks++;
        it.unit = pick(g, g->o.units);
        g->last_unit = it.unit;
        it.ent = pick(g, g->o.enterprises);
        it.anomaly = (uint8_t)A_NONE;
        if (!g->o.filings_only && unif(g) < g->o.anomaly)
            it.anomaly = (uint8_t)pick(g, A__COUNT);
        it.noff = it.anomaly == A_ONE_OFFICER ? 1 : unif(g) < 0.9 ? 2 : 3;
        for (int i = 0; i < it.noff; i++)
            it.off[i] = officer_of(g, it.unit);
        planned = g->o.filings_only ? it.ts : it.ts + between(g, 0, 4 * HOUR_MS);
        *stream = BG_SCAN;
        *ts = ts_override >= 0 ? ts_override : it.ts;
        fmt_time(*ts, t, sizeof(t));
        fmt_time(ts_override >= 0 ? ts_override : planned, t2, sizeof(t2));
        officers_json(&it, offs, sizeof(offs));
        if (g->o.filings_only) {
            n = snprintf(buf, len,
                         "{\"type\":\"inspection.filed\",\"ts\":\"%s\",\"task_id\":\"T%lld\","
                         "\"unit_id\":\"U%d\",\"officers\":%s,\"enterprise_id\":\"E%d\","
                         "\"basis\":\"%s\",\"items\":[\"%s\"],\"region\":\"R%d\"}",
                         t, it.task, it.unit, offs, it.ent, bases[it.task % 4],
                         items[it.task % 5], it.unit % 50);
        } else {
            n = snprintf(buf, len,
                         "{\"type\":\"inspection.filed\",\"ts\":\"%s\",\"task_id\":\"T%lld\","
                         "\"unit_id\":\"U%d\",\"officers\":%s,\"enterprise_id\":\"E%d\","
                         "\"planned_at\":\"%s\",\"basis\":\"%s\",\"items\":[\"%s\",\"%s\"],"
                         "\"region\":\"R%d\"}",
                         t, it.task, it.unit, offs, it.ent, t2, bases[it.task % 4],
                         items[it.task % 5], items[(it.task + 2) % 5], it.unit % 50);
            if (plan(g, &it, planned) != 0)
                return -1;
        }
        return n < (int)len ? n : -1;
    }

    *ts = ts_override >= 0 ? ts_override : it.ts;
    fmt_time(*ts, t, sizeof(t));
    officers_json(&it, offs, sizeof(offs));
    switch (it.kind) {
    case K_TICK:
        *stream = BG_CASE;
        n = snprintf(buf, len, "{\"type\":\"clock.tick\",\"ts\":\"%s\"}", t);
        it.ts += TICK_MS;
        if (push(g, &it) != 0)
            return -1;
        break;
    case K_SCAN:
        *stream = BG_SCAN;
        n = snprintf(buf, len,
                     "{\"type\":\"inspection.scanned\",\"ts\":\"%s\",\"task_id\":\"T%lld\","
                     "\"enterprise_id\":\"E%d\",\"region\":\"R%d\"}",
                     t, it.task,
                     it.anomaly == A_MISMATCH ? (it.ent + 1) % g->o.enterprises : it.ent,
                     it.unit % 50);
        break;
    case K_ORPHAN_SCAN:
        *stream = BG_SCAN;
        n = snprintf(buf, len,
                     "{\"type\":\"inspection.scanned\",\"ts\":\"%s\",\"task_id\":\"X%lld\","
                     "\"enterprise_id\":\"E%d\",\"unit_id\":\"U%d\"}",
                     t, it.task, it.ent, it.unit);
        break;
    case K_RATE:
        *stream = BG_SCAN;
        n = snprintf(buf, len,
                     "{\"type\":\"inspection.rated\",\"ts\":\"%s\",\"task_id\":\"T%lld\","
                     "\"enterprise_id\":\"E%d\",\"score\":%d,\"comment\":\"%s\"}",
                     t, it.task, it.ent, it.extra,
                     it.extra <= 2 ? "officers were rude and asked for a fee" : "fine");
        break;
    case K_REPORT:
        *stream = BG_SCAN;
        n = snprintf(buf, len,
                     "{\"type\":\"inspection.reported\",\"ts\":\"%s\",\"enterprise_id\":\"E%d\","
                     "\"unit_id\":\"U%d\",\"officers\":%s,\"note\":\"visit\",\"region\":\"R%d\"}",
                     t, it.ent, it.unit, offs, it.unit % 50);
        break;
    case K_OPEN: {
        long long c = g->cases++;
        *stream = BG_CASE;
        if (it.anomaly == A_CASE_NO_TASK)
            n = snprintf(buf, len,
                         "{\"type\":\"case.opened\",\"ts\":\"%s\",\"case_id\":\"C%lld\","
                         "\"unit_id\":\"U%d\",\"source\":\"inspection\",\"enterprise_id\":\"E%d\"}",
                         t, c, it.unit, it.ent);
        else
            n = snprintf(buf, len,
                         "{\"type\":\"case.opened\",\"ts\":\"%s\",\"case_id\":\"C%lld\","
                         "\"unit_id\":\"U%d\",\"source\":\"inspection\",\"task_id\":\"T%lld\","
                         "\"enterprise_id\":\"E%d\",\"officers\":%s,\"region\":\"R%d\"}",
                         t, c, it.unit, it.task, it.ent, offs, it.unit % 50);
        if (it.anomaly == A_FINE_SPIKE || unif(g) < 0.85) {
            it.kind = K_DECIDE;
            it.task = c;
            it.ts += between(g, DAY_MS, 20 * DAY_MS);
            if (push(g, &it) != 0)
                return -1;
        }
        break;
    }
    case K_DECIDE: {
        double fine = 200 + unif(g) * 20000;
        if (it.anomaly == A_FINE_SPIKE)
            fine *= 30;
        *stream = BG_CASE;
        n = snprintf(buf, len,
                     "{\"type\":\"case.decided\",\"ts\":\"%s\",\"case_id\":\"C%lld\","
                     "\"unit_id\":\"U%d\",\"fine\":%.0f,\"confiscation\":%d,"
                     "\"item_code\":\"%s\",\"enterprise_id\":\"E%d\",\"leniency\":\"%s\","
                     "\"region\":\"R%d\"}",
                     t, it.task, it.unit, fine, pick(g, 4) == 0 ? pick(g, 5000) : 0,
                     items[it.task % 5], it.ent, pick(g, 5) == 0 ? "lighter" : "none",
                     it.unit % 50);
        if (unif(g) < 0.05) {
            it.kind = K_REVIEW;
            it.ts += between(g, 10 * DAY_MS, 40 * DAY_MS);
            if (push(g, &it) != 0)
                return -1;
        }
        break;
    }
    case K_REVIEW:
        *stream = BG_CASE;
        n = snprintf(buf, len,
                     "{\"type\":\"case.review\",\"ts\":\"%s\",\"case_id\":\"C%lld\","
                     "\"unit_id\":\"U%d\",\"outcome\":\"%s\",\"region\":\"R%d\"}",
                     t, it.task, it.unit, outcomes[pick(g, 6)], it.unit % 50);
        break;
    case K_COMPLAINT:
        *stream = BG_CASE;
        n = snprintf(buf, len,
                     "{\"type\":\"case.complaint\",\"ts\":\"%s\",\"complaint_id\":\"Q%lld\","
                     "\"unit_id\":\"U%d\",\"officers\":[\"O%d\"],\"enterprise_id\":\"E%d\","
                     "\"category\":\"%s\",\"region\":\"R%d\"}",
                     t, g->complaints++, it.unit, it.off[0], it.ent, cats[pick(g, 4)],
                     it.unit % 50);
        break;
    default:
        return -1;
    }
    return n > 0 && n < (int)len ? n : -1;
}

int bg_gen_last_unit(const bg_gen *g)
{
    return g->last_unit;
}
