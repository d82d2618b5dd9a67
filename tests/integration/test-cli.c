/* tests/integration/test-cli.c - one command-line grammar for riskd,
 * riskctl and riskweb, against a real redis-server.
 *
 * Covered: -h and --help print help and exit 0 in every program and after
 * every riskctl command (the command's own usage); --host/--port override
 * the configuration's Redis; the exit status of every riskctl command for
 * bad usage (1, one line on stderr), Redis down (2) and an unknown id (1);
 * tail --from with an entry id, an RFC 3339 time and a duration; riskctl
 * dead list/show/count/--since/--stream/--json over dead letters that a
 * running riskd wrote; silence add refusing an unknown detector, rule or
 * subject field with one line naming it and the known ones (nothing
 * written), taking a plugin's detector, and --dry-run counting the open
 * alerts it would match (nothing written); riskd --print-config (the
 * effective configuration parsed with jansson: a key the file sets, a
 * default) and its refusal of a bad file naming the key; riskd --replay
 * --from refusing a malformed time; every command exiting 2 (not 1) when
 * Redis accepts the connection and then goes away before answering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"
#include "internal.h"

#define RUN_MS 30000

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256];
    char cfg[300];                  /* the test Redis */
    char down[300];                 /* a port where nothing listens */
    char port[16];
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "cli") != 0)
        goto fail;
    snprintf(f->cfg, sizeof(f->cfg), "%s/ctl.json", f->dir);
    snprintf(f->down, sizeof(f->down), "%s/down.json", f->dir);
    snprintf(f->port, sizeof(f->port), "%d", f->env.redis.port);
    if (it_write_config(f->cfg, f->env.redis.port, "{}") != 0 ||
        it_write_config(f->down, it_free_port(), "{}") != 0)
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
        const char *const a_[] = {__VA_ARGS__, NULL}; \
        itc_run((r), (f)->dir, RUN_MS, a_); \
    } while (0)

static void expect_status(const itc_result *r, int want, const char *what)
{
    if (r->status != want)
        fail_msg("%s: exited %d, expected %d\nstdout:\n%s\nstderr:\n%s", what, r->status, want,
                 r->out, r->err);
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Exit status want with exactly one line on stderr that contains text. */
static void expect_refusal(const itc_result *r, int want, const char *text, const char *what)
{
    expect_status(r, want, what);
    if (lines(r->err) != 1 || (text != NULL && strstr(r->err, text) == NULL))
        fail_msg("%s: stderr is not one line with \"%s\":\n%s", what, text ? text : "",
                 r->err);
}

static void expect_out(const itc_result *r, const char *text)
{
    if (strstr(r->out, text) == NULL)
        fail_msg("stdout lacks \"%s\":\n%s\nstderr:\n%s", text, r->out, r->err);
}

static void run_prog(fixture *f, itc_result *r, const char *prog, const char *const *args)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", it_build_dir(), prog);
    itc_run_prog(r, f->dir, RUN_MS, path, args);
}

/* ===================================================================
 * Help, and the Redis address
 * =================================================================== */

static void test_help(void **state)
{
    static const char *const cmds[] = {"check", "tail", "silence", "status", "alerts", "ack",
                                       "close", "dead", "forward", "lists", "indicators",
                                       "report", "sample"};
    static const char *const progs[] = {"riskd", "riskweb"};
    fixture *f = *state;
    itc_result r;
    char want[64];

    CTL(f, &r, "-h");
    expect_status(&r, 0, "riskctl -h");
    expect_out(&r, "riskctl [options] dead");
    expect_out(&r, "riskctl [options] silence add");
    CTL(f, &r, "--help");
    expect_status(&r, 0, "riskctl --help");
    expect_out(&r, "--host HOST");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        for (int longform = 0; longform < 2; longform++) {
            CTL(f, &r, "-c", f->down, cmds[i], longform ? "--help" : "-h");
            expect_status(&r, 0, cmds[i]);
            snprintf(want, sizeof(want), "%s%s", strcmp(cmds[i], "lists") == 0 ? "" : "] ",
                     cmds[i]);
            if (strcmp(cmds[i], "lists") == 0)
                snprintf(want, sizeof(want), "lists load");
            expect_out(&r, want);
            if (r.err[0] != '\0')
                fail_msg("riskctl %s -h wrote to stderr: %s", cmds[i], r.err);
            /* Only that command's usage (indicators and lists have their own). */
            if (strcmp(cmds[i], "silence") != 0 && strstr(r.out, "silence add") != NULL)
                fail_msg("riskctl %s -h printed every command:\n%s", cmds[i], r.out);
        }
    }
    for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
        const char *const h[] = {"-h", NULL}, *const help[] = {"--help", NULL};
        run_prog(f, &r, progs[i], h);
        expect_status(&r, 0, progs[i]);
        expect_out(&r, "usage");
        run_prog(f, &r, progs[i], help);
        expect_status(&r, 0, progs[i]);
        expect_out(&r, "-c");
    }
}

static void test_host_port(void **state)
{
    fixture *f = *state;
    itc_result r;

    /* The down configuration, with the address given on the command line. */
    CTL(f, &r, "-c", f->down, "--host", "127.0.0.1", "--port", f->port, "dead", "count");
    expect_status(&r, 0, "--host --port");
    expect_out(&r, "total");
    CTL(f, &r, "-c", f->down, "-p", f->port, "silence", "list");
    expect_status(&r, 0, "-p");
    CTL(f, &r, "-c", f->down, "--port", f->port, "indicators", "--scope", "all");
    if (r.status == 2)
        fail_msg("indicators ignored --port: %s", r.err);
    CTL(f, &r, "-c", f->down, "--port", "0", "status");
    expect_refusal(&r, 1, "--port: expected a port from 1 to 65535, got '0'", "--port 0");
    CTL(f, &r, "-c", f->down, "--port", "x", "indicators");
    expect_refusal(&r, 1, "got 'x'", "indicators --port x");
    CTL(f, &r, "-c", f->down, "--db", "-1", "status");
    expect_refusal(&r, 1, "--db", "--db -1");
}

/* ===================================================================
 * Exit status of every command
 * =================================================================== */

static void test_exit_codes(void **state)
{
    fixture *f = *state;
    itc_result r;
    const char *id = "0123456789abcdef0123456789abcdef";

    /* Redis down: 2, whatever the command. */
#define DOWN(...) do { \
        CTL(f, &r, "-c", f->down, __VA_ARGS__); \
        expect_refusal(&r, 2, "Redis", #__VA_ARGS__); \
    } while (0)
    DOWN("status");
    DOWN("tail", "--count", "1");
    DOWN("silence", "list");
    DOWN("silence", "add", "--detector", "bad_rating", "--until", "1h", "--reason", "x");
    DOWN("silence", "expire", "0123456789abcdef");
    DOWN("alerts");
    DOWN("alerts", "--open");
    DOWN("ack", id, "--by", "x");
    DOWN("close", id, "--by", "x");
    DOWN("dead");
    DOWN("dead", "count");
    DOWN("dead", "show", "1-0");
    DOWN("lists", "show", "whitelist");
    DOWN("indicators");
    DOWN("report", "--period", "quarter", "--out", "/dev/null");
    DOWN("sample", "--seed", "s");
#undef DOWN

    /* Bad usage: 1 and one line, Redis up or not. */
#define BAD(text, ...) do { \
        CTL(f, &r, "-c", f->cfg, __VA_ARGS__); \
        expect_refusal(&r, 1, text, #__VA_ARGS__); \
    } while (0)
    BAD("unknown command", "frobnicate");
    BAD("unknown option --frobnicate", "status", "--frobnicate");
    BAD("--count needs a value", "tail", "--count");
    BAD("unknown option", "indicators", "--frob");
    BAD("unknown option", "report", "--frob");
    BAD("unknown option", "sample", "--frob");
    BAD("--port", "sample", "--port", "x", "--seed", "s");
    BAD("not an option", "status", "--json");
    BAD("--from: expected a stream entry id", "tail", "--from", "yesterday");
    BAD("got 'yesterday'", "alerts", "--since", "yesterday");
    BAD("--severity", "alerts", "--severity", "loud");
    BAD("--detector: unknown detector 'nope' (known: unfiled_inspection", "tail", "--detector",
        "nope");
    BAD("--rule: detector fine_growth has no rule 'cluster' (known: growth)", "alerts",
        "--detector", "fine_growth", "--rule", "cluster");
    BAD("--rule: no detector has a rule 'nope'", "alerts", "--rule", "nope");
    BAD("--count: expected a positive number, got '0'", "tail", "--count", "0");
    BAD("--until: expected an RFC 3339 time", "silence", "add", "--detector", "bad_rating",
        "--until", "soon", "--reason", "x");
    BAD("not an alert id", "ack", "42", "--by", "x");
    BAD("--by NAME is required", "close", id);
    BAD("expected a silence id", "silence", "expire", "xyz");
    BAD("unknown silence command", "silence", "mute");
    BAD("dead: unknown command 'frob'", "dead", "frob");
    BAD("expected a dead letter's entry id", "dead", "show", "xyz");
    BAD("dead show: expected one entry id", "dead", "show");
    BAD("--since: expected an RFC 3339 time", "dead", "--since", "yesterday");
    BAD("--interval", "forward", "--interval", "0s");
    BAD("--scope", "indicators", "--scope", "planet");
    BAD("", "lists", "show", "planets");
    BAD("", "check", "/nonexistent/riskd.json");
    /* The same refusals with Redis down: still 1, not 2. */
    CTL(f, &r, "-c", f->down, "tail", "--from", "yesterday");
    expect_refusal(&r, 1, "--from", "tail --from yesterday, Redis down");
    CTL(f, &r, "-c", f->down, "silence", "add", "--detector", "bad_ratings", "--until", "1h",
        "--reason", "x");
    expect_refusal(&r, 1, "bad_ratings", "silence add, Redis down");

    /* Not found: 1. */
    BAD("no silence", "silence", "expire", "0123456789abcdef");
    BAD("unknown alert id", "ack", id, "--by", "x");
    BAD("no dead letter 1-0", "dead", "show", "1-0");
#undef BAD
    assert_int_equal(it_int(f->env.c, "DBSIZE"), 0);
}

/* ===================================================================
 * tail --from
 * =================================================================== */

#define OLD_ALERT "{\"id\":\"a1\",\"detector\":\"bad_rating\",\"rule\":\"bad_rating\"," \
    "\"severity\":\"warning\",\"ts\":\"2025-03-01T09:30:00.000+08:00\"," \
    "\"subject\":{\"unit_id\":\"U1\"},\"summary\":\"three hours ago\"}"
#define NEW_ALERT "{\"id\":\"a2\",\"detector\":\"bad_rating\",\"rule\":\"bad_rating\"," \
    "\"severity\":\"warning\",\"ts\":\"2025-03-01T10:30:00.000+08:00\"," \
    "\"subject\":{\"unit_id\":\"U2\"},\"summary\":\"one hour ago\"}"

static void test_tail_from(void **state)
{
    fixture *f = *state;
    itc_result r;
    int64_t now = rk__wall_ms();
    char id[64], when[64];

    freeReplyObject(it_cmd(f->env.c, "XADD alerts %lld-0 data %s",
                           (long long)(now - 3 * RK_HOUR), OLD_ALERT));
    freeReplyObject(it_cmd(f->env.c, "XADD alerts %lld-0 data %s",
                           (long long)(now - RK_HOUR), NEW_ALERT));
    /* A duration: the entries of the last 2 hours. */
    CTL(f, &r, "-c", f->cfg, "tail", "--from", "2h", "--count", "1");
    expect_status(&r, 0, "tail --from 2h");
    expect_out(&r, "one hour ago");
    assert_null(strstr(r.out, "three hours ago"));
    /* An RFC 3339 time, in another offset. */
    rk__format_rfc3339(now - 2 * RK_HOUR, 8 * 3600, when, sizeof(when));
    CTL(f, &r, "-c", f->cfg, "tail", "--from", when, "--count", "1");
    expect_status(&r, 0, "tail --from TIME");
    expect_out(&r, "one hour ago");
    assert_null(strstr(r.out, "three hours ago"));
    /* The exact millisecond of an entry includes it. */
    rk__format_rfc3339(now - 3 * RK_HOUR, 0, when, sizeof(when));
    CTL(f, &r, "-c", f->cfg, "tail", "--from", when, "--count", "1");
    expect_status(&r, 0, "tail --from the entry's time");
    expect_out(&r, "three hours ago");
    /* An entry id is exclusive; 0 is the whole stream. */
    snprintf(id, sizeof(id), "%lld-0", (long long)(now - 3 * RK_HOUR));
    CTL(f, &r, "-c", f->cfg, "tail", "--from", id, "--count", "1");
    expect_out(&r, "one hour ago");
    CTL(f, &r, "-c", f->cfg, "tail", "--from", "0", "--count", "2");
    expect_out(&r, "three hours ago");
    expect_out(&r, "one hour ago");
}

/* ===================================================================
 * dead
 * =================================================================== */

static bool dead_has(void *arg)
{
    fixture *f = arg;
    return it_int(f->env.c, "XLEN riskd:dead") >= 4;
}

static void test_dead(void **state)
{
    fixture *f = *state;
    itc_result r;
    json_t *j, *e;
    char first[64], big[400];
    size_t i;

    /* riskd writes the dead letters. */
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, "{}"), 0);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.rated\",\"ts\":"
            "\"2025-03-01T09:30:00+08:00\",\"task_id\":\"T1\",\"enterprise_id\":\"E1\","
            "\"score\":9}", NULL, 0);
    {
        char j2[600];
        snprintf(j2, sizeof(j2), "{\"type\":\"inspection.rated\",\"ts\":"
                 "\"2025-03-01T09:31:00+08:00\",\"task_id\":\"T2\",\"enterprise_id\":\"E1\","
                 "\"score\":0,\"comment\":\"%s\"}", big);
        it_xadd(f->env.c, "enforce:scan", j2, NULL, 0);
    }
    it_xadd(f->env.c, "enforce:case", "{not json", NULL, 0);
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.filed\",\"ts\":"
            "\"2025-03-01T09:00:00+08:00\",\"task_id\":\"T3\",\"unit_id\":\"U1\","
            "\"enterprise_id\":\"E1\",\"officers\":[\"O1\",\"\"]}", NULL, 0);
    if (!it_wait_until(dead_has, f, 20000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd wrote %lld dead letters, expected 4",
                 it_int(f->env.c, "XLEN riskd:dead"));
    }

    CTL(f, &r, "-c", f->cfg, "dead", "count", "--json");
    expect_status(&r, 0, "dead count --json");
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "score: expected an integer from 1 "
                                                           "to 5")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "data: not valid JSON")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "officers[]: expected a non-empty "
                                                           "string")), 1);
    json_decref(j);
    CTL(f, &r, "-c", f->cfg, "dead", "count");
    expect_status(&r, 0, "dead count");
    expect_out(&r, "       2  score: expected an integer from 1 to 5\n");
    expect_out(&r, "       4  total\n");

    /* list --json: grouped by kind, in the order the kinds first appear. */
    CTL(f, &r, "-c", f->cfg, "dead", "list", "--json");
    expect_status(&r, 0, "dead list --json");
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 4);
    first[0] = '\0';
    for (i = 0; i < 4; i++) {
        const char *kind, *next;
        e = json_array_get(j, i);
        kind = json_string_value(json_object_get(e, "kind"));
        next = i < 3 ? json_string_value(json_object_get(json_array_get(j, i + 1), "kind")) : "";
        if (strcmp(kind, "score: expected an integer from 1 to 5") == 0) {
            assert_string_equal(json_string_value(json_object_get(e, "stream")), "enforce:scan");
            assert_non_null(strstr(json_string_value(json_object_get(e, "error")), "score"));
            if (strstr(json_string_value(json_object_get(e, "data")), big) != NULL)
                snprintf(first, sizeof(first), "%s",
                         json_string_value(json_object_get(e, "id")));
            else    /* the two of a kind are together */
                assert_string_equal(next, kind);
        } else if (strcmp(kind, "data: not valid JSON") == 0) {
            assert_string_equal(json_string_value(json_object_get(e, "stream")), "enforce:case");
            assert_string_equal(json_string_value(json_object_get(e, "data")), "{not json");
            assert_non_null(json_string_value(json_object_get(e, "entry")));
            assert_non_null(json_string_value(json_object_get(e, "time")));
        }
    }
    assert_true(first[0] != '\0');
    json_decref(j);

    /* The table: headings with counts, the payload cut. */
    CTL(f, &r, "-c", f->cfg, "dead");
    expect_status(&r, 0, "dead");
    expect_out(&r, "== score: expected an integer from 1 to 5 (2)\n");
    expect_out(&r, "== data: not valid JSON (1)\n");
    expect_out(&r, "\"ts\":\"2025-03-01T09:31:00+08:00\",...\n");
    assert_null(strstr(r.out, big));

    /* show: the whole payload. */
    CTL(f, &r, "-c", f->cfg, "dead", "show", first);
    expect_status(&r, 0, "dead show");
    expect_out(&r, big);
    expect_out(&r, "error   score: expected an integer from 1 to 5");
    CTL(f, &r, "-c", f->cfg, "dead", "show", first, "--json");
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_non_null(strstr(json_string_value(json_object_get(j, "data")), big));
    json_decref(j);

    /* --stream, by name or key; --since. */
    CTL(f, &r, "-c", f->cfg, "dead", "count", "--stream", "case");
    expect_out(&r, "       1  total\n");
    CTL(f, &r, "-c", f->cfg, "dead", "count", "--stream", "enforce:scan");
    expect_out(&r, "       3  total\n");
    CTL(f, &r, "-c", f->cfg, "dead", "count", "--since", "1h");
    expect_out(&r, "       4  total\n");
    {
        /* One more, later than riskd's; --since a time between them. */
        redisReply *x = it_cmd(f->env.c, "XREVRANGE riskd:dead + - COUNT 1");
        long long last;
        char when[64];
        assert_int_equal(x->type, REDIS_REPLY_ARRAY);
        last = strtoll(x->element[0]->element[0]->str, NULL, 10);
        freeReplyObject(x);
        freeReplyObject(it_cmd(f->env.c, "XADD riskd:dead %lld-0 stream enforce:scan id 1-0 "
                               "error %s data x", last + 5, "ts: expected an RFC 3339 time"));
        rk__format_rfc3339(last + 1, 8 * 3600, when, sizeof(when));
        CTL(f, &r, "-c", f->cfg, "dead", "count", "--since", when);
        expect_out(&r, "       1  ts: expected an RFC 3339 time\n       1  total\n");
        CTL(f, &r, "-c", f->cfg, "dead", "count", "--since", "2000-01-01T00:00:00Z");
        expect_out(&r, "       5  total\n");
    }
    /* Bytes that are not UTF-8 (refused input may be anything) still print. */
    freeReplyObject(it_cmd(f->env.c, "XADD riskd:dead * stream enforce:case id 2-0 "
                           "error %b data %b", "data: not valid JSON (\xff)", (size_t)24,
                           "\xff\xfe{", (size_t)3));
    CTL(f, &r, "-c", f->cfg, "dead", "list", "--json", "--stream", "case");
    expect_status(&r, 0, "dead list --json, not UTF-8");
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "data")),
                        "??{");
    json_decref(j);
    /* More than one page of XRANGE (1000 entries). */
    for (i = 0; i < 2500; i++)
        redisAppendCommand(f->env.c, "XADD riskd:dead * stream enforce:scan id %d-0 error %s "
                           "data {}", (int)i + 10, "type: expected a string");
    for (i = 0; i < 2500; i++) {
        void *rep = NULL;
        assert_int_equal(redisGetReply(f->env.c, &rep), REDIS_OK);
        freeReplyObject(rep);
    }
    CTL(f, &r, "-c", f->cfg, "dead", "count", "--json");
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "type: expected a string")), 2500);
    json_decref(j);
    CTL(f, &r, "-c", f->cfg, "dead", "count", "--stream", "scan");
    expect_out(&r, "    2504  total\n");
    CTL(f, &r, "-c", f->cfg, "dead", "list", "--stream", "nosuch");
    expect_status(&r, 0, "dead list --stream nosuch");
    expect_out(&r, "no dead letters\n");
}

/* ===================================================================
 * silence add: validation and --dry-run
 * =================================================================== */

static void open_alert(fixture *f, const char *id, const char *det, const char *rule,
                       const char *unit)
{
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", id, "status",
                          "firing", "detector", det, "rule", rule, "severity", "warning",
                          "subject", "unit_id", unit, "officer_id", "O7");
    char *s = json_dumps(a, JSON_COMPACT);
    freeReplyObject(it_cmd(f->env.c, "HSET riskd:open %s %s", id, s));
    free(s);
    json_decref(a);
}

static void test_silence_validation(void **state)
{
    fixture *f = *state;
    itc_result r;
    char plugcfg[320], json[600];

#define ADD(...) CTL(f, &r, "-c", f->cfg, "silence", "add", "--until", "1h", "--reason", \
                     "x", __VA_ARGS__)
    ADD("--detector", "bad_ratings");
    expect_refusal(&r, 1, "--detector: unknown detector 'bad_ratings' (known: "
                   "unfiled_inspection, bad_rating, fine_growth", "unknown detector");
    ADD("--detector", "bad_rating", "--rule", "officer_repeat");
    expect_refusal(&r, 1, "--rule: detector bad_rating has no rule 'officer_repeat' (known: "
                   "bad_rating, officer_repeated, unit_ratio)", "unknown rule");
    ADD("--detector", "fine_growth", "--rule", "bad_rating");
    expect_refusal(&r, 1, "(known: growth)", "another detector's rule");
    ADD("--detector", "bad_rating", "--match", "unit=U1");
    expect_refusal(&r, 1, "'unit' is not a subject field a silence can match (known: unit_id, "
                   "officer_id, enterprise_id, task_id, case_id, region)", "unknown field");
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:silences riskd:audit"), 0);

    /* --dry-run: counted against the open hash, nothing written. */
    open_alert(f, "a1", "bad_rating", "officer_repeated", "U1");
    open_alert(f, "a2", "bad_rating", "bad_rating", "U1");
    open_alert(f, "a3", "bad_rating", "officer_repeated", "U2");
    open_alert(f, "a4", "fine_growth", "growth", "U1");
    ADD("--detector", "bad_rating", "--match", "unit_id=U1", "--dry-run");
    expect_status(&r, 0, "dry run");
    expect_out(&r, "would match 2 of 4 open alerts; nothing was added");
    ADD("--detector", "bad_rating", "--rule", "officer_repeated", "--dry-run");
    expect_out(&r, "would match 2 of 4 open alerts");
    ADD("--detector", "bad_rating", "--rule", "officer_repeated", "--match", "unit_id=U1",
        "--match", "officer_id=O7", "--dry-run");
    expect_out(&r, "would match 1 of 4 open alerts");
    ADD("--detector", "review_correction", "--dry-run");
    expect_out(&r, "would match 0 of 4 open alerts");
    ADD("--detector", "bad_ratings", "--dry-run");
    expect_status(&r, 1, "dry run of an unknown detector");
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:silences riskd:audit"), 0);

    /* A plugin's detector is known through the configuration; any rule. */
    snprintf(plugcfg, sizeof(plugcfg), "%s/plug.json", f->dir);
    snprintf(json, sizeof(json), "{\"plugins\": [\"%s/plugins/two_officers.so\"]}",
             it_build_dir());
    assert_int_equal(it_write_config(plugcfg, f->env.redis.port, json), 0);
    CTL(f, &r, "-c", plugcfg, "silence", "add", "--detector", "two_officers", "--rule",
        "anything", "--until", "1h", "--reason", "x");
    expect_status(&r, 0, "a plugin's detector");
    CTL(f, &r, "-c", plugcfg, "silence", "add", "--detector", "three_officers", "--until", "1h",
        "--reason", "x");
    expect_refusal(&r, 1, "officer_credential, two_officers)", "unknown with a plugin");
    CTL(f, &r, "-c", f->cfg, "silence", "add", "--detector", "two_officers", "--until", "1h",
        "--reason", "x");
    expect_refusal(&r, 1, "unknown detector 'two_officers'", "plugin not configured");
    assert_int_equal(it_int(f->env.c, "HLEN riskd:silences"), 1);
#undef ADD
}

/* ===================================================================
 * riskd --print-config
 * =================================================================== */

static void test_print_config(void **state)
{
    fixture *f = *state;
    itc_result r;
    char path[320];
    json_t *j;
    json_error_t jerr;

    snprintf(path, sizeof(path), "%s/pc.json", f->dir);
    assert_int_equal(it_write_config(path, f->env.redis.port,
                                     "{\"streams\": {\"batch\": 42}, \"detectors\": "
                                     "{\"bad_rating\": {\"bad_score\": 1}}}"), 0);
    {
        const char *const a[] = {"--print-config", "-c", path, NULL};
        run_prog(f, &r, "riskd", a);
    }
    expect_status(&r, 0, "riskd --print-config");
    j = json_loads(r.out, 0, &jerr);
    if (j == NULL)
        fail_msg("--print-config printed no JSON (%s):\n%s", jerr.text, r.out);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "streams"),
                                                        "batch")), 42);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "redis"), "port")),
                     f->env.redis.port);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "alerts"),
                                                          "stream")), "alerts");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "state"),
                                                          "dedupe_window")), "400d");
    {
        json_t *br = json_object_get(json_object_get(j, "detectors"), "bad_rating");
        assert_int_equal(json_integer_value(json_object_get(br, "bad_score")), 1);
        assert_int_equal(json_integer_value(json_object_get(br, "officer_min_bad")), 3);
    }
    json_decref(j);

    /* A bad file: exit 1, one line naming the key. */
    assert_int_equal(it_write_config(path, f->env.redis.port,
                                     "{\"streams\": {\"batch\": 0}}"), 0);
    {
        const char *const a[] = {"--print-config", "-c", path, NULL};
        run_prog(f, &r, "riskd", a);
    }
    expect_refusal(&r, 1, "streams.batch: expected an integer from 1 to 100000", "bad batch");
    assert_string_equal(r.out, "");
    assert_int_equal(it_write_config(path, f->env.redis.port,
                                     "{\"detectors\": {\"bad_rating\": {\"bad_scor\": 1}}}"), 0);
    {
        const char *const a[] = {"--print-config", "-c", path, NULL};
        run_prog(f, &r, "riskd", a);
    }
    expect_refusal(&r, 1, "bad_scor", "unknown detector key");
    {
        const char *const a[] = {"--print-config", "-t", "-c", path, NULL};
        run_prog(f, &r, "riskd", a);
    }
    expect_status(&r, 1, "--print-config -t");
    /* A replay's bounds say what they expected. */
    {
        const char *const a[] = {"--replay", "-c", f->cfg, "--from", "yesterday", NULL};
        run_prog(f, &r, "riskd", a);
    }
    expect_status(&r, 1, "riskd --replay --from yesterday");
    if (strstr(r.err, "--from: expected an entry id or an RFC 3339 time, got 'yesterday'")
        == NULL)
        fail_msg("riskd --replay --from yesterday: %s", r.err);
}

/* ===================================================================
 * Redis going away after the connection
 * =================================================================== */

/* A child that accepts every connection on a loopback port and closes it at
 * once: riskctl connects (there is no PING), and its first command finds
 * the connection gone. Returns the child's pid, the port in *port. */
static pid_t closer_pid = -1;

static pid_t closer_start(int *port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
    pid_t pid;
    assert_true(s >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 16), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c >= 0)
                close(c);
        }
    }
    close(s);
    closer_pid = pid;
    return pid;
}

/* teardown, and the closer stopped (also when the test failed). */
static int teardown_closer(void **state)
{
    if (closer_pid > 0) {
        kill(closer_pid, SIGKILL);
        waitpid(closer_pid, NULL, 0);
        closer_pid = -1;
    }
    return teardown(state);
}

static void test_redis_gone(void **state)
{
    fixture *f = *state;
    itc_result r;
    char gone[300];
    int port;
    const char *id = "0123456789abcdef0123456789abcdef";

    closer_start(&port);
    snprintf(gone, sizeof(gone), "%s/gone.json", f->dir);
    assert_int_equal(it_write_config(gone, port, "{}"), 0);
#define GONE(...) do { \
        CTL(f, &r, "-c", gone, __VA_ARGS__); \
        expect_status(&r, 2, #__VA_ARGS__ " (Redis gone)"); \
    } while (0)
    GONE("status");
    GONE("tail", "--count", "1");
    GONE("silence", "list");
    GONE("silence", "add", "--detector", "bad_rating", "--until", "1h", "--reason", "x");
    GONE("silence", "add", "--detector", "bad_rating", "--until", "1h", "--reason", "x",
         "--dry-run");
    GONE("silence", "expire", "0123456789abcdef");
    GONE("alerts");
    GONE("alerts", "--open");
    GONE("ack", id, "--by", "x");
    GONE("close", id, "--by", "x");
    GONE("dead");
    GONE("dead", "count");
    GONE("dead", "show", "1-0");
    GONE("lists", "show", "whitelist");
    GONE("indicators");
    GONE("report", "--period", "quarter", "--out", "/dev/null");
    GONE("sample", "--seed", "s");
#undef GONE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_gone, setup, teardown_closer),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
