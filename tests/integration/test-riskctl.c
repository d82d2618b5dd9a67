/* tests/integration/test-riskctl.c - the operator CLI against a real redis-server.
 *
 * Each test gets a throwaway redis-server (tests/lib/itest) and runs
 * $BUILD/riskctl as a child process (fork + exec, stdout on a pipe or a
 * pseudo-terminal, stderr in a file), with a time limit. Covered: check
 * (valid and invalid files); silence add (the stored record field by
 * field, the PUBLISH, the default author), list, expire (kept, hidden
 * from list, shown by --all) and the audit entries; bad silence input
 * changes nothing; tail (fields, --from is exclusive, filters, the
 * [silenced] mark, following from the end, colour only on a terminal and
 * never with NO_COLOR); status (group lag and pending, missing streams,
 * checkpoint size, Redis down, the metrics of a running riskd); and, with
 * riskd running, a silence that hides an alert (written with "silenced":
 * true, not published) and, expired, stops hiding. riskd re-reads the
 * silences every second; the test waits for riskctl status to show
 * riskd_silences 1 after adding, and 3 s after expiring. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
    it_env env;                     /* first (it_fixture_new): redis, client, riskd */
    char dir[256];
    char cfg[300];                  /* riskctl's config: the test Redis */
    char port[16];
} fixture;

typedef struct result {
    int status;                     /* exit status, or -1 */
    char out[32768];
    char err[8192];
} result;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "ctl") != 0)
        goto fail;
    snprintf(f->cfg, sizeof(f->cfg), "%s/ctl.json", f->dir);
    snprintf(f->port, sizeof(f->port), "%d", f->env.redis.port);
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

/* ===================================================================
 * Running riskctl
 * =================================================================== */

/* Start riskctl with args (NULL-terminated). env lists "NAME=value" to set
 * and "NAME" to unset in the child. With pty the child's stdout is a
 * pseudo-terminal. stderr goes to errpath. Returns the pid and the read
 * end of stdout in *fd, or -1. */
static pid_t spawn_ctl(const char *const *env, int pty, const char *errpath,
                       const char *const *args, int *fd)
{
    char bin[512];
    char *argv[64];
    int p[2] = {-1, -1}, master = -1;
    const char *slave = NULL;
    pid_t pid;
    size_t n = 0;

    snprintf(bin, sizeof(bin), "%s/riskctl", it_build_dir());
    argv[n++] = bin;
    while (args[n - 1] != NULL && n < 63) {
        argv[n] = (char *)(uintptr_t)args[n - 1];
        n++;
    }
    argv[n] = NULL;
    if (pty) {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
            (slave = ptsname(master)) == NULL)
            return -1;
    } else if (pipe(p) != 0) {
        return -1;
    }
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int out = pty ? open(slave, O_RDWR | O_NOCTTY) : p[1];
        int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0)
            _exit(126);
        dup2(out, 1);
        dup2(err, 2);
        close(out);
        close(err);
        if (pty)
            close(master);
        else
            close(p[0]);
        for (size_t i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq == NULL) {
                unsetenv(env[i]);
            } else {
                char name[64];
                snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
                setenv(name, eq + 1, 1);
            }
        }
        execv(bin, argv);
        _exit(127);
    }
    if (pty) {
        *fd = master;
    } else {
        close(p[1]);
        *fd = p[0];
    }
    return pid;
}

/* Read the child's stdout until EOF (or EIO on a pty), reap it and fill
 * r. Kills the child after RUN_TIMEOUT_MS. */
static void collect(pid_t pid, int fd, const char *errpath, result *r)
{
    size_t len = 0;
    int waited = 0, st;
    FILE *ef;

    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, 100);
        if (n > 0) {
            ssize_t got = read(fd, r->out + len, sizeof(r->out) - 1 - len);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            len += (size_t)got;
            if (len == sizeof(r->out) - 1)
                break;
        } else if ((waited += 100) >= RUN_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            break;
        }
    }
    r->out[len] = '\0';
    close(fd);
    r->status = -1;
    if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
        r->status = WEXITSTATUS(st);
    r->err[0] = '\0';
    if ((ef = fopen(errpath, "r")) != NULL) {
        size_t n = fread(r->err, 1, sizeof(r->err) - 1, ef);
        r->err[n] = '\0';
        fclose(ef);
    }
}

/* Run riskctl to the end with args (NULL-terminated) and env. */
static void run_env(fixture *f, result *r, int pty, const char *const *env,
                    const char *const *args)
{
    char errpath[320];
    int fd;
    pid_t pid;
    snprintf(errpath, sizeof(errpath), "%s/stderr", f->dir);
    memset(r, 0, sizeof(*r));
    pid = spawn_ctl(env, pty, errpath, args, &fd);
    assert_true(pid > 0);
    collect(pid, fd, errpath, r);
}

#define CTL(f, r, ...) do { \
        const char *const a_[] = {__VA_ARGS__, NULL}; \
        run_env((f), (r), 0, NULL, a_); \
    } while (0)
#define CTL_ENV(f, r, pty, env, ...) do { \
        const char *const a_[] = {__VA_ARGS__, NULL}; \
        run_env((f), (r), (pty), (env), a_); \
    } while (0)

static void expect_status(const result *r, int want)
{
    if (r->status != want)
        fail_msg("riskctl exited %d, expected %d\nstdout:\n%s\nstderr:\n%s", r->status,
                 want, r->out, r->err);
}

static void expect_out(const result *r, const char *text)
{
    if (strstr(r->out, text) == NULL)
        fail_msg("stdout lacks \"%s\"\nstdout:\n%s\nstderr:\n%s", text, r->out, r->err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Add a silence and return its id (from "silence <id> added"). */
static void add_silence(fixture *f, char id[17], const char *const *args)
{
    result r;
    const char *env[] = {"SUDO_USER", "USER=tester", NULL};
    run_env(f, &r, 0, env, args);
    expect_status(&r, 0);
    if (sscanf(r.out, "silence %16[0-9a-f] added", id) != 1 || strlen(id) != 16)
        fail_msg("no silence id in \"%s\"", r.out);
}

/* The silence record stored under id, parsed (caller decrefs). */
static json_t *stored(fixture *f, const char *id, char *raw, size_t rawlen)
{
    redisReply *r = it_cmd(f->env.c, "HGET riskd:silences %s", id);
    json_t *j;
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    if (raw)
        snprintf(raw, rawlen, "%s", r->str);
    j = json_loads(r->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(j);
    return j;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(absent)";
}

/* ===================================================================
 * check
 * =================================================================== */

static void test_check(void **state)
{
    fixture *f = *state;
    char bad[320], bad2[320];
    result r;

    CTL(f, &r, "check", f->cfg);
    expect_status(&r, 0);
    {
        char want[400];
        snprintf(want, sizeof(want), "%s: configuration OK\n", f->cfg);
        assert_string_equal(r.out, want);
    }

    snprintf(bad, sizeof(bad), "%s/bad.json", f->dir);
    assert_int_equal(it_write_config(bad, f->env.redis.port, "{\"streams\":{\"batch\":0}}"), 0);
    CTL(f, &r, "check", bad);
    expect_status(&r, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "streams.batch: expected an integer from 1 to 100000"));
    assert_non_null(strstr(r.err, bad));

    /* A detector's own part is checked too (rk__registry_check). */
    snprintf(bad2, sizeof(bad2), "%s/bad2.json", f->dir);
    assert_int_equal(it_write_config(bad2, f->env.redis.port,
                                     "{\"detectors\":{\"bad_rating\":{\"bad_score\":9}}}"), 0);
    CTL(f, &r, "check", bad2);
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "detectors.bad_rating.bad_score"));

    CTL(f, &r, "check", "/nonexistent/riskd.json");
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "/nonexistent/riskd.json"));
}

/* ===================================================================
 * silence
 * =================================================================== */

static void test_silence_add_list(void **state)
{
    fixture *f = *state;
    redisContext *sub = it_connect(f->env.redis.port);
    redisReply *m;
    void *rep = NULL;
    char id[17], id2[17], id3[17];
    int64_t before = rk__wall_ms(), after, want;
    json_t *s;
    result r;

    freeReplyObject(it_cmd(sub, "SUBSCRIBE riskd:silences"));
    {
        const char *a[] = {"-c", f->cfg, "silence", "add", "--detector", "bad_rating",
                           "--rule", "officer_repeated", "--match", "unit_id=U1",
                           "--match", "officer_id=O7", "--until", "2h",
                           "--reason", "training week", NULL};
        add_silence(f, id, a);
    }
    after = rk__wall_ms();

    /* The change is announced on the channel, the message being the id. */
    assert_int_equal(redisGetReply(sub, &rep), REDIS_OK);
    m = rep;
    assert_int_equal(m->type, REDIS_REPLY_ARRAY);
    assert_int_equal(m->elements, 3);
    assert_string_equal(m->element[0]->str, "message");
    assert_string_equal(m->element[1]->str, "riskd:silences");
    assert_string_equal(m->element[2]->str, id);
    freeReplyObject(m);
    redisFree(sub);

    s = stored(f, id, NULL, 0);
    assert_int_equal(json_object_size(s), 8);
    assert_string_equal(jstr(s, "id"), id);
    assert_string_equal(jstr(s, "detector"), "bad_rating");
    assert_string_equal(jstr(s, "rule"), "officer_repeated");
    assert_int_equal(json_object_size(json_object_get(s, "match")), 2);
    assert_string_equal(jstr(json_object_get(s, "match"), "unit_id"), "U1");
    assert_string_equal(jstr(json_object_get(s, "match"), "officer_id"), "O7");
    assert_string_equal(jstr(s, "reason"), "training week");
    assert_string_equal(jstr(s, "author"), "tester");     /* $USER, no $SUDO_USER */
    assert_true(json_is_integer(json_object_get(s, "until")));
    assert_in_range(json_integer_value(json_object_get(s, "created_at")), before, after);
    assert_in_range(json_integer_value(json_object_get(s, "until")),
                    before + 2 * 3600000, after + 2 * 3600000);
    json_decref(s);

    /* RFC 3339 --until, no rule or match (both omitted), $SUDO_USER wins. */
    {
        const char *env[] = {"SUDO_USER=admin", "USER=root", NULL};
        const char *a[] = {"-c", f->cfg, "silence", "add", "--detector", "fine_growth",
                           "--until", "2099-01-01T00:00:00+08:00", "--reason", "r2", NULL};
        run_env(f, &r, 0, env, a);
        expect_status(&r, 0);
        assert_int_equal(sscanf(r.out, "silence %16[0-9a-f] added", id2), 1);
    }
    s = stored(f, id2, NULL, 0);
    assert_int_equal(rk__parse_rfc3339("2099-01-01T00:00:00+08:00", &want), 0);
    assert_int_equal(json_integer_value(json_object_get(s, "until")), want);
    assert_null(json_object_get(s, "rule"));
    assert_null(json_object_get(s, "match"));
    assert_string_equal(jstr(s, "author"), "admin");
    json_decref(s);
    assert_string_not_equal(id, id2);

    /* --author beats both. */
    {
        const char *a[] = {"-c", f->cfg, "silence", "add", "--detector", "bad_rating",
                           "--until", "10m", "--reason", "r3", "--author", "carol", NULL};
        add_silence(f, id3, a);
    }
    s = stored(f, id3, NULL, 0);
    assert_string_equal(jstr(s, "author"), "carol");
    json_decref(s);

    /* list: one line per active silence with its fields. The config points
     * at port 1; -p overrides it. */
    {
        char cfg1[320];
        snprintf(cfg1, sizeof(cfg1), "%s/port1.json", f->dir);
        assert_int_equal(it_write_config(cfg1, 1, "{}"), 0);
        CTL(f, &r, "-c", cfg1, "-p", f->port, "silence", "list");
    }
    expect_status(&r, 0);
    assert_int_equal(count_lines(r.out), 3);
    expect_out(&r, id);
    expect_out(&r, "bad_rating/officer_repeated");
    expect_out(&r, "unit_id=U1");
    expect_out(&r, "officer_id=O7");
    expect_out(&r, "by tester");
    expect_out(&r, "\"training week\"");
    expect_out(&r, "fine_growth/*");
    expect_out(&r, "until 2099-01-01T00:00:00.000+08:00");
    assert_null(strstr(r.out, "[expired]"));
}

static void test_silence_expire(void **state)
{
    fixture *f = *state;
    char id[17], rawbefore[2048];
    int64_t t0, t1;
    json_t *s;
    result r;
    const char *a[] = {"-c", f->cfg, "silence", "add", "--detector", "bad_rating",
                       "--match", "unit_id=U1", "--until", "1h", "--reason", "x", NULL};

    add_silence(f, id, a);
    s = stored(f, id, rawbefore, sizeof(rawbefore));
    json_decref(s);
    CTL(f, &r, "-c", f->cfg, "silence", "list");
    expect_status(&r, 0);
    expect_out(&r, id);

    t0 = rk__wall_ms();
    CTL(f, &r, "-c", f->cfg, "silence", "expire", id);
    t1 = rk__wall_ms();
    expect_status(&r, 0);
    expect_out(&r, "expired");
    /* The record stays, with "until" now; nothing else changed. */
    assert_int_equal(it_int(f->env.c, "HLEN riskd:silences"), 1);
    s = stored(f, id, NULL, 0);
    assert_in_range(json_integer_value(json_object_get(s, "until")), t0, t1);
    {
        json_t *old = json_loads(rawbefore, 0, NULL);
        json_object_set(old, "until", json_object_get(s, "until"));
        assert_true(json_equal(old, s));
        json_decref(old);
    }
    json_decref(s);

    CTL(f, &r, "-c", f->cfg, "silence", "list");
    expect_status(&r, 0);
    assert_null(strstr(r.out, id));
    expect_out(&r, "no active silences");

    CTL(f, &r, "-c", f->cfg, "silence", "list", "--all");
    expect_status(&r, 0);
    expect_out(&r, id);
    expect_out(&r, "[expired]");
    assert_int_equal(count_lines(r.out), 1);

    /* Unknown and malformed ids fail and change nothing. */
    CTL(f, &r, "-c", f->cfg, "silence", "expire", "0123456789abcdef");
    expect_status(&r, 1);
    assert_non_null(strstr(r.err, "no silence 0123456789abcdef"));
    CTL(f, &r, "-c", f->cfg, "silence", "expire", "XYZ");
    expect_status(&r, 1);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:audit"), 2);
}

/* Field `name` of a stream entry's field list. */
static const char *entry_field(const redisReply *e, const char *name)
{
    const redisReply *fl = e->element[1];
    for (size_t k = 0; k + 1 < fl->elements; k += 2)
        if (strcmp(fl->element[k]->str, name) == 0)
            return fl->element[k + 1]->str;
    return "(absent)";
}

static void check_when(const char *when, int64_t lo, int64_t hi)
{
    int64_t t;
    size_t n = strlen(when);
    assert_int_equal(rk__parse_rfc3339(when, &t), 0);
    assert_true(n > 0 && when[n - 1] == 'Z');            /* UTC */
    assert_in_range(t, lo, hi);
}

static void test_audit(void **state)
{
    fixture *f = *state;
    char id[17], added[2048], expired[2048];
    int64_t t0 = rk__wall_ms(), t1, t2;
    redisReply *x;
    json_t *s;
    result r;
    const char *a[] = {"-c", f->cfg, "silence", "add", "--detector", "bad_rating",
                       "--until", "1h", "--reason", "audit me", "--author", "alice", NULL};

    add_silence(f, id, a);
    t1 = rk__wall_ms();
    s = stored(f, id, added, sizeof(added));
    json_decref(s);
    CTL(f, &r, "-c", f->cfg, "silence", "expire", id, "--author", "bob");
    expect_status(&r, 0);
    t2 = rk__wall_ms();
    s = stored(f, id, expired, sizeof(expired));
    json_decref(s);

    x = it_cmd(f->env.c, "XRANGE riskd:audit - +");
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->elements, 2);
    assert_int_equal(x->element[0]->element[1]->elements, 10);   /* 5 fields */
    assert_string_equal(entry_field(x->element[0], "who"), "alice");
    assert_string_equal(entry_field(x->element[0], "what"), "silence_added");
    check_when(entry_field(x->element[0], "when"), t0, t1);
    assert_string_equal(entry_field(x->element[0], "old"), "null");
    assert_string_equal(entry_field(x->element[0], "new"), added);

    assert_string_equal(entry_field(x->element[1], "who"), "bob");
    assert_string_equal(entry_field(x->element[1], "what"), "silence_expired");
    check_when(entry_field(x->element[1], "when"), t1, t2);
    assert_string_equal(entry_field(x->element[1], "old"), added);
    assert_string_equal(entry_field(x->element[1], "new"), expired);
    freeReplyObject(x);
}

static void test_silence_bad_input(void **state)
{
    fixture *f = *state;
    result r;

#define BAD(msg, ...) do { \
        CTL(f, &r, "-c", f->cfg, "silence", "add", __VA_ARGS__); \
        expect_status(&r, 1); \
        if (strstr(r.err, msg) == NULL) \
            fail_msg("stderr lacks \"%s\": %s", msg, r.err); \
    } while (0)
    BAD("not in the future", "--detector", "bad_rating", "--until",
        "2020-01-01T00:00:00Z", "--reason", "x");
    BAD("--until", "--detector", "bad_rating", "--until", "2x", "--reason", "x");
    BAD("--until", "--detector", "bad_rating", "--until", "0s", "--reason", "x");
    BAD("not a subject field", "--detector", "bad_rating", "--until", "1h",
        "--reason", "x", "--match", "score=1");
    BAD("FIELD=VALUE", "--detector", "bad_rating", "--until", "1h",
        "--reason", "x", "--match", "unit_id");
    BAD("given twice", "--detector", "bad_rating", "--until", "1h", "--reason", "x",
        "--match", "unit_id=U1", "--match", "unit_id=U2");
    BAD("needs --detector", "--until", "1h", "--reason", "x");
    BAD("needs --detector", "--detector", "bad_rating", "--until", "1h");
    BAD("--detector", "--detector", "Bad Rating", "--until", "1h", "--reason", "x");
    BAD("not an option", "--detector", "bad_rating", "--until", "1h", "--reason", "x",
        "--count", "3");
#undef BAD
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:silences"), 0);
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:audit"), 0);
}

/* ===================================================================
 * tail
 * =================================================================== */

#define ALERT1 "{\"id\":\"a1\",\"detector\":\"bad_rating\",\"rule\":\"bad_rating\"," \
    "\"severity\":\"warning\",\"ts\":\"2025-03-01T09:30:00.000+08:00\"," \
    "\"emitted_at\":\"2025-03-01T09:30:01.000+08:00\"," \
    "\"subject\":{\"task_id\":\"T1\",\"enterprise_id\":\"E1\",\"unit_id\":\"U1\"}," \
    "\"value\":1,\"threshold\":2,\"summary\":\"Task T1 was rated 1.\",\"evidence\":[]}"
#define ALERT2 "{\"id\":\"a2\",\"detector\":\"fine_growth\",\"rule\":\"growth\"," \
    "\"severity\":\"critical\",\"ts\":\"2025-03-02T10:00:00.000+08:00\"," \
    "\"emitted_at\":\"2025-03-02T10:00:01.000+08:00\",\"subject\":{\"unit_id\":\"U9\"}," \
    "\"value\":90000,\"threshold\":50000,\"summary\":\"Fines of U9 grew.\",\"evidence\":[]}"
#define ALERT3 "{\"id\":\"a3\",\"detector\":\"bad_rating\",\"rule\":\"bad_rating\"," \
    "\"severity\":\"info\",\"ts\":\"2025-03-03T08:00:00.000+08:00\"," \
    "\"emitted_at\":\"2025-03-03T08:00:01.000+08:00\",\"subject\":{\"unit_id\":\"U1\"}," \
    "\"value\":2,\"threshold\":2,\"summary\":\"Quiet \\u001b[2J one.\",\"evidence\":[]," \
    "\"silenced\":true}"
#define ALERT4 "{\"id\":\"a4\",\"detector\":\"complaint_cluster\",\"rule\":\"cluster\"," \
    "\"severity\":\"warning\",\"ts\":\"2025-03-04T08:00:00.000+08:00\"," \
    "\"emitted_at\":\"2025-03-04T08:00:01.000+08:00\",\"subject\":{\"officer_id\":\"O3\"}," \
    "\"value\":3,\"threshold\":3,\"summary\":\"Officer O3 drew 3 complaints.\",\"evidence\":[]}"

static bool xread_blocked(void *arg)
{
    fixture *f = arg;
    redisReply *r = it_cmd(f->env.c, "CLIENT LIST");
    bool found = r->type == REDIS_REPLY_STRING && strstr(r->str, "cmd=xread") != NULL;
    freeReplyObject(r);
    return found;
}

static void test_tail(void **state)
{
    fixture *f = *state;
    char id1[64], id2[64], id3[64];
    result r;

    it_xadd(f->env.c, "alerts", ALERT1, id1, sizeof(id1));
    it_xadd(f->env.c, "alerts", ALERT2, id2, sizeof(id2));
    it_xadd(f->env.c, "alerts", ALERT3, id3, sizeof(id3));

    /* One line with time, severity, detector/rule, subject and summary;
     * no colour on a pipe. */
    CTL(f, &r, "-c", f->cfg, "tail", "--from", "0", "--count", "1");
    expect_status(&r, 0);
    assert_int_equal(count_lines(r.out), 1);
    expect_out(&r, "2025-03-01T09:30:00.000+08:00");
    expect_out(&r, "WARNING");
    expect_out(&r, "bad_rating/bad_rating");
    expect_out(&r, "task_id=T1");
    expect_out(&r, "enterprise_id=E1");
    expect_out(&r, "unit_id=U1");
    expect_out(&r, "Task T1 was rated 1.");
    assert_null(strstr(r.out, "[silenced]"));
    assert_null(strchr(r.out, '\033'));

    /* --from is exclusive. */
    CTL(f, &r, "-c", f->cfg, "tail", "--from", id1, "--count", "1");
    expect_status(&r, 0);
    assert_int_equal(count_lines(r.out), 1);
    expect_out(&r, "CRITICAL");
    expect_out(&r, "fine_growth/growth");
    expect_out(&r, "unit_id=U9");

    /* Filters. */
    CTL(f, &r, "-c", f->cfg, "tail", "--from", "0", "--count", "1", "--detector",
        "fine_growth");
    expect_status(&r, 0);
    expect_out(&r, "fine_growth/growth");
    assert_null(strstr(r.out, "bad_rating"));
    CTL(f, &r, "-c", f->cfg, "tail", "--from", "0", "--count", "2", "--severity", "warning");
    expect_status(&r, 0);
    assert_int_equal(count_lines(r.out), 2);     /* a1 and a2, not the info a3 */
    expect_out(&r, "WARNING");
    expect_out(&r, "CRITICAL");
    CTL(f, &r, "-c", f->cfg, "tail", "--severity", "loud");
    expect_status(&r, 1);

    /* A silenced alert is marked; control characters are neutralised. */
    CTL(f, &r, "-c", f->cfg, "tail", "--from", id2, "--count", "1");
    expect_status(&r, 0);
    expect_out(&r, "[silenced]");
    expect_out(&r, "INFO");
    expect_out(&r, "Quiet ?[2J one.");
    assert_null(strchr(r.out, '\033'));

    /* Without --from it follows from the end: only the new alert. */
    {
        char errpath[320];
        const char *a[] = {"-c", f->cfg, "tail", "--count", "1", NULL};
        int fd;
        pid_t pid;
        snprintf(errpath, sizeof(errpath), "%s/stderr", f->dir);
        pid = spawn_ctl(NULL, 0, errpath, a, &fd);
        assert_true(pid > 0);
        assert_true(it_wait_until(xread_blocked, f, 10000));
        it_xadd(f->env.c, "alerts", ALERT4, NULL, 0);
        collect(pid, fd, errpath, &r);
        expect_status(&r, 0);
        assert_int_equal(count_lines(r.out), 1);
        expect_out(&r, "complaint_cluster/cluster");
        expect_out(&r, "officer_id=O3");
    }
}

static void test_tail_colour(void **state)
{
    fixture *f = *state;
    char id2[64];
    result r;
    const char *colour_env[] = {"NO_COLOR", NULL};
    const char *nocolour_env[] = {"NO_COLOR=1", NULL};

    it_xadd(f->env.c, "alerts", ALERT1, NULL, 0);
    it_xadd(f->env.c, "alerts", ALERT2, id2, sizeof(id2));
    it_xadd(f->env.c, "alerts", ALERT3, NULL, 0);

    /* On a terminal: warning in yellow. */
    CTL_ENV(f, &r, 1, colour_env, "-c", f->cfg, "tail", "--from", "0", "--count", "1");
    expect_status(&r, 0);
    expect_out(&r, "\033[33mWARNING\033[0m");
    /* A silenced alert is dimmed. */
    CTL_ENV(f, &r, 1, colour_env, "-c", f->cfg, "tail", "--from", id2, "--count", "1");
    expect_status(&r, 0);
    expect_out(&r, "\033[2m");
    expect_out(&r, "[silenced]");
    /* NO_COLOR turns it off even on a terminal. */
    CTL_ENV(f, &r, 1, nocolour_env, "-c", f->cfg, "tail", "--from", "0", "--count", "3");
    expect_status(&r, 0);
    expect_out(&r, "WARNING");
    assert_null(strchr(r.out, '\033'));
}

/* ===================================================================
 * status
 * =================================================================== */

static void test_status(void **state)
{
    fixture *f = *state;
    redisReply *x;
    result r;

    freeReplyObject(it_cmd(f->env.c, "XGROUP CREATE enforce:scan riskd $ MKSTREAM"));
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"clock.tick\",\"ts\":1}", NULL, 0);
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"clock.tick\",\"ts\":2}", NULL, 0);
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"clock.tick\",\"ts\":3}", NULL, 0);
    x = it_cmd(f->env.c, "XREADGROUP GROUP riskd c1 COUNT 1 STREAMS enforce:scan >");
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    freeReplyObject(x);
    it_xadd(f->env.c, "alerts", ALERT1, NULL, 0);
    it_xadd(f->env.c, "alerts", ALERT2, NULL, 0);
    freeReplyObject(it_cmd(f->env.c, "SET riskd:state abcde"));

    CTL(f, &r, "-c", f->cfg, "status");
    expect_status(&r, 0);
    expect_out(&r, "PONG");
    expect_out(&r, "input enforce:scan: length 3");
    expect_out(&r, "group riskd (riskd's): consumers 1, pending 1, lag 2");
    expect_out(&r, "input enforce:case: missing");
    expect_out(&r, "alert stream alerts: 2 entries");
    expect_out(&r, "dead-letter stream riskd:dead: 0 entries");
    expect_out(&r, "checkpoint riskd:state: 5 bytes");
    expect_out(&r, "lease riskd:state:lease: free (no epoch yet)");
    expect_out(&r, "members: none");
    expect_out(&r, "metrics: off");
    assert_null(strchr(r.out, '\033'));

    /* Acknowledge and read the rest: the numbers follow. */
    freeReplyObject(it_cmd(f->env.c, "XREADGROUP GROUP riskd c1 COUNT 10 STREAMS enforce:scan >"));
    CTL(f, &r, "-c", f->cfg, "status");
    expect_status(&r, 0);
    expect_out(&r, "pending 3, lag 0");
    freeReplyObject(it_cmd(f->env.c, "DEL riskd:state"));
    CTL(f, &r, "-c", f->cfg, "status");
    expect_out(&r, "checkpoint riskd:state: missing");
    /* A lease held by c1 under epoch 3, and c1 a member. */
    freeReplyObject(it_cmd(f->env.c, "SET riskd:state:lease %s PX 60000", "c1 held"));
    freeReplyObject(it_cmd(f->env.c, "SET riskd:state:epoch 3"));
    freeReplyObject(it_cmd(f->env.c, "ZADD riskd:state:members 99999999999999 c1"));
    CTL(f, &r, "-c", f->cfg, "status");
    expect_out(&r, "lease riskd:state:lease: held by c1 (epoch 3, ");
    expect_out(&r, " ms left)");
    expect_out(&r, "members: c1");

    /* Redis unreachable: exit 2, whatever the command. */
    {
        char p[16];
        snprintf(p, sizeof(p), "%d", it_free_port());
        CTL(f, &r, "-c", f->cfg, "-p", p, "status");
        expect_status(&r, 2);
        assert_non_null(strstr(r.err, "cannot connect to Redis"));
        CTL(f, &r, "-c", f->cfg, "-p", p, "tail", "--count", "1");
        expect_status(&r, 2);
        CTL(f, &r, "-c", f->cfg, "-p", p, "silence", "list");
        expect_status(&r, 2);
        assert_non_null(strstr(r.err, "cannot connect to Redis"));
    }
}

static bool group_exists(void *arg)
{
    fixture *f = arg;
    redisReply *r = it_cmd(f->env.c, "XINFO GROUPS enforce:scan");
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
    freeReplyObject(r);
    return ok;
}

static void start_riskd(fixture *f, const char *json)
{
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, json) != 0)
        fail_msg("cannot start riskd");
    if (!it_wait_until(group_exists, f, 15000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not start consuming");
    }
}

static void test_status_metrics(void **state)
{
    fixture *f = *state;
    char json[128];
    result r;
    int i;

    snprintf(json, sizeof(json), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"}}",
             it_free_port());
    start_riskd(f, json);
    /* riskd_up becomes 1 once both connections are up and it consumes. */
    for (i = 0; i < 100; i++) {
        CTL(f, &r, "-c", f->env.riskd.cfg, "status");
        if (r.status == 0)
            break;
        it_sleep_ms(100);
    }
    expect_status(&r, 0);
    expect_out(&r, "group riskd (riskd's): consumers 1, pending 0, lag 0");
    expect_out(&r, "riskd_up                       1\n");
    expect_out(&r, "riskd_alerts_written_total     0\n");
    expect_out(&r, "riskd_watermark_seconds");
    expect_out(&r, "riskd_checkpoint_age_seconds");

    /* riskd gone: the report says its endpoint is unreachable; Redis
     * answered, so the command did its job: exit 0 (2 is for Redis). */
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    CTL(f, &r, "-c", f->env.riskd.cfg, "status");
    expect_status(&r, 0);
    expect_out(&r, "unreachable");
}

/* ===================================================================
 * End to end: a silence hides an alert, then, expired, stops hiding
 * =================================================================== */

#define BAD_RATING(task, unit, ts) \
    "{\"type\":\"inspection.rated\",\"ts\":\"" ts "\",\"task_id\":\"" task "\"," \
    "\"enterprise_id\":\"E1\",\"unit_id\":\"" unit "\",\"score\":1}"

/* Poll riskctl status until its output holds text (10 s). */
static void wait_status(fixture *f, const char *text)
{
    result r;
    for (int i = 0; i < 100; i++) {
        CTL(f, &r, "-c", f->env.riskd.cfg, "status");
        if (strstr(r.out, text) != NULL)
            return;
        it_sleep_ms(100);
    }
    it_riskd_dump_log(&f->env.riskd);
    fail_msg("riskctl status never showed \"%s\":\n%s%s", text, r.out, r.err);
}

/* The next message on the subscribed connection, parsed as an alert. */
static json_t *next_published(redisContext *sub)
{
    void *rep = NULL;
    redisReply *m;
    json_t *a;
    assert_int_equal(redisGetReply(sub, &rep), REDIS_OK);
    m = rep;
    assert_int_equal(m->type, REDIS_REPLY_ARRAY);
    assert_int_equal(m->elements, 3);
    assert_string_equal(m->element[0]->str, "message");
    a = json_loads(m->element[2]->str, 0, NULL);
    freeReplyObject(m);
    assert_non_null(a);
    return a;
}

static void test_silence_end_to_end(void **state)
{
    fixture *f = *state;
    struct timeval tv = {20, 0};
    redisContext *sub;
    json_t *alerts, *a;
    char id[17], json[128];
    result r;

    snprintf(json, sizeof(json), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"}}",
             it_free_port());
    start_riskd(f, json);
    sub = it_connect(f->env.redis.port);
    redisSetTimeout(sub, tv);
    freeReplyObject(it_cmd(sub, "SUBSCRIBE alerts:bad_rating"));

    {
        const char *args[] = {"-c", f->env.riskd.cfg, "silence", "add", "--detector",
                              "bad_rating", "--match", "unit_id=U1", "--until", "1h",
                              "--reason", "known issue", NULL};
        add_silence(f, id, args);
    }
    /* riskd re-reads the hash every second: wait until it knows it. */
    wait_status(f, "riskd_silences                 1\n");

    /* U1: written with "silenced": true, not published. */
    it_xadd(f->env.c, "enforce:scan", BAD_RATING("T1", "U1", "2025-03-01T09:00:00+08:00"), NULL, 0);
    if (!it_wait_xlen(f->env.c, "alerts", 1, 15000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("no alert for the U1 rating");
    }
    alerts = it_alerts(f->env.c, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    a = json_array_get(alerts, 0);
    assert_string_equal(jstr(json_object_get(a, "subject"), "unit_id"), "U1");
    assert_true(json_is_true(json_object_get(a, "silenced")));
    /* It says which silence, is firing and open like any other alert. */
    assert_string_equal(jstr(a, "silenced_by"), id);
    assert_string_equal(jstr(a, "status"), "firing");
    {
        redisReply *o = it_cmd(f->env.c, "HGET riskd:open %s", jstr(a, "id"));
        assert_int_equal(o->type, REDIS_REPLY_STRING);
        json_t *oa = json_loads(o->str, 0, NULL);
        assert_true(json_equal(oa, a));
        json_decref(oa);
        freeReplyObject(o);
    }
    json_decref(alerts);
    wait_status(f, "riskd_alerts_silenced_total    1\n");
    /* silence list counts the alert the silence matched. */
    CTL(f, &r, "-c", f->env.riskd.cfg, "silence", "list");
    expect_status(&r, 0);
    expect_out(&r, "matched 1\n");

    /* U2: not matched, published. Being the first message on the channel
     * shows that the U1 alert (written before it) was not published. */
    it_xadd(f->env.c, "enforce:scan", BAD_RATING("T2", "U2", "2025-03-01T09:01:00+08:00"), NULL, 0);
    a = next_published(sub);
    assert_string_equal(jstr(json_object_get(a, "subject"), "unit_id"), "U2");
    assert_null(json_object_get(a, "silenced"));
    assert_null(json_object_get(a, "silenced_by"));
    assert_string_equal(jstr(a, "status"), "firing");
    json_decref(a);

    /* tail shows both, the first marked. */
    CTL(f, &r, "-c", f->env.riskd.cfg, "tail", "--from", "0", "--count", "2");
    expect_status(&r, 0);
    expect_out(&r, "[silenced] bad_rating/bad_rating");
    {
        const char *line2 = strchr(r.out, '\n');
        assert_non_null(line2);
        assert_null(strstr(line2, "[silenced]"));
        assert_non_null(strstr(line2, "unit_id=U2"));
    }

    /* Expired: the next U1 rating is published again. */
    CTL(f, &r, "-c", f->env.riskd.cfg, "silence", "expire", id);
    expect_status(&r, 0);
    /* The expired record stays in the hash, so riskd_silences stays 1;
     * give riskd time for at least two re-reads. */
    it_sleep_ms(3000);
    it_xadd(f->env.c, "enforce:scan", BAD_RATING("T3", "U1", "2025-03-01T09:02:00+08:00"), NULL, 0);
    a = next_published(sub);
    assert_string_equal(jstr(json_object_get(a, "subject"), "unit_id"), "U1");
    assert_string_equal(jstr(json_object_get(a, "subject"), "task_id"), "T3");
    assert_null(json_object_get(a, "silenced"));
    json_decref(a);
    alerts = it_alerts(f->env.c, "alerts");
    assert_int_equal(json_array_size(alerts), 3);
    assert_null(json_object_get(json_array_get(alerts, 2), "silenced"));
    json_decref(alerts);
    /* Still one match: the U2 and late U1 alerts were not silenced. */
    CTL(f, &r, "-c", f->env.riskd.cfg, "silence", "list", "--all");
    expect_status(&r, 0);
    expect_out(&r, "matched 1  [expired]\n");
    redisFree(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_add_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_colour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_end_to_end, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
