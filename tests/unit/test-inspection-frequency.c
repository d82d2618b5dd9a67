/* tests/unit/test-inspection-frequency.c - inspection_frequency through
 * the fake host: the count at max and max + 1, joint vs separate filings,
 * exclude_kinds, the whitelist allowance from a CSV list, multi_unit,
 * amendments, snapshot/restore. */
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

#define FILED "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"%s\",\"unit_id\":\"%s\"," \
              "\"officers\":[\"O1\"],\"enterprise_id\":\"E1\"%s}"

static void file(rk_fakehost *fh, unsigned flags, int64_t ts, const char *task, const char *unit,
                 const char *extra)
{
    assert_int_equal(sendf(fh, flags, FILED, (long long)ts, task, unit, extra ? extra : ""), 0);
}

/* Default limits: 1 a day. Two filings 23 h apart are one too many; 25 h
 * apart they are within the day limit (and 2 of 7d is still allowed). */
static void test_repeat_day(void **state)
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, "{}");
    (void)state;
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + 25 * 3600000LL, "T2", "U1", NULL);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    file(fh, 0, T0 + 50 * 3600000LL, "T3", "U1", NULL);     /* 1 in a day, 3 in 7d */
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    assert_string_equal(subj(fh, 0, "enterprise_id"), "E1");
    assert_true(num(fh, 0, "value") == 3 && num(fh, 0, "threshold") == 2);
    assert_string_equal(alert_str(fh, 0, "summary"), "企业E1在7天内被检查3次，超过频次上限2次");
    rk_fh_free(fh);

    fh = mk(&rk__det_inspection_frequency, "{}");
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + 23 * 3600000LL, "T2", "U1", NULL);     /* 2 within a day */
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    assert_true(num(fh, 0, "value") == 2 && num(fh, 0, "threshold") == 1);
    rk_fh_free(fh);
}

/* max 2 in 7d: the 2nd filing is at max (quiet), the 3rd is max + 1. */
static void test_repeat_max(void **state)
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency,
                         "{\"limits\":[{\"window\":\"7d\",\"max\":2}]}");
    (void)state;
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + DAY, "T2", "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "repeat"), 0);
    file(fh, 0, T0 + 2 * DAY, "T3", "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    /* evidence: the three filings */
    assert_int_equal(json_array_size(json_object_get(rk_fh_alert(fh, 0), "evidence")), 3);
    rk_fh_free(fh);
}

/* Joint filings count once; separate ones each. exclude_kinds. */
static void test_joint_and_excluded(void **state)
{
    const char *cfg = "{\"limits\":[{\"window\":\"7d\",\"max\":1}],\"multi_min_units\":3}";
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, cfg);
    (void)state;
    file(fh, 0, T0, "T1", "U1", ",\"joint_id\":\"J1\"");
    file(fh, 0, T0 + 1, "T2", "U2", ",\"joint_id\":\"J1\"");
    file(fh, 0, T0 + 2, "T3", "U3", ",\"joint_id\":\"J1\"");
    file(fh, 0, T0 + 3, "T4", "U1", ",\"kind\":\"complaint\"");
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    file(fh, 0, T0 + 4, "T5", "U1", ",\"kind\":\"random\"");   /* 2nd visit */
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    assert_true(num(fh, 0, "value") == 2);
    rk_fh_free(fh);

    fh = mk(&rk__det_inspection_frequency, cfg);
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + 1, "T2", "U2", NULL);                    /* separate */
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    rk_fh_free(fh);

    /* exclude_kinds [] counts complaint filings too */
    fh = mk(&rk__det_inspection_frequency,
            "{\"limits\":[{\"window\":\"7d\",\"max\":1}],\"exclude_kinds\":[]}");
    file(fh, 0, T0, "T1", "U1", ",\"kind\":\"complaint\"");
    file(fh, 0, T0 + 1, "T2", "U1", ",\"kind\":\"complaint\"");
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    rk_fh_free(fh);
}

/* Two units separately within 7d: multi_unit; the same two units as one
 * joint inspection: nothing. */
static void test_multi_unit(void **state)
{
    const char *cfg = "{\"limits\":[]}";
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, cfg);
    (void)state;
    file(fh, 0, T0, "T1", "U1", ",\"joint_id\":\"J\"");
    file(fh, 0, T0 + DAY, "T2", "U2", ",\"joint_id\":\"J\"");
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    file(fh, 0, T0 + 8 * DAY, "T3", "U1", NULL);              /* outside 7d of J */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    file(fh, 0, T0 + 9 * DAY, "T4", "U2", NULL);
    assert_int_equal(rk_fh_count(fh, "multi_unit"), 1);
    assert_true(num(fh, 0, "value") == 2 && num(fh, 0, "threshold") == 2);
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "企业E1在7天内被2个执法单位分别检查，未合并为联合检查（阈值2个单位）");
    rk_fh_free(fh);
}

/* Whitelist allowance 2: the 3rd counted visit within 365 days fires,
 * with the unit of that filing. */
static void test_whitelist(void **state)
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, "{\"limits\":[],\"multi_min_units\":5}");
    (void)state;
    assert_int_equal(rk_fh_list(fh, "whitelist", "enterprise_id,allowance,note\nE1,2,sample\n"), 0);
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + 100 * DAY, "T2", "U1", NULL);
    file(fh, 0, T0 + 200 * DAY, "T3", "U9", ",\"kind\":\"complaint\"");   /* excluded */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    file(fh, 0, T0 + 300 * DAY, "T4", "U2", NULL);
    assert_int_equal(rk_fh_count(fh, "whitelist"), 1);
    assert_string_equal(subj(fh, 0, "unit_id"), "U2");
    assert_string_equal(alert_str(fh, 0, "severity"), "critical");
    assert_true(num(fh, 0, "value") == 3 && num(fh, 0, "threshold") == 2);
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "白名单内的企业E1近365天被检查3次，超过其检查额度2次（超额检查由单位U2备案）");
    /* 366 days after the first, two remain: T5 makes 3 again (T2, T4, T5) */
    file(fh, 0, T0 + 366 * DAY, "T5", "U2", NULL);
    assert_int_equal(rk_fh_count(fh, "whitelist"), 1);          /* cooldown 365d */
    rk_fh_free(fh);
}

/* An amendment that reschedules a filing out of the window removes it
 * from the count. */
static void test_amendment_and_snapshot(void **state)
{
    const char *cfg = "{\"limits\":[{\"window\":\"7d\",\"max\":1}],\"cooldown\":\"0s\"}";
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, cfg);
    (void)state;
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, RK_EVF_AMENDED, T0 + 1, "T1", "U1", ",\"planned_at\":\"2025-02-01T10:00:00+08:00\"");
    assert_int_equal(rk__det_inspection_frequency.tracked_keys(fh->self), 1);
    file(fh, 0, T0 + 2, "T2", "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "repeat"), 0);
    assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
    assert_null(rk_fh_check_corrupt_restore(fh, 0));
    assert_int_equal(rk__det_inspection_frequency.tracked_keys(fh->self), 2);
    file(fh, 0, T0 + 3, "T3", "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    rk_fh_advance(fh, T0 + 400 * DAY);
    assert_int_equal(rk__det_inspection_frequency.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_config_errors(void **state)
{
    char err[256];
    (void)state;
    assert_null(rk_fh_new(&rk__det_inspection_frequency, "{\"limits\":[{\"window\":\"1d\"}]}",
                          err, sizeof(err)));
    assert_string_equal(err, "limits[0].max: missing");
    assert_null(rk_fh_new(&rk__det_inspection_frequency, "{\"exclude_kinds\":[\"bogus\"]}",
                          err, sizeof(err)));
    assert_true(strncmp(err, "exclude_kinds[0]: expected one of", 33) == 0);
    assert_null(rk_fh_new(&rk__det_inspection_frequency, "{\"multi_min_units\":1}",
                          err, sizeof(err)));
    assert_string_equal(err, "multi_min_units: expected an integer from 2 to 1000");
}

/* Every rule's sentence in Chinese and English, with the names list
 * knowing the enterprise and the unit and knowing neither: two filings by
 * two units 2 hours apart trip the 1-a-day limit, a whitelist allowance
 * of 1 and multi_unit. */
static void summaries(int en, int names, const char *const want[3])
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency,
                         "{\"limits\":[{\"window\":\"1d\",\"max\":1}]}");
    size_t i;
    rk_fh_language(fh, en ? "en" : "zh-CN");
    if (names) {
        rk_fh_name(fh, "enterprise", "E1", "宁夏塞上\"老字号\"餐饮有限公司");
        rk_fh_name(fh, "unit", "U2", "银川市市场监督管理局兴庆分局");
    }
    assert_int_equal(rk_fh_list(fh, "whitelist", "enterprise_id,allowance,note\nE1,1,sample\n"), 0);
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + 2 * 3600000LL, "T2", "U2", NULL);
    assert_int_equal(rk_fh_count(fh, NULL), 3);
    assert_string_equal(alert_str(fh, 0, "rule"), "repeat");
    assert_string_equal(alert_str(fh, 1, "rule"), "whitelist");
    assert_string_equal(alert_str(fh, 2, "rule"), "multi_unit");
    for (i = 0; i < 3; i++) {
        assert_true(num(fh, i, "value") == 2);
        assert_string_equal(alert_str(fh, i, "summary"), want[i]);
    }
    assert_true(num(fh, 0, "threshold") == 1 && num(fh, 1, "threshold") == 1 &&
                num(fh, 2, "threshold") == 2);
    rk_fh_free(fh);
}

static void test_summaries(void **state)
{
    static const char *const zh[3] = {
        "企业E1在24小时内被检查2次，超过频次上限1次",
        "白名单内的企业E1近365天被检查2次，超过其检查额度1次（超额检查由单位U2备案）",
        "企业E1在7天内被2个执法单位分别检查，未合并为联合检查（阈值2个单位）",
    };
    static const char *const zh_names[3] = {
        "宁夏塞上\"老字号\"餐饮有限公司在24小时内被检查2次，超过频次上限1次",
        "白名单内的宁夏塞上\"老字号\"餐饮有限公司近365天被检查2次，超过其检查额度1次"
        "（超额检查由银川市市场监督管理局兴庆分局备案）",
        "宁夏塞上\"老字号\"餐饮有限公司在7天内被2个执法单位分别检查，未合并为联合检查"
        "（阈值2个单位）",
    };
    static const char *const en[3] = {
        "Enterprise E1 was inspected 2 times within 24 hours, more than the limit of 1.",
        "Enterprise E1, on the whitelist, was inspected 2 times in the last 365 days, more "
        "than its allowance of 1; the inspection over it was filed by unit U2.",
        "Enterprise E1 was inspected separately by 2 units within 7 days instead of in one "
        "joint inspection (threshold 2 units).",
    };
    static const char *const en_names[3] = {
        "宁夏塞上\"老字号\"餐饮有限公司 was inspected 2 times within 24 hours, more than the "
        "limit of 1.",
        "宁夏塞上\"老字号\"餐饮有限公司, on the whitelist, was inspected 2 times in the last 365 "
        "days, more than its allowance of 1; the inspection over it was filed by "
        "银川市市场监督管理局兴庆分局.",
        "宁夏塞上\"老字号\"餐饮有限公司 was inspected separately by 2 units within 7 days "
        "instead of in one joint inspection (threshold 2 units).",
    };
    (void)state;
    summaries(0, 0, zh);
    summaries(0, 1, zh_names);
    summaries(1, 0, en);
    summaries(1, 1, en_names);
}

/* ---- lifecycle ---- */

static json_int_t nint(rk_fakehost *fh, size_t i, const char *field)
{
    return json_integer_value(json_object_get(rk_fh_notice(fh, i), field));
}

static const char *nstr(rk_fakehost *fh, size_t i, const char *field)
{
    return json_string_value(json_object_get(rk_fh_notice(fh, i), field));
}

#define H INT64_C(3600000)
#define CFG_1D "{\"limits\":[{\"window\":\"1d\",\"max\":1}]}"

/* Two filings an hour apart exceed 1 a day until the first leaves the
 * day's window (T0 + 1d); resolved keep_firing_for (1h) later, also
 * across a snapshot and restore. */
static void test_repeat_resolved(void **state)
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, CFG_1D);
    (void)state;
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + H, "T2", "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    assert_int_equal(rk_fh_roundtrip(fh, CFG_1D), 0);
    rk_fh_advance(fh, T0 + DAY + H);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + DAY + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "repeat", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0 + H);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + DAY + H);
    assert_string_equal(nstr(fh, 0, "reason"), "企业E1的检查次数已回到频次上限以内，且已持续1小时。");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rk_fh_notice(fh, 0), "subject"), "enterprise_id")),
                        "E1");
    rk_fh_free(fh);
}

/* A third filing within the day keeps the condition holding: the resolve
 * waits for the last two to leave the window. */
static void test_repeat_held_again(void **state)
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, CFG_1D);
    (void)state;
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + H, "T2", "U1", NULL);
    file(fh, 0, T0 + 20 * H, "T3", "U1", NULL);     /* cooldown: no second alert */
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    rk_fh_advance(fh, T0 + DAY + 2 * H);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + DAY + 2 * H + 1);         /* T2 left at T0+25h, +1h */
    assert_int_equal(rk_fh_notice_count(fh, "repeat", "resolved"), 1);
    rk_fh_free(fh);
}

/* An amendment that reschedules the second filing to another week shows
 * the limit was never exceeded: retracted, with the amendment as
 * evidence, and never resolved after. */
static void test_repeat_retracted(void **state)
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, CFG_1D);
    (void)state;
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + H, "T2", "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    file(fh, RK_EVF_AMENDED, T0 + 2 * H, "T2", "U1",
         ",\"planned_at\":\"2025-03-09T10:00:00+08:00\"");
    assert_int_equal(rk_fh_notice_count(fh, "repeat", "retracted"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0 + H);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 2 * H);
    assert_string_equal(nstr(fh, 0, "reason"), "更正后的检查备案表明，企业E1的检查从未超过上限。");
    assert_int_equal(nint(fh, 0, "n_evidence"), 1);
    rk_fh_advance(fh, T0 + 30 * DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);

    /* An amendment that still leaves two in a day retracts nothing. */
    fh = mk(&rk__det_inspection_frequency, CFG_1D);
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + H, "T2", "U1", NULL);
    file(fh, RK_EVF_AMENDED, T0 + 2 * H, "T2", "U1",
         ",\"planned_at\":\"2025-03-01T09:30:00+08:00\"");
    assert_int_equal(rk_fh_notice_count(fh, NULL, "retracted"), 0);
    rk_fh_free(fh);
}

/* multi_unit resolves when the first unit's visit leaves multi_window;
 * whitelist is retracted when the filing over the allowance turns out to
 * be a complaint inspection (excluded), and resolved after 365 days. */
static void test_multi_unit_and_whitelist_lifecycle(void **state)
{
    const char *cfg = "{\"limits\":[{\"window\":\"1d\",\"max\":5}]}";
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, cfg);
    (void)state;
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + H, "T2", "U2", NULL);
    assert_int_equal(rk_fh_count(fh, "multi_unit"), 1);
    rk_fh_language(fh, "en");
    rk_fh_name(fh, "enterprise", "E1", "老马家手抓羊肉馆");
    rk_fh_advance(fh, T0 + 7 * DAY + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "multi_unit", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 7 * DAY + H);
    assert_string_equal(nstr(fh, 0, "reason"), "老马家手抓羊肉馆 has not been inspected separately "
                        "by 2 or more units within 7 days for 1 hour.");
    rk_fh_free(fh);

    fh = mk(&rk__det_inspection_frequency, "{\"limits\":[{\"window\":\"1d\",\"max\":5}],"
            "\"multi_min_units\":3}");
    fh->open_ttl = 400 * DAY;        /* alerts.open_ttl longer than the year */
    assert_int_equal(rk_fh_list(fh, "whitelist", "enterprise_id,allowance,note\nE1,1,\n"), 0);
    file(fh, 0, T0, "T1", "U1", NULL);
    file(fh, 0, T0 + H, "T2", "U2", NULL);
    assert_int_equal(rk_fh_count(fh, "whitelist"), 1);
    file(fh, RK_EVF_AMENDED, T0 + 2 * H, "T2", "U2", ",\"kind\":\"complaint\"");
    assert_int_equal(rk_fh_notice_count(fh, "whitelist", "retracted"), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rk_fh_notice(fh, 0), "subject"), "unit_id")), "U2");
    file(fh, 0, T0 + 3 * H, "T3", "U3", NULL);
    assert_int_equal(rk_fh_count(fh, "whitelist"), 2);
    rk_fh_advance(fh, T0 + 365 * DAY + H);
    assert_int_equal(rk_fh_notice_count(fh, "whitelist", "resolved"), 0);
    rk_fh_advance(fh, T0 + 365 * DAY + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "whitelist", "resolved"), 1);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeat_day),
        cmocka_unit_test(test_repeat_max),
        cmocka_unit_test(test_joint_and_excluded),
        cmocka_unit_test(test_multi_unit),
        cmocka_unit_test(test_whitelist),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_amendment_and_snapshot),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_repeat_resolved),
        cmocka_unit_test(test_repeat_held_again),
        cmocka_unit_test(test_repeat_retracted),
        cmocka_unit_test(test_multi_unit_and_whitelist_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_mem);
}
