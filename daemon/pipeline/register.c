/* daemon/pipeline/register.c - the filing register shared by the partitions.
 *
 * With `partitions` > 1 a case opened by one unit for an inspection another
 * unit filed (a transfer, a joint inspection) lands in another partition
 * than the filing, and so does a scan routed by the task when the producer
 * did not know the filing. A partition alone would report such a task as
 * unfiled. So every partition records each filing it applies in a register
 * in Redis, and the publish-once script (sink.c) consults it before it
 * writes a scan_without_filing or case_without_filing alert that names a
 * task: a filing of the task with filing ts <= the alert's ts (its
 * deadline) drops the alert (reply 2, riskd_alerts_filed_elsewhere_total).
 *
 * Watermarks. A partition behind in event time may still apply such a
 * filing. Each partition therefore publishes its watermark (less
 * clock.allowed_lateness: the time its own timers fire on) in the register
 * together with (in the same script call as) every filing it applied
 * before it, and the publish script writes such an alert only once every
 * partition's published watermark is past the alert's deadline (the
 * condition under which a single instance would fire the rule's timer);
 * until then it answers "WAITING ..." and the outbox tries again. A
 * published watermark is never lowered: the filings before it are in the
 * register whoever publishes it (a takeover's new holder starts lower and
 * records the same filings again).
 *
 * Layout (M = riskd:filed, on a Redis Cluster riskd:filed:{<tag>} in the
 * alert stream's slot, like the alert dedupe keys):
 *
 *   M          hash: wm:<p> the watermark partition p published (ms);
 *              lo the oldest period that may still exist
 *   M:<i>      hash of the filings with ts in period i (32 days of event
 *              time from the epoch): field = the top 12 bits of the task's
 *              64-bit filing key (dedupe.c) in decimal, value = 12-byte
 *              records, the whole key (8 bytes) and the filing ts's offset
 *              in the period (4 bytes, ms), both big-endian. A repeat keeps
 *              the earlier ts.
 *
 * A filing thus costs 12 bytes of Redis memory, plus its share of the field
 * (about 60 bytes with Redis's per-field overhead; shared by the filings of
 * a bucket: below 4 bytes a filing from ~200,000 filings a period on). A
 * period is deleted once every partition's watermark is a whole
 * state.dedupe_window (state.task_retention when deduplication is off) and
 * two periods past its end; lookups read the periods of the window before
 * the deadline (at most RK_REG_MAX_PERIODS keys). Every key a script
 * touches is one of its KEYS (except the deleted periods), so a resharding
 * of the slot answers ASK / TRYAGAIN like any other script call.
 *
 * Writes: records queue here as filings are applied; one script call at a
 * time carries up to REG_BATCH of them and, when it carries every queued
 * one, the current watermark. With redis.wait_replicas n a call's records
 * count as written only when WAIT answers >= n. The engine counts records
 * not yet written as pending outbox items: no checkpoint is written before
 * the filings it reflects are in the register (a kill -9 then re-applies
 * and re-records them). The register is not fenced: a stale holder can
 * only record filings of its partition's stream, which the new holder
 * records too, and a watermark it has reached with them. */
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <hiredis/hiredis.h>

#include "riskd/kit.h"
#include "internal.h"

#define REG_BATCH 256
#define REG_BUCKET_BITS 12

typedef struct reg_rec {
    int64_t period;
    uint32_t bucket;
    unsigned char rec[12];
} reg_rec;

struct rk__register {
    rk__redis *conn;
    void (*on_drained)(void *ud);
    void *ud;
    char meta[300];
    char part[16], nparts[16], window[24], period[24];
    int wait_replicas;
    char wait_n[16], wait_ms[24];
    int64_t wait_timeout;
    reg_rec *q;                     /* queued records, oldest first */
    size_t n, cap;
    size_t sent;                    /* the first `sent` are in the call in flight */
    int inflight;                   /* 0, 1 script call, 2 its WAIT */
    int64_t wm;                     /* the engine's watermark */
    int64_t wm_published, wm_sent;
    char sha[41];
    int script_state;               /* 0 none, 1 loading, 2 loaded */
    int failing;                    /* the last call failed (logged once) */
    bool closing;
    rk__register_stats stats;
};

/* KEYS[1] M, KEYS[2..] the period key of each record; ARGV[1] partition,
 * ARGV[2] watermark ("" = none), ARGV[3] partitions, ARGV[4] window ms,
 * ARGV[5] period ms, then per record: period index, bucket, record. */
static const char record_lua[] =
    "local function off(s, j)\n"
    "  local a, b, c, d = string.byte(s, j, j + 3)\n"
    "  return ((a * 256 + b) * 256 + c) * 256 + d\n"
    "end\n"
    "local per = tonumber(ARGV[5])\n"
    "local lo = redis.call('HGET', KEYS[1], 'lo')\n"
    "lo = lo and tonumber(lo)\n"
    "for k = 2, #KEYS do\n"
    "  local a = 6 + (k - 2) * 3\n"
    "  local pi, b, rec = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]\n"
    "  local v = redis.call('HGET', KEYS[k], b) or ''\n"
    "  local dg, found = string.sub(rec, 1, 8), false\n"
    "  for j = 1, #v - 11, 12 do\n"
    "    if string.sub(v, j, j + 7) == dg then\n"
    "      found = true\n"
    "      if off(rec, 9) < off(v, j + 8) then\n"
    "        redis.call('HSET', KEYS[k], b, string.sub(v, 1, j + 7) .. string.sub(rec, 9, 12) .."
    " string.sub(v, j + 12))\n"
    "      end\n"
    "      break\n"
    "    end\n"
    "  end\n"
    "  if not found then redis.call('HSET', KEYS[k], b, v .. rec) end\n"
    "  if not lo or pi < lo then\n"
    "    lo = pi\n"
    "    redis.call('HSET', KEYS[1], 'lo', ARGV[a])\n"
    "  end\n"
    "end\n"
    "if ARGV[2] == '' then return 1 end\n"
    "local f = 'wm:' .. ARGV[1]\n"
    "local cur = redis.call('HGET', KEYS[1], f)\n"
    "if not cur or tonumber(ARGV[2]) > tonumber(cur) then\n"
    "  redis.call('HSET', KEYS[1], f, ARGV[2])\n"
    "end\n"
    /* Drop the periods every partition has left a window behind. */
    "local min\n"
    "for p = 0, tonumber(ARGV[3]) - 1 do\n"
    "  local w = redis.call('HGET', KEYS[1], 'wm:' .. p)\n"
    "  if not w then return 1 end\n"
    "  w = tonumber(w)\n"
    "  if not min or w < min then min = w end\n"
    "end\n"
    "local cut = math.floor((min - tonumber(ARGV[4])) / per) - 2\n"
    "if lo and lo < cut then\n"
    "  local n = 0\n"
    "  while lo < cut and n < 64 do\n"
    "    redis.call('DEL', KEYS[1] .. ':' .. string.format('%d', lo))\n"
    "    lo = lo + 1\n"
    "    n = n + 1\n"
    "  end\n"
    "  redis.call('HSET', KEYS[1], 'lo', string.format('%d', lo))\n"
    "end\n"
    "return 1\n";

static int64_t window_of(const rk__config *cfg)
{
    int64_t w = cfg->dedupe_window > 0 ? cfg->dedupe_window : cfg->task_retention;
    if (w > (int64_t)(RK_REG_MAX_PERIODS - 3) * RK_REG_PERIOD_MS)
        w = (int64_t)(RK_REG_MAX_PERIODS - 3) * RK_REG_PERIOD_MS;
    return w;
}

static int64_t period_of(int64_t ts)
{
    int64_t p = ts / RK_REG_PERIOD_MS;
    if (ts < 0 && p * RK_REG_PERIOD_MS != ts)
        p--;
    return p;
}

void rk__register_key(const rk__config *cfg, char *out, size_t len)
{
    char tag[256];
    if (cfg->n_cluster > 0) {
        rk__slot_tag(cfg->alerts_stream, tag, sizeof(tag));
        snprintf(out, len, "riskd:filed:{%s}", tag);
    } else {
        snprintf(out, len, "riskd:filed");
    }
}

bool rk__register_checks(const char *rule)
{
    return rule != NULL && (strcmp(rule, "case_without_filing") == 0 ||
                            strcmp(rule, "scan_without_filing") == 0);
}

int rk__register_check(const rk__config *cfg, const char *task_id, int64_t deadline,
                       char keys[][320], size_t *nkeys, char *spec, size_t speclen)
{
    char meta[280];                 /* "riskd:filed:{" + a tag of < 256 + "}" */
    uint64_t k = rk__dedupe_filing_key(task_id);
    int64_t hi = period_of(deadline), lo = period_of(deadline - window_of(cfg)) - 1, i;
    size_t n = 0;

    rk__register_key(cfg, meta, sizeof(meta));
    snprintf(keys[n++], 320, "%s", meta);
    for (i = lo; i <= hi && n < RK_REG_MAX_PERIODS + 1; i++)
        snprintf(keys[n++], 320, "%s:%lld", meta, (long long)i);
    *nkeys = n;
    snprintf(spec, speclen, "%016llx %u %lld %d %lld %lld", (unsigned long long)k,
             (unsigned)(k >> (64 - REG_BUCKET_BITS)), (long long)deadline, cfg->partitions,
             (long long)RK_REG_PERIOD_MS, (long long)lo);
    return 0;
}

rk__register *rk__register_new(rk__redis *conn, const rk__config *cfg,
                               void (*on_drained)(void *ud), void *ud)
{
    rk__register *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->conn = conn;
    g->on_drained = on_drained;
    g->ud = ud;
    rk__register_key(cfg, g->meta, sizeof(g->meta));
    snprintf(g->part, sizeof(g->part), "%d", cfg->partition);
    snprintf(g->nparts, sizeof(g->nparts), "%d", cfg->partitions);
    snprintf(g->window, sizeof(g->window), "%lld", (long long)window_of(cfg));
    snprintf(g->period, sizeof(g->period), "%lld", (long long)RK_REG_PERIOD_MS);
    g->wait_replicas = cfg->redis_wait_replicas;
    g->wait_timeout = cfg->redis_wait_timeout;
    snprintf(g->wait_n, sizeof(g->wait_n), "%d", cfg->redis_wait_replicas);
    snprintf(g->wait_ms, sizeof(g->wait_ms), "%lld", (long long)cfg->redis_wait_timeout);
    g->wm = g->wm_published = INT64_MIN;
    return g;
}

/* The engine frees the register before it closes the connection, whose
 * callbacks then still run (with NULL): they find `closing` and return. */
void rk__register_free(rk__register *g)
{
    if (g == NULL)
        return;
    if (g->inflight) {
        g->closing = true;          /* freed by the last callback */
        return;
    }
    free(g->q);
    free(g);
}

static void reg_send(rk__register *g);

static bool reg_gone(rk__register *g)
{
    if (!g->closing)
        return false;
    if (!g->inflight) {
        free(g->q);
        free(g);
    }
    return true;
}

static void on_loaded(rk__redis *r, redisReply *reply, void *pd)
{
    rk__register *g = pd;
    (void)r;
    g->inflight = 0;
    if (reg_gone(g))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        if (reply != NULL && !g->failing)
            rk__log(RK_LOG_ERR, "filing register: SCRIPT LOAD failed: %s",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        g->failing = reply != NULL;
        g->script_state = 0;
        return;                     /* again at the next kick */
    }
    memcpy(g->sha, reply->str, 40);
    g->sha[40] = '\0';
    g->script_state = 2;
    reg_send(g);
}

/* The call in flight is done: its records are written. */
static void reg_confirm(rk__register *g)
{
    size_t sent = g->sent;
    if (g->n > sent)
        memmove(g->q, g->q + sent, (g->n - sent) * sizeof(*g->q));
    g->n -= sent;
    g->sent = 0;
    g->stats.recorded += sent;
    if (g->wm_sent > g->wm_published)
        g->wm_published = g->wm_sent;
    if (g->failing)
        rk__log(RK_LOG_NOTICE, "filing register: written again");
    g->failing = 0;
    if (sent > 0 && g->n == 0 && g->on_drained)
        g->on_drained(g->ud);
}

static void reg_failed(rk__register *g, const redisReply *reply, const char *what)
{
    g->sent = 0;
    if (reply == NULL)
        return;                     /* connection lost: sent again on reconnect */
    g->stats.errors++;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        g->script_state = 0;
        return;
    }
    if (!g->failing)
        rk__log(RK_LOG_ERR, "filing register: %s failed: %s; retrying", what,
                reply->type == REDIS_REPLY_ERROR ? reply->str :
                reply->type == REDIS_REPLY_INTEGER ? "too few replicas acknowledged in time"
                                                   : "unexpected reply");
    g->failing = 1;
}

static void on_wait(rk__redis *r, redisReply *reply, void *pd)
{
    rk__register *g = pd;
    (void)r;
    g->inflight = 0;
    if (reg_gone(g))
        return;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer >= g->wait_replicas) {
        reg_confirm(g);
        reg_send(g);
        return;
    }
    reg_failed(g, reply, "WAIT");
}

static void on_recorded(rk__redis *r, redisReply *reply, void *pd)
{
    rk__register *g = pd;
    (void)r;
    g->inflight = 0;
    if (reg_gone(g))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        reg_failed(g, reply, "recording filings");
        return;
    }
    if (g->wait_replicas > 0 && g->sent > 0) {
        const char *argv[3] = {"WAIT", g->wait_n, g->wait_ms};
        if (rk__redis_cmd(g->conn, on_wait, g, g->wait_timeout, 3, argv, NULL) == 0) {
            g->inflight = 2;
            return;
        }
        g->sent = 0;
        return;
    }
    reg_confirm(g);
    reg_send(g);
}

static void reg_send(rk__register *g)
{
    const char **argv = NULL;
    size_t *lens = NULL, nrec, i, argc = 0;
    char (*num)[2][24] = NULL;
    char nkeys[16], wm[24], *keys = NULL;
    size_t ml;

    if (g->closing || g->inflight || !rk__redis_ready(g->conn))
        return;
    if (g->n == 0 && (g->wm == INT64_MIN || g->wm <= g->wm_published))
        return;
    if (g->script_state != 2) {
        const char *a[3] = {"SCRIPT", "LOAD", record_lua};
        if (rk__redis_cmd(g->conn, on_loaded, g, 0, 3, a, NULL) == 0) {
            g->inflight = 1;
            g->script_state = 1;
        }
        return;
    }
    nrec = g->n < REG_BATCH ? g->n : REG_BATCH;
    ml = strlen(g->meta);
    argv = malloc((9 + 4 * nrec) * sizeof(*argv));
    lens = malloc((9 + 4 * nrec) * sizeof(*lens));
    num = malloc((nrec ? nrec : 1) * sizeof(*num));
    keys = malloc(nrec * (ml + 24) + 1);
    if (argv == NULL || lens == NULL || num == NULL || keys == NULL)
        goto done;                  /* again at the next kick */
    /* The watermark goes with the call that carries the last queued record:
     * every filing applied before it is then in the register. */
    g->wm_sent = nrec == g->n && g->wm != INT64_MIN ? g->wm : INT64_MIN;
    if (g->wm_sent != INT64_MIN)
        snprintf(wm, sizeof(wm), "%lld", (long long)g->wm_sent);
    else
        wm[0] = '\0';
    snprintf(nkeys, sizeof(nkeys), "%zu", 1 + nrec);
#define ARG(s, l) (argv[argc] = (s), lens[argc++] = (l))
    ARG("EVALSHA", 7);
    ARG(g->sha, 40);
    ARG(nkeys, strlen(nkeys));
    ARG(g->meta, ml);
    for (i = 0; i < nrec; i++) {
        char *k = keys + i * (ml + 24);
        snprintf(k, ml + 24, "%s:%lld", g->meta, (long long)g->q[i].period);
        ARG(k, strlen(k));
    }
    ARG(g->part, strlen(g->part));
    ARG(wm, strlen(wm));
    ARG(g->nparts, strlen(g->nparts));
    ARG(g->window, strlen(g->window));
    ARG(g->period, strlen(g->period));
    for (i = 0; i < nrec; i++) {
        snprintf(num[i][0], sizeof(num[i][0]), "%lld", (long long)g->q[i].period);
        snprintf(num[i][1], sizeof(num[i][1]), "%u", g->q[i].bucket);
        ARG(num[i][0], strlen(num[i][0]));
        ARG(num[i][1], strlen(num[i][1]));
        ARG((const char *)g->q[i].rec, 12);
    }
#undef ARG
    if (rk__redis_cmd(g->conn, on_recorded, g, 0, (int)argc, argv, lens) == 0) {
        g->inflight = 1;
        g->sent = nrec;
    }
done:
    free(argv);
    free(lens);
    free(num);
    free(keys);
}

int rk__register_filed(rk__register *g, const char *task_id, int64_t ts)
{
    reg_rec *r;
    uint64_t k;
    uint32_t off;
    int i;

    if (g == NULL || task_id == NULL)
        return 0;
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 64;
        reg_rec *q = realloc(g->q, ncap * sizeof(*q));
        if (q == NULL)
            return -1;
        g->q = q;
        g->cap = ncap;
    }
    r = &g->q[g->n++];
    k = rk__dedupe_filing_key(task_id);
    r->period = period_of(ts);
    r->bucket = (uint32_t)(k >> (64 - REG_BUCKET_BITS));
    off = (uint32_t)(ts - r->period * RK_REG_PERIOD_MS);
    for (i = 0; i < 8; i++)
        r->rec[i] = (unsigned char)(k >> (56 - 8 * i));
    for (i = 0; i < 4; i++)
        r->rec[8 + i] = (unsigned char)(off >> (24 - 8 * i));
    return 0;
}

void rk__register_watermark(rk__register *g, int64_t wm)
{
    if (g == NULL)
        return;
    if (wm > g->wm)
        g->wm = wm;
    reg_send(g);
}

void rk__register_conn_down(rk__register *g)
{
    if (g != NULL)
        g->script_state = 0;        /* a restarted Redis has an empty script cache */
}

size_t rk__register_pending(const rk__register *g)
{
    return g != NULL ? g->n : 0;
}

const rk__register_stats *rk__register_stats_of(const rk__register *g)
{
    static const rk__register_stats none;
    return g != NULL ? &g->stats : &none;
}
