/* daemon/riskctl/status.c - riskctl status: is riskd healthy?
 *
 * The streams, the partition leases, the silences and the reference lists'
 * versions from Redis, then a few numbers from riskd's /metrics (a plain
 * HTTP GET of the metrics address), the list versions riskd has in force
 * among them. Exit code 2 when riskd does not report itself healthy. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

#define METRICS_MAX      (4 * 1024 * 1024)

/* Print the XINFO GROUPS of one input stream. Returns 0, or -1 when Redis
 * was lost. */
static int status_stream(conn *k, const rk__config *cfg, const char *stream)
{
    redisReply *r = redisCommand(k->c, "XLEN %s", stream);
    long long len;
    size_t i, f;
    int ours = 0;

    if (rk__ctl_reply_ok(k, r, "XLEN") != 0) {
        int lost = r == NULL;
        freeReplyObject(r);
        return lost ? -1 : 0;
    }
    len = r->integer;
    freeReplyObject(r);
    printf("input ");
    rk__ctl_put_clean(stdout, stream);
    r = redisCommand(k->c, "XINFO GROUPS %s", stream);
    if (r == NULL) {
        printf(": ?\n");
        return rk__ctl_reply_ok(k, r, "XINFO GROUPS");
    }
    if (r->type == REDIS_REPLY_ERROR) {
        printf(": missing (no such stream)\n");
        freeReplyObject(r);
        return 0;
    }
    printf(": length %lld\n", len);
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *g = r->element[i];
        const char *name = "?", *last = "?";
        long long consumers = -1, pending = -1, lag = -1;
        int has_lag = 0;
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        for (f = 0; f + 1 < g->elements; f += 2) {
            const redisReply *kk = g->element[f], *v = g->element[f + 1];
            if (kk->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(kk->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                name = v->str;
            else if (strcmp(kk->str, "consumers") == 0 && v->type == REDIS_REPLY_INTEGER)
                consumers = v->integer;
            else if (strcmp(kk->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = v->integer;
            else if (strcmp(kk->str, "last-delivered-id") == 0 && v->type == REDIS_REPLY_STRING)
                last = v->str;
            else if (strcmp(kk->str, "lag") == 0) {
                has_lag = 1;
                lag = v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
            }
        }
        printf("  group ");
        rk__ctl_put_clean(stdout, name);
        printf("%s: consumers %lld, pending %lld, lag ", strcmp(name, cfg->group) == 0 ?
               " (riskd's)" : "", consumers, pending);
        if (!has_lag)
            printf("n/a (Redis < 7)");
        else if (lag < 0)
            printf("unknown");
        else
            printf("%lld", lag);
        printf(", last delivered %s\n", last);
        ours |= strcmp(name, cfg->group) == 0;
    }
    if (!ours) {
        printf("  group ");
        rk__ctl_put_clean(stdout, cfg->group);
        printf(": missing (riskd has not consumed this stream yet)\n");
    }
    freeReplyObject(r);
    return 0;
}

/* Print "label key: N entries" from XLEN. 0, or -1 when Redis was lost. */
static int status_xlen(conn *k, const char *label, const char *key)
{
    redisReply *r = redisCommand(k->c, "XLEN %s", key);
    if (r == NULL)
        return rk__ctl_reply_ok(k, r, "XLEN");
    printf("%s ", label);
    rk__ctl_put_clean(stdout, key);
    if (r->type == REDIS_REPLY_INTEGER)
        printf(": %lld entries\n", r->integer);
    else
        printf(": %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    return 0;
}

/* GET /metrics from host:port with a plain socket (5 s timeouts). Returns
 * the malloc'ed body, or NULL with err. */
static char *http_get_metrics(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct timeval tv = {5, 0};
    char portstr[16], req[512], *buf = NULL, *body = NULL;
    size_t len = 0, cap = 0;
    int fd = -1, gai;

    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((gai = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        rk_kit_errf(err, errlen, "%s", gai_strerror(gai));
        return NULL;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        rk_kit_errf(err, errlen, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return NULL;
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: %s\r\n"
             "Connection: close\r\n\r\n", host);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        rk_kit_errf(err, errlen, "send: %s", strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t n;
        if (cap - len < 4096) {
            char *nb;
            if (cap >= METRICS_MAX) {
                rk_kit_errf(err, errlen, "response larger than %d bytes", METRICS_MAX);
                goto done;
            }
            nb = realloc(buf, cap ? cap * 2 : 16384);
            if (nb == NULL) {
                rk_kit_errf(err, errlen, "out of memory");
                goto done;
            }
            buf = nb;
            cap = cap ? cap * 2 : 16384;
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rk_kit_errf(err, errlen, "recv: %s", strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (buf == NULL) {
        rk_kit_errf(err, errlen, "empty response");
        goto done;
    }
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strlen(buf) < 12 || strncmp(buf + 9, "200", 3) != 0) {
        char *eol = strpbrk(buf, "\r\n");
        if (eol)
            *eol = '\0';
        rk_kit_errf(err, errlen, "answered \"%.80s\"", buf);
        goto done;
    }
    {
        char *p = strstr(buf, "\r\n\r\n");
        if (p == NULL) {
            rk_kit_errf(err, errlen, "malformed response");
            goto done;
        }
        body = strdup(p + 4);
        if (body == NULL)
            rk_kit_errf(err, errlen, "out of memory");
    }
done:
    free(buf);
    close(fd);
    return body;
}

/* Find the unlabelled sample `name` in Prometheus text. Returns 1 and
 * *out, or 0 when absent. */
static int metric_value(const char *text, const char *name, double *out)
{
    size_t n = strlen(name);
    const char *p = text;
    while (p && *p) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            char *end;
            double v = strtod(p + n + 1, &end);
            if (end != p + n + 1) {
                *out = v;
                return 1;
            }
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

/* riskctl status. Exit 0 when Redis answers, whatever the report says of
 * riskd itself (its health is in the report, and on /healthz), 2 when
 * Redis cannot be reached. */
/* The leases (riskd(8), DEPLOYMENT): who holds each partition, under which
 * epoch and for how much longer, and the live members. Returns -1 when
 * Redis went away. */
static int status_leases(conn *k, const rk__config *cfg)
{
    int p, shown = cfg->partitions < 16 ? cfg->partitions : 16;
    int cross = rk__config_has_cross(cfg) ? 1 : 0;
    redisReply *r;
    size_t i;

    for (p = 0; p < shown + cross; p++) {
        char lease[512], epoch[512];
        redisReply *v, *e, *t;
        if (p == shown) {
            /* the cross pipeline (riskd(8), DEPLOYMENT, Rules across partitions) */
            snprintf(lease, sizeof(lease), "%s:{cross}:lease", cfg->state_key);
            snprintf(epoch, sizeof(epoch), "%s:{cross}:epoch", cfg->state_key);
        } else if (cfg->partitions > 1) {
            snprintf(lease, sizeof(lease), "%s:{%d}:lease", cfg->state_key, p);
            snprintf(epoch, sizeof(epoch), "%s:{%d}:epoch", cfg->state_key, p);
        } else {
            snprintf(lease, sizeof(lease), "%s:lease", cfg->state_key);
            snprintf(epoch, sizeof(epoch), "%s:epoch", cfg->state_key);
        }
        v = redisCommand(k->c, "GET %s", lease);
        e = v ? redisCommand(k->c, "GET %s", epoch) : NULL;
        t = e ? redisCommand(k->c, "PTTL %s", lease) : NULL;
        if (rk__ctl_reply_ok(k, v, "GET") != 0 || rk__ctl_reply_ok(k, e, "GET") != 0 ||
            rk__ctl_reply_ok(k, t, "PTTL") != 0) {
            freeReplyObject(v);
            freeReplyObject(e);
            freeReplyObject(t);
            return -1;
        }
        printf("lease ");
        rk__ctl_put_clean(stdout, lease);
        if (v->type != REDIS_REPLY_STRING) {
            printf(": free");
        } else {
            const char *sp = strrchr(v->str, ' ');
            size_t nl = sp ? (size_t)(sp - v->str) : v->len;
            printf(": %s by %.*s", sp && strcmp(sp, " released") == 0 ? "released" : "held",
                   (int)nl, v->str);
        }
        if (e->type == REDIS_REPLY_STRING)
            printf(" (epoch %s", e->str);
        else
            printf(" (no epoch yet");
        if (v->type == REDIS_REPLY_STRING && t->type == REDIS_REPLY_INTEGER && t->integer >= 0)
            printf(", %lld ms left", t->integer);
        printf(")\n");
        freeReplyObject(v);
        freeReplyObject(e);
        freeReplyObject(t);
    }
    if (shown < cfg->partitions)
        printf("(%d more partitions)\n", cfg->partitions - shown);
    r = redisCommand(k->c, "ZRANGE %s:members 0 -1", cfg->state_key);
    if (rk__ctl_reply_ok(k, r, "ZRANGE") != 0)
        return -1;
    printf("members:");
    for (i = 0; i < r->elements; i++) {
        putchar(' ');
        rk__ctl_put_clean(stdout, r->element[i]->str);
    }
    printf(r->elements ? "\n" : " none\n");
    freeReplyObject(r);
    return 0;
}

int rk__ctl_status(const rk__config *cfg, const opts *o)
{
    static const char *const names[] = {
        "riskd_up", "riskd_watermark_seconds", "riskd_alerts_written_total",
        "riskd_checkpoint_age_seconds", "riskd_alerts_silenced_total", "riskd_silences"
    };
    struct timespec t0, t1;
    redisReply *r;
    conn k;
    int rc = EX_OK;
    unsigned si;
    int gone;

    if (rk__ctl_conn_init(&k, cfg, o) != 0)
        return EX_REDIS;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = redisCommand(k.c, "PING");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rk__ctl_reply_ok(&k, r, "PING") != 0)
        goto fail_reply;
    printf("redis %s:%d: %s in %.1f ms\n", k.host, k.port, r->str,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    freeReplyObject(r);
    for (si = 0; si < RK_STREAM_COUNT; si++)
        if (status_stream(&k, cfg, cfg->stream_key[si]) != 0)
            goto redis_gone;
    if (status_xlen(&k, "alert stream", cfg->alerts_stream) != 0 ||
        status_xlen(&k, "dead-letter stream", RK_DEAD_STREAM) != 0)
        goto redis_gone;
    r = redisCommand(k.c, "EXISTS %s", cfg->state_key);
    if (rk__ctl_reply_ok(&k, r, "EXISTS") != 0)
        goto fail_reply;
    printf("checkpoint ");
    rk__ctl_put_clean(stdout, cfg->state_key);
    if (r->integer == 0) {
        printf(": missing\n");
    } else {
        freeReplyObject(r);
        r = redisCommand(k.c, "STRLEN %s", cfg->state_key);
        if (r == NULL) {
            rk__ctl_reply_ok(&k, r, "STRLEN");
            goto fail_reply;
        }
        if (r->type == REDIS_REPLY_INTEGER)
            printf(": %lld bytes\n", r->integer);
        else
            printf(": %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    }
    freeReplyObject(r);
    if (status_leases(&k, cfg) != 0)
        goto redis_gone;
    r = redisCommand(k.c, "HVALS %s", SILENCES_KEY);
    if (rk__ctl_reply_ok(&k, r, "HVALS") != 0)
        goto fail_reply;
    {
        int64_t now = rk__wall_ms();
        size_t i, active = 0;
        for (i = 0; i < r->elements; i++) {
            json_t *s = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);
            active += json_integer_value(json_object_get(s, "until")) > now;
            json_decref(s);
        }
        printf("silences: %zu active, %zu in all\n", active, r->elements);
    }
    freeReplyObject(r);
    r = redisCommand(k.c, "HGETALL %s", RK_LISTS_VERSION_KEY);
    if (rk__ctl_reply_ok(&k, r, "HGETALL") != 0)
        goto fail_reply;
    printf("lists (version in Redis):");
    for (si = 0; si < RK_LIST__COUNT; si++) {
        const char *v = "none";
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            if (r->element[i]->type == REDIS_REPLY_STRING &&
                r->element[i + 1]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[i]->str, rk__lists_kind_name((rk__list_kind)si)) == 0)
                v = r->element[i + 1]->str;
        printf(" %s ", rk__lists_kind_name((rk__list_kind)si));
        rk__ctl_put_clean(stdout, v);
    }
    printf("\n");
    freeReplyObject(r);
    rk__ctl_conn_close(&k);

    if (cfg->metrics_host == NULL) {
        printf("metrics: off (metrics.listen is \"\")\n");
        return rc;
    }
    {
        char err[RK_ERRLEN];
        char *body = http_get_metrics(cfg->metrics_host, cfg->metrics_port, err, sizeof(err));
        double v;
        if (body == NULL) {
            printf("metrics %s: unreachable (%s)\n", cfg->metrics_listen, err);
            return rc;
        }
        printf("metrics %s:\n", cfg->metrics_listen);
        for (si = 0; si < sizeof(names) / sizeof(names[0]); si++) {
            printf("  %-30s ", names[si]);
            if (!metric_value(body, names[si], &v)) {
                printf("-\n");
                continue;
            }
            if (si == 1) {
                char t[48];
                rk__format_rfc3339((int64_t)(v * 1000.0), cfg->tz_offset_s, t, sizeof(t));
                printf("%.3f (%s)\n", v, t);
            } else if (si == 3) {
                printf("%.3f\n", v);
            } else {
                printf("%.0f\n", v);
            }
        }
        printf("  %-30s", "lists in force");
        for (si = 0; si < RK_LIST__COUNT; si++) {
            char name[64];
            const char *kn = rk__lists_kind_name((rk__list_kind)si);
            snprintf(name, sizeof(name), "riskd_list_version{kind=\"%s\"}", kn);
            if (metric_value(body, name, &v) && v > 0)
                printf(" %s %.0f", kn, v);
            else
                printf(" %s none", kn);
        }
        printf("\n");
        free(body);
    }
    return rc;
fail_reply:
    freeReplyObject(r);
redis_gone:
    gone = rk__ctl_fail_code(&k);
    rk__ctl_conn_close(&k);
    return gone;
}
