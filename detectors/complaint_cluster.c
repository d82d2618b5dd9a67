/* detectors/complaint_cluster.c - the complaint_cluster detector (riskd-detectors(7)).
 *
 * One rule, `cluster`, evaluated for every entry of the config list `rules`
 * ({group_by, window, min_count}; group_by is unit_id, officer_id,
 * enterprise_id or region). On each case.complaint, for each rule and each
 * key the complaint has for that rule's group_by (every distinct officer
 * named on it for officer_id; otherwise the single field, skipped when
 * absent), the complaint is pushed into that key's sliding window; when the
 * window then holds >= min_count complaints an alert fires whose subject is
 * that one field. The cooldown is the detector's `cooldown` when given, else
 * each rule's own window.
 *
 * State is one rk_map per rule (key -> rk_win of complaints), so it is kept
 * per (rule, key). Windows are evaluated at the complaint's ts after
 * expiring older items. Each rule's map has an expiry heap (kit.h rk_heap)
 * holding every key once, keyed by a time no later than the key's expiry
 * (newest complaint's ts + window); events do not touch it. on_watermark
 * (now) pops only the keys whose heap time is < now, expires their windows
 * at `now`, deletes those left empty and re-keys the others: a batch costs
 * what expires, and a key is freed at the first watermark past its newest
 * complaint + window.
 *
 * reconfigure() and restore() carry per-rule state across a changed rules
 * list by matching rules, not by position: a new rule takes the state of an
 * old rule with the same group_by and window, else that of an old rule with
 * the same group_by (its windows hold the same complaints; a longer new
 * window only sees what the old one still held, a shorter one is trimmed at
 * the next event or watermark), else starts empty. State of old rules that
 * no new rule takes is dropped. Thus reordering rules or changing min_count
 * keeps the windows, and only a rule whose group_by is new starts over.
 * The heaps move with their maps and are re-keyed for the new windows.
 *
 * Lifecycle (detectors/lifecycle.c): a cluster alert stays open, per
 * (group_by, window, key), until the key's count has been below min_count
 * for alerts.keep_firing_for: it drops below when the (len - min_count +
 * 1)-th newest complaint leaves the window; a timer "r:<group_by>:<window
 * ms>:<key>" at that time + keep_firing_for resolves it unless complaints
 * made it hold again. Complaints are never amended: no retraction.
 *
 * Snapshot format (version 2): u32 version, u32 n_rules, then per rule u32
 * group_by, i64 window, u32 n_keys, and per key str key, u32 n, n x (i64 ts,
 * ref); then the open alerts (rk__open_put). Version 1 has none. The expiry
 * heaps are not stored: restore() rebuilds them. */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"           /* pr_say_kept: the reasons' "for 1 hour" */

#define CC_SNAP_VERSION 2u
#define CC_SNAP_V1 1u
#define CC_MAX_RULES 64
#define CC_MAX_ID 65536             /* longest key accepted by restore() */
#define CC_ITEM_BYTES (8 + 16)      /* encoded size of one window item */

enum { CC_UNIT = 0, CC_OFFICER, CC_ENTERPRISE, CC_REGION, CC_NGROUP };

static const char *const cc_group_names[] = {
    "unit_id", "officer_id", "enterprise_id", "region", NULL
};

/* The kind of each group_by in the names list (summaries, reasons). */
static const char *const cc_group_labels[] = {
    "unit", "officer", "enterprise", "region"
};

typedef struct cc_rule {
    int group_by;                   /* CC_UNIT ... */
    int64_t window;                 /* ms, >= 1 */
    uint32_t min_count;
} cc_rule;

typedef struct cc_cfg {
    cc_rule rules[CC_MAX_RULES];
    size_t n_rules;
    int64_t cooldown;               /* ms; < 0: each rule's window */
} cc_cfg;

typedef struct cc_state {
    const rk_host_api *api;
    rk_host *host;
    cc_cfg cfg;
    rk_winset keys[CC_MAX_RULES];      /* per rule */
    rk__openset open;               /* "<group_by>:<window ms>:<key>" -> open
                                       cluster alerts */
} cc_state;

/* ===================================================================
 * Configuration
 * =================================================================== */

static const char *const cc_keys[] = { "rules", "cooldown", NULL };
static const char *const cc_rule_keys[] = { "group_by", "window", "min_count", NULL };

/* Validate rules[idx] (`r`) into *out. Returns 0, or -1 with a message
 * naming "rules[idx].<key>" in err when r is not an object, has an unknown
 * key, lacks a key or has a value of the wrong type or range. */
static int cc_parse_rule(const json_t *r, size_t idx, cc_rule *out,
                         char *err, size_t errlen)
{
    char prefix[48];
    long long v;
    static const char *const required[] = { "group_by", "window", "min_count" };
    size_t k;

    snprintf(prefix, sizeof(prefix), "rules[%zu].", idx);
    if (!json_is_object(r)) {
        rk_kit_errf(err, errlen, "rules[%zu]: expected an object", idx);
        return -1;
    }
    if (rk_kit_cfg_known_keys(r, prefix, cc_rule_keys, err, errlen) != 0)
        return -1;
    for (k = 0; k < sizeof(required) / sizeof(required[0]); k++) {
        if (json_object_get(r, required[k]) == NULL) {
            rk_kit_errf(err, errlen, "%s%s: missing", prefix, required[k]);
            return -1;
        }
    }
    if (rk_kit_cfg_enum(r, prefix, "group_by", cc_group_names, 0,
                        &out->group_by, err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_duration(r, prefix, "window", 1, 0, &out->window,
                            err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_int(r, prefix, "min_count", 1, 1000000, 1, &v,
                       err, errlen) != 0)
        return -1;
    out->min_count = (uint32_t)v;
    return 0;
}

/* Validate the detector's config object `obj` into *out, applying the
 * defaults (unit 5 in 7d, officer 3 in 30d; cooldown = each rule's window).
 * Returns 0, or -1 with a key-path message in err. */
static int cc_parse_cfg(const json_t *obj, cc_cfg *out, char *err, size_t errlen)
{
    const json_t *rules;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (rk_kit_cfg_known_keys(obj, "", cc_keys, err, errlen) != 0)
        return -1;
    rules = obj ? json_object_get(obj, "rules") : NULL;
    if (rules == NULL) {
        out->rules[0].group_by = CC_UNIT;
        out->rules[0].window = 7 * RK_DAY;
        out->rules[0].min_count = 5;
        out->rules[1].group_by = CC_OFFICER;
        out->rules[1].window = 30 * RK_DAY;
        out->rules[1].min_count = 3;
        out->n_rules = 2;
    } else {
        if (!json_is_array(rules)) {
            rk_kit_errf(err, errlen, "rules: expected an array of objects");
            return -1;
        }
        if (json_array_size(rules) > CC_MAX_RULES) {
            rk_kit_errf(err, errlen, "rules: expected at most %d rules",
                        CC_MAX_RULES);
            return -1;
        }
        for (i = 0; i < json_array_size(rules); i++)
            if (cc_parse_rule(json_array_get(rules, i), i, &out->rules[i],
                              err, errlen) != 0)
                return -1;
        out->n_rules = json_array_size(rules);
    }
    if (obj != NULL && json_object_get(obj, "cooldown") != NULL) {
        if (rk_kit_cfg_duration(obj, "", "cooldown", 0, 0, &out->cooldown,
                                err, errlen) != 0)
            return -1;
    } else {
        out->cooldown = -1;
    }
    return 0;
}

/* ===================================================================
 * Helpers
 * =================================================================== */

/* Move per-rule state from `from` (rules from_rules[0..n_from), sets
 * from_maps) to the sets of to_rules[0..n_to) in to_maps, matching as the
 * file comment describes, and re-key the moved heaps for their new
 * windows; from_maps are left empty (state not taken is freed). */
static void cc_carry(const cc_rule *from_rules, rk_winset *from_maps, size_t n_from,
                     const cc_rule *to_rules, rk_winset *to_maps, size_t n_to)
{
    int taken[CC_MAX_RULES], assigned[CC_MAX_RULES];
    size_t i, j;

    memset(taken, 0, sizeof(taken));
    memset(assigned, 0, sizeof(assigned));
    for (i = 0; i < n_to; i++)
        rk_winset_init(&to_maps[i]);
    for (i = 0; i < n_to; i++) {
        for (j = 0; j < n_from; j++) {
            if (!taken[j] && from_rules[j].group_by == to_rules[i].group_by &&
                from_rules[j].window == to_rules[i].window) {
                taken[j] = 1;
                assigned[i] = 1;
                to_maps[i] = from_maps[j];
                rk_winset_init(&from_maps[j]);
                break;
            }
        }
    }
    for (i = 0; i < n_to; i++) {
        if (assigned[i])
            continue;
        for (j = 0; j < n_from; j++) {
            if (!taken[j] && from_rules[j].group_by == to_rules[i].group_by) {
                taken[j] = 1;
                assigned[i] = 1;
                to_maps[i] = from_maps[j];
                rk_winset_init(&from_maps[j]);
                break;
            }
        }
    }
    for (j = 0; j < n_from; j++)
        rk_winset_clear(&from_maps[j]);
    for (i = 0; i < n_to; i++)
        if (assigned[i])
            rk_winset_rekey(&to_maps[i], to_rules[i].window);
}

static int cc_resolve(cc_state *s, const char *okey, int64_t deadline);

/* ===================================================================
 * The rule
 * =================================================================== */

/* Push complaint ev into the window of `key` under rule ri and fire
 * `cluster` when the window reaches min_count. Returns 0, or -1 when out of
 * memory. */
static int cc_push(cc_state *s, size_t ri, const char *key, const rk_event *ev)
{
    const cc_rule *rule = &s->cfg.rules[ri];
    rk_winset *set = &s->keys[ri];
    rk_winkey *k = rk_winset_get(set, key);
    const rk_win *w;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    rk_say t;
    char okey[CC_MAX_ID + 48];
    int64_t stops, at;
    rk_alert a;
    int rc;

    if (k == NULL)
        return -1;
    /* Its resolve time already past in event time (the timer held back by
     * another stream): resolve first, as the timer would have. */
    snprintf(okey, sizeof(okey), "%d:%lld:%s", rule->group_by, (long long)rule->window, key);
    {
        const rk__openrec *r = rk__open_get(&s->open, okey);
        if (r != NULL && r->resolve_at < ev->ts && cc_resolve(s, okey, r->resolve_at) != 0)
            return -1;
    }
    w = &k->win;
    rk_winkey_trim(k, rk_kit_cutoff(ev->ts, rule->window));
    if (rk_winset_track(set, k, rk_win_push(&k->win, ev->ts, ev->ref, 0) == 0,
                        rule->window) != 0)
        return -1;
    if (w->len < rule->min_count)
        return 0;

    rk_say_init(&t, s->api, s->host);
    if (rule->group_by == CC_UNIT || rule->group_by == CC_OFFICER) {
        rk_say_who(&t, cc_group_labels[rule->group_by], key, 1);
        if (t.en) {
            rk_say_f(&t, " drew ");
            rk_say_n(&t, w->len, "complaint", "complaints");
            rk_say_f(&t, " ");
            rk_say_window(&t, rule->window);
        } else {
            rk_say_window(&t, rule->window);
            rk_say_f(&t, "被投诉%u次", (unsigned)w->len);
        }
    } else if (t.en) {
        rk_say_n(&t, w->len, "complaint", "complaints");
        rk_say_f(&t, " concerned ");
        rk_say_who(&t, cc_group_labels[rule->group_by], key, 0);
        rk_say_f(&t, " ");
        rk_say_window(&t, rule->window);
    } else {
        rk_say_window(&t, rule->window);
        rk_say_f(&t, "涉及");
        rk_say_who(&t, cc_group_labels[rule->group_by], key, 0);
        rk_say_f(&t, "的投诉有%u次", (unsigned)w->len);
    }
    if (t.en)
        rk_say_f(&t, " (threshold %u).", (unsigned)rule->min_count);
    else
        rk_say_f(&t, "（阈值%u次）", (unsigned)rule->min_count);
    memset(&a, 0, sizeof(a));
    a.rule = "cluster";
    a.severity = RK_SEV_WARNING;
    a.ts = ev->ts;
    switch (rule->group_by) {
    case CC_UNIT: a.subject.unit_id = key; break;
    case CC_OFFICER: a.subject.officer_id = key; break;
    case CC_ENTERPRISE: a.subject.enterprise_id = key; break;
    default: a.subject.region = key; break;
    }
    a.value = w->len;
    a.threshold = rule->min_count;
    a.summary = rk_say_text(&t);
    a.n_evidence = rk_kit_evidence(w, 0, ev->ref, evid);
    a.evidence = evid;
    a.cooldown = s->cfg.cooldown >= 0 ? s->cfg.cooldown : rule->window;
    rc = s->api->emit(s->host, &a);
    if (rc < 0 || (rc == 1 && rk__open_add(&s->open, okey, ev->ts, NULL) != 0))
        return -1;
    /* Without new complaints the count drops below min_count when the
     * (len - min_count + 1)-th newest leaves the window. */
    stops = rk_win_at(w, w->len - rule->min_count)->ts;
    stops = stops > INT64_MAX - rule->window ? INT64_MAX : stops + rule->window;
    if (rk__open_due(&s->open, okey, stops, s->api->keep_firing_for(s->host), &at)) {
        char tk[CC_MAX_ID + 64];
        snprintf(tk, sizeof(tk), "r:%s", okey);
        if (s->api->timer_set(s->host, at, tk, 0) < 0)
            return -1;
    }
    return 0;
}

/* "r:<group_by>:<window>:<key>": resolve the open cluster alerts of the key
 * when its resolve time is still this deadline. */
static int cc_on_timer(void *self, int64_t deadline, const char *tkey, uint64_t arg)
{
    cc_state *s = (cc_state *)self;
    const rk__openrec *r;

    (void)arg;
    if (strncmp(tkey, "r:", 2) != 0)
        return 0;
    r = rk__open_get(&s->open, tkey + 2);
    if (r == NULL || r->resolve_at != deadline)
        return 0;                   /* resolved before, or held again since */
    return cc_resolve(s, tkey + 2, deadline);
}

/* Resolve every open alert of okey ("<group_by>:<window>:<key>") at
 * deadline. */
static int cc_resolve(cc_state *s, const char *okey, int64_t deadline)
{
    const rk__openrec *r = rk__open_get(&s->open, okey);
    const char *key;
    rk_say t;
    long long window;
    int g, rc = 0;
    uint32_t i;
    size_t ri;

    if (r == NULL || sscanf(okey, "%d:%lld:", &g, &window) != 2 ||
        g < 0 || g >= CC_NGROUP || (key = strchr(strchr(okey, ':') + 1, ':')) == NULL)
        return 0;
    key++;
    /* The threshold of the rule the alert came from, when it is still
     * configured (else the sentence gives none). */
    for (ri = 0; ri < s->cfg.n_rules; ri++)
        if (s->cfg.rules[ri].group_by == g && s->cfg.rules[ri].window == (int64_t)window)
            break;
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "The complaints concerning ");
        rk_say_who(&t, cc_group_labels[g], key, 0);
        rk_say_f(&t, " ");
        rk_say_window(&t, (int64_t)window);
        if (ri < s->cfg.n_rules)
            rk_say_f(&t, " have been fewer than %u", (unsigned)s->cfg.rules[ri].min_count);
        else
            rk_say_f(&t, " have been below the threshold");
    } else {
        rk_say_window(&t, (int64_t)window);
        rk_say_f(&t, "涉及");
        rk_say_who(&t, cc_group_labels[g], key, 0);
        if (ri < s->cfg.n_rules)
            rk_say_f(&t, "的投诉已少于%u次", (unsigned)s->cfg.rules[ri].min_count);
        else
            rk_say_f(&t, "的投诉已低于阈值");
    }
    pr_say_kept(&t);
    for (i = 0; i < r->n; i++) {
        rk_alert a;
        memset(&a, 0, sizeof(a));
        a.rule = "cluster";
        a.ts = r->a[i].ts;
        switch (g) {
        case CC_UNIT: a.subject.unit_id = key; break;
        case CC_OFFICER: a.subject.officer_id = key; break;
        case CC_ENTERPRISE: a.subject.enterprise_id = key; break;
        default: a.subject.region = key; break;
        }
        a.status = RK_ALERT_RESOLVED;
        a.reason = rk_say_text(&t);
        a.change_ts = deadline;
        rk__open_prime(&s->open, &r->a[i]);
        if (s->api->emit(s->host, &a) < 0)
            rc = -1;
    }
    if (rc == 0)
        rk__open_drop(&s->open, okey);
    return rc;
}

/* ===================================================================
 * Ops
 * =================================================================== */

/* Create an instance from cfg (see cc_parse_cfg for the errors). Returns
 * NULL with err set on a bad config or when out of memory. */
static void *cc_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    cc_state *s = (cc_state *)calloc(1, sizeof(*s));
    size_t i;

    if (s == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (cc_parse_cfg(cfg, &s->cfg, err, errlen) != 0) {
        free(s);
        return NULL;
    }
    s->api = api;
    s->host = host;
    for (i = 0; i < CC_MAX_RULES; i++)
        rk_winset_init(&s->keys[i]);
    rk__open_init(&s->open);
    rk__open_bind(&s->open, host, "cluster");
    return s;
}

/* Apply a new config, carrying windows across as the file comment
 * describes. Returns 0, or -1 with err set when cfg is invalid (nothing
 * changes then). */
static int cc_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    cc_state *s = (cc_state *)self;
    cc_cfg *c = (cc_cfg *)malloc(sizeof(*c));
    rk_winset maps[CC_MAX_RULES];

    if (c == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return -1;
    }
    if (cc_parse_cfg(cfg, c, err, errlen) != 0) {
        free(c);
        return -1;
    }
    cc_carry(s->cfg.rules, s->keys, s->cfg.n_rules, c->rules, maps, c->n_rules);
    memcpy(s->keys, maps, c->n_rules * sizeof(maps[0]));
    s->cfg = *c;
    free(c);
    return 0;
}

/* Apply one event; only case.complaint matters. Returns 0, or -1 when out
 * of memory (the daemon retries the entry). */
static int cc_on_event(void *self, const rk_event *ev)
{
    cc_state *s = (cc_state *)self;
    size_t ri, i, j;
    int rc = 0;

    if (ev->type != RK_EV_CASE_COMPLAINT)
        return 0;
    for (ri = 0; ri < s->cfg.n_rules; ri++) {
        const char *key = NULL;
        switch (s->cfg.rules[ri].group_by) {
        case CC_OFFICER:
            for (i = 0; i < ev->n_officers; i++) {
                const char *o = ev->officers[i];
                int dup = 0;
                if (o == NULL)
                    continue;
                for (j = 0; j < i; j++)
                    if (ev->officers[j] != NULL && strcmp(ev->officers[j], o) == 0)
                        dup = 1;
                if (!dup && cc_push(s, ri, o, ev) != 0)
                    rc = -1;
            }
            continue;
        case CC_UNIT: key = ev->unit_id; break;
        case CC_ENTERPRISE: key = ev->enterprise_id; break;
        default: key = ev->region; break;
        }
        if (key != NULL && cc_push(s, ri, key, ev) != 0)
            rc = -1;
    }
    return rc;
}

/* Pop the keys whose heap time is < now: free those whose window is empty
 * at now, re-key the others (O(popped x log keys)). */
static void cc_on_watermark(void *self, int64_t now)
{
    cc_state *s = (cc_state *)self;
    size_t ri;

    for (ri = 0; ri < s->cfg.n_rules; ri++) {
        rk_winset_expire(&s->keys[ri], now, s->cfg.rules[ri].window);
    }
}

/* Append the whole state (every rule's windows, tagged with the rule's
 * group_by and window) to out. Returns 0, or -1 when out of memory. */
static int cc_snapshot(void *self, rk_buf *out)
{
    cc_state *s = (cc_state *)self;
    size_t ri, b;
    uint32_t i;
    rk_map_entry *e;

    rk_buf_put_u32(out, CC_SNAP_VERSION);
    rk_buf_put_u32(out, (uint32_t)s->cfg.n_rules);
    for (ri = 0; ri < s->cfg.n_rules; ri++) {
        const rk_map *m = &s->keys[ri].map;
        rk_buf_put_u32(out, (uint32_t)s->cfg.rules[ri].group_by);
        rk_buf_put_i64(out, s->cfg.rules[ri].window);
        rk_buf_put_u32(out, (uint32_t)m->count);
        for (e = rk_map_first(m, &b); e != NULL; e = rk_map_next(m, &b, e)) {
            const rk_win *w = &((const rk_winkey *)e->value)->win;
            rk_buf_put_str(out, e->key);
            rk_buf_put_u32(out, w->len);
            for (i = 0; i < w->len; i++) {
                rk_buf_put_i64(out, rk_win_at(w, i)->ts);
                rk_buf_put_ref(out, rk_win_at(w, i)->ref);
            }
        }
    }
    rk__open_put(out, &s->open);
    return out->oom ? -1 : 0;
}

/* Read one rule's key section (u32 n_keys, then key + window each) into
 * the empty set (heap keyed for window w). Returns 0, or -1 (r->err set)
 * on truncated or corrupt data (including a repeated key) or when out of
 * memory. */
static int cc_read_set(rk_rd *r, rk_winset *set, int64_t w)
{
    uint32_t n = rk_rd_u32(r), i, k, len;

    if (r->err || n > (size_t)(r->end - r->p) / 8) {
        r->err = 1;
        return -1;
    }
    for (i = 0; i < n; i++) {
        char *key = rk_rd_str(r, CC_MAX_ID);
        rk_winkey *ck;

        if (key == NULL || rk_map_find(&set->map, key) != NULL) {
            free(key);
            r->err = 1;
            return -1;
        }
        len = rk_rd_u32(r);
        ck = r->err || len > (size_t)(r->end - r->p) / CC_ITEM_BYTES ? NULL
             : rk_winset_get(set, key);
        free(key);
        if (ck == NULL) {
            r->err = 1;
            return -1;
        }
        for (k = 0; k < len; k++) {
            int64_t ts = rk_rd_ts(r);
            rk_entry_ref ref = rk_rd_ref(r);
            if (r->err || rk_win_push(&ck->win, ts, ref, 0) != 0)
                break;
        }
        if (k < len || (ck->win.len > 0 &&
                        rk_heap_push(&set->heap, rk_winkey_expiry(ck, w), ck) != 0)) {
            rk_winset_drop(set, ck);
            r->err = 1;
            return -1;
        }
        if (ck->win.len == 0)
            rk_winset_drop(set, ck);   /* never written by snapshot(); drop it */
    }
    return 0;
}

/* Replace the state with the snapshot in data/len, carrying each snapshot
 * rule's windows to the matching rule of the current config (see the file
 * comment). On a wrong version, truncated or corrupt data, trailing bytes
 * or out of memory the state is left empty, err is set and -1 returned. */
static int cc_restore(void *self, const void *data, size_t len,
                      char *err, size_t errlen)
{
    cc_state *s = (cc_state *)self;
    cc_rule rules[CC_MAX_RULES];
    rk_winset maps[CC_MAX_RULES], carried[CC_MAX_RULES];
    uint32_t ver, n = 0, i;
    size_t ri;
    rk_rd r;

    for (ri = 0; ri < CC_MAX_RULES; ri++) {
        rk_winset_clear(&s->keys[ri]);
        rk_winset_init(&maps[ri]);
    }
    rk__open_clear(&s->open);
    rk_rd_init(&r, data, len);
    ver = rk_rd_u32(&r);
    if (r.err || (ver != CC_SNAP_VERSION && ver != CC_SNAP_V1)) {
        rk_kit_errf(err, errlen, "snapshot: %s", r.err ? "truncated"
                    : "unsupported format version");
        return -1;
    }
    n = rk_rd_u32(&r);
    if (r.err || n > CC_MAX_RULES)
        goto fail;
    for (i = 0; i < n; i++) {
        uint32_t g = rk_rd_u32(&r);
        rules[i].window = rk_rd_ts(&r);
        rules[i].min_count = 1;
        if (r.err || g >= CC_NGROUP || rules[i].window < 1)
            goto fail;
        rules[i].group_by = (int)g;
        if (cc_read_set(&r, &maps[i], rules[i].window) != 0)
            goto fail;
    }
    if ((ver >= 2 && rk__open_read(&r, &s->open) != 0) || r.p != r.end)
        goto fail;
    cc_carry(rules, maps, n, s->cfg.rules, carried, s->cfg.n_rules);
    memcpy(s->keys, carried, s->cfg.n_rules * sizeof(carried[0]));
    return 0;

fail:
    for (ri = 0; ri < CC_MAX_RULES; ri++)
        rk_winset_clear(&maps[ri]);
    rk__open_clear(&s->open);
    rk_kit_errf(err, errlen, "snapshot: truncated or corrupt");
    return -1;
}

static void cc_destroy(void *self)
{
    cc_state *s = (cc_state *)self;
    size_t ri;

    if (s == NULL)
        return;
    for (ri = 0; ri < CC_MAX_RULES; ri++)
        rk_winset_clear(&s->keys[ri]);
    rk__open_clear(&s->open);
    free(s);
}

/* Live (rule, key) pairs. */
static size_t cc_tracked_keys(void *self)
{
    const cc_state *s = (const cc_state *)self;
    size_t ri, n = 0;

    for (ri = 0; ri < s->cfg.n_rules; ri++)
        n += s->keys[ri].map.count;
    return n;
}

const rk_detector_ops rk__det_complaint_cluster = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "complaint_cluster",
    "clusters of complaints per unit, officer, enterprise or region",
    cc_create,
    cc_reconfigure,
    cc_on_event,
    cc_on_timer,
    cc_on_watermark,
    cc_snapshot,
    cc_restore,
    cc_destroy,
    cc_tracked_keys,
};
