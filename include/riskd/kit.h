/* riskd/kit.h - header-only helpers for detectors (built-in and plugins).
 *
 * Nothing here is required by the ABI; it exists so that every detector
 * validates its configuration, encodes its snapshot and keeps its per-key
 * state the same way, and so that a plugin gets the same tools without
 * linking against the daemon. Everything is static inline.
 *
 *   Configuration  rk_kit_cfg_*: typed getters that apply a default, check a
 *                  range and write "<key>: expected ..." errors; a check for
 *                  unknown keys; rk_kit_parse_duration for "90s"/"10m"/...
 *   Snapshots      rk_buf_put_* / rk_rd_*: little-endian, length-
 *                  prefixed strings; a reader that latches an error flag
 *                  instead of reading past the end.
 *   rk_map         a chained hash map from string keys to void * (16 bytes
 *                  + the key per entry).
 *   rk_win         a FIFO of (ts, entry, flag) items for sliding windows.
 *   rk_heap        a min-heap of (time, record) that tracks each record's
 *                  position: an expiry queue, so that on_watermark costs
 *                  what expires, not what is stored.
 *   rk_winset      rk_win windows keyed by a string, expired through an
 *                  rk_heap (what bad_rating and complaint_cluster keep).
 */
#ifndef RISKD_KIT_H
#define RISKD_KIT_H

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "riskd/detector.h"

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

/* ===================================================================
 * Snapshot encoding
 * =================================================================== */

static inline int rk_buf_reserve(rk_buf *b, size_t extra)
{
    size_t need, cap;
    unsigned char *p;
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX - b->len) { b->oom = 1; return -1; }
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = (unsigned char *)realloc(b->data, cap);
    if (p == NULL) { b->oom = 1; return -1; }
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline void rk_buf_put_bytes(rk_buf *b, const void *p, size_t n)
{
    if (n == 0 || (b->len + n > b->cap && rk_buf_reserve(b, n) != 0))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RK_KIT_LE 1
#else
#define RK_KIT_LE 0
#endif

static inline void rk_buf_put_u64(rk_buf *b, uint64_t v)
{
    unsigned char x[8];
    int i;
    if (RK_KIT_LE && b->len + 8 <= b->cap) {   /* the common case: one store */
        memcpy(b->data + b->len, &v, 8);
        b->len += 8;
        return;
    }
    for (i = 0; i < 8; i++) x[i] = (unsigned char)(v >> (8 * i));
    rk_buf_put_bytes(b, x, 8);
}

static inline void rk_buf_put_u32(rk_buf *b, uint32_t v)
{
    unsigned char x[4];
    int i;
    if (RK_KIT_LE && b->len + 4 <= b->cap) {
        memcpy(b->data + b->len, &v, 4);
        b->len += 4;
        return;
    }
    for (i = 0; i < 4; i++) x[i] = (unsigned char)(v >> (8 * i));
    rk_buf_put_bytes(b, x, 4);
}

static inline void rk_buf_put_i64(rk_buf *b, int64_t v) { rk_buf_put_u64(b, (uint64_t)v); }

static inline void rk_buf_put_double(rk_buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    rk_buf_put_u64(b, v);
}

/* A string as u32 length + bytes; NULL is encoded as length 0xffffffff. */
static inline void rk_buf_put_str(rk_buf *b, const char *s)
{
    size_t n;
    if (s == NULL) { rk_buf_put_u32(b, UINT32_MAX); return; }
    n = strlen(s);
    if (n >= UINT32_MAX) { b->oom = 1; return; }
    rk_buf_put_u32(b, (uint32_t)n);
    rk_buf_put_bytes(b, s, n);
}

static inline void rk_buf_put_ref(rk_buf *b, rk_entry_ref r)
{
    rk_buf_put_u64(b, r.ms);
    rk_buf_put_u32(b, r.seq);
    rk_buf_put_u32(b, r.stream);
}

static inline void rk_buf_free(rk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* Reader: every getter returns 0 and sets r->err once the data runs out;
 * check r->err once at the end (or in loops, to stop early). */
typedef struct rk_rd {
    const unsigned char *p;
    const unsigned char *end;
    int err;
} rk_rd;

static inline void rk_rd_init(rk_rd *r, const void *data, size_t len)
{
    r->p = (const unsigned char *)data;
    r->end = r->p + len;
    r->err = 0;
}

static inline int rk_rd_take(rk_rd *r, size_t n)
{
    if (r->err || (size_t)(r->end - r->p) < n) { r->err = 1; return -1; }
    return 0;
}

static inline uint64_t rk_rd_u64(rk_rd *r)
{
    uint64_t v = 0;
    int i;
    if (rk_rd_take(r, 8) != 0) return 0;
    for (i = 0; i < 8; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static inline uint32_t rk_rd_u32(rk_rd *r)
{
    uint32_t v = 0;
    int i;
    if (rk_rd_take(r, 4) != 0) return 0;
    for (i = 0; i < 4; i++) v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    return v;
}

static inline int64_t rk_rd_i64(rk_rd *r) { return (int64_t)rk_rd_u64(r); }

static inline double rk_rd_double(rk_rd *r)
{
    uint64_t v = rk_rd_u64(r);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

/* Returns a malloc'ed NUL-terminated copy (caller frees), or NULL for an
 * encoded NULL or on error (then r->err is set). Strings longer than
 * `maxlen` are an error. */
static inline char *rk_rd_str(rk_rd *r, size_t maxlen)
{
    uint32_t n = rk_rd_u32(r);
    char *s;
    if (r->err || n == UINT32_MAX)
        return NULL;
    if (n > maxlen || rk_rd_take(r, n) != 0) { r->err = 1; return NULL; }
    s = (char *)malloc((size_t)n + 1);
    if (s == NULL) { r->err = 1; return NULL; }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    return s;
}

static inline rk_entry_ref rk_rd_ref(rk_rd *r)
{
    rk_entry_ref x;
    x.ms = rk_rd_u64(r);
    x.seq = rk_rd_u32(r);
    x.stream = rk_rd_u32(r);
    if (x.stream >= RK_STREAM_COUNT) r->err = 1;
    return x;
}

/* ===================================================================
 * Hashing
 * =================================================================== */

/* 64-bit FNV-1a over a buffer, continuing from h (start with
 * RK_FNV_OFFSET). */
#define RK_FNV_OFFSET UINT64_C(0xcbf29ce484222325)
static inline uint64_t rk_kit_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static inline uint64_t rk_kit_hash_str(const char *s)
{
    uint64_t h = rk_kit_fnv1a(RK_FNV_OFFSET, s, strlen(s));
    /* Final avalanche (from MurmurHash3's fmix64) so low bits mix well. */
    h ^= h >> 33; h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33; h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* ===================================================================
 * rk_map: string -> void * hash map (separate chaining, power-of-two
 * buckets). Keys are copied into the entry.
 *
 * Memory: an entry is one allocation of two pointers and the key (no
 * cached hash: a chain is compared with strcmp, and growing rehashes the
 * keys), and the table doubles when it holds two entries per bucket, so a
 * map costs 16 bytes + the key + 4 to 8 bytes of bucket per entry.
 * =================================================================== */

typedef struct rk_map_entry {
    struct rk_map_entry *next;
    void *value;
    char key[];                     /* NUL-terminated copy */
} rk_map_entry;

typedef struct rk_map {
    rk_map_entry **buckets;
    size_t nbuckets;                /* 0 or a power of two */
    size_t count;
} rk_map;

#define RK_MAP_LOAD 2               /* entries per bucket before growing */

static inline void rk_map_init(rk_map *m) { memset(m, 0, sizeof(*m)); }

static inline rk_map_entry *rk_map_find(const rk_map *m, const char *key)
{
    rk_map_entry *e;
    if (m->nbuckets == 0)
        return NULL;
    for (e = m->buckets[rk_kit_hash_str(key) & (m->nbuckets - 1)]; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static inline void *rk_map_get(const rk_map *m, const char *key)
{
    rk_map_entry *e = rk_map_find(m, key);
    return e ? e->value : NULL;
}

static inline int rk_map_grow(rk_map *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16, i;
    rk_map_entry **b;
    if (n > SIZE_MAX / sizeof(*b))
        return -1;
    b = (rk_map_entry **)calloc(n, sizeof(*b));
    if (b == NULL)
        return -1;
    for (i = 0; i < m->nbuckets; i++) {
        rk_map_entry *e = m->buckets[i], *next;
        for (; e != NULL; e = next) {
            size_t k = (size_t)(rk_kit_hash_str(e->key) & (n - 1));
            next = e->next;
            e->next = b[k];
            b[k] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

/* Insert key -> value. If the key exists its value is replaced and the old
 * one stored in *old (when old != NULL). Returns the entry, or NULL when out
 * of memory (map unchanged). A failed grow is not an error while the
 * table has buckets: chains just get longer. */
static inline rk_map_entry *rk_map_put(rk_map *m, const char *key, void *value,
                                       void **old)
{
    rk_map_entry *e = rk_map_find(m, key);
    size_t klen, k;
    if (old) *old = NULL;
    if (e != NULL) {
        if (old) *old = e->value;
        e->value = value;
        return e;
    }
    if (m->count >= m->nbuckets * RK_MAP_LOAD && rk_map_grow(m) != 0 &&
        m->nbuckets == 0)
        return NULL;
    klen = strlen(key);
    e = (rk_map_entry *)malloc(sizeof(*e) + klen + 1);
    if (e == NULL)
        return NULL;
    e->value = value;
    memcpy(e->key, key, klen + 1);
    k = (size_t)(rk_kit_hash_str(key) & (m->nbuckets - 1));
    e->next = m->buckets[k];
    m->buckets[k] = e;
    m->count++;
    return e;
}

/* Remove key; returns its value (NULL when absent). */
static inline void *rk_map_del(rk_map *m, const char *key)
{
    rk_map_entry **pp, *e;
    void *v;
    if (m->nbuckets == 0)
        return NULL;
    for (pp = &m->buckets[rk_kit_hash_str(key) & (m->nbuckets - 1)]; (e = *pp) != NULL;
         pp = &e->next) {
        if (strcmp(e->key, key) == 0) {
            *pp = e->next;
            v = e->value;
            free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

/* Iterate: for (it = rk_map_first(m, &b); it; it = rk_map_next(m, &b, it)).
 * Deleting the current entry is allowed if the next one was fetched first. */
static inline rk_map_entry *rk_map_scan_from(const rk_map *m, size_t *b)
{
    for (; *b < m->nbuckets; (*b)++)
        if (m->buckets[*b] != NULL)
            return m->buckets[*b];
    return NULL;
}

static inline rk_map_entry *rk_map_first(const rk_map *m, size_t *b)
{
    *b = 0;
    return rk_map_scan_from(m, b);
}

static inline rk_map_entry *rk_map_next(const rk_map *m, size_t *b,
                                        rk_map_entry *e)
{
    if (e->next != NULL)
        return e->next;
    (*b)++;
    return rk_map_scan_from(m, b);
}

/* Free every entry, calling free_value(value) on each when given. */
static inline void rk_map_clear(rk_map *m, void (*free_value)(void *))
{
    size_t i;
    for (i = 0; i < m->nbuckets; i++) {
        rk_map_entry *e = m->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            if (free_value) free_value(e->value);
            free(e);
        }
    }
    free(m->buckets);
    rk_map_init(m);
}

/* ===================================================================
 * rk_win: a FIFO ring of items for sliding windows on event time.
 * Items are appended roughly in ts order; rk_win_expire drops items from
 * the head while they are older than the window. An item that arrives out
 * of order is inserted at its sorted place, so the ring stays sorted by ts.
 * =================================================================== */

typedef struct rk_win_item {
    int64_t ts;
    rk_entry_ref ref;
    uint32_t flag;                  /* detector-defined (bad rating, ...) */
    uint32_t pad;
} rk_win_item;

typedef struct rk_win {
    rk_win_item *items;
    uint32_t head;                  /* index of the oldest item */
    uint32_t len;
    uint32_t cap;                   /* 0 or a power of two */
} rk_win;

static inline rk_win_item *rk_win_at(const rk_win *w, uint32_t i)
{
    return &w->items[(w->head + i) & (w->cap - 1)];
}

static inline int rk_win_push(rk_win *w, int64_t ts, rk_entry_ref ref,
                              uint32_t flag)
{
    uint32_t i;
    if (w->len == w->cap) {
        uint32_t ncap = w->cap ? w->cap * 2 : 4, j;
        rk_win_item *n;
        if (ncap == 0 || ncap > (UINT32_C(1) << 30))
            return -1;
        n = (rk_win_item *)malloc((size_t)ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        for (j = 0; j < w->len; j++)
            n[j] = *rk_win_at(w, j);
        free(w->items);
        w->items = n;
        w->head = 0;
        w->cap = ncap;
    }
    /* Find the sorted position from the tail (usually the tail itself). */
    i = w->len;
    while (i > 0 && rk_win_at(w, i - 1)->ts > ts) {
        *rk_win_at(w, i) = *rk_win_at(w, i - 1);
        i--;
    }
    rk_win_at(w, i)->ts = ts;
    rk_win_at(w, i)->ref = ref;
    rk_win_at(w, i)->flag = flag;
    rk_win_at(w, i)->pad = 0;
    w->len++;
    return 0;
}

/* Drop items with ts < cutoff. Returns how many were dropped; *flagged (when
 * not NULL) is increased by how many of them had a non-zero flag. Shrinks
 * the ring when it becomes mostly empty. */
static inline uint32_t rk_win_expire(rk_win *w, int64_t cutoff, uint32_t *flagged)
{
    uint32_t n = 0;
    while (w->len > 0 && rk_win_at(w, 0)->ts < cutoff) {
        if (flagged && rk_win_at(w, 0)->flag) (*flagged)++;
        w->head = (w->head + 1) & (w->cap - 1);
        w->len--;
        n++;
    }
    if (w->len == 0 && w->cap > 0) {
        free(w->items);
        w->items = NULL;
        w->head = w->cap = 0;
    }
    return n;
}

static inline void rk_win_free(rk_win *w)
{
    free(w->items);
    memset(w, 0, sizeof(*w));
}

/* Copy the refs of the last `max` items whose flag matches (flag_mask 0 =
 * every item) into out, oldest first; returns how many. */
static inline size_t rk_win_evidence(const rk_win *w, uint32_t flag_mask,
                                     rk_entry_ref *out, size_t max)
{
    size_t n = 0, k;
    uint32_t i = w->len;
    while (i > 0 && n < max) {
        const rk_win_item *it = rk_win_at(w, --i);
        if (flag_mask == 0 || (it->flag & flag_mask))
            out[n++] = it->ref;
    }
    for (k = 0; k < n / 2; k++) {
        rk_entry_ref t = out[k];
        out[k] = out[n - 1 - k];
        out[n - 1 - k] = t;
    }
    return n;
}

/* ===================================================================
 * rk_heap: a binary min-heap of (key, record) items that keeps, inside
 * each record, the record's current index in the heap. So a record can be
 * re-keyed or removed in O(log n) wherever the detector is, and a record
 * is in the heap at most once (no stale items pointing at freed records).
 *
 * Every record of one heap has a uint32_t at byte offset `pos_off`
 * (offsetof(struct, field), given to rk_heap_init); the heap keeps it equal
 * to the record's index, or RK_HEAP_NONE when the record is not in the heap.
 * A new record must set that field to RK_HEAP_NONE.
 *
 * Used as an expiry queue: key = the earliest time (ms) the record may
 * expire; on_watermark(now) looks at rk_heap_top() while its key < now,
 * re-checks the record and either frees it (rk_heap_remove first) or
 * re-keys it (rk_heap_update) with its new expiry. With keys that never
 * exceed the record's real expiry, state is freed exactly when it expires
 * and a batch costs O((expired + re-keyed) log n).
 * =================================================================== */

#define RK_HEAP_NONE UINT32_MAX

typedef struct rk_heap_item {
    int64_t key;
    void *rec;
} rk_heap_item;

typedef struct rk_heap {
    rk_heap_item *items;
    uint32_t n;
    uint32_t cap;
    size_t pos_off;                 /* offset of the uint32_t index in a record */
} rk_heap;

static inline void rk_heap_init(rk_heap *h, size_t pos_off)
{
    memset(h, 0, sizeof(*h));
    h->pos_off = pos_off;
}

/* The index field of rec. */
static inline uint32_t *rk_heap_pos(const rk_heap *h, void *rec)
{
    return (uint32_t *)(void *)((char *)rec + h->pos_off);
}

static inline void rk_heap_place_(rk_heap *h, uint32_t i, rk_heap_item it)
{
    h->items[i] = it;
    *rk_heap_pos(h, it.rec) = i;
}

static inline void rk_heap_up_(rk_heap *h, uint32_t i)
{
    rk_heap_item it = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->items[parent].key <= it.key)
            break;
        rk_heap_place_(h, i, h->items[parent]);
        i = parent;
    }
    rk_heap_place_(h, i, it);
}

static inline void rk_heap_down_(rk_heap *h, uint32_t i)
{
    rk_heap_item it = h->items[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->items[c + 1].key < h->items[c].key)
            c++;
        if (it.key <= h->items[c].key)
            break;
        rk_heap_place_(h, i, h->items[c]);
        i = c;
    }
    rk_heap_place_(h, i, it);
}

/* Add rec (not in the heap: its index field is RK_HEAP_NONE) with key.
 * Returns 0, or -1 when out of memory (heap unchanged). */
static inline int rk_heap_push(rk_heap *h, int64_t key, void *rec)
{
    rk_heap_item it;
    if (h->n == h->cap) {
        uint32_t ncap = h->cap ? h->cap * 2 : 16;
        rk_heap_item *p;
        if (h->cap >= (UINT32_C(1) << 30))
            return -1;
        p = (rk_heap_item *)realloc(h->items, (size_t)ncap * sizeof(*p));
        if (p == NULL)
            return -1;
        h->items = p;
        h->cap = ncap;
    }
    it.key = key;
    it.rec = rec;
    h->items[h->n] = it;
    h->n++;
    rk_heap_up_(h, h->n - 1);
    return 0;
}

/* The item with the smallest key, or NULL when the heap is empty. */
static inline const rk_heap_item *rk_heap_top(const rk_heap *h)
{
    return h->n > 0 ? &h->items[0] : NULL;
}

/* Remove rec; a record not in the heap (index RK_HEAP_NONE) is left
 * alone. Its index field becomes RK_HEAP_NONE. */
static inline void rk_heap_remove(rk_heap *h, void *rec)
{
    uint32_t i = *rk_heap_pos(h, rec);
    if (i == RK_HEAP_NONE || i >= h->n || h->items[i].rec != rec)
        return;
    *rk_heap_pos(h, rec) = RK_HEAP_NONE;
    h->n--;
    if (i < h->n) {
        int64_t old = h->items[i].key;
        rk_heap_place_(h, i, h->items[h->n]);
        if (h->items[i].key < old) rk_heap_up_(h, i);
        else rk_heap_down_(h, i);
    }
    if (h->n == 0) {
        free(h->items);
        h->items = NULL;
        h->cap = 0;
    }
}

/* Give rec (which must be in the heap) a new key. */
static inline void rk_heap_update(rk_heap *h, void *rec, int64_t key)
{
    uint32_t i = *rk_heap_pos(h, rec);
    int64_t old;
    if (i == RK_HEAP_NONE || i >= h->n || h->items[i].rec != rec)
        return;
    old = h->items[i].key;
    h->items[i].key = key;
    if (key < old) rk_heap_up_(h, i);
    else rk_heap_down_(h, i);
}

/* Restore the heap order after the caller changed keys in items[0..n)
 * directly (e.g. every expiry after a new window length). O(n). */
static inline void rk_heap_heapify(rk_heap *h)
{
    uint32_t i = h->n / 2;
    while (i > 0)
        rk_heap_down_(h, --i);
}

/* Free the item array; records are not touched (their index fields are
 * left as they are). */
static inline void rk_heap_free(rk_heap *h)
{
    free(h->items);
    h->items = NULL;
    h->n = h->cap = 0;
}

/* ===================================================================
 * rk_winset: sliding windows keyed by a string (a unit, an officer, ...),
 * each key in an expiry heap by "newest item + window", so that expiring
 * touches only the keys that are due and a key is freed as soon as its
 * window is empty. Each key also counts its flagged items (nflag), kept in
 * step when items leave the window.
 * =================================================================== */

typedef struct rk_winkey {
    rk_win win;
    uint32_t nflag;                 /* items with a non-zero flag */
    uint32_t hpos;                  /* index in the expiry heap */
    rk_map_entry *ent;              /* its map entry (holds the id) */
} rk_winkey;

typedef struct rk_winset {
    rk_map map;                     /* id -> rk_winkey * */
    rk_heap heap;                   /* every key, by newest ts + window */
} rk_winset;

/* now - w, saturated at INT64_MIN: items older than this left the window. */
static inline int64_t rk_kit_cutoff(int64_t now, int64_t w)
{
    return now < INT64_MIN + w ? INT64_MIN : now - w;
}

/* Evidence for an alert on window w: the refs of its most recent items
 * whose flag matches flag_mask (0 = every item), oldest first, without the
 * trigger, which is always appended last (the alert id derives from it).
 * out holds RK_MAX_EVIDENCE refs; returns how many were written. */
static inline size_t rk_kit_evidence(const rk_win *w, uint32_t flag_mask,
                                     rk_entry_ref trigger, rk_entry_ref *out)
{
    size_t n = 0, k;
    uint32_t i = w->len;

    while (i > 0 && n < RK_MAX_EVIDENCE - 1) {
        const rk_win_item *it = rk_win_at(w, --i);
        if (flag_mask != 0 && !(it->flag & flag_mask))
            continue;
        if (it->ref.ms == trigger.ms && it->ref.seq == trigger.seq &&
            it->ref.stream == trigger.stream)
            continue;
        out[n++] = it->ref;
    }
    for (k = 0; k < n / 2; k++) {
        rk_entry_ref t = out[k];
        out[k] = out[n - 1 - k];
        out[n - 1 - k] = t;
    }
    out[n++] = trigger;
    return n;
}

static inline void rk_winkey_free_(void *p)
{
    rk_winkey *k = (rk_winkey *)p;
    if (k == NULL)
        return;
    rk_win_free(&k->win);
    free(k);
}

static inline void rk_winset_init(rk_winset *set)
{
    rk_map_init(&set->map);
    rk_heap_init(&set->heap, offsetof(rk_winkey, hpos));
}

/* Free every key; the set is empty and usable afterwards. */
static inline void rk_winset_clear(rk_winset *set)
{
    rk_map_clear(&set->map, rk_winkey_free_);
    rk_heap_free(&set->heap);
    rk_winset_init(set);
}

static inline const char *rk_winkey_id(const rk_winkey *k)
{
    return k->ent->key;
}

/* Drop items older than cutoff from k, keeping nflag in step. */
static inline void rk_winkey_trim(rk_winkey *k, int64_t cutoff)
{
    uint32_t dropped = 0;
    rk_win_expire(&k->win, cutoff, &dropped);
    k->nflag -= dropped;
}

/* When k (non-empty) leaves window w: its newest item's ts + w, saturated. */
static inline int64_t rk_winkey_expiry(const rk_winkey *k, int64_t w)
{
    int64_t t = rk_win_at(&k->win, k->win.len - 1)->ts;
    return t > INT64_MAX - w ? INT64_MAX : t + w;
}

/* Remove k from the set (heap and map) and free it. */
static inline void rk_winset_drop(rk_winset *set, rk_winkey *k)
{
    rk_heap_remove(&set->heap, k);
    rk_winkey_free_(rk_map_del(&set->map, k->ent->key));
}

/* The key `id`, created (empty, not yet in the heap) when absent. Returns
 * NULL when out of memory. */
static inline rk_winkey *rk_winset_get(rk_winset *set, const char *id)
{
    rk_winkey *k = (rk_winkey *)rk_map_get(&set->map, id);
    if (k != NULL)
        return k;
    k = (rk_winkey *)calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->hpos = RK_HEAP_NONE;
    k->ent = rk_map_put(&set->map, id, k, NULL);
    if (k->ent == NULL) {
        free(k);
        return NULL;
    }
    return k;
}

/* After pushing an item at k (pushed: whether the push succeeded; window
 * w): a key new to the heap joins it; a key already there keeps its heap
 * time, which stays <= its expiry and is corrected when popped. On failure
 * (out of memory) a key with an empty window or no heap place is dropped;
 * returns 0 or -1. */
static inline int rk_winset_track(rk_winset *set, rk_winkey *k, int pushed, int64_t w)
{
    if (pushed && k->hpos != RK_HEAP_NONE)
        return 0;
    if (pushed && rk_heap_push(&set->heap, rk_winkey_expiry(k, w), k) == 0)
        return 0;
    if (k->win.len == 0 || k->hpos == RK_HEAP_NONE)
        rk_winset_drop(set, k);
    return -1;
}

/* Pop the keys whose heap time is < now: free those whose window (length
 * w) is empty at now, re-time the others. */
static inline void rk_winset_expire(rk_winset *set, int64_t now, int64_t w)
{
    const rk_heap_item *top;
    while ((top = rk_heap_top(&set->heap)) != NULL && top->key < now) {
        rk_winkey *k = (rk_winkey *)top->rec;
        rk_winkey_trim(k, rk_kit_cutoff(now, w));
        if (k->win.len == 0)
            rk_winset_drop(set, k);
        else
            rk_heap_update(&set->heap, k, rk_winkey_expiry(k, w));
    }
}

/* Re-time every key for window w (after the window changed). */
static inline void rk_winset_rekey(rk_winset *set, int64_t w)
{
    uint32_t i;
    for (i = 0; i < set->heap.n; i++)
        set->heap.items[i].key = rk_winkey_expiry((const rk_winkey *)set->heap.items[i].rec, w);
    rk_heap_heapify(&set->heap);
}

#ifdef __cplusplus
}
#endif
#endif /* RISKD_KIT_H */
