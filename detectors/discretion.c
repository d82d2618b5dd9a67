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
 *                     per decision, no cooldown. value = fine +
 *                     confiscation; threshold 0 for no_penalty, and for
 *                     lighter the same amount (no lighter penalty given).
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
 * State: every decision with an item_code of the last `window` (dc_case:
 * case_id, unit, item, ts, fine, entry; ~120 bytes plus the ids) in an
 * rk_map by case_id, an rk_map item_code -> array of its decisions, and
 * an expiry heap by ts + window; on_watermark drops what left the window.
 * Memory grows with the decisions of one window, not with history. A
 * decision costs O(decisions of its item in the window) plus sorting the
 * fines of that item.
 *
 * Snapshot (version 1): u32 version, u32 n, n x (str case_id, str unit,
 * str item, i64 ts, double fine, ref). The maps and the heap are rebuilt. */
#include <math.h>

#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define DC_SNAP_VERSION 1u

typedef struct dc_cfg {
    int64_t window;
    uint32_t min_cases;
    double max_ratio;
    int64_t cooldown;
} dc_cfg;

typedef struct dc_item {
    struct dc_case **v;
    uint32_t n, cap;
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
} dc_self;

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
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
}

static int dc_rule_benchmark(dc_self *s, const rk_event *ev)
{
    rk_say t;
    double lo, hi;
    const char *level = (unsigned)ev->level < 4 ? dc_level_names[ev->level] : NULL;

    if (!s->api->benchmark_range(s->host, ev->item_code, level, &lo, &hi))
        return 0;
    if (ev->fine >= lo && ev->fine <= hi)
        return 0;
    rk_say_init(&t, s->api, s->host);
    dc_summary_benchmark(&t, ev, lo, hi);
    return dc_emit(s, ev, "out_of_benchmark", RK_SEV_WARNING, ev->fine,
                   ev->fine < lo ? lo : hi, rk_say_text(&t));
}

static int dc_rule_exempt(dc_self *s, const rk_event *ev)
{
    rk_say t;
    int kind = s->api->exempt_kind(s->host, ev->item_code);
    double amount = ev->fine + ev->confiscation;

    if (kind == RK_EXEMPT_KIND_NO_PENALTY && amount > 0) {
        rk_say_init(&t, s->api, s->host);
        dc_summary_exempt(&t, ev, kind);
        return dc_emit(s, ev, "exempt_fined", RK_SEV_WARNING, amount, 0, rk_say_text(&t));
    }
    if (kind == RK_EXEMPT_KIND_LIGHTER && ev->leniency == RK_LENIENCY_NONE) {
        rk_say_init(&t, s->api, s->host);
        dc_summary_exempt(&t, ev, kind);
        return dc_emit(s, ev, "exempt_fined", RK_SEV_INFO, amount, amount, rk_say_text(&t));
    }
    return 0;
}

/* disparity for the unit of decision c (just added) at ev->ts. */
static int dc_rule_disparity(dc_self *s, const rk_event *ev, const dc_case *c)
{
    const dc_item *it = c->item;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    double *mine, *others, mu, mo, ratio, threshold;
    uint32_t nu = 0, no = 0, i, ne = 0;
    int64_t from = rk_kit_cutoff(ev->ts, s->cfg.window);
    rk_say t;
    rk_alert a;
    int rc = 0;

    mine = malloc((size_t)it->n * sizeof(double));
    others = malloc((size_t)it->n * sizeof(double));
    if (mine == NULL || others == NULL) {
        rc = -1;
        goto done;
    }
    for (i = 0; i < it->n; i++) {
        const dc_case *x = it->v[i];
        if (x->ts <= from || x->ts > ev->ts)
            continue;
        if (strcmp(x->unit, c->unit) == 0)
            mine[nu++] = x->fine;
        else
            others[no++] = x->fine;
    }
    if (nu < s->cfg.min_cases || no < s->cfg.min_cases)
        goto done;
    mu = dc_median(mine, nu);
    mo = dc_median(others, no);
    if (!(mo > 0))
        goto done;
    ratio = mu / mo;
    if (mu >= s->cfg.max_ratio * mo)
        threshold = s->cfg.max_ratio;
    else if (mu * s->cfg.max_ratio <= mo)
        threshold = 1.0 / s->cfg.max_ratio;
    else
        goto done;
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
    rc = s->api->emit(s->host, &a) < 0 ? -1 : 0;
done:
    free(mine);
    free(others);
    return rc;
}

/* ===================================================================
 * Ops
 * =================================================================== */

static int dc_on_event(void *self, const rk_event *ev)
{
    dc_self *s = self;
    dc_case *c;
    int rc = 0;

    if (ev->type != RK_EV_CASE_DECIDED || ev->case_id == NULL || ev->unit_id == NULL)
        return 0;
    /* An amendment (or a redelivery the host let through) replaces the
     * decision it corrects. */
    if ((c = rk_map_get(&s->cases, ev->case_id)) != NULL)
        dc_drop(s, c);
    if (ev->item_code == NULL || ev->item_code[0] == '\0')
        return 0;
    if (pr_has_lists(s->api)) {
        if (dc_rule_benchmark(s, ev) != 0)
            rc = -1;
        if (dc_rule_exempt(s, ev) != 0)
            rc = -1;
    }
    if (rk_kit_cutoff(s->api->now(s->host), s->cfg.window) >= ev->ts)
        return rc;                  /* already outside the window */
    c = dc_add(s, ev->case_id, ev->unit_id, ev->item_code, ev->ts, ev->fine, ev->ref);
    if (c == NULL)
        return -1;
    if (dc_rule_disparity(s, ev, c) != 0)
        rc = -1;
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
    return out->oom ? -1 : 0;
}

static int dc_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    dc_self *s = self;
    rk_rd r;
    uint32_t n, i;

    dc_clear(s);
    rk_rd_init(&r, data, len);
    if (pr_read_version(&r, DC_SNAP_VERSION, err, errlen) != 0)
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
    NULL,
    dc_on_watermark,
    dc_snapshot,
    dc_restore,
    dc_destroy,
    dc_tracked_keys,
};
