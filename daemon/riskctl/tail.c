/* daemon/riskctl/tail.c - riskctl tail: follow the alert stream.
 *
 * XREAD BLOCK on the alert stream from the newest entry (or --from: an
 * entry id, exclusive; a time or a duration back from now, the entries
 * written at or after it, as entry ids carry the ms they were added), one
 * line per alert, filtered by --detector and --severity, until --count
 * alerts were printed or for ever. A lost connection is re-opened with a
 * backoff from 250 ms to 5 s, keeping the position. Alert text goes
 * through rk__ctl_put_clean(); colour only on a terminal without NO_COLOR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

#define TAIL_BLOCK_MS    5000
#define TAIL_BATCH       100

typedef struct tail_state {
    int colour;
    int min_sev;                    /* -1: any */
    const char *detector;
    long long printed;
} tail_state;

static int severity_rank(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "info") == 0)
        return 0;
    if (strcmp(s, "warning") == 0)
        return 1;
    if (strcmp(s, "critical") == 0)
        return 2;
    return -1;
}

/* Print one alert (the JSON text of an entry's data field) as one line,
 * unless the filters of t drop it. Returns 1 when printed, 0 otherwise. */
static int print_alert(tail_state *t, const char *entry_id, const char *data, size_t len)
{
    static const char *const sev_colour[3] = {"\033[36m", "\033[33m", "\033[1;31m"};
    json_error_t jerr;
    json_t *a = json_loadb(data, len, 0, &jerr), *subj, *v;
    const char *sev, *det, *rule, *ts, *summary, *key;
    char sevbuf[16];
    int rank, silenced;
    size_t i;

    if (a == NULL || !json_is_object(a)) {
        fprintf(stderr, "riskctl: entry %s is not an alert JSON object\n", entry_id);
        json_decref(a);
        return 0;
    }
    sev = json_string_value(json_object_get(a, "severity"));
    det = json_string_value(json_object_get(a, "detector"));
    rule = json_string_value(json_object_get(a, "rule"));
    ts = json_string_value(json_object_get(a, "ts"));
    summary = json_string_value(json_object_get(a, "summary"));
    silenced = json_is_true(json_object_get(a, "silenced"));
    subj = json_object_get(a, "subject");
    rank = severity_rank(sev);
    if ((t->detector != NULL && (det == NULL || strcmp(det, t->detector) != 0)) ||
        (t->min_sev >= 0 && rank < t->min_sev)) {
        json_decref(a);
        return 0;
    }
    for (i = 0; i + 1 < sizeof(sevbuf) && sev != NULL && sev[i]; i++)
        sevbuf[i] = (char)(sev[i] >= 'a' && sev[i] <= 'z' ? sev[i] - 'a' + 'A' : sev[i]);
    sevbuf[i] = '\0';
    if (t->colour)
        fputs(silenced ? "\033[2m" : "", stdout);
    rk__ctl_put_clean(stdout, ts ? ts : "-");
    fputs("  ", stdout);
    if (t->colour && !silenced && rank >= 0)
        fputs(sev_colour[rank], stdout);
    rk__ctl_put_clean(stdout, sev ? sevbuf : "?");
    if (t->colour && !silenced && rank >= 0)
        fputs("\033[0m", stdout);
    printf("%*s", (int)(sizeof("CRITICAL") - 1 - strlen(sev ? sevbuf : "?")), "");
    fputs(silenced ? "  [silenced] " : "  ", stdout);
    rk__ctl_put_clean(stdout, det ? det : "?");
    fputc('/', stdout);
    rk__ctl_put_clean(stdout, rule ? rule : "?");
    fputs(" ", stdout);
    json_object_foreach(subj, key, v) {
        fputc(' ', stdout);
        rk__ctl_put_clean(stdout, key);
        fputc('=', stdout);
        rk__ctl_put_clean(stdout, json_is_string(v) ? json_string_value(v) : "?");
    }
    if (summary != NULL) {
        fputs("  ", stdout);
        rk__ctl_put_clean(stdout, summary);
    }
    if (t->colour && silenced)
        fputs("\033[0m", stdout);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(a);
    t->printed++;
    return 1;
}

/* Print the entries of one XREAD reply and remember the last id in last.
 * Stops once count alerts were printed (count 0: never). */
static void tail_reply(tail_state *t, const redisReply *r, char *last, size_t lastlen,
                       long long count)
{
    size_t i, k;
    const redisReply *entries;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements < 2)
        return;
    entries = r->element[0]->element[1];
    if (entries->type != REDIS_REPLY_ARRAY)
        return;
    for (i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i], *f;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        snprintf(last, lastlen, "%s", e->element[0]->str);
        f = e->element[1];
        if (f->type != REDIS_REPLY_ARRAY)
            continue;
        for (k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(f->element[k]->str, "data") == 0 &&
                f->element[k + 1]->type == REDIS_REPLY_STRING)
                print_alert(t, e->element[0]->str, f->element[k + 1]->str,
                            f->element[k + 1]->len);
        if (count > 0 && t->printed >= count)
            return;
    }
}

/* The id of the newest entry of stream (for "from now on"), "0-0" when
 * the stream is empty or missing. Returns 0 or -1 after printing. */
static int stream_last_id(conn *k, const char *stream, char *out, size_t outlen)
{
    redisReply *r = redisCommand(k->c, "XREVRANGE %s + - COUNT 1", stream);
    if (rk__ctl_reply_ok(k, r, "XREVRANGE") != 0) {
        freeReplyObject(r);
        return -1;
    }
    snprintf(out, outlen, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(out, outlen, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    return 0;
}

/* riskctl tail: follow cfg's alert stream and print one line per alert.
 * A lost connection is re-opened with backoff (the position is kept).
 * Returns the exit code. */
int rk__ctl_tail(const rk__config *cfg, const opts *o)
{
    tail_state t;
    conn k;
    char last[64], from[64] = "", err[RK_ERRLEN];
    const char *nc = getenv("NO_COLOR");
    int backoff = 250;

    memset(&t, 0, sizeof(t));
    t.colour = isatty(STDOUT_FILENO) && nc == NULL;
    t.min_sev = -1;
    t.detector = o->detector;
    if (o->severity != NULL && (t.min_sev = severity_rank(o->severity)) < 0) {
        rk__ctl_errx("--severity: expected info, warning or critical");
        return EX_FAIL;
    }
    if (o->detector != NULL && !rk__ctl_is_name(o->detector)) {
        rk__ctl_errx("--detector: expected a detector name ([a-z0-9_]+)");
        return EX_FAIL;
    }
    if (rk__ctl_check_names(cfg, o) != 0)
        return EX_FAIL;
    if (o->from != NULL && strcmp(o->from, "$") != 0 && !rk__ctl_is_entry_id(o->from)) {
        /* A time: the entries from it on, so XREAD after its ms - 1. */
        int64_t ms;
        if (rk__ctl_parse_past("--from", "a stream entry id (1740793800000-0, 0 for all), ",
                               o->from, rk__wall_ms(), &ms) != 0)
            return EX_FAIL;
        if (ms <= 0)
            snprintf(from, sizeof(from), "0");
        else
            snprintf(from, sizeof(from), "%lld-%llu", (long long)(ms - 1),
                     (unsigned long long)UINT64_MAX);
    } else if (o->from != NULL) {
        snprintf(from, sizeof(from), "%s", o->from);
    }
    if (rk__ctl_conn_init(&k, cfg, o) != 0)
        return EX_REDIS;
    if (from[0] != '\0' && strcmp(from, "$") != 0)
        snprintf(last, sizeof(last), "%s", from);
    else if (stream_last_id(&k, cfg->alerts_stream, last, sizeof(last)) != 0)
        goto fail;
    {
        struct timeval tv = {TAIL_BLOCK_MS / 1000 + REPLY_TIMEOUT_S, 0};
        redisSetTimeout(k.c, tv);
    }
    while (o->count == 0 || t.printed < o->count) {
        redisReply *r;
        if (k.c == NULL) {
            if (rk__ctl_conn_open(&k, err, sizeof(err)) != 0) {
                rk__ctl_errx("%s (retrying)", err);
                usleep((useconds_t)backoff * 1000);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            struct timeval tv = {TAIL_BLOCK_MS / 1000 + REPLY_TIMEOUT_S, 0};
            redisSetTimeout(k.c, tv);
            backoff = 250;
        }
        r = redisCommand(k.c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", TAIL_BATCH,
                         TAIL_BLOCK_MS, cfg->alerts_stream, last);
        if (r == NULL) {
            rk__ctl_errx("lost Redis at %s:%d: %s; reconnecting", k.host, k.port, k.c->errstr);
            rk__ctl_conn_close(&k);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            rk__ctl_errx("XREAD %s: %s", cfg->alerts_stream, r->str);
            freeReplyObject(r);
            goto fail;
        }
        tail_reply(&t, r, last, sizeof(last), o->count);
        freeReplyObject(r);
    }
    rk__ctl_conn_close(&k);
    return EX_OK;
fail:
    {
        int rc = rk__ctl_fail_code(&k);
        rk__ctl_conn_close(&k);
        return rc;
    }
}
