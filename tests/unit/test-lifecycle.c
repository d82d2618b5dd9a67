/* tests/unit/test-lifecycle.c - the open alerts of the built-in detectors
 * (detectors/lifecycle.c): their extras and interned strings.
 *
 *   extras       every shape of extra (none, empty, one field, two, an
 *                empty field either side, a second separator) reads back
 *                as it was added, whole and by field
 *   shared       a string carried by many alerts is kept once, whatever
 *                the other field; it goes with the last alert carrying it
 *                and its id is reused
 *   remove       rk__open_remove keeps the others in order
 *   snapshot     rk__open_put writes the same bytes as before the strings
 *                were interned (built here by hand, a key left with no
 *                alert included) and reads them back; every truncation is
 *                refused and leaves the set empty
 *   growth       a key's record moves as it grows; the map follows it */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

static const char *const extras[] = {
    NULL, "", "U1", "U1\x1f", "\x1fU1", "\x1f", "U1\x1fSP-1", "a\x1f" "b\x1f" "c",
};
#define N_EXTRAS (sizeof(extras) / sizeof(extras[0]))

static void check_extras(const rk__openset *set)
{
    const rk__openrec *r = rk__open_get(set, "K");
    char buf[64];
    size_t i;
    assert_non_null(r);
    assert_int_equal(r->n, N_EXTRAS);
    for (i = 0; i < N_EXTRAS; i++) {
        size_t need = rk__open_extra(set, &r->a[i], buf, sizeof(buf));
        assert_int_equal(r->a[i].ts, (int64_t)i);
        if (extras[i] == NULL) {
            assert_int_equal(need, 0);
            assert_null(rk__open_field(set, &r->a[i], 0));
            assert_null(rk__open_field(set, &r->a[i], 1));
            continue;
        }
        assert_int_equal(need, strlen(extras[i]) + 1);
        assert_string_equal(buf, extras[i]);
        /* too small: "" and the size it needs */
        assert_int_equal(rk__open_extra(set, &r->a[i], buf, need - 1), need);
        assert_string_equal(buf, "");
    }
    assert_string_equal(rk__open_field(set, &r->a[2], 0), "U1");
    assert_null(rk__open_field(set, &r->a[2], 1));
    assert_string_equal(rk__open_field(set, &r->a[3], 1), "");
    assert_string_equal(rk__open_field(set, &r->a[4], 0), "");
    assert_string_equal(rk__open_field(set, &r->a[6], 1), "SP-1");
    assert_string_equal(rk__open_field(set, &r->a[7], 0), "a");
    assert_string_equal(rk__open_field(set, &r->a[7], 1), "b\x1f" "c");
}

static void add_extras(rk__openset *set)
{
    size_t i;
    for (i = 0; i < N_EXTRAS; i++)
        assert_int_equal(rk__open_add(set, "K", (int64_t)i, extras[i]), 0);
}

static void test_extras(void **st)
{
    rk__openset set;
    (void)st;
    rk__open_init(&set);
    add_extras(&set);
    check_extras(&set);
    rk__open_clear(&set);
    assert_int_equal(set.strs.count, 0);
}

static void test_shared(void **st)
{
    rk__openset set;
    char key[16], x[32];
    unsigned i;
    uint32_t cap;
    (void)st;
    rk__open_init(&set);
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "C%u", i);
        snprintf(x, sizeof(x), "U%u\x1fSP-%u", i % 2, i % 5);
        assert_int_equal(rk__open_add(&set, key, i, x), 0);
    }
    assert_int_equal(rk__open_count(&set), 100);
    assert_int_equal(set.strs.count, 7);        /* U0 U1, SP-0 .. SP-4 */
    for (i = 0; i < 99; i++) {
        snprintf(key, sizeof(key), "C%u", i);
        rk__open_drop(&set, key);
    }
    assert_int_equal(set.strs.count, 2);        /* C99's U1 and SP-4 */
    rk__open_drop(&set, "C99");
    assert_int_equal(set.strs.count, 0);
    assert_int_equal(set.map.count, 0);
    cap = set.capids;
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "D%u", i);
        snprintf(x, sizeof(x), "E%u", i % 7);
        assert_int_equal(rk__open_add(&set, key, i, x), 0);
    }
    assert_int_equal(set.strs.count, 7);
    assert_int_equal(set.capids, cap);          /* the freed ids again */
    rk__open_clear(&set);
}

static void test_remove(void **st)
{
    rk__openset set;
    rk__openrec *r;
    (void)st;
    rk__open_init(&set);
    assert_int_equal(rk__open_add(&set, "K", 1, "A\x1fX"), 0);
    assert_int_equal(rk__open_add(&set, "K", 2, "B\x1fX"), 0);
    assert_int_equal(rk__open_add(&set, "K", 3, "C\x1fX"), 0);
    r = rk__open_get(&set, "K");
    rk__open_remove(&set, r, 1);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->a[0].ts, 1);
    assert_int_equal(r->a[1].ts, 3);
    assert_string_equal(rk__open_field(&set, &r->a[1], 0), "C");
    assert_null(rk_map_find(&set.strs, "B"));
    assert_non_null(rk_map_find(&set.strs, "X"));
    rk__open_remove(&set, r, 0);
    rk__open_remove(&set, r, 0);
    assert_int_equal(set.strs.count, 0);
    assert_non_null(rk__open_get(&set, "K"));   /* the record stays */
    rk__open_clear(&set);
}

/* The bytes of a set as the writer before interning put them: K with
 * the extras, E resolving at 77 with no alert left. */
static void old_bytes(rk_buf *b, int e_first)
{
    size_t i;
    rk_buf_put_u32(b, 2);
    if (e_first) {
        rk_buf_put_str(b, "E");
        rk_buf_put_i64(b, 77);
        rk_buf_put_u32(b, 0);
    }
    rk_buf_put_str(b, "K");
    rk_buf_put_i64(b, INT64_MAX);
    rk_buf_put_u32(b, N_EXTRAS);
    for (i = 0; i < N_EXTRAS; i++) {
        rk_buf_put_i64(b, (int64_t)i);
        rk_buf_put_u32(b, extras[i] != NULL);
        if (extras[i] != NULL)
            rk_buf_put_str(b, extras[i]);
    }
    if (!e_first) {
        rk_buf_put_str(b, "E");
        rk_buf_put_i64(b, 77);
        rk_buf_put_u32(b, 0);
    }
}

static void test_snapshot(void **st)
{
    rk__openset set, back;
    rk_buf old = {0}, old2 = {0}, mine = {0}, again = {0};
    rk_rd rd;
    size_t cut;
    (void)st;
    rk__open_init(&set);
    rk__open_init(&back);
    old_bytes(&old, 0);
    old_bytes(&old2, 1);
    rk_rd_init(&rd, old.data, old.len);
    assert_int_equal(rk__open_read(&rd, &set), 0);
    assert_true(rd.p == rd.end);
    check_extras(&set);
    assert_non_null(rk__open_get(&set, "E"));
    assert_int_equal(rk__open_get(&set, "E")->n, 0);
    assert_int_equal(rk__open_get(&set, "E")->resolve_at, 77);
    /* written back: the old bytes (the map's order is one of the two) */
    rk__open_put(&mine, &set);
    assert_false(mine.oom);
    assert_true((mine.len == old.len && memcmp(mine.data, old.data, old.len) == 0) ||
                (mine.len == old2.len && memcmp(mine.data, old2.data, old2.len) == 0));
    rk_rd_init(&rd, mine.data, mine.len);
    assert_int_equal(rk__open_read(&rd, &back), 0);
    rk__open_put(&again, &back);
    assert_true((again.len == old.len && memcmp(again.data, old.data, old.len) == 0) ||
                (again.len == old2.len && memcmp(again.data, old2.data, old2.len) == 0));
    rk__open_clear(&back);
    for (cut = 0; cut < mine.len; cut++) {
        rk_rd_init(&rd, mine.data, cut);
        assert_int_equal(rk__open_read(&rd, &back), -1);
        assert_int_equal(back.map.count, 0);
        assert_int_equal(back.strs.count, 0);
    }
    rk__open_clear(&set);
    rk_buf_free(&old);
    rk_buf_free(&old2);
    rk_buf_free(&mine);
    rk_buf_free(&again);
}

static void test_growth(void **st)
{
    rk__openset set;
    const rk__openrec *r;
    uint32_t i;
    (void)st;
    rk__open_init(&set);
    for (i = 0; i < 1000; i++)
        assert_int_equal(rk__open_add(&set, "K", i, i % 2 ? "U1" : NULL), 0);
    r = rk__open_get(&set, "K");
    assert_int_equal(r->n, 1000);
    assert_true(r->cap >= 1000 && r->cap <= 1000 + 1000 / 8);
    for (i = 0; i < 1000; i++) {
        assert_int_equal(r->a[i].ts, i);
        if (i % 2)
            assert_string_equal(rk__open_field(&set, &r->a[i], 0), "U1");
        else
            assert_null(rk__open_field(&set, &r->a[i], 0));
    }
    assert_int_equal(set.strs.count, 1);
    rk__open_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extras),
        cmocka_unit_test(test_shared),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
