/* tests/integration/test-ops.c - what an operator relies on, against a real
 * redis-server with riskd as a child process:
 *
 *  - the systemd notify protocol: the test binds an AF_UNIX datagram socket,
 *    starts riskd with NOTIFY_SOCKET and WATCHDOG_USEC in its environment
 *    (set in this process just around the fork, which the child inherits)
 *    and checks the datagrams: READY=1 with STATUS= once consuming (and not
 *    before Redis answers), WATCHDOG=1 at half the interval, RELOADING=1 then
 *    READY=1 around SIGHUP, STOPPING=1 on SIGTERM, exit 0; WATCHDOG_PID of
 *    another process turns the pings off;
 *  - journald priority prefixes: JOURNAL_STREAM naming the device and inode
 *    of the file riskd's stderr goes to gives "<N>" lines, anything else
 *    gives RFC 3339 timestamps;
 *  - SIGHUP loads a plugin added to "plugins" and unloads a removed one;
 *  - the least-privilege Redis user of riskd(8), SECURITY (LEAST_PRIV_ACL
 *    below, the same text): riskd runs the whole pipeline under it (alerts,
 *    the channel, dead letters, checkpoints, acknowledgements, the restart
 *    paths with XAUTOCLAIM / XPENDING / HGET / HSET / DEL), Redis logs no
 *    refusal for it in ACL LOG, and commands outside the rule are refused.
 *
 * Every wait is a poll with a timeout; the only fixed sleeps are the short
 * "nothing more arrives" windows of negative checks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"

/* The rule riskd(8), SECURITY, "Least-privilege Redis user", documents, for
 * the default key names; "PASSWORD" is replaced by the test's password. */
#define LEAST_PRIV_ACL \
    "riskd on >PASSWORD resetkeys ~enforce:scan ~enforce:case ~alerts " \
    "~riskd:alert:* ~riskd:deadseen:* ~riskd:dead ~riskd:state ~riskd:state:suspect ~riskd:state:epoch ~riskd:state:lease ~riskd:state:members ~riskd:state:clock " \
    "~riskd:audit ~riskd:open ~riskd:silence_hits %R~riskd:silences %R~riskd:lists:* ~riskd:ind:* " \
    "resetchannels &alerts:* -@all +select +xgroup|create +xgroup|setid +xreadgroup +xread +xautoclaim " \
    "+xpending +xack +xinfo|groups +get +set +del +exists +incr +incrby +watch +multi +exec +hget +hset +hdel +hincrby +hgetall +hvals +pexpire +zadd +zrange +zremrangebyscore +zrem +time +script|load " \
    "+eval +evalsha +xadd +publish +xrange +xrevrange"

#define MAX_MSGS 4096

typedef struct msg {
    int64_t at;                     /* CLOCK_MONOTONIC ms when received */
    char text[512];
} msg;

typedef struct fixture {
    it_env env;                     /* redis-server, client, riskd */
    char dir[256];                  /* our own temp dir */
    char sock[300];                 /* the notify socket's path */
    int fd;                         /* the notify socket, or -1 */
    msg *msgs;                      /* every datagram received, in order */
    size_t n_msgs;
    int seq;
} fixture;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->fd = -1;
    if (it_tmpdir(f->dir, sizeof(f->dir), "ops") != 0 || it_env_start(&f->env) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    it_env_stop(&f->env);           /* riskd first: then its files can go */
    if (f->fd >= 0)
        close(f->fd);
    if (f->sock[0] != '\0')
        unlink(f->sock);
    if (strcmp(f->env.riskd.dir, f->dir) == 0) {
        unlink(f->env.riskd.cfg);
        unlink(f->env.riskd.log);
    }
    rmdir(f->dir);
    free(f->msgs);
    free(f);
    return 0;
}

static void must(fixture *f, bool ok, const char *what)
{
    if (!ok) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("%s", what);
    }
}

static void start(fixture *f, const char *cfg)
{
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
}

/* Count the lines of riskd's log that contain text. */
static int log_count(const it_riskd *d, const char *text)
{
    FILE *fp = fopen(d->log, "r");
    char line[4096];
    int n = 0;
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp))
        n += strstr(line, text) != NULL;
    fclose(fp);
    return n;
}

/* Wait until riskd's log has at least n lines containing text. */
static bool wait_log(const it_riskd *d, const char *text, int n, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (log_count(d, text) < n) {
        if (mono_ms() >= end)
            return false;
        it_sleep_ms(20);
    }
    return true;
}

/* ===================================================================
 * The notify socket
 * =================================================================== */

/* Bind the datagram socket f->dir/notify.sock. */
static void notify_bind(fixture *f)
{
    struct sockaddr_un sa;
    int n = snprintf(f->sock, sizeof(f->sock), "%s/notify.sock", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof(sa.sun_path));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, f->sock, (size_t)n);
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    f->msgs = calloc(MAX_MSGS, sizeof(*f->msgs));
    assert_non_null(f->msgs);
}

/* Receive datagrams into f->msgs for up to timeout_ms. Returns when a
 * datagram containing want arrives (want NULL: never), true in that case. */
static bool notify_recv(fixture *f, const char *want, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {f->fd, POLLIN, 0};
        int64_t left = end - mono_ms();
        ssize_t n;
        msg *m;
        if (left <= 0)
            return false;
        if (poll(&p, 1, (int)left) <= 0)
            continue;               /* timeout (checked above) or EINTR */
        assert_true(f->n_msgs < MAX_MSGS);
        m = &f->msgs[f->n_msgs];
        n = recv(f->fd, m->text, sizeof(m->text) - 1, 0);
        if (n < 0)
            continue;
        m->text[n] = '\0';
        m->at = mono_ms();
        f->n_msgs++;
        if (want != NULL && strstr(m->text, want) != NULL)
            return true;
    }
}

/* The number of datagrams from index from on that contain text. */
static int count_msgs(const fixture *f, size_t from, const char *text)
{
    int n = 0;
    for (size_t i = from; i < f->n_msgs; i++)
        n += strstr(f->msgs[i].text, text) != NULL;
    return n;
}

/* The datagrams from index from on that are not watchdog pings, one per
 * line with '\n' inside a datagram shown as '|', for exact comparison. */
static void state_msgs(const fixture *f, size_t from, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = from; i < f->n_msgs && len + 1 < outlen; i++) {
        if (strcmp(f->msgs[i].text, "WATCHDOG=1") == 0)
            continue;
        for (const char *p = f->msgs[i].text; *p != '\0' && len + 2 < outlen; p++)
            out[len++] = *p == '\n' ? '|' : *p;
        out[len++] = '\n';
        out[len] = '\0';
    }
}

/* Start riskd with NOTIFY_SOCKET (and WATCHDOG_USEC when wd_usec is not
 * NULL, WATCHDOG_PID when wd_pid is not NULL) in its environment only. */
static void start_notified(fixture *f, const char *cfg, const char *wd_usec, const char *wd_pid)
{
    setenv("NOTIFY_SOCKET", f->sock, 1);
    if (wd_usec != NULL)
        setenv("WATCHDOG_USEC", wd_usec, 1);
    else
        unsetenv("WATCHDOG_USEC");
    if (wd_pid != NULL)
        setenv("WATCHDOG_PID", wd_pid, 1);
    else
        unsetenv("WATCHDOG_PID");
    start(f, cfg);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* READY once consuming, watchdog pings at half of WATCHDOG_USEC, RELOADING
 * and READY around SIGHUP, STOPPING on SIGTERM, exit 0. */
static void test_notify_protocol(void **state)
{
    fixture *f = *state;
    char seen[4096];
    size_t mark;
    int64_t t0;
    int pings;

    notify_bind(f);
    start_notified(f, "{}", "200000", NULL);
    must(f, notify_recv(f, "READY=1", 10000), "READY=1 within 10 s");
    must(f, it_log_contains(&f->env.riskd, "consuming"), "READY=1 comes once consuming");
    state_msgs(f, 0, seen, sizeof(seen));
    assert_string_equal(seen, "READY=1|STATUS=consuming\n");

    /* 200 ms watchdog: a ping every 100 ms. */
    mark = f->n_msgs;
    t0 = mono_ms();
    notify_recv(f, NULL, 1000);
    pings = count_msgs(f, mark, "WATCHDOG=1");
    if (pings < 3 || pings > 20)
        fail_msg("%d WATCHDOG=1 pings in %lld ms, expected about 10", pings,
                 (long long)(mono_ms() - t0));
    state_msgs(f, mark, seen, sizeof(seen));
    assert_string_equal(seen, "");  /* READY=1 was sent once */

    mark = f->n_msgs;
    it_riskd_signal(&f->env.riskd, SIGHUP);
    must(f, notify_recv(f, "READY=1", 5000), "READY=1 after SIGHUP");
    state_msgs(f, mark, seen, sizeof(seen));
    assert_string_equal(seen, "RELOADING=1|STATUS=reloading\nREADY=1|STATUS=consuming\n");
    must(f, it_log_contains(&f->env.riskd, "configuration reloaded"), "reload logged");

    mark = f->n_msgs;
    it_riskd_signal(&f->env.riskd, SIGTERM);
    must(f, notify_recv(f, "STOPPING=1", 5000), "STOPPING=1 after SIGTERM");
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    notify_recv(f, NULL, 100);      /* anything still queued */
    state_msgs(f, mark, seen, sizeof(seen));
    assert_string_equal(seen, "STOPPING=1|STATUS=stopping\n");
}

/* A manager that never reads its notify socket: the queue fills (at most
 * /proc/sys/net/unix/max_dgram_qlen datagrams, 512 by default; a 2 ms
 * watchdog pings every millisecond) and a blocking send would freeze the
 * loop - no signal handled, no entry read. riskd drops what the socket
 * cannot take, says so once, and goes on: it still stops on SIGTERM. */
static void test_notify_never_read(void **state)
{
    fixture *f = *state;
    notify_bind(f);                 /* bound, and never read below */
    start_notified(f, "{}", "2000", NULL);
    it_sleep_ms(2000);              /* > 1,000 pings: well past a full queue */
    assert_true(it_riskd_alive(&f->env.riskd));
    it_riskd_signal(&f->env.riskd, SIGTERM);
    must(f, it_riskd_wait(&f->env.riskd, 10000) == 0, "SIGTERM handled: the loop turns");
    assert_int_equal(it_log_count(&f->env.riskd, "notify socket"), 1);  /* said once */
}

/* With Redis down riskd is not ready (the watchdog still pings: the loop
 * turns); READY=1 follows once Redis comes up. */
static void test_notify_ready_waits_for_redis(void **state)
{
    fixture *f = *state;
    notify_bind(f);
    it_redis_stop(&f->env.redis);
    start_notified(f, "{}", "200000", NULL);
    assert_false(notify_recv(f, "READY=1", 1500));
    assert_true(count_msgs(f, 0, "WATCHDOG=1") >= 3);
    assert_true(it_riskd_alive(&f->env.riskd));
    assert_int_equal(it_redis_restart(&f->env.redis), 0);
    must(f, notify_recv(f, "READY=1", 15000), "READY=1 once Redis is up");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

/* WATCHDOG_PID naming another process: the watchdog is not riskd's, no
 * pings; no WATCHDOG_USEC: no pings either. */
static void test_notify_watchdog_other_pid(void **state)
{
    fixture *f = *state;
    char pid[32];
    notify_bind(f);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());   /* not riskd's */
    start_notified(f, "{}", "200000", pid);
    must(f, notify_recv(f, "READY=1", 10000), "READY=1");
    notify_recv(f, NULL, 600);
    assert_int_equal(count_msgs(f, 0, "WATCHDOG=1"), 0);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);

    f->n_msgs = 0;
    start_notified(f, "{}", NULL, NULL);
    must(f, notify_recv(f, "READY=1", 10000), "READY=1 without a watchdog");
    notify_recv(f, NULL, 600);
    assert_int_equal(count_msgs(f, 0, "WATCHDOG=1"), 0);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

/* ===================================================================
 * journald priority prefixes
 * =================================================================== */

#define BAD_ENTRY "{\"type\":\"inspection.rated\""      /* truncated JSON */

/* Start riskd with JOURNAL_STREAM = js (NULL: unset) and its stderr going to
 * a log file of its own that exists before the start. When js is "match"
 * the value is the file's "<dev>:<ino>". */
static void start_journal(fixture *f, const char *js)
{
    char buf[64];
    struct stat st;
    int fd;
    memset(&f->env.riskd, 0, sizeof(f->env.riskd));
    snprintf(f->env.riskd.dir, sizeof(f->env.riskd.dir), "%s", f->dir);
    snprintf(f->env.riskd.cfg, sizeof(f->env.riskd.cfg), "%s/riskd.json", f->dir);
    snprintf(f->env.riskd.log, sizeof(f->env.riskd.log), "%s/riskd.log", f->dir);
    unlink(f->env.riskd.log);
    fd = open(f->env.riskd.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    close(fd);
    if (js != NULL && strcmp(js, "match") == 0) {
        snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        js = buf;
    }
    if (js != NULL)
        setenv("JOURNAL_STREAM", js, 1);
    else
        unsetenv("JOURNAL_STREAM");
    start(f, "{}");
    unsetenv("JOURNAL_STREAM");
}

/* Run riskd until it has logged a warning (an invalid entry), stop it and
 * return its log's lines, NUL-separated in out, as a count. */
static int run_and_read_log(fixture *f, char lines[][512], int max)
{
    FILE *fp;
    int n = 0;
    char id[64];
    must(f, wait_log(&f->env.riskd, "consuming", 1, 10000), "consuming");
    it_xadd(f->env.c, "enforce:scan", BAD_ENTRY, id, sizeof(id));
    must(f, wait_log(&f->env.riskd, "invalid entry", 1, 10000), "invalid entry logged");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    fp = fopen(f->env.riskd.log, "r");
    assert_non_null(fp);
    while (n < max && fgets(lines[n], 512, fp) != NULL) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    fclose(fp);
    return n;
}

static bool any_line(char lines[][512], int n, const char *prefix, const char *text)
{
    for (int i = 0; i < n; i++)
        if (strncmp(lines[i], prefix, strlen(prefix)) == 0 && strstr(lines[i], text))
            return true;
    return false;
}

/* JOURNAL_STREAM matches stderr: "<N>message" lines. */
static void test_journal_prefixes(void **state)
{
    fixture *f = *state;
    static char lines[64][512];
    int n, i;
    start_journal(f, "match");
    n = run_and_read_log(f, lines, 64);
    assert_true(n >= 4);
    if (strncmp(lines[0], "<5>riskd 0.1.0 starting (config ", 32) != 0)
        fail_msg("first line: %s", lines[0]);
    for (i = 0; i < n; i++)
        if (lines[i][0] != '<' || lines[i][1] < '3' || lines[i][1] > '7' || lines[i][2] != '>')
            fail_msg("line %d has no priority prefix: %s", i + 1, lines[i]);
    assert_true(any_line(lines, n, "<6>", "connected"));
    assert_true(any_line(lines, n, "<6>", "consuming enforce:scan and enforce:case as riskd/"));
    assert_true(any_line(lines, n, "<4>", "invalid entry enforce:scan/"));
    assert_true(any_line(lines, n, "<5>", "SIGTERM: stopping"));
}

/* No JOURNAL_STREAM, or one naming another file: RFC 3339 timestamps. */
static void test_journal_timestamps(void **state)
{
    fixture *f = *state;
    static char lines[64][512];
    const char *variants[] = {NULL, "1:1", "garbage"};
    regex_t re;
    int n, i;
    size_t v;
    assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                             "(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}) "
                             "(DEBUG|INFO|NOTICE|WARNING|ERR) [^ ]", REG_EXTENDED | REG_NOSUB), 0);
    for (v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        start_journal(f, variants[v]);
        n = run_and_read_log(f, lines, 64);
        assert_true(n >= 4);
        for (i = 0; i < n; i++)
            if (regexec(&re, lines[i], 0, NULL, 0) != 0) {
                regfree(&re);
                fail_msg("JOURNAL_STREAM=%s: line %d is not '<RFC 3339> LEVEL message': %s",
                         variants[v] ? variants[v] : "(unset)", i + 1, lines[i]);
            }
        assert_non_null(strstr(lines[0], " NOTICE riskd 0.1.0 starting (config "));
        assert_true(any_line(lines, n, "", " WARNING invalid entry enforce:scan/"));
    }
    regfree(&re);
}

/* ===================================================================
 * Reload adds and removes a plugin
 * =================================================================== */

/* A filing with one officer, a minute after the previous one. */
static void one_officer_filing(fixture *f)
{
    char ev[256];
    f->seq++;
    snprintf(ev, sizeof(ev), "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"T%d\","
             "\"unit_id\":\"U1\",\"officers\":[\"O1\"],\"enterprise_id\":\"E%d\"}",
             1740793800000LL + f->seq * 60000LL, f->seq, f->seq);
    it_xadd(f->env.c, "enforce:scan", ev, NULL, 0);
}

static long long detector_count(fixture *f, const char *detector)
{
    json_t *alerts = it_alerts(f->env.c, "alerts"), *a;
    size_t i;
    long long n = 0;
    json_array_foreach(alerts, i, a)
        if (strcmp(json_string_value(json_object_get(a, "detector")), detector) == 0)
            n++;
    json_decref(alerts);
    return n;
}

static void reload(fixture *f, const char *cfg, int nth)
{
    assert_int_equal(it_write_config(f->env.riskd.cfg, f->env.redis.port, cfg), 0);
    it_riskd_signal(&f->env.riskd, SIGHUP);
    must(f, wait_log(&f->env.riskd, "configuration reloaded", nth, 10000), "configuration reloaded");
}

static void test_reload_plugins(void **state)
{
    fixture *f = *state;
    char with[512];
    const char *without = "{\"state\":{\"interval\":\"200ms\"}}";
    snprintf(with, sizeof(with), "{\"plugins\":[\"%s/plugins/two_officers.so\"],"
             "\"state\":{\"interval\":\"200ms\"}}", it_build_dir());

    start(f, without);
    one_officer_filing(f);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "filing 1 applied");
    assert_int_equal(detector_count(f, "two_officers"), 0);

    reload(f, with, 1);
    one_officer_filing(f);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "filing 2 applied");
    must(f, it_wait_xlen(f->env.c, "alerts", 1, 10000), "an alert for filing 2");
    assert_int_equal(detector_count(f, "two_officers"), 1);
    {
        json_t *alerts = it_alerts(f->env.c, "alerts");
        json_t *a = json_array_get(alerts, 0);
        assert_string_equal(json_string_value(json_object_get(a, "rule")), "too_few_officers");
        assert_string_equal(json_string_value(json_object_get(json_object_get(a, "subject"),
                                                              "task_id")), "T2");
        json_decref(alerts);
    }

    reload(f, without, 2);
    one_officer_filing(f);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "filing 3 applied");
    it_sleep_ms(300);               /* an alert would be written before the ack */
    assert_int_equal(detector_count(f, "two_officers"), 1);
    assert_true(it_riskd_alive(&f->env.riskd));

    /* And back again: the plugin loads a second time from the same path. */
    reload(f, with, 3);
    one_officer_filing(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "an alert for filing 4");
    assert_int_equal(detector_count(f, "two_officers"), 2);
    assert_int_equal(log_count(&f->env.riskd, "reload refused"), 0);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

/* ===================================================================
 * Least-privilege Redis user
 * =================================================================== */

#define ACL_PASSWORD "s3cret-riskd"

/* ACL SETUSER with rule split at spaces, PASSWORD replaced. */
static void acl_setuser(redisContext *c, const char *rule)
{
    char buf[1024], *save = NULL, *tok;
    const char *argv[64];
    int argc = 0;
    redisReply *r;

    snprintf(buf, sizeof(buf), "%s", rule);
    argv[argc++] = "ACL";
    argv[argc++] = "SETUSER";
    for (tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        assert_true(argc < 64);
        if (strcmp(tok, ">PASSWORD") == 0)
            tok = (char *)">" ACL_PASSWORD;
        argv[argc++] = tok;
    }
    r = redisCommandArgv(c, argc, argv, NULL);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("ACL SETUSER: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
}

/* A connection authenticated as the riskd user. */
static redisContext *connect_as_riskd(int port)
{
    redisContext *c = it_connect(port);
    redisReply *r = it_cmd(c, "AUTH riskd %s", ACL_PASSWORD);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return c;
}

/* The reply to a command run as riskd must be a NOPERM error (or, from
 * inside a script, Redis 7.0's "can't run this command"). */
static void refused(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_ERROR || (strncmp(r->str, "NOPERM", 6) != 0 &&
                                         strstr(r->str, "can't run this command") == NULL))
        fail_msg("%s: expected NOPERM, got type %d %s", fmt, r->type,
                 r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS ? r->str : "");
    freeReplyObject(r);
}

/* The number of entries in ACL LOG (denials since ACL LOG RESET); with
 * show, the latest is printed. */
static long long acl_log_len(redisContext *c, bool show)
{
    redisReply *r = it_cmd(c, "ACL LOG");
    long long n = r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    if (n > 0 && show) {
        /* say what was refused: element 0 is a flat field/value list */
        redisReply *e = r->element[0];
        for (size_t k = 0; k + 1 < e->elements; k += 2)
            if (e->element[k + 1]->type == REDIS_REPLY_STRING)
                fprintf(stderr, "ACL LOG: %s = %s\n", e->element[k]->str, e->element[k + 1]->str);
    }
    freeReplyObject(r);
    return n;
}

static bool suspect_set(void *arg)
{
    fixture *f = arg;
    return it_int(f->env.c, "HEXISTS riskd:state:suspect enforce:scan") == 1;
}

static bool suspect_gone(void *arg)
{
    fixture *f = arg;
    return it_int(f->env.c, "EXISTS riskd:state:suspect") == 0;
}

/* A bad rating of officer O7 (unit U1), a minute after the previous. */
static void bad_rating(fixture *f)
{
    char ev[256];
    f->seq++;
    snprintf(ev, sizeof(ev), "{\"type\":\"inspection.rated\",\"ts\":%lld,\"task_id\":\"T%d\","
             "\"enterprise_id\":\"E%d\",\"unit_id\":\"U1\",\"officers\":[\"O7\"],\"score\":1}",
             1740793800000LL + f->seq * 60000LL, f->seq, f->seq);
    it_xadd(f->env.c, "enforce:scan", ev, NULL, 0);
}

/* riskd under LEAST_PRIV_ACL (and redis.db 3, so SELECT is exercised):
 * alert + channel, dead letter, checkpoint and acks; two kill -9 restarts
 * with entries pending take the XAUTOCLAIM / XPENDING / HGET / HSET path
 * and then the careful resume (DEL of the suspect hash); SIGTERM exits 0.
 * Redis refused riskd nothing (ACL LOG stays empty); outside the rule the
 * user is refused. */
static void test_least_privilege_acl(void **state)
{
    fixture *f = *state;
    redisContext *sub, *u;
    redisReply *r;
    void *rep = NULL;
    const char *fast = "{\"redis\":{\"username\":\"riskd\",\"password\":\"" ACL_PASSWORD "\","
                       "\"db\":3},\"state\":{\"interval\":\"200ms\"}}";
    const char *slow = "{\"redis\":{\"username\":\"riskd\",\"password\":\"" ACL_PASSWORD "\","
                       "\"db\":3},\"state\":{\"interval\":\"1h\"}}";

    acl_setuser(f->env.c, LEAST_PRIV_ACL);
    freeReplyObject(it_cmd(f->env.c, "ACL LOG RESET"));
    freeReplyObject(it_cmd(f->env.c, "SELECT 3"));
    sub = it_connect(f->env.redis.port);
    r = it_cmd(sub, "SUBSCRIBE alerts:bad_rating");
    freeReplyObject(r);

    /* The pipeline: an alert (stream + channel), a dead letter, acks after
     * a checkpoint. */
    start(f, fast);
    bad_rating(f);
    it_xadd(f->env.c, "enforce:case", BAD_ENTRY, NULL, 0);
    must(f, it_wait_xlen(f->env.c, "alerts", 1, 10000), "the bad_rating alert");
    must(f, it_wait_xlen(f->env.c, "riskd:dead", 1, 10000), "the dead letter");
    assert_int_equal(redisGetReply(sub, &rep), REDIS_OK);   /* 2 s timeout */
    r = rep;
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->str, "message");
    assert_string_equal(r->element[1]->str, "alerts:bad_rating");
    assert_non_null(strstr(r->element[2]->str, "\"rule\":\"bad_rating\""));
    freeReplyObject(r);
    redisFree(sub);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "scan acknowledged");
    must(f, it_wait_drained(f->env.c, "enforce:case", "riskd", 10000), "case acknowledged");
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:state"), 1);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);

    /* Restarts with pending entries: the suspect bookkeeping. */
    start(f, slow);
    bad_rating(f);
    must(f, it_wait_xlen(f->env.c, "alerts", 2, 10000), "the 2nd bad_rating alert");
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 5000);
    start(f, slow);                 /* XPENDING, HGET, HSET "<id> 1" */
    must(f, it_wait_until(suspect_set, f, 10000), "suspect recorded (HSET)");
    must(f, wait_log(&f->env.riskd, "consuming enforce", 3, 10000), "consuming again");
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 5000);
    start(f, slow);                 /* HGET -> 2 starts: careful, then DEL */
    must(f, wait_log(&f->env.riskd, "restarted 1 times without getting past", 1, 10000),
         "careful resume");
    must(f, it_wait_until(suspect_gone, f, 10000), "suspect forgotten (DEL)");
    bad_rating(f);                  /* the 3rd: officer_repeated too */
    must(f, it_wait_xlen(f->env.c, "alerts", 4, 10000), "3rd bad_rating + officer_repeated");
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 2000), "acknowledged at stop");
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 4);
    assert_int_equal(it_int(f->env.c, "XLEN riskd:dead"), 1);

    /* Nothing riskd did was refused. */
    assert_int_equal(acl_log_len(f->env.c, true), 0);
    assert_int_equal(log_count(&f->env.riskd, "NOPERM"), 0);
    assert_int_equal(log_count(&f->env.riskd, "failed"), 0);

    /* Outside the rule: other commands, keys and channels. */
    u = connect_as_riskd(f->env.redis.port);
    refused(u, "FLUSHALL");
    refused(u, "KEYS *");
    refused(u, "CONFIG GET maxmemory");
    refused(u, "XGROUP DESTROY enforce:scan riskd");
    refused(u, "XTRIM alerts MAXLEN 0");
    refused(u, "EVAL %s 0", "return redis.call('FLUSHALL')");   /* a script has the user's rights */
    refused(u, "SCRIPT FLUSH");
    refused(u, "GET %s", "session:42");
    refused(u, "SET %s %s", "enforce:other", "x");
    refused(u, "PUBLISH %s %s", "news", "x");
    refused(u, "SUBSCRIBE %s", "alerts:bad_rating");
    /* ...while the rule itself works for the user. */
    r = it_cmd(u, "SELECT 3");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = it_cmd(u, "GET riskd:state");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    redisFree(u);
    assert_true(acl_log_len(f->env.c, false) > 0);
}

/* An ACL gap met inside the publish script must not lose the alert. The
 * script used to SET NX the dedupe key first; when the user may not XADD
 * (or PUBLISH to the channel) the script failed after that SET, which a Lua
 * error does not undo, so the retry found the id "already written" and the
 * alert was in neither the stream nor the channel. The script now checks the
 * rights first (redis.acl_check_cmd): nothing is taken as written while the
 * user lacks a right, and once the ACL is fixed the retried alert lands
 * exactly once. */
static void test_acl_gap_does_not_lose_alerts(void **state)
{
    fixture *f = *state;
    redisContext *sub;
    redisReply *r;
    void *rep = NULL;
    const char *cfg = "{\"redis\":{\"username\":\"riskd\",\"password\":\"" ACL_PASSWORD "\","
                      "\"db\":3},\"state\":{\"interval\":\"200ms\"}}";
    acl_setuser(f->env.c, LEAST_PRIV_ACL);
    acl_setuser(f->env.c, "riskd -xadd -publish");
    freeReplyObject(it_cmd(f->env.c, "SELECT 3"));
    sub = it_connect(f->env.redis.port);
    freeReplyObject(it_cmd(sub, "SUBSCRIBE alerts:bad_rating"));
    start(f, cfg);
    bad_rating(f);
    must(f, wait_log(&f->env.riskd, "writing an alert to alerts failed", 2, 10000),
         "the refused write is retried");
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 0);
    acl_setuser(f->env.c, "riskd +xadd +publish");
    must(f, it_wait_xlen(f->env.c, "alerts", 1, 10000), "the alert lands once the ACL is fixed");
    assert_int_equal(redisGetReply(sub, &rep), REDIS_OK);
    r = rep;
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[1]->str, "alerts:bad_rating");
    freeReplyObject(r);
    redisFree(sub);
    must(f, it_wait_drained(f->env.c, "enforce:scan", "riskd", 10000), "acknowledged");
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 1);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

/* A wall-clock tick Redis refuses to record (the user may read the clock
 * stream, not write it) is logged and the watermark stays: the grace timer
 * of a scan stamped in the past does not fire by the wall clock, since a
 * replay could not know that it did. Once the right is granted the tick is
 * recorded, then the alert follows. */
static void test_acl_gap_holds_the_wall_clock(void **state)
{
    fixture *f = *state;
    const char *cfg = "{\"redis\":{\"username\":\"riskd\",\"password\":\"" ACL_PASSWORD "\","
                      "\"db\":3},\"clock\":{\"idle\":\"1s\"},\"state\":{\"interval\":\"200ms\"}}";
    acl_setuser(f->env.c, LEAST_PRIV_ACL);
    acl_setuser(f->env.c, "riskd resetkeys ~enforce:scan ~enforce:case ~alerts ~riskd:alert:* "
                "~riskd:deadseen:* ~riskd:dead ~riskd:state ~riskd:state:suspect "
                "~riskd:state:epoch ~riskd:state:lease ~riskd:state:members %R~riskd:state:clock "
                "~riskd:audit ~riskd:open ~riskd:silence_hits %R~riskd:silences");
    freeReplyObject(it_cmd(f->env.c, "SELECT 3"));
    it_xadd(f->env.c, "enforce:scan", "{\"type\":\"inspection.scanned\",\"ts\":"
            "\"2025-03-01T10:00:00Z\",\"task_id\":\"T-NOFILE\",\"enterprise_id\":\"E1\"}",
            NULL, 0);
    start(f, cfg);
    must(f, wait_log(&f->env.riskd, "recording a wall-clock tick in riskd:state:clock failed",
                     1, 10000), "the refused tick is logged");
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 0);
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:state:clock"), 0);
    acl_setuser(f->env.c, "riskd ~riskd:state:clock");
    must(f, it_wait_xlen(f->env.c, "alerts", 1, 10000), "the alert once the tick is recorded");
    assert_int_equal(it_int(f->env.c, "XLEN riskd:state:clock"), 1);
    /* recorded before the alert it caused */
    {
        redisReply *t = it_cmd(f->env.c, "XRANGE riskd:state:clock - +");
        redisReply *a = it_cmd(f->env.c, "XRANGE alerts - +");
        assert_true(strtoull(t->element[0]->element[0]->str, NULL, 10) <=
                    strtoull(a->element[0]->element[0]->str, NULL, 10));
        freeReplyObject(t);
        freeReplyObject(a);
    }
    assert_int_equal(log_count(&f->env.riskd, "recording a wall-clock tick"), 1);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

int main(void)
{
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_never_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_ready_waits_for_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_watchdog_other_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_plugins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_least_privilege_acl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_gap_does_not_lose_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_gap_holds_the_wall_clock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
