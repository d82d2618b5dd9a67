/* daemon/internal.h - prototypes shared between the daemon's files.
 *
 * Nothing here is part of the plugin ABI (that is include/riskd/). Names are
 * rk__ (shared across files) or static. Grouped by the file that defines
 * them. */
#ifndef RISKD_INTERNAL_H
#define RISKD_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "riskd/detector.h"
#include "riskd/event.h"
#include "riskd/kit.h"

#define RK_VERSION "0.1.0"

#define RK_ERRLEN 512

/* Dead-letter stream and data cut (riskd(8), INPUT). */
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

/* A bump arena (arena.c): allocations are slices of chained blocks, all
 * dropped at once by a rewind. Zero-initialise (min 16 KiB, keep_max
 * 256 KiB), or set min / keep_max before the first use. */
struct rk__arena_block;
typedef struct rk__arena {
    struct rk__arena_block *blocks; /* newest (largest) first */
    size_t next;                    /* size of the next first block (0 = min) */
    size_t size;                    /* bytes held in blocks (data only) */
    size_t min, keep_max;           /* 0: the defaults */
} rk__arena;

/* n bytes aligned for any type, valid until the next rewind; NULL when n
 * is absurd or memory runs out. */
void *rk__arena_alloc(rk__arena *a, size_t n);
/* Drop everything handed out. Keeps one block of at most keep_max bytes
 * (sized for the last tree) unless `all`, which frees every block. */
void rk__arena_rewind(rk__arena *a, bool all);

/* ===================================================================
 * jscan.c - the event's top-level JSON members in one pass
 * =================================================================== */

typedef enum rk__jkind {
    RK_J_NULL, RK_J_FALSE, RK_J_TRUE, RK_J_INT, RK_J_REAL, RK_J_STRING,
    RK_J_ARRAY, RK_J_OBJECT
} rk__jkind;

/* A JSON value, flat: scalars with their value; an array of a top-level
 * member with its elements (elements that are arrays or objects only with
 * their kind); an object only as its kind. */
typedef struct rk__jval {
    rk__jkind kind;
    const char *str;                /* STRING: NUL-terminated, no NUL inside */
    size_t len;                     /* STRING: bytes; ARRAY: elements */
    long long i;                    /* INT */
    double d;                       /* REAL */
    const struct rk__jval *elems;   /* ARRAY of a top-level member */
} rk__jval;

typedef struct rk__jmember {
    const char *key;                /* not NUL-terminated: keylen bytes */
    size_t keylen;
    rk__jval v;
} rk__jmember;

/* A JSON object's members in input order (unique keys). */
typedef struct rk__jobj {
    rk__jmember *m;
    size_t n;
} rk__jobj;

#define RK__JSCAN_OTHER (-1)
#define RK__JSCAN_MAX_MEMBERS 64

/* Read data (len bytes) as one JSON object into *out, strings and arrays
 * in the arena, keys pointing into data. Returns 0 only when jansson
 * (json_loadb, JSON_REJECT_DUPLICATES) would accept the input with the
 * same members and values; RK__JSCAN_OTHER for everything else, invalid or
 * unusual (see jscan.c), which the caller must give to jansson. */
int rk__jscan(const char *data, size_t len, rk__arena *arena, rk__jobj *out);
/* The same members from jansson's tree of an object (strings point into the
 * tree). Returns 0 or -1 when the arena runs out of memory. */
int rk__jobj_from_json(json_t *root, rk__arena *arena, rk__jobj *out);
/* One jansson value as an rk__jval (an array without its elements). */
void rk__jval_from_json(json_t *j, rk__jval *v);
/* The member `name`, or NULL. */
const rk__jval *rk__jobj_get(const rk__jobj *o, const char *name);

/* Storage behind a parsed event: the members its strings point into (from
 * rk__jscan, or from a JSON tree when the input took jansson's slow path),
 * the bump arena both are allocated from (event.c; rewound by the next
 * parse, the tree never json_decref'ed) and the officers array.
 * Zero-initialise before the first use; reusable. */
typedef struct rk__event_mem {
    rk__jobj obj;                   /* the event's members */
    json_t *root;                   /* slow path only, in the arena: never
                                       json_decref it; NULL otherwise */
    const char **officers;
    size_t officers_cap;
    rk__arena arena;
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

/* The dead-letter reason of a repeat of ev's natural key with other
 * values, naming the key ("task_id, enterprise_id: inspection.rated
 * already applied with other values; ..."). */
void rk__event_key_text(const rk_event *ev, char *out, size_t len);
/* Type name <-> enum ("inspection.filed"). NULL / RK_EV_UNKNOWN if none. */
const char *rk__event_type_name(rk_event_type t);
rk_event_type rk__event_type_from_name(const char *name);

/* ===================================================================
 * config.c - configuration file -> validated rk__config
 * =================================================================== */

typedef struct rk__config {
    /* redis */
    char *redis_host;
    int redis_port;
    char *redis_password;           /* NULL = none */
    char *redis_username;           /* NULL = none (password alone) */
    int redis_db;
    char **redis_sentinels;         /* redis.sentinels: "host:port" each */
    size_t n_sentinels;             /* 0 = no Sentinel: host/port used */
    char *redis_master_name;        /* redis.master_name (default "mymaster") */
    int redis_wait_replicas;        /* redis.wait_replicas (default 0 = no WAIT) */
    int64_t redis_wait_timeout;     /* redis.wait_timeout, ms (default 1s) */
    char **redis_cluster;           /* redis.cluster: seed nodes, "host:port" each */
    size_t n_cluster;               /* 0 = no Redis Cluster */
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
    char *alerts_open_key;          /* alerts.open_key (default "riskd:open") */
    char *alerts_language;          /* alerts.language: "zh-CN" (default) or "en" */
    int64_t keep_firing_for;        /* alerts.keep_firing_for, ms (default 1h) */
    int64_t open_ttl;               /* alerts.open_ttl, ms (default 30d) */
    bool lang_en;                   /* alerts.language "en" (default "zh-CN") */
    /* clock */
    bool wall_advance;
    int64_t clock_idle;             /* ms */
    int tz_offset_s;                /* clock.timezone in seconds */
    int64_t allowed_lateness;       /* clock.allowed_lateness, ms (default 0) */
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
    int64_t dedupe_window;          /* state.dedupe_window, ms (default 400d; 0 off) */
    int64_t claim_idle;             /* streams.claim_idle (default 60s) */
    int max_deliveries;             /* streams.max_deliveries (default 5) */
    int64_t lease_ttl;              /* state.lease_ttl, ms (default 5s) */
    int partitions;                 /* partitions (default 1) */
    int partition;                  /* which one this copy serves (node.c) */
    int64_t ind_window;             /* indicators.window, ms (default 30d) */
    bool ind_per_unit_metrics;      /* indicators.per_unit_metrics (default false) */
    /* web (riskweb only) */
    char *web_listen;               /* web.listen (default "127.0.0.1:9478") */
    char *web_host;                 /* parsed from web_listen */
    int web_port;
    char *web_token;                /* web.token: NULL = loopback clients only */
    int web_history;                /* web.history (default 500) */
    int64_t web_keepalive;          /* web.keepalive, ms (default 15s, at most 15s) */
    /* detectors: the object under "detectors" (borrowed from root); each
     * detector validates its own part, see registry.c. */
    json_t *detectors;
    json_t *root;                   /* the whole parsed file (owned) */
} rk__config;

/* Build a config from a parsed JSON document (takes a reference of its
 * own). Checks every key outside "detectors"; for "detectors" only that it
 * is an object of objects. Returns 0 and *out, or -1 with err naming the
 * key path ("streams.batch: expected an integer from 1 to 100000"). */
int rk__config_from_json(json_t *root, rk__config **out, char *err, size_t errlen);
/* Read and check a file; errors are prefixed with nothing but the key path
 * (or "<path>: <reason>" when the file cannot be read or is not JSON, with
 * line and column). */
int rk__config_load(const char *path, rk__config **out, char *err, size_t errlen);
void rk__config_free(rk__config *cfg);
/* config_print.c: the effective configuration of cfg as one JSON object
 * (every key, defaults filled in; riskd --print-config). NULL with err
 * when out of memory. */
json_t *rk__config_effective(const rk__config *cfg, char *err, size_t errlen);
/* The configuration of partition p (0-based) of base: a copy whose input
 * streams and state key carry the hash tag ":{p}" when base->partitions > 1.
 * p == base->partitions (rk__config_has_cross): the cross pipeline's, whose
 * state key carries ":{cross}" and group ":cross" (its input streams stay
 * the base names: it reads every partition's, cross.c). Returns 0 or -1
 * with err (out of memory). */
int rk__config_partition(const rk__config *base, int p, rk__config **out, char *err,
                         size_t errlen);
/* Is there a cross pipeline (the rules across partitions, cross.c)? With
 * partitions > 1 and not on a Redis Cluster, whose slots keep the
 * partitions' streams apart. */
static inline bool rk__config_has_cross(const rk__config *c)
{
    return c->partitions > 1 && c->n_cluster == 0;
}
/* Is c the cross pipeline's configuration (rk__config_partition)? */
static inline bool rk__config_is_cross(const rk__config *c)
{
    return rk__config_has_cross(c) && c->partition == c->partitions;
}

/* cross.c: the role of an engine of cfg: every rule (one partition, or a
 * Redis Cluster), a partition's (not the rules across units) or the cross
 * pipeline's (only those). */
enum { RK__ROLE_ALL, RK__ROLE_PARTITION, RK__ROLE_CROSS };
int rk__engine_role_of(const rk__config *cfg);
/* cross.c: is alert a of the built-in detector `detector` one of a rule
 * across units? */
bool rk__rule_is_cross(const char *detector, const rk_alert *a);

/* ===================================================================
 * addr.c - "host:port" address text
 * =================================================================== */

/* Split "host:port" (host without ':') or "[v6addr]:port" (host non-empty,
 * without brackets; port 0..65535 in decimal, no sign): *host points into s
 * for *hostlen bytes. 0, or -1 when the text is malformed. */
int rk__split_addr(const char *s, const char **host, size_t *hostlen, int *port);
/* Parse a connectable address (a sentinel, a cluster seed) "host:port"
 * (host non-empty, without ':') or "[v6addr]:port", port 1..65535 in
 * decimal. Copies the host (without brackets) into host (hostlen bytes, at
 * least 2) and the port into *port. Returns 0, or -1 when the text is
 * malformed or the host does not fit. */
int rk__parse_addr(const char *s, char *host, size_t hostlen, int *port);

/* ===================================================================
 * rules.c - built-in detectors, their rules, silenceable subject fields
 * =================================================================== */

typedef struct rk__detector_rules {
    const char *detector;
    const char *rules[8];           /* NULL-terminated */
} rk__detector_rules;

/* Every built-in detector with the rules it raises; ends with {NULL}. */
extern const rk__detector_rules rk__builtin_rules[];
/* The subject fields a silence's match may name; NULL-terminated. */
extern const char *const rk__silence_fields[];
/* The built-in detector of that name, or NULL. */
const rk__detector_rules *rk__builtin_detector(const char *name);
/* 1 when d raises rule, else 0. */
int rk__builtin_rule(const rk__detector_rules *d, const char *rule);
/* names (NULL-terminated) as "a, b, c" into buf (len bytes), cut to fit. */
void rk__known_words(char *buf, size_t len, const char *const *names);

/* ===================================================================
 * log.c - one line per thing worth logging
 * =================================================================== */

/* Log one line to stderr at a level: "<N>" priority prefixes when stderr is
 * the journal (JOURNAL_STREAM set), else "2025-03-01T09:30:00.000Z LEVEL ".
 * Lines below the minimum level (rk__log_set_level) are dropped. */
void rk__log(rk_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void rk__vlog(rk_log_level level, const char *prefix, const char *fmt, va_list ap);
void rk__log_set_level(rk_log_level min);
void rk__log_init(void);

/* ===================================================================
 * buf.c - printf into an rk_buf
 * =================================================================== */

/* Append printf-formatted text (at most 1023 bytes) to b. */
void rk__buf_printf(rk_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ===================================================================
 * prom.c - Prometheus text from numbers (families gathered, one label)
 * =================================================================== */

typedef struct rk__prom_family_t {
    char *name;
    rk_buf text;                    /* HELP, TYPE, then the samples */
} rk__prom_family_t;

typedef struct rk__prom {
    rk__prom_family_t *fam;
    size_t n, cap;
    rk__prom_family_t *cur;         /* the family samples go to */
    char label[64];                 /* put first on every sample; "" none */
} rk__prom;                         /* zero-initialised: empty */

/* Every sample added from now on gets label (e.g. partition="2"; NULL none). */
void rk__prom_label(rk__prom *m, const char *label);
/* Samples now go to family name; the first time, its header is head: the
 * "# HELP name ...\n# TYPE name type\n" lines, written out as they are. */
void rk__prom_family(rk__prom *m, const char *name, const char *head);
/* Add sample name (a family's name, or with _bucket/_sum/_count) to the
 * current family; fmt renders the rest: "{labels} value" or " value". */
void rk__prom_sample(rk__prom *m, const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Append every family to out (NULL: drop them) and free m. */
void rk__prom_finish(rk__prom *m, rk_buf *out);

/* ===================================================================
 * logrl.c - rate limits for log lines that input can trigger
 * =================================================================== */

#define RK_LOGRL_TEXT 384           /* text kept of the first held occurrence */
#define RK_LOGBUDGET_RATE 2.0       /* process-wide: lines a second ... */
#define RK_LOGBUDGET_BURST 10.0     /* ... and in a burst */

/* A token bucket: `rate` lines a second, at most `burst` at once. */
typedef struct rk__logbudget {
    double tokens;
    double rate, burst;
    int64_t at;                     /* wall ms of the last refill; INT64_MIN none */
} rk__logbudget;

/* One category of lines: at most one line per window (ms). */
typedef struct rk__logrl {
    int64_t window;
    int64_t last;                   /* when the last line went out; INT64_MIN none */
    int64_t held_since;             /* when the first held occurrence came */
    uint64_t held;                  /* occurrences not logged since the last line */
    char first[RK_LOGRL_TEXT];      /* the first of them */
} rk__logrl;

void rk__logbudget_init(rk__logbudget *b, double rate, double burst);
/* Take one line from b at wall time now (ms): true when one was left. */
bool rk__logbudget_take(rk__logbudget *b, int64_t now);
/* The budget every rate-limited line of the process shares. */
rk__logbudget *rk__logbudget_global(void);
void rk__logrl_init(rk__logrl *rl, int64_t window);
/* One occurrence at wall time now, described by text. Returns true when
 * the caller logs it now, in full: nothing is held, the window since the
 * last line has passed and b (NULL: no budget) gives a line. Otherwise it
 * is held (counted; text kept when it is the first held) and false. */
bool rk__logrl_hit(rk__logrl *rl, rk__logbudget *b, int64_t now, const char *text);
/* The summary due at now: true when occurrences are held, the window since
 * the last line has passed and b gives a line. Then *held is their number,
 * *elapsed the ms since the last line (or since the first held one when
 * none was logged yet), first (len bytes) the first one's text, and a new
 * window begins. False (nothing changed) otherwise. */
bool rk__logrl_flush(rk__logrl *rl, rk__logbudget *b, int64_t now, uint64_t *held,
                     int64_t *elapsed, char *first, size_t len);

/* ===================================================================
 * inputlog.c - late events, unknown types and bad entries: counted,
 * logged at a bounded rate
 * =================================================================== */

#define RK_INLOG_TYPES 100          /* unknown type names with a label of their own */
#define RK_INLOG_TYPES_STR "100"
#define RK_INLOG_TYPE_MAX 64        /* bytes of a type name kept */
#define RK_INLOG_LATE_BUCKETS 10

enum {
    RK_INLOG_INVALID,               /* "<stream>/<id>: <reason>", dead-lettered */
    RK_INLOG_TRIMMED,               /* "<stream>/<id>": pending, payload trimmed */
    RK_INLOG_POISON,                /* "<stream>/<id>: <reason>", dead-lettered */
    RK_INLOG_DETECTOR,              /* "<stream>/<id>: detector X failed ..." */
    RK_INLOG_TIMER,                 /* "detector X failed on timer K" */
    RK_INLOG__KINDS
};

typedef struct rk__inlog_type rk__inlog_type;

typedef struct rk__inlog {
    rk__logrl bad[RK_INLOG__KINDS];
    rk__logrl late_rl;
    uint64_t late[RK_STREAM_COUNT];
    uint64_t late_hist[RK_INLOG_LATE_BUCKETS];  /* per bucket, not cumulative */
    uint64_t late_count;
    double late_sum_ms;
    rk__inlog_type *types[RK_INLOG_TYPES];
    size_t ntypes;
    rk__inlog_type *other;          /* every type after the first RK_INLOG_TYPES */
    rk_map type_index;              /* name -> index + 1 in types */
    rk__logbudget *budget;          /* rk__logbudget_global(); tests may swap it */
} rk__inlog;

void rk__inlog_init(rk__inlog *l);
void rk__inlog_free(rk__inlog *l);
/* A bad entry of a kind (RK_INLOG_*), described by the printf text the
 * kind's comment shows; now is the wall time in ms. */
void rk__inlog_bad(rk__inlog *l, int kind, int64_t now, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Entry id of stream si (key `stream`) was read lateness ms behind the
 * watermark. */
void rk__inlog_late(rk__inlog *l, unsigned si, const char *stream, const char *id,
                    int64_t lateness, int64_t now);
/* Entry id of stream si had the unknown type `type` and was skipped. */
void rk__inlog_unknown(rk__inlog *l, unsigned si, const char *stream, const char *id,
                       const char *type, int64_t now);
/* Write the summaries due at now (call a few times a second). */
void rk__inlog_flush(rk__inlog *l, int64_t now);
/* riskd_unknown_events_total, riskd_late_events_total and
 * riskd_event_lateness_seconds, with HELP and TYPE lines. */
void rk__inlog_render(const rk__inlog *l, rk_buf *b, const char *const *stream_keys);
/* The same, added to m (prom.c). */
void rk__inlog_metrics(const rk__inlog *l, rk__prom *m, const char *const *stream_keys);
/* A span as its two largest units ("2d 3h", "5m", "10s", "250ms"). */
void rk__inlog_fmt_span(int64_t ms, char *buf, size_t len);

/* ===================================================================
 * redis.c - one Redis connection on the loop, reconnecting with backoff;
 * resolvers.c, resolve_static.c, resolve_sentinel.c, resolve_cluster.c -
 * where it connects (daemon/redis/conn.h holds the layer's insides)
 * =================================================================== */

typedef struct rk__redis rk__redis;
struct redisReply;

/* Reply callback: reply is NULL when the connection was lost (or closed)
 * before the reply arrived. The reply is freed when the callback returns. */
typedef void rk__redis_reply_cb(rk__redis *r, struct redisReply *reply, void *privdata);
/* Connection state callback: up is 1 when the connection became ready
 * (connected, authenticated, database selected), 0 when it was lost. */
typedef void rk__redis_state_cb(rk__redis *r, int up, void *ud);

typedef struct rk__redis_opts {
    const char *name;               /* for logs: "reader", "writer" */
    const char *host;
    int port;
    const char *username;           /* NULL: AUTH password only */
    const char *password;           /* NULL: no AUTH */
    int db;
    int64_t connect_timeout_ms;     /* default 5000 */
    int64_t reply_timeout_ms;       /* default 10000 (beyond any BLOCK) */
    int64_t backoff_min_ms;         /* default 100 */
    int64_t backoff_max_ms;         /* default 5000 */
    /* Sentinel mode (n_sentinels > 0): before every connect attempt the
     * sentinels ("host:port" each) are asked, in rotation, for the address
     * of master_name; host/port above are then only the fallback that
     * rk__redis_addr reports before the first answer. The connection is
     * ready only once ROLE says "master". */
    const char *const *sentinels;
    size_t n_sentinels;
    const char *master_name;
    /* Cluster mode (n_cluster_seeds > 0; sentinels are then ignored):
     * before every connect attempt the seeds ("host:port" each) and the
     * nodes learnt from the last answer are asked, in rotation, for
     * CLUSTER SHARDS; the connection goes to the online master of the
     * shard serving cluster_slot (0..16383; rk__redis_new refuses other
     * values). An ASK is followed (ASKING + the command on a connection
     * to the importing node; the callback gets that node's reply, possibly
     * after replies to later commands). A MOVED, TRYAGAIN or CLUSTERDOWN
     * reply to any command is handed to its callback as NULL and the
     * connection is dropped and resolved again, as after a lost
     * connection. */
    const char *const *cluster_seeds;
    size_t n_cluster_seeds;
    int cluster_slot;
    /* Build replies in an arena of the connection instead of a malloc per
     * node (for big replies, e.g. XREADGROUP batches). A reply is valid
     * only during its callback, as always. */
    int reply_arena;
} rk__redis_opts;

/* route.c: the Redis Cluster hash slot of a key (len bytes, need not be
 * NUL-terminated): CRC16 (XMODEM) mod 16384 of the key, or of its hash tag
 * when the key holds a "{...}" whose content is not empty (the first '{'
 * and the first '}' after it). */
unsigned rk__redis_keyslot(const char *key, size_t len);
/* route.c: what decides a key's Redis Cluster slot: the content of its
 * hash tag (the first "{...}" with something inside), else the whole key.
 * A key "x:{<tag>}:y" lives in the same slot as `key`. */
void rk__slot_tag(const char *key, char *out, size_t len);

struct uv_loop_s;
/* resolvers.c: create a connection with the resolver its options call
 * for (cluster seeds, sentinels, or host/port) and start connecting.
 * Returns NULL on allocation failure (or, in cluster mode, a cluster_slot
 * outside 0..16383). Options are copied. */
rk__redis *rk__redis_new(struct uv_loop_s *loop, const rk__redis_opts *opts,
                        rk__redis_state_cb *state_cb, void *ud);
/* opts.c: */
/* The connection options cfg gives (redis.*, Sentinel and Cluster
 * included), named `name` in logs; on a cluster the connection goes to the
 * node serving slot_key's slot. */
void rk__redis_opts_for(const rk__config *cfg, const char *name, const char *slot_key,
                        rk__redis_opts *o);
/* Send a command (argv form). Returns 0, or -1 when not connected (the
 * callback is then never called). extra_timeout_ms extends the reply
 * watchdog for this command (BLOCK time). */
int rk__redis_cmd(rk__redis *r, rk__redis_reply_cb *cb, void *privdata,
                  int64_t extra_timeout_ms, int argc, const char **argv,
                  const size_t *argvlen);
/* Write the commands queued on r now instead of when the loop next polls
 * it (a read ahead that Redis should work on while the caller goes on).
 * Safe inside r's own reply callbacks: a write error or what the socket
 * does not take is left to the loop's writable event. */
void rk__redis_flush(rk__redis *r);
int rk__redis_ready(const rk__redis *r);
int rk__redis_inflight(const rk__redis *r);
uint64_t rk__redis_reconnects(const rk__redis *r);
/* resolve_cluster.c: commands followed to an importing node after an ASK
 * (cluster mode; 0 otherwise). */
uint64_t rk__redis_asks(const rk__redis *r);
/* Drop the connection (deferred to the loop) and reconnect after backoff. */
void rk__redis_drop(rk__redis *r, const char *why);
/* Close for good; the memory is freed once libuv has closed the handles. */
void rk__redis_close(rk__redis *r);
/* The address r is connected to, or connecting to, or last resolved
 * through the sentinels or the cluster's slot map (before any answer: the
 * configured host/port).
 * *host stays valid until r is closed or resolves again. */
void rk__redis_addr(const rk__redis *r, const char **host, int *port);

/* ===================================================================
 * adapter.c - hiredis async contexts on the libuv loop
 * =================================================================== */

/* Attach a fresh hiredis async context to the loop with our adapter (an
 * error poll status reaches hiredis as readable + writable). Returns 0, or
 * -1 when the context already has an adapter or memory runs out. */
struct redisAsyncContext;
int rk__redis_attach(struct uv_loop_s *loop, struct redisAsyncContext *ac);

/* ===================================================================
 * clock.c - event time: the watermark and timers on it
 * =================================================================== */

/* The "detector" of the daemon's own timers: alerts.open_ttl closes (host.c;
 * checkpointed under the name RK__TIMER_OPEN_TTL_NAME, which no detector
 * can have). */
#define RK__TIMER_OPEN_TTL 0x7ffffffeu
#define RK__TIMER_OPEN_TTL_NAME "@open_ttl"

typedef struct rk__timer {
    int64_t deadline;
    uint64_t seq;                   /* arming order: ties fire in order */
    uint32_t det;                   /* detector index in the registry */
    uint64_t arg;
    char *key;
} rk__timer;

/* An engine reads nstreams input streams: 2 (its partition's scan and case
 * streams), or two per partition for the pipeline that reads them all,
 * stream si being of kind rk__stream_kind(si) (RK_STREAM_SCAN, _CASE). */
#define RK__MAX_STREAMS RK_STREAM_REF_LIMIT
static inline unsigned rk__stream_kind(unsigned si)
{
    return si % RK_STREAM_COUNT;
}

typedef struct rk__clock_stream {
    int64_t max_ts;                 /* largest ts read from the stream */
    bool has_ts;                    /* any read yet */
} rk__clock_stream;

typedef struct rk__clock {
    unsigned nstreams;              /* RK_STREAM_COUNT unless set (not saved) */
    rk__clock_stream two[RK_STREAM_COUNT];  /* theirs when nstreams is 2 */
    rk__clock_stream *many;         /* theirs when more (rk__clock_set_streams) */
    int64_t watermark;              /* INT64_MIN before any event */
    rk__timer *heap;
    size_t ntimers, cap;
    uint64_t seq;
    int64_t lateness;               /* clock.allowed_lateness, ms (not saved) */
} rk__clock;

/* A clock of RK_STREAM_COUNT streams. */
void rk__clock_init(rk__clock *c);
/* Forget the state (times, watermark, timers); the number of streams and
 * the lateness stay. */
void rk__clock_free(rk__clock *c);
/* rk__clock_free, and the memory of the streams (back to rk__clock_init). */
void rk__clock_release(rk__clock *c);
/* Read n streams (a fresh clock): 0, or -1 (memory). */
int rk__clock_set_streams(rk__clock *c, unsigned n);
/* Stream s's times (s < c->nstreams). */
static inline const rk__clock_stream *rk__clock_stream_of(const rk__clock *c, unsigned s)
{
    return c->many != NULL ? &c->many[s] : &c->two[s];
}
/* Record that an event of time ts was read from stream. */
void rk__clock_observe(rk__clock *c, unsigned stream, int64_t ts);
/* The watermark the contract defines, given which streams still hold
 * unread entries (unread[c->nstreams]): the smallest, over those, of the
 * largest ts read from each (INT64_MIN if one of them has none yet); when
 * none holds unread entries, the largest ts read. Does not change the
 * clock. */
int64_t rk__clock_candidate(const rk__clock *c, const bool *unread);
/* Move the watermark forward to w (never back). Returns 1 if it moved. */
int rk__clock_advance(rk__clock *c, int64_t w);
/* Hold every decision back by lateness ms (clock.allowed_lateness; < 0 is
 * read as 0). Kept across rk__clock_free and rk__clock_restore. */
void rk__clock_set_lateness(rk__clock *c, int64_t lateness);
/* The time decisions are taken at: the watermark minus the lateness,
 * INT64_MIN before any event, never below INT64_MIN + 1 after one. Timers
 * fire and state expires against this time; detectors get it as now(). */
int64_t rk__clock_now(const rk__clock *c);
/* Arm a timer; key is copied. Returns 0 or -1 (out of memory). */
int rk__clock_timer_add(rk__clock *c, int64_t deadline, uint32_t det,
                        const char *key, uint64_t arg);
/* Pop the earliest timer whose deadline the held-back time has passed
 * (deadline < rk__clock_now, i.e. deadline + lateness < watermark) into *out; the caller frees out->key. Returns 1,
 * or 0 when none is due. */
int rk__clock_pop_due(rk__clock *c, rk__timer *out);
/* Serialise / restore max_ts, watermark and timers (a clock of 2 streams
 * in the format of earlier releases; restore wants the number of streams
 * saved). Timers name their
 * detector by name through the callbacks, so indices may change between
 * runs; restore drops timers of detectors det_index() does not know (-1). */
void rk__clock_snapshot(const rk__clock *c, rk_buf *out,
                        const char *(*det_name)(uint32_t det, void *ud), void *ud);
int rk__clock_restore(rk__clock *c, const void *data, size_t len,
                      int (*det_index)(const char *name, void *ud), void *ud);
/* Would a watermark of w fire a timer (the rule of rk__clock_pop_due)? */
bool rk__clock_due_at(const rk__clock *c, int64_t w);

/* ===================================================================
 * openstore.c - the open alerts: one 48-byte record per alert written and
 * not yet resolved, retracted or closed, in slots that keep their number
 * until rk__ostore_tidy; found by (detector, key hash) and closed by
 * alerts.open_ttl in (ts, detector, id) order
 * =================================================================== */

typedef struct rk__oa {
    unsigned char id[16];           /* the alert id's 32 hex digits, packed */
    int64_t ts;                     /* the alert's; closed at ts + open_ttl */
    uint64_t keyhash;               /* its lookup key's hash; the id's first
                                       8 bytes until rk__ostore_rekey */
    int64_t resolve_at;             /* INT64_MAX: not known */
    uint16_t det;                   /* detector index; RK__OSTORE_FREE: a
                                       slot no longer in use */
    uint16_t rule;                  /* index into the store's rules; a
                                       removed record: its detector */
    uint32_t unit;                  /* index into the store's units */
} rk__oa;

#define RK__OSTORE_NO_RULE 0xffffu  /* restored from the release before */
#define RK__OSTORE_FREE 0xffffu     /* rk__oa.det of a removed record */
#define RK__OSTORE_NO_UNIT 0xffffffffu

/* Zero-initialise or rk__ostore_init. */
typedef struct rk__ostore {
    rk__oa *v;                      /* slots [0, n) of cap; live + dead */
    uint32_t n, cap, dead;          /* dead: removed slots in [0, n) */
    uint32_t *heap;                 /* slots by (ts, det, id); dead ones
                                       among them until popped or tidied */
    uint32_t nheap, capheap;
    uint32_t *idx;                  /* open addressing by (det, keyhash):
                                       live slots, UINT32_MAX empty */
    uint32_t capidx;
    uint32_t last;                  /* the slot of the last add */
    bool primed;                    /* rk__open_ops.prime: pdet's next */
    uint16_t pdet;                  /* emit, a notice of an alert at pts, */
    int64_t pts;                    /* is about the alert of id pid */
    unsigned char pid[16];
    char **rules;                   /* rule names by index */
    uint32_t nrules;
    char *ustr;                     /* the units (or a detector's extras),
                                       NUL-terminated, in one arena */
    uint32_t ulen, ucap, udead;     /* udead: bytes of units gone */
    uint32_t *uoff;                 /* by id: offset in ustr; UINT32_MAX free */
    uint32_t *urefs;                /* live records naming each; a free
                                       one: the next free id + 1 */
    uint32_t nunits, capunits, nulive;
    uint32_t ufree;                 /* first free id + 1, or 0 */
    uint32_t *uidx;                 /* open addressing: id + 1, 0 empty */
    uint32_t capuidx;               /* a power of two */
    uint64_t *rhash;                /* by rule index: the name's hash, the
                                       seed of its keys' hashes */
    uint32_t nrhash;
    struct {                        /* rules looked up lately, by hash: */
        uint64_t h;                 /* the name's */
        uint32_t idx;               /* UINT32_MAX: none while nrules was */
        uint32_t nrules;
    } rq[16];
} rk__ostore;

void rk__ostore_init(rk__ostore *s);
void rk__ostore_free(rk__ostore *s);
/* The index of rule (added when new), or -1 when out of memory. */
int rk__ostore_rule(rk__ostore *s, const char *rule);
const char *rk__ostore_rule_name(const rk__ostore *s, uint32_t rule);
/* The same for unit ids (interned for the records that need one). */
int rk__ostore_unit(rk__ostore *s, const char *unit);
const char *rk__ostore_unit_name(const rk__ostore *s, uint32_t unit);
/* Add open alert id of detector det at ts: 0 (s->last is its slot), 1
 * when it is open already, -1 (bad id, det past RK__OSTORE_FREE - 1, rule
 * past UINT16_MAX, out of memory: nothing added). Its key hash is the
 * id's until rk__ostore_rekey. May tidy (slot numbers change). */
int rk__ostore_add(rk__ostore *s, const char *id, int64_t ts, uint32_t det, uint32_t rule);
int rk__ostore_add_packed(rk__ostore *s, const unsigned char id[16], int64_t ts,
                          uint32_t det, uint32_t rule);
/* The slot of open alert id of det at ts while its key hash is its id's
 * (plugins' alerts; built-ins' until rekeyed), or -1. */
int rk__ostore_find(const rk__ostore *s, int64_t ts, uint32_t det, const char *id);
/* The record in slot (live or not), NULL past the slots. */
static inline const rk__oa *rk__ostore_at(const rk__ostore *s, uint32_t slot)
{
    return slot < s->n ? &s->v[slot] : NULL;
}
/* The hash a detector files its alerts of key under (seed: its rule's). */
uint64_t rk__ostore_keyhash(const char *key, size_t len, uint64_t seed);
/* The same of rule's key (seed: the rule's name hashed). */
uint64_t rk__ostore_rule_keyhash(const char *rule, const char *key);
/* The slots of det's records of rule filed under key (rk__ostore_rekey
 * with rk__ostore_rule_keyhash) whose ts lies in [from, to], in (ts, id)
 * order, in *out (malloc'd, NULL when none; the caller frees it): their
 * number, or -1 when out of memory. */
int rk__ostore_key_slots(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                         int64_t from, int64_t to, uint32_t **out);
/* Give the live record in slot a lookup key hash, resolve_at and unit
 * (RK__OSTORE_NO_UNIT: none). 0; 1 when the same alert (ts, id) was filed
 * under that hash already: slot is removed, the other one takes resolve_at
 * and unit; -1 (no live record there). */
int rk__ostore_rekey(rk__ostore *s, uint32_t slot, uint64_t keyhash, int64_t resolve_at,
                     uint32_t unit);
/* The live record in slot is no longer filed under a key: found by its
 * id again (rk__ostore_find), resolve_at not known; as rk__ostore_rekey. */
int rk__ostore_unfile(rk__ostore *s, uint32_t slot);
/* The live records of (det, keyhash), one slot a call; *it starts at 0.
 * -1 at the end. No add, remove, rekey or tidy between the calls. */
int rk__ostore_next_key(const rk__ostore *s, uint32_t det, uint64_t keyhash, uint32_t *it);
/* The alert leaves the store (resolved, retracted, closed); its slot keeps
 * its number (unused) until the next tidy. */
void rk__ostore_remove(rk__ostore *s, uint32_t slot);
/* Give back the removed slots once they are more than a sixteenth of the
 * store: the live records move together (slot numbers change). */
void rk__ostore_tidy(rk__ostore *s);
/* The earliest record whose ts + ttl is before now (the rule of
 * rk__clock_pop_due), removed into *out: 1; none due: 0. Tidies first. */
int rk__ostore_pop_due(rk__ostore *s, int64_t now, int64_t ttl, rk__oa *out);
bool rk__ostore_due_at(const rk__ostore *s, int64_t w, int64_t ttl);
static inline size_t rk__ostore_count(const rk__ostore *s)
{
    return (size_t)(s->n - s->dead);
}
/* Bytes held by the slots, the heap and the index, with their slack. */
size_t rk__ostore_bytes(const rk__ostore *s);
int rk__alert_id_pack(const char *hex, unsigned char out[16]);
void rk__alert_id_unpack(const unsigned char id[16], char out[33]);
/* Checkpoint section; detectors by name as rk__clock_snapshot. Restore
 * replaces *s only on success; reads the two formats of the releases
 * before too (the deadline heap: ts = deadline - ttl); records of unknown
 * detectors are dropped (counted in *dropped). */
void rk__ostore_snapshot(const rk__ostore *s, rk_buf *out,
                         const char *(*det_name)(uint32_t det, void *ud), void *ud);
int rk__ostore_restore(rk__ostore *s, const void *data, size_t len,
                       int (*det_index)(const char *name, void *ud), void *ud,
                       int64_t ttl, size_t *dropped);

/* ===================================================================
 * ticks.c - wall-clock ticks recorded in <state.key>:clock
 * =================================================================== */

/* One move of the watermark to the wall clock: the new watermark, and per
 * input stream (n of them) the last entry applied before it ({0, 0}:
 * none). pos is the tick's own array (rk__tick_init, rk__tick_free). */
typedef struct rk__tick {
    int64_t ts;
    unsigned n;
    rk_entry_ref *pos;
} rk__tick;

/* Ticks read back and still to apply, oldest first. Zero-initialise. */
typedef struct rk__ticks {
    rk__tick *q;
    size_t head, n, cap;
} rk__ticks;

#define RK_TICK_ARGS(n) (2 + 2 * (n))   /* field/value strings of n streams */
/* The fenced, idempotent append (see ticks.c): KEYS clock stream, epoch
 * key; ARGV epoch ("" unfenced), maxlen, the RK_TICK_ARGS strings. */
extern const char rk__tick_lua[];
/* A tick of n streams at ts 0, positions {0, 0} of streams 0..n-1: 0, or
 * -1 (memory). */
int rk__tick_init(rk__tick *k, unsigned n);
void rk__tick_free(rk__tick *k);
void rk__ticks_free(rk__ticks *t);
int rk__ticks_push(rk__ticks *t, const rk__tick *k);    /* a copy; 0 or -1 (memory) */
const rk__tick *rk__ticks_head(const rk__ticks *t);    /* NULL: none */
void rk__ticks_pop(rk__ticks *t);
size_t rk__ticks_count(const rk__ticks *t);
/* Parse one clock stream entry [id, [field, value, ...]] into out, a tick
 * of rk__tick_init whose out->n streams are named by stream_keys. Returns
 * 0, or -1 when it is not a tick. */
struct redisReply;
int rk__tick_parse(const struct redisReply *item, const char *const *stream_keys,
                   rk__tick *out);
/* The field/value strings of tick k into argv[RK_TICK_ARGS(k->n)]; numbers
 * are formatted in buf (k->n + 1 of them). */
void rk__tick_args(const rk__tick *k, const char *const *stream_keys,
                   char (*buf)[48], const char **argv);

/* ===================================================================
 * sink.c - alert JSON, alert ids, publish-once writes
 * =================================================================== */

/* The id of an alert of `detector`, a function of its content only: a
 * hash of the detector, rule, every subject field, ts and trigger_key (the
 * natural key of the event a per-event rule fired on, or NULL). 32
 * lowercase hex digits + NUL. */
void rk__alert_id(const char *detector, const rk_alert *a, const char *trigger_key,
                  char out[33]);
/* The id the previous release gave the same alert (from its trigger entry,
 * the last evidence entry), for the upgrade: see host.c host_emit. */
void rk__alert_id_v1(const char *detector, const rk_alert *a, char out[33]);

/* The alert JSON object (riskd(8), OUTPUT) as a malloc'ed compact string, or
 * NULL when out of memory. stream_keys names the input streams for the
 * evidence (NULL-terminated: an engine's e->stream_keys); tz_offset_s is
 * clock.timezone. */
/* The alert as a JSON object (what rk__alert_json writes), and that
 * object as the compact text written to the stream. */
json_t *rk__alert_object(const char *id, const char *detector, const rk_alert *a,
                         rk_severity severity, const char *const *stream_keys,
                         int tz_offset_s, int64_t emitted_at, const char *silenced_by);
char *rk__alert_dump(const json_t *alert);
char *rk__alert_json(const char *id, const char *detector, const rk_alert *a,
                     rk_severity severity, const char *const *stream_keys,
                     int tz_offset_s, int64_t emitted_at, const char *silenced_by);
/* The members of a notice that are its own, as a JSON fragment without
 * braces: "ts":..,"emitted_at":..,"reason":..[,"evidence":[..]][,"by":..]
 * (evidence only when n_evidence > 0, by when not NULL). malloc'ed, NULL
 * when out of memory. */
char *rk__notice_members(int64_t ts, int64_t emitted_at, int tz_offset_s, const char *reason,
                         const rk_entry_ref *evidence, size_t n_evidence,
                         const char *const *stream_keys, const char *by);
/* The notice of status for the alert JSON object `alert` (as written) with
 * the members of rk__notice_members: what the publish script writes, as a
 * new JSON object, or NULL. */
json_t *rk__notice_json(const json_t *alert, const char *status, const char *members);

typedef struct rk__outbox rk__outbox;
typedef struct rk__outbox_stats_t {
    uint64_t written;               /* alerts written */
    uint64_t duplicates;            /* alerts whose id was already written */
    uint64_t dead_written;          /* dead letters written */
    uint64_t errors;                /* error replies (retried) */
    uint64_t filed_elsewhere;       /* dropped: the filing register knows the task */
    uint64_t held;                  /* answers WAITING (a partition behind; retried) */
    uint64_t not_open;              /* notices dropped: their alert is not open */
    uint64_t notices_written;       /* notices written */
} rk__outbox_stats_t;

/* An outbox writes alerts and dead letters through the publish-once script
 * on the writer connection, keeps every item until Redis confirmed it, and
 * calls on_drained(ud) each time it becomes empty. */
rk__outbox *rk__outbox_new(struct uv_loop_s *loop, rk__redis *wr, const rk__config *cfg,
                          void (*on_drained)(void *ud), void *ud);
void rk__outbox_free(rk__outbox *o);
void rk__outbox_configure(rk__outbox *o, const rk__config *cfg);
/* Queue an alert (all strings copied); publish 0 writes it to the stream
 * only (a silenced alert). legacy_id: the id the previous release gave it,
 * or NULL; an alert written under it is not written again. 0 or -1. */
int rk__outbox_alert(rk__outbox *o, const char *id, const char *legacy_id,
                     const char *detector, const char *json, const char *silenced_by);
/* The same, checked against the filing register (register.c) before it is
 * written: keys[0..nkeys) and spec from rk__register_check. An alert the
 * register disproves is not written (stats filed_elsewhere); one that must
 * wait for a partition behind stays queued. */
int rk__outbox_alert_checked(rk__outbox *o, const char *id, const char *legacy_id,
                             const char *detector, const char *json, const char *silenced_by,
                             char keys[][320], size_t nkeys, const char *spec);
/* Queue the notice `status` ("resolved", "retracted", "closed") of alert id
 * of detector; members from rk__notice_members. The script writes it once
 * per (id, status) and only while the alert is open (else stats not_open).
 * 0 or -1. */
int rk__outbox_notice(rk__outbox *o, const char *id, const char *status,
                      const char *detector, const char *members);
/* Queue a dead letter for entry `entry_id` of `stream`. 0 or -1. */
int rk__outbox_dead(rk__outbox *o, const char *stream, const char *entry_id,
                    const char *error, const char *data, size_t datalen);
/* Start or continue sending (call when the writer becomes ready). */
void rk__outbox_kick(rk__outbox *o);
size_t rk__outbox_pending(const rk__outbox *o);
const rk__outbox_stats_t *rk__outbox_stats(const rk__outbox *o);
/* Fence every later write: the script writes only while GET key (or, with
 * a field, HGET key field) == epoch (the lease's epoch, see node.c). A write refused for that calls
 * on_fenced(ud, reason) once and the outbox sends nothing more. 0 or -1. */
int rk__outbox_set_fence(rk__outbox *o, const char *key, const char *field, long long epoch,
                         void (*on_fenced)(void *ud, const char *why));
/* On a Redis Cluster: the hash, in the alert stream's slot, mirroring each
 * partition's epoch for the publish-once script ("riskd:fence:{alerts}";
 * field: the partition's epoch key). */
void rk__fence_mirror_key(const rk__config *cfg, char *out, size_t len);
/* The hash counting, per silence id, the alerts each silence matched
 * ("riskd:silence_hits"; on a Redis Cluster "riskd:silence_hits:{<tag>}" in
 * the alert stream's slot), written by the publish script. */
#define RK_SILENCE_HITS_KEY "riskd:silence_hits"
void rk__silence_hits_key(const rk__config *cfg, char *out, size_t len);
/* The writer connection went down: everything in flight is resent later. */
void rk__outbox_writer_down(rk__outbox *o);

/* ===================================================================
 * registry.c - the detectors: built-ins and plugins, their configuration
 * =================================================================== */

struct rk__engine;

/* An open alert as rk__open_ops.alerts reports it. */
typedef struct rk__open_seen {
    int64_t ts, resolve_at;         /* resolve_at: INT64_MAX when not known */
    const char *unit;               /* the unit filed with it (a detector's
                                       extra: fields joined by 0x1f), or NULL */
    unsigned char id[16];           /* its id, packed (rk__open_ops.forget) */
} rk__open_seen;

typedef struct rk__open_ops {
    /* File the alert this detector's last emit raised (returned 1) under
     * key of its rule, with its resolve time (INT64_MAX: not known) and
     * unit (NULL: none). 0 (1: that alert was filed already, one record
     * kept), or -1 (its last emit raised none of rule, or out of memory). */
    int (*file)(rk_host *h, const char *rule, const char *key, int64_t resolve_at,
                const char *unit);
    /* The open alerts of rule filed under key, in (ts, id) order: the
     * first max of them in out (the unit good until the next call into
     * the host); returns how many there are, or -1. */
    int (*alerts)(rk_host *h, const char *rule, const char *key, rk__open_seen *out,
                  size_t max);
    /* Set the resolve time of rule's open alerts of key: how many, or -1. */
    int (*set_resolve)(rk_host *h, const char *rule, const char *key, int64_t resolve_at);
    /* Forget rule's open alerts of key with ts in [ts_from, ts_to] (and
     * the packed id, unless NULL) without a notice (the detector emitted
     * theirs): how many, or -1. */
    int (*forget)(rk_host *h, const char *rule, const char *key, int64_t ts_from,
                  int64_t ts_to, const unsigned char *id);
    /* Rule's open alerts of key with ts in [ts_from, ts_to] are no longer
     * the detector's: they stay open, found by their id, until a notice
     * or alerts.open_ttl ends them. How many, or -1. */
    int (*let_go)(rk_host *h, const char *rule, const char *key, int64_t ts_from,
                  int64_t ts_to);
    /* The detector's next emit, if it is a notice of an alert at ts, is
     * about the open alert of packed id: its id is that one, not the one
     * its subject would give (so a notice needs no subject field beyond
     * what its reason names). Any emit uses it up. */
    void (*prime)(rk_host *h, const unsigned char *id, int64_t ts);
} rk__open_ops;

/* openkeys.c - the store's side of rk__open_ops for detector det (the
 * engine's host and the test fake host both use it): file the store's
 * last add under (rule, key) (-1 when that is not an alert of det's rule);
 * a key's alerts in (ts, id) order (units good until the store changes);
 * move their resolve time; forget those with ts in [from, to] (and the
 * packed id unless NULL), telling gone() of each first; give them back to
 * their ids. Each returns as its rk__open_ops counterpart. */
int rk__ostore_file_last(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                         int64_t resolve_at, const char *unit);
int rk__ostore_key_alerts(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                          rk__open_seen *out, size_t max);
int rk__ostore_key_resolve(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                           int64_t resolve_at);
int rk__ostore_key_forget(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                          int64_t ts_from, int64_t ts_to, const unsigned char *id,
                          void (*gone)(const rk__oa *r, void *ud), void *ud);
int rk__ostore_key_unfile(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                          int64_t ts_from, int64_t ts_to);

/* Every rk_host a built-in detector is given starts with its open ops
 * (NULL in the instances a configuration check creates and destroys). */
static inline const rk__open_ops *rk__open_ops_of(rk_host *h)
{
    return *(const rk__open_ops *const *)(void *)h;
}

/* The handle a detector gets; host.c implements the host API on it. */
struct rk_host {
    const rk__open_ops *open;       /* first: rk__open_ops_of */
    struct rk__engine *eng;
    uint32_t idx;                   /* index in the registry, stable */
};
extern const rk__open_ops rk__host_open_ops;

typedef struct rk__det {
    char *name;                     /* instance: "<detector>" or "<detector>#<i>" */
    char *alert_name;               /* the detector's name, used in alerts */
    json_t *match;                  /* an override's match (routing), or NULL */
    uint32_t base;                  /* index of the base instance */
    const rk_detector_ops *ops;     /* NULL once a plugin was removed */
    void *dl;                       /* dlopen handle; NULL for built-ins */
    char *path;                     /* plugin path; NULL for built-ins */
    void *self;                     /* the instance; NULL when disabled */
    json_t *cfg;                    /* what create()/reconfigure() got */
    int severity;                   /* override, or -1 */
    struct rk_host host;
    void *cooldown;                 /* host.c: rk_map of cooldowns */
} rk__det;

typedef struct rk__registry {
    rk__det **dets;                 /* index = rk_host.idx; never shrinks */
    size_t n, cap;
} rk__registry;

/* Load the plugins of cfg, validate every detectors.<name> object and
 * create the enabled detectors, each with host {eng, idx}. On failure
 * nothing is left loaded and err names the key path
 * ("detectors.bad_rating.bad_score: expected ...", "plugins[0]: ..."). */
int rk__registry_load(rk__registry *reg, const rk__config *cfg,
                      const rk_host_api *api, struct rk__engine *eng,
                      char *err, size_t errlen);
/* Validate cfg's plugins and detectors without keeping anything (riskd -t
 * and the first phase of a reload). */
int rk__registry_check(const rk__config *cfg, char *err, size_t errlen);
/* Apply a new configuration: validate everything first (on error nothing
 * changes), then reconfigure changed detectors (state kept), leave
 * unchanged ones untouched, create newly enabled ones, destroy disabled
 * ones and unload removed plugins. on_removed(eng, idx) is called before a
 * detector instance is destroyed. */
int rk__registry_reload(rk__registry *reg, const rk__config *cfg,
                        const rk_host_api *api, struct rk__engine *eng,
                        void (*on_removed)(struct rk__engine *eng, uint32_t idx),
                        char *err, size_t errlen);
void rk__registry_free(rk__registry *reg);
/* Index of the detector of that name, or -1. */
int rk__registry_find(const rk__registry *reg, const char *name);
/* The names of every detector cfg provides (built-ins, then its plugins,
 * loaded to learn their names and closed again): a malloc'ed
 * NULL-terminated array of malloc'ed names into *names. Returns 0, or -1
 * with err (a plugin that does not load, a bad detectors section). Free
 * with rk__registry_names_free(). */
int rk__registry_names(const rk__config *cfg, char ***names, char *err, size_t errlen);
void rk__registry_names_free(char **names);

/* ===================================================================
 * tasks.c - the filings known so far, for enrichment
 * =================================================================== */

/* A filing record, cut from tasks.c's record blocks in filing order. It is
 * followed by its officers, then (wide records only) two int64_t
 * (planned_at, expires), then its task id with its NUL: read planned_at,
 * expires, the entry and the id with the rk__task_* functions. A record is
 * narrow when planned_at - ts fits in 32 bits and expires - max(ts,
 * planned_at) in 32 unsigned bits (30-day retention: 2.6e9 ms). */
typedef struct rk__task {
    void *hnext;                    /* next in its bucket of rk__tasks.map */
    const char *unit_id;            /* interned (rk__tasks.strings) */
    const char *enterprise_id;      /* interned */
    int64_t ts;                     /* when it was filed */
    uint64_t ref_ms;                /* its entry (rk__task_ref) */
    uint32_t ref_seq;
    int32_t planned_after;          /* narrow: planned_at - ts */
    uint32_t kept;                  /* narrow: expires - max(ts, planned_at) */
    unsigned int n_officers : 18;   /* a filing of more is not recorded */
    unsigned int dead : 1;          /* replaced by an amendment, not in map */
    unsigned int ref_stream : 12;   /* the engine's stream (< RK__MAX_STREAMS) */
    unsigned int wide : 1;          /* times stored in full after the officers */
    const char *officers[];         /* interned */
} rk__task;

typedef struct rk__tasks {
    rk_itab map;                    /* task_id -> rk__task (linked through
                                       rk__task.hnext); count: filings */
    rk_map strings;                 /* interned ids -> reference count */
    rk__task *head, *tail;          /* oldest and newest (filing order) */
} rk__tasks;

void rk__tasks_init(rk__tasks *t);
void rk__tasks_free(rk__tasks *t);
/* Record a filing. A filing of a task already recorded replaces it when
 * `amend` (an amendment, see dedupe.c); otherwise the first filing wins
 * while it lives. 0 or -1 (OOM). */
int rk__tasks_add(rk__tasks *t, const rk_event *filed, int64_t retention, bool amend);
/* The filing of task_id, or NULL when unknown or expired before `now`
 * (expired filings count as gone whether or not rk__tasks_expire has
 * dropped them yet, so results never depend on when expiry runs). */
const rk__task *rk__tasks_get(const rk__tasks *t, const char *task_id, int64_t now);
/* Fill unit_id / officers / filing_* of ev from its task's filing. */
void rk__tasks_enrich(const rk__tasks *t, rk_event *ev, int64_t now);
/* Drop filings that expired before `now`. */
void rk__tasks_expire(rk__tasks *t, int64_t now);
void rk__tasks_snapshot(const rk__tasks *t, rk_buf *out);
int rk__tasks_restore(rk__tasks *t, const void *data, size_t len);
/* The fields of a record k that are not plain members. */
const char *rk__task_id(const rk__task *k);
int64_t rk__task_planned_at(const rk__task *k);
int64_t rk__task_expires(const rk__task *k);
rk_entry_ref rk__task_ref(const rk__task *k);
/* The record after k in filing order (t->head first), or NULL after the
 * newest. */
const rk__task *rk__tasks_next(const rk__tasks *t, const rk__task *k);

/* ===================================================================
 * register.c - the filing register shared by the partitions
 * =================================================================== */

#define RK_REG_PERIOD_MS ((int64_t)32 * 86400000)  /* a register key's span */
#define RK_REG_MAX_PERIODS 48       /* period keys one lookup reads, at most */

typedef struct rk__register rk__register;
typedef struct rk__register_stats {
    uint64_t recorded;              /* filings written to the register */
    uint64_t errors;                /* failed calls (retried) */
} rk__register_stats;

/* A register writer on conn (the alert stream's connection) for partition
 * cfg->partition of cfg->partitions; on_drained(ud) when the last queued
 * filing is written. NULL when out of memory. */
rk__register *rk__register_new(rk__redis *conn, const rk__config *cfg,
                               void (*on_drained)(void *ud), void *ud);
void rk__register_free(rk__register *g);
/* Queue filing task_id at ts. 0 or -1 (out of memory). */
int rk__register_filed(rk__register *g, const char *task_id, int64_t ts);
/* The engine's watermark is wm: send what is queued, with wm when every
 * filing applied before it goes along (call between rounds, and to retry). */
void rk__register_watermark(rk__register *g, int64_t wm);
void rk__register_conn_down(rk__register *g);
size_t rk__register_pending(const rk__register *g);
const rk__register_stats *rk__register_stats_of(const rk__register *g);
/* The register's main key: riskd:filed (riskd:filed:{<tag>} on a cluster). */
void rk__register_key(const rk__config *cfg, char *out, size_t len);
/* Whether alerts of rule are checked against the register. */
bool rk__register_checks(const char *rule);
/* The publish script's check of an alert about task_id at deadline: keys
 * (the main key, then every period key to read: at most
 * RK_REG_MAX_PERIODS + 1) and spec. 0. */
int rk__register_check(const rk__config *cfg, const char *task_id, int64_t deadline,
                       char keys[][320], size_t *nkeys, char *spec, size_t speclen);

/* ===================================================================
 * dedupe.c - natural keys of the events applied (repeated events)
 * =================================================================== */

enum { RK_DEDUPE_NEW = 0, RK_DEDUPE_DUPLICATE, RK_DEDUPE_CHANGED };

typedef struct rk__dedupe {
    struct dd_bucket **b;           /* 65,536 buckets by the key's top bits */
    size_t count;                   /* keys remembered */
    size_t bytes;                   /* of the buckets (rk__dedupe_bytes) */
    int64_t window;                 /* state.dedupe_window, ms; 0 = off */
    int64_t swept_day;              /* day of the last expiry sweep */
} rk__dedupe;

/* The event's natural key (type and the fields that identify it) and the
 * digest of its values. -1 for a type without one (clock.tick). */
int rk__dedupe_event(const rk_event *ev, uint64_t *key, uint32_t *digest);
/* The key of the filing of task_id (as rk__dedupe_event gives it). */
uint64_t rk__dedupe_filing_key(const char *task_id);
/* Whether a changed repeat of this type is an amendment (filings and
 * decisions) rather than a conflict. */
bool rk__dedupe_amendable(rk_event_type t);
void rk__dedupe_init(rk__dedupe *d);
void rk__dedupe_free(rk__dedupe *d);
/* Set state.dedupe_window (ms; 0 turns deduplication off). */
void rk__dedupe_set_window(rk__dedupe *d, int64_t window);
/* RK_DEDUPE_NEW (not seen within the window before `now`), _DUPLICATE
 * (seen with the same digest) or _CHANGED (seen with another digest). */
int rk__dedupe_check(const rk__dedupe *d, uint64_t key, uint32_t digest, int64_t now);
/* Remember key with digest as applied at event time `applied` (the later
 * of its ts and the watermark). 0, or -1 when out of memory. */
int rk__dedupe_record(rk__dedupe *d, uint64_t key, uint32_t digest, int64_t applied);
/* Was a filing of task_id applied within the window before `now`? */
bool rk__dedupe_filing_known(const rk__dedupe *d, const char *task_id, int64_t now);
/* Forget keys a window older than `now` (sweeps at most once a week). */
void rk__dedupe_expire(rk__dedupe *d, int64_t now);
size_t rk__dedupe_count(const rk__dedupe *d);
/* Bytes allocated for the keys (bucket array and buckets). */
size_t rk__dedupe_bytes(const rk__dedupe *d);
void rk__dedupe_snapshot(const rk__dedupe *d, rk_buf *out);
/* Replace the keys with a snapshot's. 0, or -1 (corrupt; unchanged). */
int rk__dedupe_restore(rk__dedupe *d, const void *data, size_t len);

/* ===================================================================
 * silence.c - operators' silences (riskd:silences), matched at emit
 * =================================================================== */

#define RK_SILENCES_KEY "riskd:silences"
#define RK_AUDIT_STREAM "riskd:audit"

typedef struct rk__silences rk__silences;
rk__silences *rk__silences_new(void);
void rk__silences_free(rk__silences *s);
/* Replace the set from an HGETALL reply's values (JSON objects, see the
 * README); malformed ones are skipped and counted. Returns how many. */
size_t rk__silences_load(rk__silences *s, const char *const *values,
                         const size_t *lens, size_t n);
/* Does an active silence (now_wall < until) cover this alert? */
bool rk__silences_match(const rk__silences *s, const char *detector,
                        const rk_alert *a, int64_t now_wall);
/* The id of the first active silence covering this alert, or NULL. */
const char *rk__silences_which(const rk__silences *s, const char *detector,
                               const rk_alert *a, int64_t now_wall);
/* rk__silences_load with the records' hash fields (ids[i], id_lens[i]):
 * the id of a record without an "id" member. */
size_t rk__silences_load_ids(rk__silences *s, const char *const *ids, const size_t *id_lens,
                             const char *const *values, const size_t *lens, size_t n);
size_t rk__silences_count(const rk__silences *s);

/* ===================================================================
 * engine.c - read, apply, emit, acknowledge
 * =================================================================== */

typedef struct rk__engine rk__engine;

typedef struct rk__engine_stats_t {
    uint64_t events[RK_STREAM_COUNT][RK_EV__COUNT]; /* applied, by type */
    uint64_t invalid[RK_STREAM_COUNT];      /* dead-lettered */
    uint64_t unknown[RK_STREAM_COUNT];      /* unknown type, skipped */
    uint64_t trimmed[RK_STREAM_COUNT];      /* pending entry without payload */
    uint64_t replayed[RK_STREAM_COUNT];     /* already reflected, skipped */
    uint64_t duplicates[RK_EV__COUNT];      /* repeated events, skipped */
    uint64_t amended[RK_EV__COUNT];         /* amendments applied */
    uint64_t conflicts[RK_EV__COUNT];       /* changed repeats, dead-lettered */
    uint64_t detector_errors;               /* on_event/on_timer failures */
    uint64_t held_back;                     /* alerts silenced by cooldown */
    uint64_t alerts_emitted;
    uint64_t notices_emitted;               /* resolved/retracted/closed asked for */
    uint64_t batches;
    uint64_t group_rewinds;                 /* group set back to the state */
    uint64_t batch_hist[12];                /* processing time buckets */
    double batch_seconds_sum;
} rk__engine_stats_t;

/* Create the engine for cfg (the engine takes ownership of cfg) and start
 * connecting. Returns NULL with err on a detector/plugin error. */
rk__engine *rk__engine_new(struct uv_loop_s *loop, rk__config *cfg,
                          char *err, size_t errlen);

/* Replay (riskd --replay): the same engine reading both streams with XREAD
 * from explicit positions - no consumer group, no checkpoint, nothing
 * written to Redis - on event time only (clock.wall_advance is ignored).
 * Each alert is written to `out` as one JSON line (when out != NULL) and
 * collected; done(ud) is called once both streams are read to the end (or
 * past `to`). from/to: entry ids ("0" = the beginning, NULL = the end). */
typedef struct rk__replay_opts {
    const char *from;               /* first entry id read, inclusive */
    const char *to;                 /* last entry id read, inclusive */
    FILE *out;
    void (*done)(void *ud);
    void *ud;
} rk__replay_opts;
rk__engine *rk__engine_new_replay(struct uv_loop_s *loop, rk__config *cfg,
                                 const rk__replay_opts *ro, char *err, size_t errlen);
/* The alerts a replay raised: an object id -> {detector, rule, severity,
 * subject, ts} (borrowed). */
json_t *rk__engine_replay_alerts(const rk__engine *e);
/* The notices a replay wrote, in order (borrowed; "emitted_at" removed). */
json_t *rk__engine_replay_notices(const rk__engine *e);
/* Print the per detector/rule/severity table (count, distinct subjects). */
void rk__engine_replay_summary(const rk__engine *e, FILE *f);
/* input_replay.c: the replay's connections to Redis (up to max of them
 * into out; their number), for riskd --replay to watch. */
int rk__engine_replay_conns(const rk__engine *e, const rk__redis **out, int max);
/* Did the replay end because its connection to Redis was lost (so it is
 * incomplete)? */
bool rk__engine_replay_lost(const rk__engine *e);
/* Called once when the engine first consumes (groups ready, first read
 * sent) - systemd READY=1. */
void rk__engine_on_ready(rk__engine *e, void (*cb)(void *ud), void *ud);
/* Lease mode (node.c): the engine runs under `epoch`, the fencing token of
 * the partition's lease, instead of taking one at start; every alert, dead
 * letter, acknowledgement and checkpoint it writes is checked by Redis
 * against <state.key>:epoch. takeover: the first claim takes every entry
 * other consumers left pending, whatever its idle time. Once a write is
 * refused, or the loop finds uv_hrtime() past the time given to
 * rk__engine_lease_until (nothing is read before the first call), the
 * engine stops doing anything and calls lost(ud, why) once; the caller
 * then frees it (not from inside the callback). 0 or -1. */
int rk__engine_set_lease(rk__engine *e, long long epoch, bool takeover,
                         void (*lost)(void *ud, const char *why), void *ud);
void rk__engine_lease_until(rk__engine *e, uint64_t until_hr);
bool rk__engine_lost(const rk__engine *e);
/* Apply a new configuration (ownership of cfg passes to the engine on
 * success only). Keys that need a restart (redis.*, streams.*) keep their
 * old values and are logged. Returns 0 or -1 with err. */
int rk__engine_reload(rk__engine *e, rk__config *cfg, char *err, size_t errlen);
/* Stop cleanly: finish the batch in hand, write its alerts, acknowledge,
 * close connections; then call done(ud). */
void rk__engine_stop(rk__engine *e, void (*done)(void *ud), void *ud);
/* Publish an alert of detector "riskd", rule "config_rejected" (warning),
 * saying that reloading `path` failed with `error`. */
void rk__engine_reject_config(rk__engine *e, const char *path, const char *error);
void rk__engine_free(rk__engine *e);
/* 1 when both connections are up and the engine is consuming (and Redis
 * does not refuse its reads). */
int rk__engine_healthy(const rk__engine *e);
/* readerr.c: why Redis refuses the engine's reads, or NULL when the last
 * read succeeded. */
const char *rk__engine_read_error(const rk__engine *e);
/* Has the engine ever consumed (restored, set up, claimed)? */
bool rk__engine_ever_ready(const rk__engine *e);
/* The consumer lag last polled: *entries the sum over both streams of the
 * entries not yet delivered to the group (-1 unknown), *seconds the age of
 * the oldest entry not acknowledged (the larger of the two; -1 unknown). */
void rk__engine_lag(const rk__engine *e, long long *entries, double *seconds);
const rk__engine_stats_t *rk__engine_stats(const rk__engine *e);
const rk__config *rk__engine_config(const rk__engine *e);
/* Append the Prometheus text exposition of every riskd metric (with HELP
 * and TYPE lines) to out. */
void rk__engine_render_metrics(rk__engine *e, rk_buf *out);
/* The same, added to m with m's label (node.c: partition="p"). */
void rk__engine_metrics(rk__engine *e, rk__prom *m);

/* ===================================================================
 * replaywatch.c - riskd --replay gives up on an unreachable Redis
 * =================================================================== */

#define RK_REPLAY_REDIS_WAIT_MS 5000    /* a connection down this long ends the replay */

typedef struct rk__replay_watch rk__replay_watch;
/* Start watching (nothing yet) on loop. NULL when out of memory. */
rk__replay_watch *rk__replay_watch_new(struct uv_loop_s *loop);
/* Watch these connections (NULLs skipped) instead, from now. */
void rk__replay_watch_set(rk__replay_watch *w, const rk__redis *const *conns, int n);
/* NULL, or why the replay gives up (naming the address): one of the
 * connections watched has been down for RK_REPLAY_REDIS_WAIT_MS. */
const char *rk__replay_watch_failed(const rk__replay_watch *w);
/* Stop; freed once the loop has closed the timer. */
void rk__replay_watch_free(rk__replay_watch *w);

/* ===================================================================
 * node.c - leases, partitions and their engines (one process among several)
 * =================================================================== */

typedef struct rk__node rk__node;
/* Start taking part: heartbeat, acquire the leases of the partitions this
 * process is preferred for, run an engine for each one held. Takes
 * ownership of cfg. NULL with err on a detector/plugin error. */
rk__node *rk__node_new(struct uv_loop_s *loop, rk__config *cfg, char *err, size_t errlen);
/* cb(ud, active) once: when the first partition consumes (active) or when
 * the process settled as a standby holding nothing. */
void rk__node_on_ready(rk__node *n, void (*cb)(void *ud, bool active), void *ud);
/* Reload every engine held; keys needing a restart are kept (logged). */
int rk__node_reload(rk__node *n, rk__config *cfg, char *err, size_t errlen);
void rk__node_reject_config(rk__node *n, const char *path, const char *error);
/* Stop every engine cleanly, release the leases (a standby takes over at
 * once), leave the members; then done(ud). */
void rk__node_stop(rk__node *n, void (*done)(void *ud), void *ud);
void rk__node_free(rk__node *n);
/* The body of /healthz (malloc'ed JSON ending in a newline, NULL out of
 * memory): status (starting, consuming, standby, redis_down, stopping),
 * reason, lag, the partitions held; *healthy 1 only when consuming. */
char *rk__node_health(const rk__node *n, int *healthy);
void rk__node_render_metrics(rk__node *n, rk_buf *out);
/* Does this process hold (or is it taking over) any partition? */
bool rk__node_active(const rk__node *n);

/* ===================================================================
 * notify.c - the systemd notify protocol, spoken directly
 * =================================================================== */

/* Send one notify message ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when not under systemd, -1 on error. */
int rk__notify(const char *msg);
/* The watchdog interval from $WATCHDOG_USEC (and $WATCHDOG_PID), in ms;
 * 0 when systemd does not expect pings. */
int64_t rk__notify_watchdog_ms(void);

/* ===================================================================
 * metrics.c - GET /metrics and GET /healthz on a libuv TCP server
 * =================================================================== */

typedef struct rk__metrics rk__metrics;
/* Listen on host:port and serve /metrics (rk__node_render_metrics) and
 * /healthz (200 when rk__node_health, else 503). Returns NULL with
 * err when the address cannot be bound. */
rk__metrics *rk__metrics_start(struct uv_loop_s *loop, const char *host, int port,
                              rk__node *node, char *err, size_t errlen);
/* Close the listener and every client; memory is freed once libuv has
 * closed the handles. */
void rk__metrics_stop(rk__metrics *m);

/* ===================================================================
 * lists.c - the reference lists: CSV parsing, stored rows, lookups, the
 * tables in force; lists_sync.c - riskd follows the versions in Redis
 * =================================================================== */

/* Redis keys (riskd(8), LISTS), all in one Cluster slot ({lists}):
 * <prefix><kind> a hash row key -> compact JSON row; <prefix>version a hash
 * kind -> version; <prefix>info a hash kind -> JSON {rows, loaded_at, by,
 * file}; <prefix><kind>:loading:<id> a load being written. */
#define RK_LISTS_PREFIX "riskd:lists:{lists}:"
#define RK_LISTS_VERSION_KEY RK_LISTS_PREFIX "version"
#define RK_LISTS_INFO_KEY RK_LISTS_PREFIX "info"
#define RK_LIST_MAXCOLS 4

typedef enum rk__list_kind {
    RK_LIST_WHITELIST, RK_LIST_BENCHMARKS, RK_LIST_EXEMPT, RK_LIST_CREDENTIALS,
    RK_LIST_NAMES, RK_LIST__COUNT
} rk__list_kind;
enum { RK_EXEMPT_NONE, RK_EXEMPT_NO_PENALTY, RK_EXEMPT_LIGHTER };

/* A validated, read-only table of one kind. */
typedef struct rk__list rk__list;

/* The kind named `name` ("whitelist" ...), or -1. */
int rk__lists_kind(const char *name);
const char *rk__lists_kind_name(rk__list_kind k);
/* The kind's columns, in their canonical order (the order of riskctl(1)). */
size_t rk__lists_ncols(rk__list_kind k);
const char *rk__lists_col(rk__list_kind k, size_t col);
/* Parse a CSV file's bytes as a list of `kind`. Returns 0 and *out, or -1
 * with err: "line N, column NAME: <what was expected>" for the first
 * error. A header row alone gives an empty list; no header is an error. */
int rk__lists_parse_csv(rk__list_kind kind, const void *data, size_t len, rk__list **out,
                        char *err, size_t errlen);
/* Build a list from its stored rows (values of the kind's hash, each a
 * compact JSON row), checked as a file would be; rows sorted by key.
 * Returns 0 and *out, or -1 with err. */
int rk__lists_from_json(rk__list_kind kind, const char *const *vals, const size_t *lens,
                        size_t n, rk__list **out, char *err, size_t errlen);
void rk__lists_free(rk__list *l);
rk__list_kind rk__lists_kind_of(const rk__list *l);
size_t rk__lists_count(const rk__list *l);
/* Row i's value of column col ("" when empty) and source line (0: from Redis). */
const char *rk__lists_value(const rk__list *l, size_t i, size_t col);
unsigned rk__lists_line(const rk__list *l, size_t i);
/* Row i as a JSON object (new reference), as compact JSON (malloc'ed),
 * and its hash field: the key's value, or a JSON array of the key's two
 * values (malloc'ed). NULL when out of memory. */
json_t *rk__lists_row_object(const rk__list *l, size_t i);
char *rk__lists_row_json(const rk__list *l, size_t i);
char *rk__lists_row_field(const rk__list *l, size_t i);

/* The swap (KEYS staged, live, versions, info; ARGV kind, rows, info JSON
 * -> {new version, old version, old info}) and the fetch (KEYS versions,
 * live, info; ARGV kind -> {version, info, {rows}}) scripts. */
extern const char rk__lists_swap_lua[];
extern const char rk__lists_fetch_lua[];

/* Lookups (l may be NULL: no list loaded; each answers "not listed"). */
/* whitelist: the enterprise's allowance (inspections per 365 days). */
bool rk__lists_allowance(const rk__list *l, const char *enterprise_id, long long *out);
/* benchmarks: the range of item_code at level (the row of that level, else
 * the row with an empty level). */
bool rk__lists_benchmark(const rk__list *l, const char *item_code, const char *level,
                         double *min, double *max);
/* exempt: RK_EXEMPT_NONE, _NO_PENALTY or _LIGHTER. */
int rk__lists_exempt(const rk__list *l, const char *item_code);
/* credentials: does the officer hold a credential valid on `day` (days
 * since 1970-01-01, rk__lists_day; valid_from and valid_until inclusive)? */
bool rk__lists_credential_valid(const rk__list *l, const char *officer_id, int32_t day);
/* The calendar day of ms at the UTC offset tz_offset_s (clock.timezone). */
int32_t rk__lists_day(int64_t ms, int tz_offset_s);
/* names: the name of (kind "unit", "officer" ..., id), or NULL. */
const char *rk__lists_name(const rk__list *l, const char *kind, const char *id);

/* The tables in force in this process (one per kind; NULL and version 0
 * when none is loaded). A table stays valid until the next install, which
 * happens on the loop, never during a detector's callback. */
const rk__list *rk__lists_in_force(rk__list_kind kind);
long long rk__lists_version(rk__list_kind kind);
/* Put l (owned from now on; NULL: none) in force as `version`, freeing the
 * table it replaces. */
void rk__lists_install(rk__list_kind kind, rk__list *l, long long version);
/* riskd_list_version and riskd_list_rows, with HELP and TYPE lines. */
void rk__lists_render_metrics(rk_buf *out);

struct uv_loop_s;
typedef struct rk__lists_sync rk__lists_sync;
/* lists_sync.c: follow the lists in Redis for this process: every
 * RK_LISTS_POLL_MS, HGETALL the versions; a kind whose version differs from
 * the one in force is fetched (version and rows in one script) and
 * installed. first(ud), when given, is called once after the first poll
 * whose fetches all finished. NULL when out of memory. */
#define RK_LISTS_POLL_MS 2000
rk__lists_sync *rk__lists_sync_new(struct uv_loop_s *loop, const rk__config *cfg,
                                   void (*first)(void *ud), void *ud);
/* Stop polling and close the connection (memory freed once libuv closed
 * the handles). */
void rk__lists_sync_free(rk__lists_sync *s);
/* Its connection to Redis. */
const rk__redis *rk__lists_sync_redis(const rk__lists_sync *s);

/* ===================================================================
 * detectors/<name>.c - the built-in detectors (one ops table each)
 * =================================================================== */
extern const rk_detector_ops rk__det_unfiled_inspection;
extern const rk_detector_ops rk__det_bad_rating;
extern const rk_detector_ops rk__det_fine_growth;
extern const rk_detector_ops rk__det_complaint_cluster;
extern const rk_detector_ops rk__det_inspection_frequency;
extern const rk_detector_ops rk__det_discretion;
extern const rk_detector_ops rk__det_review_correction;
extern const rk_detector_ops rk__det_violation_hotspot;
extern const rk_detector_ops rk__det_officer_credential;

/* route.c */
/* The partition producers write an event to: CRC-32 (IEEE 802.3, as zlib's
 * crc32()) of the key's bytes - the unit_id - modulo partitions.
 * rk__crc32("123456789") is 0xCBF43926. */
uint32_t rk__crc32(const void *data, size_t len);
int rk__partition_of(const char *key, int partitions);

/* httpreq.c: one HTTP/1.x request read in pieces, bounded (see the file). */
#include <http_parser.h>
#define RK_HTTPREQ_MAX (8 * 1024)       /* bytes of request head */
#define RK_HTTPREQ_URL_MAX 2048
#define RK_HTTPREQ_HEADERS_MAX 40
#define RK_HTTPREQ_VALUE_MAX 1024
#define RK_HTTPREQ_WANT_MAX 8
typedef struct rk__httpreq {
    http_parser parser;
    int complete;                   /* the request is whole */
    int refuse;                     /* a status to refuse it with, or 0 */
    size_t received;
    char url[RK_HTTPREQ_URL_MAX + 1];
    size_t url_len;
    const char *query;              /* after '?' once path() split it */
    /* headers: the wanted ones kept, the others counted */
    const char *want[RK_HTTPREQ_WANT_MAX];
    size_t nwant, nheaders;
    char name[64];
    size_t name_len;
    int name_overflow, in_value, cur;
    int have[RK_HTTPREQ_WANT_MAX];
    char value[RK_HTTPREQ_WANT_MAX][RK_HTTPREQ_VALUE_MAX + 1];
    size_t value_len[RK_HTTPREQ_WANT_MAX];
} rk__httpreq;
/* Start reading a request; want[0..nwant) are the header names to keep
 * (compared without case; the strings must outlive r). */
void rk__httpreq_init(rk__httpreq *r, const char *const *want, size_t nwant);
/* Feed the next bytes: 0 more needed, 1 complete, else the HTTP status to
 * refuse the request with (400 malformed, 414 URL too long, 431 request or
 * a kept header too large, too many headers). A body is read and dropped. */
int rk__httpreq_feed(rk__httpreq *r, const char *buf, size_t len);
/* The path (the query cut off at '?', given in *query, or NULL). */
const char *rk__httpreq_path(rk__httpreq *r, const char **query);
int rk__httpreq_method(const rk__httpreq *r);   /* enum http_method */
/* The value of want[i], or NULL when the request did not carry it. */
const char *rk__httpreq_header(const rk__httpreq *r, size_t i);

/* ===================================================================
 * detectors/lifecycle.c - open alerts of window and sum rules until they
 * are resolved (needs riskd/kit.h)
 * =================================================================== */
typedef struct rk__open_alert {
    int64_t ts;                     /* the alert's ts (part of its id) */
    uint32_t x[2];                  /* the extra (subject fields beside the
                                       key): ids of its parts before and
                                       after the first PR_OPEN_SEP in the
                                       set's strings, 0 for none (read them
                                       with rk__open_field, rk__open_extra) */
} rk__open_alert;
/* One allocation per key: moves when it grows (rk__open_add), so a pointer
 * to it is good until the next rk__open_add to its set. */
typedef struct rk__openrec {
    int64_t resolve_at;             /* when to resolve; INT64_MAX: not known yet */
    uint32_t n, cap;
    rk__open_alert a[];
} rk__openrec;
typedef struct rk__openset {
    rk_map map;                     /* key -> rk__openrec */
    rk_map strs;                    /* interned string -> its id (from 1) */
    const char **byid;              /* id - 1 -> the string (NULL: free) */
    uint32_t *refs;                 /* id - 1 -> references (free: next free id) */
    uint32_t nids, capids, freeid;
    /* Bound (rk__open_bind): new keys' alerts live in the host's open
     * alerts (rk__open_ops), the map above keeps only keys read from an
     * older snapshot; rk__open_get's record of such a key is a copy in sc
     * (good until the next rk__open_get of the set), sunit its units. */
    rk_host *h;
    const char *rule;
    const char *(*rule_of)(const char *key);
    rk__openrec *sc;
    char *skey, **sunit;
    unsigned char (*sid)[16];       /* the scratch alerts' ids */
    uint32_t scap;
} rk__openset;
#define PR_OPEN_SEP '\x1f'          /* between the fields of an extra */
void rk__open_init(rk__openset *set);
void rk__open_clear(rk__openset *set);
/* Keep set's new alerts in h's open alerts under rule (a string that
 * outlives set); until then, and with a host without open ops, set keeps
 * them itself. rk__open_clear keeps the binding. */
void rk__open_bind(rk__openset *set, rk_host *h, const char *rule);
/* The same with the rule of each key given by rule_of (a set whose keys
 * name several rules). */
void rk__open_bind_by(rk__openset *set, rk_host *h, const char *(*rule_of)(const char *key));
rk__openrec *rk__open_get(const rk__openset *set, const char *key);
/* Record an alert fired for key at ts (extra copied). 0 or -1. */
int rk__open_add(rk__openset *set, const char *key, int64_t ts, const char *extra);
/* Part i (0: before the first PR_OPEN_SEP, or all; 1: after it) of oa's
 * extra, or NULL (no extra; no separator). Good while oa is open. */
const char *rk__open_field(const rk__openset *set, const rk__open_alert *oa, int i);
/* oa's extra as it was added ("" when none) in buf when it fits in n
 * bytes (else ""); returns the bytes it needs with its NUL (0: none). */
size_t rk__open_extra(const rk__openset *set, const rk__open_alert *oa, char *buf, size_t n);
/* Whether key's alerts in set are the host's (rk__open_bind, and key not
 * one of an older snapshot's): their notices take their ids from there
 * (rk__open_prime), so the extra need carry only what reasons name. */
int rk__open_bound(const rk__openset *set, const char *key);
/* The notice the detector emits next is about oa, an alert of the record
 * rk__open_get gave last: it takes oa's id from the host (bound sets; a
 * no-op for the set's own records, whose notices' subjects give their
 * ids). Call it right before that emit. */
void rk__open_prime(const rk__openset *set, const rk__open_alert *oa);
/* Forget alert i of r, a record of set (the others keep their order). */
void rk__open_remove(rk__openset *set, rk__openrec *r, uint32_t i);
/* Stop tracking key's alerts raised at ts_to or before without a notice:
 * the host keeps them open until alerts.open_ttl closes them (the set's
 * own are forgotten). Records from rk__open_get of set are stale after. */
void rk__open_let_go(rk__openset *set, const char *key, int64_t ts_to);
void rk__open_drop(rk__openset *set, const char *key);
/* key's condition stops holding at stops_at (exclusive) without new
 * events: its resolve time is stops_at + keep. Returns 1 with *arm_at set
 * when that is a new time (arm a timer there), else 0 (no open alert, or
 * unchanged). */
int rk__open_due(const rk__openset *set, const char *key, int64_t stops_at, int64_t keep,
                 int64_t *arm_at);
/* Open alerts over every key. */
size_t rk__open_count(const rk__openset *set);
void rk__open_put(rk_buf *out, const rk__openset *set);
/* Read what rk__open_put wrote into the empty set. 0, or -1 (rd->err set,
 * set emptied). */
int rk__open_read(rk_rd *rd, rk__openset *set);

#endif /* RISKD_INTERNAL_H */
