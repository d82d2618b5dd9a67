/* ticks.c - wall-clock ticks: what a live run decided from the wall clock,
 * kept in Redis so that a replay decides the same.
 *
 * With clock.wall_advance the live engine moves the watermark to the wall
 * clock after clock.idle without input, which fires timers. A replay that
 * re-reads the input streams cannot know when that happened, so every such
 * move is a tick, recorded in the partition's clock stream
 * <state.key>:clock (it shares state.key's hash tag, so on a Cluster it
 * lives in the partition's slot) before the watermark moves:
 *
 *   XADD <state.key>:clock MAXLEN ~ <alerts.maxlen> *
 *        ts <new watermark, ms> <streams.scan key> <id> <streams.case key> <id>
 *
 * The id of a stream is the last of its entries applied before the tick
 * ("0-0": none). A tick thus sits between entries: after every entry at or
 * before those positions and before any later one.
 *
 * The write is one script, fenced by the partition's epoch like every other
 * write: it appends the tick unless the clock stream's last entry is that
 * very tick (a retry after a lost reply), so a tick is recorded once. The
 * engine (wallclock.c) moves the watermark only once Redis confirmed the write
 * (and, with redis.wait_replicas, the WAIT after it) and applies no entry
 * meanwhile: the record is durable before any alert the move raises, and
 * its positions are exact.
 *
 * Read back: --replay reads the ticks of its range (XRANGE) and a restarted
 * engine those newer than its checkpoint's watermark (XREVRANGE); both
 * apply them in order at their positions (the gate in apply.c's merge).
 * This file holds the record's format, the script and the queue of ticks
 * still to apply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "internal.h"

/* KEYS[1] the clock stream, KEYS[2] the partition's epoch key; ARGV[1] the
 * writer's epoch ("" = unfenced), ARGV[2] maxlen, ARGV[3..] the tick's
 * field/value pairs. Returns 1 (appended) or 0 (already the last entry). */
const char rk__tick_lua[] =
    "if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' of ' .. KEYS[2] .. "
    "' is no longer current')\n"
    "end\n"
    "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "if #last == 1 and #last[1][2] == #ARGV - 2 then\n"
    "  local same = true\n"
    "  for i = 1, #ARGV - 2 do\n"
    "    if last[1][2][i] ~= ARGV[i + 2] then same = false; break end\n"
    "  end\n"
    "  if same then return 0 end\n"
    "end\n"
    "local f = {}\n"
    "for i = 3, #ARGV do f[#f + 1] = ARGV[i] end\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(f))\n"
    "return 1\n";

int rk__tick_init(rk__tick *k, unsigned n)
{
    unsigned si;
    memset(k, 0, sizeof(*k));
    k->pos = calloc(n ? n : 1, sizeof(*k->pos));
    if (k->pos == NULL)
        return -1;
    k->n = n;
    for (si = 0; si < n; si++)
        k->pos[si].stream = si;
    return 0;
}

void rk__tick_free(rk__tick *k)
{
    free(k->pos);
    memset(k, 0, sizeof(*k));
}

void rk__ticks_free(rk__ticks *t)
{
    size_t i;
    for (i = t->head; i < t->n; i++)
        free(t->q[i].pos);
    free(t->q);
    memset(t, 0, sizeof(*t));
}

int rk__ticks_push(rk__ticks *t, const rk__tick *k)
{
    if (t->head > 0 && t->head == t->n) {
        t->head = t->n = 0;         /* all applied: reuse from the start */
    }
    rk_entry_ref *pos;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        rk__tick *q = realloc(t->q, ncap * sizeof(*q));
        if (q == NULL)
            return -1;
        t->q = q;
        t->cap = ncap;
    }
    pos = malloc((k->n ? k->n : 1) * sizeof(*pos));
    if (pos == NULL)
        return -1;
    if (k->n > 0)
        memcpy(pos, k->pos, k->n * sizeof(*pos));
    t->q[t->n] = *k;
    t->q[t->n++].pos = pos;
    return 0;
}

const rk__tick *rk__ticks_head(const rk__ticks *t)
{
    return t->head < t->n ? &t->q[t->head] : NULL;
}

void rk__ticks_pop(rk__ticks *t)
{
    if (t->head < t->n) {
        free(t->q[t->head].pos);
        t->q[t->head].pos = NULL;
        t->head++;
    }
    if (t->head == t->n)
        t->head = t->n = 0;
}

size_t rk__ticks_count(const rk__ticks *t)
{
    return t->n - t->head;
}

/* "<ms>-<seq>" -> ref; -1 when not an entry id. */
static int parse_id(const char *s, size_t len, rk_entry_ref *ref)
{
    unsigned long long ms, seq;
    char buf[48], *end;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] < '0' || buf[0] > '9')
        return -1;
    ms = strtoull(buf, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return -1;
    seq = strtoull(end + 1, &end, 10);
    if (*end != '\0')
        return -1;
    ref->ms = ms;
    ref->seq = seq > UINT32_MAX ? UINT32_MAX : (uint32_t)seq;
    return 0;
}

int rk__tick_parse(const struct redisReply *item, const char *const *stream_keys,
                   rk__tick *out)
{
    const redisReply *f;
    bool has_ts = false;
    size_t i;
    unsigned si;

    if (item == NULL || item->type != REDIS_REPLY_ARRAY || item->elements < 2 ||
        item->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    out->ts = 0;
    for (si = 0; si < out->n; si++) {
        memset(&out->pos[si], 0, sizeof(out->pos[si]));
        out->pos[si].stream = si;
    }
    f = item->element[1];
    for (i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -1;
        if (k->len == 2 && memcmp(k->str, "ts", 2) == 0) {
            char buf[32], *end;
            long long ts;
            if (v->len == 0 || v->len >= sizeof(buf))
                return -1;
            memcpy(buf, v->str, v->len);
            buf[v->len] = '\0';
            ts = strtoll(buf, &end, 10);
            if (*end != '\0')
                return -1;
            out->ts = ts;
            has_ts = true;
            continue;
        }
        /* A stream the configuration no longer names is ignored. */
        for (si = 0; si < out->n; si++)
            if (strlen(stream_keys[si]) == k->len && memcmp(stream_keys[si], k->str, k->len) == 0)
                break;
        if (si < out->n && parse_id(v->str, v->len, &out->pos[si]) != 0)
            return -1;
    }
    return has_ts ? 0 : -1;
}

void rk__tick_args(const rk__tick *k, const char *const *stream_keys,
                   char (*buf)[48], const char **argv)
{
    unsigned si;
    int n = 0;
    snprintf(buf[0], 48, "%lld", (long long)k->ts);
    argv[n++] = "ts";
    argv[n++] = buf[0];
    for (si = 0; si < k->n; si++) {
        snprintf(buf[si + 1], 48, "%llu-%u", (unsigned long long)k->pos[si].ms,
                 k->pos[si].seq);
        argv[n++] = stream_keys[si];
        argv[n++] = buf[si + 1];
    }
}
