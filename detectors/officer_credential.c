/* detectors/officer_credential.c - officers without a valid enforcement
 * credential (riskd-detectors(7)).
 *
 * Rule `uncertified`: an inspection.filed (on its planned_at) or a
 * case.opened (on its ts) names an officer who holds no credential valid
 * on that calendar day (clock.timezone) in the `credentials` list: not
 * listed, or outside valid_from..valid_until (inclusive; an empty
 * valid_until never expires). Checked only while a credentials list is
 * loaded; loading or changing a list is not retroactive. One alert per
 * officer and filing or case (trigger_key: the task_id or case_id), no
 * cooldown. value is 1 and threshold 1: the one filing or case the
 * officer took part in without a valid credential, as the sentence says.
 *
 * Amendments (RK_EVF_AMENDED, a filing rescheduled or with other
 * officers) are checked again with their new values; duplicates never
 * reach a detector.
 *
 * Memory: none. The detector keeps no state, so it has no snapshot.
 * Config: `cooldown` only (default 0: per filing or case). */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

typedef struct oc_self {
    const rk_host_api *api;
    rk_host *host;
    int64_t cooldown;
} oc_self;

static const char *const oc_keys[] = {"cooldown", NULL};

/* The uncertified sentence: officer (unit before it), the filing or
 * case, the day. */
static void oc_summary_uncertified(rk_say *t, const rk_event *ev, const char *officer,
                                   int64_t day_ms)
{
    char day[48];
    rk__format_rfc3339(day_ms, 8 * 3600, day, sizeof(day));
    day[10] = '\0';                 /* YYYY-MM-DD */
    rk_say_officer(t, ev->unit_id, officer, 1);
    if (t->en) {
        rk_say_f(t, " held no valid enforcement credential on %s, ", day);
        if (ev->type == RK_EV_INSPECTION_FILED)
            rk_say_f(t, "the planned date of inspection task %s.", ev->task_id);
        else
            rk_say_f(t, "the day case %s was opened.", ev->case_id);
    } else if (ev->type == RK_EV_INSPECTION_FILED) {
        rk_say_f(t, "在检查任务%s的计划日期%s未持有效执法证件", ev->task_id, day);
    } else {
        rk_say_f(t, "在案件%s立案当日%s未持有效执法证件", ev->case_id, day);
    }
}

static int oc_on_event(void *self, const rk_event *ev)
{
    oc_self *s = self;
    rk_say t;
    int64_t when;
    size_t i, j;
    int rc = 0;

    if (ev->type == RK_EV_INSPECTION_FILED)
        when = ev->planned_at;
    else if (ev->type == RK_EV_CASE_OPENED)
        when = ev->ts;
    else
        return 0;
    if (!pr_has_lists(s->api) || ev->unit_id == NULL)
        return 0;
    for (i = 0; i < ev->n_officers; i++) {
        const char *o = ev->officers[i];
        int dup = 0, v;
        rk_alert a;
        for (j = 0; j < i; j++)
            if (strcmp(ev->officers[j], o) == 0)
                dup = 1;
        if (dup)
            continue;
        v = s->api->credential_valid(s->host, o, when);
        if (v != RK_CREDENTIAL_INVALID)
            continue;               /* valid, or no list loaded */
        rk_say_init(&t, s->api, s->host);
        oc_summary_uncertified(&t, ev, o, when);
        memset(&a, 0, sizeof(a));
        a.rule = "uncertified";
        a.severity = RK_SEV_CRITICAL;
        a.ts = ev->ts;
        a.subject.officer_id = o;
        a.subject.unit_id = ev->unit_id;
        if (ev->type == RK_EV_INSPECTION_FILED)
            a.subject.task_id = ev->task_id;
        else
            a.subject.case_id = ev->case_id;
        a.trigger_key = ev->type == RK_EV_INSPECTION_FILED ? ev->task_id : ev->case_id;
        a.value = 1;                /* the filing or case by this officer */
        a.threshold = 1;
        a.summary = rk_say_text(&t);
        a.evidence = &ev->ref;
        a.n_evidence = 1;
        a.cooldown = s->cooldown;
        if (s->api->emit(s->host, &a) < 0)
            rc = -1;
    }
    return rc;
}

static void *oc_create(const rk_host_api *api, rk_host *host, const json_t *cfg,
                       char *err, size_t errlen)
{
    oc_self *s;
    int64_t cd;
    if (rk_kit_cfg_known_keys(cfg, "", oc_keys, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "cooldown", 0, 0, &cd, err, errlen) != 0)
        return NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->api = api;
    s->host = host;
    s->cooldown = cd;
    return s;
}

static int oc_reconfigure(void *self, const json_t *cfg, char *err, size_t errlen)
{
    oc_self *s = self;
    int64_t cd;
    if (rk_kit_cfg_known_keys(cfg, "", oc_keys, err, errlen) != 0 ||
        rk_kit_cfg_duration(cfg, "", "cooldown", 0, 0, &cd, err, errlen) != 0)
        return -1;
    s->cooldown = cd;
    return 0;
}

static void oc_destroy(void *self)
{
    free(self);
}

const rk_detector_ops rk__det_officer_credential = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "officer_credential",
    "officers named on a filing or case without a valid enforcement credential",
    oc_create,
    oc_reconfigure,
    oc_on_event,
    NULL,
    NULL,
    NULL,
    NULL,
    oc_destroy,
    NULL,
};
