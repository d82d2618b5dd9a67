/* riskd/map.h - hash tables keyed by strings (plugin kit).
 *
 *   rk_kit_fnv1a, rk_kit_hash_str
 *                      64-bit string hashes (FNV-1a, with a final avalanche
 *                      for rk_kit_hash_str so that low bits mix well).
 *   rk_map             string -> void * map: the map allocates an entry per
 *                      key and copies the key. The easy choice.
 *   rk_itab            an intrusive table: the records are the entries (they
 *                      hold the chain link, and the keys in whatever form),
 *                      the table holds only buckets. For state kept per
 *                      record by the million, where rk_map's entry and key
 *                      copy would cost 16 bytes + the key per record more.
 *
 * Header-only (static inline).
 */
#ifndef RISKD_MAP_H
#define RISKD_MAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

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

/* A final avalanche (MurmurHash3's fmix64) so that the low bits, which
 * pick a bucket, depend on every input byte. */
static inline uint64_t rk_kit_hash_mix(uint64_t h)
{
    h ^= h >> 33; h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33; h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* The hash of a NUL-terminated string, for bucket tables (rk_map,
 * rk_itab). To hash a key of several strings, chain rk_kit_fnv1a over
 * them (with their NULs as separators) and end with rk_kit_hash_mix. */
static inline uint64_t rk_kit_hash_str(const char *s)
{
    return rk_kit_hash_mix(rk_kit_fnv1a(RK_FNV_OFFSET, s, strlen(s)));
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
 * rk_itab: an intrusive chained hash table (power-of-two buckets). The
 * records are the entries: each holds a `void *` link to the next record
 * of its bucket (and, for O(1) removal, optionally a `void *` link to the
 * previous one), at byte offsets given to rk_itab_init. The table holds
 * only the bucket array, so it costs 4 to 8 bytes per record (plus the
 * links in the record) where an rk_map costs an allocation of 16 bytes +
 * the key. The keys stay in the records in whatever form they have; the
 * caller hashes them (rk_kit_hash_str or its own hash) and compares them
 * while walking a bucket:
 *
 *     for (r = rk_itab_first(t, h); r != NULL; r = rk_itab_next(t, r))
 *         if (my_key_equals(r, key)) return r;
 *
 * A record is in one bucket at a time, but can be in several tables
 * through several links (one record, looked up by two keys). The table
 * grows (never shrinks) when it holds two records per bucket; growing
 * calls hash(record) for each record and keeps the order of records
 * within each bucket, so records placed next to each other stay so
 * (rk_itab_insert_after groups records of one key).
 * =================================================================== */

#define RK_ITAB_LOAD 2              /* records per bucket before growing */
#define RK_ITAB_NOPREV SIZE_MAX     /* prev_off of a singly linked table */

typedef struct rk_itab {
    void **b;                       /* bucket heads */
    size_t nb;                      /* 0 or a power of two */
    size_t count;                   /* records in the table */
    size_t next_off;                /* offset of the record's next link */
    size_t prev_off;                /* offset of its prev link, or RK_ITAB_NOPREV */
    uint64_t (*hash)(const void *rec);  /* the hash the record was put under */
} rk_itab;

/* An empty table (no allocation yet) of records with the next link at
 * next_off and the prev link at prev_off (or RK_ITAB_NOPREV). */
static inline void rk_itab_init(rk_itab *t, size_t next_off, size_t prev_off,
                                uint64_t (*hash)(const void *rec))
{
    memset(t, 0, sizeof(*t));
    t->next_off = next_off;
    t->prev_off = prev_off;
    t->hash = hash;
}

static inline void **rk_itab_link_(void *rec, size_t off)
{
    return (void **)(void *)((char *)rec + off);
}

/* The first record of the bucket of hash h, or NULL. */
static inline void *rk_itab_first(const rk_itab *t, uint64_t h)
{
    return t->nb ? t->b[h & (t->nb - 1)] : NULL;
}

/* The record after rec in its bucket, or NULL. */
static inline void *rk_itab_next(const rk_itab *t, const void *rec)
{
    return *rk_itab_link_((void *)(uintptr_t)rec, t->next_off);
}

/* The record before rec in its bucket, or NULL (doubly linked tables only). */
static inline void *rk_itab_prev(const rk_itab *t, const void *rec)
{
    return *rk_itab_link_((void *)(uintptr_t)rec, t->prev_off);
}

static inline void rk_itab_set_(const rk_itab *t, void *rec, void *next, void *prev)
{
    *rk_itab_link_(rec, t->next_off) = next;
    if (t->prev_off != RK_ITAB_NOPREV)
        *rk_itab_link_(rec, t->prev_off) = prev;
}

/* Double the buckets (16 for none), keeping each bucket's order. Returns
 * 0, or -1 when out of memory (table unchanged). */
static inline int rk_itab_grow(rk_itab *t)
{
    size_t n = t->nb ? t->nb * 2 : 16, i;
    void **b;
    if (n > SIZE_MAX / sizeof(*b))
        return -1;
    b = (void **)calloc(n, sizeof(*b));
    if (b == NULL)
        return -1;
    for (i = 0; i < t->nb; i++) {
        void *r = t->b[i], *next, *tail[2] = {NULL, NULL};
        for (; r != NULL; r = next) {
            size_t k = (size_t)(t->hash(r) & (n - 1));
            int hi = k != i;
            next = rk_itab_next(t, r);
            rk_itab_set_(t, r, NULL, tail[hi]);
            if (tail[hi] != NULL) *rk_itab_link_(tail[hi], t->next_off) = r;
            else b[k] = r;
            tail[hi] = r;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = n;
    return 0;
}

/* Make room for one more record: grow when the table is full. Returns 0,
 * or -1 when out of memory and the table has no bucket at all (a failed
 * grow is not an error otherwise: chains just get longer). Call it before
 * rk_itab_insert, which cannot fail. */
static inline int rk_itab_reserve(rk_itab *t)
{
    if (t->count >= t->nb * RK_ITAB_LOAD && rk_itab_grow(t) != 0 && t->nb == 0)
        return -1;
    return 0;
}

/* Put rec (in no bucket of t) under hash h: right after `after` when
 * given (a record of the same bucket: keeps records of one key together),
 * else at the head of its bucket. rk_itab_reserve must have succeeded. */
static inline void rk_itab_insert(rk_itab *t, void *rec, uint64_t h, void *after)
{
    if (after != NULL) {
        void *next = rk_itab_next(t, after);
        rk_itab_set_(t, rec, next, after);
        if (next != NULL && t->prev_off != RK_ITAB_NOPREV)
            *rk_itab_link_(next, t->prev_off) = rec;
        *rk_itab_link_(after, t->next_off) = rec;
    } else {
        void **head = &t->b[h & (t->nb - 1)];
        rk_itab_set_(t, rec, *head, NULL);
        if (*head != NULL && t->prev_off != RK_ITAB_NOPREV)
            *rk_itab_link_(*head, t->prev_off) = rec;
        *head = rec;
    }
    t->count++;
}

/* Take rec (in the table, under hash h) out: O(1) in a doubly linked
 * table, a walk of its bucket otherwise. Its links become NULL. */
static inline void rk_itab_remove(rk_itab *t, void *rec, uint64_t h)
{
    void **pp = &t->b[h & (t->nb - 1)];
    void *next = rk_itab_next(t, rec);
    if (t->prev_off != RK_ITAB_NOPREV) {
        void *prev = rk_itab_prev(t, rec);
        if (next != NULL) *rk_itab_link_(next, t->prev_off) = prev;
        if (prev != NULL) pp = rk_itab_link_(prev, t->next_off);
    } else {
        while (*pp != NULL && *pp != rec)
            pp = rk_itab_link_(*pp, t->next_off);
        if (*pp == NULL)
            return;                 /* not in the table */
    }
    *pp = next;
    rk_itab_set_(t, rec, NULL, NULL);
    t->count--;
}

/* Visit every record: for (i = 0; i < t->nb; i++) for (r = t->b[i]; r;
 * r = rk_itab_next(t, r)). */

/* Free the bucket array; the records are not touched (the caller owns
 * them and frees them its own way). The table is empty afterwards. */
static inline void rk_itab_free(rk_itab *t)
{
    free(t->b);
    t->b = NULL;
    t->nb = t->count = 0;
}

#ifdef __cplusplus
}
#endif
#endif /* RISKD_MAP_H */
