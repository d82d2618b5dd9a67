/* tests/unit/test-route.c - route.c: the partition of an event's key is
 * zlib's crc32() of its bytes modulo the partitions (the values below are
 * Python's zlib.crc32), as producers are told to compute it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "internal.h"

static void test_crc32_check_value(void **st)
{
    (void)st;
    assert_int_equal(rk__crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(rk__crc32("", 0), 0u);
    assert_int_equal(rk__crc32("U1", 2), 3620453332u);
}

static void test_partition_of(void **st)
{
    (void)st;
    assert_int_equal(rk__partition_of("U1", 6), 4);
    assert_int_equal(rk__partition_of("C00-03-MKT", 6), 2);
    /* UTF-8 bytes, as the producer sends them */
    assert_int_equal(rk__partition_of("\xe5\xb8\x82\xe5\x9c\xba\xe7\x9b\x91\xe7\xae\xa1\xe5\xb1\x80", 6), 5);
    /* one partition (or none configured): always 0 */
    assert_int_equal(rk__partition_of("U1", 1), 0);
    assert_int_equal(rk__partition_of("U1", 0), 0);
}

/* The Redis Cluster slot: the values CLUSTER KEYSLOT answers (Redis's own
 * documentation: somekey 11058, foo{hash_tag} 2515; CRC16/XMODEM check
 * value 0x31C3 for "123456789"), and its hash-tag rules. */
static void test_keyslot(void **st)
{
    (void)st;
    assert_int_equal(rk__redis_keyslot("123456789", 9), 0x31C3);
    assert_int_equal(rk__redis_keyslot("somekey", 7), 11058);
    assert_int_equal(rk__redis_keyslot("foo{hash_tag}", 13), 2515);
    assert_int_equal(rk__redis_keyslot("{user1000}.following", 20),
                     rk__redis_keyslot("user1000", 8));
    assert_int_equal(rk__redis_keyslot("foo{}{bar}", 10),   /* empty tag: whole key */
                     rk__redis_keyslot("foo{}{bar}xx", 10));
    assert_int_equal(rk__redis_keyslot("foo{{bar}}zap", 13), rk__redis_keyslot("{bar", 4));
}

/* The tag riskd puts in the keys it derives from a key ("riskd:open:{tag}"):
 * each lands in the key's slot. */
static void test_slot_tag(void **st)
{
    static const char *const keys[] = {"alerts", "{alerts}", "x{al}y", "a{b", "riskd:alerts"};
    char tag[64], derived[128];
    size_t i;
    (void)st;
    rk__slot_tag("x{al}y", tag, sizeof(tag));
    assert_string_equal(tag, "al");
    rk__slot_tag("alerts", tag, sizeof(tag));
    assert_string_equal(tag, "alerts");
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        rk__slot_tag(keys[i], tag, sizeof(tag));
        snprintf(derived, sizeof(derived), "riskd:open:{%s}", tag);
        assert_int_equal(rk__redis_keyslot(derived, strlen(derived)),
                         rk__redis_keyslot(keys[i], strlen(keys[i])));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_partition_of),
        cmocka_unit_test(test_keyslot),
        cmocka_unit_test(test_slot_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
