/* tests/unit/test-indicators-expiry.c - the indicators module's bounded
 * records and its checkpoint formats (daemon/pipeline/indicators.c,
 * indicators_snap.c): an amendment inside the horizon still moves the
 * sums, a record past the horizon is dropped (and memory falls), an
 * amendment of a dropped record counts as new (and is counted on the
 * metric), a checkpoint in the current format and one written by the
 * previous release (format 1, a fixed blob below) restore to identical
 * figures, and a run that continues after either restore gives the same
 * figures as one that never stopped.
 *
 * IND_GEN_V1=1 prints the snapshot of the scenario as a C array (how the
 * format-1 blob below was made, by the release that wrote format 1). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pipeline/indicators.h"

#define H (3600000LL)
#define DAY (86400000LL)
#define TZ (8 * 3600)

static int64_t t(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(rk__parse_rfc3339(s, &ms), 0);
    return ms;
}

static rk__ind *mk(void)
{
    rk__ind_settings s;
    memset(&s, 0, sizeof(s));
    s.window = 30 * DAY;
    s.scan_deadline = 24 * H;
    s.bad_score = 2;
    s.exclude_kinds = 1u << RK_KIND_COMPLAINT;
    s.tz_offset_s = TZ;
    return rk__ind_new(&s);
}

static const char *const O1[] = {"O1"};
static const char *const O12[] = {"O1", "O2"};
static const char *const O23[] = {"O2", "O3", "O2"};

static rk_event filed(const char *task, const char *unit, const char *ent, int64_t planned)
{
    rk_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_INSPECTION_FILED;
    ev.task_id = task;
    ev.unit_id = unit;
    ev.enterprise_id = ent;
    ev.officers = O1;
    ev.n_officers = 1;
    ev.region = "R1";
    ev.ts = planned - H;
    ev.planned_at = planned;
    return ev;
}

static rk_event of(rk_event_type type, const char *unit, int64_t ts)
{
    rk_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.unit_id = unit;
    ev.ts = ts;
    ev.task_id = "T?";
    ev.case_id = "C?";
    return ev;
}

static void ev(rk__ind *ind, const rk_event *e)
{
    assert_int_equal(rk__ind_event(ind, e), 0);
}

/* The scenario's first part: every kind of record (tasks filed, scanned,
 * rated, joint, excluded, pending; cases; pairs; a unit's region). */
static void part1(rk__ind *ind)
{
    int64_t d = t("2025-08-20T10:00:00+08:00");
    rk_event e;
    e = filed("T1", "U1", "E1", d);
    ev(ind, &e);
    e = filed("T2", "U2", "E2", d + H);
    e.officers = O12;
    e.n_officers = 2;
    e.joint_id = "J1";
    e.region = NULL;
    ev(ind, &e);
    e = filed("T3", "U1", "E2", d + 2 * H);
    e.officers = O23;
    e.n_officers = 3;
    e.joint_id = "J1";
    ev(ind, &e);
    e = filed("T4", "U3", "E4", d + 5 * DAY);       /* planned ahead */
    e.region = "R2";
    ev(ind, &e);
    e = filed("T5", "U1", "E5", d);
    e.kind = RK_KIND_COMPLAINT;
    ev(ind, &e);
    e = of(RK_EV_INSPECTION_SCANNED, "U1", d + H);
    e.task_id = "T1";
    e.enterprise_id = "E1";
    ev(ind, &e);
    e = of(RK_EV_INSPECTION_SCANNED, "U2", d + 30 * H);  /* after its deadline */
    e.task_id = "T2";
    e.enterprise_id = "E2";
    ev(ind, &e);
    e = of(RK_EV_INSPECTION_SCANNED, "U9", d + 2 * H);   /* no filing */
    e.task_id = "T9";
    e.enterprise_id = "E9";
    e.officers = O1;
    e.n_officers = 1;
    ev(ind, &e);
    e = of(RK_EV_INSPECTION_RATED, "U1", d + 3 * H);
    e.task_id = "T1";
    e.score = 1;
    e.officers = O1;
    e.n_officers = 1;
    ev(ind, &e);
    e = of(RK_EV_CASE_DECIDED, "U1", d + 4 * H);
    e.case_id = "C1";
    e.fine = 1000;
    e.confiscation = 0.5;
    e.leniency = RK_LENIENCY_LIGHTER;
    e.region = "R1";
    ev(ind, &e);
    e = of(RK_EV_CASE_DECIDED, "U2", d + 5 * H);
    e.case_id = "C2";
    e.fine = 200;
    ev(ind, &e);
    e = of(RK_EV_CASE_OPENED, "U1", d + 5 * H);
    e.officers = O12;
    e.n_officers = 2;
    ev(ind, &e);
    e = of(RK_EV_CASE_COMPLAINT, "U2", d + 6 * H);
    ev(ind, &e);
    e = of(RK_EV_CASE_REVIEW, "U1", d + 7 * H);
    e.outcome = RK_OUTCOME_REVOKED;
    ev(ind, &e);
    rk__ind_unfiled(ind, d + 8 * H, "U1");
    rk__ind_advance(ind, d + 2 * DAY);
}

/* The second part, after a restore: amendments of records made in part 1,
 * the pending deadline passing, a month and a quarter turning. */
static void part2(rk__ind *ind)
{
    int64_t d = t("2025-08-20T10:00:00+08:00");
    rk_event e;
    e = filed("T1", "U2", "E1", d + 3 * DAY);           /* rescheduled, other unit */
    e.flags = RK_EVF_AMENDED;
    ev(ind, &e);
    e = filed("T3", "U1", "E3", d + 2 * H);             /* other enterprise, no joint */
    e.flags = RK_EVF_AMENDED;
    ev(ind, &e);
    e = of(RK_EV_CASE_DECIDED, "U1", d + 3 * DAY);
    e.case_id = "C1";
    e.fine = 300;
    e.flags = RK_EVF_AMENDED;
    ev(ind, &e);
    e = of(RK_EV_INSPECTION_SCANNED, "U3", d + 5 * DAY + H);
    e.task_id = "T4";
    e.enterprise_id = "E4";
    ev(ind, &e);
    e = of(RK_EV_INSPECTION_RATED, "U3", d + 5 * DAY + 2 * H);
    e.task_id = "T4";
    e.score = 5;
    ev(ind, &e);
    rk__ind_unfiled_retract(ind, d + 8 * H, "U1");
    rk__ind_advance(ind, t("2025-10-01T00:30:00+08:00"));
    e = filed("T6", "U1", "E1", t("2025-10-01T09:00:00+08:00"));
    ev(ind, &e);
    rk__ind_advance(ind, t("2025-10-03T00:30:00+08:00"));
}

typedef struct keyset {
    char k[64][32];
    int n;
} keyset;

static void add_key(const char *key, void *ud)
{
    keyset *s = ud;
    if (s->n < 64)
        snprintf(s->k[s->n++], sizeof(s->k[0]), "%s", key);
}

/* Every key of every scope, every period: the same figures in a and b. */
static void same_figures(rk__ind *a, rk__ind *b)
{
    int sc, p, i;
    for (sc = 0; sc < RK_IND_NSCOPES; sc++) {
        keyset ka, kb;
        ka.n = kb.n = 0;
        assert_int_equal(rk__ind_keys(a, sc, add_key, &ka), rk__ind_keys(b, sc, add_key, &kb));
        for (i = 0; i < ka.n; i++)
            for (p = 0; p < RK_IND_NPERIODS; p++) {
                rk__ind_counts x, y;
                int64_t f1 = 0, t1 = 0, f2 = 0, t2 = 0;
                char l1[16] = "", l2[16] = "";
                bool g1 = rk__ind_get(a, sc, ka.k[i], p, &x, &f1, &t1, l1);
                bool g2 = rk__ind_get(b, sc, ka.k[i], p, &y, &f2, &t2, l2);
                assert_true(g1 == g2);
                if (!g1)
                    continue;
                if (memcmp(&x, &y, sizeof(x)) != 0)
                    fail_msg("%s %s period %d differs", rk__ind_scope_names[sc], ka.k[i], p);
                assert_int_equal(f1, f2);
                assert_int_equal(t1, t2);
                assert_string_equal(l1, l2);
            }
    }
}

static int32_t counter(rk__ind *ind, int scope, const char *key, int period, int c)
{
    rk__ind_counts n;
    int64_t from, to;
    char l[16];
    rk__ind_get(ind, scope, key, period, &n, &from, &to, l);
    return c < 0 ? (int32_t)n.fines_fen : n.c[c];
}

/* Format 1, as the release before the compact checkpoint wrote it after
 * part1 (IND_GEN_V1=1 on that release). */
static const unsigned char v1_blob[] = {
#include "indicators-v1.inc"
};

static void test_restore_format1(void **state)
{
    rk__ind *live = mk(), *b = mk();
    (void)state;
    part1(live);
    assert_int_equal(rk__ind_restore(b, v1_blob, sizeof(v1_blob)), 0);
    same_figures(live, b);
    part2(live);
    part2(b);
    same_figures(live, b);
    rk__ind_free(live);
    rk__ind_free(b);
}

static void test_restore_current(void **state)
{
    rk__ind *live = mk(), *b = mk(), *c = mk();
    rk_buf buf, buf2;
    (void)state;
    memset(&buf, 0, sizeof(buf));
    memset(&buf2, 0, sizeof(buf2));
    part1(live);
    assert_int_equal(rk__ind_snapshot(live, &buf), 0);
    assert_int_equal(rk__ind_restore(b, buf.data, buf.len), 0);
    same_figures(live, b);
    /* a snapshot of the restored copy restores to the same figures */
    assert_int_equal(rk__ind_snapshot(b, &buf2), 0);
    assert_int_equal(rk__ind_restore(c, buf2.data, buf2.len), 0);
    same_figures(live, c);
    rk__ind_free(c);
    c = mk();
    part2(live);
    part2(b);
    same_figures(live, b);
    /* and once more after part 2 (records gone, others amended) */
    buf.len = 0;
    assert_int_equal(rk__ind_snapshot(live, &buf), 0);
    assert_int_equal(rk__ind_restore(c, buf.data, buf.len), 0);
    same_figures(live, c);
    /* every cut of the blob is refused or restores, never crashes */
    {
        size_t n;
        for (n = 0; n < buf.len; n += 7) {
            rk__ind *x = mk();
            (void)rk__ind_restore(x, buf.data, n);
            rk__ind_free(x);
        }
    }
    rk_buf_free(&buf);
    rk_buf_free(&buf2);
    rk__ind_free(live);
    rk__ind_free(b);
    rk__ind_free(c);
}

/* A checkpoint whose times are far outside any event's (year 0 to 9999)
 * is refused, not computed with: format 2 (now 2^60 ms, as a varint) and
 * format 1 (now INT64_MAX - 1). */
static void test_restore_refuses_far_times(void **state)
{
    unsigned char v2[24] = {2, 0, 0, 0}, v1[52] = {1, 0, 0, 0};
    uint64_t x = (UINT64_C(1) << 61) + 1;   /* zigzag(2^60) + 1 */
    size_t n = 4;
    rk__ind *ind = mk();
    (void)state;
    while (x >= 0x80) {
        v2[n++] = (unsigned char)(x | 0x80);
        x >>= 7;
    }
    v2[n++] = (unsigned char)x;
    memset(v2 + n, 0, 6);                   /* no keys, ids, tasks, ... */
    n += 6;
    assert_int_equal(rk__ind_restore(ind, v2, n), -1);
    rk__ind_free(ind);
    ind = mk();                             /* the same with now 0 restores */
    v2[4] = 1;
    memset(v2 + 5, 0, 6);
    assert_int_equal(rk__ind_restore(ind, v2, 11), 0);
    rk__ind_free(ind);
    ind = mk();
    memset(v1 + 4, 0xff, 8);                /* now, then five empty counts */
    v1[11] = 0x7f;
    v1[4] = 0xfe;
    assert_int_equal(rk__ind_restore(ind, v1, sizeof(v1)), -1);
    rk__ind_free(ind);
    ind = mk();
    memset(v1 + 4, 0, 8);
    assert_int_equal(rk__ind_restore(ind, v1, sizeof(v1)), 0);
    rk__ind_free(ind);
}

/* The checkpoint is small: no id is written twice. */
static void test_snapshot_compact(void **state)
{
    rk__ind *ind = mk();
    rk_buf buf;
    int64_t d = t("2025-09-10T10:00:00+08:00");
    char task[32], unit[32], ent[32];
    const char *offs[2];
    char o1[32], o2[32];
    int i;
    (void)state;
    memset(&buf, 0, sizeof(buf));
    for (i = 0; i < 2000; i++) {
        rk_event e;
        snprintf(task, sizeof(task), "TASK-2025-%06d", i);
        snprintf(unit, sizeof(unit), "UNIT-%03d", i % 50);
        snprintf(ent, sizeof(ent), "ENTERPRISE-%05d", i % 700);
        snprintf(o1, sizeof(o1), "OFFICER-%04d", i % 400);
        snprintf(o2, sizeof(o2), "OFFICER-%04d", (i + 7) % 400);
        offs[0] = o1;
        offs[1] = o2;
        e = filed(task, unit, ent, d + (i % 5) * DAY);
        e.officers = offs;
        e.n_officers = 2;
        ev(ind, &e);
        e = of(RK_EV_INSPECTION_SCANNED, unit, d + (i % 5) * DAY + H);
        e.task_id = task;
        e.enterprise_id = ent;
        ev(ind, &e);
    }
    rk__ind_advance(ind, d + 6 * DAY);
    assert_int_equal(rk__ind_snapshot(ind, &buf), 0);
    /* format 1 took about 1,000 bytes per filing here */
    print_message("snapshot: %zu bytes for 2000 filings (%.0f per filing)\n", buf.len,
                  (double)buf.len / 2000);
    assert_true(buf.len < 2000 * 120);
    rk_buf_free(&buf);
    rk__ind_free(ind);
}

static void test_amendment_inside_horizon(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-07-02T10:00:00+08:00");
    rk_event f = filed("T1", "U1", "E1", d), c = of(RK_EV_CASE_DECIDED, "U1", d);
    (void)state;
    c.case_id = "C1";
    c.fine = 500;
    ev(ind, &f);
    ev(ind, &c);
    /* late September: July is in the current quarter, out of the window */
    rk__ind_advance(ind, t("2025-09-28T10:00:00+08:00"));
    assert_int_equal(counter(ind, RK_IND_UNIT, "U1", RK_IND_QUARTER, RK_IC_FILINGS), 1);
    /* early October: July is in the previous quarter - still kept */
    rk__ind_advance(ind, t("2025-10-05T10:00:00+08:00"));
    assert_int_equal(counter(ind, RK_IND_UNIT, "U1", RK_IND_PREV_QUARTER, RK_IC_FILINGS), 1);
    f.unit_id = "U2";
    f.flags = RK_EVF_AMENDED;
    ev(ind, &f);
    c.fine = 700;
    c.ts = d + H;
    c.flags = RK_EVF_AMENDED;
    ev(ind, &c);
    assert_int_equal(counter(ind, RK_IND_UNIT, "U1", RK_IND_PREV_QUARTER, RK_IC_FILINGS), 0);
    assert_int_equal(counter(ind, RK_IND_UNIT, "U2", RK_IND_PREV_QUARTER, RK_IC_FILINGS), 1);
    assert_int_equal(counter(ind, RK_IND_ALL, "all", RK_IND_PREV_QUARTER, RK_IC_FILINGS), 1);
    assert_int_equal(counter(ind, RK_IND_ALL, "all", RK_IND_PREV_QUARTER, -1), 70000);
    assert_int_equal(counter(ind, RK_IND_ALL, "all", RK_IND_PREV_QUARTER,
                             RK_IC_CASES_DECIDED), 1);
    assert_int_equal(rk__ind_expired_amendments(ind), 0);
    rk__ind_free(ind);
}

static void test_expiry_drops_records(void **state)
{
    rk__ind *ind = mk();
    int64_t d = t("2025-07-02T10:00:00+08:00");
    size_t before, after, ents, tasks;
    char task[32], ent[32];
    int i;
    rk_event f, c;
    (void)state;
    for (i = 0; i < 500; i++) {
        snprintf(task, sizeof(task), "T%d", i);
        snprintf(ent, sizeof(ent), "E%d", i);
        f = filed(task, "U1", ent, d + (i % 20) * H);
        f.joint_id = i % 2 ? "J1" : NULL;
        ev(ind, &f);
    }
    c = of(RK_EV_CASE_DECIDED, "U1", d);
    c.case_id = "C1";
    c.fine = 500;
    ev(ind, &c);
    rk__ind_advance(ind, t("2025-12-31T10:00:00+08:00"));
    before = rk__ind_memory(ind, &ents, &tasks);
    assert_int_equal(tasks, 500);
    /* 2026-01-01: July 2025 is before the previous quarter (Q4) and the
     * window: nothing it counts in is reported any more */
    rk__ind_advance(ind, t("2026-01-01T00:00:01+08:00"));
    after = rk__ind_memory(ind, &ents, &tasks);
    assert_int_equal(tasks, 0);
    /* each filing's record and ids given back (its pairs go back to the
     * slab, for the next ones) */
    print_message("memory %zu -> %zu bytes after the expiry of 500 filings\n", before, after);
    assert_true(before - after > 500 * 100);
    /* the ids of the dropped records left free slots: a checkpoint now
     * restores, and so does the restored copy's */
    {
        rk__ind *b = mk(), *b2 = mk();
        rk_buf buf, buf2;
        memset(&buf, 0, sizeof(buf));
        memset(&buf2, 0, sizeof(buf2));
        assert_int_equal(rk__ind_snapshot(ind, &buf), 0);
        assert_int_equal(rk__ind_restore(b, buf.data, buf.len), 0);
        assert_int_equal(rk__ind_snapshot(b, &buf2), 0);
        assert_int_equal(rk__ind_restore(b2, buf2.data, buf2.len), 0);
        same_figures(ind, b2);
        rk_buf_free(&buf);
        rk_buf_free(&buf2);
        rk__ind_free(b);
        rk__ind_free(b2);
    }
    /* the keys themselves stay (their later periods are empty) */
    assert_int_equal(counter(ind, RK_IND_UNIT, "U1", RK_IND_PREV_QUARTER, RK_IC_FILINGS), 0);
    /* an amendment of an expired filing counts as a new one where it now
     * falls, and is counted */
    f = filed("T1", "U1", "E1", t("2026-01-02T10:00:00+08:00"));
    f.flags = RK_EVF_AMENDED;
    ev(ind, &f);
    c.flags = RK_EVF_AMENDED;
    c.ts = t("2026-01-02T10:00:00+08:00");
    ev(ind, &c);
    assert_int_equal(counter(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, RK_IC_FILINGS), 1);
    assert_int_equal(counter(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, RK_IC_CASES_DECIDED), 1);
    assert_int_equal(rk__ind_expired_amendments(ind), 2);
    /* the next 500 filings fit in what the first ones gave back (plus
     * January's day buckets and the amended ones) */
    for (i = 0; i < 500; i++) {
        snprintf(task, sizeof(task), "N%d", i);
        snprintf(ent, sizeof(ent), "F%d", i);
        f = filed(task, "U1", ent, t("2026-01-03T10:00:00+08:00") + (i % 20) * H);
        f.joint_id = i % 2 ? "J2" : NULL;
        ev(ind, &f);
    }
    rk__ind_advance(ind, t("2026-01-05T00:00:00+08:00"));
    after = rk__ind_memory(ind, &ents, &tasks);
    assert_int_equal(tasks, 501);
    print_message("memory %zu after 500 more\n", after);
    assert_true(after < before + before / 10);
    rk__ind_free(ind);
}

/* A filing planned long before but still waiting for its deadline, or
 * a record touched recently, is kept. */
static void test_expiry_keeps_live(void **state)
{
    rk__ind *ind = mk();
    rk__ind_settings s;
    size_t tasks;
    rk_event f;
    (void)state;
    memset(&s, 0, sizeof(s));
    s.window = 30 * DAY;
    s.scan_deadline = 200 * DAY;
    s.bad_score = 2;
    s.tz_offset_s = TZ;
    rk__ind_configure(ind, &s);
    f = filed("T1", "U1", "E1", t("2025-07-02T10:00:00+08:00"));
    ev(ind, &f);
    rk__ind_advance(ind, t("2026-01-05T10:00:00+08:00"));
    rk__ind_memory(ind, NULL, &tasks);
    assert_int_equal(tasks, 1);     /* deadline 2026-01-18 not passed */
    rk__ind_advance(ind, t("2026-01-20T10:00:00+08:00"));
    assert_int_equal(counter(ind, RK_IND_UNIT, "U1", RK_IND_MONTH, RK_IC_DEADLINE_PASSED), 0);
    rk__ind_memory(ind, NULL, &tasks);
    assert_int_equal(tasks, 0);     /* passed, and July is gone */
    rk__ind_free(ind);
}

static void gen_v1(void)
{
    rk__ind *ind = mk();
    rk_buf buf;
    size_t i;
    memset(&buf, 0, sizeof(buf));
    part1(ind);
    if (rk__ind_snapshot(ind, &buf) != 0)
        abort();
    for (i = 0; i < buf.len; i++)
        printf("0x%02x,%s", buf.data[i], i % 12 == 11 ? "\n" : " ");
    printf("\n");
    rk_buf_free(&buf);
    rk__ind_free(ind);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_format1),
        cmocka_unit_test(test_restore_current),
        cmocka_unit_test(test_restore_refuses_far_times),
        cmocka_unit_test(test_snapshot_compact),
        cmocka_unit_test(test_amendment_inside_horizon),
        cmocka_unit_test(test_expiry_drops_records),
        cmocka_unit_test(test_expiry_keeps_live),
    };
    if (getenv("IND_GEN_V1") != NULL) {
        gen_v1();
        return 0;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
