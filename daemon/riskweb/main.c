/* main.c - riskweb: the live dashboard, a read-only client of Redis.
 *
 * `riskweb -c FILE` reads riskd's configuration file (web.* for itself,
 * redis.* and alerts.* to find the data), opens two Redis connections
 * through the shared connection layer - "feed" for the one XREAD BLOCK
 * loop (sse.c), "query" for everything the API asks - and serves HTTP on
 * web.listen (http.c) until SIGTERM or SIGINT. `-t` checks the
 * configuration and exits. Nothing here writes to Redis. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskweb/riskweb.h"

#define DEFAULT_CONFIG "/etc/riskd/riskd.json"

static uv_signal_t sigterm, sigint;

static void usage(FILE *f)
{
    fprintf(f, "usage: riskweb [-c FILE] [-t] [-v]\n"
               "  -c, --config FILE  riskd's configuration file (default %s)\n"
               "  -t, --test         check the configuration and exit\n"
               "  -v, --verbose      log debug lines too\n"
               "  -V, --version      print the version and exit\n"
               "  -h, --help         this text\n", DEFAULT_CONFIG);
}

static void on_redis_state(rk__redis *r, int up, void *ud)
{
    web *w = ud;
    if (r != w->feed)
        return;
    if (up)
        rk__web_sse_redis_up(w);
    else
        rk__web_sse_redis_down(w);
}

static void on_signal(uv_signal_t *h, int signum)
{
    web *w = h->data;
    rk__log(RK_LOG_INFO, "riskweb: %s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    rk__web_http_stop(w);
    rk__redis_close(w->feed);
    rk__redis_close(w->query);
    uv_close((uv_handle_t *)&w->keepalive, NULL);
    uv_close((uv_handle_t *)&w->feed_retry, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

/* A request that passed the access rules (http.c hands it here): the
 * event stream, the API, or one of the page's files. */
static void route(wclient *c, const char *path, const char *query)
{
    if (strcmp(path, "/api/events") == 0)
        rk__web_sse_open(c);
    else if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/healthz") == 0 ||
             strcmp(path, "/metrics") == 0)
        rk__web_api_dispatch(c, path, query);
    else
        rk__web_serve_file(c, path);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    const char *path = DEFAULT_CONFIG;
    char err[RK_ERRLEN];
    rk__redis_opts o;
    web w;
    int opt, test = 0, rc;

    rk__log_init();
    while ((opt = getopt_long(argc, argv, "c:tvVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': test = 1; break;
        case 'v': rk__log_set_level(RK_LOG_DEBUG); break;
        case 'V':
            printf("riskweb %s (libuv %s, hiredis %d.%d.%d, jansson %s, http-parser %lu.%lu)\n",
                   RK_VERSION, uv_version_string(), HIREDIS_MAJOR, HIREDIS_MINOR,
                   HIREDIS_PATCH, JANSSON_VERSION, (http_parser_version() >> 16) & 255,
                   (http_parser_version() >> 8) & 255);
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 1;
    }
    memset(&w, 0, sizeof(w));
    w.route = route;
    w.client_gone = rk__web_sse_client_gone;
    if (rk__config_load(path, &w.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "riskweb: %s\n", err);
        return 1;
    }
    if (test) {
        printf("riskweb: %s: configuration ok (listen %s)\n", path, w.cfg->web_listen);
        rk__config_free(w.cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    w.loop = uv_default_loop();
    if (rk__web_sse_init(&w) != 0) {
        fprintf(stderr, "riskweb: out of memory\n");
        return 1;
    }
    if (rk__web_http_start(&w, err, sizeof(err)) != 0) {
        fprintf(stderr, "riskweb: %s\n", err);
        return 1;
    }
    rk__redis_opts_for(w.cfg, "feed", w.cfg->alerts_stream, &o);
    w.feed = rk__redis_new(w.loop, &o, on_redis_state, &w);
    rk__redis_opts_for(w.cfg, "query", w.cfg->alerts_stream, &o);
    w.query = rk__redis_new(w.loop, &o, on_redis_state, &w);
    if (w.feed == NULL || w.query == NULL) {
        fprintf(stderr, "riskweb: cannot create the Redis connections\n");
        return 1;
    }
    uv_signal_init(w.loop, &sigterm);
    uv_signal_init(w.loop, &sigint);
    sigterm.data = sigint.data = &w;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    rc = uv_run(w.loop, UV_RUN_DEFAULT);
    (void)rc;
    rk__web_sse_free(&w);
    rk__web_names_free(&w);
    uv_loop_close(w.loop);
    rk__config_free(w.cfg);
    return 0;
}
