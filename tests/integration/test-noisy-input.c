/* tests/integration/test-noisy-input.c - input that would flood the log, against a
 * real redis-server: an unknown type is logged once (then at most once an
 * hour) with its stream and entry id, and counted by type, never
 * dead-lettered; 100,000 malformed entries written in a few seconds all
 * reach riskd:dead while the log stays under 50 lines, the flood being
 * summarised. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    int mport;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

static void start_riskd(fixture *f)
{
    char cfg[256];
    f->mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"clock\":{\"wall_advance\":false},"
             "\"metrics\":{\"listen\":\"127.0.0.1:%d\"}}", f->mport);
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
}

static void stop_riskd_ok(fixture *f)
{
    int st;
    it_riskd_signal(&f->env.riskd, SIGTERM);
    st = it_riskd_wait(&f->env.riskd, 30000);
    if (st != 0)
        it_riskd_dump_log(&f->env.riskd);
    assert_int_equal(st, 0);
}

/* XADD n entries to key in pipelined chunks; entry i's data is made by
 * mk(i, buf). */
static void xadd_many(redisContext *c, const char *key, int n,
                      void (*mk)(int i, char *buf, size_t len))
{
    char data[256];
    int i = 0, sent = 0;
    while (i < n) {
        int chunk = n - i < 5000 ? n - i : 5000, k;
        for (k = 0; k < chunk; k++, i++) {
            mk(i, data, sizeof(data));
            redisAppendCommand(c, "XADD %s * data %s", key, data);
        }
        for (k = 0; k < chunk; k++, sent++) {
            redisReply *r;
            assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
            assert_int_equal(r->type, REDIS_REPLY_STRING);
            freeReplyObject(r);
        }
    }
    assert_int_equal(sent, n);
}

static void mk_scaned(int i, char *buf, size_t len)
{
    snprintf(buf, len, "{\"type\":\"inspection.scaned\",\"ts\":%lld,\"task_id\":\"T%d\","
             "\"enterprise_id\":\"E\"}", 1740787200000LL + i, i);
}

/* The same misspelled type 500 times: one log line naming the stream, the
 * first entry and the type; another unknown type gets its own line; both
 * counted by type, none dead-lettered. */
static void test_unknown_type_logged_once(void **state)
{
    fixture *f = *state;
    char first[64], want[160];
    redisReply *r;

    start_riskd(f);
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.scaned\",\"ts\":1740787200000,"
            "\"task_id\":\"T\",\"enterprise_id\":\"E\"}", first, sizeof(first));
    xadd_many(f->env.c, "enforce:scan", 499, mk_scaned);
    it_xadd(f->env.c, "enforce:case", "{\"type\":\"case.reopened\",\"ts\":1740787200000,"
            "\"case_id\":\"C1\"}", NULL, 0);
    if (!it_wait_settled(f->env.c, 20000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not drain the streams");
    }
    assert_true(it_metric(f->mport, "riskd_unknown_events_total{stream=\"enforce:scan\","
                                    "type=\"inspection.scaned\"}") == 500);
    assert_true(it_metric(f->mport, "riskd_unknown_events_total{stream=\"enforce:case\","
                                    "type=\"case.reopened\"}") == 1);
    snprintf(want, sizeof(want), "unknown event type \"inspection.scaned\" in "
             "enforce:scan/%s (skipped)", first);
    if (it_log_count(&f->env.riskd, want) != 1)
        it_riskd_dump_log(&f->env.riskd);
    assert_int_equal(it_log_count(&f->env.riskd, want), 1);
    assert_int_equal(it_log_count(&f->env.riskd, "\"inspection.scaned\""), 1);
    assert_int_equal(it_log_count(&f->env.riskd, "unknown event type \"case.reopened\" in "
                                                 "enforce:case/"), 1);
    r = it_cmd(f->env.c, "EXISTS riskd:dead");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    stop_riskd_ok(f);
}

static void mk_bad(int i, char *buf, size_t len)
{
    if (i % 3 == 0)
        snprintf(buf, len, "not json %d", i);
    else
        snprintf(buf, len, "{\"type\":\"inspection.rated\",\"ts\":%lld,\"task_id\":\"T%d\","
                 "\"enterprise_id\":\"E\",\"score\":%d}", 1740787200000LL + i, i, 6 + i % 5);
}

/* 100,000 malformed entries in a few seconds: every one dead-lettered, the
 * first logged in full, the rest summarised; under 50 log lines in all. */
static void test_malformed_flood_summarised(void **state)
{
    fixture *f = *state;
    int waited = 0, lines;

    start_riskd(f);
    xadd_many(f->env.c, "enforce:scan", 100000, mk_bad);
    if (!it_wait_xlen(f->env.c, "riskd:dead", 100000, 120000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd:dead has %lld entries", it_int(f->env.c, "XLEN riskd:dead"));
    }
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 30000));
    assert_int_equal(it_int(f->env.c, "XLEN riskd:dead"), 100000);
    assert_true(it_metric(f->mport, "riskd_invalid_events_total{stream=\"enforce:scan\"}")
                == 100000);
    /* The summary comes once the 10 s after the first line have passed. */
    while (it_log_count(&f->env.riskd, " entries dead-lettered in the last ") == 0 &&
           waited < 15000) {
        it_sleep_ms(100);
        waited += 100;
    }
    lines = it_log_count(&f->env.riskd, NULL);
    if (lines >= 50 || it_log_count(&f->env.riskd, "invalid entry ") != 1 ||
        it_log_count(&f->env.riskd, " entries dead-lettered in the last ") < 1)
        it_riskd_dump_log(&f->env.riskd);
    assert_true(lines < 50);
    assert_int_equal(it_log_count(&f->env.riskd, "invalid entry enforce:scan/"), 1);
    assert_int_equal(it_log_count(&f->env.riskd, "invalid entry "), 1);
    assert_true(it_log_count(&f->env.riskd, " entries dead-lettered in the last ") >= 1);
    assert_true(it_log_count(&f->env.riskd, ", first error: enforce:scan/") >= 1);
    stop_riskd_ok(f);
    assert_true(it_log_count(&f->env.riskd, NULL) < 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_type_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_flood_summarised, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
