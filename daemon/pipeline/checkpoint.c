/* checkpoint.c - the engine's state in Redis, and acknowledgement.
 *
 * Every state.interval (and on a clean stop), once the outbox is empty -
 * every alert so far durably written - the whole state (stream positions,
 * watermark, timers, filings, cooldowns, natural keys and each detector's
 * snapshot) is written to state.key with one SET, from a forked child when
 * possible; then every entry that state covers is XACKed. An entry is thus
 * acknowledged only when its alerts are written AND a checkpoint reflects
 * it. After kill -9 the checkpoint is restored (on_state_loaded) and the
 * still-pending entries are read again; those at or before the recorded
 * positions are acknowledged without being applied twice. Under a lease
 * the SET and the XACKs are fenced by the partition's epoch. */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_int.h"

static int checkpoint_fork(rk__engine *e);
static void ack_covered(rk__engine *e);

/* ===================================================================
 * Applying entries
 * =================================================================== */

/* Drop the first `n` recorded ids (acknowledged); give memory back when
 * the array is mostly empty after a burst. */
static void ack_drop(stream_state *s, size_t n)
{
    memmove(s->acks, s->acks + n, (s->nacks - n) * sizeof(*s->acks));
    s->nacks -= n;
    if (s->acks_cap > 4096 && s->nacks < s->acks_cap / 4) {
        size_t ncap = s->nacks * 2 > 256 ? s->nacks * 2 : 256;
        ack_id *na = realloc(s->acks, ncap * sizeof(*na));
        if (na != NULL) {
            s->acks = na;
            s->acks_cap = ncap;
        }
    }
}

/* ===================================================================
 * Checkpoints and acknowledgement
 * =================================================================== */

static const char *det_name_cb(uint32_t idx, void *ud)
{
    rk__engine *e = ud;
    if (idx == RK__TIMER_OPEN_TTL)
        return RK__TIMER_OPEN_TTL_NAME;
    return idx < e->reg.n ? e->reg.dets[idx]->name : "";
}

static int det_index_cb(const char *name, void *ud)
{
    rk__engine *e = ud;
    if (strcmp(name, RK__TIMER_OPEN_TTL_NAME) == 0)
        return (int)RK__TIMER_OPEN_TTL;
    return rk__registry_find(&e->reg, name);
}

/* A length-prefixed blob written in place: blob_begin reserves the u64
 * length, the caller appends the blob to `out` itself, blob_end patches the
 * length in. No intermediate buffer, no copy. */
static size_t blob_begin(rk_buf *out)
{
    size_t at = out->len;
    rk_buf_put_u64(out, 0);
    return at;
}

static void blob_end(rk_buf *out, size_t at)
{
    uint64_t n = out->len - at - 8;
    int i;
    if (out->oom || at + 8 > out->len)
        return;
    for (i = 0; i < 8; i++)
        out->data[at + (size_t)i] = (unsigned char)(n >> (8 * i));
}

/* Serialise the whole state. Returns 0 or -1 (out of memory, or a
 * detector failed to snapshot). */
static int build_state(rk__engine *e, rk_buf *out)
{
    unsigned si;
    size_t i, n = 0, at;

    rk_buf_put_u32(out, STATE_MAGIC);
    rk_buf_put_u32(out, STATE_VERSION);
    rk_buf_put_u32(out, e->nstreams);
    for (si = 0; si < e->nstreams; si++) {
        rk_buf_put_str(out, e->st[si].key);
        rk_buf_put_u32(out, e->st[si].has_applied ? 1 : 0);
        rk_buf_put_ref(out, e->st[si].applied);
    }
    at = blob_begin(out);
    rk__clock_snapshot(&e->clock, out, det_name_cb, e);
    blob_end(out, at);
    at = blob_begin(out);
    rk__tasks_snapshot(&e->tasks, out);
    blob_end(out, at);
    for (i = 0; i < e->reg.n; i++)
        if (e->reg.dets[i]->self)
            n++;
    rk_buf_put_u32(out, (uint32_t)n);
    for (i = 0; i < e->reg.n; i++) {
        rk__det *d = e->reg.dets[i];
        const cooldowns *cs;
        size_t b;
        rk_map_entry *it;
        if (d->self == NULL)
            continue;
        rk_buf_put_str(out, d->name);
        at = blob_begin(out);
        if (d->ops->snapshot && d->ops->snapshot(d->self, out) != 0) {
            rk__log(RK_LOG_ERR, "detector %s failed to snapshot its state", d->name);
            return -1;
        }
        blob_end(out, at);
        cs = d->cooldown;
        rk_buf_put_u64(out, cs ? cs->map.count : 0);
        if (cs) {
            for (it = rk_map_first(&cs->map, &b); it; it = rk_map_next(&cs->map, &b, it)) {
                rk_buf_put_str(out, it->key);
                rk_buf_put_i64(out, ((cooldown_entry *)it->value)->until);
            }
        }
    }
    at = blob_begin(out);
    rk__dedupe_snapshot(&e->dedupe, out);
    blob_end(out, at);
    at = blob_begin(out);
    if (rk__ind_snapshot(e->ind, out) != 0)
        return -1;
    blob_end(out, at);
    at = blob_begin(out);
    rk__ostore_snapshot(&e->open, out, det_name_cb, e);
    blob_end(out, at);
    return out->oom ? -1 : 0;
}

/* Read a length-prefixed blob; returns its start and length. */
static const unsigned char *get_blob(rk_rd *rd, size_t *len)
{
    uint64_t n = rk_rd_u64(rd);
    const unsigned char *p = rd->p;
    if (rd->err || n > (uint64_t)(rd->end - rd->p)) {
        rd->err = 1;
        return NULL;
    }
    rd->p += n;
    *len = (size_t)n;
    return p;
}

/* Load a checkpoint into the (empty, just created) engine. Returns 0, or
 * -1 with err when the data is not a checkpoint riskd can read. */
int rk__restore_state(rk__engine *e, const void *data, size_t len, char *err, size_t errlen)
{
    rk_rd rd;
    uint32_t ns, nd, i, version;
    const unsigned char *blob;
    size_t blen, dropped = 0;
    unsigned si;

    rk_rd_init(&rd, data, len);
    if (rk_rd_u32(&rd) != STATE_MAGIC || rd.err) {
        rk_kit_errf(err, errlen, "not a riskd checkpoint");
        return -1;
    }
    version = rk_rd_u32(&rd);
    if (version != STATE_VERSION && version != STATE_VERSION_V3 &&
        version != STATE_VERSION_V2 && version != STATE_VERSION_V1) {
        rk_kit_errf(err, errlen, "checkpoint format version not supported");
        return -1;
    }
    ns = rk_rd_u32(&rd);
    for (i = 0; i < ns && !rd.err && i < RK__MAX_STREAMS; i++) {
        char *key = rk_rd_str(&rd, 4096);
        uint32_t has = rk_rd_u32(&rd);
        rk_entry_ref ref = rk_rd_ref(&rd);
        for (si = 0; key && !rd.err && si < e->nstreams; si++) {
            if (strcmp(key, e->st[si].key) == 0) {
                e->st[si].has_applied = has != 0;
                e->st[si].applied = ref;
                e->st[si].applied.stream = si;
            }
        }
        free(key);
    }
    blob = get_blob(&rd, &blen);
    if (rd.err || rk__clock_restore(&e->clock, blob, blen, det_index_cb, e) != 0) {
        rk_kit_errf(err, errlen, "clock and timers: corrupt");
        return -1;
    }
    blob = get_blob(&rd, &blen);
    if (rd.err || rk__tasks_restore(&e->tasks, blob, blen) != 0) {
        rk_kit_errf(err, errlen, "filings: corrupt");
        return -1;
    }
    nd = rk_rd_u32(&rd);
    for (i = 0; i < nd && !rd.err; i++) {
        char *name = rk_rd_str(&rd, 256);
        int idx = name ? rk__registry_find(&e->reg, name) : -1;
        rk__det *d = idx >= 0 ? e->reg.dets[idx] : NULL;
        uint64_t nc, k;
        char derr[RK_ERRLEN];

        blob = get_blob(&rd, &blen);
        if (!rd.err && d && d->self && d->ops->restore &&
            d->ops->restore(d->self, blob, blen, derr, sizeof(derr)) != 0)
            rk__log(RK_LOG_ERR, "detector %s could not restore its state (%s); "
                    "it starts empty", d->name, derr);
        nc = rk_rd_u64(&rd);
        for (k = 0; k < nc && !rd.err; k++) {
            char *ck = rk_rd_str(&rd, 4096);
            int64_t until = rk_rd_time(&rd);
            cooldowns *cs = d && d->self ? rk__det_cooldowns(d) : NULL;
            if (ck && !rd.err && cs)
                (void)rk__cooldown_set(cs, ck, until);  /* out of memory: no cooldown */
            free(ck);
        }
        free(name);
    }
    if (rd.err) {
        rk_kit_errf(err, errlen, "truncated");
        return -1;
    }
    if (version == STATE_VERSION_V1) {
        /* The previous release: no natural keys yet, and its alert ids
         * came from entry ids. Until what it left pending is applied
         * again, an alert it may have written already is looked for under
         * its old id too (host_emit), so the upgrade re-emits nothing. */
        e->legacy_ids = true;
        return 0;
    }
    blob = get_blob(&rd, &blen);
    if (rd.err || rk__dedupe_restore(&e->dedupe, blob, blen) != 0) {
        rk_kit_errf(err, errlen, "natural keys: corrupt");
        return -1;
    }
    if (version == STATE_VERSION_V2)
        return 0;                   /* before the indicators: they start empty */
    blob = get_blob(&rd, &blen);
    if (rd.err || rk__ind_restore(e->ind, blob, blen) != 0) {
        rk_kit_errf(err, errlen, "indicators: corrupt");
        return -1;
    }
    if (version == STATE_VERSION_V3)
        return 0;                   /* its open_ttl deadlines came with the timers */
    blob = get_blob(&rd, &blen);
    if (rd.err || rk__ostore_restore(&e->open, blob, blen, det_index_cb, e, e->cfg->open_ttl,
                                     &dropped) != 0) {
        rk_kit_errf(err, errlen, "open alerts: corrupt");
        return -1;
    }
    if (dropped > 0)
        rk__log(RK_LOG_NOTICE, "%zu open alerts of detectors no longer "
                "registered were dropped", dropped);
    return 0;
}

/* Under a lease, acknowledgements and inline checkpoints go through these
 * scripts: they act only while the partition's epoch is still ours. An
 * acknowledgement from a fenced-out leader would drop an entry the new
 * holder has not applied yet. */
static const char ack_fenced_lua[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[2] .. "
    "' is no longer current')\n"
    "end\n"
    "return redis.call('XACK', KEYS[1], ARGV[2], unpack(ARGV, 3))\n";
static const char set_fenced_lua[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[2] .. "
    "' is no longer current')\n"
    "end\n"
    "return redis.call('SET', KEYS[1], ARGV[2])\n";

static bool ack_send_next(rk__engine *e);

static void on_ack(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    unsigned si;
    bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    (void)r;
    e->acks_inflight--;
    if (e->lost)
        return;
    if (rk__is_fenced_reply(reply)) {
        rk__engine_give_up(e, reply->str);
        return;
    }
    if (!ok) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "XACK failed: %s", reply->str);
        e->dirty = true;            /* ack again after the next checkpoint */
        for (si = 0; si < e->nstreams; si++)
            e->st[si].covered = 0;
    }
    if (e->acks_inflight > 0 || ack_send_next(e))
        return;
    for (si = 0; si < e->nstreams; si++) {
        stream_state *s = &e->st[si];
        if (s->covered > 0) {
            ack_drop(s, s->covered);
            s->covered = 0;
        }
        s->acks_sent = 0;
    }
    if (e->stopping && e->state == E_IDLE)
        rk__finish_stop(e);
    else if (e->careful_pause && e->state == E_IDLE)
        e->steps->careful_resume(e);
}

/* Send the next XACK of at most ACK_CHUNK ids that the written checkpoint
 * covers. One at a time: Redis runs a client's pipelined commands in one
 * go, so tens of thousands of ids sent at once (a 5 s checkpoint at 5k
 * ev/s) would hold the reader's XREADGROUP behind them for milliseconds.
 * Returns true when a command was sent; false when nothing is left (or the
 * writer refused it: the rest waits for the next checkpoint). */
static bool ack_send_next(rk__engine *e)
{
    unsigned si;
    for (si = 0; si < e->nstreams; si++) {
        stream_state *s = &e->st[si];
        size_t n = s->covered - s->acks_sent, k, h = 0;
        /* 8 + 41 KB on the stack: no malloc per chunk */
        const char *argv[ACK_CHUNK + 7];
        char ids[ACK_CHUNK][ACK_ID_LEN];
        char epoch[24];
        if (s->acks_sent >= s->covered)
            continue;
        if (n > ACK_CHUNK)
            n = ACK_CHUNK;
        if (e->leased) {
            /* EVAL script 2 stream epoch-key epoch group ids... */
            snprintf(epoch, sizeof(epoch), "%lld", e->epoch);
            argv[h++] = "EVAL";
            argv[h++] = ack_fenced_lua;
            argv[h++] = "2";
            argv[h++] = s->key;
            argv[h++] = e->epoch_key;
            argv[h++] = epoch;
        } else {
            argv[h++] = "XACK";
            argv[h++] = s->key;
        }
        argv[h++] = e->cfg->group;
        for (k = 0; k < n; k++) {
            const ack_id *a = &s->acks[s->acks_sent + k];
            snprintf(ids[k], sizeof(ids[k]), "%llu-%llu", (unsigned long long)a->ms,
                     (unsigned long long)a->seq);
            argv[h + k] = ids[k];
        }
        if (rk__redis_cmd(e->wr, on_ack, e, 0, (int)(n + h), argv, NULL) != 0) {
            s->covered = s->acks_sent;  /* the rest waits for the next checkpoint */
            continue;
        }
        s->acks_sent += n;
        e->acks_inflight++;
        return true;
    }
    return false;
}

/* XACK every entry the written checkpoint covers, one chunk after the
 * other (on_ack sends the next). */
static void ack_covered(rk__engine *e)
{
    unsigned si;
    for (si = 0; si < e->nstreams; si++)
        e->st[si].acks_sent = 0;
    if (ack_send_next(e))
        return;
    for (si = 0; si < e->nstreams; si++) {
        stream_state *s = &e->st[si];
        if (s->covered > 0) {   /* nothing could be sent */
            s->covered = 0;
        }
    }
    if (e->stopping && e->state == E_IDLE)
        rk__finish_stop(e);
    else if (e->careful_pause && e->state == E_IDLE)
        e->steps->careful_resume(e);
}

typedef struct ckpt_req {
    rk__engine *e;
    rk_buf blob;
} ckpt_req;

static void on_ckpt_written(rk__redis *r, redisReply *reply, void *pd)
{
    ckpt_req *req = pd;
    rk__engine *e = req->e;
    unsigned si;
    (void)r;
    rk_buf_free(&req->blob);
    free(req);
    e->ckpt_inflight = false;
    if (e->lost)
        return;
    if (rk__is_fenced_reply(reply)) {
        rk__engine_give_up(e, reply->str);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "writing the checkpoint to %s failed: %s",
                    e->cfg->state_key, reply->str);
        e->dirty = true;
        for (si = 0; si < e->nstreams; si++)
            e->st[si].covered = 0;
        return;                     /* retried by the housekeeping timer */
    }
    e->checkpoints++;
    e->last_ckpt_wall = rk__wall_ms();
    e->ckpt_cost_ms = (int64_t)((uv_hrtime() - e->ckpt_started_hr) / 1000000);
    ack_covered(e);
}

/* ===================================================================
 * Checkpoints in a child process
 *
 * Serialising the whole state takes time proportional to it; on the loop
 * that delays every event behind it. So a checkpoint forks: the child has
 * a copy-on-write image of the state at this instant, serialises it and
 * writes it over a connection of its own, then reports one byte on a pipe;
 * the loop goes on meanwhile. The entries the image covers are acknowledged
 * only when the child reports success.
 *
 * A child may outlive a riskd killed under it. It must never overwrite a
 * newer checkpoint, so every process takes an epoch at start (INCR
 * <state.key>:epoch, which also fences every older process out), and the
 * child writes under WATCH of that key, only while it still holds its own
 * epoch. If fork fails, the checkpoint is written from the loop instead.
 * =================================================================== */

/* In the child: build the state and write it under the epoch fence.
 * Returns 0 when written. Never returns to the loop. */
static int child_checkpoint(rk__engine *e)
{
    struct timeval tv = {10, 0};
    rk_buf b = {0};
    redisContext *c;
    redisReply *r;
    const char *host;
    int ok = 0, port;

    rk_buf_reserve(&b, e->ckpt_size + e->ckpt_size / 8 + 4096);
    if (build_state(e, &b) != 0)
        return -1;
    rk__redis_addr(e->wr, &host, &port);  /* the master the writer is on */
    c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err)
        return -1;
    redisSetTimeout(c, tv);
    if (e->cfg->redis_password != NULL) {
        r = e->cfg->redis_username != NULL
            ? redisCommand(c, "AUTH %s %s", e->cfg->redis_username, e->cfg->redis_password)
            : redisCommand(c, "AUTH %s", e->cfg->redis_password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            return -1;
    }
    if (e->cfg->redis_db != 0) {
        r = redisCommand(c, "SELECT %d", e->cfg->redis_db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            return -1;
    }
    r = redisCommand(c, "WATCH %s", e->epoch_key);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return -1;
    r = redisCommand(c, "GET %s", e->epoch_key);
    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_STRING || strtoll(r->str, NULL, 10) != e->epoch)
        return -2;                  /* a newer riskd took over */
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "SET %s %b", e->cfg->state_key, (const char *)b.data, b.len);
    redisAppendCommand(c, "EXEC");
    if (redisGetReply(c, (void **)&r) != REDIS_OK || redisGetReply(c, (void **)&r) != REDIS_OK ||
        redisGetReply(c, (void **)&r) != REDIS_OK)
        return -1;
    if (r != NULL && r->type == REDIS_REPLY_NIL)
        return -2;                  /* the epoch moved under WATCH */
    ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
         r->element[0]->type == REDIS_REPLY_STATUS;
    if (ok && e->cfg->redis_wait_replicas > 0) {
        /* Only a checkpoint the replicas have survives a failover. */
        tv.tv_sec += (time_t)(e->cfg->redis_wait_timeout / 1000);
        redisSetTimeout(c, tv);
        r = redisCommand(c, "WAIT %d %lld", e->cfg->redis_wait_replicas,
                         (long long)e->cfg->redis_wait_timeout);
        ok = r != NULL && r->type == REDIS_REPLY_INTEGER &&
             r->integer >= e->cfg->redis_wait_replicas;
    }
    return ok ? 0 : -1;             /* nothing freed: the child exits */
}

static void on_ckpt_child(uv_poll_t *h, int status, int events)
{
    rk__engine *e = h->data;
    char res = 'n';
    unsigned si;
    int st;
    ssize_t n;

    (void)status;
    (void)events;
    do {
        n = read(e->ckpt_fd, &res, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n != 1)
        res = 'n';                  /* the child died without a word */
    uv_poll_stop(&e->ckpt_poll);
    e->handles_closing++;
    uv_close((uv_handle_t *)&e->ckpt_poll, e->handle_closed);
    e->ckpt_poll_open = false;
    close(e->ckpt_fd);
    e->ckpt_fd = -1;
    while (waitpid(e->ckpt_pid, &st, 0) < 0 && errno == EINTR)
        ;
    e->ckpt_pid = 0;
    e->ckpt_inflight = false;
    if (res == 'f' && e->leased) {
        rk__engine_give_up(e, "the checkpoint was fenced: another riskd holds the epoch");
        return;
    }
    if (res != 'y') {
        rk__log(RK_LOG_ERR, "writing the checkpoint to %s failed (in the checkpoint process)",
                e->cfg->state_key);
        e->dirty = true;
        for (si = 0; si < e->nstreams; si++)
            e->st[si].covered = 0;
        return;                     /* retried by the housekeeping timer */
    }
    e->checkpoints++;
    e->last_ckpt_wall = rk__wall_ms();
    e->ckpt_cost_ms = (int64_t)((uv_hrtime() - e->ckpt_started_hr) / 1000000);
    ack_covered(e);
}

/* Fork the checkpoint writer. Returns 0 when the child runs, -1 when the
 * checkpoint must be written from the loop (no epoch yet, fork failed). */
static int checkpoint_fork(rk__engine *e)
{
    int fds[2];
    pid_t pid;

    if (e->epoch <= 0 || e->epoch_key == NULL || e->ckpt_poll_open)
        return -1;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        rk__log(RK_LOG_WARNING, "fork for the checkpoint failed (%s); writing it inline",
                strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        char res;
        int rc;
        close(fds[0]);
        rc = child_checkpoint(e);
        res = rc == 0 ? 'y' : rc == -2 ? 'f' : 'n';
        if (write(fds[1], &res, 1) != 1)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    e->ckpt_pid = pid;
    e->ckpt_fd = fds[0];
    if (uv_poll_init(e->loop, &e->ckpt_poll, fds[0]) != 0) {
        close(fds[0]);
        e->ckpt_fd = -1;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        e->ckpt_pid = 0;
        return -1;
    }
    e->ckpt_poll.data = e;
    e->ckpt_poll_open = true;
    uv_poll_start(&e->ckpt_poll, UV_READABLE | UV_DISCONNECT, on_ckpt_child);
    return 0;
}

/* A checkpoint is due once state.interval has passed since the last one -
 * or ten times what the last one cost, if more, so that writing ever larger
 * states never takes more than a tenth of the time. */
bool rk__checkpoint_due(const rk__engine *e)
{
    int64_t interval = e->cfg->state_interval;
    if (interval < 10 * e->ckpt_cost_ms)
        interval = 10 * e->ckpt_cost_ms;
    return e->dirty && !e->ckpt_inflight &&
           (int64_t)uv_now(e->loop) - e->last_ckpt >= interval;
}

/* Write a checkpoint if one can be written now: the writer is up, no
 * checkpoint or ack is in flight and every alert so far is written. */
void rk__checkpoint(rk__engine *e)
{
    ckpt_req *req;
    const char *argv[7];
    size_t lens[7];
    int argc;
    unsigned si;

    if (e->ckpt_inflight || e->acks_inflight > 0 || !e->restored ||
        !rk__redis_ready(e->wr) || rk__ob_pending(e) > 0 ||
        e->state == E_FLUSHING || !rk__lease_valid(e))
        return;
    e->last_ckpt = (int64_t)uv_now(e->loop);
    e->ckpt_started_hr = uv_hrtime();
    rk__housekeep_state(e, true);       /* do not save what has expired */
    if (e->legacy_ids) {
        /* Once every entry the previous release may have applied (up to
         * its group's last-delivered id at our start) is applied again,
         * nothing can be written under its ids any more. */
        bool behind = false;
        for (si = 0; si < e->nstreams; si++) {
            const stream_state *ss = &e->st[si];
            behind = behind || ss->phase == PH_PENDING ||
                     (ss->has_legacy_until &&
                      !(ss->has_applied && rk__ref_le(ss->legacy_until, ss->applied)));
        }
        if (!behind)
            e->legacy_ids = false;
    }
    if (checkpoint_fork(e) == 0) {
        for (si = 0; si < e->nstreams; si++)
            e->st[si].covered = e->st[si].nacks;
        e->ckpt_inflight = true;
        e->dirty = false;
        return;
    }
    req = calloc(1, sizeof(*req));
    if (req == NULL)
        return;
    req->e = e;
    /* Reserve what the last checkpoint took: no regrowth on the way. */
    rk_buf_reserve(&req->blob, e->ckpt_size + e->ckpt_size / 8 + 4096);
    if (build_state(e, &req->blob) != 0) {
        rk__log(RK_LOG_ERR, "cannot build a checkpoint (out of memory?)");
        rk_buf_free(&req->blob);
        free(req);
        return;
    }
    e->ckpt_size = req->blob.len;
    if (e->leased) {
        char epoch[24];
        snprintf(epoch, sizeof(epoch), "%lld", e->epoch);
        argv[0] = "EVAL"; lens[0] = 4;
        argv[1] = set_fenced_lua; lens[1] = strlen(set_fenced_lua);
        argv[2] = "2"; lens[2] = 1;
        argv[3] = e->cfg->state_key; lens[3] = strlen(e->cfg->state_key);
        argv[4] = e->epoch_key; lens[4] = strlen(e->epoch_key);
        argv[5] = epoch; lens[5] = strlen(epoch);
        argv[6] = (const char *)req->blob.data; lens[6] = req->blob.len;
        argc = 7;
    } else {
        argv[0] = "SET"; lens[0] = 3;
        argv[1] = e->cfg->state_key; lens[1] = strlen(e->cfg->state_key);
        argv[2] = (const char *)req->blob.data; lens[2] = req->blob.len;
        argc = 3;
    }
    if (rk__redis_cmd(e->wr, on_ckpt_written, req, 0, argc, argv, lens) != 0) {
        rk_buf_free(&req->blob);
        free(req);
        return;
    }
    for (si = 0; si < e->nstreams; si++)
        e->st[si].covered = e->st[si].nacks;
    e->ckpt_inflight = true;
    e->dirty = false;
}

