/* tests/integration/test-sample.c - riskctl sample against a real
 * redis-server: a known month of filings and decisions (with amendments,
 * duplicates, other months, a complaint filing, bad entries, several units
 * of 1 to 25 actions) is written to the input streams, and every draw is
 * compared with tests/integration/sample_redraw.py, an independent
 * re-implementation in Python (hashlib's SHA-256) of the algorithm as
 * riskctl(1) states it. Also: at least one per unit that has any, the share
 * per unit, the same seed draws the same list and another seed another,
 * --kind case with --min-fine, --weighted with open alerts, the table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"

typedef struct fixture {
    it_env env;
    char dir[256];
    char cfg[300];
    json_t *events;                 /* data values in riskctl's read order */
    json_t *scan, *cases;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    if (it_tmpdir(f->dir, sizeof(f->dir), "sample") != 0)
        return -1;
    snprintf(f->cfg, sizeof(f->cfg), "%s/ctl.json", f->dir);
    if (it_write_config(f->cfg, f->env.redis.port, "{}") != 0)
        return -1;
    f->scan = json_array();
    f->cases = json_array();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decref(f->events);
    json_decref(f->scan);
    json_decref(f->cases);
    it_fixture_free(f);
    return 0;
}

static void add(fixture *f, bool scan, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    it_xadd(f->env.c, scan ? "enforce:scan" : "enforce:case", buf, NULL, 0);
    json_array_append_new(scan ? f->scan : f->cases, json_string(buf));
}

/* The month: units U01..U06 with 1, 2, 3, 7, 12 and 25 filings planned in
 * September 2025 (+08:00), and the traps around them. */
static void write_month(fixture *f)
{
    static const int per_unit[] = {1, 2, 3, 7, 12, 25};
    int u, i, n = 0;
    for (u = 0; u < 6; u++)
        for (i = 0; i < per_unit[u]; i++, n++)
            add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-09-%02dT08:00:00+08:00\","
                "\"task_id\":\"T%03d\",\"unit_id\":\"U%02d\",\"officers\":[\"O%d\",\"O%d\"],"
                "\"enterprise_id\":\"E%d\",\"planned_at\":\"2025-09-%02dT09:00:00+08:00\"%s}",
                1 + n % 28, n, u + 1, u * 10 + 1, u * 10 + 2, n * 7 % 40, 1 + n % 28,
                n % 5 == 0 ? ",\"kind\":\"random\"" : "");
    /* the first and last instant of the month, +08:00, count */
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-08-31T16:00:00Z\",\"task_id\":"
        "\"TB1\",\"unit_id\":\"U07\",\"officers\":[\"O71\"],\"enterprise_id\":\"E1\"}");
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-09-30T23:59:59+08:00\","
        "\"task_id\":\"TB2\",\"unit_id\":\"U07\",\"officers\":[\"O71\"],\"enterprise_id\":\"E2\"}");
    /* not in September: planned in August and October (+08:00) */
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-08-31T15:59:59Z\",\"task_id\":"
        "\"TA1\",\"unit_id\":\"U08\",\"officers\":[\"O81\"],\"enterprise_id\":\"E1\"}");
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-09-30T08:00:00+08:00\","
        "\"task_id\":\"TA2\",\"unit_id\":\"U08\",\"officers\":[\"O81\"],\"enterprise_id\":\"E1\","
        "\"planned_at\":\"2025-10-01T00:00:00+08:00\"}");
    /* amendments: T000 (U01's only one) moved to October, TA3 from August
     * into September; the last one read counts */
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-08-20T08:00:00+08:00\","
        "\"task_id\":\"TA3\",\"unit_id\":\"U09\",\"officers\":[\"O91\"],\"enterprise_id\":\"E3\"}");
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-08-21T08:00:00+08:00\","
        "\"task_id\":\"TA3\",\"unit_id\":\"U09\",\"officers\":[\"O91\"],\"enterprise_id\":\"E3\","
        "\"planned_at\":\"2025-09-03T09:00:00+08:00\"}");
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-09-02T08:00:00+08:00\","
        "\"task_id\":\"T000\",\"unit_id\":\"U01\",\"officers\":[\"O1\",\"O2\"],"
        "\"enterprise_id\":\"E0\",\"planned_at\":\"2025-10-02T09:00:00+08:00\"}");
    /* a duplicate of T010 */
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-09-11T08:00:00+08:00\","
        "\"task_id\":\"T010\",\"unit_id\":\"U04\",\"officers\":[\"O31\",\"O32\"],"
        "\"enterprise_id\":\"E30\",\"planned_at\":\"2025-09-11T09:00:00+08:00\",\"kind\":\"random\"}");
    /* bad entries and other types are not actions */
    add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-09-05T08:00:00+08:00\","
        "\"task_id\":\"TBAD\",\"unit_id\":\"U10\",\"officers\":[]}");
    add(f, true, "not json");
    add(f, true, "{\"type\":\"inspection.scanned\",\"ts\":\"2025-09-05T08:00:00+08:00\","
        "\"task_id\":\"T001\",\"enterprise_id\":\"E7\"}");
    /* cases: opened (officers) and decided (fines); one amended */
    for (i = 0; i < 14; i++) {
        add(f, false, "{\"type\":\"case.opened\",\"ts\":\"2025-08-%02dT10:00:00+08:00\","
            "\"case_id\":\"K%02d\",\"unit_id\":\"U%02d\",\"source\":\"inspection\","
            "\"task_id\":\"T%03d\",\"officers\":[\"O%d\"],\"enterprise_id\":\"E%d\"}",
            1 + i, i, 1 + i % 3, i, 100 + i, i);
        add(f, false, "{\"type\":\"case.decided\",\"ts\":\"2025-09-%02dT10:00:00+08:00\","
            "\"case_id\":\"K%02d\",\"unit_id\":\"U%02d\",\"fine\":%d}", 1 + i, i, 1 + i % 3,
            i * 1000);
    }
    add(f, false, "{\"type\":\"case.decided\",\"ts\":\"2025-09-20T10:00:00+08:00\","
        "\"case_id\":\"K03\",\"unit_id\":\"U01\",\"fine\":9000}");
    add(f, false, "{\"type\":\"case.decided\",\"ts\":\"2025-10-01T10:00:00+08:00\","
        "\"case_id\":\"K99\",\"unit_id\":\"U01\",\"fine\":90000}");
    f->events = json_deep_copy(f->scan);
    json_array_extend(f->events, f->cases);
}

/* riskctl sample ARGS --json, parsed. */
static json_t *draw(fixture *f, itc_result *r, const char *const *extra)
{
    const char *args[24] = {"-c", f->cfg, "sample", "--period", "month", "--at", "2025-09"};
    size_t n = 7;
    json_t *doc;
    for (; *extra; extra++)
        args[n++] = *extra;
    args[n++] = "--json";
    args[n] = NULL;
    itc_run(r, f->dir, 20000, args);
    if (r->status != 0)
        fail_msg("riskctl sample: exit %d: %s", r->status, r->err);
    doc = json_loads(r->out, 0, NULL);
    if (doc == NULL)
        fail_msg("riskctl sample --json: not JSON: %s", r->out);
    return doc;
}

/* {"units": {unit: drawn}, "targets": [ids]} of a riskctl document. */
static json_t *summary(const json_t *doc, const char *idfield)
{
    json_t *s = json_object(), *units = json_object(), *t = json_array(), *v;
    size_t i;
    json_array_foreach(json_object_get(doc, "units"), i, v)
        json_object_set(units, json_string_value(json_object_get(v, "unit_id")),
                        json_object_get(v, "drawn"));
    json_array_foreach(json_object_get(doc, "targets"), i, v)
        json_array_append(t, json_object_get(v, idfield));
    json_object_set_new(s, "units", units);
    json_object_set_new(s, "targets", t);
    return s;
}

/* The Python re-draw. */
static json_t *redraw(fixture *f, const char *share, const char *seed, const char *kind,
                      const char *min_fine, const char *weights)
{
    char ev[300], wp[300], out[300], cmd[2048];
    json_t *res;
    FILE *fp;
    snprintf(ev, sizeof(ev), "%s/events.json", f->dir);
    snprintf(wp, sizeof(wp), "%s/weights.json", f->dir);
    snprintf(out, sizeof(out), "%s/redraw.json", f->dir);
    assert_int_equal(json_dump_file(f->events, ev, 0), 0);
    fp = fopen(wp, "w");
    assert_non_null(fp);
    fputs(weights, fp);
    fclose(fp);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/integration/sample_redraw.py %s 2025-09 "
             "%s '%s' %s %s %s > %s", ev, share, seed, kind, min_fine, wp, out);
    if (system(cmd) != 0)
        fail_msg("sample_redraw.py failed: %s", cmd);
    res = json_load_file(out, 0, NULL);
    assert_non_null(res);
    return res;
}

static void same(json_t *a, json_t *b, const char *what)
{
    if (!json_equal(a, b)) {
        char *x = json_dumps(a, JSON_SORT_KEYS), *y = json_dumps(b, JSON_SORT_KEYS);
        fail_msg("%s:\n riskctl %s\n python  %s", what, x, y);
    }
}

static void test_sample(void **state)
{
    fixture *f = *state;
    itc_result *r = malloc(sizeof(*r));
    json_t *a, *b, *c, *sa, *sb, *py, *u;
    size_t i;

    assert_non_null(r);
    if (access("/usr/bin/python3", X_OK) != 0)
        fail_msg("test-sample needs /usr/bin/python3 for the independent re-draw");
    write_month(f);

    /* the default share 0.2, seed "2025-09 draw" */
    {
        const char *x[] = {"--seed", "2025-09 draw", NULL};
        a = draw(f, r, x);
    }
    sa = summary(a, "task_id");
    py = redraw(f, "0.2", "2025-09 draw", "inspection", "0", "{}");
    same(sa, py, "--seed '2025-09 draw'");
    json_decref(py);
    /* what the month holds: U01 lost its only filing to October, U07 has
     * the month's first and last instant, U08 nothing, U09 the amended one */
    u = json_object_get(sa, "units");
    assert_null(json_object_get(u, "U01"));
    assert_null(json_object_get(u, "U08"));
    assert_null(json_object_get(u, "U10"));
    assert_int_equal(json_integer_value(json_object_get(u, "U07")), 1);
    assert_int_equal(json_integer_value(json_object_get(u, "U09")), 1);
    /* at least one per unit, ceil(0.2 n): 1 1 2 3 5 */
    assert_int_equal(json_integer_value(json_object_get(u, "U02")), 1);
    assert_int_equal(json_integer_value(json_object_get(u, "U03")), 1);
    assert_int_equal(json_integer_value(json_object_get(u, "U04")), 2);
    assert_int_equal(json_integer_value(json_object_get(u, "U05")), 3);
    assert_int_equal(json_integer_value(json_object_get(u, "U06")), 5);
    assert_int_equal(json_integer_value(json_object_get(a, "eligible")), 2 + 3 + 7 + 12 + 25 + 2 + 1);
    assert_int_equal(json_array_size(json_object_get(a, "targets")), 1 + 1 + 2 + 3 + 5 + 1 + 1);
    /* each target says who, where, when and why */
    json_array_foreach(json_object_get(a, "targets"), i, u) {
        assert_non_null(json_string_value(json_object_get(u, "unit_id")));
        assert_true(json_array_size(json_object_get(u, "officers")) >= 1);
        assert_non_null(json_string_value(json_object_get(u, "enterprise_id")));
        assert_int_equal(strncmp(json_string_value(json_object_get(u, "date")), "2025-09-", 8), 0);
        assert_non_null(strstr(json_string_value(json_object_get(u, "reason")), "检查备案"));
    }

    /* the same seed: the same list; another seed: another list */
    {
        const char *x[] = {"--seed", "2025-09 draw", NULL};
        b = draw(f, r, x);
    }
    sb = summary(b, "task_id");
    assert_true(json_equal(sa, sb));
    json_decref(b);
    json_decref(sb);
    {
        const char *x[] = {"--seed", "another", NULL};
        b = draw(f, r, x);
    }
    sb = summary(b, "task_id");
    assert_false(json_equal(json_object_get(sa, "targets"), json_object_get(sb, "targets")));
    assert_true(json_equal(json_object_get(sa, "units"), json_object_get(sb, "units")));
    py = redraw(f, "0.2", "another", "inspection", "0", "{}");
    same(sb, py, "--seed another");
    json_decref(py);
    json_decref(b);
    json_decref(sb);

    /* another share */
    {
        const char *x[] = {"--seed", "s3", "--share", "0.5", NULL};
        b = draw(f, r, x);
    }
    sb = summary(b, "task_id");
    py = redraw(f, "0.5", "s3", "inspection", "0", "{}");
    same(sb, py, "--share 0.5");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sb, "units"), "U06")), 13);
    json_decref(py);
    json_decref(b);
    json_decref(sb);

    /* decided cases with fine >= 3000: K03 amended to 9000 counts, K00..K02 not */
    {
        const char *x[] = {"--seed", "cases", "--kind", "case", "--min-fine", "3000", NULL};
        c = draw(f, r, x);
    }
    sb = summary(c, "case_id");
    py = redraw(f, "0.2", "cases", "case", "3000", "{}");
    same(sb, py, "--kind case --min-fine 3000");
    assert_int_equal(json_integer_value(json_object_get(c, "eligible")), 11);
    json_array_foreach(json_object_get(c, "targets"), i, u) {
        /* officers come from the case.opened */
        assert_int_equal(json_array_size(json_object_get(u, "officers")), 1);
        assert_true(json_real_value(json_object_get(u, "fine")) >= 3000);
    }
    json_decref(py);
    json_decref(sb);
    json_decref(c);

    /* weighted: U04 with 6 open alerts gets more than its 20 % */
    {
        static const char *const al[] = {"a1", "a2", "a3", "a4", "a5", "a6"};
        for (i = 0; i < 6; i++)
            freeReplyObject(it_cmd(f->env.c, "HSET riskd:open %s %s", al[i],
                                   "{\"id\":\"x\",\"status\":\"firing\",\"severity\":\"warning\","
                                   "\"subject\":{\"unit_id\":\"U04\"}}"));
        freeReplyObject(it_cmd(f->env.c, "HSET riskd:open b1 %s",
                               "{\"id\":\"y\",\"status\":\"firing\",\"severity\":\"info\","
                               "\"subject\":{\"unit_id\":\"U06\"}}"));
    }
    {
        const char *x[] = {"--seed", "w", "--weighted", NULL};
        c = draw(f, r, x);
    }
    sb = summary(c, "task_id");
    py = redraw(f, "0.2", "w", "inspection", "0", "{\"U04\":6,\"U06\":1}");
    same(sb, py, "--weighted");
    assert_true(json_integer_value(json_object_get(json_object_get(sb, "units"), "U04")) > 2);
    json_decref(py);
    json_decref(sb);
    json_decref(c);

    /* the table: a title, the headers in Chinese, a line per target */
    {
        const char *x[] = {"-c", f->cfg, "sample", "--at", "2025-09", "--seed", "2025-09 draw",
                           NULL};
        size_t lines = 0;
        const char *p;
        itc_run(r, f->dir, 20000, x);
        assert_int_equal(r->status, 0);
        assert_non_null(strstr(r->out, "2025-09 随机抽取跟班监督对象"));
        assert_non_null(strstr(r->out, "抽取依据"));
        for (p = r->out; (p = strchr(p, '\n')) != NULL; p++)
            lines++;
        assert_int_equal(lines, 2 + json_array_size(json_object_get(a, "targets")));
        json_array_foreach(json_object_get(a, "targets"), i, u)
            assert_non_null(strstr(r->out, json_string_value(json_object_get(u, "task_id"))));
    }
    /* bad usage */
    {
        const char *x[] = {"-c", f->cfg, "sample", "--at", "2025-09", NULL};
        itc_run(r, f->dir, 20000, x);
        assert_int_equal(r->status, 1);
        assert_non_null(strstr(r->err, "--seed"));
    }
    {
        const char *x[] = {"-c", f->cfg, "sample", "--at", "2025-13", "--seed", "x", NULL};
        itc_run(r, f->dir, 20000, x);
        assert_int_equal(r->status, 1);
    }
    {
        const char *x[] = {"-c", f->cfg, "sample", "--seed", "x", "--share", "1.5", NULL};
        itc_run(r, f->dir, 20000, x);
        assert_int_equal(r->status, 1);
        assert_non_null(strstr(r->err, "--share"));
    }
    json_decref(sa);
    json_decref(a);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sample, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
