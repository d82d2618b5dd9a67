/* tests/lib/itest_proxy.c - the holding TCP proxy (itest_proxy.h).
 *
 * One thread polls the listener and every connection pair. Client to
 * Redis, bytes go through a per-pair queue, which is not flushed while
 * the proxy holds; Redis to client, bytes are forwarded as they come. A
 * pair whose either side closes is closed whole. Blocking writes are
 * fine here: loopback, small volumes, a test. */
#include "itest_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 32

typedef struct pair {
    int cfd, sfd;                   /* client side, Redis side; -1 free */
    char *q;                        /* client bytes not yet sent to Redis */
    size_t qlen, qcap;
} pair;

struct it_proxy {
    int lfd, target, wake[2];
    pthread_t th;
    pthread_mutex_t mu;
    bool hold, stop;
    pair pairs[MAX_PAIRS];
};

static void pair_close(pair *pp)
{
    if (pp->cfd >= 0)
        close(pp->cfd);
    if (pp->sfd >= 0)
        close(pp->sfd);
    pp->cfd = pp->sfd = -1;
    free(pp->q);
    pp->q = NULL;
    pp->qlen = pp->qcap = 0;
}

/* To a socket whose peer may have closed it (a riskd that gave up): an
 * error, not a SIGPIPE that ends the test process without a word. */
static int write_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int connect_target(int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void accept_one(it_proxy *p)
{
    int c = accept(p->lfd, NULL, NULL), i;
    if (c < 0)
        return;
    for (i = 0; i < MAX_PAIRS; i++)
        if (p->pairs[i].cfd < 0)
            break;
    if (i == MAX_PAIRS || (p->pairs[i].sfd = connect_target(p->target)) < 0) {
        close(c);
        return;
    }
    p->pairs[i].cfd = c;
}

static void *run(void *arg)
{
    it_proxy *p = arg;
    for (;;) {
        struct pollfd fds[2 + 2 * MAX_PAIRS];
        int idx[2 + 2 * MAX_PAIRS], n = 0, i;
        char buf[65536];
        bool hold;

        pthread_mutex_lock(&p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        hold = p->hold;
        for (i = 0; i < MAX_PAIRS; i++) {     /* released: flush the queues */
            pair *pp = &p->pairs[i];
            if (!hold && pp->cfd >= 0 && pp->qlen > 0) {
                if (write_all(pp->sfd, pp->q, pp->qlen) != 0)
                    pair_close(pp);
                else
                    pp->qlen = 0;
            }
        }
        pthread_mutex_unlock(&p->mu);
        fds[n] = (struct pollfd){p->lfd, POLLIN, 0};
        idx[n++] = -1;
        fds[n] = (struct pollfd){p->wake[0], POLLIN, 0};
        idx[n++] = -2;
        for (i = 0; i < MAX_PAIRS; i++) {
            if (p->pairs[i].cfd < 0)
                continue;
            fds[n] = (struct pollfd){p->pairs[i].cfd, POLLIN, 0};
            idx[n++] = i;
            fds[n] = (struct pollfd){p->pairs[i].sfd, POLLIN, 0};
            idx[n++] = MAX_PAIRS + i;
        }
        if (poll(fds, (nfds_t)n, 100) <= 0)
            continue;
        for (i = 0; i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (idx[i] == -1) {
                accept_one(p);
            } else if (idx[i] == -2) {
                if (read(p->wake[0], buf, sizeof(buf)) < 0)
                    continue;
            } else {
                bool from_client = idx[i] < MAX_PAIRS;
                pair *pp = &p->pairs[from_client ? idx[i] : idx[i] - MAX_PAIRS];
                ssize_t r;
                if (pp->cfd < 0)
                    continue;
                r = read(fds[i].fd, buf, sizeof(buf));
                pthread_mutex_lock(&p->mu);
                if (r <= 0) {
                    pair_close(pp);
                } else if (!from_client) {
                    if (write_all(pp->cfd, buf, (size_t)r) != 0)
                        pair_close(pp);
                } else {
                    if (pp->qlen + (size_t)r > pp->qcap) {
                        size_t cap = (pp->qlen + (size_t)r) * 2;
                        char *q = realloc(pp->q, cap);
                        if (q == NULL) {
                            pair_close(pp);
                            pthread_mutex_unlock(&p->mu);
                            continue;
                        }
                        pp->q = q;
                        pp->qcap = cap;
                    }
                    memcpy(pp->q + pp->qlen, buf, (size_t)r);
                    pp->qlen += (size_t)r;
                    if (!p->hold) {
                        if (write_all(pp->sfd, pp->q, pp->qlen) != 0)
                            pair_close(pp);
                        else
                            pp->qlen = 0;
                    }
                }
                pthread_mutex_unlock(&p->mu);
            }
        }
    }
}

it_proxy *it_proxy_start(int target, int *port)
{
    it_proxy *p = calloc(1, sizeof(*p));
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);
    int i, one = 1;

    if (p == NULL)
        return NULL;
    p->target = target;
    for (i = 0; i < MAX_PAIRS; i++)
        p->pairs[i].cfd = p->pairs[i].sfd = -1;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (p->lfd < 0 || setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(p->lfd, 16) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &alen) != 0 || pipe(p->wake) != 0) {
        if (p->lfd >= 0)
            close(p->lfd);
        free(p);
        return NULL;
    }
    *port = ntohs(a.sin_port);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->th, NULL, run, p) != 0) {
        close(p->lfd);
        close(p->wake[0]);
        close(p->wake[1]);
        free(p);
        return NULL;
    }
    return p;
}

void it_proxy_hold(it_proxy *p, bool hold)
{
    pthread_mutex_lock(&p->mu);
    p->hold = hold;
    pthread_mutex_unlock(&p->mu);
    if (write(p->wake[1], "x", 1) < 0) {
        /* the poll's 100 ms timeout picks the change up anyway */
    }
}

long it_proxy_held(it_proxy *p)
{
    long n = 0;
    int i;
    pthread_mutex_lock(&p->mu);
    for (i = 0; i < MAX_PAIRS; i++)
        if (p->pairs[i].cfd >= 0)
            n += (long)p->pairs[i].qlen;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void it_proxy_stop(it_proxy *p)
{
    int i;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    if (write(p->wake[1], "x", 1) < 0) {
        /* the poll's timeout ends the thread anyway */
    }
    pthread_join(p->th, NULL);
    for (i = 0; i < MAX_PAIRS; i++)
        pair_close(&p->pairs[i]);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
