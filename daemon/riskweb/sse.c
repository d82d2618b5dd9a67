/* sse.c - the live feed: one XREAD BLOCK loop on the "feed" connection
 * fans every new entry of alerts.stream out to the /api/events clients.
 *
 * At start (and until it succeeds) XREVRANGE loads the last ring_cap
 * entries (max(web.history, 1000)) into a ring of ready-made SSE frames
 * ("id: <entry id>", "event: alert" for a firing alert, else "event:
 * notice", "data: <the JSON>"); the XREAD loop then reads on from the last
 * id, also across reconnects, so the ring is always a contiguous suffix of
 * the stream. A new client gets the headers at once, and as soon as the
 * ring is loaded:
 *
 *   without Last-Event-ID   the last web.history entries, then live ones;
 *   with Last-Event-ID L    if the ring holds everything after L (L is not
 *                           older than its oldest entry, or the ring holds
 *                           the whole stream): the ring's entries after L;
 *                           else pages of XRANGE after L (200 a page, on
 *                           the query connection) until the client's last
 *                           entry is in the ring, then the ring's rest.
 *
 * A client is "live" once caught up: each new entry goes to it when its id
 * is after the client's last one, so nothing comes twice and, the loop
 * being single-threaded, nothing falls between the catch-up and the live
 * entries. Every web.keepalive a comment line goes to every stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <hiredis/hiredis.h>

#include "riskweb/riskweb.h"

#define RING_MIN 1000
#define PAGE "200"
#define FEED_COUNT "1000"
#define FEED_BLOCK_MS 5000

static void feed_next(web *w);
static void on_feed_retry(uv_timer_t *t);

/* ===================================================================
 * Entry ids
 * =================================================================== */

int rk__web_wid_parse(const char *s, size_t len, wid *out)
{
    uint64_t v[2] = {0, 0};
    size_t i = 0;
    int part = 0, digits = 0;

    for (; i < len; i++) {
        char ch = s[i];
        if (ch == '-' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
            continue;
        }
        if (ch < '0' || ch > '9' || digits >= 19)
            return -1;
        v[part] = v[part] * 10 + (uint64_t)(ch - '0');
        digits++;
    }
    if (digits == 0)
        return -1;
    out->ms = v[0];
    out->seq = part ? v[1] : 0;
    return 0;
}

int rk__web_wid_cmp(wid a, wid b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

/* ===================================================================
 * Frames from stream entries
 * =================================================================== */

/* The frame of one XRANGE/XREAD entry ([id, [field, value, ...]]) into
 * *f (NULL: the entry has no usable "data"; it is skipped). The entry's
 * id into *id. 0, or -1 when the entry is malformed (no id). */
static int entry_frame(const redisReply *e, wid *id, wframe **f)
{
    const redisReply *fields;
    const char *data = NULL, *event = "alert";
    size_t dlen = 0, i;
    json_t *j, *st;
    char *compact = NULL;
    rk_buf b = {NULL, 0, 0, 0};

    *f = NULL;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        rk__web_wid_parse(e->element[0]->str, e->element[0]->len, id) != 0)
        return -1;
    fields = e->element[1];
    if (fields->type != REDIS_REPLY_ARRAY)
        return 0;
    for (i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, "data") == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING) {
            data = fields->element[i + 1]->str;
            dlen = fields->element[i + 1]->len;
        }
    if (data == NULL || (j = json_loadb(data, dlen, 0, NULL)) == NULL)
        return 0;
    if (!json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    st = json_object_get(j, "status");
    if (json_is_string(st) && strcmp(json_string_value(st), "firing") != 0)
        event = "notice";
    if (memchr(data, '\n', dlen) != NULL || memchr(data, '\r', dlen) != NULL) {
        /* Line breaks are whitespace between JSON tokens: one line again. */
        if ((compact = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
            json_decref(j);
            return 0;
        }
        data = compact;
        dlen = strlen(compact);
    }
    json_decref(j);
    rk__buf_printf(&b, "id: %s\nevent: %s\ndata: ", e->element[0]->str, event);
    rk_buf_put_bytes(&b, data, dlen);
    rk_buf_put_bytes(&b, "\n\n", 2);
    free(compact);
    if (!b.oom)
        *f = rk__web_frame_new((const char *)b.data, b.len);
    rk_buf_free(&b);
    return 0;
}

/* ===================================================================
 * The ring
 * =================================================================== */

static wentry *ring_at(web *w, size_t i)        /* 0 = the oldest */
{
    return &w->ring[(w->ring_head + i) % w->ring_cap];
}

static void ring_push(web *w, wid id, wframe *f)
{
    wentry *e;
    if (w->ring_len == w->ring_cap) {
        e = ring_at(w, 0);
        rk__web_frame_unref(e->frame);
        w->ring_head = (w->ring_head + 1) % w->ring_cap;
        w->ring_len--;
        w->ring_complete = 0;
    }
    e = ring_at(w, w->ring_len++);
    e->id = id;
    e->frame = f;
}

/* Does the ring hold every entry after `after`? */
static int ring_covers(web *w, wid after)
{
    return w->ring_complete || (w->ring_len > 0 && rk__web_wid_cmp(after, ring_at(w, 0)->id) >= 0);
}

/* Send c the ring's entries after its cursor and make it live. */
static void go_live(wclient *c)
{
    web *w = c->w;
    size_t i;

    for (i = 0; i < w->ring_len; i++) {
        wentry *e = ring_at(w, i);
        if (rk__web_wid_cmp(e->id, c->cursor) <= 0)
            continue;
        if (rk__web_stream_send(c, e->frame) != 0)
            return;
        c->cursor = e->id;
    }
    c->live = 1;
}

/* ===================================================================
 * Clients
 * =================================================================== */

static void catch_up(wclient *c);

static void on_page(wclient *c, redisReply *reply, void *arg)
{
    size_t i;
    (void)arg;

    c->catching_up = 0;
    if (c->state != WC_STREAMING)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        rk__log(RK_LOG_WARNING, "riskweb: a feed's catch-up failed: %s",
                reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "Redis lost");
        rk__web_client_close(c);            /* it comes back with its Last-Event-ID */
        return;
    }
    for (i = 0; i < reply->elements; i++) {
        wid id;
        wframe *f;
        if (entry_frame(reply->element[i], &id, &f) != 0)
            continue;
        if (rk__web_wid_cmp(id, c->cursor) > 0) {
            int rc = f ? rk__web_stream_send(c, f) : 0;
            rk__web_frame_unref(f);
            if (rc != 0)
                return;
            c->cursor = id;
        } else {
            rk__web_frame_unref(f);
        }
    }
    if (reply->elements == 0 || ring_covers(c->w, c->cursor))
        go_live(c);
    else
        catch_up(c);
}

/* Ask for the next page after c->cursor. */
static void catch_up(wclient *c)
{
    web *w = c->w;
    char from[48];
    const char *argv[6];
    wid n = c->cursor;

    if (n.seq == UINT64_MAX) {
        n.ms++;
        n.seq = 0;
    } else {
        n.seq++;
    }
    snprintf(from, sizeof(from), "%llu-%llu", (unsigned long long)n.ms,
             (unsigned long long)n.seq);
    argv[0] = "XRANGE";
    argv[1] = w->cfg->alerts_stream;
    argv[2] = from;
    argv[3] = "+";
    argv[4] = "COUNT";
    argv[5] = PAGE;
    if (rk__web_query(c, on_page, NULL, 6, argv) != 0) {
        rk__web_client_close(c);
        return;
    }
    c->catching_up = 1;
}

/* The ring is loaded: history or resume for c. */
static void sse_start(wclient *c)
{
    web *w = c->w;
    size_t n, i;

    c->started = 1;
    if (!c->has_last_id) {
        n = (size_t)w->cfg->web_history;
        if (n > w->ring_len)
            n = w->ring_len;
        c->cursor.ms = c->cursor.seq = 0;
        for (i = w->ring_len - n; i < w->ring_len; i++) {
            if (rk__web_stream_send(c, ring_at(w, i)->frame) != 0)
                return;
        }
        c->cursor = w->feed_last;
        c->live = 1;
        return;
    }
    if (ring_covers(w, c->cursor))
        go_live(c);
    else
        catch_up(c);
}

void rk__web_sse_open(wclient *c)
{
    web *w = c->w;

    if (c->has_last_id) {
        const char *s = c->last_id;
        size_t len = strlen(s);
        while (*s == ' ')
            s++, len--;
        if (len == 0) {
            c->has_last_id = 0;             /* EventSource sends "" before any id */
        } else if (rk__web_wid_parse(s, len, &c->cursor) != 0) {
            w->bad_requests++;
            rk__web_respond_text(c, 400, "Last-Event-ID: expected an entry id\n");
            return;
        }
    }
    if (rk__httpreq_method(&c->req) == HTTP_HEAD) {
        rk__web_respond(c, 200, "text/event-stream; charset=utf-8", NULL, "", 0, 0);
        return;
    }
    if (rk__web_stream_begin(c) != 0)
        return;
    c->in_streams = 1;
    c->snext = w->streams;
    if (w->streams)
        w->streams->sprev = c;
    w->streams = c;
    if (w->feed_ready)
        sse_start(c);
}

void rk__web_sse_client_gone(wclient *c)
{
    web *w = c->w;
    if (!c->in_streams)
        return;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        w->streams = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->sprev = c->snext = NULL;
    c->in_streams = 0;
}

/* ===================================================================
 * The feed
 * =================================================================== */

static void fan_out(web *w, wid id, wframe *f)
{
    wclient *c, *next;
    for (c = w->streams; c != NULL; c = next) {
        next = c->snext;
        if (!c->live || rk__web_wid_cmp(id, c->cursor) <= 0)
            continue;
        if (rk__web_stream_send(c, f) == 0)
            c->cursor = id;
    }
}

static void on_feed(rk__redis *r, redisReply *reply, void *privdata)
{
    web *w = privdata;
    const redisReply *entries;
    size_t i;
    (void)r;

    w->feed_inflight = 0;
    if (reply == NULL || w->stopping)
        return;                             /* lost: the next "up" goes on */
    if (reply->type == REDIS_REPLY_ERROR) {
        rk__log(RK_LOG_WARNING, "riskweb: XREAD %s: %s", w->cfg->alerts_stream, reply->str);
        uv_timer_start(&w->feed_retry, on_feed_retry, 1000, 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2 &&
        (entries = reply->element[0]->element[1])->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < entries->elements; i++) {
            wid id;
            wframe *f;
            if (entry_frame(entries->element[i], &id, &f) != 0 ||
                rk__web_wid_cmp(id, w->feed_last) <= 0) {
                rk__web_frame_unref(f);
                continue;
            }
            w->feed_last = id;
            w->feed_entries++;
            if (f == NULL)
                continue;
            ring_push(w, id, f);            /* the ring keeps the reference */
            fan_out(w, id, f);
        }
    }
    feed_next(w);
}

static void feed_next(web *w)
{
    char last[48], block[24];
    const char *argv[8];

    if (w->feed_inflight || w->stopping || !w->feed_ready || !rk__redis_ready(w->feed))
        return;
    snprintf(last, sizeof(last), "%llu-%llu", (unsigned long long)w->feed_last.ms,
             (unsigned long long)w->feed_last.seq);
    snprintf(block, sizeof(block), "%d", FEED_BLOCK_MS);
    argv[0] = "XREAD";
    argv[1] = "COUNT";
    argv[2] = FEED_COUNT;
    argv[3] = "BLOCK";
    argv[4] = block;
    argv[5] = "STREAMS";
    argv[6] = w->cfg->alerts_stream;
    argv[7] = last;
    if (rk__redis_cmd(w->feed, on_feed, w, FEED_BLOCK_MS, 8, argv, NULL) == 0)
        w->feed_inflight = 1;
}

static void on_history(rk__redis *r, redisReply *reply, void *privdata)
{
    web *w = privdata;
    wclient *c, *next;
    size_t i;
    (void)r;

    w->feed_inflight = 0;
    if (reply == NULL || w->stopping)
        return;
    if (reply->type != REDIS_REPLY_ARRAY) {
        rk__log(RK_LOG_WARNING, "riskweb: XREVRANGE %s: %s", w->cfg->alerts_stream,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        uv_timer_start(&w->feed_retry, on_feed_retry, 1000, 0);
        return;
    }
    /* Newest first: push from the end. */
    w->ring_complete = reply->elements < w->ring_cap;
    for (i = reply->elements; i-- > 0;) {
        wid id;
        wframe *f;
        if (entry_frame(reply->element[i], &id, &f) != 0)
            continue;
        if (rk__web_wid_cmp(id, w->feed_last) > 0)
            w->feed_last = id;
        if (f != NULL) {
            int complete = w->ring_complete;
            ring_push(w, id, f);
            w->ring_complete = complete;
        }
    }
    w->feed_ready = 1;
    rk__log(RK_LOG_INFO, "riskweb: %zu entries of %s loaded; following it", w->ring_len,
            w->cfg->alerts_stream);
    for (c = w->streams; c != NULL; c = next) {
        next = c->snext;
        if (!c->started)
            sse_start(c);
    }
    feed_next(w);
}

static void load_history(web *w)
{
    char count[24];
    const char *argv[6];

    if (w->feed_inflight || w->stopping || !rk__redis_ready(w->feed))
        return;
    snprintf(count, sizeof(count), "%zu", w->ring_cap);
    argv[0] = "XREVRANGE";
    argv[1] = w->cfg->alerts_stream;
    argv[2] = "+";
    argv[3] = "-";
    argv[4] = "COUNT";
    argv[5] = count;
    if (rk__redis_cmd(w->feed, on_history, w, 0, 6, argv, NULL) == 0)
        w->feed_inflight = 1;
}

static void on_feed_retry(uv_timer_t *t)
{
    rk__web_sse_redis_up(t->data);
}

void rk__web_sse_redis_up(web *w)
{
    if (w->feed_ready)
        feed_next(w);
    else
        load_history(w);
}

void rk__web_sse_redis_down(web *w)
{
    (void)w;                                /* on_feed / on_history see NULL */
}

static void on_keepalive(uv_timer_t *t)
{
    static wframe *ka;
    web *w = t->data;
    wclient *c, *next;

    if (ka == NULL && (ka = rk__web_frame_new(": keepalive\n\n", 13)) == NULL)
        return;
    ka->refs++;
    for (c = w->streams; c != NULL; c = next) {
        next = c->snext;
        rk__web_stream_send(c, ka);
    }
    rk__web_frame_unref(ka);
}

int rk__web_sse_init(web *w)
{
    w->ring_cap = (size_t)w->cfg->web_history > RING_MIN ? (size_t)w->cfg->web_history
                                                         : RING_MIN;
    if ((w->ring = calloc(w->ring_cap, sizeof(*w->ring))) == NULL)
        return -1;
    uv_timer_init(w->loop, &w->keepalive);
    w->keepalive.data = w;
    uv_timer_start(&w->keepalive, on_keepalive, (uint64_t)w->cfg->web_keepalive,
                   (uint64_t)w->cfg->web_keepalive);
    uv_timer_init(w->loop, &w->feed_retry);
    w->feed_retry.data = w;
    return 0;
}

void rk__web_sse_free(web *w)
{
    size_t i;
    for (i = 0; i < w->ring_len; i++)
        rk__web_frame_unref(ring_at(w, i)->frame);
    free(w->ring);
    w->ring = NULL;
    w->ring_len = 0;
}
