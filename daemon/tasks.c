/* tasks.c - the filings seen so far, so that every detector gets the same
 * enrichment.
 *
 * CONTRACT §1: when a rating, scan or case lacks unit_id or officers,
 * detectors take them from the filing of the same task_id when one is
 * known. The engine does this once, here, before any detector sees the
 * event, and marks what it filled in (RK_EVF_*).
 *
 * A filing is kept until the watermark passes max(filed ts, planned_at) +
 * state.task_retention (default 30 days); events about an older task are
 * then not enriched. Filings are kept in a FIFO in filing order; expiry
 * walks from the head and stops at the first filing not yet expired, so a
 * filing with a far planned_at can hold back later ones for at most the
 * spread of planned_at, never forever.
 *
 * Memory: a filing is its record (with its officers) plus its map entry,
 * which holds the task id once. Unit, enterprise and officer ids repeat
 * across filings, so they are interned: one copy each, reference-counted,
 * whatever the number of filings naming them. Records are freed in the
 * order they were made (the FIFO), so they are not malloc'ed one by one
 * but cut from 16 KiB blocks aligned to their size: a record costs its
 * size rounded to 8 bytes (no malloc header, no size class), the block of
 * a record is its address rounded down, and a block is freed when its last
 * record is. A record larger than a block gets a block of its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

#define TASKS_SNAPSHOT_VERSION 1u

/* ===================================================================
 * Record blocks
 * =================================================================== */

#define TASK_BLOCK ((size_t)16 * 1024)  /* size and alignment of a block */

typedef struct task_block {
    size_t used;                    /* bytes handed out, header included */
    size_t cap;                     /* bytes in the block */
    size_t live;                    /* records not yet freed */
    size_t pad;                     /* keeps records 16-byte aligned */
} task_block;

static task_block *block_of(const rk__task *k)
{
    return (task_block *)((uintptr_t)k & ~(uintptr_t)(TASK_BLOCK - 1));
}

/* A zeroed record of `size` bytes, cut from the block of the newest record
 * (t->tail) or from a new block. Returns NULL when out of memory. */
static rk__task *task_alloc(rk_tasks *t, size_t size)
{
    task_block *b = t->tail != NULL ? block_of(t->tail) : NULL;
    rk__task *k;

    size = (size + 7) & ~(size_t)7;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = TASK_BLOCK;
        void *p;
        if (size > TASK_BLOCK - sizeof(task_block)) {
            if (size > SIZE_MAX / 2)
                return NULL;
            cap = sizeof(task_block) + size;
        }
        if (posix_memalign(&p, TASK_BLOCK, cap) != 0)
            return NULL;
        b = p;
        b->used = sizeof(task_block);
        b->cap = cap;
        b->live = 0;
    }
    k = (rk__task *)(void *)((char *)b + b->used);
    b->used += size;
    b->live++;
    memset(k, 0, size);
    return k;
}

/* Give a record back; its block is freed with its last record. */
static void task_release(rk__task *k)
{
    task_block *b = block_of(k);
    if (--b->live == 0)
        free(b);
}

/* ===================================================================
 * Filings
 * =================================================================== */

void rk__tasks_init(rk_tasks *t)
{
    memset(t, 0, sizeof(*t));
    rk_map_init(&t->map);
    rk_map_init(&t->strings);
}

/* Return the interned copy of s (taking a reference), or NULL when out of
 * memory. NULL stays NULL. */
static const char *intern(rk_tasks *t, const char *s, int *oom)
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

static void release(rk_tasks *t, const char *s)
{
    rk_map_entry *e;
    if (s == NULL || (e = rk_map_find(&t->strings, s)) == NULL)
        return;
    e->value = (void *)((uintptr_t)e->value - 1);
    if ((uintptr_t)e->value == 0)
        rk_map_del(&t->strings, s);
}

/* Drop a record's references; the caller removes it from the map. */
static void task_free(rk_tasks *t, rk__task *k)
{
    uint32_t i;
    if (k == NULL)
        return;
    release(t, k->unit_id);
    release(t, k->enterprise_id);
    for (i = 0; i < k->n_officers; i++)
        release(t, k->officers[i]);
    task_release(k);
}

void rk__tasks_free(rk_tasks *t)
{
    rk__task *k = t->head, *next;
    for (; k != NULL; k = next) {
        next = k->next;
        task_release(k);
    }
    rk_map_clear(&t->map, NULL);
    rk_map_clear(&t->strings, NULL);
    rk__tasks_init(t);
}

/* Create, register and queue a filing record. Returns it, or NULL when out
 * of memory or the task id is already recorded (nothing is left behind). */
static rk__task *task_add(rk_tasks *t, const char *task_id, const char *unit_id,
                          const char *enterprise_id, const char *const *officers,
                          size_t n_officers)
{
    rk__task *k;
    rk_map_entry *e;
    size_t i;
    int oom = 0;

    if (n_officers > UINT32_MAX || rk_map_get(&t->map, task_id) != NULL)
        return NULL;
    if (n_officers > (SIZE_MAX - sizeof(*k)) / sizeof(k->officers[0]))
        return NULL;
    k = task_alloc(t, sizeof(*k) + n_officers * sizeof(k->officers[0]));
    if (k == NULL)
        return NULL;
    k->unit_id = intern(t, unit_id, &oom);
    k->enterprise_id = intern(t, enterprise_id, &oom);
    for (i = 0; i < n_officers; i++) {
        k->officers[i] = intern(t, officers[i], &oom);
        k->n_officers++;
    }
    e = oom ? NULL : rk_map_put(&t->map, task_id, k, NULL);
    if (e == NULL) {
        task_free(t, k);
        return NULL;
    }
    k->task_id = e->key;
    if (t->tail) t->tail->next = k;
    else t->head = k;
    t->tail = k;
    return k;
}

int rk__tasks_add(rk_tasks *t, const rk_event *ev, int64_t retention)
{
    rk__task *k;

    if (ev->task_id == NULL)
        return 0;
    k = rk_map_get(&t->map, ev->task_id);
    if (k != NULL) {
        if (k->expires >= ev->ts)
            return 0;               /* first filing wins while it lives */
        /* An expired filing not dropped yet: the new one replaces it. */
        rk__tasks_expire(t, ev->ts);
        if (rk_map_get(&t->map, ev->task_id) != NULL)
            return 0;               /* held back in the FIFO: keep the old */
    }
    k = task_add(t, ev->task_id, ev->unit_id, ev->enterprise_id, ev->officers,
                 ev->n_officers);
    if (k == NULL)
        return -1;
    k->ts = ev->ts;
    k->planned_at = ev->planned_at;
    k->expires = (ev->ts > ev->planned_at ? ev->ts : ev->planned_at) + retention;
    k->ref = ev->ref;
    return 0;
}

const rk__task *rk__tasks_get(const rk_tasks *t, const char *task_id, int64_t now)
{
    const rk__task *k = task_id ? rk_map_get(&t->map, task_id) : NULL;
    return k != NULL && k->expires >= now ? k : NULL;
}

void rk__tasks_enrich(const rk_tasks *t, rk_event *ev, int64_t now)
{
    const rk__task *k;

    if (ev->type == RK_EV_INSPECTION_FILED)
        return;
    k = rk__tasks_get(t, ev->task_id, now);
    if (k == NULL)
        return;
    ev->flags |= RK_EVF_FILING_KNOWN;
    ev->filing_ts = k->ts;
    ev->filing_planned_at = k->planned_at;
    ev->filing_enterprise_id = k->enterprise_id;
    ev->filing_ref = k->ref;
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

void rk__tasks_expire(rk_tasks *t, int64_t now)
{
    while (t->head != NULL && t->head->expires < now) {
        rk__task *k = t->head;
        t->head = k->next;
        if (t->head == NULL)
            t->tail = NULL;
        rk_map_del(&t->map, k->task_id);
        task_free(t, k);
    }
}

void rk__tasks_snapshot(const rk_tasks *t, rk_buf *out)
{
    const rk__task *k;
    uint32_t i;

    rk_buf_put_u32(out, TASKS_SNAPSHOT_VERSION);
    rk_buf_put_u64(out, t->map.count);
    for (k = t->head; k != NULL; k = k->next) {
        rk_buf_put_str(out, k->task_id);
        rk_buf_put_str(out, k->unit_id);
        rk_buf_put_str(out, k->enterprise_id);
        rk_buf_put_u32(out, k->n_officers);
        for (i = 0; i < k->n_officers; i++)
            rk_buf_put_str(out, k->officers[i]);
        rk_buf_put_i64(out, k->ts);
        rk_buf_put_i64(out, k->planned_at);
        rk_buf_put_i64(out, k->expires);
        rk_buf_put_ref(out, k->ref);
    }
}

int rk__tasks_restore(rk_tasks *t, const void *data, size_t len)
{
    rk_rd rd;
    rk_tasks tmp;
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

        if (!rd.err && (no > 100000 || no > (size_t)(rd.end - rd.p) / 4))
            rd.err = 1;
        if (!rd.err && no > 0 && (offs = calloc(no, sizeof(char *))) == NULL)
            rd.err = 1;
        for (j = 0; j < no && !rd.err; j++) {
            offs[j] = rk_rd_str(&rd, 4096);
            if (offs[j] == NULL)
                rd.err = 1;
        }
        if (!rd.err && id != NULL)
            k = task_add(&tmp, id, unit, ent, (const char *const *)offs, no);
        if (k != NULL) {
            k->ts = rk_rd_i64(&rd);
            k->planned_at = rk_rd_i64(&rd);
            k->expires = rk_rd_i64(&rd);
            k->ref = rk_rd_ref(&rd);
        }
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
