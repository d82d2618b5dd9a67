/* tests/lib/itest_cluster.c - see itest_cluster.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <hiredis/hiredis.h>

#include "itest.h"
#include "itest_cluster.h"

/* A short-lived client of the node on port, or NULL when it does not
 * answer. */
static redisContext *node_connect(int port)
{
    struct timeval tv = {1, 0};
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

/* Does CLUSTER INFO of the node on port say the cluster is complete? */
static bool node_ok(int port, int n)
{
    redisContext *c = node_connect(port);
    redisReply *r;
    char want[64];
    bool ok;

    if (c == NULL)
        return false;
    r = redisCommand(c, "CLUSTER INFO");
    snprintf(want, sizeof(want), "cluster_known_nodes:%d\r", n);
    ok = r != NULL && r->type == REDIS_REPLY_STRING &&
         strstr(r->str, "cluster_state:ok\r") != NULL &&
         strstr(r->str, "cluster_slots_assigned:16384\r") != NULL &&
         strstr(r->str, want) != NULL;
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

bool it_cluster_wait_ok(const it_cluster *c, int timeout_ms)
{
    int waited, i;

    for (waited = 0; waited <= timeout_ms; waited += 50) {
        for (i = 0; i < c->n; i++)
            if (c->node[i].pid > 0 && !node_ok(c->node[i].port, c->n))
                break;
        if (i == c->n)
            return true;
        it_sleep_ms(50);
    }
    return false;
}

/* Store CLUSTER MYID of node i into c->id[i]. 0 or -1. */
static int read_id(it_cluster *c, int i)
{
    redisContext *k = node_connect(c->node[i].port);
    redisReply *r;
    int rc = -1;

    if (k == NULL)
        return -1;
    r = redisCommand(k, "CLUSTER MYID");
    if (r != NULL && r->type == REDIS_REPLY_STRING && r->len < sizeof(c->id[i])) {
        memcpy(c->id[i], r->str, r->len + 1);
        rc = 0;
    }
    freeReplyObject(r);
    redisFree(k);
    return rc;
}

/* Is every replica's link to its master up (a replica that never synced
 * cannot be promoted)? Waits up to timeout_ms. */
static bool replicas_synced(const it_cluster *c, int timeout_ms)
{
    int waited, i;

    for (waited = 0; waited <= timeout_ms; waited += 50) {
        for (i = 0; i < c->n; i++) {
            redisContext *k = node_connect(c->node[i].port);
            redisReply *r = k ? redisCommand(k, "INFO replication") : NULL;
            bool ok = r != NULL && r->type == REDIS_REPLY_STRING &&
                      (strstr(r->str, "role:master\r") != NULL ||
                       strstr(r->str, "master_link_status:up\r") != NULL);
            freeReplyObject(r);
            if (k != NULL)
                redisFree(k);
            if (!ok)
                break;
        }
        if (i == c->n)
            return true;
        it_sleep_ms(50);
    }
    return false;
}

/* Start n nodes (3 masters, and a replica of each when n is 6) and create
 * the cluster. */
static int cluster_start(it_cluster *c, int n)
{
    char cmd[1024], log[300];
    size_t len;
    int i, st;

    memset(c, 0, sizeof(*c));
    c->n = n;
    for (i = 0; i < n; i++) {
        /* The bus port is chosen too: the default, port + 10000, may be
         * taken or beyond 65535. */
        char extra[200];
        snprintf(extra, sizeof(extra), "--cluster-enabled yes --cluster-config-file "
                 "nodes.conf --cluster-node-timeout 2000 --cluster-port %d",
                 it_free_port());
        if (it_redis_start(&c->node[i], extra) != 0)
            goto fail;
    }
    snprintf(log, sizeof(log), "%s/cluster-create.log", c->node[0].dir);
    len = (size_t)snprintf(cmd, sizeof(cmd), "redis-cli --cluster create");
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " 127.0.0.1:%d", c->node[i].port);
    snprintf(cmd + len, sizeof(cmd) - len, " --cluster-replicas %d --cluster-yes </dev/null >%s 2>&1",
             n / IT_CLUSTER_N - 1, log);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "redis-cli --cluster create failed (see %s)\n", log);
        goto fail;
    }
    if (!it_cluster_wait_ok(c, 10000)) {
        fprintf(stderr, "the cluster did not become ok\n");
        goto fail;
    }
    if (n > IT_CLUSTER_N && !replicas_synced(c, 10000)) {
        fprintf(stderr, "the replicas did not sync with their masters\n");
        goto fail;
    }
    for (i = 0; i < n; i++)
        if (read_id(c, i) != 0) {
            fprintf(stderr, "CLUSTER MYID of port %d failed\n", c->node[i].port);
            goto fail;
        }
    return 0;
fail:
    for (i = 0; i < n; i++)
        it_redis_kill(&c->node[i]);
    return -1;
}

int it_cluster_start(it_cluster *c)
{
    return cluster_start(c, IT_CLUSTER_N);
}

int it_cluster_start_replicated(it_cluster *c)
{
    return cluster_start(c, IT_CLUSTER_MAX);
}

void it_cluster_stop(it_cluster *c)
{
    int i;
    for (i = 0; i < c->n; i++)
        it_redis_stop(&c->node[i]);
}

/* A client of the first running node that answers, or NULL. */
static redisContext *any_node(const it_cluster *c)
{
    int i;
    for (i = 0; i < c->n; i++) {
        redisContext *k;
        if (c->node[i].pid > 0 && (k = node_connect(c->node[i].port)) != NULL)
            return k;
    }
    return NULL;
}

int it_cluster_keyslot(const it_cluster *c, const char *key)
{
    redisContext *k = any_node(c);
    redisReply *r;
    int slot = -1;

    if (k == NULL)
        return -1;
    r = redisCommand(k, "CLUSTER KEYSLOT %s", key);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        slot = (int)r->integer;
    freeReplyObject(r);
    redisFree(k);
    return slot;
}

/* The owner of slot as the node on port sees it (CLUSTER SLOTS), or -1. */
static int owner_seen_by(int port, int slot)
{
    redisContext *k = node_connect(port);
    redisReply *r;
    int owner = -1;
    size_t i;

    if (k == NULL)
        return -1;
    r = redisCommand(k, "CLUSTER SLOTS");
    for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements >= 3 &&
            e->element[0]->integer <= slot && slot <= e->element[1]->integer &&
            e->element[2]->type == REDIS_REPLY_ARRAY && e->element[2]->elements >= 2) {
            owner = (int)e->element[2]->element[1]->integer;
            break;
        }
    }
    freeReplyObject(r);
    redisFree(k);
    return owner;
}

int it_cluster_slot_owner(const it_cluster *c, int slot)
{
    int i;
    for (i = 0; i < c->n; i++)
        if (c->node[i].pid > 0)
            return owner_seen_by(c->node[i].port, slot);
    return -1;
}

int it_cluster_node_for(const it_cluster *c, const char *key)
{
    int slot = it_cluster_keyslot(c, key);
    return slot < 0 ? -1 : it_cluster_slot_owner(c, slot);
}

int it_cluster_index(const it_cluster *c, int port)
{
    int i;
    for (i = 0; i < c->n; i++)
        if (c->node[i].port == port)
            return i;
    return -1;
}

/* Run one command on the node on port and check the reply is not an
 * error (and not NULL). 0 or -1 with the reason on stderr. */
static int node_cmd_ok(int port, const char *fmt, ...)
{
    redisContext *k = node_connect(port);
    redisReply *r;
    va_list ap;
    int rc;

    if (k == NULL) {
        fprintf(stderr, "port %d: no answer\n", port);
        return -1;
    }
    va_start(ap, fmt);
    r = redisvCommand(k, fmt, ap);
    va_end(ap);
    rc = r != NULL && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "port %d: %s: %s\n", port, fmt, r ? r->str : k->errstr);
    freeReplyObject(r);
    redisFree(k);
    return rc;
}

/* MIGRATE every key of slot from the node on from to the node on to. */
static int move_keys(int from, int to, int slot)
{
    redisContext *k = node_connect(from);
    int rc = -1, rounds;

    if (k == NULL)
        return -1;
    for (rounds = 0; rounds < 10000; rounds++) {
        redisReply *keys = redisCommand(k, "CLUSTER GETKEYSINSLOT %d 100", slot), *m;
        const char **argv;
        size_t *lens, i, argc;

        if (keys == NULL || keys->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(keys);
            break;
        }
        if (keys->elements == 0) {
            freeReplyObject(keys);
            rc = 0;
            break;
        }
        argc = 7 + keys->elements;
        argv = calloc(argc, sizeof(*argv));
        lens = calloc(argc, sizeof(*lens));
        if (argv == NULL || lens == NULL) {
            free(argv); free(lens); freeReplyObject(keys);
            break;
        }
        {
            char port[16];
            snprintf(port, sizeof(port), "%d", to);
            argv[0] = "MIGRATE"; argv[1] = "127.0.0.1"; argv[2] = port; argv[3] = "";
            argv[4] = "0"; argv[5] = "5000"; argv[6] = "KEYS";
            for (i = 0; i < 7; i++)
                lens[i] = strlen(argv[i]);
            for (i = 0; i < keys->elements; i++) {
                argv[7 + i] = keys->element[i]->str;
                lens[7 + i] = keys->element[i]->len;
            }
            m = redisCommandArgv(k, (int)argc, argv, lens);
        }
        free(argv);
        free(lens);
        freeReplyObject(keys);
        if (m == NULL || m->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "MIGRATE from %d to %d: %s\n", from, to, m ? m->str : k->errstr);
            freeReplyObject(m);
            break;
        }
        freeReplyObject(m);
    }
    redisFree(k);
    return rc;
}

int it_cluster_migrate_slot(it_cluster *c, int slot, int to_port)
{
    int from_port = it_cluster_slot_owner(c, slot), from, to, i, waited;

    if (from_port < 0 || (to = it_cluster_index(c, to_port)) < 0 ||
        (from = it_cluster_index(c, from_port)) < 0) {
        fprintf(stderr, "migrate slot %d: unknown owner or target\n", slot);
        return -1;
    }
    if (from == to)
        return 0;
    if (node_cmd_ok(to_port, "CLUSTER SETSLOT %d IMPORTING %s", slot, c->id[from]) != 0 ||
        node_cmd_ok(from_port, "CLUSTER SETSLOT %d MIGRATING %s", slot, c->id[to]) != 0 ||
        move_keys(from_port, to_port, slot) != 0 ||
        node_cmd_ok(to_port, "CLUSTER SETSLOT %d NODE %s", slot, c->id[to]) != 0 ||
        node_cmd_ok(from_port, "CLUSTER SETSLOT %d NODE %s", slot, c->id[to]) != 0)
        return -1;
    for (i = 0; i < c->n; i++)
        if (i != from && i != to && c->node[i].pid > 0 &&
            node_cmd_ok(c->node[i].port, "CLUSTER SETSLOT %d NODE %s", slot, c->id[to]) != 0)
            return -1;
    for (waited = 0; waited <= 5000; waited += 20) {
        for (i = 0; i < c->n; i++)
            if (c->node[i].pid > 0 && owner_seen_by(c->node[i].port, slot) != to_port)
                break;
        if (i == c->n)
            return 0;
        it_sleep_ms(20);
    }
    fprintf(stderr, "migrate slot %d: the nodes do not agree on its owner\n", slot);
    return -1;
}

redisContext *it_conns_for(it_conns *k, const char *key)
{
    int i;
    if (k->cl == NULL)
        return k->one;
    i = it_cluster_index(k->cl, it_cluster_node_for(k->cl, key));
    if (i < 0) {
        fprintf(stderr, "no cluster node serves %s\n", key);
        abort();
    }
    if (k->node[i] == NULL)
        k->node[i] = it_connect(k->cl->node[i].port);
    return k->node[i];
}

void it_conns_close(it_conns *k)
{
    int i;
    for (i = 0; i < IT_CLUSTER_MAX; i++)
        if (k->node[i] != NULL)
            redisFree(k->node[i]);
    memset(k->node, 0, sizeof(k->node));
}
