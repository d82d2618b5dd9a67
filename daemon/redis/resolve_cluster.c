/* daemon/redis/resolve_cluster.c - the Redis Cluster resolver.
 *
 * hiredis 0.14 knows nothing of Redis Cluster, and a connection here serves
 * one slot (opts.cluster_slot: every key it touches shares one hash tag;
 * rk__redis_keyslot in daemon/lib/route.c computes it). Before EVERY connect attempt the
 * connection asks this resolver, which asks "CLUSTER SHARDS" (after AUTH
 * when a password is set) on a short-lived context of its own (adapter.c,
 * RK__RESOLVE_TIMEOUT_MS through the connection's watchdog) of one node at
 * a time in rotation: the seeds, then the nodes the last answer listed
 * (kept, so a dead seed does not matter), starting with the last one that
 * answered. The connection goes to the master whose shard's slot ranges
 * hold the slot and whose health is "online"; when no node gives one it
 * backs off like any failed connect.
 *
 * MOVED, TRYAGAIN and CLUSTERDOWN are not followed command by command: a
 * reply to ANY command that is such an error is logged once per drop,
 * given to its callback as NULL, and the connection is dropped and
 * resolved again - exactly a lost connection, so every caller's existing
 * lost-connection path (resend what was not confirmed) handles it. MOVED
 * (the slot lives elsewhere now) reconnects at once, the slot map being
 * asked again; TRYAGAIN (a multi-key command while the slot's keys are
 * split by a migration) and CLUSTERDOWN back off, and so does a MOVED
 * that follows another redirection without a good reply in between (a
 * stale slot map must not make a busy loop): r->redirects and
 * r->retry_now tell the connection's backoff.
 *
 * ASK ("ASK <slot> <host:port>": the slot is being migrated and this key
 * is already on the importing node) IS followed: the connection keeps a
 * copy of every command in flight (keeps_commands), and a command
 * answered with ASK is sent again as ASKING + the command on a second
 * connection to the importing node, opened at the first ASK (AUTH and
 * the scripts this connection loaded with SCRIPT LOAD are pipelined first,
 * so an EVALSHA finds its script there) and kept while the migration
 * lasts; the caller's callback gets that node's reply. Replies can then
 * come back out of order (a followed command answers after later ones);
 * riskd's callers keep per-command state, none relies on the order. A WAIT
 * after followed commands is also sent to the importing node (WAIT counts
 * a connection's own writes) and the smaller count is returned. A failure
 * there (refused connection, lost connection, an error to AUTH, ASKING or
 * SCRIPT LOAD) drops this connection too, and a MOVED, ASK, TRYAGAIN or
 * CLUSTERDOWN from there is a redirection as above: the migration ended,
 * or the slot's keys are split. The second connection goes away with the
 * first (the next MOVED, once the migration is done).
 *
 * Lifetime: a context is never freed inside its own callbacks; when we
 * abandon one (timeout, close) we clear ac->data first, so the callbacks
 * hiredis runs while freeing it are ignored. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"

/* Redis Cluster's slot count, and the most nodes kept from one answer. */
#define CLUSTER_SLOTS 16384
#define CLUSTER_MAX_LEARNT 1024
/* The most distinct script bodies remembered for an ASK target. */
#define ASK_MAX_SCRIPTS 16

/* A cluster node to ask for the slot map. */
typedef struct cnode {
    char *host;
    int port;
} cnode;

/* The resolver's state (r->rs). */
typedef struct cluster {
    int slot;                       /* the slot this connection serves */
    cnode *cnodes;                  /* seeds first, then the learnt nodes */
    size_t n_cnodes, n_seeds;
    size_t c_first;                 /* the last node that answered */
    size_t c_tries;                 /* nodes asked in this round */
    size_t c_cur;                   /* the one asked now */
    redisAsyncContext *sac;         /* the CLUSTER SHARDS query's context */
    /* Following ASK */
    redisAsyncContext *ask_ac;      /* to the importing node; NULL when none */
    char *ask_host;
    int ask_port;
    int ask_inflight;               /* commands sent there, not answered */
    int ask_logged;                 /* this migration was logged */
    int asked_since_wait;           /* a command was followed since the last WAIT */
    uint64_t asks;                  /* commands followed, ever */
    char **scripts;                 /* bodies sent with SCRIPT LOAD (for the target) */
    size_t n_scripts;
} cluster;

static void cluster_resolve_next(rk__redis *r);

/* ===================================================================
 * The slot map
 * =================================================================== */

/* The value of field `name` in a RESP2 map (a flat array of name, value,
 * ...), or NULL. */
static const redisReply *map_get(const redisReply *m, const char *name)
{
    size_t i;
    if (m == NULL || m->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(m->element[i]->str, name) == 0)
            return m->element[i + 1];
    return NULL;
}

/* True when the string value of map field `name` is `want`. */
static int map_is(const redisReply *m, const char *name, const char *want)
{
    const redisReply *v = map_get(m, name);
    return v != NULL && v->type == REDIS_REPLY_STRING && strcmp(v->str, want) == 0;
}

/* The address of one node of a CLUSTER SHARDS answer: "endpoint" (what
 * the cluster wants clients to use) unless empty or "?", else "ip"; the
 * plain-text "port". Returns 0 with *host pointing into the reply, or -1. */
static int node_addr(const redisReply *n, const char **host, int *port)
{
    const redisReply *h = map_get(n, "endpoint"), *p = map_get(n, "port");

    if (h == NULL || h->type != REDIS_REPLY_STRING || h->len == 0 ||
        strcmp(h->str, "?") == 0)
        h = map_get(n, "ip");
    if (h == NULL || h->type != REDIS_REPLY_STRING || h->len == 0 || h->len >= 256 ||
        strlen(h->str) != h->len || p == NULL || p->type != REDIS_REPLY_INTEGER ||
        p->integer < 1 || p->integer > 65535)
        return -1;
    *host = h->str;
    *port = (int)p->integer;
    return 0;
}

/* Does the shard's "slots" list (start, end, start, end, ...) hold slot? */
static int shard_has_slot(const redisReply *shard, int slot)
{
    const redisReply *sl = map_get(shard, "slots");
    size_t i;
    if (sl == NULL || sl->type != REDIS_REPLY_ARRAY)
        return 0;
    for (i = 0; i + 1 < sl->elements; i += 2)
        if (sl->element[i]->type == REDIS_REPLY_INTEGER &&
            sl->element[i + 1]->type == REDIS_REPLY_INTEGER &&
            sl->element[i]->integer <= slot && slot <= sl->element[i + 1]->integer)
            return 1;
    return 0;
}

static int cnode_find(const cnode *v, size_t n, const char *host, int port)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (v[i].port == port && strcmp(v[i].host, host) == 0)
            return (int)i;
    return -1;
}

/* Replace the learnt part of r's node list by every node of the answer
 * `shards` that is not a seed (at most CLUSTER_MAX_LEARNT). Out of memory
 * keeps the old list. */
static void learn_nodes(cluster *c, const redisReply *shards)
{
    cnode *v;
    size_t i, j, n = c->n_seeds, cap = c->n_seeds;
    const char *host;
    int port;

    for (i = 0; i < shards->elements; i++) {
        const redisReply *nodes = map_get(shards->element[i], "nodes");
        if (nodes != NULL && nodes->type == REDIS_REPLY_ARRAY)
            cap += nodes->elements;
    }
    if (cap > c->n_seeds + CLUSTER_MAX_LEARNT)
        cap = c->n_seeds + CLUSTER_MAX_LEARNT;
    if ((v = calloc(cap > 0 ? cap : 1, sizeof(*v))) == NULL)
        return;
    memcpy(v, c->cnodes, c->n_seeds * sizeof(*v));
    for (i = 0; i < shards->elements && n < cap; i++) {
        const redisReply *nodes = map_get(shards->element[i], "nodes");
        if (nodes == NULL || nodes->type != REDIS_REPLY_ARRAY)
            continue;
        for (j = 0; j < nodes->elements && n < cap; j++) {
            if (node_addr(nodes->element[j], &host, &port) != 0 ||
                cnode_find(v, n, host, port) >= 0)
                continue;
            if ((v[n].host = strdup(host)) == NULL)
                goto oom;
            v[n++].port = port;
        }
    }
    for (i = c->n_seeds; i < c->n_cnodes; i++)
        free(c->cnodes[i].host);
    free(c->cnodes);
    c->cnodes = v;
    c->n_cnodes = n;
    return;
oom:
    for (i = c->n_seeds; i < n; i++)
        free(v[i].host);
    free(v);
}

/* The answer to CLUSTER SHARDS (NULL when the connection failed or was
 * lost: hiredis is then freeing the context): learn the nodes, find the
 * online master of the shard serving the slot and connect there; otherwise
 * ask the next node. */
static void on_shards_reply(redisAsyncContext *ac, void *rep, void *pd)
{
    rk__redis *r = ac->data;
    cluster *c = r != NULL ? r->rs : NULL;
    redisReply *reply = rep;
    const redisReply *master = NULL;
    char who[300];
    const char *host = NULL;
    int port = 0, found;
    size_t i, j;

    (void)pd;
    if (r == NULL || c->sac != ac)
        return;                     /* abandoned */
    c->sac = NULL;
    ac->data = NULL;
    snprintf(who, sizeof(who), "%s:%d", c->cnodes[c->c_cur].host, c->cnodes[c->c_cur].port);
    if (reply != NULL)
        redisAsyncDisconnect(ac);   /* freed once this callback returns */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply == NULL)
            rk__conn_log(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
                         "cluster node %s: %s", who,
                         ac->errstr[0] ? ac->errstr : "connection lost");
        else if (reply->type == REDIS_REPLY_ERROR)
            rk__conn_log(r, RK_LOG_WARNING, "cluster node %s: CLUSTER SHARDS: %s", who,
                         reply->str);
        else
            rk__conn_log(r, RK_LOG_WARNING,
                         "cluster node %s: unexpected CLUSTER SHARDS answer", who);
        cluster_resolve_next(r);
        return;
    }
    for (i = 0; i < reply->elements && master == NULL; i++) {
        const redisReply *nodes = map_get(reply->element[i], "nodes");
        if (!shard_has_slot(reply->element[i], c->slot) || nodes == NULL ||
            nodes->type != REDIS_REPLY_ARRAY)
            continue;
        for (j = 0; j < nodes->elements; j++)
            if (map_is(nodes->element[j], "role", "master") &&
                map_is(nodes->element[j], "health", "online") &&
                node_addr(nodes->element[j], &host, &port) == 0) {
                master = nodes->element[j];
                break;
            }
    }
    /* Learn the nodes even when this answer does not serve the slot: the
     * next round may ask one of them. */
    {
        const char *ah = c->cnodes[c->c_cur].host;
        int ap = c->cnodes[c->c_cur].port;
        char *keep = strdup(ah);
        learn_nodes(c, reply);
        found = keep != NULL ? cnode_find(c->cnodes, c->n_cnodes, keep, ap) : -1;
        free(keep);
    }
    if (master == NULL) {
        rk__conn_log(r, RK_LOG_WARNING, "cluster node %s: no online master serves slot %d",
                     who, c->slot);
        /* c_cur may have moved with the new list; the round goes on. */
        cluster_resolve_next(r);
        return;
    }
    c->c_first = found >= 0 ? (size_t)found : 0;
    if (strcmp(host, r->cur_host) != 0 || port != r->cur_port) {
        char *h = strdup(host);
        if (h == NULL) {
            rk__conn_log(r, RK_LOG_ERR, "cluster answer: out of memory");
            rk__conn_failed(r);
            return;
        }
        free(r->cur_host);
        r->cur_host = h;
        r->cur_port = port;
        rk__conn_log(r, RK_LOG_NOTICE, "slot %d is served here (slot map of %s)", c->slot, who);
    }
    rk__conn_connect(r);
}

/* Ask the next cluster node of this round for the slot map; when every
 * one was asked, back off and start a new round later. */
static void cluster_resolve_next(rk__redis *r)
{
    cluster *c = r->rs;
    while (c->n_cnodes > 0 && c->c_tries < c->n_cnodes) {
        size_t i = (c->c_first + c->c_tries++) % c->n_cnodes;
        redisAsyncContext *ac = redisAsyncConnect(c->cnodes[i].host, c->cnodes[i].port);

        if (ac == NULL)
            break;
        if (ac->err) {
            rk__conn_log(r, RK_LOG_INFO, "cluster node %s:%d: %s", c->cnodes[i].host,
                         c->cnodes[i].port, ac->errstr);
            redisAsyncFree(ac);
            continue;
        }
        if (rk__redis_attach(r->loop, ac) != 0) {
            redisAsyncFree(ac);
            break;
        }
        ac->data = r;
        if (r->password != NULL) {
            /* The answer goes nowhere: a refused AUTH makes CLUSTER SHARDS
             * fail with NOAUTH, which is logged below. */
            const char *argv[3];
            int argc = rk__conn_auth_argv(r, argv);
            if (redisAsyncCommandArgv(ac, NULL, NULL, argc, argv, NULL) != REDIS_OK) {
                ac->data = NULL;
                redisAsyncFree(ac);
                break;
            }
        }
        if (redisAsyncCommand(ac, on_shards_reply, NULL, "CLUSTER SHARDS") != REDIS_OK) {
            ac->data = NULL;
            redisAsyncFree(ac);
            break;
        }
        c->sac = ac;
        c->c_cur = i;
        rk__conn_resolving(r);
        return;
    }
    rk__conn_log(r, r->attempt == 0 ? RK_LOG_WARNING : RK_LOG_INFO,
                 "no cluster node gave a master for slot %d", c->slot);
    rk__conn_failed(r);
}

/* Cluster mode: is reply a redirection or a cluster error? Then log it
 * (once per drop), drop the connection (MOVED: reconnect at once unless it
 * follows another redirection; otherwise with backoff) and return 1: the
 * caller's callback gets NULL as after a lost connection. */
static int cluster_redirect(rk__redis *r, const redisReply *reply)
{
    cluster *c = r->rs;
    int moved;

    if (reply == NULL)
        return 0;
    if (reply->type != REDIS_REPLY_ERROR) {
        /* A good answer to a command (not to AUTH during the handshake,
         * which any node gives) ends a run of redirections. */
        if (r->state == ST_READY)
            r->redirects = 0;
        return 0;
    }
    moved = strncmp(reply->str, "MOVED ", 6) == 0;
    if (!moved && strncmp(reply->str, "ASK ", 4) != 0 &&
        strncmp(reply->str, "TRYAGAIN", 8) != 0 && strncmp(reply->str, "CLUSTERDOWN", 11) != 0)
        return 0;
    if (r->drop_pending || r->state == ST_CLOSED)
        return 1;                   /* the rest of a pipeline */
    r->redirects++;
    r->retry_now = moved && r->redirects == 1;
    rk__conn_log(r, r->redirects == 1 ? RK_LOG_NOTICE : RK_LOG_INFO,
                 "slot %d: %.200s; reconnecting%s", c->slot, reply->str,
                 r->retry_now ? "" : " after a backoff");
    rk__redis_drop(r, NULL);
    return 1;
}

/* ===================================================================
 * Cluster mode: following ASK
 * =================================================================== */

/* Forget the connection to the ASK target: its commands' callbacks run
 * now with NULL. Never called from one of that context's own callbacks. */
static void ask_close(rk__redis *r)
{
    cluster *c = r->rs;
    redisAsyncContext *ac = c->ask_ac;

    free(c->ask_host);
    c->ask_host = NULL;
    c->ask_port = 0;
    c->ask_logged = 0;
    c->asked_since_wait = 0;
    if (ac == NULL)
        return;
    c->ask_ac = NULL;
    ac->data = NULL;                /* its connect/disconnect callbacks ignore us */
    redisAsyncFree(ac);
}

/* Something went wrong on the ASK target while the slot's connection is
 * up: drop that too, so that every caller takes its lost-connection path
 * (a NULL reply always comes with a lost connection). */
static void ask_failed(rk__redis *r, const char *why)
{
    if (r->state == ST_READY && r->ac != NULL && !r->drop_pending)
        rk__redis_drop(r, why);
}

static void on_ask_connect(const redisAsyncContext *ac, int status)
{
    rk__redis *r = ac->data;
    cluster *c = r != NULL ? r->rs : NULL;

    if (r == NULL || status == REDIS_OK)
        return;
    /* hiredis frees the context after this; its commands get NULL. */
    rk__conn_log(r, RK_LOG_WARNING, "ASK target %s:%d: connect failed: %s", c->ask_host,
                 c->ask_port, ac->errstr[0] ? ac->errstr : "error");
    if (c->ask_ac == ac)
        c->ask_ac = NULL;
}

static void on_ask_disconnect(const redisAsyncContext *ac, int status)
{
    rk__redis *r = ac->data;
    cluster *c = r != NULL ? r->rs : NULL;

    if (r == NULL)
        return;
    rk__conn_log(r, RK_LOG_WARNING, "ASK target %s:%d: connection lost: %s", c->ask_host,
                 c->ask_port,
                 status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
    if (c->ask_ac == ac)
        c->ask_ac = NULL;
}

/* The reply to AUTH, SCRIPT LOAD or ASKING on the ASK target. */
static void on_ask_aux(redisAsyncContext *ac, void *reply, void *pd)
{
    rk__redis *r = pd;
    cluster *c = r->rs;
    redisReply *rep = reply;

    (void)ac;
    if (rep == NULL || rep->type != REDIS_REPLY_ERROR)
        return;
    rk__conn_log(r, RK_LOG_ERR, "ASK target %s:%d refused a command: %.200s",
                 c->ask_host ? c->ask_host : "?", c->ask_port, rep->str);
    ask_failed(r, "the ASK target refused a command");
}

/* The reply to a command followed to the ASK target. */
static void on_ask_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rk__pending_cmd *pc = privdata;
    rk__redis *r = pc->r;
    cluster *c = r->rs;
    redisReply *rep = reply, combined;

    (void)ac;
    if (c->ask_inflight > 0)
        c->ask_inflight--;
    rk__conn_count_answered(r);
    if (rep == NULL) {
        ask_failed(r, "lost the connection to the ASK target");
    } else if (cluster_redirect(r, rep)) {
        rep = NULL;                 /* the migration ended, or stalls: re-resolve */
    } else if (pc->wait_forwarded && rep->type == REDIS_REPLY_INTEGER) {
        /* WAIT: the fewer replicas of the two nodes count. */
        combined = *rep;
        if (pc->wait_main < combined.integer)
            combined.integer = pc->wait_main;
        rep = &combined;
    }
    rk__conn_deliver(pc, rep);
}

/* Split "ASK <slot> <host>:<port>" (the host may itself hold colons: an
 * IPv6 address). Returns 0 and a malloc'ed *host, or -1. */
static int ask_parse(const char *str, int *slot, char **host, int *port)
{
    const char *a, *colon;
    char *end;
    long v;

    if (strncmp(str, "ASK ", 4) != 0)
        return -1;
    v = strtol(str + 4, &end, 10);
    if (end == str + 4 || *end != ' ' || v < 0 || v >= CLUSTER_SLOTS)
        return -1;
    *slot = (int)v;
    a = end + 1;
    colon = strrchr(a, ':');
    if (colon == NULL || colon == a)
        return -1;
    v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || v <= 0 || v > 65535)
        return -1;
    *port = (int)v;
    if (a[0] == '[' && colon[-1] == ']')
        a++, colon--;
    if ((*host = malloc((size_t)(colon - a) + 1)) == NULL)
        return -1;
    memcpy(*host, a, (size_t)(colon - a));
    (*host)[colon - a] = '\0';
    return 0;
}

/* The connection to host:port, opened (AUTH and the remembered scripts
 * pipelined first) unless it is already there. NULL when it cannot be had
 * now: out of memory, or another target still has commands in flight. */
static redisAsyncContext *ask_conn(rk__redis *r, char *host, int port)
{
    cluster *c = r->rs;
    redisAsyncContext *ac;
    size_t i;

    if (c->ask_host != NULL && (c->ask_port != port || strcmp(c->ask_host, host) != 0)) {
        if (c->ask_inflight > 0) {
            free(host);
            return NULL;
        }
        ask_close(r);
    }
    if (c->ask_ac != NULL) {
        free(host);
        return c->ask_ac;
    }
    free(c->ask_host);
    c->ask_host = host;
    c->ask_port = port;
    ac = redisAsyncConnect(host, port);
    if (ac != NULL && !ac->err)
        ac->data = r;
    if (ac == NULL || ac->err || rk__redis_attach(r->loop, ac) != 0) {
        rk__conn_log(r, RK_LOG_WARNING, "ASK target %s:%d: cannot connect: %s", host, port,
                     ac != NULL && ac->err ? ac->errstr : "out of memory");
        if (ac != NULL) {
            ac->data = NULL;
            redisAsyncFree(ac);
        }
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_ask_connect);
    redisAsyncSetDisconnectCallback(ac, on_ask_disconnect);
    c->ask_ac = ac;
    if (r->password != NULL) {
        const char *argv[3];
        int argc = rk__conn_auth_argv(r, argv);
        redisAsyncCommandArgv(ac, on_ask_aux, r, argc, argv, NULL);
    }
    /* An EVALSHA followed there must find its script. */
    for (i = 0; i < c->n_scripts; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", c->scripts[i]};
        redisAsyncCommandArgv(ac, on_ask_aux, r, 3, argv, NULL);
    }
    return ac;
}

/* The command of pc got "ASK <slot> <host:port>" (str): send ASKING and
 * the command to that node. Returns 0 when pc is on its way there (its
 * callback runs with that node's reply), -1 to treat the ASK as before: a
 * redirection that drops the connection. */
static int ask_follow(rk__redis *r, rk__pending_cmd *pc, const char *str)
{
    cluster *c = r->rs;
    const char *asking[1] = {"ASKING"};
    redisAsyncContext *ac;
    char *host;
    int slot, port;

    if (pc->argc == 0 || r->state != ST_READY || r->drop_pending ||
        ask_parse(str, &slot, &host, &port) != 0 || slot != c->slot)
        return -1;
    if ((ac = ask_conn(r, host, port)) == NULL)
        return -1;
    if (redisAsyncCommandArgv(ac, on_ask_aux, r, 1, asking, NULL) != REDIS_OK ||
        redisAsyncCommandArgv(ac, on_ask_reply, pc, pc->argc, pc->argv,
                              pc->argvlen) != REDIS_OK)
        return -1;
    if (!c->ask_logged)
        rk__conn_log(r, RK_LOG_NOTICE, "slot %d is migrating to %s:%d: following ASK there "
                     "(ASKING + the command) until it is done", c->slot, c->ask_host, c->ask_port);
    c->ask_logged = 1;
    c->asks++;
    c->asked_since_wait = 1;
    c->ask_inflight++;
    rk__conn_count_sent(r, pc->extra_timeout_ms);
    return 0;
}

/* A WAIT answered by the slot's master (n replicas) after commands were
 * followed to the ASK target: those writes are that node's, and WAIT only
 * counts a connection's own writes, so ask it too (every followed command
 * before this WAIT was sent there before, replies being in order) and give
 * the caller the smaller count. Returns 0 when sent. */
static int ask_wait(rk__redis *r, rk__pending_cmd *pc, long long n)
{
    cluster *c = r->rs;
    if (c->ask_ac == NULL || r->state != ST_READY || r->drop_pending)
        return -1;
    if (redisAsyncCommandArgv(c->ask_ac, on_ask_reply, pc, pc->argc, pc->argv,
                              pc->argvlen) != REDIS_OK)
        return -1;
    pc->wait_forwarded = 1;
    pc->wait_main = n;
    c->asked_since_wait = 0;
    c->ask_inflight++;
    rk__conn_count_sent(r, pc->extra_timeout_ms);
    return 0;
}

/* Remember a SCRIPT LOAD body (cluster mode) for the ASK target, and load
 * it there at once when a connection to it is open. */
static void remember_script(rk__redis *r, const char *body, size_t len)
{
    cluster *c = r->rs;
    char **v, *copy;
    size_t i;

    for (i = 0; i < c->n_scripts; i++)
        if (strlen(c->scripts[i]) == len && memcmp(c->scripts[i], body, len) == 0)
            return;
    if (c->n_scripts == ASK_MAX_SCRIPTS || memchr(body, '\0', len) != NULL)
        return;
    if ((v = realloc(c->scripts, (c->n_scripts + 1) * sizeof(*v))) == NULL)
        return;
    c->scripts = v;
    if ((copy = malloc(len + 1)) == NULL)
        return;
    memcpy(copy, body, len);
    copy[len] = '\0';
    c->scripts[c->n_scripts++] = copy;
    if (c->ask_ac != NULL) {
        const char *argv[3] = {"SCRIPT", "LOAD", copy};
        redisAsyncCommandArgv(c->ask_ac, on_ask_aux, r, 3, argv, NULL);
    }
}

/* init: the slot, and the seeds as the first nodes to ask (a seed that
 * is not "host:port" is skipped: config.c refuses those). -1 when out of
 * memory or the slot is outside 0..16383. */
static int cluster_init(rk__redis *r, const rk__redis_opts *opts)
{
    cluster *c;
    char host[256];
    size_t i;
    int port;

    if (opts->cluster_seeds == NULL || opts->cluster_slot < 0 ||
        opts->cluster_slot >= CLUSTER_SLOTS)
        return -1;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return -1;
    r->rs = c;
    c->slot = opts->cluster_slot;
    if ((c->cnodes = calloc(opts->n_cluster_seeds, sizeof(*c->cnodes))) == NULL)
        return -1;
    for (i = 0; i < opts->n_cluster_seeds; i++) {
        if (opts->cluster_seeds[i] == NULL ||
            rk__parse_addr(opts->cluster_seeds[i], host, sizeof(host), &port) != 0 ||
            cnode_find(c->cnodes, c->n_cnodes, host, port) >= 0)
            continue;
        if ((c->cnodes[c->n_cnodes].host = strdup(host)) == NULL)
            return -1;
        c->cnodes[c->n_cnodes++].port = port;
    }
    c->n_seeds = c->n_cnodes;
    return 0;
}

/* ===================================================================
 * The resolver
 * =================================================================== */

static void cluster_resolve(rk__redis *r)
{
    cluster *c = r->rs;
    c->c_tries = 0;
    cluster_resolve_next(r);
}

/* Give up the CLUSTER SHARDS query in flight (never inside its callbacks). */
static void query_abandon(cluster *c)
{
    redisAsyncContext *ac = c->sac;
    if (ac == NULL)
        return;
    c->sac = NULL;
    ac->data = NULL;                /* its callbacks now ignore us */
    redisAsyncFree(ac);
}

static void cluster_timeout(rk__redis *r)
{
    cluster *c = r->rs;
    rk__conn_log(r, RK_LOG_WARNING, "cluster node %s:%d: no answer in time",
                         c->cnodes[c->c_cur].host, c->cnodes[c->c_cur].port);
    query_abandon(c);
    cluster_resolve_next(r);
}

static void cluster_sent(rk__redis *r, rk__pending_cmd *pc)
{
    if (pc->argc == 3 && pc->argvlen[0] == 6 && strncasecmp(pc->argv[0], "SCRIPT", 6) == 0 &&
        pc->argvlen[1] == 4 && strncasecmp(pc->argv[1], "LOAD", 4) == 0)
        remember_script(r, pc->argv[2], pc->argvlen[2]);
}

static int cluster_reply(rk__redis *r, rk__pending_cmd *pc, redisReply **reply)
{
    cluster *c = r->rs;
    redisReply *rep = *reply;

    if (rep != NULL) {
        if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "ASK ", 4) == 0 &&
            ask_follow(r, pc, rep->str) == 0)
            return 1;               /* pc goes on at the importing node */
        if (pc->is_wait && c->asked_since_wait && rep->type == REDIS_REPLY_INTEGER &&
            ask_wait(r, pc, rep->integer) == 0)
            return 1;               /* the importing node's count is wanted too */
    }
    if (cluster_redirect(r, rep))
        *reply = NULL;              /* handled as a lost connection */
    return 0;
}

static void cluster_close(rk__redis *r)
{
    query_abandon(r->rs);
    ask_close(r);
}

static void cluster_free(rk__redis *r)
{
    cluster *c = r->rs;
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n_cnodes; i++)
        free(c->cnodes[i].host);
    free(c->cnodes);
    for (i = 0; i < c->n_scripts; i++)
        free(c->scripts[i]);
    free(c->scripts);
    free(c->ask_host);
    free(c);
    r->rs = NULL;
}

const rk__resolver rk__resolver_cluster = {
    .name = "cluster",
    .init = cluster_init,
    .resolve = cluster_resolve,
    .timeout = cluster_timeout,
    .keeps_commands = 1,
    .sent = cluster_sent,
    .reply = cluster_reply,
    .lost = ask_close,
    .close = cluster_close,
    .free = cluster_free,
};

uint64_t rk__redis_asks(const rk__redis *r)
{
    return r != NULL && r->res == &rk__resolver_cluster ? ((const cluster *)r->rs)->asks : 0;
}
