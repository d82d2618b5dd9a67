/* wallclock.c - the watermark moves with the wall clock while idle,
 * through ticks recorded in Redis (the records themselves: ticks.c). */
#include "engine_int.h"


/* ===================================================================
 * Wall-clock ticks (ticks.c)
 *
 * A live engine that has been idle for clock.idle decides a tick: the wall
 * clock, and the last entry applied of each stream. It records the tick in
 * <state.key>:clock and applies nothing (tick_hold) until Redis confirmed
 * the write; then the watermark moves to it and due timers fire, so every
 * alert the move raises is queued after the record is durable. A tick is
 * decided when a timer is due (at most one per clock.idle / 6, and one a
 * second) and otherwise once every clock.idle, so that the watermark stays
 * near the wall clock while idle without a record every 250 ms.
 * A write Redis refuses (a missing ACL right) is logged and the watermark
 * stays; a lost reply sends the same tick again (the script appends it
 * only once). The ticks written after the checkpoint (newer than its
 * watermark) are read back at a restart, and a replay reads those of its
 * range: both apply them at their positions (apply_buffered).
 * =================================================================== */

#define TICK_MIN_MS 1000            /* ticks for due timers: at most one a second, */
#define TICK_IDLE_SHARE 6           /* or one per clock.idle / 6 if more */
#define TICKS_PAGE 1000             /* ticks per XRANGE / XREVRANGE */

/* The tick is recorded: move the watermark, fire what is due, then apply
 * what was read meanwhile. */
static void tick_recorded(rk__engine *e)
{
    e->tick_hold = false;
    e->tick_warned = false;
    e->last_tick = (int64_t)uv_now(e->loop);
    if (e->stopping || e->lost)
        return;                     /* not applied: a restart reads it back */
    if (rk__clock_advance(&e->clock, e->tick.ts)) {
        e->dirty = true;
        rk__fire_timers(e);
        rk__housekeep_state(e, false);
        rk__ob_kick(e);
    }
    if (e->state == E_IDLE)
        rk__schedule_read(e);
}

static void on_tick_wait(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    bool written = e->tick_written;
    (void)r;
    e->tick_inflight--;
    e->tick_written = false;
    if (written && e->tick_hold && reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer >= e->cfg->redis_wait_replicas)
        tick_recorded(e);
    /* otherwise sent again by the housekeeping timer */
}

static void on_tick_written(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    (void)r;
    e->tick_inflight--;
    if (!e->tick_hold || e->lost)
        return;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        if (e->tick_inflight > 0)
            e->tick_written = true; /* confirmed by the WAIT behind it */
        else
            tick_recorded(e);
        return;
    }
    if (reply == NULL)
        return;                     /* connection lost: sent again */
    if (rk__is_fenced_reply(reply)) {
        rk__engine_give_up(e, reply->str);
        return;
    }
    /* Refused, so not written: the watermark stays where it is. */
    if (!e->tick_warned)
        rk__log(RK_LOG_ERR, "recording a wall-clock tick in %s failed (%s): the watermark "
                "does not move with the wall clock until it can be recorded", e->clock_key,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    e->tick_warned = true;
    e->tick_hold = false;
    e->last_tick = (int64_t)uv_now(e->loop);
    if (e->state == E_IDLE)
        rk__schedule_read(e);
}

/* Send the tick's write (and WAIT with redis.wait_replicas). */
void rk__tick_send(rk__engine *e)
{
    char (*buf)[48], epoch[24] = "", maxlen[24];
    const char **argv;
    int argc = 0, rc;

    if (e->tick_inflight > 0 || !rk__redis_ready(e->wr) || !rk__lease_valid(e))
        return;
    buf = malloc((e->tick.n + 1) * sizeof(*buf));
    argv = malloc((7 + RK_TICK_ARGS(e->tick.n)) * sizeof(*argv));
    if (buf == NULL || argv == NULL) {
        free(buf);
        free(argv);
        return;                     /* sent again by the housekeeping */
    }
    if (e->leased)
        snprintf(epoch, sizeof(epoch), "%lld", e->epoch);
    snprintf(maxlen, sizeof(maxlen), "%lld", (long long)e->cfg->alerts_maxlen);
    argv[argc++] = "EVAL";
    argv[argc++] = rk__tick_lua;
    argv[argc++] = "2";
    argv[argc++] = e->clock_key;
    argv[argc++] = e->epoch_key;
    argv[argc++] = epoch;
    argv[argc++] = maxlen;
    rk__tick_args(&e->tick, e->stream_keys, buf, argv + argc);
    argc += RK_TICK_ARGS(e->tick.n);
    rc = rk__redis_cmd(e->wr, on_tick_written, e, 0, argc, argv, NULL);
    free(buf);
    free(argv);
    if (rc != 0)
        return;
    e->tick_inflight = 1;
    e->tick_written = false;
    if (e->cfg->redis_wait_replicas > 0) {
        char n[16], ms[24];
        const char *wargv[3] = {"WAIT", n, ms};
        snprintf(n, sizeof(n), "%d", e->cfg->redis_wait_replicas);
        snprintf(ms, sizeof(ms), "%lld", (long long)e->cfg->redis_wait_timeout);
        if (rk__redis_cmd(e->wr, on_tick_wait, e, e->cfg->redis_wait_timeout, 3, wargv,
                          NULL) == 0)
            e->tick_inflight++;
        else
            rk__redis_drop(e->wr, "cannot send WAIT");
    }
}

/* Idle: decide a tick when one is due. */
static void decide_tick(rk__engine *e, int64_t now)
{
    int64_t wall = rk__wall_ms(), gap;
    unsigned si;

    if (e->tick_hold || e->tick_inflight > 0 || !e->ticks_loaded || e->careful_pause ||
        rk__ticks_head(&e->ticks) != NULL || wall <= e->clock.watermark)
        return;
    gap = e->cfg->clock_idle / TICK_IDLE_SHARE > TICK_MIN_MS
              ? e->cfg->clock_idle / TICK_IDLE_SHARE : TICK_MIN_MS;
    if (e->last_tick != 0 && now - e->last_tick < e->cfg->clock_idle &&
        (now - e->last_tick < gap ||
         !(rk__clock_due_at(&e->clock, wall) || rk__ostore_due_at(&e->open, wall, e->cfg->open_ttl))))
        return;
    e->tick.ts = wall;
    for (si = 0; si < e->tick.n; si++) {
        memset(&e->tick.pos[si], 0, sizeof(e->tick.pos[si]));
        if (e->st[si].has_applied)
            e->tick.pos[si] = e->st[si].applied;
        e->tick.pos[si].stream = si;
    }
    e->tick_hold = true;
    rk__tick_send(e);
}

/* From the housekeeping timer (now: loop ms): with clock.wall_advance, a
 * live engine that has read nothing for clock.idle decides a tick when one
 * is due. A replay records none: it applies those of the live run. */
void rk__wall_tick(rk__engine *e, int64_t now)
{
    unsigned si;
    if (!e->cfg->wall_advance || !e->in->decides_ticks)
        return;                     /* (a replay applies the live run's) */
    for (si = 0; si < e->nstreams; si++)
        if (rk__stream_unread(&e->st[si]))
            return;
    if ((e->state == E_READING || e->state == E_IDLE) &&
        now - e->last_input_wall >= e->cfg->clock_idle)
        decide_tick(e, now);
}

void rk__ticks_loaded(rk__engine *e)
{
    e->ticks_loaded = true;
    if (rk__ticks_count(&e->ticks) > 0)
        rk__log(RK_LOG_INFO, "%zu wall-clock tick(s) from %s to apply at their positions",
                rk__ticks_count(&e->ticks), e->clock_key);
    e->in->ticks_loaded(e);         /* (live: the groups; replay: the first read) */
}

/* A page of recorded ticks, as the input asked for it (input_live.c: one
 * XREVRANGE page down to the checkpoint's watermark; input_replay.c:
 * XRANGE pages inside --from/--to). */
static void on_ticks(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;

    (void)r;
    if (e->state != E_LOADING)
        return;
    e->state = E_CONNECTING;
    if (reply == NULL)
        return;                     /* read again once connected */
    if (reply->type != REDIS_REPLY_ARRAY) {
        e->in->ticks_failed(e, reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                : "unexpected reply");
        rk__ticks_free(&e->ticks);
        rk__ticks_loaded(e);
        return;
    }
    if (e->in->ticks_take(e, reply, TICKS_PAGE)) {
        rk__ticks_load(e);          /* the next page */
        return;
    }
    rk__ticks_loaded(e);
}

void rk__ticks_load(rk__engine *e)
{
    char count[16];
    const char *argv[6];
    snprintf(count, sizeof(count), "%d", TICKS_PAGE);
    e->in->ticks_cmd(e, argv, count);
    if (rk__redis_cmd(e->rd, on_ticks, e, 0, 6, argv, NULL) == 0)
        e->state = E_LOADING;
    else
        e->in->ticks_failed(e, NULL);   /* (live: read again once connected) */
}
