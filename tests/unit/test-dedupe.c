/* tests/unit/test-dedupe.c - natural keys and value digests of events, and the
 * compact store of the keys applied (daemon/pipeline/dedupe.c): pure logic, no
 * Redis. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "riskd/kit.h"
#include "internal.h"

#define DAY ((int64_t)86400000)

typedef struct parsed {
    rk_event ev;
    rk__event_mem mem;
} parsed;

/* Parse one event; aborts the test when it is not valid. */
static void parse(parsed *p, const char *json)
{
    char err[RK_ERRLEN];
    memset(p, 0, sizeof(*p));
    if (rk__event_parse(json, strlen(json), &p->ev, &p->mem, err, sizeof(err)) != RK_PARSE_OK) {
        fprintf(stderr, "parse failed: %s: %s\n", json, err);
        fail();
    }
}

static void key_of(const char *json, uint64_t *key, uint32_t *digest)
{
    parsed p;
    parse(&p, json);
    assert_int_equal(rk__dedupe_event(&p.ev, key, digest), 0);
    rk__event_mem_free(&p.mem);
}

/* The same event spelled differently: same key, same digest. */
static void test_spelling_does_not_matter(void **state)
{
    uint64_t k1, k2;
    uint32_t d1, d2;
    (void)state;
    key_of("{\"type\":\"case.decided\",\"ts\":\"2025-03-01T09:30:00+08:00\","
           "\"case_id\":\"C1\",\"unit_id\":\"U1\",\"fine\":100}", &k1, &d1);
    key_of("{ \"fine\" : 1e2, \"unit_id\":\"U1\",\"case_id\":\"C1\","
           "\"ts\":\"2025-03-01T01:30:00Z\",\"type\":\"case.decided\",\"confiscation\":0}",
           &k2, &d2);
    assert_true(k1 == k2);
    assert_true(d1 == d2);
    /* null counts as absent */
    key_of("{\"type\":\"case.decided\",\"ts\":\"2025-03-01T09:30:00+08:00\","
           "\"case_id\":\"C1\",\"unit_id\":\"U1\",\"fine\":100,\"region\":null}", &k2, &d2);
    assert_true(k1 == k2);
    assert_true(d1 == d2);
}

/* The practice fields: each changes the digest, never the key; a filing
 * that says kind "plan" is the same as one that leaves kind out. */
static void test_practice_fields_digest(void **state)
{
#define FILED "{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T1\",\"unit_id\":\"U1\"," \
              "\"officers\":[\"O1\"],\"enterprise_id\":\"E1\""
#define OPENED "{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"source\":\"report\""
#define DECIDED "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"fine\":10"
#define REVIEW "{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"outcome\":\"revoked\""
    static const struct { const char *a, *b; int same_digest; } cases[] = {
        {FILED "}", FILED ",\"kind\":\"plan\"}", 1},
        {FILED "}", FILED ",\"kind\":\"complaint\"}", 0},
        {FILED ",\"kind\":\"random\"}", FILED ",\"kind\":\"special\"}", 0},
        {FILED "}", FILED ",\"joint_id\":\"J1\"}", 0},
        {FILED ",\"joint_id\":\"J1\"}", FILED ",\"joint_id\":\"J2\"}", 0},
        {OPENED "}", OPENED ",\"item_code\":\"I1\"}", 0},
        {OPENED ",\"domain\":\"food\"}", OPENED ",\"domain\":\"drug\"}", 0},
        {DECIDED "}", DECIDED ",\"level\":\"minor\"}", 0},
        {DECIDED ",\"level\":\"minor\"}", DECIDED ",\"level\":\"serious\"}", 0},
        {DECIDED "}", DECIDED ",\"domain\":\"food\"}", 0},
        {REVIEW "}", REVIEW ",\"domain\":\"food\"}", 0},
        {REVIEW "}", REVIEW ",\"issue\":\"procedure\"}", 0},
        {REVIEW ",\"issue\":null}", REVIEW "}", 1},
    };
#undef FILED
#undef OPENED
#undef DECIDED
#undef REVIEW
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ka, kb;
        uint32_t da, db;
        key_of(cases[i].a, &ka, &da);
        key_of(cases[i].b, &kb, &db);
        assert_true(ka == kb);
        if ((da == db) != cases[i].same_digest) {
            fprintf(stderr, "case %zu: digests %s\n", i, da == db ? "equal" : "differ");
            fail();
        }
    }
}

/* Each type's natural key: fields outside it change the digest only. */
static void test_natural_keys(void **state)
{
    static const struct {
        const char *a, *b;
        int same_key;
    } cases[] = {
        /* inspection.filed: task_id */
        {"{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T1\",\"unit_id\":\"U1\","
         "\"officers\":[\"O1\"],\"enterprise_id\":\"E1\"}",
         "{\"type\":\"inspection.filed\",\"ts\":2,\"task_id\":\"T1\",\"unit_id\":\"U1\","
         "\"officers\":[\"O1\"],\"enterprise_id\":\"E2\"}", 1},
        {"{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T1\",\"unit_id\":\"U1\","
         "\"officers\":[\"O1\"],\"enterprise_id\":\"E1\"}",
         "{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T2\",\"unit_id\":\"U1\","
         "\"officers\":[\"O1\"],\"enterprise_id\":\"E1\"}", 0},
        /* inspection.scanned: task_id, ts */
        {"{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"T1\",\"enterprise_id\":\"E1\"}",
         "{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"T1\",\"enterprise_id\":\"E2\"}", 1},
        {"{\"type\":\"inspection.scanned\",\"ts\":1,\"task_id\":\"T1\",\"enterprise_id\":\"E1\"}",
         "{\"type\":\"inspection.scanned\",\"ts\":2,\"task_id\":\"T1\",\"enterprise_id\":\"E1\"}", 0},
        /* inspection.rated: task_id, enterprise_id */
        {"{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T1\",\"enterprise_id\":\"E1\",\"score\":1}",
         "{\"type\":\"inspection.rated\",\"ts\":5,\"task_id\":\"T1\",\"enterprise_id\":\"E1\",\"score\":2}", 1},
        {"{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T1\",\"enterprise_id\":\"E1\",\"score\":1}",
         "{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T1\",\"enterprise_id\":\"E2\",\"score\":1}", 0},
        /* inspection.reported: unit_id, enterprise_id, ts */
        {"{\"type\":\"inspection.reported\",\"ts\":1,\"unit_id\":\"U1\",\"enterprise_id\":\"E1\"}",
         "{\"type\":\"inspection.reported\",\"ts\":1,\"unit_id\":\"U1\",\"enterprise_id\":\"E1\",\"note\":\"x\"}", 1},
        {"{\"type\":\"inspection.reported\",\"ts\":1,\"unit_id\":\"U1\",\"enterprise_id\":\"E1\"}",
         "{\"type\":\"inspection.reported\",\"ts\":1,\"unit_id\":\"U2\",\"enterprise_id\":\"E1\"}", 0},
        /* case.opened / case.decided: case_id, different types never collide */
        {"{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"source\":\"report\"}",
         "{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U2\",\"source\":\"report\"}", 1},
        {"{\"type\":\"case.opened\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"source\":\"report\"}",
         "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"fine\":0}", 0},
        /* case.complaint: complaint_id */
        {"{\"type\":\"case.complaint\",\"ts\":1,\"complaint_id\":\"K1\",\"unit_id\":\"U1\"}",
         "{\"type\":\"case.complaint\",\"ts\":9,\"complaint_id\":\"K1\",\"unit_id\":\"U1\"}", 1},
        /* case.review: case_id, outcome */
        {"{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"outcome\":\"upheld\"}",
         "{\"type\":\"case.review\",\"ts\":2,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"outcome\":\"upheld\"}", 1},
        {"{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"outcome\":\"upheld\"}",
         "{\"type\":\"case.review\",\"ts\":1,\"case_id\":\"C1\",\"unit_id\":\"U1\",\"outcome\":\"revoked\"}", 0},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ka, kb;
        uint32_t da, db;
        key_of(cases[i].a, &ka, &da);
        key_of(cases[i].b, &kb, &db);
        if ((ka == kb) != cases[i].same_key) {
            fprintf(stderr, "case %zu: keys %s\n", i, ka == kb ? "equal" : "differ");
            fail();
        }
        if (cases[i].same_key)
            assert_true(da != db);  /* other values */
    }
}

static void test_amendable(void **state)
{
    (void)state;
    assert_true(rk__dedupe_amendable(RK_EV_INSPECTION_FILED));
    assert_true(rk__dedupe_amendable(RK_EV_CASE_DECIDED));
    assert_false(rk__dedupe_amendable(RK_EV_INSPECTION_RATED));
    assert_false(rk__dedupe_amendable(RK_EV_CASE_OPENED));
}

static void test_filing_key(void **state)
{
    uint64_t k;
    uint32_t d;
    (void)state;
    key_of("{\"type\":\"inspection.filed\",\"ts\":1,\"task_id\":\"T-9\",\"unit_id\":\"U1\","
           "\"officers\":[\"O1\"],\"enterprise_id\":\"E1\"}", &k, &d);
    assert_true(k == rk__dedupe_filing_key("T-9"));
    assert_true(k != rk__dedupe_filing_key("T-8"));
}

/* New, duplicate, changed; the window; off. */
static void test_store_verdicts(void **state)
{
    rk__dedupe d;
    int64_t t0 = 20000 * DAY + 5000;
    (void)state;
    rk__dedupe_init(&d);
    rk__dedupe_set_window(&d, 400 * DAY);
    assert_int_equal(rk__dedupe_check(&d, 42, 7, t0), RK_DEDUPE_NEW);
    assert_int_equal(rk__dedupe_record(&d, 42, 7, t0), 0);
    assert_int_equal(rk__dedupe_check(&d, 42, 7, t0), RK_DEDUPE_DUPLICATE);
    assert_int_equal(rk__dedupe_check(&d, 42, 8, t0), RK_DEDUPE_CHANGED);
    assert_int_equal(rk__dedupe_check(&d, 43, 7, t0), RK_DEDUPE_NEW);
    /* keys that differ only in their top bits (other buckets) or low bits */
    assert_int_equal(rk__dedupe_check(&d, 42 | (UINT64_C(1) << 63), 7, t0), RK_DEDUPE_NEW);
    assert_int_equal(rk__dedupe_record(&d, 42 | (UINT64_C(1) << 63), 9, t0), 0);
    assert_int_equal(rk__dedupe_check(&d, 42, 7, t0), RK_DEDUPE_DUPLICATE);
    assert_int_equal(rk__dedupe_count(&d), 2);
    /* within the window: still known on the last day of it ... */
    assert_int_equal(rk__dedupe_check(&d, 42, 7, t0 + 400 * DAY), RK_DEDUPE_DUPLICATE);
    /* ... and forgotten a window after the end of its day */
    assert_int_equal(rk__dedupe_check(&d, 42, 7, t0 + 402 * DAY), RK_DEDUPE_NEW);
    rk__dedupe_expire(&d, t0 + 402 * DAY);
    assert_int_equal(rk__dedupe_count(&d), 0);
    assert_int_equal(rk__dedupe_check(&d, 42, 7, t0), RK_DEDUPE_NEW);
    /* a changed record keeps the latest digest and day */
    assert_int_equal(rk__dedupe_record(&d, 42, 7, t0), 0);
    assert_int_equal(rk__dedupe_record(&d, 42, 8, t0 + 100 * DAY), 0);
    assert_int_equal(rk__dedupe_check(&d, 42, 8, t0 + 450 * DAY), RK_DEDUPE_DUPLICATE);
    assert_int_equal(rk__dedupe_count(&d), 1);
    /* off */
    rk__dedupe_set_window(&d, 0);
    assert_int_equal(rk__dedupe_check(&d, 42, 8, t0), RK_DEDUPE_NEW);
    rk__dedupe_free(&d);
}

static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Many keys in random order: every one found, none invented; the
 * snapshot restores the same store; memory stays within 16 bytes a key
 * at a province's scale (1,000,000 filings). */
static void test_store_many(void **state)
{
    rk__dedupe d, r;
    rk_buf b = {0};
    const uint64_t n = 1000000;
    uint64_t i;
    int64_t t0 = 20000 * DAY;
    double per_key;
    (void)state;
    rk__dedupe_init(&d);
    rk__dedupe_set_window(&d, 400 * DAY);
    for (i = 0; i < n; i++)
        assert_int_equal(rk__dedupe_record(&d, mix(i), (uint32_t)i, t0 + (int64_t)i), 0);
    assert_int_equal(rk__dedupe_count(&d), n);
    for (i = 0; i < n; i += 997)
        assert_int_equal(rk__dedupe_check(&d, mix(i), (uint32_t)i, t0), RK_DEDUPE_DUPLICATE);
    for (i = n; i < n + 1000; i++)
        assert_int_equal(rk__dedupe_check(&d, mix(i), 0, t0), RK_DEDUPE_NEW);
    per_key = (double)rk__dedupe_bytes(&d) / (double)n;
    printf("dedupe: %.2f bytes per remembered key at %llu keys\n", per_key,
           (unsigned long long)n);
    assert_true(per_key <= 16.0);

    rk__dedupe_snapshot(&d, &b);
    assert_false(b.oom);
    rk__dedupe_init(&r);
    rk__dedupe_set_window(&r, 400 * DAY);
    assert_int_equal(rk__dedupe_restore(&r, b.data, b.len), 0);
    assert_int_equal(rk__dedupe_count(&r), n);
    for (i = 0; i < n; i += 991) {
        assert_int_equal(rk__dedupe_check(&r, mix(i), (uint32_t)i, t0), RK_DEDUPE_DUPLICATE);
        assert_int_equal(rk__dedupe_check(&r, mix(i), (uint32_t)i + 1, t0), RK_DEDUPE_CHANGED);
    }
    /* truncated, or keys out of order: refused, the store unchanged */
    assert_int_equal(rk__dedupe_restore(&r, b.data, b.len - 3), -1);
    assert_int_equal(rk__dedupe_count(&r), n);
    {
        unsigned char *p = b.data + 12;     /* first key */
        memset(p, 0xff, 8);
        assert_int_equal(rk__dedupe_restore(&r, b.data, b.len), -1);
    }
    assert_int_equal(rk__dedupe_count(&r), n);
    free(b.data);
    rk__dedupe_free(&r);
    rk__dedupe_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spelling_does_not_matter),
        cmocka_unit_test(test_natural_keys),
        cmocka_unit_test(test_amendable),
        cmocka_unit_test(test_practice_fields_digest),
        cmocka_unit_test(test_filing_key),
        cmocka_unit_test(test_store_verdicts),
        cmocka_unit_test(test_store_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
