/* tests/lib/itest_proxy.h - a loopback TCP proxy that can hold traffic.
 *
 * Stands between one process and its Redis to play the network: while
 * held, what the process sends stays queued in the proxy (its requests
 * reach Redis only on release, in order), while Redis's replies still get
 * through. That is a request held up in the network, or a process frozen
 * between queueing a command and writing it - deterministically, without
 * racing a SIGSTOP against the process's loop. */
#ifndef RISKD_TEST_ITEST_PROXY_H
#define RISKD_TEST_ITEST_PROXY_H

#include <stdbool.h>

typedef struct it_proxy it_proxy;

/* Listen on a free loopback port (*port) and forward every connection to
 * 127.0.0.1:target. NULL on failure. */
it_proxy *it_proxy_start(int target, int *port);
/* Hold (true) or release (false) the client-to-Redis direction. */
void it_proxy_hold(it_proxy *p, bool hold);
/* Bytes sent by clients and held back right now. */
long it_proxy_held(it_proxy *p);
/* Close every connection and the listener; free p. */
void it_proxy_stop(it_proxy *p);

#endif
