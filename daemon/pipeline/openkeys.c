/* openkeys.c - a detector's open alerts by its own key: the store-level
 * half of rk__open_ops (internal.h), shared by the engine's host
 * (hostopen.c) and the test fake host, so both keep, find and let go of
 * alerts alike.
 *
 * A detector files the alert its emit just raised (the store's last add)
 * under the hash of (rule, key) with the key's resolve time and a unit;
 * finds a key's alerts in (ts, id) order (rk__ostore_key_slots, not the
 * index's order, so live, replay and restore see them alike); moves their
 * resolve time; forgets them once it has emitted their notices; or lets
 * them go back to their ids (open until alerts.open_ttl). */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

int rk__ostore_file_last(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                         int64_t resolve_at, const char *unit)
{
    const rk__oa *r = rk__ostore_at(s, s->last);
    int u = -1;
    if (r == NULL || r->det != det || rule == NULL || key == NULL ||
        strcmp(rk__ostore_rule_name(s, r->rule), rule) != 0)
        return -1;
    if (unit != NULL && (u = rk__ostore_unit(s, unit)) < 0)
        return -1;
    return rk__ostore_rekey(s, s->last, rk__ostore_rule_keyhash(rule, key), resolve_at,
                            u < 0 ? RK__OSTORE_NO_UNIT : (uint32_t)u);
}

int rk__ostore_key_alerts(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                          rk__open_seen *out, size_t max)
{
    uint32_t *v;
    int n, k;
    if (rule == NULL || key == NULL)
        return -1;
    n = rk__ostore_key_slots(s, det, rule, key, INT64_MIN, INT64_MAX, &v);
    for (k = 0; k < n && (size_t)k < max; k++) {
        const rk__oa *r = rk__ostore_at(s, v[k]);
        out[k].ts = r->ts;
        out[k].resolve_at = r->resolve_at;
        out[k].unit = r->unit != RK__OSTORE_NO_UNIT ? rk__ostore_unit_name(s, r->unit) : NULL;
        memcpy(out[k].id, r->id, sizeof(out[k].id));
    }
    free(v);
    return n;
}

int rk__ostore_key_resolve(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                           int64_t resolve_at)
{
    uint32_t *v;
    int n, k;
    if (rule == NULL || key == NULL)
        return -1;
    n = rk__ostore_key_slots(s, det, rule, key, INT64_MIN, INT64_MAX, &v);
    for (k = 0; k < n; k++) {
        const rk__oa *r = rk__ostore_at(s, v[k]);
        (void)rk__ostore_rekey(s, v[k], r->keyhash, resolve_at, r->unit);
    }
    free(v);
    return n;
}

int rk__ostore_key_forget(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                          int64_t ts_from, int64_t ts_to, const unsigned char *id,
                          void (*gone)(const rk__oa *r, void *ud), void *ud)
{
    uint32_t *v;
    int n, k, m = 0;
    if (rule == NULL || key == NULL)
        return -1;
    n = rk__ostore_key_slots(s, det, rule, key, ts_from, ts_to, &v);
    for (k = 0; k < n; k++) {
        const rk__oa *r = rk__ostore_at(s, v[k]);
        if (id != NULL && memcmp(r->id, id, sizeof(r->id)) != 0)
            continue;
        if (gone != NULL)
            gone(r, ud);
        rk__ostore_remove(s, v[k]);
        m++;
    }
    free(v);
    return n < 0 ? -1 : m;
}

int rk__ostore_key_unfile(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                          int64_t ts_from, int64_t ts_to)
{
    uint32_t *v;
    int n, k;
    if (rule == NULL || key == NULL)
        return -1;
    n = rk__ostore_key_slots(s, det, rule, key, ts_from, ts_to, &v);
    for (k = 0; k < n; k++)
        (void)rk__ostore_unfile(s, v[k]);
    free(v);
    return n;
}
