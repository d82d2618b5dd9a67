/* tests/integration/test-pipeline.c - the core pipeline end to end against a real
 * redis-server: alerts land once in the stream and on the detector's
 * channel with every contract field; bad entries are dead-lettered and the
 * daemon goes on; a destroyed group re-reads history without duplicating
 * alerts; plugins load and fire, a wrong ABI is refused; Redis killed and
 * restarted under riskd; SIGTERM exits 0; -t and --version. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "itest.h"

#define FILING(task, unit, ent, ts) \
    "{\"type\":\"inspection.filed\",\"ts\":\"" ts "\",\"task_id\":\"" task "\"," \
    "\"unit_id\":\"" unit "\",\"officers\":[\"O1\",\"O2\"],\"enterprise_id\":\"" ent "\"}"
#define RATING(task, ent, score, ts) \
    "{\"type\":\"inspection.rated\",\"ts\":\"" ts "\",\"task_id\":\"" task "\"," \
    "\"enterprise_id\":\"" ent "\",\"score\":" score "}"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new): redis, client, riskd */
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

static void start_riskd(fixture *f, const char *json)
{
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, json) != 0)
        fail_msg("cannot start riskd");
}

static void stop_riskd_ok(fixture *f)
{
    it_riskd_signal(&f->env.riskd, SIGTERM);
    int st = it_riskd_wait(&f->env.riskd, 15000);
    if (st != 0)
        it_riskd_dump_log(&f->env.riskd);
    assert_int_equal(st, 0);
}

static void wait_xlen_or_dump(fixture *f, const char *key, long long n)
{
    if (!it_wait_xlen(f->env.c, key, n, 15000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("%s did not reach %lld entries (has %lld)", key, n,
                 it_int(f->env.c, "XLEN %s", key));
    }
}

/* A bad rating gives exactly one alert with every contract field, in the
 * stream and on alerts:bad_rating, and the entries are acknowledged. */
static void test_alert_fields_and_channel(void **state)
{
    fixture *f = *state;
    redisContext *sub = it_connect(f->env.redis.port);
    redisReply *r;
    char rid[64], ev[128];
    json_t *alerts, *a, *msg, *subj;
    json_error_t jerr;

    r = it_cmd(sub, "SUBSCRIBE alerts:bad_rating");
    freeReplyObject(r);
    start_riskd(f, "{}");
    it_xadd(f->env.c, "enforce:scan", FILING("T1", "U1", "E1", "2025-03-01T09:00:00+08:00"), NULL, 0);
    it_xadd(f->env.c, "enforce:scan", RATING("T1", "E1", "1", "2025-03-01T10:00:00+08:00"), rid, sizeof(rid));
    wait_xlen_or_dump(f, "alerts", 1);

    alerts = it_alerts(f->env.c, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    a = json_array_get(alerts, 0);
    assert_string_equal(json_string_value(json_object_get(a, "detector")), "bad_rating");
    assert_string_equal(json_string_value(json_object_get(a, "rule")), "bad_rating");
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "warning");
    assert_int_equal(strlen(json_string_value(json_object_get(a, "id"))), 32);
    assert_string_equal(json_string_value(json_object_get(a, "ts")), "2025-03-01T10:00:00.000+08:00");
    assert_non_null(json_string_value(json_object_get(a, "emitted_at")));
    subj = json_object_get(a, "subject");
    assert_int_equal(json_object_size(subj), 3);
    assert_string_equal(json_string_value(json_object_get(subj, "task_id")), "T1");
    assert_string_equal(json_string_value(json_object_get(subj, "enterprise_id")), "E1");
    /* unit_id came from the filing: the rating had none */
    assert_string_equal(json_string_value(json_object_get(subj, "unit_id")), "U1");
    assert_int_equal(json_integer_value(json_object_get(a, "value")), 1);
    assert_int_equal(json_integer_value(json_object_get(a, "threshold")), 2);
    assert_true(strlen(json_string_value(json_object_get(a, "summary"))) > 10);
    snprintf(ev, sizeof(ev), "enforce:scan/%s", rid);
    assert_int_equal(json_array_size(json_object_get(a, "evidence")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "evidence"), 0)), ev);

    /* The same JSON arrived on the channel. */
    assert_int_equal(redisGetReply(sub, (void **)&r), REDIS_OK);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[1]->str, "alerts:bad_rating");
    msg = json_loads(r->element[2]->str, 0, &jerr);
    assert_non_null(msg);
    assert_true(json_equal(msg, a));
    json_decref(msg);
    freeReplyObject(r);

    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000));
    json_decref(alerts);
    redisFree(sub);
    stop_riskd_ok(f);
}

static bool dead_has(redisContext *c, const char *field_value_substr, const char *id)
{
    redisReply *r = it_cmd(c, "XRANGE riskd:dead - +");
    bool found = false;
    for (size_t i = 0; i < r->elements && !found; i++) {
        redisReply *fl = r->element[i]->element[1];
        const char *eid = NULL, *err = NULL, *stream = NULL, *data = NULL;
        for (size_t k = 0; k + 1 < fl->elements; k += 2) {
            if (!strcmp(fl->element[k]->str, "id")) eid = fl->element[k + 1]->str;
            if (!strcmp(fl->element[k]->str, "error")) err = fl->element[k + 1]->str;
            if (!strcmp(fl->element[k]->str, "stream")) stream = fl->element[k + 1]->str;
            if (!strcmp(fl->element[k]->str, "data")) data = fl->element[k + 1]->str;
        }
        found = eid && err && stream && data && !strcmp(eid, id) &&
                strstr(err, field_value_substr) != NULL;
    }
    freeReplyObject(r);
    return found;
}

/* Bad entries go to riskd:dead with a reason naming the field, are
 * acknowledged, and the daemon keeps going. */
static void test_dead_letters(void **state)
{
    fixture *f = *state;
    char id1[64], id2[64], id3[64], id4[64], id5[64];
    redisReply *r;

    start_riskd(f, "{}");
    it_xadd(f->env.c, "enforce:scan", "not json at all", id1, sizeof(id1));
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.rated\",\"ts\":1740793800000,"
            "\"enterprise_id\":\"E1\",\"score\":1}", id2, sizeof(id2));
    it_xadd(f->env.c, "enforce:case", "{\"type\":\"case.decided\",\"ts\":1740793800000,"
            "\"case_id\":\"C1\",\"unit_id\":\"U1\",\"fine\":-5}", id3, sizeof(id3));
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.rated\",\"ts\":\"yesterday\","
            "\"task_id\":\"T\",\"enterprise_id\":\"E1\",\"score\":1}", id4, sizeof(id4));
    r = it_cmd(f->env.c, "XADD enforce:scan * other field");
    snprintf(id5, sizeof(id5), "%s", r->str);
    freeReplyObject(r);
    /* unknown type: skipped, not dead-lettered */
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.future\",\"ts\":1}", NULL, 0);
    wait_xlen_or_dump(f, "riskd:dead", 5);
    assert_true(dead_has(f->env.c, "data:", id1));
    assert_true(dead_has(f->env.c, "task_id", id2));
    assert_true(dead_has(f->env.c, "fine", id3));
    assert_true(dead_has(f->env.c, "ts", id4));
    assert_true(dead_has(f->env.c, "data", id5));
    assert_true(it_riskd_alive(&f->env.riskd));
    /* Still working afterwards. */
    it_xadd(f->env.c, "enforce:scan", RATING("T9", "E9", "2", "2025-03-01T10:00:00Z"), NULL, 0);
    wait_xlen_or_dump(f, "alerts", 1);
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000));
    assert_true(it_wait_drained(f->env.c, "enforce:case", "riskd", 10000));
    assert_int_equal(it_int(f->env.c, "XLEN riskd:dead"), 5);
    /* The original value is kept, cut to 64 KiB. */
    {
        size_t big = 100000;
        char *payload = malloc(big + 1), id6[64];
        redisReply *last, *fl;
        size_t k;
        memset(payload, 'x', big);
        payload[big] = '\0';
        it_xadd(f->env.c, "enforce:scan", payload, id6, sizeof(id6));
        free(payload);
        wait_xlen_or_dump(f, "riskd:dead", 6);
        last = it_cmd(f->env.c, "XREVRANGE riskd:dead + - COUNT 1");
        fl = last->element[0]->element[1];
        for (k = 0; k + 1 < fl->elements; k += 2) {
            if (strcmp(fl->element[k]->str, "data") == 0)
                assert_int_equal(fl->element[k + 1]->len, 64 * 1024);
            if (strcmp(fl->element[k]->str, "id") == 0)
                assert_string_equal(fl->element[k + 1]->str, id6);
        }
        freeReplyObject(last);
    }
    stop_riskd_ok(f);
}

static long long count_unique_ids(redisContext *c)
{
    json_t *alerts = it_alerts(c, "alerts"), *seen = json_object(), *a;
    size_t i;
    long long n;
    json_array_foreach(alerts, i, a)
        json_object_set_new(seen, json_string_value(json_object_get(a, "id")), json_true());
    n = (long long)json_object_size(seen);
    json_decref(seen);
    json_decref(alerts);
    return n;
}

/* Alerts are written once per id even when history is read again: the
 * group destroyed under a running riskd, then a restart over a new group. */
static void test_group_destroyed_no_duplicates(void **state)
{
    fixture *f = *state;
    long long n;
    int i;

    start_riskd(f, "{}");
    for (i = 0; i < 5; i++) {
        char ev[256];
        snprintf(ev, sizeof(ev), "{\"type\":\"inspection.rated\",\"ts\":%lld,"
                 "\"task_id\":\"T%d\",\"enterprise_id\":\"E\",\"unit_id\":\"U\","
                 "\"officers\":[\"O7\"],\"score\":1}", 1740793800000LL + i * 1000LL, i);
        it_xadd(f->env.c, "enforce:scan", ev, NULL, 0);
    }
    /* 5 bad_rating + officer_repeated (3rd bad rating) */
    wait_xlen_or_dump(f, "alerts", 6);
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000));
    n = it_int(f->env.c, "XLEN alerts");
    assert_int_equal(n, 6);

    freeReplyObject(it_cmd(f->env.c, "XGROUP DESTROY enforce:scan riskd"));
    freeReplyObject(it_cmd(f->env.c, "XGROUP DESTROY enforce:case riskd"));
    it_xadd(f->env.c, "enforce:scan", RATING("T99", "E", "5", "2025-03-01T10:00:00Z"), NULL, 0);
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 15000));
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 6);
    stop_riskd_ok(f);

    /* A fresh start over a fresh group rebuilds state from all history:
     * the same alerts, same ids, none written twice. */
    freeReplyObject(it_cmd(f->env.c, "XGROUP DESTROY enforce:scan riskd"));
    start_riskd(f, "{}");
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 15000));
    it_sleep_ms(300);
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 6);
    assert_int_equal(count_unique_ids(f->env.c), 6);
    stop_riskd_ok(f);
}

/* The example plugin loads and fires on its channel. */
static void test_plugin_fires(void **state)
{
    fixture *f = *state;
    char cfg[1024];
    json_t *alerts, *a;

    snprintf(cfg, sizeof(cfg), "{\"plugins\":[\"%s/plugins/two_officers.so\"]}", it_build_dir());
    start_riskd(f, cfg);
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.filed\",\"ts\":1740793800000,"
            "\"task_id\":\"T1\",\"unit_id\":\"U1\",\"officers\":[\"O1\"],"
            "\"enterprise_id\":\"E1\"}", NULL, 0);
    wait_xlen_or_dump(f, "alerts", 1);
    alerts = it_alerts(f->env.c, "alerts");
    a = json_array_get(alerts, 0);
    assert_string_equal(json_string_value(json_object_get(a, "detector")), "two_officers");
    assert_string_equal(json_string_value(json_object_get(a, "rule")), "too_few_officers");
    json_decref(alerts);
    stop_riskd_ok(f);
}

static int run_riskd_t(const char *cfgpath, char *out, size_t outlen)
{
    char cmd[1024];
    FILE *p;
    size_t n;
    int st;
    snprintf(cmd, sizeof(cmd), "%s/riskd -t -c %s 2>&1", it_build_dir(), cfgpath);
    p = popen(cmd, "r");
    n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A plugin of another ABI major is refused by -t and at start. */
static void test_plugin_wrong_abi(void **state)
{
    fixture *f = *state;
    char cfg[1024], path[512], out[4096];

    snprintf(path, sizeof(path), "%s/riskd-badabi.json", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(cfg, sizeof(cfg), "{\"plugins\":[\"%s/tests/plugins/bad_abi.so\"]}", it_build_dir());
    assert_int_equal(it_write_config(path, f->env.redis.port, cfg), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "plugins[0]"));
    assert_non_null(strstr(out, "ABI"));
    start_riskd(f, cfg);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 10000), 1);
    assert_true(it_log_contains(&f->env.riskd, "major differs"));
    remove(path);
}

/* -t accepts {} and names the key of a bad value. */
static void test_check_config(void **state)
{
    fixture *f = *state;
    char path[512], out[4096];
    snprintf(path, sizeof(path), "%s/riskd-check.json", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_int_equal(it_write_config(path, f->env.redis.port, "{}"), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 0);
    assert_int_equal(it_write_config(path, f->env.redis.port,
                     "{\"detectors\":{\"bad_rating\":{\"bad_score\":9}}}"), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "detectors.bad_rating.bad_score"));
    assert_int_equal(it_write_config(path, f->env.redis.port, "{\"detectors\":{\"nope\":{}}}"), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "detectors.nope"));
    /* per-key overrides are validated like the rest, by key path */
    assert_int_equal(it_write_config(path, f->env.redis.port, "{\"detectors\":{\"bad_rating\":"
                     "{\"overrides\":[{\"match\":{\"unit_id\":\"U7\"},\"set\":{\"bad_score\":9}}]}}}"), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "detectors.bad_rating.overrides[0].set.bad_score: expected an integer"));
    assert_int_equal(it_write_config(path, f->env.redis.port, "{\"detectors\":{\"bad_rating\":"
                     "{\"overrides\":[{\"match\":{\"colour\":\"red\"},\"set\":{}}]}}}"), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "detectors.bad_rating.overrides[0].match.colour: not a subject field"));
    assert_int_equal(it_write_config(path, f->env.redis.port, "{\"detectors\":{\"complaint_cluster\":"
                     "{\"overrides\":[{\"match\":{\"region\":\"R1\"},\"set\":{\"cooldown\":\"1h\"}}]}}}"), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 0);
    remove(path);
}

/* Redis killed and restarted under a running riskd: it reconnects and
 * goes on. */
static void test_redis_restart(void **state)
{
    fixture *f = *state;
    start_riskd(f, "{}");
    it_xadd(f->env.c, "enforce:scan", RATING("T1", "E1", "1", "2025-03-01T10:00:00Z"), NULL, 0);
    wait_xlen_or_dump(f, "alerts", 1);
    redisFree(f->env.c);
    it_redis_kill(&f->env.redis);
    it_sleep_ms(500);
    assert_true(it_riskd_alive(&f->env.riskd));
    assert_int_equal(it_redis_restart(&f->env.redis), 0);
    f->env.c = it_connect(f->env.redis.port);
    /* The restarted Redis is empty (no persistence in this test). */
    it_xadd(f->env.c, "enforce:scan", RATING("T2", "E1", "1", "2025-03-01T10:00:01Z"), NULL, 0);
    wait_xlen_or_dump(f, "alerts", 1);
    assert_true(it_log_contains(&f->env.riskd, "connection lost") ||
                it_log_contains(&f->env.riskd, "connect failed"));
    stop_riskd_ok(f);
}

/* AUTH with an ACL user (username + password) on every connect. */
static void test_auth_acl_user(void **state)
{
    fixture *f = *state;
    it_redis secured;
    redisContext *c;
    it_riskd d;
    (void)f;
    assert_int_equal(it_redis_start(&secured, "--requirepass adminpw "
                     "--user alice on '>alicepw' '~*' '&*' '+@all'"), 0);
    c = it_connect(secured.port);
    freeReplyObject(it_cmd(c, "AUTH alice alicepw"));
    memset(&d, 0, sizeof(d));
    assert_int_equal(it_riskd_start(&d, secured.port,
                     "{\"redis\":{\"username\":\"alice\",\"password\":\"alicepw\"}}"), 0);
    it_xadd(c, "enforce:scan", RATING("T1", "E1", "1", "2025-03-01T10:00:00Z"), NULL, 0);
    if (!it_wait_xlen(c, "alerts", 1, 10000)) {
        it_riskd_dump_log(&d);
        fail_msg("no alert through an ACL user");
    }
    it_riskd_signal(&d, SIGTERM);
    assert_int_equal(it_riskd_wait(&d, 15000), 0);
    /* A wrong password is logged and retried, never a crash. */
    assert_int_equal(it_riskd_start(&d, secured.port,
                     "{\"redis\":{\"username\":\"alice\",\"password\":\"wrong\"}}"), 0);
    it_sleep_ms(700);
    assert_true(it_riskd_alive(&d));
    assert_true(it_log_contains(&d, "AUTH refused"));
    it_riskd_signal(&d, SIGTERM);
    assert_int_equal(it_riskd_wait(&d, 15000), 0);
    redisFree(c);
    it_redis_kill(&secured);
}

/* clock.wall_advance: after clock.idle without input the watermark moves to
 * the wall clock, so the grace timer of a scan with an old ts fires with no
 * further event; with wall_advance false it does not. */
static void test_wall_advance(void **state)
{
    fixture *f = *state;
    json_t *alerts;
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.scanned\",\"ts\":\"2025-03-01T10:00:00Z\","
            "\"task_id\":\"T-NOFILE\",\"enterprise_id\":\"E1\"}", NULL, 0);
    start_riskd(f, "{\"clock\":{\"wall_advance\":false,\"idle\":\"1s\"}}");
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 15000) ||
                it_int(f->env.c, "XLEN enforce:scan") == 1);
    it_sleep_ms(2500);
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 0);
    stop_riskd_ok(f);
    start_riskd(f, "{\"clock\":{\"wall_advance\":true,\"idle\":\"1s\"}}");
    wait_xlen_or_dump(f, "alerts", 1);
    alerts = it_alerts(f->env.c, "alerts");
    assert_string_equal(json_string_value(json_object_get(json_array_get(alerts, 0), "rule")),
                        "scan_without_filing");
    json_decref(alerts);
    stop_riskd_ok(f);
}

static void test_version(void **state)
{
    char cmd[512], out[256];
    FILE *p;
    size_t n;
    (void)state;
    snprintf(cmd, sizeof(cmd), "%s/riskd --version", it_build_dir());
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_memory_equal(out, "riskd ", 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alert_fields_and_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_destroyed_no_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_wrong_abi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_acl_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wall_advance, setup, teardown),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
