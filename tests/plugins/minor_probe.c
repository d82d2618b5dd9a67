/* tests/plugins/minor_probe.c - a detector that shows what riskd reads of
 * a plugin built against an older ABI minor (tests only).
 *
 * Rule `filed` (info, no cooldown): every inspection.filed it gets fires
 * one alert with subject.task_id = the task, ts = the event's ts, value =
 * how many filings it got. Built three ways (test-plugin-abi):
 *
 *   minor_probe.so       this riskd's minor: its alerts carry trigger_key
 *                        "POISON", so their ids include it, and it gets
 *                        amendments (RK_EVF_AMENDED).
 *   minor_probe_prev.so  (minor_probe_prev.c) declares an older minor,
 *                        0, and emits the alert as minor 0
 *                        laid it out: without trigger_key. The memory right
 *                        after it holds the pointer "POISON", so a host that
 *                        read trigger_key anyway would give the alert another
 *                        id. It must not get amendments.
 *   minor_probe_next.so  (minor_probe_next.c) declares RK_ABI_MINOR + 1:
 *                        riskd must refuse it. */
#include <stddef.h>
#include <string.h>

#include "riskd/detector.h"

#if defined(MINOR_PROBE_PREV)
#define PROBE_NAME "minor_probe_prev"
#define PROBE_MINOR 0
#elif defined(MINOR_PROBE_NEXT)
#define PROBE_NAME "minor_probe_next"
#define PROBE_MINOR (RK_ABI_MINOR + 1)
#else
#define PROBE_NAME "minor_probe"
#define PROBE_MINOR RK_ABI_MINOR
#endif

#if RK_ABI_MINOR < 1
#error "minor_probe_prev models ABI minor 0 under a host of a later minor"
#endif

/* rk_alert as ABI minor 0 declared it (minor 1 appended trigger_key). */
typedef struct alert_v0 {
    const char *rule;
    rk_severity severity;
    int64_t ts;
    rk_subject subject;
    double value;
    double threshold;
    const char *summary;
    const rk_entry_ref *evidence;
    size_t n_evidence;
    int64_t cooldown;
} alert_v0;

/* The v0 alert and what happens to follow it in the plugin's memory. */
typedef struct alert_v0_in_memory {
    alert_v0 a;
    const char *after;
} alert_v0_in_memory;

_Static_assert(offsetof(rk_alert, trigger_key) == sizeof(alert_v0),
               "minor 1 appended trigger_key to the minor-0 rk_alert");
_Static_assert(offsetof(alert_v0_in_memory, after) == offsetof(rk_alert, trigger_key),
               "the poison sits where a minor-1 host would look for trigger_key");

typedef struct mp_state {
    const rk_host_api *api;
    rk_host *host;
    long long n;
} mp_state;

static mp_state the_state;

static void *create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                    char *err, size_t errlen)
{
    (void)cfg; (void)err; (void)errlen;
    the_state.api = api;
    the_state.host = host;
    the_state.n = 0;
    return &the_state;
}

static int on_event(void *self, const rk_event *ev)
{
    mp_state *s = self;
    alert_v0_in_memory m = {{0}, "POISON"};
    alert_v0 *a = &m.a;
    rk_alert full;
    const rk_alert *out;

    if (ev->type != RK_EV_INSPECTION_FILED || ev->task_id == NULL)
        return 0;
    s->n++;
    a->rule = "filed";
    a->severity = RK_SEV_INFO;
    a->ts = ev->ts;
    a->subject.task_id = ev->task_id;
    a->value = (double)s->n;
    a->summary = (ev->flags & RK_EVF_AMENDED) ? "An amended filing." : "A filing.";
    a->evidence = &ev->ref;
    a->n_evidence = 1;
    if (PROBE_MINOR >= 1) {
        memset(&full, 0, sizeof(full));
        memcpy(&full, a, sizeof(*a));
        full.trigger_key = "POISON";
        out = &full;
    } else {
        out = (const rk_alert *)(const void *)&m;
    }
    return s->api->emit(s->host, out) < 0 ? -1 : 0;
}

static void destroy(void *self) { (void)self; }

static const rk_detector_ops ops = {
    RK_ABI_MAJOR, PROBE_MINOR, PROBE_NAME, "one alert per filing (ABI tests only)",
    create, NULL, on_event, NULL, NULL, NULL, NULL, destroy, NULL
};

const rk_detector_ops *rk_detector_entry(void);
const rk_detector_ops *rk_detector_entry(void) { return &ops; }
