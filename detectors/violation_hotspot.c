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
 * Opened cases cannot be amended, and duplicates never reach a detector.
 *
 * Memory: one rk_winset (kit window.h) key "region\x1fdomain" -> window,
 * 32 bytes a case, for the cases of the last (baseline_periods + 1) x
 * period; a key is freed at the first watermark past its newest case +
 * that span. A changed period or baseline_periods re-keys the windows
 * (what the old span no longer held is not recovered).
 *
 * Snapshot (version 1): u32 version, then the winset (practice.h). */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define VH_SNAP_VERSION 1u

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

static int vh_on_event(void *self, const rk_event *ev)
{
    vh_self *s = self;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    char key[1024];
    rk_say say;
    rk_winkey *k;
    rk_alert a;
    uint32_t cur, i;
    double sum = 0, mean, threshold;
    int pushed;
    int64_t t = ev->ts, p = s->cfg.period;

    if (ev->type != RK_EV_CASE_OPENED || ev->region == NULL || ev->domain == NULL)
        return 0;
    if (strlen(ev->region) + strlen(ev->domain) + 2 > sizeof(key))
        return 0;                   /* ids this long are not areas */
    {
        size_t rl = strlen(ev->region), dl = strlen(ev->domain);
        memcpy(key, ev->region, rl);
        key[rl] = '\x1f';
        memcpy(key + rl + 1, ev->domain, dl + 1);
    }
    if ((k = rk_winset_get(&s->keys, key)) == NULL)
        return -1;
    if (k->win.len > 0 && rk_win_at(&k->win, k->win.len - 1)->ts > t)
        rk_winkey_trim(k, rk_kit_cutoff(rk_win_at(&k->win, k->win.len - 1)->ts, s->cfg.span));
    else
        rk_winkey_trim(k, rk_kit_cutoff(t, s->cfg.span));
    pushed = rk_win_push(&k->win, t, ev->ref, 0) == 0;
    if (rk_winset_track(&s->keys, k, pushed, s->cfg.span) != 0)
        return -1;
    cur = vh_count(&k->win, rk_kit_cutoff(t, p), t);
    if (cur < s->cfg.min_count)
        return 0;
    for (i = 1; i <= s->cfg.baseline_periods; i++)
        sum += vh_count(&k->win, rk_kit_cutoff(t, (int64_t)(i + 1) * p),
                        rk_kit_cutoff(t, (int64_t)i * p));
    mean = sum / s->cfg.baseline_periods;
    threshold = (1.0 + s->cfg.min_growth) * mean;
    if ((double)cur < threshold)
        return 0;
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
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
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
    return out->oom ? -1 : 0;
}

static int vh_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    vh_self *s = self;
    rk_rd r;
    rk_winset_clear(&s->keys);
    rk_rd_init(&r, data, len);
    if (pr_read_version(&r, VH_SNAP_VERSION, err, errlen) != 0)
        return -1;
    if (pr_read_winset(&r, &s->keys, s->cfg.span) != 0 || r.p != r.end) {
        rk_winset_clear(&s->keys);
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
    NULL,
    vh_on_watermark,
    vh_snapshot,
    vh_restore,
    vh_destroy,
    vh_tracked_keys,
};
