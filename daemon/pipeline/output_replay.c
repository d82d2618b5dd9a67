/* output_replay.c - the replay writer (riskd --replay): alerts are printed
 * as JSON lines and collected by id for the summary and the caller;
 * nothing is written to Redis, and dead letters are only counted. */
#include "engine_int.h"


/* Replay: print the alert and remember it; nothing goes to Redis. */
int rk__replay_emit(rk_engine *e, const char *id, const char *det, const rk_alert *a,
                       rk_severity sev, int64_t now_wall)
{
    char *json = rk__alert_json(id, det, a, sev, e->stream_keys, e->cfg->tz_offset_s,
                                now_wall, false);
    json_t *o;
    if (json == NULL)
        return -1;
    if (e->ro.out != NULL)
        fprintf(e->ro.out, "%s\n", json);
    o = json_loads(json, 0, NULL);
    free(json);
    if (o != NULL) {
        json_object_del(o, "emitted_at");
        json_object_set_new(e->replay_alerts, id, o);
    }
    e->stats.alerts_emitted++;
    rk__count_alert(e, det, a->rule, sev);
    return 1;
}

json_t *rk__engine_replay_alerts(const rk_engine *e)
{
    return e->replay_alerts;
}

void rk__engine_replay_summary(const rk_engine *e, FILE *f)
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
        for (si = 0; si < RK_STREAM_COUNT; si++)
            for (t = 0; t < RK_EV__COUNT; t++)
                events += e->stats.events[si][t];
        fprintf(f, "%zu alerts from %llu events (%llu invalid, %llu of an unknown type)\n",
                json_object_size(e->replay_alerts), events,
                (unsigned long long)(e->stats.invalid[0] + e->stats.invalid[1]),
                (unsigned long long)(e->stats.unknown[0] + e->stats.unknown[1]));
    }
    json_decref(groups);
}
