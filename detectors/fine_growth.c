/* detectors/fine_growth.c - a unit's fines growing far above its history.
 *
 * Rule `growth` (riskd-detectors(7)). Every case.decided with a unit_id adds
 * fine + confiscation to the unit's per-bucket sums. Time is cut into
 * buckets of size b, the largest of 1d, 1h, 1m and 1s that divides `period`
 * (else 1ms), aligned to the epoch in UTC (bucket = floor(ts / b)); a period
 * is n = period / b buckets (at most 1000). Each unit keeps a ring of
 * (baseline_periods + 1) * n buckets {sum, count} ending at the newest
 * bucket it has seen; moving forward clears the buckets it skips, and an
 * event older than the ring is ignored. So memory and the cost of an event
 * depend on the configuration, never on history.
 *
 * At each case.decided (bucket B of its ts): current = buckets B-n+1..B;
 * baseline period k (1..P) = buckets B-(k+1)n+1..B-kn. The mean and the
 * population standard deviation over the P periods (an empty one counts as
 * 0) are compared as the contract says; periods with at least one event are
 * "non-empty" for min_history. Evidence is the unit's decided cases of the
 * current period, from a ring of its last 20.
 *
 * Amendments (RK_EVF_AMENDED: a corrected decision of the same case_id)
 * replace the earlier decision: its amount is subtracted from its unit's
 * bucket and the new one added, then the rule is evaluated as for a new
 * decision. For that every decision is remembered (case_id -> unit, ts,
 * amount: about 100 bytes with the map entry) for as long as its bucket can
 * be in a ring, (baseline_periods + 1) * period after its ts, and dropped
 * from an expiry heap after that: memory grows with the decisions of that
 * span, not with history.
 *
 * A unit is freed in on_watermark once every bucket of its ring has left
 * the window. reconfigure() keeps the state unless `period` or
 * `baseline_periods` changes: the bucket layout then no longer fits, and all
 * units are reset (the history is rebuilt from new events). A snapshot taken
 * under another period or baseline_periods is likewise restored as empty.
 *
 * Lifecycle (detectors/lifecycle.c): a growth alert stays open per unit
 * until the condition has stopped holding for alerts.keep_firing_for:
 * stops_at() walks the later buckets where a non-empty bucket crosses a
 * period boundary; a timer "r:<unit>" resolves. An amendment retracts an
 * open alert of the unit's newest bucket when the condition, with the
 * amended amount, does not hold there. Snapshot version 3 appends the open
 * alerts (rk__open_put). */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"           /* pr_say_kept: the reasons' "for 1 hour" */

#define FG_SNAP_VERSION 3u          /* 2: + the decisions, for amendments;
                                       3: + the open growth alerts */
#define FG_SNAP_V2 2u
#define FG_SNAP_V1 1u
#define FG_MAX_BUCKETS_PER_PERIOD 1000
#define FG_EVIDENCE 20
#define FG_MAX_ID (64 * 1024)
#define FG_MAX_ABS_TS (INT64_C(1) << 60)

typedef struct fg_cfg {
    int64_t period;
    int64_t bucket;                 /* b */
    int64_t nper;                   /* n = period / b */
    int64_t periods;                /* P = baseline_periods */
    int64_t min_history;
    double min_growth;
    double min_z;
    double min_amount;
    int64_t cooldown;
} fg_cfg;

typedef struct fg_bucket {
    double sum;
    uint32_t count;
    uint32_t pad;
} fg_bucket;

typedef struct fg_ev {
    int64_t ts;
    rk_entry_ref ref;
} fg_ev;

typedef struct fg_unit {
    int64_t top;                    /* newest bucket index in the ring */
    fg_bucket *ring;                /* (P + 1) * n, index i at i mod len */
    uint32_t nev;                   /* decided cases in evs, oldest first */
    fg_ev evs[FG_EVIDENCE];
} fg_unit;

/* A decision, kept so that an amendment can take its amount back. */
typedef struct fg_case {
    uint32_t hpos;                  /* in fg_self.cheap */
    int64_t ts;
    double amount;
    rk_map_entry *ent;              /* in fg_self.cases (its key: case_id) */
    char unit[];
} fg_case;

typedef struct fg_self {
    const rk_host_api *api;
    rk_host *host;
    fg_cfg cfg;
    rk_map units;
    int64_t next_sweep;
    rk_map cases;                   /* case_id -> fg_case */
    rk_heap cheap;                  /* fg_case by expiry */
    rk__openset open;               /* unit -> open growth alerts */
} fg_self;

/* ===================================================================
 * Helpers
 * =================================================================== */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static int64_t ring_len(const fg_cfg *c)
{
    return (c->periods + 1) * c->nper;
}

static fg_bucket *slot(const fg_self *s, fg_unit *u, int64_t idx)
{
    int64_t len = ring_len(&s->cfg);
    int64_t m = idx % len;
    if (m < 0) m += len;
    return &u->ring[m];
}

/* The first time (ms) at which every bucket of u has left the window. */
static int64_t unit_expiry(const fg_self *s, const fg_unit *u)
{
    int64_t len = ring_len(&s->cfg);
    if (u->top > INT64_MAX / s->cfg.bucket - len)
        return INT64_MAX;
    return (u->top + len) * s->cfg.bucket;
}

static void unit_free(void *p)
{
    fg_unit *u = p;
    if (u == NULL) return;
    free(u->ring);
    free(u);
}

/* When a decision's bucket has left every ring it could be in. */
static int64_t case_expiry(const fg_self *s, int64_t ts)
{
    int64_t len = ring_len(&s->cfg), b = floor_div(ts, s->cfg.bucket);
    return (b + len) * s->cfg.bucket;
}

static void cases_clear(fg_self *s)
{
    rk_map_clear(&s->cases, free);
    rk_heap_free(&s->cheap);
    rk_heap_init(&s->cheap, offsetof(fg_case, hpos));
}

static void case_drop(fg_self *s, fg_case *c)
{
    rk_heap_remove(&s->cheap, c);
    free(rk_map_del(&s->cases, c->ent->key));
}

/* Remember decision case_id (replacing an earlier one). 0 or -1. */
static int case_put(fg_self *s, const char *case_id, const char *unit, int64_t ts,
                    double amount)
{
    size_t n = strlen(unit) + 1;
    fg_case *c = rk_map_get(&s->cases, case_id);
    if (c != NULL)
        case_drop(s, c);
    if ((c = malloc(sizeof(*c) + n)) == NULL)
        return -1;
    c->hpos = RK_HEAP_NONE;
    c->ts = ts;
    c->amount = amount;
    memcpy(c->unit, unit, n);
    if ((c->ent = rk_map_put(&s->cases, case_id, c, NULL)) == NULL) {
        free(c);
        return -1;
    }
    if (rk_heap_push(&s->cheap, case_expiry(s, ts), c) != 0) {
        free(rk_map_del(&s->cases, case_id));
        return -1;
    }
    return 0;
}

static fg_unit *unit_new(const fg_self *s)
{
    fg_unit *u = calloc(1, sizeof(*u));
    if (u == NULL) return NULL;
    u->ring = calloc((size_t)ring_len(&s->cfg), sizeof(*u->ring));
    if (u->ring == NULL) {
        free(u);
        return NULL;
    }
    return u;
}

/* ===================================================================
 * Configuration
 * =================================================================== */

static const char *const fg_keys[] = {
    "period", "baseline_periods", "min_history", "min_growth", "min_z",
    "min_amount", "cooldown", NULL
};

/* Validate cfg into *out; returns 0, or -1 with err naming the key. */
static int parse_cfg(const json_t *cfg, fg_cfg *out, char *err, size_t errlen)
{
    static const int64_t sizes[] = { RK_DAY, RK_HOUR, RK_MINUTE, RK_SECOND, 1 };
    long long p, h;
    size_t i;

    if (rk_kit_cfg_known_keys(cfg, "", fg_keys, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "period", RK_SECOND, 30 * RK_DAY, &out->period, err, errlen) != 0 ||
        rk_kit_cfg_int(cfg, "", "baseline_periods", 1, 52, 6, &p, err, errlen) != 0 ||
        rk_kit_cfg_int(cfg, "", "min_history", 0, 52, 3, &h, err, errlen) != 0 ||
        rk_kit_cfg_double(cfg, "", "min_growth", 0, 1e6, 0.5, &out->min_growth, err, errlen) != 0 ||
        rk_kit_cfg_double(cfg, "", "min_z", 0, 1e6, 2.0, &out->min_z, err, errlen) != 0 ||
        rk_kit_cfg_double(cfg, "", "min_amount", 0, 1e15, 50000, &out->min_amount, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "cooldown", 0, out->period, &out->cooldown, err, errlen) != 0)
        return -1;
    if (h > p) {
        rk_kit_errf(err, errlen, "min_history: must not exceed baseline_periods");
        return -1;
    }
    out->periods = p;
    out->min_history = h;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (out->period % sizes[i] == 0) {
            out->bucket = sizes[i];
            break;
        }
    }
    out->nper = out->period / out->bucket;
    if (out->nper > FG_MAX_BUCKETS_PER_PERIOD) {
        char d[32];
        rk_kit_format_duration(out->bucket, d, sizeof(d));
        rk_kit_errf(err, errlen, "period: expected a duration that is at most "
                    "%d buckets of %s (a whole number of days, hours, minutes "
                    "or seconds)", FG_MAX_BUCKETS_PER_PERIOD, d);
        return -1;
    }
    return 0;
}

/* ===================================================================
 * Lifecycle
 * =================================================================== */

static void *fg_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    fg_self *s;
    fg_cfg c;
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
    rk_map_init(&s->units);
    rk_map_init(&s->cases);
    rk__open_init(&s->open);
    rk__open_bind(&s->open, host, "growth");
    rk_heap_init(&s->cheap, offsetof(fg_case, hpos));
    s->next_sweep = INT64_MAX;
    return s;
}

static int fg_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    fg_self *s = self;
    fg_cfg c;
    if (parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    if (c.period != s->cfg.period || c.periods != s->cfg.periods) {
        rk_map_clear(&s->units, unit_free);
        cases_clear(s);
        s->next_sweep = INT64_MAX;
    }
    s->cfg = c;
    return 0;
}

static void fg_destroy(void *self)
{
    fg_self *s = self;
    if (s == NULL) return;
    rk_map_clear(&s->units, unit_free);
    cases_clear(s);
    rk__open_clear(&s->open);
    free(s);
}

static size_t fg_tracked_keys(void *self)
{
    return ((fg_self *)self)->units.count;
}

/* ===================================================================
 * The rule
 * =================================================================== */

/* Add amount at bucket idx to u, moving the ring forward when needed.
 * Returns 0, or 1 when the bucket is older than the ring (ignored). */
static int unit_add(fg_self *s, fg_unit *u, int64_t idx, double amount)
{
    int64_t len = ring_len(&s->cfg), i, from;
    fg_bucket *bk;
    if (idx > u->top) {
        from = idx - u->top > len ? idx - len + 1 : u->top + 1;
        for (i = from; i <= idx; i++) {
            bk = slot(s, u, i);
            bk->sum = 0;
            bk->count = 0;
        }
        u->top = idx;
    } else if (idx <= u->top - len) {
        return 1;
    }
    bk = slot(s, u, idx);
    bk->sum += amount;
    bk->count++;
    return 0;
}

/* Take amount at bucket idx back from u (an amended decision). Nothing
 * when the bucket has left the ring. */
static void unit_sub(fg_self *s, fg_unit *u, int64_t idx, double amount)
{
    fg_bucket *bk;
    if (idx > u->top || idx <= u->top - ring_len(&s->cfg))
        return;
    bk = slot(s, u, idx);
    bk->sum -= amount;
    if (bk->count > 0)
        bk->count--;
    if (bk->count == 0 || bk->sum < 0)
        bk->sum = 0;                /* no rounding residue in an empty bucket */
}

/* An amendment: take the earlier decision of ev->case_id back. */
static void take_back(fg_self *s, const rk_event *ev)
{
    fg_case *c = ev->case_id ? rk_map_get(&s->cases, ev->case_id) : NULL;
    fg_unit *u;
    if (c == NULL)
        return;
    u = rk_map_get(&s->units, c->unit);
    if (u != NULL)
        unit_sub(s, u, floor_div(c->ts, s->cfg.bucket), c->amount);
    case_drop(s, c);
}

/* Sum and count of buckets lo..hi of u (buckets outside the ring are
 * empty). */
static void range_sum(const fg_self *s, fg_unit *u, int64_t lo, int64_t hi,
                      double *sum, uint32_t *count)
{
    int64_t len = ring_len(&s->cfg), i;
    *sum = 0;
    *count = 0;
    if (lo <= u->top - len) lo = u->top - len + 1;
    if (hi > u->top) hi = u->top;
    for (i = lo; i <= hi; i++) {
        const fg_bucket *bk = slot(s, u, i);
        *sum += bk->sum;
        *count += bk->count;
    }
}

static void push_evidence(fg_unit *u, int64_t ts, rk_entry_ref ref)
{
    if (u->nev == FG_EVIDENCE) {
        memmove(&u->evs[0], &u->evs[1], (FG_EVIDENCE - 1) * sizeof(u->evs[0]));
        u->nev--;
    }
    u->evs[u->nev].ts = ts;
    u->evs[u->nev].ref = ref;
    u->nev++;
}

static int evaluate(fg_self *s, fg_unit *u, const rk_event *ev, int64_t bidx)
{
    const fg_cfg *c = &s->cfg;
    int64_t n = c->nper, k, lo;
    double cur, mean = 0, var = 0, sd, sums[52], need_growth, threshold;
    uint32_t cnt, nonempty = 0;
    rk_entry_ref evid[FG_EVIDENCE];
    size_t nevid = 0;
    uint32_t i;
    rk_alert a;
    rk_say t;

    range_sum(s, u, bidx - n + 1, bidx, &cur, &cnt);
    for (k = 1; k <= c->periods; k++) {
        range_sum(s, u, bidx - (k + 1) * n + 1, bidx - k * n, &sums[k - 1], &cnt);
        if (cnt > 0) nonempty++;
        mean += sums[k - 1];
    }
    mean /= (double)c->periods;
    for (k = 0; k < c->periods; k++)
        var += (sums[k] - mean) * (sums[k] - mean);
    sd = sqrt(var / (double)c->periods);

    need_growth = (1 + c->min_growth) * mean;
    if ((int64_t)nonempty < c->min_history || cur < c->min_amount ||
        cur < need_growth)
        return 0;
    if (sd != 0 && (cur - mean) / sd < c->min_z)
        return 0;

    threshold = c->min_amount;
    if (need_growth > threshold) threshold = need_growth;
    if (sd > 0 && mean + c->min_z * sd > threshold) threshold = mean + c->min_z * sd;

    lo = (bidx - n + 1) * c->bucket;
    for (i = 0; i < u->nev; i++) {
        if (u->evs[i].ts >= lo && floor_div(u->evs[i].ts, c->bucket) <= bidx)
            evid[nevid++] = u->evs[i].ref;
    }

    memset(&a, 0, sizeof(a));
    a.rule = "growth";
    a.severity = cur >= (1 + 2 * c->min_growth) * mean ? RK_SEV_CRITICAL : RK_SEV_WARNING;
    a.ts = ev->ts;
    a.subject.unit_id = ev->unit_id;
    a.value = cur;
    a.threshold = threshold;
    rk_say_init(&t, s->api, s->host);
    rk_say_who(&t, "unit", ev->unit_id, 1);
    if (t.en) {
        rk_say_f(&t, " imposed ");
        rk_say_yuan(&t, cur);
        rk_say_f(&t, " of fines and confiscations ");
        rk_say_window(&t, c->period);
        rk_say_f(&t, ", against an average of ");
        rk_say_yuan(&t, mean);
        rk_say_f(&t, " per ");
        rk_say_span(&t, c->period);
        rk_say_f(&t, " over the %lld periods before (threshold ", (long long)c->periods);
        rk_say_yuan(&t, threshold);
        rk_say_f(&t, ").");
    } else {
        rk_say_window(&t, c->period);
        rk_say_f(&t, "罚没金额");
        rk_say_yuan(&t, cur);
        rk_say_f(&t, "，此前%lld期（每期", (long long)c->periods);
        rk_say_span(&t, c->period);
        rk_say_f(&t, "）平均每期");
        rk_say_yuan(&t, mean);
        rk_say_f(&t, "（阈值");
        rk_say_yuan(&t, threshold);
        rk_say_f(&t, "）");
    }
    a.summary = rk_say_text(&t);
    a.evidence = evid;
    a.n_evidence = nevid;
    a.cooldown = c->cooldown;
    return s->api->emit(s->host, &a);
}

/* ===================================================================
 * Lifecycle: growth alerts resolve once the condition has stopped holding
 * for keep_firing_for; an amendment retracts an alert of the unit's newest
 * bucket when, with the amended amount, the condition never held.
 * =================================================================== */

/* Does the rule's condition hold for u at bucket bidx (the ring as it is;
 * buckets beyond top are empty)? */
static int cond_at(const fg_self *s, fg_unit *u, int64_t bidx)
{
    const fg_cfg *c = &s->cfg;
    int64_t n = c->nper, k;
    double cur, mean = 0, var = 0, sd, sums[52];
    uint32_t cnt, nonempty = 0;

    range_sum(s, u, bidx - n + 1, bidx, &cur, &cnt);
    for (k = 1; k <= c->periods; k++) {
        range_sum(s, u, bidx - (k + 1) * n + 1, bidx - k * n, &sums[k - 1], &cnt);
        if (cnt > 0) nonempty++;
        mean += sums[k - 1];
    }
    mean /= (double)c->periods;
    for (k = 0; k < c->periods; k++)
        var += (sums[k] - mean) * (sums[k] - mean);
    sd = sqrt(var / (double)c->periods);
    if ((int64_t)nonempty < c->min_history || cur < c->min_amount ||
        cur < (1 + c->min_growth) * mean)
        return 0;
    return !(sd != 0 && (cur - mean) / sd < c->min_z);
}

/* When the condition, holding at bucket bidx, stops holding without new
 * decisions: the start of the first later bucket where it fails. It can
 * only change where a non-empty bucket crosses a period boundary. */
static int64_t stops_at(const fg_self *s, fg_unit *u, int64_t bidx)
{
    int64_t n = s->cfg.nper, len = ring_len(&s->cfg), b, k;
    for (b = bidx + 1; b <= bidx + len; b++) {
        int moved = 0;
        for (k = 1; k <= s->cfg.periods + 1 && !moved; k++) {
            double sum;
            uint32_t cnt;
            range_sum(s, u, b - k * n, b - k * n, &sum, &cnt);
            moved = cnt > 0;
        }
        if (moved && !cond_at(s, u, b))
            return b > INT64_MAX / s->cfg.bucket ? INT64_MAX : b * s->cfg.bucket;
    }
    return INT64_MAX;
}

static int fg_arm(fg_self *s, const char *unit, int64_t stops)
{
    int64_t at;
    char k[FG_MAX_ID + 3];
    if (!rk__open_due(&s->open, unit, stops, s->api->keep_firing_for(s->host), &at))
        return 0;
    snprintf(k, sizeof(k), "r:%s", unit);
    return s->api->timer_set(s->host, at, k, 0) < 0 ? -1 : 0;
}

/* Resolve every open growth alert of unit at deadline. */
static int fg_resolve(fg_self *s, const char *unit, int64_t deadline)
{
    const rk__openrec *r = rk__open_get(&s->open, unit);
    rk_say t;
    uint32_t i;
    int rc = 0;
    if (r == NULL)
        return 0;
    rk_say_init(&t, s->api, s->host);
    rk_say_who(&t, "unit", unit, 1);
    if (t.en) {
        rk_say_f(&t, "'s fines and confiscations ");
        rk_say_window(&t, s->cfg.period);
        rk_say_f(&t, " have been back within the growth threshold");
    } else {
        rk_say_window(&t, s->cfg.period);
        rk_say_f(&t, "的罚没金额已回落到增长阈值以内");
    }
    pr_say_kept(&t);
    for (i = 0; i < r->n; i++) {
        rk_alert a;
        memset(&a, 0, sizeof(a));
        a.rule = "growth";
        a.ts = r->a[i].ts;
        a.subject.unit_id = unit;
        a.status = RK_ALERT_RESOLVED;
        a.reason = rk_say_text(&t);
        a.change_ts = deadline;
        rk__open_prime(&s->open, &r->a[i]);
        if (s->api->emit(s->host, &a) < 0)
            rc = -1;
    }
    if (rc == 0)
        rk__open_drop(&s->open, unit);
    return rc;
}

static int fg_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    fg_self *s = self;
    const rk__openrec *r;
    (void)arg;
    if (strncmp(key, "r:", 2) != 0 || (r = rk__open_get(&s->open, key + 2)) == NULL ||
        r->resolve_at != deadline)
        return 0;
    return fg_resolve(s, key + 2, deadline);
}

/* An amendment of a decision of u at ev: retract the open alerts of the
 * unit's newest bucket (whose whole history the ring still holds) at which
 * the condition, with the amended amount, does not hold. */
static int fg_retract(fg_self *s, fg_unit *u, const rk_event *ev)
{
    rk__openrec *r = rk__open_get(&s->open, ev->unit_id);
    uint32_t i;
    int rc = 0;
    rk_say t;
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "An amended decision shows the fines and confiscations of ");
        rk_say_who(&t, "unit", ev->unit_id, 0);
        rk_say_f(&t, " never grew past the threshold.");
    } else {
        rk_say_f(&t, "更正后的处罚决定表明，");
        rk_say_who(&t, "unit", ev->unit_id, 0);
        rk_say_f(&t, "的罚没金额从未超过增长阈值。");
    }
    for (i = 0; r != NULL && i < r->n; ) {
        rk_alert a;
        int64_t ab = floor_div(r->a[i].ts, s->cfg.bucket);
        if (ab != u->top || cond_at(s, u, ab)) {
            i++;
            continue;
        }
        memset(&a, 0, sizeof(a));
        a.rule = "growth";
        a.ts = r->a[i].ts;
        a.subject.unit_id = ev->unit_id;
        a.status = RK_ALERT_RETRACTED;
        a.reason = rk_say_text(&t);
        a.change_ts = ev->ts;
        a.evidence = &ev->ref;
        a.n_evidence = 1;
        rk__open_prime(&s->open, &r->a[i]);
        if (s->api->emit(s->host, &a) < 0)
            rc = -1;
        rk__open_remove(&s->open, r, i);
    }
    if (r != NULL && r->n == 0)
        rk__open_drop(&s->open, ev->unit_id);
    return rc;
}

static int fg_on_event(void *self, const rk_event *ev)
{
    fg_self *s = self;
    const rk__openrec *r;
    fg_unit *u;
    double amount;
    int64_t bidx;
    int rc;

    if (ev->type != RK_EV_CASE_DECIDED)
        return 0;
    /* A resolve time already past in event time (the timer held back by
     * another stream): resolve first, as the timer would have. */
    if (ev->unit_id != NULL && (r = rk__open_get(&s->open, ev->unit_id)) != NULL &&
        r->resolve_at < ev->ts && fg_resolve(s, ev->unit_id, r->resolve_at) != 0)
        return -1;
    if (ev->flags & RK_EVF_AMENDED)
        take_back(s, ev);
    if (ev->unit_id == NULL)
        return 0;
    /* Far outside any real time, bucket arithmetic could overflow. */
    if (ev->ts < -FG_MAX_ABS_TS || ev->ts > FG_MAX_ABS_TS)
        return 0;
    amount = ev->fine + ev->confiscation;
    if (!isfinite(amount) || amount < 0)
        return 0;
    bidx = floor_div(ev->ts, s->cfg.bucket);
    u = rk_map_get(&s->units, ev->unit_id);
    if (u == NULL) {
        u = unit_new(s);
        if (u == NULL) return -1;
        u->top = bidx;
        if (rk_map_put(&s->units, ev->unit_id, u, NULL) == NULL) {
            unit_free(u);
            return -1;
        }
    }
    if (unit_add(s, u, bidx, amount) != 0)
        return 0;                   /* older than the ring */
    if (ev->case_id != NULL && case_put(s, ev->case_id, ev->unit_id, ev->ts, amount) != 0)
        return -1;
    push_evidence(u, ev->ts, ev->ref);
    if (unit_expiry(s, u) < s->next_sweep)
        s->next_sweep = unit_expiry(s, u);
    if ((ev->flags & RK_EVF_AMENDED) && fg_retract(s, u, ev) != 0)
        return -1;
    rc = evaluate(s, u, ev, bidx);
    if (rc < 0 || (rc == 1 && rk__open_add(&s->open, ev->unit_id, ev->ts, NULL) != 0))
        return -1;
    if ((r = rk__open_get(&s->open, ev->unit_id)) == NULL)
        return 0;
    if (cond_at(s, u, bidx))
        return fg_arm(s, ev->unit_id, stops_at(s, u, bidx));
    if (r->resolve_at == INT64_MAX || r->resolve_at - s->api->keep_firing_for(s->host) > ev->ts)
        return fg_arm(s, ev->unit_id, ev->ts);      /* it stopped holding now */
    return 0;
}

static void fg_on_watermark(void *self, int64_t now)
{
    fg_self *s = self;
    rk_map_entry *e, *next;
    size_t b;

    while (rk_heap_top(&s->cheap) != NULL && rk_heap_top(&s->cheap)->key <= now)
        case_drop(s, rk_heap_top(&s->cheap)->rec);
    if (now < s->next_sweep)
        return;
    s->next_sweep = INT64_MAX;
    for (e = rk_map_first(&s->units, &b); e != NULL; e = next) {
        fg_unit *u = e->value;
        int64_t exp = unit_expiry(s, u);
        next = rk_map_next(&s->units, &b, e);
        if (now >= exp)
            unit_free(rk_map_del(&s->units, e->key));
        else if (exp < s->next_sweep)
            s->next_sweep = exp;
    }
}

/* ===================================================================
 * Snapshot
 * =================================================================== */

static int fg_snapshot(void *self, rk_buf *out)
{
    fg_self *s = self;
    int64_t len = ring_len(&s->cfg), i;
    rk_map_entry *e;
    size_t b;
    uint32_t j;

    rk_buf_put_u32(out, FG_SNAP_VERSION);
    rk_buf_put_i64(out, s->cfg.period);
    rk_buf_put_i64(out, s->cfg.periods);
    rk_buf_put_u32(out, (uint32_t)s->units.count);
    for (e = rk_map_first(&s->units, &b); e; e = rk_map_next(&s->units, &b, e)) {
        const fg_unit *u = e->value;
        uint32_t used = 0;
        rk_buf_put_str(out, e->key);
        rk_buf_put_i64(out, u->top);
        for (i = 0; i < len; i++)
            if (u->ring[i].count > 0 || u->ring[i].sum != 0) used++;
        rk_buf_put_u32(out, used);
        for (i = 0; i < len; i++) {
            if (u->ring[i].count == 0 && u->ring[i].sum == 0) continue;
            rk_buf_put_u32(out, (uint32_t)i);
            rk_buf_put_double(out, u->ring[i].sum);
            rk_buf_put_u32(out, u->ring[i].count);
        }
        rk_buf_put_u32(out, u->nev);
        for (j = 0; j < u->nev; j++) {
            rk_buf_put_i64(out, u->evs[j].ts);
            rk_buf_put_ref(out, u->evs[j].ref);
        }
    }
    rk_buf_put_u32(out, (uint32_t)s->cases.count);
    for (e = rk_map_first(&s->cases, &b); e; e = rk_map_next(&s->cases, &b, e)) {
        const fg_case *c = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_str(out, c->unit);
        rk_buf_put_i64(out, c->ts);
        rk_buf_put_double(out, c->amount);
    }
    rk__open_put(out, &s->open);
    return out->oom ? -1 : 0;
}

static int restore_units(fg_self *s, rk_rd *r)
{
    int64_t len = ring_len(&s->cfg);
    uint32_t n = rk_rd_u32(r), i, j;

    for (i = 0; i < n && !r->err; i++) {
        char *k = rk_rd_str(r, FG_MAX_ID);
        fg_unit *u;
        uint32_t used;
        if (k == NULL || r->err || rk_map_get(&s->units, k) != NULL) {
            free(k);
            return -1;
        }
        u = unit_new(s);
        if (u == NULL) { free(k); return -1; }
        u->top = rk_rd_i64(r);
        used = rk_rd_u32(r);
        if ((int64_t)used > len) r->err = 1;
        for (j = 0; j < used && !r->err; j++) {
            uint32_t pos = rk_rd_u32(r);
            double sum = rk_rd_double(r);
            uint32_t cnt = rk_rd_u32(r);
            if ((int64_t)pos >= len || !isfinite(sum) || sum < 0) {
                r->err = 1;
                break;
            }
            u->ring[pos].sum = sum;
            u->ring[pos].count = cnt;
        }
        u->nev = rk_rd_u32(r);
        if (u->nev > FG_EVIDENCE) r->err = 1;
        for (j = 0; j < u->nev && !r->err; j++) {
            u->evs[j].ts = rk_rd_ts(r);
            u->evs[j].ref = rk_rd_ref(r);
        }
        /* top is a bucket index: on_event only makes ones of times within
         * +-FG_MAX_ABS_TS, and unit_expiry() relies on that. */
        if (r->err || u->top > floor_div(FG_MAX_ABS_TS, s->cfg.bucket) ||
            u->top < floor_div(-FG_MAX_ABS_TS, s->cfg.bucket) ||
            rk_map_put(&s->units, k, u, NULL) == NULL) {
            unit_free(u);
            free(k);
            return -1;
        }
        free(k);
    }
    return r->err ? -1 : 0;
}

static int restore_cases(fg_self *s, rk_rd *r)
{
    uint32_t n = rk_rd_u32(r), i;
    for (i = 0; i < n && !r->err; i++) {
        char *k = rk_rd_str(r, FG_MAX_ID), *unit = rk_rd_str(r, FG_MAX_ID);
        int64_t ts = rk_rd_i64(r);
        double amount = rk_rd_double(r);
        int bad = r->err || k == NULL || unit == NULL || !isfinite(amount) ||
                  amount < 0 || ts < -FG_MAX_ABS_TS || ts > FG_MAX_ABS_TS ||
                  rk_map_get(&s->cases, k) != NULL ||
                  case_put(s, k, unit, ts, amount) != 0;
        free(k);
        free(unit);
        if (bad)
            return -1;
    }
    return r->err ? -1 : 0;
}

static int fg_restore(void *self, const void *data, size_t len,
                      char *err, size_t errlen)
{
    fg_self *s = self;
    rk_rd r;
    uint32_t ver;
    int64_t period, periods;

    rk_map_clear(&s->units, unit_free);
    cases_clear(s);
    rk__open_clear(&s->open);
    s->next_sweep = INT64_MIN;
    rk_rd_init(&r, data, len);
    ver = rk_rd_u32(&r);
    period = rk_rd_i64(&r);
    periods = rk_rd_i64(&r);
    if (r.err || (ver != FG_SNAP_VERSION && ver != FG_SNAP_V2 && ver != FG_SNAP_V1)) {
        rk_kit_errf(err, errlen, "fine_growth: unknown snapshot version");
        return -1;
    }
    if (period != s->cfg.period || periods != s->cfg.periods) {
        s->api->log(s->host, RK_LOG_NOTICE, "period or baseline_periods "
                    "changed since the snapshot: fine history reset");
        return 0;
    }
    if (restore_units(s, &r) != 0 ||
        (ver == FG_SNAP_V1 ? (r.p != r.end ? -1 : 0) : restore_cases(s, &r)) != 0 ||
        (ver >= FG_SNAP_VERSION && rk__open_read(&r, &s->open) != 0) ||
        (ver != FG_SNAP_V1 && r.p != r.end)) {
        rk_map_clear(&s->units, unit_free);
        cases_clear(s);
        rk__open_clear(&s->open);
        rk_kit_errf(err, errlen, "fine_growth: truncated or corrupt snapshot");
        return -1;
    }
    return 0;
}

const rk_detector_ops rk__det_fine_growth = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "fine_growth",
    "a unit's fines and confiscations growing far above its own history",
    fg_create,
    fg_reconfigure,
    fg_on_event,
    fg_on_timer,
    fg_on_watermark,
    fg_snapshot,
    fg_restore,
    fg_destroy,
    fg_tracked_keys,
};
