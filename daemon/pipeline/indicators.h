/* indicators.h - the supervision indicators per unit, officer, region and
 * `all` (indicators.c): the module's internal interface, shared by the
 * engine (apply.c, host.c, checkpoint.c, indicators_out.c), riskctl
 * (period labels) and the tests. Nothing here touches Redis. */
#ifndef RISKD_INDICATORS_H
#define RISKD_INDICATORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "riskd/event.h"
#include "riskd/snapshot.h"

/* Scopes, in the order of their names (rk__ind_scope_names). */
enum { RK_IND_UNIT, RK_IND_OFFICER, RK_IND_REGION, RK_IND_ALL, RK_IND_NSCOPES };
extern const char *const rk__ind_scope_names[RK_IND_NSCOPES];

/* Periods of one key: the rolling window, the current and the previous
 * calendar month and quarter (relative to the module's now). */
enum { RK_IND_WINDOW, RK_IND_MONTH, RK_IND_PREV_MONTH, RK_IND_QUARTER, RK_IND_PREV_QUARTER,
       RK_IND_NPERIODS };

/* The counters kept per key and period slot. Counts may go down
 * (amendments, retractions), hence signed. */
enum {
    RK_IC_FILINGS, RK_IC_UNFILED, RK_IC_SCANNED_BY_DEADLINE, RK_IC_DEADLINE_PASSED,
    RK_IC_SCANNED, RK_IC_RATED, RK_IC_RATINGS, RK_IC_BAD_RATINGS,
    RK_IC_COUNTED, RK_IC_ENTERPRISES, RK_IC_CASES_OPENED, RK_IC_CASES_DECIDED,
    RK_IC_LENIENT, RK_IC_COMPLAINTS, RK_IC_REVIEWS, RK_IC_CORRECTIONS,
    RK_IC_N
};
extern const char *const rk__ind_counter_names[RK_IC_N];

typedef struct rk__ind_counts {
    int32_t c[RK_IC_N];
    int64_t fines_fen;              /* fine + confiscation, in fen (0.01 yuan) */
} rk__ind_counts;

/* Settings (from the configuration: indicators.window,
 * detectors.unfiled_inspection.scan_deadline, detectors.bad_rating.bad_score,
 * detectors.inspection_frequency.exclude_kinds, clock.timezone). */
typedef struct rk__ind_settings {
    int64_t window;                 /* ms, a whole number of days is used (rounded up) */
    int64_t scan_deadline;          /* ms */
    int bad_score;
    unsigned exclude_kinds;         /* bit (1 << rk_inspection_kind) */
    int tz_offset_s;
} rk__ind_settings;

typedef struct rk__ind rk__ind;

/* Create an empty module with settings s; NULL when out of memory. */
rk__ind *rk__ind_new(const rk__ind_settings *s);
void rk__ind_free(rk__ind *ind);
/* New settings (SIGHUP): counts already made stay as they are. */
void rk__ind_configure(rk__ind *ind, const rk__ind_settings *s);
/* Read the settings out of a configuration's root object (defaults where
 * absent; the configuration was validated already). */
void rk__ind_settings_from(rk__ind_settings *s, const void *json_root, int tz_offset_s,
                           int64_t window);

/* Apply one deduplicated event (RK_EVF_AMENDED: it replaces the earlier
 * filing or decision of its key). Returns 0, or -1 when out of memory (the
 * event is then not counted). */
int rk__ind_event(rk__ind *ind, const rk_event *ev);
/* Event time moves to now (the engine's now: the watermark held back by
 * clock.allowed_lateness): scan deadlines that now passes are counted,
 * the rolling window and the current periods follow. */
void rk__ind_advance(rk__ind *ind, int64_t now);
/* An unfiled-inspection alert (scan_without_filing, reported_without_filing,
 * case_without_filing) raised at event time ts for unit_id (may be NULL). */
void rk__ind_unfiled(rk__ind *ind, int64_t ts, const char *unit_id);
/* The same alert retracted: it leaves `unfiled` again. For the alert
 * lifecycle to call when it retracts one of those three rules. */
void rk__ind_unfiled_retract(rk__ind *ind, int64_t ts, const char *unit_id);
/* Amendments (RK_EVF_AMENDED) of a filing or decision whose record was
 * already dropped past the horizon: counted as new ones (see
 * indicators.c, Expiry). Since this process started. */
uint64_t rk__ind_expired_amendments(const rk__ind *ind);
/* Is this (detector, rule) one that `unfiled` counts? */
bool rk__ind_is_unfiled_rule(const char *detector, const char *rule);

/* Call cb for every key of scope the module holds (in no order); returns
 * how many. */
size_t rk__ind_keys(const rk__ind *ind, int scope, void (*cb)(const char *key, void *ud),
                    void *ud);
/* Read the counters of scope/key for a period; returns false when the key
 * is unknown (out zeroed). from/to: the period's bounds (ms; to exclusive).
 * label: "window", "2025-09" or "2025Q3" (at least 16 bytes). */
bool rk__ind_get(rk__ind *ind, int scope, const char *key, int period,
                 rk__ind_counts *out, int64_t *from, int64_t *to, char *label);

/* One hash to write: its key suffix "<scope>:<key>:<label>", and its
 * fields as name/value strings (nf pairs). */
typedef struct rk__ind_hash {
    int scope;
    const char *key;
    char label[16];
    int64_t period_start;           /* ms */
    int64_t last_update;            /* event time of the key's last change */
    const char *region;             /* a unit's: its region (the event's, else the last
                                     * seen with the unit); NULL none or not a unit */
    size_t nf;
    const char *f[48];
    char v[48][32];
} rk__ind_hash;

/* Call cb for each hash that changed since it was last taken (at most
 * max hashes; the rest waits for the next call). updated_at: wall ms.
 * Returns the number of hashes given to cb; *more tells whether changed
 * hashes are left. The hashes: the window and each month and quarter the
 * module keeps up to the current one, and the final figures of a month
 * or quarter that a newer one pushed out of its key before they were
 * taken (every call takes those again after rk__ind_mark_all, so the
 * writer calls it after a failed write). */
size_t rk__ind_collect(rk__ind *ind, size_t max, int64_t updated_at,
                       void (*cb)(const rk__ind_hash *h, void *ud), void *ud, bool *more);
/* Forget what was written: every hash is taken again (a new leader, a
 * Redis that lost its data). */
void rk__ind_mark_all(rk__ind *ind);
/* Keep final hashes for rk__ind_collect (the default), or not: a module
 * nobody collects from (a replay) keeps none. */
void rk__ind_keep_finals(rk__ind *ind, bool keep);

/* Format the fields of counters c (period bounds from, to; wall time
 * updated_at, INT64_MIN none) into h (f/v/nf). Rates follow the layout:
 * decimals with up to 6 digits, "null" for a zero denominator. */
void rk__ind_format(const rk__ind_counts *c, int64_t from, int64_t to, int64_t updated_at,
                    int tz_offset_s, rk__ind_hash *h);
/* A rate num/den as text ("null" when den is 0). */
void rk__ind_rate(int64_t num, int64_t den, char *buf, size_t len);

/* Period arithmetic in a fixed UTC offset (tz_offset_s). */
int64_t rk__ind_day(int64_t ms, int tz_offset_s);          /* days since 1970 */
int32_t rk__ind_month(int64_t ms, int tz_offset_s);        /* year * 12 + month - 1 */
int32_t rk__ind_quarter(int64_t ms, int tz_offset_s);      /* year * 4 + quarter - 1 */
int64_t rk__ind_month_start(int32_t month, int tz_offset_s);
int64_t rk__ind_quarter_start(int32_t quarter, int tz_offset_s);
void rk__ind_month_label(int32_t month, char *buf, size_t len);     /* "2025-09" */
void rk__ind_quarter_label(int32_t quarter, char *buf, size_t len); /* "2025Q3" */
/* Parse "2025-09" / "2025Q3": 1 month, 2 quarter, 0 neither. */
int rk__ind_parse_label(const char *s, int32_t *idx);

/* Memory: bytes held now, and the entity counts. */
size_t rk__ind_memory(const rk__ind *ind, size_t *entities, size_t *tasks);

/* Checkpoint (indicators_snap.c): a versioned blob (format 2, compact;
 * format 1 of the earlier release is still read). restore: into a fresh
 * module; -1 when the blob is not one this version reads. */
int rk__ind_snapshot(const rk__ind *ind, rk_buf *out);
int rk__ind_restore(rk__ind *ind, const void *data, size_t len);

#endif
