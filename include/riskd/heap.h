/* riskd/heap.h - rk_heap, a min-heap of (time, record) (plugin kit).
 *
 * An expiry queue: so that on_watermark costs what expires, not what is
 * stored. See the comment above rk_heap_item for the two ways to use it
 * (records that know their heap position, or a lazy queue). Header-only
 * (static inline).
 */
#ifndef RISKD_HEAP_H
#define RISKD_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

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
 *
 * A lazy queue: rk_heap_init(h, RK_HEAP_NOPOS) keeps no index in the
 * records (they need no field for it; 16 bytes per item in all). Then
 * only the top can be changed: rk_heap_pop() and rk_heap_retop(); a record
 * that must leave early is marked by the detector and dropped when it
 * comes up. rk_heap_remove() and rk_heap_update() need the index.
 *
 * Memory: 16 bytes per item, in an array that doubles when full and halves
 * when a quarter is used (freed when empty).
 * =================================================================== */

#define RK_HEAP_NONE UINT32_MAX
#define RK_HEAP_NOPOS SIZE_MAX      /* pos_off of a lazy queue */

typedef struct rk_heap_item {
    int64_t key;
    void *rec;
} rk_heap_item;

typedef struct rk_heap {
    rk_heap_item *items;
    uint32_t n;
    uint32_t cap;
    size_t pos_off;                 /* offset of the uint32_t index in a
                                       record, or RK_HEAP_NOPOS */
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
    if (h->pos_off != RK_HEAP_NOPOS)
        *rk_heap_pos(h, it.rec) = i;
}

/* After an item left: free the array when empty, halve it when a quarter
 * is used. */
static inline void rk_heap_shrink_(rk_heap *h)
{
    if (h->n == 0) {
        free(h->items);
        h->items = NULL;
        h->cap = 0;
    } else if (h->cap > 64 && h->n < h->cap / 4) {
        rk_heap_item *p = (rk_heap_item *)realloc(h->items, (size_t)(h->cap / 2) * sizeof(*p));
        if (p != NULL) {
            h->items = p;
            h->cap /= 2;
        }
    }
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
 * alone. Its index field becomes RK_HEAP_NONE. Not for a lazy queue. */
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
    rk_heap_shrink_(h);
}

/* Remove the top item (the heap must not be empty); its record's index
 * field, if any, becomes RK_HEAP_NONE. */
static inline void rk_heap_pop(rk_heap *h)
{
    if (h->pos_off != RK_HEAP_NOPOS)
        *rk_heap_pos(h, h->items[0].rec) = RK_HEAP_NONE;
    if (--h->n > 0) {
        h->items[0] = h->items[h->n];
        rk_heap_down_(h, 0);
    }
    rk_heap_shrink_(h);
}

/* Give the top item (the heap must not be empty) a new key: what a lazy
 * queue does with a record that came up before it was due. */
static inline void rk_heap_retop(rk_heap *h, int64_t key)
{
    h->items[0].key = key;
    rk_heap_down_(h, 0);
}

/* Give rec (which must be in the heap) a new key. Not for a lazy queue. */
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

#ifdef __cplusplus
}
#endif
#endif /* RISKD_HEAP_H */
