/* tasks.c - the filings seen so far, so that every detector gets the same
 * enrichment.
 *
 * When a rating, scan or case lacks unit_id or officers, detectors take
 * them from the filing of the same task_id when one is known. The engine does this once, here, before any detector sees the
 * event, and marks what it filled in (RK_EVF_*).
 *
 * A filing is kept until the watermark passes max(filed ts, planned_at) +
 * state.task_retention (default 30 days); events about an older task are
 * then not enriched. Filings are kept in a FIFO in filing order; expiry
 * walks from the head and stops at the first filing not yet expired, so a
 * filing with a far planned_at can hold back later ones for at most the
 * spread of planned_at, never forever.
 *
 * Memory: a filing is one record and nothing else. Its task id is stored
 * inside it, and it is found through an intrusive hash table (rk__tasks.map,
 * the kit's rk_itab: the link is in the record; the bucket array grows at
 * two filings per bucket). Unit, enterprise and officer ids repeat across
 * filings, so they are interned: one copy each, reference-counted,
 * whatever the number of filings naming them. Times are kept as ts plus
 * two 32-bit offsets (planned_at - ts, expires - max(ts, planned_at)) when
 * they fit, which they do for any planned_at within 24 days of the filing
 * and a retention up to 49 days; otherwise the record is "wide" and holds
 * both in full. Records are freed in the order they were made (the FIFO),
 * so they are not malloc'ed one by one but cut from 16 KiB blocks aligned
 * to their size: a record costs its size rounded to 8 bytes (no malloc
 * header, no size class), the block of a record is its address rounded
 * down, and a block is freed when its last record is. The records of a
 * block follow each other (a record's size is known from its officers,
 * width and id), and blocks are linked in filing order, which is the FIFO:
 * no per-record list link. A record larger than a block gets a block of
 * its own. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

#define TASKS_SNAPSHOT_VERSION 1u
#define TASKS_MAX_OFFICERS ((1u << 18) - 1)    /* rk__task.n_officers */

/* ===================================================================
 * Record layout
 * =================================================================== */

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

/* The full times of a wide record, just after its officers. */
static const int64_t *wide_times(const rk__task *k)
{
    return (const int64_t *)(const void *)&k->officers[k->n_officers];
}

const char *rk__task_id(const rk__task *k)
{
    return (const char *)&k->officers[k->n_officers] +
           (k->wide ? 2 * sizeof(int64_t) : 0);
}

int64_t rk__task_planned_at(const rk__task *k)
{
    return k->wide ? wide_times(k)[0] : k->ts + k->planned_after;
}

int64_t rk__task_expires(const rk__task *k)
{
    int64_t planned;
    if (k->wide)
        return wide_times(k)[1];
    planned = rk__task_planned_at(k);
    return (k->ts > planned ? k->ts : planned) + (int64_t)k->kept;
}

rk_entry_ref rk__task_ref(const rk__task *k)
{
    rk_entry_ref r;
    r.ms = k->ref_ms;
    r.seq = k->ref_seq;
    r.stream = k->ref_stream;
    return r;
}

/* Whether (ts, planned_at, expires) fit a narrow record; if so the two
 * offsets are stored in *after and *kept. */
static int narrow_times(int64_t ts, int64_t planned, int64_t expires,
                        int32_t *after, uint32_t *kept)
{
    int64_t base = ts > planned ? ts : planned;
    if (planned >= ts ? (uint64_t)planned - (uint64_t)ts > (uint64_t)INT32_MAX
                      : (uint64_t)ts - (uint64_t)planned > (uint64_t)INT32_MAX + 1)
        return 0;
    if (expires < base || (uint64_t)expires - (uint64_t)base > UINT32_MAX)
        return 0;
    *after = (int32_t)(planned - ts);
    *kept = (uint32_t)((uint64_t)expires - (uint64_t)base);
    return 1;
}

/* Bytes of a record with n officers, the given width and an id of idlen
 * characters, rounded up to 8; 0 when too large. */
static size_t task_size(size_t n, int wide, size_t idlen)
{
    size_t fixed = sizeof(rk__task) + (wide ? 2 * sizeof(int64_t) : 0) + 1 + 7;
    if (n > (SIZE_MAX / 2 - fixed) / sizeof(const char *) ||
        idlen > SIZE_MAX / 2 - fixed - n * sizeof(const char *))
        return 0;
    return (fixed + n * sizeof(const char *) + idlen) & ~(size_t)7;
}

static size_t record_size(const rk__task *k)
{
    return task_size(k->n_officers, k->wide, strlen(rk__task_id(k)));
}

/* ===================================================================
 * Record blocks
 * =================================================================== */

#define TASK_BLOCK ((size_t)16 * 1024)  /* size and alignment of a block */

typedef struct task_block {
    size_t used;                    /* bytes handed out, header included */
    size_t cap;                     /* bytes in the block */
    size_t live;                    /* records not yet freed */
    struct task_block *next;        /* the block made after this one */
} task_block;

static task_block *block_of(const rk__task *k)
{
    return (task_block *)((uintptr_t)k & ~(uintptr_t)(TASK_BLOCK - 1));
}

/* A zeroed record of `size` bytes (a multiple of 8), cut from the block of
 * the newest record (t->tail) or from a new block linked after it. Returns
 * NULL when out of memory. */
static rk__task *task_alloc(rk__tasks *t, size_t size)
{
    task_block *b = t->tail != NULL ? block_of(t->tail) : NULL;
    rk__task *k;

    if (b == NULL || b->cap - b->used < size) {
        size_t cap = TASK_BLOCK;
        void *p;
        if (size > TASK_BLOCK - sizeof(task_block))
            cap = sizeof(task_block) + size;
        if (posix_memalign(&p, TASK_BLOCK, cap) != 0)
            return NULL;
        if (b != NULL)
            b->next = p;
        b = p;
        b->used = sizeof(task_block);
        b->cap = cap;
        b->live = 0;
        b->next = NULL;
    }
    k = (rk__task *)(void *)((char *)b + b->used);
    b->used += size;
    b->live++;
    memset(k, 0, size);
    return k;
}

/* Give back k, the record just cut (not yet queued: t->tail is still the
 * one before it). Its block is freed with its last record. */
static void task_unalloc(rk__tasks *t, rk__task *k, size_t size)
{
    task_block *b = block_of(k);
    b->used -= size;
    if (--b->live == 0) {
        if (t->tail != NULL)
            block_of(t->tail)->next = NULL;
        free(b);
    }
}

const rk__task *rk__tasks_next(const rk__tasks *t, const rk__task *k)
{
    const task_block *b;
    const char *end;
    if (k == NULL || k == t->tail)
        return NULL;
    b = block_of(k);
    end = (const char *)k + record_size(k);
    if (end < (const char *)b + b->used)
        return (const rk__task *)(const void *)end;
    return (const rk__task *)(const void *)((const char *)b->next + sizeof(task_block));
}

/* ===================================================================
 * The task table
 * =================================================================== */

static uint64_t task_hash(const void *rec)
{
    return rk_kit_hash_str(rk__task_id(rec));
}

static rk__task *lookup(const rk_itab *m, const char *id)
{
    rk__task *k;
    for (k = rk_itab_first(m, rk_kit_hash_str(id)); k != NULL; k = rk_itab_next(m, k))
        if (strcmp(rk__task_id(k), id) == 0)
            return k;
    return NULL;
}

/* Insert k (its id not present). Returns 0, or -1 when out of memory. */
static int map_put(rk_itab *m, rk__task *k)
{
    if (rk_itab_reserve(m) != 0)
        return -1;                  /* a full table still takes it */
    rk_itab_insert(m, k, task_hash(k), NULL);
    return 0;
}

/* Unlink k; the buckets go with the last filing. */
static void map_del(rk_itab *m, rk__task *k)
{
    rk_itab_remove(m, k, task_hash(k));
    if (m->count == 0)
        rk_itab_free(m);
}

/* ===================================================================
 * Filings
 * =================================================================== */

void rk__tasks_init(rk__tasks *t)
{
    memset(t, 0, sizeof(*t));
    rk_itab_init(&t->map, offsetof(rk__task, hnext), RK_ITAB_NOPREV, task_hash);
    rk_map_init(&t->strings);
}

/* Return the interned copy of s (taking a reference), or NULL when out of
 * memory. NULL stays NULL. */
static const char *intern(rk__tasks *t, const char *s, int *oom)
{
    rk_map_entry *e;
    if (s == NULL)
        return NULL;
    e = rk_map_find(&t->strings, s);
    if (e == NULL) {
        e = rk_map_put(&t->strings, s, (void *)(uintptr_t)0, NULL);
        if (e == NULL) {
            *oom = 1;
            return NULL;
        }
    }
    e->value = (void *)((uintptr_t)e->value + 1);
    return e->key;
}

static void release(rk__tasks *t, const char *s)
{
    rk_map_entry *e;
    if (s == NULL || (e = rk_map_find(&t->strings, s)) == NULL)
        return;
    e->value = (void *)((uintptr_t)e->value - 1);
    if ((uintptr_t)e->value == 0)
        rk_map_del(&t->strings, s);
}

/* Drop a record's references to interned ids. */
static void task_unref(rk__tasks *t, rk__task *k)
{
    uint32_t i;
    release(t, k->unit_id);
    release(t, k->enterprise_id);
    for (i = 0; i < k->n_officers; i++)
        release(t, k->officers[i]);
}

void rk__tasks_free(rk__tasks *t)
{
    task_block *b = t->head != NULL ? block_of(t->head) : NULL, *next;
    for (; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    rk_itab_free(&t->map);
    rk_map_clear(&t->strings, NULL);
    rk__tasks_init(t);
}

/* Create, register and queue a filing record with its times. Returns it,
 * or NULL when out of memory, when there are too many officers or the task
 * id is already recorded (nothing is left behind). */
static rk__task *task_add(rk__tasks *t, const char *task_id, const char *unit_id,
                          const char *enterprise_id, const char *const *officers,
                          size_t n_officers, int64_t ts, int64_t planned,
                          int64_t expires, rk_entry_ref ref)
{
    rk__task *k;
    size_t i, size, idlen = strlen(task_id);
    int32_t after = 0;
    uint32_t kept = 0;
    int oom = 0, wide;

    if (n_officers > TASKS_MAX_OFFICERS || ref.stream >= RK__MAX_STREAMS ||
        lookup(&t->map, task_id) != NULL)
        return NULL;
    wide = !narrow_times(ts, planned, expires, &after, &kept);
    size = task_size(n_officers, wide, idlen);
    if (size == 0 || (k = task_alloc(t, size)) == NULL)
        return NULL;
    k->ts = ts;
    k->ref_ms = ref.ms;
    k->ref_seq = ref.seq;
    k->ref_stream = ref.stream;
    k->n_officers = (unsigned int)n_officers;
    k->wide = wide ? 1u : 0u;
    if (wide) {
        int64_t *w = (int64_t *)(void *)&k->officers[n_officers];
        w[0] = planned;
        w[1] = expires;
    } else {
        k->planned_after = after;
        k->kept = kept;
    }
    memcpy((char *)&k->officers[n_officers] + (wide ? 2 * sizeof(int64_t) : 0),
           task_id, idlen + 1);
    k->unit_id = intern(t, unit_id, &oom);
    k->enterprise_id = intern(t, enterprise_id, &oom);
    for (i = 0; i < n_officers; i++)
        k->officers[i] = intern(t, officers[i], &oom);
    if (oom || map_put(&t->map, k) != 0) {
        task_unref(t, k);
        task_unalloc(t, k, size);
        return NULL;
    }
    if (t->head == NULL)
        t->head = k;
    t->tail = k;
    return k;
}

int rk__tasks_add(rk__tasks *t, const rk_event *ev, int64_t retention, bool amend)
{
    rk__task *k;

    if (ev->task_id == NULL)
        return 0;
    k = lookup(&t->map, ev->task_id);
    if (k != NULL && amend) {
        /* The amendment replaces the record: out of the table now, its
         * memory goes with its block when the FIFO reaches it. */
        map_del(&t->map, k);
        k->dead = 1;
        k = NULL;
    }
    if (k != NULL) {
        if (rk__task_expires(k) >= ev->ts)
            return 0;               /* first filing wins while it lives */
        /* An expired filing not dropped yet: the new one replaces it. */
        rk__tasks_expire(t, ev->ts);
        if (lookup(&t->map, ev->task_id) != NULL)
            return 0;               /* held back in the FIFO: keep the old */
    }
    k = task_add(t, ev->task_id, ev->unit_id, ev->enterprise_id, ev->officers,
                 ev->n_officers, ev->ts, ev->planned_at,
                 sat_add(ev->ts > ev->planned_at ? ev->ts : ev->planned_at, retention),
                 ev->ref);
    return k != NULL ? 0 : -1;
}

const rk__task *rk__tasks_get(const rk__tasks *t, const char *task_id, int64_t now)
{
    const rk__task *k = task_id ? lookup(&t->map, task_id) : NULL;
    return k != NULL && rk__task_expires(k) >= now ? k : NULL;
}

void rk__tasks_enrich(const rk__tasks *t, rk_event *ev, int64_t now)
{
    const rk__task *k;

    if (ev->type == RK_EV_INSPECTION_FILED)
        return;
    k = rk__tasks_get(t, ev->task_id, now);
    if (k == NULL)
        return;
    ev->flags |= RK_EVF_FILING_KNOWN;
    ev->filing_ts = k->ts;
    ev->filing_planned_at = rk__task_planned_at(k);
    ev->filing_enterprise_id = k->enterprise_id;
    ev->filing_ref = rk__task_ref(k);
    if (ev->unit_id == NULL && k->unit_id != NULL) {
        ev->unit_id = k->unit_id;
        ev->flags |= RK_EVF_UNIT_FROM_FILING;
    }
    if (ev->n_officers == 0 && k->n_officers > 0) {
        ev->officers = k->officers;
        ev->n_officers = k->n_officers;
        ev->flags |= RK_EVF_OFFICERS_FROM_FILING;
    }
}

void rk__tasks_expire(rk__tasks *t, int64_t now)
{
    while (t->head != NULL && rk__task_expires(t->head) < now) {
        rk__task *k = t->head;
        task_block *b = block_of(k);
        t->head = (rk__task *)(uintptr_t)rk__tasks_next(t, k);
        if (t->head == NULL)
            t->tail = NULL;
        if (!k->dead)
            map_del(&t->map, k);
        task_unref(t, k);
        if (--b->live == 0)
            free(b);
    }
}

void rk__tasks_snapshot(const rk__tasks *t, rk_buf *out)
{
    const rk__task *k;
    uint32_t i;

    rk_buf_put_u32(out, TASKS_SNAPSHOT_VERSION);
    rk_buf_put_u64(out, t->map.count);
    for (k = t->head; k != NULL; k = rk__tasks_next(t, k)) {
        if (k->dead)
            continue;               /* replaced by an amendment */
        rk_buf_put_str(out, rk__task_id(k));
        rk_buf_put_str(out, k->unit_id);
        rk_buf_put_str(out, k->enterprise_id);
        rk_buf_put_u32(out, k->n_officers);
        for (i = 0; i < k->n_officers; i++)
            rk_buf_put_str(out, k->officers[i]);
        rk_buf_put_i64(out, k->ts);
        rk_buf_put_i64(out, rk__task_planned_at(k));
        rk_buf_put_i64(out, rk__task_expires(k));
        rk_buf_put_ref(out, rk__task_ref(k));
    }
}

int rk__tasks_restore(rk__tasks *t, const void *data, size_t len)
{
    rk_rd rd;
    rk__tasks tmp;
    uint64_t n, i;

    rk_rd_init(&rd, data, len);
    if (rk_rd_u32(&rd) != TASKS_SNAPSHOT_VERSION)
        return -1;
    rk__tasks_init(&tmp);
    n = rk_rd_u64(&rd);
    for (i = 0; i < n && !rd.err; i++) {
        char *id = rk_rd_str(&rd, 4096), *unit = rk_rd_str(&rd, 4096);
        char *ent = rk_rd_str(&rd, 4096);
        uint32_t no = rk_rd_u32(&rd), j;
        char **offs = NULL;
        rk__task *k = NULL;
        int64_t ts, planned, expires;
        rk_entry_ref ref;

        if (!rd.err && (no > 100000 || no > (size_t)(rd.end - rd.p) / 4))
            rd.err = 1;
        if (!rd.err && no > 0 && (offs = calloc(no, sizeof(char *))) == NULL)
            rd.err = 1;
        for (j = 0; j < no && !rd.err; j++) {
            offs[j] = rk_rd_str(&rd, 4096);
            if (offs[j] == NULL)
                rd.err = 1;
        }
        ts = rk_rd_ts(&rd);
        planned = rk_rd_ts(&rd);
        expires = rk_rd_time(&rd);
        ref = rk_rd_ref(&rd);
        if (!rd.err && id != NULL)
            k = task_add(&tmp, id, unit, ent, (const char *const *)offs, no,
                         ts, planned, expires, ref);
        if (offs)
            for (j = 0; j < no; j++)
                free(offs[j]);
        free(offs);
        free(id);
        free(unit);
        free(ent);
        if (k == NULL)
            rd.err = 1;             /* out of memory or a duplicate id */
    }
    if (rd.err || rd.p != rd.end) {
        rk__tasks_free(&tmp);
        return -1;
    }
    rk__tasks_free(t);
    *t = tmp;
    return 0;
}
