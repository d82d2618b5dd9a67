/* indicators.c - the supervision indicators (filings, unfiled, scan,
 * rating, case, fine, complaint and review figures) per unit, officer,
 * region and `all`, on event time.
 *
 * Pure: events, alerts of the unfiled_inspection rules and the engine's
 * now go in; counters per key and period come out. Nothing here talks to
 * Redis (indicators_out.c writes the hashes) or reads a clock.
 *
 * Keys. Every event counts for its unit, each of its officers, its region
 * (the event's, else the last region seen with its unit) and `all`. One
 * key ("entity") holds a fixed set of counters (rk__ind_counts: 16 x 32
 * bits + the fines in fen, 72 bytes) for each of
 *   - two month slots and two quarter slots (the two latest calendar
 *     periods the key has data for; older ones are dropped), and
 *   - the rolling window as day buckets: one bucket per calendar day (in
 *     clock.timezone) with data, at most window-days of them (plus days
 *     ahead of now, for inspections planned in the future); buckets older
 *     than the window are dropped as now moves.
 * The window is the ceil(indicators.window / 1d) calendar days ending with
 * the day of now.
 *
 * Events to counters. Filings (by planned_at), scan deadlines and scans
 * are kept per task (struct task: its unit, officers, region, enterprise,
 * kind, joint id, planned_at, first scan, rated) and every figure of a task
 * is derived from that record: task_apply(-1) takes them all out, the
 * record changes (amendment, scan, rating, deadline passed), task_apply(+1)
 * puts them back. So an amendment moves a filing to its new unit and
 * period, and a scan that arrives late still counts where its filing is.
 * Decisions are kept per case the same way (unit, region, time, fine,
 * leniency). Distinct enterprises per key and period: one small record per
 * (key, enterprise) with the last day, the months and the quarters it was
 * counted in; a joint inspection counts once per key through a record per
 * (key, joint_id). Both only ever count up: an amendment that moves a
 * filing to another enterprise or joint id leaves the first counted.
 *
 * Records are dropped once they are older than anything still reported:
 * the start of the previous quarter and of the window, less the scan
 * deadline. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "riskd/kit.h"
#include "internal.h"
#include "indicators.h"

#define DAY_MS INT64_C(86400000)
#define IND_VERSION 1u
#define EMPTY INT32_MIN
#define NO_DAY (INT32_MIN / 2)    /* now_day before any time: no underflow */

const char *const rk__ind_scope_names[RK_IND_NSCOPES] = {"unit", "officer", "region", "all"};
const char *const rk__ind_counter_names[RK_IC_N] = {
    "filings", "unfiled", "scanned_by_deadline", "deadline_passed", "scanned", "rated",
    "ratings", "bad_ratings", "counted_inspections", "enterprises", "cases_opened",
    "cases_decided", "lenient", "complaints", "reviews", "corrections"};

/* Slots a bump goes to. */
#define S_DAY 1
#define S_MONTH 2
#define S_QUARTER 4
#define S_ALL 7

typedef struct day_slot {
    int32_t day;
    rk__ind_counts n;
} day_slot;

typedef struct ent {
    const char *key;                /* the id (inside the map entry's key) */
    uint8_t scope;
    bool listed;                    /* on the dirty list */
    uint16_t ndays, capdays;
    int32_t mon[2], qtr[2];         /* slot periods, EMPTY when unused */
    rk__ind_counts m[2], q[2];
    day_slot *days;                 /* sorted by day */
    int64_t last_update;            /* event time */
    uint32_t written[RK_IND_NPERIODS];
} ent;

typedef struct task {
    int64_t planned_at;
    int64_t scan_ts;                /* INT64_MIN: not scanned */
    int64_t seen;                   /* latest event time about it */
    char *unit, *region, *enterprise, *joint;
    char **off;
    uint32_t noff;
    uint32_t heap_pos;
    uint8_t kind;
    bool filed, passed, rated;
    uint64_t counted;               /* bit per key of the task (see task_ents) */
} task;

typedef struct cas {
    int64_t ts;
    char *unit, *region;
    int64_t fen;
    bool lenient;
} cas;

typedef struct pair {
    int32_t last_day;
    int32_t mon[2], qtr[2];
} pair;

struct rk__ind {
    rk__ind_settings s;
    int32_t wdays;
    int64_t now;
    int32_t now_day;
    rk_map ents;                    /* "<scope>\x1f<id>" -> ent */
    rk_map tasks;                   /* task_id -> task */
    rk_map cases;                   /* case_id -> cas */
    rk_map pairs;                   /* "E|J\x1f<scope>\x1f<id>\x1f<x>" -> pair */
    rk_map unit_region;             /* unit_id -> region (char *) */
    rk_heap deadlines;              /* filed tasks not passed, by deadline */
    ent **dirty;
    size_t ndirty, capdirty;
    size_t day_bytes;               /* bytes of all day buckets */
};

/* ===================================================================
 * Periods
 * =================================================================== */

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t rk__ind_day(int64_t ms, int tz)
{
    return floordiv(ms + (int64_t)tz * 1000, DAY_MS);
}

static void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
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

static int64_t days_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned mp = m > 2 ? m - 3 : m + 9;
    unsigned doy = (153 * mp + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int32_t month_of_day(int64_t day)
{
    int64_t y;
    unsigned m, d;
    civil(day, &y, &m, &d);
    return (int32_t)(y * 12 + (m - 1));
}

int32_t rk__ind_month(int64_t ms, int tz) { return month_of_day(rk__ind_day(ms, tz)); }
int32_t rk__ind_quarter(int64_t ms, int tz) { return (int32_t)floordiv(rk__ind_month(ms, tz), 3); }

int64_t rk__ind_month_start(int32_t month, int tz)
{
    int64_t y = floordiv(month, 12);
    unsigned m = (unsigned)(month - y * 12) + 1;
    return days_civil(y, m, 1) * DAY_MS - (int64_t)tz * 1000;
}

int64_t rk__ind_quarter_start(int32_t q, int tz) { return rk__ind_month_start(q * 3, tz); }

void rk__ind_month_label(int32_t month, char *buf, size_t len)
{
    int64_t y = floordiv(month, 12);
    snprintf(buf, len, "%04lld-%02d", (long long)y, (int)(month - y * 12) + 1);
}

void rk__ind_quarter_label(int32_t q, char *buf, size_t len)
{
    int64_t y = floordiv(q, 4);
    snprintf(buf, len, "%04lldQ%d", (long long)y, (int)(q - y * 4) + 1);
}

int rk__ind_parse_label(const char *s, int32_t *idx)
{
    int y, m, n = 0;
    if (sscanf(s, "%4d-%2d%n", &y, &m, &n) == 2 && n == 7 && s[n] == '\0' && m >= 1 &&
        m <= 12) {
        *idx = y * 12 + m - 1;
        return 1;
    }
    if (sscanf(s, "%4dQ%1d%n", &y, &m, &n) == 2 && n == 6 && s[n] == '\0' && m >= 1 &&
        m <= 4) {
        *idx = y * 4 + m - 1;
        return 2;
    }
    return 0;
}

/* ===================================================================
 * Keys and their slots
 * =================================================================== */

static void mark(rk__ind *ind, ent *e)
{
    if (e->listed)
        return;
    if (ind->ndirty == ind->capdirty) {
        size_t nc = ind->capdirty ? ind->capdirty * 2 : 256;
        ent **nd = realloc(ind->dirty, nc * sizeof(*nd));
        if (nd == NULL)
            return;                 /* written with the next full pass */
        ind->dirty = nd;
        ind->capdirty = nc;
    }
    ind->dirty[ind->ndirty++] = e;
    e->listed = true;
}

static ent *ent_get(rk__ind *ind, int scope, const char *id, bool create)
{
    char k[512];
    rk_map_entry *me;
    ent *e;
    snprintf(k, sizeof(k), "%c\x1f%s", '0' + scope, id);
    if ((e = rk_map_get(&ind->ents, k)) != NULL || !create)
        return e;
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->scope = (uint8_t)scope;
    e->mon[0] = e->mon[1] = e->qtr[0] = e->qtr[1] = EMPTY;
    e->last_update = INT64_MIN;
    if ((me = rk_map_put(&ind->ents, k, e, NULL)) == NULL) {
        free(e);
        return NULL;
    }
    e->key = me->key + 2;
    return e;
}

/* The slot of period p among two (idx[2]); create: take the older one when
 * p is newer than it. NULL: p is older than both (dropped). */
static rk__ind_counts *slot2(int32_t idx[2], rk__ind_counts c[2], int32_t p, bool create)
{
    int i, old;
    for (i = 0; i < 2; i++)
        if (idx[i] == p)
            return &c[i];
    if (!create)
        return NULL;
    old = idx[0] == EMPTY ? 0 : idx[1] == EMPTY ? 1 : idx[0] < idx[1] ? 0 : 1;
    if (idx[old] != EMPTY && idx[old] > p)
        return NULL;
    idx[old] = p;
    memset(&c[old], 0, sizeof(c[old]));
    return &c[old];
}

static rk__ind_counts *day_get(rk__ind *ind, ent *e, int32_t day, bool create)
{
    uint16_t lo = 0, hi = e->ndays;
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi) / 2);
        if (e->days[mid].day < day)
            lo = (uint16_t)(mid + 1);
        else
            hi = mid;
    }
    if (lo < e->ndays && e->days[lo].day == day)
        return &e->days[lo].n;
    if (!create || day <= ind->now_day - ind->wdays || e->ndays == UINT16_MAX)
        return NULL;
    if (e->ndays == e->capdays) {
        uint16_t nc = e->capdays ? (uint16_t)(e->capdays + (e->capdays + 3) / 4) : 4;
        day_slot *nd;
        if (nc < e->capdays || nc > UINT16_MAX - 1)
            nc = UINT16_MAX - 1;
        nd = realloc(e->days, nc * sizeof(*nd));
        if (nd == NULL)
            return NULL;
        ind->day_bytes += (size_t)(nc - e->capdays) * sizeof(*nd);
        e->days = nd;
        e->capdays = nc;
    }
    memmove(&e->days[lo + 1], &e->days[lo], (size_t)(e->ndays - lo) * sizeof(day_slot));
    memset(&e->days[lo], 0, sizeof(day_slot));
    e->days[lo].day = day;
    e->ndays++;
    return &e->days[lo].n;
}

/* Drop the day buckets of e that fell out of the window. */
static void day_prune(rk__ind *ind, ent *e)
{
    uint16_t k = 0;
    while (k < e->ndays && e->days[k].day <= ind->now_day - ind->wdays)
        k++;
    if (k == 0)
        return;
    memmove(e->days, e->days + k, (size_t)(e->ndays - k) * sizeof(day_slot));
    e->ndays = (uint16_t)(e->ndays - k);
    if (e->ndays == 0) {
        ind->day_bytes -= (size_t)e->capdays * sizeof(day_slot);
        free(e->days);
        e->days = NULL;
        e->capdays = 0;
    }
}

static void add_to(rk__ind_counts *n, int c, int32_t d, int64_t fen)
{
    if (n == NULL)
        return;
    if (c >= 0)
        n->c[c] += d;
    n->fines_fen += fen;
}

/* Add d to counter c (c < 0: none) and fen to the fines of e at time ts, in
 * the slots of mask. Subtracting (d < 0) never creates a slot. */
static void bump(rk__ind *ind, ent *e, int64_t ts, int mask, int c, int32_t d, int64_t fen)
{
    int tz = ind->s.tz_offset_s;
    bool create = d > 0 || fen > 0;
    int64_t day = rk__ind_day(ts, tz);
    int32_t mon = month_of_day(day);
    if (e == NULL)
        return;
    if (mask & S_DAY)
        add_to(day_get(ind, e, (int32_t)day, create), c, d, fen);
    if (mask & S_MONTH)
        add_to(slot2(e->mon, e->m, mon, create), c, d, fen);
    if (mask & S_QUARTER)
        add_to(slot2(e->qtr, e->q, (int32_t)floordiv(mon, 3), create), c, d, fen);
    if (ts > e->last_update)
        e->last_update = ts;
    mark(ind, e);
}

/* The keys an event counts for: unit, region, all, then officers. */
#define MAX_ENTS 64
typedef struct ents {
    ent *e[MAX_ENTS];
    size_t n;
} ents;

static const char *region_of(rk__ind *ind, const char *unit, const char *region)
{
    if (region != NULL)
        return region;
    return unit != NULL ? rk_map_get(&ind->unit_region, unit) : NULL;
}

static void ents_of(rk__ind *ind, ents *out, const char *unit, const char *region,
                    const char *const *off, size_t noff)
{
    size_t i, j;
    out->n = 3;
    out->e[0] = unit ? ent_get(ind, RK_IND_UNIT, unit, true) : NULL;
    region = region_of(ind, unit, region);
    out->e[1] = region ? ent_get(ind, RK_IND_REGION, region, true) : NULL;
    out->e[2] = ent_get(ind, RK_IND_ALL, "all", true);
    for (i = 0; i < noff && out->n < MAX_ENTS; i++) {
        bool dup = false;
        for (j = 0; j < i && !dup; j++)
            dup = strcmp(off[i], off[j]) == 0;
        if (!dup)
            out->e[out->n++] = ent_get(ind, RK_IND_OFFICER, off[i], true);
    }
}

static void bump_all(rk__ind *ind, const ents *es, int64_t ts, int c, int32_t d, int64_t fen)
{
    size_t i;
    for (i = 0; i < es->n; i++)
        bump(ind, es->e[i], ts, S_ALL, c, d, fen);
}

static char *dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void note_region(rk__ind *ind, const char *unit, const char *region)
{
    char *old = NULL, *r;
    if (unit == NULL || region == NULL)
        return;
    r = rk_map_get(&ind->unit_region, unit);
    if (r != NULL && strcmp(r, region) == 0)
        return;
    if ((r = strdup(region)) == NULL)
        return;
    if (rk_map_put(&ind->unit_region, unit, r, (void **)&old) == NULL)
        free(r);
    free(old);
}

/* ===================================================================
 * Tasks: filings, deadlines, scans, ratings
 * =================================================================== */

static int64_t deadline_of(const rk__ind *ind, const task *t)
{
    return t->planned_at + ind->s.scan_deadline;
}

static void task_ents(rk__ind *ind, const task *t, ents *es)
{
    ents_of(ind, es, t->unit, t->region, (const char *const *)t->off, t->noff);
}

/* Add (sign +1) or take out (-1) every figure task t stands for. */
static void task_apply(rk__ind *ind, task *t, int sign)
{
    ents es;
    size_t i;
    if (t->unit == NULL && t->noff == 0 && !t->filed && t->scan_ts == INT64_MIN)
        return;
    task_ents(ind, t, &es);
    for (i = 0; i < es.n; i++) {
        ent *e = es.e[i];
        if (e == NULL)
            continue;
        if (t->filed) {
            bump(ind, e, t->planned_at, S_ALL, RK_IC_FILINGS, sign, 0);
            if (t->counted & (UINT64_C(1) << i))
                bump(ind, e, t->planned_at, S_ALL, RK_IC_COUNTED, sign, 0);
            if (t->passed) {
                bump(ind, e, t->planned_at, S_ALL, RK_IC_DEADLINE_PASSED, sign, 0);
                if (t->scan_ts != INT64_MIN && t->scan_ts <= deadline_of(ind, t))
                    bump(ind, e, t->planned_at, S_ALL, RK_IC_SCANNED_BY_DEADLINE, sign, 0);
            }
        }
        if (t->scan_ts != INT64_MIN) {
            bump(ind, e, t->scan_ts, S_ALL, RK_IC_SCANNED, sign, 0);
            if (t->rated)
                bump(ind, e, t->scan_ts, S_ALL, RK_IC_RATED, sign, 0);
        }
    }
}

static pair *pair_get(rk__ind *ind, char kind, const ent *e, const char *x, bool *fresh)
{
    char k[1024];
    pair *p;
    snprintf(k, sizeof(k), "%c\x1f%d\x1f%s\x1f%s", kind, e->scope, e->key, x);
    *fresh = false;
    if ((p = rk_map_get(&ind->pairs, k)) != NULL)
        return p;
    if ((p = malloc(sizeof(*p))) == NULL)
        return NULL;
    p->last_day = EMPTY;
    p->mon[0] = p->mon[1] = p->qtr[0] = p->qtr[1] = EMPTY;
    if (rk_map_put(&ind->pairs, k, p, NULL) == NULL) {
        free(p);
        return NULL;
    }
    *fresh = true;
    return p;
}

/* Is period v new among two (keeping the two latest)? Records it. */
static bool pair_take(int32_t idx[2], int32_t v)
{
    int old;
    if (idx[0] == v || idx[1] == v)
        return false;
    old = idx[0] == EMPTY ? 0 : idx[1] == EMPTY ? 1 : idx[0] < idx[1] ? 0 : 1;
    if (idx[old] != EMPTY && idx[old] > v)
        return false;
    idx[old] = v;
    return true;
}

/* A counted inspection of enterprise en by key e on planned day: the
 * distinct enterprises of its periods. */
static void count_enterprise(rk__ind *ind, ent *e, const char *en, int64_t planned)
{
    bool fresh;
    pair *p = pair_get(ind, 'E', e, en, &fresh);
    int64_t day = rk__ind_day(planned, ind->s.tz_offset_s);
    int32_t mon = month_of_day(day);
    if (p == NULL)
        return;
    if (p->last_day == EMPTY || day > p->last_day) {
        if (p->last_day != EMPTY) {
            rk__ind_counts *n = day_get(ind, e, p->last_day, false);
            if (n != NULL)
                n->c[RK_IC_ENTERPRISES]--;
        }
        add_to(day_get(ind, e, (int32_t)day, true), RK_IC_ENTERPRISES, 1, 0);
        p->last_day = (int32_t)day;
    }
    if (pair_take(p->mon, mon))
        add_to(slot2(e->mon, e->m, mon, true), RK_IC_ENTERPRISES, 1, 0);
    if (pair_take(p->qtr, (int32_t)floordiv(mon, 3)))
        add_to(slot2(e->qtr, e->q, (int32_t)floordiv(mon, 3), true), RK_IC_ENTERPRISES, 1, 0);
    mark(ind, e);
}

static void task_free(task *t)
{
    uint32_t i;
    if (t == NULL)
        return;
    free(t->unit);
    free(t->region);
    free(t->enterprise);
    free(t->joint);
    for (i = 0; i < t->noff; i++)
        free(t->off[i]);
    free(t->off);
    free(t);
}

static task *task_get(rk__ind *ind, const char *id, bool create)
{
    task *t = rk_map_get(&ind->tasks, id);
    if (t != NULL || !create)
        return t;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    t->scan_ts = INT64_MIN;
    t->planned_at = INT64_MIN;
    t->heap_pos = RK_HEAP_NONE;
    if (rk_map_put(&ind->tasks, id, t, NULL) == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

/* Set the who of t (unit, region, officers) from ev. */
static int task_set_who(rk__ind *ind, task *t, const rk_event *ev)
{
    uint32_t i;
    const char *region = region_of(ind, ev->unit_id, ev->region);
    for (i = 0; i < t->noff; i++)
        free(t->off[i]);
    free(t->off);
    free(t->unit);
    free(t->region);
    t->off = NULL;
    t->noff = 0;
    t->unit = dup(ev->unit_id);
    t->region = dup(region);
    if (ev->n_officers > 0) {
        if ((t->off = calloc(ev->n_officers, sizeof(*t->off))) == NULL)
            return -1;
        for (i = 0; i < ev->n_officers && i < MAX_ENTS - 3; i++)
            if ((t->off[t->noff] = strdup(ev->officers[i])) != NULL)
                t->noff++;
    }
    return 0;
}

static void deadline_sync(rk__ind *ind, task *t)
{
    bool want = t->filed && !t->passed;
    if (t->heap_pos != RK_HEAP_NONE)
        rk_heap_remove(&ind->deadlines, t);
    if (want && deadline_of(ind, t) < ind->now) {
        t->passed = true;
        want = false;
    }
    if (want)
        (void)rk_heap_push(&ind->deadlines, deadline_of(ind, t), t);
}

static int on_filed(rk__ind *ind, const rk_event *ev)
{
    task *t = task_get(ind, ev->task_id, true);
    ents es;
    size_t i;
    char *old_joint;
    uint64_t old_counted;
    bool excluded;
    if (t == NULL)
        return -1;
    task_apply(ind, t, -1);
    old_joint = t->joint;
    old_counted = t->counted;
    t->joint = NULL;
    if (task_set_who(ind, t, ev) != 0)
        return -1;
    free(t->enterprise);
    t->enterprise = dup(ev->enterprise_id);
    t->joint = dup(ev->joint_id);
    t->planned_at = ev->planned_at;
    t->kind = (uint8_t)(ev->kind == RK_KIND_UNSET ? RK_KIND_PLAN : ev->kind);
    t->filed = true;
    t->passed = false;
    if (ev->ts > t->seen)
        t->seen = ev->ts;
    /* counted inspections: per key, a joint id once */
    excluded = (ind->s.exclude_kinds & (1u << t->kind)) != 0;
    t->counted = 0;
    task_ents(ind, t, &es);
    for (i = 0; i < es.n && !excluded; i++) {
        bool fresh = true, keep;
        if (es.e[i] == NULL)
            continue;
        keep = (old_counted & (UINT64_C(1) << i)) && old_joint && t->joint &&
               strcmp(old_joint, t->joint) == 0;
        if (t->joint != NULL && !keep) {
            pair *p = pair_get(ind, 'J', es.e[i], t->joint, &fresh);
            if (p != NULL)
                p->last_day = (int32_t)rk__ind_day(t->planned_at, ind->s.tz_offset_s);
        }
        if (fresh || keep) {
            t->counted |= UINT64_C(1) << i;
            if (t->enterprise)
                count_enterprise(ind, es.e[i], t->enterprise, t->planned_at);
        }
    }
    free(old_joint);
    deadline_sync(ind, t);
    task_apply(ind, t, +1);
    return 0;
}

static int on_scanned(rk__ind *ind, const rk_event *ev)
{
    task *t = task_get(ind, ev->task_id, true);
    if (t == NULL)
        return -1;
    if (t->scan_ts != INT64_MIN && t->scan_ts <= ev->ts)
        return 0;                   /* scanned before: the first scan counts */
    task_apply(ind, t, -1);
    if (!t->filed && t->scan_ts == INT64_MIN && task_set_who(ind, t, ev) != 0)
        return -1;
    t->scan_ts = ev->ts;
    if (ev->ts > t->seen)
        t->seen = ev->ts;
    task_apply(ind, t, +1);
    return 0;
}

static int on_rated(rk__ind *ind, const rk_event *ev)
{
    ents es;
    task *t;
    ents_of(ind, &es, ev->unit_id, ev->region, ev->officers, ev->n_officers);
    bump_all(ind, &es, ev->ts, RK_IC_RATINGS, 1, 0);
    if (ev->score <= ind->s.bad_score)
        bump_all(ind, &es, ev->ts, RK_IC_BAD_RATINGS, 1, 0);
    if ((t = task_get(ind, ev->task_id, true)) == NULL)
        return -1;
    if (ev->ts > t->seen)
        t->seen = ev->ts;
    if (t->rated)
        return 0;
    task_apply(ind, t, -1);
    t->rated = true;
    task_apply(ind, t, +1);
    return 0;
}

/* ===================================================================
 * Cases
 * =================================================================== */

static void case_apply(rk__ind *ind, const cas *c, int sign)
{
    ents es;
    ents_of(ind, &es, c->unit, c->region, NULL, 0);
    bump_all(ind, &es, c->ts, RK_IC_CASES_DECIDED, sign, sign * c->fen);
    if (c->lenient)
        bump_all(ind, &es, c->ts, RK_IC_LENIENT, sign, 0);
}

static void case_free(cas *c)
{
    if (c == NULL)
        return;
    free(c->unit);
    free(c->region);
    free(c);
}

static int on_decided(rk__ind *ind, const rk_event *ev)
{
    cas *c = rk_map_get(&ind->cases, ev->case_id);
    if (c != NULL) {
        case_apply(ind, c, -1);
        free(c->unit);
        free(c->region);
    } else {
        if ((c = calloc(1, sizeof(*c))) == NULL)
            return -1;
        if (rk_map_put(&ind->cases, ev->case_id, c, NULL) == NULL) {
            free(c);
            return -1;
        }
    }
    c->ts = ev->ts;
    c->unit = dup(ev->unit_id);
    c->region = dup(region_of(ind, ev->unit_id, ev->region));
    c->fen = llround((ev->fine + ev->confiscation) * 100.0);
    c->lenient = ev->leniency == RK_LENIENCY_LIGHTER || ev->leniency == RK_LENIENCY_MITIGATED ||
                 ev->leniency == RK_LENIENCY_EXEMPT;
    case_apply(ind, c, +1);
    return 0;
}

/* ===================================================================
 * Public: events, time, alerts
 * =================================================================== */

int rk__ind_event(rk__ind *ind, const rk_event *ev)
{
    ents es;
    note_region(ind, ev->unit_id, ev->region);
    switch (ev->type) {
    case RK_EV_INSPECTION_FILED:
        return on_filed(ind, ev);
    case RK_EV_INSPECTION_SCANNED:
        return on_scanned(ind, ev);
    case RK_EV_INSPECTION_RATED:
        return on_rated(ind, ev);
    case RK_EV_CASE_OPENED:
        ents_of(ind, &es, ev->unit_id, ev->region, ev->officers, ev->n_officers);
        bump_all(ind, &es, ev->ts, RK_IC_CASES_OPENED, 1, 0);
        return 0;
    case RK_EV_CASE_DECIDED:
        return on_decided(ind, ev);
    case RK_EV_CASE_COMPLAINT:
        ents_of(ind, &es, ev->unit_id, ev->region, ev->officers, ev->n_officers);
        bump_all(ind, &es, ev->ts, RK_IC_COMPLAINTS, 1, 0);
        return 0;
    case RK_EV_CASE_REVIEW:
        ents_of(ind, &es, ev->unit_id, ev->region, NULL, 0);
        bump_all(ind, &es, ev->ts, RK_IC_REVIEWS, 1, 0);
        if (ev->outcome == RK_OUTCOME_REVOKED || ev->outcome == RK_OUTCOME_ALTERED ||
            ev->outcome == RK_OUTCOME_CONFIRMED_ILLEGAL)
            bump_all(ind, &es, ev->ts, RK_IC_CORRECTIONS, 1, 0);
        return 0;
    default:
        return 0;
    }
}

static void unfiled(rk__ind *ind, int64_t ts, const char *unit, int32_t d)
{
    ents es;
    ents_of(ind, &es, unit, NULL, NULL, 0);
    bump_all(ind, &es, ts, RK_IC_UNFILED, d, 0);
}

void rk__ind_unfiled(rk__ind *ind, int64_t ts, const char *unit_id)
{
    unfiled(ind, ts, unit_id, 1);
}

void rk__ind_unfiled_retract(rk__ind *ind, int64_t ts, const char *unit_id)
{
    unfiled(ind, ts, unit_id, -1);
}

bool rk__ind_is_unfiled_rule(const char *detector, const char *rule)
{
    return detector != NULL && rule != NULL && strcmp(detector, "unfiled_inspection") == 0 &&
           (strcmp(rule, "scan_without_filing") == 0 ||
            strcmp(rule, "reported_without_filing") == 0 ||
            strcmp(rule, "case_without_filing") == 0);
}

/* The oldest time any record is still needed for. */
static int64_t horizon(const rk__ind *ind)
{
    int tz = ind->s.tz_offset_s;
    int64_t q = rk__ind_quarter_start(rk__ind_quarter(ind->now, tz) - 1, tz);
    int64_t w = (int64_t)(ind->now_day - ind->wdays + 1) * DAY_MS - (int64_t)tz * 1000;
    return (q < w ? q : w) - ind->s.scan_deadline - DAY_MS;
}

static void sweep(rk__ind *ind)
{
    int64_t h = horizon(ind);
    int32_t hday = (int32_t)rk__ind_day(h, ind->s.tz_offset_s);
    size_t b;
    rk_map_entry *it, *next;
    for (it = rk_map_first(&ind->tasks, &b); it; it = next) {
        task *t = it->value;
        next = rk_map_next(&ind->tasks, &b, it);
        if ((t->passed || !t->filed) && t->seen < h &&
            (t->planned_at == INT64_MIN || t->planned_at < h)) {
            rk_map_del(&ind->tasks, it->key);
            task_free(t);
        }
    }
    for (it = rk_map_first(&ind->cases, &b); it; it = next) {
        cas *c = it->value;
        next = rk_map_next(&ind->cases, &b, it);
        if (c->ts < h) {
            rk_map_del(&ind->cases, it->key);
            case_free(c);
        }
    }
    for (it = rk_map_first(&ind->pairs, &b); it; it = next) {
        pair *p = it->value;
        next = rk_map_next(&ind->pairs, &b, it);
        if (p->last_day < hday) {
            rk_map_del(&ind->pairs, it->key);
            free(p);
        }
    }
}

void rk__ind_advance(rk__ind *ind, int64_t now)
{
    const rk_heap_item *top;
    int32_t day;
    if (now == INT64_MIN || now <= ind->now)
        return;
    ind->now = now;
    while ((top = rk_heap_top(&ind->deadlines)) != NULL && top->key < now) {
        task *t = top->rec;
        rk_heap_remove(&ind->deadlines, t);
        task_apply(ind, t, -1);
        t->passed = true;
        task_apply(ind, t, +1);
    }
    day = (int32_t)rk__ind_day(now, ind->s.tz_offset_s);
    if (day != ind->now_day) {
        size_t b;
        rk_map_entry *it;
        ind->now_day = day;
        for (it = rk_map_first(&ind->ents, &b); it; it = rk_map_next(&ind->ents, &b, it)) {
            day_prune(ind, it->value);
            mark(ind, it->value);   /* the window and the current periods moved */
        }
        sweep(ind);
    }
}

/* ===================================================================
 * Reading
 * =================================================================== */

static void sum_into(rk__ind_counts *out, const rk__ind_counts *n)
{
    int i;
    for (i = 0; i < RK_IC_N; i++)
        out->c[i] += n->c[i];
    out->fines_fen += n->fines_fen;
}

/* Counters of e for period p; false when e has no slot for it. */
static bool ent_period(const rk__ind *ind, ent *e, int p, rk__ind_counts *out,
                       int64_t *from, int64_t *to, char *label)
{
    int tz = ind->s.tz_offset_s;
    int32_t m = rk__ind_month(ind->now, tz), q = (int32_t)floordiv(m, 3), idx;
    const rk__ind_counts *n;
    int i;
    memset(out, 0, sizeof(*out));
    switch (p) {
    case RK_IND_WINDOW:
        *from = (int64_t)(ind->now_day - ind->wdays + 1) * DAY_MS - (int64_t)tz * 1000;
        *to = (int64_t)(ind->now_day + 1) * DAY_MS - (int64_t)tz * 1000;
        strcpy(label, "window");
        for (i = 0; i < e->ndays; i++)
            if (e->days[i].day > ind->now_day - ind->wdays && e->days[i].day <= ind->now_day)
                sum_into(out, &e->days[i].n);
        return true;
    case RK_IND_MONTH:
    case RK_IND_PREV_MONTH:
        idx = p == RK_IND_MONTH ? m : m - 1;
        *from = rk__ind_month_start(idx, tz);
        *to = rk__ind_month_start(idx + 1, tz);
        rk__ind_month_label(idx, label, 16);
        n = slot2(e->mon, e->m, idx, false);
        break;
    default:
        idx = p == RK_IND_QUARTER ? q : q - 1;
        *from = rk__ind_quarter_start(idx, tz);
        *to = rk__ind_quarter_start(idx + 1, tz);
        rk__ind_quarter_label(idx, label, 16);
        n = slot2(e->qtr, e->q, idx, false);
        break;
    }
    if (n == NULL)
        return false;
    *out = *n;
    return true;
}

bool rk__ind_get(rk__ind *ind, int scope, const char *key, int period,
                 rk__ind_counts *out, int64_t *from, int64_t *to, char *label)
{
    ent *e = ent_get(ind, scope, key, false);
    memset(out, 0, sizeof(*out));
    if (e == NULL)
        return false;
    return ent_period(ind, e, period, out, from, to, label);
}

void rk__ind_rate(int64_t num, int64_t den, char *buf, size_t len)
{
    size_t n;
    if (den == 0) {
        snprintf(buf, len, "null");
        return;
    }
    snprintf(buf, len, "%.6f", (double)num / (double)den);
    n = strlen(buf);
    while (n > 1 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, len, "0");
}

static void put(rk__ind_hash *h, const char *f, const char *fmt, long long v)
{
    h->f[h->nf] = f;
    snprintf(h->v[h->nf], sizeof(h->v[0]), fmt, v);
    h->nf++;
}

static void put_rate(rk__ind_hash *h, const char *f, int64_t num, int64_t den)
{
    h->f[h->nf] = f;
    rk__ind_rate(num, den, h->v[h->nf], sizeof(h->v[0]));
    h->nf++;
}

void rk__ind_format(const rk__ind_counts *n, int64_t from, int64_t to, int64_t updated_at,
                    int tz, rk__ind_hash *h)
{
    const int32_t *c = n->c;
    int64_t fen = n->fines_fen, a = fen < 0 ? -fen : fen;
    h->nf = 0;
    put(h, "filings", "%lld", c[RK_IC_FILINGS]);
    put(h, "unfiled", "%lld", c[RK_IC_UNFILED]);
    put_rate(h, "filing_rate", c[RK_IC_FILINGS], (int64_t)c[RK_IC_FILINGS] + c[RK_IC_UNFILED]);
    put_rate(h, "scan_rate", c[RK_IC_SCANNED_BY_DEADLINE], c[RK_IC_DEADLINE_PASSED]);
    put_rate(h, "rating_rate", c[RK_IC_RATED], c[RK_IC_SCANNED]);
    put_rate(h, "bad_rating_share", c[RK_IC_BAD_RATINGS], c[RK_IC_RATINGS]);
    put_rate(h, "inspections_per_enterprise", c[RK_IC_COUNTED], c[RK_IC_ENTERPRISES]);
    put(h, "cases_opened", "%lld", c[RK_IC_CASES_OPENED]);
    put(h, "cases_decided", "%lld", c[RK_IC_CASES_DECIDED]);
    h->f[h->nf] = "fines";
    if (a % 100 == 0)
        snprintf(h->v[h->nf], sizeof(h->v[0]), "%s%lld", fen < 0 ? "-" : "",
                 (long long)(a / 100));
    else if (a % 10 == 0)
        snprintf(h->v[h->nf], sizeof(h->v[0]), "%s%lld.%lld", fen < 0 ? "-" : "",
                 (long long)(a / 100), (long long)(a % 100 / 10));
    else
        snprintf(h->v[h->nf], sizeof(h->v[0]), "%s%lld.%02lld", fen < 0 ? "-" : "",
                 (long long)(a / 100), (long long)(a % 100));
    h->nf++;
    put_rate(h, "lenient_share", c[RK_IC_LENIENT], c[RK_IC_CASES_DECIDED]);
    put(h, "complaints", "%lld", c[RK_IC_COMPLAINTS]);
    put(h, "reviews", "%lld", c[RK_IC_REVIEWS]);
    put(h, "corrections", "%lld", c[RK_IC_CORRECTIONS]);
    put_rate(h, "correction_rate", c[RK_IC_CORRECTIONS], c[RK_IC_REVIEWS]);
    /* TODO(open alerts): counted from alerts.open_key once that hash is
     * kept; until then 0 here (riskctl indicators reads it itself). */
    put(h, "open_critical", "%lld", 0);
    put(h, "open_warning", "%lld", 0);
    put(h, "open_info", "%lld", 0);
    put(h, "scanned_by_deadline", "%lld", c[RK_IC_SCANNED_BY_DEADLINE]);
    put(h, "deadline_passed", "%lld", c[RK_IC_DEADLINE_PASSED]);
    put(h, "rated", "%lld", c[RK_IC_RATED]);
    put(h, "scanned", "%lld", c[RK_IC_SCANNED]);
    put(h, "bad_ratings", "%lld", c[RK_IC_BAD_RATINGS]);
    put(h, "ratings", "%lld", c[RK_IC_RATINGS]);
    put(h, "counted_inspections", "%lld", c[RK_IC_COUNTED]);
    put(h, "enterprises", "%lld", c[RK_IC_ENTERPRISES]);
    put(h, "lenient", "%lld", c[RK_IC_LENIENT]);
    h->f[h->nf] = "from";
    rk__format_rfc3339(from, tz, h->v[h->nf++], sizeof(h->v[0]));
    h->f[h->nf] = "to";
    rk__format_rfc3339(to, tz, h->v[h->nf++], sizeof(h->v[0]));
    if (updated_at != INT64_MIN) {
        h->f[h->nf] = "updated_at";
        rk__format_rfc3339(updated_at, tz, h->v[h->nf++], sizeof(h->v[0]));
    }
}

static uint32_t digest(const rk__ind_hash *h)
{
    uint64_t x = rk_kit_fnv1a(UINT64_C(1469598103934665603), h->label, strlen(h->label));
    size_t i;
    for (i = 0; i < h->nf; i++)
        x = rk_kit_fnv1a(x, h->v[i], strlen(h->v[i]) + 1);
    return (uint32_t)(x ^ (x >> 32)) | 1u;  /* never 0: 0 is "not written" */
}

size_t rk__ind_collect(rk__ind *ind, size_t max, int64_t updated_at,
                       void (*cb)(const rk__ind_hash *h, void *ud), void *ud, bool *more)
{
    size_t done = 0;
    rk__ind_hash h;
    while (ind->ndirty > 0 && done + RK_IND_NPERIODS <= max) {
        ent *e = ind->dirty[--ind->ndirty];
        int p;
        e->listed = false;
        for (p = 0; p < RK_IND_NPERIODS; p++) {
            rk__ind_counts n;
            int64_t from, to;
            uint32_t d;
            memset(&h, 0, sizeof(h));
            if (!ent_period(ind, e, p, &n, &from, &to, h.label))
                continue;
            rk__ind_format(&n, from, to, INT64_MIN, ind->s.tz_offset_s, &h);
            d = digest(&h);
            if (d == e->written[p])
                continue;
            e->written[p] = d;
            h.nf = 0;
            rk__ind_format(&n, from, to, updated_at, ind->s.tz_offset_s, &h);
            h.scope = e->scope;
            h.key = e->key;
            h.period_start = from;
            h.last_update = e->last_update;
            cb(&h, ud);
            done++;
        }
    }
    *more = ind->ndirty > 0;
    return done;
}

void rk__ind_mark_all(rk__ind *ind)
{
    size_t b;
    rk_map_entry *it;
    for (it = rk_map_first(&ind->ents, &b); it; it = rk_map_next(&ind->ents, &b, it)) {
        ent *e = it->value;
        memset(e->written, 0, sizeof(e->written));
        mark(ind, e);
    }
}

/* ===================================================================
 * Life
 * =================================================================== */

void rk__ind_configure(rk__ind *ind, const rk__ind_settings *s)
{
    ind->s = *s;
    ind->wdays = (int32_t)((s->window + DAY_MS - 1) / DAY_MS);
    if (ind->wdays < 1)
        ind->wdays = 1;
}

rk__ind *rk__ind_new(const rk__ind_settings *s)
{
    rk__ind *ind = calloc(1, sizeof(*ind));
    if (ind == NULL)
        return NULL;
    rk__ind_configure(ind, s);
    ind->now = INT64_MIN;
    ind->now_day = NO_DAY;
    rk_heap_init(&ind->deadlines, offsetof(task, heap_pos));
    return ind;
}

static void ent_free(void *p)
{
    ent *e = p;
    free(e->days);
    free(e);
}

static void task_free_v(void *p) { task_free(p); }
static void case_free_v(void *p) { case_free(p); }

void rk__ind_free(rk__ind *ind)
{
    if (ind == NULL)
        return;
    rk_map_clear(&ind->ents, ent_free);
    rk_map_clear(&ind->tasks, task_free_v);
    rk_map_clear(&ind->cases, case_free_v);
    rk_map_clear(&ind->pairs, free);
    rk_map_clear(&ind->unit_region, free);
    rk_heap_free(&ind->deadlines);
    free(ind->dirty);
    free(ind);
}

void rk__ind_settings_from(rk__ind_settings *s, const void *json_root, int tz, int64_t window)
{
    const json_t *root = json_root, *d = json_object_get(root, "detectors"), *o, *v;
    memset(s, 0, sizeof(*s));
    s->window = window;
    s->tz_offset_s = tz;
    s->scan_deadline = 24 * 3600 * INT64_C(1000);
    s->bad_score = 2;
    s->exclude_kinds = 1u << RK_KIND_COMPLAINT;
    o = json_object_get(d, "unfiled_inspection");
    v = json_object_get(o, "scan_deadline");
    if (json_is_string(v))
        (void)rk_kit_parse_duration(json_string_value(v), &s->scan_deadline);
    o = json_object_get(d, "bad_rating");
    v = json_object_get(o, "bad_score");
    if (json_is_integer(v))
        s->bad_score = (int)json_integer_value(v);
    o = json_object_get(d, "inspection_frequency");
    v = json_object_get(o, "exclude_kinds");
    if (json_is_array(v)) {
        static const char *const kinds[] = {"", "plan", "random", "complaint", "special",
                                            "other"};
        size_t i;
        int k;
        s->exclude_kinds = 0;
        for (i = 0; i < json_array_size(v); i++)
            for (k = 1; k < 6; k++)
                if (json_is_string(json_array_get(v, i)) &&
                    strcmp(json_string_value(json_array_get(v, i)), kinds[k]) == 0)
                    s->exclude_kinds |= 1u << k;
    }
}

size_t rk__ind_memory(const rk__ind *ind, size_t *entities, size_t *tasks)
{
    size_t b, total = sizeof(*ind) + ind->day_bytes + ind->capdirty * sizeof(ent *);
    rk_map_entry *it;
    for (it = rk_map_first(&ind->ents, &b); it; it = rk_map_next(&ind->ents, &b, it))
        total += sizeof(ent) + sizeof(rk_map_entry) + strlen(it->key) + 1 + 2 * sizeof(void *);
    total += ind->pairs.count * (sizeof(pair) + sizeof(rk_map_entry) + 40 + 2 * sizeof(void *));
    total += ind->tasks.count * (sizeof(task) + sizeof(rk_map_entry) + 64);
    total += ind->cases.count * (sizeof(cas) + sizeof(rk_map_entry) + 40);
    if (entities)
        *entities = ind->ents.count;
    if (tasks)
        *tasks = ind->tasks.count;
    return total;
}

/* ===================================================================
 * Checkpoint
 * =================================================================== */

static void put_counts(rk_buf *out, const rk__ind_counts *n)
{
    int i;
    for (i = 0; i < RK_IC_N; i++)
        rk_buf_put_u32(out, (uint32_t)n->c[i]);
    rk_buf_put_i64(out, n->fines_fen);
}

static void get_counts(rk_rd *rd, rk__ind_counts *n)
{
    int i;
    for (i = 0; i < RK_IC_N; i++)
        n->c[i] = (int32_t)rk_rd_u32(rd);
    n->fines_fen = rk_rd_i64(rd);
}

static void put_opt(rk_buf *out, const char *s)
{
    rk_buf_put_u32(out, s != NULL);
    if (s != NULL)
        rk_buf_put_str(out, s);
}

static char *get_opt(rk_rd *rd)
{
    return rk_rd_u32(rd) ? rk_rd_str(rd, 4096) : NULL;
}

int rk__ind_snapshot(const rk__ind *ind, rk_buf *out)
{
    size_t b;
    rk_map_entry *it;
    int i;
    rk_buf_put_u32(out, IND_VERSION);
    rk_buf_put_i64(out, ind->now);
    rk_buf_put_u64(out, ind->ents.count);
    for (it = rk_map_first(&ind->ents, &b); it; it = rk_map_next(&ind->ents, &b, it)) {
        const ent *e = it->value;
        uint16_t k;
        rk_buf_put_str(out, it->key);
        rk_buf_put_i64(out, e->last_update);
        for (i = 0; i < 2; i++) {
            rk_buf_put_u32(out, (uint32_t)e->mon[i]);
            put_counts(out, &e->m[i]);
            rk_buf_put_u32(out, (uint32_t)e->qtr[i]);
            put_counts(out, &e->q[i]);
        }
        rk_buf_put_u32(out, e->ndays);
        for (k = 0; k < e->ndays; k++) {
            rk_buf_put_u32(out, (uint32_t)e->days[k].day);
            put_counts(out, &e->days[k].n);
        }
    }
    rk_buf_put_u64(out, ind->tasks.count);
    for (it = rk_map_first(&ind->tasks, &b); it; it = rk_map_next(&ind->tasks, &b, it)) {
        const task *t = it->value;
        uint32_t k;
        rk_buf_put_str(out, it->key);
        rk_buf_put_i64(out, t->planned_at);
        rk_buf_put_i64(out, t->scan_ts);
        rk_buf_put_i64(out, t->seen);
        put_opt(out, t->unit);
        put_opt(out, t->region);
        put_opt(out, t->enterprise);
        put_opt(out, t->joint);
        rk_buf_put_u32(out, t->noff);
        for (k = 0; k < t->noff; k++)
            rk_buf_put_str(out, t->off[k]);
        rk_buf_put_u32(out, (uint32_t)t->kind | (t->filed ? 0x100u : 0) |
                       (t->passed ? 0x200u : 0) | (t->rated ? 0x400u : 0));
        rk_buf_put_u64(out, t->counted);
    }
    rk_buf_put_u64(out, ind->cases.count);
    for (it = rk_map_first(&ind->cases, &b); it; it = rk_map_next(&ind->cases, &b, it)) {
        const cas *c = it->value;
        rk_buf_put_str(out, it->key);
        rk_buf_put_i64(out, c->ts);
        put_opt(out, c->unit);
        put_opt(out, c->region);
        rk_buf_put_i64(out, c->fen);
        rk_buf_put_u32(out, c->lenient);
    }
    rk_buf_put_u64(out, ind->pairs.count);
    for (it = rk_map_first(&ind->pairs, &b); it; it = rk_map_next(&ind->pairs, &b, it)) {
        const pair *p = it->value;
        rk_buf_put_str(out, it->key);
        rk_buf_put_u32(out, (uint32_t)p->last_day);
        for (i = 0; i < 2; i++) {
            rk_buf_put_u32(out, (uint32_t)p->mon[i]);
            rk_buf_put_u32(out, (uint32_t)p->qtr[i]);
        }
    }
    rk_buf_put_u64(out, ind->unit_region.count);
    for (it = rk_map_first(&ind->unit_region, &b); it;
         it = rk_map_next(&ind->unit_region, &b, it)) {
        rk_buf_put_str(out, it->key);
        rk_buf_put_str(out, it->value);
    }
    return out->oom ? -1 : 0;
}

int rk__ind_restore(rk__ind *ind, const void *data, size_t len)
{
    rk_rd rd;
    uint64_t n, k;
    int i;
    rk_rd_init(&rd, data, len);
    if (rk_rd_u32(&rd) != IND_VERSION || rd.err)
        return -1;
    ind->now = rk_rd_i64(&rd);
    ind->now_day = ind->now == INT64_MIN ? NO_DAY
                   : (int32_t)rk__ind_day(ind->now, ind->s.tz_offset_s);
    n = rk_rd_u64(&rd);
    for (k = 0; k < n && !rd.err; k++) {
        char *key = rk_rd_str(&rd, 4096);
        ent *e = key && strlen(key) > 2 ? ent_get(ind, key[0] - '0', key + 2, true) : NULL;
        ent tmp;
        uint32_t nd, j;
        if (e == NULL) {
            memset(&tmp, 0, sizeof(tmp));
            e = &tmp;
        }
        e->last_update = rk_rd_i64(&rd);
        for (i = 0; i < 2; i++) {
            e->mon[i] = (int32_t)rk_rd_u32(&rd);
            get_counts(&rd, &e->m[i]);
            e->qtr[i] = (int32_t)rk_rd_u32(&rd);
            get_counts(&rd, &e->q[i]);
        }
        nd = rk_rd_u32(&rd);
        for (j = 0; j < nd && !rd.err; j++) {
            int32_t day = (int32_t)rk_rd_u32(&rd);
            rk__ind_counts c, *slot = e != &tmp ? day_get(ind, e, day, true) : NULL;
            get_counts(&rd, &c);
            if (slot != NULL)
                *slot = c;
        }
        if (e != &tmp)
            mark(ind, e);
        free(key);
    }
    n = rk_rd_u64(&rd);
    for (k = 0; k < n && !rd.err; k++) {
        char *key = rk_rd_str(&rd, 4096);
        task *t = key ? task_get(ind, key, true) : NULL;
        uint32_t no, j, fl;
        int64_t pa = rk_rd_i64(&rd), sc = rk_rd_i64(&rd), seen = rk_rd_i64(&rd);
        char *u = get_opt(&rd), *r = get_opt(&rd), *en = get_opt(&rd), *jo = get_opt(&rd);
        no = rk_rd_u32(&rd);
        if (t != NULL && no <= MAX_ENTS)
            t->off = calloc(no ? no : 1, sizeof(char *));
        for (j = 0; j < no && !rd.err; j++) {
            char *o = rk_rd_str(&rd, 4096);
            if (t != NULL && t->off != NULL && o != NULL)
                t->off[t->noff++] = o;
            else
                free(o);
        }
        fl = rk_rd_u32(&rd);
        if (t != NULL) {
            t->planned_at = pa;
            t->scan_ts = sc;
            t->seen = seen;
            t->unit = u;
            t->region = r;
            t->enterprise = en;
            t->joint = jo;
            t->kind = (uint8_t)(fl & 0xff);
            t->filed = (fl & 0x100) != 0;
            t->passed = (fl & 0x200) != 0;
            t->rated = (fl & 0x400) != 0;
            t->counted = rk_rd_u64(&rd);
            if (t->filed && !t->passed)
                (void)rk_heap_push(&ind->deadlines, deadline_of(ind, t), t);
        } else {
            free(u); free(r); free(en); free(jo);
            (void)rk_rd_u64(&rd);
        }
        free(key);
    }
    n = rk_rd_u64(&rd);
    for (k = 0; k < n && !rd.err; k++) {
        char *key = rk_rd_str(&rd, 4096);
        cas *c = calloc(1, sizeof(*c));
        if (c != NULL) {
            c->ts = rk_rd_i64(&rd);
            c->unit = get_opt(&rd);
            c->region = get_opt(&rd);
            c->fen = rk_rd_i64(&rd);
            c->lenient = rk_rd_u32(&rd) != 0;
        }
        if (c == NULL || key == NULL || rk_map_put(&ind->cases, key, c, NULL) == NULL)
            case_free(c);
        free(key);
    }
    n = rk_rd_u64(&rd);
    for (k = 0; k < n && !rd.err; k++) {
        char *key = rk_rd_str(&rd, 4096);
        pair *p = malloc(sizeof(*p));
        if (p != NULL) {
            p->last_day = (int32_t)rk_rd_u32(&rd);
            for (i = 0; i < 2; i++) {
                p->mon[i] = (int32_t)rk_rd_u32(&rd);
                p->qtr[i] = (int32_t)rk_rd_u32(&rd);
            }
        }
        if (p == NULL || key == NULL || rk_map_put(&ind->pairs, key, p, NULL) == NULL)
            free(p);
        free(key);
    }
    n = rk_rd_u64(&rd);
    for (k = 0; k < n && !rd.err; k++) {
        char *key = rk_rd_str(&rd, 4096), *v = rk_rd_str(&rd, 4096);
        if (key == NULL || v == NULL || rk_map_put(&ind->unit_region, key, v, NULL) == NULL)
            free(v);
        free(key);
    }
    return rd.err ? -1 : 0;
}

size_t rk__ind_keys(const rk__ind *ind, int scope, void (*cb)(const char *key, void *ud),
                    void *ud)
{
    size_t b, n = 0;
    rk_map_entry *it;
    for (it = rk_map_first(&ind->ents, &b); it; it = rk_map_next(&ind->ents, &b, it)) {
        const ent *e = it->value;
        if (e->scope != scope)
            continue;
        cb(e->key, ud);
        n++;
    }
    return n;
}
