/* sentinel.c - Redis Sentinel: addresses and the +switch-master watcher.
 *
 * In Sentinel mode (redis.sentinels set) each rk_redis connection asks the
 * sentinels for the master before every connect attempt and checks ROLE
 * (redis.c). That alone follows a failover once the old master's
 * connections break. A master that fails over while it stays reachable
 * (SENTINEL FAILOVER, a partition healed the wrong way) breaks nothing, so
 * this file also keeps ONE process-wide subscription to a sentinel:
 *
 *   SUBSCRIBE +switch-master
 *   -> "message" "+switch-master" "<master> <old ip> <old port> <new ip> <new port>"
 *
 * and hands every such message to the callback redis.c gave
 * (rk__redis_sentinel_switch(), which makes each connection of that master
 * that is not already on the new address reconnect, and so resolve again).
 * The watcher uses its own hiredis async context on adapter.c's libuv
 * adapter (rk__redis_attach). A connect that fails,
 * a SUBSCRIBE not confirmed within WATCH_TIMEOUT_MS, or a lost connection
 * moves it to the next sentinel of the list after a backoff that doubles
 * from 100 ms to 5 s (drawn uniformly from [cap/2, cap]); a confirmed
 * subscription resets the backoff. The watcher is a fast path only: a
 * sentinel that hangs without closing the connection is not noticed (a
 * subscribed RESP2 connection cannot be pinged through hiredis 0.14), but
 * connections still re-resolve whenever they reconnect.
 *
 * redis.c starts the watcher with its first sentinel-mode connection and
 * stops it with its last. Single loop thread: the watcher is one static
 * pointer. Lifetime: a context is never freed inside its own callbacks;
 * when we abandon one (timeout, stop) we clear ac->data first, so the
 * callbacks hiredis runs while freeing it are ignored. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "internal.h"

#define WATCH_TIMEOUT_MS 2000
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 5000

/* ===================================================================
 * The watcher
 * =================================================================== */

enum { W_WAIT, W_CONNECTING, W_SUBSCRIBED };

typedef struct watcher {
    uv_loop_t *loop;
    char **addrs;                   /* "host:port", copied */
    size_t n;
    size_t idx;                     /* the sentinel used now / next */
    redisAsyncContext *ac;          /* NULL when not connected */
    uv_timer_t timer;               /* backoff, and the SUBSCRIBE timeout */
    int state;
    int attempt;                    /* failures since the last subscription */
    uint64_t rng;
    void (*on_switch)(const char *master, const char *host, int port);
} watcher;

static watcher *W;

static void w_connect(watcher *w);

static void w_log(const watcher *w, rk_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void w_log(const watcher *w, rk_log_level level, const char *fmt, ...)
{
    char prefix[320];
    va_list ap;
    snprintf(prefix, sizeof(prefix), "sentinel watcher %s: ", w->addrs[w->idx]);
    va_start(ap, fmt);
    rk__vlog(level, prefix, fmt, ap);
    va_end(ap);
}

static void on_w_timer(uv_timer_t *t);

/* Rotate to the next sentinel and connect again after the backoff. */
static void w_retry(watcher *w)
{
    int64_t cap = WATCH_BACKOFF_MIN_MS, delay;
    int i;

    w->state = W_WAIT;
    w->idx = (w->idx + 1) % w->n;
    for (i = 0; i < w->attempt && cap < WATCH_BACKOFF_MAX_MS; i++)
        cap *= 2;
    if (cap > WATCH_BACKOFF_MAX_MS)
        cap = WATCH_BACKOFF_MAX_MS;
    /* xorshift64* for the jitter */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    delay = cap / 2 + (int64_t)((w->rng * UINT64_C(2685821657736338717)) %
                                (uint64_t)(cap / 2 + 1));
    w->attempt++;
    uv_timer_start(&w->timer, on_w_timer, (uint64_t)delay, 0);
}

/* Drop the context we hold (never called inside its callbacks). */
static void w_abandon(watcher *w)
{
    redisAsyncContext *ac = w->ac;
    if (ac == NULL)
        return;
    w->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void on_w_timer(uv_timer_t *t)
{
    watcher *w = t->data;

    if (w->state == W_CONNECTING) {
        w_log(w, w->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
              "no SUBSCRIBE confirmation in time");
        w_abandon(w);
        w_retry(w);
        return;
    }
    if (w->state == W_WAIT)
        w_connect(w);
}

/* "<master> <old ip> <old port> <new ip> <new port>" -> switch. */
static void w_switch(watcher *w, const char *msg, size_t len)
{
    char buf[1024], *save = NULL, *tok[5];
    int i, port;

    if (len >= sizeof(buf))
        return;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    for (i = 0; i < 5; i++) {
        tok[i] = strtok_r(i == 0 ? buf : NULL, " ", &save);
        if (tok[i] == NULL) {
            w_log(w, RK_LOG_WARNING, "ignoring a malformed +switch-master message");
            return;
        }
    }
    port = atoi(tok[4]);
    w_log(w, RK_LOG_NOTICE, "+switch-master: master %s moved from %s:%s to %s:%d",
          tok[0], tok[1], tok[2], tok[3], port);
    w->on_switch(tok[0], tok[3], port);
}

/* The SUBSCRIBE callback: the confirmation, each message, and NULL once
 * when the context goes away (connect failure or lost connection). */
static void on_w_message(redisAsyncContext *ac, void *r, void *pd)
{
    watcher *w = ac->data;
    redisReply *reply = r;
    const char *kind;

    (void)pd;
    if (w == NULL)
        return;                     /* abandoned by us */
    if (reply == NULL) {
        /* hiredis is freeing the context. */
        w->ac = NULL;
        uv_timer_stop(&w->timer);
        w_log(w, w->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO, "connection lost: %s",
              ac->errstr[0] ? ac->errstr : "closed");
        w_retry(w);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        if (w->state != W_SUBSCRIBED)
            w_log(w, w->attempt > 0 ? RK_LOG_NOTICE : RK_LOG_INFO,
                  "watching +switch-master");
        w->state = W_SUBSCRIBED;
        w->attempt = 0;
        uv_timer_stop(&w->timer);
    } else if (strcmp(kind, "message") == 0 &&
               reply->element[2]->type == REDIS_REPLY_STRING) {
        w_switch(w, reply->element[2]->str, reply->element[2]->len);
    }
}

static void w_connect(watcher *w)
{
    char host[256];
    int port;
    redisAsyncContext *ac;

    if (rk__parse_addr(w->addrs[w->idx], host, sizeof(host), &port) != 0) {
        w_log(w, RK_LOG_ERR, "not a \"host:port\" address");
        w_retry(w);
        return;
    }
    ac = redisAsyncConnect(host, port);
    if (ac == NULL || ac->err) {
        w_log(w, RK_LOG_WARNING, "connect failed: %s", ac ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        w_retry(w);
        return;
    }
    if (rk__redis_attach(w->loop, ac) != 0) {
        w_log(w, RK_LOG_ERR, "connect: cannot attach to the loop");
        redisAsyncFree(ac);
        w_retry(w);
        return;
    }
    ac->data = w;
    if (redisAsyncCommand(ac, on_w_message, NULL, "SUBSCRIBE +switch-master") != REDIS_OK) {
        ac->data = NULL;
        redisAsyncFree(ac);
        w_retry(w);
        return;
    }
    w->ac = ac;
    w->state = W_CONNECTING;
    uv_timer_start(&w->timer, on_w_timer, WATCH_TIMEOUT_MS, 0);
}

int rk__sentinel_watch_start(uv_loop_t *loop, const char *const *sentinels, size_t n,
                             void (*on_switch)(const char *master, const char *host, int port))
{
    watcher *w;
    size_t i;

    if (W != NULL || n == 0)
        return 0;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return -1;
    if ((w->addrs = calloc(n, sizeof(*w->addrs))) == NULL)
        goto fail_alloc;
    for (i = 0; i < n; i++) {
        if ((w->addrs[i] = strdup(sentinels[i])) == NULL)
            goto fail_alloc;
        w->n = i + 1;
    }
    w->loop = loop;
    w->on_switch = on_switch;
    w->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)w;
    if (w->rng == 0)
        w->rng = 1;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    W = w;
    w_connect(w);
    return 0;

fail_alloc:
    for (i = 0; i < w->n; i++)
        free(w->addrs[i]);
    free(w->addrs);
    free(w);
    return -1;
}

static void w_closed(uv_handle_t *h)
{
    watcher *w = h->data;
    size_t i;
    for (i = 0; i < w->n; i++)
        free(w->addrs[i]);
    free(w->addrs);
    free(w);
}

void rk__sentinel_watch_stop(void)
{
    watcher *w = W;

    if (w == NULL)
        return;
    W = NULL;
    w_abandon(w);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, w_closed);
}
