/* hostopen.c - the host's side of the built-in detectors' open alerts
 * (rk__host_open_ops, reached from a detector's rk_host by
 * rk__open_ops_of): file the alert just raised under the detector's own
 * key, and end a key's alerts with one notice each.
 *
 * file() gives the record host_emit just added (the store's last) the hash
 * of (rule, key), the key's resolve time and the unit, so the detector
 * finds it again by key instead of keeping the subject itself. end() takes
 * the records of the detector filed under (rule, key) with ts in the
 * range asked, in (ts, id) order (the store's order, not the index's, so
 * live, replay and restore write the notices alike), writes each one's
 * notice through the engine's output - which takes the rest of the notice
 * from the open alert itself (output.h) - and removes it. A retracted
 * unfiled alert leaves the indicators' `unfiled` count as in host_emit,
 * by the unit filed with it. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define HOST(h) ((struct rk_host *)(void *)(h))

static int host_file(rk_host *h, const char *rule, const char *key, int64_t resolve_at,
                     const char *unit)
{
    rk__engine *e = HOST(h)->eng;
    const rk__oa *r = rk__ostore_at(&e->open, e->open.last);
    int u = -1;
    if (r == NULL || r->det != HOST(h)->idx || rule == NULL || key == NULL ||
        strcmp(rk__ostore_rule_name(&e->open, r->rule), rule) != 0)
        return -1;
    if (unit != NULL && (u = rk__ostore_unit(&e->open, unit)) < 0)
        return -1;
    return rk__ostore_rekey(&e->open, e->open.last, rk__ostore_rule_keyhash(rule, key),
                            resolve_at, u < 0 ? RK__OSTORE_NO_UNIT : (uint32_t)u);
}

/* A record to end, sorted by (ts, id). */
typedef struct ending {
    int64_t ts;
    unsigned char id[16];
    uint32_t slot;
} ending;

static int ending_cmp(const void *a, const void *b)
{
    const ending *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return memcmp(x->id, y->id, sizeof(x->id));
}

static int host_end(rk_host *h, const rk__open_end *q)
{
    rk__engine *e = HOST(h)->eng;
    rk__det *d = e->reg.dets[HOST(h)->idx];
    const char *status = q->status == RK_ALERT_RESOLVED ? "resolved" :
                         q->status == RK_ALERT_RETRACTED ? "retracted" : NULL;
    int rule = -1, slot, rc = 0;
    uint32_t it = 0, n = 0, cap = 0, k;
    ending *v = NULL;
    uint32_t i;

    if (status == NULL || q->rule == NULL || q->key == NULL)
        return -1;
    for (i = 0; i < e->open.nrules; i++)
        if (strcmp(e->open.rules[i], q->rule) == 0)
            rule = (int)i;
    if (rule < 0)
        return 0;                   /* no alert of the rule was ever open */
    while ((slot = rk__ostore_next_key(&e->open, HOST(h)->idx,
                                       rk__ostore_rule_keyhash(q->rule, q->key), &it)) >= 0) {
        const rk__oa *r = rk__ostore_at(&e->open, (uint32_t)slot);
        if (r->rule != rule || r->ts < q->ts_from || r->ts > q->ts_to)
            continue;
        if (n == cap) {
            ending *nv = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof(*v));
            if (nv == NULL) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[n].ts = r->ts;
        memcpy(v[n].id, r->id, sizeof(v[n].id));
        v[n++].slot = (uint32_t)slot;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), ending_cmp);
    for (k = 0; k < n && rc == 0; k++) {
        const rk__oa *r = rk__ostore_at(&e->open, v[k].slot);
        char id[33];
        rk_alert a;
        memset(&a, 0, sizeof(a));
        a.rule = q->rule;
        a.ts = r->ts;
        a.status = q->status;
        a.reason = q->reason;
        a.change_ts = q->change_ts;
        a.evidence = q->evidence;
        a.n_evidence = q->n_evidence;
        if (r->unit != RK__OSTORE_NO_UNIT)
            a.subject.unit_id = rk__ostore_unit_name(&e->open, r->unit);
        rk__alert_id_unpack(r->id, id);
        if (e->out->notice(e, id, d->alert_name, &a, status, rk__wall_ms()) < 0) {
            rc = -1;
            break;
        }
        e->stats.notices_emitted++;
        if (q->status == RK_ALERT_RETRACTED && e->ind != NULL && a.subject.unit_id != NULL &&
            rk__ind_is_unfiled_rule(d->alert_name, q->rule))
            rk__ind_unfiled_retract(e->ind, a.ts, a.subject.unit_id);
        rk__ostore_remove(&e->open, v[k].slot);
    }
    free(v);
    return rc < 0 ? -1 : (int)k;
}

const rk__open_ops rk__host_open_ops = {host_file, host_end};
