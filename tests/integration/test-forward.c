/* tests/integration/test-forward.c - riskctl forward against a real
 * Prometheus Alertmanager (Debian prometheus-alertmanager) and a real
 * redis-server.
 *
 * Alertmanager runs on a free port with a temporary --storage.path, a
 * minimal configuration (one receiver that sends nowhere) and clustering
 * off. Alerts and notices are seeded straight into Redis in the shared
 * lifecycle format, as riskd and riskctl write them. Checked through GET
 * /api/v2/alerts (which lists the alerts that have not ended): the open
 * alerts appear with their labels and annotations (a silenced one does
 * not); a new firing alert appears; a resolved notice and riskctl close
 * end theirs; with Alertmanager killed, an alert raised and one raised and
 * closed meanwhile are kept, the failures counted
 * (riskd_forward_errors_total, riskd_forward_up 0) and logged once; after
 * Alertmanager is started again, the open alerts are sent again (the
 * earlier ones too) and the one closed meanwhile stays ended. The
 * Alertmanager binary missing fails the test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"
#include "internal.h"

#define AM_BIN      "/usr/bin/prometheus-alertmanager"
#define WAIT_MS     45000           /* the backoff reaches 30 s */

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256], cfg[300], amcfg[300], amdata[300], amlog[300], fwdlog[300];
    int am_port, metrics_port;
    pid_t am, fwd;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    FILE *fp;
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "fwd") != 0)
        goto fail;
    snprintf(f->cfg, sizeof(f->cfg), "%s/ctl.json", f->dir);
    snprintf(f->amcfg, sizeof(f->amcfg), "%s/alertmanager.yml", f->dir);
    snprintf(f->amdata, sizeof(f->amdata), "%s/amdata", f->dir);
    snprintf(f->amlog, sizeof(f->amlog), "%s/alertmanager.log", f->dir);
    snprintf(f->fwdlog, sizeof(f->fwdlog), "%s/forward.log", f->dir);
    if (it_write_config(f->cfg, f->env.redis.port, "{}") != 0 ||
        (fp = fopen(f->amcfg, "w")) == NULL)
        goto fail;
    fputs("route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n", fp);
    fclose(fp);
    f->am_port = it_free_port();
    f->metrics_port = it_free_port();
    *state = f;
    return 0;
fail:
    it_fixture_free(f);
    return -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->fwd > 0)
        itc_stop(f->fwd, SIGKILL, 5000);
    if (f->am > 0)
        itc_stop(f->am, SIGKILL, 5000);
    it_fixture_free(f);
    return 0;
}

static bool am_ready(void *arg)
{
    fixture *f = arg;
    char buf[256];
    return it_http_get(f->am_port, "/-/ready", buf, sizeof(buf)) == 200;
}

static void am_start(fixture *f)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", f->am_port);
    {
        char a1[400], a2[400], a3[100];
        const char *const args[] = {a1, a2, a3, "--cluster.listen-address=",
                                    "--log.level=warn", NULL};
        snprintf(a1, sizeof(a1), "--config.file=%s", f->amcfg);
        snprintf(a2, sizeof(a2), "--storage.path=%s", f->amdata);
        snprintf(a3, sizeof(a3), "--web.listen-address=%s", listen);
        f->am = itc_spawn(AM_BIN, f->amlog, args);
    }
    assert_true(f->am > 0);
    if (!it_wait_until(am_ready, f, WAIT_MS)) {
        FILE *fp = fopen(f->amlog, "r");
        char buf[4096];
        size_t n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
        buf[n] = '\0';
        if (fp)
            fclose(fp);
        fail_msg("alertmanager did not become ready on %s:\n%s", listen, buf);
    }
}

/* The active alerts in Alertmanager: riskd_id -> the alert. */
static json_t *am_alerts(fixture *f)
{
    static char buf[1 << 20];
    json_t *arr, *out = json_object(), *a;
    size_t i;
    if (it_http_get(f->am_port, "/api/v2/alerts", buf, sizeof(buf)) != 200)
        return out;
    arr = json_loads(buf, 0, NULL);
    json_array_foreach(arr, i, a) {
        const char *id = json_string_value(json_object_get(json_object_get(a, "labels"),
                                                           "riskd_id"));
        if (id != NULL)
            json_object_set(out, id, a);
    }
    json_decref(arr);
    return out;
}

typedef struct want {
    fixture *f;
    const char *present[4];
    const char *absent[4];
} want;

/* Every id of present active in Alertmanager, none of absent. */
static bool am_has(void *arg)
{
    want *w = arg;
    json_t *m = am_alerts(w->f);
    bool ok = true;
    for (int i = 0; i < 4; i++) {
        if (w->present[i] && json_object_get(m, w->present[i]) == NULL)
            ok = false;
        if (w->absent[i] && json_object_get(m, w->absent[i]) != NULL)
            ok = false;
    }
    json_decref(m);
    return ok;
}

static void expect_am(fixture *f, const char *p0, const char *p1, const char *a0,
                      const char *a1, const char *what)
{
    want w = {f, {p0, p1, NULL, NULL}, {a0, a1, NULL, NULL}};
    if (!it_wait_until(am_has, &w, WAIT_MS)) {
        char buf[8192];
        it_http_get(f->am_port, "/api/v2/alerts", buf, sizeof(buf));
        fail_msg("%s: Alertmanager's alerts are not as expected:\n%s", what, buf);
    }
}

static void make_id(char id[33], unsigned n)
{
    snprintf(id, 33, "%016x%016x", 0xfeedu, n);
}

/* A firing alert as riskd writes it (stream, open hash, dedupe key). */
static void fire(fixture *f, const char *id, const char *unit, const char *silenced_by)
{
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"status\":\"firing\",\"detector\":\"bad_rating\","
             "\"rule\":\"officer_repeated\",\"severity\":\"critical\","
             "\"ts\":\"2025-03-01T09:30:00.000+08:00\",\"emitted_at\":"
             "\"2025-03-01T09:30:01.000+08:00\",\"subject\":{\"unit_id\":\"%s\","
             "\"officer_id\":\"O7\"},\"value\":3,\"threshold\":3,\"summary\":"
             "\"执法人员王五30天内差评3次\",\"evidence\":[\"enforce:scan/1-0\","
             "\"enforce:scan/2-0\"]%s%s%s}", id, unit,
             silenced_by ? ",\"silenced\":true,\"silenced_by\":\"" : "",
             silenced_by ? silenced_by : "", silenced_by ? "\"" : "");
    freeReplyObject(it_cmd(f->env.c, "SET riskd:alert:%s 1", id));
    freeReplyObject(it_cmd(f->env.c, "HSET riskd:open %s %s", id, json));
    freeReplyObject(it_cmd(f->env.c, "XADD alerts * data %s", json));
}

/* The engine's resolved notice (HDEL open, XADD). */
static void resolve(fixture *f, const char *id, const char *unit)
{
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"status\":\"resolved\",\"detector\":\"bad_rating\","
             "\"rule\":\"officer_repeated\",\"severity\":\"critical\",\"subject\":"
             "{\"unit_id\":\"%s\",\"officer_id\":\"O7\"},\"summary\":\"x\",\"ts\":"
             "\"2025-03-02T09:30:00.000+08:00\",\"emitted_at\":\"2025-03-02T09:30:00.000+08:00\","
             "\"reason\":\"r\",\"evidence\":[\"enforce:scan/3-0\"]}", id, unit);
    freeReplyObject(it_cmd(f->env.c, "SET riskd:alert:%s:resolved 1", id));
    freeReplyObject(it_cmd(f->env.c, "HDEL riskd:open %s", id));
    freeReplyObject(it_cmd(f->env.c, "XADD alerts * data %s", json));
}

static void ctl_close(fixture *f, const char *id)
{
    itc_result r;
    const char *const a[] = {"-c", f->cfg, "close", id, "--by", "tester", NULL};
    itc_run(&r, f->dir, 30000, a);
    if (r.status != 0)
        fail_msg("riskctl close exited %d: %s", r.status, r.err);
}

typedef struct mwant {
    fixture *f;
    const char *series;
    double min;
} mwant;

static bool metric_at_least(void *arg)
{
    mwant *m = arg;
    return it_metric(m->f->metrics_port, m->series) >= m->min;
}

static bool up_is_zero(void *arg)
{
    fixture *f = arg;
    return it_metric(f->metrics_port, "riskd_forward_up") == 0;
}

static int log_count(const char *path, const char *text)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int n = 0;
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp))
        n += strstr(line, text) != NULL;
    fclose(fp);
    return n;
}

typedef struct lwant {
    const char *path, *text;
} lwant;

/* Whether the log at path has a line with text (the forwarder logs after
 * Alertmanager answered: a test that sees Alertmanager's state may look
 * before the line is written). */
static bool log_has(void *arg)
{
    const lwant *w = arg;
    return log_count(w->path, w->text) > 0;
}

static void test_forward(void **state)
{
    fixture *f = *state;
    char a[33], b[33], s[33], c[33], d[33], bin[512], url[64], maddr[64];
    json_t *m, *x, *labels, *ann;
    const char *key;
    json_t *v;
    int n = 0;

    if (access(AM_BIN, X_OK) != 0)
        fail_msg(AM_BIN " is missing: install the Debian package prometheus-alertmanager");
    make_id(a, 1);
    make_id(b, 2);
    make_id(s, 3);
    make_id(c, 4);
    make_id(d, 5);
    am_start(f);
    fire(f, a, "U1", NULL);
    fire(f, s, "U3", "0011223344556677");   /* silenced: never forwarded */

    itc_riskctl_path(bin, sizeof(bin));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f->am_port);
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", f->metrics_port);
    {
        const char *const args[] = {"-c", f->cfg, "forward", "--url", url, "--interval", "1s",
                                    "--metrics", maddr, NULL};
        f->fwd = itc_spawn(bin, f->fwdlog, args);
        assert_true(f->fwd > 0);
    }

    /* The open alert, with its labels and annotations. */
    expect_am(f, a, NULL, s, NULL, "open alert at start");
    m = am_alerts(f);
    x = json_object_get(m, a);
    labels = json_object_get(x, "labels");
    json_object_foreach(labels, key, v)
        n++;
    assert_int_equal(n, 6);
    assert_string_equal(json_string_value(json_object_get(labels, "alertname")),
                        "officer_repeated");
    assert_string_equal(json_string_value(json_object_get(labels, "detector")), "bad_rating");
    assert_string_equal(json_string_value(json_object_get(labels, "severity")), "critical");
    assert_string_equal(json_string_value(json_object_get(labels, "unit_id")), "U1");
    assert_string_equal(json_string_value(json_object_get(labels, "officer_id")), "O7");
    assert_string_equal(json_string_value(json_object_get(labels, "riskd_id")), a);
    ann = json_object_get(x, "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "summary")),
                        "执法人员王五30天内差评3次");
    assert_string_equal(json_string_value(json_object_get(ann, "evidence")),
                        "enforce:scan/1-0, enforce:scan/2-0");
    assert_string_equal(json_string_value(json_object_get(x, "startsAt")),
                        "2025-03-01T01:30:01.000Z");
    json_decref(m);

    /* A new firing alert appears; a resolved notice and a close end theirs. */
    fire(f, b, "U2", NULL);
    expect_am(f, a, b, NULL, NULL, "new firing alert");
    resolve(f, a, "U1");
    expect_am(f, b, NULL, a, NULL, "resolved");
    ctl_close(f, b);
    expect_am(f, NULL, NULL, a, b, "closed");

    /* Alertmanager gone: a new alert and one raised and closed meanwhile
     * are kept; the failures are counted, and logged once. */
    assert_int_equal(itc_stop(f->am, SIGKILL, 5000), 128 + SIGKILL);
    f->am = 0;
    fire(f, c, "U4", NULL);
    fire(f, d, "U5", NULL);
    {
        mwant w = {f, "riskd_forward_errors_total", 3};
        assert_true(it_wait_until(up_is_zero, f, WAIT_MS));
        assert_true(it_wait_until(metric_at_least, &w, WAIT_MS));
    }
    ctl_close(f, d);
    {
        double e = it_metric(f->metrics_port, "riskd_forward_errors_total");
        mwant w = {f, "riskd_forward_errors_total", e + 1};
        assert_true(it_wait_until(metric_at_least, &w, WAIT_MS));  /* tried again since */
    }
    assert_true(it_metric(f->metrics_port, "riskd_forward_pending") >= 2);
    assert_int_equal(log_count(f->fwdlog, "retrying with backoff"), 1);

    /* Back: c is sent, d stays ended. */
    am_start(f);
    expect_am(f, c, NULL, d, b, "after the restart");
    {
        lwant w = {f->fwdlog, "is reachable again"};
        assert_true(it_wait_until(log_has, &w, WAIT_MS));
    }
    assert_int_equal(log_count(f->fwdlog, "is reachable again"), 1);
    assert_int_equal(log_count(f->fwdlog, "retrying with backoff"), 1);
    assert_true(it_metric(f->metrics_port, "riskd_forward_up") == 1);
    assert_true(it_metric(f->metrics_port, "riskd_forward_sent_total") >= 6);

    /* SIGTERM: a clean stop. */
    assert_int_equal(itc_stop(f->fwd, SIGTERM, 10000), 0);
    f->fwd = 0;
}

/* Alertmanager restarted between two re-sends, with no request failing in
 * between: the open alerts come back at the next interval. */
static void test_resend_after_restart(void **state)
{
    fixture *f = *state;
    char a[33], bin[512], url[64], maddr[64];

    if (access(AM_BIN, X_OK) != 0)
        fail_msg(AM_BIN " is missing: install the Debian package prometheus-alertmanager");
    make_id(a, 11);
    am_start(f);
    fire(f, a, "U1", NULL);
    itc_riskctl_path(bin, sizeof(bin));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->am_port);
    snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", f->metrics_port);
    {
        const char *const args[] = {"-c", f->cfg, "forward", "--url", url, "--interval", "2s",
                                    "--metrics", maddr, NULL};
        f->fwd = itc_spawn(bin, f->fwdlog, args);
    }
    expect_am(f, a, NULL, NULL, NULL, "at start");
    assert_int_equal(itc_stop(f->am, SIGKILL, 5000), 128 + SIGKILL);
    f->am = 0;
    am_start(f);                    /* empty: it keeps no alerts across restarts */
    expect_am(f, a, NULL, NULL, NULL, "re-sent at the next interval");
    assert_int_equal(itc_stop(f->fwd, SIGTERM, 10000), 0);
    f->fwd = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resend_after_restart, setup, teardown),
    };
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
