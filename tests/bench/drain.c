/* tests/bench/drain.c - run riskd over the input streams and time how long
 * it takes to consume them, with its peak memory.
 *
 *   drain -p PORT [-g GROUP] [--metrics PORT] [--redis-pid PID]
 *         [--feed CMD] [--pid-file FILE] [--timeout SECONDS] -- COMMAND...
 *
 * Starts COMMAND (riskd -c ...) and polls XINFO GROUPS of both streams
 * every 10 ms. "read" is the first moment the group (default "riskd") has
 * lag 0 on both streams (every entry delivered; riskd holds at most one
 * batch it has not applied yet); "acked" the first moment after that with
 * no pending entries either (riskd acknowledges only what a checkpoint
 * covers, so this trails by up to state.interval). Times count from the
 * start of COMMAND, or with --feed from the start of CMD, which is run
 * through sh once COMMAND's group exists and it has idled for 500 ms (its
 * VmRSS then is the baseline). Afterwards it reads VmHWM/VmRSS and the CPU
 * time of COMMAND (and of redis-server with --redis-pid), scrapes a few
 * gauges from riskd's /metrics with --metrics, stops COMMAND with SIGTERM,
 * reads the size of its final checkpoint (STRLEN riskd:state) and prints
 * one key=value line. Exit status 1 on timeout or error. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "gen.h"

static const char *keys[2] = {"enforce:scan", "enforce:case"};
static const char *group = "riskd";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A "Name:   123 kB" value of /proc/pid/status, in kB, or -1. */
static long proc_status_kb(pid_t pid, const char *name)
{
    char path[64], line[256];
    size_t nl = strlen(name);
    long v = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
            v = strtol(line + nl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* User + system CPU seconds of pid, or -1. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct grp {
    int found;
    long long pending, lag, read, len;
} grp;

static int group_info(redisContext *c, const char *key, grp *g)
{
    redisReply *r = redisCommand(c, "XINFO GROUPS %s", key), *x;
    memset(g, 0, sizeof(*g));
    g->lag = -1;
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            grp t = {1, 0, -1, 0, 0};
            int mine = 0;
            for (size_t k = 0; k + 1 < e->elements; k += 2) {
                const char *f = e->element[k]->str;
                const redisReply *v = e->element[k + 1];
                if (strcmp(f, "name") == 0 && v->str && strcmp(v->str, group) == 0)
                    mine = 1;
                else if (strcmp(f, "pending") == 0)
                    t.pending = v->integer;
                else if (strcmp(f, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                    t.lag = v->integer;
                else if (strcmp(f, "entries-read") == 0 && v->type == REDIS_REPLY_INTEGER)
                    t.read = v->integer;
            }
            if (mine)
                *g = t;
        }
    }
    freeReplyObject(r);
    x = redisCommand(c, "XLEN %s", key);
    if (x == NULL)
        return -1;
    g->len = x->type == REDIS_REPLY_INTEGER ? x->integer : 0;
    freeReplyObject(x);
    if (g->found && g->lag < 0)     /* unknown lag: judge by entries-read */
        g->lag = g->len > g->read ? g->len - g->read : 0;
    return 0;
}

/* GET /metrics from 127.0.0.1:port into a malloc'ed string, or NULL. */
static char *scrape(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t cap = 1 << 16, n = 0;
    char *buf;
    const char *req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (fd < 0)
        return NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    buf = malloc(cap);
    if (buf == NULL || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        free(buf);
        close(fd);
        return NULL;
    }
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n == cap - 1)
            break;
    }
    close(fd);
    buf[n] = '\0';
    return buf;
}

/* Print "name=value" for each metric line starting with prefix. */
static void print_metric(const char *text, const char *prefix, const char *name)
{
    const char *p = text;
    size_t pl = strlen(prefix);
    double sum = 0;
    int any = 0;
    while (p && *p) {
        if (strncmp(p, prefix, pl) == 0) {
            const char *sp = strchr(p, ' ');
            if (sp) {
                sum += atof(sp + 1);
                any = 1;
            }
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (any)
        printf(" %s=%.0f", name, sum);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"metrics", required_argument, NULL, 'm'},
        {"redis-pid", required_argument, NULL, 'r'},
        {"feed", required_argument, NULL, 'f'},
        {"pid-file", required_argument, NULL, 'P'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *feed = NULL, *pidfile = NULL;
    int port = 6379, mport = 0, ch, status = 0;
    pid_t pid, rpid = 0;
    double timeout = 3600, t_read = -1, t_acked = -1, cpu0 = 0, rcpu0 = 0, stop_s;
    long base_kb = -1;
    int64_t t0;
    redisContext *c;
    grp g[2];

    while ((ch = getopt_long(argc, argv, "+p:g:", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'g': group = optarg; break;
        case 'm': mport = atoi(optarg); break;
        case 'r': rpid = (pid_t)atoi(optarg); break;
        case 'f': feed = optarg; break;
        case 'P': pidfile = optarg; break;
        case 't': timeout = atof(optarg); break;
        default:
            fprintf(stderr, "usage: drain -p PORT [-g GROUP] [--metrics PORT] "
                            "[--redis-pid PID] [--feed CMD] [--pid-file F] "
                            "[--timeout S] -- COMMAND...\n");
            return 1;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "drain: no command\n");
        return 1;
    }
    c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        fprintf(stderr, "drain: cannot connect to 127.0.0.1:%d\n", port);
        return 1;
    }
    if (rpid > 0)
        rcpu0 = proc_cpu_s(rpid);
    t0 = bg_now_ns();
    pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        execvp(argv[optind], argv + optind);
        _exit(127);
    }
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (f) {
            fprintf(f, "%d\n", (int)pid);
            fclose(f);
        }
    }
    if (feed) {
        for (;;) {
            if (group_info(c, keys[0], &g[0]) != 0 || group_info(c, keys[1], &g[1]) != 0)
                return 1;
            if (g[0].found && g[1].found)
                break;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                fprintf(stderr, "drain: command exited early\n");
                return 1;
            }
            sleep_ms(10);
        }
        sleep_ms(500);
        base_kb = proc_status_kb(pid, "VmRSS");
        cpu0 = proc_cpu_s(pid);
        if (rpid > 0)
            rcpu0 = proc_cpu_s(rpid);
        t0 = bg_now_ns();
        if (system(feed) != 0) {
            fprintf(stderr, "drain: feed failed\n");
            kill(pid, SIGTERM);
            return 1;
        }
    }
    for (;;) {
        double now = (double)(bg_now_ns() - t0) / 1e9;
        if (group_info(c, keys[0], &g[0]) != 0 || group_info(c, keys[1], &g[1]) != 0) {
            fprintf(stderr, "drain: redis: %s\n", c->errstr);
            kill(pid, SIGTERM);
            return 1;
        }
        if (g[0].found && g[1].found && g[0].lag == 0 && g[1].lag == 0) {
            if (t_read < 0)
                t_read = now;
            if (g[0].pending == 0 && g[1].pending == 0) {
                t_acked = now;
                break;
            }
        }
        if (now > timeout || waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "drain: %s before the streams were drained\n",
                    now > timeout ? "timeout" : "command exited");
            kill(pid, SIGTERM);
            return 1;
        }
        sleep_ms(10);
    }
    {
        long long n = g[0].read + g[1].read;
        double cpu = proc_cpu_s(pid) - cpu0;
        printf("entries=%lld t_read=%.3f t_acked=%.3f rate=%.0f rate_acked=%.0f cpu_s=%.2f",
               n, t_read, t_acked, (double)n / t_read, (double)n / t_acked, cpu);
        if (rpid > 0)
            printf(" redis_cpu_s=%.2f", proc_cpu_s(rpid) - rcpu0);
        printf(" hwm_kb=%ld rss_kb=%ld", proc_status_kb(pid, "VmHWM"),
               proc_status_kb(pid, "VmRSS"));
        if (base_kb >= 0)
            printf(" base_kb=%ld", base_kb);
    }
    if (mport > 0) {
        char *m = scrape(mport);
        if (m) {
            print_metric(m, "riskd_filings_tracked ", "filings");
            print_metric(m, "riskd_timers ", "timers");
            print_metric(m, "riskd_detector_tracked_keys{", "det_keys");
            print_metric(m, "riskd_detector_tracked_keys{detector=\"unfiled_inspection\"}",
                         "unfiled_keys");
            print_metric(m, "riskd_events_total{", "applied");
            print_metric(m, "riskd_alerts_written_total ", "alerts");
            print_metric(m, "riskd_dead_letters_total ", "dead");
            print_metric(m, "riskd_checkpoints_total ", "checkpoints");
            free(m);
        }
    }
    {
        int64_t ts = bg_now_ns();
        int done = 0;
        kill(pid, SIGTERM);
        for (int i = 0; i < 12000 && !done; i++) {
            if (waitpid(pid, &status, WNOHANG) == pid)
                done = 1;
            else
                sleep_ms(10);
        }
        stop_s = (double)(bg_now_ns() - ts) / 1e9;
        if (!done) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        printf(" stop_s=%.2f exit=%d", stop_s,
               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    {
        /* the size of the last checkpoint (riskd's default state.key) */
        redisReply *r = redisCommand(c, "STRLEN riskd:state");
        printf(" state_bytes=%lld\n", r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL);
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    return 0;
}
