/* redis.c - one Redis connection on the libuv loop.
 *
 * hiredis 0.14.1 does the protocol; this file does the rest:
 *
 *  - Our own libuv adapter on the public ac->ev hooks. The adapter shipped
 *    with hiredis 0.14 returns early when uv_poll reports an error status,
 *    so a refused or reset connection can produce no callback at all and
 *    the daemon hangs. Here an error status is treated as readable and
 *    writable, so hiredis itself notices the error and calls us back.
 *  - Connect, then AUTH (password, or username + password) and SELECT,
 *    pipelined; the connection is "ready" only when both succeeded.
 *  - Reconnect with capped exponential backoff and full jitter.
 *  - A watchdog: hiredis has no timeouts, so a uv_timer checks that a
 *    connect finishes within connect_timeout and that, while commands are
 *    in flight, a reply arrives within reply_timeout (+ the BLOCK time of a
 *    blocking read). Otherwise the connection is dropped and reconnected;
 *    every pending callback then runs with a NULL reply.
 *
 * Lifetime rules (from hiredis): a context must never be freed inside one
 * of its own callbacks, so rk__redis_drop() only marks the connection and a
 * zero-delay timer frees it from the loop. hiredis frees the context itself
 * after a failed connect or a lost connection; our cleanup hook forgets it
 * then. The adapter's uv_poll_t is freed in its close callback, never
 * before libuv is done with it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "internal.h"

typedef enum {
    ST_WAIT,                        /* waiting for the backoff timer */
    ST_CONNECTING,                  /* TCP connect in progress */
    ST_HANDSHAKE,                   /* AUTH / SELECT sent */
    ST_READY,
    ST_CLOSED                       /* rk__redis_close() called */
} conn_state;

struct rk_redis {
    uv_loop_t *loop;
    rk_redis_opts opts;
    char *host, *username, *password, *name;
    rk_redis_state_cb *state_cb;
    void *ud;

    redisAsyncContext *ac;          /* NULL when not connected */
    conn_state state;
    uv_timer_t retry_timer;         /* backoff, and deferred drop */
    uv_timer_t watchdog;
    int handles_open;               /* closed handles left before free */
    int attempt;                    /* failed attempts since last ready */
    int drop_pending;
    int64_t state_since;            /* loop time of the last state change */
    int64_t last_reply;             /* loop time of the last reply */
    int64_t deadline_extra;         /* largest extra timeout in flight */
    int inflight;
    int handshake_left;
    uint64_t reconnects;
    uint64_t rng;
};

/* A command in flight: routes hiredis's callback back to the caller. */
typedef struct pending_cmd {
    rk_redis *r;
    rk_redis_reply_cb *cb;
    void *privdata;
} pending_cmd;

static void schedule_retry(rk_redis *r);
static void start_connect(rk_redis *r);

/* ===================================================================
 * libuv adapter
 * =================================================================== */

typedef struct uv_events {
    uv_poll_t handle;
    redisAsyncContext *ac;          /* NULL once hiredis cleaned up */
    int events;
} uv_events;

static void on_poll(uv_poll_t *handle, int status, int events)
{
    uv_events *p = handle->data;

    /* An error status (ECONNREFUSED, ECONNRESET, ...) is passed on as both
     * events so that hiredis's read or connect check sees the error. */
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;
    if (p->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void poll_update(uv_events *p)
{
    if (p->ac == NULL)
        return;
    if (p->events)
        uv_poll_start(&p->handle, p->events, on_poll);
    else
        uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d) { uv_events *p = d; p->events |= UV_READABLE; poll_update(p); }
static void ev_del_read(void *d) { uv_events *p = d; p->events &= ~UV_READABLE; poll_update(p); }
static void ev_add_write(void *d) { uv_events *p = d; p->events |= UV_WRITABLE; poll_update(p); }
static void ev_del_write(void *d) { uv_events *p = d; p->events &= ~UV_WRITABLE; poll_update(p); }

static void ev_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *d)
{
    uv_events *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, ev_close_cb);
}

/* Attach a fresh context to the loop. Returns 0 or -1. */
static int ev_attach(uv_loop_t *loop, redisAsyncContext *ac)
{
    uv_events *p;

    if (ac->ev.data != NULL)
        return -1;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -1;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->handle.data = p;
    p->ac = ac;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return 0;
}

/* ===================================================================
 * State changes
 * =================================================================== */

static void set_state(rk_redis *r, conn_state st)
{
    r->state = st;
    r->state_since = (int64_t)uv_now(r->loop);
}

static void rlog(rk_redis *r, rk_log_level level, const char *fmt, ...)
{
    char prefix[64];
    va_list ap;
    snprintf(prefix, sizeof(prefix), "redis %s %s:%d: ", r->name, r->host, r->opts.port);
    va_start(ap, fmt);
    rk__vlog(level, prefix, fmt, ap);
    va_end(ap);
}

/* The connection is gone (hiredis already freed, or is freeing, the
 * context): tell the owner, then schedule a reconnect. */
static void connection_lost(rk_redis *r)
{
    int was_ready = r->state == ST_READY;

    r->ac = NULL;
    r->inflight = 0;
    r->deadline_extra = 0;
    if (r->state == ST_CLOSED)
        return;
    set_state(r, ST_WAIT);
    if (was_ready && r->state_cb)
        r->state_cb(r, 0, r->ud);
    if (r->state != ST_CLOSED)
        schedule_retry(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rk_redis *r = ac->data;
    if (r == NULL)
        return;
    if (r->state != ST_CLOSED)
        rlog(r, RK_LOG_WARNING, "connection lost: %s",
             status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
    connection_lost(r);
}

static void became_ready(rk_redis *r)
{
    set_state(r, ST_READY);
    if (r->attempt > 0 || r->reconnects > 0)
        rlog(r, RK_LOG_NOTICE, "connected");
    else
        rlog(r, RK_LOG_INFO, "connected");
    r->attempt = 0;
    r->last_reply = (int64_t)uv_now(r->loop);
    if (r->state_cb)
        r->state_cb(r, 1, r->ud);
}

static void on_handshake_reply(rk_redis *r, struct redisReply *reply, void *pd)
{
    const char *what = pd;
    if (reply == NULL || r->state != ST_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        rlog(r, RK_LOG_ERR, "%s refused: %s", what, reply->str);
        r->handshake_left = -1;
        rk__redis_drop(r, NULL);
        return;
    }
    if (--r->handshake_left == 0)
        became_ready(r);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    rk_redis *r = cac->data;
    redisAsyncContext *ac;
    char db[16];

    if (r == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        rlog(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
             "connect failed: %s", cac->errstr[0] ? cac->errstr : "error");
        r->ac = NULL;
        if (r->state != ST_CLOSED) {
            set_state(r, ST_WAIT);
            schedule_retry(r);
        }
        return;
    }
    ac = r->ac;
    set_state(r, ST_HANDSHAKE);
    r->handshake_left = 0;
    if (r->password != NULL) {
        const char *argv[3];
        int argc = 0;
        argv[argc++] = "AUTH";
        if (r->username != NULL)
            argv[argc++] = r->username;
        argv[argc++] = r->password;
        r->handshake_left++;
        rk__redis_cmd(r, on_handshake_reply, (void *)"AUTH", 0, argc, argv, NULL);
    }
    if (r->opts.db != 0) {
        const char *argv[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", r->opts.db);
        r->handshake_left++;
        rk__redis_cmd(r, on_handshake_reply, (void *)"SELECT", 0, 2, argv, NULL);
    }
    (void)ac;
    if (r->handshake_left == 0)
        became_ready(r);
}

/* ===================================================================
 * Connecting, backoff, watchdog
 * =================================================================== */

static uint64_t next_rand(rk_redis *r)
{
    /* xorshift64*: enough for jitter. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * UINT64_C(2685821657736338717);
}

static void start_connect(rk_redis *r)
{
    redisAsyncContext *ac;

    if (r->state == ST_CLOSED)
        return;
    ac = redisAsyncConnect(r->host, r->opts.port);
    if (ac == NULL) {
        rlog(r, RK_LOG_ERR, "connect: out of memory");
        set_state(r, ST_WAIT);
        schedule_retry(r);
        return;
    }
    if (ac->err) {
        rlog(r, RK_LOG_WARNING, "connect failed: %s", ac->errstr);
        redisAsyncFree(ac);
        set_state(r, ST_WAIT);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    if (ev_attach(r->loop, ac) != 0) {
        rlog(r, RK_LOG_ERR, "connect: cannot attach to the loop");
        redisAsyncFree(ac);
        set_state(r, ST_WAIT);
        schedule_retry(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->inflight = 0;
    set_state(r, ST_CONNECTING);
}

static void on_retry_timer(uv_timer_t *t)
{
    rk_redis *r = t->data;

    if (r->drop_pending) {
        r->drop_pending = 0;
        if (r->ac != NULL) {
            redisAsyncContext *ac = r->ac;
            /* Runs pending callbacks with NULL and, for a connected
             * context, on_disconnect (which schedules the retry). A context
             * still connecting gets no disconnect callback. */
            redisAsyncFree(ac);
            if (r->ac == ac)
                connection_lost(r);
            return;
        }
        if (r->state == ST_WAIT)
            schedule_retry(r);
        return;
    }
    start_connect(r);
}

static void schedule_retry(rk_redis *r)
{
    int64_t cap = r->opts.backoff_min_ms, delay;
    int i;

    for (i = 0; i < r->attempt && cap < r->opts.backoff_max_ms; i++)
        cap *= 2;
    if (cap > r->opts.backoff_max_ms)
        cap = r->opts.backoff_max_ms;
    /* Jitter: uniformly in [cap/2, cap]. */
    delay = cap / 2 + (int64_t)(next_rand(r) % (uint64_t)(cap / 2 + 1));
    r->attempt++;
    r->reconnects++;
    uv_timer_start(&r->retry_timer, on_retry_timer, (uint64_t)delay, 0);
}

static void on_watchdog(uv_timer_t *t)
{
    rk_redis *r = t->data;
    int64_t now = (int64_t)uv_now(r->loop);

    if ((r->state == ST_CONNECTING || r->state == ST_HANDSHAKE) &&
        now - r->state_since > r->opts.connect_timeout_ms) {
        rk__redis_drop(r, "connect timed out");
    } else if (r->state == ST_READY && r->inflight > 0 &&
               now - r->last_reply > r->opts.reply_timeout_ms + r->deadline_extra) {
        rk__redis_drop(r, "no reply in time");
    }
}

/* ===================================================================
 * Public
 * =================================================================== */

rk_redis *rk__redis_new(uv_loop_t *loop, const rk_redis_opts *opts,
                        rk_redis_state_cb *state_cb, void *ud)
{
    rk_redis *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->opts = *opts;
    r->host = strdup(opts->host);
    r->name = strdup(opts->name ? opts->name : "redis");
    r->username = opts->username ? strdup(opts->username) : NULL;
    r->password = opts->password ? strdup(opts->password) : NULL;
    if (r->host == NULL || r->name == NULL ||
        (opts->username && r->username == NULL) ||
        (opts->password && r->password == NULL)) {
        free(r->host); free(r->name); free(r->username); free(r->password);
        free(r);
        return NULL;
    }
    r->opts.host = r->host;
    r->opts.name = r->name;
    r->opts.username = r->username;
    r->opts.password = r->password;
    if (r->opts.connect_timeout_ms <= 0) r->opts.connect_timeout_ms = 5000;
    if (r->opts.reply_timeout_ms <= 0) r->opts.reply_timeout_ms = 10000;
    if (r->opts.backoff_min_ms <= 0) r->opts.backoff_min_ms = 100;
    if (r->opts.backoff_max_ms < r->opts.backoff_min_ms) r->opts.backoff_max_ms = 5000;
    r->state_cb = state_cb;
    r->ud = ud;
    r->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)r;
    if (r->rng == 0) r->rng = 1;
    uv_timer_init(loop, &r->retry_timer);
    uv_timer_init(loop, &r->watchdog);
    r->retry_timer.data = r;
    r->watchdog.data = r;
    r->handles_open = 2;
    uv_timer_start(&r->watchdog, on_watchdog, 250, 250);
    start_connect(r);
    return r;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    pending_cmd *pc = privdata;
    rk_redis *r = pc->r;

    (void)ac;
    if (r->inflight > 0)
        r->inflight--;
    if (r->inflight == 0)
        r->deadline_extra = 0;
    r->last_reply = (int64_t)uv_now(r->loop);
    if (pc->cb)
        pc->cb(r, reply, pc->privdata);
    else if (reply != NULL && ((redisReply *)reply)->type == REDIS_REPLY_ERROR)
        rlog(r, RK_LOG_ERR, "command failed: %s", ((redisReply *)reply)->str);
    free(pc);
}

int rk__redis_cmd(rk_redis *r, rk_redis_reply_cb *cb, void *privdata,
                  int64_t extra_timeout_ms, int argc, const char **argv,
                  const size_t *argvlen)
{
    pending_cmd *pc;

    if (r == NULL || r->ac == NULL || (r->state != ST_READY && r->state != ST_HANDSHAKE) ||
        r->drop_pending)
        return -1;
    pc = malloc(sizeof(*pc));
    if (pc == NULL)
        return -1;
    pc->r = r;
    pc->cb = cb;
    pc->privdata = privdata;
    if (redisAsyncCommandArgv(r->ac, on_reply, pc, argc, argv, argvlen) != REDIS_OK) {
        free(pc);
        return -1;
    }
    if (r->inflight == 0)
        r->last_reply = (int64_t)uv_now(r->loop);
    r->inflight++;
    if (extra_timeout_ms > r->deadline_extra)
        r->deadline_extra = extra_timeout_ms;
    return 0;
}

int rk__redis_ready(const rk_redis *r)
{
    return r != NULL && r->state == ST_READY && !r->drop_pending;
}

int rk__redis_inflight(const rk_redis *r)
{
    return r->inflight;
}

uint64_t rk__redis_reconnects(const rk_redis *r)
{
    return r ? r->reconnects : 0;
}

void rk__redis_drop(rk_redis *r, const char *why)
{
    if (r->state == ST_CLOSED || r->drop_pending)
        return;
    if (why != NULL)
        rlog(r, RK_LOG_WARNING, "dropping connection: %s", why);
    r->drop_pending = 1;
    uv_timer_start(&r->retry_timer, on_retry_timer, 0, 0);
}

static void timer_closed(uv_handle_t *h)
{
    rk_redis *r = h->data;
    if (--r->handles_open == 0) {
        free(r->host); free(r->name); free(r->username); free(r->password);
        free(r);
    }
}

void rk__redis_close(rk_redis *r)
{
    if (r == NULL || r->state == ST_CLOSED)
        return;
    set_state(r, ST_CLOSED);
    if (r->ac != NULL) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        ac->data = NULL;            /* callbacks after this ignore us */
        redisAsyncFree(ac);
    }
    uv_timer_stop(&r->watchdog);
    uv_timer_stop(&r->retry_timer);
    uv_close((uv_handle_t *)&r->retry_timer, timer_closed);
    uv_close((uv_handle_t *)&r->watchdog, timer_closed);
}
