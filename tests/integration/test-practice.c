/* tests/integration/test-practice.c - the five detectors of the supervision
 * practice end to end against a real redis-server: the sample reference
 * lists loaded with riskctl, one riskd consuming events that trip every
 * rule of inspection_frequency (repeat, whitelist, multi_unit), discretion
 * (out_of_benchmark, disparity, exempt_fined both ways), review_correction
 * (corrections), violation_hotspot (hotspot) and officer_credential
 * (uncertified); each alert's subject, severity, value and threshold are
 * the ones riskd-detectors(7) gives for these events and the shipped
 * thresholds. Then riskd --replay over the same streams (and the same
 * lists, fetched from Redis) raises exactly the same alerts, by id and
 * content. A second run ends an alert of every rule that can end: the
 * amendments that retract one (it never held) and event time moving on
 * until the condition has stopped holding (resolved); each notice once,
 * for its alert's id, and the replay prints the same notices. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"

#define LIVE_CFG "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"200ms\"}}"
#define T0 1740790800000LL              /* 2025-03-01T09:00:00+08:00 */
#define MIN 60000LL
#define HOUR 3600000LL
#define DAY 86400000LL

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256];
    char cfg[300];
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "practice") != 0)
        goto fail;
    snprintf(f->cfg, sizeof(f->cfg), "%s/riskd.json", f->dir);
    if (it_write_config(f->cfg, f->env.redis.port, LIVE_CFG) != 0)
        goto fail;
    *state = f;
    return 0;
fail:
    it_fixture_free(f);
    return -1;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

/* Run a command (stderr joined); its output into a malloc'ed *out. */
static int sh(char **out, const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    FILE *p;
    size_t n = 0, cap = 1 << 16, got;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    assert_non_null(p);
    *out = malloc(cap);
    for (;;) {
        if (n + 4096 > cap)
            *out = realloc(*out, cap *= 2);
        got = fread(*out + n, 1, cap - n - 1, p);
        if (got == 0)
            break;
        n += got;
    }
    (*out)[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void xadd(fixture *f, const char *stream, const char *fmt, ...)
{
    char json[1024], id[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    it_xadd(f->env.c, stream, json, id, sizeof(id));
}

#define FILED(ts, task, unit, officers, ent)                                                  \
    xadd(f, "enforce:scan", "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"" task \
         "\",\"unit_id\":\"" unit "\",\"officers\":[" officers "],\"enterprise_id\":\"" ent  \
         "\"}", (long long)(ts))
#define SCANNED(ts, task, ent)                                                                 \
    xadd(f, "enforce:scan", "{\"type\":\"inspection.scanned\",\"ts\":%lld,\"task_id\":\"" task \
         "\",\"enterprise_id\":\"" ent "\"}", (long long)(ts))

/* The events: each block names the rule it trips. */
static void write_events(fixture *f)
{
    int k;

    /* enforce:scan */
    /* repeat: E520 visited twice on one day (limit 1 in 1d). */
    FILED(T0, "T201", "MR-01", "\"O7\",\"O8\"", "E520");
    SCANNED(T0 + 30 * MIN, "T201", "E520");
    FILED(T0 + HOUR, "T202", "MR-01", "\"O7\",\"O8\"", "E520");
    SCANNED(T0 + HOUR + 30 * MIN, "T202", "E520");
    /* multi_unit: E530 by MR-01, then by EC-02 the next day. */
    FILED(T0 + DAY, "T203", "MR-01", "\"O7\",\"O8\"", "E530");
    SCANNED(T0 + DAY + 30 * MIN, "T203", "E530");
    FILED(T0 + 2 * DAY, "T204", "EC-02", "\"O7\",\"O8\"", "E530");
    SCANNED(T0 + 2 * DAY + 30 * MIN, "T204", "E530");
    /* whitelist: E501 (allowance 1) visited on two days of one year. */
    FILED(T0 + 2 * DAY + HOUR, "T205", "MR-01", "\"O7\",\"O8\"", "E501");
    SCANNED(T0 + 2 * DAY + 2 * HOUR, "T205", "E501");
    FILED(T0 + 5 * DAY, "T206", "MR-01", "\"O7\",\"O8\"", "E501");
    SCANNED(T0 + 5 * DAY + 30 * MIN, "T206", "E501");
    /* uncertified: O9's credential ended 2024-03-14; O10's holds. */
    FILED(T0 + 6 * DAY, "T207", "TR-03", "\"O9\",\"O10\"", "E540");
    SCANNED(T0 + 6 * DAY + 30 * MIN, "T207", "E540");

    /* enforce:case */
    /* corrections: three of TR-03's four reviews correct its decisions. */
    {
        static const char *const outcomes[] = {"upheld", "revoked", "altered",
                                               "confirmed_illegal"};
        for (k = 0; k < 4; k++)
            xadd(f, "enforce:case", "{\"type\":\"case.review\",\"ts\":%lld,\"case_id\":"
                 "\"RV%d\",\"unit_id\":\"TR-03\",\"outcome\":\"%s\"}",
                 (long long)(T0 + (k + 1) * HOUR), k, outcomes[k]);
    }
    /* out_of_benchmark and exempt_fined (no_penalty): A0101 is 0 to 5000
     * and exempt from penalties; exempt_fined (lighter): C0102 decided with
     * no leniency, inside its benchmark. */
    xadd(f, "enforce:case", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"D1\","
         "\"unit_id\":\"MR-01\",\"item_code\":\"A0101\",\"fine\":8000}",
         (long long)(T0 + 6 * HOUR));
    xadd(f, "enforce:case", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"D2\","
         "\"unit_id\":\"MR-01\",\"item_code\":\"C0102\",\"fine\":20000,\"leniency\":\"none\"}",
         (long long)(T0 + 6 * HOUR + 10 * MIN));
    /* disparity: B0310 (100000 to 1000000) fined 120000 by TR-03 six
     * times, then 600000 by EC-02: at EC-02's fifth the medians are 5x. */
    for (k = 0; k < 6; k++)
        xadd(f, "enforce:case", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"DT%d\","
             "\"unit_id\":\"TR-03\",\"item_code\":\"B0310\",\"fine\":120000}",
             (long long)(T0 + 7 * HOUR + k * 10 * MIN), k);
    for (k = 0; k < 5; k++)
        xadd(f, "enforce:case", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"DE%d\","
             "\"unit_id\":\"EC-02\",\"item_code\":\"B0310\",\"fine\":600000}",
             (long long)(T0 + 8 * HOUR + k * 10 * MIN), k);
    /* hotspot: 20 market cases in 640104 within a month, no history. */
    for (k = 1; k <= 20; k++)
        xadd(f, "enforce:case", "{\"type\":\"case.opened\",\"ts\":%lld,\"case_id\":\"H%d\","
             "\"unit_id\":\"MR-01\",\"source\":\"report\",\"region\":\"640104\","
             "\"domain\":\"market\"}", (long long)(T0 + DAY + k * 10 * MIN), k);
    /* Both streams end at the same event time. */
    xadd(f, "enforce:scan", "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)(T0 + 7 * DAY));
    xadd(f, "enforce:case", "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)(T0 + 7 * DAY));
}

/* Is a an alert (not a notice about one)? */
static int firing(const json_t *a)
{
    const char *st = json_string_value(json_object_get(a, "status"));
    return st == NULL || strcmp(st, "firing") == 0;
}

/* The one alert of detector/rule whose subject has field = value (NULL:
 * any); fails when there is none or more than one. */
static json_t *find(json_t *ids, const char *det, const char *rule, const char *field,
                    const char *value)
{
    const char *id;
    json_t *a, *hit = NULL;
    json_object_foreach(ids, id, a) {
        json_t *subj = json_object_get(a, "subject");
        if (!firing(a))
            continue;                   /* a notice about an alert */
        if (strcmp(json_string_value(json_object_get(a, "detector")), det) != 0 ||
            strcmp(json_string_value(json_object_get(a, "rule")), rule) != 0)
            continue;
        if (field && (json_string_value(json_object_get(subj, field)) == NULL ||
                      strcmp(json_string_value(json_object_get(subj, field)), value) != 0))
            continue;
        if (hit != NULL)
            fail_msg("two %s/%s alerts with %s %s", det, rule, field ? field : "", value ? value : "");
        hit = a;
    }
    if (hit == NULL)
        fail_msg("no %s/%s alert with %s %s", det, rule, field ? field : "", value ? value : "");
    return hit;
}

/* The alert's subject is exactly subject (a JSON object text), its
 * severity sev, value and threshold as given. */
static void check(json_t *a, const char *subject, const char *sev, double value,
                  double threshold)
{
    json_t *want = json_loads(subject, 0, NULL);
    char *got = json_dumps(json_object_get(a, "subject"), JSON_SORT_KEYS);
    assert_non_null(want);
    if (!json_equal(want, json_object_get(a, "subject")))
        fail_msg("%s/%s: subject %s, expected %s",
                 json_string_value(json_object_get(a, "detector")),
                 json_string_value(json_object_get(a, "rule")), got, subject);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), sev);
    if (fabs(json_number_value(json_object_get(a, "value")) - value) > 1e-9 ||
        fabs(json_number_value(json_object_get(a, "threshold")) - threshold) > 1e-9)
        fail_msg("%s/%s %s: value %g threshold %g, expected %g and %g",
                 json_string_value(json_object_get(a, "detector")),
                 json_string_value(json_object_get(a, "rule")), got,
                 json_number_value(json_object_get(a, "value")),
                 json_number_value(json_object_get(a, "threshold")), value, threshold);
    free(got);
    json_decref(want);
}

/* Alerts of a detector. */
static size_t count_det(json_t *ids, const char *det)
{
    const char *id;
    json_t *a;
    size_t n = 0;
    json_object_foreach(ids, id, a)
        n += firing(a) && strcmp(json_string_value(json_object_get(a, "detector")), det) == 0;
    return n;
}

/* Alerts (not notices) among ids. */
static size_t count_firing(json_t *ids)
{
    const char *id;
    json_t *a;
    size_t n = 0;
    json_object_foreach(ids, id, a)
        n += firing(a);
    return n;
}

static json_t *ids_of_lines(const char *text)
{
    json_t *ids = json_object();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_t *a = json_loadb(p, len, 0, NULL);
        if (a != NULL) {
            const char *id = json_string_value(json_object_get(a, "id"));
            char key[96];
            /* A notice shares its alert's id: "<id>:<status>", as
             * it_alerts_by_id keys it. */
            if (firing(a))
                snprintf(key, sizeof(key), "%s", id ? id : "");
            else
                snprintf(key, sizeof(key), "%s:%s", id ? id : "",
                         json_string_value(json_object_get(a, "status")));
            if (json_object_get(ids, key) != NULL)
                fail_msg("replay printed %s twice", key);
            json_object_set_new(ids, key, a);
        }
        p += len + (nl ? 1 : 0);
    }
    return ids;
}

/* riskd --replay over the streams prints exactly the alerts and notices of
 * the live run (live: it_alerts_by_id's), by id and content. */
static void compare_replay(fixture *f, json_t *live)
{
    const char *id;
    json_t *rep, *v;
    char *out, *err;

    if (sh(&out, "%s/riskd --replay -c %s 2>%s/replay.err", it_build_dir(), f->cfg, f->dir) != 0) {
        sh(&err, "cat %s/replay.err", f->dir);
        fail_msg("replay failed: %s", err);
    }
    rep = ids_of_lines(out);
    free(out);
    json_object_foreach(live, id, v) {
        json_t *r = json_object_get(rep, id), *x, *y;
        if (r == NULL)
            fail_msg("live alert %s (%s) missing from the replay", id,
                     json_string_value(json_object_get(v, "rule")));
        x = json_deep_copy(v);
        y = json_deep_copy(r);
        json_object_del(x, "emitted_at");
        json_object_del(y, "emitted_at");
        if (!json_equal(x, y))
            fail_msg("alert %s differs between the live run and the replay", id);
        json_decref(x);
        json_decref(y);
    }
    json_object_foreach(rep, id, v)
        if (json_object_get(live, id) == NULL)
            fail_msg("replay alert %s (%s) was not raised live", id,
                     json_string_value(json_object_get(v, "rule")));
    json_decref(rep);
}

static void test_practice_live_and_replay(void **state)
{
    fixture *f = *state;
    static const char *const kinds[] = {"whitelist", "benchmarks", "exempt", "credentials",
                                        "names"};
    const char *dup = NULL;
    json_t *live;
    char *out;
    size_t k;

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        int st = sh(&out, "%s/riskctl -c %s lists load %s config/samples/sample-%s.csv 2>&1",
                    it_build_dir(), f->cfg, kinds[k], kinds[k]);
        if (st != 0)
            fail_msg("lists load %s: %s", kinds[k], out);
        free(out);
    }
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, LIVE_CFG), 0);
    write_events(f);
    if (!it_wait_settled(f->env.c, 30000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not drain the streams");
    }
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    live = it_alerts_by_id(f->env.c, &dup);
    assert_null(dup);

    /* inspection_frequency */
    check(find(live, "inspection_frequency", "repeat", "enterprise_id", "E520"),
          "{\"enterprise_id\":\"E520\"}", "warning", 2, 1);
    check(find(live, "inspection_frequency", "multi_unit", "enterprise_id", "E530"),
          "{\"enterprise_id\":\"E530\"}", "warning", 2, 2);
    check(find(live, "inspection_frequency", "whitelist", "enterprise_id", "E501"),
          "{\"enterprise_id\":\"E501\",\"unit_id\":\"MR-01\"}", "critical", 2, 1);
    assert_int_equal(count_det(live, "inspection_frequency"), 3);
    /* E520's second visit leaves the day's window at T0 + 1d + 1h: the
     * repeat alert is resolved (alerts.keep_firing_for, 1h, later); the
     * only notice of the run. */
    {
        char key[96];
        json_t *n;
        snprintf(key, sizeof(key), "%s:resolved", json_string_value(json_object_get(
                     find(live, "inspection_frequency", "repeat", "enterprise_id", "E520"),
                     "id")));
        n = json_object_get(live, key);
        if (n == NULL)
            fail_msg("no resolved notice of E520's repeat alert");
        assert_non_null(strstr(json_string_value(json_object_get(n, "reason")), "E520"));
        assert_int_equal(json_object_size(live) - count_firing(live), 1);
    }
    /* discretion */
    check(find(live, "discretion", "out_of_benchmark", "case_id", "D1"),
          "{\"case_id\":\"D1\",\"unit_id\":\"MR-01\",\"item_code\":\"A0101\"}", "warning",
          8000, 5000);
    check(find(live, "discretion", "exempt_fined", "case_id", "D1"),
          "{\"case_id\":\"D1\",\"unit_id\":\"MR-01\",\"item_code\":\"A0101\"}", "warning",
          8000, 0);
    /* lighter: one decision without leniency, against 1 */
    check(find(live, "discretion", "exempt_fined", "case_id", "D2"),
          "{\"case_id\":\"D2\",\"unit_id\":\"MR-01\",\"item_code\":\"C0102\"}", "info",
          1, 1);
    check(find(live, "discretion", "disparity", "unit_id", "EC-02"),
          "{\"unit_id\":\"EC-02\",\"item_code\":\"B0310\"}", "warning", 5.0, 2.0);
    assert_int_equal(count_det(live, "discretion"), 4);
    /* review_correction */
    check(find(live, "review_correction", "corrections", "unit_id", "TR-03"),
          "{\"unit_id\":\"TR-03\"}", "warning", 0.75, 0.3);
    assert_int_equal(count_det(live, "review_correction"), 1);
    /* violation_hotspot */
    check(find(live, "violation_hotspot", "hotspot", "region", "640104"),
          "{\"region\":\"640104\",\"domain\":\"market\"}", "info", 20, 20);
    assert_int_equal(count_det(live, "violation_hotspot"), 1);
    /* officer_credential: O9 only (O10 holds a credential from 2024-09-01). */
    check(find(live, "officer_credential", "uncertified", "officer_id", "O9"),
          "{\"officer_id\":\"O9\",\"unit_id\":\"TR-03\",\"task_id\":\"T207\"}", "critical", 1, 1);
    assert_int_equal(count_det(live, "officer_credential"), 1);

    /* The replay over the same streams: the same alerts. */
    compare_replay(f, live);
    json_decref(live);
}

/* The lifecycle: events that raise an alert of every practice rule that
 * can be resolved or retracted, then the events that end each one - an
 * amendment that shows it never held (retracted), or event time moving
 * on until the condition has stopped holding for alerts.keep_firing_for
 * (resolved). Each block names the alert and how it ends. */
#define FILED_X(ts, task, unit, officers, ent, extra)                                         \
    xadd(f, "enforce:scan", "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"" task \
         "\",\"unit_id\":\"" unit "\",\"officers\":[" officers "],\"enterprise_id\":\"" ent  \
         "\"" extra "}", (long long)(ts))
#define VISIT(ts, task, unit, ent)                                                             \
    do {                                                                                       \
        FILED(ts, task, unit, "\"O7\",\"O8\"", ent);                                           \
        SCANNED((ts) + 30 * MIN, task, ent);                                                   \
    } while (0)
#define DECIDED(ts, cas, unit, item, fine, extra)                                              \
    xadd(f, "enforce:case", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"%s\","    \
         "\"unit_id\":\"" unit "\",\"item_code\":\"" item "\",\"fine\":%d" extra "}",          \
         (long long)(ts), cas, fine)

static void write_lifecycle_events(fixture *f)
{
    char cas[16];
    int k;

    /* enforce:scan, in event-time order */
    /* repeat E620 (two visits in a day), retracted: the second filing is
     * rescheduled to 2025-03-20. */
    VISIT(T0, "T301", "MR-01", "E620");
    VISIT(T0 + HOUR, "T302", "MR-01", "E620");
    FILED_X(T0 + 2 * HOUR, "T302", "MR-01", "\"O7\",\"O8\"", "E620",
            ",\"planned_at\":\"2025-03-20T10:00:00+08:00\"");
    /* repeat E660, resolved: the first visit leaves the day's window. */
    VISIT(T0 + 3 * HOUR, "T310", "MR-01", "E660");
    VISIT(T0 + 4 * HOUR, "T311", "MR-01", "E660");
    /* whitelist E501 (allowance 1, visited twice), retracted: the second
     * visit turns out to be a complaint inspection (not counted). */
    VISIT(T0 + DAY, "T303", "MR-01", "E501");
    /* whitelist E500 (allowance 2, visited three times), resolved when
     * the first visit leaves the 365 days. */
    VISIT(T0 + DAY + HOUR, "T314", "MR-01", "E500");
    /* multi_unit E630 (MR-01, then EC-02), retracted: the second filing
     * was MR-01's too. */
    VISIT(T0 + 2 * DAY, "T305", "MR-01", "E630");
    /* multi_unit E670, resolved when MR-01's visit leaves multi_window. */
    VISIT(T0 + 2 * DAY + HOUR, "T312", "MR-01", "E670");
    VISIT(T0 + 3 * DAY, "T304", "MR-01", "E501");
    FILED_X(T0 + 3 * DAY + HOUR, "T304", "MR-01", "\"O7\",\"O8\"", "E501",
            ",\"kind\":\"complaint\"");
    VISIT(T0 + 4 * DAY, "T306", "EC-02", "E630");
    VISIT(T0 + 4 * DAY + HOUR, "T313", "EC-02", "E670");
    FILED_X(T0 + 4 * DAY + 2 * HOUR, "T306", "MR-01", "\"O7\",\"O8\"", "E630", "");
    /* uncertified O9 (credential ended 2024-03-14), retracted: the
     * amended filing names O10 and O8 instead. */
    FILED(T0 + 5 * DAY, "T307", "TR-03", "\"O9\",\"O10\"", "E640");
    SCANNED(T0 + 5 * DAY + 30 * MIN, "T307", "E640");
    FILED_X(T0 + 5 * DAY + HOUR, "T307", "TR-03", "\"O10\",\"O8\"", "E640", "");
    VISIT(T0 + 9 * DAY, "T315", "MR-01", "E500");
    VISIT(T0 + 17 * DAY, "T316", "MR-01", "E500");

    /* enforce:case, in event-time order */
    /* corrections TR-03 (three of four reviews correct), resolved when
     * they leave the 90 days. */
    {
        static const char *const outcomes[] = {"upheld", "revoked", "altered",
                                               "confirmed_illegal"};
        for (k = 0; k < 4; k++)
            xadd(f, "enforce:case", "{\"type\":\"case.review\",\"ts\":%lld,\"case_id\":"
                 "\"RV%d\",\"unit_id\":\"TR-03\",\"outcome\":\"%s\"}",
                 (long long)(T0 + (k + 1) * HOUR), k, outcomes[k]);
    }
    /* out_of_benchmark and exempt_fined D11 (A0101: 0 to 5000, no
     * penalty), both retracted by the corrected fine 0; exempt_fined D12
     * (C0102 without leniency), retracted by the leniency granted. */
    DECIDED(T0 + 6 * HOUR, "D11", "MR-01", "A0101", 8000, "");
    DECIDED(T0 + 6 * HOUR + 10 * MIN, "D12", "MR-01", "C0102", 20000, ",\"leniency\":\"none\"");
    /* disparity EC-02/B0310 (600000 against TR-03's 120000), retracted:
     * one of EC-02's five decisions was of another item (too few cases). */
    for (k = 0; k < 6; k++) {
        snprintf(cas, sizeof(cas), "DT%d", k);
        DECIDED(T0 + 7 * HOUR + k * 10 * MIN, cas, "TR-03", "B0310", 120000, "");
    }
    for (k = 0; k < 5; k++) {
        snprintf(cas, sizeof(cas), "DE%d", k);
        DECIDED(T0 + 8 * HOUR + k * 10 * MIN, cas, "EC-02", "B0310", 600000, "");
    }
    DECIDED(T0 + 9 * HOUR, "D11", "MR-01", "A0101", 0, "");
    DECIDED(T0 + 9 * HOUR + 10 * MIN, "D12", "MR-01", "C0102", 20000,
            ",\"leniency\":\"lighter\"");
    DECIDED(T0 + 9 * HOUR + 20 * MIN, "DE0", "EC-02", "Z0002", 600000, "");
    /* disparity EC-02/Z0001 (5000 against 1000), resolved when the
     * decisions leave the 90 days. */
    for (k = 0; k < 6; k++) {
        snprintf(cas, sizeof(cas), "ZT%d", k);
        DECIDED(T0 + 10 * HOUR + k * 10 * MIN, cas, "TR-03", "Z0001", 1000, "");
    }
    for (k = 0; k < 5; k++) {
        snprintf(cas, sizeof(cas), "ZE%d", k);
        DECIDED(T0 + 11 * HOUR + k * 10 * MIN, cas, "EC-02", "Z0001", 5000, "");
    }
    /* hotspot 640104/market (20 cases in a month), resolved as they move
     * out of the period and the baseline. */
    for (k = 1; k <= 20; k++)
        xadd(f, "enforce:case", "{\"type\":\"case.opened\",\"ts\":%lld,\"case_id\":\"H%d\","
             "\"unit_id\":\"MR-01\",\"source\":\"report\",\"region\":\"640104\","
             "\"domain\":\"market\"}", (long long)(T0 + DAY + k * 10 * MIN), k);
    /* Event time moves on past every window (365 days and more). */
    xadd(f, "enforce:scan", "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)(T0 + 400 * DAY));
    xadd(f, "enforce:case", "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)(T0 + 400 * DAY));
}

/* The one alert of detector/rule whose subject has every member of
 * subject (a JSON object text); fails when there is none or more. */
static json_t *find_subject(json_t *ids, const char *det, const char *rule, const char *subject)
{
    json_t *want = json_loads(subject, 0, NULL), *a, *hit = NULL, *v;
    const char *id, *k;
    assert_non_null(want);
    json_object_foreach(ids, id, a) {
        json_t *subj = json_object_get(a, "subject");
        int all = 1;
        if (!firing(a) || strcmp(json_string_value(json_object_get(a, "detector")), det) != 0 ||
            strcmp(json_string_value(json_object_get(a, "rule")), rule) != 0)
            continue;
        json_object_foreach(want, k, v)
            all &= json_equal(v, json_object_get(subj, k));
        if (!all)
            continue;
        if (hit != NULL)
            fail_msg("two %s/%s alerts of %s", det, rule, subject);
        hit = a;
    }
    if (hit == NULL)
        fail_msg("no %s/%s alert of %s", det, rule, subject);
    json_decref(want);
    return hit;
}

/* The alert of det/rule/subject has exactly one notice, of status st:
 * same id, detector, rule, subject and severity as the alert, a ts not
 * before the alert's, and a reason. */
static void ended(json_t *ids, const char *det, const char *rule, const char *subject,
                  const char *st)
{
    json_t *a = find_subject(ids, det, rule, subject), *n;
    const char *aid = json_string_value(json_object_get(a, "id"));
    const char *other = strcmp(st, "resolved") == 0 ? "retracted" : "resolved";
    const char *reason;
    char key[128];

    assert_non_null(aid);
    snprintf(key, sizeof(key), "%s:%s", aid, st);
    n = json_object_get(ids, key);
    if (n == NULL)
        fail_msg("%s/%s %s: no %s notice", det, rule, subject, st);
    assert_string_equal(json_string_value(json_object_get(n, "status")), st);
    assert_string_equal(json_string_value(json_object_get(n, "id")), aid);
    assert_string_equal(json_string_value(json_object_get(n, "detector")), det);
    assert_string_equal(json_string_value(json_object_get(n, "rule")), rule);
    assert_true(json_equal(json_object_get(n, "subject"), json_object_get(a, "subject")));
    assert_string_equal(json_string_value(json_object_get(n, "severity")),
                        json_string_value(json_object_get(a, "severity")));
    /* ts: the event time of the change, not before the alert's (RFC 3339
     * in one offset, whole seconds here: the text order is time order) */
    assert_non_null(json_string_value(json_object_get(n, "ts")));
    assert_non_null(json_string_value(json_object_get(a, "ts")));
    assert_true(strcmp(json_string_value(json_object_get(n, "ts")),
                       json_string_value(json_object_get(a, "ts"))) >= 0);
    reason = json_string_value(json_object_get(n, "reason"));
    if (reason == NULL || reason[0] == '\0')
        fail_msg("%s/%s %s: the %s notice gives no reason", det, rule, subject, st);
    snprintf(key, sizeof(key), "%s:%s", aid, other);
    if (json_object_get(ids, key) != NULL)
        fail_msg("%s/%s %s: %s and also %s", det, rule, subject, st, other);
}

/* Notices (not alerts) of a detector. */
static size_t count_notices(json_t *ids, const char *det)
{
    const char *id;
    json_t *a;
    size_t n = 0;
    json_object_foreach(ids, id, a)
        n += !firing(a) && strcmp(json_string_value(json_object_get(a, "detector")), det) == 0;
    return n;
}

static void test_practice_lifecycle(void **state)
{
    fixture *f = *state;
    static const char *const kinds[] = {"whitelist", "benchmarks", "exempt", "credentials"};
    const char *dup = NULL;
    json_t *live;
    char *out, cfg[256];
    size_t k;
    int mport;

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        int st = sh(&out, "%s/riskctl -c %s lists load %s config/samples/sample-%s.csv 2>&1",
                    it_build_dir(), f->cfg, kinds[k], kinds[k]);
        if (st != 0)
            fail_msg("lists load %s: %s", kinds[k], out);
        free(out);
    }
    mport = it_free_port();
    /* open_ttl past the events' months: no alert is closed as stale */
    snprintf(cfg, sizeof(cfg), "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":"
             "\"200ms\"},\"alerts\":{\"open_ttl\":\"3650d\"},\"metrics\":{\"listen\":"
             "\"127.0.0.1:%d\"}}", mport);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, cfg), 0);
    write_lifecycle_events(f);
    if (!it_wait_settled(f->env.c, 30000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not drain the streams");
    }
    live = it_alerts_by_id(f->env.c, &dup);
    if (dup != NULL)
        fail_msg("%s written twice", dup);
    /* riskd lets go of an alert once it ended: it keeps the open ones
     * only, those of the open hash (none here: every alert of these
     * events ends; the outbox may still be flushing, so poll) */
    {
        double n = -1;
        long long hlen = -1;
        int i;
        for (i = 0; i < 200; i++) {
            redisReply *r = it_cmd(f->env.c, "HLEN riskd:open");
            hlen = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
            freeReplyObject(r);
            if ((n = it_metric(mport, "riskd_alerts_open")) == (double)hlen)
                break;
            usleep(50000);
        }
        if (n != (double)hlen)
            fail_msg("riskd_alerts_open %g, %lld in the open hash", n, hlen);
        assert_true(json_object_size(live) > 0);
    }
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);

    /* inspection_frequency */
    ended(live, "inspection_frequency", "repeat", "{\"enterprise_id\":\"E620\"}", "retracted");
    ended(live, "inspection_frequency", "repeat", "{\"enterprise_id\":\"E660\"}", "resolved");
    ended(live, "inspection_frequency", "whitelist", "{\"enterprise_id\":\"E501\"}", "retracted");
    ended(live, "inspection_frequency", "whitelist", "{\"enterprise_id\":\"E500\"}", "resolved");
    ended(live, "inspection_frequency", "multi_unit", "{\"enterprise_id\":\"E630\"}",
          "retracted");
    ended(live, "inspection_frequency", "multi_unit", "{\"enterprise_id\":\"E670\"}", "resolved");
    assert_int_equal(count_notices(live, "inspection_frequency"), 6);
    /* discretion */
    ended(live, "discretion", "out_of_benchmark", "{\"case_id\":\"D11\"}", "retracted");
    ended(live, "discretion", "exempt_fined", "{\"case_id\":\"D11\"}", "retracted");
    ended(live, "discretion", "exempt_fined", "{\"case_id\":\"D12\"}", "retracted");
    ended(live, "discretion", "disparity", "{\"unit_id\":\"EC-02\",\"item_code\":\"B0310\"}",
          "retracted");
    ended(live, "discretion", "disparity", "{\"unit_id\":\"EC-02\",\"item_code\":\"Z0001\"}",
          "resolved");
    assert_int_equal(count_notices(live, "discretion"), 5);
    /* review_correction, violation_hotspot, officer_credential */
    ended(live, "review_correction", "corrections", "{\"unit_id\":\"TR-03\"}", "resolved");
    assert_int_equal(count_notices(live, "review_correction"), 1);
    ended(live, "violation_hotspot", "hotspot", "{\"region\":\"640104\",\"domain\":\"market\"}",
          "resolved");
    assert_int_equal(count_notices(live, "violation_hotspot"), 1);
    ended(live, "officer_credential", "uncertified", "{\"officer_id\":\"O9\",\"task_id\":\"T307\"}",
          "retracted");
    assert_int_equal(count_notices(live, "officer_credential"), 1);

    /* The replay prints the same alerts and notices. */
    compare_replay(f, live);
    json_decref(live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_practice_live_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_practice_lifecycle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
