/* tests/plugins/crasher.c - a detector that aborts the process on the task
 * "CRASH" and reports a failure on the task "FAIL": riskd must dead-letter
 * the first after streams.max_deliveries restarts, the second at once. */
#include <stdlib.h>
#include <string.h>

#include "riskd/detector.h"

static int dummy;

static void *create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                    char *err, size_t errlen)
{
    (void)api; (void)host; (void)cfg; (void)err; (void)errlen;
    return &dummy;
}

static int on_event(void *self, const rk_event *ev)
{
    (void)self;
    if (ev->task_id && strcmp(ev->task_id, "CRASH") == 0)
        abort();
    if (ev->task_id && strcmp(ev->task_id, "FAIL") == 0)
        return -1;
    return 0;
}

static void destroy(void *self) { (void)self; }

static const rk_detector_ops ops = {
    RK_ABI_MAJOR, RK_ABI_MINOR, "crasher", "aborts on task CRASH (tests only)",
    create, NULL, on_event, NULL, NULL, NULL, NULL, destroy, NULL
};

const rk_detector_ops *rk_detector_entry(void);
const rk_detector_ops *rk_detector_entry(void) { return &ops; }
