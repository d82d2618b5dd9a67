/* tests/integration/test-demo.c - the quick start's demo (tests/demo/run.sh)
 * shows what it promises.
 *
 * It runs the script as `sh tests/demo/run.sh --check` (no install, no
 * build: the binaries of $BUILD; its own redis-server on a free port, data
 * in a scratch directory) from the repository root, as `make test` does,
 * and checks: it exits 0; every rule of every built-in detector and of the
 * example plugin two_officers fired (the closing table, by detector and
 * rule, has a count above 0 for each, from this test's own list, so a rule
 * dropped from the script's list is noticed, and the counts add up to the
 * alerts in the stream, notices left out); late data and event time end
 * alerts: the table of notices by status counts at least one resolved and
 * one retracted; every alert and every notice in the stream was printed as
 * it arrived (one line each, as many as the stream holds: the subscriber
 * reads line by line), the notices with their status; the sample lists
 * were loaded and the dashboard's URL printed; nothing was dead-lettered.
 * A bad argument is refused with exit 1 and a line naming it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "itest.h"

#define OUT_MAX (1 << 20)

/* Every detector/rule pair riskd ships (riskd-detectors(7)). */
static const char *const rules[][2] = {
    {"unfiled_inspection", "scan_without_filing"},
    {"unfiled_inspection", "reported_without_filing"},
    {"unfiled_inspection", "case_without_filing"},
    {"unfiled_inspection", "enterprise_mismatch"},
    {"unfiled_inspection", "filed_not_scanned"},
    {"bad_rating", "bad_rating"},
    {"bad_rating", "officer_repeated"},
    {"bad_rating", "unit_ratio"},
    {"fine_growth", "growth"},
    {"complaint_cluster", "cluster"},
    {"inspection_frequency", "repeat"},
    {"inspection_frequency", "whitelist"},
    {"inspection_frequency", "multi_unit"},
    {"discretion", "out_of_benchmark"},
    {"discretion", "disparity"},
    {"discretion", "exempt_fined"},
    {"review_correction", "corrections"},
    {"violation_hotspot", "hotspot"},
    {"officer_credential", "uncertified"},
    {"two_officers", "too_few_officers"},
};

/* Run a shell command with stderr joined to stdout; up to OUT_MAX - 1
 * bytes of it into out. Returns the exit status, or -1. */
static int run(char *out, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *p;
    size_t n = 0, got;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
    va_end(ap);
    strcat(cmd, " 2>&1");
    if ((p = popen(cmd, "r")) == NULL)
        return -1;
    while ((got = fread(out + n, 1, OUT_MAX - 1 - n, p)) > 0)
        n += got;
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The count the closing table gives detector/rule, or -1 when absent.
 * A row is "   <detector> <spaces> <rule> <spaces> <count>". */
static long table_count(const char *out, const char *det, const char *rule)
{
    const char *p = strstr(out, "alerts by detector and rule");
    size_t dl = strlen(det), rl = strlen(rule);

    if (p == NULL)
        return -1;
    while ((p = strstr(p, "\n   ")) != NULL) {
        const char *q = p + 4;
        p++;
        if (strncmp(q, det, dl) != 0 || q[dl] != ' ')
            continue;
        q += dl;
        while (*q == ' ')
            q++;
        if (strncmp(q, rule, rl) != 0 || q[rl] != ' ')
            continue;
        return strtol(q + rl, NULL, 10);
    }
    return -1;
}

/* The count the table of notices gives status, or -1 when absent. A row
 * is "   <status> <spaces> <count> <spaces> <rules>". */
static long notice_count(const char *out, const char *status)
{
    const char *p = strstr(out, "notices by status");
    size_t sl = strlen(status);

    if (p == NULL)
        return -1;
    while ((p = strstr(p, "\n   ")) != NULL) {
        const char *q = p + 4;
        p++;
        if (strncmp(q, status, sl) == 0 && q[sl] == ' ')
            return strtol(q + sl, NULL, 10);
    }
    return -1;
}

/* Lines of out that start with prefix. */
static int count_lines(const char *out, const char *prefix)
{
    const char *p = out;
    int n = 0;
    size_t pl = strlen(prefix);
    while (p && *p) {
        if (strncmp(p, prefix, pl) == 0)
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

static void test_demo_trips_every_rule(void **state)
{
    char dir[256], url[64];
    char *out = malloc(OUT_MAX);
    int port = it_free_port(), webport = it_free_port(), st;
    long streamed = -1, notices = -1, dead = -1, sum = 0;
    const char *p;
    size_t i;

    (void)state;
    assert_non_null(out);
    assert_true(port > 0 && webport > 0 && port != webport);
    assert_int_equal(it_tmpdir(dir, sizeof(dir), "demo"), 0);
    st = run(out, "BUILD='%s' sh tests/demo/run.sh --check --dir '%s/run' --port %d "
             "--web-port %d", it_build_dir(), dir, port, webport);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(st, 0);

    for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        long c = table_count(out, rules[i][0], rules[i][1]);
        if (c <= 0)
            fprintf(stderr, "%s\n%s/%s: %ld in the table\n", out, rules[i][0], rules[i][1], c);
        assert_true(c > 0);
        sum += c;
    }
    /* Every alert and notice of the stream was printed as it arrived. */
    for (p = out; p != NULL; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (sscanf(p, ">> %ld alerts and %ld notices in the stream 'alerts'; "
                   "'riskd:dead' holds %ld", &streamed, &notices, &dead) == 3)
            break;
    assert_non_null(p);
    assert_true(streamed >= (long)(sizeof(rules) / sizeof(rules[0])));
    assert_int_equal(sum, streamed);
    assert_int_equal(count_lines(out, "   ["), streamed);
    assert_int_equal(count_lines(out, "   => "), notices);
    /* At least one alert resolved and one retracted, shown and counted. */
    assert_true(notice_count(out, "resolved") >= 1);
    assert_true(notice_count(out, "retracted") >= 1);
    assert_int_equal(notice_count(out, "resolved") + notice_count(out, "retracted") +
                     notice_count(out, "closed") + notice_count(out, "acknowledged"), notices);
    assert_true(count_lines(out, "   => resolved ") >= 1);
    assert_true(count_lines(out, "   => retracted ") >= 1);
    assert_int_equal(dead, 0);
    /* The lists, and the dashboard's address. */
    assert_non_null(strstr(out, "credentials: 5 rows loaded"));
    assert_non_null(strstr(out, "whitelist: 3 rows loaded"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", webport);
    assert_non_null(strstr(out, url));

    run(out, "rm -rf '%s'", dir);
    free(out);
}

static void test_demo_refuses_bad_argument(void **state)
{
    char *out = malloc(OUT_MAX);
    (void)state;
    assert_non_null(out);
    assert_int_equal(run(out, "sh tests/demo/run.sh --check --bogus"), 1);
    assert_non_null(strstr(out, "unknown argument '--bogus'"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_trips_every_rule),
        cmocka_unit_test(test_demo_refuses_bad_argument),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
