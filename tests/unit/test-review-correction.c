/* tests/unit/test-review-correction.c - review_correction through the fake
 * host: count and share at their thresholds, the window, the summary,
 * config errors, snapshot/restore. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"
#include "fakehost.h"

#define DAY INT64_C(86400000)
#define T0 INT64_C(1740787200000)   /* 2025-03-01T00:00:00Z = 08:00 +08:00 */

static uint32_t g_seq;
static rk__event_mem g_mem;

/* Parse the event text (printf-style) and deliver it with flags. */
static int sendf(rk_fakehost *fh, unsigned flags, const char *fmt, ...)
{
    char buf[2048], err[256];
    rk_event ev;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (rk__event_parse(buf, strlen(buf), &ev, &g_mem, err, sizeof(err)) != RK_PARSE_OK)
        fail_msg("bad test event %s: %s", buf, err);
    ev.ref = rk_fh_ref(ev.type <= RK_EV_INSPECTION_REPORTED ? 0 : 1, (uint64_t)ev.ts, ++g_seq);
    ev.flags |= flags;
    return rk_fh_event(fh, &ev);
}

static rk_fakehost *mk(const rk_detector_ops *ops, const char *cfg)
{
    char err[256];
    rk_fakehost *fh = rk_fh_new(ops, cfg, err, sizeof(err));
    if (fh == NULL)
        fail_msg("create: %s", err);
    return fh;
}

static const char *alert_str(rk_fakehost *fh, size_t i, const char *field)
{
    return json_string_value(json_object_get(rk_fh_alert(fh, i), field));
}

static const char *subj(rk_fakehost *fh, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_object_get(rk_fh_alert(fh, i), "subject"),
                                              field));
}

static double num(rk_fakehost *fh, size_t i, const char *field)
{
    return json_number_value(json_object_get(rk_fh_alert(fh, i), field));
}

static int teardown_mem(void **state)
{
    (void)state;
    rk__event_mem_free(&g_mem);
    return 0;
}

#define REVIEW "{\"type\":\"case.review\",\"ts\":%lld,\"case_id\":\"C%d\",\"unit_id\":\"%s\",\"outcome\":\"%s\"}"

static void review(rk_fakehost *fh, int64_t ts, int n, const char *unit, const char *outcome)
{
    assert_int_equal(sendf(fh, 0, REVIEW, (long long)ts, n, unit, outcome), 0);
}

/* 3 corrections of 10 reviews: share 0.3 = min_share fires; of 11 it
 * does not (0.27). min_count 3: two corrections of two never fire. */
static void test_share_boundary(void **state)
{
    rk_fakehost *fh = mk(&rk__det_review_correction, "{}");
    int i;
    (void)state;
    for (i = 0; i < 8; i++)
        review(fh, T0 + i, i, "U1", "upheld");
    review(fh, T0 + 10, 10, "U1", "revoked");
    review(fh, T0 + 11, 11, "U1", "altered");
    assert_int_equal(rk_fh_count(fh, "corrections"), 0);    /* 2 < min_count */
    review(fh, T0 + 12, 12, "U1", "confirmed_illegal");      /* 3 of 11: 0.27 */
    assert_int_equal(rk_fh_count(fh, "corrections"), 0);
    rk_fh_free(fh);

    fh = mk(&rk__det_review_correction, "{}");
    for (i = 0; i < 7; i++)
        review(fh, T0 + i, i, "U1", "mediated");
    review(fh, T0 + 10, 10, "U1", "revoked");
    review(fh, T0 + 11, 11, "U1", "revoked");
    review(fh, T0 + 12, 12, "U1", "altered");                /* 3 of 10: 0.3 */
    assert_int_equal(rk_fh_count(fh, "corrections"), 1);
    assert_string_equal(subj(fh, 0, "unit_id"), "U1");
    assert_true(num(fh, 0, "value") == 0.3);
    assert_true(num(fh, 0, "threshold") == 0.3);
    assert_string_equal(alert_str(fh, 0, "severity"), "warning");
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "单位U1近90天有3件行政复议案件被撤销、变更或确认违法，"
                        "占其10件复议案件的30%（阈值3件且30%）");
    assert_int_equal(json_array_size(json_object_get(rk_fh_alert(fh, 0), "evidence")), 3);
    rk_fh_free(fh);
}

/* Reviews older than the window do not count; another unit's neither. */
static void test_window(void **state)
{
    rk_fakehost *fh = mk(&rk__det_review_correction, "{\"window\":\"10d\"}");
    (void)state;
    review(fh, T0, 1, "U1", "revoked");
    review(fh, T0 + DAY, 2, "U1", "revoked");
    review(fh, T0 + DAY, 3, "U2", "revoked");
    review(fh, T0 + 10 * DAY + 1, 4, "U1", "revoked");  /* the first has left */
    assert_int_equal(rk_fh_count(fh, "corrections"), 0);
    review(fh, T0 + 10 * DAY + 2, 5, "U1", "revoked");
    assert_int_equal(rk_fh_count(fh, "corrections"), 1);
    rk_fh_advance(fh, T0 + 40 * DAY);
    assert_int_equal(rk__det_review_correction.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_config_errors(void **state)
{
    char err[256];
    (void)state;
    assert_null(rk_fh_new(&rk__det_review_correction, "{\"min_share\":1.5}", err, sizeof(err)));
    assert_string_equal(err, "min_share: expected a number from 0 to 1");
    assert_null(rk_fh_new(&rk__det_review_correction, "{\"min_count\":0}", err, sizeof(err)));
    assert_string_equal(err, "min_count: expected an integer from 1 to 1000000");
    assert_null(rk_fh_new(&rk__det_review_correction, "{\"windw\":\"1d\"}", err, sizeof(err)));
    assert_string_equal(err, "windw: unknown key");
}

/* The windows survive a snapshot: two corrections before, one after. */
static void test_snapshot(void **state)
{
    rk_fakehost *fh = mk(&rk__det_review_correction, "{}");
    (void)state;
    review(fh, T0, 1, "U1", "revoked");
    review(fh, T0 + 1, 2, "U1", "altered");
    assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    assert_null(rk_fh_check_corrupt_restore(fh, 0));
    review(fh, T0 + 2, 3, "U1", "revoked");
    assert_int_equal(rk_fh_count(fh, "corrections"), 1);
    rk_fh_free(fh);
}

/* The sentence in Chinese and English, with the names list knowing the
 * unit and not. */
static void summary(int en, int names, const char *want)
{
    rk_fakehost *fh = mk(&rk__det_review_correction, "{}");
    int i;
    rk_fh_language(fh, en ? "en" : "zh-CN");
    if (names)
        rk_fh_name(fh, "unit", "U1", "银川市市场监督管理局兴庆分局");
    for (i = 0; i < 7; i++)
        review(fh, T0 + i, i, "U1", "upheld");
    review(fh, T0 + 10, 10, "U1", "revoked");
    review(fh, T0 + 11, 11, "U1", "altered");
    review(fh, T0 + 12, 12, "U1", "confirmed_illegal");
    assert_int_equal(rk_fh_count(fh, "corrections"), 1);
    assert_true(num(fh, 0, "value") == 0.3 && num(fh, 0, "threshold") == 0.3);
    assert_string_equal(alert_str(fh, 0, "summary"), want);
    rk_fh_free(fh);
}

static void test_summaries(void **state)
{
    (void)state;
    summary(0, 0, "单位U1近90天有3件行政复议案件被撤销、变更或确认违法，"
            "占其10件复议案件的30%（阈值3件且30%）");
    summary(0, 1, "银川市市场监督管理局兴庆分局近90天有3件行政复议案件被撤销、变更或确认违法，"
            "占其10件复议案件的30%（阈值3件且30%）");
    summary(1, 0, "Unit U1 had 3 of its 10 administrative review cases in the last 90 days "
            "revoked, altered or confirmed illegal, 30% (threshold 3 and 30%).");
    summary(1, 1, "银川市市场监督管理局兴庆分局 had 3 of its 10 administrative review cases in the last 90 days "
            "revoked, altered or confirmed illegal, 30% (threshold 3 and 30%).");
}

/* ---- lifecycle ---- */

#define H INT64_C(3600000)

static json_int_t nint(rk_fakehost *fh, size_t i, const char *field)
{
    return json_integer_value(json_object_get(rk_fh_notice(fh, i), field));
}

/* 3 corrections of 3 in a 10d window: the rule stops holding when the
 * first leaves (T0 + 10d); resolved keep_firing_for (1h) later, also
 * across a snapshot and restore. Reviews are never amended: nothing is
 * ever retracted. */
static void test_resolved_as_window_slides(void **state)
{
    const char *cfg = "{\"window\":\"10d\"}";
    rk_fakehost *fh = mk(&rk__det_review_correction, cfg);
    (void)state;
    review(fh, T0, 1, "U1", "revoked");
    review(fh, T0 + DAY, 2, "U1", "revoked");
    review(fh, T0 + 2 * DAY, 3, "U1", "altered");
    assert_int_equal(rk_fh_count(fh, "corrections"), 1);
    assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
    rk_fh_advance(fh, T0 + 10 * DAY + H);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 10 * DAY + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "corrections", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0 + 2 * DAY);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 10 * DAY + H);
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "reason")),
                        "单位U1近10天被复议纠错的案件已低于阈值（3件且30%），且已持续1小时。");
    rk_fh_advance(fh, T0 + 100 * DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    assert_int_equal(rk_fh_notice_count(fh, NULL, "retracted"), 0);
    rk_fh_free(fh);
}

/* Reviews that correct nothing dilute the share under min_share: the
 * rule stops at the review that does it; a correction within the hour
 * makes it hold again and the wait starts over. */
static void test_resolved_by_dilution(void **state)
{
    rk_fakehost *fh = mk(&rk__det_review_correction, "{}");
    int i;
    (void)state;
    rk_fh_language(fh, "en");
    for (i = 0; i < 3; i++)
        review(fh, T0 + i, i, "U1", "revoked");
    assert_int_equal(rk_fh_count(fh, "corrections"), 1);
    for (i = 3; i < 10; i++)                              /* 3 of 10: still 0.3 */
        review(fh, T0 + DAY + i, i, "U1", "upheld");
    review(fh, T0 + 2 * DAY, 10, "U1", "upheld");         /* 3 of 11: stops */
    rk_fh_advance(fh, T0 + 2 * DAY + H - 1);
    review(fh, T0 + 2 * DAY + H - 1, 11, "U1", "altered"); /* 4 of 12: holds */
    rk_fh_advance(fh, T0 + 3 * DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    review(fh, T0 + 3 * DAY, 12, "U1", "upheld");
    review(fh, T0 + 3 * DAY, 13, "U1", "upheld");          /* 4 of 14: stops */
    rk_fh_advance(fh, T0 + 3 * DAY + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "corrections", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 3 * DAY + H);
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "reason")),
                        "Unit U1's administrative reviews corrected in the last 90 days have "
                        "been under the threshold (3 and 30%) for 1 hour.");
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_boundary),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_resolved_as_window_slides),
        cmocka_unit_test(test_resolved_by_dilution),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_mem);
}
