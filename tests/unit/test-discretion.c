/* tests/unit/test-discretion.c - discretion through the fake host with
 * benchmarks and exempt lists parsed from CSV: out_of_benchmark at the
 * bounds and by level, exempt_fined no_penalty vs lighter, disparity at
 * max_ratio and just below, high and low, amendments, snapshot/restore. */
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

#define DECIDED "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"%s\",\"unit_id\":\"%s\"," \
                "\"fine\":%g,\"item_code\":\"%s\"%s}"

static void decide(rk_fakehost *fh, unsigned flags, int64_t ts, const char *cid,
                   const char *unit, double fine, const char *item, const char *extra)
{
    assert_int_equal(sendf(fh, flags, DECIDED, (long long)ts, cid, unit, fine, item,
                           extra ? extra : ""), 0);
}

static void test_benchmark(void **state)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    (void)state;
    assert_int_equal(rk_fh_list(fh, "benchmarks",
                                "item_code,level,min_fine,max_fine\n"
                                "SP-01,,1000,5000\n"
                                "SP-01,serious,5000,20000\n"), 0);
    decide(fh, 0, T0, "C1", "U1", 1000, "SP-01", NULL);       /* at min */
    decide(fh, 0, T0, "C2", "U1", 5000, "SP-01", NULL);       /* at max */
    decide(fh, 0, T0, "C3", "U1", 6000, "SP-01", ",\"level\":\"serious\"");
    decide(fh, 0, T0, "C4", "U1", 100, "OTHER", NULL);        /* no benchmark */
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 0);
    decide(fh, 0, T0, "C5", "U1", 5000.5, "SP-01", ",\"level\":\"minor\"");
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 1);
    assert_string_equal(subj(fh, 0, "case_id"), "C5");
    assert_string_equal(subj(fh, 0, "item_code"), "SP-01");
    assert_true(num(fh, 0, "value") == 5000.5 && num(fh, 0, "threshold") == 5000);
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "单位U1对案件C5（事项SP-01）罚款5000.5元，超出裁量基准1000元至5000元");
    decide(fh, 0, T0, "C6", "U1", 4999, "SP-01", ",\"level\":\"serious\"");
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 2);
    assert_true(num(fh, 1, "threshold") == 5000);
    /* An amendment is checked with its new fine. */
    decide(fh, RK_EVF_AMENDED, T0 + 1, "C1", "U1", 900, "SP-01", NULL);
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 3);
    rk_fh_free(fh);
}

static void test_exempt(void **state)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    (void)state;
    assert_int_equal(rk_fh_list(fh, "exempt", "item_code,kind\nNP-1,no_penalty\nLT-1,lighter\n"),
                     0);
    decide(fh, 0, T0, "C1", "U1", 0, "NP-1", NULL);
    decide(fh, 0, T0, "C2", "U1", 500, "LT-1", ",\"leniency\":\"lighter\"");
    decide(fh, 0, T0, "C3", "U1", 500, "LT-1", NULL);          /* leniency absent */
    assert_int_equal(rk_fh_count(fh, "exempt_fined"), 0);
    decide(fh, 0, T0, "C4", "U1", 0, "NP-1", ",\"confiscation\":20");
    decide(fh, 0, T0, "C5", "U1", 500, "LT-1", ",\"leniency\":\"none\"");
    assert_int_equal(rk_fh_count(fh, "exempt_fined"), 2);
    assert_string_equal(alert_str(fh, 0, "severity"), "warning");
    assert_true(num(fh, 0, "value") == 20 && num(fh, 0, "threshold") == 0);
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "单位U1对案件C4（事项NP-1，属包容免罚清单）仍罚没20元");
    assert_string_equal(alert_str(fh, 1, "severity"), "info");
    assert_true(num(fh, 1, "value") == 1 && num(fh, 1, "threshold") == 1);
    assert_string_equal(alert_str(fh, 1, "summary"),
                        "单位U1对案件C5（事项LT-1，属从轻处罚清单）未从轻处罚，罚没500元");
    rk_fh_free(fh);
}

/* Other units decide 5 cases of 100 each; U1 decides 4 of x, then the 5th. */
static rk_fakehost *disparity_case(double fine_u1)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    char cid[16];
    int i;
    for (i = 0; i < 5; i++) {
        snprintf(cid, sizeof(cid), "O%d", i);
        decide(fh, 0, T0 + i, cid, i % 2 ? "U2" : "U3", 100, "SP-01", NULL);
    }
    for (i = 0; i < 5; i++) {
        snprintf(cid, sizeof(cid), "M%d", i);
        decide(fh, 0, T0 + 10 + i, cid, "U1", fine_u1, "SP-01", NULL);
    }
    return fh;
}

static void test_disparity(void **state)
{
    rk_fakehost *fh;
    (void)state;
    fh = disparity_case(199.99);                    /* just below 2.0 */
    assert_int_equal(rk_fh_count(fh, "disparity"), 0);
    rk_fh_free(fh);
    fh = disparity_case(200);                       /* at 2.0 */
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    assert_string_equal(subj(fh, 0, "unit_id"), "U1");
    assert_string_equal(subj(fh, 0, "item_code"), "SP-01");
    assert_null(subj(fh, 0, "case_id"));
    assert_true(num(fh, 0, "value") == 2.0 && num(fh, 0, "threshold") == 2.0);
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "单位U1近90天对事项SP-01的5件处罚罚款中位数200元，"
                        "是其他单位5件中位数100元的2倍（阈值2倍），同案不同罚");
    rk_fh_free(fh);
    fh = disparity_case(50);                        /* at 1 / 2.0 */
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    assert_true(num(fh, 0, "value") == 0.5 && num(fh, 0, "threshold") == 0.5);
    rk_fh_free(fh);
    fh = disparity_case(50.01);
    assert_int_equal(rk_fh_count(fh, "disparity"), 0);
    rk_fh_free(fh);
}

/* An amendment replaces the decision in the medians: correcting U1's 5th
 * decision from 100 to 200 makes its median 200. */
static void test_disparity_amendment_and_snapshot(void **state)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    char cid[16];
    int i;
    (void)state;
    for (i = 0; i < 5; i++) {
        snprintf(cid, sizeof(cid), "O%d", i);
        decide(fh, 0, T0 + i, cid, "U2", 100, "SP-01", NULL);
    }
    for (i = 0; i < 5; i++) {
        snprintf(cid, sizeof(cid), "M%d", i);
        decide(fh, 0, T0 + 10 + i, cid, "U1", i < 2 ? 100 : 200, "SP-01", NULL);
    }
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);     /* 200 vs 100 */
    assert_int_equal(rk_fh_roundtrip(fh, "{\"cooldown\":\"0s\"}"), 0);
    assert_null(rk_fh_check_corrupt_restore(fh, 0));
    assert_int_equal(rk__det_discretion.tracked_keys(fh->self), 10);
    decide(fh, RK_EVF_AMENDED, T0 + 20, "M4", "U1", 100, "SP-01", NULL);
    assert_int_equal(rk__det_discretion.tracked_keys(fh->self), 10);
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);     /* median now 100 */
    decide(fh, RK_EVF_AMENDED, T0 + 21, "M4", "U1", 200, "SP-01", NULL);
    assert_int_equal(rk_fh_count(fh, "disparity"), 2);
    rk_fh_advance(fh, T0 + 100 * DAY);
    assert_int_equal(rk__det_discretion.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_config_errors(void **state)
{
    char err[256];
    (void)state;
    assert_null(rk_fh_new(&rk__det_discretion, "{\"max_ratio\":1}", err, sizeof(err)));
    assert_string_equal(err, "max_ratio: expected a number greater than 1");
    assert_null(rk_fh_new(&rk__det_discretion, "{\"min_cases\":\"5\"}", err, sizeof(err)));
    assert_string_equal(err, "min_cases: expected an integer from 1 to 1000000");
}

/* Every rule's sentence in Chinese and English, with the names list
 * knowing the unit and the items and knowing neither. */
static void summaries(int en, int names, const char *const want[5])
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    char cid[16];
    size_t i, n;
    rk_fh_language(fh, en ? "en" : "zh-CN");
    if (names) {
        rk_fh_name(fh, "unit", "U1", "银川市市场监督管理局兴庆分局");
        rk_fh_name(fh, "item", "SP-01", "未取得食品经营许可从事食品经营活动");
        rk_fh_name(fh, "item", "NP-1", "首次未按规定公示\"营业执照\"");
        rk_fh_name(fh, "item", "LT-1", "超范围经营");
    }
    assert_int_equal(rk_fh_list(fh, "benchmarks", "item_code,level,min_fine,max_fine\n"
                                "SP-01,,10000,50000\n"), 0);
    assert_int_equal(rk_fh_list(fh, "exempt", "item_code,kind\nNP-1,no_penalty\nLT-1,lighter\n"),
                     0);
    decide(fh, 0, T0, "C1", "U1", 62500, "SP-01", NULL);             /* over */
    decide(fh, 0, T0, "C2", "U1", 8000.5, "SP-01", NULL);            /* under, with jiao */
    decide(fh, 0, T0, "C3", "U1", 0, "NP-1", ",\"confiscation\":1500");
    decide(fh, 0, T0, "C4", "U1", 500, "LT-1", ",\"leniency\":\"none\"");
    for (i = 0; i < 5; i++) {
        snprintf(cid, sizeof(cid), "O%zu", i);
        decide(fh, 0, T0 + 10 + (int64_t)i, cid, "U2", 4000, "LT-1", ",\"leniency\":\"lighter\"");
    }
    for (i = 0; i < 5; i++) {
        snprintf(cid, sizeof(cid), "M%zu", i);
        decide(fh, 0, T0 + 20 + (int64_t)i, cid, "U1", 10000, "LT-1",
               ",\"leniency\":\"lighter\"");
    }
    n = (size_t)rk_fh_count(fh, NULL);
    assert_int_equal(n, 5);
    for (i = 0; i < n; i++)
        assert_string_equal(alert_str(fh, i, "summary"), want[i]);
    assert_true(num(fh, 0, "value") == 62500 && num(fh, 0, "threshold") == 50000);
    assert_true(num(fh, 1, "value") == 8000.5 && num(fh, 1, "threshold") == 10000);
    assert_true(num(fh, 2, "value") == 1500 && num(fh, 2, "threshold") == 0);
    assert_true(num(fh, 4, "value") == 2.5 && num(fh, 4, "threshold") == 2);
    rk_fh_free(fh);
}

static void test_summaries(void **state)
{
    static const char *const zh[5] = {
        "单位U1对案件C1（事项SP-01）罚款6.25万元，超出裁量基准1万元至5万元",
        "单位U1对案件C2（事项SP-01）罚款8000.5元，超出裁量基准1万元至5万元",
        "单位U1对案件C3（事项NP-1，属包容免罚清单）仍罚没1500元",
        "单位U1对案件C4（事项LT-1，属从轻处罚清单）未从轻处罚，罚没500元",
        "单位U1近90天对事项LT-1的5件处罚罚款中位数1万元，是其他单位5件中位数4000元的2.5倍"
        "（阈值2倍），同案不同罚",
    };
    static const char *const zh_names[5] = {
        "银川市市场监督管理局兴庆分局对案件C1（未取得食品经营许可从事食品经营活动）罚款6.25万元，"
        "超出裁量基准1万元至5万元",
        "银川市市场监督管理局兴庆分局对案件C2（未取得食品经营许可从事食品经营活动）罚款8000.5元，"
        "超出裁量基准1万元至5万元",
        "银川市市场监督管理局兴庆分局对案件C3（首次未按规定公示\"营业执照\"，属包容免罚清单）"
        "仍罚没1500元",
        "银川市市场监督管理局兴庆分局对案件C4（超范围经营，属从轻处罚清单）未从轻处罚，罚没500元",
        "银川市市场监督管理局兴庆分局近90天对超范围经营的5件处罚罚款中位数1万元，"
        "是其他单位5件中位数4000元的2.5倍（阈值2倍），同案不同罚",
    };
    static const char *const en[5] = {
        "Unit U1 fined 62,500 yuan in case C1 (item SP-01), outside the discretion benchmark "
        "of 10,000 yuan to 50,000 yuan.",
        "Unit U1 fined 8000.5 yuan in case C2 (item SP-01), outside the discretion benchmark "
        "of 10,000 yuan to 50,000 yuan.",
        "Unit U1 still imposed 1,500 yuan of fines and confiscations in case C3 although "
        "item NP-1 is on the no-penalty list.",
        "Unit U1 imposed 500 yuan of fines and confiscations in case C4 without the lighter "
        "penalty that item LT-1 on the lighter-penalty list calls for.",
        "The median fine of unit U1 for item LT-1 in the last 90 days was 10,000 yuan "
        "(5 cases), 2.5 times the other units' 4,000 yuan (5 cases; threshold 2 times): "
        "same case, different penalty.",
    };
    static const char *const en_names[5] = {
        "银川市市场监督管理局兴庆分局 fined 62,500 yuan in case C1 (未取得食品经营许可从事食品经营活动), "
        "outside the discretion benchmark of 10,000 yuan to 50,000 yuan.",
        "银川市市场监督管理局兴庆分局 fined 8000.5 yuan in case C2 (未取得食品经营许可从事食品经营活动), "
        "outside the discretion benchmark of 10,000 yuan to 50,000 yuan.",
        "银川市市场监督管理局兴庆分局 still imposed 1,500 yuan of fines and confiscations in case C3 "
        "although 首次未按规定公示\"营业执照\" is on the no-penalty list.",
        "银川市市场监督管理局兴庆分局 imposed 500 yuan of fines and confiscations in case C4 "
        "without the lighter penalty that 超范围经营 on the lighter-penalty list calls for.",
        "The median fine of 银川市市场监督管理局兴庆分局 for 超范围经营 in the last 90 days was "
        "10,000 yuan (5 cases), 2.5 times the other units' 4,000 yuan (5 cases; threshold 2 "
        "times): same case, different penalty.",
    };
    (void)state;
    summaries(0, 0, zh);
    summaries(0, 1, zh_names);
    summaries(1, 0, en);
    summaries(1, 1, en_names);
}

/* ---- lifecycle ---- */

#define H INT64_C(3600000)

static json_int_t nint(rk_fakehost *fh, size_t i, const char *field)
{
    return json_integer_value(json_object_get(rk_fh_notice(fh, i), field));
}

static const char *nstr(rk_fakehost *fh, size_t i, const char *field)
{
    return json_string_value(json_object_get(rk_fh_notice(fh, i), field));
}

static const char *nsubj(rk_fakehost *fh, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_object_get(rk_fh_notice(fh, i), "subject"),
                                              field));
}

/* out_of_benchmark: an amendment that brings the fine within the
 * benchmark retracts the alert (after a snapshot and restore); one that
 * stays outside keeps it and raises no second alert. */
static void test_benchmark_retracted(void **state)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    (void)state;
    assert_int_equal(rk_fh_list(fh, "benchmarks",
                                "item_code,level,min_fine,max_fine\nSP-01,,1000,5000\n"), 0);
    decide(fh, 0, T0, "C1", "U1", 6000, "SP-01", NULL);
    decide(fh, 0, T0, "C2", "U1", 7000, "SP-01", NULL);
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 2);
    assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    decide(fh, RK_EVF_AMENDED, T0 + H, "C2", "U1", 8000, "SP-01", NULL);
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 2);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    decide(fh, RK_EVF_AMENDED, T0 + 2 * H, "C1", "U1", 4000, "SP-01", NULL);
    assert_int_equal(rk_fh_notice_count(fh, "out_of_benchmark", "retracted"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 2 * H);
    assert_string_equal(nsubj(fh, 0, "case_id"), "C1");
    assert_string_equal(nsubj(fh, 0, "unit_id"), "U1");
    assert_string_equal(nsubj(fh, 0, "item_code"), "SP-01");
    assert_string_equal(nstr(fh, 0, "trigger_key"), "C1");
    assert_string_equal(nstr(fh, 0, "reason"), "更正后的处罚决定表明，单位U1对案件C1（事项SP-01）的罚款在裁量基准范围内。");
    /* A second correction of the case has nothing open to retract. */
    decide(fh, RK_EVF_AMENDED, T0 + 3 * H, "C1", "U1", 4500, "SP-01", NULL);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    /* Alerts older than 30 days are forgotten: no retraction after. */
    rk_fh_advance(fh, T0 + 31 * DAY);
    decide(fh, RK_EVF_AMENDED, T0 + 31 * DAY, "C2", "U1", 4000, "SP-01", NULL);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);
}

/* exempt_fined: an amendment that drops the fine on a no-penalty item, or
 * grants leniency on a lighter one, retracts. */
static void test_exempt_retracted(void **state)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    (void)state;
    rk_fh_language(fh, "en");
    assert_int_equal(rk_fh_list(fh, "exempt", "item_code,kind\nNP-1,no_penalty\nLT-1,lighter\n"),
                     0);
    decide(fh, 0, T0, "C1", "U1", 500, "NP-1", NULL);
    decide(fh, 0, T0, "C2", "U1", 500, "LT-1", ",\"leniency\":\"none\"");
    assert_int_equal(rk_fh_count(fh, "exempt_fined"), 2);
    decide(fh, RK_EVF_AMENDED, T0 + H, "C1", "U1", 0, "NP-1", NULL);
    decide(fh, RK_EVF_AMENDED, T0 + H, "C2", "U1", 300, "LT-1", ",\"leniency\":\"lighter\"");
    assert_int_equal(rk_fh_notice_count(fh, "exempt_fined", "retracted"), 2);
    assert_string_equal(nstr(fh, 0, "reason"),
                        "The amended decision of unit U1 in case C1 (item NP-1) complies with the "
                        "exemption list.");
    assert_string_equal(nsubj(fh, 1, "case_id"), "C2");
    rk_fh_free(fh);
}

/* disparity resolves when the other units' decisions leave the window
 * (at T0 + 90d the first leaves: 4 are too few), keep_firing_for later,
 * also across a snapshot and restore. */
static void test_disparity_resolved(void **state)
{
    rk_fakehost *fh = disparity_case(200);
    (void)state;
    fh->open_ttl = 400 * DAY;       /* alerts.open_ttl longer than the 90 days */
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    rk_fh_advance(fh, T0 + 90 * DAY + H);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 90 * DAY + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0 + 14);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 90 * DAY + H);
    assert_string_equal(nsubj(fh, 0, "unit_id"), "U1");
    assert_string_equal(nsubj(fh, 0, "item_code"), "SP-01");
    assert_string_equal(nstr(fh, 0, "reason"),
                        "单位U1对事项SP-01的罚款中位数与其他单位中位数的差距已回到2倍以内，且已持续1小时。");
    rk_fh_free(fh);

    /* Another unit's decisions raise the others' median to 150: the ratio
     * falls under 2 at that decision; resolved an hour later. */
    fh = disparity_case(200);
    decide(fh, 0, T0 + DAY, "P1", "U4", 200, "SP-01", NULL);
    decide(fh, 0, T0 + DAY + 1, "P2", "U4", 200, "SP-01", NULL);
    decide(fh, 0, T0 + DAY + 2, "P3", "U4", 200, "SP-01", NULL);
    decide(fh, 0, T0 + DAY + 3, "P4", "U4", 200, "SP-01", NULL);
    decide(fh, 0, T0 + DAY + 4, "P5", "U4", 200, "SP-01", NULL);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + DAY + 4 + H + 1);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "resolved"), 1);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + DAY + 4 + H);
    rk_fh_free(fh);
}

/* An amendment of one of U1's decisions that brings its median back to
 * the others' retracts the disparity alert. */
static void test_disparity_retracted(void **state)
{
    rk_fakehost *fh = disparity_case(200);
    (void)state;
    decide(fh, RK_EVF_AMENDED, T0 + H, "M4", "U1", 100, "SP-01", NULL);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "retracted"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0 + 14);
    assert_int_equal(nint(fh, 0, "n_evidence"), 1);
    rk_fh_advance(fh, T0 + 200 * DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_benchmark),
        cmocka_unit_test(test_exempt),
        cmocka_unit_test(test_disparity),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_disparity_amendment_and_snapshot),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_benchmark_retracted),
        cmocka_unit_test(test_exempt_retracted),
        cmocka_unit_test(test_disparity_resolved),
        cmocka_unit_test(test_disparity_retracted),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_mem);
}
