/* tests/integration/test-scenarios.c - data-driven scenario tests: every
 * JSON file in tests/scenarios (see tests/scenarios/README.md) is one cmocka
 * test that runs the scenario's events through a real riskd three ways and
 * checks the alerts.
 *
 * Each run uses a fresh redis-server and a fresh riskd whose config is the
 * scenario's overrides plus clock.wall_advance false and state.interval
 * "100ms" (unless the scenario
 * sets it), metrics.listen "" and redis.port. The runs differ only in when
 * the two streams are written:
 *
 *   run 1  scan stream, then case stream, then riskd starts;
 *   run 2  case stream, then scan stream, then riskd starts;
 *   run 3  case stream, riskd starts and drains it, then scan stream.
 *
 * Entries get explicit ids ("<n>-0", n counting from 1 per stream), so the
 * evidence and the alert ids cannot depend on when they were written. A run
 * ends when the group has no lag and nothing pending on both streams and
 * the alerts stream has not grown for STABLE_MS; riskd is then stopped with
 * SIGTERM and must exit 0. Each run is checked against the scenario's
 * expect / forbid / exact / dead, and the alerts of the three runs (all
 * fields but emitted_at, sorted by id) must be identical; a mismatch prints
 * what only one run has. Every failure of a scenario is reported before the
 * test fails; riskd's log is printed for a run that went wrong and the
 * run's directories are kept.
 *
 * The scenario directory is $SCENARIO_DIR or tests/scenarios (relative to
 * the working directory, the repository root under `make test`); setting
 * $SCENARIO to a substring runs only the matching files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "internal.h"

#define STABLE_MS 300
#define POLL_MS 20
#define DRAIN_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 15000
#define REPORT_MAX (64 * 1024)
#define MAX_SCENARIOS 256

enum { RUN_SCAN_FIRST, RUN_CASE_FIRST, RUN_CASE_DRAINED, RUN_COUNT };

static const char *const run_names[RUN_COUNT] = {
    "run 1 (scan written first, then case)",
    "run 2 (case written first, then scan)",
    "run 3 (case drained by riskd, then scan written)",
};

/* One scenario file: the cmocka test's state. */
typedef struct scen_file {
    char path[512];
    char name[256];
} scen_file;

/* A parsed scenario. The json_t members are borrowed from root. */
typedef struct scen {
    json_t *root;
    const char *name;
    char *config;                   /* the riskd config, serialised */
    const char *scan_key, *case_key, *group, *alerts_key;
    json_t *scan, *cas;             /* arrays of events */
    json_t *expect, *forbid;        /* arrays, may be NULL */
    bool exact;
    long long dead;                 /* < 0: not checked */
} scen;

/* The outcome of one run. */
typedef struct run_result {
    bool completed;                 /* drained and stopped */
    json_t *alerts;                 /* normalised, sorted by id */
    long long dead;
} run_result;

/* The failures of one scenario, collected for one message. */
typedef struct report {
    char buf[REPORT_MAX];
    size_t len;
    int failures;
} report;

/* Append a formatted line to rep (truncated when full). */
static void rep_add(report *rep, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (rep->len + 2 >= sizeof(rep->buf))
        return;
    va_start(ap, fmt);
    n = vsnprintf(rep->buf + rep->len, sizeof(rep->buf) - rep->len - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    rep->len += (size_t)n;
    if (rep->len > sizeof(rep->buf) - 2)
        rep->len = sizeof(rep->buf) - 2;
    rep->buf[rep->len++] = '\n';
    rep->buf[rep->len] = '\0';
}

/* ===================================================================
 * Loading a scenario
 * =================================================================== */

/* Replace every "$BUILD" in the strings of v (recursively) with the build
 * directory. Returns 0, or -1 when out of memory. */
static int subst_build(json_t *v)
{
    const char *key;
    json_t *child;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, child)
            if (subst_build(child) != 0)
                return -1;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
            if (subst_build(child) != 0)
                return -1;
    } else if (json_is_string(v) && strstr(json_string_value(v), "$BUILD") != NULL) {
        const char *s = json_string_value(v), *b = it_build_dir(), *p;
        size_t cap = strlen(s) * (strlen(b) + 1) + 1, n = 0;
        char *out = malloc(cap);
        if (out == NULL)
            return -1;
        while ((p = strstr(s, "$BUILD")) != NULL) {
            memcpy(out + n, s, (size_t)(p - s));
            n += (size_t)(p - s);
            memcpy(out + n, b, strlen(b));
            n += strlen(b);
            s = p + 6;
        }
        memcpy(out + n, s, strlen(s) + 1);
        if (json_string_set(v, out) != 0) {
            free(out);
            return -1;
        }
        free(out);
    }
    return 0;
}

/* The string at obj.section.key, or def when absent or not a string. */
static const char *cfg_str(const json_t *cfg, const char *section, const char *key,
                           const char *def)
{
    const char *s = json_string_value(json_object_get(json_object_get(cfg, section), key));
    return s != NULL ? s : def;
}

static bool key_in(const char *key, const char *const *keys)
{
    for (; *keys != NULL; keys++)
        if (strcmp(key, *keys) == 0)
            return true;
    return false;
}

/* Check the matcher objects of arr (named what) in rep: objects with a
 * string detector and only known keys. Returns the number of problems. */
static int check_matchers(const json_t *arr, const char *what, bool with_count,
                          report *rep)
{
    static const char *const keys[] = {
        "detector", "rule", "subject", "count", "severity", "ts", "value",
        "threshold", "status", NULL
    };
    const char *key;
    json_t *m, *v;
    size_t i;
    int bad = 0;

    if (arr == NULL)
        return 0;
    if (!json_is_array(arr)) {
        rep_add(rep, "format: %s must be an array", what);
        return 1;
    }
    json_array_foreach(arr, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "detector"))) {
            rep_add(rep, "format: %s[%zu] must be an object with a string \"detector\"", what, i);
            bad++;
            continue;
        }
        json_object_foreach(m, key, v) {
            if (!key_in(key, keys) || (!with_count && strcmp(key, "count") == 0)) {
                rep_add(rep, "format: %s[%zu].%s: unknown key", what, i, key);
                bad++;
            }
        }
        v = json_object_get(m, "count");
        if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            rep_add(rep, "format: %s[%zu].count: expected an integer >= 0", what, i);
            bad++;
        }
        v = json_object_get(m, "subject");
        if (v != NULL && !json_is_object(v)) {
            rep_add(rep, "format: %s[%zu].subject: expected an object", what, i);
            bad++;
        }
    }
    return bad;
}

/* Load and validate the scenario file path into *sc. Returns 0, or -1 with
 * the problems in rep (sc is then freed with scen_free all the same). */
static int scen_load(const char *path, scen *sc, report *rep)
{
    static const char *const keys[] = {
        "name", "description", "config", "scan", "case", "expect", "forbid",
        "exact", "dead", NULL
    };
    json_error_t jerr;
    json_t *cfg, *clock, *v;
    const char *key;
    int bad = 0;
    size_t i;

    memset(sc, 0, sizeof(*sc));
    sc->dead = -1;
    sc->root = json_load_file(path, 0, &jerr);
    if (sc->root == NULL || !json_is_object(sc->root)) {
        rep_add(rep, "format: %s: %s (line %d)", path,
                sc->root ? "not a JSON object" : jerr.text, jerr.line);
        return -1;
    }
    json_object_foreach(sc->root, key, v) {
        if (!key_in(key, keys)) {
            rep_add(rep, "format: %s: unknown key", key);
            bad++;
        }
    }
    sc->name = json_string_value(json_object_get(sc->root, "name"));
    if (sc->name == NULL) {
        rep_add(rep, "format: name: expected a string");
        bad++;
    }
    sc->scan = json_object_get(sc->root, "scan");
    sc->cas = json_object_get(sc->root, "case");
    if ((sc->scan != NULL && !json_is_array(sc->scan)) ||
        (sc->cas != NULL && !json_is_array(sc->cas))) {
        rep_add(rep, "format: scan and case must be arrays of events");
        return -1;
    }
    json_array_foreach(sc->scan, i, v) {
        if (!json_is_object(v) && !json_is_string(v)) {
            rep_add(rep, "format: scan[%zu]: expected an object or a string", i);
            bad++;
        }
    }
    json_array_foreach(sc->cas, i, v) {
        if (!json_is_object(v) && !json_is_string(v)) {
            rep_add(rep, "format: case[%zu]: expected an object or a string", i);
            bad++;
        }
    }
    sc->expect = json_object_get(sc->root, "expect");
    sc->forbid = json_object_get(sc->root, "forbid");
    bad += check_matchers(sc->expect, "expect", true, rep);
    bad += check_matchers(sc->forbid, "forbid", false, rep);
    v = json_object_get(sc->root, "exact");
    if (v != NULL && !json_is_boolean(v)) {
        rep_add(rep, "format: exact: expected true or false");
        bad++;
    }
    sc->exact = json_is_true(v);
    v = json_object_get(sc->root, "dead");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            rep_add(rep, "format: dead: expected an integer >= 0");
            bad++;
        } else {
            sc->dead = json_integer_value(v);
        }
    }

    v = json_object_get(sc->root, "config");
    if (v != NULL && !json_is_object(v)) {
        rep_add(rep, "format: config: expected an object");
        return -1;
    }
    cfg = v != NULL ? json_deep_copy(v) : json_object();
    if (cfg == NULL || subst_build(cfg) != 0) {
        json_decref(cfg);
        rep_add(rep, "out of memory");
        return -1;
    }
    clock = json_object_get(cfg, "clock");
    if (clock == NULL) {
        clock = json_object();
        json_object_set_new(cfg, "clock", clock);
    }
    if (json_is_object(clock) && json_object_get(clock, "wall_advance") == NULL)
        json_object_set_new(clock, "wall_advance", json_false());
    /* Entries are acknowledged after a checkpoint; a run ends when both
     * groups are drained, so checkpoint often (unless the scenario says). */
    {
        json_t *st = json_object_get(cfg, "state");
        if (st == NULL) {
            st = json_object();
            json_object_set_new(cfg, "state", st);
        }
        if (json_is_object(st) && json_object_get(st, "interval") == NULL)
            json_object_set_new(st, "interval", json_string("100ms"));
    }
    sc->config = json_dumps(cfg, JSON_COMPACT);
    /* Keep the names the runner needs; cfg itself is dropped below, so
     * copy them into root, which outlives the run. */
    json_object_set_new(sc->root, "_scan_key",
                        json_string(cfg_str(cfg, "streams", "scan", "enforce:scan")));
    json_object_set_new(sc->root, "_case_key",
                        json_string(cfg_str(cfg, "streams", "case", "enforce:case")));
    json_object_set_new(sc->root, "_group",
                        json_string(cfg_str(cfg, "streams", "group", "riskd")));
    json_object_set_new(sc->root, "_alerts",
                        json_string(cfg_str(cfg, "alerts", "stream", "alerts")));
    json_decref(cfg);
    sc->scan_key = json_string_value(json_object_get(sc->root, "_scan_key"));
    sc->case_key = json_string_value(json_object_get(sc->root, "_case_key"));
    sc->group = json_string_value(json_object_get(sc->root, "_group"));
    sc->alerts_key = json_string_value(json_object_get(sc->root, "_alerts"));
    if (sc->config == NULL || sc->scan_key == NULL || sc->case_key == NULL ||
        sc->group == NULL || sc->alerts_key == NULL) {
        rep_add(rep, "out of memory");
        return -1;
    }
    return bad ? -1 : 0;
}

static void scen_free(scen *sc)
{
    free(sc->config);
    json_decref(sc->root);
    memset(sc, 0, sizeof(*sc));
}

/* ===================================================================
 * One run
 * =================================================================== */

/* XADD every event of arr to key with ids 1-0, 2-0, ... Returns 0, or -1
 * with the reason in rep. */
static int write_stream(redisContext *c, const char *key, const json_t *arr,
                        report *rep, const char *run)
{
    json_t *ev;
    size_t i;

    json_array_foreach(arr, i, ev) {
        char id[32], *dumped = NULL;
        const char *data;
        redisReply *r;
        bool ok;

        if (json_is_string(ev)) {
            data = json_string_value(ev);
        } else {
            dumped = json_dumps(ev, JSON_COMPACT);
            if (dumped == NULL) {
                rep_add(rep, "%s: out of memory", run);
                return -1;
            }
            data = dumped;
        }
        snprintf(id, sizeof(id), "%zu-0", i + 1);
        r = it_cmd(c, "XADD %s %s data %s", key, id, data);
        ok = r->type == REDIS_REPLY_STRING;
        if (!ok)
            rep_add(rep, "%s: XADD %s %s failed: %s", run, key, id,
                    r->type == REDIS_REPLY_ERROR ? r->str : "?");
        freeReplyObject(r);
        free(dumped);
        if (!ok)
            return -1;
    }
    return 0;
}

/* lag 0 and nothing pending for group on key (XINFO GROUPS). */
static bool group_drained(redisContext *c, const char *key, const char *group)
{
    redisReply *r = it_cmd(c, "XINFO GROUPS %s", key);
    bool drained = false;
    size_t i, k;

    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            redisReply *g = r->element[i];
            long long pending = -1, lag = -1;
            bool match = false;
            if (g->type != REDIS_REPLY_ARRAY)
                continue;
            for (k = 0; k + 1 < g->elements; k += 2) {
                const char *f = g->element[k]->str;
                redisReply *v = g->element[k + 1];
                if (f == NULL)
                    continue;
                if (strcmp(f, "name") == 0 && v->type == REDIS_REPLY_STRING)
                    match = strcmp(v->str, group) == 0;
                else if (strcmp(f, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                    pending = v->integer;
                else if (strcmp(f, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                    lag = v->integer;
            }
            if (match)
                drained = pending == 0 && lag == 0;
        }
    }
    freeReplyObject(r);
    return drained;
}

/* Wait until both streams (or only the case stream when case_only) are
 * drained, with riskd alive. Returns 0, or -1 with the reason in rep. */
static int wait_drained(redisContext *c, it_riskd *d, const scen *sc, bool case_only,
                        report *rep, const char *run)
{
    int waited = 0;
    for (;;) {
        if (!it_riskd_alive(d)) {
            rep_add(rep, "%s: riskd exited before draining the streams", run);
            return -1;
        }
        if (group_drained(c, sc->case_key, sc->group) &&
            (case_only || group_drained(c, sc->scan_key, sc->group)))
            return 0;
        if (waited >= DRAIN_TIMEOUT_MS) {
            rep_add(rep, "%s: the streams were not drained within %d ms", run,
                    DRAIN_TIMEOUT_MS);
            return -1;
        }
        it_sleep_ms(POLL_MS);
        waited += POLL_MS;
    }
}

/* Wait until XLEN alerts has not changed for STABLE_MS with both streams
 * still drained. Returns 0, or -1 with the reason in rep. */
static int wait_stable(redisContext *c, it_riskd *d, const scen *sc, report *rep,
                       const char *run)
{
    long long last = it_int(c, "XLEN %s", sc->alerts_key);
    int still = 0, waited = 0;

    while (still < STABLE_MS) {
        long long n;
        if (waited >= DRAIN_TIMEOUT_MS) {
            rep_add(rep, "%s: the alert count did not settle", run);
            return -1;
        }
        it_sleep_ms(POLL_MS);
        waited += POLL_MS;
        n = it_int(c, "XLEN %s", sc->alerts_key);
        if (n != last) {
            last = n;
            still = 0;
            if (wait_drained(c, d, sc, false, rep, run) != 0)
                return -1;
        } else {
            still += POLL_MS;
        }
    }
    return 0;
}

static int cmp_alert(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *ix = json_string_value(json_object_get(x, "id"));
    const char *iy = json_string_value(json_object_get(y, "id"));
    const char *sx = json_string_value(json_object_get(x, "status"));
    const char *sy = json_string_value(json_object_get(y, "status"));
    int c = strcmp(ix ? ix : "", iy ? iy : "");
    return c != 0 ? c : strcmp(sx ? sx : "", sy ? sy : "");
}

/* The alerts of raw without emitted_at, sorted by id, as a new array;
 * NULL when out of memory. */
static json_t *normalise(const json_t *raw)
{
    size_t n = json_array_size(raw), i;
    json_t **v = calloc(n + 1, sizeof(*v)), *out = json_array();

    if (v == NULL || out == NULL) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        v[i] = json_deep_copy(json_array_get(raw, i));
        if (v[i] != NULL)
            json_object_del(v[i], "emitted_at");
    }
    qsort(v, n, sizeof(*v), cmp_alert);
    for (i = 0; i < n; i++)
        if (v[i] != NULL)
            json_array_append_new(out, v[i]);
    free(v);
    return out;
}

/* Remove a run's directory and the files directly in it. */
static void remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    const struct dirent *de;
    char p[600];

    if (dp == NULL)
        return;
    while ((de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(dp);
    rmdir(dir);
}

/* Run scenario sc once in the given mode into *out. Failures go to rep;
 * out->completed tells whether the alerts are complete. */
static void run_once(const scen *sc, int mode, run_result *out, report *rep)
{
    const char *run = run_names[mode];
    it_redis redis;
    it_riskd d;
    redisContext *c;
    json_t *raw;
    int st;
    bool ok = false;

    memset(out, 0, sizeof(*out));
    memset(&d, 0, sizeof(d));
    if (it_redis_start(&redis, NULL) != 0) {
        rep_add(rep, "%s: cannot start redis-server", run);
        rep->failures++;
        return;
    }
    c = it_connect(redis.port);

    if (mode == RUN_SCAN_FIRST) {
        if (write_stream(c, sc->scan_key, sc->scan, rep, run) != 0 ||
            write_stream(c, sc->case_key, sc->cas, rep, run) != 0)
            goto done;
    } else {
        if (write_stream(c, sc->case_key, sc->cas, rep, run) != 0)
            goto done;
        if (mode == RUN_CASE_FIRST &&
            write_stream(c, sc->scan_key, sc->scan, rep, run) != 0)
            goto done;
    }
    if (it_riskd_start(&d, redis.port, sc->config) != 0) {
        rep_add(rep, "%s: cannot start riskd", run);
        goto done;
    }
    if (mode == RUN_CASE_DRAINED) {
        if (wait_drained(c, &d, sc, true, rep, run) != 0 ||
            write_stream(c, sc->scan_key, sc->scan, rep, run) != 0)
            goto done;
    }
    if (wait_drained(c, &d, sc, false, rep, run) != 0 ||
        wait_stable(c, &d, sc, rep, run) != 0)
        goto done;

    raw = it_alerts(c, sc->alerts_key);
    out->alerts = normalise(raw);
    json_decref(raw);
    out->dead = it_int(c, "XLEN riskd:dead");
    if (out->alerts == NULL) {
        rep_add(rep, "%s: out of memory", run);
        goto done;
    }
    it_riskd_signal(&d, SIGTERM);
    st = it_riskd_wait(&d, STOP_TIMEOUT_MS);
    if (st != 0) {
        rep_add(rep, "%s: riskd exited with status %d on SIGTERM", run, st);
        goto done;
    }
    out->completed = true;
    ok = true;

done:
    if (!ok) {
        rep->failures++;
        if (d.dir[0] != '\0') {
            it_riskd_dump_log(&d);
            rep_add(rep, "%s: riskd log kept in %s", run, d.log);
        }
    }
    if (d.pid > 0) {
        it_riskd_signal(&d, SIGKILL);
        it_riskd_wait(&d, 5000);
    }
    redisFree(c);
    it_redis_kill(&redis);
    if (ok) {
        remove_dir(d.dir);
        remove_dir(redis.dir);
    }
}

/* ===================================================================
 * Checks
 * =================================================================== */

/* ts of an expectation (epoch ms integer or RFC 3339 string) into *ms. */
static int parse_ts(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        *ms = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v))
        return rk__parse_rfc3339(json_string_value(v), ms);
    return -1;
}

static bool num_eq(double a, double b)
{
    double scale = fabs(a) > 1.0 ? fabs(a) : 1.0;
    return fabs(a - b) <= 1e-9 * scale;
}

/* Does alert a satisfy matcher m (detector, status - default "firing",
 * so a matcher without it matches alerts, not notices -, rule, exact
 * subject, severity, ts, value, threshold: each only when m has it)? */
static bool matches(const json_t *a, const json_t *m)
{
    const json_t *v;
    int64_t want, got;

    const char *ws = json_string_value(json_object_get(m, "status"));
    const char *gs = json_string_value(json_object_get(a, "status"));

    if (!json_equal(json_object_get(a, "detector"), json_object_get(m, "detector")))
        return false;
    /* status: "firing" (the default) matches alerts, else that notice */
    if (strcmp(ws ? ws : "firing", gs ? gs : "firing") != 0)
        return false;
    if ((v = json_object_get(m, "rule")) != NULL &&
        !json_equal(json_object_get(a, "rule"), v))
        return false;
    if ((v = json_object_get(m, "subject")) != NULL &&
        !json_equal(json_object_get(a, "subject"), v))
        return false;
    if ((v = json_object_get(m, "severity")) != NULL &&
        !json_equal(json_object_get(a, "severity"), v))
        return false;
    if ((v = json_object_get(m, "ts")) != NULL &&
        (parse_ts(v, &want) != 0 || parse_ts(json_object_get(a, "ts"), &got) != 0 ||
         want != got))
        return false;
    if ((v = json_object_get(m, "value")) != NULL &&
        (!json_is_number(json_object_get(a, "value")) ||
         !num_eq(json_number_value(json_object_get(a, "value")), json_number_value(v))))
        return false;
    if ((v = json_object_get(m, "threshold")) != NULL &&
        (!json_is_number(json_object_get(a, "threshold")) ||
         !num_eq(json_number_value(json_object_get(a, "threshold")), json_number_value(v))))
        return false;
    return true;
}

static size_t count_matches(const json_t *alerts, const json_t *m)
{
    size_t i, n = 0;
    json_t *a;
    json_array_foreach(alerts, i, a)
        if (matches(a, m))
            n++;
    return n;
}

/* Print the alerts in compact form, one per line, into rep. */
static void rep_alerts(report *rep, const char *title, const json_t *alerts)
{
    size_t i;
    json_t *a;
    rep_add(rep, "  %s (%zu):", title, json_array_size(alerts));
    json_array_foreach(alerts, i, a) {
        char *subj = json_dumps(json_object_get(a, "subject"), JSON_COMPACT | JSON_SORT_KEYS);
        rep_add(rep, "    %s %s/%s %s ts=%s value=%g id=%s",
                json_string_value(json_object_get(a, "status")),
                json_string_value(json_object_get(a, "detector")),
                json_string_value(json_object_get(a, "rule")), subj ? subj : "?",
                json_string_value(json_object_get(a, "ts")),
                json_number_value(json_object_get(a, "value")),
                json_string_value(json_object_get(a, "id")));
        free(subj);
    }
}

/* Check one run's alerts against expect / forbid / exact / dead. Returns
 * the number of failed checks (described in rep). */
static int check_run(const scen *sc, const run_result *r, const char *run, report *rep)
{
    long long total = 0;
    int bad = 0;
    size_t i;
    json_t *m;

    json_array_foreach(sc->expect, i, m) {
        json_t *cv = json_object_get(m, "count");
        long long want = cv ? json_integer_value(cv) : 1;
        size_t got = count_matches(r->alerts, m);
        char *d = json_dumps(m, JSON_COMPACT);
        total += want;
        if ((long long)got != want) {
            rep_add(rep, "%s: expect[%zu] %s: %zu matching alerts, want %lld",
                    run, i, d ? d : "?", got, want);
            bad++;
        }
        free(d);
    }
    json_array_foreach(sc->forbid, i, m) {
        size_t got = count_matches(r->alerts, m);
        if (got != 0) {
            char *d = json_dumps(m, JSON_COMPACT);
            rep_add(rep, "%s: forbid[%zu] %s: %zu matching alerts", run, i, d ? d : "?", got);
            free(d);
            bad++;
        }
    }
    if (sc->exact && (long long)json_array_size(r->alerts) != total) {
        rep_add(rep, "%s: exact: %zu alerts, expected %lld", run,
                json_array_size(r->alerts), total);
        bad++;
    }
    if (sc->dead >= 0 && r->dead != sc->dead) {
        rep_add(rep, "%s: dead: riskd:dead holds %lld entries, want %lld", run,
                r->dead, sc->dead);
        bad++;
    }
    if (bad)
        rep_alerts(rep, "alerts of this run", r->alerts);
    return bad;
}

/* Is alert a (serialised as s) in arr, by full content? */
static bool contains_dump(const json_t *arr, const char *s)
{
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) {
        char *d = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        bool eq = d != NULL && strcmp(d, s) == 0;
        free(d);
        if (eq)
            return true;
    }
    return false;
}

/* Report the alerts of x missing from y (by full content). */
static void rep_missing(report *rep, const json_t *x, const json_t *y, const char *title)
{
    size_t i;
    json_t *a;
    json_array_foreach(x, i, a) {
        char *d = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        if (d != NULL && !contains_dump(y, d))
            rep_add(rep, "  only in %s: %s", title, d);
        free(d);
    }
}

/* Compare run k with run 0: same alerts (all fields but emitted_at) and
 * dead-letter count. Returns 0 when identical, else 1 with a diff in rep. */
static int compare_runs(const scen *sc, const run_result *r0, const run_result *rk,
                        int k, report *rep)
{
    if (json_equal(r0->alerts, rk->alerts) && r0->dead == rk->dead)
        return 0;
    rep_add(rep, "scenario %s: %s differs from %s:", sc->name, run_names[k],
            run_names[0]);
    if (r0->dead != rk->dead)
        rep_add(rep, "  riskd:dead: %lld vs %lld", r0->dead, rk->dead);
    rep_missing(rep, r0->alerts, rk->alerts, "run 1");
    rep_missing(rep, rk->alerts, r0->alerts, k == 1 ? "run 2" : "run 3");
    if (json_array_size(r0->alerts) != json_array_size(rk->alerts))
        rep_add(rep, "  counts: %zu vs %zu", json_array_size(r0->alerts),
                json_array_size(rk->alerts));
    return 1;
}

/* ===================================================================
 * Tests
 * =================================================================== */

static void test_scenario(void **state)
{
    const scen_file *f = *state;
    report *rep = calloc(1, sizeof(*rep));
    run_result res[RUN_COUNT];
    scen sc;
    int k;

    assert_non_null(rep);
    memset(res, 0, sizeof(res));
    if (scen_load(f->path, &sc, rep) != 0) {
        scen_free(&sc);
        fprintf(stderr, "%s", rep->buf);
        free(rep);
        fail_msg("%s: invalid scenario file", f->path);
    }
    for (k = 0; k < RUN_COUNT; k++) {
        run_once(&sc, k, &res[k], rep);
        if (!res[k].completed)
            continue;
        /* A run equal to run 1 has the same check results: say them once. */
        if (k > 0 && res[0].completed && json_equal(res[0].alerts, res[k].alerts) &&
            res[0].dead == res[k].dead)
            continue;
        rep->failures += check_run(&sc, &res[k], run_names[k], rep);
    }
    for (k = 1; k < RUN_COUNT; k++)
        if (res[0].completed && res[k].completed)
            rep->failures += compare_runs(&sc, &res[0], &res[k], k, rep);

    if (rep->failures > 0)
        fprintf(stderr, "scenario %s (%s): %d failure(s)\n%s", sc.name, f->path,
                rep->failures, rep->buf);
    k = rep->failures;
    for (int i = 0; i < RUN_COUNT; i++)
        json_decref(res[i].alerts);
    free(rep);
    if (k > 0) {
        scen_free(&sc);
        fail_msg("scenario %s failed", f->name);
    }
    /* The scenario held at least one check, or it could never fail. */
    assert_true(json_array_size(sc.expect) + json_array_size(sc.forbid) > 0 ||
                sc.dead >= 0);
    scen_free(&sc);
}

/* No scenario files at all is a failure, not a silent pass. */
static void test_no_scenarios(void **state)
{
    (void)state;
    fail_msg("no *.json files in the scenario directory");
}

static int json_filter(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    const char *only = getenv("SCENARIO");
    if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
        return 0;
    return only == NULL || *only == '\0' || strstr(de->d_name, only) != NULL;
}

int main(void)
{
    const char *dir = getenv("SCENARIO_DIR");
    struct dirent **names = NULL;
    struct CMUnitTest *tests;
    scen_file *files;
    int nfiles, n, i, rc;

    if (dir == NULL || *dir == '\0')
        dir = "tests/scenarios";
    nfiles = scandir(dir, &names, json_filter, alphasort);
    if (nfiles < 0) {
        fprintf(stderr, "cannot read %s\n", dir);
        nfiles = 0;
    }
    n = nfiles < MAX_SCENARIOS ? nfiles : MAX_SCENARIOS;
    tests = calloc((size_t)n + 1, sizeof(*tests));
    files = calloc((size_t)n + 1, sizeof(*files));
    if (tests == NULL || files == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (i = 0; i < n; i++) {
        snprintf(files[i].path, sizeof(files[i].path), "%s/%s", dir, names[i]->d_name);
        snprintf(files[i].name, sizeof(files[i].name), "%s", names[i]->d_name);
        tests[i].name = files[i].name;
        tests[i].test_func = test_scenario;
        tests[i].initial_state = &files[i];
    }
    if (n == 0) {
        tests[0].name = "no_scenarios";
        tests[0].test_func = test_no_scenarios;
        n = 1;
    }
    /* cmocka_run_group_tests() needs an array of static size; this is the
     * function it expands to, with the count of the scenario files. */
    rc = _cmocka_run_group_tests("scenarios", tests, (size_t)n, NULL, NULL);
    for (i = 0; i < nfiles; i++)
        free(names[i]);
    free(names);
    free(tests);
    free(files);
    return rc;
}
