/* tests/unit/test-reasons.c - the reasons of the four original detectors'
 * notices, rule by rule.
 *
 * Every resolved and retracted notice of unfiled_inspection, bad_rating,
 * fine_growth and complaint_cluster is driven through the fake host four
 * times: in Chinese and in English, with the `names` list knowing the
 * unit, officer and enterprises (names that are long and contain quotes)
 * and knowing none of them. Each reason is checked as an exact string: one
 * sentence naming the subject as the alert's summary does, with windows,
 * time limits and alerts.keep_firing_for in words ("近7天", "1小时",
 * "30 days"). Then the odd cases: a subject without a unit, a rule no
 * longer configured when its alert resolves. The retractions of the practice
 * detectors (inspection_frequency, discretion, officer_credential) are
 * checked the same way. */
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

#define T0 INT64_C(1740787200000)   /* 2025-03-01T00:00:00Z */

#define N_UNIT "银川市市场监督管理局兴庆区分局"
#define N_OFFICER "王某"
#define N_ENT "宁夏\"老字号\"餐饮管理有限公司（兴庆区解放东街第一百二十八号“旗舰”分店）"
#define N_ENT2 "银川“好邻居”便利店"

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

/* A host and detector in Chinese or English (en), with or without names
 * for U1, O1, E1, E2 and R1 (names). */
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
        rk_fh_name(fh, "enterprise", "E2", N_ENT2);
        rk_fh_name(fh, "region", "R1", "兴庆区");
    }
    return fh;
}

/* The reason of the only notice of rule with status whose subject has
 * field = value (field NULL: any subject). */
static const char *reason(const rk_fakehost *fh, const char *rule, const char *status,
                          const char *field, const char *value)
{
    const char *found = NULL;
    int n = 0;
    size_t i;
    for (i = 0; i < json_array_size(fh->notices); i++) {
        json_t *a = rk_fh_notice(fh, i);
        const char *v = field != NULL ? json_string_value(json_object_get(
                                            json_object_get(a, "subject"), field)) : NULL;
        if (strcmp(json_string_value(json_object_get(a, "rule")), rule) != 0 ||
            strcmp(json_string_value(json_object_get(a, "status")), status) != 0 ||
            (field != NULL && (v == NULL || strcmp(v, value) != 0)))
            continue;
        found = json_string_value(json_object_get(a, "reason"));
        n++;
    }
    if (n != 1)
        fail_msg("%d %s notices of %s (want 1)", n, status, rule);
    return found;
}

/* ===================================================================
 * unfiled_inspection: retracted by late data, filed_not_scanned resolved
 * =================================================================== */

static void filed(rk_fakehost *fh, int64_t ts, const char *task, const char *unit,
                  const char *ent, unsigned flags)
{
    rk_event e = base(RK_EV_INSPECTION_FILED, ts, RK_STREAM_SCAN);
    e.task_id = task;
    e.unit_id = unit;
    e.enterprise_id = ent;
    e.planned_at = ts < T0 ? ts : T0;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void scanned(rk_fakehost *fh, int64_t ts, const char *task, const char *ent,
                    const char *unit)
{
    rk_event e = base(RK_EV_INSPECTION_SCANNED, ts, RK_STREAM_SCAN);
    e.task_id = task;
    e.enterprise_id = ent;
    e.unit_id = unit;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

/* Each of unfiled_inspection's six notices, in a host of its own. */
static void unfiled(int en, int names, const char *const want[6])
{
    rk_fakehost *fh;
    rk_event e;

    /* scan_without_filing: the filing, made within grace, arrives late */
    fh = mk(&rk__det_unfiled_inspection, "{}", en, names);
    scanned(fh, T0, "T1", "E1", "U1");
    rk_fh_advance(fh, T0 + 10 * RK_MINUTE + 1);
    filed(fh, T0 + 5 * RK_MINUTE, "T1", "U1", "E1", 0);
    assert_string_equal(reason(fh, "scan_without_filing", "retracted", NULL, NULL), want[0]);
    rk_fh_free(fh);

    /* case_without_filing: likewise for the case's task */
    fh = mk(&rk__det_unfiled_inspection, "{}", en, names);
    e = base(RK_EV_CASE_OPENED, T0, RK_STREAM_CASE);
    e.case_id = "C1"; e.unit_id = "U1"; e.task_id = "T1"; e.source = RK_SOURCE_INSPECTION;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    rk_fh_advance(fh, T0 + 10 * RK_MINUTE + 1);
    filed(fh, T0 - RK_HOUR, "T1", "U1", "E1", 0);
    assert_string_equal(reason(fh, "case_without_filing", "retracted", NULL, NULL), want[1]);
    rk_fh_free(fh);

    /* reported_without_filing: a filing planned 23 hours before arrives */
    fh = mk(&rk__det_unfiled_inspection, "{}", en, names);
    e = base(RK_EV_INSPECTION_REPORTED, T0, RK_STREAM_SCAN);
    e.unit_id = "U1"; e.enterprise_id = "E1";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    filed(fh, T0 - 23 * RK_HOUR, "T3", "U1", "E1", 0);
    assert_string_equal(reason(fh, "reported_without_filing", "retracted", NULL, NULL),
                        want[2]);
    rk_fh_free(fh);

    /* enterprise_mismatch: the filing is amended to the scanned E2 */
    fh = mk(&rk__det_unfiled_inspection, "{}", en, names);
    filed(fh, T0, "T1", "U1", "E1", 0);
    scanned(fh, T0 + RK_MINUTE, "T1", "E2", NULL);
    filed(fh, T0 + 2 * RK_MINUTE, "T1", "U1", "E2", RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "enterprise_mismatch", "retracted", NULL, NULL), want[3]);
    rk_fh_free(fh);

    /* filed_not_scanned: resolved by a late scan, retracted by one in
     * time that arrives late */
    fh = mk(&rk__det_unfiled_inspection, "{}", en, names);
    filed(fh, T0, "T1", "U1", "E1", 0);
    filed(fh, T0, "T2", "U1", "E1", 0);
    rk_fh_advance(fh, T0 + RK_DAY + 1);
    scanned(fh, T0 + RK_DAY + RK_HOUR, "T1", "E1", NULL);
    scanned(fh, T0 + RK_HOUR, "T2", "E1", NULL);
    assert_string_equal(reason(fh, "filed_not_scanned", "resolved", "task_id", "T1"), want[4]);
    assert_string_equal(reason(fh, "filed_not_scanned", "retracted", "task_id", "T2"),
                        want[5]);
    rk_fh_free(fh);
}

static void test_unfiled(void **st)
{
    static const char *const zh[6] = {
        "单位U1对企业E1的检查（任务T1）已按时网上备案（宽限10分钟），只是备案记录晚到。",
        "单位U1立案所涉的检查任务T1已按时网上备案（宽限10分钟），只是备案记录晚到。",
        "单位U1对企业E1的检查备案已经到达，计划时间在该报告前后24小时内。",
        "单位U1的检查任务T1备案已更正为扫码的企业E2。",
        "单位U1备案的检查任务T1（企业E1）已逾期补扫码（时限24小时）。",
        "单位U1备案的检查任务T2（企业E1）已按时扫码（时限24小时），只是扫码记录晚到。",
    };
    static const char *const zh_names[6] = {
        N_UNIT "对" N_ENT "的检查（任务T1）已按时网上备案（宽限10分钟），只是备案记录晚到。",
        N_UNIT "立案所涉的检查任务T1已按时网上备案（宽限10分钟），只是备案记录晚到。",
        N_UNIT "对" N_ENT "的检查备案已经到达，计划时间在该报告前后24小时内。",
        N_UNIT "的检查任务T1备案已更正为扫码的" N_ENT2 "。",
        N_UNIT "备案的检查任务T1（" N_ENT "）已逾期补扫码（时限24小时）。",
        N_UNIT "备案的检查任务T2（" N_ENT "）已按时扫码（时限24小时），只是扫码记录晚到。",
    };
    static const char *const en[6] = {
        "The inspection of enterprise E1 by unit U1 (task T1) was filed online in time "
        "(grace 10 minutes); the filing arrived late.",
        "Inspection task T1 of this case opened by unit U1 was filed online in time (grace "
        "10 minutes); the filing arrived late.",
        "A filing of the inspection of enterprise E1 by unit U1, planned within 24 hours of "
        "the report, has arrived.",
        "The filing of inspection task T1 of unit U1 was amended to name enterprise E2, "
        "where it was scanned.",
        "Inspection task T1 of unit U1 at enterprise E1 was scanned late (limit 24 hours).",
        "Inspection task T2 of unit U1 at enterprise E1 was scanned in time (limit 24 "
        "hours); the scan arrived late.",
    };
    static const char *const en_names[6] = {
        "The inspection of " N_ENT " by " N_UNIT " (task T1) was filed online in time "
        "(grace 10 minutes); the filing arrived late.",
        "Inspection task T1 of this case opened by " N_UNIT " was filed online in time (grace "
        "10 minutes); the filing arrived late.",
        "A filing of the inspection of " N_ENT " by " N_UNIT ", planned within 24 hours of "
        "the report, has arrived.",
        "The filing of inspection task T1 of " N_UNIT " was amended to name " N_ENT2 ", "
        "where it was scanned.",
        "Inspection task T1 of " N_UNIT " at " N_ENT " was scanned late (limit 24 hours).",
        "Inspection task T2 of " N_UNIT " at " N_ENT " was scanned in time (limit 24 "
        "hours); the scan arrived late.",
    };
    (void)st;
    unfiled(0, 0, zh);
    unfiled(0, 1, zh_names);
    unfiled(1, 0, en);
    unfiled(1, 1, en_names);
}

/* A scan without a unit: the retraction names the enterprise alone, as
 * the alert did; the time limits in words from the configuration. */
static void test_unfiled_no_unit(void **st)
{
    rk_fakehost *fh;
    (void)st;
    for (int en = 0; en <= 1; en++) {
        fh = mk(&rk__det_unfiled_inspection, "{\"grace\": \"2h\"}", en, 0);
        scanned(fh, T0, "T1", "E1", NULL);
        rk_fh_advance(fh, T0 + 2 * RK_HOUR + 1);
        filed(fh, T0 + RK_HOUR, "T1", "U1", "E1", 0);
        assert_string_equal(reason(fh, "scan_without_filing", "retracted", NULL, NULL),
                            en ? "The inspection of enterprise E1 (task T1) was filed online "
                                 "in time (grace 2 hours); the filing arrived late."
                               : "企业E1的检查（任务T1）已按时网上备案（宽限2小时），"
                                 "只是备案记录晚到。");
        rk_fh_free(fh);
    }
}

/* ===================================================================
 * bad_rating: officer_repeated and unit_ratio resolved
 * =================================================================== */

static void rate(rk_fakehost *fh, int64_t ts, int score, const char *unit,
                 const char *officer)
{
    const char *offs[1] = {officer};
    char task[16];
    rk_event e = base(RK_EV_INSPECTION_RATED, ts, RK_STREAM_SCAN);
    snprintf(task, sizeof(task), "T%u", (unsigned)seqno);
    e.task_id = task;
    e.unit_id = unit;
    e.enterprise_id = "E1";
    e.officers = offs;
    e.n_officers = officer != NULL;
    e.score = score;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

/* Two bad ratings of O1 (unit U1) a day apart against 2 in 7 days; two
 * bad and three good ratings of U1 against 50% of at least 2 in 30 days.
 * Then time passes. */
static void bad_rating(int en, int names, const char *const want[2])
{
    rk_fakehost *fh = mk(&rk__det_bad_rating,
                         "{\"officer_min_bad\": 2, \"officer_window\": \"7d\", "
                         "\"unit_min_ratings\": 2, \"unit_max_bad_ratio\": 0.5, "
                         "\"unit_window\": \"30d\"}", en, names);
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + RK_DAY, 1, "U1", "O1");
    for (int i = 0; i < 3; i++)
        rate(fh, T0 + RK_DAY + 1 + i, 5, "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    rk_fh_advance(fh, T0 + 10 * RK_DAY);
    assert_string_equal(reason(fh, "officer_repeated", "resolved", NULL, NULL), want[0]);
    assert_string_equal(reason(fh, "unit_ratio", "resolved", NULL, NULL), want[1]);
    rk_fh_free(fh);
}

static void test_bad_rating(void **st)
{
    static const char *const want[4][2] = {
        {"单位U1执法人员O1近7天收到的差评已少于2次，且已持续1小时。",
         "单位U1近30天的差评率已低于50%或评价已少于2次，且已持续1小时。"},
        {N_UNIT "执法人员" N_OFFICER "近7天收到的差评已少于2次，且已持续1小时。",
         N_UNIT "近30天的差评率已低于50%或评价已少于2次，且已持续1小时。"},
        {"Officer O1 of unit U1 has had fewer than 2 bad ratings in the last 7 days for "
         "1 hour.",
         "Unit U1 has had a share of bad ratings below 50%, or fewer than 2 ratings, in "
         "the last 30 days for 1 hour."},
        {"Officer " N_OFFICER " of " N_UNIT " has had fewer than 2 bad ratings in the last "
         "7 days for 1 hour.",
         N_UNIT " has had a share of bad ratings below 50%, or fewer than 2 ratings, in "
         "the last 30 days for 1 hour."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++)
        for (int names = 0; names <= 1; names++)
            bad_rating(en, names, want[en * 2 + names]);
}

/* An officer rated without a unit; alerts.keep_firing_for 30 days and
 * windows of one day, in words. */
static void test_bad_rating_no_unit(void **st)
{
    static const char *const want[2][2] = {
        {"执法人员O1近1天收到的差评已少于2次，且已持续30天。",
         "单位U1近1天的差评率已低于50%或评价已少于2次，且已持续30天。"},
        {"Officer O1 has had fewer than 2 bad ratings in the last day for 30 days.",
         "Unit U1 has had a share of bad ratings below 50%, or fewer than 2 ratings, in the "
         "last day for 30 days."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++) {
        rk_fakehost *fh = mk(&rk__det_bad_rating,
                             "{\"officer_min_bad\": 2, \"officer_window\": \"1d\", "
                             "\"unit_min_ratings\": 2, \"unit_max_bad_ratio\": 0.5, "
                             "\"unit_window\": \"1d\"}", en, 0);
        fh->keep_firing_for = 30 * RK_DAY;
        rate(fh, T0, 1, NULL, "O1");
        rate(fh, T0 + 1, 1, NULL, "O1");
        rate(fh, T0 + 2, 1, "U1", NULL);
        rate(fh, T0 + 3, 1, "U1", NULL);
        rk_fh_advance(fh, T0 + 40 * RK_DAY);
        assert_string_equal(reason(fh, "officer_repeated", "resolved", NULL, NULL),
                            want[en][0]);
        assert_string_equal(reason(fh, "unit_ratio", "resolved", NULL, NULL), want[en][1]);
        rk_fh_free(fh);
    }
}

/* ===================================================================
 * fine_growth: growth resolved and retracted
 * =================================================================== */

static void decided(rk_fakehost *fh, int64_t ts, const char *case_id, double fine,
                    unsigned flags)
{
    rk_event e = base(RK_EV_CASE_DECIDED, ts, RK_STREAM_CASE);
    e.case_id = case_id;
    e.unit_id = "U1";
    e.fine = fine;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

#define FG_CFG "{\"baseline_periods\": 2, \"min_history\": 2, \"min_amount\": 1000}"

/* 20,000 and 60,000 yuan in the two periods before, 125,000 now: growth.
 * Resolved once the 125,000 has left the current 30 days; in another
 * host, retracted by an amendment to 1,000. */
static void fine_growth(int en, int names, const char *const want[2])
{
    rk_fakehost *fh = mk(&rk__det_fine_growth, FG_CFG, en, names);
    decided(fh, T0 - 60 * RK_DAY + RK_HOUR, "C1", 20000, 0);
    decided(fh, T0 - 30 * RK_DAY + RK_HOUR, "C2", 60000, 0);
    decided(fh, T0 + RK_HOUR, "C3", 125000, 0);
    assert_int_equal(rk_fh_count(fh, "growth"), 1);
    rk_fh_advance(fh, T0 + 40 * RK_DAY);
    assert_string_equal(reason(fh, "growth", "resolved", NULL, NULL), want[0]);
    rk_fh_free(fh);

    fh = mk(&rk__det_fine_growth, FG_CFG, en, names);
    decided(fh, T0 - 60 * RK_DAY + RK_HOUR, "C1", 20000, 0);
    decided(fh, T0 - 30 * RK_DAY + RK_HOUR, "C2", 60000, 0);
    decided(fh, T0 + RK_HOUR, "C3", 125000, 0);
    decided(fh, T0 + 2 * RK_HOUR, "C3", 1000, RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "growth", "retracted", NULL, NULL), want[1]);
    rk_fh_free(fh);
}

static void test_fine_growth(void **st)
{
    static const char *const want[4][2] = {
        {"单位U1近30天的罚没金额已回落到增长阈值以内，且已持续1小时。",
         "更正后的处罚决定表明，单位U1的罚没金额从未超过增长阈值。"},
        {N_UNIT "近30天的罚没金额已回落到增长阈值以内，且已持续1小时。",
         "更正后的处罚决定表明，" N_UNIT "的罚没金额从未超过增长阈值。"},
        {"Unit U1's fines and confiscations in the last 30 days have been back within the "
         "growth threshold for 1 hour.",
         "An amended decision shows the fines and confiscations of unit U1 never grew past "
         "the threshold."},
        {N_UNIT "'s fines and confiscations in the last 30 days have been back within the "
         "growth threshold for 1 hour.",
         "An amended decision shows the fines and confiscations of " N_UNIT " never grew "
         "past the threshold."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++)
        for (int names = 0; names <= 1; names++)
            fine_growth(en, names, want[en * 2 + names]);
}

/* ===================================================================
 * complaint_cluster: cluster resolved
 * =================================================================== */

#define CC_CFG "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"7d\", \"min_count\": 2}," \
    "{\"group_by\": \"officer_id\", \"window\": \"30d\", \"min_count\": 2}," \
    "{\"group_by\": \"enterprise_id\", \"window\": \"1d\", \"min_count\": 2}," \
    "{\"group_by\": \"region\", \"window\": \"12h\", \"min_count\": 2}]}"

static void complain(rk_fakehost *fh, int64_t ts)
{
    const char *offs[1] = {"O1"};
    rk_event e = base(RK_EV_CASE_COMPLAINT, ts, RK_STREAM_CASE);
    char id[16];
    snprintf(id, sizeof(id), "K%u", (unsigned)seqno);
    e.complaint_id = id;
    e.unit_id = "U1";
    e.enterprise_id = "E1";
    e.region = "R1";
    e.officers = offs;
    e.n_officers = 1;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void test_complaint_cluster(void **st)
{
    static const char *const field[4] = {"unit_id", "officer_id", "enterprise_id", "region"};
    static const char *const value[4] = {"U1", "O1", "E1", "R1"};
    static const char *const want[4][4] = {
        {"近7天涉及单位U1的投诉已少于2次，且已持续1小时。",
         "近30天涉及执法人员O1的投诉已少于2次，且已持续1小时。",
         "近1天涉及企业E1的投诉已少于2次，且已持续1小时。",
         "近12小时涉及地区R1的投诉已少于2次，且已持续1小时。"},
        {"近7天涉及" N_UNIT "的投诉已少于2次，且已持续1小时。",
         "近30天涉及执法人员" N_OFFICER "的投诉已少于2次，且已持续1小时。",
         "近1天涉及" N_ENT "的投诉已少于2次，且已持续1小时。",
         "近12小时涉及兴庆区的投诉已少于2次，且已持续1小时。"},
        {"The complaints concerning unit U1 in the last 7 days have been fewer than 2 for "
         "1 hour.",
         "The complaints concerning officer O1 in the last 30 days have been fewer than 2 "
         "for 1 hour.",
         "The complaints concerning enterprise E1 in the last day have been fewer than 2 "
         "for 1 hour.",
         "The complaints concerning region R1 in the last 12 hours have been fewer than 2 "
         "for 1 hour."},
        {"The complaints concerning " N_UNIT " in the last 7 days have been fewer than 2 "
         "for 1 hour.",
         "The complaints concerning officer " N_OFFICER " in the last 30 days have been "
         "fewer than 2 for 1 hour.",
         "The complaints concerning " N_ENT " in the last day have been fewer than 2 for "
         "1 hour.",
         "The complaints concerning 兴庆区 in the last 12 hours have been fewer than 2 for "
         "1 hour."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++) {
        for (int names = 0; names <= 1; names++) {
            rk_fakehost *fh = mk(&rk__det_complaint_cluster, CC_CFG, en, names);
            complain(fh, T0);
            complain(fh, T0 + RK_HOUR);
            assert_int_equal(rk_fh_count(fh, "cluster"), 4);
            rk_fh_advance(fh, T0 + 40 * RK_DAY);
            for (int g = 0; g < 4; g++)
                assert_string_equal(reason(fh, "cluster", "resolved", field[g], value[g]),
                                    want[en * 2 + names][g]);
            rk_fh_free(fh);
        }
    }
}

/* The unit rule is gone from the configuration when its alert resolves:
 * the reason gives no threshold it no longer knows. */
static void test_complaint_cluster_rule_gone(void **st)
{
    const char *only_officer =
        "{\"rules\": [{\"group_by\": \"officer_id\", \"window\": \"30d\", \"min_count\": 2}]}";
    (void)st;
    for (int en = 0; en <= 1; en++) {
        rk_fakehost *fh = mk(&rk__det_complaint_cluster, CC_CFG, en, 0);
        complain(fh, T0);
        complain(fh, T0 + RK_HOUR);
        assert_int_equal(rk_fh_roundtrip(fh, only_officer), 0);
        rk_fh_advance(fh, T0 + 40 * RK_DAY);
        assert_string_equal(reason(fh, "cluster", "resolved", "unit_id", "U1"),
                            en ? "The complaints concerning unit U1 in the last 7 days have "
                                 "been below the threshold for 1 hour."
                               : "近7天涉及单位U1的投诉已低于阈值，且已持续1小时。");
        rk_fh_free(fh);
    }
}

/* ===================================================================
 * The practice detectors' retractions: inspection_frequency (repeat,
 * whitelist, multi_unit), discretion (out_of_benchmark, exempt_fined,
 * disparity), officer_credential (uncertified, officer by officer)
 * =================================================================== */

static void ifiled(rk_fakehost *fh, int64_t ts, const char *task, const char *unit,
                   int64_t planned, unsigned flags)
{
    rk_event e = base(RK_EV_INSPECTION_FILED, ts, RK_STREAM_SCAN);
    e.task_id = task;
    e.unit_id = unit;
    e.enterprise_id = "E1";
    e.planned_at = planned;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

/* repeat: a second filing within the day rescheduled a week on;
 * whitelist: a second within the year (allowance 1) moved two years on;
 * multi_unit: U2's filing amended to U1. */
static void inspection_frequency(int en, int names, const char *const want[3])
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, "{}", en, names);
    ifiled(fh, T0, "T1", "U1", T0, 0);
    ifiled(fh, T0 + RK_HOUR, "T2", "U1", T0 + RK_HOUR, 0);
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    ifiled(fh, T0 + 2 * RK_HOUR, "T2", "U1", T0 + 8 * RK_DAY, RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "repeat", "retracted", NULL, NULL), want[0]);
    rk_fh_free(fh);

    fh = mk(&rk__det_inspection_frequency, "{\"limits\": [], \"multi_min_units\": 5}", en,
            names);
    assert_int_equal(rk_fh_list(fh, "whitelist", "enterprise_id,allowance,note\nE1,1,x\n"), 0);
    ifiled(fh, T0, "T1", "U1", T0, 0);
    ifiled(fh, T0 + RK_DAY, "T2", "U1", T0 + RK_DAY, 0);
    assert_int_equal(rk_fh_count(fh, "whitelist"), 1);
    ifiled(fh, T0 + 2 * RK_DAY, "T2", "U1", T0 + 730 * RK_DAY, RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "whitelist", "retracted", NULL, NULL), want[1]);
    rk_fh_free(fh);

    fh = mk(&rk__det_inspection_frequency, "{\"limits\": []}", en, names);
    ifiled(fh, T0, "T1", "U1", T0, 0);
    ifiled(fh, T0 + RK_DAY, "T2", "U2", T0 + RK_DAY, 0);
    assert_int_equal(rk_fh_count(fh, "multi_unit"), 1);
    ifiled(fh, T0 + 2 * RK_DAY, "T2", "U1", T0 + RK_DAY, RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "multi_unit", "retracted", NULL, NULL), want[2]);
    rk_fh_free(fh);
}

static void test_inspection_frequency(void **st)
{
    static const char *const want[4][3] = {
        {"更正后的检查备案表明，企业E1的检查从未超过上限。",
         "更正后的检查备案表明，白名单内的企业E1的检查从未超过其检查额度。",
         "更正后的检查备案表明，企业E1的检查从未超过上限。"},
        {"更正后的检查备案表明，" N_ENT "的检查从未超过上限。",
         "更正后的检查备案表明，白名单内的" N_ENT "的检查从未超过其检查额度。",
         "更正后的检查备案表明，" N_ENT "的检查从未超过上限。"},
        {"An amended filing shows enterprise E1 was never inspected past the limit.",
         "An amended filing shows enterprise E1, on the whitelist, was never inspected past "
         "its allowance.",
         "An amended filing shows enterprise E1 was never inspected past the limit."},
        {"An amended filing shows " N_ENT " was never inspected past the limit.",
         "An amended filing shows " N_ENT ", on the whitelist, was never inspected past its "
         "allowance.",
         "An amended filing shows " N_ENT " was never inspected past the limit."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++)
        for (int names = 0; names <= 1; names++)
            inspection_frequency(en, names, want[en * 2 + names]);
}

#define N_ITEM "未取得食品经营许可从事食品经营活动"

static void dc_decided(rk_fakehost *fh, int64_t ts, const char *case_id, const char *unit,
                       const char *item, double fine, rk_leniency len, unsigned flags)
{
    rk_event e = base(RK_EV_CASE_DECIDED, ts, RK_STREAM_CASE);
    e.case_id = case_id;
    e.unit_id = unit;
    e.item_code = item;
    e.fine = fine;
    e.leniency = len;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

/* out_of_benchmark: a fine of 6000 (benchmark 1000..5000) corrected to
 * 4000; exempt_fined: a fine on a no-penalty item corrected to 0;
 * disparity: U1's 1000 yuan against U2's 100 (ratio 2, one case each)
 * corrected to 150. */
static void discretion(int en, int names, const char *const want[3])
{
    static const char *const lists =
        "item_code,level,min_fine,max_fine\nI1,,1000,5000\n";
    rk_fakehost *fh = mk(&rk__det_discretion, "{}", en, names);
    if (names)
        rk_fh_name(fh, "item", "I1", N_ITEM);
    assert_int_equal(rk_fh_list(fh, "benchmarks", lists), 0);
    dc_decided(fh, T0, "C1", "U1", "I1", 6000, RK_LENIENCY_UNSET, 0);
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 1);
    dc_decided(fh, T0 + RK_HOUR, "C1", "U1", "I1", 4000, RK_LENIENCY_UNSET, RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "out_of_benchmark", "retracted", NULL, NULL), want[0]);
    rk_fh_free(fh);

    fh = mk(&rk__det_discretion, "{}", en, names);
    if (names)
        rk_fh_name(fh, "item", "I1", N_ITEM);
    assert_int_equal(rk_fh_list(fh, "exempt", "item_code,kind\nI1,no_penalty\n"), 0);
    dc_decided(fh, T0, "C1", "U1", "I1", 500, RK_LENIENCY_UNSET, 0);
    assert_int_equal(rk_fh_count(fh, "exempt_fined"), 1);
    dc_decided(fh, T0 + RK_HOUR, "C1", "U1", "I1", 0, RK_LENIENCY_UNSET, RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "exempt_fined", "retracted", NULL, NULL), want[1]);
    rk_fh_free(fh);

    fh = mk(&rk__det_discretion, "{\"min_cases\": 1, \"max_ratio\": 2}", en, names);
    if (names)
        rk_fh_name(fh, "item", "I1", N_ITEM);
    dc_decided(fh, T0, "C1", "U2", "I1", 100, RK_LENIENCY_UNSET, 0);
    dc_decided(fh, T0 + RK_HOUR, "C2", "U1", "I1", 1000, RK_LENIENCY_UNSET, 0);
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    dc_decided(fh, T0 + 2 * RK_HOUR, "C2", "U1", "I1", 150, RK_LENIENCY_UNSET, RK_EVF_AMENDED);
    assert_string_equal(reason(fh, "disparity", "retracted", NULL, NULL), want[2]);
    rk_fh_free(fh);
}

static void test_discretion(void **st)
{
    static const char *const want[4][3] = {
        {"更正后的处罚决定表明，单位U1对案件C1（事项I1）的罚款在裁量基准范围内。",
         "更正后的处罚决定表明，单位U1对案件C1（事项I1）的处罚符合包容免罚清单。",
         "更正后的处罚决定表明，单位U1对事项I1的罚款中位数与其他单位的差距从未达到阈值。"},
        {"更正后的处罚决定表明，" N_UNIT "对案件C1（" N_ITEM "）的罚款在裁量基准范围内。",
         "更正后的处罚决定表明，" N_UNIT "对案件C1（" N_ITEM "）的处罚符合包容免罚清单。",
         "更正后的处罚决定表明，" N_UNIT "对" N_ITEM "的罚款中位数与其他单位的差距从未达到"
         "阈值。"},
        {"The amended decision of unit U1 in case C1 (item I1) puts the fine within the "
         "discretion benchmark.",
         "The amended decision of unit U1 in case C1 (item I1) complies with the exemption "
         "list.",
         "An amended decision shows the median fine of unit U1 for item I1 was never that far "
         "from the other units'."},
        {"The amended decision of " N_UNIT " in case C1 (" N_ITEM ") puts the fine within "
         "the discretion benchmark.",
         "The amended decision of " N_UNIT " in case C1 (" N_ITEM ") complies with the "
         "exemption list.",
         "An amended decision shows the median fine of " N_UNIT " for " N_ITEM " was never "
         "that far from the other units'."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++)
        for (int names = 0; names <= 1; names++)
            discretion(en, names, want[en * 2 + names]);
}

/* uncertified: task T1 of U1 names O1 and O3, neither credentialed; the
 * amendment names O2 (credentialed) instead: each officer's alert is
 * retracted with a reason naming that officer. */
static void officer_credential(int en, int names, const char *const want[2])
{
    const char *before[2] = {"O1", "O3"}, *after[1] = {"O2"};
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}", en, names);
    rk_event e;
    assert_int_equal(rk_fh_list(fh, "credentials", "officer_id,unit_id,valid_from,valid_until\n"
                                                   "O2,U1,2024-01-01,\n"), 0);
    e = base(RK_EV_INSPECTION_FILED, T0, RK_STREAM_SCAN);
    e.task_id = "T1"; e.unit_id = "U1"; e.enterprise_id = "E1"; e.planned_at = T0;
    e.officers = before; e.n_officers = 2;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 2);
    e = base(RK_EV_INSPECTION_FILED, T0 + RK_HOUR, RK_STREAM_SCAN);
    e.task_id = "T1"; e.unit_id = "U1"; e.enterprise_id = "E1"; e.planned_at = T0;
    e.officers = after; e.n_officers = 1; e.flags = RK_EVF_AMENDED;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    assert_string_equal(reason(fh, "uncertified", "retracted", "officer_id", "O1"), want[0]);
    assert_string_equal(reason(fh, "uncertified", "retracted", "officer_id", "O3"), want[1]);
    rk_fh_free(fh);
}

static void test_officer_credential(void **st)
{
    static const char *const want[4][2] = {
        {"更正后的检查任务T1备案表明，单位U1执法人员O1在计划日期持有有效执法证件或未参与检查。",
         "更正后的检查任务T1备案表明，单位U1执法人员O3在计划日期持有有效执法证件或未参与检查。"},
        {"更正后的检查任务T1备案表明，" N_UNIT "执法人员" N_OFFICER "在计划日期持有有效执法"
         "证件或未参与检查。",
         "更正后的检查任务T1备案表明，" N_UNIT "执法人员O3在计划日期持有有效执法证件或未参与"
         "检查。"},
        {"The amended filing of inspection task T1 shows officer O1 of unit U1 held a valid "
         "credential on its planned date or did not take part.",
         "The amended filing of inspection task T1 shows officer O3 of unit U1 held a valid "
         "credential on its planned date or did not take part."},
        {"The amended filing of inspection task T1 shows officer " N_OFFICER " of " N_UNIT
         " held a valid credential on its planned date or did not take part.",
         "The amended filing of inspection task T1 shows officer O3 of " N_UNIT " held a "
         "valid credential on its planned date or did not take part."},
    };
    (void)st;
    for (int en = 0; en <= 1; en++)
        for (int names = 0; names <= 1; names++)
            officer_credential(en, names, want[en * 2 + names]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unfiled),
        cmocka_unit_test(test_unfiled_no_unit),
        cmocka_unit_test(test_bad_rating),
        cmocka_unit_test(test_bad_rating_no_unit),
        cmocka_unit_test(test_fine_growth),
        cmocka_unit_test(test_complaint_cluster),
        cmocka_unit_test(test_complaint_cluster_rule_gone),
        cmocka_unit_test(test_inspection_frequency),
        cmocka_unit_test(test_discretion),
        cmocka_unit_test(test_officer_credential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
