/* hostopen.c - the host's side of the built-in detectors' open alerts
 * (rk__host_open_ops, reached from a detector's rk_host by
 * rk__open_ops_of): file the alert just raised under the detector's own
 * key, and end a key's alerts with one notice each.
 *
 * file(), alerts(), set_resolve(), forget() and let_go() are the store's
 * (openkeys.c), for this host's detector: the record host_emit just added
 * is filed under the hash of (rule, key) with the key's resolve time and
 * a unit, so the detector finds it again by key instead of keeping the
 * subject itself. prime() gives the notice the detector emits next the id
 * of the open alert it is about (host_emit). end() takes the records of
 * the detector filed under (rule, key) with ts in the range asked, in
 * (ts, id) order (rk__ostore_key_slots: not the index's order, so live,
 * replay and restore write the notices alike), writes each one's notice
 * through the engine's output - which takes the rest of the notice from
 * the open alert itself (output.h) - and removes it. A retracted unfiled
 * alert leaves the indicators' `unfiled` count as in host_emit, by the
 * unit filed with it. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define HOST(h) ((struct rk_host *)(void *)(h))

static int host_file(rk_host *h, const char *rule, const char *key, int64_t resolve_at,
                     const char *unit)
{
    return rk__ostore_file_last(&HOST(h)->eng->open, HOST(h)->idx, rule, key, resolve_at, unit);
}

static int host_end(rk_host *h, const rk__open_end *q)
{
    rk__engine *e = HOST(h)->eng;
    rk__det *d = e->reg.dets[HOST(h)->idx];
    const char *status = q->status == RK_ALERT_RESOLVED ? "resolved" :
                         q->status == RK_ALERT_RETRACTED ? "retracted" : NULL;
    uint32_t *v;
    int n, k, rc = 0;

    if (status == NULL || q->rule == NULL || q->key == NULL)
        return -1;
    n = rk__ostore_key_slots(&e->open, HOST(h)->idx, q->rule, q->key, q->ts_from, q->ts_to,
                             &v);
    for (k = 0; k < n; k++) {
        const rk__oa *r = rk__ostore_at(&e->open, v[k]);
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
        rk__ostore_remove(&e->open, v[k]);
    }
    free(v);
    return n < 0 || rc < 0 ? -1 : k;
}

static int host_alerts(rk_host *h, const char *rule, const char *key, rk__open_seen *out,
                       size_t max)
{
    return rk__ostore_key_alerts(&HOST(h)->eng->open, HOST(h)->idx, rule, key, out, max);
}

static int host_set_resolve(rk_host *h, const char *rule, const char *key, int64_t resolve_at)
{
    return rk__ostore_key_resolve(&HOST(h)->eng->open, HOST(h)->idx, rule, key, resolve_at);
}

static int host_forget(rk_host *h, const char *rule, const char *key, int64_t ts_from,
                       int64_t ts_to, const unsigned char *id)
{
    return rk__ostore_key_forget(&HOST(h)->eng->open, HOST(h)->idx, rule, key, ts_from, ts_to,
                                 id, NULL, NULL);
}

static int host_let_go(rk_host *h, const char *rule, const char *key, int64_t ts_from,
                       int64_t ts_to)
{
    return rk__ostore_key_unfile(&HOST(h)->eng->open, HOST(h)->idx, rule, key, ts_from, ts_to);
}

static void host_prime(rk_host *h, const unsigned char *id, int64_t ts)
{
    rk__ostore *s = &HOST(h)->eng->open;
    s->primed = true;
    s->pdet = (uint16_t)HOST(h)->idx;
    s->pts = ts;
    memcpy(s->pid, id, sizeof(s->pid));
}

const rk__open_ops rk__host_open_ops = {host_file, host_end, host_alerts, host_set_resolve,
                                        host_forget, host_let_go, host_prime};
