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
 * Memory: per key with open alerts one map entry (the key's string and
 * ~48 bytes) and per open alert 16 bytes (ts, extra pointer) plus the
 * extra string when there is one. Snapshot: u32 n, then per key str key,
 * i64 resolve_at, u32 n alerts, n x (i64 ts, u32 has_extra, [str extra]). */
#include "riskd/kit.h"
#include "internal.h"

#define OPEN_MAX_ID 65536

void rk__open_init(rk__openset *set)
{
    rk_map_init(&set->map);
}

static void rec_free(void *p)
{
    rk__openrec *r = p;
    uint32_t i;
    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        free(r->a[i].extra);
    free(r->a);
    free(r);
}

void rk__open_clear(rk__openset *set)
{
    rk_map_clear(&set->map, rec_free);
}

rk__openrec *rk__open_get(const rk__openset *set, const char *key)
{
    return rk_map_get(&set->map, key);
}

static rk__openrec *rec_get_or_new(rk__openset *set, const char *key)
{
    rk__openrec *r = rk_map_get(&set->map, key);
    if (r != NULL)
        return r;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->resolve_at = INT64_MAX;
    if (rk_map_put(&set->map, key, r, NULL) == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

int rk__open_add(rk__openset *set, const char *key, int64_t ts, const char *extra)
{
    rk__openrec *r = rec_get_or_new(set, key);
    char *x = NULL;
    if (r == NULL)
        return -1;
    if (extra != NULL && (x = strdup(extra)) == NULL)
        return -1;
    if (r->n == r->cap) {
        uint32_t ncap = r->cap ? r->cap * 2 : 1;
        rk__open_alert *a = realloc(r->a, ncap * sizeof(*a));
        if (a == NULL) {
            free(x);
            return -1;
        }
        r->a = a;
        r->cap = ncap;
    }
    r->a[r->n].ts = ts;
    r->a[r->n].extra = x;
    r->n++;
    return 0;
}

void rk__open_drop(rk__openset *set, const char *key)
{
    rec_free(rk_map_del(&set->map, key));
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
        rk__openrec *r;
        if (key == NULL || rk_map_find(&set->map, key) != NULL) {
            free(key);
            goto bad;
        }
        r = rec_get_or_new(set, key);
        free(key);
        if (r == NULL)
            goto bad;
        r->resolve_at = rk_rd_time(rd);
        m = rk_rd_u32(rd);
        if (rd->err || m > (size_t)(rd->end - rd->p) / 12)
            goto bad;
        for (k = 0; k < m; k++) {
            int64_t ts = rk_rd_ts(rd);
            char *x = rk_rd_u32(rd) ? rk_rd_str(rd, OPEN_MAX_ID) : NULL;
            if (rd->err) {
                free(x);
                goto bad;
            }
            if (r->n == r->cap) {
                uint32_t ncap = r->cap ? r->cap * 2 : 1;
                rk__open_alert *a = realloc(r->a, ncap * sizeof(*a));
                if (a == NULL) {
                    free(x);
                    goto bad;
                }
                r->a = a;
                r->cap = ncap;
            }
            r->a[r->n].ts = ts;
            r->a[r->n].extra = x;
            r->n++;
        }
    }
    return 0;
bad:
    rd->err = 1;
    rk__open_clear(set);
    return -1;
}
