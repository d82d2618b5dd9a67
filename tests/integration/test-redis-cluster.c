/* tests/integration/test-redis-cluster.c - the Redis Cluster connection layer of redis.c.
 *
 * Unit part: rk__redis_keyslot against the Redis Cluster spec's values
 * (CRC16/XMODEM of "123456789" is 0x31C3, "foo" is slot 12182, hash tags:
 * the first non-empty "{...}"), and rk__redis_new refusing a slot outside
 * 0..16383.
 *
 * Integration part, on a 3-master cluster from tests/lib/itest_cluster
 * (real redis-server processes on loopback), driving rk__redis_* on a
 * libuv loop inside the test the way the engine does: a SET is sent when
 * the connection comes up and sent again on the next "up" after a NULL
 * reply (the lost-connection path).
 *   1. keyslot agrees with CLUSTER KEYSLOT for a list of tricky keys.
 *   2. A connection for the slot of "{3}" whose first seed is dead reaches
 *      the master of that slot (rk__redis_addr, and the key is there); the
 *      slot is migrated to another master; the next SET's callback gets
 *      NULL (MOVED), the connection re-resolves to the new owner and the
 *      resent SET lands there.
 *   3. ASK: while the slot is half-migrated (MIGRATING/IMPORTING) a SET of
 *      a new key is followed to the importing node (ASKING + SET there, no
 *      reconnect, the key is there and not on the owner); a SET of a key
 *      still on the owner is served there; an EVALSHA followed there finds
 *      the script the connection loaded on the owner; a WAIT after them is
 *      answered. A multi-key command over keys on both nodes gets TRYAGAIN:
 *      NULL, and the connection reconnects with growing backoff (a bounded
 *      number of reconnects, no busy loop); once the migration ends it
 *      lands on the new owner (MOVED, re-resolved).
 *   4. CLUSTERDOWN: the slot's master stops serving it (DELSLOTS there only):
 *      NULL and reconnects with backoff, a bounded number; once it serves
 *      the slot again (ADDSLOTS) the SET lands there.
 *   6. Failover: on a cluster with a replica per master, the slot's master
 *      (the only seed) is SIGKILLed; the connection finds the promoted
 *      replica through the nodes learnt from the first answer and the SET
 *      lands there.
 *   5. The learnt node list: the only seed stops answering (CLIENT PAUSE);
 *      a reconnect still resolves, through the nodes learnt from the first
 *      answer, before the pause ends. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "internal.h"
#include "itest.h"
#include "itest_cluster.h"

/* ===================================================================
 * Unit: key slots
 * =================================================================== */

static unsigned slot_of(const char *key)
{
    return rk__redis_keyslot(key, strlen(key));
}

static void test_keyslot(void **state)
{
    (void)state;
    /* CRC16/XMODEM("123456789") = 0x31C3 (the spec's check value). */
    assert_int_equal(slot_of("123456789"), 0x31C3 % 16384);
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of(""), 0);
    /* Hash tags. */
    assert_int_equal(slot_of("{user1000}.following"), 3443);
    assert_int_equal(slot_of("{user1000}.followers"), 3443);
    assert_int_equal(slot_of("{3}"), slot_of("3"));
    assert_int_equal(slot_of("{3}"), 1584);
    assert_int_equal(slot_of("enforce:scan:{3}"), 1584);
    assert_int_equal(slot_of("riskd:state:{3}:epoch"), 1584);
    /* An empty first tag: the whole key is hashed. */
    assert_int_equal(slot_of("foo{}{bar}"), 8363);
    assert_true(slot_of("foo{}{bar}") != slot_of("bar"));
    /* The tag runs from the first '{' to the first '}' after it. */
    assert_int_equal(slot_of("foo{{bar}}zap"), 4015);
    assert_int_equal(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    assert_int_equal(slot_of("foo{bar}{zap}"), 5061);
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
    /* No closing brace: the whole key. */
    assert_int_equal(slot_of("{"), 4092);
    assert_int_equal(slot_of("{}"), 15257);
    /* len is honoured (no NUL needed) and bytes >= 0x80 hash as unsigned. */
    assert_int_equal(rk__redis_keyslot("foobar", 3), 12182);
    assert_int_equal(rk__redis_keyslot("{3}xyz", 3), 1584);
    assert_true(slot_of("\xff\xfe") < 16384);
}

static void test_bad_slot(void **state)
{
    const char *seeds[] = {"127.0.0.1:1"};
    rk__redis_opts o;
    uv_loop_t loop;
    (void)state;

    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&o, 0, sizeof(o));
    o.name = "bad";
    o.host = "127.0.0.1";
    o.port = 1;
    o.cluster_seeds = seeds;
    o.n_cluster_seeds = 1;
    o.cluster_slot = 16384;
    assert_null(rk__redis_new(&loop, &o, NULL, NULL));
    o.cluster_slot = -1;
    assert_null(rk__redis_new(&loop, &o, NULL, NULL));
    o.cluster_seeds = NULL;
    o.cluster_slot = 0;
    assert_null(rk__redis_new(&loop, &o, NULL, NULL));
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ===================================================================
 * Integration: a driver on a libuv loop
 * =================================================================== */

typedef struct drv {
    rk__redis *r;
    int ups, downs;
    int nulls, oks, errors;
    char last_error[256];
    /* The command to (re)send until it is answered (argc 0: none). */
    const char *argv[8];
    int argc;
    int inflight;
    /* The last answer that was not OK, an error or NULL. */
    int last_type;
    long long last_int;
    char last_str[64];
} drv;

static void on_set(rk__redis *r, struct redisReply *reply, void *pd)
{
    drv *d = pd;
    (void)r;
    d->inflight = 0;
    if (reply == NULL) {
        d->nulls++;                 /* resent on the next "up" */
        return;
    }
    d->argc = 0;
    if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0) {
        d->oks++;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        d->errors++;
        snprintf(d->last_error, sizeof(d->last_error), "%s", reply->str);
    } else {
        d->oks++;
        d->last_type = reply->type;
        d->last_int = reply->integer;
        snprintf(d->last_str, sizeof(d->last_str), "%s",
                 reply->type == REDIS_REPLY_STRING ? reply->str : "");
    }
}

static void send_set(drv *d)
{
    if (d->argc == 0 || d->inflight || !rk__redis_ready(d->r))
        return;
    if (rk__redis_cmd(d->r, on_set, d, 0, d->argc, d->argv, NULL) == 0)
        d->inflight = 1;
}

/* Send a command (up to 8 arguments, NULL-terminated) until answered. */
static void drv_cmd(drv *d, const char *arg0, ...)
{
    va_list ap;
    const char *a;
    d->argc = 0;
    va_start(ap, arg0);
    for (a = arg0; a != NULL && d->argc < 8; a = va_arg(ap, const char *))
        d->argv[d->argc++] = a;
    va_end(ap);
    send_set(d);
}

static void on_state(rk__redis *r, int up, void *ud)
{
    drv *d = ud;
    (void)r;
    if (up) {
        d->ups++;
        send_set(d);
    } else {
        d->downs++;
    }
}

static void drv_set(drv *d, const char *key, const char *val)
{
    drv_cmd(d, "SET", key, val, (const char *)NULL);
}

/* Run the loop until *flag (an int of d) reaches want or ms pass. */
static bool run_until(uv_loop_t *loop, const int *flag, int want, int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (*flag < want && uv_hrtime() < end)
        uv_run(loop, UV_RUN_ONCE);  /* the watchdog ticks every 250 ms */
    return *flag >= want;
}

/* Run the loop for ms. */
static void run_for(uv_loop_t *loop, int ms)
{
    int never = 0;
    run_until(loop, &never, 1, ms);
}

static it_cluster cl;
static uv_loop_t loop;
static bool loop_open;

static int setup(void **state)
{
    (void)state;
    if (uv_loop_init(&loop) != 0)
        return -1;
    loop_open = true;
    return it_cluster_start(&cl);
}

static void drain_loop(void);

static int teardown(void **state)
{
    (void)state;
    if (loop_open) {
        drain_loop();
        uv_loop_close(&loop);
    }
    it_cluster_stop(&cl);
    return 0;
}

/* A connection for the slot of "{3}" with these seeds. */
static void open_conn(drv *d, const char *const *seeds, size_t n)
{
    rk__redis_opts o;
    memset(d, 0, sizeof(*d));
    memset(&o, 0, sizeof(o));
    o.name = "test";
    o.host = "127.0.0.1";
    o.port = 1;                     /* only reported before the first answer */
    o.connect_timeout_ms = 500;
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 1000;
    o.cluster_seeds = seeds;
    o.n_cluster_seeds = n;
    o.cluster_slot = (int)slot_of("{3}");
    /* The loop's clock stood still while the test blocked on its own
     * client; the connection's timeouts start from it. */
    uv_update_time(&loop);
    d->r = rk__redis_new(&loop, &o, on_state, d);
    assert_non_null(d->r);
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

/* GET key on the node on port ("" when nil; the node must own it). */
static void expect_get(int port, const char *key, const char *want)
{
    redisContext *c = it_connect(port);
    redisReply *r = it_cmd(c, "GET %s", key);
    if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0)
        fail_msg("GET %s on %d: want \"%s\", got type %d \"%s\"", key, port, want,
                 r->type, r->str ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
}

static int port_of(const drv *d)
{
    const char *host;
    int port;
    rk__redis_addr(d->r, &host, &port);
    assert_string_equal(host, "127.0.0.1");
    return port;
}

/* Another master than the one on port. */
static int other_master(int port)
{
    int i = it_cluster_index(&cl, port);
    assert_true(i >= 0);
    return cl.node[(i + 1) % IT_CLUSTER_N].port;
}

static void test_keyslot_matches_cluster(void **state)
{
    static const char *const keys[] = {
        "123456789", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap",
        "foo{bar}{zap}", "{", "{}", "}{", "{3}", "x{3}", "enforce:scan:{3}",
        "riskd:state:{5}:lease", "a{b}c{d}", "\xe9\x99\xa2", NULL
    };
    size_t i;
    (void)state;
    for (i = 0; keys[i] != NULL; i++)
        if ((int)slot_of(keys[i]) != it_cluster_keyslot(&cl, keys[i]))
            fail_msg("key %s: ours %u, CLUSTER KEYSLOT %d", keys[i], slot_of(keys[i]),
                     it_cluster_keyslot(&cl, keys[i]));
}

/* A loopback port bound but not listening (so connects are refused and
 * nothing else can take it while fd is open). Returns the fd. */
static int dead_port(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_connect_and_moved(void **state)
{
    char dead[32], s1[32], s2[32];
    const char *seeds[3] = {dead, s1, s2};
    int owner, target, slot = (int)slot_of("{3}"), dport, dfd;
    uint64_t rc0, t0;
    drv d;
    (void)state;

    owner = it_cluster_node_for(&cl, "x{3}");
    assert_true(owner > 0);
    dfd = dead_port(&dport);
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", dport);
    snprintf(s1, sizeof(s1), "127.0.0.1:%d", cl.node[0].port);
    snprintf(s2, sizeof(s2), "127.0.0.1:%d", cl.node[2].port);
    t0 = uv_hrtime();
    open_conn(&d, seeds, 3);
    /* The dead seed is skipped at once (refused, not timed out); the slot's
     * master is found. */
    assert_true(run_until(&loop, &d.ups, 1, 5000));
    if (uv_hrtime() - t0 > UINT64_C(450000000))
        fail_msg("ready after %llu ms", (unsigned long long)((uv_hrtime() - t0) / 1000000u));
    assert_int_equal(port_of(&d), owner);
    drv_set(&d, "x{3}", "v1");
    assert_true(run_until(&loop, &d.oks, 1, 3000));
    assert_int_equal(d.nulls, 0);
    expect_get(owner, "x{3}", "v1");

    /* Move the slot: the next command is MOVED -> NULL, re-resolve. */
    target = other_master(owner);
    assert_int_equal(it_cluster_migrate_slot(&cl, slot, target), 0);
    rc0 = rk__redis_reconnects(d.r);
    drv_set(&d, "x{3}", "v2");
    assert_true(run_until(&loop, &d.oks, 2, 5000));
    assert_int_equal(d.nulls, 1);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.downs, 1);
    assert_int_equal(d.ups, 2);
    assert_int_equal(port_of(&d), target);
    assert_true(rk__redis_reconnects(d.r) > rc0);
    expect_get(target, "x{3}", "v2");
    close_conn(&d);
    close(dfd);
}

/* Begin a migration of slot to to_port by hand (IMPORTING on the target,
 * MIGRATING on the owner), leaving the keys where they are. */
static void begin_migration(int slot, int from_port, int to_port)
{
    int from = it_cluster_index(&cl, from_port), to = it_cluster_index(&cl, to_port);
    redisContext *c;
    redisReply *r;

    c = it_connect(to_port);
    r = it_cmd(c, "CLUSTER SETSLOT %d IMPORTING %s", slot, cl.id[from]);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    c = it_connect(from_port);
    r = it_cmd(c, "CLUSTER SETSLOT %d MIGRATING %s", slot, cl.id[to]);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

/* The reply to ASKING + cmd on the node on port, as a string. */
static void expect_asking_get(int port, const char *key, const char *want)
{
    redisContext *c = it_connect(port);
    redisReply *r = it_cmd(c, "ASKING");
    freeReplyObject(r);
    r = it_cmd(c, "GET %s", key);
    if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0)
        fail_msg("ASKING GET %s on %d: want \"%s\", got type %d \"%s\"", key, port, want,
                 r->type, r->str ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
}

static void test_ask_followed(void **state)
{
    static const char lua[] = "return redis.call('SET', KEYS[1], ARGV[1])";
    char s1[32], sha[64];
    const char *seeds[1] = {s1};
    int owner, target, slot = (int)slot_of("{3}"), oks;
    uint64_t rc0, t0, during;
    redisContext *c;
    redisReply *r;
    drv d;
    (void)state;

    owner = it_cluster_node_for(&cl, "x{3}");
    target = other_master(owner);
    snprintf(s1, sizeof(s1), "127.0.0.1:%d", cl.node[1].port);
    open_conn(&d, seeds, 1);
    assert_true(run_until(&loop, &d.ups, 1, 5000));
    assert_int_equal(port_of(&d), owner);
    drv_cmd(&d, "SCRIPT", "LOAD", lua, (const char *)NULL);
    assert_true(run_until(&loop, &d.oks, 1, 3000));
    assert_int_equal((int)strlen(d.last_str), 40);
    snprintf(sha, sizeof(sha), "%s", d.last_str);
    drv_set(&d, "x{3}", "v0");
    assert_true(run_until(&loop, &d.oks, 2, 3000));

    /* Half-migrated: a new key is answered with ASK by the owner; the
     * command lands on the importing node without a reconnect. */
    begin_migration(slot, owner, target);
    rc0 = rk__redis_reconnects(d.r);
    drv_set(&d, "y{3}", "w1");
    assert_true(run_until(&loop, &d.oks, 3, 3000));
    assert_int_equal(d.nulls, 0);
    assert_int_equal(d.errors, 0);
    assert_int_equal(rk__redis_asks(d.r), 1);
    assert_int_equal(rk__redis_reconnects(d.r), rc0);
    assert_int_equal(port_of(&d), owner);
    expect_asking_get(target, "y{3}", "w1");
    c = it_connect(owner);          /* not written on the owner */
    r = it_cmd(c, "GET y{3}");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_memory_equal(r->str, "ASK ", 4);
    freeReplyObject(r);
    redisFree(c);

    /* A key still on the owner is served there, not followed. */
    drv_set(&d, "x{3}", "v1");
    assert_true(run_until(&loop, &d.oks, 4, 3000));
    assert_int_equal(rk__redis_asks(d.r), 1);
    expect_get(owner, "x{3}", "v1");

    /* An EVALSHA followed there finds the script this connection loaded
     * (the importing node never saw SCRIPT LOAD from the test). */
    drv_cmd(&d, "EVALSHA", sha, "1", "z{3}", "u1", (const char *)NULL);
    assert_true(run_until(&loop, &d.oks, 5, 3000));
    assert_int_equal(d.errors, 0);
    assert_int_equal(rk__redis_asks(d.r), 2);
    expect_asking_get(target, "z{3}", "u1");

    /* WAIT after followed writes is answered (asked of both nodes). */
    drv_cmd(&d, "WAIT", "0", "100", (const char *)NULL);
    assert_true(run_until(&loop, &d.oks, 6, 3000));
    assert_int_equal(d.last_type, REDIS_REPLY_INTEGER);
    assert_int_equal(d.last_int, 0);
    assert_int_equal(d.errors, 0);

    /* A multi-key command over keys split between the two nodes gets
     * TRYAGAIN: NULL, and reconnects with growing backoff (a bounded
     * number, no busy loop) until the migration ends. */
    oks = d.oks;
    t0 = uv_hrtime();
    drv_cmd(&d, "MSET", "x{3}", "v2", "y{3}", "w2", (const char *)NULL);
    run_for(&loop, 1000);
    during = rk__redis_reconnects(d.r) - rc0;
    assert_int_equal(d.oks, oks);
    assert_int_equal(d.errors, 0);
    assert_true(d.nulls >= 2);      /* refused, reconnected, refused again */
    /* Backoff doubles from 50 ms: about 5 in a second; a busy loop would
     * make hundreds. */
    if (during < 2 || during > 8)
        fail_msg("%llu reconnects in %llu ms during the migration", (unsigned long long)during,
                 (unsigned long long)((uv_hrtime() - t0) / 1000000u));
    assert_int_equal(port_of(&d), owner);

    /* The migration ends (x{3} moves too): MOVED, and the MSET lands on
     * the new owner. */
    assert_int_equal(it_cluster_migrate_slot(&cl, slot, target), 0);
    assert_true(run_until(&loop, &d.oks, oks + 1, 5000));
    assert_int_equal(port_of(&d), target);
    expect_get(target, "x{3}", "v2");
    expect_get(target, "y{3}", "w2");
    expect_get(target, "z{3}", "u1");
    close_conn(&d);
}

/* CLUSTER DELSLOTS / ADDSLOTS slot on the node on port. */
static void node_slot(int port, const char *what, int slot)
{
    redisContext *c = it_connect(port);
    redisReply *r = it_cmd(c, "CLUSTER %s %d", what, slot);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("CLUSTER %s %d on %d: %s", what, slot, port,
                 r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    redisFree(c);
}

static void test_clusterdown_backs_off(void **state)
{
    char s1[32];
    const char *seeds[1] = {s1};
    int owner, slot = (int)slot_of("{3}");
    uint64_t rc0, during;
    drv d;
    (void)state;

    owner = it_cluster_node_for(&cl, "x{3}");
    snprintf(s1, sizeof(s1), "127.0.0.1:%d", other_master(owner));
    open_conn(&d, seeds, 1);
    assert_true(run_until(&loop, &d.ups, 1, 5000));
    assert_int_equal(port_of(&d), owner);

    /* The owner stops serving the slot (the others still map it there):
     * it answers CLUSTERDOWN. */
    node_slot(owner, "DELSLOTS", slot);
    rc0 = rk__redis_reconnects(d.r);
    drv_set(&d, "c{3}", "d1");
    run_for(&loop, 1000);
    during = rk__redis_reconnects(d.r) - rc0;
    assert_int_equal(d.oks, 0);
    assert_int_equal(d.errors, 0);
    assert_true(d.nulls >= 1);
    if (during < 1 || during > 8)
        fail_msg("%llu reconnects in 1 s while the slot is down", (unsigned long long)during);

    /* Served again: the SET lands there. */
    node_slot(owner, "ADDSLOTS", slot);
    assert_true(run_until(&loop, &d.oks, 1, 8000));
    assert_int_equal(port_of(&d), owner);
    expect_get(owner, "c{3}", "d1");
    close_conn(&d);
}

static void test_learnt_nodes(void **state)
{
    char s1[32];
    const char *seeds[1] = {s1};
    int owner, seed_port, ups;
    uint64_t t0;
    redisContext *c;
    redisReply *r;
    drv d;
    (void)state;

    owner = it_cluster_node_for(&cl, "x{3}");
    seed_port = other_master(owner);
    snprintf(s1, sizeof(s1), "127.0.0.1:%d", seed_port);
    open_conn(&d, seeds, 1);
    assert_true(run_until(&loop, &d.ups, 1, 5000));
    assert_int_equal(port_of(&d), owner);

    /* The only seed stops answering clients for 3 s (the cluster bus goes
     * on, so the cluster stays ok). */
    c = it_connect(seed_port);
    r = it_cmd(c, "CLIENT PAUSE 3000 ALL");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    t0 = uv_hrtime();
    ups = d.ups;
    rk__redis_drop(d.r, "test: reconnect");
    assert_true(run_until(&loop, &d.ups, ups + 1, 2500));
    assert_true(uv_hrtime() - t0 < UINT64_C(2500000000));
    assert_int_equal(port_of(&d), owner);
    drv_set(&d, "z{3}", "u1");
    assert_true(run_until(&loop, &d.oks, 1, 2000));
    expect_get(owner, "z{3}", "u1");
    close_conn(&d);
    it_sleep_ms(3000 - (int)((uv_hrtime() - t0) / 1000000u) + 100);
}

static it_cluster rcl;               /* with replicas */

static int stop_replicated(void **state)
{
    (void)state;
    it_cluster_stop(&rcl);
    return 0;
}

static void test_master_failover(void **state)
{
    char s1[32];
    const char *seeds[1] = {s1};
    int owner, promoted, i;
    uint64_t t0;
    drv d;
    (void)state;

    assert_int_equal(it_cluster_start_replicated(&rcl), 0);
    owner = it_cluster_node_for(&rcl, "x{3}");
    assert_true(owner > 0);
    /* The only seed is the master that is going to die: after it, the
     * nodes learnt from its answer are asked. */
    snprintf(s1, sizeof(s1), "127.0.0.1:%d", owner);
    open_conn(&d, seeds, 1);
    assert_true(run_until(&loop, &d.ups, 1, 5000));
    assert_int_equal(port_of(&d), owner);
    drv_set(&d, "x{3}", "v1");
    assert_true(run_until(&loop, &d.oks, 1, 3000));

    /* SIGKILL the master: its replica is promoted after the node timeout
     * (2 s) and the election; the connection follows it there. */
    it_redis_kill(&rcl.node[it_cluster_index(&rcl, owner)]);
    t0 = uv_hrtime();
    run_until(&loop, &d.downs, 1, 3000);
    drv_set(&d, "x{3}", "v2");
    assert_true(run_until(&loop, &d.oks, 2, 20000));
    fprintf(stderr, "failover followed after %llu ms\n",
            (unsigned long long)((uv_hrtime() - t0) / 1000000u));
    assert_int_equal(d.errors, 0);
    promoted = port_of(&d);
    assert_true(promoted != owner);
    /* the test asks one live node, whose view may still name the dead
     * master for a moment (gossip): wait until it has learnt the change */
    for (i = 0; i < 100 && it_cluster_node_for(&rcl, "x{3}") != promoted; i++)
        it_sleep_ms(100);
    assert_int_equal(it_cluster_node_for(&rcl, "x{3}"), promoted);
    expect_get(promoted, "x{3}", "v2");
    close_conn(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyslot),
        cmocka_unit_test(test_bad_slot),
        cmocka_unit_test(test_keyslot_matches_cluster),
        cmocka_unit_test(test_connect_and_moved),
        cmocka_unit_test(test_ask_followed),
        cmocka_unit_test(test_clusterdown_backs_off),
        cmocka_unit_test(test_learnt_nodes),
        cmocka_unit_test_teardown(test_master_failover, stop_replicated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
