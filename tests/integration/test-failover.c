/* tests/integration/test-failover.c - a Sentinel failover during a backlog drain loses
 * no alert and invents none.
 *
 * The workload (tests/lib/gen.c, every event type, planted anomalies, some
 * invalid entries) is drained once on a single redis-server: the clean run.
 * Then, for each kill point, on a master with one replica and three
 * sentinels (quorum 2, down-after 1 s):
 *   - the first SPLIT events are written to the master and WAITed for;
 *   - riskd (redis.wait_replicas 0, the default; batches of 10 entries so
 *     that the drain lasts through several checkpoints) drains them
 *     through the sentinels;
 *   - at the kill point, read from riskd's metrics (never from a sleep),
 *     every riskd is frozen (SIGSTOP), `WAIT 1 2000` must answer 1, the
 *     master is SIGKILLed and riskd resumed (SIGCONT): the replica has
 *     exactly what the master had;
 *   - the sentinels promote the replica, the old master comes back as its
 *     replica, and the rest of the events are written to the new master;
 *   - once drained, the alert set must equal the clean run's, by content
 *     (detector, rule, subject, ts, value) and by id (the entry ids are the
 *     same in both runs), with no alert written twice and nothing pending.
 * Kill points:
 *   first      before riskd's first checkpoint (riskd_checkpoints_total 0,
 *              and no checkpoint in Redis), >= 1000 events applied;
 *   checkpoint right after the first checkpoint was written;
 *   mid-batch  250 events after a checkpoint, in the batches it does not
 *              cover;
 *   takeover   two riskd, b the standby of a; a is SIGKILLed mid-drain and the
 *              master killed once the standby has acquired the lease
 *              (riskd_lease_acquired_total 1), before it consumes;
 *   switch     no crash and no WAIT: SENTINEL FAILOVER 250 events after a
 *              checkpoint, riskd running on; what riskd writes to the old
 *              master until it follows is dropped when that becomes a
 *              replica (the new master lacks riskd's last alerts,
 *              acknowledgements, checkpoint).
 *
 * `test_state_behind_group` needs no sentinel: the checkpoint is replaced
 * by an older one while the group has acknowledged everything (what a
 * checkpoint that did not survive a failover, while the acknowledgements
 * after it did, looks like); riskd must read the stream again from the
 * checkpoint's position instead of trusting the group.
 *
 * `test_epoch_survives_failover`: an acquisition whose epoch never reached
 * the replica (the replica is frozen) and then a failover: the epoch the
 * promoted replica hands out next is greater than every epoch handed out
 * before, so two holders never act under the same epoch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "itest.h"
#include "itest_sentinel.h"

#define EVENTS 16000
#define SPLIT 11000                 /* written before the failover */
#define SEED 4711
#define DAYS 40.0
#define ANOMALY 0.05
#define INVALID 97
#define MASTER "mymaster"
#define SYNC_NOW "--repl-diskless-sync-delay 0"

enum { KP_FIRST, KP_CHECKPOINT, KP_MID_BATCH, KP_TAKEOVER, KP_SWITCH };
static const char *const kp_name[] = {"first", "checkpoint", "mid-batch", "takeover",
                                      "switch"};

static json_t *clean_ids;           /* id -> alert */
static json_t *clean_content;       /* content key -> count */

static void write_part(redisContext *c, size_t from, size_t to)
{
    it_preload_range(c, EVENTS, DAYS, ANOMALY, SEED, INVALID, from, to);
}

/* "detector rule subject ts value status summary": what an alert or a
 * notice says, not its id (a notice has no value: two alerts of one rule,
 * subject and ts - inspection_frequency's repeat over 24 h and over 30 d -
 * resolved together differ in their summaries). */
static char *content_key(json_t *a)
{
    char *subj = json_dumps(json_object_get(a, "subject"), JSON_COMPACT | JSON_SORT_KEYS);
    char *val = json_dumps(json_object_get(a, "value"), JSON_COMPACT | JSON_ENCODE_ANY);
    const char *status = json_string_value(json_object_get(a, "status"));
    const char *summary = json_string_value(json_object_get(a, "summary"));
    char *k = NULL;
    if (asprintf(&k, "%s %s %s %s %s %s %s", json_string_value(json_object_get(a, "detector")),
                 json_string_value(json_object_get(a, "rule")), subj ? subj : "-",
                 json_string_value(json_object_get(a, "ts")), val ? val : "-",
                 status ? status : "-", summary ? summary : "-") < 0)
        k = NULL;
    free(subj);
    free(val);
    return k;
}

/* content key -> number of alerts with it */
static json_t *by_content(json_t *ids)
{
    json_t *out = json_object(), *a;
    const char *id;
    json_object_foreach(ids, id, a) {
        char *k = content_key(a);
        assert_non_null(k);
        json_object_set_new(out, k, json_integer(json_integer_value(json_object_get(out, k)) + 1));
        free(k);
    }
    return out;
}

static json_t *collect(redisContext *c)
{
    const char *dup;
    json_t *ids = it_alerts_by_id(c, &dup);
    if (dup != NULL)
        fail_msg("alert id %s written twice", dup);
    return ids;
}

/* Compare with the clean run; returns the number of differences. */
static int compare(const char *run, json_t *ids)
{
    json_t *content = by_content(ids), *v;
    const char *k;
    int missing = 0, extra = 0, shown = 0;
    json_object_foreach(clean_content, k, v)
        if (json_integer_value(json_object_get(content, k)) < json_integer_value(v)) {
            missing++;
            if (shown++ < 5)
                fprintf(stderr, "%s: missing %s\n", run, k);
        }
    json_object_foreach(content, k, v)
        if (json_integer_value(json_object_get(clean_content, k)) < json_integer_value(v)) {
            extra++;
            if (shown++ < 10)
                fprintf(stderr, "%s: extra %s\n", run, k);
        }
    json_object_foreach(clean_ids, k, v)
        if (json_object_get(ids, k) == NULL)
            missing++;
    json_object_foreach(ids, k, v)
        if (json_object_get(clean_ids, k) == NULL)
            extra++;
    if (missing || extra)
        fprintf(stderr, "%s: %d missing, %d extra (content and id) of %zu\n", run, missing,
                extra, json_object_size(clean_ids));
    json_decref(content);
    return missing + extra;
}

/* The group setup: the clean run every other run is compared with. */
static int clean_run(void **state)
{
    it_env env;
    (void)state;
    assert_int_equal(it_env_start(&env), 0);
    write_part(env.c, 0, EVENTS);
    assert_int_equal(it_riskd_start(&env.riskd, env.redis.port,
                                     "{\"clock\":{\"wall_advance\":false}}"), 0);
    if (!it_wait_settled(env.c, 60000)) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("clean run did not drain");
    }
    clean_ids = collect(env.c);
    clean_content = by_content(clean_ids);
    fprintf(stderr, "clean run: %d events, %zu alerts\n", EVENTS, json_object_size(clean_ids));
    assert_true(json_object_size(clean_ids) > 100);
    assert_int_equal(json_object_size(clean_content), json_object_size(clean_ids));
    it_riskd_signal(&env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env.riskd, 15000), 0);
    it_env_stop(&env);
    return 0;
}

/* ===================================================================
 * Master, replica, sentinels
 * =================================================================== */

typedef struct topo {
    it_redis m, rp;
    it_sentinel s[3];
    redisContext *c;                /* on the current master */
    it_riskd d[2];
    int mport[2];
    int nd;
} topo;

/* A client with room for WAIT 1 2000 on a loaded machine. */
static redisContext *topo_connect(int port)
{
    struct timeval tv = {10, 0};
    redisContext *c = it_connect(port);
    redisSetTimeout(c, tv);
    return c;
}

/* The new master may close a client connection once more after the
 * failover (a Sentinel reconfiguring an instance ends with CLIENT KILL TYPE
 * normal): a client that finds its connection closed connects again. */
static void topo_reconnect_if_closed(topo *t)
{
    redisReply *r = redisCommand(t->c, "PING");
    if (r != NULL) {
        freeReplyObject(r);
        return;
    }
    fprintf(stderr, "the new master closed our connection (%s): connecting again\n",
            t->c->errstr);
    redisFree(t->c);
    t->c = topo_connect(t->rp.port);
}

/* -1 when the connection failed (the caller connects again), else the
 * integer reply, or for XINFO GROUPS: 1 when the group has nothing pending
 * and lag 0. */
static long long topo_int(topo *t, const char *cmd)
{
    redisReply *r = redisCommand(t->c, cmd);
    long long v = 0;
    size_t i, k;
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        long long pending = -1, lag = -1;
        for (k = 0; k + 1 < r->element[i]->elements; k += 2) {
            const redisReply *f = r->element[i]->element[k], *x = r->element[i]->element[k + 1];
            if (strcmp(f->str, "pending") == 0 && x->type == REDIS_REPLY_INTEGER)
                pending = x->integer;
            else if (strcmp(f->str, "lag") == 0 && x->type == REDIS_REPLY_INTEGER)
                lag = x->integer;
        }
        v = pending == 0 && lag == 0;
    }
    freeReplyObject(r);
    return v;
}

/* it_wait_settled against the new master, through closed connections:
 * both groups drained and the alert count the same for 5 polls. */
static bool topo_settled(topo *t, int timeout_ms)
{
    long long last = -1, n, a, b;
    int waited, stable = 0;
    for (waited = 0; waited < timeout_ms; waited += 100) {
        n = topo_int(t, "XLEN alerts");
        a = topo_int(t, "XINFO GROUPS enforce:scan");
        b = topo_int(t, "XINFO GROUPS enforce:case");
        if (n < 0 || a < 0 || b < 0) {
            topo_reconnect_if_closed(t);
            stable = 0;
        } else if (a == 1 && b == 1 && n == last) {
            if (++stable >= 5)
                return true;
        } else {
            stable = 0;
        }
        last = n;
        it_sleep_ms(100);
    }
    return false;
}

static void topo_start(topo *t)
{
    char extra[128];
    int i;
    memset(t, 0, sizeof(*t));
    assert_int_equal(it_redis_start(&t->m, SYNC_NOW), 0);
    snprintf(extra, sizeof(extra), SYNC_NOW " --replicaof 127.0.0.1 %d", t->m.port);
    assert_int_equal(it_redis_start(&t->rp, extra), 0);
    assert_true(it_replica_wait_link(t->rp.port, 10000));
    t->c = topo_connect(t->m.port);
    for (i = 0; i < 3; i++)
        assert_int_equal(it_sentinel_start(&t->s[i], MASTER, t->m.port, 2), 0);
    for (i = 0; i < 3; i++)
        assert_true(it_sentinel_wait_known(&t->s[i], MASTER, 2, 1, 15000));
}

/* riskd named `name` through the sentinels, metrics on a port of its own. */
static void topo_riskd(topo *t, const char *name, const char *state_cfg)
{
    char cfg[1024];
    int k = t->nd++;
    t->mport[k] = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"clock\":{\"wall_advance\":false},\"state\":{%s},"
             "\"streams\":{\"batch\":10,\"consumer\":\"%s\"},"
             "\"metrics\":{\"listen\":\"127.0.0.1:%d\"},"
             "\"redis\":{\"port\":%d,\"sentinels\":[\"127.0.0.1:%d\",\"127.0.0.1:%d\","
             "\"127.0.0.1:%d\"],\"master_name\":\"" MASTER "\"}}",
             state_cfg, name, t->mport[k], it_free_port(), t->s[0].port, t->s[1].port,
             t->s[2].port);
    assert_int_equal(it_riskd_start(&t->d[k], 1, cfg), 0);
}

static void topo_dump(topo *t)
{
    int k;
    for (k = 0; k < t->nd; k++)
        it_riskd_dump_log(&t->d[k]);
}

/* Freeze every riskd, make sure the replica has everything (WAIT), kill
 * the master, resume riskd, and wait until the sentinels promote the
 * replica; the old master comes back as the new one's replica. */
static void topo_failover(topo *t)
{
    int k, waited, port = -1;
    for (k = 0; k < t->nd; k++)
        if (it_riskd_alive(&t->d[k]))
            it_riskd_signal(&t->d[k], SIGSTOP);
    assert_int_equal(it_int(t->c, "WAIT 1 2000"), 1);
    redisFree(t->c);
    t->c = NULL;
    it_redis_kill(&t->m);
    for (k = 0; k < t->nd; k++)
        if (it_riskd_alive(&t->d[k]))
            it_riskd_signal(&t->d[k], SIGCONT);
    for (waited = 0; waited < 30000; waited += 50) {
        port = it_sentinel_master_port(&t->s[waited / 50 % 3], MASTER);
        if (port == t->rp.port)
            break;
        it_sleep_ms(50);
    }
    assert_int_equal(port, t->rp.port);
    snprintf(t->m.extra, sizeof(t->m.extra), SYNC_NOW " --replicaof 127.0.0.1 %d", t->rp.port);
    assert_int_equal(it_redis_restart(&t->m), 0);
    t->c = topo_connect(t->rp.port);
}

/* SENTINEL FAILOVER while riskd runs on: the replica is promoted, and
 * until riskd follows +switch-master it goes on writing to the old master,
 * which the sentinels then turn into a replica of the new one - dropping
 * those writes. Returns once the old master is a replica. */
static void topo_switch(topo *t)
{
    redisContext *sc = it_connect(t->s[0].port);
    redisReply *r = it_cmd(sc, "SENTINEL FAILOVER " MASTER);
    int waited;
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(sc);
    for (waited = 0; waited < 30000; waited += 20) {
        if (it_sentinel_master_port(&t->s[0], MASTER) == t->rp.port &&
            it_replica_wait_link(t->m.port, 0))
            break;
        it_sleep_ms(20);
    }
    assert_true(waited < 30000);
    redisFree(t->c);
    t->c = topo_connect(t->rp.port);
}

static void topo_stop(topo *t)
{
    int k;
    for (k = 0; k < t->nd; k++)
        if (t->d[k].pid > 0 && it_riskd_alive(&t->d[k])) {
            it_riskd_signal(&t->d[k], SIGTERM);
            if (it_riskd_wait(&t->d[k], 15000) != 0) {
                it_riskd_signal(&t->d[k], SIGKILL);
                it_riskd_wait(&t->d[k], 5000);
            }
        }
    if (t->c != NULL)
        redisFree(t->c);
    for (k = 0; k < 3; k++)
        it_sentinel_kill(&t->s[k]);
    it_redis_kill(&t->m);
    it_redis_kill(&t->rp);
}

static double metric(topo *t, int k, const char *name)
{
    return it_metric_sum(t->mport[k], name);
}

/* Poll riskd k's metrics until `name` >= at_least (a 30 s bound). */
static double wait_metric(topo *t, int k, const char *name, double at_least)
{
    double v = -1;
    int waited;
    for (waited = 0; waited < 30000; waited += 2) {
        if ((v = metric(t, k, name)) >= at_least)
            return v;
        it_sleep_ms(2);
    }
    topo_dump(t);
    fail_msg("%s stayed at %g (want %g)", name, v, at_least);
    return v;
}

static void run_kill_point(int kp)
{
    topo t;
    json_t *got;
    double ev, ck;
    int diff;

    assert_non_null(clean_ids);
    topo_start(&t);
    write_part(t.c, 0, SPLIT);
    assert_int_equal(it_int(t.c, "WAIT 1 5000"), 1);

    switch (kp) {
    case KP_FIRST:
        topo_riskd(&t, "a", "\"interval\":\"30s\"");
        ev = wait_metric(&t, 0, "riskd_events_total", 1000);
        ck = metric(&t, 0, "riskd_checkpoints_total");
        assert_true(ck == 0);
        break;
    case KP_CHECKPOINT:
        topo_riskd(&t, "a", "\"interval\":\"100ms\"");
        ck = wait_metric(&t, 0, "riskd_checkpoints_total", 1);
        ev = metric(&t, 0, "riskd_events_total");
        break;
    case KP_MID_BATCH:
        topo_riskd(&t, "a", "\"interval\":\"100ms\"");
        wait_metric(&t, 0, "riskd_checkpoints_total", 1);
        ev = wait_metric(&t, 0, "riskd_events_total",
                         metric(&t, 0, "riskd_events_total") + 250);
        ck = metric(&t, 0, "riskd_checkpoints_total");
        break;
    case KP_SWITCH:
        topo_riskd(&t, "a", "\"interval\":\"100ms\"");
        wait_metric(&t, 0, "riskd_checkpoints_total", 1);
        ev = wait_metric(&t, 0, "riskd_events_total",
                         metric(&t, 0, "riskd_events_total") + 250);
        ck = metric(&t, 0, "riskd_checkpoints_total");
        break;
    default:
        topo_riskd(&t, "a", "\"interval\":\"200ms\",\"lease_ttl\":\"2s\"");
        wait_metric(&t, 0, "riskd_events_total", 100);         /* a is the holder */
        topo_riskd(&t, "b", "\"interval\":\"200ms\",\"lease_ttl\":\"2s\"");
        wait_metric(&t, 1, "riskd_members", 2);                 /* b, its standby */
        wait_metric(&t, 0, "riskd_events_total", 1500);
        it_riskd_signal(&t.d[0], SIGKILL);
        it_riskd_wait(&t.d[0], 5000);
        wait_metric(&t, 1, "riskd_lease_acquired_total", 1);
        ev = metric(&t, 1, "riskd_events_total");
        ck = metric(&t, 1, "riskd_checkpoints_total");
        break;
    }
    if (it_both_drained(t.c)) {
        topo_dump(&t);
        fail_msg("%s: riskd drained the backlog before the kill point", kp_name[kp]);
    }
    fprintf(stderr, "%s: killing the master at %g events applied, %g checkpoints\n",
            kp_name[kp], ev, ck);
    if (kp == KP_FIRST)
        assert_int_equal(it_int(t.c, "EXISTS riskd:state"), 0);
    if (kp == KP_SWITCH)
        topo_switch(&t);
    else
        topo_failover(&t);

    topo_reconnect_if_closed(&t);
    write_part(t.c, SPLIT, EVENTS);
    if (!topo_settled(&t, 60000)) {
        topo_dump(&t);
        fail_msg("%s: riskd did not drain on the new master", kp_name[kp]);
    }
    topo_reconnect_if_closed(&t);
    got = collect(t.c);
    diff = compare(kp_name[kp], got);
    json_decref(got);
    if (diff != 0) {
        topo_dump(&t);
        fail_msg("%s: the alerts differ from the clean run's", kp_name[kp]);
    }
    if (kp == KP_SWITCH && !it_log_contains(&t.d[0], "the master moved from")) {
        topo_dump(&t);
        fail_msg("switch: riskd did not start again from the new master's checkpoint");
    }
    assert_true(it_both_drained(t.c));
    topo_stop(&t);
}

static void test_kill_before_first_checkpoint(void **state)
{
    (void)state;
    run_kill_point(KP_FIRST);
}

static void test_kill_after_checkpoint(void **state)
{
    (void)state;
    run_kill_point(KP_CHECKPOINT);
}

static void test_kill_mid_batch(void **state)
{
    (void)state;
    run_kill_point(KP_MID_BATCH);
}

static void test_kill_during_takeover(void **state)
{
    (void)state;
    run_kill_point(KP_TAKEOVER);
}

/* ===================================================================
 * A state behind its group
 * =================================================================== */

static void drain_with_riskd(it_env *env, const char *what)
{
    assert_int_equal(it_riskd_start(&env->riskd, env->redis.port,
                                     "{\"clock\":{\"wall_advance\":false},"
                                     "\"state\":{\"interval\":\"200ms\"}}"), 0);
    if (!it_wait_settled(env->c, 60000)) {
        it_riskd_dump_log(&env->riskd);
        fail_msg("%s: riskd did not drain", what);
    }
    it_riskd_signal(&env->riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env->riskd, 15000), 0);
}

/* The first 5000 events are drained and the checkpoint kept; the next
 * 6000 are drained and acknowledged; then the kept (older) checkpoint is
 * put back - or none at all - and the rest written: what the group says
 * was consumed is ahead of what the state reflects. */
static void state_behind_group(bool none)
{
    it_env env;
    redisReply *old;
    json_t *got;
    const char *what = none ? "no checkpoint" : "older checkpoint";
    int diff;

    assert_non_null(clean_ids);
    assert_int_equal(it_env_start(&env), 0);
    write_part(env.c, 0, 5000);
    drain_with_riskd(&env, what);
    old = it_cmd(env.c, "GET riskd:state");
    assert_int_equal(old->type, REDIS_REPLY_STRING);
    write_part(env.c, 5000, SPLIT);
    drain_with_riskd(&env, what);
    if (none)
        freeReplyObject(it_cmd(env.c, "DEL riskd:state"));
    else
        freeReplyObject(it_cmd(env.c, "SET riskd:state %b", old->str, old->len));
    freeReplyObject(old);
    write_part(env.c, SPLIT, EVENTS);
    assert_int_equal(it_riskd_start(&env.riskd, env.redis.port,
                                     "{\"clock\":{\"wall_advance\":false}}"), 0);
    if (!it_wait_settled(env.c, 60000)) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("%s: riskd did not drain the rest", what);
    }
    got = collect(env.c);
    diff = compare(what, got);
    json_decref(got);
    if (diff != 0) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("%s: the alerts differ from the clean run's", what);
    }
    if (!it_log_contains(&env.riskd, "reading again from there")) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("%s: riskd did not say it reads the streams again", what);
    }
    it_riskd_signal(&env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env.riskd, 15000), 0);
    it_env_stop(&env);
}

static void test_state_behind_group(void **state)
{
    (void)state;
    state_behind_group(false);
    state_behind_group(true);
}

/* ===================================================================
 * Fencing across a failover
 * =================================================================== */

static long long get_epoch(redisContext *c)
{
    redisReply *r = it_cmd(c, "GET riskd:state:epoch");
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

static bool has_epoch(void *arg)
{
    return get_epoch(arg) > 0;
}

/* riskd "a" acquires the partition on a master after its replica stopped
 * replicating (REPLICAOF NO ONE, what Sentinel does to the replica it
 * promotes), so the epoch it is handed never reaches the replica; the
 * master dies and riskd "c" acquires on the promoted replica. Its epoch must differ from - be greater than - a's: with
 * a plain INCR both were 1, and a, reconnecting to the new master, would
 * have passed every fence as c's equal. */
static void test_epoch_survives_failover(void **state)
{
    it_redis m, rp;
    it_riskd a, c;
    redisContext *cm, *cr;
    char extra[128];
    long long lost, next;
    (void)state;

    assert_int_equal(it_redis_start(&m, SYNC_NOW), 0);
    snprintf(extra, sizeof(extra), SYNC_NOW " --replicaof 127.0.0.1 %d", m.port);
    assert_int_equal(it_redis_start(&rp, extra), 0);
    assert_true(it_replica_wait_link(rp.port, 10000));
    cm = it_connect(m.port);
    freeReplyObject(it_cmd(cm, "SET marker 1"));
    assert_int_equal(it_int(cm, "WAIT 1 5000"), 1);

    /* The replica is promoted now (its data frozen: what a replica the last
     * writes did not reach has); the old master lives on until after a's
     * acquisition, which only it sees. */
    cr = it_connect(rp.port);
    freeReplyObject(it_cmd(cr, "REPLICAOF NO ONE"));
    memset(&a, 0, sizeof(a));
    assert_int_equal(it_riskd_start(&a, m.port, "{\"streams\":{\"consumer\":\"a\"}}"), 0);
    if (!it_wait_until(has_epoch, cm, 15000)) {
        it_riskd_dump_log(&a);
        fail_msg("riskd a did not acquire the lease");
    }
    lost = get_epoch(cm);
    it_riskd_signal(&a, SIGKILL);
    it_riskd_wait(&a, 5000);
    redisFree(cm);
    it_redis_kill(&m);

    assert_int_equal(it_int(cr, "EXISTS marker"), 1);           /* it is the old data */
    assert_int_equal(get_epoch(cr), 0);                         /* without a's epoch */
    memset(&c, 0, sizeof(c));
    assert_int_equal(it_riskd_start(&c, rp.port, "{\"streams\":{\"consumer\":\"c\"}}"), 0);
    if (!it_wait_until(has_epoch, cr, 15000)) {
        it_riskd_dump_log(&c);
        fail_msg("riskd c did not acquire the lease");
    }
    next = get_epoch(cr);
    fprintf(stderr, "epoch lost with the old master %lld, next on the new one %lld\n", lost,
            next);
    assert_true(next > lost);
    it_riskd_signal(&c, SIGTERM);
    assert_int_equal(it_riskd_wait(&c, 15000), 0);
    redisFree(cr);
    it_redis_kill(&rp);
}

/* Not a crash: the old master lives on, and riskd's writes to it until it
 * follows are lost (not WAITed for: redis.wait_replicas 0). riskd must
 * start again from the new master's checkpoint and raise again what the
 * new master lacks. */
static void test_switch_loses_last_writes(void **state)
{
    (void)state;
    run_kill_point(KP_SWITCH);
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(clean_ids);
    json_decref(clean_content);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_behind_group),
        cmocka_unit_test(test_kill_before_first_checkpoint),
        cmocka_unit_test(test_kill_after_checkpoint),
        cmocka_unit_test(test_kill_mid_batch),
        cmocka_unit_test(test_kill_during_takeover),
        cmocka_unit_test(test_switch_loses_last_writes),
        cmocka_unit_test(test_epoch_survives_failover),
    };
    if (getenv("FAILOVER_ONLY") != NULL)    /* e.g. "test_kill_mid*" */
        cmocka_set_test_filter(getenv("FAILOVER_ONLY"));
    return cmocka_run_group_tests(tests, clean_run, group_teardown);
}
