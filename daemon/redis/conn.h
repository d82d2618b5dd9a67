/* daemon/redis/conn.h - inside the Redis layer: the connection and its resolvers.
 *
 * Private to daemon/redis/ (the rest of the daemon sees rk__redis as an
 * opaque handle through internal.h). redis.c owns struct rk__redis: the
 * hiredis context, handshake, backoff, watchdog and the commands in flight.
 * Where to connect is not its business: every connection holds ONE
 * resolver (rk__resolver below), chosen once from its options by
 * resolvers.c, and asks it for the address before every connect attempt:
 *
 *   static    resolve_static.c    redis.host / redis.port as configured
 *   sentinel  resolve_sentinel.c  SENTINEL get-master-addr-by-name, ROLE,
 *                                 and the +switch-master watcher
 *   cluster   resolve_cluster.c   CLUSTER SHARDS for the slot, MOVED /
 *                                 TRYAGAIN / CLUSTERDOWN, following ASK
 *
 * The flow is one way: resolvers.c picks a resolver and creates the
 * connection (redis.c); redis.c calls its resolver only through the table
 * (function pointers, never by name); a resolver calls the connection's
 * rk__conn_* functions below. Single loop thread throughout. */
#ifndef RK_REDIS_CONN_H
#define RK_REDIS_CONN_H

#include <stdint.h>

#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "internal.h"

/* How long one sentinel, or one cluster node asked for the slot map, may
 * take to answer (within connect_timeout_ms). */
#define RK__RESOLVE_TIMEOUT_MS 2000

typedef enum {
    ST_WAIT,                        /* waiting for the backoff timer */
    ST_RESOLVING,                   /* the resolver asks (a sentinel, a cluster node) */
    ST_CONNECTING,                  /* TCP connect in progress */
    ST_HANDSHAKE,                   /* AUTH / SELECT (/ ROLE) sent */
    ST_READY,
    ST_CLOSED                       /* rk__redis_close() called */
} rk__conn_state;

/* A command in flight: routes hiredis's callback back to the caller. When
 * the resolver keeps commands (cluster), it also holds a copy of the
 * command (argv, in the same allocation) so that an ASK can send it again
 * to the importing node. */
typedef struct rk__pending_cmd {
    rk__redis *r;
    rk__redis_reply_cb *cb;
    void *privdata;
    int64_t extra_timeout_ms;
    int argc;                       /* 0 unless the resolver keeps commands */
    const char **argv;
    size_t *argvlen;
    int is_wait;                    /* a WAIT (kept commands only) */
    int wait_forwarded;             /* ... also sent to the ASK target */
    long long wait_main;            /* ... and what the slot's master said */
} rk__pending_cmd;

/* One way of finding the address to connect to. Every hook but name and
 * resolve may be NULL (nothing to do). */
typedef struct rk__resolver {
    const char *name;               /* "static", "sentinel", "cluster" */
    /* Copy what it needs of opts into r->rs (r's name, address, AUTH and
     * loop are set). 0, or -1 (out of memory, unusable options); r->rs is
     * then freed by free. */
    int (*init)(rk__redis *r, const rk__redis_opts *opts);
    /* Before every connect attempt: find the address, set r->cur_host /
     * cur_port and call rk__conn_connect(); or, while asking, call
     * rk__conn_resolving() and later one of the two; or rk__conn_failed()
     * (back off and resolve again). */
    void (*resolve)(rk__redis *r);
    /* The query in flight (state ST_RESOLVING) took longer than
     * RK__RESOLVE_TIMEOUT_MS (or connect_timeout_ms): give it up, go on. */
    void (*timeout)(rk__redis *r);
    /* After AUTH and SELECT were sent: send more handshake commands (ROLE)
     * and return how many; each answers with rk__conn_handshake_ok() or
     * rk__conn_handshake_failed(). */
    int (*handshake)(rk__redis *r);
    /* Nonzero: rk__pending_cmd keeps a copy of every command. */
    int keeps_commands;
    /* A command of r went out (pc->argc set when keeps_commands). */
    void (*sent)(rk__redis *r, rk__pending_cmd *pc);
    /* A reply to a command of r arrived (after the watchdog counted it).
     * Return 1 when the resolver took pc over (it delivers it later), else
     * 0; it may replace *reply (NULL: treat as a lost connection). */
    int (*reply)(rk__redis *r, rk__pending_cmd *pc, redisReply **reply);
    /* The connection was lost (or dropped). */
    void (*lost)(rk__redis *r);
    /* rk__redis_close(): give up whatever is in flight. */
    void (*close)(rk__redis *r);
    /* Free r->rs (also after a failed init). */
    void (*free)(rk__redis *r);
} rk__resolver;

extern const rk__resolver rk__resolver_static;
extern const rk__resolver rk__resolver_sentinel;
extern const rk__resolver rk__resolver_cluster;

struct rk__redis {
    uv_loop_t *loop;
    rk__redis_opts opts;
    char *host, *username, *password, *name;
    rk__redis_state_cb *state_cb;
    void *ud;
    const rk__resolver *res;        /* chosen once, by resolvers.c */
    void *rs;                       /* the resolver's state */

    redisAsyncContext *ac;          /* NULL when not connected */
    rk__conn_state state;
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
    /* Set by the resolver (cluster): redirections since the last good
     * reply count as failed attempts in the backoff; retry_now makes the
     * next reconnect immediate (after a MOVED). */
    int redirects;
    int retry_now;
    /* opts.reply_arena: where replies are built (outlives the contexts) */
    rk__arena arena;
};

/* redis.c - what a resolver may ask of its connection. */

/* Create a connection resolved by res and start connecting (the public
 * rk__redis_new, in resolvers.c, picks res). NULL on failure. */
rk__redis *rk__conn_new(uv_loop_t *loop, const rk__redis_opts *opts, const rk__resolver *res,
                       rk__redis_state_cb *state_cb, void *ud);
/* Log with the connection's prefix ("redis <name> <host>:<port>: "). */
void rk__conn_log(rk__redis *r, rk_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The resolver is asking (the watchdog times the query). */
void rk__conn_resolving(rk__redis *r);
/* Connect to r->cur_host:cur_port now. */
void rk__conn_connect(rk__redis *r);
/* No address now: wait out the backoff, then resolve again. */
void rk__conn_failed(rk__redis *r);
/* Waiting out a backoff: resolve again at once instead. */
void rk__conn_retry_now(rk__redis *r);
/* A handshake command the resolver sent succeeded / failed (logged). */
void rk__conn_handshake_ok(rk__redis *r);
void rk__conn_handshake_failed(rk__redis *r);
/* Fill argv with "AUTH [username] password" (a password is set) and
 * return the argument count. */
int rk__conn_auth_argv(const rk__redis *r, const char *argv[3]);
/* The watchdog's count of commands in flight (on r's context, or sent on
 * by the resolver): one went out, waited for extra_timeout_ms more (a
 * BLOCK); one was answered or given up. */
void rk__conn_count_sent(rk__redis *r, int64_t extra_timeout_ms);
void rk__conn_count_answered(rk__redis *r);
/* Hand reply (NULL: lost) to pc's caller and free pc. */
void rk__conn_deliver(rk__pending_cmd *pc, redisReply *reply);

#endif
