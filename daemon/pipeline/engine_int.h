/* engine_int.h - what the pipeline's files share about one engine.
 *
 * The engine is one struct (struct rk__engine below) that the pipeline's
 * files each work on for their own job, in the order data flows:
 *
 *   reader.c       read both streams into per-stream buffers, rounds
 *   input_live.c   how the live engine reads (group, fenced reads, claims)
 *   input_replay.c how a replay reads (cursor, --from/--to, its end)
 *   apply.c        parse, dedupe, enrich, lateness, watermark, detectors
 *   host.c         the host API detectors call (emit, timers, now, log)
 *   output_live.c  the live writer: outbox, silences, audit
 *   output_replay.c the replay writer: prints and collects alerts
 *   checkpoint.c   the state blob, the checkpoint writer, acknowledgement
 *   group.c        connections, consumer groups, the rewind, claims
 *   wallclock.c    wall-clock ticks: recorded, read back, applied
 *   engine_metrics.c the numbers, rendered once as Prometheus text
 *   engine.c       create, reload, stop, free; the housekeeping timer
 *
 * and below them all: entries.c (entry ids, batch buffers, acks to send),
 * lease.c (giving up, the lease, the end of a stop); a connection's
 * options come from the Redis layer (daemon/redis/opts.c). A file calls only files listed after it in the flow; where
 * control goes back up (a round resumes after a checkpoint, a read finds
 * its group gone) it goes through e->steps, filled in by engine.c.
 *
 * Nothing outside daemon/pipeline includes this header: the rest of riskd
 * sees the engine through the rk__engine_* functions of internal.h. */
#ifndef RISKD_ENGINE_INT_H
#define RISKD_ENGINE_INT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "riskd/kit.h"
#include "internal.h"
#include "output.h"
#include "input.h"
#include "indicators.h"

#define BLOCK_MS 1000
#define HOUSEKEEPING_MS 250
#define ACK_CHUNK 1000
#define READ_RETRY_MS 1000
#define STOP_TIMEOUT_MS 10000
#define HOUSEKEEP_MS 1000
#define LAG_POLL_MS 2000            /* XINFO GROUPS and the oldest entry's age */
#define OUTBOX_HIGH 20000           /* alerts queued before reading pauses */

enum { PH_PENDING, PH_NEW };
enum { E_CONNECTING, E_LOADING, E_SETUP, E_CLAIMING, E_IDLE, E_READING, E_FLUSHING, E_STOPPED };

#define STATE_MAGIC 0x54534b52u     /* "RKST" */
#define STATE_VERSION 4u            /* 2: + natural keys (dedupe.c); 3: + indicators;
                                       4: + open_ttl deadlines, since the
                                       open alerts (openstore.c) */
#define STATE_VERSION_V3 3u         /* read: open_ttl deadlines among the timers */
#define STATE_VERSION_V2 2u         /* read: the indicators start empty */
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
    char seen[48];                  /* PH_NEW: last id '>' delivered ("" none) */
    bool caught_up;                 /* PH_NEW: last read was not full */
    entry *buf;
    size_t n, pos, cap;
    bool at_end;                    /* the input has nothing more of it */
    bool by_cursor;                 /* read by cursor (XREAD), not by group */
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
    /* the group was set back to the state's position (group.c, the group rewind): the first
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
    /* its group, from XINFO GROUPS (engine_metrics.c) */
    long long group_lag;            /* -1 unknown */
    long long group_pending;
    int64_t group_oldest_ms;        /* its oldest unacked entry's ms; 0 none, -1 ? */
    bool requested;                 /* in the read in flight */
    size_t got;                     /* entries the last read's reply held */
} stream_state;

/* The steps a file hands control to that live in a file above it in the
 * flow (group.c above reader.c above checkpoint.c above apply.c): called
 * through this table, which engine.c fills in, so that no file names one
 * that names it back. */
typedef struct rk__steps {
    void (*setup_groups)(struct rk__engine *e);      /* group.c: (re)create the groups */
    void (*claims_begin)(struct rk__engine *e, bool scan_poison);   /* group.c */
    void (*careful_resume)(struct rk__engine *e);    /* reader.c: read on after a
                                                       suspect entry's checkpoint */
} rk__steps;

struct rk__engine {
    uv_loop_t *loop;
    rk__config *cfg;
    rk__registry reg;
    rk_host_api api;
    const rk__output *out;          /* the live or the replay writer */
    const rk__input *in;            /* the live or the replay reader */
    const rk__steps *steps;         /* the steps above a file (engine.c) */
    rk__clock clock;
    rk__ostore open;                /* the open alerts, open_ttl (openstore.c) */
    rk__tasks tasks;
    rk__dedupe dedupe;              /* natural keys of the events applied */
    rk__ind *ind;                   /* the indicators (indicators.c) */
    bool ind_inflight;              /* a write of indicator hashes awaits its reply */
    bool ind_more;                  /* changed hashes left after the last write */
    int64_t ind_next;               /* loop ms of the next pass */
    struct rk__ind_open *ind_open;  /* open alerts by severity (indicators_out.c) */
    bool legacy_ids;                /* restored from a release whose alert ids
                                       came from entry ids (see host_emit) */
    rk__redis *rd, *wr;
    rk__outbox *ob;
    /* On a Redis Cluster (redis.cluster) the partition's keys live on one
     * node and the shared ones elsewhere: alerts go through wr_out (the
     * alert stream's slot), dead letters through ob_dead on wr_dead
     * (riskd:dead's slot), silences and audit entries through aux_sil and
     * aux_audit. Without a cluster all are NULL and wr serves them all. */
    rk__redis *wr_out, *wr_dead, *aux_sil, *aux_audit;
    rk__outbox *ob_dead;
    rk__register *filreg;           /* partitions > 1: the filing register */
    /* The input streams, nstreams of them: a partition's (or the only)
     * pipeline reads its scan and case streams (RK_STREAM_COUNT); stream
     * si is of kind rk__stream_kind(si) (an rk_stream). ev->ref.stream is
     * the index here. */
    unsigned nstreams;
    int role;                       /* RK__ROLE_* (cross.c) */
    char **own_keys;                /* the cross pipeline's stream keys */
    stream_state *st;
    const char **stream_keys;
    unsigned *want;                 /* send_read's streams (reader.c) */
    bool *unread;                   /* rk__update_watermark's (apply.c) */
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
    uv_close_cb handle_closed;      /* every handle of the engine closes with
                                       it (engine.c): the last one due after
                                       rk__engine_free frees the engine */
    rk__silences *silences;
    uint64_t silenced;
    int64_t next_silences;
    bool audit_pending;             /* config_applied not yet written */
    /* replay (riskd --replay) */
    rk__replay_opts ro;
    bool replay_has_to;
    rk_entry_ref replay_to;
    json_t *replay_alerts;          /* id -> alert summary */
    json_t *replay_notices;         /* the notices, in order */
    json_t *replay_closed;          /* id -> true: no longer open */
    bool replay_done;
    bool replay_lost;               /* ended by a lost connection: incomplete */
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
    bool read_inflight;             /* an XREADGROUP/XREAD awaits its reply */
    bool wait_err_logged;           /* the plain XREAD wait was refused */
    char read_err[RK_LOGRL_TEXT];   /* Redis refuses the reads: why; "" once one succeeds */
    uint64_t read_refusals;         /* reads refused since the last that succeeded */
    uint64_t reads_refused_total;   /* riskd_reads_refused_total */
    rk__logrl read_rl;              /* their log lines (readerr.c) */
    uint64_t round_hr;
    rk__engine_stats_t stats;
    rk__inlog inlog;                /* late, unknown, bad input (inputlog.c) */
    /* lease mode (rk__engine_set_lease, node.c) */
    bool leased;                    /* writes are fenced by `epoch` */
    bool claim_all;                 /* the first claim takes every pending entry */
    uint64_t lease_until_hr;        /* uv_hrtime() past which we may not read */
    bool lost;                      /* fenced out: doing nothing any more */
    void (*lost_cb)(void *ud, const char *why);
    void *lost_ud;
};

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

/* Small helpers every file uses (inline: they run per entry). */

static inline int rk__ref_le(rk_entry_ref a, rk_entry_ref b)
{
    return a.ms < b.ms || (a.ms == b.ms && a.seq <= b.seq);
}

/* Does the stream hold entries not applied yet: buffered, read ahead, or
 * (not caught up, or still reading our pending list) in Redis? A read
 * ahead in flight is one of the last: it is only sent for a stream that is
 * not caught up, and caught_up changes only when its reply is taken in. */
static inline bool rk__stream_unread(const stream_state *s)
{
    return s->pos < s->n || s->nn > 0 || s->phase == PH_PENDING || !s->caught_up;
}

/* Entries buffered or read ahead (not applied yet)? */
static inline bool rk__stream_buffered(const stream_state *s)
{
    return s->pos < s->n || s->nn > 0;
}

static inline rk__outbox *rk__dead_ob(const rk__engine *e)
{
    return e->ob_dead ? e->ob_dead : e->ob;
}

static inline size_t rk__ob_pending(const rk__engine *e)
{
    return rk__outbox_pending(e->ob) + rk__outbox_pending(e->ob_dead) +
           rk__register_pending(e->filreg);
}

static inline void rk__ob_kick(rk__engine *e)
{
    rk__outbox_kick(e->ob);
    rk__outbox_kick(e->ob_dead);
    rk__register_watermark(e->filreg, rk__clock_now(&e->clock));
}

/* A write refused by the epoch fence (the scripts answer "FENCED ..."). */
static inline bool rk__is_fenced_reply(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR &&
           strncmp(reply->str, "FENCED", 6) == 0;
}

/* Shared between the pipeline's files (each under its file). */
/* entries.c */
int rk__parse_entry_id(const char *s, size_t len, rk_entry_ref *ref);
void rk__take_next(stream_state *s);
void rk__clear_buffer(stream_state *s);
int rk__ack_push(stream_state *s, const char *id);

/* lease.c */
void rk__engine_give_up(rk__engine *e, const char *why);
bool rk__lease_valid(rk__engine *e);
void rk__finish_stop(rk__engine *e);


/* reader.c */
void rk__round_done(rk__engine *e);
void rk__round_finished(rk__engine *e);
void rk__careful_resume(rk__engine *e);
void rk__schedule_read(rk__engine *e);
/* The reply of a read an input sent (rk__input.send). */
void rk__on_read(rk__redis *r, struct redisReply *reply, void *pd);

/* readerr.c */
void rk__read_err_init(rk__engine *e);
/* A read (what: "XREADGROUP", "XREAD") answered with the error err. */
void rk__read_refused(rk__engine *e, const char *what, const char *err);
/* A read was answered with entries or none: reads work (again). */
void rk__read_ok(rk__engine *e);
/* The summary of refused reads due at wall time now, if any. */
void rk__read_err_flush(rk__engine *e, int64_t now);

/* input_replay.c */
int rk__replay_pos(const char *s, bool upper, rk_entry_ref *out);
int rk__input_replay_init(rk__engine *e, const rk__replay_opts *ro, char *err, size_t errlen);
void rk__replay_finish(rk__engine *e);

/* apply.c */
void rk__fire_timers(rk__engine *e);
void rk__update_watermark(rk__engine *e);
void rk__housekeep_state(rk__engine *e, bool force);
void rk__apply_buffered(rk__engine *e);
bool rk__merge_ready(const rk__engine *e);

/* host.c */
cooldowns *rk__det_cooldowns(rk__det *d);
int rk__cooldown_set(cooldowns *cs, const char *key, int64_t until);
void rk__cooldown_expire(cooldowns *cs, int64_t now);
void rk__count_alert(rk__engine *e, const char *det, const char *rule, rk_severity sev);
void rk__free_cooldowns(rk__det *d);
void rk__on_det_removed(rk__engine *e, uint32_t idx);
void rk__init_api(rk_host_api *api);
/* alerts.open_ttl passed for alert `id` of detector index det at
 * deadline: a "closed" notice (the writer skips it if the alert is no
 * longer open). */
void rk__open_ttl_close(rk__engine *e, int64_t deadline, const char *detector,
                        const char *id);
/* An alerts.open_ttl timer (key "<detector>\x1f<alert id>") passed at
 * deadline: write the alert's "closed" notice, by riskd (dropped when the
 * alert is no longer open). */
void rk__open_ttl_fire(rk__engine *e, int64_t deadline, const char *key);

/* output_live.c */
rk__redis *rk__audit_conn(const rk__engine *e);
void rk__write_audit(rk__engine *e);
void rk__live_init(rk__engine *e);

/* output_replay.c */
int rk__replay_init(rk__engine *e, const rk__replay_opts *ro, char *err, size_t errlen);

/* checkpoint.c */

bool rk__checkpoint_due(const rk__engine *e);
void rk__checkpoint(rk__engine *e);
int rk__restore_state(rk__engine *e, const void *data, size_t len, char *err, size_t errlen);

/* group.c */
void rk__claims_begin(rk__engine *e, bool scan_poison);
void rk__setup_groups(rk__engine *e);
void rk__start_consuming(rk__engine *e);
void rk__on_rd_state(rk__redis *r, int up, void *ud);
void rk__on_wr_state(rk__redis *r, int up, void *ud);

/* wallclock.c */
void rk__tick_send(rk__engine *e);
void rk__wall_tick(rk__engine *e, int64_t now);
void rk__ticks_loaded(rk__engine *e);
void rk__ticks_load(rk__engine *e);

/* indicators_out.c */
rk__ind *rk__ind_for(const rk__config *cfg);
void rk__ind_housekeep(rk__engine *e, int64_t now);
void rk__ind_open_free(rk__engine *e);

/* indicators_metrics.c */
void rk__ind_metrics(rk__engine *e, rk__prom *m);

/* cross.c (and the roles, in internal.h) */
/* Does engine e write alert (or notice) a of detector d? */
bool rk__rule_runs(const rk__engine *e, const rk__det *d, const rk_alert *a);
/* Does engine e give detector d its events? */
bool rk__det_runs(const rk__engine *e, const rk__det *d);
/* The cross pipeline's streams: every partition's two (e->own_keys,
 * e->nstreams). 0, or -1 (memory; rk__cross_free frees what there is). */
int rk__cross_streams(rk__engine *e, const rk__config *cfg);
void rk__cross_free(rk__engine *e);

/* engine_metrics.c */
void rk__poll_xinfo(rk__engine *e);

#endif
