/* daemon/riskctl/dead.c - riskctl dead [list | show ID | count]: the
 * dead-letter stream, read by an operator.
 *
 * riskd writes an entry it cannot apply to riskd:dead with the fields
 * stream (the input stream's key), id (the entry's id there), error (one
 * line naming the field) and data (the original value, cut to 64 KiB).
 * list reads the stream from --since (XRANGE in pages of PAGE entries),
 * keeps the entries of --stream, and prints them grouped by the kind of
 * their error, in the order the kinds first appear, oldest first within a
 * kind; count prints how many entries each kind has; show prints one
 * entry whole. The kind of an error is its text up to " (" or a second
 * ": " (the detail that differs from entry to entry: a parser's column,
 * an index), with array indices "[3]" written "[]": "score: expected an
 * integer from 1 to 5", "data: not valid JSON", "officers[]: expected a
 * non-empty string". --json prints the same as one JSON document. What
 * comes from Redis goes through rk__ctl_put_clean(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

#define PAGE            1000
#define PAYLOAD_SHOWN   60          /* bytes of data in a list line */
#define KIND_MAX        96

/* The kind of error text e into out (see the file comment). */
static void error_kind(const char *e, char *out, size_t len)
{
    const char *first = strstr(e, ": "), *paren = strstr(e, " (");
    const char *second = first ? strstr(first + 2, ": ") : NULL;
    size_t n = strlen(e), w = 0, i;
    if (paren != NULL && (size_t)(paren - e) < n)
        n = (size_t)(paren - e);
    if (second != NULL && (size_t)(second - e) < n)
        n = (size_t)(second - e);
    for (i = 0; i < n && w + 1 < len; i++) {
        if (e[i] == '[') {
            size_t j = i + 1;
            while (j < n && e[j] >= '0' && e[j] <= '9')
                j++;
            if (j > i + 1 && j < n && e[j] == ']') {
                if (w + 3 >= len)
                    break;
                out[w++] = '[';
                out[w++] = ']';
                i = j;
                continue;
            }
        }
        out[w++] = e[i];
    }
    out[w] = '\0';
}

/* The value of field name in a stream entry's field array, or NULL. */
static const redisReply *field(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    return NULL;
}

static const char *str_of(const redisReply *r)
{
    return r != NULL ? r->str : "";
}

/* A JSON string of the len bytes at s: as they are when they are UTF-8,
 * else with every byte from 0x80 and every NUL made '?' (a dead letter is
 * input riskd refused, so anything may be in it). NULL when out of memory. */
static json_t *safe_string(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    char *c;
    if (j != NULL || (c = malloc(len + 1)) == NULL)
        return j;
    for (size_t i = 0; i < len; i++)
        c[i] = (unsigned char)s[i] >= 0x80 || s[i] == '\0' ? '?' : s[i];
    c[len] = '\0';
    j = json_stringn(c, len);
    free(c);
    return j;
}

static json_t *field_json(const redisReply *fields, const char *name)
{
    const redisReply *r = field(fields, name);
    return r != NULL ? safe_string(r->str, r->len) : json_string("");
}

/* One dead letter as JSON: its id in riskd:dead, when it was written
 * (RFC 3339 at tz), the source stream and id, the error, its kind and the
 * data. NULL when out of memory. */
static json_t *letter_json(const char *id, const redisReply *fields, int tz)
{
    char when[48], kind[KIND_MAX];
    json_t *j;
    rk__format_rfc3339(strtoll(id, NULL, 10), tz, when, sizeof(when));
    error_kind(str_of(field(fields, "error")), kind, sizeof(kind));
    j = json_object();
    if (j == NULL ||
        json_object_set_new(j, "id", json_string(id)) != 0 ||
        json_object_set_new(j, "time", json_string(when)) != 0 ||
        json_object_set_new(j, "stream", field_json(fields, "stream")) != 0 ||
        json_object_set_new(j, "entry", field_json(fields, "id")) != 0 ||
        json_object_set_new(j, "error", field_json(fields, "error")) != 0 ||
        json_object_set_new(j, "kind", safe_string(kind, strlen(kind))) != 0 ||
        json_object_set_new(j, "data", field_json(fields, "data")) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The input stream --stream names: a key, or "scan"/"case" for cfg's. */
static const char *stream_filter(const rk__config *cfg, const char *s)
{
    if (s == NULL)
        return NULL;
    if (strcmp(s, "scan") == 0)
        return cfg->stream_key[RK_STREAM_SCAN];
    if (strcmp(s, "case") == 0)
        return cfg->stream_key[RK_STREAM_CASE];
    return s;
}

/* Read the dead letters from start (an XRANGE bound) on, keeping those of
 * stream (NULL: all), into kinds in first-seen order: {kind: [letter,
 * ...]}, or with counting {kind: count} (nothing else is kept, so counting
 * a long stream takes little memory). Returns EX_OK, EX_FAIL or EX_REDIS
 * (after printing). */
static int gather(conn *k, const rk__config *cfg, const char *start, const char *stream,
                  int counting, json_t *kinds)
{
    char from[64];
    snprintf(from, sizeof(from), "%s", start);
    for (;;) {
        redisReply *r = redisCommand(k->c, "XRANGE %s %s + COUNT %d", RK_DEAD_STREAM, from,
                                     PAGE);
        size_t i;
        if (rk__ctl_reply_ok(k, r, "XRANGE " RK_DEAD_STREAM) != 0 ||
            r->type != REDIS_REPLY_ARRAY) {
            int lost = r == NULL;
            freeReplyObject(r);
            return lost ? EX_REDIS : EX_FAIL;
        }
        for (i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            json_t *l, *list;
            const char *kind;
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(from, sizeof(from), "(%s", e->element[0]->str);
            if (stream != NULL && strcmp(str_of(field(e->element[1], "stream")), stream) != 0)
                continue;
            if (counting) {
                char kb[KIND_MAX];
                json_t *c;
                error_kind(str_of(field(e->element[1], "error")), kb, sizeof(kb));
                c = json_object_get(kinds, kb);
                if (json_object_set_new(kinds, kb, json_integer(json_integer_value(c) + 1)) != 0)
                    goto oom;
                continue;
            }
            if ((l = letter_json(e->element[0]->str, e->element[1], cfg->tz_offset_s)) == NULL)
                goto oom;
            kind = json_string_value(json_object_get(l, "kind"));
            if ((list = json_object_get(kinds, kind)) == NULL) {
                if (json_object_set_new(kinds, kind, json_array()) != 0)
                    goto oom_l;
                list = json_object_get(kinds, kind);
            }
            if (json_array_append_new(list, l) != 0)
                goto oom;
            continue;
oom_l:
            json_decref(l);
oom:
            freeReplyObject(r);
            rk__ctl_errx("out of memory");
            return EX_FAIL;
        }
        i = r->elements;
        freeReplyObject(r);
        if (i < PAGE)
            return EX_OK;
    }
}

/* Print s cut to max bytes (at a UTF-8 boundary), then "..." when cut. */
static void put_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        rk__ctl_put_clean(stdout, s);
        return;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    char *c = strndup(s, max);
    if (c != NULL)
        rk__ctl_put_clean(stdout, c);
    free(c);
    fputs("...", stdout);
}

static void print_list(const json_t *kinds)
{
    const char *kind;
    json_t *list, *l;
    size_t i;
    json_object_foreach((json_t *)(uintptr_t)kinds, kind, list) {
        printf("== ");
        rk__ctl_put_clean(stdout, kind);
        printf(" (%zu)\n", json_array_size(list));
        json_array_foreach(list, i, l) {
            printf("  %s  %s  ", json_string_value(json_object_get(l, "id")),
                   json_string_value(json_object_get(l, "time")));
            rk__ctl_put_clean(stdout, json_string_value(json_object_get(l, "stream")));
            fputc('/', stdout);
            rk__ctl_put_clean(stdout, json_string_value(json_object_get(l, "entry")));
            fputs("\n    error: ", stdout);
            rk__ctl_put_clean(stdout, json_string_value(json_object_get(l, "error")));
            fputs("\n    data:  ", stdout);
            put_cut(json_string_value(json_object_get(l, "data")), PAYLOAD_SHOWN);
            fputc('\n', stdout);
        }
    }
}

static int print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(2));
    if (s == NULL) {
        rk__ctl_errx("out of memory");
        return EX_FAIL;
    }
    puts(s);
    free(s);
    return EX_OK;
}

/* riskctl dead show ID. */
static int dead_show(conn *k, const rk__config *cfg, const opts *o, const char *id)
{
    redisReply *r;
    json_t *l;
    int rc;

    r = redisCommand(k->c, "XRANGE %s %s %s", RK_DEAD_STREAM, id, id);
    if (rk__ctl_reply_ok(k, r, "XRANGE " RK_DEAD_STREAM) != 0 || r->type != REDIS_REPLY_ARRAY) {
        int lost = r == NULL;
        freeReplyObject(r);
        return lost ? EX_REDIS : EX_FAIL;
    }
    if (r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements < 2) {
        freeReplyObject(r);
        rk__ctl_errx("dead show: no dead letter %s in %s", id, RK_DEAD_STREAM);
        return EX_FAIL;
    }
    l = letter_json(id, r->element[0]->element[1], cfg->tz_offset_s);
    freeReplyObject(r);
    if (l == NULL) {
        rk__ctl_errx("out of memory");
        return EX_FAIL;
    }
    if (o->json) {
        rc = print_json(l);
    } else {
        static const char *const keys[] = {"id", "time", "stream", "entry", "error", "kind",
                                           "data"};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            printf("%-7s ", keys[i]);
            rk__ctl_put_clean(stdout, json_string_value(json_object_get(l, keys[i])));
            fputc('\n', stdout);
        }
        rc = EX_OK;
    }
    json_decref(l);
    return rc;
}

int rk__ctl_dead(const rk__config *cfg, const opts *o, int argc, char **argv)
{
    const char *what = argc > 0 ? argv[0] : "list";
    const char *stream = stream_filter(cfg, o->stream);
    char start[48] = "-";
    json_t *kinds = NULL;
    conn k;
    int rc;

    if (strcmp(what, "list") != 0 && strcmp(what, "show") != 0 && strcmp(what, "count") != 0) {
        rk__ctl_errx("dead: unknown command '%s' (known: list, show, count)", what);
        return EX_FAIL;
    }
    if (argc != (strcmp(what, "show") == 0 ? 2 : argc > 0 ? 1 : 0)) {
        rk__ctl_errx(strcmp(what, "show") == 0 ? "dead show: expected one entry id"
                                               : "dead %s: takes no arguments", what);
        return EX_FAIL;
    }
    if (strcmp(what, "show") == 0) {
        if (!rk__ctl_is_entry_id(argv[1])) {
            fputs("riskctl: dead show: expected a dead letter's entry id (1740793800000-0), "
                  "got '", stderr);
            rk__ctl_put_clean(stderr, argv[1]);
            fputs("'\n", stderr);
            return EX_FAIL;
        }
        if (o->since != NULL || o->stream != NULL) {
            rk__ctl_errx("dead show: --since and --stream are options of list and count");
            return EX_FAIL;
        }
    }
    if (o->since != NULL) {
        int64_t ms;
        if (rk__ctl_parse_past("--since", NULL, o->since, rk__wall_ms(), &ms) != 0)
            return EX_FAIL;
        snprintf(start, sizeof(start), "%lld", (long long)(ms < 0 ? 0 : ms));
    }
    if (o->stream != NULL && (o->stream[0] == '\0' || strlen(o->stream) > 512)) {
        rk__ctl_errx("--stream: expected an input stream's key, or scan or case");
        return EX_FAIL;
    }
    if (rk__ctl_conn_init(&k, cfg, o) != 0)
        return EX_REDIS;
    if (strcmp(what, "show") == 0) {
        rc = dead_show(&k, cfg, o, argv[1]);
        rk__ctl_conn_close(&k);
        return rc;
    }
    if ((kinds = json_object()) == NULL) {
        rk__ctl_conn_close(&k);
        rk__ctl_errx("out of memory");
        return EX_FAIL;
    }
    rc = gather(&k, cfg, start, stream, what[0] == 'c', kinds);
    rk__ctl_conn_close(&k);
    if (rc == EX_OK && what[0] == 'l') {
        if (o->json) {
            json_t *all = json_array(), *list, *l;
            const char *kind;
            size_t i;
            json_object_foreach(kinds, kind, list)
                json_array_foreach(list, i, l)
                    json_array_append(all, l);
            rc = all ? print_json(all) : EX_FAIL;
            json_decref(all);
        } else if (json_object_size(kinds) == 0) {
            printf("no dead letters\n");
        } else {
            print_list(kinds);
        }
    } else if (rc == EX_OK && o->json) {
        rc = print_json(kinds);
    } else if (rc == EX_OK) {
        const char *kind;
        json_t *n;
        long long total = 0;
        json_object_foreach(kinds, kind, n) {
            printf("%8lld  ", (long long)json_integer_value(n));
            rk__ctl_put_clean(stdout, kind);
            fputc('\n', stdout);
            total += json_integer_value(n);
        }
        printf("%8lld  total\n", total);
    }
    json_decref(kinds);
    return rc;
}
