/* input_replay.c - how a replay reads (riskd --replay): by cursor, to an end.
 *
 * No group, no checkpoint, no claims: each stream is read with XREAD from
 * its cursor, set at --from, until a read comes back short or an entry
 * lies past --to; then the stream is at its end. The recorded wall-clock
 * ticks of the live run are read first, whole (XRANGE pages, oldest
 * first), keeping those inside --from/--to, and applied at their
 * positions like the live run did: a replay decides none of its own. When
 * both streams are read and applied, or when Redis is lost (the replay is
 * then incomplete, and says so: rk__engine_replay_lost, exit status 2),
 * the replay finishes: ro.done is called. */
#include "engine_int.h"

/* Both streams are read to the end. Timers still armed stay unfired
 * (event time ends at the last event). */
void rk__replay_finish(rk__engine *e)
{
    if (e->replay_done)
        return;
    e->replay_done = true;
    e->state = E_STOPPED;
    uv_timer_stop(&e->housekeeping);
    if (e->ro.done)
        e->ro.done(e->ro.ud);
}

/* Parse a --from/--to value: an entry id "ms-seq" or "ms" (for --to, "ms"
 * means "ms-<max>"). Returns 0 or -1. */
int rk__replay_pos(const char *s, bool upper, rk_entry_ref *out)
{
    if (rk__parse_entry_id(s, strlen(s), out) == 0)
        return 0;
    {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s-%s", s, upper ? "4294967295" : "0");
        return rk__parse_entry_id(buf, strlen(buf), out);
    }
}

/* The replay input for ro: every stream's cursor at --from, the end at
 * --to. Returns 0, or -1 with err when --from or --to is not a position. */
int rk__input_replay_init(rk__engine *e, const rk__replay_opts *ro, char *err, size_t errlen)
{
    unsigned si;

    e->in = &rk__input_replay;
    for (si = 0; si < e->nstreams; si++) {
        rk_entry_ref from;
        e->st[si].by_cursor = true;
        if (ro->from == NULL || strcmp(ro->from, "0") == 0 || strcmp(ro->from, "-") == 0) {
            snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0-0");
        } else if (rk__replay_pos(ro->from, false, &from) != 0) {
            rk_kit_errf(err, errlen, "--from: expected an entry id or an RFC 3339 time, "
                        "got '%.64s'", ro->from);
            return -1;
        } else if (from.seq > 0) {
            snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "%llu-%u",
                     (unsigned long long)from.ms, from.seq - 1);
        } else {
            /* XREAD returns ids after the cursor: the last id before. */
            snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "%llu-18446744073709551615",
                     (unsigned long long)(from.ms ? from.ms - 1 : 0));
            if (from.ms == 0)
                snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0-0");
        }
    }
    if (ro->from != NULL && strcmp(ro->from, "-") != 0 &&
        rk__replay_pos(ro->from, false, &e->replay_from) != 0)
        memset(&e->replay_from, 0, sizeof(e->replay_from));
    if (ro->to != NULL) {
        if (rk__replay_pos(ro->to, true, &e->replay_to) != 0) {
            rk_kit_errf(err, errlen, "--to: expected an entry id or an RFC 3339 time, "
                        "got '%.64s'", ro->to);
            return -1;
        }
        e->replay_has_to = true;
    }
    return 0;
}

/* Connected (once: a replay does not survive a lost Redis): the ticks,
 * then the first read. */
static void replay_start(rk__engine *e)
{
    unsigned si;
    if (e->ever_ready)
        return;
    e->ever_ready = true;
    for (si = 0; si < e->nstreams; si++) {
        e->st[si].phase = PH_NEW;
        e->st[si].caught_up = false;
    }
    rk__ticks_load(e);
}

static void replay_down(rk__engine *e)
{
    e->read_inflight = false;
    if (!e->ever_ready || e->replay_done)
        return;                     /* not begun yet: it begins once connected */
    rk__log(RK_LOG_ERR, "replay: lost the connection to Redis; the replay is incomplete");
    e->replay_lost = true;
    rk__replay_finish(e);
}

int rk__engine_replay_conns(const rk__engine *e, const rk__redis **out, int max)
{
    int n = 0;
    if (n < max && e->rd != NULL)
        out[n++] = e->rd;
    if (n < max && e->wr != NULL)
        out[n++] = e->wr;
    return n;
}

bool rk__engine_replay_lost(const rk__engine *e)
{
    return e->replay_lost;
}

/* Past --to: the stream is at its end. */
static bool replay_admit(const rk__engine *e, const entry *en)
{
    return !e->replay_has_to || rk__ref_le(en->ref, e->replay_to);
}

static bool replay_wants(const rk__engine *e, const stream_state *s)
{
    (void)e;
    return !s->caught_up;           /* at its end (or past --to): not read again */
}

static bool replay_may_read_ahead(const rk__engine *e)
{
    (void)e;
    return true;
}

static bool replay_send(rk__engine *e, const unsigned *want, int n, bool block)
{
    const char *argv[24];
    char count[16];
    int argc = 0, k;

    (void)block;                    /* never: the end is where a read comes back short */
    snprintf(count, sizeof(count), "%d", e->cfg->batch);
    argv[argc++] = "XREAD";
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    argv[argc++] = "STREAMS";
    for (k = 0; k < n; k++)
        argv[argc++] = e->st[want[k]].key;
    for (k = 0; k < n; k++)
        argv[argc++] = e->st[want[k]].cursor;
    return rk__redis_cmd(e->rd, rk__on_read, e, 0, argc, argv, NULL) == 0;
}

static bool replay_turn(rk__engine *e, bool any_buffered)
{
    (void)e;
    (void)any_buffered;
    return false;
}

/* Nothing to read and nothing buffered: done when every stream is at its
 * end (otherwise the read could not be sent, and is retried). */
static void replay_stalled(rk__engine *e, bool any_buffered)
{
    unsigned si;
    if (any_buffered)
        return;
    for (si = 0; si < e->nstreams; si++)
        if (!e->st[si].caught_up)
            return;
    rk__replay_finish(e);
}

/* ===================================================================
 * The live run's wall-clock ticks
 * =================================================================== */

static void replay_ticks_cmd(rk__engine *e, const char *argv[6], const char *page)
{
    argv[0] = "XRANGE"; argv[1] = e->clock_key;
    argv[2] = e->ticks_cursor[0] ? e->ticks_cursor : "-"; argv[3] = "+";
    argv[4] = "COUNT";
    argv[5] = page;
}

/* Is a tick inside --from/--to? Past --to when a position is after it;
 * before --from when every position is before it. */
static bool tick_in_range(const rk__engine *e, const rk__tick *k)
{
    bool from = e->replay_from.ms == 0 && e->replay_from.seq == 0;
    unsigned si;
    for (si = 0; si < e->nstreams; si++) {
        if (e->replay_has_to && !rk__ref_le(k->pos[si], e->replay_to))
            return false;
        if (rk__ref_le(e->replay_from, k->pos[si]))
            from = true;
    }
    return from;
}

/* XRANGE pages, oldest first. */
static bool replay_ticks_take(rk__engine *e, const redisReply *reply, int page)
{
    rk__tick k;
    size_t i;
    if (rk__tick_init(&k, e->nstreams) != 0) {
        rk__log(RK_LOG_ERR, "out of memory reading the wall-clock ticks");
        return false;
    }
    for (i = 0; i < reply->elements; i++) {
        const redisReply *it = reply->element[i];
        if (it->type == REDIS_REPLY_ARRAY && it->elements >= 2 &&
            it->element[0]->type == REDIS_REPLY_STRING)
            snprintf(e->ticks_cursor, sizeof(e->ticks_cursor), "(%.*s",
                     (int)it->element[0]->len, it->element[0]->str);
        if (rk__tick_parse(it, e->stream_keys, &k) == 0 && tick_in_range(e, &k) &&
            rk__ticks_push(&e->ticks, &k) != 0)
            rk__log(RK_LOG_ERR, "out of memory reading the wall-clock ticks");
    }
    rk__tick_free(&k);
    return reply->elements >= (size_t)page;     /* the next page */
}

static void replay_ticks_failed(rk__engine *e, const char *why)
{
    if (why != NULL) {
        rk__log(RK_LOG_WARNING, "reading the wall-clock ticks %s failed (%s): the replay "
                "may differ from the live run", e->clock_key, why);
        return;
    }
    rk__log(RK_LOG_WARNING, "cannot read the wall-clock ticks %s: the replay may differ "
            "from the live run", e->clock_key);
    rk__ticks_loaded(e);
}

static void replay_ticks_loaded(rk__engine *e)
{
    e->state = E_IDLE;
    rk__schedule_read(e);
}

const rk__input rk__input_replay = {
    replay_start, replay_down, replay_admit, replay_wants, replay_may_read_ahead, replay_send,
    replay_turn, replay_stalled, false, replay_ticks_cmd, replay_ticks_take,
    replay_ticks_failed, replay_ticks_loaded,
};
