/* detectors/review_correction.c - administrative reviews that correct a
 * unit's decisions (riskd-detectors(7)).
 *
 * Rule `corrections`: every case.review with a unit_id goes into its
 * unit's sliding window (`window`, default 90d, by ts), flagged when the
 * outcome corrects the decision (revoked, altered, confirmed_illegal).
 * Evaluated at each review, at its ts after expiring older ones: the rule
 * fires when the flagged reviews are >= min_count (default 3) and >=
 * min_share (default 0.3) of the unit's reviews in the window. value is
 * the share, threshold min_share; the summary states the count too.
 * Cooldown: `cooldown`, default the window.
 *
 * Reviews cannot be amended (their natural key holds the outcome) and
 * duplicates never reach a detector, so an alert is never retracted.
 *
 * Lifecycle (practice.h, detectors/lifecycle.c): the open alerts of a unit
 * are resolved once the rule has stopped holding for
 * alerts.keep_firing_for: after every review of the unit rc_stops() finds
 * when it stops without new reviews (the first exit of the oldest reviews
 * after which the count or the share falls short, or at once when a
 * review that corrects nothing dilutes the share); a timer "c:<unit>"
 * there plus keep_firing_for resolves them.
 *
 * Memory: one rk_winset (kit window.h) unit -> window of reviews, 32
 * bytes a review, for the reviews of the last `window` only; a unit is
 * freed at the first watermark past its newest review + window. Per unit
 * with open alerts an rk__openset record (lifecycle.c).
 *
 * Snapshot (version 2): u32 version, the winset (practice.h), then the
 * open alerts (rk__open_put). Version 1 has no open alerts. */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define RC_SNAP_VERSION 2u          /* 2: + the open alerts */
#define RC_SNAP_V1 1u
#define RC_FLAG_CORRECTED 1u

typedef struct rc_cfg {
    int64_t window;
    uint32_t min_count;
    double min_share;
    int64_t cooldown;
} rc_cfg;

typedef struct rc_self {
    const rk_host_api *api;
    rk_host *host;
    rc_cfg cfg;
    rk_winset units;                /* unit id -> reviews, flag = corrected */
    rk__openset open;               /* unit id -> open corrections alerts */
} rc_self;

static const char *const rc_keys[] = {"window", "min_count", "min_share", "cooldown", NULL};

/* Validate cfg into *out with the defaults. Returns 0, or -1 with a
 * key-path message in err. */
static int rc_parse_cfg(const json_t *obj, rc_cfg *out, char *err, size_t errlen)
{
    long long v;
    if (rk_kit_cfg_known_keys(obj, "", rc_keys, err, errlen) != 0 ||
        rk_kit_cfg_duration(obj, "", "window", 1, 90 * RK_DAY, &out->window, err, errlen) != 0 ||
        rk_kit_cfg_int(obj, "", "min_count", 1, 1000000, 3, &v, err, errlen) != 0)
        return -1;
    out->min_count = (uint32_t)v;
    if (rk_kit_cfg_double(obj, "", "min_share", 0.0, 1.0, 0.3, &out->min_share,
                          err, errlen) != 0 ||
        rk_kit_cfg_duration(obj, "", "cooldown", 0, out->window, &out->cooldown,
                            err, errlen) != 0)
        return -1;
    return 0;
}

/* The corrections sentence: unit, count of total, share, window. */
static void rc_summary_corrections(rk_say *t, const char *unit, uint32_t n, uint32_t total,
                                   double share, const rc_cfg *c)
{
    rk_say_who(t, "unit", unit, 1);
    if (t->en) {
        rk_say_f(t, " had %u of its %u administrative review %s ", (unsigned)n,
                 (unsigned)total, total == 1 ? "case" : "cases");
        rk_say_window(t, c->window);
        rk_say_f(t, " revoked, altered or confirmed illegal, ");
        rk_say_pct(t, share);
        rk_say_f(t, " (threshold %u and ", (unsigned)c->min_count);
        rk_say_pct(t, c->min_share);
        rk_say_f(t, ").");
    } else {
        rk_say_window(t, c->window);
        rk_say_f(t, "有%u件行政复议案件被撤销、变更或确认违法，占其%u件复议案件的",
                 (unsigned)n, (unsigned)total);
        rk_say_pct(t, share);
        rk_say_f(t, "（阈值%u件且", (unsigned)c->min_count);
        rk_say_pct(t, c->min_share);
        rk_say_f(t, "）");
    }
}

/* Does the rule hold for len reviews, nflag of them corrections? */
static int rc_holds(const rc_self *s, uint32_t len, uint32_t nflag)
{
    return nflag >= s->cfg.min_count && len > 0 &&
           (double)nflag / (double)len >= s->cfg.min_share;
}

/* When the rule, holding on window w (nflag corrections), stops holding
 * without new reviews: the reviews leave oldest first (those of one ts
 * together, at ts + window); the first exit after which it fails. */
static int64_t rc_stops(const rc_self *s, const rk_win *w, uint32_t nflag)
{
    uint32_t i = 0, len = w->len;
    while (i < w->len) {
        int64_t ts = rk_win_at(w, i)->ts;
        while (i < w->len && rk_win_at(w, i)->ts == ts) {
            if (rk_win_at(w, i)->flag & RC_FLAG_CORRECTED)
                nflag--;
            len--;
            i++;
        }
        if (!rc_holds(s, len, nflag))
            return ts > INT64_MAX - s->cfg.window ? INT64_MAX : ts + s->cfg.window;
    }
    return INT64_MAX;               /* not reached: an empty window fails */
}

static void rc_fill(rk_alert *a, const char *key, const char *extra, char *scratch, size_t n)
{
    (void)extra;
    (void)scratch;
    (void)n;
    a->subject.unit_id = key;
}

/* Resolve the open alerts of unit at deadline. */
static int rc_resolve(rc_self *s, const char *unit, int64_t deadline)
{
    rk_say t;
    rk_say_init(&t, s->api, s->host);
    rk_say_who(&t, "unit", unit, 1);
    if (t.en) {
        rk_say_f(&t, "'s administrative reviews corrected ");
        rk_say_window(&t, s->cfg.window);
        rk_say_f(&t, " have been under the threshold (%u and ", (unsigned)s->cfg.min_count);
        rk_say_pct(&t, s->cfg.min_share);
        rk_say_f(&t, ")");
    } else {
        rk_say_window(&t, s->cfg.window);
        rk_say_f(&t, "被复议纠错的案件已低于阈值（%u件且", (unsigned)s->cfg.min_count);
        rk_say_pct(&t, s->cfg.min_share);
        rk_say_f(&t, "）");
    }
    pr_say_kept(&t);
    return pr_notify(s->api, s->host, &s->open, unit, "corrections", rc_fill,
                     RK_ALERT_RESOLVED, rk_say_text(&t), deadline, NULL, 0, NULL, NULL);
}

/* "c:<unit>": resolve when the resolve time is still this deadline. */
static int rc_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    rc_self *s = self;
    const rk__openrec *r;
    (void)arg;
    if (key[0] != 'c' || key[1] != ':' || (r = rk__open_get(&s->open, key + 2)) == NULL ||
        r->resolve_at != deadline)
        return 0;
    return rc_resolve(s, key + 2, deadline);
}

static int rc_on_event(void *self, const rk_event *ev)
{
    rc_self *s = self;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    const rk__openrec *r;
    rk_say t;
    rk_winkey *k;
    rk_alert a;
    double share;
    int corrected, pushed, rc;

    if (ev->type != RK_EV_CASE_REVIEW || ev->unit_id == NULL)
        return 0;
    /* A resolve time already past (the timer held back by another
     * stream): resolve first, as the timer would have. */
    if ((r = rk__open_get(&s->open, ev->unit_id)) != NULL && r->resolve_at < ev->ts &&
        rc_resolve(s, ev->unit_id, r->resolve_at) != 0)
        return -1;
    corrected = ev->outcome == RK_OUTCOME_REVOKED || ev->outcome == RK_OUTCOME_ALTERED ||
                ev->outcome == RK_OUTCOME_CONFIRMED_ILLEGAL;
    if ((k = rk_winset_get(&s->units, ev->unit_id)) == NULL)
        return -1;
    rk_winkey_trim(k, rk_kit_cutoff(ev->ts, s->cfg.window));
    pushed = rk_win_push(&k->win, ev->ts, ev->ref, corrected ? RC_FLAG_CORRECTED : 0) == 0;
    if (pushed && corrected)
        k->nflag++;
    if (rk_winset_track(&s->units, k, pushed, s->cfg.window) != 0)
        return -1;
    if (!rc_holds(s, k->win.len, k->nflag))
        return pr_arm_stopped(s->api, s->host, &s->open, 'c', ev->unit_id, ev->ts);
    if (!corrected)
        return pr_arm(s->api, s->host, &s->open, 'c', ev->unit_id,
                      rc_stops(s, &k->win, k->nflag));
    share = (double)k->nflag / (double)k->win.len;
    rk_say_init(&t, s->api, s->host);
    rc_summary_corrections(&t, ev->unit_id, k->nflag, k->win.len, share, &s->cfg);
    memset(&a, 0, sizeof(a));
    a.rule = "corrections";
    a.severity = RK_SEV_WARNING;
    a.ts = ev->ts;
    a.subject.unit_id = ev->unit_id;
    a.value = share;
    a.threshold = s->cfg.min_share;
    a.summary = rk_say_text(&t);
    a.n_evidence = rk_kit_evidence(&k->win, RC_FLAG_CORRECTED, ev->ref, evid);
    a.evidence = evid;
    a.cooldown = s->cfg.cooldown;
    rc = s->api->emit(s->host, &a);
    if (rc < 0 || (rc == 1 && rk__open_add(&s->open, ev->unit_id, ev->ts, NULL) != 0))
        return -1;
    return pr_arm(s->api, s->host, &s->open, 'c', ev->unit_id, rc_stops(s, &k->win, k->nflag));
}

static void *rc_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    rc_self *s;
    rc_cfg c;
    if (rc_parse_cfg(cfg, &c, err, errlen) != 0)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->cfg = c;
    rk_winset_init(&s->units);
    rk__open_init(&s->open);
    rk__open_bind(&s->open, host, "corrections");
    return s;
}

static int rc_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    rc_self *s = self;
    rc_cfg c;
    if (rc_parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    if (c.window != s->cfg.window)
        rk_winset_rekey(&s->units, c.window);
    s->cfg = c;
    return 0;
}

static void rc_on_watermark(void *self, int64_t now)
{
    rc_self *s = self;
    rk_winset_expire(&s->units, now, s->cfg.window);
}

static int rc_snapshot(void *self, rk_buf *out)
{
    rc_self *s = self;
    rk_buf_put_u32(out, RC_SNAP_VERSION);
    pr_put_winset(out, &s->units);
    rk__open_put(out, &s->open);
    return out->oom ? -1 : 0;
}

static int rc_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    rc_self *s = self;
    rk_rd r;
    uint32_t ver;
    rk_winset_clear(&s->units);
    rk__open_clear(&s->open);
    rk_rd_init(&r, data, len);
    if (pr_read_versions(&r, RC_SNAP_V1, RC_SNAP_VERSION, &ver, err, errlen) != 0)
        return -1;
    if (pr_read_winset(&r, &s->units, s->cfg.window) != 0 ||
        (ver >= 2 && rk__open_read(&r, &s->open) != 0) || r.p != r.end) {
        rk_winset_clear(&s->units);
        rk__open_clear(&s->open);
        rk_kit_errf(err, errlen, "snapshot: truncated or corrupt");
        return -1;
    }
    return 0;
}

static void rc_destroy(void *self)
{
    rc_self *s = self;
    if (s == NULL)
        return;
    rk_winset_clear(&s->units);
    rk__open_clear(&s->open);
    free(s);
}

static size_t rc_tracked_keys(void *self)
{
    return ((const rc_self *)self)->units.map.count;
}

const rk_detector_ops rk__det_review_correction = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "review_correction",
    "administrative reviews correcting a unit's decisions, by count and share",
    rc_create,
    rc_reconfigure,
    rc_on_event,
    rc_on_timer,
    rc_on_watermark,
    rc_snapshot,
    rc_restore,
    rc_destroy,
    rc_tracked_keys,
};
