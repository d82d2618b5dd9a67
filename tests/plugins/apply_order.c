/* tests/plugins/apply_order.c - a detector that tells the order in which
 * riskd applied the events (tests only).
 *
 * Rule `applied` (info, no cooldown): every event it gets fires one alert
 * whose value is the event's ordinal (1, 2, ... in the order on_event was
 * called), whose ts is the event's ts and whose evidence is the event's
 * entry; the subject's task_id holds the ordinal too, so every alert has an
 * id of its own. test-prefetch checks that the ordinals follow event time
 * across the two streams. No state beyond the counter, no snapshot. */
#include <stdio.h>

#include "riskd/detector.h"

typedef struct ao_state {
    const rk_host_api *api;
    rk_host *host;
    long long seq;
} ao_state;

static ao_state the_state;

static void *create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                    char *err, size_t errlen)
{
    (void)cfg; (void)err; (void)errlen;
    the_state.api = api;
    the_state.host = host;
    the_state.seq = 0;
    return &the_state;
}

static int on_event(void *self, const rk_event *ev)
{
    ao_state *s = self;
    rk_alert a = {0};
    char seq[32];
    s->seq++;
    snprintf(seq, sizeof(seq), "%lld", s->seq);
    a.rule = "applied";
    a.severity = RK_SEV_INFO;
    a.ts = ev->ts;
    a.subject.task_id = seq;
    a.value = (double)s->seq;
    a.threshold = 0;
    a.summary = "An event was applied.";
    a.evidence = &ev->ref;
    a.n_evidence = 1;
    a.cooldown = 0;
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
}

static void destroy(void *self) { (void)self; }

static const rk_detector_ops ops = {
    RK_ABI_MAJOR, RK_ABI_MINOR, "apply_order", "one alert per applied event (tests only)",
    create, NULL, on_event, NULL, NULL, NULL, NULL, destroy, NULL
};

const rk_detector_ops *rk_detector_entry(void);
const rk_detector_ops *rk_detector_entry(void) { return &ops; }
