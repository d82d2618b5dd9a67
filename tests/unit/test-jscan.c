/* tests/unit/test-jscan.c - unit tests for daemon/lib/jscan.c, the event parser's
 * fast path.
 *
 * rk__jscan() may accept only what jansson accepts, with the same values
 * (jscan_diff.h checks each input against json_loadb). The tests pin both
 * sides of that promise: inputs the fast path must take (every event shape
 * the contract has, escapes, UTF-8, numbers, nesting), inputs it must pass
 * on (everything jansson rejects, and the unusual valid input it leaves to
 * jansson), the values it decodes, and a deterministic mutation run over
 * those inputs in which every acceptance is checked against jansson, and
 * the benchmark generator's events, which must all take the fast path. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "gen.h"
#include "jscan_diff.h"

/* Valid JSON objects the fast path must take. */
static const char *const fast[] = {
    "{}",
    " \t\r\n{ \"a\" : 1 } \n",
    "{\"type\":\"inspection.filed\",\"ts\":\"2025-03-01T09:30:00+08:00\",\"task_id\":\"T1\","
    "\"unit_id\":\"U1\",\"officers\":[\"O1\",\"O2\"],\"enterprise_id\":\"E1\","
    "\"planned_at\":1740792600000,\"basis\":\"routine\",\"items\":[{\"k\":1},[2],3,null],"
    "\"region\":\"R\"}",
    "{\"type\":\"case.decided\",\"ts\":1,\"case_id\":\"C\",\"unit_id\":\"U\",\"fine\":1234.5,"
    "\"confiscation\":0,\"leniency\":\"none\"}",
    "{\"type\":\"inspection.rated\",\"ts\":1,\"task_id\":\"T\",\"enterprise_id\":\"E\","
    "\"score\":2,\"comment\":\"\xe6\x80\x81\xe5\xba\xa6\xe5\xb7\xae\"}",
    "{\"s\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}",
    "{\"s\":\"\\u00e9\\u4e2d\\uD83D\\uDE00\\u0041\"}",
    "{\"s\":\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\x7f\"}",
    "{\"n\":[0,-0,1,-1,123456789012345678,-123456789012345678]}",
    "{\"r\":[0.5,-0.0,1e5,1E+2,2e-3,1.25e10,4.9e-324,1e-400]}",
    "{\"t\":true,\"f\":false,\"z\":null,\"e\":\"\",\"o\":{},\"a\":[]}",
    "{\"o\":{\"a\":{\"b\":{\"c\":[1,{\"d\":\"x\"}]}},\"b\":1}}",
    "{\"a\":1,\"A\":2,\"a \":3,\"\xc3\xa9\":4}",
};

/* Input the fast path must pass on to jansson: invalid JSON (jansson's
 * error), then valid but unusual. */
static const char *const other[] = {
    "", "   ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}",
    "{\"a\":1}x", "{\"a\":1}{}", "{'a':1}", "{a:1}", "{\"a\":01}", "{\"a\":-}",
    "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":+1}",
    "{\"a\":tru}", "{\"a\":truex}", "{\"a\":nul}", "{\"a\":NaN}", "{\"a\":Infinity}",
    "{\"a\":1e999}", "{\"a\":-1e999}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":[1 2]}",
    "{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}",
    "{\"a\":\"\\u0000\"}", "{\"a\":\"\\uD800\"}", "{\"a\":\"\\uDC00\"}",
    "{\"a\":\"\\uD800\\u0041\"}", "{\"a\":\"\\uD800x\"}",
    "{\"a\":\"\x01\"}", "{\"a\":\"\t\"}",
    "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\x80\"}",
    "{\"a\":\"\xe0\x80\xaf\"}", "{\"a\":\"\xf0\x80\x80\xaf\"}",
    "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":{\"c\":1,\"c\":2}}",
    "{\"a\":[{\"x\":1,\"x\":1}]}",
    "\xef\xbb\xbf{}",
    /* valid, left to jansson */
    "[1]", "1", "\"s\"", "null",
    "{\"\\u0061\":1}",
    "{\"a\":1234567890123456789}",
    "{\"a\":99999999999999999999}",
};

static void test_fast(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++) {
        int rc = jscan_diff(fast[i], strlen(fast[i]));
        if (rc != 1)
            fail_msg("fast[%zu] (%s): %d", i, fast[i], rc);
    }
}

static void test_other(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        int rc = jscan_diff(other[i], strlen(other[i]));
        if (rc != 0)
            fail_msg("other[%zu] (%s): %d", i, other[i], rc);
    }
    /* A NUL byte anywhere, a read never past len. */
    assert_int_equal(jscan_diff("{\"a\":1}\0", 8), 0);
    assert_int_equal(jscan_diff("{\"a\":\"\0\"}", 8), 0);
    assert_int_equal(jscan_diff("{\"a\":1}", 6), 0);
    assert_int_equal(jscan_diff("{\"a\":12}", 7), 0);
    assert_int_equal(jscan_diff("{\"a\":\"\\u00e9\"}", 10), 0);
}

/* Nesting, members and keys up to the fast path's limits, and past them. */
static void test_limits(void **state)
{
    (void)state;
    char buf[4096];
    size_t n;

    /* Depth: the member value at depth 1, 31 more levels is the most. */
    for (int depth = 30; depth <= 34; depth++) {
        n = (size_t)snprintf(buf, sizeof buf, "{\"a\":");
        for (int i = 0; i < depth; i++)
            buf[n++] = '[';
        for (int i = 0; i < depth; i++)
            buf[n++] = ']';
        buf[n++] = '}';
        assert_int_equal(jscan_diff(buf, n), depth <= 32 ? 1 : 0);
    }
    /* Top-level members: 64 taken, 65 passed on. */
    for (int m = 63; m <= 65; m++) {
        n = (size_t)snprintf(buf, sizeof buf, "{");
        for (int i = 0; i < m; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"k%d\":%d", i ? "," : "", i, i);
        buf[n++] = '}';
        assert_int_equal(jscan_diff(buf, n), m <= RK__JSCAN_MAX_MEMBERS ? 1 : 0);
    }
    /* A duplicate as the 64th member is still found. */
    n = (size_t)snprintf(buf, sizeof buf, "{");
    for (int i = 0; i < 63; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\"k%d\":1,", i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\"k0\":2}");
    assert_int_equal(jscan_diff(buf, n), 0);
    /* A nested object's keys: 16 taken, 17 passed on. */
    for (int m = 16; m <= 17; m++) {
        n = (size_t)snprintf(buf, sizeof buf, "{\"o\":{");
        for (int i = 0; i < m; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"k%d\":%d", i ? "," : "", i, i);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "}}");
        assert_int_equal(jscan_diff(buf, n), m <= 16 ? 1 : 0);
    }
    /* Integers: 18 digits taken, 19 passed on; a long real passed on. */
    assert_int_equal(jscan_diff("{\"a\":999999999999999999}", 24), 1);
    assert_int_equal(jscan_diff("{\"a\":-999999999999999999}", 25), 1);
    assert_int_equal(jscan_diff("{\"a\":-1000000000000000000}", 26), 0);
    n = (size_t)snprintf(buf, sizeof buf, "{\"a\":0.%070d}", 1);
    assert_int_equal(jscan_diff(buf, n), 0);
}

/* The decoded values themselves, not only their agreement with jansson. */
static void test_values(void **state)
{
    (void)state;
    rk__arena a = {0};
    rk__jobj o;
    static const char in[] =
        "{\"s\":\"a\\n\\u00e9\\uD83D\\uDE00\",\"i\":-42,\"r\":2.5e1,\"t\":true,"
        "\"z\":null,\"o\":{\"x\":[1]},\"arr\":[\"A\",7,[\"n\"],{},\"\"]}";

    assert_int_equal(rk__jscan(in, sizeof in - 1, &a, &o), 0);
    assert_int_equal(o.n, 7);
    const rk__jval *v = rk__jobj_get(&o, "s");
    assert_non_null(v);
    assert_int_equal(v->kind, RK_J_STRING);
    assert_string_equal(v->str, "a\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(v->len, 8);
    assert_int_equal(rk__jobj_get(&o, "i")->i, -42);
    assert_int_equal(rk__jobj_get(&o, "i")->kind, RK_J_INT);
    assert_true(rk__jobj_get(&o, "r")->d == 25.0);
    assert_int_equal(rk__jobj_get(&o, "r")->kind, RK_J_REAL);
    assert_int_equal(rk__jobj_get(&o, "t")->kind, RK_J_TRUE);
    assert_int_equal(rk__jobj_get(&o, "z")->kind, RK_J_NULL);
    assert_int_equal(rk__jobj_get(&o, "o")->kind, RK_J_OBJECT);
    v = rk__jobj_get(&o, "arr");
    assert_int_equal(v->kind, RK_J_ARRAY);
    assert_int_equal(v->len, 5);
    assert_string_equal(v->elems[0].str, "A");
    assert_int_equal(v->elems[1].i, 7);
    assert_int_equal(v->elems[2].kind, RK_J_ARRAY);
    assert_int_equal(v->elems[3].kind, RK_J_OBJECT);
    assert_int_equal(v->elems[4].kind, RK_J_STRING);
    assert_int_equal(v->elems[4].len, 0);
    assert_null(rk__jobj_get(&o, "missing"));
    assert_null(rk__jobj_get(&o, "S"));
    rk__arena_rewind(&a, true);
}

/* xorshift64: a fixed sequence, so a failure is reproducible. */
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Bytes a mutation writes: JSON's structure, escapes, digits and the edges
 * of UTF-8. */
static const unsigned char alphabet[] = {
    '"', '\\', 'u', '{', '}', '[', ']', ',', ':', ' ', '-', '+', '.', 'e', 'E', '0',
    '1', '9', 'D', '8', 'C', 'F', 'a', 't', 'n', '/', 0, 0x01, 0x1f, 0x7f, 0x80, 0xbf,
    0xc0, 0xc3, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};

/* Mutate buf (n bytes, room for cap) once; returns the new length. */
static size_t mutate(unsigned char *buf, size_t n, size_t cap)
{
    size_t at = n ? (size_t)(rnd() % n) : 0;
    unsigned char c = alphabet[rnd() % sizeof alphabet];

    switch (rnd() % 5) {
    case 0:                                     /* replace */
        if (n)
            buf[at] = c;
        return n;
    case 1:                                     /* insert */
        if (n + 1 > cap)
            return n;
        memmove(buf + at + 1, buf + at, n - at);
        buf[at] = c;
        return n + 1;
    case 2:                                     /* delete */
        if (n)
            memmove(buf + at, buf + at + 1, n - at - 1);
        return n ? n - 1 : 0;
    case 3: {                                   /* copy a slice elsewhere */
        size_t len = 1 + (size_t)(rnd() % 12), to = n ? (size_t)(rnd() % n) : 0;
        unsigned char slice[12];
        if (n > cap || len > n || at > n - len || len > cap - n)
            return n;
        for (size_t i = 0; i < len; i++)
            slice[i] = buf[at + i];
        memmove(buf + to + len, buf + to, n - to);
        memcpy(buf + to, slice, len);
        return n + len;
    }
    default:                                    /* truncate */
        return at;
    }
}

/* Every fast input, mutated 1 to 4 times, 20000 times each: whatever the
 * fast path accepts, jansson must accept with the same values. Both sides
 * must be exercised: some mutants accepted, most passed on. */
static void test_mutations(void **state)
{
    (void)state;
    unsigned char buf[1024];
    size_t accepted = 0, total = 0;

    for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++) {
        size_t len = strlen(fast[i]);
        for (int k = 0; k < 20000; k++) {
            size_t n = len;
            memcpy(buf, fast[i], n);
            for (int m = 1 + (int)(rnd() % 4); m > 0; m--)
                n = mutate(buf, n, sizeof buf);
            /* A copy of exactly n bytes: ASan sees a read past the end. */
            char *copy = malloc(n ? n : 1);
            assert_non_null(copy);
            memcpy(copy, buf, n);
            int rc = jscan_diff(copy, n);
            free(copy);
            if (rc < 0)
                fail_msg("fast[%zu] mutant %d disagrees with jansson", i, k);
            accepted += (size_t)rc;
            total++;
        }
    }
    assert_true(accepted > total / 50);
    assert_true(accepted < total / 2);
}

/* The benchmark's realistic mix (every type, anomalies, reals for fines): every event takes the fast path, agrees with jansson
 * and parses. */
static void test_generator_fast(void **state)
{
    (void)state;
    bg_opts o;
    bg_opts_default(&o);
    o.entries = 50000;
    bg_gen *g = bg_gen_new(&o);
    assert_non_null(g);
    rk__event_mem m = {0};
    rk_event ev;
    char buf[4096], err[RK_ERRLEN];
    int stream;
    int64_t ts;

    for (int i = 0; i < 50000; i++) {
        int n = bg_gen_next(g, -1, &stream, &ts, buf, sizeof buf);
        assert_true(n > 0);
        if (jscan_diff(buf, (size_t)n) != 1)
            fail_msg("generated event not on the fast path: %.*s", n, buf);
        assert_int_equal(rk__event_parse(buf, (size_t)n, &ev, &m, err, sizeof err),
                         RK_PARSE_OK);
        assert_null(m.root);
        assert_int_equal(ev.ts, ts);
    }
    rk__event_mem_free(&m);
    bg_gen_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast),
        cmocka_unit_test(test_other),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_generator_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
