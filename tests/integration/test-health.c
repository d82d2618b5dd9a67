/* tests/integration/test-health.c - /healthz tells the truth in every state,
 * the consumer lag metrics, and a takeover that starts on time.
 *
 *  - Redis down at start: 503 "redis_down" (not "standby"), with a reason
 *    naming the address; Redis comes up: 200 "consuming", the partition
 *    listed; SIGTERM while Redis is frozen (SIGSTOP, so the final steps
 *    wait): 503 "stopping"; Redis resumes: riskd exits 0.
 *  - standby and takeover: a consumes, b answers 503 "standby" naming a as
 *    the holder; a is SIGKILLed; b is seen "starting" (the takeover wait,
 *    the reason says so) before "consuming", never "redis_down"; and its
 *    engine started at the first heartbeat tick after the wait
 *    (riskd_takeover_wait_ticks 1: the start timer armed on one clock and
 *    checked on another slipped to the second tick).
 *  - lag: riskd's Redis user loses XREADGROUP/XREAD (ACL), so entries
 *    written meanwhile stay undelivered, with ids stamped ten minutes ago:
 *    riskd_group_lag counts them and riskd_group_lag_seconds (and /healthz's
 *    lag) is at least their age, while /healthz answers 503 "refused"; the
 *    permission back, both return to 0 and /healthz to 200.
 *  - reads refused: riskd's user loses only XREADGROUP: /healthz answers
 *    503 "refused" quoting Redis's error, riskd_up is 0, and after several
 *    refused reads (riskd_reads_refused_total) the log has said it once;
 *    the permission back: 200 "consuming", an entry written meanwhile is
 *    consumed, and the log says reads work again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <jansson.h>

#include "itest.h"

typedef struct fixture {
    it_env env;                     /* first: it_fixture_new */
    it_riskd b;                     /* a second instance */
    int mport, bport;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->b.pid > 0 && it_riskd_alive(&f->b)) {
        it_riskd_signal(&f->b, SIGKILL);
        it_riskd_wait(&f->b, 5000);
    }
    it_fixture_free(f);
    return 0;
}

/* GET /healthz: the HTTP status, the body parsed into *out (a JSON object:
 * the body must be one); -1 when nothing answers. */
static int health(int port, json_t **out)
{
    char body[4096];
    json_error_t jerr;
    int st = it_http_get(port, "/healthz", body, sizeof(body));
    *out = NULL;
    if (st < 0)
        return -1;
    *out = json_loads(body, 0, &jerr);
    if (*out == NULL || !json_is_object(*out))
        fail_msg("/healthz body is not a JSON object: %s", body);
    return st;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

typedef struct want_status {
    int port;
    const char *status;
    int http;
} want_status;

static bool has_status(void *arg)
{
    want_status *w = arg;
    json_t *o;
    int st = health(w->port, &o);
    bool ok = st == w->http && strcmp(jstr(o, "status"), w->status) == 0;
    json_decref(o);
    return ok;
}

/* Wait until /healthz on port answers http with that status. */
static void wait_status(const it_riskd *d, int port, const char *status, int http,
                        int timeout_ms)
{
    want_status w = {port, status, http};
    if (!it_wait_until(has_status, &w, timeout_ms)) {
        json_t *o;
        int st = health(port, &o);
        char *s = o ? json_dumps(o, 0) : NULL;
        it_riskd_dump_log(d);
        fail_msg("/healthz never answered %d %s (last: %d %s)", http, status, st,
                 s ? s : "nothing");
    }
}

static void start(fixture *f, it_riskd *d, int *mport, const char *consumer,
                  const char *extra)
{
    char cfg[1024];
    *mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"streams\":{\"consumer\":\"%s\"},"
             "\"metrics\":{\"listen\":\"127.0.0.1:%d\"},"
             "\"state\":{\"interval\":\"200ms\",\"lease_ttl\":\"2s\"}%s%s}",
             consumer, *mport, extra ? "," : "", extra ? extra : "");
    assert_int_equal(it_riskd_start(d, f->env.redis.port, cfg), 0);
}

/* ===================================================================
 * Redis down at start, up, stopping
 * =================================================================== */

static bool answers(void *arg)
{
    json_t *o;
    int st = health(*(int *)arg, &o);
    json_decref(o);
    return st > 0;
}

static void test_redis_down_at_start(void **state)
{
    fixture *f = *state;
    json_t *o, *parts;
    char addr[64];
    int st;

    redisFree(f->env.c);
    f->env.c = NULL;
    it_redis_kill(&f->env.redis);
    start(f, &f->env.riskd, &f->mport, "a", NULL);
    assert_true(it_wait_until(answers, &f->mport, 10000));
    st = health(f->mport, &o);
    assert_int_equal(st, 503);
    assert_string_equal(jstr(o, "status"), "redis_down");
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->env.redis.port);
    assert_non_null(strstr(jstr(o, "reason"), addr));
    assert_int_equal(json_array_size(json_object_get(o, "partitions")), 0);
    json_decref(o);

    assert_int_equal(it_redis_restart(&f->env.redis), 0);
    f->env.c = it_connect(f->env.redis.port);
    wait_status(&f->env.riskd, f->mport, "consuming", 200, 20000);
    st = health(f->mport, &o);
    assert_int_equal(st, 200);
    parts = json_object_get(o, "partitions");
    assert_int_equal(json_array_size(parts), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(parts, 0),
                                                        "partition")), 0);
    assert_string_equal(jstr(json_array_get(parts, 0), "status"), "consuming");
    assert_true(json_is_object(json_object_get(o, "lag")));
    json_decref(o);

    /* Stopping: Redis frozen, so the release waits and the state shows. */
    assert_int_equal(kill(f->env.redis.pid, SIGSTOP), 0);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    wait_status(&f->env.riskd, f->mport, "stopping", 503, 5000);
    assert_int_equal(kill(f->env.redis.pid, SIGCONT), 0);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 30000), 0);
}

/* ===================================================================
 * Standby, takeover
 * =================================================================== */

static void test_standby_takeover(void **state)
{
    fixture *f = *state;
    json_t *o;
    char seen[512] = "";
    bool starting = false, consuming = false;
    int st, i;

    start(f, &f->env.riskd, &f->mport, "a", NULL);
    wait_status(&f->env.riskd, f->mport, "consuming", 200, 15000);
    start(f, &f->b, &f->bport, "b", NULL);
    wait_status(&f->b, f->bport, "standby", 503, 15000);
    st = health(f->bport, &o);
    assert_int_equal(st, 503);
    assert_non_null(strstr(jstr(o, "reason"), "held by \"a\""));
    json_decref(o);
    assert_true(it_metric(f->bport, "riskd_takeover_wait_ticks{partition=\"0\"}") == 0.0);

    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 5000);
    /* Every state b goes through, in order, until it consumes (the wait
     * alone lasts 1.5 s; polled every 10 ms). */
    for (i = 0; i < 3000 && !consuming; i++) {
        const char *s;
        st = health(f->bport, &o);
        s = jstr(o, "status");
        if (strlen(seen) + strlen(s) + 2 < sizeof(seen) &&
            (seen[0] == '\0' || strcmp(strrchr(seen, ' ') ? strrchr(seen, ' ') + 1 : seen,
                                       s) != 0))
            snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%s",
                     seen[0] ? " " : "", s);
        if (strcmp(s, "starting") == 0 && strstr(jstr(o, "reason"), "taking over")) {
            assert_int_equal(st, 503);
            starting = true;
        }
        if (strcmp(s, "consuming") == 0) {
            assert_int_equal(st, 200);
            consuming = true;
        }
        json_decref(o);
        it_sleep_ms(10);
    }
    fprintf(stderr, "b went through: %s\n", seen);
    if (!consuming)
        it_riskd_dump_log(&f->b);
    assert_true(consuming);
    assert_true(starting);
    assert_null(strstr(seen, "redis_down"));
    assert_non_null(strstr(seen, "standby starting"));
    /* Started at the first tick after the wait, not a heartbeat later. */
    assert_true(it_metric(f->bport, "riskd_takeover_wait_ticks{partition=\"0\"}") == 1.0);
    assert_true(it_log_contains(&f->b, "taking over from"));
}

/* ===================================================================
 * Lag
 * =================================================================== */

typedef struct want_metric {
    int port;
    const char *series;
    double min, max;
} want_metric;

static bool metric_in(void *arg)
{
    want_metric *w = arg;
    double v = it_metric(w->port, w->series);
    return v >= w->min && v <= w->max;
}

static void wait_metric(const it_riskd *d, int port, const char *series, double min,
                        double max)
{
    want_metric w = {port, series, min, max};
    if (!it_wait_until(metric_in, &w, 20000)) {
        it_riskd_dump_log(d);
        fail_msg("%s stayed %g, not in [%g, %g]", series, it_metric(port, series), min, max);
    }
}

#define LAG_ENTRIES 50
#define AGE_MS 600000               /* the backlog's ids: ten minutes ago */

static void test_lag_metrics(void **state)
{
    fixture *f = *state;
    struct timeval tv;
    long long ms;
    json_t *o, *lag;
    int i;

    freeReplyObject(it_cmd(f->env.c, "ACL SETUSER rk on >pw ~* &* +@all"));
    start(f, &f->env.riskd, &f->mport, "a",
          "\"redis\":{\"username\":\"rk\",\"password\":\"pw\"}");
    wait_status(&f->env.riskd, f->mport, "consuming", 200, 15000);
    wait_metric(&f->env.riskd, f->mport, "riskd_group_lag{stream=\"enforce:scan\"}", 0, 0);
    wait_metric(&f->env.riskd, f->mport, "riskd_group_lag_seconds{stream=\"enforce:scan\"}",
                0, 0);

    freeReplyObject(it_cmd(f->env.c, "ACL SETUSER rk -xreadgroup -xread"));
    gettimeofday(&tv, NULL);
    ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000 - AGE_MS;
    for (i = 0; i < LAG_ENTRIES; i++)
        freeReplyObject(it_cmd(f->env.c, "XADD enforce:scan %lld-%d data {}", ms, i + 1));
    wait_metric(&f->env.riskd, f->mport, "riskd_group_lag{stream=\"enforce:scan\"}",
                LAG_ENTRIES, LAG_ENTRIES);
    wait_metric(&f->env.riskd, f->mport, "riskd_group_lag_seconds{stream=\"enforce:scan\"}",
                AGE_MS / 1000.0, 1e9);
    assert_true(it_metric(f->mport, "riskd_group_lag_seconds{stream=\"enforce:case\"}") == 0);
    assert_int_equal(health(f->mport, &o), 503);
    assert_string_equal(jstr(o, "status"), "refused");
    lag = json_object_get(o, "lag");
    assert_int_equal(json_integer_value(json_object_get(lag, "entries")), LAG_ENTRIES);
    assert_true(json_number_value(json_object_get(lag, "seconds")) >= AGE_MS / 1000.0);
    json_decref(o);

    freeReplyObject(it_cmd(f->env.c, "ACL SETUSER rk +xreadgroup +xread"));
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 20000));
    wait_status(&f->env.riskd, f->mport, "consuming", 200, 15000);
    wait_metric(&f->env.riskd, f->mport, "riskd_group_lag{stream=\"enforce:scan\"}", 0, 0);
    wait_metric(&f->env.riskd, f->mport, "riskd_group_lag_seconds{stream=\"enforce:scan\"}",
                0, 0);
    assert_int_equal(health(f->mport, &o), 200);
    lag = json_object_get(o, "lag");
    assert_int_equal(json_integer_value(json_object_get(lag, "entries")), 0);
    assert_true(json_number_value(json_object_get(lag, "seconds")) == 0.0);
    json_decref(o);
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 20000), 0);
}

/* ===================================================================
 * Reads refused
 * =================================================================== */

#define REFUSED_LINE "Redis refuses to read the input streams"

static void test_reads_refused(void **state)
{
    fixture *f = *state;
    json_t *o;
    char id[64];

    freeReplyObject(it_cmd(f->env.c, "ACL SETUSER rk on >pw ~* &* +@all"));
    start(f, &f->env.riskd, &f->mport, "a",
          "\"redis\":{\"username\":\"rk\",\"password\":\"pw\"}");
    wait_status(&f->env.riskd, f->mport, "consuming", 200, 15000);
    assert_true(it_metric(f->mport, "riskd_up") == 1);
    assert_true(it_metric(f->mport, "riskd_reads_refused_total") == 0);

    freeReplyObject(it_cmd(f->env.c, "ACL SETUSER rk -xreadgroup"));
    wait_status(&f->env.riskd, f->mport, "refused", 503, 15000);
    assert_int_equal(health(f->mport, &o), 503);
    assert_string_equal(jstr(o, "status"), "refused");
    if (strstr(jstr(o, "reason"), "partition 0: " REFUSED_LINE " (XREADGROUP): ") == NULL ||
        strstr(jstr(o, "reason"), "can't run this command") == NULL)
        fail_msg("reason does not quote Redis's refusal: %s", jstr(o, "reason"));
    assert_string_equal(jstr(json_array_get(json_object_get(o, "partitions"), 0), "status"),
                        "refused");
    json_decref(o);
    assert_true(it_metric(f->mport, "riskd_up") == 0);
    /* Retried every second: said once, the rest held for the summary. */
    wait_metric(&f->env.riskd, f->mport, "riskd_reads_refused_total", 4, 1e9);
    assert_int_equal(it_log_count(&f->env.riskd, REFUSED_LINE), 1);
    assert_int_equal(health(f->mport, &o), 503);
    json_decref(o);

    it_xadd(f->env.c, "enforce:scan", "{}", id, sizeof(id));
    freeReplyObject(it_cmd(f->env.c, "ACL SETUSER rk +xreadgroup"));
    wait_status(&f->env.riskd, f->mport, "consuming", 200, 15000);
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 20000));
    assert_true(it_metric(f->mport, "riskd_up") == 1);
    assert_true(it_log_contains(&f->env.riskd, "reading the input streams works again"));
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 20000), 0);
}

int main(void)
{
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_down_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standby_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lag_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
