/* daemon/riskctl/lists.c - riskctl lists load | show: the reference lists.
 *
 *   riskctl lists load KIND FILE [--author NAME]
 *   riskctl lists show KIND [--json]
 *
 * load parses the whole file first (daemon/lib/lists.c); any error refuses
 * it with "FILE: line N, column NAME: ..." and nothing is written. A valid
 * list is then staged in a fresh hash riskd:lists:{lists}:KIND:loading:<id>
 * (HSET in chunks of CHUNK rows, pipelined, with an EXPIRE so that an
 * interrupted load leaves nothing behind for long) and put in force by one
 * script (rk__lists_swap_lua): it RENAMEs the staged hash over the live one
 * (an empty list deletes it), bumps the kind's version and records who
 * loaded what, all at one instant - a reader sees the old list or the new
 * one, never a mix. The audit entry (XADD riskd:audit, as silences do)
 * follows; riskd picks up the new version within RK_LISTS_POLL_MS.
 *
 * show reads the version, the info and the rows with one script
 * (rk__lists_fetch_lua) and prints a table (display widths counted for
 * Chinese text), or with --json one document.
 *
 * Exit: 0 done, 1 refused (bad kind, file, usage), 2 Redis cannot be
 * reached or went away. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

#define CHUNK            1000               /* rows per HSET */
#define STAGE_TTL_S      "3600"
#define AUDIT_MAXLEN     "100000"           /* as the daemon trims it */
#define MAX_FILE         (64 * 1024 * 1024)
#define CELL_MAX         48                 /* display columns before padding stops */

static void lists_usage(FILE *f)
{
    fprintf(f,
        "usage: riskctl [options] lists load KIND FILE [--author NAME]\n"
        "       riskctl [options] lists show KIND [--json]\n"
        "KIND and its CSV columns (a header row names them, in any order):\n"
        "  whitelist    enterprise_id, allowance, note\n"
        "  benchmarks   item_code, level, min_fine, max_fine\n"
        "  exempt       item_code, kind\n"
        "  credentials  officer_id, unit_id, valid_from, valid_until\n"
        "  names        kind, id, name\n"
        "load replaces the whole list atomically; a file with any error is refused\n"
        "(line and column of the first error) and the list in force stays.\n"
        "Exit status: 0 done, 1 refused, 2 Redis cannot be reached.\n");
}

void rk__ctl_lists_help(FILE *f)
{
    lists_usage(f);
}

/* Read the whole file at path into *out (*len bytes). 0, or -1 after
 * printing the error. */
static int slurp(const char *path, char **out, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (f == NULL) {
        rk__ctl_errx("%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rk__ctl_errx("%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if (st.st_size > MAX_FILE) {
        rk__ctl_errx("%s: the file has more than 64 MiB", path);
        fclose(f);
        return -1;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        rk__ctl_errx("out of memory");
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        rk__ctl_errx("%s: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

/* The exit code for a failed reply: 2 when the connection is gone. */
static int reply_fail(const conn *k, redisReply *r, const char *what)
{
    int lost = r == NULL;
    rk__ctl_reply_ok(k, r, what);
    freeReplyObject(r);
    return lost ? EX_REDIS : EX_FAIL;
}

/* ===================================================================
 * load
 * =================================================================== */

/* Stage every row of l in the hash `tmp`: HSET in chunks, pipelined, the
 * first followed by an EXPIRE. Returns EX_OK or an exit code after
 * printing. */
static int stage_rows(conn *k, const rk__list *l, const char *tmp)
{
    size_t n = rk__lists_count(l), sent = 0, i;
    int rc = EX_OK;
    const char **argv = malloc((2 + 2 * CHUNK) * sizeof(*argv));
    size_t *argl = malloc((2 + 2 * CHUNK) * sizeof(*argl));
    char **owned = malloc(2 * CHUNK * sizeof(*owned));

    if (argv == NULL || argl == NULL || owned == NULL) {
        rk__ctl_errx("out of memory");
        rc = EX_FAIL;
        goto done;
    }
    for (i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK, j, a = 2;
        argv[0] = "HSET";
        argl[0] = 4;
        argv[1] = tmp;
        argl[1] = strlen(tmp);
        for (j = 0; j < m; j++) {
            owned[2 * j] = rk__lists_row_field(l, i + j);
            owned[2 * j + 1] = rk__lists_row_json(l, i + j);
            if (owned[2 * j] == NULL || owned[2 * j + 1] == NULL) {
                for (size_t x = 0; x <= 2 * j + 1; x++)
                    free(owned[x]);
                rk__ctl_errx("out of memory");
                rc = EX_FAIL;
                goto drain;
            }
            argv[a] = owned[2 * j];
            argl[a] = strlen(owned[2 * j]);
            a++;
            argv[a] = owned[2 * j + 1];
            argl[a] = strlen(owned[2 * j + 1]);
            a++;
        }
        redisAppendCommandArgv(k->c, (int)a, argv, argl);
        for (j = 0; j < 2 * m; j++)
            free(owned[j]);
        sent++;
        if (i == 0) {
            redisAppendCommand(k->c, "EXPIRE %s %s", tmp, STAGE_TTL_S);
            sent++;
        }
    }
drain:
    /* Read every reply sent, keeping the first error. */
    for (i = 0; i < sent; i++) {
        void *rep = NULL;
        if (redisGetReply(k->c, &rep) != REDIS_OK) {
            rk__ctl_errx("Redis %s:%d: %s", k->host, k->port, k->c->errstr);
            rc = EX_REDIS;
            break;
        }
        if (((redisReply *)rep)->type == REDIS_REPLY_ERROR && rc == EX_OK) {
            rk__ctl_errx("staging the rows: %s", ((redisReply *)rep)->str);
            rc = EX_FAIL;
        }
        freeReplyObject(rep);
    }
done:
    free(argv);
    free(argl);
    free(owned);
    return rc;
}

static int lists_load(conn *k, const rk__config *cfg, rk__list_kind kind, const char *path,
                      const opts *o)
{
    char err[RK_ERRLEN], id[17], tmp[128], live[128], when[48], rows[32];
    const char *kn = rk__lists_kind_name(kind), *who = rk__ctl_actor(o->author);
    char *data = NULL, *info = NULL, *audit_new = NULL;
    rk__list *l = NULL;
    size_t len = 0;
    redisReply *r = NULL;
    json_t *j;
    int rc;

    if (*who == '\0' || strlen(who) > 256) {
        rk__ctl_errx("--author: expected a name of 1 to 256 bytes");
        return EX_FAIL;
    }
    if (slurp(path, &data, &len) != 0)
        return EX_FAIL;
    if (rk__lists_parse_csv(kind, data, len, &l, err, sizeof(err)) != 0) {
        rk__ctl_errx("%s: %s", path, err);
        free(data);
        return EX_FAIL;
    }
    free(data);
    if (rk__ctl_conn_init(k, cfg, o) != 0) {
        rk__lists_free(l);
        return EX_REDIS;
    }
    if (rk__ctl_random_hex(id, 8) != 0) {
        rk__ctl_errx("cannot read /dev/urandom");
        rc = EX_FAIL;
        goto out;
    }
    snprintf(tmp, sizeof(tmp), RK_LISTS_PREFIX "%s:loading:%s", kn, id);
    snprintf(live, sizeof(live), RK_LISTS_PREFIX "%s", kn);
    if ((rc = stage_rows(k, l, tmp)) != EX_OK) {
        if (rc != EX_REDIS)
            freeReplyObject(redisCommand(k->c, "DEL %s", tmp));
        goto out;
    }
    rk__format_rfc3339(rk__wall_ms(), 0, when, sizeof(when));
    j = json_pack("{sI ss ss ss}", "rows", (json_int_t)rk__lists_count(l), "loaded_at", when,
                  "by", who, "file", path);
    info = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (info == NULL) {
        rk__ctl_errx("out of memory");
        freeReplyObject(redisCommand(k->c, "DEL %s", tmp));
        rc = EX_FAIL;
        goto out;
    }
    snprintf(rows, sizeof(rows), "%zu", rk__lists_count(l));
    r = redisCommand(k->c, "EVAL %s 4 %s %s %s %s %s %s %s", rk__lists_swap_lua, tmp, live,
                     RK_LISTS_VERSION_KEY, RK_LISTS_INFO_KEY, kn, rows, info);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        if (r != NULL && r->type != REDIS_REPLY_ERROR) {
            rk__ctl_errx("EVAL: unexpected reply");
            freeReplyObject(r);
            rc = EX_FAIL;
        } else {
            rc = reply_fail(k, r, "putting the list in force");
        }
        if (rc != EX_REDIS)
            freeReplyObject(redisCommand(k->c, "DEL %s", tmp));
        goto out;
    }
    {
        long long v = r->element[0]->integer;
        const char *oldv = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "0";
        const char *oldi = r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "";
        json_t *old = json_loads(oldi, 0, NULL), *nw = json_loads(info, 0, NULL);
        char *old_s;
        redisReply *a;
        if (!json_is_object(old)) {
            json_decref(old);
            old = json_object();
        }
        json_object_set_new(old, "kind", json_string(kn));
        json_object_set_new(old, "version", json_integer(strtoll(oldv, NULL, 10)));
        json_object_set_new(nw, "kind", json_string(kn));
        json_object_set_new(nw, "version", json_integer(v));
        old_s = json_dumps(old, JSON_COMPACT | JSON_SORT_KEYS);
        audit_new = json_dumps(nw, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(old);
        json_decref(nw);
        a = redisCommand(k->c, "XADD %s MAXLEN ~ %s * who %s what %s when %s old %s new %s",
                         RK_AUDIT_STREAM, AUDIT_MAXLEN, who, "lists_loaded", when,
                         old_s ? old_s : "null", audit_new ? audit_new : "null");
        if (a == NULL || a->type == REDIS_REPLY_ERROR)
            rk__ctl_errx("warning: the list is in force but the audit entry was not "
                         "written: %s", a ? a->str : k->c->errstr);
        freeReplyObject(a);
        free(old_s);
        printf("%s: %zu rows loaded from %s, version %lld in force\n", kn,
               rk__lists_count(l), path, v);
        rc = EX_OK;
    }
    freeReplyObject(r);
out:
    free(info);
    free(audit_new);
    rk__lists_free(l);
    return rc;
}

/* ===================================================================
 * show
 * =================================================================== */

/* Display columns of s: 2 for East Asian wide characters, 1 otherwise. */
static size_t display_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p) {
        unsigned long cp;
        size_t n;
        if (*p < 0x80) {
            cp = *p; n = 1;
        } else if ((*p & 0xe0) == 0xc0) {
            cp = *p & 0x1f; n = 2;
        } else if ((*p & 0xf0) == 0xe0) {
            cp = *p & 0x0f; n = 3;
        } else {
            cp = *p & 0x07; n = 4;
        }
        for (size_t i = 1; i < n && p[i]; i++)
            cp = (cp << 6) | (p[i] & 0x3f);
        for (size_t i = 0; i < n && *p; i++)
            p++;
        w += (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
             (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
             (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
             (cp >= 0xffe0 && cp <= 0xffe6) || cp >= 0x20000 ? 2 : 1;
    }
    return w;
}

/* One cell: line breaks and tabs as spaces, other control characters as
 * '?', padded to width w (when pad). */
static void put_cell(const char *s, size_t w, int pad)
{
    char *copy = strdup(s);
    size_t have;
    if (copy == NULL)
        return;
    for (char *c = copy; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    rk__ctl_put_clean(stdout, copy);
    have = display_width(copy);
    free(copy);
    for (; pad && have < w; have++)
        putchar(' ');
}

static void print_table(const rk__list *l)
{
    rk__list_kind kind = rk__lists_kind_of(l);
    size_t nc = rk__lists_ncols(kind), n = rk__lists_count(l), w[RK_LIST_MAXCOLS];
    size_t i, c;
    for (c = 0; c < nc; c++) {
        w[c] = strlen(rk__lists_col(kind, c));
        for (i = 0; i < n; i++) {
            size_t x = display_width(rk__lists_value(l, i, c));
            if (x > w[c])
                w[c] = x > CELL_MAX ? CELL_MAX : x;
        }
    }
    for (c = 0; c < nc; c++) {
        put_cell(rk__lists_col(kind, c), w[c], c + 1 < nc);
        fputs(c + 1 < nc ? "  " : "\n", stdout);
    }
    for (i = 0; i < n; i++)
        for (c = 0; c < nc; c++) {
            const char *v = rk__lists_value(l, i, c);
            put_cell(v[0] ? v : "-", w[c], c + 1 < nc);
            fputs(c + 1 < nc ? "  " : "\n", stdout);
        }
}

/* A member of the info object (new reference), null when absent. */
static json_t *info_field(json_t *info, const char *key)
{
    json_t *v = json_object_get(info, key);
    return v ? json_incref(v) : json_null();
}

static int lists_show(conn *k, const rk__config *cfg, rk__list_kind kind, const opts *o)
{
    const char *kn = rk__lists_kind_name(kind);
    char live[128], err[RK_ERRLEN];
    const char **vals = NULL;
    size_t *lens = NULL, n, i;
    redisReply *r, *rowsr;
    rk__list *l = NULL;
    json_t *info = NULL;
    long long version;
    int rc = EX_OK;

    if (rk__ctl_conn_init(k, cfg, o) != 0)
        return EX_REDIS;
    snprintf(live, sizeof(live), RK_LISTS_PREFIX "%s", kn);
    r = redisCommand(k->c, "EVAL %s 3 %s %s %s %s", rk__lists_fetch_lua, RK_LISTS_VERSION_KEY,
                     live, RK_LISTS_INFO_KEY, kn);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_ARRAY) {
        if (r != NULL && r->type != REDIS_REPLY_ERROR) {
            rk__ctl_errx("EVAL: unexpected reply");
            freeReplyObject(r);
            return EX_FAIL;
        }
        return reply_fail(k, r, "reading the list");
    }
    version = strtoll(r->element[0]->str, NULL, 10);
    if (r->element[1]->type == REDIS_REPLY_STRING && r->element[1]->len > 0)
        info = json_loads(r->element[1]->str, 0, NULL);
    rowsr = r->element[2];
    n = rowsr->elements;
    vals = calloc(n + 1, sizeof(*vals));
    lens = calloc(n + 1, sizeof(*lens));
    if (vals == NULL || lens == NULL) {
        rk__ctl_errx("out of memory");
        rc = EX_FAIL;
        goto out;
    }
    for (i = 0; i < n; i++) {
        vals[i] = rowsr->element[i]->type == REDIS_REPLY_STRING ? rowsr->element[i]->str : "";
        lens[i] = rowsr->element[i]->type == REDIS_REPLY_STRING ? rowsr->element[i]->len : 0;
    }
    if (rk__lists_from_json(kind, vals, lens, n, &l, err, sizeof(err)) != 0) {
        rk__ctl_errx("the %s list stored in Redis is damaged: %s", kn, err);
        rc = EX_FAIL;
        goto out;
    }
    if (o->json) {
        json_t *doc = json_object(), *rows = json_array();
        char *s;
        json_object_set_new(doc, "kind", json_string(kn));
        json_object_set_new(doc, "version", json_integer(version));
        json_object_set_new(doc, "loaded_at", info_field(info, "loaded_at"));
        json_object_set_new(doc, "by", info_field(info, "by"));
        json_object_set_new(doc, "file", info_field(info, "file"));
        for (i = 0; i < rk__lists_count(l); i++)
            json_array_append_new(rows, rk__lists_row_object(l, i));
        json_object_set_new(doc, "rows", rows);
        s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        if (s == NULL) {
            rk__ctl_errx("out of memory");
            rc = EX_FAIL;
            goto out;
        }
        puts(s);
        free(s);
        goto out;
    }
    if (version == 0) {
        printf("%s: none loaded\n", kn);
        goto out;
    }
    printf("%s: version %lld, %zu rows", kn, version, rk__lists_count(l));
    if (json_is_string(json_object_get(info, "loaded_at"))) {
        fputs(", loaded ", stdout);
        rk__ctl_put_clean(stdout, json_string_value(json_object_get(info, "loaded_at")));
    }
    if (json_is_string(json_object_get(info, "by"))) {
        fputs(" by ", stdout);
        rk__ctl_put_clean(stdout, json_string_value(json_object_get(info, "by")));
    }
    if (json_is_string(json_object_get(info, "file"))) {
        fputs(" from ", stdout);
        rk__ctl_put_clean(stdout, json_string_value(json_object_get(info, "file")));
    }
    putchar('\n');
    if (rk__lists_count(l) > 0)
        print_table(l);
out:
    free(vals);
    free(lens);
    json_decref(info);
    rk__lists_free(l);
    freeReplyObject(r);
    return rc;
}

/* ===================================================================
 * Dispatch
 * =================================================================== */

int rk__ctl_lists(const opts *o, int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : NULL;
    rk__config *cfg = NULL;
    conn k;
    int kind, rc, load;

    if (sub == NULL || (strcmp(sub, "load") != 0 && strcmp(sub, "show") != 0)) {
        if (sub != NULL)
            rk__ctl_errx("unknown lists command \"%s\" (load, show)", sub);
        else
            rk__ctl_errx("lists: which? (load, show; riskctl lists -h shows the usage)");
        return EX_FAIL;
    }
    load = sub[0] == 'l';
    if (argc != (load ? 3 : 2)) {
        rk__ctl_errx("lists %s: expected %s (riskctl lists -h shows the usage)", sub,
                     load ? "KIND FILE" : "KIND");
        return EX_FAIL;
    }
    if ((o->given & ~(unsigned)(O_REDIS | (load ? O_AUTHOR : O_JSON))) != 0) {
        rk__ctl_errx("lists %s: takes %s and the Redis options only", sub,
                     load ? "--author" : "--json");
        return EX_FAIL;
    }
    if ((kind = rk__lists_kind(argv[1])) < 0) {
        rk__ctl_errx("unknown list kind \"%s\" (whitelist, benchmarks, exempt, credentials, "
                     "names)", argv[1]);
        return EX_FAIL;
    }
    if (rk__ctl_load_config(o, &cfg) != 0)
        return EX_FAIL;
    /* load connects only once the file checked out */
    memset(&k, 0, sizeof(k));
    rc = load ? lists_load(&k, cfg, (rk__list_kind)kind, argv[2], o)
              : lists_show(&k, cfg, (rk__list_kind)kind, o);
    rk__ctl_conn_close(&k);
    rk__config_free(cfg);
    return rc;
}
