/* detectors/discretion.c - penalties outside the discretion benchmarks,
 * "same case, different penalty", and fines on exempted matters
 * (riskd-detectors(7)).
 *
 * It reads case.decided events with an item_code. Rules:
 *
 *   out_of_benchmark  the decision's fine lies outside the `benchmarks`
 *                     range of its item_code (the row of its level, else
 *                     the row without a level). One alert per decision
 *                     (trigger_key case_id), no cooldown. value = fine,
 *                     threshold = the bound it crossed (min_fine or
 *                     max_fine).
 *   exempt_fined      the `exempt` list marks the item no_penalty and
 *                     fine + confiscation > 0 (warning), or lighter and
 *                     the decision says leniency "none" (info). One alert
 *                     per decision, no cooldown. no_penalty: value =
 *                     fine + confiscation (yuan), threshold 0; lighter:
 *                     value 1 (the decision without leniency), threshold
 *                     1, as for a per-event rule whose condition is a
 *                     fact, not an amount.
 *   disparity         over `window` (default 90d) before the decision,
 *                     the unit's median fine for the item_code (>=
 *                     min_cases decisions, default 5) is >= max_ratio
 *                     (default 2.0) times, or <= 1 / max_ratio of, the
 *                     median of all other units' decisions of the item
 *                     (>= min_cases of them). Evaluated for the decision's
 *                     unit at each decision; value = the ratio of the
 *                     medians, threshold = max_ratio (or 1 / max_ratio
 *                     when low). When the other units' median is 0 the
 *                     ratio is undefined and nothing fires. Cooldown:
 *                     `cooldown`, default the window.
 *
 * Lists are looked up when the decision arrives: loading a list is not
 * retroactive. An amendment (RK_EVF_AMENDED: a corrected decision of the
 * same case_id) replaces the earlier decision in the medians and is
 * checked again by every rule with its new values.
 *
 * Lifecycle (practice.h, detectors/lifecycle.c). out_of_benchmark and
 * exempt_fined alerts stay open per case_id (extra: unit and item) until
 * alerts.open_ttl closes them (those of an older snapshot for
 * PR_OPEN_KEEP, 30d, a timer "x:<case>" forgets them): an amendment of the
 * case checked against the lists in force when it arrives that no longer
 * breaks the rule retracts them; one that still breaks it leaves the open
 * alert standing and raises no second one. disparity alerts stay open per
 * "unit PR_SEP item" (the keys of an item are those of the units with a
 * decision of it in the window that riskd holds an open alert under,
 * dc_open_keys): after every decision of the item (any unit: the
 * other units' median moves too) the first time, as decisions leave the
 * window without new ones, at which the medians are back within max_ratio
 * (dc_stops, O(n^2 log n) in the item's decisions n of the window, only
 * while the item has an open alert) plus keep_firing_for resolves them
 * (timer "d:" + key); an amendment after which the medians at an alert's
 * own ts are within max_ratio retracts it.
 *
 * State: every decision with an item_code of the last `window` (dc_case:
 * case_id, unit, item, ts, fine, entry; ~120 bytes plus the ids) in an
 * rk_map by case_id, an rk_map item_code -> array of its decisions, and
 * an expiry heap by ts + window; on_watermark drops what left the window.
 * Memory grows with the decisions of one window, not with history (plus
 * the daemon's record of each open alert, filed under the case, or under
 * "unit PR_SEP item" for disparity: the detector keeps nothing per open
 * alert, a 4-byte hint per item). A
 * decision costs O(decisions of its item in the window) plus sorting the
 * fines of that item.
 *
 * Snapshot (version 2): u32 version, u32 n, n x (str case_id, str unit,
 * str item, i64 ts, double fine, ref), then the open out_of_benchmark,
 * exempt_fined and disparity alerts the sets keep themselves (rk__open_put
 * each: keys of an older snapshot, or all of them with a host that does
 * not keep open alerts; version 1 has none). The maps and the heap are
 * rebuilt. */
#include <math.h>

#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define DC_SNAP_VERSION 2u          /* 2: + the open alerts */
#define DC_SNAP_V1 1u

typedef struct dc_cfg {
    int64_t window;
    uint32_t min_cases;
    double max_ratio;
    int64_t cooldown;
} dc_cfg;

typedef struct dc_item {
    struct dc_case **v;
    uint32_t n, cap;
    uint32_t open_hint;             /* 0: none of its units has an open
                                       disparity alert (dc_open_keys) */
} dc_item;

typedef struct dc_case {
    uint32_t hpos;                  /* in dc_self.heap */
    uint32_t idx;                   /* in its dc_item */
    int64_t ts;
    double fine;
    rk_entry_ref ref;
    rk_map_entry *ent;              /* in dc_self.cases: the case_id */
    dc_item *item;
    char *item_code;                /* the item map's key */
    char unit[];
} dc_case;

typedef struct dc_self {
    const rk_host_api *api;
    rk_host *host;
    dc_cfg cfg;
    rk_map cases;                   /* case_id -> dc_case */
    rk_map items;                   /* item_code -> dc_item */
    rk_heap heap;                   /* dc_case by ts + window */
    rk__openset open[3];            /* open alerts: case_id -> out_of_benchmark,
                                       exempt_fined (extra "unit PR_SEP item");
                                       "unit PR_SEP item" -> disparity */
} dc_self;

#define DC_BENCH 0
#define DC_EXEMPT 1
#define DC_DISP 2
static const char *const dc_rules[] = {"out_of_benchmark", "exempt_fined", "disparity"};

static const char *const dc_keys[] = {"window", "min_cases", "max_ratio", "cooldown", NULL};
static const char *const dc_level_names[] = {NULL, "minor", "general", "serious"};

static int dc_parse_cfg(const json_t *obj, dc_cfg *out, char *err, size_t errlen)
{
    long long v;
    if (rk_kit_cfg_known_keys(obj, "", dc_keys, err, errlen) != 0 ||
        rk_kit_cfg_duration(obj, "", "window", 1, 90 * RK_DAY, &out->window, err, errlen) != 0 ||
        rk_kit_cfg_int(obj, "", "min_cases", 1, 1000000, 5, &v, err, errlen) != 0)
        return -1;
    out->min_cases = (uint32_t)v;
    if (rk_kit_cfg_double(obj, "", "max_ratio", 1.0, 1e9, 2.0, &out->max_ratio,
                          err, errlen) != 0)
        return -1;
    if (out->max_ratio <= 1.0) {
        rk_kit_errf(err, errlen, "max_ratio: expected a number greater than 1");
        return -1;
    }
    return rk_kit_cfg_duration(obj, "", "cooldown", 0, out->window, &out->cooldown,
                               err, errlen);
}

/* ===================================================================
 * Summaries, one per rule
 * =================================================================== */

static void dc_summary_benchmark(rk_say *t, const rk_event *ev, double lo, double hi)
{
    rk_say_who(t, "unit", ev->unit_id, 1);
    if (t->en) {
        rk_say_f(t, " fined ");
        pr_say_yuan(t, ev->fine);
        rk_say_f(t, " in case %s (", ev->case_id);
        rk_say_who(t, "item", ev->item_code, 0);
        rk_say_f(t, "), outside the discretion benchmark of ");
        pr_say_yuan(t, lo);
        rk_say_f(t, " to ");
        pr_say_yuan(t, hi);
        rk_say_f(t, ".");
    } else {
        rk_say_f(t, "对案件%s（", ev->case_id);
        rk_say_who(t, "item", ev->item_code, 0);
        rk_say_f(t, "）罚款");
        pr_say_yuan(t, ev->fine);
        rk_say_f(t, "，超出裁量基准");
        pr_say_yuan(t, lo);
        rk_say_f(t, "至");
        pr_say_yuan(t, hi);
    }
}

static void dc_summary_exempt(rk_say *t, const rk_event *ev, int kind)
{
    int none = kind == RK_EXEMPT_KIND_NO_PENALTY;
    rk_say_who(t, "unit", ev->unit_id, 1);
    if (t->en) {
        rk_say_f(t, none ? " still imposed " : " imposed ");
        pr_say_yuan(t, ev->fine + ev->confiscation);
        rk_say_f(t, " of fines and confiscations in case %s", ev->case_id);
        rk_say_f(t, none ? " although " : " without the lighter penalty that ");
        rk_say_who(t, "item", ev->item_code, 0);
        rk_say_f(t, none ? " is on the no-penalty list."
                         : " on the lighter-penalty list calls for.");
    } else {
        rk_say_f(t, "对案件%s（", ev->case_id);
        rk_say_who(t, "item", ev->item_code, 0);
        rk_say_f(t, none ? "，属包容免罚清单）仍罚没" : "，属从轻处罚清单）未从轻处罚，罚没");
        pr_say_yuan(t, ev->fine + ev->confiscation);
    }
}

static void dc_summary_disparity(rk_say *t, const char *unit, const char *item, double mu,
                                 uint32_t nu, double mo, uint32_t no, double ratio,
                                 double threshold, const dc_cfg *c)
{
    if (t->en) {
        rk_say_f(t, "The median fine of ");
        rk_say_who(t, "unit", unit, 0);
        rk_say_f(t, " for ");
        rk_say_who(t, "item", item, 0);
        rk_say_f(t, " ");
        rk_say_window(t, c->window);
        rk_say_f(t, " was ");
        rk_say_yuan(t, mu);
        rk_say_f(t, " (%u %s), ", (unsigned)nu, nu == 1 ? "case" : "cases");
        rk_say_num(t, ratio, 2);
        rk_say_f(t, " times the other units' ");
        rk_say_yuan(t, mo);
        rk_say_f(t, " (%u %s; threshold ", (unsigned)no, no == 1 ? "case" : "cases");
        rk_say_num(t, threshold, 2);
        rk_say_f(t, " times): same case, different penalty.");
    } else {
        rk_say_who(t, "unit", unit, 0);
        rk_say_window(t, c->window);
        rk_say_f(t, "对");
        rk_say_who(t, "item", item, 0);
        rk_say_f(t, "的%u件处罚罚款中位数", (unsigned)nu);
        rk_say_yuan(t, mu);
        rk_say_f(t, "，是其他单位%u件中位数", (unsigned)no);
        rk_say_yuan(t, mo);
        rk_say_f(t, "的");
        rk_say_num(t, ratio, 2);
        rk_say_f(t, "倍（阈值");
        rk_say_num(t, threshold, 2);
        rk_say_f(t, "倍），同案不同罚");
    }
}

/* ===================================================================
 * State
 * =================================================================== */

static void dc_item_free_(void *p)
{
    dc_item *it = p;
    if (it != NULL)
        free(it->v);
    free(it);
}

/* Unlink c from its item, the heap and the map, and free it. */
static void dc_drop(dc_self *s, dc_case *c)
{
    dc_item *it = c->item;
    it->v[c->idx] = it->v[--it->n];
    it->v[c->idx]->idx = c->idx;
    if (it->n == 0)
        dc_item_free_(rk_map_del(&s->items, c->item_code));
    rk_heap_remove(&s->heap, c);
    rk_map_del(&s->cases, c->ent->key);
    free(c);
}

/* Remember a decision. Returns the record, or NULL when out of memory. */
static dc_case *dc_add(dc_self *s, const char *case_id, const char *unit, const char *item,
                       int64_t ts, double fine, rk_entry_ref ref)
{
    size_t ul = strlen(unit);
    dc_case *c = calloc(1, sizeof(*c) + ul + 1);
    dc_item *it;
    rk_map_entry *ie;

    if (c == NULL)
        return NULL;
    memcpy(c->unit, unit, ul + 1);
    c->ts = ts;
    c->fine = fine;
    c->ref = ref;
    c->hpos = RK_HEAP_NONE;
    ie = rk_map_find(&s->items, item);
    if (ie == NULL) {
        if ((it = calloc(1, sizeof(*it))) == NULL ||
            (ie = rk_map_put(&s->items, item, it, NULL)) == NULL) {
            free(it);
            free(c);
            return NULL;
        }
        it->open_hint = 1;          /* not known (a restore): looked up once */
    }
    it = ie->value;
    if (it->n == it->cap) {
        uint32_t ncap = it->cap ? it->cap * 2 : 8;
        dc_case **v = realloc(it->v, ncap * sizeof(*v));
        if (v == NULL)
            goto fail;
        it->v = v;
        it->cap = ncap;
    }
    if ((c->ent = rk_map_put(&s->cases, case_id, c, NULL)) == NULL)
        goto fail;
    if (rk_heap_push(&s->heap, ts > INT64_MAX - s->cfg.window ? INT64_MAX
                                : ts + s->cfg.window, c) != 0) {
        rk_map_del(&s->cases, case_id);
        goto fail;
    }
    c->item = it;
    c->item_code = ie->key;
    c->idx = it->n;
    it->v[it->n++] = c;
    return c;
fail:
    if (it->n == 0)
        dc_item_free_(rk_map_del(&s->items, item));
    free(c);
    return NULL;
}

static int dc_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double dc_median(double *v, uint32_t n)
{
    qsort(v, n, sizeof(*v), dc_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* ===================================================================
 * Rules
 * =================================================================== */

static int dc_emit(dc_self *s, const rk_event *ev, const char *rule, rk_severity sev,
                   double value, double threshold, const char *summary)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.severity = sev;
    a.ts = ev->ts;
    a.subject.case_id = ev->case_id;
    a.subject.unit_id = ev->unit_id;
    a.item_code = ev->item_code;
    a.trigger_key = ev->case_id;
    a.value = value;
    a.threshold = threshold;
    a.summary = summary;
    a.evidence = &ev->ref;
    a.n_evidence = 1;
    return s->api->emit(s->host, &a);
}

/* Emit a per-case alert of rule k through dc_emit and keep it open. */
static int dc_raise(dc_self *s, int k, const rk_event *ev, rk_severity sev, double value,
                    double threshold, const char *summary)
{
    int rc = dc_emit(s, ev, dc_rules[k], sev, value, threshold, summary);
    char *extra;
    if (rc != 1)
        return rc < 0 ? -1 : 0;
    /* Kept by the host, the case is all it needs: a notice takes the
     * alert's id from there (pr_notify), its reason names the amended
     * decision's unit and item. Kept here: the unit and item, for the id. */
    if (rk__open_bound(&s->open[k], ev->case_id))
        extra = NULL;
    else if ((extra = pr_join(ev->unit_id, ev->item_code)) == NULL)
        return -1;
    if (rk__open_add(&s->open[k], ev->case_id, ev->ts, extra) != 0 ||
        pr_expire_timer(s->api, s->host, ev->case_id, ev->ts) != 0)
        rc = -1;
    free(extra);
    return rc < 0 ? -1 : 0;
}

/* Does decision ev break its item's benchmark? 1 with the range, else 0. */
static int dc_breaks_benchmark(dc_self *s, const rk_event *ev, double *lo, double *hi)
{
    const char *level = (unsigned)ev->level < 4 ? dc_level_names[ev->level] : NULL;
    if (ev->item_code == NULL || ev->item_code[0] == '\0' ||
        !s->api->benchmark_range(s->host, ev->item_code, level, lo, hi))
        return 0;
    return !(ev->fine >= *lo && ev->fine <= *hi);
}

/* The exempt kind decision ev breaks (RK_EXEMPT_KIND_*), or 0. */
static int dc_breaks_exempt(dc_self *s, const rk_event *ev)
{
    int kind;
    if (ev->item_code == NULL || ev->item_code[0] == '\0')
        return 0;
    kind = s->api->exempt_kind(s->host, ev->item_code);
    if (kind == RK_EXEMPT_KIND_NO_PENALTY && ev->fine + ev->confiscation > 0)
        return kind;
    if (kind == RK_EXEMPT_KIND_LIGHTER && ev->leniency == RK_LENIENCY_NONE)
        return kind;
    return 0;
}

static int dc_rule_benchmark(dc_self *s, const rk_event *ev)
{
    rk_say t;
    double lo, hi;

    if (!dc_breaks_benchmark(s, ev, &lo, &hi) || rk__open_get(&s->open[DC_BENCH], ev->case_id))
        return 0;                   /* within, or the case's alert still stands */
    rk_say_init(&t, s->api, s->host);
    dc_summary_benchmark(&t, ev, lo, hi);
    return dc_raise(s, DC_BENCH, ev, RK_SEV_WARNING, ev->fine, ev->fine < lo ? lo : hi,
                    rk_say_text(&t));
}

static int dc_rule_exempt(dc_self *s, const rk_event *ev)
{
    rk_say t;
    int kind = dc_breaks_exempt(s, ev);
    double amount = ev->fine + ev->confiscation;

    if (kind == 0 || rk__open_get(&s->open[DC_EXEMPT], ev->case_id))
        return 0;
    rk_say_init(&t, s->api, s->host);
    dc_summary_exempt(&t, ev, kind);
    if (kind == RK_EXEMPT_KIND_NO_PENALTY)
        return dc_raise(s, DC_EXEMPT, ev, RK_SEV_WARNING, amount, 0, rk_say_text(&t));
    /* lighter: one decision that gave no leniency where the list calls for
     * it, against the 1 that makes an alert (the amount is in the sentence,
     * it is not what the rule measures). */
    return dc_raise(s, DC_EXEMPT, ev, RK_SEV_INFO, 1, 1, rk_say_text(&t));
}

/* The medians of disparity for unit's decisions of item it over the
 * window ending at end (decisions with ts in (end - window, end]) against
 * the other units'. Returns 1 when the rule holds (with *mu, *nu, *mo,
 * *no, *threshold), 0 when not, -1 when out of memory. */
static int dc_medians(const dc_self *s, const dc_item *it, const char *unit, int64_t end,
                      double *mu, uint32_t *nu, double *mo, uint32_t *no, double *threshold)
{
    double *mine, *others;
    int64_t from = rk_kit_cutoff(end, s->cfg.window);
    uint32_t i;
    int rc = 0;

    *nu = *no = 0;
    mine = malloc((size_t)it->n * sizeof(double) + 1);
    others = malloc((size_t)it->n * sizeof(double) + 1);
    if (mine == NULL || others == NULL) {
        rc = -1;
        goto done;
    }
    for (i = 0; i < it->n; i++) {
        const dc_case *x = it->v[i];
        if (x->ts <= from || x->ts > end)
            continue;
        if (strcmp(x->unit, unit) == 0)
            mine[(*nu)++] = x->fine;
        else
            others[(*no)++] = x->fine;
    }
    if (*nu < s->cfg.min_cases || *no < s->cfg.min_cases)
        goto done;
    *mu = dc_median(mine, *nu);
    *mo = dc_median(others, *no);
    if (!(*mo > 0))
        goto done;
    if (*mu >= s->cfg.max_ratio * *mo)
        *threshold = s->cfg.max_ratio;
    else if (*mu * s->cfg.max_ratio <= *mo)
        *threshold = 1.0 / s->cfg.max_ratio;
    else
        goto done;
    rc = 1;
done:
    free(mine);
    free(others);
    return rc;
}

/* disparity for the unit of decision c (just added) at ev->ts. */
static int dc_rule_disparity(dc_self *s, const rk_event *ev, const dc_case *c)
{
    const dc_item *it = c->item;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    double mu = 0, mo = 0, ratio, threshold = 0;
    uint32_t nu, no, i, ne = 0;
    int64_t from = rk_kit_cutoff(ev->ts, s->cfg.window);
    rk_say t;
    rk_alert a;
    char *key;
    int rc = dc_medians(s, it, c->unit, ev->ts, &mu, &nu, &mo, &no, &threshold);

    if (rc <= 0)
        return rc;
    ratio = mu / mo;
    rk_say_init(&t, s->api, s->host);
    dc_summary_disparity(&t, c->unit, c->item_code, mu, nu, mo, no, ratio, threshold,
                         &s->cfg);
    for (i = 0; i < it->n && ne < RK_MAX_EVIDENCE - 1; i++) {
        const dc_case *x = it->v[i];
        if (x != c && x->ts > from && x->ts <= ev->ts && strcmp(x->unit, c->unit) == 0)
            evid[ne++] = x->ref;
    }
    evid[ne++] = ev->ref;
    memset(&a, 0, sizeof(a));
    a.rule = "disparity";
    a.severity = RK_SEV_WARNING;
    a.ts = ev->ts;
    a.subject.unit_id = c->unit;
    a.item_code = c->item_code;
    a.value = ratio;
    a.threshold = threshold;
    a.summary = rk_say_text(&t);
    a.evidence = evid;
    a.n_evidence = ne;
    a.cooldown = s->cfg.cooldown;
    rc = s->api->emit(s->host, &a);
    if (rc != 1)
        return rc < 0 ? -1 : 0;
    key = pr_join(c->unit, c->item_code);
    rc = key == NULL || rk__open_add(&s->open[DC_DISP], key, ev->ts, NULL) != 0 ? -1 : 0;
    c->item->open_hint++;
    free(key);
    return rc;
}

/* ===================================================================
 * Lifecycle
 * =================================================================== */

/* Per-case alerts: key case_id, extra "unit PR_SEP item". */
static void dc_fill_case(rk_alert *a, const char *key, const char *extra, char *scratch,
                         size_t n)
{
    pr_split(extra, scratch, n, &a->subject.unit_id, &a->item_code);
    a->subject.case_id = key;
    a->trigger_key = key;
}

/* disparity: key "unit PR_SEP item". */
static void dc_fill_disp(rk_alert *a, const char *key, const char *extra, char *scratch,
                         size_t n)
{
    (void)extra;
    pr_split(key, scratch, n, &a->subject.unit_id, &a->item_code);
}

/* Retract the open alerts of case_id in set k (DC_BENCH, DC_EXEMPT) after
 * amendment ev: the reason names the unit, case and item as the summary
 * did (those of the open alert). */
static int dc_retract_case(dc_self *s, int k, const rk_event *ev)
{
    const rk__openrec *r = rk__open_get(&s->open[k], ev->case_id);
    const char *unit = r != NULL && r->n > 0 ? rk__open_field(&s->open[k], &r->a[0], 0) : NULL;
    const char *item = r != NULL && r->n > 0 ? rk__open_field(&s->open[k], &r->a[0], 1) : NULL;
    rk_say t;
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "The amended decision of ");
        rk_say_who(&t, "unit", unit != NULL ? unit : ev->unit_id, 0);
        rk_say_f(&t, " in case %s (", ev->case_id);
        rk_say_who(&t, "item", item != NULL ? item : ev->item_code, 0);
        rk_say_f(&t, k == DC_BENCH ? ") puts the fine within the discretion benchmark."
                                   : ") complies with the exemption list.");
    } else {
        rk_say_f(&t, "更正后的处罚决定表明，");
        rk_say_who(&t, "unit", unit != NULL ? unit : ev->unit_id, 0);
        rk_say_f(&t, "对案件%s（", ev->case_id);
        rk_say_who(&t, "item", item != NULL ? item : ev->item_code, 0);
        rk_say_f(&t, k == DC_BENCH ? "）的罚款在裁量基准范围内。" : "）的处罚符合包容免罚清单。");
    }
    return pr_notify(s->api, s->host, &s->open[k], ev->case_id, dc_rules[k], dc_fill_case,
                     RK_ALERT_RETRACTED, rk_say_text(&t), ev->ts, &ev->ref, 1, NULL, NULL);
}

/* An amendment ev of a case: retract its open out_of_benchmark and
 * exempt_fined alerts that the corrected decision no longer breaks. */
static int dc_recheck_case(dc_self *s, const rk_event *ev)
{
    double lo, hi;
    int rc = 0;
    if (!pr_has_lists(s->api))
        return 0;
    if (rk__open_get(&s->open[DC_BENCH], ev->case_id) && !dc_breaks_benchmark(s, ev, &lo, &hi))
        rc |= dc_retract_case(s, DC_BENCH, ev);
    if (rk__open_get(&s->open[DC_EXEMPT], ev->case_id) && !dc_breaks_exempt(s, ev))
        rc |= dc_retract_case(s, DC_EXEMPT, ev);
    return rc;
}

static int dc_i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* When disparity of unit for item it, holding or not at now, stops
 * holding as decisions leave the window without new ones: now when it
 * does not hold, else the first exit after which it does not. *err set
 * when out of memory. */
static int64_t dc_stops(const dc_self *s, const dc_item *it, const char *unit, int64_t now,
                        int *err)
{
    double mu, mo, th;
    uint32_t nu, no, i, n = 0;
    int64_t *exits, stops = now;
    int h = it != NULL ? dc_medians(s, it, unit, now, &mu, &nu, &mo, &no, &th) : 0;

    if (h <= 0) {
        *err |= h < 0;
        return now;
    }
    if ((exits = malloc((size_t)it->n * sizeof(*exits))) == NULL) {
        *err = 1;
        return now;
    }
    for (i = 0; i < it->n; i++) {
        int64_t x = it->v[i]->ts > INT64_MAX - s->cfg.window ? INT64_MAX
                                                            : it->v[i]->ts + s->cfg.window;
        if (it->v[i]->ts <= now && x > now)
            exits[n++] = x;
    }
    qsort(exits, n, sizeof(*exits), dc_i64_cmp);
    for (i = 0; i < n; i++) {
        if (i + 1 < n && exits[i + 1] == exits[i])
            continue;
        h = dc_medians(s, it, unit, exits[i], &mu, &nu, &mo, &no, &th);
        if (h < 0)
            *err = 1;
        if (h <= 0) {
            stops = exits[i];
            break;
        }
    }
    free(exits);
    return stops;
}

struct dc_never {
    dc_self *s;
    const dc_item *it;
    const char *unit;
    int64_t now;
};

/* An open disparity alert the medians at its own ts (still all in the
 * window) show never held. */
static int dc_never_held(void *ctx, const rk__open_alert *oa)
{
    const struct dc_never *c = ctx;
    double mu, mo, th;
    uint32_t nu, no;
    if (oa->ts <= rk_kit_cutoff(c->now, c->s->cfg.window))
        return 0;                   /* its decisions have left: cannot tell */
    return c->it == NULL || dc_medians(c->s, c->it, c->unit, oa->ts, &mu, &nu, &mo, &no,
                                       &th) == 0;
}

/* Resolve the open disparity alerts of key ("unit PR_SEP item") at
 * deadline. */
static int dc_resolve(dc_self *s, const char *key, int64_t deadline)
{
    char scratch[256], *sc = scratch;
    const char *unit, *item;
    size_t need = strlen(key) + 1;
    rk_say t;
    if (need > sizeof(scratch) && (sc = malloc(need)) == NULL)
        return -1;
    pr_split(key, sc, need, &unit, &item);
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "The median fine of ");
        rk_say_who(&t, "unit", unit, 0);
        rk_say_f(&t, " for ");
        rk_say_who(&t, "item", item, 0);
        rk_say_f(&t, " has been within ");
        rk_say_num(&t, s->cfg.max_ratio, 2);
        rk_say_f(&t, " times the other units' either way");
    } else {
        rk_say_who(&t, "unit", unit, 0);
        rk_say_f(&t, "对");
        rk_say_who(&t, "item", item, 0);
        rk_say_f(&t, "的罚款中位数与其他单位中位数的差距已回到");
        rk_say_num(&t, s->cfg.max_ratio, 2);
        rk_say_f(&t, "倍以内");
    }
    pr_say_kept(&t);
    if (sc != scratch)
        free(sc);
    return pr_notify(s->api, s->host, &s->open[DC_DISP], key, dc_rules[DC_DISP], dc_fill_disp,
                     RK_ALERT_RESOLVED, rk_say_text(&t), deadline, NULL, 0, NULL, NULL);
}

static int dc_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Append a copy of key to v (*n of *cap). 0 or -1 (out of memory). */
static int dc_keys_add(char ***v, size_t *n, size_t *cap, char *key)
{
    if (key == NULL)
        return -1;
    if (*n == *cap) {
        char **nv = realloc(*v, (*cap = *cap ? 2 * *cap : 4) * sizeof(**v));
        if (nv == NULL) {
            free(key);
            return -1;
        }
        *v = nv;
    }
    (*v)[(*n)++] = key;
    return 0;
}

/* The open disparity keys of item (a copy: the alerts change under
 * notices), *n of them (NULL with *n 0 when none or out of memory): the
 * keys "unit PR_SEP item" of the units with a decision of item in the
 * window that riskd holds an open alert under, in unit order - a unit with
 * none in the window no longer meets min_cases, and the resolve timer its
 * last decision armed ends its alerts - and those an older snapshot left
 * in the set's own map. The detector keeps nothing per alert for this:
 * the item's open_hint, set to what the last look found and counted up as
 * alerts fire, spares the look-up while the item has none. */
static char **dc_open_keys(dc_self *s, const char *item, size_t *n)
{
    dc_item *it = rk_map_get(&s->items, item);
    const rk_map *m = &s->open[DC_DISP].map;
    const char **u;
    char **v = NULL;
    size_t cap = 0, i, j;
    *n = 0;
    if (it != NULL && it->open_hint > 0 && it->n > 0 &&
        (u = malloc(it->n * sizeof(*u))) != NULL) {
        for (i = 0; i < it->n; i++)
            u[i] = it->v[i]->unit;
        qsort(u, it->n, sizeof(*u), dc_str_cmp);
        for (i = 0; i < it->n; i++) {
            char *k;
            if (i > 0 && strcmp(u[i], u[i - 1]) == 0)
                continue;
            if ((k = pr_join(u[i], item)) == NULL)
                break;
            if (rk__open_get(&s->open[DC_DISP], k) == NULL)
                free(k);
            else if (dc_keys_add(&v, n, &cap, k) != 0)
                break;
        }
        free(u);
        if (i == it->n)
            it->open_hint = (uint32_t)*n;
    }
    if (m->count > 0) {             /* an older snapshot's, kept by the set */
        rk_map_entry *e;
        size_t b;
        for (e = rk_map_first(m, &b); e != NULL; e = rk_map_next(m, &b, e)) {
            const char *sep = strchr(e->key, PR_SEP);
            if (sep == NULL || strcmp(sep + 1, item) != 0)
                continue;
            for (j = 0; j < *n && strcmp(v[j], e->key) != 0; j++)
                ;
            if (j == *n && dc_keys_add(&v, n, &cap, strdup(e->key)) != 0)
                break;
        }
    }
    return v;
}

static void dc_free_keys(char **v, size_t n)
{
    while (n > 0)
        free(v[--n]);
    free(v);
}

/* Before decision ev (at ts) of item: resolve the item's open disparity
 * alerts whose resolve time has passed, as their timers would have. */
static int dc_settle(dc_self *s, const char *item, int64_t ts)
{
    size_t n, i;
    char **v = dc_open_keys(s, item, &n);
    int rc = 0;
    for (i = 0; i < n; i++) {
        const rk__openrec *r = rk__open_get(&s->open[DC_DISP], v[i]);
        if (r != NULL && r->resolve_at < ts && dc_resolve(s, v[i], r->resolve_at) != 0)
            rc = -1;
    }
    dc_free_keys(v, n);
    return rc;
}

/* After decision ev changed item's decisions: for every open disparity
 * alert of the item, retract (on an amendment) those the medians at their
 * ts show never held, and move the resolve time to when it stops. */
static int dc_life(dc_self *s, const char *item, const rk_event *ev)
{
    size_t n, i;
    char **v = dc_open_keys(s, item, &n);
    const dc_item *it = rk_map_get(&s->items, item);
    int rc = 0, err = 0;
    for (i = 0; i < n && rc == 0; i++) {
        char *unit = strndup(v[i], (size_t)(strchr(v[i], PR_SEP) - v[i]));
        int64_t stops;
        if (unit == NULL) {
            rc = -1;
            break;
        }
        if (ev->flags & RK_EVF_AMENDED) {
            struct dc_never c = {s, it, unit, ev->ts};
            rk_say t;
            rk_say_init(&t, s->api, s->host);
            if (t.en) {
                rk_say_f(&t, "An amended decision shows the median fine of ");
                rk_say_who(&t, "unit", unit, 0);
                rk_say_f(&t, " for ");
                rk_say_who(&t, "item", item, 0);
                rk_say_f(&t, " was never that far from the other units'.");
            } else {
                rk_say_f(&t, "更正后的处罚决定表明，");
                rk_say_who(&t, "unit", unit, 0);
                rk_say_f(&t, "对");
                rk_say_who(&t, "item", item, 0);
                rk_say_f(&t, "的罚款中位数与其他单位的差距从未达到阈值。");
            }
            rc |= pr_notify(s->api, s->host, &s->open[DC_DISP], v[i], dc_rules[DC_DISP],
                            dc_fill_disp, RK_ALERT_RETRACTED, rk_say_text(&t),
                            ev->ts, &ev->ref, 1, dc_never_held, &c);
        }
        stops = dc_stops(s, it, unit, ev->ts, &err);
        free(unit);
        if (err)
            rc = -1;
        else if (stops == ev->ts)
            rc |= pr_arm_stopped(s->api, s->host, &s->open[DC_DISP], 'd', v[i], ev->ts);
        else
            rc |= pr_arm(s->api, s->host, &s->open[DC_DISP], 'd', v[i], stops);
    }
    dc_free_keys(v, n);
    return rc;
}

/* "d:<unit PR_SEP item>": resolve when the resolve time is still this
 * deadline. "x:<case>": forget the case's alerts PR_OPEN_KEEP old. */
static int dc_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    dc_self *s = self;
    const rk__openrec *r;
    (void)arg;
    if (key[0] == 'x' && key[1] == ':') {
        pr_open_expire(&s->open[DC_BENCH], key + 2, deadline);
        pr_open_expire(&s->open[DC_EXEMPT], key + 2, deadline);
        return 0;
    }
    if (key[0] != 'd' || key[1] != ':' ||
        (r = rk__open_get(&s->open[DC_DISP], key + 2)) == NULL || r->resolve_at != deadline)
        return 0;
    return dc_resolve(s, key + 2, deadline);
}

/* ===================================================================
 * Ops
 * =================================================================== */

static int dc_on_event(void *self, const rk_event *ev)
{
    dc_self *s = self;
    dc_case *c;
    char *old_item = NULL;
    int rc = 0, have_item;

    if (ev->type != RK_EV_CASE_DECIDED || ev->case_id == NULL || ev->unit_id == NULL)
        return 0;
    have_item = ev->item_code != NULL && ev->item_code[0] != '\0';
    if (have_item && dc_settle(s, ev->item_code, ev->ts) != 0)
        return -1;
    /* An amendment (or a redelivery the host let through) replaces the
     * decision it corrects. */
    if ((c = rk_map_get(&s->cases, ev->case_id)) != NULL) {
        if ((!have_item || strcmp(c->item_code, ev->item_code) != 0) &&
            ((old_item = strdup(c->item_code)) == NULL || dc_settle(s, old_item, ev->ts) != 0)) {
            free(old_item);
            return -1;
        }
        dc_drop(s, c);
    }
    if ((ev->flags & RK_EVF_AMENDED) && dc_recheck_case(s, ev) != 0)
        rc = -1;
    if (!have_item)
        goto life;
    if (pr_has_lists(s->api)) {
        if (dc_rule_benchmark(s, ev) != 0)
            rc = -1;
        if (dc_rule_exempt(s, ev) != 0)
            rc = -1;
    }
    if (rk_kit_cutoff(s->api->now(s->host), s->cfg.window) >= ev->ts)
        goto life;                  /* already outside the window */
    c = dc_add(s, ev->case_id, ev->unit_id, ev->item_code, ev->ts, ev->fine, ev->ref);
    if (c == NULL) {
        free(old_item);
        return -1;
    }
    if (dc_rule_disparity(s, ev, c) != 0)
        rc = -1;
life:
    if (have_item && dc_life(s, ev->item_code, ev) != 0)
        rc = -1;
    if (old_item != NULL && dc_life(s, old_item, ev) != 0)
        rc = -1;
    free(old_item);
    return rc;
}

static void dc_on_watermark(void *self, int64_t now)
{
    dc_self *s = self;
    const rk_heap_item *top;
    while ((top = rk_heap_top(&s->heap)) != NULL && top->key <= now)
        dc_drop(s, top->rec);
}

static void dc_clear(dc_self *s)
{
    int k;
    for (k = 0; k < 3; k++)
        rk__open_clear(&s->open[k]);
    rk_map_clear(&s->cases, free);
    rk_map_clear(&s->items, dc_item_free_);
    rk_heap_free(&s->heap);
    rk_heap_init(&s->heap, offsetof(dc_case, hpos));
}

static void *dc_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    dc_self *s;
    dc_cfg c;
    if (dc_parse_cfg(cfg, &c, err, errlen) != 0)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->cfg = c;
    rk_map_init(&s->cases);
    rk_map_init(&s->items);
    rk_heap_init(&s->heap, offsetof(dc_case, hpos));
    rk__open_init(&s->open[DC_BENCH]);
    rk__open_init(&s->open[DC_EXEMPT]);
    /* disparity keys are listed per item from its decisions' units (dc_open_keys) */
    rk__open_bind(&s->open[DC_BENCH], host, dc_rules[DC_BENCH]);
    rk__open_bind(&s->open[DC_EXEMPT], host, dc_rules[DC_EXEMPT]);
    rk__open_init(&s->open[DC_DISP]);
    rk__open_bind(&s->open[DC_DISP], host, dc_rules[DC_DISP]);
    return s;
}

static int dc_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    dc_self *s = self;
    dc_cfg c;
    uint32_t i;
    if (dc_parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    if (c.window != s->cfg.window) {
        for (i = 0; i < s->heap.n; i++) {
            const dc_case *x = s->heap.items[i].rec;
            s->heap.items[i].key = x->ts > INT64_MAX - c.window ? INT64_MAX : x->ts + c.window;
        }
        rk_heap_heapify(&s->heap);
    }
    s->cfg = c;
    return 0;
}

static int dc_snapshot(void *self, rk_buf *out)
{
    dc_self *s = self;
    rk_map_entry *e;
    size_t b;
    rk_buf_put_u32(out, DC_SNAP_VERSION);
    rk_buf_put_u32(out, (uint32_t)s->cases.count);
    for (e = rk_map_first(&s->cases, &b); e != NULL; e = rk_map_next(&s->cases, &b, e)) {
        const dc_case *c = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_str(out, c->unit);
        rk_buf_put_str(out, c->item_code);
        rk_buf_put_i64(out, c->ts);
        rk_buf_put_double(out, c->fine);
        rk_buf_put_ref(out, c->ref);
    }
    rk__open_put(out, &s->open[DC_BENCH]);
    rk__open_put(out, &s->open[DC_EXEMPT]);
    rk__open_put(out, &s->open[DC_DISP]);
    return out->oom ? -1 : 0;
}

static int dc_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    dc_self *s = self;
    rk_rd r;
    uint32_t n, i, ver;

    dc_clear(s);
    rk_rd_init(&r, data, len);
    if (pr_read_versions(&r, DC_SNAP_V1, DC_SNAP_VERSION, &ver, err, errlen) != 0)
        return -1;
    n = rk_rd_u32(&r);
    if (r.err || n > (size_t)(r.end - r.p) / (12 + 8 + 8 + 16))
        r.err = 1;
    for (i = 0; !r.err && i < n; i++) {
        char *id = rk_rd_str(&r, PR_MAX_ID);
        char *unit = rk_rd_str(&r, PR_MAX_ID);
        char *item = rk_rd_str(&r, PR_MAX_ID);
        int64_t ts = rk_rd_ts(&r);
        double fine = rk_rd_double(&r);
        rk_entry_ref ref = rk_rd_ref(&r);
        if (r.err || id == NULL || unit == NULL || item == NULL || item[0] == '\0' ||
            !(fine >= 0) || rk_map_find(&s->cases, id) != NULL ||
            dc_add(s, id, unit, item, ts, fine, ref) == NULL)
            r.err = 1;
        free(id);
        free(unit);
        free(item);
    }
    if (!r.err && ver >= 2)
        for (i = 0; i < 3 && !r.err; i++)
            rk__open_read(&r, &s->open[i]);
    if (r.err || r.p != r.end) {
        dc_clear(s);
        rk_kit_errf(err, errlen, "snapshot: truncated or corrupt");
        return -1;
    }
    return 0;
}

static void dc_destroy(void *self)
{
    dc_self *s = self;
    if (s == NULL)
        return;
    dc_clear(s);
    rk_heap_free(&s->heap);
    free(s);
}

static size_t dc_tracked_keys(void *self)
{
    return ((const dc_self *)self)->cases.count;
}

const rk_detector_ops rk__det_discretion = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "discretion",
    "fines outside the benchmarks, same case different penalty, fines on exempted matters",
    dc_create,
    dc_reconfigure,
    dc_on_event,
    dc_on_timer,
    dc_on_watermark,
    dc_snapshot,
    dc_restore,
    dc_destroy,
    dc_tracked_keys,
};
