/* tests/bench/sse.c - riskweb under 1,000 live feeds (tests/bench/riskweb.sh).
 *
 *   sse -r REDIS_PORT -w WEB_PORT -p RISKWEB_PID [-c CLIENTS] [-n EVENTS]
 *       [--size BYTES]
 *
 * Opens CLIENTS connections to /api/events (non-blocking sockets, one
 * epoll), waits until each has its headers, then, EVENTS times: XADD one
 * alert of about BYTES bytes (its id "bench<n>"), and reads every client
 * until each has received it; the delay of that alert is the time from
 * just before the XADD to its arrival at the last of the clients (the
 * CLIENTS-th). Printed: riskweb's RSS before the clients, with them
 * connected and at the end (VmRSS, VmHWM of /proc/PID/status), and p50 /
 * p99 / max of the delays. Then the same again with one more client that
 * connects with a 4 KiB receive buffer and never reads ("stalled"): the
 * delays to the others, whether riskweb disconnected it
 * (riskweb_slow_disconnects_total) and riskweb's RSS after. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

typedef struct client {
    int fd;
    int headers;
    long got;                       /* highest bench number seen */
    char tail[64];                  /* the end of the last read */
    size_t tail_len;
} client;

static int web_port, pid;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double rss_mb(const char *field)
{
    char path[64], line[256];
    double v = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = strtod(line + strlen(field) + 1, NULL) / 1024.0;
    fclose(f);
    return v;
}

static double metric(const char *name)
{
    char req[] = "GET /metrics HTTP/1.0\r\n\r\n", buf[8192], *p;
    struct sockaddr_in a;
    size_t got = 0;
    ssize_t k;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    double v = -1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)web_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, req, sizeof(req) - 1) < 0) {
        close(fd);
        return -1;
    }
    while (got + 1 < sizeof(buf) && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fd);
    for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, strlen(name)) == 0 && p[strlen(name)] == ' ')
            v = strtod(p + strlen(name) + 1, NULL);
    return v;
}

static int open_client(int ep, client *c, int rcvbuf)
{
    static const char req[] = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct sockaddr_in a;
    struct epoll_event ev;

    memset(c, 0, sizeof(*c));
    c->got = -1;
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)web_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(c->fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
        return -1;
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    if (ep >= 0) {
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    return 0;
}

/* Read what c has; note "bench<n>" ids seen (the text may split anywhere:
 * the last bytes of the previous read are searched again). */
static void drain(client *c)
{
    char buf[65536 + 64];
    ssize_t k;

    for (;;) {
        size_t off = c->tail_len;
        char *p;
        memcpy(buf, c->tail, off);
        k = read(c->fd, buf + off, 65536);
        if (k <= 0)
            return;
        if (!c->headers && memmem(buf, off + (size_t)k, "\r\n\r\n", 4) != NULL)
            c->headers = 1;
        buf[off + (size_t)k] = '\0';
        for (p = buf; (p = strstr(p, "\"id\":\"bench")) != NULL; p += 11) {
            char *e;
            long n = strtol(p + 11, &e, 10);
            if (*e == '"' && n > c->got)
                c->got = n;
        }
        c->tail_len = off + (size_t)k < 40 ? off + (size_t)k : 40;
        memcpy(c->tail, buf + off + (size_t)k - c->tail_len, c->tail_len);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* events alerts, each waited for at every client; delays in ms into d. */
static int run_events(redisContext *rc, int ep, client *cs, int nc, long from, int n,
                      size_t size, double *d)
{
    char *json = malloc(size + 256);
    struct epoll_event evs[256];
    int i;

    for (i = 0; i < n; i++) {
        long id = from + i;
        int have = 0, k, j;
        int64_t t0, end;
        redisReply *r;
        int len = snprintf(json, 256, "{\"id\":\"bench%ld\",\"status\":\"firing\","
                           "\"detector\":\"bench\",\"summary\":\"", id);
        memset(json + len, 'x', size);
        strcpy(json + len + size, "\"}");
        t0 = now_ns();
        r = redisCommand(rc, "XADD alerts * data %s", json);
        freeReplyObject(r);
        end = t0 + 10LL * 1000000000;
        for (j = 0; j < nc; j++)
            have += cs[j].got >= id;
        while (have < nc && now_ns() < end) {
            k = epoll_wait(ep, evs, 256, 100);
            for (j = 0; j < k; j++) {
                client *c = evs[j].data.ptr;
                int before = c->got >= id;
                drain(c);
                if (!before && c->got >= id)
                    have++;
            }
        }
        if (have < nc) {
            fprintf(stderr, "sse: event %ld reached %d of %d clients in 10 s\n", id, have, nc);
            free(json);
            return -1;
        }
        d[i] = (double)(now_ns() - t0) / 1e6;
    }
    free(json);
    return 0;
}

static void report(const char *what, double *d, int n)
{
    qsort(d, (size_t)n, sizeof(*d), cmp_d);
    printf("%-28s events=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", what, n, d[n / 2],
           d[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1], d[n - 1]);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"size", required_argument, NULL, 's'},
                                             {NULL, 0, NULL, 0}};
    int redis_port = 6379, nc = 1000, n = 200, opt, ep, i;
    size_t size = 1000;
    client *cs, stalled;
    redisContext *rc;
    double *d, rss0;
    int64_t t0;

    while ((opt = getopt_long(argc, argv, "r:w:p:c:n:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': redis_port = atoi(optarg); break;
        case 'w': web_port = atoi(optarg); break;
        case 'p': pid = atoi(optarg); break;
        case 'c': nc = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        default: return 2;
        }
    }
    if ((rc = redisConnect("127.0.0.1", redis_port)) == NULL || rc->err) {
        fprintf(stderr, "sse: cannot connect to Redis\n");
        return 1;
    }
    cs = calloc((size_t)nc, sizeof(*cs));
    d = calloc((size_t)n, sizeof(*d));
    ep = epoll_create1(0);
    rss0 = rss_mb("VmRSS:");
    t0 = now_ns();
    for (i = 0; i < nc; i++)
        if (open_client(ep, &cs[i], 0) != 0) {
            fprintf(stderr, "sse: client %d: %s\n", i, strerror(errno));
            return 1;
        }
    /* every client has its headers */
    for (;;) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 100), done = 0;
        for (i = 0; i < k; i++)
            drain(evs[i].data.ptr);
        for (i = 0; i < nc; i++)
            done += cs[i].headers;
        if (done == nc)
            break;
        if (now_ns() - t0 > 30LL * 1000000000) {
            fprintf(stderr, "sse: only %d of %d clients connected in 30 s\n", done, nc);
            return 1;
        }
    }
    printf("clients=%d connect_all_ms=%.1f sse_clients_metric=%.0f\n", nc,
           (double)(now_ns() - t0) / 1e6, metric("riskweb_sse_clients"));
    printf("rss_idle_mb=%.1f rss_connected_mb=%.1f\n", rss0, rss_mb("VmRSS:"));
    if (run_events(rc, ep, cs, nc, 0, n, size, d) != 0)
        return 1;
    report("delay to the last client", d, n);
    printf("rss_after_mb=%.1f hwm_mb=%.1f\n", rss_mb("VmRSS:"), rss_mb("VmHWM:"));

    /* One stalled client among them. */
    if (open_client(-1, &stalled, 4096) != 0)
        return 1;
    if (run_events(rc, ep, cs, nc, n, n, size, d) != 0)
        return 1;
    report("with one stalled client", d, n);
    printf("stalled_disconnected=%.0f rss_after_mb=%.1f hwm_mb=%.1f events_sent=%.0f\n",
           metric("riskweb_slow_disconnects_total"), rss_mb("VmRSS:"), rss_mb("VmHWM:"),
           metric("riskweb_events_sent_total"));
    return 0;
}
