/* detectors/violation_hotspot.c - high-frequency violation areas
 * (riskd-detectors(7)).
 *
 * Rule `hotspot`: every case.opened with both region and domain goes into
 * the window of its (region, domain) key, which spans the current period
 * and the baseline periods before it: (baseline_periods + 1) x period. At
 * each such case (ts t), current = its key's cases with ts in (t -
 * period, t]; baseline period k (1..baseline_periods) = (t - (k+1)period,
 * t - k period]; mean = their average (an empty period counts 0). The
 * rule fires when current >= min_count and current >= (1 + min_growth) x
 * mean. A key without history (mean 0) fires on min_count alone: a new
 * area with that many cases is a hotspot. value = current, threshold =
 * max(min_count, (1 + min_growth) x mean). Cooldown: `cooldown`, default
 * the period. Counting is two binary searches per period on the sorted
 * window.
 *
 * Opened cases cannot be amended, and duplicates never reach a detector,
 * so an alert is never retracted.
 *
 * Lifecycle (practice.h, detectors/lifecycle.c): the open alerts of a key
 * are resolved once the rule has stopped holding for
 * alerts.keep_firing_for. After every case of the key, vh_stops() finds
 * when it stops without new cases: the counts change only where a case
 * moves from one period to the next (its ts plus a multiple of period),
 * so the first of those points after the key's newest case at which the
 * rule fails; a timer "h:<key>" there plus keep_firing_for resolves them.
 *
 * Memory: one rk_winset (kit window.h) key "region\x1fdomain" -> window,
 * 32 bytes a case, for the cases of the last (baseline_periods + 1) x
 * period; a key is freed at the first watermark past its newest case +
 * that span; per key with open alerts an rk__openset record
 * (lifecycle.c). A changed period or baseline_periods re-keys the windows
 * (what the old span no longer held is not recovered).
 *
 * Snapshot (version 2): u32 version, the winset (practice.h), then the
 * open alerts (rk__open_put). Version 1 has no open alerts. */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define VH_SNAP_VERSION 2u          /* 2: + the open alerts */
#define VH_SNAP_V1 1u

typedef struct vh_cfg {
    int64_t period;
    uint32_t baseline_periods;
    uint32_t min_count;
    double min_growth;
    int64_t cooldown;
    int64_t span;                   /* (baseline_periods + 1) x period */
} vh_cfg;

typedef struct vh_self {
    const rk_host_api *api;
    rk_host *host;
    vh_cfg cfg;
    rk_winset keys;
    rk__openset open;               /* "region\x1fdomain" -> open alerts */
} vh_self;

static const char *const vh_keys[] = {
    "period", "baseline_periods", "min_count", "min_growth", "cooldown", NULL};

static int vh_parse_cfg(const json_t *obj, vh_cfg *out, char *err, size_t errlen)
{
    long long v;
    if (rk_kit_cfg_known_keys(obj, "", vh_keys, err, errlen) != 0 ||
        rk_kit_cfg_duration(obj, "", "period", 1, 30 * RK_DAY, &out->period, err, errlen) != 0)
        return -1;
    if (out->period > 3650 * RK_DAY) {
        rk_kit_errf(err, errlen, "period: expected a duration of at most 3650d");
        return -1;
    }
    if (rk_kit_cfg_int(obj, "", "baseline_periods", 1, 100, 3, &v, err, errlen) != 0)
        return -1;
    out->baseline_periods = (uint32_t)v;
    if (rk_kit_cfg_int(obj, "", "min_count", 1, 1000000, 20, &v, err, errlen) != 0)
        return -1;
    out->min_count = (uint32_t)v;
    if (rk_kit_cfg_double(obj, "", "min_growth", 0.0, 1000.0, 1.0, &out->min_growth,
                          err, errlen) != 0 ||
        rk_kit_cfg_duration(obj, "", "cooldown", 0, out->period, &out->cooldown,
                            err, errlen) != 0)
        return -1;
    out->span = (int64_t)(out->baseline_periods + 1) * out->period;
    return 0;
}

/* Index of the first item of w with ts > t. */
static uint32_t vh_upper(const rk_win *w, int64_t t)
{
    uint32_t lo = 0, hi = w->len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (rk_win_at(w, mid)->ts <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Items of w with ts in (from, to]. */
static uint32_t vh_count(const rk_win *w, int64_t from, int64_t to)
{
    return vh_upper(w, to) - vh_upper(w, from);
}

/* The hotspot sentence: region, domain, count, period, baseline mean. */
static void vh_summary_hotspot(rk_say *t, const char *region, const char *domain, uint32_t n,
                               double mean, double threshold, const vh_cfg *c)
{
    if (t->en) {
        rk_say_f(t, "%u %s in ", (unsigned)n, n == 1 ? "case" : "cases");
        rk_say_who(t, "domain", domain, 0);
        rk_say_f(t, " %s opened in ", n == 1 ? "was" : "were");
        rk_say_who(t, "region", region, 0);
        rk_say_f(t, " ");
        rk_say_window(t, c->period);
        rk_say_f(t, ", against an average of ");
        rk_say_num(t, mean, 1);
        rk_say_f(t, " per ");
        rk_say_span(t, c->period);
        rk_say_f(t, " over the %u %s before (threshold ", (unsigned)c->baseline_periods,
                 c->baseline_periods == 1 ? "period" : "periods");
        rk_say_num(t, threshold, 1);
        rk_say_f(t, "): a hotspot of violations.");
    } else {
        rk_say_who(t, "region", region, 0);
        rk_say_window(t, c->period);
        rk_say_who(t, "domain", domain, 0);
        rk_say_f(t, "案件立案%u件，此前%u期（每期", (unsigned)n, (unsigned)c->baseline_periods);
        rk_say_span(t, c->period);
        rk_say_f(t, "）平均每期");
        rk_say_num(t, mean, 1);
        rk_say_f(t, "件（阈值");
        rk_say_num(t, threshold, 1);
        rk_say_f(t, "件），属违法行为高发区域");
    }
}

/* The counts of window w at t: *cur in (t - period, t] and the mean of
 * the baseline periods before it. Does the rule hold there? */
static int vh_holds(const vh_self *s, const rk_win *w, int64_t t, uint32_t *cur, double *mean)
{
    int64_t p = s->cfg.period;
    double sum = 0;
    uint32_t i;
    *cur = vh_count(w, rk_kit_cutoff(t, p), t);
    for (i = 1; i <= s->cfg.baseline_periods; i++)
        sum += vh_count(w, rk_kit_cutoff(t, (int64_t)(i + 1) * p),
                        rk_kit_cutoff(t, (int64_t)i * p));
    *mean = sum / s->cfg.baseline_periods;
    return *cur >= s->cfg.min_count && (double)*cur >= (1.0 + s->cfg.min_growth) * *mean;
}

static int vh_i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* When the rule, holding at now on w, stops holding without new cases:
 * the first point after now where a case changes period (ts + k x
 * period, k = 1 .. baseline_periods + 1) and the rule fails. INT64_MAX
 * when out of memory (the alert then waits for the next case). */
static int64_t vh_stops(const vh_self *s, const rk_win *w, int64_t now)
{
    uint32_t i, k, n = 0, cur;
    int64_t *c, stops = INT64_MAX;
    double mean;
    if ((c = malloc((size_t)w->len * (s->cfg.baseline_periods + 1) * sizeof(*c) + 1)) == NULL)
        return INT64_MAX;
    for (i = 0; i < w->len; i++)
        for (k = 1; k <= s->cfg.baseline_periods + 1; k++) {
            int64_t ts = rk_win_at(w, i)->ts, d = (int64_t)k * s->cfg.period;
            int64_t x = ts > INT64_MAX - d ? INT64_MAX : ts + d;
            if (x > now)
                c[n++] = x;
        }
    qsort(c, n, sizeof(*c), vh_i64_cmp);
    for (i = 0; i < n; i++)
        if ((i == 0 || c[i] != c[i - 1]) && !vh_holds(s, w, c[i], &cur, &mean)) {
            stops = c[i];
            break;
        }
    free(c);
    return stops;
}

static void vh_fill(rk_alert *a, const char *key, const char *extra, char *scratch, size_t n)
{
    (void)extra;
    pr_split(key, scratch, n, &a->subject.region, &a->domain);
}

/* Resolve the open alerts of key at deadline. */
static int vh_resolve(vh_self *s, const char *key, int64_t deadline)
{
    char scratch[256], *sc = scratch;
    const char *region, *domain;
    size_t need = strlen(key) + 1;
    rk_say t;
    if (need > sizeof(scratch) && (sc = malloc(need)) == NULL)
        return -1;
    pr_split(key, sc, need, &region, &domain);
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "The cases in ");
        rk_say_who(&t, "domain", domain, 0);
        rk_say_f(&t, " opened in ");
        rk_say_who(&t, "region", region, 0);
        rk_say_f(&t, " ");
        rk_say_window(&t, s->cfg.period);
        rk_say_f(&t, " have been back under the hotspot threshold");
    } else {
        rk_say_who(&t, "region", region, 0);
        rk_say_window(&t, s->cfg.period);
        rk_say_who(&t, "domain", domain, 0);
        rk_say_f(&t, "案件立案数已回落到高发阈值以下");
    }
    pr_say_kept(&t);
    if (sc != scratch)
        free(sc);
    return pr_notify(s->api, s->host, &s->open, key, "hotspot", vh_fill, RK_ALERT_RESOLVED,
                     rk_say_text(&t), deadline, NULL, 0, NULL, NULL);
}

/* "h:<key>": resolve when the resolve time is still this deadline. */
static int vh_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    vh_self *s = self;
    const rk__openrec *r;
    (void)arg;
    if (key[0] != 'h' || key[1] != ':' || (r = rk__open_get(&s->open, key + 2)) == NULL ||
        r->resolve_at != deadline)
        return 0;
    return vh_resolve(s, key + 2, deadline);
}

/* After a case of key: move the resolve time of its open alerts to when
 * the rule stops holding at the key's newest case. */
static int vh_life(vh_self *s, const char *key, const rk_win *w)
{
    int64_t newest;
    uint32_t cur;
    double mean;
    if (rk__open_get(&s->open, key) == NULL || w->len == 0)
        return 0;
    newest = rk_win_at(w, w->len - 1)->ts;
    if (!vh_holds(s, w, newest, &cur, &mean))
        return pr_arm_stopped(s->api, s->host, &s->open, 'h', key, newest);
    return pr_arm(s->api, s->host, &s->open, 'h', key, vh_stops(s, w, newest));
}

static int vh_on_event(void *self, const rk_event *ev)
{
    vh_self *s = self;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    char key[1024];
    const rk__openrec *r;
    rk_say say;
    rk_winkey *k;
    rk_alert a;
    uint32_t cur;
    double mean, threshold;
    int pushed, rc;
    int64_t t = ev->ts;

    if (ev->type != RK_EV_CASE_OPENED || ev->region == NULL || ev->domain == NULL)
        return 0;
    if (strlen(ev->region) + strlen(ev->domain) + 2 > sizeof(key))
        return 0;                   /* ids this long are not areas */
    {
        size_t rl = strlen(ev->region), dl = strlen(ev->domain);
        memcpy(key, ev->region, rl);
        key[rl] = PR_SEP;
        memcpy(key + rl + 1, ev->domain, dl + 1);
    }
    /* A resolve time already past (the timer held back by another
     * stream): resolve first, as the timer would have. */
    if ((r = rk__open_get(&s->open, key)) != NULL && r->resolve_at < t &&
        vh_resolve(s, key, r->resolve_at) != 0)
        return -1;
    if ((k = rk_winset_get(&s->keys, key)) == NULL)
        return -1;
    if (k->win.len > 0 && rk_win_at(&k->win, k->win.len - 1)->ts > t)
        rk_winkey_trim(k, rk_kit_cutoff(rk_win_at(&k->win, k->win.len - 1)->ts, s->cfg.span));
    else
        rk_winkey_trim(k, rk_kit_cutoff(t, s->cfg.span));
    pushed = rk_win_push(&k->win, t, ev->ref, 0) == 0;
    if (rk_winset_track(&s->keys, k, pushed, s->cfg.span) != 0)
        return -1;
    if (!vh_holds(s, &k->win, t, &cur, &mean))
        return vh_life(s, key, &k->win);
    threshold = (1.0 + s->cfg.min_growth) * mean;
    if (threshold < s->cfg.min_count)
        threshold = s->cfg.min_count;
    rk_say_init(&say, s->api, s->host);
    vh_summary_hotspot(&say, ev->region, ev->domain, cur, mean, threshold, &s->cfg);
    memset(&a, 0, sizeof(a));
    a.rule = "hotspot";
    a.severity = RK_SEV_INFO;
    a.ts = t;
    a.subject.region = ev->region;
    a.domain = ev->domain;
    a.value = cur;
    a.threshold = threshold;
    a.summary = rk_say_text(&say);
    a.n_evidence = rk_kit_evidence(&k->win, 0, ev->ref, evid);
    a.evidence = evid;
    a.cooldown = s->cfg.cooldown;
    rc = s->api->emit(s->host, &a);
    if (rc < 0 || (rc == 1 && rk__open_add(&s->open, key, t, NULL) != 0))
        return -1;
    return vh_life(s, key, &k->win);
}

static void *vh_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    vh_self *s;
    vh_cfg c;
    if (vh_parse_cfg(cfg, &c, err, errlen) != 0)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->cfg = c;
    rk_winset_init(&s->keys);
    rk__open_init(&s->open);
    rk__open_bind(&s->open, host, "hotspot");
    return s;
}

static int vh_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    vh_self *s = self;
    vh_cfg c;
    if (vh_parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    if (c.span != s->cfg.span)
        rk_winset_rekey(&s->keys, c.span);
    s->cfg = c;
    return 0;
}

static void vh_on_watermark(void *self, int64_t now)
{
    vh_self *s = self;
    rk_winset_expire(&s->keys, now, s->cfg.span);
}

static int vh_snapshot(void *self, rk_buf *out)
{
    vh_self *s = self;
    rk_buf_put_u32(out, VH_SNAP_VERSION);
    pr_put_winset(out, &s->keys);
    rk__open_put(out, &s->open);
    return out->oom ? -1 : 0;
}

static int vh_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    vh_self *s = self;
    rk_rd r;
    uint32_t ver;
    rk_winset_clear(&s->keys);
    rk__open_clear(&s->open);
    rk_rd_init(&r, data, len);
    if (pr_read_versions(&r, VH_SNAP_V1, VH_SNAP_VERSION, &ver, err, errlen) != 0)
        return -1;
    if (pr_read_winset(&r, &s->keys, s->cfg.span) != 0 ||
        (ver >= 2 && rk__open_read(&r, &s->open) != 0) || r.p != r.end) {
        rk_winset_clear(&s->keys);
        rk__open_clear(&s->open);
        rk_kit_errf(err, errlen, "snapshot: truncated or corrupt");
        return -1;
    }
    return 0;
}

static void vh_destroy(void *self)
{
    vh_self *s = self;
    if (s == NULL)
        return;
    rk_winset_clear(&s->keys);
    rk__open_clear(&s->open);
    free(s);
}

static size_t vh_tracked_keys(void *self)
{
    return ((const vh_self *)self)->keys.map.count;
}

const rk_detector_ops rk__det_violation_hotspot = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "violation_hotspot",
    "cases opened per region and domain far above their baseline",
    vh_create,
    vh_reconfigure,
    vh_on_event,
    vh_on_timer,
    vh_on_watermark,
    vh_snapshot,
    vh_restore,
    vh_destroy,
    vh_tracked_keys,
};
