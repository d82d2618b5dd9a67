/* detectors/officer_credential.c - officers without a valid enforcement
 * credential (riskd-detectors(7)).
 *
 * Rule `uncertified`: an inspection.filed (on its planned_at) or a
 * case.opened (on its ts) names an officer who holds no credential valid
 * on that calendar day (clock.timezone, from the host's tz_offset; the
 * summary writes the day in it too) in the `credentials` list: not
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
 * Lifecycle (practice.h, detectors/lifecycle.c): never resolved. The
 * alerts of a filing are filed with the daemon's open alerts under the
 * task_id (extra: "officer PR_SEP unit") until alerts.open_ttl closes them
 * (a set restored from an older snapshot keeps its own for PR_OPEN_KEEP,
 * 30d; a timer "x:<task>" forgets them): an
 * amendment of the filing that no longer names the officer, or whose new
 * planned_at falls on a day the officer's credential is valid (the list
 * in force when the amendment arrives), retracts the officer's alert; an
 * amendment under which it still holds keeps it and raises no second
 * one. Opened cases are never amended, so their alerts are not kept.
 *
 * Memory: the daemon's record of each open alert (riskd-detectors(7),
 * LIFECYCLE); "officer PR_SEP unit" interned there once for all the open
 * alerts naming that pair.
 * Config: `cooldown` only (default 0: per filing or case).
 *
 * Snapshot (version 1): u32 version, then the open alerts (rk__open_put). */
#include "riskd/kit.h"
#include "internal.h"
#include "practice.h"

#define OC_SNAP_VERSION 1u

typedef struct oc_self {
    const rk_host_api *api;
    rk_host *host;
    int64_t cooldown;
    rk__openset open;               /* task_id -> open alerts of its filing,
                                       extra "officer PR_SEP unit" */
} oc_self;

static const char *const oc_keys[] = {"cooldown", NULL};

/* clock.timezone from the host (ABI minor 5), else +08:00. */
static int oc_tz(const oc_self *s)
{
    if (s->api->abi_minor >= 5 && s->api->tz_offset != NULL)
        return s->api->tz_offset(s->host);
    return 8 * 3600;
}

/* The uncertified sentence: officer (unit before it), the filing or
 * case, the day (in clock.timezone, tz seconds east of UTC). */
static void oc_summary_uncertified(rk_say *t, const rk_event *ev, const char *officer,
                                   int64_t day_ms, int tz)
{
    char day[48];
    rk__format_rfc3339(day_ms, tz, day, sizeof(day));
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

static void oc_fill(rk_alert *a, const char *key, const char *extra, char *scratch, size_t n)
{
    pr_split(extra, scratch, n, &a->subject.officer_id, &a->subject.unit_id);
    a->subject.task_id = key;
    a->trigger_key = key;
}

/* The amended filing and its date, for oc_no_longer. */
struct oc_check {
    oc_self *s;
    const rk_event *ev;
    int64_t when;
};

/* An open alert of the amended filing c->ev that no longer holds: its
 * officer is no longer named, or is credentialed on the new day. */
static int oc_no_longer(void *ctx, const rk__open_alert *oa)
{
    const struct oc_check *c = ctx;
    const char *o = rk__open_field(&c->s->open, oa, 0);
    size_t i;
    int named = 0;
    if (o == NULL)
        return 0;
    for (i = 0; i < c->ev->n_officers && !named; i++)
        named = strcmp(c->ev->officers[i], o) == 0;
    return !named || c->s->api->credential_valid(c->s->host, o, c->when) == RK_CREDENTIAL_VALID;
}

/* The alerts of one officer of the amended filing that no longer hold. */
struct oc_one {
    struct oc_check c;
    const char *officer;
};

static int oc_no_longer_one(void *ctx, const rk__open_alert *oa)
{
    struct oc_one *one = ctx;
    const char *o = rk__open_field(&one->c.s->open, oa, 0);
    return o != NULL && strcmp(o, one->officer) == 0 && oc_no_longer(&one->c, oa);
}

/* Retract the open alerts of the amended filing c->ev that no longer
 * hold, officer by officer: each reason names the officer with the unit
 * before it and the task, as the summary did. 0 or -1. */
static int oc_retract(oc_self *s, struct oc_check *c)
{
    const rk__openrec *r = rk__open_get(&s->open, c->ev->task_id);
    char **who = NULL;              /* officer, unit pairs to retract */
    size_t n = 0, i, j;
    int rc = 0;

    for (i = 0; r != NULL && i < r->n; i++) {
        const char *o = rk__open_field(&s->open, &r->a[i], 0);
        const char *u = rk__open_field(&s->open, &r->a[i], 1);
        char **nw;
        int seen = 0;
        if (o == NULL || !oc_no_longer(c, &r->a[i]))
            continue;
        for (j = 0; j < n && !seen; j += 2)
            seen = strcmp(who[j], o) == 0;
        if (seen)
            continue;
        if ((nw = realloc(who, (n + 2) * sizeof(*who))) == NULL) {
            rc = -1;
            break;
        }
        who = nw;
        who[n] = strdup(o);
        who[n + 1] = u != NULL ? strdup(u) : NULL;
        if (who[n] == NULL || (u != NULL && who[n + 1] == NULL)) {
            free(who[n]);
            free(who[n + 1]);
            rc = -1;
            break;
        }
        n += 2;
    }
    for (j = 0; j < n; j += 2) {
        struct oc_one one = {*c, who[j]};
        rk_say t;
        rk_say_init(&t, s->api, s->host);
        if (t.en) {
            rk_say_f(&t, "The amended filing of inspection task %s shows ", c->ev->task_id);
            rk_say_officer(&t, who[j + 1], who[j], 0);
            rk_say_f(&t, " held a valid credential on its planned date or did not take part.");
        } else {
            rk_say_f(&t, "更正后的检查任务%s备案表明，", c->ev->task_id);
            rk_say_officer(&t, who[j + 1], who[j], 0);
            rk_say_f(&t, "在计划日期持有有效执法证件或未参与检查。");
        }
        if (pr_notify(s->api, s->host, &s->open, c->ev->task_id, "uncertified", oc_fill,
                      RK_ALERT_RETRACTED, rk_say_text(&t), c->ev->ts, &c->ev->ref, 1,
                      oc_no_longer_one, &one) != 0)
            rc = -1;
    }
    for (j = 0; j < n; j++)
        free(who[j]);
    free(who);
    return rc;
}

/* Does task have an open alert for officer o? */
static int oc_open_for(const oc_self *s, const char *task, const char *o)
{
    const rk__openrec *r = rk__open_get(&s->open, task);
    uint32_t i;
    for (i = 0; r != NULL && i < r->n; i++) {
        const char *x = rk__open_field(&s->open, &r->a[i], 0);
        if (x != NULL && rk__open_field(&s->open, &r->a[i], 1) != NULL && strcmp(x, o) == 0)
            return 1;
    }
    return 0;
}

static int oc_on_event(void *self, const rk_event *ev)
{
    oc_self *s = self;
    rk_say t;
    int64_t when;
    size_t i, j;
    int rc = 0, filing = ev->type == RK_EV_INSPECTION_FILED;

    if (filing)
        when = ev->planned_at;
    else if (ev->type == RK_EV_CASE_OPENED)
        when = ev->ts;
    else
        return 0;
    if (!pr_has_lists(s->api))
        return 0;
    /* An amendment is judged only while a credentials list is loaded
     * (any id tells whether one is). */
    if (filing && (ev->flags & RK_EVF_AMENDED) && ev->task_id != NULL &&
        rk__open_get(&s->open, ev->task_id) != NULL &&
        s->api->credential_valid(s->host, "", when) != RK_CREDENTIAL_NO_LIST) {
        struct oc_check c = {s, ev, when};
        if (oc_retract(s, &c) != 0)
            rc = -1;
    }
    if (ev->unit_id == NULL)
        return rc;
    for (i = 0; i < ev->n_officers; i++) {
        const char *o = ev->officers[i];
        int dup = 0, v, e;
        char *extra;
        rk_alert a;
        for (j = 0; j < i; j++)
            if (strcmp(ev->officers[j], o) == 0)
                dup = 1;
        if (dup || (filing && ev->task_id != NULL && oc_open_for(s, ev->task_id, o)))
            continue;               /* the filing's alert for o still stands */
        v = s->api->credential_valid(s->host, o, when);
        if (v != RK_CREDENTIAL_INVALID)
            continue;               /* valid, or no list loaded */
        rk_say_init(&t, s->api, s->host);
        oc_summary_uncertified(&t, ev, o, when, oc_tz(s));
        memset(&a, 0, sizeof(a));
        a.rule = "uncertified";
        a.severity = RK_SEV_CRITICAL;
        a.ts = ev->ts;
        a.subject.officer_id = o;
        a.subject.unit_id = ev->unit_id;
        if (filing)
            a.subject.task_id = ev->task_id;
        else
            a.subject.case_id = ev->case_id;
        a.trigger_key = filing ? ev->task_id : ev->case_id;
        a.value = 1;                /* the filing or case by this officer */
        a.threshold = 1;
        a.summary = rk_say_text(&t);
        a.evidence = &ev->ref;
        a.n_evidence = 1;
        a.cooldown = s->cooldown;
        e = s->api->emit(s->host, &a);
        if (e < 0)
            rc = -1;
        if (e != 1 || !filing || ev->task_id == NULL)
            continue;
        if ((extra = pr_join(o, ev->unit_id)) == NULL ||
            rk__open_add(&s->open, ev->task_id, ev->ts, extra) != 0 ||
            pr_expire_timer(s->api, s->host, ev->task_id, ev->ts) != 0)
            rc = -1;
        free(extra);
    }
    return rc;
}

/* "x:<task>": forget the filing's alerts PR_OPEN_KEEP old. */
static int oc_on_timer(void *self, int64_t deadline, const char *key, uint64_t arg)
{
    oc_self *s = self;
    (void)arg;
    if (key[0] == 'x' && key[1] == ':')
        pr_open_expire(&s->open, key + 2, deadline);
    return 0;
}

static int oc_snapshot(void *self, rk_buf *out)
{
    oc_self *s = self;
    rk_buf_put_u32(out, OC_SNAP_VERSION);
    rk__open_put(out, &s->open);
    return out->oom ? -1 : 0;
}

static int oc_restore(void *self, const void *data, size_t len, char *err, size_t errlen)
{
    oc_self *s = self;
    rk_rd r;
    rk__open_clear(&s->open);
    rk_rd_init(&r, data, len);
    if (pr_read_version(&r, OC_SNAP_VERSION, err, errlen) != 0)
        return -1;
    if (rk__open_read(&r, &s->open) != 0 || r.p != r.end) {
        rk__open_clear(&s->open);
        rk_kit_errf(err, errlen, "snapshot: truncated or corrupt");
        return -1;
    }
    return 0;
}

static size_t oc_tracked_keys(void *self)
{
    return ((const oc_self *)self)->open.map.count;
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
    rk__open_init(&s->open);
    rk__open_bind(&s->open, host, "uncertified");
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
    oc_self *s = self;
    if (s == NULL)
        return;
    rk__open_clear(&s->open);
    free(s);
}

const rk_detector_ops rk__det_officer_credential = {
    RK_ABI_MAJOR,
    RK_ABI_MINOR,
    "officer_credential",
    "officers named on a filing or case without a valid enforcement credential",
    oc_create,
    oc_reconfigure,
    oc_on_event,
    oc_on_timer,
    NULL,
    oc_snapshot,
    oc_restore,
    oc_destroy,
    oc_tracked_keys,
};
