/* redis.c - one Redis connection on the libuv loop.
 *
 * hiredis 0.14.1 does the protocol; this file does the rest:
 *
 *  - Our own libuv adapter (adapter.c) on the public ac->ev hooks. The adapter shipped
 *    with hiredis 0.14 returns early when uv_poll reports an error status,
 *    so a refused or reset connection can produce no callback at all and
 *    the daemon hangs. Here an error status is treated as readable and
 *    writable, so hiredis itself notices the error and calls us back.
 *    uv_poll_start is called only when the interest changes (each call
 *    costs an epoll_ctl, and hiredis asks for reads again after every
 *    write). Writing a loop turn's commands from a uv_prepare handle
 *    instead of waiting for a writable event was tried and taken out: the
 *    p50 XADD -> channel latency at 5k ev/s was worse in interleaved runs
 *    (tests/bench/RESULTS.md).
 *  - Connect, then AUTH (password, or username + password) and SELECT,
 *    pipelined; the connection is "ready" only when both succeeded.
 *  - Reconnect with capped exponential backoff and full jitter.
 *  - A watchdog: hiredis has no timeouts, so a uv_timer checks that a
 *    connect finishes within connect_timeout and that, while commands are
 *    in flight, a reply arrives within reply_timeout (+ the BLOCK time of a
 *    blocking read). Otherwise the connection is dropped and reconnected;
 *    every pending callback then runs with a NULL reply.
 *
 * Where to connect is not decided here: the connection holds one resolver
 * (conn.h: static address, Sentinel or Cluster, chosen once by
 * resolvers.c from the options) and asks it before EVERY connect attempt.
 * The resolver may ask a server first (state ST_RESOLVING, timed by the
 * watchdog within RK__RESOLVE_TIMEOUT_MS), add handshake commands (ROLE),
 * keep copies of the commands in flight and look at every reply first
 * (Cluster: MOVED, ASK); this file calls it only through its table.
 *
 * Lifetime rules (from hiredis): a context must never be freed inside one
 * of its own callbacks, so rk__redis_drop() only marks the connection and a
 * zero-delay timer frees it from the loop. hiredis frees the context itself
 * after a failed connect or a lost connection; our cleanup hook forgets it
 * then. The adapter's uv_poll_t is freed in its close callback, never
 * before libuv is done with it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "conn.h"

static void schedule_retry(rk__redis *r);
static void start_connect(rk__redis *r);

/* ===================================================================
 * Replies in an arena (opts.reply_arena)
 * =================================================================== */

/* hiredis builds a reply node by node through the reader's object
 * functions, hands the finished reply to its callback and then calls
 * freeObject on it: per node a calloc (and a malloc per string, a calloc
 * per array) and as many frees - for a batch of 500 entries several
 * thousand. These functions cut every node from the connection's arena
 * (reader->privdata; hiredis copies it into every task) and freeObject,
 * which hiredis calls only on a reply's root (after the callback, or on a
 * half-built reply when the reader fails or is freed), rewinds the arena.
 * One reply is built at a time (the next only after the previous root was
 * freed), so the rewind never drops a live node. The root carries the
 * arena's address in a header before it, since freeObject gets nothing
 * else. The arena belongs to the rk__redis, not the context: hiredis frees
 * its reader, and with it a half-built reply, after our disconnect
 * callback. */

#define RA_HDR (sizeof(max_align_t))

static redisReply *ra_node(const redisReadTask *task, int type)
{
    rk__arena *a = task->privdata;
    unsigned char *p;
    redisReply *r;

    if (task->parent == NULL) {
        if ((p = rk__arena_alloc(a, RA_HDR + sizeof(*r))) == NULL)
            return NULL;
        memcpy(p, &a, sizeof(a));
        r = (redisReply *)(void *)(p + RA_HDR);
    } else if ((r = rk__arena_alloc(a, sizeof(*r))) == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *ra_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r;
    char *buf;

    if (len >= SIZE_MAX / 2 ||
        (buf = rk__arena_alloc(task->privdata, len + 1)) == NULL ||
        (r = ra_node(task, task->type)) == NULL)
        return NULL;
    memcpy(buf, str, len);
    buf[len] = '\0';
    r->str = buf;
    r->len = len;
    return r;
}

static void *ra_array(const redisReadTask *task, int elements)
{
    redisReply *r;
    redisReply **el = NULL;

    if (elements > 0 &&
        (el = rk__arena_alloc(task->privdata, (size_t)elements * sizeof(*el))) == NULL)
        return NULL;
    if ((r = ra_node(task, REDIS_REPLY_ARRAY)) == NULL)
        return NULL;
    if (el != NULL)
        memset(el, 0, (size_t)elements * sizeof(*el));
    r->element = el;
    r->elements = elements > 0 ? (size_t)elements : 0;
    return r;
}

static void *ra_integer(const redisReadTask *task, long long value)
{
    redisReply *r = ra_node(task, REDIS_REPLY_INTEGER);
    if (r != NULL)
        r->integer = value;
    return r;
}

static void *ra_nil(const redisReadTask *task)
{
    return ra_node(task, REDIS_REPLY_NIL);
}

static void ra_free(void *reply)
{
    rk__arena *a;

    memcpy(&a, (unsigned char *)reply - RA_HDR, sizeof(a));
    rk__arena_rewind(a, false);
}

static redisReplyObjectFunctions ra_functions = {
    ra_string, ra_array, ra_integer, ra_nil, ra_free
};

/* ===================================================================
 * State changes
 * =================================================================== */

static void set_state(rk__redis *r, rk__conn_state st)
{
    r->state = st;
    r->state_since = (int64_t)uv_now(r->loop);
}

void rk__conn_log(rk__redis *r, rk_log_level level, const char *fmt, ...)
{
    char prefix[320];
    va_list ap;
    snprintf(prefix, sizeof(prefix), "redis %s %s:%d: ", r->name, r->cur_host, r->cur_port);
    va_start(ap, fmt);
    rk__vlog(level, prefix, fmt, ap);
    va_end(ap);
}

/* The connection is gone (hiredis already freed, or is freeing, the
 * context): tell the owner, then schedule a reconnect. */
static void connection_lost(rk__redis *r)
{
    int was_ready = r->state == ST_READY;

    r->ac = NULL;
    r->inflight = 0;
    r->deadline_extra = 0;
    if (r->state == ST_CLOSED)
        return;
    set_state(r, ST_WAIT);
    if (r->res->lost)
        r->res->lost(r);            /* its commands (ASK) get NULL too */
    r->inflight = 0;
    if (was_ready && r->state_cb)
        r->state_cb(r, 0, r->ud);
    if (r->state != ST_CLOSED)
        schedule_retry(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rk__redis *r = ac->data;
    if (r == NULL)
        return;
    if (r->state != ST_CLOSED)
        rk__conn_log(r, RK_LOG_WARNING, "connection lost: %s",
                     status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
    connection_lost(r);
}

static void became_ready(rk__redis *r)
{
    set_state(r, ST_READY);
    if (r->attempt > 0 || r->reconnects > 0)
        rk__conn_log(r, RK_LOG_NOTICE, "connected");
    else
        rk__conn_log(r, RK_LOG_INFO, "connected");
    r->attempt = 0;
    r->last_reply = (int64_t)uv_now(r->loop);
    if (r->state_cb)
        r->state_cb(r, 1, r->ud);
}

static void on_handshake_reply(rk__redis *r, struct redisReply *reply, void *pd)
{
    const char *what = pd;
    if (reply == NULL || r->state != ST_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        rk__conn_log(r, RK_LOG_ERR, "%s refused: %s", what, reply->str);
        r->handshake_left = -1;
        rk__redis_drop(r, NULL);
        return;
    }
    if (--r->handshake_left == 0)
        became_ready(r);
}

int rk__conn_auth_argv(const rk__redis *r, const char *argv[3])
{
    int argc = 0;
    argv[argc++] = "AUTH";
    if (r->username != NULL)
        argv[argc++] = r->username;
    argv[argc++] = r->password;
    return argc;
}

void rk__conn_handshake_ok(rk__redis *r)
{
    if (--r->handshake_left == 0)
        became_ready(r);
}

void rk__conn_handshake_failed(rk__redis *r)
{
    r->handshake_left = -1;
    rk__redis_drop(r, NULL);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    rk__redis *r = cac->data;
    redisAsyncContext *ac;
    char db[16];

    if (r == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        rk__conn_log(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
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
        int argc = rk__conn_auth_argv(r, argv);
        r->handshake_left++;
        rk__redis_cmd(r, on_handshake_reply, (void *)"AUTH", 0, argc, argv, NULL);
    }
    if (r->opts.db != 0) {
        const char *argv[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", r->opts.db);
        r->handshake_left++;
        rk__redis_cmd(r, on_handshake_reply, (void *)"SELECT", 0, 2, argv, NULL);
    }
    if (r->res->handshake)
        r->handshake_left += r->res->handshake(r);
    (void)ac;
    if (r->handshake_left == 0)
        became_ready(r);
}

/* ===================================================================
 * Connecting, backoff, watchdog
 * =================================================================== */

static uint64_t next_rand(rk__redis *r)
{
    /* xorshift64*: enough for jitter. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * UINT64_C(2685821657736338717);
}

void rk__conn_connect(rk__redis *r)
{
    redisAsyncContext *ac;

    if (r->state == ST_CLOSED)
        return;
    ac = redisAsyncConnect(r->cur_host, r->cur_port);
    if (ac == NULL) {
        rk__conn_log(r, RK_LOG_ERR, "connect: out of memory");
        set_state(r, ST_WAIT);
        schedule_retry(r);
        return;
    }
    if (ac->err) {
        rk__conn_log(r, RK_LOG_WARNING, "connect failed: %s", ac->errstr);
        redisAsyncFree(ac);
        set_state(r, ST_WAIT);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    if (r->opts.reply_arena) {
        ac->c.reader->fn = &ra_functions;
        ac->c.reader->privdata = &r->arena;
    }
    if (rk__redis_attach(r->loop, ac) != 0) {
        rk__conn_log(r, RK_LOG_ERR, "connect: cannot attach to the loop");
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

/* ===================================================================
 * Commands in flight (for the watchdog)
 * =================================================================== */

/* A command of r went out, on its connection or the ASK target's; the
 * watchdog waits extra_timeout_ms longer for it (a BLOCK). */
void rk__conn_count_sent(rk__redis *r, int64_t extra_timeout_ms)
{
    if (r->inflight == 0)
        r->last_reply = (int64_t)uv_now(r->loop);
    r->inflight++;
    if (extra_timeout_ms > r->deadline_extra)
        r->deadline_extra = extra_timeout_ms;
}

/* A command of r was answered (or given up). */
void rk__conn_count_answered(rk__redis *r)
{
    if (r->inflight > 0)
        r->inflight--;
    if (r->inflight == 0)
        r->deadline_extra = 0;
    r->last_reply = (int64_t)uv_now(r->loop);
}

/* ===================================================================
 * Connecting
 * =================================================================== */

/* Before every connect attempt: ask the resolver. */
static void start_connect(rk__redis *r)
{
    if (r->state == ST_CLOSED)
        return;
    r->res->resolve(r);
}

static void on_retry_timer(uv_timer_t *t)
{
    rk__redis *r = t->data;

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

static void schedule_retry(rk__redis *r)
{
    int64_t cap = r->opts.backoff_min_ms, delay;
    int i, steps = r->attempt > r->redirects ? r->attempt : r->redirects;

    for (i = 0; i < steps && cap < r->opts.backoff_max_ms; i++)
        cap *= 2;
    if (cap > r->opts.backoff_max_ms)
        cap = r->opts.backoff_max_ms;
    /* Jitter: uniformly in [cap/2, cap]. */
    delay = cap / 2 + (int64_t)(next_rand(r) % (uint64_t)(cap / 2 + 1));
    if (r->retry_now) {             /* after a MOVED: the map is asked again */
        r->retry_now = 0;
        delay = 0;
    }
    r->attempt++;
    r->reconnects++;
    uv_timer_start(&r->retry_timer, on_retry_timer, (uint64_t)delay, 0);
}

void rk__conn_resolving(rk__redis *r)
{
    set_state(r, ST_RESOLVING);
}

void rk__conn_failed(rk__redis *r)
{
    set_state(r, ST_WAIT);
    schedule_retry(r);
}

void rk__conn_retry_now(rk__redis *r)
{
    uv_timer_start(&r->retry_timer, on_retry_timer, 0, 0);
}

static void on_watchdog(uv_timer_t *t)
{
    rk__redis *r = t->data;
    int64_t now = (int64_t)uv_now(r->loop);

    if (r->state == ST_RESOLVING &&
        now - r->state_since > (r->opts.connect_timeout_ms < RK__RESOLVE_TIMEOUT_MS
                                ? r->opts.connect_timeout_ms : RK__RESOLVE_TIMEOUT_MS)) {
        if (r->res->timeout)
            r->res->timeout(r);
    } else if ((r->state == ST_CONNECTING || r->state == ST_HANDSHAKE) &&
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

static void free_conn(rk__redis *r)
{
    free(r->host); free(r->name); free(r->username); free(r->password);
    free(r->cur_host);
    if (r->res->free)
        r->res->free(r);
    rk__arena_rewind(&r->arena, true);
    free(r);
}

rk__redis *rk__conn_new(uv_loop_t *loop, const rk__redis_opts *opts, const rk__resolver *res,
                       rk__redis_state_cb *state_cb, void *ud)
{
    rk__redis *r;

    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->res = res;
    r->loop = loop;
    r->opts = *opts;
    r->host = strdup(opts->host);
    r->cur_host = strdup(opts->host);
    r->cur_port = opts->port;
    r->name = strdup(opts->name ? opts->name : "redis");
    r->username = opts->username ? strdup(opts->username) : NULL;
    r->password = opts->password ? strdup(opts->password) : NULL;
    if (r->host == NULL || r->cur_host == NULL || r->name == NULL ||
        (opts->username && r->username == NULL) ||
        (opts->password && r->password == NULL) ||
        (res->init != NULL && res->init(r, opts) != 0)) {
        free_conn(r);
        return NULL;
    }
    r->opts.host = r->host;
    r->opts.name = r->name;
    r->opts.username = r->username;
    r->opts.password = r->password;
    /* What the resolver needs of these it copied. */
    r->opts.sentinels = NULL;
    r->opts.master_name = NULL;
    r->opts.cluster_seeds = NULL;
    if (r->opts.connect_timeout_ms <= 0) r->opts.connect_timeout_ms = 5000;
    if (r->opts.reply_timeout_ms <= 0) r->opts.reply_timeout_ms = 10000;
    if (r->opts.backoff_min_ms <= 0) r->opts.backoff_min_ms = 100;
    if (r->opts.backoff_max_ms < r->opts.backoff_min_ms) r->opts.backoff_max_ms = 5000;
    r->state_cb = state_cb;
    r->ud = ud;
    /* A batch of 500 entries takes a few hundred KiB: keep that. */
    r->arena.min = (size_t)64 * 1024;
    r->arena.keep_max = (size_t)4 * 1024 * 1024;
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

void rk__conn_deliver(rk__pending_cmd *pc, redisReply *reply)
{
    if (pc->cb)
        pc->cb(pc->r, reply, pc->privdata);
    else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        rk__conn_log(pc->r, RK_LOG_ERR, "command failed: %s", reply->str);
    free(pc);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rk__pending_cmd *pc = privdata;
    rk__redis *r = pc->r;
    redisReply *rep = reply;

    (void)ac;
    rk__conn_count_answered(r);
    if (r->res->reply && r->res->reply(r, pc, &rep))
        return;                     /* the resolver took pc over */
    rk__conn_deliver(pc, rep);
}

/* A pending command for cb/privdata; when the resolver keeps commands,
 * with a copy of the command (argv, argvlen and the bytes in the same
 * allocation). */
static rk__pending_cmd *pc_new(rk__redis *r, rk__redis_reply_cb *cb, void *privdata,
                           int64_t extra_timeout_ms, int argc, const char **argv,
                           const size_t *argvlen)
{
    size_t size = sizeof(rk__pending_cmd), bytes = 0, len;
    rk__pending_cmd *pc;
    char *p;
    int i;

    if (r->res->keeps_commands) {
        for (i = 0; i < argc; i++)
            bytes += argvlen ? argvlen[i] : strlen(argv[i]);
        size += (size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes;
    }
    if ((pc = malloc(size)) == NULL)
        return NULL;
    memset(pc, 0, sizeof(*pc));
    pc->r = r;
    pc->cb = cb;
    pc->privdata = privdata;
    pc->extra_timeout_ms = extra_timeout_ms;
    if (!r->res->keeps_commands)
        return pc;
    pc->argc = argc;
    pc->argv = (const char **)(void *)(pc + 1);
    pc->argvlen = (size_t *)(pc->argv + argc);
    p = (char *)(pc->argvlen + argc);
    for (i = 0; i < argc; i++) {
        len = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(p, argv[i], len);
        pc->argv[i] = p;
        pc->argvlen[i] = len;
        p += len;
    }
    pc->is_wait = argc >= 1 && pc->argvlen[0] == 4 && strncasecmp(pc->argv[0], "WAIT", 4) == 0;
    return pc;
}

int rk__redis_cmd(rk__redis *r, rk__redis_reply_cb *cb, void *privdata,
                  int64_t extra_timeout_ms, int argc, const char **argv,
                  const size_t *argvlen)
{
    rk__pending_cmd *pc;

    if (r == NULL || r->ac == NULL || (r->state != ST_READY && r->state != ST_HANDSHAKE) ||
        r->drop_pending)
        return -1;
    if ((pc = pc_new(r, cb, privdata, extra_timeout_ms, argc, argv, argvlen)) == NULL)
        return -1;
    if (redisAsyncCommandArgv(r->ac, on_reply, pc, argc, argv, argvlen) != REDIS_OK) {
        free(pc);
        return -1;
    }
    if (r->res->sent)
        r->res->sent(r, pc);
    rk__conn_count_sent(r, extra_timeout_ms);
    return 0;
}

void rk__redis_flush(rk__redis *r)
{
    int done;

    /* redisBufferWrite, not redisAsyncHandleWrite: on an error the latter
     * frees the context, which inside one of its own callbacks would pull
     * it from under hiredis. Here an error stays in the context and the
     * writable event, still armed, lets hiredis handle it from the loop. */
    if (r != NULL && r->ac != NULL && (r->ac->c.flags & REDIS_CONNECTED) && !r->ac->c.err &&
        !r->drop_pending)
        (void)redisBufferWrite(&r->ac->c, &done);
}

int rk__redis_ready(const rk__redis *r)
{
    return r != NULL && r->state == ST_READY && !r->drop_pending;
}

int rk__redis_inflight(const rk__redis *r)
{
    return r->inflight;
}

uint64_t rk__redis_reconnects(const rk__redis *r)
{
    return r ? r->reconnects : 0;
}

void rk__redis_drop(rk__redis *r, const char *why)
{
    if (r->state == ST_CLOSED || r->drop_pending)
        return;
    if (why != NULL)
        rk__conn_log(r, RK_LOG_WARNING, "dropping connection: %s", why);
    r->drop_pending = 1;
    uv_timer_start(&r->retry_timer, on_retry_timer, 0, 0);
}

static void timer_closed(uv_handle_t *h)
{
    rk__redis *r = h->data;
    if (--r->handles_open == 0)
        free_conn(r);
}

void rk__redis_close(rk__redis *r)
{
    if (r == NULL || r->state == ST_CLOSED)
        return;
    set_state(r, ST_CLOSED);
    if (r->res->close)
        r->res->close(r);
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

void rk__redis_addr(const rk__redis *r, const char **host, int *port)
{
    *host = r->cur_host;
    *port = r->cur_port;
}
