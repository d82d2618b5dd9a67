/* tests/integration/test-promtool.c - the Prometheus rules and the Grafana
 * dashboard under config/ are valid and name only metrics riskd exports.
 *
 *  - `promtool check rules config/prometheus/riskd-rules.yml` and, from
 *    config/prometheus, `promtool test rules riskd-rules.test.yml` (each
 *    alert fires on series that should trip it, and only then) both exit
 *    0. Without promtool (Debian package prometheus; CI installs it) this
 *    test is skipped with a message saying so.
 *  - every metric name in the rules, their tests and config/grafana/riskd.json
 *    (each `riskd_...` word) is a sample of a live riskd's /metrics: riskd
 *    runs against the test's Redis with a workload applied (so that the
 *    families that appear only after a watermark or a checkpoint are
 *    there), with one invalid entry in 50 (dead letters); beside it the
 *    /metrics of a riskd with two partitions, for the families only a
 *    partitioned deployment has (riskd_cross_held).
 *
 * Runs from the repository root, as `make test` does. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "itest.h"

#define OUT_MAX (256 * 1024)
#define METRICS_MAX (4 * 1024 * 1024)

static const char *const files[] = {
    "config/prometheus/riskd-rules.yml",
    "config/prometheus/riskd-rules.test.yml",
    "config/grafana/riskd.json",
};

/* Run a shell command with stderr joined to stdout into out (OUT_MAX).
 * Returns the exit status, or -1. */
static int run(char *out, const char *cmd)
{
    char full[1024];
    FILE *p;
    size_t n;
    int st;
    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    if ((p = popen(full, "r")) == NULL)
        return -1;
    n = fread(out, 1, OUT_MAX - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_promtool(void **state)
{
    char *out = malloc(OUT_MAX);
    (void)state;
    assert_non_null(out);
    if (run(out, "command -v promtool") != 0) {
        fprintf(stderr, "SKIPPED: promtool is not installed (Debian package prometheus): "
                "config/prometheus/riskd-rules.yml is not checked here (CI checks it)\n");
        free(out);
        skip();
    }
    if (run(out, "promtool check rules config/prometheus/riskd-rules.yml") != 0)
        fail_msg("promtool check rules failed:\n%s", out);
    if (run(out, "cd config/prometheus && promtool test rules riskd-rules.test.yml") != 0)
        fail_msg("promtool test rules failed:\n%s", out);
    assert_non_null(strstr(out, "SUCCESS"));
    free(out);
}

/* ===================================================================
 * Metric names
 * =================================================================== */

static bool has_metric(void *arg)
{
    return it_metric(*(int *)arg, "riskd_checkpoint_age_seconds") >= 0 &&
           it_metric(*(int *)arg, "riskd_watermark_lag_seconds") >= 0;
}

/* Is `name` (len bytes) the name of a sample in the exposition text? */
static bool exported(const char *text, const char *name, size_t len)
{
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (p[0] != '#' && l > len && strncmp(p, name, len) == 0 &&
            (p[len] == '{' || p[len] == ' '))
            return true;
        p += l + (eol ? 1 : 0);
    }
    return false;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;
    if (f == NULL)
        fail_msg("cannot open %s (run from the repository root)", path);
    buf = malloc(OUT_MAX);
    assert_non_null(buf);
    n = fread(buf, 1, OUT_MAX - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The /metrics of a riskd with two partitions (and so a cross pipeline),
 * whose families only such a deployment exports, is consumable. */
static bool cross_exported(void *arg)
{
    return it_metric(*(int *)arg, "riskd_cross_held") >= 0;
}

static void test_names_exported(void **state)
{
    it_env *env = *state;
    char cfg[512], *text = malloc(METRICS_MAX);
    int mport = it_free_port(), pport = it_free_port(), missing = 0, checked = 0;
    size_t i, n;
    it_riskd parted;

    assert_non_null(text);
    /* a second riskd with two partitions (other keys, empty streams) */
    snprintf(cfg, sizeof(cfg), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"},"
             "\"partitions\":2,\"streams\":{\"consumer\":\"parted\"}}", pport);
    memset(&parted, 0, sizeof(parted));
    assert_int_equal(it_riskd_start(&parted, env->redis.port, cfg), 0);
    if (!it_wait_until(cross_exported, &pport, 20000)) {
        it_riskd_dump_log(&parted);
        fail_msg("riskd with two partitions exports no riskd_cross_held");
    }
    assert_int_equal(it_http_get(pport, "/metrics", text, METRICS_MAX / 2), 200);
    it_riskd_signal(&parted, SIGTERM);
    assert_int_equal(it_riskd_wait(&parted, 20000), 0);
    n = strlen(text);
    snprintf(cfg, sizeof(cfg), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"},"
             "\"state\":{\"interval\":\"200ms\"},\"clock\":{\"wall_advance\":false}}", mport);
    assert_true(it_preload_workload(env->c, 3000, 10, 0.05, 7, 50) > 0);
    assert_int_equal(it_riskd_start(&env->riskd, env->redis.port, cfg), 0);
    if (!it_wait_settled(env->c, 60000) || !it_wait_until(has_metric, &mport, 20000)) {
        it_riskd_dump_log(&env->riskd);
        fail_msg("riskd did not apply the workload and checkpoint");
    }
    assert_int_equal(it_http_get(mport, "/metrics", text + n, METRICS_MAX - n), 200);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *src = slurp(files[i]);
        const char *p = src;
        while ((p = strstr(p, "riskd_")) != NULL) {
            size_t len = 0;
            if (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) {
                p++;
                continue;
            }
            while (isalnum((unsigned char)p[len]) || p[len] == '_')
                len++;
            checked++;
            if (!exported(text, p, len)) {
                fprintf(stderr, "%s: %.*s is not a metric riskd exports\n", files[i],
                        (int)len, p);
                missing++;
            }
            p += len;
        }
        free(src);
    }
    fprintf(stderr, "%d metric names checked against a live /metrics\n", checked);
    assert_true(checked > 20);
    assert_int_equal(missing, 0);
    it_riskd_signal(&env->riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&env->riskd, 20000), 0);
    free(text);
}

static int setup(void **state)
{
    *state = it_fixture_new(sizeof(it_env));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promtool),
        cmocka_unit_test_setup_teardown(test_names_exported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
