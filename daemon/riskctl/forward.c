/* daemon/riskctl/forward.c - riskctl forward: keep Prometheus
 * Alertmanager's API v2 in step with riskd's open alerts.
 *
 * A long-running command (its own systemd unit, riskd-forward.service).
 * It keeps a table of the alerts it forwards (id -> the Alertmanager
 * alert, whether it has ended, whether it waits to be sent) and:
 *
 *   - on start and every --interval (default 30s) reads the open hash
 *     (HSCAN alerts.open_key) and marks every open alert to be sent again
 *     with endsAt = now + 4 x interval, as Prometheus does, so Alertmanager
 *     ends it by itself when the forwarder goes away; an alert of the
 *     table that is no longer in the hash is ended (its notice was missed,
 *     for example trimmed from the stream);
 *   - follows the alert stream with XREAD BLOCK from its newest entry at
 *     start, remembering its position across lost connections: a firing
 *     alert is sent at once, a resolved, retracted or closed notice ends
 *     the alert (endsAt = now), an acknowledged one adds the annotation
 *     acknowledged_by;
 *   - POSTs what waits to <url>/api/v2/alerts with libcurl, at most
 *     POST_BATCH alerts a request. A failure (no answer, 5xx, 429) keeps
 *     everything and retries with exponential backoff from 500 ms to 30 s;
 *     a 4xx drops that batch with a log line (Alertmanager refused its
 *     content, and sending it again would not change that).
 *
 * Silenced alerts (and their notices) are not forwarded: an operator
 * silenced them in riskd. Labels: alertname (the rule), detector,
 * severity, every subject field, riskd_id; annotations: summary, evidence
 * (the entry references joined by ", "), acknowledged_by.
 *
 * Logging is one line per change of state (Alertmanager or Redis lost,
 * back), never one per attempt. Metrics (Prometheus text on --metrics,
 * default 127.0.0.1:9479, "" off) are served by a small blocking HTTP
 * thread; the counters are atomics. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

#define DEF_URL          "http://127.0.0.1:9093"
#define DEF_INTERVAL     (30 * RK_SECOND)
#define DEF_METRICS      "127.0.0.1:9479"
#define POST_BATCH       1000
#define BACKOFF_MIN_MS   500
#define BACKOFF_MAX_MS   (30 * 1000)
#define BLOCK_MAX_MS     1000               /* the longest XREAD BLOCK: SIGTERM is seen */
#define READ_BATCH       500
#define SCAN_PAGE        1000
#define HTTP_TIMEOUT_S   10
#define ERRBODY_MAX      300

/* ===================================================================
 * State and metrics
 * =================================================================== */

static volatile sig_atomic_t stopping;

static atomic_ullong m_sent, m_errors, m_dropped;
static atomic_int m_am_up, m_redis_up, m_pending, m_open;

typedef struct fwd {
    const rk__config *cfg;
    const opts *o;
    conn k;                         /* k.c NULL while Redis is down */
    char last[64];                  /* the stream position */
    char url[1024];                 /* .../api/v2/alerts */
    int64_t interval;
    json_t *table;                  /* id -> {"am", "ended", "dirty"} */
    int64_t next_resync, next_post;
    int backoff_ms, redis_backoff_ms;
    int64_t next_redis;
    int am_state, redis_state;      /* -1 unknown, 0 down, 1 up */
    CURL *curl;
} fwd;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* ===================================================================
 * The metrics thread
 * =================================================================== */

static void render_metrics(rk_buf *out)
{
    rk__prom m = {0};
    rk__prom_family(&m, "riskd_forward_sent_total",
                    "# HELP riskd_forward_sent_total Alerts Alertmanager accepted "
                    "(firing and ended, each time sent).\n"
                    "# TYPE riskd_forward_sent_total counter\n");
    rk__prom_sample(&m, "riskd_forward_sent_total", " %llu", (unsigned long long)m_sent);
    rk__prom_family(&m, "riskd_forward_errors_total",
                    "# HELP riskd_forward_errors_total Requests to Alertmanager that failed.\n"
                    "# TYPE riskd_forward_errors_total counter\n");
    rk__prom_sample(&m, "riskd_forward_errors_total", " %llu", (unsigned long long)m_errors);
    rk__prom_family(&m, "riskd_forward_dropped_total",
                    "# HELP riskd_forward_dropped_total Alerts Alertmanager refused (4xx), "
                    "not sent again.\n"
                    "# TYPE riskd_forward_dropped_total counter\n");
    rk__prom_sample(&m, "riskd_forward_dropped_total", " %llu", (unsigned long long)m_dropped);
    rk__prom_family(&m, "riskd_forward_up",
                    "# HELP riskd_forward_up 1 when the last request to Alertmanager "
                    "succeeded.\n# TYPE riskd_forward_up gauge\n");
    rk__prom_sample(&m, "riskd_forward_up", " %d", atomic_load(&m_am_up));
    rk__prom_family(&m, "riskd_forward_redis_up",
                    "# HELP riskd_forward_redis_up 1 while the forwarder is connected to "
                    "Redis.\n# TYPE riskd_forward_redis_up gauge\n");
    rk__prom_sample(&m, "riskd_forward_redis_up", " %d", atomic_load(&m_redis_up));
    rk__prom_family(&m, "riskd_forward_pending",
                    "# HELP riskd_forward_pending Alerts (firing or ended) waiting to be "
                    "sent.\n# TYPE riskd_forward_pending gauge\n");
    rk__prom_sample(&m, "riskd_forward_pending", " %d", atomic_load(&m_pending));
    rk__prom_family(&m, "riskd_forward_open",
                    "# HELP riskd_forward_open Open alerts the forwarder keeps in "
                    "Alertmanager.\n# TYPE riskd_forward_open gauge\n");
    rk__prom_sample(&m, "riskd_forward_open", " %d", atomic_load(&m_open));
    rk__prom_finish(&m, out);
}

/* Answer one client: GET /metrics -> the text, anything else -> 404. */
static void serve_client(int fd)
{
    char req[4096], head[256];
    size_t len = 0;
    struct timeval tv = {2, 0};
    rk_buf body = {0};
    const char *status = "404 Not Found";
    int n;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (len < sizeof(req) - 1) {
        ssize_t got = read(fd, req + len, sizeof(req) - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
            break;
    }
    req[len] = '\0';
    if (strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0) {
        status = "200 OK";
        render_metrics(&body);
    } else {
        rk_buf_put_bytes(&body, "not found\n", 10);
    }
    n = snprintf(head, sizeof(head), "HTTP/1.0 %s\r\nContent-Type: text/plain; "
                 "version=0.0.4\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 status, body.len);
    if (write(fd, head, (size_t)n) == n && body.len > 0) {
        size_t off = 0;
        while (off < body.len) {
            ssize_t w = write(fd, body.data + off, body.len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    rk_buf_free(&body);
    close(fd);
}

static void *metrics_thread(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            return NULL;
        }
        serve_client(fd);
    }
}

/* Listen on addr ("host:port") and start the metrics thread. 0 or -1
 * after printing. */
static int metrics_start(const char *addr)
{
    char host[256], port[16];
    struct addrinfo hints, *res = NULL, *ai;
    pthread_t th;
    int p, fd = -1, one = 1, rc;

    if (rk__parse_addr(addr, host, sizeof(host), &p) != 0) {
        rk__ctl_errx("--metrics: expected HOST:PORT, got \"%s\"", addr);
        return -1;
    }
    snprintf(port, sizeof(port), "%d", p);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        rk__ctl_errx("--metrics %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        rk__ctl_errx("--metrics %s: cannot listen: %s", addr, strerror(errno));
        return -1;
    }
    if (pthread_create(&th, NULL, metrics_thread, (void *)(intptr_t)fd) != 0) {
        rk__ctl_errx("--metrics: cannot start the thread");
        close(fd);
        return -1;
    }
    pthread_detach(th);
    return 0;
}

/* ===================================================================
 * The table
 * =================================================================== */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The Alertmanager alert for riskd alert (or notice) a: labels,
 * annotations, startsAt (emitted_at, at most now). NULL when a lacks an
 * id, detector or rule, or memory runs out. */
static json_t *am_alert(const json_t *a, int64_t now)
{
    static const char *const subject_fields[] = {
        "unit_id", "officer_id", "enterprise_id", "task_id", "case_id", "region",
        "item_code", "domain", NULL
    };
    const char *id = jstr(a, "id"), *det = jstr(a, "detector"), *rule = jstr(a, "rule");
    const char *sev = jstr(a, "severity"), *summary = jstr(a, "summary"), *s;
    json_t *am, *labels, *ann, *subj = json_object_get(a, "subject"), *ev, *v;
    char when[48];
    int64_t t;
    size_t i;

    if (id == NULL || det == NULL || rule == NULL || *rule == '\0')
        return NULL;
    am = json_object();
    labels = json_object();
    ann = json_object();
    if (am == NULL || labels == NULL || ann == NULL)
        goto fail;
    json_object_set_new(labels, "alertname", json_string(rule));
    json_object_set_new(labels, "detector", json_string(det));
    if (sev != NULL)
        json_object_set_new(labels, "severity", json_string(sev));
    for (i = 0; subject_fields[i] != NULL; i++)
        if ((s = jstr(subj, subject_fields[i])) != NULL && *s)
            json_object_set_new(labels, subject_fields[i], json_string(s));
    json_object_set_new(labels, "riskd_id", json_string(id));
    if (summary != NULL)
        json_object_set_new(ann, "summary", json_string(summary));
    ev = json_object_get(a, "evidence");
    if (json_array_size(ev) > 0) {
        rk_buf b = {0};
        json_array_foreach(ev, i, v)
            if (json_is_string(v)) {
                if (b.len > 0)
                    rk_buf_put_bytes(&b, ", ", 2);
                rk_buf_put_bytes(&b, json_string_value(v), json_string_length(v));
            }
        if (b.len > 0)
            json_object_set_new(ann, "evidence", json_stringn((const char *)b.data, b.len));
        rk_buf_free(&b);
    }
    if ((s = jstr(json_object_get(a, "acknowledged"), "by")) != NULL)
        json_object_set_new(ann, "acknowledged_by", json_string(s));
    s = jstr(a, "emitted_at");
    if (s == NULL || rk__parse_rfc3339(s, &t) != 0 || t > now)
        t = now;
    rk__format_rfc3339(t, 0, when, sizeof(when));
    json_object_set_new(am, "labels", labels);
    json_object_set_new(am, "annotations", ann);
    json_object_set_new(am, "startsAt", json_string(when));
    return am;
fail:
    json_decref(am);
    json_decref(labels);
    json_decref(ann);
    return NULL;
}

/* An open alert a (firing or acknowledged) into the table, to be sent. */
static void upsert_open(fwd *f, const json_t *a, int64_t now, int mark)
{
    const char *id = jstr(a, "id");
    json_t *am, *e;
    if (id == NULL || json_is_true(json_object_get(a, "silenced")))
        return;
    e = json_object_get(f->table, id);
    if (e != NULL && json_is_true(json_object_get(e, "ended")))
        return;                     /* ended while we were reading: stays ended */
    if ((am = am_alert(a, now)) == NULL)
        return;
    if (e != NULL) {                /* keep the first startsAt */
        json_t *old = json_object_get(json_object_get(e, "am"), "startsAt");
        if (old != NULL)
            json_object_set(am, "startsAt", old);
    } else if ((e = json_object()) == NULL || json_object_set_new(f->table, id, e) != 0) {
        json_decref(am);
        return;
    }
    json_object_set_new(e, "am", am);
    json_object_set_new(e, "ended", json_false());
    json_object_set_new(e, "dirty", json_true());
    json_object_set_new(e, "mark", json_integer(mark));
}

/* End the alert of notice n (resolved, retracted, closed) at now. */
static void end_alert(fwd *f, const json_t *n, int64_t now)
{
    const char *id = jstr(n, "id");
    json_t *e, *am;
    char when[48];

    if (id == NULL || json_is_true(json_object_get(n, "silenced")))
        return;
    e = json_object_get(f->table, id);
    if (e == NULL) {                /* sent before we started, or never: end it anyway */
        if ((am = am_alert(n, now)) == NULL || (e = json_object()) == NULL ||
            json_object_set_new(f->table, id, e) != 0) {
            json_decref(am);
            return;
        }
        json_object_set_new(e, "am", am);
    } else if (json_is_true(json_object_get(e, "ended"))) {
        return;
    }
    rk__format_rfc3339(now, 0, when, sizeof(when));
    json_object_set_new(json_object_get(e, "am"), "endsAt", json_string(when));
    json_object_set_new(e, "ended", json_true());
    json_object_set_new(e, "dirty", json_true());
}

static void count_table(fwd *f)
{
    const char *id;
    json_t *e;
    int pending = 0, open = 0;
    json_object_foreach(f->table, id, e) {
        pending += json_is_true(json_object_get(e, "dirty"));
        open += !json_is_true(json_object_get(e, "ended"));
    }
    atomic_store(&m_pending, pending);
    atomic_store(&m_open, open);
}

/* ===================================================================
 * Redis
 * =================================================================== */

static void redis_lost(fwd *f, const char *what)
{
    if (f->redis_state != 0)
        rk__log(RK_LOG_WARNING, "forward: lost Redis at %s:%d (%s: %s); reconnecting with "
                "backoff, position %s kept", f->k.host, f->k.port, what,
                f->k.c && f->k.c->errstr[0] ? f->k.c->errstr : "error reply", f->last);
    f->redis_state = 0;
    atomic_store(&m_redis_up, 0);
    rk__ctl_conn_close(&f->k);
    f->next_redis = rk__wall_ms() + f->redis_backoff_ms;
    f->redis_backoff_ms = f->redis_backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                   : f->redis_backoff_ms * 2;
}

/* Connect when down and the backoff allows. 0 when connected. */
static int redis_ensure(fwd *f)
{
    char err[RK_ERRLEN];
    struct timeval tv = {BLOCK_MAX_MS / 1000 + REPLY_TIMEOUT_S, 0};
    if (f->k.c != NULL)
        return 0;
    if (rk__wall_ms() < f->next_redis)
        return -1;
    if (rk__ctl_conn_open(&f->k, err, sizeof(err)) != 0) {
        if (f->redis_state != 0)
            rk__log(RK_LOG_WARNING, "forward: %s; retrying with backoff", err);
        f->redis_state = 0;
        atomic_store(&m_redis_up, 0);
        f->next_redis = rk__wall_ms() + f->redis_backoff_ms;
        f->redis_backoff_ms = f->redis_backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                       : f->redis_backoff_ms * 2;
        return -1;
    }
    redisSetTimeout(f->k.c, tv);
    if (f->redis_state == 0)
        rk__log(RK_LOG_NOTICE, "forward: Redis at %s:%d is back; following %s from %s",
                f->k.host, f->k.port, f->cfg->alerts_stream, f->last);
    f->redis_state = 1;
    f->redis_backoff_ms = BACKOFF_MIN_MS;
    atomic_store(&m_redis_up, 1);
    f->next_resync = 0;             /* read the open hash again now */
    return 0;
}

/* At start: the stream's newest entry becomes the position. 0 or -1. */
static int take_position(fwd *f)
{
    redisReply *r = redisCommand(f->k.c, "XREVRANGE %s + - COUNT 1", f->cfg->alerts_stream);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r != NULL)
            rk__log(RK_LOG_ERR, "forward: XREVRANGE %s: %s", f->cfg->alerts_stream, r->str);
        freeReplyObject(r);
        return -1;
    }
    snprintf(f->last, sizeof(f->last), "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(f->last, sizeof(f->last), "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    return 0;
}

/* Read the whole open hash: every open alert to be sent again; an alert of
 * the table that is not open any more is ended. 0, or -1 (Redis lost or
 * an error reply; nothing is ended then). */
static int resync(fwd *f, int64_t now)
{
    static int mark;
    char cursor[64] = "0";
    const char *id;
    json_t *e;
    void *tmp;

    mark++;
    do {
        redisReply *r = redisCommand(f->k.c, "HSCAN %s %s COUNT %d", f->cfg->alerts_open_key,
                                     cursor, SCAN_PAGE);
        size_t i;
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r != NULL && r->type == REDIS_REPLY_ERROR)
                rk__log(RK_LOG_ERR, "forward: HSCAN %s: %s", f->cfg->alerts_open_key, r->str);
            freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (i = 0; i + 1 < r->element[1]->elements; i += 2) {
            const redisReply *v = r->element[1]->element[i + 1];
            json_t *a = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL)
                                                      : NULL;
            if (json_is_object(a))
                upsert_open(f, a, now, mark);
            json_decref(a);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    json_object_foreach_safe(f->table, tmp, id, e)
        if (!json_is_true(json_object_get(e, "ended")) &&
            json_integer_value(json_object_get(e, "mark")) != mark) {
            json_t *n = json_deep_copy(json_object_get(e, "am"));
            char when[48];
            rk__format_rfc3339(now, 0, when, sizeof(when));
            json_object_set_new(n, "endsAt", json_string(when));
            json_object_set_new(e, "am", n);
            json_object_set_new(e, "ended", json_true());
            json_object_set_new(e, "dirty", json_true());
        }
    return 0;
}

/* One stream entry's JSON. */
static void on_entry(fwd *f, const char *data, size_t len, int64_t now)
{
    json_t *a = json_loadb(data, len, 0, NULL), *e;
    const char *st = jstr(a, "status"), *by;
    if (!json_is_object(a)) {
        json_decref(a);
        return;
    }
    if (st == NULL || strcmp(st, "firing") == 0) {
        upsert_open(f, a, now, 0);  /* the next resync finds it in the hash */
    } else if (strcmp(st, "resolved") == 0 || strcmp(st, "retracted") == 0 ||
               strcmp(st, "closed") == 0) {
        end_alert(f, a, now);
    } else if (strcmp(st, "acknowledged") == 0 && (by = jstr(a, "by")) != NULL &&
               (e = json_object_get(f->table, jstr(a, "id") ? jstr(a, "id") : "")) != NULL &&
               !json_is_true(json_object_get(e, "ended"))) {
        json_object_set_new(json_object_get(json_object_get(e, "am"), "annotations"),
                            "acknowledged_by", json_string(by));
        json_object_set_new(e, "dirty", json_true());
    }
    json_decref(a);
}

/* XREAD BLOCK for at most block_ms from the position. 0, or -1 when Redis
 * was lost. */
static int follow(fwd *f, int block_ms)
{
    redisReply *r = redisCommand(f->k.c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", READ_BATCH,
                                 block_ms, f->cfg->alerts_stream, f->last);
    int64_t now = rk__wall_ms();
    size_t i, x;
    const redisReply *entries;

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r != NULL)
            rk__log(RK_LOG_ERR, "forward: XREAD %s: %s", f->cfg->alerts_stream, r->str);
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 2 &&
        (entries = r->element[0]->element[1])->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < entries->elements; i++) {
            const redisReply *e = entries->element[i], *fl;
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(f->last, sizeof(f->last), "%s", e->element[0]->str);
            fl = e->element[1];
            for (x = 0; fl->type == REDIS_REPLY_ARRAY && x + 1 < fl->elements; x += 2)
                if (fl->element[x]->type == REDIS_REPLY_STRING &&
                    strcmp(fl->element[x]->str, "data") == 0 &&
                    fl->element[x + 1]->type == REDIS_REPLY_STRING)
                    on_entry(f, fl->element[x + 1]->str, fl->element[x + 1]->len, now);
        }
    }
    freeReplyObject(r);
    return 0;
}

/* ===================================================================
 * Alertmanager
 * =================================================================== */

typedef struct body {
    char text[ERRBODY_MAX + 1];
    size_t len;
} body;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    body *b = ud;
    size_t take = size * n;
    if (take > ERRBODY_MAX - b->len)
        take = ERRBODY_MAX - b->len;
    memcpy(b->text + b->len, p, take);
    b->len += take;
    b->text[b->len] = '\0';
    return size * n;
}

/* POST payload. 1 accepted, 0 failed (retry), -1 refused (4xx: drop). */
static int post(fwd *f, const char *payload, char *err, size_t errlen)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    body b = {{0}, 0};
    long code = 0;
    CURLcode cc;

    curl_easy_setopt(f->curl, CURLOPT_URL, f->url);
    curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(f->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    curl_easy_setopt(f->curl, CURLOPT_TIMEOUT, (long)HTTP_TIMEOUT_S);
    curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &b);
    cc = curl_easy_perform(f->curl);
    curl_slist_free_all(h);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
        return 0;
    }
    curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
        return 1;
    for (size_t i = 0; i < b.len; i++)
        if (b.text[i] == '\n' || b.text[i] == '\r')
            b.text[i] = ' ';
    snprintf(err, errlen, "HTTP %ld: %s", code, b.text);
    return code >= 400 && code < 500 && code != 408 && code != 429 ? -1 : 0;
}

/* Send what waits, POST_BATCH at a time, until it is all sent or a request
 * fails (then back off). */
static void flush(fwd *f, int64_t now)
{
    for (;;) {
        json_t *batch = json_array(), *sent = json_array(), *e;
        const char *id;
        char err[512], ends[48];
        char *payload;
        int rc;
        size_t i;

        rk__format_rfc3339(now + 4 * f->interval, 0, ends, sizeof(ends));
        json_object_foreach(f->table, id, e) {
            json_t *am;
            if (!json_is_true(json_object_get(e, "dirty")))
                continue;
            am = json_object_get(e, "am");
            if (!json_is_true(json_object_get(e, "ended")))
                json_object_set_new(am, "endsAt", json_string(ends));
            json_array_append(batch, am);
            json_array_append_new(sent, json_string(id));
            if (json_array_size(batch) == POST_BATCH)
                break;
        }
        if (json_array_size(batch) == 0) {
            json_decref(batch);
            json_decref(sent);
            return;
        }
        payload = json_dumps(batch, JSON_COMPACT);
        rc = payload ? post(f, payload, err, sizeof(err)) : 0;
        if (payload == NULL)
            snprintf(err, sizeof(err), "out of memory");
        free(payload);
        if (rc == 0) {
            atomic_fetch_add(&m_errors, 1);
            atomic_store(&m_am_up, 0);
            count_table(f);
            if (f->am_state != 0)
                rk__log(RK_LOG_WARNING, "forward: Alertmanager at %s: %s; keeping %d "
                        "alerts and retrying with backoff (up to %d s)", f->url, err,
                        atomic_load(&m_pending), BACKOFF_MAX_MS / 1000);
            f->am_state = 0;
            f->next_post = now + f->backoff_ms;
            f->backoff_ms = f->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                               : f->backoff_ms * 2;
            json_decref(batch);
            json_decref(sent);
            return;
        }
        if (rc < 0) {
            atomic_fetch_add(&m_errors, 1);
            atomic_fetch_add(&m_dropped, json_array_size(batch));
            rk__log(RK_LOG_ERR, "forward: Alertmanager at %s refused %zu alerts (%s); "
                    "dropped", f->url, json_array_size(batch), err);
        } else {
            atomic_fetch_add(&m_sent, json_array_size(batch));
            atomic_store(&m_am_up, 1);
            if (f->am_state == 0)
                rk__log(RK_LOG_NOTICE, "forward: Alertmanager at %s is reachable again",
                        f->url);
            else if (f->am_state < 0)
                rk__log(RK_LOG_INFO, "forward: Alertmanager at %s accepted the first "
                        "%zu alerts", f->url, json_array_size(batch));
            f->am_state = 1;
        }
        f->backoff_ms = BACKOFF_MIN_MS;
        f->next_post = 0;
        for (i = 0; i < json_array_size(sent); i++) {
            const char *sid = json_string_value(json_array_get(sent, i));
            e = json_object_get(f->table, sid);
            if (e == NULL)
                continue;
            if (json_is_true(json_object_get(e, "ended")))
                json_object_del(f->table, sid);
            else
                json_object_set_new(e, "dirty", json_false());
        }
        json_decref(batch);
        json_decref(sent);
    }
}

/* ===================================================================
 * The loop
 * =================================================================== */

int rk__ctl_forward(const rk__config *cfg, const opts *o)
{
    const char *url = o->url ? o->url : DEF_URL;
    const char *maddr = o->metrics ? o->metrics : DEF_METRICS;
    struct sigaction sa;
    fwd f;
    size_t ul = strlen(url);

    memset(&f, 0, sizeof(f));
    f.cfg = cfg;
    f.o = o;
    f.interval = o->interval > 0 ? o->interval : DEF_INTERVAL;
    f.am_state = f.redis_state = -1;
    f.backoff_ms = f.redis_backoff_ms = BACKOFF_MIN_MS;
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        ul > 900) {
        rk__ctl_errx("--url: expected http://HOST:PORT or https://... (Alertmanager's base "
                     "URL), got \"%s\"", url);
        return EX_FAIL;
    }
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    snprintf(f.url, sizeof(f.url), "%.*s/api/v2/alerts", (int)ul, url);
    rk__log_init();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (maddr[0] != '\0' && metrics_start(maddr) != 0)
        return EX_FAIL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || (f.curl = curl_easy_init()) == NULL) {
        rk__ctl_errx("cannot initialise libcurl");
        return EX_FAIL;
    }
    if ((f.table = json_object()) == NULL) {
        rk__ctl_errx("out of memory");
        curl_easy_cleanup(f.curl);
        return EX_FAIL;
    }
    snprintf(f.k.host, sizeof(f.k.host), "%s", o->host ? o->host : cfg->redis_host);
    f.k.port = o->port ? o->port : cfg->redis_port;
    f.k.password = o->password ? o->password : cfg->redis_password;
    f.k.user = o->user ? o->user : cfg->redis_username;
    f.k.db = o->db >= 0 ? o->db : cfg->redis_db;
    rk__log(RK_LOG_INFO, "forward: %s and %s on Redis %s:%d to %s, open alerts sent again "
            "every %lld ms, metrics on %s", cfg->alerts_stream, cfg->alerts_open_key,
            f.k.host, f.k.port, f.url, (long long)f.interval, maddr[0] ? maddr : "(off)");
    /* The position first, then the open hash: nothing falls between. */
    while (!stopping && f.last[0] == '\0') {
        if (redis_ensure(&f) == 0 && take_position(&f) != 0)
            redis_lost(&f, "XREVRANGE");
        if (f.last[0] == '\0')
            usleep(100 * 1000);
    }
    while (!stopping) {
        int64_t now = rk__wall_ms(), wake;
        if (redis_ensure(&f) == 0 && now >= f.next_resync) {
            if (resync(&f, now) != 0)
                redis_lost(&f, "HSCAN");
            else
                f.next_resync = now + f.interval;
        }
        if (now >= f.next_post)
            flush(&f, now);
        count_table(&f);
        now = rk__wall_ms();
        wake = f.next_resync;
        if (atomic_load(&m_pending) > 0 && f.next_post < wake)
            wake = f.next_post;
        if (f.k.c == NULL) {
            usleep(100 * 1000);
            continue;
        }
        if (wake - now > BLOCK_MAX_MS)
            wake = now + BLOCK_MAX_MS;
        if (wake - now < 1)
            wake = now + 1;
        if (follow(&f, (int)(wake - now)) != 0)
            redis_lost(&f, "XREAD");
    }
    rk__log(RK_LOG_INFO, "forward: stopping (%d alerts still waiting to be sent)",
            atomic_load(&m_pending));
    rk__ctl_conn_close(&f.k);
    json_decref(f.table);
    curl_easy_cleanup(f.curl);
    curl_global_cleanup();
    return EX_OK;
}
