/* tests/integration/test-cross.c - the rules across partitions (issue 18,
 * daemon/pipeline/cross.c).
 *
 * The same events - every rule that looks across units tripped by units of
 * both partitions (inspection_frequency repeat, whitelist and multi_unit,
 * discretion's disparity, violation_hotspot, complaint_cluster grouped by
 * enterprise), beside rules of one unit (out_of_benchmark, corrections,
 * uncertified, complaint_cluster by unit) - go
 *
 *  - into the unpartitioned streams, consumed by one riskd: the reference;
 *  - routed by crc32(unit_id) into 2 partitions, consumed by 2 riskd
 *    processes: the partition pipelines and the cross pipeline between them
 *    must write exactly the reference's alert ids and notices, each once;
 *    the evidence of a rule across units names each partition's stream,
 *    and riskctl status shows who holds the cross pipeline's lease;
 *  - the same, with the process holding the cross pipeline killed (SIGKILL)
 *    halfway through the events: the other takes it over (and the
 *    partitions the dead one held), and the alerts are still exactly the
 *    reference's.
 * The sample reference lists (config/samples) are loaded with riskctl. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "itest.h"
#include "internal.h"               /* rk__partition_of: how producers route */

#define NPART 2
#define T0 1740790800000LL          /* 2025-03-01T09:00:00+08:00 */
#define MIN 60000LL
#define HOUR 3600000LL
#define DAY 86400000LL
#define RUN_CFG "\"state\":{\"interval\":\"200ms\",\"lease_ttl\":\"2s\"}," \
                "\"clock\":{\"wall_advance\":false}," \
                "\"detectors\":{\"complaint_cluster\":{\"rules\":[" \
                "{\"group_by\":\"enterprise_id\",\"window\":\"7d\",\"min_count\":3}," \
                "{\"group_by\":\"unit_id\",\"window\":\"7d\",\"min_count\":3}]}}"

/* ===================================================================
 * The events, routed as producers route them
 * =================================================================== */

typedef struct ev {
    int stream;                     /* 0 scan, 1 case */
    const char *unit;               /* routes it; NULL: every partition (a tick) */
    char data[512];
} ev;

typedef struct evlist {
    ev e[256];
    size_t n;
} evlist;

static void add(evlist *l, int stream, const char *unit, const char *fmt, ...)
{
    va_list ap;
    assert_true(l->n < sizeof(l->e) / sizeof(l->e[0]));
    l->e[l->n].stream = stream;
    l->e[l->n].unit = unit;
    va_start(ap, fmt);
    vsnprintf(l->e[l->n].data, sizeof(l->e[l->n].data), fmt, ap);
    va_end(ap);
    l->n++;
}

#define FILED(ts, task, unit, ent)                                                            \
    add(l, 0, unit, "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"" task         \
        "\",\"unit_id\":\"" unit "\",\"officers\":[\"O7\",\"O8\"],\"enterprise_id\":\"" ent \
        "\"}", (long long)(ts))
/* A scan goes with its filing (the producer routes it by the filing's unit). */
#define SCANNED(ts, task, unit, ent)                                                           \
    add(l, 0, unit, "{\"type\":\"inspection.scanned\",\"ts\":%lld,\"task_id\":\"" task        \
        "\",\"enterprise_id\":\"" ent "\"}", (long long)(ts))

/* MR-01 routes to partition 0, EC-02 and TR-03 to partition 1 (checked). */
static void make_events(evlist *l)
{
    static const char *const two[] = {"MR-01", "EC-02"};
    int k;

    assert_int_equal(rk__partition_of("MR-01", NPART), 0);
    assert_int_equal(rk__partition_of("EC-02", NPART), 1);
    assert_int_equal(rk__partition_of("TR-03", NPART), 1);
    l->n = 0;
    /* repeat: E520 visited by MR-01 and by EC-02 on one day */
    FILED(T0, "T201", "MR-01", "E520");
    SCANNED(T0 + 30 * MIN, "T201", "MR-01", "E520");
    FILED(T0 + HOUR, "T202", "EC-02", "E520");
    SCANNED(T0 + HOUR + 30 * MIN, "T202", "EC-02", "E520");
    /* multi_unit: E530 by MR-01, then by EC-02 the next day */
    FILED(T0 + DAY, "T203", "MR-01", "E530");
    SCANNED(T0 + DAY + 30 * MIN, "T203", "MR-01", "E530");
    FILED(T0 + 2 * DAY, "T204", "EC-02", "E530");
    SCANNED(T0 + 2 * DAY + 30 * MIN, "T204", "EC-02", "E530");
    /* whitelist: E501 (allowance 1) visited by MR-01, then by EC-02 */
    FILED(T0 + 2 * DAY + HOUR, "T205", "MR-01", "E501");
    SCANNED(T0 + 2 * DAY + 2 * HOUR, "T205", "MR-01", "E501");
    FILED(T0 + 5 * DAY, "T206", "EC-02", "E501");
    SCANNED(T0 + 5 * DAY + 30 * MIN, "T206", "EC-02", "E501");
    /* uncertified (one unit): O9's credential ended 2024-03-14 */
    add(l, 0, "TR-03", "{\"type\":\"inspection.filed\",\"ts\":%lld,\"task_id\":\"T207\","
        "\"unit_id\":\"TR-03\",\"officers\":[\"O9\",\"O10\"],\"enterprise_id\":\"E540\"}",
        (long long)(T0 + 6 * DAY));
    SCANNED(T0 + 6 * DAY + 30 * MIN, "T207", "TR-03", "E540");
    /* corrections (one unit): three of TR-03's four reviews */
    {
        static const char *const outcomes[] = {"upheld", "revoked", "altered",
                                               "confirmed_illegal"};
        for (k = 0; k < 4; k++)
            add(l, 1, "TR-03", "{\"type\":\"case.review\",\"ts\":%lld,\"case_id\":\"RV%d\","
                "\"unit_id\":\"TR-03\",\"outcome\":\"%s\"}", (long long)(T0 + (k + 1) * HOUR),
                k, outcomes[k]);
    }
    /* out_of_benchmark (one unit) */
    add(l, 1, "MR-01", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"D1\","
        "\"unit_id\":\"MR-01\",\"item_code\":\"A0101\",\"fine\":8000}",
        (long long)(T0 + 6 * HOUR));
    /* disparity: B0310 fined 120000 by TR-03 six times, 600000 by MR-01 */
    for (k = 0; k < 6; k++)
        add(l, 1, "TR-03", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"DT%d\","
            "\"unit_id\":\"TR-03\",\"item_code\":\"B0310\",\"fine\":120000}",
            (long long)(T0 + 7 * HOUR + k * 10 * MIN), k);
    for (k = 0; k < 5; k++)
        add(l, 1, "MR-01", "{\"type\":\"case.decided\",\"ts\":%lld,\"case_id\":\"DE%d\","
            "\"unit_id\":\"MR-01\",\"item_code\":\"B0310\",\"fine\":600000}",
            (long long)(T0 + 8 * HOUR + k * 10 * MIN), k);
    /* hotspot: 20 market cases in 640104, opened by two units in turn */
    for (k = 1; k <= 20; k++)
        add(l, 1, two[k % 2], "{\"type\":\"case.opened\",\"ts\":%lld,\"case_id\":\"H%d\","
            "\"unit_id\":\"%s\",\"source\":\"report\",\"region\":\"640104\","
            "\"domain\":\"market\"}", (long long)(T0 + DAY + k * 10 * MIN), k, two[k % 2]);
    /* complaints: E600 by both units (enterprise_id), three of MR-01's */
    for (k = 0; k < 3; k++)
        add(l, 1, two[k % 2], "{\"type\":\"case.complaint\",\"ts\":%lld,\"complaint_id\":"
            "\"CE%d\",\"unit_id\":\"%s\",\"enterprise_id\":\"E600\"}",
            (long long)(T0 + 3 * DAY + k * HOUR), k, two[k % 2]);
    for (k = 0; k < 3; k++)
        add(l, 1, "MR-01", "{\"type\":\"case.complaint\",\"ts\":%lld,\"complaint_id\":"
            "\"CU%d\",\"unit_id\":\"MR-01\",\"enterprise_id\":\"E61%d\"}",
            (long long)(T0 + 4 * DAY + k * HOUR), k, k);
    /* Every stream ends at the same event time. */
    add(l, 0, NULL, "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)(T0 + 7 * DAY));
    add(l, 1, NULL, "{\"type\":\"clock.tick\",\"ts\":%lld}", (long long)(T0 + 7 * DAY));
}

static void stream_key(char *out, size_t len, int stream, int part, int partitions)
{
    if (partitions > 1)
        snprintf(out, len, "%s:{%d}", stream ? "enforce:case" : "enforce:scan", part);
    else
        snprintf(out, len, "%s", stream ? "enforce:case" : "enforce:scan");
}

/* Write events [from, to) routed to `partitions`; a tick to every one. */
static void ev_write(redisContext *c, const evlist *l, size_t from, size_t to, int partitions)
{
    size_t i;
    int p;
    char key[40];
    for (i = from; i < to && i < l->n; i++) {
        const ev *x = &l->e[i];
        for (p = 0; p < partitions; p++) {
            if (x->unit != NULL && partitions > 1 && rk__partition_of(x->unit, partitions) != p)
                continue;
            stream_key(key, sizeof(key), x->stream, p, partitions);
            freeReplyObject(it_cmd(c, "XADD %s * data %s", key, x->data));
        }
    }
}

/* Every stream read to its end by every group reading it (the partitions'
 * "riskd", the cross pipeline's "riskd:cross"), and the alert stream still. */
static bool all_drained(redisContext *c, int partitions, int timeout_ms)
{
    char key[40];
    int p, si, waited = 0, stable = 0;
    long long last = -1;
    while (waited < timeout_ms) {
        bool done = true;
        long long n = it_int(c, "XLEN alerts");
        for (p = 0; p < partitions && done; p++)
            for (si = 0; si < 2 && done; si++) {
                stream_key(key, sizeof(key), si, p, partitions);
                done = it_wait_drained(c, key, "riskd", 0) &&
                       (partitions == 1 || it_wait_drained(c, key, "riskd:cross", 0));
            }
        if (done && n == last) {
            if (++stable >= 5)
                return true;
        } else {
            stable = 0;
        }
        last = n;
        it_sleep_ms(100);
        waited += 100;
    }
    return false;
}

/* ===================================================================
 * Runs
 * =================================================================== */

static void load_lists(int port)
{
    static const char *const kinds[] = {"whitelist", "benchmarks", "exempt", "credentials",
                                        "names"};
    char dir[256], cfg[300], cmd[1024];
    size_t k;
    assert_int_equal(it_tmpdir(dir, sizeof(dir), "cross"), 0);
    snprintf(cfg, sizeof(cfg), "%s/riskd.json", dir);
    assert_int_equal(it_write_config(cfg, port, "{}"), 0);
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        int st;
        snprintf(cmd, sizeof(cmd), "%s/riskctl -c %s lists load %s "
                 "config/samples/sample-%s.csv >/dev/null 2>&1", it_build_dir(), cfg,
                 kinds[k], kinds[k]);
        st = system(cmd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("riskctl lists load %s failed", kinds[k]);
    }
}

/* The alerts as id -> "rule subject", a notice as "<id>:<status>"; each
 * written once. */
static json_t *alert_set(redisContext *c)
{
    json_t *arr = it_alerts(c, "alerts"), *set = json_object(), *a;
    size_t i;
    json_array_foreach(arr, i, a) {
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *st = json_string_value(json_object_get(a, "status"));
        int notice = st != NULL && strcmp(st, "firing") != 0;
        char *subj = json_dumps(json_object_get(a, "subject"), JSON_SORT_KEYS | JSON_COMPACT);
        char what[512], key[96];
        assert_non_null(id);
        snprintf(key, sizeof(key), notice ? "%s:%s" : "%s", id, st);
        if (json_object_get(set, key) != NULL)
            fail_msg("%s written twice", key);
        snprintf(what, sizeof(what), "%s%s%s/%s %s", notice ? st : "", notice ? " " : "",
                 json_string_value(json_object_get(a, "detector")),
                 json_string_value(json_object_get(a, "rule")), subj ? subj : "");
        free(subj);
        json_object_set_new(set, key, json_string(what));
    }
    json_decref(arr);
    return set;
}

static size_t count_rule(json_t *set, const char *det_rule)
{
    const char *id;
    json_t *v;
    size_t n = 0, l = strlen(det_rule);
    json_object_foreach(set, id, v)
        n += strncmp(json_string_value(v), det_rule, l) == 0 && json_string_value(v)[l] == ' ';
    return n;
}

static void assert_same_set(json_t *want, json_t *got, const char *what)
{
    const char *id;
    json_t *v;
    size_t missing = 0, extra = 0;
    json_object_foreach(want, id, v)
        if (json_object_get(got, id) == NULL) {
            fprintf(stderr, "  missing: %s\n", json_string_value(v));
            missing++;
        }
    json_object_foreach(got, id, v)
        if (json_object_get(want, id) == NULL) {
            fprintf(stderr, "  extra: %s\n", json_string_value(v));
            extra++;
        }
    fprintf(stderr, "%s: %zu alerts and notices (one riskd: %zu): %zu missing, %zu extra\n",
            what, json_object_size(got), json_object_size(want), missing, extra);
    assert_int_equal(missing, 0);
    assert_int_equal(extra, 0);
}

/* One riskd over the unpartitioned streams: the reference. */
static json_t *single_run(const evlist *l)
{
    it_env env;
    json_t *set;

    assert_int_equal(it_env_start(&env), 0);
    load_lists(env.redis.port);
    ev_write(env.c, l, 0, l->n, 1);
    assert_int_equal(it_riskd_start(&env.riskd, env.redis.port,
                                    "{\"streams\":{\"consumer\":\"single\"}," RUN_CFG "}"), 0);
    if (!all_drained(env.c, 1, 60000)) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("the single instance did not drain");
    }
    it_riskd_signal(&env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env.riskd, 15000), 0);
    set = alert_set(env.c);
    it_env_stop(&env);
    /* every rule of the test is in the reference */
    assert_true(count_rule(set, "inspection_frequency/repeat") >= 1);
    assert_true(count_rule(set, "inspection_frequency/multi_unit") >= 1);
    assert_true(count_rule(set, "inspection_frequency/whitelist") >= 1);
    assert_true(count_rule(set, "discretion/disparity") >= 1);
    assert_true(count_rule(set, "discretion/out_of_benchmark") >= 1);
    assert_true(count_rule(set, "violation_hotspot/hotspot") >= 1);
    assert_true(count_rule(set, "complaint_cluster/cluster") >= 2);
    assert_true(count_rule(set, "review_correction/corrections") >= 1);
    assert_true(count_rule(set, "officer_credential/uncertified") >= 1);
    return set;
}

typedef struct inst {
    it_riskd d;
    int mport;
    char name[8];
} inst;

static void inst_start(inst *x, int port, const char *name)
{
    char cfg[1024];
    memset(x, 0, sizeof(*x));
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"partitions\":%d,\"streams\":{\"consumer\":\"%s\"},"
             "\"metrics\":{\"listen\":\"127.0.0.1:%d\"}," RUN_CFG "}", NPART, name, x->mport);
    assert_int_equal(it_riskd_start(&x->d, port, cfg), 0);
}

typedef struct cross_held {
    inst *x;
    int n;
    int who;                        /* out: the index holding it */
} cross_held;

static bool someone_holds_cross(void *arg)
{
    cross_held *h = arg;
    int i;
    for (i = 0; i < h->n; i++)
        if (h->x[i].d.pid > 0 && it_metric(h->x[i].mport, "riskd_cross_held") == 1.0) {
            h->who = i;
            return true;
        }
    return false;
}

/* The multi_unit alert (E530, filed by units of both partitions) names in
 * its evidence the stream of each partition. */
static void check_evidence(redisContext *c)
{
    json_t *arr = it_alerts(c, "alerts"), *a, *ref;
    size_t i, j;
    bool p0 = false, p1 = false, found = false;
    json_array_foreach(arr, i, a) {
        if (strcmp(json_string_value(json_object_get(a, "rule")), "multi_unit") != 0)
            continue;
        found = true;
        json_array_foreach(json_object_get(a, "evidence"), j, ref) {
            p0 = p0 || strncmp(json_string_value(ref), "enforce:scan:{0}/", 17) == 0;
            p1 = p1 || strncmp(json_string_value(ref), "enforce:scan:{1}/", 17) == 0;
        }
    }
    json_decref(arr);
    assert_true(found);
    if (!p0 || !p1)
        fail_msg("multi_unit's evidence does not name both partitions' streams");
}

/* riskctl status names the cross pipeline's lease and its holder. */
static void check_status(int port, const char *holder)
{
    char dir[256], cfg[300], cmd[700], line[512], want[128];
    bool seen = false;
    FILE *p;
    assert_int_equal(it_tmpdir(dir, sizeof(dir), "crossctl"), 0);
    snprintf(cfg, sizeof(cfg), "%s/riskd.json", dir);
    assert_int_equal(it_write_config(cfg, port, "{\"partitions\":2}"), 0);
    snprintf(cmd, sizeof(cmd), "%s/riskctl -c %s status 2>&1", it_build_dir(), cfg);
    snprintf(want, sizeof(want), "lease riskd:state:{cross}:lease: held by %s (epoch ", holder);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        seen = seen || strncmp(line, want, strlen(want)) == 0;
    pclose(p);
    if (!seen)
        fail_msg("riskctl status does not show \"%s...\"", want);
}

/* Two riskd on 2 partitions; kill: SIGKILL the cross pipeline's holder
 * halfway through the events. */
static json_t *partitioned_run(const evlist *l, bool kill)
{
    it_env env;
    inst x[2];
    cross_held h = {x, 2, -1};
    json_t *set;
    int i;

    assert_int_equal(it_env_start(&env), 0);
    load_lists(env.redis.port);
    inst_start(&x[0], env.redis.port, "a");
    inst_start(&x[1], env.redis.port, "b");
    if (!it_wait_until(someone_holds_cross, &h, 20000)) {
        it_riskd_dump_log(&x[0].d);
        it_riskd_dump_log(&x[1].d);
        fail_msg("nobody took the cross pipeline");
    }
    ev_write(env.c, l, 0, kill ? l->n / 2 : l->n, NPART);
    if (kill) {
        int dead = h.who;
        /* let it apply some of them, then kill it */
        it_sleep_ms(300);
        it_riskd_signal(&x[dead].d, SIGKILL);
        it_riskd_wait(&x[dead].d, 5000);
        x[dead].d.pid = 0;
        ev_write(env.c, l, l->n / 2, l->n, NPART);
        h.who = -1;
        if (!it_wait_until(someone_holds_cross, &h, 20000) || h.who == dead) {
            it_riskd_dump_log(&x[1 - dead].d);
            fail_msg("the cross pipeline was not taken over");
        }
    }
    if (!all_drained(env.c, NPART, 60000)) {
        for (i = 0; i < 2; i++)
            if (x[i].d.pid > 0)
                it_riskd_dump_log(&x[i].d);
        fail_msg("the partitions did not drain");
    }
    if (!kill) {
        check_evidence(env.c);
        check_status(env.redis.port, x[h.who].name);
    }
    for (i = 0; i < 2; i++)
        if (x[i].d.pid > 0) {
            it_riskd_signal(&x[i].d, SIGTERM);
            assert_int_equal(it_riskd_wait(&x[i].d, 15000), 0);
        }
    set = alert_set(env.c);
    it_env_stop(&env);
    return set;
}

static void test_cross_same_as_one(void **state)
{
    evlist *l = calloc(1, sizeof(*l));
    json_t *want, *got;
    (void)state;
    assert_non_null(l);
    make_events(l);
    want = single_run(l);
    got = partitioned_run(l, false);
    assert_same_set(want, got, "2 partitions and the cross pipeline");
    json_decref(got);
    got = partitioned_run(l, true);
    assert_same_set(want, got, "the same, the cross pipeline's holder killed");
    json_decref(got);
    json_decref(want);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_same_as_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
