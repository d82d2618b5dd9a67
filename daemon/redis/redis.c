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
 * Sentinel mode (opts.n_sentinels > 0): before EVERY connect attempt the
 * connection asks the sentinels "SENTINEL get-master-addr-by-name <master>"
 * on a short-lived context of its own (same adapter, SENTINEL_TIMEOUT_MS
 * through the watchdog), one sentinel at a time in rotation, starting with
 * the last one that answered; when none answers it backs off like any
 * failed connect. It connects to the address it got and, after AUTH and
 * SELECT, sends ROLE: the connection becomes ready only when ROLE's first
 * element is "master"; otherwise it logs, drops, backs off and asks again.
 * The live sentinel-mode connections are kept in a static list (single
 * loop thread) so that sentinel.c's +switch-master watcher, started with
 * the first of them and stopped with the last, can reach them.
 *
 * Cluster mode (opts.n_cluster_seeds > 0): hiredis 0.14 knows nothing of
 * Redis Cluster, and a connection here serves one slot (opts.cluster_slot:
 * every key it touches shares one hash tag). Before EVERY connect attempt
 * the connection asks "CLUSTER SHARDS" (after AUTH when a password is set)
 * on a short-lived context, the same way and under the same time limit as
 * the sentinel query, of one node at a time in rotation: the seeds, then
 * the nodes the last answer listed (kept, so a dead seed does not matter),
 * starting with the last one that answered. It connects to the master
 * whose shard's slot ranges hold the slot and whose health is "online".
 * MOVED, TRYAGAIN and CLUSTERDOWN are not followed command by command: a
 * reply to ANY command that is such an error is logged once per drop,
 * given to its callback as NULL, and the connection is dropped and
 * resolved again - exactly a lost connection, so every caller's existing
 * lost-connection path (resend what was not confirmed) handles it. MOVED
 * (the slot lives elsewhere now) reconnects at once, the slot map being
 * asked again; TRYAGAIN (a multi-key command while the slot's keys are
 * split by a migration) and CLUSTERDOWN back off, and so does a MOVED
 * that follows another redirection without a good reply in between (a
 * stale slot map must not make a busy loop).
 *
 * ASK ("ASK <slot> <host:port>": the slot is being migrated and this key
 * is already on the importing node) IS followed: the connection keeps a
 * copy of every command in flight (cluster mode only), and a command
 * answered with ASK is sent again as ASKING + the command on a second
 * connection to the importing node, opened at the first ASK (AUTH and
 * the scripts this connection loaded with SCRIPT LOAD are pipelined first,
 * so an EVALSHA finds its script there) and kept while the migration
 * lasts; the caller's callback gets that node's reply. Replies can then
 * come back out of order (a followed command answers after later ones);
 * riskd's callers keep per-command state, none relies on the order. A WAIT
 * after followed commands is also sent to the importing node (WAIT counts
 * a connection's own writes) and the smaller count is returned. A failure
 * there (refused connection, lost connection, an error to AUTH, ASKING or
 * SCRIPT LOAD) drops this connection too, and a MOVED, ASK, TRYAGAIN or
 * CLUSTERDOWN from there is a redirection as above: the migration ended,
 * or the slot's keys are split. The second connection goes away with the
 * first (the next MOVED, once the migration is done).
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

#include "internal.h"

/* How long one sentinel, or one cluster node asked for the slot map, may
 * take to answer (within connect_timeout_ms). */
#define SENTINEL_TIMEOUT_MS 2000
/* Redis Cluster's slot count, and the most nodes kept from one answer. */
#define CLUSTER_SLOTS 16384
#define CLUSTER_MAX_LEARNT 1024

typedef enum {
    ST_WAIT,                        /* waiting for the backoff timer */
    ST_RESOLVING,                   /* asking a sentinel / a cluster node */
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
    /* the address connected to / last resolved (r->host until then) */
    char *cur_host;
    int cur_port;
    /* Sentinel mode */
    char **sentinels;
    size_t n_sentinels;
    char *master_name;
    size_t sent_first;              /* the last sentinel that answered */
    size_t sent_tries;              /* sentinels asked in this round */
    size_t sent_cur;                /* the one asked now */
    redisAsyncContext *sac;         /* its context (or the cluster query's) */
    struct rk_redis *snext, *sprev; /* live sentinel-mode connections */
    /* Cluster mode */
    int cluster;                    /* 1 when n_cluster_seeds > 0 */
    int slot;                       /* the slot this connection serves */
    struct cnode *cnodes;           /* seeds first, then the learnt nodes */
    size_t n_cnodes, n_seeds;
    size_t c_first;                 /* the last node that answered */
    size_t c_tries;                 /* nodes asked in this round */
    size_t c_cur;                   /* the one asked now */
    int redirects;                  /* redirections since the last good reply */
    int retry_now;                  /* next reconnect without backoff (MOVED) */
    /* Cluster mode: following ASK (see "Following ASK" below) */
    redisAsyncContext *ask_ac;      /* to the importing node; NULL when none */
    char *ask_host;
    int ask_port;
    int ask_inflight;               /* commands sent there, not answered */
    int ask_logged;                 /* this migration was logged */
    int asked_since_wait;           /* a command was followed since the last WAIT */
    uint64_t asks;                  /* commands followed, ever */
    char **scripts;                 /* bodies sent with SCRIPT LOAD (for the target) */
    size_t n_scripts;
    /* opts.reply_arena: where replies are built (outlives the contexts) */
    rk__arena arena;
};

/* A cluster node to ask for the slot map. */
typedef struct cnode {
    char *host;
    int port;
} cnode;

/* The live sentinel-mode connections (single loop thread). */
static rk_redis *sentinel_conns;

/* A command in flight: routes hiredis's callback back to the caller. In
 * cluster mode it also keeps a copy of the command (argv, in the same
 * allocation) so that an ASK can send it again to the importing node. */
typedef struct pending_cmd {
    rk_redis *r;
    rk_redis_reply_cb *cb;
    void *privdata;
    int64_t extra_timeout_ms;
    int argc;                       /* 0 outside cluster mode */
    const char **argv;
    size_t *argvlen;
    int is_wait;                    /* a WAIT (cluster mode) */
    int wait_forwarded;             /* ... also sent to the ASK target */
    long long wait_main;            /* ... and what the slot's master said */
} pending_cmd;

/* The most distinct script bodies remembered for an ASK target. */
#define ASK_MAX_SCRIPTS 16

static void schedule_retry(rk_redis *r);
static void start_connect(rk_redis *r);
static void cluster_resolve_next(rk_redis *r);
static void ask_close(rk_redis *r);

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
 * else. The arena belongs to the rk_redis, not the context: hiredis frees
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

static void set_state(rk_redis *r, conn_state st)
{
    r->state = st;
    r->state_since = (int64_t)uv_now(r->loop);
}

static void rlog(rk_redis *r, rk_log_level level, const char *fmt, ...)
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
static void connection_lost(rk_redis *r)
{
    int was_ready = r->state == ST_READY;

    r->ac = NULL;
    r->inflight = 0;
    r->deadline_extra = 0;
    if (r->state == ST_CLOSED)
        return;
    set_state(r, ST_WAIT);
    ask_close(r);                   /* its commands get NULL too */
    r->inflight = 0;
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

/* Fill argv with "AUTH [username] password" (a password is set) and return
 * the argument count. */
static int auth_argv(const rk_redis *r, const char *argv[3])
{
    int argc = 0;
    argv[argc++] = "AUTH";
    if (r->username != NULL)
        argv[argc++] = r->username;
    argv[argc++] = r->password;
    return argc;
}

/* Sentinel mode: the connection is ready only when the server says it is
 * the master; a replica (a stale answer, a failover under way) is dropped
 * and the sentinels are asked again after the backoff. */
static void on_role_reply(rk_redis *r, struct redisReply *reply, void *pd)
{
    (void)pd;
    if (reply == NULL || r->state != ST_HANDSHAKE || r->handshake_left < 0)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") == 0) {
        if (--r->handshake_left == 0)
            became_ready(r);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        rlog(r, RK_LOG_ERR, "ROLE refused: %s", reply->str);
    else
        rlog(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
             "not the master of %s (ROLE: %s); asking the sentinels again", r->master_name,
             reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
             reply->element[0]->type == REDIS_REPLY_STRING ? reply->element[0]->str : "?");
    r->handshake_left = -1;
    rk__redis_drop(r, NULL);
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
        int argc = auth_argv(r, argv);
        r->handshake_left++;
        rk__redis_cmd(r, on_handshake_reply, (void *)"AUTH", 0, argc, argv, NULL);
    }
    if (r->opts.db != 0) {
        const char *argv[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", r->opts.db);
        r->handshake_left++;
        rk__redis_cmd(r, on_handshake_reply, (void *)"SELECT", 0, 2, argv, NULL);
    }
    if (r->n_sentinels > 0) {
        const char *argv[1] = {"ROLE"};
        r->handshake_left++;
        rk__redis_cmd(r, on_role_reply, NULL, 0, 1, argv, NULL);
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

/* Connect to r->cur_host:cur_port. */
static void connect_to(rk_redis *r)
{
    redisAsyncContext *ac;

    if (r->state == ST_CLOSED)
        return;
    ac = redisAsyncConnect(r->cur_host, r->cur_port);
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
    if (r->opts.reply_arena) {
        ac->c.reader->fn = &ra_functions;
        ac->c.reader->privdata = &r->arena;
    }
    if (rk__redis_attach(r->loop, ac) != 0) {
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

/* ===================================================================
 * Sentinel mode: resolving the master
 * =================================================================== */

static void resolve_next(rk_redis *r);

/* Give up the sentinel or cluster query in flight (never inside its
 * callbacks). */
static void sentinel_abandon(rk_redis *r)
{
    redisAsyncContext *ac = r->sac;
    if (ac == NULL)
        return;
    r->sac = NULL;
    ac->data = NULL;                /* its callbacks now ignore us */
    redisAsyncFree(ac);
}

/* The answer to SENTINEL get-master-addr-by-name: [ip, port], nil when
 * the sentinel does not know the master, NULL when the connection failed
 * or was lost (hiredis is then freeing the context). */
static void on_sentinel_reply(redisAsyncContext *ac, void *rep, void *pd)
{
    rk_redis *r = ac->data;
    redisReply *reply = rep;
    const char *who;
    long port = 0;
    char *host;

    (void)pd;
    if (r == NULL || r->sac != ac)
        return;                     /* abandoned */
    r->sac = NULL;
    ac->data = NULL;
    who = r->sentinels[r->sent_cur];
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
            rlog(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
                 "sentinel %s: %s", who, ac->errstr[0] ? ac->errstr : "connection lost");
        else if (reply->type == REDIS_REPLY_ERROR)
            rlog(r, RK_LOG_WARNING, "sentinel %s: %s", who, reply->str);
        else if (reply->type == REDIS_REPLY_NIL)
            rlog(r, RK_LOG_WARNING, "sentinel %s does not know master %s", who,
                 r->master_name);
        else
            rlog(r, RK_LOG_WARNING, "sentinel %s: unexpected answer", who);
        resolve_next(r);
        return;
    }
    r->sent_first = r->sent_cur;
    if (strcmp(reply->element[0]->str, r->cur_host) != 0 || port != r->cur_port) {
        if ((host = strdup(reply->element[0]->str)) == NULL) {
            rlog(r, RK_LOG_ERR, "sentinel answer: out of memory");
            set_state(r, ST_WAIT);
            schedule_retry(r);
            return;
        }
        free(r->cur_host);
        r->cur_host = host;
        r->cur_port = (int)port;
        rlog(r, RK_LOG_NOTICE, "sentinel %s: master %s is here", who, r->master_name);
    }
    connect_to(r);
}

/* Ask the next sentinel of this round; when every one was asked, back off
 * and start a new round later. */
static void resolve_next(rk_redis *r)
{
    char host[256];
    int port;

    while (r->sent_tries < r->n_sentinels) {
        size_t i = (r->sent_first + r->sent_tries++) % r->n_sentinels;
        redisAsyncContext *ac;

        if (rk__parse_addr(r->sentinels[i], host, sizeof(host), &port) != 0)
            continue;               /* config.c refuses these */
        ac = redisAsyncConnect(host, port);
        if (ac == NULL)
            break;
        if (ac->err) {
            rlog(r, RK_LOG_INFO, "sentinel %s: %s", r->sentinels[i], ac->errstr);
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
                              r->master_name) != REDIS_OK) {
            ac->data = NULL;
            redisAsyncFree(ac);
            break;
        }
        r->sac = ac;
        r->sent_cur = i;
        set_state(r, ST_RESOLVING);
        return;
    }
    rlog(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
         "no sentinel gave the address of master %s", r->master_name);
    set_state(r, ST_WAIT);
    schedule_retry(r);
}

/* ===================================================================
 * Cluster mode: the slot map
 * =================================================================== */

unsigned rk__redis_keyslot(const char *key, size_t len)
{
    const unsigned char *p = (const unsigned char *)key;
    size_t i, s, e;
    unsigned crc = 0;
    int b;

    for (s = 0; s < len && p[s] != '{'; s++)
        ;
    if (s < len) {
        for (e = s + 1; e < len && p[e] != '}'; e++)
            ;
        if (e < len && e > s + 1) {     /* "{tag}" with a non-empty tag */
            p += s + 1;
            len = e - s - 1;
        }
    }
    /* CRC16-CCITT as XMODEM: polynomial 0x1021, initial value 0. */
    for (i = 0; i < len; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (b = 0; b < 8; b++)
            crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc % CLUSTER_SLOTS;
}

/* The value of field `name` in a RESP2 map (a flat array of name, value,
 * ...), or NULL. */
static const redisReply *map_get(const redisReply *m, const char *name)
{
    size_t i;
    if (m == NULL || m->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(m->element[i]->str, name) == 0)
            return m->element[i + 1];
    return NULL;
}

/* True when the string value of map field `name` is `want`. */
static int map_is(const redisReply *m, const char *name, const char *want)
{
    const redisReply *v = map_get(m, name);
    return v != NULL && v->type == REDIS_REPLY_STRING && strcmp(v->str, want) == 0;
}

/* The address of one node of a CLUSTER SHARDS answer: "endpoint" (what
 * the cluster wants clients to use) unless empty or "?", else "ip"; the
 * plain-text "port". Returns 0 with *host pointing into the reply, or -1. */
static int node_addr(const redisReply *n, const char **host, int *port)
{
    const redisReply *h = map_get(n, "endpoint"), *p = map_get(n, "port");

    if (h == NULL || h->type != REDIS_REPLY_STRING || h->len == 0 ||
        strcmp(h->str, "?") == 0)
        h = map_get(n, "ip");
    if (h == NULL || h->type != REDIS_REPLY_STRING || h->len == 0 || h->len >= 256 ||
        strlen(h->str) != h->len || p == NULL || p->type != REDIS_REPLY_INTEGER ||
        p->integer < 1 || p->integer > 65535)
        return -1;
    *host = h->str;
    *port = (int)p->integer;
    return 0;
}

/* Does the shard's "slots" list (start, end, start, end, ...) hold slot? */
static int shard_has_slot(const redisReply *shard, int slot)
{
    const redisReply *sl = map_get(shard, "slots");
    size_t i;
    if (sl == NULL || sl->type != REDIS_REPLY_ARRAY)
        return 0;
    for (i = 0; i + 1 < sl->elements; i += 2)
        if (sl->element[i]->type == REDIS_REPLY_INTEGER &&
            sl->element[i + 1]->type == REDIS_REPLY_INTEGER &&
            sl->element[i]->integer <= slot && slot <= sl->element[i + 1]->integer)
            return 1;
    return 0;
}

static int cnode_find(const cnode *v, size_t n, const char *host, int port)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (v[i].port == port && strcmp(v[i].host, host) == 0)
            return (int)i;
    return -1;
}

/* Replace the learnt part of r's node list by every node of the answer
 * `shards` that is not a seed (at most CLUSTER_MAX_LEARNT). Out of memory
 * keeps the old list. */
static void learn_nodes(rk_redis *r, const redisReply *shards)
{
    cnode *v;
    size_t i, j, n = r->n_seeds, cap = r->n_seeds;
    const char *host;
    int port;

    for (i = 0; i < shards->elements; i++) {
        const redisReply *nodes = map_get(shards->element[i], "nodes");
        if (nodes != NULL && nodes->type == REDIS_REPLY_ARRAY)
            cap += nodes->elements;
    }
    if (cap > r->n_seeds + CLUSTER_MAX_LEARNT)
        cap = r->n_seeds + CLUSTER_MAX_LEARNT;
    if ((v = calloc(cap > 0 ? cap : 1, sizeof(*v))) == NULL)
        return;
    memcpy(v, r->cnodes, r->n_seeds * sizeof(*v));
    for (i = 0; i < shards->elements && n < cap; i++) {
        const redisReply *nodes = map_get(shards->element[i], "nodes");
        if (nodes == NULL || nodes->type != REDIS_REPLY_ARRAY)
            continue;
        for (j = 0; j < nodes->elements && n < cap; j++) {
            if (node_addr(nodes->element[j], &host, &port) != 0 ||
                cnode_find(v, n, host, port) >= 0)
                continue;
            if ((v[n].host = strdup(host)) == NULL)
                goto oom;
            v[n++].port = port;
        }
    }
    for (i = r->n_seeds; i < r->n_cnodes; i++)
        free(r->cnodes[i].host);
    free(r->cnodes);
    r->cnodes = v;
    r->n_cnodes = n;
    return;
oom:
    for (i = r->n_seeds; i < n; i++)
        free(v[i].host);
    free(v);
}

static void cluster_resolve_next(rk_redis *r);

/* The answer to CLUSTER SHARDS (NULL when the connection failed or was
 * lost: hiredis is then freeing the context): learn the nodes, find the
 * online master of the shard serving r->slot and connect there; otherwise
 * ask the next node. */
static void on_shards_reply(redisAsyncContext *ac, void *rep, void *pd)
{
    rk_redis *r = ac->data;
    redisReply *reply = rep;
    const redisReply *master = NULL;
    char who[300];
    const char *host = NULL;
    int port = 0, found;
    size_t i, j;

    (void)pd;
    if (r == NULL || r->sac != ac)
        return;                     /* abandoned */
    r->sac = NULL;
    ac->data = NULL;
    snprintf(who, sizeof(who), "%s:%d", r->cnodes[r->c_cur].host, r->cnodes[r->c_cur].port);
    if (reply != NULL)
        redisAsyncDisconnect(ac);   /* freed once this callback returns */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply == NULL)
            rlog(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
                 "cluster node %s: %s", who, ac->errstr[0] ? ac->errstr : "connection lost");
        else if (reply->type == REDIS_REPLY_ERROR)
            rlog(r, RK_LOG_WARNING, "cluster node %s: CLUSTER SHARDS: %s", who, reply->str);
        else
            rlog(r, RK_LOG_WARNING, "cluster node %s: unexpected CLUSTER SHARDS answer", who);
        cluster_resolve_next(r);
        return;
    }
    for (i = 0; i < reply->elements && master == NULL; i++) {
        const redisReply *nodes = map_get(reply->element[i], "nodes");
        if (!shard_has_slot(reply->element[i], r->slot) || nodes == NULL ||
            nodes->type != REDIS_REPLY_ARRAY)
            continue;
        for (j = 0; j < nodes->elements; j++)
            if (map_is(nodes->element[j], "role", "master") &&
                map_is(nodes->element[j], "health", "online") &&
                node_addr(nodes->element[j], &host, &port) == 0) {
                master = nodes->element[j];
                break;
            }
    }
    /* Learn the nodes even when this answer does not serve the slot: the
     * next round may ask one of them. */
    {
        const char *ah = r->cnodes[r->c_cur].host;
        int ap = r->cnodes[r->c_cur].port;
        char *keep = strdup(ah);
        learn_nodes(r, reply);
        found = keep != NULL ? cnode_find(r->cnodes, r->n_cnodes, keep, ap) : -1;
        free(keep);
    }
    if (master == NULL) {
        rlog(r, RK_LOG_WARNING, "cluster node %s: no online master serves slot %d",
             who, r->slot);
        /* c_cur may have moved with the new list; the round goes on. */
        cluster_resolve_next(r);
        return;
    }
    r->c_first = found >= 0 ? (size_t)found : 0;
    if (strcmp(host, r->cur_host) != 0 || port != r->cur_port) {
        char *h = strdup(host);
        if (h == NULL) {
            rlog(r, RK_LOG_ERR, "cluster answer: out of memory");
            set_state(r, ST_WAIT);
            schedule_retry(r);
            return;
        }
        free(r->cur_host);
        r->cur_host = h;
        r->cur_port = port;
        rlog(r, RK_LOG_NOTICE, "slot %d is served here (slot map of %s)", r->slot, who);
    }
    connect_to(r);
}

/* Ask the next cluster node of this round for the slot map; when every
 * one was asked, back off and start a new round later. */
static void cluster_resolve_next(rk_redis *r)
{
    while (r->n_cnodes > 0 && r->c_tries < r->n_cnodes) {
        size_t i = (r->c_first + r->c_tries++) % r->n_cnodes;
        redisAsyncContext *ac = redisAsyncConnect(r->cnodes[i].host, r->cnodes[i].port);

        if (ac == NULL)
            break;
        if (ac->err) {
            rlog(r, RK_LOG_INFO, "cluster node %s:%d: %s", r->cnodes[i].host,
                 r->cnodes[i].port, ac->errstr);
            redisAsyncFree(ac);
            continue;
        }
        if (rk__redis_attach(r->loop, ac) != 0) {
            redisAsyncFree(ac);
            break;
        }
        ac->data = r;
        if (r->password != NULL) {
            /* The answer goes nowhere: a refused AUTH makes CLUSTER SHARDS
             * fail with NOAUTH, which is logged below. */
            const char *argv[3];
            int argc = auth_argv(r, argv);
            if (redisAsyncCommandArgv(ac, NULL, NULL, argc, argv, NULL) != REDIS_OK) {
                ac->data = NULL;
                redisAsyncFree(ac);
                break;
            }
        }
        if (redisAsyncCommand(ac, on_shards_reply, NULL, "CLUSTER SHARDS") != REDIS_OK) {
            ac->data = NULL;
            redisAsyncFree(ac);
            break;
        }
        r->sac = ac;
        r->c_cur = i;
        set_state(r, ST_RESOLVING);
        return;
    }
    rlog(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
         "no cluster node gave a master for slot %d", r->slot);
    set_state(r, ST_WAIT);
    schedule_retry(r);
}

/* Cluster mode: is reply a redirection or a cluster error? Then log it
 * (once per drop), drop the connection (MOVED: reconnect at once unless it
 * follows another redirection; otherwise with backoff) and return 1: the
 * caller's callback gets NULL as after a lost connection. */
static int cluster_redirect(rk_redis *r, const redisReply *reply)
{
    int moved;

    if (!r->cluster || reply == NULL)
        return 0;
    if (reply->type != REDIS_REPLY_ERROR) {
        /* A good answer to a command (not to AUTH during the handshake,
         * which any node gives) ends a run of redirections. */
        if (r->state == ST_READY)
            r->redirects = 0;
        return 0;
    }
    moved = strncmp(reply->str, "MOVED ", 6) == 0;
    if (!moved && strncmp(reply->str, "ASK ", 4) != 0 &&
        strncmp(reply->str, "TRYAGAIN", 8) != 0 && strncmp(reply->str, "CLUSTERDOWN", 11) != 0)
        return 0;
    if (r->drop_pending || r->state == ST_CLOSED)
        return 1;                   /* the rest of a pipeline */
    r->redirects++;
    r->retry_now = moved && r->redirects == 1;
    rlog(r, r->redirects == 1 ? RK_LOG_NOTICE : RK_LOG_INFO,
         "slot %d: %.200s; reconnecting%s", r->slot, reply->str,
         r->retry_now ? "" : " after a backoff");
    rk__redis_drop(r, NULL);
    return 1;
}

/* ===================================================================
 * Commands in flight (for the watchdog)
 * =================================================================== */

/* A command of r went out, on its connection or the ASK target's; the
 * watchdog waits extra_timeout_ms longer for it (a BLOCK). */
static void count_sent(rk_redis *r, int64_t extra_timeout_ms)
{
    if (r->inflight == 0)
        r->last_reply = (int64_t)uv_now(r->loop);
    r->inflight++;
    if (extra_timeout_ms > r->deadline_extra)
        r->deadline_extra = extra_timeout_ms;
}

/* A command of r was answered (or given up). */
static void count_answered(rk_redis *r)
{
    if (r->inflight > 0)
        r->inflight--;
    if (r->inflight == 0)
        r->deadline_extra = 0;
    r->last_reply = (int64_t)uv_now(r->loop);
}

/* ===================================================================
 * Cluster mode: following ASK
 * =================================================================== */

static void pc_deliver(pending_cmd *pc, redisReply *reply);

/* Forget the connection to the ASK target: its commands' callbacks run
 * now with NULL. Never called from one of that context's own callbacks. */
static void ask_close(rk_redis *r)
{
    redisAsyncContext *ac = r->ask_ac;

    free(r->ask_host);
    r->ask_host = NULL;
    r->ask_port = 0;
    r->ask_logged = 0;
    r->asked_since_wait = 0;
    if (ac == NULL)
        return;
    r->ask_ac = NULL;
    ac->data = NULL;                /* its connect/disconnect callbacks ignore us */
    redisAsyncFree(ac);
}

/* Something went wrong on the ASK target while the slot's connection is
 * up: drop that too, so that every caller takes its lost-connection path
 * (a NULL reply always comes with a lost connection). */
static void ask_failed(rk_redis *r, const char *why)
{
    if (r->state == ST_READY && r->ac != NULL && !r->drop_pending)
        rk__redis_drop(r, why);
}

static void on_ask_connect(const redisAsyncContext *ac, int status)
{
    rk_redis *r = ac->data;

    if (r == NULL || status == REDIS_OK)
        return;
    /* hiredis frees the context after this; its commands get NULL. */
    rlog(r, RK_LOG_WARNING, "ASK target %s:%d: connect failed: %s", r->ask_host,
         r->ask_port, ac->errstr[0] ? ac->errstr : "error");
    if (r->ask_ac == ac)
        r->ask_ac = NULL;
}

static void on_ask_disconnect(const redisAsyncContext *ac, int status)
{
    rk_redis *r = ac->data;

    if (r == NULL)
        return;
    rlog(r, RK_LOG_WARNING, "ASK target %s:%d: connection lost: %s", r->ask_host,
         r->ask_port, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
    if (r->ask_ac == ac)
        r->ask_ac = NULL;
}

/* The reply to AUTH, SCRIPT LOAD or ASKING on the ASK target. */
static void on_ask_aux(redisAsyncContext *ac, void *reply, void *pd)
{
    rk_redis *r = pd;
    redisReply *rep = reply;

    (void)ac;
    if (rep == NULL || rep->type != REDIS_REPLY_ERROR)
        return;
    rlog(r, RK_LOG_ERR, "ASK target %s:%d refused a command: %.200s",
         r->ask_host ? r->ask_host : "?", r->ask_port, rep->str);
    ask_failed(r, "the ASK target refused a command");
}

/* The reply to a command followed to the ASK target. */
static void on_ask_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    pending_cmd *pc = privdata;
    rk_redis *r = pc->r;
    redisReply *rep = reply, combined;

    (void)ac;
    if (r->ask_inflight > 0)
        r->ask_inflight--;
    count_answered(r);
    if (rep == NULL) {
        ask_failed(r, "lost the connection to the ASK target");
    } else if (cluster_redirect(r, rep)) {
        rep = NULL;                 /* the migration ended, or stalls: re-resolve */
    } else if (pc->wait_forwarded && rep->type == REDIS_REPLY_INTEGER) {
        /* WAIT: the fewer replicas of the two nodes count. */
        combined = *rep;
        if (pc->wait_main < combined.integer)
            combined.integer = pc->wait_main;
        rep = &combined;
    }
    pc_deliver(pc, rep);
}

/* Split "ASK <slot> <host>:<port>" (the host may itself hold colons: an
 * IPv6 address). Returns 0 and a malloc'ed *host, or -1. */
static int ask_parse(const char *str, int *slot, char **host, int *port)
{
    const char *a, *colon;
    char *end;
    long v;

    if (strncmp(str, "ASK ", 4) != 0)
        return -1;
    v = strtol(str + 4, &end, 10);
    if (end == str + 4 || *end != ' ' || v < 0 || v >= CLUSTER_SLOTS)
        return -1;
    *slot = (int)v;
    a = end + 1;
    colon = strrchr(a, ':');
    if (colon == NULL || colon == a)
        return -1;
    v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || v <= 0 || v > 65535)
        return -1;
    *port = (int)v;
    if (a[0] == '[' && colon[-1] == ']')
        a++, colon--;
    if ((*host = malloc((size_t)(colon - a) + 1)) == NULL)
        return -1;
    memcpy(*host, a, (size_t)(colon - a));
    (*host)[colon - a] = '\0';
    return 0;
}

/* The connection to host:port, opened (AUTH and the remembered scripts
 * pipelined first) unless it is already there. NULL when it cannot be had
 * now: out of memory, or another target still has commands in flight. */
static redisAsyncContext *ask_conn(rk_redis *r, char *host, int port)
{
    redisAsyncContext *ac;
    size_t i;

    if (r->ask_host != NULL && (r->ask_port != port || strcmp(r->ask_host, host) != 0)) {
        if (r->ask_inflight > 0) {
            free(host);
            return NULL;
        }
        ask_close(r);
    }
    if (r->ask_ac != NULL) {
        free(host);
        return r->ask_ac;
    }
    free(r->ask_host);
    r->ask_host = host;
    r->ask_port = port;
    ac = redisAsyncConnect(host, port);
    if (ac != NULL && !ac->err)
        ac->data = r;
    if (ac == NULL || ac->err || rk__redis_attach(r->loop, ac) != 0) {
        rlog(r, RK_LOG_WARNING, "ASK target %s:%d: cannot connect: %s", host, port,
             ac != NULL && ac->err ? ac->errstr : "out of memory");
        if (ac != NULL) {
            ac->data = NULL;
            redisAsyncFree(ac);
        }
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_ask_connect);
    redisAsyncSetDisconnectCallback(ac, on_ask_disconnect);
    r->ask_ac = ac;
    if (r->password != NULL) {
        const char *argv[3];
        int argc = auth_argv(r, argv);
        redisAsyncCommandArgv(ac, on_ask_aux, r, argc, argv, NULL);
    }
    /* An EVALSHA followed there must find its script. */
    for (i = 0; i < r->n_scripts; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", r->scripts[i]};
        redisAsyncCommandArgv(ac, on_ask_aux, r, 3, argv, NULL);
    }
    return ac;
}

/* The command of pc got "ASK <slot> <host:port>" (str): send ASKING and
 * the command to that node. Returns 0 when pc is on its way there (its
 * callback runs with that node's reply), -1 to treat the ASK as before: a
 * redirection that drops the connection. */
static int ask_follow(rk_redis *r, pending_cmd *pc, const char *str)
{
    const char *asking[1] = {"ASKING"};
    redisAsyncContext *ac;
    char *host;
    int slot, port;

    if (pc->argc == 0 || r->state != ST_READY || r->drop_pending ||
        ask_parse(str, &slot, &host, &port) != 0 || slot != r->slot)
        return -1;
    if ((ac = ask_conn(r, host, port)) == NULL)
        return -1;
    if (redisAsyncCommandArgv(ac, on_ask_aux, r, 1, asking, NULL) != REDIS_OK ||
        redisAsyncCommandArgv(ac, on_ask_reply, pc, pc->argc, pc->argv,
                              pc->argvlen) != REDIS_OK)
        return -1;
    if (!r->ask_logged)
        rlog(r, RK_LOG_NOTICE, "slot %d is migrating to %s:%d: following ASK there "
             "(ASKING + the command) until it is done", r->slot, r->ask_host, r->ask_port);
    r->ask_logged = 1;
    r->asks++;
    r->asked_since_wait = 1;
    r->ask_inflight++;
    count_sent(r, pc->extra_timeout_ms);
    return 0;
}

/* A WAIT answered by the slot's master (n replicas) after commands were
 * followed to the ASK target: those writes are that node's, and WAIT only
 * counts a connection's own writes, so ask it too (every followed command
 * before this WAIT was sent there before, replies being in order) and give
 * the caller the smaller count. Returns 0 when sent. */
static int ask_wait(rk_redis *r, pending_cmd *pc, long long n)
{
    if (r->ask_ac == NULL || r->state != ST_READY || r->drop_pending)
        return -1;
    if (redisAsyncCommandArgv(r->ask_ac, on_ask_reply, pc, pc->argc, pc->argv,
                              pc->argvlen) != REDIS_OK)
        return -1;
    pc->wait_forwarded = 1;
    pc->wait_main = n;
    r->asked_since_wait = 0;
    r->ask_inflight++;
    count_sent(r, pc->extra_timeout_ms);
    return 0;
}

/* Remember a SCRIPT LOAD body (cluster mode) for the ASK target, and load
 * it there at once when a connection to it is open. */
static void remember_script(rk_redis *r, const char *body, size_t len)
{
    char **v, *copy;
    size_t i;

    for (i = 0; i < r->n_scripts; i++)
        if (strlen(r->scripts[i]) == len && memcmp(r->scripts[i], body, len) == 0)
            return;
    if (r->n_scripts == ASK_MAX_SCRIPTS || memchr(body, '\0', len) != NULL)
        return;
    if ((v = realloc(r->scripts, (r->n_scripts + 1) * sizeof(*v))) == NULL)
        return;
    r->scripts = v;
    if ((copy = malloc(len + 1)) == NULL)
        return;
    memcpy(copy, body, len);
    copy[len] = '\0';
    r->scripts[r->n_scripts++] = copy;
    if (r->ask_ac != NULL) {
        const char *argv[3] = {"SCRIPT", "LOAD", copy};
        redisAsyncCommandArgv(r->ask_ac, on_ask_aux, r, 3, argv, NULL);
    }
}

/* ===================================================================
 * Connecting
 * =================================================================== */

/* Before every connect attempt: resolve first in Sentinel or cluster
 * mode. */
static void start_connect(rk_redis *r)
{
    if (r->state == ST_CLOSED)
        return;
    if (r->cluster) {
        r->c_tries = 0;
        cluster_resolve_next(r);
        return;
    }
    if (r->n_sentinels == 0) {
        connect_to(r);
        return;
    }
    r->sent_tries = 0;
    resolve_next(r);
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

static void on_watchdog(uv_timer_t *t)
{
    rk_redis *r = t->data;
    int64_t now = (int64_t)uv_now(r->loop);

    if (r->state == ST_RESOLVING &&
        now - r->state_since > (r->opts.connect_timeout_ms < SENTINEL_TIMEOUT_MS
                                ? r->opts.connect_timeout_ms : SENTINEL_TIMEOUT_MS)) {
        if (r->cluster)
            rlog(r, RK_LOG_WARNING, "cluster node %s:%d: no answer in time",
                 r->cnodes[r->c_cur].host, r->cnodes[r->c_cur].port);
        else
            rlog(r, RK_LOG_WARNING, "sentinel %s: no answer in time",
                 r->sentinels[r->sent_cur]);
        sentinel_abandon(r);
        if (r->cluster)
            cluster_resolve_next(r);
        else
            resolve_next(r);
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

static void free_conn(rk_redis *r)
{
    size_t i;
    free(r->host); free(r->name); free(r->username); free(r->password);
    free(r->cur_host); free(r->master_name);
    for (i = 0; i < r->n_sentinels; i++)
        free(r->sentinels[i]);
    free(r->sentinels);
    for (i = 0; i < r->n_cnodes; i++)
        free(r->cnodes[i].host);
    free(r->cnodes);
    for (i = 0; i < r->n_scripts; i++)
        free(r->scripts[i]);
    free(r->scripts);
    free(r->ask_host);
    rk__arena_rewind(&r->arena, true);
    free(r);
}

/* Copy the Sentinel options into r. Returns 0 or -1 (out of memory). */
static int copy_sentinels(rk_redis *r, const rk_redis_opts *opts)
{
    size_t i;

    if (opts->n_sentinels == 0 || opts->sentinels == NULL)
        return 0;
    r->master_name = strdup(opts->master_name ? opts->master_name : "mymaster");
    r->sentinels = calloc(opts->n_sentinels, sizeof(*r->sentinels));
    if (r->master_name == NULL || r->sentinels == NULL)
        return -1;
    for (i = 0; i < opts->n_sentinels; i++) {
        if ((r->sentinels[i] = strdup(opts->sentinels[i])) == NULL)
            return -1;
        r->n_sentinels = i + 1;
    }
    return 0;
}

/* Copy the cluster seeds into r's node list (a seed that is not
 * "host:port" is skipped: config.c refuses those). Returns 0 or -1 (out of
 * memory). */
static int copy_cluster(rk_redis *r, const rk_redis_opts *opts)
{
    char host[256];
    size_t i;
    int port;

    if ((r->cnodes = calloc(opts->n_cluster_seeds, sizeof(*r->cnodes))) == NULL)
        return -1;
    for (i = 0; i < opts->n_cluster_seeds; i++) {
        if (opts->cluster_seeds[i] == NULL ||
            rk__parse_addr(opts->cluster_seeds[i], host, sizeof(host), &port) != 0 ||
            cnode_find(r->cnodes, r->n_cnodes, host, port) >= 0)
            continue;
        if ((r->cnodes[r->n_cnodes].host = strdup(host)) == NULL)
            return -1;
        r->cnodes[r->n_cnodes++].port = port;
    }
    r->n_seeds = r->n_cnodes;
    return 0;
}

rk_redis *rk__redis_new(uv_loop_t *loop, const rk_redis_opts *opts,
                        rk_redis_state_cb *state_cb, void *ud)
{
    rk_redis *r;

    if (opts->n_cluster_seeds > 0 &&
        (opts->cluster_seeds == NULL || opts->cluster_slot < 0 ||
         opts->cluster_slot >= CLUSTER_SLOTS))
        return NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->cluster = opts->n_cluster_seeds > 0;
    r->slot = r->cluster ? opts->cluster_slot : 0;
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
        (r->cluster ? copy_cluster(r, opts) : copy_sentinels(r, opts)) != 0) {
        free_conn(r);
        return NULL;
    }
    r->opts.host = r->host;
    r->opts.name = r->name;
    r->opts.username = r->username;
    r->opts.password = r->password;
    r->opts.sentinels = (const char *const *)r->sentinels;
    r->opts.n_sentinels = r->n_sentinels;
    r->opts.master_name = r->master_name;
    r->opts.cluster_seeds = NULL;   /* copied into r->cnodes */
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
    if (r->n_sentinels > 0) {
        if (sentinel_conns == NULL &&
            rk__sentinel_watch_start(loop, (const char *const *)r->sentinels,
                                     r->n_sentinels, rk__redis_sentinel_switch) != 0)
            rlog(r, RK_LOG_ERR, "cannot start the +switch-master watcher: out of memory");
        r->snext = sentinel_conns;
        if (sentinel_conns != NULL)
            sentinel_conns->sprev = r;
        sentinel_conns = r;
    }
    uv_timer_start(&r->watchdog, on_watchdog, 250, 250);
    start_connect(r);
    return r;
}

/* Hand reply (NULL: lost) to pc's caller and free pc. */
static void pc_deliver(pending_cmd *pc, redisReply *reply)
{
    if (pc->cb)
        pc->cb(pc->r, reply, pc->privdata);
    else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        rlog(pc->r, RK_LOG_ERR, "command failed: %s", reply->str);
    free(pc);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    pending_cmd *pc = privdata;
    rk_redis *r = pc->r;
    redisReply *rep = reply;

    (void)ac;
    count_answered(r);
    if (r->cluster && rep != NULL) {
        if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "ASK ", 4) == 0 &&
            ask_follow(r, pc, rep->str) == 0)
            return;                 /* pc goes on at the importing node */
        if (pc->is_wait && r->asked_since_wait && rep->type == REDIS_REPLY_INTEGER &&
            ask_wait(r, pc, rep->integer) == 0)
            return;                 /* the importing node's count is wanted too */
    }
    if (cluster_redirect(r, rep))
        rep = NULL;                 /* handled as a lost connection */
    pc_deliver(pc, rep);
}

/* A pending_cmd for cb/privdata; in cluster mode with a copy of the
 * command (argv, argvlen and the bytes in the same allocation). */
static pending_cmd *pc_new(rk_redis *r, rk_redis_reply_cb *cb, void *privdata,
                           int64_t extra_timeout_ms, int argc, const char **argv,
                           const size_t *argvlen)
{
    size_t size = sizeof(pending_cmd), bytes = 0, len;
    pending_cmd *pc;
    char *p;
    int i;

    if (r->cluster) {
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
    if (!r->cluster)
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

int rk__redis_cmd(rk_redis *r, rk_redis_reply_cb *cb, void *privdata,
                  int64_t extra_timeout_ms, int argc, const char **argv,
                  const size_t *argvlen)
{
    pending_cmd *pc;

    if (r == NULL || r->ac == NULL || (r->state != ST_READY && r->state != ST_HANDSHAKE) ||
        r->drop_pending)
        return -1;
    if ((pc = pc_new(r, cb, privdata, extra_timeout_ms, argc, argv, argvlen)) == NULL)
        return -1;
    if (redisAsyncCommandArgv(r->ac, on_reply, pc, argc, argv, argvlen) != REDIS_OK) {
        free(pc);
        return -1;
    }
    if (pc->argc == 3 && pc->argvlen[0] == 6 && strncasecmp(pc->argv[0], "SCRIPT", 6) == 0 &&
        pc->argvlen[1] == 4 && strncasecmp(pc->argv[1], "LOAD", 4) == 0)
        remember_script(r, pc->argv[2], pc->argvlen[2]);
    count_sent(r, extra_timeout_ms);
    return 0;
}

void rk__redis_flush(rk_redis *r)
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

uint64_t rk__redis_asks(const rk_redis *r)
{
    return r ? r->asks : 0;
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
    if (--r->handles_open == 0)
        free_conn(r);
}

void rk__redis_close(rk_redis *r)
{
    if (r == NULL || r->state == ST_CLOSED)
        return;
    set_state(r, ST_CLOSED);
    sentinel_abandon(r);
    if (r->n_sentinels > 0) {
        if (r->sprev != NULL)
            r->sprev->snext = r->snext;
        else
            sentinel_conns = r->snext;
        if (r->snext != NULL)
            r->snext->sprev = r->sprev;
        r->snext = r->sprev = NULL;
        if (sentinel_conns == NULL)
            rk__sentinel_watch_stop();
    }
    ask_close(r);
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

void rk__redis_addr(const rk_redis *r, const char **host, int *port)
{
    *host = r->cur_host;
    *port = r->cur_port;
}

void rk__redis_sentinel_switch(const char *master, const char *host, int port)
{
    rk_redis *r, *next;

    for (r = sentinel_conns; r != NULL; r = next) {
        next = r->snext;
        if (strcmp(r->master_name, master) != 0)
            continue;
        switch (r->state) {
        case ST_WAIT:
            /* Waiting out a backoff: the new master is known to be up. */
            if (!r->drop_pending)
                uv_timer_start(&r->retry_timer, on_retry_timer, 0, 0);
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
