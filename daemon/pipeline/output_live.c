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


static rk__redis *sil_conn(const rk__engine *e)
{
    return e->aux_sil ? e->aux_sil : e->wr;
}

rk__redis *rk__audit_conn(const rk__engine *e)
{
    return e->aux_audit ? e->aux_audit : e->wr;
}

/* HGETALL riskd:silences: the values are the silences. */
static void on_silences(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    const char **vals, **ids;
    size_t *lens, *idl, i, n = 0;
    (void)r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || e->silences == NULL)
        return;
    vals = calloc(reply->elements / 2 + 1, sizeof(*vals));
    lens = calloc(reply->elements / 2 + 1, sizeof(*lens));
    ids = calloc(reply->elements / 2 + 1, sizeof(*ids));
    idl = calloc(reply->elements / 2 + 1, sizeof(*idl));
    if (vals != NULL && lens != NULL && ids != NULL && idl != NULL) {
        for (i = 1; i < reply->elements; i += 2) {
            if (reply->element[i]->type != REDIS_REPLY_STRING ||
                reply->element[i - 1]->type != REDIS_REPLY_STRING)
                continue;
            ids[n] = reply->element[i - 1]->str;
            idl[n] = reply->element[i - 1]->len;
            vals[n] = reply->element[i]->str;
            lens[n++] = reply->element[i]->len;
        }
        rk__silences_load_ids(e->silences, ids, idl, vals, lens, n);
    }
    free(vals);
    free(lens);
    free(ids);
    free(idl);
}

/* The configuration without secrets, as compact JSON (caller frees). */
static char *config_for_audit(const rk__config *cfg)
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
void rk__write_audit(rk__engine *e)
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

void rk__engine_reject_config(rk__engine *e, const char *path, const char *error)
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
                          a.ts, NULL);
    if (json == NULL || rk__outbox_alert(e->ob, id, NULL, "riskd", json, NULL) != 0)
        rk__log(RK_LOG_ERR, "out of memory queueing the config_rejected alert");
    free(json);
    rk__count_alert(e, "riskd", "config_rejected", RK_SEV_WARNING);
}

/* Silences, JSON, the outbox (through the filing register when the rule
 * asks it and partitions share the filings). */
static int live_alert(rk__engine *e, const char *id, const char *legacy, const char *det,
                      const rk_alert *a, rk_severity sev, int64_t now_wall)
{
    char *json;
    const char *silenced;

    silenced = rk__silences_which(e->silences, det, a, now_wall);
    if (silenced)
        e->silenced++;
    json = rk__alert_json(id, det, a, sev, e->stream_keys, e->cfg->tz_offset_s,
                          now_wall, silenced);
    if (json != NULL && e->filreg != NULL && a->subject.task_id != NULL &&
        rk__register_checks(a->rule)) {
        /* Filed in another partition? The publish script asks the register. */
        char rkeys[RK_REG_MAX_PERIODS + 1][320], spec[160];
        size_t nk;
        rk__register_check(e->cfg, a->subject.task_id, a->ts, rkeys, &nk, spec, sizeof(spec));
        if (rk__outbox_alert_checked(e->ob, id, legacy, det,
                                     json, silenced, rkeys, nk, spec) != 0) {
            free(json);
            rk__log(RK_LOG_ERR, "out of memory queueing an alert of %s", det);
            return -1;
        }
    } else if (json == NULL || rk__outbox_alert(e->ob, id, legacy,
                                                det, json, silenced) != 0) {
        free(json);
        rk__log(RK_LOG_ERR, "out of memory queueing an alert of %s", det);
        return -1;
    }
    free(json);
    rk__log(RK_LOG_DEBUG, "alert %s %s/%s", id, det, a->rule);
    return 1;
}

/* A notice: its own members here, the rest from the open alert in the
 * publish script. */
static int live_notice(rk__engine *e, const char *id, const char *det, const rk_alert *a,
                       const char *status, int64_t now_wall)
{
    char *m = rk__notice_members(a->change_ts, now_wall, e->cfg->tz_offset_s, a->reason,
                                 a->evidence, a->n_evidence, e->stream_keys,
                                 strcmp(status, "closed") == 0 ? "riskd" : NULL);
    if (m == NULL || rk__outbox_notice(e->ob, id, status, det, m) != 0) {
        free(m);
        rk__log(RK_LOG_ERR, "out of memory queueing a notice of %s", det);
        return -1;
    }
    free(m);
    rk__log(RK_LOG_DEBUG, "notice %s %s %s/%s", status, id, det, a->rule);
    return 1;
}

static int live_dead(rk__engine *e, const char *stream, const char *id, const char *why,
                     const char *data, size_t len)
{
    if (e->role == RK__ROLE_CROSS)
        return 0;                   /* its partition's pipeline dead-letters it */
    return rk__outbox_dead(rk__dead_ob(e), stream, id, why, data, len);
}

/* Every second the silences (HGETALL riskd:silences); the audit entry
 * still due. */
static void live_housekeep(rk__engine *e, int64_t now)
{
    if (now >= e->next_silences && rk__redis_ready(sil_conn(e))) {
        const char *argv[2] = {"HGETALL", RK_SILENCES_KEY};
        e->next_silences = now + 1000;
        rk__redis_cmd(sil_conn(e), on_silences, e, 0, 2, argv, NULL);
    }
    if (e->audit_pending && rk__redis_ready(rk__audit_conn(e)))
        rk__write_audit(e);
}

const rk__output rk__output_live = {live_alert, live_notice, live_dead, live_housekeep};

static void on_drained(void *ud)
{
    rk__engine *e = ud;
    if (e->state == E_FLUSHING && rk__ob_pending(e) == 0)
        rk__round_finished(e);
}

/* Open the live writer's connections and outboxes for e (just created,
 * e->cfg set): the writer connection; with a Redis Cluster one per slot
 * the alerts, dead letters, silences and audit entries live on; with
 * partitions the filing register. Out of memory leaves e->ob NULL. */
void rk__live_init(rk__engine *e)
{
    rk__redis_opts o;

    rk__redis_opts_for(e->cfg, "writer", e->cfg->state_key, &o);
    e->wr = rk__redis_new(e->loop, &o, rk__on_wr_state, e);
    if (e->cfg->n_cluster > 0 && e->wr != NULL) {
        rk__redis_opts_for(e->cfg, "alerts", e->cfg->alerts_stream, &o);
        e->wr_out = rk__redis_new(e->loop, &o, rk__on_wr_state, e);
        rk__redis_opts_for(e->cfg, "dead", RK_DEAD_STREAM, &o);
        e->wr_dead = rk__redis_new(e->loop, &o, rk__on_wr_state, e);
        rk__redis_opts_for(e->cfg, "silences", RK_SILENCES_KEY, &o);
        e->aux_sil = rk__redis_new(e->loop, &o, NULL, e);
        rk__redis_opts_for(e->cfg, "audit", RK_AUDIT_STREAM, &o);
        e->aux_audit = rk__redis_new(e->loop, &o, NULL, e);
        e->ob = e->wr_out ? rk__outbox_new(e->loop, e->wr_out, e->cfg, on_drained, e) : NULL;
        e->ob_dead = e->wr_dead ? rk__outbox_new(e->loop, e->wr_dead, e->cfg, on_drained, e)
                                : NULL;
        if (e->ob_dead == NULL || e->aux_sil == NULL || e->aux_audit == NULL) {
            rk__outbox_free(e->ob);
            e->ob = NULL;       /* reported as out of memory below */
        }
    } else {
        e->ob = e->wr ? rk__outbox_new(e->loop, e->wr, e->cfg, on_drained, e) : NULL;
    }
    if (e->cfg->partitions > 1 && e->role != RK__ROLE_CROSS && e->ob != NULL &&
        (e->filreg = rk__register_new(e->wr_out ? e->wr_out : e->wr, e->cfg, on_drained,
                                      e)) == NULL) {
        rk__outbox_free(e->ob);
        e->ob = NULL;           /* reported as out of memory below */
    }
}
