/* notify.c - the systemd notify protocol (sd_notify(3)), spoken directly.
 *
 * A message is one datagram of newline-separated VAR=value lines sent to
 * the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name
 * starting with '@'). Doing it here keeps riskd free of libsystemd; the
 * protocol is stable and documented.
 *
 * The send never blocks (a non-blocking socket, MSG_DONTWAIT): a manager
 * that stops reading its socket must not freeze the event loop. A message
 * the full socket cannot take is dropped - a watchdog ping is sent again
 * at the next tick, a state change is also in the log - and the first
 * drop is logged. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

int rk__notify(const char *msg)
{
    static int warned;
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t len;
    socklen_t salen;
    ssize_t n;
    int fd;

    if (path == NULL || path[0] == '\0')
        return 0;
    len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';      /* abstract namespace */
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    do {
        n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa,
                   salen);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !warned) {
        warned = 1;
        rk__log(RK_LOG_WARNING, "systemd notify socket %s is full (the manager does not "
                "read it): notifications are dropped, not waited for", path);
    }
    close(fd);
    return n < 0 ? -1 : 1;
}

int64_t rk__notify_watchdog_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;
    unsigned long long v;

    if (usec == NULL)
        return 0;
    if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    v = strtoull(usec, &end, 10);
    if (*end != '\0' || v == 0)
        return 0;
    return (int64_t)(v / 1000);
}
