/* engine.c - one pipeline: create it, reconfigure it, stop it, free it.
 *
 * An engine reads both input streams, applies their events in event-time
 * order to the detectors, writes the alerts they raise, checkpoints its
 * state and acknowledges what the checkpoint covers. The work is split by
 * job over the files listed in engine_int.h; this file owns only the
 * engine's life: rk__engine_new (live, or a replay with the replay
 * writer), rk__engine_reload, the lease (rk__engine_set_lease: writes
 * fenced by an epoch, given up through rk__engine_lost), the clean stop
 * (a last checkpoint, then its acknowledgements) and the 250 ms
 * housekeeping timer that retries what failed, polls silences and group
 * figures and moves the watermark with the wall clock when idle. */
#include "engine_int.h"


static void on_housekeeping(uv_timer_t *t)
{
    rk__engine *e = t->data;
    int64_t now = (int64_t)uv_now(e->loop);

    rk__register_watermark(e->filreg, rk__clock_now(&e->clock));   /* and retries */
    rk__inlog_flush(&e->inlog, rk__wall_ms());
    rk__read_err_flush(e, rk__wall_ms());
    if (e->stopping) {
        if (now - e->round_started > STOP_TIMEOUT_MS) {
            rk__log(RK_LOG_WARNING, "stop: Redis did not confirm in time; "
                    "unacknowledged entries will be read again on restart");
            rk__finish_stop(e);
        } else if (e->state == E_IDLE) {
            rk__checkpoint(e);          /* retried until written */
        }
        return;
    }
    if (e->careful_pause && e->state == E_IDLE && !e->ckpt_inflight && e->acks_inflight == 0)
        rk__checkpoint(e);              /* a failed careful checkpoint: again */
    else if (rk__checkpoint_due(e) && (e->state == E_IDLE || e->state == E_READING))
        rk__checkpoint(e);
    e->out->housekeep(e, now);
    rk__ind_housekeep(e, now);
    if (now >= e->next_xinfo && rk__redis_ready(e->wr)) {
        e->next_xinfo = now + LAG_POLL_MS;
        rk__poll_xinfo(e);
    }
    if (e->state == E_IDLE && e->read_retry_at > 0 && now >= e->read_retry_at) {
        e->read_retry_at = 0;
        rk__schedule_read(e);
    }
    if (e->state == E_CONNECTING && rk__redis_ready(e->rd))
        rk__start_consuming(e);
    if (e->tick_hold)
        rk__tick_send(e);               /* not confirmed yet: again */
    rk__wall_tick(e, now);
}

static const rk__steps steps = {rk__setup_groups, rk__claims_begin, rk__careful_resume};

static rk__engine *engine_new(uv_loop_t *loop, rk__config *cfg, const rk__replay_opts *ro,
                             char *err, size_t errlen);
static void engine_closed(uv_handle_t *h);

/* Name the engine's input streams (e->nstreams of them) after cfg. */
static void set_stream_keys(rk__engine *e, const rk__config *cfg)
{
    unsigned si;
    for (si = 0; si < e->nstreams; si++) {
        e->st[si].key = e->own_keys ? e->own_keys[si] : cfg->stream_key[rk__stream_kind(si)];
        e->stream_keys[si] = e->st[si].key;
    }
    e->stream_keys[e->nstreams] = NULL;
}

rk__engine *rk__engine_new(uv_loop_t *loop, rk__config *cfg, char *err, size_t errlen)
{
    return engine_new(loop, cfg, NULL, err, errlen);
}

rk__engine *rk__engine_new_replay(uv_loop_t *loop, rk__config *cfg,
                                 const rk__replay_opts *ro, char *err, size_t errlen)
{
    return engine_new(loop, cfg, ro, err, errlen);
}

/* The engine's own memory, last of all: its streams' arrays, the cross
 * pipeline's streams, the engine (every path that ends an engine ends
 * here: the failures of engine_new, and the last of its handles to close,
 * engine_closed - the checkpoint's poll closes with it too). */
static void engine_release(rk__engine *e)
{
    free(e->st);
    free(e->stream_keys);
    free(e->want);
    free(e->unread);
    rk__cross_free(e);
    free(e);
}

static rk__engine *engine_new(uv_loop_t *loop, rk__config *cfg, const rk__replay_opts *ro,
                             char *err, size_t errlen)
{
    rk__engine *e = calloc(1, sizeof(*e));
    rk__redis_opts o;
    unsigned si;

    if (e == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    e->loop = loop;
    e->handle_closed = engine_closed;
    rk__clock_init(&e->clock);
    e->nstreams = RK_STREAM_COUNT;
    e->role = rk__engine_role_of(cfg);
    if (e->role == RK__ROLE_CROSS && rk__cross_streams(e, cfg) != 0) {
        engine_release(e);
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    e->st = calloc(e->nstreams, sizeof(*e->st));
    e->stream_keys = calloc(e->nstreams + 1, sizeof(*e->stream_keys));  /* + NULL */
    e->want = calloc(e->nstreams, sizeof(*e->want));
    e->unread = calloc(e->nstreams, sizeof(*e->unread));
    if (e->st == NULL || e->stream_keys == NULL || e->want == NULL || e->unread == NULL ||
        rk__tick_init(&e->tick, e->nstreams) != 0 ||
        rk__clock_set_streams(&e->clock, e->nstreams) != 0) {
        rk__tick_free(&e->tick);
        rk__clock_release(&e->clock);
        engine_release(e);
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    rk__init_api(&e->api);
    e->steps = &steps;
    rk_map_init(&e->alert_counts);
    e->silences = rk__silences_new();
    e->audit_pending = true;
    for (si = 0; si < e->nstreams; si++)
        e->st[si].group_lag = e->st[si].group_pending = e->st[si].group_oldest_ms = -1;
    rk__clock_set_lateness(&e->clock, cfg->allowed_lateness);
    rk__inlog_init(&e->inlog);
    rk__read_err_init(e);
    rk__tasks_init(&e->tasks);
    rk__dedupe_init(&e->dedupe);
    rk__dedupe_set_window(&e->dedupe, cfg->dedupe_window);
    if ((e->ind = rk__ind_for(cfg)) == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        goto fail_ind;
    }
    if (rk__registry_load(&e->reg, cfg, &e->api, e, err, errlen) != 0)
        goto fail_registry;
    e->cfg = cfg;
    set_stream_keys(e, cfg);
    e->suspect_key = malloc(strlen(cfg->state_key) + sizeof(":suspect"));
    if (e->suspect_key != NULL)
        sprintf(e->suspect_key, "%s:suspect", cfg->state_key);
    e->epoch_key = malloc(strlen(cfg->state_key) + sizeof(":epoch"));
    if (e->epoch_key != NULL)
        sprintf(e->epoch_key, "%s:epoch", cfg->state_key);
    e->clock_key = malloc(strlen(cfg->state_key) + sizeof(":clock"));
    if (e->clock_key != NULL)
        sprintf(e->clock_key, "%s:clock", cfg->state_key);
    e->ckpt_fd = -1;
    e->last_input_wall = (int64_t)uv_now(loop);
    e->last_ckpt = (int64_t)uv_now(loop);  /* the first one after an interval */
    uv_timer_init(loop, &e->housekeeping);
    e->housekeeping.data = e;
    uv_timer_start(&e->housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
    e->state = E_CONNECTING;
    if (ro != NULL) {
        /* the replay writer and input (output_replay.c, input_replay.c) */
        if (rk__replay_init(e, ro, err, errlen) != 0) {
            e->cfg = NULL;
            rk__engine_free(e);
            return NULL;
        }
    } else {
        e->out = &rk__output_live;
        e->in = &rk__input_live;
        rk__live_init(e);       /* its failure: no outbox, reported below */
    }
    rk__redis_opts_for(cfg, "reader", cfg->state_key, &o);
    o.reply_timeout_ms = 10000;
    o.reply_arena = 1;              /* batches of entries: thousands of nodes each */
    e->rd = (e->ob || ro != NULL) && e->suspect_key && e->clock_key
            ? rk__redis_new(loop, &o, rk__on_rd_state, e) : NULL;
    if (e->rd == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        e->cfg = NULL;
        rk__engine_free(e);
        return NULL;
    }
    return e;

fail_registry:
    rk__ind_free(e->ind);
fail_ind:
    rk__tasks_free(&e->tasks);
    rk__dedupe_free(&e->dedupe);
    rk__ostore_free(&e->open);
    rk__inlog_free(&e->inlog);
    rk__silences_free(e->silences);
    rk_map_clear(&e->alert_counts, free);
    rk__tick_free(&e->tick);
    rk__clock_release(&e->clock);
    engine_release(e);
    return NULL;
}

void rk__engine_on_ready(rk__engine *e, void (*cb)(void *ud), void *ud)
{
    e->ready_cb = cb;
    e->ready_ud = ud;
}

static void on_outbox_fenced(void *ud, const char *why)
{
    rk__engine_give_up(ud, why);
}

int rk__engine_set_lease(rk__engine *e, long long epoch, bool takeover,
                         void (*lost)(void *ud, const char *why), void *ud)
{
    if (e->ob == NULL || e->epoch_key == NULL)
        return -1;    /* a replay writes nothing */
    if (e->wr_out != NULL) {
        /* The alert stream's slot holds a mirror of the epochs (node.c). */
        char key[300];
        rk__fence_mirror_key(e->cfg, key, sizeof(key));
        if (rk__outbox_set_fence(e->ob, key, e->epoch_key, epoch, on_outbox_fenced) != 0)
            return -1;
    } else if (rk__outbox_set_fence(e->ob, e->epoch_key, NULL, epoch, on_outbox_fenced) != 0) {
        return -1;
    }
    e->leased = true;
    e->epoch = epoch;
    e->claim_all = takeover;
    e->lost_cb = lost;
    e->lost_ud = ud;
    e->lease_until_hr = uv_hrtime();    /* nothing before the first renewal */
    return 0;
}

void rk__engine_lease_until(rk__engine *e, uint64_t until_hr)
{
    e->lease_until_hr = until_hr;
    if (e->state == E_IDLE && !e->lost)
        rk__schedule_read(e);
}

bool rk__engine_lost(const rk__engine *e)
{
    return e->lost;
}

int rk__engine_reload(rk__engine *e, rk__config *cfg, char *err, size_t errlen)
{
    rk__config *old = e->cfg;
    unsigned si;

    if (strcmp(cfg->redis_host, old->redis_host) != 0 || cfg->redis_port != old->redis_port ||
        cfg->redis_db != old->redis_db)
        rk__log(RK_LOG_WARNING, "reload: redis.* changes take effect at restart");
    for (si = 0; si < e->nstreams; si++)
        if (strcmp(cfg->stream_key[si], old->stream_key[si]) != 0)
            rk__log(RK_LOG_WARNING, "reload: streams.* changes take effect at restart");
    if (rk__registry_reload(&e->reg, cfg, &e->api, e, rk__on_det_removed, err, errlen) != 0)
        return -1;
    if (e->audit_pending && rk__redis_ready(rk__audit_conn(e)))
        rk__write_audit(e);             /* the previous one first, in order */
    /* Keep what needs a restart; everything else comes from the new file. */
    {
#define KEEP(f) do { void *t_ = (void *)cfg->f; cfg->f = old->f; old->f = t_; } while (0)
        int ti;
        KEEP(redis_host); KEEP(redis_password); KEEP(redis_username);
        KEEP(stream_key[0]); KEEP(stream_key[1]); KEEP(group); KEEP(consumer); KEEP(start);
#undef KEEP
        ti = cfg->redis_port; cfg->redis_port = old->redis_port; old->redis_port = ti;
        ti = cfg->redis_db; cfg->redis_db = old->redis_db; old->redis_db = ti;
    }
    e->cfg = cfg;
    rk__clock_set_lateness(&e->clock, cfg->allowed_lateness);
    set_stream_keys(e, cfg);
    rk__outbox_configure(e->ob, cfg);
    rk__outbox_configure(e->ob_dead, cfg);
    rk__dedupe_set_window(&e->dedupe, cfg->dedupe_window);
    {
        rk__ind_settings is;
        rk__ind_settings_from(&is, cfg->root, cfg->tz_offset_s, cfg->ind_window);
        rk__ind_configure(e->ind, &is);
    }
    rk__config_free(old);
    e->audit_pending = true;        /* config_applied, old -> new */
    return 0;
}

void rk__engine_stop(rk__engine *e, void (*done)(void *ud), void *ud)
{
    e->stopping = true;
    e->stop_cb = done;
    e->stop_ud = ud;
    e->round_started = (int64_t)uv_now(e->loop);
    switch (e->state) {
    case E_FLUSHING:
        return;                     /* round_finished() writes the checkpoint */
    case E_CLAIMING:
    case E_READING:
        /* Nothing of that read is applied yet: whatever it returns stays
         * pending and is read again at the next start. */
        e->state = E_IDLE;
        /* fall through */
    case E_IDLE:
        if (!e->restored) {
            rk__finish_stop(e);
            return;
        }
        if (rk__ob_pending(e) > 0)
            return;                 /* timer alerts: housekeeping retries */
        rk__checkpoint(e);
        if (!e->ckpt_inflight && e->acks_inflight == 0 && !e->dirty)
            rk__finish_stop(e);
        return;
    default:
        rk__finish_stop(e);             /* not consuming yet: nothing to save */
    }
}

/* The engine's memory goes once libuv closed both of its handles (the
 * housekeeping timer and, when a checkpoint child was running, its pipe):
 * every handle of the engine closes with this (e->handle_closed). */
static void engine_closed(uv_handle_t *h)
{
    rk__engine *e = h->data;
    if (--e->handles_closing == 0 && e->freeing)
        engine_release(e);
}

void rk__engine_free(rk__engine *e)
{
    unsigned si;
    size_t i;
    if (e == NULL)
        return;
    rk__register_free(e->filreg);   /* before its connection closes */
    if (e->rd) rk__redis_close(e->rd);
    if (e->wr) rk__redis_close(e->wr);
    if (e->ob) rk__outbox_free(e->ob);
    rk__redis_close(e->wr_out);
    rk__redis_close(e->wr_dead);
    rk__redis_close(e->aux_sil);
    rk__redis_close(e->aux_audit);
    if (e->ob_dead) rk__outbox_free(e->ob_dead);
    for (i = 0; i < e->reg.n; i++)
        rk__free_cooldowns(e->reg.dets[i]);
    rk__registry_free(&e->reg);
    for (si = 0; si < e->nstreams; si++) {
        rk__clear_buffer(&e->st[si]);
        free(e->st[si].buf);
        free(e->st[si].arena);
        free(e->st[si].nbuf);
        free(e->st[si].narena);
        free(e->st[si].acks);
        rk__event_mem_free(&e->st[si].mem);
    }
    rk__ind_free(e->ind);
    rk__ind_open_free(e);
    rk__tasks_free(&e->tasks);
    rk__dedupe_free(&e->dedupe);
    rk__clock_release(&e->clock);
    rk__ostore_free(&e->open);
    rk__inlog_free(&e->inlog);
    rk_map_clear(&e->alert_counts, free);
    rk__silences_free(e->silences);
    free(e->audit_old);
    json_decref(e->replay_alerts);
    json_decref(e->replay_notices);
    json_decref(e->replay_closed);
    rk__config_free(e->cfg);
    e->cfg = NULL;
    free(e->suspect_key);
    free(e->epoch_key);
    free(e->clock_key);
    rk__ticks_free(&e->ticks);
    rk__tick_free(&e->tick);
    e->freeing = true;
    e->handles_closing++;           /* the housekeeping timer, below */
    if (e->ckpt_poll_open) {
        /* A child still writing: it is fenced by its epoch if it outlives us. */
        e->handles_closing++;
        uv_poll_stop(&e->ckpt_poll);
        uv_close((uv_handle_t *)&e->ckpt_poll, engine_closed);
        e->ckpt_poll_open = false;
        close(e->ckpt_fd);
    }
    /* The engine's memory goes when libuv is done with its timer. */
    uv_timer_stop(&e->housekeeping);
    uv_close((uv_handle_t *)&e->housekeeping, engine_closed);
}

const rk__engine_stats_t *rk__engine_stats(const rk__engine *e)
{
    return &e->stats;
}

const rk__config *rk__engine_config(const rk__engine *e)
{
    return e->cfg;
}
