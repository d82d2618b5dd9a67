/* tests/unit/test-bad-rating.c - the bad_rating detector through the fake host.
 *
 * Every rule is driven with inspection.rated events: positive and negative
 * cases, thresholds hit exactly and missed by one, windows at exactly their
 * length and one ms past it, cooldown expiry, ratings without unit or
 * officers, evidence order and cap, a snapshot round trip in the middle of
 * a window, corrupt snapshots, state freed after the windows pass and bad
 * configuration keys. */
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

/* Deliver an inspection.rated at ts with score, unit (may be NULL) and the
 * officers listed in `offs` ("O1,O2"; NULL = none). Its entry ref is
 * scan/ts-seq with a running seq; returns that seq. */
static uint32_t rate(rk_fakehost *fh, int64_t ts, int score, const char *unit,
                     const char *offs)
{
    const char *officers[4];
    char task[32], obuf[64];
    size_t n = split_officers(offs, obuf, sizeof(obuf), officers);
    rk_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_INSPECTION_RATED;
    ev.type_name = "inspection.rated";
    ev.ts = ts;
    ev.ref = rk_fh_ref(RK_STREAM_SCAN, (uint64_t)ts, ++g_seq);
    snprintf(task, sizeof(task), "T%u", (unsigned)g_seq);
    ev.task_id = task;
    ev.enterprise_id = "E1";
    ev.unit_id = unit;
    ev.officers = officers;
    ev.n_officers = n;
    ev.score = score;
    assert_int_equal(rk_fh_event(fh, &ev), 0);
    return g_seq;
}

static rk_fakehost *mk(const char *cfg)
{
    char err[256] = "";
    rk_fakehost *fh = rk_fh_new(&rk__det_bad_rating, cfg, err, sizeof(err));
    if (fh == NULL)
        fail_msg("create failed: %s", err);
    return fh;
}

/* The evidence string of a rating delivered by rate(). */
static void ref_str(char *buf, size_t len, int64_t ts, uint32_t seq)
{
    snprintf(buf, len, "0/%lld-%u", (long long)ts, (unsigned)seq);
}

static const char *subj(const json_t *a, const char *field)
{
    return json_string_value(json_object_get(json_object_get(a, "subject"), field));
}

static size_t subj_size(const json_t *a)
{
    return json_object_size(json_object_get(a, "subject"));
}

static json_t *nth_of(const rk_fakehost *fh, const char *rule, int k)
{
    size_t i;
    for (i = 0; i < json_array_size(fh->alerts); i++) {
        json_t *a = rk_fh_alert(fh, i);
        if (strcmp(json_string_value(json_object_get(a, "rule")), rule) == 0 && k-- == 0)
            return a;
    }
    fail_msg("no alert %s #%d", rule, k);
    return NULL;
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

/* ------------------------------------------------------------------ */

static void test_bad_rating_rule(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    char buf[64];
    uint32_t s1;
    (void)st;

    rate(fh, T0, 3, "U1", NULL);                /* one above bad_score */
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    s1 = rate(fh, T0 + 1, 2, "U1", NULL);       /* exactly bad_score */
    assert_int_equal(rk_fh_count(fh, "bad_rating"), 1);
    a = nth_of(fh, "bad_rating", 0);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "warning");
    assert_int_equal(json_integer_value(json_object_get(a, "ts")), T0 + 1);
    assert_int_equal(subj_size(a), 3);
    snprintf(buf, sizeof(buf), "T%u", (unsigned)s1);
    assert_string_equal(subj(a, "task_id"), buf);
    assert_string_equal(subj(a, "enterprise_id"), "E1");
    assert_string_equal(subj(a, "unit_id"), "U1");
    assert_true(num(a, "value") == 2.0);
    assert_true(num(a, "threshold") == 2.0);
    assert_int_equal(json_integer_value(json_object_get(a, "cooldown")), 0);
    assert_int_equal(ev_len(a), 1);
    ref_str(buf, sizeof(buf), T0 + 1, s1);
    assert_string_equal(ev_at(a, 0), buf);
    assert_true(strlen(json_string_value(json_object_get(a, "summary"))) > 10);

    /* No cooldown: every bad rating alerts, also without a unit. */
    rate(fh, T0 + 2, 1, NULL, NULL);
    assert_int_equal(rk_fh_count(fh, "bad_rating"), 2);
    a = nth_of(fh, "bad_rating", 1);
    assert_int_equal(subj_size(a), 2);
    assert_null(subj(a, "unit_id"));
    assert_true(num(a, "value") == 1.0);
    assert_int_equal(fh->held_back, 0);
    rk_fh_free(fh);
}

static void test_bad_score_config(void **st)
{
    rk_fakehost *fh = mk("{\"bad_score\": 1}");
    (void)st;
    rate(fh, T0, 2, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    rate(fh, T0 + 1, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "bad_rating"), 1);
    assert_true(num(nth_of(fh, "bad_rating", 0), "threshold") == 1.0);
    rk_fh_free(fh);

    fh = mk("{\"bad_score\": 5}");
    rate(fh, T0, 5, "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "bad_rating"), 1);
    rk_fh_free(fh);
}

static void test_officer_repeated(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *a;
    char buf[64];
    uint32_t s1, s2, s3;
    (void)st;

    s1 = rate(fh, T0, 1, "U1", "O1,O2");
    rate(fh, T0 + RK_HOUR, 4, "U1", "O1");         /* good: not counted */
    s2 = rate(fh, T0 + 2 * RK_HOUR, 2, "U1", "O1");
    rate(fh, T0 + 3 * RK_HOUR, 5, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 0);   /* 2: one short */
    s3 = rate(fh, T0 + 4 * RK_HOUR, 2, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    a = nth_of(fh, "officer_repeated", 0);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "critical");
    assert_int_equal(subj_size(a), 2);
    assert_string_equal(subj(a, "officer_id"), "O1");
    assert_string_equal(subj(a, "unit_id"), "U1");
    assert_true(num(a, "value") == 3.0);
    assert_true(num(a, "threshold") == 3.0);
    assert_int_equal(json_integer_value(json_object_get(a, "cooldown")), 24 * RK_HOUR);
    assert_int_equal(json_integer_value(json_object_get(a, "ts")), T0 + 4 * RK_HOUR);
    assert_int_equal(ev_len(a), 3);
    ref_str(buf, sizeof(buf), T0, s1);
    assert_string_equal(ev_at(a, 0), buf);
    ref_str(buf, sizeof(buf), T0 + 2 * RK_HOUR, s2);
    assert_string_equal(ev_at(a, 1), buf);
    ref_str(buf, sizeof(buf), T0 + 4 * RK_HOUR, s3);
    assert_string_equal(ev_at(a, 2), buf);
    /* O2 has a single bad rating. */
    rk_fh_free(fh);
}

static void test_officer_window_boundary(void **st)
{
    rk_fakehost *fh;
    (void)st;

    /* Oldest exactly officer_window old: still inside. */
    fh = mk("{}");
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + RK_DAY, 1, "U1", "O1");
    rate(fh, T0 + 30 * RK_DAY, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    assert_true(num(nth_of(fh, "officer_repeated", 0), "value") == 3.0);
    rk_fh_free(fh);

    /* One ms more: outside. */
    fh = mk("{}");
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + RK_DAY, 1, "U1", "O1");
    rate(fh, T0 + 30 * RK_DAY + 1, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 0);
    rate(fh, T0 + 30 * RK_DAY + 2, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    assert_true(num(nth_of(fh, "officer_repeated", 0), "value") == 3.0);
    rk_fh_free(fh);

    /* A short custom window. */
    fh = mk("{\"officer_window\": \"1h\", \"officer_min_bad\": 2}");
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + RK_HOUR + 1, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 0);
    rate(fh, T0 + 2 * RK_HOUR + 1, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    rk_fh_free(fh);
}

static void test_officer_cooldown(void **st)
{
    rk_fakehost *fh = mk("{\"officer_min_bad\": 2, \"cooldown\": \"24h\"}");
    int64_t t1 = T0 + RK_HOUR;
    (void)st;

    rate(fh, T0, 1, "U1", "O1");
    rate(fh, t1, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    rate(fh, t1 + 24 * RK_HOUR - 1, 1, "U1", "O1");        /* held */
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    assert_int_equal(fh->held_back, 1);
    rate(fh, t1 + 24 * RK_HOUR, 1, "U1", "O1");            /* expired */
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 2);
    assert_true(num(nth_of(fh, "officer_repeated", 1), "value") == 4.0);
    /* Another unit is another subject: not held by U1's cooldown. */
    rate(fh, t1 + 24 * RK_HOUR + 1, 1, "U2", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 3);
    assert_string_equal(subj(nth_of(fh, "officer_repeated", 2), "unit_id"), "U2");
    rk_fh_free(fh);

    /* cooldown "0s": none. */
    fh = mk("{\"officer_min_bad\": 1, \"cooldown\": \"0s\"}");
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 2);
    assert_int_equal(json_integer_value(json_object_get(nth_of(fh, "officer_repeated", 0),
                                                        "cooldown")), 0);
    rk_fh_free(fh);
}

static void test_missing_unit_or_officers(void **st)
{
    rk_fakehost *fh = mk("{\"officer_min_bad\": 2, \"unit_min_ratings\": 1, "
                         "\"unit_max_bad_ratio\": 0}");
    json_t *a;
    (void)st;

    /* No officers: no officer state; unit_ratio still works. */
    rate(fh, T0, 1, "U1", NULL);
    rate(fh, T0 + 1, 1, "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 0);
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);   /* cooldown holds #2 */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_free(fh);

    /* No unit: no unit_ratio, officer alert without unit_id. */
    fh = mk("{\"officer_min_bad\": 2, \"unit_min_ratings\": 1, "
            "\"unit_max_bad_ratio\": 0}");
    rate(fh, T0, 1, NULL, "O1");
    rate(fh, T0 + 1, 1, NULL, "O1");
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 0);
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    a = nth_of(fh, "officer_repeated", 0);
    assert_int_equal(subj_size(a), 1);
    assert_string_equal(subj(a, "officer_id"), "O1");
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_free(fh);
}

static void test_duplicate_officer_counted_once(void **st)
{
    rk_fakehost *fh = mk("{\"officer_min_bad\": 2}");
    (void)st;
    rate(fh, T0, 1, "U1", "O1,O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 0);
    rate(fh, T0 + 1, 1, "U1", "O1,O2");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    assert_string_equal(subj(nth_of(fh, "officer_repeated", 0), "officer_id"), "O1");
    rk_fh_free(fh);
}

static void test_unit_ratio(void **st)
{
    const char *cfg = "{\"unit_min_ratings\": 5, \"unit_max_bad_ratio\": 0.4, "
                      "\"cooldown\": \"0s\"}";
    rk_fakehost *fh = mk(cfg);
    json_t *a;
    char buf[64];
    uint32_t b1, b2, s5;
    (void)st;

    b1 = rate(fh, T0, 1, "U1", NULL);
    b2 = rate(fh, T0 + 1, 2, "U1", NULL);
    rate(fh, T0 + 2, 5, "U1", NULL);
    rate(fh, T0 + 3, 4, "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 0);   /* 4 ratings: one short */
    s5 = rate(fh, T0 + 4, 3, "U1", NULL);                 /* 2/5 = 0.4 exactly */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    a = nth_of(fh, "unit_ratio", 0);
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "warning");
    assert_int_equal(subj_size(a), 1);
    assert_string_equal(subj(a, "unit_id"), "U1");
    assert_true(num(a, "value") == 0.4);
    assert_true(num(a, "threshold") == 0.4);
    assert_int_equal(json_integer_value(json_object_get(a, "cooldown")), 0);
    assert_int_equal(ev_len(a), 3);                       /* 2 bad + trigger */
    ref_str(buf, sizeof(buf), T0, b1);
    assert_string_equal(ev_at(a, 0), buf);
    ref_str(buf, sizeof(buf), T0 + 1, b2);
    assert_string_equal(ev_at(a, 1), buf);
    ref_str(buf, sizeof(buf), T0 + 4, s5);
    assert_string_equal(ev_at(a, 2), buf);

    rate(fh, T0 + 5, 5, "U1", NULL);                      /* 2/6 < 0.4 */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    s5 = rate(fh, T0 + 6, 1, "U1", NULL);                 /* 3/7 >= 0.4 */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 2);
    a = nth_of(fh, "unit_ratio", 1);
    assert_int_equal(ev_len(a), 3);                       /* trigger is bad: 3 bad */
    ref_str(buf, sizeof(buf), T0 + 6, s5);
    assert_string_equal(ev_at(a, 2), buf);
    assert_true(num(a, "value") > 0.428 && num(a, "value") < 0.429);
    /* Other units are separate. */
    rate(fh, T0 + 7, 1, "U2", NULL);
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 2);
    rk_fh_free(fh);

    /* Ratio one rating short of the threshold share. */
    fh = mk(cfg);
    rate(fh, T0, 1, "U1", NULL);
    rate(fh, T0 + 1, 5, "U1", NULL);
    rate(fh, T0 + 2, 5, "U1", NULL);
    rate(fh, T0 + 3, 5, "U1", NULL);
    rate(fh, T0 + 4, 5, "U1", NULL);                      /* 1/5 = 0.2 */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 0);
    rk_fh_free(fh);
}

static void test_unit_ratio_defaults(void **st)
{
    rk_fakehost *fh = mk("{}");
    int i;
    (void)st;

    for (i = 0; i < 4; i++)
        rate(fh, T0 + i, 1, "U1", NULL);
    for (i = 4; i < 19; i++)
        rate(fh, T0 + i, 5, "U1", NULL);
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 0);   /* 19 ratings */
    rate(fh, T0 + 19, 5, "U1", NULL);                     /* 4/20 = 0.2 */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    assert_true(num(nth_of(fh, "unit_ratio", 0), "value") == 0.2);
    assert_int_equal(json_integer_value(json_object_get(nth_of(fh, "unit_ratio", 0),
                                                        "cooldown")), 24 * RK_HOUR);
    assert_int_equal(ev_len(nth_of(fh, "unit_ratio", 0)), 5);
    rate(fh, T0 + 20, 1, "U1", NULL);                     /* held by cooldown */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    assert_int_equal(fh->held_back, 1);
    rate(fh, T0 + 19 + 24 * RK_HOUR, 1, "U1", NULL);      /* cooldown over */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 2);
    rk_fh_free(fh);
}

static void test_unit_window(void **st)
{
    const char *cfg = "{\"unit_window\": \"1h\", \"unit_min_ratings\": 3, "
                      "\"unit_max_bad_ratio\": 0.5, \"cooldown\": \"0s\"}";
    rk_fakehost *fh = mk(cfg);
    (void)st;

    rate(fh, T0, 1, "U1", NULL);
    rate(fh, T0 + 10, 5, "U1", NULL);
    rate(fh, T0 + RK_HOUR, 5, "U1", NULL);           /* first exactly 1h old */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 0);  /* 1/3 < 0.5 */
    rate(fh, T0 + RK_HOUR, 1, "U1", NULL);           /* 2/4 */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    assert_true(num(nth_of(fh, "unit_ratio", 0), "value") == 0.5);
    rk_fh_free(fh);

    fh = mk(cfg);
    rate(fh, T0, 1, "U1", NULL);
    rate(fh, T0 + 10, 1, "U1", NULL);
    rate(fh, T0 + RK_HOUR + 1, 5, "U1", NULL);       /* first is 1h+1ms old: out */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 0);  /* 2 ratings */
    rate(fh, T0 + RK_HOUR + 2, 5, "U1", NULL);       /* 1/3 */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 0);
    rate(fh, T0 + RK_HOUR + 10, 1, "U1", NULL);      /* T0+10 is exactly 1h old: 2/4 */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    assert_true(num(nth_of(fh, "unit_ratio", 0), "value") == 0.5);
    rk_fh_free(fh);
}

static void test_evidence_cap(void **st)
{
    rk_fakehost *fh = mk("{\"officer_min_bad\": 3, \"cooldown\": \"0s\"}");
    json_t *a;
    char buf[64];
    uint32_t first = 0, last = 0;
    int i;
    (void)st;

    for (i = 0; i < 25; i++) {
        uint32_t s = rate(fh, T0 + i, 1, "U1", "O1");
        if (i == 5) first = s;
        last = s;
    }
    a = nth_of(fh, "officer_repeated", 22);
    assert_true(num(a, "value") == 25.0);
    assert_int_equal(ev_len(a), 20);
    ref_str(buf, sizeof(buf), T0 + 5, first);
    assert_string_equal(ev_at(a, 0), buf);
    ref_str(buf, sizeof(buf), T0 + 24, last);
    assert_string_equal(ev_at(a, 19), buf);
    rk_fh_free(fh);
}

/* A fixed mixed sequence: officers O1..O3, units U1..U2, over 3 days. */
static void drive(rk_fakehost *fh, int from, int to)
{
    static const char *const units[] = { "U1", "U2", NULL };
    static const char *const offs[] = { "O1,O2", "O2,O3", "O3,O1" };
    int i;
    for (i = from; i < to; i++)
        rate(fh, T0 + (int64_t)i * 3 * RK_HOUR, (i * 7) % 5 + 1, units[i % 3],
             offs[i % 3]);
}

static void test_snapshot_roundtrip(void **st)
{
    const char *cfg = "{\"officer_window\": \"1d\", \"officer_min_bad\": 2, "
                      "\"unit_window\": \"1d\", \"unit_min_ratings\": 3, "
                      "\"unit_max_bad_ratio\": 0.3, \"cooldown\": \"6h\"}";
    rk_fakehost *a = mk(cfg), *b = mk(cfg);
    (void)st;

    g_seq = 1000;
    drive(a, 0, 12);
    g_seq = 1000;
    drive(b, 0, 12);
    assert_true(b->ops->tracked_keys(b->self) > 0);
    assert_int_equal(rk_fh_roundtrip(b, cfg), 0);
    assert_int_equal(b->ops->tracked_keys(b->self), a->ops->tracked_keys(a->self));
    {
        uint32_t save = g_seq;
        drive(a, 12, 30);
        g_seq = save;
        drive(b, 12, 30);
    }
    assert_true(rk_fh_count(a, "officer_repeated") > 0);
    assert_true(rk_fh_count(a, "unit_ratio") > 0);
    assert_true(json_equal(a->alerts, b->alerts));
    /* The snapshot of the restored instance is the same bytes' worth. */
    {
        rk_buf x = {0}, y = {0};
        assert_int_equal(a->ops->snapshot(a->self, &x), 0);
        assert_int_equal(b->ops->snapshot(b->self, &y), 0);
        assert_int_equal(x.len, y.len);
        rk_buf_free(&x);
        rk_buf_free(&y);
    }
    rk_fh_free(a);
    rk_fh_free(b);
}

static void test_restore_corrupt(void **st)
{
    rk_fakehost *fh = mk("{}");
    const char *fail;
    (void)st;

    drive(fh, 0, 10);
    fail = rk_fh_check_corrupt_restore(fh, 0);
    if (fail != NULL)
        fail_msg("%s", fail);
    rk_fh_free(fh);
}

static void test_state_freed(void **st)
{
    rk_fakehost *fh = mk("{\"unit_window\": \"7d\"}");
    (void)st;

    rate(fh, T0, 1, "U1", "O1,O2");
    rate(fh, T0 + RK_DAY, 5, "U2", "O3");       /* good: no officer state */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 4);   /* O1 O2 U1 U2 */
    rk_fh_advance(fh, T0 + 8 * RK_DAY);               /* U1 left its 7d window */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 3);
    rk_fh_advance(fh, T0 + 8 * RK_DAY + 1);           /* U2 too */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 30 * RK_DAY);              /* exactly 30d: kept */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 30 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* A key is freed at the first watermark past its NEWEST item + window: new
 * data pushes its expiry out (the expiry heap re-keys it, never frees it
 * early), and keys expiring at different times go one by one. */
static void test_refreshed_key_not_freed_early(void **st)
{
    rk_fakehost *fh = mk("{\"unit_window\": \"7d\"}");
    (void)st;

    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + 5 * RK_DAY, 5, "U1", NULL);          /* refreshes U1 only */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);   /* O1 U1 */
    rk_fh_advance(fh, T0 + 7 * RK_DAY + 1);           /* U1's first rating left */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 12 * RK_DAY);              /* newest exactly 7d old */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 12 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rate(fh, T0 + 20 * RK_DAY, 1, "U2", "O1");         /* refreshes O1 */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);   /* O1 U2 */
    rk_fh_advance(fh, T0 + 27 * RK_DAY + 1);          /* U2 */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 30 * RK_DAY + 1);          /* O1 was refreshed at 20d */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 50 * RK_DAY);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 50 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* Many officers with staggered expiries, some refreshed: after each step
 * exactly the expired ones are gone. */
static void test_staggered_expiry(void **st)
{
    rk_fakehost *fh = mk("{\"officer_window\": \"3d\"}");
    char name[16];
    int i;
    (void)st;

    for (i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "O%d", 49 - i);
        rate(fh, T0 + i * RK_HOUR, 1, NULL, name);
    }
    /* O0 (rated last, at 49h) again at 49h + 1 ... */
    rate(fh, T0 + 49 * RK_HOUR + 1, 1, NULL, "O0");
    /* ... and O49 (rated at 0h) again at 49h + 2: now it expires last. */
    rate(fh, T0 + 49 * RK_HOUR + 2, 1, NULL, "O49");
    assert_int_equal(fh->ops->tracked_keys(fh->self), 50);
    for (i = 1; i < 49; i++) {
        /* O(49 - i) was rated at i hours */
        rk_fh_advance(fh, T0 + i * RK_HOUR + 3 * RK_DAY);
        assert_int_equal(fh->ops->tracked_keys(fh->self), (size_t)(50 - i + 1));
        rk_fh_advance(fh, T0 + i * RK_HOUR + 3 * RK_DAY + 1);
        assert_int_equal(fh->ops->tracked_keys(fh->self), (size_t)(50 - i));
    }
    rk_fh_advance(fh, T0 + 49 * RK_HOUR + 3 * RK_DAY + 1);  /* O0's first rating only */
    assert_int_equal(fh->ops->tracked_keys(fh->self), 2);
    rk_fh_advance(fh, T0 + 49 * RK_HOUR + 3 * RK_DAY + 2);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 49 * RK_HOUR + 3 * RK_DAY + 3);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

/* A changed window re-keys the expiry of the keys already held: a shorter
 * one frees them sooner, a longer one keeps them longer. A restored state
 * expires like the original. */
static void test_expiry_after_reconfigure_and_restore(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *cfg;
    char err[256];
    (void)st;

    rate(fh, T0, 1, NULL, "O1");
    cfg = json_loads("{\"officer_window\": \"1d\"}", 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    rk_fh_advance(fh, T0 + RK_DAY);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);

    rate(fh, T0 + 2 * RK_DAY, 1, NULL, "O2");
    cfg = json_loads("{\"officer_window\": \"3d\"}", 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    rk_fh_advance(fh, T0 + 3 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    assert_int_equal(rk_fh_roundtrip(fh, "{\"officer_window\": \"3d\"}"), 0);
    rk_fh_advance(fh, T0 + 5 * RK_DAY);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 1);
    rk_fh_advance(fh, T0 + 5 * RK_DAY + 1);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_reconfigure_keeps_state(void **st)
{
    rk_fakehost *fh = mk("{}");
    json_t *cfg;
    char err[256];
    (void)st;

    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + 1, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 0);
    cfg = json_loads("{\"officer_min_bad\": 7, \"bad_score\": 9}", 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "bad_score: expected an integer from 1 to 5");
    json_decref(cfg);
    cfg = json_loads("{\"officer_min_bad\": 2}", 0, NULL);
    assert_int_equal(fh->ops->reconfigure(fh->self, cfg, err, sizeof(err)), 0);
    json_decref(cfg);
    rate(fh, T0 + 2, 5, "U1", "O1");            /* good: nothing */
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 0);
    rate(fh, T0 + 3, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    assert_true(num(nth_of(fh, "officer_repeated", 0), "value") == 3.0);
    assert_true(num(nth_of(fh, "officer_repeated", 0), "threshold") == 2.0);
    rk_fh_free(fh);
}

static void test_other_events_ignored(void **st)
{
    rk_fakehost *fh = mk("{\"officer_min_bad\": 1, \"unit_min_ratings\": 1}");
    static const char *const offs[] = { "O1" };
    rk_event ev;
    rk_event_type t;
    (void)st;

    for (t = RK_EV_INSPECTION_FILED; t < RK_EV__COUNT; t++) {
        if (t == RK_EV_INSPECTION_RATED)
            continue;
        memset(&ev, 0, sizeof(ev));
        ev.type = t;
        ev.ts = T0 + t;
        ev.ref = rk_fh_ref(0, (uint64_t)ev.ts, 1);
        ev.task_id = "T1";
        ev.unit_id = "U1";
        ev.enterprise_id = "E1";
        ev.officers = offs;
        ev.n_officers = 1;
        ev.score = 1;
        assert_int_equal(rk_fh_event(fh, &ev), 0);
    }
    assert_int_equal(rk_fh_count(fh, NULL), 0);
    assert_int_equal(fh->ops->tracked_keys(fh->self), 0);
    rk_fh_free(fh);
}

static void test_bad_configs(void **st)
{
    static const char *const cases[][2] = {
        { "{\"bad_score\": 0}", "bad_score: expected an integer from 1 to 5" },
        { "{\"bad_score\": 6}", "bad_score: expected an integer from 1 to 5" },
        { "{\"bad_score\": \"2\"}", "bad_score: expected an integer from 1 to 5" },
        { "{\"bad_score\": 2.5}", "bad_score: expected an integer from 1 to 5" },
        { "{\"officer_window\": \"0s\"}",
          "officer_window: expected a duration of at least 1ms" },
        { "{\"officer_window\": \"30\"}",
          "officer_window: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"officer_window\": 30}",
          "officer_window: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"officer_min_bad\": 0}",
          "officer_min_bad: expected an integer from 1 to 1000000" },
        { "{\"officer_min_bad\": 1000001}",
          "officer_min_bad: expected an integer from 1 to 1000000" },
        { "{\"unit_window\": \"-1d\"}",
          "unit_window: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"unit_window\": \"0ms\"}", "unit_window: expected a duration of at least 1ms" },
        { "{\"unit_min_ratings\": 0}",
          "unit_min_ratings: expected an integer from 1 to 1000000" },
        { "{\"unit_max_bad_ratio\": 1.5}",
          "unit_max_bad_ratio: expected a number from 0 to 1" },
        { "{\"unit_max_bad_ratio\": -0.1}",
          "unit_max_bad_ratio: expected a number from 0 to 1" },
        { "{\"unit_max_bad_ratio\": \"0.2\"}",
          "unit_max_bad_ratio: expected a number from 0 to 1" },
        { "{\"cooldown\": \"1y\"}",
          "cooldown: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"cooldown\": null}",
          "cooldown: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"" },
        { "{\"bad_scor\": 2}", "bad_scor: unknown key" },
        { "{\"enabled\": true}", "enabled: unknown key" },
    };
    char err[256];
    size_t i;
    (void)st;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_null(rk_fh_new(&rk__det_bad_rating, cases[i][0], err, sizeof(err)));
        assert_string_equal(err, cases[i][1]);
    }
    /* Edges that are accepted. */
    {
        rk_fakehost *fh = mk("{\"bad_score\": 1, \"officer_window\": \"1ms\", "
                             "\"officer_min_bad\": 1000000, \"unit_window\": \"1ms\", "
                             "\"unit_min_ratings\": 1, \"unit_max_bad_ratio\": 1, "
                             "\"cooldown\": \"0s\"}");
        rk_fh_free(fh);
        fh = mk("{\"unit_max_bad_ratio\": 0}");
        rk_fh_free(fh);
    }
}

static void test_ops_table(void **st)
{
    (void)st;
    assert_int_equal(rk__det_bad_rating.abi_major, RK_ABI_MAJOR);
    assert_int_equal(rk__det_bad_rating.abi_minor, RK_ABI_MINOR);
    assert_string_equal(rk__det_bad_rating.name, "bad_rating");
    assert_non_null(rk__det_bad_rating.snapshot);
    assert_non_null(rk__det_bad_rating.restore);
    assert_non_null(rk__det_bad_rating.tracked_keys);
    assert_non_null(rk__det_bad_rating.on_watermark);
}

/* ===================================================================
 * Lifecycle: officer_repeated and unit_ratio resolve once the condition
 * has stopped holding for keep_firing_for (1h in the fake host)
 * =================================================================== */

static json_t *notice_n(rk_fakehost *fh, size_t i) { return rk_fh_notice(fh, i); }

static void test_officer_resolved(void **st)
{
    rk_fakehost *fh = mk("{\"officer_min_bad\": 2, \"officer_window\": \"1h\", "
                         "\"cooldown\": \"0s\"}");
    json_t *n;
    (void)st;

    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + 10 * RK_MINUTE, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    /* T0 leaves the window after T0 + 1h: stopped; resolved 1h later. */
    rk_fh_advance(fh, T0 + 2 * RK_HOUR);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 2 * RK_HOUR + 1);
    assert_int_equal(rk_fh_notice_count(fh, "officer_repeated", "resolved"), 1);
    n = notice_n(fh, 0);
    /* The alert's identity: rule, subject and ts as it fired. */
    assert_int_equal(json_integer_value(json_object_get(n, "ts")), T0 + 10 * RK_MINUTE);
    assert_string_equal(subj(n, "officer_id"), "O1");
    assert_string_equal(subj(n, "unit_id"), "U1");
    assert_int_equal(json_integer_value(json_object_get(n, "change_ts")), T0 + 2 * RK_HOUR);
    assert_non_null(strstr(json_string_value(json_object_get(n, "reason")), "O1"));
    /* Resolved once: later time passing resolves nothing more. */
    rk_fh_advance(fh, T0 + 30 * RK_HOUR);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 1);
    /* It may fire again: a new alert (new ts, so a new id). */
    rate(fh, T0 + 31 * RK_HOUR, 1, "U1", "O1");
    rate(fh, T0 + 31 * RK_HOUR + 1, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 2);
    rk_fh_free(fh);
}

static void test_officer_held_again_moves_resolution(void **st)
{
    rk_fakehost *fh = mk("{\"officer_min_bad\": 2, \"officer_window\": \"1h\", "
                         "\"cooldown\": \"24h\"}");
    (void)st;
    rk_fh_language(fh, "en");
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + 10 * RK_MINUTE, 1, "U1", "O1");
    /* Stopped after T0 + 1h; at T0 + 1h05 it holds again (T0+10m and the
     * new one; the alert is held back by the cooldown): it now stops after
     * T0 + 1h10m, so nothing is resolved at T0 + 2h. */
    rate(fh, T0 + 65 * RK_MINUTE, 1, "U1", "O1");
    assert_int_equal(rk_fh_count(fh, "officer_repeated"), 1);
    rk_fh_advance(fh, T0 + 2 * RK_HOUR + 1);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 130 * RK_MINUTE + 1);
    assert_int_equal(rk_fh_notice_count(fh, "officer_repeated", "resolved"), 1);
    assert_string_equal(json_string_value(json_object_get(notice_n(fh, 0), "reason")),
                        "Officer O1 of unit U1 has had fewer than 2 bad ratings in the last hour "
                        "for 1 hour.");
    rk_fh_free(fh);
}

static void test_unit_ratio_resolved_by_dilution(void **st)
{
    rk_fakehost *fh = mk("{\"unit_min_ratings\": 2, \"unit_max_bad_ratio\": 0.5, "
                         "\"cooldown\": \"0s\"}");
    (void)st;
    rate(fh, T0, 1, "U1", NULL);
    rate(fh, T0 + 1, 1, "U1", NULL);              /* 2/2: fires (and at T0 + 1) */
    assert_int_equal(rk_fh_count(fh, "unit_ratio"), 1);
    rate(fh, T0 + 2, 5, "U1", NULL);              /* 2/3 still holds */
    rate(fh, T0 + 3, 5, "U1", NULL);              /* 2/4 still holds */
    rate(fh, T0 + 4, 5, "U1", NULL);              /* 2/5: stopped at T0 + 4 */
    rk_fh_advance(fh, T0 + 4 + RK_HOUR);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 0);
    rk_fh_advance(fh, T0 + 5 + RK_HOUR);
    /* Both open alerts of the unit (T0 + 1 fired, T0 + 2 .. T0 + 3 too). */
    assert_int_equal(rk_fh_notice_count(fh, "unit_ratio", "resolved"),
                     rk_fh_count(fh, "unit_ratio"));
    assert_int_equal(json_integer_value(json_object_get(notice_n(fh, 0), "change_ts")),
                     T0 + 4 + RK_HOUR);
    rk_fh_free(fh);
}

static void test_open_alerts_survive_snapshot(void **st)
{
    const char *cfg = "{\"officer_min_bad\": 2, \"officer_window\": \"1h\"}";
    rk_fakehost *fh = mk(cfg);
    const char *fail;
    (void)st;
    rate(fh, T0, 1, "U1", "O1");
    rate(fh, T0 + 1, 1, "U2", "O1");
    /* a snapshot with open alerts: corrupt copies are refused or survived */
    fail = rk_fh_check_corrupt_restore(fh, 0);
    if (fail != NULL)
        fail_msg("%s", fail);
    assert_int_equal(rk_fh_roundtrip(fh, cfg), 0);
    rk_fh_advance(fh, T0 + 3 * RK_HOUR);
    assert_int_equal(rk_fh_notice_count(fh, "officer_repeated", "resolved"), 1);
    assert_string_equal(subj(notice_n(fh, 0), "unit_id"), "U2");
    rk_fh_free(fh);
}

/* What one open alert costs: printed, and bounded (64 bytes per open
 * alert, beside its key's one record). */
static void test_open_alert_memory(void **st)
{
    rk__openset set;
    size_t per = sizeof(rk__open_alert), keyrec = sizeof(rk__openrec);
    (void)st;
    rk__open_init(&set);
    assert_int_equal(rk__open_add(&set, "U1", T0, NULL), 0);
    assert_int_equal(rk__open_add(&set, "U1", T0 + 1, NULL), 0);
    assert_int_equal(rk__open_count(&set), 2);
    rk__open_clear(&set);
    printf("lifecycle memory: %zu bytes per open alert (+ its share of the interned "
           "subject strings beside the key: test-ttl prints each rule's), "
           "%zu bytes per key with open alerts (+ its map entry); the alerts.open_ttl "
           "timer of every alert until it passes: %zu bytes + its key (detector name + "
           "33 bytes, malloc'ed)\n", per, keyrec, sizeof(rk__timer));
    assert_true(per <= 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_table),
        cmocka_unit_test(test_bad_rating_rule),
        cmocka_unit_test(test_bad_score_config),
        cmocka_unit_test(test_officer_repeated),
        cmocka_unit_test(test_officer_window_boundary),
        cmocka_unit_test(test_officer_cooldown),
        cmocka_unit_test(test_missing_unit_or_officers),
        cmocka_unit_test(test_duplicate_officer_counted_once),
        cmocka_unit_test(test_unit_ratio),
        cmocka_unit_test(test_unit_ratio_defaults),
        cmocka_unit_test(test_unit_window),
        cmocka_unit_test(test_evidence_cap),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_restore_corrupt),
        cmocka_unit_test(test_state_freed),
        cmocka_unit_test(test_refreshed_key_not_freed_early),
        cmocka_unit_test(test_staggered_expiry),
        cmocka_unit_test(test_expiry_after_reconfigure_and_restore),
        cmocka_unit_test(test_reconfigure_keeps_state),
        cmocka_unit_test(test_other_events_ignored),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_officer_resolved),
        cmocka_unit_test(test_officer_held_again_moves_resolution),
        cmocka_unit_test(test_unit_ratio_resolved_by_dilution),
        cmocka_unit_test(test_open_alerts_survive_snapshot),
        cmocka_unit_test(test_open_alert_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
