/* tests/lib/gen.h - the event generator shared by the benchmark (loadgen
 * for bulk backlogs, latency for paced writes) and the crash test.
 *
 * The generator simulates inspections over event time: filings arrive at a
 * steady pace across `days`, and each filing schedules its follow-ups (scan,
 * rating, case opened -> decided -> reviewed, complaints) at later event
 * times in a min-heap, so every stream's entries come out in ts order. A
 * small share of the filings carry an anomaly that one of the detectors is
 * meant to find (see gen.c). */
#ifndef RISKD_BENCH_GEN_H
#define RISKD_BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>

enum { BG_SCAN = 0, BG_CASE = 1 };

typedef struct bg_opts {
    long long entries;      /* events to plan for (sets the filing pace) */
    int units;
    int officers;
    int enterprises;
    double days;            /* event time the entries span */
    double anomaly;         /* share of filings with an anomaly, 0..1 */
    double probe;           /* extra share of ratings scored 1 (latency probes) */
    int filings_only;       /* 1: only inspection.filed (memory benchmark) */
    int no_ticks;           /* 1: no clock.tick events */
    int64_t start_ms;       /* event time of the first filing */
    uint64_t seed;
} bg_opts;

typedef struct bg_gen bg_gen;

/* Defaults: 1,000,000 entries, 1,000 units, 20,000 officers, 200,000
 * enterprises, entries / 20,000 days, anomaly 0.01, 2025-01-01T00:00+08:00. */
void bg_opts_default(bg_opts *o);
/* Create a generator, or NULL when out of memory or the options are out of
 * range (units, officers, enterprises >= 1, days > 0, anomaly 0..1). */
bg_gen *bg_gen_new(const bg_opts *o);
void bg_gen_free(bg_gen *g);
/* Produce the next event: its stream (BG_SCAN / BG_CASE) in *stream, its
 * event time in *ts and its JSON in buf. When ts_override >= 0 the event is
 * stamped with that time instead of its simulated one. Returns the JSON
 * length, or -1 when buf (at least 1024 bytes) is too small or memory ran
 * out. */
int bg_gen_next(bg_gen *g, int64_t ts_override, int *stream, int64_t *ts,
                char *buf, size_t len);

/* The unit ("U<n>": n) of the event bg_gen_next made last, or -1 for a
 * clock.tick (which concerns every unit). Producers of a partitioned
 * deployment route by it. */
int bg_gen_last_unit(const bg_gen *g);

/* Monotonic time in nanoseconds. */
int64_t bg_now_ns(void);
/* Wall-clock time in ms since the epoch. */
int64_t bg_wall_ms(void);

#endif
