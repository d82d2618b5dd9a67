/* input_live.c - how the live engine reads: its consumer group.
 *
 * When the reader connection is up it reads the checkpoint once, the
 * recorded wall-clock ticks after it and (re)creates the groups
 * (group.c, rk__start_consuming); when it goes down, what was buffered or
 * read ahead is forgotten and every stream reads its pending list again
 * from "0" first. Reads are XREADGROUP, fenced by the partition's epoch
 * under a lease (below); reading ahead stops while the takeover claims are
 * due, and those run in an idle turn with nothing buffered. It decides
 * wall-clock ticks when idle (wallclock.c) and, after a restart, applies
 * again those recorded after the checkpoint: one XREVRANGE page, newest
 * first, down to the restored watermark. The input never ends. */
#include "engine_int.h"

/* ===================================================================
 * Fenced reads
 *
 * Under a lease every write is checked against the partition's epoch, and
 * so is every read of the group: XREADGROUP moves the group on (it hands
 * entries to a consumer and advances the last-delivered id), so a read the
 * old holder sends after its lease ran out - queued just before a pause
 * (SIGSTOP, a VM freeze) and written after it, or held up in the network
 * - would hand entries to a consumer that never applies them, past which
 * the new holder reads on; claimed later, they would count as read before
 * and be acknowledged unapplied. The checks before sending (the lease's
 * time, rk__lease_valid) cannot close that window; Redis can: the read
 * runs in a script that first compares the epoch and refuses with FENCED
 * once another holder has taken the partition.
 *
 * A script cannot block, so an engine with nothing buffered and every
 * stream caught up waits on a plain XREAD BLOCK from the last id '>'
 * delivered (or "$"), which reads without moving the group, with the
 * fenced read pipelined right behind it: Redis runs the read the moment
 * the wait returns (entries or the 1 s timeout), no round trip later.
 * An engine without a lease reads directly (and a replay reads with no
 * group at all: input_replay.c).
 * =================================================================== */

/* KEYS[1] the epoch key, KEYS[2..] the streams; ARGV[1] our epoch, ARGV[2]
 * group, ARGV[3] consumer, ARGV[4] count, ARGV[5..] one id per stream. */
static const char fenced_read_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[1] .. "
    "' is no longer current')\n"
    "end\n"
    "local a = {'XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS'}\n"
    "for i = 2, #KEYS do a[#a + 1] = KEYS[i] end\n"
    "for i = 5, #ARGV do a[#a + 1] = ARGV[i] end\n"
    "return redis.pcall(unpack(a))\n";

/* The wait answered (the fenced read queued behind it runs now): there is
 * nothing to do with what it saw; an error (an ACL without +xread, say)
 * is said once per engine, and the read behind it then does not block. */
static void on_wait(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    (void)r;
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || e->wait_err_logged)
        return;
    rk__log(RK_LOG_ERR, "XREAD (waiting for new entries) failed: %s; polling every %d ms "
            "instead", reply->str, READ_RETRY_MS);
    e->wait_err_logged = true;
}


static bool live_send(rk__engine *e, const unsigned *want, int n, bool block)
{
    /* 12 + 2n: the longest command below (the wait: 6 + 2n) */
    const char **argv = malloc((size_t)(12 + 2 * n) * sizeof(*argv));
    char count[16], nkeys[16], epoch[24];
    int argc = 0, k;
    bool sent;

    if (argv == NULL)
        return false;
    snprintf(count, sizeof(count), "%d", e->cfg->batch);
    if (e->leased) {
        /* Under a lease, XREADGROUP - which moves the group on - runs in
         * a script that checks the epoch first (see "Fenced reads"). */
        if (block && !e->wait_err_logged) {
            const char **wv = argv;     /* XREAD COUNT 1 BLOCK ms STREAMS keys ids */
            int wc = 0;
            wv[wc++] = "XREAD";
            wv[wc++] = "COUNT";
            wv[wc++] = "1";
            wv[wc++] = "BLOCK";
            wv[wc++] = "1000";
            wv[wc++] = "STREAMS";
            for (k = 0; k < n; k++)
                wv[wc++] = e->st[want[k]].key;
            for (k = 0; k < n; k++)
                wv[wc++] = e->st[want[k]].seen[0] ? e->st[want[k]].seen : "$";
            if (rk__redis_cmd(e->rd, on_wait, e, BLOCK_MS, wc, wv, NULL) != 0) {
                free(argv);
                return false;
            }
        } else if (block) {
            block = false;          /* no wait: poll (schedule_read's retry) */
            e->read_retry_at = (int64_t)uv_now(e->loop) + READ_RETRY_MS;
        }
        snprintf(nkeys, sizeof(nkeys), "%d", n + 1);
        argv[argc++] = "EVAL";
        argv[argc++] = fenced_read_lua;
        argv[argc++] = nkeys;
        argv[argc++] = e->epoch_key;
        for (k = 0; k < n; k++)
            argv[argc++] = e->st[want[k]].key;
        snprintf(epoch, sizeof(epoch), "%lld", e->epoch);
        argv[argc++] = epoch;
        argv[argc++] = e->cfg->group;
        argv[argc++] = e->cfg->consumer;
        argv[argc++] = count;
        for (k = 0; k < n; k++) {
            stream_state *s = &e->st[want[k]];
            argv[argc++] = s->phase == PH_PENDING ? s->cursor : ">";
        }
    } else {
        argv[argc++] = "XREADGROUP";
        argv[argc++] = "GROUP";
        argv[argc++] = e->cfg->group;
        argv[argc++] = e->cfg->consumer;
        argv[argc++] = "COUNT";
        argv[argc++] = count;
        if (block) {
            argv[argc++] = "BLOCK";
            argv[argc++] = "1000";
        }
        argv[argc++] = "STREAMS";
        for (k = 0; k < n; k++)
            argv[argc++] = e->st[want[k]].key;
        for (k = 0; k < n; k++) {
            stream_state *s = &e->st[want[k]];
            argv[argc++] = s->phase == PH_PENDING ? s->cursor : ">";
        }
    }
    sent = rk__redis_cmd(e->rd, rk__on_read, e, block ? BLOCK_MS : 0, argc, argv, NULL) == 0;
    free(argv);
    return sent;
}

/* ===================================================================
 * The connection, the turns, the ends
 * =================================================================== */

/* Entries buffered (or read ahead) but not applied are still in our
 * pending list: forget them, and whatever state the round is in, read the
 * pending list again from "0" before anything new (those at or before the
 * applied position are acknowledged without being applied). A read in
 * flight got its NULL reply already (hiredis answers every callback
 * before it reports the disconnect). */
static void live_down(rk__engine *e)
{
    unsigned si;
    e->read_inflight = false;
    for (si = 0; si < e->nstreams; si++) {
        rk__clear_buffer(&e->st[si]);
        e->st[si].phase = PH_PENDING;
        snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0");
        e->st[si].caught_up = false;
    }
    if (e->state == E_READING || e->state == E_SETUP || e->state == E_IDLE ||
        e->state == E_LOADING || e->state == E_CLAIMING)
        e->state = E_CONNECTING;
}

static bool live_admit(const rk__engine *e, const entry *en)
{
    (void)e;
    (void)en;
    return true;                    /* a stream has no end */
}

static bool live_wants(const rk__engine *e, const stream_state *s)
{
    (void)e;
    (void)s;
    return true;
}

static bool live_may_read_ahead(const rk__engine *e)
{
    return (int64_t)uv_now(e->loop) < e->next_claim;
}

/* The takeover claims, when due, once nothing is buffered. */
static bool live_turn(rk__engine *e, bool any_buffered)
{
    if ((int64_t)uv_now(e->loop) < e->next_claim || any_buffered)
        return false;
    e->steps->claims_begin(e, false);
    return true;
}

static void live_stalled(rk__engine *e, bool any_buffered)
{
    (void)e;
    (void)any_buffered;             /* schedule_read is called again */
}

/* ===================================================================
 * Wall-clock ticks after the checkpoint
 * =================================================================== */

static void live_ticks_cmd(rk__engine *e, const char *argv[6], const char *page)
{
    argv[0] = "XREVRANGE"; argv[1] = e->clock_key; argv[2] = "+"; argv[3] = "-";
    argv[4] = "COUNT";
    argv[5] = page;
}

/* Newest first: those after the restored watermark, applied oldest first. */
static bool live_ticks_take(rk__engine *e, const redisReply *reply, int page)
{
    rk__tick k;
    size_t i, n = 0;
    if (rk__tick_init(&k, e->nstreams) != 0) {
        rk__log(RK_LOG_ERR, "out of memory reading the wall-clock ticks");
        return false;
    }
    while (n < reply->elements && rk__tick_parse(reply->element[n], e->stream_keys, &k) == 0 &&
           k.ts > e->clock.watermark)
        n++;
    if (n == (size_t)page)
        rk__log(RK_LOG_WARNING, "more than %d wall-clock ticks in %s after the "
                "checkpoint: only the newest are applied again", page, e->clock_key);
    for (i = n; i-- > 0;)
        if (rk__tick_parse(reply->element[i], e->stream_keys, &k) == 0 &&
            rk__ticks_push(&e->ticks, &k) != 0)
            rk__log(RK_LOG_ERR, "out of memory reading the wall-clock ticks");
    rk__tick_free(&k);
    return false;
}

static void live_ticks_failed(rk__engine *e, const char *why)
{
    if (why != NULL)                /* (not sent: read again once connected) */
        rk__log(RK_LOG_WARNING, "reading the wall-clock ticks %s failed (%s): those after "
                "the checkpoint are not applied again", e->clock_key, why);
}

static void live_ticks_loaded(rk__engine *e)
{
    e->steps->setup_groups(e);
}

const rk__input rk__input_live = {
    rk__start_consuming, live_down, live_admit, live_wants, live_may_read_ahead, live_send,
    live_turn, live_stalled, true, live_ticks_cmd, live_ticks_take, live_ticks_failed,
    live_ticks_loaded,
};
