/* tests/unit/test-unfiled-inspection.c - unit tests of the unfiled_inspection detector,
 * driven through the real ABI by tests/lib/fakehost. Each test builds
 * events by hand, moves event time and checks the exact alerts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "riskd/kit.h"
#include "internal.h"
#include "fakehost.h"

#define T0 INT64_C(1740787200000)   /* 2025-03-01T00:00:00Z */
#define MIN RK_MINUTE
#define HOUR RK_HOUR
#define DAY RK_DAY

static uint32_t seqno;

static rk_event base(rk_event_type t, int64_t ts, unsigned stream)
{
    rk_event e;
    memset(&e, 0, sizeof(e));
    e.type = t;
    e.ts = ts;
    e.ref = rk_fh_ref(stream, (uint64_t)ts, seqno++);
    return e;
}

static int filed(rk_fakehost *fh, int64_t ts, const char *task, const char *unit,
                 const char *ent, int64_t planned)
{
    rk_event e = base(RK_EV_INSPECTION_FILED, ts, RK_STREAM_SCAN);
    e.task_id = task;
    e.unit_id = unit;
    e.enterprise_id = ent;
    e.planned_at = planned;
    return rk_fh_event(fh, &e);
}

static int scanned(rk_fakehost *fh, int64_t ts, const char *task, const char *ent,
                   const char *unit)
{
    rk_event e = base(RK_EV_INSPECTION_SCANNED, ts, RK_STREAM_SCAN);
    e.task_id = task;
    e.enterprise_id = ent;
    e.unit_id = unit;
    return rk_fh_event(fh, &e);
}

static int reported(rk_fakehost *fh, int64_t ts, const char *unit, const char *ent)
{
    rk_event e = base(RK_EV_INSPECTION_REPORTED, ts, RK_STREAM_SCAN);
    e.unit_id = unit;
    e.enterprise_id = ent;
    return rk_fh_event(fh, &e);
}

static int opened(rk_fakehost *fh, int64_t ts, const char *case_id, const char *unit,
                  const char *task, rk_case_source src)
{
    rk_event e = base(RK_EV_CASE_OPENED, ts, RK_STREAM_CASE);
    e.case_id = case_id;
    e.unit_id = unit;
    e.task_id = task;
    e.source = src;
    return rk_fh_event(fh, &e);
}

static rk_fakehost *mk(const char *cfg)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(&rk__det_unfiled_inspection, cfg, err, sizeof(err));
    if (fh == NULL) fprintf(stderr, "create: %s\n", err);
    assert_non_null(fh);
    seqno = 0;
    return fh;
}

static const char *sfield(const json_t *a, const char *obj, const char *key)
{
    const json_t *o = obj ? json_object_get(a, obj) : a;
    return json_string_value(json_object_get(o, key));
}

static json_int_t ifield(const json_t *a, const char *key)
{
    return json_integer_value(json_object_get(a, key));
}

/* The i-th evidence entry of an alert as "stream/ms-seq". */
static const char *evid(const json_t *a, size_t i)
{
    return json_string_value(json_array_get(json_object_get(a, "evidence"), i));
}

static size_t nevid(const json_t *a)
{
    return json_array_size(json_object_get(a, "evidence"));
}

static char *refstr(unsigned stream, int64_t ms, uint32_t seq)
{
    static char buf[4][64];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%u/%lld-%u", stream, (long long)ms, seq);
    return buf[k];
}

/* ------------------------------------------------------------------ */

static void expect_cfg_error(const char *cfg, const char *want)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(&rk__det_unfiled_inspection, cfg, err, sizeof(err));
    assert_null(fh);
    assert_string_equal(err, want);
}

static void test_bad_config(void **st)
{
    (void)st;
    expect_cfg_error("{\"bogus\": 1}", "bogus: unknown key");
    expect_cfg_error("{\"grace\": \"10\"}",
                     "grace: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");
    expect_cfg_error("{\"report_tolerance\": 5}",
                     "report_tolerance: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");
    expect_cfg_error("{\"scan_deadline\": \"50d\"}",
                     "scan_deadline: expected a duration of at most 49d");
    expect_cfg_error("{\"scan_deadline\": \"-1h\"}",
                     "scan_deadline: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");
    expect_cfg_error("{\"retention\": \"0s\"}",
                     "retention: expected a duration of at least 1ms");
    expect_cfg_error("{\"cooldown\": \"1w\"}",
                     "cooldown: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");
}

static void test_reconfigure(void **st)
{
    rk_fakehost *fh = mk("{}");
    char err[256] = "";
    json_t *good = json_pack("{s:s}", "grace", "1m");
    json_t *bad = json_pack("{s:s}", "grace", "x");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(rk__det_unfiled_inspection.reconfigure(fh->self, good, err, sizeof(err)), 0);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    assert_int_equal(rk__det_unfiled_inspection.reconfigure(fh->self, bad, err, sizeof(err)), -1);
    assert_string_equal(err, "grace: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");
    /* state kept: the filing's timer still fires */
    rk_fh_advance(fh, T0 + DAY + 1);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    json_decref(good);
    json_decref(bad);
    rk_fh_free(fh);
}

static void test_filed_not_scanned(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    (void)st;
    assert_int_equal(filed(fh, T0 - HOUR, "T1", "U1", "E1", T0), 0);
    rk_fh_advance(fh, T0 + DAY);            /* exactly the deadline: not yet */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    rk_fh_advance(fh, T0 + DAY + 1);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(sfield(a, NULL, "rule"), "filed_not_scanned");
    assert_string_equal(sfield(a, NULL, "severity"), "info");
    assert_int_equal(ifield(a, "ts"), T0 + DAY);
    assert_int_equal(ifield(a, "cooldown"), 0);
    assert_string_equal(sfield(a, "subject", "task_id"), "T1");
    assert_string_equal(sfield(a, "subject", "unit_id"), "U1");
    assert_string_equal(sfield(a, "subject", "enterprise_id"), "E1");
    assert_int_equal(json_object_size(json_object_get(a, "subject")), 3);
    assert_int_equal(nevid(a), 1);
    assert_string_equal(evid(a, 0), refstr(0, T0 - HOUR, 0));
    rk_fh_free(fh);
}

/* The longest scan_deadline the task record holds (49 days): it fires on
 * the day, not wrapped around 32 bits (49.7 days) to an earlier time. */
static void test_longest_scan_deadline(void **st)
{
    rk_fakehost *fh = mk("{\"scan_deadline\": \"49d\"}");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    rk_fh_advance(fh, T0 + 49 * DAY);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    rk_fh_advance(fh, T0 + 49 * DAY + 1);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    assert_int_equal(ifield(rk_fh_alert(fh, 0), "ts"), T0 + 49 * DAY);
    rk_fh_free(fh);
}

static void test_scan_at_deadline(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    /* scanned exactly at planned_at + scan_deadline: in time */
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(scanned(fh, T0 + DAY, "T1", "E1", NULL), 0);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    /* 1 ms late: the deadline passed first */
    assert_int_equal(filed(fh, T0 + 3 * DAY, "T2", "U1", "E1", T0 + 3 * DAY), 0);
    assert_int_equal(scanned(fh, T0 + 4 * DAY + 1, "T2", "E1", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_string_equal(sfield(rk_fh_alert(fh, 0), "subject", "task_id"), "T2");
    rk_fh_free(fh);
}

static void test_enterprise_mismatch(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(scanned(fh, T0 + MIN, "T1", "E1", NULL), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(scanned(fh, T0 + 2 * MIN, "T1", "E2", "U9"), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(sfield(a, NULL, "rule"), "enterprise_mismatch");
    assert_string_equal(sfield(a, NULL, "severity"), "critical");
    assert_int_equal(ifield(a, "ts"), T0 + 2 * MIN);
    assert_string_equal(sfield(a, "subject", "task_id"), "T1");
    assert_string_equal(sfield(a, "subject", "unit_id"), "U1");
    assert_string_equal(sfield(a, "subject", "enterprise_id"), "E2");
    assert_int_equal(json_object_size(json_object_get(a, "subject")), 3);
    assert_int_equal(nevid(a), 2);
    assert_string_equal(evid(a, 0), refstr(0, T0, 0));
    assert_string_equal(evid(a, 1), refstr(0, T0 + 2 * MIN, 2));
    assert_true(json_real_value(json_object_get(a, "value")) == 1);   /* one scan at another enterprise */
    assert_true(json_real_value(json_object_get(a, "threshold")) == 1);
    /* cooldown: the same subject within 24h is held back, after it fires */
    assert_int_equal(scanned(fh, T0 + DAY + 2 * MIN - 1, "T1", "E2", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 1);
    assert_int_equal(fh->held_back, 1);
    assert_int_equal(scanned(fh, T0 + DAY + 2 * MIN, "T1", "E2", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 2);
    rk_fh_free(fh);
}

static void test_duplicate_filing_first_wins(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(filed(fh, T0 + 1, "T1", "U2", "E2", T0 + 5 * DAY), 0);
    assert_int_equal(scanned(fh, T0 + 2, "T1", "E2", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 1);
    assert_string_equal(sfield(rk_fh_alert(fh, 0), "subject", "unit_id"), "U1");
    rk_fh_free(fh);
}

static void test_scan_without_filing(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    (void)st;
    assert_int_equal(scanned(fh, T0, "T1", "E1", "U1"), 0);
    assert_int_equal(scanned(fh, T0 + MIN, "T1", "E1", NULL), 0);
    assert_int_equal(scanned(fh, T0, "T2", "E2", NULL), 0);
    rk_fh_advance(fh, T0 + 10 * MIN);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    rk_fh_advance(fh, T0 + 10 * MIN + 1);
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 2);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(sfield(a, NULL, "severity"), "warning");
    assert_int_equal(ifield(a, "ts"), T0 + 10 * MIN);
    assert_int_equal(ifield(a, "cooldown"), DAY);
    assert_string_equal(sfield(a, "subject", "task_id"), "T1");
    assert_string_equal(sfield(a, "subject", "enterprise_id"), "E1");
    assert_string_equal(sfield(a, "subject", "unit_id"), "U1");
    assert_int_equal(nevid(a), 2);
    assert_string_equal(evid(a, 0), refstr(0, T0, 0));
    assert_string_equal(evid(a, 1), refstr(0, T0 + MIN, 1));
    a = rk_fh_alert(fh, 1);
    assert_string_equal(sfield(a, "subject", "task_id"), "T2");
    assert_null(sfield(a, "subject", "unit_id"));
    assert_int_equal(json_object_size(json_object_get(a, "subject")), 2);
    rk_fh_free(fh);
}

static void test_scan_then_filing_within_grace(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    assert_int_equal(scanned(fh, T0, "T1", "E1", NULL), 0);
    assert_int_equal(filed(fh, T0 + 10 * MIN, "T1", "U1", "E1", T0), 0);  /* exactly at grace */
    rk_fh_advance(fh, T0 + 5 * DAY);
    /* cleared, and the scan counts: no filed_not_scanned either */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    rk_fh_free(fh);
}

static void test_scan_then_filing_late(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    (void)st;
    assert_int_equal(scanned(fh, T0, "T1", "E9", NULL), 0);
    assert_int_equal(filed(fh, T0 + 10 * MIN + 1, "T1", "U1", "E1", T0), 0);  /* 1 ms late */
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 1);
    assert_int_equal(ifield(rk_fh_alert(fh, 0), "ts"), T0 + 10 * MIN);
    /* the scan is still checked against the filing ... */
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 1);
    a = rk_fh_alert(fh, 1);
    assert_string_equal(sfield(a, "subject", "enterprise_id"), "E9");
    assert_string_equal(evid(a, 0), refstr(0, T0, 0));
    assert_string_equal(evid(a, 1), refstr(0, T0 + 10 * MIN + 1, 1));
    /* ... and counts as scanned (scan ts <= planned_at + scan_deadline) */
    rk_fh_advance(fh, T0 + 5 * DAY);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    rk_fh_free(fh);
}

static void test_scan_before_filing_after_scan_deadline(void **st)
{
    rk_fakehost *fh = mk("{\"grace\": \"0s\", \"scan_deadline\": \"1h\"}");
    (void)st;
    /* a scan that came before the filing but after planned_at +
     * scan_deadline does not count as scanned */
    assert_int_equal(scanned(fh, T0 + 2 * HOUR, "T1", "E1", NULL), 0);
    assert_int_equal(filed(fh, T0 + 2 * HOUR, "T1", "U1", "E1", T0), 0);
    rk_fh_advance(fh, T0 + DAY);
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 0);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    rk_fh_free(fh);
}

static void test_reported(void **st)
{
    rk_fakehost *fh = mk("{}");
    const int64_t P = T0 + 10 * DAY;
    json_t *a;
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", P), 0);
    assert_int_equal(scanned(fh, T0, "T1", "E1", NULL), 0);
    assert_int_equal(reported(fh, P - DAY, "U1", "E1"), 0);        /* -tolerance */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(reported(fh, P - DAY - 1, "U2", "E1"), 0);    /* other unit */
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_int_equal(reported(fh, P + DAY, "U1", "E1"), 0);        /* +tolerance */
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_int_equal(reported(fh, P + DAY + 1, "U1", "E1"), 0);    /* 1 ms outside */
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 2);
    a = rk_fh_alert(fh, 1);
    assert_string_equal(sfield(a, NULL, "severity"), "critical");
    assert_int_equal(ifield(a, "ts"), P + DAY + 1);
    assert_string_equal(sfield(a, "subject", "unit_id"), "U1");
    assert_string_equal(sfield(a, "subject", "enterprise_id"), "E1");
    assert_int_equal(json_object_size(json_object_get(a, "subject")), 2);
    assert_int_equal(nevid(a), 1);
    assert_string_equal(evid(a, 0), refstr(0, P + DAY + 1, 5));
    rk_fh_free(fh);
}

static void test_reported_before_planned(void **st)
{
    rk_fakehost *fh = mk("{\"report_tolerance\": \"1h\"}");
    const int64_t P = T0 + 2 * DAY;
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", P), 0);
    assert_int_equal(reported(fh, P - HOUR - 1, "U1", "E1"), 0);
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 1);
    assert_int_equal(reported(fh, P - HOUR, "U1", "E2"), 0);        /* other enterprise */
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 2);
    assert_int_equal(reported(fh, P - HOUR, "U1", "E1"), 0);        /* in tolerance */
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 2);
    rk_fh_free(fh);
}

static void test_reported_cooldown(void **st)
{
    rk_fakehost *fh = mk("{\"cooldown\": \"2h\"}");
    (void)st;
    assert_int_equal(reported(fh, T0, "U1", "E1"), 0);
    assert_int_equal(reported(fh, T0 + 2 * HOUR - 1, "U1", "E1"), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_int_equal(fh->held_back, 1);
    assert_int_equal(reported(fh, T0 + 2 * HOUR, "U1", "E1"), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    assert_int_equal(ifield(rk_fh_alert(fh, 1), "cooldown"), 2 * HOUR);
    rk_fh_free(fh);
}

static void test_case_without_task(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    (void)st;
    assert_int_equal(opened(fh, T0, "C1", "U1", NULL, RK_SOURCE_INSPECTION), 0);
    assert_int_equal(opened(fh, T0, "C2", "U1", NULL, RK_SOURCE_COMPLAINT), 0);
    assert_int_equal(opened(fh, T0, "C3", "U1", "T404", RK_SOURCE_OTHER), 0);
    rk_fh_advance(fh, T0 + DAY);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(sfield(a, NULL, "rule"), "case_without_filing");
    assert_string_equal(sfield(a, NULL, "severity"), "warning");
    assert_int_equal(ifield(a, "ts"), T0);
    assert_string_equal(sfield(a, "subject", "case_id"), "C1");
    assert_string_equal(sfield(a, "subject", "unit_id"), "U1");
    assert_int_equal(json_object_size(json_object_get(a, "subject")), 2);
    assert_string_equal(evid(a, 0), refstr(1, T0, 0));
    rk_fh_free(fh);
}

static void test_case_with_task(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    (void)st;
    /* filed before: fine */
    assert_int_equal(filed(fh, T0 - DAY, "T1", "U1", "E1", T0 - DAY), 0);
    assert_int_equal(scanned(fh, T0 - DAY, "T1", "E1", NULL), 0);
    assert_int_equal(opened(fh, T0, "C1", "U1", "T1", RK_SOURCE_INSPECTION), 0);
    /* case first, filing exactly at grace: fine */
    assert_int_equal(opened(fh, T0, "C2", "U1", "T2", RK_SOURCE_INSPECTION), 0);
    assert_int_equal(filed(fh, T0 + 10 * MIN, "T2", "U1", "E1", T0), 0);
    assert_int_equal(scanned(fh, T0 + 10 * MIN, "T2", "E1", NULL), 0);
    /* case first, filing 1 ms late: alert at case ts + grace */
    assert_int_equal(opened(fh, T0 + HOUR, "C3", "U2", "T3", RK_SOURCE_INSPECTION), 0);
    assert_int_equal(filed(fh, T0 + HOUR + 10 * MIN + 1, "T3", "U2", "E1", T0 + HOUR), 0);
    assert_int_equal(scanned(fh, T0 + HOUR + 10 * MIN + 1, "T3", "E1", NULL), 0);
    /* never filed */
    assert_int_equal(opened(fh, T0 + 2 * HOUR, "C4", "U2", "T4", RK_SOURCE_INSPECTION), 0);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(sfield(a, NULL, "rule"), "case_without_filing");
    assert_int_equal(ifield(a, "ts"), T0 + HOUR + 10 * MIN);
    assert_string_equal(sfield(a, "subject", "case_id"), "C3");
    assert_string_equal(sfield(a, "subject", "unit_id"), "U2");
    assert_string_equal(sfield(a, "subject", "task_id"), "T3");
    assert_int_equal(json_object_size(json_object_get(a, "subject")), 3);
    assert_int_equal(nevid(a), 1);
    assert_string_equal(evid(a, 0), refstr(1, T0 + HOUR, 6));
    a = rk_fh_alert(fh, 1);
    assert_string_equal(sfield(a, "subject", "case_id"), "C4");
    assert_int_equal(ifield(a, "ts"), T0 + 2 * HOUR + 10 * MIN);
    rk_fh_free(fh);
}

static void test_case_after_filing_other_stream_lags(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    /* The scan stream ran ahead: the filing (ts T0 + 5m) is known when the
     * case of T0 arrives; the filing is within grace of the case. */
    assert_int_equal(filed(fh, T0 + 5 * MIN, "T1", "U1", "E1", T0), 0);
    assert_int_equal(opened(fh, T0, "C1", "U1", "T1", RK_SOURCE_INSPECTION), 0);
    /* and one filed far later than the case's grace */
    assert_int_equal(filed(fh, T0 + HOUR, "T2", "U1", "E1", T0), 0);
    assert_int_equal(opened(fh, T0 + 10 * MIN, "C2", "U1", "T2", RK_SOURCE_INSPECTION), 0);
    assert_int_equal(scanned(fh, T0 + HOUR, "T1", "E1", NULL), 0);
    assert_int_equal(scanned(fh, T0 + HOUR, "T2", "E1", NULL), 0);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_string_equal(sfield(rk_fh_alert(fh, 0), "subject", "case_id"), "C2");
    assert_int_equal(ifield(rk_fh_alert(fh, 0), "ts"), T0 + 20 * MIN);
    rk_fh_free(fh);
}

static void test_retention(void **st)
{
    rk_fakehost *fh = mk("{\"retention\": \"2d\"}");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);        /* filing + index */
    assert_int_equal(scanned(fh, T0, "T9", "E1", NULL), 0);          /* pending scan */
    assert_int_equal(opened(fh, T0, "C1", "U1", "T8", RK_SOURCE_INSPECTION), 0);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 4);
    rk_fh_advance(fh, T0 + HOUR);
    /* the pending case's timer fired; the unfiled scan is kept (retention) */
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 3);
    rk_fh_advance(fh, T0 + 2 * DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 3);
    /* a report still finds the filing at the edge of retention */
    assert_int_equal(reported(fh, T0 + DAY, "U1", "E1"), 0);
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 0);
    rk_fh_advance(fh, T0 + 2 * DAY + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    /* a scan of T1 now has no filing */
    assert_int_equal(scanned(fh, T0 + 2 * DAY + 1, "T1", "E1", NULL), 0);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 2);
    rk_fh_advance(fh, T0 + 10 * DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_merged_scan_freed(void **st)
{
    rk_fakehost *fh = mk("{\"retention\": \"30d\"}");
    (void)st;
    assert_int_equal(scanned(fh, T0, "T1", "E1", NULL), 0);
    assert_int_equal(filed(fh, T0 + MIN, "T1", "U1", "E1", T0), 0);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 3);
    rk_fh_advance(fh, T0 + 11 * MIN);           /* the scan round fired */
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    rk_fh_free(fh);
}

/* A filing whose filed_not_scanned timer has not fired is kept past
 * planned_at + retention; when the timer fires it is freed at once (its
 * expiry moves back). A report does not match a filing out of retention. */
static void test_filing_expiry_waits_for_timer(void **st)
{
    rk_fakehost *fh = mk("{\"retention\": \"1h\"}");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + HOUR + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    assert_int_equal(reported(fh, T0 + 2 * HOUR, "U1", "E1"), 0);
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 1);
    rk_fh_advance(fh, T0 + DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + DAY + 1);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* An unfiled scan record refreshed by a later scan lives until retention
 * after that scan, not the first. */
static void test_pending_scan_refreshed(void **st)
{
    rk_fakehost *fh = mk("{\"retention\": \"2d\"}");
    (void)st;
    assert_int_equal(scanned(fh, T0, "T9", "E1", NULL), 0);
    rk_fh_advance(fh, T0 + 11 * MIN);
    assert_int_equal(scanned(fh, T0 + DAY, "T9", "E1", NULL), 0);
    rk_fh_advance(fh, T0 + 2 * DAY + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 3 * DAY + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 2);
    rk_fh_free(fh);
}

/* Filings of one (unit, enterprise) count as one indexed pair; when the
 * first of them expires the others are still found by reports. */
static void test_report_index_group(void **st)
{
    rk_fakehost *fh = mk("{\"retention\": \"3d\"}");
    (void)st;
    assert_int_equal(filed(fh, T0 - DAY, "T1", "U1", "E1", T0), 0);
    assert_int_equal(filed(fh, T0 - DAY, "T2", "U1", "E1", T0 + 2 * DAY), 0);
    assert_int_equal(filed(fh, T0 - DAY, "T3", "U1", "E2", T0 + 2 * DAY), 0);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 5);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 5);
    rk_fh_advance(fh, T0 + 3 * DAY + 1);        /* T1 (the pair's first) */
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 4);
    assert_int_equal(reported(fh, T0 + 2 * DAY, "U1", "E1"), 0);      /* T2 */
    assert_int_equal(reported(fh, T0 + 2 * DAY, "U1", "E2"), 0);      /* T3 */
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 0);
    assert_int_equal(reported(fh, T0 - HOUR, "U1", "E1"), 0);         /* T1 gone */
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 1);
    rk_fh_advance(fh, T0 + 5 * DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 4);
    rk_fh_advance(fh, T0 + 5 * DAY + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* A shorter retention applies to the filings already held. */
static void test_retention_reconfigured(void **st)
{
    rk_fakehost *fh = mk("{}");
    char err[256];
    json_t *cfg = json_pack("{s:s}", "retention", "2d");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(scanned(fh, T0 + MIN, "T1", "E1", NULL), 0);
    rk_fh_advance(fh, T0 + DAY + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    assert_int_equal(rk__det_unfiled_inspection.reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    rk_fh_advance(fh, T0 + 2 * DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 2 * DAY + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    json_decref(cfg);
    rk_fh_free(fh);
}

/* A snapshot of format version 1 (before the expiry heaps) restores: the
 * filing is known, its report index entry is rebuilt from it, and a bad
 * v1 filing is refused. */
static void test_restore_v1(void **st)
{
    rk_fakehost *fh = mk("{}");
    rk_buf b = {0};
    char err[256] = "";
    int pass;
    (void)st;
    for (pass = 0; pass < 2; pass++) {
        memset(&b, 0, sizeof(b));
        rk_buf_put_u32(&b, 1);
        rk_buf_put_u32(&b, 1);                  /* filings */
        rk_buf_put_str(&b, "T1");
        rk_buf_put_i64(&b, T0 - HOUR);
        rk_buf_put_i64(&b, T0);
        rk_buf_put_i64(&b, pass == 0 ? T0 + DAY : T0 - 1);   /* scan_by */
        rk_buf_put_str(&b, "U1");
        rk_buf_put_str(&b, "E1");
        rk_buf_put_ref(&b, rk_fh_ref(0, (uint64_t)(T0 - HOUR), 7));
        rk_buf_put_u32(&b, 0);
        rk_buf_put_u32(&b, 0);                  /* pscans */
        rk_buf_put_u32(&b, 0);                  /* pcases */
        rk_buf_put_u32(&b, 1);                  /* reports */
        rk_buf_put_str(&b, "2:U1E1");
        rk_buf_put_u32(&b, 1);
        rk_buf_put_i64(&b, T0);
        if (pass == 1) {
            assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, b.data, b.len,
                                                                 err, sizeof(err)), -1);
            assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
        } else {
            assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, b.data, b.len,
                                                                 err, sizeof(err)), 0);
        }
        rk_buf_free(&b);
    }
    /* restore the good one again and use it */
    memset(&b, 0, sizeof(b));
    rk_buf_put_u32(&b, 1);
    rk_buf_put_u32(&b, 1);
    rk_buf_put_str(&b, "T1");
    rk_buf_put_i64(&b, T0 - HOUR);
    rk_buf_put_i64(&b, T0);
    rk_buf_put_i64(&b, T0 + DAY);
    rk_buf_put_str(&b, "U1");
    rk_buf_put_str(&b, "E1");
    rk_buf_put_ref(&b, rk_fh_ref(0, (uint64_t)(T0 - HOUR), 7));
    rk_buf_put_u32(&b, 0);
    rk_buf_put_u32(&b, 0);
    rk_buf_put_u32(&b, 0);
    rk_buf_put_u32(&b, 1);
    rk_buf_put_str(&b, "2:U1E1");
    rk_buf_put_u32(&b, 1);
    rk_buf_put_i64(&b, T0);
    assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, b.data, b.len,
                                                         err, sizeof(err)), 0);
    rk_buf_free(&b);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    assert_int_equal(reported(fh, T0 + HOUR, "U1", "E1"), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(scanned(fh, T0 + 2 * HOUR, "T1", "E2", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 1);
    assert_string_equal(evid(rk_fh_alert(fh, 0), 0), refstr(0, T0 - HOUR, 7));
    /* no timer was restored here (the daemon keeps timers): the detector
     * arms its filing timer again at the first watermark, so the scan
     * deadline still runs (scanned in time: no alert) and the filing goes
     * at planned_at + retention */
    rk_fh_advance(fh, T0 + 30 * DAY);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 30 * DAY + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* Feed a scenario, optionally with a snapshot round trip in the middle. */
static json_t *scenario(int roundtrip)
{
    const char *cfg = "{\"cooldown\": \"1h\"}";
    rk_fakehost *fh = mk(cfg);
    json_t *out;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0 + HOUR), 0);
    assert_int_equal(filed(fh, T0, "T2", "U1", "E2", T0 + HOUR), 0);
    assert_int_equal(scanned(fh, T0 + MIN, "T3", "E3", "U3"), 0);
    assert_int_equal(opened(fh, T0 + MIN, "C1", "U1", "T4", RK_SOURCE_INSPECTION), 0);
    assert_int_equal(scanned(fh, T0 + 2 * MIN, "T5", "E5", NULL), 0);
    if (roundtrip) {
        assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
        assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 7);
    }
    assert_int_equal(filed(fh, T0 + 5 * MIN, "T5", "U5", "E6", T0), 0);
    assert_int_equal(filed(fh, T0 + 6 * MIN, "T4", "U1", "E1", T0), 0);
    assert_int_equal(scanned(fh, T0 + 2 * HOUR, "T1", "E9", NULL), 0);
    assert_int_equal(reported(fh, T0 + 3 * HOUR, "U1", "E2"), 0);
    assert_int_equal(reported(fh, T0 + 3 * HOUR, "U1", "E3"), 0);
    if (roundtrip)
        assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
    rk_fh_advance(fh, T0 + 40 * DAY);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    out = json_deep_copy(fh->alerts);
    rk_fh_free(fh);
    return out;
}

static void test_snapshot_roundtrip(void **st)
{
    json_t *a = scenario(0), *b = scenario(1);
    (void)st;
    /* mismatch T5 (merged scan), scan_without_filing T3, mismatch T1,
     * reported U1/E3, filed_not_scanned T4 and T2 */
    assert_int_equal(json_array_size(a), 6);
    assert_string_equal(sfield(json_array_get(a, 1), NULL, "rule"), "scan_without_filing");
    assert_string_equal(sfield(json_array_get(a, 5), "subject", "task_id"), "T2");
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
}

static void test_restore_garbage(void **st)
{
    rk_fakehost *fh = mk("{}");
    rk_buf b = {0};
    char err[256];
    size_t cut;
    unsigned char junk[300];
    size_t i;
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(scanned(fh, T0, "T2", "E1", "U2"), 0);
    assert_int_equal(opened(fh, T0, "C1", "U1", "T3", RK_SOURCE_INSPECTION), 0);
    assert_int_equal(rk__det_unfiled_inspection.snapshot(fh->self, &b), 0);
    for (cut = 0; cut < b.len; cut++) {
        err[0] = '\0';
        assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, b.data, cut,
                                                             err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    }
    for (i = 0; i < sizeof(junk); i++) junk[i] = (unsigned char)(i * 37 + 11);
    junk[0] = 1; junk[1] = junk[2] = junk[3] = 0;
    assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, junk, sizeof(junk),
                                                         err, sizeof(err)), -1);
    assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, b.data, b.len,
                                                         err, sizeof(err)), 0);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 4);
    rk_buf_free(&b);
    rk_fh_free(fh);
}

/* A checkpoint whose times lie beyond any event's (a flipped high bit) is
 * refused as a whole: restored, a scan at -2^63 + x would make the alert's
 * "scanned ... ago" overflow when its timer fires. */
static void test_restore_rejects_impossible_times(void **st)
{
    rk_fakehost *fh = mk("{}");
    rk_buf b = {0};
    char err[256];
    unsigned char t0[8];
    size_t i, hits = 0;
    int k;
    (void)st;
    assert_int_equal(scanned(fh, T0, "T2", "E1", "U2"), 0);
    assert_int_equal(rk__det_unfiled_inspection.snapshot(fh->self, &b), 0);
    for (k = 0; k < 8; k++) t0[k] = (unsigned char)((uint64_t)T0 >> (8 * k));
    for (i = 0; i + 8 <= b.len; i++) {
        if (memcmp(b.data + i, t0, 8) == 0) {
            b.data[i + 7] ^= 0x80;          /* T0 - 2^63: no event's time */
            hits++;
        }
    }
    assert_true(hits > 0);
    err[0] = '\0';
    assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, b.data, b.len,
                                                         err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    rk_buf_free(&b);
    rk_fh_free(fh);
}

/* Filings share one timer: 100 filings in scan-deadline order arm one
 * daemon timer, not 100; each still alerts at its own deadline, in order,
 * with its own subject and evidence, and the last one exactly at its
 * deadline is not due yet. */
static void test_one_timer_for_all_filings(void **st)
{
    rk_fakehost *fh = mk("{\"retention\": \"2d\"}");
    char task[16];
    int i;
    (void)st;
    for (i = 0; i < 100; i++) {
        snprintf(task, sizeof(task), "T%d", i);
        assert_int_equal(filed(fh, T0 + i * MIN, task, "U1", "E1", T0 + i * MIN), 0);
    }
    assert_int_equal(fh->ntimers, 1);
    assert_string_equal(fh->timers[0].key, "n:");
    assert_int_equal(fh->timers[0].deadline, T0 + DAY);
    rk_fh_advance(fh, T0 + DAY + 50 * MIN);     /* T0..T49 due, T50 exactly at it */
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 50);
    assert_int_equal(ifield(rk_fh_alert(fh, 0), "ts"), T0 + DAY);
    assert_string_equal(sfield(rk_fh_alert(fh, 49), "subject", "task_id"), "T49");
    assert_int_equal(ifield(rk_fh_alert(fh, 49), "ts"), T0 + DAY + 49 * MIN);
    assert_string_equal(evid(rk_fh_alert(fh, 49), 0), refstr(0, T0 + 49 * MIN, 49));
    assert_int_equal(fh->ntimers, 1);           /* re-armed at T50's deadline */
    assert_int_equal(fh->timers[0].deadline, T0 + DAY + 50 * MIN);
    rk_fh_advance(fh, T0 + DAY + 50 * MIN + 1);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 51);
    rk_fh_advance(fh, T0 + 2 * DAY + 99 * MIN);  /* T99 expires exactly now */
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 100);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);  /* T99, its pair */
    rk_fh_advance(fh, T0 + 2 * DAY + 99 * MIN + 1);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    assert_int_equal(fh->ntimers, 0);
    rk_fh_free(fh);
}

/* A filing that arrives earlier than the armed timer arms its own; a
 * snapshot keeps the armed deadline, so a round trip arms nothing twice. */
static void test_timer_rearmed_for_earlier_filing(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0 + 5 * HOUR), 0);
    assert_int_equal(filed(fh, T0, "T2", "U1", "E2", T0 + 2 * HOUR), 0);
    assert_int_equal(filed(fh, T0, "T3", "U1", "E3", T0 + 9 * HOUR), 0);
    assert_int_equal(fh->ntimers, 2);           /* T1's, then T2's earlier one */
    assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    rk_fh_advance(fh, T0 + HOUR);
    assert_int_equal(fh->ntimers, 2);
    rk_fh_advance(fh, T0 + DAY + 2 * HOUR + 1);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    assert_string_equal(sfield(rk_fh_alert(fh, 0), "subject", "task_id"), "T2");
    rk_fh_advance(fh, T0 + DAY + 9 * HOUR + 1);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 3);
    assert_string_equal(sfield(rk_fh_alert(fh, 2), "subject", "task_id"), "T3");
    rk_fh_free(fh);
}

/* A version 2 snapshot (no armed timer; the daemon restores one
 * "n:<task_id>" timer per filing): those timers run the filings, each
 * alerts once, and the detector arms its own timer for the rest. */
static void test_restore_v2_task_timers(void **st)
{
    rk_fakehost *fh = mk("{}");
    rk_buf b = {0};
    char err[256];
    int i;
    (void)st;
    rk_buf_put_u32(&b, 2);
    rk_buf_put_u32(&b, 2);                      /* filings */
    for (i = 1; i <= 2; i++) {
        rk_buf_put_str(&b, i == 1 ? "T1" : "T2");
        rk_buf_put_i64(&b, T0);
        rk_buf_put_i64(&b, T0 + (i - 1) * HOUR);
        rk_buf_put_u32(&b, (uint32_t)DAY);
        rk_buf_put_str(&b, "U1");
        rk_buf_put_str(&b, "E1");
        rk_buf_put_ref(&b, rk_fh_ref(0, (uint64_t)T0, (uint32_t)i));
        rk_buf_put_u32(&b, 0);
    }
    rk_buf_put_u32(&b, 0);                      /* pscans */
    rk_buf_put_u32(&b, 0);                      /* pcases */
    assert_int_equal(rk__det_unfiled_inspection.restore(fh->self, b.data, b.len,
                                                         err, sizeof(err)), 0);
    rk_buf_free(&b);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 3);
    fh->now = T0 + DAY + 1;                     /* the old timer of T1 fires */
    assert_int_equal(rk__det_unfiled_inspection.on_timer(fh->self, T0 + DAY, "n:T1", 0), 0);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    assert_string_equal(sfield(rk_fh_alert(fh, 0), "subject", "task_id"), "T1");
    assert_int_equal(fh->ntimers, 1);           /* its own, at T2's deadline */
    assert_int_equal(fh->timers[0].deadline, T0 + DAY + HOUR);
    fh->now = T0 + DAY + HOUR + 1;              /* both fire: T2 alerts once */
    assert_int_equal(rk__det_unfiled_inspection.on_timer(fh->self, T0 + DAY + HOUR, "n:T2", 0), 0);
    rk_fh_advance(fh, T0 + DAY + HOUR + 2);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 2);
    assert_string_equal(sfield(rk_fh_alert(fh, 1), "subject", "task_id"), "T2");
    rk_fh_advance(fh, T0 + 40 * DAY);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* A filing past its expiry is gone at once, dropped or not: a new filing
 * of the same task replaces it (and survives a snapshot), a scan is
 * checked against the new one. */
static void test_expired_filing_replaced(void **st)
{
    rk_fakehost *fh = mk("{\"retention\": \"1d\", \"scan_deadline\": \"1h\"}");
    (void)st;
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    /* expiry: planned_at + 1d, once the 1h deadline ran */
    assert_int_equal(filed(fh, T0 + DAY, "T1", "U2", "E2", T0 + DAY), 0);   /* still live */
    assert_int_equal(scanned(fh, T0 + DAY, "T1", "E2", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 1);
    fh->now = T0 + DAY + 1;                     /* no on_watermark: not dropped */
    assert_int_equal(filed(fh, T0 + DAY + 1, "T1", "U2", "E2", T0 + DAY + 1), 0);
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 2);
    assert_int_equal(rk_fh_roundtrip(fh, "{\"retention\": \"1d\", \"scan_deadline\": \"1h\"}"), 0);
    assert_int_equal(scanned(fh, T0 + DAY + 2, "T1", "E2", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 1);
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);  /* the first only */
    assert_int_equal(rk__det_unfiled_inspection.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* ===================================================================
 * Lifecycle: retractions by late data, filed_not_scanned resolved
 * =================================================================== */

static int amended(rk_fakehost *fh, int64_t ts, const char *task, const char *unit,
                   const char *ent, int64_t planned)
{
    rk_event e = base(RK_EV_INSPECTION_FILED, ts, RK_STREAM_SCAN);
    e.task_id = task;
    e.unit_id = unit;
    e.enterprise_id = ent;
    e.planned_at = planned;
    e.flags = RK_EVF_AMENDED;
    return rk_fh_event(fh, &e);
}

static const char *nfield(const rk_fakehost *fh, size_t i, const char *obj, const char *key)
{
    return sfield(rk_fh_notice(fh, i), obj, key);
}

static void test_scan_without_filing_retracted(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    assert_int_equal(scanned(fh, T0, "T1", "E1", "U1"), 0);
    rk_fh_advance(fh, T0 + 10 * MIN + 1);
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 1);
    /* The filing, made at T0 + 5m (within grace), arrives now: retracted,
     * the alert named by its own ts (the deadline) and subject. */
    assert_int_equal(filed(fh, T0 + 5 * MIN, "T1", "U1", "E1", T0), 0);
    assert_int_equal(rk_fh_notice_count(fh, "scan_without_filing", "retracted"), 1);
    assert_int_equal(ifield(rk_fh_notice(fh, 0), "ts"), T0 + 10 * MIN);
    assert_string_equal(nfield(fh, 0, "subject", "enterprise_id"), "E1");
    assert_string_equal(nfield(fh, 0, "subject", "unit_id"), "U1");
    assert_string_equal(nfield(fh, 0, "subject", "task_id"), "T1");
    assert_int_equal(ifield(rk_fh_notice(fh, 0), "change_ts"), T0 + 5 * MIN);
    rk_fh_free(fh);

    /* A filing made after the deadline retracts nothing. */
    fh = mk("{}");
    assert_int_equal(scanned(fh, T0, "T1", "E1", "U1"), 0);
    rk_fh_advance(fh, T0 + 20 * MIN);
    assert_int_equal(filed(fh, T0 + 10 * MIN + 1, "T1", "U1", "E1", T0), 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_free(fh);
}

static void test_case_without_filing_retracted(void **st)
{
    const char *cfg = "{}";
    rk_fakehost *fh = mk(cfg);
    (void)st;
    assert_int_equal(opened(fh, T0, "C1", "U1", "T1", RK_SOURCE_INSPECTION), 0);
    rk_fh_advance(fh, T0 + 10 * MIN + 1);
    assert_int_equal(rk_fh_count(fh, "case_without_filing"), 1);
    /* survives a snapshot */
    assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
    assert_int_equal(filed(fh, T0 - HOUR, "T1", "U1", "E1", T0 - HOUR), 0);
    assert_int_equal(rk_fh_notice_count(fh, "case_without_filing", "retracted"), 1);
    assert_string_equal(nfield(fh, 0, "subject", "case_id"), "C1");
    assert_int_equal(ifield(rk_fh_notice(fh, 0), "ts"), T0 + 10 * MIN);
    /* Once: a repeated filing retracts nothing more. */
    assert_int_equal(filed(fh, T0 - HOUR, "T1", "U1", "E1", T0 - HOUR), 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);
}

static void test_reported_without_filing_retracted(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    assert_int_equal(reported(fh, T0, "U1", "E1"), 0);
    assert_int_equal(rk_fh_count(fh, "reported_without_filing"), 1);
    /* Another enterprise's filing, or one planned too far away: nothing. */
    assert_int_equal(filed(fh, T0 + 1, "T1", "U1", "E2", T0), 0);
    assert_int_equal(filed(fh, T0 + 2, "T2", "U1", "E1", T0 + 2 * DAY), 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    /* A matching filing (planned within 24h of the report): retracted. */
    assert_int_equal(filed(fh, T0 + 3, "T3", "U1", "E1", T0 - 23 * HOUR), 0);
    assert_int_equal(rk_fh_notice_count(fh, "reported_without_filing", "retracted"), 1);
    assert_int_equal(ifield(rk_fh_notice(fh, 0), "ts"), T0);
    rk_fh_free(fh);
}

static void test_enterprise_mismatch_retracted(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    rk_fh_language(fh, "en");
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    assert_int_equal(scanned(fh, T0 + MIN, "T1", "E2", NULL), 0);
    assert_int_equal(rk_fh_count(fh, "enterprise_mismatch"), 1);
    /* An amendment naming another enterprise again: nothing. */
    assert_int_equal(amended(fh, T0 + 2 * MIN, "T1", "U1", "E3", T0), 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    /* One naming the scanned enterprise: the mismatch never was. */
    assert_int_equal(amended(fh, T0 + 3 * MIN, "T1", "U1", "E2", T0), 0);
    assert_int_equal(rk_fh_notice_count(fh, "enterprise_mismatch", "retracted"), 1);
    assert_string_equal(nfield(fh, 0, "subject", "enterprise_id"), "E2");
    assert_int_equal(ifield(rk_fh_notice(fh, 0), "ts"), T0 + MIN);
    assert_string_equal(nfield(fh, 0, NULL, "reason"),
                        "The filing of inspection task T1 of unit U1 was amended to name "
                        "enterprise E2, where it was scanned.");
    rk_fh_free(fh);
}

static void test_filed_not_scanned_lifecycle(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;
    /* Scanned late: resolved ("scanned late"). */
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    rk_fh_advance(fh, T0 + DAY + 1);
    assert_int_equal(rk_fh_count(fh, "filed_not_scanned"), 1);
    assert_int_equal(scanned(fh, T0 + DAY + HOUR, "T1", "E1", NULL), 0);
    assert_int_equal(rk_fh_notice_count(fh, "filed_not_scanned", "resolved"), 1);
    assert_int_equal(ifield(rk_fh_notice(fh, 0), "ts"), T0 + DAY);
    assert_non_null(strstr(nfield(fh, 0, NULL, "reason"), "逾期"));
    /* a second late scan: nothing more */
    assert_int_equal(scanned(fh, T0 + DAY + 2 * HOUR, "T1", "E1", NULL), 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);

    /* A scan in time that arrives after the alert: retracted. */
    fh = mk("{}");
    assert_int_equal(filed(fh, T0, "T1", "U1", "E1", T0), 0);
    rk_fh_advance(fh, T0 + DAY + 1);
    assert_int_equal(scanned(fh, T0 + HOUR, "T1", "E1", NULL), 0);
    assert_int_equal(rk_fh_notice_count(fh, "filed_not_scanned", "retracted"), 1);
    assert_int_equal(rk_fh_notice_count(fh, NULL, "resolved"), 0);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_without_filing_retracted),
        cmocka_unit_test(test_case_without_filing_retracted),
        cmocka_unit_test(test_reported_without_filing_retracted),
        cmocka_unit_test(test_enterprise_mismatch_retracted),
        cmocka_unit_test(test_filed_not_scanned_lifecycle),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_filed_not_scanned),
        cmocka_unit_test(test_scan_at_deadline),
        cmocka_unit_test(test_longest_scan_deadline),
        cmocka_unit_test(test_enterprise_mismatch),
        cmocka_unit_test(test_duplicate_filing_first_wins),
        cmocka_unit_test(test_scan_without_filing),
        cmocka_unit_test(test_scan_then_filing_within_grace),
        cmocka_unit_test(test_scan_then_filing_late),
        cmocka_unit_test(test_scan_before_filing_after_scan_deadline),
        cmocka_unit_test(test_reported),
        cmocka_unit_test(test_reported_before_planned),
        cmocka_unit_test(test_reported_cooldown),
        cmocka_unit_test(test_case_without_task),
        cmocka_unit_test(test_case_with_task),
        cmocka_unit_test(test_case_after_filing_other_stream_lags),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_merged_scan_freed),
        cmocka_unit_test(test_filing_expiry_waits_for_timer),
        cmocka_unit_test(test_pending_scan_refreshed),
        cmocka_unit_test(test_report_index_group),
        cmocka_unit_test(test_retention_reconfigured),
        cmocka_unit_test(test_restore_v1),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_restore_rejects_impossible_times),
        cmocka_unit_test(test_restore_garbage),
        cmocka_unit_test(test_one_timer_for_all_filings),
        cmocka_unit_test(test_timer_rearmed_for_earlier_filing),
        cmocka_unit_test(test_restore_v2_task_timers),
        cmocka_unit_test(test_expired_filing_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
