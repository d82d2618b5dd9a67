/* tests/plugins/minor_probe.c - a detector that shows what riskd reads of
 * a plugin built against an older ABI minor (tests only).
 *
 * Rule `filed` (info, no cooldown): every inspection.filed it gets fires
 * one alert with subject.task_id = the task, ts = the event's ts, value =
 * how many filings it got. Built three ways (test-plugin-abi):
 *
 *   minor_probe.so       this riskd's minor: its alerts carry trigger_key
 *                        "POISON", so their ids include it; it gets
 *                        amendments (RK_EVF_AMENDED, minor 1) and on one
 *                        also retracts its first alert (a notice, minor 4).
 *   minor_probe_prev.so  (minor_probe_prev.c) declares minor 3, older
 *                        than this riskd's, and emits the alert as minor 3
 *                        laid it out: without status, reason and change_ts.
 *                        The memory right after it holds status RETRACTED,
 *                        so a host that read status anyway would take the
 *                        alert for a notice and write no alert.
 *   minor_probe_next.so  (minor_probe_next.c) declares RK_ABI_MINOR + 1:
 *                        riskd must refuse it. */
#include <stddef.h>
#include <string.h>

#include "riskd/detector.h"

#if defined(MINOR_PROBE_PREV)
#define PROBE_NAME "minor_probe_prev"
#define PROBE_MINOR 3
#elif defined(MINOR_PROBE_NEXT)
#define PROBE_NAME "minor_probe_next"
#define PROBE_MINOR (RK_ABI_MINOR + 1)
#else
#define PROBE_NAME "minor_probe"
#define PROBE_MINOR RK_ABI_MINOR
#endif

#if RK_ABI_MINOR < 4
#error "minor_probe_prev models ABI minor 3 under a host that reads status (minor 4)"
#endif

/* rk_alert as ABI minor 3 declared it (minor 4 appended status, reason,
 * change_ts). */
typedef struct alert_v1 {
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
    const char *trigger_key;
    const char *item_code;          /* minor 3 */
    const char *domain;
} alert_v1;

/* The v1 alert and what happens to follow it in the plugin's memory. */
typedef struct alert_v1_in_memory {
    alert_v1 a;
    rk_alert_status after;
    const char *after_reason;
    int64_t after_ts;
} alert_v1_in_memory;

_Static_assert(offsetof(rk_alert, status) == sizeof(alert_v1),
               "minor 4 appended status to the minor-3 rk_alert");
_Static_assert(offsetof(alert_v1_in_memory, after) == offsetof(rk_alert, status),
               "the poison sits where a minor-4 host would look for status");

typedef struct mp_state {
    const rk_host_api *api;
    rk_host *host;
    long long n;
    int64_t first_ts;
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
    alert_v1_in_memory m = {{0}, RK_ALERT_RETRACTED, "POISON", 0};
    alert_v1 *a = &m.a;
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
    if (PROBE_MINOR >= 4) {
        memset(&full, 0, sizeof(full));
        memcpy(&full, a, sizeof(*a));
        full.trigger_key = "POISON";
        out = &full;
    } else {
        out = (const rk_alert *)(const void *)&m;
    }
    if (s->api->emit(s->host, out) < 0)
        return -1;
    if (s->n == 1)
        s->first_ts = ev->ts;
    if (PROBE_MINOR >= 4 && (ev->flags & RK_EVF_AMENDED)) {
        /* The amendment retracts the first alert: its content again. */
        full.ts = s->first_ts;
        full.status = RK_ALERT_RETRACTED;
        full.reason = strcmp(s->api->language(s->host), "en") == 0 ?
                      "The filing was amended." : "\xe5\xa4\x87\xe6\xa1\x88\xe5\xb7\xb2\xe6\x9b\xb4\xe6\xad\xa3\xe3\x80\x82";
        full.change_ts = ev->ts;
        if (s->api->emit(s->host, &full) < 0)
            return -1;
    }
    return 0;
}

static void destroy(void *self) { (void)self; }

static const rk_detector_ops ops = {
    RK_ABI_MAJOR, PROBE_MINOR, PROBE_NAME, "one alert per filing (ABI tests only)",
    create, NULL, on_event, NULL, NULL, NULL, NULL, destroy, NULL
};

const rk_detector_ops *rk_detector_entry(void);
const rk_detector_ops *rk_detector_entry(void) { return &ops; }
