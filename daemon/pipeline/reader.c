/* reader.c - read both streams and run the rounds.
 *
 * Owns the per-stream buffers and the read in flight:
 *
 *   read     through the engine's input (input.h: XREADGROUP live, fenced
 *            under a lease; XREAD by cursor in a replay) for every stream
 *            whose buffer is empty and which the input still reads. After a (re)connect each
 *            stream first reads this consumer's own pending entries
 *            (cursor "0", then the last id seen) and switches to ">" when
 *            none are left. The read BLOCKs only when every stream is
 *            caught up and nothing is buffered.
 *   ahead    as soon as a batch is taken in (copied into the stream's
 *            buffer), before it is applied, the next read goes out when a
 *            stream may have more in Redis, so Redis works while riskd
 *            applies. Its reply lands in the stream's second batch, which
 *            becomes the buffer when the buffer runs out. One read is in
 *            flight at a time and a stream is only read while its second
 *            batch is free: at most two batches per stream. Nothing of a
 *            read ahead is applied, acknowledged or checkpointed before
 *            the round that takes it in; a stop or a lost connection drops
 *            it (its entries stay pending and are read again).
 *   round    apply what the merge allows (apply.c), then hand the round's
 *            alerts to the output and, when one is due, write the
 *            checkpoint (checkpoint.c) before reading on. */
#include "engine_int.h"


/* ===================================================================
 * Helpers
 * =================================================================== */

/* ===================================================================
 * Reading
 * =================================================================== */

void rk__round_done(rk__engine *e)
{
    uint64_t ns = uv_hrtime() - e->round_hr;
    double secs = (double)ns / 1e9;
    static const double bounds[12] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05, 0.1, 0.25, 0.5, 1.0, 2.5};
    int b;
    for (b = 0; b < 12; b++)
        if (secs <= bounds[b]) {
            e->stats.batch_hist[b]++;
            break;
        }
    e->stats.batches++;
    e->stats.batch_seconds_sum += secs;
    rk__housekeep_state(e, false);
    rk__ob_kick(e);
    /* The next read does not wait for this round's alerts: entries are
     * acknowledged only after a checkpoint, which waits for an empty
     * outbox. Waiting here only when the outbox is large, a checkpoint is
     * due, a suspect entry needs its own checkpoint, or we are stopping. */
    if (rk__ob_pending(e) > 0 &&
        (rk__ob_pending(e) >= OUTBOX_HIGH || rk__checkpoint_due(e) ||
         e->careful_pause || e->stopping)) {
        e->state = E_FLUSHING;
    } else {
        rk__round_finished(e);
    }
}

/* The round is done (and, if we waited, its alerts written): read on, or
 * write the checkpoint that is due (stop, careful entry, interval). */
void rk__round_finished(rk__engine *e)
{
    e->state = E_IDLE;
    if (e->stopping || e->careful_pause) {
        rk__checkpoint(e);              /* careful: on_ack reads on */
        return;
    }
    if (rk__checkpoint_due(e))
        rk__checkpoint(e);              /* written in the background */
    rk__schedule_read(e);
}

/* Take a batch of stream si in: copy the entries of `list` (an XREADGROUP
 * reply's entry list) into the stream's next batch, which becomes the
 * buffer at once when the buffer is used up. Out of memory: the batch is
 * dropped with a log line (the entries stay pending). */
static void copy_entries(rk__engine *e, unsigned si, const redisReply *list)
{
    stream_state *s = &e->st[si];
    size_t i, k;

    size_t need = 0, used = 0;

    if (s->nn > 0) {
        /* Never happens: a stream is only read when its next batch is free. */
        rk__log(RK_LOG_ERR, "internal: %s read while a batch is read ahead", s->key);
        return;
    }
    /* One arena per batch holds every payload (one allocation, not one per
     * entry); it is reused two batches later. */
    for (i = 0; i < list->elements; i++) {
        const redisReply *item = list->element[i];
        if (item->type == REDIS_REPLY_ARRAY && item->elements >= 2 &&
            item->element[1]->type == REDIS_REPLY_ARRAY)
            for (k = 1; k < item->element[1]->elements; k += 2)
                if (item->element[1]->element[k]->type == REDIS_REPLY_STRING)
                    need += item->element[1]->element[k]->len + 1;
    }
    if (need > s->narena_cap) {
        char *a = realloc(s->narena, need);
        if (a == NULL) {
            rk__log(RK_LOG_ERR, "out of memory buffering %zu entries of %s; "
                    "they stay pending", list->elements, s->key);
            return;
        }
        s->narena = a;
        s->narena_cap = need;
    }
    if (list->elements > s->ncap) {
        size_t ncap = list->elements;
        entry *b = realloc(s->nbuf, ncap * sizeof(*b));
        if (b == NULL) {
            rk__log(RK_LOG_ERR, "out of memory buffering %zu entries of %s; "
                    "they stay pending", list->elements, s->key);
            return;
        }
        s->nbuf = b;
        s->ncap = ncap;
    }
    for (i = 0; i < list->elements; i++) {
        const redisReply *item = list->element[i], *fields;
        entry *en = &s->nbuf[s->nn];
        if (item->type != REDIS_REPLY_ARRAY || item->elements < 2 ||
            item->element[0]->type != REDIS_REPLY_STRING ||
            rk__parse_entry_id(item->element[0]->str, item->element[0]->len, &en->ref) != 0)
            continue;
        en->ref.stream = si;
        snprintf(en->id, sizeof(en->id), "%.*s", (int)item->element[0]->len,
                 item->element[0]->str);
        en->data = NULL;
        en->len = 0;
        en->missing_data = 0;
        fields = item->element[1];
        if (fields->type == REDIS_REPLY_ARRAY) {
            en->missing_data = 1;
            for (k = 0; k + 1 < fields->elements; k += 2) {
                const redisReply *f = fields->element[k], *v = fields->element[k + 1];
                if (f->type == REDIS_REPLY_STRING && f->len == 4 &&
                    memcmp(f->str, "data", 4) == 0 && v->type == REDIS_REPLY_STRING) {
                    en->data = s->narena + used;
                    used += v->len + 1;
                    memcpy(en->data, v->str, v->len);
                    en->data[v->len] = '\0';
                    en->len = v->len;
                    en->missing_data = 0;
                    break;
                }
            }
        }
        if (s->phase == PH_PENDING && s->bounded && !rk__ref_le(en->ref, s->bound)) {
            s->bound_hit = true;    /* past the state: '>' delivers it again */
            break;
        }
        if (!e->in->admit(e, en)) {
            s->at_end = true;       /* past the input's end: the stream is done */
            break;
        }
        if (s->phase == PH_PENDING || s->by_cursor)
            snprintf(s->cursor, sizeof(s->cursor), "%s", en->id);
        else
            memcpy(s->seen, en->id, sizeof(s->seen));
        s->nn++;
    }
    if (s->pos >= s->n && s->nn > 0)
        rk__take_next(s);
}
static bool send_read(rk__engine *e, bool ahead);

/* Apply what the merge allows, then finish the round. The next read goes
 * out first (send_read ahead) and is written at once (rk__redis_flush:
 * hiredis would write it only when the loop next polls, after the round),
 * so that Redis works on it meanwhile. started: uv_hrtime() when the round
 * began (for riskd_batch_seconds). */
static void run_round(rk__engine *e, uint64_t started)
{
    e->round_hr = started;
    if (send_read(e, true))
        rk__redis_flush(e->rd);
    if (e->lost)
        return;
    rk__apply_buffered(e);
    rk__update_watermark(e);
    /* Timers armed during the round with a deadline the watermark has
     * already passed (a late scan, say) fire now, not at the next move. */
    rk__fire_timers(e);
    rk__round_done(e);
}

void rk__on_read(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    uint64_t started;
    unsigned si;
    size_t i;
    bool waiting;

    (void)r;
    if (!e->read_inflight)
        return;                     /* forgotten: the connection was lost */
    e->read_inflight = false;
    /* Waiting: nothing to apply until this reply. Otherwise it is a read
     * ahead that arrived while the round waits for its alerts or a
     * checkpoint: the batch is only taken in; schedule_read applies it. */
    waiting = e->state == E_READING;
    if (waiting)
        e->state = E_IDLE;
    if (reply == NULL)
        return;                     /* connection lost: on_rd_state handles it */
    if (e->stopping || e->lost || (e->state != E_IDLE && e->state != E_FLUSHING))
        return;                     /* read but not applied: read again at the next start */
    if (!rk__lease_valid(e))
        return;                     /* read but not applied: the new holder claims it */
    if (rk__is_fenced_reply(reply)) {
        rk__engine_give_up(e, reply->str);
        return;                     /* the read delivered nothing */
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            if (!waiting)
                return;             /* the next read meets it and sets up the group */
            rk__log(RK_LOG_WARNING, "consumer group %s is gone; creating it again",
                    e->cfg->group);
            e->steps->setup_groups(e);
            return;
        }
        rk__read_refused(e, e->in == &rk__input_live ? "XREADGROUP" : "XREAD", reply->str);
        e->read_retry_at = (int64_t)uv_now(e->loop) + READ_RETRY_MS;
        return;
    }
    rk__read_ok(e);
    started = uv_hrtime();
    for (si = 0; si < e->nstreams; si++)
        e->st[si].got = 0;
    /* A stream absent from the reply returned nothing. */
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++) {
            const redisReply *sr = reply->element[i];
            if (sr->type != REDIS_REPLY_ARRAY || sr->elements < 2 ||
                sr->element[0]->type != REDIS_REPLY_STRING ||
                sr->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (si = 0; si < e->nstreams; si++)
                if (e->st[si].requested && strlen(e->st[si].key) == sr->element[0]->len &&
                    memcmp(e->st[si].key, sr->element[0]->str, sr->element[0]->len) == 0)
                    break;
            if (si == e->nstreams)
                continue;
            e->st[si].got = sr->element[1]->elements;
            copy_entries(e, si, sr->element[1]);
        }
    }
    for (si = 0; si < e->nstreams; si++) {
        stream_state *s = &e->st[si];
        if (!e->st[si].requested)
            continue;
        if (s->phase == PH_PENDING) {
            if (s->got == 0 || s->bound_hit) {   /* our pending list is drained */
                s->phase = PH_NEW;
                s->caught_up = false;
                s->bounded = s->bound_hit = false;
            }
        } else {
            s->caught_up = s->got < (size_t)e->cfg->batch || s->at_end;
        }
        if (s->got > 0)
            e->last_input_wall = (int64_t)uv_now(e->loop);
    }
    if (waiting && !e->tick_hold)
        run_round(e, started);      /* held: applied once the tick is */
}

/* The suspect entry is applied and checkpointed: forget it and read on. */
void rk__careful_resume(rk__engine *e)
{
    const char *argv[3] = {"DEL", e->suspect_key, NULL};
    e->careful_pause = false;
    rk__redis_cmd(e->wr, NULL, NULL, 0, 2, argv, NULL);
    if (e->state == E_IDLE) {
        rk__apply_buffered(e);          /* the rest of the round, if any */
        rk__update_watermark(e);
        rk__fire_timers(e);
        if (e->careful_pause || rk__ob_pending(e) > 0) {
            rk__round_done(e);
            return;
        }
        rk__schedule_read(e);
    }
}

/* May a stream with entries still buffered be read ahead? When the input
 * allows it (the live one not while the takeover claims are due: they run
 * once nothing is buffered), and not while the outbox is over its mark
 * (reading pauses for it). */
static bool read_ahead_allowed(const rk__engine *e)
{
    return e->in->may_read_ahead(e) && rk__ob_pending(e) < OUTBOX_HIGH;
}

/* Send the next read on the reader connection, for every stream whose
 * next batch is free: those with an empty buffer, and - when
 * read_ahead_allowed - those still applying one. At most one read is in
 * flight, so a stream has at most its buffer and one batch (read ahead or
 * in flight) beyond it. It BLOCKs only when every stream is caught up and
 * nothing is buffered. A replay reads only the streams not at their end.
 *
 * ahead: called before the round applies the batch just taken in; then
 * the read is sent only when some stream it covers may have more entries
 * in Redis (never a BLOCK read), and not when stopping, during a careful
 * pause, after a failed read (until read_retry_at) or past the lease.
 * Returns true when a read was sent; otherwise the caller's state is
 * unchanged (the caller of a non-ahead read: see schedule_read). */
static bool send_read(rk__engine *e, bool ahead)
{
    int nstreams = 0;
    unsigned si, k, *want = e->want;
    bool block = true, any_buffered = false, more = false;
    bool may_ahead = read_ahead_allowed(e);

    if (e->read_inflight || e->stopping || e->lost || e->careful_pause ||
        !rk__redis_ready(e->rd) || (int64_t)uv_now(e->loop) < e->read_retry_at)
        return false;
    if (ahead && !may_ahead)
        return false;
    for (si = 0; si < e->nstreams; si++) {
        stream_state *s = &e->st[si];
        if (rk__stream_buffered(s))
            any_buffered = true;
        if (s->nn > 0 || (s->pos < s->n && !may_ahead))
            continue;
        if (!e->in->wants(e, s))
            continue;               /* (a replay's stream at its end) */
        want[nstreams++] = si;
        if (s->phase == PH_PENDING || !s->caught_up)
            more = true;
    }
    if (any_buffered)
        block = false;
    for (k = 0; k < (unsigned)nstreams; k++)
        if (e->st[want[k]].phase == PH_PENDING || !e->st[want[k]].caught_up)
            block = false;
    if (nstreams == 0 || (ahead && !more) || !rk__lease_valid(e))
        return false;
    if (!e->in->send(e, want, nstreams, block))
        return false;
    for (si = 0; si < e->nstreams; si++)
        e->st[si].requested = false;
    for (k = 0; k < (unsigned)nstreams; k++)
        e->st[want[k]].requested = true;
    e->read_inflight = true;
    return true;
}

/* The engine is idle: apply what was read ahead if the merge can go on,
 * else wait for the read in flight, run the takeover claims when due, or
 * send the next read (E_READING until its reply); a replay that has read
 * and applied everything finishes. */
void rk__schedule_read(rk__engine *e)
{
    unsigned si;
    bool any_buffered = false;

    if (e->stopping || e->state != E_IDLE || e->careful_pause || e->lost || e->tick_hold)
        return;
    if (rk__merge_ready(e)) {
        if (rk__lease_valid(e))
            run_round(e, uv_hrtime());
        return;
    }
    if (e->read_inflight) {
        e->state = E_READING;
        return;
    }
    if (!rk__redis_ready(e->rd) || (int64_t)uv_now(e->loop) < e->read_retry_at ||
        !rk__lease_valid(e))
        return;
    for (si = 0; si < e->nstreams; si++)
        if (rk__stream_buffered(&e->st[si]))
            any_buffered = true;
    if (e->in->turn(e, any_buffered))
        return;                     /* (the live input's takeover claims) */
    if (send_read(e, false)) {
        e->state = E_READING;
        return;
    }
    e->in->stalled(e, any_buffered);    /* (a replay read to its end finishes) */
}
