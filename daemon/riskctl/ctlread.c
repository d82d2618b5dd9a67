/* daemon/riskctl/ctlread.c - readers riskctl's commands share: the names
 * list, the indicator hashes riskd writes (riskd:ind:<scope>:<key>:<label>,
 * riskd(8), INDICATORS) summed over partitions, the period labels, and the
 * open-alert hash. Used by indicators.c, report.c, sample.c and alerts.c;
 * nothing here prints to stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"
#include "pipeline/indicators.h"

const char *const rk__ctl_ind_fields[RK_CF_N] = {
    "filings", "unfiled", "scanned_by_deadline", "deadline_passed", "scanned", "rated",
    "ratings", "bad_ratings", "counted_inspections", "enterprises", "cases_opened",
    "cases_decided", "lenient", "complaints", "reviews", "corrections", "open_critical",
    "open_warning", "open_info"};

const rk__ctl_rate rk__ctl_rates[RK_CTL_NRATES] = {
    {"filing_rate", RK_CF_FILINGS, -1},
    {"scan_rate", RK_CF_SBD, RK_CF_DLP},
    {"rating_rate", RK_CF_RATED, RK_CF_SCANNED},
    {"bad_rating_share", RK_CF_BAD, RK_CF_RATINGS},
    {"inspections_per_enterprise", RK_CF_COUNTED, RK_CF_ENTERPRISES},
    {"lenient_share", RK_CF_LENIENT, RK_CF_DECIDED},
    {"correction_rate", RK_CF_CORRECTIONS, RK_CF_REVIEWS},
};

double rk__ctl_rate_of(const rk__ctl_row *r, size_t i, int *null)
{
    long long num = r->n[rk__ctl_rates[i].num];
    long long den = rk__ctl_rates[i].den < 0 ? r->n[RK_CF_FILINGS] + r->n[RK_CF_UNFILED]
                                             : r->n[rk__ctl_rates[i].den];
    *null = den == 0;
    return den == 0 ? 0 : (double)num / (double)den;
}

int rk__ctl_rate_index(const char *name)
{
    for (size_t i = 0; i < RK_CTL_NRATES; i++)
        if (strcmp(name, rk__ctl_rates[i].name) == 0)
            return (int)i;
    return -1;
}

rk__list *rk__ctl_names_load(conn *k)
{
    redisReply *r = redisCommand(k->c, "HVALS %s", RK_LISTS_PREFIX "names");
    const char **vals;
    size_t *lens, i;
    rk__list *names = NULL;
    char err[RK_ERRLEN];
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        if (r != NULL)
            freeReplyObject(r);
        return NULL;
    }
    vals = calloc(r->elements, sizeof(*vals));
    lens = calloc(r->elements, sizeof(*lens));
    if (vals != NULL && lens != NULL) {
        for (i = 0; i < r->elements; i++) {
            bool str = r->element[i]->type == REDIS_REPLY_STRING;
            vals[i] = str ? r->element[i]->str : "";
            lens[i] = str ? r->element[i]->len : 0;
        }
        if (rk__lists_from_json(RK_LIST_NAMES, vals, lens, r->elements, &names, err,
                                sizeof(err)) != 0) {
            rk__ctl_errx("the names list stored in Redis is damaged (%s): showing ids", err);
            names = NULL;
        }
    }
    free(vals);
    free(lens);
    freeReplyObject(r);
    return names;
}

int rk__ctl_ind_label(conn *k, const char *period, char *label, size_t len)
{
    redisReply *r;
    int32_t best = INT32_MIN, idx;
    int want = strstr(period, "month") ? 1 : 2;
    size_t i;
    if (strcmp(period, "window") == 0) {
        snprintf(label, len, "window");
        return 0;
    }
    r = redisCommand(k->c, "ZRANGE riskd:ind:periods 0 -1");
    if (r == NULL)
        return -1;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            rk__ind_parse_label(r->element[i]->str, &idx) == want && idx > best)
            best = idx;
    freeReplyObject(r);
    if (best == INT32_MIN)
        return 1;
    if (strncmp(period, "previous-", 9) == 0)
        best--;
    if (want == 1)
        rk__ind_month_label(best, label, len);
    else
        rk__ind_quarter_label(best, label, len);
    return 0;
}

/* Add one HGETALL reply to row. Returns 1 found, 0 absent. Frees r. */
static int add_reply(redisReply *r, rk__ctl_row *rw)
{
    size_t i, f;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return 0;
    }
    for (i = 0; i + 1 < r->elements; i += 2) {
        const char *n = r->element[i]->str, *v = r->element[i + 1]->str;
        if (n == NULL || v == NULL)
            continue;
        for (f = 0; f < RK_CF_N; f++)
            if (strcmp(n, rk__ctl_ind_fields[f]) == 0)
                rw->n[f] += strtoll(v, NULL, 10);
        if (strcmp(n, "fines") == 0)
            rw->fines += strtod(v, NULL);
        else if (strcmp(n, "from") == 0)
            snprintf(rw->from, sizeof(rw->from), "%s", v);
        else if (strcmp(n, "to") == 0)
            snprintf(rw->to, sizeof(rw->to), "%s", v);
        else if (strcmp(n, "updated_at") == 0 && strcmp(v, rw->updated) > 0)
            snprintf(rw->updated, sizeof(rw->updated), "%s", v);
    }
    freeReplyObject(r);
    return 1;
}

/* Add one hash to row. Returns 1 found, 0 absent, -1 lost. */
static int add_hash(conn *k, const char *key, rk__ctl_row *rw)
{
    redisReply *r = redisCommand(k->c, "HGETALL %s", key);
    if (r == NULL)
        return -1;
    return add_reply(r, rw);
}

int rk__ctl_ind_read_many(conn *k, const rk__config *cfg, const char *scope, const char *label,
                          rk__ctl_row *rows, size_t n, int *found)
{
    size_t i, from;
    int p;
    for (i = 0; i < n; i++)
        found[i] = 0;
    for (from = 0; from < n; from += 500) {  /* pipelined, 500 keys a round */
        size_t to = from + 500 < n ? from + 500 : n;
        for (i = from; i < to; i++)
            for (p = 0; p < cfg->partitions; p++) {
                if (cfg->partitions > 1)
                    redisAppendCommand(k->c, "HGETALL riskd:ind:%s:%s:%s:p%d", scope, rows[i].key,
                                       label, p);
                else
                    redisAppendCommand(k->c, "HGETALL riskd:ind:%s:%s:%s", scope, rows[i].key,
                                       label);
            }
        for (i = from; i < to; i++)
            for (p = 0; p < cfg->partitions; p++) {
                void *r = NULL;
                if (redisGetReply(k->c, &r) != REDIS_OK || r == NULL)
                    return -1;
                found[i] += add_reply(r, &rows[i]);
            }
    }
    return 0;
}

int rk__ctl_ind_read(conn *k, const rk__config *cfg, const char *scope, const char *key,
                     const char *label, rk__ctl_row *row)
{
    char hkey[600];
    int found = 0, p, a;
    for (p = 0; p < cfg->partitions; p++) {
        if (cfg->partitions > 1)
            snprintf(hkey, sizeof(hkey), "riskd:ind:%s:%s:%s:p%d", scope, key, label, p);
        else
            snprintf(hkey, sizeof(hkey), "riskd:ind:%s:%s:%s", scope, key, label);
        if ((a = add_hash(k, hkey, row)) < 0)
            return -1;
        found += a;
    }
    return found > 0;
}

int rk__ctl_ind_keys(conn *k, const rk__config *cfg, const char *scope, char ***keys,
                     size_t *n)
{
    size_t cap = 0, i, j;
    int p;
    *keys = NULL;
    *n = 0;
    for (p = 0; p < cfg->partitions; p++) {
        redisReply *r;
        char suffix[16] = "";
        if (cfg->partitions > 1)
            snprintf(suffix, sizeof(suffix), ":p%d", p);
        r = redisCommand(k->c, "ZRANGE riskd:ind:keys:%s%s 0 -1", scope, suffix);
        if (r == NULL)
            return -1;
        for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            bool seen = false;
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            /* one partition's keys are distinct: look back only across partitions */
            for (j = 0; p > 0 && j < *n && !seen; j++)
                seen = strcmp((*keys)[j], r->element[i]->str) == 0;
            if (seen)
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                *keys = realloc(*keys, cap * sizeof(**keys));
                if (*keys == NULL) {
                    rk__ctl_errx("out of memory");
                    exit(EX_FAIL);
                }
            }
            (*keys)[(*n)++] = strdup(r->element[i]->str);
        }
        freeReplyObject(r);
    }
    return 0;
}

void rk__ctl_keys_free(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

int rk__ctl_scan_open(conn *k, const rk__config *cfg, void (*cb)(json_t *a, void *ud),
                      void *ud)
{
    char cursor[64] = "0";
    size_t i;
    do {
        redisReply *r = redisCommand(k->c, "HSCAN %s %s COUNT 1000", cfg->alerts_open_key,
                                     cursor);
        if (rk__ctl_reply_ok(k, r, "HSCAN") != 0) {
            int lost = r == NULL;
            freeReplyObject(r);
            return lost ? EX_REDIS : EX_FAIL;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            rk__ctl_errx("HSCAN %s: unexpected reply", cfg->alerts_open_key);
            return EX_FAIL;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (i = 0; i + 1 < r->element[1]->elements; i += 2) {
            const redisReply *val = r->element[1]->element[i + 1];
            json_t *a = val->type == REDIS_REPLY_STRING ?
                        json_loadb(val->str, val->len, 0, NULL) : NULL;
            if (a == NULL || !json_is_object(a)) {
                fprintf(stderr, "riskctl: the open entry ");
                rk__ctl_put_clean(stderr, r->element[1]->element[i]->str);
                fprintf(stderr, " is not an alert JSON object\n");
            } else {
                cb(a, ud);
            }
            json_decref(a);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return EX_OK;
}

int rk__ctl_each_data(conn *k, const char *stream, const char *start, int page,
                      void (*cb)(void *ud, const char *data, size_t len), void *ud)
{
    char from[64];
    int rc = EX_OK;

    snprintf(from, sizeof(from), "%s", start);
    for (;;) {
        redisReply *r = redisCommand(k->c, "XRANGE %s %s + COUNT %d", stream, from, page);
        size_t i, x;
        if (rk__ctl_reply_ok(k, r, "XRANGE") != 0) {
            rc = r == NULL ? EX_REDIS : EX_FAIL;
            freeReplyObject(r);
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            break;
        }
        for (i = 0; i < r->elements; i++) {
            const redisReply *ent = r->element[i], *fl;
            unsigned long long ms = 0, seq = 0;
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements < 2 ||
                ent->element[0]->type != REDIS_REPLY_STRING)
                continue;
            if (sscanf(ent->element[0]->str, "%llu-%llu", &ms, &seq) == 2)
                snprintf(from, sizeof(from), "%llu-%llu", ms, seq + 1);
            fl = ent->element[1];
            for (x = 0; fl->type == REDIS_REPLY_ARRAY && x + 1 < fl->elements; x += 2)
                if (fl->element[x]->type == REDIS_REPLY_STRING &&
                    strcmp(fl->element[x]->str, "data") == 0 &&
                    fl->element[x + 1]->type == REDIS_REPLY_STRING) {
                    cb(ud, fl->element[x + 1]->str, fl->element[x + 1]->len);
                    break;
                }
        }
        if (r->elements < (size_t)page) {
            freeReplyObject(r);
            break;
        }
        freeReplyObject(r);
    }
    return rc;
}
