/* tests/lib/itest_cluster.h - a 3-master Redis Cluster on loopback for
 * integration tests.
 *
 * Three redis-server processes (it_redis, each in its own temporary
 * directory, --cluster-enabled yes, node timeout 2 s, a free bus port, no
 * persistence) are
 * joined by `redis-cli --cluster create ... --cluster-yes` (slots split in
 * three even ranges, no replicas); it_cluster_start returns once every node
 * says cluster_state:ok and knows all 16384 slots and 3 nodes. Helpers find
 * the node of a key and move a slot from one master to another the way
 * redis-cli does a resharding (SETSLOT IMPORTING/MIGRATING, MIGRATE the
 * keys, SETSLOT NODE on every node), which makes clients get MOVED. */
#ifndef RISKD_TEST_ITEST_CLUSTER_H
#define RISKD_TEST_ITEST_CLUSTER_H

#include <stdbool.h>

#include "itest.h"

#define IT_CLUSTER_N 3             /* masters */
#define IT_CLUSTER_MAX 6           /* nodes, with a replica of each master */

typedef struct it_cluster {
    it_redis node[IT_CLUSTER_MAX];  /* node[i].port, .dir, .pid */
    char id[IT_CLUSTER_MAX][48];    /* CLUSTER MYID of each */
    int n;                          /* nodes started: 3 or 6 */
} it_cluster;

/* Start the three nodes, create the cluster and wait until it is ok
 * (typically about 2.5 s). On failure everything started is killed and -1
 * is returned (the reason is printed to stderr). */
int it_cluster_start(it_cluster *c);
/* The same with a replica of each master (IT_CLUSTER_MAX nodes, replicas
 * assigned by redis-cli --cluster-replicas 1): a master that dies is
 * replaced by its replica after the node timeout. */
int it_cluster_start_replicated(it_cluster *c);
/* SIGTERM and reap every node still running (directories are left). */
void it_cluster_stop(it_cluster *c);
/* Wait until every running node says cluster_state:ok with all slots
 * assigned and every started node known. */
bool it_cluster_wait_ok(const it_cluster *c, int timeout_ms);
/* The slot of key (CLUSTER KEYSLOT on a running node), or -1. */
int it_cluster_keyslot(const it_cluster *c, const char *key);
/* The port of the master serving slot (CLUSTER SLOTS of the first running
 * node), or -1. */
int it_cluster_slot_owner(const it_cluster *c, int slot);
/* The port of the master serving key's slot, or -1. */
int it_cluster_node_for(const it_cluster *c, const char *key);
/* The index (0..n-1) of the node listening on port, or -1. */
int it_cluster_index(const it_cluster *c, int port);
/* Move slot (with its keys) from its current master to the master on
 * to_port; returns once every running node names to_port as its owner.
 * 0, or -1 with the reason on stderr (to_port already owns it: 0). */
int it_cluster_migrate_slot(it_cluster *c, int slot, int to_port);

/* Client connections for keys that may live on any node: with cl NULL every
 * key goes to `one`; on a cluster, to the master serving the key's slot
 * (connected on first use). */
typedef struct it_conns {
    redisContext *one;              /* not on a cluster */
    it_cluster *cl;
    redisContext *node[IT_CLUSTER_MAX];
} it_conns;

/* The connection serving key (aborts the test when no node serves it). */
redisContext *it_conns_for(it_conns *k, const char *key);
/* Close the per-node connections (not `one`). */
void it_conns_close(it_conns *k);

#endif
