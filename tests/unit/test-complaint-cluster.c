/* tests/unit/test-complaint-cluster.c - the complaint_cluster detector through
 * the fake host.
 *
 * Drives case.complaint events through default and custom rule lists:
 * every group_by, thresholds hit exactly and missed by one, windows at
 * exactly their length and one ms past it, default (per-window) and
 * explicit cooldowns, complaints without the grouped field, evidence order
 * and cap, reconfigure carrying windows, a snapshot round trip mid-window,
 * corrupt snapshots, state freed after the windows and bad configs. */
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

#define T0 INT64_C(1740793800000)

static uint32_t g_seq;

/* Split "O1,O2" (NULL or "" = none) into at most 4 officers in buf/out;
 * returns how many. */
static size_t split_officers(const char *list, char *buf, size_t len,
                             const char **out)
{
    size_t n = 0;
    char *p;
    if (list == NULL || *list == '\0')
        return 0;
    snprintf(buf, len, "%s", list);
    for (p = buf; p != NULL && n < 4; ) {
        char *comma = strchr(p, ',');
        out[n++] = p;
        if (comma != NULL)
            *comma++ = '\0';
        p = comma;
    }
    return n;
}

/* Deliver a case.complaint at ts with unit, enterprise, region (each may be
 * NULL) and the officers listed in `offs` ("O1,O2"; NULL = none). Its entry
 * ref is case/ts-seq with a running seq; returns that seq. */
static uint32_t complain(rk_fakehost *fh, int64_t ts, const char *unit,
                         const char *ent, const char *region, const char *offs)
{
    const char *officers[4];
    char cid[32], obuf[64];
    size_t n = split_officers(offs, obuf, sizeof(obuf), officers);
    rk_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_CASE_COMPLAINT;
    ev.type_name = "case.complaint";
    ev.ts = ts;
    ev.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts, ++g_seq);
    snprintf(cid, sizeof(cid), "C%u", (unsigned)g_seq);
    ev.complaint_id = cid;
    ev.unit_id = unit;
    ev.enterprise_id = ent;
    ev.region = region;
    ev.officers = officers;
    ev.n_officers = n;
    assert_int_equal(rk_fh_event(fh, &ev), 0);
    return g_seq;
}

static rk_fakehost *mk(const char *cfg)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(&rk__det_complaint_cluster, cfg, err, sizeof(err));
    if (fh == NULL)
        fail_msg("create failed: %s", err);
    return fh;
}

static void ref_str(char *buf, size_t len, int64_t ts, uint32_t seq)
{
    snprintf(buf, len, "1/%lld-%u", (long long)ts, (unsigned)seq);
}

static const char *subj(const json_t *a, const char *field)
{
    return json_string_value(json_object_get(json_object_get(a, "subject"), field));
}

static size_t subj_size(const json_t *a)
{
    return json_object_size(json_object_get(a, "subject"));
}

/* The k-th alert whose subject has `field` set. */
static json_t *nth_by(const rk_fakehost *fh, const char *field, int k)
{
    size_t i;
    for (i = 0; i < json_array_size(fh->alerts); i++) {
        json_t *a = rk_fh_alert(fh, i);
        if (subj(a, field) != NULL && k-- == 0)
            return a;
    }
    fail_msg("no alert by %s #%d", field, k);
    return NULL;
}

static int count_by(const rk_fakehost *fh, const char *field)
{
    size_t i;
    int n = 0;
    for (i = 0; i < json_array_size(fh->alerts); i++)
        if (subj(rk_fh_alert(fh, i), field) != NULL)
            n++;
    return n;
}

static const char *ev_at(const json_t *a, size_t i)
{
    return json_string_value(json_array_get(json_object_get(a, "evidence"), i));
}

static size_t ev_len(const json_t *a)
{
    return json_array_size(json_object_get(a, "evidence"));
}

static double num(const json_t *a, const char *k)
{
    return json_number_value(json_object_get(a, k));
}

static int64_t ival(const json_t *a, const char *k)
{
    return json_integer_value(json_object_get(a, k));
}

/* ------------------------------------------------------------------ */

static void test_defaults_unit(void **st)
{
    rk_fakehost *fh = mk("{}");
    uint32_t seqs[5];
    char buf[64];
    json_t *a;
    int i;
    (void)st;

    for (i = 0; i < 4; i++)
        seqs[i] = complain(fh, T0 + i * RK_DAY, "U1", "E1", "R1", NULL);
    assert_int_equal(rk_fh_count(fh, NULL), 0);       /* 4: one short */
    seqs[4] = complain(fh, T0 + 4 * RK_DAY, "U1", "E1", "R1", NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    a = rk_fh_alert(fh, 0);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "warning");
    assert_int_equal(subj_size(a), 1);
    assert_string_equal(subj(a, "unit_id"), "U1");
    assert_true(num(a, "value") == 5.0);
    assert_true(num(a, "threshold") == 5.0);
    assert_int_equal(ival(a, "cooldown"), 7 * RK_DAY);
    assert_int_equal(ival(a, "ts"), T0 + 4 * RK_DAY);
    assert_int_equal(ev_len(a), 5);
    for (i = 0; i < 5; i++) {
        ref_str(buf, sizeof(buf), T0 + i * RK_DAY, seqs[i]);
        assert_string_equal(ev_at(a, (size_t)i), buf);
    }
    assert_true(strlen(json_string_value(json_object_get(a, "summary"))) > 10);
    /* The 6th within the cooldown is held. */
    complain(fh, T0 + 5 * RK_DAY, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    assert_int_equal(fh->held_back, 1);
    rk_fh_free(fh);
}

static void test_defaults_officer(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, "O1,O2");
    complain(fh, T0 + RK_DAY, "U2", NULL, NULL, "O1,O1");   /* dup once */
    assert_int_equal(count_by(fh, "officer_id"), 0);
    complain(fh, T0 + 29 * RK_DAY, "U3", NULL, NULL, "O2,O1");
    assert_int_equal(count_by(fh, "officer_id"), 1);
    a = nth_by(fh, "officer_id", 0);
    assert_int_equal(subj_size(a), 1);
    assert_string_equal(subj(a, "officer_id"), "O1");
    assert_true(num(a, "value") == 3.0);
    assert_true(num(a, "threshold") == 3.0);
    assert_int_equal(ival(a, "cooldown"), 30 * RK_DAY);
    assert_int_equal(ev_len(a), 3);
    complain(fh, T0 + 29 * RK_DAY + 1, "U3", NULL, NULL, "O2");
    assert_int_equal(count_by(fh, "officer_id"), 2);
    assert_string_equal(subj(nth_by(fh, "officer_id", 1), "officer_id"), "O2");
    assert_int_equal(count_by(fh, "unit_id"), 0);
    rk_fh_free(fh);
}

static void test_window_boundary(void **st)
{
    const char *cfg = "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"7d\", "
                      "\"min_count\": 3}]}";
    rk_fakehost *fh = mk(cfg);
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0 + RK_DAY, "U1", NULL, NULL, NULL);
    complain(fh, T0 + 7 * RK_DAY, "U1", NULL, NULL, NULL);   /* first exactly 7d old */
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    assert_true(num(rk_fh_alert(fh, 0), "value") == 3.0);
    rk_fh_free(fh);

    fh = mk(cfg);
    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0 + RK_DAY, "U1", NULL, NULL, NULL);
    complain(fh, T0 + 7 * RK_DAY + 1, "U1", NULL, NULL, NULL);   /* 7d+1ms: out */
    assert_int_equal(rk_fh_count(fh, "cluster"), 0);
    complain(fh, T0 + 7 * RK_DAY + 2, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    rk_fh_free(fh);
}

static void test_group_by_enterprise_region(void **st)
{
    rk_fakehost *fh = mk("{\"rules\": ["
                         "{\"group_by\": \"enterprise_id\", \"window\": \"1h\", \"min_count\": 2},"
                         "{\"group_by\": \"region\", \"window\": \"1h\", \"min_count\": 2}]}");
    json_t *a;
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, "O1");      /* neither field: skipped */
    complain(fh, T0 + 1, "U1", NULL, NULL, "O1");
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    complain(fh, T0 + 2, "U1", "E1", "R1", NULL);
    complain(fh, T0 + 3, "U2", "E2", "R1", NULL);
    assert_int_equal(rk_fh_count(fh, NULL), 1);
    a = rk_fh_alert(fh, 0);
    assert_int_equal(subj_size(a), 1);
    assert_string_equal(subj(a, "region"), "R1");
    assert_int_equal(ival(a, "cooldown"), RK_HOUR);
    complain(fh, T0 + 4, "U3", "E1", NULL, NULL);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    a = rk_fh_alert(fh, 1);
    assert_int_equal(subj_size(a), 1);
    assert_string_equal(subj(a, "enterprise_id"), "E1");
    assert_int_equal(fh->ops->tracked_keys(fh->self), 3);   /* E1 E2 R1 */
    rk_fh_free(fh);
}

static void test_cooldown(void **st)
{
    rk_fakehost *fh;
    (void)st;

    /* Default: the rule's window. */
    fh = mk("{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1h\", \"min_count\": 1}]}");
    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0 + RK_HOUR - 1, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    assert_int_equal(fh->held_back, 1);
    complain(fh, T0 + RK_HOUR, "U1", NULL, NULL, NULL);  /* T0 still inside */
    assert_int_equal(rk_fh_count(fh, "cluster"), 2);
    assert_true(num(rk_fh_alert(fh, 1), "value") == 3.0);
    rk_fh_free(fh);

    /* Explicit: one cooldown for every rule. */
    fh = mk("{\"cooldown\": \"10m\", \"rules\": [{\"group_by\": \"unit_id\", "
            "\"window\": \"1d\", \"min_count\": 2}]}");
    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0 + 1, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    assert_int_equal(ival(rk_fh_alert(fh, 0), "cooldown"), 10 * RK_MINUTE);
    complain(fh, T0 + 1 + 10 * RK_MINUTE - 1, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    complain(fh, T0 + 1 + 10 * RK_MINUTE, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 2);
    assert_true(num(rk_fh_alert(fh, 1), "value") == 4.0);
    rk_fh_free(fh);

    /* "0s": none. */
    fh = mk("{\"cooldown\": \"0s\", \"rules\": [{\"group_by\": \"unit_id\", "
            "\"window\": \"1d\", \"min_count\": 1}]}");
    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 2);
    assert_int_equal(ival(rk_fh_alert(fh, 0), "cooldown"), 0);
    rk_fh_free(fh);
}

static void test_two_rules_same_group(void **st)
{
    /* Per (rule, key) state: two unit rules count independently. */
    rk_fakehost *fh = mk("{\"cooldown\": \"0s\", \"rules\": ["
                         "{\"group_by\": \"unit_id\", \"window\": \"1h\", \"min_count\": 2},"
                         "{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 3}]}");
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0 + 2 * RK_HOUR, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    complain(fh, T0 + 2 * RK_HOUR + 1, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, NULL), 2);
    assert_true(num(rk_fh_alert(fh, 0), "threshold") == 2.0);
    assert_true(num(rk_fh_alert(fh, 1), "threshold") == 3.0);
    assert_true(num(rk_fh_alert(fh, 1), "value") == 3.0);
    rk_fh_free(fh);
}

static void test_empty_rules(void **st)
{
    rk_fakehost *fh = mk("{\"rules\": []}");
    int i;
    (void)st;
    for (i = 0; i < 10; i++)
        complain(fh, T0 + i, "U1", "E1", "R1", "O1");
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_evidence_cap(void **st)
{
    rk_fakehost *fh = mk("{\"cooldown\": \"0s\", \"rules\": [{\"group_by\": \"officer_id\", "
                         "\"window\": \"1d\", \"min_count\": 1}]}");
    json_t *a;
    char buf[64];
    uint32_t s = 0, s5 = 0;
    int i;
    (void)st;

    for (i = 0; i < 30; i++) {
        s = complain(fh, T0 + i, "U1", NULL, NULL, "O1");
        if (i == 10)
            s5 = s;
    }
    assert_int_equal(rk_fh_count(fh, NULL), 30);
    a = rk_fh_alert(fh, 29);
    assert_true(num(a, "value") == 30.0);
    assert_int_equal(ev_len(a), 20);
    ref_str(buf, sizeof(buf), T0 + 10, s5);
    assert_string_equal(ev_at(a, 0), buf);
    ref_str(buf, sizeof(buf), T0 + 29, s);
    assert_string_equal(ev_at(a, 19), buf);
    rk_fh_free(fh);
}

static void test_state_freed(void **st)
{
    rk_fakehost *fh = mk("{}");
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, "O1,O2");
    complain(fh, T0 + RK_DAY, "U2", NULL, NULL, NULL);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 4);    /* U1 U2 O1 O2 */
    rk_fh_advance(fh, T0 + 7 * RK_DAY);                      /* U1 exactly 7d old */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 4);
    rk_fh_advance(fh, T0 + 7 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 3);
    rk_fh_advance(fh, T0 + 8 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 30 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* A key is freed at the first watermark past its newest complaint + the
 * rule's window, never earlier; after a reconfigure that changes a window
 * (and after a restore) the expiry follows the new window. */
static void test_expiry_exact(void **st)
{
    const char *c1 = "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"2d\", \"min_count\": 9}]}";
    const char *c2 = "{\"rules\": [{\"group_by\": \"region\", \"window\": \"1d\", \"min_count\": 9},"
                     "{\"group_by\": \"unit_id\", \"window\": \"4d\", \"min_count\": 9}]}";
    rk_fakehost *fh = mk(c1);
    json_t *cfg;
    char err[256];
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0 + RK_DAY, "U2", NULL, NULL, NULL);
    complain(fh, T0 + RK_DAY + 5, "U1", NULL, NULL, NULL);  /* refresh U1 */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 2 * RK_DAY + 1);        /* U1's first one left */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 3 * RK_DAY + 1);        /* U2 left */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    /* window 2d -> 4d: U1 (newest at 1d + 5) now stays until 5d + 5 */
    cfg = json_loads(c2, 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    rk_fh_advance(fh, T0 + 3 * RK_DAY + 6);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    assert_int_equal(rk_fh_roundtrip(fh, c2), 0);
    rk_fh_advance(fh, T0 + 5 * RK_DAY + 5);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 5 * RK_DAY + 6);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    /* and back to a shorter window: freed sooner */
    complain(fh, T0 + 6 * RK_DAY, "U3", NULL, "R1", NULL);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    cfg = json_loads(c1, 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);   /* region rule gone */
    rk_fh_advance(fh, T0 + 8 * RK_DAY);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 8 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void drive(rk_fakehost *fh, int from, int to)
{
    static const char *const units[] = { "U1", "U2", "U3" };
    static const char *const offs[] = { "O1", "O2,O4", "O3,O3", "O4,O2" };
    static const char *const ents[] = { "E1", NULL };
    int i;
    for (i = from; i < to; i++)
        complain(fh, T0 + (int64_t)i * 5 * RK_HOUR, units[i % 3], ents[i % 2],
                 i % 4 ? "R1" : NULL, offs[i % 4]);
}

#define RT_CFG "{\"cooldown\": \"12h\", \"rules\": [" \
    "{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 2}," \
    "{\"group_by\": \"officer_id\", \"window\": \"2d\", \"min_count\": 4}," \
    "{\"group_by\": \"enterprise_id\", \"window\": \"12h\", \"min_count\": 2}," \
    "{\"group_by\": \"region\", \"window\": \"1d\", \"min_count\": 3}]}"

static void test_snapshot_roundtrip(void **st)
{
    rk_fakehost *a = mk(RT_CFG), *b = mk(RT_CFG);
    uint32_t save;
    (void)st;

    g_seq = 500;
    drive(a, 0, 15);
    g_seq = 500;
    drive(b, 0, 15);
    assert_true(b->ops->tracked_keys(b->self) > 0);
    assert_int_equal(rk_fh_roundtrip(b, RT_CFG), 0);
    assert_int_equal(b->ops->tracked_keys(b->self), a->ops->tracked_keys(a->self));
    save = g_seq;
    drive(a, 15, 40);
    g_seq = save;
    drive(b, 15, 40);
    assert_true(count_by(a, "unit_id") > 0);
    assert_true(count_by(a, "officer_id") > 0);
    assert_true(count_by(a, "enterprise_id") > 0);
    assert_true(count_by(a, "region") > 0);
    assert_true(json_equal(a->alerts, b->alerts));
    rk_fh_free(a);
    rk_fh_free(b);
}

static void test_restore_into_other_config(void **st)
{
    /* A snapshot taken under one rules list restores into a reordered one
     * with the windows carried by group_by + window. */
    const char *c1 = "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 3},"
                     "{\"group_by\": \"officer_id\", \"window\": \"1d\", \"min_count\": 3}]}";
    const char *c2 = "{\"rules\": [{\"group_by\": \"region\", \"window\": \"1d\", \"min_count\": 1},"
                     "{\"group_by\": \"officer_id\", \"window\": \"1d\", \"min_count\": 3},"
                     "{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 3}]}";
    rk_fakehost *fh = mk(c1);
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, "O1");
    complain(fh, T0 + 1, "U1", NULL, NULL, "O1");
    assert_int_equal(rk_fh_roundtrip(fh, c2), 0);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    complain(fh, T0 + 2, "U1", NULL, NULL, "O1");
    assert_int_equal(count_by(fh, "unit_id"), 1);
    assert_int_equal(count_by(fh, "officer_id"), 1);
    assert_true(num(nth_by(fh, "unit_id", 0), "value") == 3.0);
    rk_fh_free(fh);
}

static void test_reconfigure(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *cfg;
    char err[256];
    (void)st;

    complain(fh, T0, "U1", NULL, NULL, "O1");
    complain(fh, T0 + 1, "U1", NULL, NULL, "O1");
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);

    cfg = json_loads("{\"rules\": [{\"group_by\": \"unit\", \"window\": \"1d\", "
                     "\"min_count\": 1}]}", 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "rules[0].group_by: expected one of \"unit_id\", "
                        "\"officer_id\", \"enterprise_id\", \"region\"");
    json_decref(cfg);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);

    /* Reordered, new thresholds, officer window changed: both kept. */
    cfg = json_loads("{\"rules\": ["
                     "{\"group_by\": \"officer_id\", \"window\": \"10d\", \"min_count\": 3},"
                     "{\"group_by\": \"unit_id\", \"window\": \"7d\", \"min_count\": 3},"
                     "{\"group_by\": \"region\", \"window\": \"7d\", \"min_count\": 1}]}",
                     0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    complain(fh, T0 + 2, "U1", NULL, NULL, "O1");
    assert_int_equal(count_by(fh, "unit_id"), 1);
    assert_int_equal(count_by(fh, "officer_id"), 1);
    assert_int_equal(ival(nth_by(fh, "officer_id", 0), "cooldown"), 10 * RK_DAY);

    /* Unit rule dropped: its state goes. */
    cfg = json_loads("{\"rules\": [{\"group_by\": \"officer_id\", \"window\": \"10d\", "
                     "\"min_count\": 3}]}", 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    /* Officer window shrinks to 1ms: trimmed at the next watermark. */
    cfg = json_loads("{\"rules\": [{\"group_by\": \"officer_id\", \"window\": \"1ms\", "
                     "\"min_count\": 3}]}", 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    rk_fh_advance(fh, T0 + 4);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_restore_corrupt(void **st)
{
    rk_fakehost *fh = mk(RT_CFG);
    const char *fail;
    (void)st;

    drive(fh, 0, 12);
    fail = rk_fh_check_corrupt_restore(fh, 1);
    if (fail != NULL)
        fail_msg("%s", fail);
    rk_fh_free(fh);
}

static void test_other_events_ignored(void **st)
{
    rk_fakehost *fh = mk("{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1d\", "
                         "\"min_count\": 1}]}");
    rk_event ev;
    rk_event_type t;
    (void)st;

    for (t = RK_EV_INSPECTION_FILED; t < RK_EV__COUNT; t++) {
        if (t == RK_EV_CASE_COMPLAINT)
            continue;
        memset(&ev, 0, sizeof(ev));
        ev.type = t;
        ev.ts = T0 + t;
        ev.ref = rk_fh_ref(1, (uint64_t)ev.ts, 1);
        ev.unit_id = "U1";
        assert_int_equal(rk_fh_event(fh, &ev), 0);
    }
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_bad_configs(void **st)
{
    static const char *const cases[][2] = {
        { "{\"rules\": {}}", "rules: expected an array of objects" },
        { "{\"rules\": [1]}", "rules[0]: expected an object" },
        { "{\"rules\": [{\"window\": \"1d\", \"min_count\": 1}]}", "rules[0].group_by: missing" },
        { "{\"rules\": [{\"group_by\": \"unit_id\", \"min_count\": 1}]}",
          "rules[0].window: missing" },
        { "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1d\"}]}",
          "rules[0].min_count: missing" },
        { "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 1},"
          "{\"group_by\": \"region\", \"window\": \"soon\", \"min_count\": 1}]}",
          "rules[1].window: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"0s\", \"min_count\": 1}]}",
          "rules[0].window: expected a duration of at least 1ms" },
        { "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 0}]}",
          "rules[0].min_count: expected an integer from 1 to 1000000" },
        { "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 1000001}]}",
          "rules[0].min_count: expected an integer from 1 to 1000000" },
        { "{\"rules\": [{\"group_by\": \"task_id\", \"window\": \"1d\", \"min_count\": 1}]}",
          "rules[0].group_by: expected one of \"unit_id\", \"officer_id\", "
          "\"enterprise_id\", \"region\"" },
        { "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"1d\", \"min_count\": 1, "
          "\"severity\": \"info\"}]}", "rules[0].severity: unknown key" },
        { "{\"cooldown\": \"1w\"}",
          "cooldown: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"cooldown\": 5}",
          "cooldown: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"window\": \"1d\"}", "window: unknown key" },
    };
    char err[256], big[8192];
    size_t i, used;
    (void)st;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_null(rk_fh_new(&rk__det_complaint_cluster, cases[i][0], err, sizeof(err)));
        assert_string_equal(err, cases[i][1]);
    }
    /* 65 rules: too many. */
    used = (size_t)snprintf(big, sizeof(big), "{\"rules\": [");
    for (i = 0; i < 65; i++)
        used += (size_t)snprintf(big + used, sizeof(big) - used,
                                 "%s{\"group_by\": \"unit_id\", \"window\": \"%zuh\", "
                                 "\"min_count\": 1}", i ? "," : "", i + 1);
    snprintf(big + used, sizeof(big) - used, "]}");
    assert_null(rk_fh_new(&rk__det_complaint_cluster, big, err, sizeof(err)));
    assert_string_equal(err, "rules: expected at most 64 rules");
}

static void test_ops_table(void **st)
{
    (void)st;
    assert_int_equal(rk__det_complaint_cluster.abi_major, RK_ABI_MAJOR);
    assert_int_equal(rk__det_complaint_cluster.abi_minor, RK_ABI_MINOR);
    assert_string_equal(rk__det_complaint_cluster.name, "complaint_cluster");
    assert_non_null(rk__det_complaint_cluster.snapshot);
    assert_non_null(rk__det_complaint_cluster.restore);
    assert_non_null(rk__det_complaint_cluster.on_watermark);
    assert_non_null(rk__det_complaint_cluster.tracked_keys);
}

/* Lifecycle: a cluster alert resolves once the key's count has been below
 * min_count for keep_firing_for (1h in the fake host), survives a
 * snapshot, and the rule may fire again after. */
static void test_cluster_resolved(void **st)
{
    const char *cfg = "{\"rules\": [{\"group_by\": \"unit_id\", \"window\": \"2h\", "
                      "\"min_count\": 2}]}";
    rk_fakehost *fh = mk(cfg);
    const char *fail;
    json_t *n;
    (void)st;
    complain(fh, T0, "U1", NULL, NULL, NULL);
    complain(fh, T0 + RK_HOUR, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 1);
    fail = rk_fh_check_corrupt_restore(fh, 1);
    if (fail != NULL)
        fail_msg("%s", fail);
    assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
    /* T0 leaves the window after T0 + 2h; resolved after T0 + 3h. */
    rk_fh_advance(fh, T0 + 3 * RK_HOUR);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 3 * RK_HOUR + 1);
    assert_int_equal(rk_fh_notice_count(fh, "cluster", "resolved"), 1);
    n = rk_fh_notice(fh, 0);
    assert_string_equal(subj(n, "unit_id"), "U1");
    assert_int_equal(subj_size(n), 1);
    assert_int_equal(ival(n, "ts"), T0 + RK_HOUR);
    assert_non_null(strstr(json_string_value(json_object_get(n, "reason")), "U1"));
    /* After the cooldown (the window) it may fire again: a new alert. */
    complain(fh, T0 + 4 * RK_HOUR, "U1", NULL, NULL, NULL);
    complain(fh, T0 + 4 * RK_HOUR + 1, "U1", NULL, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "cluster"), 2);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_table),
        cmocka_unit_test(test_defaults_unit),
        cmocka_unit_test(test_cluster_resolved),
        cmocka_unit_test(test_defaults_officer),
        cmocka_unit_test(test_window_boundary),
        cmocka_unit_test(test_group_by_enterprise_region),
        cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_two_rules_same_group),
        cmocka_unit_test(test_empty_rules),
        cmocka_unit_test(test_evidence_cap),
        cmocka_unit_test(test_state_freed),
        cmocka_unit_test(test_expiry_exact),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_restore_into_other_config),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_restore_corrupt),
        cmocka_unit_test(test_other_events_ignored),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
