/* detectors/practice.h - small helpers shared by the five detectors from
 * the supervision practice (inspection_frequency, discretion,
 * review_correction, violation_hotspot, officer_credential): the
 * reference-list lookups guarded for a host of an older ABI minor and the
 * snapshot encoding of an rk_winset (u32 n_keys, then per key str id, u32
 * n, n x (i64 ts, ref, u32 flag)). Summaries use riskd/text.h like every
 * detector. Header-only, static inline, using the kit alone. */
#ifndef RISKD_DETECTORS_PRACTICE_H
#define RISKD_DETECTORS_PRACTICE_H

#include <math.h>
#include <stdio.h>
#include "riskd/kit.h"
#include "riskd/text.h"

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

/* The snapshot's version word, or -1 with err set ("snapshot: ..."). */
static inline int pr_read_version(rk_rd *r, uint32_t want, char *err, size_t errlen)
{
    uint32_t ver = rk_rd_u32(r);
    if (r->err || ver != want) {
        rk_kit_errf(err, errlen, "snapshot: %s", r->err ? "truncated"
                    : "unsupported format version");
        return -1;
    }
    return 0;
}

#endif /* RISKD_DETECTORS_PRACTICE_H */
