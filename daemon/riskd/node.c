/* node.c - one riskd process among several: leases, partitions, engines.
 *
 * The input is split into `partitions` (default 1). Partition p has its own
 * streams, checkpoint and lease; with more than one partition every key of p
 * carries the hash tag {p} (config.c, rk__config_partition), so on a Redis
 * Cluster it lives on one node. Each partition is served by exactly one
 * riskd at a time: the one holding its lease. For every partition this
 * process holds, it runs one engine (engine.c) with its own connections.
 *
 * Every state.lease_ttl / 3 the node, on a connection of its own:
 *
 *  1. heartbeats: ZADD <state.key>:members <now + ttl> <consumer> (a script
 *     using Redis's clock, which also drops members whose time ran out) and
 *     gets the live members back, sorted by name;
 *  2. for each partition p - the preferred owner being member[p mod count]
 *     and the fair share ceil(partitions / count):
 *     - held by us: the lease is renewed (a script that succeeds only while
 *       the lease still names us and the epoch is still ours). When we hold
 *       more than the fair share and another live member is preferred for
 *       p, the engine is stopped cleanly (final checkpoint and
 *       acknowledgements) and the lease released: that is how a joining
 *       member gets its share. Within the share a holder keeps what it has
 *       (no flapping when a paused or restarted member comes back);
 *     - not held, and preferred to us (even at our share: we then hand
 *       over one that is not, next tick) or, below our share, seen free
 *       for a lease time (its preferred owner does not take it): acquired (a
 *       script: when the lease is absent, released, or names us, raise
 *       <state.key>:epoch - the fencing token - to max(epoch + 1, Redis's
 *       TIME in ms), so that a failover that lost an epoch cannot hand it
 *       out again, and SET the lease PX ttl).
 *
 * The lease value is "<consumer> held" or "<consumer> released". The epoch
 * the acquire returns is the fencing token: the engine's every write (the
 * publish-once script, acknowledgements, checkpoints) and every read of
 * the group (XREADGROUP inside a script, reader.c) is checked by Redis
 * against the partition's epoch key, so a paused or cut-off old holder can
 * read and write nothing once a new one acquired. The holder itself stops reading
 * once its lease may have expired (acquire/renew send time + 0.8 ttl, on
 * the monotonic clock), before Redis expires it.
 *
 * Taking over from another holder (anything but a lease released cleanly or
 * one never held), the engine starts TAKEOVER_WAIT_MS after the acquire: a
 * read the old holder sent before its lease ran out may still be blocked in
 * Redis for up to 1 s (a plain XREAD wait now, which delivers nothing; a
 * release before fenced reads blocked in XREADGROUP itself and could
 * deliver entries to the old consumer). (A clean
 * release comes after the old engine closed its connections, which cancels
 * a blocked read.) Then the engine restores the checkpoint and claims every
 * entry other consumers hold (XAUTOCLAIM min-idle 0): entries at or before
 * the checkpoint's positions are acknowledged, the rest applied. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "internal.h"

#define TAKEOVER_WAIT_MS 1500       /* > the engine's XREADGROUP BLOCK (1 s) */
#define VALID_SHARE 0.8             /* of the ttl, from when the renew was sent */
#define STOP_WAIT_MS 20000          /* engines (10 s each at most) and releases */

enum { P_FREE, P_ACQUIRING, P_WAITING, P_ACTIVE, P_STOPPING, P_STOPPED, P_LOST };

typedef struct part {
    struct rk__node *n;
    int p;
    char name[16];                  /* "<p>", or "cross" (the cross pipeline) */
    char *lease_key, *epoch_key;
    rk__redis *r;                    /* the lease's node: n->r unless on a cluster */
    int st;
    long long epoch;
    bool takeover;
    uint64_t start_at;              /* P_WAITING: loop ms when the engine may start */
    int wait_ticks;                 /* P_WAITING: ticks seen so far */
    int last_wait_ticks;            /* ticks the last takeover waited (0 none yet) */
    uint64_t sent_hr;               /* when the lease command in flight was sent */
    uint64_t valid_until_hr;        /* past this we may not act on the lease */
    bool cmd_inflight;              /* a lease command of ours is out */
    int64_t free_since;             /* loop ms it was first seen free; 0 no */
    char holder[128];               /* who holds it, when another */
    rk__engine *eng;
    uint64_t acquired, lost, released;
} part;

struct rk__node {
    uv_loop_t *loop;
    rk__config *cfg;
    rk__redis *r;                    /* heartbeat (and, without a cluster, everything) */
    rk__redis *r_alerts;             /* cluster: the alert stream's node (fence mirror) */
    char *mirror_key;               /* cluster: riskd:fence:{<alert stream's tag>} */
    rk__lists_sync *lists;          /* follows the reference lists (lists_sync.c) */
    part *parts;
    int np;
    char *members_key;
    char **members;
    size_t nmembers;
    uv_timer_t tick;
    uv_timer_t reap;                /* frees stopped and lost engines */
    uv_timer_t stop_timer;
    int handles;                    /* open handles; freed when 0 */
    bool ticking;                   /* a heartbeat is in flight */
    int ticks;
    bool ever_ready;
    void (*ready_cb)(void *ud, bool active);
    void *ready_ud;
    bool stopping;
    uint64_t stop_since;            /* loop time the stop began */
    bool leaving;                   /* the ZREM of the members is out */
    bool stop_done;
    void (*stop_cb)(void *ud);
    void *stop_ud;
};
/* ===================================================================
 * Scripts
 * =================================================================== */

/* KEYS[1] members; ARGV[1] me, ARGV[2] ttl ms. Live members by score. */
static const char heartbeat_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    "return redis.call('ZRANGE', KEYS[1], 0, -1)\n";

/* KEYS[1] lease, KEYS[2] epoch; ARGV[1] me, ARGV[2] ttl ms.
 * -> {epoch, previous value or "", 1 when an epoch existed} or {0, holder}.
 * The new epoch is max(epoch + 1, Redis's TIME in ms): an increment alone
 * could be handed out twice when a failover loses it with the old master
 * (the promoted replica still has the epoch before it); the time cannot
 * come back on the new master, which acquires only after the sentinels'
 * down-after time (as long as the masters' clocks agree to better than
 * that). With redis.wait_replicas the acquirer also WAITs for it. */
static const char acquire_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and cur ~= ARGV[1] .. ' held' and string.sub(cur, -5) == ' held' then\n"
    "  return {0, string.sub(cur, 1, -6)}\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local had = redis.call('GET', KEYS[2])\n"
    "local last = tonumber(had or '0') or 0\n"
    "local ep = redis.call('INCRBY', KEYS[2], math.max(1, now - last))\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' held', 'PX', ARGV[2])\n"
    "return {ep, cur or '', had and 1 or 0}\n";

/* KEYS[1] lease, KEYS[2] epoch; ARGV[1] me, ARGV[2] ttl ms, ARGV[3] epoch.
 * -> 1 renewed, 0 lost. */
static const char renew_lua[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and cur ~= ARGV[1] .. ' held' then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' held', 'PX', ARGV[2])\n"
    "return 1\n";

/* KEYS[1] lease, KEYS[2] epoch; ARGV[1] me, ARGV[2] keep ms, ARGV[3] epoch.
 * Marks the lease released (kept a while so the next holder knows it may
 * start at once). -> 1 or 0 when it was not ours any more. */
static const char release_lua[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[3] or "
    "redis.call('GET', KEYS[1]) ~= ARGV[1] .. ' held' then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' released', 'PX', ARGV[2])\n"
    "return 1\n";

/* ===================================================================
 * Helpers
 * =================================================================== */

static char *keyf(const char *base, const char *suffix)
{
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *k = malloc(n);
    if (k != NULL)
        snprintf(k, n, "%s%s", base, suffix);
    return k;
}

static const char *me(const rk__node *n)
{
    return n->cfg->consumer;
}

static int ttl_ms(const rk__node *n)
{
    return (int)n->cfg->lease_ttl;
}

static uint64_t valid_until(const rk__node *n, uint64_t sent_hr)
{
    return sent_hr + (uint64_t)(VALID_SHARE * (double)n->cfg->lease_ttl * 1e6);
}

static void lease_cmd(part *pt, const char *script, rk__redis_reply_cb *cb, const char *arg3)
{
    rk__node *n = pt->n;
    char ttl[24];
    const char *argv[8];
    int argc = 0;

    snprintf(ttl, sizeof(ttl), "%d", script == release_lua ? 60000 : ttl_ms(n));
    argv[argc++] = "EVAL";
    argv[argc++] = script;
    argv[argc++] = "2";
    argv[argc++] = pt->lease_key;
    argv[argc++] = pt->epoch_key;
    argv[argc++] = me(n);
    argv[argc++] = ttl;
    if (arg3 != NULL)
        argv[argc++] = arg3;
    if (rk__redis_cmd(pt->r, cb, pt, 0, argc, argv, NULL) == 0)
        pt->cmd_inflight = true;
}

/* The preferred owner of partition p among the live members. */
static const char *preferred(const rk__node *n, int p)
{
    if (n->nmembers == 0)
        return NULL;
    return n->members[(size_t)p % n->nmembers];
}

static bool is_member(const rk__node *n, const char *name)
{
    size_t i;
    for (i = 0; i < n->nmembers; i++)
        if (strcmp(n->members[i], name) == 0)
            return true;
    return false;
}

/* Pipelines held: the partitions' (the cross pipeline's too with cross). */
static int held_count_of(const rk__node *n, bool cross)
{
    int p, k = 0;
    for (p = 0; p < (cross ? n->np : n->cfg->partitions); p++)
        if (n->parts[p].st == P_ACTIVE || n->parts[p].st == P_WAITING ||
            n->parts[p].st == P_STOPPING)
            k++;
    return k;
}

static int held_count(const rk__node *n)
{
    return held_count_of(n, true);
}

static void maybe_ready(rk__node *n, bool active)
{
    if (n->ever_ready || n->stopping)
        return;
    n->ever_ready = true;
    if (n->ready_cb)
        n->ready_cb(n->ready_ud, active);
}

/* ===================================================================
 * Engines
 * =================================================================== */

static void reap(uv_timer_t *t);
static void stop_step(rk__node *n);

static void on_engine_ready(void *ud)
{
    part *pt = ud;
    rk__log(RK_LOG_NOTICE, "partition %s: consuming (epoch %lld)", pt->name, pt->epoch);
    maybe_ready(pt->n, true);
}

static void on_engine_lost(void *ud, const char *why)
{
    part *pt = ud;
    (void)why;
    if (pt->st == P_LOST)
        return;
    pt->st = P_LOST;
    pt->lost++;
    uv_timer_start(&pt->n->reap, reap, 0, 0);
}

static void on_engine_stopped(void *ud)
{
    part *pt = ud;
    pt->st = P_STOPPED;
    uv_timer_start(&pt->n->reap, reap, 0, 0);
}

static void start_engine(part *pt)
{
    rk__node *n = pt->n;
    rk__config *c;
    char err[RK_ERRLEN];

    if (rk__config_partition(n->cfg, pt->p, &c, err, sizeof(err)) != 0) {
        rk__log(RK_LOG_ERR, "partition %s: %s", pt->name, err);
        return;                     /* stays waiting: retried at the next tick */
    }
    pt->eng = rk__engine_new(n->loop, c, err, sizeof(err));
    if (pt->eng == NULL) {
        rk__log(RK_LOG_ERR, "partition %s: %s", pt->name, err);
        rk__config_free(c);
        return;
    }
    /* Claim every entry other consumers hold, whatever its idle time: also
     * after a clean release, since the old holder's engine stops with what
     * it had read but not applied still pending under its name. */
    if (rk__engine_set_lease(pt->eng, pt->epoch, true, on_engine_lost, pt) != 0) {
        rk__log(RK_LOG_ERR, "partition %s: cannot fence the engine", pt->name);
        rk__engine_free(pt->eng);
        pt->eng = NULL;
        return;
    }
    rk__engine_on_ready(pt->eng, on_engine_ready, pt);
    rk__engine_lease_until(pt->eng, pt->valid_until_hr);
    pt->st = P_ACTIVE;
}

static void on_release(rk__redis *r, redisReply *reply, void *pd)
{
    part *pt = pd;
    rk__node *n = pt->n;
    (void)r;
    pt->cmd_inflight = false;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
        rk__log(RK_LOG_NOTICE, "partition %s: lease released", pt->name);
    if (n->stopping)
        stop_step(n);
}

/* Free engines that stopped (then release their lease) or were lost. Runs
 * from a timer: never inside one of the engine's own callbacks. */
static void reap(uv_timer_t *t)
{
    rk__node *n = t->data;
    char ep[24];
    int p;

    bool again = false;

    for (p = 0; p < n->np; p++) {
        part *pt = &n->parts[p];
        if (pt->st != P_STOPPED && pt->st != P_LOST)
            continue;
        rk__engine_free(pt->eng);
        pt->eng = NULL;
        if (pt->st == P_STOPPED) {
            if (pt->cmd_inflight) {
                again = true;       /* one lease command at a time: after its reply */
                continue;
            }
            pt->released++;
            snprintf(ep, sizeof(ep), "%lld", pt->epoch);
            lease_cmd(pt, release_lua, on_release, ep);
        }
        pt->st = P_FREE;
        pt->free_since = 0;
    }
    if (again)
        uv_timer_start(&n->reap, reap, 50, 0);
    if (n->stopping)
        stop_step(n);
}

/* ===================================================================
 * The tick: heartbeat, then per partition
 * =================================================================== */

/* Acquired (and, with redis.wait_replicas, replicated): start the engine,
 * at once after a clean release, else after TAKEOVER_WAIT_MS. */
static void begin(part *pt)
{
    rk__node *n = pt->n;
    if (n->stopping) {
        /* Stopped while the WAIT or the mirror update was in flight: give
         * the lease back instead of starting. */
        char ep[24];
        snprintf(ep, sizeof(ep), "%lld", pt->epoch);
        pt->st = P_FREE;
        lease_cmd(pt, release_lua, on_release, ep);
        return;
    }
    if (!pt->takeover) {
        start_engine(pt);
        if (pt->st != P_ACTIVE)
            pt->st = P_WAITING;     /* start_engine failed: retried */
        return;
    }
    pt->st = P_WAITING;
    pt->wait_ticks = 0;
    /* One clock for arming and checking: the timer runs on the loop's
     * time, so the start is checked against it too (on_tick), refreshed
     * first so the wait is whole from now. (Armed on the cached loop time
     * but checked with uv_hrtime, the tick came a few ms "early" and the
     * start slipped to the next heartbeat, a lease_ttl / 3 later.) */
    uv_update_time(n->loop);
    pt->start_at = uv_now(n->loop) + TAKEOVER_WAIT_MS;
    uv_timer_start(&n->tick, n->tick.timer_cb, TAKEOVER_WAIT_MS,
                   uv_timer_get_repeat(&n->tick));
}

/* KEYS[1] the mirror hash; ARGV[1] the partition's epoch key, ARGV[2] its
 * epoch: raise the mirrored epoch, never lower it. */
static const char mirror_lua[] =
    "local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')\n"
    "if cur < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end\n"
    "return 1\n";

static void on_mirrored(rk__redis *r, redisReply *reply, void *pd)
{
    part *pt = pd;
    (void)r;
    pt->cmd_inflight = false;
    if (pt->st != P_ACQUIRING)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        rk__log(RK_LOG_WARNING, "partition %s: mirroring epoch %lld to %s failed (%s); "
                "acquired again at the next tick", pt->name, pt->epoch, pt->n->mirror_key,
                reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
        pt->st = P_FREE;
        return;
    }
    begin(pt);
}

/* On a cluster the alerts are written on another node than the lease: the
 * publish script checks a mirror of the epoch kept in the alert stream's
 * slot, raised here before the engine writes anything under the epoch. */
static void fenced_begin(part *pt)
{
    rk__node *n = pt->n;
    char ep[24];
    const char *argv[6];
    if (n->r_alerts == NULL) {
        begin(pt);
        return;
    }
    snprintf(ep, sizeof(ep), "%lld", pt->epoch);
    argv[0] = "EVAL"; argv[1] = mirror_lua; argv[2] = "1"; argv[3] = n->mirror_key;
    argv[4] = pt->epoch_key; argv[5] = ep;
    pt->st = P_ACQUIRING;
    if (rk__redis_cmd(n->r_alerts, on_mirrored, pt, 0, 6, argv, NULL) == 0)
        pt->cmd_inflight = true;
    else
        pt->st = P_FREE;
}

static void on_acquire_wait(rk__redis *r, redisReply *reply, void *pd)
{
    part *pt = pd;
    rk__node *n = pt->n;
    (void)r;
    pt->cmd_inflight = false;
    if (pt->st != P_ACQUIRING)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER ||
        reply->integer < n->cfg->redis_wait_replicas) {
        rk__log(RK_LOG_WARNING, "partition %s: the lease's epoch %lld did not reach %d "
                "replica(s) in time; not starting (acquired again at the next tick)", pt->name,
                pt->epoch, n->cfg->redis_wait_replicas);
        pt->st = P_FREE;
        return;
    }
    fenced_begin(pt);
}

static void on_acquire(rk__redis *r, redisReply *reply, void *pd)
{
    part *pt = pd;
    rk__node *n = pt->n;
    const redisReply *prev;
    bool clean;
    (void)r;
    pt->cmd_inflight = false;
    if (pt->st != P_ACQUIRING)
        return;
    pt->st = P_FREE;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            rk__log(RK_LOG_ERR, "partition %s: acquiring the lease %s failed: %s", pt->name,
                    pt->lease_key, reply->str);
        return;
    }
    if (reply->element[0]->integer == 0) {
        snprintf(pt->holder, sizeof(pt->holder), "%s", reply->element[1]->str);
        pt->free_since = 0;
        return;
    }
    pt->epoch = reply->element[0]->integer;
    pt->holder[0] = '\0';
    pt->valid_until_hr = valid_until(n, pt->sent_hr);
    if (n->stopping) {              /* acquired while stopping: give it back */
        char ep[24];
        snprintf(ep, sizeof(ep), "%lld", pt->epoch);
        lease_cmd(pt, release_lua, on_release, ep);
        return;
    }
    pt->acquired++;
    /* Start at once only after a clean release or on a lease never held:
     * otherwise the old holder may still have a blocked read in Redis. */
    prev = reply->element[1];
    clean = prev->len == 0 ? reply->elements >= 3 &&
                                 reply->element[2]->type == REDIS_REPLY_INTEGER &&
                                 reply->element[2]->integer == 0
                           : (prev->len > 9 && strcmp(prev->str + prev->len - 9, " released") == 0);
    pt->takeover = !clean;
    rk__log(RK_LOG_NOTICE, "partition %s: lease %s acquired (epoch %lld)%s%s%s", pt->name,
            pt->lease_key, pt->epoch, clean ? "" : "; taking over from \"",
            clean ? "" : (prev->len ? prev->str : "an expired lease"), clean ? "" : "\"");
    if (n->cfg->redis_wait_replicas > 0) {
        /* The epoch must survive a failover before anything is written
         * under it, or a new master could hand the same epoch out again. */
        char wn[16], wt[24];
        const char *argv[3] = {"WAIT", wn, wt};
        snprintf(wn, sizeof(wn), "%d", n->cfg->redis_wait_replicas);
        snprintf(wt, sizeof(wt), "%lld", (long long)n->cfg->redis_wait_timeout);
        pt->st = P_ACQUIRING;
        if (rk__redis_cmd(pt->r, on_acquire_wait, pt, n->cfg->redis_wait_timeout, 3, argv,
                          NULL) == 0)
            pt->cmd_inflight = true;
        else
            pt->st = P_FREE;        /* acquired again at the next tick */
        return;
    }
    fenced_begin(pt);
}

static void on_renew(rk__redis *r, redisReply *reply, void *pd)
{
    part *pt = pd;
    rk__node *n = pt->n;
    (void)r;
    pt->cmd_inflight = false;
    if (pt->st != P_ACTIVE && pt->st != P_WAITING && pt->st != P_STOPPING)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            rk__log(RK_LOG_ERR, "partition %s: renewing the lease failed: %s", pt->name,
                    reply->str);
        return;                     /* it may still run out: the engine checks */
    }
    if (reply->integer == 1) {
        pt->valid_until_hr = valid_until(n, pt->sent_hr);
        if (pt->eng != NULL)
            rk__engine_lease_until(pt->eng, pt->valid_until_hr);
        return;
    }
    rk__log(RK_LOG_WARNING, "partition %s: lease lost (epoch %lld is no longer current)",
            pt->name, pt->epoch);
    pt->lost++;
    pt->st = P_LOST;
    uv_timer_start(&n->reap, reap, 0, 0);
}

static void on_peek(rk__redis *r, redisReply *reply, void *pd)
{
    part *pt = pd;
    rk__node *n = pt->n;
    (void)r;
    pt->cmd_inflight = false;
    if (pt->st != P_FREE || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_STRING && reply->len > 5 &&
        strcmp(reply->str + reply->len - 5, " held") == 0) {
        snprintf(pt->holder, sizeof(pt->holder), "%.*s", (int)reply->len - 5, reply->str);
        pt->free_since = 0;
    } else if (reply->type == REDIS_REPLY_NIL || reply->type == REDIS_REPLY_STRING) {
        pt->holder[0] = '\0';
        if (pt->free_since == 0)
            pt->free_since = (int64_t)uv_now(n->loop);
    }
}

/* This process's fair share of np pipelines: ceil(np / live members). */
static int fair_share(const rk__node *n, int np)
{
    size_t m = n->nmembers ? n->nmembers : 1;
    return (int)(((size_t)np + m - 1) / m);
}

/* One partition at one tick (see the top of the file); held: the
 * pipelines held among those shared out with it, fair: our share of them.
 * The partitions are shared out among the members; the cross pipeline
 * (cross.c) on its own, a share of one, preferred for member[partitions
 * mod count]. */
static void visit(rk__node *n, part *pt, int *held, int fair)
{
    const char *pref = preferred(n, pt->p);
    bool mine = pref != NULL && strcmp(pref, me(n)) == 0;
    int64_t now = (int64_t)uv_now(n->loop);
    char ep[24];

    if (pt->cmd_inflight)
        return;
    switch (pt->st) {
    case P_FREE:
        if (n->stopping)
            return;
        /* Ours by preference: taken when free even at our share (one
         * over it at most); the tick after, we hand over one that is not
         * ours by preference. A holder over its share gives partitions to
         * their preferred members whatever they hold, so without this a
         * partition handed to a member at its share waited for somebody
         * else's "free for a lease time" (and stayed unowned if that never
         * came). Each step puts a partition with its preferred owner,
         * which keeps it: the moves end. */
        /* A preferred partition last seen held by another is only peeked
         * at (its release clears pt->holder): an acquire sent every tick
         * counts against our share at once and so kept us, below our
         * share, from ever taking another partition found free. */
        if ((mine && *held <= fair && pt->holder[0] == '\0') ||
            (*held < fair && pt->free_since > 0 && now - pt->free_since >= n->cfg->lease_ttl)) {
            pt->st = P_ACQUIRING;
            pt->sent_hr = uv_hrtime();
            lease_cmd(pt, acquire_lua, on_acquire, NULL);
            if (!pt->cmd_inflight)
                pt->st = P_FREE;
            else
                (*held)++;          /* counts against the share at once */
        } else {
            const char *argv[2] = {"GET", pt->lease_key};
            if (rk__redis_cmd(pt->r, on_peek, pt, 0, 2, argv, NULL) == 0)
                pt->cmd_inflight = true;
        }
        return;
    case P_WAITING:
    case P_ACTIVE:
    case P_STOPPING:
        snprintf(ep, sizeof(ep), "%lld", pt->epoch);
        pt->sent_hr = uv_hrtime();
        lease_cmd(pt, renew_lua, on_renew, ep);
        /* Over the fair share: hand over a partition another live member
         * is preferred for (one per tick). A holder within its share keeps
         * what it has, so a returning member does not make them flap. */
        if (pt->st == P_ACTIVE && *held > fair && !mine && pref != NULL &&
            is_member(n, pref) && !n->stopping) {
            rk__log(RK_LOG_NOTICE, "partition %s: handing over to %s (%d held, fair share %d)",
                    pt->name, pref, *held, fair);
            pt->st = P_STOPPING;
            (*held)--;
            rk__engine_stop(pt->eng, on_engine_stopped, pt);
        }
        return;
    default:
        return;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_members(rk__node *n)
{
    size_t i;
    for (i = 0; i < n->nmembers; i++)
        free(n->members[i]);
    free(n->members);
    n->members = NULL;
    n->nmembers = 0;
}

static void on_heartbeat(rk__redis *r, redisReply *reply, void *pd)
{
    rk__node *n = pd;
    size_t i;
    int p, held;
    (void)r;
    n->ticking = false;
    if (reply == NULL)
        return;
    if (reply->type != REDIS_REPLY_ARRAY) {
        rk__log(RK_LOG_ERR, "heartbeat on %s failed: %s", n->members_key,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return;
    }
    free_members(n);
    n->members = calloc(reply->elements + 1, sizeof(*n->members));
    if (n->members == NULL)
        return;
    for (i = 0; i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        if (m->type != REDIS_REPLY_STRING)
            continue;
        if ((n->members[n->nmembers] = strdup(m->str)) != NULL)
            n->nmembers++;
    }
    qsort(n->members, n->nmembers, sizeof(*n->members), cmp_str);
    held = 0;
    for (p = 0; p < n->cfg->partitions; p++)
        if (n->parts[p].st == P_ACTIVE || n->parts[p].st == P_WAITING ||
            n->parts[p].st == P_ACQUIRING)
            held++;
    for (p = 0; p < n->cfg->partitions; p++)
        visit(n, &n->parts[p], &held, fair_share(n, n->cfg->partitions));
    if (n->np > n->cfg->partitions) {
        part *cx = &n->parts[n->cfg->partitions];
        held = cx->st == P_ACTIVE || cx->st == P_WAITING || cx->st == P_ACQUIRING;
        visit(n, cx, &held, 1);
    }
    if (++n->ticks >= 2 && held_count(n) == 0)
        maybe_ready(n, false);      /* a standby is up too */
}

static void on_tick(uv_timer_t *t)
{
    rk__node *n = t->data;
    char ttl[24];
    int p;
    uint64_t now = uv_now(n->loop);
    const char *argv[6];

    /* Engines waiting out a takeover start now. */
    for (p = 0; p < n->np; p++) {
        part *pt = &n->parts[p];
        if (pt->st != P_WAITING || n->stopping)
            continue;
        pt->wait_ticks++;
        if (now >= pt->start_at) {
            start_engine(pt);
            if (pt->st == P_ACTIVE)
                pt->last_wait_ticks = pt->wait_ticks;
        }
    }
    if (n->ticking || n->leaving)
        return;                     /* leaving: no heartbeat may re-add us */
    snprintf(ttl, sizeof(ttl), "%d", ttl_ms(n));
    argv[0] = "EVAL";
    argv[1] = heartbeat_lua;
    argv[2] = "1";
    argv[3] = n->members_key;
    argv[4] = me(n);
    argv[5] = ttl;
    if (rk__redis_cmd(n->r, on_heartbeat, n, 0, 6, argv, NULL) == 0)
        n->ticking = true;
}

static void on_part_conn(rk__redis *r, int up, void *ud)
{
    part *pt = ud;
    (void)r;
    if (!up)
        pt->cmd_inflight = false;
}

static void on_conn(rk__redis *r, int up, void *ud)
{
    rk__node *n = ud;
    int p;
    (void)r;
    n->ticking = false;
    if (up) {
        on_tick(&n->tick);
        return;
    }
    for (p = 0; p < n->np; p++)
        if (n->parts[p].r == n->r)
            n->parts[p].cmd_inflight = false;
}

/* ===================================================================
 * Stopping
 * =================================================================== */

static void stop_finished(uv_timer_t *t)
{
    rk__node *n = t->data;
    void (*cb)(void *) = n->stop_cb;
    if (n->stop_done)
        return;
    n->stop_done = true;
    uv_timer_stop(&n->tick);
    uv_timer_stop(&n->stop_timer);
    n->stop_cb = NULL;
    if (cb)
        cb(n->stop_ud);
}

/* Left the members (ZREM confirmed, or the connection lost): done. */
static void on_left(rk__redis *r, redisReply *reply, void *pd)
{
    rk__node *n = pd;
    (void)r;
    (void)reply;
    uv_timer_start(&n->stop_timer, stop_finished, 0, 0);
}

/* While stopping, every 100 ms: done once no engine runs and no lease
 * command is in flight (a reply may arrive in any state), or after
 * STOP_WAIT_MS whatever is left (the leases then run out by themselves). */
static void stop_poll(uv_timer_t *t)
{
    rk__node *n = t->data;
    if (uv_now(n->loop) - n->stop_since >= STOP_WAIT_MS) {
        rk__log(RK_LOG_WARNING, "stop: leases not all released in time; they run out by "
                "themselves");
        stop_finished(t);
        return;
    }
    stop_step(n);
}

/* Stopping is done once no engine runs and no release is in flight. */
static void stop_step(rk__node *n)
{
    int p;
    const char *argv[3];
    if (n->leaving)
        return;
    for (p = 0; p < n->np; p++) {
        const part *pt = &n->parts[p];
        if (pt->eng != NULL || pt->cmd_inflight || pt->st == P_STOPPED || pt->st == P_LOST)
            return;
    }
    /* Leave the members, so the others share the partitions out without
     * waiting for this heartbeat to run out. */
    n->leaving = true;
    argv[0] = "ZREM";
    argv[1] = n->members_key;
    argv[2] = me(n);
    if (rk__redis_cmd(n->r, on_left, n, 0, 3, argv, NULL) != 0)
        uv_timer_start(&n->stop_timer, stop_finished, 0, 0);
}

/* ===================================================================
 * Public
 * =================================================================== */

static void node_closed(uv_handle_t *h)
{
    rk__node *n = h->data;
    if (--n->handles == 0)
        free(n);
}

rk__node *rk__node_new(uv_loop_t *loop, rk__config *cfg, char *err, size_t errlen)
{
    rk__node *n;
    rk__redis_opts o;
    int p;
    int64_t every;

    if (rk__registry_check(cfg, err, errlen) != 0)
        return NULL;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        goto oom;
    n->loop = loop;
    /* with a cross pipeline (cross.c), one more: index partitions */
    n->np = cfg->partitions + (rk__config_has_cross(cfg) ? 1 : 0);
    if (cfg->partitions > 1 && cfg->n_cluster > 0)
        rk__log(RK_LOG_WARNING, "%d partitions on a Redis Cluster: no cross pipeline (the "
                "partitions' streams are in different slots), so inspection_frequency, "
                "discretion's disparity, violation_hotspot and complaint_cluster by "
                "enterprise or region see only each partition's share (riskd(8), DEPLOYMENT)",
                cfg->partitions);
    n->parts = calloc((size_t)n->np, sizeof(*n->parts));
    n->members_key = keyf(cfg->state_key, ":members");
    if (n->parts == NULL || n->members_key == NULL)
        goto oom_free;
    for (p = 0; p < n->np; p++) {
        part *pt = &n->parts[p];
        char tag[24], base[40];
        pt->n = n;
        pt->p = p;
        snprintf(pt->name, sizeof(pt->name), "%d", p);
        if (p == cfg->partitions) {
            snprintf(pt->name, sizeof(pt->name), "cross");
            snprintf(tag, sizeof(tag), ":{cross}");
        } else if (cfg->partitions > 1 || cfg->n_cluster > 0)
            snprintf(tag, sizeof(tag), ":{%d}", p);
        else
            tag[0] = '\0';
        snprintf(base, sizeof(base), "%s:lease", tag);
        pt->lease_key = keyf(cfg->state_key, base);
        snprintf(base, sizeof(base), "%s:epoch", tag);
        pt->epoch_key = keyf(cfg->state_key, base);
        if (pt->lease_key == NULL || pt->epoch_key == NULL)
            goto oom_free;
    }
    n->cfg = cfg;
    rk__redis_opts_for(cfg, "lease", n->members_key, &o);
    /* A lease command must not wait longer than the lease lasts. */
    o.reply_timeout_ms = cfg->lease_ttl / 2;
    o.connect_timeout_ms = cfg->lease_ttl / 2;
    o.backoff_max_ms = cfg->lease_ttl / 3;
    n->r = rk__redis_new(loop, &o, on_conn, n);
    if (n->r == NULL) {
        n->cfg = NULL;
        goto oom_free;
    }
    for (p = 0; p < n->np; p++) {
        part *pt = &n->parts[p];
        if (cfg->n_cluster == 0) {
            pt->r = n->r;
            continue;
        }
        /* On a cluster each partition's lease lives on its own node. */
        o.cluster_slot = (int)rk__redis_keyslot(pt->lease_key, strlen(pt->lease_key));
        pt->r = rk__redis_new(loop, &o, on_part_conn, pt);
        if (pt->r == NULL)
            goto oom_conns;
    }
    if (cfg->n_cluster > 0) {
        char key[300];
        rk__fence_mirror_key(cfg, key, sizeof(key));
        o.cluster_slot = (int)rk__redis_keyslot(key, strlen(key));
        n->mirror_key = strdup(key);
        n->r_alerts = n->mirror_key ? rk__redis_new(loop, &o, NULL, n) : NULL;
        if (n->r_alerts == NULL)
            goto oom_conns;
    }
    if ((n->lists = rk__lists_sync_new(loop, cfg, NULL, NULL)) == NULL)
        goto oom_conns;
    uv_timer_init(loop, &n->tick);
    uv_timer_init(loop, &n->reap);
    uv_timer_init(loop, &n->stop_timer);
    n->tick.data = n->reap.data = n->stop_timer.data = n;
    n->handles = 3;
    every = cfg->lease_ttl / 3;
    if (every < 100)
        every = 100;
    uv_timer_start(&n->tick, on_tick, (uint64_t)every, (uint64_t)every);
    return n;

oom_conns:
    for (p = 0; p < n->np; p++)
        if (n->parts[p].r != n->r)
            rk__redis_close(n->parts[p].r);
    rk__redis_close(n->r);
    rk__redis_close(n->r_alerts);
    free(n->mirror_key);
    n->cfg = NULL;
oom_free:
    if (n->parts != NULL)
        for (p = 0; p < n->np; p++) {
            free(n->parts[p].lease_key);
            free(n->parts[p].epoch_key);
        }
    free(n->parts);
    free(n->members_key);
    free(n);
oom:
    rk_kit_errf(err, errlen, "out of memory");
    return NULL;
}

void rk__node_on_ready(rk__node *n, void (*cb)(void *ud, bool active), void *ud)
{
    n->ready_cb = cb;
    n->ready_ud = ud;
}

int rk__node_reload(rk__node *n, rk__config *cfg, char *err, size_t errlen)
{
    int p;

    if (rk__registry_check(cfg, err, errlen) != 0)
        return -1;
    if (cfg->partitions != n->cfg->partitions || cfg->lease_ttl != n->cfg->lease_ttl ||
        strcmp(cfg->state_key, n->cfg->state_key) != 0 ||
        strcmp(cfg->consumer, n->cfg->consumer) != 0)
        rk__log(RK_LOG_WARNING, "reload: partitions, state.key, state.lease_ttl and "
                "streams.consumer changes take effect at restart");
    cfg->partitions = n->cfg->partitions;   /* (which pipeline is the cross one) */
    for (p = 0; p < n->np; p++) {
        part *pt = &n->parts[p];
        rk__config *c;
        if (pt->eng == NULL || pt->st != P_ACTIVE)
            continue;
        if (rk__config_partition(cfg, p, &c, err, errlen) != 0)
            return -1;
        c->partitions = n->cfg->partitions;
        if (rk__engine_reload(pt->eng, c, err, errlen) != 0) {
            rk__config_free(c);
            return -1;              /* cannot happen after the check above */
        }
    }
    /* Keep what needs a restart (the keys every partition derives from). */
    {
#define SWAP(f) do { void *t_ = (void *)cfg->f; cfg->f = n->cfg->f; n->cfg->f = t_; } while (0)
        SWAP(redis_host); SWAP(redis_password); SWAP(redis_username); SWAP(state_key);
        SWAP(stream_key[0]); SWAP(stream_key[1]); SWAP(group); SWAP(consumer); SWAP(start);
#undef SWAP
        cfg->lease_ttl = n->cfg->lease_ttl;
        cfg->partitions = n->cfg->partitions;
        cfg->redis_port = n->cfg->redis_port;
        cfg->redis_db = n->cfg->redis_db;
    }
    rk__config_free(n->cfg);
    n->cfg = cfg;
    return 0;
}

void rk__node_reject_config(rk__node *n, const char *path, const char *error)
{
    int p;
    for (p = 0; p < n->np; p++)
        if (n->parts[p].st == P_ACTIVE && n->parts[p].eng != NULL) {
            rk__engine_reject_config(n->parts[p].eng, path, error);
            return;                 /* one alert, from the first partition held */
        }
}

void rk__node_stop(rk__node *n, void (*done)(void *ud), void *ud)
{
    int p;
    n->stopping = true;
    n->stop_cb = done;
    n->stop_ud = ud;
    for (p = 0; p < n->np; p++) {
        part *pt = &n->parts[p];
        if (pt->st == P_ACTIVE) {
            pt->st = P_STOPPING;
            rk__engine_stop(pt->eng, on_engine_stopped, pt);
        } else if (pt->st == P_WAITING) {
            pt->st = P_STOPPED;     /* no engine yet: just release */
        }
    }
    n->stop_since = uv_now(n->loop);
    uv_timer_start(&n->reap, reap, 0, 0);
    uv_timer_start(&n->stop_timer, stop_poll, 100, 100);
}

void rk__node_free(rk__node *n)
{
    int p;
    if (n == NULL)
        return;
    /* Connections first: closing one runs the callbacks of its commands in
     * flight (with NULL), which still use the partitions. */
    for (p = 0; p < n->np; p++)
        if (n->parts[p].r != n->r)
            rk__redis_close(n->parts[p].r);
    rk__redis_close(n->r);
    rk__redis_close(n->r_alerts);
    rk__lists_sync_free(n->lists);
    n->lists = NULL;
    for (p = 0; p < n->np; p++) {
        rk__engine_free(n->parts[p].eng);
        n->parts[p].eng = NULL;
        free(n->parts[p].lease_key);
        free(n->parts[p].epoch_key);
    }
    free(n->parts);
    n->parts = NULL;
    n->np = 0;
    free_members(n);
    free(n->members_key);
    free(n->mirror_key);
    rk__config_free(n->cfg);
    uv_timer_stop(&n->tick);
    uv_timer_stop(&n->reap);
    uv_timer_stop(&n->stop_timer);
    uv_close((uv_handle_t *)&n->tick, node_closed);
    uv_close((uv_handle_t *)&n->reap, node_closed);
    uv_close((uv_handle_t *)&n->stop_timer, node_closed);
}

bool rk__node_active(const rk__node *n)
{
    return held_count(n) > 0;
}

/* ===================================================================
 * Health
 *
 * /healthz's one JSON object: the process's status - the worst of its
 * partitions' (refused, redis_down, then starting, then consuming; one being handed
 * over counts only alone), or stopping, standby - why, the consumer lag summed over its engines, and the
 * partitions it holds. Healthy (HTTP 200) only when consuming.
 * =================================================================== */

/* The state of partition pt held by this process, with why in *why. */
static const char *part_status(const part *pt, char *why, size_t len)
{
    const rk__node *n = pt->n;
    switch (pt->st) {
    case P_WAITING: {
        uint64_t now = uv_now(n->loop);
        if (!pt->takeover || now >= pt->start_at)
            snprintf(why, len, "partition %s: starting its pipeline", pt->name);
        else
            snprintf(why, len, "partition %s: lease acquired (epoch %lld), taking over: "
                     "consuming starts in %llu ms, once a read the previous holder left "
                     "blocked in Redis has ended", pt->name, pt->epoch,
                     (unsigned long long)(pt->start_at - now));
        return "starting";
    }
    case P_STOPPING:
        snprintf(why, len, "partition %s: handing over (final checkpoint)", pt->name);
        return "stopping";
    case P_ACTIVE:
        if (pt->eng != NULL && rk__redis_ready(n->r) && rk__engine_read_error(pt->eng)) {
            snprintf(why, len, "partition %s: %s; nothing is consumed until a read succeeds",
                     pt->name, rk__engine_read_error(pt->eng));
            return "refused";
        }
        if (pt->eng != NULL && rk__engine_healthy(pt->eng)) {
            snprintf(why, len, "partition %s: consuming (epoch %lld)", pt->name, pt->epoch);
            return "consuming";
        }
        if (pt->eng != NULL && rk__engine_ever_ready(pt->eng)) {
            snprintf(why, len, "partition %s: its connections to Redis are down, "
                     "reconnecting", pt->name);
            return "redis_down";
        }
        snprintf(why, len, "partition %s: restoring its checkpoint and claiming pending "
                 "entries before consuming", pt->name);
        return "starting";
    default:
        why[0] = '\0';
        return NULL;
    }
}

/* Which partition's status the process reports: the worst; a partition
 * being handed over (stopping) only when it is the only kind held. */
static int status_rank(const char *st)
{
    return strcmp(st, "refused") == 0 ? 4 :
           strcmp(st, "redis_down") == 0 ? 3 : strcmp(st, "starting") == 0 ? 2 :
           strcmp(st, "consuming") == 0 ? 1 : 0;
}

char *rk__node_health(const rk__node *n, int *healthy)
{
    json_t *o = json_object(), *parts = json_array(), *lag = json_object();
    const char *status = NULL;
    char reason[512], why[384];
    long long lag_n = -1;
    double lag_s = -1;
    int p, held = 0;
    char *text;

    reason[0] = '\0';
    for (p = 0; p < n->np; p++) {
        const part *pt = &n->parts[p];
        const char *st = part_status(pt, why, sizeof(why));
        json_t *j;
        long long en = -1;
        double es = -1;
        if (st == NULL)
            continue;
        held++;
        if (status == NULL || status_rank(st) > status_rank(status)) {
            status = st;
            snprintf(reason, sizeof(reason), "%s", why);
        }
        j = json_pack("{s:o, s:s, s:I}", "partition",
                      p < n->cfg->partitions ? json_integer(p) : json_string(pt->name),
                      "status", st, "epoch", (json_int_t)pt->epoch);
        if (pt->eng != NULL && pt->st == P_ACTIVE) {
            rk__engine_lag(pt->eng, &en, &es);
            if (en >= 0)
                lag_n = (lag_n < 0 ? 0 : lag_n) + en;
            if (es > lag_s)
                lag_s = es;
        }
        json_object_set_new(j, "lag_entries", en >= 0 ? json_integer(en) : json_null());
        json_object_set_new(j, "lag_seconds", es >= 0 ? json_real(es) : json_null());
        json_array_append_new(parts, j);
    }
    if (n->stopping) {
        status = "stopping";
        snprintf(reason, sizeof(reason), "stopping: final checkpoints, then the leases "
                 "are released");
    } else if (!rk__redis_ready(n->r)) {
        status = "redis_down";
        if (n->cfg->n_cluster > 0 || n->cfg->n_sentinels > 0)
            snprintf(reason, sizeof(reason), "cannot reach Redis (%s); reconnecting",
                     n->cfg->n_cluster > 0 ? "redis.cluster" : "redis.sentinels");
        else
            snprintf(reason, sizeof(reason), "cannot reach Redis at %s:%d; reconnecting",
                     n->cfg->redis_host, n->cfg->redis_port);
    } else if (held == 0 && !n->ever_ready) {
        status = "starting";
        snprintf(reason, sizeof(reason), "joining: the first heartbeats decide which "
                 "partitions this process takes");
    } else if (held == 0) {
        status = "standby";
        if (n->np == 1 && n->parts[0].holder[0] != '\0')
            snprintf(reason, sizeof(reason), "standby: the lease is held by \"%s\"; this "
                     "process takes over if it goes away", n->parts[0].holder);
        else
            snprintf(reason, sizeof(reason), "standby: %zu live member(s) share %d "
                     "partition(s); none is this process's to take", n->nmembers, n->np);
    } else if (held > 1 && strcmp(status, "consuming") == 0) {
        snprintf(reason, sizeof(reason), "consuming %d partitions", held);
    }
    *healthy = strcmp(status, "consuming") == 0;
    json_object_set_new(lag, "entries", lag_n >= 0 ? json_integer(lag_n) : json_null());
    json_object_set_new(lag, "seconds", lag_s >= 0 ? json_real(lag_s) : json_null());
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "lag", lag);
    json_object_set_new(o, "partitions", parts);
    json_object_set_new(o, "partitions_total", json_integer(n->cfg->partitions));
    json_object_set_new(o, "members", json_integer((json_int_t)n->nmembers));
    json_object_set_new(o, "consumer", json_string(me(n)));
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(o);
    if (text != NULL) {
        size_t l = strlen(text);
        char *t2 = realloc(text, l + 2);
        if (t2 != NULL) {
            t2[l] = '\n';
            t2[l + 1] = '\0';
            text = t2;
        }
    }
    return text;
}

/* ===================================================================
 * Metrics
 *
 * The node's own (role, leases) and each engine's. With one partition the
 * engine's metrics are rendered as they are; with several, each engine adds
 * its numbers to the same families (prom.c) with a partition="p" label, so
 * the samples of one family are gathered under a single HELP/TYPE header,
 * as the exposition format requires.
 * =================================================================== */

#define putf rk__buf_printf

void rk__node_render_metrics(rk__node *n, rk_buf *out)
{
    rk__prom m = {0};
    rk_buf own = {0};
    int p, held = held_count(n);
    uint64_t acq = 0, lost = 0, rel = 0;

    for (p = 0; p < n->np; p++) {
        acq += n->parts[p].acquired;
        lost += n->parts[p].lost;
        rel += n->parts[p].released;
    }
    putf(&own, "# HELP riskd_active 1 when this process holds at least one partition's lease "
         "and consumes it, 0 when it is a standby.\n# TYPE riskd_active gauge\n"
         "riskd_active %d\n", held > 0 ? 1 : 0);
    putf(&own, "# HELP riskd_redis_up 1 when this process's own connection to Redis (heartbeat "
         "and leases) is up, on a standby too.\n# TYPE riskd_redis_up gauge\n"
         "riskd_redis_up %d\n", rk__redis_ready(n->r) ? 1 : 0);
    putf(&own, "# HELP riskd_partitions Partitions configured.\n# TYPE riskd_partitions gauge\n"
         "riskd_partitions %d\n", n->cfg->partitions);
    putf(&own, "# HELP riskd_partitions_held Partitions this process holds the lease of.\n"
         "# TYPE riskd_partitions_held gauge\nriskd_partitions_held %d\n",
         held_count_of(n, false));
    if (n->np > n->cfg->partitions)
        putf(&own, "# HELP riskd_cross_held 1 when this process holds the cross pipeline "
             "(the rules across partitions).\n# TYPE riskd_cross_held gauge\n"
             "riskd_cross_held %d\n", held - held_count_of(n, false));
    putf(&own, "# HELP riskd_partition_active 1 for each partition this process holds.\n"
         "# TYPE riskd_partition_active gauge\n");
    for (p = 0; p < n->np; p++)
        putf(&own, "riskd_partition_active{partition=\"%s\"} %d\n", n->parts[p].name,
             n->parts[p].st == P_ACTIVE || n->parts[p].st == P_WAITING ||
             n->parts[p].st == P_STOPPING ? 1 : 0);
    putf(&own, "# HELP riskd_lease_epoch The fencing epoch of each partition held (0 none).\n"
         "# TYPE riskd_lease_epoch gauge\n");
    for (p = 0; p < n->np; p++)
        putf(&own, "riskd_lease_epoch{partition=\"%s\"} %lld\n", n->parts[p].name,
             n->parts[p].st == P_ACTIVE || n->parts[p].st == P_WAITING ||
             n->parts[p].st == P_STOPPING ? n->parts[p].epoch : 0);
    putf(&own, "# HELP riskd_takeover_wait_ticks Heartbeat ticks the last takeover of each "
         "partition waited before its engine started (1: at the first tick after the wait; "
         "0: none yet).\n# TYPE riskd_takeover_wait_ticks gauge\n");
    for (p = 0; p < n->np; p++)
        putf(&own, "riskd_takeover_wait_ticks{partition=\"%s\"} %d\n", n->parts[p].name,
             n->parts[p].last_wait_ticks);
    putf(&own, "# HELP riskd_lease_acquired_total Leases acquired.\n"
         "# TYPE riskd_lease_acquired_total counter\nriskd_lease_acquired_total %llu\n",
         (unsigned long long)acq);
    putf(&own, "# HELP riskd_lease_lost_total Leases lost (fenced out or run out).\n"
         "# TYPE riskd_lease_lost_total counter\nriskd_lease_lost_total %llu\n",
         (unsigned long long)lost);
    putf(&own, "# HELP riskd_lease_released_total Leases handed over cleanly.\n"
         "# TYPE riskd_lease_released_total counter\nriskd_lease_released_total %llu\n",
         (unsigned long long)rel);
    putf(&own, "# HELP riskd_members Live riskd processes sharing the partitions.\n"
         "# TYPE riskd_members gauge\nriskd_members %zu\n", n->nmembers);
    rk__lists_render_metrics(&own);
    rk_buf_put_bytes(out, own.data, own.len);
    rk_buf_free(&own);
    if (n->np == 1) {
        if (n->parts[0].eng != NULL && n->parts[0].st != P_LOST)
            rk__engine_render_metrics(n->parts[0].eng, out);
        return;
    }
    for (p = 0; p < n->np; p++) {
        char label[32];
        if (n->parts[p].eng == NULL || n->parts[p].st == P_LOST)
            continue;
        snprintf(label, sizeof(label), "partition=\"%s\"", n->parts[p].name);
        rk__prom_label(&m, label);
        rk__engine_metrics(n->parts[p].eng, &m);
    }
    rk__prom_finish(&m, out);
}
