/* httpreq.c - one HTTP/1.x request, read from a connection in pieces.
 *
 * The servers (riskd's /metrics and /healthz, and riskweb) parse requests
 * with libhttp-parser through this one object, so that every bound is
 * enforced in one place and one fuzz target (tests/fuzz/fuzz-http.c)
 * covers it: at most RK_HTTPREQ_MAX bytes of request head, a URL of at
 * most RK_HTTPREQ_URL_MAX bytes, RK_HTTPREQ_HEADERS_MAX header lines, and
 * only the headers a caller asked for are kept (each value up to
 * RK_HTTPREQ_VALUE_MAX bytes; a longer one counts as absent and marks the
 * request bad). A body is read and dropped (none of our endpoints takes
 * one; its bytes count against RK_HTTPREQ_MAX), so a POST still reaches
 * the caller, which answers 405. One request per connection: what follows
 * the first is ignored.
 *
 * rk__httpreq_feed answers 0 while more is needed, 1 once the request is
 * complete, or the HTTP status to refuse it with (400, 414, 431). */
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "internal.h"

static int on_message_begin(http_parser *p)
{
    rk__httpreq *r = p->data;
    r->url_len = 0;
    r->url[0] = '\0';
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    rk__httpreq *r = p->data;
    if (r->refuse || len > RK_HTTPREQ_URL_MAX - r->url_len) {
        r->refuse = 414;
        return 0;
    }
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

/* A header's name arrives in pieces; so does its value. cur is the wanted
 * header the name matched (-1 none), decided when the value begins. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    rk__httpreq *r = p->data;
    if (r->in_value || r->nheaders == 0) {
        if (++r->nheaders > RK_HTTPREQ_HEADERS_MAX) {
            r->refuse = 431;
            return 0;
        }
        r->in_value = 0;
        r->name_len = 0;
        r->name_overflow = 0;
    }
    if (len > sizeof(r->name) - 1 - r->name_len) {
        r->name_overflow = 1;
        return 0;
    }
    memcpy(r->name + r->name_len, at, len);
    r->name_len += len;
    r->name[r->name_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    rk__httpreq *r = p->data;
    if (!r->in_value) {
        size_t i;
        r->in_value = 1;
        r->cur = -1;
        for (i = 0; !r->name_overflow && i < r->nwant; i++)
            if (strcasecmp(r->name, r->want[i]) == 0) {
                r->cur = (int)i;
                r->value_len[i] = 0;
                r->have[i] = 1;
                break;
            }
    }
    if (r->cur >= 0) {
        size_t i = (size_t)r->cur;
        if (len > RK_HTTPREQ_VALUE_MAX - r->value_len[i]) {
            r->have[i] = 0;
            r->refuse = 431;
            return 0;
        }
        memcpy(r->value[i] + r->value_len[i], at, len);
        r->value_len[i] += len;
        r->value[i][r->value_len[i]] = '\0';
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    rk__httpreq *r = p->data;
    r->complete = 1;
    http_parser_pause(p, 1);        /* one request per connection */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

void rk__httpreq_init(rk__httpreq *r, const char *const *want, size_t nwant)
{
    memset(r, 0, sizeof(*r));
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->nwant = nwant < RK_HTTPREQ_WANT_MAX ? nwant : RK_HTTPREQ_WANT_MAX;
    if (r->nwant > 0)
        memcpy(r->want, want, r->nwant * sizeof(*want));
    r->cur = -1;
}

int rk__httpreq_feed(rk__httpreq *r, const char *buf, size_t len)
{
    size_t parsed;
    if (r->complete)
        return r->refuse ? r->refuse : 1;
    if (len > RK_HTTPREQ_MAX - r->received)
        return 431;
    r->received += len;
    parsed = http_parser_execute(&r->parser, &settings, buf, len);
    if (r->refuse)
        return r->refuse;
    if (r->complete)
        return 1;
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || parsed != len || r->parser.upgrade)
        return 400;
    return 0;
}

const char *rk__httpreq_path(rk__httpreq *r, const char **query)
{
    char *q = strchr(r->url, '?');
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    }
    if (query != NULL)
        *query = r->query;
    return r->url;
}

int rk__httpreq_method(const rk__httpreq *r)
{
    return (int)r->parser.method;
}

const char *rk__httpreq_header(const rk__httpreq *r, size_t i)
{
    return i < r->nwant && r->have[i] ? r->value[i] : NULL;
}
