/* tests/unit/test-hostopen.c - the daemon's side of the built-in
 * detectors' open alerts (daemon/pipeline/hostopen.c), on an engine of
 * one detector whose output records what it is asked to write.
 *
 *   file     after an emit that raised an alert, file() gives its record
 *            the (rule, key) hash, resolve time and unit; after one held
 *            back by the cooldown, for another rule, or of another
 *            detector, it files nothing (raised out of ts order, no
 *            cooldown, so the index's order is not the ts order)
 *   alerts   a key's alerts of a rule in (ts, id) order with resolve time
 *            and unit, however many fit; set_resolve moves them all
 *   notices  ended as detectors end them (alerts, then per alert in the
 *            ts range prime, emit the notice, forget): each goes out under
 *            its open alert's id though its subject has no unit, in (ts,
 *            id) order, with the reason, change_ts and evidence, and its
 *            record leaves the store; the others stay; a rule never seen
 *            ends nothing; a prime is used up by one emit: a second
 *            notice, not primed, goes out under its subject's id
 *   forget   of two alerts of one key and ts, the one whose id is given
 *            leaves the store without a notice, the other stays
 *   let go   the key's alerts are no longer found by the key but stay
 *            open, found by their id: a notice emitted for one ends it */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/engine_int.h"

#define T0 INT64_C(1740793800000)

typedef struct seen {
    char id[33], status[16], unit[32], reason[32];
    int64_t ts, change_ts;
    size_t n_evidence;
} seen;

static seen g_alerts[16], g_notices[16];
static size_t g_na, g_nn;

static int cap_alert(rk__engine *e, const char *id, const char *legacy, const char *det,
                     const rk_alert *a, rk_severity sev, int64_t now_wall)
{
    (void)e; (void)legacy; (void)det; (void)sev; (void)now_wall;
    assert_true(g_na < 16);
    snprintf(g_alerts[g_na].id, sizeof(g_alerts[0].id), "%s", id);
    g_alerts[g_na++].ts = a->ts;
    return 1;
}

static int cap_notice(rk__engine *e, const char *id, const char *det, const rk_alert *a,
                      const char *status, int64_t now_wall)
{
    seen *s = &g_notices[g_nn++];
    (void)e; (void)now_wall;
    assert_true(g_nn <= 16);
    assert_string_equal(det, "tdet");
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->status, sizeof(s->status), "%s", status);
    snprintf(s->unit, sizeof(s->unit), "%s", a->subject.unit_id ? a->subject.unit_id : "");
    snprintf(s->reason, sizeof(s->reason), "%s", a->reason ? a->reason : "");
    s->ts = a->ts;
    s->change_ts = a->change_ts;
    s->n_evidence = a->n_evidence;
    return 1;
}

static const rk__output cap_out = {cap_alert, cap_notice, NULL, NULL};

static const rk_detector_ops td_ops = {
    .abi_major = RK_ABI_MAJOR, .abi_minor = RK_ABI_MINOR, .name = "tdet",
};

typedef struct fixture {
    rk__engine *e;
    rk__det d[2];
    rk__det *dets[2];
} fixture;

static void fx_init(fixture *f)
{
    unsigned i;
    memset(f, 0, sizeof(*f));
    f->e = calloc(1, sizeof(*f->e));
    assert_non_null(f->e);
    for (i = 0; i < 2; i++) {
        f->d[i].name = f->d[i].alert_name = (char *)(i == 0 ? "tdet" : "other");
        f->d[i].ops = &td_ops;
        f->d[i].severity = -1;
        f->d[i].host.open = &rk__host_open_ops;
        f->d[i].host.eng = f->e;
        f->d[i].host.idx = i;
        f->dets[i] = &f->d[i];
    }
    f->e->reg.dets = f->dets;
    f->e->reg.n = 2;
    f->e->out = &cap_out;
    rk_map_init(&f->e->alert_counts);
    rk__init_api(&f->e->api);
    g_na = g_nn = 0;
}

static void fx_free(fixture *f)
{
    unsigned i;
    for (i = 0; i < 2; i++)
        rk__free_cooldowns(&f->d[i]);
    rk_map_clear(&f->e->alert_counts, free);
    rk__ostore_free(&f->e->open);
    free(f->e);
}

static int raise_alert(fixture *f, unsigned det, const char *rule, const char *unit, int64_t ts)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.ts = ts;
    a.subject.unit_id = unit;
    a.cooldown = strcmp(unit, "u5") == 0 ? 60000 : 0;
    a.summary = "s";
    return f->e->api.emit((rk_host *)&f->d[det].host, &a);
}

static int file_it(fixture *f, unsigned det, const char *key)
{
    rk_host *h = (rk_host *)&f->d[det].host;
    return rk__open_ops_of(h)->file(h, "r", key, T0 + 99, key);
}

/* End rule's alerts of key with ts in [from, to] the way a detector does
 * (detectors/lifecycle.c): for each, in (ts, id) order, prime the host with
 * its id, emit the notice - its subject without the unit, so that only the
 * prime gives it the open alert's id - and forget it. How many, or -1. */
static int end_it(fixture *f, const char *rule, const char *key, int64_t from, int64_t to,
                  rk_alert_status status)
{
    rk_host *h = (rk_host *)&f->d[0].host;
    const rk__open_ops *ops = rk__open_ops_of(h);
    rk_entry_ref ref = {0, 1, 2};
    rk__open_seen al[8];
    int n, i, ended = 0;

    n = ops->alerts(h, rule, key, al, 8);
    if (n < 0 || n > 8)
        return -1;
    for (i = 0; i < n; i++) {
        rk_alert a;
        if (al[i].ts < from || al[i].ts > to)
            continue;
        memset(&a, 0, sizeof(a));
        a.rule = rule;
        a.ts = al[i].ts;
        a.status = status;
        a.reason = "why";
        a.change_ts = T0 + 500000;
        a.evidence = &ref;
        a.n_evidence = 1;
        ops->prime(h, al[i].id, al[i].ts);
        if (f->e->api.emit(h, &a) != 1 ||
            ops->forget(h, rule, key, al[i].ts, al[i].ts, al[i].id) < 0)
            return -1;
        ended++;
    }
    return ended;
}

static void test_file_end(void **st)
{
    fixture f;
    uint32_t it = 0;
    int slot;
    (void)st;
    fx_init(&f);
    assert_int_equal(raise_alert(&f, 0, "r", "u1", T0 + 140000), 1);
    assert_int_equal(file_it(&f, 0, "u1"), 0);
    assert_int_equal(raise_alert(&f, 0, "r", "u1", T0), 1);
    assert_int_equal(file_it(&f, 0, "u1"), 0);
    assert_int_equal(raise_alert(&f, 0, "r", "u1", T0 + 70000), 1);
    assert_int_equal(file_it(&f, 0, "u1"), 0);
    assert_int_equal(raise_alert(&f, 0, "r", "u2", T0 + 5), 1);
    assert_int_equal(file_it(&f, 0, "u2"), 0);
    /* held back by its cooldown: nothing to file */
    assert_int_equal(raise_alert(&f, 0, "r", "u5", T0), 1);
    assert_int_equal(raise_alert(&f, 0, "r", "u5", T0 + 1000), 0);
    assert_int_equal(file_it(&f, 0, "u5"), -1);
    /* another rule; another detector's alert */
    assert_int_equal(raise_alert(&f, 0, "q", "u3", T0), 1);
    assert_int_equal(file_it(&f, 0, "u3"), -1);
    assert_int_equal(raise_alert(&f, 1, "r", "u4", T0), 1);
    assert_int_equal(file_it(&f, 0, "u4"), -1);
    assert_int_equal(g_na, 7);
    assert_int_equal(rk__ostore_count(&f.e->open), 7);
    slot = rk__ostore_next_key(&f.e->open, 0, rk__ostore_rule_keyhash("r", "u2"), &it);
    assert_true(slot >= 0);
    assert_int_equal(rk__ostore_at(&f.e->open, (uint32_t)slot)->resolve_at, T0 + 99);
    /* u1's three in ts order, with their resolve time and unit; moved */
    {
        rk_host *h = (rk_host *)&f.d[0].host;
        rk__open_seen seen3[3];
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "u1", seen3, 2), 3);
        assert_int_equal(seen3[0].ts, T0);
        assert_int_equal(seen3[1].ts, T0 + 70000);
        assert_int_equal(seen3[1].resolve_at, T0 + 99);
        assert_string_equal(seen3[1].unit, "u1");
        assert_int_equal(rk__open_ops_of(h)->set_resolve(h, "r", "u1", T0 + 7), 3);
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "u1", seen3, 3), 3);
        assert_int_equal(seen3[2].ts, T0 + 140000);
        assert_int_equal(seen3[2].resolve_at, T0 + 7);
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "q", "u1", seen3, 3), 0);
        assert_int_equal(rk__open_ops_of(h)->set_resolve(h, "zzz", "u1", 1), 0);
    }
    /* a rule never seen, a key without alerts: nothing */
    assert_int_equal(end_it(&f, "zzz", "u1", INT64_MIN, INT64_MAX, RK_ALERT_RESOLVED), 0);
    assert_int_equal(end_it(&f, "r", "u9", INT64_MIN, INT64_MAX, RK_ALERT_RESOLVED), 0);
    assert_int_equal(g_nn, 0);
    /* retract u1's alert of T0 + 70 s only */
    assert_int_equal(end_it(&f, "r", "u1", T0 + 70000, T0 + 70000, RK_ALERT_RETRACTED), 1);
    assert_int_equal(g_nn, 1);
    assert_string_equal(g_notices[0].status, "retracted");
    assert_string_equal(g_notices[0].id, g_alerts[2].id);
    assert_int_equal(g_notices[0].ts, T0 + 70000);
    assert_string_equal(g_notices[0].unit, "");     /* its subject: the id's */
    assert_string_equal(g_notices[0].reason, "why");
    assert_int_equal(g_notices[0].change_ts, T0 + 500000);
    assert_int_equal(g_notices[0].n_evidence, 1);
    /* resolve the rest of u1: in ts order */
    assert_int_equal(end_it(&f, "r", "u1", INT64_MIN, INT64_MAX, RK_ALERT_RESOLVED), 2);
    assert_int_equal(g_nn, 3);
    assert_string_equal(g_notices[1].id, g_alerts[1].id);
    assert_int_equal(g_notices[1].ts, T0);
    assert_string_equal(g_notices[2].id, g_alerts[0].id);
    assert_string_equal(g_notices[2].status, "resolved");
    assert_int_equal(end_it(&f, "r", "u1", INT64_MIN, INT64_MAX, RK_ALERT_RESOLVED), 0);
    assert_int_equal(g_nn, 3);
    assert_int_equal(rk__ostore_count(&f.e->open), 4);       /* u2, u5, q's, other's */
    assert_int_equal(f.e->stats.notices_emitted, 3);
    {                               /* a prime is used up by one emit */
        rk_host *h = (rk_host *)&f.d[0].host;
        rk__open_seen one[1];
        char subj_id[33];
        rk_alert a;
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "u2", one, 1), 1);
        rk__open_ops_of(h)->prime(h, one[0].id, one[0].ts);
        memset(&a, 0, sizeof(a));
        a.rule = "r";
        a.ts = T0 + 5;
        a.status = RK_ALERT_RESOLVED;
        a.reason = "why";
        assert_int_equal(f.e->api.emit(h, &a), 1);
        assert_int_equal(f.e->api.emit(h, &a), 1);
        assert_int_equal(g_nn, 5);
        assert_string_equal(g_notices[3].id, g_alerts[3].id);       /* u2's */
        rk__alert_id("tdet", &a, NULL, subj_id);
        assert_string_equal(g_notices[4].id, subj_id);
        assert_string_not_equal(g_notices[4].id, g_alerts[3].id);
        assert_int_equal(rk__open_ops_of(h)->forget(h, "r", "u2", a.ts, a.ts, one[0].id), 1);
        assert_int_equal(rk__ostore_count(&f.e->open), 3);   /* u5, q's, other's */
    }
    fx_free(&f);
}

static void test_forget_let_go(void **st)
{
    fixture f;
    rk_host *h;
    rk__open_seen two[2];
    rk_alert a;
    (void)st;
    fx_init(&f);
    h = (rk_host *)&f.d[0].host;
    assert_int_equal(raise_alert(&f, 0, "r", "u1", T0), 1);
    assert_int_equal(rk__open_ops_of(h)->file(h, "r", "k", INT64_MAX, "u1"), 0);
    assert_int_equal(raise_alert(&f, 0, "r", "u2", T0), 1);
    assert_int_equal(rk__open_ops_of(h)->file(h, "r", "k", INT64_MAX, "u2"), 0);
    assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "k", two, 2), 2);
    {                               /* forget the one of u2 by its id */
        const unsigned char *id = strcmp(two[0].unit, "u2") == 0 ? two[0].id : two[1].id;
        unsigned char keep[16];
        memcpy(keep, id, sizeof(keep));
        assert_int_equal(rk__open_ops_of(h)->forget(h, "r", "k", T0, T0, keep), 1);
    }
    assert_int_equal(g_nn, 0);
    assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "k", two, 2), 1);
    assert_string_equal(two[0].unit, "u1");
    /* let go: open, found by id, not by key */
    assert_int_equal(rk__open_ops_of(h)->let_go(h, "r", "k", INT64_MIN, INT64_MAX), 1);
    assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "k", two, 2), 0);
    assert_int_equal(rk__ostore_count(&f.e->open), 1);
    assert_true(rk__ostore_find(&f.e->open, T0, 0, g_alerts[0].id) >= 0);
    memset(&a, 0, sizeof(a));
    a.rule = "r";
    a.ts = T0;
    a.subject.unit_id = "u1";
    a.status = RK_ALERT_RESOLVED;
    a.reason = "why";
    assert_true(f.e->api.emit(h, &a) >= 0);
    assert_int_equal(g_nn, 1);
    assert_int_equal(rk__ostore_count(&f.e->open), 0);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_end),
        cmocka_unit_test(test_forget_let_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
