/* dedupe.c - the natural keys of the events applied, so that an event
 * delivered twice changes nothing.
 *
 * Producers may deliver an event more than once (a retried XADD, a batch
 * sent again, history loaded into another Redis). Each event type has a
 * natural key (rk__dedupe_event below: task_id for a filing, task_id + ts
 * for a scan, ...). For every event applied this file remembers, for
 * state.dedupe_window of event time, a 64-bit hash of its type and natural
 * key and a 32-bit digest of its values. The engine asks before applying an
 * event:
 *
 *   new        key not seen (or forgotten): apply, remember.
 *   duplicate  key seen with the same values: acknowledge, count, skip.
 *   amendment  key seen with other values, and the type may be amended
 *              (inspection.filed, case.decided): apply as a replacement of
 *              the earlier event (RK_EVF_AMENDED), remember the new values.
 *   conflict   key seen with other values, and the type may not be
 *              amended: the entry is dead-lettered, naming the key.
 *
 * Both hashes are XXH3 (libxxhash) over a canonical, length-prefixed form
 * of the parsed fields, so the JSON's key order, spacing or number spelling
 * do not matter, and an optional field that is absent adds nothing (a
 * field added to the parser later does not change the digest of events
 * that lack it). The digest is taken before enrichment: what the producer
 * sent, not what the filing filled in.
 *
 * Memory. A remembered key costs 12 bytes: the key's low 48 bits, the
 * digest and the day it was last applied (days since 1970 in 16 bits). The
 * keys are spread over 65,536 buckets by their top 16 bits, so those bits
 * are implied by the bucket and the whole 64-bit hash is kept. A bucket is
 * one allocation (a small header and its entries, sorted by key: binary
 * search, insertion by memmove) that grows by an eighth. With a million
 * keys a bucket holds about 15 entries and the whole store about 14-15
 * bytes a key (tests/bench/dedupe.c measures and prints it). This is also
 * what keeps a filing "known" for the whole window after its full record
 * (tasks.c) has expired: rk__dedupe_filing_known.
 *
 * Expiry: a key is forgotten once the watermark is a whole dedupe_window
 * past the end of the day it was last applied on (applied = the later of
 * its ts and the watermark then). rk__dedupe_expire sweeps all buckets at
 * most once per week of event time; lookups treat a key past the window as
 * gone, so when a sweep runs never changes a result.
 *
 * Checkpoint: version, count, then every key in order (u64 hash, u32
 * digest, u32 day): restored in O(n) by appending, since the order of the
 * snapshot is the order of the buckets. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "riskd/kit.h"
#include "internal.h"

#define DD_SNAPSHOT_VERSION 1u
#define DD_BITS 16
#define DD_BUCKETS ((size_t)1 << DD_BITS)
#define DD_DAY_MS ((int64_t)86400000)
#define DD_SWEEP_DAYS 7             /* expiry sweeps at most once a week */
#define DD_KEY_SEED UINT64_C(0x6b657973)     /* "keys" */
#define DD_VAL_SEED UINT64_C(0x76616c73)     /* "vals" */

typedef struct dd_entry {
    uint32_t lo;                    /* key bits 0..31 */
    uint16_t mid;                   /* key bits 32..47 */
    uint16_t day;                   /* day last applied, since 1970 */
    uint32_t digest;
} dd_entry;

struct dd_bucket {
    uint32_t n, cap;
    dd_entry e[];
};

/* ===================================================================
 * Keys and digests of events
 * =================================================================== */

/* The canonical form being hashed: built in a stack buffer (an event's
 * fields fit in it), moved to the heap for a larger one, then hashed with
 * one XXH3 call (cheaper than XXH3's streaming state for a few hundred
 * bytes). */
typedef struct canon {
    unsigned char *p;
    size_t len, cap;
    int oom;
    unsigned char stack[1024];
} canon;

static void canon_init(canon *c)
{
    c->p = c->stack;
    c->len = 0;
    c->cap = sizeof(c->stack);
    c->oom = 0;
}

static void canon_done(canon *c)
{
    if (c->p != c->stack)
        free(c->p);
}

static void put(canon *c, const void *p, size_t n)
{
    if (c->oom)
        return;
    if (n > c->cap - c->len) {
        size_t cap = c->cap * 2 + n;
        unsigned char *q = malloc(cap);
        if (q == NULL) {
            c->oom = 1;
            return;
        }
        memcpy(q, c->p, c->len);
        if (c->p != c->stack)
            free(c->p);
        c->p = q;
        c->cap = cap;
    }
    memcpy(c->p + c->len, p, n);
    c->len += n;
}

static void h_bytes(canon *st, char tag, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    put(st, &tag, 1);
    put(st, &len, sizeof(len));
    if (n > 0)
        put(st, p, n);
}

static void h_str(canon *st, char tag, const char *s)
{
    if (s != NULL)
        h_bytes(st, tag, s, strlen(s));
}

static void h_i64(canon *st, char tag, int64_t v)
{
    h_bytes(st, tag, &v, sizeof(v));
}

/* The natural key of the event's type: which fields identify it. */
static void key_fields(canon *st, const rk_event *ev)
{
    switch (ev->type) {
    case RK_EV_INSPECTION_FILED:
    case RK_EV_INSPECTION_RATED:
        h_str(st, 't', ev->task_id);
        if (ev->type == RK_EV_INSPECTION_RATED)
            h_str(st, 'e', ev->enterprise_id);
        break;
    case RK_EV_INSPECTION_SCANNED:
        h_str(st, 't', ev->task_id);
        h_i64(st, 'T', ev->ts);
        break;
    case RK_EV_INSPECTION_REPORTED:
        h_str(st, 'u', ev->unit_id);
        h_str(st, 'e', ev->enterprise_id);
        h_i64(st, 'T', ev->ts);
        break;
    case RK_EV_CASE_OPENED:
    case RK_EV_CASE_DECIDED:
        h_str(st, 'c', ev->case_id);
        break;
    case RK_EV_CASE_COMPLAINT:
        h_str(st, 'k', ev->complaint_id);
        break;
    case RK_EV_CASE_REVIEW:
        h_str(st, 'c', ev->case_id);
        h_i64(st, 'o', (int64_t)ev->outcome);
        break;
    default:
        break;
    }
}

/* Every value the parser keeps, in a fixed order; absent ones add
 * nothing. Amounts are hashed as their IEEE bits (the parser gives the
 * same double for "100", "100.0" and "1e2"). */
static void value_fields(canon *st, const rk_event *ev)
{
    size_t i;
    h_i64(st, 'T', ev->ts);
    h_str(st, 't', ev->task_id);
    h_str(st, 'u', ev->unit_id);
    h_str(st, 'e', ev->enterprise_id);
    h_str(st, 'c', ev->case_id);
    h_str(st, 'k', ev->complaint_id);
    h_str(st, 'r', ev->region);
    for (i = 0; i < ev->n_officers; i++)
        h_str(st, 'O', ev->officers[i]);
    switch (ev->type) {
    case RK_EV_INSPECTION_FILED:
        h_i64(st, 'P', ev->planned_at);
        h_str(st, 'b', ev->basis);
        h_i64(st, 'I', (int64_t)ev->n_items);
        /* kind: the default (plan) adds nothing, so a filing that says
         * "plan" is the same as one that leaves kind out, and digests
         * taken before kind existed still match. */
        if (ev->kind != RK_KIND_PLAN && ev->kind != RK_KIND_UNSET)
            h_i64(st, 'K', (int64_t)ev->kind);
        h_str(st, 'j', ev->joint_id);
        break;
    case RK_EV_INSPECTION_RATED:
        h_i64(st, 'S', ev->score);
        h_str(st, 'm', ev->comment);
        break;
    case RK_EV_INSPECTION_REPORTED:
        h_str(st, 'n', ev->note);
        break;
    case RK_EV_CASE_OPENED:
        h_i64(st, 's', (int64_t)ev->source);
        h_str(st, 'i', ev->item_code);
        h_str(st, 'd', ev->domain);
        break;
    case RK_EV_CASE_DECIDED: {
        uint64_t f, c;
        memcpy(&f, &ev->fine, sizeof(f));
        memcpy(&c, &ev->confiscation, sizeof(c));
        h_i64(st, 'F', (int64_t)f);
        h_i64(st, 'C', (int64_t)c);
        h_i64(st, 'l', (int64_t)ev->leniency);
        h_str(st, 'i', ev->item_code);
        if (ev->level != RK_LEVEL_UNSET)
            h_i64(st, 'L', (int64_t)ev->level);
        h_str(st, 'd', ev->domain);
        break;
    }
    case RK_EV_CASE_COMPLAINT:
        h_str(st, 'g', ev->category);
        break;
    case RK_EV_CASE_REVIEW:
        h_i64(st, 'o', (int64_t)ev->outcome);
        h_str(st, 'd', ev->domain);
        h_str(st, 'q', ev->issue);
        break;
    default:
        break;
    }
}

int rk__dedupe_event(const rk_event *ev, uint64_t *key, uint32_t *digest)
{
    canon c;
    unsigned char type = (unsigned char)ev->type;
    int rc = 0;

    if (ev->type <= RK_EV_UNKNOWN || ev->type >= RK_EV_CLOCK_TICK)
        return -1;
    canon_init(&c);
    put(&c, &type, 1);
    key_fields(&c, ev);
    *key = XXH3_64bits_withSeed(c.p, c.len, DD_KEY_SEED);
    c.len = 1;                      /* the type stays */
    value_fields(&c, ev);
    *digest = (uint32_t)XXH3_64bits_withSeed(c.p, c.len, DD_VAL_SEED);
    if (c.oom)
        rc = -1;                    /* out of memory: applied as new */
    canon_done(&c);
    return rc;
}

uint64_t rk__dedupe_filing_key(const char *task_id)
{
    canon c;
    unsigned char type = RK_EV_INSPECTION_FILED;
    uint64_t key;
    canon_init(&c);
    put(&c, &type, 1);
    h_str(&c, 't', task_id);
    key = XXH3_64bits_withSeed(c.p, c.len, DD_KEY_SEED);
    canon_done(&c);
    return key;
}

bool rk__dedupe_amendable(rk_event_type t)
{
    return t == RK_EV_INSPECTION_FILED || t == RK_EV_CASE_DECIDED;
}

/* ===================================================================
 * The store
 * =================================================================== */

static uint16_t day_of(int64_t ms)
{
    int64_t d = ms / DD_DAY_MS;
    if (d < 0) return 0;
    if (d > UINT16_MAX) return UINT16_MAX;
    return (uint16_t)d;
}

static size_t bucket_of(uint64_t key)
{
    return (size_t)(key >> (64 - DD_BITS));
}

static uint64_t low48(uint64_t key)
{
    return key & ((UINT64_C(1) << 48) - 1);
}

static uint64_t entry_low48(const dd_entry *e)
{
    return ((uint64_t)e->mid << 32) | e->lo;
}

static size_t bucket_bytes(uint32_t cap)
{
    return sizeof(struct dd_bucket) + (size_t)cap * sizeof(dd_entry);
}

void rk__dedupe_init(rk__dedupe *d)
{
    memset(d, 0, sizeof(*d));
}

void rk__dedupe_free(rk__dedupe *d)
{
    size_t i;
    if (d->b != NULL)
        for (i = 0; i < DD_BUCKETS; i++)
            free(d->b[i]);
    free(d->b);
    rk__dedupe_init(d);
}

/* The position of key's low 48 bits in bucket b: where it is, or where it
 * would go. *found says which. */
static uint32_t bucket_find(const struct dd_bucket *b, uint64_t lo, bool *found)
{
    uint32_t l = 0, h = b != NULL ? b->n : 0;
    *found = false;
    while (l < h) {
        uint32_t m = l + (h - l) / 2;
        uint64_t v = entry_low48(&b->e[m]);
        if (v == lo) {
            *found = true;
            return m;
        }
        if (v < lo)
            l = m + 1;
        else
            h = m;
    }
    return l;
}

static dd_entry *lookup(const rk__dedupe *d, uint64_t key)
{
    struct dd_bucket *b;
    uint32_t i;
    bool found;
    if (d->b == NULL || (b = d->b[bucket_of(key)]) == NULL)
        return NULL;
    i = bucket_find(b, low48(key), &found);
    return found ? &b->e[i] : NULL;
}

static bool entry_live(const rk__dedupe *d, const dd_entry *e, int64_t now)
{
    /* forgotten once the watermark is a window past the end of its day */
    return d->window > 0 &&
           ((int64_t)e->day + 1) * DD_DAY_MS + d->window >= now;
}

int rk__dedupe_check(const rk__dedupe *d, uint64_t key, uint32_t digest, int64_t now)
{
    const dd_entry *e;
    if (d->window <= 0 || (e = lookup(d, key)) == NULL || !entry_live(d, e, now))
        return RK_DEDUPE_NEW;
    return e->digest == digest ? RK_DEDUPE_DUPLICATE : RK_DEDUPE_CHANGED;
}

/* Make room for one more entry in bucket bi (allocating it on first use,
 * growing it by an eighth, at least 4). Returns the bucket or NULL when out
 * of memory (the bucket is unchanged). */
static struct dd_bucket *bucket_room(rk__dedupe *d, size_t bi)
{
    struct dd_bucket *b = d->b[bi], *nb;
    uint32_t cap, old = b != NULL ? b->cap : 0;
    if (b != NULL && b->n < b->cap)
        return b;
    cap = old == 0 ? 4 : old + (old / 8 > 4 ? old / 8 : 4);
    if (cap < old || (nb = realloc(b, bucket_bytes(cap))) == NULL)
        return NULL;
    if (old == 0)
        nb->n = 0;
    d->bytes += bucket_bytes(cap) - (old ? bucket_bytes(old) : 0);
    nb->cap = cap;
    d->b[bi] = nb;
    return nb;
}

int rk__dedupe_record(rk__dedupe *d, uint64_t key, uint32_t digest, int64_t applied)
{
    struct dd_bucket *b;
    size_t bi = bucket_of(key);
    uint64_t lo = low48(key);
    uint32_t i;
    bool found;

    if (d->window <= 0)
        return 0;
    if (d->b == NULL && (d->b = calloc(DD_BUCKETS, sizeof(*d->b))) == NULL)
        return -1;
    b = d->b[bi];
    i = bucket_find(b, lo, &found);
    if (found) {
        b->e[i].digest = digest;
        if (day_of(applied) > b->e[i].day)
            b->e[i].day = day_of(applied);
        return 0;
    }
    if ((b = bucket_room(d, bi)) == NULL)
        return -1;
    memmove(&b->e[i + 1], &b->e[i], (size_t)(b->n - i) * sizeof(dd_entry));
    b->e[i].lo = (uint32_t)lo;
    b->e[i].mid = (uint16_t)(lo >> 32);
    b->e[i].day = day_of(applied);
    b->e[i].digest = digest;
    b->n++;
    d->count++;
    return 0;
}

bool rk__dedupe_filing_known(const rk__dedupe *d, const char *task_id, int64_t now)
{
    const dd_entry *e;
    if (task_id == NULL || d->window <= 0)
        return false;
    e = lookup(d, rk__dedupe_filing_key(task_id));
    return e != NULL && entry_live(d, e, now);
}

void rk__dedupe_set_window(rk__dedupe *d, int64_t window)
{
    d->window = window;
    d->swept_day = -1;              /* sweep again with the new window */
}

void rk__dedupe_expire(rk__dedupe *d, int64_t now)
{
    int64_t today = now / DD_DAY_MS;
    size_t i;

    if (d->b == NULL || (d->swept_day >= 0 && today >= d->swept_day &&
                         today < d->swept_day + DD_SWEEP_DAYS))
        return;
    d->swept_day = today;
    for (i = 0; i < DD_BUCKETS; i++) {
        struct dd_bucket *b = d->b[i];
        uint32_t r, w = 0;
        if (b == NULL)
            continue;
        for (r = 0; r < b->n; r++)
            if (entry_live(d, &b->e[r], now))
                b->e[w++] = b->e[r];
        d->count -= b->n - w;
        b->n = w;
        if (w == 0) {
            d->bytes -= bucket_bytes(b->cap);
            free(b);
            d->b[i] = NULL;
        }
    }
}

size_t rk__dedupe_count(const rk__dedupe *d)
{
    return d->count;
}

size_t rk__dedupe_bytes(const rk__dedupe *d)
{
    return d->bytes + (d->b != NULL ? DD_BUCKETS * sizeof(*d->b) : 0);
}

/* ===================================================================
 * Checkpoint
 * =================================================================== */

void rk__dedupe_snapshot(const rk__dedupe *d, rk_buf *out)
{
    size_t i;
    uint32_t j;
    rk_buf_put_u32(out, DD_SNAPSHOT_VERSION);
    rk_buf_put_u64(out, d->count);
    if (d->b == NULL)
        return;
    for (i = 0; i < DD_BUCKETS; i++) {
        const struct dd_bucket *b = d->b[i];
        for (j = 0; b != NULL && j < b->n; j++) {
            rk_buf_put_u64(out, ((uint64_t)i << 48) | entry_low48(&b->e[j]));
            rk_buf_put_u32(out, b->e[j].digest);
            rk_buf_put_u32(out, b->e[j].day);
        }
    }
}

int rk__dedupe_restore(rk__dedupe *d, const void *data, size_t len)
{
    rk_rd rd;
    rk__dedupe tmp;
    uint64_t n, i, prev = 0;

    rk_rd_init(&rd, data, len);
    if (rk_rd_u32(&rd) != DD_SNAPSHOT_VERSION || rd.err)
        return -1;
    n = rk_rd_u64(&rd);
    if (rd.err || n > (uint64_t)(rd.end - rd.p) / 16)
        return -1;
    rk__dedupe_init(&tmp);
    tmp.window = d->window;
    tmp.swept_day = -1;
    if (n > 0 && (tmp.b = calloc(DD_BUCKETS, sizeof(*tmp.b))) == NULL)
        return -1;
    for (i = 0; i < n && !rd.err; i++) {
        uint64_t key = rk_rd_u64(&rd);
        uint32_t digest = rk_rd_u32(&rd), day = rk_rd_u32(&rd);
        struct dd_bucket *b;
        size_t bi = bucket_of(key);
        if (rd.err || (i > 0 && key <= prev) || day > UINT16_MAX) {
            rd.err = 1;             /* not in order: not a snapshot of ours */
            break;
        }
        prev = key;
        if ((b = bucket_room(&tmp, bi)) == NULL) {
            rd.err = 1;
            break;
        }
        b->e[b->n].lo = (uint32_t)key;
        b->e[b->n].mid = (uint16_t)(key >> 32);
        b->e[b->n].day = (uint16_t)day;
        b->e[b->n].digest = digest;
        b->n++;
        tmp.count++;
    }
    if (rd.err || rd.p != rd.end) {
        rk__dedupe_free(&tmp);
        return -1;
    }
    rk__dedupe_free(d);
    *d = tmp;
    return 0;
}
