/* indicators_out.c - the indicators in Redis, for dashboards.
 *
 * From the housekeeping timer, every IND_PASS_MS of wall time (and at once
 * while a pass has more to write), the live engine takes the hashes that
 * changed (rk__ind_collect: each key's window, current and previous month
 * and quarter, compared with what was written last) and writes at most
 * IND_CHUNK of them with one script: HSET of every field, PEXPIRE 400d,
 * ZADD of the key to riskd:ind:keys:<scope> (score: the key's last event
 * time) and of the period label to riskd:ind:periods (score: its start).
 * Under a lease the script first checks the partition's epoch, like every
 * other write, and a fenced-out engine gives up. With partitions > 1 the
 * hash and key-index names end in ":p<N>"; readers sum the partitions.
 *
 * A replay writes nothing (its output is not the live writer), and
 * nothing is written before the state is restored. A failed write marks
 * every hash to be written again. On Redis Cluster the hashes span slots
 * that one script cannot reach: nothing is written there (logged once). */
#include "engine_int.h"

#define IND_PASS_MS 5000
#define IND_CHUNK 100
#define IND_TTL_MS "34560000000"            /* 400 days */

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

static void on_hash(const rk__ind_hash *h, void *ud)
{
    ind_batch *b = ud;
    const char *scope = rk__ind_scope_names[h->scope];
    char suffix[16] = "";
    size_t i;
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
    arg(b, fmt("%zu", h->nf));
    for (i = 0; i < h->nf; i++) {
        arg(b, strdup(h->f[i]));
        arg(b, strdup(h->v[i]));
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

    if (e->replay || e->ob == NULL || e->lost || e->stopping || !e->restored ||
        e->ind_inflight || !rk__redis_ready(e->wr))
        return;
    if (!e->ind_more && now < e->ind_next)
        return;
    if (e->cfg->n_cluster > 0) {
        if (!cluster_logged)
            rk__log(RK_LOG_WARNING, "indicators are not written to a Redis Cluster");
        cluster_logged = true;
        return;
    }
    memset(&b, 0, sizeof(b));
    b.cfg = e->cfg;
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
