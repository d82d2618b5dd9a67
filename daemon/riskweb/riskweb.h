/* daemon/riskweb/riskweb.h - what riskweb's files share (riskweb only).
 *
 *   main.c    options, the configuration, the two Redis connections, signals
 *   http.c    the HTTP server: clients, parsing, limits, access, responses,
 *             the bounded output queue of a streaming client
 *   sse.c     the alert feed: one XREAD BLOCK loop, the history ring, the
 *             fan-out to /api/events clients and their Last-Event-ID resume
 *   api.c     /api/alerts, /api/indicators, /healthz, /metrics
 *   names.c   /api/names: the names list, kept per version
 *   assets.c  the page's files (generated at build time from www/)
 *
 * Single loop thread throughout. */
#ifndef RISKWEB_H
#define RISKWEB_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "internal.h"

struct sockaddr;
struct redisReply;

#define WEB_MAX_CLIENTS 4096            /* connections at once (SSE included) */
/* Request bounds: RK_HTTPREQ_* of the shared reader (daemon/lib/httpreq.c):
 * 8 KiB of request, a 2 KiB target, 40 header lines, 1 KiB per kept header. */
#define WEB_OUT_MAX (256 * 1024)        /* queued bytes of a streaming client */
#define WEB_SNDBUF (64 * 1024)          /* kernel send buffer asked for */

typedef struct web web;
typedef struct wclient wclient;

/* An SSE frame or any shared bytes, reference counted: one copy serves
 * every client it is queued to. */
typedef struct wframe {
    int refs;
    size_t len;
    char data[];
} wframe;

/* The id of a stream entry. */
typedef struct wid {
    uint64_t ms, seq;
} wid;

typedef enum { WC_READING, WC_WAITING, WC_WRITING, WC_STREAMING, WC_CLOSING } wc_state;

struct wclient {
    uv_tcp_t tcp;
    uv_timer_t timer;
    rk__httpreq req;                    /* the request (daemon/lib/httpreq.c) */
    web *w;
    wclient *prev, *next;               /* w->clients */
    wclient *sprev, *snext;             /* w->streams (SSE clients) */
    wc_state state;
    int open_handles;
    int pending;                        /* Redis replies still to come */
    int eof;
    size_t discarded;
    size_t queued;                      /* bytes in uv_write requests not done */
    int loopback;                       /* the peer is a loopback address */
    /* SSE */
    int in_streams;                     /* linked in w->streams */
    int started;                        /* stream headers sent */
    int catching_up;                    /* an XRANGE page is in flight */
    int live;                           /* caught up: gets every new entry */
    wid cursor;                         /* last entry sent */
    int set_cookie;                     /* token came in the query */
    /* the request's path and kept headers (in req; NULL when absent) */
    const char *url, *auth, *cookie, *last_id, *host;
    int has_last_id;
    char rbuf[4096];
};

/* One entry of the history ring. */
typedef struct wentry {
    wid id;
    wframe *frame;                      /* "id: ...\nevent: ...\ndata: ...\n\n" */
} wentry;

struct web {
    /* what the HTTP layer hands on (main.c fills them in, so that http.c
     * names neither the API nor the event stream): a request that passed
     * the access rules, and a client going away */
    void (*route)(wclient *c, const char *path, const char *query);
    void (*client_gone)(wclient *c);
    uv_loop_t *loop;
    rk__config *cfg;
    uv_tcp_t server;
    rk__redis *feed;                    /* XREAD BLOCK only */
    rk__redis *query;                   /* everything else */
    wclient *clients;                   /* open (not closing) clients */
    wclient *streams;                   /* SSE clients among them */
    int nclients;                       /* allocated, including closing */
    int stopping, server_closed;
    uv_timer_t keepalive;
    uv_timer_t feed_retry;              /* after a Redis error reply */
    /* the feed */
    int feed_ready;                     /* history loaded, XREAD loop running */
    int feed_inflight;                  /* a feed command is in flight */
    wid feed_last;                      /* last entry read */
    wentry *ring;                       /* the last ring_cap entries */
    size_t ring_cap, ring_len, ring_head;   /* head: index of the oldest */
    int ring_complete;                  /* the ring holds the whole stream */
    /* metrics */
    uint64_t clients_total, slow_disconnects, events_sent, bad_requests;
    uint64_t unauthorized, feed_entries;
    /* /api/names (names.c): the document of names_version, or NULL */
    char *names_body;
    size_t names_len;
    long long names_version;
};


/* http.c */
int rk__web_http_start(web *w, char *err, size_t errlen);
void rk__web_http_stop(web *w);
/* Is the address a loopback one (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? */
int rk__web_is_loopback(const struct sockaddr *sa);
/* The access decision: 0 serve; 401 no token given; 403 wrong token or a
 * non-loopback peer without a configured token. *from_query is set when
 * the (right) token came in the query (the response sets the cookie). */
int rk__web_access(const char *token, int loopback, const char *auth, const char *cookie,
               const char *query, int *from_query);
/* Without a token: may a request naming this Host header (NULL: none) be
 * served? Only loopback names and the listen host itself, so that a page
 * of another site cannot reach riskweb through DNS rebinding. */
int rk__web_host_allowed(const char *host, const char *listen_host);
/* Equal strings, in time that depends only on the lengths. */
int rk__web_token_equal(const char *a, const char *b);
/* Send one whole response and close (Connection: close). body is copied
 * unless owned (then c takes over the malloc'ed body). */
void rk__web_respond(wclient *c, int status, const char *ctype, const char *extra,
                 const char *body, size_t len, int owned);
void rk__web_respond_text(wclient *c, int status, const char *text);
/* One of the page's files (assets.c) by path, or 404. */
void rk__web_serve_file(wclient *c, const char *path);
void rk__web_respond_json(wclient *c, int status, json_t *v);   /* steals v */
/* Streaming: send the headers of an event stream, then frames. A client
 * whose queue passes WEB_OUT_MAX is closed (counted as slow). 0, or -1
 * when c was closed. */
int rk__web_stream_begin(wclient *c);
int rk__web_stream_send(wclient *c, wframe *f);
void rk__web_client_close(wclient *c);
/* Frames. */
wframe *rk__web_frame_new(const char *data, size_t len);
void rk__web_frame_unref(wframe *f);
/* The value of query parameter name in the query string q (after '?'),
 * percent-decoded into out; 1 found, 0 not. */
int rk__web_query_param(const char *q, const char *name, char *out, size_t outlen);
/* A Redis command on the query connection for client c. cb always runs,
 * also when c closed meanwhile (so that it frees arg): responding to a
 * closed client does nothing, and querying for it fails. -1 when not
 * connected or c is closing (nothing sent). */
typedef void rk__web_reply_cb(wclient *c, struct redisReply *reply, void *arg);
int rk__web_query(wclient *c, rk__web_reply_cb *cb, void *arg, int argc, const char **argv);

/* sse.c */
int rk__web_sse_init(web *w);
void rk__web_sse_free(web *w);
void rk__web_sse_redis_up(web *w);          /* the feed connection became ready */
void rk__web_sse_redis_down(web *w);
void rk__web_sse_open(wclient *c);          /* GET /api/events, access checked */
void rk__web_sse_client_gone(wclient *c);   /* unlink from w->streams */
int rk__web_wid_parse(const char *s, size_t len, wid *out);
int rk__web_wid_cmp(wid a, wid b);

/* api.c */
void rk__web_api_dispatch(wclient *c, const char *path, const char *query);
void rk__web_api_metrics(wclient *c);

/* names.c */
void rk__web_api_names(wclient *c);         /* GET /api/names */
void rk__web_names_free(web *w);

/* assets.c (generated) */
typedef struct web_asset {
    const char *path;                   /* "/", "/app.js" ... */
    const char *ctype;
    const unsigned char *data;
    size_t len;
} web_asset;
extern const web_asset rk__web_assets[];
extern const size_t rk__web_n_assets;

#endif
