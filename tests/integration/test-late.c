/* tests/integration/test-late.c - late data against a real redis-server: a unit that
 * uploads two days of filings and scans late, after other units' traffic
 * moved the watermark on.
 *
 * With clock.allowed_lateness "72h" the late batch raises no false alert
 * (no filed_not_scanned or scan_without_filing for tasks filed and scanned
 * on time) and every true one still fires; with "0s" the same input raises
 * the false ones, and the late events are counted
 * (riskd_late_events_total, riskd_event_lateness_seconds) and logged. */
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

#define T0 1740787200000LL          /* 2025-03-01T00:00:00Z */
#define HOUR 3600000LL

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    int mport;
    char first_late[64];            /* entry id of the first late event */
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

static void filing(fixture *f, const char *task, const char *unit, long long ts, char *id)
{
    char ev[512];
    snprintf(ev, sizeof(ev), "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"%s\","
             "\"unit_id\":\"%s\",\"officers\":[\"O-%s\"],\"enterprise_id\":\"E-%s\"}",
             ts, task, unit, unit, task);
    it_xadd(f->env.c, "enforce:scan", ev, id, id ? 64 : 0);
}

static void scan(fixture *f, const char *task, const char *unit, long long ts)
{
    char ev[512];
    snprintf(ev, sizeof(ev), "{\"type\":\"inspection.scanned\",\"ts\":%lld,\"task_id\":\"%s\","
             "\"unit_id\":\"%s\",\"enterprise_id\":\"E-%s\"}", ts, task, unit, task);
    it_xadd(f->env.c, "enforce:scan", ev, NULL, 0);
}

static void drained_or_dump(fixture *f)
{
    if (!it_wait_settled(f->env.c, 20000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not drain the streams");
    }
}

/* Run the scenario under allowed_lateness `lateness`; returns the alerts as
 * a set of "rule task_id" strings (an object, caller decrefs). */
static json_t *run(fixture *f, const char *lateness)
{
    char cfg[512], task[32];
    json_t *alerts, *set = json_object(), *a;
    size_t i;
    int k;

    f->mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"clock\":{\"wall_advance\":false,\"allowed_lateness\":\"%s\"},"
             "\"metrics\":{\"listen\":\"127.0.0.1:%d\"}}", lateness, f->mport);
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");

    /* Unit UB works on time for two and a half days: every task filed and
     * scanned an hour later. The watermark reaches T0 + 60h. */
    for (k = 0; k <= 20; k++) {
        snprintf(task, sizeof(task), "B%d", k);
        filing(f, task, "UB", T0 + k * 3 * HOUR - HOUR, NULL);
        scan(f, task, "UB", T0 + k * 3 * HOUR);
    }
    drained_or_dump(f);

    /* Unit UL uploads its last two days late, in two goes. First: its
     * filings (L1-L4 were scanned on time, L5 never), the scans of L7 and
     * L8 (their filings come in the second go) and a scan of L6, which was
     * never filed. */
    filing(f, "L1", "UL", T0 + 8 * HOUR, f->first_late);
    filing(f, "L2", "UL", T0 + 14 * HOUR, NULL);
    filing(f, "L3", "UL", T0 + 26 * HOUR, NULL);
    filing(f, "L4", "UL", T0 + 34 * HOUR, NULL);
    filing(f, "L5", "UL", T0 + 30 * HOUR, NULL);
    scan(f, "L7", "UL", T0 + 12 * HOUR);
    scan(f, "L8", "UL", T0 + 36 * HOUR);
    scan(f, "L6", "UL", T0 + 20 * HOUR);
    drained_or_dump(f);
    /* Then the scans of L1-L4 and the filings of L7 and L8 (filed before
     * their scans, uploaded after them). */
    scan(f, "L1", "UL", T0 + 9 * HOUR);
    scan(f, "L2", "UL", T0 + 15 * HOUR);
    scan(f, "L3", "UL", T0 + 27 * HOUR);
    scan(f, "L4", "UL", T0 + 35 * HOUR);
    filing(f, "L7", "UL", T0 + 11 * HOUR, NULL);
    filing(f, "L8", "UL", T0 + 35 * HOUR, NULL);
    drained_or_dump(f);

    /* Time moves on to day 6: everything due, held back or not, fires. */
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"clock.tick\",\"ts\":1741305600000}", NULL, 0);
    drained_or_dump(f);

    alerts = it_alerts(f->env.c, "alerts");
    json_array_foreach(alerts, i, a) {
        char key[128];
        json_t *subj = json_object_get(a, "subject");
        snprintf(key, sizeof(key), "%s %s", json_string_value(json_object_get(a, "rule")),
                 json_string_value(json_object_get(subj, "task_id")));
        json_object_set_new(set, key, json_true());
    }
    json_decref(alerts);
    return set;
}

static void stop_riskd_ok(fixture *f)
{
    int st;
    it_riskd_signal(&f->env.riskd, SIGTERM);
    st = it_riskd_wait(&f->env.riskd, 15000);
    if (st != 0)
        it_riskd_dump_log(&f->env.riskd);
    assert_int_equal(st, 0);
}

static void dump_set(json_t *set)
{
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v)
        fprintf(stderr, "  alert: %s\n", k);
}

/* "72h": exactly the true alerts - L5 never scanned, L6 never filed. */
static void test_two_day_late_batch_72h_no_false_alert(void **state)
{
    fixture *f = *state;
    json_t *set = run(f, "72h");

    if (json_object_size(set) != 2)
        dump_set(set);
    assert_int_equal(json_object_size(set), 2);
    assert_non_null(json_object_get(set, "filed_not_scanned L5"));
    assert_non_null(json_object_get(set, "scan_without_filing L6"));
    /* Late is late, held back or not: counted all the same. */
    assert_true(it_metric(f->mport, "riskd_late_events_total{stream=\"enforce:scan\"}") == 14);
    json_decref(set);
    stop_riskd_ok(f);
}

/* "0s": the late batch is counted, measured and logged - and, nothing
 * being held back, it raises the false alarms that "72h" avoids. */
static void test_two_day_late_batch_0s_counted_and_logged(void **state)
{
    fixture *f = *state;
    json_t *set = run(f, "0s");
    char want[160];

    /* The true ones ... */
    assert_non_null(json_object_get(set, "filed_not_scanned L5"));
    assert_non_null(json_object_get(set, "scan_without_filing L6"));
    /* ... and the false ones: decided before the late data arrived. */
    assert_non_null(json_object_get(set, "filed_not_scanned L1"));
    assert_non_null(json_object_get(set, "filed_not_scanned L4"));
    assert_non_null(json_object_get(set, "scan_without_filing L7"));
    assert_non_null(json_object_get(set, "scan_without_filing L8"));
    assert_null(json_object_get(set, "filed_not_scanned B3"));   /* on time: fine */

    /* 14 late events, 24h to 52h behind the watermark (T0 + 60h). */
    assert_true(it_metric(f->mport, "riskd_late_events_total{stream=\"enforce:scan\"}") == 14);
    assert_true(it_metric(f->mport, "riskd_late_events_total{stream=\"enforce:case\"}") == 0);
    assert_true(it_metric(f->mport, "riskd_event_lateness_seconds_count") == 14);
    assert_true(it_metric(f->mport, "riskd_event_lateness_seconds_bucket{le=\"21600\"}") == 0);
    assert_true(it_metric(f->mport, "riskd_event_lateness_seconds_bucket{le=\"86400\"}") == 1);
    assert_true(it_metric(f->mport, "riskd_event_lateness_seconds_bucket{le=\"259200\"}") == 14);
    assert_true(it_metric(f->mport, "riskd_event_lateness_seconds_bucket{le=\"+Inf\"}") == 14);
    assert_true(it_metric(f->mport, "riskd_event_lateness_seconds_sum") > 14 * 21 * 3600.0);
    /* The first late event is named with its lateness, once; the rest of
     * the minute is held for one summary line. */
    snprintf(want, sizeof(want), "late event enforce:scan/%s: 2d 4h behind the watermark",
             f->first_late);
    if (it_log_count(&f->env.riskd, want) != 1)
        it_riskd_dump_log(&f->env.riskd);
    assert_int_equal(it_log_count(&f->env.riskd, want), 1);
    assert_int_equal(it_log_count(&f->env.riskd, "late event "), 1);
    json_decref(set);
    stop_riskd_ok(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_day_late_batch_72h_no_false_alert,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_day_late_batch_0s_counted_and_logged,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
