/* detectors/inspection_frequency.c - enterprises inspected too often
 * (riskd-detectors(7)).
 *
 * It reads inspection.filed events. A filing is *counted* unless its kind
 * is in `exclude_kinds` (default complaint); counted filings that share a
 * joint_id (for one enterprise) are one *visit*, at the earliest
 * planned_at among them; any other counted filing is a visit of its own.
 * Windows are rolling, on planned_at: a window of length w ending at e
 * holds the visits with planned_at in (e - w, e]. Rules, evaluated at each
 * counted filing that starts a new visit (a filing joining a joint visit
 * already counted changes no count), for every window that holds that
 * visit and ends at it or at a later visit (so a late or rescheduled
 * filing is judged like one in order):
 *
 *   repeat     for each entry {window, max} of `limits` (default 1 in 1d,
 *              2 in 7d, 3 in 30d), more than max visits. The first limit
 *              exceeded (in configuration order) fires; value = visits,
 *              threshold = max; cooldown: that limit's window.
 *   whitelist  the enterprise is on the `whitelist` list and the last 365
 *              days hold more visits than its allowance. Subject: the
 *              enterprise and the unit of the filing over the allowance.
 *              value = visits, threshold = allowance; cooldown 365d.
 *   multi_unit the counted filings of >= 2 visits within `multi_window`
 *              (default 7d) name >= multi_min_units (default 2) different
 *              units: several units entered separately instead of one
 *              joint inspection. value = units, threshold =
 *              multi_min_units; cooldown: multi_window.
 *
 * `cooldown`, when given, replaces every rule's default. Amendments
 * (RK_EVF_AMENDED: a rescheduled filing, another enterprise, kind or
 * joint_id) replace the earlier filing and are evaluated again with the
 * new values; duplicates never reach a detector.
 *
 * Lifecycle (practice.h, detectors/lifecycle.c): the open alerts of each
 * rule are kept per enterprise (whitelist: with their unit). After every
 * filing of an enterprise with open alerts, fi_stops() finds the end of
 * the last stretch of time in which the rule holds as its windows slide
 * on without new filings (windows change only where a visit enters or
 * leaves them, so the candidates are each visit's time and that time plus
 * each window); a timer "r:", "w:" or "m:" plus the enterprise at that
 * time plus alerts.keep_firing_for resolves them all. An amendment after
 * which the rule holds in no window of the enterprise's filings (old and
 * new enterprise) retracts them instead. whitelist uses the allowance in
 * force when it is evaluated; an enterprise no longer listed stops
 * holding. Cost: O(n^2) per rule and filing (O(n^3) for multi_unit) in
 * the enterprise's filings n, only while it has open alerts.
 *
 * State: every filing (fi_task: task_id, enterprise, unit, joint_id,
 * planned_at, kind, entry; ~100 bytes plus the ids) for `horizon` =
 * max(365d, the longest limit window, multi_window) after its planned_at,
 * in an rk_map by task_id, an rk_map enterprise -> its filings and an
 * expiry heap by planned_at + horizon (on_watermark drops what has left
 * it). Per enterprise with open alerts an rk__openset record per rule
 * (lifecycle.c: ~48 bytes and the id, 16 bytes an alert, plus the unit
 * for whitelist). Memory grows with the filings of one horizon, not with
 * history. An
 * evaluation costs O(n^2) in the filings n of one enterprise (a handful).
 *
 * Snapshot (version 2): u32 version, u32 n, n x (str task_id, str
 * enterprise, str unit, str joint_id or "", i64 planned_at, i64 ts, ref,
 * u32 kind), then the open repeat, whitelist and multi_unit alerts
 * (rk__open_put each). Version 1 has no open alerts. The maps and the
 * heap are rebuilt. */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define FI_SNAP_VERSION 2u          /* 2: + the open alerts */
#define FI_SNAP_V1 1u
#define FI_MAX_LIMITS 16
#define FI_YEAR (365 * RK_DAY)

typedef struct fi_limit {
    int64_t window;
    uint32_t max;
} fi_limit;

typedef struct fi_cfg {
    fi_limit limits[FI_MAX_LIMITS];
    size_t n_limits;
    unsigned exclude;               /* bit k: kind k (rk_inspection_kind) */
    uint32_t multi_min_units;
    int64_t multi_window;
    int64_t cooldown;               /* < 0: each rule's window */
    int64_t horizon;
} fi_cfg;

typedef struct fi_ent {
    struct fi_task **v;
    uint32_t n, cap;
} fi_ent;

typedef struct fi_task {
    uint32_t hpos;                  /* in fi_self.heap */
    uint32_t idx;                   /* in its fi_ent */
    int64_t planned;
    int64_t ts;
    rk_entry_ref ref;
    int kind;
    rk_map_entry *ent;              /* in fi_self.tasks: the task_id */
    fi_ent *e;
    const char *ent_id;             /* fi_self.ents' key */
    const char *joint;              /* NULL, or in text[] */
    char text[];                    /* unit \0 joint \0 */
} fi_task;

typedef struct fi_self {
    const rk_host_api *api;
    rk_host *host;
    fi_cfg cfg;
    rk_map tasks;                   /* task_id -> fi_task */
    rk_map ents;                    /* enterprise_id -> fi_ent */
    rk_heap heap;                   /* fi_task by planned + horizon */
    rk__openset open[3];            /* enterprise -> open alerts of repeat,
                                       whitelist (extra: unit), multi_unit */
} fi_self;

static const char fi_kinds[] = "rwm";      /* timer key prefix of each set */
static const char *const fi_rules[] = {"repeat", "whitelist", "multi_unit"};

/* ===================================================================
 * Configuration
 * =================================================================== */

static const char *const fi_keys[] = {
    "limits", "exclude_kinds", "multi_min_units", "multi_window", "cooldown", NULL};
static const char *const fi_limit_keys[] = {"window", "max", NULL};
static const char *const fi_kind_names[] = {
    "plan", "random", "complaint", "special", "other", NULL};

static int fi_parse_cfg(const json_t *obj, fi_cfg *out, char *err, size_t errlen)
{
    const json_t *limits = obj ? json_object_get(obj, "limits") : NULL;
    const json_t *ex = obj ? json_object_get(obj, "exclude_kinds") : NULL;
    long long v;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (rk_kit_cfg_known_keys(obj, "", fi_keys, err, errlen) != 0)
        return -1;
    if (limits == NULL) {
        out->limits[0] = (fi_limit){RK_DAY, 1};
        out->limits[1] = (fi_limit){7 * RK_DAY, 2};
        out->limits[2] = (fi_limit){30 * RK_DAY, 3};
        out->n_limits = 3;
    } else {
        if (!json_is_array(limits) || json_array_size(limits) > FI_MAX_LIMITS) {
            rk_kit_errf(err, errlen, "limits: expected an array of at most %d "
                        "{\"window\", \"max\"} objects", FI_MAX_LIMITS);
            return -1;
        }
        for (i = 0; i < json_array_size(limits); i++) {
            const json_t *l = json_array_get(limits, i);
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "limits[%zu].", i);
            if (!json_is_object(l)) {
                rk_kit_errf(err, errlen, "limits[%zu]: expected an object", i);
                return -1;
            }
            if (rk_kit_cfg_known_keys(l, prefix, fi_limit_keys, err, errlen) != 0)
                return -1;
            if (json_object_get(l, "window") == NULL || json_object_get(l, "max") == NULL) {
                rk_kit_errf(err, errlen, "%s%s: missing", prefix,
                            json_object_get(l, "window") == NULL ? "window" : "max");
                return -1;
            }
            if (rk_kit_cfg_duration(l, prefix, "window", 1, 0, &out->limits[i].window,
                                    err, errlen) != 0 ||
                rk_kit_cfg_int(l, prefix, "max", 0, 1000000, 0, &v, err, errlen) != 0)
                return -1;
            if (out->limits[i].window > 3650 * RK_DAY) {
                rk_kit_errf(err, errlen, "%swindow: expected a duration of at most 3650d",
                            prefix);
                return -1;
            }
            out->limits[i].max = (uint32_t)v;
        }
        out->n_limits = json_array_size(limits);
    }
    if (ex == NULL) {
        out->exclude = 1u << RK_KIND_COMPLAINT;
    } else {
        if (!json_is_array(ex)) {
            rk_kit_errf(err, errlen, "exclude_kinds: expected an array of kinds");
            return -1;
        }
        for (i = 0; i < json_array_size(ex); i++) {
            const json_t *k = json_array_get(ex, i);
            int idx = -1, j;
            for (j = 0; json_is_string(k) && fi_kind_names[j] != NULL; j++)
                if (strcmp(json_string_value(k), fi_kind_names[j]) == 0)
                    idx = j;
            if (idx < 0) {
                rk_kit_errf(err, errlen, "exclude_kinds[%zu]: expected one of \"plan\", "
                            "\"random\", \"complaint\", \"special\", \"other\"", i);
                return -1;
            }
            out->exclude |= 1u << (idx + 1);
        }
    }
    if (rk_kit_cfg_int(obj, "", "multi_min_units", 2, 1000, 2, &v, err, errlen) != 0)
        return -1;
    out->multi_min_units = (uint32_t)v;
    if (rk_kit_cfg_duration(obj, "", "multi_window", 1, 7 * RK_DAY, &out->multi_window,
                            err, errlen) != 0 ||
        rk_kit_cfg_duration(obj, "", "cooldown", 0, -1, &out->cooldown, err, errlen) != 0)
        return -1;
    if (out->multi_window > 3650 * RK_DAY) {
        rk_kit_errf(err, errlen, "multi_window: expected a duration of at most 3650d");
        return -1;
    }
    out->horizon = FI_YEAR;
    for (i = 0; i < out->n_limits; i++)
        if (out->limits[i].window > out->horizon)
            out->horizon = out->limits[i].window;
    if (out->multi_window > out->horizon)
        out->horizon = out->multi_window;
    return 0;
}

/* ===================================================================
 * Summaries, one per rule
 * =================================================================== */

static void fi_summary_repeat(rk_say *t, const char *ent, uint32_t n, const fi_limit *l)
{
    rk_say_who(t, "enterprise", ent, 1);
    if (t->en) {
        rk_say_f(t, " was inspected %u %s within ", (unsigned)n, n == 1 ? "time" : "times");
        rk_say_span(t, l->window);
        rk_say_f(t, ", more than the limit of %u.", (unsigned)l->max);
    } else {
        rk_say_f(t, "在");
        rk_say_span(t, l->window);
        rk_say_f(t, "内被检查%u次，超过频次上限%u次", (unsigned)n, (unsigned)l->max);
    }
}

static void fi_summary_whitelist(rk_say *t, const char *ent, const char *unit, uint32_t n,
                                 long long allowance)
{
    if (t->en) {
        rk_say_who(t, "enterprise", ent, 1);
        rk_say_f(t, ", on the whitelist, was inspected %u %s ", (unsigned)n,
                 n == 1 ? "time" : "times");
        rk_say_window(t, FI_YEAR);
        rk_say_f(t, ", more than its allowance of %lld; the inspection over it was filed by ",
                 allowance);
        rk_say_who(t, "unit", unit, 0);
        rk_say_f(t, ".");
    } else {
        rk_say_f(t, "白名单内的");
        rk_say_who(t, "enterprise", ent, 0);
        rk_say_window(t, FI_YEAR);
        rk_say_f(t, "被检查%u次，超过其检查额度%lld次（超额检查由", (unsigned)n, allowance);
        rk_say_who(t, "unit", unit, 0);
        rk_say_f(t, "备案）");
    }
}

static void fi_summary_multi(rk_say *t, const char *ent, uint32_t units, const fi_cfg *c)
{
    rk_say_who(t, "enterprise", ent, 1);
    if (t->en) {
        rk_say_f(t, " was inspected separately by %u units within ", (unsigned)units);
        rk_say_span(t, c->multi_window);
        rk_say_f(t, " instead of in one joint inspection (threshold %u units).",
                 (unsigned)c->multi_min_units);
    } else {
        rk_say_f(t, "在");
        rk_say_span(t, c->multi_window);
        rk_say_f(t, "内被%u个执法单位分别检查，未合并为联合检查（阈值%u个单位）",
                 (unsigned)units, (unsigned)c->multi_min_units);
    }
}

/* ===================================================================
 * State
 * =================================================================== */

static void fi_ent_free_(void *p)
{
    fi_ent *e = p;
    if (e != NULL)
        free(e->v);
    free(e);
}

static int fi_counted(const fi_self *s, const fi_task *t)
{
    return !(s->cfg.exclude & (1u << t->kind));
}

static void fi_drop(fi_self *s, fi_task *t)
{
    fi_ent *e = t->e;
    e->v[t->idx] = e->v[--e->n];
    e->v[t->idx]->idx = t->idx;
    if (e->n == 0)
        fi_ent_free_(rk_map_del(&s->ents, t->ent_id));
    rk_heap_remove(&s->heap, t);
    rk_map_del(&s->tasks, t->ent->key);
    free(t);
}

static int64_t fi_expiry(const fi_self *s, int64_t planned)
{
    return planned > INT64_MAX - s->cfg.horizon ? INT64_MAX : planned + s->cfg.horizon;
}

/* Remember a filing. Returns it, or NULL when out of memory. */
static fi_task *fi_add(fi_self *s, const char *task_id, const char *ent_id, const char *unit,
                       const char *joint, int64_t planned, int64_t ts, rk_entry_ref ref,
                       int kind)
{
    size_t ul = strlen(unit), jl = joint ? strlen(joint) : 0;
    fi_task *t = calloc(1, sizeof(*t) + ul + 1 + jl + 1);
    rk_map_entry *me;
    fi_ent *e = NULL;

    if (t == NULL)
        return NULL;
    memcpy(t->text, unit, ul + 1);
    if (joint != NULL) {
        memcpy(t->text + ul + 1, joint, jl + 1);
        t->joint = t->text + ul + 1;
    }
    t->planned = planned;
    t->ts = ts;
    t->ref = ref;
    t->kind = kind;
    t->hpos = RK_HEAP_NONE;
    if ((me = rk_map_find(&s->ents, ent_id)) == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL ||
            (me = rk_map_put(&s->ents, ent_id, e, NULL)) == NULL) {
            free(e);
            free(t);
            return NULL;
        }
    }
    e = me->value;
    if (e->n == e->cap) {
        uint32_t ncap = e->cap ? e->cap * 2 : 4;
        fi_task **v = realloc(e->v, ncap * sizeof(*v));
        if (v == NULL)
            goto fail;
        e->v = v;
        e->cap = ncap;
    }
    if ((t->ent = rk_map_put(&s->tasks, task_id, t, NULL)) == NULL)
        goto fail;
    if (rk_heap_push(&s->heap, fi_expiry(s, planned), t) != 0) {
        rk_map_del(&s->tasks, task_id);
        goto fail;
    }
    t->e = e;
    t->ent_id = me->key;
    t->idx = e->n;
    e->v[e->n++] = t;
    return t;
fail:
    if (e->n == 0)
        fi_ent_free_(rk_map_del(&s->ents, ent_id));
    free(t);
    return NULL;
}

/* ===================================================================
 * Visits
 * =================================================================== */

/* The enterprise's counted filings with their visit: vt[i] the visit's
 * time, first[i] the index (in v) of the visit's first filing. */
typedef struct fi_view {
    const fi_task **v;
    int64_t *vt;
    uint32_t *first;
    uint32_t n;
} fi_view;

static int fi_view_build(const fi_self *s, const fi_ent *e, fi_view *out)
{
    uint32_t i, j;
    out->n = 0;
    out->v = malloc((size_t)e->n * sizeof(*out->v));
    out->vt = malloc((size_t)e->n * sizeof(*out->vt));
    out->first = malloc((size_t)e->n * sizeof(*out->first));
    if (out->v == NULL || out->vt == NULL || out->first == NULL)
        return -1;
    for (i = 0; i < e->n; i++)
        if (fi_counted(s, e->v[i]))
            out->v[out->n++] = e->v[i];
    for (i = 0; i < out->n; i++) {
        out->first[i] = i;
        out->vt[i] = out->v[i]->planned;
        if (out->v[i]->joint == NULL)
            continue;
        for (j = 0; j < i; j++)
            if (out->v[j]->joint != NULL && strcmp(out->v[j]->joint, out->v[i]->joint) == 0) {
                out->first[i] = out->first[j];
                break;
            }
    }
    for (i = 0; i < out->n; i++)    /* the visit's time: its earliest filing */
        if (out->vt[i] < out->vt[out->first[i]])
            out->vt[out->first[i]] = out->vt[i];
    for (i = 0; i < out->n; i++)
        out->vt[i] = out->vt[out->first[i]];
    return 0;
}

static void fi_view_free(fi_view *w)
{
    free(w->v);
    free(w->vt);
    free(w->first);
}

static int fi_in(int64_t t, int64_t end, int64_t w)
{
    return t <= end && t > rk_kit_cutoff(end, w);
}

/* Visits in the window (end - w, end]. */
static uint32_t fi_visits(const fi_view *vw, int64_t end, int64_t w)
{
    uint32_t i, n = 0;
    for (i = 0; i < vw->n; i++)
        if (vw->first[i] == i && fi_in(vw->vt[i], end, w))
            n++;
    return n;
}

/* Distinct units of the filings whose visit lies in (end - w, end]. */
static uint32_t fi_units(const fi_view *vw, int64_t end, int64_t w)
{
    uint32_t i, j, n = 0;
    for (i = 0; i < vw->n; i++) {
        int seen = 0;
        if (!fi_in(vw->vt[i], end, w))
            continue;
        for (j = 0; j < i && !seen; j++)
            if (fi_in(vw->vt[j], end, w) && strcmp(vw->v[j]->text, vw->v[i]->text) == 0)
                seen = 1;
        if (!seen)
            n++;
    }
    return n;
}

/* The window end, among `at` and later visit times within w of it, with
 * the most visits (first such end). */
static int64_t fi_worst_end(const fi_view *vw, int64_t at, int64_t w, uint32_t *count)
{
    uint32_t i, best = fi_visits(vw, at, w), c;
    int64_t end = at;
    for (i = 0; i < vw->n; i++) {
        if (vw->first[i] != i || vw->vt[i] <= at || vw->vt[i] - at >= w)
            continue;
        c = fi_visits(vw, vw->vt[i], w);
        if (c > best) {
            best = c;
            end = vw->vt[i];
        }
    }
    *count = best;
    return end;
}

static int fi_ref_cmp(const void *a, const void *b)
{
    const rk_entry_ref *x = a, *y = b;
    if (x->ms != y->ms)
        return x->ms < y->ms ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return (x->stream > y->stream) - (x->stream < y->stream);
}

/* Evidence: the filings whose visit is in the window, oldest entry first
 * (not in the order the enterprise's list holds them, which a restore
 * may change), then the trigger. */
static size_t fi_evidence(const fi_view *vw, int64_t end, int64_t w, rk_entry_ref trigger,
                          rk_entry_ref *out)
{
    size_t n = 0;
    uint32_t i;
    for (i = 0; i < vw->n && n < RK_MAX_EVIDENCE - 1; i++) {
        rk_entry_ref r = vw->v[i]->ref;
        if (!fi_in(vw->vt[i], end, w))
            continue;
        if (r.ms == trigger.ms && r.seq == trigger.seq && r.stream == trigger.stream)
            continue;
        out[n++] = r;
    }
    qsort(out, n, sizeof(*out), fi_ref_cmp);
    out[n++] = trigger;
    return n;
}

/* ===================================================================
 * Rules
 * =================================================================== */

static int fi_emit(fi_self *s, const rk_event *ev, const char *rule, rk_severity sev,
                   const char *unit, double value, double threshold, int64_t cooldown,
                   const char *summary, const rk_entry_ref *evid, size_t n_evid)
{
    rk_alert a;
    memset(&a, 0, sizeof(a));
    a.rule = rule;
    a.severity = sev;
    a.ts = ev->ts;
    a.subject.enterprise_id = ev->enterprise_id;
    a.subject.unit_id = unit;
    a.value = value;
    a.threshold = threshold;
    a.summary = summary;
    a.evidence = evid;
    a.n_evidence = n_evid;
    a.cooldown = s->cfg.cooldown >= 0 ? s->cfg.cooldown : cooldown;
    return s->api->emit(s->host, &a);
}

/* Emit through fi_emit and, when it is raised, keep it open in set k
 * (0 repeat, 1 whitelist, 2 multi_unit). 0 or -1. */
static int fi_raise(fi_self *s, int k, const rk_event *ev, rk_severity sev, const char *unit,
                    double value, double threshold, int64_t cooldown, const char *summary,
                    const rk_entry_ref *evid, size_t n_evid)
{
    int rc = fi_emit(s, ev, fi_rules[k], sev, unit, value, threshold, cooldown, summary, evid,
                     n_evid);
    if (rc < 0 || (rc == 1 && rk__open_add(&s->open[k], ev->enterprise_id, ev->ts, unit) != 0))
        return -1;
    return 0;
}

static int fi_evaluate(fi_self *s, const rk_event *ev, const fi_view *vw, int64_t at)
{
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    rk_say t;
    uint32_t n, i;
    long long allowance;
    int64_t end;
    int rc = 0;

    for (i = 0; i < s->cfg.n_limits; i++) {
        const fi_limit *l = &s->cfg.limits[i];
        end = fi_worst_end(vw, at, l->window, &n);
        if (n <= l->max)
            continue;
        rk_say_init(&t, s->api, s->host);
        fi_summary_repeat(&t, ev->enterprise_id, n, l);
        if (fi_raise(s, 0, ev, RK_SEV_WARNING, NULL, n, l->max, l->window,
                    rk_say_text(&t),
                    evid, fi_evidence(vw, end, l->window, ev->ref, evid)) != 0)
            rc = -1;
        break;
    }
    if (pr_has_lists(s->api) &&
        s->api->whitelist_allowance(s->host, ev->enterprise_id, &allowance)) {
        end = fi_worst_end(vw, at, FI_YEAR, &n);
        if ((long long)n > allowance) {
            rk_say_init(&t, s->api, s->host);
            fi_summary_whitelist(&t, ev->enterprise_id, ev->unit_id, n, allowance);
            if (fi_raise(s, 1, ev, RK_SEV_CRITICAL, ev->unit_id, n,
                        (double)allowance, FI_YEAR, rk_say_text(&t), evid,
                        fi_evidence(vw, end, FI_YEAR, ev->ref, evid)) != 0)
                rc = -1;
        }
    }
    /* multi_unit: windows ending at `at` or a later visit within reach. */
    {
        int64_t w = s->cfg.multi_window, best_end = at;
        uint32_t best = 0, u;
        for (i = 0; i <= vw->n; i++) {
            int64_t e2 = i == vw->n ? at : vw->vt[i];
            if (i < vw->n && (vw->first[i] != i || e2 <= at || e2 - at >= w))
                continue;
            if (fi_visits(vw, e2, w) < 2)
                continue;
            u = fi_units(vw, e2, w);
            if (u > best) {
                best = u;
                best_end = e2;
            }
        }
        if (best >= s->cfg.multi_min_units) {
            rk_say_init(&t, s->api, s->host);
            fi_summary_multi(&t, ev->enterprise_id, best, &s->cfg);
            if (fi_raise(s, 2, ev, RK_SEV_WARNING, NULL, best,
                        s->cfg.multi_min_units, w, rk_say_text(&t), evid,
                        fi_evidence(vw, best_end, w, ev->ref, evid)) != 0)
                rc = -1;
        }
    }
    return rc;
}


/* ===================================================================
 * Lifecycle
 * =================================================================== */

/* Does rule k (0 repeat, 1 whitelist with allowance, 2 multi_unit) hold
 * for the window(s) ending at end? */
static int fi_holds(const fi_self *s, const fi_view *vw, int k, long long allowance, int64_t end)
{
    size_t i;
    if (k == 0) {
        for (i = 0; i < s->cfg.n_limits; i++)
            if (fi_visits(vw, end, s->cfg.limits[i].window) > s->cfg.limits[i].max)
                return 1;
        return 0;
    }
    if (k == 1)
        return (long long)fi_visits(vw, end, FI_YEAR) > allowance;
    return fi_visits(vw, end, s->cfg.multi_window) >= 2 &&
           fi_units(vw, end, s->cfg.multi_window) >= s->cfg.multi_min_units;
}

static int fi_i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The end of the last stretch of time in which rule k holds, its windows
 * sliding on without new filings; INT64_MIN when it holds in none (*err
 * set when out of memory). A window's count changes only where a visit
 * enters (its time) or leaves it (its time plus the window). */
static int64_t fi_stops(const fi_self *s, const fi_view *vw, int k, long long allowance,
                        int *err)
{
    int64_t ws[FI_MAX_LIMITS], *c, stops = INT64_MIN;
    size_t nw = 0, n = 0, i, j;

    if (k == 0)
        for (nw = 0; nw < s->cfg.n_limits; nw++)
            ws[nw] = s->cfg.limits[nw].window;
    else
        ws[nw++] = k == 1 ? FI_YEAR : s->cfg.multi_window;
    if (vw->n == 0)
        return INT64_MIN;
    if ((c = malloc((size_t)vw->n * (nw + 1) * sizeof(*c))) == NULL) {
        *err = 1;
        return INT64_MIN;
    }
    for (i = 0; i < vw->n; i++) {
        if (vw->first[i] != i)
            continue;
        c[n++] = vw->vt[i];
        for (j = 0; j < nw; j++)
            c[n++] = vw->vt[i] > INT64_MAX - ws[j] ? INT64_MAX : vw->vt[i] + ws[j];
    }
    qsort(c, n, sizeof(*c), fi_i64_cmp);
    for (i = n; i-- > 0;) {
        if (i + 1 < n && c[i] == c[i + 1])
            continue;
        if (fi_holds(s, vw, k, allowance, c[i])) {
            for (j = i + 1; j < n && c[j] == c[i]; j++)
                ;
            stops = j < n ? c[j] : INT64_MAX;
            break;
        }
    }
    free(c);
    return stops;
}

static void fi_fill(rk_alert *a, const char *key, const char *extra, char *scratch, size_t n)
{
    (void)scratch;
    (void)n;
    a->subject.enterprise_id = key;
    a->subject.unit_id = extra;
}

/* Resolve the open alerts of set k of enterprise ent at deadline. */
static int fi_resolve(fi_self *s, int k, const char *ent, int64_t deadline)
{
    rk_say t;
    rk_say_init(&t, s->api, s->host);
    if (k == 1 && !t.en)
        rk_say_f(&t, "白名单内的");
    rk_say_who(&t, "enterprise", ent, 1);
    if (k == 0) {
        rk_say_f(&t, t.en ? " has been back within the inspection limits"
                          : "的检查次数已回到频次上限以内");
    } else if (k == 1) {
        if (t.en) {
            rk_say_f(&t, ", on the whitelist, has been back within its allowance ");
            rk_say_window(&t, FI_YEAR);
        } else {
            rk_say_window(&t, FI_YEAR);
            rk_say_f(&t, "的检查次数已回到其检查额度以内");
        }
    } else if (t.en) {
        rk_say_f(&t, " has not been inspected separately by %u or more units within ",
                 (unsigned)s->cfg.multi_min_units);
        rk_say_span(&t, s->cfg.multi_window);
    } else {
        rk_say_f(&t, "已不再被多个执法单位分别检查（");
        rk_say_span(&t, s->cfg.multi_window);
        rk_say_f(&t, "内少于%u个单位）", (unsigned)s->cfg.multi_min_units);
    }
    pr_say_kept(&t);
    return pr_notify(s->api, s->host, &s->open[k], ent, fi_rules[k], fi_fill,
                     RK_ALERT_RESOLVED, rk_say_text(&t), deadline, NULL, 0, NULL, NULL);
}

/* Retract the open alerts of set k of enterprise ent after amendment ev. */
static int fi_retract(fi_self *s, int k, const char *ent, const rk_event *ev)
{
    rk_say t;
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "An amended filing shows ");
        rk_say_who(&t, "enterprise", ent, 0);
        rk_say_f(&t, k == 1 ? ", on the whitelist, was never inspected past its allowance."
                            : " was never inspected past the limit.");
    } else {
        rk_say_f(&t, k == 1 ? "更正后的检查备案表明，白名单内的" : "更正后的检查备案表明，");
        rk_say_who(&t, "enterprise", ent, 0);
        rk_say_f(&t, k == 1 ? "的检查从未超过其检查额度。" : "的检查从未超过上限。");
    }
    return pr_notify(s->api, s->host, &s->open[k], ent, fi_rules[k], fi_fill,
                     RK_ALERT_RETRACTED, rk_say_text(&t), ev->ts, &ev->ref, 1, NULL, NULL);
}

/* An event of ent at ts: resolve first what is due before it (the timer
 * held back by another stream), as the timer would have. */
static int fi_settle(fi_self *s, const char *ent, int64_t ts)
{
    int k, rc = 0;
    for (k = 0; k < 3; k++) {
        const rk__openrec *r = rk__open_get(&s->open[k], ent);
        if (r != NULL && r->resolve_at < ts && fi_resolve(s, k, ent, r->resolve_at) != 0)
            rc = -1;
    }
    return rc;
}

/* After filing ev changed ent's filings: retract the open alerts of a
 * rule that, after an amendment, holds in no window of them; else move
 * each rule's resolve time to when it stops holding. 0 or -1. */
static int fi_life(fi_self *s, const char *ent, const rk_event *ev)
{
    const fi_ent *e = rk_map_get(&s->ents, ent);
    fi_view vw = {0};
    int k, rc = 0, err = 0;

    if (rk__open_get(&s->open[0], ent) == NULL && rk__open_get(&s->open[1], ent) == NULL &&
        rk__open_get(&s->open[2], ent) == NULL)
        return 0;
    if (e != NULL && fi_view_build(s, e, &vw) != 0) {
        fi_view_free(&vw);
        return -1;
    }
    for (k = 0; k < 3; k++) {
        long long allowance = 0;
        int listed = 1;
        int64_t stops;
        if (rk__open_get(&s->open[k], ent) == NULL)
            continue;
        if (k == 1)
            listed = pr_has_lists(s->api) &&
                     s->api->whitelist_allowance(s->host, ent, &allowance);
        stops = listed ? fi_stops(s, &vw, k, allowance, &err) : INT64_MIN;
        if (err)
            rc = -1;
        else if (stops == INT64_MIN && listed && (ev->flags & RK_EVF_AMENDED))
            rc |= fi_retract(s, k, ent, ev);
        else if (stops == INT64_MIN)
            rc |= pr_arm_stopped(s->api, s->host, &s->open[k], fi_kinds[k], ent, ev->ts);
        else
            rc |= pr_arm(s->api, s->host, &s->open[k], fi_kinds[k], ent, stops);
    }
    fi_view_free(&vw);
    return rc;
}

/* "r:", "w:", "m:" + enterprise: resolve when the resolve time is still
 * this deadline. */
static int fi_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    fi_self *s = self;
    const char *p = strchr(fi_kinds, key[0]);
    const rk__openrec *r;
    (void)arg;
    if (key[0] == '\0' || p == NULL || key[1] != ':')
        return 0;
    r = rk__open_get(&s->open[p - fi_kinds], key + 2);
    if (r == NULL || r->resolve_at != deadline)
        return 0;
    return fi_resolve(s, (int)(p - fi_kinds), key + 2, deadline);
}

/* ===================================================================
 * Ops
 * =================================================================== */

static int fi_on_event(void *self, const rk_event *ev)
{
    fi_self *s = self;
    fi_task *t, *old;
    fi_view vw = {0};
    char *old_ent = NULL;
    uint32_t i;
    int rc = 0, joins = 0;

    if (ev->type != RK_EV_INSPECTION_FILED || ev->task_id == NULL ||
        ev->enterprise_id == NULL || ev->unit_id == NULL)
        return 0;
    if (fi_settle(s, ev->enterprise_id, ev->ts) != 0)
        return -1;
    if ((old = rk_map_get(&s->tasks, ev->task_id)) != NULL) {
        if (strcmp(old->ent_id, ev->enterprise_id) != 0) {
            if ((old_ent = strdup(old->ent_id)) == NULL || fi_settle(s, old_ent, ev->ts) != 0) {
                free(old_ent);
                return -1;
            }
        }
        fi_drop(s, old);            /* an amendment replaces its filing */
    }
    if (fi_expiry(s, ev->planned_at) <= s->api->now(s->host))
        goto life;                  /* planned before every window */
    t = fi_add(s, ev->task_id, ev->enterprise_id, ev->unit_id, ev->joint_id, ev->planned_at,
               ev->ts, ev->ref, ev->kind > 0 && ev->kind <= RK_KIND_OTHER ? (int)ev->kind
                                                                          : RK_KIND_PLAN);
    if (t == NULL) {
        free(old_ent);
        return -1;
    }
    if (!fi_counted(s, t))
        goto life;
    if (fi_view_build(s, t->e, &vw) != 0) {
        rc = -1;
        goto life;
    }
    for (i = 0; i < vw.n; i++)
        if (vw.v[i] == t && vw.first[i] != i)
            joins = 1;              /* part of a joint visit already counted */
    if (!joins || (ev->flags & RK_EVF_AMENDED)) {
        int64_t at = t->planned;
        for (i = 0; i < vw.n; i++)
            if (vw.v[i] == t)
                at = vw.vt[i];
        rc = fi_evaluate(s, ev, &vw, at);
    }
life:
    fi_view_free(&vw);
    if (fi_life(s, ev->enterprise_id, ev) != 0)
        rc = -1;
    if (old_ent != NULL && fi_life(s, old_ent, ev) != 0)
        rc = -1;
    free(old_ent);
    return rc;
}

static void fi_on_watermark(void *self, int64_t now)
{
    fi_self *s = self;
    const rk_heap_item *top;
    while ((top = rk_heap_top(&s->heap)) != NULL && top->key <= now)
        fi_drop(s, top->rec);
}

static void fi_clear(fi_self *s)
{
    int k;
    for (k = 0; k < 3; k++)
        rk__open_clear(&s->open[k]);
    rk_map_clear(&s->tasks, free);
    rk_map_clear(&s->ents, fi_ent_free_);
    rk_heap_free(&s->heap);
    rk_heap_init(&s->heap, offsetof(fi_task, hpos));
}

static void *fi_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    fi_self *s;
    fi_cfg c;
    if (fi_parse_cfg(cfg, &c, err, errlen) != 0)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->cfg = c;
    rk_map_init(&s->tasks);
    rk_map_init(&s->ents);
    rk_heap_init(&s->heap, offsetof(fi_task, hpos));
    rk__open_init(&s->open[0]);
    rk__open_init(&s->open[1]);
    rk__open_init(&s->open[2]);
    for (int k = 0; k < 3; k++)
        rk__open_bind(&s->open[k], host, fi_rules[k]);
    return s;
}

static int fi_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    fi_self *s = self;
    fi_cfg c;
    uint32_t i;
    if (fi_parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    s->cfg = c;
    for (i = 0; i < s->heap.n; i++)
        s->heap.items[i].key = fi_expiry(s, ((const fi_task *)s->heap.items[i].rec)->planned);
    rk_heap_heapify(&s->heap);
    return 0;
}

static int fi_snapshot(void *self, rk_buf *out)
{
    fi_self *s = self;
    rk_map_entry *e;
    size_t b;
    rk_buf_put_u32(out, FI_SNAP_VERSION);
    rk_buf_put_u32(out, (uint32_t)s->tasks.count);
    for (e = rk_map_first(&s->tasks, &b); e != NULL; e = rk_map_next(&s->tasks, &b, e)) {
        const fi_task *t = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_str(out, t->ent_id);
        rk_buf_put_str(out, t->text);
        rk_buf_put_str(out, t->joint ? t->joint : "");
        rk_buf_put_i64(out, t->planned);
        rk_buf_put_i64(out, t->ts);
        rk_buf_put_ref(out, t->ref);
        rk_buf_put_u32(out, (uint32_t)t->kind);
    }
    rk__open_put(out, &s->open[0]);
    rk__open_put(out, &s->open[1]);
    rk__open_put(out, &s->open[2]);
    return out->oom ? -1 : 0;
}

static int fi_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    fi_self *s = self;
    rk_rd r;
    uint32_t n, i, ver;

    fi_clear(s);
    rk_rd_init(&r, data, len);
    if (pr_read_versions(&r, FI_SNAP_V1, FI_SNAP_VERSION, &ver, err, errlen) != 0)
        return -1;
    n = rk_rd_u32(&r);
    if (r.err || n > (size_t)(r.end - r.p) / (16 + 16 + 16 + 4))
        r.err = 1;
    for (i = 0; !r.err && i < n; i++) {
        char *id = rk_rd_str(&r, PR_MAX_ID);
        char *ent = rk_rd_str(&r, PR_MAX_ID);
        char *unit = rk_rd_str(&r, PR_MAX_ID);
        char *joint = rk_rd_str(&r, PR_MAX_ID);
        int64_t planned = rk_rd_ts(&r), ts = rk_rd_ts(&r);
        rk_entry_ref ref = rk_rd_ref(&r);
        uint32_t kind = rk_rd_u32(&r);
        if (r.err || id == NULL || ent == NULL || unit == NULL || joint == NULL ||
            kind < RK_KIND_PLAN || kind > RK_KIND_OTHER || rk_map_find(&s->tasks, id) != NULL ||
            fi_add(s, id, ent, unit, joint[0] ? joint : NULL, planned, ts, ref,
                   (int)kind) == NULL)
            r.err = 1;
        free(id);
        free(ent);
        free(unit);
        free(joint);
    }
    if (!r.err && ver >= 2)
        for (i = 0; i < 3 && !r.err; i++)
            rk__open_read(&r, &s->open[i]);
    if (r.err || r.p != r.end) {
        fi_clear(s);
        rk_kit_errf(err, errlen, "snapshot: truncated or corrupt");
        return -1;
    }
    return 0;
}

static void fi_destroy(void *self)
{
    fi_self *s = self;
    if (s == NULL)
        return;
    fi_clear(s);
    rk_heap_free(&s->heap);
    free(s);
}

static size_t fi_tracked_keys(void *self)
{
    return ((const fi_self *)self)->tasks.count;
}

const rk_detector_ops rk__det_inspection_frequency = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "inspection_frequency",
    "enterprises inspected more often than the limits, the whitelist or by several units",
    fi_create,
    fi_reconfigure,
    fi_on_event,
    fi_on_timer,
    fi_on_watermark,
    fi_snapshot,
    fi_restore,
    fi_destroy,
    fi_tracked_keys,
};
