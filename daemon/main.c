/* main.c - riskd's entry point: options, configuration, signals, systemd.
 *
 *   riskd [-c FILE]        run in the foreground (default
 *                          /etc/riskd/riskd.json), log to stderr
 *   riskd -t [-c FILE]     check the file (and its plugins) and exit 0/1
 *   riskd --version
 *
 * Signals arrive through uv_signal_t so their work runs on the loop:
 * SIGHUP reloads the file (a bad file is refused, the old configuration
 * stays), SIGTERM/SIGINT stop cleanly (the batch in hand is finished, its
 * alerts written and its entries acknowledged) and exit 0.
 *
 * systemd (Type=notify): READY=1 once the engine consumes, RELOADING=1 /
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
    rk_engine *engine;
    rk_metrics *metrics;
    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t watchdog;
    int watchdog_on;
    int stopping;
    int exit_code;
} app;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: riskd [-c FILE]       run (default " DEFAULT_CONFIG ")\n"
            "       riskd -t [-c FILE]    check the configuration and exit\n"
            "       riskd --version       print the version\n"
            "       riskd -h              this help\n");
}

static void on_engine_ready(void *ud)
{
    (void)ud;
    rk__notify("READY=1\nSTATUS=consuming");
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
    rk__engine_free(a->engine);
    a->engine = NULL;
    close_handles(a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    char err[RK_ERRLEN];
    rk_config *cfg;

    if (signum == SIGHUP) {
        if (a->stopping)
            return;
        rk__notify("RELOADING=1\nSTATUS=reloading");
        if (rk__config_load(a->config_path, &cfg, err, sizeof(err)) != 0) {
            rk__log(RK_LOG_ERR, "reload refused, keeping the running configuration: %s", err);
            rk__engine_reject_config(a->engine, a->config_path, err);
        } else if (rk__engine_reload(a->engine, cfg, err, sizeof(err)) != 0) {
            rk__log(RK_LOG_ERR, "reload refused, keeping the running configuration: %s", err);
            rk__engine_reject_config(a->engine, a->config_path, err);
            rk__config_free(cfg);
        } else {
            rk__log(RK_LOG_NOTICE, "configuration reloaded from %s", a->config_path);
        }
        rk__notify("READY=1\nSTATUS=consuming");
        return;
    }
    if (a->stopping)
        return;
    a->stopping = 1;
    rk__log(RK_LOG_NOTICE, "%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    rk__notify("STOPPING=1\nSTATUS=stopping");
    rk__engine_stop(a->engine, on_stopped, a);
}

static void on_watchdog(uv_timer_t *t)
{
    app *a = t->data;
    /* Ping only while the loop turns; systemd restarts a wedged daemon. */
    (void)a;
    rk__notify("WATCHDOG=1");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    app a;
    char err[RK_ERRLEN];
    rk_config *cfg;
    int opt, test = 0;
    int64_t wd;

    memset(&a, 0, sizeof(a));
    a.config_path = DEFAULT_CONFIG;
    rk__log_init();
    while ((opt = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': a.config_path = optarg; break;
        case 't': test = 1; break;
        case 'V':
            printf("riskd %s (detector ABI %d.%d, libuv %s, hiredis %d.%d.%d, jansson %s)\n",
                   RK_VERSION, RK_ABI_MAJOR, RK_ABI_MINOR, uv_version_string(),
                   HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, JANSSON_VERSION);
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 1;
    }
    if (rk__config_load(a.config_path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "riskd: %s\n", err);
        return 1;
    }
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
    a.engine = rk__engine_new(a.loop, cfg, err, sizeof(err));
    if (a.engine == NULL) {
        rk__log(RK_LOG_ERR, "%s: %s", a.config_path, err);
        rk__config_free(cfg);
        return 1;
    }
    if (cfg->metrics_host != NULL) {
        a.metrics = rk__metrics_start(a.loop, cfg->metrics_host, cfg->metrics_port,
                                      a.engine, err, sizeof(err));
        if (a.metrics == NULL) {
            rk__log(RK_LOG_ERR, "metrics.listen \"%s\": %s", cfg->metrics_listen, err);
            rk__engine_free(a.engine);
            uv_run(a.loop, UV_RUN_DEFAULT);
            uv_loop_close(a.loop);
            return 1;
        }
    }
    rk__engine_on_ready(a.engine, on_engine_ready, &a);
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
    rk__log(RK_LOG_NOTICE, "riskd %s starting (config %s, redis %s:%d)", RK_VERSION,
            a.config_path, cfg->redis_host, cfg->redis_port);
    uv_run(a.loop, UV_RUN_DEFAULT);
    uv_loop_close(a.loop);
    return a.exit_code;
}
