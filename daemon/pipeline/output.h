/* output.h - where an engine's results go: one interface, two writers.
 *
 * The pipeline up to the detectors is the same live and in a replay; only
 * what becomes of an alert or a dead letter differs. The engine holds one
 * rk__output (e->out) chosen when it is created and calls it, never asking
 * which one it has:
 *
 *   rk__output_live    (output_live.c) silences, JSON, the outbox and its
 *                      publish-once script; dead letters to riskd:dead;
 *                      keeps the silences fresh and writes audit entries
 *   rk__output_replay  (output_replay.c) prints each alert as a JSON line
 *                      and collects it by id; no dead letters, no Redis */
#ifndef RISKD_OUTPUT_H
#define RISKD_OUTPUT_H

struct rk__engine;

typedef struct rk__output {
    /* Write alert a of detector det (severity sev after the override) under
     * id - and, after an upgrade, look for it under legacy too (NULL: no
     * legacy id). now_wall is the emission time. Returns 1 when emitted,
     * -1 when out of memory (nothing emitted). */
    int (*alert)(struct rk__engine *e, const char *id, const char *legacy, const char *det,
                 const rk_alert *a, rk_severity sev, int64_t now_wall);
    /* Write the notice `status` ("resolved", "retracted", "closed") of alert
     * id of det: a->change_ts, a->reason, a->evidence describe the change.
     * Written once per (id, status) and only while the alert is open.
     * Returns 1 when queued, -1 when out of memory. */
    int (*notice)(struct rk__engine *e, const char *id, const char *det, const rk_alert *a,
                  const char *status, int64_t now_wall);
    /* Dead-letter entry id of stream (payload data, len) for reason why.
     * Returns 0, or -1 when out of memory. */
    int (*dead)(struct rk__engine *e, const char *stream, const char *id, const char *why,
                const char *data, size_t len);
    /* From the housekeeping timer (now: loop ms): the writer's own chores. */
    void (*housekeep)(struct rk__engine *e, int64_t now);
} rk__output;

extern const rk__output rk__output_live, rk__output_replay;

#endif
