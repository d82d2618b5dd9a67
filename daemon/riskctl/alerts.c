/* daemon/riskctl/alerts.c - riskctl alerts | ack | close: the operator's
 * side of an alert's lifecycle.
 *
 * An alert is open from "firing" until a resolved, retracted or closed
 * notice; the hash alerts.open_key maps every open alert's id to its
 * latest JSON ("status" firing or acknowledged, and the latest
 * "acknowledged": {"by", "note", "ts"}). Notices go to the alert stream
 * (field data) and the alert's channel like alerts, and are not published
 * when the alert was silenced.
 *
 * ack and close build the new JSON here, from the open hash's current
 * value, and hand it to one Lua script that writes only when that value
 * is still the current one (compare and set): HSET (ack) or HDEL (close)
 * the open hash, XADD the notice to the alert stream, PUBLISH it, XADD the
 * audit entry to riskd:audit, all or nothing. A concurrent change makes
 * the script answer "changed" and the command reads again and retries, so
 * ten operators acknowledging at once write ten notices and the hash ends
 * with one of them. close also sets the dedupe key
 * riskd:alert:<id>:closed (NX, EX alerts.dedupe_ttl), so an id is closed
 * at most once whoever closes it. An id that is not open is refused,
 * naming why from the dedupe keys (closed, resolved, retracted, or never
 * written here).
 *
 * alerts lists the open hash (--open) or the alert stream back to --since
 * (default 24 hours), newest first, each alert with the latest status its
 * notices give it; as a table (headers in alerts.language) or, with
 * --json, as one JSON array. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

#define AUDIT_STREAM    RK_AUDIT_STREAM
#define AUDIT_MAXLEN    "100000"            /* as the daemon trims it */
#define ACT_ATTEMPTS    200                 /* compare-and-set rounds */
#define MAX_BY          256
#define MAX_NOTE        4096
#define PAGE            1000                /* XREVRANGE / HSCAN batch */
#define DEF_SINCE       (24 * RK_HOUR)
#define DUMP_FLAGS      (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

/* ===================================================================
 * The scripts
 * =================================================================== */

/* KEYS: open hash, alert stream, audit stream. ARGV: id, the value read,
 * the new value, the notice, maxlen, channel ("" = no PUBLISH), who,
 * when. 1 written, 0 not open, -1 changed meanwhile. */
static const char ack_lua[] =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not cur then return 0 end\n"
    "if cur ~= ARGV[2] then return -1 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'data', ARGV[4])\n"
    "if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[4]) end\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', '" AUDIT_MAXLEN "', '*', 'who', ARGV[7],\n"
    "           'what', 'alert_acknowledged', 'when', ARGV[8], 'old', cur, 'new', ARGV[3])\n"
    "return 1\n";

/* KEYS: open hash, alert stream, audit stream, dedupe key. ARGV: id, the
 * value read, (unused), the notice, maxlen, channel, who, when, dedupe
 * ttl in s. 1 written, 0 not open, -1 changed meanwhile, 2 closed
 * before (the dedupe key exists). */
static const char close_lua[] =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not cur then return 0 end\n"
    "if cur ~= ARGV[2] then return -1 end\n"
    "if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[9]) then return 2 end\n"
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'data', ARGV[4])\n"
    "if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[4]) end\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', '" AUDIT_MAXLEN "', '*', 'who', ARGV[7],\n"
    "           'what', 'alert_closed', 'when', ARGV[8], 'old', cur, 'new', ARGV[4])\n"
    "return 1\n";

/* ===================================================================
 * Small helpers
 * =================================================================== */

static int is_en(const rk__config *cfg)
{
    return cfg->alerts_language != NULL && strcmp(cfg->alerts_language, "en") == 0;
}

/* True when s is an alert id: 32 lowercase hex digits. */
static int is_alert_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 32;
}

/* The dedupe key of id's notice of status: riskd:alert:<id>:<status>, on
 * a cluster in the alert stream's slot (riskd:alert:{<tag>}:<id>:<status>)
 * like the daemon's riskd:alert:<id>. status NULL: the alert's own key. */
static void dedupe_key(const rk__config *cfg, const char *id, const char *status,
                       char *out, size_t len)
{
    char tag[256];
    if (cfg->n_cluster > 0) {
        rk__slot_tag(cfg->alerts_stream, tag, sizeof(tag));
        snprintf(out, len, "riskd:alert:{%s}:%s%s%s", tag, id, status ? ":" : "",
                 status ? status : "");
    } else {
        snprintf(out, len, "riskd:alert:%s%s%s", id, status ? ":" : "", status ? status : "");
    }
}

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

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ===================================================================
 * ack and close
 * =================================================================== */

/* Why id is not open, from the dedupe keys: one line on stderr. Returns
 * EX_FAIL, or EX_REDIS when Redis was lost. */
static int not_open(conn *k, const rk__config *cfg, const char *id)
{
    static const char *const st[] = {"closed", "resolved", "retracted", NULL};
    char key[400];
    redisReply *r;
    int i;

    for (i = 0; st[i] != NULL; i++) {
        dedupe_key(cfg, id, st[i], key, sizeof(key));
        r = redisCommand(k->c, "EXISTS %s", key);
        if (rk__ctl_reply_ok(k, r, "EXISTS") != 0) {
            int lost = r == NULL;
            freeReplyObject(r);
            return lost ? EX_REDIS : EX_FAIL;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            freeReplyObject(r);
            rk__ctl_errx("alert %s is already %s", id, st[i]);
            return EX_FAIL;
        }
        freeReplyObject(r);
    }
    dedupe_key(cfg, id, NULL, key, sizeof(key));
    r = redisCommand(k->c, "EXISTS %s", key);
    if (rk__ctl_reply_ok(k, r, "EXISTS") != 0) {
        int lost = r == NULL;
        freeReplyObject(r);
        return lost ? EX_REDIS : EX_FAIL;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        rk__ctl_errx("alert %s is not open", id);
    else
        rk__ctl_errx("unknown alert id %s", id);
    freeReplyObject(r);
    return EX_FAIL;
}

/* The notice of an operator's action on the open alert cur: id, status,
 * detector, rule, severity, subject, summary copied, ts and emitted_at =
 * now (UTC), reason, by, note (when given), and the alert's silenced /
 * silenced_by. NULL when out of memory. */
static json_t *build_notice(const json_t *cur, const char *status, const char *when,
                            const char *reason, const char *by, const char *note)
{
    static const char *const copied[] = {
        "id", "status", "detector", "rule", "severity", "subject", "summary", NULL
    };
    json_t *n = json_object(), *v;
    int ok = n != NULL;

    for (size_t i = 0; ok && copied[i] != NULL; i++) {
        if (strcmp(copied[i], "status") == 0)
            ok = json_object_set_new(n, "status", json_string(status)) == 0;
        else if ((v = json_object_get(cur, copied[i])) != NULL)
            ok = json_object_set(n, copied[i], v) == 0;
    }
    ok = ok && json_object_set_new(n, "ts", json_string(when)) == 0 &&
         json_object_set_new(n, "emitted_at", json_string(when)) == 0 &&
         json_object_set_new(n, "reason", json_string(reason)) == 0 &&
         json_object_set_new(n, "by", json_string(by)) == 0 &&
         (note == NULL || json_object_set_new(n, "note", json_string(note)) == 0);
    if (ok && json_is_true(json_object_get(cur, "silenced"))) {
        ok = json_object_set_new(n, "silenced", json_true()) == 0;
        if (ok && (v = json_object_get(cur, "silenced_by")) != NULL)
            ok = json_object_set(n, "silenced_by", v) == 0;
    }
    if (!ok) {
        json_decref(n);
        return NULL;
    }
    return n;
}

/* The one sentence of reason for an operator's action, in the configured
 * language (the note is a field of its own). */
static void action_reason(const rk__config *cfg, int closing, const char *by,
                          char *out, size_t len)
{
    if (is_en(cfg))
        snprintf(out, len, "%s by %s.", closing ? "Closed" : "Acknowledged", by);
    else
        snprintf(out, len, "%s%s此预警。", by, closing ? "已关闭" : "已确认");
}

/* riskctl ack ID / riskctl close ID (closing != 0). Returns the exit
 * code. */
int rk__ctl_act(conn *k, const rk__config *cfg, const opts *o, const char *id, int closing)
{
    const char *what = closing ? "close" : "ack";
    char when[48], reason[MAX_BY + 64], dkey[400], maxlen[32], ttl[32];
    char channel[512];
    int attempt;

    if (!is_alert_id(id)) {
        rk__ctl_errx("%s: %s is not an alert id (32 lowercase hex digits)", what, id);
        return EX_FAIL;
    }
    if (o->by == NULL || o->by[0] == '\0' || strlen(o->by) > MAX_BY) {
        rk__ctl_errx("%s: --by NAME is required (1 to %d bytes)", what, MAX_BY);
        return EX_FAIL;
    }
    if (o->note != NULL && (o->note[0] == '\0' || strlen(o->note) > MAX_NOTE)) {
        rk__ctl_errx("%s: --note: expected a text of 1 to %d bytes", what, MAX_NOTE);
        return EX_FAIL;
    }
    dedupe_key(cfg, id, "closed", dkey, sizeof(dkey));
    snprintf(maxlen, sizeof(maxlen), "%lld", cfg->alerts_maxlen);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)((cfg->dedupe_ttl + 999) / 1000));
    action_reason(cfg, closing, o->by, reason, sizeof(reason));

    for (attempt = 0; attempt < ACT_ATTEMPTS; attempt++) {
        redisReply *r = redisCommand(k->c, "HGET %s %s", cfg->alerts_open_key, id);
        json_t *cur, *notice = NULL, *ack = NULL;
        char *njson = NULL, *ojson = NULL;
        const char *det;
        long long res;

        if (rk__ctl_reply_ok(k, r, "HGET") != 0) {
            int lost = r == NULL;
            freeReplyObject(r);
            return lost ? EX_REDIS : EX_FAIL;
        }
        if (r->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return not_open(k, cfg, id);
        }
        cur = json_loadb(r->str, r->len, 0, NULL);
        if (cur == NULL || !json_is_object(cur) || (det = jstr(cur, "detector")) == NULL) {
            rk__ctl_errx("%s: the open entry of %s is not an alert JSON object", what, id);
            json_decref(cur);
            freeReplyObject(r);
            return EX_FAIL;
        }
        rk__format_rfc3339(rk__wall_ms(), 0, when, sizeof(when));
        if (json_is_true(json_object_get(cur, "silenced")))
            channel[0] = '\0';
        else
            snprintf(channel, sizeof(channel), "%s%s", cfg->channel_prefix, det);
        notice = build_notice(cur, closing ? "closed" : "acknowledged", when, reason, o->by,
                              o->note);
        if (notice != NULL && !closing) {
            ack = json_object();
            if (ack == NULL || json_object_set_new(ack, "by", json_string(o->by)) != 0 ||
                (o->note && json_object_set_new(ack, "note", json_string(o->note)) != 0) ||
                json_object_set_new(ack, "ts", json_string(when)) != 0 ||
                json_object_set_new(cur, "status", json_string("acknowledged")) != 0 ||
                json_object_set(cur, "acknowledged", ack) != 0 ||
                (ojson = json_dumps(cur, DUMP_FLAGS)) == NULL) {
                json_decref(notice);
                notice = NULL;
            }
        }
        if (notice == NULL || (njson = json_dumps(notice, DUMP_FLAGS)) == NULL) {
            rk__ctl_errx("out of memory (or a text is not UTF-8)");
            json_decref(ack);
            json_decref(notice);
            json_decref(cur);
            free(ojson);
            freeReplyObject(r);
            return EX_FAIL;
        }
        {
            redisReply *e;
            if (closing)
                e = redisCommand(k->c, "EVAL %s 4 %s %s %s %s %s %s %s %s %s %s %s %s %s",
                                 close_lua, cfg->alerts_open_key, cfg->alerts_stream,
                                 AUDIT_STREAM, dkey, id, r->str, "", njson, maxlen, channel,
                                 o->by, when, ttl);
            else
                e = redisCommand(k->c, "EVAL %s 3 %s %s %s %s %s %s %s %s %s %s %s",
                                 ack_lua, cfg->alerts_open_key, cfg->alerts_stream,
                                 AUDIT_STREAM, id, r->str, ojson, njson, maxlen, channel,
                                 o->by, when);
            json_decref(ack);
            json_decref(notice);
            json_decref(cur);
            free(ojson);
            free(njson);
            freeReplyObject(r);
            if (rk__ctl_reply_ok(k, e, "EVAL") != 0) {
                int lost = e == NULL;
                freeReplyObject(e);
                return lost ? EX_REDIS : EX_FAIL;
            }
            res = e->type == REDIS_REPLY_INTEGER ? e->integer : -2;
            freeReplyObject(e);
        }
        if (res == 1) {
            if (is_en(cfg))
                printf("alert %s %s by ", id, closing ? "closed" : "acknowledged");
            else
                printf("预警 %s 已由 ", id);
            rk__ctl_put_clean(stdout, o->by);
            fputs(is_en(cfg) ? "\n" : (closing ? " 关闭\n" : " 确认\n"), stdout);
            return EX_OK;
        }
        if (res == 0)
            return not_open(k, cfg, id);
        if (res == 2) {
            rk__ctl_errx("alert %s is already closed", id);
            return EX_FAIL;
        }
        if (res != -1) {
            rk__ctl_errx("%s: unexpected reply from the script", what);
            return EX_FAIL;
        }
        usleep((useconds_t)(1000 + (attempt % 10) * 500));  /* changed: read again */
    }
    rk__ctl_errx("%s: alert %s kept changing under us; nothing was written", what, id);
    return EX_FAIL;
}

/* ===================================================================
 * alerts: the rows
 * =================================================================== */

typedef struct filter {
    const char *unit, *detector, *rule;
    int min_sev;                    /* -1 any */
    int64_t since;                  /* raised at or after (ms); INT64_MIN any */
} filter;

/* When the alert was raised (emitted_at, else ts), ms; INT64_MIN unknown. */
static int64_t raised_ms(const json_t *a)
{
    int64_t t;
    const char *s = jstr(a, "emitted_at");
    if (s != NULL && rk__parse_rfc3339(s, &t) == 0)
        return t;
    s = jstr(a, "ts");
    if (s != NULL && rk__parse_rfc3339(s, &t) == 0)
        return t;
    return INT64_MIN;
}

static int passes(const filter *f, const json_t *a)
{
    const char *s;
    if (f->detector && ((s = jstr(a, "detector")) == NULL || strcmp(s, f->detector) != 0))
        return 0;
    if (f->rule && ((s = jstr(a, "rule")) == NULL || strcmp(s, f->rule) != 0))
        return 0;
    if (f->unit && ((s = jstr(json_object_get(a, "subject"), "unit_id")) == NULL ||
                    strcmp(s, f->unit) != 0))
        return 0;
    if (f->min_sev >= 0 && severity_rank(jstr(a, "severity")) < f->min_sev)
        return 0;
    return 1;
}

/* Append the alert a (a reference is taken) to rows when f lets it pass. */
static void keep(json_t *rows, const filter *f, json_t *a)
{
    if (passes(f, a) && (f->since == INT64_MIN || raised_ms(a) >= f->since))
        json_array_append(rows, a);
}

static int by_raised_desc(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int64_t ta = raised_ms(a), tb = raised_ms(b);
    if (ta != tb)
        return ta > tb ? -1 : 1;
    return strcmp(jstr(a, "id") ? jstr(a, "id") : "", jstr(b, "id") ? jstr(b, "id") : "");
}

/* The open alerts (HSCAN of the open hash, ctlread.c) into rows, newest
 * first. Returns EX_OK or an exit code after printing. */
typedef struct keep_ud { json_t *rows; const filter *f; } keep_ud;
static void keep_cb(json_t *a, void *ud)
{
    keep_ud *k = ud;
    keep(k->rows, k->f, a);
}

static int rows_open(conn *k, const rk__config *cfg, const filter *f, json_t *rows)
{
    keep_ud ud = {rows, f};
    json_t **v;
    size_t i, n;
    int rc = rk__ctl_scan_open(k, cfg, keep_cb, &ud);

    if (rc != EX_OK)
        return rc;
    n = json_array_size(rows);
    if (n > 1 && (v = malloc(n * sizeof(*v))) != NULL) {
        for (i = 0; i < n; i++)
            v[i] = json_incref(json_array_get(rows, i));
        qsort(v, n, sizeof(*v), by_raised_desc);
        json_array_clear(rows);
        for (i = 0; i < n; i++)
            json_array_append_new(rows, v[i]);
        free(v);
    }
    return EX_OK;
}

/* The entry id just before id ("ms-seq"), for the next XREVRANGE page:
 * "" when id is the first possible one. */
static void id_before(const char *id, char *out, size_t len)
{
    unsigned long long ms = 0, seq = 0;
    if (sscanf(id, "%llu-%llu", &ms, &seq) < 1 || (ms == 0 && seq == 0))
        out[0] = '\0';
    else if (seq > 0)
        snprintf(out, len, "%llu-%llu", ms, seq - 1);
    else
        snprintf(out, len, "%llu-18446744073709551615", ms - 1);
}

/* Fold one stream entry (newest first) into seen (id -> {"alert",
 * "status", "acknowledged", "notices"}) and order (ids as raised, newest
 * first). */
static void fold(json_t *seen, json_t *order, json_t *e)
{
    const char *id = jstr(e, "id"), *st = jstr(e, "status");
    json_t *s;
    if (id == NULL)
        return;
    s = json_object_get(seen, id);
    if (s == NULL) {
        s = json_object();
        if (s == NULL || json_object_set_new(seen, id, s) != 0)
            return;
        json_object_set_new(s, "notices", json_array());
    }
    if (st == NULL || strcmp(st, "firing") == 0) {
        if (json_object_get(s, "alert") == NULL) {
            json_object_set(s, "alert", e);
            json_array_append_new(order, json_string(id));
        }
        return;
    }
    /* A notice: older ones come later, so the first is the latest. */
    json_array_insert(json_object_get(s, "notices"), 0, e);
    if (json_object_get(s, "status") == NULL)
        json_object_set_new(s, "status", json_string(st));
    if (strcmp(st, "acknowledged") == 0 && json_object_get(s, "acknowledged") == NULL) {
        json_t *ack = json_object();
        json_object_set(ack, "by", json_object_get(e, "by"));
        if (json_object_get(e, "note") != NULL)
            json_object_set(ack, "note", json_object_get(e, "note"));
        json_object_set(ack, "ts", json_object_get(e, "ts"));
        json_object_set_new(s, "acknowledged", ack);
    }
}

/* The alerts raised since f->since (XREVRANGE of the alert stream, pages
 * of PAGE) with their latest status, into rows, newest first. Each row is
 * the alert as written with "status" the latest, "acknowledged" the
 * latest acknowledgement and "notices" every notice, oldest first. */
static int rows_stream(conn *k, const rk__config *cfg, const filter *f, json_t *rows)
{
    json_t *seen = json_object(), *order = json_array();
    char end[64] = "+", start[32];
    size_t i;
    int rc = EX_OK;

    snprintf(start, sizeof(start), "%lld", (long long)(f->since < 0 ? 0 : f->since));
    while (end[0] != '\0') {
        redisReply *r = redisCommand(k->c, "XREVRANGE %s %s %s COUNT %d", cfg->alerts_stream,
                                     end, start, PAGE);
        if (rk__ctl_reply_ok(k, r, "XREVRANGE") != 0) {
            rc = r == NULL ? EX_REDIS : EX_FAIL;
            freeReplyObject(r);
            goto done;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            break;
        }
        for (i = 0; i < r->elements; i++) {
            const redisReply *ent = r->element[i], *fl;
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements < 2 ||
                ent->element[0]->type != REDIS_REPLY_STRING)
                continue;
            id_before(ent->element[0]->str, end, sizeof(end));
            fl = ent->element[1];
            for (size_t x = 0; fl->type == REDIS_REPLY_ARRAY && x + 1 < fl->elements; x += 2)
                if (fl->element[x]->type == REDIS_REPLY_STRING &&
                    strcmp(fl->element[x]->str, "data") == 0 &&
                    fl->element[x + 1]->type == REDIS_REPLY_STRING) {
                    json_t *e = json_loadb(fl->element[x + 1]->str, fl->element[x + 1]->len,
                                           0, NULL);
                    if (json_is_object(e))
                        fold(seen, order, e);
                    json_decref(e);
                }
        }
        if (r->elements < PAGE) {
            freeReplyObject(r);
            break;
        }
        freeReplyObject(r);
    }
    for (i = 0; i < json_array_size(order); i++) {
        json_t *s = json_object_get(seen, json_string_value(json_array_get(order, i)));
        json_t *a = json_deep_copy(json_object_get(s, "alert")), *st;
        if (a == NULL)
            continue;
        st = json_object_get(s, "status");
        json_object_set_new(a, "status", st ? json_incref(st) : json_string("firing"));
        if (json_object_get(s, "acknowledged") != NULL)
            json_object_set(a, "acknowledged", json_object_get(s, "acknowledged"));
        json_object_set(a, "notices", json_object_get(s, "notices"));
        if (passes(f, a))
            json_array_append(rows, a);
        json_decref(a);
    }
done:
    json_decref(seen);
    json_decref(order);
    return rc;
}

/* ===================================================================
 * alerts: the table
 * =================================================================== */

/* Display columns of UTF-8 text s (East Asian wide characters count 2). */
static size_t text_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p) {
        unsigned cp;
        int n;
        if (*p < 0x80) { cp = *p; n = 1; }
        else if ((*p & 0xe0) == 0xc0) { cp = *p & 0x1f; n = 2; }
        else if ((*p & 0xf0) == 0xe0) { cp = *p & 0x0f; n = 3; }
        else { cp = *p & 0x07; n = 4; }
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) { n = i; break; }
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        p += n;
        w += ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
              (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
              (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
              (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd)) ? 2 : 1;
    }
    return w;
}

/* A malloc'ed copy of s with control characters (C0, DEL, C1) replaced by
 * '?', so a crafted alert cannot drive the terminal. */
static char *clean_dup(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *d = malloc(n + 1);
    const unsigned char *p = (const unsigned char *)s;
    if (d == NULL)
        return NULL;
    for (; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            d[o++] = '?';
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            d[o++] = '?';
            p++;
        } else {
            d[o++] = (char)*p;
        }
    }
    d[o] = '\0';
    return d;
}

/* An age in the configured language: 45s, 12m, 5h3m, 2d4h. */
static void format_age(int en, int64_t ms, char *out, size_t len)
{
    long long s = ms < 0 ? 0 : ms / 1000;
    if (s < 60)
        snprintf(out, len, en ? "%llds" : "%lld秒", s);
    else if (s < 3600)
        snprintf(out, len, en ? "%lldm" : "%lld分钟", s / 60);
    else if (s < 86400)
        snprintf(out, len, en ? "%lldh%lldm" : "%lld小时%lld分", s / 3600, s % 3600 / 60);
    else
        snprintf(out, len, en ? "%lldd%lldh" : "%lld天%lld小时", s / 86400, s % 86400 / 3600);
}

static const char *status_text(int en, const char *st)
{
    static const char *const map[][3] = {
        {"firing", "firing", "告警中"}, {"acknowledged", "acknowledged", "已确认"},
        {"resolved", "resolved", "已解除"}, {"retracted", "retracted", "已撤回"},
        {"closed", "closed", "已关闭"}
    };
    for (size_t i = 0; st != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(st, map[i][0]) == 0)
            return map[i][en ? 1 : 2];
    return st ? st : "?";
}

static const char *severity_text(int en, const char *s)
{
    switch (severity_rank(s)) {
    case 0: return en ? "info" : "提示";
    case 1: return en ? "warning" : "警告";
    case 2: return en ? "critical" : "严重";
    default: return s ? s : "?";
    }
}

#define NCOL 8

/* Print rows as a table: id, detector/rule, severity, subject, status,
 * age, acknowledged by, summary (the last column unpadded). */
static void print_table(const rk__config *cfg, json_t *rows, int open)
{
    static const char *const head_en[NCOL] = {
        "ID", "DETECTOR/RULE", "SEVERITY", "SUBJECT", "STATUS", "AGE", "ACK BY", "SUMMARY"
    };
    static const char *const head_zh[NCOL] = {
        "编号", "检测器/规则", "级别", "对象", "状态", "时长", "确认人", "摘要"
    };
    int en = is_en(cfg);
    size_t n = json_array_size(rows), i, c, w[NCOL];
    char **cell = calloc((n + 1) * NCOL, sizeof(*cell));
    int64_t now = rk__wall_ms();

    if (cell == NULL) {
        rk__ctl_errx("out of memory");
        return;
    }
    for (c = 0; c < NCOL; c++)
        cell[c] = clean_dup(en ? head_en[c] : head_zh[c]);
    for (i = 0; i < n; i++) {
        json_t *a = json_array_get(rows, i), *subj = json_object_get(a, "subject"), *v;
        char **row = cell + (i + 1) * NCOL, buf[1024], age[64];
        const char *key, *by = jstr(json_object_get(a, "acknowledged"), "by");
        size_t len = 0;
        int64_t t = raised_ms(a);

        row[0] = clean_dup(jstr(a, "id") ? jstr(a, "id") : "?");
        snprintf(buf, sizeof(buf), "%s/%s", jstr(a, "detector") ? jstr(a, "detector") : "?",
                 jstr(a, "rule") ? jstr(a, "rule") : "?");
        row[1] = clean_dup(buf);
        row[2] = clean_dup(severity_text(en, jstr(a, "severity")));
        buf[0] = '\0';
        json_object_foreach(subj, key, v)
            if (len < sizeof(buf))
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s=%s",
                                        len ? " " : "", key,
                                        json_is_string(v) ? json_string_value(v) : "?");
        row[3] = clean_dup(buf[0] ? buf : "-");
        snprintf(buf, sizeof(buf), "%s%s", status_text(en, jstr(a, "status")),
                 json_is_true(json_object_get(a, "silenced")) ?
                 (en ? " (silenced)" : "（已屏蔽）") : "");
        row[4] = clean_dup(buf);
        if (t == INT64_MIN)
            snprintf(age, sizeof(age), "?");
        else
            format_age(en, now - t, age, sizeof(age));
        row[5] = clean_dup(age);
        row[6] = clean_dup(by ? by : "-");
        row[7] = clean_dup(jstr(a, "summary") ? jstr(a, "summary") : "");
    }
    for (c = 0; c < NCOL; c++) {
        w[c] = 0;
        for (i = 0; i <= n; i++)
            if (cell[i * NCOL + c] != NULL && text_width(cell[i * NCOL + c]) > w[c])
                w[c] = text_width(cell[i * NCOL + c]);
    }
    for (i = 0; i <= n; i++) {
        for (c = 0; c < NCOL; c++) {
            const char *s = cell[i * NCOL + c] ? cell[i * NCOL + c] : "?";
            fputs(s, stdout);
            if (c + 1 < NCOL)
                printf("%*s", (int)(w[c] - text_width(s) + 2), "");
        }
        fputc('\n', stdout);
    }
    for (i = 0; i < (n + 1) * NCOL; i++)
        free(cell[i]);
    free(cell);
    if (n == 0)
        puts(en ? (open ? "no open alerts" : "no alerts") :
             (open ? "没有未结的预警" : "没有预警"));
}

/* riskctl alerts. Returns the exit code. */
int rk__ctl_alerts(conn *k, const rk__config *cfg, const opts *o)
{
    filter f;
    json_t *rows = json_array();
    int64_t now = rk__wall_ms();
    int rc;

    memset(&f, 0, sizeof(f));
    f.unit = o->unit;
    f.detector = o->detector;
    f.rule = o->rule;
    f.min_sev = -1;
    f.since = o->open ? INT64_MIN : now - DEF_SINCE;
    if (rows == NULL) {
        rk__ctl_errx("out of memory");
        return EX_FAIL;
    }
    if (o->severity != NULL && (f.min_sev = severity_rank(o->severity)) < 0) {
        rk__ctl_errx("--severity: expected info, warning or critical");
        goto bad;
    }
    if (o->detector != NULL && !rk__ctl_is_name(o->detector)) {
        rk__ctl_errx("--detector: expected a detector name ([a-z0-9_]+)");
        goto bad;
    }
    if (o->rule != NULL && !rk__ctl_is_name(o->rule)) {
        rk__ctl_errx("--rule: expected a rule name ([a-z0-9_]+)");
        goto bad;
    }
    if (rk__ctl_check_names(cfg, o) != 0)
        goto bad;
    if (o->unit != NULL && (o->unit[0] == '\0' || strlen(o->unit) > 256)) {
        rk__ctl_errx("--unit: expected a unit id of 1 to 256 bytes");
        goto bad;
    }
    if (o->since != NULL && rk__ctl_parse_past("--since", NULL, o->since, now, &f.since) != 0)
        goto bad;
    rc = o->open ? rows_open(k, cfg, &f, rows) : rows_stream(k, cfg, &f, rows);
    if (rc == EX_OK) {
        if (o->json) {
            char *s = json_dumps(rows, JSON_PRESERVE_ORDER | JSON_INDENT(2) |
                                 JSON_REAL_PRECISION(15));
            if (s == NULL) {
                rk__ctl_errx("out of memory");
                rc = EX_FAIL;
            } else {
                puts(s);
                free(s);
            }
        } else {
            print_table(cfg, rows, o->open);
        }
    }
    json_decref(rows);
    return rc;
bad:
    json_decref(rows);
    return EX_FAIL;
}
