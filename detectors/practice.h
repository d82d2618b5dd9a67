/* detectors/practice.h - small helpers shared by the five detectors from
 * the supervision practice (inspection_frequency, discretion,
 * review_correction, violation_hotspot, officer_credential): the
 * reference-list lookups guarded for a host of an older ABI minor and the
 * snapshot encoding of an rk_winset (u32 n_keys, then per key str id, u32
 * n, n x (i64 ts, ref, u32 flag)). Summaries use riskd/text.h like every
 * detector; pr_say_kept, the end of a resolve reason, serves the window
 * rules of the original detectors too (bad_rating, fine_growth,
 * complaint_cluster). Header-only, static inline, using the kit alone. */
#ifndef RISKD_DETECTORS_PRACTICE_H
#define RISKD_DETECTORS_PRACTICE_H

#include <math.h>
#include <stdio.h>
#include "riskd/kit.h"
#include "riskd/text.h"
#include "internal.h"               /* rk__openset: detectors/lifecycle.c */

#define PR_MAX_ID 65536             /* longest id restore() accepts */
#define PR_ITEM_BYTES (8 + 16 + 4)  /* one encoded window item */

/* Does the host offer the reference-list lookups (ABI minor 3)? */
static inline int pr_has_lists(const rk_host_api *api)
{
    return api->abi_minor >= 3 && api->whitelist_allowance != NULL &&
           api->benchmark_range != NULL && api->exempt_kind != NULL &&
           api->credential_valid != NULL;
}

/* Append an amount of yuan: whole yuan as riskd/text.h writes them
 * ("12.5万元", "8500元", "125,000 yuan"); an amount with jiao or fen
 * keeps them ("5000.5元", "5000.5 yuan"), so that a fine just over a
 * benchmark does not read as equal to it. */
static inline void pr_say_yuan(rk_say *t, double v)
{
    if (v == floor(v) || !(v > -1e15 && v < 1e15)) {
        rk_say_yuan(t, v);
        return;
    }
    rk_say_num(t, v, 2);
    rk_say_f(t, t->en ? " yuan" : "元");
}

static inline void pr_put_winset(rk_buf *out, const rk_winset *set)
{
    rk_map_entry *e;
    size_t b;
    uint32_t i;

    rk_buf_put_u32(out, (uint32_t)set->map.count);
    for (e = rk_map_first(&set->map, &b); e != NULL; e = rk_map_next(&set->map, &b, e)) {
        const rk_win *w = &((const rk_winkey *)e->value)->win;
        rk_buf_put_str(out, e->key);
        rk_buf_put_u32(out, w->len);
        for (i = 0; i < w->len; i++) {
            const rk_win_item *it = rk_win_at(w, i);
            rk_buf_put_i64(out, it->ts);
            rk_buf_put_ref(out, it->ref);
            rk_buf_put_u32(out, it->flag);
        }
    }
}

/* Read a winset written by pr_put_winset into the empty set, whose keys
 * expire after window w. Returns 0, or -1 (r->err set) on truncated or
 * corrupt data (a repeated id, an empty window) or when out of memory. */
static inline int pr_read_winset(rk_rd *r, rk_winset *set, int64_t w)
{
    uint32_t n = rk_rd_u32(r), i, j;

    if (r->err || n > (size_t)(r->end - r->p) / 8) {
        r->err = 1;
        return -1;
    }
    for (i = 0; i < n; i++) {
        char *id = rk_rd_str(r, PR_MAX_ID);
        rk_winkey *k;
        uint32_t m;

        if (id == NULL || rk_map_find(&set->map, id) != NULL) {
            free(id);
            r->err = 1;
            return -1;
        }
        k = rk_winset_get(set, id);
        free(id);
        if (k == NULL) {
            r->err = 1;
            return -1;
        }
        m = rk_rd_u32(r);
        if (r->err || m == 0 || m > (size_t)(r->end - r->p) / PR_ITEM_BYTES) {
            rk_winset_drop(set, k);
            r->err = 1;
            return -1;
        }
        for (j = 0; j < m; j++) {
            int64_t ts = rk_rd_ts(r);
            rk_entry_ref ref = rk_rd_ref(r);
            uint32_t flag = rk_rd_u32(r);
            if (r->err || rk_win_push(&k->win, ts, ref, flag) != 0) {
                rk_winset_drop(set, k);
                r->err = 1;
                return -1;
            }
            if (flag)
                k->nflag++;
        }
        if (rk_heap_push(&set->heap, rk_winkey_expiry(k, w), k) != 0) {
            rk_winset_drop(set, k);
            r->err = 1;
            return -1;
        }
    }
    return 0;
}

/* The snapshot's version word into *ver when it lies in oldest..newest,
 * else -1 with err set ("snapshot: ..."). */
static inline int pr_read_versions(rk_rd *r, uint32_t oldest, uint32_t newest, uint32_t *ver,
                                   char *err, size_t errlen)
{
    *ver = rk_rd_u32(r);
    if (r->err || *ver < oldest || *ver > newest) {
        rk_kit_errf(err, errlen, "snapshot: %s", r->err ? "truncated"
                    : "unsupported format version");
        return -1;
    }
    return 0;
}

/* The snapshot's version word, or -1 with err set ("snapshot: ..."). */
static inline int pr_read_version(rk_rd *r, uint32_t want, char *err, size_t errlen)
{
    uint32_t ver;
    return pr_read_versions(r, want, want, &ver, err, errlen);
}

/* ===================================================================
 * Lifecycle (riskd-detectors(7), LIFECYCLE). A detector keeps the open
 * alerts of each rule in an rk__openset by a key (an enterprise, a unit,
 * a case ...), with at most one more string per alert (`extra`, fields
 * joined by PR_SEP; the set interns the parts before and after the first
 * separator apart, so pr_notify hands fill a copy). A window rule, after every event of the key,
 * computes when its condition stops holding without new events and calls
 * pr_arm: the timer "<kind>:<key>" then fires at that time plus
 * alerts.keep_firing_for, and resolves when the key's resolve time is
 * still that deadline. pr_notify writes the notices; pr_open_expire
 * forgets per-event alerts that no amendment can retract any more.
 * =================================================================== */

#define PR_SEP '\x1f'               /* between the fields of a key or extra */
#define PR_OPEN_KEEP (30 * RK_DAY)  /* how long a per-event alert can be
                                       retracted: alerts.open_ttl's default */

/* Fill the subject (and anything else identifying) of notice a for the
 * open alert of key with extra; scratch (n bytes) may hold split copies. */
typedef void (*pr_fill_fn)(rk_alert *a, const char *key, const char *extra, char *scratch,
                           size_t n);

/* The timer key "<kind>:<key>" in buf (n bytes) or, when longer, in a new
 * allocation the caller frees when it is not buf. NULL when out of memory. */
static inline char *pr_timer_key(char kind, const char *key, char *buf, size_t n)
{
    size_t len = strlen(key);
    char *k = len + 3 > n ? malloc(len + 3) : buf;
    if (k == NULL)
        return NULL;
    k[0] = kind;
    k[1] = ':';
    memcpy(k + 2, key, len + 1);
    return k;
}

/* Arm "<kind>:<key>" at deadline. 0 or -1. */
static inline int pr_timer(const rk_host_api *api, rk_host *host, char kind, const char *key,
                           int64_t deadline)
{
    char buf[128], *k = pr_timer_key(kind, key, buf, sizeof(buf));
    int rc;
    if (k == NULL)
        return -1;
    rc = api->timer_set(host, deadline, k, 0);
    if (k != buf)
        free(k);
    return rc < 0 ? -1 : 0;
}

/* The condition of key's open alerts stops holding at stops_at (INT64_MAX:
 * not without new events): when that moves the resolve time, arm
 * "<kind>:<key>" there. 0 (also when key has no open alert) or -1. */
static inline int pr_arm(const rk_host_api *api, rk_host *host, rk__openset *set, char kind,
                         const char *key, int64_t stops_at)
{
    int64_t at;
    if (!rk__open_due(set, key, stops_at, api->keep_firing_for(host), &at))
        return 0;
    return pr_timer(api, host, kind, key, at);
}

/* The condition of key does not hold at `now`: it stopped now, unless the
 * resolve time already known says it stopped earlier. 0 or -1. */
static inline int pr_arm_stopped(const rk_host_api *api, rk_host *host, rk__openset *set,
                                 char kind, const char *key, int64_t now)
{
    const rk__openrec *r = rk__open_get(set, key);
    int64_t keep = api->keep_firing_for(host);
    if (r == NULL || (r->resolve_at != INT64_MAX &&
                      r->resolve_at <= (now > INT64_MAX - keep ? INT64_MAX : now + keep)))
        return 0;
    return pr_arm(api, host, set, kind, key, now);
}

/* Write the notice `status` (RESOLVED, RETRACTED) of rule for the open
 * alerts of key in set that `which` selects (NULL: all), with reason,
 * change_ts and evidence, and forget them (the key's record with its last
 * alert). Returns 0, or -1 when the host failed (the alerts stay open). */
static inline int pr_notify(const rk_host_api *api, rk_host *host, rk__openset *set,
                            const char *key, const char *rule, pr_fill_fn fill,
                            rk_alert_status status, const char *reason, int64_t change_ts,
                            const rk_entry_ref *evid, size_t nevid,
                            int (*which)(void *ctx, const rk__open_alert *oa), void *ctx)
{
    rk__openrec *r = rk__open_get(set, key);
    char buf[256], *scratch;
    uint32_t i = 0;
    int rc = 0, rc2;

    while (r != NULL && i < r->n) {
        size_t xl = rk__open_extra(set, &r->a[i], NULL, 0);
        size_t need = strlen(key) + (xl ? xl : 1) + 1;
        rk_alert a;
        if (which != NULL && !which(ctx, &r->a[i])) {
            i++;
            continue;
        }
        /* scratch for fill, then the extra */
        if ((scratch = 2 * need > sizeof(buf) ? malloc(2 * need) : buf) == NULL)
            return -1;
        rk__open_extra(set, &r->a[i], scratch + need, need);
        memset(&a, 0, sizeof(a));
        a.rule = rule;
        a.ts = r->a[i].ts;
        fill(&a, key, xl ? scratch + need : NULL, scratch, need);
        a.status = status;
        a.reason = reason;
        a.change_ts = change_ts;
        a.evidence = evid;
        a.n_evidence = nevid;
        rk__open_prime(set, &r->a[i]);
        rc2 = api->emit(host, &a);
        if (scratch != buf)
            free(scratch);
        if (rc2 < 0) {
            rc = -1;
            i++;
            continue;
        }
        rk__open_remove(set, r, i);
    }
    if (r != NULL && r->n == 0)
        rk__open_drop(set, key);
    return rc;
}

/* Arm "x:<key>" to forget a per-event alert raised at ts PR_OPEN_KEEP
 * later (pr_open_expire). 0 or -1. */
static inline int pr_expire_timer(const rk_host_api *api, rk_host *host, const char *key,
                                  int64_t ts)
{
    return pr_timer(api, host, 'x', key, ts > INT64_MAX - PR_OPEN_KEEP ? INT64_MAX
                                                                       : ts + PR_OPEN_KEEP);
}

/* The timer "x:<key>" armed by pr_expire_timer fired at deadline: forget
 * the open alerts of key raised PR_OPEN_KEEP or longer before it (no
 * notice: the daemon's alerts.open_ttl closes them). */
static inline void pr_open_expire(rk__openset *set, const char *key, int64_t deadline)
{
    int64_t before = deadline < INT64_MIN + PR_OPEN_KEEP ? INT64_MIN
                                                         : deadline - PR_OPEN_KEEP + 1;
    if (before > INT64_MIN)
        rk__open_let_go(set, key, before - 1);
}

/* End a resolve reason with how long the rule has not held:
 * "，且已持续1小时。" / " for 1 hour." (alerts.keep_firing_for). */
static inline void pr_say_kept(rk_say *t)
{
    rk_say_f(t, t->en ? " for " : "，且已持续");
    rk_say_span(t, t->api->keep_firing_for(t->host));
    rk_say_f(t, t->en ? "." : "。");
}

/* A new string "a" PR_SEP "b" (free it), or NULL when out of memory. */
static inline char *pr_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    s[la] = PR_SEP;
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

/* Split a copy of "a" PR_SEP "b" (in scratch, n bytes, at least
 * strlen(s) + 1) into *a and *b; b is NULL when there is no separator. */
static inline void pr_split(const char *s, char *scratch, size_t n, const char **a,
                            const char **b)
{
    size_t len = s != NULL ? strlen(s) : 0;
    char *sep;
    *a = s;
    *b = NULL;
    if (s == NULL || len + 1 > n)
        return;
    memcpy(scratch, s, len + 1);
    if ((sep = strchr(scratch, PR_SEP)) == NULL)
        return;
    *sep = '\0';
    *a = scratch;
    *b = sep + 1;
}

#endif /* RISKD_DETECTORS_PRACTICE_H */
