/* tests/integration/test-prefetch.c - the read ahead (engine.c "ahead") against a real
 * redis-server and riskd.
 *
 * The engine sends the next XREADGROUP before it applies the batch it just
 * took in. What must not change with it:
 *   - the merge by event time stops at a stream that may have more entries
 *     and has nothing buffered, also while that stream's read ahead is in
 *     flight: with streams.batch 1 the case stream's entries would otherwise
 *     run ahead of the scan stream's and fire a grace timer early;
 *   - the alerts do not depend on how the backlog is cut into reads: a
 *     generated workload drained with streams.batch 500 and with 3 gives
 *     the same alerts by id, live and in a replay (XREAD, read ahead too).
 * Entries get explicit ids, so alert ids compare across runs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "itest.h"

#define CFG_FMT "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"200ms\"}," \
                "\"streams\":{\"batch\":%d}}"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new): redis, client, riskd */
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "prefetch") != 0) {
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

/* The config: streams.batch `batch`, plus the apply_order test plugin when
 * order is true. */
static void make_cfg(char *buf, size_t len, int batch, bool order)
{
    if (order)
        snprintf(buf, len, "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":"
                 "\"200ms\"},\"streams\":{\"batch\":%d},"
                 "\"plugins\":[\"%s/tests/plugins/apply_order.so\"]}", batch, it_build_dir());
    else
        snprintf(buf, len, CFG_FMT, batch);
}

/* Run riskd to a drained, settled group with that config, stop it with
 * SIGTERM (exit 0) and return the alerts by id. */
static json_t *live_run(fixture *f, int batch, bool order)
{
    char cfg[512];
    const char *dup;
    json_t *ids;
    make_cfg(cfg, sizeof(cfg), batch, order);
    memset(&f->env.riskd, 0, sizeof(f->env.riskd));
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
    if (!it_wait_settled(f->env.c, 60000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("batch %d: riskd did not drain", batch);
    }
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    ids = it_alerts_by_id(f->env.c, &dup);
    if (dup != NULL)
        fail_msg("batch %d: alert id %s written twice", batch, dup);
    return ids;
}

/* riskd --replay with that config: the alerts it prints, by id (without
 * emitted_at). */
static json_t *replay_run(fixture *f, int batch, bool order)
{
    char cfg[512], path[400], cmd[1024], line[1 << 16];
    json_t *ids = json_object();
    FILE *p;
    int st;
    make_cfg(cfg, sizeof(cfg), batch, order);
    snprintf(path, sizeof(path), "%s/replay-%d.json", f->dir, batch);
    assert_int_equal(it_write_config(path, f->env.redis.port, cfg), 0);
    snprintf(cmd, sizeof(cmd), "%s/riskd --replay -c %s 2>/dev/null", it_build_dir(), path);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        json_t *a = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *status = json_string_value(json_object_get(a, "status"));
        char key[160];
        if (id == NULL)
            fail_msg("replay printed a line that is not an alert: %s", line);
        /* a notice under "<id>:<status>", as it_alerts_by_id keys the
         * stream's */
        if (status != NULL && strcmp(status, "firing") != 0)
            snprintf(key, sizeof(key), "%s:%s", id, status);
        else
            snprintf(key, sizeof(key), "%s", id);
        if (json_object_get(ids, key) != NULL)
            fail_msg("replay printed %s twice", key);
        json_object_del(a, "emitted_at");
        json_object_set_new(ids, key, a);
    }
    st = pclose(p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    return ids;
}

/* The apply_order alerts of `alerts` (id -> alert): check there are n,
 * numbered 1..n, and that their ts never goes back (the merge by event
 * time). Returns the entry applied first ("stream/id") for the caller to
 * check, borrowed from alerts. */
static const char *check_order(json_t *alerts, size_t n, const char *what)
{
    const char **entry = calloc(n + 1, sizeof(*entry));
    const char **tss = calloc(n + 1, sizeof(*tss));
    const char *id, *first;
    json_t *a;
    size_t got = 0, i;
    assert_non_null(entry);
    assert_non_null(tss);
    json_object_foreach(alerts, id, a) {
        long long seq;
        if (strcmp(json_string_value(json_object_get(a, "detector")), "apply_order") != 0)
            continue;
        seq = (long long)json_number_value(json_object_get(a, "value"));
        if (seq < 1 || (size_t)seq > n || entry[seq] != NULL)
            fail_msg("%s: apply_order ordinal %lld out of range or twice", what, seq);
        entry[seq] = json_string_value(json_array_get(json_object_get(a, "evidence"), 0));
        tss[seq] = json_string_value(json_object_get(a, "ts"));
        got++;
    }
    if (got != n)
        fail_msg("%s: %zu events applied, expected %zu", what, got, n);
    for (i = 2; i <= n; i++)
        if (strcmp(tss[i - 1], tss[i]) > 0)
            fail_msg("%s: %s (ts %s) was applied before %s (ts %s)", what, entry[i - 1],
                     tss[i - 1], entry[i], tss[i]);
    first = entry[1];
    free(entry);
    free(tss);
    return first;
}

/* Fail unless a and b hold the same ids (with full: the same alerts). */
static void same_alerts(json_t *a, json_t *b, bool full, const char *what)
{
    const char *id;
    json_t *v;
    json_object_foreach(a, id, v) {
        json_t *w = json_object_get(b, id);
        if (w == NULL)
            fail_msg("%s: alert %s missing", what, id);
        if (full && !json_equal(v, w))
            fail_msg("%s: alert %s differs", what, id);
    }
    json_object_foreach(b, id, v)
        if (json_object_get(a, id) == NULL)
            fail_msg("%s: alert %s extra", what, id);
}

static void xadd_id(redisContext *c, const char *key, int n, const char *json)
{
    redisReply *r = it_cmd(c, "XADD %s %d-0 data %s", key, n, json);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

/* The scan stream is far behind the case stream in event time and is read
 * one entry per XREADGROUP, so its read ahead is in flight whenever its
 * buffer runs out: 40 scans at 07:00-07:39, then one at 07:50. The case
 * stream holds complaints at 07:05, 07:15, ..., 07:45 and 08:00. Applied
 * in event-time order, live and replayed (the apply_order plugin numbers
 * the events as riskd applies them): a merge that went on past the scan
 * stream's empty buffer while its read was in flight would apply 07:45
 * before 07:39. */
static void test_merge_waits_for_read_ahead(void **state)
{
    fixture *f = *state;
    redisContext *c = f->env.c;
    char ev[256];
    json_t *live, *rep;
    int i;

    for (i = 0; i < 41; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"inspection.scanned\",\"ts\":"
                 "\"2025-03-01T07:%02d:00+08:00\",\"task_id\":\"S%d\",\"enterprise_id\":\"E1\"}",
                 i < 40 ? i : 50, i);
        xadd_id(c, "enforce:scan", i + 1, ev);
    }
    for (i = 0; i < 6; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"case.complaint\",\"ts\":"
                 "\"2025-03-01T0%d:%02d:00+08:00\",\"complaint_id\":\"K%d\",\"unit_id\":\"U%d\"}",
                 i < 5 ? 7 : 8, i < 5 ? 5 + 10 * i : 0, i, i);
        xadd_id(c, "enforce:case", i + 1, ev);
    }

    live = live_run(f, 1, true);
    assert_string_equal(check_order(live, 47, "live, streams.batch 1"), "enforce:scan/1-0");
    assert_int_equal(it_int(c, "XLEN riskd:dead"), 0);
    rep = replay_run(f, 1, true);
    assert_string_equal(check_order(rep, 47, "replay, streams.batch 1"), "enforce:scan/1-0");
    json_decref(live);
    json_decref(rep);
}

/* A generated workload (every event type, planted anomalies, invalid
 * entries) drained with batches of 500 and of 3, and replayed with 2:
 * the same alerts by id. */
static void test_batch_size_does_not_matter(void **state)
{
    fixture *f = *state;
    redisContext *c = f->env.c;
    json_t *big, *small, *rep;
    redisReply *r;

    it_preload_workload(c, 6000, 20, 0.08, 5, 89);
    big = live_run(f, 500, false);
    assert_true(json_object_size(big) > 20);
    fprintf(stderr, "batch 500: %zu alerts\n", json_object_size(big));

    /* The same input again, from scratch. */
    r = it_cmd(c, "FLUSHALL");
    freeReplyObject(r);
    it_preload_workload(c, 6000, 20, 0.08, 5, 89);
    small = live_run(f, 3, false);
    same_alerts(big, small, true, "streams.batch 3 against 500");

    rep = replay_run(f, 2, false);
    same_alerts(big, rep, false, "replay with streams.batch 2 against live 500");
    json_decref(big);
    json_decref(small);
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_waits_for_read_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_size_does_not_matter, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
