/* tests/bench/nullconsumer.c - the physical limit of draining the input
 * streams through a consumer group on one connection.
 *
 *   nullconsumer -p PORT [-g GROUP] [-b BATCH] [--scan KEY] [--case KEY]
 *
 * Creates GROUP (default "bench-null") on both streams at id 0, then loops:
 * XREADGROUP GROUP g c COUNT BATCH STREAMS scan case > >, and for what came
 * back one XACK per stream, pipelined with the next XREADGROUP so the
 * connection never idles for a round trip. Nothing else is done with the
 * entries. It stops when a read returns nothing and prints one key=value
 * line: entries, seconds and entries/s. Exit status 1 on a Redis error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "gen.h"

static const char *keys[2] = {"enforce:scan", "enforce:case"};
static char group[128] = "bench-null";
static char batch_s[32] = "500";

static void die(redisContext *c, const char *what)
{
    fprintf(stderr, "nullconsumer: %s: %s\n", what, c->errstr);
    exit(1);
}

static void append_read(redisContext *c)
{
    const char *av[] = {"XREADGROUP", "GROUP", group, "bench", "COUNT", batch_s,
                        "STREAMS", keys[0], keys[1], ">", ">"};
    if (redisAppendCommandArgv(c, 11, av, NULL) != REDIS_OK)
        die(c, "append");
}

static redisReply *get_reply(redisContext *c)
{
    void *rv = NULL;
    if (redisGetReply(c, &rv) != REDIS_OK || rv == NULL)
        die(c, "reply");
    if (((redisReply *)rv)->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "nullconsumer: %s\n", ((redisReply *)rv)->str);
        exit(1);
    }
    return rv;
}

/* Append one XACK per stream in reply r (an XREADGROUP reply). Returns the
 * number of entries and adds the number of XACKs appended to *nacks. */
static long ack_all(redisContext *c, const redisReply *r, int *nacks)
{
    long total = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *sr = r->element[s], *ents;
        const char **av;
        size_t *lens, n;
        if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2)
            continue;
        ents = sr->element[1];
        n = ents->elements;
        if (n == 0)
            continue;
        av = malloc((n + 3) * sizeof(*av));
        lens = malloc((n + 3) * sizeof(*lens));
        if (av == NULL || lens == NULL) {
            fprintf(stderr, "nullconsumer: out of memory\n");
            exit(1);
        }
        av[0] = "XACK"; lens[0] = 4;
        av[1] = sr->element[0]->str; lens[1] = sr->element[0]->len;
        av[2] = group; lens[2] = strlen(group);
        for (size_t i = 0; i < n; i++) {
            av[3 + i] = ents->element[i]->element[0]->str;
            lens[3 + i] = ents->element[i]->element[0]->len;
        }
        if (redisAppendCommandArgv(c, (int)(n + 3), av, lens) != REDIS_OK)
            die(c, "append");
        free(av);
        free(lens);
        (*nacks)++;
        total += (long)n;
    }
    return total;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"scan", required_argument, NULL, 'S'},
        {"case", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    redisContext *c;
    int port = 6379, ch;
    long long total = 0;
    int64_t t0;
    double secs;

    while ((ch = getopt_long(argc, argv, "p:g:b:", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'g': snprintf(group, sizeof(group), "%s", optarg); break;
        case 'b': snprintf(batch_s, sizeof(batch_s), "%d", atoi(optarg)); break;
        case 'S': keys[0] = optarg; break;
        case 'C': keys[1] = optarg; break;
        default:
            fprintf(stderr, "usage: nullconsumer -p PORT [-g GROUP] [-b BATCH] "
                            "[--scan KEY] [--case KEY]\n");
            return 1;
        }
    }
    c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        fprintf(stderr, "nullconsumer: cannot connect to 127.0.0.1:%d\n", port);
        return 1;
    }
    for (int s = 0; s < 2; s++) {
        redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", keys[s], group);
        if (r == NULL)
            die(c, "XGROUP");
        freeReplyObject(r);     /* BUSYGROUP is fine */
    }
    t0 = bg_now_ns();
    append_read(c);
    for (;;) {
        redisReply *r = get_reply(c);
        int nacks = 0;
        long n = ack_all(c, r, &nacks);
        freeReplyObject(r);
        if (n == 0)
            break;
        total += n;
        append_read(c);         /* in the same write as the XACKs */
        for (int i = 0; i < nacks; i++)
            freeReplyObject(get_reply(c));
    }
    secs = (double)(bg_now_ns() - t0) / 1e9;
    printf("entries=%lld seconds=%.3f rate=%.0f\n", total, secs, (double)total / secs);
    redisFree(c);
    return 0;
}
