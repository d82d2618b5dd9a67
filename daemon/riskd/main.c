/* main.c - riskd's entry point: options, configuration, signals, systemd.
 *
 *   riskd [-c FILE]        run in the foreground (default
 *                          /etc/riskd/riskd.json), log to stderr
 *   riskd -t [-c FILE]     check the file (and its plugins) and exit 0/1
 *   riskd --version
 *   riskd --replay [-c FILE] [--from T] [--to T] [--compare B.json]
 *                  [--partition P]
 *                          backtest: read both streams from Redis without a
 *                          consumer group and without writing anything,
 *                          run the detectors with FILE's thresholds, print
 *                          each alert as a JSON line on stdout and a summary
 *                          on stderr; with --compare, print per rule the
 *                          alerts only FILE raises, only B raises, and both
 *
 * Signals arrive through uv_signal_t so their work runs on the loop:
 * SIGHUP reloads the file (a bad file is refused, the old configuration
 * stays), SIGTERM/SIGINT stop cleanly (the batch in hand is finished, its
 * alerts written and its entries acknowledged) and exit 0.
 *
 * systemd (Type=notify): READY=1 once a partition consumes (or the process
 * settled as a standby: STATUS=standby), RELOADING=1 /
 * READY=1 around a reload, STOPPING=1, STATUS= lines, and WATCHDOG=1 at
 * half the watchdog interval when $WATCHDOG_USEC is set. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "internal.h"

#define DEFAULT_CONFIG "/etc/riskd/riskd.json"

typedef struct app {
    uv_loop_t *loop;
    const char *config_path;
    rk__node *node;
    rk__metrics *metrics;
    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t watchdog;
    int watchdog_on;
    int stopping;
    int exit_code;
} app;

/* --partition cross: the cross pipeline (daemon/pipeline/cross.c) */
#define REPLAY_CROSS (1 << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: riskd [-c FILE]       run (default " DEFAULT_CONFIG ")\n"
            "       riskd -t [-c FILE]    check the configuration and exit\n"
            "       riskd --print-config [-c FILE]\n"
            "                             check it, print the effective configuration (every\n"
            "                             key, defaults filled in) as JSON and exit\n"
            "       riskd --version       print the version\n"
            "       riskd --replay [-c FILE] [--from T] [--to T] [--compare B.json]\n"
            "                             [--partition P|cross]  (with partitions > 1)\n"
            "                             backtest the thresholds over the streams' history\n"
            "                             (T: an entry id or an RFC 3339 time)\n"
            "       riskd -h, --help      this help\n"
            "Exit status: 0 done (or stopped cleanly), 1 bad usage or configuration.\n");
}

static void on_node_ready(void *ud, bool active)
{
    (void)ud;
    rk__notify(active ? "READY=1\nSTATUS=consuming" : "READY=1\nSTATUS=standby");
    rk__log(RK_LOG_NOTICE, "ready (%s)", active ? "active" : "standby");
}

static void close_handles(app *a)
{
    uv_close((uv_handle_t *)&a->sighup, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    if (a->watchdog_on) {
        uv_timer_stop(&a->watchdog);
        uv_close((uv_handle_t *)&a->watchdog, NULL);
    }
}

static void on_stopped(void *ud)
{
    app *a = ud;
    rk__log(RK_LOG_NOTICE, "stopped");
    rk__metrics_stop(a->metrics);
    a->metrics = NULL;
    rk__node_free(a->node);
    a->node = NULL;
    close_handles(a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    char err[RK_ERRLEN];
    rk__config *cfg;

    if (signum == SIGHUP) {
        if (a->stopping)
            return;
        rk__notify("RELOADING=1\nSTATUS=reloading");
        if (rk__config_load(a->config_path, &cfg, err, sizeof(err)) != 0) {
            rk__log(RK_LOG_ERR, "reload refused, keeping the running configuration: %s", err);
            rk__node_reject_config(a->node, a->config_path, err);
        } else if (rk__node_reload(a->node, cfg, err, sizeof(err)) != 0) {
            rk__log(RK_LOG_ERR, "reload refused, keeping the running configuration: %s", err);
            rk__node_reject_config(a->node, a->config_path, err);
            rk__config_free(cfg);
        } else {
            rk__log(RK_LOG_NOTICE, "configuration reloaded from %s", a->config_path);
        }
        rk__notify(rk__node_active(a->node) ? "READY=1\nSTATUS=consuming"
                                            : "READY=1\nSTATUS=standby");
        return;
    }
    if (a->stopping)
        return;
    a->stopping = 1;
    rk__log(RK_LOG_NOTICE, "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    rk__notify("STOPPING=1\nSTATUS=stopping");
    rk__node_stop(a->node, on_stopped, a);
}

static void on_watchdog(uv_timer_t *t)
{
    app *a = t->data;
    /* Ping only while the loop turns; systemd restarts a wedged daemon. */
    (void)a;
    rk__notify("WATCHDOG=1");
}

/* ===================================================================
 * Replay and compare
 * =================================================================== */

static void on_replay_done(void *ud)
{
    *(int *)ud = 1;
}

/* Turn an RFC 3339 time into its epoch ms (entry ids start with the ms of
 * their XADD); an entry id stays as it is. */
static const char *replay_bound(const char *t, char *buf, size_t len)
{
    int64_t ms;
    if (t == NULL)
        return NULL;
    if (rk__parse_rfc3339(t, &ms) == 0) {
        snprintf(buf, len, "%lld", (long long)(ms < 0 ? 0 : ms));
        return buf;
    }
    return t;
}

static void on_lists_loaded(void *ud)
{
    *(int *)ud = 1;
}

/* Run one replay of cfg to the end. Returns its alerts (a new reference)
 * or NULL on error (logged) with the exit status in *status: 2 when Redis
 * cannot be reached or was lost (the watch, replaywatch.c), else 1. */
static json_t *run_replay(const char *path, const char *from, const char *to, int partition,
                          FILE *out, bool summary, int *status)
{
    char err[RK_ERRLEN], fb[32], tb[32];
    rk__config *cfg;
    rk__engine *e;
    rk__replay_opts ro;
    int done = 0;
    json_t *alerts;
    uv_loop_t *loop = uv_default_loop();
    rk__replay_watch *w;
    const rk__redis *conns[4];
    const char *host = NULL;
    int port = 0, nconns;

    *status = 1;

    if (rk__config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "riskd: %s\n", err);
        return NULL;
    }
    if (cfg->partitions > 1 && partition < 0) {
        fprintf(stderr, "riskd: %s: partitions is %d: give --partition P (0-%d) to replay "
                "one of them%s\n", path, cfg->partitions, cfg->partitions - 1,
                rk__config_has_cross(cfg) ? ", or --partition cross (the rules across "
                "partitions)" : "");
        rk__config_free(cfg);
        return NULL;
    }
    if (partition == REPLAY_CROSS) {
        if (!rk__config_has_cross(cfg)) {
            fprintf(stderr, "riskd: --partition cross: %s has no cross pipeline (it needs "
                    "partitions above 1, and no redis.cluster)\n", path);
            rk__config_free(cfg);
            return NULL;
        }
        partition = cfg->partitions;    /* the cross pipeline's index */
    } else if (partition >= cfg->partitions) {
        fprintf(stderr, "riskd: --partition %d: expected 0-%d\n", partition,
                cfg->partitions - 1);
        rk__config_free(cfg);
        return NULL;
    }
    {
        /* The partition's streams (tagged "{p}" with several partitions or
         * on a cluster, where the reader then goes to their node). */
        rk__config *pc;
        if (rk__config_partition(cfg, partition < 0 ? 0 : partition, &pc, err, sizeof(err)) != 0) {
            fprintf(stderr, "riskd: %s\n", err);
            rk__config_free(cfg);
            return NULL;
        }
        rk__config_free(cfg);
        cfg = pc;
    }
    {
        /* The reference lists in force when the replay starts, for all of
         * it: fetched once, before the first entry is read. */
        int listed = 0;
        rk__lists_sync *ls = rk__lists_sync_new(loop, cfg, on_lists_loaded, &listed);
        if (ls == NULL || (w = rk__replay_watch_new(loop)) == NULL) {
            fprintf(stderr, "riskd: out of memory\n");
            rk__lists_sync_free(ls);
            rk__config_free(cfg);
            return NULL;
        }
        conns[0] = rk__lists_sync_redis(ls);
        rk__replay_watch_set(w, conns, 1);
        while (!listed && !rk__replay_watch_failed(w) && uv_run(loop, UV_RUN_ONCE))
            ;
        rk__lists_sync_free(ls);
        if (!listed) {
            fprintf(stderr, "riskd: %s; the replay did not run\n", rk__replay_watch_failed(w)
                    ? rk__replay_watch_failed(w) : "cannot read the reference lists");
            rk__replay_watch_free(w);
            uv_run(loop, UV_RUN_DEFAULT);   /* let the handles close */
            rk__config_free(cfg);
            *status = 2;
            return NULL;
        }
    }
    memset(&ro, 0, sizeof(ro));
    ro.from = replay_bound(from, fb, sizeof(fb));
    ro.to = replay_bound(to, tb, sizeof(tb));
    ro.out = out;
    ro.done = on_replay_done;
    ro.ud = &done;
    e = rk__engine_new_replay(loop, cfg, &ro, err, sizeof(err));
    if (e == NULL) {
        fprintf(stderr, "riskd: %s: %s\n", path, err);
        rk__replay_watch_free(w);
        uv_run(loop, UV_RUN_DEFAULT);
        rk__config_free(cfg);
        return NULL;
    }
    nconns = rk__engine_replay_conns(e, conns, 4);
    rk__replay_watch_set(w, conns, nconns);
    while (!done && !rk__replay_watch_failed(w) && uv_run(loop, UV_RUN_ONCE))
        ;
    if (!done || rk__engine_replay_lost(e)) {
        /* Redis unreachable for too long, or lost midway: no result. */
        if (!done)
            fprintf(stderr, "riskd: %s; the replay %s\n", rk__replay_watch_failed(w),
                    rk__engine_ever_ready(e) ? "is incomplete" : "did not run");
        else {
            rk__redis_addr(conns[0], &host, &port);
            fprintf(stderr, "riskd: lost the connection to Redis at %s:%d; the replay is "
                    "incomplete\n", host ? host : "?", port);
        }
        rk__replay_watch_free(w);
        rk__engine_free(e);
        uv_run(loop, UV_RUN_DEFAULT);
        *status = 2;
        return NULL;
    }
    rk__replay_watch_free(w);
    if (summary)
        rk__engine_replay_summary(e, stderr);
    alerts = json_incref(rk__engine_replay_alerts(e));
    rk__engine_free(e);
    uv_run(loop, UV_RUN_DEFAULT);   /* let the handles close */
    return alerts;
}

/* Per detector/rule: how many alerts only A raises, only B, and both. */
static void print_compare(json_t *a, json_t *b, const char *pa, const char *pb)
{
    json_t *rows = json_object(), *x, *row;
    const char *id, *key;
    int side;

    for (side = 0; side < 2; side++) {
        json_t *mine = side ? b : a, *other = side ? a : b;
        json_object_foreach(mine, id, x) {
            char k[256];
            const char *col;
            snprintf(k, sizeof(k), "%s/%s", json_string_value(json_object_get(x, "detector")),
                     json_string_value(json_object_get(x, "rule")));
            row = json_object_get(rows, k);
            if (row == NULL) {
                row = json_pack("{s:i,s:i,s:i}", "a", 0, "b", 0, "both", 0);
                json_object_set_new(rows, k, row);
            }
            if (json_object_get(other, id) != NULL) {
                if (side)
                    continue;       /* counted once, from A */
                col = "both";
            } else {
                col = side ? "b" : "a";
            }
            json_object_set_new(row, col, json_integer(json_integer_value(json_object_get(row, col)) + 1));
        }
    }
    printf("A = %s\nB = %s\n%-40s %8s %8s %8s\n", pa, pb, "detector/rule", "only A", "only B",
           "both");
    json_object_foreach(rows, key, row)
        printf("%-40s %8lld %8lld %8lld\n", key, (long long)json_integer_value(json_object_get(row, "a")),
               (long long)json_integer_value(json_object_get(row, "b")),
               (long long)json_integer_value(json_object_get(row, "both")));
    json_decref(rows);
}

/* riskd --print-config: check cfg as -t does, then print the effective
 * configuration as JSON on stdout. Frees cfg; returns the exit status. */
static int print_effective(const char *path, rk__config *cfg)
{
    char err[RK_ERRLEN], *text = NULL;
    json_t *eff = NULL;
    int rc = 1;

    if (rk__registry_check(cfg, err, sizeof(err)) != 0)
        fprintf(stderr, "riskd: %s: %s\n", path, err);
    else if ((eff = rk__config_effective(cfg, err, sizeof(err))) == NULL)
        fprintf(stderr, "riskd: %s: %s\n", path, err);
    else if ((text = json_dumps(eff, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                     JSON_REAL_PRECISION(15))) == NULL)
        fprintf(stderr, "riskd: out of memory\n");
    else if (puts(text) >= 0 && fflush(stdout) == 0)
        rc = 0;
    free(text);
    json_decref(eff);
    rk__config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"replay", no_argument, NULL, 'R'},
        {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},
        {"compare", required_argument, NULL, 'C'},
        {"partition", required_argument, NULL, 'P'},
        {"print-config", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}
    };
    app a;
    char err[RK_ERRLEN];
    rk__config *cfg;
    int opt, test = 0, replay = 0, partition = -1, print_config = 0;
    const char *from = NULL, *to = NULL, *compare = NULL;
    int64_t wd;

    memset(&a, 0, sizeof(a));
    a.config_path = DEFAULT_CONFIG;
    rk__log_init();
    while ((opt = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': a.config_path = optarg; break;
        case 't': test = 1; break;
        case 'K': print_config = 1; break;
        case 'V':
            printf("riskd %s (detector ABI %d.%d, libuv %s, hiredis %d.%d.%d, jansson %s)\n",
                   RK_VERSION, RK_ABI_MAJOR, RK_ABI_MINOR, uv_version_string(),
                   HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, JANSSON_VERSION);
            return 0;
        case 'h': usage(stdout); return 0;
        case 'R': replay = 1; break;
        case 'F': from = optarg; break;
        case 'T': to = optarg; break;
        case 'C': compare = optarg; break;
        case 'P': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (strcmp(optarg, "cross") == 0) {
                partition = REPLAY_CROSS;
                break;
            }
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 1023) {
                fprintf(stderr, "riskd: --partition: expected a number from 0 to 1023, "
                        "or cross\n");
                return 1;
            }
            partition = (int)v;
            break;
        }
        default: usage(stderr); return 1;
        }
    }
    if (optind != argc || ((from || to || compare || partition >= 0) && !replay) ||
        (print_config && (test || replay))) {
        usage(stderr);
        return 1;
    }
    if (replay) {
        json_t *ra, *rb;
        int rc;
        signal(SIGPIPE, SIG_IGN);
        ra = run_replay(a.config_path, from, to, partition, compare ? NULL : stdout,
                        compare == NULL, &rc);
        if (ra == NULL)
            return rc;
        if (compare != NULL) {
            rb = run_replay(compare, from, to, partition, NULL, false, &rc);
            if (rb == NULL) {
                json_decref(ra);
                return rc;
            }
            print_compare(ra, rb, a.config_path, compare);
            json_decref(rb);
        }
        json_decref(ra);
        uv_loop_close(uv_default_loop());
        return 0;
    }
    if (rk__config_load(a.config_path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "riskd: %s\n", err);
        return 1;
    }
    if (print_config)
        return print_effective(a.config_path, cfg);
    if (test) {
        int rc = rk__registry_check(cfg, err, sizeof(err));
        rk__config_free(cfg);
        if (rc != 0) {
            fprintf(stderr, "riskd: %s: %s\n", a.config_path, err);
            return 1;
        }
        fprintf(stderr, "riskd: %s: configuration OK\n", a.config_path);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    a.loop = uv_default_loop();
    a.node = rk__node_new(a.loop, cfg, err, sizeof(err));
    if (a.node == NULL) {
        rk__log(RK_LOG_ERR, "%s: %s", a.config_path, err);
        rk__config_free(cfg);
        return 1;
    }
    if (cfg->metrics_host != NULL) {
        a.metrics = rk__metrics_start(a.loop, cfg->metrics_host, cfg->metrics_port,
                                      a.node, err, sizeof(err));
        if (a.metrics == NULL) {
            rk__log(RK_LOG_ERR, "metrics.listen \"%s\": %s", cfg->metrics_listen, err);
            rk__node_free(a.node);
            uv_run(a.loop, UV_RUN_DEFAULT);
            uv_loop_close(a.loop);
            return 1;
        }
    }
    rk__node_on_ready(a.node, on_node_ready, &a);
    uv_signal_init(a.loop, &a.sighup);
    uv_signal_init(a.loop, &a.sigterm);
    uv_signal_init(a.loop, &a.sigint);
    a.sighup.data = a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sighup, on_signal, SIGHUP);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    wd = rk__notify_watchdog_ms();
    if (wd > 0) {
        uv_timer_init(a.loop, &a.watchdog);
        a.watchdog.data = &a;
        uv_timer_start(&a.watchdog, on_watchdog, (uint64_t)(wd / 2), (uint64_t)(wd / 2));
        a.watchdog_on = 1;
    }
    if (cfg->n_cluster > 0)
        rk__log(RK_LOG_NOTICE, "riskd %s starting (config %s, Redis Cluster through %zu "
                "seed(s), consumer %s, %d partition(s))", RK_VERSION, a.config_path,
                cfg->n_cluster, cfg->consumer, cfg->partitions);
    else if (cfg->n_sentinels > 0)
        rk__log(RK_LOG_NOTICE, "riskd %s starting (config %s, master \"%s\" through %zu "
                "sentinel(s), consumer %s, %d partition(s))", RK_VERSION, a.config_path,
                cfg->redis_master_name, cfg->n_sentinels, cfg->consumer, cfg->partitions);
    else
        rk__log(RK_LOG_NOTICE, "riskd %s starting (config %s, redis %s:%d, consumer %s, "
                "%d partition(s))", RK_VERSION, a.config_path, cfg->redis_host,
                cfg->redis_port, cfg->consumer, cfg->partitions);
    uv_run(a.loop, UV_RUN_DEFAULT);
    uv_loop_close(a.loop);
    return a.exit_code;
}
