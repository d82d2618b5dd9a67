/* tests/integration/test-indicators-months.c - a quarter drained in one
 * fast backlog leaves every month's hashes in Redis: filings of July,
 * August and September 2025 (3, 5 and 7, for two units in two regions)
 * are in the streams before riskd starts, so riskd passes through July
 * and August within one write interval (it keeps the current and the
 * previous month only); riskd:ind:<scope>:<key>:<month> must still exist
 * for each month with its counts (the final figures written when a month
 * leaves the kept ones). A unit's hashes carry its region (field region);
 * after a SIGKILL, with the hashes deleted, the restarted riskd writes
 * them again with the region from its restored state.
 *
 * test_previous_keeps_open: a month's open alert counts stay in its hashes
 * once it is the previous month, through its final figures and a late
 * event that writes it again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

typedef struct fixture {
    it_env env;
} fixture;

static const int per_month[3] = {3, 5, 7};

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

/* Filing i of a month goes to U1 (R1) when even, U2 (R2) when odd. */
static int unit_count(int month, int unit)
{
    int n = per_month[month], i, c = 0;
    for (i = 0; i < n; i++)
        c += i % 2 == unit - 1;
    return c;
}

static void write_quarter(fixture *f)
{
    char buf[512];
    int m, i, t = 0;
    for (m = 0; m < 3; m++)
        for (i = 0; i < per_month[m]; i++) {
            snprintf(buf, sizeof(buf), "{\"type\":\"inspection.filed\","
                     "\"ts\":\"2025-%02d-%02dT09:00:00+08:00\",\"task_id\":\"T%d\","
                     "\"unit_id\":\"U%d\",\"officers\":[\"O%d\"],\"enterprise_id\":\"E%d\","
                     "\"region\":\"R%d\"}", 7 + m, 3 + 3 * i, t++, 1 + i % 2, 1 + i % 2, i,
                     1 + i % 2);
            it_xadd(f->env.c, "enforce:scan", buf, NULL, 0);
        }
    it_xadd(f->env.c, "enforce:scan",
            "{\"type\":\"clock.tick\",\"ts\":\"2025-09-30T12:00:00+08:00\"}", NULL, 0);
    it_xadd(f->env.c, "enforce:case",
            "{\"type\":\"clock.tick\",\"ts\":\"2025-09-30T12:00:00+08:00\"}", NULL, 0);
}

/* HGET key field as an int, -1 when absent. */
static int hget_int(fixture *f, const char *key, const char *field)
{
    redisReply *r = it_cmd(f->env.c, "HGET %s %s", key, field);
    int v = r->type == REDIS_REPLY_STRING ? atoi(r->str) : -1;
    freeReplyObject(r);
    return v;
}

static bool hget_is(fixture *f, const char *key, const char *field, const char *want)
{
    redisReply *r = it_cmd(f->env.c, "HGET %s %s", key, field);
    bool ok = r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
    freeReplyObject(r);
    return ok;
}

/* Every month's hashes of all, R1, R2, U1, U2 hold their filings
 * (from: the first month to look at). */
static bool months_written(fixture *f, int from)
{
    char key[128];
    int m, u;
    for (m = from; m < 3; m++) {
        snprintf(key, sizeof(key), "riskd:ind:all:all:2025-%02d", 7 + m);
        if (hget_int(f, key, "filings") != per_month[m])
            return false;
        for (u = 1; u <= 2; u++) {
            snprintf(key, sizeof(key), "riskd:ind:region:R%d:2025-%02d", u, 7 + m);
            if (hget_int(f, key, "filings") != unit_count(m, u))
                return false;
            snprintf(key, sizeof(key), "riskd:ind:unit:U%d:2025-%02d", u, 7 + m);
            if (hget_int(f, key, "filings") != unit_count(m, u))
                return false;
        }
    }
    return hget_int(f, "riskd:ind:all:all:2025Q3", "filings") == 3 + 5 + 7;
}

static bool all_months(void *arg)
{
    return months_written(arg, 0);
}

/* After the restart: the months riskd still keeps (August, September). */
static bool kept_months(void *arg)
{
    return months_written(arg, 1);
}

static void show(fixture *f)
{
    redisReply *r = it_cmd(f->env.c, "KEYS riskd:ind:*");
    size_t i;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        fprintf(stderr, "  %s filings=%d\n", r->element[i]->str,
                hget_int(f, r->element[i]->str, "filings"));
    freeReplyObject(r);
}

static void regions_are(fixture *f, int from)
{
    char key[128], want[16];
    int m, u;
    for (m = from; m < 3; m++)
        for (u = 1; u <= 2; u++) {
            snprintf(key, sizeof(key), "riskd:ind:unit:U%d:2025-%02d", u, 7 + m);
            snprintf(want, sizeof(want), "R%d", u);
            if (!hget_is(f, key, "region", want))
                fail_msg("%s: region is not %s", key, want);
        }
    if (!hget_is(f, "riskd:ind:unit:U1:2025Q3", "region", "R1") ||
        !hget_is(f, "riskd:ind:unit:U2:window", "region", "R2"))
        fail_msg("a unit's quarter or window hash does not name its region");
    /* only a unit's hashes carry one */
    assert_int_equal(it_int(f->env.c, "HEXISTS riskd:ind:region:R1:2025-09 region"), 0);
    assert_int_equal(it_int(f->env.c, "HEXISTS riskd:ind:all:all:2025-09 region"), 0);
}

static void test_backlog_quarter(void **state)
{
    fixture *f = *state;
    redisReply *k;
    size_t i;

    write_quarter(f);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, "{}"), 0);
    if (!it_wait_until(all_months, f, 30000)) {
        show(f);
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not write every month of the quarter with its filings");
    }
    regions_are(f, 0);
    /* July's hashes were first written after July ended: open_* at 0 */
    assert_int_equal(hget_int(f, "riskd:ind:all:all:2025-07", "open_critical"), 0);
    assert_int_equal(hget_int(f, "riskd:ind:unit:U1:2025-07", "open_info"), 0);

    /* restart: the hashes come back from the restored state, regions too */
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 10000);
    k = it_cmd(f->env.c, "KEYS riskd:ind:*");
    for (i = 0; k->type == REDIS_REPLY_ARRAY && i < k->elements; i++)
        freeReplyObject(it_cmd(f->env.c, "DEL %s", k->element[i]->str));
    freeReplyObject(k);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, "{}"), 0);
    if (!it_wait_until(kept_months, f, 30000)) {
        show(f);
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("the restarted riskd did not write the months it keeps");
    }
    regions_are(f, 1);
}

typedef struct want_field {
    fixture *f;
    const char *key, *field;
    int v;
} want_field;

static bool field_is(void *arg)
{
    want_field *w = arg;
    return hget_int(w->f, w->key, w->field) == w->v;
}

static void wait_field(fixture *f, const char *key, const char *field, int v)
{
    want_field w = {f, key, field, v};
    if (!it_wait_until(field_is, &w, 30000)) {
        show(f);
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("%s %s is %d, not %d", key, field, hget_int(f, key, field), v);
    }
}

static void filed(fixture *f, const char *task, const char *day)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"type\":\"inspection.filed\",\"ts\":\"%sT09:00:00+08:00\","
             "\"task_id\":\"%s\",\"unit_id\":\"U1\",\"officers\":[\"O1\"],"
             "\"enterprise_id\":\"E1\",\"region\":\"R1\"}", day, task);
    it_xadd(f->env.c, "enforce:scan", buf, NULL, 0);
}

static void test_previous_keeps_open(void **state)
{
    fixture *f = *state;
    static const char sep[] = "riskd:ind:unit:U1:2025-09";

    filed(f, "S1", "2025-09-10");
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, "{}"), 0);
    wait_field(f, sep, "filings", 1);
    /* an open critical alert of U1 while September is current */
    freeReplyObject(it_cmd(f->env.c, "HSET riskd:open a1 %s",
                           "{\"id\":\"a1\",\"severity\":\"critical\","
                           "\"subject\":{\"unit_id\":\"U1\"}}"));
    wait_field(f, sep, "open_critical", 1);
    /* October: September is the previous month; counted in October's
     * hashes (a count after the month changed), then a second alert */
    filed(f, "S2", "2025-10-02");
    wait_field(f, "riskd:ind:unit:U1:2025-10", "filings", 1);
    wait_field(f, "riskd:ind:unit:U1:2025-10", "open_critical", 1);
    freeReplyObject(it_cmd(f->env.c, "HSET riskd:open a2 %s",
                           "{\"id\":\"a2\",\"severity\":\"critical\","
                           "\"subject\":{\"unit_id\":\"U1\"}}"));
    wait_field(f, "riskd:ind:unit:U1:2025-10", "open_critical", 2);
    assert_int_equal(hget_int(f, sep, "open_critical"), 1);
    /* a late September filing writes September again: its count stays */
    filed(f, "S3", "2025-09-20");
    wait_field(f, sep, "filings", 2);
    assert_int_equal(hget_int(f, sep, "open_critical"), 1);
    assert_int_equal(hget_int(f, sep, "open_warning"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backlog_quarter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_keeps_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
