/* tests/bench/loadgen.c - write a backlog of realistic events to the input
 * streams as fast as one pipelined connection allows.
 *
 *   loadgen -p PORT [-n ENTRIES] [--units N] [--officers N]
 *           [--enterprises N] [--days D] [--anomaly SHARE] [--filings-only]
 *           [--seed N] [--pipeline N] [--scan KEY] [--case KEY] [--repeat-every K]
 *
 * The events come from gen.c (every event type, a share of anomalies).
 * Commands are appended with redisAppendCommandArgv and their replies read
 * every --pipeline commands (default 1000), so the connection never waits a
 * round trip per entry. Prints one line of key=value results: entries,
 * entries per stream, bytes of JSON, seconds and entries/s. With
 * --repeat-every K every K-th event is written twice in a row, as a
 * producer's retried XADD would (the copy counts as one of the ENTRIES).
 * Exit status 1 on a Redis error or bad arguments. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "gen.h"

static void usage(void)
{
    fprintf(stderr, "usage: loadgen -p PORT [-n ENTRIES] [--units N] [--officers N] "
                    "[--enterprises N] [--days D] [--anomaly SHARE] [--filings-only] "
                    "[--seed N] [--pipeline N] [--scan KEY] [--case KEY] "
                    "[--repeat-every K]\n");
    exit(1);
}

/* Read `n` replies from c; returns 0 or -1 (printed) on an error reply or
 * a lost connection. */
static int drain_replies(redisContext *c, long n)
{
    for (long i = 0; i < n; i++) {
        void *rv = NULL;
        redisReply *r;
        if (redisGetReply(c, &rv) != REDIS_OK || rv == NULL) {
            fprintf(stderr, "loadgen: redis: %s\n", c->errstr);
            return -1;
        }
        r = rv;
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "loadgen: XADD: %s\n", r->str);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"units", required_argument, NULL, 'u'},
        {"officers", required_argument, NULL, 'o'},
        {"enterprises", required_argument, NULL, 'e'},
        {"days", required_argument, NULL, 'd'},
        {"anomaly", required_argument, NULL, 'a'},
        {"filings-only", no_argument, NULL, 'F'},
        {"seed", required_argument, NULL, 's'},
        {"pipeline", required_argument, NULL, 'P'},
        {"scan", required_argument, NULL, 'S'},
        {"case", required_argument, NULL, 'C'},
        {"repeat-every", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    const char *keys[2] = {"enforce:scan", "enforce:case"};
    bg_opts o;
    bg_gen *g;
    redisContext *c;
    int port = 6379, ch;
    long pipeline = 1000, queued = 0, repeat_every = 0;
    long long per[2] = {0, 0}, bytes = 0, i;
    char buf[4096];
    int64_t t0;
    double secs;

    bg_opts_default(&o);
    while ((ch = getopt_long(argc, argv, "p:n:", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'n': o.entries = atoll(optarg); break;
        case 'u': o.units = atoi(optarg); break;
        case 'o': o.officers = atoi(optarg); break;
        case 'e': o.enterprises = atoi(optarg); break;
        case 'd': o.days = atof(optarg); break;
        case 'a': o.anomaly = atof(optarg); break;
        case 'F': o.filings_only = 1; break;
        case 's': o.seed = strtoull(optarg, NULL, 10); break;
        case 'P': pipeline = atol(optarg); break;
        case 'S': keys[0] = optarg; break;
        case 'C': keys[1] = optarg; break;
        case 'R': repeat_every = atol(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || pipeline < 1 || repeat_every < 0)
        usage();
    g = bg_gen_new(&o);
    if (g == NULL) {
        fprintf(stderr, "loadgen: bad options or out of memory\n");
        return 1;
    }
    c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        fprintf(stderr, "loadgen: cannot connect to 127.0.0.1:%d\n", port);
        return 1;
    }
    t0 = bg_now_ns();
    for (i = 0; i < o.entries; i++) {
        const char *argv_[5];
        size_t lens[5];
        int64_t ts;
        int stream, n = bg_gen_next(g, -1, &stream, &ts, buf, sizeof(buf));
        if (n < 0) {
            fprintf(stderr, "loadgen: generator failed\n");
            return 1;
        }
        argv_[0] = "XADD"; lens[0] = 4;
        argv_[1] = keys[stream]; lens[1] = strlen(keys[stream]);
        argv_[2] = "*"; lens[2] = 1;
        argv_[3] = "data"; lens[3] = 4;
        argv_[4] = buf; lens[4] = (size_t)n;
        if (redisAppendCommandArgv(c, 5, argv_, lens) != REDIS_OK) {
            fprintf(stderr, "loadgen: out of memory\n");
            return 1;
        }
        per[stream]++;
        bytes += n;
        if (repeat_every > 0 && i % repeat_every == repeat_every - 1 && i + 1 < o.entries) {
            /* a producer's retry: the same event again, under a new entry id */
            if (redisAppendCommandArgv(c, 5, argv_, lens) != REDIS_OK) {
                fprintf(stderr, "loadgen: out of memory\n");
                return 1;
            }
            per[stream]++;
            bytes += n;
            i++;
            queued++;
        }
        if (++queued >= pipeline) {
            if (drain_replies(c, queued) != 0)
                return 1;
            queued = 0;
        }
    }
    if (drain_replies(c, queued) != 0)
        return 1;
    secs = (double)(bg_now_ns() - t0) / 1e9;
    printf("entries=%lld scan=%lld case=%lld bytes=%lld seconds=%.3f rate=%.0f\n",
           o.entries, per[0], per[1], bytes, secs, (double)o.entries / secs);
    redisFree(c);
    bg_gen_free(g);
    return 0;
}
