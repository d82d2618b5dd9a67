/* daemon/redis/adapter.c - hiredis async contexts on the libuv loop.
 *
 * hiredis 0.14.1's own libuv adapter returns early when the poll status is
 * non-zero, so a refused or reset connection could produce no callback at
 * all. This one passes an error status on as readable + writable, so
 * hiredis's read or connect check sees the error. redis.c's connections,
 * the resolvers' short-lived queries, the ASK target's connection
 * (resolve_cluster.c) and the +switch-master watcher (resolve_sentinel.c)
 * attach their contexts here. */
#include <stdlib.h>

#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "internal.h"

typedef struct uv_events {
    uv_poll_t handle;
    redisAsyncContext *ac;          /* NULL once hiredis cleaned up */
    int events;                     /* wanted */
    int applied;                    /* given to uv_poll_start */
} uv_events;

static void on_poll(uv_poll_t *handle, int status, int events)
{
    uv_events *p = handle->data;

    /* An error status (ECONNREFUSED, ECONNRESET, ...) is passed on as both
     * events so that hiredis's read or connect check sees the error. */
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;
    if (p->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

/* Tell libuv what we wait for - only when it changed: every
 * uv_poll_start costs an epoll_ctl in the next poll, and hiredis asks for
 * reads again after every write. */
static void poll_update(uv_events *p)
{
    if (p->ac == NULL || p->events == p->applied)
        return;
    p->applied = p->events;
    if (p->events)
        uv_poll_start(&p->handle, p->events, on_poll);
    else
        uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d) { uv_events *p = d; p->events |= UV_READABLE; poll_update(p); }
static void ev_del_read(void *d) { uv_events *p = d; p->events &= ~UV_READABLE; poll_update(p); }
static void ev_add_write(void *d) { uv_events *p = d; p->events |= UV_WRITABLE; poll_update(p); }
static void ev_del_write(void *d) { uv_events *p = d; p->events &= ~UV_WRITABLE; poll_update(p); }

static void ev_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *d)
{
    uv_events *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, ev_close_cb);
}

/* Attach a fresh context to the loop. Returns 0 or -1. */
int rk__redis_attach(uv_loop_t *loop, redisAsyncContext *ac)
{
    uv_events *p;

    if (ac->ev.data != NULL)
        return -1;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -1;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->handle.data = p;
    p->ac = ac;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return 0;
}
