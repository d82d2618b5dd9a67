/* replaywatch.c - riskd --replay does not wait for ever for Redis.
 *
 * A replay is a command an operator (or a script) runs and waits for, so
 * an unreachable Redis must end it, not leave it retrying: the watch looks
 * every RK_REPLAY_WATCH_TICK_MS at the connections the replay is waiting
 * on (first the reference lists', then the engine's) and fails once one of
 * them has not been up for RK_REPLAY_REDIS_WAIT_MS on end, naming the
 * address it tried. riskd then exits 2, as riskctl does when it cannot
 * reach Redis. (A connection lost in the middle of the replay ends it at
 * once: input_replay.c; main.c reports that the same way.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "internal.h"

#define RK_REPLAY_WATCH_TICK_MS 100
#define RK_REPLAY_WATCH_MAX 4

struct rk__replay_watch {
    uv_timer_t timer;
    const rk__redis *conns[RK_REPLAY_WATCH_MAX];   /* those waited on */
    int n;
    uint64_t down_since;            /* loop ms since one of them is down; 0 all up */
    bool failed;                    /* then why says so, naming the address */
    char why[320];
};

static void on_tick(uv_timer_t *t)
{
    rk__replay_watch *w = t->data;
    uint64_t now = uv_now(t->loop);
    int i;

    for (i = 0; i < w->n; i++)
        if (!rk__redis_ready(w->conns[i]))
            break;
    if (i == w->n) {
        w->down_since = 0;
        return;
    }
    if (w->down_since == 0) {
        w->down_since = now;
        return;
    }
    if (now - w->down_since >= RK_REPLAY_REDIS_WAIT_MS) {
        const char *host;
        int port;
        rk__redis_addr(w->conns[i], &host, &port);
        snprintf(w->why, sizeof(w->why), "cannot reach Redis at %s:%d (not connected for "
                 "%d s)", host ? host : "?", port, RK_REPLAY_REDIS_WAIT_MS / 1000);
        w->failed = true;
        uv_timer_stop(t);
    }
}

rk__replay_watch *rk__replay_watch_new(uv_loop_t *loop)
{
    rk__replay_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_tick, RK_REPLAY_WATCH_TICK_MS, RK_REPLAY_WATCH_TICK_MS);
    return w;
}

void rk__replay_watch_set(rk__replay_watch *w, const rk__redis *const *conns, int n)
{
    int i;
    w->n = 0;
    for (i = 0; i < n && i < RK_REPLAY_WATCH_MAX; i++)
        if (conns[i] != NULL)
            w->conns[w->n++] = conns[i];
    w->down_since = 0;
}

const char *rk__replay_watch_failed(const rk__replay_watch *w)
{
    return w->failed ? w->why : NULL;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void rk__replay_watch_free(rk__replay_watch *w)
{
    if (w == NULL)
        return;
    w->n = 0;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_closed);
}
