/* tests/integration/test-replay.c - riskd --replay and --compare against a real
 * redis-server: over the same history a replay raises exactly the alerts a
 * live run raised (same ids); it writes nothing to Redis; --compare shows
 * what a changed threshold adds; --to bounds the history read; a replay
 * that cannot reach Redis, or loses it midway, exits 2 naming the address
 * instead of retrying for ever. */
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
#include <time.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"
#include "itest_proxy.h"

#define LIVE_CFG "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"200ms\"}}"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new): redis, client, riskd */
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "replay") != 0) {
        it_fixture_free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

/* Run riskd with args; stdout to *out (malloc'ed), stderr to *err. */
static int run(const char *args, char **out, char **err)
{
    char cmd[2048], errfile[300];
    FILE *p, *ef;
    size_t n = 0, cap = 1 << 16;
    long len;
    int st;
    snprintf(errfile, sizeof(errfile), "%s/replay-stderr-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    snprintf(cmd, sizeof(cmd), "%s/riskd %s 2>%s", it_build_dir(), args, errfile);
    p = popen(cmd, "r");
    *out = malloc(cap);
    for (;;) {
        size_t got;
        if (n + 4096 > cap)
            *out = realloc(*out, cap *= 2);
        got = fread(*out + n, 1, cap - n - 1, p);
        if (got == 0)
            break;
        n += got;
    }
    (*out)[n] = '\0';
    st = pclose(p);
    ef = fopen(errfile, "r");
    fseek(ef, 0, SEEK_END);
    len = ftell(ef);
    fseek(ef, 0, SEEK_SET);
    *err = calloc(1, (size_t)len + 1);
    if (fread(*err, 1, (size_t)len, ef) != (size_t)len)
        len = 0;
    fclose(ef);
    remove(errfile);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An alert's key is its id, a notice's "<id>:<status>" (it shares the id). */
static void entry_key(const json_t *a, char *out, size_t len)
{
    const char *id = json_string_value(json_object_get(a, "id"));
    const char *st = json_string_value(json_object_get(a, "status"));
    if (st != NULL && strcmp(st, "firing") != 0)
        snprintf(out, len, "%s:%s", id ? id : "", st);
    else
        snprintf(out, len, "%s", id ? id : "");
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
            char id[96];
            entry_key(a, id, sizeof(id));
            if (json_object_get(ids, id) != NULL)
                fail_msg("replay printed id %s twice", id);
            json_object_set_new(ids, id, a);
        }
        p += len + (nl ? 1 : 0);
    }
    return ids;
}

static void write_cfg(fixture *f, const char *name, const char *json, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", f->dir, name);
    assert_int_equal(it_write_config(path, f->env.redis.port, json), 0);
}

static json_t *live_ids(fixture *f)
{
    json_t *alerts = it_alerts(f->env.c, "alerts"), *ids = json_object(), *a;
    size_t i;
    json_array_foreach(alerts, i, a) {
        char id[96];
        entry_key(a, id, sizeof(id));
        json_object_set(ids, id, a);
    }
    json_decref(alerts);
    return ids;
}

static void test_replay_equals_live(void **state)
{
    fixture *f = *state;
    char cfg[400], args[600];
    char *out, *err;
    json_t *live, *rep;
    const char *id;
    json_t *v;
    redisReply *before, *after;

    it_preload_workload(f->env.c, 8000, 30, 0.08, 7, 101);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, LIVE_CFG), 0);
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 60000));
    assert_true(it_wait_drained(f->env.c, "enforce:case", "riskd", 60000));
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    live = live_ids(f);
    assert_true(json_object_size(live) > 20);

    write_cfg(f, "a.json", LIVE_CFG, cfg, sizeof(cfg));
    before = it_cmd(f->env.c, "DEBUG DIGEST");
    snprintf(args, sizeof(args), "--replay -c %s", cfg);
    assert_int_equal(run(args, &out, &err), 0);
    after = it_cmd(f->env.c, "DEBUG DIGEST");
    /* Nothing was written: the whole dataset is unchanged. */
    assert_string_equal(before->str, after->str);
    freeReplyObject(before);
    freeReplyObject(after);
    rep = ids_of_lines(out);
    json_object_foreach(live, id, v)
        if (json_object_get(rep, id) == NULL)
            fail_msg("live alert %s missing from the replay", id);
    json_object_foreach(rep, id, v)
        if (json_object_get(live, id) == NULL)
            fail_msg("replay alert %s was not raised live", id);
    /* the summary names every rule with its count */
    assert_non_null(strstr(err, "detector"));
    assert_non_null(strstr(err, "bad_rating"));
    assert_non_null(strstr(err, "alerts from"));
    json_decref(live);
    json_decref(rep);
    free(out);
    free(err);
}

static long long row_value(const char *out, const char *rule, int col)
{
    const char *p = strstr(out, rule);
    long long v[3];
    char name[128];
    if (p == NULL)
        return -1;
    if (sscanf(p, "%127s %lld %lld %lld", name, &v[0], &v[1], &v[2]) != 4)
        return -1;
    return v[col];
}

static void test_compare_and_bounds(void **state)
{
    fixture *f = *state;
    char a[400], b[400], args[1200];
    char *out, *err;
    json_t *all, *bounded, *x;
    const char *id;

    it_preload_workload(f->env.c, 6000, 30, 0.08, 9, 0);
    /* Two bad ratings of one officer, after the workload: officer_repeated
     * at a threshold of 2, not at the default 3. */
    freeReplyObject(it_cmd(f->env.c, "XADD enforce:scan 900000-0 data %s",
        "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-20T10:00:00Z\",\"task_id\":\"TX1\","
        "\"enterprise_id\":\"EX\",\"unit_id\":\"UX\",\"officers\":[\"OX\"],\"score\":1}"));
    freeReplyObject(it_cmd(f->env.c, "XADD enforce:scan 900001-0 data %s",
        "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-20T11:00:00Z\",\"task_id\":\"TX2\","
        "\"enterprise_id\":\"EX\",\"unit_id\":\"UX\",\"officers\":[\"OX\"],\"score\":2}"));
    write_cfg(f, "a.json", "{}", a, sizeof(a));
    write_cfg(f, "b.json", "{\"detectors\":{\"bad_rating\":{\"officer_min_bad\":2}}}",
              b, sizeof(b));
    snprintf(args, sizeof(args), "--replay -c %s --compare %s", a, b);
    assert_int_equal(run(args, &out, &err), 0);
    /* B's lower threshold adds officer_repeated alerts; bad_rating itself
     * does not change. */
    assert_true(row_value(out, "bad_rating/officer_repeated", 1) > 0);
    assert_int_equal(row_value(out, "bad_rating/bad_rating", 0), 0);
    assert_int_equal(row_value(out, "bad_rating/bad_rating", 1), 0);
    assert_true(row_value(out, "bad_rating/bad_rating", 2) > 0);
    free(out);
    free(err);
    /* No consumer group was created: a replay writes nothing. */
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:state"), 0);
    {
        redisReply *r = it_cmd(f->env.c, "XINFO GROUPS enforce:scan");
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 0);
        freeReplyObject(r);
    }

    snprintf(args, sizeof(args), "--replay -c %s", a);
    assert_int_equal(run(args, &out, &err), 0);
    all = ids_of_lines(out);
    free(out);
    free(err);
    /* --to 1000: only the first 1000 entries of each stream are read. */
    snprintf(args, sizeof(args), "--replay -c %s --to 1000", a);
    assert_int_equal(run(args, &out, &err), 0);
    bounded = ids_of_lines(out);
    assert_true(json_object_size(bounded) > 0);
    assert_true(json_object_size(bounded) < json_object_size(all));
    json_object_foreach(bounded, id, x) {
        json_t *ev = json_object_get(x, "evidence");
        const char *status = json_string_value(json_object_get(x, "status"));
        const char *last;
        unsigned long long ms;
        if (json_array_size(ev) == 0) {
            /* a notice a window's end or a timer gave (no entry): only
             * an alert itself must name its entries */
            assert_non_null(status);
            assert_string_not_equal(status, "firing");
            continue;
        }
        last = json_string_value(json_array_get(ev, json_array_size(ev) - 1));
        assert_non_null(last);
        assert_non_null(strchr(last, '/'));
        ms = strtoull(strchr(last, '/') + 1, NULL, 10);
        assert_true(ms <= 1000);
    }
    json_decref(all);
    json_decref(bounded);
    free(out);
    free(err);
    /* bad arguments */
    snprintf(args, sizeof(args), "--replay -c %s --to yesterday", a);
    assert_int_equal(run(args, &out, &err), 1);
    assert_non_null(strstr(err, "--to"));
    free(out);
    free(err);
}

/* With partitions, a replay reads one partition's streams: --partition P
 * is required, and the alerts are those of that partition's entries. */
static void test_replay_partition(void **state)
{
    fixture *f = *state;
    char cfg[400], args[600];
    char *out, *err;
    json_t *ids, *x;
    const char *id;

    freeReplyObject(it_cmd(f->env.c, "XADD enforce:scan:{1} 1-0 data %s",
        "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-20T10:00:00Z\",\"task_id\":\"T1\","
        "\"enterprise_id\":\"E1\",\"unit_id\":\"U1\",\"score\":1}"));
    freeReplyObject(it_cmd(f->env.c, "XADD enforce:scan:{0} 1-0 data %s",
        "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-20T10:00:00Z\",\"task_id\":\"T0\","
        "\"enterprise_id\":\"E0\",\"unit_id\":\"U0\",\"score\":1}"));
    write_cfg(f, "p.json", "{\"partitions\":2}", cfg, sizeof(cfg));
    snprintf(args, sizeof(args), "--replay -c %s", cfg);
    assert_int_equal(run(args, &out, &err), 1);
    assert_non_null(strstr(err, "give --partition P (0-1)"));
    free(out);
    free(err);
    snprintf(args, sizeof(args), "--replay -c %s --partition 2", cfg);
    assert_int_equal(run(args, &out, &err), 1);
    assert_non_null(strstr(err, "--partition 2: expected 0-1"));
    free(out);
    free(err);
    snprintf(args, sizeof(args), "--replay -c %s --partition 1", cfg);
    assert_int_equal(run(args, &out, &err), 0);
    ids = ids_of_lines(out);
    assert_int_equal(json_object_size(ids), 1);       /* T1's bad rating only */
    json_object_foreach(ids, id, x) {
        assert_string_equal(json_string_value(json_object_get(x, "rule")), "bad_rating");
        assert_string_equal(json_string_value(json_object_get(json_object_get(x, "subject"),
                                                              "task_id")), "T1");
    }
    json_decref(ids);
    free(out);
    free(err);
    /* E9 inspected by U0 (partition 0), then by U1 (partition 1) the next
     * day: multi_unit, a rule across units, is the cross pipeline's. */
    freeReplyObject(it_cmd(f->env.c, "XADD enforce:scan:{0} 2-0 data %s",
        "{\"type\":\"inspection.filed\",\"ts\":\"2025-03-21T10:00:00Z\",\"task_id\":\"T8\","
        "\"unit_id\":\"U0\",\"officers\":[\"O1\",\"O2\"],\"enterprise_id\":\"E9\"}"));
    freeReplyObject(it_cmd(f->env.c, "XADD enforce:scan:{1} 2-0 data %s",
        "{\"type\":\"inspection.filed\",\"ts\":\"2025-03-22T10:00:00Z\",\"task_id\":\"T9\","
        "\"unit_id\":\"U1\",\"officers\":[\"O3\",\"O4\"],\"enterprise_id\":\"E9\"}"));
    snprintf(args, sizeof(args), "--replay -c %s --partition cross", cfg);
    assert_int_equal(run(args, &out, &err), 0);
    ids = ids_of_lines(out);
    assert_int_equal(json_object_size(ids), 1);       /* multi_unit only, no bad_rating */
    json_object_foreach(ids, id, x) {
        assert_string_equal(json_string_value(json_object_get(x, "rule")), "multi_unit");
        assert_string_equal(json_string_value(json_object_get(json_object_get(x, "subject"),
                                                              "enterprise_id")), "E9");
    }
    json_decref(ids);
    free(out);
    free(err);
    snprintf(args, sizeof(args), "--replay -c %s --partition 1", cfg);
    assert_int_equal(run(args, &out, &err), 0);
    ids = ids_of_lines(out);
    assert_int_equal(json_object_size(ids), 1);       /* still T1's bad rating only */
    json_decref(ids);
    free(out);
    free(err);
}

/* ---- wall-clock ticks: replay equals live with clock.wall_advance ---- */

#define WALL_CFG "{\"clock\":{\"wall_advance\":true,\"idle\":\"1s\"}," \
                 "\"state\":{\"interval\":\"200ms\"}," \
                 "\"detectors\":{\"unfiled_inspection\":{\"scan_deadline\":\"3s\"}}}"
#define FILED(task, ent, ts) \
    "{\"type\":\"inspection.filed\",\"ts\":" ts ",\"task_id\":\"" task "\"," \
    "\"unit_id\":\"U1\",\"officers\":[\"O1\"],\"enterprise_id\":\"" ent "\"}"
#define SCANNED(task, ent, ts) \
    "{\"type\":\"inspection.scanned\",\"ts\":" ts ",\"task_id\":\"" task "\"," \
    "\"enterprise_id\":\"" ent "\"}"
#define CASE_OPENED(id, ts) \
    "{\"type\":\"case.opened\",\"ts\":" ts ",\"case_id\":\"" id "\",\"unit_id\":\"U1\"," \
    "\"source\":\"complaint\"}"

static long long wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait until the alert stream holds n alerts (the log on failure). */
static void wait_alerts(fixture *f, long long n)
{
    if (!it_wait_xlen(f->env.c, "alerts", n, 20000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("%lld alerts expected, %lld written", n, it_int(f->env.c, "XLEN alerts"));
    }
}

/* The live alerts and the replay's must be the same ids with the same
 * content apart from emitted_at. */
static void assert_same_alerts(json_t *live, json_t *rep)
{
    const char *id;
    json_t *v;
    json_object_foreach(live, id, v) {
        json_t *r = json_object_get(rep, id), *a = json_deep_copy(v), *b;
        if (r == NULL)
            fail_msg("live alert %s (%s) missing from the replay", id,
                     json_string_value(json_object_get(v, "rule")));
        b = json_deep_copy(r);
        json_object_del(a, "emitted_at");
        json_object_del(b, "emitted_at");
        if (!json_equal(a, b))
            fail_msg("alert %s differs between the live run and the replay", id);
        json_decref(a);
        json_decref(b);
    }
    json_object_foreach(rep, id, v)
        if (json_object_get(live, id) == NULL)
            fail_msg("replay alert %s (%s) was not raised live", id,
                     json_string_value(json_object_get(v, "rule")));
}

static json_t *replay_ids(fixture *f, const char *cfg, const char *extra)
{
    char args[800];
    char *out, *err;
    json_t *ids;
    snprintf(args, sizeof(args), "--replay -c %s%s", cfg, extra);
    if (run(args, &out, &err) != 0)
        fail_msg("replay failed: %s", err);
    ids = ids_of_lines(out);
    free(out);
    free(err);
    (void)f;
    return ids;
}

static size_t count_rule(json_t *ids, const char *rule)
{
    const char *id;
    json_t *v;
    size_t n = 0;
    json_object_foreach(ids, id, v)
        if (strcmp(json_string_value(json_object_get(v, "rule")), rule) == 0)
            n++;
    return n;
}

/* A live run whose alerts come only from the wall clock: five filings of
 * 2025 never scanned in time fire filed_not_scanned when the idle engine
 * moves the watermark to the wall clock (tick 1). Then scans of two of them
 * arrive, stamped before their deadline (late), a scan of a task never
 * filed (its grace has long passed: scan_without_filing at once), and a
 * filing planned now, whose deadline (scan_deadline 3s) only the wall clock
 * passes (tick 2). The replay of the same entries raises exactly those
 * alerts (and the two late scans' retractions of their filed_not_scanned
 * alerts): it applies tick 1 after the first batch - not at the end, where
 * the two late scans would prevent two alerts - and tick 2 at the end. The
 * same replay without the ticks (the clock stream deleted) raises fewer:
 * the ticks are what makes it equal. --to the first batch replays tick 1
 * only. The replay runs with wall_advance true and does not advance by its
 * own wall clock. */
static void test_replay_equals_live_wall_clock(void **state)
{
    fixture *f = *state;
    char cfg[400], last1[64], extra[100], json[400];
    json_t *live, *rep;
    /* two days ago: deadlines long past, filings still remembered */
    long long t0 = wall_ms() - 2 * 86400000LL;
    int i;

    snprintf(json, sizeof(json), CASE_OPENED("C1", "%lld"), t0 - 3600000);
    it_xadd(f->env.c, "enforce:case", json, NULL, 0);
    for (i = 1; i <= 5; i++) {
        char task[16], ent[16];
        snprintf(task, sizeof(task), "F%d", i);
        snprintf(ent, sizeof(ent), "E%d", i);
        snprintf(json, sizeof(json), "{\"type\":\"inspection.filed\",\"ts\":%lld,"
                 "\"task_id\":\"%s\",\"unit_id\":\"U1\",\"officers\":[\"O1\"],"
                 "\"enterprise_id\":\"%s\"}", t0 + i * 100, task, ent);
        it_xadd(f->env.c, "enforce:scan", json, last1, sizeof(last1));
    }
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, WALL_CFG), 0);
    wait_alerts(f, 5);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:state:clock"), 1);

    /* F1 and F2 scanned a second after filing: in time, but late to arrive */
    snprintf(json, sizeof(json), SCANNED("F1", "E1", "%lld"), t0 + 1100);
    it_xadd(f->env.c, "enforce:scan", json, NULL, 0);
    snprintf(json, sizeof(json), SCANNED("F2", "E2", "%lld"), t0 + 1200);
    it_xadd(f->env.c, "enforce:scan", json, NULL, 0);
    snprintf(json, sizeof(json), SCANNED("TX", "EX", "%lld"), t0 + 86400000LL);
    it_xadd(f->env.c, "enforce:scan", json, NULL, 0);
    snprintf(json, sizeof(json), FILED("F6", "E6", "%lld"), wall_ms());
    it_xadd(f->env.c, "enforce:scan", json, NULL, 0);
    wait_alerts(f, 9);
    assert_true(it_wait_settled(f->env.c, 15000));
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    live = live_ids(f);
    /* 7 alerts, and the late in-time scans of F1 and F2 retract theirs */
    assert_int_equal(json_object_size(live), 9);
    assert_int_equal(count_rule(live, "filed_not_scanned"), 8);
    assert_int_equal(count_rule(live, "scan_without_filing"), 1);
    assert_true(it_int(f->env.c, "XLEN riskd:state:clock") >= 2);

    write_cfg(f, "wall.json", WALL_CFG, cfg, sizeof(cfg));
    rep = replay_ids(f, cfg, "");
    assert_same_alerts(live, rep);
    json_decref(rep);

    /* --to the first batch: tick 1 is in range, tick 2 (after F6) is not. */
    snprintf(extra, sizeof(extra), " --to %s", last1);
    rep = replay_ids(f, cfg, extra);
    assert_int_equal(json_object_size(rep), 5);
    assert_int_equal(count_rule(rep, "filed_not_scanned"), 5);
    json_decref(rep);

    /* Without the ticks: F1 and F2 count as scanned in time and F6's
     * deadline never passes in event time. */
    freeReplyObject(it_cmd(f->env.c, "DEL riskd:state:clock"));
    rep = replay_ids(f, cfg, "");
    assert_int_equal(json_object_size(rep), 4);
    assert_int_equal(count_rule(rep, "filed_not_scanned"), 3);
    json_decref(rep);
    json_decref(live);
}

/* The ticks survive a crash. The live run ticks once (filings of 2025
 * never scanned), and is killed before any checkpoint covers the tick
 * (state.interval 1h). While it is down a scan of a task never filed
 * arrives, stamped after every other event: only a watermark already past
 * its grace deadline - the tick - raises scan_without_filing. The restarted
 * run (clock.idle 1h: no tick of its own) reads the tick back, applies it
 * at its position after the re-read first batch, and raises that alert;
 * the replay equals the whole live output. */
static void test_wall_ticks_survive_kill(void **state)
{
    fixture *f = *state;
    char cfg[400];
    json_t *live, *rep;
    static const char run1[] = "{\"clock\":{\"wall_advance\":true,\"idle\":\"1s\"},"
                               "\"state\":{\"interval\":\"1h\"}}";
    static const char run2[] = "{\"clock\":{\"wall_advance\":true,\"idle\":\"1h\"},"
                               "\"state\":{\"interval\":\"200ms\"}}";

    it_xadd(f->env.c, "enforce:case", CASE_OPENED("C1", "\"2025-03-01T08:00:00Z\""), NULL, 0);
    it_xadd(f->env.c, "enforce:scan", FILED("F1", "E1", "\"2025-03-01T09:00:00Z\""), NULL, 0);
    it_xadd(f->env.c, "enforce:scan", FILED("F2", "E2", "\"2025-03-01T09:01:00Z\""), NULL, 0);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, run1), 0);
    wait_alerts(f, 2);
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:state"), 0);
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 15000);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:state:clock"), 1);

    it_xadd(f->env.c, "enforce:scan", SCANNED("TX", "EX", "\"2025-03-05T10:00:00Z\""), NULL, 0);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, run2), 0);
    wait_alerts(f, 6);
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 15000));
    assert_true(it_wait_drained(f->env.c, "enforce:case", "riskd", 15000));
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    assert_true(it_log_contains(&f->env.riskd, "1 wall-clock tick(s) from riskd:state:clock"));
    assert_int_equal(it_int(f->env.c, "XLEN riskd:state:clock"), 1);
    live = live_ids(f);
    /* 3 alerts; the tick (to the wall clock of today) is more than
     * alerts.open_ttl (30d) after them, so riskd closed all three */
    assert_int_equal(json_object_size(live), 6);
    assert_int_equal(count_rule(live, "scan_without_filing"), 2);
    {
        const char *id;
        json_t *v;
        int closed = 0;
        json_object_foreach(live, id, v)
            if (json_is_string(json_object_get(v, "status")) &&
                strcmp(json_string_value(json_object_get(v, "status")), "closed") == 0 &&
                strcmp(json_string_value(json_object_get(v, "by")), "riskd") == 0)
                closed++;
        assert_int_equal(closed, 3);
    }

    write_cfg(f, "run2.json", run2, cfg, sizeof(cfg));
    rep = replay_ids(f, cfg, "");
    assert_same_alerts(live, rep);
    json_decref(rep);
    json_decref(live);
}

/* ---- notices: a replay gives the live run's notices ---- */

/* Late data and windows that make every kind of detector notice: the
 * replay prints the same notices as the live run wrote (content equal
 * apart from emitted_at), each once, after its alert. */
static void test_replay_notices(void **state)
{
    static const char *const scan[] = {
        "{\"type\":\"inspection.scanned\",\"ts\":\"2025-03-01T10:00:00Z\",\"task_id\":\"T1\","
        "\"enterprise_id\":\"E1\",\"unit_id\":\"U1\"}",
        "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-01T10:00:00Z\",\"task_id\":\"T8\","
        "\"enterprise_id\":\"E1\",\"unit_id\":\"U1\",\"officers\":[\"O1\"],\"score\":1}",
        "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-01T10:20:00Z\",\"task_id\":\"T9\","
        "\"enterprise_id\":\"E1\",\"unit_id\":\"U1\",\"officers\":[\"O1\"],\"score\":1}",
        "{\"type\":\"clock.tick\",\"ts\":\"2025-03-01T10:30:00Z\"}",
        "{\"type\":\"inspection.filed\",\"ts\":\"2025-03-01T10:05:00Z\",\"task_id\":\"T1\","
        "\"unit_id\":\"U1\",\"officers\":[\"O1\"],\"enterprise_id\":\"E1\","
        "\"planned_at\":\"2025-03-01T09:00:00Z\"}",
        "{\"type\":\"clock.tick\",\"ts\":\"2025-03-01T16:00:00Z\"}",
    };
    fixture *f = *state;
    const char *cfg_json = "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":"
                           "\"200ms\"},\"detectors\":{\"bad_rating\":{\"officer_min_bad\":2,"
                           "\"officer_window\":\"1h\"}}}";
    char cfg[400], args[600], *out, *err;
    json_t *live, *rep, *v;
    const char *id;
    size_t i;
    int notices = 0;

    for (i = 0; i < sizeof(scan) / sizeof(scan[0]); i++)
        it_xadd(f->env.c, "enforce:scan", scan[i], NULL, 0);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, cfg_json), 0);
    assert_true(it_wait_settled(f->env.c, 30000));
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    live = live_ids(f);
    json_object_foreach(live, id, v)
        if (strchr(id, ':') != NULL)
            notices++;
    /* scan_without_filing retracted; officer_repeated resolved */
    if (notices != 2)
        it_riskd_dump_log(&f->env.riskd);
    assert_int_equal(notices, 2);

    write_cfg(f, "n.json", cfg_json, cfg, sizeof(cfg));
    snprintf(args, sizeof(args), "--replay -c %s", cfg);
    assert_int_equal(run(args, &out, &err), 0);
    rep = ids_of_lines(out);
    assert_same_alerts(live, rep);
    json_decref(live);
    json_decref(rep);
    free(out);
    free(err);
}

/* ===================================================================
 * Redis unreachable or lost: exit 2
 * =================================================================== */

/* Nothing listens on the port: riskd gives up after its 5 s wait (the
 * bound here only stops a hang) with one line naming the address. */
static void test_replay_unreachable(void **state)
{
    fixture *f = *state;
    char cfg[400], path[300], addr[64], json[128];
    const char *args[5];
    itc_result *r = calloc(1, sizeof(*r));
    int port = it_free_port();

    snprintf(json, sizeof(json), "{\"redis\":{\"port\":%d}}", port);
    snprintf(cfg, sizeof(cfg), "%s/down.json", f->dir);
    assert_int_equal(it_write_config(cfg, port, json), 0);
    snprintf(path, sizeof(path), "%s/riskd", it_build_dir());
    args[0] = "--replay";
    args[1] = "-c";
    args[2] = cfg;
    args[3] = NULL;
    itc_run_prog(r, f->dir, 30000, path, args);
    snprintf(addr, sizeof(addr), "riskd: cannot reach Redis at 127.0.0.1:%d", port);
    if (r->status != 2 || strstr(r->err, addr) == NULL || strstr(r->err, "did not run") == NULL)
        fail_msg("exit %d, stderr:\n%s", r->status, r->err);
    assert_string_equal(r->out, "");
    free(r);
}

static bool held(void *arg)
{
    return it_proxy_held(arg) > 0;
}

static bool released(void *arg)
{
    return it_proxy_held(arg) == 0;
}

/* Has the replay's reader read entries (its connection's last command an
 * XREAD)? */
static bool reading(redisContext *c)
{
    redisReply *r = it_cmd(c, "CLIENT LIST");
    bool yes = r->type == REDIS_REPLY_STRING && strstr(r->str, "cmd=xread ") != NULL;
    freeReplyObject(r);
    return yes;
}

static pid_t exited_pid;
static int exited_status;

static bool exited(void *arg)
{
    (void)arg;
    return waitpid(exited_pid, &exited_status, WNOHANG) == exited_pid;
}

/* Redis killed in the middle of a replay: it does not finish as if
 * complete, it exits 2 naming the address. The replay goes through a
 * proxy held between its requests, one at a time, until its reader has
 * read entries and waits for the reply to its next request: then Redis
 * is killed (the proxy closes the replay's connections with it). */
static void test_replay_redis_lost(void **state)
{
    fixture *f = *state;
    char cfg[400], json[160], log[300], path[300], addr[96];
    const char *args[4];
    it_proxy *px;
    int pport, i, st;
    pid_t pid;
    FILE *lf;
    char text[65536];
    size_t n;

    assert_true(it_preload_workload(f->env.c, 4000, 10, 0.05, 7, 0) > 0);
    px = it_proxy_start(f->env.redis.port, &pport);
    assert_non_null(px);
    snprintf(json, sizeof(json), "{\"redis\":{\"port\":%d},\"streams\":{\"batch\":10}}",
             pport);
    snprintf(cfg, sizeof(cfg), "%s/lost.json", f->dir);
    assert_int_equal(it_write_config(cfg, pport, json), 0);
    snprintf(log, sizeof(log), "%s/lost.log", f->dir);
    snprintf(path, sizeof(path), "%s/riskd", it_build_dir());
    args[0] = "--replay";
    args[1] = "-c";
    args[2] = cfg;
    args[3] = NULL;
    it_proxy_hold(px, true);
    pid = itc_spawn(path, log, args);
    assert_true(pid > 0);
    exited_pid = pid;
    for (i = 0; i < 1000; i++) {
        if (!it_wait_until(held, px, 10000))
            fail_msg("the replay sent nothing more (exited: %d)", exited(NULL));
        if (reading(f->env.c))
            break;
        it_proxy_hold(px, false);   /* let this request through, hold the next */
        if (!it_wait_until(released, px, 10000))
            fail_msg("the proxy did not pass the held request on");
        it_proxy_hold(px, true);
    }
    assert_true(i < 1000);
    it_redis_kill(&f->env.redis);
    if (!it_wait_until(exited, NULL, 30000)) {
        itc_stop(pid, SIGKILL, 5000);
        fail_msg("the replay did not exit after Redis was killed");
    }
    it_proxy_stop(px);
    st = WIFEXITED(exited_status) ? WEXITSTATUS(exited_status) : -1;
    lf = fopen(log, "r");
    assert_non_null(lf);
    n = fread(text, 1, sizeof(text) - 1, lf);
    text[n] = '\0';
    fclose(lf);
    snprintf(addr, sizeof(addr), "riskd: lost the connection to Redis at 127.0.0.1:%d; "
             "the replay is incomplete", pport);
    if (st != 2 || strstr(text, addr) == NULL)
        fail_msg("exit %d, output:\n%s", st, text);
}

int main(void)
{
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_equals_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare_and_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_equals_live_wall_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wall_ticks_survive_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_notices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_redis_lost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
