/* tests/integration/test-register.c - the filing register shared by the partitions
 * (issue 14 item 3, its partitioned half).
 *
 * A case opened by another unit than the filing's is routed by its own
 * unit (crc32(unit_id) mod N), so with partitions it lands in another
 * partition than the filing: that partition alone would raise
 * case_without_filing. The register (daemon/pipeline/register.c) must make the
 * partitioned run raise exactly what one instance raises over the same
 * events in the unpartitioned streams enforce:scan / enforce:case:
 *
 *  - hand-made: cases of other units for filed tasks (filed before the
 *    case, and within the grace after it), a task never filed, a task filed
 *    too late, a scan routed away from its filing, a scan of a task nobody
 *    filed. The filing unit's partition is written last, after the others
 *    are done: until its watermark is published every such alert waits
 *    (nothing is written, riskd_alerts_waiting_total moves), then exactly the
 *    single instance's alerts are written and the others are counted in
 *    riskd_alerts_filed_elsewhere_total.
 *  - generated: the workload of tests/lib/gen.c with every second case
 *    (all its events) moved to another unit, 3 partitions on 2 riskd
 *    against 1 riskd unpartitioned: the same alert ids.
 *  - the same generated workload on a 3-master Redis Cluster, where the
 *    register lives in the alert stream's slot. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "itest_cluster.h"
#include "gen.h"
#include "internal.h"               /* rk__partition_of: how producers route */

#define NPART 3
/* The rules that count one enterprise's or one area's events across units
 * (inspection_frequency, discretion's disparity, violation_hotspot) run in
 * the cross pipeline, which test-cross covers: off here, where the
 * partitions' own rules and the filing register are the subject. */
#define RUN_CFG "\"state\":{\"interval\":\"200ms\",\"lease_ttl\":\"2s\"}," \
                "\"clock\":{\"wall_advance\":false}," \
                "\"detectors\":{\"inspection_frequency\":{\"enabled\":false}," \
                "\"discretion\":{\"enabled\":false},\"violation_hotspot\":{\"enabled\":false}}"

/* ===================================================================
 * Events and where they go
 * =================================================================== */

typedef struct ev {
    int stream;                     /* 0 scan, 1 case */
    int part;                       /* -1: every partition (a tick) */
    char *data;
} ev;

typedef struct evlist {
    ev *e;
    size_t n, cap;
} evlist;

static void ev_add(evlist *l, int stream, int part, const char *data)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->e = realloc(l->e, l->cap * sizeof(*l->e));
        assert_non_null(l->e);
    }
    l->e[l->n].stream = stream;
    l->e[l->n].part = part;
    l->e[l->n].data = strdup(data);
    assert_non_null(l->e[l->n].data);
    l->n++;
}

static void ev_free(evlist *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        free(l->e[i].data);
    free(l->e);
    memset(l, 0, sizeof(*l));
}

static void stream_key(char *out, size_t len, int stream, int part, int partitions)
{
    if (partitions > 1)
        snprintf(out, len, "%s:{%d}", stream ? "enforce:case" : "enforce:scan", part);
    else
        snprintf(out, len, "%s", stream ? "enforce:case" : "enforce:scan");
}

/* Write the events (only those of partition `only`, or all with -1),
 * routed to `partitions` partitions; a tick goes to every partition. */
static void ev_write(it_conns *k, const evlist *l, int partitions, int only)
{
    size_t i;
    int p;
    char key[40];
    for (i = 0; i < l->n; i++) {
        const ev *x = &l->e[i];
        for (p = 0; p < partitions; p++) {
            redisReply *r;
            if (partitions > 1 && x->part >= 0 && x->part != p)
                continue;
            if (only >= 0 && p != only)
                continue;
            stream_key(key, sizeof(key), x->stream, p, partitions);
            r = redisCommand(it_conns_for(k, key), "XADD %s * data %s", key, x->data);
            assert_non_null(r);
            if (r->type == REDIS_REPLY_ERROR)
                fail_msg("XADD %s: %s", key, r->str);
            freeReplyObject(r);
        }
    }
}

static bool drained(it_conns *k, int partitions, int timeout_ms)
{
    char key[40];
    int p, si;
    for (p = 0; p < (partitions > 1 ? partitions : 1); p++)
        for (si = 0; si < 2; si++) {
            stream_key(key, sizeof(key), si, p, partitions);
            if (!it_wait_drained(it_conns_for(k, key), key, "riskd", timeout_ms))
                return false;
        }
    return true;
}

/* ===================================================================
 * riskd instances and their metrics
 * =================================================================== */

typedef struct inst {
    it_riskd d;
    int mport;
} inst;

static void inst_start(inst *x, int port, const char *name, int partitions, const char *extra)
{
    char cfg[1024];
    memset(x, 0, sizeof(*x));
    x->mport = it_free_port();
    snprintf(cfg, sizeof(cfg), "{\"partitions\":%d,\"streams\":{\"consumer\":\"%s\"},"
             "%s\"metrics\":{\"listen\":\"127.0.0.1:%d\"}," RUN_CFG "}",
             partitions, name, extra, x->mport);
    assert_int_equal(it_riskd_start(&x->d, port, cfg), 0);
}

static void inst_stop(inst *x)
{
    if (x->d.pid <= 0)
        return;
    it_riskd_signal(&x->d, SIGTERM);
    assert_int_equal(it_riskd_wait(&x->d, 15000), 0);
}

static int http_metrics(int port, char *buf, size_t len)
{
    struct sockaddr_in sa;
    const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    size_t got = 0;
    ssize_t k;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    buf[0] = '\0';
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    while (got + 1 < len && (k = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fd);
    return 0;
}

/* The sum of a metric over its labels (partitions), or -1 when absent. */
static double metric_sum(int port, const char *name)
{
    static char buf[1 << 20];
    char pat[128];
    const char *at;
    double sum = -1;
    size_t n;
    if (http_metrics(port, buf, sizeof(buf)) != 0)
        return -1;
    n = (size_t)snprintf(pat, sizeof(pat), "\n%s", name);
    for (at = strstr(buf, pat); at != NULL; at = strstr(at + 1, pat)) {
        const char *v = at + n;
        if (*v == '{')
            v = strchr(v, '}') ? strchr(v, '}') + 1 : v;
        else if (*v != ' ')
            continue;               /* another metric with this prefix */
        sum = (sum < 0 ? 0 : sum) + atof(v);
    }
    return sum;
}

typedef struct metric_at_least {
    int port;
    const char *name;
    double min;
} metric_at_least;

static bool metric_reached(void *arg)
{
    metric_at_least *m = arg;
    return metric_sum(m->port, m->name) >= m->min;
}

/* The alerts as an object id -> "rule subject" (each written once); a
 * notice, sharing its alert's id, as "<id>:<status>" -> "<status> rule
 * subject". */
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
        assert_null(json_object_get(set, key));    /* written once */
        snprintf(what, sizeof(what), "%s%s%s %s", notice ? st : "", notice ? " " : "",
                 json_string_value(json_object_get(a, "rule")), subj ? subj : "");
        free(subj);
        json_object_set_new(set, key, json_string(what));
    }
    json_decref(arr);
    return set;
}

static size_t count_rule(json_t *set, const char *rule)
{
    const char *id;
    json_t *v;
    size_t n = 0, l = strlen(rule);
    json_object_foreach(set, id, v)
        if (strncmp(json_string_value(v), rule, l) == 0 && json_string_value(v)[l] == ' ')
            n++;
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
    fprintf(stderr, "%s: %zu alerts (single instance %zu): %zu missing, %zu extra\n",
            what, json_object_size(got), json_object_size(want), missing, extra);
    assert_int_equal(missing, 0);
    assert_int_equal(extra, 0);
}

/* One riskd over the events in the unpartitioned streams: the reference. */
static json_t *single_run(const evlist *l)
{
    it_env env;
    it_conns k = {0};
    json_t *set;

    assert_int_equal(it_env_start(&env), 0);
    k.one = env.c;
    ev_write(&k, l, 1, -1);
    assert_int_equal(it_riskd_start(&env.riskd, env.redis.port,
                                    "{\"streams\":{\"consumer\":\"single\"}," RUN_CFG "}"), 0);
    if (!drained(&k, 1, 60000)) {
        it_riskd_dump_log(&env.riskd);
        fail_msg("the single instance did not drain");
    }
    it_riskd_signal(&env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env.riskd, 15000), 0);
    set = alert_set(env.c);
    it_env_stop(&env);
    return set;
}

/* ===================================================================
 * Fixture
 * =================================================================== */

typedef struct fixture {
    it_env env;
    it_conns k;
    it_cluster cl;
    bool cluster;
    inst x[2];
    evlist l;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    f->k.one = f->env.c;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int i;
    for (i = 0; i < 2; i++)
        if (f->x[i].d.pid > 0 && it_riskd_alive(&f->x[i].d)) {
            it_riskd_signal(&f->x[i].d, SIGKILL);
            it_riskd_wait(&f->x[i].d, 5000);
        }
    it_conns_close(&f->k);
    if (f->cluster)
        it_cluster_stop(&f->cl);
    ev_free(&f->l);
    it_fixture_free(f);
    return 0;
}

/* ===================================================================
 * Hand-made events
 * =================================================================== */

#define T0 INT64_C(1740787200000)  /* 2025-03-01T00:00:00Z */
#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)

static void fmt_ts(int64_t ms, char *out, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Three units in three different partitions of NPART. */
static void pick_units(char u[3][16], int p[3])
{
    int n = 0, i, j;
    char name[16];
    for (i = 0; n < 3 && i < 1000; i++) {
        int q;
        bool used = false;
        snprintf(name, sizeof(name), "U%d", i);
        q = rk__partition_of(name, NPART);
        for (j = 0; j < n; j++)
            used = used || p[j] == q;
        if (used)
            continue;
        memcpy(u[n], name, sizeof(name));
        p[n++] = q;
    }
    assert_int_equal(n, 3);
}

static void add_filed(evlist *l, int part, int64_t ts, const char *task, const char *unit)
{
    char t[80], pl[80], buf[512];
    fmt_ts(ts, t, sizeof(t));
    fmt_ts(T0 + 30 * 24 * HOUR_MS, pl, sizeof(pl));   /* scan deadline after the end */
    snprintf(buf, sizeof(buf), "{\"type\":\"inspection.filed\",\"ts\":\"%s\",\"task_id\":\"%s\","
             "\"unit_id\":\"%s\",\"officers\":[\"O1\",\"O2\"],\"enterprise_id\":\"E1\","
             "\"planned_at\":\"%s\",\"basis\":\"routine\",\"items\":[\"fire\"]}",
             t, task, unit, pl);
    ev_add(l, 0, part, buf);
}

static void add_case(evlist *l, int part, int64_t ts, const char *cs, const char *task,
                     const char *unit)
{
    char t[80], buf[512];
    fmt_ts(ts, t, sizeof(t));
    snprintf(buf, sizeof(buf), "{\"type\":\"case.opened\",\"ts\":\"%s\",\"case_id\":\"%s\","
             "\"unit_id\":\"%s\",\"source\":\"inspection\",\"task_id\":\"%s\","
             "\"enterprise_id\":\"E1\",\"officers\":[\"O3\",\"O4\"]}", t, cs, unit, task);
    ev_add(l, 1, part, buf);
}

static void add_scan(evlist *l, int part, int64_t ts, const char *task, const char *unit)
{
    char t[80], buf[512];
    fmt_ts(ts, t, sizeof(t));
    snprintf(buf, sizeof(buf), "{\"type\":\"inspection.scanned\",\"ts\":\"%s\",\"task_id\":\"%s\","
             "\"enterprise_id\":\"E1\",\"unit_id\":\"%s\"}", t, task, unit);
    ev_add(l, 0, part, buf);
}

static void add_tick(evlist *l, int64_t ts)
{
    char t[80], buf[160];
    fmt_ts(ts, t, sizeof(t));
    snprintf(buf, sizeof(buf), "{\"type\":\"clock.tick\",\"ts\":\"%s\"}", t);
    ev_add(l, 1, -1, buf);
}

/* The hand-made day; units u[0] (files), u[1] and u[2] (open cases, scan),
 * in partitions p[0], p[1], p[2]. Each stream's events in ts order. */
static void make_day(evlist *l, char u[3][16], int p[3])
{
    /* the filing unit's filings */
    add_filed(l, p[0], T0 + 1 * HOUR_MS, "TX1", u[0]);
    add_filed(l, p[0], T0 + 5 * HOUR_MS, "TX3", u[0]);
    add_filed(l, p[0], T0 + 6 * HOUR_MS + 5 * MIN_MS, "TX4", u[0]);
    add_filed(l, p[0], T0 + 9 * HOUR_MS + 30 * MIN_MS, "TX7", u[0]);
    /* another unit files and opens a case of its own */
    add_filed(l, p[1], T0 + 7 * HOUR_MS, "TX5", u[1]);
    /* cases of other units */
    add_case(l, p[1], T0 + 2 * HOUR_MS, "C1", "TX1", u[1]);   /* filed before: none */
    add_case(l, p[1], T0 + 3 * HOUR_MS, "C2", "TX2", u[1]);   /* never filed: alert */
    add_case(l, p[2], T0 + 4 * HOUR_MS, "C3", "TX3", u[2]);   /* filed too late: alert */
    add_case(l, p[1], T0 + 6 * HOUR_MS, "C4", "TX4", u[1]);   /* filed within grace: none */
    add_case(l, p[1], T0 + 8 * HOUR_MS, "C5", "TX5", u[1]);   /* same partition: none */
    /* scans routed by another unit */
    add_scan(l, p[2], T0 + 9 * HOUR_MS, "TX6", u[2]);         /* nobody filed: alert */
    add_scan(l, p[2], T0 + 10 * HOUR_MS, "TX7", u[2]);        /* filed elsewhere: none */
    add_tick(l, T0 + 12 * HOUR_MS);
    add_tick(l, T0 + 24 * HOUR_MS);
}

/* Cases of other units than the filing's, in other partitions: no alert for
 * a task filed in time; the alert for a task never filed (and one filed
 * too late, and a scan of a task nobody filed); the alert set equals the
 * single instance's. The filing unit's partition comes last: until it has
 * caught up nothing of these rules is written. */
static void test_case_of_another_unit_in_another_partition(void **state)
{
    fixture *f = *state;
    char u[3][16];
    int p[3], i;
    json_t *want, *got;
    metric_at_least held;

    pick_units(u, p);
    make_day(&f->l, u, p);
    want = single_run(&f->l);
    assert_int_equal(json_object_size(want), 3);
    assert_int_equal(count_rule(want, "case_without_filing"), 2);
    assert_int_equal(count_rule(want, "scan_without_filing"), 1);

    inst_start(&f->x[0], f->env.redis.port, "a", NPART, "");
    /* every partition but the filing unit's */
    for (i = 0; i < NPART; i++)
        if (i != p[0])
            ev_write(&f->k, &f->l, NPART, i);
    held = (metric_at_least){f->x[0].mport, "riskd_alerts_waiting_total", 3};
    if (!it_wait_until(metric_reached, &held, 20000)) {
        it_riskd_dump_log(&f->x[0].d);
        fail_msg("the alerts of the partitions that are done did not wait");
    }
    /* the filing unit's partition has published no watermark yet */
    assert_int_equal(it_int(f->env.c, "XLEN alerts"), 0);
    ev_write(&f->k, &f->l, NPART, p[0]);
    if (!drained(&f->k, NPART, 30000)) {
        it_riskd_dump_log(&f->x[0].d);
        fail_msg("the partitions did not drain");
    }
    /* C1, C4 and the scan of TX7: dropped by the register */
    assert_true(metric_sum(f->x[0].mport, "riskd_alerts_filed_elsewhere_total") == 3.0);
    assert_true(metric_sum(f->x[0].mport, "riskd_register_filings_total") == 5.0);
    got = alert_set(f->env.c);
    assert_same_set(want, got, "3 partitions, cases and scans of other units");
    /* the register: watermarks of all partitions, one period key */
    assert_int_equal(it_int(f->env.c, "HLEN riskd:filed"), NPART + 1);
    assert_int_equal(it_int(f->env.c, "EXISTS riskd:filed:%lld",
                            (long long)(T0 / RK_REG_PERIOD_MS)), 1);
    inst_stop(&f->x[0]);
    json_decref(want);
    json_decref(got);
}

/* ===================================================================
 * Generated workload, cases moved to other units
 * =================================================================== */

#define GEN_EVENTS 12000
#define GEN_UNITS 30

/* gen.c's workload; every second case (all events naming it) moved to
 * the unit 7 further on; every event routed by its (new) unit. */
static void make_generated(evlist *l)
{
    bg_opts o;
    bg_gen *g;
    char buf[2048], unit[32];
    int64_t ts, last = 0;
    int stream;
    size_t i;

    bg_opts_default(&o);
    o.entries = GEN_EVENTS;
    o.units = GEN_UNITS;
    o.officers = 120;
    o.enterprises = 600;
    o.days = 10;
    o.anomaly = 0.05;
    o.seed = 7;
    g = bg_gen_new(&o);
    assert_non_null(g);
    for (i = 0; i < GEN_EVENTS; i++) {
        int u, part;
        json_t *j;
        const char *cs;
        assert_true(bg_gen_next(g, -1, &stream, &ts, buf, sizeof(buf)) > 0);
        if (ts > last)
            last = ts;
        u = bg_gen_last_unit(g);
        if (u < 0) {
            ev_add(l, stream, -1, buf);
            continue;
        }
        j = json_loads(buf, 0, NULL);
        assert_non_null(j);
        cs = json_string_value(json_object_get(j, "case_id"));
        if (cs != NULL && atoll(cs + 1) % 2 == 1) {
            char *out;
            u = (u + 7) % GEN_UNITS;
            snprintf(unit, sizeof(unit), "U%d", u);
            json_object_set_new(j, "unit_id", json_string(unit));
            out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
            snprintf(buf, sizeof(buf), "%s", out);
            free(out);
        }
        json_decref(j);
        snprintf(unit, sizeof(unit), "U%d", u);
        part = rk__partition_of(unit, NPART);
        ev_add(l, stream, part, buf);
    }
    bg_gen_free(g);
    /* Every partition past every deadline (producers tick every partition):
     * otherwise the last alerts would wait for the partition behind. */
    add_tick(l, last + 2 * 24 * HOUR_MS);
}

static void run_generated(fixture *f, int port, const char *extra, const char *what)
{
    json_t *want, *got;
    int i;

    make_generated(&f->l);
    want = single_run(&f->l);
    assert_true(count_rule(want, "case_without_filing") > 0);
    inst_start(&f->x[0], port, "a", NPART, extra);
    inst_start(&f->x[1], port, "b", NPART, extra);
    ev_write(&f->k, &f->l, NPART, -1);
    if (!drained(&f->k, NPART, 60000)) {
        for (i = 0; i < 2; i++)
            it_riskd_dump_log(&f->x[i].d);
        fail_msg("the partitions did not drain");
    }
    /* every alert of the drained entries is written before their ack */
    got = alert_set(it_conns_for(&f->k, "alerts"));
    assert_same_set(want, got, what);
    assert_true(metric_sum(f->x[0].mport, "riskd_alerts_filed_elsewhere_total") +
                metric_sum(f->x[1].mport, "riskd_alerts_filed_elsewhere_total") > 0);
    for (i = 0; i < 2; i++)
        inst_stop(&f->x[i]);
    json_decref(want);
    json_decref(got);
}

static void test_generated_cases_moved_equal_single(void **state)
{
    fixture *f = *state;
    run_generated(f, f->env.redis.port, "", "3 partitions, 2 riskd, every 2nd case moved");
}

static void test_generated_on_cluster(void **state)
{
    fixture *f = *state;
    char extra[256];
    assert_int_equal(it_cluster_start(&f->cl), 0);
    f->cluster = true;
    f->k.cl = &f->cl;
    snprintf(extra, sizeof(extra),
             "\"redis\":{\"cluster\":[\"127.0.0.1:%d\",\"127.0.0.1:%d\",\"127.0.0.1:%d\"]},",
             f->cl.node[0].port, f->cl.node[1].port, f->cl.node[2].port);
    run_generated(f, f->cl.node[0].port, extra,
                  "cluster: 3 partitions, 2 riskd, every 2nd case moved");
    /* the register lives in the alert stream's slot */
    {
        redisReply *r = it_cmd(it_conns_for(&f->k, "riskd:filed:{alerts}"),
                               "HLEN riskd:filed:{alerts}");
        assert_int_equal(r->integer, NPART + 1);
        freeReplyObject(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_case_of_another_unit_in_another_partition,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_cases_moved_equal_single, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_generated_on_cluster, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
