/* tests/unit/test-logrl.c - the log rate limiter (daemon/lib/logrl.c) on an injected
 * clock, and what daemon/pipeline/inputlog.c makes of it: the lines it writes for
 * floods of bad entries, unknown types and late events, the bound on the
 * unknown-type label values and the lateness histogram. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "riskd/kit.h"
#include "internal.h"

#define T0 INT64_C(1740787200000)
#define S RK_SECOND

/* ------------------------------------------------------------------
 * stderr capture: rk__log writes there
 * ------------------------------------------------------------------ */

static int saved_fd = -1;
static FILE *cap;

static void capture_begin(void)
{
    fflush(stderr);
    cap = tmpfile();
    assert_non_null(cap);
    saved_fd = dup(2);
    dup2(fileno(cap), 2);
}

/* Stop capturing; returns the captured text (caller frees). */
static char *capture_end(void)
{
    long n;
    char *text;
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    n = ftell(cap);
    text = calloc(1, (size_t)n + 1);
    rewind(cap);
    if (n > 0 && fread(text, 1, (size_t)n, cap) != (size_t)n)
        fail_msg("reading the captured log");
    fclose(cap);
    return text;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, len);
        if (needle == NULL || strstr(line, needle) != NULL)
            n++;
        free(line);
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

/* ------------------------------------------------------------------
 * logrl.c
 * ------------------------------------------------------------------ */

/* The first occurrence is logged, the rest of the window held, and one
 * summary names how many and the first held one once the window passed. */
static void test_limiter_first_then_summary(void **st)
{
    rk__logrl rl;
    uint64_t held = 0;
    int64_t elapsed = 0;
    char first[RK_LOGRL_TEXT];
    int i;
    (void)st;
    rk__logrl_init(&rl, 10 * S);
    assert_true(rk__logrl_hit(&rl, NULL, T0, "e1"));
    for (i = 2; i <= 1000; i++) {
        char t[16];
        snprintf(t, sizeof(t), "e%d", i);
        assert_false(rk__logrl_hit(&rl, NULL, T0 + i, t));
    }
    /* Nothing is due before the window has passed. */
    assert_false(rk__logrl_flush(&rl, NULL, T0 + 10 * S - 1, &held, &elapsed, first,
                                 sizeof(first)));
    assert_true(rk__logrl_flush(&rl, NULL, T0 + 10 * S, &held, &elapsed, first,
                                sizeof(first)));
    assert_int_equal(held, 999);
    assert_string_equal(first, "e2");
    assert_int_equal(elapsed, 10 * S);
    /* A new window began: an occurrence right after is held again ... */
    assert_false(rk__logrl_flush(&rl, NULL, T0 + 11 * S, &held, &elapsed, first,
                                 sizeof(first)));
    assert_false(rk__logrl_hit(&rl, NULL, T0 + 11 * S, "e1001"));
    /* ... and once everything is summarised and a window passes quietly,
     * the next one is logged in full again. */
    assert_true(rk__logrl_flush(&rl, NULL, T0 + 20 * S, &held, &elapsed, first,
                                sizeof(first)));
    assert_int_equal(held, 1);
    assert_true(rk__logrl_hit(&rl, NULL, T0 + 31 * S, "e1002"));
}

/* At most one line per window, however dense the occurrences. */
static void test_limiter_one_line_per_window(void **st)
{
    rk__logrl rl;
    uint64_t held, total = 0;
    int64_t elapsed, now;
    char first[64];
    int lines = 0;
    (void)st;
    rk__logrl_init(&rl, 10 * S);
    for (now = T0; now < T0 + 60 * S; now += 7) {     /* ~8,600 occurrences */
        if (rk__logrl_hit(&rl, NULL, now, "x")) {
            lines++;
            total++;
        }
        if ((now - T0) % 250 == 0 &&
            rk__logrl_flush(&rl, NULL, now, &held, &elapsed, first, sizeof(first))) {
            lines++;
            total += held;
        }
    }
    assert_true(lines <= 7);            /* 60 s / 10 s, plus the first line */
    assert_true(lines >= 6);
    assert_true(rk__logrl_flush(&rl, NULL, now + 10 * S, &held, &elapsed, first,
                                sizeof(first)));
    total += held;
    assert_int_equal(total, (uint64_t)((60 * S + 6) / 7));  /* every one accounted */
}

/* A wall clock that steps back restarts the window instead of muting the
 * category until it catches up. */
static void test_limiter_clock_steps_back(void **st)
{
    rk__logrl rl;
    uint64_t held;
    int64_t elapsed;
    char first[64];
    (void)st;
    rk__logrl_init(&rl, 10 * S);
    assert_true(rk__logrl_hit(&rl, NULL, T0, "a"));
    assert_false(rk__logrl_hit(&rl, NULL, T0 - 3600 * S, "b"));
    assert_true(rk__logrl_flush(&rl, NULL, T0 - 3590 * S, &held, &elapsed, first,
                                sizeof(first)));
    assert_int_equal(held, 1);
    assert_string_equal(first, "b");
}

/* The shared budget: a burst, then `rate` lines a second; a line it
 * refuses is held and summarised later. */
static void test_budget(void **st)
{
    rk__logbudget b;
    rk__logrl rl[20];
    uint64_t held;
    int64_t elapsed;
    char first[64];
    int i, logged = 0;
    (void)st;
    rk__logbudget_init(&b, 2.0, 10.0);
    for (i = 0; i < 20; i++) {
        rk__logrl_init(&rl[i], RK_HOUR);
        if (rk__logrl_hit(&rl[i], &b, T0, "first"))
            logged++;
    }
    assert_int_equal(logged, 10);
    assert_false(rk__logbudget_take(&b, T0 + 499));
    assert_true(rk__logbudget_take(&b, T0 + 500));
    /* The ten held first occurrences come out as the budget refills:
     * never logged before, so no window to wait for. */
    logged = 0;
    for (i = 10; i < 20; i++)
        if (rk__logrl_flush(&rl[i], &b, T0 + 3 * S, &held, &elapsed, first, sizeof(first)))
            logged++;
    assert_int_equal(logged, 5);        /* 2.5 s x 2 lines a second */
    assert_int_equal(held, 1);
    assert_string_equal(first, "first");
    /* Capped at the burst after a long quiet time. */
    for (i = 0; i < 10; i++)
        assert_true(rk__logbudget_take(&b, T0 + 3600 * S));
    assert_false(rk__logbudget_take(&b, T0 + 3600 * S));
}

/* ------------------------------------------------------------------
 * inputlog.c
 * ------------------------------------------------------------------ */

static void test_fmt_span(void **st)
{
    char b[48];
    (void)st;
    rk__inlog_fmt_span(2 * RK_DAY + 3 * RK_HOUR + 59 * RK_MINUTE, b, sizeof(b));
    assert_string_equal(b, "2d 3h");
    rk__inlog_fmt_span(2 * RK_DAY + 5 * RK_MINUTE, b, sizeof(b));
    assert_string_equal(b, "2d");
    rk__inlog_fmt_span(5 * RK_MINUTE + 10 * S + 5, b, sizeof(b));
    assert_string_equal(b, "5m 10s");
    rk__inlog_fmt_span(45 * S, b, sizeof(b));
    assert_string_equal(b, "45s");
    rk__inlog_fmt_span(250, b, sizeof(b));
    assert_string_equal(b, "250ms");
}

/* 100,000 invalid entries within 3 s: the first in full, one summary with
 * the count and the first error held, nothing else. */
static void test_invalid_flood_summarised(void **st)
{
    rk__inlog l;
    rk__logbudget b;
    char *log;
    int i;
    (void)st;
    rk__inlog_init(&l);
    rk__logbudget_init(&b, 2.0, 10.0);
    l.budget = &b;
    capture_begin();
    for (i = 0; i < 100000; i++) {
        rk__inlog_bad(&l, RK_INLOG_INVALID, T0 + i / 34, "enforce:scan/%d-0: score: "
                      "expected an integer from 1 to 5", i + 1);
        if (i % 1000 == 0)
            rk__inlog_flush(&l, T0 + i / 34);
    }
    for (i = 0; i <= 40; i++)
        rk__inlog_flush(&l, T0 + 3 * S + i * 250);      /* 10 s of housekeeping */
    log = capture_end();
    assert_int_equal(count_lines(log, NULL), 2);
    assert_int_equal(count_lines(log, "invalid entry enforce:scan/1-0: score: expected an "
                                      "integer from 1 to 5; dead-lettered"), 1);
    assert_int_equal(count_lines(log, "99,999 entries dead-lettered in the last 10 s, first "
                                      "error: enforce:scan/2-0: score: expected"), 1);
    free(log);
    rk__inlog_free(&l);
}

/* Each unknown type is named once an hour with the count since; types
 * beyond the first 100 share the label "other"; label values are escaped. */
static void test_unknown_types(void **st)
{
    rk__inlog l;
    rk__logbudget b;
    rk_buf m = {0};
    const char *keys[RK_STREAM_COUNT] = {"enforce:scan", "enforce:case"};
    char *log, *text;
    int i;
    (void)st;
    rk__inlog_init(&l);
    rk__logbudget_init(&b, 1000.0, 1000.0);
    l.budget = &b;
    capture_begin();
    for (i = 0; i < 58; i++)
        rk__inlog_unknown(&l, RK_STREAM_SCAN, "enforce:scan", "1740-0", "inspection.scaned",
                          T0 + i * S);
    rk__inlog_unknown(&l, RK_STREAM_CASE, "enforce:case", "7-0", "case.reopened", T0);
    rk__inlog_flush(&l, T0 + 59 * 60 * S);              /* within the hour: nothing */
    log = capture_end();
    assert_int_equal(count_lines(log, NULL), 2);
    assert_int_equal(count_lines(log, "unknown event type \"inspection.scaned\" in "
                                      "enforce:scan/1740-0 (skipped)"), 1);
    assert_int_equal(count_lines(log, "unknown event type \"case.reopened\" in "
                                      "enforce:case/7-0 (skipped)"), 1);
    free(log);
    capture_begin();
    rk__inlog_flush(&l, T0 + 3600 * S);
    log = capture_end();
    assert_int_equal(count_lines(log, NULL), 1);
    assert_int_equal(count_lines(log, "unknown event type \"inspection.scaned\" in "
                                      "enforce:scan/1740-0 (skipped; 56 more since the "
                                      "last report)"), 1);
    free(log);

    /* 150 more distinct types: 98 get a label, the rest are "other". */
    capture_begin();
    for (i = 0; i < 150; i++) {
        char t[32];
        snprintf(t, sizeof(t), "x\"%d\\", i);
        rk__inlog_unknown(&l, RK_STREAM_SCAN, "enforce:scan", "9-0", t, T0 + 3601 * S);
    }
    log = capture_end();
    assert_int_equal(count_lines(log, "counted as type \"other\""), 1);
    free(log);
    rk__inlog_render(&l, &m, keys);
    rk_buf_put_bytes(&m, "", 1);
    text = (char *)m.data;
    assert_non_null(strstr(text, "riskd_unknown_events_total{stream=\"enforce:scan\","
                                 "type=\"inspection.scaned\"} 58\n"));
    assert_non_null(strstr(text, "riskd_unknown_events_total{stream=\"enforce:case\","
                                 "type=\"case.reopened\"} 1\n"));
    assert_non_null(strstr(text, "type=\"x\\\"0\\\\\"} 1\n"));
    assert_non_null(strstr(text, "type=\"other\"} 52\n"));
    assert_int_equal(count_lines(text, "riskd_unknown_events_total{"), 101);
    rk_buf_free(&m);
    rk__inlog_free(&l);
}

/* Late events: counters, cumulative histogram in seconds, one line a
 * minute naming the first late event and how many more came. */
static void test_late_events(void **st)
{
    rk__inlog l;
    rk__logbudget b;
    rk_buf m = {0};
    const char *keys[RK_STREAM_COUNT] = {"enforce:scan", "enforce:case"};
    char *log, *text;
    int i;
    (void)st;
    rk__inlog_init(&l);
    rk__logbudget_init(&b, 2.0, 10.0);
    l.budget = &b;
    capture_begin();
    rk__inlog_late(&l, RK_STREAM_SCAN, "enforce:scan", "1-0",
                   2 * RK_DAY + 3 * RK_HOUR, T0);
    for (i = 0; i < 13; i++)
        rk__inlog_late(&l, RK_STREAM_CASE, "enforce:case", "2-0", 500, T0 + S);
    rk__inlog_flush(&l, T0 + 59 * S);
    rk__inlog_flush(&l, T0 + 60 * S);
    log = capture_end();
    assert_int_equal(count_lines(log, NULL), 2);
    assert_int_equal(count_lines(log, "late event enforce:scan/1-0: 2d 3h behind the "
                                      "watermark"), 1);
    assert_int_equal(count_lines(log, "late event enforce:case/2-0: 500ms behind the "
                                      "watermark (12 more late events in the last "
                                      "minute)"), 1);
    free(log);
    rk__inlog_render(&l, &m, keys);
    rk_buf_put_bytes(&m, "", 1);
    text = (char *)m.data;
    assert_non_null(strstr(text, "riskd_late_events_total{stream=\"enforce:scan\"} 1\n"));
    assert_non_null(strstr(text, "riskd_late_events_total{stream=\"enforce:case\"} 13\n"));
    assert_non_null(strstr(text, "# TYPE riskd_event_lateness_seconds histogram\n"));
    assert_non_null(strstr(text, "riskd_event_lateness_seconds_bucket{le=\"1\"} 13\n"));
    assert_non_null(strstr(text, "riskd_event_lateness_seconds_bucket{le=\"86400\"} 13\n"));
    assert_non_null(strstr(text, "riskd_event_lateness_seconds_bucket{le=\"259200\"} 14\n"));
    assert_non_null(strstr(text, "riskd_event_lateness_seconds_bucket{le=\"2592000\"} 14\n"));
    assert_non_null(strstr(text, "riskd_event_lateness_seconds_bucket{le=\"+Inf\"} 14\n"));
    assert_non_null(strstr(text, "riskd_event_lateness_seconds_sum 183606.500\n"));
    assert_non_null(strstr(text, "riskd_event_lateness_seconds_count 14\n"));
    rk_buf_free(&m);
    rk__inlog_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limiter_first_then_summary),
        cmocka_unit_test(test_limiter_one_line_per_window),
        cmocka_unit_test(test_limiter_clock_steps_back),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_fmt_span),
        cmocka_unit_test(test_invalid_flood_summarised),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_late_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
