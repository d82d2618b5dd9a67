/* tests/integration/test-sentinel.c - riskd follows a Redis Sentinel failover.
 *
 * 1. Failover. A generated workload is drained twice:
 *      clean     one redis-server, riskd undisturbed (it_env);
 *      failover  a master, a replica (replicaof) and three sentinels
 *                (quorum 2, down-after 1 s, failover-timeout 5 s) on
 *                loopback; riskd finds the master through the sentinels
 *                (redis.port points at nothing) with redis.wait_replicas 1;
 *                the master is SIGKILLed while riskd is mid-way through the
 *                backlog; the sentinels promote the replica; the old master
 *                comes back (empty) as a replica of the new one; riskd
 *                finishes on the new master without being restarted.
 *    The alert ids must be equal, none written twice, nothing left pending.
 *
 *    What asynchronous replication may lose, and why this setup loses
 *    nothing: Redis acknowledges a write before any replica has it, so the
 *    writes of the last moments before a master dies - up to the
 *    replication lag, here any command whose effect had not yet reached the
 *    replica - are gone after the failover (Redis's replication docs: a
 *    failover can lose acknowledged writes; WAIT makes them safer but is
 *    not a consensus protocol). Here:
 *      - the preload (the input streams) is WAITed for (WAIT 1 5000 must
 *        answer 1) before riskd starts, so the replica has every entry;
 *      - every alert and dead letter is WAITed for (wait_replicas 1) before
 *        it counts as written, and an entry is acknowledged only after its
 *        alerts count as written: an alert the old master took but never
 *        passed on is still in riskd's outbox and is written again on the
 *        new master (its dedupe key, also lost, does not stop it; one that
 *        did reach the replica answers "already written": no duplicate);
 *      - the checkpoint process WAITs after its EXEC, so a checkpoint whose
 *        entries were acknowledged is on the replica;
 *      - what remains unprotected is harmless: a lost XACK or a lost
 *        delivery (XREADGROUP's group update) only makes riskd read the
 *        entry again, and entries at or before the position riskd has
 *        applied are acknowledged without being applied twice.
 *    (Left out on purpose: a second master death before the old master is
 *    back as a replica, and a riskd restart during the failover - the
 *    latter is test-crash's subject.)
 *
 * 2. A sentinel naming a replica as the master: riskd must not consume. It
 *    asks ROLE, is told "slave", and backs off and asks again; it never
 *    sends XGROUP or XREADGROUP there (INFO commandstats of that server).
 *
 * `redis-server <conf> --sentinel` is used: it is what redis-sentinel runs. */
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

#define EVENTS 50000
#define MASTER "mymaster"
#define BASE "\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"100ms\"}," \
             "\"streams\":{\"batch\":100}"

/* Full syncs start at once instead of after Redis 7's 5 s delay. */
#define SYNC_NOW "--repl-diskless-sync-delay 0"

static json_t *clean_ids;           /* id -> alert of the clean run */

static void preload(redisContext *c)
{
    it_preload_workload(c, EVENTS, 60, 0.05, 4242, 97);
}

/* id -> alert (without emitted_at); fails on a duplicate id. */
static json_t *collect(redisContext *c)
{
    const char *dup;
    json_t *ids = it_alerts_by_id(c, &dup);
    if (dup != NULL)
        fail_msg("alert id %s written twice", dup);
    return ids;
}

static void show(const char *what, json_t *a)
{
    char *txt = json_dumps(a, JSON_COMPACT);
    fprintf(stderr, "failover: %s %s\n", what, txt);
    free(txt);
}

static void test_clean_run(void **state)
{
    it_env env;
    (void)state;
    assert_int_equal(it_env_start(&env), 0);
    preload(env.c);
    assert_int_equal(it_riskd_start(&env.riskd, env.redis.port, "{" BASE "}"), 0);
    if (!it_wait_settled(env.c, 60000)) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("clean run did not drain");
    }
    clean_ids = collect(env.c);
    fprintf(stderr, "clean run: %d events, %zu alerts\n", EVENTS,
            json_object_size(clean_ids));
    assert_true(json_object_size(clean_ids) > 100);
    it_riskd_signal(&env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env.riskd, 15000), 0);
    it_env_stop(&env);
}

static void test_failover(void **state)
{
    it_redis m, rp;
    it_sentinel s[3];
    it_riskd d;
    redisContext *c;
    json_t *got, *v;
    const char *id;
    char cfg[1024], extra[128], text[64];
    long long target, n;
    int i, port = -1, waited, missing = 0, extra_ids = 0;
    (void)state;
    assert_non_null(clean_ids);

    /* master + replica, the preload on both */
    assert_int_equal(it_redis_start(&m, SYNC_NOW), 0);
    snprintf(extra, sizeof(extra), SYNC_NOW " --replicaof 127.0.0.1 %d", m.port);
    assert_int_equal(it_redis_start(&rp, extra), 0);
    assert_true(it_replica_wait_link(rp.port, 10000));
    c = it_connect(m.port);
    preload(c);
    assert_int_equal(it_int(c, "WAIT 1 5000"), 1);

    /* three sentinels that know each other and the replica */
    for (i = 0; i < 3; i++)
        assert_int_equal(it_sentinel_start(&s[i], MASTER, m.port, 2), 0);
    for (i = 0; i < 3; i++)
        assert_true(it_sentinel_wait_known(&s[i], MASTER, 2, 1, 15000));

    /* riskd through the sentinels; redis.port is a port nothing listens on */
    snprintf(cfg, sizeof(cfg), "{" BASE ",\"redis\":{\"port\":%d,\"sentinels\":"
             "[\"127.0.0.1:%d\",\"127.0.0.1:%d\",\"127.0.0.1:%d\"],\"master_name\":\""
             MASTER "\",\"wait_replicas\":1,\"wait_timeout\":\"500ms\"}}",
             it_free_port(), s[0].port, s[1].port, s[2].port);
    memset(&d, 0, sizeof(d));
    assert_int_equal(it_riskd_start(&d, 1, cfg), 0);

    /* kill the master once about a third of the alerts are out */
    target = (long long)json_object_size(clean_ids) / 3;
    for (waited = 0; (n = it_int(c, "XLEN alerts")) < target && waited < 30000; waited += 5)
        it_sleep_ms(5);
    if (n < target || it_both_drained(c)) {
        it_riskd_dump_log(&d);
        fail_msg("riskd wrote %lld alerts in 30 s (or already drained); want %lld",
                 n, target);
    }
    fprintf(stderr, "killing the master after %lld of %zu alerts\n", n,
            json_object_size(clean_ids));
    redisFree(c);
    it_redis_kill(&m);

    /* the sentinels promote the replica; the test's own connection waits
     * until every sentinel says so and none is still failing over (the
     * failover closes the normal clients of what it reconfigures) */
    for (waited = 0; waited < 30000; waited += 100) {
        int agree = 0;
        for (i = 0; i < 3; i++) {
            port = it_sentinel_master_port(&s[i], MASTER);
            agree += port == rp.port && it_sentinel_settled(&s[i], MASTER);
        }
        if (agree == 3)
            break;
        it_sleep_ms(100);
    }
    assert_int_equal(port, rp.port);
    fprintf(stderr, "failover done after %d ms\n", waited);

    /* the old master returns, empty, as a replica of the new one */
    snprintf(m.extra, sizeof(m.extra), SYNC_NOW " --replicaof 127.0.0.1 %d", rp.port);
    assert_int_equal(it_redis_restart(&m), 0);

    c = it_connect(rp.port);
    if (!it_wait_settled(c, 40000)) {
        it_riskd_dump_log(&d);
        fail_msg("riskd did not finish on the new master");
    }
    assert_true(it_riskd_alive(&d));    /* followed, not restarted */
    snprintf(text, sizeof(text), "127.0.0.1:%d: sentinel", rp.port);
    if (!it_log_contains(&d, text)) {
        it_riskd_dump_log(&d);
        fail_msg("riskd's log does not say it resolved the new master (%s)", text);
    }

    got = collect(c);
    json_object_foreach(clean_ids, id, v)
        if (json_object_get(got, id) == NULL && missing++ < 6)
            show("missing", v);
    json_object_foreach(got, id, v)
        if (json_object_get(clean_ids, id) == NULL && extra_ids++ < 6)
            show("extra", v);
    if (missing || extra_ids) {
        it_riskd_dump_log(&d);
        fail_msg("failover: %d alerts missing, %d extra (of %zu)", missing, extra_ids,
                 json_object_size(clean_ids));
    }
    assert_int_equal(json_object_size(got), json_object_size(clean_ids));
    json_decref(got);

    it_riskd_signal(&d, SIGTERM);
    assert_int_equal(it_riskd_wait(&d, 15000), 0);
    redisFree(c);
    for (i = 0; i < 3; i++)
        it_sentinel_kill(&s[i]);
    it_redis_kill(&m);
    it_redis_kill(&rp);
}

static void test_replica_named_master(void **state)
{
    it_redis fake;
    it_sentinel s;
    it_riskd d;
    char cfg[512], extra[64];
    (void)state;

    /* A server that reports itself as a replica (of a port nothing listens
     * on), monitored by one sentinel as master "fake". */
    snprintf(extra, sizeof(extra), "--replicaof 127.0.0.1 %d", it_free_port());
    assert_int_equal(it_redis_start(&fake, extra), 0);
    assert_int_equal(it_sentinel_start(&s, "fake", fake.port, 1), 0);
    assert_int_equal(it_sentinel_master_port(&s, "fake"), fake.port);

    snprintf(cfg, sizeof(cfg), "{" BASE ",\"redis\":{\"port\":%d,\"sentinels\":"
             "[\"127.0.0.1:%d\"],\"master_name\":\"fake\"}}", it_free_port(), s.port);
    memset(&d, 0, sizeof(d));
    assert_int_equal(it_riskd_start(&d, 1, cfg), 0);
    for (int waited = 0; waited < 10000 && it_info_calls(fake.port, "role") < 2; waited += 50)
        it_sleep_ms(50);
    it_sleep_ms(300);
    if (it_info_calls(fake.port, "role") < 2 || !it_log_contains(&d, "not the master of fake")) {
        it_riskd_dump_log(&d);
        fail_msg("riskd did not refuse the replica (ROLE asked %lld times)",
                 it_info_calls(fake.port, "role"));
    }
    assert_true(it_riskd_alive(&d));
    assert_int_equal(it_info_calls(fake.port, "xreadgroup"), 0);
    assert_int_equal(it_info_calls(fake.port, "xgroup|create"), 0);
    assert_int_equal(it_info_calls(fake.port, "incr"), 0);
    assert_false(it_log_contains(&d, "consuming"));

    it_riskd_signal(&d, SIGTERM);
    assert_int_equal(it_riskd_wait(&d, 15000), 0);
    it_sentinel_kill(&s);
    it_redis_kill(&fake);
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(clean_ids);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_run),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_replica_named_master),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
