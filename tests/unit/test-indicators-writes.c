/* tests/unit/test-indicators-writes.c - what the indicators module gives
 * its writer (rk__ind_collect): the final figures of a month or quarter
 * that leaves the kept periods between two writes (pushed out by a newer
 * one, or left behind by the watermark), taken again after a failed
 * write, none in a replay; no hash taken twice unchanged; and the region
 * a unit's hashes carry. */
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
#define MAXH 64

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
    s.tz_offset_s = TZ;
    return rk__ind_new(&s);
}

static const char *const O1[] = {"O1"};

static void file(rk__ind *ind, const char *task, const char *unit, const char *region,
                 const char *planned)
{
    rk_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_INSPECTION_FILED;
    ev.task_id = task;
    ev.unit_id = unit;
    ev.enterprise_id = "E1";
    ev.officers = O1;
    ev.n_officers = 1;
    ev.region = region;
    ev.planned_at = t(planned);
    ev.ts = ev.planned_at - H;
    assert_int_equal(rk__ind_event(ind, &ev), 0);
}

/* What one collect gave: "scope:key:label" -> filings and region. */
typedef struct taken {
    size_t n;
    char name[MAXH][64];
    char filings[MAXH][24];
    char region[MAXH][16];
} taken;

static void take_cb(const rk__ind_hash *h, void *ud)
{
    taken *tk = ud;
    size_t i;
    assert_true(tk->n < MAXH);
    snprintf(tk->name[tk->n], sizeof(tk->name[0]), "%s:%s:%s", rk__ind_scope_names[h->scope],
             h->key, h->label);
    for (i = 0; i < h->nf; i++)
        if (strcmp(h->f[i], "filings") == 0)
            snprintf(tk->filings[tk->n], sizeof(tk->filings[0]), "%s", h->v[i]);
    snprintf(tk->region[tk->n], sizeof(tk->region[0]), "%s", h->region ? h->region : "-");
    tk->n++;
}

static taken collect(rk__ind *ind)
{
    taken tk;
    bool more = true;
    memset(&tk, 0, sizeof(tk));
    rk__ind_collect(ind, 1000, 0, take_cb, &tk, &more);
    assert_false(more);
    return tk;
}

/* The index of hash name in tk, or -1. */
static int find(const taken *tk, const char *name)
{
    size_t i;
    for (i = 0; i < tk->n; i++)
        if (strcmp(tk->name[i], name) == 0)
            return (int)i;
    return -1;
}

static void has(const taken *tk, const char *name, const char *filings)
{
    int i = find(tk, name);
    if (i < 0)
        fail_msg("no hash %s taken", name);
    assert_string_equal(tk->filings[i], filings);
}

/* July, August and September between two writes: the September event
 * pushes July out of its keys; July's final figures are still taken. */
static void test_final_pushed_out(void **state)
{
    rk__ind *ind = mk();
    taken tk;
    (void)state;
    file(ind, "T1", "U1", "R1", "2025-07-10T10:00:00+08:00");
    file(ind, "T2", "U1", "R1", "2025-07-11T10:00:00+08:00");
    file(ind, "T3", "U1", "R1", "2025-08-10T10:00:00+08:00");
    file(ind, "T4", "U1", "R1", "2025-09-10T10:00:00+08:00");
    rk__ind_advance(ind, t("2025-09-10T11:00:00+08:00"));
    tk = collect(ind);
    has(&tk, "all:all:2025-07", "2");
    has(&tk, "all:all:2025-08", "1");
    has(&tk, "all:all:2025-09", "1");
    has(&tk, "all:all:2025Q3", "4");
    has(&tk, "unit:U1:2025-07", "2");
    has(&tk, "region:R1:2025-07", "2");
    has(&tk, "officer:O1:2025-07", "2");
    /* taken once: a new day marks every key, nothing changed (before
     * T4's scan deadline) */
    rk__ind_advance(ind, t("2025-09-11T09:00:00+08:00"));
    tk = collect(ind);
    assert_int_equal(find(&tk, "all:all:2025-07"), -1);
    assert_int_equal(find(&tk, "all:all:2025-08"), -1);
    assert_int_equal(find(&tk, "all:all:2025-09"), -1);
    assert_true(find(&tk, "all:all:window") >= 0);  /* the window moved */
    rk__ind_free(ind);
}

/* The same for quarters: Q1, Q2 and Q3 between two writes. */
static void test_final_quarter(void **state)
{
    rk__ind *ind = mk();
    taken tk;
    (void)state;
    file(ind, "T1", "U1", "R1", "2025-02-10T10:00:00+08:00");
    file(ind, "T2", "U1", "R1", "2025-05-10T10:00:00+08:00");
    file(ind, "T3", "U1", "R1", "2025-05-11T10:00:00+08:00");
    file(ind, "T4", "U1", "R1", "2025-08-10T10:00:00+08:00");
    rk__ind_advance(ind, t("2025-08-10T11:00:00+08:00"));
    tk = collect(ind);
    has(&tk, "all:all:2025Q1", "1");
    has(&tk, "all:all:2025Q2", "2");
    has(&tk, "all:all:2025Q3", "1");
    has(&tk, "all:all:2025-02", "1");
    has(&tk, "all:all:2025-05", "2");
    has(&tk, "officer:O1:2025Q1", "1");
    rk__ind_free(ind);
}

/* A month changed after its last write and the watermark went two months
 * on before the next one: its final figures are taken, not the earlier. */
static void test_final_left_behind(void **state)
{
    rk__ind *ind = mk();
    taken tk;
    (void)state;
    file(ind, "T1", "U1", "R1", "2025-07-10T10:00:00+08:00");
    rk__ind_advance(ind, t("2025-07-10T11:00:00+08:00"));
    tk = collect(ind);
    has(&tk, "all:all:2025-07", "1");
    file(ind, "T2", "U1", "R1", "2025-07-31T10:00:00+08:00");
    rk__ind_advance(ind, t("2025-09-02T00:00:00+08:00"));
    tk = collect(ind);
    has(&tk, "all:all:2025-07", "2");
    has(&tk, "unit:U1:2025-07", "2");
    has(&tk, "all:all:2025Q3", "2");
    rk__ind_free(ind);
}

/* A failed write (rk__ind_mark_all) takes the final hashes again; a
 * module that nobody writes from (a replay) keeps none. */
static void test_final_again_and_replay(void **state)
{
    rk__ind *ind = mk();
    taken tk;
    (void)state;
    file(ind, "T1", "U1", "R1", "2025-07-10T10:00:00+08:00");
    file(ind, "T2", "U1", "R1", "2025-08-10T10:00:00+08:00");
    file(ind, "T3", "U1", "R1", "2025-09-10T10:00:00+08:00");
    rk__ind_advance(ind, t("2025-09-10T11:00:00+08:00"));
    tk = collect(ind);
    has(&tk, "all:all:2025-07", "1");
    rk__ind_mark_all(ind);
    tk = collect(ind);
    has(&tk, "all:all:2025-07", "1");
    has(&tk, "unit:U1:2025-07", "1");
    tk = collect(ind);                      /* answered: not again */
    assert_int_equal(tk.n, 0);
    rk__ind_free(ind);

    ind = mk();
    rk__ind_keep_finals(ind, false);
    file(ind, "T1", "U1", "R1", "2025-07-10T10:00:00+08:00");
    file(ind, "T2", "U1", "R1", "2025-08-10T10:00:00+08:00");
    file(ind, "T3", "U1", "R1", "2025-09-10T10:00:00+08:00");
    rk__ind_advance(ind, t("2025-09-10T11:00:00+08:00"));
    tk = collect(ind);
    assert_int_equal(find(&tk, "all:all:2025-07"), -1);
    has(&tk, "all:all:2025-08", "1");
    rk__ind_free(ind);
}

/* A unit's hashes carry its region (the event's, else the last seen with
 * the unit); other scopes none; a unit that moves is written again. */
static void test_unit_region(void **state)
{
    rk__ind *ind = mk();
    taken tk;
    int i;
    (void)state;
    file(ind, "T1", "U1", "R1", "2025-09-10T10:00:00+08:00");
    file(ind, "T2", "U2", NULL, "2025-09-10T10:00:00+08:00");
    rk__ind_advance(ind, t("2025-09-10T11:00:00+08:00"));
    tk = collect(ind);
    i = find(&tk, "unit:U1:2025-09");
    assert_true(i >= 0);
    assert_string_equal(tk.region[i], "R1");
    i = find(&tk, "unit:U1:window");
    assert_true(i >= 0);
    assert_string_equal(tk.region[i], "R1");
    i = find(&tk, "unit:U2:2025-09");
    assert_true(i >= 0);
    assert_string_equal(tk.region[i], "-");             /* never seen with one */
    i = find(&tk, "region:R1:2025-09");
    assert_true(i >= 0);
    assert_string_equal(tk.region[i], "-");
    /* U1 moves to R2: its hashes say so */
    file(ind, "T3", "U1", "R2", "2025-09-10T12:00:00+08:00");
    tk = collect(ind);
    i = find(&tk, "unit:U1:2025Q3");
    assert_true(i >= 0);
    assert_string_equal(tk.region[i], "R2");
    assert_string_equal(tk.filings[i], "2");
    /* an event without a region: the last one seen */
    file(ind, "T4", "U1", NULL, "2025-09-10T13:00:00+08:00");
    tk = collect(ind);
    i = find(&tk, "unit:U1:2025-09");
    assert_true(i >= 0);
    assert_string_equal(tk.region[i], "R2");
    rk__ind_free(ind);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_final_pushed_out),
        cmocka_unit_test(test_final_quarter),
        cmocka_unit_test(test_final_left_behind),
        cmocka_unit_test(test_final_again_and_replay),
        cmocka_unit_test(test_unit_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
