/* openstore.c - the open alerts the daemon keeps: one record per alert
 * written and not yet resolved, retracted or closed, and when each is
 * closed by alerts.open_ttl.
 *
 * A record (32 bytes) holds the alert id's 16 packed bytes, the alert's ts
 * (its open_ttl deadline is ts + alerts.open_ttl, the setting in force),
 * the detector's index and the rule (a small index into the store's table
 * of rule names). The records sit in one array sorted by (ts, detector,
 * id): the first live one is the next to close, and a notice, which
 * carries its alert's ts (the ts is part of the id), finds its alert by
 * binary search. Alerts are written in event-time order but for late data,
 * so a new record goes at or near the end (a late one moves the records
 * after it, those of the lateness window). Live, replay and a restored
 * checkpoint close in one order: a pure function of the records.
 *
 * A record leaves when its alert is resolved, retracted or closed
 * (rk__ostore_remove): it is marked removed at once; closes advance the
 * array's start past it. Once removed records are more than a sixteenth of
 * the array, the live ones are moved together (O(n), so O(1) a removal
 * over time). The array grows by a sixteenth and is given back when more
 * than a sixteenth of it is free, so an open alert costs its 32 bytes and
 * at most a few of slack, and a resolved one nothing.
 *
 * Checkpoint section (in the engine's state, after the indicators):
 *   u32 version (2), u32 n_names, n_names x str detector name,
 *   u32 n_rules, n_rules x str rule, u64 n,
 *   n x (16 bytes id, i64 ts, u32 name index, u32 rule)
 * in the array's order. Version 1, the deadline heap of the release before
 * (u32 1, names, u64 n, n x (i64 deadline, u32 name index, 16 bytes id)),
 * is read too: each record becomes an open alert of ts deadline -
 * alerts.open_ttl (rule unknown), so every alert it kept stays open. A
 * record of a detector no longer registered is dropped on restore. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define OSTORE_SNAP_VERSION 2u
#define OSTORE_SNAP_V1 1u
#define OSTORE_MAX_RULES 4096u
#define OSTORE_REC_BYTES 32u        /* a record in the snapshot */
#define OA_REMOVED 1u               /* rk__oa.flags */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int rk__alert_id_pack(const char *hex, unsigned char out[16])
{
    size_t i;
    for (i = 0; i < 16; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo;
        if (hi < 0 || (lo = hexval((unsigned char)hex[2 * i + 1])) < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return hex[32] == '\0' ? 0 : -1;
}

void rk__alert_id_unpack(const unsigned char id[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

void rk__ostore_init(rk__ostore *s)
{
    memset(s, 0, sizeof(*s));
}

void rk__ostore_free(rk__ostore *s)
{
    uint32_t i;
    for (i = 0; i < s->nrules; i++)
        free(s->rules[i]);
    free(s->rules);
    free(s->v);
    rk__ostore_init(s);
}

int rk__ostore_rule(rk__ostore *s, const char *rule)
{
    uint32_t i;
    char **nr, *c;
    for (i = 0; i < s->nrules; i++)
        if (strcmp(s->rules[i], rule) == 0)
            return (int)i;
    if (s->nrules >= OSTORE_MAX_RULES || (c = strdup(rule)) == NULL)
        return -1;
    if ((nr = realloc(s->rules, (s->nrules + 1) * sizeof(*nr))) == NULL) {
        free(c);
        return -1;
    }
    s->rules = nr;
    s->rules[s->nrules] = c;
    return (int)s->nrules++;
}

const char *rk__ostore_rule_name(const rk__ostore *s, uint32_t rule)
{
    return rule < s->nrules ? s->rules[rule] : "";
}

/* (ts, det, id) order: <0, 0, >0. */
static int cmp_key(const rk__oa *r, int64_t ts, uint32_t det, const unsigned char id[16])
{
    if (r->ts != ts)
        return r->ts < ts ? -1 : 1;
    if (r->det != det)
        return r->det < det ? -1 : 1;
    return memcmp(r->id, id, 16);
}

/* The first position in [lo, n) whose record is not before the key. */
static uint32_t lower_bound(const rk__ostore *s, int64_t ts, uint32_t det,
                            const unsigned char id[16])
{
    uint32_t lo = s->lo, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cmp_key(&s->v[mid], ts, det, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Move the live records to the array's start; give back what is far more
 * than needed. */
static void compact(rk__ostore *s)
{
    uint32_t i, j = 0;
    for (i = s->lo; i < s->n; i++)
        if (!(s->v[i].flags & OA_REMOVED))
            s->v[j++] = s->v[i];
    s->n = j;
    s->lo = 0;
    s->dead = 0;
    if (s->cap > 64 && s->cap - s->cap / 16 > s->n) {
        uint32_t ncap = s->n + s->n / 32 > 64 ? s->n + s->n / 32 : 64;
        rk__oa *nv = realloc(s->v, (size_t)ncap * sizeof(*nv));
        if (nv != NULL) {
            s->v = nv;
            s->cap = ncap;
        }
    }
}

/* Removed records (dead, and the lo passed at the start) past a
 * sixteenth of the array: compact. */
static void maybe_compact(rk__ostore *s)
{
    uint32_t gone = s->dead + s->lo;
    if (gone > 64 && gone > s->n / 16)
        compact(s);
}

int rk__ostore_add_packed(rk__ostore *s, const unsigned char id[16], int64_t ts,
                          uint32_t det, uint32_t rule)
{
    uint32_t at;
    rk__oa *r;
    if (det > UINT16_MAX || rule > UINT16_MAX)
        return -1;
    at = lower_bound(s, ts, det, id);
    if (at < s->n && cmp_key(&s->v[at], ts, det, id) == 0) {
        if (!(s->v[at].flags & OA_REMOVED))
            return 1;               /* written twice: one alert */
        s->v[at].flags = 0;         /* open again (its id written again) */
        s->v[at].rule = (uint16_t)rule;
        s->dead--;
        return 0;
    }
    if (at == s->lo && s->lo > 0) {
        at = --s->lo;               /* before every live one: room there */
    } else {
        if (s->n == s->cap) {
            uint64_t ncap = s->cap < 64 ? 64 : (uint64_t)s->cap + s->cap / 16;
            rk__oa *nv;
            if (ncap > UINT32_MAX - 1 ||
                (nv = realloc(s->v, (size_t)ncap * sizeof(*nv))) == NULL)
                return -1;
            s->v = nv;
            s->cap = (uint32_t)ncap;
        }
        memmove(&s->v[at + 1], &s->v[at], (size_t)(s->n - at) * sizeof(*s->v));
        s->n++;
    }
    r = &s->v[at];
    memcpy(r->id, id, sizeof(r->id));
    r->ts = ts;
    r->det = (uint16_t)det;
    r->rule = (uint16_t)rule;
    r->flags = 0;
    return 0;
}

int rk__ostore_add(rk__ostore *s, const char *id, int64_t ts, uint32_t det, uint32_t rule)
{
    unsigned char p[16];
    if (rk__alert_id_pack(id, p) != 0)
        return -1;
    return rk__ostore_add_packed(s, p, ts, det, rule);
}

int rk__ostore_find(const rk__ostore *s, int64_t ts, uint32_t det, const char *id)
{
    unsigned char p[16];
    uint32_t at;
    if (det > UINT16_MAX || rk__alert_id_pack(id, p) != 0)
        return -1;
    at = lower_bound(s, ts, det, p);
    if (at < s->n && cmp_key(&s->v[at], ts, det, p) == 0 &&
        !(s->v[at].flags & OA_REMOVED))
        return (int)at;
    return -1;
}

void rk__ostore_remove(rk__ostore *s, uint32_t at)
{
    if (at < s->lo || at >= s->n || (s->v[at].flags & OA_REMOVED))
        return;
    s->v[at].flags |= OA_REMOVED;
    s->dead++;
    /* removed ones at the start: pass them */
    while (s->lo < s->n && (s->v[s->lo].flags & OA_REMOVED)) {
        s->lo++;
        s->dead--;
    }
    if (s->lo == s->n) {
        s->n = s->lo = s->dead = 0;
        free(s->v);                 /* none open: nothing kept */
        s->v = NULL;
        s->cap = 0;
        return;
    }
    maybe_compact(s);
}

bool rk__ostore_due_at(const rk__ostore *s, int64_t w, int64_t ttl)
{
    const rk__oa *r;
    if (s->lo >= s->n)
        return false;
    r = &s->v[s->lo];               /* live: removed ones are passed */
    return r->ts <= INT64_MAX - ttl && r->ts + ttl < w;
}

int rk__ostore_pop_due(rk__ostore *s, int64_t now, int64_t ttl, rk__oa *out)
{
    if (!rk__ostore_due_at(s, now, ttl))
        return 0;
    *out = s->v[s->lo];
    rk__ostore_remove(s, s->lo);
    return 1;
}

size_t rk__ostore_bytes(const rk__ostore *s)
{
    return (size_t)s->cap * sizeof(*s->v);
}

/* ---- checkpoint ---------------------------------------------------- */

void rk__ostore_snapshot(const rk__ostore *s, rk_buf *out,
                         const char *(*det_name)(uint32_t det, void *ud), void *ud)
{
    uint32_t maxdet = 0, i;

    for (i = s->lo; i < s->n; i++)
        if (!(s->v[i].flags & OA_REMOVED) && s->v[i].det + 1u > maxdet)
            maxdet = s->v[i].det + 1u;
    rk_buf_put_u32(out, OSTORE_SNAP_VERSION);
    rk_buf_put_u32(out, maxdet);
    for (i = 0; i < maxdet; i++)
        rk_buf_put_str(out, det_name(i, ud));
    rk_buf_put_u32(out, s->nrules);
    for (i = 0; i < s->nrules; i++)
        rk_buf_put_str(out, s->rules[i]);
    rk_buf_put_u64(out, (uint64_t)rk__ostore_count(s));
    if (rk_buf_reserve(out, rk__ostore_count(s) * OSTORE_REC_BYTES) != 0)
        return;
    for (i = s->lo; i < s->n; i++) {
        const rk__oa *r = &s->v[i];
        if (r->flags & OA_REMOVED)
            continue;
        rk_buf_put_bytes(out, r->id, sizeof(r->id));
        rk_buf_put_i64(out, r->ts);
        rk_buf_put_u32(out, r->det);
        rk_buf_put_u32(out, r->rule);
    }
}

/* The names table of both versions into map (index -> detector or -1). */
static int *read_names(rk_rd *rd, uint32_t *nnames,
                       int (*det_index)(const char *name, void *ud), void *ud)
{
    uint32_t i;
    int *map = NULL;
    *nnames = rk_rd_u32(rd);
    if (rd->err || *nnames > 4096 ||
        (*nnames > 0 && (map = calloc(*nnames, sizeof(*map))) == NULL)) {
        rd->err = 1;
        return NULL;
    }
    for (i = 0; i < *nnames && !rd->err; i++) {
        char *name = rk_rd_str(rd, 256);
        map[i] = name != NULL ? det_index(name, ud) : -1;
        free(name);
    }
    return map;
}

/* Append a restored record (sorted at the end: rk__ostore_restore). */
static int put_raw(rk__ostore *s, const unsigned char id[16], int64_t ts, uint32_t det,
                   uint32_t rule)
{
    rk__oa *r;
    if (s->n == s->cap) {
        uint64_t ncap = s->cap < 64 ? 64 : (uint64_t)s->cap + s->cap / 16;
        rk__oa *nv;
        if (ncap > UINT32_MAX - 1 || (nv = realloc(s->v, (size_t)ncap * sizeof(*nv))) == NULL)
            return -1;
        s->v = nv;
        s->cap = (uint32_t)ncap;
    }
    r = &s->v[s->n++];
    memcpy(r->id, id, sizeof(r->id));
    r->ts = ts;
    r->det = (uint16_t)det;
    r->rule = (uint16_t)rule;
    r->flags = 0;
    return 0;
}

static int oa_cmp(const void *a, const void *b)
{
    const rk__oa *x = a, *y = b;
    return cmp_key(x, y->ts, y->det, y->id);
}

static void restore_v1(rk_rd *rd, rk__ostore *tmp, const int *map, uint32_t nnames,
                       int64_t ttl, size_t *dropped)
{
    uint64_t n = rk_rd_u64(rd), k;
    if (rd->err || n > (uint64_t)(rd->end - rd->p) / 28)
        rd->err = 1;
    for (k = 0; k < n && !rd->err; k++) {
        unsigned char id[16];
        int64_t deadline = rk_rd_ts(rd);
        uint32_t di = rk_rd_u32(rd);
        if (rk_rd_take(rd, sizeof(id)) != 0 || di >= nnames) {
            rd->err = 1;
            break;
        }
        memcpy(id, rd->p, sizeof(id));
        rd->p += sizeof(id);
        if (map[di] < 0) {
            (*dropped)++;
            continue;
        }
        /* the deadline was ts + open_ttl (a ts no event can have: corrupt) */
        if (deadline - ttl < -RK_TS_LIMIT ||
            put_raw(tmp, id, deadline - ttl, (uint32_t)map[di], RK__OSTORE_NO_RULE) != 0)
            rd->err = 1;
    }
}

static void restore_v2(rk_rd *rd, rk__ostore *tmp, const int *map, uint32_t nnames,
                       size_t *dropped)
{
    uint32_t nrules = rk_rd_u32(rd), i;
    uint64_t n, k;
    if (rd->err || nrules > OSTORE_MAX_RULES) {
        rd->err = 1;
        return;
    }
    for (i = 0; i < nrules && !rd->err; i++) {
        char *rule = rk_rd_str(rd, 256);
        if (rule == NULL || rk__ostore_rule(tmp, rule) != (int)i)
            rd->err = 1;            /* a repeated name too */
        free(rule);
    }
    n = rk_rd_u64(rd);
    if (rd->err || n > (uint64_t)(rd->end - rd->p) / OSTORE_REC_BYTES)
        rd->err = 1;
    for (k = 0; k < n && !rd->err; k++) {
        unsigned char id[16];
        int64_t ts;
        uint32_t di, rule;
        if (rk_rd_take(rd, sizeof(id)) != 0)
            break;
        memcpy(id, rd->p, sizeof(id));
        rd->p += sizeof(id);
        ts = rk_rd_ts(rd);
        di = rk_rd_u32(rd);
        rule = rk_rd_u32(rd);
        if (rd->err || di >= nnames || (rule >= nrules && rule != RK__OSTORE_NO_RULE)) {
            rd->err = 1;
            break;
        }
        if (map[di] < 0) {
            (*dropped)++;
            continue;
        }
        if (put_raw(tmp, id, ts, (uint32_t)map[di], rule) != 0)
            rd->err = 1;
    }
}

int rk__ostore_restore(rk__ostore *s, const void *data, size_t len,
                       int (*det_index)(const char *name, void *ud), void *ud,
                       int64_t ttl, size_t *dropped)
{
    rk_rd rd;
    uint32_t version, nnames, i, j;
    int *map;
    rk__ostore tmp;

    *dropped = 0;
    rk__ostore_init(&tmp);
    rk_rd_init(&rd, data, len);
    version = rk_rd_u32(&rd);
    if (rd.err || (version != OSTORE_SNAP_VERSION && version != OSTORE_SNAP_V1))
        return -1;
    map = read_names(&rd, &nnames, det_index, ud);
    if (!rd.err) {
        if (version == OSTORE_SNAP_V1)
            restore_v1(&rd, &tmp, map, nnames, ttl, dropped);
        else
            restore_v2(&rd, &tmp, map, nnames, dropped);
    }
    free(map);
    if (rd.err || rd.p != rd.end) {
        rk__ostore_free(&tmp);
        return -1;
    }
    /* Sorted by the new detector indices; one record per alert. */
    if (tmp.n > 1)
        qsort(tmp.v, tmp.n, sizeof(*tmp.v), oa_cmp);
    for (i = j = 0; i < tmp.n; i++)
        if (j == 0 || oa_cmp(&tmp.v[j - 1], &tmp.v[i]) != 0)
            tmp.v[j++] = tmp.v[i];
    tmp.n = j;
    rk__ostore_free(s);
    *s = tmp;
    return 0;
}
