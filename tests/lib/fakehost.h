/* tests/lib/fakehost.h - a minimal detector host for unit tests.
 *
 * It implements rk_host_api the way the daemon does for one detector:
 * emit() applies the alert's cooldown per (rule, subject) and records the
 * alert; timer_set() keeps timers sorted by (deadline, arming order);
 * rk_fh_advance() moves the watermark and fires every timer whose deadline
 * it passes (strictly), then calls on_watermark. It talks to no Redis: it
 * exists to unit-test detector logic through the real ABI. */
#ifndef RISKD_TEST_FAKEHOST_H
#define RISKD_TEST_FAKEHOST_H

#include <stdint.h>
#include <jansson.h>
#include "riskd/detector.h"

typedef struct rk_fh_timer {
    int64_t deadline;
    uint64_t seq;
    char *key;
    uint64_t arg;
} rk_fh_timer;

typedef struct rk_fakehost {
    const struct rk__open_ops *open;   /* first: the built-ins' open alerts
                                          (internal.h rk__open_ops_of) */
    rk_host_api api;
    const rk_detector_ops *ops;
    void *self;                     /* the detector instance */
    int64_t now;                    /* watermark */
    json_t *alerts;                 /* array of emitted alerts (see below) */
    json_t *cooldowns;              /* object "rule|subject" -> last ts */
    json_t *notices;                /* array of emitted notices (see below) */
    int64_t keep_firing_for;        /* what api.keep_firing_for gives (1h) */
    int held_back;                  /* alerts silenced by cooldown */
    rk_fh_timer *timers;
    size_t ntimers, cap;
    uint64_t seq;
    json_t *names;                  /* "kind/id" -> name (name_of) */
    char language[8];               /* language(): "zh-CN" (default) or "en" */
    void *lists[5];                 /* rk__list * per kind (lists.c), or NULL */
    int tz_offset_s;                /* clock.timezone (tz_offset, credential
                                       days); default +08:00 */
    void *ostore;                   /* rk__ostore: the open alerts, as the
                                       daemon keeps them (openstore.c) */
    json_t *open_alerts;            /* alert id -> index in alerts */
    int64_t open_ttl;               /* alerts.open_ttl: rk_fh_advance closes
                                       (removes) what is older, as the
                                       daemon does; default 30 days */
    int closed;                     /* how many it closed */
} rk_fakehost;

/* Create a host and a detector from a JSON config text ("{}" for
 * defaults). Returns NULL and fills err when create() fails. */
rk_fakehost *rk_fh_new(const rk_detector_ops *ops, const char *cfg_json,
                       char *err, size_t errlen);
void rk_fh_free(rk_fakehost *fh);

/* Deliver an event: moves the watermark to max(now, ev->ts) first (firing
 * due timers), then calls on_event. Returns on_event's result. */
int rk_fh_event(rk_fakehost *fh, const rk_event *ev);

/* Move the watermark to `now` (never backwards), firing due timers. */
void rk_fh_advance(rk_fakehost *fh, int64_t now);

/* Number of alerts of a rule ("" or NULL = any rule). */
int rk_fh_count(const rk_fakehost *fh, const char *rule);

/* The i-th alert (JSON object with "rule", "severity" ("info", "warning",
 * "critical"), "ts", "subject" {field: value}, "value", "threshold",
 * "summary", "evidence" ["s/ms-seq", ...], "cooldown"). Borrowed. */
json_t *rk_fh_alert(const rk_fakehost *fh, size_t i);

/* Notices (status resolved/retracted): how many of a rule ("" or NULL =
 * any) and status (NULL = any); the i-th as a JSON object like an alert's
 * plus "status", "reason" and "change_ts". Borrowed. */
int rk_fh_notice_count(const rk_fakehost *fh, const char *rule, const char *status);
json_t *rk_fh_notice(const rk_fakehost *fh, size_t i);

/* Snapshot the detector, destroy it, create a fresh one with the same
 * config and restore the snapshot into it. Returns 0 or -1. */
int rk_fh_roundtrip(rk_fakehost *fh, const char *cfg_json);

/* Check the detector's restore against corrupt copies of its current
 * snapshot: every truncation is refused with an error starting
 * "snapshot: " and leaves no state (tracked_keys 0); trailing garbage is
 * refused; a changed format version (the byte at version_at flipped) is
 * refused with "snapshot: unsupported format version"; every single-byte
 * flip is survived (no crash or leak under ASan/valgrind); and the intact
 * snapshot still restores with state. Returns NULL when all hold, else the
 * first check that failed. */
const char *rk_fh_check_corrupt_restore(rk_fakehost *fh, size_t version_at);

/* Give `id` of `kind` a name for name_of (name NULL: forget it), as a
 * names list would; set the language language() answers ("zh-CN", "en").
 * Both take effect for the next alert. */
void rk_fh_name(rk_fakehost *fh, const char *kind, const char *id, const char *name);
void rk_fh_language(rk_fakehost *fh, const char *lang);
/* Put a reference list in force for this host: `kind` is "whitelist",
 * "benchmarks", "exempt", "credentials" or "names", `csv` the file's text
 * (parsed by the daemon's own CSV reader, lists.c); NULL unloads it.
 * The lookups of rk_host_api (whitelist_allowance ...) answer from it.
 * Returns 0, or -1 when the CSV is refused. */
int rk_fh_list(rk_fakehost *fh, const char *kind, const char *csv);

/* Build an entry ref quickly. */
rk_entry_ref rk_fh_ref(unsigned stream, uint64_t ms, uint32_t seq);

#endif
