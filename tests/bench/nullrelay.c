/* tests/bench/nullrelay.c - the floor of the XADD -> channel path: a
 * consumer that does nothing but relay.
 *
 *   nullrelay -p PORT [-g GROUP] [--scan KEY] [--case KEY]
 *
 * The latency counterpart of nullconsumer: on one connection it loops
 * XREADGROUP GROUP g relay COUNT 500 BLOCK 1000 STREAMS scan case > >, and
 * for each entry that is a latency probe of the load generator (an
 * inspection.rated scored 1, which riskd's bad_rating turns into an alert
 * at once) it PUBLISHes {"rule":"null_relay","evidence":["<entry id>"]} on
 * alerts:null_relay, then one XACK per stream, all pipelined with the
 * replies read before the next read. No JSON parsing, no state, no alert
 * stream, no dedupe: what is left is Redis, the loopback and the scheduler
 * between the producer's XADD and the subscriber, i.e. the least an
 * XADD -> channel latency can be on this machine. latency.c measures it
 * exactly as it measures riskd. Runs until SIGTERM or SIGINT (checked at
 * least once a second); exit status 1 on a Redis error. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

static const char *keys[2] = {"enforce:scan", "enforce:case"};
static char group[128] = "bench-relay";
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(redisContext *c, const char *what)
{
    fprintf(stderr, "nullrelay: %s: %s\n", what, c->errstr);
    exit(1);
}

/* The `data` value of a stream entry ([id, [field, value, ...]]), or NULL. */
static const redisReply *entry_data(const redisReply *e)
{
    const redisReply *f;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        (f = e->element[1])->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "data") == 0)
            return f->element[i + 1];
    return NULL;
}

/* Append the PUBLISHes for the probes and one XACK per stream of the
 * XREADGROUP reply r. Returns the number of commands appended. */
static int relay(redisContext *c, const redisReply *r)
{
    int cmds = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *sr = r->element[s], *ents;
        if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2)
            continue;
        ents = sr->element[1];
        if (ents->elements == 0)
            continue;
        const char **av = malloc((ents->elements + 3) * sizeof(*av));
        if (av == NULL) {
            fprintf(stderr, "nullrelay: out of memory\n");
            exit(1);
        }
        av[0] = "XACK";
        av[1] = sr->element[0]->str;
        av[2] = group;
        for (size_t i = 0; i < ents->elements; i++) {
            const redisReply *e = ents->element[i], *d = entry_data(e);
            av[3 + i] = e->element[0]->str;
            if (d != NULL && d->type == REDIS_REPLY_STRING &&
                strstr(d->str, "\"inspection.rated\"") != NULL &&
                strstr(d->str, "\"score\":1,") != NULL) {
                char msg[128];
                snprintf(msg, sizeof(msg), "{\"rule\":\"null_relay\",\"evidence\":[\"%s\"]}",
                         e->element[0]->str);
                if (redisAppendCommand(c, "PUBLISH alerts:null_relay %s", msg) != REDIS_OK)
                    die(c, "append");
                cmds++;
            }
        }
        if (redisAppendCommandArgv(c, (int)ents->elements + 3, av, NULL) != REDIS_OK)
            die(c, "append");
        free(av);
        cmds++;
    }
    return cmds;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"scan", required_argument, NULL, 'S'},
        {"case", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    int port = 6379, ch;
    struct sigaction sa;

    while ((ch = getopt_long(argc, argv, "p:g:", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'g': snprintf(group, sizeof(group), "%s", optarg); break;
        case 'S': keys[0] = optarg; break;
        case 'C': keys[1] = optarg; break;
        default:
            fprintf(stderr, "usage: nullrelay -p PORT [-g GROUP] [--scan KEY] [--case KEY]\n");
            return 1;
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        fprintf(stderr, "nullrelay: cannot connect to 127.0.0.1:%d\n", port);
        return 1;
    }
    for (int s = 0; s < 2; s++) {
        redisReply *r = redisCommand(c, "XGROUP CREATE %s %s $ MKSTREAM", keys[s], group);
        if (r == NULL)
            die(c, "XGROUP");
        freeReplyObject(r);     /* BUSYGROUP is fine */
    }
    while (!stop) {
        redisReply *r = redisCommand(c, "XREADGROUP GROUP %s relay COUNT 500 BLOCK 1000 "
                                        "STREAMS %s %s > >", group, keys[0], keys[1]);
        if (r == NULL) {
            if (stop)
                break;                  /* a signal cut the read short */
            die(c, "XREADGROUP");
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "nullrelay: %s\n", r->str);
            return 1;
        }
        int n = relay(c, r);
        freeReplyObject(r);
        for (int i = 0; i < n; i++) {
            void *rv = NULL;
            if (redisGetReply(c, &rv) != REDIS_OK || rv == NULL)
                die(c, "reply");
            freeReplyObject(rv);
        }
    }
    redisFree(c);
    return 0;
}
