/* daemon/lib/config.c - the configuration file -> a validated rk__config.
 *
 * The file is one JSON object (riskd(8), CONFIGURATION). rk__config_load reads it
 * (at most RK_CONFIG_MAX bytes), parses it with jansson and hands the tree
 * to rk__config_from_json, which walks it section by section: every section
 * is checked for unknown keys first, then each key is read with the typed
 * rk_kit_cfg_* getters of riskd/kit.h (defaults for absent keys, range
 * checks) or with the small static string helpers below. The first problem
 * stops the walk with an error that starts with the key path
 * ("streams.batch: expected an integer from 1 to 100000"), and everything
 * allocated so far is freed.
 *
 * Strings are copied into the struct, so it does not depend on the tree,
 * except "detectors": that object is left to the registry (each detector
 * validates its own part), so only its shape (an object of objects) is
 * checked here and cfg->detectors borrows it from cfg->root, which the
 * config keeps a reference to. When the file has no "detectors", an empty
 * object is stored into the root so the pointer is always valid. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "riskd/kit.h"
#include "internal.h"

/* Largest configuration file we read. */
#define RK_CONFIG_MAX (16 * 1024 * 1024)

/* ===================================================================
 * Defaults
 * =================================================================== */

#define DEF_REDIS_HOST      "127.0.0.1"
#define DEF_REDIS_PORT      6379
#define DEF_REDIS_DB        0
#define DEF_MASTER_NAME     "mymaster"
#define DEF_WAIT_REPLICAS   0
#define DEF_WAIT_TIMEOUT    RK_SECOND
#define MAX_WAIT_TIMEOUT    (60 * RK_SECOND)
#define DEF_STREAM_SCAN     "enforce:scan"
#define DEF_STREAM_CASE     "enforce:case"
#define DEF_GROUP           "riskd"
#define DEF_CONSUMER        "riskd"     /* when gethostname() fails */
#define DEF_START           "0"
#define DEF_BATCH           500
#define DEF_CLAIM_IDLE      (60 * RK_SECOND)
#define DEF_MAX_DELIVERIES  5
#define DEF_ALERTS_STREAM   "alerts"
#define DEF_CHANNEL_PREFIX  "alerts:"
#define DEF_ALERTS_MAXLEN   1000000
#define DEF_DEDUPE_TTL      (400 * RK_DAY)
#define DEF_OPEN_KEY        "riskd:open"
#define DEF_LANGUAGE        "zh-CN"
#define DEF_OPEN_TTL        (30 * RK_DAY)
#define DEF_KEEP_FIRING_FOR (60 * RK_MINUTE)
#define DEF_WALL_ADVANCE    1
#define DEF_CLOCK_IDLE      (60 * RK_SECOND)
#define DEF_ALLOWED_LATENESS 0
#define DEF_TIMEZONE        "+08:00"
#define DEF_METRICS_LISTEN  "127.0.0.1:9477"
#define DEF_WEB_LISTEN      "127.0.0.1:9478"
#define DEF_WEB_HISTORY     500
#define MAX_WEB_HISTORY     100000
#define DEF_WEB_KEEPALIVE   (15 * RK_SECOND)
#define DEF_STATE_INTERVAL  (5 * RK_SECOND)
#define DEF_STATE_KEY       "riskd:state"
#define DEF_TASK_RETENTION  (30 * RK_DAY)
#define DEF_DEDUPE_WINDOW   (400 * RK_DAY)
#define DEF_IND_WINDOW      (30 * RK_DAY)
#define DEF_LEASE_TTL       (5 * RK_SECOND)
#define DEF_PARTITIONS      1
#define MAX_PARTITIONS      1024

/* ===================================================================
 * String helpers
 * =================================================================== */

/* A copy of s (not NULL) or NULL when out of memory. */
static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* True when v is a JSON string without embedded NUL bytes (a C string can
 * carry it unchanged). */
static int is_cstring(const json_t *v)
{
    return json_is_string(v) &&
           strlen(json_string_value(v)) == json_string_length(v);
}

/* Read the string obj[key] (prefix is the path of obj, "redis.") into a
 * fresh copy in *out. An absent key gives a copy of def; when nullable, a
 * JSON null gives *out = NULL (def may then be NULL too, meaning "absent
 * gives NULL"). When nonempty, "" is refused. Returns 0, or -1 with err
 * naming the key when the value has another type, is empty when it must
 * not be, or memory runs out. */
static int cfg_string(const json_t *obj, const char *prefix, const char *key,
                      int nonempty, int nullable, const char *def, char **out,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    const char *s;

    *out = NULL;
    if (v == NULL || (nullable && json_is_null(v))) {
        s = v == NULL ? def : NULL;
    } else if (!is_cstring(v) || (nonempty && json_string_length(v) == 0)) {
        rk_kit_errf(err, errlen, "%s%s: expected a%s string%s", prefix, key,
                    nonempty ? " non-empty" : "", nullable ? " or null" : "");
        return -1;
    } else {
        s = json_string_value(v);
    }
    if (s == NULL)
        return 0;
    if ((*out = dupstr(s)) == NULL) {
        rk_kit_errf(err, errlen, "%s%s: out of memory", prefix, key);
        return -1;
    }
    return 0;
}

/* Read obj[key] as an integer in [min, max] (default def) into an int. */
static int cfg_int(const json_t *obj, const char *prefix, const char *key,
                   long long min, long long max, long long def, int *out,
                   char *err, size_t errlen)
{
    long long v;
    if (rk_kit_cfg_int(obj, prefix, key, min, max, def, &v, err, errlen) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parse a run of decimal digits at *p (at least one, value fitting in 64
 * bits) and advance *p past it. Returns 0 or -1. */
static int parse_u64_digits(const char **p)
{
    const char *s = *p;
    uint64_t n = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *p = s;
    return 0;
}

/* True when s is a stream start position: "$", "<ms>" or "<ms>-<seq>"
 * (each part decimal and fitting in 64 bits; "0" is one of these). */
static int valid_start(const char *s)
{
    if (strcmp(s, "$") == 0)
        return 1;
    if (parse_u64_digits(&s) != 0)
        return 0;
    if (*s == '-') {
        s++;
        if (parse_u64_digits(&s) != 0)
            return 0;
    }
    return *s == '\0';
}

/* Parse a UTC offset: "Z" or "+HH:MM" / "-HH:MM" with HH 00..23 and MM
 * 00..59. Stores the offset in seconds (east positive) in *out and returns
 * 0, or returns -1 for anything else. */
static int parse_timezone(const char *s, int *out)
{
    int h, m;
    if (strcmp(s, "Z") == 0) {
        *out = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 ||
        s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' || s[3] != ':' ||
        s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9')
        return -1;
    h = (s[1] - '0') * 10 + (s[2] - '0');
    m = (s[4] - '0') * 10 + (s[5] - '0');
    if (h > 23 || m > 59)
        return -1;
    *out = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return 0;
}

/* Parse a listen address (rk__split_addr; port 0 allowed). Stores a
 * malloc'ed copy of the host (without brackets) in *host and the port in
 * *port and returns 0; returns -1 when the text is malformed, -2 when out
 * of memory (*host is then NULL). */
static int parse_listen(const char *s, char **host, int *port)
{
    const char *hs;
    size_t len;

    *host = NULL;
    if (rk__split_addr(s, &hs, &len, port) != 0)
        return -1;
    if ((*host = malloc(len + 1)) == NULL)
        return -2;
    memcpy(*host, hs, len);
    (*host)[len] = '\0';
    return 0;
}

/* Check that obj[key] is absent or an object and that its keys are all in
 * `allowed`. Stores the section (or NULL when absent) in *sec. Returns 0 or
 * -1 with "<key>: expected an object" / "<key>.<k>: unknown key". */
static int cfg_section(const json_t *root, const char *key,
                       const char *const *allowed, const json_t **sec,
                       char *err, size_t errlen)
{
    char prefix[64];
    *sec = json_object_get(root, key);
    snprintf(prefix, sizeof(prefix), "%s.", key);
    return rk_kit_cfg_known_keys(*sec, prefix, allowed, err, errlen);
}

/* ===================================================================
 * Sections
 * =================================================================== */

/* Read the address list obj[key] of the redis section o (or NULL):
 * "sentinels" or "cluster". Absent or [] is none; otherwise an array of
 * "host:port" strings (see rk__parse_addr), copied into *out with
 * their number in *n. Returns 0 or -1 with err naming the key
 * ("redis.sentinels[1]: expected \"host:port\""). */
static int load_addrs(const json_t *o, const char *key, char ***out, size_t *n_out,
                      char *err, size_t errlen)
{
    const json_t *a = json_object_get(o, key);
    char host[256];
    size_t i, n;
    int port;

    if (a == NULL)
        return 0;
    if (!json_is_array(a)) {
        rk_kit_errf(err, errlen, "redis.%s: expected an array of "
                    "\"host:port\" strings", key);
        return -1;
    }
    n = json_array_size(a);
    if (n == 0)
        return 0;
    if ((*out = calloc(n, sizeof(**out))) == NULL) {
        rk_kit_errf(err, errlen, "redis.%s: out of memory", key);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!is_cstring(v) ||
            rk__parse_addr(json_string_value(v), host, sizeof(host), &port) != 0) {
            rk_kit_errf(err, errlen, "redis.%s[%zu]: expected \"host:port\"", key, i);
            return -1;
        }
        if (((*out)[i] = dupstr(json_string_value(v))) == NULL) {
            rk_kit_errf(err, errlen, "redis.%s: out of memory", key);
            return -1;
        }
        *n_out = i + 1;
    }
    return 0;
}

static int load_redis(const json_t *root, rk__config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "host", "port", "password", "username", "db", "sentinels",
        "master_name", "wait_replicas", "wait_timeout", "cluster", NULL
    };
    const json_t *o;

    if (cfg_section(root, "redis", keys, &o, err, errlen) != 0 ||
        cfg_string(o, "redis.", "host", 1, 0, DEF_REDIS_HOST, &c->redis_host,
                   err, errlen) != 0 ||
        cfg_int(o, "redis.", "port", 1, 65535, DEF_REDIS_PORT, &c->redis_port,
                err, errlen) != 0 ||
        cfg_string(o, "redis.", "password", 0, 1, NULL, &c->redis_password,
                   err, errlen) != 0 ||
        cfg_string(o, "redis.", "username", 1, 1, NULL, &c->redis_username,
                   err, errlen) != 0 ||
        cfg_int(o, "redis.", "db", 0, 2147483647LL, DEF_REDIS_DB, &c->redis_db,
                err, errlen) != 0)
        return -1;
    if (c->redis_username != NULL && c->redis_password == NULL) {
        rk_kit_errf(err, errlen, "redis.username: requires redis.password");
        return -1;
    }
    if (load_addrs(o, "sentinels", &c->redis_sentinels, &c->n_sentinels,
                   err, errlen) != 0 ||
        cfg_string(o, "redis.", "master_name", 0, 0, DEF_MASTER_NAME,
                   &c->redis_master_name, err, errlen) != 0)
        return -1;
    if (c->n_sentinels > 0 && c->redis_master_name[0] == '\0') {
        rk_kit_errf(err, errlen, "redis.master_name: expected a non-empty string "
                    "when redis.sentinels is set");
        return -1;
    }
    if (cfg_int(o, "redis.", "wait_replicas", 0, 1000, DEF_WAIT_REPLICAS,
                &c->redis_wait_replicas, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "redis.", "wait_timeout", 1, DEF_WAIT_TIMEOUT,
                            &c->redis_wait_timeout, err, errlen) != 0)
        return -1;
    if (c->redis_wait_timeout > MAX_WAIT_TIMEOUT) {
        rk_kit_errf(err, errlen, "redis.wait_timeout: expected a duration from 1ms "
                    "to 60s");
        return -1;
    }
    /* Redis Cluster: seed nodes; no Sentinel beside it (a cluster fails
     * over by itself) and only database 0 exists there. */
    if (load_addrs(o, "cluster", &c->redis_cluster, &c->n_cluster, err, errlen) != 0)
        return -1;
    if (c->n_cluster > 0 && c->n_sentinels > 0) {
        rk_kit_errf(err, errlen, "redis.cluster: cannot be combined with redis.sentinels");
        return -1;
    }
    if (c->n_cluster > 0 && c->redis_db != 0) {
        rk_kit_errf(err, errlen, "redis.db: must be 0 with redis.cluster (a Redis "
                    "Cluster has only database 0)");
        return -1;
    }
    return 0;
}

/* The default consumer name: this host's name, or "riskd". */
static char *default_consumer(void)
{
    char name[256];
    if (gethostname(name, sizeof(name)) != 0)
        return dupstr(DEF_CONSUMER);
    name[sizeof(name) - 1] = '\0';
    return dupstr(name[0] != '\0' ? name : DEF_CONSUMER);
}

static int load_streams(const json_t *root, rk__config *c, char *err,
                        size_t errlen)
{
    static const char *const keys[] = {
        "scan", "case", "group", "consumer", "start", "batch", "claim_idle",
        "max_deliveries", NULL
    };
    const json_t *o;

    if (cfg_section(root, "streams", keys, &o, err, errlen) != 0 ||
        cfg_string(o, "streams.", "scan", 1, 0, DEF_STREAM_SCAN,
                   &c->stream_key[RK_STREAM_SCAN], err, errlen) != 0 ||
        cfg_string(o, "streams.", "case", 1, 0, DEF_STREAM_CASE,
                   &c->stream_key[RK_STREAM_CASE], err, errlen) != 0)
        return -1;
    if (strcmp(c->stream_key[RK_STREAM_SCAN], c->stream_key[RK_STREAM_CASE]) == 0) {
        rk_kit_errf(err, errlen, "streams.case: must differ from streams.scan");
        return -1;
    }
    if (cfg_string(o, "streams.", "group", 1, 0, DEF_GROUP, &c->group,
                   err, errlen) != 0 ||
        cfg_string(o, "streams.", "consumer", 1, 1, NULL, &c->consumer,
                   err, errlen) != 0)
        return -1;
    if (c->consumer == NULL && (c->consumer = default_consumer()) == NULL) {
        rk_kit_errf(err, errlen, "streams.consumer: out of memory");
        return -1;
    }
    if (cfg_string(o, "streams.", "start", 1, 0, DEF_START, &c->start,
                   err, errlen) != 0 || !valid_start(c->start)) {
        rk_kit_errf(err, errlen, "streams.start: expected \"0\", \"$\" or a "
                    "stream id");
        return -1;
    }
    if (cfg_int(o, "streams.", "batch", 1, 100000, DEF_BATCH, &c->batch,
                err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "streams.", "claim_idle", RK_SECOND,
                            DEF_CLAIM_IDLE, &c->claim_idle, err, errlen) != 0 ||
        cfg_int(o, "streams.", "max_deliveries", 1, 1000, DEF_MAX_DELIVERIES,
                &c->max_deliveries, err, errlen) != 0)
        return -1;
    return 0;
}

static int load_alerts(const json_t *root, rk__config *c, char *err,
                       size_t errlen)
{
    static const char *const keys[] = {
        "stream", "channel_prefix", "maxlen", "dedupe_ttl", "language",
        "keep_firing_for", "open_ttl", "open_key", NULL
    };
    const json_t *o, *lang;

    if (cfg_section(root, "alerts", keys, &o, err, errlen) != 0 ||
        cfg_string(o, "alerts.", "stream", 1, 0, DEF_ALERTS_STREAM,
                   &c->alerts_stream, err, errlen) != 0 ||
        cfg_string(o, "alerts.", "channel_prefix", 0, 0, DEF_CHANNEL_PREFIX,
                   &c->channel_prefix, err, errlen) != 0 ||
        rk_kit_cfg_int(o, "alerts.", "maxlen", 1, 9007199254740991LL,
                       DEF_ALERTS_MAXLEN, &c->alerts_maxlen, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "alerts.", "dedupe_ttl", RK_SECOND,
                            DEF_DEDUPE_TTL, &c->dedupe_ttl, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "alerts.", "keep_firing_for", 0, DEF_KEEP_FIRING_FOR,
                            &c->keep_firing_for, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "alerts.", "open_ttl", RK_MINUTE, DEF_OPEN_TTL,
                            &c->open_ttl, err, errlen) != 0 ||
        cfg_string(o, "alerts.", "open_key", 1, 0, DEF_OPEN_KEY,
                   &c->alerts_open_key, err, errlen) != 0)
        return -1;
    lang = o != NULL ? json_object_get(o, "language") : NULL;
    if (lang != NULL && (!json_is_string(lang) ||
                         (strcmp(json_string_value(lang), "zh-CN") != 0 &&
                          strcmp(json_string_value(lang), "en") != 0))) {
        rk_kit_errf(err, errlen, "alerts.language: expected \"zh-CN\" or \"en\"");
        return -1;
    }
    c->alerts_language = dupstr(lang != NULL ? json_string_value(lang) : DEF_LANGUAGE);
    if (c->alerts_language == NULL) {
        rk_kit_errf(err, errlen, "alerts.language: out of memory");
        return -1;
    }
    c->lang_en = strcmp(c->alerts_language, "en") == 0;
    return 0;
}

/* On a Redis Cluster the publish script writes the open hash beside the
 * alert stream: both must hash to one slot. Without alerts.open_key the
 * default there is "riskd:open:{<the stream's hash tag>}"; a key given in
 * another slot is refused. 0, or -1 with err. */
static int check_open_slot(const json_t *root, rk__config *c, char *err, size_t errlen)
{
    const json_t *al = json_object_get(root, "alerts");
    if (c->n_cluster > 0 && (!json_is_object(al) || json_object_get(al, "open_key") == NULL)) {
        /* The default beside the stream: "riskd:open:{<its tag>}". */
        char tag[256], *k;
        size_t n;
        rk__slot_tag(c->alerts_stream, tag, sizeof(tag));
        n = strlen(DEF_OPEN_KEY) + strlen(tag) + 4;
        if ((k = malloc(n)) == NULL) {
            rk_kit_errf(err, errlen, "alerts.open_key: out of memory");
            return -1;
        }
        snprintf(k, n, DEF_OPEN_KEY ":{%s}", tag);
        free(c->alerts_open_key);
        c->alerts_open_key = k;
        return 0;
    }
    if (c->n_cluster == 0 ||
        rk__redis_keyslot(c->alerts_open_key, strlen(c->alerts_open_key)) ==
        rk__redis_keyslot(c->alerts_stream, strlen(c->alerts_stream)))
        return 0;
    rk_kit_errf(err, errlen, "alerts.open_key: \"%s\" must hash to the Redis Cluster slot "
                "of alerts.stream \"%s\" (give both the same hash tag, e.g. "
                "\"{alerts}:open\" beside \"{alerts}\")", c->alerts_open_key, c->alerts_stream);
    return -1;
}

static int load_clock(const json_t *root, rk__config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "wall_advance", "idle", "timezone", "allowed_lateness", NULL
    };
    const json_t *o, *tz;
    int wall;

    if (cfg_section(root, "clock", keys, &o, err, errlen) != 0 ||
        rk_kit_cfg_bool(o, "clock.", "wall_advance", DEF_WALL_ADVANCE, &wall,
                        err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "clock.", "idle", 100, DEF_CLOCK_IDLE,
                            &c->clock_idle, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "clock.", "allowed_lateness", 0, DEF_ALLOWED_LATENESS,
                            &c->allowed_lateness, err, errlen) != 0)
        return -1;
    c->wall_advance = wall != 0;
    tz = json_object_get(o, "timezone");
    if (tz != NULL ? !is_cstring(tz) ||
                     parse_timezone(json_string_value(tz), &c->tz_offset_s) != 0
                   : parse_timezone(DEF_TIMEZONE, &c->tz_offset_s) != 0) {
        rk_kit_errf(err, errlen, "clock.timezone: expected \"Z\" or an offset "
                    "such as \"+08:00\"");
        return -1;
    }
    return 0;
}

static int load_metrics(const json_t *root, rk__config *c, char *err,
                        size_t errlen)
{
    static const char *const keys[] = { "listen", NULL };
    const json_t *o;
    int rc;

    if (cfg_section(root, "metrics", keys, &o, err, errlen) != 0)
        return -1;
    if (cfg_string(o, "metrics.", "listen", 0, 0, DEF_METRICS_LISTEN,
                   &c->metrics_listen, err, errlen) != 0)
        goto bad;
    c->metrics_host = NULL;
    c->metrics_port = 0;
    if (c->metrics_listen[0] == '\0')
        return 0;
    rc = parse_listen(c->metrics_listen, &c->metrics_host, &c->metrics_port);
    if (rc == -2) {
        rk_kit_errf(err, errlen, "metrics.listen: out of memory");
        return -1;
    }
    if (rc == 0)
        return 0;
bad:
    rk_kit_errf(err, errlen, "metrics.listen: expected \"host:port\" or \"\"");
    return -1;
}

/* web.*: riskweb's own keys (riskd ignores them). */
static int load_web(const json_t *root, rk__config *c, char *err, size_t errlen)
{
    static const char *const keys[] = { "listen", "token", "history", "keepalive", NULL };
    const json_t *o;
    int rc;

    if (cfg_section(root, "web", keys, &o, err, errlen) != 0 ||
        cfg_string(o, "web.", "token", 1, 1, NULL, &c->web_token, err, errlen) != 0 ||
        cfg_int(o, "web.", "history", 0, MAX_WEB_HISTORY, DEF_WEB_HISTORY,
                &c->web_history, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "web.", "keepalive", 100, DEF_WEB_KEEPALIVE,
                            &c->web_keepalive, err, errlen) != 0)
        return -1;
    if (c->web_keepalive > DEF_WEB_KEEPALIVE) {
        rk_kit_errf(err, errlen, "web.keepalive: expected a duration from 100ms to 15s");
        return -1;
    }
    if (cfg_string(o, "web.", "listen", 1, 0, DEF_WEB_LISTEN, &c->web_listen,
                   err, errlen) != 0)
        return -1;
    rc = parse_listen(c->web_listen, &c->web_host, &c->web_port);
    if (rc == -2) {
        rk_kit_errf(err, errlen, "web.listen: out of memory");
        return -1;
    }
    if (rc != 0) {
        rk_kit_errf(err, errlen, "web.listen: expected \"host:port\"");
        return -1;
    }
    return 0;
}

static int load_state(const json_t *root, rk__config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "interval", "key", "task_retention", "lease_ttl", "dedupe_window", NULL
    };
    const json_t *o;

    if (cfg_section(root, "state", keys, &o, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "state.", "interval", 100, DEF_STATE_INTERVAL,
                            &c->state_interval, err, errlen) != 0 ||
        cfg_string(o, "state.", "key", 1, 0, DEF_STATE_KEY, &c->state_key,
                   err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "state.", "task_retention", RK_SECOND,
                            DEF_TASK_RETENTION, &c->task_retention,
                            err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "state.", "lease_ttl", RK_SECOND,
                            DEF_LEASE_TTL, &c->lease_ttl, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "state.", "dedupe_window", 0,
                            DEF_DEDUPE_WINDOW, &c->dedupe_window, err, errlen) != 0)
        return -1;
    if (c->lease_ttl > 10 * 60 * RK_SECOND) {
        rk_kit_errf(err, errlen, "state.lease_ttl: expected a duration from 1s to 10m");
        return -1;
    }
    return 0;
}

/* indicators: the rolling window (1d to 400d) and the per-unit series
 * on /metrics. */
static int load_indicators(const json_t *root, rk__config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"window", "per_unit_metrics", NULL};
    const json_t *o;
    int per_unit;

    if (cfg_section(root, "indicators", keys, &o, err, errlen) != 0 ||
        rk_kit_cfg_duration(o, "indicators.", "window", 0, DEF_IND_WINDOW,
                            &c->ind_window, err, errlen) != 0 ||
        rk_kit_cfg_bool(o, "indicators.", "per_unit_metrics", 0, &per_unit, err,
                        errlen) != 0)
        return -1;
    if (c->ind_window < RK_DAY || c->ind_window > 400 * RK_DAY) {
        rk_kit_errf(err, errlen, "indicators.window: expected a duration from 1d to 400d");
        return -1;
    }
    c->ind_per_unit_metrics = per_unit != 0;
    return 0;
}

static int load_plugins(const json_t *root, rk__config *c, char *err,
                        size_t errlen)
{
    const json_t *a = json_object_get(root, "plugins");
    size_t i, n;

    if (a == NULL)
        return 0;
    if (!json_is_array(a)) {
        rk_kit_errf(err, errlen, "plugins: expected an array of paths");
        return -1;
    }
    n = json_array_size(a);
    if (n == 0)
        return 0;
    if ((c->plugins = calloc(n, sizeof(*c->plugins))) == NULL) {
        rk_kit_errf(err, errlen, "plugins: out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!is_cstring(v) || json_string_length(v) == 0) {
            rk_kit_errf(err, errlen, "plugins[%zu]: expected a non-empty string",
                        i);
            return -1;
        }
        if ((c->plugins[i] = dupstr(json_string_value(v))) == NULL) {
            rk_kit_errf(err, errlen, "plugins: out of memory");
            return -1;
        }
        c->n_plugins = i + 1;
    }
    return 0;
}

/* Check "detectors" (an object of objects) without storing anything. */
static int check_detectors(const json_t *root, char *err, size_t errlen)
{
    const json_t *d = json_object_get(root, "detectors");
    const char *name;
    json_t *v;

    if (d == NULL)
        return 0;
    if (!json_is_object(d)) {
        rk_kit_errf(err, errlen, "detectors: expected an object");
        return -1;
    }
    json_object_foreach(rk_kit_unconst(d), name, v) {
        if (!json_is_object(v)) {
            rk_kit_errf(err, errlen, "detectors.%s: expected an object", name);
            return -1;
        }
    }
    return 0;
}

/* ===================================================================
 * Public functions
 * =================================================================== */

/* Build a validated config from the parsed document root (an object; the
 * config takes a reference of its own and, when root has no "detectors",
 * adds an empty one to it). On success stores the config in *out and
 * returns 0. Returns -1 with err naming the key path when root is not an
 * object ("config: expected a JSON object"), a key is unknown, a value has
 * the wrong type or range, or memory runs out; *out is then NULL. */
int rk__config_from_json(json_t *root, rk__config **out, char *err, size_t errlen)
{
    static const char *const top[] = {
        "redis", "streams", "alerts", "clock", "metrics", "detectors",
        "plugins", "state", "partitions", "indicators", "web", NULL
    };
    rk__config *c;

    *out = NULL;
    if (!json_is_object(root)) {
        rk_kit_errf(err, errlen, "config: expected a JSON object");
        return -1;
    }
    if (rk_kit_cfg_known_keys(root, "", top, err, errlen) != 0)
        return -1;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        rk_kit_errf(err, errlen, "config: out of memory");
        return -1;
    }
    if (load_redis(root, c, err, errlen) != 0 ||
        load_streams(root, c, err, errlen) != 0 ||
        load_alerts(root, c, err, errlen) != 0 ||
        check_open_slot(root, c, err, errlen) != 0 ||
        load_clock(root, c, err, errlen) != 0 ||
        load_metrics(root, c, err, errlen) != 0 ||
        load_state(root, c, err, errlen) != 0 ||
        load_indicators(root, c, err, errlen) != 0 ||
        load_web(root, c, err, errlen) != 0 ||
        load_plugins(root, c, err, errlen) != 0 ||
        cfg_int(root, "", "partitions", 1, MAX_PARTITIONS, DEF_PARTITIONS,
                &c->partitions, err, errlen) != 0 ||
        check_detectors(root, err, errlen) != 0)
        goto fail;

    c->detectors = json_object_get(root, "detectors");
    if (c->detectors == NULL) {
        json_t *empty = json_object();
        if (empty == NULL || json_object_set_new(root, "detectors", empty) != 0) {
            rk_kit_errf(err, errlen, "detectors: out of memory");
            goto fail;
        }
        c->detectors = empty;
    }
    c->root = json_incref(root);
    *out = c;
    return 0;

fail:
    rk__config_free(c);
    return -1;
}

/* Read the whole file at path (at most RK_CONFIG_MAX bytes) into a malloc'ed
 * buffer *data of *len bytes. Returns 0, or -1 with "<path>: <reason>". */
static int read_file(const char *path, char **data, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    size_t used = 0, cap = 0, n;
    int saved;

    *data = NULL;
    *len = 0;
    if ((f = fopen(path, "rb")) == NULL) {
        rk_kit_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (used == cap) {
            size_t ncap = cap ? cap * 2 : 64 * 1024;
            char *nb;
            if (ncap > (size_t)RK_CONFIG_MAX + 1)
                ncap = (size_t)RK_CONFIG_MAX + 1;
            if (ncap <= used)
                break;  /* cap + 1 bytes read: too large, checked below */
            if ((nb = realloc(buf, ncap)) == NULL) {
                rk_kit_errf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0) {
            if (ferror(f)) {
                saved = errno;
                rk_kit_errf(err, errlen, "%s: %s", path,
                            strerror(saved ? saved : EIO));
                goto fail;
            }
            break;
        }
    }
    if (used > RK_CONFIG_MAX) {
        rk_kit_errf(err, errlen, "%s: file too large", path);
        goto fail;
    }
    fclose(f);
    *data = buf;
    *len = used;
    return 0;

fail:
    free(buf);
    fclose(f);
    return -1;
}

/* Read, parse and check the configuration file at path. On success stores
 * the config in *out and returns 0. Returns -1 with err set when the file
 * cannot be read ("<path>: No such file or directory"), is larger than
 * 16 MiB ("<path>: file too large"), is not JSON ("<path>: line 3 column 5:
 * <jansson's reason>"; duplicate keys count as not JSON), is not an object
 * ("<path>: expected a JSON object"), or fails rk__config_from_json (then
 * err is the key path and reason, without the file name). */
int rk__config_load(const char *path, rk__config **out, char *err, size_t errlen)
{
    char *data;
    size_t len;
    json_t *root;
    json_error_t jerr;
    int rc;

    *out = NULL;
    if (read_file(path, &data, &len, err, errlen) != 0)
        return -1;
    root = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    free(data);
    if (root == NULL) {
        rk_kit_errf(err, errlen, "%s: line %d column %d: %s", path, jerr.line,
                    jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        rk_kit_errf(err, errlen, "%s: expected a JSON object", path);
        json_decref(root);
        return -1;
    }
    rc = rk__config_from_json(root, out, err, errlen);
    json_decref(root);
    return rc;
}

/* Replace *slot by "<*slot><suffix>" (the old string is freed). 0 or -1. */
static int append_suffix(char **slot, const char *suffix)
{
    size_t a = strlen(*slot), b = strlen(suffix);
    char *s = malloc(a + b + 1);
    if (s == NULL)
        return -1;
    memcpy(s, *slot, a);
    memcpy(s + a, suffix, b + 1);
    free(*slot);
    *slot = s;
    return 0;
}

/* The configuration of partition p of base: a fresh copy of base (built
 * again from its JSON document) whose input streams and state key carry the
 * partition's hash tag when base->partitions > 1 or on a Redis Cluster
 * ("enforce:scan:{3}",
 * "riskd:state:{3}"), so every key of one partition lives in one Redis
 * Cluster slot. With one partition the names stay as configured. Returns 0,
 * or -1 with err when memory runs out. */
int rk__config_partition(const rk__config *base, int p, rk__config **out, char *err,
                         size_t errlen)
{
    char tag[24];
    unsigned si;
    rk__config *c;

    if (rk__config_from_json(base->root, &c, err, errlen) != 0)
        return -1;
    /* What needs a restart comes from base itself, which after a reload
     * keeps the values the process started with (node.c). */
#define COPY(f) do { free(c->f); c->f = base->f ? dupstr(base->f) : NULL; \
                     if (base->f && c->f == NULL) goto oom; } while (0)
    COPY(redis_host); COPY(redis_password); COPY(redis_username); COPY(group);
    COPY(consumer); COPY(start); COPY(state_key);
    COPY(stream_key[0]); COPY(stream_key[1]);
#undef COPY
    c->redis_port = base->redis_port;
    c->redis_db = base->redis_db;
    c->partitions = base->partitions;
    c->lease_ttl = base->lease_ttl;
    c->partition = p;
    if (rk__config_is_cross(c)) {
        /* the cross pipeline: its own checkpoint, lease, epoch and group */
        if (append_suffix(&c->state_key, ":{cross}") != 0 ||
            append_suffix(&c->group, ":cross") != 0)
            goto oom;
    } else if (base->partitions > 1 || base->n_cluster > 0) {
        snprintf(tag, sizeof(tag), ":{%d}", p);
        for (si = 0; si < RK_STREAM_COUNT; si++)
            if (append_suffix(&c->stream_key[si], tag) != 0)
                goto oom;
        if (append_suffix(&c->state_key, tag) != 0)
            goto oom;
    }
    *out = c;
    return 0;
oom:
    rk_kit_errf(err, errlen, "out of memory");
    rk__config_free(c);
    *out = NULL;
    return -1;
}

/* Free cfg and everything it owns (its reference to the JSON root
 * included). NULL is allowed. */
void rk__config_free(rk__config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    free(cfg->redis_host);
    free(cfg->redis_password);
    free(cfg->redis_username);
    for (i = 0; i < cfg->n_sentinels; i++)
        free(cfg->redis_sentinels[i]);
    free(cfg->redis_sentinels);
    free(cfg->redis_master_name);
    for (i = 0; i < cfg->n_cluster; i++)
        free(cfg->redis_cluster[i]);
    free(cfg->redis_cluster);
    for (i = 0; i < RK_STREAM_COUNT; i++)
        free(cfg->stream_key[i]);
    free(cfg->group);
    free(cfg->consumer);
    free(cfg->start);
    free(cfg->alerts_stream);
    free(cfg->channel_prefix);
    free(cfg->alerts_open_key);
    free(cfg->alerts_language);
    free(cfg->metrics_listen);
    free(cfg->metrics_host);
    for (i = 0; i < cfg->n_plugins; i++)
        free(cfg->plugins[i]);
    free(cfg->plugins);
    free(cfg->state_key);
    free(cfg->web_listen);
    free(cfg->web_host);
    free(cfg->web_token);
    json_decref(cfg->root);
    free(cfg);
}
