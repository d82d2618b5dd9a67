/* tests/unit/test-indicators.c - the indicators module
 * (daemon/pipeline/indicators.c) through its API: each indicator's
 * arithmetic, month and quarter boundaries in +08:00, the rolling window,
 * null rates, amendments moving sums, retracted unfiled alerts, joint and
 * excluded inspections, the checkpoint round trip; and the parsing of
 * inspection.filed `kind` and `joint_id`. (Duplicates never reach the
 * module: apply.c drops them first; tests/integration/test-indicators.c
 * sends duplicates through riskd.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "internal.h"
#include "pipeline/indicators.h"

#define H (3600000LL)
#define DAY (86400000LL)
#define TZ (8 * 3600)

static int64_t t(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(rk__parse_rfc3339(s, &ms), 0);
    return ms;
}

static rk__ind *mk(void)
{
    rk__ind_settings s;
    memset(&s, 0, sizeof(s));
    s.window = 30 * DAY;
    s.scan_deadline = 24 * H;
    s.bad_score = 2;
    s.exclude_kinds = 1u << RK_KIND_COMPLAINT;
    s.tz_offset_s = TZ;
    return rk__ind_new(&s);
}

static const char *const O1[] = {"O1"};

static rk_event ev_filed(const char *task, const char *unit, const char *ent, int64_t planned)
{
    rk_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_INSPECTION_FILED;
    ev.task_id = task;
    ev.unit_id = unit;
    ev.enterprise_id = ent;
    ev.officers = O1;
    ev.n_officers = 1;
    ev.region = "R1";
    ev.ts = planned - H;
    ev.planned_at = planned;
    return ev;
}

static rk_event ev_of(rk_event_type type, const char *unit, int64_t ts)
{
    rk_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.unit_id = unit;
    ev.ts = ts;
    ev.task_id = "T?";
    ev.case_id = "C?";
    return ev;
}

static rk__ind_counts get(rk__ind *ind, int scope, const char *key, int period, char *label)
{
    rk__ind_counts c;
    int64_t from, to;
    char l[16];
    rk__ind_get(ind, scope, key, period, &c, &from, &to, label ? label : l);
    return c;
}

static void rate(rk__ind *ind, int scope, const char *key, int period, const char *field,
                 const char *want)
{
    rk__ind_counts c;
    rk__ind_hash h;
    int64_t from = 0, to = 0;
    char l[16];
    size_t i;
    rk__ind_get(ind, scope, key, period, &c, &from, &to, l);
    memset(&h, 0, sizeof(h));
    rk__ind_format(&c, from, to, INT64_MIN, TZ, &h);
    for (i = 0; i < h.nf; i++)
        if (strcmp(h.f[i], field) == 0) {
            assert_string_equal(h.v[i], want);
            return;
        }
    fail_msg("no field %s", field);
}

static void test_quarter_boundary(void **state)
{
    rk__ind *ind = mk();
    rk_event a = ev_filed("T1", "U1", "E1", t("2025-09-30T23:59:59+08:00"));
    rk_event b = ev_filed("T2", "U1", "E2", t("2025-10-01T00:00:00+08:00"));
    char label[16];
    (void)state;
    assert_int_equal(rk__ind_event(ind, &a), 0);
    assert_int_equal(rk__ind_event(ind, &b), 0);
    rk__ind_advance(ind, t("2025-10-01T00:00:01+08:00"));
    assert_int_equal(get(ind, RK_IND_UNIT, "U1", RK_IND_QUARTER, label).c[RK_IC_FILINGS], 1);
    assert_string_equal(label, "2025Q4");
    assert_int_equal(get(ind, RK_IND_UNIT, "U1", RK_IND_PREV_QUARTER, label).c[RK_IC_FILINGS], 1);
    assert_string_equal(label, "2025Q3");
    assert_int_equal(get(ind, RK_IND_REGION, "R1", RK_IND_PREV_MONTH, label).c[RK_IC_FILINGS], 1);
    assert_string_equal(label, "2025-09");
    assert_int_equal(get(ind, RK_IND_OFFICER, "O1", RK_IND_MONTH, label).c[RK_IC_FILINGS], 1);
    assert_string_equal(label, "2025-10");
    assert_int_equal(get(ind, RK_IND_ALL, "all", RK_IND_WINDOW, label).c[RK_IC_FILINGS], 2);
    assert_string_equal(label, "window");
    rk__ind_free(ind);
}

static void test_window_days(void **state)
{
    rk__ind *ind = mk();
    rk_event old = ev_filed("T1", "U1", "E1", t("2025-09-01T23:59:59+08:00"));
    rk_event in = ev_filed("T2", "U1", "E1", t("2025-09-02T00:00:00+08:00"));
    int64_t from, to;
    rk__ind_counts c;
    char label[16], buf[40];
    (void)state;
    rk__ind_event(ind, &old);
    rk__ind_event(ind, &in);
    /* 30 days ending with 2025-10-01: from 2025-09-02 00:00 */
    rk__ind_advance(ind, t("2025-10-01T12:00:00+08:00"));
    rk__ind_get(ind, RK_IND_UNIT, "U1", RK_IND_WINDOW, &c, &from, &to, label);
    assert_int_equal(c.c[RK_IC_FILINGS], 1);
    rk__format_rfc3339(from, TZ, buf, sizeof(buf));
    assert_string_equal(buf, "2025-09-02T00:00:00.000+08:00");
    rk__format_rfc3339(to, TZ, buf, sizeof(buf));
    assert_string_equal(buf, "2025-10-02T00:00:00.000+08:00");
    rk__ind_free(ind);
}

static void test_null_rates(void **state)
{
    rk__ind *ind = mk();
    rk_event c = ev_of(RK_EV_CASE_COMPLAINT, "U1", t("2025-09-10T10:00:00+08:00"));
    (void)state;
    rk__ind_event(ind, &c);
    rk__ind_advance(ind, c.ts);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "complaints", "1");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "filing_rate", "null");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "scan_rate", "null");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "rating_rate", "null");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "bad_rating_share", "null");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "inspections_per_enterprise", "null");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "lenient_share", "null");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "correction_rate", "null");
    rk__ind_free(ind);
}

static void test_filing_rate_unfiled_retract(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event f1 = ev_filed("T1", "U1", "E1", d), f2 = ev_filed("T2", "U1", "E2", d),
             f3 = ev_filed("T3", "U1", "E3", d);
    (void)state;
    rk__ind_event(ind, &f1);
    rk__ind_event(ind, &f2);
    rk__ind_event(ind, &f3);
    rk__ind_unfiled(ind, d, "U1");
    rk__ind_advance(ind, d);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "unfiled", "1");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "filing_rate", "0.75");
    rate(ind, RK_IND_REGION, "R1", RK_IND_WINDOW, "filing_rate", "0.75");  /* unit's region */
    rate(ind, RK_IND_ALL, "all", RK_IND_QUARTER, "filing_rate", "0.75");
    rk__ind_unfiled_retract(ind, d, "U1");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "filing_rate", "1");
    assert_true(rk__ind_is_unfiled_rule("unfiled_inspection", "case_without_filing"));
    assert_false(rk__ind_is_unfiled_rule("unfiled_inspection", "filed_not_scanned"));
    rk__ind_free(ind);
}

static void test_scan_rate(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event f1 = ev_filed("T1", "U1", "E1", d), f2 = ev_filed("T2", "U1", "E2", d),
             f3 = ev_filed("T3", "U1", "E3", d), s;
    (void)state;
    rk__ind_event(ind, &f1);
    rk__ind_event(ind, &f2);
    rk__ind_event(ind, &f3);
    s = ev_of(RK_EV_INSPECTION_SCANNED, "U1", d + H);
    s.task_id = "T1";
    rk__ind_event(ind, &s);
    rk__ind_advance(ind, d + 24 * H);       /* not passed yet: deadline is d + 24h */
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "scan_rate", "null");
    rk__ind_advance(ind, d + 24 * H + 1);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "deadline_passed", "3");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "scan_rate", "0.333333");
    /* a scan within the deadline that arrives late still counts */
    s.task_id = "T2";
    s.ts = d + 23 * H;
    rk__ind_event(ind, &s);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "scan_rate", "0.666667");
    /* after the deadline it does not */
    s.task_id = "T3";
    s.ts = d + 25 * H;
    rk__ind_event(ind, &s);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "scan_rate", "0.666667");
    rate(ind, RK_IND_OFFICER, "O1", RK_IND_MONTH, "scanned", "3");
    rk__ind_free(ind);
}

static void test_ratings(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event f1 = ev_filed("T1", "U1", "E1", d), f2 = ev_filed("T2", "U1", "E2", d), s, r;
    (void)state;
    rk__ind_event(ind, &f1);
    rk__ind_event(ind, &f2);
    s = ev_of(RK_EV_INSPECTION_SCANNED, "U1", d);
    s.task_id = "T1";
    rk__ind_event(ind, &s);
    s.task_id = "T2";
    rk__ind_event(ind, &s);
    r = ev_of(RK_EV_INSPECTION_RATED, "U1", d + H);
    r.task_id = "T1";
    r.score = 2;                            /* bad */
    rk__ind_event(ind, &r);
    r.score = 5;                            /* a second rating of T1: not a second rated */
    r.enterprise_id = "other";
    rk__ind_event(ind, &r);
    rk__ind_advance(ind, d + H);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "rating_rate", "0.5");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "bad_rating_share", "0.5");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "ratings", "2");
    rk__ind_free(ind);
}

static void test_amendments_move_sums(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event c = ev_of(RK_EV_CASE_DECIDED, "U1", d), f = ev_filed("T1", "U1", "E1", d);
    (void)state;
    c.case_id = "C1";
    c.fine = 1000;
    c.confiscation = 0.5;
    c.leniency = RK_LENIENCY_LIGHTER;
    rk__ind_event(ind, &c);
    rk__ind_event(ind, &f);
    rk__ind_advance(ind, d);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "fines", "1000.5");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "lenient_share", "1");
    /* corrected fine, no leniency */
    c.fine = 300;
    c.confiscation = 0;
    c.leniency = RK_LENIENCY_NONE;
    c.flags = RK_EVF_AMENDED;
    rk__ind_event(ind, &c);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "fines", "300");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "cases_decided", "1");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "lenient_share", "0");
    rate(ind, RK_IND_ALL, "all", RK_IND_WINDOW, "fines", "300");
    /* a rescheduled filing moves to its new unit and month */
    f.unit_id = "U2";
    f.planned_at = t("2025-10-02T10:00:00+08:00");
    f.flags = RK_EVF_AMENDED;
    rk__ind_event(ind, &f);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "filings", "0");
    rk__ind_advance(ind, t("2025-10-02T11:00:00+08:00"));
    rate(ind, RK_IND_UNIT, "U2", RK_IND_MONTH, "filings", "1");
    rate(ind, RK_IND_ALL, "all", RK_IND_PREV_MONTH, "filings", "0");
    rate(ind, RK_IND_ALL, "all", RK_IND_MONTH, "filings", "1");
    rk__ind_free(ind);
}

static void test_inspections_per_enterprise(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event j1 = ev_filed("T1", "U1", "E1", d), j2 = ev_filed("T2", "U1", "E1", d),
             s1 = ev_filed("T3", "U1", "E1", d + DAY), e2 = ev_filed("T4", "U1", "E2", d),
             cp = ev_filed("T5", "U1", "E3", d);
    (void)state;
    j1.joint_id = j2.joint_id = "J1";
    cp.kind = RK_KIND_COMPLAINT;
    rk__ind_event(ind, &j1);
    rk__ind_event(ind, &j2);
    rk__ind_event(ind, &s1);
    rk__ind_event(ind, &e2);
    rk__ind_event(ind, &cp);
    rk__ind_advance(ind, d + DAY);
    /* counted: J1 once, T3, T4 = 3; enterprises E1, E2 = 2 */
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "counted_inspections", "3");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "enterprises", "2");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "inspections_per_enterprise", "1.5");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_WINDOW, "inspections_per_enterprise", "1.5");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_QUARTER, "inspections_per_enterprise", "1.5");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "filings", "5");
    rk__ind_free(ind);
}

static void test_cases_reviews(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event o = ev_of(RK_EV_CASE_OPENED, "U1", d), r = ev_of(RK_EV_CASE_REVIEW, "U1", d);
    (void)state;
    rk__ind_event(ind, &o);
    r.outcome = RK_OUTCOME_REVOKED;
    rk__ind_event(ind, &r);
    r.outcome = RK_OUTCOME_UPHELD;
    rk__ind_event(ind, &r);
    r.outcome = RK_OUTCOME_CONFIRMED_ILLEGAL;
    rk__ind_event(ind, &r);
    rk__ind_advance(ind, d);
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "cases_opened", "1");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "reviews", "3");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "corrections", "2");
    rate(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, "correction_rate", "0.666667");
    rk__ind_free(ind);
}

static void test_snapshot_roundtrip(void **state)
{
    rk__ind *a = mk(), *b = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event f = ev_filed("T1", "U1", "E1", d), f2 = ev_filed("T2", "U1", "E1", d);
    rk_buf buf;
    int p;
    (void)state;
    memset(&buf, 0, sizeof(buf));
    rk__ind_event(a, &f);
    rk__ind_unfiled(a, d, "U1");
    rk__ind_advance(a, d);
    assert_int_equal(rk__ind_snapshot(a, &buf), 0);
    assert_int_equal(rk__ind_restore(b, buf.data, buf.len), 0);
    for (p = 0; p < RK_IND_NPERIODS; p++) {
        rk__ind_counts x = get(a, RK_IND_UNIT, "U1", p, NULL), y = get(b, RK_IND_UNIT, "U1", p, NULL);
        assert_memory_equal(&x, &y, sizeof(x));
    }
    /* the deadline still pending in the restored copy passes there too */
    rk__ind_event(a, &f2);
    rk__ind_event(b, &f2);
    rk__ind_advance(a, d + 2 * DAY);
    rk__ind_advance(b, d + 2 * DAY);
    rate(b, RK_IND_UNIT, "U1", RK_IND_WINDOW, "deadline_passed", "2");
    {
        rk__ind_counts x = get(a, RK_IND_UNIT, "U1", RK_IND_WINDOW, NULL),
                       y = get(b, RK_IND_UNIT, "U1", RK_IND_WINDOW, NULL);
        assert_memory_equal(&x, &y, sizeof(x));
    }
    assert_int_equal(rk__ind_restore(b, "xx", 2), -1);
    rk_buf_free(&buf);
    rk__ind_free(a);
    rk__ind_free(b);
}

static void count_cb(const rk__ind_hash *h, void *ud)
{
    (void)h;
    (*(int *)ud)++;
}

static void test_collect_changed(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-09-10T10:00:00+08:00");
    rk_event f = ev_filed("T1", "U1", "E1", d), c = ev_of(RK_EV_CASE_COMPLAINT, "U2", d);
    bool more;
    int n = 0;
    (void)state;
    rk__ind_event(ind, &f);
    rk__ind_advance(ind, d);
    rk__ind_collect(ind, 1000, 0, count_cb, &n, &more);
    assert_int_equal(n, 12);                /* U1, R1, all, O1 x window, month, quarter */
    assert_false(more);
    n = 0;
    rk__ind_event(ind, &c);                 /* U2 new; all changes */
    rk__ind_collect(ind, 1000, 0, count_cb, &n, &more);
    assert_int_equal(n, 6);
    n = 0;
    rk__ind_mark_all(ind);
    rk__ind_collect(ind, 1000, 0, count_cb, &n, &more);
    assert_int_equal(n, 15);
    rk__ind_free(ind);
}

static void test_parse_kind_joint(void **state)
{
    rk__event_mem mem;
    rk_event ev;
    char err[RK_ERRLEN];
    const char *ok = "{\"type\":\"inspection.filed\",\"ts\":0,\"task_id\":\"T\",\"unit_id\":\"U\","
                     "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"kind\":\"random\","
                     "\"joint_id\":\"J9\"}";
    const char *bad = "{\"type\":\"inspection.filed\",\"ts\":0,\"task_id\":\"T\",\"unit_id\":\"U\","
                      "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"kind\":\"raid\"}";
    const char *badj = "{\"type\":\"inspection.filed\",\"ts\":0,\"task_id\":\"T\",\"unit_id\":\"U\","
                       "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"joint_id\":7}";
    (void)state;
    memset(&mem, 0, sizeof(mem));
    assert_int_equal(rk__event_parse(ok, strlen(ok), &ev, &mem, err, sizeof(err)), RK_PARSE_OK);
    assert_int_equal(ev.kind, RK_KIND_RANDOM);
    assert_string_equal(ev.joint_id, "J9");
    assert_int_equal(rk__event_parse(bad, strlen(bad), &ev, &mem, err, sizeof(err)),
                     RK_PARSE_INVALID);
    assert_non_null(strstr(err, "kind: expected one of"));
    assert_int_equal(rk__event_parse(badj, strlen(badj), &ev, &mem, err, sizeof(err)),
                     RK_PARSE_INVALID);
    assert_non_null(strstr(err, "joint_id:"));
    rk__event_mem_free(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quarter_boundary),
        cmocka_unit_test(test_window_days),
        cmocka_unit_test(test_null_rates),
        cmocka_unit_test(test_filing_rate_unfiled_retract),
        cmocka_unit_test(test_scan_rate),
        cmocka_unit_test(test_ratings),
        cmocka_unit_test(test_amendments_move_sums),
        cmocka_unit_test(test_inspections_per_enterprise),
        cmocka_unit_test(test_cases_reviews),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_collect_changed),
        cmocka_unit_test(test_parse_kind_joint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
