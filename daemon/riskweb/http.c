/* http.c - riskweb's HTTP server: connections, parsing, limits, access,
 * responses, and the bounded output queue of a streaming client.
 *
 * One libuv listener; each client has a uv_tcp_t, a uv_timer_t and the
 * bounded request reader riskd's metrics endpoint uses too
 * (daemon/lib/httpreq.c, on libhttp-parser 2.9). A client is READING
 * until its request is complete (more than RK_HTTPREQ_MAX bytes, more
 * than RK_HTTPREQ_HEADERS_MAX header lines, a target longer than
 * RK_HTTPREQ_URL_MAX, a kept header longer than RK_HTTPREQ_VALUE_MAX, or a
 * parse error: 400 and close; no whole request in REQ_TIMEOUT_MS: 408), then WAITING for Redis, WRITING one response
 * ("Connection: close") or STREAMING (/api/events, sse.c). A streaming
 * client's unsent bytes (libuv's write queue, on top of a kernel send
 * buffer of WEB_SNDBUF) may not pass WEB_OUT_MAX: past it the client is
 * closed and counted as slow; it resumes with Last-Event-ID. Frames are
 * shared between clients (reference counted), so a queue holds references,
 * not copies.
 *
 * Access (web_access): without web.token only loopback peers are served
 * (403); with it every request carries the token - "Authorization: Bearer",
 * the cookie riskweb_token, or the query parameter token, which then sets
 * that cookie (HttpOnly, SameSite=Strict) - else 401 (none given) or 403
 * (wrong). Without a token, a Host header other than a loopback name or
 * the listen host gets 403 too (a foreign page reaching riskweb through
 * DNS rebinding). A request that passes goes to w->route (main.c: the API,
 * the event stream, or the page's files here). Every response carries a Content-Security-Policy allowing only
 * riskweb's own scripts, styles, images and connections, and nosniff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>
#include <hiredis/hiredis.h>

#include "riskweb/riskweb.h"

#define REQ_TIMEOUT_MS 10000
#define WRITE_TIMEOUT_MS 10000
#define LINGER_MS 1000
#define LINGER_MAX (64 * 1024)

/* The headers kept from a request, in rk__httpreq_header's order. */
enum { H_AUTH, H_COOKIE, H_LAST_ID, H_HOST, H_COUNT };
static const char *const kept_headers[H_COUNT] = {
    "Authorization", "Cookie", "Last-Event-ID", "Host"
};

static const char common_headers[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Frame-Options: DENY\r\n";


/* A whole response in flight (c->tcp holds at most one). */
typedef struct wresp {
    uv_write_t req;
    char *hdr;
    char *owned;
} wresp;

/* One frame queued to one streaming client. */
typedef struct wsend {
    uv_write_t req;
    wframe *f;
} wsend;

/* ===================================================================
 * Frames
 * =================================================================== */

wframe *rk__web_frame_new(const char *data, size_t len)
{
    wframe *f = malloc(sizeof(*f) + len + 1);
    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->len = len;
    memcpy(f->data, data, len);
    f->data[len] = '\0';
    return f;
}

void rk__web_frame_unref(wframe *f)
{
    if (f != NULL && --f->refs == 0)
        free(f);
}

/* ===================================================================
 * Clients: memory
 * =================================================================== */

static void client_free(wclient *c)
{
    web *w = c->w;
    free(c);
    w->nclients--;
}

static void on_handle_closed(uv_handle_t *h)
{
    wclient *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->pending == 0)
        client_free(c);
}

void rk__web_client_close(wclient *c)
{
    if (c->state == WC_CLOSING)
        return;
    if (c->in_streams)
        c->w->client_gone(c);
    c->state = WC_CLOSING;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_timer_stop(&c->timer);
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ===================================================================
 * Responses
 * =================================================================== */

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

static void on_timer(uv_timer_t *t);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    wclient *c = req->data;
    free(req);
    if (c->state != WC_CLOSING && status < 0)
        rk__web_client_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    wresp *r = (wresp *)req;
    wclient *c = req->data;
    uv_shutdown_t *sreq;

    free(r->hdr);
    free(r->owned);
    free(r);
    if (c->state == WC_CLOSING)
        return;
    if (status < 0 || c->eof || (sreq = malloc(sizeof(*sreq))) == NULL) {
        rk__web_client_close(c);
        return;
    }
    /* Our FIN, then a short wait for the client's: closing with unread
     * input would reset the connection under the response. */
    c->state = WC_WRITING;
    c->discarded = 0;
    sreq->data = c;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
    if (uv_shutdown(sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(sreq);
        rk__web_client_close(c);
    }
}

/* The cookie header of a response that got the token in its query. */
static void cookie_header(const wclient *c, char *out, size_t len)
{
    out[0] = '\0';
    if (c->set_cookie && c->w->cfg->web_token != NULL)
        snprintf(out, len, "Set-Cookie: riskweb_token=%s; Path=/; HttpOnly; SameSite=Strict\r\n",
                 c->w->cfg->web_token);
}

void rk__web_respond(wclient *c, int status, const char *ctype, const char *extra,
                     const char *body, size_t len, int owned)
{
    wresp *r;
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    int n, head = c->req.complete && rk__httpreq_method(&c->req) == HTTP_HEAD;
    char cookie[RK_HTTPREQ_VALUE_MAX + 128];
    size_t cap;

    if (c->state == WC_CLOSING || c->state == WC_STREAMING) {
        if (owned)
            free((char *)(uintptr_t)body);
        return;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        if (owned)
            free((char *)(uintptr_t)body);
        rk__web_client_close(c);
        return;
    }
    if (owned)
        r->owned = (char *)(uintptr_t)body;
    cookie_header(c, cookie, sizeof(cookie));
    cap = 1024 + strlen(cookie) + (extra ? strlen(extra) : 0) + sizeof(common_headers);
    if ((r->hdr = malloc(cap)) == NULL)
        goto fail;
    n = snprintf(r->hdr, cap,
                 "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s%s%s"
                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                 status, status_text(status), ctype ? "Content-Type: " : "",
                 ctype ? ctype : "", ctype ? "\r\n" : "", len, common_headers,
                 cookie, extra ? extra : "");
    if (n < 0 || (size_t)n >= cap)
        goto fail;
    if (!owned && len > 0 && !head && len < 64 * 1024) {
        /* Small bodies are copied: the caller's buffer may not live on. */
        if ((r->owned = malloc(len)) == NULL)
            goto fail;
        memcpy(r->owned, body, len);
        body = r->owned;
    }
    bufs[0] = uv_buf_init(r->hdr, (unsigned)n);
    if (!head && len > 0) {
        bufs[1] = uv_buf_init((char *)(uintptr_t)body, (unsigned)len);
        nbufs = 2;
    }
    c->state = WC_WRITING;
    r->req.data = c;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timer, WRITE_TIMEOUT_MS, 0);
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written) != 0) {
        free(r->hdr);
        free(r->owned);
        free(r);
        rk__web_client_close(c);
    }
    return;
fail:
    free(r->hdr);
    free(r->owned);
    free(r);
    rk__web_client_close(c);
}

void rk__web_respond_text(wclient *c, int status, const char *text)
{
    rk__web_respond(c, status, "text/plain; charset=utf-8", NULL, text, strlen(text), 0);
}

void rk__web_respond_json(wclient *c, int status, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (s == NULL) {
        rk__web_respond_text(c, 500, "out of memory\n");
        return;
    }
    rk__web_respond(c, status, "application/json; charset=utf-8", NULL, s, strlen(s), 1);
}

/* ===================================================================
 * Streaming
 * =================================================================== */

static void on_frame_written(uv_write_t *req, int status)
{
    wsend *s = (wsend *)req;
    wclient *c = req->data;
    rk__web_frame_unref(s->f);
    free(s);
    if (c->state != WC_CLOSING && status < 0)
        rk__web_client_close(c);
}

int rk__web_stream_begin(wclient *c)
{
    static const char fmt[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n%s%s"
        "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n\r\n"
        "retry: 2000\n\n";
    char cookie[RK_HTTPREQ_VALUE_MAX + 128], hdr[2048 + RK_HTTPREQ_VALUE_MAX];
    int n, size = WEB_SNDBUF;
    wframe *f;

    cookie_header(c, cookie, sizeof(cookie));
    n = snprintf(hdr, sizeof(hdr), fmt, common_headers, cookie);
    if (n < 0 || (size_t)n >= sizeof(hdr) || (f = rk__web_frame_new(hdr, (size_t)n)) == NULL) {
        rk__web_client_close(c);
        return -1;
    }
    uv_send_buffer_size((uv_handle_t *)&c->tcp, &size);
    uv_timer_stop(&c->timer);
    c->state = WC_STREAMING;
    n = rk__web_stream_send(c, f);
    rk__web_frame_unref(f);
    return n;
}

int rk__web_stream_send(wclient *c, wframe *f)
{
    wsend *s;
    uv_buf_t b;

    if (c->state != WC_STREAMING)
        return -1;
    if ((s = malloc(sizeof(*s))) == NULL) {
        rk__web_client_close(c);
        return -1;
    }
    s->f = f;
    f->refs++;
    s->req.data = c;
    b = uv_buf_init(f->data, (unsigned)f->len);
    if (uv_write(&s->req, (uv_stream_t *)&c->tcp, &b, 1, on_frame_written) != 0) {
        rk__web_frame_unref(f);
        free(s);
        rk__web_client_close(c);
        return -1;
    }
    if (c->tcp.write_queue_size > WEB_OUT_MAX) {
        c->w->slow_disconnects++;
        rk__log(RK_LOG_DEBUG, "riskweb: a client's queue passed %d bytes: disconnected",
                WEB_OUT_MAX);
        rk__web_client_close(c);
        return -1;
    }
    if (f->len > 3 && memcmp(f->data, "id:", 3) == 0)
        c->w->events_sent++;
    return 0;
}

/* ===================================================================
 * Access
 * =================================================================== */

int rk__web_token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i;
    unsigned char d = (unsigned char)(la != lb);

    /* Walk the configured token (b) whole; a is read modulo its length. */
    for (i = 0; i < lb; i++)
        d |= (unsigned char)(b[i] ^ (la ? a[i % la] : 0));
    return d == 0;
}

int rk__web_host_allowed(const char *host, const char *listen_host)
{
    char name[256];
    size_t n;
    const char *end;

    if (host == NULL || *host == '\0')
        return 1;                       /* HTTP/1.0 without Host: not a browser's */
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (end == NULL)
            return 0;
        host++;
    } else {
        end = strchr(host, ':');
        if (end == NULL)
            end = host + strlen(host);
    }
    n = (size_t)(end - host);
    if (n == 0 || n >= sizeof(name))
        return 0;
    memcpy(name, host, n);
    name[n] = '\0';
    if (n > 1 && name[n - 1] == '.')
        name[--n] = '\0';              /* "localhost." */
    if (strcasecmp(name, "localhost") == 0 || strcmp(name, "::1") == 0 ||
        (listen_host != NULL && strcasecmp(name, listen_host) == 0))
        return 1;
    if (strncmp(name, "127.", 4) == 0) {
        struct in_addr a;
        return inet_pton(AF_INET, name, &a) == 1;
    }
    return 0;
}

int rk__web_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const unsigned char *a = in6->sin6_addr.s6_addr;
        static const unsigned char v4mapped[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        return memcmp(a, v4mapped, 12) == 0 && a[12] == 127;
    }
    return 0;
}

/* The value of the cookie name in a Cookie header, into out. */
static int cookie_value(const char *hdr, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    const char *p = hdr;

    while (*p) {
        const char *end;
        size_t vl;
        while (*p == ' ' || *p == ';')
            p++;
        end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            vl = (size_t)(end - p) - nl - 1;
            if (vl >= len)
                return 0;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        p = end;
    }
    return 0;
}

int rk__web_access(const char *token, int loopback, const char *auth, const char *cookie,
                   const char *query, int *from_query)
{
    char given[RK_HTTPREQ_VALUE_MAX + 1];
    int ok;

    *from_query = 0;
    if (token == NULL)
        return loopback ? 0 : 403;
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        return rk__web_token_equal(t, token) ? 0 : 403;
    }
    if (query != NULL && rk__web_query_param(query, "token", given, sizeof(given))) {
        ok = rk__web_token_equal(given, token);
        *from_query = ok;
        return ok ? 0 : 403;
    }
    if (cookie != NULL && cookie_value(cookie, "riskweb_token", given, sizeof(given)))
        return rk__web_token_equal(given, token) ? 0 : 403;
    return 401;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int rk__web_query_param(const char *q, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = q;

    if (q == NULL)
        return 0;
    while (*p) {
        const char *end = strchr(p, '&');
        if (end == NULL)
            end = p + strlen(p);
        if ((size_t)(end - p) >= nl && strncmp(p, name, nl) == 0 &&
            (p[nl] == '=' || p + nl == end)) {
            const char *v = p + nl + (p[nl] == '=');
            size_t o = 0;
            while (v < end) {
                int ch = *v++;
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%' && end - v >= 2 && hexval(v[0]) >= 0 && hexval(v[1]) >= 0) {
                    ch = hexval(v[0]) * 16 + hexval(v[1]);
                    v += 2;
                }
                if (o + 1 >= outlen)
                    return 0;
                out[o++] = (char)ch;
            }
            out[o] = '\0';
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* ===================================================================
 * Redis queries for a client
 * =================================================================== */

typedef struct wquery {
    wclient *c;
    rk__web_reply_cb *cb;
    void *arg;
} wquery;

static void on_query_reply(rk__redis *r, struct redisReply *reply, void *privdata)
{
    wquery *q = privdata;
    wclient *c = q->c;
    (void)r;
    /* The callback runs even for a client that went away meanwhile, so
     * that it frees its argument: answering a closed client does nothing
     * and it can send no further query. Then the last reply frees it. */
    q->cb(c, reply, q->arg);
    free(q);
    if (--c->pending == 0 && c->state == WC_CLOSING && c->open_handles == 0)
        client_free(c);
}

int rk__web_query(wclient *c, rk__web_reply_cb *cb, void *arg, int argc, const char **argv)
{
    wquery *q;

    if (c->state == WC_CLOSING || c->w->query == NULL || !rk__redis_ready(c->w->query) ||
        (q = malloc(sizeof(*q))) == NULL)
        return -1;
    q->c = c;
    q->cb = cb;
    q->arg = arg;
    if (rk__redis_cmd(c->w->query, on_query_reply, q, 0, argc, argv, NULL) != 0) {
        free(q);
        return -1;
    }
    c->pending++;
    return 0;
}

/* ===================================================================
 * Requests
 * =================================================================== */

static void bad_request(wclient *c, const char *why)
{
    c->w->bad_requests++;
    rk__web_respond_text(c, 400, why);
}

static const web_asset *find_asset(const char *path)
{
    size_t i;
    for (i = 0; i < rk__web_n_assets; i++)
        if (strcmp(rk__web_assets[i].path, path) == 0)
            return &rk__web_assets[i];
    return NULL;
}

static void dispatch(wclient *c)
{
    web *w = c->w;
    enum http_method method = (enum http_method)rk__httpreq_method(&c->req);
    const char *query = NULL;
    int rc;

    c->state = WC_WAITING;
    c->url = rk__httpreq_path(&c->req, &query);
    c->auth = rk__httpreq_header(&c->req, H_AUTH);
    c->cookie = rk__httpreq_header(&c->req, H_COOKIE);
    c->last_id = rk__httpreq_header(&c->req, H_LAST_ID);
    c->host = rk__httpreq_header(&c->req, H_HOST);
    c->has_last_id = c->last_id != NULL;
    if (method != HTTP_GET && method != HTTP_HEAD) {
        rk__web_respond(c, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n",
                        "method not allowed\n", strlen("method not allowed\n"), 0);
        return;
    }
    rc = rk__web_access(w->cfg->web_token, c->loopback, c->auth && c->auth[0] ? c->auth : NULL,
                        c->cookie && c->cookie[0] ? c->cookie : NULL, query, &c->set_cookie);
    if (rc == 0 && w->cfg->web_token == NULL &&
        !rk__web_host_allowed(c->host ? c->host : "", w->cfg->web_host)) {
        w->unauthorized++;
        rk__web_respond_text(c, 403, "Host: only loopback names without web.token\n");
        return;
    }
    if (rc != 0) {
        w->unauthorized++;
        rk__web_respond_text(c, rc, rc == 401 ? "a token is required\n"
                                              : c->loopback || w->cfg->web_token
                                                  ? "wrong token\n"
                                                  : "loopback clients only\n");
        return;
    }
    if (c->set_cookie && strcmp(c->url, "/") == 0) {
        /* The token leaves the address bar: back to the page, with the cookie. */
        rk__web_respond(c, 303, "text/plain; charset=utf-8", "Location: /\r\n", "", 0, 0);
        return;
    }
    w->route(c, c->url, query);
}

void rk__web_serve_file(wclient *c, const char *path)
{
    const web_asset *a = find_asset(path);
    if (a != NULL)
        rk__web_respond(c, 200, a->ctype, NULL, (const char *)a->data, a->len, 0);
    else
        rk__web_respond_text(c, 404, "not found\n");
}

static void on_timer(uv_timer_t *t)
{
    wclient *c = t->data;
    if (c->state == WC_READING)
        rk__web_respond_text(c, 408, "request timeout\n");
    else
        rk__web_client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    wclient *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    wclient *c = s->data;
    int rc;

    if (c->state == WC_CLOSING || nread == 0)
        return;
    if (nread < 0) {
        c->eof = 1;
        uv_read_stop(s);
        if (nread != UV_EOF)
            rk__web_client_close(c);
        else if (c->state == WC_READING && c->req.received > 0)
            bad_request(c, "incomplete request\n");
        else if (c->state == WC_READING || c->state == WC_STREAMING)
            rk__web_client_close(c);
        /* WAITING / WRITING: the response still goes out. */
        return;
    }
    if (c->state != WC_READING) {
        c->discarded += (size_t)nread;
        if (c->discarded > LINGER_MAX)
            rk__web_client_close(c);
        return;
    }
    rc = rk__httpreq_feed(&c->req, buf->base, (size_t)nread);
    if (rc == 1)
        dispatch(c);
    else if (rc != 0)
        bad_request(c, rc == 414 ? "request target too long\n"
                       : rc == 431 ? "request or header too large, or too many header lines\n"
                                   : "bad request\n");
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    web *w = server->data;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    wclient *c;

    if (status < 0) {
        rk__log(RK_LOG_WARNING, "riskweb: accept failed: %s", uv_strerror(status));
        return;
    }
    if (w->nclients >= WEB_MAX_CLIENTS || (c = calloc(1, sizeof(*c))) == NULL) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL)
            return;
        uv_tcp_init(w->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            rk__log(RK_LOG_DEBUG, "riskweb: %d clients, refusing another", w->nclients);
        uv_close((uv_handle_t *)t, free_handle);
        return;
    }
    c->w = w;
    uv_tcp_init(w->loop, &c->tcp);
    uv_timer_init(w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    rk__httpreq_init(&c->req, kept_headers, H_COUNT);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->nclients++;
    w->clients_total++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        rk__web_client_close(c);
        return;
    }
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0)
        c->loopback = rk__web_is_loopback((struct sockaddr *)&ss);
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        rk__web_client_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timer, REQ_TIMEOUT_MS, 0);
}

/* ===================================================================
 * Start and stop
 * =================================================================== */

static int resolve(const char *host, int port, struct sockaddr_storage *ss,
                   char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int rc;

    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*ss)) {
        rk_kit_errf(err, errlen, "cannot resolve \"%s\": %s", host,
                    rc != 0 ? gai_strerror(rc) : "no usable address");
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void on_server_closed(uv_handle_t *h)
{
    web *w = h->data;
    w->server_closed = 1;
}

int rk__web_http_start(web *w, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    const char *host = w->cfg->web_host;
    int port = w->cfg->web_port, rc;

    if (resolve(host, port, &ss, err, errlen) != 0)
        return -1;
    if ((rc = uv_tcp_init(w->loop, &w->server)) != 0) {
        rk_kit_errf(err, errlen, "cannot create a socket: %s", uv_strerror(rc));
        return -1;
    }
    w->server.data = w;
    if ((rc = uv_tcp_bind(&w->server, (const struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&w->server, 511, on_connection)) != 0) {
        rk_kit_errf(err, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        uv_close((uv_handle_t *)&w->server, on_server_closed);
        return -1;
    }
    rk__log(RK_LOG_INFO, "riskweb: listening on http://%s%s%s:%d/",
            ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "",
            port);
    return 0;
}

void rk__web_http_stop(web *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    while (w->clients != NULL)
        rk__web_client_close(w->clients);
    uv_close((uv_handle_t *)&w->server, on_server_closed);
}
