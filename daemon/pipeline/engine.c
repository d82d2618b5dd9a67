/* engine.c - the pipeline: read both streams, apply events in event-time
 * order, emit alerts, acknowledge.
 *
 * One round at a time, on one loop thread:
 *
 *   read     XREADGROUP on the reader connection for every stream whose
 *            buffer is empty. After a (re)connect each stream first reads
 *            this consumer's own pending entries (cursor "0", then the last
 *            id seen) and switches to ">" when none are left. Before the
 *            first read the group is set back to the restored position if
 *            it delivered past it ("The group against the state"), and a
 *            pipeline that reconnects to another Sentinel master gives up
 *            so that its partition starts again from that master's
 *            checkpoint (master_moved). The read
 *            BLOCKs only when every stream is caught up and nothing is
 *            buffered.
 *   ahead    as soon as a batch is taken in (copied into the stream's
 *            buffer), before it is applied, the next read goes out when a
 *            stream may have more in Redis, so Redis works while riskd
 *            applies (a backlog drain no longer waits a round trip per
 *            batch). Its reply lands in the stream's second batch, which
 *            becomes the buffer when the buffer runs out. One read is in
 *            flight at a time and a stream is only read while its second
 *            batch is free: at most two batches per stream. Nothing of a
 *            read ahead is applied, acknowledged or checkpointed before
 *            the round that takes it in; a stop or a lost connection drops
 *            it (its entries stay pending and are read again).
 *   apply    the buffered entries are merged by ts: the head with the
 *            smallest ts goes first, and the merge stops as soon as a stream
 *            with more entries in Redis has an empty buffer (a read ahead
 *            in flight included: the merge waits for its reply), so a
 *            stream behind in event time is read before the other runs
 *            ahead. Each
 *            entry: parse (bad -> dead letter), skip if the state already
 *            reflects it (id at or before the stream's applied position),
 *            enrich from its filing, move the watermark (clock.c), fire
 *            due timers, hand the event to every detector.
 *   flush    alerts and dead letters go through the outbox (sink.c).
 *   flush    (as above) then the next read.
 *   ckpt     every state.interval (and on a clean stop), once the outbox is
 *            empty - every alert so far durably written - the whole state
 *            (stream positions, watermark, timers, filings, cooldowns and
 *            each detector's snapshot) is written to state.key with one
 *            SET; then every entry that state covers is XACKed. An entry is
 *            thus acknowledged only when its alerts are written AND a
 *            checkpoint reflects it. After kill -9 the checkpoint is
 *            restored and the still-pending entries are read again; those
 *            at or before the recorded positions are acknowledged without
 *            being applied twice, the others are applied and their alerts,
 *            if already written, are dropped by id.
 *
 * The watermark also moves with the wall clock after clock.idle without
 * input (clock.wall_advance), from a 250 ms housekeeping timer, through a
 * tick recorded in Redis first ("Wall-clock ticks") so a replay or a
 * restart applies the same move at the same point.
 *
 * The host API (emit, timer_set, now, log, stream_name) is implemented
 * here on struct rk_host {engine, detector index}. emit() applies the
 * detector's severity override and the cooldown per (rule, subject), derives
 * the alert id and queues the alert. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "riskd/kit.h"
#include "internal.h"

#define BLOCK_MS 1000
#define HOUSEKEEPING_MS 250
#define ACK_CHUNK 1000
#define READ_RETRY_MS 1000
#define STOP_TIMEOUT_MS 10000
#define HOUSEKEEP_MS 1000
#define OUTBOX_HIGH 20000           /* alerts queued before reading pauses */

enum { PH_PENDING, PH_NEW };
enum { E_CONNECTING, E_LOADING, E_SETUP, E_CLAIMING, E_IDLE, E_READING, E_FLUSHING, E_STOPPED };

#define STATE_MAGIC 0x54534b52u     /* "RKST" */
#define STATE_VERSION 2u            /* 2: + natural keys (dedupe.c) */
#define STATE_VERSION_V1 1u         /* the previous release's, still read */

typedef struct entry {
    rk_entry_ref ref;
    char id[48];
    char *data;                     /* NULL: no payload (trimmed) */
    size_t len;
    int missing_data;               /* fields present but no "data" */
} entry;

/* An entry id to acknowledge: "<ms>-<seq>", both 64-bit in Redis. */
typedef struct ack_id {
    uint64_t ms, seq;
} ack_id;
#define ACK_ID_LEN 42                   /* 20 + '-' + 20 + NUL */

typedef struct stream_state {
    char *key;
    int phase;
    char cursor[48];                /* PH_PENDING: last id read */
    bool caught_up;                 /* PH_NEW: last read was not full */
    entry *buf;
    size_t n, pos, cap;
    bool replay_end;                /* replay: nothing more to read */
    char *arena;                    /* payloads of the buffered batch */
    size_t arena_cap;
    /* the next batch, read ahead while this one is applied (see
     * "Reading"): it becomes the buffer when the buffer runs out */
    entry *nbuf;
    size_t nn, ncap;
    char *narena;
    size_t narena_cap;
    /* the parsed head entry */
    int head_state;                 /* 0 none, else an RK_PARSE_* + 10 */
    rk_event head;
    char head_err[RK_ERRLEN];
    rk__event_mem mem;
    rk_entry_ref applied;           /* last entry reflected in the state */
    bool has_applied;
    /* restored from the previous release's checkpoint: its group's
     * last-delivered id at start, the last entry it may have applied */
    rk_entry_ref legacy_until;
    bool has_legacy_until;
    /* the group was set back to the state's position (gap.c): the first
     * pending read after it stops at that position, '>' delivers the rest */
    bool bounded, bound_hit;
    rk_entry_ref bound;
    /* ids to acknowledge, as numbers (16 B, not a 48-byte string: a
     * backlog read between two checkpoints can be a million of them) */
    ack_id *acks;
    size_t nacks, acks_cap;
    size_t covered;                 /* acks covered by the checkpoint in flight */
    size_t acks_sent;               /* of those, sent in XACKs so far */
    /* crash-loop protection (see "Takeover and poison entries") */
    bool has_suspect;               /* first pending entry past the position */
    rk_entry_ref suspect;
    long long suspect_starts;       /* consecutive starts it was the suspect */
} stream_state;

struct rk_engine {
    uv_loop_t *loop;
    rk_config *cfg;
    rk_registry reg;
    rk_host_api api;
    rk_clock clock;
    rk_tasks tasks;
    rk__dedupe dedupe;              /* natural keys of the events applied */
    bool legacy_ids;                /* restored from a release whose alert ids
                                       came from entry ids (see host_emit) */
    rk_redis *rd, *wr;
    rk_outbox *ob;
    /* On a Redis Cluster (redis.cluster) the partition's keys live on one
     * node and the shared ones elsewhere: alerts go through wr_out (the
     * alert stream's slot), dead letters through ob_dead on wr_dead
     * (riskd:dead's slot), silences and audit entries through aux_sil and
     * aux_audit. Without a cluster all are NULL and wr serves them all. */
    rk_redis *wr_out, *wr_dead, *aux_sil, *aux_audit;
    rk_outbox *ob_dead;
    rk__register *filreg;           /* partitions > 1: the filing register */
    stream_state st[RK_STREAM_COUNT];
    const char *stream_keys[RK_STREAM_COUNT];
    int state;
    int setup_left;
    int acks_inflight;
    bool restored;                  /* state.key read (or absent) */
    bool gap_checked;               /* the group compared with the state */
    char master_host[64];           /* Sentinel: the master this engine began on */
    int master_port;
    int gap_left;                   /* its replies still due */
    /* takeover: XAUTOCLAIM then XPENDING, one stream after the other */
    int claim_step;                 /* 0 XAUTOCLAIM, 1 XPENDING, 2 HGET suspect */
    unsigned claim_si;
    char claim_cursor[48];
    bool claim_scan_poison;
    bool claimed_any;
    int64_t next_claim;
    uint64_t claimed, poisoned;
    bool careful_pause;             /* checkpoint right after a suspect entry */
    rk_map alert_counts;            /* "detector rule severity" -> uint64_t * */
    long long group_lag[RK_STREAM_COUNT];      /* from XINFO GROUPS; -1 unknown */
    long long group_pending[RK_STREAM_COUNT];
    int64_t next_xinfo;
    uint64_t next_housekeep;        /* loop time of the next on_watermark round */
    uint64_t ckpt_started_hr;       /* hrtime when the checkpoint began */
    int64_t ckpt_cost_ms;           /* what the last checkpoint took */
    size_t ckpt_size;               /* bytes of the last checkpoint */
    long long epoch;                /* INCR <state.key>:epoch at start */
    char *epoch_key;
    pid_t ckpt_pid;                 /* the child writing a checkpoint */
    int ckpt_fd;                    /* its result pipe */
    uv_poll_t ckpt_poll;
    bool ckpt_poll_open;
    bool freeing;                   /* rk__engine_free called */
    int handles_closing;            /* uv_close calls whose callback is due */
    rk_silences *silences;
    uint64_t silenced;
    int64_t next_silences;
    bool audit_pending;             /* config_applied not yet written */
    /* replay (riskd --replay) */
    bool replay;
    rk_replay_opts ro;
    bool replay_has_to;
    rk_entry_ref replay_to;
    json_t *replay_alerts;          /* id -> alert summary */
    bool replay_done;
    /* wall-clock ticks (ticks.c, "Wall-clock ticks" below) */
    char *clock_key;                /* <state.key>:clock */
    rk__ticks ticks;                /* read back: to apply at their positions */
    bool ticks_loaded;              /* live: the ticks after the checkpoint read */
    rk_entry_ref replay_from;       /* --from ({0, 0}: none) */
    char ticks_cursor[48];          /* replay: the last tick id read */
    rk__tick tick;                  /* the tick being recorded */
    bool tick_hold;                 /* decided, not yet applied: no entry applies */
    int tick_inflight;              /* replies awaited: script, WAIT */
    bool tick_written;              /* the script answered; its WAIT is due */
    bool tick_warned;               /* a refused write was logged */
    int64_t last_tick;              /* loop ms of the last tick applied */
    char *audit_old;                /* the previous configuration (JSON) */
    char *suspect_key;              /* <state.key>:suspect */
    bool ckpt_inflight;
    bool dirty;                     /* state changed since the checkpoint */
    int64_t last_ckpt;              /* loop time of the last checkpoint */
    uint64_t checkpoints;
    int64_t last_ckpt_wall;
    bool ever_ready;
    void (*ready_cb)(void *ud);
    void *ready_ud;
    bool stopping;
    void (*stop_cb)(void *ud);
    void *stop_ud;
    uv_timer_t housekeeping;
    int64_t last_input_wall;
    int64_t read_retry_at;
    int64_t round_started;
    bool requested[RK_STREAM_COUNT];    /* streams in the read in flight */
    bool read_inflight;             /* an XREADGROUP/XREAD awaits its reply */
    uint64_t round_hr;
    rk_engine_stats stats;
    rk__inlog inlog;                /* late, unknown, bad input (inputlog.c) */
    /* lease mode (rk__engine_set_lease, node.c) */
    bool leased;                    /* writes are fenced by `epoch` */
    bool claim_all;                 /* the first claim takes every pending entry */
    uint64_t lease_until_hr;        /* uv_hrtime() past which we may not read */
    bool lost;                      /* fenced out: doing nothing any more */
    void (*lost_cb)(void *ud, const char *why);
    void *lost_ud;
};

static void schedule_read(rk_engine *e);
static void round_finished(rk_engine *e);
static void checkpoint(rk_engine *e);
static bool checkpoint_due(const rk_engine *e);
static int checkpoint_fork(rk_engine *e);
static void ack_covered(rk_engine *e);
static void finish_stop(rk_engine *e);

static rk_outbox *dead_ob(const rk_engine *e)
{
    return e->ob_dead ? e->ob_dead : e->ob;
}

static size_t ob_pending(const rk_engine *e)
{
    return rk__outbox_pending(e->ob) + rk__outbox_pending(e->ob_dead) +
           rk__register_pending(e->filreg);
}

static void ob_kick(rk_engine *e)
{
    rk__outbox_kick(e->ob);
    rk__outbox_kick(e->ob_dead);
    rk__register_watermark(e->filreg, rk__clock_now(&e->clock));
}

static rk_redis *sil_conn(const rk_engine *e)
{
    return e->aux_sil ? e->aux_sil : e->wr;
}

static rk_redis *audit_conn(const rk_engine *e)
{
    return e->aux_audit ? e->aux_audit : e->wr;
}

/* Fenced out (a write refused, or the lease's time is up): from now on the
 * engine does nothing - no read, no write - and the node frees it. What it
 * read and did not get acknowledged stays pending for the new holder. */
static void engine_lost(rk_engine *e, const char *why)
{
    if (e->lost)
        return;
    e->lost = true;
    e->state = E_STOPPED;
    uv_timer_stop(&e->housekeeping);
    rk__log(RK_LOG_WARNING, "partition %d (%s, %s): giving up: %s", e->cfg->partition,
            e->st[0].key, e->st[1].key, why);
    if (e->lost_cb)
        e->lost_cb(e->lost_ud, why);
}

/* Still inside the lease? (Checked with a fresh clock, not the loop's
 * cached one: after a pause the loop may run I/O callbacks before the
 * timers that would notice.) */
static bool lease_valid(rk_engine *e)
{
    if (!e->leased || e->lost)
        return !e->lost;
    if (uv_hrtime() < e->lease_until_hr)
        return true;
    engine_lost(e, "the lease ran out before it could be renewed");
    return false;
}

/* ===================================================================
 * Helpers
 * =================================================================== */

static int parse_entry_id(const char *s, size_t len, rk_entry_ref *ref)
{
    uint64_t ms = 0, seq = 0;
    size_t i = 0;
    int digits = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        ms = ms * 10 + (uint64_t)(s[i] - '0');
    if (digits == 0 || digits > 19 || i >= len || s[i] != '-')
        return -1;
    for (i++, digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        seq = seq * 10 + (uint64_t)(s[i] - '0');
    if (digits == 0 || digits > 19 || i != len)
        return -1;
    ref->ms = ms;
    ref->seq = seq > UINT32_MAX ? UINT32_MAX : (uint32_t)seq;
    return 0;
}

static int ref_le(rk_entry_ref a, rk_entry_ref b)
{
    return a.ms < b.ms || (a.ms == b.ms && a.seq <= b.seq);
}

/* Does the stream hold entries not applied yet: buffered, read ahead, or
 * (not caught up, or still reading our pending list) in Redis? A read
 * ahead in flight is one of the last: it is only sent for a stream that is
 * not caught up, and caught_up changes only when its reply is taken in. */
static bool stream_unread(const stream_state *s)
{
    return s->pos < s->n || s->nn > 0 || s->phase == PH_PENDING || !s->caught_up;
}

/* Entries buffered or read ahead (not applied yet)? */
static bool stream_buffered(const stream_state *s)
{
    return s->pos < s->n || s->nn > 0;
}

/* The buffer is used up: the batch read ahead becomes the buffer, and the
 * old buffer's storage waits for the next batch. */
static void take_next(stream_state *s)
{
    entry *b = s->buf;
    char *a = s->arena;
    size_t cap = s->cap, acap = s->arena_cap;
    s->buf = s->nbuf;
    s->cap = s->ncap;
    s->arena = s->narena;
    s->arena_cap = s->narena_cap;
    s->n = s->nn;
    s->pos = 0;
    s->head_state = 0;
    s->nbuf = b;
    s->ncap = cap;
    s->narena = a;
    s->narena_cap = acap;
    s->nn = 0;
}

static void clear_buffer(stream_state *s)
{
    size_t i;
    for (i = s->pos; i < s->n; i++)
        s->buf[i].data = NULL;
    for (i = 0; i < s->nn; i++)
        s->nbuf[i].data = NULL;
    s->n = s->pos = s->nn = 0;
    s->head_state = 0;
}

/* ===================================================================
 * Host API
 * =================================================================== */

#define HOST(h) ((struct rk_host *)(void *)(h))

/* A detector's cooldowns: (rule, subject) -> until, and the same entries
 * in a heap by `until`, so that expiring them costs what expires. */
typedef struct cooldown_entry {
    int64_t until;
    const char *key;                /* the map entry's key */
    uint32_t heap_pos;
} cooldown_entry;

typedef struct cooldowns {
    rk_map map;                     /* first: build_state reads it as rk_map */
    rk_heap heap;
} cooldowns;

static void cooldown_key(const rk_alert *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", a->rule,
             a->subject.unit_id ? a->subject.unit_id : "",
             a->subject.officer_id ? a->subject.officer_id : "",
             a->subject.enterprise_id ? a->subject.enterprise_id : "",
             a->subject.task_id ? a->subject.task_id : "",
             a->subject.case_id ? a->subject.case_id : "",
             a->subject.region ? a->subject.region : "");
}

static cooldowns *det_cooldowns(rk__det *d)
{
    if (d->cooldown == NULL) {
        cooldowns *c = calloc(1, sizeof(*c));
        if (c != NULL) {
            rk_map_init(&c->map);
            rk_heap_init(&c->heap, offsetof(cooldown_entry, heap_pos));
        }
        d->cooldown = c;
    }
    return d->cooldown;
}

/* Set the cooldown of key in cs to until (a new entry, or a later time for
 * an existing one). Returns 0, or -1 when out of memory (cs unchanged). */
static int cooldown_set(cooldowns *cs, const char *key, int64_t until)
{
    cooldown_entry *c = rk_map_get(&cs->map, key);
    rk_map_entry *me;
    if (c != NULL) {
        c->until = until;
        rk_heap_update(&cs->heap, c, until);
        return 0;
    }
    c = malloc(sizeof(*c));
    if (c == NULL)
        return -1;
    c->until = until;
    c->heap_pos = RK_HEAP_NONE;
    me = rk_map_put(&cs->map, key, c, NULL);
    if (me == NULL) {
        free(c);
        return -1;
    }
    c->key = me->key;
    if (rk_heap_push(&cs->heap, until, c) != 0) {
        rk_map_del(&cs->map, key);
        free(c);
        return -1;
    }
    return 0;
}

/* Drop the cooldowns of cs that have run out at event time now (until <=
 * now): O(expired x log n). */
static void cooldown_expire(cooldowns *cs, int64_t now)
{
    const rk_heap_item *top;
    while ((top = rk_heap_top(&cs->heap)) != NULL && top->key <= now) {
        cooldown_entry *c = top->rec;
        rk_heap_remove(&cs->heap, c);
        rk_map_del(&cs->map, c->key);
        free(c);
    }
}

static const char *const sev_names[] = {"info", "warning", "critical"};

/* Count an alert under "detector rule severity" for the metrics. */
static void count_alert(rk_engine *e, const char *det, const char *rule, rk_severity sev)
{
    char key[256];
    uint64_t *n;
    snprintf(key, sizeof(key), "%s %s %s", det, rule, sev_names[sev <= RK_SEV_CRITICAL ? sev : 0]);
    n = rk_map_get(&e->alert_counts, key);
    if (n == NULL) {
        n = calloc(1, sizeof(*n));
        if (n == NULL || rk_map_put(&e->alert_counts, key, n, NULL) == NULL) {
            free(n);
            return;
        }
    }
    (*n)++;
}

/* Replay: print the alert and remember it; nothing goes to Redis. */
static int replay_emit(rk_engine *e, const char *id, const char *det, const rk_alert *a,
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
    count_alert(e, det, a->rule, sev);
    return 1;
}

static int host_emit(rk_host *h, const rk_alert *a)
{
    rk_engine *e = HOST(h)->eng;
    rk__det *d = e->reg.dets[HOST(h)->idx];
    rk_severity sev = d->severity >= 0 ? (rk_severity)d->severity : a->severity;
    char id[33], legacy[33], key[1024];
    char *json;
    int64_t now_wall;
    bool silenced;

    if (a->rule == NULL)
        return -1;
    if (a->cooldown > 0) {
        cooldowns *cs = det_cooldowns(d);
        const cooldown_entry *c;
        if (cs == NULL)
            return -1;
        cooldown_key(a, key, sizeof(key));
        c = rk_map_get(&cs->map, key);
        if (c != NULL && a->ts < c->until) {
            e->stats.held_back++;
            return 0;
        }
        if (cooldown_set(cs, key, a->ts + a->cooldown) != 0)
            return -1;
    }
    rk__alert_id(d->alert_name, a, d->ops->abi_minor >= 1 ? a->trigger_key : NULL, id);
    if (e->legacy_ids)
        rk__alert_id_v1(d->alert_name, a, legacy);
    now_wall = rk__wall_ms();
    if (e->replay)
        return replay_emit(e, id, d->alert_name, a, sev, now_wall);
    silenced = rk__silences_match(e->silences, d->alert_name, a, now_wall);
    if (silenced)
        e->silenced++;
    json = rk__alert_json(id, d->alert_name, a, sev, e->stream_keys, e->cfg->tz_offset_s,
                          now_wall, silenced);
    if (json != NULL && e->filreg != NULL && a->subject.task_id != NULL &&
        rk__register_checks(a->rule)) {
        /* Filed in another partition? The publish script asks the register. */
        char rkeys[RK_REG_MAX_PERIODS + 1][320], spec[160];
        size_t nk;
        rk__register_check(e->cfg, a->subject.task_id, a->ts, rkeys, &nk, spec, sizeof(spec));
        if (rk__outbox_alert_checked(e->ob, id, e->legacy_ids ? legacy : NULL, d->alert_name,
                                     json, !silenced, rkeys, nk, spec) != 0) {
            free(json);
            rk__log(RK_LOG_ERR, "out of memory queueing an alert of %s", d->alert_name);
            return -1;
        }
    } else if (json == NULL || rk__outbox_alert(e->ob, id, e->legacy_ids ? legacy : NULL,
                                                d->alert_name, json, !silenced) != 0) {
        free(json);
        rk__log(RK_LOG_ERR, "out of memory queueing an alert of %s", d->alert_name);
        return -1;
    }
    free(json);
    e->stats.alerts_emitted++;
    count_alert(e, d->alert_name, a->rule, sev);
    rk__log(RK_LOG_DEBUG, "alert %s %s/%s", id, d->alert_name, a->rule);
    return 1;
}

static int host_timer_set(rk_host *h, int64_t deadline, const char *key, uint64_t arg)
{
    rk_engine *e = HOST(h)->eng;
    return rk__clock_timer_add(&e->clock, deadline, HOST(h)->idx, key, arg);
}

static int64_t host_now(rk_host *h)
{
    return rk__clock_now(&HOST(h)->eng->clock);
}

static void host_log(rk_host *h, rk_log_level level, const char *fmt, ...)
{
    rk_engine *e = HOST(h)->eng;
    char prefix[96];
    va_list ap;
    snprintf(prefix, sizeof(prefix), "detector %s: ", e->reg.dets[HOST(h)->idx]->name);
    va_start(ap, fmt);
    rk__vlog(level, prefix, fmt, ap);
    va_end(ap);
}

static const char *host_stream_name(rk_host *h, unsigned s)
{
    rk_engine *e = HOST(h)->eng;
    return s < RK_STREAM_COUNT ? e->stream_keys[s] : "";
}

static void free_cooldowns(rk__det *d)
{
    cooldowns *cs = d->cooldown;
    if (cs) {
        rk_map_clear(&cs->map, free);
        rk_heap_free(&cs->heap);
        free(cs);
        d->cooldown = NULL;
    }
}

static void on_det_removed(rk_engine *e, uint32_t idx)
{
    free_cooldowns(e->reg.dets[idx]);
}

/* ===================================================================
 * Event time
 * =================================================================== */

static void fire_timers(rk_engine *e)
{
    rk__timer t;
    while (rk__clock_pop_due(&e->clock, &t)) {
        rk__det *d = t.det < e->reg.n ? e->reg.dets[t.det] : NULL;
        if (d != NULL && d->self != NULL && d->ops->on_timer != NULL &&
            d->ops->on_timer(d->self, t.deadline, t.key, t.arg) < 0) {
            e->stats.detector_errors++;
            rk__inlog_bad(&e->inlog, RK_INLOG_TIMER, rk__wall_ms(),
                          "detector %s failed on timer %s", d->name, t.key);
        }
        free(t.key);
    }
}

static void update_watermark(rk_engine *e)
{
    bool unread[RK_STREAM_COUNT];
    unsigned s;
    for (s = 0; s < RK_STREAM_COUNT; s++)
        unread[s] = stream_unread(&e->st[s]);
    if (rk__clock_advance(&e->clock, rk__clock_candidate(&e->clock, unread)))
        fire_timers(e);
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
static void housekeep_state(rk_engine *e, bool force)
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
            cooldown_expire(d->cooldown, now);
    }
    rk__tasks_expire(&e->tasks, now);
    rk__dedupe_expire(&e->dedupe, now);
}

/* ===================================================================
 * Applying entries
 * =================================================================== */

/* Record entry id "<ms>-<seq>" for the next acknowledgement. -1 when out
 * of memory or the id is not a stream entry id (Redis gives no other). */
static int ack_push(stream_state *s, const char *id)
{
    char *end;
    ack_id a;

    if (!(id[0] >= '0' && id[0] <= '9'))
        return -1;
    errno = 0;
    a.ms = strtoull(id, &end, 10);
    if (*end != '-' || !(end[1] >= '0' && end[1] <= '9'))
        return -1;
    a.seq = strtoull(end + 1, &end, 10);
    if (*end != '\0' || errno != 0)
        return -1;
    if (s->nacks == s->acks_cap) {
        size_t ncap = s->acks_cap ? s->acks_cap * 2 : 256;
        ack_id *na = realloc(s->acks, ncap * sizeof(*na));
        if (na == NULL)
            return -1;
        s->acks = na;
        s->acks_cap = ncap;
    }
    s->acks[s->nacks++] = a;
    return 0;
}

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
static rk__det *route(rk_engine *e, rk__det *d, const rk_event *ev)
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
static int64_t head_key(rk_engine *e, unsigned si)
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
static bool repeated(rk_engine *e, unsigned si, entry *en, rk_event *ev)
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
            e->stats.invalid[si]++;
            e->stats.conflicts[ev->type]++;
            rk__inlog_bad(&e->inlog, RK_INLOG_INVALID, rk__wall_ms(), "%s/%s: %s",
                          e->st[si].key, en->id, why);
            if (!e->replay)
                rk__outbox_dead(dead_ob(e), e->st[si].key, en->id, why,
                                en->data ? en->data : "", en->data ? en->len : 0);
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

static void apply_head(rk_engine *e, unsigned si)
{
    stream_state *s = &e->st[si];
    entry *en = &s->buf[s->pos];
    int rc = s->head_state - 10;
    rk_event *ev = &s->head;
    size_t i;

    e->dirty = true;
    if (ack_push(s, en->id) != 0)
        rk__log(RK_LOG_ERR, "out of memory recording an ack; %s/%s stays pending",
                s->key, en->id);
    if (en->data == NULL && !en->missing_data) {
        /* A pending entry whose payload was trimmed away. */
        e->stats.trimmed[si]++;
        rk__inlog_bad(&e->inlog, RK_INLOG_TRIMMED, rk__wall_ms(), "%s/%s", s->key, en->id);
        goto done;
    }
    if (s->has_applied && ref_le(en->ref, s->applied)) {
        e->stats.replayed[si]++;
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
            rk__outbox_dead(dead_ob(e), s->key, en->id, why,
                            en->data ? en->data : "", en->data ? en->len : 0);
            goto done;
        }
        /* Apply it alone and checkpoint at once, so a crash on it is told
         * apart from a restart that merely happened before a checkpoint. */
        e->careful_pause = true;
    }
    if (rc == RK_PARSE_INVALID) {
        e->stats.invalid[si]++;
        rk__inlog_bad(&e->inlog, RK_INLOG_INVALID, rk__wall_ms(), "%s/%s: %s", s->key,
                      en->id, s->head_err);
        if (!e->replay && rk__outbox_dead(dead_ob(e), s->key, en->id, s->head_err,
                            en->data ? en->data : "", en->data ? en->len : 0) != 0)
            rk__log(RK_LOG_ERR, "out of memory dead-lettering %s/%s", s->key, en->id);
        goto done;
    }
    if (rc == RK_PARSE_UNKNOWN) {
        e->stats.unknown[si]++;
        rk__inlog_unknown(&e->inlog, si, s->key, en->id, ev->type_name, rk__wall_ms());
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
        rk__inlog_late(&e->inlog, si, s->key, en->id, e->clock.watermark - ev->ts,
                       rk__wall_ms());
    rk__clock_observe(&e->clock, si, ev->ts);
    s->pos++;                       /* so "unread" excludes this entry */
    update_watermark(e);
    s->pos--;
    e->stats.events[si][ev->type]++;
    if (ev->type != RK_EV_CLOCK_TICK) {
        for (i = 0; i < e->reg.n; i++) {
            rk__det *d = e->reg.dets[i];
            if (d->match != NULL)
                continue;           /* overrides get events through route() */
            d = route(e, d, ev);
            if (d->self == NULL)
                continue;
            if ((ev->flags & RK_EVF_AMENDED) && d->ops->abi_minor < 1)
                continue;           /* built before amendments: keeps the first */
            if (d->ops->on_event(d->self, ev) < 0) {
                char why[160];
                e->stats.detector_errors++;
                snprintf(why, sizeof(why), "detector %s failed on this entry", d->name);
                rk__inlog_bad(&e->inlog, RK_INLOG_DETECTOR, rk__wall_ms(), "%s/%s: %s",
                              s->key, en->id, why);
                if (!e->replay)
                    rk__outbox_dead(dead_ob(e), s->key, en->id, why, en->data, en->len);
            }
        }
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
static void tick_advance(rk_engine *e, int64_t ts)
{
    e->dirty = true;
    if (rk__clock_advance(&e->clock, ts))
        fire_timers(e);
}

/* Apply buffered entries in ts order until a stream that has more in Redis
 * runs dry (it must be read first - or its read ahead must arrive) or
 * everything is applied. A recorded tick still to apply is a gate: the
 * entries at or before its positions go first, the later ones wait, and
 * once every stream is at its position the tick applies. */
static void apply_buffered(rk_engine *e)
{
    for (;;) {
        const rk__tick *tk = rk__ticks_head(&e->ticks);
        int best = -1;
        int64_t best_key = 0;
        unsigned si;
        for (si = 0; si < RK_STREAM_COUNT; si++) {
            stream_state *s = &e->st[si];
            if (s->pos >= s->n && s->nn > 0)
                take_next(s);
            if (s->pos < s->n) {
                int64_t k;
                if (tk != NULL && !ref_le(s->buf[s->pos].ref, tk->pos[si]))
                    continue;       /* after the tick */
                k = head_key(e, si);
                if (best < 0 || k < best_key) {
                    best = (int)si;
                    best_key = k;
                }
            } else if (stream_unread(s)) {
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
static bool merge_ready(const rk_engine *e)
{
    bool any = false;
    unsigned si;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        if (stream_buffered(&e->st[si]))
            any = true;
        else if (stream_unread(&e->st[si]))
            return false;
    }
    return any;
}

/* ===================================================================
 * Reading
 * =================================================================== */

static void round_done(rk_engine *e)
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
    housekeep_state(e, false);
    ob_kick(e);
    /* The next read does not wait for this round's alerts: entries are
     * acknowledged only after a checkpoint, which waits for an empty
     * outbox. Waiting here only when the outbox is large, a checkpoint is
     * due, a suspect entry needs its own checkpoint, or we are stopping. */
    if (ob_pending(e) > 0 &&
        (ob_pending(e) >= OUTBOX_HIGH || checkpoint_due(e) ||
         e->careful_pause || e->stopping)) {
        e->state = E_FLUSHING;
    } else {
        round_finished(e);
    }
}

/* The round is done (and, if we waited, its alerts written): read on, or
 * write the checkpoint that is due (stop, careful entry, interval). */
static void round_finished(rk_engine *e)
{
    e->state = E_IDLE;
    if (e->stopping || e->careful_pause) {
        checkpoint(e);              /* careful: on_ack reads on */
        return;
    }
    if (checkpoint_due(e))
        checkpoint(e);              /* written in the background */
    schedule_read(e);
}

/* Take a batch of stream si in: copy the entries of `list` (an XREADGROUP
 * reply's entry list) into the stream's next batch, which becomes the
 * buffer at once when the buffer is used up. Out of memory: the batch is
 * dropped with a log line (the entries stay pending). */
static void copy_entries(rk_engine *e, unsigned si, const redisReply *list)
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
            parse_entry_id(item->element[0]->str, item->element[0]->len, &en->ref) != 0)
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
        if (s->phase == PH_PENDING && s->bounded && !ref_le(en->ref, s->bound)) {
            s->bound_hit = true;    /* past the state: '>' delivers it again */
            break;
        }
        if (e->replay && e->replay_has_to &&
            (en->ref.ms > e->replay_to.ms ||
             (en->ref.ms == e->replay_to.ms && en->ref.seq > e->replay_to.seq))) {
            s->replay_end = true;   /* past --to: the stream is done */
            break;
        }
        if (s->phase == PH_PENDING || e->replay)
            snprintf(s->cursor, sizeof(s->cursor), "%s", en->id);
        s->nn++;
    }
    if (s->pos >= s->n && s->nn > 0)
        take_next(s);
}

static void setup_groups(rk_engine *e);
static void claims_begin(rk_engine *e, bool scan_poison);
static bool send_read(rk_engine *e, bool ahead);
static void ticks_load(rk_engine *e);

/* Apply what the merge allows, then finish the round. The next read goes
 * out first (send_read ahead) and is written at once (rk__redis_flush:
 * hiredis would write it only when the loop next polls, after the round),
 * so that Redis works on it meanwhile. started: uv_hrtime() when the round
 * began (for riskd_batch_seconds). */
static void run_round(rk_engine *e, uint64_t started)
{
    e->round_hr = started;
    if (send_read(e, true))
        rk__redis_flush(e->rd);
    if (e->lost)
        return;
    apply_buffered(e);
    update_watermark(e);
    /* Timers armed during the round with a deadline the watermark has
     * already passed (a late scan, say) fire now, not at the next move. */
    fire_timers(e);
    round_done(e);
}

static void on_read(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
    size_t count[RK_STREAM_COUNT] = {0};
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
    if (!lease_valid(e))
        return;                     /* read but not applied: the new holder claims it */
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            if (!waiting)
                return;             /* the next read meets it and sets up the group */
            rk__log(RK_LOG_WARNING, "consumer group %s is gone; creating it again",
                    e->cfg->group);
            setup_groups(e);
            return;
        }
        rk__log(RK_LOG_ERR, "XREADGROUP failed: %s", reply->str);
        e->read_retry_at = (int64_t)uv_now(e->loop) + READ_RETRY_MS;
        return;
    }
    started = uv_hrtime();
    /* A stream absent from the reply returned nothing. */
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++) {
            const redisReply *sr = reply->element[i];
            if (sr->type != REDIS_REPLY_ARRAY || sr->elements < 2 ||
                sr->element[0]->type != REDIS_REPLY_STRING ||
                sr->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (si = 0; si < RK_STREAM_COUNT; si++)
                if (e->requested[si] && strlen(e->st[si].key) == sr->element[0]->len &&
                    memcmp(e->st[si].key, sr->element[0]->str, sr->element[0]->len) == 0)
                    break;
            if (si == RK_STREAM_COUNT)
                continue;
            count[si] = sr->element[1]->elements;
            copy_entries(e, si, sr->element[1]);
        }
    }
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        stream_state *s = &e->st[si];
        if (!e->requested[si])
            continue;
        if (s->phase == PH_PENDING) {
            if (count[si] == 0 || s->bound_hit) {   /* our pending list is drained */
                s->phase = PH_NEW;
                s->caught_up = false;
                s->bounded = s->bound_hit = false;
            }
        } else {
            s->caught_up = count[si] < (size_t)e->cfg->batch || s->replay_end;
        }
        if (count[si] > 0)
            e->last_input_wall = (int64_t)uv_now(e->loop);
    }
    if (waiting && !e->tick_hold)
        run_round(e, started);      /* held: applied once the tick is */
}

/* Replay: both streams are read to the end. Timers still armed stay
 * unfired (event time ends at the last event). */
static void replay_finish(rk_engine *e)
{
    if (e->replay_done)
        return;
    e->replay_done = true;
    e->state = E_STOPPED;
    uv_timer_stop(&e->housekeeping);
    if (e->ro.done)
        e->ro.done(e->ro.ud);
}

/* May a stream with entries still buffered be read ahead? Not while the
 * takeover claims are due (they run once nothing is buffered) nor while
 * the outbox is over its mark (reading pauses for it). */
static bool read_ahead_allowed(const rk_engine *e)
{
    return (e->replay || (int64_t)uv_now(e->loop) < e->next_claim) &&
           ob_pending(e) < OUTBOX_HIGH;
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
static bool send_read(rk_engine *e, bool ahead)
{
    const char *argv[16];
    char count[16];
    int argc = 0, nstreams = 0;
    unsigned si, k, want[RK_STREAM_COUNT];
    bool block = true, any_buffered = false, more = false;
    bool may_ahead = read_ahead_allowed(e);

    if (e->read_inflight || e->stopping || e->lost || e->careful_pause ||
        !rk__redis_ready(e->rd) || (int64_t)uv_now(e->loop) < e->read_retry_at)
        return false;
    if (ahead && !may_ahead)
        return false;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        stream_state *s = &e->st[si];
        if (stream_buffered(s))
            any_buffered = true;
        if (s->nn > 0 || (s->pos < s->n && !may_ahead))
            continue;
        if (e->replay && s->caught_up)
            continue;               /* at its end (or past --to) */
        want[nstreams++] = si;
        if (s->phase == PH_PENDING || !s->caught_up)
            more = true;
    }
    if (any_buffered)
        block = false;
    for (k = 0; k < (unsigned)nstreams; k++)
        if (e->st[want[k]].phase == PH_PENDING || !e->st[want[k]].caught_up)
            block = false;
    if (nstreams == 0 || (ahead && !more) || !lease_valid(e))
        return false;
    snprintf(count, sizeof(count), "%d", e->cfg->batch);
    if (e->replay) {
        argv[argc++] = "XREAD";
        block = false;
    } else {
        argv[argc++] = "XREADGROUP";
        argv[argc++] = "GROUP";
        argv[argc++] = e->cfg->group;
        argv[argc++] = e->cfg->consumer;
    }
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    if (block) {
        argv[argc++] = "BLOCK";
        argv[argc++] = "1000";
    }
    argv[argc++] = "STREAMS";
    for (k = 0; k < (unsigned)nstreams; k++)
        argv[argc++] = e->st[want[k]].key;
    for (k = 0; k < (unsigned)nstreams; k++) {
        stream_state *s = &e->st[want[k]];
        argv[argc++] = s->phase == PH_PENDING || e->replay ? s->cursor : ">";
    }
    if (rk__redis_cmd(e->rd, on_read, e, block ? BLOCK_MS : 0, argc, argv, NULL) != 0)
        return false;
    for (si = 0; si < RK_STREAM_COUNT; si++)
        e->requested[si] = false;
    for (k = 0; k < (unsigned)nstreams; k++)
        e->requested[want[k]] = true;
    e->read_inflight = true;
    return true;
}

/* The engine is idle: apply what was read ahead if the merge can go on,
 * else wait for the read in flight, run the takeover claims when due, or
 * send the next read (E_READING until its reply); a replay that has read
 * and applied everything finishes. */
static void schedule_read(rk_engine *e)
{
    unsigned si;
    bool any_buffered = false;

    if (e->stopping || e->state != E_IDLE || e->careful_pause || e->lost || e->tick_hold)
        return;
    if (merge_ready(e)) {
        if (lease_valid(e))
            run_round(e, uv_hrtime());
        return;
    }
    if (e->read_inflight) {
        e->state = E_READING;
        return;
    }
    if (!rk__redis_ready(e->rd) || (int64_t)uv_now(e->loop) < e->read_retry_at ||
        !lease_valid(e))
        return;
    for (si = 0; si < RK_STREAM_COUNT; si++)
        if (stream_buffered(&e->st[si]))
            any_buffered = true;
    if (!e->replay && (int64_t)uv_now(e->loop) >= e->next_claim && !any_buffered) {
        claims_begin(e, false);
        return;
    }
    if (send_read(e, false)) {
        e->state = E_READING;
        return;
    }
    if (e->replay && !any_buffered) {
        for (si = 0; si < RK_STREAM_COUNT; si++)
            if (!e->st[si].caught_up)
                return;             /* the read could not be sent: retried */
        replay_finish(e);
    }
}

/* ===================================================================
 * Checkpoints and acknowledgement
 * =================================================================== */

static const char *det_name_cb(uint32_t idx, void *ud)
{
    rk_engine *e = ud;
    return idx < e->reg.n ? e->reg.dets[idx]->name : "";
}

static int det_index_cb(const char *name, void *ud)
{
    rk_engine *e = ud;
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
static int build_state(rk_engine *e, rk_buf *out)
{
    unsigned si;
    size_t i, n = 0, at;

    rk_buf_put_u32(out, STATE_MAGIC);
    rk_buf_put_u32(out, STATE_VERSION);
    rk_buf_put_u32(out, RK_STREAM_COUNT);
    for (si = 0; si < RK_STREAM_COUNT; si++) {
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
static int restore_state(rk_engine *e, const void *data, size_t len, char *err, size_t errlen)
{
    rk_rd rd;
    uint32_t ns, nd, i, version;
    const unsigned char *blob;
    size_t blen;
    unsigned si;

    rk_rd_init(&rd, data, len);
    if (rk_rd_u32(&rd) != STATE_MAGIC || rd.err) {
        rk_kit_errf(err, errlen, "not a riskd checkpoint");
        return -1;
    }
    version = rk_rd_u32(&rd);
    if (version != STATE_VERSION && version != STATE_VERSION_V1) {
        rk_kit_errf(err, errlen, "checkpoint format version not supported");
        return -1;
    }
    ns = rk_rd_u32(&rd);
    for (i = 0; i < ns && !rd.err && i < 16; i++) {
        char *key = rk_rd_str(&rd, 4096);
        uint32_t has = rk_rd_u32(&rd);
        rk_entry_ref ref = rk_rd_ref(&rd);
        for (si = 0; key && !rd.err && si < RK_STREAM_COUNT; si++) {
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
            int64_t until = rk_rd_i64(&rd);
            cooldowns *cs = d && d->self ? det_cooldowns(d) : NULL;
            if (ck && !rd.err && cs)
                (void)cooldown_set(cs, ck, until);  /* out of memory: no cooldown */
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
    return 0;
}

/* The suspect entry is applied and checkpointed: forget it and read on. */
static void careful_resume(rk_engine *e)
{
    const char *argv[3] = {"DEL", e->suspect_key, NULL};
    e->careful_pause = false;
    rk__redis_cmd(e->wr, NULL, NULL, 0, 2, argv, NULL);
    if (e->state == E_IDLE) {
        apply_buffered(e);          /* the rest of the round, if any */
        update_watermark(e);
        fire_timers(e);
        if (e->careful_pause || ob_pending(e) > 0) {
            round_done(e);
            return;
        }
        schedule_read(e);
    }
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

static bool is_fenced_reply(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR &&
           strncmp(reply->str, "FENCED", 6) == 0;
}

static bool ack_send_next(rk_engine *e);

static void on_ack(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
    unsigned si;
    bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    (void)r;
    e->acks_inflight--;
    if (e->lost)
        return;
    if (is_fenced_reply(reply)) {
        engine_lost(e, reply->str);
        return;
    }
    if (!ok) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "XACK failed: %s", reply->str);
        e->dirty = true;            /* ack again after the next checkpoint */
        for (si = 0; si < RK_STREAM_COUNT; si++)
            e->st[si].covered = 0;
    }
    if (e->acks_inflight > 0 || ack_send_next(e))
        return;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        stream_state *s = &e->st[si];
        if (s->covered > 0) {
            ack_drop(s, s->covered);
            s->covered = 0;
        }
        s->acks_sent = 0;
    }
    if (e->stopping && e->state == E_IDLE)
        finish_stop(e);
    else if (e->careful_pause && e->state == E_IDLE)
        careful_resume(e);
}

/* Send the next XACK of at most ACK_CHUNK ids that the written checkpoint
 * covers. One at a time: Redis runs a client's pipelined commands in one
 * go, so tens of thousands of ids sent at once (a 5 s checkpoint at 5k
 * ev/s) would hold the reader's XREADGROUP behind them for milliseconds.
 * Returns true when a command was sent; false when nothing is left (or the
 * writer refused it: the rest waits for the next checkpoint). */
static bool ack_send_next(rk_engine *e)
{
    unsigned si;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
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
static void ack_covered(rk_engine *e)
{
    unsigned si;
    for (si = 0; si < RK_STREAM_COUNT; si++)
        e->st[si].acks_sent = 0;
    if (ack_send_next(e))
        return;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        stream_state *s = &e->st[si];
        if (s->covered > 0) {   /* nothing could be sent */
            s->covered = 0;
        }
    }
    if (e->stopping && e->state == E_IDLE)
        finish_stop(e);
    else if (e->careful_pause && e->state == E_IDLE)
        careful_resume(e);
}

typedef struct ckpt_req {
    rk_engine *e;
    rk_buf blob;
} ckpt_req;

static void on_ckpt_written(rk_redis *r, redisReply *reply, void *pd)
{
    ckpt_req *req = pd;
    rk_engine *e = req->e;
    unsigned si;
    (void)r;
    rk_buf_free(&req->blob);
    free(req);
    e->ckpt_inflight = false;
    if (e->lost)
        return;
    if (is_fenced_reply(reply)) {
        engine_lost(e, reply->str);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "writing the checkpoint to %s failed: %s",
                    e->cfg->state_key, reply->str);
        e->dirty = true;
        for (si = 0; si < RK_STREAM_COUNT; si++)
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
static int child_checkpoint(rk_engine *e)
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

static void ckpt_poll_closed(uv_handle_t *h)
{
    rk_engine *e = h->data;
    if (--e->handles_closing == 0 && e->freeing)
        free(e);
}

static void on_ckpt_child(uv_poll_t *h, int status, int events)
{
    rk_engine *e = h->data;
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
    uv_close((uv_handle_t *)&e->ckpt_poll, ckpt_poll_closed);
    e->ckpt_poll_open = false;
    close(e->ckpt_fd);
    e->ckpt_fd = -1;
    while (waitpid(e->ckpt_pid, &st, 0) < 0 && errno == EINTR)
        ;
    e->ckpt_pid = 0;
    e->ckpt_inflight = false;
    if (res == 'f' && e->leased) {
        engine_lost(e, "the checkpoint was fenced: another riskd holds the epoch");
        return;
    }
    if (res != 'y') {
        rk__log(RK_LOG_ERR, "writing the checkpoint to %s failed (in the checkpoint process)",
                e->cfg->state_key);
        e->dirty = true;
        for (si = 0; si < RK_STREAM_COUNT; si++)
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
static int checkpoint_fork(rk_engine *e)
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
static bool checkpoint_due(const rk_engine *e)
{
    int64_t interval = e->cfg->state_interval;
    if (interval < 10 * e->ckpt_cost_ms)
        interval = 10 * e->ckpt_cost_ms;
    return e->dirty && !e->ckpt_inflight &&
           (int64_t)uv_now(e->loop) - e->last_ckpt >= interval;
}

/* Write a checkpoint if one can be written now: the writer is up, no
 * checkpoint or ack is in flight and every alert so far is written. */
static void checkpoint(rk_engine *e)
{
    ckpt_req *req;
    const char *argv[7];
    size_t lens[7];
    int argc;
    unsigned si;

    if (e->ckpt_inflight || e->acks_inflight > 0 || !e->restored ||
        !rk__redis_ready(e->wr) || ob_pending(e) > 0 ||
        e->state == E_FLUSHING || !lease_valid(e))
        return;
    e->last_ckpt = (int64_t)uv_now(e->loop);
    e->ckpt_started_hr = uv_hrtime();
    housekeep_state(e, true);       /* do not save what has expired */
    if (e->legacy_ids) {
        /* Once every entry the previous release may have applied (up to
         * its group's last-delivered id at our start) is applied again,
         * nothing can be written under its ids any more. */
        bool behind = false;
        for (si = 0; si < RK_STREAM_COUNT; si++) {
            const stream_state *ss = &e->st[si];
            behind = behind || ss->phase == PH_PENDING ||
                     (ss->has_legacy_until &&
                      !(ss->has_applied && ref_le(ss->legacy_until, ss->applied)));
        }
        if (!behind)
            e->legacy_ids = false;
    }
    if (checkpoint_fork(e) == 0) {
        for (si = 0; si < RK_STREAM_COUNT; si++)
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
    for (si = 0; si < RK_STREAM_COUNT; si++)
        e->st[si].covered = e->st[si].nacks;
    e->ckpt_inflight = true;
    e->dirty = false;
}

static void on_drained(void *ud)
{
    rk_engine *e = ud;
    if (e->state == E_FLUSHING && ob_pending(e) == 0)
        round_finished(e);
}

/* ===================================================================
 * Connections and group set-up
 * =================================================================== */

static void groups_ready(rk_engine *e);

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

static void gap_step_done(rk_engine *e)
{
    if (--e->gap_left > 0)
        return;
    e->gap_checked = true;
    groups_ready(e);
}

static void on_gap_setid(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = ((struct rk_host *)pd)->eng;
    stream_state *s = &e->st[((struct rk_host *)pd)->idx];
    (void)r;
    free(pd);
    if (reply == NULL || e->state != E_SETUP || e->lost)
        return;                     /* the reconnect checks again */
    if (is_fenced_reply(reply)) {
        engine_lost(e, reply->str);
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
static void on_gap_info(rk_redis *r, redisReply *reply, void *pd)
{
    struct rk_host *h = pd;
    rk_engine *e = h->eng;
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
        if (ours && ld != NULL && parse_entry_id(ld->str, ld->len, &last) == 0)
            found = true;
    }
    if (found && e->legacy_ids) {
        s->legacy_until = last;
        s->has_legacy_until = true;
    }
    from_start = strcmp(e->cfg->start, "0") == 0 || strcmp(e->cfg->start, "0-0") == 0;
    if (s->has_applied)
        pos = s->applied;
    if (!found || (!s->has_applied && !from_start) || ref_le(last, pos)) {
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

static void gap_check(rk_engine *e)
{
    unsigned si;
    e->gap_left = RK_STREAM_COUNT;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
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

static void on_group_created(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
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
    for (si = 0; si < RK_STREAM_COUNT; si++) {
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
static void groups_ready(rk_engine *e)
{
    rk__log(RK_LOG_INFO, "consuming %s and %s as %s/%s", e->st[0].key, e->st[1].key,
            e->cfg->group, e->cfg->consumer);
    if (!e->ever_ready) {
        e->ever_ready = true;
        if (e->ready_cb)
            e->ready_cb(e->ready_ud);
        claims_begin(e, true);      /* the poison scan: once per process */
    } else {
        claims_begin(e, false);
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

static void claims_step(rk_engine *e);

static void claims_done(rk_engine *e)
{
    unsigned si;
    e->claim_all = false;
    e->next_claim = (int64_t)uv_now(e->loop) + e->cfg->claim_idle;
    if (e->claimed_any) {
        for (si = 0; si < RK_STREAM_COUNT; si++) {
            if (stream_buffered(&e->st[si]))
                continue;
            e->st[si].phase = PH_PENDING;
            snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0");
        }
    }
    e->state = E_IDLE;
    schedule_read(e);
}

static void on_claim_reply(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
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
            setup_groups(e);
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
                parse_entry_id(it->element[0]->str, it->element[0]->len, &s->suspect) == 0) {
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

static void claims_step(rk_engine *e)
{
    char idle[24];
    stream_state *s;
    int rc;

    if (e->claim_si >= RK_STREAM_COUNT) {
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

static void claims_begin(rk_engine *e, bool scan_poison)
{
    e->state = E_CLAIMING;
    e->claim_si = 0;
    e->claim_step = 0;
    e->claim_scan_poison = scan_poison;
    e->claimed_any = false;
    snprintf(e->claim_cursor, sizeof(e->claim_cursor), "0-0");
    claims_step(e);
}

static void setup_groups(rk_engine *e)
{
    unsigned si;
    e->state = E_SETUP;
    e->setup_left = 0;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        const char *argv[6] = {"XGROUP", "CREATE", e->st[si].key, e->cfg->group,
                               e->cfg->start, "MKSTREAM"};
        clear_buffer(&e->st[si]);
        if (rk__redis_cmd(e->rd, on_group_created, e, 0, 6, argv, NULL) == 0)
            e->setup_left++;
    }
    if (e->setup_left != RK_STREAM_COUNT) {
        e->state = E_CONNECTING;
        rk__redis_drop(e->rd, "cannot send XGROUP CREATE");
    }
}

/* INCR <state.key>:epoch: this process's checkpoint epoch. Without one
 * (an error, say a missing ACL right), checkpoints are written inline. */
static void on_epoch(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
    (void)r;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        e->epoch = reply->integer;
    else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        rk__log(RK_LOG_WARNING, "INCR %s failed (%s): checkpoints are written inline",
                e->epoch_key, reply->str);
}

static void on_state_loaded(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
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
        if (restore_state(e, reply->str, reply->len, err, sizeof(err)) != 0) {
            rk__log(RK_LOG_ERR, "checkpoint %s is unusable (%s): starting from empty "
                    "state", e->cfg->state_key, err);
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
    ticks_load(e);                  /* then setup_groups */
}

/* Connected: read the checkpoint once, then (re)create the groups. */
static void start_consuming(rk_engine *e)
{
    const char *argv[2];
    unsigned si;
    if (e->replay) {
        if (e->ever_ready)
            return;                 /* a replay does not survive a lost Redis */
        e->ever_ready = true;
        for (si = 0; si < RK_STREAM_COUNT; si++) {
            e->st[si].phase = PH_NEW;
            e->st[si].caught_up = false;
        }
        ticks_load(e);              /* then the first read */
        return;
    }
    if (e->restored) {
        if (e->ticks_loaded)
            setup_groups(e);
        else
            ticks_load(e);
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
static bool master_moved(rk_engine *e, rk_redis *r)
{
    const char *host;
    int port;
    char why[200];
    if (!e->leased || e->replay || e->cfg->n_sentinels == 0 || e->cfg->n_cluster > 0)
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
    engine_lost(e, why);
    return true;
}

static void on_rd_state(rk_redis *r, int up, void *ud)
{
    rk_engine *e = ud;
    unsigned si;
    (void)r;
    if (e->stopping)
        return;
    if (e->replay && !up && e->ever_ready && !e->replay_done) {
        rk__log(RK_LOG_ERR, "replay: lost the connection to Redis; the replay is incomplete");
        replay_finish(e);
        return;
    }
    if (up) {
        if (e->lost || master_moved(e, r))
            return;
        if (e->state == E_CONNECTING || e->state == E_IDLE || e->state == E_READING)
            start_consuming(e);
        return;
    }
    /* Entries buffered (or read ahead) but not applied are still in our
     * pending list: forget them, and whatever state the round is in, read
     * the pending list again from "0" before anything new (those at or
     * before the applied position are acknowledged without being applied).
     * A read in flight got its NULL reply already (hiredis answers every
     * callback before it reports the disconnect). */
    e->read_inflight = false;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        clear_buffer(&e->st[si]);
        e->st[si].phase = PH_PENDING;
        snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0");
        e->st[si].caught_up = false;
    }
    if (e->state == E_READING || e->state == E_SETUP || e->state == E_IDLE ||
        e->state == E_LOADING || e->state == E_CLAIMING)
        e->state = E_CONNECTING;
}

static void on_wr_state(rk_redis *r, int up, void *ud)
{
    rk_engine *e = ud;
    rk_outbox *o = r == e->wr_dead ? e->ob_dead : r == e->wr && e->wr_out != NULL ? NULL : e->ob;
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
static void tick_recorded(rk_engine *e)
{
    e->tick_hold = false;
    e->tick_warned = false;
    e->last_tick = (int64_t)uv_now(e->loop);
    if (e->stopping || e->lost)
        return;                     /* not applied: a restart reads it back */
    if (rk__clock_advance(&e->clock, e->tick.ts)) {
        e->dirty = true;
        fire_timers(e);
        housekeep_state(e, false);
        ob_kick(e);
    }
    if (e->state == E_IDLE)
        schedule_read(e);
}

static void on_tick_wait(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
    bool written = e->tick_written;
    (void)r;
    e->tick_inflight--;
    e->tick_written = false;
    if (written && e->tick_hold && reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer >= e->cfg->redis_wait_replicas)
        tick_recorded(e);
    /* otherwise sent again by the housekeeping timer */
}

static void on_tick_written(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
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
    if (is_fenced_reply(reply)) {
        engine_lost(e, reply->str);
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
        schedule_read(e);
}

/* Send the tick's write (and WAIT with redis.wait_replicas). */
static void tick_send(rk_engine *e)
{
    char buf[RK_STREAM_COUNT + 1][48], epoch[24] = "", maxlen[24];
    const char *argv[7 + RK_TICK_ARGS];
    int argc = 0;

    if (e->tick_inflight > 0 || !rk__redis_ready(e->wr) || !lease_valid(e))
        return;
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
    argc += RK_TICK_ARGS;
    if (rk__redis_cmd(e->wr, on_tick_written, e, 0, argc, argv, NULL) != 0)
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

/* Idle (housekeeping timer): decide a tick when one is due. */
static void wall_tick(rk_engine *e, int64_t now)
{
    int64_t wall = rk__wall_ms(), gap;
    unsigned si;

    if (e->tick_hold || e->tick_inflight > 0 || !e->ticks_loaded || e->careful_pause ||
        rk__ticks_head(&e->ticks) != NULL || wall <= e->clock.watermark)
        return;
    gap = e->cfg->clock_idle / TICK_IDLE_SHARE > TICK_MIN_MS
              ? e->cfg->clock_idle / TICK_IDLE_SHARE : TICK_MIN_MS;
    if (e->last_tick != 0 && now - e->last_tick < e->cfg->clock_idle &&
        (now - e->last_tick < gap || !rk__clock_due_at(&e->clock, wall)))
        return;
    e->tick.ts = wall;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        memset(&e->tick.pos[si], 0, sizeof(e->tick.pos[si]));
        if (e->st[si].has_applied)
            e->tick.pos[si] = e->st[si].applied;
        e->tick.pos[si].stream = si;
    }
    e->tick_hold = true;
    tick_send(e);
}

/* Is a replay's tick inside --from/--to? Past --to when a position is
 * after it; before --from when every position is before it. */
static bool tick_in_range(const rk_engine *e, const rk__tick *k)
{
    bool from = e->replay_from.ms == 0 && e->replay_from.seq == 0;
    unsigned si;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        if (e->replay_has_to && !ref_le(k->pos[si], e->replay_to))
            return false;
        if (ref_le(e->replay_from, k->pos[si]))
            from = true;
    }
    return from;
}

static void ticks_loaded(rk_engine *e)
{
    e->ticks_loaded = true;
    if (rk__ticks_count(&e->ticks) > 0)
        rk__log(RK_LOG_INFO, "%zu wall-clock tick(s) from %s to apply at their positions",
                rk__ticks_count(&e->ticks), e->clock_key);
    if (e->replay) {
        e->state = E_IDLE;
        schedule_read(e);
    } else {
        setup_groups(e);
    }
}

/* Replay: XRANGE pages, oldest first. Live: one XREVRANGE page, newest
 * first, down to the checkpoint's watermark. */
static void on_ticks(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
    rk__tick k;
    size_t i, n = 0;

    (void)r;
    if (e->state != E_LOADING)
        return;
    e->state = E_CONNECTING;
    if (reply == NULL)
        return;                     /* read again once connected */
    if (reply->type != REDIS_REPLY_ARRAY) {
        rk__log(RK_LOG_WARNING, "reading the wall-clock ticks %s failed (%s)%s", e->clock_key,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply",
                e->replay ? ": the replay may differ from the live run"
                          : ": those after the checkpoint are not applied again");
        rk__ticks_free(&e->ticks);
        ticks_loaded(e);
        return;
    }
    if (e->replay) {
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
        if (reply->elements >= TICKS_PAGE) {
            ticks_load(e);          /* the next page */
            return;
        }
    } else {
        while (n < reply->elements && rk__tick_parse(reply->element[n], e->stream_keys, &k) == 0 &&
               k.ts > e->clock.watermark)
            n++;
        if (n == TICKS_PAGE)
            rk__log(RK_LOG_WARNING, "more than %d wall-clock ticks in %s after the "
                    "checkpoint: only the newest are applied again", TICKS_PAGE, e->clock_key);
        for (i = n; i-- > 0;)
            if (rk__tick_parse(reply->element[i], e->stream_keys, &k) == 0 &&
                rk__ticks_push(&e->ticks, &k) != 0)
                rk__log(RK_LOG_ERR, "out of memory reading the wall-clock ticks");
    }
    ticks_loaded(e);
}

static void ticks_load(rk_engine *e)
{
    char count[16];
    const char *argv[6];
    snprintf(count, sizeof(count), "%d", TICKS_PAGE);
    if (e->replay) {
        argv[0] = "XRANGE"; argv[1] = e->clock_key;
        argv[2] = e->ticks_cursor[0] ? e->ticks_cursor : "-"; argv[3] = "+";
    } else {
        argv[0] = "XREVRANGE"; argv[1] = e->clock_key; argv[2] = "+"; argv[3] = "-";
    }
    argv[4] = "COUNT";
    argv[5] = count;
    if (rk__redis_cmd(e->rd, on_ticks, e, 0, 6, argv, NULL) == 0) {
        e->state = E_LOADING;
    } else if (e->replay) {
        rk__log(RK_LOG_WARNING, "cannot read the wall-clock ticks %s: the replay may differ "
                "from the live run", e->clock_key);
        ticks_loaded(e);            /* (live: read again once connected) */
    }
}

/* ===================================================================
 * Housekeeping timer: wall-clock advance, retries, stop deadline
 * =================================================================== */

/* HGETALL riskd:silences: the values are the silences. */
static void on_silences(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = pd;
    const char **vals;
    size_t *lens, i, n = 0;
    (void)r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || e->silences == NULL)
        return;
    vals = calloc(reply->elements / 2 + 1, sizeof(*vals));
    lens = calloc(reply->elements / 2 + 1, sizeof(*lens));
    if (vals != NULL && lens != NULL) {
        for (i = 1; i < reply->elements; i += 2) {
            if (reply->element[i]->type != REDIS_REPLY_STRING)
                continue;
            vals[n] = reply->element[i]->str;
            lens[n++] = reply->element[i]->len;
        }
        rk__silences_load(e->silences, vals, lens, n);
    }
    free(vals);
    free(lens);
}

/* The configuration without secrets, as compact JSON (caller frees). */
static char *config_for_audit(const rk_config *cfg)
{
    json_t *copy = json_deep_copy(cfg->root), *redis;
    char *out;
    if (copy == NULL)
        return NULL;
    redis = json_object_get(copy, "redis");
    if (json_is_object(redis) && json_object_get(redis, "password") != NULL &&
        !json_is_null(json_object_get(redis, "password")))
        json_object_set_new(redis, "password", json_string("(redacted)"));
    out = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    return out;
}

/* XADD riskd:audit: who/what/when/old/new for the configuration applied
 * at start or by a reload. Retried by the housekeeping timer until sent. */
static void write_audit(rk_engine *e)
{
    char who[300], when[48];
    char *cur = config_for_audit(e->cfg);
    const char *argv[13];
    if (cur == NULL)
        return;
    snprintf(who, sizeof(who), "riskd@%s", e->cfg->consumer);
    rk__format_rfc3339(rk__wall_ms(), 0, when, sizeof(when));
    argv[0] = "XADD"; argv[1] = RK_AUDIT_STREAM; argv[2] = "MAXLEN"; argv[3] = "~";
    argv[4] = "100000"; argv[5] = "*";
    argv[6] = "who"; argv[7] = who;
    argv[8] = "what"; argv[9] = "config_applied";
    {
        const char *full[17];
        memcpy(full, argv, 10 * sizeof(*argv));
        full[10] = "when"; full[11] = when;
        full[12] = "old"; full[13] = e->audit_old ? e->audit_old : "null";
        full[14] = "new"; full[15] = cur;
        if (rk__redis_cmd(audit_conn(e), NULL, NULL, 0, 16, full, NULL) == 0) {
            e->audit_pending = false;
            free(e->audit_old);
            e->audit_old = cur;
            return;
        }
    }
    free(cur);
}

/* XINFO GROUPS <stream>: keep lag and pending of our group for metrics. */
static void on_xinfo(rk_redis *r, redisReply *reply, void *pd)
{
    rk_engine *e = ((struct rk_host *)pd)->eng;
    unsigned si = ((struct rk_host *)pd)->idx;
    size_t i, k;
    (void)r;
    free(pd);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (i = 0; i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        long long lag = -1, pending = -1;
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
        }
        if (ours) {
            e->group_lag[si] = lag;
            e->group_pending[si] = pending;
        }
    }
}

static void poll_xinfo(rk_engine *e)
{
    unsigned si;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        const char *argv[3] = {"XINFO", "GROUPS", e->st[si].key};
        struct rk_host *pd = malloc(sizeof(*pd));
        if (pd == NULL)
            return;
        pd->eng = e;
        pd->idx = si;
        if (rk__redis_cmd(e->wr, on_xinfo, pd, 0, 3, argv, NULL) != 0) {
            free(pd);
            return;
        }
    }
}

static void write_audit(rk_engine *e);

static void on_housekeeping(uv_timer_t *t)
{
    rk_engine *e = t->data;
    int64_t now = (int64_t)uv_now(e->loop);
    unsigned si;
    bool idle = true;

    rk__register_watermark(e->filreg, rk__clock_now(&e->clock));   /* and retries */
    rk__inlog_flush(&e->inlog, rk__wall_ms());
    if (e->stopping) {
        if (now - e->round_started > STOP_TIMEOUT_MS) {
            rk__log(RK_LOG_WARNING, "stop: Redis did not confirm in time; "
                    "unacknowledged entries will be read again on restart");
            finish_stop(e);
        } else if (e->state == E_IDLE) {
            checkpoint(e);          /* retried until written */
        }
        return;
    }
    if (e->careful_pause && e->state == E_IDLE && !e->ckpt_inflight && e->acks_inflight == 0)
        checkpoint(e);              /* a failed careful checkpoint: again */
    else if (checkpoint_due(e) && (e->state == E_IDLE || e->state == E_READING))
        checkpoint(e);
    if (now >= e->next_silences && rk__redis_ready(sil_conn(e))) {
        const char *argv[2] = {"HGETALL", RK_SILENCES_KEY};
        e->next_silences = now + 1000;
        rk__redis_cmd(sil_conn(e), on_silences, e, 0, 2, argv, NULL);
    }
    if (e->audit_pending && rk__redis_ready(audit_conn(e)))
        write_audit(e);
    if (now >= e->next_xinfo && rk__redis_ready(e->wr)) {
        e->next_xinfo = now + 5000;
        poll_xinfo(e);
    }
    if (e->state == E_IDLE && e->read_retry_at > 0 && now >= e->read_retry_at) {
        e->read_retry_at = 0;
        schedule_read(e);
    }
    if (e->state == E_CONNECTING && rk__redis_ready(e->rd))
        start_consuming(e);
    if (e->tick_hold)
        tick_send(e);               /* not confirmed yet: again */
    if (!e->cfg->wall_advance || e->replay)
        return;
    for (si = 0; si < RK_STREAM_COUNT; si++)
        if (stream_unread(&e->st[si]))
            idle = false;
    if (idle && (e->state == E_READING || e->state == E_IDLE) &&
        now - e->last_input_wall >= e->cfg->clock_idle)
        wall_tick(e, now);
}

/* ===================================================================
 * Public
 * =================================================================== */

static void init_api(rk_host_api *api)
{
    memset(api, 0, sizeof(*api));
    api->abi_major = RK_ABI_MAJOR;
    api->abi_minor = RK_ABI_MINOR;
    api->emit = host_emit;
    api->timer_set = host_timer_set;
    api->now = host_now;
    api->log = host_log;
    api->stream_name = host_stream_name;
}

void rk__redis_opts_for(const rk_config *cfg, const char *name, const char *slot_key,
                        rk_redis_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->name = name;
    o->host = cfg->redis_host;
    o->port = cfg->redis_port;
    o->username = cfg->redis_username;
    o->password = cfg->redis_password;
    o->db = cfg->redis_db;
    o->sentinels = (const char *const *)cfg->redis_sentinels;
    o->n_sentinels = cfg->n_sentinels;
    o->master_name = cfg->redis_master_name;
    o->cluster_seeds = (const char *const *)cfg->redis_cluster;
    o->n_cluster_seeds = cfg->n_cluster;
    o->cluster_slot = (int)rk__redis_keyslot(slot_key, strlen(slot_key));
}

/* Parse a --from/--to value: an entry id "ms-seq" or "ms" (for --to, "ms"
 * means "ms-<max>"). Returns 0 or -1. */
static int replay_pos(const char *s, bool upper, rk_entry_ref *out)
{
    if (parse_entry_id(s, strlen(s), out) == 0)
        return 0;
    {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s-%s", s, upper ? "4294967295" : "0");
        return parse_entry_id(buf, strlen(buf), out);
    }
}

static rk_engine *engine_new(uv_loop_t *loop, rk_config *cfg, const rk_replay_opts *ro,
                             char *err, size_t errlen);

rk_engine *rk__engine_new(uv_loop_t *loop, rk_config *cfg, char *err, size_t errlen)
{
    return engine_new(loop, cfg, NULL, err, errlen);
}

rk_engine *rk__engine_new_replay(uv_loop_t *loop, rk_config *cfg,
                                 const rk_replay_opts *ro, char *err, size_t errlen)
{
    return engine_new(loop, cfg, ro, err, errlen);
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

static rk_engine *engine_new(uv_loop_t *loop, rk_config *cfg, const rk_replay_opts *ro,
                             char *err, size_t errlen)
{
    rk_engine *e = calloc(1, sizeof(*e));
    rk_redis_opts o;
    unsigned si;

    if (e == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    e->loop = loop;
    init_api(&e->api);
    rk_map_init(&e->alert_counts);
    e->silences = rk__silences_new();
    e->audit_pending = true;
    for (si = 0; si < RK_STREAM_COUNT; si++)
        e->group_lag[si] = e->group_pending[si] = -1;
    rk__clock_init(&e->clock);
    rk__clock_set_lateness(&e->clock, cfg->allowed_lateness);
    rk__inlog_init(&e->inlog);
    rk__tasks_init(&e->tasks);
    rk__dedupe_init(&e->dedupe);
    rk__dedupe_set_window(&e->dedupe, cfg->dedupe_window);
    if (rk__registry_load(&e->reg, cfg, &e->api, e, err, errlen) != 0)
        goto fail_registry;
    e->cfg = cfg;
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        e->st[si].key = cfg->stream_key[si];
        e->stream_keys[si] = cfg->stream_key[si];
    }
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
        e->replay = true;
        e->ro = *ro;
        e->audit_pending = false;
        e->replay_alerts = json_object();
        for (si = 0; si < RK_STREAM_COUNT; si++) {
            rk_entry_ref from;
            if (ro->from == NULL || strcmp(ro->from, "0") == 0 || strcmp(ro->from, "-") == 0) {
                snprintf(e->st[si].cursor, sizeof(e->st[si].cursor), "0-0");
            } else if (replay_pos(ro->from, false, &from) != 0) {
                rk_kit_errf(err, errlen, "--from: expected an entry id or an RFC 3339 time");
                e->cfg = NULL;
                rk__engine_free(e);
                return NULL;
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
            replay_pos(ro->from, false, &e->replay_from) != 0)
            memset(&e->replay_from, 0, sizeof(e->replay_from));
        if (ro->to != NULL) {
            if (replay_pos(ro->to, true, &e->replay_to) != 0) {
                rk_kit_errf(err, errlen, "--to: expected an entry id or an RFC 3339 time");
                e->cfg = NULL;
                rk__engine_free(e);
                return NULL;
            }
            e->replay_has_to = true;
        }
    } else {
        rk__redis_opts_for(cfg, "writer", cfg->state_key, &o);
        e->wr = rk__redis_new(loop, &o, on_wr_state, e);
        if (cfg->n_cluster > 0 && e->wr != NULL) {
            rk__redis_opts_for(cfg, "alerts", cfg->alerts_stream, &o);
            e->wr_out = rk__redis_new(loop, &o, on_wr_state, e);
            rk__redis_opts_for(cfg, "dead", RK_DEAD_STREAM, &o);
            e->wr_dead = rk__redis_new(loop, &o, on_wr_state, e);
            rk__redis_opts_for(cfg, "silences", RK_SILENCES_KEY, &o);
            e->aux_sil = rk__redis_new(loop, &o, NULL, e);
            rk__redis_opts_for(cfg, "audit", RK_AUDIT_STREAM, &o);
            e->aux_audit = rk__redis_new(loop, &o, NULL, e);
            e->ob = e->wr_out ? rk__outbox_new(loop, e->wr_out, cfg, on_drained, e) : NULL;
            e->ob_dead = e->wr_dead ? rk__outbox_new(loop, e->wr_dead, cfg, on_drained, e)
                                    : NULL;
            if (e->ob_dead == NULL || e->aux_sil == NULL || e->aux_audit == NULL) {
                rk__outbox_free(e->ob);
                e->ob = NULL;       /* reported as out of memory below */
            }
        } else {
            e->ob = e->wr ? rk__outbox_new(loop, e->wr, cfg, on_drained, e) : NULL;
        }
        if (cfg->partitions > 1 && e->ob != NULL &&
            (e->filreg = rk__register_new(e->wr_out ? e->wr_out : e->wr, cfg, on_drained,
                                          e)) == NULL) {
            rk__outbox_free(e->ob);
            e->ob = NULL;           /* reported as out of memory below */
        }
    }
    rk__redis_opts_for(cfg, "reader", cfg->state_key, &o);
    o.reply_timeout_ms = 10000;
    o.reply_arena = 1;              /* batches of entries: thousands of nodes each */
    e->rd = (e->ob || e->replay) && e->suspect_key && e->clock_key
            ? rk__redis_new(loop, &o, on_rd_state, e) : NULL;
    if (e->rd == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        e->cfg = NULL;
        rk__engine_free(e);
        return NULL;
    }
    return e;

fail_registry:
    rk__tasks_free(&e->tasks);
    rk__dedupe_free(&e->dedupe);
    rk__clock_free(&e->clock);
    rk__inlog_free(&e->inlog);
    rk__silences_free(e->silences);
    rk_map_clear(&e->alert_counts, free);
    free(e);
    return NULL;
}

void rk__engine_on_ready(rk_engine *e, void (*cb)(void *ud), void *ud)
{
    e->ready_cb = cb;
    e->ready_ud = ud;
}

static void on_outbox_fenced(void *ud, const char *why)
{
    engine_lost(ud, why);
}

int rk__engine_set_lease(rk_engine *e, long long epoch, bool takeover,
                         void (*lost)(void *ud, const char *why), void *ud)
{
    if (e->replay || e->epoch_key == NULL)
        return -1;
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

void rk__engine_lease_until(rk_engine *e, uint64_t until_hr)
{
    e->lease_until_hr = until_hr;
    if (e->state == E_IDLE && !e->lost)
        schedule_read(e);
}

bool rk__engine_lost(const rk_engine *e)
{
    return e->lost;
}

int rk__engine_reload(rk_engine *e, rk_config *cfg, char *err, size_t errlen)
{
    rk_config *old = e->cfg;
    unsigned si;

    if (strcmp(cfg->redis_host, old->redis_host) != 0 || cfg->redis_port != old->redis_port ||
        cfg->redis_db != old->redis_db)
        rk__log(RK_LOG_WARNING, "reload: redis.* changes take effect at restart");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        if (strcmp(cfg->stream_key[si], old->stream_key[si]) != 0)
            rk__log(RK_LOG_WARNING, "reload: streams.* changes take effect at restart");
    if (rk__registry_reload(&e->reg, cfg, &e->api, e, on_det_removed, err, errlen) != 0)
        return -1;
    if (e->audit_pending && rk__redis_ready(audit_conn(e)))
        write_audit(e);             /* the previous one first, in order */
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
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        e->st[si].key = cfg->stream_key[si];
        e->stream_keys[si] = cfg->stream_key[si];
    }
    rk__outbox_configure(e->ob, cfg);
    rk__outbox_configure(e->ob_dead, cfg);
    rk__dedupe_set_window(&e->dedupe, cfg->dedupe_window);
    rk__config_free(old);
    e->audit_pending = true;        /* config_applied, old -> new */
    return 0;
}

void rk__engine_reject_config(rk_engine *e, const char *path, const char *error)
{
    rk_alert a;
    char summary[RK_ERRLEN + 128], id[33];
    char *json;

    memset(&a, 0, sizeof(a));
    a.rule = "config_rejected";
    a.severity = RK_SEV_WARNING;
    a.ts = rk__wall_ms();       /* no input entry: the attempt's time */
    a.value = 1;
    a.threshold = 0;
    snprintf(summary, sizeof(summary), "Reloading %s was refused and the running "
             "configuration stays: %s", path, error);
    a.summary = summary;
    rk__alert_id("riskd", &a, NULL, id);
    json = rk__alert_json(id, "riskd", &a, a.severity, e->stream_keys, e->cfg->tz_offset_s,
                          a.ts, false);
    if (json == NULL || rk__outbox_alert(e->ob, id, NULL, "riskd", json, true) != 0)
        rk__log(RK_LOG_ERR, "out of memory queueing the config_rejected alert");
    free(json);
    count_alert(e, "riskd", "config_rejected", RK_SEV_WARNING);
}

static void finish_stop(rk_engine *e)
{
    void (*cb)(void *) = e->stop_cb;
    if (e->state == E_STOPPED)
        return;
    e->state = E_STOPPED;
    uv_timer_stop(&e->housekeeping);
    if (cb) {
        e->stop_cb = NULL;
        cb(e->stop_ud);
    }
}

void rk__engine_stop(rk_engine *e, void (*done)(void *ud), void *ud)
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
            finish_stop(e);
            return;
        }
        if (ob_pending(e) > 0)
            return;                 /* timer alerts: housekeeping retries */
        checkpoint(e);
        if (!e->ckpt_inflight && e->acks_inflight == 0 && !e->dirty)
            finish_stop(e);
        return;
    default:
        finish_stop(e);             /* not consuming yet: nothing to save */
    }
}

/* The engine's memory goes once libuv closed both of its handles (the
 * housekeeping timer and, when a checkpoint child was running, its pipe). */
static void engine_closed(uv_handle_t *h)
{
    rk_engine *e = h->data;
    if (--e->handles_closing == 0 && e->freeing)
        free(e);
}

void rk__engine_free(rk_engine *e)
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
        free_cooldowns(e->reg.dets[i]);
    rk__registry_free(&e->reg);
    for (si = 0; si < RK_STREAM_COUNT; si++) {
        clear_buffer(&e->st[si]);
        free(e->st[si].buf);
        free(e->st[si].arena);
        free(e->st[si].nbuf);
        free(e->st[si].narena);
        free(e->st[si].acks);
        rk__event_mem_free(&e->st[si].mem);
    }
    rk__tasks_free(&e->tasks);
    rk__dedupe_free(&e->dedupe);
    rk__clock_free(&e->clock);
    rk__inlog_free(&e->inlog);
    rk_map_clear(&e->alert_counts, free);
    rk__silences_free(e->silences);
    free(e->audit_old);
    json_decref(e->replay_alerts);
    rk__config_free(e->cfg);
    e->cfg = NULL;
    free(e->suspect_key);
    free(e->epoch_key);
    free(e->clock_key);
    rk__ticks_free(&e->ticks);
    e->freeing = true;
    e->handles_closing++;           /* the housekeeping timer, below */
    if (e->ckpt_poll_open) {
        /* A child still writing: it is fenced by its epoch if it outlives us. */
        e->handles_closing++;
        uv_poll_stop(&e->ckpt_poll);
        uv_close((uv_handle_t *)&e->ckpt_poll, ckpt_poll_closed);
        e->ckpt_poll_open = false;
        close(e->ckpt_fd);
    }
    /* The engine's memory goes when libuv is done with its timer. */
    uv_timer_stop(&e->housekeeping);
    uv_close((uv_handle_t *)&e->housekeeping, engine_closed);
}

int rk__engine_healthy(const rk_engine *e)
{
    return rk__redis_ready(e->rd) && rk__redis_ready(e->wr) && e->ever_ready &&
           (e->wr_out == NULL || (rk__redis_ready(e->wr_out) && rk__redis_ready(e->wr_dead))) &&
           e->state != E_CONNECTING && e->state != E_SETUP && e->state != E_LOADING &&
           e->state != E_STOPPED;
}

const rk_engine_stats *rk__engine_stats(const rk_engine *e)
{
    return &e->stats;
}

const rk_config *rk__engine_config(const rk_engine *e)
{
    return e->cfg;
}

/* ===================================================================
 * Metrics
 * =================================================================== */

#define putf rk__buf_printf

void rk__engine_render_metrics(rk_engine *e, rk_buf *b)
{
    const rk_outbox_stats *os = rk__outbox_stats(e->ob);
    static const char *const le[12] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                       "0.05", "0.1", "0.25", "0.5", "1", "2.5"};
    unsigned si, t;
    uint64_t cum = 0;
    int i;

    putf(b, "# HELP riskd_events_total Events applied, by stream and type.\n"
            "# TYPE riskd_events_total counter\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        for (t = 1; t < RK_EV__COUNT; t++)
            putf(b, "riskd_events_total{stream=\"%s\",type=\"%s\"} %llu\n", e->st[si].key,
                 rk__event_type_name((rk_event_type)t),
                 (unsigned long long)e->stats.events[si][t]);
    putf(b, "# HELP riskd_invalid_events_total Entries dead-lettered as invalid.\n"
            "# TYPE riskd_invalid_events_total counter\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        putf(b, "riskd_invalid_events_total{stream=\"%s\"} %llu\n", e->st[si].key,
             (unsigned long long)e->stats.invalid[si]);
    rk__inlog_render(&e->inlog, b, e->stream_keys);
    putf(b, "# HELP riskd_duplicate_events_total Repeated events (same natural key and "
            "values within state.dedupe_window), acknowledged and skipped.\n"
            "# TYPE riskd_duplicate_events_total counter\n");
    for (t = 1; t < RK_EV_CLOCK_TICK; t++)
        putf(b, "riskd_duplicate_events_total{type=\"%s\"} %llu\n",
             rk__event_type_name((rk_event_type)t),
             (unsigned long long)e->stats.duplicates[t]);
    putf(b, "# HELP riskd_amended_events_total Filings and decisions that replaced an "
            "earlier one of the same natural key.\n"
            "# TYPE riskd_amended_events_total counter\n");
    for (t = 1; t < RK_EV_CLOCK_TICK; t++)
        if (rk__dedupe_amendable((rk_event_type)t))
            putf(b, "riskd_amended_events_total{type=\"%s\"} %llu\n",
                 rk__event_type_name((rk_event_type)t),
                 (unsigned long long)e->stats.amended[t]);
    putf(b, "# HELP riskd_conflicting_events_total Repeats of a natural key with other values "
            "for a type that cannot be amended (dead-lettered).\n"
            "# TYPE riskd_conflicting_events_total counter\n");
    for (t = 1; t < RK_EV_CLOCK_TICK; t++)
        if (!rk__dedupe_amendable((rk_event_type)t))
            putf(b, "riskd_conflicting_events_total{type=\"%s\"} %llu\n",
                 rk__event_type_name((rk_event_type)t),
                 (unsigned long long)e->stats.conflicts[t]);
    putf(b, "# HELP riskd_dedupe_keys Natural keys remembered (state.dedupe_window).\n"
            "# TYPE riskd_dedupe_keys gauge\nriskd_dedupe_keys %zu\n"
            "# HELP riskd_dedupe_bytes Memory of the remembered natural keys.\n"
            "# TYPE riskd_dedupe_bytes gauge\nriskd_dedupe_bytes %zu\n",
         rk__dedupe_count(&e->dedupe), rk__dedupe_bytes(&e->dedupe));
    putf(b, "# HELP riskd_trimmed_pending_total Pending entries whose payload was trimmed.\n"
            "# TYPE riskd_trimmed_pending_total counter\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        putf(b, "riskd_trimmed_pending_total{stream=\"%s\"} %llu\n", e->st[si].key,
             (unsigned long long)e->stats.trimmed[si]);
    putf(b, "# HELP riskd_alerts_emitted_total Alerts emitted by detectors (before de-duplication).\n"
            "# TYPE riskd_alerts_emitted_total counter\nriskd_alerts_emitted_total %llu\n",
         (unsigned long long)e->stats.alerts_emitted);
    putf(b, "# HELP riskd_alerts_total Alerts emitted, by detector, rule and severity.\n"
            "# TYPE riskd_alerts_total counter\n");
    {
        size_t bk;
        rk_map_entry *it;
        for (it = rk_map_first(&e->alert_counts, &bk); it;
             it = rk_map_next(&e->alert_counts, &bk, it)) {
            char det[128], rule[128], sev[16];
            if (sscanf(it->key, "%127s %127s %15s", det, rule, sev) == 3)
                putf(b, "riskd_alerts_total{detector=\"%s\",rule=\"%s\",severity=\"%s\"} %llu\n",
                     det, rule, sev, (unsigned long long)*(uint64_t *)it->value);
        }
    }
    putf(b, "# HELP riskd_group_lag Entries of the stream not yet delivered to the group "
            "(XINFO GROUPS lag; -1 unknown).\n# TYPE riskd_group_lag gauge\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        putf(b, "riskd_group_lag{stream=\"%s\"} %lld\n", e->st[si].key, e->group_lag[si]);
    putf(b, "# HELP riskd_group_pending Entries delivered but not acknowledged "
            "(XINFO GROUPS pending; -1 unknown).\n# TYPE riskd_group_pending gauge\n");
    for (si = 0; si < RK_STREAM_COUNT; si++)
        putf(b, "riskd_group_pending{stream=\"%s\"} %lld\n", e->st[si].key,
             e->group_pending[si]);
    putf(b, "# HELP riskd_alerts_written_total Alerts written to the alert stream and channel.\n"
            "# TYPE riskd_alerts_written_total counter\nriskd_alerts_written_total %llu\n",
         (unsigned long long)os->written);
    putf(b, "# HELP riskd_alerts_duplicate_total Alerts dropped because their id was already written.\n"
            "# TYPE riskd_alerts_duplicate_total counter\nriskd_alerts_duplicate_total %llu\n",
         (unsigned long long)os->duplicates);
    if (e->filreg != NULL)
        putf(b, "# HELP riskd_alerts_filed_elsewhere_total scan_without_filing and "
                "case_without_filing alerts not written: another partition filed the task "
                "in time (the filing register).\n"
                "# TYPE riskd_alerts_filed_elsewhere_total counter\n"
                "riskd_alerts_filed_elsewhere_total %llu\n"
                "# HELP riskd_alerts_waiting_total Times such an alert waited because a "
                "partition's watermark was not past its deadline yet (retried).\n"
                "# TYPE riskd_alerts_waiting_total counter\nriskd_alerts_waiting_total %llu\n"
                "# HELP riskd_register_filings_total Filings written to the filing register.\n"
                "# TYPE riskd_register_filings_total counter\nriskd_register_filings_total %llu\n"
                "# HELP riskd_register_pending Filings applied, not yet in the register.\n"
                "# TYPE riskd_register_pending gauge\nriskd_register_pending %zu\n",
             (unsigned long long)os->filed_elsewhere, (unsigned long long)os->held,
             (unsigned long long)rk__register_stats_of(e->filreg)->recorded,
             rk__register_pending(e->filreg));
    putf(b, "# HELP riskd_alerts_silenced_total Alerts matched by an operator's silence "
            "(written with \"silenced\": true, not published).\n"
            "# TYPE riskd_alerts_silenced_total counter\nriskd_alerts_silenced_total %llu\n"
            "# HELP riskd_silences Silences known (active or not).\n"
            "# TYPE riskd_silences gauge\nriskd_silences %zu\n",
         (unsigned long long)e->silenced, rk__silences_count(e->silences));
    putf(b, "# HELP riskd_alerts_held_back_total Alerts silenced by a cooldown.\n"
            "# TYPE riskd_alerts_held_back_total counter\nriskd_alerts_held_back_total %llu\n",
         (unsigned long long)e->stats.held_back);
    putf(b, "# HELP riskd_dead_letters_total Dead letters written.\n"
            "# TYPE riskd_dead_letters_total counter\nriskd_dead_letters_total %llu\n",
         (unsigned long long)rk__outbox_stats(dead_ob(e))->dead_written);
    putf(b, "# HELP riskd_detector_errors_total Detector failures on an event or timer.\n"
            "# TYPE riskd_detector_errors_total counter\nriskd_detector_errors_total %llu\n",
         (unsigned long long)e->stats.detector_errors);
    putf(b, "# HELP riskd_redis_reconnects_total Reconnection attempts to Redis.\n"
            "# TYPE riskd_redis_reconnects_total counter\n"
            "riskd_redis_reconnects_total{connection=\"reader\"} %llu\n"
            "riskd_redis_reconnects_total{connection=\"writer\"} %llu\n",
         (unsigned long long)rk__redis_reconnects(e->rd),
         (unsigned long long)rk__redis_reconnects(e->wr));
    putf(b, "# HELP riskd_up 1 when connected and consuming.\n# TYPE riskd_up gauge\nriskd_up %d\n",
         rk__engine_healthy(e));
    if (e->clock.watermark != INT64_MIN) {
        putf(b, "# HELP riskd_watermark_seconds Event-time watermark (Unix seconds).\n"
                "# TYPE riskd_watermark_seconds gauge\nriskd_watermark_seconds %.3f\n",
             (double)e->clock.watermark / 1000.0);
        putf(b, "# HELP riskd_watermark_lag_seconds Wall clock minus the watermark.\n"
                "# TYPE riskd_watermark_lag_seconds gauge\nriskd_watermark_lag_seconds %.3f\n",
             (double)(rk__wall_ms() - e->clock.watermark) / 1000.0);
    }
    putf(b, "# HELP riskd_claimed_total Entries taken over from another consumer.\n"
            "# TYPE riskd_claimed_total counter\nriskd_claimed_total %llu\n"
            "# HELP riskd_poison_total Entries dead-lettered after too many deliveries.\n"
            "# TYPE riskd_poison_total counter\nriskd_poison_total %llu\n",
         (unsigned long long)e->claimed, (unsigned long long)e->poisoned);
    putf(b, "# HELP riskd_group_rewinds_total Streams whose group was set back to the "
            "restored state's position.\n# TYPE riskd_group_rewinds_total counter\n"
            "riskd_group_rewinds_total %llu\n", (unsigned long long)e->stats.group_rewinds);
    putf(b, "# HELP riskd_checkpoints_total Checkpoints written.\n"
            "# TYPE riskd_checkpoints_total counter\nriskd_checkpoints_total %llu\n",
         (unsigned long long)e->checkpoints);
    if (e->last_ckpt_wall > 0)
        putf(b, "# HELP riskd_checkpoint_age_seconds Time since the last checkpoint.\n"
                "# TYPE riskd_checkpoint_age_seconds gauge\nriskd_checkpoint_age_seconds %.3f\n",
             (double)(rk__wall_ms() - e->last_ckpt_wall) / 1000.0);
    putf(b, "# HELP riskd_timers Timers armed on event time.\n# TYPE riskd_timers gauge\n"
            "riskd_timers %zu\n", e->clock.ntimers);
    putf(b, "# HELP riskd_filings_tracked Filings kept for enrichment.\n"
            "# TYPE riskd_filings_tracked gauge\nriskd_filings_tracked %zu\n", e->tasks.map.count);
    putf(b, "# HELP riskd_detector_tracked_keys Keys each detector tracks.\n"
            "# TYPE riskd_detector_tracked_keys gauge\n");
    for (i = 0; i < (int)e->reg.n; i++) {
        rk__det *d = e->reg.dets[i];
        if (d->self && d->ops->tracked_keys)
            putf(b, "riskd_detector_tracked_keys{detector=\"%s\"} %zu\n", d->name,
                 d->ops->tracked_keys(d->self));
    }
    putf(b, "# HELP riskd_batch_seconds Time to apply one batch.\n"
            "# TYPE riskd_batch_seconds histogram\n");
    for (i = 0; i < 12; i++) {
        cum += e->stats.batch_hist[i];
        putf(b, "riskd_batch_seconds_bucket{le=\"%s\"} %llu\n", le[i], (unsigned long long)cum);
    }
    putf(b, "riskd_batch_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)e->stats.batches);
    putf(b, "riskd_batch_seconds_sum %.6f\nriskd_batch_seconds_count %llu\n",
         e->stats.batch_seconds_sum, (unsigned long long)e->stats.batches);
}
