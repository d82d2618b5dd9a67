/* daemon/riskctl/common.c - what riskctl's commands share: messages,
 * safe printing, the configuration and the Redis connection.
 *
 * One synchronous hiredis context per command (conn), set up from the
 * riskd configuration and the --host/-p/-a/--user/-n overrides, with AUTH and
 * SELECT done before the command runs and a reply timeout of
 * REPLY_TIMEOUT_S. Errors go to stderr as "riskctl: <message>". */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

/* ===================================================================
 * Messages and names
 * =================================================================== */

/* Print "riskctl: <message>" and a newline to stderr. */
void rk__ctl_errx(const char *fmt, ...)
{
    va_list ap;
    fputs("riskctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Write s to f with every control character (C0, DEL and the UTF-8
 * encodings of C1) replaced by '?'; other UTF-8 passes unchanged. */
void rk__ctl_put_clean(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fputc('?', f);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fputc('?', f);
            p++;
        } else {
            fputc(*p, f);
        }
    }
}

/* True when s is a non-empty [a-z0-9_]+ name of at most 64 bytes. */
int rk__ctl_is_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n > 0 && n <= 64;
}

/* ===================================================================
 * Configuration and Redis
 * =================================================================== */

/* Load the riskd configuration for o: -c FILE, else the default file when
 * it exists, else the built-in defaults. Returns 0 and *cfg, or -1 after
 * printing the error. */
int rk__ctl_load_config(const opts *o, rk__config **cfg)
{
    char err[RK_ERRLEN];
    const char *path = o->config;
    if (path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
        path = DEFAULT_CONFIG;
    if (path == NULL) {
        json_t *empty = json_object();
        int rc = empty ? rk__config_from_json(empty, cfg, err, sizeof(err)) : -1;
        json_decref(empty);
        if (rc != 0) {
            rk__ctl_errx("default configuration: %s", empty ? err : "out of memory");
            return -1;
        }
        return 0;
    }
    if (rk__config_load(path, cfg, err, sizeof(err)) != 0) {
        size_t n = strlen(path);
        if (strncmp(err, path, n) == 0 && err[n] == ':')
            rk__ctl_errx("%s", err);
        else
            rk__ctl_errx("%s: %s", path, err);
        return -1;
    }
    return 0;
}

/* Check a reply: NULL (connection lost) or an error reply print a message
 * naming what and return -1; anything else returns 0. */
int rk__ctl_reply_ok(const conn *k, const redisReply *r, const char *what)
{
    if (r == NULL) {
        rk__ctl_errx("%s: Redis %s:%d: %s", what, k->host, k->port,
                 k->c->errstr[0] ? k->c->errstr : "connection lost");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rk__ctl_errx("%s: %s", what, r->str);
        return -1;
    }
    return 0;
}

int rk__ctl_fail_code(const conn *k)
{
    return k->c == NULL || k->c->err != 0 ? EX_REDIS : EX_FAIL;
}

/* Connect to Redis as cfg and o say (AUTH, SELECT). Returns 0, or -1 with
 * err (unreachable, refused credentials, bad database). */
int rk__ctl_conn_open(conn *k, char *err, size_t errlen)
{
    struct timeval tv = {5, 0};
    redisReply *r;

    k->c = redisConnectWithTimeout(k->host, k->port, tv);
    if (k->c == NULL || k->c->err) {
        rk_kit_errf(err, errlen, "cannot connect to Redis at %s:%d: %s", k->host, k->port,
                    k->c ? k->c->errstr : "out of memory");
        goto fail_connect;
    }
    tv.tv_sec = REPLY_TIMEOUT_S;
    redisSetTimeout(k->c, tv);
    if (k->password != NULL) {
        if (k->user != NULL)
            r = redisCommand(k->c, "AUTH %s %s", k->user, k->password);
        else
            r = redisCommand(k->c, "AUTH %s", k->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            rk_kit_errf(err, errlen, "Redis at %s:%d refused AUTH: %s", k->host, k->port,
                        r ? r->str : k->c->errstr);
            freeReplyObject(r);
            goto fail_auth;
        }
        freeReplyObject(r);
    }
    if (k->db != 0) {
        r = redisCommand(k->c, "SELECT %d", k->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            rk_kit_errf(err, errlen, "Redis at %s:%d refused SELECT %d: %s", k->host,
                        k->port, k->db, r ? r->str : k->c->errstr);
            freeReplyObject(r);
            goto fail_auth;
        }
        freeReplyObject(r);
    }
    return 0;
fail_auth:
fail_connect:
    if (k->c != NULL)
        redisFree(k->c);
    k->c = NULL;
    return -1;
}

/* Set up k from cfg and the overrides in o and connect. Returns 0, or -1
 * after printing the error. */
int rk__ctl_conn_init(conn *k, const rk__config *cfg, const opts *o)
{
    char err[RK_ERRLEN];
    memset(k, 0, sizeof(*k));
    snprintf(k->host, sizeof(k->host), "%s", o->host ? o->host : cfg->redis_host);
    k->port = o->port ? o->port : cfg->redis_port;
    k->password = o->password ? o->password : cfg->redis_password;
    k->user = o->user ? o->user : cfg->redis_username;
    k->db = o->db >= 0 ? o->db : cfg->redis_db;
    if (rk__ctl_conn_open(k, err, sizeof(err)) != 0) {
        rk__ctl_errx("%s", err);
        return -1;
    }
    return 0;
}

void rk__ctl_conn_close(conn *k)
{
    if (k->c != NULL)
        redisFree(k->c);
    k->c = NULL;
}

const char *rk__ctl_actor(const char *opt)
{
    const char *u;
    if (opt != NULL)
        return opt;
    if ((u = getenv("SUDO_USER")) != NULL && *u)
        return u;
    if ((u = getenv("USER")) != NULL && *u)
        return u;
    return "unknown";
}

int rk__ctl_random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    size_t got = 0, i;
    int fd;
    if (nbytes > sizeof(b))
        return -1;
    if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    while (got < nbytes) {
        ssize_t n = read(fd, b + got, nbytes - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    for (i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}
