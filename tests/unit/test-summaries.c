/* tests/unit/test-summaries.c - the sentences alerts carry, rule by rule.
 *
 * Every rule of the four built-in detectors and of the example plugin
 * (two_officers, compiled in) is driven through the fake host four times:
 * in Chinese and in English, with the `names` list knowing the unit,
 * officer and enterprise (names that are long and contain quotes) and
 * knowing none of them. Each summary is checked as an exact string, and
 * with it the alert's value and threshold. Then: a language or name change
 * on the host shows in the very next alert, and the sentence helpers of
 * riskd/text.h (amounts, windows, names with line breaks, sentences cut at
 * a character boundary). */
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

/* The example plugin, built into this test rather than dlopen()ed. */
#include "../../detectors/plugins/two_officers.c"

#define T0 INT64_C(1740787200000)   /* 2025-03-01T00:00:00Z */

#define N_UNIT "银川市市场监督管理局兴庆区分局"
#define N_OFFICER "王某"
#define N_ENT "宁夏\"老字号\"餐饮管理有限公司（兴庆区解放东街第一百二十八号“旗舰”分店）"

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

static rk_fakehost *mk(const rk_detector_ops *ops, const char *cfg, int en, int names)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(ops, cfg, err, sizeof(err));
    if (fh == NULL)
        fail_msg("create failed: %s", err);
    rk_fh_language(fh, en ? "en" : "zh-CN");
    if (names) {
        rk_fh_name(fh, "unit", "U1", N_UNIT);
        rk_fh_name(fh, "officer", "O1", N_OFFICER);
        rk_fh_name(fh, "enterprise", "E1", N_ENT);
        rk_fh_name(fh, "region", "R1", "兴庆区");
    }
    return fh;
}

/* The first alert of `rule`: its summary must be `want`, its value and
 * threshold v and t. */
static void expect(const rk_fakehost *fh, const char *rule, const char *want, double v,
                   double t)
{
    size_t i;
    for (i = 0; i < json_array_size(fh->alerts); i++) {
        json_t *a = rk_fh_alert(fh, i);
        if (strcmp(json_string_value(json_object_get(a, "rule")), rule) != 0)
            continue;
        assert_string_equal(json_string_value(json_object_get(a, "summary")), want);
        assert_true(json_real_value(json_object_get(a, "value")) == v);
        assert_true(json_real_value(json_object_get(a, "threshold")) == t);
        return;
    }
    fail_msg("no %s alert", rule);
}

/* ===================================================================
 * unfiled_inspection
 * =================================================================== */

static void unfiled(rk_fakehost *fh)
{
    rk_event e;
    /* reported_without_filing: no filing of U1 at E1 near that time */
    e = base(RK_EV_INSPECTION_REPORTED, T0 - 2 * RK_DAY, RK_STREAM_SCAN);
    e.unit_id = "U1"; e.enterprise_id = "E1";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    /* enterprise_mismatch and, with no scan of T2, filed_not_scanned */
    e = base(RK_EV_INSPECTION_FILED, T0, RK_STREAM_SCAN);
    e.task_id = "T1"; e.unit_id = "U1"; e.enterprise_id = "E1"; e.planned_at = T0;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    e = base(RK_EV_INSPECTION_SCANNED, T0 + RK_MINUTE, RK_STREAM_SCAN);
    e.task_id = "T1"; e.unit_id = "U1"; e.enterprise_id = "E2";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    e = base(RK_EV_INSPECTION_FILED, T0 + RK_MINUTE, RK_STREAM_SCAN);
    e.task_id = "T2"; e.unit_id = "U1"; e.enterprise_id = "E1"; e.planned_at = T0;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    /* scan_without_filing: T3 scanned twice, 4 minutes apart */
    e = base(RK_EV_INSPECTION_SCANNED, T0 + 2 * RK_MINUTE, RK_STREAM_SCAN);
    e.task_id = "T3"; e.unit_id = "U1"; e.enterprise_id = "E1";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    e = base(RK_EV_INSPECTION_SCANNED, T0 + 6 * RK_MINUTE, RK_STREAM_SCAN);
    e.task_id = "T3"; e.enterprise_id = "E1";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    /* case_without_filing: one naming no task, one an unfiled task */
    e = base(RK_EV_CASE_OPENED, T0 + 4 * RK_MINUTE, RK_STREAM_CASE);
    e.case_id = "C1"; e.unit_id = "U1"; e.source = RK_SOURCE_INSPECTION;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    e = base(RK_EV_CASE_OPENED, T0 + 5 * RK_MINUTE, RK_STREAM_CASE);
    e.case_id = "C2"; e.unit_id = "U1"; e.task_id = "T9"; e.source = RK_SOURCE_INSPECTION;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    rk_fh_advance(fh, T0 + 25 * RK_HOUR);
}

static const char *const reported_no_task[] = {
    "企业E1报告单位U1对其检查1次，但前后24小时内没有该检查的网上备案",
    N_ENT "报告" N_UNIT "对其检查1次，但前后24小时内没有该检查的网上备案",
    "Enterprise E1 reported 1 inspection by unit U1 with no filing of it planned within "
    "24 hours either side.",
    N_ENT " reported 1 inspection by " N_UNIT " with no filing of it planned within "
    "24 hours either side.",
};

static void test_unfiled(void **st)
{
    (void)st;
    for (int en = 0; en <= 1; en++) {
        for (int names = 0; names <= 1; names++) {
            rk_fakehost *fh = mk(&rk__det_unfiled_inspection, "{}", en, names);
            unfiled(fh);
            assert_int_equal(rk_fh_count(fh, "case_without_filing"), 2);
            expect(fh, "reported_without_filing", reported_no_task[en * 2 + names], 1, 1);
            if (!en && !names) {
                expect(fh, "enterprise_mismatch",
                       "单位U1的检查任务T1备案检查企业E1，却在企业E2扫码（1次扫码对象不符）", 1, 1);
                expect(fh, "filed_not_scanned",
                       "单位U1备案的检查任务T2（企业E1）计划时间后24小时内未扫码（时限24小时）",
                       24, 24);
                expect(fh, "scan_without_filing",
                       "单位U1对企业E1的检查（任务T3）扫码已10分钟，仍未网上备案（宽限10分钟）",
                       10, 10);
                expect(fh, "case_without_filing",
                       "单位U1立案1起（案件C1），来源于检查，但未注明已备案的检查任务", 1, 1);
                assert_string_equal(json_string_value(json_object_get(rk_fh_alert(fh, 4),
                                    "summary")), "单位U1立案1起（案件C2），来源于检查任务T9，"
                                    "但立案后10分钟内该任务仍未网上备案");
            } else if (!en) {
                expect(fh, "enterprise_mismatch",
                       N_UNIT "的检查任务T1备案检查" N_ENT "，却在企业E2扫码（1次扫码对象不符）",
                       1, 1);
                expect(fh, "filed_not_scanned",
                       N_UNIT "备案的检查任务T2（" N_ENT "）计划时间后24小时内未扫码（时限24小时）",
                       24, 24);
                expect(fh, "scan_without_filing",
                       N_UNIT "对" N_ENT "的检查（任务T3）扫码已10分钟，仍未网上备案（宽限10分钟）",
                       10, 10);
                expect(fh, "case_without_filing",
                       N_UNIT "立案1起（案件C1），来源于检查，但未注明已备案的检查任务", 1, 1);
            } else if (!names) {
                expect(fh, "enterprise_mismatch",
                       "Inspection task T1 of unit U1 was filed for enterprise E1 but scanned "
                       "at enterprise E2 (1 scan at another enterprise).", 1, 1);
                expect(fh, "filed_not_scanned",
                       "Inspection task T2 of unit U1 at enterprise E1 was filed but not "
                       "scanned within 24 hours of its planned time (limit 24 hours).", 24, 24);
                expect(fh, "scan_without_filing",
                       "The inspection of enterprise E1 by unit U1 (task T3) was scanned "
                       "10 minutes ago and is still not filed online (grace 10 minutes).",
                       10, 10);
                expect(fh, "case_without_filing",
                       "Unit U1 opened 1 case (C1) from an inspection but named no filed "
                       "inspection task.", 1, 1);
                assert_string_equal(json_string_value(json_object_get(rk_fh_alert(fh, 4),
                                    "summary")), "Unit U1 opened 1 case (C2) from inspection "
                                    "task T9, which was not filed online within 10 minutes "
                                    "of the case.");
            } else {
                expect(fh, "enterprise_mismatch",
                       "Inspection task T1 of " N_UNIT " was filed for " N_ENT " but scanned "
                       "at enterprise E2 (1 scan at another enterprise).", 1, 1);
                expect(fh, "filed_not_scanned",
                       "Inspection task T2 of " N_UNIT " at " N_ENT " was filed but not "
                       "scanned within 24 hours of its planned time (limit 24 hours).", 24, 24);
                expect(fh, "scan_without_filing",
                       "The inspection of " N_ENT " by " N_UNIT " (task T3) was scanned "
                       "10 minutes ago and is still not filed online (grace 10 minutes).",
                       10, 10);
                expect(fh, "case_without_filing",
                       N_UNIT " opened 1 case (C1) from an inspection but named no filed "
                       "inspection task.", 1, 1);
            }
            rk_fh_free(fh);
        }
    }
}

/* A scan with no unit, a second round (first scan 25 minutes before the
 * check) and a grace of 90 seconds. */
static void test_unfiled_rounds(void **st)
{
    rk_fakehost *fh = mk(&rk__det_unfiled_inspection, "{\"grace\": \"90s\", \"cooldown\": \"0s\"}", 0, 1);
    rk_event e;
    (void)st;
    e = base(RK_EV_INSPECTION_SCANNED, T0, RK_STREAM_SCAN);
    e.task_id = "T5"; e.enterprise_id = "E7";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    rk_fh_advance(fh, T0 + 2 * RK_MINUTE);
    expect(fh, "scan_without_filing",
           "企业E7的检查（任务T5）扫码已1.5分钟，仍未网上备案（宽限1.5分钟）", 1.5, 1.5);
    rk_fh_language(fh, "en");
    e = base(RK_EV_INSPECTION_SCANNED, T0 + 3 * RK_MINUTE, RK_STREAM_SCAN);
    e.task_id = "T5"; e.enterprise_id = "E7";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    rk_fh_advance(fh, T0 + 5 * RK_MINUTE);
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 2);
    assert_string_equal(json_string_value(json_object_get(rk_fh_alert(fh, 1), "summary")),
                        "The inspection of enterprise E7 (task T5) was scanned 4.5 minutes "
                        "ago and is still not filed online (grace 1.5 minutes).");
    assert_true(json_real_value(json_object_get(rk_fh_alert(fh, 1), "value")) == 4.5);
    rk_fh_free(fh);
}

/* ===================================================================
 * bad_rating
 * =================================================================== */

static void rate(rk_fakehost *fh, int64_t ts, int score, const char *officer)
{
    const char *offs[1] = {officer};
    char task[16];
    rk_event e = base(RK_EV_INSPECTION_RATED, ts, RK_STREAM_SCAN);
    snprintf(task, sizeof(task), "T%u", (unsigned)seqno);
    e.task_id = task;
    e.unit_id = "U1";
    e.enterprise_id = "E1";
    e.officers = offs;
    e.n_officers = officer != NULL;
    e.score = score;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void test_bad_rating(void **st)
{
    static const char *const want[4][3] = {
        {"企业E1对单位U1的检查（任务T%u）打出1分差评（2分及以下为差评）",
         "单位U1执法人员O1近30天收到3次差评（阈值3次）",
         "单位U1近30天收到评价8次，其中差评3次，差评率37.5%（阈值25%）"},
        {N_ENT "对" N_UNIT "的检查（任务T%u）打出1分差评（2分及以下为差评）",
         N_UNIT "执法人员" N_OFFICER "近30天收到3次差评（阈值3次）",
         N_UNIT "近30天收到评价8次，其中差评3次，差评率37.5%（阈值25%）"},
        {"Enterprise E1 gave the inspection by unit U1 (task T%u) a score of 1, a bad "
         "rating (2 or below).",
         "Officer O1 of unit U1 received 3 bad ratings in the last 30 days (threshold 3).",
         "Unit U1 received 3 bad ratings out of 8 in the last 30 days, 37.5% (threshold 25%)."},
        {N_ENT " gave the inspection by " N_UNIT " (task T%u) a score of 1, a bad rating "
         "(2 or below).",
         "Officer " N_OFFICER " of " N_UNIT " received 3 bad ratings in the last 30 days "
         "(threshold 3).",
         N_UNIT " received 3 bad ratings out of 8 in the last 30 days, 37.5% (threshold 25%)."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++) {
        for (int names = 0; names <= 1; names++) {
            rk_fakehost *fh = mk(&rk__det_bad_rating,
                                 "{\"unit_min_ratings\": 8, \"unit_max_bad_ratio\": 0.25}",
                                 en, names);
            char first[1024];
            uint32_t task;
            for (int i = 0; i < 5; i++)
                rate(fh, T0 + i * RK_HOUR, 5, NULL);
            task = seqno + 1;
            rate(fh, T0 + 5 * RK_HOUR, 1, "O1");
            rate(fh, T0 + 6 * RK_HOUR, 2, "O1");
            rate(fh, T0 + 7 * RK_HOUR, 1, "O1");
            snprintf(first, sizeof(first), want[en * 2 + names][0], (unsigned)task);
            expect(fh, "bad_rating", first, 1, 2);
            expect(fh, "officer_repeated", want[en * 2 + names][1], 3, 3);
            expect(fh, "unit_ratio", want[en * 2 + names][2], 0.375, 0.25);
            rk_fh_free(fh);
        }
    }
}

/* ===================================================================
 * fine_growth
 * =================================================================== */

static void decided(rk_fakehost *fh, int64_t ts, double fine, double confiscation)
{
    rk_event e = base(RK_EV_CASE_DECIDED, ts, RK_STREAM_CASE);
    e.case_id = "C";
    e.unit_id = "U1";
    e.fine = fine;
    e.confiscation = confiscation;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void test_fine_growth(void **st)
{
    static const char *const want[4] = {
        "单位U1近30天罚没金额12.5万元，此前2期（每期30天）平均每期4万元（阈值8万元）",
        N_UNIT "近30天罚没金额12.5万元，此前2期（每期30天）平均每期4万元（阈值8万元）",
        "Unit U1 imposed 125,000 yuan of fines and confiscations in the last 30 days, "
        "against an average of 40,000 yuan per 30 days over the 2 periods before "
        "(threshold 80,000 yuan).",
        N_UNIT " imposed 125,000 yuan of fines and confiscations in the last 30 days, "
        "against an average of 40,000 yuan per 30 days over the 2 periods before "
        "(threshold 80,000 yuan).",
    };
    (void)st;
    for (int en = 0; en <= 1; en++) {
        for (int names = 0; names <= 1; names++) {
            rk_fakehost *fh = mk(&rk__det_fine_growth,
                                 "{\"baseline_periods\": 2, \"min_history\": 2, "
                                 "\"min_amount\": 1000}", en, names);
            decided(fh, T0 - 60 * RK_DAY + RK_HOUR, 20000, 0);
            decided(fh, T0 - 30 * RK_DAY + RK_HOUR, 50000, 10000);
            decided(fh, T0 + RK_HOUR, 100000, 25000);
            expect(fh, "growth", want[en * 2 + names], 125000, 80000);
            rk_fh_free(fh);
        }
    }
}

/* ===================================================================
 * complaint_cluster
 * =================================================================== */

static void test_complaint_cluster(void **st)
{
    static const char *const want[4][4] = {
        {"单位U1近7天被投诉2次（阈值2次）", "执法人员O1近30天被投诉2次（阈值2次）",
         "近1天涉及企业E1的投诉有2次（阈值2次）", "近12小时涉及地区R1的投诉有2次（阈值2次）"},
        {N_UNIT "近7天被投诉2次（阈值2次）", "执法人员" N_OFFICER "近30天被投诉2次（阈值2次）",
         "近1天涉及" N_ENT "的投诉有2次（阈值2次）", "近12小时涉及兴庆区的投诉有2次（阈值2次）"},
        {"Unit U1 drew 2 complaints in the last 7 days (threshold 2).",
         "Officer O1 drew 2 complaints in the last 30 days (threshold 2).",
         "2 complaints concerned enterprise E1 in the last day (threshold 2).",
         "2 complaints concerned region R1 in the last 12 hours (threshold 2)."},
        {N_UNIT " drew 2 complaints in the last 7 days (threshold 2).",
         "Officer " N_OFFICER " drew 2 complaints in the last 30 days (threshold 2).",
         "2 complaints concerned " N_ENT " in the last day (threshold 2).",
         "2 complaints concerned 兴庆区 in the last 12 hours (threshold 2)."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++) {
        for (int names = 0; names <= 1; names++) {
            rk_fakehost *fh = mk(&rk__det_complaint_cluster,
                "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"7d\", \"min_count\": 2},"
                "{\"group_by\": \"officer_id\", \"window\": \"30d\", \"min_count\": 2},"
                "{\"group_by\": \"enterprise_id\", \"window\": \"1d\", \"min_count\": 2},"
                "{\"group_by\": \"region\", \"window\": \"12h\", \"min_count\": 2}]}",
                en, names);
            const char *offs[1] = {"O1"};
            for (int i = 0; i < 2; i++) {
                rk_event e = base(RK_EV_CASE_COMPLAINT, T0 + i * RK_HOUR, RK_STREAM_CASE);
                e.complaint_id = i ? "K2" : "K1";
                e.unit_id = "U1";
                e.enterprise_id = "E1";
                e.region = "R1";
                e.officers = offs;
                e.n_officers = 1;
                assert_int_equal(rk_fh_event(fh, &e), 0);
            }
            assert_int_equal(rk_fh_count(fh, "cluster"), 4);
            for (size_t i = 0; i < 4; i++) {
                json_t *a = rk_fh_alert(fh, i);
                assert_string_equal(json_string_value(json_object_get(a, "summary")),
                                    want[en * 2 + names][i]);
                assert_true(json_real_value(json_object_get(a, "value")) == 2);
                assert_true(json_real_value(json_object_get(a, "threshold")) == 2);
            }
            rk_fh_free(fh);
        }
    }
}

/* ===================================================================
 * two_officers (the example plugin)
 * =================================================================== */

static void test_two_officers(void **st)
{
    static const char *const want[4] = {
        "单位U1备案的检查任务T1（企业E1）只有1名执法人员，少于2名",
        N_UNIT "备案的检查任务T1（" N_ENT "）只有1名执法人员，少于2名",
        "Inspection task T1 of unit U1 at enterprise E1 was filed with 1 officer, fewer "
        "than 2.",
        "Inspection task T1 of " N_UNIT " at " N_ENT " was filed with 1 officer, fewer "
        "than 2.",
    };
    (void)st;
    for (int en = 0; en <= 1; en++) {
        for (int names = 0; names <= 1; names++) {
            rk_fakehost *fh = mk(rk_detector_entry(), "{}", en, names);
            const char *offs[1] = {"O1"};
            rk_event e = base(RK_EV_INSPECTION_FILED, T0, RK_STREAM_SCAN);
            e.task_id = "T1"; e.unit_id = "U1"; e.enterprise_id = "E1"; e.planned_at = T0;
            e.officers = offs;
            e.n_officers = 1;
            assert_int_equal(rk_fh_event(fh, &e), 0);
            expect(fh, "too_few_officers", want[en * 2 + names], 1, 2);
            rk_fh_free(fh);
        }
    }
}

/* ===================================================================
 * Changes take effect for the next alert
 * =================================================================== */

static void test_next_alert(void **st)
{
    rk_fakehost *fh = mk(&rk__det_bad_rating, "{\"officer_min_bad\": 1}", 0, 0);
    (void)st;
    rate(fh, T0, 1, "O1");
    rk_fh_name(fh, "officer", "O1", "李四");
    rk_fh_name(fh, "unit", "U1", "综合执法支队");
    rate(fh, T0 + 2 * RK_DAY, 1, "O1");
    rk_fh_language(fh, "en");
    rate(fh, T0 + 4 * RK_DAY, 1, "O1");
    rk_fh_name(fh, "officer", "O1", NULL);
    rate(fh, T0 + 6 * RK_DAY, 1, "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 4);
    assert_string_equal(json_string_value(json_object_get(rk_fh_alert(fh, 1), "summary")),
                        "单位U1执法人员O1近30天收到1次差评（阈值1次）");
    assert_string_equal(json_string_value(json_object_get(rk_fh_alert(fh, 3), "summary")),
                        "综合执法支队执法人员李四近30天收到2次差评（阈值1次）");
    assert_string_equal(json_string_value(json_object_get(rk_fh_alert(fh, 5), "summary")),
                        "Officer 李四 of 综合执法支队 received 3 bad ratings in the last 30 "
                        "days (threshold 1).");
    assert_string_equal(json_string_value(json_object_get(rk_fh_alert(fh, 7), "summary")),
                        "Officer O1 of 综合执法支队 received 4 bad ratings in the last 30 days "
                        "(threshold 1).");
    rk_fh_free(fh);
}

/* ===================================================================
 * riskd/text.h
 * =================================================================== */

static const char *g_name;
static const char *g_lang;
static const char *t_name_of(rk_host *h, const char *kind, const char *id)
{
    (void)h; (void)kind; (void)id;
    return g_name;
}
static const char *t_language(rk_host *h) { (void)h; return g_lang; }

static void test_text_helpers(void **st)
{
    rk_host_api api;
    rk_say s;
    char *big;
    (void)st;
    memset(&api, 0, sizeof(api));
    api.name_of = t_name_of;
    api.language = t_language;

    g_lang = "zh-CN";
    rk_say_init(&s, &api, NULL);
    rk_say_yuan(&s, 8500); rk_say_f(&s, "|");
    rk_say_yuan(&s, 9999.6); rk_say_f(&s, "|");
    rk_say_yuan(&s, 10000); rk_say_f(&s, "|");
    rk_say_yuan(&s, 123456); rk_say_f(&s, "|");
    rk_say_window(&s, RK_DAY); rk_say_f(&s, "|");
    rk_say_window(&s, 90 * RK_MINUTE); rk_say_f(&s, "|");
    rk_say_pct(&s, 0.2);
    assert_string_equal(rk_say_text(&s), "8500元|1万元|1万元|12.35万元|近1天|近90分钟|20%");

    g_lang = "en";
    rk_say_init(&s, &api, NULL);
    rk_say_yuan(&s, 999); rk_say_f(&s, "|");
    rk_say_yuan(&s, 1234567.8); rk_say_f(&s, "|");
    rk_say_yuan(&s, 100000); rk_say_f(&s, "|");
    rk_say_window(&s, RK_HOUR); rk_say_f(&s, "|");
    rk_say_window(&s, 2 * RK_HOUR); rk_say_f(&s, "|");
    rk_say_span(&s, RK_MINUTE); rk_say_f(&s, "|");
    rk_say_n(&s, 1, "case", "cases");
    assert_string_equal(rk_say_text(&s),
                        "999 yuan|1,234,568 yuan|100,000 yuan|in the last hour|"
                        "in the last 2 hours|1 minute|1 case");

    /* a name with line breaks stays on one line; no names list: ids */
    g_name = "市场\n监管局\t一科";
    rk_say_init(&s, &api, NULL);
    rk_say_officer(&s, "U1", "O1", 1);
    assert_string_equal(rk_say_text(&s), "Officer 市场 监管局 一科 of 市场 监管局 一科");
    api.name_of = NULL;
    api.language = NULL;
    rk_say_init(&s, &api, NULL);
    rk_say_officer(&s, "U1", "O1", 0);
    rk_say_who(&s, "enterprise", NULL, 0);
    assert_string_equal(rk_say_text(&s), "单位U1执法人员O1某企业");

    /* a sentence too long is cut at a character boundary */
    big = malloc(3 * RK_SAY_MAX + 1);
    assert_non_null(big);
    for (size_t i = 0; i < RK_SAY_MAX; i++)
        memcpy(big + 3 * i, "王", 3);
    big[3 * RK_SAY_MAX] = '\0';
    rk_say_init(&s, &api, NULL);
    rk_say_f(&s, "ab");
    rk_say_f(&s, "%s", big);
    assert_true(s.len < RK_SAY_MAX);
    assert_int_equal((s.len - 2) % 3, 0);
    assert_int_equal(strlen(rk_say_text(&s)), s.len);
    assert_true(s.len >= RK_SAY_MAX - 3);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unfiled),
        cmocka_unit_test(test_unfiled_rounds),
        cmocka_unit_test(test_bad_rating),
        cmocka_unit_test(test_fine_growth),
        cmocka_unit_test(test_complaint_cluster),
        cmocka_unit_test(test_two_officers),
        cmocka_unit_test(test_next_alert),
        cmocka_unit_test(test_text_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
