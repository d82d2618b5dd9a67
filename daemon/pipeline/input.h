/* input.h - where an engine's entries come from: one interface, two readers.
 *
 * The pipeline from the read buffers on is the same live and in a replay;
 * what differs on the way in is how the streams are read and when the
 * input ends. The engine holds one rk__input (e->in), chosen when it is
 * created like its rk__output (output.h), and calls it, never asking which
 * one it has:
 *
 *   rk__input_live    (input_live.c) the consumer group: the checkpoint and
 *                     the groups when connected, XREADGROUP (fenced by the
 *                     partition's epoch under a lease, a BLOCKing wait when
 *                     idle), the takeover claims, wall-clock ticks decided
 *                     when idle and, after a restart, those after the
 *                     checkpoint read back; never ends
 *   rk__input_replay  (input_replay.c) XREAD by cursor from --from to --to
 *                     (riskd --replay), no group, no checkpoint; the live
 *                     run's ticks in that range applied at their
 *                     positions; ends when both streams are read, or when
 *                     Redis is lost */
#ifndef RISKD_INPUT_H
#define RISKD_INPUT_H

#include <stdbool.h>

struct rk__engine;
struct stream_state;
struct entry;
struct redisReply;

typedef struct rk__input {
    /* The reader connection is up (first time or again): start consuming. */
    void (*start)(struct rk__engine *e);
    /* The reader connection went down (the read in flight, if any, has had
     * its NULL reply). */
    void (*down)(struct rk__engine *e);
    /* Entry en is being copied into stream s's next batch: false when it
     * lies past the input's end (the stream is then at its end). */
    bool (*admit)(const struct rk__engine *e, const struct entry *en);
    /* Is stream s still to be read? */
    bool (*wants)(const struct rk__engine *e, const struct stream_state *s);
    /* May a read go out before the batch just taken in is applied? */
    bool (*may_read_ahead)(const struct rk__engine *e);
    /* Send the read of streams want[0..n) (BLOCKing when block) with
     * rk__on_read as its callback. true when sent. */
    bool (*send)(struct rk__engine *e, const unsigned *want, int n, bool block);
    /* Idle, no read in flight: true when other work takes this turn (the
     * takeover claims, when due). any_buffered: entries wait in a buffer. */
    bool (*turn)(struct rk__engine *e, bool any_buffered);
    /* Idle and no read could be sent. */
    void (*stalled)(struct rk__engine *e, bool any_buffered);
    /* Wall-clock ticks: does this input decide them (clock.wall_advance)? */
    bool decides_ticks;
    /* The read of the recorded ticks: argv[0..6) of an XRANGE/XREVRANGE of
     * the clock stream, COUNT page. */
    void (*ticks_cmd)(struct rk__engine *e, const char *argv[6], const char *page);
    /* Take a page of ticks (an array reply): true when the next page is
     * to be read. */
    bool (*ticks_take)(struct rk__engine *e, const struct redisReply *reply, int page);
    /* The ticks could not be read (why) or sent (why NULL). */
    void (*ticks_failed)(struct rk__engine *e, const char *why);
    /* Every recorded tick is read: go on. */
    void (*ticks_loaded)(struct rk__engine *e);
} rk__input;

extern const rk__input rk__input_live, rk__input_replay;

#endif
