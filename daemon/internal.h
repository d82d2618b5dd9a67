/* daemon/internal.h - prototypes shared between the daemon's files.
 *
 * Nothing here is part of the plugin ABI (that is include/riskd/). Names are
 * rk__ (shared across files) or static. Grouped by the file that defines
 * them. */
#ifndef RISKD_INTERNAL_H
#define RISKD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "riskd/detector.h"
#include "riskd/event.h"

#define RK_VERSION "0.1.0"

#define RK_ERRLEN 512

/* Dead-letter stream and data cut (CONTRACT §1). */
#define RK_DEAD_STREAM "riskd:dead"
#define RK_DEAD_DATA_MAX (64 * 1024)

/* ===================================================================
 * timeutil.c - event times
 * =================================================================== */

/* Parse an RFC 3339 date-time ("2025-03-01T09:30:00+08:00",
 * "2025-03-01T01:30:00.250Z"; 'T' or 't', 'Z' or 'z' or ±hh:mm, any number
 * of fraction digits, truncated to ms; second 60 accepted as a leap second
 * and read as 59.999). Stores ms since the epoch in *out and returns 0, or
 * returns -1 when the text is not such a time or a field is out of range. */
int rk__parse_rfc3339(const char *s, int64_t *out);

/* Format ms since the epoch as RFC 3339 with milliseconds at the given UTC
 * offset in seconds ("2025-03-01T09:30:00.000+08:00"; offset 0 gives "Z").
 * buf must hold at least 32 bytes. */
void rk__format_rfc3339(int64_t ms, int offset_s, char *buf, size_t len);




/* Wall-clock time in ms since the epoch. */
int64_t rk__wall_ms(void);

/* ===================================================================
 * event.c - JSON entry -> typed rk_event
 * =================================================================== */

/* Storage behind a parsed event: the JSON tree its strings point into and
 * the officers array. Zero-initialise before the first use; reusable. */
typedef struct rk__event_mem {
    json_t *root;
    const char **officers;
    size_t officers_cap;
} rk__event_mem;

#define RK_PARSE_OK       0
#define RK_PARSE_UNKNOWN  1         /* valid JSON object of an unknown type */
#define RK_PARSE_INVALID (-1)       /* dead-letter: err names the field */

/* Parse one entry's `data` value (data, len; need not be NUL-terminated)
 * into *ev. ev->ref/stream_key/entry_id are left for the caller. Returns
 * RK_PARSE_OK; RK_PARSE_UNKNOWN with ev->type_name pointing at the unknown
 * type; or RK_PARSE_INVALID with a one-line reason in err that starts with
 * the field name when one is to blame ("score: expected an integer from 1
 * to 5", "task_id: missing", "ts: expected an RFC 3339 time or epoch
 * milliseconds", "not JSON: ...", "not a JSON object"). The event's strings
 * live in mem until the next parse with the same mem or
 * rk__event_mem_free(). */
int rk__event_parse(const char *data, size_t len, rk_event *ev,
                    rk__event_mem *mem, char *err, size_t errlen);
void rk__event_mem_free(rk__event_mem *mem);

/* Type name <-> enum ("inspection.filed"). NULL / RK_EV_UNKNOWN if none. */
const char *rk__event_type_name(rk_event_type t);
rk_event_type rk__event_type_from_name(const char *name);

/* ===================================================================
 * config.c - configuration file -> validated rk_config
 * =================================================================== */

typedef struct rk_config {
    /* redis */
    char *redis_host;
    int redis_port;
    char *redis_password;           /* NULL = none */
    char *redis_username;           /* NULL = none (password alone) */
    int redis_db;
    /* streams */
    char *stream_key[RK_STREAM_COUNT];  /* scan, case */
    char *group;
    char *consumer;                 /* default: gethostname() */
    char *start;                    /* "0", "$" or an entry id */
    int batch;
    /* alerts */
    char *alerts_stream;
    char *channel_prefix;
    long long alerts_maxlen;
    int64_t dedupe_ttl;             /* ms */
    /* clock */
    bool wall_advance;
    int64_t clock_idle;             /* ms */
    int tz_offset_s;                /* clock.timezone in seconds */
    /* metrics */
    char *metrics_listen;           /* "" = off */
    char *metrics_host;             /* parsed from metrics_listen, or NULL */
    int metrics_port;
    /* additions (documented in the README) */
    char **plugins;                 /* paths of detector shared objects */
    size_t n_plugins;
    int64_t state_interval;         /* state.interval, ms (default 5s) */
    char *state_key;                /* state.key (default "riskd:state") */
    int64_t task_retention;         /* state.task_retention (default 30d) */
    int64_t claim_idle;             /* streams.claim_idle (default 60s) */
    int max_deliveries;             /* streams.max_deliveries (default 5) */
    /* detectors: the object under "detectors" (borrowed from root); each
     * detector validates its own part, see registry.c. */
    json_t *detectors;
    json_t *root;                   /* the whole parsed file (owned) */
} rk_config;

/* Build a config from a parsed JSON document (takes a reference of its
 * own). Checks every key outside "detectors"; for "detectors" only that it
 * is an object of objects. Returns 0 and *out, or -1 with err naming the
 * key path ("streams.batch: expected an integer from 1 to 100000"). */
int rk__config_from_json(json_t *root, rk_config **out, char *err, size_t errlen);
/* Read and check a file; errors are prefixed with nothing but the key path
 * (or "<path>: <reason>" when the file cannot be read or is not JSON, with
 * line and column). */
int rk__config_load(const char *path, rk_config **out, char *err, size_t errlen);
void rk__config_free(rk_config *cfg);

/* ===================================================================
 * detectors/*.c - the built-in detectors (one ops table each)
 * =================================================================== */
extern const rk_detector_ops rk__det_unfiled_inspection;
extern const rk_detector_ops rk__det_bad_rating;
extern const rk_detector_ops rk__det_fine_growth;
extern const rk_detector_ops rk__det_complaint_cluster;

#endif /* RISKD_INTERNAL_H */
