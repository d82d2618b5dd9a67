/* tests/unit/test-fine-growth.c - unit tests of the fine_growth detector through
 * tests/lib/fakehost. Most tests use a one-day period (one bucket per
 * period) so that baselines are easy to lay out day by day; others check
 * the bucket layout of longer periods. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "riskd/kit.h"
#include "internal.h"
#include "fakehost.h"

#define T0 INT64_C(1740787200000)   /* 2025-03-01T00:00:00Z, a day boundary */
#define DAY RK_DAY
#define HOUR RK_HOUR

/* period 1d, two baseline periods, both needed; growth 0.5, z 2, amount 1000 */
#define CFG2 "{\"period\": \"1d\", \"baseline_periods\": 2, \"min_history\": 2, " \
             "\"min_amount\": 1000}"

static uint32_t seqno;

static int decided(rk_fakehost *fh, int64_t ts, const char *unit, double fine,
                   double confiscation)
{
    rk_event e;
    memset(&e, 0, sizeof(e));
    e.type = RK_EV_CASE_DECIDED;
    e.ts = ts;
    e.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts, seqno++);
    e.case_id = "C";
    e.unit_id = unit;
    e.fine = fine;
    e.confiscation = confiscation;
    return rk_fh_event(fh, &e);
}

static rk_fakehost *mk(const char *cfg)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(&rk__det_fine_growth, cfg, err, sizeof(err));
    if (fh == NULL) fprintf(stderr, "create: %s\n", err);
    assert_non_null(fh);
    seqno = 0;
    return fh;
}

static double dfield(const json_t *a, const char *key)
{
    return json_number_value(json_object_get(a, key));
}

static const char *sfield(const json_t *a, const char *key)
{
    return json_string_value(json_object_get(a, key));
}

static size_t tracked(rk_fakehost *fh)
{
    return rk__det_fine_growth.tracked_keys(fh->self);
}

/* Baseline days -2 and -1 (relative to T0) with the given sums. */
static void baseline2(rk_fakehost *fh, const char *unit, double d2, double d1)
{
    assert_int_equal(decided(fh, T0 - 2 * DAY + HOUR, unit, d2, 0), 0);
    assert_int_equal(decided(fh, T0 - DAY + HOUR, unit, d1, 0), 0);
}

/* ------------------------------------------------------------------ */

static void expect_cfg_error(const char *cfg, const char *want)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(&rk__det_fine_growth, cfg, err, sizeof(err));
    assert_null(fh);
    assert_string_equal(err, want);
}

static void test_bad_config(void **st)
{
    (void)st;
    expect_cfg_error("{\"x\": 1}", "x: unknown key");
    expect_cfg_error("{\"period\": \"999ms\"}", "period: expected a duration of at least 1000ms");
    expect_cfg_error("{\"period\": 30}",
                     "period: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");
    expect_cfg_error("{\"period\": \"1001s\"}",
                     "period: expected a duration that is at most 1000 buckets of 1s "
                     "(a whole number of days, hours, minutes or seconds)");
    expect_cfg_error("{\"period\": \"1500ms\"}",
                     "period: expected a duration that is at most 1000 buckets of 1ms "
                     "(a whole number of days, hours, minutes or seconds)");
    expect_cfg_error("{\"baseline_periods\": 0}", "baseline_periods: expected an integer from 1 to 52");
    expect_cfg_error("{\"baseline_periods\": 53}", "baseline_periods: expected an integer from 1 to 52");
    expect_cfg_error("{\"baseline_periods\": 2.5}", "baseline_periods: expected an integer from 1 to 52");
    expect_cfg_error("{\"min_history\": -1}", "min_history: expected an integer from 0 to 52");
    expect_cfg_error("{\"baseline_periods\": 2, \"min_history\": 3}",
                     "min_history: must not exceed baseline_periods");
    expect_cfg_error("{\"min_growth\": -0.1}", "min_growth: expected a number from 0 to 1e+06");
    expect_cfg_error("{\"min_z\": \"2\"}", "min_z: expected a number from 0 to 1e+06");
    expect_cfg_error("{\"min_amount\": 1e16}", "min_amount: expected a number from 0 to 1e+15");
    expect_cfg_error("{\"cooldown\": \"soon\"}",
                     "cooldown: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");
}

static void test_good_configs(void **st)
{
    rk_fakehost *fh;
    (void)st;
    fh = mk("{}");
    rk_fh_free(fh);
    fh = mk("{\"period\": \"90m\", \"baseline_periods\": 52, \"min_history\": 52, "
            "\"min_growth\": 0, \"min_z\": 0, \"min_amount\": 0, \"cooldown\": \"0s\"}");
    rk_fh_free(fh);
    fh = mk("{\"period\": \"1000s\"}");
    rk_fh_free(fh);
}

static void test_growth_threshold_sd_zero(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    json_t *a;
    (void)st;
    baseline2(fh, "U1", 1000, 1000);        /* mean 1000, sd 0: z test skipped */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(decided(fh, T0 + HOUR, "U1", 1000, 0), 0);
    assert_int_equal(decided(fh, T0 + 2 * HOUR, "U1", 400, 99), 0);   /* 1499 */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(decided(fh, T0 + 3 * HOUR, "U1", 0, 1), 0);      /* 1500 */
    assert_int_equal(rk_fh_count(fh, "growth"), 1);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(sfield(a, "severity"), "warning");
    assert_int_equal(json_integer_value(json_object_get(a, "ts")), T0 + 3 * HOUR);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "subject"), "unit_id")), "U1");
    assert_int_equal(json_object_size(json_object_get(a, "subject")), 1);
    assert_true(dfield(a, "value") == 1500);
    assert_true(dfield(a, "threshold") == 1500);
    assert_int_equal(json_integer_value(json_object_get(a, "cooldown")), DAY);
    /* evidence: the three cases of the current period, trigger last */
    assert_int_equal(json_array_size(json_object_get(a, "evidence")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "evidence"), 0)),
                        "1/1740790800000-2");
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "evidence"), 2)),
                        "1/1740798000000-4");
    rk_fh_free(fh);
}

static void test_growth_critical(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    (void)st;
    baseline2(fh, "U1", 1000, 1000);
    baseline2(fh, "U2", 1000, 1000);
    assert_int_equal(decided(fh, T0, "U1", 1999, 0), 0);
    assert_int_equal(decided(fh, T0, "U2", 2000, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    assert_string_equal(sfield(rk_fh_alert(fh, 0), "severity"), "warning");
    assert_string_equal(sfield(rk_fh_alert(fh, 1), "severity"), "critical");
    rk_fh_free(fh);
}

static void test_growth_z_threshold(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    json_t *a;
    (void)st;
    /* baseline 500, 1500: mean 1000, population sd 500; z >= 2 needs 2000,
     * growth needs 1500 */
    baseline2(fh, "U1", 500, 1500);
    baseline2(fh, "U2", 500, 1500);
    assert_int_equal(decided(fh, T0, "U1", 1999, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(decided(fh, T0, "U2", 2000, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    a = rk_fh_alert(fh, 0);
    assert_true(dfield(a, "value") == 2000);
    assert_true(dfield(a, "threshold") == 2000);
    assert_string_equal(sfield(a, "severity"), "critical");
    rk_fh_free(fh);
}

static void test_min_amount(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    json_t *a;
    (void)st;
    baseline2(fh, "U1", 100, 100);
    baseline2(fh, "U2", 100, 100);
    assert_int_equal(decided(fh, T0, "U1", 999, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(decided(fh, T0, "U2", 500, 500), 0);     /* fine + confiscation */
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    a = rk_fh_alert(fh, 0);
    assert_true(dfield(a, "value") == 1000);
    assert_true(dfield(a, "threshold") == 1000);
    rk_fh_free(fh);
}

static void test_min_history(void **st)
{
    rk_fakehost *fh = mk("{\"period\": \"1d\", \"baseline_periods\": 3, "
                         "\"min_history\": 3, \"min_amount\": 1000}");
    (void)st;
    /* U1: two non-empty baseline periods out of three: never fires */
    assert_int_equal(decided(fh, T0 - 3 * DAY, "U1", 10, 0), 0);
    assert_int_equal(decided(fh, T0 - DAY, "U1", 10, 0), 0);
    assert_int_equal(decided(fh, T0, "U1", 1e9, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    /* U2: three; a zero-amount case still makes a period non-empty */
    assert_int_equal(decided(fh, T0 - 3 * DAY, "U2", 10, 0), 0);
    assert_int_equal(decided(fh, T0 - 2 * DAY, "U2", 0, 0), 0);
    assert_int_equal(decided(fh, T0 - DAY, "U2", 10, 0), 0);
    assert_int_equal(decided(fh, T0, "U2", 1e9, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    rk_fh_free(fh);
}

static void test_min_history_zero(void **st)
{
    rk_fakehost *fh = mk("{\"period\": \"1d\", \"baseline_periods\": 2, "
                         "\"min_history\": 0, \"min_amount\": 1000}");
    (void)st;
    /* no history at all: mean 0, sd 0; only min_amount decides */
    assert_int_equal(decided(fh, T0, "U1", 999, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(decided(fh, T0, "U1", 1, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_string_equal(sfield(rk_fh_alert(fh, 0), "severity"), "critical");
    rk_fh_free(fh);
}

static void test_period_boundaries(void **st)
{
    /* period 30d: bucket 1d, 30 buckets; the current period of an event on
     * day d is days d-29..d */
    rk_fakehost *fh = mk("{\"baseline_periods\": 1, \"min_history\": 1, "
                         "\"min_amount\": 100}");
    (void)st;
    assert_int_equal(decided(fh, T0 - 30 * DAY, "U1", 100, 0), 0);     /* baseline */
    assert_int_equal(decided(fh, T0 - DAY + HOUR, "U1", 100, 0), 0);   /* current */
    assert_int_equal(rk_fh_count(fh, NULL), 0);                        /* 100 < 150 */
    assert_int_equal(decided(fh, T0 + 28 * DAY, "U1", 50, 0), 0);      /* 150: fires */
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_true(dfield(rk_fh_alert(fh, 0), "value") == 150);
    rk_fh_free(fh);
    /* one day later the case of T0 - 1d has moved to the baseline */
    fh = mk("{\"baseline_periods\": 1, \"min_history\": 1, \"min_amount\": 100}");
    assert_int_equal(decided(fh, T0 - 30 * DAY, "U1", 100, 0), 0);
    assert_int_equal(decided(fh, T0 - DAY + HOUR, "U1", 100, 0), 0);
    assert_int_equal(decided(fh, T0 + 29 * DAY, "U1", 149, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);                        /* 149 < 150 */
    rk_fh_free(fh);
}

static void test_sub_day_buckets(void **st)
{
    /* period 90m: bucket 1m (90m is not a whole number of hours) */
    rk_fakehost *fh = mk("{\"period\": \"90m\", \"baseline_periods\": 1, "
                         "\"min_history\": 1, \"min_amount\": 10}");
    (void)st;
    assert_int_equal(decided(fh, T0 - 90 * RK_MINUTE, "U1", 10, 0), 0);  /* baseline */
    assert_int_equal(decided(fh, T0 + 89 * RK_MINUTE + 59999, "U1", 15, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    rk_fh_free(fh);
    fh = mk("{\"period\": \"90m\", \"baseline_periods\": 1, \"min_history\": 1, "
            "\"min_amount\": 10}");
    assert_int_equal(decided(fh, T0 - 90 * RK_MINUTE, "U1", 10, 0), 0);
    assert_int_equal(decided(fh, T0 + 90 * RK_MINUTE, "U1", 15, 0), 0);  /* baseline left */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    rk_fh_free(fh);
}

static void test_cooldown_default_period(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    (void)st;
    baseline2(fh, "U1", 1000, 1000);
    assert_int_equal(decided(fh, T0 + HOUR, "U1", 1500, 0), 0);
    assert_int_equal(decided(fh, T0 + 2 * HOUR, "U1", 1500, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_int_equal(fh->held_back, 1);
    /* one period later: baseline 1000, 3000 (mean 2000, sd 1000): 4000 */
    assert_int_equal(decided(fh, T0 + DAY + HOUR, "U1", 4000, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    assert_true(dfield(rk_fh_alert(fh, 1), "threshold") == 4000);
    rk_fh_free(fh);
}

static void test_old_event_ignored(void **st)
{
    rk_fakehost *fh = mk("{\"period\": \"1d\", \"baseline_periods\": 1, "
                         "\"min_history\": 0, \"min_amount\": 100}");
    (void)st;
    assert_int_equal(decided(fh, T0, "U1", 10, 0), 0);
    /* older than the two-bucket ring: ignored, no alert */
    assert_int_equal(decided(fh, T0 - 2 * DAY, "U1", 1000, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    /* inside the ring (the baseline bucket): counted there */
    assert_int_equal(decided(fh, T0 - DAY, "U1", 100, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_true(dfield(rk_fh_alert(fh, 0), "value") == 100);
    rk_fh_free(fh);
}

static void test_unit_freed(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    (void)st;
    assert_int_equal(decided(fh, T0 + HOUR, "U1", 10, 0), 0);
    assert_int_equal(decided(fh, T0 + 2 * DAY, "U2", 10, 0), 0);
    assert_int_equal(tracked(fh), 2);
    /* U1's ring is days 0-2 (3 buckets); it is empty from day 3 */
    rk_fh_advance(fh, T0 + 3 * DAY - 1);
    assert_int_equal(tracked(fh), 2);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(tracked(fh), 1);
    rk_fh_advance(fh, T0 + 5 * DAY);
    assert_int_equal(tracked(fh), 0);
    rk_fh_free(fh);
}

static void test_reconfigure(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    char err[256] = "";
    json_t *keep = json_loads("{\"period\": \"1d\", \"baseline_periods\": 2, "
                              "\"min_history\": 2, \"min_amount\": 2000}", 0, NULL);
    json_t *reset = json_loads("{\"period\": \"2d\", \"baseline_periods\": 2, "
                               "\"min_history\": 2}", 0, NULL);
    json_t *bad = json_loads("{\"min_history\": 9, \"baseline_periods\": 2}", 0, NULL);
    (void)st;
    baseline2(fh, "U1", 1000, 1000);
    assert_int_equal(rk__det_fine_growth.reconfigure(fh->self, keep, err, sizeof(err)), 0);
    assert_int_equal(tracked(fh), 1);
    assert_int_equal(decided(fh, T0, "U1", 1999, 0), 0);    /* now below min_amount */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(decided(fh, T0, "U1", 1, 0), 0);       /* 2000 */
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_int_equal(rk__det_fine_growth.reconfigure(fh->self, bad, err, sizeof(err)), -1);
    assert_string_equal(err, "min_history: must not exceed baseline_periods");
    assert_int_equal(tracked(fh), 1);
    assert_int_equal(rk__det_fine_growth.reconfigure(fh->self, reset, err, sizeof(err)), 0);
    assert_int_equal(tracked(fh), 0);
    json_decref(keep);
    json_decref(reset);
    json_decref(bad);
    rk_fh_free(fh);
}

static json_t *scenario(int roundtrip)
{
    rk_fakehost *fh = mk(CFG2);
    json_t *out;
    baseline2(fh, "U1", 500, 1500);
    baseline2(fh, "U2", 1000, 1000);
    assert_int_equal(decided(fh, T0, "U3", 5, 0), 0);
    if (roundtrip) {
        assert_int_equal(rk_fh_roundtrip(fh, CFG2), 0);
        assert_int_equal(tracked(fh), 3);
    }
    assert_int_equal(decided(fh, T0 + HOUR, "U1", 1000, 0), 0);
    assert_int_equal(decided(fh, T0 + 2 * HOUR, "U1", 1000, 0), 0);
    assert_int_equal(decided(fh, T0 + 2 * HOUR, "U2", 1600, 0), 0);
    if (roundtrip)
        assert_int_equal(rk_fh_roundtrip(fh, CFG2), 0);
    assert_int_equal(decided(fh, T0 + DAY, "U3", 5, 0), 0);
    assert_int_equal(decided(fh, T0 + DAY + 2 * HOUR - 1, "U2", 3000, 0), 0);  /* cooldown */
    assert_int_equal(decided(fh, T0 + DAY + 2 * HOUR, "U2", 0, 0), 0);
    assert_int_equal(decided(fh, T0 + 2 * DAY, "U3", 5000, 0), 0);
    rk_fh_advance(fh, T0 + 10 * DAY);
    assert_int_equal(tracked(fh), 0);
    out = json_deep_copy(fh->alerts);
    rk_fh_free(fh);
    return out;
}

static void test_snapshot_roundtrip(void **st)
{
    json_t *a = scenario(0), *b = scenario(1);
    (void)st;
    /* U1 at 2000, U2 at 1600, U2 again once its cooldown is over, U3 */
    assert_int_equal(json_array_size(a), 4);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
}

static void test_restore(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    rk_buf b = {0};
    char err[256];
    size_t cut;
    void *other;
    json_t *cfg;
    (void)st;
    baseline2(fh, "U1", 500, 1500);
    assert_int_equal(decided(fh, T0, "U2", 5, 0), 0);
    assert_int_equal(rk__det_fine_growth.snapshot(fh->self, &b), 0);
    for (cut = 0; cut < b.len; cut++) {
        err[0] = '\0';
        assert_int_equal(rk__det_fine_growth.restore(fh->self, b.data, cut, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        assert_int_equal(tracked(fh), 0);
    }
    /* trailing garbage */
    assert_int_equal(rk_buf_reserve(&b, 1), 0);
    b.data[b.len] = 7;
    assert_int_equal(rk__det_fine_growth.restore(fh->self, b.data, b.len + 1, err, sizeof(err)), -1);
    assert_int_equal(rk__det_fine_growth.restore(fh->self, b.data, b.len, err, sizeof(err)), 0);
    assert_int_equal(tracked(fh), 2);
    /* an instance with another period restores the snapshot as empty */
    cfg = json_loads("{\"period\": \"2d\"}", 0, NULL);
    other = rk__det_fine_growth.create(&fh->api, (rk_host *)(void *)fh, cfg, err, sizeof(err));
    assert_non_null(other);
    assert_int_equal(rk__det_fine_growth.restore(other, b.data, b.len, err, sizeof(err)), 0);
    assert_int_equal(rk__det_fine_growth.tracked_keys(other), 0);
    rk__det_fine_growth.destroy(other);
    json_decref(cfg);
    rk_buf_free(&b);
    rk_fh_free(fh);
}

/* A snapshot whose newest bucket lies beyond what any event time can give
 * (found by fuzzing: its expiry overflowed) is refused. */
static void test_restore_top_out_of_range(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    rk_buf b = {0};
    char err[256];
    size_t top_at = 4 + 8 + 8 + 4 + 4 + 2;  /* version, period, periods, n, "U1" */
    int64_t tops[] = {-(INT64_C(1) << 60), INT64_C(1) << 60, INT64_MIN, INT64_MAX};
    (void)st;
    assert_int_equal(decided(fh, T0, "U1", 5, 0), 0);
    assert_int_equal(rk__det_fine_growth.snapshot(fh->self, &b), 0);
    for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
        for (int k = 0; k < 8; k++)
            b.data[top_at + k] = (unsigned char)((uint64_t)tops[i] >> (8 * k));
        err[0] = '\0';
        assert_int_equal(rk__det_fine_growth.restore(fh->self, b.data, b.len, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        assert_int_equal(tracked(fh), 0);
        rk_fh_advance(fh, T0 + DAY);
    }
    rk_buf_free(&b);
    rk_fh_free(fh);
}

static void test_evidence_cap(void **st)
{
    rk_fakehost *fh = mk("{\"period\": \"1d\", \"baseline_periods\": 1, "
                         "\"min_history\": 0, \"min_amount\": 2500}");
    json_t *ev;
    int i;
    (void)st;
    /* only the last 20 cases are kept as evidence */
    assert_int_equal(decided(fh, T0 - HOUR, "U1", 1, 0), 0);
    for (i = 0; i < 25; i++)
        assert_int_equal(decided(fh, T0 + i * 1000, "U1", 100, 0), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    ev = json_object_get(rk_fh_alert(fh, 0), "evidence");
    assert_int_equal(json_array_size(ev), 20);
    assert_string_equal(json_string_value(json_array_get(ev, 0)), "1/1740787205000-6");
    assert_string_equal(json_string_value(json_array_get(ev, 19)), "1/1740787224000-25");
    rk_fh_free(fh);
}

/* ---- lifecycle ---- */

static int decided_as(rk_fakehost *fh, int64_t ts, const char *case_id, const char *unit,
                      double fine, uint32_t flags)
{
    rk_event e;
    memset(&e, 0, sizeof(e));
    e.type = RK_EV_CASE_DECIDED;
    e.ts = ts;
    e.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts, seqno++);
    e.case_id = case_id;
    e.unit_id = unit;
    e.fine = fine;
    e.flags = flags;
    return rk_fh_event(fh, &e);
}

/* The alert resolves once the current period fell back for keep_firing_for
 * (1h in the fake host): day 0's 1600 leaves the current period at the
 * start of day 1. */
static void test_growth_resolved(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    json_t *n;
    (void)st;
    assert_int_equal(decided_as(fh, T0 - 2 * DAY + HOUR, "B1", "U1", 1000, 0), 0);
    assert_int_equal(decided_as(fh, T0 - DAY + HOUR, "B2", "U1", 1000, 0), 0);
    assert_int_equal(decided_as(fh, T0 + HOUR, "D1", "U1", 1600, 0), 0);
    assert_int_equal(rk_fh_count(fh, "growth"), 1);
    assert_int_equal(rk_fh_roundtrip(fh, CFG2), 0);
    rk_fh_advance(fh, T0 + DAY + HOUR);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + DAY + HOUR + 1);
    assert_int_equal(rk_fh_notice_count(fh, "growth", "resolved"), 1);
    n = rk_fh_notice(fh, 0);
    assert_int_equal(json_integer_value(json_object_get(n, "ts")), T0 + HOUR);
    assert_int_equal(json_integer_value(json_object_get(n, "change_ts")), T0 + DAY + HOUR);
    assert_non_null(strstr(sfield(n, "reason"), "U1"));
    rk_fh_free(fh);
}

/* An amendment of the triggering decision to 900 shows the growth never
 * held: retracted (and not resolved later). */
static void test_growth_retracted(void **st)
{
    rk_fakehost *fh = mk(CFG2);
    (void)st;
    assert_int_equal(decided_as(fh, T0 - 2 * DAY + HOUR, "B1", "U1", 1000, 0), 0);
    assert_int_equal(decided_as(fh, T0 - DAY + HOUR, "B2", "U1", 1000, 0), 0);
    assert_int_equal(decided_as(fh, T0 + HOUR, "D1", "U1", 1600, 0), 0);
    assert_int_equal(rk_fh_count(fh, "growth"), 1);
    assert_int_equal(decided_as(fh, T0 + 2 * HOUR, "D1", "U1", 900, RK_EVF_AMENDED), 0);
    assert_int_equal(rk_fh_notice_count(fh, "growth", "retracted"), 1);
    assert_int_equal(json_integer_value(json_object_get(rk_fh_notice(fh, 0), "ts")), T0 + HOUR);
    rk_fh_advance(fh, T0 + 10 * DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_growth_resolved),
        cmocka_unit_test(test_growth_retracted),
        cmocka_unit_test(test_good_configs),
        cmocka_unit_test(test_growth_threshold_sd_zero),
        cmocka_unit_test(test_growth_critical),
        cmocka_unit_test(test_growth_z_threshold),
        cmocka_unit_test(test_min_amount),
        cmocka_unit_test(test_min_history),
        cmocka_unit_test(test_min_history_zero),
        cmocka_unit_test(test_period_boundaries),
        cmocka_unit_test(test_sub_day_buckets),
        cmocka_unit_test(test_cooldown_default_period),
        cmocka_unit_test(test_old_event_ignored),
        cmocka_unit_test(test_unit_freed),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_restore_top_out_of_range),
        cmocka_unit_test(test_evidence_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
