/* output_replay.c - the replay writer (riskd --replay): alerts and notices
 * are printed as JSON lines (a notice only while its alert is open, as the
 * live publish script does) and collected for the summary and the caller;
 * nothing is written to Redis, and dead letters are only counted.
 * The alerts are kept as JSON objects with "emitted_at" removed, so that
 * two runs over the same range compare equal. */
#include "engine_int.h"


/* Print the alert and remember it; nothing goes to Redis (legacy ids do
 * not matter: nothing was written before). */
static int replay_alert(rk__engine *e, const char *id, const char *legacy, const char *det,
                        const rk_alert *a, rk_severity sev, int64_t now_wall)
{
    json_t *o = rk__alert_object(id, det, a, sev, e->stream_keys, e->cfg->tz_offset_s,
                                 now_wall, NULL);
    char *line;
    (void)legacy;
    if (o == NULL)
        return -1;
    if (e->ro.out != NULL) {
        if ((line = rk__alert_dump(o)) == NULL) {
            json_decref(o);
            return -1;
        }
        fprintf(e->ro.out, "%s\n", line);
        free(line);
    }
    json_object_del(o, "emitted_at");
    json_object_set_new(e->replay_alerts, id, o);
    return 1;
}

/* A notice, as the live publish script writes it: once, and only while
 * its alert (raised in this replay) is open. */
static int replay_notice(rk__engine *e, const char *id, const char *det, const rk_alert *a,
                         const char *status, int64_t now_wall)
{
    json_t *alert = json_object_get(e->replay_alerts, id), *n;
    char *m, *line;

    (void)det;
    if (alert == NULL || json_object_get(e->replay_closed, id) != NULL)
        return 1;                   /* not open: the script answers 3 */
    m = rk__notice_members(a->change_ts, now_wall, e->cfg->tz_offset_s, a->reason,
                           a->evidence, a->n_evidence, e->stream_keys,
                           strcmp(status, "closed") == 0 ? "riskd" : NULL);
    n = m != NULL ? rk__notice_json(alert, status, m) : NULL;
    free(m);
    if (n == NULL)
        return -1;
    if (e->ro.out != NULL && (line = json_dumps(n, JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL) {
        fprintf(e->ro.out, "%s\n", line);
        free(line);
    }
    json_object_del(n, "emitted_at");
    json_array_append_new(e->replay_notices, n);
    json_object_set_new(e->replay_closed, id, json_true());
    return 1;
}

/* A replay writes no dead letters: the live run wrote them (counted in
 * the metrics and the summary all the same). */
static int replay_dead(rk__engine *e, const char *stream, const char *id, const char *why,
                       const char *data, size_t len)
{
    (void)e; (void)stream; (void)id; (void)why; (void)data; (void)len;
    return 0;
}

static void replay_housekeep(rk__engine *e, int64_t now)
{
    (void)e;
    (void)now;
}

const rk__output rk__output_replay = {replay_alert, replay_notice, replay_dead,
                                      replay_housekeep};

json_t *rk__engine_replay_notices(const rk__engine *e)
{
    return e->replay_notices;
}

json_t *rk__engine_replay_alerts(const rk__engine *e)
{
    return e->replay_alerts;
}

void rk__engine_replay_summary(const rk__engine *e, FILE *f)
{
    json_t *groups = json_object(), *a, *g;
    const char *id, *key;
    fprintf(f, "%-20s %-26s %-9s %8s %9s\n", "detector", "rule", "severity", "alerts",
            "subjects");
    json_object_foreach(e->replay_alerts, id, a) {
        char k[256];
        char *subj = json_dumps(json_object_get(a, "subject"), JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(k, sizeof(k), "%s %s %s", json_string_value(json_object_get(a, "detector")),
                 json_string_value(json_object_get(a, "rule")),
                 json_string_value(json_object_get(a, "severity")));
        g = json_object_get(groups, k);
        if (g == NULL) {
            g = json_pack("{s:i, s:{}}", "n", 0, "subjects");
            json_object_set_new(groups, k, g);
        }
        json_object_set_new(g, "n", json_integer(json_integer_value(json_object_get(g, "n")) + 1));
        if (subj)
            json_object_set_new(json_object_get(g, "subjects"), subj, json_true());
        free(subj);
    }
    json_object_foreach(groups, key, g) {
        char det[128], rule[128], sev[16];
        if (sscanf(key, "%127s %127s %15s", det, rule, sev) == 3)
            fprintf(f, "%-20s %-26s %-9s %8lld %9zu\n", det, rule, sev,
                    (long long)json_integer_value(json_object_get(g, "n")),
                    json_object_size(json_object_get(g, "subjects")));
    }
    {
        unsigned long long events = 0;
        unsigned si, t;
        for (si = 0; si < RK_STREAM_COUNT; si++)     /* (by kind) */
            for (t = 0; t < RK_EV__COUNT; t++)
                events += e->stats.events[si][t];
        fprintf(f, "%zu alerts from %llu events (%llu invalid, %llu of an unknown type)\n",
                json_object_size(e->replay_alerts), events,
                (unsigned long long)(e->stats.invalid[0] + e->stats.invalid[1]),
                (unsigned long long)(e->stats.unknown[0] + e->stats.unknown[1]));
    }
    json_decref(groups);
}

/* Make e (just created) a replay engine for ro: this writer, and the
 * replay input (its cursors at --from, its end at --to). Returns 0, or -1
 * with err when --from or --to is not a position. */
int rk__replay_init(rk__engine *e, const rk__replay_opts *ro, char *err, size_t errlen)
{
    e->out = &rk__output_replay;
    e->ro = *ro;
    e->audit_pending = false;
    e->replay_alerts = json_object();
    e->replay_notices = json_array();
    e->replay_closed = json_object();
    rk__ind_keep_finals(e->ind, false);     /* nothing is written */
    return rk__input_replay_init(e, ro, err, errlen);
}
