/* daemon/riskctl/main.c - riskctl, the operator's command line for riskd.
 *
 *   riskctl check [FILE]                 validate a configuration (riskd -t)
 *   riskctl tail [--detector D] [--severity S] [--from ID] [--count N]
 *   riskctl silence add --detector D [--rule R] [--match field=value]...
 *                       --until T --reason TEXT [--author NAME]
 *   riskctl silence list [--all]
 *   riskctl silence expire ID [--author NAME]
 *   riskctl status
 *
 * It is a short-lived, single-threaded program on hiredis's synchronous
 * API (the daemon's libuv machinery is not used) and links libriskd.a only
 * for the configuration loader, the registry check and the RFC 3339 code.
 * The Redis address, alert stream, input streams, group, checkpoint key
 * and metrics address come from the riskd configuration (-c FILE, default
 * /etc/riskd/riskd.json; the built-in defaults when that file does not
 * exist); -h/-p/-a/--user/-n override the Redis address and credentials.
 *
 * Silences live in the hash riskd:silences (field = a 16-hex-digit random
 * id, value = compact JSON; see the README, "Operator's guide"). Every
 * change is one MULTI/EXEC transaction under WATCH of the hash: HSET the
 * record, XADD an entry to the audit stream riskd:audit (trimmed like the
 * daemon's entries, MAXLEN ~ 100000) and PUBLISH the id on the channel
 * riskd:silences for whoever listens; a transaction aborted by a
 * concurrent change is retried. Running daemons re-read the hash every
 * second. Expiring a silence sets its "until" to now and keeps the
 * record.
 *
 * Everything printed from Redis (alerts, silence records) goes through
 * put_clean(), which replaces control characters, so a crafted alert
 * cannot drive the operator's terminal. Colour is used only when stdout is
 * a terminal and NO_COLOR is not set. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskd/kit.h"
#include "internal.h"

#define DEFAULT_CONFIG   "/etc/riskd/riskd.json"
#define SILENCES_KEY     RK_SILENCES_KEY    /* hash and channel */
#define AUDIT_STREAM     RK_AUDIT_STREAM
#define AUDIT_MAXLEN     "100000"           /* as the daemon trims it */
#define SILENCE_ID_LEN   16
#define REPLY_TIMEOUT_S  10
#define TAIL_BLOCK_MS    5000
#define TAIL_BATCH       100
#define TXN_ATTEMPTS     20
#define METRICS_MAX      (4 * 1024 * 1024)
#define MAX_MATCH        16
#define MAX_TEXT         4096               /* reason, author, match values */

/* Exit codes. */
#define EX_OK       0
#define EX_FAIL     1                       /* error, bad usage, Redis down */
#define EX_DEGRADED 2                       /* status: riskd not healthy */

/* Options, one bit each, so every subcommand can refuse the ones it does
 * not take. */
enum {
    O_DETECTOR = 1 << 0, O_RULE = 1 << 1, O_MATCH = 1 << 2, O_UNTIL = 1 << 3,
    O_REASON = 1 << 4, O_AUTHOR = 1 << 5, O_SEVERITY = 1 << 6, O_FROM = 1 << 7,
    O_COUNT = 1 << 8, O_ALL = 1 << 9, O_REDIS = 1 << 10
};

typedef struct opts {
    const char *config;             /* -c, or NULL */
    const char *host, *password, *user;
    int port;                       /* 0 = from the configuration */
    int db;                         /* -1 = from the configuration */
    const char *detector, *rule, *severity, *from, *until, *reason, *author;
    long long count;                /* 0 = follow for ever */
    const char *match[MAX_MATCH];
    size_t n_match;
    int all;
    unsigned given;                 /* O_* bits seen */
} opts;

static const char *const subject_fields[] = {
    "unit_id", "officer_id", "enterprise_id", "task_id", "case_id", "region", NULL
};

/* ===================================================================
 * Small helpers
 * =================================================================== */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: riskctl [options] check [FILE]\n"
        "       riskctl [options] tail [--detector D] [--severity S] [--from ID] [--count N]\n"
        "       riskctl [options] silence add --detector D [--rule R] [--match FIELD=VALUE]...\n"
        "                                     --until TIME --reason TEXT [--author NAME]\n"
        "       riskctl [options] silence list [--all]\n"
        "       riskctl [options] silence expire ID [--author NAME]\n"
        "       riskctl [options] status\n"
        "options:\n"
        "  -c FILE          riskd configuration (default " DEFAULT_CONFIG ")\n"
        "  -h HOST, -p PORT, -a PASSWORD, --user USER, -n DB\n"
        "                   Redis address and credentials (override the configuration)\n"
        "  --help, --version\n"
        "TIME is RFC 3339 (2025-03-01T18:00:00+08:00) or a duration from now (90m, 2h, 3d).\n"
        "--severity S shows alerts of severity S and above (info < warning < critical).\n"
        "FIELD is one of unit_id, officer_id, enterprise_id, task_id, case_id, region.\n");
}

/* Print "riskctl: <message>" and a newline to stderr. */
static void errx_msg(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void errx_msg(const char *fmt, ...)
{
    va_list ap;
    fputs("riskctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Write s to f with every control character (C0, DEL and the UTF-8
 * encodings of C1) replaced by '?'; other UTF-8 passes unchanged. */
static void put_clean(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fputc('?', f);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fputc('?', f);
            p++;
        } else {
            fputc(*p, f);
        }
    }
}

/* True when s is a non-empty [a-z0-9_]+ name of at most 64 bytes. */
static int is_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n > 0 && n <= 64;
}

/* True when s is a silence id: exactly 16 lowercase hex digits. */
static int is_silence_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == SILENCE_ID_LEN;
}

/* True when s is a stream entry id XREAD accepts as a start: "ms" or
 * "ms-seq" in decimal. */
static int is_entry_id(const char *s)
{
    const char *p = s;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '-') {
        p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0' && p - s < 48;
}

/* Parse a whole decimal number in [min, max] from s into *out. 0 or -1. */
static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Fill id (17 bytes) with 16 random lowercase hex digits from
 * /dev/urandom. Returns 0, or -1 when /dev/urandom cannot be read. */
static int random_id(char id[SILENCE_ID_LEN + 1])
{
    unsigned char b[SILENCE_ID_LEN / 2];
    size_t got = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (got < sizeof(b)) {
        ssize_t n = read(fd, b + got, sizeof(b) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(id + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* The acting user: opt when given, else $SUDO_USER, $USER, "unknown". */
static const char *actor(const char *opt)
{
    const char *u;
    if (opt != NULL)
        return opt;
    if ((u = getenv("SUDO_USER")) != NULL && *u)
        return u;
    if ((u = getenv("USER")) != NULL && *u)
        return u;
    return "unknown";
}

/* Parse --until: an RFC 3339 time or a duration from now. Stores epoch ms
 * in *out and returns 0, or -1 with err. */
static int parse_until(const char *s, int64_t now, int64_t *out, char *err, size_t errlen)
{
    int64_t d;
    if (rk__parse_rfc3339(s, out) == 0) {
        /* accepted */
    } else if (rk_kit_parse_duration(s, &d) == 0) {
        *out = now + d;
    } else {
        rk_kit_errf(err, errlen, "--until: expected an RFC 3339 time "
                    "(2025-03-01T18:00:00+08:00) or a duration such as \"2h\"");
        return -1;
    }
    if (*out <= now) {
        rk_kit_errf(err, errlen, "--until: %s is not in the future", s);
        return -1;
    }
    return 0;
}

/* ===================================================================
 * Configuration and Redis
 * =================================================================== */

/* Load the riskd configuration for o: -c FILE, else the default file when
 * it exists, else the built-in defaults. Returns 0 and *cfg, or -1 after
 * printing the error. */
static int load_config(const opts *o, rk_config **cfg)
{
    char err[RK_ERRLEN];
    const char *path = o->config;
    if (path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
        path = DEFAULT_CONFIG;
    if (path == NULL) {
        json_t *empty = json_object();
        int rc = empty ? rk__config_from_json(empty, cfg, err, sizeof(err)) : -1;
        json_decref(empty);
        if (rc != 0) {
            errx_msg("default configuration: %s", empty ? err : "out of memory");
            return -1;
        }
        return 0;
    }
    if (rk__config_load(path, cfg, err, sizeof(err)) != 0) {
        size_t n = strlen(path);
        if (strncmp(err, path, n) == 0 && err[n] == ':')
            errx_msg("%s", err);
        else
            errx_msg("%s: %s", path, err);
        return -1;
    }
    return 0;
}

typedef struct conn {
    redisContext *c;
    char host[256];
    int port;
    const char *password, *user;
    int db;
} conn;

/* Check a reply: NULL (connection lost) or an error reply print a message
 * naming what and return -1; anything else returns 0. */
static int reply_ok(const conn *k, const redisReply *r, const char *what)
{
    if (r == NULL) {
        errx_msg("%s: Redis %s:%d: %s", what, k->host, k->port,
                 k->c->errstr[0] ? k->c->errstr : "connection lost");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        errx_msg("%s: %s", what, r->str);
        return -1;
    }
    return 0;
}

/* Connect to Redis as cfg and o say (AUTH, SELECT). Returns 0, or -1 with
 * err (unreachable, refused credentials, bad database). */
static int conn_open(conn *k, char *err, size_t errlen)
{
    struct timeval tv = {5, 0};
    redisReply *r;

    k->c = redisConnectWithTimeout(k->host, k->port, tv);
    if (k->c == NULL || k->c->err) {
        rk_kit_errf(err, errlen, "cannot connect to Redis at %s:%d: %s", k->host, k->port,
                    k->c ? k->c->errstr : "out of memory");
        goto fail_connect;
    }
    tv.tv_sec = REPLY_TIMEOUT_S;
    redisSetTimeout(k->c, tv);
    if (k->password != NULL) {
        if (k->user != NULL)
            r = redisCommand(k->c, "AUTH %s %s", k->user, k->password);
        else
            r = redisCommand(k->c, "AUTH %s", k->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            rk_kit_errf(err, errlen, "Redis at %s:%d refused AUTH: %s", k->host, k->port,
                        r ? r->str : k->c->errstr);
            freeReplyObject(r);
            goto fail_auth;
        }
        freeReplyObject(r);
    }
    if (k->db != 0) {
        r = redisCommand(k->c, "SELECT %d", k->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            rk_kit_errf(err, errlen, "Redis at %s:%d refused SELECT %d: %s", k->host,
                        k->port, k->db, r ? r->str : k->c->errstr);
            freeReplyObject(r);
            goto fail_auth;
        }
        freeReplyObject(r);
    }
    return 0;
fail_auth:
fail_connect:
    if (k->c != NULL)
        redisFree(k->c);
    k->c = NULL;
    return -1;
}

/* Set up k from cfg and the overrides in o and connect. Returns 0, or -1
 * after printing the error. */
static int conn_init(conn *k, const rk_config *cfg, const opts *o)
{
    char err[RK_ERRLEN];
    memset(k, 0, sizeof(*k));
    snprintf(k->host, sizeof(k->host), "%s", o->host ? o->host : cfg->redis_host);
    k->port = o->port ? o->port : cfg->redis_port;
    k->password = o->password ? o->password : cfg->redis_password;
    k->user = o->user ? o->user : cfg->redis_username;
    k->db = o->db >= 0 ? o->db : cfg->redis_db;
    if (conn_open(k, err, sizeof(err)) != 0) {
        errx_msg("%s", err);
        return -1;
    }
    return 0;
}

static void conn_close(conn *k)
{
    if (k->c != NULL)
        redisFree(k->c);
    k->c = NULL;
}

/* ===================================================================
 * check
 * =================================================================== */

/* riskctl check FILE: load and validate like riskd -t. Returns the exit
 * code: 0 and "FILE: configuration OK" on stdout, or 1 with the error on
 * stderr. */
static int cmd_check(const char *path)
{
    char err[RK_ERRLEN];
    rk_config *cfg;
    opts o;
    int rc;

    memset(&o, 0, sizeof(o));
    o.config = path;
    if (load_config(&o, &cfg) != 0)
        return EX_FAIL;
    rc = rk__registry_check(cfg, err, sizeof(err));
    rk__config_free(cfg);
    if (rc != 0) {
        errx_msg("%s: %s", path, err);
        return EX_FAIL;
    }
    printf("%s: configuration OK\n", path);
    return EX_OK;
}

/* ===================================================================
 * tail
 * =================================================================== */

typedef struct tail_state {
    int colour;
    int min_sev;                    /* -1: any */
    const char *detector;
    long long printed;
} tail_state;

static int severity_rank(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "info") == 0)
        return 0;
    if (strcmp(s, "warning") == 0)
        return 1;
    if (strcmp(s, "critical") == 0)
        return 2;
    return -1;
}

/* Print one alert (the JSON text of an entry's data field) as one line,
 * unless the filters of t drop it. Returns 1 when printed, 0 otherwise. */
static int print_alert(tail_state *t, const char *entry_id, const char *data, size_t len)
{
    static const char *const sev_colour[3] = {"\033[36m", "\033[33m", "\033[1;31m"};
    json_error_t jerr;
    json_t *a = json_loadb(data, len, 0, &jerr), *subj, *v;
    const char *sev, *det, *rule, *ts, *summary, *key;
    char sevbuf[16];
    int rank, silenced;
    size_t i;

    if (a == NULL || !json_is_object(a)) {
        fprintf(stderr, "riskctl: entry %s is not an alert JSON object\n", entry_id);
        json_decref(a);
        return 0;
    }
    sev = json_string_value(json_object_get(a, "severity"));
    det = json_string_value(json_object_get(a, "detector"));
    rule = json_string_value(json_object_get(a, "rule"));
    ts = json_string_value(json_object_get(a, "ts"));
    summary = json_string_value(json_object_get(a, "summary"));
    silenced = json_is_true(json_object_get(a, "silenced"));
    subj = json_object_get(a, "subject");
    rank = severity_rank(sev);
    if ((t->detector != NULL && (det == NULL || strcmp(det, t->detector) != 0)) ||
        (t->min_sev >= 0 && rank < t->min_sev)) {
        json_decref(a);
        return 0;
    }
    for (i = 0; i + 1 < sizeof(sevbuf) && sev != NULL && sev[i]; i++)
        sevbuf[i] = (char)(sev[i] >= 'a' && sev[i] <= 'z' ? sev[i] - 'a' + 'A' : sev[i]);
    sevbuf[i] = '\0';
    if (t->colour)
        fputs(silenced ? "\033[2m" : "", stdout);
    put_clean(stdout, ts ? ts : "-");
    fputs("  ", stdout);
    if (t->colour && !silenced && rank >= 0)
        fputs(sev_colour[rank], stdout);
    put_clean(stdout, sev ? sevbuf : "?");
    if (t->colour && !silenced && rank >= 0)
        fputs("\033[0m", stdout);
    printf("%*s", (int)(sizeof("CRITICAL") - 1 - strlen(sev ? sevbuf : "?")), "");
    fputs(silenced ? "  [silenced] " : "  ", stdout);
    put_clean(stdout, det ? det : "?");
    fputc('/', stdout);
    put_clean(stdout, rule ? rule : "?");
    fputs(" ", stdout);
    json_object_foreach(subj, key, v) {
        fputc(' ', stdout);
        put_clean(stdout, key);
        fputc('=', stdout);
        put_clean(stdout, json_is_string(v) ? json_string_value(v) : "?");
    }
    if (summary != NULL) {
        fputs("  ", stdout);
        put_clean(stdout, summary);
    }
    if (t->colour && silenced)
        fputs("\033[0m", stdout);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(a);
    t->printed++;
    return 1;
}

/* Print the entries of one XREAD reply and remember the last id in last.
 * Stops once count alerts were printed (count 0: never). */
static void tail_reply(tail_state *t, const redisReply *r, char *last, size_t lastlen,
                       long long count)
{
    size_t i, k;
    const redisReply *entries;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements < 2)
        return;
    entries = r->element[0]->element[1];
    if (entries->type != REDIS_REPLY_ARRAY)
        return;
    for (i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i], *f;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        snprintf(last, lastlen, "%s", e->element[0]->str);
        f = e->element[1];
        if (f->type != REDIS_REPLY_ARRAY)
            continue;
        for (k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(f->element[k]->str, "data") == 0 &&
                f->element[k + 1]->type == REDIS_REPLY_STRING)
                print_alert(t, e->element[0]->str, f->element[k + 1]->str,
                            f->element[k + 1]->len);
        if (count > 0 && t->printed >= count)
            return;
    }
}

/* The id of the newest entry of stream (for "from now on"), "0-0" when
 * the stream is empty or missing. Returns 0 or -1 after printing. */
static int stream_last_id(conn *k, const char *stream, char *out, size_t outlen)
{
    redisReply *r = redisCommand(k->c, "XREVRANGE %s + - COUNT 1", stream);
    if (reply_ok(k, r, "XREVRANGE") != 0) {
        freeReplyObject(r);
        return -1;
    }
    snprintf(out, outlen, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(out, outlen, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    return 0;
}

/* riskctl tail: follow cfg's alert stream and print one line per alert.
 * A lost connection is re-opened with backoff (the position is kept).
 * Returns the exit code. */
static int cmd_tail(const rk_config *cfg, const opts *o)
{
    tail_state t;
    conn k;
    char last[64], err[RK_ERRLEN];
    const char *nc = getenv("NO_COLOR");
    int backoff = 250;

    memset(&t, 0, sizeof(t));
    t.colour = isatty(STDOUT_FILENO) && nc == NULL;
    t.min_sev = -1;
    t.detector = o->detector;
    if (o->severity != NULL && (t.min_sev = severity_rank(o->severity)) < 0) {
        errx_msg("--severity: expected info, warning or critical");
        return EX_FAIL;
    }
    if (o->detector != NULL && !is_name(o->detector)) {
        errx_msg("--detector: expected a detector name ([a-z0-9_]+)");
        return EX_FAIL;
    }
    if (o->from != NULL && strcmp(o->from, "$") != 0 && !is_entry_id(o->from)) {
        errx_msg("--from: expected a stream entry id (1740793800000-0, or 0 for all)");
        return EX_FAIL;
    }
    if (conn_init(&k, cfg, o) != 0)
        return EX_FAIL;
    if (o->from != NULL && strcmp(o->from, "$") != 0)
        snprintf(last, sizeof(last), "%s", o->from);
    else if (stream_last_id(&k, cfg->alerts_stream, last, sizeof(last)) != 0)
        goto fail;
    {
        struct timeval tv = {TAIL_BLOCK_MS / 1000 + REPLY_TIMEOUT_S, 0};
        redisSetTimeout(k.c, tv);
    }
    while (o->count == 0 || t.printed < o->count) {
        redisReply *r;
        if (k.c == NULL) {
            if (conn_open(&k, err, sizeof(err)) != 0) {
                errx_msg("%s (retrying)", err);
                usleep((useconds_t)backoff * 1000);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            struct timeval tv = {TAIL_BLOCK_MS / 1000 + REPLY_TIMEOUT_S, 0};
            redisSetTimeout(k.c, tv);
            backoff = 250;
        }
        r = redisCommand(k.c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", TAIL_BATCH,
                         TAIL_BLOCK_MS, cfg->alerts_stream, last);
        if (r == NULL) {
            errx_msg("lost Redis at %s:%d: %s; reconnecting", k.host, k.port, k.c->errstr);
            conn_close(&k);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            errx_msg("XREAD %s: %s", cfg->alerts_stream, r->str);
            freeReplyObject(r);
            goto fail;
        }
        tail_reply(&t, r, last, sizeof(last), o->count);
        freeReplyObject(r);
    }
    conn_close(&k);
    return EX_OK;
fail:
    conn_close(&k);
    return EX_FAIL;
}

/* ===================================================================
 * silence
 * =================================================================== */

/* Write one silence change as a transaction on the WATCHed hash: HSET id
 * new_json, XADD the audit entry (who, what, when, old, new), PUBLISH the
 * id. Returns 1 when committed, 0 when EXEC was aborted by a concurrent
 * change (retry), -1 after printing an error. */
static int silence_commit(conn *k, const char *id, const char *new_json, const char *old_json,
                          const char *what, const char *who)
{
    char when[48];
    redisReply *r = NULL;
    int i, rc = -1;

    rk__format_rfc3339(rk__wall_ms(), 0, when, sizeof(when));
    redisAppendCommand(k->c, "MULTI");
    redisAppendCommand(k->c, "HSET %s %s %s", SILENCES_KEY, id, new_json);
    redisAppendCommand(k->c, "XADD %s MAXLEN ~ %s * who %s what %s when %s old %s new %s",
                       AUDIT_STREAM, AUDIT_MAXLEN, who, what, when,
                       old_json ? old_json : "null", new_json);
    redisAppendCommand(k->c, "PUBLISH %s %s", SILENCES_KEY, id);
    redisAppendCommand(k->c, "EXEC");
    for (i = 0; i < 5; i++) {
        void *rep = NULL;
        if (redisGetReply(k->c, &rep) != REDIS_OK) {
            errx_msg("Redis %s:%d: %s", k->host, k->port, k->c->errstr);
            return -1;
        }
        freeReplyObject(r);
        r = rep;
        if (i < 4 && r->type == REDIS_REPLY_ERROR) {
            errx_msg("%s: %s", i == 0 ? "MULTI" : "queueing the change", r->str);
            rc = -2;                /* read the rest, then fail */
        }
    }
    if (rc == -2) {
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        rc = 1;
        for (size_t e = 0; e < r->elements; e++)
            if (r->element[e]->type == REDIS_REPLY_ERROR) {
                errx_msg("EXEC: %s", r->element[e]->str);
                rc = -1;
            }
    } else {
        errx_msg("EXEC: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return rc;
}

/* WATCH the silences hash and HGET id into *out (a malloc'ed copy, NULL
 * when absent). Returns 0 or -1 after printing. */
static int silence_watch_get(conn *k, const char *id, char **out)
{
    redisReply *r = redisCommand(k->c, "WATCH %s", SILENCES_KEY);
    *out = NULL;
    if (reply_ok(k, r, "WATCH") != 0) {
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    r = redisCommand(k->c, "HGET %s %s", SILENCES_KEY, id);
    if (reply_ok(k, r, "HGET") != 0) {
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_STRING && (*out = strdup(r->str)) == NULL) {
        errx_msg("out of memory");
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

static void unwatch(conn *k)
{
    freeReplyObject(redisCommand(k->c, "UNWATCH"));
}

/* Describe a silence record s on one line: id (when with_id), detector/
 * rule, match, until (at UTC offset tz seconds), author, reason, and
 * "[expired]" when show_state and until <= now. */
static void print_silence(const json_t *s, int tz, int64_t now, int with_id, int show_state)
{
    const char *id = json_string_value(json_object_get(s, "id"));
    const char *det = json_string_value(json_object_get(s, "detector"));
    const char *rule = json_string_value(json_object_get(s, "rule"));
    const char *author = json_string_value(json_object_get(s, "author"));
    const char *reason = json_string_value(json_object_get(s, "reason"));
    json_t *match = json_object_get(s, "match"), *v;
    json_int_t until = json_integer_value(json_object_get(s, "until"));
    const char *key;
    char t[48];
    int n = 0;

    if (with_id) {
        put_clean(stdout, id ? id : "?");
        fputs("  ", stdout);
    }
    put_clean(stdout, det ? det : "?");
    fputc('/', stdout);
    put_clean(stdout, rule ? rule : "*");
    fputs("  ", stdout);
    json_object_foreach(match, key, v) {
        if (n++)
            fputc(',', stdout);
        put_clean(stdout, key);
        fputc('=', stdout);
        put_clean(stdout, json_is_string(v) ? json_string_value(v) : "?");
    }
    if (n == 0)
        fputs("any-subject", stdout);
    rk__format_rfc3339(until, tz, t, sizeof(t));
    printf("  until %s  by ", t);
    put_clean(stdout, author ? author : "?");
    fputs("  \"", stdout);
    put_clean(stdout, reason ? reason : "");
    fputc('"', stdout);
    if (show_state && until <= now)
        fputs("  [expired]", stdout);
    fputc('\n', stdout);
}

/* Build the JSON text of a new silence with the given id from o, created
 * by who at now (epoch ms). Returns a malloc'ed string
 * or NULL after printing the error. */
static char *silence_build(const opts *o, const char *id, const char *who, int64_t now)
{
    char err[RK_ERRLEN];
    json_t *s = NULL, *match = NULL;
    char *out = NULL;
    int64_t until;
    size_t i;

    if (o->detector == NULL || o->until == NULL || o->reason == NULL) {
        errx_msg("silence add needs --detector, --until and --reason");
        return NULL;
    }
    if (!is_name(o->detector)) {
        errx_msg("--detector: expected a detector name ([a-z0-9_]+)");
        return NULL;
    }
    if (o->rule != NULL && !is_name(o->rule)) {
        errx_msg("--rule: expected a rule name ([a-z0-9_]+)");
        return NULL;
    }
    if (*o->reason == '\0' || strlen(o->reason) > MAX_TEXT) {
        errx_msg("--reason: expected a text of 1 to %d bytes", MAX_TEXT);
        return NULL;
    }
    if (*who == '\0' || strlen(who) > 256) {
        errx_msg("--author: expected a name of 1 to 256 bytes");
        return NULL;
    }
    if (parse_until(o->until, now, &until, err, sizeof(err)) != 0) {
        errx_msg("%s", err);
        return NULL;
    }
    if ((s = json_object()) == NULL || (match = json_object()) == NULL)
        goto oom;
    for (i = 0; i < o->n_match; i++) {
        const char *eq = strchr(o->match[i], '=');
        char field[32];
        size_t fl = eq ? (size_t)(eq - o->match[i]) : 0, f;
        if (eq == NULL || fl == 0 || fl >= sizeof(field) || eq[1] == '\0' ||
            strlen(eq + 1) > MAX_TEXT) {
            errx_msg("--match %s: expected FIELD=VALUE", o->match[i]);
            goto fail;
        }
        memcpy(field, o->match[i], fl);
        field[fl] = '\0';
        for (f = 0; subject_fields[f] && strcmp(subject_fields[f], field) != 0; f++)
            ;
        if (subject_fields[f] == NULL) {
            errx_msg("--match %s: %s is not a subject field (unit_id, officer_id, "
                     "enterprise_id, task_id, case_id, region)", o->match[i], field);
            goto fail;
        }
        if (json_object_get(match, field) != NULL) {
            errx_msg("--match: %s given twice", field);
            goto fail;
        }
        if (json_object_set_new(match, field, json_string(eq + 1)) != 0)
            goto oom;
    }
    if (json_object_set_new(s, "id", json_string(id)) != 0 ||
        json_object_set_new(s, "detector", json_string(o->detector)) != 0 ||
        (o->rule && json_object_set_new(s, "rule", json_string(o->rule)) != 0) ||
        (json_object_size(match) > 0 && json_object_set(s, "match", match) != 0) ||
        json_object_set_new(s, "until", json_integer(until)) != 0 ||
        json_object_set_new(s, "reason", json_string(o->reason)) != 0 ||
        json_object_set_new(s, "author", json_string(who)) != 0 ||
        json_object_set_new(s, "created_at", json_integer(now)) != 0)
        goto oom;
    out = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (out == NULL)
        goto oom;
    goto fail;
oom:
    errx_msg("out of memory (or a value is not UTF-8)");
fail:
    json_decref(match);
    json_decref(s);
    return out;
}

/* riskctl silence add. Prints "silence <id> added: ..." and returns the
 * exit code. */
static int silence_add(conn *k, const rk_config *cfg, const opts *o)
{
    char id[SILENCE_ID_LEN + 1];
    char *json = NULL, *old = NULL;
    const char *who = actor(o->author);
    int64_t now = rk__wall_ms();
    int attempt, rc = -1;

    if (random_id(id) != 0) {
        errx_msg("cannot read /dev/urandom: %s", strerror(errno));
        return EX_FAIL;
    }
    if ((json = silence_build(o, id, who, now)) == NULL)
        return EX_FAIL;
    for (attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
        rc = -1;
        if (silence_watch_get(k, id, &old) != 0)
            break;
        if (old != NULL) {          /* an id collision: 1 in 2^64 */
            free(old);
            old = NULL;
            unwatch(k);
            errx_msg("silence id %s exists already; try again", id);
            break;
        }
        rc = silence_commit(k, id, json, NULL, "silence_added", who);
        if (rc != 0)
            break;
    }
    if (rc == 1) {
        json_t *s = json_loads(json, 0, NULL);
        printf("silence %s added: ", id);
        fflush(stdout);
        if (s != NULL)
            print_silence(s, cfg->tz_offset_s, now, 0, 0);
        else
            putchar('\n');
        json_decref(s);
    } else if (rc == 0) {
        errx_msg("the silences kept changing under us; nothing was added");
    }
    free(json);
    return rc == 1 ? EX_OK : EX_FAIL;
}

/* riskctl silence expire ID: set "until" to now, keep the record. */
static int silence_expire(conn *k, const rk_config *cfg, const opts *o, const char *id)
{
    const char *who = actor(o->author);
    int attempt, rc = -1;
    int64_t now;
    char t[48];

    if (!is_silence_id(id)) {
        errx_msg("%s: expected a silence id (16 lowercase hex digits)", id);
        return EX_FAIL;
    }
    for (attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
        char *old, *neu;
        json_t *s;
        json_int_t until;

        if (silence_watch_get(k, id, &old) != 0)
            return EX_FAIL;
        if (old == NULL) {
            unwatch(k);
            errx_msg("no silence %s", id);
            return EX_FAIL;
        }
        now = rk__wall_ms();
        s = json_loads(old, 0, NULL);
        if (s == NULL || !json_is_object(s) ||
            !json_is_integer(json_object_get(s, "until"))) {
            unwatch(k);
            errx_msg("silence %s is not a valid record", id);
            json_decref(s);
            free(old);
            return EX_FAIL;
        }
        until = json_integer_value(json_object_get(s, "until"));
        if (until <= now) {
            unwatch(k);
            rk__format_rfc3339(until, cfg->tz_offset_s, t, sizeof(t));
            printf("silence %s had already expired at %s\n", id, t);
            json_decref(s);
            free(old);
            return EX_OK;
        }
        json_object_set_new(s, "until", json_integer(now));
        neu = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(s);
        if (neu == NULL) {
            unwatch(k);
            free(old);
            errx_msg("out of memory");
            return EX_FAIL;
        }
        rc = silence_commit(k, id, neu, old, "silence_expired", who);
        free(old);
        free(neu);
        if (rc != 0)
            break;
    }
    if (rc == 1) {
        rk__format_rfc3339(now, cfg->tz_offset_s, t, sizeof(t));
        printf("silence %s expired at %s\n", id, t);
        return EX_OK;
    }
    if (rc == 0)
        errx_msg("the silences kept changing under us; nothing was expired");
    return EX_FAIL;
}

typedef struct srec {
    json_t *j;
    json_int_t created;
    const char *id;
} srec;

static int srec_cmp(const void *a, const void *b)
{
    const srec *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* riskctl silence list [--all]: the active silences (all with --all),
 * oldest first. Records that are not valid JSON are reported on stderr. */
static int silence_list(conn *k, const rk_config *cfg, const opts *o)
{
    redisReply *r = redisCommand(k->c, "HGETALL %s", SILENCES_KEY);
    int64_t now = rk__wall_ms();
    srec *recs;
    size_t i, n = 0;

    if (reply_ok(k, r, "HGETALL " SILENCES_KEY) != 0) {
        freeReplyObject(r);
        return EX_FAIL;
    }
    recs = calloc(r->elements / 2 + 1, sizeof(*recs));
    if (recs == NULL) {
        errx_msg("out of memory");
        freeReplyObject(r);
        return EX_FAIL;
    }
    for (i = 0; i + 1 < r->elements; i += 2) {
        json_t *s = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len, 0, NULL);
        json_t *u = json_object_get(s, "until");
        if (s == NULL || !json_is_object(s) || !json_is_integer(u) ||
            !json_is_string(json_object_get(s, "detector"))) {
            fprintf(stderr, "riskctl: silence ");
            put_clean(stderr, r->element[i]->str);
            fprintf(stderr, " is not a valid record\n");
            json_decref(s);
            continue;
        }
        if (!o->all && json_integer_value(u) <= now) {
            json_decref(s);
            continue;
        }
        if (!json_is_string(json_object_get(s, "id")))
            json_object_set_new(s, "id", json_string(r->element[i]->str));
        recs[n].j = s;
        recs[n].created = json_integer_value(json_object_get(s, "created_at"));
        recs[n].id = json_string_value(json_object_get(s, "id"));
        if (recs[n].id == NULL)
            recs[n].id = "";
        n++;
    }
    freeReplyObject(r);
    qsort(recs, n, sizeof(*recs), srec_cmp);
    for (i = 0; i < n; i++) {
        print_silence(recs[i].j, cfg->tz_offset_s, now, 1, 1);
        json_decref(recs[i].j);
    }
    if (n == 0)
        printf(o->all ? "no silences\n" : "no active silences\n");
    free(recs);
    return EX_OK;
}

/* ===================================================================
 * status
 * =================================================================== */

/* Print the XINFO GROUPS of one input stream. Returns 0, or -1 when Redis
 * was lost. */
static int status_stream(conn *k, const rk_config *cfg, const char *stream)
{
    redisReply *r = redisCommand(k->c, "XLEN %s", stream);
    long long len;
    size_t i, f;
    int ours = 0;

    if (reply_ok(k, r, "XLEN") != 0) {
        int lost = r == NULL;
        freeReplyObject(r);
        return lost ? -1 : 0;
    }
    len = r->integer;
    freeReplyObject(r);
    printf("input ");
    put_clean(stdout, stream);
    r = redisCommand(k->c, "XINFO GROUPS %s", stream);
    if (r == NULL) {
        printf(": ?\n");
        return reply_ok(k, r, "XINFO GROUPS");
    }
    if (r->type == REDIS_REPLY_ERROR) {
        printf(": missing (no such stream)\n");
        freeReplyObject(r);
        return 0;
    }
    printf(": length %lld\n", len);
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *g = r->element[i];
        const char *name = "?", *last = "?";
        long long consumers = -1, pending = -1, lag = -1;
        int has_lag = 0;
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        for (f = 0; f + 1 < g->elements; f += 2) {
            const redisReply *kk = g->element[f], *v = g->element[f + 1];
            if (kk->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(kk->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                name = v->str;
            else if (strcmp(kk->str, "consumers") == 0 && v->type == REDIS_REPLY_INTEGER)
                consumers = v->integer;
            else if (strcmp(kk->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = v->integer;
            else if (strcmp(kk->str, "last-delivered-id") == 0 && v->type == REDIS_REPLY_STRING)
                last = v->str;
            else if (strcmp(kk->str, "lag") == 0) {
                has_lag = 1;
                lag = v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
            }
        }
        printf("  group ");
        put_clean(stdout, name);
        printf("%s: consumers %lld, pending %lld, lag ", strcmp(name, cfg->group) == 0 ?
               " (riskd's)" : "", consumers, pending);
        if (!has_lag)
            printf("n/a (Redis < 7)");
        else if (lag < 0)
            printf("unknown");
        else
            printf("%lld", lag);
        printf(", last delivered %s\n", last);
        ours |= strcmp(name, cfg->group) == 0;
    }
    if (!ours) {
        printf("  group ");
        put_clean(stdout, cfg->group);
        printf(": missing (riskd has not consumed this stream yet)\n");
    }
    freeReplyObject(r);
    return 0;
}

/* Print "label key: N entries" from XLEN. 0, or -1 when Redis was lost. */
static int status_xlen(conn *k, const char *label, const char *key)
{
    redisReply *r = redisCommand(k->c, "XLEN %s", key);
    if (r == NULL)
        return reply_ok(k, r, "XLEN");
    printf("%s ", label);
    put_clean(stdout, key);
    if (r->type == REDIS_REPLY_INTEGER)
        printf(": %lld entries\n", r->integer);
    else
        printf(": %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    return 0;
}

/* GET /metrics from host:port with a plain socket (5 s timeouts). Returns
 * the malloc'ed body, or NULL with err. */
static char *http_get_metrics(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct timeval tv = {5, 0};
    char portstr[16], req[512], *buf = NULL, *body = NULL;
    size_t len = 0, cap = 0;
    int fd = -1, gai;

    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((gai = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        rk_kit_errf(err, errlen, "%s", gai_strerror(gai));
        return NULL;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        rk_kit_errf(err, errlen, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return NULL;
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: %s\r\n"
             "Connection: close\r\n\r\n", host);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        rk_kit_errf(err, errlen, "send: %s", strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t n;
        if (cap - len < 4096) {
            char *nb;
            if (cap >= METRICS_MAX) {
                rk_kit_errf(err, errlen, "response larger than %d bytes", METRICS_MAX);
                goto done;
            }
            nb = realloc(buf, cap ? cap * 2 : 16384);
            if (nb == NULL) {
                rk_kit_errf(err, errlen, "out of memory");
                goto done;
            }
            buf = nb;
            cap = cap ? cap * 2 : 16384;
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rk_kit_errf(err, errlen, "recv: %s", strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (buf == NULL) {
        rk_kit_errf(err, errlen, "empty response");
        goto done;
    }
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strlen(buf) < 12 || strncmp(buf + 9, "200", 3) != 0) {
        char *eol = strpbrk(buf, "\r\n");
        if (eol)
            *eol = '\0';
        rk_kit_errf(err, errlen, "answered \"%.80s\"", buf);
        goto done;
    }
    {
        char *p = strstr(buf, "\r\n\r\n");
        if (p == NULL) {
            rk_kit_errf(err, errlen, "malformed response");
            goto done;
        }
        body = strdup(p + 4);
        if (body == NULL)
            rk_kit_errf(err, errlen, "out of memory");
    }
done:
    free(buf);
    close(fd);
    return body;
}

/* Find the unlabelled sample `name` in Prometheus text. Returns 1 and
 * *out, or 0 when absent. */
static int metric_value(const char *text, const char *name, double *out)
{
    size_t n = strlen(name);
    const char *p = text;
    while (p && *p) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            char *end;
            double v = strtod(p + n + 1, &end);
            if (end != p + n + 1) {
                *out = v;
                return 1;
            }
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

/* riskctl status. Exit 0 when Redis answers (and riskd_up is 1 when the
 * metrics endpoint is configured), 2 when the endpoint is unreachable or
 * riskd_up is not 1, 1 when Redis is unreachable. */
/* The leases (README §Deployment): who holds each partition, under which
 * epoch and for how much longer, and the live members. Returns -1 when
 * Redis went away. */
static int status_leases(conn *k, const rk_config *cfg)
{
    int p, shown = cfg->partitions < 16 ? cfg->partitions : 16;
    redisReply *r;
    size_t i;

    for (p = 0; p < shown; p++) {
        char lease[512], epoch[512];
        redisReply *v, *e, *t;
        if (cfg->partitions > 1) {
            snprintf(lease, sizeof(lease), "%s:{%d}:lease", cfg->state_key, p);
            snprintf(epoch, sizeof(epoch), "%s:{%d}:epoch", cfg->state_key, p);
        } else {
            snprintf(lease, sizeof(lease), "%s:lease", cfg->state_key);
            snprintf(epoch, sizeof(epoch), "%s:epoch", cfg->state_key);
        }
        v = redisCommand(k->c, "GET %s", lease);
        e = v ? redisCommand(k->c, "GET %s", epoch) : NULL;
        t = e ? redisCommand(k->c, "PTTL %s", lease) : NULL;
        if (reply_ok(k, v, "GET") != 0 || reply_ok(k, e, "GET") != 0 ||
            reply_ok(k, t, "PTTL") != 0) {
            freeReplyObject(v);
            freeReplyObject(e);
            freeReplyObject(t);
            return -1;
        }
        printf("lease ");
        put_clean(stdout, lease);
        if (v->type != REDIS_REPLY_STRING) {
            printf(": free");
        } else {
            const char *sp = strrchr(v->str, ' ');
            size_t nl = sp ? (size_t)(sp - v->str) : v->len;
            printf(": %s by %.*s", sp && strcmp(sp, " released") == 0 ? "released" : "held",
                   (int)nl, v->str);
        }
        if (e->type == REDIS_REPLY_STRING)
            printf(" (epoch %s", e->str);
        else
            printf(" (no epoch yet");
        if (v->type == REDIS_REPLY_STRING && t->type == REDIS_REPLY_INTEGER && t->integer >= 0)
            printf(", %lld ms left", t->integer);
        printf(")\n");
        freeReplyObject(v);
        freeReplyObject(e);
        freeReplyObject(t);
    }
    if (shown < cfg->partitions)
        printf("(%d more partitions)\n", cfg->partitions - shown);
    r = redisCommand(k->c, "ZRANGE %s:members 0 -1", cfg->state_key);
    if (reply_ok(k, r, "ZRANGE") != 0)
        return -1;
    printf("members:");
    for (i = 0; i < r->elements; i++) {
        putchar(' ');
        put_clean(stdout, r->element[i]->str);
    }
    printf(r->elements ? "\n" : " none\n");
    freeReplyObject(r);
    return 0;
}

static int cmd_status(const rk_config *cfg, const opts *o)
{
    static const char *const names[] = {
        "riskd_up", "riskd_watermark_seconds", "riskd_alerts_written_total",
        "riskd_checkpoint_age_seconds", "riskd_alerts_silenced_total", "riskd_silences"
    };
    struct timespec t0, t1;
    redisReply *r;
    conn k;
    int rc = EX_OK;
    unsigned si;

    if (conn_init(&k, cfg, o) != 0)
        return EX_FAIL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = redisCommand(k.c, "PING");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (reply_ok(&k, r, "PING") != 0)
        goto fail_reply;
    printf("redis %s:%d: %s in %.1f ms\n", k.host, k.port, r->str,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    freeReplyObject(r);
    for (si = 0; si < RK_STREAM_COUNT; si++)
        if (status_stream(&k, cfg, cfg->stream_key[si]) != 0)
            goto redis_gone;
    if (status_xlen(&k, "alert stream", cfg->alerts_stream) != 0 ||
        status_xlen(&k, "dead-letter stream", RK_DEAD_STREAM) != 0)
        goto redis_gone;
    r = redisCommand(k.c, "EXISTS %s", cfg->state_key);
    if (reply_ok(&k, r, "EXISTS") != 0)
        goto fail_reply;
    printf("checkpoint ");
    put_clean(stdout, cfg->state_key);
    if (r->integer == 0) {
        printf(": missing\n");
    } else {
        freeReplyObject(r);
        r = redisCommand(k.c, "STRLEN %s", cfg->state_key);
        if (r == NULL) {
            reply_ok(&k, r, "STRLEN");
            goto fail_reply;
        }
        if (r->type == REDIS_REPLY_INTEGER)
            printf(": %lld bytes\n", r->integer);
        else
            printf(": %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    }
    freeReplyObject(r);
    if (status_leases(&k, cfg) != 0)
        goto redis_gone;
    r = redisCommand(k.c, "HVALS %s", SILENCES_KEY);
    if (reply_ok(&k, r, "HVALS") != 0)
        goto fail_reply;
    {
        int64_t now = rk__wall_ms();
        size_t i, active = 0;
        for (i = 0; i < r->elements; i++) {
            json_t *s = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);
            active += json_integer_value(json_object_get(s, "until")) > now;
            json_decref(s);
        }
        printf("silences: %zu active, %zu in all\n", active, r->elements);
    }
    freeReplyObject(r);
    conn_close(&k);

    if (cfg->metrics_host == NULL) {
        printf("metrics: off (metrics.listen is \"\")\n");
        return rc;
    }
    {
        char err[RK_ERRLEN];
        char *body = http_get_metrics(cfg->metrics_host, cfg->metrics_port, err, sizeof(err));
        double v;
        if (body == NULL) {
            printf("metrics %s: unreachable (%s)\n", cfg->metrics_listen, err);
            return EX_DEGRADED;
        }
        printf("metrics %s:\n", cfg->metrics_listen);
        for (si = 0; si < sizeof(names) / sizeof(names[0]); si++) {
            printf("  %-30s ", names[si]);
            if (!metric_value(body, names[si], &v)) {
                printf("-\n");
                if (si == 0)
                    rc = EX_DEGRADED;
                continue;
            }
            if (si == 1) {
                char t[48];
                rk__format_rfc3339((int64_t)(v * 1000.0), cfg->tz_offset_s, t, sizeof(t));
                printf("%.3f (%s)\n", v, t);
            } else if (si == 3) {
                printf("%.3f\n", v);
            } else {
                printf("%.0f\n", v);
            }
            if (si == 0 && v != 1.0)
                rc = EX_DEGRADED;
        }
        free(body);
    }
    return rc;
fail_reply:
    freeReplyObject(r);
redis_gone:
    conn_close(&k);
    return EX_FAIL;
}

/* ===================================================================
 * main
 * =================================================================== */

/* Refuse the options given that the subcommand `what` does not take
 * (allowed: its O_* bits). Returns 0 or -1 after printing. */
static int only(const opts *o, unsigned allowed, const char *what)
{
    static const char *const names[] = {
        "--detector", "--rule", "--match", "--until", "--reason", "--author",
        "--severity", "--from", "--count", "--all", "-h/-p/-a/--user/-n"
    };
    unsigned extra = o->given & ~allowed;
    for (unsigned b = 0; b < sizeof(names) / sizeof(names[0]); b++)
        if (extra & (1u << b)) {
            errx_msg("%s: %s is not an option of this command", what, names[b]);
            return -1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    enum { L_USER = 256, L_DETECTOR, L_RULE, L_MATCH, L_UNTIL, L_REASON, L_AUTHOR,
           L_SEVERITY, L_FROM, L_COUNT, L_ALL, L_HELP, L_VERSION };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"password", required_argument, NULL, 'a'},
        {"db", required_argument, NULL, 'n'},
        {"user", required_argument, NULL, L_USER},
        {"detector", required_argument, NULL, L_DETECTOR},
        {"rule", required_argument, NULL, L_RULE},
        {"match", required_argument, NULL, L_MATCH},
        {"until", required_argument, NULL, L_UNTIL},
        {"reason", required_argument, NULL, L_REASON},
        {"author", required_argument, NULL, L_AUTHOR},
        {"severity", required_argument, NULL, L_SEVERITY},
        {"from", required_argument, NULL, L_FROM},
        {"count", required_argument, NULL, L_COUNT},
        {"all", no_argument, NULL, L_ALL},
        {"help", no_argument, NULL, L_HELP},
        {"version", no_argument, NULL, L_VERSION},
        {NULL, 0, NULL, 0}
    };
    opts o;
    rk_config *cfg = NULL;
    conn k;
    const char *cmd, *sub;
    long long v;
    unsigned allowed;
    int opt, rc, npos, want;

    memset(&o, 0, sizeof(o));
    o.db = -1;
    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt_long(argc, argv, "c:h:p:a:n:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': o.config = optarg; break;
        case 'h': o.host = optarg; o.given |= O_REDIS; break;
        case 'a': o.password = optarg; o.given |= O_REDIS; break;
        case L_USER: o.user = optarg; o.given |= O_REDIS; break;
        case 'p':
            if (parse_ll(optarg, 1, 65535, &v) != 0) {
                errx_msg("-p: expected a port from 1 to 65535");
                return EX_FAIL;
            }
            o.port = (int)v;
            o.given |= O_REDIS;
            break;
        case 'n':
            if (parse_ll(optarg, 0, 1000000, &v) != 0) {
                errx_msg("-n: expected a database number");
                return EX_FAIL;
            }
            o.db = (int)v;
            o.given |= O_REDIS;
            break;
        case L_DETECTOR: o.detector = optarg; o.given |= O_DETECTOR; break;
        case L_RULE: o.rule = optarg; o.given |= O_RULE; break;
        case L_MATCH:
            if (o.n_match == MAX_MATCH) {
                errx_msg("--match: at most %d", MAX_MATCH);
                return EX_FAIL;
            }
            o.match[o.n_match++] = optarg;
            o.given |= O_MATCH;
            break;
        case L_UNTIL: o.until = optarg; o.given |= O_UNTIL; break;
        case L_REASON: o.reason = optarg; o.given |= O_REASON; break;
        case L_AUTHOR: o.author = optarg; o.given |= O_AUTHOR; break;
        case L_SEVERITY: o.severity = optarg; o.given |= O_SEVERITY; break;
        case L_FROM: o.from = optarg; o.given |= O_FROM; break;
        case L_COUNT:
            if (parse_ll(optarg, 1, INT64_MAX, &v) != 0) {
                errx_msg("--count: expected a positive number");
                return EX_FAIL;
            }
            o.count = v;
            o.given |= O_COUNT;
            break;
        case L_ALL: o.all = 1; o.given |= O_ALL; break;
        case L_HELP: usage(stdout); return EX_OK;
        case L_VERSION:
            printf("riskctl %s (hiredis %d.%d.%d, jansson %s)\n", RK_VERSION,
                   HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, JANSSON_VERSION);
            return EX_OK;
        default: usage(stderr); return EX_FAIL;
        }
    }
    npos = argc - optind;
    cmd = npos > 0 ? argv[optind] : NULL;
    sub = npos > 1 ? argv[optind + 1] : NULL;
    if (cmd == NULL) {
        usage(stderr);
        return EX_FAIL;
    }
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EX_OK;
    }
    if (strcmp(cmd, "check") == 0) {
        const char *path = sub ? sub : o.config ? o.config : DEFAULT_CONFIG;
        if (npos > 2) {
            usage(stderr);
            return EX_FAIL;
        }
        if (only(&o, 0, "check") != 0)
            return EX_FAIL;
        return cmd_check(path);
    }
    if (strcmp(cmd, "tail") == 0 || strcmp(cmd, "status") == 0) {
        int tail = cmd[0] == 't';
        if (npos != 1) {
            usage(stderr);
            return EX_FAIL;
        }
        if (only(&o, O_REDIS | (tail ? O_DETECTOR | O_SEVERITY | O_FROM | O_COUNT : 0),
                 cmd) != 0 || load_config(&o, &cfg) != 0)
            return EX_FAIL;
        rc = tail ? cmd_tail(cfg, &o) : cmd_status(cfg, &o);
        rk__config_free(cfg);
        return rc;
    }
    if (strcmp(cmd, "silence") != 0 || sub == NULL) {
        if (strcmp(cmd, "silence") != 0)
            errx_msg("unknown command \"%s\"", cmd);
        usage(stderr);
        return EX_FAIL;
    }
    if (strcmp(sub, "add") == 0) {
        want = 2;
        allowed = O_DETECTOR | O_RULE | O_MATCH | O_UNTIL | O_REASON | O_AUTHOR;
    } else if (strcmp(sub, "list") == 0) {
        want = 2;
        allowed = O_ALL;
    } else if (strcmp(sub, "expire") == 0) {
        want = 3;
        allowed = O_AUTHOR;
    } else {
        errx_msg("unknown silence command \"%s\" (add, list, expire)", sub);
        return EX_FAIL;
    }
    if (npos != want) {
        usage(stderr);
        return EX_FAIL;
    }
    if (only(&o, O_REDIS | allowed, "silence") != 0)
        return EX_FAIL;
    if (load_config(&o, &cfg) != 0)
        return EX_FAIL;
    if (conn_init(&k, cfg, &o) != 0) {
        rk__config_free(cfg);
        return EX_FAIL;
    }
    if (sub[0] == 'a')
        rc = silence_add(&k, cfg, &o);
    else if (sub[0] == 'l')
        rc = silence_list(&k, cfg, &o);
    else
        rc = silence_expire(&k, cfg, &o, argv[optind + 2]);
    conn_close(&k);
    rk__config_free(cfg);
    return rc;
}
