/* ttl.c - alerts.open_ttl: when each alert written is closed if still open.
 *
 * Every alert riskd writes gets a deadline, its event time + open_ttl (30
 * days by default), at which a "closed" notice goes out unless the alert
 * was resolved, retracted or closed before (the output checks that). A
 * busy year has millions of such deadlines pending, so they do not go
 * through the clock's general timers (a 40-byte slot and a malloc'ed
 * "<detector>\x1f<id>" key each, about 90 bytes): they live here, one
 * 32-byte record per alert - the deadline, the id's 16 bytes and the
 * detector's index - in a binary min-heap of event time. The heap grows by
 * an eighth and, past 4096 slots, gives memory back when more than an
 * eighth of it is free (to a sixteenth), so its slack stays under 5 bytes
 * per record (a budget of 64 bytes per open alert with the detector's
 * tracking: riskd-detectors(7), LIFECYCLE).
 *
 * Ties (one deadline) leave in (detector, id) order: a pure function of the
 * records, so live, replay and a restored checkpoint close alike.
 *
 * Checkpoint section (in the engine's state, after the indicators):
 *   u32 version (1), u32 n_names, n_names x str detector name,
 *   u64 n, n x (i64 deadline, u32 name index, 16 bytes id).
 * A record of a detector no longer registered is dropped on restore. */
#include <string.h>

#include "engine_int.h"

#define TTL_SNAP_VERSION 1u

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int item_less(const rk__ttl_item *a, const rk__ttl_item *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    if (a->det != b->det)
        return a->det < b->det;
    return memcmp(a->id, b->id, sizeof(a->id)) < 0;
}

static void sift_up(rk__ttl_item *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        rk__ttl_item t;
        if (!item_less(&h[i], &h[p]))
            break;
        t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static void sift_down(rk__ttl_item *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        rk__ttl_item t;
        if (l < n && item_less(&h[l], &h[m])) m = l;
        if (r < n && item_less(&h[r], &h[m])) m = r;
        if (m == i)
            return;
        t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

void rk__ttl_free(rk__ttl *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

int rk__ttl_id_pack(const char *hex, unsigned char out[16])
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

void rk__ttl_id_unpack(const unsigned char id[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

static int push(rk__ttl *t, const rk__ttl_item *it)
{
    if (t->n == t->cap) {
        size_t ncap = t->cap < 64 ? 64 : t->cap + t->cap / 8;
        rk__ttl_item *nv;
        if (ncap > SIZE_MAX / sizeof(*nv))
            return -1;
        nv = realloc(t->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        t->v = nv;
        t->cap = ncap;
    }
    t->v[t->n] = *it;
    sift_up(t->v, t->n++);
    return 0;
}

int rk__ttl_add(rk__ttl *t, int64_t deadline, uint32_t det, const char *id)
{
    rk__ttl_item it;
    memset(&it, 0, sizeof(it));
    it.deadline = deadline;
    it.det = det;
    if (rk__ttl_id_pack(id, it.id) != 0)
        return -1;
    return push(t, &it);
}

int rk__ttl_pop_due(rk__ttl *t, int64_t now, rk__ttl_item *out)
{
    if (t->n == 0 || t->v[0].deadline >= now)
        return 0;
    *out = t->v[0];
    if (--t->n > 0) {
        t->v[0] = t->v[t->n];
        sift_down(t->v, t->n, 0);
    }
    /* give memory back as records leave */
    if (t->cap > 4096 && t->n < t->cap - t->cap / 8) {
        size_t ncap = t->n + t->n / 16 > 64 ? t->n + t->n / 16 : 64;
        rk__ttl_item *nv = realloc(t->v, ncap * sizeof(*nv));
        if (nv != NULL) {
            t->v = nv;
            t->cap = ncap;
        }
    }
    return 1;
}

void rk__ttl_snapshot(const rk__ttl *t, rk_buf *out,
                      const char *(*det_name)(uint32_t det, void *ud), void *ud)
{
    uint32_t maxdet = 0, i;
    size_t k;

    for (k = 0; k < t->n; k++)
        if (t->v[k].det + 1 > maxdet)
            maxdet = t->v[k].det + 1;
    rk_buf_put_u32(out, TTL_SNAP_VERSION);
    rk_buf_put_u32(out, maxdet);
    for (i = 0; i < maxdet; i++)
        rk_buf_put_str(out, det_name(i, ud));
    rk_buf_put_u64(out, t->n);
    if (rk_buf_reserve(out, t->n * 28) != 0)
        return;
    for (k = 0; k < t->n; k++) {
        rk_buf_put_i64(out, t->v[k].deadline);
        rk_buf_put_u32(out, t->v[k].det);
        rk_buf_put_bytes(out, t->v[k].id, sizeof(t->v[k].id));
    }
}

int rk__ttl_restore(rk__ttl *t, const void *data, size_t len,
                    int (*det_index)(const char *name, void *ud), void *ud,
                    size_t *dropped)
{
    rk_rd rd;
    uint32_t nnames, i;
    int *map = NULL;
    uint64_t n, k;
    rk__ttl tmp = {0};

    *dropped = 0;
    rk_rd_init(&rd, data, len);
    if (rk_rd_u32(&rd) != TTL_SNAP_VERSION || rd.err)
        return -1;
    nnames = rk_rd_u32(&rd);
    if (rd.err || nnames > 4096 || (nnames && (map = calloc(nnames, sizeof(*map))) == NULL))
        return -1;
    for (i = 0; i < nnames && !rd.err; i++) {
        char *name = rk_rd_str(&rd, 256);
        map[i] = name != NULL ? det_index(name, ud) : -1;
        free(name);
    }
    n = rk_rd_u64(&rd);
    if (rd.err || n > (uint64_t)(rd.end - rd.p) / 28)
        rd.err = 1;
    for (k = 0; k < n && !rd.err; k++) {
        rk__ttl_item it;
        uint32_t di;
        memset(&it, 0, sizeof(it));
        it.deadline = rk_rd_ts(&rd);
        di = rk_rd_u32(&rd);
        if (rk_rd_take(&rd, sizeof(it.id)) != 0 || di >= nnames) {
            rd.err = 1;
            break;
        }
        memcpy(it.id, rd.p, sizeof(it.id));
        rd.p += sizeof(it.id);
        if (map[di] < 0) {
            (*dropped)++;
            continue;
        }
        it.det = (uint32_t)map[di];
        if (push(&tmp, &it) != 0)
            rd.err = 1;
    }
    free(map);
    if (rd.err || rd.p != rd.end) {
        rk__ttl_free(&tmp);
        return -1;
    }
    rk__ttl_free(t);
    *t = tmp;
    return 0;
}
