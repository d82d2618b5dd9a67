/* detectors/bad_rating.c - the bad_rating detector (riskd-detectors(7)).
 *
 * It looks only at inspection.rated events (unit_id and officers already
 * filled in from the filing by the daemon when the rating lacked them) and
 * has three rules:
 *
 *   bad_rating        every rating with score <= bad_score; one alert per
 *                     rating, no cooldown.
 *   officer_repeated  per officer, a sliding window (officer_window) of that
 *                     officer's bad ratings; fires when a bad rating brings
 *                     the count to >= officer_min_bad. Subject: the officer
 *                     and the rating's unit.
 *   unit_ratio        per unit, a sliding window (unit_window) of all its
 *                     ratings, each flagged bad or not, with a running count
 *                     of the bad ones; fires on a rating of the unit when the
 *                     window holds >= unit_min_ratings ratings and the bad
 *                     share is >= unit_max_bad_ratio.
 *
 * State is two rk_maps: officer id -> rk_win of bad ratings, and unit id ->
 * (rk_win of ratings with flag 1 = bad, bad count). Rules are evaluated at
 * the rating's ts after expiring older items. Each map has an expiry heap
 * (kit.h rk_heap) holding every key once, keyed by a time no later than the
 * key's expiry (its newest item's ts + window); an event does not touch the
 * heap. on_watermark(now) pops only keys whose heap time is < now: it
 * expires that key's window at `now` and deletes the key when the window is
 * empty, else re-keys it to its newest item's ts + window. So a batch costs
 * what expires, not what is stored, a key is freed at the first watermark
 * past its newest item + window, and memory is bounded by what the windows
 * hold (a key's window is trimmed at its events and when it is popped).
 *
 * reconfigure() replaces the thresholds and keeps the windows. A window
 * that shrinks is trimmed at the next event or watermark; one that grows
 * only holds what the old window still held. A rating's bad flag is decided
 * with the bad_score in force when it arrived. A changed window re-keys the
 * heap (O(keys), once).
 *
 * Lifecycle (detectors/lifecycle.c): officer_repeated and unit_ratio
 * alerts stay open per officer / unit until the condition has stopped
 * holding for alerts.keep_firing_for; a timer "o:<officer>" or
 * "u:<unit>" at that time resolves them. For officer_repeated it stops
 * when the officer's (len - officer_min_bad + 1)-th newest bad rating
 * leaves the window; for unit_ratio at the first exit of the oldest
 * ratings after which it fails, or at once when a good rating dilutes the
 * share. Ratings are never amended, so neither rule is retracted.
 *
 * Snapshot format (version 2): u32 version; u32 n_officers, then per
 * officer str id + window; u32 n_units, then per unit str id + window; a
 * window is u32 n then n x (i64 ts, ref, u32 flag); then the open
 * officer_repeated and unit_ratio alerts (rk__open_put). Version 1 has no
 * open alerts. The expiry heaps are not stored: restore() rebuilds them. */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"           /* pr_say_kept: the reasons' "for 1 hour" */

#define BR_SNAP_VERSION 2u
#define BR_SNAP_V1 1u
#define BR_MAX_ID 65536             /* longest id accepted by restore() */
#define BR_ITEM_BYTES (8 + 16 + 4)  /* encoded size of one window item */

#define BR_FLAG_BAD 1u

typedef struct br_cfg {
    int bad_score;
    int64_t officer_window;
    uint32_t officer_min_bad;
    int64_t unit_window;
    uint32_t unit_min_ratings;
    double unit_max_bad_ratio;
    int64_t cooldown;
} br_cfg;

/* Officers: a window of each officer's bad ratings. Units: a window of all
 * of a unit's ratings, BR_FLAG_BAD on the bad ones, nflag counting them.
 * Both are rk_winsets (riskd/kit.h): keys expire through a heap. */
typedef struct br_state {
    const rk_host_api *api;
    rk_host *host;
    br_cfg cfg;
    rk_winset officers;             /* officer id -> bad ratings */
    rk_winset units;                /* unit id -> all ratings */
    rk__openset open_officer;       /* officer id -> open officer_repeated
                                       alerts (extra: their unit_id) */
    rk__openset open_unit;          /* unit id -> open unit_ratio alerts */
} br_state;

/* ===================================================================
 * Configuration
 * =================================================================== */

static const char *const br_cfg_keys[] = {
    "bad_score", "officer_window", "officer_min_bad", "unit_window",
    "unit_min_ratings", "unit_max_bad_ratio", "cooldown", NULL
};

/* Validate the detector's config object `obj` and store the values (with
 * defaults for absent keys) in *out. Returns 0, or -1 with a key-path
 * message in err on an unknown key or a value of the wrong type or range. */
static int br_parse_cfg(const json_t *obj, br_cfg *out, char *err, size_t errlen)
{
    long long v;

    if (rk_kit_cfg_known_keys(obj, "", br_cfg_keys, err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_int(obj, "", "bad_score", 1, 5, 2, &v, err, errlen) != 0)
        return -1;
    out->bad_score = (int)v;
    if (rk_kit_cfg_duration(obj, "", "officer_window", 1, 30 * RK_DAY,
                            &out->officer_window, err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_int(obj, "", "officer_min_bad", 1, 1000000, 3, &v,
                       err, errlen) != 0)
        return -1;
    out->officer_min_bad = (uint32_t)v;
    if (rk_kit_cfg_duration(obj, "", "unit_window", 1, 30 * RK_DAY,
                            &out->unit_window, err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_int(obj, "", "unit_min_ratings", 1, 1000000, 20, &v,
                       err, errlen) != 0)
        return -1;
    out->unit_min_ratings = (uint32_t)v;
    if (rk_kit_cfg_double(obj, "", "unit_max_bad_ratio", 0.0, 1.0, 0.2,
                          &out->unit_max_bad_ratio, err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_duration(obj, "", "cooldown", 0, 24 * RK_HOUR,
                            &out->cooldown, err, errlen) != 0)
        return -1;
    return 0;
}

/* ===================================================================
 * Helpers
 * =================================================================== */

/* s, or "?" when s is NULL, for summaries. */
static const char *br_str(const char *s)
{
    return s != NULL ? s : "?";
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int br_settle(br_state *s, char kind, const char *id, int64_t ts);
static int br_resolve(br_state *s, const char *key, int64_t deadline);

/* Whether unit_ratio holds for a window of len ratings, nbad of them bad. */
static int unit_holds(const br_state *s, uint32_t len, uint32_t nbad)
{
    return len >= s->cfg.unit_min_ratings && len > 0 &&
           (double)nbad / (double)len >= s->cfg.unit_max_bad_ratio;
}

/* When unit_ratio, holding now on window w (nbad bad), stops holding
 * without new ratings: the ratings leave the window oldest first (those of
 * one ts together, at ts + unit_window); the first exit after which it no
 * longer holds. */
static int64_t unit_stops_at(const br_state *s, const rk_win *w, uint32_t nbad)
{
    uint32_t i = 0, len = w->len;
    while (i < w->len) {
        int64_t ts = rk_win_at(w, i)->ts;
        while (i < w->len && rk_win_at(w, i)->ts == ts) {
            if (rk_win_at(w, i)->flag & BR_FLAG_BAD)
                nbad--;
            len--;
            i++;
        }
        if (!unit_holds(s, len, nbad))
            return sat_add(ts, s->cfg.unit_window);
    }
    return INT64_MAX;               /* not reached: an empty window fails */
}

/* The condition of key (kind 'o' officer_repeated, 'u' unit_ratio) stops
 * holding at stops_at: arm "<kind>:<key>" at the new resolve time, if it
 * has open alerts and that time moved. 0 or -1. */
static int br_due(br_state *s, rk__openset *set, char kind, const char *key, int64_t stops_at)
{
    int64_t at;
    char buf[128], *k = buf;
    size_t n = strlen(key);
    int rc;
    if (!rk__open_due(set, key, stops_at, s->api->keep_firing_for(s->host), &at))
        return 0;
    if (n + 3 > sizeof(buf) && (k = malloc(n + 3)) == NULL)
        return -1;
    k[0] = kind;
    k[1] = ':';
    memcpy(k + 2, key, n + 1);
    rc = s->api->timer_set(s->host, at, k, 0);
    if (k != buf)
        free(k);
    return rc < 0 ? -1 : 0;
}

/* ===================================================================
 * Rules
 * =================================================================== */

/* Emit the per-rating bad_rating alert for ev. Returns 0, or negative when
 * the host failed (out of memory). */
static int br_rule_bad_rating(br_state *s, const rk_event *ev)
{
    rk_alert a;
    rk_say t;

    memset(&a, 0, sizeof(a));
    rk_say_init(&t, s->api, s->host);
    rk_say_who(&t, "enterprise", ev->enterprise_id, 1);
    if (t.en) {
        rk_say_f(&t, " gave the inspection");
        if (ev->unit_id != NULL) {
            rk_say_f(&t, " by ");
            rk_say_who(&t, "unit", ev->unit_id, 0);
        }
        rk_say_f(&t, " (task %s) a score of %d, a bad rating (%d or below).",
                 br_str(ev->task_id), ev->score, s->cfg.bad_score);
    } else {
        rk_say_f(&t, "对");
        if (ev->unit_id != NULL)
            rk_say_who(&t, "unit", ev->unit_id, 0);
        rk_say_f(&t, "的检查（任务%s）打出%d分差评（%d分及以下为差评）",
                 br_str(ev->task_id), ev->score, s->cfg.bad_score);
    }
    a.rule = "bad_rating";
    a.severity = RK_SEV_WARNING;
    a.ts = ev->ts;
    a.subject.task_id = ev->task_id;
    a.subject.enterprise_id = ev->enterprise_id;
    a.subject.unit_id = ev->unit_id;
    a.value = ev->score;
    a.threshold = s->cfg.bad_score;
    a.summary = rk_say_text(&t);
    a.evidence = &ev->ref;
    a.n_evidence = 1;
    a.cooldown = 0;
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
}

/* Record the bad rating ev for officer `officer` and fire officer_repeated
 * when the officer's window reaches officer_min_bad. Returns 0, or -1 when
 * out of memory. */
static int br_rule_officer(br_state *s, const rk_event *ev, const char *officer)
{
    rk_winkey *k = rk_winset_get(&s->officers, officer);
    const rk_win *w;
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    rk_say t;
    rk_alert a;
    int pushed, rc;

    if (k == NULL || br_settle(s, 'o', officer, ev->ts) != 0)
        return -1;
    w = &k->win;
    rk_winkey_trim(k, rk_kit_cutoff(ev->ts, s->cfg.officer_window));
    pushed = rk_win_push(&k->win, ev->ts, ev->ref, BR_FLAG_BAD) == 0;
    if (rk_winset_track(&s->officers, k, pushed, s->cfg.officer_window) != 0)
        return -1;
    if (w->len < s->cfg.officer_min_bad)
        return 0;

    rk_say_init(&t, s->api, s->host);
    rk_say_officer(&t, ev->unit_id, officer, 1);
    if (t.en) {
        rk_say_f(&t, " received ");
        rk_say_n(&t, w->len, "bad rating", "bad ratings");
        rk_say_f(&t, " ");
        rk_say_window(&t, s->cfg.officer_window);
        rk_say_f(&t, " (threshold %u).", (unsigned)s->cfg.officer_min_bad);
    } else {
        rk_say_window(&t, s->cfg.officer_window);
        rk_say_f(&t, "收到%u次差评（阈值%u次）", (unsigned)w->len,
                 (unsigned)s->cfg.officer_min_bad);
    }
    memset(&a, 0, sizeof(a));
    a.rule = "officer_repeated";
    a.severity = RK_SEV_CRITICAL;
    a.ts = ev->ts;
    a.subject.officer_id = officer;
    a.subject.unit_id = ev->unit_id;
    a.value = w->len;
    a.threshold = s->cfg.officer_min_bad;
    a.summary = rk_say_text(&t);
    a.n_evidence = rk_kit_evidence(w, 0, ev->ref, evid);
    a.evidence = evid;
    a.cooldown = s->cfg.cooldown;
    rc = s->api->emit(s->host, &a);
    if (rc < 0 || (rc == 1 && rk__open_add(&s->open_officer, officer, ev->ts, ev->unit_id) != 0))
        return -1;
    /* Without new bad ratings the count drops below the threshold when
     * the (len - min + 1)-th newest leaves the window. */
    return br_due(s, &s->open_officer, 'o', officer,
                  sat_add(rk_win_at(w, w->len - s->cfg.officer_min_bad)->ts,
                          s->cfg.officer_window));
}

/* Record rating ev (bad or not) for its unit and fire unit_ratio when the
 * unit's window holds enough ratings with a large enough bad share.
 * Returns 0, or -1 when out of memory. */
static int br_rule_unit(br_state *s, const rk_event *ev, int bad)
{
    rk_winkey *u = rk_winset_get(&s->units, ev->unit_id);
    rk_entry_ref evid[RK_MAX_EVIDENCE];
    rk_say t;
    double ratio;
    rk_alert a;
    int pushed, rc;

    if (u == NULL || br_settle(s, 'u', ev->unit_id, ev->ts) != 0)
        return -1;
    rk_winkey_trim(u, rk_kit_cutoff(ev->ts, s->cfg.unit_window));
    pushed = rk_win_push(&u->win, ev->ts, ev->ref, bad ? BR_FLAG_BAD : 0) == 0;
    if (pushed && bad)
        u->nflag++;
    if (rk_winset_track(&s->units, u, pushed, s->cfg.unit_window) != 0)
        return -1;
    if (!unit_holds(s, u->win.len, u->nflag)) {
        /* A good rating can end the condition at once. */
        const rk__openrec *r = rk__open_get(&s->open_unit, ev->unit_id);
        if (r != NULL && (r->resolve_at == INT64_MAX ||
                          r->resolve_at - s->api->keep_firing_for(s->host) > ev->ts))
            return br_due(s, &s->open_unit, 'u', ev->unit_id, ev->ts);
        return 0;
    }
    ratio = (double)u->nflag / (double)u->win.len;

    rk_say_init(&t, s->api, s->host);
    rk_say_who(&t, "unit", ev->unit_id, 1);
    if (t.en) {
        rk_say_f(&t, " received ");
        rk_say_n(&t, u->nflag, "bad rating", "bad ratings");
        rk_say_f(&t, " out of %u ", (unsigned)u->win.len);
        rk_say_window(&t, s->cfg.unit_window);
        rk_say_f(&t, ", ");
        rk_say_pct(&t, ratio);
        rk_say_f(&t, " (threshold ");
        rk_say_pct(&t, s->cfg.unit_max_bad_ratio);
        rk_say_f(&t, ").");
    } else {
        rk_say_window(&t, s->cfg.unit_window);
        rk_say_f(&t, "收到评价%u次，其中差评%u次，差评率", (unsigned)u->win.len,
                 (unsigned)u->nflag);
        rk_say_pct(&t, ratio);
        rk_say_f(&t, "（阈值");
        rk_say_pct(&t, s->cfg.unit_max_bad_ratio);
        rk_say_f(&t, "）");
    }
    memset(&a, 0, sizeof(a));
    a.rule = "unit_ratio";
    a.severity = RK_SEV_WARNING;
    a.ts = ev->ts;
    a.subject.unit_id = ev->unit_id;
    a.value = ratio;
    a.threshold = s->cfg.unit_max_bad_ratio;
    a.summary = rk_say_text(&t);
    a.n_evidence = rk_kit_evidence(&u->win, BR_FLAG_BAD, ev->ref, evid);
    a.evidence = evid;
    a.cooldown = s->cfg.cooldown;
    rc = s->api->emit(s->host, &a);
    if (rc < 0 || (rc == 1 && rk__open_add(&s->open_unit, ev->unit_id, ev->ts, NULL) != 0))
        return -1;
    return br_due(s, &s->open_unit, 'u', ev->unit_id, unit_stops_at(s, &u->win, u->nflag));
}

/* ===================================================================
 * Ops
 * =================================================================== */

/* Create an instance from cfg (see br_parse_cfg for the errors). Returns
 * NULL with err set on a bad config or when out of memory. */
static void *br_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    br_state *s;
    br_cfg c;

    if (br_parse_cfg(cfg, &c, err, errlen) != 0)
        return NULL;
    s = (br_state *)calloc(1, sizeof(*s));
    if (s == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->cfg = c;
    rk_winset_init(&s->officers);
    rk_winset_init(&s->units);
    rk__open_init(&s->open_officer);
    rk__open_init(&s->open_unit);
    rk__open_bind(&s->open_officer, host, "officer_repeated");
    rk__open_bind(&s->open_unit, host, "unit_ratio");
    return s;
}

/* Apply new thresholds from cfg, keeping the windows (a changed window
 * re-keys its heap). Returns 0, or -1 with err set when cfg is invalid
 * (the old thresholds stay). */
static int br_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    br_state *s = (br_state *)self;
    br_cfg c;

    if (br_parse_cfg(cfg, &c, err, errlen) != 0)
        return -1;
    if (c.officer_window != s->cfg.officer_window)
        rk_winset_rekey(&s->officers, c.officer_window);
    if (c.unit_window != s->cfg.unit_window)
        rk_winset_rekey(&s->units, c.unit_window);
    s->cfg = c;
    return 0;
}

/* Apply one event; only inspection.rated matters. Returns 0, or -1 when out
 * of memory (the daemon retries the entry; alerts already emitted for it
 * are deduplicated by id). */
static int br_on_event(void *self, const rk_event *ev)
{
    br_state *s = (br_state *)self;
    int bad, rc = 0;
    size_t i, j;

    if (ev->type != RK_EV_INSPECTION_RATED)
        return 0;
    bad = ev->score <= s->cfg.bad_score;
    if (bad) {
        if (br_rule_bad_rating(s, ev) != 0)
            rc = -1;
        for (i = 0; i < ev->n_officers; i++) {
            const char *o = ev->officers[i];
            int dup = 0;
            if (o == NULL)
                continue;
            for (j = 0; j < i; j++)
                if (ev->officers[j] != NULL && strcmp(ev->officers[j], o) == 0)
                    dup = 1;
            if (!dup && br_rule_officer(s, ev, o) != 0)
                rc = -1;
        }
    }
    if (ev->unit_id != NULL && br_rule_unit(s, ev, bad) != 0)
        rc = -1;
    return rc;
}

/* Delete the keys whose window is empty at now (only those the heaps say
 * may be: O(popped keys x log keys)). */
static void br_on_watermark(void *self, int64_t now)
{
    br_state *s = (br_state *)self;

    rk_winset_expire(&s->officers, now, s->cfg.officer_window);
    rk_winset_expire(&s->units, now, s->cfg.unit_window);
}

/* "o:<officer>" / "u:<unit>": resolve the key's open alerts when its
 * resolve time is still this deadline (the condition has not held again
 * since it stopped, keep_firing_for ago). */
static int br_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    br_state *s = (br_state *)self;
    const rk__openrec *r;

    (void)arg;
    if ((key[0] != 'o' && key[0] != 'u') || key[1] != ':')
        return 0;
    r = rk__open_get(key[0] == 'o' ? &s->open_officer : &s->open_unit, key + 2);
    if (r == NULL || r->resolve_at != deadline)
        return 0;                   /* resolved before, or held again since */
    return br_resolve(s, key, deadline);
}

/* An event of the key at ts: when its resolve time is already past in
 * event time (the timer has not fired yet because another stream holds
 * the watermark back), resolve first, as the timer would have. */
static int br_settle(br_state *s, char kind, const char *id, int64_t ts)
{
    const rk__openrec *r = rk__open_get(kind == 'o' ? &s->open_officer : &s->open_unit, id);
    char buf[128], *k = buf;
    size_t n = strlen(id);
    int rc;
    if (r == NULL || r->resolve_at >= ts)
        return 0;
    if (n + 3 > sizeof(buf) && (k = malloc(n + 3)) == NULL)
        return -1;
    k[0] = kind;
    k[1] = ':';
    memcpy(k + 2, id, n + 1);
    rc = br_resolve(s, k, r->resolve_at);
    if (k != buf)
        free(k);
    return rc;
}

/* The reason of a resolution, in t: officer (of unit) or unit by name,
 * the window and the threshold in words, then how long it has held:
 * "单位U1执法人员O1近30天收到的差评已少于3次，且已持续1小时。". */
static void br_reason(const br_state *s, rk_say *t, char kind, const char *id,
                      const char *unit)
{
    rk_say_init(t, s->api, s->host);
    if (kind == 'o') {
        rk_say_officer(t, unit, id, 1);
        if (t->en) {
            rk_say_f(t, " has had fewer than ");
            rk_say_n(t, s->cfg.officer_min_bad, "bad rating", "bad ratings");
            rk_say_f(t, " ");
            rk_say_window(t, s->cfg.officer_window);
        } else {
            rk_say_window(t, s->cfg.officer_window);
            rk_say_f(t, "收到的差评已少于%u次", (unsigned)s->cfg.officer_min_bad);
        }
    } else if (t->en) {
        rk_say_who(t, "unit", id, 1);
        rk_say_f(t, " has had a share of bad ratings below ");
        rk_say_pct(t, s->cfg.unit_max_bad_ratio);
        rk_say_f(t, ", or fewer than ");
        rk_say_n(t, s->cfg.unit_min_ratings, "rating", "ratings");
        rk_say_f(t, ", ");
        rk_say_window(t, s->cfg.unit_window);
    } else {
        rk_say_who(t, "unit", id, 1);
        rk_say_window(t, s->cfg.unit_window);
        rk_say_f(t, "的差评率已低于");
        rk_say_pct(t, s->cfg.unit_max_bad_ratio);
        rk_say_f(t, "或评价已少于%u次", (unsigned)s->cfg.unit_min_ratings);
    }
    pr_say_kept(t);
}

/* Resolve every open alert of "<kind>:<id>" (key) at deadline. */
static int br_resolve(br_state *s, const char *key, int64_t deadline)
{
    rk__openset *set = key[0] == 'o' ? &s->open_officer : &s->open_unit;
    const rk__openrec *r = rk__open_get(set, key + 2);
    rk_say t;
    uint32_t i;
    int rc = 0;

    for (i = 0; i < r->n; i++) {
        rk_alert a;
        memset(&a, 0, sizeof(a));
        a.rule = key[0] == 'o' ? "officer_repeated" : "unit_ratio";
        a.ts = r->a[i].ts;
        if (key[0] == 'o') {
            a.subject.officer_id = key + 2;
            a.subject.unit_id = rk__open_field(set, &r->a[i], 0);
        } else {
            a.subject.unit_id = key + 2;
        }
        br_reason(s, &t, key[0], key + 2, a.subject.unit_id);
        a.status = RK_ALERT_RESOLVED;
        a.reason = rk_say_text(&t);
        a.change_ts = deadline;
        rk__open_prime(set, &r->a[i]);
        if (s->api->emit(s->host, &a) < 0)
            rc = -1;
    }
    if (rc == 0)
        rk__open_drop(set, key + 2);
    return rc;
}

static void br_put_win(rk_buf *out, const rk_win *w)
{
    uint32_t i;
    rk_buf_put_u32(out, w->len);
    for (i = 0; i < w->len; i++) {
        const rk_win_item *it = rk_win_at(w, i);
        rk_buf_put_i64(out, it->ts);
        rk_buf_put_ref(out, it->ref);
        rk_buf_put_u32(out, it->flag);
    }
}

/* Append the whole state (both maps) to out. Returns 0, or -1 when out of
 * memory. */
static int br_snapshot(void *self, rk_buf *out)
{
    br_state *s = (br_state *)self;
    rk_map_entry *e;
    size_t b;

    rk_buf_put_u32(out, BR_SNAP_VERSION);
    rk_buf_put_u32(out, (uint32_t)s->officers.map.count);
    for (e = rk_map_first(&s->officers.map, &b); e != NULL;
         e = rk_map_next(&s->officers.map, &b, e)) {
        rk_buf_put_str(out, e->key);
        br_put_win(out, &((const rk_winkey *)e->value)->win);
    }
    rk_buf_put_u32(out, (uint32_t)s->units.map.count);
    for (e = rk_map_first(&s->units.map, &b); e != NULL;
         e = rk_map_next(&s->units.map, &b, e)) {
        rk_buf_put_str(out, e->key);
        br_put_win(out, &((const rk_winkey *)e->value)->win);
    }
    rk__open_put(out, &s->open_officer);
    rk__open_put(out, &s->open_unit);
    return out->oom ? -1 : 0;
}

/* Read one encoded window from r into the empty window w, counting flagged
 * items into *nflag. Returns 0, or -1 (r->err set) on truncated or corrupt
 * data or when out of memory. */
static int br_read_win(rk_rd *r, rk_win *w, uint32_t *nflag)
{
    uint32_t n = rk_rd_u32(r), i;

    if (r->err || n > (size_t)(r->end - r->p) / BR_ITEM_BYTES) {
        r->err = 1;
        return -1;
    }
    for (i = 0; i < n; i++) {
        int64_t ts = rk_rd_ts(r);
        rk_entry_ref ref = rk_rd_ref(r);
        uint32_t flag = rk_rd_u32(r);
        if (r->err || rk_win_push(w, ts, ref, flag) != 0) {
            r->err = 1;
            return -1;
        }
        if (flag)
            (*nflag)++;
    }
    return 0;
}

/* Read one map section (u32 count, then id + window each) into the empty
 * set, whose keys expire after window w. Returns 0, or -1 (r->err set) on
 * truncated or corrupt data (including a repeated id) or when out of
 * memory. */
static int br_read_set(rk_rd *r, rk_winset *set, int64_t w)
{
    uint32_t n = rk_rd_u32(r), i;

    if (r->err || n > (size_t)(r->end - r->p) / 8) {
        r->err = 1;
        return -1;
    }
    for (i = 0; i < n; i++) {
        char *id = rk_rd_str(r, BR_MAX_ID);
        rk_winkey *k;
        uint32_t nflag = 0;

        if (id == NULL || rk_map_find(&set->map, id) != NULL) {
            free(id);
            r->err = 1;
            return -1;
        }
        k = rk_winset_get(set, id);
        free(id);
        if (k == NULL || br_read_win(r, &k->win, &nflag) != 0) {
            if (k != NULL)
                rk_winset_drop(set, k);
            r->err = 1;
            return -1;
        }
        k->nflag = nflag;
        if (k->win.len == 0) {
            /* Never written by snapshot(); harmless, drop it. */
            rk_winset_drop(set, k);
            continue;
        }
        if (rk_heap_push(&set->heap, rk_winkey_expiry(k, w), k) != 0) {
            rk_winset_drop(set, k);
            r->err = 1;
            return -1;
        }
    }
    return 0;
}

/* Replace the state with the snapshot in data/len. On a wrong version,
 * truncated or corrupt data, trailing bytes or out of memory the state is
 * left empty, err is set and -1 returned. */
static int br_restore(void *self, const void *data, size_t len,
                      char *err, size_t errlen)
{
    br_state *s = (br_state *)self;
    rk_rd r;
    uint32_t ver;

    rk_winset_clear(&s->officers);
    rk_winset_clear(&s->units);
    rk__open_clear(&s->open_officer);
    rk__open_clear(&s->open_unit);
    rk_rd_init(&r, data, len);
    ver = rk_rd_u32(&r);
    if (r.err || (ver != BR_SNAP_VERSION && ver != BR_SNAP_V1)) {
        rk_kit_errf(err, errlen, "snapshot: %s", r.err ? "truncated"
                    : "unsupported format version");
        return -1;
    }
    if (br_read_set(&r, &s->officers, s->cfg.officer_window) != 0 ||
        br_read_set(&r, &s->units, s->cfg.unit_window) != 0 ||
        (ver >= 2 && (rk__open_read(&r, &s->open_officer) != 0 ||
                      rk__open_read(&r, &s->open_unit) != 0)) || r.p != r.end) {
        rk_winset_clear(&s->officers);
        rk_winset_clear(&s->units);
        rk__open_clear(&s->open_officer);
        rk__open_clear(&s->open_unit);
        rk_kit_errf(err, errlen, "snapshot: truncated or corrupt");
        return -1;
    }
    return 0;
}

static void br_destroy(void *self)
{
    br_state *s = (br_state *)self;
    if (s == NULL)
        return;
    rk_winset_clear(&s->officers);
    rk_winset_clear(&s->units);
    rk__open_clear(&s->open_officer);
    rk__open_clear(&s->open_unit);
    free(s);
}

/* Officers plus units currently tracked. */
static size_t rk_winset_tracked_keys(void *self)
{
    const br_state *s = (const br_state *)self;
    return s->officers.map.count + s->units.map.count;
}

const rk_detector_ops rk__det_bad_rating = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "bad_rating",
    "bad enterprise ratings: per rating, repeated per officer, bad share per unit",
    br_create,
    br_reconfigure,
    br_on_event,
    br_on_timer,
    br_on_watermark,
    br_snapshot,
    br_restore,
    br_destroy,
    rk_winset_tracked_keys,
};
