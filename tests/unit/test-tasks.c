/* tests/unit/test-tasks.c - the filings kept for enrichment (daemon/pipeline/tasks.c):
 * enrichment of events lacking unit or officers, first filing wins,
 * expiry (and expiry-aware lookups), interned ids released, snapshot
 * round trip, narrow and wide records (32-bit time offsets or full times),
 * walking the records in filing order. */
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
    rk__tasks t;
    rk_event f1 = filing("T1", "U1", "E1", offs, 2, 0), f2 = filing("T2", "U1", "E2", offs, 1, 1000);
    rk_event dup = filing("T1", "U9", "E9", other, 1, 2000), r;
    (void)state;
    rk__tasks_init(&t);
    assert_int_equal(rk__tasks_add(&t, &f1, 30 * DAY, false), 0);
    assert_int_equal(rk__tasks_add(&t, &f2, 30 * DAY, false), 0);
    assert_int_equal(rk__tasks_add(&t, &dup, 30 * DAY, false), 0);   /* first wins */
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
    rk__tasks t, u;
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
        assert_int_equal(rk__tasks_add(&t, &f, DAY, false), 0);
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
    rk__tasks t;
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
        assert_int_equal(rk__tasks_add(&t, &f, DAY, false), 0);
    }
    assert_int_equal(t.map.count, 3000);
    for (i = 0; i < 3000; i += 7) {
        const rk__task *k;
        snprintf(task, sizeof(task), "T%d", i);
        k = rk__tasks_get(&t, task, 0);
        assert_non_null(k);
        assert_string_equal(rk__task_id(k), task);
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
        assert_int_equal(rk__tasks_add(&t, &f, DAY, false), 0);
        assert_string_equal(rk__tasks_get(&t, "T1", 20 * DAY)->officers[1], "O1");
    }
    rk__tasks_free(&t);
}

/* A record is narrow while planned_at - ts fits in 32 signed bits and
 * expires - max(ts, planned_at) in 32 unsigned bits, wide otherwise; both
 * give back exactly the times they were given, enrich and expire the same
 * way, walk in filing order and survive a snapshot round trip. */
static void test_wide_records(void **state)
{
    static const char *const offs[] = {"O1", "O2"};
    const int64_t T = 1740000000000LL;
    struct { const char *id; int64_t ts, planned, retention; int wide; } c[] = {
        {"N0", T, T, 30 * DAY, 0},
        {"N1", T, T + INT32_MAX, 30 * DAY, 0},             /* exactly at the limit */
        {"W1", T, T + (int64_t)INT32_MAX + 1, 30 * DAY, 1},  /* one ms over */
        {"N2", T, T - (int64_t)INT32_MAX - 1, 30 * DAY, 0},
        {"W2", T, T - (int64_t)INT32_MAX - 2, 30 * DAY, 1},
        {"N3", T, T + 5, (int64_t)UINT32_MAX, 0},
        {"W3", T, T + 5, (int64_t)UINT32_MAX + 1, 1},
        {"W4", T, INT64_C(253402300799999), 30 * DAY, 1},  /* 9999-12-31T23:59:59.999Z */
    };
    const size_t nc = sizeof(c) / sizeof(c[0]);
    rk__tasks t, u;
    rk_buf b1 = {0}, b2 = {0};
    const rk__task *k;
    size_t i;
    (void)state;
    rk__tasks_init(&t);
    for (i = 0; i < nc; i++) {
        rk_event f = filing(c[i].id, "U1", "E1", offs, 1 + i % 2, c[i].ts);
        f.planned_at = c[i].planned;
        f.ref.ms = 100 + i;
        f.ref.seq = (uint32_t)i;
        f.ref.stream = (uint32_t)(i % 2);
        assert_int_equal(rk__tasks_add(&t, &f, c[i].retention, false), 0);
    }
    for (i = 0, k = t.head; i < nc; i++, k = rk__tasks_next(&t, k)) {
        int64_t base = c[i].ts > c[i].planned ? c[i].ts : c[i].planned;
        rk_entry_ref r;
        assert_non_null(k);
        assert_string_equal(rk__task_id(k), c[i].id);
        assert_int_equal(k->wide, c[i].wide);
        assert_int_equal(k->n_officers, 1 + i % 2);
        assert_int_equal(k->ts, c[i].ts);
        assert_int_equal(rk__task_planned_at(k), c[i].planned);
        assert_int_equal(rk__task_expires(k), base > INT64_MAX - c[i].retention
                                               ? INT64_MAX : base + c[i].retention);
        r = rk__task_ref(k);
        assert_int_equal(r.ms, 100 + i);
        assert_int_equal(r.seq, i);
        assert_int_equal(r.stream, i % 2);
        assert_ptr_equal(rk__tasks_get(&t, c[i].id, T), k);
    }
    assert_null(k);
    /* enrichment reads the full times of a wide record */
    {
        rk_event r = rating("W1", T);
        rk__tasks_enrich(&t, &r, T);
        assert_true(r.flags & RK_EVF_FILING_KNOWN);
        assert_int_equal(r.filing_planned_at, T + (int64_t)INT32_MAX + 1);
        assert_int_equal(r.filing_ref.ms, 102);
        assert_int_equal(r.filing_ref.stream, 0);
        assert_int_equal(r.n_officers, 1);
    }
    /* expiry of a wide record at its exact instant (W2: planned before ts,
     * so expires = ts + retention), not one ms earlier */
    assert_non_null(rk__tasks_get(&t, "W2", T + 30 * DAY));
    assert_null(rk__tasks_get(&t, "W2", T + 30 * DAY + 1));
    assert_non_null(rk__tasks_get(&t, "W3", T + 5 + (int64_t)UINT32_MAX + 1));
    assert_null(rk__tasks_get(&t, "W3", T + 5 + (int64_t)UINT32_MAX + 2));

    rk__tasks_snapshot(&t, &b1);
    assert_false(b1.oom);
    rk__tasks_init(&u);
    assert_int_equal(rk__tasks_restore(&u, b1.data, b1.len), 0);
    assert_int_equal(u.map.count, nc);
    rk__tasks_snapshot(&u, &b2);
    assert_int_equal(b2.len, b1.len);
    assert_memory_equal(b2.data, b1.data, b1.len);
    assert_int_equal(rk__tasks_get(&u, "W2", T)->wide, 1);
    assert_int_equal(rk__task_planned_at(rk__tasks_get(&u, "W2", T)),
                     T - (int64_t)INT32_MAX - 2);
    /* the FIFO holds back records behind the first one (N0 expires first,
     * N1 holds the rest back) */
    rk__tasks_expire(&u, T + 30 * DAY + 1);
    assert_int_equal(u.map.count, nc - 1);
    assert_string_equal(rk__task_id(u.head), "N1");
    rk__tasks_expire(&u, INT64_C(253402300799999) + 30 * DAY);
    assert_int_equal(u.map.count, 1);           /* W4 lasts to its planned + 30 d */
    assert_ptr_equal(u.head, u.tail);
    assert_null(rk__tasks_next(&u, u.head));
    rk_buf_free(&b1);
    rk_buf_free(&b2);
    rk__tasks_free(&t);
    rk__tasks_free(&u);
}

/* A snapshot naming a task twice is refused as a whole, leaving nothing
 * behind (the second record was cut and given back). */
static void test_restore_duplicate(void **state)
{
    static const char *const offs[] = {"O1"};
    rk__tasks t, u;
    rk_buf b = {0};
    rk_event f;
    char *p;
    (void)state;
    rk__tasks_init(&t);
    f = filing("TA", "U1", "E1", offs, 1, 1000);
    assert_int_equal(rk__tasks_add(&t, &f, DAY, false), 0);
    f = filing("TB", "U1", "E1", offs, 1, 2000);
    assert_int_equal(rk__tasks_add(&t, &f, DAY, false), 0);
    rk__tasks_snapshot(&t, &b);
    assert_false(b.oom);
    p = memmem(b.data, b.len, "TB", 2);
    assert_non_null(p);
    p[1] = 'A';                                 /* TB -> TA */
    rk__tasks_init(&u);
    assert_int_equal(rk__tasks_restore(&u, b.data, b.len), -1);
    assert_int_equal(u.map.count, 0);
    assert_null(u.head);
    assert_int_equal(u.strings.count, 0);
    rk_buf_free(&b);
    rk__tasks_free(&t);
    rk__tasks_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enrich_and_expire),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_many_records),
        cmocka_unit_test(test_wide_records),
        cmocka_unit_test(test_restore_duplicate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
