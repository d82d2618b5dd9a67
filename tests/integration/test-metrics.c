/* tests/integration/test-metrics.c - the /metrics and /healthz endpoint against a real
 * redis-server and riskd: the exposition parses as Prometheus text and its
 * counters move with input; /healthz follows Redis going away and coming
 * back; wrong paths, methods, malformed and oversized requests get the
 * right status; a slow client blocks nobody; at most 64 clients are served
 * at once; an address that cannot be bound stops riskd at start; IPv6.
 *
 * The HTTP client here is a plain blocking socket with poll() timeouts:
 * send the request, read until the server closes (every response is
 * "Connection: close"). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

#define RATING(task, ent, score, ts) \
    "{\"type\":\"inspection.rated\",\"ts\":\"" ts "\",\"task_id\":\"" task "\"," \
    "\"enterprise_id\":\"" ent "\",\"score\":" score "}"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new): redis, client, riskd */
    int mport;                      /* metrics port */
} fixture;

/* ===================================================================
 * A minimal HTTP client
 * =================================================================== */

typedef struct resp {
    int status;                     /* -1: no status line */
    char *raw;                      /* everything received, NUL-terminated */
    size_t len;
    const char *body;               /* after the blank line, or NULL */
} resp;

static void resp_free(resp *r)
{
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect to port on 127.0.0.1 (or ::1 when v6). Returns the fd or -1. */
static int http_connect(int port, int v6)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (v6) {
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons((uint16_t)port);
        sa.sin6_addr = in6addr_loopback;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
    } else {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
    }
    close(fd);
    return -1;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read from fd until EOF (or a reset) into r, for at most timeout_ms.
 * Returns 0 when the server closed the connection, -1 on timeout. */
static int read_to_eof(int fd, resp *r, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    size_t cap = 0;
    char *nl;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - mono_ms();
        ssize_t n;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        if (r->len + 4097 > cap) {
            char *p;
            cap = cap ? cap * 2 : 8192;
            p = realloc(r->raw, cap);
            assert_non_null(p);
            r->raw = p;
        }
        n = recv(fd, r->raw + r->len, cap - r->len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    if (r->raw == NULL && (r->raw = calloc(1, 1)) == NULL)
        fail_msg("out of memory");
    r->raw[r->len] = '\0';
    if (strncmp(r->raw, "HTTP/1.1 ", 9) == 0)
        r->status = atoi(r->raw + 9);
    if ((nl = strstr(r->raw, "\r\n\r\n")) != NULL)
        r->body = nl + 4;
    return 0;
}

/* Send the raw request req to the metrics port and read the response.
 * Fails the test if the server does not close within 5 s. */
static void http_raw(int port, int v6, const char *req, size_t len, resp *r)
{
    int fd = http_connect(port, v6);
    if (fd < 0)
        fail_msg("cannot connect to the metrics port %d", port);
    /* A refused oversized request may reset before all of it is sent. */
    (void)send_all(fd, req, len);
    if (read_to_eof(fd, r, 5000) != 0)
        fail_msg("no response within 5 s to %.40s", req);
    close(fd);
}

static void http_get(int port, const char *path, resp *r)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    http_raw(port, 0, req, (size_t)n, r);
}

/* The status of GET path, or -1 when the connection failed. */
static int get_status(int port, const char *path)
{
    char req[256];
    int fd = http_connect(port, 0), n, st;
    resp r;
    if (fd < 0)
        return -1;
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    if (send_all(fd, req, (size_t)n) != 0 || read_to_eof(fd, &r, 5000) != 0) {
        close(fd);
        resp_free(&r);
        return -1;
    }
    close(fd);
    st = r.status;
    resp_free(&r);
    return st;
}

typedef struct want_status {
    int port;
    const char *path;
    int status;
} want_status;

static bool status_is(void *arg)
{
    want_status *w = arg;
    return get_status(w->port, w->path) == w->status;
}

static bool wait_status(int port, const char *path, int status, int timeout_ms)
{
    want_status w = {port, path, status};
    return it_wait_until(status_is, &w, timeout_ms);
}

/* ===================================================================
 * Prometheus text format
 * =================================================================== */

#define MAX_FAMILIES 128

typedef struct families {
    char help[MAX_FAMILIES][128];
    char type[MAX_FAMILIES][128];
    char type_of[MAX_FAMILIES][32];
    int nhelp, ntype;
} families;

static int find_name(char names[][128], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int is_name_start(int ch)
{
    return isalpha(ch) || ch == '_' || ch == ':';
}

/* Check one sample line; store its metric name in name. Returns NULL when
 * fine, else what is wrong. */
static const char *check_sample(const char *line, char *name, size_t namelen)
{
    const char *p = line, *start = line;
    char *end;
    size_t n;

    if (!is_name_start((unsigned char)*p))
        return "bad metric name";
    while (is_name_start((unsigned char)*p) || isdigit((unsigned char)*p))
        p++;
    n = (size_t)(p - start);
    if (n >= namelen)
        return "name too long";
    memcpy(name, start, n);
    name[n] = '\0';
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (!isalpha((unsigned char)*p) && *p != '_')
                return "bad label name";
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            if (*p++ != '=' || *p++ != '"')
                return "expected =\" after a label name";
            while (*p != '"') {
                if (*p == '\0')
                    return "unterminated label value";
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        return "bad escape in a label value";
                }
                p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return "expected , or } after a label";
        }
        p++;
    }
    if (*p++ != ' ')
        return "expected a space before the value";
    errno = 0;
    (void)strtod(p, &end);
    if (end == p || errno != 0)
        return "value is not a number";
    if (*end == ' ') {                  /* optional timestamp */
        p = end + 1;
        (void)strtoll(p, &end, 10);
        if (end == p)
            return "bad timestamp";
    }
    if (*end != '\0')
        return "junk after the value";
    return NULL;
}

/* Check that body is Prometheus text: each line a HELP, a TYPE or a
 * sample; every sample's family has a HELP and a TYPE line before it.
 * Returns the number of samples; fails the test on the first bad line. */
static int check_exposition(const char *body)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    families *f = calloc(1, sizeof(*f));
    const char *p = body;
    int samples = 0;

    assert_non_null(f);
    assert_true(strlen(body) > 0);
    assert_int_equal(body[strlen(body) - 1], '\n');
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        char line[1024], name[128], fam[128], kind[32];
        const char *why;
        size_t len = (size_t)(nl - p);
        int ti;

        assert_true(len < sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        p = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            if (sscanf(line + 7, "%127s", name) != 1 || strlen(line + 7) <= strlen(name) + 1)
                fail_msg("HELP without a text: %s", line);
            assert_true(f->nhelp < MAX_FAMILIES);
            snprintf(f->help[f->nhelp++], 128, "%s", name);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            if (sscanf(line + 7, "%127s %31s", name, kind) != 2)
                fail_msg("bad TYPE line: %s", line);
            if (strcmp(kind, "counter") && strcmp(kind, "gauge") && strcmp(kind, "histogram") &&
                strcmp(kind, "summary") && strcmp(kind, "untyped"))
                fail_msg("bad TYPE: %s", line);
            if (find_name(f->type, f->ntype, name) >= 0)
                fail_msg("second TYPE line for %s", name);
            assert_true(f->ntype < MAX_FAMILIES);
            snprintf(f->type_of[f->ntype], 32, "%s", kind);
            snprintf(f->type[f->ntype++], 128, "%s", name);
            continue;
        }
        if (line[0] == '#')
            continue;                   /* other comments are allowed */
        if ((why = check_sample(line, name, sizeof(name))) != NULL)
            fail_msg("%s: %s", why, line);
        snprintf(fam, sizeof(fam), "%s", name);
        ti = find_name(f->type, f->ntype, fam);
        for (size_t s = 0; ti < 0 && s < 3; s++) {
            size_t nl2 = strlen(name), sl = strlen(suffixes[s]);
            if (nl2 > sl && strcmp(name + nl2 - sl, suffixes[s]) == 0) {
                snprintf(fam, sizeof(fam), "%.*s", (int)(nl2 - sl), name);
                ti = find_name(f->type, f->ntype, fam);
                if (ti >= 0 && strcmp(f->type_of[ti], "histogram") != 0 &&
                    strcmp(f->type_of[ti], "summary") != 0)
                    ti = -1;
            }
        }
        if (ti < 0)
            fail_msg("sample without a TYPE line before it: %s", line);
        if (find_name(f->help, f->nhelp, fam) < 0)
            fail_msg("sample without a HELP line before it: %s", line);
        samples++;
    }
    free(f);
    return samples;
}

/* The value of the sample whose name and labels are exactly `series`
 * (e.g. "riskd_up" or "x{a=\"b\"}"), or -1 when there is none. */
static double sample_value(const char *body, const char *series)
{
    size_t n = strlen(series);
    const char *p = body;
    while (p && *p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static double metric(int port, const char *series)
{
    resp r;
    double v;
    http_get(port, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.body);
    v = sample_value(r.body, series);
    resp_free(&r);
    return v;
}

/* ===================================================================
 * Fixture
 * =================================================================== */

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

/* Start riskd with metrics on a free loopback port and wait until
 * /healthz answers 200. */
static void start_riskd(fixture *f)
{
    char cfg[256];
    f->mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"}}", f->mport);
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
    if (!wait_status(f->mport, "/healthz", 200, 10000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("/healthz did not become 200");
    }
}

static void stop_riskd_ok(fixture *f)
{
    int st;
    it_riskd_signal(&f->env.riskd, SIGTERM);
    st = it_riskd_wait(&f->env.riskd, 15000);
    if (st != 0)
        it_riskd_dump_log(&f->env.riskd);
    assert_int_equal(st, 0);
}

/* ===================================================================
 * Tests
 * =================================================================== */

typedef struct want_metric {
    int port;
    const char *series;
    double at_least;
} want_metric;

static bool metric_reached(void *arg)
{
    want_metric *w = arg;
    return metric(w->port, w->series) >= w->at_least;
}

#define RATED "riskd_events_total{stream=\"enforce:scan\",type=\"inspection.rated\"}"

/* /metrics is valid Prometheus text with the right content type, and its
 * counters follow the input. */
static void test_metrics_exposition(void **state)
{
    fixture *f = *state;
    resp r;
    double rated0, written0;
    want_metric w;

    start_riskd(f);
    http_get(f->mport, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.raw, "\r\nContent-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.raw, "\r\nConnection: close\r\n"));
    assert_non_null(r.body);
    assert_true(check_exposition(r.body) >= 20);
    /* The Content-Length is exact. */
    assert_non_null(strstr(r.raw, "Content-Length: "));
    assert_int_equal(strtoul(strstr(r.raw, "Content-Length: ") + 16, NULL, 10), strlen(r.body));
    rated0 = sample_value(r.body, RATED);
    written0 = sample_value(r.body, "riskd_alerts_written_total");
    assert_true(rated0 == 0.0);
    assert_true(written0 == 0.0);
    assert_true(sample_value(r.body, "riskd_up") == 1.0);
    resp_free(&r);

    it_xadd(f->env.c, "enforce:scan", RATING("T1", "E1", "1", "2025-03-01T10:00:00Z"), NULL, 0);
    it_xadd(f->env.c, "enforce:scan", RATING("T2", "E1", "5", "2025-03-01T10:00:01Z"), NULL, 0);
    assert_true(it_wait_xlen(f->env.c, "alerts", 1, 10000));
    w = (want_metric){f->mport, RATED, rated0 + 2};
    assert_true(it_wait_until(metric_reached, &w, 10000));
    w = (want_metric){f->mport, "riskd_alerts_written_total", written0 + 1};
    assert_true(it_wait_until(metric_reached, &w, 10000));
    /* Exactly: two ratings, one alert (score 5 is not bad). */
    assert_true(metric(f->mport, RATED) == rated0 + 2);
    assert_true(metric(f->mport, "riskd_alerts_written_total") == written0 + 1);

    /* HEAD: the headers only. */
    http_raw(f->mport, 0, "HEAD /metrics HTTP/1.1\r\n\r\n", 26, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.body);
    assert_int_equal(strlen(r.body), 0);
    resp_free(&r);
    stop_riskd_ok(f);
}

/* /healthz: 200, 503 once Redis is killed, 200 again after a restart. */
static void test_healthz_follows_redis(void **state)
{
    fixture *f = *state;
    resp r;

    start_riskd(f);
    http_get(f->mport, "/healthz", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "{\"status\":\"consuming\","));
    resp_free(&r);

    redisFree(f->env.c);
    f->env.c = NULL;
    it_redis_kill(&f->env.redis);
    assert_true(wait_status(f->mport, "/healthz", 503, 10000));
    http_get(f->mport, "/healthz", &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "{\"status\":\"redis_down\","));
    resp_free(&r);
    assert_true(metric(f->mport, "riskd_up") == 0.0);

    assert_int_equal(it_redis_restart(&f->env.redis), 0);
    f->env.c = it_connect(f->env.redis.port);
    if (!wait_status(f->mport, "/healthz", 200, 15000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("/healthz did not come back");
    }
    stop_riskd_ok(f);
}

/* Wrong paths, wrong methods, malformed and oversized requests. */
static void test_bad_requests(void **state)
{
    fixture *f = *state;
    static const char garbage[] = "GARBAGE\r\n\r\n";
    static const char nohttp[] = "GET /healthz FTP/1.0\r\n\r\n";
    static const char post[] = "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
    char *big;
    resp r;
    size_t n;

    start_riskd(f);
    http_get(f->mport, "/nope", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    http_get(f->mport, "/metricsX", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* A query string does not change the path. */
    http_get(f->mport, "/healthz?verbose=1", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    http_raw(f->mport, 0, post, sizeof(post) - 1, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.raw, "\r\nAllow: GET, HEAD\r\n"));
    resp_free(&r);

    /* Malformed: 400, then the server closes (http_raw reads to EOF). */
    http_raw(f->mport, 0, garbage, sizeof(garbage) - 1, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    http_raw(f->mport, 0, nohttp, sizeof(nohttp) - 1, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    /* A request cut short by the client's half-close. */
    {
        int fd = http_connect(f->mport, 0);
        assert_true(fd >= 0);
        assert_int_equal(send_all(fd, "GET /heal", 9), 0);
        shutdown(fd, SHUT_WR);
        assert_int_equal(read_to_eof(fd, &r, 5000), 0);
        assert_int_equal(r.status, 400);
        resp_free(&r);
        close(fd);
    }

    /* Oversized: 16 KiB of header is refused with 431. */
    big = malloc(16 * 1024 + 64);
    assert_non_null(big);
    n = (size_t)sprintf(big, "GET /healthz HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 16 * 1024);
    n += 16 * 1024;
    memcpy(big + n, "\r\n\r\n", 4);
    n += 4;
    http_raw(f->mport, 0, big, n, &r);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    /* Just under the cap is fine. */
    n = (size_t)sprintf(big, "GET /healthz HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 8 * 1024 - n - 4);
    memcpy(big + 8 * 1024 - 4, "\r\n\r\n", 4);
    http_raw(f->mport, 0, big, 8 * 1024, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    free(big);

    assert_true(it_riskd_alive(&f->env.riskd));
    stop_riskd_ok(f);
}

/* A client that sends half a request blocks nobody; it gets 408 after the
 * 5 s timeout. SIGTERM with a client connected still exits 0. */
static void test_slow_client(void **state)
{
    fixture *f = *state;
    int slow, idle;
    int64_t t0;
    resp r;

    start_riskd(f);
    slow = http_connect(f->mport, 0);
    assert_true(slow >= 0);
    t0 = mono_ms();
    assert_int_equal(send_all(slow, "GET /healthz HTTP/1.1\r\nHo", 25), 0);
    it_sleep_ms(100);
    for (int i = 0; i < 5; i++) {
        int64_t s = mono_ms();
        assert_int_equal(get_status(f->mport, "/healthz"), 200);
        assert_true(mono_ms() - s < 1000);
    }
    /* The slow one is timed out: 408, then closed. */
    assert_int_equal(read_to_eof(slow, &r, 8000), 0);
    assert_int_equal(r.status, 408);
    assert_true(mono_ms() - t0 >= 4500);
    resp_free(&r);
    close(slow);

    /* A connected, silent client does not hold up a stop. */
    idle = http_connect(f->mport, 0);
    assert_true(idle >= 0);
    t0 = mono_ms();
    stop_riskd_ok(f);
    assert_true(mono_ms() - t0 < 3000);
    close(idle);
}

/* At most 64 clients at once: the 65th and later are closed at once;
 * once the crowd is gone, requests are served again. */
static void test_client_limit(void **state)
{
    fixture *f = *state;
    int fds[70], closed = 0;

    start_riskd(f);
    /* The /healthz polls of start_riskd count against the limit until
     * riskd's loop has run their close callbacks: let it. */
    it_sleep_ms(300);
    for (int i = 0; i < 70; i++) {
        fds[i] = http_connect(f->mport, 0);
        assert_true(fds[i] >= 0);
    }
    it_sleep_ms(300);
    for (int i = 0; i < 70; i++) {
        struct pollfd pfd = {fds[i], POLLIN, 0};
        if (poll(&pfd, 1, 0) == 1) {
            char b;
            if (recv(fds[i], &b, 1, MSG_DONTWAIT) <= 0)
                closed++;
        }
    }
    assert_int_equal(closed, 6);
    /* A request beyond the limit gets no response. */
    assert_int_equal(get_status(f->mport, "/healthz"), -1);
    for (int i = 0; i < 70; i++)
        close(fds[i]);
    assert_true(wait_status(f->mport, "/healthz", 200, 3000));
    stop_riskd_ok(f);
}

/* An address in use stops riskd at start with a line naming
 * metrics.listen. */
static void test_bind_failure(void **state)
{
    fixture *f = *state;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    char cfg[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(cfg, sizeof(cfg), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"}}", ntohs(sa.sin_port));
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, cfg), 0);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 10000), 1);
    assert_true(it_log_contains(&f->env.riskd, "metrics.listen"));
    assert_true(it_log_contains(&f->env.riskd, "address already in use"));
    close(fd);
}

/* IPv6: "[::1]:port" serves too (skipped when the host has no ::1). */
static void test_ipv6(void **state)
{
    fixture *f = *state;
    struct sockaddr_in6 sa;
    char cfg[256];
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    resp r;

    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        skip();
    }
    close(fd);
    f->mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"metrics\":{\"listen\":\"[::1]:%d\"}}", f->mport);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, cfg), 0);
    for (int i = 0; i < 100; i++) {
        int c = http_connect(f->mport, 1);
        if (c >= 0) {
            close(c);
            break;
        }
        it_sleep_ms(50);
    }
    http_raw(f->mport, 1, "GET /nope HTTP/1.0\r\n\r\n", 22, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* Not on IPv4. */
    assert_int_equal(http_connect(f->mport, 0), -1);
    stop_riskd_ok(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_exposition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_follows_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
