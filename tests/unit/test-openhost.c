/* tests/unit/test-openhost.c - what a built-in detector asks of the open
 * alerts its host keeps (internal.h rk__open_ops), through the fake host,
 * which keeps them in the daemon's store (openstore.c) as hostopen.c does.
 * A small detector of this file raises an alert of rule "r" per filing
 * (cooldown 60 s per unit) and files it under its unit; a scan resolves
 * the unit's alerts, a rating retracts the unit's alert of ts - 1000, the
 * way built-in detectors end them (detectors/lifecycle.c): per alert of
 * the key in the ts range, in (ts, id) order, prime the host with its id,
 * emit the notice with a subject that names no unit (so only the prime
 * gives it the alert's id), forget it. A rating of task "twice" then
 * emits the same notice once more, not primed.
 *
 *   file        the alert just raised is filed under (rule, key) with its
 *               resolve time and unit; after a raise held back by the
 *               cooldown, or for another rule, nothing is filed
 *   alerts      a key's alerts of a rule in ts order with resolve time and
 *               unit; set_resolve moves every one's
 *   end         only the key's alerts of the rule in the ts range end, each
 *               with one notice carrying its alert's id and subject, the
 *               reason, change_ts and evidence count, in ts order; the
 *               others stay open; ending again ends nothing
 *   prime       is used up by one emit: a second notice, not primed, goes
 *               out under its subject's id
 *   notices     a notice emitted the plugin way (emit with a status) ends
 *               its alert while it is not filed (found by its id) */
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

typedef struct tdet {
    const rk_host_api *api;
    rk_host *host;
    int filed[16];                  /* file()'s answers, in order */
    int nfiled;
    int ended;                      /* td_end's last answer */
} tdet;

static void *td_create(const rk_host_api *api, rk_host *host, const json_t *cfg, char *err,
                       size_t errlen)
{
    tdet *t = calloc(1, sizeof(*t));
    (void)cfg; (void)err; (void)errlen;
    if (t != NULL) {
        t->api = api;
        t->host = host;
    }
    return t;
}

static void td_destroy(void *self) { free(self); }

/* End the alerts of "r" filed under ev's unit with ts in [from, to], as
 * detectors/lifecycle.c does: how many, or -1. */
static int td_end(tdet *t, const rk_event *ev, int64_t from, int64_t to,
                  rk_alert_status status, const char *reason)
{
    const rk__open_ops *op = rk__open_ops_of(t->host);
    rk__open_seen al[16];
    rk_alert a;
    int n, i, ended = 0;

    n = op->alerts(t->host, "r", ev->unit_id, al, 16);
    if (n < 0 || n > 16)
        return -1;
    for (i = 0; i < n; i++) {
        if (al[i].ts < from || al[i].ts > to)
            continue;
        memset(&a, 0, sizeof(a));
        a.rule = "r";
        a.ts = al[i].ts;            /* no unit: the prime gives the id */
        a.status = status;
        a.reason = reason;
        a.change_ts = ev->ts;
        a.evidence = &ev->ref;
        a.n_evidence = 1;
        op->prime(t->host, al[i].id, al[i].ts);
        if (t->api->emit(t->host, &a) < 0 ||
            op->forget(t->host, "r", ev->unit_id, al[i].ts, al[i].ts, al[i].id) < 0)
            return -1;
        ended++;
        if (ev->task_id != NULL && strcmp(ev->task_id, "twice") == 0 &&
            t->api->emit(t->host, &a) < 0)
            return -1;              /* the same notice again, not primed */
    }
    return ended;
}

static int td_on_event(void *self, const rk_event *ev)
{
    tdet *t = self;
    const rk__open_ops *op = rk__open_ops_of(t->host);
    rk_alert a;
    memset(&a, 0, sizeof(a));
    switch (ev->type) {
    case RK_EV_INSPECTION_FILED:
        a.rule = ev->task_id != NULL && strcmp(ev->task_id, "other") == 0 ? "other" : "r";
        a.ts = ev->ts;
        a.subject.unit_id = ev->unit_id;
        a.cooldown = 60000;
        a.summary = "s";
        if (t->api->emit(t->host, &a) < 0)
            return -1;
        if (ev->task_id != NULL && strcmp(ev->task_id, "nofile") == 0)
            return 0;               /* as a plugin: not filed */
        if (t->nfiled < 16)
            t->filed[t->nfiled++] = op->file(t->host, "r", ev->unit_id, ev->ts + 5000,
                                             ev->unit_id);
        return 0;
    case RK_EV_INSPECTION_SCANNED:
    case RK_EV_INSPECTION_RATED:
        if (ev->type == RK_EV_INSPECTION_SCANNED)
            t->ended = td_end(t, ev, INT64_MIN, INT64_MAX, RK_ALERT_RESOLVED, "back");
        else
            t->ended = td_end(t, ev, ev->ts - 1000, ev->ts - 1000, RK_ALERT_RETRACTED,
                              "never");
        return t->ended < 0 ? -1 : 0;
    case RK_EV_INSPECTION_REPORTED:
        /* the plugin way: emit the notice with the alert's content */
        a.rule = "r";
        a.ts = ev->ts - 1000;
        a.subject.unit_id = ev->unit_id;
        a.status = RK_ALERT_RETRACTED;
        a.reason = "plugin";
        a.change_ts = ev->ts;
        return t->api->emit(t->host, &a) < 0 ? -1 : 0;
    default:
        return 0;
    }
}

static const rk_detector_ops td_ops = {
    .abi_major = RK_ABI_MAJOR, .abi_minor = RK_ABI_MINOR, .name = "tdet",
    .description = "test", .create = td_create, .destroy = td_destroy,
    .on_event = td_on_event,
};

static int ev(rk_fakehost *fh, rk_event_type type, const char *unit, int64_t ts,
              const char *task)
{
    rk_event e;
    memset(&e, 0, sizeof(e));
    e.type = type;
    e.ts = ts;
    e.unit_id = unit;
    e.task_id = task;
    e.ref = rk_fh_ref(0, (uint64_t)ts, 0);
    return rk_fh_event(fh, &e);
}

static size_t open_count(const rk_fakehost *fh)
{
    return rk__ostore_count(fh->ostore);
}

/* The id the fake host recorded for its i-th alert. */
static const char *alert_id(const rk_fakehost *fh, size_t i)
{
    return json_string_value(json_object_get(rk_fh_alert(fh, i), "id"));
}

static void test_file_and_end(void **st)
{
    char err[256];
    rk_fakehost *fh = rk_fh_new(&td_ops, "{}", err, sizeof(err));
    tdet *t;
    json_t *n;
    uint32_t it = 0;
    int slot;
    (void)st;
    assert_non_null(fh);
    t = fh->self;
    /* u1 at T0, T0 + 70 s, T0 + 140 s (past each cooldown); u2 at T0 + 5 */
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u1", T0, NULL), 0);
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u2", T0 + 5, NULL), 0);
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u1", T0 + 70000, NULL), 0);
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u1", T0 + 140000, NULL), 0);
    /* held back by the cooldown: nothing raised, nothing filed */
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u1", T0 + 150000, NULL), 0);
    /* another rule raised: not filed as "r" */
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u3", T0 + 150000, "other"), 0);
    assert_int_equal(t->nfiled, 6);
    assert_int_equal(t->filed[0], 0);
    assert_int_equal(t->filed[3], 0);
    assert_int_equal(t->filed[4], -1);
    assert_int_equal(t->filed[5], -1);
    assert_int_equal(rk_fh_count(fh, "r"), 4);
    assert_int_equal(open_count(fh), 5);
    /* u2's alert: filed with its resolve time and unit */
    slot = rk__ostore_next_key(fh->ostore, 0, rk__ostore_rule_keyhash("r", "u2"), &it);
    assert_true(slot >= 0);
    assert_int_equal(rk__ostore_at(fh->ostore, (uint32_t)slot)->resolve_at, T0 + 5 + 5000);
    assert_string_equal(rk__ostore_unit_name(fh->ostore,
                                             rk__ostore_at(fh->ostore, (uint32_t)slot)->unit),
                        "u2");
    assert_int_equal(rk__ostore_next_key(fh->ostore, 0, rk__ostore_rule_keyhash("r", "u2"),
                                         &it), -1);
    /* another rule's key hash: not there */
    it = 0;
    assert_int_equal(rk__ostore_next_key(fh->ostore, 0,
                                         rk__ostore_rule_keyhash("other", "u2"), &it), -1);
    /* u1's three, in ts order; their resolve time moved together */
    {
        rk__open_seen sn[4];
        rk_host *h = (rk_host *)(void *)fh;
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "u1", sn, 4), 3);
        assert_int_equal(sn[0].ts, T0);
        assert_int_equal(sn[2].ts, T0 + 140000);
        assert_int_equal(sn[2].resolve_at, T0 + 140000 + 5000);
        assert_string_equal(sn[2].unit, "u1");
        assert_int_equal(rk__open_ops_of(h)->set_resolve(h, "r", "u1", T0 + 1), 3);
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "u1", sn, 4), 3);
        assert_int_equal(sn[0].resolve_at, T0 + 1);
        assert_int_equal(sn[1].resolve_at, T0 + 1);
    }
    /* retract u1's alert of T0 + 70 s */
    assert_int_equal(ev(fh, RK_EV_INSPECTION_RATED, "u1", T0 + 71000, NULL), 0);
    assert_int_equal(t->ended, 1);
    assert_int_equal(rk_fh_notice_count(fh, "r", "retracted"), 1);
    n = rk_fh_notice(fh, 0);
    assert_string_equal(json_string_value(json_object_get(n, "id")), alert_id(fh, 2));
    assert_int_equal(json_integer_value(json_object_get(n, "ts")), T0 + 70000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(n, "subject"),
                                                          "unit_id")), "u1");
    assert_string_equal(json_string_value(json_object_get(n, "reason")), "never");
    assert_int_equal(json_integer_value(json_object_get(n, "change_ts")), T0 + 71000);
    assert_int_equal(json_integer_value(json_object_get(n, "n_evidence")), 1);
    assert_int_equal(open_count(fh), 4);
    /* resolve u1: its other two, in ts order; u2 stays open */
    assert_int_equal(ev(fh, RK_EV_INSPECTION_SCANNED, "u1", T0 + 200000, NULL), 0);
    assert_int_equal(t->ended, 2);
    assert_int_equal(rk_fh_notice_count(fh, "r", "resolved"), 2);
    assert_int_equal(json_integer_value(json_object_get(rk_fh_notice(fh, 1), "ts")), T0);
    assert_int_equal(json_integer_value(json_object_get(rk_fh_notice(fh, 2), "ts")),
                     T0 + 140000);
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 1), "id")),
                        alert_id(fh, 0));
    assert_string_equal(json_string_value(json_object_get(rk_fh_notice(fh, 2), "id")),
                        alert_id(fh, 3));
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            rk_fh_notice(fh, 2), "subject"), "unit_id")), "u1");
    assert_int_equal(open_count(fh), 2);
    {                               /* u2's stays filed */
        rk__open_seen sn[2];
        rk_host *h = (rk_host *)(void *)fh;
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "u2", sn, 2), 1);
        assert_int_equal(sn[0].ts, T0 + 5);
        assert_int_equal(rk__open_ops_of(h)->alerts(h, "r", "u1", sn, 2), 0);
    }
    /* again: nothing left to end */
    assert_int_equal(ev(fh, RK_EV_INSPECTION_SCANNED, "u1", T0 + 210000, NULL), 0);
    assert_int_equal(t->ended, 0);
    assert_int_equal(rk_fh_notice_count(fh, NULL, NULL), 3);
    rk_fh_free(fh);
}

static void test_prime_used_up(void **st)
{
    char err[256];
    rk_fakehost *fh = rk_fh_new(&td_ops, "{}", err, sizeof(err));
    char subj_id[33];
    rk_alert a;
    json_t *n;
    (void)st;
    assert_non_null(fh);
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u7", T0, NULL), 0);
    assert_int_equal(ev(fh, RK_EV_INSPECTION_RATED, "u7", T0 + 1000, "twice"), 0);
    assert_int_equal(((tdet *)fh->self)->ended, 1);
    assert_int_equal(rk_fh_notice_count(fh, "r", "retracted"), 2);
    /* the primed one: the open alert's id and subject */
    n = rk_fh_notice(fh, 0);
    assert_string_equal(json_string_value(json_object_get(n, "id")), alert_id(fh, 0));
    assert_string_equal(json_string_value(json_object_get(json_object_get(n, "subject"),
                                                          "unit_id")), "u7");
    /* the second, not primed: its own subject's id (no unit) */
    memset(&a, 0, sizeof(a));
    a.rule = "r";
    a.ts = T0;
    rk__alert_id("tdet", &a, NULL, subj_id);
    n = rk_fh_notice(fh, 1);
    assert_string_equal(json_string_value(json_object_get(n, "id")), subj_id);
    assert_string_not_equal(subj_id, alert_id(fh, 0));
    assert_null(json_object_get(json_object_get(n, "subject"), "unit_id"));
    assert_int_equal(open_count(fh), 0);
    rk_fh_free(fh);
}

static void test_plugin_notice(void **st)
{
    char err[256];
    rk_fakehost *fh = rk_fh_new(&td_ops, "{}", err, sizeof(err));
    (void)st;
    assert_non_null(fh);
    assert_int_equal(ev(fh, RK_EV_INSPECTION_FILED, "u9", T0, "nofile"), 0);
    assert_int_equal(open_count(fh), 1);
    /* emitted with the alert's content: found by its id, it ends */
    assert_int_equal(ev(fh, RK_EV_INSPECTION_REPORTED, "u9", T0 + 1000, NULL), 0);
    assert_int_equal(rk_fh_notice_count(fh, "r", "retracted"), 1);
    assert_int_equal(open_count(fh), 0);
    rk_fh_free(fh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_and_end),
        cmocka_unit_test(test_prime_used_up),
        cmocka_unit_test(test_plugin_notice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
