/* indicators_snap.c - the indicators' section of the checkpoint: writing
 * it (format 2) and reading it back (format 2, and format 1 of the
 * release before, since a checkpoint outlives an upgrade).
 *
 * Format 2 is compact: every id is written once. Keys (ents) are written
 * first, in their creation order, then the table of interned enterprise
 * and joint ids (in slot order, holes included); tasks, cases and pairs
 * name both by number. Numbers are LEB128 varints, signed ones zigzag;
 * times are written as the difference to the module's now (a task's scan
 * to its planned time), days, months and quarters to now's, so most take
 * one to four bytes; a counter block is a bit mask of its non-zero
 * counters and those counters. About 35 bytes per task and 10 per pair,
 * where format 1 took 150-250 with its repeated strings. Writing touches
 * no record (a forked child writing it would copy every page it wrote).
 *
 *   u32 version (2), time now
 *   uv nents, per key: uv scope, str id, time last_update,
 *      2 x (idx month, counts), 2 x (idx quarter, counts), uv ndays,
 *      per day: idx day, counts
 *   uv nids, per slot: uv 0 (free) or uv length + 1 and the bytes
 *   uv ntasks, per task: str id, time planned_at, time scan_ts, time seen,
 *      ref unit, ref region, sref enterprise, sref joint, uv noff, ref
 *      officer..., uv flags (kind | filed 0x100 | passed 0x200 | rated
 *      0x400), uv counted
 *   uv ncases, per case: str id, time ts, ref unit, ref region, zz fen,
 *      uv lenient
 *   uv npairs, per pair: uv kind (0 E, 1 J), uv key, sref id,
 *      idx last_day, 2 x idx month, 2 x idx quarter
 *   uv nunits, per unit: str unit, str region
 * where str = uv length + bytes, time/idx = uv 0 for none (INT64_MIN /
 * EMPTY) else zz(value - base) + 1, ref = uv 0 none else key number + 1,
 * sref = uv 0 none else the id's number + 1 in the table of ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indicators_int.h"

#define IND_V1 1u
#define IND_V2 2u
#define STR_MAX 4096

/* ===================================================================
 * Varints
 * =================================================================== */

static void put_uv(rk_buf *out, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            b[n] |= 0x80;
        n++;
    } while (v != 0);
    rk_buf_put_bytes(out, b, n);
}

static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t unzz(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void put_zz(rk_buf *out, int64_t v) { put_uv(out, zz(v)); }

static void put_str(rk_buf *out, const char *s)
{
    size_t n = strlen(s);
    put_uv(out, n);
    rk_buf_put_bytes(out, s, n);
}

/* A time (INT64_MIN: none) relative to base; the difference wraps the
 * way it is read back, so any pair of values round-trips. */
static void put_time(rk_buf *out, int64_t v, int64_t base)
{
    if (v == INT64_MIN) {
        put_uv(out, 0);
        return;
    }
    put_uv(out, zz((int64_t)((uint64_t)v - (uint64_t)base)) + 1);
}

/* A day, month or quarter index (IND_EMPTY: none) relative to base. */
static void put_idx(rk_buf *out, int32_t v, int32_t base)
{
    if (v == IND_EMPTY) {
        put_uv(out, 0);
        return;
    }
    put_uv(out, zz((int64_t)v - base) + 1);
}

static void put_counts(rk_buf *out, const rk__ind_counts *n)
{
    uint64_t mask = 0;
    int i;
    for (i = 0; i < RK_IC_N; i++)
        if (n->c[i] != 0)
            mask |= UINT64_C(1) << i;
    if (n->fines_fen != 0)
        mask |= UINT64_C(1) << RK_IC_N;
    put_uv(out, mask);
    for (i = 0; i < RK_IC_N; i++)
        if (n->c[i] != 0)
            put_zz(out, n->c[i]);
    if (n->fines_fen != 0)
        put_zz(out, n->fines_fen);
}

static uint64_t get_uv(rk_rd *rd)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (!rd->err) {
        unsigned char b;
        if (rd->p >= rd->end || shift > 63) {
            rd->err = 1;
            break;
        }
        b = *rd->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
        shift += 7;
    }
    return 0;
}

static int64_t get_zz(rk_rd *rd) { return unzz(get_uv(rd)); }

/* A string of at most STR_MAX bytes without a NUL, into buf
 * (STR_MAX + 1 bytes). */
static const char *get_str(rk_rd *rd, char *buf)
{
    uint64_t n = get_uv(rd);
    if (rd->err || n > STR_MAX || n > (uint64_t)(rd->end - rd->p) ||
        memchr(rd->p, '\0', (size_t)n) != NULL) {
        rd->err = 1;
        return NULL;
    }
    memcpy(buf, rd->p, (size_t)n);
    buf[n] = '\0';
    rd->p += n;
    return buf;
}

static int64_t get_time(rk_rd *rd, int64_t base)
{
    uint64_t v = get_uv(rd);
    if (v == 0)
        return INT64_MIN;
    return (int64_t)((uint64_t)base + (uint64_t)unzz(v - 1));
}

/* A restored time the period arithmetic takes (event times are years 0
 * to 9999): none, or within +-2^53 ms (some 285,000 years, whose days and
 * months fit in 32 bits). */
static int64_t checked(rk_rd *rd, int64_t v)
{
    if (v != INT64_MIN && (v <= -(INT64_C(1) << 53) || v >= (INT64_C(1) << 53)))
        rd->err = 1;
    return rd->err ? INT64_MIN : v;
}

static int32_t get_idx(rk_rd *rd, int32_t base)
{
    uint64_t v = get_uv(rd);
    int64_t d;
    if (v == 0)
        return IND_EMPTY;
    d = unzz(v - 1);
    if (d <= (int64_t)INT32_MIN - base || d > (int64_t)INT32_MAX - base) {
        rd->err = 1;                /* out of range (INT32_MIN is "none") */
        return IND_EMPTY;
    }
    return (int32_t)(base + d);
}

/* Counters a restore takes: a day's at most 2^22 (a window of 400 days
 * still sums within 32 bits), a month's or quarter's 2^28, fines 2^50
 * fen; larger ones are a corrupt checkpoint, not figures to add to. */
#define LIM_DAY (INT64_C(1) << 22)
#define LIM_SLOT (INT64_C(1) << 28)
#define LIM_FEN (INT64_C(1) << 50)

static void check_counts(rk_rd *rd, const rk__ind_counts *n, int64_t lim)
{
    int i;
    for (i = 0; i < RK_IC_N; i++)
        if (n->c[i] <= -lim || n->c[i] >= lim)
            rd->err = 1;
    if (n->fines_fen <= -LIM_FEN || n->fines_fen >= LIM_FEN)
        rd->err = 1;
}

static void get_counts(rk_rd *rd, rk__ind_counts *n, int64_t lim)
{
    uint64_t mask = get_uv(rd);
    int i;
    memset(n, 0, sizeof(*n));
    if (mask >> (RK_IC_N + 1)) {
        rd->err = 1;
        return;
    }
    for (i = 0; i < RK_IC_N; i++)
        if (mask & (UINT64_C(1) << i)) {
            int64_t v = get_zz(rd);
            if (v <= -lim || v >= lim)
                rd->err = 1;
            else
                n->c[i] = (int32_t)v;
        }
    if (mask & (UINT64_C(1) << RK_IC_N))
        n->fines_fen = get_zz(rd);
    check_counts(rd, n, lim);
}

/* ===================================================================
 * Format 2: writing
 * =================================================================== */

static void put_ref(rk_buf *out, const ind_ent *e)
{
    put_uv(out, e ? (uint64_t)e->idx + 1 : 0);
}

static void put_sref(rk_buf *out, const ind_str *x)
{
    put_uv(out, x ? (uint64_t)x->idx + 1 : 0);
}

int rk__ind_snapshot(const rk__ind *ind, rk_buf *out)
{
    int tz = ind->s.tz_offset_s;
    int64_t now = ind->now == INT64_MIN ? 0 : ind->now;
    int32_t nday = ind->now == INT64_MIN ? 0 : ind->now_day;
    int32_t nmon = ind->now == INT64_MIN ? 0 : rk__ind_month(ind->now, tz);
    int32_t nq = (int32_t)((nmon - ((nmon % 3) + 3) % 3) / 3);
    size_t i, b;
    int k;

    rk_buf_put_u32(out, IND_V2);
    put_time(out, ind->now, 0);
    put_uv(out, ind->nents);
    for (i = 0; i < ind->nents; i++) {
        const ind_ent *e = ind->byidx[i];
        uint16_t d;
        put_uv(out, e->scope);
        put_str(out, e->key);
        put_time(out, e->last_update, now);
        for (k = 0; k < 2; k++) {
            put_idx(out, e->mon[k], nmon);
            if (e->mon[k] != IND_EMPTY)
                put_counts(out, &e->m[k]);
        }
        for (k = 0; k < 2; k++) {
            put_idx(out, e->qtr[k], nq);
            if (e->qtr[k] != IND_EMPTY)
                put_counts(out, &e->q[k]);
        }
        put_uv(out, e->ndays);
        for (d = 0; d < e->ndays; d++) {
            put_idx(out, e->days[d].day, nday);
            put_counts(out, &e->days[d].n);
        }
    }
    put_uv(out, ind->nstrv);
    for (i = 0; i < ind->nstrv; i++) {
        const ind_str *x = ind->strv[i];
        size_t n = x ? strlen(x->s) : 0;
        put_uv(out, x ? n + 1 : 0);
        if (x)
            rk_buf_put_bytes(out, x->s, n);
    }
    put_uv(out, ind->tasks.count);
    for (b = 0; b < ind->tasks.nb; b++) {
        const ind_task *t;
        for (t = ind->tasks.b[b]; t != NULL; t = t->next) {
            uint32_t o;
            put_str(out, t->id);
            put_time(out, t->planned_at, now);
            put_time(out, t->scan_ts, t->planned_at == INT64_MIN ? now : t->planned_at);
            put_time(out, t->seen, now);
            put_ref(out, t->unit);
            put_ref(out, t->region);
            put_sref(out, t->enterprise);
            put_sref(out, t->joint);
            put_uv(out, t->noff);
            for (o = 0; o < t->noff; o++)
                put_ref(out, t->off[o]);
            put_uv(out, (uint64_t)t->kind | (t->filed ? 0x100u : 0) | (t->passed ? 0x200u : 0) |
                            (t->rated ? 0x400u : 0));
            put_uv(out, t->counted);
        }
    }
    put_uv(out, ind->cases.count);
    for (b = 0; b < ind->cases.nb; b++) {
        const ind_case *c;
        for (c = ind->cases.b[b]; c != NULL; c = c->next) {
            put_str(out, c->id);
            put_time(out, c->ts, now);
            put_ref(out, c->unit);
            put_ref(out, c->region);
            put_zz(out, c->fen);
            put_uv(out, c->lenient);
        }
    }
    put_uv(out, ind->pairs.count);
    for (b = 0; b < ind->pairs.nb; b++) {
        const ind_pair *p;
        for (p = ind->pairs.b[b]; p != NULL; p = p->next) {
            put_uv(out, p->kind == 'J');
            put_uv(out, (uint64_t)p->e + 1);
            put_uv(out, (uint64_t)p->x + 1);
            put_idx(out, p->last_day, nday);
            for (k = 0; k < 2; k++)
                put_idx(out, p->mon[k], nmon);
            for (k = 0; k < 2; k++)
                put_idx(out, p->qtr[k], nq);
        }
    }
    put_uv(out, ind->unit_region.count);
    {
        rk_map_entry *it;
        for (it = rk_map_first(&ind->unit_region, &b); it;
             it = rk_map_next(&ind->unit_region, &b, it)) {
            put_str(out, it->key);
            put_str(out, it->value);
        }
    }
    return out->oom ? -1 : 0;
}

/* ===================================================================
 * Format 2: reading
 * =================================================================== */

/* A key by number (0: none); an unknown number is an error. */
static ind_ent *get_ref(rk_rd *rd, rk__ind *ind)
{
    uint64_t v = get_uv(rd);
    if (v == 0 || rd->err)
        return NULL;
    if (v > ind->nents) {
        rd->err = 1;
        return NULL;
    }
    return ind->byidx[v - 1];
}

/* An interned id by number (a new reference for the caller), or NULL. */
static ind_str *get_sref(rk_rd *rd, rk__ind *ind)
{
    uint64_t v = get_uv(rd);
    ind_str *x;
    if (v == 0 || rd->err)
        return NULL;
    if (v > ind->nstrv || (x = ind->strv[v - 1]) == NULL) {
        rd->err = 1;
        return NULL;
    }
    x->refs++;
    return x;
}

static int restore_v2(rk__ind *ind, rk_rd *rd)
{
    int tz = ind->s.tz_offset_s;
    char buf[STR_MAX + 1];
    size_t nstr;
    int64_t now;
    int32_t nday, nmon, nq;
    uint64_t n, k;
    size_t i;
    int j;

    ind->now = checked(rd, get_time(rd, 0));
    ind->now_day = ind->now == INT64_MIN ? IND_NO_DAY : (int32_t)rk__ind_day(ind->now, tz);
    now = ind->now == INT64_MIN ? 0 : ind->now;
    nday = ind->now == INT64_MIN ? 0 : ind->now_day;
    nmon = ind->now == INT64_MIN ? 0 : rk__ind_month(ind->now, tz);
    nq = (int32_t)((nmon - ((nmon % 3) + 3) % 3) / 3);
    n = get_uv(rd);
    for (k = 0; k < n && !rd->err; k++) {
        uint64_t scope = get_uv(rd), nd, d;
        const char *id = get_str(rd, buf);
        ind_ent *e;
        if (rd->err || scope >= RK_IND_NSCOPES || ind->nents != k)
            break;
        if ((e = rk__ind_ent(ind, (int)scope, id, true)) == NULL || e->idx != k) {
            rd->err = 1;            /* out of memory, or a key twice */
            break;
        }
        e->last_update = checked(rd, get_time(rd, now));
        for (j = 0; j < 2; j++) {
            e->mon[j] = get_idx(rd, nmon);
            if (e->mon[j] != IND_EMPTY)
                get_counts(rd, &e->m[j], LIM_SLOT);
        }
        for (j = 0; j < 2; j++) {
            e->qtr[j] = get_idx(rd, nq);
            if (e->qtr[j] != IND_EMPTY)
                get_counts(rd, &e->q[j], LIM_SLOT);
        }
        nd = get_uv(rd);
        for (d = 0; d < nd && !rd->err; d++) {
            int32_t day = get_idx(rd, nday);
            rk__ind_counts c, *slot;
            get_counts(rd, &c, LIM_DAY);
            if (rd->err || day == IND_EMPTY)
                break;
            if ((slot = rk__ind_day_slot(ind, e, day, true)) != NULL)
                *slot = c;
        }
        rk__ind_mark(ind, e);
    }
    if (ind->nents != n)
        rd->err = 1;
    /* the interned ids, each holding a reference until the end */
    n = get_uv(rd);
    for (k = 0; k < n && !rd->err; k++) {
        uint64_t len = get_uv(rd);
        ind_str *x;
        if (rd->err)
            break;
        if (len == 0) {             /* a free slot */
            if (rk__ind_str_hole(ind) != 0)
                rd->err = 1;
            continue;
        }
        if (len > STR_MAX + 1 || len - 1 > (uint64_t)(rd->end - rd->p)) {
            rd->err = 1;
            break;
        }
        memcpy(buf, rd->p, (size_t)len - 1);
        buf[len - 1] = '\0';
        rd->p += len - 1;
        if (memchr(buf, '\0', (size_t)len - 1) != NULL || (x = rk__ind_str(ind, buf)) == NULL ||
            x->idx != k) {
            rd->err = 1;            /* out of memory, or an id twice */
            break;
        }
    }
    nstr = ind->nstrv;
    for (i = 0; i < nstr; i++)      /* the free slots, now that all are read */
        if (ind->strv[i] == NULL && ind->nfree < ind->capstrv)
            ind->freev[ind->nfree++] = (uint32_t)i;
    n = get_uv(rd);
    for (k = 0; k < n && !rd->err; k++) {
        const char *id = get_str(rd, buf);
        ind_task *t;
        uint64_t no, o, fl;
        if (rd->err)
            break;
        if (rk__ind_task(ind, id, false) != NULL || (t = rk__ind_task(ind, id, true)) == NULL) {
            rd->err = 1;            /* out of memory, or a task twice */
            break;
        }
        t->planned_at = checked(rd, get_time(rd, now));
        t->scan_ts = checked(rd, get_time(rd, t->planned_at == INT64_MIN ? now : t->planned_at));
        t->seen = checked(rd, get_time(rd, now));
        t->unit = get_ref(rd, ind);
        t->region = get_ref(rd, ind);
        t->enterprise = get_sref(rd, ind);
        t->joint = get_sref(rd, ind);
        no = get_uv(rd);
        if (no > IND_MAX_ENTS - 3) {
            rd->err = 1;
            break;
        }
        if (no > 0) {
            if ((t->off = calloc((size_t)no, sizeof(*t->off))) == NULL) {
                rd->err = 1;
                break;
            }
            ind->rec_bytes += (size_t)no * sizeof(*t->off);
            for (o = 0; o < no && !rd->err; o++) {
                t->off[o] = get_ref(rd, ind);
                if (t->off[o] == NULL)
                    rd->err = 1;
                else
                    t->noff++;
            }
            ind->rec_bytes -= (size_t)(no - t->noff) * sizeof(*t->off);
        }
        fl = get_uv(rd);
        t->counted = get_uv(rd);
        if (rd->err || (fl & ~UINT64_C(0x7ff)) || (fl & 0xff) > RK_KIND_OTHER ||
            ((fl & 0x100) && t->planned_at == INT64_MIN)) {
            rd->err = 1;
            break;
        }
        t->kind = (uint8_t)(fl & 0xff);
        t->filed = (fl & 0x100) != 0;
        t->passed = (fl & 0x200) != 0;
        t->rated = (fl & 0x400) != 0;
        if (t->seen == INT64_MIN)
            t->seen = 0;
        if (t->filed && !t->passed)
            (void)rk_heap_push(&ind->deadlines, rk__ind_deadline(ind, t), t);
    }
    n = get_uv(rd);
    for (k = 0; k < n && !rd->err; k++) {
        const char *id = get_str(rd, buf);
        ind_case *c;
        if (rd->err)
            break;
        if (rk__ind_case(ind, id, false) != NULL || (c = rk__ind_case(ind, id, true)) == NULL) {
            rd->err = 1;
            break;
        }
        c->ts = checked(rd, get_time(rd, now));
        c->unit = get_ref(rd, ind);
        c->region = get_ref(rd, ind);
        c->fen = get_zz(rd);
        c->lenient = get_uv(rd) != 0;
        if (c->fen <= -LIM_FEN || c->fen >= LIM_FEN)
            rd->err = 1;
    }
    n = get_uv(rd);
    for (k = 0; k < n && !rd->err; k++) {
        uint64_t kind = get_uv(rd);
        ind_ent *e = get_ref(rd, ind);
        ind_str *x = get_sref(rd, ind);
        ind_pair *p;
        bool fresh = false;
        if (rd->err || kind > 1 || e == NULL || x == NULL ||
            (p = rk__ind_pair(ind, kind ? 'J' : 'E', e, x, &fresh)) == NULL || !fresh) {
            rk__ind_str_unref(ind, x);
            rd->err = 1;
            break;
        }
        rk__ind_str_unref(ind, x);  /* the pair holds its own */
        p->last_day = get_idx(rd, nday);
        for (j = 0; j < 2; j++)
            p->mon[j] = get_idx(rd, nmon);
        for (j = 0; j < 2; j++)
            p->qtr[j] = get_idx(rd, nq);
    }
    n = get_uv(rd);
    for (k = 0; k < n && !rd->err; k++) {
        char unit[STR_MAX + 1];
        char *r, *old = NULL;
        if (get_str(rd, unit) == NULL || get_str(rd, buf) == NULL)
            break;
        if ((r = strdup(buf)) == NULL || rk_map_put(&ind->unit_region, unit, r, (void **)&old) == NULL) {
            free(r);
            rd->err = 1;
            break;
        }
        free(old);
    }
    /* the table's references go back: the records hold theirs */
    for (i = 0; i < nstr; i++)
        if (i < ind->nstrv && ind->strv[i] != NULL)
            rk__ind_str_unref(ind, ind->strv[i]);
    return rd->err ? -1 : 0;
}

/* ===================================================================
 * Format 1 (the release before): fixed-width numbers, every id in full
 * =================================================================== */

static void get_counts_v1(rk_rd *rd, rk__ind_counts *n, int64_t lim)
{
    int i;
    for (i = 0; i < RK_IC_N; i++)
        n->c[i] = (int32_t)rk_rd_u32(rd);
    n->fines_fen = rk_rd_i64(rd);
    check_counts(rd, n, lim);
}

static char *get_opt_v1(rk_rd *rd)
{
    return rk_rd_u32(rd) ? rk_rd_str(rd, STR_MAX) : NULL;
}

/* "<scope>\x1f<id>" */
static ind_ent *ent_v1(rk__ind *ind, const char *key)
{
    if (key == NULL || key[0] < '0' || key[0] >= '0' + RK_IND_NSCOPES || key[1] != '\x1f' ||
        key[2] == '\0')
        return NULL;
    return rk__ind_ent(ind, key[0] - '0', key + 2, true);
}

static int restore_v1(rk__ind *ind, rk_rd *rd)
{
    uint64_t n, k;
    size_t b;
    int i;
    ind->now = checked(rd, rk_rd_i64(rd));
    ind->now_day = ind->now == INT64_MIN ? IND_NO_DAY
                   : (int32_t)rk__ind_day(ind->now, ind->s.tz_offset_s);
    n = rk_rd_u64(rd);
    for (k = 0; k < n && !rd->err; k++) {
        char *key = rk_rd_str(rd, STR_MAX);
        ind_ent *e = ent_v1(ind, key), tmp;
        uint32_t nd, j;
        free(key);
        if (e == NULL) {
            memset(&tmp, 0, sizeof(tmp));
            e = &tmp;
        }
        e->last_update = checked(rd, rk_rd_i64(rd));
        for (i = 0; i < 2; i++) {
            e->mon[i] = (int32_t)rk_rd_u32(rd);
            get_counts_v1(rd, &e->m[i], LIM_SLOT);
            e->qtr[i] = (int32_t)rk_rd_u32(rd);
            get_counts_v1(rd, &e->q[i], LIM_SLOT);
        }
        nd = rk_rd_u32(rd);
        for (j = 0; j < nd && !rd->err; j++) {
            int32_t day = (int32_t)rk_rd_u32(rd);
            rk__ind_counts c, *slot = e != &tmp ? rk__ind_day_slot(ind, e, day, true) : NULL;
            get_counts_v1(rd, &c, LIM_DAY);
            if (slot != NULL)
                *slot = c;
        }
        if (e != &tmp)
            rk__ind_mark(ind, e);
    }
    n = rk_rd_u64(rd);
    for (k = 0; k < n && !rd->err; k++) {
        char *key = rk_rd_str(rd, STR_MAX);
        ind_task *t = key && rk__ind_task(ind, key, false) == NULL ? rk__ind_task(ind, key, true)
                                                                    : NULL;
        uint32_t no, j, fl;
        int64_t pa = checked(rd, rk_rd_i64(rd)), sc = checked(rd, rk_rd_i64(rd)),
                seen = checked(rd, rk_rd_i64(rd));
        char *u = get_opt_v1(rd), *r = get_opt_v1(rd), *en = get_opt_v1(rd),
             *jo = get_opt_v1(rd);
        const char *offs[IND_MAX_ENTS];
        char *owned[IND_MAX_ENTS];
        size_t nown = 0;
        no = rk_rd_u32(rd);
        for (j = 0; j < no && !rd->err; j++) {
            char *o = rk_rd_str(rd, STR_MAX);
            if (o != NULL && nown < IND_MAX_ENTS - 3)
                owned[nown++] = o;
            else
                free(o);
        }
        fl = rk_rd_u32(rd);
        if (t != NULL && !rd->err) {
            t->planned_at = pa;
            t->scan_ts = sc;
            t->seen = seen;
            t->unit = u ? rk__ind_ent(ind, RK_IND_UNIT, u, true) : NULL;
            t->region = r ? rk__ind_ent(ind, RK_IND_REGION, r, true) : NULL;
            t->enterprise = en ? rk__ind_str(ind, en) : NULL;
            t->joint = jo ? rk__ind_str(ind, jo) : NULL;
            for (j = 0; j < nown; j++)
                offs[j] = owned[j];
            (void)rk__ind_task_officers(ind, t, offs, nown);
            t->kind = (uint8_t)(fl & 0xff) <= RK_KIND_OTHER ? (uint8_t)(fl & 0xff) : RK_KIND_OTHER;
            t->filed = (fl & 0x100) != 0 && pa != INT64_MIN;
            t->passed = (fl & 0x200) != 0;
            t->rated = (fl & 0x400) != 0;
            t->counted = rk_rd_u64(rd);
            if (t->filed && !t->passed)
                (void)rk_heap_push(&ind->deadlines, rk__ind_deadline(ind, t), t);
        } else {
            (void)rk_rd_u64(rd);
        }
        for (j = 0; j < nown; j++)
            free(owned[j]);
        free(u);
        free(r);
        free(en);
        free(jo);
        free(key);
    }
    n = rk_rd_u64(rd);
    for (k = 0; k < n && !rd->err; k++) {
        char *key = rk_rd_str(rd, STR_MAX);
        ind_case *c = key && rk__ind_case(ind, key, false) == NULL ? rk__ind_case(ind, key, true)
                                                                    : NULL;
        int64_t ts = checked(rd, rk_rd_i64(rd));
        char *u = get_opt_v1(rd), *r = get_opt_v1(rd);
        int64_t fen = rk_rd_i64(rd);
        uint32_t len = rk_rd_u32(rd);
        if (c != NULL && !rd->err) {
            c->ts = ts;
            c->unit = u ? rk__ind_ent(ind, RK_IND_UNIT, u, true) : NULL;
            c->region = r ? rk__ind_ent(ind, RK_IND_REGION, r, true) : NULL;
            c->fen = fen;
            c->lenient = len != 0;
            if (fen <= -LIM_FEN || fen >= LIM_FEN)
                rd->err = 1;
        }
        free(u);
        free(r);
        free(key);
    }
    n = rk_rd_u64(rd);
    for (k = 0; k < n && !rd->err; k++) {
        /* "E|J\x1f<scope>\x1f<id>\x1f<x>" */
        char *key = rk_rd_str(rd, STR_MAX), *id, *x;
        int32_t last = (int32_t)rk_rd_u32(rd), mon[2], qtr[2];
        ind_ent *e = NULL;
        ind_str *s = NULL;
        ind_pair *p = NULL;
        bool fresh = false;
        for (i = 0; i < 2; i++) {
            mon[i] = (int32_t)rk_rd_u32(rd);
            qtr[i] = (int32_t)rk_rd_u32(rd);
        }
        if (key != NULL && (key[0] == 'E' || key[0] == 'J') && key[1] == '\x1f' &&
            (id = strchr(key + 2, '\x1f')) != NULL && (x = strchr(id + 1, '\x1f')) != NULL) {
            *x++ = '\0';
            e = ent_v1(ind, key + 2);
            s = rk__ind_str(ind, x);
        }
        if (e != NULL && s != NULL)
            p = rk__ind_pair(ind, key[0], e, s, &fresh);
        rk__ind_str_unref(ind, s);
        if (p != NULL) {
            p->last_day = last;
            memcpy(p->mon, mon, sizeof(mon));
            memcpy(p->qtr, qtr, sizeof(qtr));
        }
        free(key);
    }
    n = rk_rd_u64(rd);
    for (k = 0; k < n && !rd->err; k++) {
        char *key = rk_rd_str(rd, STR_MAX), *v = rk_rd_str(rd, STR_MAX), *old = NULL;
        if (key == NULL || v == NULL || rk_map_put(&ind->unit_region, key, v, (void **)&old) == NULL)
            free(v);
        free(old);
        free(key);
    }
    if (rd->err)
        return -1;
    /* Format 1 kept a task's or case's region only when known at the
     * time; its figures went to the region its unit had when applied.
     * Fix that region now, so taking the record out undoes what put it
     * in. */
    for (b = 0; b < ind->tasks.nb; b++) {
        ind_task *t;
        for (t = ind->tasks.b[b]; t != NULL; t = t->next)
            if (t->region == NULL && t->unit != NULL) {
                const char *r = rk_map_get(&ind->unit_region, t->unit->key);
                t->region = r ? rk__ind_ent(ind, RK_IND_REGION, r, true) : NULL;
            }
    }
    for (b = 0; b < ind->cases.nb; b++) {
        ind_case *c;
        for (c = ind->cases.b[b]; c != NULL; c = c->next)
            if (c->region == NULL && c->unit != NULL) {
                const char *r = rk_map_get(&ind->unit_region, c->unit->key);
                c->region = r ? rk__ind_ent(ind, RK_IND_REGION, r, true) : NULL;
            }
    }
    return 0;
}

int rk__ind_restore(rk__ind *ind, const void *data, size_t len)
{
    rk_rd rd;
    uint32_t version;
    rk_rd_init(&rd, data, len);
    version = rk_rd_u32(&rd);
    if (rd.err)
        return -1;
    if (version == IND_V2)
        return restore_v2(ind, &rd);
    if (version == IND_V1)
        return restore_v1(ind, &rd);
    return -1;
}
