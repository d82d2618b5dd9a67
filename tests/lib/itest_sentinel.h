/* tests/lib/itest_sentinel.h - Redis Sentinel helpers for integration
 * tests: redis-sentinel processes on loopback, each with its own config
 * file in a fresh temporary directory (Sentinel rewrites its config), and
 * small queries on replication and on what the sentinels believe. */
#ifndef RISKD_TEST_ITEST_SENTINEL_H
#define RISKD_TEST_ITEST_SENTINEL_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct it_sentinel {
    pid_t pid;
    int port;
    char dir[256];
} it_sentinel;

/* Start a sentinel (`redis-server <dir>/sentinel.conf --sentinel`, which
 * is what redis-sentinel is) on a free port, monitoring master `name` at
 * 127.0.0.1:master_port with `quorum`, down-after-milliseconds 1000 and
 * failover-timeout 5000, and wait until it answers PING. 0 or -1. */
int it_sentinel_start(it_sentinel *s, const char *name, int master_port, int quorum);
/* SIGKILL and reap (nothing when not running). */
void it_sentinel_kill(it_sentinel *s);
/* The master port this sentinel gives for `name`, or -1 (no answer). */
int it_sentinel_master_port(const it_sentinel *s, const char *name);
/* Whether the sentinel's view of `name` is a plain master again: no
 * failover in progress (flags "master"; a failover's leader closes the
 * normal clients of the instances it reconfigures until it ends). */
bool it_sentinel_settled(const it_sentinel *s, const char *name);
/* Wait until the sentinel knows `others` other sentinels and `replicas`
 * replicas of `name`. */
bool it_sentinel_wait_known(const it_sentinel *s, const char *name, int others,
                            int replicas, int timeout_ms);
/* Wait until the replica on `port` has its link to the master up. */
bool it_replica_wait_link(int port, int timeout_ms);
/* How many times the server on `port` ran `cmd` (lowercase, as in INFO
 * commandstats: "xreadgroup", "role"), 0 when never, -1 on no answer. */
long long it_info_calls(int port, const char *cmd);

#endif
