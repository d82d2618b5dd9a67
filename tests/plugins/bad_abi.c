/* tests/plugins/bad_abi.c - a plugin built for a future ABI major; riskd
 * must refuse to load it. */
#include "riskd/detector.h"

static void *create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                    char *err, size_t errlen)
{
    (void)api; (void)host; (void)cfg; (void)err; (void)errlen;
    return NULL;
}
static int on_event(void *self, const rk_event *ev) { (void)self; (void)ev; return 0; }
static void destroy(void *self) { (void)self; }

static const rk_detector_ops ops = {
    RK_ABI_MAJOR + 1, 0, "bad_abi", "built for another ABI",
    create, NULL, on_event, NULL, NULL, NULL, NULL, destroy, NULL
};

const rk_detector_ops *rk_detector_entry(void);
const rk_detector_ops *rk_detector_entry(void) { return &ops; }
