/* tests/bench/latency.c - end-to-end latency from XADD to the alert on its
 * pub/sub channel, at a steady event rate.
 *
 *   latency -p PORT -r EVENTS_PER_S [-d SECONDS] [--warmup SECONDS]
 *           [--probe SHARE] [--anomaly SHARE] [--units N] [--officers N]
 *           [--enterprises N] [--settle SECONDS]
 *
 * A writer (the main thread) sends gen.c's mix at R events/s, paced in 1 ms
 * ticks and pipelined within a tick, each stamped with the wall clock as
 * its event time. Every entry gets an explicit id <ms>-<n> where n counts
 * all entries sent, and the monotonic time just before its tick's write is
 * kept in send_ns[n]. A subscriber thread PSUBSCRIBEs alerts:* on its own
 * connection; for each alert it takes the receive time, reads the last
 * evidence entry (the triggering one) and records receive - send_ns[n].
 * Alerts of timer rules (their trigger is the arming entry, long before)
 * and of entries sent during the warm-up are not counted. `probe` (default
 * 0.5) is the share of ratings scored 1, each of which fires bad_rating at
 * once, so there are enough samples for p99.9. After the run and `settle`
 * seconds the writer PUBLISHes alerts:__bench_stop to end the subscriber.
 * Prints one key=value line: target and achieved rate, entries, samples,
 * p50/p99/p99.9/max in ms. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "gen.h"

static int port = 6379;
static _Atomic int64_t *send_ns;
static long long send_cap;
static _Atomic long long warm_seq = -1;    /* first entry after the warm-up */
static double *samples;
static size_t nsamples, samples_cap;
static long long alerts_seen, alerts_timer, alerts_warm;
static atomic_int sub_ready;

static int timer_rule(const char *rule)
{
    return strcmp(rule, "scan_without_filing") == 0 ||
           strcmp(rule, "case_without_filing") == 0 ||
           strcmp(rule, "filed_not_scanned") == 0;
}

static void on_alert(const char *msg, size_t len, int64_t recv)
{
    json_error_t jerr;
    json_t *a = json_loadb(msg, len, 0, &jerr), *ev, *last;
    const char *rule, *ref, *dash;
    long long seq, warm;

    alerts_seen++;
    if (a == NULL)
        return;
    rule = json_string_value(json_object_get(a, "rule"));
    ev = json_object_get(a, "evidence");
    last = json_array_get(ev, json_array_size(ev) - 1);
    ref = json_string_value(last);
    if (rule == NULL || ref == NULL || (dash = strrchr(ref, '-')) == NULL) {
        json_decref(a);
        return;
    }
    if (timer_rule(rule)) {
        alerts_timer++;
        json_decref(a);
        return;
    }
    seq = atoll(dash + 1);
    warm = atomic_load(&warm_seq);
    if (warm < 0 || seq < warm || seq >= send_cap ||
        atomic_load_explicit(&send_ns[seq], memory_order_acquire) == 0) {
        alerts_warm++;
        json_decref(a);
        return;
    }
    if (nsamples == samples_cap) {
        size_t nc = samples_cap ? samples_cap * 2 : 4096;
        double *ns = realloc(samples, nc * sizeof(*ns));
        if (ns == NULL) {
            json_decref(a);
            return;
        }
        samples = ns;
        samples_cap = nc;
    }
    samples[nsamples++] = (double)(recv - atomic_load(&send_ns[seq])) / 1e6;
    json_decref(a);
}

static void *subscriber(void *arg)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *r;
    (void)arg;
    if (c == NULL || c->err) {
        fprintf(stderr, "latency: subscriber cannot connect\n");
        exit(1);
    }
    r = redisCommand(c, "PSUBSCRIBE alerts:*");
    if (r == NULL) {
        fprintf(stderr, "latency: PSUBSCRIBE: %s\n", c->errstr);
        exit(1);
    }
    freeReplyObject(r);
    atomic_store(&sub_ready, 1);
    for (;;) {
        void *rv = NULL;
        int64_t recv;
        if (redisGetReply(c, &rv) != REDIS_OK || rv == NULL) {
            fprintf(stderr, "latency: subscriber: %s\n", c->errstr);
            exit(1);
        }
        recv = bg_now_ns();
        r = rv;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
            strcmp(r->element[0]->str, "pmessage") == 0) {
            if (strcmp(r->element[2]->str, "alerts:__bench_stop") == 0) {
                freeReplyObject(r);
                break;
            }
            on_alert(r->element[3]->str, r->element[3]->len, recv);
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    size_t i;
    if (nsamples == 0)
        return 0;
    i = (size_t)(p * (double)(nsamples - 1) + 0.5);
    return samples[i];
}

static void sleep_until(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"warmup", required_argument, NULL, 'w'},
        {"probe", required_argument, NULL, 'q'},
        {"anomaly", required_argument, NULL, 'a'},
        {"units", required_argument, NULL, 'u'},
        {"officers", required_argument, NULL, 'o'},
        {"enterprises", required_argument, NULL, 'e'},
        {"settle", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *keys[2] = {"enforce:scan", "enforce:case"};
    double rate = 1000, dur = 20, warmup = 2, settle = 3, secs;
    void *send_mem;
    long long sent = 0, total;
    int64_t start, tick, last_ms = 0;
    pthread_t th;
    bg_opts o;
    bg_gen *g;
    redisContext *c;
    redisReply *r;
    char buf[4096];
    int ch;

    bg_opts_default(&o);
    o.probe = 0.5;
    while ((ch = getopt_long(argc, argv, "p:r:d:", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': dur = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'q': o.probe = atof(optarg); break;
        case 'a': o.anomaly = atof(optarg); break;
        case 'u': o.units = atoi(optarg); break;
        case 'o': o.officers = atoi(optarg); break;
        case 'e': o.enterprises = atoi(optarg); break;
        case 's': settle = atof(optarg); break;
        default:
            fprintf(stderr, "usage: latency -p PORT -r RATE [-d SECONDS] [--warmup S] "
                            "[--probe SHARE] [--anomaly SHARE] [--units N] "
                            "[--officers N] [--enterprises N] [--settle S]\n");
            return 1;
        }
    }
    if (rate < 1 || dur <= warmup)
        return 1;
    total = (long long)(rate * dur);
    o.entries = total;
    /* Only the mix matters (ts is the wall clock): simulate 60 days, so
     * that follow-ups (up to weeks after their filing) come within the
     * run, and leave out clock.tick. */
    o.days = 60;
    o.no_ticks = 1;
    g = bg_gen_new(&o);
    send_cap = total + 1;
    send_mem = calloc((size_t)send_cap, sizeof(*send_ns));
    send_ns = send_mem;
    if (g == NULL || send_mem == NULL) {
        fprintf(stderr, "latency: bad options or out of memory\n");
        return 1;
    }
    c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        fprintf(stderr, "latency: cannot connect to 127.0.0.1:%d\n", port);
        return 1;
    }
    if (pthread_create(&th, NULL, subscriber, NULL) != 0)
        return 1;
    while (!atomic_load(&sub_ready))
        sleep_until(bg_now_ns() + 1000000);

    start = bg_now_ns();
    tick = start;
    while (sent < total) {
        int64_t now = bg_now_ns();
        long long due = (long long)((double)(now - start) * rate / 1e9) + 1, k, i;
        int64_t wall = bg_wall_ms(), t;
        int done = 0;
        if (due > total)
            due = total;
        if (atomic_load(&warm_seq) < 0 && (double)(now - start) / 1e9 >= warmup)
            atomic_store(&warm_seq, sent + 1);
        if (wall > last_ms)
            last_ms = wall;
        k = due - sent;
        for (i = 0; i < k; i++) {
            const char *av[5];
            size_t lens[5];
            char id[48];
            int64_t ts;
            int stream, n = bg_gen_next(g, last_ms, &stream, &ts, buf, sizeof(buf));
            if (n < 0) {
                fprintf(stderr, "latency: generator failed\n");
                return 1;
            }
            snprintf(id, sizeof(id), "%lld-%lld", (long long)last_ms, sent + i + 1);
            av[0] = "XADD"; lens[0] = 4;
            av[1] = keys[stream]; lens[1] = strlen(keys[stream]);
            av[2] = id; lens[2] = strlen(id);
            av[3] = "data"; lens[3] = 4;
            av[4] = buf; lens[4] = (size_t)n;
            if (redisAppendCommandArgv(c, 5, av, lens) != REDIS_OK)
                return 1;
        }
        t = bg_now_ns();
        for (i = 0; i < k; i++)
            atomic_store_explicit(&send_ns[sent + i + 1], t, memory_order_release);
        while (!done)
            if (redisBufferWrite(c, &done) != REDIS_OK) {
                fprintf(stderr, "latency: write: %s\n", c->errstr);
                return 1;
            }
        for (i = 0; i < k; i++) {
            void *rv = NULL;
            if (redisGetReply(c, &rv) != REDIS_OK || rv == NULL) {
                fprintf(stderr, "latency: %s\n", c->errstr);
                return 1;
            }
            if (((redisReply *)rv)->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "latency: XADD: %s\n", ((redisReply *)rv)->str);
                return 1;
            }
            freeReplyObject(rv);
        }
        sent += k;
        tick += 1000000;
        if (tick > bg_now_ns())
            sleep_until(tick);
    }
    secs = (double)(bg_now_ns() - start) / 1e9;
    sleep_until(bg_now_ns() + (int64_t)(settle * 1e9));
    r = redisCommand(c, "PUBLISH alerts:__bench_stop x");
    if (r)
        freeReplyObject(r);
    pthread_join(th, NULL);
    qsort(samples, nsamples, sizeof(double), cmp_double);
    printf("target=%.0f achieved=%.0f entries=%lld alerts=%lld samples=%zu "
           "p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
           rate, (double)sent / secs, sent, alerts_seen, nsamples, pct(0.50), pct(0.99),
           pct(0.999), nsamples ? samples[nsamples - 1] : 0.0);
    redisFree(c);
    bg_gen_free(g);
    free(samples);
    free(send_mem);
    return 0;
}
