/* daemon/riskctl/silence.c - riskctl silence add | list | expire.
 *
 * Silences live in the hash riskd:silences (field = a 16-hex-digit random
 * id, value = compact JSON). Every change is one MULTI/EXEC transaction
 * under WATCH of the hash: HSET the record, XADD an entry to the audit
 * stream riskd:audit (trimmed like the daemon's entries, MAXLEN ~ 100000)
 * and PUBLISH the id on the channel riskd:silences; a transaction aborted
 * by a concurrent change is retried (TXN_ATTEMPTS). Expiring a silence
 * sets its "until" to now and keeps the record. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

#define AUDIT_STREAM     RK_AUDIT_STREAM
#define AUDIT_MAXLEN     "100000"           /* as the daemon trims it */
#define SILENCE_ID_LEN   16
#define TXN_ATTEMPTS     20
#define MAX_TEXT         4096               /* reason, author, match values */

#define subject_fields rk__silence_fields

/* True when s is a silence id: exactly 16 lowercase hex digits. */
static int is_silence_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == SILENCE_ID_LEN;
}

/* Parse --until: an RFC 3339 time or a duration from now. Stores epoch ms
 * in *out and returns 0, or -1 with err. */
static int parse_until(const char *s, int64_t now, int64_t *out, char *err, size_t errlen)
{
    int64_t d;
    if (rk__parse_rfc3339(s, out) == 0) {
        /* accepted */
    } else if (rk_kit_parse_duration(s, &d) == 0) {
        *out = now + d;
    } else {
        rk_kit_errf(err, errlen, "--until: expected an RFC 3339 time "
                    "(2025-03-01T18:00:00+08:00) or a duration like 2h, 30m, 7d, got '%.64s'",
                    s);
        return -1;
    }
    if (*out <= now) {
        rk_kit_errf(err, errlen, "--until: %s is not in the future", s);
        return -1;
    }
    return 0;
}

/* Write one silence change as a transaction on the WATCHed hash: HSET id
 * new_json, XADD the audit entry (who, what, when, old, new), PUBLISH the
 * id. Returns 1 when committed, 0 when EXEC was aborted by a concurrent
 * change (retry), -1 after printing an error. */
static int silence_commit(conn *k, const char *id, const char *new_json, const char *old_json,
                          const char *what, const char *who)
{
    char when[48];
    redisReply *r = NULL;
    int i, rc = -1;

    rk__format_rfc3339(rk__wall_ms(), 0, when, sizeof(when));
    redisAppendCommand(k->c, "MULTI");
    redisAppendCommand(k->c, "HSET %s %s %s", SILENCES_KEY, id, new_json);
    redisAppendCommand(k->c, "XADD %s MAXLEN ~ %s * who %s what %s when %s old %s new %s",
                       AUDIT_STREAM, AUDIT_MAXLEN, who, what, when,
                       old_json ? old_json : "null", new_json);
    redisAppendCommand(k->c, "PUBLISH %s %s", SILENCES_KEY, id);
    redisAppendCommand(k->c, "EXEC");
    for (i = 0; i < 5; i++) {
        void *rep = NULL;
        if (redisGetReply(k->c, &rep) != REDIS_OK) {
            rk__ctl_errx("Redis %s:%d: %s", k->host, k->port, k->c->errstr);
            return -1;
        }
        freeReplyObject(r);
        r = rep;
        if (i < 4 && r->type == REDIS_REPLY_ERROR) {
            rk__ctl_errx("%s: %s", i == 0 ? "MULTI" : "queueing the change", r->str);
            rc = -2;                /* read the rest, then fail */
        }
    }
    if (rc == -2) {
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        rc = 1;
        for (size_t e = 0; e < r->elements; e++)
            if (r->element[e]->type == REDIS_REPLY_ERROR) {
                rk__ctl_errx("EXEC: %s", r->element[e]->str);
                rc = -1;
            }
    } else {
        rk__ctl_errx("EXEC: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return rc;
}

/* WATCH the silences hash and HGET id into *out (a malloc'ed copy, NULL
 * when absent). Returns 0 or -1 after printing. */
static int silence_watch_get(conn *k, const char *id, char **out)
{
    redisReply *r = redisCommand(k->c, "WATCH %s", SILENCES_KEY);
    *out = NULL;
    if (rk__ctl_reply_ok(k, r, "WATCH") != 0) {
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    r = redisCommand(k->c, "HGET %s %s", SILENCES_KEY, id);
    if (rk__ctl_reply_ok(k, r, "HGET") != 0) {
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING && (*out = strdup(r->str)) == NULL) {
        rk__ctl_errx("out of memory");
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

static void unwatch(conn *k)
{
    freeReplyObject(redisCommand(k->c, "UNWATCH"));
}

/* Describe a silence record s on one line: id (when with_id), detector/
 * rule, match, until (at UTC offset tz seconds), author, reason, and
 * "[expired]" when show_state and until <= now. */
static void print_silence(const json_t *s, int tz, int64_t now, int with_id, int show_state,
                          long long matched)
{
    const char *id = json_string_value(json_object_get(s, "id"));
    const char *det = json_string_value(json_object_get(s, "detector"));
    const char *rule = json_string_value(json_object_get(s, "rule"));
    const char *author = json_string_value(json_object_get(s, "author"));
    const char *reason = json_string_value(json_object_get(s, "reason"));
    json_t *match = json_object_get(s, "match"), *v;
    json_int_t until = json_integer_value(json_object_get(s, "until"));
    const char *key;
    char t[48];
    int n = 0;

    if (with_id) {
        rk__ctl_put_clean(stdout, id ? id : "?");
        fputs("  ", stdout);
    }
    rk__ctl_put_clean(stdout, det ? det : "?");
    fputc('/', stdout);
    rk__ctl_put_clean(stdout, rule ? rule : "*");
    fputs("  ", stdout);
    json_object_foreach(match, key, v) {
        if (n++)
            fputc(',', stdout);
        rk__ctl_put_clean(stdout, key);
        fputc('=', stdout);
        rk__ctl_put_clean(stdout, json_is_string(v) ? json_string_value(v) : "?");
    }
    if (n == 0)
        fputs("any-subject", stdout);
    rk__format_rfc3339(until, tz, t, sizeof(t));
    printf("  until %s  by ", t);
    rk__ctl_put_clean(stdout, author ? author : "?");
    fputs("  \"", stdout);
    rk__ctl_put_clean(stdout, reason ? reason : "");
    fputc('"', stdout);
    if (matched >= 0)
        printf("  matched %lld", matched);
    if (show_state && until <= now)
        fputs("  [expired]", stdout);
    fputc('\n', stdout);
}

/* Build the JSON text of a new silence with the given id from o, created
 * by who at now (epoch ms). Returns a malloc'ed string
 * or NULL after printing the error. */
static char *silence_build(const opts *o, const char *id, const char *who, int64_t now)
{
    char err[RK_ERRLEN];
    json_t *s = NULL, *match = NULL;
    char *out = NULL;
    int64_t until;
    size_t i;

    if (o->detector == NULL || o->until == NULL || o->reason == NULL) {
        rk__ctl_errx("silence add needs --detector, --until and --reason");
        return NULL;
    }
    if (!rk__ctl_is_name(o->detector)) {
        rk__ctl_errx("--detector: expected a detector name ([a-z0-9_]+)");
        return NULL;
    }
    if (o->rule != NULL && !rk__ctl_is_name(o->rule)) {
        rk__ctl_errx("--rule: expected a rule name ([a-z0-9_]+)");
        return NULL;
    }
    if (*o->reason == '\0' || strlen(o->reason) > MAX_TEXT) {
        rk__ctl_errx("--reason: expected a text of 1 to %d bytes", MAX_TEXT);
        return NULL;
    }
    if (*who == '\0' || strlen(who) > 256) {
        rk__ctl_errx("--author: expected a name of 1 to 256 bytes");
        return NULL;
    }
    if (parse_until(o->until, now, &until, err, sizeof(err)) != 0) {
        rk__ctl_errx("%s", err);
        return NULL;
    }
    if ((s = json_object()) == NULL || (match = json_object()) == NULL)
        goto oom;
    for (i = 0; i < o->n_match; i++) {
        const char *eq = strchr(o->match[i], '=');
        char field[32];
        size_t fl = eq ? (size_t)(eq - o->match[i]) : 0, f;
        if (eq == NULL || fl == 0 || fl >= sizeof(field) || eq[1] == '\0' ||
            strlen(eq + 1) > MAX_TEXT) {
            rk__ctl_errx("--match %s: expected FIELD=VALUE", o->match[i]);
            goto fail;
        }
        memcpy(field, o->match[i], fl);
        field[fl] = '\0';
        for (f = 0; subject_fields[f] && strcmp(subject_fields[f], field) != 0; f++)
            ;
        if (subject_fields[f] == NULL) {
            char known[256];
            rk__known_words(known, sizeof(known), subject_fields);
            rk__ctl_errx("--match %s: '%s' is not a subject field a silence can match "
                         "(known: %s)", o->match[i], field, known);
            goto fail;
        }
        if (json_object_get(match, field) != NULL) {
            rk__ctl_errx("--match: %s given twice", field);
            goto fail;
        }
        if (json_object_set_new(match, field, json_string(eq + 1)) != 0)
            goto oom;
    }
    if (json_object_set_new(s, "id", json_string(id)) != 0 ||
        json_object_set_new(s, "detector", json_string(o->detector)) != 0 ||
        (o->rule && json_object_set_new(s, "rule", json_string(o->rule)) != 0) ||
        (json_object_size(match) > 0 && json_object_set(s, "match", match) != 0) ||
        json_object_set_new(s, "until", json_integer(until)) != 0 ||
        json_object_set_new(s, "reason", json_string(o->reason)) != 0 ||
        json_object_set_new(s, "author", json_string(who)) != 0 ||
        json_object_set_new(s, "created_at", json_integer(now)) != 0)
        goto oom;
    out = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (out == NULL)
        goto oom;
    goto fail;
oom:
    rk__ctl_errx("out of memory (or a value is not UTF-8)");
fail:
    json_decref(match);
    json_decref(s);
    return out;
}

int rk__ctl_check_names(const rk__config *cfg, const opts *o)
{
    const rk__detector_rules *d;
    char known[1024], err[RK_ERRLEN], **names = NULL;
    const char *all[64];
    size_t n = 0, i;
    int found = 0;

    if (o->detector == NULL) {      /* a rule alone: any detector's */
        for (d = rk__builtin_rules; o->rule != NULL && d->detector != NULL; d++)
            if (rk__builtin_rule(d, o->rule))
                return 0;
        if (o->rule == NULL || cfg->n_plugins > 0)
            return 0;
        rk__ctl_errx("--rule: no detector has a rule '%s' (riskd-detectors(7) lists them)",
                     o->rule);
        return -1;
    }
    d = rk__builtin_detector(o->detector);
    if (d != NULL) {
        if (o->rule == NULL || rk__builtin_rule(d, o->rule))
            return 0;
        rk__known_words(known, sizeof(known), d->rules);
        rk__ctl_errx("--rule: detector %s has no rule '%s' (known: %s)", d->detector, o->rule,
                     known);
        return -1;
    }
    for (d = rk__builtin_rules; d->detector != NULL && n + 1 < 64; d++)
        all[n++] = d->detector;
    if (cfg->n_plugins > 0) {
        if (rk__registry_names(cfg, &names, err, sizeof(err)) != 0) {
            rk__ctl_errx("%s", err);
            return -1;
        }
        for (i = 0; names[i] != NULL; i++) {
            found |= strcmp(names[i], o->detector) == 0;
            if (rk__builtin_detector(names[i]) == NULL && n + 1 < 64)
                all[n++] = names[i];
        }
    }
    all[n] = NULL;
    if (!found) {
        rk__known_words(known, sizeof(known), all);
        rk__ctl_errx("--detector: unknown detector '%s' (known: %s)", o->detector, known);
    }
    rk__registry_names_free(names);
    return found ? 0 : -1;
}

int rk__ctl_silence_check(const rk__config *cfg, const opts *o)
{
    char *json;
    if ((json = silence_build(o, "0000000000000000", rk__ctl_actor(o->author),
                              rk__wall_ms())) == NULL)
        return -1;
    free(json);
    return rk__ctl_check_names(cfg, o);
}

/* True when the open alert a (parsed JSON) would be matched by silence s. */
static int silence_matches(const json_t *s, const json_t *a)
{
    const char *rule = json_string_value(json_object_get(s, "rule")), *key;
    const json_t *subj = json_object_get(a, "subject"), *v;
    if (!json_equal(json_object_get(s, "detector"), json_object_get(a, "detector")))
        return 0;
    if (rule != NULL && !json_equal(json_object_get(s, "rule"), json_object_get(a, "rule")))
        return 0;
    json_object_foreach((json_t *)(uintptr_t)json_object_get(s, "match"), key, v)
        if (!json_equal(v, json_object_get(subj, key)))
            return 0;
    return 1;
}

/* silence add --dry-run: count the open alerts (cfg's open hash) the
 * silence json would match and print it; nothing is written. */
static int silence_dry_run(conn *k, const rk__config *cfg, const char *json)
{
    json_t *s = json_loads(json, 0, NULL);
    char cursor[32] = "0";
    long long open = 0, matched = 0;

    if (s == NULL) {
        rk__ctl_errx("out of memory");
        return EX_FAIL;
    }
    do {
        redisReply *r = redisCommand(k->c, "HSCAN %s %s COUNT 1000", cfg->alerts_open_key,
                                     cursor);
        if (rk__ctl_reply_ok(k, r, "HSCAN") != 0 || r->type != REDIS_REPLY_ARRAY ||
            r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            int lost = r == NULL;
            freeReplyObject(r);
            json_decref(s);
            return lost ? EX_REDIS : EX_FAIL;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 1; i < r->element[1]->elements; i += 2) {
            const redisReply *v = r->element[1]->element[i];
            json_t *a = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL)
                                                      : NULL;
            open++;
            matched += a != NULL && silence_matches(s, a);
            json_decref(a);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    printf("dry run: the silence would match %lld of %lld open alert%s; nothing was added\n",
           matched, open, open == 1 ? "" : "s");
    json_decref(s);
    return EX_OK;
}

/* riskctl silence add. Prints "silence <id> added: ..." (with --dry-run:
 * how many open alerts it would match) and returns the exit code. */
int rk__ctl_silence_add(conn *k, const rk__config *cfg, const opts *o)
{
    char id[SILENCE_ID_LEN + 1];
    char *json = NULL, *old = NULL;
    const char *who = rk__ctl_actor(o->author);
    int64_t now = rk__wall_ms();
    int attempt, rc = -1;

    if (rk__ctl_random_hex(id, SILENCE_ID_LEN / 2) != 0) {
        rk__ctl_errx("cannot read /dev/urandom: %s", strerror(errno));
        return EX_FAIL;
    }
    if ((json = silence_build(o, id, who, now)) == NULL)
        return EX_FAIL;
    if (o->dry_run) {
        int rc2 = silence_dry_run(k, cfg, json);
        free(json);
        return rc2;
    }
    for (attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
        rc = -1;
        if (silence_watch_get(k, id, &old) != 0)
            break;
        if (old != NULL) {          /* an id collision: 1 in 2^64 */
            free(old);
            old = NULL;
            unwatch(k);
            rk__ctl_errx("silence id %s exists already; try again", id);
            break;
        }
        rc = silence_commit(k, id, json, NULL, "silence_added", who);
        if (rc != 0)
            break;
    }
    if (rc == 1) {
        json_t *s = json_loads(json, 0, NULL);
        printf("silence %s added: ", id);
        fflush(stdout);
        if (s != NULL)
            print_silence(s, cfg->tz_offset_s, now, 0, 0, -1);
        else
            putchar('\n');
        json_decref(s);
    } else if (rc == 0) {
        rk__ctl_errx("the silences kept changing under us; nothing was added");
    }
    free(json);
    return rc == 1 ? EX_OK : rc == 0 ? EX_FAIL : rk__ctl_fail_code(k);
}

/* riskctl silence expire ID: set "until" to now, keep the record. */
int rk__ctl_silence_expire(conn *k, const rk__config *cfg, const opts *o, const char *id)
{
    const char *who = rk__ctl_actor(o->author);
    int attempt, rc = -1;
    int64_t now;
    char t[48];

    if (!is_silence_id(id)) {
        rk__ctl_errx("%s: expected a silence id (16 lowercase hex digits)", id);
        return EX_FAIL;
    }
    for (attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
        char *old, *neu;
        json_t *s;
        json_int_t until;

        if (silence_watch_get(k, id, &old) != 0)
            return rk__ctl_fail_code(k);
        if (old == NULL) {
            unwatch(k);
            rk__ctl_errx("no silence %s", id);
            return EX_FAIL;
        }
        now = rk__wall_ms();
        s = json_loads(old, 0, NULL);
        if (s == NULL || !json_is_object(s) ||
            !json_is_integer(json_object_get(s, "until"))) {
            unwatch(k);
            rk__ctl_errx("silence %s is not a valid record", id);
            json_decref(s);
            free(old);
            return EX_FAIL;
        }
        until = json_integer_value(json_object_get(s, "until"));
        if (until <= now) {
            unwatch(k);
            rk__format_rfc3339(until, cfg->tz_offset_s, t, sizeof(t));
            printf("silence %s had already expired at %s\n", id, t);
            json_decref(s);
            free(old);
            return EX_OK;
        }
        json_object_set_new(s, "until", json_integer(now));
        neu = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(s);
        if (neu == NULL) {
            unwatch(k);
            free(old);
            rk__ctl_errx("out of memory");
            return EX_FAIL;
        }
        rc = silence_commit(k, id, neu, old, "silence_expired", who);
        free(old);
        free(neu);
        if (rc != 0)
            break;
    }
    if (rc == 1) {
        rk__format_rfc3339(now, cfg->tz_offset_s, t, sizeof(t));
        printf("silence %s expired at %s\n", id, t);
        return EX_OK;
    }
    if (rc == 0) {
        rk__ctl_errx("the silences kept changing under us; nothing was expired");
        return EX_FAIL;
    }
    return rk__ctl_fail_code(k);
}

typedef struct srec {
    json_t *j;
    json_int_t created;
    const char *id;
} srec;

static int srec_cmp(const void *a, const void *b)
{
    const srec *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* riskctl silence list [--all]: the active silences (all with --all),
 * oldest first. Records that are not valid JSON are reported on stderr. */
int rk__ctl_silence_list(conn *k, const rk__config *cfg, const opts *o)
{
    redisReply *r = redisCommand(k->c, "HGETALL %s", SILENCES_KEY);
    int64_t now = rk__wall_ms();
    char hkey[300];
    srec *recs;
    size_t i, n = 0;

    if (rk__ctl_reply_ok(k, r, "HGETALL " SILENCES_KEY) != 0) {
        freeReplyObject(r);
        return rk__ctl_fail_code(k);
    }
    recs = calloc(r->elements / 2 + 1, sizeof(*recs));
    if (recs == NULL) {
        rk__ctl_errx("out of memory");
        freeReplyObject(r);
        return EX_FAIL;
    }
    for (i = 0; i + 1 < r->elements; i += 2) {
        json_t *s = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len, 0, NULL);
        json_t *u = json_object_get(s, "until");
        if (s == NULL || !json_is_object(s) || !json_is_integer(u) ||
            !json_is_string(json_object_get(s, "detector"))) {
            fprintf(stderr, "riskctl: silence ");
            rk__ctl_put_clean(stderr, r->element[i]->str);
            fprintf(stderr, " is not a valid record\n");
            json_decref(s);
            continue;
        }
        if (!o->all && json_integer_value(u) <= now) {
            json_decref(s);
            continue;
        }
        if (!json_is_string(json_object_get(s, "id")))
            json_object_set_new(s, "id", json_string(r->element[i]->str));
        recs[n].j = s;
        recs[n].created = json_integer_value(json_object_get(s, "created_at"));
        recs[n].id = json_string_value(json_object_get(s, "id"));
        if (recs[n].id == NULL)
            recs[n].id = "";
        n++;
    }
    freeReplyObject(r);
    qsort(recs, n, sizeof(*recs), srec_cmp);
    rk__silence_hits_key(cfg, hkey, sizeof(hkey));
    for (i = 0; i < n; i++) {
        /* How many alerts it matched: counted by riskd's publish script. */
        redisReply *h = redisCommand(k->c, "HGET %s %s", hkey, recs[i].id);
        long long matched = 0;
        if (h == NULL) {            /* Redis went away: stop, and say so */
            rk__ctl_reply_ok(k, h, "HGET");
            for (; i < n; i++)
                json_decref(recs[i].j);
            free(recs);
            return EX_REDIS;
        }
        if (h->type == REDIS_REPLY_STRING)
            matched = strtoll(h->str, NULL, 10);
        freeReplyObject(h);
        print_silence(recs[i].j, cfg->tz_offset_s, now, 1, 1, matched);
        json_decref(recs[i].j);
    }
    if (n == 0)
        printf(o->all ? "no silences\n" : "no active silences\n");
    free(recs);
    return EX_OK;
}
