/* indicators.c - the supervision indicators (filings, unfiled, scan,
 * rating, case, fine, complaint and review figures) per unit, officer,
 * region and `all`, on event time.
 *
 * Pure: events, alerts of the unfiled_inspection rules and the engine's
 * now go in; counters per key and period come out. Nothing here talks to
 * Redis (indicators_out.c writes the hashes) or reads a clock; the
 * checkpoint section is indicators_snap.c, the records indicators_int.h.
 *
 * Keys. Every event counts for its unit, each of its officers, its region
 * (the event's, else the last region seen with its unit) and `all`. One
 * key ("entity") holds a fixed set of counters (rk__ind_counts: 16 x 32
 * bits + the fines in fen, 72 bytes) for each of
 *   - two month slots and two quarter slots (the two latest calendar
 *     periods the key has data for; older ones are dropped, their figures
 *     not written yet kept as a final hash for the writer: see Writing), and
 *   - the rolling window as day buckets: one bucket per calendar day (in
 *     clock.timezone) with data, at most window-days of them (plus days
 *     ahead of now, for inspections planned in the future); buckets older
 *     than the window are dropped as now moves.
 * The window is the ceil(indicators.window / 1d) calendar days ending with
 * the day of now.
 *
 * Events to counters. Filings (by planned_at), scan deadlines and scans
 * are kept per task (struct ind_task: its unit, officers, region,
 * enterprise, kind, joint id, planned_at, first scan, rated) and every
 * figure of a task is derived from that record: task_apply(-1) takes them
 * all out, the record changes (amendment, scan, rating, deadline passed),
 * task_apply(+1) puts them back. So an amendment moves a filing to its new
 * unit and period, and a scan that arrives late still counts where its
 * filing is. Decisions are kept per case the same way (unit, region, time,
 * fine, leniency). Distinct enterprises per key and period: one small
 * record per (key, enterprise) with the last day, the months and the
 * quarters it was counted in; a joint inspection counts once per key
 * through a record per (key, joint_id). Both only ever count up: an
 * amendment that moves a filing to another enterprise or joint id leaves
 * the first counted.
 *
 * Expiry (the horizon). The periods still reported are the window and the
 * current and previous month and quarter; the oldest of them starts at
 * the horizon, min(start of the previous quarter, start of the window),
 * which only moves forward with now. A task whose filing, scan and last
 * event all lie before the horizon (and whose scan deadline has passed),
 * a case decided before it and a pair whose last day is before it can no
 * longer change a reported figure: they are dropped when the horizon
 * moves (a task also when its deadline passes behind it), on event time,
 * so a replay, a restart and a takeover give the same figures (a restored
 * module sweeps at its first day change: it may drop a record sooner that
 * the live one keeps to the next move, beyond the horizon either way). An amendment of a dropped filing or decision (the engine
 * still knows its key) counts as a new one where it now falls - the same
 * figures as undoing the old one, whose periods are no longer reported -
 * and is counted (rk__ind_expired_amendments); a scan of a dropped task
 * counts as a first scan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "riskd/kit.h"
#include "internal.h"
#include "indicators_int.h"

#define DAY_MS IND_DAY_MS
#define EMPTY IND_EMPTY
#define NO_DAY IND_NO_DAY
#define MAX_ENTS IND_MAX_ENTS

typedef ind_ent ent;
typedef ind_task task;
typedef ind_case cas;
typedef ind_pair pair;
typedef ind_day day_slot;

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

int32_t rk__ind_month_of_day(int64_t day) { return month_of_day(day); }

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
 * Records: hashes and tables
 * =================================================================== */

/* The hash of id under a tag (the scope of a key, or what the table
 * holds). */
static uint64_t hash_of(int tag, const char *s)
{
    unsigned char t = (unsigned char)tag;
    return rk_kit_hash_mix(rk_kit_fnv1a(rk_kit_fnv1a(RK_FNV_OFFSET, &t, 1), s, strlen(s)));
}

static uint64_t ent_h(const void *r) { return ((const ent *)r)->h; }
static uint64_t str_h(const void *r) { return ((const ind_str *)r)->h; }
static uint64_t task_h(const void *r) { return ((const task *)r)->h; }
static uint64_t case_h(const void *r) { return ((const cas *)r)->h; }

static uint64_t pair_hash(char kind, uint32_t e, uint32_t x)
{
    return rk_kit_hash_mix(((uint64_t)e << 32 | x) * 2 + (kind == 'J'));
}

static uint64_t pair_h(const void *r)
{
    const pair *p = r;
    return pair_hash(p->kind, p->e, p->x);
}

void rk__ind_mark(rk__ind *ind, ent *e)
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

#define mark rk__ind_mark

ent *rk__ind_ent(rk__ind *ind, int scope, const char *id, bool create)
{
    uint64_t h = hash_of(scope, id);
    size_t len;
    ent *e;
    if (scope == RK_IND_ALL && ind->all != NULL && strcmp(id, "all") == 0)
        return ind->all;
    for (e = rk_itab_first(&ind->ents, h); e != NULL; e = rk_itab_next(&ind->ents, e))
        if (e->h == h && e->scope == scope && strcmp(e->key, id) == 0)
            return e;
    if (!create)
        return NULL;
    len = strlen(id);
    if (len > 4096 || rk_itab_reserve(&ind->ents) != 0)
        return NULL;
    if (ind->nents == ind->capents) {
        size_t nc = ind->capents ? ind->capents * 2 : 64;
        ent **nb = realloc(ind->byidx, nc * sizeof(*nb));
        if (nb == NULL)
            return NULL;
        ind->byidx = nb;
        ind->capents = nc;
    }
    if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
        return NULL;
    memcpy(e->key, id, len + 1);
    e->h = h;
    e->scope = (uint8_t)scope;
    e->mon[0] = e->mon[1] = e->qtr[0] = e->qtr[1] = EMPTY;
    e->last_update = INT64_MIN;
    e->idx = (uint32_t)ind->nents;
    ind->byidx[ind->nents++] = e;
    rk_itab_insert(&ind->ents, e, h, NULL);
    ind->rec_bytes += sizeof(*e) + len + 1;
    if (scope == RK_IND_ALL)
        ind->all = e;
    return e;
}

static ent *ent_get(rk__ind *ind, int scope, const char *id, bool create)
{
    return rk__ind_ent(ind, scope, id, create);
}

/* Room for one more slot in strv (and in the free list, which never
 * holds more than strv has slots). */
static int strv_reserve(rk__ind *ind)
{
    if (ind->nstrv == ind->capstrv) {
        size_t nc = ind->capstrv ? ind->capstrv * 2 : 256;
        ind_str **nv;
        uint32_t *nf;
        if (nc > UINT32_MAX)
            return -1;
        if ((nv = realloc(ind->strv, nc * sizeof(*nv))) == NULL)
            return -1;
        ind->strv = nv;
        if ((nf = realloc(ind->freev, nc * sizeof(*nf))) == NULL)
            return -1;
        ind->freev = nf;
        ind->capstrv = nc;
    }
    return 0;
}

int rk__ind_str_hole(rk__ind *ind)
{
    if (strv_reserve(ind) != 0)
        return -1;
    ind->strv[ind->nstrv++] = NULL;     /* on the free list once all are read */
    return 0;
}

ind_str *rk__ind_str(rk__ind *ind, const char *s)
{
    uint64_t h = hash_of('S', s);
    size_t len;
    ind_str *x;
    for (x = rk_itab_first(&ind->strs, h); x != NULL; x = rk_itab_next(&ind->strs, x))
        if (x->h == h && strcmp(x->s, s) == 0) {
            x->refs++;
            return x;
        }
    len = strlen(s);
    if (len > 4096 || rk_itab_reserve(&ind->strs) != 0 ||
        (ind->nfree == 0 && strv_reserve(ind) != 0) ||
        (x = malloc(sizeof(*x) + len + 1)) == NULL)
        return NULL;
    memcpy(x->s, s, len + 1);
    x->h = h;
    x->refs = 1;
    x->idx = ind->nfree > 0 ? ind->freev[--ind->nfree] : (uint32_t)ind->nstrv++;
    ind->strv[x->idx] = x;
    rk_itab_insert(&ind->strs, x, h, NULL);
    ind->rec_bytes += sizeof(*x) + len + 1;
    return x;
}

void rk__ind_str_unref(rk__ind *ind, ind_str *x)
{
    if (x == NULL || --x->refs > 0)
        return;
    rk_itab_remove(&ind->strs, x, x->h);
    ind->strv[x->idx] = NULL;
    ind->freev[ind->nfree++] = x->idx;
    ind->rec_bytes -= sizeof(*x) + strlen(x->s) + 1;
    free(x);
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

static void final_keep(rk__ind *ind, ent *e, bool q, int i);

/* slot2 for the months (q false) or the quarters of e: a slot that a newer
 * period takes keeps its figures not written yet as a final hash first
 * (final_keep), so a period that leaves between two writes still gets its
 * last figures written. */
static rk__ind_counts *slot_of(rk__ind *ind, ent *e, bool q, int32_t p, bool create)
{
    int32_t *idx = q ? e->qtr : e->mon;
    rk__ind_counts *c = q ? e->q : e->m, *n = slot2(idx, c, p, false);
    int old;
    if (n != NULL || !create)
        return n;
    old = idx[0] == EMPTY ? 0 : idx[1] == EMPTY ? 1 : idx[0] < idx[1] ? 0 : 1;  /* slot2's */
    if (idx[old] != EMPTY && idx[old] < p)
        final_keep(ind, e, q, old);
    return slot2(idx, c, p, true);
}

rk__ind_counts *rk__ind_day_slot(rk__ind *ind, ent *e, int32_t day, bool create)
{
    uint16_t lo = 0, hi = e->ndays;
    /* most bumps go to the latest day */
    if (e->ndays > 0 && e->days[e->ndays - 1].day == day)
        return &e->days[e->ndays - 1].n;
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi) / 2);
        if (e->days[mid].day < day)
            lo = (uint16_t)(mid + 1);
        else
            hi = mid;
    }
    if (lo < e->ndays && e->days[lo].day == day)
        return &e->days[lo].n;
    if (!create || day <= ind->now_day - ind->wdays || e->ndays == UINT16_MAX - 1)
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

#define day_get rk__ind_day_slot

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

/* The slots of e at day (and its month and quarter), for a run of
 * bumps at one time. */
typedef struct slots {
    rk__ind_counts *d, *m, *q;
} slots;

/* The month of a day, remembering the last one asked (most events of a
 * stretch fall on one day). */
static int32_t month_of(rk__ind *ind, int64_t day)
{
    if (day != ind->mday) {
        ind->mmon = month_of_day(day);
        ind->mday = day;
    }
    return ind->mmon;
}

static void slots_of(rk__ind *ind, ent *e, int64_t ts, bool create, slots *s)
{
    int64_t day = rk__ind_day(ts, ind->s.tz_offset_s);
    int32_t mon = month_of(ind, day);
    s->d = day_get(ind, e, (int32_t)day, create);
    s->m = slot_of(ind, e, false, mon, create);
    s->q = slot_of(ind, e, true, (int32_t)floordiv(mon, 3), create);
    if (ts > e->last_update)
        e->last_update = ts;
    mark(ind, e);
}

static void slots_add(const slots *s, int c, int32_t d, int64_t fen)
{
    add_to(s->d, c, d, fen);
    add_to(s->m, c, d, fen);
    add_to(s->q, c, d, fen);
}

/* Add d to counter c (c < 0: none) and fen to the fines of e at time ts, in
 * every slot. Subtracting (d < 0) never creates a slot. */
static void bump(rk__ind *ind, ent *e, int64_t ts, int c, int32_t d, int64_t fen)
{
    slots s;
    if (e == NULL)
        return;
    slots_of(ind, e, ts, d > 0 || fen > 0, &s);
    slots_add(&s, c, d, fen);
}

/* The keys an event counts for: unit, region, all, then officers. */
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
        ent *o = ent_get(ind, RK_IND_OFFICER, off[i], true);
        bool dup = false;
        for (j = 3; j < out->n && !dup; j++)
            dup = out->e[j] == o;
        if (!dup && o != NULL)
            out->e[out->n++] = o;
    }
}

static void bump_all(rk__ind *ind, const ents *es, int64_t ts, int c, int32_t d, int64_t fen)
{
    size_t i;
    for (i = 0; i < es->n; i++)
        bump(ind, es->e[i], ts, c, d, fen);
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

int64_t rk__ind_deadline(const rk__ind *ind, const task *t)
{
    return t->planned_at + ind->s.scan_deadline;
}

#define deadline_of rk__ind_deadline

static void task_ents(rk__ind *ind, const task *t, ents *es)
{
    uint32_t i;
    es->e[0] = t->unit;
    es->e[1] = t->region;
    es->e[2] = ent_get(ind, RK_IND_ALL, "all", true);
    es->n = 3;
    for (i = 0; i < t->noff && es->n < MAX_ENTS; i++)
        es->e[es->n++] = t->off[i];
}

/* Add (sign +1) or take out (-1) every figure task t stands for. */
static void task_apply(rk__ind *ind, task *t, int sign)
{
    ents es;
    size_t i;
    bool scanned = t->scan_ts != INT64_MIN, by_deadline;
    if (t->unit == NULL && t->noff == 0 && !t->filed && !scanned)
        return;
    by_deadline = scanned && t->filed && t->scan_ts <= deadline_of(ind, t);
    task_ents(ind, t, &es);
    for (i = 0; i < es.n; i++) {
        ent *e = es.e[i];
        slots s;
        if (e == NULL)
            continue;
        if (t->filed) {
            slots_of(ind, e, t->planned_at, sign > 0, &s);
            slots_add(&s, RK_IC_FILINGS, sign, 0);
            if (t->counted & (UINT64_C(1) << i))
                slots_add(&s, RK_IC_COUNTED, sign, 0);
            if (t->passed) {
                slots_add(&s, RK_IC_DEADLINE_PASSED, sign, 0);
                if (by_deadline)
                    slots_add(&s, RK_IC_SCANNED_BY_DEADLINE, sign, 0);
            }
        }
        if (scanned) {
            slots_of(ind, e, t->scan_ts, sign > 0, &s);
            slots_add(&s, RK_IC_SCANNED, sign, 0);
            if (t->rated)
                slots_add(&s, RK_IC_RATED, sign, 0);
        }
    }
}

/* A pair's memory: from the free list, else a new slab. */
static pair *pair_alloc(rk__ind *ind)
{
    pair *p, **ns, *slab;
    size_t i;
    if (ind->pfree == NULL) {
        if ((ns = realloc(ind->slabs, (ind->nslabs + 1) * sizeof(*ns))) == NULL)
            return NULL;
        ind->slabs = ns;
        if ((slab = malloc(IND_SLAB * sizeof(*slab))) == NULL)
            return NULL;
        ind->slabs[ind->nslabs++] = slab;
        ind->rec_bytes += IND_SLAB * sizeof(*slab);
        for (i = IND_SLAB; i-- > 0;) {
            slab[i].next = ind->pfree;
            ind->pfree = &slab[i];
        }
    }
    p = ind->pfree;
    ind->pfree = p->next;
    return p;
}

ind_pair *rk__ind_pair(rk__ind *ind, char kind, ent *e, ind_str *x, bool *fresh)
{
    uint64_t h = pair_hash(kind, e->idx, x->idx);
    pair *p;
    *fresh = false;
    for (p = rk_itab_first(&ind->pairs, h); p != NULL; p = rk_itab_next(&ind->pairs, p))
        if (p->e == e->idx && p->x == x->idx && p->kind == kind)
            return p;
    if (rk_itab_reserve(&ind->pairs) != 0 || (p = pair_alloc(ind)) == NULL)
        return NULL;
    p->next = NULL;
    p->e = e->idx;
    p->x = x->idx;
    x->refs++;
    p->kind = kind;
    p->last_day = EMPTY;
    p->mon[0] = p->mon[1] = p->qtr[0] = p->qtr[1] = EMPTY;
    rk_itab_insert(&ind->pairs, p, h, NULL);
    *fresh = true;
    return p;
}

static void pair_free(rk__ind *ind, pair *p)
{
    rk_itab_remove(&ind->pairs, p, pair_h(p));
    rk__ind_str_unref(ind, ind->strv[p->x]);
    p->next = ind->pfree;
    ind->pfree = p;
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
static void count_enterprise(rk__ind *ind, ent *e, ind_str *en, int64_t planned)
{
    bool fresh;
    pair *p = rk__ind_pair(ind, 'E', e, en, &fresh);
    int64_t day = rk__ind_day(planned, ind->s.tz_offset_s);
    int32_t mon = month_of(ind, day);
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
        add_to(slot_of(ind, e, false, mon, true), RK_IC_ENTERPRISES, 1, 0);
    if (pair_take(p->qtr, (int32_t)floordiv(mon, 3)))
        add_to(slot_of(ind, e, true, (int32_t)floordiv(mon, 3), true), RK_IC_ENTERPRISES, 1, 0);
    mark(ind, e);
}

static size_t task_size(const task *t)
{
    return sizeof(*t) + strlen(t->id) + 1 + t->noff * sizeof(ent *);
}

static void task_free(rk__ind *ind, task *t)
{
    if (t == NULL)
        return;
    ind->rec_bytes -= task_size(t);
    rk__ind_str_unref(ind, t->enterprise);
    rk__ind_str_unref(ind, t->joint);
    free(t->off);
    free(t);
}

ind_task *rk__ind_task(rk__ind *ind, const char *id, bool create)
{
    uint64_t h = hash_of('T', id);
    size_t len;
    task *t;
    for (t = rk_itab_first(&ind->tasks, h); t != NULL; t = rk_itab_next(&ind->tasks, t))
        if (t->h == h && strcmp(t->id, id) == 0)
            return t;
    if (!create)
        return NULL;
    len = strlen(id);
    if (len > 4096 || rk_itab_reserve(&ind->tasks) != 0 ||
        (t = calloc(1, sizeof(*t) + len + 1)) == NULL)
        return NULL;
    memcpy(t->id, id, len + 1);
    t->h = h;
    t->scan_ts = INT64_MIN;
    t->planned_at = INT64_MIN;
    t->heap_pos = RK_HEAP_NONE;
    rk_itab_insert(&ind->tasks, t, h, NULL);
    ind->rec_bytes += task_size(t);
    return t;
}

#define task_get rk__ind_task

/* Set the officers of t (distinct, at most MAX_ENTS - 3). */
int rk__ind_task_officers(rk__ind *ind, task *t, const char *const *off, size_t n)
{
    size_t i;
    uint32_t j;
    ind->rec_bytes -= t->noff * sizeof(ent *);
    free(t->off);
    t->off = NULL;
    t->noff = 0;
    if (n == 0)
        return 0;
    if (n > MAX_ENTS - 3)
        n = MAX_ENTS - 3;
    if ((t->off = calloc(n, sizeof(*t->off))) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        ent *o = off[i] ? ent_get(ind, RK_IND_OFFICER, off[i], true) : NULL;
        bool dup = false;
        for (j = 0; j < t->noff && !dup; j++)
            dup = t->off[j] == o;
        if (o != NULL && !dup)
            t->off[t->noff++] = o;
    }
    ind->rec_bytes += t->noff * sizeof(ent *);
    return 0;
}

/* Set the who of t (unit, region, officers) from ev. */
static int task_set_who(rk__ind *ind, task *t, const rk_event *ev)
{
    const char *region = region_of(ind, ev->unit_id, ev->region);
    t->unit = ev->unit_id ? ent_get(ind, RK_IND_UNIT, ev->unit_id, true) : NULL;
    t->region = region ? ent_get(ind, RK_IND_REGION, region, true) : NULL;
    return rk__ind_task_officers(ind, t, ev->officers, ev->n_officers);
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
    task *t = task_get(ind, ev->task_id, false);
    ents es;
    size_t i;
    ind_str *old_joint;
    uint64_t old_counted;
    bool excluded;
    if (t == NULL) {
        if (ev->flags & RK_EVF_AMENDED)
            ind->expired_amendments++;
        if ((t = task_get(ind, ev->task_id, true)) == NULL)
            return -1;
    }
    task_apply(ind, t, -1);
    old_joint = t->joint;
    old_counted = t->counted;
    t->joint = NULL;
    if (task_set_who(ind, t, ev) != 0) {
        rk__ind_str_unref(ind, old_joint);
        return -1;
    }
    rk__ind_str_unref(ind, t->enterprise);
    t->enterprise = ev->enterprise_id ? rk__ind_str(ind, ev->enterprise_id) : NULL;
    t->joint = ev->joint_id ? rk__ind_str(ind, ev->joint_id) : NULL;
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
               old_joint == t->joint;
        if (t->joint != NULL && !keep) {
            pair *p = rk__ind_pair(ind, 'J', es.e[i], t->joint, &fresh);
            if (p != NULL)
                p->last_day = (int32_t)rk__ind_day(t->planned_at, ind->s.tz_offset_s);
        }
        if (fresh || keep) {
            t->counted |= UINT64_C(1) << i;
            if (t->enterprise)
                count_enterprise(ind, es.e[i], t->enterprise, t->planned_at);
        }
    }
    rk__ind_str_unref(ind, old_joint);
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
    ent *es[3];
    int i;
    es[0] = c->unit;
    es[1] = c->region;
    es[2] = ent_get(ind, RK_IND_ALL, "all", true);
    for (i = 0; i < 3; i++) {
        slots s;
        if (es[i] == NULL)
            continue;
        slots_of(ind, es[i], c->ts, sign > 0 || sign * c->fen > 0, &s);
        slots_add(&s, RK_IC_CASES_DECIDED, sign, sign * c->fen);
        if (c->lenient)
            slots_add(&s, RK_IC_LENIENT, sign, 0);
    }
}

ind_case *rk__ind_case(rk__ind *ind, const char *id, bool create)
{
    uint64_t h = hash_of('C', id);
    size_t len;
    cas *c;
    for (c = rk_itab_first(&ind->cases, h); c != NULL; c = rk_itab_next(&ind->cases, c))
        if (c->h == h && strcmp(c->id, id) == 0)
            return c;
    if (!create)
        return NULL;
    len = strlen(id);
    if (len > 4096 || rk_itab_reserve(&ind->cases) != 0 ||
        (c = calloc(1, sizeof(*c) + len + 1)) == NULL)
        return NULL;
    memcpy(c->id, id, len + 1);
    c->h = h;
    rk_itab_insert(&ind->cases, c, h, NULL);
    ind->rec_bytes += sizeof(*c) + len + 1;
    return c;
}

static void case_free(rk__ind *ind, cas *c)
{
    ind->rec_bytes -= sizeof(*c) + strlen(c->id) + 1;
    free(c);
}

static int on_decided(rk__ind *ind, const rk_event *ev)
{
    cas *c = rk__ind_case(ind, ev->case_id, false);
    const char *region;
    if (c != NULL) {
        case_apply(ind, c, -1);
    } else {
        if (ev->flags & RK_EVF_AMENDED)
            ind->expired_amendments++;
        if ((c = rk__ind_case(ind, ev->case_id, true)) == NULL)
            return -1;
    }
    region = region_of(ind, ev->unit_id, ev->region);
    c->ts = ev->ts;
    c->unit = ev->unit_id ? ent_get(ind, RK_IND_UNIT, ev->unit_id, true) : NULL;
    c->region = region ? ent_get(ind, RK_IND_REGION, region, true) : NULL;
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

uint64_t rk__ind_expired_amendments(const rk__ind *ind)
{
    return ind->expired_amendments;
}

/* The horizon: the start of the oldest period still reported (the
 * previous quarter or the window). A time before it counts in no reported
 * period, now or later. */
static int64_t horizon(const rk__ind *ind)
{
    int tz = ind->s.tz_offset_s;
    int64_t q = rk__ind_quarter_start(rk__ind_quarter(ind->now, tz) - 1, tz);
    int64_t w = (int64_t)(ind->now_day - ind->wdays + 1) * DAY_MS - (int64_t)tz * 1000;
    return q < w ? q : w;
}

/* Can task t no longer change a figure reported from horizon h on? */
static bool task_done(const task *t, int64_t h)
{
    return (t->passed || !t->filed) && t->seen < h && t->planned_at < h && t->scan_ts < h;
}

/* Drop the records that can no longer change a reported figure: all of
 * them when the horizon moved (once a quarter, or a day with a window
 * over 90 days), a task also when its deadline passes behind it. */
static void sweep(rk__ind *ind)
{
    int64_t h = horizon(ind);
    int32_t hday = (int32_t)rk__ind_day(h, ind->s.tz_offset_s);
    size_t b;
    if (h == ind->swept)
        return;                     /* the horizon moves once a quarter (a
                                     * window over 90 days: once a day) */
    ind->swept = h;
    for (b = 0; b < ind->tasks.nb; b++) {
        task *t, *next;
        for (t = ind->tasks.b[b]; t != NULL; t = next) {
            next = t->next;
            if (task_done(t, h)) {
                rk_itab_remove(&ind->tasks, t, t->h);
                task_free(ind, t);
            }
        }
    }
    for (b = 0; b < ind->cases.nb; b++) {
        cas *c, *next;
        for (c = ind->cases.b[b]; c != NULL; c = next) {
            next = c->next;
            if (c->ts < h) {
                rk_itab_remove(&ind->cases, c, c->h);
                case_free(ind, c);
            }
        }
    }
    for (b = 0; b < ind->pairs.nb; b++) {
        pair *p, *next;
        for (p = ind->pairs.b[b]; p != NULL; p = next) {
            next = p->next;
            if (p->last_day < hday)
                pair_free(ind, p);
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
        if (ind->swept != INT64_MIN && task_done(t, ind->swept)) {
            rk_itab_remove(&ind->tasks, t, t->h);
            task_free(ind, t);
        }
    }
    day = (int32_t)rk__ind_day(now, ind->s.tz_offset_s);
    if (day != ind->now_day) {
        size_t i;
        ind->now_day = day;
        for (i = 0; i < ind->nents; i++) {
            day_prune(ind, ind->byidx[i]);
            mark(ind, ind->byidx[i]);   /* the window and the current periods moved */
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

/* Field f: the decimal v (what "%lld" prints, without the printf). */
static void put(rk__ind_hash *h, const char *f, long long v)
{
    char tmp[24], *o = h->v[h->nf];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        *o++ = '-';
    while (n > 0)
        *o++ = tmp[--n];
    *o = '\0';
    h->f[h->nf] = f;
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
    put(h, "filings", c[RK_IC_FILINGS]);
    put(h, "unfiled", c[RK_IC_UNFILED]);
    put_rate(h, "filing_rate", c[RK_IC_FILINGS], (int64_t)c[RK_IC_FILINGS] + c[RK_IC_UNFILED]);
    put_rate(h, "scan_rate", c[RK_IC_SCANNED_BY_DEADLINE], c[RK_IC_DEADLINE_PASSED]);
    put_rate(h, "rating_rate", c[RK_IC_RATED], c[RK_IC_SCANNED]);
    put_rate(h, "bad_rating_share", c[RK_IC_BAD_RATINGS], c[RK_IC_RATINGS]);
    put_rate(h, "inspections_per_enterprise", c[RK_IC_COUNTED], c[RK_IC_ENTERPRISES]);
    put(h, "cases_opened", c[RK_IC_CASES_OPENED]);
    put(h, "cases_decided", c[RK_IC_CASES_DECIDED]);
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
    put(h, "complaints", c[RK_IC_COMPLAINTS]);
    put(h, "reviews", c[RK_IC_REVIEWS]);
    put(h, "corrections", c[RK_IC_CORRECTIONS]);
    put_rate(h, "correction_rate", c[RK_IC_CORRECTIONS], c[RK_IC_REVIEWS]);
    /* TODO(open alerts): counted from alerts.open_key once that hash is
     * kept; until then 0 here (riskctl indicators reads it itself). */
    put(h, "open_critical", 0);
    put(h, "open_warning", 0);
    put(h, "open_info", 0);
    put(h, "scanned_by_deadline", c[RK_IC_SCANNED_BY_DEADLINE]);
    put(h, "deadline_passed", c[RK_IC_DEADLINE_PASSED]);
    put(h, "rated", c[RK_IC_RATED]);
    put(h, "scanned", c[RK_IC_SCANNED]);
    put(h, "bad_ratings", c[RK_IC_BAD_RATINGS]);
    put(h, "ratings", c[RK_IC_RATINGS]);
    put(h, "counted_inspections", c[RK_IC_COUNTED]);
    put(h, "enterprises", c[RK_IC_ENTERPRISES]);
    put(h, "lenient", c[RK_IC_LENIENT]);
    h->f[h->nf] = "from";
    rk__format_rfc3339(from, tz, h->v[h->nf++], sizeof(h->v[0]));
    h->f[h->nf] = "to";
    rk__format_rfc3339(to, tz, h->v[h->nf++], sizeof(h->v[0]));
    if (updated_at != INT64_MIN) {
        h->f[h->nf] = "updated_at";
        rk__format_rfc3339(updated_at, tz, h->v[h->nf++], sizeof(h->v[0]));
    }
}

/* What a hash shows, less its updated_at: its label, bounds, counters
 * (hashed as numbers: nothing is formatted for a hash that did not
 * change) and a unit's region. */
static uint32_t digest(const char *label, const rk__ind_counts *n, int64_t from, int64_t to,
                       const char *region)
{
    uint64_t x = rk_kit_fnv1a(UINT64_C(1469598103934665603), label, strlen(label));
    x = rk_kit_fnv1a(x, n->c, sizeof(n->c));
    x = rk_kit_fnv1a(x, &n->fines_fen, sizeof(n->fines_fen));
    x = rk_kit_fnv1a(x, &from, sizeof(from));
    x = rk_kit_fnv1a(x, &to, sizeof(to));
    if (region != NULL)
        x = rk_kit_fnv1a(x, region, strlen(region) + 1);
    return (uint32_t)(x ^ (x >> 32)) | 1u;  /* never 0: 0 is "not written" */
}

/* The region a unit's hashes show (the unit -> region map), else NULL. */
static const char *hash_region(rk__ind *ind, const ent *e)
{
    return e->scope == RK_IND_UNIT ? rk_map_get(&ind->unit_region, e->key) : NULL;
}

/* The bounds and label of month or quarter idx. */
static void slot_bounds(const rk__ind *ind, bool q, int32_t idx, int64_t *from, int64_t *to,
                        char *label)
{
    int tz = ind->s.tz_offset_s;
    if (q) {
        *from = rk__ind_quarter_start(idx, tz);
        *to = rk__ind_quarter_start(idx + 1, tz);
        rk__ind_quarter_label(idx, label, 16);
    } else {
        *from = rk__ind_month_start(idx, tz);
        *to = rk__ind_month_start(idx + 1, tz);
        rk__ind_month_label(idx, label, 16);
    }
}

/* Slot i of e's months (q false) or quarters is taken by a newer period:
 * keep its figures as a final hash when they differ from what was taken
 * last. At most 4 per key wait (more only while nobody writes). */
static void final_keep(rk__ind *ind, ent *e, bool q, int i)
{
    uint32_t *w = &e->written[1 + 2 * q + i];
    const rk__ind_counts *n = q ? &e->q[i] : &e->m[i];
    int32_t idx = q ? e->qtr[i] : e->mon[i];
    int64_t from, to;
    char label[16];
    ind_final *f;
    if (ind->no_finals)
        return;
    slot_bounds(ind, q, idx, &from, &to, label);
    if (*w == digest(label, n, from, to, hash_region(ind, e)))
        return;                     /* written as it is */
    *w = 0;
    if (ind->nfinals >= 4 * ind->nents + 1024) {
        ind->finals_dropped++;
        return;
    }
    if (ind->nfinals == ind->capfinals) {
        size_t nc = ind->capfinals ? ind->capfinals * 2 : 64;
        ind_final *nf = realloc(ind->finals, nc * sizeof(*nf));
        if (nf == NULL) {
            ind->finals_dropped++;
            return;
        }
        ind->finals = nf;
        ind->capfinals = nc;
    }
    f = &ind->finals[ind->nfinals++];
    f->e = e;
    f->n = *n;
    f->last_update = e->last_update;
    f->idx = idx;
    f->quarter = q;
}

/* Append f to the list (*v, *n, *cap); false when out of memory. */
static bool final_push(ind_final **v, size_t *n, size_t *cap, const ind_final *f)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        ind_final *nv = realloc(*v, nc * sizeof(*nv));
        if (nv == NULL)
            return false;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *f;
    return true;
}

void rk__ind_keep_finals(rk__ind *ind, bool keep)
{
    ind->no_finals = !keep;
    if (!keep)
        ind->nfinals = ind->nsent = 0;
}

/* Give hash h (label set) of e with counters n to cb. */
static void take(rk__ind *ind, const ent *e, const rk__ind_counts *n, int64_t from, int64_t to,
                 int64_t last_update, int64_t updated_at, rk__ind_hash *h,
                 void (*cb)(const rk__ind_hash *h, void *ud), void *ud)
{
    rk__ind_format(n, from, to, updated_at, ind->s.tz_offset_s, h);
    h->scope = e->scope;
    h->key = e->key;
    h->region = hash_region(ind, e);
    h->period_start = from;
    h->last_update = last_update;
    cb(h, ud);
}

size_t rk__ind_collect(rk__ind *ind, size_t max, int64_t updated_at,
                       void (*cb)(const rk__ind_hash *h, void *ud), void *ud, bool *more)
{
    size_t done = 0;
    rk__ind_hash h;
    int32_t m = rk__ind_month(ind->now, ind->s.tz_offset_s), q = (int32_t)floordiv(m, 3);
    ind->nsent = 0;                 /* the last write was answered */
    /* the final hashes of the periods that left their keys */
    while (ind->nfinals > 0 && done < max) {
        ind_final f = ind->finals[--ind->nfinals];
        int64_t from, to;
        (void)final_push(&ind->sent, &ind->nsent, &ind->capsent, &f);
        slot_bounds(ind, f.quarter, f.idx, &from, &to, h.label);
        take(ind, f.e, &f.n, from, to, f.last_update, updated_at, &h, cb, ud);
        done++;
    }
    /* the changed hashes of the keys marked: the window and every month
     * and quarter slot up to the current one (the current, the previous
     * and an older one's last figures) */
    while (ind->ndirty > 0 && done + IND_NWRITTEN <= max) {
        ent *e = ind->dirty[--ind->ndirty];
        int s;
        e->listed = false;
        for (s = 0; s < IND_NWRITTEN; s++) {
            rk__ind_counts n;
            int64_t from, to;
            uint32_t d;
            if (s == 0) {
                if (!ent_period(ind, e, RK_IND_WINDOW, &n, &from, &to, h.label))
                    continue;
            } else {
                bool isq = s >= 3;
                int i = (s - 1) % 2;
                int32_t idx = isq ? e->qtr[i] : e->mon[i];
                if (idx == EMPTY || idx > (isq ? q : m))
                    continue;       /* unused, or ahead of now: later */
                n = isq ? e->q[i] : e->m[i];
                slot_bounds(ind, isq, idx, &from, &to, h.label);
            }
            d = digest(h.label, &n, from, to, hash_region(ind, e));
            if (d == e->written[s])
                continue;
            e->written[s] = d;
            take(ind, e, &n, from, to, e->last_update, updated_at, &h, cb, ud);
            done++;
        }
    }
    *more = ind->ndirty > 0 || ind->nfinals > 0;
    return done;
}

void rk__ind_mark_all(rk__ind *ind)
{
    size_t i;
    for (i = 0; i < ind->nents; i++) {
        memset(ind->byidx[i]->written, 0, sizeof(ind->byidx[i]->written));
        mark(ind, ind->byidx[i]);
    }
    /* the final hashes the last collect took: again */
    for (i = 0; i < ind->nsent; i++)
        if (!final_push(&ind->finals, &ind->nfinals, &ind->capfinals, &ind->sent[i]))
            ind->finals_dropped++;
    ind->nsent = 0;
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
    ind->swept = INT64_MIN;
    ind->mday = INT64_MIN;
    rk_itab_init(&ind->ents, offsetof(ent, next), RK_ITAB_NOPREV, ent_h);
    rk_itab_init(&ind->strs, offsetof(ind_str, next), RK_ITAB_NOPREV, str_h);
    rk_itab_init(&ind->tasks, offsetof(task, next), RK_ITAB_NOPREV, task_h);
    rk_itab_init(&ind->cases, offsetof(cas, next), RK_ITAB_NOPREV, case_h);
    rk_itab_init(&ind->pairs, offsetof(pair, next), RK_ITAB_NOPREV, pair_h);
    rk_heap_init(&ind->deadlines, offsetof(task, heap_pos));
    return ind;
}

void rk__ind_free(rk__ind *ind)
{
    size_t b, i;
    if (ind == NULL)
        return;
    for (i = 0; i < ind->nslabs; i++)
        free(ind->slabs[i]);
    free(ind->slabs);
    for (b = 0; b < ind->tasks.nb; b++) {
        task *t, *next;
        for (t = ind->tasks.b[b]; t != NULL; t = next) {
            next = t->next;
            free(t->off);
            free(t);
        }
    }
    for (b = 0; b < ind->cases.nb; b++) {
        cas *c, *next;
        for (c = ind->cases.b[b]; c != NULL; c = next) {
            next = c->next;
            free(c);
        }
    }
    for (b = 0; b < ind->strs.nb; b++) {
        ind_str *x, *next;
        for (x = ind->strs.b[b]; x != NULL; x = next) {
            next = x->next;
            free(x);
        }
    }
    for (i = 0; i < ind->nents; i++) {
        free(ind->byidx[i]->days);
        free(ind->byidx[i]);
    }
    rk_itab_free(&ind->pairs);
    rk_itab_free(&ind->tasks);
    rk_itab_free(&ind->cases);
    rk_itab_free(&ind->strs);
    rk_itab_free(&ind->ents);
    free(ind->byidx);
    free(ind->strv);
    free(ind->freev);
    rk_map_clear(&ind->unit_region, free);
    rk_heap_free(&ind->deadlines);
    free(ind->dirty);
    free(ind->finals);
    free(ind->sent);
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
    size_t total = sizeof(*ind) + ind->day_bytes + ind->rec_bytes +
                   ind->capdirty * sizeof(ent *) + ind->capents * sizeof(ent *) +
                   ind->capstrv * (sizeof(ind_str *) + sizeof(uint32_t)) +
                   (ind->ents.nb + ind->strs.nb + ind->tasks.nb + ind->cases.nb +
                    ind->pairs.nb) * sizeof(void *) +
                   ind->deadlines.cap * sizeof(rk_heap_item) +
                   (ind->capfinals + ind->capsent) * sizeof(ind_final);
    if (entities)
        *entities = ind->nents;
    if (tasks)
        *tasks = ind->tasks.count;
    return total;
}

size_t rk__ind_keys(const rk__ind *ind, int scope, void (*cb)(const char *key, void *ud),
                    void *ud)
{
    size_t i, n = 0;
    for (i = 0; i < ind->nents; i++) {
        const ent *e = ind->byidx[i];
        if (e->scope != scope)
            continue;
        cb(e->key, ud);
        n++;
    }
    return n;
}
