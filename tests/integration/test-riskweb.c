/* tests/integration/test-riskweb.c - riskweb against a real redis-server,
 * spoken to over raw sockets.
 *
 *   history     a new feed gets exactly the last web.history entries, in
 *               order, then live ones; event: alert / notice by status
 *   resume      Last-Event-ID: exactly the entries after it, from the ring
 *               and (1,500 entries, older than the ring) through XRANGE
 *               pages, no gap and no repeat, then live ones
 *   keepalive   a comment line every web.keepalive
 *   token       Bearer / query / cookie rules, 401 and 403, the cookie's
 *               attributes, the redirect that takes the token out of the
 *               address; the security headers on every response
 *   access      the access decision and the loopback test as functions;
 *               a non-loopback peer is refused (when the host has an
 *               address other than loopback)
 *   bad         oversized request, too many header lines, a long header
 *               we keep, garbage, a bad Last-Event-ID: 400, and a feed
 *               open meanwhile keeps receiving
 *   stalled     a client that never reads is disconnected (metric) while
 *               another receives every entry
 *   acl         riskweb runs as the README's read-only ACL user
 *   alerts      /api/alerts from the open hash and from the stream with
 *               notices folded in; filters and limit
 *   indicators  /api/indicators: the hash as numbers, {} when absent, the
 *               index, partitions summed with rates recomputed
 *   names       /api/names after riskctl lists load names, kept while the
 *               version stands, read again after a reload
 *   assets      the page, its script and Chart.js are served
 *   gone        clients that hang up before Redis answers: nothing leaks */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"
#include "itest_proxy.h"
#include "riskweb/riskweb.h"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    it_riskd web;                   /* riskweb, in riskd's clothes */
    int port;
    int redis_port;                 /* riskweb's Redis when not env's (a proxy) */
} fixture;

/* ===================================================================
 * riskweb as a child process
 * =================================================================== */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(const char *ip, int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Everything until the server closes (or timeout): the status, *out the
 * whole text (caller frees). */
static int http_raw_ip(const char *ip, int port, const char *req, size_t len, char **out)
{
    int fd = connect_to(ip, port), status = -1;
    size_t got = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    int64_t end = mono_ms() + 5000;

    *out = NULL;
    if (fd < 0 || buf == NULL) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (len > 0) {
        ssize_t k = write(fd, req, len);
        if (k <= 0)
            break;
        req += k;
        len -= (size_t)k;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t k;
        if (mono_ms() > end || poll(&p, 1, 200) < 0)
            break;
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (got + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        k = read(fd, buf + got, cap - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    buf[got] = '\0';
    close(fd);
    sscanf(buf, "HTTP/1.%*d %d", &status);
    *out = buf;
    return status;
}

static int http_raw(int port, const char *req, char **out)
{
    return http_raw_ip("127.0.0.1", port, req, strlen(req), out);
}

/* GET path with extra header lines (each ending in CRLF, may be ""). */
static int http_get(int port, const char *path, const char *headers, char **out)
{
    char req[4096];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path, headers);
    return http_raw(port, req, out);
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

static int get_status(int port, const char *path, const char *headers)
{
    char *out;
    int st = http_get(port, path, headers, &out);
    free(out);
    return st;
}

static double metric(int port, const char *name)
{
    char *out, *p;
    double v = -1;
    size_t n = strlen(name);
    if (http_get(port, "/metrics", "", &out) == 200)
        for (p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strncmp(p, name, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    free(out);
    return v;
}

static int web_start(fixture *f, const char *json)
{
    char bin[512], *out;
    pid_t pid;
    int64_t end;

    if (f->web.dir[0] == '\0') {
        if (it_tmpdir(f->web.dir, sizeof(f->web.dir), "riskweb") != 0)
            return -1;
        snprintf(f->web.cfg, sizeof(f->web.cfg), "%s/riskd.json", f->web.dir);
        snprintf(f->web.log, sizeof(f->web.log), "%s/riskweb.log", f->web.dir);
    }
    if (it_write_config(f->web.cfg, f->redis_port ? f->redis_port : f->env.redis.port,
                        json) != 0)
        return -1;
    snprintf(bin, sizeof(bin), "%s/riskweb", it_build_dir());
    if ((pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        int fd = open(f->web.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            close(null);
        }
        execl(bin, "riskweb", "-v", "-c", f->web.cfg, (char *)NULL);
        _exit(127);
    }
    f->web.pid = pid;
    /* Up: the listener answers (401 with a token) and the feed is loaded. */
    end = mono_ms() + 10000;
    while (mono_ms() < end) {
        int st = http_get(f->port, "/healthz", "", &out);
        free(out);
        if ((st == 200 || st == 401 || st == 403) && it_log_contains(&f->web, "loaded"))
            return 0;
        it_sleep_ms(20);
    }
    it_riskd_dump_log(&f->web);
    return -1;
}

static void web_stop(fixture *f)
{
    if (f->web.pid > 0) {
        it_riskd_signal(&f->web, SIGTERM);
        assert_int_equal(it_riskd_wait(&f->web, 5000), 0);
        f->web.pid = 0;
    }
}

/* Start riskweb with a config whose web.listen is our port plus `more`
 * (JSON members after it, may be ""), and an optional top-level tail. */
static void start_with(fixture *f, const char *web_more, const char *top_more)
{
    char json[2048];
    snprintf(json, sizeof(json), "{\"web\":{\"listen\":\"%s:%d\"%s%s}%s%s}",
             strstr(web_more, "0.0.0.0") ? "0.0.0.0" : "127.0.0.1", f->port,
             *web_more && !strstr(web_more, "0.0.0.0") ? "," : "",
             strstr(web_more, "0.0.0.0") ? "" : web_more, *top_more ? "," : "", top_more);
    assert_int_equal(web_start(f, json), 0);
}

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    f->port = it_free_port();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->web.pid > 0) {
        it_riskd_signal(&f->web, SIGKILL);
        it_riskd_wait(&f->web, 5000);
    }
    it_fixture_free(f);
    return 0;
}

/* ===================================================================
 * An SSE reader
 * =================================================================== */

typedef struct sse {
    int fd;
    char *buf;
    size_t len, cap;
    size_t pos;                     /* parsed up to */
    int headers_done;
    int status;
    int closed;
    int comments;
    char ids[4096][32];
    char events[4096][8];
    int n;
} sse;

static sse *sse_open_ip(const char *ip, int port, const char *headers)
{
    sse *s = calloc(1, sizeof(*s));
    char req[2048];
    assert_non_null(s);
    s->cap = 1 << 20;
    s->buf = malloc(s->cap);
    s->fd = connect_to(ip, port);
    assert_true(s->fd >= 0);
    snprintf(req, sizeof(req),
             "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n%s\r\n",
             headers);
    assert_int_equal(write(s->fd, req, strlen(req)), (ssize_t)strlen(req));
    return s;
}

static sse *sse_open(int port, const char *headers)
{
    return sse_open_ip("127.0.0.1", port, headers);
}

static void sse_close(sse *s)
{
    if (s == NULL)
        return;
    close(s->fd);
    free(s->buf);
    free(s);
}

/* Parse whole blocks (ending in a blank line) from s->buf. */
static void sse_parse(sse *s)
{
    char *p, *blank;
    s->buf[s->len] = '\0';
    if (!s->headers_done) {
        char *h = strstr(s->buf, "\r\n\r\n");
        if (h == NULL)
            return;
        sscanf(s->buf, "HTTP/1.%*d %d", &s->status);
        s->headers_done = 1;
        s->pos = (size_t)(h + 4 - s->buf);
    }
    while ((blank = strstr(p = s->buf + s->pos, "\n\n")) != NULL) {
        char *line = p;
        *blank = '\0';
        while (line && *line) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            if (line[0] == ':')
                s->comments++;
            else if (strncmp(line, "id: ", 4) == 0 && s->n < 4096)
                snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", line + 4);
            else if (strncmp(line, "event: ", 7) == 0 && s->n < 4096)
                snprintf(s->events[s->n], sizeof(s->events[0]), "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0 && s->n < 4096)
                s->n++;
            line = nl ? nl + 1 : NULL;
        }
        s->pos = (size_t)(blank + 2 - s->buf);
    }
}

/* Read until pred holds (events >= n, or comments >= c) or timeout. */
static void sse_read_until(sse *s, int n, int comments, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (!s->closed && (s->n < n || s->comments < comments) && mono_ms() < end) {
        struct pollfd p = {s->fd, POLLIN, 0};
        ssize_t k;
        if (poll(&p, 1, 50) <= 0)
            continue;
        if (s->len + 65536 >= s->cap) {
            /* keep the buffer bounded: drop what is parsed */
            memmove(s->buf, s->buf + s->pos, s->len - s->pos);
            s->len -= s->pos;
            s->pos = 0;
        }
        k = read(s->fd, s->buf + s->len, s->cap - 1 - s->len);
        if (k <= 0) {
            s->closed = 1;
            break;
        }
        s->len += (size_t)k;
        sse_parse(s);
    }
}

/* ===================================================================
 * Stream helpers
 * =================================================================== */

/* XADD n alerts (firing, unit U<i%3>), ids into ids (may be NULL). */
static void add_alerts(redisContext *c, int n, int from, char (*ids)[32])
{
    int i;
    for (i = 0; i < n; i++) {
        char json[256];
        snprintf(json, sizeof(json),
                 "{\"id\":\"a%d\",\"status\":\"firing\",\"detector\":\"d%d\","
                 "\"subject\":{\"unit_id\":\"U%d\"},\"ts\":\"2025-01-01T00:00:%02dZ\"}",
                 from + i, (from + i) % 2, (from + i) % 3, (from + i) % 60);
        redisAppendCommand(c, "XADD alerts * data %s", json);
    }
    for (i = 0; i < n; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        if (ids)
            snprintf(ids[i], 32, "%s", r->str);
        freeReplyObject(r);
    }
}

/* ===================================================================
 * Tests
 * =================================================================== */

static void test_history(void **state)
{
    fixture *f = *state;
    static char ids[40][32];
    sse *s;
    int i;

    add_alerts(f->env.c, 30, 0, ids);
    start_with(f, "\"history\":10", "");
    s = sse_open(f->port, "");
    sse_read_until(s, 10, 0, 5000);
    assert_int_equal(s->status, 200);
    assert_int_equal(s->n, 10);
    for (i = 0; i < 10; i++) {
        assert_string_equal(s->ids[i], ids[20 + i]);
        assert_string_equal(s->events[i], "alert");
    }
    /* live: an alert and a notice */
    add_alerts(f->env.c, 1, 30, ids + 30);
    it_xadd(f->env.c, "alerts", "{\"id\":\"a3\",\"status\":\"resolved\"}", ids[31], 32);
    sse_read_until(s, 12, 0, 5000);
    assert_int_equal(s->n, 12);
    assert_string_equal(s->ids[10], ids[30]);
    assert_string_equal(s->events[10], "alert");
    assert_string_equal(s->ids[11], ids[31]);
    assert_string_equal(s->events[11], "notice");
    /* nothing more than that */
    sse_read_until(s, 13, 0, 300);
    assert_int_equal(s->n, 12);
    sse_close(s);
    assert_true(metric(f->port, "riskweb_events_sent_total") >= 12);
    web_stop(f);
}

/* Resume after ids[from]: exactly ids[from+1 .. n-1], then a live one. */
static void check_resume(fixture *f, char (*ids)[32], int from, int n)
{
    char hdr[96];
    sse *s;
    int i, want = n - from - 1;

    snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s\r\n", ids[from]);
    s = sse_open(f->port, hdr);
    sse_read_until(s, want, 0, 10000);
    assert_int_equal(s->n, want);
    for (i = 0; i < want; i++)
        assert_string_equal(s->ids[i], ids[from + 1 + i]);
    sse_read_until(s, want + 1, 0, 300);
    assert_int_equal(s->n, want);               /* no repeat */
    it_xadd(f->env.c, "alerts", "{\"id\":\"live\",\"status\":\"firing\"}", ids[n], 32);
    sse_read_until(s, want + 1, 0, 5000);
    assert_int_equal(s->n, want + 1);
    assert_string_equal(s->ids[want], ids[n]);
    sse_close(s);
}

static void test_resume(void **state)
{
    fixture *f = *state;
    static char ids[1600][32];

    add_alerts(f->env.c, 1500, 0, ids);
    start_with(f, "\"history\":5", "");
    /* In the ring (the last 1,000). */
    check_resume(f, ids, 1400, 1500);
    /* Older than the ring: XRANGE pages, then the ring. */
    check_resume(f, ids, 99, 1501);
    /* The id of the newest: nothing but live ones. */
    check_resume(f, ids, 1501, 1502);
    web_stop(f);
}

static void test_keepalive(void **state)
{
    fixture *f = *state;
    sse *s;

    start_with(f, "\"keepalive\":\"200ms\"", "");
    s = sse_open(f->port, "");
    sse_read_until(s, 0, 2, 5000);
    assert_true(s->comments >= 2);
    assert_int_equal(s->n, 0);
    sse_close(s);
    web_stop(f);
}

static void test_token(void **state)
{
    fixture *f = *state;
    char *out, *m, want[64];
    int st;
    double before;

    start_with(f, "\"token\":\"s3cret-Token\"", "");
    assert_int_equal(http_get(f->port, "/metrics", "Authorization: Bearer s3cret-Token\r\n",
                              &m), 200);
    before = strtod(strstr(m, "\nriskweb_unauthorized_total ") + 28, NULL);
    free(m);
    assert_int_equal(get_status(f->port, "/healthz", ""), 401);
    assert_int_equal(get_status(f->port, "/", ""), 401);
    assert_int_equal(get_status(f->port, "/healthz", "Authorization: Bearer nope\r\n"), 403);
    assert_int_equal(get_status(f->port, "/healthz", "Authorization: Bearer s3cret-Tokenx\r\n"),
                     403);
    assert_int_equal(get_status(f->port, "/healthz", "Authorization: Bearer s3cret-Toke\r\n"),
                     403);
    assert_int_equal(get_status(f->port, "/healthz", "Authorization: Bearer s3cret-Token\r\n"),
                     200);
    assert_int_equal(get_status(f->port, "/healthz?token=wrong", ""), 403);
    assert_int_equal(get_status(f->port, "/healthz", "Cookie: riskweb_token=wrong\r\n"), 403);
    assert_int_equal(get_status(f->port, "/healthz",
                                "Cookie: a=b; riskweb_token=s3cret-Token; c=d\r\n"), 200);
    /* The query sets the cookie; on the page it redirects without it. */
    st = http_get(f->port, "/healthz?token=s3cret-Token", "", &out);
    assert_int_equal(st, 200);
    assert_non_null(strstr(out, "Set-Cookie: riskweb_token=s3cret-Token; Path=/; HttpOnly; "
                                "SameSite=Strict\r\n"));
    free(out);
    st = http_get(f->port, "/?token=s3cret-Token", "", &out);
    assert_int_equal(st, 303);
    assert_non_null(strstr(out, "\r\nLocation: /\r\n"));
    assert_non_null(strstr(out, "HttpOnly; SameSite=Strict"));
    free(out);
    /* Security headers, on a refusal too. */
    st = http_get(f->port, "/", "Cookie: riskweb_token=s3cret-Token\r\n", &out);
    assert_int_equal(st, 200);
    assert_non_null(strstr(out, "Content-Security-Policy: default-src 'none'; script-src 'self'"));
    assert_non_null(strstr(out, "X-Content-Type-Options: nosniff\r\n"));
    assert_null(strstr(out, "Set-Cookie"));
    free(out);
    st = http_get(f->port, "/", "", &out);
    assert_int_equal(st, 401);
    assert_non_null(strstr(out, "X-Content-Type-Options: nosniff\r\n"));
    free(out);
    /* The feed with the token; without it, refused. */
    {
        sse *s = sse_open(f->port, "Authorization: Bearer s3cret-Token\r\n");
        it_xadd(f->env.c, "alerts", "{\"id\":\"t\",\"status\":\"firing\"}", (char[32]){0}, 32);
        sse_read_until(s, 1, 0, 5000);
        assert_int_equal(s->status, 200);
        assert_int_equal(s->n, 1);
        sse_close(s);
        s = sse_open(f->port, "");
        sse_read_until(s, 1, 0, 1000);
        assert_int_equal(s->status, 401);
        assert_int_equal(s->n, 0);
        sse_close(s);
    }
    /* 401 twice, 403 five times, 401 on the page and on the feed */
    assert_int_equal(http_get(f->port, "/metrics", "Authorization: Bearer s3cret-Token\r\n",
                              &m), 200);
    snprintf(want, sizeof(want), "\nriskweb_unauthorized_total %.0f\n", before + 9);
    if (strstr(m, want) == NULL)
        fprintf(stderr, "want %s in:\n%s\n", want, m);
    assert_non_null(strstr(m, want));
    free(m);
    web_stop(f);
}

static const char *non_loopback_ipv4(char *buf, size_t len)
{
    struct ifaddrs *ifa, *i;
    const char *found = NULL;
    if (getifaddrs(&ifa) != 0)
        return NULL;
    for (i = ifa; i && !found; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
            !rk__web_is_loopback(i->ifa_addr)) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, buf,
                      (socklen_t)len);
            found = buf;
        }
    freeifaddrs(ifa);
    return found;
}

static void test_access(void **state)
{
    fixture *f = *state;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    char ip[64], *out;
    int fq;

    /* The decision as a function. */
    assert_int_equal(rk__web_access(NULL, 1, NULL, NULL, NULL, &fq), 0);
    assert_int_equal(rk__web_access(NULL, 0, NULL, NULL, NULL, &fq), 403);
    assert_int_equal(rk__web_access(NULL, 0, "Bearer x", NULL, NULL, &fq), 403);
    assert_int_equal(rk__web_access("t0k", 0, NULL, NULL, NULL, &fq), 401);
    assert_int_equal(rk__web_access("t0k", 1, NULL, NULL, NULL, &fq), 401);
    assert_int_equal(rk__web_access("t0k", 0, "Bearer t0k", NULL, NULL, &fq), 0);
    assert_int_equal(fq, 0);
    assert_int_equal(rk__web_access("t0k", 0, "bearer t0k", NULL, NULL, &fq), 0);
    assert_int_equal(rk__web_access("t0k", 0, "Basic t0k", NULL, NULL, &fq), 401);
    assert_int_equal(rk__web_access("t0k", 0, NULL, NULL, "a=1&token=t0k", &fq), 0);
    assert_int_equal(fq, 1);
    assert_int_equal(rk__web_access("t0k", 0, NULL, NULL, "token=t%30k", &fq), 0);
    assert_int_equal(rk__web_access("t0k", 0, NULL, NULL, "tokens=t0k", &fq), 401);
    assert_int_equal(rk__web_access("t0k", 0, NULL, "riskweb_token=t0k", NULL, &fq), 0);
    assert_int_equal(fq, 0);
    assert_int_equal(rk__web_access("t0k", 0, NULL, "xriskweb_token=t0k", NULL, &fq), 401);
    assert_int_equal(rk__web_access("t0k", 0, NULL, "riskweb_token=", NULL, &fq), 403);
    assert_true(rk__web_token_equal("abc", "abc"));
    assert_false(rk__web_token_equal("abc", "abd"));
    assert_false(rk__web_token_equal("", "abc"));
    assert_false(rk__web_token_equal("abcabc", "abc"));
    assert_false(rk__web_token_equal("ab", "abc"));
    /* Host names served without a token. */
    assert_true(rk__web_host_allowed(NULL, "127.0.0.1"));
    assert_true(rk__web_host_allowed("localhost:9478", "127.0.0.1"));
    assert_true(rk__web_host_allowed("LOCALHOST", "127.0.0.1"));
    assert_true(rk__web_host_allowed("127.0.0.1:9478", "127.0.0.1"));
    assert_true(rk__web_host_allowed("127.9.8.7", "0.0.0.0"));
    assert_true(rk__web_host_allowed("[::1]:9478", "127.0.0.1"));
    assert_true(rk__web_host_allowed("dash.local:9478", "dash.local"));
    assert_false(rk__web_host_allowed("evil.example:9478", "127.0.0.1"));
    assert_false(rk__web_host_allowed("127.0.0.1.evil.example", "127.0.0.1"));
    assert_false(rk__web_host_allowed("[::1", "127.0.0.1"));
    assert_false(rk__web_host_allowed(":9478", "127.0.0.1"));
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    inet_pton(AF_INET, "127.3.2.1", &a4.sin_addr);
    assert_true(rk__web_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "10.0.0.1", &a4.sin_addr);
    assert_false(rk__web_is_loopback((struct sockaddr *)&a4));
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    assert_true(rk__web_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
    assert_true(rk__web_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:10.0.0.1", &a6.sin6_addr);
    assert_false(rk__web_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "fe80::1", &a6.sin6_addr);
    assert_false(rk__web_is_loopback((struct sockaddr *)&a6));

    /* A rebinding page's Host is refused; with a token, Host is free. */
    start_with(f, "", "");
    assert_int_equal(get_status(f->port, "/healthz", ""), 200);
    assert_int_equal(http_raw(f->port, "GET /api/events HTTP/1.1\r\nHost: evil.example\r\n\r\n",
                              &out), 403);
    free(out);
    web_stop(f);
    memset(&f->web, 0, sizeof(f->web));

    /* A real non-loopback peer, when this host has such an address. */
    if (non_loopback_ipv4(ip, sizeof(ip)) == NULL) {
        fprintf(stderr, "test_access: no non-loopback IPv4 address: peer check skipped\n");
        return;
    }
    start_with(f, "0.0.0.0", "");
    {
        char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_int_equal(http_raw_ip(ip, f->port, req, strlen(req), &out), 403);
        assert_non_null(strstr(out, "loopback clients only"));
        free(out);
        assert_int_equal(get_status(f->port, "/healthz", ""), 200);
    }
    web_stop(f);
    /* With a token, that peer is served when it carries it. */
    memset(&f->web, 0, sizeof(f->web));
    {
        char json[256], req[256];
        snprintf(json, sizeof(json), "{\"web\":{\"listen\":\"0.0.0.0:%d\",\"token\":\"k\"}}",
                 f->port);
        assert_int_equal(web_start(f, json), 0);
        snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nAuthorization: Bearer k\r\n\r\n");
        assert_int_equal(http_raw_ip(ip, f->port, req, strlen(req), &out), 200);
        free(out);
    }
    web_stop(f);
}

static void test_bad(void **state)
{
    fixture *f = *state;
    char *big, *out, id[32];
    sse *s;
    size_t i;
    int before;

    start_with(f, "", "");
    s = sse_open(f->port, "");
    sse_read_until(s, 0, 0, 200);
    /* oversized request */
    big = malloc(20000);
    strcpy(big, "GET / HTTP/1.1\r\nX-Big: ");
    for (i = strlen(big); i < 12000; i++)
        big[i] = 'a';
    strcpy(big + i, "\r\n\r\n");
    assert_int_equal(http_raw_ip("127.0.0.1", f->port, big, strlen(big), &out), 400);
    free(out);
    /* too many header lines */
    strcpy(big, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 60; i++)
        sprintf(big + strlen(big), "X-H%zu: v\r\n", i);
    strcat(big, "\r\n");
    assert_int_equal(http_raw(f->port, big, &out), 400);
    assert_non_null(strstr(out, "too many header lines"));
    free(out);
    /* a header we keep, too long */
    strcpy(big, "GET / HTTP/1.1\r\nCookie: ");
    for (i = strlen(big); i < 3000; i++)
        big[i] = 'c';
    strcpy(big + i, "\r\n\r\n");
    assert_int_equal(http_raw(f->port, big, &out), 400);
    free(out);
    /* a long URL */
    strcpy(big, "GET /");
    for (i = strlen(big); i < 3000; i++)
        big[i] = 'u';
    strcpy(big + i, " HTTP/1.1\r\n\r\n");
    assert_int_equal(http_raw(f->port, big, &out), 400);
    free(out);
    free(big);
    /* garbage, binary garbage, and a bad Last-Event-ID */
    assert_int_equal(http_raw(f->port, "HELLO THERE\r\n\r\n", &out), 400);
    free(out);
    assert_int_equal(http_raw_ip("127.0.0.1", f->port, "\x16\x03\x01\x00\xff\x01\x00", 7, &out),
                     400);
    free(out);
    assert_int_equal(get_status(f->port, "/api/events", "Last-Event-ID: 12-x\r\n"), 400);
    /* a wrong method, an unknown path */
    assert_int_equal(http_raw(f->port, "POST /api/alerts HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                              &out), 405);
    free(out);
    assert_int_equal(get_status(f->port, "/nope", ""), 404);
    assert_int_equal(metric(f->port, "riskweb_bad_requests_total"), 7);
    /* the feed opened before kept going */
    before = s->n;
    it_xadd(f->env.c, "alerts", "{\"id\":\"after\",\"status\":\"firing\"}", id, sizeof(id));
    sse_read_until(s, before + 1, 0, 5000);
    assert_int_equal(s->n, before + 1);
    assert_string_equal(s->ids[s->n - 1], id);
    assert_int_equal(get_status(f->port, "/healthz", ""), 200);
    sse_close(s);
    web_stop(f);
}

typedef struct slow_arg {
    int port;
} slow_arg;

static bool slow_disconnected(void *arg)
{
    return metric(((slow_arg *)arg)->port, "riskweb_slow_disconnects_total") >= 1;
}

static void test_stalled(void **state)
{
    fixture *f = *state;
    char *json, hdr[64];
    sse *reader, *stalled;
    int i, rcv = 4096, n = 400;
    slow_arg sa;
    char last[32];

    start_with(f, "\"history\":0", "");
    /* The stalled client: a small receive buffer, and it never reads. */
    stalled = calloc(1, sizeof(*stalled));
    stalled->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(stalled->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    {
        struct sockaddr_in a;
        const char req[] = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)f->port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(stalled->fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(write(stalled->fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
    }
    reader = sse_open(f->port, "");
    sse_read_until(reader, 0, 0, 200);
    assert_int_equal(metric(f->port, "riskweb_sse_clients"), 2);
    /* 400 alerts of 8 KiB: 3.2 MB, far past what the stalled one may hold. */
    json = malloc(9000);
    for (i = 0; i < n; i++) {
        int k = snprintf(json, 9000, "{\"id\":\"big%d\",\"status\":\"firing\",\"summary\":\"", i);
        memset(json + k, 'x', 8000);
        strcpy(json + k + 8000, "\"}");
        it_xadd(f->env.c, "alerts", json, last, sizeof(last));
        sse_read_until(reader, i + 1, 0, 5000);     /* a reader that keeps up */
    }
    free(json);
    sse_read_until(reader, n, 0, 10000);
    assert_int_equal(reader->n, n);
    assert_string_equal(reader->ids[n - 1], last);
    sa.port = f->port;
    assert_true(it_wait_until(slow_disconnected, &sa, 5000));
    assert_int_equal(metric(f->port, "riskweb_slow_disconnects_total"), 1);
    assert_int_equal(metric(f->port, "riskweb_sse_clients"), 1);
    /* It comes back with its Last-Event-ID and gets the rest. */
    snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s\r\n", reader->ids[n - 3]);
    sse_close(stalled);
    stalled = sse_open(f->port, hdr);
    sse_read_until(stalled, 2, 0, 5000);
    assert_int_equal(stalled->n, 2);
    assert_string_equal(stalled->ids[1], last);
    sse_close(stalled);
    sse_close(reader);
    web_stop(f);
}

static void test_acl(void **state)
{
    fixture *f = *state;
    redisReply *r;
    redisContext *c;
    char *out, json[512];
    sse *s;

    /* The recipe of riskweb(8), SECURITY. */
    r = it_cmd(f->env.c, "ACL SETUSER riskweb on >webpass resetkeys ~* resetchannels "
                         "-@all +@read +ping +select");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    add_alerts(f->env.c, 3, 0, NULL);
    r = it_cmd(f->env.c, "HSET riskd:open a1 %s", "{\"id\":\"a1\",\"status\":\"firing\"}");
    freeReplyObject(r);
    r = it_cmd(f->env.c, "HSET riskd:ind:all:all:window filings 3");
    freeReplyObject(r);
    /* The user cannot write. */
    c = it_connect(f->env.redis.port);
    r = it_cmd(c, "AUTH riskweb webpass");
    freeReplyObject(r);
    r = it_cmd(c, "XADD alerts * data x");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "NOPERM"));
    freeReplyObject(r);
    redisFree(c);
    /* riskweb as that user: everything it does works. */
    snprintf(json, sizeof(json),
             "{\"redis\":{\"username\":\"riskweb\",\"password\":\"webpass\"},"
             "\"web\":{\"listen\":\"127.0.0.1:%d\"}}", f->port);
    assert_int_equal(web_start(f, json), 0);
    assert_int_equal(get_status(f->port, "/healthz", ""), 200);
    s = sse_open(f->port, "");
    sse_read_until(s, 3, 0, 5000);
    assert_int_equal(s->n, 3);
    add_alerts(f->env.c, 1, 3, NULL);
    sse_read_until(s, 4, 0, 5000);
    assert_int_equal(s->n, 4);
    sse_close(s);
    assert_int_equal(http_get(f->port, "/api/alerts?status=open", "", &out), 200);
    assert_non_null(strstr(body_of(out), "\"a1\""));
    free(out);
    assert_int_equal(http_get(f->port, "/api/alerts", "", &out), 200);
    free(out);
    assert_int_equal(http_get(f->port, "/api/indicators", "", &out), 200);
    assert_string_equal(body_of(out), "{\"filings\":3}");
    free(out);
    assert_int_equal(http_get(f->port, "/api/indicators?scope=unit", "", &out), 200);
    free(out);
    assert_false(it_log_contains(&f->web, "NOPERM"));
    web_stop(f);
}

static json_t *get_json(int port, const char *path)
{
    char *out;
    json_t *j;
    json_error_t e;
    assert_int_equal(http_get(port, path, "", &out), 200);
    assert_non_null(strstr(out, "Content-Type: application/json"));
    j = json_loads(body_of(out), 0, &e);
    if (j == NULL)
        fprintf(stderr, "not JSON: %s\n", body_of(out));
    assert_non_null(j);
    free(out);
    return j;
}

static void test_alerts(void **state)
{
    fixture *f = *state;
    json_t *j;
    char id[32];
    redisReply *r;

#define A(id, unit, det, ts)                                                          \
    "{\"id\":\"" id "\",\"status\":\"firing\",\"detector\":\"" det "\",\"rule\":\"r\"," \
    "\"subject\":{\"unit_id\":\"" unit "\"},\"ts\":\"" ts "\"}"
    it_xadd(f->env.c, "alerts", A("x1", "U1", "bad_rating", "2025-01-01T00:00:01Z"), id, 32);
    it_xadd(f->env.c, "alerts", A("x2", "U2", "fine_growth", "2025-01-01T00:00:02Z"), id, 32);
    it_xadd(f->env.c, "alerts", A("x3", "U1", "fine_growth", "2025-01-01T00:00:03Z"), id, 32);
    it_xadd(f->env.c, "alerts", "{\"id\":\"x1\",\"status\":\"resolved\",\"reason\":\"r\"}", id, 32);
    it_xadd(f->env.c, "alerts",
            "{\"id\":\"x3\",\"status\":\"acknowledged\",\"by\":\"li\",\"note\":\"seen\","
            "\"ts\":\"2025-01-02T00:00:00Z\"}", id, 32);
    r = it_cmd(f->env.c, "HSET riskd:open x2 %s x3 %s",
               A("x2", "U2", "fine_growth", "2025-01-01T00:00:02Z"),
               "{\"id\":\"x3\",\"status\":\"acknowledged\",\"detector\":\"fine_growth\","
               "\"subject\":{\"unit_id\":\"U1\"},\"ts\":\"2025-01-01T00:00:03Z\","
               "\"acknowledged\":{\"by\":\"li\",\"ts\":\"2025-01-02T00:00:00Z\"}}");
    freeReplyObject(r);
    start_with(f, "", "");

    /* The stream, notices folded in, newest first. */
    j = get_json(f->port, "/api/alerts");
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "id")), "x3");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "status")),
                        "acknowledged");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(j, 0), "acknowledged"), "by")), "li");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "status")),
                        "firing");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 2), "status")),
                        "resolved");
    json_decref(j);
    j = get_json(f->port, "/api/alerts?status=resolved");
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "id")), "x1");
    json_decref(j);
    j = get_json(f->port, "/api/alerts?unit_id=U1&detector=fine_growth");
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    j = get_json(f->port, "/api/alerts?limit=2");
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    /* The open hash. */
    j = get_json(f->port, "/api/alerts?status=open");
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "id")), "x3");
    json_decref(j);
    j = get_json(f->port, "/api/alerts?status=open&unit_id=U2");
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "id")), "x2");
    json_decref(j);
    j = get_json(f->port, "/api/alerts?status=open&unit_id=U%3Cscript%3E");
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    assert_int_equal(get_status(f->port, "/api/alerts?limit=0", ""), 400);
    assert_int_equal(get_status(f->port, "/api/alerts?limit=abc", ""), 400);
    assert_int_equal(get_status(f->port, "/api/alerts?status=bogus", ""), 400);
    web_stop(f);
#undef A
}

static void test_indicators(void **state)
{
    fixture *f = *state;
    json_t *j;
    redisReply *r;

    r = it_cmd(f->env.c, "HSET riskd:ind:unit:U1:window filings 8 unfiled 2 filing_rate 0.8 "
                         "scan_rate null fines 1234.5 from 2025-08-01T00:00:00Z");
    freeReplyObject(r);
    r = it_cmd(f->env.c, "ZADD riskd:ind:keys:unit 2 U1 1 U2");
    freeReplyObject(r);
    r = it_cmd(f->env.c, "ZADD riskd:ind:periods 1 2025-08 2 2025-09");
    freeReplyObject(r);
    /* partition shares (read by the second riskweb below) */
    r = it_cmd(f->env.c, "HSET riskd:ind:unit:U9:2025-09:p0 filings 3 unfiled 1 filing_rate 0.75 "
                         "reviews 0 corrections 0 correction_rate null "
                         "from 2025-09-01T00:00:00Z updated_at 2025-09-02T00:00:00Z");
    freeReplyObject(r);
    r = it_cmd(f->env.c, "HSET riskd:ind:unit:U9:2025-09:p1 filings 1 unfiled 3 filing_rate 0.25 "
                         "reviews 4 corrections 1 correction_rate 0.25 "
                         "from 2025-09-01T00:00:00Z updated_at 2025-09-03T00:00:00Z");
    freeReplyObject(r);
    r = it_cmd(f->env.c, "ZADD riskd:ind:keys:unit:p1 5 U9");
    freeReplyObject(r);
    start_with(f, "", "");
    j = get_json(f->port, "/api/indicators?scope=unit&key=U1");
    assert_int_equal(json_integer_value(json_object_get(j, "filings")), 8);
    assert_true(json_is_real(json_object_get(j, "filing_rate")));
    assert_true(json_is_null(json_object_get(j, "scan_rate")));
    assert_true(json_real_value(json_object_get(j, "fines")) == 1234.5);
    assert_string_equal(json_string_value(json_object_get(j, "from")), "2025-08-01T00:00:00Z");
    json_decref(j);
    j = get_json(f->port, "/api/indicators?scope=unit&key=U1&period=2025-09");
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
    j = get_json(f->port, "/api/indicators");
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
    j = get_json(f->port, "/api/indicators?scope=unit");
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "keys"), 0)), "U1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "periods"), 0)),
                        "2025-09");
    json_decref(j);
    assert_int_equal(get_status(f->port, "/api/indicators?scope=planet", ""), 400);
    assert_int_equal(get_status(f->port, "/api/indicators?scope=unit&key=a:b", ""), 400);
    assert_int_equal(get_status(f->port, "/api/indicators?scope=unit&key=*", ""), 400);
    web_stop(f);

    /* Two partitions: counts summed, rates from the sums. */
    memset(&f->web, 0, sizeof(f->web));
    start_with(f, "", "\"partitions\":2");
    j = get_json(f->port, "/api/indicators?scope=unit&key=U9&period=2025-09");
    assert_int_equal(json_integer_value(json_object_get(j, "filings")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "unfiled")), 4);
    assert_true(json_real_value(json_object_get(j, "filing_rate")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(j, "reviews")), 4);
    assert_true(json_real_value(json_object_get(j, "correction_rate")) == 0.25);
    assert_true(json_is_null(json_object_get(j, "scan_rate")));
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2025-09-03T00:00:00Z");
    json_decref(j);
    j = get_json(f->port, "/api/indicators?scope=unit");
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 1);
    json_decref(j);
    web_stop(f);
}

/* build/riskctl -c <riskweb's config> lists load names <file of csv>:
 * its exit status (its stderr shown when it fails). */
static int load_names(fixture *f, const char *csv)
{
    static itc_result r;
    char path[600];
    const char *args[] = {"-c", f->web.cfg, "lists", "load", "names", path, NULL};
    FILE *fp;

    snprintf(path, sizeof(path), "%s/names.csv", f->web.dir);
    if ((fp = fopen(path, "wb")) == NULL)
        return -1;
    fputs(csv, fp);
    fclose(fp);
    itc_run(&r, f->web.dir, 10000, args);
    if (r.status != 0)
        fprintf(stderr, "riskctl lists load names: exit %d: %s\n", r.status, r.err);
    return r.status;
}

static void expect_name(json_t *j, const char *kind, const char *id, const char *name)
{
    const char *got = json_string_value(json_object_get(json_object_get(j, kind), id));
    if (name == NULL) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, name);
}

static void test_names(void **state)
{
    fixture *f = *state;
    redisReply *r;
    json_t *j;

    start_with(f, "", "");
    /* No list ever loaded: version 0 and no names. */
    j = get_json(f->port, "/api/names");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 0);
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);

    assert_int_equal(load_names(f, "kind,id,name\n"
                                   "unit,U1,兴庆分局\n"
                                   "unit,U2,\"<script>alert(1)</script> \"\"队\"\"\"\n"
                                   "officer,O1,张三\n"
                                   "enterprise,E1,宁夏某某有限公司\n"), 0);
    j = get_json(f->port, "/api/names");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    expect_name(j, "unit", "U1", "兴庆分局");
    expect_name(j, "unit", "U2", "<script>alert(1)</script> \"队\"");
    expect_name(j, "officer", "O1", "张三");
    expect_name(j, "enterprise", "E1", "宁夏某某有限公司");
    assert_int_equal(json_object_size(json_object_get(j, "unit")), 2);
    assert_null(json_object_get(j, "region"));      /* kinds without rows: absent */
    json_decref(j);

    /* Kept while the version stands: a row written behind riskctl's back
     * does not show until the version moves. */
    r = it_cmd(f->env.c, "HSET riskd:lists:{lists}:names %s %s", "[\"unit\",\"U9\"]",
               "{\"kind\":\"unit\",\"id\":\"U9\",\"name\":\"九\"}");
    freeReplyObject(r);
    j = get_json(f->port, "/api/names");
    expect_name(j, "unit", "U9", NULL);
    json_decref(j);
    r = it_cmd(f->env.c, "HINCRBY riskd:lists:{lists}:version names 1");
    freeReplyObject(r);
    j = get_json(f->port, "/api/names");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    expect_name(j, "unit", "U9", "九");
    json_decref(j);

    /* A reload replaces the list whole: new names, old ones gone. */
    assert_int_equal(load_names(f, "kind,id,name\n"
                                   "unit,U1,兴庆区分局\n"
                                   "region,R1,兴庆区\n"), 0);
    j = get_json(f->port, "/api/names");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
    expect_name(j, "unit", "U1", "兴庆区分局");
    expect_name(j, "unit", "U2", NULL);
    expect_name(j, "unit", "U9", NULL);
    expect_name(j, "region", "R1", "兴庆区");
    assert_null(json_object_get(j, "officer"));
    json_decref(j);
    web_stop(f);
}

/* Clients that leave before Redis answers: riskweb talks to Redis through
 * a proxy that holds its requests; each client's query is seen queued in
 * the proxy, then the client resets the connection, and only then do the
 * queries reach Redis. Their replies find no client: riskweb frees what
 * each request held (under the sanitizers a leak fails the clean exit at
 * the end) and goes on answering. */
static void test_gone(void **state)
{
    fixture *f = *state;
    static const char *const paths[] = {"/api/alerts?status=open", "/api/alerts",
                                        "/api/indicators", "/api/indicators?scope=unit&key=U1",
                                        "/api/names"};
    it_proxy *px;
    json_t *j;
    size_t i;
    int pport = 0;

    px = it_proxy_start(f->env.redis.port, &pport);
    assert_non_null(px);
    f->redis_port = pport;
    start_with(f, "", "");
    it_proxy_hold(px, true);
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char req[512];
        int fd = connect_to("127.0.0.1", f->port);
        struct linger lg = {1, 0};
        long before = it_proxy_held(px);
        int waited;
        ssize_t n;
        assert_true(fd >= 0);
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", paths[i]);
        n = write(fd, req, strlen(req));
        assert_int_equal(n, (ssize_t)strlen(req));
        for (waited = 0; it_proxy_held(px) == before && waited < 5000; waited += 5)
            it_sleep_ms(5);
        assert_true(it_proxy_held(px) > before);    /* its query is on the way */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);                                  /* a reset: the client is gone */
    }
    /* A request behind them, so that their replies have come back when it is
     * answered. */
    it_proxy_hold(px, false);
    j = get_json(f->port, "/api/alerts");
    assert_non_null(j);
    assert_true(json_is_array(j));
    json_decref(j);
    web_stop(f);
    it_proxy_stop(px);
}

static void test_assets(void **state)
{
    fixture *f = *state;
    char *out;

    start_with(f, "", "");
    assert_int_equal(http_get(f->port, "/", "", &out), 200);
    assert_non_null(strstr(out, "Content-Type: text/html; charset=utf-8"));
    assert_null(strstr(body_of(out), "<script>"));          /* no inline script */
    free(out);
    assert_int_equal(http_get(f->port, "/app.js", "", &out), 200);
    assert_non_null(strstr(out, "Content-Type: text/javascript"));
    free(out);
    assert_int_equal(http_get(f->port, "/chart.min.js", "", &out), 200);
    assert_non_null(strstr(body_of(out), "Chart.js v"));
    free(out);
    assert_int_equal(http_raw(f->port, "HEAD /app.css HTTP/1.1\r\n\r\n", &out), 200);
    assert_non_null(strstr(out, "Content-Type: text/css"));
    assert_string_equal(body_of(out), "");
    free(out);
    web_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indicators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
