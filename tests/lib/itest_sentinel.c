/* tests/lib/itest_sentinel.c - see itest_sentinel.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "itest.h"
#include "itest_sentinel.h"

/* A short-lived client, or NULL when nothing answers. */
static redisContext *try_connect(int port)
{
    struct timeval tv = {0, 500000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

int it_sentinel_start(it_sentinel *s, const char *name, int master_port, int quorum)
{
    char conf[400], cmd[1024];
    FILE *f;
    pid_t pid;
    int i;

    memset(s, 0, sizeof(*s));
    if (it_tmpdir(s->dir, sizeof(s->dir), "sentinel") != 0)
        return -1;
    s->port = it_free_port();
    snprintf(conf, sizeof(conf), "%s/sentinel.conf", s->dir);
    if ((f = fopen(conf, "w")) == NULL)
        return -1;
    fprintf(f, "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s/sentinel.log\n"
            "sentinel monitor %s 127.0.0.1 %d %d\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 5000\n"
            "sentinel parallel-syncs %s 1\n",
            s->port, s->dir, s->dir, name, master_port, quorum, name, name, name);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "exec redis-server %s --sentinel </dev/null >/dev/null 2>&1",
             conf);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (i = 0; i < 200; i++) {
        redisContext *c;
        it_sleep_ms(25);
        if ((c = try_connect(s->port)) != NULL) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
    }
    fprintf(stderr, "redis-sentinel did not start on port %d\n", s->port);
    return -1;
}

void it_sentinel_kill(it_sentinel *s)
{
    int st;
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
}

int it_sentinel_master_port(const it_sentinel *s, const char *name)
{
    redisContext *c = try_connect(s->port);
    redisReply *r;
    int port = -1;
    if (c == NULL)
        return -1;
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        port = atoi(r->element[1]->str);
    freeReplyObject(r);
    redisFree(c);
    return port;
}

bool it_sentinel_settled(const it_sentinel *s, const char *name)
{
    redisContext *c = try_connect(s->port);
    redisReply *r;
    size_t i;
    bool settled = false;
    if (c == NULL)
        return false;
    r = redisCommand(c, "SENTINEL MASTER %s", name);
    for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[i]->str, "flags") == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            settled = strcmp(r->element[i + 1]->str, "master") == 0;
    freeReplyObject(r);
    redisFree(c);
    return settled;
}

/* Field `key` of the SENTINEL MASTER <name> answer as a number, or -1. */
static long long master_field(redisReply *r, const char *key)
{
    size_t i;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[i]->str, key) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            return atoll(r->element[i + 1]->str);
    return -1;
}

bool it_sentinel_wait_known(const it_sentinel *s, const char *name, int others,
                            int replicas, int timeout_ms)
{
    int waited;
    for (waited = 0; waited <= timeout_ms; waited += 100) {
        redisContext *c = try_connect(s->port);
        if (c != NULL) {
            redisReply *r = redisCommand(c, "SENTINEL MASTER %s", name);
            bool ok = master_field(r, "num-other-sentinels") >= others &&
                      master_field(r, "num-slaves") >= replicas;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return true;
        }
        it_sleep_ms(100);
    }
    return false;
}

bool it_replica_wait_link(int port, int timeout_ms)
{
    int waited;
    for (waited = 0; waited <= timeout_ms; waited += 50) {
        redisContext *c = try_connect(port);
        if (c != NULL) {
            redisReply *r = redisCommand(c, "INFO replication");
            bool ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                      strstr(r->str, "master_link_status:up") != NULL;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return true;
        }
        it_sleep_ms(50);
    }
    return false;
}

long long it_info_calls(int port, const char *cmd)
{
    redisContext *c = try_connect(port);
    redisReply *r;
    long long n = -1;
    char key[128];
    if (c == NULL)
        return -1;
    r = redisCommand(c, "INFO commandstats");
    snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, key);
        n = p != NULL ? atoll(p + strlen(key)) : 0;
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}
