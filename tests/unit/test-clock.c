/* tests/unit/test-clock.c - the watermark rule, the event-time
 * timer heap and clock.allowed_lateness (daemon/pipeline/clock.c), and the
 * wall-clock tick records and their queue (daemon/pipeline/ticks.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "internal.h"

static void test_watermark_min_over_unread(void **state)
{
    rk__clock c;
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
    assert_int_equal(rk__clock_stream_of(&c, RK_STREAM_CASE)->max_ts, 9000);
    rk__clock_free(&c);
}

static void test_watermark_never_goes_back(void **state)
{
    rk__clock c;
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
    rk__clock c;
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
    rk__clock c;
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
    rk__clock c, d;
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
    assert_int_equal(rk__clock_stream_of(&d, RK_STREAM_SCAN)->max_ts, 42);
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

/* A clock of several partitions' streams: the watermark is the smallest
 * over every stream with unread entries, and the snapshot keeps them all;
 * it restores only into a clock of as many streams. A clock of two is
 * saved in the format of earlier releases (version 1, no count). */
static void test_many_streams(void **state)
{
    rk__clock c, d, two;
    bool unread[6] = {true, true, true, true, true, true};
    rk_buf b = {0}, b2 = {0};
    unsigned si;
    (void)state;
    rk__clock_init(&c);
    assert_int_equal(rk__clock_set_streams(&c, 6), 0);
    for (si = 0; si < 5; si++)
        rk__clock_observe(&c, si, 1000 + (int64_t)si * 100);
    assert_true(rk__clock_candidate(&c, unread) == INT64_MIN);    /* stream 5: none */
    rk__clock_observe(&c, 5, 900);
    assert_int_equal(rk__clock_candidate(&c, unread), 900);
    unread[5] = false;
    unread[0] = false;
    assert_int_equal(rk__clock_candidate(&c, unread), 1100);
    rk__clock_observe(&c, 6, 1);      /* no such stream: ignored */
    rk__clock_advance(&c, 1100);
    rk__clock_timer_add(&c, 5000, 0, "k", 1);
    rk__clock_snapshot(&c, &b, det_name, NULL);
    rk__clock_init(&d);
    assert_int_equal(rk__clock_set_streams(&d, 6), 0);
    assert_int_equal(rk__clock_restore(&d, b.data, b.len, det_index_swapped, NULL), 0);
    assert_int_equal(d.nstreams, 6);
    for (si = 0; si < 6; si++)
        assert_int_equal(rk__clock_stream_of(&d, si)->max_ts,
                         rk__clock_stream_of(&c, si)->max_ts);
    assert_int_equal(d.watermark, 1100);
    assert_int_equal(d.ntimers, 1);   /* alpha's timer, now index 1 */
    rk__clock_init(&two);
    assert_int_equal(rk__clock_restore(&two, b.data, b.len, det_index_swapped, NULL), -1);
    rk__clock_observe(&two, RK_STREAM_CASE, 7);
    rk__clock_snapshot(&two, &b2, det_name, NULL);
    assert_int_equal(b2.data[0], 1);  /* version 1, little-endian */
    assert_int_equal(rk__clock_restore(&d, b2.data, b2.len, det_index_swapped, NULL), -1);
    assert_int_equal(d.nstreams, 6);  /* left alone */
    /* rk__clock_free forgets the times, keeps the streams */
    rk__clock_free(&d);
    assert_int_equal(d.nstreams, 6);
    assert_false(rk__clock_stream_of(&d, 5)->has_ts);
    rk_buf_free(&b);
    rk_buf_free(&b2);
    rk__clock_release(&c);
    rk__clock_release(&d);
    rk__clock_release(&two);
}

#define H INT64_C(3600000)

/* With allowed_lateness L a deadline d fires only once the watermark
 * passes d + L; now() is the watermark minus L. */
static void test_allowed_lateness_holds_timers_back(void **state)
{
    rk__clock c;
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
    rk__clock c, d;
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

/* rk__clock_due_at: the rule of rk__clock_pop_due, asked for a watermark
 * not yet reached (the idle engine ticks only when a timer is due). */
static void test_due_at(void **state)
{
    rk__clock c;
    (void)state;
    rk__clock_init(&c);
    assert_false(rk__clock_due_at(&c, 1000000));
    assert_int_equal(rk__clock_timer_add(&c, 5000, 0, "k", 0), 0);
    assert_false(rk__clock_due_at(&c, 5000));       /* strictly after */
    assert_true(rk__clock_due_at(&c, 5001));
    rk__clock_free(&c);
}

/* hiredis reply nodes by hand (freed by freeReplyObject). */
static redisReply *str_reply(const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *arr_reply(size_t n, const char *const *strs)
{
    redisReply *r = calloc(1, sizeof(*r));
    size_t i;
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    for (i = 0; i < n; i++)
        r->element[i] = str_reply(strs[i]);
    return r;
}

/* [id, [field, value, ...]] */
static redisReply *entry_reply(size_t n, const char *const *fields)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = 2;
    r->element = calloc(2, sizeof(*r->element));
    r->element[0] = str_reply("1-0");
    r->element[1] = arr_reply(n, fields);
    return r;
}

/* A tick's record (ticks.c) reads back as the tick; a stream the
 * configuration no longer names is ignored; anything else is no tick. */
static void test_tick_record_round_trip(void **state)
{
    static const char *const keys[RK_STREAM_COUNT] = {"enforce:scan", "enforce:case"};
    char buf[RK_STREAM_COUNT + 1][48];
    const char *argv[RK_TICK_ARGS(RK_STREAM_COUNT)];
    rk__tick t, back;
    redisReply *r;
    (void)state;

    assert_int_equal(rk__tick_init(&t, RK_STREAM_COUNT), 0);
    assert_int_equal(rk__tick_init(&back, RK_STREAM_COUNT), 0);
    t.ts = 1796439286079LL;
    t.pos[RK_STREAM_SCAN].ms = 1796439286080ULL;
    t.pos[RK_STREAM_SCAN].seq = 3;
    t.pos[RK_STREAM_CASE].stream = RK_STREAM_CASE;
    rk__tick_args(&t, keys, buf, argv);
    assert_string_equal(argv[0], "ts");
    assert_string_equal(argv[1], "1796439286079");
    assert_string_equal(argv[2], "enforce:scan");
    assert_string_equal(argv[3], "1796439286080-3");
    assert_string_equal(argv[5], "0-0");
    r = entry_reply(RK_TICK_ARGS(RK_STREAM_COUNT), argv);
    assert_int_equal(rk__tick_parse(r, keys, &back), 0);
    assert_int_equal(back.ts, t.ts);
    assert_memory_equal(back.pos, t.pos, RK_STREAM_COUNT * sizeof(*t.pos));
    freeReplyObject(r);
    {
        static const char *const other[] = {"ts", "5", "old:stream", "9-9",
                                            "enforce:case", "7-1"};
        r = entry_reply(6, other);
        assert_int_equal(rk__tick_parse(r, keys, &back), 0);
        assert_int_equal(back.ts, 5);
        assert_int_equal(back.pos[RK_STREAM_SCAN].ms, 0);
        assert_int_equal(back.pos[RK_STREAM_CASE].ms, 7);
        assert_int_equal(back.pos[RK_STREAM_CASE].seq, 1);
        freeReplyObject(r);
    }
    {
        /* no ts, a ts or an id that is not a number, an id without its seq */
        static const char *const bad[][4] = {
            {"other", "1-0", "enforce:case", "1-0"}, {"ts", "x", "enforce:case", "1-0"},
            {"ts", "", "enforce:case", "1-0"}, {"ts", "12a", "enforce:case", "1-0"},
            {"ts", "1", "enforce:scan", "1-"}, {"ts", "1", "enforce:scan", "-1"},
            {"ts", "1", "enforce:scan", "1"}, {"ts", "1", "enforce:scan", "a-1"}};
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            r = entry_reply(4, bad[i]);
            if (rk__tick_parse(r, keys, &back) != -1)
                fail_msg("bad record %zu parsed", i);
            freeReplyObject(r);
        }
        r = str_reply("1-0");
        assert_int_equal(rk__tick_parse(r, keys, &back), -1);
        freeReplyObject(r);
        assert_int_equal(rk__tick_parse(NULL, keys, &back), -1);
    }
    rk__tick_free(&t);
    rk__tick_free(&back);
}

/* A tick of the pipeline reading several partitions names each of their
 * streams, and reads back with every position in place. */
static void test_tick_record_many_streams(void **state)
{
    static const char *const keys[4] = {"s:{0}", "c:{0}", "s:{1}", "c:{1}"};
    char buf[5][48];
    const char *argv[RK_TICK_ARGS(4)];
    rk__tick t, back;
    redisReply *r;
    unsigned si;
    (void)state;

    assert_int_equal(rk__tick_init(&t, 4), 0);
    assert_int_equal(rk__tick_init(&back, 4), 0);
    t.ts = 77;
    for (si = 0; si < 4; si++) {
        assert_int_equal(t.pos[si].stream, si);
        t.pos[si].ms = 100 + si;
        t.pos[si].seq = si;
    }
    rk__tick_args(&t, keys, buf, argv);
    assert_string_equal(argv[8], "c:{1}");
    assert_string_equal(argv[9], "103-3");
    r = entry_reply(RK_TICK_ARGS(4), argv);
    assert_int_equal(rk__tick_parse(r, keys, &back), 0);
    assert_int_equal(back.ts, 77);
    assert_memory_equal(back.pos, t.pos, 4 * sizeof(*t.pos));
    freeReplyObject(r);
    rk__tick_free(&t);
    rk__tick_free(&back);
}

/* The queue of ticks to apply: first in, first out, reused once empty. */
static void test_tick_queue(void **state)
{
    rk__ticks q;
    rk__tick t;
    int i;
    (void)state;
    memset(&q, 0, sizeof(q));
    assert_int_equal(rk__tick_init(&t, 3), 0);
    assert_null(rk__ticks_head(&q));
    for (i = 0; i < 40; i++) {
        t.ts = i;
        t.pos[2].ms = (uint64_t)i;
        assert_int_equal(rk__ticks_push(&q, &t), 0);
    }
    assert_int_equal(rk__ticks_count(&q), 40);
    for (i = 0; i < 40; i++) {
        /* each queued tick keeps its own positions */
        assert_int_equal(rk__ticks_head(&q)->ts, i);
        assert_int_equal(rk__ticks_head(&q)->n, 3);
        assert_int_equal(rk__ticks_head(&q)->pos[2].ms, i);
        rk__ticks_pop(&q);
    }
    assert_null(rk__ticks_head(&q));
    assert_int_equal(rk__ticks_count(&q), 0);
    t.ts = 99;
    assert_int_equal(rk__ticks_push(&q, &t), 0);
    assert_int_equal(rk__ticks_head(&q)->ts, 99);
    assert_int_equal(rk__ticks_push(&q, &t), 0);
    rk__ticks_free(&q);             /* frees the ticks still queued */
    rk__tick_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watermark_min_over_unread),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_tick_record_many_streams),
        cmocka_unit_test(test_watermark_never_goes_back),
        cmocka_unit_test(test_timers_fire_strictly_after_deadline_in_order),
        cmocka_unit_test(test_heap_many_timers),
        cmocka_unit_test(test_snapshot_restore),
        cmocka_unit_test(test_allowed_lateness_holds_timers_back),
        cmocka_unit_test(test_allowed_lateness_saturates_and_is_kept),
        cmocka_unit_test(test_due_at),
        cmocka_unit_test(test_tick_record_round_trip),
        cmocka_unit_test(test_tick_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
