/* output_live.c - the live writer: where a running engine's alerts and
 * dead letters go.
 *
 * An alert is matched against the operators' silences, rendered as JSON
 * and queued in the outbox (sink.c), which writes it once by id; with
 * several partitions a scan_without_filing or case_without_filing alert
 * asks the filing register (register.c) first. Dead letters go to the
 * dead-letter outbox. This file also keeps the silences fresh (HGETALL
 * every second) and writes the configuration audit entries. */
#include "engine_int.h"


rk_redis *rk__sil_conn(const rk_engine *e)
{
    return e->aux_sil ? e->aux_sil : e->wr;
}

rk_redis *rk__audit_conn(const rk_engine *e)
{
    return e->aux_audit ? e->aux_audit : e->wr;
}

/* ===================================================================
 * Housekeeping timer: wall-clock advance, retries, stop deadline
 * =================================================================== */

/* HGETALL riskd:silences: the values are the silences. */
void rk__on_silences(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
    const char **vals;
    size_t *lens, i, n = 0;
    (void)r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || e->silences == NULL)
        return;
    vals = calloc(reply->elements / 2 + 1, sizeof(*vals));
    lens = calloc(reply->elements / 2 + 1, sizeof(*lens));
    if (vals != NULL && lens != NULL) {
        for (i = 1; i < reply->elements; i += 2) {
            if (reply->element[i]->type != REDIS_REPLY_STRING)
                continue;
            vals[n] = reply->element[i]->str;
            lens[n++] = reply->element[i]->len;
        }
        rk__silences_load(e->silences, vals, lens, n);
    }
    free(vals);
    free(lens);
}

/* The configuration without secrets, as compact JSON (caller frees). */
static char *config_for_audit(const rk_config *cfg)
{
    json_t *copy = json_deep_copy(cfg->root), *redis;
    char *out;
    if (copy == NULL)
        return NULL;
    redis = json_object_get(copy, "redis");
    if (json_is_object(redis) && json_object_get(redis, "password") != NULL &&
        !json_is_null(json_object_get(redis, "password")))
        json_object_set_new(redis, "password", json_string("(redacted)"));
    out = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    return out;
}

/* XADD riskd:audit: who/what/when/old/new for the configuration applied
 * at start or by a reload. Retried by the housekeeping timer until sent. */
void rk__write_audit(rk_engine *e)
{
    char who[300], when[48];
    char *cur = config_for_audit(e->cfg);
    const char *argv[13];
    if (cur == NULL)
        return;
    snprintf(who, sizeof(who), "riskd@%s", e->cfg->consumer);
    rk__format_rfc3339(rk__wall_ms(), 0, when, sizeof(when));
    argv[0] = "XADD"; argv[1] = RK_AUDIT_STREAM; argv[2] = "MAXLEN"; argv[3] = "~";
    argv[4] = "100000"; argv[5] = "*";
    argv[6] = "who"; argv[7] = who;
    argv[8] = "what"; argv[9] = "config_applied";
    {
        const char *full[17];
        memcpy(full, argv, 10 * sizeof(*argv));
        full[10] = "when"; full[11] = when;
        full[12] = "old"; full[13] = e->audit_old ? e->audit_old : "null";
        full[14] = "new"; full[15] = cur;
        if (rk__redis_cmd(rk__audit_conn(e), NULL, NULL, 0, 16, full, NULL) == 0) {
            e->audit_pending = false;
            free(e->audit_old);
            e->audit_old = cur;
            return;
        }
    }
    free(cur);
}

void rk__engine_reject_config(rk_engine *e, const char *path, const char *error)
{
    rk_alert a;
    char summary[RK_ERRLEN + 128], id[33];
    char *json;

    memset(&a, 0, sizeof(a));
    a.rule = "config_rejected";
    a.severity = RK_SEV_WARNING;
    a.ts = rk__wall_ms();       /* no input entry: the attempt's time */
    a.value = 1;
    a.threshold = 0;
    snprintf(summary, sizeof(summary), "Reloading %s was refused and the running "
             "configuration stays: %s", path, error);
    a.summary = summary;
    rk__alert_id("riskd", &a, NULL, id);
    json = rk__alert_json(id, "riskd", &a, a.severity, e->stream_keys, e->cfg->tz_offset_s,
                          a.ts, false);
    if (json == NULL || rk__outbox_alert(e->ob, id, NULL, "riskd", json, true) != 0)
        rk__log(RK_LOG_ERR, "out of memory queueing the config_rejected alert");
    free(json);
    rk__count_alert(e, "riskd", "config_rejected", RK_SEV_WARNING);
}
