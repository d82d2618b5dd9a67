/* tests/integration/test-crash.c - exactly-once output under kill -9 and Redis loss.
 *
 * A generated workload of 50,000 mixed events with planted anomalies is
 * preloaded into a fresh redis-server (AOF on) and drained three ways:
 *   clean      riskd runs undisturbed;
 *   riskd -9   riskd is SIGKILLed at random moments, at least 10 times
 *              before it drains, and restarted each time;
 *   redis -9   redis-server is SIGKILLed and restarted (AOF reload) three
 *              times while riskd runs. Redis runs with appendfsync always:
 *              with everysec Redis may acknowledge writes it then loses on
 *              a crash (its documentation: up to a second), and nothing
 *              riskd does can bring those back.
 * The alert sets must be equal by id, the alert stream must hold no id
 * twice, and nothing may be left pending. Notices (resolved, retracted)
 * count like alerts, by id and status: each exactly once, in every run; and
 * the open hash (riskd:open) must equal what replaying the alert stream
 * gives, after every run. riskd is killed at least 20 times. */
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

#define EVENTS 50000
#define CONFIG "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"200ms\"}," \
               "\"streams\":{\"batch\":500}}"

static json_t *clean_ids;           /* id -> alert of the clean run */

/* The workload: tests/lib/gen.c's simulation (every event type, 5% of the
 * inspections with a planted anomaly) over 60 days, with every 97th entry
 * replaced by invalid input, written with explicit entry ids. */
static void preload(redisContext *c)
{
    it_preload_workload(c, EVENTS, 60, 0.05, 42, 97);
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

/* The open hash equals the replay of the alert stream. */
static void check_open(redisContext *c, const char *run)
{
    char why[300];
    if (it_check_open_hash(c, "alerts", "riskd:open", why, sizeof(why)) != 0)
        fail_msg("%s: %s", run, why);
}

static size_t count_notices(json_t *ids)
{
    const char *id;
    json_t *v;
    size_t n = 0;
    json_object_foreach(ids, id, v)
        if (strchr(id, ':') != NULL)
            n++;
    return n;
}

static void show(const char *run, const char *what, json_t *a)
{
    char *txt = json_dumps(a, JSON_COMPACT);
    fprintf(stderr, "%s: %s %s\n", run, what, txt);
    free(txt);
}

static void compare(json_t *got, const char *run)
{
    const char *id;
    json_t *v;
    int missing = 0, extra = 0;
    json_object_foreach(clean_ids, id, v)
        if (json_object_get(got, id) == NULL && missing++ < 6)
            show(run, "missing", v);
    json_object_foreach(got, id, v)
        if (json_object_get(clean_ids, id) == NULL && extra++ < 6)
            show(run, "extra", v);
    if (missing || extra)
        fail_msg("%s: %d alerts missing, %d extra (of %zu)", run, missing, extra,
                 json_object_size(clean_ids));
}

static void start(it_riskd *d, int port)
{
    if (it_riskd_start(d, port, CONFIG) != 0)
        fail_msg("cannot start riskd");
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(clean_ids);
    return 0;
}

static void test_clean_run(void **state)
{
    it_redis r;
    it_riskd d;
    redisContext *c;
    (void)state;
    assert_int_equal(it_redis_start(&r, "--appendonly yes"), 0);
    c = it_connect(r.port);
    preload(c);
    memset(&d, 0, sizeof(d));
    start(&d, r.port);
    if (!it_wait_settled(c, 120000)) {
        it_riskd_dump_log(&d);
        fail_msg("clean run did not drain");
    }
    clean_ids = collect(c);
    fprintf(stderr, "clean run: %d events, %zu alerts and notices (%zu notices), %lld open, "
            "%lld dead letters\n", EVENTS, json_object_size(clean_ids),
            count_notices(clean_ids), it_int(c, "HLEN riskd:open"),
            it_int(c, "XLEN riskd:dead"));
    assert_true(json_object_size(clean_ids) > 100);
    assert_true(count_notices(clean_ids) > 10);
    check_open(c, "clean");
    it_riskd_signal(&d, SIGTERM);
    assert_int_equal(it_riskd_wait(&d, 15000), 0);
    redisFree(c);
    it_redis_kill(&r);
}

static void test_riskd_killed(void **state)
{
    it_redis r;
    it_riskd d;
    redisContext *c;
    json_t *got;
    int kills = 0;
    (void)state;
    assert_non_null(clean_ids);
    srand(7);
    assert_int_equal(it_redis_start(&r, "--appendonly yes"), 0);
    c = it_connect(r.port);
    preload(c);
    memset(&d, 0, sizeof(d));
    start(&d, r.port);
    while (kills < 20 || !it_both_drained(c)) {
        it_sleep_ms(100 + rand() % 500);
        if (kills >= 60)
            break;
        it_riskd_signal(&d, SIGKILL);
        it_riskd_wait(&d, 5000);
        kills++;
        start(&d, r.port);
    }
    fprintf(stderr, "riskd killed %d times\n", kills);
    if (!it_wait_settled(c, 120000)) {
        it_riskd_dump_log(&d);
        fail_msg("run with kills did not drain");
    }
    got = collect(c);
    compare(got, "riskd -9");
    check_open(c, "riskd -9");
    json_decref(got);
    it_riskd_signal(&d, SIGTERM);
    assert_int_equal(it_riskd_wait(&d, 15000), 0);
    redisFree(c);
    it_redis_kill(&r);
}

static void test_redis_killed(void **state)
{
    it_redis r;
    it_riskd d;
    redisContext *c;
    json_t *got;
    int i;
    (void)state;
    assert_non_null(clean_ids);
    srand(11);
    assert_int_equal(it_redis_start(&r, "--appendonly yes --appendfsync always"), 0);
    c = it_connect(r.port);
    preload(c);
    redisFree(c);
    memset(&d, 0, sizeof(d));
    start(&d, r.port);
    for (i = 0; i < 3; i++) {
        it_sleep_ms(100 + rand() % 400);
        it_redis_kill(&r);
        it_sleep_ms(100 + rand() % 300);
        assert_int_equal(it_redis_restart(&r), 0);
    }
    c = it_connect(r.port);
    if (!it_wait_settled(c, 120000)) {
        it_riskd_dump_log(&d);
        fail_msg("run with Redis kills did not drain");
    }
    assert_true(it_riskd_alive(&d));
    got = collect(c);
    compare(got, "redis -9");
    check_open(c, "redis -9");
    json_decref(got);
    it_riskd_signal(&d, SIGTERM);
    assert_int_equal(it_riskd_wait(&d, 15000), 0);
    redisFree(c);
    it_redis_kill(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_run),
        cmocka_unit_test(test_riskd_killed),
        cmocka_unit_test(test_redis_killed),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
