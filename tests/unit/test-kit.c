/* tests/unit/test-kit.c - the plugin kit's data structures where no
 * detector test pins them down: rk_itab (lookups, removal in singly and
 * doubly linked tables, growing keeps records of one key together and the
 * prev links right) and rk_heap as a lazy queue (no index in the records:
 * pop and retop give the keys in order; the array shrinks and is freed). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "riskd/kit.h"

typedef struct rec {
    void *next;
    void *prev;
    int group;                      /* the key: records of one group are "equal" */
    int id;
} rec;

static uint64_t rec_hash(const void *r)
{
    char k[16];
    snprintf(k, sizeof(k), "g%d", ((const rec *)r)->group);
    return rk_kit_hash_str(k);
}

static rec *find_in(const rk_itab *t, int group, int id)
{
    rec tmp = {NULL, NULL, group, 0};
    rec *r;
    for (r = rk_itab_first(t, rec_hash(&tmp)); r != NULL; r = rk_itab_next(t, r))
        if (r->group == group && r->id == id)
            return r;
    return NULL;
}

/* Every bucket: the prev links mirror the next links, and the records of
 * a group are contiguous. Returns the number of records. */
static size_t check_table(const rk_itab *t)
{
    size_t i, n = 0;
    for (i = 0; i < t->nb; i++) {
        const rec *r, *p = NULL;
        int seen[64] = {0};
        for (r = t->b[i]; r != NULL; p = r, r = rk_itab_next(t, r)) {
            assert_true(rk_itab_prev(t, r) == p);
            assert_int_equal((size_t)(rec_hash(r) & (t->nb - 1)), i);
            if (p == NULL || p->group != r->group) {
                assert_int_equal(seen[r->group], 0);   /* the group's one run */
                seen[r->group] = 1;
            }
            n++;
        }
    }
    return n;
}

static void test_itab_doubly_linked_groups(void **state)
{
    enum { N = 600, GROUPS = 50 };
    static rec recs[N];
    rk_itab t;
    int i;
    (void)state;
    rk_itab_init(&t, offsetof(rec, next), offsetof(rec, prev), rec_hash);
    assert_null(rk_itab_first(&t, 1));
    for (i = 0; i < N; i++) {
        rec *after;
        recs[i].group = i % GROUPS;
        recs[i].id = i;
        assert_int_equal(rk_itab_reserve(&t), 0);
        /* after the group's first record when it has one */
        after = i >= GROUPS ? &recs[i % GROUPS] : NULL;
        rk_itab_insert(&t, &recs[i], rec_hash(&recs[i]), after);
    }
    assert_true(t.nb >= N / RK_ITAB_LOAD);          /* it grew */
    assert_int_equal(t.count, N);
    assert_int_equal(check_table(&t), N);
    for (i = 0; i < N; i++)
        assert_ptr_equal(find_in(&t, i % GROUPS, i), &recs[i]);
    /* remove every third record, wherever it sits in its run */
    for (i = 0; i < N; i += 3) {
        rk_itab_remove(&t, &recs[i], rec_hash(&recs[i]));
        assert_null(recs[i].next);
        assert_null(recs[i].prev);
    }
    assert_int_equal(t.count, N - N / 3);
    assert_int_equal(check_table(&t), N - N / 3);
    for (i = 0; i < N; i++) {
        if (i % 3 == 0) assert_null(find_in(&t, i % GROUPS, i));
        else assert_ptr_equal(find_in(&t, i % GROUPS, i), &recs[i]);
    }
    rk_itab_free(&t);
    assert_int_equal(t.count, 0);
    assert_null(rk_itab_first(&t, 1));
}

static void test_itab_singly_linked(void **state)
{
    enum { N = 300 };
    static rec recs[N];
    rk_itab t;
    int i;
    (void)state;
    rk_itab_init(&t, offsetof(rec, next), RK_ITAB_NOPREV, rec_hash);
    for (i = 0; i < N; i++) {
        recs[i].group = i % 64;
        recs[i].id = i;
        recs[i].prev = &recs[0];    /* a singly linked table never touches it */
        assert_int_equal(rk_itab_reserve(&t), 0);
        rk_itab_insert(&t, &recs[i], rec_hash(&recs[i]), NULL);
    }
    for (i = N - 1; i >= 0; i -= 2)
        rk_itab_remove(&t, &recs[i], rec_hash(&recs[i]));
    assert_int_equal(t.count, N / 2);
    for (i = 0; i < N; i++) {
        if (i % 2) assert_null(find_in(&t, i % 64, i));
        else assert_ptr_equal(find_in(&t, i % 64, i), &recs[i]);
        assert_ptr_equal(recs[i].prev, &recs[0]);
    }
    rk_itab_free(&t);
}

static void test_heap_lazy_queue(void **state)
{
    enum { N = 1000 };
    static int recs[N];
    rk_heap h;
    int64_t last = INT64_MIN;
    int i, popped = 0;
    (void)state;
    rk_heap_init(&h, RK_HEAP_NOPOS);
    for (i = 0; i < N; i++) {
        recs[i] = i;
        assert_int_equal(rk_heap_push(&h, (int64_t)((i * 7919) % N), &recs[i]), 0);
    }
    assert_int_equal(h.n, N);
    assert_true(h.cap >= N);
    /* the records carry no index: nothing was written into them */
    for (i = 0; i < N; i++)
        assert_int_equal(recs[i], i);
    /* re-key the first 100 tops past the end: they come out last */
    for (i = 0; i < 100; i++) {
        const rk_heap_item *top = rk_heap_top(&h);
        assert_int_equal(top->key, i);
        rk_heap_retop(&h, N + i);
    }
    while (rk_heap_top(&h) != NULL) {
        const rk_heap_item *top = rk_heap_top(&h);
        assert_true(top->key >= last);
        last = top->key;
        rk_heap_pop(&h);
        popped++;
        if (h.n > 0 && h.n < 64)
            assert_true(h.cap <= 256);      /* shrank on the way down */
    }
    assert_int_equal(popped, N);
    assert_int_equal(last, N + 99);
    assert_null(h.items);                   /* freed when empty */
    assert_int_equal(h.cap, 0);
    rk_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_itab_doubly_linked_groups),
        cmocka_unit_test(test_itab_singly_linked),
        cmocka_unit_test(test_heap_lazy_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
