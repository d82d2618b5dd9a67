/* tests/lib/itest.h - integration test harness: a throwaway redis-server
 * on a free loopback port, riskd as a child process, a hiredis client.
 *
 * Everything lives in a fresh directory under $TMPDIR; processes are
 * stopped by the test (and killed by the runner's timeout otherwise). */
#ifndef RISKD_TEST_ITEST_H
#define RISKD_TEST_ITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <hiredis/hiredis.h>

typedef struct it_redis {
    pid_t pid;
    int port;
    char dir[256];
    char extra[512];
} it_redis;

typedef struct it_riskd {
    pid_t pid;
    char cfg[300];
    char log[300];
    char dir[256];
} it_riskd;

/* The common integration fixture: a throwaway redis-server, a client
 * connected to it, and room for one riskd. */
typedef struct it_env {
    it_redis redis;
    it_riskd riskd;
    redisContext *c;
} it_env;

/* Start the redis-server and connect the client. Returns 0 or -1. */
int it_env_start(it_env *env);
/* SIGKILL riskd if it still runs, free the client, kill the redis-server. */
void it_env_stop(it_env *env);
/* A test fixture whose first member is an it_env: `size` zeroed bytes
 * with the env started, or NULL (nothing left running). */
void *it_fixture_new(size_t size);
/* Stop the fixture's env and free it; NULL is ignored. */
void it_fixture_free(void *fixture);
/* Create a fresh directory "$TMPDIR/riskd-<what>-XXXXXX" into dir. 0 or -1. */
int it_tmpdir(char *dir, size_t len, const char *what);

/* A free TCP port on 127.0.0.1. */
int it_free_port(void);
/* Start redis-server (extra: more command-line arguments, may be NULL) and
 * wait until it answers PING. Returns 0 or -1. */
int it_redis_start(it_redis *r, const char *extra);
/* Start again on the same port and directory (after a stop or kill). */
int it_redis_restart(it_redis *r);
void it_redis_stop(it_redis *r);            /* SIGTERM and reap */
void it_redis_kill(it_redis *r);            /* SIGKILL and reap */
/* Connect (1 s timeout); aborts the test on failure. */
redisContext *it_connect(int port);
/* Run a command; aborts when the reply is NULL. Caller frees. */
redisReply *it_cmd(redisContext *c, const char *fmt, ...);
long long it_int(redisContext *c, const char *fmt, ...);

/* Write a riskd config: the JSON object `json` with redis.port set to port
 * and metrics.listen "" unless json sets them. Returns 0 or -1. */
int it_write_config(const char *path, int port, const char *json);
/* Start build/riskd -c <dir>/riskd.json with that config. stderr goes to
 * <dir>/riskd.log. Returns 0 or -1. */
int it_riskd_start(it_riskd *d, int port, const char *json);
/* Send a signal; it_riskd_wait reaps with a timeout and returns the exit
 * status (or 128 + signal, or -1 on timeout). */
void it_riskd_signal(it_riskd *d, int sig);
int it_riskd_wait(it_riskd *d, int timeout_ms);
bool it_riskd_alive(it_riskd *d);
/* Print riskd's log to stderr (for failures). */
void it_riskd_dump_log(const it_riskd *d);
/* Does riskd's log contain the text? */
bool it_log_contains(const it_riskd *d, const char *text);

/* Poll until fn(arg) is true or timeout_ms passes. */
bool it_wait_until(bool (*fn)(void *arg), void *arg, int timeout_ms);
/* Wait until XLEN key >= n. */
bool it_wait_xlen(redisContext *c, const char *key, long long n, int timeout_ms);
/* Wait until the group has no pending entries and lag 0 on key. */
bool it_wait_drained(redisContext *c, const char *key, const char *group, int timeout_ms);
/* XADD key * data <json>; returns the new id in buf. */
void it_xadd(redisContext *c, const char *key, const char *json, char *id, size_t idlen);
/* The alerts in the stream `key` as a jansson array (caller decrefs). */
struct json_t *it_alerts(redisContext *c, const char *key);

/* Preload n generated events (tests/lib/gen.c: every type, share `anomaly`
 * of planted anomalies, over `days` of event time, seed) into enforce:scan
 * and enforce:case with explicit entry ids 1-0, 2-0, ... per stream (alert
 * ids are a function of content; the same entry ids also give the same
 * evidence, so runs over the same preload compare whole alerts by id).
 * Every `invalid_every`-th entry (0 = none) is replaced by invalid input.
 * Returns the number written. */
size_t it_preload_workload(redisContext *c, size_t n, double days, double anomaly,
                           uint64_t seed, size_t invalid_every);

/* The same workload, writing only its events from..to-1 (0-based; the
 * entry ids are those of the whole preload): a test can write the first
 * part, do something, and write the rest. Returns the number written. */
size_t it_preload_range(redisContext *c, size_t n, double days, double anomaly,
                        uint64_t seed, size_t invalid_every, size_t from, size_t to);

/* enforce:scan and enforce:case both drained for the group riskd (now). */
bool it_both_drained(redisContext *c);
/* Wait until both are drained and XLEN alerts stayed the same for 0.5 s. */
bool it_wait_settled(redisContext *c, int timeout_ms);
/* The alerts of the stream "alerts" as an object id -> alert (without
 * emitted_at), and its notices as "<id>:<status>" -> notice; *dup names an
 * id (or id:status) written twice, or is NULL. */
struct json_t *it_alerts_by_id(redisContext *c, const char **dup);
/* Does the open hash equal what replaying the alert stream gives (firing
 * opens an id with its JSON, resolved/retracted/closed close it)? 0, or
 * -1 with the first difference in why. */
int it_check_open_hash(redisContext *c, const char *stream, const char *open_key,
                       char *why, size_t whylen);

/* GET path on 127.0.0.1:port (HTTP/1.0): the status, the body in buf
 * (len bytes, NUL-terminated); -1 when nothing answers. */
int it_http_get(int port, const char *path, char *buf, size_t len);
/* The value of the sample whose name and labels are exactly `series`
 * ("riskd_up", "x{a=\"b\"}") on port's /metrics, or -1 when absent. */
double it_metric(int port, const char *series);
/* Lines of riskd's log that contain text (NULL: every line). */
int it_log_count(const it_riskd *d, const char *text);
/* GET /metrics from 127.0.0.1:port: the sum of every sample of the metric
 * `name` (all its label sets), 0 when absent, -1 when nothing answers. */
double it_metric_sum(int port, const char *name);

/* Path of the build directory ($BUILD or "build"). */
const char *it_build_dir(void);
void it_sleep_ms(int ms);

#endif
