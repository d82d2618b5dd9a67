/* tests/unit/test-timeutil.c - unit tests for daemon/lib/timeutil.c.
 *
 * Parses every accepted RFC 3339 form against values computed independently
 * (Python's datetime), rejects each malformed or out-of-range form, formats
 * at several offsets including times before 1970, and round-trips a spread
 * of values through format and parse. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "internal.h"

/* 2025-03-01T01:30:00Z */
#define T0 INT64_C(1740792600000)

/* Parse s, asserting success, and return the value. */
static int64_t ok(const char *s)
{
    int64_t v = INT64_MIN;
    if (rk__parse_rfc3339(s, &v) != 0)
        fail_msg("rejected: \"%s\"", s);
    return v;
}

/* Assert that s is rejected and *out is left alone. */
static void bad(const char *s)
{
    int64_t v = 12345;
    if (rk__parse_rfc3339(s, &v) != -1)
        fail_msg("accepted: \"%s\"", s);
    assert_int_equal(v, 12345);
}

static void test_parse_zones(void **state)
{
    (void)state;
    assert_int_equal(ok("2025-03-01T01:30:00Z"), T0);
    assert_int_equal(ok("2025-03-01t01:30:00z"), T0);
    assert_int_equal(ok("2025-03-01T09:30:00+08:00"), T0);
    assert_int_equal(ok("2025-02-28T20:00:00-05:30"), T0);
    assert_int_equal(ok("2025-03-01T01:30:00+00:00"), T0);
    assert_int_equal(ok("2025-03-01T01:30:00-00:00"), T0);
    assert_int_equal(ok("2025-03-02T01:29:00+23:59"), T0);
    assert_int_equal(ok("2024-02-29T12:00:00-05:30"), INT64_C(1709227800000));
    assert_int_equal(ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(ok("1969-12-31T23:59:59.999Z"), -1);
    assert_int_equal(ok("0000-01-01T00:00:00Z"), INT64_C(-62167219200000));
    assert_int_equal(ok("9999-12-31T23:59:59.999Z"), INT64_C(253402300799999));
}

static void test_parse_fractions(void **state)
{
    (void)state;
    static const struct { const char *s; int64_t ms; } cases[] = {
        {"2025-03-01T01:30:00.1Z", 100},
        {"2025-03-01T01:30:00.12Z", 120},
        {"2025-03-01T01:30:00.123Z", 123},
        {"2025-03-01T01:30:00.1239Z", 123},
        {"2025-03-01T01:30:00.12399Z", 123},
        {"2025-03-01T01:30:00.123999Z", 123},
        {"2025-03-01T01:30:00.1239999Z", 123},
        {"2025-03-01T01:30:00.12399999Z", 123},
        {"2025-03-01T01:30:00.999999999Z", 999},
        {"2025-03-01T01:30:00.000000000000000000000000000001Z", 0},
        {"2025-03-01T01:30:00.05Z", 50},
        {"2025-03-01T09:30:00.250+08:00", 250},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(ok(cases[i].s), T0 + cases[i].ms);
}

static void test_parse_calendar(void **state)
{
    (void)state;
    assert_int_equal(ok("2024-02-29T00:00:00Z"), INT64_C(1709164800000));
    assert_int_equal(ok("2000-02-29T00:00:00Z"), INT64_C(951782400000));
    bad("2023-02-29T00:00:00Z");
    bad("1900-02-29T00:00:00Z");
    bad("2025-04-31T00:00:00Z");
    bad("2025-13-01T00:00:00Z");
    bad("2025-00-01T00:00:00Z");
    bad("2025-01-00T00:00:00Z");
    bad("2025-01-32T00:00:00Z");
    assert_int_equal(ok("2025-12-31T23:59:59Z"), INT64_C(1767225599000));
    bad("2025-01-01T24:00:00Z");
    bad("2025-01-01T23:60:00Z");
    bad("2025-01-01T23:59:61Z");
    bad("10000-01-01T00:00:00Z");
}

static void test_parse_leap_second(void **state)
{
    (void)state;
    /* 2016-12-31T23:59:60Z is read as 23:59:59.999, fraction ignored. */
    int64_t v = ok("2016-12-31T23:59:60Z");
    assert_int_equal(v, ok("2016-12-31T23:59:59.999Z"));
    assert_int_equal(ok("2016-12-31T23:59:60.5Z"), v);
    assert_int_equal(ok("2017-01-01T07:59:60+08:00"), v);
}

static void test_parse_garbage(void **state)
{
    (void)state;
    bad(NULL);
    bad("");
    bad("garbage");
    bad("2025");
    bad("2025-03-01");
    bad("2025-03-01T01:30Z");
    bad("2025-03-01T01:30:00");             /* no zone */
    bad("2025-03-01 01:30:00Z");            /* space */
    bad("2025-03-01X01:30:00Z");
    bad(" 2025-03-01T01:30:00Z");
    bad("2025-03-01T01:30:00Z ");
    bad("2025-03-01T01:30:00Zx");
    bad("2025-03-01T01:30:00ZZ");
    bad("2025-03-01T01:30:00+08:00x");
    bad("2025-03-01T01:30:00+0800");
    bad("2025-03-01T01:30:00+08");
    bad("2025-03-01T01:30:00+8:00");
    bad("2025-03-01T01:30:00+24:00");
    bad("2025-03-01T01:30:00+08:60");
    bad("2025-03-01T01:30:00.Z");
    bad("2025-03-01T01:30:00.+08:00");
    bad("2025-03-01T01:30:00,5Z");
    bad("2025-3-01T01:30:00Z");
    bad("2025-03-1T01:30:00Z");
    bad("2025-03-01T1:30:00Z");
    bad("-025-03-01T01:30:00Z");
    bad("+2025-03-01T01:30:00Z");
    bad("2025/03/01T01:30:00Z");
    bad("2025-03-01T01-30-00Z");
    bad("1740792600000");
    /* Truncated at every position: never accepted, never read past NUL. */
    const char *full = "2025-03-01T09:30:00.123+08:00";
    char buf[64];
    for (size_t n = 0; n < strlen(full); n++) {
        memcpy(buf, full, n);
        buf[n] = '\0';
        bad(buf);
    }
    assert_int_equal(ok(full), T0 + 123);
}

/* Format ms at offset_s into a fresh buffer and compare. */
static void fmt_is(int64_t ms, int off, const char *want)
{
    char buf[64];
    memset(buf, 'x', sizeof buf);
    rk__format_rfc3339(ms, off, buf, 32);
    assert_string_equal(buf, want);
}

static void test_format(void **state)
{
    (void)state;
    fmt_is(0, 0, "1970-01-01T00:00:00.000Z");
    fmt_is(T0, 0, "2025-03-01T01:30:00.000Z");
    fmt_is(T0, 8 * 3600, "2025-03-01T09:30:00.000+08:00");
    fmt_is(T0 + 250, -(5 * 3600 + 30 * 60), "2025-02-28T20:00:00.250-05:30");
    fmt_is(-1, 0, "1969-12-31T23:59:59.999Z");
    fmt_is(-86400000, 0, "1969-12-31T00:00:00.000Z");
    fmt_is(-86400001, 0, "1969-12-30T23:59:59.999Z");
    fmt_is(-1, 3600, "1970-01-01T00:59:59.999+01:00");
    fmt_is(INT64_C(951782400000), 0, "2000-02-29T00:00:00.000Z");
    fmt_is(INT64_C(1709164800000) - 1, 0, "2024-02-28T23:59:59.999Z");
    fmt_is(INT64_C(-62167219200000), 0, "0000-01-01T00:00:00.000Z");
    fmt_is(INT64_C(253402300799999), 0, "9999-12-31T23:59:59.999Z");
    /* Seconds beyond whole minutes are dropped, offsets are clamped. */
    fmt_is(T0, 8 * 3600 + 59, "2025-03-01T09:30:00.000+08:00");
    fmt_is(T0, 30, "2025-03-01T01:30:00.000Z");
    fmt_is(T0, 100 * 3600, "2025-03-02T01:29:00.000+23:59");
    /* Extreme values must not crash or overflow (UBSan build). */
    char buf[64];
    rk__format_rfc3339(INT64_MAX, 8 * 3600, buf, sizeof buf);
    assert_true(strlen(buf) > 20);
    rk__format_rfc3339(INT64_MIN, -8 * 3600, buf, sizeof buf);
    assert_true(strlen(buf) > 20);
    /* A short buffer is truncated and terminated. */
    memset(buf, 'x', sizeof buf);
    rk__format_rfc3339(T0, 0, buf, 11);
    assert_string_equal(buf, "2025-03-01");
    rk__format_rfc3339(T0, 0, buf, 0);          /* no write at all */
    assert_int_equal(buf[0], '2');
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const int offsets[] = {0, 3600, 8 * 3600, -(5 * 3600 + 30 * 60),
                                  23 * 3600 + 59 * 60, -(23 * 3600 + 59 * 60)};
    uint64_t x = 88172645463325252u;            /* xorshift64 */
    char buf[32];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Years 0001..9998 so every offset stays within 0000..9999. */
        int64_t ms = INT64_C(-62135596800000) +
                     (int64_t)(x % UINT64_C(315400000000000));
        if (i < 4000)                           /* dense around the epoch */
            ms = (int64_t)(x % UINT64_C(400000000000)) - INT64_C(200000000000);
        int off = offsets[i % 6];
        rk__format_rfc3339(ms, off, buf, sizeof buf);
        int64_t back = 0;
        if (rk__parse_rfc3339(buf, &back) != 0 || back != ms)
            fail_msg("%lld -> %s -> %lld", (long long)ms, buf, (long long)back);
    }
    /* Every day boundary of four years around 2024's leap day. */
    for (int64_t d = 19700; d < 19700 + 4 * 366; d++) {
        rk__format_rfc3339(d * 86400000, 0, buf, sizeof buf);
        int64_t back = 0;
        assert_int_equal(rk__parse_rfc3339(buf, &back), 0);
        assert_int_equal(back, d * 86400000);
    }
}

static void test_wall(void **state)
{
    int64_t before = 0, w = 0, after = 0;
    int tries;
    (void)state;
    /* The bounds come from gettimeofday, not time(): time() reads the
     * coarse clock, which lags the real one by up to a tick, so a reading
     * just after a second turned could fall past time()'s second + 1 s.
     * The machine's clock may be stepped (NTP) between two readings; a
     * step shows as a reading outside its bounds, so read again. */
    for (tries = 0; tries < 5; tries++) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        before = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
        w = rk__wall_ms();
        gettimeofday(&tv, NULL);
        after = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
        if (w >= before && w <= after)
            break;
    }
    assert_true(w >= before);
    assert_true(w <= after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_zones),
        cmocka_unit_test(test_parse_fractions),
        cmocka_unit_test(test_parse_calendar),
        cmocka_unit_test(test_parse_leap_second),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_wall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
