/* tests/integration/test-redis.c - the connection layer (daemon/redis/redis.c) against one
 * real redis-server, driven on a libuv loop inside the test.
 *
 *   1. Replies built in the connection's arena (opts.reply_arena) equal
 *      the server's data: a stream of 3000 entries read back with XRANGE in
 *      one reply of a few MB (built across many socket reads, in chained
 *      blocks), then 500 small replies pipelined in one loop
 *      turn (many finished in one read, each rewound before the next is
 *      built), nested arrays, integers, nils, errors. The same checks run
 *      without the arena.
 *   2. Writes: 2000 commands queued in one loop turn are written and
 *      answered in order; a 16 MB SET, which the socket does not take at
 *      once, completes through repeated writable events.
 *   3. rk__redis_flush: a queued command reaches Redis before the loop
 *      runs again (and its reply still arrives through the loop).
 *   4. The connection comes back after the server restarts, and the
 *      arena-built replies are still right afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "internal.h"
#include "itest.h"

#define ENTRIES 3000
#define SMALL 500

static it_redis srv;
static uv_loop_t loop;

typedef struct drv {
    rk__redis *r;
    int ups, downs;
    int answered;                   /* replies checked */
    int bad;                        /* replies that did not match */
    int next;                       /* the order replies must come in */
    char why[256];
} drv;

static void on_state(rk__redis *r, int up, void *ud)
{
    drv *d = ud;
    (void)r;
    if (up)
        d->ups++;
    else
        d->downs++;
}

static void bad(drv *d, const char *fmt, ...)
{
    va_list ap;
    if (d->bad++ == 0) {
        va_start(ap, fmt);
        vsnprintf(d->why, sizeof(d->why), fmt, ap);
        va_end(ap);
    }
}

/* Run the loop until *flag reaches want or ms pass. */
static bool run_until(const int *flag, int want, int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (*flag < want && uv_hrtime() < end)
        uv_run(&loop, UV_RUN_ONCE);
    return *flag >= want;
}

static void open_conn(drv *d, int arena)
{
    rk__redis_opts o;
    memset(d, 0, sizeof(*d));
    memset(&o, 0, sizeof(o));
    o.name = "test";
    o.host = "127.0.0.1";
    o.port = srv.port;
    o.connect_timeout_ms = 1000;
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 500;
    o.reply_arena = arena;
    uv_update_time(&loop);
    d->r = rk__redis_new(&loop, &o, on_state, d);
    assert_non_null(d->r);
    assert_true(run_until(&d->ups, 1, 5000));
}

/* Run the loop until nothing is left on it, 2 s at most: a connection
 * left open by a failed test keeps it alive for ever. */
static void drain_loop(void)
{
    uint64_t end = uv_hrtime() + UINT64_C(2000000000);
    while (uv_run(&loop, UV_RUN_NOWAIT) != 0 && uv_hrtime() < end)
        it_sleep_ms(1);
}

static void close_conn(drv *d)
{
    rk__redis_close(d->r);
    drain_loop();
}

/* The payload of entry i (deterministic, 200-1200 bytes). */
static size_t payload(int i, char *buf, size_t cap)
{
    size_t n = 200 + (size_t)(i * 7919) % 1000, k;
    for (k = 0; k < n && k + 1 < cap; k++)
        buf[k] = (char)('a' + (i + (int)k) % 26);
    buf[k] = '\0';
    return k;
}

/* XRANGE s - +: ENTRIES entries [id, ["n", i, "p", payload, "x", ""]]. */
static void on_xrange(rk__redis *r, redisReply *rep, void *pd)
{
    drv *d = pd;
    char want[1300], num[24];
    size_t i;
    (void)r;
    d->answered++;
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != ENTRIES) {
        bad(d, "XRANGE: type %d, %zu elements", rep ? rep->type : -1, rep ? rep->elements : 0);
        return;
    }
    for (i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i], *f;
        size_t n = payload((int)i, want, sizeof(want));
        snprintf(num, sizeof(num), "%zu", i);
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            (f = e->element[1])->type != REDIS_REPLY_ARRAY || f->elements != 6 ||
            strcmp(f->element[1]->str, num) != 0 || f->element[3]->len != n ||
            memcmp(f->element[3]->str, want, n) != 0 || f->element[3]->str[n] != '\0' ||
            f->element[5]->len != 0 || f->element[5]->str[0] != '\0') {
            bad(d, "XRANGE entry %zu differs", i);
            return;
        }
    }
}

/* The replies of the small commands, in the order they were sent. */
static void on_small(rk__redis *r, redisReply *rep, void *pd)
{
    drv *d = pd;
    int i = d->next++;
    char want[32];
    (void)r;
    d->answered++;
    if (rep == NULL) {
        bad(d, "small %d: NULL", i);
        return;
    }
    switch (i % 5) {
    case 0:                         /* GET k<i> */
        snprintf(want, sizeof(want), "value-%d", i);
        if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, want) != 0)
            bad(d, "small %d: GET gave %d %s", i, rep->type, rep->str ? rep->str : "");
        break;
    case 1:                         /* INCRBY n i */
        if (rep->type != REDIS_REPLY_INTEGER)
            bad(d, "small %d: INCRBY gave type %d", i, rep->type);
        break;
    case 2:                         /* GET of a missing key */
        if (rep->type != REDIS_REPLY_NIL)
            bad(d, "small %d: want nil, got %d", i, rep->type);
        break;
    case 3:                         /* an unknown command */
        if (rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "ERR unknown command", 19) != 0)
            bad(d, "small %d: want an error, got %d", i, rep->type);
        break;
    default:                        /* MGET k<i-4> missing k<i-4> */
        snprintf(want, sizeof(want), "value-%d", i - 4);
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
            strcmp(rep->element[0]->str, want) != 0 ||
            rep->element[1]->type != REDIS_REPLY_NIL ||
            strcmp(rep->element[2]->str, want) != 0)
            bad(d, "small %d: MGET differs", i);
        break;
    }
}

static void send_small(drv *d, int i)
{
    char key[32], val[32], key0[32];
    snprintf(key, sizeof(key), "k%d", i);
    snprintf(val, sizeof(val), "value-%d", i);
    switch (i % 5) {
    case 0: {
        /* set by the test's own client beforehand */
        const char *argv[2] = {"GET", key};
        assert_int_equal(rk__redis_cmd(d->r, on_small, d, 0, 2, argv, NULL), 0);
        break;
    }
    case 1: {
        const char *argv[3] = {"INCRBY", "n", val + 6};
        assert_int_equal(rk__redis_cmd(d->r, on_small, d, 0, 3, argv, NULL), 0);
        break;
    }
    case 2: {
        const char *argv[2] = {"GET", "no-such-key"};
        assert_int_equal(rk__redis_cmd(d->r, on_small, d, 0, 2, argv, NULL), 0);
        break;
    }
    case 3: {
        const char *argv[1] = {"NO-SUCH-COMMAND"};
        assert_int_equal(rk__redis_cmd(d->r, on_small, d, 0, 1, argv, NULL), 0);
        break;
    }
    default: {
        const char *argv[4] = {"MGET", key0, "no-such-key", key0};
        snprintf(key0, sizeof(key0), "k%d", i - 4);
        assert_int_equal(rk__redis_cmd(d->r, on_small, d, 0, 4, argv, NULL), 0);
        break;
    }
    }
}

static void check_replies(drv *d)
{
    int i;
    const char *argv[4] = {"XRANGE", "s", "-", "+"};

    assert_int_equal(rk__redis_cmd(d->r, on_xrange, d, 0, 4, argv, NULL), 0);
    assert_true(run_until(&d->answered, 1, 10000));
    d->answered = 0;
    d->next = 0;
    for (i = 0; i < SMALL; i++)     /* one loop turn */
        send_small(d, i);
    assert_true(run_until(&d->answered, SMALL, 10000));
    if (d->bad)
        fail_msg("%d bad replies; first: %s", d->bad, d->why);
}

/* Write the stream and the keys the checks read (after a FLUSHALL). */
static int load_data(void)
{
    redisContext *c;
    char buf[1300], num[16];
    int i, n = 0;

    c = it_connect(srv.port);
    redisAppendCommand(c, "FLUSHALL");
    n++;
    for (i = 0; i < ENTRIES; i++, n++) {
        payload(i, buf, sizeof(buf));
        snprintf(num, sizeof(num), "%d", i);
        redisAppendCommand(c, "XADD s * n %s p %s x %s", num, buf, "");
    }
    for (i = 0; i < SMALL; i += 5, n++)
        redisAppendCommand(c, "SET k%d value-%d", i, i);
    for (i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL ||
            r->type == REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            redisFree(c);
            return -1;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (uv_loop_init(&loop) != 0 || it_redis_start(&srv, NULL) != 0)
        return -1;
    return load_data();
}

static int teardown(void **state)
{
    (void)state;
    drain_loop();
    uv_loop_close(&loop);
    it_redis_stop(&srv);
    return 0;
}

static void test_replies_in_arena(void **state)
{
    drv d;
    (void)state;
    open_conn(&d, 1);
    check_replies(&d);
    check_replies(&d);              /* the arena reused */
    close_conn(&d);
}

static void test_replies_malloc(void **state)
{
    drv d;
    (void)state;
    open_conn(&d, 0);
    check_replies(&d);
    close_conn(&d);
}

static void on_count(rk__redis *r, redisReply *rep, void *pd)
{
    drv *d = pd;
    int i = d->next++;
    (void)r;
    d->answered++;
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer != i + 1)
        bad(d, "INCR %d: got %lld", i, rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1);
}

static void on_ok(rk__redis *r, redisReply *rep, void *pd)
{
    drv *d = pd;
    (void)r;
    d->answered++;
    if (rep == NULL || rep->type != REDIS_REPLY_STATUS)
        bad(d, "big SET: %s", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no OK");
}

static void test_writes(void **state)
{
    const size_t big = (size_t)16 * 1024 * 1024;
    char *val = malloc(big);
    const char *argv[3] = {"SET", "big", val};
    size_t lens[3] = {3, 3, big};
    redisContext *c;
    redisReply *r;
    drv d;
    int i;
    (void)state;

    assert_non_null(val);
    memset(val, 'v', big);
    open_conn(&d, 1);
    for (i = 0; i < 2000; i++) {
        const char *inc[2] = {"INCR", "counter"};
        assert_int_equal(rk__redis_cmd(d.r, on_count, &d, 0, 2, inc, NULL), 0);
    }
    assert_true(run_until(&d.answered, 2000, 10000));
    assert_int_equal(d.bad, 0);
    d.answered = 0;
    assert_int_equal(rk__redis_cmd(d.r, on_ok, &d, 0, 3, argv, lens), 0);
    free(val);
    assert_true(run_until(&d.answered, 1, 20000));
    if (d.bad)
        fail_msg("%s", d.why);
    c = it_connect(srv.port);
    r = it_cmd(c, "STRLEN big");
    assert_int_equal(r->integer, (long long)big);
    freeReplyObject(r);
    redisFree(c);
    close_conn(&d);
}

/* rk__redis_flush writes a queued command before the loop runs again:
 * Redis has it while the caller is still busy (the engine's read ahead). */
static void test_flush(void **state)
{
    const char *argv[3] = {"SET", "flushed", "yes"};
    redisContext *c = it_connect(srv.port);
    redisReply *r = NULL;
    drv d;
    int i;
    (void)state;

    open_conn(&d, 1);
    r = it_cmd(c, "DEL flushed");
    freeReplyObject(r);
    assert_int_equal(rk__redis_cmd(d.r, on_ok, &d, 0, 3, argv, NULL), 0);
    /* not flushed: still in hiredis's buffer, the loop does not run */
    it_sleep_ms(50);
    r = it_cmd(c, "EXISTS flushed");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    rk__redis_flush(d.r);
    for (i = 0; i < 100; i++) {     /* Redis runs it without our loop */
        r = it_cmd(c, "EXISTS flushed");
        if (r->integer == 1)
            break;
        freeReplyObject(r);
        r = NULL;
        it_sleep_ms(10);
    }
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
    /* the reply still reaches the callback through the loop */
    assert_true(run_until(&d.answered, 1, 5000));
    assert_int_equal(d.bad, 0);
    close_conn(&d);
}

static void test_reconnect(void **state)
{
    drv d;
    (void)state;
    open_conn(&d, 1);
    it_redis_stop(&srv);
    assert_true(run_until(&d.downs, 1, 5000));
    assert_int_equal(it_redis_restart(&srv), 0);
    assert_int_equal(load_data(), 0);
    assert_true(run_until(&d.ups, 2, 10000));
    check_replies(&d);
    close_conn(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_in_arena),
        cmocka_unit_test(test_replies_malloc),
        cmocka_unit_test(test_writes),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_reconnect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
