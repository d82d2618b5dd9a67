/* tests/fuzz/fuzz-restore.c - libFuzzer target for checkpoint restore.
 *
 * A checkpoint comes back from Redis, so it may be truncated or corrupt.
 * The first input byte picks what reads the rest (modulo the number of
 * targets):
 *
 *   0  rk__clock_restore, with a det_index callback that knows the
 *      built-in detector names below (other names drop their timers);
 *   1  rk__tasks_restore;
 *   2+ the restore() of each built-in detector, the four original ones
 *      first, then the five of the supervision practice;
 *   then the natural keys (rk__dedupe_restore), the open alerts and their
 *      alerts.open_ttl closes (rk__ostore_restore, either format) and the
 *      indicators (indicators_snap.c, either format);
 *   then each built-in detector again, bound to a host that keeps its open
 *      alerts: the rest is u64 n, n bytes of the open alerts' checkpoint
 *      section (openstore.c), then the detector's snapshot.
 *
 * A refused blob must leave nothing behind (LeakSanitizer checks). An
 * accepted one must leave a usable state: it is snapshotted again and that
 * snapshot must restore (and, for the clock and the tasks, give the same
 * bytes once more); then the state is used. The clock pops its due timers,
 * which must come out in (deadline, arming order); the tasks enrich events
 * and expire. A detector, created with "{}" through the minimal host below,
 * gets timers for the ids it may hold, a few events of every type and
 * watermark moves up to the far future, then tracked_keys() and destroy().
 * Alerts it emits are checked (rule, summary, every evidence entry read).
 *
 * A bound detector's host is the daemon's own (host.c's emit, hostopen.c's
 * rk__host_open_ops) on an engine of that one detector, so the detector
 * files its alerts in a real store (openstore.c), reads them back, ends,
 * forgets and lets them go. The detector's snapshot is restored first,
 * then the store's section, as the daemon reads its checkpoint; a refused
 * store leaves it empty beside the restored detector (the daemon goes on
 * so too). Records of the other built-ins may come with it. The store must
 * stay consistent after the restore, after every event and watermark move
 * and after alerts.open_ttl closes its records (in (ts, detector, id)
 * order), and its snapshot must restore. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"
#include "pipeline/engine_int.h"
#include "pipeline/indicators.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const rk_detector_ops *const dets[] = {
    &rk__det_unfiled_inspection,
    &rk__det_bad_rating,
    &rk__det_fine_growth,
    &rk__det_complaint_cluster,
    &rk__det_inspection_frequency,
    &rk__det_discretion,
    &rk__det_review_correction,
    &rk__det_violation_hotspot,
    &rk__det_officer_credential,
};
#define N_DETS (sizeof(dets) / sizeof(dets[0]))
#define N_TARGETS (5 + 2 * N_DETS)
#define FIRST_BOUND (5 + N_DETS)        /* the bound detectors' targets */

/* 2025-03-01T01:30:00Z: the time mkseeds.c builds its snapshots around. */
#define T0 INT64_C(1740792600000)

/* Abort with a message naming the broken promise `what`. */
static void broken(const char *what)
{
    fprintf(stderr, "fuzz-restore: broken invariant: %s\n", what);
    abort();
}

/* ===================================================================
 * Clock
 * =================================================================== */

static int det_index(const char *name, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < N_DETS; i++)
        if (strcmp(name, dets[i]->name) == 0)
            return (int)i;
    return -1;
}

static const char *det_name(uint32_t det, void *ud)
{
    (void)ud;
    if (det >= N_DETS)
        broken("clock: timer of an unknown detector index");
    return dets[det]->name;
}

static void fuzz_clock(const uint8_t *data, size_t size)
{
    rk__clock c, c2;
    rk_buf b1 = {0}, b2 = {0};
    rk__timer t;
    int64_t last_deadline = INT64_MIN;
    uint64_t last_seq = 0;
    int first = 1;

    rk__clock_init(&c);
    if (rk__clock_restore(&c, data, size, det_index, NULL) != 0) {
        if (c.ntimers != 0 || c.watermark != INT64_MIN)
            broken("clock: refused restore changed the clock");
        rk__clock_free(&c);
        return;
    }
    rk__clock_snapshot(&c, &b1, det_name, NULL);
    rk__clock_init(&c2);
    if (b1.oom || rk__clock_restore(&c2, b1.data, b1.len, det_index, NULL) != 0)
        broken("clock: snapshot of a restored clock does not restore");
    rk__clock_snapshot(&c2, &b2, det_name, NULL);
    if (b2.len != b1.len || memcmp(b1.data, b2.data, b1.len) != 0)
        broken("clock: snapshot -> restore -> snapshot differs");
    rk_buf_free(&b1);
    rk_buf_free(&b2);
    rk__clock_free(&c2);

    /* Use it: observe, advance, pop every due timer in order. */
    rk__clock_observe(&c, RK_STREAM_SCAN, T0);
    rk__clock_observe(&c, RK_STREAM_CASE, T0 + 1);
    (void)rk__clock_timer_add(&c, T0, 0, "n:t1", 7);
    const int64_t steps[] = {T0, T0 + RK_DAY, INT64_MAX};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        (void)rk__clock_advance(&c, steps[i]);
        while (rk__clock_pop_due(&c, &t) == 1) {
            if (t.deadline >= c.watermark || t.key == NULL || t.det >= N_DETS)
                broken("clock: popped a timer that is not due or not valid");
            if (!first && (t.deadline < last_deadline ||
                           (t.deadline == last_deadline && t.seq < last_seq)))
                broken("clock: timers out of order");
            first = 0;
            last_deadline = t.deadline;
            last_seq = t.seq;
            free(t.key);
        }
    }
    rk__clock_free(&c);
}

/* ===================================================================
 * Tasks
 * =================================================================== */

static void fuzz_tasks(const uint8_t *data, size_t size)
{
    rk__tasks t, t2;
    rk_buf b1 = {0}, b2 = {0};
    const rk__task *k;
    int n = 0;

    rk__tasks_init(&t);
    if (rk__tasks_restore(&t, data, size) != 0) {
        if (t.map.count != 0 || t.head != NULL)
            broken("tasks: refused restore left tasks");
        rk__tasks_free(&t);
        return;
    }
    rk__tasks_snapshot(&t, &b1);
    rk__tasks_init(&t2);
    if (b1.oom || rk__tasks_restore(&t2, b1.data, b1.len) != 0)
        broken("tasks: snapshot of restored tasks does not restore");
    rk__tasks_snapshot(&t2, &b2);
    if (b2.len != b1.len || memcmp(b1.data, b2.data, b1.len) != 0)
        broken("tasks: snapshot -> restore -> snapshot differs");
    rk_buf_free(&b1);
    rk_buf_free(&b2);
    rk__tasks_free(&t2);

    /* Enrich an event about each of the first few tasks and read it all. */
    for (k = t.head; k != NULL && n < 8; k = rk__tasks_next(&t, k), n++) {
        rk_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_RATED;
        ev.task_id = rk__task_id(k);
        ev.ts = T0;
        rk__tasks_enrich(&t, &ev, INT64_MIN);  /* any expiry: it must be found */
        if (!(ev.flags & RK_EVF_FILING_KNOWN))
            broken("tasks: a restored task is not found");
        if (ev.unit_id != NULL) (void)strlen(ev.unit_id);
        if (ev.filing_enterprise_id != NULL) (void)strlen(ev.filing_enterprise_id);
        for (size_t i = 0; i < ev.n_officers; i++)
            (void)strlen(ev.officers[i]);
    }
    rk__tasks_expire(&t, T0);
    rk__tasks_expire(&t, INT64_MAX);
    if (t.map.count != 0 && t.head == NULL)
        broken("tasks: map and list disagree");
    rk__tasks_free(&t);
}

/* ===================================================================
 * Detectors, through a minimal host
 * =================================================================== */

typedef struct fz_timer {
    int64_t deadline;
    uint64_t arg;
    char *key;
} fz_timer;

/* A bound detector's engine: a registry of that one detector (index 0),
 * its open alerts (e->open), its cooldowns and an output checking what it
 * is asked to write. */
typedef struct fz_engine {
    rk__engine *e;
    rk__det d;
    rk__det *dets[1];
} fz_engine;

typedef struct fz_host {                /* what this file's rk_host * points to */
    struct rk_host hd;                  /* first: open NULL, no open ops
                                           (internal.h rk__open_ops_of): the
                                           detector keeps its open alerts
                                           itself; or bound: the daemon's
                                           (hostopen.c) on engine hd.eng */
    const rk_detector_ops *ops;
    void *self;
    int64_t now;
    fz_timer *timers;                   /* sorted by deadline, FIFO on ties */
    size_t ntimers, cap;
    size_t alerts;
    fz_engine *b;                       /* bound: its engine; else NULL */
} fz_host;

#define FZ(h) ((fz_host *)(void *)(h))

#define FZ_MAX_TIMERS 4096
#define FZ_OPEN_TTL (30 * RK_DAY)       /* alerts.open_ttl of a bound host */

static void bound_roundtrip(fz_host *h);

static int fz_emit(rk_host *hh, const rk_alert *a)
{
    fz_host *h = FZ(hh);
    if (a == NULL || a->rule == NULL)
        broken("detector: alert without rule");
    (void)strlen(a->rule);
    if (a->status != RK_ALERT_FIRING) {
        /* A notice (ABI minor 4): a reason, no summary of its own. */
        if (a->status != RK_ALERT_RESOLVED && a->status != RK_ALERT_RETRACTED)
            broken("detector: notice of an unknown status");
        if (a->reason == NULL)
            broken("detector: notice without a reason");
        (void)strlen(a->reason);
    } else {
        if (a->summary == NULL)
            broken("detector: alert without a summary");
        (void)strlen(a->summary);
    }
    if (a->n_evidence > 0 && a->evidence == NULL)
        broken("detector: evidence NULL with n_evidence > 0");
    for (size_t i = 0; i < a->n_evidence; i++)
        /* what a ref read back may carry (a built-in may run where one
         * engine reads several partitions); the daemon names a stream it
         * does not read "?" */
        if (a->evidence[i].stream >= RK_STREAM_REF_LIMIT)
            broken("detector: evidence of an unknown stream");
    const char *f[] = {a->subject.unit_id, a->subject.officer_id,
                       a->subject.enterprise_id, a->subject.task_id,
                       a->subject.case_id, a->subject.region};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i] != NULL)
            (void)strlen(f[i]);
    if ((int)a->severity < RK_SEV_INFO || a->severity > RK_SEV_CRITICAL)
        broken("detector: severity");
    if (a->cooldown < 0)
        broken("detector: negative cooldown");
    h->alerts++;
    /* bound: the daemon's emit (cooldown, the store's record) */
    return h->b != NULL ? h->b->e->api.emit(hh, a) : 1;
}

static int fz_timer_set(rk_host *hh, int64_t deadline, const char *key, uint64_t arg)
{
    fz_host *h = FZ(hh);
    size_t i;
    char *k;

    if (h->ntimers >= FZ_MAX_TIMERS)
        return -1;
    if (h->ntimers == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 16;
        fz_timer *t = realloc(h->timers, ncap * sizeof(*t));
        if (t == NULL)
            return -1;
        h->timers = t;
        h->cap = ncap;
    }
    if ((k = strdup(key != NULL ? key : "")) == NULL)
        return -1;
    i = h->ntimers;
    while (i > 0 && h->timers[i - 1].deadline > deadline) {
        h->timers[i] = h->timers[i - 1];
        i--;
    }
    h->timers[i].deadline = deadline;
    h->timers[i].arg = arg;
    h->timers[i].key = k;
    h->ntimers++;
    return 0;
}

static int64_t fz_now(rk_host *h) { return FZ(h)->now; }

static void fz_log(rk_host *h, rk_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    (void)h; (void)level;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);   /* format it: catches bad args */
    va_end(ap);
}

static const char *fz_stream_name(rk_host *h, unsigned s)
{
    (void)h;
    return s == RK_STREAM_SCAN ? "enforce:scan" : "enforce:case";
}

static int64_t fz_keep(rk_host *h) { (void)h; return 3600000; }
static const char *fz_language(rk_host *h) { (void)h; return "zh-CN"; }

/* Reference lists of one row each about the ids fz_use feeds: e1 may not
 * be inspected at all, item i1 is exempt from penalty with a benchmark of
 * 0..500, officer o1 holds a credential (o2 none). */
static int fz_whitelist(rk_host *h, const char *ent, long long *allowance)
{
    (void)h;
    *allowance = 0;
    return strcmp(ent, "e1") == 0;
}

static int fz_benchmark(rk_host *h, const char *item, const char *level, double *lo, double *hi)
{
    (void)h; (void)level;
    *lo = 0;
    *hi = 500;
    return strcmp(item, "i1") == 0;
}

static int fz_exempt(rk_host *h, const char *item)
{
    (void)h;
    return strcmp(item, "i1") == 0 ? RK_EXEMPT_KIND_NO_PENALTY : RK_EXEMPT_KIND_NONE;
}

static int fz_credential(rk_host *h, const char *officer, int64_t ts)
{
    (void)h; (void)ts;
    return strcmp(officer, "o1") == 0 ? RK_CREDENTIAL_VALID : RK_CREDENTIAL_INVALID;
}

static int fz_tz(rk_host *h) { (void)h; return -5 * 3600; }

static const rk_host_api fz_api = {
    RK_ABI_MAJOR, RK_ABI_MINOR, fz_emit, fz_timer_set, fz_now, fz_log,
    fz_stream_name, NULL, fz_language,      /* no names */
    fz_whitelist, fz_benchmark, fz_exempt, fz_credential,
    fz_keep, fz_tz
};

/* ===================================================================
 * A bound detector's host: the daemon's open alerts (openstore.c)
 * =================================================================== */

static void check_id(const char *id)
{
    if (id == NULL || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
        broken("bound: an alert id that is not 32 hex digits");
}

static int fz_out_alert(rk__engine *e, const char *id, const char *legacy, const char *det,
                        const rk_alert *a, rk_severity sev, int64_t now_wall)
{
    (void)e; (void)legacy; (void)a; (void)sev; (void)now_wall;
    check_id(id);
    (void)strlen(det);
    return 1;
}

/* A notice the detector emitted (host.c) or asked its host for (hostopen.c
 * end): a status it may have, a rule, a reason, evidence that can be read. */
static int fz_out_notice(rk__engine *e, const char *id, const char *det, const rk_alert *a,
                         const char *status, int64_t now_wall)
{
    (void)e; (void)now_wall;
    check_id(id);
    (void)strlen(det);
    if (strcmp(status, "resolved") != 0 && strcmp(status, "retracted") != 0)
        broken("bound: a notice of a status a detector does not give");
    if (a->rule == NULL || a->reason == NULL)
        broken("bound: a notice without a rule or a reason");
    (void)strlen(a->rule);
    (void)strlen(a->reason);
    if (a->n_evidence > 0 && a->evidence == NULL)
        broken("bound: notice evidence NULL with n_evidence > 0");
    for (size_t i = 0; i < a->n_evidence; i++)
        if (a->evidence[i].stream >= RK_STREAM_REF_LIMIT)
            broken("bound: notice evidence of an unknown stream");
    if (a->subject.unit_id != NULL)
        (void)strlen(a->subject.unit_id);
    return 1;
}

static const rk__output fz_out = {fz_out_alert, fz_out_notice, NULL, NULL};

/* The store of a bound host numbers its detector 0 and the other built-ins
 * 1.. in dets[] order: a section may hold records of them all. */
static int bound_det_index(const char *name, void *ud)
{
    const fz_host *h = ud;
    int i = det_index(name, NULL), own = det_index(h->ops->name, NULL);
    if (i < 0 || i == own)
        return i < 0 ? -1 : 0;
    return i < own ? i + 1 : i;
}

static const char *bound_det_name(uint32_t det, void *ud)
{
    const fz_host *h = ud;
    uint32_t own = (uint32_t)det_index(h->ops->name, NULL);
    if (det == 0)
        return h->ops->name;
    if (det >= N_DETS)
        broken("store: a record of an unknown detector index");
    return dets[det - 1 < own ? det - 1 : det]->name;
}

static rk__ostore *store_of(fz_host *h) { return &h->b->e->open; }

/* (ts, detector, id) order of two live records. */
static int oa_order(const void *a, const void *b)
{
    const rk__oa *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->det != y->det)
        return x->det < y->det ? -1 : 1;
    return memcmp(x->id, y->id, sizeof(x->id));
}

/* The store's promises: `dead` counts the freed slots; the index holds
 * each live slot once and no freed one, finds every live record by its
 * (detector, key hash), and by its id while it is filed under none; the
 * heap holds every live slot, none under a later live one; the rules and
 * units records name exist, each unit counted by the live records naming
 * it and found by its name. */
static void store_check(const rk__ostore *s)
{
    uint32_t k, live = 0, dead = 0, inidx = 0, inheap = 0, nunits = 0;
    uint32_t *refs = s->nunits > 0 ? calloc(s->nunits, sizeof(*refs)) : NULL;

    if (s->nunits > 0 && refs == NULL)
        broken("out of memory");
    for (k = 0; k < s->n; k++) {
        const rk__oa *r = &s->v[k];
        uint32_t it = 0;
        int slot;
        char id[33];
        if (r->det == RK__OSTORE_FREE) {
            dead++;
            continue;
        }
        live++;
        if (r->det >= N_DETS)
            broken("store: a record of an unknown detector");
        if (r->rule >= s->nrules && r->rule != RK__OSTORE_NO_RULE)
            broken("store: a record of an unknown rule");
        if (r->unit != RK__OSTORE_NO_UNIT) {
            if (r->unit >= s->nunits || s->uoff[r->unit] == UINT32_MAX)
                broken("store: a record names a unit given back");
            refs[r->unit]++;
        }
        while ((slot = rk__ostore_next_key(s, r->det, r->keyhash, &it)) >= 0 &&
               slot != (int)k)
            ;
        if (slot != (int)k)
            broken("store: a record is not found by its key");
        rk__alert_id_unpack(r->id, id);
        if (memcmp(&r->keyhash, r->id, 8) == 0 && rk__ostore_find(s, r->ts, r->det, id) != (int)k)
            broken("store: a record filed under no key is not found by its id");
    }
    if (dead != s->dead || live != rk__ostore_count(s))
        broken("store: the count of live and freed records is wrong");
    for (k = 0; k < s->capidx; k++)
        if (s->idx[k] != UINT32_MAX) {
            inidx++;
            if (s->idx[k] >= s->n || s->v[s->idx[k]].det == RK__OSTORE_FREE)
                broken("store: the index holds a freed slot");
        }
    if (inidx != live)
        broken("store: the index does not hold each live record once");
    for (k = 0; k < s->nheap; k++) {
        if (s->heap[k] >= s->n)
            broken("store: the heap holds a slot past the records");
        if (s->v[s->heap[k]].det != RK__OSTORE_FREE)
            inheap++;
    }
    if (inheap != live)
        broken("store: the heap does not hold each live record once");
    for (k = 1; k < s->nheap; k++) {   /* its nearest live ancestor is earlier */
        const rk__oa *c = &s->v[s->heap[k]];
        uint32_t up = k;
        if (c->det == RK__OSTORE_FREE)
            continue;
        do
            up = (up - 1) / 2;
        while (up > 0 && s->v[s->heap[up]].det == RK__OSTORE_FREE);
        if (s->v[s->heap[up]].det != RK__OSTORE_FREE && oa_order(&s->v[s->heap[up]], c) > 0)
            broken("store: the heap holds a record under a later one");
    }
    for (k = 0; k < s->nunits; k++) {
        if (s->uoff[k] == UINT32_MAX)
            continue;
        nunits++;
        if (s->uoff[k] >= s->ulen)
            broken("store: a unit lies past its arena");
        if (refs[k] != s->urefs[k])
            broken("store: a unit's count is not the records naming it");
        /* found by its name: the id it has (nothing added) */
        if (rk__ostore_unit((rk__ostore *)(uintptr_t)s, rk__ostore_unit_name(s, k)) != (int)k)
            broken("store: a unit is not found by its name");
    }
    for (k = 0; k < s->capuidx; k++)
        if (s->uidx[k] != 0 && (s->uidx[k] > s->nunits || s->uoff[s->uidx[k] - 1] == UINT32_MAX))
            broken("store: the units' table holds an id given back");
    if (nunits != s->nulive)
        broken("store: the units' count and table differ");
    free(refs);
}

/* alerts.open_ttl closes what is due (as apply.c, after the timers): in
 * (ts, detector, id) order, each due (two records of one alert, see
 * store_dups, one after the other). */
static void bound_close(fz_host *h, int64_t now)
{
    rk__ostore *s = store_of(h);
    rk__oa oa, last;
    int first = 1;
    while (rk__ostore_pop_due(s, now, FZ_OPEN_TTL, &oa) == 1) {
        if (oa.det >= N_DETS || oa.ts > INT64_MAX - FZ_OPEN_TTL || oa.ts + FZ_OPEN_TTL >= now)
            broken("store: closed a record that is not due or not valid");
        if (!first && (oa.ts < last.ts ||
                       (oa.ts == last.ts && (oa.det < last.det ||
                        (oa.det == last.det && memcmp(oa.id, last.id, 16) < 0)))))
            broken("store: records closed out of (ts, detector, id) order");
        last = oa;
        first = 0;
    }
    store_check(s);
}

/* Move the watermark to now (never back), firing due timers first. */
static void fz_advance(fz_host *h, int64_t now)
{
    if (now <= h->now)
        return;
    h->now = now;
    while (h->ntimers > 0 && h->timers[0].deadline < now) {
        fz_timer t = h->timers[0];
        memmove(h->timers, h->timers + 1, (h->ntimers - 1) * sizeof(*h->timers));
        h->ntimers--;
        if (h->ops->on_timer != NULL)
            (void)h->ops->on_timer(h->self, t.deadline, t.key, t.arg);
        free(t.key);
    }
    if (h->b != NULL)
        bound_close(h, now);
    if (h->ops->on_watermark != NULL)
        h->ops->on_watermark(h->self, now);
}

static void fz_event(fz_host *h, rk_event *ev, uint32_t seq)
{
    ev->ref.ms = (uint64_t)(ev->ts > 0 ? ev->ts : 0);
    ev->ref.seq = seq;
    ev->ref.stream = (ev->type <= RK_EV_INSPECTION_REPORTED) ? RK_STREAM_SCAN
                                                            : RK_STREAM_CASE;
    ev->stream_key = fz_stream_name(NULL, ev->ref.stream);
    ev->entry_id = "0-0";
    ev->type_name = rk__event_type_name(ev->type);
    fz_advance(h, ev->ts);
    (void)h->ops->on_event(h->self, ev);
    if (h->b != NULL)
        store_check(store_of(h));
}

/* Feed a few events of every type about the ids mkseeds.c uses, at times
 * around T0 and at the edges of the range, with timers a restored clock
 * would have fired. */
static void fz_use(fz_host *h)
{
    static const char *const offs1[] = {"o1"};
    static const char *const offs2[] = {"o1", "o2"};
    static const char *const tkeys[] = {"n:t1", "s:t2", "c:c1", "s:t1", "n:t2", "c:c2", "x", "",
                                        "r:e1", "w:e1", "m:e1", "x:c1", "x:t1", "d:u1\037i1",
                                        "h:r1\037d1", "c:u1", "d:", "x:"};
    static const int64_t tdead[] = {T0, T0 + 10 * RK_MINUTE, T0 + RK_DAY, T0 - 1, 0};
    rk_event ev;
    uint32_t seq = 0;

    for (size_t i = 0; i < sizeof(tkeys) / sizeof(tkeys[0]); i++)
        for (size_t j = 0; j < sizeof(tdead) / sizeof(tdead[0]); j++)
            (void)fz_timer_set((rk_host *)(void *)h, tdead[j], tkeys[i], 0);

    for (int round = 0; round < 3; round++) {
        int64_t ts = round == 0 ? 0 : T0 + (round - 1) * RK_HOUR;

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_FILED; ev.ts = ts; ev.planned_at = ts + RK_HOUR;
        ev.task_id = "t1"; ev.unit_id = "u1"; ev.enterprise_id = "e1";
        ev.officers = offs2; ev.n_officers = 2; ev.region = "r1";
        ev.flags = round > 0 ? RK_EVF_AMENDED : 0;
        ev.kind = round == 2 ? RK_KIND_COMPLAINT : RK_KIND_PLAN;
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_FILED; ev.ts = ts; ev.planned_at = ts + 2 * RK_HOUR;
        ev.task_id = "t3"; ev.unit_id = "u2"; ev.enterprise_id = "e1";
        ev.officers = offs2 + 1; ev.n_officers = 1;
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_SCANNED; ev.ts = ts + 1;
        ev.task_id = "t2"; ev.enterprise_id = "e2"; ev.unit_id = "u2";
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_SCANNED; ev.ts = ts + 2;
        ev.task_id = "t1"; ev.enterprise_id = "e2";
        ev.officers = offs2; ev.n_officers = 2;
        ev.flags = RK_EVF_FILING_KNOWN; ev.filing_ts = ts;
        ev.filing_planned_at = ts + RK_HOUR; ev.filing_enterprise_id = "e1";
        fz_event(h, &ev, seq++);

        for (int score = 1; score <= 5; score += 4) {
            memset(&ev, 0, sizeof(ev));
            ev.type = RK_EV_INSPECTION_RATED; ev.ts = ts + 3;
            ev.task_id = "t1"; ev.enterprise_id = "e1"; ev.unit_id = "u1";
            ev.officers = offs1; ev.n_officers = 1; ev.score = score;
            fz_event(h, &ev, seq++);
        }

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_REPORTED; ev.ts = ts + 4;
        ev.enterprise_id = "e1"; ev.unit_id = "u1";
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_OPENED; ev.ts = ts + 5; ev.case_id = "c1";
        ev.unit_id = "u1"; ev.task_id = "t2"; ev.source = RK_SOURCE_INSPECTION;
        ev.region = "r1"; ev.domain = "d1"; ev.officers = offs2; ev.n_officers = 2;
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_DECIDED; ev.ts = ts + 6; ev.case_id = "c1";
        ev.unit_id = "u1"; ev.fine = 100000.0 * (round + 1); ev.confiscation = 5;
        ev.item_code = "i1"; ev.flags = round > 0 ? RK_EVF_AMENDED : 0;
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_DECIDED; ev.ts = ts + 6; ev.case_id = "c2";
        ev.unit_id = "u2"; ev.fine = round == 2 ? 0 : 100; ev.item_code = "i1";
        ev.flags = round > 0 ? RK_EVF_AMENDED : 0;
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_COMPLAINT; ev.ts = ts + 7; ev.complaint_id = "k1";
        ev.unit_id = "u1"; ev.officers = offs2; ev.n_officers = 2;
        ev.enterprise_id = "e1"; ev.region = "r1";
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_REVIEW; ev.ts = ts + 8; ev.case_id = "c1";
        ev.unit_id = "u1"; ev.outcome = RK_OUTCOME_REVOKED;
        fz_event(h, &ev, seq++);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CLOCK_TICK; ev.ts = ts + 9;
        fz_event(h, &ev, seq++);
    }
    if (h->b != NULL)
        bound_roundtrip(h);             /* what the live path left */
    fz_advance(h, T0 + 400 * RK_DAY);
    fz_advance(h, INT64_C(253402300799999));
    fz_advance(h, INT64_MAX);
}

static void fz_host_free(fz_host *h)
{
    if (h->self != NULL)
        h->ops->destroy(h->self);
    for (size_t i = 0; i < h->ntimers; i++)
        free(h->timers[i].key);
    free(h->timers);
    if (h->b != NULL) {
        rk__free_cooldowns(&h->b->d);
        rk_map_clear(&h->b->e->alert_counts, free);
        rk__ostore_free(&h->b->e->open);
        free(h->b->d.name);
        free(h->b->e);
        free(h->b);
    }
    memset(h, 0, sizeof(*h));
}

/* Create an instance of ops with config "{}" on host h; bound: with the
 * daemon's open ops on an engine of its own, its store empty. */
static void fz_create(fz_host *h, const rk_detector_ops *ops, int bound)
{
    char err[RK_ERRLEN];
    json_t *cfg = json_object();

    memset(h, 0, sizeof(*h));
    h->ops = ops;
    h->now = INT64_MIN;
    if (cfg == NULL)
        broken("out of memory");
    if (bound) {
        fz_engine *b = calloc(1, sizeof(*b));
        if (b == NULL || (b->e = calloc(1, sizeof(*b->e))) == NULL ||
            (b->d.name = strdup(ops->name)) == NULL)
            broken("out of memory");
        b->d.alert_name = b->d.name;
        b->d.ops = ops;
        b->d.severity = -1;
        b->dets[0] = &b->d;
        b->e->reg.dets = b->dets;
        b->e->reg.n = 1;
        b->e->out = &fz_out;
        rk_map_init(&b->e->alert_counts);
        rk__init_api(&b->e->api);
        rk__ostore_init(&b->e->open);
        h->hd.open = &rk__host_open_ops;
        h->hd.eng = b->e;
        h->hd.idx = 0;
        b->d.host = h->hd;
        h->b = b;
    }
    h->self = ops->create(&fz_api, (rk_host *)(void *)h, cfg, err, sizeof(err));
    json_decref(cfg);
    if (h->self == NULL)
        broken("detector: create({}) failed");
}

static void fuzz_detector(const rk_detector_ops *ops, const uint8_t *data, size_t size)
{
    char err[RK_ERRLEN];
    fz_host h, h2;
    rk_buf b = {0};

    fz_create(&h, ops, 0);
    err[0] = '\0';
    if (ops->restore(h.self, data, size, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            broken("detector: refused restore without a message");
        if (ops->tracked_keys != NULL && ops->tracked_keys(h.self) != 0)
            broken("detector: refused restore left state");
        fz_use(&h);                     /* the empty state is still usable */
        fz_host_free(&h);
        return;
    }
    /* The restored state's own snapshot must restore. */
    if (ops->snapshot(h.self, &b) != 0 || b.oom)
        broken("detector: snapshot of a restored state failed");
    fz_create(&h2, ops, 0);
    if (ops->restore(h2.self, b.data, b.len, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz-restore: %s: %s\n", ops->name, err);
        broken("detector: snapshot of a restored state does not restore");
    }
    rk_buf_free(&b);
    fz_host_free(&h2);

    if (ops->tracked_keys != NULL)
        (void)ops->tracked_keys(h.self);
    fz_use(&h);
    if (ops->tracked_keys != NULL)
        (void)ops->tracked_keys(h.self);
    if (ops->snapshot(h.self, &b) != 0 || b.oom)
        broken("detector: snapshot after use failed");
    rk_buf_free(&b);
    fz_host_free(&h);
}

/* How many live records of s are a second record of one alert (ts,
 * detector, id). An add finds an open alert by its id only while it is
 * filed under no key, so an alert written again while a record of it is
 * filed under a key its detector does not use (a corrupt checkpoint) gets
 * a second record; a restore keeps one. */
static size_t store_dups(const rk__ostore *s)
{
    rk__oa *v = rk__ostore_count(s) > 0 ? malloc(rk__ostore_count(s) * sizeof(*v)) : NULL;
    size_t n = 0, d = 0, k;
    if (rk__ostore_count(s) > 0 && v == NULL)
        broken("out of memory");
    for (k = 0; k < s->n; k++)
        if (s->v[k].det != RK__OSTORE_FREE)
            v[n++] = s->v[k];
    if (n > 1)
        qsort(v, n, sizeof(*v), oa_order);
    for (k = 1; k < n; k++)
        if (oa_order(&v[k - 1], &v[k]) == 0)
            d++;
    free(v);
    return d;
}

/* The bound detector's snapshot and its store's restore into a fresh bound
 * host: the store consistent there too, one record per alert, and its
 * snapshot the same bytes (once one record per alert). */
static void bound_roundtrip(fz_host *h)
{
    char err[RK_ERRLEN];
    rk_buf b = {0}, s1 = {0}, s2 = {0};
    fz_host h2;
    size_t dropped = 0, dups = store_dups(store_of(h));

    if (h->ops->snapshot(h->self, &b) != 0 || b.oom)
        broken("bound: detector snapshot failed");
    rk__ostore_snapshot(store_of(h), &s1, bound_det_name, h);
    fz_create(&h2, h->ops, 1);
    if (h->ops->restore(h2.self, b.data, b.len, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz-restore: %s: %s\n", h->ops->name, err);
        broken("bound: the detector's snapshot does not restore");
    }
    if (s1.oom || rk__ostore_restore(store_of(&h2), s1.data, s1.len, bound_det_index, &h2,
                                     FZ_OPEN_TTL, &dropped) != 0 || dropped != 0)
        broken("bound: the store's snapshot does not restore");
    store_check(store_of(&h2));
    if (rk__ostore_count(store_of(&h2)) != rk__ostore_count(store_of(h)) - dups ||
        store_dups(store_of(&h2)) != 0)
        broken("bound: a restored store does not hold one record per alert");
    rk__ostore_snapshot(store_of(&h2), &s2, bound_det_name, &h2);
    if (dups > 0) {                     /* the same once restored again */
        rk_buf_free(&s1);
        rk__ostore_free(store_of(&h2));
        if (s2.oom || rk__ostore_restore(store_of(&h2), s2.data, s2.len, bound_det_index,
                                         &h2, FZ_OPEN_TTL, &dropped) != 0)
            broken("bound: the store's snapshot does not restore");
        s1 = s2;
        memset(&s2, 0, sizeof(s2));
        rk__ostore_snapshot(store_of(&h2), &s2, bound_det_name, &h2);
    }
    if (s2.oom || s2.len != s1.len || memcmp(s1.data, s2.data, s1.len) != 0)
        broken("bound: store snapshot -> restore -> snapshot differs");
    rk_buf_free(&b);
    rk_buf_free(&s1);
    rk_buf_free(&s2);
    fz_host_free(&h2);
}

/* A bound detector: u64 n, n bytes of the store's section, the rest the
 * detector's snapshot (not framed so: refused whole, like a checkpoint cut
 * short). The detector restores first, then the store, as the daemon
 * reads its checkpoint; either may be refused (the detector starts empty,
 * the store too: the daemon goes on with what it restored). */
static void fuzz_bound(const rk_detector_ops *ops, const uint8_t *data, size_t size)
{
    char err[RK_ERRLEN];
    fz_host h;
    rk_rd rd;
    uint64_t n;
    size_t dropped = 0;
    const uint8_t *st;

    rk_rd_init(&rd, data, size);
    n = rk_rd_u64(&rd);
    if (rd.err || n > (uint64_t)(rd.end - rd.p))
        return;
    st = rd.p;
    fz_create(&h, ops, 1);
    err[0] = '\0';
    if (ops->restore(h.self, st + n, (size_t)(rd.end - st) - (size_t)n, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            broken("detector: refused restore without a message");
        if (ops->tracked_keys != NULL && ops->tracked_keys(h.self) != 0)
            broken("detector: refused restore left state");
    }
    if (rk__ostore_restore(store_of(&h), st, (size_t)n, bound_det_index, &h, FZ_OPEN_TTL,
                           &dropped) != 0) {
        const rk__ostore *s = store_of(&h);
        if (s->n != 0 || s->v != NULL || s->nrules != 0 || s->nunits != 0)
            broken("bound: refused store restore changed the store");
    }
    store_check(store_of(&h));
    bound_roundtrip(&h);
    if (ops->tracked_keys != NULL)
        (void)ops->tracked_keys(h.self);
    fz_use(&h);
    if (ops->tracked_keys != NULL)
        (void)ops->tracked_keys(h.self);
    bound_roundtrip(&h);
    fz_host_free(&h);
}

/* ===================================================================
 * Natural keys (dedupe.c)
 * =================================================================== */

/* A snapshot of natural keys: refused whole, or restored to a store whose
 * own snapshot is the same bytes (the format is canonical: keys in order),
 * whose keys are all found, and which expires without trouble. */
static void fuzz_dedupe(const uint8_t *data, size_t size)
{
    rk__dedupe d;
    rk_buf b = {0};
    rk__dedupe_init(&d);
    rk__dedupe_set_window(&d, 400 * RK_DAY);
    if (rk__dedupe_restore(&d, data, size) != 0) {
        if (rk__dedupe_count(&d) != 0)
            broken("dedupe: refused restore left keys");
        rk__dedupe_free(&d);
        return;
    }
    rk__dedupe_snapshot(&d, &b);
    if (b.oom || b.len != size || memcmp(b.data, data, size) != 0)
        broken("dedupe: restore -> snapshot differs");
    if (rk__dedupe_count(&d) > 0) {
        uint64_t key = 0;
        uint32_t digest = 0;
        for (int i = 0; i < 8; i++) key |= (uint64_t)data[12 + i] << (8 * i);
        for (int i = 0; i < 4; i++) digest |= (uint32_t)data[20 + i] << (8 * i);
        if (rk__dedupe_check(&d, key, digest, INT64_MIN) != RK_DEDUPE_DUPLICATE)
            broken("dedupe: the first key restored is not found with its digest");
    }
    rk__dedupe_expire(&d, T0);
    rk_buf_free(&b);
    rk__dedupe_free(&d);
}

/* ===================================================================
 * the open alerts and their alerts.open_ttl closes (openstore.c)
 * =================================================================== */

/* Refused whole (the store as it was: empty), or restored to a store whose
 * snapshot restores to the same bytes, in which every open alert is found
 * by (ts, detector, id), and which closes them in (ts, det, id) order,
 * each once. Either format (the deadline heap of the release before, read
 * with an open_ttl of a day). */
static void fuzz_ttl(const uint8_t *data, size_t size)
{
    rk__ostore t, t2;
    rk_buf b1 = {0}, b2 = {0};
    rk__oa it, last;
    size_t dropped, n = 0, popped = 0, k;

    rk__ostore_init(&t);
    rk__ostore_init(&t2);
    if (rk__ostore_restore(&t, data, size, det_index, NULL, RK_DAY, &dropped) != 0) {
        if (t.n != 0 || t.v != NULL || t.nrules != 0 || t.nunits != 0)
            broken("ttl: refused restore changed the store");
        return;
    }
    rk__ostore_snapshot(&t, &b1, det_name, NULL);
    if (b1.oom || rk__ostore_restore(&t2, b1.data, b1.len, det_index, NULL, RK_DAY,
                                     &dropped) != 0 || dropped != 0)
        broken("ttl: snapshot of a restored store does not restore");
    rk__ostore_snapshot(&t2, &b2, det_name, NULL);
    if (b2.len != b1.len || memcmp(b1.data, b2.data, b1.len) != 0)
        broken("ttl: snapshot -> restore -> snapshot differs");
    for (k = 0; k < t.n; k++) {
        char id[33];
        uint32_t pos = 0;
        int slot;
        rk__alert_id_unpack(t.v[k].id, id);
        /* by its key hash; by its id while that is the id's */
        while ((slot = rk__ostore_next_key(&t, t.v[k].det, t.v[k].keyhash, &pos)) >= 0 &&
               slot != (int)k)
            ;
        if (slot != (int)k)
            broken("ttl: an open alert is not found by its key");
        if (memcmp(&t.v[k].keyhash, t.v[k].id, 8) == 0 &&
            rk__ostore_find(&t, t.v[k].ts, t.v[k].det, id) != (int)k)
            broken("ttl: an open alert is not found by its id");
    }
    n = rk__ostore_count(&t);
    memset(&last, 0, sizeof(last));
    while (rk__ostore_pop_due(&t, INT64_MAX, 0, &it) == 1) {
        if (it.det >= N_DETS)
            broken("ttl: a record of an unknown detector");
        if (popped > 0 && (it.ts < last.ts ||
                           (it.ts == last.ts &&
                            (it.det < last.det || (it.det == last.det &&
                             memcmp(it.id, last.id, sizeof(it.id)) <= 0)))))
            broken("ttl: records out of order");
        last = it;
        popped++;
    }
    if (popped != n || rk__ostore_count(&t) != 0)
        broken("ttl: not every record came out once");
    rk_buf_free(&b1);
    rk_buf_free(&b2);
    rk__ostore_free(&t);
    rk__ostore_free(&t2);
}

/* ===================================================================
 * Indicators (indicators_snap.c)
 * =================================================================== */

static rk__ind *ind_new(void)
{
    rk__ind_settings s;
    memset(&s, 0, sizeof(s));
    s.window = 30 * RK_DAY;
    s.scan_deadline = RK_DAY;
    s.bad_score = 2;
    s.exclude_kinds = 1u << RK_KIND_COMPLAINT;
    s.tz_offset_s = 8 * 3600;
    return rk__ind_new(&s);
}

static void ind_read_all(rk__ind *ind, int64_t now)
{
    static const char *const keys[] = {"u1", "o1", "r1", "all"};
    int sc, p;
    for (sc = 0; sc < RK_IND_NSCOPES; sc++)
        for (p = 0; p < RK_IND_NPERIODS; p++) {
            rk__ind_counts c;
            int64_t from, to;
            char label[16];
            (void)rk__ind_get(ind, sc, keys[sc], p, &c, &from, &to, label);
        }
    (void)now;
}

static void ind_hash_cb(const rk__ind_hash *h, void *ud)
{
    (void)ud;
    if (h->nf == 0 || h->key == NULL)
        broken("indicators: a hash without fields or key");
}

/* A blob of either format: refused (and freed without leaks), or restored
 * to a module whose own snapshot restores again; then events of every
 * kind (amendments of what it may hold) and time up to the far future. */
static void fuzz_indicators(const uint8_t *data, size_t size)
{
    static const char *const offs[] = {"o1", "o2"};
    rk__ind *ind = ind_new(), *b2;
    rk_buf b = {0};
    rk_event ev;
    int64_t now = T0;
    int i;
    if (ind == NULL)
        return;
    if (rk__ind_restore(ind, data, size) != 0) {
        rk__ind_free(ind);
        return;
    }
    if (rk__ind_snapshot(ind, &b) != 0)
        broken("indicators: snapshot of a restored module failed");
    b2 = ind_new();
    if (b2 == NULL || rk__ind_restore(b2, b.data, b.len) != 0)
        broken("indicators: snapshot of a restored module does not restore");
    rk__ind_free(b2);
    rk_buf_free(&b);
    for (i = 0; i < 12; i++) {
        memset(&ev, 0, sizeof(ev));
        ev.type = (rk_event_type)(RK_EV_INSPECTION_FILED + i % 7);
        ev.ts = now + i * 3600000;
        ev.planned_at = ev.ts;
        ev.task_id = i % 2 ? "t1" : "t2";
        ev.case_id = "c1";
        ev.complaint_id = "k1";
        ev.unit_id = i % 3 ? "u1" : NULL;
        ev.region = i % 4 ? NULL : "r1";
        ev.enterprise_id = "e1";
        ev.joint_id = i % 5 ? NULL : "j1";
        ev.officers = offs;
        ev.n_officers = (size_t)(i % 3);
        ev.score = 1 + i % 5;
        ev.fine = 100 * i;
        ev.flags = i >= 7 ? RK_EVF_AMENDED : 0;
        (void)rk__ind_event(ind, &ev);
        if (i == 6)
            rk__ind_unfiled(ind, ev.ts, "u1");
    }
    rk__ind_unfiled_retract(ind, now, "u1");
    ind_read_all(ind, now);
    {
        size_t n;
        for (n = 0; n < 10; n++) {
            bool more;
            (void)rk__ind_collect(ind, 100, now, ind_hash_cb, NULL, &more);
            if (!more)
                break;
        }
    }
    for (i = 1; i <= 6; i++) {
        now += (int64_t)i * i * 20 * RK_DAY;
        rk__ind_advance(ind, now);
    }
    rk__ind_advance(ind, INT64_MAX / 4);
    ind_read_all(ind, now);
    if (rk__ind_snapshot(ind, &b) != 0)
        broken("indicators: snapshot after use failed");
    rk_buf_free(&b);
    rk__ind_free(ind);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned target;

    if (size < 1)
        return 0;
    target = data[0] % N_TARGETS;
    data++;
    size--;
    if (target == 0)
        fuzz_clock(data, size);
    else if (target == 1)
        fuzz_tasks(data, size);
    else if (target == FIRST_BOUND - 3)
        fuzz_dedupe(data, size);
    else if (target == FIRST_BOUND - 2)
        fuzz_ttl(data, size);
    else if (target == FIRST_BOUND - 1)
        fuzz_indicators(data, size);
    else if (target >= FIRST_BOUND)
        fuzz_bound(dets[target - FIRST_BOUND], data, size);
    else
        fuzz_detector(dets[target - 2], data, size);
    return 0;
}
