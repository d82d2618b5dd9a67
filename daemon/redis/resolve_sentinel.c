/* daemon/redis/resolve_sentinel.c - the Redis Sentinel resolver.
 *
 * In Sentinel mode (redis.sentinels set) a connection asks this resolver
 * before EVERY connect attempt; it asks the sentinels "SENTINEL
 * get-master-addr-by-name <master>" on a short-lived context of its own
 * (adapter.c, RK__RESOLVE_TIMEOUT_MS through the connection's watchdog),
 * one sentinel at a time in rotation, starting with the last one that
 * answered; when none answers the connection backs off like after any
 * failed connect. The connection goes to the address it got and, after
 * AUTH and SELECT, sends ROLE (the handshake hook): it becomes ready only
 * when ROLE's first element is "master"; otherwise it logs, drops, backs
 * off and asks again.
 *
 * That alone follows a failover once the old master's connections break.
 * A master that fails over while it stays reachable (SENTINEL FAILOVER, a
 * partition healed the wrong way) breaks nothing, so this file also keeps
 * ONE process-wide subscription to a sentinel:
 *
 *   SUBSCRIBE +switch-master
 *   -> "message" "+switch-master" "<master> <old ip> <old port> <new ip> <new port>"
 *
 * and makes each live sentinel-mode connection of that master that is not
 * already on the new address reconnect, and so resolve again
 * (sentinel_switch). The live sentinel-mode connections are kept in a
 * static list; the watcher starts with the first of them and stops with
 * the last. It uses its own hiredis async context on adapter.c's libuv
 * adapter (rk__redis_attach). A connect that fails,
 * a SUBSCRIBE not confirmed within WATCH_TIMEOUT_MS, or a lost connection
 * moves it to the next sentinel of the list after a backoff that doubles
 * from 100 ms to 5 s (drawn uniformly from [cap/2, cap]); a confirmed
 * subscription resets the backoff. The watcher is a fast path only: a
 * sentinel that hangs without closing the connection is not noticed (a
 * subscribed RESP2 connection cannot be pinged through hiredis 0.14), but
 * connections still re-resolve whenever they reconnect.
 *
 * Single loop thread: the watcher is one static pointer, the list one
 * static head. Lifetime: a context is never freed inside its own
 * callbacks; when we abandon one (timeout, stop, close) we clear ac->data
 * first, so the callbacks hiredis runs while freeing it are ignored. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

#define WATCH_TIMEOUT_MS 2000
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 5000

/* ===================================================================
 * The +switch-master watcher
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
} watcher;

static watcher *W;

static void w_connect(watcher *w);
static void sentinel_switch(const char *master, const char *host, int port);

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
    sentinel_switch(tok[0], tok[3], port);
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

/* Start the process-wide watcher: ONE connection to a sentinel of the list
 * (copied), rotating through it on failure and reconnecting with backoff.
 * Does nothing when it already runs. Returns 0, or -1 when memory runs
 * out. */
static int watch_start(uv_loop_t *loop, char *const *sentinels, size_t n)
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

/* Stop the watcher (its memory is freed once libuv closed its timer). */
static void watch_stop(void)
{
    watcher *w = W;

    if (w == NULL)
        return;
    W = NULL;
    w_abandon(w);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, w_closed);
}

/* ===================================================================
 * The resolver: asking for the master
 * =================================================================== */

/* A sentinel-mode connection's state (r->rs). */
typedef struct sentinel {
    rk__redis *r;
    char **sentinels;               /* "host:port", copied */
    size_t n_sentinels;
    char *master_name;
    size_t sent_first;              /* the last sentinel that answered */
    size_t sent_tries;              /* sentinels asked in this round */
    size_t sent_cur;                /* the one asked now */
    redisAsyncContext *sac;         /* its context */
    struct sentinel *next, *prev;   /* live sentinel-mode connections */
} sentinel;

/* The live sentinel-mode connections (single loop thread). */
static sentinel *sentinel_conns;

static void resolve_next(rk__redis *r);

/* Give up the query in flight (never inside its callbacks). */
static void query_abandon(sentinel *s)
{
    redisAsyncContext *ac = s->sac;
    if (ac == NULL)
        return;
    s->sac = NULL;
    ac->data = NULL;                /* its callbacks now ignore us */
    redisAsyncFree(ac);
}

/* The answer to SENTINEL get-master-addr-by-name: [ip, port], nil when
 * the sentinel does not know the master, NULL when the connection failed
 * or was lost (hiredis is then freeing the context). */
static void on_sentinel_reply(redisAsyncContext *ac, void *rep, void *pd)
{
    rk__redis *r = ac->data;
    sentinel *s = r != NULL ? r->rs : NULL;
    redisReply *reply = rep;
    const char *who;
    long port = 0;
    char *host;

    (void)pd;
    if (r == NULL || s->sac != ac)
        return;                     /* abandoned */
    s->sac = NULL;
    ac->data = NULL;
    who = s->sentinels[s->sent_cur];
    if (reply != NULL)
        redisAsyncDisconnect(ac);   /* freed once this callback returns */
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        reply->element[0]->len > 0 && reply->element[0]->len < 256) {
        char *end;
        port = strtol(reply->element[1]->str, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535)
            port = 0;
    }
    if (port == 0) {
        if (reply == NULL)
            rk__conn_log(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
                         "sentinel %s: %s", who, ac->errstr[0] ? ac->errstr : "connection lost");
        else if (reply->type == REDIS_REPLY_ERROR)
            rk__conn_log(r, RK_LOG_WARNING, "sentinel %s: %s", who, reply->str);
        else if (reply->type == REDIS_REPLY_NIL)
            rk__conn_log(r, RK_LOG_WARNING, "sentinel %s does not know master %s", who,
                         s->master_name);
        else
            rk__conn_log(r, RK_LOG_WARNING, "sentinel %s: unexpected answer", who);
        resolve_next(r);
        return;
    }
    s->sent_first = s->sent_cur;
    if (strcmp(reply->element[0]->str, r->cur_host) != 0 || port != r->cur_port) {
        if ((host = strdup(reply->element[0]->str)) == NULL) {
            rk__conn_log(r, RK_LOG_ERR, "sentinel answer: out of memory");
            rk__conn_failed(r);
            return;
        }
        free(r->cur_host);
        r->cur_host = host;
        r->cur_port = (int)port;
        rk__conn_log(r, RK_LOG_NOTICE, "sentinel %s: master %s is here", who, s->master_name);
    }
    rk__conn_connect(r);
}

/* Ask the next sentinel of this round; when every one was asked, back off
 * and start a new round later. */
static void resolve_next(rk__redis *r)
{
    sentinel *s = r->rs;
    char host[256];
    int port;

    while (s->sent_tries < s->n_sentinels) {
        size_t i = (s->sent_first + s->sent_tries++) % s->n_sentinels;
        redisAsyncContext *ac;

        if (rk__parse_addr(s->sentinels[i], host, sizeof(host), &port) != 0)
            continue;               /* config.c refuses these */
        ac = redisAsyncConnect(host, port);
        if (ac == NULL)
            break;
        if (ac->err) {
            rk__conn_log(r, RK_LOG_INFO, "sentinel %s: %s", s->sentinels[i], ac->errstr);
            redisAsyncFree(ac);
            continue;
        }
        if (rk__redis_attach(r->loop, ac) != 0) {
            redisAsyncFree(ac);
            break;
        }
        ac->data = r;
        if (redisAsyncCommand(ac, on_sentinel_reply, NULL,
                              "SENTINEL get-master-addr-by-name %s",
                              s->master_name) != REDIS_OK) {
            ac->data = NULL;
            redisAsyncFree(ac);
            break;
        }
        s->sac = ac;
        s->sent_cur = i;
        rk__conn_resolving(r);
        return;
    }
    rk__conn_log(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
                 "no sentinel gave the address of master %s", s->master_name);
    rk__conn_failed(r);
}

/* The handshake hook's ROLE: the connection is ready only when the server says it is
 * the master; a replica (a stale answer, a failover under way) is dropped
 * and the sentinels are asked again after the backoff. */
static void on_role_reply(rk__redis *r, struct redisReply *reply, void *pd)
{
    const sentinel *s = r->rs;

    (void)pd;
    if (reply == NULL || r->state != ST_HANDSHAKE || r->handshake_left < 0)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") == 0) {
        rk__conn_handshake_ok(r);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        rk__conn_log(r, RK_LOG_ERR, "ROLE refused: %s", reply->str);
    else
        rk__conn_log(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
                     "not the master of %s (ROLE: %s); asking the sentinels again",
                     s->master_name,
                     reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                     reply->element[0]->type == REDIS_REPLY_STRING ? reply->element[0]->str : "?");
    rk__conn_handshake_failed(r);
}

static void sentinel_resolve(rk__redis *r)
{
    sentinel *s = r->rs;
    s->sent_tries = 0;
    resolve_next(r);
}

static void sentinel_timeout(rk__redis *r)
{
    sentinel *s = r->rs;
    rk__conn_log(r, RK_LOG_WARNING, "sentinel %s: no answer in time", s->sentinels[s->sent_cur]);
    query_abandon(s);
    resolve_next(r);
}

static int sentinel_handshake(rk__redis *r)
{
    const char *argv[1] = {"ROLE"};
    /* Counted even if it could not be sent: the handshake then times out. */
    (void)rk__redis_cmd(r, on_role_reply, NULL, 0, 1, argv, NULL);
    return 1;
}

/* init: copy the sentinels and the master's name; the first sentinel-mode
 * connection starts the +switch-master watcher. */
static int sentinel_init(rk__redis *r, const rk__redis_opts *opts)
{
    sentinel *s;
    size_t i;

    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -1;
    r->rs = s;
    s->r = r;
    s->master_name = strdup(opts->master_name ? opts->master_name : "mymaster");
    s->sentinels = calloc(opts->n_sentinels, sizeof(*s->sentinels));
    if (s->master_name == NULL || s->sentinels == NULL)
        return -1;
    for (i = 0; i < opts->n_sentinels; i++) {
        if ((s->sentinels[i] = strdup(opts->sentinels[i])) == NULL)
            return -1;
        s->n_sentinels = i + 1;
    }
    if (sentinel_conns == NULL && watch_start(r->loop, s->sentinels, s->n_sentinels) != 0)
        rk__conn_log(r, RK_LOG_ERR, "cannot start the +switch-master watcher: out of memory");
    s->next = sentinel_conns;
    if (sentinel_conns != NULL)
        sentinel_conns->prev = s;
    sentinel_conns = s;
    return 0;
}

/* close: give up the query, leave the list; the last one stops the
 * watcher. */
static void sentinel_close(rk__redis *r)
{
    sentinel *s = r->rs;

    query_abandon(s);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        sentinel_conns = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    if (sentinel_conns == NULL)
        watch_stop();
}

static void sentinel_free(rk__redis *r)
{
    sentinel *s = r->rs;
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n_sentinels; i++)
        free(s->sentinels[i]);
    free(s->sentinels);
    free(s->master_name);
    free(s);
    r->rs = NULL;
}

const rk__resolver rk__resolver_sentinel = {
    .name = "sentinel",
    .init = sentinel_init,
    .resolve = sentinel_resolve,
    .timeout = sentinel_timeout,
    .handshake = sentinel_handshake,
    .close = sentinel_close,
    .free = sentinel_free,
};

/* Sentinel announced "+switch-master <master> ... <host> <port>": every
 * live sentinel-mode connection of that master that is not already on
 * host:port reconnects at once (resolving again through the sentinels). */
static void sentinel_switch(const char *master, const char *host, int port)
{
    sentinel *s, *next;

    for (s = sentinel_conns; s != NULL; s = next) {
        rk__redis *r = s->r;

        next = s->next;
        if (strcmp(s->master_name, master) != 0)
            continue;
        switch (r->state) {
        case ST_WAIT:
            /* Waiting out a backoff: the new master is known to be up. */
            if (!r->drop_pending)
                rk__conn_retry_now(r);
            break;
        case ST_RESOLVING:
            break;                  /* the answer is on its way */
        case ST_CONNECTING:
        case ST_HANDSHAKE:
        case ST_READY:
            if (host != NULL && port == r->cur_port && strcmp(host, r->cur_host) == 0)
                break;              /* already there */
            rk__redis_drop(r, "+switch-master: the sentinels moved the master");
            break;
        case ST_CLOSED:
            break;
        }
    }
}
