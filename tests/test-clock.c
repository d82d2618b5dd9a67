/* tests/test-clock.c - the watermark rule, the event-time
 * timer heap and clock.allowed_lateness (daemon/clock.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void test_watermark_min_over_unread(void **state)
{
    rk_clock c;
    bool unread[RK_STREAM_COUNT] = {true, true};
    (void)state;
    rk__clock_init(&c);
    /* Nothing read from a stream that still holds entries: time holds. */
    rk__clock_observe(&c, RK_STREAM_SCAN, 5000);
    assert_true(rk__clock_candidate(&c, unread) == INT64_MIN);
    /* Both read: the smaller of the two maxima. */
    rk__clock_observe(&c, RK_STREAM_CASE, 3000);
    assert_int_equal(rk__clock_candidate(&c, unread), 3000);
    /* The case stream caught up: it no longer holds time back. */
    unread[RK_STREAM_CASE] = false;
    assert_int_equal(rk__clock_candidate(&c, unread), 5000);
    /* All caught up: the largest ts read. */
    unread[RK_STREAM_SCAN] = false;
    rk__clock_observe(&c, RK_STREAM_CASE, 9000);
    assert_int_equal(rk__clock_candidate(&c, unread), 9000);
    /* An older ts never lowers a stream's maximum. */
    rk__clock_observe(&c, RK_STREAM_CASE, 1000);
    assert_int_equal(c.max_ts[RK_STREAM_CASE], 9000);
    rk__clock_free(&c);
}

static void test_watermark_never_goes_back(void **state)
{
    rk_clock c;
    (void)state;
    rk__clock_init(&c);
    assert_int_equal(rk__clock_advance(&c, 100), 1);
    assert_int_equal(rk__clock_advance(&c, 50), 0);
    assert_int_equal(c.watermark, 100);
    assert_int_equal(rk__clock_advance(&c, 100), 0);
    rk__clock_free(&c);
}

static void test_timers_fire_strictly_after_deadline_in_order(void **state)
{
    rk_clock c;
    rk__timer t;
    (void)state;
    rk__clock_init(&c);
    assert_int_equal(rk__clock_timer_add(&c, 300, 0, "c", 3), 0);
    assert_int_equal(rk__clock_timer_add(&c, 100, 1, "a", 1), 0);
    assert_int_equal(rk__clock_timer_add(&c, 200, 0, "b1", 2), 0);
    assert_int_equal(rk__clock_timer_add(&c, 200, 0, "b2", 4), 0);
    rk__clock_advance(&c, 100);
    assert_int_equal(rk__clock_pop_due(&c, &t), 0);   /* == deadline: not yet */
    rk__clock_advance(&c, 101);
    assert_int_equal(rk__clock_pop_due(&c, &t), 1);
    assert_string_equal(t.key, "a");
    assert_int_equal(t.det, 1);
    free(t.key);
    assert_int_equal(rk__clock_pop_due(&c, &t), 0);
    rk__clock_advance(&c, 1000);
    /* equal deadlines fire in arming order */
    assert_int_equal(rk__clock_pop_due(&c, &t), 1);
    assert_string_equal(t.key, "b1");
    free(t.key);
    assert_int_equal(rk__clock_pop_due(&c, &t), 1);
    assert_string_equal(t.key, "b2");
    free(t.key);
    assert_int_equal(rk__clock_pop_due(&c, &t), 1);
    assert_string_equal(t.key, "c");
    assert_int_equal(t.arg, 3);
    free(t.key);
    assert_int_equal(rk__clock_pop_due(&c, &t), 0);
    rk__clock_free(&c);
}

static void test_heap_many_timers(void **state)
{
    rk_clock c;
    rk__timer t;
    int64_t last = INT64_MIN;
    int i, n = 0;
    (void)state;
    rk__clock_init(&c);
    srand(7);
    for (i = 0; i < 5000; i++)
        assert_int_equal(rk__clock_timer_add(&c, rand() % 100000, 0, "k", (uint64_t)i), 0);
    rk__clock_advance(&c, 200000);
    while (rk__clock_pop_due(&c, &t)) {
        assert_true(t.deadline >= last);
        last = t.deadline;
        free(t.key);
        n++;
    }
    assert_int_equal(n, 5000);
    rk__clock_free(&c);
}

static const char *names[] = {"alpha", "beta"};
static const char *det_name(uint32_t i, void *ud) { (void)ud; return names[i]; }
static int det_index_swapped(const char *n, void *ud)
{
    (void)ud;
    if (strcmp(n, "alpha") == 0) return 1;
    return -1;                      /* beta is gone */
}

static void test_snapshot_restore(void **state)
{
    rk_clock c, d;
    rk_buf b = {0};
    rk__timer t;
    (void)state;
    rk__clock_init(&c);
    rk__clock_observe(&c, RK_STREAM_SCAN, 42);
    rk__clock_advance(&c, 40);
    rk__clock_timer_add(&c, 500, 0, "keep", 9);
    rk__clock_timer_add(&c, 400, 1, "drop", 8);
    rk__clock_snapshot(&c, &b, det_name, NULL);
    rk__clock_init(&d);
    assert_int_equal(rk__clock_restore(&d, b.data, b.len, det_index_swapped, NULL), 0);
    assert_int_equal(d.watermark, 40);
    assert_int_equal(d.max_ts[RK_STREAM_SCAN], 42);
    assert_int_equal(d.ntimers, 1);
    rk__clock_advance(&d, 1000);
    assert_int_equal(rk__clock_pop_due(&d, &t), 1);
    assert_string_equal(t.key, "keep");
    assert_int_equal(t.det, 1);
    free(t.key);
    /* Truncated or garbage input is refused and leaves the clock alone. */
    assert_int_equal(rk__clock_restore(&d, b.data, b.len - 3, det_index_swapped, NULL), -1);
    assert_int_equal(rk__clock_restore(&d, "garbage!", 8, det_index_swapped, NULL), -1);
    assert_int_equal(d.watermark, 1000);
    rk_buf_free(&b);
    rk__clock_free(&c);
    rk__clock_free(&d);
}

#define H INT64_C(3600000)

/* With allowed_lateness L a deadline d fires only once the watermark
 * passes d + L; now() is the watermark minus L. */
static void test_allowed_lateness_holds_timers_back(void **state)
{
    rk_clock c;
    rk__timer t;
    const int64_t d = INT64_C(1740787200000);
    (void)state;
    rk__clock_init(&c);
    rk__clock_set_lateness(&c, 72 * H);
    assert_true(rk__clock_now(&c) == INT64_MIN);        /* before any event */
    assert_int_equal(rk__clock_timer_add(&c, d, 0, "fns", 0), 0);
    rk__clock_advance(&c, d + 1);
    assert_int_equal(rk__clock_now(&c), d + 1 - 72 * H);
    assert_int_equal(rk__clock_pop_due(&c, &t), 0);     /* 0 s would fire here */
    rk__clock_advance(&c, d + 48 * H);                  /* a two-day-late batch's time */
    assert_int_equal(rk__clock_pop_due(&c, &t), 0);
    rk__clock_advance(&c, d + 72 * H);                  /* == d + L: not yet */
    assert_int_equal(rk__clock_pop_due(&c, &t), 0);
    rk__clock_advance(&c, d + 72 * H + 1);
    assert_int_equal(rk__clock_pop_due(&c, &t), 1);
    assert_true(t.deadline == d);
    free(t.key);
    /* Lowering the lateness releases what is now due at once. */
    assert_int_equal(rk__clock_timer_add(&c, d + 10 * H, 0, "x", 0), 0);
    assert_int_equal(rk__clock_pop_due(&c, &t), 0);
    rk__clock_set_lateness(&c, 0);
    assert_int_equal(rk__clock_now(&c), c.watermark);
    assert_int_equal(rk__clock_pop_due(&c, &t), 1);
    free(t.key);
    rk__clock_set_lateness(&c, -5);                     /* read as 0 */
    assert_int_equal(c.lateness, 0);
    rk__clock_free(&c);
}

/* now() saturates instead of wrapping near the smallest times, and the
 * lateness (configuration) survives free and restore. */
static void test_allowed_lateness_saturates_and_is_kept(void **state)
{
    rk_clock c, d;
    rk_buf b = {0};
    (void)state;
    rk__clock_init(&c);
    rk__clock_set_lateness(&c, 10);
    rk__clock_advance(&c, INT64_MIN + 5);
    assert_true(rk__clock_now(&c) == INT64_MIN + 1);
    rk__clock_free(&c);
    assert_int_equal(c.lateness, 10);
    assert_true(c.watermark == INT64_MIN);
    rk__clock_advance(&c, 1000);
    rk__clock_snapshot(&c, &b, det_name, NULL);
    rk__clock_init(&d);
    rk__clock_set_lateness(&d, 250);
    assert_int_equal(rk__clock_restore(&d, b.data, b.len, det_index_swapped, NULL), 0);
    assert_int_equal(d.lateness, 250);
    assert_int_equal(rk__clock_now(&d), 750);
    rk_buf_free(&b);
    rk__clock_free(&c);
    rk__clock_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watermark_min_over_unread),
        cmocka_unit_test(test_watermark_never_goes_back),
        cmocka_unit_test(test_timers_fire_strictly_after_deadline_in_order),
        cmocka_unit_test(test_heap_many_timers),
        cmocka_unit_test(test_snapshot_restore),
        cmocka_unit_test(test_allowed_lateness_holds_timers_back),
        cmocka_unit_test(test_allowed_lateness_saturates_and_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
