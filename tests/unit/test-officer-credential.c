/* tests/unit/test-officer-credential.c - officer_credential through the
 * fake host with a credentials list parsed from CSV: valid until the day
 * before, on the day, no expiry, not listed, no list loaded, cases,
 * amendments. */
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

#define FILED "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"%s\",\"unit_id\":\"U1\"," \
              "\"officers\":[\"%s\"],\"enterprise_id\":\"E1\",\"planned_at\":\"%s\"}"

static const char *creds =
    "officer_id,unit_id,valid_from,valid_until\r\n"
    "O_UNTIL,U1,2024-01-01,2025-03-09\r\n"
    "O_FOREVER,U1,2024-01-01,\r\n"
    "O_LATER,U1,2025-04-01,2026-01-01\r\n";

static void test_days(void **state)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    (void)state;
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    /* valid_until 2025-03-09: the 9th (even late evening, +08:00) is fine */
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T1", "O_UNTIL",
                           "2025-03-09T23:30:00+08:00"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 0);
    /* the 10th (16:30Z on the 9th is 00:30 on the 10th in +08:00) is not */
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T2", "O_UNTIL",
                           "2025-03-09T16:30:00Z"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 1);
    assert_string_equal(subj(fh, 0, "officer_id"), "O_UNTIL");
    assert_string_equal(subj(fh, 0, "unit_id"), "U1");
    assert_string_equal(subj(fh, 0, "task_id"), "T2");
    assert_string_equal(alert_str(fh, 0, "severity"), "critical");
    assert_true(num(fh, 0, "value") == 1 && num(fh, 0, "threshold") == 1);
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "单位U1执法人员O_UNTIL在检查任务T2的计划日期2025-03-10未持有效执法证件");
    /* no expiry */
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T3", "O_FOREVER",
                           "2035-01-01T10:00:00+08:00"), 0);
    /* not yet valid, and not listed */
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T4", "O_LATER",
                           "2025-03-31T10:00:00+08:00"), 0);
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T5", "O_NOBODY",
                           "2025-03-01T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 3);
    assert_string_equal(subj(fh, 2, "officer_id"), "O_NOBODY");
    rk_fh_free(fh);
}

/* Without a credentials list nothing fires; a case is checked on its ts. */
static void test_no_list_and_cases(void **state)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    (void)state;
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T1", "O_NOBODY",
                           "2025-03-01T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    assert_int_equal(sendf(fh, 0, "{\"type\":\"case.opened\",\"ts\":\"2025-03-10T09:00:00+08:00\","
                           "\"case_id\":\"C1\",\"unit_id\":\"U1\",\"source\":\"report\","
                           "\"officers\":[\"O_UNTIL\",\"O_FOREVER\",\"O_UNTIL\"]}"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 1);    /* once per officer */
    assert_string_equal(subj(fh, 0, "case_id"), "C1");
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "单位U1执法人员O_UNTIL在案件C1立案当日2025-03-10未持有效执法证件");
    rk_fh_free(fh);
}

/* An amendment that reschedules the filing into the valid period fires
 * nothing new; one that moves it out fires. */
static void test_amendment(void **state)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    (void)state;
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T1", "O_UNTIL",
                           "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(sendf(fh, RK_EVF_AMENDED, FILED, (long long)T0 + 1, "T1", "O_UNTIL",
                           "2025-03-12T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 1);
    rk_fh_free(fh);
}

/* Both sentences (a filing, a case) in Chinese and English, with the
 * names list knowing the unit and the officer and not. */
static void summaries(int en, int names, const char *want_filing, const char *want_case)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    rk_fh_language(fh, en ? "en" : "zh-CN");
    if (names) {
        rk_fh_name(fh, "unit", "U1", "银川市市场监督管理局兴庆分局");
        rk_fh_name(fh, "officer", "O_UNTIL", "王某");
    }
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T2", "O_UNTIL",
                           "2025-03-09T16:30:00Z"), 0);
    assert_int_equal(sendf(fh, 0, "{\"type\":\"case.opened\",\"ts\":\"2025-03-10T09:00:00+08:00\","
                           "\"case_id\":\"C1\",\"unit_id\":\"U1\",\"source\":\"report\","
                           "\"officers\":[\"O_UNTIL\"]}"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 2);
    assert_true(num(fh, 1, "value") == 1 && num(fh, 1, "threshold") == 1);
    assert_string_equal(alert_str(fh, 0, "summary"), want_filing);
    assert_string_equal(alert_str(fh, 1, "summary"), want_case);
    rk_fh_free(fh);
}

static void test_summaries(void **state)
{
    (void)state;
    summaries(0, 0, "单位U1执法人员O_UNTIL在检查任务T2的计划日期2025-03-10未持有效执法证件",
              "单位U1执法人员O_UNTIL在案件C1立案当日2025-03-10未持有效执法证件");
    summaries(0, 1, "银川市市场监督管理局兴庆分局执法人员王某在检查任务T2的计划日期2025-03-10"
              "未持有效执法证件",
              "银川市市场监督管理局兴庆分局执法人员王某在案件C1立案当日2025-03-10未持有效执法证件");
    summaries(1, 0, "Officer O_UNTIL of unit U1 held no valid enforcement credential on "
              "2025-03-10, the planned date of inspection task T2.",
              "Officer O_UNTIL of unit U1 held no valid enforcement credential on "
              "2025-03-10, the day case C1 was opened.");
    summaries(1, 1, "Officer 王某 of 银川市市场监督管理局兴庆分局 held no valid enforcement credential on "
              "2025-03-10, the planned date of inspection task T2.",
              "Officer 王某 of 银川市市场监督管理局兴庆分局 held no valid enforcement credential on "
              "2025-03-10, the day case C1 was opened.");
}

/* ---- lifecycle ---- */

static json_int_t nint(rk_fakehost *fh, size_t i, const char *field)
{
    return json_integer_value(json_object_get(rk_fh_notice(fh, i), field));
}

static const char *nsubj(rk_fakehost *fh, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_object_get(rk_fh_notice(fh, i), "subject"),
                                              field));
}

#define FILED2 "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"%s\",\"unit_id\":\"U1\"," \
               "\"officers\":[%s],\"enterprise_id\":\"E1\",\"planned_at\":\"%s\"}"

/* An amendment that moves the filing back into the credential's validity
 * retracts the alert (across a snapshot and restore); one that keeps it
 * outside keeps it and raises no second alert. Never resolved. */
static void test_retracted_by_reschedule(void **state)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    (void)state;
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T1", "O_UNTIL",
                           "2025-03-12T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 1);
    assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    assert_int_equal(sendf(fh, RK_EVF_AMENDED, FILED, (long long)T0 + 1, "T1", "O_UNTIL",
                           "2025-03-13T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 1);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    assert_int_equal(sendf(fh, RK_EVF_AMENDED, FILED, (long long)T0 + 2, "T1", "O_UNTIL",
                           "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_notice_count(fh, "uncertified", "retracted"), 1);
    assert_int_equal(nint(fh, 0, "ts"), T0);
    assert_int_equal(nint(fh, 0, "change_ts"), T0 + 2);
    assert_string_equal(nsubj(fh, 0, "officer_id"), "O_UNTIL");
    assert_string_equal(nsubj(fh, 0, "unit_id"), "U1");
    assert_string_equal(nsubj(fh, 0, "task_id"), "T1");
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "trigger_key")),
                        "T1");
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "reason")),
                        "更正后的检查任务T1备案表明，单位U1执法人员O_UNTIL在计划日期持有有效执法证件或"
                        "未参与检查。");
    rk_fh_advance(fh, T0 + 100 * DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    assert_int_equal(rk__det_officer_credential.tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* An amendment that replaces the officer retracts that officer's alert
 * only; the other officer's stands. After 30 days nothing is kept. */
static void test_retracted_by_other_officers(void **state)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    (void)state;
    rk_fh_language(fh, "en");
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    assert_int_equal(sendf(fh, 0, FILED2, (long long)T0, "T1", "\"O_NOBODY\",\"O_LATER\"",
                           "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 2);
    assert_int_equal(sendf(fh, RK_EVF_AMENDED, FILED2, (long long)T0 + 1, "T1",
                           "\"O_FOREVER\",\"O_LATER\"", "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_notice_count(fh, "uncertified", "retracted"), 1);
    assert_string_equal(nsubj(fh, 0, "officer_id"), "O_NOBODY");
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "reason")),
                        "The amended filing of inspection task T1 shows officer O_NOBODY of "
                        "unit U1 held a valid credential on its planned date or did not take "
                        "part.");
    assert_int_equal(rk_fh_count(fh, "uncertified"), 2);
    /* O_LATER's alert stays open, kept by the host under the task; the
     * daemon's alerts.open_ttl (30 days) closes it, and an amendment after
     * that retracts nothing */
    assert_int_equal(rk__det_officer_credential.tracked_keys(fh->self), 0);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "uncertified", "T1", NULL, 0), 1);
    rk_fh_advance(fh, T0 + 30 * DAY + 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "uncertified", "T1", NULL, 0), 0);
    assert_int_equal(sendf(fh, RK_EVF_AMENDED, FILED2, (long long)T0 + 30 * DAY + 1, "T1",
                           "\"O_FOREVER\"", "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);
}

/* The same with a host that keeps no open alerts (the set keeps them, as
 * before, and writes them in its snapshot): the snapshot refuses
 * corruption, and the set forgets the filing's alerts after 30 days. */
static void test_retracted_kept_by_set(void **state)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    (void)state;
    fh->open = NULL;
    rk_fh_language(fh, "en");
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    assert_int_equal(sendf(fh, 0, FILED2, (long long)T0, "T1", "\"O_NOBODY\",\"O_LATER\"",
                           "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(sendf(fh, RK_EVF_AMENDED, FILED2, (long long)T0 + 1, "T1",
                           "\"O_FOREVER\",\"O_LATER\"", "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_notice_count(fh, "uncertified", "retracted"), 1);
    assert_string_equal(nsubj(fh, 0, "officer_id"), "O_NOBODY");
    assert_int_equal(rk_fh_count(fh, "uncertified"), 2);
    assert_null(rk_fh_check_corrupt_restore(fh, 0));
    assert_int_equal(rk__det_officer_credential.tracked_keys(fh->self), 1);
    fh->open_ttl = 60 * DAY;        /* the set forgets first */
    rk_fh_advance(fh, T0 + 30 * DAY + 1);
    assert_int_equal(rk__det_officer_credential.tracked_keys(fh->self), 0);
    assert_int_equal(sendf(fh, RK_EVF_AMENDED, FILED2, (long long)T0 + 30 * DAY + 1, "T1",
                           "\"O_FOREVER\"", "2025-03-05T10:00:00+08:00"), 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    rk_fh_free(fh);
}

/* clock.timezone -05:00 (New York winter): 2025-03-10T03:30Z is still the
 * 9th there, so O_UNTIL (valid until the 9th) is fine; 2025-03-10T05:30Z
 * is the 10th there and fires, and the summary names the 10th, the day in
 * that zone. A host of ABI minor 4 (no tz_offset) keeps +08:00 for the
 * sentence. */
static void test_other_timezone(void **state)
{
    rk_fakehost *fh = mk(&rk__det_officer_credential, "{}");
    (void)state;
    fh->tz_offset_s = -5 * 3600;
    assert_int_equal(rk_fh_list(fh, "credentials", creds), 0);
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T1", "O_UNTIL",
                           "2025-03-10T03:30:00Z"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 0);
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T2", "O_UNTIL",
                           "2025-03-10T05:30:00Z"), 0);
    assert_int_equal(rk_fh_count(fh, "uncertified"), 1);
    assert_string_equal(alert_str(fh, 0, "summary"),
                        "单位U1执法人员O_UNTIL在检查任务T2的计划日期2025-03-10未持有效执法证件");
    /* 2025-03-11T02:00Z: the 10th in -05:00, the 11th in +08:00. */
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T3", "O_UNTIL",
                           "2025-03-11T02:00:00Z"), 0);
    assert_string_equal(alert_str(fh, 1, "summary"),
                        "单位U1执法人员O_UNTIL在检查任务T3的计划日期2025-03-10未持有效执法证件");
    fh->api.abi_minor = 4;
    assert_int_equal(sendf(fh, 0, FILED, (long long)T0, "T4", "O_UNTIL",
                           "2025-03-11T02:00:00Z"), 0);
    assert_string_equal(alert_str(fh, 2, "summary"),
                        "单位U1执法人员O_UNTIL在检查任务T4的计划日期2025-03-11未持有效执法证件");
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days),
        cmocka_unit_test(test_no_list_and_cases),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_amendment),
        cmocka_unit_test(test_retracted_by_reschedule),
        cmocka_unit_test(test_other_timezone),
        cmocka_unit_test(test_retracted_by_other_officers),
        cmocka_unit_test(test_retracted_kept_by_set),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_mem);
}
