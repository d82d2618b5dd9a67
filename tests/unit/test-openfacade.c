/* tests/unit/test-openfacade.c - the lifecycle sets of the built-in
 * detectors bound to their host (detectors/lifecycle.c rk__open_bind):
 * their open alerts live in the host's open alerts (the daemon's store),
 * filed under the detector's key, and leave it with their notice; keys of
 * an older snapshot (the detector's own lifecycle section, written by a
 * set that kept its alerts itself) still resolve after a restore.
 *
 *   filed       complaint_cluster's alert is filed under its key with the
 *               key's resolve time; the set keeps nothing itself; resolved,
 *               it leaves the store with one notice
 *   retract     fine_growth's alert retracted by an amendment leaves the
 *               store (one notice); another resolves after a snapshot
 *               round trip (the store is the host's: it stays)
 *   unit        bad_rating's officer_repeated alert is filed under the
 *               officer with its unit, which its resolved notice's subject
 *               carries again (the set keeps no unit itself)
 *   repeat      inspection_frequency's repeat alert is filed under the
 *               enterprise with its subject's unit (if any); retracted, its notice has the
 *               alert's subject and it leaves the store
 *   benchmark   discretion's out_of_benchmark alert is filed under the
 *               case with "unit<US>item" as its extra; the retraction's
 *               reason names both (the item as the extra had it) and its
 *               notice has the alert's subject
 *   let go      after 30 days the detector lets its out_of_benchmark alert
 *               go: no longer under its case (an amendment retracts
 *               nothing) but still open until alerts.open_ttl closes it
 *   scan        unfiled_inspection's scan_without_filing alert is filed
 *               under "s:<task>" (the set's keys name four rules) with
 *               "enterprise<US>unit"; a late filing retracts it with the
 *               alert's subject and it leaves the store
 *   old         a snapshot written while the set kept its alerts (a host
 *               without open ops, as before) restores into a bound set:
 *               the alert resolves once, and the store is empty after
 *   disparity   discretion's disparity alerts of two units of one item are
 *               filed under "unit<US>item" (the set keeps no key: no
 *               snapshot names one); the other units' median moving
 *               resolves one of them once, an hour later, the window
 *               leaving the other; snapshot round trips after each step
 *               give the same alerts and notices, byte for byte
 *   disp ttl    a disparity alert closed by alerts.open_ttl before its
 *               resolve time gets no notice; the detector forgets it (its
 *               snapshot is empty once the window has left), and the key
 *               fires again and resolves once
 *   disp retract  an amendment retracts the disparity alert once; it leaves
 *               the store and the detector's open units at once (its
 *               snapshot loses their bytes)
 *   disp old    a version 2 snapshot (no open units) whose set kept the
 *               disparity key itself restores into a bound set: the item's
 *               next decision still finds the alert (its resolve time
 *               moves) and it resolves once; the store is empty after */
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
#include "fakehost.h"

#define T0 INT64_C(1740787200000)   /* 2025-03-01T00:00:00Z */

static uint32_t seqno;

static rk_event base(rk_event_type t, int64_t ts, unsigned stream)
{
    rk_event e;
    memset(&e, 0, sizeof(e));
    e.type = t;
    e.ts = ts;
    e.ref = rk_fh_ref(stream, (uint64_t)ts, seqno++);
    return e;
}

static rk_fakehost *mk(const rk_detector_ops *ops, const char *cfg)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(ops, cfg, err, sizeof(err));
    if (fh == NULL)
        fail_msg("create failed: %s", err);
    return fh;
}

/* Live records in the fake host's store. */
static uint32_t live(const rk_fakehost *fh)
{
    const rk__ostore *st = fh->ostore;
    return st->n - st->dead;
}

#define CC_CFG "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"7d\", \"min_count\": 2}]}"
#define CC_KEY "0:604800000:U1"     /* group_by unit, 7 days, U1 */

static void complain(rk_fakehost *fh, int64_t ts)
{
    rk_event e = base(RK_EV_CASE_COMPLAINT, ts, RK_STREAM_CASE);
    char id[16];
    snprintf(id, sizeof(id), "K%u", (unsigned)seqno);
    e.complaint_id = id;
    e.unit_id = "U1";
    e.enterprise_id = "E1";
    e.region = "R1";
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void test_filed(void **st)
{
    rk_fakehost *fh = mk(&rk__det_complaint_cluster, CC_CFG);
    rk__open_seen seen[2];
    (void)st;
    complain(fh, T0);
    complain(fh, T0 + RK_HOUR);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    assert_int_equal(live(fh), 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "cluster", CC_KEY, seen, 2), 1);
    assert_true(seen[0].ts == T0 + RK_HOUR);
    /* the first complaint leaves the 7 days at T0 + 7d; kept 1 hour */
    assert_true(seen[0].resolve_at == T0 + 7 * RK_DAY + RK_HOUR);
    rk_fh_advance(fh, T0 + 40 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, "cluster", "resolved"), 1);
    assert_int_equal(live(fh), 0);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "cluster", CC_KEY, seen, 2), 0);
    rk_fh_free(fh);
}

static void decided(rk_fakehost *fh, int64_t ts, const char *case_id, double fine,
                    unsigned flags)
{
    rk_event e = base(RK_EV_CASE_DECIDED, ts, RK_STREAM_CASE);
    e.case_id = case_id;
    e.unit_id = "U1";
    e.fine = fine;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

#define FG_CFG "{\"baseline_periods\": 2, \"min_history\": 2, \"min_amount\": 1000}"

static void growth(rk_fakehost *fh)
{
    decided(fh, T0 - 60 * RK_DAY + RK_HOUR, "C1", 20000, 0);
    decided(fh, T0 - 30 * RK_DAY + RK_HOUR, "C2", 60000, 0);
    decided(fh, T0 + RK_HOUR, "C3", 125000, 0);
    assert_int_equal(rk_fh_count(fh, "growth"), 1);
}

static void test_retract(void **st)
{
    rk_fakehost *fh = mk(&rk__det_fine_growth, FG_CFG);
    rk__open_seen seen[2];
    (void)st;
    growth(fh);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "growth", "U1", seen, 2), 1);
    decided(fh, T0 + 2 * RK_HOUR, "C3", 1000, RK_EVF_AMENDED);
    assert_int_equal(rk_fh_notice_count(fh, "growth", "retracted"), 1);
    assert_int_equal(live(fh), 0);
    rk_fh_free(fh);

    fh = mk(&rk__det_fine_growth, FG_CFG);
    growth(fh);
    assert_int_equal(rk_fh_roundtrip(fh, FG_CFG), 0);
    assert_int_equal(live(fh), 1);
    rk_fh_advance(fh, T0 + 40 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, "growth", "resolved"), 1);
    assert_int_equal(live(fh), 0);
    rk_fh_free(fh);
}

static void rate(rk_fakehost *fh, int64_t ts, int score, const char *unit,
                 const char *officer)
{
    const char *offs[1] = {officer};
    char task[16];
    rk_event e = base(RK_EV_INSPECTION_RATED, ts, RK_STREAM_SCAN);
    snprintf(task, sizeof(task), "T%u", (unsigned)seqno);
    e.task_id = task;
    e.unit_id = unit;
    e.enterprise_id = "E1";
    e.officers = offs;
    e.n_officers = officer != NULL;
    e.score = score;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void test_unit(void **st)
{
    rk_fakehost *fh = mk(&rk__det_bad_rating,
                         "{\"officer_min_bad\": 2, \"officer_window\": \"7d\"}");
    rk__open_seen seen[2];
    json_t *no;
    (void)st;
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + RK_DAY, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "officer_repeated", "O1", seen, 2),
                     1);
    assert_non_null(seen[0].unit);
    assert_string_equal(seen[0].unit, "U1");
    assert_int_equal(rk_fh_roundtrip(fh, "{\"officer_min_bad\": 2, "
                                         "\"officer_window\": \"7d\"}"), 0);
    rk_fh_advance(fh, T0 + 10 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, "officer_repeated", "resolved"), 1);
    no = rk_fh_notice(fh, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(no, "subject"),
                                                          "unit_id")), "U1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(no, "subject"),
                                                          "officer_id")), "O1");
    /* what stays is the per-event bad_rating alerts' (open until open_ttl) */
    assert_int_equal(live(fh), (uint32_t)rk_fh_count(fh, "bad_rating"));
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "officer_repeated", "O1", seen, 2),
                     0);
    rk_fh_free(fh);
}

static void ifiled(rk_fakehost *fh, int64_t ts, const char *task, const char *unit,
                   int64_t planned, unsigned flags)
{
    rk_event e = base(RK_EV_INSPECTION_FILED, ts, RK_STREAM_SCAN);
    e.task_id = task;
    e.unit_id = unit;
    e.enterprise_id = "E1";
    e.planned_at = planned;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void test_repeat(void **st)
{
    rk_fakehost *fh = mk(&rk__det_inspection_frequency, "{}");
    rk__open_seen seen[2];
    (void)st;
    ifiled(fh, T0, "T1", "U1", T0, 0);
    ifiled(fh, T0 + RK_HOUR, "T2", "U1", T0 + RK_HOUR, 0);
    assert_int_equal(rk_fh_count(fh, "repeat"), 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "repeat", "E1", seen, 2), 1);
    {                               /* the unit of its subject, if any */
        const char *u = json_string_value(json_object_get(
            json_object_get(rk_fh_alert(fh, 0), "subject"), "unit_id"));
        if (u == NULL)
            assert_null(seen[0].unit);
        else
            assert_string_equal(seen[0].unit, u);
    }
    ifiled(fh, T0 + 2 * RK_HOUR, "T2", "U1", T0 + 8 * RK_DAY, RK_EVF_AMENDED);
    assert_int_equal(rk_fh_notice_count(fh, "repeat", "retracted"), 1);
    assert_true(json_equal(json_object_get(rk_fh_notice(fh, 0), "subject"),
                           json_object_get(rk_fh_alert(fh, 0), "subject")));
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "repeat", "E1", seen, 2), 0);
    assert_int_equal(live(fh), 0);
    rk_fh_free(fh);
}

static void dc_decided(rk_fakehost *fh, int64_t ts, const char *case_id, double fine,
                       unsigned flags)
{
    rk_event e = base(RK_EV_CASE_DECIDED, ts, RK_STREAM_CASE);
    e.case_id = case_id;
    e.unit_id = "U1";
    e.item_code = "I1";
    e.fine = fine;
    e.leniency = RK_LENIENCY_UNSET;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

static void test_benchmark(void **st)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    rk__open_seen seen[2];
    (void)st;
    rk_fh_language(fh, "en");
    assert_int_equal(rk_fh_list(fh, "benchmarks",
                                "item_code,level,min_fine,max_fine\nI1,,1000,5000\n"), 0);
    dc_decided(fh, T0, "C1", 6000, 0);
    assert_int_equal(rk_fh_count(fh, "out_of_benchmark"), 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "out_of_benchmark", "C1", seen, 2),
                     1);
    assert_null(seen[0].unit);      /* the case is all the host keeps */
    /* the amendment also corrects the item code: the notice is still
     * about the alert raised (its id, its subject), its reason names
     * the corrected decision */
    {
        rk_event e = base(RK_EV_CASE_DECIDED, T0 + RK_HOUR, RK_STREAM_CASE);
        e.case_id = "C1";
        e.unit_id = "U1";
        e.item_code = "I2";
        e.fine = 4000;
        e.leniency = RK_LENIENCY_UNSET;
        e.flags = RK_EVF_AMENDED;
        assert_int_equal(rk_fh_event(fh, &e), 0);
    }
    assert_int_equal(rk_fh_notice_count(fh, "out_of_benchmark", "retracted"), 1);
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "reason")),
                        "The amended decision of unit U1 in case C1 (item I2) puts the fine "
                        "within the discretion benchmark.");
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "id")),
                        json_string_value(json_object_get(rk_fh_alert(fh, 0), "id")));
    assert_true(json_equal(json_object_get(rk_fh_notice(fh, 0), "subject"),
                           json_object_get(rk_fh_alert(fh, 0), "subject")));
    assert_int_equal(live(fh), 0);
    rk_fh_free(fh);
}

static void test_let_go(void **st)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    (void)st;
    fh->open_ttl = 60 * RK_DAY;
    assert_int_equal(rk_fh_list(fh, "benchmarks",
                                "item_code,level,min_fine,max_fine\nI1,,1000,5000\n"), 0);
    dc_decided(fh, T0, "C1", 6000, 0);
    rk_fh_advance(fh, T0 + 30 * RK_DAY + 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "out_of_benchmark", "C1", NULL, 0),
                     0);
    assert_int_equal(live(fh), 1);
    dc_decided(fh, T0 + 30 * RK_DAY + 2, "C1", 4000, RK_EVF_AMENDED);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    assert_int_equal(live(fh), 1);
    rk_fh_advance(fh, T0 + 60 * RK_DAY + 1);
    assert_int_equal(live(fh), 0);
    assert_int_equal(fh->closed, 1);
    rk_fh_free(fh);
}

static void test_scan(void **st)
{
    rk_fakehost *fh = mk(&rk__det_unfiled_inspection, "{}");
    rk_event e = base(RK_EV_INSPECTION_SCANNED, T0, RK_STREAM_SCAN);
    rk__open_seen seen[2];
    (void)st;
    e.task_id = "T1";
    e.enterprise_id = "E1";
    e.unit_id = "U1";
    assert_int_equal(rk_fh_event(fh, &e), 0);
    rk_fh_advance(fh, T0 + 10 * RK_MINUTE + 1);
    assert_int_equal(rk_fh_count(fh, "scan_without_filing"), 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "scan_without_filing", "s:T1",
                                      seen, 2), 1);
    assert_non_null(seen[0].unit);
    assert_string_equal(seen[0].unit, "\x1fU1");   /* the unit alone beside the key */
    e = base(RK_EV_INSPECTION_FILED, T0 + 5 * RK_MINUTE, RK_STREAM_SCAN);
    e.task_id = "T1";
    e.unit_id = "U1";
    e.enterprise_id = "E1";
    e.planned_at = T0;
    assert_int_equal(rk_fh_event(fh, &e), 0);
    assert_int_equal(rk_fh_notice_count(fh, "scan_without_filing", "retracted"), 1);
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 0), "id")),
                        json_string_value(json_object_get(rk_fh_alert(fh, 0), "id")));
    assert_true(json_equal(json_object_get(rk_fh_notice(fh, 0), "subject"),
                           json_object_get(rk_fh_alert(fh, 0), "subject")));
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "scan_without_filing", "s:T1",
                                      seen, 2), 0);
    assert_int_equal(live(fh), 0);
    rk_fh_free(fh);
}

static void test_old(void **st)
{
    rk_fakehost *fh = mk(&rk__det_complaint_cluster, CC_CFG);
    const struct rk__open_ops *ops = fh->open;
    rk__open_seen seen[2];
    (void)st;
    fh->open = NULL;                /* the set keeps its alerts, as before */
    complain(fh, T0);
    complain(fh, T0 + RK_HOUR);
    assert_int_equal(live(fh), 1);  /* unfiled: found by id */
    fh->open = ops;
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "cluster", CC_KEY, seen, 2), 0);
    assert_int_equal(rk_fh_roundtrip(fh, CC_CFG), 0);
    rk_fh_advance(fh, T0 + 40 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, "cluster", "resolved"), 1);
    assert_int_equal(live(fh), 0);
    rk_fh_free(fh);
}

/* discretion: a decision of case cid by unit for item SP-01. */
static void dp(rk_fakehost *fh, int64_t ts, const char *cid, const char *unit, double fine,
               unsigned flags)
{
    rk_event e = base(RK_EV_CASE_DECIDED, ts, RK_STREAM_CASE);
    e.case_id = cid;
    e.unit_id = unit;
    e.item_code = "SP-01";
    e.fine = fine;
    e.leniency = RK_LENIENCY_UNSET;
    e.flags = flags;
    assert_int_equal(rk_fh_event(fh, &e), 0);
}

/* n decisions of unit at fine from ts on, one a millisecond. */
static void dp_n(rk_fakehost *fh, int64_t ts, const char *unit, int n, double fine)
{
    char cid[32];
    int i;
    for (i = 0; i < n; i++) {
        snprintf(cid, sizeof(cid), "%s-%lld", unit, (long long)(ts + i));
        dp(fh, ts + i, cid, unit, fine, 0);
    }
}

/* The detector's snapshot in *b (free it with rk_buf_free). */
static void dp_snapshot(rk_fakehost *fh, rk_buf *b)
{
    memset(b, 0, sizeof(*b));
    assert_int_equal(fh->ops->snapshot(fh->self, b), 0);
    assert_false(b->oom);
}

/* Whether the detector's snapshot holds the bytes of s. */
static int dp_snapshot_has(rk_fakehost *fh, const char *s)
{
    rk_buf b;
    int has;
    dp_snapshot(fh, &b);
    has = memmem(b.data, b.len, s, strlen(s)) != NULL;
    rk_buf_free(&b);
    return has;
}

/* The detector's snapshot's size. */
static size_t dp_snapshot_len(rk_fakehost *fh)
{
    rk_buf b;
    size_t n;
    dp_snapshot(fh, &b);
    n = b.len;
    rk_buf_free(&b);
    return n;
}

/* Others (U2, U3) fine 100; U1 200 (2 times: fires high), then U5 40
 * (fires low); U4's ten decisions of 150 bring the others' median of U1
 * to 125 (resolved an hour later), not U5's (150); the window leaving
 * resolves U5's. roundtrip: snapshot and restore after every step. */
static json_t *dp_run(int roundtrip)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    json_t *out;
    seqno = 0;                      /* the same evidence ids each run */
    fh->open_ttl = 400 * RK_DAY;    /* past the 90 days of the window */
    rk_fh_language(fh, "en");
    dp_n(fh, T0, "U2", 3, 100);
    dp_n(fh, T0 + 10, "U3", 2, 100);
    dp_n(fh, T0 + 20, "U1", 5, 200);
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    assert_int_equal(live(fh), 1);
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "disparity", "U1SP-01",
                                      NULL, 0), 1);
    if (roundtrip)
        assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    dp_n(fh, T0 + 30, "U5", 5, 40);
    assert_int_equal(rk_fh_count(fh, "disparity"), 2);
    assert_int_equal(live(fh), 2);
    /* the set keeps no key: no snapshot names one */
    assert_false(dp_snapshot_has(fh, "U1SP-01"));
    assert_false(dp_snapshot_has(fh, "U5SP-01"));
    if (roundtrip)
        assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    dp_n(fh, T0 + RK_DAY, "U4", 10, 150);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    if (roundtrip)
        assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    rk_fh_advance(fh, T0 + RK_DAY + 9 + RK_HOUR + 1);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "resolved"), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rk_fh_notice(fh, 0), "subject"), "unit_id")), "U1");
    assert_int_equal(live(fh), 1);
    if (roundtrip)
        assert_int_equal(rk_fh_roundtrip(fh, "{}"), 0);
    rk_fh_advance(fh, T0 + 200 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "resolved"), 2);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 2);
    assert_int_equal(live(fh), 0);
    assert_int_equal(fh->closed, 0);
    assert_int_equal(dp_snapshot_len(fh), 20);    /* nothing left */
    out = json_pack("{s:O, s:O}", "alerts", fh->alerts, "notices", fh->notices);
    rk_fh_free(fh);
    return out;
}

static void test_disparity(void **st)
{
    json_t *a = dp_run(0), *b = dp_run(1);
    char *ja, *jb;
    (void)st;
    ja = json_dumps(a, JSON_SORT_KEYS);
    jb = json_dumps(b, JSON_SORT_KEYS);
    assert_non_null(ja);
    assert_non_null(jb);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    json_decref(a);
    json_decref(b);
}

static void test_disparity_ttl(void **st)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    (void)st;
    dp_n(fh, T0, "U2", 5, 100);
    dp_n(fh, T0 + 10, "U1", 5, 200);
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    rk_fh_advance(fh, T0 + 31 * RK_DAY);    /* closed at 30 days, before the window left */
    assert_int_equal(fh->closed, 1);
    assert_int_equal(live(fh), 0);
    rk_fh_advance(fh, T0 + 200 * RK_DAY);   /* past its resolve time */
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    assert_int_equal(dp_snapshot_len(fh), 20);    /* forgotten */
    dp_n(fh, T0 + 201 * RK_DAY, "U2", 5, 100);
    dp_n(fh, T0 + 201 * RK_DAY + 10, "U1", 5, 200);
    assert_int_equal(rk_fh_count(fh, "disparity"), 2);
    assert_int_equal(live(fh), 1);
    dp_n(fh, T0 + 202 * RK_DAY, "U4", 5, 150);
    rk_fh_advance(fh, T0 + 203 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "resolved"), 1);
    assert_int_equal(json_integer_value(json_object_get(rk_fh_notice(fh, 0), "change_ts")),
                     T0 + 202 * RK_DAY + 4 + RK_HOUR);
    assert_int_equal(live(fh), 0);
    rk_fh_free(fh);
}

static void test_disparity_retract(void **st)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    size_t fired;
    (void)st;
    dp_n(fh, T0, "U2", 5, 100);
    dp_n(fh, T0 + 10, "U1", 5, 200);
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    fired = dp_snapshot_len(fh);
    dp(fh, T0 + RK_HOUR, "U1-1740787200014", "U1", 100, RK_EVF_AMENDED);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "retracted"), 1);
    assert_int_equal(live(fh), 0);
    /* the same decisions (one amended in place): the detector kept
     * nothing of the alert, open or not */
    assert_int_equal(dp_snapshot_len(fh), fired);
    rk_fh_advance(fh, T0 + 200 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    assert_int_equal(dp_snapshot_len(fh), 20);
    rk_fh_free(fh);
}

static void test_disparity_old(void **st)
{
    rk_fakehost *fh = mk(&rk__det_discretion, "{}");
    const struct rk__open_ops *ops = fh->open;
    rk_buf b;
    char err[256];
    void *fresh;
    json_t *cfg = json_object();
    (void)st;
    fh->open_ttl = 400 * RK_DAY;
    fh->open = NULL;                /* the set keeps its alerts, as before */
    dp_n(fh, T0, "U2", 5, 100);
    dp_n(fh, T0 + 10, "U1", 5, 200);
    assert_int_equal(rk_fh_count(fh, "disparity"), 1);
    assert_int_equal(live(fh), 1);  /* unfiled: found by id */
    fh->open = ops;
    dp_snapshot(fh, &b);
    assert_true(memmem(b.data, b.len, "U1SP-01", 8) != NULL);
    assert_int_equal(b.data[0], 2); /* the key in the set's own map */
    fresh = fh->ops->create(&fh->api, (rk_host *)(void *)fh, cfg, err, sizeof(err));
    json_decref(cfg);
    assert_non_null(fresh);
    assert_int_equal(fh->ops->restore(fresh, b.data, b.len, err, sizeof(err)), 0);
    rk_buf_free(&b);
    fh->ops->destroy(fh->self);
    fh->self = fresh;
    assert_int_equal(fh->open->alerts((rk_host *)(void *)fh, "disparity", "U1SP-01",
                                      NULL, 0), 0);
    dp_n(fh, T0 + RK_DAY, "U4", 5, 150);    /* the others' median: 125 */
    rk_fh_advance(fh, T0 + RK_DAY + 4 + RK_HOUR + 1);
    assert_int_equal(rk_fh_notice_count(fh, "disparity", "resolved"), 1);
    assert_int_equal(json_integer_value(json_object_get(rk_fh_notice(fh, 0), "change_ts")),
                     T0 + RK_DAY + 4 + RK_HOUR);
    assert_int_equal(live(fh), 0);
    rk_fh_advance(fh, T0 + 200 * RK_DAY);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    assert_int_equal(dp_snapshot_len(fh), 20);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filed),
        cmocka_unit_test(test_retract),
        cmocka_unit_test(test_unit),
        cmocka_unit_test(test_repeat),
        cmocka_unit_test(test_benchmark),
        cmocka_unit_test(test_let_go),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_old),
        cmocka_unit_test(test_disparity),
        cmocka_unit_test(test_disparity_ttl),
        cmocka_unit_test(test_disparity_retract),
        cmocka_unit_test(test_disparity_old),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
