/* lease.c - how an engine ends: fenced out or past its lease (it gives up
 * and tells the node), or stopped cleanly (it tells whoever asked). The
 * bottom of the engine's files: everything may call these, they call
 * nothing of the engine back, only the callbacks the node registered. */
#include "engine_int.h"

/* Fenced out (a write refused, or the lease's time is up): from now on the
 * engine does nothing - no read, no write - and the node frees it. What it
 * read and did not get acknowledged stays pending for the new holder. */
void rk__engine_give_up(rk__engine *e, const char *why)
{
    if (e->lost)
        return;
    e->lost = true;
    e->state = E_STOPPED;
    uv_timer_stop(&e->housekeeping);
    if (e->role == RK__ROLE_CROSS)
        rk__log(RK_LOG_WARNING, "partition cross (%u streams): giving up: %s", e->nstreams,
                why);
    else
        rk__log(RK_LOG_WARNING, "partition %d (%s, %s): giving up: %s", e->cfg->partition,
                e->st[0].key, e->st[1].key, why);
    if (e->lost_cb)
        e->lost_cb(e->lost_ud, why);
}

/* Still inside the lease? (Checked with a fresh clock, not the loop's
 * cached one: after a pause the loop may run I/O callbacks before the
 * timers that would notice.) */
bool rk__lease_valid(rk__engine *e)
{
    if (!e->leased || e->lost)
        return !e->lost;
    if (uv_hrtime() < e->lease_until_hr)
        return true;
    rk__engine_give_up(e, "the lease ran out before it could be renewed");
    return false;
}

void rk__finish_stop(rk__engine *e)
{
    void (*cb)(void *) = e->stop_cb;
    if (e->state == E_STOPPED)
        return;
    e->state = E_STOPPED;
    uv_timer_stop(&e->housekeeping);
    if (cb) {
        e->stop_cb = NULL;
        cb(e->stop_ud);
    }
}
