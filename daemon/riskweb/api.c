/* api.c - riskweb's JSON endpoints, /healthz and its own /metrics.
 *
 *   /api/alerts?status=&unit_id=&detector=&limit=
 *       status=open: the open hash (alerts.open_key), each alert's latest
 *       JSON (status firing or acknowledged, with its acknowledgement);
 *       any other status (firing, acknowledged, resolved, retracted,
 *       closed, or none = all): the last SCAN_MAX entries of the alert
 *       stream, newest first, each alert with its latest status folded
 *       in from the notices after it (and the latest acknowledgement).
 *       A JSON array, newest first, at most limit (default 100, 1..1000).
 *   /api/indicators?scope=&key=&period=
 *       the hash riskd:ind:<scope>:<key>:<period> (scope all, key all,
 *       period window by default) as an object, counts and rates as
 *       numbers, a rate without denominator as null; with partitions > 1
 *       the shares :p0..:pN-1 summed and the rates recomputed from the
 *       sums. Absent: {}. Without key (scope other than all): the index,
 *       {"keys": [...], "periods": [...]}, newest first.
 *   /api/names  the names list (names.c).
 *   /healthz  200 "ok" when Redis answers PING, else 503.
 *   /metrics  riskweb's own counters, Prometheus text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <hiredis/hiredis.h>

#include "riskweb/riskweb.h"

#define SCAN_MAX "10000"
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define PARAM_MAX 256

/* ===================================================================
 * /healthz and /metrics
 * =================================================================== */

static void on_ping(wclient *c, redisReply *reply, void *arg)
{
    (void)arg;
    if (reply != NULL && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0)
        rk__web_respond_text(c, 200, "ok\n");
    else
        rk__web_respond_text(c, 503, "unavailable (Redis did not answer PING)\n");
}

static void healthz(wclient *c)
{
    const char *argv[1] = {"PING"};
    if (rk__web_query(c, on_ping, NULL, 1, argv) != 0)
        rk__web_respond_text(c, 503, "unavailable (no Redis connection)\n");
}

void rk__web_api_metrics(wclient *c)
{
    web *w = c->w;
    rk_buf b = {NULL, 0, 0, 0};
    const wclient *s;
    int nstreams = 0;

    for (s = w->streams; s != NULL; s = s->snext)
        nstreams++;
    rk__buf_printf(&b, "# HELP riskweb_up 1 while riskweb runs.\n# TYPE riskweb_up gauge\n"
                   "riskweb_up 1\n");
    rk__buf_printf(&b, "# HELP riskweb_redis_up 1 when both Redis connections are ready.\n"
                   "# TYPE riskweb_redis_up gauge\nriskweb_redis_up %d\n",
                   rk__redis_ready(w->feed) && rk__redis_ready(w->query));
    rk__buf_printf(&b, "# HELP riskweb_connections HTTP connections open now.\n"
                   "# TYPE riskweb_connections gauge\nriskweb_connections %d\n", w->nclients);
    rk__buf_printf(&b, "# HELP riskweb_sse_clients Live feeds (/api/events) open now.\n"
                   "# TYPE riskweb_sse_clients gauge\nriskweb_sse_clients %d\n", nstreams);
    rk__buf_printf(&b, "# HELP riskweb_connections_total HTTP connections accepted.\n"
                   "# TYPE riskweb_connections_total counter\nriskweb_connections_total %llu\n",
                   (unsigned long long)w->clients_total);
    rk__buf_printf(&b, "# HELP riskweb_slow_disconnects_total Live feeds closed because "
                   "their unsent bytes passed the per-client bound.\n"
                   "# TYPE riskweb_slow_disconnects_total counter\n"
                   "riskweb_slow_disconnects_total %llu\n",
                   (unsigned long long)w->slow_disconnects);
    rk__buf_printf(&b, "# HELP riskweb_events_sent_total Alerts and notices sent to live "
                   "feeds (one per client).\n# TYPE riskweb_events_sent_total counter\n"
                   "riskweb_events_sent_total %llu\n", (unsigned long long)w->events_sent);
    rk__buf_printf(&b, "# HELP riskweb_feed_entries_total Entries read from the alert "
                   "stream.\n# TYPE riskweb_feed_entries_total counter\n"
                   "riskweb_feed_entries_total %llu\n", (unsigned long long)w->feed_entries);
    rk__buf_printf(&b, "# HELP riskweb_bad_requests_total Requests answered 400.\n"
                   "# TYPE riskweb_bad_requests_total counter\n"
                   "riskweb_bad_requests_total %llu\n", (unsigned long long)w->bad_requests);
    rk__buf_printf(&b, "# HELP riskweb_unauthorized_total Requests refused 401 or 403.\n"
                   "# TYPE riskweb_unauthorized_total counter\n"
                   "riskweb_unauthorized_total %llu\n", (unsigned long long)w->unauthorized);
    if (b.oom) {
        rk_buf_free(&b);
        rk__web_respond_text(c, 500, "out of memory\n");
        return;
    }
    rk__web_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                    (const char *)b.data, b.len, 1);
}

/* ===================================================================
 * /api/alerts
 * =================================================================== */

typedef struct alerts_q {
    char status[32];
    char unit[PARAM_MAX];
    char detector[PARAM_MAX];
    int limit;
} alerts_q;

static int alert_matches(const alerts_q *q, json_t *a)
{
    const char *s;
    if (q->detector[0] && ((s = json_string_value(json_object_get(a, "detector"))) == NULL ||
                           strcmp(s, q->detector) != 0))
        return 0;
    if (q->unit[0] &&
        ((s = json_string_value(json_object_get(json_object_get(a, "subject"), "unit_id"))) ==
             NULL ||
         strcmp(s, q->unit) != 0))
        return 0;
    if (q->status[0] && strcmp(q->status, "open") != 0 && strcmp(q->status, "all") != 0 &&
        ((s = json_string_value(json_object_get(a, "status"))) == NULL ||
         strcmp(s, q->status) != 0))
        return 0;
    return 1;
}

/* Newest first by "ts" (RFC 3339 UTC strings compare as text), then id. */
static int by_ts_desc(const void *pa, const void *pb)
{
    json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    const char *ta = json_string_value(json_object_get(a, "ts"));
    const char *tb = json_string_value(json_object_get(b, "ts"));
    int r = strcmp(tb ? tb : "", ta ? ta : "");
    if (r != 0)
        return r;
    ta = json_string_value(json_object_get(a, "id"));
    tb = json_string_value(json_object_get(b, "id"));
    return strcmp(tb ? tb : "", ta ? ta : "");
}

static void on_open_hash(wclient *c, redisReply *reply, void *arg)
{
    alerts_q *q = arg;
    json_t **v = NULL, *out;
    size_t n = 0, i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        rk__web_respond_text(c, 503, reply && reply->type == REDIS_REPLY_ERROR
                                         ? "Redis refused the read\n" : "Redis lost\n");
        free(q);
        return;
    }
    if (reply->elements > 0 && (v = calloc(reply->elements / 2 + 1, sizeof(*v))) == NULL) {
        rk__web_respond_text(c, 500, "out of memory\n");
        free(q);
        return;
    }
    for (i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *val = reply->element[i + 1];
        json_t *a;
        if (val->type != REDIS_REPLY_STRING ||
            (a = json_loadb(val->str, val->len, 0, NULL)) == NULL)
            continue;
        if (json_is_object(a) && alert_matches(q, a))
            v[n++] = a;
        else
            json_decref(a);
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), by_ts_desc);
    out = json_array();
    for (i = 0; i < n; i++) {
        if ((int)i < q->limit && out != NULL)
            json_array_append(out, v[i]);
        json_decref(v[i]);
    }
    free(v);
    free(q);
    rk__web_respond_json(c, 200, out);
}

static void on_stream_scan(wclient *c, redisReply *reply, void *arg)
{
    alerts_q *q = arg;
    json_t *latest, *acks, *out;
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        rk__web_respond_text(c, 503, reply && reply->type == REDIS_REPLY_ERROR
                                         ? "Redis refused the read\n" : "Redis lost\n");
        free(q);
        return;
    }
    latest = json_object();                 /* id -> latest notice status */
    acks = json_object();                   /* id -> latest acknowledgement */
    out = json_array();
    for (i = 0; i < reply->elements && out && latest && acks; i++) {
        const redisReply *e = reply->element[i], *f;
        const char *id, *st;
        json_t *a = NULL;
        size_t k;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            (f = e->element[1])->type != REDIS_REPLY_ARRAY)
            continue;
        for (k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(f->element[k]->str, "data") == 0 &&
                f->element[k + 1]->type == REDIS_REPLY_STRING)
                a = json_loadb(f->element[k + 1]->str, f->element[k + 1]->len, 0, NULL);
        if (a == NULL)
            continue;
        id = json_string_value(json_object_get(a, "id"));
        st = json_string_value(json_object_get(a, "status"));
        if (!json_is_object(a) || id == NULL) {
            json_decref(a);
            continue;
        }
        if (st != NULL && strcmp(st, "firing") != 0) {
            /* Newest first: the first notice seen of an id is its latest. */
            if (json_object_get(latest, id) == NULL)
                json_object_set_new(latest, id, json_string(st));
            if (strcmp(st, "acknowledged") == 0 && json_object_get(acks, id) == NULL) {
                json_t *ack = json_object();
                json_t *by = json_object_get(a, "by"), *note = json_object_get(a, "note");
                if (ack != NULL) {
                    if (by)
                        json_object_set(ack, "by", by);
                    if (note)
                        json_object_set(ack, "note", note);
                    json_object_set(ack, "ts", json_object_get(a, "ts"));
                    json_object_set_new(acks, id, ack);
                }
            }
            json_decref(a);
            continue;
        }
        {
            json_t *l = json_object_get(latest, id), *ack = json_object_get(acks, id);
            json_object_set_new(a, "status", json_string(l ? json_string_value(l) : "firing"));
            if (ack != NULL)
                json_object_set(a, "acknowledged", ack);
        }
        if ((int)json_array_size(out) < q->limit && alert_matches(q, a))
            json_array_append(out, a);
        json_decref(a);
    }
    json_decref(latest);
    json_decref(acks);
    free(q);
    rk__web_respond_json(c, 200, out);
}

static void api_alerts(wclient *c, const char *query)
{
    web *w = c->w;
    alerts_q *q = calloc(1, sizeof(*q));
    char lim[32];
    const char *argv[6];
    int rc;

    if (q == NULL) {
        rk__web_respond_text(c, 500, "out of memory\n");
        return;
    }
    q->limit = LIMIT_DEFAULT;
    if (rk__web_query_param(query, "limit", lim, sizeof(lim))) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*lim == '\0' || *end != '\0' || v < 1 || v > LIMIT_MAX) {
            free(q);
            w->bad_requests++;
            rk__web_respond_text(c, 400, "limit: expected an integer from 1 to 1000\n");
            return;
        }
        q->limit = (int)v;
    }
    if (rk__web_query_param(query, "status", q->status, sizeof(q->status)) &&
        q->status[0] && strcmp(q->status, "open") != 0 && strcmp(q->status, "all") != 0 &&
        strcmp(q->status, "firing") != 0 && strcmp(q->status, "acknowledged") != 0 &&
        strcmp(q->status, "resolved") != 0 && strcmp(q->status, "retracted") != 0 &&
        strcmp(q->status, "closed") != 0) {
        free(q);
        w->bad_requests++;
        rk__web_respond_text(c, 400, "status: expected open, all, firing, acknowledged, "
                                     "resolved, retracted or closed\n");
        return;
    }
    if (!rk__web_query_param(query, "unit_id", q->unit, sizeof(q->unit)))
        q->unit[0] = '\0';
    if (!rk__web_query_param(query, "detector", q->detector, sizeof(q->detector)))
        q->detector[0] = '\0';
    if (strcmp(q->status, "open") == 0) {
        argv[0] = "HGETALL";
        argv[1] = w->cfg->alerts_open_key;
        rc = rk__web_query(c, on_open_hash, q, 2, argv);
    } else {
        argv[0] = "XREVRANGE";
        argv[1] = w->cfg->alerts_stream;
        argv[2] = "+";
        argv[3] = "-";
        argv[4] = "COUNT";
        argv[5] = SCAN_MAX;
        rc = rk__web_query(c, on_stream_scan, q, 6, argv);
    }
    if (rc != 0) {
        free(q);
        rk__web_respond_text(c, 503, "unavailable (no Redis connection)\n");
    }
}

/* ===================================================================
 * /api/indicators
 * =================================================================== */

/* Counts summed over partitions; rates recomputed as num / den. */
static const char *const rate_fields[][3] = {
    {"filing_rate", "filings", "filings+unfiled"},
    {"scan_rate", "scanned_by_deadline", "deadline_passed"},
    {"rating_rate", "rated", "scanned"},
    {"bad_rating_share", "bad_ratings", "ratings"},
    {"inspections_per_enterprise", "counted_inspections", "enterprises"},
    {"lenient_share", "lenient", "cases_decided"},
    {"correction_rate", "corrections", "reviews"},
};

static int is_rate(const char *f)
{
    size_t i;
    for (i = 0; i < sizeof(rate_fields) / sizeof(rate_fields[0]); i++)
        if (strcmp(f, rate_fields[i][0]) == 0)
            return 1;
    return 0;
}

static int is_text(const char *f)
{
    return strcmp(f, "from") == 0 || strcmp(f, "to") == 0 || strcmp(f, "updated_at") == 0;
}

typedef struct ind_q {
    int left;                               /* replies still to come */
    int parts;
    int failed;
    int held_done;
    json_t *sum;                            /* field -> number / string */
} ind_q;

/* A Redis string as JSON: a number when it is one, null for "null". */
static json_t *field_value(const char *s, size_t len)
{
    char *end;
    double d;
    if (len == 4 && memcmp(s, "null", 4) == 0)
        return json_null();
    d = strtod(s, &end);
    if (len > 0 && end == s + len && isfinite(d)) {
        if (d == floor(d) && fabs(d) < 9e15 && memchr(s, '.', len) == NULL)
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    return json_stringn(s, len);
}

static double num(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void on_ind_hash(wclient *c, redisReply *reply, void *arg)
{
    ind_q *q = arg;
    size_t i;

    if (reply == NULL) {
        /* The first NULL is api_indicators's own held count (replies only
         * come later, from the loop); any other is a lost connection. */
        if (q->held_done)
            q->failed = 1;
        q->held_done = 1;
    } else if (reply->type != REDIS_REPLY_ARRAY) {
        q->failed = 1;
    } else {
        for (i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *k = reply->element[i], *v = reply->element[i + 1];
            json_t *nv, *old;
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            nv = field_value(v->str, v->len);
            old = json_object_get(q->sum, k->str);
            if (q->parts > 1 && old != NULL && json_is_number(old) && json_is_number(nv) &&
                !is_rate(k->str)) {
                json_t *s = json_is_integer(old) && json_is_integer(nv)
                                ? json_integer(json_integer_value(old) + json_integer_value(nv))
                                : json_real(json_number_value(old) + json_number_value(nv));
                json_decref(nv);
                nv = s;
            } else if (old != NULL && is_text(k->str) && json_is_string(old) &&
                       json_is_string(nv) &&
                       (strcmp(k->str, "from") == 0
                            ? strcmp(json_string_value(nv), json_string_value(old)) > 0
                            : strcmp(json_string_value(nv), json_string_value(old)) < 0)) {
                /* the earliest from, the latest to and updated_at */
                json_decref(nv);
                continue;
            }
            json_object_set_new(q->sum, k->str, nv);
        }
    }
    if (--q->left > 0)
        return;
    if (q->failed) {
        rk__web_respond_text(c, 503, "Redis refused or lost the read\n");
    } else {
        if (q->parts > 1 && json_object_size(q->sum) > 0) {
            for (i = 0; i < sizeof(rate_fields) / sizeof(rate_fields[0]); i++) {
                double n = num(q->sum, rate_fields[i][1]), d;
                if (strcmp(rate_fields[i][2], "filings+unfiled") == 0)
                    d = num(q->sum, "filings") + num(q->sum, "unfiled");
                else
                    d = num(q->sum, rate_fields[i][2]);
                json_object_set_new(q->sum, rate_fields[i][0],
                                    d > 0 ? json_real(round(n / d * 1e6) / 1e6) : json_null());
            }
        }
        rk__web_respond_json(c, 200, json_incref(q->sum));
    }
    json_decref(q->sum);
    free(q);
}

/* One more reply of an index request is in: answer after the last. */
static void ind_done(wclient *c, ind_q *q)
{
    if (--q->left > 0)
        return;
    if (q->failed)
        rk__web_respond_text(c, 503, "Redis refused or lost the read\n");
    else
        rk__web_respond_json(c, 200, json_incref(q->sum));
    json_decref(q->sum);
    free(q);
}

static void add_names(ind_q *q, const char *which, const redisReply *reply)
{
    json_t *a = json_object_get(q->sum, which);
    size_t i, k;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        q->failed = 1;
        return;
    }
    for (i = 0; i < reply->elements && json_array_size(a) < 1000; i++) {
        int dup = 0;
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            continue;
        /* a key in several partitions' indexes appears once */
        for (k = 0; k < json_array_size(a) && !dup; k++)
            dup = strcmp(json_string_value(json_array_get(a, k)), reply->element[i]->str) == 0;
        if (!dup)
            json_array_append_new(a, json_stringn(reply->element[i]->str,
                                                  reply->element[i]->len));
    }
}

static void on_ind_keys(wclient *c, redisReply *reply, void *arg)
{
    add_names(arg, "keys", reply);
    ind_done(c, arg);
}

static void on_ind_periods(wclient *c, redisReply *reply, void *arg)
{
    add_names(arg, "periods", reply);
    ind_done(c, arg);
}

static int valid_part(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || *s == ':' || *s == '*' || *s == '?' || *s == '[')
            return 0;
    return 1;
}

static void api_indicators(wclient *c, const char *query)
{
    web *w = c->w;
    char scope[32], key[PARAM_MAX], period[64], rkey[512];
    int parts = w->cfg->partitions, p;
    ind_q *q;

    if (!rk__web_query_param(query, "scope", scope, sizeof(scope)) || scope[0] == '\0')
        strcpy(scope, "all");
    if (strcmp(scope, "unit") != 0 && strcmp(scope, "officer") != 0 &&
        strcmp(scope, "region") != 0 && strcmp(scope, "all") != 0) {
        w->bad_requests++;
        rk__web_respond_text(c, 400, "scope: expected unit, officer, region or all\n");
        return;
    }
    if (!rk__web_query_param(query, "key", key, sizeof(key)) || key[0] == '\0')
        strcpy(key, strcmp(scope, "all") == 0 ? "all" : "");
    if (!rk__web_query_param(query, "period", period, sizeof(period)) || period[0] == '\0')
        strcpy(period, "window");
    if ((key[0] && !valid_part(key)) || !valid_part(period)) {
        w->bad_requests++;
        rk__web_respond_text(c, 400, "key, period: no spaces, ':' or glob characters\n");
        return;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL || (q->sum = json_object()) == NULL) {
        free(q);
        rk__web_respond_text(c, 500, "out of memory\n");
        return;
    }
    q->parts = parts;
    if (!rk__redis_ready(w->query)) {
        json_decref(q->sum);
        free(q);
        rk__web_respond_text(c, 503, "unavailable (no Redis connection)\n");
        return;
    }
    /* Every reply (or the failure to send) counts once in q->left. */
    if (key[0] == '\0') {
        /* The index: keys of the scope (every partition's), and periods. */
        const char *argv[4];
        json_object_set_new(q->sum, "keys", json_array());
        json_object_set_new(q->sum, "periods", json_array());
        q->left = parts + 2;                /* + 1 held until all are sent */
        for (p = 0; p < parts; p++) {
            if (parts > 1)
                snprintf(rkey, sizeof(rkey), "riskd:ind:keys:%s:p%d", scope, p);
            else
                snprintf(rkey, sizeof(rkey), "riskd:ind:keys:%s", scope);
            argv[0] = "ZREVRANGE";
            argv[1] = rkey;
            argv[2] = "0";
            argv[3] = "999";
            if (rk__web_query(c, on_ind_keys, q, 4, argv) != 0) {
                q->failed = 1;
                q->left--;
            }
        }
        argv[0] = "ZREVRANGE";
        argv[1] = "riskd:ind:periods";
        if (rk__web_query(c, on_ind_periods, q, 4, argv) != 0) {
            q->failed = 1;
            q->left--;
        }
        ind_done(c, q);
        return;
    }
    q->left = parts + 1;
    for (p = 0; p < parts; p++) {
        const char *argv[2];
        if (parts > 1)
            snprintf(rkey, sizeof(rkey), "riskd:ind:%s:%s:%s:p%d", scope, key, period, p);
        else
            snprintf(rkey, sizeof(rkey), "riskd:ind:%s:%s:%s", scope, key, period);
        argv[0] = "HGETALL";
        argv[1] = rkey;
        if (rk__web_query(c, on_ind_hash, q, 2, argv) != 0) {
            q->failed = 1;
            q->left--;
        }
    }
    on_ind_hash(c, NULL, q);                /* the held count (not a failure) */
}

void rk__web_api_dispatch(wclient *c, const char *path, const char *query)
{
    if (strcmp(path, "/healthz") == 0)
        healthz(c);
    else if (strcmp(path, "/metrics") == 0)
        rk__web_api_metrics(c);
    else if (strcmp(path, "/api/alerts") == 0)
        api_alerts(c, query);
    else if (strcmp(path, "/api/indicators") == 0)
        api_indicators(c, query);
    else if (strcmp(path, "/api/names") == 0)
        rk__web_api_names(c);
    else
        rk__web_respond_text(c, 404, "not found\n");
}
