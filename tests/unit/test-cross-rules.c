/* tests/unit/test-cross-rules.c - which rules the cross pipeline runs and
 * which the partition pipelines keep (daemon/pipeline/cross.c), and which
 * pipeline a configuration is. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "internal.h"

static rk_alert alert(const char *rule, const char *unit, const char *officer,
                      const char *enterprise, const char *region)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.subject.unit_id = unit;
    a.subject.officer_id = officer;
    a.subject.enterprise_id = enterprise;
    a.subject.region = region;
    return a;
}

static void test_rules_across_units(void **state)
{
    rk_alert a;
    (void)state;
    a = alert("repeat", NULL, NULL, "E1", NULL);
    assert_true(rk__rule_is_cross("inspection_frequency", &a));
    a = alert("whitelist", NULL, NULL, "E1", NULL);
    assert_true(rk__rule_is_cross("inspection_frequency", &a));
    a = alert("multi_unit", NULL, NULL, "E1", NULL);
    assert_true(rk__rule_is_cross("inspection_frequency", &a));
    a = alert("disparity", "U1", NULL, NULL, NULL);
    assert_true(rk__rule_is_cross("discretion", &a));
    a = alert("hotspot", NULL, NULL, NULL, "640104");
    assert_true(rk__rule_is_cross("violation_hotspot", &a));
    a = alert("cluster", NULL, NULL, "E1", NULL);
    assert_true(rk__rule_is_cross("complaint_cluster", &a));
    a = alert("cluster", NULL, NULL, NULL, "640104");
    assert_true(rk__rule_is_cross("complaint_cluster", &a));
}

static void test_rules_of_one_unit(void **state)
{
    rk_alert a;
    (void)state;
    a = alert("cluster", "U1", NULL, NULL, NULL);
    assert_false(rk__rule_is_cross("complaint_cluster", &a));
    a = alert("cluster", NULL, "O1", NULL, NULL);
    assert_false(rk__rule_is_cross("complaint_cluster", &a));
    a = alert("out_of_benchmark", "U1", NULL, NULL, NULL);
    assert_false(rk__rule_is_cross("discretion", &a));
    a = alert("exempt_fined", "U1", NULL, NULL, NULL);
    assert_false(rk__rule_is_cross("discretion", &a));
    a = alert("corrections", "U1", NULL, NULL, NULL);
    assert_false(rk__rule_is_cross("review_correction", &a));
    a = alert("scan_without_filing", "U1", NULL, NULL, NULL);
    assert_false(rk__rule_is_cross("unfiled_inspection", &a));
    /* a plugin's rule of the same name as a built-in's */
    a = alert("repeat", NULL, NULL, "E1", NULL);
    assert_false(rk__rule_is_cross("two_officers", &a));
    assert_false(rk__rule_is_cross(NULL, &a));
    a = alert(NULL, NULL, NULL, "E1", NULL);
    assert_false(rk__rule_is_cross("inspection_frequency", &a));
}

/* One partition or a Redis Cluster: every pipeline runs every rule; else
 * partitions 0..N-1 keep theirs and pipeline N is the cross pipeline. */
static void test_roles(void **state)
{
    rk__config c;
    (void)state;
    memset(&c, 0, sizeof(c));
    c.partitions = 1;
    assert_int_equal(rk__engine_role_of(&c), RK__ROLE_ALL);
    assert_false(rk__config_has_cross(&c));
    c.partitions = 3;
    c.partition = 2;
    assert_int_equal(rk__engine_role_of(&c), RK__ROLE_PARTITION);
    c.partition = 3;
    assert_true(rk__config_is_cross(&c));
    assert_int_equal(rk__engine_role_of(&c), RK__ROLE_CROSS);
    c.n_cluster = 3;
    assert_false(rk__config_has_cross(&c));
    assert_int_equal(rk__engine_role_of(&c), RK__ROLE_ALL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_across_units),
        cmocka_unit_test(test_rules_of_one_unit),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
