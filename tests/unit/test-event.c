/* tests/unit/test-event.c - unit tests for daemon/lib/event.c.
 *
 * Every event type of riskd(8), INPUT, is parsed with all its optional fields
 * and checked field by field. A table of those complete events then drives
 * the generic bad-input checks: each required field removed or set to null
 * must be "<field>: missing", each id set to a number or "" and each free
 * text set to a number must name the field. The rest covers the special
 * fields (ts, officers, items, score, amounts, enums), unknown types, JSON
 * that is not an object or not JSON at all (duplicate keys, embedded NUL,
 * deep nesting, invalid UTF-8), one-line errors, and reuse of one
 * rk__event_mem across many parses (run under valgrind and ASan). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* 2025-03-01T01:30:00Z */
#define T0 INT64_C(1740792600000)

static rk__event_mem mem;
static rk_event ev;
static char err[RK_ERRLEN];

static int teardown(void **state)
{
    (void)state;
    rk__event_mem_free(&mem);
    return 0;
}

/* Parse a NUL-terminated text (without its NUL). */
static int parse(const char *json)
{
    return rk__event_parse(json, strlen(json), &ev, &mem, err, sizeof err);
}

/* Assert err is one printable ASCII line. */
static void assert_one_line(void)
{
    assert_true(err[0] != '\0');
    for (const unsigned char *p = (const unsigned char *)err; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            fail_msg("unprintable byte 0x%02x in error \"%s\"", *p, err);
}

/* Assert json is dead-lettered with an error that starts with prefix. */
static void expect_err(const char *json, const char *prefix)
{
    int rc = parse(json);
    if (rc != RK_PARSE_INVALID)
        fail_msg("rc %d (want invalid) for %s", rc, json);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\" for %s", err, prefix, json);
    assert_one_line();
}

/* Assert json parses fine. */
static void expect_ok(const char *json)
{
    int rc = parse(json);
    if (rc != RK_PARSE_OK)
        fail_msg("rc %d (%s) for %s", rc, err, json);
}

/* ===================================================================
 * Type names
 * =================================================================== */

static void test_type_names(void **state)
{
    (void)state;
    for (int t = RK_EV_UNKNOWN + 1; t < RK_EV__COUNT; t++) {
        const char *n = rk__event_type_name((rk_event_type)t);
        assert_non_null(n);
        assert_int_equal(rk__event_type_from_name(n), t);
    }
    assert_string_equal(rk__event_type_name(RK_EV_INSPECTION_FILED), "inspection.filed");
    assert_string_equal(rk__event_type_name(RK_EV_CASE_REVIEW), "case.review");
    assert_string_equal(rk__event_type_name(RK_EV_CLOCK_TICK), "clock.tick");
    assert_null(rk__event_type_name(RK_EV_UNKNOWN));
    assert_null(rk__event_type_name(RK_EV__COUNT));
    assert_null(rk__event_type_name((rk_event_type)-1));
    assert_int_equal(rk__event_type_from_name(NULL), RK_EV_UNKNOWN);
    assert_int_equal(rk__event_type_from_name(""), RK_EV_UNKNOWN);
    assert_int_equal(rk__event_type_from_name("Inspection.Filed"), RK_EV_UNKNOWN);
    assert_int_equal(rk__event_type_from_name("case.opened "), RK_EV_UNKNOWN);
}

/* ===================================================================
 * Every type, all optional fields
 * =================================================================== */

static void test_filed(void **state)
{
    (void)state;
    memset(&ev, 0xff, sizeof ev);           /* parse must zero it */
    expect_ok("{\"type\":\"inspection.filed\",\"ts\":\"2025-03-01T09:30:00+08:00\","
              "\"task_id\":\"T1\",\"unit_id\":\"U1\",\"officers\":[\"O1\",\"O2\"],"
              "\"enterprise_id\":\"E1\",\"planned_at\":\"2025-03-01T12:00:00Z\","
              "\"basis\":\"routine\",\"items\":[\"a\",{\"b\":1},3],\"region\":\"R1\","
              "\"extra\":{\"ignored\":true}}");
    assert_int_equal(ev.type, RK_EV_INSPECTION_FILED);
    assert_string_equal(ev.type_name, "inspection.filed");
    assert_int_equal(ev.ts, T0);
    assert_string_equal(ev.task_id, "T1");
    assert_string_equal(ev.unit_id, "U1");
    assert_string_equal(ev.enterprise_id, "E1");
    assert_string_equal(ev.region, "R1");
    assert_int_equal(ev.n_officers, 2);
    assert_string_equal(ev.officers[0], "O1");
    assert_string_equal(ev.officers[1], "O2");
    assert_int_equal(ev.planned_at, T0 + 10 * 3600000 + 30 * 60000);
    assert_string_equal(ev.basis, "routine");
    assert_int_equal(ev.n_items, 3);
    /* Left for the caller, and untouched fields of other types. */
    assert_int_equal(ev.ref.ms, 0);
    assert_int_equal(ev.ref.seq, 0);
    assert_int_equal(ev.ref.stream, 0);
    assert_null(ev.stream_key);
    assert_null(ev.entry_id);
    assert_int_equal(ev.flags, 0);
    assert_int_equal(ev.filing_ts, 0);
    assert_int_equal(ev.filing_planned_at, 0);
    assert_null(ev.filing_enterprise_id);
    assert_null(ev.case_id);
    assert_null(ev.complaint_id);
    assert_null(ev.comment);
    assert_int_equal(ev.score, 0);
    assert_int_equal(ev.source, RK_SOURCE_UNSET);

    /* Minimal: planned_at defaults to ts, the rest absent. */
    expect_ok("{\"type\":\"inspection.filed\",\"ts\":1740792600123,\"task_id\":\"T1\","
              "\"unit_id\":\"U1\",\"officers\":[\"O1\"],\"enterprise_id\":\"E1\"}");
    assert_int_equal(ev.ts, T0 + 123);
    assert_int_equal(ev.planned_at, T0 + 123);
    assert_null(ev.basis);
    assert_null(ev.region);
    assert_int_equal(ev.n_items, 0);
    assert_int_equal(ev.n_officers, 1);

    /* planned_at as epoch ms; empty basis and items allowed. */
    expect_ok("{\"type\":\"inspection.filed\",\"ts\":0,\"task_id\":\"T1\",\"unit_id\":\"U1\","
              "\"officers\":[\"O1\"],\"enterprise_id\":\"E1\",\"planned_at\":5,"
              "\"basis\":\"\",\"items\":[]}");
    assert_int_equal(ev.planned_at, 5);
    assert_string_equal(ev.basis, "");
    assert_int_equal(ev.n_items, 0);
}

static void test_scanned(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"inspection.scanned\",\"ts\":\"2025-03-01T01:30:00Z\","
              "\"task_id\":\"T1\",\"enterprise_id\":\"E1\",\"unit_id\":\"U1\","
              "\"officers\":[\"O1\"],\"region\":\"R1\"}");
    assert_int_equal(ev.type, RK_EV_INSPECTION_SCANNED);
    assert_string_equal(ev.type_name, "inspection.scanned");
    assert_int_equal(ev.ts, T0);
    assert_string_equal(ev.task_id, "T1");
    assert_string_equal(ev.enterprise_id, "E1");
    assert_string_equal(ev.unit_id, "U1");
    assert_int_equal(ev.n_officers, 1);
    assert_string_equal(ev.officers[0], "O1");
    assert_string_equal(ev.region, "R1");
    assert_int_equal(ev.planned_at, 0);

    expect_ok("{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"T1\",\"enterprise_id\":\"E1\"}");
    assert_null(ev.unit_id);
    assert_null(ev.officers);
    assert_int_equal(ev.n_officers, 0);
    assert_null(ev.region);
}

static void test_rated(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"inspection.rated\",\"ts\":\"2025-03-01T01:30:00Z\","
              "\"task_id\":\"T1\",\"enterprise_id\":\"E1\",\"score\":2,\"unit_id\":\"U1\","
              "\"officers\":[\"O1\",\"O2\",\"O3\"],\"comment\":\"rude\",\"region\":\"R1\"}");
    assert_int_equal(ev.type, RK_EV_INSPECTION_RATED);
    assert_int_equal(ev.score, 2);
    assert_string_equal(ev.task_id, "T1");
    assert_string_equal(ev.enterprise_id, "E1");
    assert_string_equal(ev.unit_id, "U1");
    assert_int_equal(ev.n_officers, 3);
    assert_string_equal(ev.officers[2], "O3");
    assert_string_equal(ev.comment, "rude");
    assert_string_equal(ev.region, "R1");

    expect_ok("{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\",\"score\":1}");
    assert_int_equal(ev.score, 1);
    assert_null(ev.comment);
    expect_ok("{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\",\"score\":5,\"comment\":\"\"}");
    assert_int_equal(ev.score, 5);
    assert_string_equal(ev.comment, "");

    static const char *const bad[] = {"0", "6", "-1", "4.0", "4.5", "\"4\"", "true",
                                      "[4]", "{}", "99999999999999999"};
    char buf[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"inspection.rated\",\"ts\":1,"
                 "\"task_id\":\"T\",\"enterprise_id\":\"E\",\"score\":%s}", bad[i]);
        expect_err(buf, "score: expected an integer from 1 to 5");
    }
    expect_err("{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\"}",
               "score: missing");
}

static void test_reported(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"inspection.reported\",\"ts\":\"2025-03-01T01:30:00Z\","
              "\"enterprise_id\":\"E1\",\"unit_id\":\"U1\",\"officers\":[\"O9\"],"
              "\"note\":\"no QR code\",\"region\":\"R1\"}");
    assert_int_equal(ev.type, RK_EV_INSPECTION_REPORTED);
    assert_string_equal(ev.enterprise_id, "E1");
    assert_string_equal(ev.unit_id, "U1");
    assert_int_equal(ev.n_officers, 1);
    assert_string_equal(ev.officers[0], "O9");
    assert_string_equal(ev.note, "no QR code");
    assert_string_equal(ev.region, "R1");
    assert_null(ev.task_id);
}

static void test_opened(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"case.opened\",\"ts\":\"2025-03-01T01:30:00Z\",\"case_id\":\"C1\","
              "\"unit_id\":\"U1\",\"source\":\"inspection\",\"task_id\":\"T1\","
              "\"enterprise_id\":\"E1\",\"officers\":[\"O1\"],\"region\":\"R1\"}");
    assert_int_equal(ev.type, RK_EV_CASE_OPENED);
    assert_string_equal(ev.case_id, "C1");
    assert_string_equal(ev.unit_id, "U1");
    assert_int_equal(ev.source, RK_SOURCE_INSPECTION);
    assert_string_equal(ev.task_id, "T1");
    assert_string_equal(ev.enterprise_id, "E1");
    assert_int_equal(ev.n_officers, 1);
    assert_string_equal(ev.region, "R1");

    static const struct { const char *s; rk_case_source v; } src[] = {
        {"inspection", RK_SOURCE_INSPECTION}, {"complaint", RK_SOURCE_COMPLAINT},
        {"report", RK_SOURCE_REPORT}, {"transfer", RK_SOURCE_TRANSFER},
        {"other", RK_SOURCE_OTHER}};
    char buf[256];
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C\","
                 "\"unit_id\":\"U\",\"source\":\"%s\"}", src[i].s);
        expect_ok(buf);
        assert_int_equal(ev.source, src[i].v);
        assert_null(ev.task_id);
    }
    static const char *const bad[] = {"\"Inspection\"", "\"\"", "\"x\"", "1", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C\","
                 "\"unit_id\":\"U\",\"source\":%s}", bad[i]);
        expect_err(buf, "source: expected one of \"inspection\", \"complaint\", "
                   "\"report\", \"transfer\", \"other\"");
    }
}

static void test_decided(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"case.decided\",\"ts\":\"2025-03-01T01:30:00Z\",\"case_id\":\"C1\","
              "\"unit_id\":\"U1\",\"fine\":12500.5,\"confiscation\":300,\"item_code\":\"A-12\","
              "\"enterprise_id\":\"E1\",\"leniency\":\"mitigated\",\"region\":\"R1\"}");
    assert_int_equal(ev.type, RK_EV_CASE_DECIDED);
    assert_string_equal(ev.case_id, "C1");
    assert_string_equal(ev.unit_id, "U1");
    assert_true(ev.fine == 12500.5);
    assert_true(ev.confiscation == 300.0);
    assert_string_equal(ev.item_code, "A-12");
    assert_string_equal(ev.enterprise_id, "E1");
    assert_int_equal(ev.leniency, RK_LENIENCY_MITIGATED);
    assert_string_equal(ev.region, "R1");

    /* Integer fine, confiscation default 0, leniency absent. */
    expect_ok("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":0}");
    assert_true(ev.fine == 0.0);
    assert_true(ev.confiscation == 0.0);
    assert_int_equal(ev.leniency, RK_LENIENCY_UNSET);
    assert_null(ev.item_code);
    expect_ok("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":50000}");
    assert_true(ev.fine == 50000.0);
    expect_ok("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":-0.0}");
    assert_true(ev.fine == 0.0);

    static const struct { const char *s; rk_leniency v; } len[] = {
        {"none", RK_LENIENCY_NONE}, {"lighter", RK_LENIENCY_LIGHTER},
        {"mitigated", RK_LENIENCY_MITIGATED}, {"exempt", RK_LENIENCY_EXEMPT}};
    char buf[256];
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\","
                 "\"unit_id\":\"U\",\"fine\":1,\"leniency\":\"%s\"}", len[i].s);
        expect_ok(buf);
        assert_int_equal(ev.leniency, len[i].v);
    }
    expect_err("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1,"
               "\"leniency\":\"heavy\"}",
               "leniency: expected one of \"none\", \"lighter\", \"mitigated\", \"exempt\"");
    expect_err("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1,"
               "\"leniency\":0}", "leniency: expected one of");

    static const char *const badnum[] = {"-1", "-0.01", "\"100\"", "true", "[]", "{}"};
    for (size_t i = 0; i < sizeof badnum / sizeof badnum[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\","
                 "\"unit_id\":\"U\",\"fine\":%s}", badnum[i]);
        expect_err(buf, "fine: expected a number >= 0");
        snprintf(buf, sizeof buf, "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\","
                 "\"unit_id\":\"U\",\"fine\":1,\"confiscation\":%s}", badnum[i]);
        expect_err(buf, "confiscation: expected a number >= 0");
    }
}

/* The fields the supervision-practice detectors read: inspection.filed
 * kind (default plan) and joint_id; case.opened item_code and domain;
 * case.decided level and domain; case.review domain and issue. */
static void test_practice_fields(void **state)
{
    (void)state;
    static const struct { const char *s; rk_inspection_kind v; } kinds[] = {
        {"plan", RK_KIND_PLAN}, {"random", RK_KIND_RANDOM},
        {"complaint", RK_KIND_COMPLAINT}, {"special", RK_KIND_SPECIAL},
        {"other", RK_KIND_OTHER}};
    char buf[512];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\","
                 "\"unit_id\":\"U\",\"officers\":[\"O\"],\"enterprise_id\":\"E\","
                 "\"kind\":\"%s\",\"joint_id\":\"J-7\"}", kinds[i].s);
        expect_ok(buf);
        assert_int_equal(ev.kind, kinds[i].v);
        assert_string_equal(ev.joint_id, "J-7");
    }
    /* Absent or null: plan, no joint. */
    expect_ok("{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
              "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"kind\":null}");
    assert_int_equal(ev.kind, RK_KIND_PLAN);
    assert_null(ev.joint_id);
    expect_err("{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
               "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"kind\":\"Plan\"}",
               "kind: expected one of \"plan\", \"random\", \"complaint\", \"special\", \"other\"");
    expect_err("{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
               "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"kind\":3}", "kind: expected one of");
    expect_err("{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
               "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"joint_id\":\"\"}",
               "joint_id: expected a non-empty string");
    /* Other types do not get a kind. */
    expect_ok("{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\","
              "\"kind\":\"bogus\"}");
    assert_int_equal(ev.kind, RK_KIND_UNSET);

    expect_ok("{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
              "\"source\":\"report\",\"item_code\":\"SP-01\",\"domain\":\"food\"}");
    assert_string_equal(ev.item_code, "SP-01");
    assert_string_equal(ev.domain, "food");
    expect_err("{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
               "\"source\":\"report\",\"domain\":[\"food\"]}", "domain: expected a non-empty string");

    static const struct { const char *s; rk_case_level v; } levels[] = {
        {"minor", RK_LEVEL_MINOR}, {"general", RK_LEVEL_GENERAL}, {"serious", RK_LEVEL_SERIOUS}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\","
                 "\"unit_id\":\"U\",\"fine\":1,\"level\":\"%s\",\"domain\":\"drug\"}", levels[i].s);
        expect_ok(buf);
        assert_int_equal(ev.level, levels[i].v);
        assert_string_equal(ev.domain, "drug");
    }
    expect_ok("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1}");
    assert_int_equal(ev.level, RK_LEVEL_UNSET);
    expect_err("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1,"
               "\"level\":\"grave\"}", "level: expected one of \"minor\", \"general\", \"serious\"");

    expect_ok("{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
              "\"outcome\":\"revoked\",\"domain\":\"food\",\"issue\":\"procedure\"}");
    assert_string_equal(ev.domain, "food");
    assert_string_equal(ev.issue, "procedure");
    expect_err("{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
               "\"outcome\":\"revoked\",\"issue\":7}", "issue: expected a non-empty string");
}

static void test_complaint(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"case.complaint\",\"ts\":\"2025-03-01T01:30:00Z\","
              "\"complaint_id\":\"K1\",\"unit_id\":\"U1\",\"officers\":[\"O1\",\"O2\"],"
              "\"enterprise_id\":\"E1\",\"category\":\"attitude\",\"region\":\"R1\"}");
    assert_int_equal(ev.type, RK_EV_CASE_COMPLAINT);
    assert_string_equal(ev.complaint_id, "K1");
    assert_string_equal(ev.unit_id, "U1");
    assert_int_equal(ev.n_officers, 2);
    assert_string_equal(ev.officers[1], "O2");
    assert_string_equal(ev.enterprise_id, "E1");
    assert_string_equal(ev.category, "attitude");
    assert_string_equal(ev.region, "R1");
}

static void test_review(void **state)
{
    (void)state;
    static const struct { const char *s; rk_review_outcome v; } out[] = {
        {"upheld", RK_OUTCOME_UPHELD}, {"revoked", RK_OUTCOME_REVOKED},
        {"altered", RK_OUTCOME_ALTERED}, {"confirmed_illegal", RK_OUTCOME_CONFIRMED_ILLEGAL},
        {"mediated", RK_OUTCOME_MEDIATED}};
    char buf[256];
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"case.review\",\"ts\":\"2025-03-01T01:30:00Z\","
                 "\"case_id\":\"C1\",\"unit_id\":\"U1\",\"outcome\":\"%s\",\"region\":\"R1\"}",
                 out[i].s);
        expect_ok(buf);
        assert_int_equal(ev.type, RK_EV_CASE_REVIEW);
        assert_int_equal(ev.outcome, out[i].v);
        assert_string_equal(ev.case_id, "C1");
        assert_string_equal(ev.unit_id, "U1");
        assert_string_equal(ev.region, "R1");
        assert_int_equal(ev.ts, T0);
    }
    expect_err("{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
               "\"outcome\":\"dismissed\"}",
               "outcome: expected one of \"upheld\", \"revoked\", \"altered\", "
               "\"confirmed_illegal\", \"mediated\"");
}

static void test_tick(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"clock.tick\",\"ts\":\"2025-03-01T01:30:00Z\"}");
    assert_int_equal(ev.type, RK_EV_CLOCK_TICK);
    assert_string_equal(ev.type_name, "clock.tick");
    assert_int_equal(ev.ts, T0);
    /* Fields of other types are not looked at. */
    expect_ok("{\"type\":\"clock.tick\",\"ts\":7,\"task_id\":5,\"score\":\"x\",\"officers\":{}}");
    assert_int_equal(ev.ts, 7);
    assert_null(ev.task_id);
    assert_int_equal(ev.n_officers, 0);
    expect_err("{\"type\":\"clock.tick\"}", "ts: missing");
    expect_err("{\"type\":\"clock.tick\",\"ts\":null}", "ts: missing");
}

/* ===================================================================
 * Table-driven checks over every type
 * =================================================================== */

static const struct {
    const char *json;                   /* complete, valid */
    const char *required[6];
    const char *ids[6];                 /* non-empty strings */
    const char *text;                   /* free text field, or NULL */
} types[] = {
    {"{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
     "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"planned_at\":2,\"basis\":\"b\","
     "\"items\":[1],\"region\":\"R\",\"kind\":\"random\",\"joint_id\":\"J\"}",
     {"ts", "task_id", "unit_id", "officers", "enterprise_id"},
     {"task_id", "unit_id", "enterprise_id", "region", "joint_id"}, "basis"},
    {"{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\","
     "\"unit_id\":\"U\",\"officers\":[\"O\"],\"region\":\"R\"}",
     {"ts", "task_id", "enterprise_id"},
     {"task_id", "enterprise_id", "unit_id", "region"}, NULL},
    {"{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\","
     "\"score\":3,\"unit_id\":\"U\",\"officers\":[\"O\"],\"comment\":\"c\",\"region\":\"R\"}",
     {"ts", "task_id", "enterprise_id", "score"},
     {"task_id", "enterprise_id", "unit_id", "region"}, "comment"},
    {"{\"type\":\"inspection.reported\",\"ts\":1,\"enterprise_id\":\"E\",\"unit_id\":\"U\","
     "\"officers\":[\"O\"],\"note\":\"n\",\"region\":\"R\"}",
     {"ts", "enterprise_id", "unit_id"},
     {"enterprise_id", "unit_id", "region"}, "note"},
    {"{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
     "\"source\":\"other\",\"task_id\":\"T\",\"enterprise_id\":\"E\",\"officers\":[\"O\"],"
     "\"region\":\"R\",\"item_code\":\"I\",\"domain\":\"D\"}",
     {"ts", "case_id", "unit_id", "source"},
     {"case_id", "unit_id", "task_id", "enterprise_id", "region", "item_code"}, NULL},
    {"{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1,"
     "\"confiscation\":2,\"item_code\":\"I\",\"enterprise_id\":\"E\",\"leniency\":\"none\","
     "\"region\":\"R\",\"level\":\"general\",\"domain\":\"D\"}",
     {"ts", "case_id", "unit_id", "fine"},
     {"case_id", "unit_id", "enterprise_id", "region", "domain"}, "item_code"},
    {"{\"type\":\"case.complaint\",\"ts\":1,\"complaint_id\":\"K\",\"unit_id\":\"U\","
     "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"category\":\"c\",\"region\":\"R\"}",
     {"ts", "complaint_id", "unit_id"},
     {"complaint_id", "unit_id", "enterprise_id", "region"}, "category"},
    {"{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
     "\"outcome\":\"upheld\",\"region\":\"R\",\"domain\":\"D\",\"issue\":\"procedure\"}",
     {"ts", "case_id", "unit_id", "outcome"},
     {"case_id", "unit_id", "region", "domain", "issue"}, NULL},
    {"{\"type\":\"clock.tick\",\"ts\":1}", {"ts"}, {NULL}, NULL},
};
#define NTYPES (sizeof types / sizeof types[0])

/* Parse the complete event i with field `name` set to `value` (a JSON
 * text; NULL deletes the field). */
static int parse_with(size_t i, const char *name, const char *value)
{
    json_t *o = json_loads(types[i].json, 0, NULL);
    assert_non_null(o);
    if (value == NULL) {
        assert_int_equal(json_object_del(o, name), 0);
    } else {
        json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        assert_int_equal(json_object_set_new(o, name, v), 0);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    assert_non_null(s);
    int rc = parse(s);
    free(s);
    json_decref(o);
    return rc;
}

static void expect_field_err(size_t i, const char *name, const char *value,
                             const char *reason)
{
    char want[128];
    snprintf(want, sizeof want, "%s: %s", name, reason);
    int rc = parse_with(i, name, value);
    if (rc != RK_PARSE_INVALID || strcmp(err, want) != 0)
        fail_msg("type #%zu %s=%s: rc %d err \"%s\", want \"%s\"", i, name,
                 value ? value : "(deleted)", rc, err, want);
    assert_one_line();
}

static void test_table_complete_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        expect_ok(types[i].json);
        assert_int_equal(ev.ts, 1);
        assert_int_equal(ev.type, (rk_event_type)(i + 1));
        /* Unknown extra fields are ignored. */
        assert_int_equal(parse_with(i, "zzz_extra", "{\"deep\":[1,2,{\"x\":null}]}"), RK_PARSE_OK);
    }
}

/* Two strings both NULL or equal. */
static void same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* Input jscan passes on although it is valid (an escaped key) goes through
 * jansson's tree: the same text with one such member added must give the
 * same event, or the same reason, as the fast path. */
static void expect_same_slow(const char *json)
{
    rk__event_mem m = {0};
    rk_event a, b;
    char ea[RK_ERRLEN], eb[RK_ERRLEN], slow[1024];

    assert_true(json[0] == '{' && json[1] != '}');
    snprintf(slow, sizeof slow, "{\"\\u005fslow\":0,%s", json + 1);
    int ra = rk__event_parse(json, strlen(json), &a, &m, ea, sizeof ea);
    assert_null(m.root);                        /* fast */
    rk__event_mem m2 = {0};
    int rb = rk__event_parse(slow, strlen(slow), &b, &m2, eb, sizeof eb);
    assert_non_null(m2.root);                   /* slow */
    assert_int_equal(ra, rb);
    assert_string_equal(ea, eb);
    assert_int_equal(a.type, b.type);
    same_str(a.type_name, b.type_name);
    assert_int_equal(a.ts, b.ts);
    same_str(a.task_id, b.task_id);
    same_str(a.unit_id, b.unit_id);
    same_str(a.enterprise_id, b.enterprise_id);
    same_str(a.case_id, b.case_id);
    same_str(a.complaint_id, b.complaint_id);
    same_str(a.region, b.region);
    assert_int_equal(a.n_officers, b.n_officers);
    for (size_t i = 0; i < a.n_officers; i++)
        assert_string_equal(a.officers[i], b.officers[i]);
    assert_int_equal(a.planned_at, b.planned_at);
    assert_int_equal(a.score, b.score);
    assert_true(a.fine == b.fine);
    assert_true(a.confiscation == b.confiscation);
    assert_int_equal(a.source, b.source);
    assert_int_equal(a.leniency, b.leniency);
    assert_int_equal(a.outcome, b.outcome);
    same_str(a.basis, b.basis);
    same_str(a.comment, b.comment);
    same_str(a.note, b.note);
    same_str(a.category, b.category);
    same_str(a.item_code, b.item_code);
    assert_int_equal(a.n_items, b.n_items);
    rk__event_mem_free(&m);
    rk__event_mem_free(&m2);
}

static void test_slow_path_same(void **state)
{
    (void)state;
    static const char *const more[] = {
        "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-01T09:30:00.5+08:00\",\"task_id\":\"T\","
        "\"enterprise_id\":\"E\",\"score\":\"4\"}",
        "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":-0.0,"
        "\"confiscation\":2.5e3}",
        "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":-1}",
        "{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
        "\"officers\":[\"O\",\"\"],\"enterprise_id\":\"E\"}",
        "{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"\\u4efb\\u52a1\","
        "\"enterprise_id\":\"\xe4\xbc\x81\"}",
        "{\"type\":\"x.y\",\"ts\":1}",
        "{\"type\":5}",
        "{\"ts\":1}",
    };
    for (size_t i = 0; i < NTYPES; i++)
        expect_same_slow(types[i].json);
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        expect_same_slow(more[i]);
}

static void test_table_missing(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++)
        for (size_t k = 0; k < 6 && types[i].required[k] != NULL; k++) {
            expect_field_err(i, types[i].required[k], NULL, "missing");
            expect_field_err(i, types[i].required[k], "null", "missing");
        }
}

static void test_table_ids(void **state)
{
    (void)state;
    static const char *const bad[] = {"\"\"", "5", "true", "[\"T\"]", "{}", "1.5"};
    for (size_t i = 0; i < NTYPES; i++)
        for (size_t k = 0; k < 6 && types[i].ids[k] != NULL; k++)
            for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
                expect_field_err(i, types[i].ids[k], bad[b], "expected a non-empty string");
}

static void test_table_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        const char *t = types[i].text;
        if (t == NULL)
            continue;
        expect_field_err(i, t, "5", "expected a string");
        expect_field_err(i, t, "[]", "expected a string");
        assert_int_equal(parse_with(i, t, "\"\""), RK_PARSE_OK);
    }
}

/* Every optional field given as null is absent. */
static void test_null_optional(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
              "\"officers\":[\"O\"],\"enterprise_id\":\"E\",\"planned_at\":null,\"basis\":null,"
              "\"items\":null,\"region\":null}");
    assert_int_equal(ev.planned_at, 1);
    assert_null(ev.basis);
    assert_int_equal(ev.n_items, 0);
    assert_null(ev.region);
    expect_ok("{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\","
              "\"score\":3,\"unit_id\":null,\"officers\":null,\"comment\":null,\"region\":null}");
    assert_null(ev.unit_id);
    assert_int_equal(ev.n_officers, 0);
    assert_null(ev.comment);
    expect_ok("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1,"
              "\"confiscation\":null,\"item_code\":null,\"enterprise_id\":null,"
              "\"leniency\":null,\"region\":null}");
    assert_true(ev.confiscation == 0.0);
    assert_null(ev.item_code);
    assert_null(ev.enterprise_id);
    assert_int_equal(ev.leniency, RK_LENIENCY_UNSET);
    expect_ok("{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
              "\"source\":\"report\",\"task_id\":null,\"enterprise_id\":null,\"officers\":null}");
    assert_null(ev.task_id);
    expect_ok("{\"type\":\"case.complaint\",\"ts\":1,\"complaint_id\":\"K\",\"unit_id\":\"U\","
              "\"category\":null,\"note\":5}");
    assert_null(ev.category);
    assert_null(ev.note);
}

/* A field listed for another type is not validated. */
static void test_unlisted_ignored(void **state)
{
    (void)state;
    expect_ok("{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\","
              "\"planned_at\":\"junk\",\"score\":99,\"basis\":7,\"items\":\"x\",\"case_id\":\"\"}");
    assert_int_equal(ev.planned_at, 0);
    assert_int_equal(ev.score, 0);
    assert_null(ev.basis);
    assert_int_equal(ev.n_items, 0);
    assert_null(ev.case_id);
    expect_ok("{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\","
              "\"outcome\":\"upheld\",\"officers\":[1,2],\"enterprise_id\":5}");
    assert_int_equal(ev.n_officers, 0);
    assert_null(ev.enterprise_id);
    expect_ok("{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1,"
              "\"officers\":\"O1\"}");
    assert_int_equal(ev.n_officers, 0);
}

/* ===================================================================
 * ts, planned_at, officers, items
 * =================================================================== */

static void test_ts_forms(void **state)
{
    (void)state;
    static const struct { const char *ts; int64_t want; } good[] = {
        {"\"2025-03-01T01:30:00Z\"", T0},
        {"\"2025-03-01t01:30:00z\"", T0},
        {"\"2025-03-01T09:30:00+08:00\"", T0},
        {"\"2025-02-28T20:00:00-05:30\"", T0},
        {"\"2025-03-01T01:30:00.5Z\"", T0 + 500},
        {"\"2025-03-01T01:30:00.123456789Z\"", T0 + 123},
        {"\"2024-02-29T00:00:00Z\"", INT64_C(1709164800000)},
        {"\"2016-12-31T23:59:60Z\"", INT64_C(1483228799999)},
        {"1740792600000", T0},
        {"0", 0},
        {"253402300799999", INT64_C(253402300799999)},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"clock.tick\",\"ts\":%s}", good[i].ts);
        expect_ok(buf);
        assert_int_equal(ev.ts, good[i].want);
    }
    static const char *const bad[] = {
        "\"2023-02-29T00:00:00Z\"", "\"2025-03-01T01:30:00\"", "\"2025-03-01 01:30:00Z\"",
        "\"2025-03-01T01:30:00Z \"", "\"10000-01-01T00:00:00Z\"", "\"garbage\"", "\"\"",
        "\"1740792600000\"", "-1", "253402300800000", "1740792600000.0", "1.7e12", "true",
        "[]", "{}", "\"2025-03-01T01:30:00+24:00\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "{\"type\":\"clock.tick\",\"ts\":%s}", bad[i]);
        expect_err(buf, "ts: expected an RFC 3339 time or epoch milliseconds");
        assert_string_equal(err, "ts: expected an RFC 3339 time or epoch milliseconds");
        snprintf(buf, sizeof buf, "{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\","
                 "\"unit_id\":\"U\",\"officers\":[\"O\"],\"enterprise_id\":\"E\","
                 "\"planned_at\":%s}", bad[i]);
        expect_err(buf, "planned_at: expected an RFC 3339 time or epoch milliseconds");
    }
    /* ts is checked before the type's own fields. */
    expect_err("{\"type\":\"case.review\",\"ts\":\"x\"}", "ts: expected");
}

static void test_officers(void **state)
{
    (void)state;
    const char *pre = "{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
                      "\"enterprise_id\":\"E\"";
    char buf[512];
    snprintf(buf, sizeof buf, "%s}", pre);
    expect_err(buf, "officers: missing");
    static const char *const bad_req[] = {"[]", "\"O1\"", "{}", "5"};
    for (size_t i = 0; i < sizeof bad_req / sizeof bad_req[0]; i++) {
        snprintf(buf, sizeof buf, "%s,\"officers\":%s}", pre, bad_req[i]);
        expect_err(buf, "officers: expected an array of at least 1 non-empty string");
    }
    snprintf(buf, sizeof buf, "%s,\"officers\":[\"\"]}", pre);
    expect_err(buf, "officers[0]: expected a non-empty string");
    snprintf(buf, sizeof buf, "%s,\"officers\":[\"O1\",\"O2\",2]}", pre);
    expect_err(buf, "officers[2]: expected a non-empty string");
    snprintf(buf, sizeof buf, "%s,\"officers\":[\"O1\",null]}", pre);
    expect_err(buf, "officers[1]: expected a non-empty string");

    /* Optional elsewhere: absent, null, [] mean none. */
    const char *opt = "{\"type\":\"case.complaint\",\"ts\":1,\"complaint_id\":\"K\",\"unit_id\":\"U\"";
    static const char *const none[] = {"", ",\"officers\":null", ",\"officers\":[]"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(buf, sizeof buf, "%s%s}", opt, none[i]);
        expect_ok(buf);
        assert_int_equal(ev.n_officers, 0);
    }
    snprintf(buf, sizeof buf, "%s,\"officers\":[\"a\",\"b\",\"\"]}", opt);
    expect_err(buf, "officers[2]: expected a non-empty string");
    snprintf(buf, sizeof buf, "%s,\"officers\":[[\"a\"]]}", opt);
    expect_err(buf, "officers[0]: expected a non-empty string");
    snprintf(buf, sizeof buf, "%s,\"officers\":\"a\"}", opt);
    expect_err(buf, "officers: expected an array");
    snprintf(buf, sizeof buf, "%s,\"officers\":{\"0\":\"a\"}}", opt);
    expect_err(buf, "officers: expected an array");
}

static void test_items(void **state)
{
    (void)state;
    const char *pre = "{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T\",\"unit_id\":\"U\","
                      "\"officers\":[\"O\"],\"enterprise_id\":\"E\"";
    char buf[512];
    snprintf(buf, sizeof buf, "%s,\"items\":[1,\"x\",null,{},[]]}", pre);
    expect_ok(buf);
    assert_int_equal(ev.n_items, 5);
    static const char *const bad[] = {"\"x\"", "5", "{}", "true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%s,\"items\":%s}", pre, bad[i]);
        expect_err(buf, "items: expected an array");
    }
}

/* ===================================================================
 * Type, JSON and robustness
 * =================================================================== */

static void test_type_field(void **state)
{
    (void)state;
    expect_err("{\"ts\":1}", "type: missing");
    expect_err("{\"type\":null,\"ts\":1}", "type: missing");
    expect_err("{\"type\":5,\"ts\":1}", "type: expected a string");
    expect_err("{\"type\":[\"clock.tick\"]}", "type: expected a string");

    /* Unknown type: nothing else is looked at, not even ts. */
    assert_int_equal(parse("{\"type\":\"inspection.cancelled\",\"task_id\":5}"), RK_PARSE_UNKNOWN);
    assert_int_equal(ev.type, RK_EV_UNKNOWN);
    assert_string_equal(ev.type_name, "inspection.cancelled");
    assert_int_equal(ev.ts, 0);
    assert_int_equal(parse("{\"type\":\"\",\"ts\":\"garbage\"}"), RK_PARSE_UNKNOWN);
    assert_string_equal(ev.type_name, "");
    assert_int_equal(parse("{\"type\":\"Clock.Tick\",\"ts\":1}"), RK_PARSE_UNKNOWN);
    assert_string_equal(ev.type_name, "Clock.Tick");
}

static void test_not_json(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "{", "}", "garbage", "{\"type\":\"clock.tick\",\"ts\":1}x",
        "{\"type\":\"clock.tick\",\"ts\":1} {}", "{'type':'clock.tick'}",
        "{\"type\":\"clock.tick\",\"ts\":1,}", "{\"a\":\"\\u0000\"}",
        "{\"a\":1e999}",
        /* A raw newline and tab inside a string: jansson quotes them. */
        "{\"type\":\"x\n\ty\",\"ts\":1}",
        "{\n\"type\":\n\"clock.tick\",\n\"ts\":1\n",
        /* Invalid UTF-8. */
        "{\"type\":\"\xff\xfe\",\"ts\":1}",
        "{\"type\":\"clock.tick\",\"ts\":1,\"x\":\"\xc3\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_err(bad[i], "data: not valid JSON (");

    static const char *const notobj[] = {"[]", "[{\"type\":\"clock.tick\",\"ts\":1}]", "42",
                                         "\"clock.tick\"", "null", "true", " 1.5 "};
    for (size_t i = 0; i < sizeof notobj / sizeof notobj[0]; i++) {
        expect_err(notobj[i], "data: expected a JSON object");
        assert_string_equal(err, "data: expected a JSON object");
    }
    /* jansson quotes the input near the error: bytes outside printable
     * ASCII are replaced so the reason stays one clean line. */
    expect_err("{\"\xc3\xa9\x01\"}", "data: not valid JSON (");
    assert_non_null(strstr(err, "near '\"?\?'"));
    /* NULL data with length 0 is empty input, not a crash. */
    assert_int_equal(rk__event_parse(NULL, 0, &ev, &mem, err, sizeof err), RK_PARSE_INVALID);
    assert_int_equal(strncmp(err, "data: not valid JSON (", 22), 0);
    /* Whitespace around the object is fine. */
    expect_ok(" \n{\"type\":\"clock.tick\",\"ts\":1}\n ");
    assert_int_equal(ev.ts, 1);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_err("{\"type\":\"clock.tick\",\"ts\":1,\"ts\":2}", "data: not valid JSON (");
    assert_non_null(strstr(err, "duplicate"));
    expect_err("{\"type\":\"clock.tick\",\"ts\":1,\"x\":{\"a\":1,\"a\":1}}", "data: not valid JSON (");
    expect_err("{\"type\":\"inspection.scanned\",\"type\":\"clock.tick\",\"ts\":1}",
               "data: not valid JSON (");
}

static void test_embedded_nul(void **state)
{
    (void)state;
    static const char obj[] = "{\"type\":\"clock.tick\",\"ts\":3}";
    char buf[128];
    /* A NUL after the object, inside the length: trailing garbage. */
    memcpy(buf, obj, sizeof obj);               /* includes the NUL */
    memcpy(buf + sizeof obj, "junk", 4);
    assert_int_equal(rk__event_parse(buf, sizeof obj + 4, &ev, &mem, err, sizeof err),
                     RK_PARSE_INVALID);
    assert_int_equal(strncmp(err, "data: not valid JSON (", 22), 0);
    assert_one_line();
    assert_int_equal(rk__event_parse(buf, sizeof obj, &ev, &mem, err, sizeof err),
                     RK_PARSE_INVALID);
    /* A NUL inside a string value. */
    static const char in_str[] = "{\"type\":\"clock.tick\",\"ts\":3,\"x\":\"a\0b\"}";
    assert_int_equal(rk__event_parse(in_str, sizeof in_str - 1, &ev, &mem, err, sizeof err),
                     RK_PARSE_INVALID);
    assert_int_equal(strncmp(err, "data: not valid JSON (", 22), 0);
    assert_one_line();
    /* The length alone bounds the input: the NUL after it is not read. */
    assert_int_equal(rk__event_parse(buf, sizeof obj - 1, &ev, &mem, err, sizeof err),
                     RK_PARSE_OK);
    assert_int_equal(ev.ts, 3);
    /* Not NUL-terminated at all (ASan catches a read past the end). */
    char *exact = malloc(sizeof obj - 1);
    assert_non_null(exact);
    memcpy(exact, obj, sizeof obj - 1);
    assert_int_equal(rk__event_parse(exact, sizeof obj - 1, &ev, &mem, err, sizeof err),
                     RK_PARSE_OK);
    assert_int_equal(ev.ts, 3);
    assert_int_equal(rk__event_parse(exact, 10, &ev, &mem, err, sizeof err), RK_PARSE_INVALID);
    free(exact);
}

/* Build "[[[...]]]" nested depth deep inside a clock.tick's extra field. */
static char *nested(size_t depth)
{
    const char *pre = "{\"type\":\"clock.tick\",\"ts\":1,\"x\":";
    size_t n = strlen(pre) + 2 * depth + 2;
    char *s = malloc(n);
    assert_non_null(s);
    size_t k = strlen(pre);
    memcpy(s, pre, k);
    memset(s + k, '[', depth);
    memset(s + k + depth, ']', depth);
    s[k + 2 * depth] = '}';
    s[k + 2 * depth + 1] = '\0';
    return s;
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char *s = nested(1000);
    expect_ok(s);
    assert_int_equal(ev.ts, 1);
    free(s);
    s = nested(100000);
    expect_err(s, "data: not valid JSON (");
    free(s);
    /* Unbalanced, very deep. */
    s = malloc(200001);
    assert_non_null(s);
    memset(s, '{', 200000);
    s[200000] = '\0';
    expect_err(s, "data: not valid JSON (");
    memset(s, '[', 200000);
    expect_err(s, "data: not valid JSON (");
    free(s);
}

/* An inspection.filed whose officers are "O0".."O<n-1>", followed by an
 * empty (bad) one at index n when bad_last. */
static char *many_officers(size_t n, int bad_last)
{
    size_t cap = 256 + n * 16;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t k = (size_t)snprintf(s, cap, "{\"type\":\"inspection.filed\",\"ts\":1,"
                                "\"task_id\":\"T\",\"unit_id\":\"U\",\"enterprise_id\":\"E\","
                                "\"officers\":[");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s\"O%zu\"", i ? "," : "", i);
    if (bad_last)
        k += (size_t)snprintf(s + k, cap - k, ",\"\"");
    snprintf(s + k, cap - k, "]}");
    return s;
}

static void test_many_officers(void **state)
{
    (void)state;
    char *s = many_officers(200000, 0);
    expect_ok(s);
    assert_int_equal(ev.n_officers, 200000);
    assert_string_equal(ev.officers[0], "O0");
    assert_string_equal(ev.officers[199999], "O199999");
    size_t cap = mem.officers_cap;
    assert_int_equal(cap, 200000);
    free(s);
    /* Smaller arrays reuse the storage. */
    s = many_officers(3, 0);
    expect_ok(s);
    assert_int_equal(ev.n_officers, 3);
    assert_string_equal(ev.officers[2], "O2");
    assert_int_equal(mem.officers_cap, cap);
    free(s);
    s = many_officers(70000, 1);
    expect_err(s, "officers[70000]: expected a non-empty string");
    free(s);
}

static void test_mem_reuse(void **state)
{
    (void)state;
    rk__event_mem m = {0};
    rk_event e;
    char buf[256];
    for (int i = 0; i < 500; i++) {
        int kind = i % 4;
        if (kind == 0)
            snprintf(buf, sizeof buf, "{\"type\":\"inspection.rated\",\"ts\":%d,\"task_id\":\"T%d\","
                     "\"enterprise_id\":\"E\",\"score\":%d,\"officers\":[\"A%d\",\"B\"]}",
                     i, i, i % 5 + 1, i);
        else if (kind == 1)
            snprintf(buf, sizeof buf, "{\"type\":\"case.decided\",\"ts\":%d,\"case_id\":\"C\","
                     "\"unit_id\":\"U\",\"fine\":-%d}", i, i);
        else if (kind == 2)
            snprintf(buf, sizeof buf, "not json %d", i);
        else
            snprintf(buf, sizeof buf, "{\"type\":\"new.kind%d\"}", i);
        int rc = rk__event_parse(buf, strlen(buf), &e, &m, err, sizeof err);
        if (kind == 0) {
            assert_int_equal(rc, RK_PARSE_OK);
            assert_int_equal(e.ts, i);
            assert_int_equal(e.score, i % 5 + 1);
            snprintf(buf, sizeof buf, "T%d", i);
            assert_string_equal(e.task_id, buf);
            snprintf(buf, sizeof buf, "A%d", i);
            assert_string_equal(e.officers[0], buf);
            assert_int_equal(e.n_officers, 2);
        } else if (kind == 1) {
            assert_int_equal(rc, RK_PARSE_INVALID);
            assert_string_equal(err, "fine: expected a number >= 0");
        } else if (kind == 2) {
            assert_int_equal(rc, RK_PARSE_INVALID);
        } else {
            assert_int_equal(rc, RK_PARSE_UNKNOWN);
            snprintf(buf, sizeof buf, "new.kind%d", i);
            assert_string_equal(e.type_name, buf);
        }
    }
    rk__event_mem_free(&m);
    assert_null(m.root);
    assert_null(m.officers);
    rk__event_mem_free(&m);                     /* twice is harmless */
    /* Usable again after free. */
    assert_int_equal(rk__event_parse("{\"type\":\"clock.tick\",\"ts\":9}", 28, &e, &m,
                                     err, sizeof err), RK_PARSE_OK);
    assert_int_equal(e.ts, 9);
    rk__event_mem_free(&m);
    rk__event_mem_free(NULL);
}

/* An inspection.filed whose basis is `basis_len` bytes of 'b' (malloc'ed). */
static char *filed_with_basis(size_t basis_len)
{
    static const char head[] = "{\"type\":\"inspection.filed\",\"ts\":5,\"task_id\":\"T\","
                               "\"unit_id\":\"U\",\"officers\":[\"O\"],\"enterprise_id\":\"E\","
                               "\"basis\":\"";
    size_t n = sizeof head - 1;
    char *s = malloc(n + basis_len + 3);
    assert_non_null(s);
    memcpy(s, head, n);
    memset(s + n, 'b', basis_len);
    memcpy(s + n + basis_len, "\"}", 3);
    return s;
}

static const char small_event[] =
    "{\"type\":\"inspection.rated\",\"ts\":7,\"task_id\":\"T7\","
    "\"enterprise_id\":\"E\",\"score\":2,\"officers\":[\"A\",\"B\"]}";

/* Parse small_event into m and check it. */
static void parse_small(rk__event_mem *m)
{
    rk_event e;
    assert_int_equal(rk__event_parse(small_event, sizeof small_event - 1, &e, m, err,
                                     sizeof err), RK_PARSE_OK);
    assert_null(m->root);                       /* the fast path: no tree */
    assert_string_equal(e.task_id, "T7");
    assert_string_equal(e.officers[1], "B");
    assert_int_equal(e.score, 2);
}

/* Parse an event with a basis of n bytes into m and check it. */
static void parse_big(rk__event_mem *m, size_t n)
{
    rk_event e;
    char *s = filed_with_basis(n);
    assert_int_equal(rk__event_parse(s, strlen(s), &e, m, err, sizeof err), RK_PARSE_OK);
    assert_int_equal(strlen(e.basis), n);
    assert_int_equal(e.basis[n - 1], 'b');
    assert_string_equal(e.enterprise_id, "E");
    free(s);
}

/* The members live in the mem's arena: one 16 KiB block for ordinary
 * events however many are parsed; a block chain for a bigger one, after
 * which the arena keeps one block of the chain's total (here ~56 KiB) when
 * that is at most 256 KiB, and nothing above the default when it is more (a
 * 4 MB event). Freeing releases everything. */
static void test_arena_bounded(void **state)
{
    (void)state;
    rk__event_mem m = {0};

    assert_int_equal(m.arena.size, 0);
    parse_small(&m);
    assert_int_equal(m.arena.size, 16384);
    for (int i = 0; i < 2000; i++)
        parse_small(&m);
    assert_int_equal(m.arena.size, 16384);

    /* 40 KB of basis: the string does not fit the first block, so a
     * second block of its size joins it (the fast path copies each string
     * once; jansson's buffer doubled to 64 KiB in a chain of 240 KiB). */
    parse_big(&m, 40000);
    assert_null(m.root);                        /* the fast path */
    size_t mid = m.arena.size;
    assert_true(mid > 16384 + 40000);
    assert_true(mid < 16384 + 40000 + 1024);
    parse_small(&m);                            /* one block of the total */
    assert_int_equal(m.arena.size, mid);
    parse_big(&m, 40000);                       /* now fits, no growth */
    assert_int_equal(m.arena.size, mid);
    parse_small(&m);
    assert_int_equal(m.arena.size, mid);

    /* 4 MB: the arena holds it while the event lives, then shrinks back. */
    parse_big(&m, 4000000);
    assert_true(m.arena.size > 4000000);
    assert_true(m.arena.size < 4000000 * 8);    /* a constant times the input */
    parse_small(&m);
    assert_int_equal(m.arena.size, 16384);

    /* Invalid input rewinds too (a tree half built, then abandoned). */
    char *s = filed_with_basis(1000000);
    s[strlen(s) - 1] = ',';                     /* truncated object */
    rk_event e;
    assert_int_equal(rk__event_parse(s, strlen(s), &e, &m, err, sizeof err),
                     RK_PARSE_INVALID);
    assert_memory_equal(err, "data: not valid JSON (", 22);
    free(s);
    parse_small(&m);
    assert_int_equal(m.arena.size, 16384);

    rk__event_mem_free(&m);
    assert_int_equal(m.arena.size, 0);
    assert_null(m.arena.blocks);
    assert_null(m.root);
}

static size_t hook_mallocs;

static void *counting_malloc(size_t n)
{
    hook_mallocs++;
    return malloc(n);
}

static void counting_free(void *p)
{
    free(p);
}

/* jansson's allocator hooks are process-wide: a parse takes nothing from
 * the hooks in place (its tree is in the arena) and puts them back after,
 * whether the input is an event, unknown, invalid or not JSON. */
static void test_alloc_funcs_restored(void **state)
{
    (void)state;
    json_malloc_t m0, m1;
    json_free_t f0, f1;
    rk__event_mem m = {0};
    rk_event e;
    const char *in[] = {small_event, "{\"type\":\"x.y\"}", "{\"type\":\"clock.tick\"}",
                        "{\"a\":1,\"a\":2}", "[1,2", ""};

    json_get_alloc_funcs(&m0, &f0);
    json_set_alloc_funcs(counting_malloc, counting_free);
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        hook_mallocs = 0;
        int rc = rk__event_parse(in[i], strlen(in[i]), &e, &m, err, sizeof err);
        assert_int_equal(rc, i == 0 ? RK_PARSE_OK : i == 1 ? RK_PARSE_UNKNOWN
                         : RK_PARSE_INVALID);
        assert_int_equal(hook_mallocs, 0);
        json_get_alloc_funcs(&m1, &f1);
        assert_true(m1 == counting_malloc);
        assert_true(f1 == counting_free);
    }
    /* The hooks in place still serve everyone else. */
    json_t *o = json_pack("{s:i}", "k", 1);
    assert_non_null(o);
    assert_true(hook_mallocs > 0);
    json_decref(o);
    json_set_alloc_funcs(m0, f0);
    rk__event_mem_free(&m);
}

static void test_err_buffer(void **state)
{
    (void)state;
    const char *j = "{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T\","
                    "\"enterprise_id\":\"E\",\"score\":9}";
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(rk__event_parse(j, strlen(j), &ev, &mem, small, sizeof small),
                     RK_PARSE_INVALID);
    assert_string_equal(small, "score: ");
    assert_int_equal(rk__event_parse(j, strlen(j), &ev, &mem, NULL, 0), RK_PARSE_INVALID);
    assert_int_equal(rk__event_parse(j, strlen(j), &ev, &mem, small, 0), RK_PARSE_INVALID);
    assert_int_equal(small[0], 's');
    /* A long jansson message is cut to the buffer, still terminated. */
    char mid[24];
    assert_int_equal(rk__event_parse("{\"a\":\"\xff\"}", 9, &ev, &mem, mid, sizeof mid),
                     RK_PARSE_INVALID);
    assert_int_equal(strlen(mid), sizeof mid - 1);
    /* A success clears err. */
    strcpy(err, "stale");
    expect_ok("{\"type\":\"clock.tick\",\"ts\":1}");
    assert_string_equal(err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_filed),
        cmocka_unit_test(test_scanned),
        cmocka_unit_test(test_rated),
        cmocka_unit_test(test_reported),
        cmocka_unit_test(test_opened),
        cmocka_unit_test(test_decided),
        cmocka_unit_test(test_practice_fields),
        cmocka_unit_test(test_complaint),
        cmocka_unit_test(test_review),
        cmocka_unit_test(test_tick),
        cmocka_unit_test(test_table_complete_ok),
        cmocka_unit_test(test_slow_path_same),
        cmocka_unit_test(test_table_missing),
        cmocka_unit_test(test_table_ids),
        cmocka_unit_test(test_table_text),
        cmocka_unit_test(test_null_optional),
        cmocka_unit_test(test_unlisted_ignored),
        cmocka_unit_test(test_ts_forms),
        cmocka_unit_test(test_officers),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_type_field),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_many_officers),
        cmocka_unit_test(test_mem_reuse),
        cmocka_unit_test(test_err_buffer),
        cmocka_unit_test(test_arena_bounded),
        cmocka_unit_test(test_alloc_funcs_restored),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
