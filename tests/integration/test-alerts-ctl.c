/* tests/integration/test-alerts-ctl.c - riskctl alerts, ack and close
 * against a real redis-server.
 *
 * Alerts are seeded straight into Redis in the shared lifecycle format
 * (the firing JSON in the alert stream and the open hash, the dedupe key
 * riskd:alert:<id>), as riskd writes them. Covered: the acknowledged and
 * closed notices field by field (order included), the open hash after
 * each, the PUBLISH (and none for a silenced alert), the audit entries;
 * bad ids, unknown ids, ids closed / resolved / not open, a missing --by,
 * Redis down (exit 2), none of which writes anything; a second close
 * refused; ten concurrent acks (ten notices, the hash holding the last)
 * and ten concurrent closes (one wins); riskctl alerts from the stream
 * (statuses folded from the notices, --since, the filters, --json, the
 * table in Chinese and in English) and from the open hash (--open). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"
#include "internal.h"

#define RUN_MS 30000

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256];
    char cfg[300];
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "actl") != 0)
        goto fail;
    snprintf(f->cfg, sizeof(f->cfg), "%s/ctl.json", f->dir);
    if (it_write_config(f->cfg, f->env.redis.port, "{}") != 0)
        goto fail;
    *state = f;
    return 0;
fail:
    it_fixture_free(f);
    return -1;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

#define CTL(f, r, ...) do { \
        const char *const a_[] = {"-c", (f)->cfg, __VA_ARGS__, NULL}; \
        itc_run((r), (f)->dir, RUN_MS, a_); \
    } while (0)

static void expect_status(const itc_result *r, int want)
{
    if (r->status != want)
        fail_msg("riskctl exited %d, expected %d\nstdout:\n%s\nstderr:\n%s", r->status, want,
                 r->out, r->err);
}

static void expect_err_line(const itc_result *r, const char *text)
{
    size_t nl = 0;
    for (const char *p = r->err; *p; p++)
        nl += *p == '\n';
    if (strstr(r->err, text) == NULL || nl != 1)
        fail_msg("stderr is not one line with \"%s\":\n%s", text, r->err);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(absent)";
}

/* An alert id: 32 hex digits from n. */
static void make_id(char id[33], unsigned n)
{
    snprintf(id, 33, "%016x%016x", n * 2654435761u, n);
}

/* Write a firing alert as riskd does: XADD (at entry id sid, "*" for
 * now) to "alerts", HSET riskd:open (when open), SET riskd:alert:<id>.
 * Returns the JSON (caller frees). */
static char *seed(fixture *f, const char *id, const char *det, const char *rule,
                  const char *sev, const char *unit, const char *silenced_by,
                  const char *sid, int open)
{
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:i, s:f, "
                          "s:s, s:[s, s]}",
                          "id", id, "status", "firing", "detector", det, "rule", rule,
                          "severity", sev, "ts", "2025-03-01T09:30:00.000+08:00",
                          "emitted_at", "2025-03-01T09:30:01.000+08:00",
                          "subject", "unit_id", unit, "officer_id", "O7",
                          "value", 3, "threshold", 0.25,
                          "summary", "执法人员王五30天内差评3次",
                          "evidence", "enforce:scan/1-0", "enforce:scan/2-0");
    char *s;
    redisReply *r;
    assert_non_null(a);
    if (silenced_by != NULL) {
        json_object_set_new(a, "silenced", json_true());
        json_object_set_new(a, "silenced_by", json_string(silenced_by));
    }
    s = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(a);
    assert_non_null(s);
    r = it_cmd(f->env.c, "XADD alerts %s data %s", sid, s);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    if (open)
        freeReplyObject(it_cmd(f->env.c, "HSET riskd:open %s %s", id, s));
    freeReplyObject(it_cmd(f->env.c, "SET riskd:alert:%s 1", id));
    return s;
}

/* The last entry of stream key, parsed (its data field), or NULL. */
static json_t *last_entry(fixture *f, const char *key)
{
    redisReply *r = it_cmd(f->env.c, "XREVRANGE %s + - COUNT 1", key);
    json_t *j = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *fl = r->element[0]->element[1];
        for (size_t i = 0; i + 1 < fl->elements; i += 2)
            if (strcmp(fl->element[i]->str, "data") == 0)
                j = json_loads(fl->element[i + 1]->str, 0, NULL);
    }
    freeReplyObject(r);
    return j;
}

/* The open hash's value of id, parsed, or NULL when absent. */
static json_t *open_entry(fixture *f, const char *id)
{
    redisReply *r = it_cmd(f->env.c, "HGET riskd:open %s", id);
    json_t *j = r->type == REDIS_REPLY_STRING ? json_loads(r->str, 0, NULL) : NULL;
    freeReplyObject(r);
    return j;
}

/* The keys of object o, in order, joined by ','. */
static void keys_of(const json_t *o, char *out, size_t len)
{
    const char *k;
    json_t *v;
    size_t n = 0;
    out[0] = '\0';
    json_object_foreach((json_t *)(uintptr_t)o, k, v)
        n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s", n ? "," : "", k);
}

/* A subscriber on channel (5 s reply timeout). */
static redisContext *subscribe(fixture *f, const char *channel)
{
    redisContext *s = it_connect(f->env.redis.port);
    struct timeval tv = {5, 0};
    redisReply *r = redisCommand(s, "SUBSCRIBE %s", channel);
    assert_non_null(r);
    freeReplyObject(r);
    redisSetTimeout(s, tv);
    return s;
}

/* The next message on s (its payload, parsed). */
static json_t *next_message(redisContext *s)
{
    void *rep = NULL;
    json_t *j;
    redisReply *r;
    assert_int_equal(redisGetReply(s, &rep), REDIS_OK);
    r = rep;
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    j = json_loads(r->element[2]->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(j);
    return j;
}

/* ===================================================================
 * ack and close: the notices
 * =================================================================== */

static void test_ack_notice(void **state)
{
    fixture *f = *state;
    char id[33], keys[512];
    char *orig;
    json_t *n, *o, *a, *ack, *m;
    redisContext *sub = subscribe(f, "alerts:bad_rating");
    itc_result r;
    int64_t t;

    make_id(id, 1);
    orig = seed(f, id, "bad_rating", "officer_repeated", "warning", "U12", NULL, "*", 1);
    CTL(f, &r, "ack", id, "--by", "张三", "--note", "已联系单位");
    expect_status(&r, 0);
    if (strstr(r.out, id) == NULL || strstr(r.out, "张三") == NULL)
        fail_msg("stdout: %s", r.out);

    /* The notice in the stream, field by field and in order. */
    n = last_entry(f, "alerts");
    assert_non_null(n);
    keys_of(n, keys, sizeof(keys));
    assert_string_equal(keys, "id,status,detector,rule,severity,subject,summary,ts,"
                              "emitted_at,reason,by,note");
    a = json_loads(orig, 0, NULL);
    assert_string_equal(jstr(n, "id"), id);
    assert_string_equal(jstr(n, "status"), "acknowledged");
    assert_string_equal(jstr(n, "detector"), "bad_rating");
    assert_string_equal(jstr(n, "rule"), "officer_repeated");
    assert_string_equal(jstr(n, "severity"), "warning");
    assert_true(json_equal(json_object_get(n, "subject"), json_object_get(a, "subject")));
    assert_string_equal(jstr(n, "summary"), jstr(a, "summary"));
    assert_int_equal(rk__parse_rfc3339(jstr(n, "ts"), &t), 0);
    assert_true(llabs(t - rk__wall_ms()) < 60000);
    assert_non_null(strchr(jstr(n, "ts"), 'Z'));
    assert_string_equal(jstr(n, "emitted_at"), jstr(n, "ts"));
    assert_string_equal(jstr(n, "reason"), "张三已确认此预警。");
    assert_string_equal(jstr(n, "by"), "张三");
    assert_string_equal(jstr(n, "note"), "已联系单位");

    /* Published on the alert's channel, the same JSON. */
    m = next_message(sub);
    assert_true(json_equal(m, n));
    json_decref(m);

    /* The open hash: the alert with status acknowledged and the ack. */
    o = open_entry(f, id);
    assert_non_null(o);
    assert_string_equal(jstr(o, "status"), "acknowledged");
    ack = json_object_get(o, "acknowledged");
    keys_of(ack, keys, sizeof(keys));
    assert_string_equal(keys, "by,note,ts");
    assert_string_equal(jstr(ack, "by"), "张三");
    assert_string_equal(jstr(ack, "ts"), jstr(n, "ts"));
    json_object_del(o, "acknowledged");
    json_object_set_new(o, "status", json_string("firing"));
    assert_true(json_equal(o, a));  /* nothing else changed */
    json_decref(o);
    json_decref(n);

    /* A second ack without a note: no "note" key, the hash's ack replaced. */
    CTL(f, &r, "ack", id, "--by", "李四");
    expect_status(&r, 0);
    n = last_entry(f, "alerts");
    keys_of(n, keys, sizeof(keys));
    assert_string_equal(keys, "id,status,detector,rule,severity,subject,summary,ts,"
                              "emitted_at,reason,by");
    o = open_entry(f, id);
    keys_of(json_object_get(o, "acknowledged"), keys, sizeof(keys));
    assert_string_equal(keys, "by,ts");
    assert_string_equal(jstr(json_object_get(o, "acknowledged"), "by"), "李四");
    json_decref(o);
    json_decref(n);

    /* Audited. */
    {
        redisReply *x = it_cmd(f->env.c, "XRANGE riskd:audit - +");
        assert_int_equal(x->elements, 2);
        const redisReply *fl = x->element[0]->element[1];
        assert_string_equal(fl->element[0]->str, "who");
        assert_string_equal(fl->element[1]->str, "张三");
        assert_string_equal(fl->element[3]->str, "alert_acknowledged");
        assert_string_equal(fl->element[6]->str, "old");
        assert_string_equal(fl->element[7]->str, orig);
        freeReplyObject(x);
    }
    json_decref(a);
    free(orig);
    redisFree(sub);
}

static void test_close(void **state)
{
    fixture *f = *state;
    char id[33], keys[512];
    char *orig;
    json_t *n, *m;
    redisContext *sub = subscribe(f, "alerts:fine_growth");
    itc_result r;
    long long len;

    make_id(id, 2);
    orig = seed(f, id, "fine_growth", "unit_fine_growth", "critical", "U3", NULL, "*", 1);
    CTL(f, &r, "ack", id, "--by", "wang");
    expect_status(&r, 0);
    m = next_message(sub);
    json_decref(m);
    CTL(f, &r, "close", id, "--by", "wang", "--note", "整改完成");
    expect_status(&r, 0);
    n = last_entry(f, "alerts");
    keys_of(n, keys, sizeof(keys));
    assert_string_equal(keys, "id,status,detector,rule,severity,subject,summary,ts,"
                              "emitted_at,reason,by,note");
    assert_string_equal(jstr(n, "status"), "closed");
    assert_string_equal(jstr(n, "reason"), "wang已关闭此预警。");
    assert_string_equal(jstr(n, "note"), "整改完成");
    m = next_message(sub);
    assert_true(json_equal(m, n));
    json_decref(m);
    assert_null(open_entry(f, id));
    assert_true(it_int(f->env.c, "TTL riskd:alert:%s:closed", id) > 300 * 86400);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:audit"), 2);

    /* A second close and an ack after it are refused, and write nothing. */
    len = it_int(f->env.c, "XLEN alerts");
    CTL(f, &r, "close", id, "--by", "wang");
    expect_status(&r, 1);
    expect_err_line(&r, "already closed");
    CTL(f, &r, "ack", id, "--by", "wang");
    expect_status(&r, 1);
    expect_err_line(&r, "already closed");
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), len);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:audit"), 2);
    json_decref(n);
    free(orig);
    redisFree(sub);
}

/* A silenced alert's notices carry silenced / silenced_by and are not
 * published: the subscriber's first message is the unsilenced alert's. */
static void test_silenced(void **state)
{
    fixture *f = *state;
    char id1[33], id2[33];
    char *s1, *s2;
    json_t *n, *m;
    redisContext *sub = subscribe(f, "alerts:bad_rating");
    itc_result r;

    make_id(id1, 3);
    make_id(id2, 4);
    s1 = seed(f, id1, "bad_rating", "unit_bad_ratio", "warning", "U1", "00112233aabbccdd",
              "*", 1);
    s2 = seed(f, id2, "bad_rating", "unit_bad_ratio", "warning", "U2", NULL, "*", 1);
    CTL(f, &r, "ack", id1, "--by", "zhao");
    expect_status(&r, 0);
    n = last_entry(f, "alerts");
    assert_true(json_is_true(json_object_get(n, "silenced")));
    assert_string_equal(jstr(n, "silenced_by"), "00112233aabbccdd");
    json_decref(n);
    CTL(f, &r, "close", id1, "--by", "zhao");
    expect_status(&r, 0);
    n = last_entry(f, "alerts");
    assert_string_equal(jstr(n, "status"), "closed");
    assert_string_equal(jstr(n, "silenced_by"), "00112233aabbccdd");
    json_decref(n);
    CTL(f, &r, "ack", id2, "--by", "zhao");
    expect_status(&r, 0);
    m = next_message(sub);
    assert_string_equal(jstr(m, "id"), id2);
    assert_null(json_object_get(m, "silenced"));
    json_decref(m);
    free(s1);
    free(s2);
    redisFree(sub);
}

/* ===================================================================
 * Refusals
 * =================================================================== */

static void test_refused(void **state)
{
    fixture *f = *state;
    char id[33], gone[33], resolved[33], unknown[33], cfg[320];
    char *s;
    itc_result r;
    long long len, audit;

    make_id(id, 5);
    make_id(gone, 6);
    make_id(resolved, 7);
    make_id(unknown, 8);
    s = seed(f, id, "bad_rating", "officer_repeated", "warning", "U1", NULL, "*", 1);
    free(seed(f, gone, "bad_rating", "officer_repeated", "warning", "U1", NULL, "*", 0));
    free(seed(f, resolved, "bad_rating", "officer_repeated", "warning", "U1", NULL, "*", 0));
    freeReplyObject(it_cmd(f->env.c, "SET riskd:alert:%s:resolved 1", resolved));
    len = it_int(f->env.c, "XLEN alerts");
    audit = it_int(f->env.c, "XLEN riskd:audit");

    CTL(f, &r, "ack", id);
    expect_status(&r, 1);
    expect_err_line(&r, "--by NAME is required");
    CTL(f, &r, "close", id, "--note", "x");
    expect_status(&r, 1);
    expect_err_line(&r, "--by NAME is required");
    CTL(f, &r, "ack", id, "--by", "");
    expect_status(&r, 1);
    expect_err_line(&r, "--by");
    CTL(f, &r, "ack", "not-an-id", "--by", "x");
    expect_status(&r, 1);
    expect_err_line(&r, "not an alert id");
    CTL(f, &r, "close", unknown, "--by", "x");
    expect_status(&r, 1);
    expect_err_line(&r, "unknown alert id");
    CTL(f, &r, "ack", gone, "--by", "x");
    expect_status(&r, 1);
    expect_err_line(&r, "is not open");
    CTL(f, &r, "close", resolved, "--by", "x");
    expect_status(&r, 1);
    expect_err_line(&r, "already resolved");
    CTL(f, &r, "ack", id, "--by", "x", "--until", "1h");
    expect_status(&r, 1);
    CTL(f, &r, "ack", "--by", "x");
    expect_status(&r, 1);
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), len);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:audit"), audit);
    {
        json_t *o = open_entry(f, id), *a = json_loads(s, 0, NULL);
        assert_true(json_equal(o, a));
        json_decref(o);
        json_decref(a);
    }

    /* Redis down: exit 2. */
    snprintf(cfg, sizeof(cfg), "%s/down.json", f->dir);
    assert_int_equal(it_write_config(cfg, it_free_port(), "{}"), 0);
    {
        const char *const a[] = {"-c", cfg, "ack", id, "--by", "x", NULL};
        itc_run(&r, f->dir, RUN_MS, a);
        expect_status(&r, 2);
        expect_err_line(&r, "cannot connect to Redis");
    }
    {
        const char *const a[] = {"-c", cfg, "alerts", NULL};
        itc_run(&r, f->dir, RUN_MS, a);
        expect_status(&r, 2);
    }
    free(s);
}

/* ===================================================================
 * Concurrency
 * =================================================================== */

#define NPROC 10

/* Start NPROC riskctl processes `verb id --by op<i>` at once; returns
 * how many exited 0 (the others must exit 1). */
static int run_many(fixture *f, const char *verb, const char *id)
{
    char bin[512], by[NPROC][16], log[NPROC][320];
    pid_t pid[NPROC];
    int ok = 0, i;

    itc_riskctl_path(bin, sizeof(bin));
    for (i = 0; i < NPROC; i++) {
        const char *a[] = {"-c", f->cfg, verb, id, "--by", by[i], NULL};
        snprintf(by[i], sizeof(by[i]), "op%d", i);
        snprintf(log[i], sizeof(log[i]), "%s/many-%d.log", f->dir, i);
        pid[i] = itc_spawn(bin, log[i], a);
        assert_true(pid[i] > 0);
    }
    for (i = 0; i < NPROC; i++) {
        int st;
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 0)
            ok++;
        else if (WEXITSTATUS(st) != 1)
            fail_msg("%s %d exited %d", verb, i, WEXITSTATUS(st));
    }
    return ok;
}

static void test_concurrent(void **state)
{
    fixture *f = *state;
    char id[33], id2[33];
    redisReply *x;
    json_t *o, *last = NULL;
    int seen[NPROC] = {0}, acks = 0, closes = 0;
    size_t i;

    make_id(id, 9);
    make_id(id2, 10);
    free(seed(f, id, "bad_rating", "officer_repeated", "warning", "U1", NULL, "*", 1));
    free(seed(f, id2, "bad_rating", "officer_repeated", "warning", "U2", NULL, "*", 1));

    assert_int_equal(run_many(f, "ack", id), NPROC);
    x = it_cmd(f->env.c, "XRANGE alerts - +");
    for (i = 0; i < x->elements; i++) {
        json_t *n = json_loads(x->element[i]->element[1]->element[1]->str, 0, NULL);
        if (strcmp(jstr(n, "status"), "acknowledged") == 0 &&
            strcmp(jstr(n, "id"), id) == 0) {
            int k = atoi(jstr(n, "by") + 2);
            assert_true(k >= 0 && k < NPROC);
            seen[k]++;
            acks++;
            json_decref(last);
            last = json_incref(n);
        }
        json_decref(n);
    }
    freeReplyObject(x);
    assert_int_equal(acks, NPROC);
    for (i = 0; i < NPROC; i++)
        assert_int_equal(seen[i], 1);
    /* The hash holds the last acknowledgement written. */
    o = open_entry(f, id);
    assert_string_equal(jstr(o, "status"), "acknowledged");
    assert_string_equal(jstr(json_object_get(o, "acknowledged"), "by"), jstr(last, "by"));
    assert_string_equal(jstr(json_object_get(o, "acknowledged"), "ts"), jstr(last, "ts"));
    json_decref(o);
    json_decref(last);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:audit"), NPROC);

    /* Ten closes at once: one wins, one closed notice. */
    assert_int_equal(run_many(f, "close", id2), 1);
    x = it_cmd(f->env.c, "XRANGE alerts - +");
    for (i = 0; i < x->elements; i++) {
        json_t *n = json_loads(x->element[i]->element[1]->element[1]->str, 0, NULL);
        closes += strcmp(jstr(n, "status"), "closed") == 0;
        json_decref(n);
    }
    freeReplyObject(x);
    assert_int_equal(closes, 1);
    assert_null(open_entry(f, id2));
}

/* ===================================================================
 * riskctl alerts
 * =================================================================== */

/* The ids of a --json listing, in order, joined by ','. */
static json_t *listing(fixture *f, const char *const *args, char *ids, size_t len)
{
    itc_result r;
    const char *a[16];
    size_t n = 0, k = 0, i;
    json_t *j;
    a[n++] = "-c";
    a[n++] = f->cfg;
    a[n++] = "alerts";
    a[n++] = "--json";
    for (; *args && n < 15; args++)
        a[n++] = *args;
    a[n] = NULL;
    itc_run(&r, f->dir, RUN_MS, a);
    expect_status(&r, 0);
    j = json_loads(r.out, 0, NULL);
    if (!json_is_array(j))
        fail_msg("--json did not print one array:\n%s", r.out);
    ids[0] = '\0';
    for (i = 0; i < json_array_size(j); i++)
        k += (size_t)snprintf(ids + k, k < len ? len - k : 0, "%s%.4s", k ? "," : "",
                              jstr(json_array_get(j, i), "id") + 28);
    return j;
}

static void test_alerts_list(void **state)
{
    fixture *f = *state;
    char a1[33], a2[33], a3[33], a4[33], old[33], sid[64], ids[512], cfg_en[320];
    json_t *j, *row;
    itc_result r;
    int64_t now = rk__wall_ms();

    make_id(a1, 0x1001);    /* bad_rating warning U1, acknowledged */
    make_id(a2, 0x1002);    /* bad_rating critical U2, closed */
    make_id(a3, 0x1003);    /* fine_growth info U1, resolved by a notice */
    make_id(a4, 0x1004);    /* complaint_cluster critical U1, firing */
    make_id(old, 0x1005);   /* raised 48 h ago, open */
    snprintf(sid, sizeof(sid), "%lld-0", (long long)(now - 48 * 3600 * 1000LL));
    free(seed(f, old, "bad_rating", "officer_repeated", "warning", "U1", NULL, sid, 1));
    free(seed(f, a1, "bad_rating", "officer_repeated", "warning", "U1", NULL, "*", 1));
    free(seed(f, a2, "bad_rating", "unit_bad_ratio", "critical", "U2", NULL, "*", 1));
    free(seed(f, a3, "fine_growth", "unit_fine_growth", "info", "U1", NULL, "*", 1));
    free(seed(f, a4, "complaint_cluster", "cluster", "critical", "U1", NULL, "*", 1));
    CTL(f, &r, "ack", a1, "--by", "张三", "--note", "在查");
    expect_status(&r, 0);
    CTL(f, &r, "close", a2, "--by", "李四");
    expect_status(&r, 0);
    {   /* the engine's resolved notice, as it writes it */
        char n[1024];
        snprintf(n, sizeof(n), "{\"id\":\"%s\",\"status\":\"resolved\",\"detector\":"
                 "\"fine_growth\",\"rule\":\"unit_fine_growth\",\"severity\":\"info\","
                 "\"subject\":{\"unit_id\":\"U1\",\"officer_id\":\"O7\"},\"summary\":\"x\","
                 "\"ts\":\"2025-03-02T09:30:00.000+08:00\",\"emitted_at\":"
                 "\"2025-03-02T09:30:00.000+08:00\",\"reason\":\"r\",\"evidence\":"
                 "[\"enforce:scan/9-0\"]}", a3);
        freeReplyObject(it_cmd(f->env.c, "XADD alerts * data %s", n));
        freeReplyObject(it_cmd(f->env.c, "HDEL riskd:open %s", a3));
    }

    /* From the stream (last 24 h): newest first, each with its status. */
    {
        const char *none[] = {NULL};
        j = listing(f, none, ids, sizeof(ids));
    }
    assert_string_equal(ids, "1004,1003,1002,1001");
    assert_string_equal(jstr(json_array_get(j, 0), "status"), "firing");
    assert_string_equal(jstr(json_array_get(j, 1), "status"), "resolved");
    assert_string_equal(jstr(json_array_get(j, 2), "status"), "closed");
    row = json_array_get(j, 3);
    assert_string_equal(jstr(row, "status"), "acknowledged");
    assert_string_equal(jstr(json_object_get(row, "acknowledged"), "by"), "张三");
    assert_string_equal(jstr(json_object_get(row, "acknowledged"), "note"), "在查");
    assert_int_equal(json_array_size(json_object_get(row, "notices")), 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0), "notices")), 0);
    assert_string_equal(jstr(json_array_get(j, 1), "summary"), "执法人员王五30天内差评3次");
    json_decref(j);

    {
        const char *a[] = {"--since", "3d", NULL};
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1004,1003,1002,1001,1005");
    }
    {
        char since[64];
        const char *a[] = {"--since", since, NULL};
        rk__format_rfc3339(now - 72 * 3600 * 1000LL, 8 * 3600, since, sizeof(since));
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1004,1003,1002,1001,1005");
    }
    {
        const char *a[] = {"--unit", "U1", NULL};
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1004,1003,1001");
    }
    {
        const char *a[] = {"--detector", "bad_rating", NULL};
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1002,1001");
    }
    {
        const char *a[] = {"--rule", "cluster", NULL};
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1004");
    }
    {
        const char *a[] = {"--severity", "warning", NULL};
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1004,1002,1001");
    }
    {
        const char *a[] = {"--severity", "critical", "--unit", "U1", NULL};
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1004");
    }
    /* --open: the open hash, whatever its age. */
    {
        const char *a[] = {"--open", NULL};
        j = listing(f, a, ids, sizeof(ids));
        assert_string_equal(ids, "1001,1005,1004");  /* same emitted_at: by id */
        json_decref(j);
    }
    {
        const char *a[] = {"--open", "--unit", "U1", "--detector", "complaint_cluster", NULL};
        json_decref(listing(f, a, ids, sizeof(ids)));
        assert_string_equal(ids, "1004");
    }

    /* The table: Chinese by default, English with alerts.language "en". */
    CTL(f, &r, "alerts", "--open");
    expect_status(&r, 0);
    if (strstr(r.out, "编号") == NULL || strstr(r.out, "确认人") == NULL ||
        strstr(r.out, "已确认") == NULL || strstr(r.out, "张三") == NULL ||
        strstr(r.out, a4) == NULL || strstr(r.out, "严重") == NULL)
        fail_msg("table:\n%s", r.out);
    snprintf(cfg_en, sizeof(cfg_en), "%s/en.json", f->dir);
    assert_int_equal(it_write_config(cfg_en, f->env.redis.port,
                                     "{\"alerts\":{\"language\":\"en\"}}"), 0);
    {
        const char *a[] = {"-c", cfg_en, "alerts", NULL};
        itc_run(&r, f->dir, RUN_MS, a);
        expect_status(&r, 0);
        if (strstr(r.out, "ACK BY") == NULL || strstr(r.out, "acknowledged") == NULL ||
            strstr(r.out, "resolved") == NULL || strstr(r.out, "closed") == NULL ||
            strstr(r.out, "bad_rating/unit_bad_ratio") == NULL)
            fail_msg("table:\n%s", r.out);
        assert_int_equal(strstr(r.out, "ID ") == r.out, 1);
    }
    {
        const char *a[] = {"-c", cfg_en, "alerts", "--unit", "U9", NULL};
        itc_run(&r, f->dir, RUN_MS, a);
        expect_status(&r, 0);
        if (strstr(r.out, "no alerts") == NULL)
            fail_msg("table:\n%s", r.out);
    }

    /* Bad options. */
    CTL(f, &r, "alerts", "--severity", "bad");
    expect_status(&r, 1);
    CTL(f, &r, "alerts", "--since", "yesterday");
    expect_status(&r, 1);
    expect_err_line(&r, "--since");
    CTL(f, &r, "alerts", "--by", "x");
    expect_status(&r, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts_list, setup, teardown),
    };
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
