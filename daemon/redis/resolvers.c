/* daemon/redis/resolvers.c - the table of resolvers, and opening a connection.
 *
 * How a connection finds its server is chosen once, here, from its options,
 * and never looked at again by the connection itself (redis.c only calls
 * the chosen resolver's hooks, see conn.h):
 *
 *   n_cluster_seeds > 0                 cluster   (resolve_cluster.c)
 *   n_sentinels > 0 and sentinels set   sentinel  (resolve_sentinel.c)
 *   otherwise                           static    (resolve_static.c)
 *
 * The configuration only parses and validates redis.host/port,
 * redis.sentinels and redis.cluster (config.c refuses both of the last two
 * together); this file is where they become behaviour. */
#include "conn.h"

static const rk__resolver *resolver_for(const rk__redis_opts *opts)
{
    if (opts->n_cluster_seeds > 0)
        return &rk__resolver_cluster;
    if (opts->n_sentinels > 0 && opts->sentinels != NULL)
        return &rk__resolver_sentinel;
    return &rk__resolver_static;
}

rk__redis *rk__redis_new(uv_loop_t *loop, const rk__redis_opts *opts,
                        rk__redis_state_cb *state_cb, void *ud)
{
    return rk__conn_new(loop, opts, resolver_for(opts), state_cb, ud);
}
