/* detectors/unfiled_inspection.c - inspections made without an online filing.
 *
 * Rules (CONTRACT §4): scan_without_filing, reported_without_filing,
 * case_without_filing, enterprise_mismatch and filed_not_scanned.
 *
 * State, all keyed by strings in rk_maps:
 *   filings   task_id -> the first filing of the task (later duplicates are
 *             ignored): filing ts, planned_at, its scan deadline, unit,
 *             enterprise, entry, and flags (scanned, filed_not_scanned done).
 *             A filing arms the timer "n:<task_id>" at planned_at +
 *             scan_deadline and is dropped once the watermark has passed
 *             planned_at + retention and that timer has fired.
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
 *   reports   "<len>:<unit><enterprise>" -> planned_at values of the
 *             filings of that unit and enterprise, for
 *             reported_without_filing; pruned at planned_at + retention.
 *
 * on_watermark sweeps the maps only when the earliest possible expiry has
 * been reached (next_sweep), so a batch usually costs nothing.
 *
 * reconfigure() changes thresholds only; timers already armed keep their
 * deadlines (each record remembers the deadline it armed). */
#include "riskd/kit.h"
#include "internal.h"

#define UI_SNAP_VERSION 1u
#define UI_MAX_SCANS 20
#define UI_MAX_ID (64 * 1024)
#define UI_MAX_PLANNED (1u << 24)

#define F_SCANNED  1u
#define F_FNS_DONE 2u

typedef struct ui_cfg {
    int64_t grace;
    int64_t tolerance;
    int64_t scan_deadline;
    int64_t retention;
    int64_t cooldown;
} ui_cfg;

typedef struct ui_filing {
    int64_t ts;
    int64_t planned_at;
    int64_t scan_by;                /* planned_at + scan_deadline at filing */
    char *unit;
    char *ent;
    rk_entry_ref ref;
    uint32_t flags;                 /* F_* */
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
    ui_scan scans[UI_MAX_SCANS];    /* oldest first */
} ui_pscan;

typedef struct ui_pcase {
    int64_t ts;
    int64_t deadline;
    char *unit;
    char *task;
    rk_entry_ref ref;
} ui_pcase;

typedef struct ui_report {
    int64_t *planned;
    uint32_t n, cap;
} ui_report;

typedef struct ui_self {
    const rk_host_api *api;
    rk_host *host;
    ui_cfg cfg;
    rk_map filings, pscans, pcases, reports;
    int64_t next_sweep;
} ui_self;

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

static void note_expiry(ui_self *s, int64_t t)
{
    if (t < s->next_sweep) s->next_sweep = t;
}

/* Build "<prefix><id>" in a malloc'ed string; NULL when out of memory. */
static char *timer_key(char prefix, const char *id)
{
    size_t n = strlen(id);
    char *k = malloc(n + 3);
    if (k == NULL) return NULL;
    k[0] = prefix;
    k[1] = ':';
    memcpy(k + 2, id, n + 1);
    return k;
}

static int arm(ui_self *s, int64_t deadline, char prefix, const char *id)
{
    char *k = timer_key(prefix, id);
    int rc;
    if (k == NULL) return -1;
    rc = s->api->timer_set(s->host, deadline, k, 0);
    free(k);
    return rc < 0 ? -1 : 0;
}

/* The reports-map key of (unit, enterprise): length-prefixed so that no
 * pair of ids can collide. */
static char *report_key(const char *unit, const char *ent)
{
    size_t lu = strlen(unit), le = strlen(ent), n = lu + le + 24;
    char *k = malloc(n);
    if (k == NULL) return NULL;
    snprintf(k, n, "%zu:%s%s", lu, unit, ent);
    return k;
}

static void filing_free(void *p)
{
    ui_filing *f = p;
    if (f == NULL) return;
    free(f->unit);
    free(f->ent);
    free(f);
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

static void report_free(void *p)
{
    ui_report *r = p;
    if (r == NULL) return;
    free(r->planned);
    free(r);
}

static void clear_state(ui_self *s)
{
    rk_map_clear(&s->filings, filing_free);
    rk_map_clear(&s->pscans, pscan_free);
    rk_map_clear(&s->pcases, pcase_free);
    rk_map_clear(&s->reports, report_free);
    s->next_sweep = INT64_MAX;
}

static int emit(ui_self *s, const char *rule, rk_severity sev, int64_t ts,
                const rk_subject *subj, const rk_entry_ref *ev, size_t nev,
                int64_t cooldown, const char *summary)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.severity = sev;
    a.ts = ts;
    a.subject = *subj;
    a.value = 0;
    a.threshold = 1;
    a.summary = summary;
    a.evidence = ev;
    a.n_evidence = nev;
    a.cooldown = cooldown;
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
}

/* ===================================================================
 * Configuration
 * =================================================================== */

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
    rk_map_init(&s->filings);
    rk_map_init(&s->pscans);
    rk_map_init(&s->pcases);
    rk_map_init(&s->reports);
    s->next_sweep = INT64_MAX;
    return s;
}

static int ui_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    ui_self *s = self;
    ui_cfg c;
    if (parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    s->cfg = c;
    s->next_sweep = INT64_MIN;      /* retention may have shrunk */
    return 0;
}

static void ui_destroy(void *self)
{
    ui_self *s = self;
    if (s == NULL) return;
    clear_state(s);
    free(s);
}

static size_t ui_tracked_keys(void *self)
{
    ui_self *s = self;
    return s->filings.count + s->pscans.count + s->pcases.count + s->reports.count;
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
    char sum[512];
    memset(&subj, 0, sizeof(subj));
    subj.task_id = task;
    subj.unit_id = f->unit;
    subj.enterprise_id = scanned_ent;
    ev[0] = first;
    ev[1] = second;
    snprintf(sum, sizeof(sum), "Task %.64s was filed for enterprise %.64s but "
             "scanned by enterprise %.64s.", task, f->ent, scanned_ent);
    return emit(s, "enterprise_mismatch", RK_SEV_CRITICAL, ts, &subj, ev, 2,
                s->cfg.cooldown, sum);
}

static int add_report_index(ui_self *s, const ui_filing *f)
{
    char *k = report_key(f->unit, f->ent);
    ui_report *r;
    if (k == NULL) return -1;
    r = rk_map_get(&s->reports, k);
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL || rk_map_put(&s->reports, k, r, NULL) == NULL) {
            free(r);
            free(k);
            return -1;
        }
    }
    free(k);
    if (r->n == r->cap) {
        uint32_t ncap = r->cap ? r->cap * 2 : 4;
        int64_t *p;
        if (ncap > UI_MAX_PLANNED) return -1;
        p = realloc(r->planned, (size_t)ncap * sizeof(*p));
        if (p == NULL) return -1;
        r->planned = p;
        r->cap = ncap;
    }
    r->planned[r->n++] = f->planned_at;
    note_expiry(s, sat_add(f->planned_at, s->cfg.retention));
    return 0;
}

static int on_filed(ui_self *s, const rk_event *ev)
{
    ui_filing *f;
    ui_pscan *ps;
    uint32_t i;

    if (ev->task_id == NULL || ev->unit_id == NULL || ev->enterprise_id == NULL)
        return 0;
    if (rk_map_get(&s->filings, ev->task_id) != NULL)
        return 0;                   /* duplicate filing: the first wins */
    f = calloc(1, sizeof(*f));
    if (f == NULL) return -1;
    f->ts = ev->ts;
    f->planned_at = ev->planned_at;
    f->scan_by = sat_add(ev->planned_at, s->cfg.scan_deadline);
    f->unit = dupstr(ev->unit_id);
    f->ent = dupstr(ev->enterprise_id);
    f->ref = ev->ref;
    if (f->unit == NULL || f->ent == NULL ||
        rk_map_put(&s->filings, ev->task_id, f, NULL) == NULL) {
        filing_free(f);
        return -1;
    }
    note_expiry(s, sat_add(f->planned_at, s->cfg.retention));
    note_expiry(s, f->scan_by);
    if (arm(s, f->scan_by, 'n', ev->task_id) != 0 || add_report_index(s, f) != 0)
        return -1;

    /* Scans that came first: they count for filed_not_scanned when early
     * enough, and their enterprise is checked. Whether the filing came in
     * time for them is decided by their timers, from the filing store. */
    ps = rk_map_get(&s->pscans, ev->task_id);
    if (ps != NULL && !ps->merged) {
        for (i = 0; i < ps->n; i++) {
            const ui_scan *sc = &ps->scans[i];
            if (sc->ts <= f->scan_by)
                f->flags |= F_SCANNED;
            if (!streq(sc->ent, f->ent) &&
                mismatch(s, ev->task_id, f, sc->ent, ev->ts, sc->ref, f->ref) != 0)
                return -1;
        }
        ps->merged = 1;
        note_expiry(s, ps->deadline);
    }
    return 0;
}

static int on_scanned(ui_self *s, const rk_event *ev)
{
    ui_filing *f;
    ui_pscan *ps;
    ui_scan *sc;

    if (ev->task_id == NULL || ev->enterprise_id == NULL)
        return 0;
    f = rk_map_get(&s->filings, ev->task_id);
    if (f != NULL) {
        if (ev->ts <= f->scan_by)
            f->flags |= F_SCANNED;
        if (!streq(ev->enterprise_id, f->ent))
            return mismatch(s, ev->task_id, f, ev->enterprise_id, ev->ts,
                            f->ref, ev->ref);
        return 0;
    }

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
        if (rk_map_put(&s->pscans, ev->task_id, ps, NULL) == NULL) {
            free(ps);
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
        return -1;
    }
    ps->n++;
    if (ev->ts > ps->last_ts || ps->n == 1)
        ps->last_ts = ev->ts;
    note_expiry(s, sat_add(ps->last_ts, s->cfg.retention));
    if (ev->ts > ps->deadline) {
        ps->deadline = sat_add(ev->ts, s->cfg.grace);
        if (arm(s, ps->deadline, 's', ev->task_id) != 0)
            return -1;
    }
    return 0;
}

static int on_reported(ui_self *s, const rk_event *ev)
{
    char *k;
    ui_report *r;
    uint32_t i;
    rk_subject subj;
    char sum[512];

    if (ev->unit_id == NULL || ev->enterprise_id == NULL)
        return 0;
    k = report_key(ev->unit_id, ev->enterprise_id);
    if (k == NULL) return -1;
    r = rk_map_get(&s->reports, k);
    free(k);
    if (r != NULL) {
        for (i = 0; i < r->n; i++) {
            int64_t p = r->planned[i];
            if (p >= sat_add(ev->ts, -s->cfg.tolerance) &&
                p <= sat_add(ev->ts, s->cfg.tolerance))
                return 0;
        }
    }
    memset(&subj, 0, sizeof(subj));
    subj.unit_id = ev->unit_id;
    subj.enterprise_id = ev->enterprise_id;
    snprintf(sum, sizeof(sum), "Enterprise %.64s reported an inspection by unit "
             "%.64s with no filing planned near that time.",
             ev->enterprise_id, ev->unit_id);
    return emit(s, "reported_without_filing", RK_SEV_CRITICAL, ev->ts, &subj,
                &ev->ref, 1, s->cfg.cooldown, sum);
}

static int case_alert(ui_self *s, const char *case_id, const char *unit,
                      const char *task, int64_t ts, rk_entry_ref ref)
{
    rk_subject subj;
    char sum[512];
    memset(&subj, 0, sizeof(subj));
    subj.case_id = case_id;
    subj.unit_id = unit;
    subj.task_id = task;
    if (task != NULL)
        snprintf(sum, sizeof(sum), "Case %.64s of unit %.64s comes from "
                 "inspection task %.64s, which was not filed in time.",
                 case_id, unit ? unit : "?", task);
    else
        snprintf(sum, sizeof(sum), "Case %.64s of unit %.64s comes from an "
                 "inspection but names no filed task.", case_id, unit ? unit : "?");
    return emit(s, "case_without_filing", RK_SEV_WARNING, ts, &subj, &ref, 1,
                s->cfg.cooldown, sum);
}

static int on_case_opened(ui_self *s, const rk_event *ev)
{
    const ui_filing *f;
    ui_pcase *pc;

    if (ev->source != RK_SOURCE_INSPECTION || ev->case_id == NULL)
        return 0;
    if (ev->task_id == NULL)
        return case_alert(s, ev->case_id, ev->unit_id, NULL, ev->ts, ev->ref);
    f = rk_map_get(&s->filings, ev->task_id);
    if (f != NULL && f->ts <= sat_add(ev->ts, s->cfg.grace))
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
    if ((ev->unit_id != NULL && pc->unit == NULL) || pc->task == NULL ||
        rk_map_put(&s->pcases, ev->case_id, pc, NULL) == NULL) {
        pcase_free(pc);
        return -1;
    }
    note_expiry(s, sat_add(pc->deadline, s->cfg.retention));
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

static int timer_fns(ui_self *s, int64_t deadline, const char *task)
{
    ui_filing *f = rk_map_get(&s->filings, task);
    rk_subject subj;
    char sum[512];
    if (f == NULL || f->scan_by != deadline || (f->flags & F_FNS_DONE))
        return 0;
    f->flags |= F_FNS_DONE;
    note_expiry(s, sat_add(f->planned_at, s->cfg.retention));
    if (f->flags & F_SCANNED)
        return 0;
    memset(&subj, 0, sizeof(subj));
    subj.task_id = task;
    subj.unit_id = f->unit;
    subj.enterprise_id = f->ent;
    snprintf(sum, sizeof(sum), "Inspection task %.64s of unit %.64s was filed "
             "but not scanned by its deadline.", task, f->unit);
    return emit(s, "filed_not_scanned", RK_SEV_INFO, deadline, &subj, &f->ref,
                1, 0, sum);
}

static int timer_scan(ui_self *s, int64_t deadline, const char *task)
{
    ui_pscan *ps = rk_map_get(&s->pscans, task);
    const ui_filing *f = rk_map_get(&s->filings, task);
    rk_entry_ref ev[UI_MAX_SCANS];
    const char *ent = NULL, *unit = NULL;
    size_t n = 0;
    uint32_t i;
    rk_subject subj;
    char sum[512];

    if (ps == NULL)
        return 0;
    if (deadline > ps->fired)
        ps->fired = deadline;
    note_expiry(s, ps->merged ? ps->deadline : sat_add(ps->last_ts, s->cfg.retention));
    if (f != NULL && f->ts <= deadline)
        return 0;                   /* filed within grace */
    for (i = 0; i < ps->n; i++) {
        const ui_scan *sc = &ps->scans[i];
        if (sc->ts > deadline)
            continue;
        ev[n++] = sc->ref;
        ent = sc->ent;
        if (sc->unit != NULL) unit = sc->unit;
    }
    if (n == 0)
        return 0;
    memset(&subj, 0, sizeof(subj));
    subj.task_id = task;
    subj.enterprise_id = ent;
    subj.unit_id = unit;
    snprintf(sum, sizeof(sum), "Task %.64s was scanned by enterprise %.64s but "
             "no filing of it arrived in time.", task, ent);
    return emit(s, "scan_without_filing", RK_SEV_WARNING, deadline, &subj, ev, n,
                s->cfg.cooldown, sum);
}

static int timer_case(ui_self *s, int64_t deadline, const char *case_id)
{
    ui_pcase *pc = rk_map_get(&s->pcases, case_id);
    const ui_filing *f;
    int rc = 0;
    if (pc == NULL || pc->deadline != deadline)
        return 0;
    f = rk_map_get(&s->filings, pc->task);
    if (f == NULL || f->ts > deadline)
        rc = case_alert(s, case_id, pc->unit, pc->task, deadline, pc->ref);
    pcase_free(rk_map_del(&s->pcases, case_id));
    return rc;
}

static int ui_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    ui_self *s = self;
    (void)arg;
    if (key == NULL || key[0] == '\0' || key[1] != ':')
        return 0;
    switch (key[0]) {
    case 'n': return timer_fns(s, deadline, key + 2);
    case 's': return timer_scan(s, deadline, key + 2);
    case 'c': return timer_case(s, deadline, key + 2);
    default:  return 0;
    }
}

/* ===================================================================
 * Expiry
 * =================================================================== */

static void ui_on_watermark(void *self, int64_t now)
{
    ui_self *s = self;
    rk_map_entry *e, *next;
    size_t b;
    int64_t ret = s->cfg.retention;

    if (now <= s->next_sweep)
        return;
    s->next_sweep = INT64_MAX;

    for (e = rk_map_first(&s->filings, &b); e != NULL; e = next) {
        ui_filing *f = e->value;
        int64_t exp = sat_add(f->planned_at, ret);
        next = rk_map_next(&s->filings, &b, e);
        /* Wait for the filed_not_scanned timer (the daemon may call this
         * before firing timers; firing it notes the expiry again), unless
         * it is long overdue. */
        if (!(f->flags & F_FNS_DONE) && now <= sat_add(f->scan_by, ret)) {
            note_expiry(s, sat_add(f->scan_by, ret));
            continue;
        }
        if (now > exp)
            filing_free(rk_map_del(&s->filings, e->key));
        else
            note_expiry(s, exp);
    }
    for (e = rk_map_first(&s->pscans, &b); e != NULL; e = next) {
        ui_pscan *ps = e->value;
        int64_t exp = ps->merged ? ps->deadline : sat_add(ps->last_ts, ret);
        next = rk_map_next(&s->pscans, &b, e);
        /* Likewise wait for the latest round's timer. */
        if (ps->fired < ps->deadline && now <= sat_add(ps->deadline, ret)) {
            note_expiry(s, sat_add(ps->deadline, ret));
            continue;
        }
        if (now > exp)
            pscan_free(rk_map_del(&s->pscans, e->key));
        else
            note_expiry(s, exp);
    }
    for (e = rk_map_first(&s->pcases, &b); e != NULL; e = next) {
        ui_pcase *pc = e->value;
        int64_t exp = sat_add(pc->deadline, ret);  /* safety net only */
        next = rk_map_next(&s->pcases, &b, e);
        if (now > exp)
            pcase_free(rk_map_del(&s->pcases, e->key));
        else
            note_expiry(s, exp);
    }
    for (e = rk_map_first(&s->reports, &b); e != NULL; e = next) {
        ui_report *r = e->value;
        uint32_t i, j = 0;
        next = rk_map_next(&s->reports, &b, e);
        for (i = 0; i < r->n; i++) {
            int64_t exp = sat_add(r->planned[i], ret);
            if (now > exp) continue;
            note_expiry(s, exp);
            r->planned[j++] = r->planned[i];
        }
        r->n = j;
        if (r->n == 0)
            report_free(rk_map_del(&s->reports, e->key));
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
    rk_buf_put_u32(out, (uint32_t)s->filings.count);
    for (e = rk_map_first(&s->filings, &b); e; e = rk_map_next(&s->filings, &b, e)) {
        const ui_filing *f = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_i64(out, f->ts);
        rk_buf_put_i64(out, f->planned_at);
        rk_buf_put_i64(out, f->scan_by);
        rk_buf_put_str(out, f->unit);
        rk_buf_put_str(out, f->ent);
        rk_buf_put_ref(out, f->ref);
        rk_buf_put_u32(out, f->flags);
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
    rk_buf_put_u32(out, (uint32_t)s->reports.count);
    for (e = rk_map_first(&s->reports, &b); e; e = rk_map_next(&s->reports, &b, e)) {
        const ui_report *r = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_u32(out, r->n);
        for (i = 0; i < r->n; i++)
            rk_buf_put_i64(out, r->planned[i]);
    }
    return out->oom ? -1 : 0;
}

/* Read one map key; a NULL key, an error or a key already present fails. */
static char *rd_key(rk_rd *r, const rk_map *m)
{
    char *k = rk_rd_str(r, UI_MAX_ID);
    if (k == NULL || r->err || rk_map_get(m, k) != NULL) {
        free(k);
        r->err = 1;
        return NULL;
    }
    return k;
}

static int restore_body(ui_self *s, rk_rd *r)
{
    uint32_t n, i, j;

    n = rk_rd_u32(r);
    for (i = 0; i < n && !r->err; i++) {
        char *k = rd_key(r, &s->filings);
        ui_filing *f;
        if (k == NULL) return -1;
        f = calloc(1, sizeof(*f));
        if (f == NULL) { free(k); return -1; }
        f->ts = rk_rd_i64(r);
        f->planned_at = rk_rd_i64(r);
        f->scan_by = rk_rd_i64(r);
        f->unit = rk_rd_str(r, UI_MAX_ID);
        f->ent = rk_rd_str(r, UI_MAX_ID);
        f->ref = rk_rd_ref(r);
        f->flags = rk_rd_u32(r);
        if (r->err || f->unit == NULL || f->ent == NULL ||
            rk_map_put(&s->filings, k, f, NULL) == NULL) {
            filing_free(f);
            free(k);
            return -1;
        }
        free(k);
    }
    n = rk_rd_u32(r);
    for (i = 0; i < n && !r->err; i++) {
        char *k = rd_key(r, &s->pscans);
        ui_pscan *ps;
        uint32_t ns;
        if (k == NULL) return -1;
        ps = calloc(1, sizeof(*ps));
        if (ps == NULL) { free(k); return -1; }
        ps->deadline = rk_rd_i64(r);
        ps->fired = rk_rd_i64(r);
        ps->last_ts = rk_rd_i64(r);
        ps->merged = rk_rd_u32(r) ? 1 : 0;
        ns = rk_rd_u32(r);
        if (ns > UI_MAX_SCANS) r->err = 1;
        for (j = 0; j < ns && !r->err; j++) {
            ui_scan *sc = &ps->scans[j];
            sc->ts = rk_rd_i64(r);
            sc->ref = rk_rd_ref(r);
            sc->ent = rk_rd_str(r, UI_MAX_ID);
            sc->unit = rk_rd_str(r, UI_MAX_ID);
            ps->n = j + 1;
            if (sc->ent == NULL) r->err = 1;
        }
        if (r->err || rk_map_put(&s->pscans, k, ps, NULL) == NULL) {
            pscan_free(ps);
            free(k);
            return -1;
        }
        free(k);
    }
    n = rk_rd_u32(r);
    for (i = 0; i < n && !r->err; i++) {
        char *k = rd_key(r, &s->pcases);
        ui_pcase *pc;
        if (k == NULL) return -1;
        pc = calloc(1, sizeof(*pc));
        if (pc == NULL) { free(k); return -1; }
        pc->ts = rk_rd_i64(r);
        pc->deadline = rk_rd_i64(r);
        pc->unit = rk_rd_str(r, UI_MAX_ID);
        pc->task = rk_rd_str(r, UI_MAX_ID);
        pc->ref = rk_rd_ref(r);
        if (r->err || pc->task == NULL ||
            rk_map_put(&s->pcases, k, pc, NULL) == NULL) {
            pcase_free(pc);
            free(k);
            return -1;
        }
        free(k);
    }
    n = rk_rd_u32(r);
    for (i = 0; i < n && !r->err; i++) {
        char *k = rd_key(r, &s->reports);
        ui_report *rp;
        uint32_t np;
        if (k == NULL) return -1;
        np = rk_rd_u32(r);
        /* Each value takes 8 bytes: refuse counts the data cannot hold. */
        if (np == 0 || np > UI_MAX_PLANNED || (size_t)(r->end - r->p) / 8 < np) {
            free(k);
            return -1;
        }
        rp = calloc(1, sizeof(*rp));
        if (rp != NULL)
            rp->planned = malloc((size_t)np * sizeof(*rp->planned));
        if (rp == NULL || rp->planned == NULL) {
            report_free(rp);
            free(k);
            return -1;
        }
        rp->cap = np;
        for (j = 0; j < np; j++)
            rp->planned[rp->n++] = rk_rd_i64(r);
        if (r->err || rk_map_put(&s->reports, k, rp, NULL) == NULL) {
            report_free(rp);
            free(k);
            return -1;
        }
        free(k);
    }
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
    if (r.err || ver != UI_SNAP_VERSION) {
        rk_kit_errf(err, errlen, "unfiled_inspection: unknown snapshot version");
        return -1;
    }
    if (restore_body(s, &r) != 0) {
        clear_state(s);
        rk_kit_errf(err, errlen, "unfiled_inspection: truncated or corrupt snapshot");
        return -1;
    }
    s->next_sweep = INT64_MIN;
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
