/* tests/integration/test-lists-live.c - the reference lists end to end: riskctl
 * lists load|show against a real redis-server, and a running riskd taking
 * up a new list.
 *
 * Covered: every kind's sample file (config/samples/) loads and shows back
 * the same rows (--json) and a table; a refused file (exit 1, one line
 * naming the line and column) leaves the list, its version and its info
 * unchanged and no staged key behind; a header-only file clears a list;
 * the audit entry; exit codes (1 for a bad kind, file or usage, 2 when
 * Redis cannot be reached); --help. With riskd running: a list loaded
 * while it runs is in force within 5 s (riskd_list_version polled on
 * /metrics), riskctl status shows both versions, and the detectors keep
 * their state across the change (two bad ratings before, the third after:
 * officer_repeated fires); riskd --replay fetches the lists in force
 * before it reads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "internal.h"

#define RUN_TIMEOUT_MS 30000

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256];
    char cfg[300];                  /* riskctl's config: the test Redis */
} fixture;

typedef struct result {
    int status;
    char out[65536];
    char err[4096];
} result;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "lists") != 0)
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

/* Read a whole file into buf (len bytes, NUL-terminated). */
static void read_into(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(buf, 1, len - 1, fp) : 0;
    buf[n] = '\0';
    if (fp)
        fclose(fp);
}

/* Run $BUILD/<prog> with the arguments of ap (NULL-terminated); stdout
 * and stderr into r. */
static void vrun(fixture *f, result *r, const char *prog, va_list ap)
{
    char bin[512], outp[300], errp[300];
    char *argv[32];
    size_t n = 0;
    pid_t pid;
    int st, waited = 0;

    snprintf(bin, sizeof(bin), "%s/%s", it_build_dir(), prog);
    snprintf(outp, sizeof(outp), "%s/out", f->dir);
    snprintf(errp, sizeof(errp), "%s/err", f->dir);
    argv[n++] = bin;
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 31;)
        argv[n++] = (char *)(uintptr_t)a;
    argv[n] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execv(bin, argv);
        _exit(127);
    }
    r->status = -1;
    while (waited < RUN_TIMEOUT_MS) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            break;
        }
        it_sleep_ms(10);
        waited += 10;
    }
    if (r->status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    read_into(outp, r->out, sizeof(r->out));
    read_into(errp, r->err, sizeof(r->err));
}

/* riskctl with the NULL-terminated args. */
static void ctl(fixture *f, result *r, ...)
{
    va_list ap;
    va_start(ap, r);
    vrun(f, r, "riskctl", ap);
    va_end(ap);
}

/* riskd with the NULL-terminated args. */
static void riskd(fixture *f, result *r, ...)
{
    va_list ap;
    va_start(ap, r);
    vrun(f, r, "riskd", ap);
    va_end(ap);
}

static void expect(const result *r, int status, const char *out, const char *err)
{
    if (r->status != status || (out && strstr(r->out, out) == NULL) ||
        (err && strstr(r->err, err) == NULL)) {
        fprintf(stderr, "exit %d (expected %d)\nstdout: %s\nstderr: %s\n", r->status, status,
                r->out, r->err);
        fail_msg("unexpected riskctl result");
    }
}

/* Write text to <dir>/name; the path into path. */
static void write_file(fixture *f, const char *name, const char *text, char *path, size_t len)
{
    FILE *fp;
    snprintf(path, len, "%s/%s", f->dir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static const char *const sample[RK_LIST__COUNT] = {
    "config/samples/sample-whitelist.csv", "config/samples/sample-benchmarks.csv",
    "config/samples/sample-exempt.csv", "config/samples/sample-credentials.csv",
    "config/samples/sample-names.csv",
};

/* The rows of a file as riskd parses it, as a JSON array sorted by key
 * (the order show prints). */
static json_t *expected_rows(rk__list_kind kind, const char *path)
{
    char err[RK_ERRLEN], *data = malloc(1 << 20);
    FILE *fp = fopen(path, "rb");
    size_t n;
    rk__list *l = NULL, *sorted = NULL;
    json_t *rows = json_array();
    const char **vals;
    size_t *lens;

    assert_non_null(fp);
    n = fread(data, 1, (1 << 20) - 1, fp);
    fclose(fp);
    assert_int_equal(rk__lists_parse_csv(kind, data, n, &l, err, sizeof(err)), 0);
    vals = calloc(rk__lists_count(l) + 1, sizeof(*vals));
    lens = calloc(rk__lists_count(l) + 1, sizeof(*lens));
    for (size_t i = 0; i < rk__lists_count(l); i++) {
        vals[i] = rk__lists_row_json(l, i);
        lens[i] = strlen(vals[i]);
    }
    assert_int_equal(rk__lists_from_json(kind, vals, lens, rk__lists_count(l), &sorted, err,
                                         sizeof(err)), 0);
    for (size_t i = 0; i < rk__lists_count(sorted); i++)
        json_array_append_new(rows, rk__lists_row_object(sorted, i));
    for (size_t i = 0; i < rk__lists_count(l); i++)
        free((char *)(uintptr_t)vals[i]);
    free(vals);
    free(lens);
    free(data);
    rk__lists_free(l);
    rk__lists_free(sorted);
    return rows;
}

/* HGET key field as a number (0 when absent). */
static long long hget_int(fixture *f, const char *key, const char *field)
{
    redisReply *r = it_cmd(f->env.c, "HGET %s %s", key, field);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

/* ===================================================================
 * riskctl lists load | show
 * =================================================================== */

static void test_round_trip_every_kind(void **state)
{
    fixture *f = *state;
    result r;
    for (int k = 0; k < RK_LIST__COUNT; k++) {
        const char *kn = rk__lists_kind_name((rk__list_kind)k);
        json_t *doc, *want = expected_rows((rk__list_kind)k, sample[k]);
        char line[256];
        ctl(f, &r, "-c", f->cfg, "lists", "load", kn, sample[k], "--author", "测试员", NULL);
        snprintf(line, sizeof(line), "%s: %zu rows loaded from %s, version 1 in force\n", kn,
                 json_array_size(want), sample[k]);
        expect(&r, 0, line, NULL);
        assert_string_equal(r.err, "");
        ctl(f, &r, "-c", f->cfg, "lists", "show", kn, "--json", NULL);
        expect(&r, 0, NULL, NULL);
        doc = json_loads(r.out, 0, NULL);
        assert_non_null(doc);
        assert_string_equal(json_string_value(json_object_get(doc, "kind")), kn);
        assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
        assert_string_equal(json_string_value(json_object_get(doc, "by")), "测试员");
        assert_string_equal(json_string_value(json_object_get(doc, "file")), sample[k]);
        if (!json_equal(json_object_get(doc, "rows"), want)) {
            char *a = json_dumps(json_object_get(doc, "rows"), 0), *b = json_dumps(want, 0);
            fprintf(stderr, "shown:    %s\nexpected: %s\n", a, b);
            free(a);
            free(b);
            fail_msg("%s: the rows shown differ from the file's", kn);
        }
        json_decref(doc);
        json_decref(want);
        /* the table: a title line and the kind's column names */
        ctl(f, &r, "-c", f->cfg, "lists", "show", kn, NULL);
        snprintf(line, sizeof(line), "%s: version 1, ", kn);
        expect(&r, 0, line, NULL);
        expect(&r, 0, rk__lists_col((rk__list_kind)k, 0), NULL);
    }
    ctl(f, &r, "-c", f->cfg, "lists", "show", "names", NULL);
    expect(&r, 0, "E777       宁夏塞上江南农产品批发市场经营管理有限公司（原\"新华\"市场）", NULL);
    assert_int_equal(it_int(f->env.c, "HLEN " RK_LISTS_VERSION_KEY), RK_LIST__COUNT);
}

static void test_refused_keeps_old(void **state)
{
    fixture *f = *state;
    char good[300], bad[300], empty[300], hdr[300];
    redisReply *before, *after;
    result r;

    write_file(f, "good.csv", "enterprise_id,allowance,note\nE1,3,甲\nE2,1,乙\n", good,
               sizeof(good));
    write_file(f, "bad.csv", "enterprise_id,allowance,note\nE1,3,甲\nE2,x,乙\n", bad,
               sizeof(bad));
    write_file(f, "empty.csv", "", empty, sizeof(empty));
    write_file(f, "header.csv", "\xef\xbb\xbfnote,enterprise_id,allowance\r\n", hdr,
               sizeof(hdr));
    ctl(f, &r, "-c", f->cfg, "lists", "load", "whitelist", good, NULL);
    expect(&r, 0, "version 1 in force", NULL);
    before = it_cmd(f->env.c, "HGETALL " RK_LISTS_PREFIX "whitelist");
    assert_int_equal(before->elements, 4);

    ctl(f, &r, "-c", f->cfg, "lists", "load", "whitelist", bad, NULL);
    expect(&r, 1, NULL, "column allowance: expected an integer >= 0\n");
    {
        char want[512];
        snprintf(want, sizeof(want), "riskctl: %s: line 3, column allowance: expected an "
                 "integer >= 0\n", bad);
        assert_string_equal(r.err, want);           /* one line */
        assert_string_equal(r.out, "");
    }
    ctl(f, &r, "-c", f->cfg, "lists", "load", "whitelist", empty, NULL);
    expect(&r, 1, NULL, "line 1: the file is empty");
    after = it_cmd(f->env.c, "HGETALL " RK_LISTS_PREFIX "whitelist");
    assert_int_equal(after->elements, before->elements);
    for (size_t i = 0; i < after->elements; i++)
        assert_string_equal(after->element[i]->str, before->element[i]->str);
    freeReplyObject(before);
    freeReplyObject(after);
    assert_int_equal(hget_int(f, RK_LISTS_VERSION_KEY, "whitelist"), 1);
    {
        redisReply *keys = it_cmd(f->env.c, "KEYS *loading*");
        assert_int_equal(keys->elements, 0);
        freeReplyObject(keys);
    }
    /* A header alone is an empty list: the list is cleared, version 2. */
    ctl(f, &r, "-c", f->cfg, "lists", "load", "whitelist", hdr, NULL);
    expect(&r, 0, "whitelist: 0 rows loaded", "");
    expect(&r, 0, "version 2 in force", NULL);
    assert_int_equal(it_int(f->env.c, "EXISTS " RK_LISTS_PREFIX "whitelist"), 0);
    ctl(f, &r, "-c", f->cfg, "lists", "show", "whitelist", NULL);
    expect(&r, 0, "whitelist: version 2, 0 rows", NULL);
    /* The audit trail: one entry per load, old and new versions. */
    {
        redisReply *a = it_cmd(f->env.c, "XREVRANGE " RK_AUDIT_STREAM " + - COUNT 1");
        const redisReply *fl;
        json_t *old = NULL, *nw = NULL;
        assert_int_equal(a->elements, 1);
        fl = a->element[0]->element[1];
        for (size_t i = 0; i + 1 < fl->elements; i += 2) {
            if (strcmp(fl->element[i]->str, "what") == 0)
                assert_string_equal(fl->element[i + 1]->str, "lists_loaded");
            if (strcmp(fl->element[i]->str, "old") == 0)
                old = json_loads(fl->element[i + 1]->str, 0, NULL);
            if (strcmp(fl->element[i]->str, "new") == 0)
                nw = json_loads(fl->element[i + 1]->str, 0, NULL);
        }
        assert_int_equal(json_integer_value(json_object_get(old, "version")), 1);
        assert_int_equal(json_integer_value(json_object_get(old, "rows")), 2);
        assert_int_equal(json_integer_value(json_object_get(nw, "version")), 2);
        assert_int_equal(json_integer_value(json_object_get(nw, "rows")), 0);
        json_decref(old);
        json_decref(nw);
        freeReplyObject(a);
        assert_int_equal(it_int(f->env.c, "XLEN " RK_AUDIT_STREAM), 2);
    }
}

static void test_exit_codes(void **state)
{
    fixture *f = *state;
    char down[300], missing[300];
    result r;
    int port = it_free_port();

    snprintf(down, sizeof(down), "%s/down.json", f->dir);
    assert_int_equal(it_write_config(down, port, "{}"), 0);
    snprintf(missing, sizeof(missing), "%s/no-such.csv", f->dir);
    ctl(f, &r, "-c", f->cfg, "lists", "show", "blacklist", NULL);
    expect(&r, 1, NULL, "unknown list kind \"blacklist\"");
    ctl(f, &r, "-c", f->cfg, "lists", "load", "names", missing, NULL);
    expect(&r, 1, NULL, "No such file or directory");
    ctl(f, &r, "-c", f->cfg, "lists", "load", "names", NULL);
    expect(&r, 1, NULL, "lists load: expected KIND FILE");
    ctl(f, &r, "-c", f->cfg, "lists", "show", "names", "--author", "x", NULL);
    expect(&r, 1, NULL, "takes --json");
    ctl(f, &r, "-c", f->cfg, "lists", "drop", "names", NULL);
    expect(&r, 1, NULL, "unknown lists command");
    /* Redis cannot be reached: 2 (a bad file is still 1: it is checked first) */
    ctl(f, &r, "-c", down, "lists", "show", "names", NULL);
    expect(&r, 2, NULL, "cannot connect to Redis");
    ctl(f, &r, "-c", down, "lists", "load", "names", sample[RK_LIST_NAMES], NULL);
    expect(&r, 2, NULL, "cannot connect to Redis");
    ctl(f, &r, "-c", down, "lists", "load", "names", missing, NULL);
    expect(&r, 1, NULL, NULL);
    ctl(f, &r, "lists", "load", "--help", NULL);
    expect(&r, 0, "credentials  officer_id, unit_id, valid_from, valid_until", NULL);
    /* Nothing was written by any of them. */
    assert_int_equal(it_int(f->env.c, "DBSIZE"), 0);
}

/* ===================================================================
 * A running riskd
 * =================================================================== */

typedef struct mwait {
    int port;
    const char *series;
    double want;
} mwait;

static bool metric_is(void *arg)
{
    mwait *m = arg;
    return it_metric(m->port, m->series) == m->want;
}

/* Alerts of rule officer_repeated in the stream "alerts". */
static size_t repeated_alerts(fixture *f)
{
    json_t *alerts = it_alerts(f->env.c, "alerts"), *a;
    size_t i, n = 0;
    json_array_foreach(alerts, i, a)
        n += strcmp(json_string_value(json_object_get(a, "rule")), "officer_repeated") == 0;
    json_decref(alerts);
    return n;
}

static bool repeated_fired(void *arg)
{
    return repeated_alerts(arg) >= 1;
}

#define BAD_RATING(k) \
    "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-0" k "T10:00:00+08:00\"," \
    "\"task_id\":\"T" k "\",\"enterprise_id\":\"E50" k "\",\"unit_id\":\"MR-01\"," \
    "\"officers\":[\"O7\"],\"score\":1}"

static void test_running_riskd_takes_new_list(void **state)
{
    fixture *f = *state;
    char json[160], ctlcfg[300];
    int mport = it_free_port();
    mwait m = {mport, "riskd_list_version{kind=\"names\"}", 0};
    pid_t pid;
    result r;

    snprintf(json, sizeof(json), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"}}", mport);
    snprintf(ctlcfg, sizeof(ctlcfg), "%s/ctl-metrics.json", f->dir);
    assert_int_equal(it_write_config(ctlcfg, f->env.redis.port, json), 0);
    /* A list loaded before riskd starts is in force once it is up. */
    ctl(f, &r, "-c", f->cfg, "lists", "load", "exempt", sample[RK_LIST_EXEMPT], NULL);
    expect(&r, 0, "version 1 in force", NULL);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, json), 0);
    pid = f->env.riskd.pid;
    m.series = "riskd_list_version{kind=\"exempt\"}";
    m.want = 1;
    if (!it_wait_until(metric_is, &m, 15000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not put the exempt list in force");
    }
    assert_true(it_metric(mport, "riskd_list_rows{kind=\"exempt\"}") == 2);
    assert_true(it_metric(mport, "riskd_list_version{kind=\"names\"}") == 0);

    /* Detector state before the change: two bad ratings of O7. */
    it_xadd(f->env.c, "enforce:scan", BAD_RATING("1"), NULL, 0);
    it_xadd(f->env.c, "enforce:scan", BAD_RATING("2"), NULL, 0);
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 15000));
    assert_int_equal(repeated_alerts(f), 0);

    /* A new list while riskd runs: in force within 5 s, same process. */
    ctl(f, &r, "-c", f->cfg, "lists", "load", "names", sample[RK_LIST_NAMES], NULL);
    expect(&r, 0, "version 1 in force", NULL);
    m.series = "riskd_list_version{kind=\"names\"}";
    m.want = 1;
    if (!it_wait_until(metric_is, &m, 5000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not put the new names list in force within 5 s");
    }
    assert_true(it_metric(mport, "riskd_list_rows{kind=\"names\"}") == 24);
    ctl(f, &r, "-c", f->cfg, "lists", "load", "names", sample[RK_LIST_NAMES], NULL);
    expect(&r, 0, "version 2 in force", NULL);
    m.want = 2;
    assert_true(it_wait_until(metric_is, &m, 5000));
    assert_true(it_riskd_alive(&f->env.riskd));
    assert_int_equal(f->env.riskd.pid, pid);
    assert_true(it_log_contains(&f->env.riskd, "list names: version 2 in force (24 rows)"));

    /* riskctl status: the versions in Redis and in force. */
    ctl(f, &r, "-c", ctlcfg, "status", NULL);
    expect(&r, 0, "lists (version in Redis): whitelist none benchmarks none exempt 1 "
           "credentials none names 2\n", NULL);
    expect(&r, 0, "lists in force                 whitelist none benchmarks none exempt 1 "
           "credentials none names 2\n", NULL);

    /* The third bad rating after the change: the state was kept. */
    it_xadd(f->env.c, "enforce:scan", BAD_RATING("3"), NULL, 0);
    if (!it_wait_until(repeated_fired, f, 15000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("no officer_repeated alert after the list change: state lost?");
    }
    assert_int_equal(repeated_alerts(f), 1);
    /* Deleting the keys takes the list out of force. */
    freeReplyObject(it_cmd(f->env.c, "HDEL " RK_LISTS_VERSION_KEY " names"));
    m.want = 0;
    assert_true(it_wait_until(metric_is, &m, 5000));
    assert_true(it_metric(mport, "riskd_list_rows{kind=\"names\"}") == 0);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    if (it_riskd_wait(&f->env.riskd, 15000) != 0) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not stop cleanly");
    }
}

/* A replay fetches the lists in force before it reads. */
static void test_replay_uses_lists(void **state)
{
    fixture *f = *state;
    result r;
    ctl(f, &r, "-c", f->cfg, "lists", "load", "names", sample[RK_LIST_NAMES], NULL);
    expect(&r, 0, "version 1 in force", NULL);
    ctl(f, &r, "-c", f->cfg, "lists", "load", "credentials", sample[RK_LIST_CREDENTIALS], NULL);
    expect(&r, 0, "version 1 in force", NULL);
    riskd(f, &r, "--replay", "-c", f->cfg, NULL);
    expect(&r, 0, NULL, "list names: version 1 in force (24 rows)");
    expect(&r, 0, NULL, "list credentials: version 1 in force (5 rows)");
    if (strstr(r.err, "whitelist") != NULL)
        fail_msg("a list never loaded was reported in force: %s", r.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_riskd_takes_new_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_uses_lists, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
