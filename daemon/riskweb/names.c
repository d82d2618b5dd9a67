/* names.c - /api/names: the names reference list for the page.
 *
 * Bureaus load the names of units, officers, enterprises ... with
 * `riskctl lists load names FILE` (daemon/lib/lists.c): a hash
 * riskd:lists:{lists}:names of rows {"kind","id","name"} as compact JSON,
 * its version in the hash riskd:lists:{lists}:version (field "names").
 * riskweb answers GET /api/names with
 *
 *   {"version": N, "unit": {"U1": "name", ...}, "officer": {...}, ...}
 *
 * (one object per kind that has rows; version 0 and nothing else when no
 * list was ever loaded). The document is built once per version and kept:
 * each request reads only the version (HGET) and sends the kept bytes
 * while it is unchanged; a new version is read whole (HVALS) and replaces
 * them. The version is read before the rows, so a load landing in between
 * leaves the kept document tagged older than it is and the next request
 * reads it again - never newer rows under an older tag the other way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <hiredis/hiredis.h>

#include "riskweb/riskweb.h"

#define NAMES_KEY RK_LISTS_PREFIX "names"

/* The version travels to on_rows as the callback's argument itself
 * (nothing allocated: a client that goes away meanwhile drops the reply
 * and its argument with it). */
#define VERSION_ARG(v) ((void *)(uintptr_t)(v))
#define ARG_VERSION(a) ((long long)(uintptr_t)(a))

static void respond_kept(wclient *c)
{
    web *w = c->w;
    rk__web_respond(c, 200, "application/json; charset=utf-8", NULL, w->names_body,
                    w->names_len, 0);
}

static void on_rows(wclient *c, redisReply *reply, void *arg)
{
    long long version = ARG_VERSION(arg);
    web *w = c->w;
    json_t *doc;
    char *s;
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        rk__web_respond_text(c, 503, reply && reply->type == REDIS_REPLY_ERROR
                                         ? "Redis refused the read\n" : "Redis lost\n");
        return;
    }
    doc = json_object();
    if (doc != NULL)
        json_object_set_new(doc, "version", json_integer(version));
    for (i = 0; i < reply->elements && doc != NULL; i++) {
        const redisReply *v = reply->element[i];
        json_t *row, *per;
        const char *kind, *id, *name;
        if (v->type != REDIS_REPLY_STRING ||
            (row = json_loadb(v->str, v->len, 0, NULL)) == NULL)
            continue;
        kind = json_string_value(json_object_get(row, "kind"));
        id = json_string_value(json_object_get(row, "id"));
        name = json_string_value(json_object_get(row, "name"));
        /* riskctl checked every row; a row that is not one is skipped */
        if (kind != NULL && id != NULL && name != NULL && strcmp(kind, "version") != 0) {
            if ((per = json_object_get(doc, kind)) == NULL) {
                per = json_object();
                json_object_set_new(doc, kind, per);
            }
            if (json_is_object(per))
                json_object_set_new(per, id, json_string(name));
        }
        json_decref(row);
    }
    s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (s == NULL) {
        rk__web_respond_text(c, 500, "out of memory\n");
        return;
    }
    /* A newer document already kept (a concurrent request) stays. */
    if (w->names_body == NULL || version >= w->names_version) {
        free(w->names_body);
        w->names_body = s;
        w->names_len = strlen(s);
        w->names_version = version;
        respond_kept(c);
    } else {
        rk__web_respond(c, 200, "application/json; charset=utf-8", NULL, s, strlen(s), 1);
    }
}

static void on_version(wclient *c, redisReply *reply, void *arg)
{
    web *w = c->w;
    const char *argv[2] = {"HVALS", NAMES_KEY};
    long long v = 0;
    char *end;

    (void)arg;
    if (reply == NULL || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
        rk__web_respond_text(c, 503, reply && reply->type == REDIS_REPLY_ERROR
                                         ? "Redis refused the read\n" : "Redis lost\n");
        return;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        v = strtoll(reply->str, &end, 10);
        if (end == reply->str || *end != '\0' || v < 0 || (uintmax_t)v > UINTPTR_MAX)
            v = 0;
    }
    if (w->names_body != NULL && v == w->names_version) {
        respond_kept(c);
        return;
    }
    if (rk__web_query(c, on_rows, VERSION_ARG(v), 2, argv) != 0)
        rk__web_respond_text(c, 503, "unavailable (no Redis connection)\n");
}

void rk__web_api_names(wclient *c)
{
    const char *argv[3] = {"HGET", RK_LISTS_VERSION_KEY, "names"};

    if (rk__web_query(c, on_version, NULL, 3, argv) != 0)
        rk__web_respond_text(c, 503, "unavailable (no Redis connection)\n");
}

void rk__web_names_free(web *w)
{
    free(w->names_body);
    w->names_body = NULL;
    w->names_len = 0;
}
