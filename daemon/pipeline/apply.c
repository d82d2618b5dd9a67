/* apply.c - apply buffered entries in event-time order.
 *
 * The buffered entries of both streams are merged by ts: the head with the
 * smallest ts goes first, and the merge stops as soon as a stream with more
 * entries in Redis has an empty buffer (a read ahead in flight included),
 * so a stream behind in event time is read before the other runs ahead.
 * Each entry: parse (bad -> dead letter through the output), skip if the
 * state already reflects it (id at or before the stream's applied
 * position), drop or amend repeats by natural key (dedupe.c), enrich from
 * its filing, note lateness, move the watermark (clock.c), fire due timers,
 * hand the event to every detector (or to the override whose match it
 * carries). A recorded wall-clock tick is applied at its positions. */
#include "engine_int.h"


/* ===================================================================
 * Event time
 * =================================================================== */

void rk__fire_timers(rk__engine *e)
{
    rk__timer t;
    if (e->ind != NULL)
        rk__ind_advance(e->ind, rk__clock_now(&e->clock));
    while (rk__clock_pop_due(&e->clock, &t)) {
        rk__det *d = t.det < e->reg.n ? e->reg.dets[t.det] : NULL;
        if (t.det == RK__TIMER_OPEN_TTL) {
            rk__open_ttl_fire(e, t.deadline, t.key);
            free(t.key);
            continue;
        }
        if (d != NULL && d->self != NULL && d->ops->on_timer != NULL &&
            d->ops->on_timer(d->self, t.deadline, t.key, t.arg) < 0) {
            e->stats.detector_errors++;
            rk__inlog_bad(&e->inlog, RK_INLOG_TIMER, rk__wall_ms(),
                          "detector %s failed on timer %s", d->name, t.key);
        }
        free(t.key);
    }
    {
        rk__oa oa;
        int64_t now = rk__clock_now(&e->clock);
        while (rk__ostore_pop_due(&e->open, now, e->cfg->open_ttl, &oa)) {
            char id[33];
            if (oa.det >= e->reg.n)
                continue;
            rk__alert_id_unpack(oa.id, id);
            rk__open_ttl_close(e, oa.ts + e->cfg->open_ttl, e->reg.dets[oa.det]->alert_name,
                               id);
        }
    }
}

void rk__update_watermark(rk__engine *e)
{
    bool *unread = e->unread;
    unsigned s;
    for (s = 0; s < e->nstreams; s++)
        unread[s] = rk__stream_unread(&e->st[s]);
    if (rk__clock_advance(&e->clock, rk__clock_candidate(&e->clock, unread)))
        rk__fire_timers(e);
}

/* Let detectors, cooldowns and filings drop state the watermark has left
 * behind: after every round and before every checkpoint (force). Cooldowns
 * expire from a heap by end time and filings from their FIFO, so that part
 * costs what expires and runs every time. The detectors' on_watermark run
 * at most once per HOUSEKEEP_MS of wall time (and on force): the built-ins
 * expire from heaps of their keys, but an on_watermark may walk its state
 * (fine_growth sweeps its units when the earliest one is due), and a
 * plugin's may too. Results never depend on it: lookups treat expired
 * state as gone. */
void rk__housekeep_state(rk__engine *e, bool force)
{
    int64_t now = rk__clock_now(&e->clock);     /* held back by allowed_lateness */
    uint64_t wall = uv_now(e->loop);
    bool dets = force || wall >= e->next_housekeep;
    size_t i;

    if (now == INT64_MIN)
        return;
    if (dets)
        e->next_housekeep = wall + HOUSEKEEP_MS;
    for (i = 0; i < e->reg.n; i++) {
        rk__det *d = e->reg.dets[i];
        if (dets && d->self && d->ops->on_watermark)
            d->ops->on_watermark(d->self, now);
        if (d->cooldown)
            rk__cooldown_expire(d->cooldown, now);
    }
    rk__tasks_expire(&e->tasks, now);
    rk__dedupe_expire(&e->dedupe, now);
}

/* Does the event carry every field of an override's match? officer_id
 * matches any officer named on the event. */
static bool event_matches(const rk_event *ev, const json_t *match)
{
    const char *k;
    json_t *v;
    json_object_foreach(rk_kit_unconst(match), k, v) {
        const char *want = json_string_value(v), *have = NULL;
        if (strcmp(k, "officer_id") == 0) {
            size_t i;
            bool found = false;
            for (i = 0; i < ev->n_officers && !found; i++)
                found = strcmp(ev->officers[i], want) == 0;
            if (!found)
                return false;
            continue;
        }
        if (strcmp(k, "unit_id") == 0) have = ev->unit_id;
        else if (strcmp(k, "enterprise_id") == 0) have = ev->enterprise_id;
        else if (strcmp(k, "task_id") == 0) have = ev->task_id;
        else if (strcmp(k, "case_id") == 0) have = ev->case_id;
        else if (strcmp(k, "region") == 0) have = ev->region;
        if (have == NULL || strcmp(have, want) != 0)
            return false;
    }
    return true;
}

/* The instance of base detector d that gets this event: its first override
 * whose match the event carries, else d itself. */
static rk__det *route(rk__engine *e, rk__det *d, const rk_event *ev)
{
    size_t i;
    for (i = d->host.idx + 1; i < e->reg.n; i++) {
        rk__det *o = e->reg.dets[i];
        if (o->match != NULL && o->base == d->host.idx && o->self != NULL &&
            event_matches(ev, o->match))
            return o;
    }
    return d;
}

/* Parse the head entry of stream si if not done yet; returns its sort key
 * (INT64_MIN for entries without a usable ts, so they go first). */
static int64_t head_key(rk__engine *e, unsigned si)
{
    stream_state *s = &e->st[si];
    entry *en = &s->buf[s->pos];
    int rc;

    if (s->head_state == 0) {
        s->head_err[0] = '\0';
        if (en->data == NULL) {
            rc = en->missing_data ? RK_PARSE_INVALID : RK_PARSE_UNKNOWN;
            if (en->missing_data)
                snprintf(s->head_err, sizeof(s->head_err), "data: missing");
            memset(&s->head, 0, sizeof(s->head));
        } else {
            rc = rk__event_parse(en->data, en->len, &s->head, &s->mem,
                                 s->head_err, sizeof(s->head_err));
        }
        s->head_state = rc + 10;
    }
    return s->head_state == RK_PARSE_OK + 10 ? s->head.ts : INT64_MIN;
}

/* Natural-key deduplication of the parsed head event ev of stream si
 * (entry en), before enrichment. Returns true when the entry is done with:
 * a duplicate (counted, changes nothing) or a conflicting repeat of a type
 * that cannot be amended (dead-lettered). An amendment is marked
 * RK_EVF_AMENDED and applied. Either way a new or changed key is
 * remembered as applied now. */
static bool repeated(rk__engine *e, unsigned si, entry *en, rk_event *ev)
{
    uint64_t key;
    uint32_t digest;
    int64_t now = rk__clock_now(&e->clock), applied;

    if (e->dedupe.window <= 0 || rk__dedupe_event(ev, &key, &digest) != 0)
        return false;
    switch (rk__dedupe_check(&e->dedupe, key, digest, now)) {
    case RK_DEDUPE_DUPLICATE:
        e->stats.duplicates[ev->type]++;
        return true;
    case RK_DEDUPE_CHANGED:
        if (!rk__dedupe_amendable(ev->type)) {
            char why[RK_ERRLEN];
            rk__event_key_text(ev, why, sizeof(why));
            e->stats.invalid[rk__stream_kind(si)]++;
            e->stats.conflicts[ev->type]++;
            rk__inlog_bad(&e->inlog, RK_INLOG_INVALID, rk__wall_ms(), "%s/%s: %s",
                          e->st[si].key, en->id, why);
            e->out->dead(e, e->st[si].key, en->id, why, en->data ? en->data : "",
                         en->data ? en->len : 0);
            return true;
        }
        ev->flags |= RK_EVF_AMENDED;
        e->stats.amended[ev->type]++;
        break;
    default:
        break;
    }
    applied = e->clock.watermark > ev->ts ? e->clock.watermark : ev->ts;
    if (rk__dedupe_record(&e->dedupe, key, digest, applied) != 0)
        rk__log(RK_LOG_ERR, "out of memory remembering %s/%s for deduplication",
                e->st[si].key, en->id);
    return false;
}

static void apply_head(rk__engine *e, unsigned si)
{
    stream_state *s = &e->st[si];
    entry *en = &s->buf[s->pos];
    int rc = s->head_state - 10;
    rk_event *ev = &s->head;
    size_t i;

    e->dirty = true;
    if (rk__ack_push(s, en->id) != 0)
        rk__log(RK_LOG_ERR, "out of memory recording an ack; %s/%s stays pending",
                s->key, en->id);
    if (en->data == NULL && !en->missing_data) {
        /* A pending entry whose payload was trimmed away. */
        e->stats.trimmed[rk__stream_kind(si)]++;
        rk__inlog_bad(&e->inlog, RK_INLOG_TRIMMED, rk__wall_ms(), "%s/%s", s->key, en->id);
        goto done;
    }
    if (s->has_applied && rk__ref_le(en->ref, s->applied)) {
        e->stats.replayed[rk__stream_kind(si)]++;
        goto done;
    }
    s->applied = en->ref;
    s->has_applied = true;
    if (s->has_suspect && en->ref.ms == s->suspect.ms && en->ref.seq == s->suspect.seq) {
        s->has_suspect = false;
        if (s->suspect_starts > e->cfg->max_deliveries) {
            char why[200];
            snprintf(why, sizeof(why), "poison: riskd stopped %lld times in a row before "
                     "getting past this entry", s->suspect_starts - 1);
            e->poisoned++;
            rk__inlog_bad(&e->inlog, RK_INLOG_POISON, rk__wall_ms(), "%s/%s: %s", s->key,
                          en->id, why);
            e->out->dead(e, s->key, en->id, why, en->data ? en->data : "",
                         en->data ? en->len : 0);
            goto done;
        }
        /* Apply it alone and checkpoint at once, so a crash on it is told
         * apart from a restart that merely happened before a checkpoint. */
        e->careful_pause = true;
    }
    if (rc == RK_PARSE_INVALID) {
        e->stats.invalid[rk__stream_kind(si)]++;
        rk__inlog_bad(&e->inlog, RK_INLOG_INVALID, rk__wall_ms(), "%s/%s: %s", s->key,
                      en->id, s->head_err);
        if (e->out->dead(e, s->key, en->id, s->head_err, en->data ? en->data : "",
                         en->data ? en->len : 0) != 0)
            rk__log(RK_LOG_ERR, "out of memory dead-lettering %s/%s", s->key, en->id);
        goto done;
    }
    if (rc == RK_PARSE_UNKNOWN) {
        e->stats.unknown[rk__stream_kind(si)]++;
        rk__inlog_unknown(&e->inlog, rk__stream_kind(si), s->key, en->id, ev->type_name, rk__wall_ms());
        goto done;
    }
    ev->ref = en->ref;
    ev->ref.stream = si;
    ev->stream_key = s->key;
    ev->entry_id = en->id;
    if (repeated(e, si, en, ev))
        goto done;
    rk__tasks_enrich(&e->tasks, ev, rk__clock_now(&e->clock));
    if (!(ev->flags & RK_EVF_FILING_KNOWN) && ev->task_id != NULL &&
        ev->type != RK_EV_INSPECTION_FILED &&
        rk__dedupe_filing_known(&e->dedupe, ev->task_id, rk__clock_now(&e->clock)))
        ev->flags |= RK_EVF_FILING_SEEN;
    if (ev->type != RK_EV_CLOCK_TICK && e->clock.watermark != INT64_MIN &&
        ev->ts < e->clock.watermark)  /* late: still applied at its own ts */
        rk__inlog_late(&e->inlog, rk__stream_kind(si), s->key, en->id, e->clock.watermark - ev->ts,
                       rk__wall_ms());
    rk__clock_observe(&e->clock, si, ev->ts);
    s->pos++;                       /* so "unread" excludes this entry */
    rk__update_watermark(e);
    s->pos--;
    e->stats.events[rk__stream_kind(si)][ev->type]++;
    if (ev->type != RK_EV_CLOCK_TICK) {
        for (i = 0; i < e->reg.n; i++) {
            rk__det *d = e->reg.dets[i];
            if (d->match != NULL)
                continue;           /* overrides get events through route() */
            d = route(e, d, ev);
            if (d->self == NULL || !rk__det_runs(e, d))
                continue;
            if ((ev->flags & RK_EVF_AMENDED) && d->ops->abi_minor < 1)
                continue;           /* built before amendments: keeps the first */
            if (d->ops->on_event(d->self, ev) < 0) {
                char why[160];
                e->stats.detector_errors++;
                snprintf(why, sizeof(why), "detector %s failed on this entry", d->name);
                rk__inlog_bad(&e->inlog, RK_INLOG_DETECTOR, rk__wall_ms(), "%s/%s: %s",
                              s->key, en->id, why);
                e->out->dead(e, s->key, en->id, why, en->data, en->len);
            }
        }
        if (e->ind != NULL && e->role != RK__ROLE_CROSS && rk__ind_event(e->ind, ev) != 0)
            rk__log(RK_LOG_ERR, "out of memory counting %s/%s in the indicators", s->key,
                    en->id);
        if (ev->type == RK_EV_INSPECTION_FILED &&
            rk__tasks_add(&e->tasks, ev, e->cfg->task_retention,
                          (ev->flags & RK_EVF_AMENDED) != 0) != 0)
            rk__log(RK_LOG_ERR, "out of memory recording filing %s", ev->task_id);
        if (ev->type == RK_EV_INSPECTION_FILED &&
            rk__register_filed(e->filreg, ev->task_id, ev->ts) != 0)
            rk__log(RK_LOG_ERR, "out of memory queueing filing %s for the register",
                    ev->task_id);
    }
done:
    en->data = NULL;                /* the arena stays with the stream */
    s->pos++;
    s->head_state = 0;
}

/* Move the watermark to a recorded wall-clock tick's time (a replay, or a
 * restart re-applying the ticks after its checkpoint). */
static void tick_advance(rk__engine *e, int64_t ts)
{
    e->dirty = true;
    if (rk__clock_advance(&e->clock, ts))
        rk__fire_timers(e);
}

/* Apply buffered entries in ts order until a stream that has more in Redis
 * runs dry (it must be read first - or its read ahead must arrive) or
 * everything is applied. A recorded tick still to apply is a gate: the
 * entries at or before its positions go first, the later ones wait, and
 * once every stream is at its position the tick applies. */
void rk__apply_buffered(rk__engine *e)
{
    for (;;) {
        const rk__tick *tk = rk__ticks_head(&e->ticks);
        int best = -1;
        int64_t best_key = 0;
        unsigned si;
        for (si = 0; si < e->nstreams; si++) {
            stream_state *s = &e->st[si];
            if (s->pos >= s->n && s->nn > 0)
                rk__take_next(s);
            if (s->pos < s->n) {
                int64_t k;
                if (tk != NULL && !rk__ref_le(s->buf[s->pos].ref, tk->pos[si]))
                    continue;       /* after the tick */
                k = head_key(e, si);
                if (best < 0 || k < best_key) {
                    best = (int)si;
                    best_key = k;
                }
            } else if (rk__stream_unread(s)) {
                return;             /* must read this stream first */
            }
        }
        if (best < 0 && tk != NULL) {
            int64_t ts = tk->ts;    /* every stream is at its position */
            rk__ticks_pop(&e->ticks);
            tick_advance(e, ts);
            continue;
        }
        if (best < 0)
            return;
        apply_head(e, (unsigned)best);
        if (e->careful_pause)
            return;
    }
}

/* Would apply_buffered apply anything now? (Entries read ahead while a
 * round was waiting for its alerts or a careful checkpoint.) */
bool rk__merge_ready(const rk__engine *e)
{
    bool any = false;
    unsigned si;
    for (si = 0; si < e->nstreams; si++) {
        if (rk__stream_buffered(&e->st[si]))
            any = true;
        else if (rk__stream_unread(&e->st[si]))
            return false;
    }
    return any;
}
