/* tests/unit/test-config.c - unit tests for daemon/lib/config.c.
 *
 * Checks that {} yields every default, that the shipped config/riskd.json
 * loads to the same values, and that each key refuses a wrong type or range
 * with an error naming its path. Configurations are written inline as JSON
 * text (jansson parses them); file tests write temporary files. Run from the
 * repository root (the shipped file is read as "config/riskd.json"). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "riskd/kit.h"
#include "internal.h"

/* ===================================================================
 * Helpers
 * =================================================================== */

/* Parse text and build a config; fails the test when the JSON is bad. */
static int from_text(const char *text, rk__config **out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &jerr);
    int rc;
    if (root == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    err[0] = '\0';
    rc = rk__config_from_json(root, out, err, errlen);
    json_decref(root);
    return rc;
}

/* Expect text to be refused with exactly the error `want`. */
#define BAD(text, want) bad_at(__FILE__, __LINE__, (text), (want))
static void bad_at(const char *file, int line, const char *text, const char *want)
{
    char err[RK_ERRLEN];
    rk__config *c = (rk__config *)0x1;
    int rc = from_text(text, &c, err, sizeof(err));
    if (rc != -1 || c != NULL || strcmp(err, want) != 0) {
        rk__config_free(rc == 0 ? c : NULL);
        fail_msg("%s:%d: %s\n  want -1 \"%s\"\n  got %d \"%s\"", file, line,
                 text, want, rc, err);
    }
}

/* Expect text to be accepted; returns the config (caller frees). */
#define GOOD(text) good_at(__FILE__, __LINE__, (text))
static rk__config *good_at(const char *file, int line, const char *text)
{
    char err[RK_ERRLEN];
    rk__config *c = NULL;
    if (from_text(text, &c, err, sizeof(err)) != 0 || c == NULL)
        fail_msg("%s:%d: %s refused: %s", file, line, text, err);
    return c;
}

static char *hostname_or_riskd(void)
{
    static char name[256];
    if (gethostname(name, sizeof(name)) != 0 || name[0] == '\0')
        strcpy(name, "riskd");
    name[sizeof(name) - 1] = '\0';
    return name;
}

/* Assert every field except detectors/root has its shipped default. */
static void assert_defaults(const rk__config *c)
{
    assert_string_equal(c->redis_host, "127.0.0.1");
    assert_int_equal(c->redis_port, 6379);
    assert_null(c->redis_password);
    assert_null(c->redis_username);
    assert_int_equal(c->redis_db, 0);
    assert_int_equal(c->n_sentinels, 0);
    assert_null(c->redis_sentinels);
    assert_string_equal(c->redis_master_name, "mymaster");
    assert_int_equal(c->n_cluster, 0);
    assert_null(c->redis_cluster);
    assert_int_equal(c->redis_wait_replicas, 0);
    assert_int_equal(c->redis_wait_timeout, RK_SECOND);
    assert_string_equal(c->stream_key[RK_STREAM_SCAN], "enforce:scan");
    assert_string_equal(c->stream_key[RK_STREAM_CASE], "enforce:case");
    assert_string_equal(c->group, "riskd");
    assert_string_equal(c->consumer, hostname_or_riskd());
    assert_string_equal(c->start, "0");
    assert_int_equal(c->batch, 500);
    assert_string_equal(c->alerts_stream, "alerts");
    assert_string_equal(c->channel_prefix, "alerts:");
    assert_int_equal(c->alerts_maxlen, 1000000);
    assert_int_equal(c->dedupe_ttl, 400 * RK_DAY);
    assert_string_equal(c->alerts_open_key, "riskd:open");
    assert_string_equal(c->alerts_language, "zh-CN");
    assert_int_equal(c->dedupe_window, 400 * RK_DAY);
    assert_true(c->wall_advance);
    assert_int_equal(c->clock_idle, 60 * RK_SECOND);
    assert_int_equal(c->allowed_lateness, 0);
    assert_int_equal(c->tz_offset_s, 8 * 3600);
    assert_string_equal(c->metrics_listen, "127.0.0.1:9477");
    assert_string_equal(c->metrics_host, "127.0.0.1");
    assert_int_equal(c->metrics_port, 9477);
    assert_int_equal(c->n_plugins, 0);
    assert_int_equal(c->state_interval, 5 * RK_SECOND);
    assert_string_equal(c->state_key, "riskd:state");
    assert_int_equal(c->task_retention, 30 * RK_DAY);
    assert_int_equal(c->claim_idle, 60 * RK_SECOND);
    assert_int_equal(c->max_deliveries, 5);
    assert_non_null(c->root);
    assert_non_null(c->detectors);
    assert_true(json_is_object(c->detectors));
    assert_ptr_equal(json_object_get(c->root, "detectors"), c->detectors);
}

/* Write text to a fresh temporary file; returns its malloc'ed path. */
static char *write_temp(const char *text, size_t len)
{
    char tmpl[] = "/tmp/rk-test-config-XXXXXX";
    int fd = mkstemp(tmpl);
    char *path;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    path = strdup(tmpl);
    assert_non_null(path);
    return path;
}

/* ===================================================================
 * Defaults and the shipped file
 * =================================================================== */

static void test_empty_gives_defaults(void **state)
{
    rk__config *c = GOOD("{}");
    (void)state;
    assert_defaults(c);
    assert_int_equal(json_object_size(c->detectors), 0);
    rk__config_free(c);
}

static void test_shipped_file(void **state)
{
    char err[RK_ERRLEN] = "";
    rk__config *c = NULL;
    (void)state;
    if (rk__config_load("config/riskd.json", &c, err, sizeof(err)) != 0)
        fail_msg("config/riskd.json: %s", err);
    assert_defaults(c);
    assert_int_equal(json_object_size(c->detectors), 9);
    assert_non_null(json_object_get(c->detectors, "unfiled_inspection"));
    assert_non_null(json_object_get(c->detectors, "bad_rating"));
    assert_non_null(json_object_get(c->detectors, "fine_growth"));
    assert_non_null(json_object_get(c->detectors, "complaint_cluster"));
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(c->detectors, "bad_rating"), "bad_score")), 2);
    rk__config_free(c);
}

static void test_null_sections_keys(void **state)
{
    rk__config *c;
    (void)state;
    /* Sections present but empty are the defaults too. */
    c = GOOD("{\"redis\":{},\"streams\":{},\"alerts\":{},\"clock\":{},"
             "\"metrics\":{},\"state\":{},\"plugins\":[],\"detectors\":{}}");
    assert_defaults(c);
    rk__config_free(c);
    /* Nullable keys given as null. */
    c = GOOD("{\"redis\":{\"password\":null,\"username\":null},"
             "\"streams\":{\"consumer\":null}}");
    assert_defaults(c);
    rk__config_free(c);
    rk__config_free(NULL);
}

/* ===================================================================
 * Every key set to a non-default value
 * =================================================================== */

static void test_all_values(void **state)
{
    rk__config *c;
    (void)state;
    c = GOOD("{\"redis\":{\"host\":\"redis.local\",\"port\":7000,"
             "\"password\":\"s3cret\",\"username\":\"riskd\",\"db\":15},"
             "\"streams\":{\"scan\":\"a\",\"case\":\"b\",\"group\":\"g\","
             "\"consumer\":\"c1\",\"start\":\"$\",\"batch\":100000,"
             "\"claim_idle\":\"1s\",\"max_deliveries\":1000},"
             "\"alerts\":{\"stream\":\"al\",\"channel_prefix\":\"\","
             "\"maxlen\":9007199254740991,\"dedupe_ttl\":\"1s\"},"
             "\"clock\":{\"wall_advance\":false,\"idle\":\"100ms\","
             "\"timezone\":\"Z\"},"
             "\"metrics\":{\"listen\":\"\"},"
             "\"state\":{\"interval\":\"100ms\",\"key\":\"k\","
             "\"task_retention\":\"1s\"},"
             "\"plugins\":[\"/x/a.so\",\"b.so\"],"
             "\"detectors\":{\"bad_rating\":{\"bad_score\":1},\"x\":{}}}");
    assert_string_equal(c->redis_host, "redis.local");
    assert_int_equal(c->redis_port, 7000);
    assert_string_equal(c->redis_password, "s3cret");
    assert_string_equal(c->redis_username, "riskd");
    assert_int_equal(c->redis_db, 15);
    assert_string_equal(c->stream_key[RK_STREAM_SCAN], "a");
    assert_string_equal(c->stream_key[RK_STREAM_CASE], "b");
    assert_string_equal(c->group, "g");
    assert_string_equal(c->consumer, "c1");
    assert_string_equal(c->start, "$");
    assert_int_equal(c->batch, 100000);
    assert_int_equal(c->claim_idle, 1000);
    assert_int_equal(c->max_deliveries, 1000);
    assert_string_equal(c->alerts_stream, "al");
    assert_string_equal(c->channel_prefix, "");
    assert_int_equal(c->alerts_maxlen, 9007199254740991LL);
    assert_int_equal(c->dedupe_ttl, 1000);
    assert_false(c->wall_advance);
    assert_int_equal(c->clock_idle, 100);
    assert_int_equal(c->tz_offset_s, 0);
    assert_string_equal(c->metrics_listen, "");
    assert_null(c->metrics_host);
    assert_int_equal(c->metrics_port, 0);
    assert_int_equal(c->state_interval, 100);
    assert_string_equal(c->state_key, "k");
    assert_int_equal(c->task_retention, 1000);
    assert_int_equal(c->n_plugins, 2);
    assert_string_equal(c->plugins[0], "/x/a.so");
    assert_string_equal(c->plugins[1], "b.so");
    assert_int_equal(json_object_size(c->detectors), 2);
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(c->detectors, "bad_rating"), "bad_score")), 1);
    rk__config_free(c);

    /* Lower bounds and a password without a username. */
    c = GOOD("{\"redis\":{\"port\":1,\"db\":2147483647,\"password\":\"\"},"
             "\"streams\":{\"batch\":1,\"max_deliveries\":1,"
             "\"start\":\"1740793800000-5\"},"
             "\"alerts\":{\"maxlen\":1}}");
    assert_int_equal(c->redis_port, 1);
    assert_int_equal(c->redis_db, 2147483647);
    assert_string_equal(c->redis_password, "");
    assert_null(c->redis_username);
    assert_int_equal(c->batch, 1);
    assert_int_equal(c->max_deliveries, 1);
    assert_string_equal(c->start, "1740793800000-5");
    assert_int_equal(c->alerts_maxlen, 1);
    rk__config_free(c);

    c = GOOD("{\"redis\":{\"port\":65535,\"db\":0},"
             "\"streams\":{\"start\":\"1740793800000\"}}");
    assert_int_equal(c->redis_port, 65535);
    assert_string_equal(c->start, "1740793800000");
    rk__config_free(c);
}

/* ===================================================================
 * Structure: root, sections, unknown keys
 * =================================================================== */

static void test_structure(void **state)
{
    (void)state;
    BAD("[]", "config: expected a JSON object");
    BAD("5", "config: expected a JSON object");
    BAD("null", "config: expected a JSON object");
    BAD("{\"bogus\":1}", "bogus: unknown key");
    BAD("{\"redis\":{\"hots\":\"x\"}}", "redis.hots: unknown key");
    BAD("{\"streams\":{\"bacth\":5}}", "streams.bacth: unknown key");
    BAD("{\"alerts\":{\"ttl\":\"1s\"}}", "alerts.ttl: unknown key");
    BAD("{\"clock\":{\"tz\":\"Z\"}}", "clock.tz: unknown key");
    BAD("{\"metrics\":{\"port\":1}}", "metrics.port: unknown key");
    BAD("{\"state\":{\"retention\":\"1d\"}}", "state.retention: unknown key");
    BAD("{\"redis\":[]}", "redis: expected an object");
    BAD("{\"redis\":null}", "redis: expected an object");
    BAD("{\"streams\":\"x\"}", "streams: expected an object");
    BAD("{\"alerts\":1}", "alerts: expected an object");
    BAD("{\"clock\":true}", "clock: expected an object");
    BAD("{\"metrics\":\"127.0.0.1:1\"}", "metrics: expected an object");
    BAD("{\"state\":[]}", "state: expected an object");
    BAD("{\"detectors\":[]}", "detectors: expected an object");
    BAD("{\"detectors\":{\"bad_rating\":true}}",
        "detectors.bad_rating: expected an object");
    BAD("{\"detectors\":{\"a\":{},\"b\":null}}", "detectors.b: expected an object");
    BAD("{\"plugins\":\"a.so\"}", "plugins: expected an array of paths");
    BAD("{\"plugins\":{}}", "plugins: expected an array of paths");
    BAD("{\"plugins\":[\"a.so\",\"\"]}", "plugins[1]: expected a non-empty string");
    BAD("{\"plugins\":[3]}", "plugins[0]: expected a non-empty string");
}

/* The root handed to rk__config_from_json is referenced, not stolen, and
 * stays usable after the config is freed. */
static void test_root_reference(void **state)
{
    char err[RK_ERRLEN];
    rk__config *c = NULL;
    json_t *root = json_pack("{s:{s:s}}", "redis", "host", "h");
    (void)state;
    assert_non_null(root);
    assert_int_equal(rk__config_from_json(root, &c, err, sizeof(err)), 0);
    assert_ptr_equal(c->root, root);
    assert_int_equal(root->refcount, 2);
    assert_ptr_equal(json_object_get(root, "detectors"), c->detectors);
    rk__config_free(c);
    assert_int_equal(root->refcount, 1);
    assert_string_equal(json_string_value(json_object_get(
        json_object_get(root, "redis"), "host")), "h");
    json_decref(root);

    /* A failing config leaves the root's count alone. */
    root = json_pack("{s:{s:i}}", "redis", "port", 0);
    assert_non_null(root);
    c = (rk__config *)0x1;
    assert_int_equal(rk__config_from_json(root, &c, err, sizeof(err)), -1);
    assert_null(c);
    assert_int_equal(root->refcount, 1);
    assert_null(json_object_get(root, "detectors"));
    json_decref(root);

    /* A string with an embedded NUL is refused. */
    root = json_pack("{s:{s:s#}}", "redis", "host", "a\0b", 3);
    assert_non_null(root);
    assert_int_equal(rk__config_from_json(root, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "redis.host: expected a non-empty string");
    json_decref(root);
}

/* ===================================================================
 * redis
 * =================================================================== */

static void test_redis(void **state)
{
    (void)state;
    BAD("{\"redis\":{\"host\":\"\"}}", "redis.host: expected a non-empty string");
    BAD("{\"redis\":{\"host\":1}}", "redis.host: expected a non-empty string");
    BAD("{\"redis\":{\"host\":null}}", "redis.host: expected a non-empty string");
    BAD("{\"redis\":{\"port\":0}}",
        "redis.port: expected an integer from 1 to 65535");
    BAD("{\"redis\":{\"port\":65536}}",
        "redis.port: expected an integer from 1 to 65535");
    BAD("{\"redis\":{\"port\":\"6379\"}}",
        "redis.port: expected an integer from 1 to 65535");
    BAD("{\"redis\":{\"port\":6379.0}}",
        "redis.port: expected an integer from 1 to 65535");
    BAD("{\"redis\":{\"password\":5}}",
        "redis.password: expected a string or null");
    BAD("{\"redis\":{\"username\":\"\",\"password\":\"p\"}}",
        "redis.username: expected a non-empty string or null");
    BAD("{\"redis\":{\"username\":false,\"password\":\"p\"}}",
        "redis.username: expected a non-empty string or null");
    BAD("{\"redis\":{\"username\":\"u\"}}",
        "redis.username: requires redis.password");
    BAD("{\"redis\":{\"username\":\"u\",\"password\":null}}",
        "redis.username: requires redis.password");
    BAD("{\"redis\":{\"db\":-1}}",
        "redis.db: expected an integer from 0 to 2147483647");
    BAD("{\"redis\":{\"db\":2147483648}}",
        "redis.db: expected an integer from 0 to 2147483647");
    BAD("{\"redis\":{\"db\":\"0\"}}",
        "redis.db: expected an integer from 0 to 2147483647");
}

/* ===================================================================
 * redis: Sentinel and WAIT
 * =================================================================== */

static void test_redis_sentinel(void **state)
{
    rk__config *c;
    char host[256];
    int port = 0;
    (void)state;

    c = GOOD("{\"redis\":{\"sentinels\":[\"10.0.0.1:26379\",\"s2.local:1\","
             "\"[::1]:65535\"],\"master_name\":\"riskmaster\","
             "\"wait_replicas\":1,\"wait_timeout\":\"250ms\"}}");
    assert_int_equal(c->n_sentinels, 3);
    assert_string_equal(c->redis_sentinels[0], "10.0.0.1:26379");
    assert_string_equal(c->redis_sentinels[1], "s2.local:1");
    assert_string_equal(c->redis_sentinels[2], "[::1]:65535");
    assert_string_equal(c->redis_master_name, "riskmaster");
    assert_int_equal(c->redis_wait_replicas, 1);
    assert_int_equal(c->redis_wait_timeout, 250);
    rk__config_free(c);

    /* [] is off; master_name may then be anything, even "". */
    c = GOOD("{\"redis\":{\"sentinels\":[],\"master_name\":\"\","
             "\"wait_replicas\":1000,\"wait_timeout\":\"60s\"}}");
    assert_int_equal(c->n_sentinels, 0);
    assert_string_equal(c->redis_master_name, "");
    assert_int_equal(c->redis_wait_replicas, 1000);
    assert_int_equal(c->redis_wait_timeout, 60 * RK_SECOND);
    rk__config_free(c);
    c = GOOD("{\"redis\":{\"sentinels\":[\"h:2\"],\"wait_timeout\":\"1ms\"}}");
    assert_int_equal(c->n_sentinels, 1);
    assert_string_equal(c->redis_master_name, "mymaster");
    assert_int_equal(c->redis_wait_timeout, 1);
    rk__config_free(c);

    BAD("{\"redis\":{\"sentinels\":\"h:1\"}}",
        "redis.sentinels: expected an array of \"host:port\" strings");
    BAD("{\"redis\":{\"sentinels\":{}}}",
        "redis.sentinels: expected an array of \"host:port\" strings");
    BAD("{\"redis\":{\"sentinels\":[\"h:1\",\"h\"]}}",
        "redis.sentinels[1]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"h:1\",\"h:1\",5]}}",
        "redis.sentinels[2]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[null]}}", "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\":26379\"]}}",
        "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"h:0\"]}}", "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"h:65536\"]}}",
        "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"h:\"]}}", "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"h:1x\"]}}", "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"::1:26379\"]}}",
        "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"[::1]26379\"]}}",
        "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"a b:1\"]}}", "redis.sentinels[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"sentinels\":[\"h:1\"],\"master_name\":\"\"}}",
        "redis.master_name: expected a non-empty string when redis.sentinels is set");
    BAD("{\"redis\":{\"master_name\":null}}", "redis.master_name: expected a string");
    BAD("{\"redis\":{\"master_name\":3}}", "redis.master_name: expected a string");
    BAD("{\"redis\":{\"wait_replicas\":-1}}",
        "redis.wait_replicas: expected an integer from 0 to 1000");
    BAD("{\"redis\":{\"wait_replicas\":1001}}",
        "redis.wait_replicas: expected an integer from 0 to 1000");
    BAD("{\"redis\":{\"wait_replicas\":\"1\"}}",
        "redis.wait_replicas: expected an integer from 0 to 1000");
    BAD("{\"redis\":{\"wait_timeout\":\"0s\"}}",
        "redis.wait_timeout: expected a duration of at least 1ms");
    BAD("{\"redis\":{\"wait_timeout\":\"61s\"}}",
        "redis.wait_timeout: expected a duration from 1ms to 60s");
    BAD("{\"redis\":{\"wait_timeout\":1000}}",
        "redis.wait_timeout: expected a duration such as \"90s\", \"10m\", \"24h\" or \"30d\"");

    /* The address parser redis.c and the watcher use. */
    assert_int_equal(rk__parse_addr("[fe80::1]:26379", host, sizeof(host), &port), 0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 26379);
    assert_int_equal(rk__parse_addr("abc:9", host, 4, &port), 0);
    assert_string_equal(host, "abc");
    assert_int_equal(rk__parse_addr("abcd:9", host, 4, &port), -1);
    assert_int_equal(rk__parse_addr("[]:9", host, sizeof(host), &port), -1);
    assert_int_equal(rk__parse_addr(NULL, host, sizeof(host), &port), -1);
}

/* ===================================================================
 * redis: Cluster
 * =================================================================== */

static void test_redis_cluster(void **state)
{
    rk__config *c, *p = NULL;
    char err[RK_ERRLEN];
    (void)state;

    c = GOOD("{\"redis\":{\"cluster\":[\"10.0.0.1:7000\",\"n2.local:7001\","
             "\"[::1]:7002\"],\"password\":\"pw\"},\"partitions\":6}");
    assert_int_equal(c->n_cluster, 3);
    assert_string_equal(c->redis_cluster[0], "10.0.0.1:7000");
    assert_string_equal(c->redis_cluster[1], "n2.local:7001");
    assert_string_equal(c->redis_cluster[2], "[::1]:7002");
    assert_int_equal(c->n_sentinels, 0);
    assert_int_equal(c->redis_db, 0);
    /* A partition's copy keeps the seeds. */
    assert_int_equal(rk__config_partition(c, 4, &p, err, sizeof(err)), 0);
    assert_int_equal(p->n_cluster, 3);
    assert_string_equal(p->redis_cluster[1], "n2.local:7001");
    assert_string_equal(p->state_key, "riskd:state:{4}");
    rk__config_free(p);
    rk__config_free(c);

    /* [] is off: then Sentinel and any db are allowed again. */
    c = GOOD("{\"redis\":{\"cluster\":[],\"sentinels\":[\"h:1\"],\"db\":3}}");
    assert_int_equal(c->n_cluster, 0);
    assert_null(c->redis_cluster);
    assert_int_equal(c->n_sentinels, 1);
    rk__config_free(c);
    c = GOOD("{\"redis\":{\"cluster\":[\"h:1\"],\"db\":0,\"sentinels\":[]}}");
    assert_int_equal(c->n_cluster, 1);
    rk__config_free(c);

    BAD("{\"redis\":{\"cluster\":\"h:1\"}}",
        "redis.cluster: expected an array of \"host:port\" strings");
    BAD("{\"redis\":{\"cluster\":null}}",
        "redis.cluster: expected an array of \"host:port\" strings");
    BAD("{\"redis\":{\"cluster\":[\"h:1\",\"h\"]}}",
        "redis.cluster[1]: expected \"host:port\"");
    BAD("{\"redis\":{\"cluster\":[7000]}}", "redis.cluster[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"cluster\":[\"h:0\"]}}", "redis.cluster[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"cluster\":[\"h:65536\"]}}",
        "redis.cluster[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"cluster\":[\"::1:7000\"]}}",
        "redis.cluster[0]: expected \"host:port\"");
    BAD("{\"redis\":{\"cluster\":[\"h:1\"],\"sentinels\":[\"s:2\"]}}",
        "redis.cluster: cannot be combined with redis.sentinels");
    BAD("{\"redis\":{\"sentinels\":[\"s:2\"],\"cluster\":[\"h:1\"],\"db\":1}}",
        "redis.cluster: cannot be combined with redis.sentinels");
    BAD("{\"redis\":{\"cluster\":[\"h:1\"],\"db\":1}}",
        "redis.db: must be 0 with redis.cluster (a Redis Cluster has only database 0)");
    BAD("{\"redis\":{\"cluster\":[\"h:1\"],\"db\":-1}}",
        "redis.db: expected an integer from 0 to 2147483647");
}

/* ===================================================================
 * streams
 * =================================================================== */

static void test_streams(void **state)
{
    (void)state;
    BAD("{\"streams\":{\"scan\":\"\"}}", "streams.scan: expected a non-empty string");
    BAD("{\"streams\":{\"scan\":[]}}", "streams.scan: expected a non-empty string");
    BAD("{\"streams\":{\"case\":null}}", "streams.case: expected a non-empty string");
    BAD("{\"streams\":{\"case\":\"enforce:scan\"}}",
        "streams.case: must differ from streams.scan");
    BAD("{\"streams\":{\"scan\":\"x\",\"case\":\"x\"}}",
        "streams.case: must differ from streams.scan");
    BAD("{\"streams\":{\"group\":\"\"}}", "streams.group: expected a non-empty string");
    BAD("{\"streams\":{\"consumer\":\"\"}}",
        "streams.consumer: expected a non-empty string or null");
    BAD("{\"streams\":{\"consumer\":7}}",
        "streams.consumer: expected a non-empty string or null");
    static const char *bad_starts[] = {
        "\"\"", "\">\"", "\"-\"", "\"1-\"", "\"-1\"", "\"1-2-3\"", "\"a\"",
        "\" 0\"", "\"0 \"", "\"+1\"", "\"1.5\"", "\"99999999999999999999\"",
        "\"1-99999999999999999999\"", "0", "null", "[]",
    };
    size_t i;
    for (i = 0; i < sizeof(bad_starts) / sizeof(bad_starts[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "{\"streams\":{\"start\":%s}}", bad_starts[i]);
        BAD(text, "streams.start: expected \"0\", \"$\" or a stream id");
    }
    rk__config *c = GOOD("{\"streams\":{\"start\":\"18446744073709551615-0\"}}");
    assert_string_equal(c->start, "18446744073709551615-0");
    rk__config_free(c);
    BAD("{\"streams\":{\"batch\":0}}",
        "streams.batch: expected an integer from 1 to 100000");
    BAD("{\"streams\":{\"batch\":100001}}",
        "streams.batch: expected an integer from 1 to 100000");
    BAD("{\"streams\":{\"batch\":\"500\"}}",
        "streams.batch: expected an integer from 1 to 100000");
    BAD("{\"streams\":{\"max_deliveries\":0}}",
        "streams.max_deliveries: expected an integer from 1 to 1000");
    BAD("{\"streams\":{\"max_deliveries\":1001}}",
        "streams.max_deliveries: expected an integer from 1 to 1000");
    BAD("{\"streams\":{\"claim_idle\":\"999ms\"}}",
        "streams.claim_idle: expected a duration of at least 1000ms");
    BAD("{\"streams\":{\"claim_idle\":60}}",
        "streams.claim_idle: expected a duration such as \"90s\", \"10m\", "
        "\"24h\" or \"30d\"");
}

/* ===================================================================
 * alerts, state
 * =================================================================== */

static void test_alerts_state(void **state)
{
    (void)state;
    BAD("{\"alerts\":{\"stream\":\"\"}}", "alerts.stream: expected a non-empty string");
    BAD("{\"alerts\":{\"open_key\":\"\"}}", "alerts.open_key: expected a non-empty string");
    BAD("{\"alerts\":{\"language\":\"fr\"}}", "alerts.language: expected \"zh-CN\" or \"en\"");
    BAD("{\"alerts\":{\"channel_prefix\":null}}",
        "alerts.channel_prefix: expected a string");
    BAD("{\"alerts\":{\"channel_prefix\":1}}",
        "alerts.channel_prefix: expected a string");
    BAD("{\"alerts\":{\"maxlen\":0}}",
        "alerts.maxlen: expected an integer from 1 to 9007199254740991");
    BAD("{\"alerts\":{\"maxlen\":9007199254740992}}",
        "alerts.maxlen: expected an integer from 1 to 9007199254740991");
    BAD("{\"alerts\":{\"maxlen\":1e6}}",
        "alerts.maxlen: expected an integer from 1 to 9007199254740991");
    BAD("{\"alerts\":{\"dedupe_ttl\":\"0s\"}}",
        "alerts.dedupe_ttl: expected a duration of at least 1000ms");
    BAD("{\"alerts\":{\"dedupe_ttl\":\"30 d\"}}",
        "alerts.dedupe_ttl: expected a duration such as \"90s\", \"10m\", "
        "\"24h\" or \"30d\"");
    BAD("{\"state\":{\"interval\":\"99ms\"}}",
        "state.interval: expected a duration of at least 100ms");
    BAD("{\"state\":{\"interval\":null}}",
        "state.interval: expected a duration such as \"90s\", \"10m\", "
        "\"24h\" or \"30d\"");
    BAD("{\"state\":{\"key\":\"\"}}", "state.key: expected a non-empty string");
    BAD("{\"state\":{\"key\":{}}}", "state.key: expected a non-empty string");
    BAD("{\"state\":{\"task_retention\":\"999ms\"}}",
        "state.task_retention: expected a duration of at least 1000ms");
}

/* The lifecycle keys: defaults, ranges, the open hash's slot. */
static void test_alerts_lifecycle(void **state)
{
    rk__config *c;
    (void)state;
    c = GOOD("{}");
    assert_int_equal(c->keep_firing_for, 3600000);
    assert_int_equal(c->open_ttl, 30LL * 86400000);
    assert_string_equal(c->alerts_open_key, "riskd:open");
    assert_false(c->lang_en);
    rk__config_free(c);
    c = GOOD("{\"alerts\":{\"language\":\"en\",\"keep_firing_for\":\"0s\","
             "\"open_ttl\":\"90d\",\"open_key\":\"my:open\"}}");
    assert_int_equal(c->keep_firing_for, 0);
    assert_int_equal(c->open_ttl, 90LL * 86400000);
    assert_string_equal(c->alerts_open_key, "my:open");
    assert_true(c->lang_en);
    rk__config_free(c);
    BAD("{\"alerts\":{\"language\":\"fr\"}}", "alerts.language: expected \"zh-CN\" or \"en\"");
    BAD("{\"alerts\":{\"language\":null}}", "alerts.language: expected \"zh-CN\" or \"en\"");
    BAD("{\"alerts\":{\"keep_firing_for\":\"-1s\"}}",
        "alerts.keep_firing_for: expected a duration such as \"90s\", \"10m\", "
        "\"24h\" or \"30d\"");
    BAD("{\"alerts\":{\"open_ttl\":\"59s\"}}",
        "alerts.open_ttl: expected a duration of at least 60000ms");
    BAD("{\"alerts\":{\"open_key\":\"\"}}", "alerts.open_key: expected a non-empty string");
    /* On a cluster: the default follows the stream's slot; another slot is
     * refused. */
    c = GOOD("{\"redis\":{\"cluster\":[\"10.0.0.1:7000\"]},\"alerts\":{\"stream\":\"{al}x\"}}");
    assert_string_equal(c->alerts_open_key, "riskd:open:{al}");
    rk__config_free(c);
    c = GOOD("{\"redis\":{\"cluster\":[\"10.0.0.1:7000\"]},"
             "\"alerts\":{\"stream\":\"{al}x\",\"open_key\":\"{al}:open\"}}");
    assert_string_equal(c->alerts_open_key, "{al}:open");
    rk__config_free(c);
    BAD("{\"redis\":{\"cluster\":[\"10.0.0.1:7000\"]},\"alerts\":{\"open_key\":\"riskd:open\"}}",
        "alerts.open_key: \"riskd:open\" must hash to the Redis Cluster slot of alerts.stream "
        "\"alerts\" (give both the same hash tag, e.g. \"{alerts}:open\" beside \"{alerts}\")");
}

/* Malformed durations, on every duration key. */
static void test_bad_durations(void **state)
{
    static const char *keys[] = {
        "streams.claim_idle", "alerts.dedupe_ttl", "clock.idle",
        "state.interval", "state.task_retention", "state.dedupe_window",
        "clock.allowed_lateness",
    };
    static const char *vals[] = {
        "\"10\"", "\"10x\"", "\"-5s\"", "\"1.5h\"", "5", "\"\"", "\"s\"",
        "\"10S\"", "\" 10s\"", "\"10s \"", "\"+5s\"", "\"1h30m\"", "true",
        "\"99999999999999999999d\"", "\"36501d\"",
    };
    size_t k, v;
    (void)state;
    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        char sec[32], want[160];
        const char *dot = strchr(keys[k], '.');
        snprintf(sec, sizeof(sec), "%.*s", (int)(dot - keys[k]), keys[k]);
        snprintf(want, sizeof(want), "%s: expected a duration such as \"90s\", "
                 "\"10m\", \"24h\" or \"30d\"", keys[k]);
        for (v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
            char text[160];
            snprintf(text, sizeof(text), "{\"%s\":{\"%s\":%s}}", sec, dot + 1,
                     vals[v]);
            BAD(text, want);
        }
    }
}

/* ===================================================================
 * clock
 * =================================================================== */

static void test_clock(void **state)
{
    static const struct { const char *tz; int off; } good[] = {
        { "Z", 0 }, { "+00:00", 0 }, { "-00:00", 0 }, { "+08:00", 28800 },
        { "-05:30", -19800 }, { "+23:59", 86340 }, { "-23:59", -86340 },
        { "+05:45", 20700 },
    };
    static const char *bad[] = {
        "\"z\"", "\"\"", "\"+8:00\"", "\"+0800\"", "\"+08\"", "\"+24:00\"",
        "\"+08:60\"", "\"08:00\"", "\"+08:00 \"", "\"+08:00:00\"", "\"UTC\"",
        "\"Asia/Shanghai\"", "\"+0a:00\"", "\"+08-00\"", "8", "null",
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char text[96];
        rk__config *c;
        snprintf(text, sizeof(text), "{\"clock\":{\"timezone\":\"%s\"}}", good[i].tz);
        c = GOOD(text);
        assert_int_equal(c->tz_offset_s, good[i].off);
        rk__config_free(c);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[96];
        snprintf(text, sizeof(text), "{\"clock\":{\"timezone\":%s}}", bad[i]);
        BAD(text, "clock.timezone: expected \"Z\" or an offset such as \"+08:00\"");
    }
    BAD("{\"clock\":{\"wall_advance\":1}}", "clock.wall_advance: expected true or false");
    BAD("{\"clock\":{\"wall_advance\":\"true\"}}",
        "clock.wall_advance: expected true or false");
    BAD("{\"clock\":{\"idle\":\"99ms\"}}",
        "clock.idle: expected a duration of at least 100ms");
    {
        rk__config *c = GOOD("{\"clock\":{\"allowed_lateness\":\"72h\"}}");
        assert_int_equal(c->allowed_lateness, 72 * RK_HOUR);
        rk__config_free(c);
        c = GOOD("{\"clock\":{\"allowed_lateness\":\"0s\"}}");
        assert_int_equal(c->allowed_lateness, 0);
        rk__config_free(c);
    }
}

/* ===================================================================
 * metrics.listen
 * =================================================================== */

static void test_metrics_listen(void **state)
{
    static const struct { const char *listen, *host; int port; } good[] = {
        { "127.0.0.1:9477", "127.0.0.1", 9477 },
        { "0.0.0.0:0", "0.0.0.0", 0 },
        { "localhost:65535", "localhost", 65535 },
        { "[::1]:9477", "::1", 9477 },
        { "[::]:80", "::", 80 },
        { "[fe80::1%eth0]:1", "fe80::1%eth0", 1 },
        { "h:00080", "h", 80 },
    };
    static const char *bad[] = {
        "\"127.0.0.1\"", "\"127.0.0.1:\"", "\":9477\"", "\"h:65536\"",
        "\"h:-1\"", "\"h:+1\"", "\"h:1a\"", "\"h: 1\"", "\"::1:9477\"",
        "\"[::1]\"", "\"[::1]9477\"", "\"[]:1\"", "\"[::1:1\"", "\"[a]b]:1\"",
        "\"h:99999999999999999999\"", "9477", "null", "false",
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char text[96];
        rk__config *c;
        snprintf(text, sizeof(text), "{\"metrics\":{\"listen\":\"%s\"}}",
                 good[i].listen);
        c = GOOD(text);
        assert_string_equal(c->metrics_listen, good[i].listen);
        assert_string_equal(c->metrics_host, good[i].host);
        assert_int_equal(c->metrics_port, good[i].port);
        rk__config_free(c);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[96];
        snprintf(text, sizeof(text), "{\"metrics\":{\"listen\":%s}}", bad[i]);
        BAD(text, "metrics.listen: expected \"host:port\" or \"\"");
    }
}

/* ===================================================================
 * Files
 * =================================================================== */

static void expect_load_error(const char *path, const char *want)
{
    char err[RK_ERRLEN] = "";
    rk__config *c = (rk__config *)0x1;
    assert_int_equal(rk__config_load(path, &c, err, sizeof(err)), -1);
    assert_null(c);
    assert_string_equal(err, want);
}

static void test_files(void **state)
{
    char want[512], err[RK_ERRLEN];
    char *path;
    rk__config *c = NULL;
    (void)state;

    expect_load_error("/nonexistent/riskd.json",
                      "/nonexistent/riskd.json: No such file or directory");
    expect_load_error("/tmp", "/tmp: Is a directory");

    /* Syntax error on line 3: line and column in the message. */
    path = write_temp("{\n  \"redis\": {},\n  \"streams\": {,}\n}\n", 36);
    assert_int_equal(rk__config_load(path, &c, err, sizeof(err)), -1);
    assert_null(c);
    snprintf(want, sizeof(want), "%s: line 3 column ", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_non_null(strstr(err, "column 15: "));
    unlink(path);
    free(path);

    /* Not JSON at all. */
    path = write_temp("redis.host = x\n", 15);
    assert_int_equal(rk__config_load(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: line 1 column ", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    unlink(path);
    free(path);

    /* Empty file. */
    path = write_temp("", 0);
    assert_int_equal(rk__config_load(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: line 1 column ", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    unlink(path);
    free(path);

    /* Duplicate keys are refused. */
    path = write_temp("{\"redis\":{},\n\"redis\":{}}", 24);
    assert_int_equal(rk__config_load(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: line 2 column ", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_non_null(strstr(err, "duplicate"));
    unlink(path);
    free(path);

    /* Valid JSON, not an object. */
    path = write_temp("[1, 2]\n", 7);
    snprintf(want, sizeof(want), "%s: expected a JSON object", path);
    expect_load_error(path, want);
    unlink(path);
    free(path);
    path = write_temp("\"x\"", 3);
    snprintf(want, sizeof(want), "%s: expected a JSON object", path);
    expect_load_error(path, want);
    unlink(path);
    free(path);

    /* A bad key: the key path alone, without the file name. */
    path = write_temp("{\"streams\": {\"bacth\": 5}}", 25);
    expect_load_error(path, "streams.bacth: unknown key");
    unlink(path);
    free(path);

    /* A good file. */
    path = write_temp("{\"redis\": {\"port\": 7000}}", 25);
    assert_int_equal(rk__config_load(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c->redis_port, 7000);
    assert_int_equal(c->batch, 500);
    rk__config_free(c);
    unlink(path);
    free(path);
}

/* Unreadable file (permissions; skipped as root, who can read anything) and
 * a file over the 16 MiB cap. */
static void test_file_limits(void **state)
{
    char want[512], err[RK_ERRLEN];
    char *path, *big;
    size_t n = 16 * 1024 * 1024 + 1, i;
    rk__config *c = NULL;
    FILE *f;
    (void)state;

    path = write_temp("{}", 2);
    assert_int_equal(chmod(path, 0), 0);
    snprintf(want, sizeof(want), "%s: Permission denied", path);
    if (geteuid() != 0) {
        expect_load_error(path, want);
    } else {
        /* Root reads anything: check as "nobody" in a child process, which
         * reports through a pipe (its exit status is the tool's under
         * valgrind). */
        int fds[2];
        char verdict = 'x';
        pid_t pid;
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            rk__config *cc = NULL;
            char ok = 'n';
            close(fds[0]);
            if (setgid(65534) == 0 && setuid(65534) == 0 &&
                rk__config_load(path, &cc, err, sizeof(err)) == -1 &&
                cc == NULL && strcmp(err, want) == 0)
                ok = 'y';
            if (write(fds[1], &ok, 1) != 1)
                ok = 'n';
            _exit(0);
        }
        close(fds[1]);
        assert_int_equal(read(fds[0], &verdict, 1), 1);
        close(fds[0]);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_int_equal(verdict, 'y');
    }
    unlink(path);
    free(path);

    /* Exactly 16 MiB of JSON (an object padded with spaces) is accepted. */
    path = write_temp("", 0);
    big = malloc(n);
    assert_non_null(big);
    for (i = 0; i < n; i++)
        big[i] = ' ';
    big[0] = '{';
    big[n - 2] = '}';
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, n - 1, f), n - 1);
    fclose(f);
    assert_int_equal(rk__config_load(path, &c, err, sizeof(err)), 0);
    rk__config_free(c);
    /* One byte more is refused. */
    f = fopen(path, "wb");
    assert_non_null(f);
    big[n - 2] = ' ';
    big[n - 1] = '}';
    assert_int_equal(fwrite(big, 1, n, f), n);
    fclose(f);
    snprintf(want, sizeof(want), "%s: file too large", path);
    expect_load_error(path, want);
    free(big);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_gives_defaults),
        cmocka_unit_test(test_shipped_file),
        cmocka_unit_test(test_null_sections_keys),
        cmocka_unit_test(test_all_values),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_root_reference),
        cmocka_unit_test(test_redis),
        cmocka_unit_test(test_redis_sentinel),
        cmocka_unit_test(test_redis_cluster),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_alerts_state),
        cmocka_unit_test(test_alerts_lifecycle),
        cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_metrics_listen),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_file_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
