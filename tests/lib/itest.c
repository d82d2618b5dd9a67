/* tests/lib/itest.c - see itest.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "gen.h"

const char *it_build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

void it_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Can a server bind 127.0.0.1:port now? */
static int port_free(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* A port for a server the test starts. With IT_SLOT set (tests/run.sh runs
 * tests side by side, each in a slot 0..7), one of the slot's own 1,500
 * ports from 20000 up: below the kernel's ephemeral ports (32768 up), so
 * that neither a test beside this one nor an outgoing connection takes it
 * between this call and the server's bind. A process walks its slot's
 * range from an offset of its pid, skipping ports in use. Without IT_SLOT,
 * a port the kernel picks. */
int it_free_port(void)
{
    static int next = -1;
    const char *slot = getenv("IT_SLOT");
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd, port = -1;

    if (slot != NULL && *slot >= '0' && *slot <= '7' && slot[1] == '\0') {
        int base = 20000 + (*slot - '0') * 1500;
        if (next < 0)
            next = (int)(getpid() % 1500);
        for (int i = 0; i < 1500; i++) {
            port = base + next;
            next = (next + 1) % 1500;
            if (port_free(port))
                return port;
        }
        return -1;
    }
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int it_tmpdir(char *dir, size_t len, const char *what)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, len, "%s/riskd-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
    return mkdtemp(dir) ? 0 : -1;
}

static int spawn_redis(it_redis *r)
{
    char port[16], cmd[2048];
    pid_t pid;

    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(cmd, sizeof(cmd),
             "exec redis-server --port %d --bind 127.0.0.1 --dir %s --save '' "
             "--appendonly no --daemonize no --logfile %s/redis.log %s "
             "</dev/null >/dev/null 2>&1",
             r->port, r->dir, r->dir, r->extra);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        redisContext *c;
        struct timeval tv = {0, 200000};
        int st;
        it_sleep_ms(25);
        /* Ours exited (its port was taken after all): whatever answers on
         * the port is not ours. */
        if (waitpid(pid, &st, WNOHANG) == pid) {
            r->pid = 0;
            fprintf(stderr, "redis-server exited at start on port %d (see %s/redis.log)\n",
                    r->port, r->dir);
            return -1;
        }
        c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            int ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep == NULL || rep->type != REDIS_REPLY_ERROR || strstr(rep->str, "NOAUTH")) {
                ok = ok || (rep && rep->type == REDIS_REPLY_ERROR);
            }
            freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
    }
    fprintf(stderr, "redis-server did not start on port %d\n", r->port);
    return -1;
}

int it_redis_start(it_redis *r, const char *extra)
{
    memset(r, 0, sizeof(*r));
    if (it_tmpdir(r->dir, sizeof(r->dir), "redis") != 0)
        return -1;
    snprintf(r->extra, sizeof(r->extra), "%s", extra ? extra : "");
    /* A port can still be taken between the choice and the bind: try
     * another one. */
    for (int tries = 0; tries < 3; tries++) {
        if ((r->port = it_free_port()) > 0 && spawn_redis(r) == 0)
            return 0;
    }
    return -1;
}

int it_redis_restart(it_redis *r)
{
    return spawn_redis(r);
}

static void reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

void it_redis_stop(it_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        reap(r->pid);
        r->pid = 0;
    }
}

void it_redis_kill(it_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        reap(r->pid);
        r->pid = 0;
    }
}

redisContext *it_connect(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "cannot connect to redis on %d\n", port);
        abort();
    }
    redisSetTimeout(c, tv);
    return c;
}

redisReply *it_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "redis command failed: %s (%s)\n", fmt, c->errstr);
        abort();
    }
    return r;
}

long long it_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = -1;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "redis command failed: %s (%s)\n", fmt, c->errstr);
        abort();
    }
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    freeReplyObject(r);
    return v;
}

int it_write_config(const char *path, int port, const char *json)
{
    json_error_t jerr;
    json_t *o = json_loads(json && *json ? json : "{}", 0, &jerr), *redis, *metrics;
    int rc;
    if (o == NULL) {
        fprintf(stderr, "bad test config: %s\n", jerr.text);
        return -1;
    }
    redis = json_object_get(o, "redis");
    if (redis == NULL) {
        redis = json_object();
        json_object_set_new(o, "redis", redis);
    }
    if (json_object_get(redis, "port") == NULL)
        json_object_set_new(redis, "port", json_integer(port));
    metrics = json_object_get(o, "metrics");
    if (metrics == NULL) {
        metrics = json_object();
        json_object_set_new(o, "metrics", metrics);
    }
    if (json_object_get(metrics, "listen") == NULL)
        json_object_set_new(metrics, "listen", json_string(""));
    rc = json_dump_file(o, path, JSON_INDENT(2));
    json_decref(o);
    return rc;
}

int it_riskd_start(it_riskd *d, int port, const char *json)
{
    char bin[512];
    pid_t pid;

    if (d->dir[0] == '\0') {
        memset(d, 0, sizeof(*d));
        if (it_tmpdir(d->dir, sizeof(d->dir), "riskd") != 0)
            return -1;
        snprintf(d->cfg, sizeof(d->cfg), "%s/riskd.json", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/riskd.log", d->dir);
    }
    if (it_write_config(d->cfg, port, json) != 0)
        return -1;
    snprintf(bin, sizeof(bin), "%s/riskd", it_build_dir());
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        if (null >= 0) {            /* never hold the test's stdout/stdin */
            dup2(null, 0);
            dup2(null, 1);
            close(null);
        }
        execl(bin, "riskd", "-c", d->cfg, (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
    return 0;
}

void it_riskd_signal(it_riskd *d, int sig)
{
    if (d->pid > 0)
        kill(d->pid, sig);
}

int it_riskd_wait(it_riskd *d, int timeout_ms)
{
    int st, waited = 0;
    if (d->pid <= 0)
        return -1;
    for (;;) {
        pid_t p = waitpid(d->pid, &st, WNOHANG);
        if (p == d->pid)
            break;
        if (waited >= timeout_ms)
            return -1;
        it_sleep_ms(10);
        waited += 10;
    }
    d->pid = 0;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

bool it_riskd_alive(it_riskd *d)
{
    int st;
    if (d->pid <= 0)
        return false;
    if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
        d->pid = 0;
        return false;
    }
    return true;
}

void it_riskd_dump_log(const it_riskd *d)
{
    FILE *f = fopen(d->log, "r");
    char line[2048];
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s\n", d->log);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

bool it_log_contains(const it_riskd *d, const char *text)
{
    FILE *f = fopen(d->log, "r");
    char line[4096];
    bool found = false;
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

bool it_wait_until(bool (*fn)(void *arg), void *arg, int timeout_ms)
{
    int waited = 0;
    while (!fn(arg)) {
        if (waited >= timeout_ms)
            return false;
        it_sleep_ms(20);
        waited += 20;
    }
    return true;
}

bool it_wait_xlen(redisContext *c, const char *key, long long n, int timeout_ms)
{
    int waited = 0;
    while (it_int(c, "XLEN %s", key) < n) {
        if (waited >= timeout_ms)
            return false;
        it_sleep_ms(20);
        waited += 20;
    }
    return true;
}

/* lag 0 and pending 0 according to XINFO GROUPS. */
static bool group_drained(redisContext *c, const char *key, const char *group)
{
    redisReply *r = it_cmd(c, "XINFO GROUPS %s", key);
    bool drained = false;
    size_t i, k;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            redisReply *g = r->element[i];
            long long pending = -1, lag = -1;
            bool match = false;
            for (k = 0; k + 1 < g->elements; k += 2) {
                const char *f = g->element[k]->str;
                redisReply *v = g->element[k + 1];
                if (strcmp(f, "name") == 0 && v->type == REDIS_REPLY_STRING)
                    match = strcmp(v->str, group) == 0;
                else if (strcmp(f, "pending") == 0)
                    pending = v->integer;
                else if (strcmp(f, "lag") == 0)
                    lag = v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
            }
            if (match)
                drained = pending == 0 && lag == 0;
        }
    }
    freeReplyObject(r);
    return drained;
}

bool it_wait_drained(redisContext *c, const char *key, const char *group, int timeout_ms)
{
    int waited = 0;
    while (!group_drained(c, key, group)) {
        if (waited >= timeout_ms)
            return false;
        it_sleep_ms(20);
        waited += 20;
    }
    return true;
}

void it_xadd(redisContext *c, const char *key, const char *json, char *id, size_t idlen)
{
    redisReply *r = it_cmd(c, "XADD %s * data %s", key, json);
    if (id && idlen)
        snprintf(id, idlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

json_t *it_alerts(redisContext *c, const char *key)
{
    redisReply *r = it_cmd(c, "XRANGE %s - +", key);
    json_t *arr = json_array();
    size_t i, k;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            redisReply *fields = r->element[i]->element[1];
            for (k = 0; k + 1 < fields->elements; k += 2) {
                if (strcmp(fields->element[k]->str, "data") == 0) {
                    json_t *a = json_loads(fields->element[k + 1]->str, 0, NULL);
                    if (a)
                        json_array_append_new(arr, a);
                }
            }
        }
    }
    freeReplyObject(r);
    return arr;
}

int it_check_open_hash(redisContext *c, const char *stream, const char *open_key,
                       char *why, size_t whylen)
{
    json_t *alerts = it_alerts(c, stream), *want = json_object(), *a, *v;
    redisReply *h = it_cmd(c, "HGETALL %s", open_key);
    const char *id;
    size_t i, got = 0;
    int rc = 0;

    /* Replay the stream: a firing alert opens, resolved/retracted/closed
     * close; acknowledged replaces the value. */
    json_array_foreach(alerts, i, a) {
        const char *st = json_string_value(json_object_get(a, "status"));
        id = json_string_value(json_object_get(a, "id"));
        if (id == NULL)
            continue;
        if (st == NULL || strcmp(st, "firing") == 0) {
            if (json_object_get(want, id) == NULL)
                json_object_set(want, id, a);
        } else if (strcmp(st, "resolved") == 0 || strcmp(st, "retracted") == 0 ||
                   strcmp(st, "closed") == 0) {
            json_object_del(want, id);
        }
    }
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        snprintf(why, whylen, "HGETALL %s failed", open_key);
        rc = -1;
        goto done;
    }
    for (i = 0; i + 1 < h->elements; i += 2) {
        json_t *x = json_loads(h->element[i + 1]->str, 0, NULL);
        v = json_object_get(want, h->element[i]->str);
        got++;
        if (v == NULL || x == NULL || !json_equal(v, x)) {
            snprintf(why, whylen, "%s: id %s %s", open_key, h->element[i]->str,
                     v == NULL ? "is open but the stream closed it (or never fired it)"
                               : "differs from its alert");
            json_decref(x);
            rc = -1;
            goto done;
        }
        json_decref(x);
    }
    if (got != json_object_size(want)) {
        json_object_foreach(want, id, v) {
            redisReply *e = it_cmd(c, "HEXISTS %s %s", open_key, id);
            int there = e != NULL && e->type == REDIS_REPLY_INTEGER && e->integer == 1;
            freeReplyObject(e);
            if (!there) {
                snprintf(why, whylen, "%s: id %s is open in the stream but not in the hash",
                         open_key, id);
                break;
            }
        }
        rc = -1;
    }
done:
    freeReplyObject(h);
    json_decref(alerts);
    json_decref(want);
    return rc;
}

size_t it_preload_workload(redisContext *c, size_t n, double days, double anomaly,
                           uint64_t seed, size_t invalid_every)
{
    return it_preload_range(c, n, days, anomaly, seed, invalid_every, 0, n);
}

size_t it_preload_range(redisContext *c, size_t n, double days, double anomaly,
                        uint64_t seed, size_t invalid_every, size_t from, size_t to)
{
    bg_opts o;
    bg_gen *g;
    char buf[2048], id[32];
    size_t i, pending = 0, seq[2] = {0, 0}, written = 0;
    int64_t ts;
    int stream;

    bg_opts_default(&o);
    o.entries = (long long)n;
    o.units = 300;
    o.officers = 600;
    o.enterprises = 3000;
    o.days = days;
    o.anomaly = anomaly;
    o.seed = seed;
    g = bg_gen_new(&o);
    if (g == NULL)
        abort();
    for (i = 0; i < n && i < to; i++) {
        if (bg_gen_next(g, -1, &stream, &ts, buf, sizeof(buf)) < 0)
            abort();
        if (invalid_every && i % invalid_every == invalid_every - 1)
            snprintf(buf, sizeof(buf), i % 2 ? "not json %zu" :
                     "{\"type\":\"inspection.rated\",\"ts\":1,\"score\":9}", i);
        snprintf(id, sizeof(id), "%zu-0", ++seq[stream]);
        if (i < from)
            continue;               /* generated (the ids count it), not written */
        redisAppendCommand(c, "XADD %s %s data %s", stream ? "enforce:case" : "enforce:scan",
                           id, buf);
        written++;
        if (++pending == 1000 || i + 1 == n || i + 1 == to) {
            for (; pending > 0; pending--) {
                redisReply *r;
                if (redisGetReply(c, (void **)&r) != REDIS_OK)
                    abort();
                freeReplyObject(r);
            }
        }
    }
    bg_gen_free(g);
    return written;
}

bool it_both_drained(redisContext *c)
{
    return it_wait_drained(c, "enforce:scan", "riskd", 0) &&
           it_wait_drained(c, "enforce:case", "riskd", 0);
}

bool it_wait_settled(redisContext *c, int timeout_ms)
{
    long long last = -1;
    int waited = 0, stable = 0;
    while (waited < timeout_ms) {
        long long n = it_int(c, "XLEN alerts");
        if (it_both_drained(c) && n == last) {
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

json_t *it_alerts_by_id(redisContext *c, const char **dup)
{
    json_t *alerts = it_alerts(c, "alerts"), *ids = json_object(), *a;
    size_t i;
    *dup = NULL;
    json_array_foreach(alerts, i, a) {
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *st = json_string_value(json_object_get(a, "status"));
        char key[96];
        /* A notice shares its alert's id: keyed "<id>:<status>". */
        if (st != NULL && strcmp(st, "firing") != 0)
            snprintf(key, sizeof(key), "%s:%s", id ? id : "", st);
        else
            snprintf(key, sizeof(key), "%s", id ? id : "");
        if (json_object_get(ids, key) != NULL) {
            static char seen[96];
            snprintf(seen, sizeof(seen), "%s", key);
            *dup = seen;
        }
        json_object_del(a, "emitted_at");
        json_object_set(ids, key, a);
    }
    json_decref(alerts);
    return ids;
}

int it_env_start(it_env *env)
{
    memset(env, 0, sizeof(*env));
    if (it_redis_start(&env->redis, NULL) != 0)
        return -1;
    env->c = it_connect(env->redis.port);
    return 0;
}

void it_env_stop(it_env *env)
{
    if (env->riskd.pid > 0) {
        it_riskd_signal(&env->riskd, SIGKILL);
        it_riskd_wait(&env->riskd, 5000);
    }
    if (env->c != NULL)
        redisFree(env->c);
    env->c = NULL;
    it_redis_kill(&env->redis);
}

void *it_fixture_new(size_t size)
{
    it_env *env = calloc(1, size < sizeof(*env) ? sizeof(*env) : size);
    if (env == NULL)
        return NULL;
    if (it_env_start(env) != 0) {
        it_env_stop(env);
        free(env);
        return NULL;
    }
    return env;
}

void it_fixture_free(void *fixture)
{
    if (fixture == NULL)
        return;
    it_env_stop(fixture);
    free(fixture);
}

int it_http_get(int port, const char *path, char *buf, size_t len)
{
    struct sockaddr_in sa;
    char req[256];
    size_t got = 0;
    ssize_t k;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
    const char *body;

    buf[0] = '\0';
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    while (got + 1 < len && (k = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fd);
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return status;
}

double it_metric(int port, const char *series)
{
    static char buf[1 << 20];
    size_t n = strlen(series);
    const char *p = buf;
    if (it_http_get(port, "/metrics", buf, sizeof(buf)) != 200)
        return -1;
    while (p && *p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

int it_log_count(const it_riskd *d, const char *text)
{
    FILE *f = fopen(d->log, "r");
    char line[4096];
    int n = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (text == NULL || strstr(line, text) != NULL)
            n++;
    fclose(f);
    return n;
}

double it_metric_sum(int port, const char *name)
{
    static char buf[1 << 20];
    struct sockaddr_in sa;
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n", *p;
    size_t got = 0, nl = strlen(name);
    ssize_t k;
    double sum = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    while (got + 1 < sizeof(buf) && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fd);
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strstr(buf, " 200 ") == NULL)
        return -1;
    for (p = strstr(buf, "\r\n\r\n"); p != NULL; p = strchr(p, '\n')) {
        const char *sp;
        p++;
        if (strncmp(p, name, nl) != 0 || (p[nl] != ' ' && p[nl] != '{'))
            continue;
        if ((sp = strchr(p, ' ')) != NULL)
            sum += atof(sp + 1);
    }
    return sum;
}
