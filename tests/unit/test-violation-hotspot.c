/* tests/unit/test-violation-hotspot.c - violation_hotspot through the fake
 * host: min_count with and without a baseline, growth over the baseline
 * at its boundary, fields missing, snapshot/restore. */
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

#define OPENED "{\"type\":\"case.opened\",\"ts\":%lld,\"case_id\":\"C%d\",\"unit_id\":\"U1\"," \
               "\"source\":\"report\",\"region\":\"R1\",\"domain\":\"food\"}"

static int g_case;

static void opened(rk_fakehost *fh, int64_t ts, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(sendf(fh, 0, OPENED, (long long)ts + i, ++g_case), 0);
}

/* No history: the min_count-th case fires, one fewer does not. */
static void test_without_baseline(void **state)
{
    rk_fakehost *fh = mk(&rk__det_violation_hotspot, "{\"min_count\":5,\"period\":\"10d\"}");
    (void)state;
    opened(fh, T0, 4);
    assert_int_equal(rk_fh_count(fh, "hotspot"), 0);
    opened(fh, T0 + 10, 1);
    assert_int_equal(rk_fh_count(fh, "hotspot"), 1);
    assert_string_equal(subj(fh, 0, "region"), "R1");
    assert_string_equal(subj(fh, 0, "domain"), "food");
    assert_true(num(fh, 0, "value") == 5);
    assert_true(num(fh, 0, "threshold") == 5);
    assert_string_equal(alert_str(fh, 0, "severity"), "info");
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "地区R1近10天领域food案件立案5件，此前3期（每期10天）平均每期0件"
                        "（阈值5件），属违法行为高发区域");
    /* Without domain or region nothing is counted. */
    assert_int_equal(sendf(fh, 0, "{\"type\":\"case.opened\",\"ts\":%lld,\"case_id\":\"X\","
                           "\"unit_id\":\"U1\",\"source\":\"report\",\"region\":\"R1\"}",
                           (long long)T0 + 20), 0);
    assert_int_equal(rk__det_violation_hotspot.tracked_keys(fh->self), 1);
    rk_fh_free(fh);
}

/* Baseline: 3 periods of 3, 3, 3 cases (mean 3); min_growth 1.0 needs 6
 * in the current period: 5 stays quiet, the 6th fires. */
static void test_with_baseline(void **state)
{
    rk_fakehost *fh = mk(&rk__det_violation_hotspot,
                         "{\"min_count\":2,\"period\":\"10d\",\"cooldown\":\"0s\"}");
    int64_t now = T0 + 40 * DAY;
    (void)state;
    opened(fh, now - 35 * DAY, 3);
    opened(fh, now - 25 * DAY, 3);
    opened(fh, now - 15 * DAY, 3);
    int before = rk_fh_count(fh, "hotspot");
    opened(fh, now - 1000, 5);
    assert_int_equal(rk_fh_count(fh, "hotspot"), before);
    opened(fh, now, 1);
    assert_int_equal(rk_fh_count(fh, "hotspot"), before + 1);
    size_t last = (size_t)rk_fh_count(fh, NULL) - 1;
    assert_true(num(fh, last, "value") == 6);
    assert_true(num(fh, last, "threshold") == 6);
    rk_fh_free(fh);
}

static void test_snapshot(void **state)
{
    rk_fakehost *fh = mk(&rk__det_violation_hotspot, "{\"min_count\":3}");
    (void)state;
    opened(fh, T0, 2);
    assert_int_equal(rk_fh_roundtrip(fh, "{\"min_count\":3}"), 0);
    assert_null(rk_fh_check_corrupt_restore(fh, 0));
    opened(fh, T0 + 10, 1);
    assert_int_equal(rk_fh_count(fh, "hotspot"), 1);
    rk_fh_free(fh);
}

static void test_config_errors(void **state)
{
    char err[256];
    (void)state;
    assert_null(rk_fh_new(&rk__det_violation_hotspot, "{\"baseline_periods\":0}", err,
                          sizeof(err)));
    assert_string_equal(err, "baseline_periods: expected an integer from 1 to 100");
    assert_null(rk_fh_new(&rk__det_violation_hotspot, "{\"period\":\"x\"}", err, sizeof(err)));
    assert_true(strncmp(err, "period: expected a duration", 27) == 0);
}

/* The sentence in Chinese and English, with the names list knowing the
 * region and the domain and not: 1 and 2 cases in the two periods before
 * (mean 1.5, threshold 3), then 3 in the current one. */
static void summary(int en, int names, const char *want)
{
    rk_fakehost *fh = mk(&rk__det_violation_hotspot,
                         "{\"period\":\"7d\",\"min_count\":3,\"baseline_periods\":2}");
    rk_fh_language(fh, en ? "en" : "zh-CN");
    if (names) {
        rk_fh_name(fh, "region", "R1", "兴庆区");
        rk_fh_name(fh, "domain", "food", "食品安全");
    }
    opened(fh, T0 + 3 * DAY, 1);
    opened(fh, T0 + 10 * DAY, 2);
    opened(fh, T0 + 21 * DAY - 10, 3);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_true(num(fh, 0, "value") == 3 && num(fh, 0, "threshold") == 3);
    assert_string_equal(alert_str(fh, 0, "summary"), want);
    rk_fh_free(fh);
}

static void test_summaries(void **state)
{
    (void)state;
    summary(0, 0, "地区R1近7天领域food案件立案3件，此前2期（每期7天）平均每期1.5件"
            "（阈值3件），属违法行为高发区域");
    summary(0, 1, "兴庆区近7天食品安全案件立案3件，此前2期（每期7天）平均每期1.5件"
            "（阈值3件），属违法行为高发区域");
    summary(1, 0, "3 cases in domain food were opened in region R1 in the last 7 days, against "
            "an average of 1.5 per 7 days over the 2 periods before (threshold 3): a hotspot "
            "of violations.");
    summary(1, 1, "3 cases in 食品安全 were opened in 兴庆区 in the last 7 days, against "
            "an average of 1.5 per 7 days over the 2 periods before (threshold 3): a hotspot "
            "of violations.");
}

/* ---- lifecycle ---- */

#define H INT64_C(3600000)

static json_int_t nint(rk_fakehost *fh, size_t i, const char *field)
{
    return json_integer_value(json_object_get(rk_fh_notice(fh, i), field));
}

/* 5 cases within a day: the hotspot stops when the first moves out of the
 * current period (T0 + 10d); resolved keep_firing_for (1h) later, also
 * across a snapshot and restore, with region and domain in the subject.
 * Opened cases are never amended: nothing is retracted. */
static void test_resolved(void **state)
{
    const char *cfg = "{\"min_count\":5,\"period\":\"10d\"}";
    rk_fakehost *fh = mk(&rk__det_violation_hotspot, cfg);
    json_t *subject;
    (void)state;
    opened(fh, T0, 5);
    assert_int_equal(rk_fh_count(fh, "hotspot"), 1);
    assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
    rk_fh_advance(fh, T0 + 10 * DAY + H);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 10 * DAY + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "hotspot", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0 + 4);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 10 * DAY + H);
    subject = json_object_get(rk_fh_notice(fh, 0), "subject");
    assert_string_equal(json_string_value(json_object_get(subject, "region")), "R1");
    assert_string_equal(json_string_value(json_object_get(subject, "domain")), "food");
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "reason")),
                        "地区R1近10天领域food案件立案数已回落到高发阈值以下，且已持续1小时。");
    rk_fh_advance(fh, T0 + 100 * DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);
}

/* A case within the hour after the rule stopped makes it hold again: the
 * resolve waits for the new stop. */
static void test_held_again(void **state)
{
    const char *cfg = "{\"min_count\":5,\"period\":\"10d\"}";
    rk_fakehost *fh = mk(&rk__det_violation_hotspot, cfg);
    (void)state;
    for (int i = 0; i < 5; i++)
        opened(fh, T0 + i * DAY, 1);
    assert_int_equal(rk_fh_count(fh, "hotspot"), 1);
    opened(fh, T0 + 10 * DAY + H / 2, 1);         /* 5 again in the period */
    rk_fh_advance(fh, T0 + 10 * DAY + 2 * H);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 11 * DAY + H);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 11 * DAY + H + 1);      /* T0 + 1d left, +1h */
    assert_int_equal(rk_fh_notice_count(fh, "hotspot", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 11 * DAY + H);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_baseline),
        cmocka_unit_test(test_with_baseline),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_resolved),
        cmocka_unit_test(test_held_again),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_mem);
}
