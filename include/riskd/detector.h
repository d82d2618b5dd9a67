/* riskd/detector.h - the detector ABI: the only public header a plugin needs
 * (with riskd/event.h for the input and riskd/kit.h for optional helpers).
 *
 * A detector is a const rk_detector_ops table. Built-in detectors are linked
 * into the daemon; a plugin is a shared object that exports one function,
 * RK_DETECTOR_ENTRY ("rk_detector_entry"), returning its table. The daemon
 * calls a detector only from its one event-loop thread, so a detector needs
 * no locking.
 *
 * The daemon hands every detector an rk_host_api table and an opaque rk_host
 * handle at create time; through them the detector emits alerts, arms timers
 * on event time and logs. Plugins therefore need no symbol from the daemon.
 *
 * Life of a detector instance:
 *   create(cfg)            validate cfg and build empty state, or fail with a
 *                          key-path error ("bad_score: expected ...").
 *   restore(blob)          optional: load a snapshot taken by snapshot().
 *   on_event / on_timer    driven by the input, in event time.
 *   reconfigure(cfg)       new thresholds, state kept. The daemon only calls
 *                          it with a cfg that create() accepted.
 *   snapshot()             serialise state for a checkpoint.
 *   destroy()
 */
#ifndef RISKD_DETECTOR_H
#define RISKD_DETECTOR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "riskd/event.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version.
 *
 * Checklist before changing anything in riskd/detector.h or riskd/event.h:
 *  - Adding a member at the END of rk_detector_ops, rk_host_api, rk_alert or
 *    rk_event: bump RK_ABI_MINOR. Old plugins leave it NULL/zero (the daemon
 *    must treat NULL as "not implemented"). A struct a plugin hands the
 *    daemon (rk_detector_ops, rk_alert) is as long as the plugin's minor
 *    made it: the daemon reads a member only when the plugin's
 *    ops->abi_minor is at least the minor that added it, and gives the
 *    plugin nothing its minor does not know (RK_EVF_AMENDED events).
 *    tests/plugins/minor_probe.c models a plugin of the previous minor:
 *    update it with the bump.
 *  - Anything else (reordering, removing, changing a type or a meaning):
 *    bump RK_ABI_MAJOR and reset RK_ABI_MINOR to 0. The daemon refuses
 *    plugins of another major and plugins of a newer minor than its own.
 *  - Never insert a member in the middle of a struct.
 */
#define RK_ABI_MAJOR 1
#define RK_ABI_MINOR 5                /* 1: RK_EVF_AMENDED, RK_EVF_FILING_SEEN,
                                         rk_alert.trigger_key
                                         2: rk_host_api.name_of, language
                                         3: rk_event kind, joint_id, domain,
                                         level, issue; rk_alert.item_code,
                                         domain; rk_host_api list lookups
                                         4: rk_alert.status, reason, change_ts
                                         (notices); rk_host_api.keep_firing_for
                                         5: rk_host_api.tz_offset */

#define RK_DETECTOR_ENTRY "rk_detector_entry"

typedef enum rk_severity {
    RK_SEV_INFO = 0,
    RK_SEV_WARNING = 1,
    RK_SEV_CRITICAL = 2
} rk_severity;

typedef enum rk_log_level {
    RK_LOG_DEBUG = 0,
    RK_LOG_INFO = 1,
    RK_LOG_NOTICE = 2,
    RK_LOG_WARNING = 3,
    RK_LOG_ERR = 4
} rk_log_level;

/* What an alert is about; unused fields are NULL. */
typedef struct rk_subject {
    const char *unit_id;
    const char *officer_id;
    const char *enterprise_id;
    const char *task_id;
    const char *case_id;
    const char *region;
} rk_subject;

#define RK_MAX_EVIDENCE 20

/* What an emit() says about an alert (ABI minor 4). FIRING raises it; the
 * others are notices about an alert raised before: the detector emits the
 * original alert's identifying content again (rule, subject, ts and
 * trigger_key), so that the daemon derives the same id, with the status,
 * a reason and the event time of the change. */
typedef enum rk_alert_status {
    RK_ALERT_FIRING = 0,
    RK_ALERT_RESOLVED = 1,          /* the condition stopped holding */
    RK_ALERT_RETRACTED = 2          /* late data shows it never held */
} rk_alert_status;

/* An alert as a detector emits it. The daemon copies everything it needs
 * before emit() returns.
 *
 * The alert id is a function of the alert's content only: the detector
 * name, rule, every subject field, ts and, when set, trigger_key. Never of
 * stream entry ids, wall time or a counter, so the same events written
 * again (to this Redis or another, under other entry ids) yield the same
 * ids. A rule that fires once per event whose subject and ts do not
 * already tell its events apart sets trigger_key to that event's natural
 * key. */
typedef struct rk_alert {
    const char *rule;               /* e.g. "officer_repeated" */
    rk_severity severity;           /* the rule's default; the daemon applies
                                       the detector's `severity` override */
    int64_t ts;                     /* event time that triggered it */
    rk_subject subject;
    double value;
    double threshold;
    const char *summary;            /* one human-readable sentence */
    const rk_entry_ref *evidence;   /* most recent last; only the last
                                       RK_MAX_EVIDENCE are kept */
    size_t n_evidence;
    int64_t cooldown;               /* ms: after this alert fires, the same
                                       rule and subject stay silent for this
                                       long in event time; 0 = no cooldown */
    /* ABI minor 1 */
    const char *trigger_key;        /* NULL, or the natural key of the one
                                       event a per-event rule fired on */
    /* ABI minor 3: two more subject fields (outside rk_subject, which is
     * embedded above and cannot grow). Part of the id like the others. */
    const char *item_code;          /* the enforcement matter, or NULL */
    const char *domain;             /* the field of enforcement, or NULL */
    /* ABI minor 4 */
    rk_alert_status status;         /* FIRING (0) raises the alert; RESOLVED
                                       or RETRACTED is a notice about the
                                       alert with this rule, subject, ts and
                                       trigger_key. A notice ignores
                                       severity, value, threshold, summary
                                       and cooldown; evidence lists the
                                       entries that caused the change (may
                                       be none). The daemon writes it once,
                                       and only while the alert is open. */
    const char *reason;             /* notice: one sentence, in the language
                                       rk_host_api.language gives */
    int64_t change_ts;              /* notice: event time of the change */
} rk_alert;

/* rk_host_api.exempt_kind (ABI minor 3). */
typedef enum rk_exempt_kind {
    RK_EXEMPT_KIND_NONE = 0,        /* not on the exempt list */
    RK_EXEMPT_KIND_NO_PENALTY = 1,  /* minor violation: no penalty at all */
    RK_EXEMPT_KIND_LIGHTER = 2      /* a lighter penalty is due */
} rk_exempt_kind;

/* rk_host_api.credential_valid (ABI minor 3). */
typedef enum rk_credential {
    RK_CREDENTIAL_NO_LIST = -1,     /* no credentials list is loaded */
    RK_CREDENTIAL_INVALID = 0,      /* not listed, or not valid that day */
    RK_CREDENTIAL_VALID = 1
} rk_credential;

typedef struct rk_host rk_host;     /* opaque, one per detector instance */

/* What the daemon offers a detector. */
typedef struct rk_host_api {
    uint32_t abi_major;
    uint32_t abi_minor;
    /* Emit an alert. Returns 1 when it will be published, 0 when cooldown
     * held it back, a negative value on failure (out of memory). With
     * status RESOLVED or RETRACTED (minor 4) it emits a notice instead:
     * 1 when queued (the daemon drops it when the alert is not open). */
    int (*emit)(rk_host *host, const rk_alert *alert);
    /* Ask for on_timer(key, arg) once now() passes `deadline` (ms,
     * strictly greater), i.e. the watermark passes deadline +
     * clock.allowed_lateness. Timers are kept, and checkpointed, by the
     * daemon. A timer cannot be cancelled: a detector checks its state
     * when it fires. Returns 0, or a negative value on failure. */
    int (*timer_set)(rk_host *host, int64_t deadline, const char *key,
                     uint64_t arg);
    /* The time the detector decides at (ms since the epoch): the watermark
     * held back by clock.allowed_lateness; INT64_MIN before any event. */
    int64_t (*now)(rk_host *host);
    /* Log one line at a level; the detector name is prefixed. */
    void (*log)(rk_host *host, rk_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    /* The stream key of an rk_stream ("enforce:scan"), for summaries. */
    const char *(*stream_name)(rk_host *host, unsigned stream);
    /* ABI minor 2: the text people read. */
    /* The name the `names` reference list gives the id of a kind ("unit",
     * "officer", "enterprise", "region", "item", "domain"), or NULL when
     * the list (or no list) does not know it. The list in force now: a
     * newly loaded list answers from the next call. The string stays
     * valid until the callback returns. */
    const char *(*name_of)(rk_host *host, const char *kind, const char *id);
    /* The language summaries are written in, "zh-CN" (the default) or
     * "en" (alerts.language, as in force now: a reload changes it). */
    const char *(*language)(rk_host *host);
    /* ABI minor 3: the reference lists in force (riskctl(1), LISTS). A
     * list can be replaced between two callbacks, never during one; what
     * a lookup returns is only valid until the callback returns. */
    /* whitelist: 1 and *allowance (inspections per 365 days) when the
     * enterprise is listed, else 0. */
    int (*whitelist_allowance)(rk_host *host, const char *enterprise_id,
                               long long *allowance);
    /* benchmarks: 1 and the fine range [*min, *max] of item_code at level
     * (the row of that level, else the row with an empty level; level
     * may be NULL), else 0. */
    int (*benchmark_range)(rk_host *host, const char *item_code,
                           const char *level, double *min, double *max);
    /* exempt: what the list says of item_code (rk_exempt_kind). */
    int (*exempt_kind)(rk_host *host, const char *item_code);
    /* credentials: does officer_id hold a credential valid on the
     * calendar day (clock.timezone) of ts? An rk_credential:
     * RK_CREDENTIAL_NO_LIST while no credentials list is loaded. */
    int (*credential_valid)(rk_host *host, const char *officer_id, int64_t ts);
    /* ABI minor 4 */
    /* alerts.keep_firing_for (ms): how long a window or sum rule's
     * condition must have stopped holding before its alert is resolved. */
    int64_t (*keep_firing_for)(rk_host *host);
    /* ABI minor 5 */
    /* clock.timezone as seconds east of UTC (+08:00: 28800), as in force
     * now: the zone calendar days are counted in (credential_valid's
     * days, dates in summaries). */
    int (*tz_offset)(rk_host *host);
} rk_host_api;

/* Growable byte buffer for snapshots (helpers in riskd/kit.h). */
typedef struct rk_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
    int oom;                        /* set when an append failed */
} rk_buf;

typedef struct rk_detector_ops {
    uint32_t abi_major;             /* RK_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;             /* RK_ABI_MINOR the plugin was built with */
    const char *name;               /* key under "detectors"; [a-z0-9_]+ */
    const char *description;        /* one line for logs and --version */

    /* Validate `cfg` (the object under detectors.<name>, never NULL, without
     * the keys "enabled" and "severity", which the daemon handles) and
     * create an instance with empty state. On error return NULL and write a
     * message that starts with the key path relative to the detector
     * ("officer_window: expected a duration ...") into err. */
    void *(*create)(const rk_host_api *api, rk_host *host, const json_t *cfg,
                    char *err, size_t errlen);
    /* Apply new thresholds, keeping state. Only called with a cfg that
     * create() accepted; returns 0, or negative with err set. */
    int (*reconfigure)(void *self, const json_t *cfg, char *err, size_t errlen);
    /* One event, in event-time order per stream. Returns 0, or a negative
     * value when the detector could not process it: the daemon then writes
     * the entry to the dead-letter stream naming the detector (the other
     * detectors still apply it). A detector that crashes the process on an
     * entry sees it again after the restart; after streams.max_deliveries
     * deliveries the daemon dead-letters it without applying it. */
    int (*on_event)(void *self, const rk_event *ev);
    /* A timer armed with timer_set() has passed. */
    int (*on_timer)(void *self, int64_t deadline, const char *key, uint64_t arg);
    /* Time moved to `now` (as now() gives it: the watermark held back by
     * clock.allowed_lateness): drop state that has left every window.
     * Called at most once per batch; may be NULL. */
    void (*on_watermark)(void *self, int64_t now);
    /* Append the whole state to `out`. Returns 0 or negative. May be NULL
     * for a stateless detector. */
    int (*snapshot)(void *self, rk_buf *out);
    /* Replace the state with one from snapshot(). On error (truncated or
     * corrupt data) leave the state empty, set err, return negative. */
    int (*restore)(void *self, const void *data, size_t len,
                   char *err, size_t errlen);
    void (*destroy)(void *self);
    /* Number of keys (units, officers, tasks ...) currently tracked, for
     * metrics. May be NULL. */
    size_t (*tracked_keys)(void *self);
} rk_detector_ops;

typedef const rk_detector_ops *(*rk_detector_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif /* RISKD_DETECTOR_H */
