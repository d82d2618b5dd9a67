/* indicators_out.c - the indicators in Redis, for dashboards.
 *
 * From the housekeeping timer, every IND_PASS_MS of wall time (and at once
 * while a pass has more to write), the live engine takes the hashes that
 * changed (rk__ind_collect: each key's window, current and previous month
 * and quarter, compared with what was written last) and writes at most
 * IND_CHUNK of them with one script: HSET of every field, PEXPIRE 400d,
 * ZADD of the key to riskd:ind:keys:<scope> (score: the key's last event
 * time) and of the period label to riskd:ind:periods (score: its start).
 * A unit's hashes also carry its region (field region), so that readers
 * can tell a region's units. The hashes include the final figures of a
 * month or quarter that left the module's keys before they were written
 * (rk__ind_collect). Under a lease the script first checks the
 * partition's epoch, like every other write, and a fenced-out engine
 * gives up. With partitions > 1 the
 * hash and key-index names end in ":p<N>"; readers sum the partitions.
 *
 * A replay writes nothing (its output is not the live writer), and
 * nothing is written before the state is restored. A failed write marks
 * every hash to be written again. On Redis Cluster the hashes span slots
 * that one script cannot reach: nothing is written there (logged once).
 *
 * open_critical, open_warning and open_info are the open alerts of the
 * hash alerts.open_key whose subject names the key (unit_id, officer_id,
 * region; every one for `all`), by severity: every IND_OPEN_MS the open
 * hash is read (HVALS, which the least-privilege ACL of riskd(8) allows;
 * open_ttl keeps it bounded), the counts made, and the
 * keys whose counts changed get the three fields HSET (fenced like the
 * rest) in their window, current month and current quarter hashes; a hash
 * the module writes meanwhile carries the latest counts too. A previous
 * period's hash written again (a late event, its final figures) keeps the
 * counts of when it was current: the three fields are left out (the
 * script puts 0 in a hash without them). With
 * partitions > 1 each partition counts the alerts of its units (those
 * without a unit_id in partition 0), so readers' sums hold. */
#include "engine_int.h"

#define IND_PASS_MS 5000
#define IND_CHUNK 100
#define IND_TTL_MS "34560000000"            /* 400 days */
#define IND_OPEN_MS 10000

static const char ind_write_lua[] =
    "if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[1] .. "
    "' is no longer current')\n"
    "end\n"
    "local nh = tonumber(ARGV[3])\n"
    "local a = 4\n"
    "local periods = KEYS[2 + 2 * nh]\n"
    "for i = 1, nh do\n"
    "  local member, score, label, start = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]\n"
    "  local nf = tonumber(ARGV[a + 4])\n"
    "  a = a + 5\n"
    "  redis.call('HSET', KEYS[1 + i], unpack(ARGV, a, a + 2 * nf - 1))\n"
    "  if not redis.call('HGET', KEYS[1 + i], 'open_critical') then\n"
    "    redis.call('HSET', KEYS[1 + i], 'open_critical', '0', 'open_warning', '0', "
    "'open_info', '0')\n"
    "  end\n"
    "  a = a + 2 * nf\n"
    "  redis.call('PEXPIRE', KEYS[1 + i], ARGV[2])\n"
    "  redis.call('ZADD', KEYS[1 + nh + i], score, member)\n"
    "  if label ~= 'window' then redis.call('ZADD', periods, start, label) end\n"
    "end\n"
    "return nh\n";

rk__ind *rk__ind_for(const rk__config *cfg)
{
    rk__ind_settings s;
    rk__ind_settings_from(&s, cfg->root, cfg->tz_offset_s, cfg->ind_window);
    return rk__ind_new(&s);
}

/* One write being put together: hashes in order, then their strings. */
typedef struct ind_batch {
    const rk__config *cfg;
    const struct rk__ind_open *open;
    char **keys;                    /* hash keys, then index keys */
    char **args;                    /* per hash: member score label start nf f v ... */
    size_t nh, nargs, capargs;
    bool oom;
} ind_batch;

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static void arg(ind_batch *b, char *s)
{
    if (s == NULL)
        b->oom = true;
    if (b->nargs == b->capargs) {
        size_t nc = b->capargs ? b->capargs * 2 : 1024;
        char **na = realloc(b->args, nc * sizeof(*na));
        if (na == NULL) {
            free(s);
            b->oom = true;
            return;
        }
        b->args = na;
        b->capargs = nc;
    }
    b->args[b->nargs++] = s;
}

/* ===================================================================
 * Open alerts by severity
 * =================================================================== */

struct rk__ind_open {
    json_t *now;                    /* "<scope>\x1f<key>" -> "c w i", last count */
    json_t *next;                   /* being counted */
    char labels[3][16];             /* window, current month, current quarter */
    bool inflight;
    bool failing;                   /* the last read failed (logged once) */
    int64_t due;                    /* loop ms of the next count */
};

static const char ind_open_lua[] =
    "if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[1] .. "
    "' is no longer current')\n"
    "end\n"
    "for i = 2, #KEYS do\n"
    "  local a = 3 + (i - 2) * 3\n"
    "  redis.call('HSET', KEYS[i], 'open_critical', ARGV[a], 'open_warning', ARGV[a + 1],\n"
    "             'open_info', ARGV[a + 2])\n"
    "  redis.call('PEXPIRE', KEYS[i], ARGV[2])\n"
    "end\n"
    "return #KEYS - 1\n";

/* The value of open field f for hash h from the last count, or NULL (not
 * an open field, or not a current period: left as the module made it). */
static const char *open_value(const struct rk__ind_open *o, const rk__ind_hash *h,
                              const char *f)
{
    static char buf[3][24];
    char k[600];
    const char *v;
    long long n[3] = {0, 0, 0};
    int which;
    if (o == NULL || strncmp(f, "open_", 5) != 0 || o->labels[0][0] == '\0')
        return NULL;
    which = strcmp(f, "open_critical") == 0 ? 0 : strcmp(f, "open_warning") == 0 ? 1 :
            strcmp(f, "open_info") == 0 ? 2 : -1;
    if (which < 0 || (strcmp(h->label, o->labels[0]) != 0 &&
                      strcmp(h->label, o->labels[1]) != 0 && strcmp(h->label, o->labels[2]) != 0))
        return NULL;
    snprintf(k, sizeof(k), "%s\x1f%s", rk__ind_scope_names[h->scope], h->key);
    v = json_string_value(json_object_get(o->now, k));
    if (v != NULL)
        sscanf(v, "%lld %lld %lld", &n[0], &n[1], &n[2]);
    snprintf(buf[which], sizeof(buf[which]), "%lld", n[which]);
    return buf[which];
}

/* Count one open alert (its JSON) into o->next. */
static void open_count(rk__engine *e, struct rk__ind_open *o, const char *data, size_t len)
{
    static const char *const fields[RK_IND_NSCOPES] = {"unit_id", "officer_id", "region", NULL};
    json_t *a = json_loadb(data, len, 0, NULL), *sub;
    const char *sev, *unit;
    int si, sc;
    if (a == NULL)
        return;
    sev = json_string_value(json_object_get(a, "severity"));
    sub = json_object_get(a, "subject");
    unit = json_string_value(json_object_get(sub, "unit_id"));
    si = sev == NULL ? -1 : strcmp(sev, "critical") == 0 ? 0 : strcmp(sev, "warning") == 0 ? 1 :
         strcmp(sev, "info") == 0 ? 2 : -1;
    if (si < 0 || (e->cfg->partitions > 1 &&
                   (unit != NULL ? rk__partition_of(unit, e->cfg->partitions) : 0) !=
                   e->cfg->partition)) {
        json_decref(a);
        return;
    }
    for (sc = 0; sc < RK_IND_NSCOPES; sc++) {
        const char *key = fields[sc] ? json_string_value(json_object_get(sub, fields[sc])) : "all";
        char k[600], v[80];
        long long n[3] = {0, 0, 0};
        const char *cur;
        if (key == NULL || strlen(key) > 400)
            continue;
        snprintf(k, sizeof(k), "%s\x1f%s", rk__ind_scope_names[sc], key);
        if ((cur = json_string_value(json_object_get(o->next, k))) != NULL)
            sscanf(cur, "%lld %lld %lld", &n[0], &n[1], &n[2]);
        n[si]++;
        snprintf(v, sizeof(v), "%lld %lld %lld", n[0], n[1], n[2]);
        json_object_set_new(o->next, k, json_string(v));
    }
    json_decref(a);
}

static void on_open_written(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    (void)r;
    if (e->lost || e->freeing)
        return;
    e->ind_open->inflight = false;
    if (rk__is_fenced_reply(reply))
        rk__engine_give_up(e, reply->str);
    else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        rk__log(RK_LOG_ERR, "writing the open alert counts failed: %s", reply->str);
}

/* Grow the two arrays of open_write to cap entries. 0 or -1. */
static int grow(const char ***argv, char ***own, size_t *cap, size_t ncap)
{
    const char **a = realloc(*argv, ncap * sizeof(*a));
    char **o;
    if (a == NULL)
        return -1;
    *argv = a;
    if ((o = realloc(*own, ncap * sizeof(*o))) == NULL)
        return -1;
    *own = o;
    *cap = ncap;
    return 0;
}

/* The count is complete: write the keys whose counts changed (all of them
 * when the current periods moved), then keep it. */
static void open_write(rk__engine *e, struct rk__ind_open *o, char labels[3][16])
{
    const char **argv = NULL;
    char **own = NULL;
    size_t n = 0, cap = 0, nown = 0, i;
    bool moved = memcmp(labels, o->labels, sizeof(o->labels)) != 0;
    char epoch[24] = "", ttl[] = IND_TTL_MS, numkeys[24];
    char suffix[16] = "";
    const char *k;
    json_t *v, *both = json_object();

    if (e->cfg->partitions > 1)
        snprintf(suffix, sizeof(suffix), ":p%d", e->cfg->partition);
    json_object_update(both, o->next);
    json_object_foreach(o->now, k, v)
        if (json_object_get(both, k) == NULL)
            json_object_set_new(both, k, json_string("0 0 0"));
    /* keys first (epoch key, hashes), then the values: two passes */
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach(both, k, v) {
            const char *old = json_string_value(json_object_get(o->now, k));
            const char *cnt = json_string_value(v);
            const char *sep = strchr(k, '\x1f');
            long long c[3] = {0, 0, 0};
            if (sep == NULL || (!moved && old != NULL && strcmp(old, cnt) == 0) ||
                (!moved && old == NULL && strcmp(cnt, "0 0 0") == 0))
                continue;
            sscanf(cnt, "%lld %lld %lld", &c[0], &c[1], &c[2]);
            for (int p = 0; p < 3; p++) {
                char *s1 = NULL, *s2 = NULL, *s3 = NULL;
                if (n + 4 > cap && grow(&argv, &own, &cap, cap ? cap * 2 : 256) != 0)
                    goto oom;
                if (pass == 0) {
                    own[nown] = fmt("riskd:ind:%.*s:%s:%s%s", (int)(sep - k), k, sep + 1,
                                    labels[p], suffix);
                    argv[n++] = own[nown++];
                } else {
                    s1 = fmt("%lld", c[0]);
                    s2 = fmt("%lld", c[1]);
                    s3 = fmt("%lld", c[2]);
                    own[nown++] = s1;
                    own[nown++] = s2;
                    own[nown++] = s3;
                    argv[n++] = s1;
                    argv[n++] = s2;
                    argv[n++] = s3;
                }
                if (own[nown - 1] == NULL)
                    goto oom;
            }
        }
        if (pass == 0) {
            size_t nh = n;
            if (nh == 0)
                break;
            /* EVAL script numkeys epochkey hashes... epoch ttl values... */
            if (n + 6 > cap && grow(&argv, &own, &cap, n + 6) != 0)
                goto oom;
            memmove(argv + 4, argv, nh * sizeof(*argv));
            argv[0] = "EVAL";
            argv[1] = ind_open_lua;
            snprintf(numkeys, sizeof(numkeys), "%zu", nh + 1);
            argv[2] = numkeys;
            argv[3] = e->epoch_key;
            n = nh + 4;
            if (e->leased)
                snprintf(epoch, sizeof(epoch), "%lld", e->epoch);
            argv[n++] = epoch;
            argv[n++] = ttl;
        }
    }
    if (n > 0 && rk__redis_cmd(e->wr, on_open_written, e, 0, (int)n, argv, NULL) == 0)
        o->inflight = true;
    json_decref(o->now);
    o->now = o->next;
    o->next = NULL;
    memcpy(o->labels, labels, sizeof(o->labels));
    goto done;
oom:
    rk__log(RK_LOG_ERR, "out of memory writing the open alert counts");
    json_decref(o->next);
    o->next = NULL;
done:
    for (i = 0; i < nown; i++)
        free(own[i]);
    free(own);
    free(argv);
    json_decref(both);
}

static void on_open_vals(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    struct rk__ind_open *o;
    char labels[3][16];
    rk__ind_counts c;
    int64_t from, to;
    size_t i;
    (void)r;
    if (e->lost || e->freeing)
        return;
    o = e->ind_open;
    o->inflight = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !o->failing)
            rk__log(RK_LOG_ERR, "reading %s for the open alert counts failed: %s (logged "
                    "once until it works)", e->cfg->alerts_open_key, reply->str);
        o->failing = reply != NULL;
        json_decref(o->next);
        o->next = NULL;
        return;
    }
    o->failing = false;
    for (i = 0; i < reply->elements; i++) {
        const redisReply *val = reply->element[i];
        if (val->type == REDIS_REPLY_STRING)
            open_count(e, o, val->str, val->len);
    }
    memset(labels, 0, sizeof(labels));
    snprintf(labels[0], sizeof(labels[0]), "window");
    if (!rk__ind_get(e->ind, RK_IND_ALL, "all", RK_IND_MONTH, &c, &from, &to, labels[1]) ||
        !rk__ind_get(e->ind, RK_IND_ALL, "all", RK_IND_QUARTER, &c, &from, &to, labels[2])) {
        json_decref(o->next);       /* no event yet: nothing to write into */
        o->next = NULL;
        return;
    }
    open_write(e, o, labels);
}

/* Start a count when one is due. */
static void open_housekeep(rk__engine *e, int64_t now)
{
    struct rk__ind_open *o = e->ind_open;
    if (o == NULL) {
        if ((o = e->ind_open = calloc(1, sizeof(*o))) == NULL)
            return;
        o->now = json_object();
    }
    if (o->inflight || now < o->due || o->now == NULL)
        return;
    o->due = now + IND_OPEN_MS;
    if ((o->next = json_object()) == NULL)
        return;
    {
        const char *argv[] = {"HVALS", e->cfg->alerts_open_key};
        if (rk__redis_cmd(e->wr, on_open_vals, e, 0, 2, argv, NULL) == 0) {
            o->inflight = true;
        } else {
            json_decref(o->next);
            o->next = NULL;
        }
    }
}

void rk__ind_open_free(rk__engine *e)
{
    if (e->ind_open == NULL)
        return;
    json_decref(e->ind_open->now);
    json_decref(e->ind_open->next);
    free(e->ind_open);
    e->ind_open = NULL;
}

static void on_hash(const rk__ind_hash *h, void *ud)
{
    ind_batch *b = ud;
    const char *scope = rk__ind_scope_names[h->scope];
    char suffix[16] = "";
    size_t i, nf = 0;
    if (b->cfg->partitions > 1)
        snprintf(suffix, sizeof(suffix), ":p%d", b->cfg->partition);
    /* keys[i] is the hash; keys[IND_CHUNK + i] its index */
    b->keys[b->nh] = fmt("riskd:ind:%s:%s:%s%s", scope, h->key, h->label, suffix);
    b->keys[IND_CHUNK + b->nh] = fmt("riskd:ind:keys:%s%s", scope, suffix);
    if (b->keys[b->nh] == NULL || b->keys[IND_CHUNK + b->nh] == NULL)
        b->oom = true;
    b->nh++;
    arg(b, strdup(h->key));
    arg(b, fmt("%lld", (long long)(h->last_update == INT64_MIN ? 0 : h->last_update)));
    arg(b, strdup(h->label));
    arg(b, fmt("%lld", (long long)h->period_start));
    /* open_*: the counts now for a current period's hash; none for a
     * previous period's (it keeps those of when it was current; the script
     * puts 0 in a hash that has none) or before the first count */
    for (i = 0; i < h->nf; i++)
        nf += strncmp(h->f[i], "open_", 5) != 0 || open_value(b->open, h, h->f[i]) != NULL;
    arg(b, fmt("%zu", nf + (h->region != NULL)));
    for (i = 0; i < h->nf; i++) {
        const char *v = open_value(b->open, h, h->f[i]);
        if (v == NULL && strncmp(h->f[i], "open_", 5) == 0)
            continue;
        arg(b, strdup(h->f[i]));
        arg(b, v != NULL ? strdup(v) : strdup(h->v[i]));
    }
    if (h->region != NULL) {        /* a unit's hash: its region */
        arg(b, strdup("region"));
        arg(b, strdup(h->region));
    }
}

static void batch_free(ind_batch *b)
{
    size_t i;
    for (i = 0; i < b->nh; i++) {
        free(b->keys[i]);
        free(b->keys[IND_CHUNK + i]);
    }
    for (i = 0; i < b->nargs; i++)
        free(b->args[i]);
    free(b->keys);
    free(b->args);
}

static void on_written(rk__redis *r, redisReply *reply, void *pd)
{
    rk__engine *e = pd;
    (void)r;
    e->ind_inflight = false;
    if (e->lost || e->freeing)
        return;
    if (rk__is_fenced_reply(reply)) {
        rk__engine_give_up(e, reply->str);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply != NULL)
            rk__log(RK_LOG_ERR, "writing the indicators failed: %s", reply->str);
        rk__ind_mark_all(e->ind);   /* all of them again, at the next pass */
        e->ind_more = false;
    }
}

void rk__ind_housekeep(rk__engine *e, int64_t now)
{
    static bool cluster_logged;
    ind_batch b;
    const char **argv;
    size_t argc, i, h;
    char epoch[24] = "";
    bool more = false;

    if (e->ob == NULL ||          /* (a replay has no outbox: it writes nothing) */
        e->role == RK__ROLE_CROSS ||    /* (the partitions write theirs) */
        e->lost || e->stopping || !e->restored ||
        e->ind_inflight || !rk__redis_ready(e->wr))
        return;
    if (e->cfg->n_cluster > 0) {
        if (!cluster_logged)
            rk__log(RK_LOG_WARNING, "indicators are not written to a Redis Cluster");
        cluster_logged = true;
        rk__ind_keep_finals(e->ind, false);     /* nothing takes them */
        return;
    }
    open_housekeep(e, now);
    if (!e->ind_more && now < e->ind_next)
        return;
    memset(&b, 0, sizeof(b));
    b.cfg = e->cfg;
    b.open = e->ind_open;
    if ((b.keys = calloc(2 * IND_CHUNK, sizeof(char *))) == NULL)
        return;
    rk__ind_collect(e->ind, IND_CHUNK, rk__wall_ms(), on_hash, &b, &more);
    e->ind_more = more;
    if (!more)
        e->ind_next = now + IND_PASS_MS;
    if (b.nh == 0 || b.oom) {
        if (b.oom) {
            rk__log(RK_LOG_ERR, "out of memory writing the indicators");
            rk__ind_mark_all(e->ind);
        }
        batch_free(&b);
        return;
    }
    argc = 3 + 1 + 2 * b.nh + 1 + 3 + b.nargs;
    if ((argv = calloc(argc, sizeof(*argv))) == NULL) {
        rk__ind_mark_all(e->ind);
        batch_free(&b);
        return;
    }
    if (e->leased)
        snprintf(epoch, sizeof(epoch), "%lld", e->epoch);
    h = 0;
    argv[h++] = "EVAL";
    argv[h++] = ind_write_lua;
    argv[h++] = NULL;               /* numkeys, below */
    argv[h++] = e->epoch_key;
    for (i = 0; i < b.nh; i++)
        argv[h++] = b.keys[i];
    for (i = 0; i < b.nh; i++)
        argv[h++] = b.keys[IND_CHUNK + i];
    argv[h++] = "riskd:ind:periods";
    {
        char numkeys[24], ttl[] = IND_TTL_MS, nh[24];
        snprintf(numkeys, sizeof(numkeys), "%zu", 2 * b.nh + 2);
        snprintf(nh, sizeof(nh), "%zu", b.nh);
        argv[2] = numkeys;
        argv[h++] = epoch;
        argv[h++] = ttl;
        argv[h++] = nh;
        for (i = 0; i < b.nargs; i++)
            argv[h++] = b.args[i];
        if (rk__redis_cmd(e->wr, on_written, e, 0, (int)h, argv, NULL) == 0)
            e->ind_inflight = true;
        else
            rk__ind_mark_all(e->ind);
    }
    free(argv);
    batch_free(&b);
}
