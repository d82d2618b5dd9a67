/* tests/unit/test-ostore-ties.c - alerts.open_ttl closes the open alerts
 * of one ts in (detector, id) order even after some of them were removed
 * (daemon/pipeline/openstore.c: a removed record stays in the deadline
 * heap until it surfaces).
 *
 *   ties     seven alerts of one ts and detector, added in an order that
 *            leaves a record above one with a greater id; that one removed,
 *            the others close in id order, as a store restored from a
 *            checkpoint (no removed records in its heap) closes them
 *   random   many alerts on few ts and two detectors, added in random
 *            order and a random part removed: every close in (ts,
 *            detector, id) order, each live record once */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

/* An id whose first byte orders it: v = 1 < v = 2 < ... */
static void mkid(unsigned v, char out[33])
{
    snprintf(out, 33, "%02x%030x", v & 0xff, v * 2654435761u);
}

static int after(const rk__oa *x, const rk__oa *y)
{
    if (x->ts != y->ts)
        return x->ts > y->ts;
    if (x->det != y->det)
        return x->det > y->det;
    return memcmp(x->id, y->id, 16) > 0;
}

static void test_ties(void **st)
{
    /* heap by adds: [1, 2, 6, 3, 7, 8, 9]; 3 and 7 lie under 2 */
    static const unsigned order[] = {1, 2, 6, 3, 7, 8, 9};
    static const unsigned want[] = {1, 3, 6, 7, 8, 9};
    rk__ostore s;
    rk__oa oa;
    char id[33];
    int slot2 = -1;
    size_t i;
    (void)st;

    rk__ostore_init(&s);
    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        mkid(order[i], id);
        assert_int_equal(rk__ostore_add(&s, id, 500, 0, 0), 0);
        if (order[i] == 2)
            slot2 = (int)s.last;
    }
    rk__ostore_remove(&s, (uint32_t)slot2);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char exp[33], got[33];
        assert_int_equal(rk__ostore_pop_due(&s, 1000, 10, &oa), 1);
        mkid(want[i], exp);
        rk__alert_id_unpack(oa.id, got);
        assert_string_equal(got, exp);
    }
    assert_int_equal(rk__ostore_pop_due(&s, 1000, 10, &oa), 0);
    assert_int_equal(rk__ostore_count(&s), 0);
    rk__ostore_free(&s);
}

static void test_random(void **st)
{
    enum { N = 3000 };
    rk__ostore s;
    rk__oa oa, last;
    unsigned char *gone = calloc(N, 1);
    uint32_t *slot = calloc(N, sizeof(*slot));
    unsigned i, live = 0, popped = 0, round;
    (void)st;

    assert_non_null(gone);
    assert_non_null(slot);
    srand(17);
    for (round = 0; round < 20; round++) {
        rk__ostore_init(&s);
        memset(gone, 0, N);
        live = popped = 0;
        for (i = 0; i < N; i++) {
            char id[33];
            snprintf(id, sizeof(id), "%08x%08x%08x%08x", (unsigned)rand(), i, 0u, 0u);
            assert_int_equal(rk__ostore_add(&s, id, 100 + rand() % 3, (uint32_t)(rand() % 2),
                                            0), 0);
            slot[i] = s.last;
            /* remove some while adding (no tidy in between: few removed) */
            if (i > 0 && rand() % 3 == 0) {
                unsigned k = (unsigned)rand() % i;
                if (!gone[k] && s.v[slot[k]].det != RK__OSTORE_FREE &&
                    s.dead < 60) {
                    rk__ostore_remove(&s, slot[k]);
                    gone[k] = 1;
                }
            }
        }
        live = (unsigned)rk__ostore_count(&s);
        while (rk__ostore_pop_due(&s, 1000, 10, &oa) == 1) {
            if (popped > 0)
                assert_false(after(&last, &oa));
            last = oa;
            popped++;
        }
        assert_int_equal(popped, live);
        rk__ostore_free(&s);
    }
    free(gone);
    free(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
