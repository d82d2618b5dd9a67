/* tests/integration/test-state.c - crash safety against a real redis-server: state
 * survives kill -9 through checkpoints, a kill before the checkpoint gives
 * no duplicate alert, SIGTERM saves state and acknowledges everything, the
 * publish script is reloaded after SCRIPT FLUSH (NOSCRIPT), and a pending
 * entry whose payload was trimmed is acknowledged, not a crash, and a
 * checkpoint cut short is given up whole: the streams are read again from
 * the start. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "itest.h"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new): redis, client, riskd */
    int seq;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

/* A bad rating of officer O7 (unit U1), one minute after the previous. */
static void bad_rating(fixture *f)
{
    char ev[256];
    f->seq++;
    snprintf(ev, sizeof(ev), "{\"type\":\"inspection.rated\",\"ts\":%lld,\"task_id\":\"T%d\","
             "\"enterprise_id\":\"E%d\",\"unit_id\":\"U1\",\"officers\":[\"O7\"],\"score\":1}",
             1740793800000LL + f->seq * 60000LL, f->seq, f->seq);
    it_xadd(f->env.c, "enforce:scan", ev, NULL, 0);
}

static long long rule_count(fixture *f, const char *rule)
{
    json_t *alerts = it_alerts(f->env.c, "alerts"), *a;
    size_t i;
    long long n = 0;
    json_array_foreach(alerts, i, a)
        if (strcmp(json_string_value(json_object_get(a, "rule")), rule) == 0)
            n++;
    json_decref(alerts);
    return n;
}

static void start(fixture *f, const char *cfg)
{
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
}

static void must(fixture *f, bool ok, const char *what)
{
    if (!ok) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("%s", what);
    }
}

#define FAST "{\"state\":{\"interval\":\"200ms\"}}"
#define SLOW "{\"state\":{\"interval\":\"1h\"}}"

/* Two bad ratings are checkpointed; riskd is killed; after the restart the
 * third bad rating completes officer_repeated: the window survived. */
static void test_state_survives_kill(void **state)
{
    fixture *f = *state;
    start(f, FAST);
    bad_rating(f);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "2 bad_rating alerts");
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "acked after checkpoint");
    assert_true(it_int(f->env.c, "EXISTS riskd:state") == 1);
    it_riskd_signal(&f->env.riskd, SIGKILL);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 5000), 128 + SIGKILL);
    start(f, FAST);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 4, 10000), "bad_rating + officer_repeated");
    assert_int_equal(rule_count(f, "officer_repeated"), 1);
    assert_int_equal(rule_count(f, "bad_rating"), 3);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "drained");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

/* Killed before any checkpoint: the entries stay pending, are applied
 * again after the restart, and the re-emitted alerts are dropped by id. */
static void test_kill_before_checkpoint_no_duplicates(void **state)
{
    fixture *f = *state;
    start(f, SLOW);
    bad_rating(f);
    bad_rating(f);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 4, 10000), "3 bad_rating + officer_repeated");
    it_sleep_ms(200);
    assert_true(it_int(f->env.c, "EXISTS riskd:state") == 0);
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 5000);
    start(f, SLOW);
    bad_rating(f);
    /* the 4th bad rating: bad_rating; officer_repeated is in cooldown */
    must(f, it_wait_xlen(f->env.c, "alerts", 5, 10000), "the 4th bad_rating alert");
    it_sleep_ms(300);
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 5);
    assert_int_equal(rule_count(f, "officer_repeated"), 1);
    /* SIGTERM writes the checkpoint and acknowledges everything. */
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 2000), "acked at stop");
    assert_true(it_int(f->env.c, "EXISTS riskd:state") == 1);
}

/* SIGTERM saves the state: a restart continues the officer's window. */
static void test_sigterm_saves_state(void **state)
{
    fixture *f = *state;
    start(f, SLOW);
    bad_rating(f);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "2 alerts");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 2000), "acked at stop");
    start(f, SLOW);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 4, 10000), "officer_repeated after restart");
    assert_int_equal(rule_count(f, "officer_repeated"), 1);
}

typedef struct logwait {
    const it_riskd *d;
    const char *text;
} logwait;

static bool log_has(void *arg)
{
    const logwait *w = arg;
    return it_log_contains(w->d, w->text);
}

static bool wait_log(fixture *f, const char *text, int timeout_ms)
{
    logwait w = {&f->env.riskd, text};
    return it_wait_until(log_has, &w, timeout_ms);
}

/* A checkpoint cut short (its stream positions readable, the rest not) is
 * unusable: riskd starts from empty state and, streams.start being "0",
 * reads the streams again from the start - not from the positions of the
 * state it gave up - so the third bad rating still completes the officer's
 * window, and the bad_rating alerts read again are not written twice. */
static void test_unusable_checkpoint(void **state)
{
    fixture *f = *state;
    redisReply *r;
    start(f, FAST);
    bad_rating(f);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "2 bad_rating alerts");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    r = it_cmd(f->env.c, "GET riskd:state");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_true(r->len > 100);
    freeReplyObject(it_cmd(f->env.c, "SET riskd:state %b", r->str, r->len - 40));
    freeReplyObject(r);
    start(f, FAST);
    must(f, wait_log(f, "is unusable", 10000), "the checkpoint refused");
    must(f, wait_log(f, "reflects nothing (from the start)", 10000),
         "the group read again from the start");
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 4, 10000), "bad_rating + officer_repeated");
    it_sleep_ms(300);
    assert_int_equal(rule_count(f, "officer_repeated"), 1);
    assert_int_equal(rule_count(f, "bad_rating"), 3);
}

/* The script cache is emptied under riskd: the next alert still lands. */
static void test_noscript_reload(void **state)
{
    fixture *f = *state;
    start(f, FAST);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 1, 10000), "first alert");
    freeReplyObject(it_cmd(f->env.c, "SCRIPT FLUSH"));
    f->seq += 100;                  /* a different officer window */
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "alert after SCRIPT FLUSH");
    assert_true(it_log_contains(&f->env.riskd, "NOSCRIPT"));
}

/* Entries read but not acknowledged, then deleted from the stream before
 * the restart, come back as [id, nil]: acknowledged and counted. */
static void test_trimmed_pending(void **state)
{
    fixture *f = *state;
    redisReply *r;
    start(f, SLOW);
    bad_rating(f);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "2 alerts");
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 5000);
    r = it_cmd(f->env.c, "XPENDING enforce:scan riskd");
    assert_int_equal(r->element[0]->integer, 2);
    freeReplyObject(r);
    freeReplyObject(it_cmd(f->env.c, "XTRIM enforce:scan MAXLEN 0"));
    start(f, SLOW);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "trimmed entries gone");
    must(f, it_log_contains(&f->env.riskd, "trimmed"), "trimmed entries logged");
    assert_true(it_riskd_alive(&f->env.riskd));
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 2);
}

/* SIGHUP with a valid file changes a threshold and keeps the windows;
 * with an invalid file it is refused, naming the key, and nothing changes. */
static void test_reload(void **state)
{
    fixture *f = *state;
    int i;
    start(f, "{}");
    bad_rating(f);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "2 alerts");
    assert_int_equal(it_write_config(f->env.riskd.cfg, f->env.redis.port,
        "{\"detectors\":{\"bad_rating\":{\"officer_min_bad\":4}}}"), 0);
    it_riskd_signal(&f->env.riskd, SIGHUP);
    for (i = 0; i < 250 && !it_log_contains(&f->env.riskd, "configuration reloaded"); i++)
        it_sleep_ms(20);
    must(f, it_log_contains(&f->env.riskd, "configuration reloaded"), "reloaded");
    /* start and reload are both in the audit stream, old -> new */
    for (i = 0; i < 100 && it_int(f->env.c, "XLEN riskd:audit") < 2; i++)
        it_sleep_ms(20);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:audit"), 2);
    {
        redisReply *r = it_cmd(f->env.c, "XREVRANGE riskd:audit + - COUNT 1");
        redisReply *fl = r->element[0]->element[1];
        assert_string_equal(fl->element[3]->str, "config_applied");
        assert_non_null(strstr(fl->element[9]->str, "\"officer_min_bad\":4"));
        assert_null(strstr(fl->element[7]->str, "officer_min_bad"));
        freeReplyObject(r);
    }
    bad_rating(f);                  /* 3 bad ratings: below the new threshold 4 */
    must(f, it_wait_xlen(f->env.c, "alerts", 3, 10000), "3rd bad_rating");
    it_sleep_ms(300);
    assert_int_equal(rule_count(f, "officer_repeated"), 0);
    bad_rating(f);                  /* 4: the window kept its first two */
    must(f, it_wait_xlen(f->env.c, "alerts", 5, 10000), "officer_repeated at 4");
    assert_int_equal(rule_count(f, "officer_repeated"), 1);

    assert_int_equal(it_write_config(f->env.riskd.cfg, f->env.redis.port,
        "{\"detectors\":{\"bad_rating\":{\"bad_score\":7}}}"), 0);
    it_riskd_signal(&f->env.riskd, SIGHUP);
    for (i = 0; i < 250 && !it_log_contains(&f->env.riskd, "reload refused"); i++)
        it_sleep_ms(20);
    must(f, it_log_contains(&f->env.riskd, "detectors.bad_rating.bad_score"), "refusal names the key");
    assert_true(it_riskd_alive(&f->env.riskd));
    /* The refusal is also an alert of detector riskd, for the dashboards. */
    must(f, it_wait_xlen(f->env.c, "alerts", 6, 10000), "config_rejected alert");
    assert_int_equal(rule_count(f, "config_rejected"), 1);
    /* Old thresholds stay: a score of 1 is still bad, bad_score 2. */
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 7, 10000), "still working after refused reload");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

static long long consumer_pending(fixture *f, const char *consumer)
{
    redisReply *r = it_cmd(f->env.c, "XPENDING enforce:scan riskd - + 1000 %s", consumer);
    long long n = r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    freeReplyObject(r);
    return n;
}

/* A riskd under another consumer name dies with entries pending; the next
 * one takes them over after streams.claim_idle and applies them. */
static void test_takeover_dead_consumer(void **state)
{
    fixture *f = *state;
    start(f, "{\"streams\":{\"consumer\":\"old-host\"},\"state\":{\"interval\":\"1h\"}}");
    bad_rating(f);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "2 alerts");
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 5000);
    assert_int_equal(consumer_pending(f, "old-host"), 2);
    it_sleep_ms(1200);
    start(f, "{\"streams\":{\"consumer\":\"new-host\",\"claim_idle\":\"1s\"},"
             "\"state\":{\"interval\":\"200ms\"}}");
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "taken over and acked");
    assert_int_equal(consumer_pending(f, "old-host"), 0);
    must(f, it_log_contains(&f->env.riskd, "claimed 2 entries"), "takeover logged");
    /* The taken-over ratings are in the officer's window again. */
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 4, 10000), "officer_repeated after takeover");
    assert_int_equal(rule_count(f, "officer_repeated"), 1);
    assert_int_equal(rule_count(f, "bad_rating"), 3);
}

/* An entry riskd dies on is dead-lettered once it has been delivered more
 * than streams.max_deliveries times; an entry a detector fails on is
 * dead-lettered at once. Nothing wedges the stream. */
typedef struct settle {
    it_riskd *d;
    int consuming_before;           /* "consuming" lines before this start */
} settle;

static int consuming_lines(const it_riskd *d)
{
    FILE *fp = fopen(d->log, "r");
    char line[2048];
    int n = 0;
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp))
        if (strstr(line, "consuming enforce:scan"))
            n++;
    fclose(fp);
    return n;
}

static bool dead_or_consuming(void *arg)
{
    settle *st = arg;
    return !it_riskd_alive(st->d) || consuming_lines(st->d) > st->consuming_before;
}

static void test_poison_entries(void **state)
{
    fixture *f = *state;
    char cfg[512], id[64];
    int starts = 0;
    snprintf(cfg, sizeof(cfg), "{\"plugins\":[\"%s/tests/plugins/crasher.so\"],"
             "\"streams\":{\"max_deliveries\":2},\"state\":{\"interval\":\"200ms\"}}",
             it_build_dir());
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.rated\",\"ts\":1740793800000,"
            "\"task_id\":\"CRASH\",\"enterprise_id\":\"E\",\"score\":5}", id, sizeof(id));
    for (starts = 0; starts < 6; starts++) {
        settle st = {&f->env.riskd, consuming_lines(&f->env.riskd)};
        start(f, cfg);
        /* A restart after a crash takes the lease over and waits 1.5 s
         * (node.c TAKEOVER_WAIT_MS) before it reads: wait until it either
         * died or consumes, then give it a second to die on the entry. */
        must(f, it_wait_until(dead_or_consuming, &st, 15000), "start settled");
        it_sleep_ms(1000);
        if (it_riskd_alive(&f->env.riskd))
            break;
        it_riskd_wait(&f->env.riskd, 1000);
    }
    assert_int_equal(starts, 3);    /* 3 crashes, then dead-lettered */
    must(f, it_wait_xlen(f->env.c, "riskd:dead", 1, 10000), "poison dead-lettered");
    must(f, it_log_contains(&f->env.riskd, "poison"), "poison logged");
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.rated\",\"ts\":1740793900000,"
            "\"task_id\":\"FAIL\",\"enterprise_id\":\"E\",\"score\":1}", NULL, 0);
    must(f, it_wait_xlen(f->env.c, "riskd:dead", 2, 10000), "failing entry dead-lettered");
    /* the built-in detectors still saw it */
    must(f, it_wait_xlen(f->env.c, "alerts", 1, 10000), "bad_rating of the FAIL entry");
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "nothing wedged");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

/* Fencing: once a newer holder has taken the partition's epoch (the lease
 * acquire INCRs <state.key>:epoch), everything the old holder still tries
 * to write - alerts, acknowledgements, checkpoints - is refused by Redis.
 * Here the "newer holder" is simulated by setting the epoch: the running
 * engine's next alert write is refused (FENCED), it gives up the partition
 * without writing anything, its process sees the lease lost, acquires it
 * again (the epoch set + 1, a takeover: the 1.5 s wait) and the alert is written
 * once by the new engine. The checkpoint written before stays as it was
 * until the new engine writes its own. */
static void test_epoch_fence(void **state)
{
    fixture *f = *state;
    redisReply *r;
    char text[128];
    long long first;
    start(f, FAST);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 1, 10000), "first alert");
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "checkpointed and acked");
    /* the first epoch: Redis's time in ms (max(epoch + 1, TIME)) */
    r = it_cmd(f->env.c, "GET riskd:state:epoch");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    first = atoll(r->str);
    freeReplyObject(r);
    assert_true(first > 1600000000000LL);
    /* an epoch ahead of the clock: the next one is that + 1 */
    freeReplyObject(it_cmd(f->env.c, "SET riskd:state:epoch 99999999999999"));
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 15000), "second alert, by the new engine");
    snprintf(text, sizeof(text), "giving up: FENCED epoch %lld of riskd:state:epoch", first);
    must(f, it_log_contains(&f->env.riskd, text), "the old engine's write was refused");
    must(f, it_log_contains(&f->env.riskd, "acquired (epoch 100000000000000)"), "re-acquired");
    it_sleep_ms(500);
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 2);      /* once */
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "acked by the new engine");
    r = it_cmd(f->env.c, "GET riskd:state:epoch");
    assert_string_equal(r->str, "100000000000000");
    freeReplyObject(r);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_survives_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_before_checkpoint_no_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_saves_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trimmed_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_takeover_dead_consumer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_fence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
