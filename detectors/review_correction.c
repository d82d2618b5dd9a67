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
 * duplicates never reach a detector, so the window is all the state.
 *
 * Memory: one rk_winset (kit window.h) unit -> window of reviews, 32
 * bytes a review, for the reviews of the last `window` only; a unit is
 * freed at the first watermark past its newest review + window.
 *
 * Snapshot (version 1): u32 version, then the winset (practice.h). */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define RC_SNAP_VERSION 1u
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

static int rc_on_event(void *self, const rk_event *ev)
{
    rc_self *s = self;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    rk_say t;
    rk_winkey *k;
    rk_alert a;
    double share;
    int corrected, pushed;

    if (ev->type != RK_EV_CASE_REVIEW || ev->unit_id == NULL)
        return 0;
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
    if (!corrected || k->nflag < s->cfg.min_count)
        return 0;
    share = (double)k->nflag / (double)k->win.len;
    if (share < s->cfg.min_share)
        return 0;
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
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
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
    return out->oom ? -1 : 0;
}

static int rc_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    rc_self *s = self;
    rk_rd r;
    rk_winset_clear(&s->units);
    rk_rd_init(&r, data, len);
    if (pr_read_version(&r, RC_SNAP_VERSION, err, errlen) != 0)
        return -1;
    if (pr_read_winset(&r, &s->units, s->cfg.window) != 0 || r.p != r.end) {
        rk_winset_clear(&s->units);
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
    NULL,
    rc_on_watermark,
    rc_snapshot,
    rc_restore,
    rc_destroy,
    rc_tracked_keys,
};
