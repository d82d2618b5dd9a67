/* tests/integration/test-repeated.c - repeated events change nothing; amendments
 * replace; filings are remembered; alert ids are a function of content.
 *
 * A generated workload (tests/lib/gen.c: every event type, planted
 * anomalies, invalid entries) is written once with explicit entry ids and
 * drained: that run's alerts are the reference. Then the same workload is
 * written with every event repeated - right after itself, a day later in
 * event time, after a restart, across a SIGKILL, after the consumer group
 * was deleted and created again - and each run must raise exactly the
 * reference alerts: the same ids and the same JSON (apart from
 * emitted_at), none twice. Written into another Redis under other entry
 * ids, the same events give the same alert ids.
 *
 * Small hand-written feeds check the rest: an officer with two bad ratings,
 * one delivered three times; a case opened 300 days after its filing; a
 * rescheduled filing; a corrected fine; a rating re-sent with another
 * score. All against a real redis-server and build/riskd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskd/kit.h"
#include "internal.h"
#include "itest.h"
#include "gen.h"

#define EVENTS 12000
#define SLOW_CKPT "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"1h\"}}"
#define DAY ((int64_t)86400000)
#define CONFIG "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"200ms\"}," \
               "\"streams\":{\"batch\":100}}"

/* ===================================================================
 * The workload and how it is written
 * =================================================================== */

typedef struct ev {
    int64_t ts;
    char *json;
} ev;

typedef struct feed {
    ev *e[2];                       /* per stream, in generation order */
    size_t n[2];
} feed;

static feed W;                      /* the workload */
static json_t *reference;           /* id -> alert of the single delivery */

static void feed_make(feed *f)
{
    bg_opts o;
    bg_gen *g;
    char buf[2048];
    size_t i;
    bg_opts_default(&o);
    o.entries = EVENTS;
    o.units = 60;
    o.officers = 120;
    o.enterprises = 600;
    o.days = 30;
    o.anomaly = 0.08;
    o.seed = 20261205;
    g = bg_gen_new(&o);
    assert_non_null(g);
    memset(f, 0, sizeof(*f));
    f->e[0] = calloc(EVENTS, sizeof(ev));
    f->e[1] = calloc(EVENTS, sizeof(ev));
    for (i = 0; i < EVENTS; i++) {
        int s;
        int64_t ts;
        assert_true(bg_gen_next(g, -1, &s, &ts, buf, sizeof(buf)) > 0);
        if (i % 113 == 112)         /* some invalid input too */
            snprintf(buf, sizeof(buf), "{\"type\":\"inspection.rated\",\"ts\":1,\"score\":9,"
                     "\"n\":%zu}", i);
        f->e[s][f->n[s]].ts = ts;
        f->e[s][f->n[s]].json = strdup(buf);
        f->n[s]++;
    }
    bg_gen_free(g);
}

static void feed_free(feed *f)
{
    size_t i;
    int s;
    for (s = 0; s < 2; s++) {
        for (i = 0; i < f->n[s]; i++)
            free(f->e[s][i].json);
        free(f->e[s]);
    }
}

static const char *const SKEY[2] = {"enforce:scan", "enforce:case"};

/* XADD with an explicit id ("*" for an automatic one), pipelined; flush
 * with xflush. */
static size_t inflight;

static void xadd(redisContext *c, int s, const char *id, const char *json)
{
    redisAppendCommand(c, "XADD %s %s data %s", SKEY[s], id, json);
    inflight++;
}

static void xflush(redisContext *c)
{
    for (; inflight > 0; inflight--) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        if (r->type == REDIS_REPLY_ERROR)
            fail_msg("XADD: %s", r->str);
        freeReplyObject(r);
    }
}

enum { PLAN_ONCE, PLAN_TWICE_NOW, PLAN_TWICE_DAY_LATER, PLAN_AUTO_IDS };

/* Write the workload: event i of a stream as entry "<i+1>-0" (the same ids
 * in every plan), its repeat right after it as "<i+1>-1" (TWICE_NOW), or
 * after the first event at least a day later in event time, as "<k>-<j>"
 * (TWICE_DAY_LATER); AUTO_IDS writes it once under automatic ids. */
static void write_plan(redisContext *c, int plan)
{
    char id[48];
    int s;
    size_t i;
    for (s = 0; s < 2; s++) {
        size_t next_dup = 0;
        for (i = 0; i < W.n[s]; i++) {
            int seq = 1;
            if (plan == PLAN_AUTO_IDS) {
                xadd(c, s, "*", W.e[s][i].json);
                continue;
            }
            snprintf(id, sizeof(id), "%zu-0", i + 1);
            xadd(c, s, id, W.e[s][i].json);
            if (plan == PLAN_TWICE_NOW) {
                snprintf(id, sizeof(id), "%zu-1", i + 1);
                xadd(c, s, id, W.e[s][i].json);
            } else if (plan == PLAN_TWICE_DAY_LATER) {
                while (next_dup < i && W.e[s][next_dup].ts + DAY <= W.e[s][i].ts) {
                    snprintf(id, sizeof(id), "%zu-%d", i + 1, seq++);
                    xadd(c, s, id, W.e[s][next_dup++].json);
                }
            }
            if (inflight >= 500)
                xflush(c);
        }
        if (plan == PLAN_TWICE_DAY_LATER) {
            for (; next_dup < W.n[s]; next_dup++)
                xadd(c, s, "*", W.e[s][next_dup].json);
        }
        xflush(c);
    }
}

/* The events with lo <= ts < hi, once, with the ids of PLAN_ONCE. */
static void write_ts_range(redisContext *c, int64_t lo, int64_t hi)
{
    char id[48];
    int s;
    size_t i;
    for (s = 0; s < 2; s++)
        for (i = 0; i < W.n[s]; i++) {
            if (W.e[s][i].ts < lo || W.e[s][i].ts >= hi)
                continue;
            snprintf(id, sizeof(id), "%zu-0", i + 1);
            xadd(c, s, id, W.e[s][i].json);
            if (inflight >= 500)
                xflush(c);
        }
    xflush(c);
}

/* Every event once more, at the end of its stream. */
static void write_repeats(redisContext *c)
{
    int s;
    size_t i;
    for (s = 0; s < 2; s++)
        for (i = 0; i < W.n[s]; i++) {
            xadd(c, s, "*", W.e[s][i].json);
            if (inflight >= 500)
                xflush(c);
        }
    xflush(c);
}

/* ===================================================================
 * Running riskd and comparing
 * =================================================================== */

typedef struct fixture {
    it_env env;
} fixture;

static int setup(void **state)
{
    *state = it_fixture_new(sizeof(fixture));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    feed_make(&W);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    feed_free(&W);
    json_decref(reference);
    return 0;
}

static void start(fixture *f, const char *cfg)
{
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
}

static void settle(fixture *f)
{
    if (!it_wait_settled(f->env.c, 60000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not drain");
    }
}

static void stop(fixture *f)
{
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

static json_t *collect(fixture *f)
{
    const char *dup;
    json_t *ids = it_alerts_by_id(f->env.c, &dup);
    if (dup != NULL)
        fail_msg("alert id %s written twice", dup);
    return ids;
}

static void show(const char *run, const char *what, json_t *a)
{
    char *txt = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf(stderr, "%s: %s %s\n", run, what, txt);
    free(txt);
}

/* got must equal the reference: same ids, and (unless ids_only) the same
 * JSON apart from emitted_at. */
static void compare(json_t *got, const char *run, bool ids_only)
{
    const char *id;
    json_t *v;
    int missing = 0, extra = 0, differ = 0;
    json_object_foreach(reference, id, v) {
        json_t *g = json_object_get(got, id);
        if (g == NULL) {
            if (missing++ < 4)
                show(run, "missing", v);
        } else if (!ids_only && !json_equal(g, v) && differ++ < 4) {
            show(run, "expected", v);
            show(run, "got     ", g);
        }
    }
    json_object_foreach(got, id, v)
        if (json_object_get(reference, id) == NULL && extra++ < 4)
            show(run, "extra", v);
    json_decref(got);
    if (missing || extra || differ)
        fail_msg("%s: %d alerts missing, %d extra, %d different (of %zu)", run, missing,
                 extra, differ, json_object_size(reference));
}

/* The reference: every event once. */
static void test_once(void **state)
{
    fixture *f = *state;
    write_plan(f->env.c, PLAN_ONCE);
    start(f, CONFIG);
    settle(f);
    stop(f);
    reference = collect(f);
    fprintf(stderr, "reference: %zu alerts, %lld dead letters\n",
            json_object_size(reference), it_int(f->env.c, "XLEN riskd:dead"));
    assert_true(json_object_size(reference) > 50);
}

static void test_twice_at_once(void **state)
{
    fixture *f = *state;
    write_plan(f->env.c, PLAN_TWICE_NOW);
    start(f, CONFIG);
    settle(f);
    assert_true(it_log_contains(&f->env.riskd, "consuming"));
    stop(f);
    compare(collect(f), "repeated at once", false);
}

static void test_twice_a_day_later(void **state)
{
    fixture *f = *state;
    write_plan(f->env.c, PLAN_TWICE_DAY_LATER);
    start(f, CONFIG);
    settle(f);
    stop(f);
    compare(collect(f), "repeated a day later", false);
}

static void test_twice_after_restart(void **state)
{
    fixture *f = *state;
    write_plan(f->env.c, PLAN_ONCE);
    start(f, CONFIG);
    settle(f);
    stop(f);
    write_repeats(f->env.c);
    start(f, CONFIG);
    settle(f);
    stop(f);
    compare(collect(f), "repeated after a restart", false);
}

static void test_twice_across_sigkill(void **state)
{
    fixture *f = *state;
    size_t half = json_object_size(reference) / 2;
    int kills = 0;
    write_plan(f->env.c, PLAN_TWICE_NOW);
    start(f, CONFIG);
    /* kill -9 mid-drain: once a third, once two thirds of the alerts are out */
    while (kills < 2) {
        long long want = (long long)(half * 2 * (size_t)(kills + 1) / 3);
        int waited = 0;
        while (it_int(f->env.c, "XLEN alerts") < want && waited < 30000) {
            it_sleep_ms(5);
            waited += 5;
        }
        it_riskd_signal(&f->env.riskd, SIGKILL);
        it_riskd_wait(&f->env.riskd, 5000);
        kills++;
        start(f, CONFIG);
    }
    settle(f);
    stop(f);
    compare(collect(f), "repeated across kill -9", false);
}

static void test_twice_after_group_recreated(void **state)
{
    fixture *f = *state;
    write_plan(f->env.c, PLAN_ONCE);
    start(f, CONFIG);
    settle(f);
    stop(f);
    freeReplyObject(it_cmd(f->env.c, "XGROUP DESTROY enforce:scan riskd"));
    freeReplyObject(it_cmd(f->env.c, "XGROUP DESTROY enforce:case riskd"));
    write_repeats(f->env.c);
    start(f, CONFIG);
    settle(f);
    stop(f);
    compare(collect(f), "repeated after the group was recreated", false);
}

/* The same events in another Redis, under other entry ids: the same ids
 * (the evidence names other entries, so only ids are compared). */
static void test_other_redis_same_ids(void **state)
{
    fixture *f = *state;
    write_plan(f->env.c, PLAN_AUTO_IDS);
    start(f, CONFIG);
    settle(f);
    stop(f);
    compare(collect(f), "other entry ids", true);
}

/* ===================================================================
 * Upgrade from the previous release
 * =================================================================== */

/* The previous release's checkpoint (format 1) of a format-3 one: the same
 * but for the version and the two trailing blobs: the indicators' (u64
 * length, u32 version 1, ...) and before it the natural keys' (u64 length,
 * u32 version 1, u64 count, count x 16 bytes). */
static size_t dedupe_blob_at(const unsigned char *p, size_t len)
{
    size_t k;
    for (k = 0; 12 + 16 * k + 8 <= len; k++) {
        size_t bl = 12 + 16 * k, at = len - bl - 8, i;
        uint64_t v = 0, cnt = 0;
        for (i = 0; i < 8; i++) v |= (uint64_t)p[at + i] << (8 * i);
        for (i = 0; i < 8; i++) cnt |= (uint64_t)p[at + 12 + i] << (8 * i);
        if (v == bl && p[at + 8] == 1 && cnt == k)
            return at;
    }
    return 0;
}

static size_t to_format1(unsigned char *p, size_t len)
{
    size_t at, d;
    for (at = len - 12; at > 8; at--) {    /* the indicators' blob, then the keys' */
        uint64_t v = 0;
        size_t i;
        for (i = 0; i < 8; i++) v |= (uint64_t)p[at + i] << (8 * i);
        if (v == len - at - 8 && (p[at + 8] == 1 || p[at + 8] == 2) && p[at + 9] == 0 &&
            (d = dedupe_blob_at(p, at)) != 0) {
            p[4] = 1;                       /* STATE_VERSION 1 */
            return d;
        }
    }
    fail_msg("no natural-key blob at the end of the checkpoint");
    return 0;
}

/* The rk_alert of an alert's JSON, as far as ids go. */
static void v1_id(json_t *a, char out[33])
{
    rk_alert al;
    rk_entry_ref refs[RK_MAX_EVIDENCE];
    json_t *subj = json_object_get(a, "subject"), *evid = json_object_get(a, "evidence"), *x;
    size_t i;
    memset(&al, 0, sizeof(al));
    al.rule = json_string_value(json_object_get(a, "rule"));
    assert_int_equal(rk__parse_rfc3339(json_string_value(json_object_get(a, "ts")), &al.ts), 0);
    al.subject.unit_id = json_string_value(json_object_get(subj, "unit_id"));
    al.subject.officer_id = json_string_value(json_object_get(subj, "officer_id"));
    al.subject.enterprise_id = json_string_value(json_object_get(subj, "enterprise_id"));
    al.subject.task_id = json_string_value(json_object_get(subj, "task_id"));
    al.subject.case_id = json_string_value(json_object_get(subj, "case_id"));
    al.subject.region = json_string_value(json_object_get(subj, "region"));
    json_array_foreach(evid, i, x) {
        const char *e = json_string_value(x), *slash = strrchr(e, '/');
        unsigned long long ms, seq;
        assert_non_null(slash);
        assert_int_equal(sscanf(slash + 1, "%llu-%llu", &ms, &seq), 2);
        refs[i].ms = ms;
        refs[i].seq = (uint32_t)seq;
        refs[i].stream = strncmp(e, "enforce:case/", 13) == 0 ? 1 : 0;
    }
    al.evidence = refs;
    al.n_evidence = json_array_size(evid);
    rk__alert_id_v1(json_string_value(json_object_get(a, "detector")), &al, out);
}

/* What an alert says, without its id and wall time: detector, rule,
 * subject and ts. */
static char *content_key(json_t *a)
{
    json_t *k = json_pack("{s:O,s:O,s:O,s:O}", "d", json_object_get(a, "detector"),
                          "r", json_object_get(a, "rule"), "s", json_object_get(a, "subject"),
                          "t", json_object_get(a, "ts"));
    char *txt = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(k);
    return txt;
}

/* riskd of the previous release was killed mid-drain: its checkpoint is
 * format 1 and its alerts carry ids derived from entry ids. The new riskd
 * restores that checkpoint, applies what was pending, and writes no alert
 * a second time under its new id. */
static void test_upgrade_reemits_nothing(void **state)
{
    fixture *f = *state;
    redisContext *c = f->env.c;
    redisReply *r;
    json_t *all, *a, *seen;
    size_t i;
    unsigned char *blob;
    size_t len;
    int waited = 0;
    int64_t mid = W.e[0][W.n[0] / 2].ts;

    /* The first half (by event time) is applied and checkpointed by a
     * clean stop; the second half is applied and its alerts written, but
     * no checkpoint covers it (state.interval 1h) when riskd is killed. */
    write_ts_range(c, INT64_MIN, mid);
    start(f, CONFIG);
    settle(f);
    stop(f);
    write_ts_range(c, mid, INT64_MAX);
    start(f, SLOW_CKPT);
    while (it_int(c, "XLEN alerts") < (long long)json_object_size(reference) && waited < 30000) {
        it_sleep_ms(10);
        waited += 10;
    }
    it_sleep_ms(300);
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 5000);
    r = it_cmd(c, "XPENDING enforce:scan riskd");
    assert_true(r->type == REDIS_REPLY_ARRAY && r->element[0]->integer > 0);
    freeReplyObject(r);

    /* Make it the previous release's: format-1 checkpoint, old ids. */
    r = it_cmd(c, "GET riskd:state");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    len = r->len;
    blob = malloc(len);
    memcpy(blob, r->str, len);
    freeReplyObject(r);
    len = to_format1(blob, len);
    freeReplyObject(it_cmd(c, "SET riskd:state %b", blob, len));
    free(blob);
    all = it_alerts(c, "alerts");
    freeReplyObject(it_cmd(c, "DEL alerts"));
    json_array_foreach(all, i, a) {
        char old[33], *txt;
        const char *id = json_string_value(json_object_get(a, "id"));
        v1_id(a, old);
        freeReplyObject(it_cmd(c, "DEL riskd:alert:%s", id));
        freeReplyObject(it_cmd(c, "SET riskd:alert:%s 1", old));
        json_object_set_new(a, "id", json_string(old));
        txt = json_dumps(a, JSON_COMPACT);
        freeReplyObject(it_cmd(c, "XADD alerts * data %s", txt));
        free(txt);
    }
    fprintf(stderr, "upgrade: %zu alerts written by the 'previous release'\n",
            json_array_size(all));
    json_decref(all);

    start(f, CONFIG);
    settle(f);
    stop(f);
    assert_true(it_log_contains(&f->env.riskd, "consuming"));
    all = it_alerts(c, "alerts");
    seen = json_object();
    json_array_foreach(all, i, a) {
        char *k = content_key(a);
        if (json_object_get(seen, k) != NULL)
            fail_msg("written twice after the upgrade: %s", k);
        json_object_set_new(seen, k, json_true());
        free(k);
    }
    {
        const char *id;
        json_object_foreach(reference, id, a) {
            char *k = content_key(a);
            if (json_object_get(seen, k) == NULL)
                fail_msg("missing after the upgrade: %s", k);
            free(k);
        }
    }
    assert_int_equal(json_object_size(seen), json_object_size(reference));
    json_decref(seen);
    json_decref(all);
}

/* ===================================================================
 * Hand-written feeds
 * =================================================================== */

#define T0 INT64_C(1740787200000)   /* 2025-03-01T00:00:00Z */

/* An alert's ts as riskd writes it (clock.timezone +08:00). */
static void rk_fmt_iso(char *buf, int64_t ms)
{
    rk__format_rfc3339(ms, 8 * 3600, buf, 40);
}

static void put(fixture *f, int s, const char *fmt, ...)
{
    char buf[1024], id[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    it_xadd(f->env.c, SKEY[s], buf, id, sizeof(id));
}

static void tick(fixture *f, int64_t ts)
{
    put(f, 0, "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)ts);
    put(f, 1, "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)ts);
}

/* Alerts of a rule, as a JSON array. */
static json_t *of_rule(fixture *f, const char *rule)
{
    json_t *all = it_alerts(f->env.c, "alerts"), *out = json_array(), *a;
    size_t i;
    json_array_foreach(all, i, a)
        if (strcmp(json_string_value(json_object_get(a, "rule")), rule) == 0)
            json_array_append(out, a);
    json_decref(all);
    return out;
}

static void run_feed(fixture *f, const char *cfg)
{
    start(f, cfg);
    settle(f);
    stop(f);
}

static void rating(fixture *f, const char *task, const char *ent, int score, int64_t ts)
{
    put(f, 0, "{\"type\":\"inspection.rated\",\"ts\":%lld,\"task_id\":\"%s\","
        "\"enterprise_id\":\"%s\",\"unit_id\":\"U1\",\"officers\":[\"O7\"],\"score\":%d}",
        (long long)ts, task, ent, score);
}

/* Two distinct bad ratings, one of them delivered three times: no
 * officer_repeated (threshold 3); a third distinct one: the alert. */
static void test_officer_repeat_counts_once(void **state)
{
    fixture *f = *state;
    json_t *a;
    rating(f, "T1", "E1", 1, T0);
    rating(f, "T2", "E2", 1, T0 + 1000);
    rating(f, "T2", "E2", 1, T0 + 1000);
    rating(f, "T2", "E2", 1, T0 + 1000);
    run_feed(f, CONFIG);
    a = of_rule(f, "officer_repeated");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    a = of_rule(f, "bad_rating");
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);

    rating(f, "T3", "E3", 2, T0 + 2000);
    run_feed(f, CONFIG);
    a = of_rule(f, "officer_repeated");
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);
}

/* A case opened 300 days after its inspection's filing is not unfiled;
 * a case whose task was never filed is, at case ts + grace. */
static void test_case_months_after_filing(void **state)
{
    fixture *f = *state;
    int64_t later = T0 + 300 * DAY;
    json_t *a;
    const char *tid;
    put(f, 0, "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"T-OLD\","
        "\"unit_id\":\"U1\",\"officers\":[\"O1\"],\"enterprise_id\":\"E1\"}", (long long)T0);
    put(f, 0, "{\"type\":\"inspection.scanned\",\"ts\":%lld,\"task_id\":\"T-OLD\","
        "\"enterprise_id\":\"E1\"}", (long long)(T0 + 3600000));
    for (int d = 10; d < 300; d += 10)
        tick(f, T0 + d * DAY);
    put(f, 1, "{\"type\":\"case.opened\",\"ts\":%lld,\"case_id\":\"C-OLD\",\"unit_id\":\"U2\","
        "\"source\":\"inspection\",\"task_id\":\"T-OLD\"}", (long long)later);
    put(f, 1, "{\"type\":\"case.opened\",\"ts\":%lld,\"case_id\":\"C-NONE\",\"unit_id\":\"U2\","
        "\"source\":\"inspection\",\"task_id\":\"T-NEVER\"}", (long long)later);
    tick(f, later + DAY);
    run_feed(f, CONFIG);
    a = of_rule(f, "case_without_filing");
    assert_int_equal(json_array_size(a), 1);
    tid = json_string_value(json_object_get(json_object_get(json_array_get(a, 0), "subject"),
                                            "task_id"));
    assert_string_equal(tid, "T-NEVER");
    {
        char want[40];
        rk_fmt_iso(want, later + 10 * 60 * 1000);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "ts")), want);
    }
    json_decref(a);
}

static void filing(fixture *f, int64_t ts, int64_t planned, const char *ent)
{
    put(f, 0, "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"T-R\",\"unit_id\":\"U1\","
        "\"officers\":[\"O1\"],\"enterprise_id\":\"%s\",\"planned_at\":%lld}",
        (long long)ts, ent, (long long)planned);
}

/* A filing rescheduled before its scan deadline: filed_not_scanned fires
 * at the new deadline only. Without the amendment, at the old one. */
static void test_rescheduled_filing(void **state)
{
    fixture *f = *state;
    json_t *a;
    char want[40];
    filing(f, T0, T0 + DAY, "E1");                  /* deadline T0 + 2d */
    filing(f, T0 + 3600000, T0 + 3 * DAY, "E1");    /* moved: T0 + 4d */
    for (int h = 1; h <= 6 * 24; h += 6)
        tick(f, T0 + h * 3600000LL);
    run_feed(f, CONFIG);
    a = of_rule(f, "filed_not_scanned");
    assert_int_equal(json_array_size(a), 1);
    rk_fmt_iso(want, T0 + 4 * DAY);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "ts")), want);
    json_decref(a);
    assert_true(it_log_contains(&f->env.riskd, "consuming"));
}

/* An amendment naming another enterprise than the one that scanned. */
static void test_amended_enterprise(void **state)
{
    fixture *f = *state;
    json_t *a;
    filing(f, T0, T0 + DAY, "E1");
    put(f, 0, "{\"type\":\"inspection.scanned\",\"ts\":%lld,\"task_id\":\"T-R\","
        "\"enterprise_id\":\"E1\"}", (long long)(T0 + DAY));
    tick(f, T0 + DAY + 1000);
    run_feed(f, CONFIG);
    a = of_rule(f, "enterprise_mismatch");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    filing(f, T0 + DAY + 2000, T0 + DAY, "E2");
    tick(f, T0 + 2 * DAY);
    run_feed(f, CONFIG);
    a = of_rule(f, "enterprise_mismatch");
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(json_array_get(a, 0), "subject"), "enterprise_id")), "E1");
    json_decref(a);
}

#define FG_CONFIG "{\"clock\":{\"wall_advance\":false},\"state\":{\"interval\":\"200ms\"}," \
    "\"detectors\":{\"fine_growth\":{\"period\":\"1d\",\"baseline_periods\":3,\"min_history\":3," \
    "\"min_amount\":1000,\"min_growth\":0.5,\"min_z\":0,\"cooldown\":\"0s\"}}}"

static void decided(fixture *f, const char *case_id, double fine, int64_t ts)
{
    put(f, 1, "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"%s\",\"unit_id\":\"U1\","
        "\"fine\":%.2f}", (long long)ts, case_id, fine);
}

static void baseline(fixture *f)
{
    decided(f, "B1", 1000, T0 + 1000);
    decided(f, "B2", 1000, T0 + DAY + 1000);
    decided(f, "B3", 1000, T0 + 2 * DAY + 1000);
}

/* A corrected fine upwards: the growth it makes fires. */
static void test_corrected_fine_up(void **state)
{
    fixture *f = *state;
    json_t *a;
    baseline(f);
    decided(f, "C9", 1200, T0 + 3 * DAY + 1000);    /* 1200 < 1.5 x 1000 */
    run_feed(f, FG_CONFIG);
    a = of_rule(f, "growth");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    decided(f, "C9", 2000, T0 + 3 * DAY + 5000);    /* corrected: 2000 */
    run_feed(f, FG_CONFIG);
    a = of_rule(f, "growth");
    assert_int_equal(json_array_size(a), 1);
    assert_true(json_real_value(json_object_get(json_array_get(a, 0), "value")) == 2000 ||
                json_integer_value(json_object_get(json_array_get(a, 0), "value")) == 2000);
    json_decref(a);
}

/* A corrected fine downwards: a later decision that would have crossed
 * the threshold with the old amount does not. (Without the correction it
 * does: the control run.) */
static void test_corrected_fine_down(void **state)
{
    fixture *f = *state;
    json_t *a;
    baseline(f);
    decided(f, "C9", 1400, T0 + 3 * DAY + 1000);    /* 1400 < 1500 */
    decided(f, "C9", 100, T0 + 3 * DAY + 2000);     /* corrected: 100 */
    decided(f, "C10", 200, T0 + 3 * DAY + 3000);    /* 300 < 1500 (1600 without) */
    run_feed(f, FG_CONFIG);
    a = of_rule(f, "growth");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    assert_true(it_log_contains(&f->env.riskd, "consuming"));
}

static void test_corrected_fine_control(void **state)
{
    fixture *f = *state;
    json_t *a;
    baseline(f);
    decided(f, "C9", 1400, T0 + 3 * DAY + 1000);
    decided(f, "C10", 200, T0 + 3 * DAY + 3000);    /* 1600 >= 1500 */
    run_feed(f, FG_CONFIG);
    a = of_rule(f, "growth");
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);
}

/* A rating re-sent with another score: not applied, dead-lettered naming
 * the natural key; counted. */
static void test_conflicting_repeat_dead_lettered(void **state)
{
    fixture *f = *state;
    redisReply *r;
    rating(f, "T1", "E1", 5, T0);
    rating(f, "T1", "E1", 1, T0 + 1000);
    run_feed(f, CONFIG);
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 0);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:dead"), 1);
    r = it_cmd(f->env.c, "XRANGE riskd:dead - +");
    assert_int_equal(r->elements, 1);
    {
        redisReply *fields = r->element[0]->element[1];
        size_t i;
        bool found = false;
        for (i = 0; i + 1 < fields->elements; i += 2)
            if (strcmp(fields->element[i]->str, "error") == 0) {
                assert_non_null(strstr(fields->element[i + 1]->str,
                                       "task_id, enterprise_id: inspection.rated already "
                                       "applied"));
                found = true;
            }
        assert_true(found);
    }
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twice_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twice_a_day_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twice_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twice_across_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twice_after_group_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_redis_same_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_reemits_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_officer_repeat_counts_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_months_after_filing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rescheduled_filing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amended_enterprise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrected_fine_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrected_fine_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrected_fine_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_repeat_dead_lettered, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
