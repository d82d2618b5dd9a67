/* detectors/plugins/two_officers.c - example plugin: the two_officers
 * detector.
 *
 * Inspections are to be carried out by at least two officers. This plugin
 * shows the whole plugin ABI in one small file: it exports
 * rk_detector_entry() (RK_DETECTOR_ENTRY) returning a static const ops
 * table, validates its config with the header-only helpers of riskd/kit.h,
 * and emits through the host table it is given, so it needs no symbol from
 * the daemon (jansson's come from the process that loads it).
 *
 * Rule `too_few_officers` (warning): an inspection.filed whose officers
 * array has fewer than `min_officers` (default 2) entries fires, once per
 * filing. Subject task_id, unit_id, enterprise_id;
 * value = number of officers on the filing, threshold = min_officers,
 * evidence = the filing. Config keys: `min_officers` (integer 1..100,
 * default 2) and `cooldown` (duration >= 0, default "0s": none, as the
 * alert is per filing; accepted because every detector takes `cooldown`).
 *
 * The detector is stateless: no timers, no snapshot, no tracked keys; those
 * ops members are NULL. */
#include "riskd/kit.h"

typedef struct to_state {
    const rk_host_api *api;
    rk_host *host;
    int min_officers;
    int64_t cooldown;
} to_state;

static const char *const to_keys[] = { "min_officers", "cooldown", NULL };

/* Validate cfg into *min_officers and *cooldown. Returns 0, or -1 with a
 * key-path message in err on an unknown key or a bad value. */
static int to_parse_cfg(const json_t *cfg, int *min_officers, int64_t *cooldown,
                        char *err, size_t errlen)
{
    long long v;

    if (rk_kit_cfg_known_keys(cfg, "", to_keys, err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_int(cfg, "", "min_officers", 1, 100, 2, &v, err, errlen) != 0)
        return -1;
    if (rk_kit_cfg_duration(cfg, "", "cooldown", 0, 0, cooldown, err, errlen) != 0)
        return -1;
    *min_officers = (int)v;
    return 0;
}

/* Create an instance. Returns NULL with err set on a bad config or when out
 * of memory. */
static void *to_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    to_state *s;
    int min_officers;
    int64_t cooldown;

    if (to_parse_cfg(cfg, &min_officers, &cooldown, err, errlen) != 0)
        return NULL;
    s = (to_state *)calloc(1, sizeof(*s));
    if (s == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->min_officers = min_officers;
    s->cooldown = cooldown;
    return s;
}

/* Apply a new config. Returns 0, or -1 with err set (nothing changes). */
static int to_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    to_state *s = (to_state *)self;
    int min_officers;
    int64_t cooldown;

    if (to_parse_cfg(cfg, &min_officers, &cooldown, err, errlen) != 0)
        return -1;
    s->min_officers = min_officers;
    s->cooldown = cooldown;
    return 0;
}

/* Check one event; only inspection.filed matters. Returns 0, or -1 when
 * the host could not take the alert. */
static int to_on_event(void *self, const rk_event *ev)
{
    to_state *s = (to_state *)self;
    rk_say t;
    rk_alert a;

    if (ev->type != RK_EV_INSPECTION_FILED ||
        ev->n_officers >= (size_t)s->min_officers)
        return 0;
    rk_say_init(&t, s->api, s->host);
    if (t.en) {
        rk_say_f(&t, "Inspection task %s", ev->task_id ? ev->task_id : "?");
        if (ev->unit_id != NULL) {
            rk_say_f(&t, " of ");
            rk_say_who(&t, "unit", ev->unit_id, 0);
        }
        if (ev->enterprise_id != NULL) {
            rk_say_f(&t, " at ");
            rk_say_who(&t, "enterprise", ev->enterprise_id, 0);
        }
        rk_say_f(&t, " was filed with ");
        rk_say_n(&t, ev->n_officers, "officer", "officers");
        rk_say_f(&t, ", fewer than %d.", s->min_officers);
    } else {
        if (ev->unit_id != NULL)
            rk_say_who(&t, "unit", ev->unit_id, 0);
        rk_say_f(&t, "备案的检查任务%s", ev->task_id ? ev->task_id : "?");
        if (ev->enterprise_id != NULL) {
            rk_say_f(&t, "（");
            rk_say_who(&t, "enterprise", ev->enterprise_id, 0);
            rk_say_f(&t, "）");
        }
        rk_say_f(&t, "只有%zu名执法人员，少于%d名", ev->n_officers, s->min_officers);
    }
    memset(&a, 0, sizeof(a));
    a.rule = "too_few_officers";
    a.severity = RK_SEV_WARNING;
    a.ts = ev->ts;
    a.subject.task_id = ev->task_id;
    a.subject.unit_id = ev->unit_id;
    a.subject.enterprise_id = ev->enterprise_id;
    a.value = (double)ev->n_officers;
    a.threshold = s->min_officers;
    a.summary = rk_say_text(&t);
    a.evidence = &ev->ref;
    a.n_evidence = 1;
    a.cooldown = s->cooldown;
    return s->api->emit(s->host, &a) < 0 ? -1 : 0;
}

static void to_destroy(void *self)
{
    free(self);
}

static const rk_detector_ops to_ops = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "two_officers",
    "example plugin: inspections filed with fewer than two officers",
    to_create,
    to_reconfigure,
    to_on_event,
    NULL,                           /* on_timer */
    NULL,                           /* on_watermark */
    NULL,                           /* snapshot: stateless */
    NULL,                           /* restore */
    to_destroy,
    NULL,                           /* tracked_keys */
};

/* The plugin's one exported symbol (RK_DETECTOR_ENTRY). Defined with a
 * prototype here because no header declares it. */
const rk_detector_ops *rk_detector_entry(void);

const rk_detector_ops *rk_detector_entry(void)
{
    return &to_ops;
}
