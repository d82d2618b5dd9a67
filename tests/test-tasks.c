/* tests/test-tasks.c - the filings kept for enrichment (daemon/tasks.c):
 * enrichment of events lacking unit or officers, first filing wins,
 * expiry (and expiry-aware lookups), interned ids released, snapshot
 * round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "internal.h"

#define DAY (86400000LL)

static rk_event filing(const char *task, const char *unit, const char *ent,
                       const char *const *officers, size_t n, int64_t ts)
{
    rk_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_INSPECTION_FILED;
    ev.task_id = task;
    ev.unit_id = unit;
    ev.enterprise_id = ent;
    ev.officers = officers;
    ev.n_officers = n;
    ev.ts = ts;
    ev.planned_at = ts + 3600000;
    ev.ref.ms = (uint64_t)ts;
    return ev;
}

static rk_event rating(const char *task, int64_t ts)
{
    rk_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_INSPECTION_RATED;
    ev.task_id = task;
    ev.ts = ts;
    return ev;
}

static void test_enrich_and_expire(void **state)
{
    static const char *const offs[] = {"O1", "O2"};
    static const char *const other[] = {"O9"};
    rk_tasks t;
    rk_event f1 = filing("T1", "U1", "E1", offs, 2, 0), f2 = filing("T2", "U1", "E2", offs, 1, 1000);
    rk_event dup = filing("T1", "U9", "E9", other, 1, 2000), r;
    (void)state;
    rk__tasks_init(&t);
    assert_int_equal(rk__tasks_add(&t, &f1, 30 * DAY), 0);
    assert_int_equal(rk__tasks_add(&t, &f2, 30 * DAY), 0);
    assert_int_equal(rk__tasks_add(&t, &dup, 30 * DAY), 0);   /* first wins */
    /* U1, E1, E2, O1, O2 interned once each */
    assert_int_equal(t.strings.count, 5);
    r = rating("T1", 5000);
    rk__tasks_enrich(&t, &r, 5000);
    assert_string_equal(r.unit_id, "U1");
    assert_int_equal(r.n_officers, 2);
    assert_string_equal(r.officers[1], "O2");
    assert_string_equal(r.filing_enterprise_id, "E1");
    assert_true(r.flags & RK_EVF_UNIT_FROM_FILING);
    assert_true(r.flags & RK_EVF_OFFICERS_FROM_FILING);
    assert_true(r.flags & RK_EVF_FILING_KNOWN);
    /* An event's own unit is kept. */
    r = rating("T1", 5000);
    r.unit_id = "U5";
    rk__tasks_enrich(&t, &r, 5000);
    assert_string_equal(r.unit_id, "U5");
    assert_false(r.flags & RK_EVF_UNIT_FROM_FILING);
    /* expires = planned_at + retention: still there at that instant ... */
    assert_non_null(rk__tasks_get(&t, "T1", 3600000 + 30 * DAY));
    /* ... gone one ms later, whether or not expiry ran */
    assert_null(rk__tasks_get(&t, "T1", 3600001 + 30 * DAY));
    r = rating("T1", 0);
    rk__tasks_enrich(&t, &r, 3600001 + 30 * DAY);
    assert_null(r.unit_id);
    rk__tasks_expire(&t, 3600001 + 30 * DAY);
    assert_int_equal(t.map.count, 1);
    assert_int_equal(t.strings.count, 3);                        /* U1, E2, O1 */
    rk__tasks_expire(&t, 3601001 + 30 * DAY);
    assert_int_equal(t.map.count, 0);
    assert_int_equal(t.strings.count, 0);
    rk__tasks_free(&t);
}

static void test_snapshot_roundtrip(void **state)
{
    static const char *const offs[] = {"O1", "O2", "O3"};
    rk_tasks t, u;
    rk_buf b = {0};
    rk_event f;
    char id[16];
    int i;
    (void)state;
    rk__tasks_init(&t);
    rk__tasks_init(&u);
    for (i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "T%d", i);
        f = filing(id, i % 2 ? "U1" : NULL, "E1", offs, (size_t)(i % 4), i * 1000);
        assert_int_equal(rk__tasks_add(&t, &f, DAY), 0);
    }
    rk__tasks_snapshot(&t, &b);
    assert_false(b.oom);
    assert_int_equal(rk__tasks_restore(&u, b.data, b.len), 0);
    assert_int_equal(u.map.count, 100);
    assert_int_equal(u.strings.count, t.strings.count);
    {
        const rk__task *k = rk__tasks_get(&u, "T7", 0);
        assert_non_null(k);
        assert_string_equal(k->unit_id, "U1");
        assert_int_equal(k->n_officers, 3);
        assert_int_equal(k->ts, 7000);
        assert_null(rk__tasks_get(&u, "T8", 0)->unit_id);
    }
    /* truncated input is refused and leaves the target alone */
    assert_int_equal(rk__tasks_restore(&u, b.data, b.len - 5), -1);
    assert_int_equal(u.map.count, 100);
    rk_buf_free(&b);
    rk__tasks_free(&t);
    rk__tasks_free(&u);
}

/* Records are cut from blocks and freed in filing order: 3000 filings span
 * many blocks, one with 5000 officers gets a block of its own, every one
 * is still found with its own fields, and expiry frees them all (valgrind
 * and ASan see any block left behind). */
static void test_many_records(void **state)
{
    static const char *offs[5000];
    static char names[5000][16];
    rk_tasks t;
    char task[16];
    int i;
    (void)state;
    for (i = 0; i < 5000; i++) {
        snprintf(names[i], sizeof(names[i]), "O%d", i);
        offs[i] = names[i];
    }
    rk__tasks_init(&t);
    for (i = 0; i < 3000; i++) {
        rk_event f;
        snprintf(task, sizeof(task), "T%d", i);
        if (i == 1500)
            f = filing(task, "U1", "E1", offs, 5000, (int64_t)i * 1000);
        else
            f = filing(task, "U1", "E1", offs + i % 7, 1 + (size_t)(i % 3), (int64_t)i * 1000);
        assert_int_equal(rk__tasks_add(&t, &f, DAY), 0);
    }
    assert_int_equal(t.map.count, 3000);
    for (i = 0; i < 3000; i += 7) {
        const rk__task *k;
        snprintf(task, sizeof(task), "T%d", i);
        k = rk__tasks_get(&t, task, 0);
        assert_non_null(k);
        assert_string_equal(k->task_id, task);
        assert_int_equal(k->ts, (int64_t)i * 1000);
        assert_int_equal(k->n_officers, i == 1500 ? 5000 : 1 + i % 3);
        assert_string_equal(k->officers[0], names[i == 1500 ? 0 : i % 7]);
    }
    assert_int_equal(rk__tasks_get(&t, "T1500", 0)->n_officers, 5000);
    assert_string_equal(rk__tasks_get(&t, "T1500", 0)->officers[4999], names[4999]);
    /* expires = planned_at (ts + 1h) + 1d: the first 1000 go */
    rk__tasks_expire(&t, 3600000 + DAY + 999 * 1000 + 1);
    assert_int_equal(t.map.count, 2000);
    assert_null(rk__tasks_get(&t, "T999", 0));
    assert_non_null(rk__tasks_get(&t, "T1000", 0));
    rk__tasks_expire(&t, 10 * DAY);
    assert_int_equal(t.map.count, 0);
    assert_int_equal(t.strings.count, 0);
    assert_null(t.head);
    /* and the store is usable again */
    {
        rk_event f = filing("T1", "U1", "E1", offs, 2, 20 * DAY);
        assert_int_equal(rk__tasks_add(&t, &f, DAY), 0);
        assert_string_equal(rk__tasks_get(&t, "T1", 20 * DAY)->officers[1], "O1");
    }
    rk__tasks_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enrich_and_expire),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_many_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
