/* riskd/window.h - sliding windows on event time (plugin kit).
 *
 *   rk_win             a FIFO ring of (ts, entry ref, flag) items kept sorted
 *                      by ts: push, expire what left the window, pick the
 *                      evidence for an alert.
 *   rk_winset          rk_win windows keyed by a string (a unit, an officer),
 *                      each key in an rk_heap by "newest item + window", so
 *                      that expiring touches only the keys that are due and a
 *                      key is freed as soon as its window is empty (what
 *                      bad_rating and complaint_cluster keep).
 *   rk_kit_cutoff, rk_kit_evidence
 *                      the window's lower bound at a time; an alert's
 *                      evidence from a window, trigger last.
 *
 * Header-only (static inline).
 */
#ifndef RISKD_WINDOW_H
#define RISKD_WINDOW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/detector.h"
#include "riskd/heap.h"
#include "riskd/map.h"

#ifdef __cplusplus
extern "C" {
#endif

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
#endif /* RISKD_WINDOW_H */
