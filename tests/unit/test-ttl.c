/* tests/unit/test-ttl.c - the alerts.open_ttl deadlines (daemon/pipeline/ttl.c).
 *
 *   order        due records leave by deadline, ties by (detector, id), and
 *                only once their deadline is before "now"
 *   ids          the 32 hex digits pack into 16 bytes and back; anything
 *                else is refused
 *   snapshot     a round trip keeps every record; detectors are renamed by
 *                name, unknown ones dropped and counted; every truncation
 *                and a bad version are refused, leaving the heap as it was
 *   memory       32 bytes a record, and the heap's slack under half of it:
 *                printed per alert against the 64-byte budget */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

static void mkid(unsigned v, char out[33])
{
    snprintf(out, 33, "%08x%08x%08x%08x", v * 2654435761u, v, ~v, v ^ 0x5a5a5a5au);
}

static void test_order(void **st)
{
    rk__ttl t = {0};
    rk__ttl_item it;
    char a[33], b[33], out[33];
    (void)st;
    mkid(1, a);
    mkid(2, b);
    assert_int_equal(rk__ttl_add(&t, 300, 0, a), 0);
    assert_int_equal(rk__ttl_add(&t, 100, 1, b), 0);
    assert_int_equal(rk__ttl_add(&t, 100, 1, a), 0);
    assert_int_equal(rk__ttl_add(&t, 100, 0, b), 0);
    assert_true(rk__ttl_due_at(&t, 101));
    assert_false(rk__ttl_due_at(&t, 100));
    assert_int_equal(rk__ttl_pop_due(&t, 100, &it), 0);   /* not before now */
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 1);
    assert_int_equal(it.deadline, 100);
    assert_int_equal(it.det, 0);
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 1);
    assert_int_equal(it.det, 1);
    rk__ttl_id_unpack(it.id, out);
    assert_string_equal(out, strcmp(a, b) < 0 ? a : b);
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 1);
    rk__ttl_id_unpack(it.id, out);
    assert_string_equal(out, strcmp(a, b) < 0 ? b : a);
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(rk__ttl_pop_due(&t, INT64_MAX, &it), 1);
    assert_int_equal(it.deadline, 300);
    rk__ttl_free(&t);
}

static void test_ids(void **st)
{
    unsigned char p[16];
    char out[33];
    rk__ttl t = {0};
    (void)st;
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f00112233445566f", p), 0);
    assert_int_equal(p[1], 0xff);
    rk__ttl_id_unpack(p, out);
    assert_string_equal(out, "00ff10a0b0c0d0e0f00112233445566f");
    assert_int_equal(rk__ttl_id_pack("00FF10a0b0c0d0e0f00112233445566f", p), -1);
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f00112233445566", p), -1);
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f00112233445566f0", p), -1);
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f0011223344556zz", p), -1);
    assert_int_equal(rk__ttl_add(&t, 1, 0, "not an id"), -1);
    assert_int_equal(t.n, 0);
    rk__ttl_free(&t);
}

static const char *const names_a[] = {"bad_rating", "fine_growth", "gone"};
static const char *const names_b[] = {"fine_growth", "x", "bad_rating"};

static const char *name_of(uint32_t det, void *ud)
{
    (void)ud;
    return det < 3 ? names_a[det] : "";
}

static int index_of(const char *name, void *ud)
{
    int i;
    (void)ud;
    for (i = 0; i < 3; i++)
        if (strcmp(names_b[i], name) == 0)
            return i;
    return -1;
}

static void test_snapshot(void **st)
{
    rk__ttl t = {0}, u = {0};
    rk_buf b = {0};
    rk__ttl_item it;
    size_t dropped = 99, cut;
    char id[33], out[33];
    unsigned i;
    (void)st;
    for (i = 0; i < 30; i++) {
        mkid(i, id);
        assert_int_equal(rk__ttl_add(&t, 1000 + (int64_t)(i % 7), i % 3, id), 0);
    }
    rk__ttl_snapshot(&t, &b, name_of, NULL);
    assert_false(b.oom);
    assert_int_equal(rk__ttl_restore(&u, b.data, b.len, index_of, NULL, &dropped), 0);
    assert_int_equal(dropped, 10);              /* "gone" is not registered */
    assert_int_equal(u.n, 20);
    while (rk__ttl_pop_due(&u, INT64_MAX, &it)) {
        /* renamed: bad_rating was 0, is 2; fine_growth was 1, is 0 */
        unsigned k;
        rk__ttl_id_unpack(it.id, out);
        assert_int_equal(sscanf(out + 8, "%8x", &k), 1);
        assert_int_equal(it.det, k % 3 == 0 ? 2u : 0u);
        assert_int_equal(it.deadline, 1000 + (int64_t)(k % 7));
    }
    /* refused: a bad version, every truncation, a trailing byte; the
     * heap keeps what it had */
    assert_int_equal(rk__ttl_add(&u, 5, 0, id), 0);
    for (cut = 0; cut < b.len; cut++)
        assert_int_equal(rk__ttl_restore(&u, b.data, cut, index_of, NULL, &dropped), -1);
    b.data[0] ^= 1;
    assert_int_equal(rk__ttl_restore(&u, b.data, b.len, index_of, NULL, &dropped), -1);
    b.data[0] ^= 1;
    rk_buf_put_u32(&b, 0);
    assert_int_equal(rk__ttl_restore(&u, b.data, b.len, index_of, NULL, &dropped), -1);
    assert_int_equal(u.n, 1);
    rk_buf_free(&b);
    rk__ttl_free(&t);
    rk__ttl_free(&u);
}

static void test_memory(void **st)
{
    rk__ttl t = {0};
    char id[33];
    size_t n, worst = 0;
    (void)st;
    assert_int_equal(sizeof(rk__ttl_item), 32);
    for (n = 1; n <= 200000; n++) {
        size_t per;
        mkid((unsigned)n, id);
        assert_int_equal(rk__ttl_add(&t, (int64_t)(n * 7919 % 100003), 0, id), 0);
        per = t.cap * sizeof(*t.v) / t.n;
        if (n >= 1000 && per > worst)
            worst = per;
    }
    printf("open_ttl deadline: %zu bytes a record, at most %zu per alert with the "
           "heap's slack (budget 64 per open alert, with the detector's 16)\n",
           sizeof(rk__ttl_item), worst);
    assert_true(worst + 16 <= 64);
    rk__ttl_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
