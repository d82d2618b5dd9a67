/* detectors/lifecycle.c - the open alerts of a built-in detector's window
 * and sum rules, kept until they are resolved (riskd-detectors(7),
 * LIFECYCLE).
 *
 * A window rule's condition (n bad ratings of an officer within a window,
 * ...) holds from the event that makes it true until the window has let go
 * of enough items. The detector records each alert it fires for a key
 * (rk__open_add: the alert's ts and, when its subject has a field beside
 * the key, that field's value) and, after every event of the key while the
 * condition holds, the time the condition will stop holding without new
 * events (S, from the window's items) plus alerts.keep_firing_for: the
 * time to resolve (rk__open_due). It arms a timer at that time; when the
 * timer fires and the key's resolve time is still that deadline, the
 * condition has not held again since S: every open alert of the key is
 * resolved (one notice each) and the record dropped. A later event that
 * makes the condition hold again moves the resolve time, so the timer
 * armed before finds another time and does nothing. Everything is a
 * function of event time, so a replay and a restart resolve alike.
 *
 * Memory (riskd-detectors(7), LIFECYCLE; tests/unit/test-ttl.c measures
 * it per rule): per key with open alerts one map entry (the key's string
 * and 16 bytes) and one record allocation, a 16-byte header followed by
 * the key's alerts, 16 bytes each (ts, extra pointer), grown to the exact
 * count up to 8 alerts and by an eighth beyond, so the allocation's slack
 * is malloc's own rounding (fixed per key) plus at most 2 bytes an alert.
 * An extra string is interned per set: one reference-counted copy (a map
 * entry: 16 bytes + the string) however many open alerts carry it, so a
 * unit named by many alerts costs its string once. Snapshot: u32 n, then
 * per key str key, i64 resolve_at, u32 n alerts, n x (i64 ts, u32
 * has_extra, [str extra]) - the same bytes as before the strings were
 * interned. */
#include "riskd/kit.h"
#include "internal.h"

#define OPEN_MAX_ID 65536

void rk__open_init(rk__openset *set)
{
    rk_map_init(&set->map);
    rk_map_init(&set->strs);
}

/* The interned copy of s with one more reference, or NULL when out of
 * memory. */
static const char *str_ref(rk__openset *set, const char *s)
{
    rk_map_entry *e = rk_map_find(&set->strs, s);
    if (e == NULL && (e = rk_map_put(&set->strs, s, (void *)(uintptr_t)0, NULL)) == NULL)
        return NULL;
    e->value = (void *)((uintptr_t)e->value + 1);
    return e->key;
}

static void str_unref(rk__openset *set, const char *s)
{
    rk_map_entry *e;
    if (s == NULL || (e = rk_map_find(&set->strs, s)) == NULL)
        return;
    e->value = (void *)((uintptr_t)e->value - 1);
    if ((uintptr_t)e->value == 0)
        rk_map_del(&set->strs, s);
}

static void rec_release(rk__openset *set, rk__openrec *r)
{
    uint32_t i;
    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        str_unref(set, r->a[i].extra);
    free(r);
}

void rk__open_clear(rk__openset *set)
{
    rk_map_clear(&set->map, free);  /* the alerts' strings go with strs */
    rk_map_clear(&set->strs, NULL);
}

rk__openrec *rk__open_get(const rk__openset *set, const char *key)
{
    return rk_map_get(&set->map, key);
}

/* key's record with room for one more alert (created, or grown in place
 * of the old one), or NULL when out of memory (the set unchanged). */
static rk__openrec *rec_room(rk__openset *set, const char *key)
{
    rk_map_entry *e = rk_map_find(&set->map, key);
    rk__openrec *r = e != NULL ? e->value : NULL, *nr;
    uint32_t ncap;
    if (r != NULL && r->n < r->cap)
        return r;
    ncap = r == NULL ? 1 : r->cap < 8 ? r->cap + 1 : r->cap + r->cap / 8;
    if (r != NULL && ncap <= r->cap)
        return NULL;                /* UINT32_MAX alerts */
    if ((nr = realloc(r, sizeof(*nr) + (size_t)ncap * sizeof(nr->a[0]))) == NULL)
        return NULL;
    nr->cap = ncap;
    if (r != NULL) {
        e->value = nr;
        return nr;
    }
    nr->resolve_at = INT64_MAX;
    nr->n = 0;
    if (rk_map_put(&set->map, key, nr, NULL) == NULL) {
        free(nr);
        return NULL;
    }
    return nr;
}

int rk__open_add(rk__openset *set, const char *key, int64_t ts, const char *extra)
{
    rk__openrec *r = rec_room(set, key);
    const char *x = NULL;
    if (r == NULL)
        return -1;
    if (extra != NULL && (x = str_ref(set, extra)) == NULL) {
        if (r->n == 0)
            free(rk_map_del(&set->map, key));
        return -1;
    }
    r->a[r->n].ts = ts;
    r->a[r->n].extra = x;
    r->n++;
    return 0;
}

void rk__open_remove(rk__openset *set, rk__openrec *r, uint32_t i)
{
    str_unref(set, r->a[i].extra);
    memmove(&r->a[i], &r->a[i + 1], (r->n - i - 1) * sizeof(r->a[0]));
    r->n--;
}

void rk__open_drop(rk__openset *set, const char *key)
{
    rec_release(set, rk_map_del(&set->map, key));
}

int rk__open_due(const rk__openset *set, const char *key, int64_t stops_at, int64_t keep,
                 int64_t *arm_at)
{
    rk__openrec *r = rk_map_get(&set->map, key);
    int64_t due;
    if (r == NULL)
        return 0;
    due = stops_at > INT64_MAX - keep ? INT64_MAX : stops_at + keep;
    if (due == r->resolve_at || due == INT64_MAX)
        return 0;
    r->resolve_at = due;
    *arm_at = due;
    return 1;
}

size_t rk__open_count(const rk__openset *set)
{
    rk_map_entry *e;
    size_t b, n = 0;
    for (e = rk_map_first(&set->map, &b); e != NULL; e = rk_map_next(&set->map, &b, e))
        n += ((const rk__openrec *)e->value)->n;
    return n;
}

void rk__open_put(rk_buf *out, const rk__openset *set)
{
    rk_map_entry *e;
    size_t b;
    uint32_t i;
    rk_buf_put_u32(out, (uint32_t)set->map.count);
    for (e = rk_map_first(&set->map, &b); e != NULL; e = rk_map_next(&set->map, &b, e)) {
        const rk__openrec *r = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_i64(out, r->resolve_at);
        rk_buf_put_u32(out, r->n);
        for (i = 0; i < r->n; i++) {
            rk_buf_put_i64(out, r->a[i].ts);
            rk_buf_put_u32(out, r->a[i].extra != NULL);
            if (r->a[i].extra != NULL)
                rk_buf_put_str(out, r->a[i].extra);
        }
    }
}

int rk__open_read(rk_rd *rd, rk__openset *set)
{
    uint32_t n = rk_rd_u32(rd), i, k, m;
    if (rd->err || n > (size_t)(rd->end - rd->p) / 16)
        goto bad;
    for (i = 0; i < n; i++) {
        char *key = rk_rd_str(rd, OPEN_MAX_ID);
        int64_t resolve_at;
        if (key == NULL || rk_map_find(&set->map, key) != NULL) {
            free(key);
            goto bad;
        }
        resolve_at = rk_rd_time(rd);
        m = rk_rd_u32(rd);
        if (rd->err || m > (size_t)(rd->end - rd->p) / 12 ||
            rec_room(set, key) == NULL) {   /* a key may have none left */
            free(key);
            goto bad;
        }
        for (k = 0; k < m; k++) {
            int64_t ts = rk_rd_ts(rd);
            char *x = rk_rd_u32(rd) ? rk_rd_str(rd, OPEN_MAX_ID) : NULL;
            int rc = rd->err ? -1 : rk__open_add(set, key, ts, x);
            free(x);
            if (rc != 0) {
                free(key);
                goto bad;
            }
        }
        rk__open_get(set, key)->resolve_at = resolve_at;
        free(key);
    }
    return 0;
bad:
    rd->err = 1;
    rk__open_clear(set);
    return -1;
}
