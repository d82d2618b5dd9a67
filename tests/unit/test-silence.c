/* tests/unit/test-silence.c - matching alerts against operators' silences
 * (daemon/pipeline/silence.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "internal.h"

static rk_alert alert(const char *rule, const char *unit, const char *officer)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.subject.unit_id = unit;
    a.subject.officer_id = officer;
    return a;
}

static void test_match_rules(void **state)
{
    const char *v[] = {
        "{\"id\":\"a\",\"detector\":\"bad_rating\",\"rule\":\"officer_repeated\","
        "\"match\":{\"officer_id\":\"O7\"},\"until\":2000}",
        "{\"id\":\"b\",\"detector\":\"complaint_cluster\",\"until\":1000}",
        "not json",
        "{\"id\":\"c\",\"until\":5000}",                       /* no detector */
        "{\"id\":\"d\",\"detector\":\"x\",\"until\":\"soon\"}", /* bad until */
        "{\"id\":\"e\",\"detector\":\"bad_rating\",\"match\":{\"unit\":\"U1\"},\"until\":9000}",
        "{\"id\":\"f\",\"detector\":\"bad_rating\",\"match\":{\"unit_id\":7},\"until\":9000}",
    };
    size_t lens[7];
    rk__silences *s = rk__silences_new();
    rk_alert a;
    int i;
    (void)state;
    for (i = 0; i < 7; i++)
        lens[i] = strlen(v[i]);
    /* e (unknown match field) and f (non-string value) would silence every
     * bad_rating alert if read as "any": they are skipped */
    assert_int_equal(rk__silences_load(s, v, lens, 7), 2);
    assert_int_equal(rk__silences_count(s), 2);
    a = alert("officer_repeated", "U1", "O7");
    assert_true(rk__silences_match(s, "bad_rating", &a, 1999));
    assert_false(rk__silences_match(s, "bad_rating", &a, 2000));     /* expired */
    a = alert("officer_repeated", "U1", "O8");
    assert_false(rk__silences_match(s, "bad_rating", &a, 10));       /* other officer */
    a = alert("bad_rating", "U1", "O7");
    assert_false(rk__silences_match(s, "bad_rating", &a, 10));       /* other rule */
    a = alert("officer_repeated", "U1", NULL);
    assert_false(rk__silences_match(s, "bad_rating", &a, 10));       /* field absent */
    a = alert("cluster", "U3", NULL);
    assert_true(rk__silences_match(s, "complaint_cluster", &a, 999)); /* any rule, subject */
    assert_false(rk__silences_match(s, "fine_growth", &a, 10));
    /* A reload replaces the set. */
    assert_int_equal(rk__silences_load(s, v + 1, lens + 1, 1), 1);
    a = alert("officer_repeated", "U1", "O7");
    assert_false(rk__silences_match(s, "bad_rating", &a, 10));
    rk__silences_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
