/* daemon/redis/resolve_static.c - the static resolver: redis.host and
 * redis.port as configured.
 *
 * Neither Sentinel nor Cluster configured: every connect attempt goes to
 * the address given in the options (rk__conn_new set r->cur_host and
 * cur_port from them and nothing changes them), with no query, no extra
 * handshake and no reply of its own to look at. */
#include "conn.h"

static void static_resolve(rk__redis *r)
{
    rk__conn_connect(r);
}

const rk__resolver rk__resolver_static = {
    .name = "static",
    .resolve = static_resolve,
};
