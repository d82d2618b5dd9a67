/* group.c - connections and the consumer group.
 *
 * On connect: read the checkpoint once (checkpoint.c), read back the
 * wall-clock ticks (wallclock.c), create the groups, set a group back to
 * the restored position if it delivered past it (the group rewind), then
 * take over entries other consumers left pending and find poison entries
 * (claims) before the first read. A lost reader connection forgets what
 * was buffered; a Sentinel failover under a lease gives the partition up
 * (master_moved). */
#include "engine_int.h"


/* ===================================================================
 * Connections and group set-up
 * =================================================================== */

static void groups_ready(rk__engine *e);

/* ===================================================================
 * The group against the state
 *
 * Once per engine, before its first read (after restoring the checkpoint
 * and creating the groups): the group may say more was consumed than the
 * restored state reflects. Its last-delivered-id is past the state's
 * position, and entries after that position may even be acknowledged:
 * when a failover kept acknowledgements but lost the checkpoint they
 * followed (the checkpoint process wrote to the old master, the XACKs went
 * to the new one), or the checkpoint was unusable or deleted. Pending
 * entries would be read again anyway; acknowledged ones would not, and
 * everything computed after them would miss them. So for each stream
 * whose group has delivered past the state's position - or, with no
 * position (no checkpoint) and streams.start "0", past the start - the
 * group is set back to that position (XGROUP SETID, fenced by the epoch
 * under a lease): '>' then delivers every entry after it again, in order,
 * acknowledged or not, and the first pending read stops at the position
 * (copy_entries). Alerts raised again are dropped by id as after any
 * re-read; entries at or before the position are acknowledged as usual.
 * =================================================================== */

static const char setid_fenced_lua[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[2] .. "
    "' is no longer current')\n"
    "end\n"
    "return redis.call('XGROUP', 'SETID', KEYS[1], ARGV[2], ARGV[3])\n";

static void gap_step_done(rk__engine *e)
{
    if (--e->gap_left > 0)
        return;
    e->gap_checked = true;
    groups_ready(e);
}

static void on_gap_setid(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = ((struct rk_host *)pd)->eng;
    stream_state *s = &e->st[((struct rk_host *)pd)->idx];
    (void)r;
    free(pd);
    if (reply == NULL || e->state != E_SETUP || e->lost)
        return;                     /* the reconnect checks again */
    if (rk__is_fenced_reply(reply)) {
        rk__engine_give_up(e, reply->str);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        rk__log(RK_LOG_ERR, "XGROUP SETID on %s failed: %s; entries the group counts as "
                "consumed past the checkpoint are not read again", s->key, reply->str);
        s->bounded = false;
    }
    gap_step_done(e);
}

/* XINFO GROUPS <stream>: our group's last-delivered-id against the state. */
static void on_gap_info(rk__redis *r, redisReply *reply, void *pd)
{
    struct rk_host *h = pd;
    rk__engine *e = h->eng;
    stream_state *s = &e->st[h->idx];
    rk_entry_ref last = {0}, pos = {0};
    bool found = false, from_start;
    char posid[48], epoch[24];
    size_t i, k;
    (void)r;
    if (reply == NULL || e->state != E_SETUP || e->lost) {
        free(h);
        return;
    }
    for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        bool ours = false;
        const redisReply *ld = NULL;
        for (k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements; k += 2) {
            const redisReply *f = g->element[k], *v = g->element[k + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(f->str, "name") == 0)
                ours = strcmp(v->str, e->cfg->group) == 0;
            else if (strcmp(f->str, "last-delivered-id") == 0)
                ld = v;
        }
        if (ours && ld != NULL && rk__parse_entry_id(ld->str, ld->len, &last) == 0)
            found = true;
    }
    if (found && e->legacy_ids) {
        s->legacy_until = last;
        s->has_legacy_until = true;
    }
    from_start = strcmp(e->cfg->start, "0") == 0 || strcmp(e->cfg->start, "0-0") == 0;
    if (s->has_applied)
        pos = s->applied;
    if (!found || (!s->has_applied && !from_start) || rk__ref_le(last, pos)) {
        free(h);
        gap_step_done(e);
        return;
    }
    snprintf(posid, sizeof(posid), "%llu-%u", (unsigned long long)pos.ms, pos.seq);
    rk__log(RK_LOG_NOTICE, "%s: group %s has delivered up to %llu-%u, the state reflects "
            "%s%s: reading again from there", s->key, e->cfg->group,
            (unsigned long long)last.ms, last.seq, s->has_applied ? "up to " : "nothing (",
            s->has_applied ? posid : "from the start)");
    e->stats.group_rewinds++;
    s->bounded = true;
    s->bound_hit = false;
    s->bound = pos;
    if (e->leased) {
        const char *argv[8] = {"EVAL", setid_fenced_lua, "2", s->key, e->epoch_key,
                               epoch, e->cfg->group, posid};
        snprintf(epoch, sizeof(epoch), "%lld", e->epoch);
        if (rk__redis_cmd(e->rd, on_gap_setid, h, 0, 8, argv, NULL) == 0)
            return;
    } else {
        const char *argv[5] = {"XGROUP", "SETID", s->key, e->cfg->group, posid};
        if (rk__redis_cmd(e->rd, on_gap_setid, h, 0, 5, argv, NULL) == 0)
            return;
    }
    free(h);
    s->bounded = false;
    e->state = E_CONNECTING;
    rk__redis_drop(e->rd, "cannot send XGROUP SETID");
}

static void gap_check(rk__engine *e)
{
    unsigned si;
    e->gap_left = (int)e->nstreams;
    for (si = 0; si < e->nstreams; si++) {
        const char *argv[3] = {"XINFO", "GROUPS", e->st[si].key};
        /* (bounded stays as a SETID sent before a reconnect left it: the
         * group then agrees, and the first pending read must still stop) */
        struct rk_host *h = malloc(sizeof(*h));
        if (h != NULL) {
            h->eng = e;
            h->idx = si;
        }
        if (h == NULL || rk__redis_cmd(e->rd, on_gap_info, h, 0, 3, argv, NULL) != 0) {
            free(h);
            e->state = E_CONNECTING;
            rk__redis_drop(e->rd, "cannot send XINFO GROUPS");
            return;
        }
    }
}

static void on_group_created(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    unsigned si;
    (void)r;
    if (e->state != E_SETUP)
        return;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        rk__log(RK_LOG_ERR, "XGROUP CREATE failed: %s", reply->str);
        e->state = E_CONNECTING;
        rk__redis_drop(e->rd, NULL);
        return;
    }
    if (--e->setup_left > 0)
        return;
    for (si = 0; si < e->nstreams; si++) {
        e->st[si].phase = PH_PENDING;
        snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0");
        e->st[si].caught_up = false;
    }
    if (!e->gap_checked) {
        gap_check(e);               /* groups_ready once the group agrees */
        return;
    }
    groups_ready(e);
}

/* The groups exist and agree with the state: claim, then read. */
static void groups_ready(rk__engine *e)
{
    if (e->nstreams > RK_STREAM_COUNT)
        rk__log(RK_LOG_INFO, "consuming the %u streams of %d partitions (%s ... %s) as %s/%s",
                e->nstreams, e->cfg->partitions, e->st[0].key, e->st[e->nstreams - 1].key,
                e->cfg->group, e->cfg->consumer);
    else
        rk__log(RK_LOG_INFO, "consuming %s and %s as %s/%s", e->st[0].key, e->st[1].key,
                e->cfg->group, e->cfg->consumer);
    if (!e->ever_ready) {
        e->ever_ready = true;
        if (e->ready_cb)
            e->ready_cb(e->ready_ud);
        rk__claims_begin(e, true);      /* the poison scan: once per process */
    } else {
        rk__claims_begin(e, false);
    }
}

/* ===================================================================
 * Takeover and poison entries
 *
 * Every streams.claim_idle (and right after the groups are ready), on the
 * reader connection and between reads, so no entry is applied meanwhile:
 *  1. XAUTOCLAIM ... <claim_idle> ... JUSTID moves the entries that another
 *     consumer (a dead riskd under another name) left pending for longer
 *     than claim_idle into our own pending list;
 *  2. once per process start, XPENDING lists our pending entries with their
 *     delivery counts; one delivered more than streams.max_deliveries times
 *     has been read again and again without riskd ever getting through it -
 *     it crashed on it - and is dead-lettered instead of applied.
 * If anything was claimed, our pending list is read again from "0"; entries
 * at or before the applied position are acknowledged without being applied.
 * This assumes one active riskd per group (see the README).
 * =================================================================== */

static void claims_step(rk__engine *e);

static void claims_done(rk__engine *e)
{
    unsigned si;
    e->claim_all = false;
    e->next_claim = (int64_t)uv_now(e->loop) + e->cfg->claim_idle;
    if (e->claimed_any) {
        for (si = 0; si < e->nstreams; si++) {
            if (rk__stream_buffered(&e->st[si]))
                continue;
            e->st[si].phase = PH_PENDING;
            snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0");
        }
    }
    e->state = E_IDLE;
    rk__schedule_read(e);
}

static void on_claim_reply(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    stream_state *s = &e->st[e->claim_si];
    const redisReply *list = NULL, *next = NULL;
    size_t i;
    (void)r;
    if (e->state != E_CLAIMING)
        return;
    if (reply == NULL) {
        e->state = E_CONNECTING;
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            rk__setup_groups(e);
            return;
        }
        rk__log(RK_LOG_ERR, "%s on %s failed: %s", e->claim_step == 0 ? "XAUTOCLAIM" :
                "XPENDING", s->key, reply->str);
        claims_done(e);
        return;
    }
    if (e->claim_step == 0) {
        /* [next cursor, [ids...], [deleted ids...]] */
        (void)i;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2) {
            next = reply->element[0];
            list = reply->element[1];
        }
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3 &&
            reply->element[2]->type == REDIS_REPLY_ARRAY && reply->element[2]->elements > 0) {
            /* Redis 7 drops pending entries whose payload was trimmed. */
            e->stats.trimmed[e->claim_si] += reply->element[2]->elements;
            rk__log(RK_LOG_WARNING, "%zu pending entries of %s no longer exist (trimmed); "
                    "dropped from the pending list", reply->element[2]->elements, s->key);
        }
        if (list != NULL && list->type == REDIS_REPLY_ARRAY && list->elements > 0) {
            e->claimed_any = true;
            e->claimed += list->elements;
            rk__log(RK_LOG_NOTICE, "claimed %zu entries of %s pending for more than "
                    "streams.claim_idle", list->elements, s->key);
        }
        if (next != NULL && next->type == REDIS_REPLY_STRING && strcmp(next->str, "0-0") != 0) {
            snprintf(e->claim_cursor, sizeof(e->claim_cursor), "%s", next->str);
        } else if (e->claim_scan_poison) {
            e->claim_step = 1;
            if (s->has_applied)
                snprintf(e->claim_cursor, sizeof(e->claim_cursor), "(%llu-%u",
                         (unsigned long long)s->applied.ms, s->applied.seq);
            else
                snprintf(e->claim_cursor, sizeof(e->claim_cursor), "-");
        } else {
            e->claim_si++;
            snprintf(e->claim_cursor, sizeof(e->claim_cursor), "0-0");
        }
    } else if (e->claim_step == 1) {
        /* [[id, consumer, idle, deliveries]] or []: the first pending
         * entry of this consumer past the restored position. */
        s->has_suspect = false;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
            const redisReply *it = reply->element[0];
            if (it->type == REDIS_REPLY_ARRAY && it->elements >= 1 &&
                it->element[0]->type == REDIS_REPLY_STRING &&
                rk__parse_entry_id(it->element[0]->str, it->element[0]->len, &s->suspect) == 0) {
                s->suspect.stream = e->claim_si;
                s->has_suspect = true;
            }
        }
        if (s->has_suspect) {
            e->claim_step = 2;
        } else {
            e->claim_si++;
            e->claim_step = 0;
            snprintf(e->claim_cursor, sizeof(e->claim_cursor), "0-0");
        }
    } else {
        /* HGET <suspect key> <stream>: "<ms>-<seq> <starts>" */
        char val[96], idbuf[48];
        const char *argv[4];
        long long starts = 0;
        unsigned long long ms = 0, seq = 0;
        if (reply->type == REDIS_REPLY_STRING &&
            sscanf(reply->str, "%llu-%llu %lld", &ms, &seq, &starts) == 3 &&
            ms == s->suspect.ms && seq == s->suspect.seq)
            s->suspect_starts = starts + 1;
        else
            s->suspect_starts = 1;
        snprintf(idbuf, sizeof(idbuf), "%llu-%u", (unsigned long long)s->suspect.ms,
                 s->suspect.seq);
        snprintf(val, sizeof(val), "%s %lld", idbuf, s->suspect_starts);
        argv[0] = "HSET"; argv[1] = e->suspect_key; argv[2] = s->key; argv[3] = val;
        rk__redis_cmd(e->rd, NULL, NULL, 0, 4, argv, NULL);
        if (s->suspect_starts > 1)
            rk__log(RK_LOG_WARNING, "%s/%s: riskd restarted %lld times without getting "
                    "past this entry; applying it alone%s", s->key, idbuf,
                    s->suspect_starts - 1, s->suspect_starts > e->cfg->max_deliveries ?
                    " - no: dead-lettering it as poison" : " with a checkpoint right after");
        else
            s->has_suspect = false; /* first start on it: nothing to suspect */
        e->claim_si++;
        e->claim_step = 0;
        snprintf(e->claim_cursor, sizeof(e->claim_cursor), "0-0");
    }
    claims_step(e);
}

static void claims_step(rk__engine *e)
{
    char idle[24];
    stream_state *s;
    int rc;

    if (e->claim_si >= e->nstreams) {
        claims_done(e);
        return;
    }
    s = &e->st[e->claim_si];
    if (e->claim_step == 0) {
        const char *argv[9];
        /* Taking a partition over under a lease, every entry another
         * consumer holds is orphaned: claim them all, whatever their idle. */
        snprintf(idle, sizeof(idle), "%lld", e->claim_all ? 0LL : (long long)e->cfg->claim_idle);
        argv[0] = "XAUTOCLAIM"; argv[1] = s->key; argv[2] = e->cfg->group;
        argv[3] = e->cfg->consumer; argv[4] = idle; argv[5] = e->claim_cursor;
        argv[6] = "COUNT"; argv[7] = "1000"; argv[8] = "JUSTID";
        rc = rk__redis_cmd(e->rd, on_claim_reply, e, 0, 9, argv, NULL);
    } else if (e->claim_step == 1) {
        const char *argv[7];
        argv[0] = "XPENDING"; argv[1] = s->key; argv[2] = e->cfg->group;
        argv[3] = e->claim_cursor; argv[4] = "+"; argv[5] = "1";
        argv[6] = e->cfg->consumer;
        rc = rk__redis_cmd(e->rd, on_claim_reply, e, 0, 7, argv, NULL);
    } else {
        const char *argv[3] = {"HGET", e->suspect_key, s->key};
        rc = rk__redis_cmd(e->rd, on_claim_reply, e, 0, 3, argv, NULL);
    }
    if (rc != 0)
        e->state = E_CONNECTING;    /* the reconnect starts over */
}

void rk__claims_begin(rk__engine *e, bool scan_poison)
{
    e->state = E_CLAIMING;
    e->claim_si = 0;
    e->claim_step = 0;
    e->claim_scan_poison = scan_poison;
    e->claimed_any = false;
    snprintf(e->claim_cursor, sizeof(e->claim_cursor), "0-0");
    claims_step(e);
}

void rk__setup_groups(rk__engine *e)
{
    unsigned si;
    e->state = E_SETUP;
    e->setup_left = 0;
    for (si = 0; si < e->nstreams; si++) {
        const char *argv[6] = {"XGROUP", "CREATE", e->st[si].key, e->cfg->group,
                               e->cfg->start, "MKSTREAM"};
        rk__clear_buffer(&e->st[si]);
        if (rk__redis_cmd(e->rd, on_group_created, e, 0, 6, argv, NULL) == 0)
            e->setup_left++;
    }
    if (e->setup_left != (int)e->nstreams) {
        e->state = E_CONNECTING;
        rk__redis_drop(e->rd, "cannot send XGROUP CREATE");
    }
}

/* INCR <state.key>:epoch: this process's checkpoint epoch. Without one
 * (an error, say a missing ACL right), checkpoints are written inline. */
static void on_epoch(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    (void)r;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        e->epoch = reply->integer;
    else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        rk__log(RK_LOG_WARNING, "INCR %s failed (%s): checkpoints are written inline",
                e->epoch_key, reply->str);
}

static void on_state_loaded(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    char err[RK_ERRLEN];
    (void)r;
    if (e->state != E_LOADING)
        return;
    e->state = E_CONNECTING;
    if (reply == NULL)
        return;                     /* retried after reconnecting */
    if (reply->type == REDIS_REPLY_ERROR) {
        rk__log(RK_LOG_ERR, "reading the checkpoint %s failed: %s", e->cfg->state_key,
                reply->str);
        return;                     /* retried by the housekeeping timer */
    }
    if (reply->type == REDIS_REPLY_STRING) {
        if (rk__restore_state(e, reply->str, reply->len, err, sizeof(err)) != 0) {
            unsigned si;
            rk__log(RK_LOG_ERR, "checkpoint %s is unusable (%s): starting from empty "
                    "state", e->cfg->state_key, err);
            /* Positions read before the failure belong to the state given
             * up: the group is not rewound to them. */
            for (si = 0; si < e->nstreams; si++) {
                e->st[si].has_applied = false;
                memset(&e->st[si].applied, 0, sizeof(e->st[si].applied));
            }
        } else {
            rk__log(RK_LOG_NOTICE, "state restored from %s (%zu bytes, %zu timers, "
                    "%zu filings)", e->cfg->state_key, reply->len, e->clock.ntimers,
                    e->tasks.map.count);
        }
    } else {
        rk__log(RK_LOG_INFO, "no checkpoint at %s: starting from empty state",
                e->cfg->state_key);
    }
    e->restored = true;
    rk__ticks_load(e);                  /* then setup_groups */
}

/* Connected: read the checkpoint once, then (re)create the groups. */
void rk__start_consuming(rk__engine *e)
{
    const char *argv[2];
    if (e->restored) {
        if (e->ticks_loaded)
            rk__setup_groups(e);
        else
            rk__ticks_load(e);
        return;
    }
    if (e->epoch <= 0) {
        const char *inc[2] = {"INCR", e->epoch_key};
        rk__redis_cmd(e->rd, on_epoch, e, 0, 2, inc, NULL);
    }
    argv[0] = "GET";
    argv[1] = e->cfg->state_key;
    if (rk__redis_cmd(e->rd, on_state_loaded, e, 0, 2, argv, NULL) == 0)
        e->state = E_LOADING;
}

/* Sentinel mode, under a lease: has connection r come up on another master
 * than the one this engine began on? Replication is asynchronous: the new
 * master may lack the last writes this engine made - alerts it counted as
 * written, a checkpoint, acknowledgements - while the engine's memory has
 * moved past them, and what it skipped as applied would then be lost. So
 * it gives up, and the node takes the partition again at once: the new
 * engine restores the new master's checkpoint and reads again whatever
 * that does not reflect (the group check above), raising again, under the
 * same ids, the alerts the new master does not have. */
static bool master_moved(rk__engine *e, rk__redis *r)
{
    const char *host;
    int port;
    char why[200];
    if (!e->leased || e->cfg->n_sentinels == 0 || e->cfg->n_cluster > 0)
        return false;
    rk__redis_addr(r, &host, &port);
    if (host == NULL)
        return false;
    if (e->master_port == 0) {
        snprintf(e->master_host, sizeof(e->master_host), "%s", host);
        e->master_port = port;
        return false;
    }
    if (port == e->master_port && strcmp(host, e->master_host) == 0)
        return false;
    snprintf(why, sizeof(why), "the master moved from %s:%d to %s:%d (failover): starting "
             "again from its checkpoint", e->master_host, e->master_port, host, port);
    rk__engine_give_up(e, why);
    return true;
}

void rk__on_rd_state(rk__redis *r, int up, void *ud)
{
    rk__engine *e = ud;
    if (e->stopping)
        return;
    if (!up) {
        e->in->down(e);             /* (live: read the pending list again) */
        return;
    }
    if (e->lost || master_moved(e, r))
        return;
    if (e->state == E_CONNECTING || e->state == E_IDLE || e->state == E_READING)
        e->in->start(e);            /* (live: rk__start_consuming below) */
}

void rk__on_wr_state(rk__redis *r, int up, void *ud)
{
    rk__engine *e = ud;
    rk__outbox *o = r == e->wr_dead ? e->ob_dead : r == e->wr && e->wr_out != NULL ? NULL : e->ob;
    if (up && r == e->wr && (e->lost || master_moved(e, r)))
        return;
    if (o != NULL && o == e->ob && !up)
        rk__register_conn_down(e->filreg);     /* on the alerts' connection */
    else if (o != NULL && o == e->ob)
        rk__register_watermark(e->filreg, rk__clock_now(&e->clock));
    if (o == NULL)
        return;                     /* the partition's writer; the outbox is elsewhere */
    if (!up) {
        rk__outbox_writer_down(o);
        return;
    }
    rk__outbox_kick(o);
}
