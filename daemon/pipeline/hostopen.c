/* hostopen.c - the host's side of the built-in detectors' open alerts
 * (rk__host_open_ops, reached from a detector's rk_host by
 * rk__open_ops_of): file the alert just raised under the detector's own
 * key, find a key's alerts again, and point the detector's next notice at
 * one of them.
 *
 * file(), alerts(), set_resolve(), forget() and let_go() are the store's
 * (openkeys.c), for this host's detector: the record host_emit just added
 * is filed under the hash of (rule, key) with the key's resolve time and
 * a unit, so the detector finds it again by key instead of keeping the
 * subject itself. prime() gives the notice the detector emits next the id
 * of the open alert it is about: host_emit writes that notice under the
 * alert's id through the engine's output - which takes the rest of the
 * notice from the open alert itself (output.h) - and keeps the
 * indicators' `unfiled` count for a retraction; the detector then
 * forgets the record (a filed record is found by its key, not its id). */
#include <string.h>

#include "engine_int.h"

#define HOST(h) ((struct rk_host *)(void *)(h))

static int host_file(rk_host *h, const char *rule, const char *key, int64_t resolve_at,
                     const char *unit)
{
    return rk__ostore_file_last(&HOST(h)->eng->open, HOST(h)->idx, rule, key, resolve_at, unit);
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

const rk__open_ops rk__host_open_ops = {host_file, host_alerts, host_set_resolve,
                                        host_forget, host_let_go, host_prime};
