/* tests/unit/test-config-print.c - the effective configuration
 * (daemon/lib/config_print.c, riskd --print-config).
 *
 * The effective configuration of {} is config/riskd.json: the same keys,
 * each with the same default (durations compared by their length, so "60s"
 * and "1m" agree; streams.consumer is the host name where the file says
 * null). That holds riskd.json to the defaults the parser really fills in,
 * and the printer to every key riskd.json lists (test-docs holds riskd.json
 * to every key the parser accepts). The printed configuration loads again
 * and prints the same; a key the file sets is printed with its value, the
 * others with their defaults. Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "riskd/kit.h"
#include "internal.h"

/* The effective configuration of the JSON text. */
static json_t *effective_of(const char *text)
{
    char err[RK_ERRLEN];
    json_t *root = json_loads(text, 0, NULL), *eff;
    rk__config *cfg;
    assert_non_null(root);
    if (rk__config_from_json(root, &cfg, err, sizeof(err)) != 0)
        fail_msg("%s: %s", text, err);
    json_decref(root);
    eff = rk__config_effective(cfg, err, sizeof(err));
    if (eff == NULL)
        fail_msg("rk__config_effective: %s", err);
    rk__config_free(cfg);
    return eff;
}

/* Whether a and b are the same value (durations by their length). */
static int same(const json_t *a, const json_t *b)
{
    int64_t x, y;
    if (json_equal(a, b))
        return 1;
    return json_is_string(a) && json_is_string(b) &&
           rk_kit_parse_duration(json_string_value(a), &x) == 0 &&
           rk_kit_parse_duration(json_string_value(b), &y) == 0 && x == y;
}

/* Print every difference between the objects got and want under path;
 * returns how many. */
static int diff(const char *path, const json_t *got, const json_t *want)
{
    const char *k;
    json_t *v;
    int n = 0;
    char sub[256];

    json_object_foreach((json_t *)(uintptr_t)want, k, v) {
        json_t *g = json_object_get(got, k);
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
        if (g == NULL) {
            fprintf(stderr, "%s: in config/riskd.json, not printed\n", sub);
            n++;
        } else if (json_is_object(v) && json_is_object(g)) {
            n += diff(sub, g, v);
        } else if (strcmp(sub, "streams.consumer") == 0) {
            char host[256] = "";
            gethostname(host, sizeof(host) - 1);
            if (!json_is_null(v) || strcmp(json_string_value(g), host) != 0) {
                fprintf(stderr, "%s: printed %s\n", sub, json_string_value(g));
                n++;
            }
        } else if (!same(g, v)) {
            char *gs = json_dumps(g, JSON_ENCODE_ANY), *ws = json_dumps(v, JSON_ENCODE_ANY);
            fprintf(stderr, "%s: printed %s, config/riskd.json says %s\n", sub, gs, ws);
            free(gs);
            free(ws);
            n++;
        }
    }
    json_object_foreach((json_t *)(uintptr_t)got, k, v)
        if (json_object_get(want, k) == NULL) {
            fprintf(stderr, "%s%s%s: printed, not in config/riskd.json\n", path,
                    *path ? "." : "", k);
            n++;
        }
    return n;
}

static void test_defaults_are_riskd_json(void **state)
{
    json_error_t jerr;
    json_t *shipped = json_load_file("config/riskd.json", JSON_REJECT_DUPLICATES, &jerr);
    json_t *eff = effective_of("{}");
    (void)state;
    if (shipped == NULL)
        fail_msg("config/riskd.json: %s", jerr.text);
    assert_int_equal(diff("", eff, shipped), 0);
    json_decref(shipped);
    json_decref(eff);
}

static void test_round_trip(void **state)
{
    json_t *a = effective_of("{\"redis\": {\"sentinels\": [\"h1:26379\"], "
                             "\"password\": \"pw\"}, \"clock\": {\"timezone\": \"-03:30\"}, "
                             "\"streams\": {\"consumer\": \"c1\"}}");
    char *text = json_dumps(a, 0);
    json_t *b = effective_of(text);
    (void)state;
    assert_true(json_equal(a, b));
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "clock"),
                                                          "timezone")), "-03:30");
    free(text);
    json_decref(a);
    json_decref(b);
}

static void test_set_and_default(void **state)
{
    json_t *e = effective_of("{\"streams\": {\"batch\": 42, \"claim_idle\": \"90s\"}, "
                             "\"detectors\": {\"bad_rating\": {\"bad_score\": 1}, "
                             "\"complaint_cluster\": {\"rules\": []}}}");
    json_t *streams = json_object_get(e, "streams");
    json_t *det = json_object_get(e, "detectors");
    json_t *br = json_object_get(det, "bad_rating");
    (void)state;
    assert_int_equal(json_integer_value(json_object_get(streams, "batch")), 42);
    assert_string_equal(json_string_value(json_object_get(streams, "claim_idle")), "90s");
    assert_string_equal(json_string_value(json_object_get(streams, "group")), "riskd");
    assert_int_equal(json_integer_value(json_object_get(br, "bad_score")), 1);
    assert_string_equal(json_string_value(json_object_get(br, "officer_window")), "30d");
    assert_int_equal(json_array_size(json_object_get(json_object_get(det, "complaint_cluster"),
                                                     "rules")), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(det, "fine_growth"),
                                                          "period")), "30d");
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_riskd_json),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_set_and_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
