/* tests/integration/test-riskctl-acl.c - the least-privilege Redis user
 * riskctl(1) gives, against a real redis-server and what a real riskd left.
 *
 * The ACL SETUSER line is read from daemon/riskctl/riskctl.1 itself (the
 * man-page escapes removed, >PASSWORD replaced by a test password), so the
 * page and this test cannot drift apart. riskd consumes a generated
 * workload (alerts, notices, the open hash, dead letters, indicators); then
 * every riskctl command that reads Redis but forward runs as that user (--user ops -a ...)
 * and must exit 0 (1 where the data makes a refusal the documented answer),
 * and ACL LOG must stay empty: a command or key the line forgets shows up
 * there, and is printed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"

#define RUN_MS    30000
#define MAN_PAGE  "daemon/riskctl/riskctl.1"
#define PASSWORD  "acl-test-pw"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256];
    char cfg[300];
    char csv[300];
    char html[300];
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "acl") != 0)
        goto fail;
    snprintf(f->cfg, sizeof(f->cfg), "%s/ctl.json", f->dir);
    snprintf(f->csv, sizeof(f->csv), "%s/names.csv", f->dir);
    snprintf(f->html, sizeof(f->html), "%s/report.html", f->dir);
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

/* The ACL SETUSER line of riskctl(1), as plain text, into buf. 0 or -1. */
static int man_acl_line(char *buf, size_t len)
{
    FILE *fp = fopen(MAN_PAGE, "r");
    char line[4096];
    int found = -1;
    if (fp == NULL)
        return -1;
    while (found != 0 && fgets(line, sizeof(line), fp) != NULL) {
        const char *s = strstr(line, "ACL SETUSER ");
        size_t n = 0;
        if (s == NULL)
            continue;
        while (*s && *s != '\n' && n + 1 < len) {
            if (s[0] == '\\' && s[1] == 'f' && s[2] != '\0') {
                s += 3;             /* \fB \fR \fI */
            } else if (s[0] == '\\' && s[1] == '-') {
                buf[n++] = '-';
                s += 2;
            } else if (s[0] == '\\' && s[1] == '&') {
                s += 2;
            } else {
                buf[n++] = *s++;
            }
        }
        while (n > 0 && buf[n - 1] == ' ')
            n--;
        buf[n] = '\0';
        found = 0;
    }
    fclose(fp);
    return found;
}

/* Apply the page's line, with the test password, as one command. */
static void apply_acl(fixture *f, const char *text)
{
    char copy[4096], *save = NULL, *w;
    const char *argv[128];
    int argc = 0;
    redisReply *r;
    snprintf(copy, sizeof(copy), "%s", text);
    for (w = strtok_r(copy, " ", &save); w != NULL && argc < 128;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = strcmp(w, ">PASSWORD") == 0 ? ">" PASSWORD : w;
    assert_true(argc > 4);
    assert_string_equal(argv[0], "ACL");
    assert_string_equal(argv[1], "SETUSER");
    assert_string_equal(argv[2], "ops");
    r = redisCommandArgv(f->env.c, argc, argv, NULL);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("ACL SETUSER from %s refused: %s\n%s", MAN_PAGE,
                 r->type == REDIS_REPLY_ERROR ? r->str : "?", text);
    freeReplyObject(r);
}

/* ACL LOG as text (static buffer), "" when empty. */
static const char *acl_log(fixture *f)
{
    static char buf[16384];
    size_t n = 0, i, j;
    redisReply *r = it_cmd(f->env.c, "ACL LOG");
    buf[0] = '\0';
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        for (j = 0; e->type == REDIS_REPLY_ARRAY && j + 1 < e->elements; j += 2) {
            redisReply *k = e->element[j], *v = e->element[j + 1];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "reason") != 0 && strcmp(k->str, "object") != 0 &&
                strcmp(k->str, "context") != 0 && strcmp(k->str, "count") != 0)
                continue;
            if (v->type == REDIS_REPLY_STRING)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s=%s ", k->str, v->str);
            else if (v->type == REDIS_REPLY_INTEGER)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s=%lld ", k->str, v->integer);
            if (n >= sizeof(buf))
                n = sizeof(buf) - 1;
        }
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n");
        if (n >= sizeof(buf))
            n = sizeof(buf) - 1;
    }
    freeReplyObject(r);
    return buf;
}

/* riskctl as ops; args NULL-terminated after the command. */
static void ctl(fixture *f, itc_result *r, const char *const *args)
{
    const char *a[32] = {"-c", f->cfg, "--user", "ops", "-a", PASSWORD};
    size_t n = 6, i;
    for (i = 0; args[i] != NULL && n + 1 < 32; i++)
        a[n++] = args[i];
    a[n] = NULL;
    itc_run(r, f->dir, RUN_MS, a);
}

#define AS_OPS(f, r, want, ...) do { \
        const char *const a_[] = {__VA_ARGS__, NULL}; \
        ctl((f), (r), a_); \
        if ((r)->status != (want)) \
            fail_msg("riskctl %s %s ... as ops: exited %d, expected %d\nstdout:\n%.2000s\n" \
                     "stderr:\n%s\nACL LOG:\n%s", a_[0], a_[1] ? a_[1] : "", (r)->status, \
                     (want), (r)->out, (r)->err, acl_log(f)); \
    } while (0)

static bool has_indicators(void *arg)
{
    fixture *f = arg;
    return it_int(f->env.c, "ZCARD riskd:ind:periods") > 0 &&
           it_int(f->env.c, "XLEN riskd:dead") > 0;
}

/* The id of the nth open alert (from the open hash) into buf. */
static void one_open(fixture *f, char *buf, size_t len, size_t nth)
{
    redisReply *r = it_cmd(f->env.c, "HKEYS riskd:open");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    if (nth >= r->elements)
        fail_msg("the open hash has %zu alerts, the test needs %zu", r->elements, nth + 1);
    snprintf(buf, len, "%s", r->element[nth]->str);
    freeReplyObject(r);
}

static void test_least_privilege(void **state)
{
    fixture *f = *state;
    itc_result *r = malloc(sizeof(*r));
    char line[4096], id1[80], id2[80], sid[64], dead_id[64], at[32] = "";
    const char *log;
    json_t *j;
    FILE *fp;
    size_t i;

    assert_non_null(r);
    if (man_acl_line(line, sizeof(line)) != 0)
        fail_msg("no ACL SETUSER line in %s", MAN_PAGE);
    assert_null(strstr(line, "+@all"));
    assert_null(strstr(line, " ~* "));

    /* What riskd leaves: alerts, notices, the open hash, dead letters,
     * indicators. */
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, "{}"), 0);
    it_preload_workload(f->env.c, 3000, 20, 0.05, 21, 97);
    if (!it_wait_settled(f->env.c, 60000) || !it_wait_until(has_indicators, f, 20000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not consume the workload");
    }
    assert_true(it_int(f->env.c, "HLEN riskd:open") >= 2);
    freeReplyObject(it_cmd(f->env.c, "ACL LOG RESET"));
    apply_acl(f, line);

    {   /* check reads no Redis, so takes no credentials */
        const char *const a[] = {"check", f->cfg, NULL};
        itc_run(r, f->dir, RUN_MS, a);
        assert_int_equal(r->status, 0);
    }
    AS_OPS(f, r, 0, "status");
    AS_OPS(f, r, 0, "tail", "--from", "0", "--count", "3");
    AS_OPS(f, r, 0, "tail", "--from", "1h", "--count", "1");

    /* Silences. */
    AS_OPS(f, r, 0, "silence", "add", "--detector", "bad_rating", "--until", "2h",
           "--reason", "acl test", "--dry-run");
    AS_OPS(f, r, 0, "silence", "add", "--detector", "bad_rating", "--until", "2h",
           "--reason", "acl test", "--author", "ops");
    AS_OPS(f, r, 0, "silence", "list");
    {
        redisReply *k = it_cmd(f->env.c, "HKEYS riskd:silences");
        assert_int_equal(k->type, REDIS_REPLY_ARRAY);
        assert_int_equal(k->elements, 1);
        snprintf(sid, sizeof(sid), "%s", k->element[0]->str);
        freeReplyObject(k);
    }
    AS_OPS(f, r, 0, "silence", "expire", sid, "--author", "ops");
    AS_OPS(f, r, 0, "silence", "list", "--all");
    AS_OPS(f, r, 0, "silence", "expire", sid);             /* already expired */
    AS_OPS(f, r, 1, "silence", "expire", "0123456789abcdef");   /* no such */
    AS_OPS(f, r, 0, "-n", "1", "silence", "list");         /* another database */

    /* Alerts, ack, close. */
    AS_OPS(f, r, 0, "alerts");
    AS_OPS(f, r, 0, "alerts", "--json", "--since", "7d");
    AS_OPS(f, r, 0, "alerts", "--open");
    AS_OPS(f, r, 0, "alerts", "--open", "--json", "--severity", "warning");
    one_open(f, id1, sizeof(id1), 0);
    one_open(f, id2, sizeof(id2), 1);
    AS_OPS(f, r, 0, "ack", id1, "--by", "ops", "--note", "looking");
    AS_OPS(f, r, 0, "close", id2, "--by", "ops", "--note", "done");
    AS_OPS(f, r, 1, "close", "no-such-alert", "--by", "ops");

    /* Dead letters. */
    AS_OPS(f, r, 0, "dead");
    AS_OPS(f, r, 0, "dead", "count", "--json");
    AS_OPS(f, r, 0, "dead", "list", "--stream", "scan", "--since", "1h");
    AS_OPS(f, r, 0, "dead", "list", "--json");
    j = json_loads(r->out, 0, NULL);
    assert_non_null(j);
    assert_true(json_array_size(j) > 0);
    snprintf(dead_id, sizeof(dead_id), "%s",
             json_string_value(json_object_get(json_array_get(j, 0), "id")));
    json_decref(j);
    AS_OPS(f, r, 0, "dead", "show", dead_id);
    AS_OPS(f, r, 1, "dead", "show", "1-1");

    /* Reference lists. */
    fp = fopen(f->csv, "w");
    assert_non_null(fp);
    fputs("kind,id,name\nunit,U1,Unit one\nofficer,O1,Officer one\n", fp);
    fclose(fp);
    AS_OPS(f, r, 0, "lists", "load", "names", f->csv, "--author", "ops");
    AS_OPS(f, r, 0, "lists", "show", "names");
    AS_OPS(f, r, 0, "lists", "show", "whitelist", "--json");
    fp = fopen(f->csv, "w");                                /* an empty list */
    assert_non_null(fp);
    fputs("enterprise_id,allowance,note\n", fp);
    fclose(fp);
    AS_OPS(f, r, 0, "lists", "load", "whitelist", f->csv);

    /* Indicators, report, sample (the watermark's month). */
    AS_OPS(f, r, 0, "indicators");
    AS_OPS(f, r, 0, "indicators", "--scope", "unit", "--json");
    AS_OPS(f, r, 0, "sample", "--seed", "acl");
    AS_OPS(f, r, 0, "sample", "--seed", "acl", "--kind", "case", "--json");
    {
        redisReply *z = it_cmd(f->env.c, "ZRANGE riskd:ind:periods 0 -1");
        assert_int_equal(z->type, REDIS_REPLY_ARRAY);
        for (i = 0; i < z->elements; i++)   /* a month's label, YYYY-MM */
            if (strlen(z->element[i]->str) == 7 && z->element[i]->str[4] == '-')
                snprintf(at, sizeof(at), "%s", z->element[i]->str);
        freeReplyObject(z);
    }
    if (at[0] == '\0')
        fail_msg("riskd wrote no month's indicators");
    AS_OPS(f, r, 0, "report", "--period", "month", "--at", at, "--out", f->html);
    AS_OPS(f, r, 0, "report", "--period", "month", "--at", at, "--top", "3", "--lang",
           "en", "--out", f->html);

    log = acl_log(f);
    if (log[0] != '\0')
        fail_msg("ACL LOG is not empty after riskctl ran as ops:\n%s", log);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_least_privilege, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
