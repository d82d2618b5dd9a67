/* tests/unit/test-plugin-two-officers.c - the example plugin, loaded as a plugin.
 *
 * dlopen()s "$BUILD/plugins/two_officers.so" (BUILD defaults to "build";
 * tests run from the repository root after `make all`), resolves
 * RK_DETECTOR_ENTRY, checks the ops table and drives it through the fake
 * host: filings below, at and above min_officers, other event types, no
 * cooldown, reconfigure and bad configs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "fakehost.h"

#define T0 INT64_C(1740793800000)

static void *g_dl;
static const rk_detector_ops *g_ops;

static int load(void **st)
{
    const char *build = getenv("BUILD");
    char path[1024];
    union { void *p; rk_detector_entry_fn f; } u;
    (void)st;

    snprintf(path, sizeof(path), "%s/plugins/two_officers.so",
             build && *build ? build : "build");
    g_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (g_dl == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return -1;
    }
    u.p = dlsym(g_dl, RK_DETECTOR_ENTRY);
    if (u.p == NULL) {
        fprintf(stderr, "dlsym %s: %s\n", RK_DETECTOR_ENTRY, dlerror());
        return -1;
    }
    g_ops = u.f();
    return g_ops != NULL ? 0 : -1;
}

static int unload(void **st)
{
    (void)st;
    if (g_dl != NULL)
        dlclose(g_dl);
    g_dl = NULL;
    g_ops = NULL;
    return 0;
}

static rk_fakehost *mk(const char *cfg)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(g_ops, cfg, err, sizeof(err));
    if (fh == NULL)
        fail_msg("create failed: %s", err);
    return fh;
}

/* Deliver an event of type t at ts for task `task` with n of the officers
 * O1..O4; the entry ref is scan/ts-seq. */
static void deliver(rk_fakehost *fh, rk_event_type t, int64_t ts, uint32_t seq,
                 const char *task, size_t n)
{
    static const char *const offs[] = { "O1", "O2", "O3", "O4" };
    rk_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = t;
    ev.ts = ts;
    ev.ref = rk_fh_ref(RK_STREAM_SCAN, (uint64_t)ts, seq);
    ev.task_id = task;
    ev.unit_id = "U1";
    ev.enterprise_id = "E1";
    ev.officers = offs;
    ev.n_officers = n;
    ev.planned_at = ts;
    ev.score = 1;
    assert_int_equal(rk_fh_event(fh, &ev), 0);
}

static void test_ops_table(void **st)
{
    (void)st;
    assert_non_null(g_ops);
    assert_int_equal(g_ops->abi_major, RK_ABI_MAJOR);
    assert_int_equal(g_ops->abi_minor, RK_ABI_MINOR);
    assert_string_equal(g_ops->name, "two_officers");
    assert_non_null(g_ops->description);
    assert_non_null(g_ops->create);
    assert_non_null(g_ops->reconfigure);
    assert_non_null(g_ops->on_event);
    assert_non_null(g_ops->destroy);
    assert_null(g_ops->snapshot);
    assert_null(g_ops->restore);
}

static void test_default_min(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a, *subj;
    (void)st;

    deliver(fh, RK_EV_INSPECTION_FILED, T0, 7, "T1", 2);         /* at threshold */
    deliver(fh, RK_EV_INSPECTION_FILED, T0 + 1, 8, "T2", 3);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    deliver(fh, RK_EV_INSPECTION_FILED, T0 + 2, 9, "T3", 1);     /* one short */
    assert_int_equal(rk_fh_count(fh, "too_few_officers"), 1);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "warning");
    assert_int_equal(json_integer_value(json_object_get(a, "ts")), T0 + 2);
    subj = json_object_get(a, "subject");
    assert_int_equal(json_object_size(subj), 3);
    assert_string_equal(json_string_value(json_object_get(subj, "task_id")), "T3");
    assert_string_equal(json_string_value(json_object_get(subj, "unit_id")), "U1");
    assert_string_equal(json_string_value(json_object_get(subj, "enterprise_id")), "E1");
    assert_true(json_number_value(json_object_get(a, "value")) == 1.0);
    assert_true(json_number_value(json_object_get(a, "threshold")) == 2.0);
    assert_int_equal(json_integer_value(json_object_get(a, "cooldown")), 0);
    assert_int_equal(json_array_size(json_object_get(a, "evidence")), 1);
    {
        char buf[64];
        snprintf(buf, sizeof(buf), "0/%lld-9", (long long)(T0 + 2));
        assert_string_equal(json_string_value(json_array_get(json_object_get(a, "evidence"), 0)),
                            buf);
    }
    assert_true(strstr(json_string_value(json_object_get(a, "summary")), "T3") != NULL);

    /* No cooldown: the same task filed again alerts again. */
    deliver(fh, RK_EV_INSPECTION_FILED, T0 + 3, 10, "T3", 1);
    assert_int_equal(rk_fh_count(fh, "too_few_officers"), 2);
    assert_int_equal(fh->held_back, 0);
    rk_fh_free(fh);
}

static void test_other_events_ignored(void **st)
{
    rk_fakehost *fh = mk("{}");
    rk_event_type t;
    (void)st;

    for (t = RK_EV_INSPECTION_SCANNED; t < RK_EV__COUNT; t++)
        deliver(fh, t, T0 + t, 1, "T1", 0);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    rk_fh_free(fh);
}

static void test_custom_min_and_reconfigure(void **st)
{
    rk_fakehost *fh = mk("{\"min_officers\": 3}");
    json_t *cfg;
    char err[256];
    (void)st;

    deliver(fh, RK_EV_INSPECTION_FILED, T0, 1, "T1", 3);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    deliver(fh, RK_EV_INSPECTION_FILED, T0 + 1, 2, "T2", 2);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_true(json_number_value(json_object_get(rk_fh_alert(fh, 0), "value")) == 2.0);
    assert_true(json_number_value(json_object_get(rk_fh_alert(fh, 0), "threshold")) == 3.0);

    cfg = json_loads("{\"min_officers\": 101}", 0, NULL);
    assert_int_equal(g_ops->reconfigure(fh->self, cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "min_officers: expected an integer from 1 to 100");
    json_decref(cfg);
    cfg = json_loads("{\"min_officers\": 1}", 0, NULL);
    assert_int_equal(g_ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    deliver(fh, RK_EV_INSPECTION_FILED, T0 + 2, 3, "T3", 1);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    deliver(fh, RK_EV_INSPECTION_FILED, T0 + 3, 4, "T4", 0);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    rk_fh_free(fh);

    fh = mk("{\"min_officers\": 100}");
    deliver(fh, RK_EV_INSPECTION_FILED, T0, 1, "T1", 4);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    rk_fh_free(fh);
}

static void test_cooldown_key(void **st)
{
    rk_fakehost *fh = mk("{\"cooldown\": \"1h\"}");
    (void)st;
    deliver(fh, RK_EV_INSPECTION_FILED, T0, 1, "T1", 1);
    deliver(fh, RK_EV_INSPECTION_FILED, T0 + 1, 2, "T1", 1);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    assert_int_equal(fh->held_back, 1);
    assert_int_equal(json_integer_value(json_object_get(rk_fh_alert(fh, 0), "cooldown")),
                     RK_HOUR);
    rk_fh_free(fh);
}

static void test_bad_configs(void **st)
{
    static const char *const cases[][2] = {
        { "{\"min_officers\": 0}", "min_officers: expected an integer from 1 to 100" },
        { "{\"min_officers\": 101}", "min_officers: expected an integer from 1 to 100" },
        { "{\"min_officers\": \"2\"}", "min_officers: expected an integer from 1 to 100" },
        { "{\"min_officers\": 2.0}", "min_officers: expected an integer from 1 to 100" },
        { "{\"cooldown\": \"x\"}",
          "cooldown: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"min_officer\": 2}", "min_officer: unknown key" },
    };
    char err[256];
    size_t i;
    (void)st;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_null(rk_fh_new(g_ops, cases[i][0], err, sizeof(err)));
        assert_string_equal(err, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_table),
        cmocka_unit_test(test_default_min),
        cmocka_unit_test(test_other_events_ignored),
        cmocka_unit_test(test_custom_min_and_reconfigure),
        cmocka_unit_test(test_cooldown_key),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
