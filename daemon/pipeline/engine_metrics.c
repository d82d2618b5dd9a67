/* engine_metrics.c - the engine's numbers as Prometheus text.
 *
 * Counters live as numbers in the structs that own them (rk__engine_stats_t,
 * the outbox's, the input log's...); this is the one place that renders
 * them. It also polls, every LAG_POLL_MS on the writer connection (never
 * waiting for the replies), each stream's consumer lag: XINFO GROUPS gives
 * our group's lag (entries not yet delivered), pending count and last
 * delivered id; then the age of the oldest entry not yet acknowledged comes
 * from its id's time - the smallest pending id (XPENDING summary), or when
 * nothing is pending and the group lags, the first entry after the last
 * delivered one (XRANGE). */
#include "engine_int.h"


typedef struct lag_req {
    rk__engine *e;
    unsigned si;
} lag_req;

/* Stream si's oldest unacknowledged entry is `id`: keep its time (the
 * milliseconds part; the age is taken when rendered). -1 when malformed. */
static void set_oldest(rk__engine *e, unsigned si, const redisReply *id)
{
    rk_entry_ref ref;
    if (id == NULL || id->type != REDIS_REPLY_STRING ||
        rk__parse_entry_id(id->str, id->len, &ref) != 0) {
        e->st[si].group_oldest_ms = -1;
        return;
    }
    e->st[si].group_oldest_ms = ref.ms > 0 ? (int64_t)ref.ms : 1;
}

/* The age in ms of stream si's oldest unacknowledged entry: 0 none (or
 * stamped in the future), -1 unknown. */
static int64_t lag_ms(const rk__engine *e, unsigned si)
{
    int64_t age;
    if (e->st[si].group_oldest_ms <= 0)
        return e->st[si].group_oldest_ms;
    age = rk__wall_ms() - e->st[si].group_oldest_ms;
    return age > 0 ? age : 0;
}

/* XPENDING <stream> <group>: [count, smallest id, greatest id, consumers]. */
static void on_xpending_summary(rk__redis *r, redisReply *reply, void *pd)
{
    lag_req *q = pd;
    (void)r;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2) {
        if (reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 0)
            q->e->st[q->si].group_oldest_ms = 0;
        else
            set_oldest(q->e, q->si, reply->element[1]);
    }
    free(q);
}

/* XRANGE <stream> (<last delivered> + COUNT 1: the oldest undelivered. */
static void on_xrange_next(rk__redis *r, redisReply *reply, void *pd)
{
    lag_req *q = pd;
    (void)r;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
        if (reply->elements == 0)
            q->e->st[q->si].group_oldest_ms = 0;
        else if (reply->element[0]->type == REDIS_REPLY_ARRAY &&
                 reply->element[0]->elements >= 1)
            set_oldest(q->e, q->si, reply->element[0]->element[0]);
    }
    free(q);
}

/* Ask for the age of stream si's oldest unacknowledged entry (see the top
 * of the file); last is the group's last delivered id. */
static void poll_age(rk__engine *e, unsigned si, long long lag, long long pending,
                     const char *last)
{
    char from[64];
    lag_req *q;
    if (pending <= 0 && lag == 0) {
        e->st[si].group_oldest_ms = 0;
        return;
    }
    if ((q = malloc(sizeof(*q))) == NULL)
        return;
    q->e = e;
    q->si = si;
    if (pending > 0) {
        const char *argv[3] = {"XPENDING", e->st[si].key, e->cfg->group};
        if (rk__redis_cmd(e->wr, on_xpending_summary, q, 0, 3, argv, NULL) != 0)
            free(q);
        return;
    }
    snprintf(from, sizeof(from), "(%s", last);
    {
        const char *argv[6] = {"XRANGE", e->st[si].key, from, "+", "COUNT", "1"};
        if (rk__redis_cmd(e->wr, on_xrange_next, q, 0, 6, argv, NULL) != 0)
            free(q);
    }
}

/* XINFO GROUPS <stream>: keep lag and pending of our group for metrics,
 * then ask for the age of its oldest entry not yet acknowledged. */
static void on_xinfo(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = ((lag_req *)pd)->e;
    unsigned si = ((lag_req *)pd)->si;
    size_t i, k;
    (void)r;
    free(pd);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (i = 0; i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        long long lag = -1, pending = -1;
        char last[48] = "0-0";
        bool ours = false;
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        for (k = 0; k + 1 < g->elements; k += 2) {
            const redisReply *f = g->element[k], *v = g->element[k + 1];
            if (f->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(f->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                ours = strcmp(v->str, e->cfg->group) == 0;
            else if (strcmp(f->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = v->integer;
            else if (strcmp(f->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                lag = v->integer;
            else if (strcmp(f->str, "last-delivered-id") == 0 &&
                     v->type == REDIS_REPLY_STRING && v->len < sizeof(last))
                snprintf(last, sizeof(last), "%s", v->str);
        }
        if (ours) {
            e->st[si].group_lag = lag;
            e->st[si].group_pending = pending;
            poll_age(e, si, lag, pending, last);
        }
    }
}

void rk__poll_xinfo(rk__engine *e)
{
    unsigned si;
    for (si = 0; si < e->nstreams; si++) {
        const char *argv[3] = {"XINFO", "GROUPS", e->st[si].key};
        lag_req *pd = malloc(sizeof(*pd));
        if (pd == NULL)
            return;
        pd->e = e;
        pd->si = si;
        if (rk__redis_cmd(e->wr, on_xinfo, pd, 0, 3, argv, NULL) != 0) {
            free(pd);
            return;
        }
    }
}

void rk__engine_lag(const rk__engine *e, long long *entries, double *seconds)
{
    unsigned si;
    *entries = -1;
    *seconds = -1;
    for (si = 0; si < e->nstreams; si++) {
        if (e->st[si].group_lag >= 0)
            *entries = (*entries < 0 ? 0 : *entries) + e->st[si].group_lag;
        int64_t ms = lag_ms(e, si);
        if (ms >= 0 && (double)ms / 1000.0 > *seconds)
            *seconds = (double)ms / 1000.0;
    }
}

bool rk__engine_ever_ready(const rk__engine *e)
{
    return e->ever_ready;
}

/* ===================================================================
 * Metrics
 * =================================================================== */

int rk__engine_healthy(const rk__engine *e)
{
    return rk__redis_ready(e->rd) && rk__redis_ready(e->wr) && e->ever_ready &&
           e->read_err[0] == '\0' &&
           (e->wr_out == NULL || (rk__redis_ready(e->wr_out) && rk__redis_ready(e->wr_dead))) &&
           e->state != E_CONNECTING && e->state != E_SETUP && e->state != E_LOADING &&
           e->state != E_STOPPED;
}

#define FAM rk__prom_family
#define S rk__prom_sample
#define ULL(x) ((unsigned long long)(x))

/* Add e's metrics to m (with m's label, if any). */
void rk__engine_metrics(rk__engine *e, rk__prom *m)
{
    const rk__outbox_stats_t *os = rk__outbox_stats(e->ob);
    static const char *const le[12] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                       "0.05", "0.1", "0.25", "0.5", "1", "2.5"};
    unsigned si, t;
    uint64_t cum = 0;
    int i;

    FAM(m, "riskd_events_total", "# HELP riskd_events_total Events applied, by stream and type.\n"
        "# TYPE riskd_events_total counter\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        for (t = 1; t < RK_EV__COUNT; t++)
            S(m, "riskd_events_total", "{stream=\"%s\",type=\"%s\"} %llu", e->cfg->stream_key[si],
              rk__event_type_name((rk_event_type)t), ULL(e->stats.events[si][t]));
    FAM(m, "riskd_invalid_events_total",
        "# HELP riskd_invalid_events_total Entries dead-lettered as invalid.\n"
        "# TYPE riskd_invalid_events_total counter\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        S(m, "riskd_invalid_events_total", "{stream=\"%s\"} %llu", e->cfg->stream_key[si],
          ULL(e->stats.invalid[si]));
    rk__inlog_metrics(&e->inlog, m, (const char *const *)e->cfg->stream_key);
    FAM(m, "riskd_duplicate_events_total",
        "# HELP riskd_duplicate_events_total Repeated events (same natural key and "
        "values within state.dedupe_window), acknowledged and skipped.\n"
        "# TYPE riskd_duplicate_events_total counter\n");
    for (t = 1; t < RK_EV_CLOCK_TICK; t++)
        S(m, "riskd_duplicate_events_total", "{type=\"%s\"} %llu",
          rk__event_type_name((rk_event_type)t), ULL(e->stats.duplicates[t]));
    FAM(m, "riskd_amended_events_total",
        "# HELP riskd_amended_events_total Filings and decisions that replaced an "
        "earlier one of the same natural key.\n"
        "# TYPE riskd_amended_events_total counter\n");
    for (t = 1; t < RK_EV_CLOCK_TICK; t++)
        if (rk__dedupe_amendable((rk_event_type)t))
            S(m, "riskd_amended_events_total", "{type=\"%s\"} %llu",
              rk__event_type_name((rk_event_type)t), ULL(e->stats.amended[t]));
    FAM(m, "riskd_conflicting_events_total",
        "# HELP riskd_conflicting_events_total Repeats of a natural key with other "
        "values for a type that cannot be amended (dead-lettered).\n"
        "# TYPE riskd_conflicting_events_total counter\n");
    for (t = 1; t < RK_EV_CLOCK_TICK; t++)
        if (!rk__dedupe_amendable((rk_event_type)t))
            S(m, "riskd_conflicting_events_total", "{type=\"%s\"} %llu",
              rk__event_type_name((rk_event_type)t), ULL(e->stats.conflicts[t]));
    FAM(m, "riskd_dedupe_keys",
        "# HELP riskd_dedupe_keys Natural keys remembered (state.dedupe_window).\n"
        "# TYPE riskd_dedupe_keys gauge\n");
    S(m, "riskd_dedupe_keys", " %zu", rk__dedupe_count(&e->dedupe));
    FAM(m, "riskd_dedupe_bytes",
        "# HELP riskd_dedupe_bytes Memory of the remembered natural keys.\n"
        "# TYPE riskd_dedupe_bytes gauge\n");
    S(m, "riskd_dedupe_bytes", " %zu", rk__dedupe_bytes(&e->dedupe));
    FAM(m, "riskd_trimmed_pending_total",
        "# HELP riskd_trimmed_pending_total Pending entries whose payload was " "trimmed.\n"
        "# TYPE riskd_trimmed_pending_total counter\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        S(m, "riskd_trimmed_pending_total", "{stream=\"%s\"} %llu", e->cfg->stream_key[si],
          ULL(e->stats.trimmed[si]));
    FAM(m, "riskd_alerts_emitted_total",
        "# HELP riskd_alerts_emitted_total Alerts emitted by detectors (before "
        "de-duplication).\n"
        "# TYPE riskd_alerts_emitted_total counter\n");
    S(m, "riskd_alerts_emitted_total", " %llu", ULL(e->stats.alerts_emitted));
    FAM(m, "riskd_alerts_total", "# HELP riskd_alerts_total Alerts emitted, by detector, rule and "
        "severity.\n"
        "# TYPE riskd_alerts_total counter\n");
    {
        size_t bk;
        rk_map_entry *it;
        for (it = rk_map_first(&e->alert_counts, &bk); it;
             it = rk_map_next(&e->alert_counts, &bk, it)) {
            char det[128], rule[128], sev[16];
            if (sscanf(it->key, "%127s %127s %15s", det, rule, sev) == 3)
                S(m, "riskd_alerts_total", "{detector=\"%s\",rule=\"%s\",severity=\"%s\"} %llu",
                  det, rule, sev, ULL(*(uint64_t *)it->value));
        }
    }
    FAM(m, "riskd_group_lag",
        "# HELP riskd_group_lag Entries of the stream not yet delivered to the "
        "group (XINFO GROUPS lag; -1 unknown).\n"
        "# TYPE riskd_group_lag gauge\n");
    for (si = 0; si < e->nstreams; si++)
        S(m, "riskd_group_lag", "{stream=\"%s\"} %lld", e->st[si].key, e->st[si].group_lag);
    FAM(m, "riskd_group_lag_seconds",
        "# HELP riskd_group_lag_seconds Age of the stream's oldest entry the group has "
        "not acknowledged (smallest pending id, else first undelivered id; 0 none; -1 "
        "unknown).\n"
        "# TYPE riskd_group_lag_seconds gauge\n");
    for (si = 0; si < e->nstreams; si++)
        S(m, "riskd_group_lag_seconds", "{stream=\"%s\"} %.3f", e->st[si].key,
          lag_ms(e, si) < 0 ? -1.0 : (double)lag_ms(e, si) / 1000.0);
    FAM(m, "riskd_group_pending",
        "# HELP riskd_group_pending Entries delivered but not acknowledged (XINFO "
        "GROUPS pending; -1 unknown).\n"
        "# TYPE riskd_group_pending gauge\n");
    for (si = 0; si < e->nstreams; si++)
        S(m, "riskd_group_pending", "{stream=\"%s\"} %lld", e->st[si].key,
          e->st[si].group_pending);
    FAM(m, "riskd_alerts_written_total",
        "# HELP riskd_alerts_written_total Alerts written to the alert stream and " "channel.\n"
        "# TYPE riskd_alerts_written_total counter\n");
    S(m, "riskd_alerts_written_total", " %llu", ULL(os->written));
    FAM(m, "riskd_alerts_duplicate_total",
        "# HELP riskd_alerts_duplicate_total Alerts dropped because their id was "
        "already written.\n"
        "# TYPE riskd_alerts_duplicate_total counter\n");
    S(m, "riskd_alerts_duplicate_total", " %llu", ULL(os->duplicates));
    FAM(m, "riskd_notices_emitted_total",
        "# HELP riskd_notices_emitted_total Notices (resolved, retracted, closed) the "
        "detectors and the open_ttl timers asked for.\n"
        "# TYPE riskd_notices_emitted_total counter\n");
    S(m, "riskd_notices_emitted_total", " %llu", ULL(e->stats.notices_emitted));
    FAM(m, "riskd_notices_written_total",
        "# HELP riskd_notices_written_total Notices written to the alert stream and "
        "channel.\n"
        "# TYPE riskd_notices_written_total counter\n");
    S(m, "riskd_notices_written_total", " %llu", ULL(os->notices_written));
    FAM(m, "riskd_notices_not_open_total",
        "# HELP riskd_notices_not_open_total Notices not written because their alert "
        "was no longer open (or never written).\n"
        "# TYPE riskd_notices_not_open_total counter\n");
    S(m, "riskd_notices_not_open_total", " %llu", ULL(os->not_open));
    if (e->filreg != NULL) {
        FAM(m, "riskd_alerts_filed_elsewhere_total",
            "# HELP riskd_alerts_filed_elsewhere_total scan_without_filing and "
            "case_without_filing alerts not written: another partition filed the task "
            "in time (the filing register).\n"
            "# TYPE riskd_alerts_filed_elsewhere_total counter\n");
        S(m, "riskd_alerts_filed_elsewhere_total", " %llu", ULL(os->filed_elsewhere));
        FAM(m, "riskd_alerts_waiting_total",
            "# HELP riskd_alerts_waiting_total Times such an alert waited because a "
            "partition's watermark was not past its deadline yet (retried).\n"
            "# TYPE riskd_alerts_waiting_total counter\n");
        S(m, "riskd_alerts_waiting_total", " %llu", ULL(os->held));
        FAM(m, "riskd_register_filings_total",
            "# HELP riskd_register_filings_total Filings written to the filing " "register.\n"
            "# TYPE riskd_register_filings_total counter\n");
        S(m, "riskd_register_filings_total", " %llu",
          ULL(rk__register_stats_of(e->filreg)->recorded));
        FAM(m, "riskd_register_pending",
            "# HELP riskd_register_pending Filings applied, not yet in the register.\n"
            "# TYPE riskd_register_pending gauge\n");
        S(m, "riskd_register_pending", " %zu", rk__register_pending(e->filreg));
    }
    FAM(m, "riskd_alerts_silenced_total",
        "# HELP riskd_alerts_silenced_total Alerts matched by an operator's "
        "silence (written with \"silenced\": true, not published).\n"
        "# TYPE riskd_alerts_silenced_total counter\n");
    S(m, "riskd_alerts_silenced_total", " %llu", ULL(e->silenced));
    FAM(m, "riskd_silences", "# HELP riskd_silences Silences known (active or not).\n"
        "# TYPE riskd_silences gauge\n");
    S(m, "riskd_silences", " %zu", rk__silences_count(e->silences));
    FAM(m, "riskd_alerts_held_back_total",
        "# HELP riskd_alerts_held_back_total Alerts silenced by a cooldown.\n"
        "# TYPE riskd_alerts_held_back_total counter\n");
    S(m, "riskd_alerts_held_back_total", " %llu", ULL(e->stats.held_back));
    FAM(m, "riskd_dead_letters_total", "# HELP riskd_dead_letters_total Dead letters written.\n"
        "# TYPE riskd_dead_letters_total counter\n");
    S(m, "riskd_dead_letters_total", " %llu", ULL(rk__outbox_stats(rk__dead_ob(e))->dead_written));
    FAM(m, "riskd_detector_errors_total",
        "# HELP riskd_detector_errors_total Detector failures on an event or " "timer.\n"
        "# TYPE riskd_detector_errors_total counter\n");
    S(m, "riskd_detector_errors_total", " %llu", ULL(e->stats.detector_errors));
    FAM(m, "riskd_redis_reconnects_total",
        "# HELP riskd_redis_reconnects_total Reconnection attempts to Redis.\n"
        "# TYPE riskd_redis_reconnects_total counter\n");
    S(m, "riskd_redis_reconnects_total", "{connection=\"reader\"} %llu",
      ULL(rk__redis_reconnects(e->rd)));
    S(m, "riskd_redis_reconnects_total", "{connection=\"writer\"} %llu",
      ULL(rk__redis_reconnects(e->wr)));
    FAM(m, "riskd_reads_refused_total",
        "# HELP riskd_reads_refused_total Reads of the input streams Redis answered "
        "with an error.\n"
        "# TYPE riskd_reads_refused_total counter\n");
    S(m, "riskd_reads_refused_total", " %llu", ULL(e->reads_refused_total));
    FAM(m, "riskd_up", "# HELP riskd_up 1 when connected and consuming.\n"
        "# TYPE riskd_up gauge\n");
    S(m, "riskd_up", " %d", rk__engine_healthy(e));
    if (e->clock.watermark != INT64_MIN) {
        FAM(m, "riskd_watermark_seconds",
            "# HELP riskd_watermark_seconds Event-time watermark (Unix seconds).\n"
            "# TYPE riskd_watermark_seconds gauge\n");
        S(m, "riskd_watermark_seconds", " %.3f", (double)e->clock.watermark / 1000.0);
        FAM(m, "riskd_watermark_lag_seconds",
            "# HELP riskd_watermark_lag_seconds Wall clock minus the watermark.\n"
            "# TYPE riskd_watermark_lag_seconds gauge\n");
        S(m, "riskd_watermark_lag_seconds", " %.3f",
          (double)(rk__wall_ms() - e->clock.watermark) / 1000.0);
    }
    FAM(m, "riskd_claimed_total",
        "# HELP riskd_claimed_total Entries taken over from another consumer.\n"
        "# TYPE riskd_claimed_total counter\n");
    S(m, "riskd_claimed_total", " %llu", ULL(e->claimed));
    FAM(m, "riskd_poison_total", "# HELP riskd_poison_total Entries dead-lettered after too many "
        "deliveries.\n"
        "# TYPE riskd_poison_total counter\n");
    S(m, "riskd_poison_total", " %llu", ULL(e->poisoned));
    FAM(m, "riskd_group_rewinds_total",
        "# HELP riskd_group_rewinds_total Streams whose group was set back to the "
        "restored state's position.\n"
        "# TYPE riskd_group_rewinds_total counter\n");
    S(m, "riskd_group_rewinds_total", " %llu", ULL(e->stats.group_rewinds));
    FAM(m, "riskd_checkpoints_total", "# HELP riskd_checkpoints_total Checkpoints written.\n"
        "# TYPE riskd_checkpoints_total counter\n");
    S(m, "riskd_checkpoints_total", " %llu", ULL(e->checkpoints));
    if (e->last_ckpt_wall > 0) {
        FAM(m, "riskd_checkpoint_age_seconds",
            "# HELP riskd_checkpoint_age_seconds Time since the last checkpoint.\n"
            "# TYPE riskd_checkpoint_age_seconds gauge\n");
        S(m, "riskd_checkpoint_age_seconds", " %.3f",
          (double)(rk__wall_ms() - e->last_ckpt_wall) / 1000.0);
    }
    FAM(m, "riskd_timers", "# HELP riskd_timers Timers armed on event time (the detectors' and the "
        "alerts.open_ttl deadlines of the open alerts).\n"
        "# TYPE riskd_timers gauge\n");
    S(m, "riskd_timers", " %zu", e->clock.ntimers + rk__ostore_count(&e->open));
    FAM(m, "riskd_alerts_open", "# HELP riskd_alerts_open Alerts written and not yet resolved, "
        "retracted or closed by riskd.\n"
        "# TYPE riskd_alerts_open gauge\n");
    S(m, "riskd_alerts_open", " %zu", rk__ostore_count(&e->open));
    FAM(m, "riskd_filings_tracked", "# HELP riskd_filings_tracked Filings kept for enrichment.\n"
        "# TYPE riskd_filings_tracked gauge\n");
    S(m, "riskd_filings_tracked", " %zu", e->tasks.map.count);
    FAM(m, "riskd_detector_tracked_keys",
        "# HELP riskd_detector_tracked_keys Keys each detector tracks.\n"
        "# TYPE riskd_detector_tracked_keys gauge\n");
    for (i = 0; i < (int)e->reg.n; i++) {
        rk__det *d = e->reg.dets[i];
        if (d->self && d->ops->tracked_keys)
            S(m, "riskd_detector_tracked_keys", "{detector=\"%s\"} %zu", d->name,
              d->ops->tracked_keys(d->self));
    }
    FAM(m, "riskd_batch_seconds", "# HELP riskd_batch_seconds Time to apply one batch.\n"
        "# TYPE riskd_batch_seconds histogram\n");
    for (i = 0; i < 12; i++) {
        cum += e->stats.batch_hist[i];
        S(m, "riskd_batch_seconds_bucket", "{le=\"%s\"} %llu", le[i], ULL(cum));
    }
    S(m, "riskd_batch_seconds_bucket", "{le=\"+Inf\"} %llu", ULL(e->stats.batches));
    S(m, "riskd_batch_seconds_sum", " %.6f", e->stats.batch_seconds_sum);
    S(m, "riskd_batch_seconds_count", " %llu", ULL(e->stats.batches));
    rk__ind_metrics(e, m);
}

void rk__engine_render_metrics(rk__engine *e, rk_buf *b)
{
    rk__prom m = {0};
    rk__engine_metrics(e, &m);
    rk__prom_finish(&m, b);
}
