/* tests/integration/test-summaries-live.c - the sentences of real alerts.
 *
 * A running riskd against a real redis-server writes bad_rating alerts
 * (one per bad rating, no cooldown) while the test changes what their
 * summaries are made of: first in Chinese with ids (no names list), then a
 * names list loaded with riskctl lists load (names with quotes, a long
 * one) is in force - riskd_list_version polled on /metrics - and the next
 * alert names the unit and the enterprise, then a SIGHUP with
 * alerts.language "en" and the next alert is in English, names kept. Each
 * summary is checked as the exact string on the alert stream. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"

#define ENT_NAME "宁夏\"老字号\"清真餐饮管理有限公司（兴庆区解放东街第一百二十八号“旗舰”分店）"

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256];
    int mport;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "summaries") != 0) {
        it_fixture_free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

typedef struct mwait {
    int port;
    const char *series;
    double want;
} mwait;

static bool metric_is(void *arg)
{
    const mwait *m = arg;
    return it_metric(m->port, m->series) == m->want;
}

typedef struct nwait {
    it_riskd *d;
    const char *text;
    int n;
} nwait;

static bool log_count_is(void *arg)
{
    const nwait *w = arg;
    return it_log_count(w->d, w->text) >= w->n;
}

/* Write one bad rating (task T<k>) and return the summary of the alert it
 * raised: the k-th alert on the stream. */
static char *rate_and_summary(fixture *f, int k)
{
    char ev[512];
    json_t *alerts;
    char *out;

    snprintf(ev, sizeof(ev),
             "{\"type\":\"inspection.rated\",\"ts\":\"2025-03-0%dT10:00:00+08:00\","
             "\"task_id\":\"T%d\",\"enterprise_id\":\"E501\",\"unit_id\":\"MR-01\","
             "\"officers\":[\"O7\"],\"score\":1}", k, k);
    it_xadd(f->env.c, "enforce:scan", ev, NULL, 0);
    if (!it_wait_xlen(f->env.c, "alerts", k, 15000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("no alert for rating %d", k);
    }
    alerts = it_alerts(f->env.c, "alerts");
    assert_int_equal(json_array_size(alerts), k);
    assert_string_equal(json_string_value(json_object_get(json_array_get(alerts, k - 1),
                                                          "rule")), "bad_rating");
    assert_true(json_number_value(json_object_get(json_array_get(alerts, k - 1), "value"))
                == 1);
    assert_true(json_number_value(json_object_get(json_array_get(alerts, k - 1),
                                                  "threshold")) == 2);
    out = strdup(json_string_value(json_object_get(json_array_get(alerts, k - 1),
                                                   "summary")));
    json_decref(alerts);
    return out;
}

static void test_names_then_language(void **state)
{
    fixture *f = *state;
    char json[256], names[300], ctlcfg[300];
    mwait m;
    nwait w;
    itc_result *r = malloc(sizeof(*r));
    char *s;
    FILE *fp;

    assert_non_null(r);
    f->mport = it_free_port();
    snprintf(json, sizeof(json), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"},"
             "\"detectors\":{\"bad_rating\":{\"officer_min_bad\":100}}}", f->mport);
    snprintf(ctlcfg, sizeof(ctlcfg), "%s/ctl.json", f->dir);
    assert_int_equal(it_write_config(ctlcfg, f->env.redis.port, "{}"), 0);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, json), 0);

    /* No names list: ids, Chinese by default. */
    s = rate_and_summary(f, 1);
    assert_string_equal(s, "企业E501对单位MR-01的检查（任务T1）打出1分差评（2分及以下为差评）");
    free(s);

    /* A names list loaded while riskd runs names the next alert. */
    snprintf(names, sizeof(names), "%s/names.csv", f->dir);
    fp = fopen(names, "wb");
    assert_non_null(fp);
    fputs("kind,id,name\r\n"
          "unit,MR-01,银川市市场监督管理局兴庆分局\r\n"
          "enterprise,E501,\"宁夏\"\"老字号\"\"清真餐饮管理有限公司（兴庆区解放东街"
          "第一百二十八号“旗舰”分店）\"\r\n"
          "officer,O7,王某\r\n", fp);
    fclose(fp);
    {
        const char *args[] = {"-c", ctlcfg, "lists", "load", "names", names, NULL};
        itc_run(r, f->dir, 15000, args);
        if (r->status != 0)
            fail_msg("lists load: exit %d: %s", r->status, r->err);
    }
    m.port = f->mport;
    m.series = "riskd_list_version{kind=\"names\"}";
    m.want = 1;
    if (!it_wait_until(metric_is, &m, 10000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("the names list was not in force within 10 s");
    }
    s = rate_and_summary(f, 2);
    assert_string_equal(s, ENT_NAME "对银川市市场监督管理局兴庆分局的检查（任务T2）打出1分差评"
                           "（2分及以下为差评）");
    free(s);

    /* SIGHUP with alerts.language "en": the next alert is in English. */
    snprintf(json, sizeof(json), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"},"
             "\"alerts\":{\"language\":\"en\"},"
             "\"detectors\":{\"bad_rating\":{\"officer_min_bad\":100}}}", f->mport);
    assert_int_equal(it_write_config(f->env.riskd.cfg, f->env.redis.port, json), 0);
    w.d = &f->env.riskd;
    w.text = "configuration reloaded";
    w.n = it_log_count(&f->env.riskd, "configuration reloaded") + 1;
    it_riskd_signal(&f->env.riskd, SIGHUP);
    if (!it_wait_until(log_count_is, &w, 10000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("the reload was not logged");
    }
    s = rate_and_summary(f, 3);
    assert_string_equal(s, ENT_NAME " gave the inspection by 银川市市场监督管理局兴庆分局 "
                           "(task T3) a score of 1, a bad rating (2 or below).");
    free(s);

    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_then_language, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
