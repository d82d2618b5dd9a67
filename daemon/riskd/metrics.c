/* metrics.c - GET /metrics and GET /healthz on a small libuv TCP server.
 *
 * One listener (IPv4 or IPv6) on the loop; each client gets a uv_tcp_t, a
 * uv_timer_t and a bounded request parser (daemon/lib/httpreq.c, on
 * libhttp-parser 2.9). A client lives through four states:
 *
 *   READING    bytes go into the parser until a request is complete; more
 *              than RK_HTTPREQ_MAX bytes -> 431, a parse error -> 400, the client
 *              half-closing mid-request -> 400, REQ_TIMEOUT_MS without a
 *              whole request -> 408;
 *   WRITING    one response (always "Connection: close") is being written;
 *              anything more the client sends is read and thrown away;
 *   LINGERING  the response is out and our side is shut down (FIN); we
 *              read and discard until the client closes, at most
 *              LINGER_MAX bytes and LINGER_MS, so the client is not reset
 *              before it has read the response;
 *   CLOSING    uv_close() was called on both handles; the memory goes in
 *              the last close callback.
 *
 * The request is answered as: /metrics -> 200 with the node's Prometheus
 * text (rk__node_render_metrics), /healthz -> one JSON object with the
 * status, 200 when consuming, 503 otherwise (rk__node_health), any
 * other path -> 404, a method
 * other than GET or HEAD on a known path -> 405. At most MAX_CLIENTS are
 * served at once; a connection beyond that is accepted and closed at once.
 * Nothing here blocks: the only blocking call is the name lookup in
 * rk__metrics_start, before the loop runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>

#include <http_parser.h>
#include <uv.h>

#include "internal.h"

#define MAX_CLIENTS 64
#define READ_BUF 4096
#define REQ_TIMEOUT_MS 5000             /* to receive a whole request */
#define WRITE_TIMEOUT_MS 5000           /* to write the response */
#define LINGER_MS 1000                  /* after our FIN, for the client's */
#define LINGER_MAX (64 * 1024)          /* bytes we read and discard */

typedef enum cstate { C_READING, C_WRITING, C_LINGERING, C_CLOSING } cstate;

typedef struct client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    rk__httpreq req;                    /* the request (daemon/lib/httpreq.c) */
    struct rk__metrics *m;
    struct client *prev, *next;
    cstate state;
    int open_handles;                   /* handles not yet closed */
    int eof;                            /* the client has shut down its side */
    size_t discarded;                   /* bytes read after the request */
    char *body;                         /* malloc'ed response body, or NULL */
    char hdr[256];
    char rbuf[READ_BUF];
} client;

struct rk__metrics {
    uv_loop_t *loop;
    uv_tcp_t server;
    rk__node *node;
    client *clients;                    /* open (not closing) clients */
    int nclients;                       /* allocated, including closing */
    int stopping;
    int server_closed;
};


static void client_close(client *c);

/* ===================================================================
 * Memory
 * =================================================================== */

/* Free m once the listener and every client are closed. */
static void maybe_free_server(struct rk__metrics *m)
{
    if (m->stopping && m->server_closed && m->nclients == 0)
        free(m);
}

static void on_server_closed(uv_handle_t *h)
{
    struct rk__metrics *m = h->data;
    m->server_closed = 1;
    maybe_free_server(m);
}

static void on_client_handle_closed(uv_handle_t *h)
{
    client *c = h->data;
    struct rk__metrics *m = c->m;

    if (--c->open_handles > 0)
        return;
    free(c->body);
    free(c);
    m->nclients--;
    maybe_free_server(m);
}

/* Start closing client c (idempotent): unlink it from the server's list
 * and close both handles; the last close callback frees it. A pending
 * write or shutdown is cancelled (its callback sees C_CLOSING). */
static void client_close(client *c)
{
    if (c->state == C_CLOSING)
        return;
    c->state = C_CLOSING;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->m->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_timer_stop(&c->timer);
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
}

/* ===================================================================
 * Responses
 * =================================================================== */

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

static void on_timer(uv_timer_t *t);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    client *c = req->data;
    if (c->state == C_CLOSING)
        return;
    if (status < 0)
        client_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    client *c = req->data;
    if (c->state == C_CLOSING)
        return;
    if (status < 0 || c->eof) {
        client_close(c);
        return;
    }
    /* Send our FIN and wait (briefly) for the client's, so that closing
     * with unread input does not reset the connection under the reply. */
    c->state = C_LINGERING;
    c->sreq.data = c;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        client_close(c);
}

/* Send one response to client c and move it to C_WRITING: the status line,
 * Content-Type ctype (may be NULL), Content-Length, "Connection: close"
 * and extra header lines (each ending in CRLF, may be NULL), then len
 * bytes of body unless the request was HEAD. If owned is set, body is
 * malloc'ed and c takes it over. A failing write closes the client. */
static void respond(client *c, int status, const char *ctype, const char *extra,
                    const char *body, size_t len, int owned)
{
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    int n, head = c->req.complete && rk__httpreq_method(&c->req) == HTTP_HEAD;

    if (owned)
        c->body = (char *)(uintptr_t)body;
    n = snprintf(c->hdr, sizeof(c->hdr),
                 "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s"
                 "Connection: close\r\n\r\n",
                 status, status_text(status), ctype ? "Content-Type: " : "",
                 ctype ? ctype : "", ctype ? "\r\n" : "", len, extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(c->hdr)) {
        client_close(c);
        return;
    }
    bufs[0] = uv_buf_init(c->hdr, (unsigned)n);
    if (!head && len > 0) {
        bufs[1] = uv_buf_init((char *)(uintptr_t)body, (unsigned)len);
        nbufs = 2;
    }
    c->state = C_WRITING;
    c->wreq.data = c;
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timer, WRITE_TIMEOUT_MS, 0);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written) != 0)
        client_close(c);
}

static void respond_text(client *c, int status, const char *text)
{
    respond(c, status, "text/plain; charset=utf-8", NULL, text, strlen(text), 0);
}

/* Answer the complete request in c. */
static void dispatch(client *c)
{
    static const char allow[] = "Allow: GET, HEAD\r\n";
    enum http_method method = (enum http_method)rk__httpreq_method(&c->req);
    const char *path = rk__httpreq_path(&c->req, NULL);
    int is_metrics, is_healthz;

    is_metrics = strcmp(path, "/metrics") == 0;
    is_healthz = strcmp(path, "/healthz") == 0;
    if (!is_metrics && !is_healthz) {
        respond_text(c, 404, "not found\n");
        return;
    }
    if (method != HTTP_GET && method != HTTP_HEAD) {
        respond(c, 405, "text/plain; charset=utf-8", allow, "method not allowed\n",
                strlen("method not allowed\n"), 0);
        return;
    }
    if (is_healthz) {
        int healthy = 0;
        char *text = rk__node_health(c->m->node, &healthy);
        if (text == NULL) {
            respond_text(c, 500, "out of memory\n");
            return;
        }
        respond(c, healthy ? 200 : 503, "application/json", NULL, text, strlen(text), 1);
        return;
    }
    {
        rk_buf b = {NULL, 0, 0, 0};
        rk__node_render_metrics(c->m->node, &b);
        if (b.oom || b.len > UINT32_MAX) {
            rk_buf_free(&b);
            respond_text(c, 500, "out of memory\n");
            return;
        }
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                (const char *)b.data, b.len, 1);
    }
}

/* ===================================================================
 * Requests
 * =================================================================== */

static void on_timer(uv_timer_t *t)
{
    client *c = t->data;
    if (c->state == C_READING)
        respond_text(c, 408, "request timeout\n");
    else
        client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client *c = s->data;
    int rc;

    if (c->state == C_CLOSING || nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            client_close(c);
            return;
        }
        c->eof = 1;
        uv_read_stop(s);
        if (c->state == C_READING && c->req.received > 0)
            respond_text(c, 400, "incomplete request\n");
        else if (c->state != C_WRITING)
            client_close(c);
        return;
    }
    if (c->state != C_READING) {
        c->discarded += (size_t)nread;
        if (c->discarded > LINGER_MAX)
            client_close(c);
        return;
    }
    rc = rk__httpreq_feed(&c->req, buf->base, (size_t)nread);
    if (rc == 1)
        dispatch(c);
    else if (rc == 431)
        respond_text(c, 431, "request too large\n");
    else if (rc == 414)
        respond_text(c, 404, "not found\n");   /* no path of ours is that long */
    else if (rc != 0)
        respond_text(c, rc, "bad request\n");
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct rk__metrics *m = server->data;
    client *c;

    if (status < 0) {
        rk__log(RK_LOG_WARNING, "metrics: accept failed: %s", uv_strerror(status));
        return;
    }
    if (m->nclients >= MAX_CLIENTS) {
        /* Full: take the connection off the queue and close it. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL) {
            rk__log(RK_LOG_WARNING, "metrics: out of memory refusing a client");
            return;
        }
        uv_tcp_init(m->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            rk__log(RK_LOG_DEBUG, "metrics: %d clients, refusing another", m->nclients);
        uv_close((uv_handle_t *)t, free_handle);
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        rk__log(RK_LOG_WARNING, "metrics: out of memory accepting a client");
        return;
    }
    c->m = m;
    uv_tcp_init(m->loop, &c->tcp);
    uv_timer_init(m->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    rk__httpreq_init(&c->req, NULL, 0);
    c->next = m->clients;
    if (m->clients)
        m->clients->prev = c;
    m->clients = c;
    m->nclients++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        client_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timer, REQ_TIMEOUT_MS, 0);
}

/* ===================================================================
 * Start and stop
 * =================================================================== */

/* Fill *ss with host:port: a numeric IPv4 or IPv6 address, else the first
 * address getaddrinfo() gives for the name. Returns 0 or -1 with err. */
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

rk__metrics *rk__metrics_start(uv_loop_t *loop, const char *host, int port,
                              rk__node *node, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct rk__metrics *m;
    int rc;

    if (resolve(host, port, &ss, err, errlen) != 0)
        return NULL;
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    m->loop = loop;
    m->node = node;
    if ((rc = uv_tcp_init(loop, &m->server)) != 0) {
        rk_kit_errf(err, errlen, "cannot create a socket: %s", uv_strerror(rc));
        free(m);
        return NULL;
    }
    m->server.data = m;
    if ((rc = uv_tcp_bind(&m->server, (const struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&m->server, 64, on_connection)) != 0) {
        rk_kit_errf(err, errlen, "cannot listen on %s%s%s:%d: %s",
                    ss.ss_family == AF_INET6 ? "[" : "", host,
                    ss.ss_family == AF_INET6 ? "]" : "", port, uv_strerror(rc));
        /* The handle is freed with m once libuv has closed it. */
        m->stopping = 1;
        uv_close((uv_handle_t *)&m->server, on_server_closed);
        return NULL;
    }
    rk__log(RK_LOG_INFO, "metrics: listening on %s%s%s:%d",
            ss.ss_family == AF_INET6 ? "[" : "", host,
            ss.ss_family == AF_INET6 ? "]" : "", port);
    return m;
}

void rk__metrics_stop(rk__metrics *m)
{
    if (m == NULL || m->stopping)
        return;
    m->stopping = 1;
    while (m->clients != NULL)
        client_close(m->clients);
    uv_close((uv_handle_t *)&m->server, on_server_closed);
}
