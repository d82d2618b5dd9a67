/* tests/integration/test-lease.c - several riskd processes on the same streams: leases,
 * fencing, takeover, partitions (issue #8, tests 2 and 3 on one Redis).
 *
 * Every test feeds the same generated workload (tests/lib/gen.c, explicit
 * entry ids, so alert ids can be compared across runs) at a steady rate
 * while riskd instances run, does something to them mid-way, and compares
 * the set of alert ids with a clean run of one instance over the same
 * entries on a fresh Redis: equal, and no id written twice.
 *
 *  - standby takeover: instance a active, b standby (/healthz 503,
 *    riskd_active 0); a is SIGKILLed; b takes the lease over within a few
 *    seconds (one takeover), claims a's pending entries and finishes.
 *  - paused leader: a is SIGSTOPped instead; b takes over once a's lease
 *    ran out; a is resumed after b has moved on and must do nothing: it
 *    reads no entry (its consumer stays idle and holds nothing pending),
 *    writes nothing (every write path is fenced by the epoch, and the alert
 *    set and stream show no extra write), and stays a standby.
 *  - a partition handed to its preferred member at that member's fair
 *    share is taken (one riskd, a fake member and a fake lease holder).
 *  - partitions: 6 partitions shared by instances a, b, c; c is killed and
 *    d added mid-run; the partitions are shared out again and the alerts
 *    equal a single instance's over the same events.
 *  - the same on a 3-master Redis Cluster (tests/lib/itest_cluster.c), where
 *    in addition partition 0's slot and the alert stream's slot are
 *    resharded to other masters mid-run (ASK while their keys move, MOVED
 *    after).
 *
 * All instances run with state.lease_ttl 2s, so a takeover is due ~2 s after
 * the holder stops renewing (+1.5 s for reads still blocked in Redis). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "itest_proxy.h"
#include "itest_cluster.h"
#include "gen.h"
#include "internal.h"               /* rk__partition_of: how producers route */

#define EVENTS 30000
#define RATE 12000                  /* events per second fed */
#define LEASE_CFG "\"state\":{\"interval\":\"200ms\",\"lease_ttl\":\"2s\"}," \
                  "\"clock\":{\"wall_advance\":false}"
/* Extra top-level settings of every riskd (clean runs too), or "" */
static const char *det_extra = "";

/* ===================================================================
 * Where a key lives: one Redis, or the node of its slot on a cluster
 * =================================================================== */

/* ===================================================================
 * The workload: (stream key, entry id, data) per entry
 * =================================================================== */

typedef struct wl_entry {
    char key[40];
    char id[24];
    char *data;
} wl_entry;

typedef struct workload {
    wl_entry *e;
    size_t n;
    int partitions;
} workload;

/* Generate `events` events routed to `partitions` partitions by unit (a
 * tick to every partition), ids 1-0, 2-0, ... per stream key. */
static void wl_make(workload *w, size_t events, int partitions)
{
    bg_opts o;
    bg_gen *g;
    char buf[2048], unit[32];
    size_t i, cap = events + events / 4 + 16, *seq;
    int64_t ts, last = 0;
    int stream, p, p0, p1;

    memset(w, 0, sizeof(*w));
    w->partitions = partitions;
    w->e = calloc(cap, sizeof(*w->e));
    seq = calloc((size_t)partitions * 2, sizeof(*seq));
    assert_non_null(w->e);
    assert_non_null(seq);
    bg_opts_default(&o);
    o.entries = (long long)events;
    o.units = 200;
    o.officers = 400;
    o.enterprises = 2000;
    o.days = 20;
    o.anomaly = 0.05;
    o.seed = 42;
    g = bg_gen_new(&o);
    assert_non_null(g);
    for (i = 0; i < events; i++) {
        assert_true(bg_gen_next(g, -1, &stream, &ts, buf, sizeof(buf)) > 0);
        if (ts > last)
            last = ts;
        if (bg_gen_last_unit(g) < 0) {
            p0 = 0;
            p1 = partitions - 1;
        } else {
            snprintf(unit, sizeof(unit), "U%d", bg_gen_last_unit(g));
            p0 = p1 = rk__partition_of(unit, partitions);
        }
        for (p = p0; p <= p1; p++) {
            wl_entry *x;
            if (w->n == cap) {
                cap *= 2;
                w->e = realloc(w->e, cap * sizeof(*w->e));
                assert_non_null(w->e);
            }
            x = &w->e[w->n++];
            if (partitions > 1)
                snprintf(x->key, sizeof(x->key), "%s:{%d}",
                         stream ? "enforce:case" : "enforce:scan", p);
            else
                snprintf(x->key, sizeof(x->key), "%s", stream ? "enforce:case" : "enforce:scan");
            snprintf(x->id, sizeof(x->id), "%zu-0", ++seq[p * 2 + stream]);
            x->data = strdup(buf);
            assert_non_null(x->data);
        }
    }
    bg_gen_free(g);
    /* A closing tick a day after the last event, to every partition: with
     * partitions, scan_without_filing and case_without_filing wait until
     * every partition is past their deadline (the filing register). */
    if (w->n + (size_t)partitions > cap) {
        cap = w->n + (size_t)partitions;
        w->e = realloc(w->e, cap * sizeof(*w->e));
        assert_non_null(w->e);
    }
    for (p = 0; p < partitions; p++) {
        wl_entry *x = &w->e[w->n++];
        char t[64];
        time_t secs = (time_t)((last + 86400000) / 1000);
        strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", gmtime(&secs));
        if (partitions > 1)
            snprintf(x->key, sizeof(x->key), "enforce:case:{%d}", p);
        else
            snprintf(x->key, sizeof(x->key), "enforce:case");
        snprintf(x->id, sizeof(x->id), "%zu-0", ++seq[p * 2 + 1]);
        snprintf(buf, sizeof(buf), "{\"type\":\"clock.tick\",\"ts\":\"%s\"}", t);
        x->data = strdup(buf);
        assert_non_null(x->data);
    }
    free(seq);
}

static void wl_free(workload *w)
{
    size_t i;
    for (i = 0; i < w->n; i++)
        free(w->e[i].data);
    free(w->e);
}

/* Write entries [from, to), pipelined, each to the node of its key. */
static void wl_write(it_conns *k, const workload *w, size_t from, size_t to)
{
    redisContext *cs[8];
    size_t pending[8] = {0}, i;
    int nc = 0, j;
    for (i = from; i < to; i++) {
        redisContext *c = it_conns_for(k, w->e[i].key);
        for (j = 0; j < nc && cs[j] != c; j++)
            ;
        if (j == nc)
            cs[nc++] = c;
        redisAppendCommand(c, "XADD %s %s data %s", w->e[i].key, w->e[i].id, w->e[i].data);
        pending[j]++;
        if (i + 1 == to || (i - from) % 1000 == 999) {
            for (j = 0; j < nc; j++)
                for (; pending[j] > 0; pending[j]--) {
                    redisReply *r;
                    assert_int_equal(redisGetReply(cs[j], (void **)&r), REDIS_OK);
                    if (r->type == REDIS_REPLY_ERROR)
                        fail_msg("XADD: %s", r->str);
                    freeReplyObject(r);
                }
        }
    }
}

/* Feed the workload at RATE entries/s; hook(ud, share fed) between chunks. */
static void wl_feed(it_conns *c, const workload *w, void (*hook)(void *ud, double share),
                    void *ud)
{
    size_t at = 0, chunk = RATE / 20;
    while (at < w->n) {
        size_t to = at + chunk < w->n ? at + chunk : w->n;
        wl_write(c, w, at, to);
        at = to;
        if (hook)
            hook(ud, (double)at / (double)w->n);
        it_sleep_ms(50);
    }
}

static bool all_drained(it_conns *c, int partitions, bool cross, int timeout_ms)
{
    int p;
    char k[40];
    for (p = 0; p < partitions; p++) {
        unsigned si;
        for (si = 0; si < 2; si++) {
            if (partitions > 1)
                snprintf(k, sizeof(k), "%s:{%d}", si ? "enforce:case" : "enforce:scan", p);
            else
                snprintf(k, sizeof(k), "%s", si ? "enforce:case" : "enforce:scan");
            if (!it_wait_drained(it_conns_for(c, k), k, "riskd", timeout_ms))
                return false;
            /* the cross pipeline reads every partition's streams too */
            if (cross && !it_wait_drained(it_conns_for(c, k), k, "riskd:cross", timeout_ms))
                return false;
        }
    }
    return true;
}

/* What Redis says about the leases and the consumer groups (a failed
 * wait's diagnosis). */
/* Who holds what in the single-partition streams (a failed wait's
 * diagnosis). */
static void dump_consumers(redisContext *c)
{
    static const char *const keys[] = {"enforce:scan", "enforce:case"};
    for (unsigned si = 0; si < 2; si++) {
        redisReply *r = redisCommand(c, "XINFO CONSUMERS %s riskd", keys[si]);
        fprintf(stderr, "%s consumers:\n", keys[si]);
        for (size_t g = 0; r && r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
            fprintf(stderr, " ");
            for (size_t j = 0; j + 1 < r->element[g]->elements; j += 2) {
                const redisReply *v = r->element[g]->element[j + 1];
                if (v->type == REDIS_REPLY_INTEGER)
                    fprintf(stderr, " %s=%lld", r->element[g]->element[j]->str, v->integer);
                else if (v->type == REDIS_REPLY_STRING)
                    fprintf(stderr, " %s=%s", r->element[g]->element[j]->str, v->str);
            }
            fprintf(stderr, "\n");
        }
        freeReplyObject(r);
        r = redisCommand(c, "XINFO GROUPS %s", keys[si]);
        for (size_t g = 0; r && r->type == REDIS_REPLY_ARRAY && g < r->elements; g++)
            for (size_t j = 0; j + 1 < r->element[g]->elements; j += 2) {
                const redisReply *v = r->element[g]->element[j + 1];
                if (v->type == REDIS_REPLY_INTEGER)
                    fprintf(stderr, " %s=%lld", r->element[g]->element[j]->str, v->integer);
                else if (v->type == REDIS_REPLY_STRING)
                    fprintf(stderr, " %s=%s", r->element[g]->element[j]->str, v->str);
            }
        fprintf(stderr, "\n");
        freeReplyObject(r);
    }
}

static void dump_leases(it_conns *c, int partitions)
{
    char k[64];
    redisReply *r;
    int p;
    for (p = 0; p < partitions; p++) {
        snprintf(k, sizeof(k), "riskd:state:{%d}:lease", p);
        r = redisCommand(it_conns_for(c, k), "GET %s", k);
        fprintf(stderr, "%s = %s\n", k, r && r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
        freeReplyObject(r);
        for (int si = 0; si < 2; si++) {
            snprintf(k, sizeof(k), "%s:{%d}", si ? "enforce:case" : "enforce:scan", p);
            r = redisCommand(it_conns_for(c, k), "XINFO GROUPS %s", k);
            fprintf(stderr, "  %s:", k);
            for (size_t g = 0; r && r->type == REDIS_REPLY_ARRAY && g < r->elements; g++)
                for (size_t j = 0; j + 1 < r->element[g]->elements; j += 2) {
                    const redisReply *v = r->element[g]->element[j + 1];
                    if (v->type == REDIS_REPLY_INTEGER)
                        fprintf(stderr, " %s=%lld", r->element[g]->element[j]->str, v->integer);
                    else if (v->type == REDIS_REPLY_STRING)
                        fprintf(stderr, " %s=%s", r->element[g]->element[j]->str, v->str);
                }
            fprintf(stderr, "\n");
            freeReplyObject(r);
        }
    }
    r = redisCommand(it_conns_for(c, "riskd:state:members"), "ZRANGE riskd:state:members 0 -1 WITHSCORES");
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        fprintf(stderr, "member %s until %s\n", r->element[i]->str, r->element[i + 1]->str);
    freeReplyObject(r);
}

/* The alert ids in the alerts stream as an object id -> count; a notice
 * (it shares its alert's id) counts as "<id>:<status>". */
static json_t *alert_ids(it_conns *c, size_t *total)
{
    json_t *arr = it_alerts(it_conns_for(c, "alerts"), "alerts"), *ids = json_object(), *a;
    size_t i;
    json_array_foreach(arr, i, a) {
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *st = json_string_value(json_object_get(a, "status"));
        char key[96];
        json_t *n;
        assert_non_null(id);
        if (st != NULL && strcmp(st, "firing") != 0)
            snprintf(key, sizeof(key), "%s:%s", id, st);
        else
            snprintf(key, sizeof(key), "%s", id);
        n = json_object_get(ids, key);
        json_object_set_new(ids, key, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    *total = json_array_size(arr);
    json_decref(arr);
    return ids;
}

/* One instance over the whole workload on a fresh Redis: the reference. */
static json_t *clean_run(const workload *w)
{
    it_env env;
    char cfg[512];
    json_t *ids;
    size_t total;
    it_conns k = {0};

    assert_int_equal(it_env_start(&env), 0);
    k.one = env.c;
    wl_write(&k, w, 0, w->n);
    snprintf(cfg, sizeof(cfg), "{\"partitions\":%d,\"streams\":{\"consumer\":\"clean\"},"
             "%s" LEASE_CFG "}", w->partitions, det_extra);
    assert_int_equal(it_riskd_start(&env.riskd, env.redis.port, cfg), 0);
    if (!all_drained(&k, w->partitions, w->partitions > 1, 60000)) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("the clean run did not drain");
    }
    it_riskd_signal(&env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env.riskd, 15000), 0);
    ids = alert_ids(&k, &total);
    assert_int_equal(total, json_object_size(ids));
    assert_true(total > 50);        /* the workload does raise alerts */
    it_env_stop(&env);
    return ids;
}

/* Equal id sets, each id written once. */
static void assert_same_alerts(it_conns *c, json_t *want, const char *what)
{
    size_t total;
    json_t *got = alert_ids(c, &total), *v;
    const char *id;
    size_t missing = 0, extra = 0, dups = 0;
    json_object_foreach(want, id, v)
        if (json_object_get(got, id) == NULL)
            missing++;
    json_object_foreach(got, id, v) {
        if (json_object_get(want, id) == NULL)
            extra++;
        if (json_integer_value(v) > 1)
            dups++;
    }
    fprintf(stderr, "%s: %zu alerts (clean run %zu): %zu missing, %zu extra, %zu written twice\n",
            what, total, json_object_size(want), missing, extra, dups);
    assert_int_equal(missing, 0);
    assert_int_equal(extra, 0);
    assert_int_equal(dups, 0);
    assert_int_equal(total, json_object_size(want));
    json_decref(got);
}

/* ===================================================================
 * Instances
 * =================================================================== */

typedef struct inst {
    it_riskd d;
    int mport;
    char name[16];
} inst;

/* Extra "redis" settings (a cluster's seeds), or "" */
static char redis_extra[256];

static void inst_start(inst *x, int redis_port, const char *name, int partitions)
{
    char cfg[1024];
    memset(x, 0, sizeof(*x));
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"partitions\":%d,\"streams\":{\"consumer\":\"%s\"},"
             "%s%s\"metrics\":{\"listen\":\"127.0.0.1:%d\"}," LEASE_CFG "}",
             partitions, name, redis_extra, det_extra, x->mport);
    assert_int_equal(it_riskd_start(&x->d, redis_port, cfg), 0);
}

static void inst_stop(inst *x)
{
    if (x->d.pid > 0 && it_riskd_alive(&x->d)) {
        int rc;
        it_riskd_signal(&x->d, SIGTERM);
        if ((rc = it_riskd_wait(&x->d, 20000)) != 0) {
            it_riskd_dump_log(&x->d);
            fail_msg("riskd %s: exit %d at SIGTERM", x->name, rc);
        }
    }
}

static void inst_kill(inst *x)
{
    it_riskd_signal(&x->d, SIGKILL);
    it_riskd_wait(&x->d, 5000);
}

typedef struct want_log {
    inst *x;
    const char *text;
} want_log;

static bool log_has(void *arg)
{
    want_log *w = arg;
    return it_log_contains(&w->x->d, w->text);
}

static void wait_log(inst *x, const char *text, int timeout_ms)
{
    want_log w = {x, text};
    if (!it_wait_until(log_has, &w, timeout_ms)) {
        it_riskd_dump_log(&x->d);
        fail_msg("%s: no \"%s\" in the log", x->name, text);
    }
}

static int log_count(const inst *x, const char *text)
{
    FILE *f = fopen(x->d.log, "r");
    char line[4096];
    int n = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, text))
            n++;
    fclose(f);
    return n;
}

/* XINFO CONSUMERS: pending and idle (ms) of one consumer of the group on
 * key; -1 / -1 when it is not there. */
static void consumer_info(redisContext *c, const char *key, const char *name,
                          long long *pending, long long *idle)
{
    redisReply *r = it_cmd(c, "XINFO CONSUMERS %s riskd", key);
    size_t i, k;
    *pending = *idle = -1;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        bool match = false;
        long long p = -1, d = -1;
        for (k = 0; k + 1 < e->elements; k += 2) {
            const char *f = e->element[k]->str;
            redisReply *v = e->element[k + 1];
            if (strcmp(f, "name") == 0)
                match = strcmp(v->str, name) == 0;
            else if (strcmp(f, "pending") == 0)
                p = v->integer;
            else if (strcmp(f, "idle") == 0)
                d = v->integer;
        }
        if (match) {
            *pending = p;
            *idle = d;
        }
    }
    freeReplyObject(r);
}

/* ===================================================================
 * Tests
 * =================================================================== */

typedef struct fixture {
    it_env env;
    workload w;
    inst x[4];
    it_conns k;
    it_cluster cl;
    bool cluster;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || it_env_start(&f->env) != 0)
        return -1;
    f->k.one = f->env.c;
    redis_extra[0] = '\0';
    det_extra = "";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int i;
    for (i = 0; i < 4; i++)
        if (f->x[i].d.pid > 0 && it_riskd_alive(&f->x[i].d)) {
            it_riskd_signal(&f->x[i].d, SIGKILL);
            it_riskd_wait(&f->x[i].d, 5000);
        }
    it_env_stop(&f->env);
    it_conns_close(&f->k);
    if (f->cluster)
        it_cluster_stop(&f->cl);
    wl_free(&f->w);
    free(f);
    return 0;
}

/* a active, b standby, both checked through /healthz and /metrics. */
static void start_pair(fixture *f)
{
    char body[2048];
    inst_start(&f->x[0], f->env.redis.port, "a", 1);
    wait_log(&f->x[0], "ready (active)", 10000);
    inst_start(&f->x[1], f->env.redis.port, "b", 1);
    wait_log(&f->x[1], "ready (standby)", 10000);
    assert_int_equal(it_http_get(f->x[0].mport, "/healthz", body, sizeof(body)), 200);
    assert_non_null(strstr(body, "{\"status\":\"consuming\","));
    assert_int_equal(it_http_get(f->x[1].mport, "/healthz", body, sizeof(body)), 503);
    assert_non_null(strstr(body, "{\"status\":\"standby\","));
    assert_true(it_metric(f->x[0].mport, "riskd_active") == 1.0);
    assert_true(it_metric(f->x[1].mport, "riskd_active") == 0.0);
    assert_true(it_metric(f->x[1].mport, "riskd_members") == 2.0);
}

typedef struct kill_at {
    fixture *f;
    double share;
    bool done;
    int sig;
    uint64_t at_ns;
} kill_at;

static void hook_signal(void *ud, double share)
{
    kill_at *k = ud;
    if (k->done || share < k->share)
        return;
    k->done = true;
    k->at_ns = (uint64_t)bg_now_ns();
    it_riskd_signal(&k->f->x[0].d, k->sig);
    fprintf(stderr, "%s a at %.0f%% of the feed\n", k->sig == SIGKILL ? "SIGKILL" : "SIGSTOP",
            share * 100);
}

static void test_standby_takeover_after_kill(void **state)
{
    fixture *f = *state;
    json_t *want;
    kill_at k;
    char body[2048];

    wl_make(&f->w, EVENTS, 1);
    want = clean_run(&f->w);
    start_pair(f);
    k = (kill_at){f, 0.3, false, SIGKILL, 0};
    wl_feed(&f->k, &f->w, hook_signal, &k);
    assert_true(k.done);
    it_riskd_wait(&f->x[0].d, 5000);
    wait_log(&f->x[1], "consuming (epoch", 15000);
    fprintf(stderr, "b consuming %.1f s after the kill\n",
            (double)((uint64_t)bg_now_ns() - k.at_ns) / 1e9);
    if (!all_drained(&f->k, 1, false, 60000)) {
        it_riskd_dump_log(&f->x[1].d);
        fail_msg("b did not finish the workload");
    }
    assert_same_alerts(&f->k, want, "after the kill");
    assert_int_equal(log_count(&f->x[1], "lease riskd:state:lease acquired"), 1);
    assert_int_equal(log_count(&f->x[1], "taking over from"), 1);
    assert_int_equal(it_http_get(f->x[1].mport, "/healthz", body, sizeof(body)), 200);
    assert_true(it_metric(f->x[1].mport, "riskd_active") == 1.0);
    inst_stop(&f->x[1]);
    json_decref(want);
}

static void test_paused_leader_is_fenced(void **state)
{
    fixture *f = *state;
    json_t *want;
    kill_at k;
    long long pending, idle, before;
    uint64_t resumed;

    wl_make(&f->w, EVENTS, 1);
    want = clean_run(&f->w);
    start_pair(f);
    k = (kill_at){f, 0.3, false, SIGSTOP, 0};
    /* Feed up to 60 %, so b has work of its own after the takeover. */
    {
        workload part = f->w;
        part.n = f->w.n * 6 / 10;
        wl_feed(&f->k, &part, hook_signal, &k);
        assert_true(k.done);
        wait_log(&f->x[1], "consuming (epoch", 15000);
        fprintf(stderr, "b consuming %.1f s after the pause\n",
                (double)((uint64_t)bg_now_ns() - k.at_ns) / 1e9);
        assert_true(all_drained(&f->k, 1, false, 60000));
        before = it_int(f->env.c, "XLEN alerts");
        /* a comes back: it must do nothing. */
        it_riskd_signal(&f->x[0].d, SIGCONT);
        resumed = (uint64_t)bg_now_ns();
        wl_write(&f->k, &f->w, part.n, f->w.n);
    }
    wait_log(&f->x[0], "partition 0", 10000);
    if (!all_drained(&f->k, 1, false, 60000)) {
        it_riskd_dump_log(&f->x[0].d);
        it_riskd_dump_log(&f->x[1].d);
        dump_consumers(f->env.c);
        fail_msg("b did not finish the workload after a resumed");
    }
    it_sleep_ms(3000);              /* a: several ticks after resuming */
    assert_true(it_log_contains(&f->x[0].d, "giving up") ||
                it_log_contains(&f->x[0].d, "lease lost"));
    assert_false(it_log_contains(&f->x[0].d, "FENCED") &&
                 !it_log_contains(&f->x[0].d, "giving up"));
    /* a read nothing since it resumed: its consumer is idle since before
     * then and holds no entry (b claimed them at the takeover). */
    consumer_info(f->env.c, "enforce:scan", "a", &pending, &idle);
    assert_int_equal(pending, 0);
    assert_true(idle >= (long long)(((uint64_t)bg_now_ns() - resumed) / 1000000));
    consumer_info(f->env.c, "enforce:case", "a", &pending, &idle);
    assert_int_equal(pending, 0);
    assert_true(idle >= (long long)(((uint64_t)bg_now_ns() - resumed) / 1000000));
    /* a stays a standby; b holds the partition (one takeover). */
    assert_true(it_metric(f->x[0].mport, "riskd_active") == 0.0);
    assert_true(it_metric(f->x[1].mport, "riskd_active") == 1.0);
    assert_int_equal(log_count(&f->x[1], "lease riskd:state:lease acquired"), 1);
    assert_true(it_int(f->env.c, "XLEN alerts") >= before);
    assert_same_alerts(&f->k, want, "after the pause");
    inst_stop(&f->x[0]);
    inst_stop(&f->x[1]);
    json_decref(want);
}

/* A read held up on its way to Redis - in the network, or in a process
 * frozen between queueing it and writing it - until another instance has
 * taken the partition over must not hand the old holder any entry: it
 * would never apply them, and the new holder, reading past them, would
 * count them as read. The proxy holds a's requests (its lease renewals
 * too, so the lease runs out and b takes over); b is paused while a's
 * held requests reach Redis, so that there are entries for a stale read
 * to take. */
static void test_held_read_is_fenced(void **state)
{
    fixture *f = *state;
    json_t *want;
    it_proxy *px;
    int pport = 0;
    long long pending, idle;
    size_t third;

    wl_make(&f->w, EVENTS, 1);
    third = f->w.n / 3;
    want = clean_run(&f->w);
    px = it_proxy_start(f->env.redis.port, &pport);
    assert_non_null(px);
    inst_start(&f->x[0], pport, "a", 1);
    wait_log(&f->x[0], "ready (active)", 10000);
    inst_start(&f->x[1], f->env.redis.port, "b", 1);
    wait_log(&f->x[1], "ready (standby)", 10000);
    wl_write(&f->k, &f->w, 0, third);
    it_proxy_hold(px, true);
    for (int waited = 0; it_proxy_held(px) == 0 && waited < 5000; waited += 10)
        it_sleep_ms(10);
    assert_true(it_proxy_held(px) > 0);         /* a sent something: held */
    wait_log(&f->x[1], "consuming (epoch", 15000);
    assert_true(all_drained(&f->k, 1, false, 60000));  /* b has all of the first third */
    it_riskd_signal(&f->x[1].d, SIGSTOP);
    wl_write(&f->k, &f->w, third, 2 * third);
    it_proxy_hold(px, false);                   /* a's requests reach Redis */
    for (int waited = 0; !it_log_contains(&f->x[0].d, "giving up") &&
                         !it_log_contains(&f->x[0].d, "lease lost") && waited < 500;
         waited += 10)
        it_sleep_ms(10);
    it_riskd_signal(&f->x[1].d, SIGCONT);
    wl_write(&f->k, &f->w, 2 * third, f->w.n);
    if (!all_drained(&f->k, 1, false, 60000)) {
        it_riskd_dump_log(&f->x[0].d);
        it_riskd_dump_log(&f->x[1].d);
        dump_consumers(f->env.c);
        fail_msg("b did not finish the workload after a's held requests");
    }
    consumer_info(f->env.c, "enforce:scan", "a", &pending, &idle);
    assert_int_equal(pending, 0);
    consumer_info(f->env.c, "enforce:case", "a", &pending, &idle);
    assert_int_equal(pending, 0);
    assert_same_alerts(&f->k, want, "after the held read");
    fprintf(stderr, "a: %s\n", it_log_contains(&f->x[0].d, "giving up: FENCED") ?
            "its held read was refused (FENCED)" : "gave up before reading");
    inst_stop(&f->x[0]);
    inst_stop(&f->x[1]);
    it_proxy_stop(px);
    json_decref(want);
}

typedef struct churn {
    fixture *f;
    bool killed, added;
    bool reshard, resharded;        /* cluster: move two slots mid-run */
} churn;

/* Move the slot of key (with its keys) to the next master. */
static void reshard(it_cluster *cl, const char *key)
{
    int slot = it_cluster_keyslot(cl, key);
    int from = it_cluster_index(cl, it_cluster_slot_owner(cl, slot));
    int to = cl->node[(from + 1) % IT_CLUSTER_N].port;
    assert_true(from >= 0);
    fprintf(stderr, "resharding: slot %d (%s) from %d to %d\n", slot, key,
            cl->node[from].port, to);
    assert_int_equal(it_cluster_migrate_slot(cl, slot, to), 0);
    assert_int_equal(it_cluster_node_for(cl, key), to);
}

static void hook_churn(void *ud, double share)
{
    churn *c = ud;
    if (c->reshard && !c->resharded && share >= 0.45) {
        /* A partition's slot and the alert stream's slot move while the
         * instances run: ASK during the migration, MOVED after it. */
        c->resharded = true;
        reshard(&c->f->cl, "enforce:scan:{0}");
        reshard(&c->f->cl, "alerts");
    }
    if (!c->killed && share >= 0.3) {
        c->killed = true;
        fprintf(stderr, "SIGKILL c at %.0f%%\n", share * 100);
        inst_kill(&c->f->x[2]);
    }
    if (!c->added && share >= 0.6) {
        c->added = true;
        fprintf(stderr, "starting d at %.0f%%\n", share * 100);
        inst_start(&c->f->x[3], c->f->env.redis.port, "d", 6);
    }
}

/* With several partitions every pipeline sample carries a partition
 * label and each family keeps one HELP/TYPE header (valid exposition). */
static void check_labelled_metrics(int port)
{
    static char buf[1 << 20];
    const char *p;
    int helps = 0, types = 0;
    assert_int_equal(it_http_get(port, "/metrics", buf, sizeof(buf)), 200);
    for (p = buf; (p = strstr(p, "# HELP riskd_events_total ")) != NULL; p++)
        helps++;
    for (p = buf; (p = strstr(p, "# TYPE riskd_batch_seconds histogram")) != NULL; p++)
        types++;
    assert_int_equal(helps, 1);
    assert_int_equal(types, 1);
    assert_non_null(strstr(buf, "riskd_events_total{partition=\""));
    assert_non_null(strstr(buf, "riskd_batch_seconds_bucket{partition=\""));
    assert_non_null(strstr(buf, "riskd_partition_active{partition=\"0\"} "));
    /* the samples of one family follow its header, none elsewhere */
    p = strstr(buf, "# TYPE riskd_events_total counter\n");
    assert_non_null(p);
    assert_null(strstr(strstr(buf, "# HELP riskd_batch_seconds "), "riskd_events_total{"));
}

/* utime + stime of pid in clock ticks, or -1. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* Each live instance's CPU use over half a second, its lease metrics and,
 * when gdb is installed, where its threads are. */
static void dump_instances(inst *x, int n)
{
    static char buf[1 << 16];
    for (int i = 0; i < n; i++) {
        if (x[i].d.pid <= 0 || !it_riskd_alive(&x[i].d))
            continue;
        long long t0 = cpu_ticks(x[i].d.pid);
        it_sleep_ms(500);
        fprintf(stderr, "instance %s (pid %d): %lld ticks of CPU in 0.5 s\n", x[i].name,
                (int)x[i].d.pid, cpu_ticks(x[i].d.pid) - t0);
        if (it_http_get(x[i].mport, "/metrics", buf, sizeof(buf)) == 200) {
            for (char *l = strtok(buf, "\n"); l != NULL; l = strtok(NULL, "\n"))
                if (strncmp(l, "riskd_partition_active", 22) == 0 ||
                    strncmp(l, "riskd_members", 13) == 0 ||
                    strncmp(l, "riskd_partitions_held", 21) == 0)
                    fprintf(stderr, "  %s\n", l);
        } else {
            fprintf(stderr, "  /metrics did not answer\n");
        }
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -ex 'thread apply all bt' 2>/dev/null "
                 "| grep '^#' >&2", (int)x[i].d.pid);
        if (system(cmd) == -1)
            fprintf(stderr, "  (no backtrace)\n");
    }
}

/* A partition handed to its preferred member while that member is at its
 * fair share is taken by it (deterministic: one riskd, a fake member and a
 * fake holder written by the test). Members a and "b" (a heartbeat far in
 * the future), 2 partitions, fair share 1; partition 0 is preferred to a,
 * partition 1 to b. Partition 0 is held by "z", so a takes partition 1
 * (free for a lease time, a below its share). Then z releases partition 0:
 * a, at its share, takes it all the same (one over) and hands partition 1
 * over to b. Before, partition 0 stayed free until somebody below its
 * share found it free for a lease time - here nobody. */
static void test_preferred_at_share(void **state)
{
    fixture *f = *state;
    redisContext *c = f->env.c;

    freeReplyObject(it_cmd(c, "ZADD riskd:state:members 9000000000000000 b"));
    freeReplyObject(it_cmd(c, "SET riskd:state:{0}:lease %s PX 60000", "z held"));
    inst_start(&f->x[0], f->env.redis.port, "a", 2);
    wait_log(&f->x[0], "partition 1: lease riskd:state:{1}:lease acquired", 15000);
    assert_false(it_log_contains(&f->x[0].d, "partition 0: lease riskd:state:{0}:lease acquired"));
    freeReplyObject(it_cmd(c, "SET riskd:state:{0}:lease %s PX 60000", "z released"));
    wait_log(&f->x[0], "partition 0: lease riskd:state:{0}:lease acquired", 10000);
    wait_log(&f->x[0], "partition 1: handing over to b (2 held, fair share 1)", 10000);
    wait_log(&f->x[0], "partition 1: lease released", 10000);
    assert_true(it_metric(f->x[0].mport, "riskd_partitions_held") == 1.0);
}

/* Instances a, b, c on 6 partitions; the feed kills c at 30 % and starts d
 * at 60 %; then a, b and d must hold two partitions each and the alerts
 * equal the clean run's. */
static void run_churn(fixture *f, json_t *want, int port, const char *what)
{
    churn c = {f, false, false, f->cluster, false};
    int i, total = 0;

    inst_start(&f->x[0], port, "a", 6);
    inst_start(&f->x[1], port, "b", 6);
    inst_start(&f->x[2], port, "c", 6);
    for (i = 0; i < 3; i++)
        wait_log(&f->x[i], "consuming (epoch", 20000);
    wl_feed(&f->k, &f->w, hook_churn, &c);
    assert_true(c.killed && c.added && c.resharded == f->cluster);
    wait_log(&f->x[3], "consuming (epoch", 20000);
    if (!all_drained(&f->k, 6, !f->cluster, 60000)) {
        for (i = 0; i < 4; i++)
            it_riskd_dump_log(&f->x[i].d);
        dump_leases(&f->k, 6);
        dump_instances(f->x, 4);
        fail_msg("the partitions did not drain");
    }
    /* Settled: a, b and d hold two partitions each. */
    it_sleep_ms(3000);
    for (i = 0; i < 4; i++) {
        double held;
        if (i == 2)
            continue;
        held = it_metric(f->x[i].mport, "riskd_partitions_held");
        fprintf(stderr, "%s holds %.0f partitions\n", f->x[i].name, held);
        assert_true(held == 2.0);
        total += (int)held;
    }
    assert_int_equal(total, 6);
    assert_same_alerts(&f->k, want, what);
    check_labelled_metrics(f->x[0].mport);
}

static void stop_churned(fixture *f)
{
    int i;
    for (i = 0; i < 4; i++)
        if (i != 2)
            inst_stop(&f->x[i]);
}

static void test_partitions_shared_out(void **state)
{
    fixture *f = *state;
    json_t *want;

    wl_make(&f->w, EVENTS, 6);
    want = clean_run(&f->w);
    run_churn(f, want, f->env.redis.port, "6 partitions, c killed, d added");
    stop_churned(f);
    json_decref(want);
}

/* Issue #8's test 3: a 3-master Redis Cluster, 6 partitions, 3 riskd; one
 * killed and one added mid-run, two slots resharded; the alerts equal one instance's over the
 * same partitioned streams on a single Redis (the clean run). Each
 * partition's keys live on the node of its slot; the alert stream, the
 * dedupe keys and the fence mirror on the alert stream's node. */
static void test_cluster_partitions(void **state)
{
    fixture *f = *state;
    json_t *want;
    int i, nodes_used = 0, used[IT_CLUSTER_N] = {0};
    char k[40];

    wl_make(&f->w, EVENTS, 6);
    /* On a Redis Cluster there is no cross pipeline (the partitions'
     * streams live in different slots): the rules across units would see
     * their partition's share there, and the cross pipeline of the clean
     * run everything. Those detectors are off in both. */
    det_extra = "\"detectors\":{\"inspection_frequency\":{\"enabled\":false},"
                "\"discretion\":{\"enabled\":false},\"violation_hotspot\":{\"enabled\":false}},";
    want = clean_run(&f->w);
    assert_int_equal(it_cluster_start(&f->cl), 0);
    f->cluster = true;
    f->k.cl = &f->cl;
    snprintf(redis_extra, sizeof(redis_extra),
             "\"redis\":{\"cluster\":[\"127.0.0.1:%d\",\"127.0.0.1:%d\",\"127.0.0.1:%d\"]},",
             f->cl.node[0].port, f->cl.node[1].port, f->cl.node[2].port);
    /* the partitions really are spread over the nodes */
    for (i = 0; i < 6; i++) {
        snprintf(k, sizeof(k), "enforce:scan:{%d}", i);
        used[it_cluster_index(&f->cl, it_cluster_node_for(&f->cl, k))] = 1;
    }
    for (i = 0; i < IT_CLUSTER_N; i++)
        nodes_used += used[i];
    assert_true(nodes_used >= 2);
    run_churn(f, want, f->cl.node[0].port,
              "cluster: 6 partitions, c killed, d added, two slots resharded");
    /* no cross pipeline on a cluster, and riskd says what that means */
    assert_true(it_log_contains(&f->x[0].d, "no cross pipeline"));
    assert_false(it_log_contains(&f->x[0].d, "partition cross"));
    /* the alert stream's node mirrors every partition's epoch */
    {
        redisReply *r = it_cmd(it_conns_for(&f->k, "riskd:fence:{alerts}"),
                               "HLEN riskd:fence:{alerts}");
        assert_int_equal(r->integer, 6);
        freeReplyObject(r);
    }
    stop_churned(f);
    json_decref(want);
}

int main(void)
{
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_standby_takeover_after_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paused_leader_is_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_read_is_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preferred_at_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitions_shared_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_partitions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
