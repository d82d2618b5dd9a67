/* riskd/event.h - the typed event a detector receives.
 *
 * The daemon parses every stream entry (one JSON object in the field `data`)
 * into an rk_event before any detector sees it, so detectors never touch raw
 * JSON. Every string in an rk_event is borrowed: it stays valid only for the
 * duration of the on_event call that receives it. A detector that keeps an
 * identifier must copy it.
 *
 * Part of the plugin ABI: see the checklist beside RK_ABI_MAJOR in
 * riskd/detector.h before changing anything here. New members are only ever
 * added at the end of rk_event. */
#ifndef RISKD_EVENT_H
#define RISKD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The input streams, in the order the daemon reads them. */
typedef enum rk_stream {
    RK_STREAM_SCAN = 0,             /* streams.scan, default enforce:scan */
    RK_STREAM_CASE = 1,             /* streams.case, default enforce:case */
    RK_STREAM_COUNT
} rk_stream;

/* A stream entry id ("1740793800000-0") in binary form, plus its stream.
 * Detectors keep these (16 bytes) instead of id strings for evidence. */
typedef struct rk_entry_ref {
    uint64_t ms;                    /* milliseconds part of the entry id */
    uint32_t seq;                   /* sequence part of the entry id */
    uint32_t stream;                /* an rk_stream */
} rk_entry_ref;

typedef enum rk_event_type {
    RK_EV_UNKNOWN = 0,              /* never delivered to detectors */
    RK_EV_INSPECTION_FILED,
    RK_EV_INSPECTION_SCANNED,
    RK_EV_INSPECTION_RATED,
    RK_EV_INSPECTION_REPORTED,
    RK_EV_CASE_OPENED,
    RK_EV_CASE_DECIDED,
    RK_EV_CASE_COMPLAINT,
    RK_EV_CASE_REVIEW,
    RK_EV_CLOCK_TICK,
    RK_EV__COUNT
} rk_event_type;

typedef enum rk_case_source {
    RK_SOURCE_UNSET = 0,
    RK_SOURCE_INSPECTION,
    RK_SOURCE_COMPLAINT,
    RK_SOURCE_REPORT,
    RK_SOURCE_TRANSFER,
    RK_SOURCE_OTHER
} rk_case_source;

typedef enum rk_leniency {
    RK_LENIENCY_UNSET = 0,          /* field absent */
    RK_LENIENCY_NONE,
    RK_LENIENCY_LIGHTER,
    RK_LENIENCY_MITIGATED,
    RK_LENIENCY_EXEMPT
} rk_leniency;

typedef enum rk_review_outcome {
    RK_OUTCOME_UNSET = 0,
    RK_OUTCOME_UPHELD,
    RK_OUTCOME_REVOKED,
    RK_OUTCOME_ALTERED,
    RK_OUTCOME_CONFIRMED_ILLEGAL,
    RK_OUTCOME_MEDIATED
} rk_review_outcome;

/* inspection.filed `kind` (ABI minor 3); absent means RK_KIND_PLAN. */
typedef enum rk_inspection_kind {
    RK_KIND_UNSET = 0,              /* not an inspection.filed */
    RK_KIND_PLAN,
    RK_KIND_RANDOM,
    RK_KIND_COMPLAINT,
    RK_KIND_SPECIAL,
    RK_KIND_OTHER
} rk_inspection_kind;

/* case.decided `level`, the discretion grade (ABI minor 3). */
typedef enum rk_case_level {
    RK_LEVEL_UNSET = 0,             /* field absent */
    RK_LEVEL_MINOR,
    RK_LEVEL_GENERAL,
    RK_LEVEL_SERIOUS
} rk_case_level;

/* Flags in rk_event.flags. */
#define RK_EVF_UNIT_FROM_FILING      (1u << 0) /* unit_id was taken from the filing */
#define RK_EVF_OFFICERS_FROM_FILING  (1u << 1) /* officers were taken from the filing */
#define RK_EVF_FILING_KNOWN          (1u << 2) /* task_id names a known filing */
/* An inspection.filed or case.decided whose natural key (task_id, case_id)
 * was applied before with other values: it replaces the earlier event
 * everywhere (a rescheduled filing, a corrected fine). A detector keeps
 * what it needs of the earlier one to undo it (subtract the old fine, move
 * the old deadline). Delivered only to detectors built with ABI minor >= 1;
 * older plugins keep the first version. (Repeats with the same values are
 * never delivered at all.) */
#define RK_EVF_AMENDED               (1u << 3)
/* task_id names a filing applied within state.dedupe_window whose full
 * record has expired (state.task_retention): the task was filed, long ago;
 * filing_* are zero. Never set together with RK_EVF_FILING_KNOWN. */
#define RK_EVF_FILING_SEEN           (1u << 4)

/* One validated input event. Absent optional strings are NULL; absent
 * officers are n_officers == 0. All times are milliseconds since the epoch.
 *
 * Enrichment: when an event with a task_id lacks unit_id or officers and the
 * filing of that task is known, the daemon fills them in from the filing and
 * sets the matching RK_EVF_* flag, so every detector sees the same values. */
typedef struct rk_event {
    rk_event_type type;
    const char *type_name;          /* "inspection.filed", ... */
    int64_t ts;                     /* event time */
    rk_entry_ref ref;               /* where it came from */
    const char *stream_key;         /* e.g. "enforce:scan" */
    const char *entry_id;           /* e.g. "1740793800000-0" */

    const char *task_id;
    const char *unit_id;
    const char *enterprise_id;
    const char *case_id;
    const char *complaint_id;
    const char *region;
    const char *const *officers;
    size_t n_officers;

    int64_t planned_at;             /* inspection.filed: planned_at, default ts */
    int score;                      /* inspection.rated: 1..5 */
    double fine;                    /* case.decided: >= 0 */
    double confiscation;            /* case.decided: >= 0, default 0 */
    rk_case_source source;          /* case.opened */
    rk_leniency leniency;           /* case.decided */
    rk_review_outcome outcome;      /* case.review */

    const char *basis;              /* inspection.filed */
    const char *comment;            /* inspection.rated */
    const char *note;               /* inspection.reported */
    const char *category;           /* case.complaint */
    const char *item_code;          /* case.decided; case.opened (minor 3) */
    size_t n_items;                 /* inspection.filed: length of items */

    unsigned flags;                 /* RK_EVF_* */
    /* Filing of task_id when known (RK_EVF_FILING_KNOWN): its time, planned
     * time, enterprise and entry. Zero otherwise. */
    int64_t filing_ts;
    int64_t filing_planned_at;
    const char *filing_enterprise_id;
    rk_entry_ref filing_ref;

    /* ABI minor 3: the fields the supervision-practice detectors use.
     * Absent optional strings are NULL. */
    rk_inspection_kind kind;        /* inspection.filed: default PLAN */
    const char *joint_id;           /* inspection.filed: filings sharing it
                                       are one joint inspection */
    const char *domain;             /* case.opened, case.decided, case.review */
    rk_case_level level;            /* case.decided */
    const char *issue;              /* case.review: the common problem found */
} rk_event;

#ifdef __cplusplus
}
#endif
#endif /* RISKD_EVENT_H */
