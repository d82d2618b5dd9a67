/* detectors/unfiled_inspection.c - inspections made without an online filing.
 *
 * Rules (riskd-detectors(7)): scan_without_filing, reported_without_filing,
 * case_without_filing, enterprise_mismatch and filed_not_scanned.
 *
 * State:
 *   filings   task_id -> the first filing of the task (later duplicates are
 *             ignored): filing ts, planned_at, its scan deadline, unit,
 *             enterprise, entry, and flags (scanned, filed_not_scanned done).
 *             One allocation per filing (96 bytes with short ids) holds the
 *             record and its three ids; it sits in two intrusive hash
 *             tables (the kit's rk_itab): by task_id, and by (unit,
 *             enterprise) for reported_without_filing (every filing is in
 *             the pair table, doubly linked in its bucket, filings of one
 *             pair next to each other, so a lookup walks the bucket). A
 *             filing is due at its
 *             scan deadline (planned_at + scan_deadline) for
 *             filed_not_scanned and is dropped once the watermark has passed
 *             planned_at + retention and that rule ran (or scan deadline +
 *             retention, if it never ran). A filing past that expiry counts
 *             as gone at once, whenever it is dropped.
 *   pscans    task_id -> scans of a task not (yet) filed: the last 20 scans
 *             (ts, entry, enterprise, unit) and the deadline of the latest
 *             round. A scan arms a round (timer "s:<task_id>" at scan ts +
 *             grace) when it is later than the current round's deadline;
 *             at the deadline the round alerts unless a filing with filing
 *             ts <= deadline is known. When the filing arrives it takes the
 *             pending scans over (scanned flag, enterprise check) and the
 *             record is dropped once its rounds have fired. A record that
 *             never sees a filing is kept until retention after its last
 *             scan, so a late filing still finds it whatever the
 *             interleaving of the two streams (deterministic output).
 *   pcases    case_id -> a case.opened (source inspection) whose task was not
 *             filed yet; timer "c:<case_id>" at case ts + grace checks the
 *             filing store and drops the record. Cases come from the other
 *             stream than filings, so nothing assumes an order between them:
 *             the timer fires only once both streams passed the deadline.
 *
 * Amendments (RK_EVF_AMENDED, a filing of a known task_id with other
 * values) replace the filing: a new planned_at moves the scan deadline
 * (filed_not_scanned fires at the new one only), a new enterprise is
 * checked against the enterprise that scanned the task (F_MATCHED), a new
 * (unit, enterprise) moves it in the pair table. Filings older than this
 * detector's retention are still known through the daemon
 * (filed_long_ago): a case opened months after its inspection is not
 * "unfiled".
 *
 * reported_without_filing looks up the report's (unit, enterprise) group
 * and accepts a filing whose planned_at is within report_tolerance of the
 * report and that is still within retention (planned_at + retention >=
 * the watermark).
 *
 * Filing timers: filings do not arm a timer each (a daemon timer is a heap
 * slot and a key string: ~70 bytes per filing). They sit in one heap of
 * this detector (fheap, an rk_heap lazy queue: 16 bytes each) keyed by their next due time, the scan
 * deadline until filed_not_scanned ran, then their expiry; keys are lower
 * bounds, corrected when popped. One timer "n:" is kept armed at the
 * earliest key (`armed`); when it fires, every filing due before the
 * watermark is run (filed_not_scanned, alert ts = its scan deadline) or
 * dropped, and the timer is re-armed at the new earliest key. The daemon
 * fires every timer due at a watermark in one go, so this gives the same
 * alerts as a timer per filing. on_watermark drops expired filings too and
 * re-arms the timer if it was lost. Old snapshots' "n:<task_id>" timers
 * run the same code.
 *
 * Expiry: pending scans and cases have an expiry heap each (kit.h rk_heap)
 * keyed by a time no later than the one after which the record is dropped
 * (pscan_expiry; pcases: deadline + retention, a safety net since their
 * timer drops them), re-keyed when their expiry moves (a timer fired, a
 * filing merged scans, a new scan). So on_watermark(now) pops only what
 * expires, O(expired x log n) instead of O(stored), and frees each record
 * at the first watermark past its expiry. A changed retention re-keys the
 * heaps once (O(n)).
 *
 * reconfigure() changes thresholds only; timers already armed keep their
 * deadlines (each record remembers the deadline it armed).
 *
 * Lifecycle: see "Lifecycle" below (the retractions of the rules and the
 * resolution of filed_not_scanned).
 *
 * Snapshot format version 4: as version 3, then the alerts late data may
 * retract (rk__open_put). Version 3: u32 version; i64 armed (the deadline of the
 * armed "n:" timer, INT64_MAX for none); u32 n, n filings (str task, i64
 * ts, i64 planned_at, u32 scan_by - planned_at, str unit, str enterprise,
 * ref, u32 flags); u32 n, n pscans (str task, i64 deadline, i64 fired, i64
 * last_ts, u32 merged, u32 n, n x (i64 ts, ref, str enterprise, str unit));
 * u32 n, n pcases (str case, i64 ts, i64 deadline, str unit, str task, ref).
 * restore() also reads version 2 (no `armed`: its checkpoint holds a
 * "n:<task_id>" timer per filing not yet due) and version 1 (i64 scan_by
 * instead of the u32, and a trailing section of the old (unit, enterprise)
 * index, now derived from the filings, which it skips), so an upgrade keeps
 * the filings. */
#include <stddef.h>

#include "riskd/kit.h"
#include "internal.h"

#define UI_SNAP_VERSION 4u
#define UI_SNAP_V3 3u
#define UI_SNAP_V2 2u
#define UI_SNAP_V1 1u
#define UI_MAX_SCANS 20
#define UI_MAX_ID (64 * 1024)
#define UI_MAX_PLANNED (1u << 24)   /* v1 snapshots: values per index key */

#define F_SCANNED  1u
#define F_FNS_DONE 2u
#define F_DEAD     4u               /* replaced: out of the tables, freed when popped */
#define F_MATCHED  8u               /* a scan named the filed enterprise */
#define F_FNS_OVER 16u              /* its filed_not_scanned alert was resolved
                                       or retracted by a scan */
#define F_KNOWN    (F_SCANNED | F_FNS_DONE | F_MATCHED | F_FNS_OVER)   /* flags a snapshot may carry */

typedef struct ui_cfg {
    int64_t grace;
    int64_t tolerance;
    int64_t scan_deadline;
    int64_t retention;
    int64_t cooldown;
} ui_cfg;

typedef struct ui_filing {
    void *tnext;                    /* next in its task-table bucket */
    void *pnext;                    /* next in its pair-table bucket */
    void *pprev;                    /* previous one; NULL: first of the bucket */
    int64_t ts;
    int64_t planned_at;
    rk_entry_ref ref;
    uint32_t scan_after;            /* scan_by - planned_at (scan_deadline at filing) */
    uint32_t flags;                 /* F_* */
    char ids[];                     /* task_id NUL unit_id NUL enterprise_id NUL */
} ui_filing;

typedef struct ui_scan {
    int64_t ts;
    rk_entry_ref ref;
    char *ent;
    char *unit;                     /* NULL when the scan had none */
} ui_scan;

typedef struct ui_pscan {
    int64_t deadline;               /* latest armed round */
    int64_t fired;                  /* latest round whose timer ran */
    int64_t last_ts;
    uint32_t merged;                /* a filing took the scans over */
    uint32_t n;
    uint32_t hpos;                  /* index in the pscan heap */
    rk_map_entry *ent;              /* its map entry (task_id) */
    ui_scan scans[UI_MAX_SCANS];    /* oldest first */
} ui_pscan;

typedef struct ui_pcase {
    int64_t ts;
    int64_t deadline;
    char *unit;
    char *task;
    rk_entry_ref ref;
    uint32_t hpos;                  /* index in the pcase heap */
    rk_map_entry *ent;              /* its map entry (case_id) */
} ui_pcase;

typedef struct ui_self {
    const rk_host_api *api;
    rk_host *host;
    ui_cfg cfg;
    rk_itab tasks;                  /* filings by task_id (tnext) */
    rk_itab pairs;                  /* filings by (unit, enterprise) (pnext, pprev),
                                       filings of one pair next to each other */
    size_t npairs;                  /* distinct (unit, enterprise) pairs */
    rk_heap fheap;                  /* filings by due time (a lazy queue) */
    int64_t armed;                  /* deadline of the pending "n:" timer, or INT64_MAX */
    rk_map pscans, pcases;
    rk_heap sheap, cheap;           /* expiry: pscans, pcases */
    rk__openset open;               /* alerts late data may retract, by
                                       "s:<task>", "c:<task>", "r:<unit>\x1f<ent>",
                                       "m:<task>" (see lifecycle below) */
} ui_self;

static int chain(ui_self *s);

/* ===================================================================
 * Helpers
 * =================================================================== */

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

static char *dupstr(const char *s)
{
    size_t n;
    char *d;
    if (s == NULL) return NULL;
    n = strlen(s);
    d = malloc(n + 1);
    if (d != NULL) memcpy(d, s, n + 1);
    return d;
}

static int streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) return a == b;
    return strcmp(a, b) == 0;
}

static const char *f_task(const ui_filing *f) { return f->ids; }

static const char *f_unit(const ui_filing *f)
{
    return f->ids + strlen(f->ids) + 1;
}

static const char *f_ent(const ui_filing *f)
{
    const char *u = f_unit(f);
    return u + strlen(u) + 1;
}

static int64_t f_scan_by(const ui_filing *f)
{
    return sat_add(f->planned_at, (int64_t)f->scan_after);
}

/* Hash of a (unit, enterprise) pair; the NUL after unit separates them. */
static uint64_t pair_hash(const char *unit, const char *ent)
{
    uint64_t h = rk_kit_fnv1a(RK_FNV_OFFSET, unit, strlen(unit) + 1);
    return rk_kit_hash_mix(rk_kit_fnv1a(h, ent, strlen(ent)));
}

/* A new filing record holding copies of the three ids (none NULL), with
 * every other field zero and no heap place; NULL when out of memory. */
static ui_filing *filing_new(const char *task, const char *unit, const char *ent)
{
    size_t lt = strlen(task) + 1, lu = strlen(unit) + 1, le = strlen(ent) + 1;
    ui_filing *f = calloc(1, offsetof(ui_filing, ids) + lt + lu + le);
    if (f == NULL) return NULL;
    memcpy(f->ids, task, lt);
    memcpy(f->ids + lt, unit, lu);
    memcpy(f->ids + lt + lu, ent, le);
    return f;
}

/* The hashes the tables file a filing under (rk_itab's hash). */
static uint64_t task_hash(const void *rec)
{
    return rk_kit_hash_str(f_task(rec));
}

static uint64_t pair_rec_hash(const void *rec)
{
    return pair_hash(f_unit(rec), f_ent(rec));
}

static int same_pair(const ui_filing *a, const ui_filing *b)
{
    return strcmp(f_unit(a), f_unit(b)) == 0 && strcmp(f_ent(a), f_ent(b)) == 0;
}

/* The filing of task in the table (live or expired), or NULL. */
static ui_filing *filing_lookup(const ui_self *s, const char *task)
{
    ui_filing *f;
    uint64_t h = rk_kit_hash_str(task);
    for (f = rk_itab_first(&s->tasks, h); f != NULL; f = rk_itab_next(&s->tasks, f))
        if (strcmp(f_task(f), task) == 0)
            return f;
    return NULL;
}

/* Put f (not yet indexed) into both tables: the task table's bucket head,
 * the pair table after a filing of the same pair (or the bucket head).
 * Returns 0, or -1 when out of memory (f is then in neither). */
static int filing_index(ui_self *s, ui_filing *f)
{
    ui_filing *g;
    uint64_t h;
    if (rk_itab_reserve(&s->tasks) != 0 || rk_itab_reserve(&s->pairs) != 0)
        return -1;
    rk_itab_insert(&s->tasks, f, task_hash(f), NULL);
    h = pair_rec_hash(f);
    for (g = rk_itab_first(&s->pairs, h); g != NULL && !same_pair(g, f);
         g = rk_itab_next(&s->pairs, g))
        ;
    if (g == NULL)
        s->npairs++;
    rk_itab_insert(&s->pairs, f, h, g);
    return 0;
}

/* Take f out of both tables. */
static void filing_unindex(ui_self *s, ui_filing *f)
{
    const ui_filing *prev = rk_itab_prev(&s->pairs, f), *next = rk_itab_next(&s->pairs, f);
    rk_itab_remove(&s->tasks, f, task_hash(f));
    if ((prev == NULL || !same_pair(prev, f)) && (next == NULL || !same_pair(next, f)))
        s->npairs--;                /* the last filing of its pair */
    rk_itab_remove(&s->pairs, f, pair_rec_hash(f));
}

/* When a filing is dropped: after planned_at + retention once its
 * filed_not_scanned timer ran, else after its scan deadline + retention. */
static int64_t filing_expiry(const ui_self *s, const ui_filing *f)
{
    if (f->flags & F_FNS_DONE)
        return sat_add(f->planned_at, s->cfg.retention);
    return sat_add(f_scan_by(f), s->cfg.retention);
}

/* When a pending-scan record is dropped: once its latest round fired (or
 * that deadline + retention passed), after its round deadline when merged
 * into a filing, else retention after its last scan. */
static int64_t pscan_expiry(const ui_self *s, const ui_pscan *ps)
{
    int64_t e = ps->merged ? ps->deadline : sat_add(ps->last_ts, s->cfg.retention);
    if (ps->fired < ps->deadline) {
        int64_t w = sat_add(ps->deadline, s->cfg.retention);
        if (w > e) e = w;
    }
    return e;
}

static int64_t pcase_expiry(const ui_self *s, const ui_pcase *pc)
{
    return sat_add(pc->deadline, s->cfg.retention);
}

/* The live filing of task: NULL when unknown or past its expiry at the
 * watermark (dropped or not yet), so results never depend on when expired
 * filings are dropped. */
static ui_filing *filing_find(const ui_self *s, const char *task)
{
    ui_filing *f = filing_lookup(s, task);
    if (f != NULL && filing_expiry(s, f) < s->api->now(s->host))
        return NULL;
    return f;
}

/* Build "<prefix>:<id>" and arm a timer with it. Returns 0 or -1. */
static int arm(ui_self *s, int64_t deadline, char prefix, const char *id)
{
    char buf[128], *k = buf;
    size_t n = strlen(id);
    int rc;
    if (n + 3 > sizeof(buf)) {
        k = malloc(n + 3);
        if (k == NULL) return -1;
    }
    k[0] = prefix;
    k[1] = ':';
    memcpy(k + 2, id, n + 1);
    rc = s->api->timer_set(s->host, deadline, k, 0);
    if (k != buf) free(k);
    return rc < 0 ? -1 : 0;
}

static void scan_clear(ui_scan *sc)
{
    free(sc->ent);
    free(sc->unit);
    memset(sc, 0, sizeof(*sc));
}

static void pscan_free(void *p)
{
    ui_pscan *ps = p;
    uint32_t i;
    if (ps == NULL) return;
    for (i = 0; i < ps->n; i++) scan_clear(&ps->scans[i]);
    free(ps);
}

static void pcase_free(void *p)
{
    ui_pcase *pc = p;
    if (pc == NULL) return;
    free(pc->unit);
    free(pc->task);
    free(pc);
}

/* The next time f is due: its scan deadline while filed_not_scanned has
 * not run, then its expiry. */
static int64_t fheap_due(const ui_self *s, const ui_filing *f)
{
    return (f->flags & F_FNS_DONE) ? filing_expiry(s, f) : f_scan_by(f);
}

/* Remove a record from its heap, index and memory. */
static void pscan_drop(ui_self *s, ui_pscan *ps)
{
    char k[UI_MAX_ID + 3];
    snprintf(k, sizeof(k), "s:%s", ps->ent->key);
    rk__open_let_go(&s->open, k, INT64_MAX);
    rk_heap_remove(&s->sheap, ps);
    pscan_free(rk_map_del(&s->pscans, ps->ent->key));
}

static void pcase_drop(ui_self *s, ui_pcase *pc)
{
    rk_heap_remove(&s->cheap, pc);
    pcase_free(rk_map_del(&s->pcases, pc->ent->key));
}

static void clear_state(ui_self *s)
{
    size_t i;
    for (i = 0; i < s->fheap.n; i++)
        free(s->fheap.items[i].rec);
    rk_heap_free(&s->fheap);
    s->armed = INT64_MAX;
    rk_itab_free(&s->tasks);
    rk_itab_free(&s->pairs);
    s->npairs = 0;
    rk_map_clear(&s->pscans, pscan_free);
    rk_map_clear(&s->pcases, pcase_free);
    rk_heap_free(&s->sheap);
    rk_heap_free(&s->cheap);
    rk__open_clear(&s->open);
}

/* Set every key of h to expiry(rec) and restore the heap order (after the
 * retention changed). */
static void rekey(ui_self *s, rk_heap *h, int kind)
{
    uint32_t i;
    for (i = 0; i < h->n; i++) {
        void *rec = h->items[i].rec;
        h->items[i].key = kind == 1 ? pscan_expiry(s, rec) : pcase_expiry(s, rec);
    }
    rk_heap_heapify(h);
}

/* value and threshold: what the summary states (riskd-detectors(7)). */
static int emit(ui_self *s, const char *rule, rk_severity sev, int64_t ts,
                const rk_subject *subj, const rk_entry_ref *ev, size_t nev,
                int64_t cooldown, const char *summary, double value, double threshold)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.severity = sev;
    a.ts = ts;
    a.subject = *subj;
    a.value = value;
    a.threshold = threshold;
    a.summary = summary;
    a.evidence = ev;
    a.n_evidence = nev;
    a.cooldown = cooldown;
    return s->api->emit(s->host, &a);
}

/* ===================================================================
 * Lifecycle: retractions and filed_not_scanned's resolution
 *
 * The alerts late data may disprove are remembered in s->open by what
 * disproves them: "s:<task>" scan_without_filing (ts = the round's
 * deadline, extra "<enterprise>\x1f<unit>"), dropped with the task's
 * pending scans; "c:<task>" case_without_filing (ts = deadline, extra
 * "<case>\x1f<unit>"); "r:<unit>\x1f<enterprise>" reported_without_filing
 * (ts = the report's); "m:<task>" enterprise_mismatch (extra
 * "<unit>\x1f<scanned enterprise>"), dropped with the filing. "c:" and
 * "r:" records go retention after their newest alert (timer "x:<key>").
 * The set is bound to the host (lc_rule_of): the daemon keeps the alerts
 * under these keys; what is dropped or goes is let go (rk__open_let_go),
 * open until alerts.open_ttl closes it, as before. Kept by the host, an
 * alert's notice takes its id from there (rk__open_prime), so no string
 * of one alert alone is kept: "s:" and "c:" keep "\x1f<unit>" (the
 * reasons name the filing's enterprise, and no case), and a mismatch is
 * kept under "m:<task>\x1f<scanned enterprise>" with extra "<unit>".
 * filed_not_scanned needs nothing beside its filing (F_FNS_DONE without
 * F_SCANNED: it fired; F_FNS_OVER: a scan has settled it).
 * =================================================================== */

/* Why a notice ends an alert (its reason), in t: the subject by name as
 * the alert's summary gives it, the time limit in words. */
enum { LC_SCAN_FILED, LC_CASE_FILED, LC_REPORT_FILED, LC_MISMATCH_AMENDED, LC_SCANNED_IN_TIME,
       LC_SCANNED_LATE };

static const char *lc_reason(const ui_self *s, rk_say *t, int why, const rk_subject *subj)
{
    rk_say_init(t, s->api, s->host);
    switch (why) {
    case LC_SCAN_FILED:
        if (t->en) {
            rk_say_f(t, "The inspection of ");
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            if (subj->unit_id != NULL) {
                rk_say_f(t, " by ");
                rk_say_who(t, "unit", subj->unit_id, 0);
            }
            rk_say_f(t, " (task %s) was filed online in time (grace ", subj->task_id);
            rk_say_span(t, s->cfg.grace);
            rk_say_f(t, "); the filing arrived late.");
        } else {
            if (subj->unit_id != NULL) {
                rk_say_who(t, "unit", subj->unit_id, 0);
                rk_say_f(t, "对");
            }
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            rk_say_f(t, "的检查（任务%s）已按时网上备案（宽限", subj->task_id);
            rk_say_span(t, s->cfg.grace);
            rk_say_f(t, "），只是备案记录晚到。");
        }
        break;
    case LC_CASE_FILED:
        if (t->en) {
            if (subj->case_id != NULL)
                rk_say_f(t, "Inspection task %s of case %s", subj->task_id, subj->case_id);
            else                    /* the alert's subject names the case */
                rk_say_f(t, "Inspection task %s of this case", subj->task_id);
            if (subj->unit_id != NULL) {
                rk_say_f(t, " opened by ");
                rk_say_who(t, "unit", subj->unit_id, 0);
            }
            rk_say_f(t, " was filed online in time (grace ");
            rk_say_span(t, s->cfg.grace);
            rk_say_f(t, "); the filing arrived late.");
        } else {
            if (subj->unit_id != NULL) {
                rk_say_who(t, "unit", subj->unit_id, 0);
                rk_say_f(t, subj->case_id != NULL ? "立案的" : "立案所涉的");
            }
            if (subj->case_id != NULL)
                rk_say_f(t, "案件%s所涉检查任务%s已按时网上备案（宽限", subj->case_id,
                         subj->task_id);
            else                    /* the alert's subject names the case */
                rk_say_f(t, "%s检查任务%s已按时网上备案（宽限",
                         subj->unit_id != NULL ? "" : "该案件所涉", subj->task_id);
            rk_say_span(t, s->cfg.grace);
            rk_say_f(t, "），只是备案记录晚到。");
        }
        break;
    case LC_REPORT_FILED:
        if (t->en) {
            rk_say_f(t, "A filing of the inspection of ");
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            rk_say_f(t, " by ");
            rk_say_who(t, "unit", subj->unit_id, 0);
            rk_say_f(t, ", planned within ");
            rk_say_span(t, s->cfg.tolerance);
            rk_say_f(t, " of the report, has arrived.");
        } else {
            rk_say_who(t, "unit", subj->unit_id, 0);
            rk_say_f(t, "对");
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            rk_say_f(t, "的检查备案已经到达，计划时间在该报告前后");
            rk_say_span(t, s->cfg.tolerance);
            rk_say_f(t, "内。");
        }
        break;
    case LC_MISMATCH_AMENDED:
        if (t->en) {
            rk_say_f(t, "The filing of inspection task %s", subj->task_id);
            if (subj->unit_id != NULL) {
                rk_say_f(t, " of ");
                rk_say_who(t, "unit", subj->unit_id, 0);
            }
            rk_say_f(t, " was amended to name ");
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            rk_say_f(t, ", where it was scanned.");
        } else {
            if (subj->unit_id != NULL) {
                rk_say_who(t, "unit", subj->unit_id, 0);
                rk_say_f(t, "的");
            }
            rk_say_f(t, "检查任务%s备案已更正为扫码的", subj->task_id);
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            rk_say_f(t, "。");
        }
        break;
    default:                        /* LC_SCANNED_IN_TIME, LC_SCANNED_LATE */
        if (t->en) {
            rk_say_f(t, "Inspection task %s of ", subj->task_id);
            rk_say_who(t, "unit", subj->unit_id, 0);
            rk_say_f(t, " at ");
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            rk_say_f(t, why == LC_SCANNED_LATE ? " was scanned late (limit "
                                               : " was scanned in time (limit ");
            rk_say_span(t, s->cfg.scan_deadline);
            rk_say_f(t, why == LC_SCANNED_LATE ? ")." : "); the scan arrived late.");
        } else {
            rk_say_who(t, "unit", subj->unit_id, 0);
            rk_say_f(t, "备案的检查任务%s（", subj->task_id);
            rk_say_who(t, "enterprise", subj->enterprise_id, 0);
            rk_say_f(t, why == LC_SCANNED_LATE ? "）已逾期补扫码（时限" : "）已按时扫码（时限");
            rk_say_span(t, s->cfg.scan_deadline);
            rk_say_f(t, why == LC_SCANNED_LATE ? "）。" : "），只是扫码记录晚到。");
        }
        break;
    }
    return rk_say_text(t);
}

/* Emit the notice `status` of the alert rule/ts/subj, caused by ref. */
static int lc_notice(ui_self *s, const char *rule, int64_t ts, const rk_subject *subj,
                     rk_alert_status status, const char *reason, int64_t change_ts,
                     const rk_entry_ref *ref)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.ts = ts;
    a.subject = *subj;
    a.status = status;
    a.reason = reason;
    a.change_ts = change_ts;
    a.evidence = ref;
    a.n_evidence = ref != NULL ? 1 : 0;
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
}

/* The rule of the open alerts kept under key "<kind>:<id>". */
static const char *lc_rule_of(const char *key)
{
    switch (key[0] != '\0' && key[1] == ':' ? key[0] : '\0') {
    case 's': return "scan_without_filing";
    case 'c': return "case_without_filing";
    case 'r': return "reported_without_filing";
    case 'm': return "enterprise_mismatch";
    default: return NULL;
    }
}

/* Remember an alert emitted (rc 1) under "<kind>:<id>" with extra
 * "<x1>\x1f<x2>"; "c:" and "r:" arm their expiry timer. 0 or -1. Kept by
 * the host (rk__open_bound), a notice takes its alert's id from there
 * (rk__open_prime), so only the unit is kept beside the key: "s:" and "c:"
 * drop x1 (the scanned enterprise, the case: one string an alert), and
 * "m:" keeps the scanned enterprise in its key ("m:<task>\x1f<scanned>",
 * extra "<unit>") so an amendment finds exactly the alerts it retracts. */
static int lc_remember(ui_self *s, int rc, char kind, const char *id, int64_t ts,
                       const char *x1, const char *x2)
{
    char k[2 * UI_MAX_ID + 4], x[2 * 256 + 2];
    const rk__openrec *r;
    int fresh;
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    snprintf(k, sizeof(k), "%c:%s", kind, id);
    if (kind == 'm' && rk__open_bound(&s->open, k)) {
        snprintf(k, sizeof(k), "m:%s\x1f%s", id, x2 ? x2 : "");
        x2 = NULL;
    } else if ((kind == 's' || kind == 'c') && rk__open_bound(&s->open, k)) {
        x1 = NULL;
    }
    snprintf(x, sizeof(x), "%.255s\x1f%.255s", x1 ? x1 : "", x2 ? x2 : "");
    fresh = rk__open_get(&s->open, k) == NULL;
    if (rk__open_add(&s->open, k, ts, x) != 0)
        return -1;
    r = rk__open_get(&s->open, k);
    if ((kind == 'c' || kind == 'r') && fresh) {
        char t[2 * UI_MAX_ID + 6];
        snprintf(t, sizeof(t), "x:%s", k);
        if (s->api->timer_set(s->host, sat_add(r->a[0].ts, s->cfg.retention), t, 0) < 0)
            return -1;
    }
    return 0;
}

/* The two fields of oa's extra "<a>\x1f<b>": *a, *b (NULL when empty). */
static void lc_split(const ui_self *s, const rk__open_alert *oa, const char **a, const char **b)
{
    *a = rk__open_field(&s->open, oa, 0);
    *b = rk__open_field(&s->open, oa, 1);
    if (*a != NULL && **a == '\0')
        *a = NULL;
    if (*b != NULL && **b == '\0')
        *b = NULL;
}

/* Remove alert i of record r (order kept). */
static void lc_remove(ui_self *s, rk__openrec *r, uint32_t i)
{
    rk__open_remove(&s->open, r, i);
}

/* The filing f (event ev) arrived: retract the scan_without_filing and
 * case_without_filing alerts of its task whose deadline it met, and the
 * reported_without_filing alerts of its unit and enterprise it matches. */
static int lc_on_filing(ui_self *s, const ui_filing *f, const rk_event *ev)
{
    char k[UI_MAX_ID + 3];
    const char *a, *b;
    rk__openrec *r;
    rk_subject subj;
    rk_say t;
    uint32_t i;
    int rc = 0;

    snprintf(k, sizeof(k), "s:%s", f_task(f));
    if ((r = rk__open_get(&s->open, k)) != NULL) {
        for (i = 0; i < r->n; ) {
            if (r->a[i].ts < f->ts) { i++; continue; }     /* filed too late for it */
            lc_split(s, &r->a[i], &a, &b);
            memset(&subj, 0, sizeof(subj));
            subj.task_id = f_task(f);
            subj.enterprise_id = a != NULL ? a : f_ent(f);  /* the host's: the filing's */
            subj.unit_id = b;
            rk__open_prime(&s->open, &r->a[i]);
            if (lc_notice(s, "scan_without_filing", r->a[i].ts, &subj, RK_ALERT_RETRACTED,
                          lc_reason(s, &t, LC_SCAN_FILED, &subj), ev->ts, &ev->ref) != 0)
                rc = -1;
            lc_remove(s, r, i);
        }
    }
    snprintf(k, sizeof(k), "c:%s", f_task(f));
    if ((r = rk__open_get(&s->open, k)) != NULL) {
        for (i = 0; i < r->n; ) {
            if (r->a[i].ts < f->ts) { i++; continue; }
            lc_split(s, &r->a[i], &a, &b);
            memset(&subj, 0, sizeof(subj));
            subj.case_id = a;       /* NULL when the host keeps it */
            subj.unit_id = b;
            subj.task_id = f_task(f);
            rk__open_prime(&s->open, &r->a[i]);
            if (lc_notice(s, "case_without_filing", r->a[i].ts, &subj, RK_ALERT_RETRACTED,
                          lc_reason(s, &t, LC_CASE_FILED, &subj), ev->ts, &ev->ref) != 0)
                rc = -1;
            lc_remove(s, r, i);
        }
    }
    snprintf(k, sizeof(k), "r:%s\x1f%s", f_unit(f), f_ent(f));
    if ((r = rk__open_get(&s->open, k)) != NULL) {
        for (i = 0; i < r->n; ) {
            if (f->planned_at < sat_add(r->a[i].ts, -s->cfg.tolerance) ||
                f->planned_at > sat_add(r->a[i].ts, s->cfg.tolerance)) { i++; continue; }
            memset(&subj, 0, sizeof(subj));
            subj.unit_id = f_unit(f);
            subj.enterprise_id = f_ent(f);
            rk__open_prime(&s->open, &r->a[i]);
            if (lc_notice(s, "reported_without_filing", r->a[i].ts, &subj, RK_ALERT_RETRACTED,
                          lc_reason(s, &t, LC_REPORT_FILED, &subj), ev->ts, &ev->ref) != 0)
                rc = -1;
            lc_remove(s, r, i);
        }
    }
    return rc;
}

/* Retract the enterprise_mismatch alerts under key k about a scan by ent
 * (keyed: k names the scanned enterprise, else each alert's extra does). */
static int lc_amend_key(ui_self *s, const char *k, int keyed, const char *task,
                        const char *ent, const rk_event *ev)
{
    const char *unit, *scanned;
    rk__openrec *r = rk__open_get(&s->open, k);
    rk_subject subj;
    rk_say t;
    uint32_t i;
    int rc = 0;

    for (i = 0; r != NULL && i < r->n; ) {
        lc_split(s, &r->a[i], &unit, &scanned);
        if (keyed)
            scanned = ent;
        if (!streq(scanned, ent)) { i++; continue; }
        memset(&subj, 0, sizeof(subj));
        subj.task_id = task;
        subj.unit_id = unit;
        subj.enterprise_id = scanned;
        rk__open_prime(&s->open, &r->a[i]);
        if (lc_notice(s, "enterprise_mismatch", r->a[i].ts, &subj, RK_ALERT_RETRACTED,
                      lc_reason(s, &t, LC_MISMATCH_AMENDED, &subj), ev->ts, &ev->ref) != 0)
            rc = -1;
        lc_remove(s, r, i);
    }
    return rc;
}

/* An amendment of task's filing names enterprise ent: retract the
 * enterprise_mismatch alerts about a scan by ent - kept by the host under
 * "m:<task>\x1f<ent>", or under "m:<task>" with the scanned enterprise in
 * the extra (by the set itself, or from an older snapshot). */
static int lc_on_amended(ui_self *s, const char *task, const char *ent, const rk_event *ev)
{
    char k[2 * UI_MAX_ID + 4];
    int rc;
    snprintf(k, sizeof(k), "m:%s", task);
    rc = lc_amend_key(s, k, 0, task, ent, ev);
    snprintf(k, sizeof(k), "m:%s\x1f%s", task, ent);
    return lc_amend_key(s, k, 1, task, ent, ev) != 0 ? -1 : rc;
}

/* A scan of f's task at ev: settle its filed_not_scanned alert, if it
 * fired: retracted by a scan in time that arrived late, resolved by a late
 * one. */
static int lc_on_scan(ui_self *s, ui_filing *f, const rk_event *ev)
{
    rk_subject subj;
    rk_say t;
    int in_time = ev->ts <= f_scan_by(f);
    if (!(f->flags & F_FNS_DONE) || (f->flags & (F_SCANNED | F_FNS_OVER)))
        return 0;
    f->flags |= F_FNS_OVER;
    memset(&subj, 0, sizeof(subj));
    subj.task_id = f_task(f);
    subj.unit_id = f_unit(f);
    subj.enterprise_id = f_ent(f);
    return lc_notice(s, "filed_not_scanned", f_scan_by(f), &subj,
                     in_time ? RK_ALERT_RETRACTED : RK_ALERT_RESOLVED,
                     lc_reason(s, &t, in_time ? LC_SCANNED_IN_TIME : LC_SCANNED_LATE, &subj),
                     ev->ts, &ev->ref);
}

/* "x:<key>": drop the "c:"/"r:" record's alerts older than retention, and
 * the record when none is left; else wait for the next one. */
static int lc_expire(ui_self *s, int64_t deadline, const char *key)
{
    rk__openrec *r = rk__open_get(&s->open, key);
    char t[UI_MAX_ID + 5];
    uint32_t i = 0;
    while (r != NULL && i < r->n && sat_add(r->a[i].ts, s->cfg.retention) <= deadline)
        i++;
    if (i > 0) {                    /* they stay open until alerts.open_ttl */
        rk__open_let_go(&s->open, key, r->a[i - 1].ts);
        r = rk__open_get(&s->open, key);
    }
    if (r == NULL || r->n == 0)
        return 0;
    snprintf(t, sizeof(t), "x:%s", key);
    return s->api->timer_set(s->host, sat_add(r->a[0].ts, s->cfg.retention), t, 0) < 0 ? -1 : 0;
}

/* ===================================================================
 * Configuration
 * =================================================================== */

#define MAX_SCAN_DEADLINE (49 * RK_DAY)   /* < UINT32_MAX ms (see scan_after) */

static const char *const ui_keys[] = {
    "grace", "report_tolerance", "scan_deadline", "retention", "cooldown", NULL
};

/* Validate cfg into *out; returns 0, or -1 with err naming the key. */
static int parse_cfg(const json_t *cfg, ui_cfg *out, char *err, size_t errlen)
{
    if (rk_kit_cfg_known_keys(cfg, "", ui_keys, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "grace", 0, 10 * RK_MINUTE, &out->grace, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "report_tolerance", 0, 24 * RK_HOUR, &out->tolerance, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "scan_deadline", 0, 24 * RK_HOUR, &out->scan_deadline, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "retention", 1, 30 * RK_DAY, &out->retention, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "cooldown", 0, 24 * RK_HOUR, &out->cooldown, err, errlen) != 0)
        return -1;
    /* A filing keeps its deadline as 32-bit milliseconds after planned_at
     * (task record size): 49 days is the most it holds. */
    if (out->scan_deadline > MAX_SCAN_DEADLINE) {
        rk_kit_errf(err, errlen, "scan_deadline: expected a duration of at most 49d");
        return -1;
    }
    return 0;
}

/* ===================================================================
 * Lifecycle
 * =================================================================== */

static void *ui_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    ui_self *s;
    ui_cfg c;
    if (parse_cfg(cfg, &c, err, errlen) != 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->cfg = c;
    rk_map_init(&s->pscans);
    rk_map_init(&s->pcases);
    rk_itab_init(&s->tasks, offsetof(ui_filing, tnext), RK_ITAB_NOPREV, task_hash);
    rk_itab_init(&s->pairs, offsetof(ui_filing, pnext), offsetof(ui_filing, pprev),
                 pair_rec_hash);
    rk_heap_init(&s->fheap, RK_HEAP_NOPOS);
    s->armed = INT64_MAX;
    rk_heap_init(&s->sheap, offsetof(ui_pscan, hpos));
    rk_heap_init(&s->cheap, offsetof(ui_pcase, hpos));
    rk__open_init(&s->open);
    rk__open_bind_by(&s->open, host, lc_rule_of);
    return s;
}

static int ui_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    ui_self *s = self;
    ui_cfg c;
    int rekeyed;
    if (parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    rekeyed = c.retention != s->cfg.retention;
    s->cfg = c;
    if (rekeyed) {
        uint32_t i;
        for (i = 0; i < s->fheap.n; i++)
            s->fheap.items[i].key = fheap_due(s, s->fheap.items[i].rec);
        rk_heap_heapify(&s->fheap);
        (void)chain(s);             /* on failure on_watermark re-arms */
        rekey(s, &s->sheap, 1);
        rekey(s, &s->cheap, 2);
    }
    return 0;
}

static void ui_destroy(void *self)
{
    ui_self *s = self;
    if (s == NULL) return;
    clear_state(s);
    free(s);
}

/* Filings, pending scans, pending cases and (unit, enterprise) pairs. */
static size_t ui_tracked_keys(void *self)
{
    ui_self *s = self;
    return s->tasks.count + s->pscans.count + s->pcases.count + s->npairs;
}

/* ===================================================================
 * Rules
 * =================================================================== */

static int mismatch(ui_self *s, const char *task, const ui_filing *f,
                    const char *scanned_ent, int64_t ts,
                    rk_entry_ref first, rk_entry_ref second)
{
    rk_subject subj;
    rk_entry_ref ev[2];
    rk_say t;
    memset(&subj, 0, sizeof(subj));
    subj.task_id = task;
    subj.unit_id = f_unit(f);
    subj.enterprise_id = scanned_ent;
    ev[0] = first;
    ev[1] = second;
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "Inspection task %s of ", task);
        rk_say_who(&t, "unit", f_unit(f), 0);
        rk_say_f(&t, " was filed for ");
        rk_say_who(&t, "enterprise", f_ent(f), 0);
        rk_say_f(&t, " but scanned at ");
        rk_say_who(&t, "enterprise", scanned_ent, 0);
        rk_say_f(&t, " (1 scan at another enterprise).");
    } else {
        rk_say_who(&t, "unit", f_unit(f), 0);
        rk_say_f(&t, "的检查任务%s备案检查", task);
        rk_say_who(&t, "enterprise", f_ent(f), 0);
        rk_say_f(&t, "，却在");
        rk_say_who(&t, "enterprise", scanned_ent, 0);
        rk_say_f(&t, "扫码（1次扫码对象不符）");
    }
    return lc_remember(s, emit(s, "enterprise_mismatch", RK_SEV_CRITICAL, ts, &subj, ev, 2,
                               s->cfg.cooldown, rk_say_text(&t), 1, 1),
                       'm', task, ts, f_unit(f), scanned_ent);
}

/* Whether the daemon knows ev's task as filed although this detector no
 * longer holds the filing (its retention passed): the daemon's filing
 * record (RK_EVF_FILING_KNOWN, kept for state.task_retention) or its
 * memory of every filing of state.dedupe_window (RK_EVF_FILING_SEEN). A
 * filing that old was in time for anything that happens now. */
static int filed_long_ago(const rk_event *ev)
{
    return (ev->flags & RK_EVF_FILING_SEEN) ||
           ((ev->flags & RK_EVF_FILING_KNOWN) && ev->filing_ts <= ev->ts);
}

static int on_filed(ui_self *s, const rk_event *ev)
{
    ui_filing *f, *old = NULL;
    ui_pscan *ps;
    uint32_t i, keep = 0;

    if (ev->task_id == NULL || ev->unit_id == NULL || ev->enterprise_id == NULL)
        return 0;
    f = filing_lookup(s, ev->task_id);
    if (f != NULL) {
        int live = filing_expiry(s, f) >= s->api->now(s->host);
        if (live && !(ev->flags & RK_EVF_AMENDED))
            return 0;               /* a repeat (deduplication off): the first wins */
        /* Replaced (an amendment) or expired, not yet dropped: out of the
         * tables now, freed when its heap item comes up. An amendment
         * keeps what the scans told: scanned (a scan in time for the old
         * deadline counts for the new one), and whether a scan named the
         * filed enterprise. */
        filing_unindex(s, f);
        f->flags |= F_DEAD;
        if (live) {
            old = f;
            keep = f->flags & (F_SCANNED | F_MATCHED);
        }
    }
    f = filing_new(ev->task_id, ev->unit_id, ev->enterprise_id);
    if (f == NULL) return -1;
    f->ts = ev->ts;
    f->planned_at = ev->planned_at;
    f->scan_after = (uint32_t)s->cfg.scan_deadline;   /* <= 24h */
    f->ref = ev->ref;
    f->flags = keep;
    if (filing_index(s, f) != 0) {
        free(f);
        return -1;
    }
    if (rk_heap_push(&s->fheap, fheap_due(s, f), f) != 0) {
        filing_unindex(s, f);
        free(f);
        return -1;
    }
    if (chain(s) != 0)
        return -1;
    /* An amendment naming another enterprise than the one that scanned
     * the task: enterprise_mismatch, as if the scan came now. */
    if (old != NULL && (keep & F_MATCHED) && !streq(f_ent(old), f_ent(f))) {
        f->flags &= ~F_MATCHED;
        if (mismatch(s, ev->task_id, f, f_ent(old), ev->ts, old->ref, f->ref) != 0)
            return -1;
    }

    /* Scans that came first: they count for filed_not_scanned when early
     * enough, and their enterprise is checked. Whether the filing came in
     * time for them is decided by their timers, from the filing store. */
    ps = rk_map_get(&s->pscans, ev->task_id);
    if (ps != NULL && !ps->merged) {
        for (i = 0; i < ps->n; i++) {
            const ui_scan *sc = &ps->scans[i];
            if (sc->ts <= f_scan_by(f))
                f->flags |= F_SCANNED;
            if (streq(sc->ent, f_ent(f)))
                f->flags |= F_MATCHED;
            else if (mismatch(s, ev->task_id, f, sc->ent, ev->ts, sc->ref, f->ref) != 0)
                return -1;
        }
        ps->merged = 1;
        rk_heap_update(&s->sheap, ps, pscan_expiry(s, ps));
    }
    /* Late data: alerts this filing disproves. */
    if (old != NULL && lc_on_amended(s, ev->task_id, f_ent(f), ev) != 0)
        return -1;
    return lc_on_filing(s, f, ev);
}

static int on_scanned(ui_self *s, const rk_event *ev)
{
    ui_filing *f;
    ui_pscan *ps;
    ui_scan *sc;
    int round;

    if (ev->task_id == NULL || ev->enterprise_id == NULL)
        return 0;
    f = filing_find(s, ev->task_id);
    if (f != NULL) {
        if (lc_on_scan(s, f, ev) != 0)
            return -1;
        if (ev->ts <= f_scan_by(f))
            f->flags |= F_SCANNED;
        if (!streq(ev->enterprise_id, f_ent(f)))
            return mismatch(s, ev->task_id, f, ev->enterprise_id, ev->ts,
                            f->ref, ev->ref);
        f->flags |= F_MATCHED;
        return 0;
    }
    if (filed_long_ago(ev))
        return 0;

    ps = rk_map_get(&s->pscans, ev->task_id);
    if (ps != NULL && ps->merged) {
        /* The filing this record was merged into is gone (retention):
         * start over. */
        uint32_t i;
        for (i = 0; i < ps->n; i++) scan_clear(&ps->scans[i]);
        ps->n = 0;
        ps->merged = 0;
    }
    if (ps == NULL) {
        ps = calloc(1, sizeof(*ps));
        if (ps == NULL) return -1;
        ps->deadline = INT64_MIN;
        ps->fired = INT64_MIN;
        ps->hpos = RK_HEAP_NONE;
        ps->ent = rk_map_put(&s->pscans, ev->task_id, ps, NULL);
        if (ps->ent == NULL) {
            free(ps);
            return -1;
        }
        if (rk_heap_push(&s->sheap, pscan_expiry(s, ps), ps) != 0) {
            pscan_drop(s, ps);
            return -1;
        }
    }
    if (ps->n == UI_MAX_SCANS) {
        scan_clear(&ps->scans[0]);
        memmove(&ps->scans[0], &ps->scans[1], (UI_MAX_SCANS - 1) * sizeof(ps->scans[0]));
        memset(&ps->scans[UI_MAX_SCANS - 1], 0, sizeof(ps->scans[0]));
        ps->n--;
    }
    sc = &ps->scans[ps->n];
    sc->ts = ev->ts;
    sc->ref = ev->ref;
    sc->ent = dupstr(ev->enterprise_id);
    sc->unit = dupstr(ev->unit_id);
    if (sc->ent == NULL || (ev->unit_id != NULL && sc->unit == NULL)) {
        scan_clear(sc);
        rk_heap_update(&s->sheap, ps, pscan_expiry(s, ps));
        return -1;
    }
    ps->n++;
    if (ev->ts > ps->last_ts || ps->n == 1)
        ps->last_ts = ev->ts;
    round = ev->ts > ps->deadline;
    if (round)
        ps->deadline = sat_add(ev->ts, s->cfg.grace);
    rk_heap_update(&s->sheap, ps, pscan_expiry(s, ps));
    if (round && arm(s, ps->deadline, 's', ev->task_id) != 0)
        return -1;
    return 0;
}

static int on_reported(ui_self *s, const rk_event *ev)
{
    const ui_filing *f;
    int64_t now;
    rk_subject subj;
    rk_say t;
    char pair[512];

    if (ev->unit_id == NULL || ev->enterprise_id == NULL)
        return 0;
    now = s->api->now(s->host);
    f = rk_itab_first(&s->pairs, pair_hash(ev->unit_id, ev->enterprise_id));
    for (; f != NULL; f = rk_itab_next(&s->pairs, f)) {
        int64_t p = f->planned_at;
        if (strcmp(f_unit(f), ev->unit_id) != 0 || strcmp(f_ent(f), ev->enterprise_id) != 0)
            continue;
        if (sat_add(p, s->cfg.retention) < now || filing_expiry(s, f) < now)
            continue;               /* out of retention, not yet dropped */
        if (p >= sat_add(ev->ts, -s->cfg.tolerance) &&
            p <= sat_add(ev->ts, s->cfg.tolerance))
            return 0;
    }
    memset(&subj, 0, sizeof(subj));
    subj.unit_id = ev->unit_id;
    subj.enterprise_id = ev->enterprise_id;
    rk_say_init(&t, s->api, s->host);
    rk_say_who(&t, "enterprise", ev->enterprise_id, 1);
    if (t.en) {
        rk_say_f(&t, " reported 1 inspection by ");
        rk_say_who(&t, "unit", ev->unit_id, 0);
        rk_say_f(&t, " with no filing of it planned within ");
        rk_say_span(&t, s->cfg.tolerance);
        rk_say_f(&t, " either side.");
    } else {
        rk_say_f(&t, "报告");
        rk_say_who(&t, "unit", ev->unit_id, 0);
        rk_say_f(&t, "对其检查1次，但前后");
        rk_say_span(&t, s->cfg.tolerance);
        rk_say_f(&t, "内没有该检查的网上备案");
    }
    snprintf(pair, sizeof(pair), "%.255s\x1f%.255s", ev->unit_id, ev->enterprise_id);
    return lc_remember(s, emit(s, "reported_without_filing", RK_SEV_CRITICAL, ev->ts, &subj,
                               &ev->ref, 1, s->cfg.cooldown, rk_say_text(&t), 1, 1),
                       'r', pair, ev->ts, NULL, NULL);
}

static int case_alert(ui_self *s, const char *case_id, const char *unit,
                      const char *task, int64_t ts, rk_entry_ref ref)
{
    rk_subject subj;
    rk_say t;
    int rc;
    memset(&subj, 0, sizeof(subj));
    subj.case_id = case_id;
    subj.unit_id = unit;
    subj.task_id = task;
    rk_say_init(&t, s->api, s->host);
    rk_say_who(&t, "unit", unit, 1);
    if (t.en) {
        rk_say_f(&t, " opened 1 case (%s) from ", case_id);
        if (task != NULL) {
            rk_say_f(&t, "inspection task %s, which was not filed online within ", task);
            rk_say_span(&t, s->cfg.grace);
            rk_say_f(&t, " of the case.");
        } else {
            rk_say_f(&t, "an inspection but named no filed inspection task.");
        }
    } else {
        rk_say_f(&t, "立案1起（案件%s），来源于", case_id);
        if (task != NULL) {
            rk_say_f(&t, "检查任务%s，但立案后", task);
            rk_say_span(&t, s->cfg.grace);
            rk_say_f(&t, "内该任务仍未网上备案");
        } else {
            rk_say_f(&t, "检查，但未注明已备案的检查任务");
        }
    }
    rc = emit(s, "case_without_filing", RK_SEV_WARNING, ts, &subj, &ref, 1,
              s->cfg.cooldown, rk_say_text(&t), 1, 1);
    if (task == NULL)
        return rc < 0 ? -1 : 0;     /* no filing can disprove it */
    return lc_remember(s, rc, 'c', task, ts, case_id, unit);
}

static int on_case_opened(ui_self *s, const rk_event *ev)
{
    const ui_filing *f;
    ui_pcase *pc;

    if (ev->source != RK_SOURCE_INSPECTION || ev->case_id == NULL)
        return 0;
    if (ev->task_id == NULL)
        return case_alert(s, ev->case_id, ev->unit_id, NULL, ev->ts, ev->ref);
    f = filing_find(s, ev->task_id);
    if (f != NULL && f->ts <= sat_add(ev->ts, s->cfg.grace))
        return 0;
    if (f == NULL && filed_long_ago(ev))
        return 0;
    if (rk_map_get(&s->pcases, ev->case_id) != NULL)
        return 0;                   /* the first opening wins */
    pc = calloc(1, sizeof(*pc));
    if (pc == NULL) return -1;
    pc->ts = ev->ts;
    pc->deadline = sat_add(ev->ts, s->cfg.grace);
    pc->unit = dupstr(ev->unit_id);
    pc->task = dupstr(ev->task_id);
    pc->ref = ev->ref;
    pc->hpos = RK_HEAP_NONE;
    if ((ev->unit_id != NULL && pc->unit == NULL) || pc->task == NULL ||
        (pc->ent = rk_map_put(&s->pcases, ev->case_id, pc, NULL)) == NULL) {
        pcase_free(pc);
        return -1;
    }
    if (rk_heap_push(&s->cheap, pcase_expiry(s, pc), pc) != 0) {
        pcase_drop(s, pc);
        return -1;
    }
    return arm(s, pc->deadline, 'c', ev->case_id);
}

static int ui_on_event(void *self, const rk_event *ev)
{
    ui_self *s = self;
    switch (ev->type) {
    case RK_EV_INSPECTION_FILED:    return on_filed(s, ev);
    case RK_EV_INSPECTION_SCANNED:  return on_scanned(s, ev);
    case RK_EV_INSPECTION_REPORTED: return on_reported(s, ev);
    case RK_EV_CASE_OPENED:         return on_case_opened(s, ev);
    default:                        return 0;
    }
}

/* ===================================================================
 * Timers
 * =================================================================== */

/* filed_not_scanned for f, whose scan deadline the watermark passed: mark
 * it done and alert unless it was scanned by then. Returns 0 or -1. */
static int fns_fire(ui_self *s, ui_filing *f)
{
    rk_subject subj;
    rk_say t;
    f->flags |= F_FNS_DONE;
    if (f->flags & F_SCANNED)
        return 0;
    memset(&subj, 0, sizeof(subj));
    subj.task_id = f_task(f);
    subj.unit_id = f_unit(f);
    subj.enterprise_id = f_ent(f);
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "Inspection task %s of ", f_task(f));
        rk_say_who(&t, "unit", f_unit(f), 0);
        rk_say_f(&t, " at ");
        rk_say_who(&t, "enterprise", f_ent(f), 0);
        rk_say_f(&t, " was filed but not scanned within ");
        rk_say_span(&t, (int64_t)f->scan_after);
        rk_say_f(&t, " of its planned time (limit ");
        rk_say_span(&t, s->cfg.scan_deadline);
        rk_say_f(&t, ").");
    } else {
        rk_say_who(&t, "unit", f_unit(f), 0);
        rk_say_f(&t, "备案的检查任务%s（", f_task(f));
        rk_say_who(&t, "enterprise", f_ent(f), 0);
        rk_say_f(&t, "）计划时间后");
        rk_say_span(&t, (int64_t)f->scan_after);
        rk_say_f(&t, "内未扫码（时限");
        rk_say_span(&t, s->cfg.scan_deadline);
        rk_say_f(&t, "）");
    }
    return emit(s, "filed_not_scanned", RK_SEV_INFO, f_scan_by(f), &subj, &f->ref,
                1, 0, rk_say_text(&t), (double)f->scan_after / (double)RK_HOUR,
                (double)s->cfg.scan_deadline / (double)RK_HOUR) < 0 ? -1 : 0;
}

/* Move the filings due before now on: run filed_not_scanned for those past
 * their scan deadline (only when may_emit: from a timer; otherwise stop at
 * the first such filing) and drop those past their expiry, re-keying the
 * others. Returns 0, or -1 when an alert failed (the filing is done
 * anyway). */
static int pump(ui_self *s, int64_t now, int may_emit)
{
    int rc = 0;
    while (s->fheap.n > 0 && s->fheap.items[0].key < now) {
        ui_filing *f = s->fheap.items[0].rec;
        int64_t due;
        if (f->flags & F_DEAD) {
            rk_heap_pop(&s->fheap);
            free(f);
            continue;
        }
        if (!(f->flags & F_FNS_DONE) && f_scan_by(f) < now) {
            if (!may_emit)
                break;
            if (fns_fire(s, f) != 0)
                rc = -1;
        }
        due = fheap_due(s, f);
        if ((f->flags & F_FNS_DONE) && due < now) {
            char k[UI_MAX_ID + 3];
            snprintf(k, sizeof(k), "m:%s", f_task(f));
            /* its mismatches stay as they are: an amendment will not
             * find them now (the host's, keyed by the scanned
             * enterprise, wait for alerts.open_ttl where they are) */
            rk__open_let_go(&s->open, k, INT64_MAX);
            rk_heap_pop(&s->fheap);
            filing_unindex(s, f);
            free(f);
            continue;
        }
        rk_heap_retop(&s->fheap, due);
    }
    return rc;
}

/* Keep the "n:" timer armed at or before the earliest filing key. Returns
 * 0, or -1 when the timer could not be armed. */
static int chain(ui_self *s)
{
    int64_t key;
    if (s->fheap.n == 0 || (key = s->fheap.items[0].key) >= s->armed)
        return 0;
    if (s->api->timer_set(s->host, key, "n:", 0) < 0)
        return -1;
    s->armed = key;
    return 0;
}

/* The "n:" timer (or an old snapshot's "n:<task_id>") at deadline. */
static int timer_filings(ui_self *s, int64_t deadline)
{
    int rc;
    if (deadline >= s->armed)
        s->armed = INT64_MAX;       /* that timer has fired */
    rc = pump(s, s->api->now(s->host), 1);
    if (chain(s) != 0)
        rc = -1;
    return rc;
}

static int timer_scan(ui_self *s, int64_t deadline, const char *task)
{
    ui_pscan *ps = rk_map_get(&s->pscans, task);
    const ui_filing *f = filing_find(s, task);
    rk_entry_ref ev[UI_MAX_SCANS];
    const char *ent = NULL, *unit = NULL;
    size_t n = 0;
    uint32_t i;
    rk_subject subj;
    rk_say t;
    int64_t first = deadline;

    if (ps == NULL)
        return 0;
    if (deadline > ps->fired) {
        ps->fired = deadline;
        rk_heap_update(&s->sheap, ps, pscan_expiry(s, ps));
    }
    if (f != NULL && f->ts <= deadline)
        return 0;                   /* filed within grace */
    for (i = 0; i < ps->n; i++) {
        const ui_scan *sc = &ps->scans[i];
        if (sc->ts > deadline)
            continue;
        ev[n++] = sc->ref;
        if (sc->ts < first) first = sc->ts;
        ent = sc->ent;
        if (sc->unit != NULL) unit = sc->unit;
    }
    if (n == 0)
        return 0;
    memset(&subj, 0, sizeof(subj));
    subj.task_id = task;
    subj.enterprise_id = ent;
    subj.unit_id = unit;
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "The inspection of ");
        rk_say_who(&t, "enterprise", ent, 0);
        if (unit != NULL) {
            rk_say_f(&t, " by ");
            rk_say_who(&t, "unit", unit, 0);
        }
        rk_say_f(&t, " (task %s) was scanned ", task);
        rk_say_span(&t, deadline - first);
        rk_say_f(&t, " ago and is still not filed online (grace ");
        rk_say_span(&t, s->cfg.grace);
        rk_say_f(&t, ").");
    } else {
        if (unit != NULL) {
            rk_say_who(&t, "unit", unit, 0);
            rk_say_f(&t, "对");
        }
        rk_say_who(&t, "enterprise", ent, 0);
        rk_say_f(&t, "的检查（任务%s）扫码已", task);
        rk_say_span(&t, deadline - first);
        rk_say_f(&t, "，仍未网上备案（宽限");
        rk_say_span(&t, s->cfg.grace);
        rk_say_f(&t, "）");
    }
    return lc_remember(s, emit(s, "scan_without_filing", RK_SEV_WARNING, deadline, &subj, ev,
                               n, s->cfg.cooldown, rk_say_text(&t),
                               (double)(deadline - first) / (double)RK_MINUTE,
                               (double)s->cfg.grace / (double)RK_MINUTE),
                       's', task, deadline, ent, unit);
}

static int timer_case(ui_self *s, int64_t deadline, const char *case_id)
{
    ui_pcase *pc = rk_map_get(&s->pcases, case_id);
    const ui_filing *f;
    int rc = 0;
    if (pc == NULL || pc->deadline != deadline)
        return 0;
    f = filing_find(s, pc->task);
    if (f == NULL || f->ts > deadline)
        rc = case_alert(s, case_id, pc->unit, pc->task, deadline, pc->ref);
    pcase_drop(s, pc);
    return rc;
}

static int ui_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    ui_self *s = self;
    (void)arg;
    if (key == NULL || key[0] == '\0' || key[1] != ':')
        return 0;
    switch (key[0]) {
    case 'n': return timer_filings(s, deadline);
    case 's': return timer_scan(s, deadline, key + 2);
    case 'c': return timer_case(s, deadline, key + 2);
    case 'x': return lc_expire(s, deadline, key + 2);
    default:  return 0;
    }
}

/* ===================================================================
 * Expiry
 * =================================================================== */

/* Drop what expired before now: only records at the top of the heaps are
 * looked at (their keys are lower bounds of their expiry; the re-check
 * keeps a record whose key was stale). Filings past their scan deadline
 * wait for the "n:" timer (alerts are emitted from timers only). */
static void ui_on_watermark(void *self, int64_t now)
{
    ui_self *s = self;
    const rk_heap_item *top;

    /* Every timer due before now has fired: one still recorded as armed
     * was lost (a checkpoint without it): arm again. */
    if (s->armed < now)
        s->armed = INT64_MAX;
    (void)pump(s, now, 0);
    (void)chain(s);                 /* on failure, the next call retries */
    while ((top = rk_heap_top(&s->sheap)) != NULL && top->key < now) {
        ui_pscan *ps = top->rec;
        int64_t exp = pscan_expiry(s, ps);
        if (exp < now) pscan_drop(s, ps);
        else rk_heap_update(&s->sheap, ps, exp);
    }
    while ((top = rk_heap_top(&s->cheap)) != NULL && top->key < now) {
        ui_pcase *pc = top->rec;
        int64_t exp = pcase_expiry(s, pc);
        if (exp < now) pcase_drop(s, pc);
        else rk_heap_update(&s->cheap, pc, exp);
    }
}

/* ===================================================================
 * Snapshot
 * =================================================================== */

static int ui_snapshot(void *self, rk_buf *out)
{
    ui_self *s = self;
    rk_map_entry *e;
    size_t b;
    uint32_t i;

    rk_buf_put_u32(out, UI_SNAP_VERSION);
    rk_buf_put_i64(out, s->armed);
    rk_buf_put_u32(out, (uint32_t)s->tasks.count);
    for (b = 0; b < s->tasks.nb; b++) {
        const ui_filing *f;
        for (f = s->tasks.b[b]; f != NULL; f = rk_itab_next(&s->tasks, f)) {
            rk_buf_put_str(out, f_task(f));
            rk_buf_put_i64(out, f->ts);
            rk_buf_put_i64(out, f->planned_at);
            rk_buf_put_u32(out, f->scan_after);
            rk_buf_put_str(out, f_unit(f));
            rk_buf_put_str(out, f_ent(f));
            rk_buf_put_ref(out, f->ref);
            rk_buf_put_u32(out, f->flags);
        }
    }
    rk_buf_put_u32(out, (uint32_t)s->pscans.count);
    for (e = rk_map_first(&s->pscans, &b); e; e = rk_map_next(&s->pscans, &b, e)) {
        const ui_pscan *ps = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_i64(out, ps->deadline);
        rk_buf_put_i64(out, ps->fired);
        rk_buf_put_i64(out, ps->last_ts);
        rk_buf_put_u32(out, ps->merged);
        rk_buf_put_u32(out, ps->n);
        for (i = 0; i < ps->n; i++) {
            rk_buf_put_i64(out, ps->scans[i].ts);
            rk_buf_put_ref(out, ps->scans[i].ref);
            rk_buf_put_str(out, ps->scans[i].ent);
            rk_buf_put_str(out, ps->scans[i].unit);
        }
    }
    rk_buf_put_u32(out, (uint32_t)s->pcases.count);
    for (e = rk_map_first(&s->pcases, &b); e; e = rk_map_next(&s->pcases, &b, e)) {
        const ui_pcase *pc = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_i64(out, pc->ts);
        rk_buf_put_i64(out, pc->deadline);
        rk_buf_put_str(out, pc->unit);
        rk_buf_put_str(out, pc->task);
        rk_buf_put_ref(out, pc->ref);
    }
    rk__open_put(out, &s->open);
    return out->oom ? -1 : 0;
}

/* Read one id string: not NULL, without NUL bytes, at most UI_MAX_ID
 * bytes. Returns a malloc'ed copy, or NULL with r->err set. */
static char *rd_id(rk_rd *r)
{
    uint32_t n = 0;
    char *k;
    if ((size_t)(r->end - r->p) >= 4)
        n = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 |
            (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    k = rk_rd_str(r, UI_MAX_ID);
    if (k == NULL || r->err || strlen(k) != n) {
        free(k);
        r->err = 1;
        return NULL;
    }
    return k;
}

/* Read one map key; an error or a key already present fails. */
static char *rd_key(rk_rd *r, const rk_map *m)
{
    char *k = rd_id(r);
    if (k != NULL && rk_map_get(m, k) != NULL) {
        free(k);
        r->err = 1;
        return NULL;
    }
    return k;
}

/* Read the filings section of a snapshot of version ver. */
static int restore_filings(ui_self *s, rk_rd *r, uint32_t ver)
{
    uint32_t n = rk_rd_u32(r), i;

    for (i = 0; i < n && !r->err; i++) {
        char *task = rd_id(r), *unit = NULL, *ent = NULL;
        int64_t ts, planned, scan_by = 0;
        uint32_t after = 0;
        rk_entry_ref ref;
        uint32_t flags;
        ui_filing *f = NULL;

        ts = rk_rd_ts(r);
        planned = rk_rd_ts(r);
        if (ver == UI_SNAP_V1) scan_by = rk_rd_ts(r);
        else after = rk_rd_u32(r);
        if (!r->err) unit = rd_id(r);
        if (!r->err) ent = rd_id(r);
        ref = rk_rd_ref(r);
        flags = rk_rd_u32(r);
        if (ver == UI_SNAP_V1 && !r->err) {
            /* scan_by = planned_at + scan_deadline (<= 24h), saturated */
            uint64_t d = (uint64_t)scan_by - (uint64_t)planned;
            if (scan_by < planned || d > UINT32_MAX)
                r->err = 1;
            else
                after = (uint32_t)d;
        }
        if ((flags & ~F_KNOWN) != 0)
            r->err = 1;
        if (!r->err && filing_lookup(s, task) == NULL)
            f = filing_new(task, unit, ent);
        free(task);
        free(unit);
        free(ent);
        if (f == NULL) {
            r->err = 1;
            return -1;
        }
        f->ts = ts;
        f->planned_at = planned;
        f->scan_after = after;
        f->ref = ref;
        f->flags = flags;
        if (filing_index(s, f) != 0) {
            free(f);
            return -1;
        }
        if (rk_heap_push(&s->fheap, fheap_due(s, f), f) != 0) {
            filing_unindex(s, f);
            free(f);
            return -1;
        }
    }
    return r->err ? -1 : 0;
}

static int restore_pscans(ui_self *s, rk_rd *r)
{
    uint32_t n = rk_rd_u32(r), i, j;

    for (i = 0; i < n && !r->err; i++) {
        char *k = rd_key(r, &s->pscans);
        ui_pscan *ps;
        uint32_t ns;
        if (k == NULL) return -1;
        ps = calloc(1, sizeof(*ps));
        if (ps == NULL) { free(k); return -1; }
        ps->hpos = RK_HEAP_NONE;
        ps->deadline = rk_rd_time(r);
        ps->fired = rk_rd_time(r);
        ps->last_ts = rk_rd_ts(r);
        ps->merged = rk_rd_u32(r) ? 1 : 0;
        ns = rk_rd_u32(r);
        if (ns > UI_MAX_SCANS) r->err = 1;
        for (j = 0; j < ns && !r->err; j++) {
            ui_scan *sc = &ps->scans[j];
            sc->ts = rk_rd_ts(r);
            sc->ref = rk_rd_ref(r);
            sc->ent = rk_rd_str(r, UI_MAX_ID);
            sc->unit = rk_rd_str(r, UI_MAX_ID);
            ps->n = j + 1;
            if (sc->ent == NULL) r->err = 1;
        }
        if (r->err || (ps->ent = rk_map_put(&s->pscans, k, ps, NULL)) == NULL) {
            pscan_free(ps);
            free(k);
            return -1;
        }
        free(k);
        if (rk_heap_push(&s->sheap, pscan_expiry(s, ps), ps) != 0) {
            pscan_drop(s, ps);
            return -1;
        }
    }
    return r->err ? -1 : 0;
}

static int restore_pcases(ui_self *s, rk_rd *r)
{
    uint32_t n = rk_rd_u32(r), i;

    for (i = 0; i < n && !r->err; i++) {
        char *k = rd_key(r, &s->pcases);
        ui_pcase *pc;
        if (k == NULL) return -1;
        pc = calloc(1, sizeof(*pc));
        if (pc == NULL) { free(k); return -1; }
        pc->hpos = RK_HEAP_NONE;
        pc->ts = rk_rd_ts(r);
        pc->deadline = rk_rd_time(r);
        pc->unit = rk_rd_str(r, UI_MAX_ID);
        pc->task = rk_rd_str(r, UI_MAX_ID);
        pc->ref = rk_rd_ref(r);
        if (r->err || pc->task == NULL ||
            (pc->ent = rk_map_put(&s->pcases, k, pc, NULL)) == NULL) {
            pcase_free(pc);
            free(k);
            return -1;
        }
        free(k);
        if (rk_heap_push(&s->cheap, pcase_expiry(s, pc), pc) != 0) {
            pcase_drop(s, pc);
            return -1;
        }
    }
    return r->err ? -1 : 0;
}

/* Version 1 only: skip the old (unit, enterprise) -> planned_at index,
 * checking its structure (it is derived from the filings now). */
static int skip_v1_reports(rk_rd *r)
{
    uint32_t n = rk_rd_u32(r), i, j;

    for (i = 0; i < n && !r->err; i++) {
        char *k = rd_id(r);
        uint32_t np;
        free(k);
        np = rk_rd_u32(r);
        if (r->err || np == 0 || np > UI_MAX_PLANNED || (size_t)(r->end - r->p) / 8 < np)
            return -1;
        for (j = 0; j < np; j++)
            (void)rk_rd_i64(r);
    }
    return r->err ? -1 : 0;
}

static int restore_body(ui_self *s, rk_rd *r, uint32_t ver)
{
    if (ver >= UI_SNAP_V3)
        s->armed = rk_rd_time(r);
    if (restore_filings(s, r, ver) != 0 || restore_pscans(s, r) != 0 ||
        restore_pcases(s, r) != 0)
        return -1;
    if (ver >= UI_SNAP_VERSION && rk__open_read(r, &s->open) != 0)
        return -1;
    if (ver == UI_SNAP_V1 && skip_v1_reports(r) != 0)
        return -1;
    return r->err || r->p != r->end ? -1 : 0;
}

static int ui_restore(void *self, const void *data, size_t len,
                      char *err, size_t errlen)
{
    ui_self *s = self;
    rk_rd r;
    uint32_t ver;

    clear_state(s);
    rk_rd_init(&r, data, len);
    ver = rk_rd_u32(&r);
    if (r.err || (ver != UI_SNAP_VERSION && ver != UI_SNAP_V3 && ver != UI_SNAP_V2 &&
                  ver != UI_SNAP_V1)) {
        rk_kit_errf(err, errlen, "unfiled_inspection: unknown snapshot version");
        return -1;
    }
    if (restore_body(s, &r, ver) != 0) {
        clear_state(s);
        rk_kit_errf(err, errlen, "unfiled_inspection: truncated or corrupt snapshot");
        return -1;
    }
    return 0;
}

const rk_detector_ops rk__det_unfiled_inspection = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "unfiled_inspection",
    "inspections without an online filing: unfiled scans, reports and cases, "
    "enterprise mismatches, filings never scanned",
    ui_create,
    ui_reconfigure,
    ui_on_event,
    ui_on_timer,
    ui_on_watermark,
    ui_snapshot,
    ui_restore,
    ui_destroy,
    ui_tracked_keys,
};
