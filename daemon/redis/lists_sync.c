/* lists_sync.c - a riskd process follows the reference lists in Redis.
 *
 * riskctl lists load (daemon/riskctl/lists.c) replaces a kind's rows and
 * bumps its version in the hash riskd:lists:{lists}:version in one script.
 * This file keeps the tables in force (daemon/lib/lists.c) equal to what
 * Redis holds, without a restart and without touching detector state:
 *
 *   - every RK_LISTS_POLL_MS (and as soon as its connection is up) it sends
 *     HGETALL of the versions: a handful of small fields, cheap enough to
 *     ask every two seconds from every riskd;
 *   - a kind whose version there differs from the one in force (a new
 *     load, or a version gone because the keys were deleted) is fetched
 *     with rk__lists_fetch_lua, which returns its version and rows read at
 *     one instant, checked like a file (rk__lists_from_json) and installed
 *     whole with rk__lists_install. A stored list that fails the checks is
 *     logged once and the table in force stays; it is fetched again only
 *     when its version changes.
 *
 * The connection is its own (named "lists"; on a Redis Cluster it goes to
 * the node serving the {lists} slot). Lists are global: every partition and
 * every riskd sharing the Redis sees the same ones. */
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "internal.h"

typedef struct kctx {
    struct rk__lists_sync *s;
    rk__list_kind kind;
    bool fetching;
    long long refused;              /* a stored version that failed the checks */
} kctx;

struct rk__lists_sync {
    rk__redis *r;
    uv_timer_t timer;
    bool polling;                   /* HGETALL in flight */
    bool closing;
    kctx k[RK_LIST__COUNT];
    int fetches;                    /* fetches in flight */
    bool first_done;
    void (*first)(void *ud);
    void *ud;
};

/* The first complete poll: tell the caller (once). */
static void maybe_first(rk__lists_sync *s)
{
    if (!s->first_done && !s->polling && s->fetches == 0) {
        s->first_done = true;
        if (s->first != NULL)
            s->first(s->ud);
    }
}

/* The fetch script's reply for one kind: install it or say why not. */
static void on_fetch(rk__redis *r, redisReply *reply, void *pd)
{
    kctx *k = pd;
    rk__lists_sync *s = k->s;
    const char *kn = rk__lists_kind_name(k->kind);
    char err[RK_ERRLEN];
    (void)r;

    k->fetching = false;
    s->fetches--;
    if (s->closing)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[2]->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "list %s: unexpected reply to the fetch: %s", kn,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "not the script's");
        maybe_first(s);
        return;
    }
    {
        long long v = strtoll(reply->element[0]->str, NULL, 10);
        redisReply *rows = reply->element[2];
        const char **vals = calloc(rows->elements + 1, sizeof(*vals));
        size_t *lens = calloc(rows->elements + 1, sizeof(*lens)), i;
        rk__list *l = NULL;

        if (vals == NULL || lens == NULL) {
            rk__log(RK_LOG_ERR, "list %s: out of memory loading version %lld", kn, v);
        } else if (v == 0) {
            if (rk__lists_version(k->kind) != 0)
                rk__log(RK_LOG_NOTICE, "list %s: no longer in Redis; none in force", kn);
            rk__lists_install(k->kind, NULL, 0);
        } else {
            for (i = 0; i < rows->elements; i++) {
                vals[i] = rows->element[i]->type == REDIS_REPLY_STRING ? rows->element[i]->str
                                                                       : "";
                lens[i] = rows->element[i]->type == REDIS_REPLY_STRING ? rows->element[i]->len
                                                                       : 0;
            }
            if (rk__lists_from_json(k->kind, vals, lens, rows->elements, &l, err,
                                    sizeof(err)) != 0) {
                k->refused = v;
                rk__log(RK_LOG_ERR, "list %s: version %lld in Redis is damaged (%s); "
                        "version %lld stays in force", kn, v, err, rk__lists_version(k->kind));
            } else {
                rk__log(RK_LOG_NOTICE, "list %s: version %lld in force (%zu rows)", kn, v,
                        rk__lists_count(l));
                rk__lists_install(k->kind, l, v);
            }
        }
        free(vals);
        free(lens);
    }
    maybe_first(s);
}

/* Fetch kind k's version and rows. */
static void fetch(rk__lists_sync *s, kctx *k)
{
    char live[96];
    const char *argv[7];
    snprintf(live, sizeof(live), RK_LISTS_PREFIX "%s", rk__lists_kind_name(k->kind));
    argv[0] = "EVAL";
    argv[1] = rk__lists_fetch_lua;
    argv[2] = "3";
    argv[3] = RK_LISTS_VERSION_KEY;
    argv[4] = live;
    argv[5] = RK_LISTS_INFO_KEY;
    argv[6] = rk__lists_kind_name(k->kind);
    if (rk__redis_cmd(s->r, on_fetch, k, 0, 7, argv, NULL) == 0) {
        k->fetching = true;
        s->fetches++;
    }
}

/* HGETALL of the versions: fetch each kind whose version changed. */
static void on_versions(rk__redis *r, redisReply *reply, void *pd)
{
    rk__lists_sync *s = pd;
    long long remote[RK_LIST__COUNT] = {0};
    size_t i;
    (void)r;

    s->polling = false;
    if (s->closing)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "lists: HGETALL %s: %s", RK_LISTS_VERSION_KEY,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return;
    }
    for (i = 0; i + 1 < reply->elements; i += 2) {
        int k;
        if (reply->element[i]->type != REDIS_REPLY_STRING ||
            reply->element[i + 1]->type != REDIS_REPLY_STRING ||
            (k = rk__lists_kind(reply->element[i]->str)) < 0)
            continue;
        remote[k] = strtoll(reply->element[i + 1]->str, NULL, 10);
    }
    for (int k = 0; k < RK_LIST__COUNT; k++) {
        kctx *c = &s->k[k];
        if (remote[k] == rk__lists_version((rk__list_kind)k) || c->fetching ||
            (remote[k] == c->refused && remote[k] != 0))
            continue;
        if (remote[k] == 0) {
            rk__log(RK_LOG_NOTICE, "list %s: no longer in Redis; none in force",
                    rk__lists_kind_name((rk__list_kind)k));
            rk__lists_install((rk__list_kind)k, NULL, 0);
            continue;
        }
        fetch(s, c);
    }
    maybe_first(s);
}

static void poll_versions(rk__lists_sync *s)
{
    const char *argv[2] = {"HGETALL", RK_LISTS_VERSION_KEY};
    if (s->polling || s->closing || !rk__redis_ready(s->r))
        return;
    if (rk__redis_cmd(s->r, on_versions, s, 0, 2, argv, NULL) == 0)
        s->polling = true;
}

static void on_timer(uv_timer_t *t)
{
    poll_versions(t->data);
}

static void on_state(rk__redis *r, int up, void *ud)
{
    (void)r;
    if (up)
        poll_versions(ud);
}

rk__lists_sync *rk__lists_sync_new(uv_loop_t *loop, const rk__config *cfg,
                                   void (*first)(void *ud), void *ud)
{
    rk__lists_sync *s = calloc(1, sizeof(*s));
    rk__redis_opts o;
    if (s == NULL)
        return NULL;
    for (int k = 0; k < RK_LIST__COUNT; k++) {
        s->k[k].s = s;
        s->k[k].kind = (rk__list_kind)k;
    }
    s->first = first;
    s->ud = ud;
    rk__redis_opts_for(cfg, "lists", RK_LISTS_VERSION_KEY, &o);
    if ((s->r = rk__redis_new(loop, &o, on_state, s)) == NULL) {
        free(s);
        return NULL;
    }
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, RK_LISTS_POLL_MS, RK_LISTS_POLL_MS);
    return s;
}

const rk__redis *rk__lists_sync_redis(const rk__lists_sync *s)
{
    return s->r;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void rk__lists_sync_free(rk__lists_sync *s)
{
    if (s == NULL)
        return;
    s->closing = true;
    rk__redis_close(s->r);          /* runs the callbacks in flight with NULL */
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_closed);
}
