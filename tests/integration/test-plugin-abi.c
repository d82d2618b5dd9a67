/* tests/integration/test-plugin-abi.c - riskd and plugins of other ABI
 * minors (tests/plugins/minor_probe.c).
 *
 * A plugin built against the previous minor loads and works: riskd never
 * reads a struct member added after the minor the plugin declares (its
 * alerts stay alerts, although the memory after its minor-1 rk_alert holds
 * status RETRACTED). Its twin built against this minor emits a notice
 * (status, reason, change_ts): the amendment retracts its first alert,
 * which leaves the open hash. A plugin declaring a newer minor is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "internal.h"
#include "itest.h"

#define T0 INT64_C(1740793800000)
#define DAY INT64_C(86400000)

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new): redis, client, riskd */
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
    it_fixture_free(*state);
    return 0;
}

static int run_riskd_t(const char *cfgpath, char *out, size_t outlen)
{
    char cmd[1024];
    FILE *p;
    size_t n;
    int st;
    snprintf(cmd, sizeof(cmd), "%s/riskd -t -c %s 2>&1", it_build_dir(), cfgpath);
    p = popen(cmd, "r");
    n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void filing(fixture *f, int64_t ts, int64_t planned)
{
    char ev[512];
    snprintf(ev, sizeof(ev), "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"T1\","
             "\"unit_id\":\"U1\",\"officers\":[\"O1\",\"O2\"],\"enterprise_id\":\"E1\","
             "\"planned_at\":%lld}", (long long)ts, (long long)planned);
    it_xadd(f->env.c, "enforce:scan", ev, NULL, 0);
}

/* The alerts of one detector, in stream order (a new reference). */
static json_t *alerts_of(fixture *f, const char *detector)
{
    json_t *all = it_alerts(f->env.c, "alerts"), *out = json_array(), *a;
    size_t i;
    json_array_foreach(all, i, a) {
        if (strcmp(json_string_value(json_object_get(a, "detector")), detector) == 0)
            json_array_append(out, a);
    }
    json_decref(all);
    return out;
}

/* The id riskd gives minor_probe's alert on the filing at ts. */
static void probe_id(const char *detector, int64_t ts, const char *trigger_key, char id[33])
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = "filed";
    a.ts = ts;
    a.subject.task_id = "T1";
    rk__alert_id(detector, &a, trigger_key, id);
}

static bool hexists(redisContext *c, const char *key, const char *field)
{
    redisReply *r = it_cmd(c, "HEXISTS %s %s", key, field);
    bool yes = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return yes;
}

static void test_previous_minor_loads_and_works(void **state)
{
    fixture *f = *state;
    char cfg[1024], id[33], poisoned[33];
    json_t *prev, *cur;

    snprintf(cfg, sizeof(cfg), "{\"plugins\":[\"%s/tests/plugins/minor_probe_prev.so\","
             "\"%s/tests/plugins/minor_probe.so\"]}", it_build_dir(), it_build_dir());
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
    filing(f, T0, T0 + DAY);
    filing(f, T0 + 3600000, T0 + 3 * DAY);          /* an amendment: planned_at moved */
    assert_true(it_wait_drained(f->env.c, "enforce:scan", "riskd", 15000));

    cur = alerts_of(f, "minor_probe");
    if (json_array_size(cur) != 3)
        it_riskd_dump_log(&f->env.riskd);
    /* the filing, its amendment, and the retraction of the first */
    assert_int_equal(json_array_size(cur), 3);
    probe_id("minor_probe", T0, "POISON", id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cur, 0), "id")), id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cur, 2), "id")), id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cur, 2), "status")),
                        "retracted");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cur, 2), "reason")),
                        "\xe5\xa4\x87\xe6\xa1\x88\xe5\xb7\xb2\xe6\x9b\xb4\xe6\xad\xa3\xe3\x80\x82");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cur, 2), "summary")),
                        "A filing.");
    assert_false(hexists(f->env.c, "riskd:open", id));
    probe_id("minor_probe", T0 + 3600000, "POISON", id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cur, 1), "id")), id);
    assert_true(hexists(f->env.c, "riskd:open", id));

    prev = alerts_of(f, "minor_probe_prev");
    /* the filing and its amendment (minor 1 knows amendments); no notice:
     * riskd never read the poisoned status after either */
    assert_int_equal(json_array_size(prev), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(prev, 1), "status")),
                        "firing");
    probe_id("minor_probe_prev", T0, NULL, id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(prev, 0), "id")), id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(prev, 0), "status")),
                        "firing");
    assert_true(hexists(f->env.c, "riskd:open", id));
    (void)poisoned;
    json_decref(cur);
    json_decref(prev);

    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
}

static void test_newer_minor_refused(void **state)
{
    fixture *f = *state;
    char cfg[1024], path[512], out[4096];

    snprintf(path, sizeof(path), "%s/riskd-minor.json", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(cfg, sizeof(cfg), "{\"plugins\":[\"%s/tests/plugins/minor_probe_prev.so\"]}",
             it_build_dir());
    assert_int_equal(it_write_config(path, f->env.redis.port, cfg), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 0);
    snprintf(cfg, sizeof(cfg), "{\"plugins\":[\"%s/tests/plugins/minor_probe_next.so\"]}",
             it_build_dir());
    assert_int_equal(it_write_config(path, f->env.redis.port, cfg), 0);
    assert_int_equal(run_riskd_t(path, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "plugins[0]"));
    assert_non_null(strstr(out, "newer than"));
    if (it_riskd_start(&f->env.riskd, f->env.redis.port, cfg) != 0)
        fail_msg("cannot start riskd");
    assert_int_equal(it_riskd_wait(&f->env.riskd, 10000), 1);
    assert_true(it_log_contains(&f->env.riskd, "newer than"));
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_previous_minor_loads_and_works, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_minor_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
