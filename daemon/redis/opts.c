/* opts.c - the options of a Redis connection for a configuration: the
 * address, credentials and database, the Sentinels or Cluster seeds, and
 * the Cluster slot of the key the connection serves. Used by every
 * connection the programs open on the loop (the engine's, the node's,
 * the lists', riskweb's). */
#include <string.h>

#include "internal.h"

void rk__redis_opts_for(const rk__config *cfg, const char *name, const char *slot_key,
                        rk__redis_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->name = name;
    o->host = cfg->redis_host;
    o->port = cfg->redis_port;
    o->username = cfg->redis_username;
    o->password = cfg->redis_password;
    o->db = cfg->redis_db;
    o->sentinels = (const char *const *)cfg->redis_sentinels;
    o->n_sentinels = cfg->n_sentinels;
    o->master_name = cfg->redis_master_name;
    o->cluster_seeds = (const char *const *)cfg->redis_cluster;
    o->n_cluster_seeds = cfg->n_cluster;
    o->cluster_slot = (int)rk__redis_keyslot(slot_key, strlen(slot_key));
}
