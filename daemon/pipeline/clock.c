/* clock.c - event time: the watermark and the timers that run on it.
 *
 * Event time never comes from the wall clock (except through the idle rule
 * in apply.c): it is the `ts` of the events read. The watermark
 * (riskd(8), EVENT TIME) is the smallest, over the streams that still
 * hold unread entries, of the largest ts read from each; when every stream
 * is caught up it is the largest ts read. A stream far behind thus holds time back and
 * the other stream's timers cannot fire early. rk__clock_candidate computes
 * that value; rk__clock_advance only ever moves the watermark forward.
 *
 * Timers live in one binary min-heap ordered by (deadline, arming order),
 * so equal deadlines fire in the order they were armed and a replay fires
 * them in the same order. A timer fires once the watermark is strictly
 * greater than its deadline, so every event stamped exactly at the deadline
 * has been applied first.
 *
 * clock.allowed_lateness L holds every decision back: rk__clock_now is the
 * watermark minus L (saturating), and a timer fires once that time passes
 * its deadline, i.e. when the watermark passes deadline + L. Detectors see
 * rk__clock_now as their "now", so the state they drop when it ages out
 * (filings, pending scans, cooldowns, windows) is held back by L too, and a
 * late event up to L behind still finds everything it needs. The watermark
 * itself (what lateness is measured against, and what the metrics show) is
 * not shifted. */
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

#define CLOCK_SNAPSHOT_VERSION 1u       /* RK_STREAM_COUNT streams */
#define CLOCK_SNAPSHOT_VERSION_N 2u     /* + the number of streams */

void rk__clock_init(rk__clock *c)
{
    memset(c, 0, sizeof(*c));
    c->nstreams = RK_STREAM_COUNT;
    c->watermark = INT64_MIN;
}

static rk__clock_stream *streams(rk__clock *c)
{
    return c->many != NULL ? c->many : c->two;
}

void rk__clock_free(rk__clock *c)
{
    int64_t lateness = c->lateness;
    unsigned n = c->nstreams;
    rk__clock_stream *many = c->many;
    size_t i;
    for (i = 0; i < c->ntimers; i++)
        free(c->heap[i].key);
    free(c->heap);
    rk__clock_init(c);
    c->lateness = lateness;        /* configuration, not state */
    c->nstreams = n;
    c->many = many;
    if (many != NULL)
        memset(many, 0, n * sizeof(*many));
}

void rk__clock_release(rk__clock *c)
{
    int64_t lateness = c->lateness;
    rk__clock_free(c);
    free(c->many);
    rk__clock_init(c);
    c->lateness = lateness;
}

int rk__clock_set_streams(rk__clock *c, unsigned n)
{
    rk__clock_stream *many = NULL;
    if (n == 0)
        return -1;
    if (n > RK_STREAM_COUNT && (many = calloc(n, sizeof(*many))) == NULL)
        return -1;
    free(c->many);
    memset(c->two, 0, sizeof(c->two));
    c->many = many;
    c->nstreams = n;
    return 0;
}

void rk__clock_observe(rk__clock *c, unsigned stream, int64_t ts)
{
    rk__clock_stream *cs;
    if (stream >= c->nstreams)
        return;
    cs = &streams(c)[stream];
    if (!cs->has_ts || ts > cs->max_ts) {
        cs->max_ts = ts;
        cs->has_ts = true;
    }
}

int64_t rk__clock_candidate(const rk__clock *c, const bool *unread)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    bool any_unread = false;
    unsigned s;

    for (s = 0; s < c->nstreams; s++) {
        const rk__clock_stream *cs = rk__clock_stream_of(c, s);
        if (unread[s]) {
            any_unread = true;
            if (!cs->has_ts)
                return INT64_MIN;
            if (cs->max_ts < lo)
                lo = cs->max_ts;
        }
        if (cs->has_ts && cs->max_ts > hi)
            hi = cs->max_ts;
    }
    return any_unread ? lo : hi;
}

void rk__clock_set_lateness(rk__clock *c, int64_t lateness)
{
    c->lateness = lateness > 0 ? lateness : 0;
}

int64_t rk__clock_now(const rk__clock *c)
{
    if (c->watermark == INT64_MIN)
        return INT64_MIN;
    if (c->watermark < INT64_MIN + 1 + c->lateness)
        return INT64_MIN + 1;       /* saturate: still "after any event" */
    return c->watermark - c->lateness;
}

int rk__clock_advance(rk__clock *c, int64_t w)
{
    if (w <= c->watermark)
        return 0;
    c->watermark = w;
    return 1;
}

static int timer_less(const rk__timer *a, const rk__timer *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

static void sift_up(rk__timer *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        rk__timer t;
        if (!timer_less(&h[i], &h[p]))
            break;
        t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static void sift_down(rk__timer *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        rk__timer t;
        if (l < n && timer_less(&h[l], &h[m])) m = l;
        if (r < n && timer_less(&h[r], &h[m])) m = r;
        if (m == i)
            break;
        t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

/* Insert with a given sequence number (restore keeps the original order). */
static int heap_push(rk__clock *c, int64_t deadline, uint64_t seq, uint32_t det,
                     char *key_owned, uint64_t arg)
{
    if (c->ntimers == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        rk__timer *h = realloc(c->heap, ncap * sizeof(*h));
        if (h == NULL)
            return -1;
        c->heap = h;
        c->cap = ncap;
    }
    c->heap[c->ntimers].deadline = deadline;
    c->heap[c->ntimers].seq = seq;
    c->heap[c->ntimers].det = det;
    c->heap[c->ntimers].arg = arg;
    c->heap[c->ntimers].key = key_owned;
    sift_up(c->heap, c->ntimers);
    c->ntimers++;
    return 0;
}

int rk__clock_timer_add(rk__clock *c, int64_t deadline, uint32_t det,
                        const char *key, uint64_t arg)
{
    char *k = strdup(key ? key : "");
    if (k == NULL)
        return -1;
    if (heap_push(c, deadline, c->seq, det, k, arg) != 0) {
        free(k);
        return -1;
    }
    c->seq++;
    return 0;
}

int rk__clock_pop_due(rk__clock *c, rk__timer *out)
{
    if (c->ntimers == 0 || c->heap[0].deadline >= rk__clock_now(c))
        return 0;
    *out = c->heap[0];
    c->ntimers--;
    if (c->ntimers > 0) {
        c->heap[0] = c->heap[c->ntimers];
        sift_down(c->heap, c->ntimers, 0);
    }
    return 1;
}

void rk__clock_snapshot(const rk__clock *c, rk_buf *out,
                        const char *(*det_name)(uint32_t det, void *ud), void *ud)
{
    unsigned s;
    size_t i;

    if (c->nstreams == RK_STREAM_COUNT) {
        rk_buf_put_u32(out, CLOCK_SNAPSHOT_VERSION);
    } else {
        rk_buf_put_u32(out, CLOCK_SNAPSHOT_VERSION_N);
        rk_buf_put_u32(out, c->nstreams);
    }
    for (s = 0; s < c->nstreams; s++) {
        const rk__clock_stream *cs = rk__clock_stream_of(c, s);
        rk_buf_put_u32(out, cs->has_ts ? 1 : 0);
        rk_buf_put_i64(out, cs->max_ts);
    }
    rk_buf_put_i64(out, c->watermark);
    rk_buf_put_u64(out, c->seq);
    rk_buf_put_u64(out, c->ntimers);
    for (i = 0; i < c->ntimers; i++) {
        const rk__timer *t = &c->heap[i];
        rk_buf_put_i64(out, t->deadline);
        rk_buf_put_u64(out, t->seq);
        rk_buf_put_str(out, det_name(t->det, ud));
        rk_buf_put_u64(out, t->arg);
        rk_buf_put_str(out, t->key);
    }
}

int rk__clock_restore(rk__clock *c, const void *data, size_t len,
                      int (*det_index)(const char *name, void *ud), void *ud)
{
    rk_rd rd;
    rk__clock tmp;
    unsigned s, ns;
    uint64_t n, i;

    rk_rd_init(&rd, data, len);
    switch (rk_rd_u32(&rd)) {
    case CLOCK_SNAPSHOT_VERSION:
        ns = RK_STREAM_COUNT;
        break;
    case CLOCK_SNAPSHOT_VERSION_N:
        ns = rk_rd_u32(&rd);
        break;
    default:
        return -1;
    }
    if (rd.err || ns != c->nstreams)
        return -1;                  /* saved with other streams */
    rk__clock_init(&tmp);
    if (rk__clock_set_streams(&tmp, ns) != 0)
        return -1;
    for (s = 0; s < ns; s++) {
        rk__clock_stream *cs = &streams(&tmp)[s];
        cs->has_ts = rk_rd_u32(&rd) != 0;
        cs->max_ts = rk_rd_time(&rd);
    }
    tmp.watermark = rk_rd_time(&rd);
    tmp.seq = rk_rd_u64(&rd);
    n = rk_rd_u64(&rd);
    for (i = 0; i < n && !rd.err; i++) {
        int64_t deadline = rk_rd_time(&rd);
        uint64_t seq = rk_rd_u64(&rd);
        char *name = rk_rd_str(&rd, 4096);
        uint64_t arg = rk_rd_u64(&rd);
        char *key = rk_rd_str(&rd, 1 << 20);
        int det = (!rd.err && name != NULL) ? det_index(name, ud) : -1;
        free(name);
        if (rd.err || key == NULL) {
            free(key);
            rd.err = 1;
            break;
        }
        if (det < 0) {              /* detector gone: drop its timer */
            free(key);
            continue;
        }
        if (heap_push(&tmp, deadline, seq, (uint32_t)det, key, arg) != 0) {
            free(key);
            rd.err = 1;
        }
    }
    if (rd.err || rd.p != rd.end) {
        rk__clock_release(&tmp);
        return -1;
    }
    tmp.lateness = c->lateness;
    rk__clock_release(c);
    *c = tmp;
    return 0;
}

bool rk__clock_due_at(const rk__clock *c, int64_t w)
{
    return c->ntimers > 0 && c->heap[0].deadline < w;
}
