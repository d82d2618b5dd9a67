/* host.c - the host API detectors call: emit, timer_set, now, log,
 * stream_name, name_of, language and the reference-list lookups
 * (whitelist_allowance, benchmark_range, exempt_kind, credential_valid, on
 * the tables in force, lists.c), implemented on struct rk_host {engine,
 * detector index}.
 *
 * emit() applies the detector's severity override and the cooldown per
 * (rule, subject), derives the alert id from the alert's content and hands
 * the alert to the engine's output (output.h): the live writer or the
 * replay writer. A notice (status resolved or retracted, ABI minor 2)
 * carries the original alert's content, so it gets the alert's id, and
 * goes to the output's notice writer, past the cooldown. It also owns the cooldowns (a map and a heap by end time
 * per detector) and the per-rule alert counts of the metrics. Every alert
 * written is recorded in the engine's open alerts (openstore.c) until its
 * resolved or retracted notice, or its alerts.open_ttl close. */
#include "engine_int.h"


/* ===================================================================
 * Host API
 * =================================================================== */

#define HOST(h) ((struct rk_host *)(void *)(h))

static void cooldown_key(const rk_alert *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", a->rule,
             a->subject.unit_id ? a->subject.unit_id : "",
             a->subject.officer_id ? a->subject.officer_id : "",
             a->subject.enterprise_id ? a->subject.enterprise_id : "",
             a->subject.task_id ? a->subject.task_id : "",
             a->subject.case_id ? a->subject.case_id : "",
             a->subject.region ? a->subject.region : "",
             a->item_code ? a->item_code : "", a->domain ? a->domain : "");
}

cooldowns *rk__det_cooldowns(rk__det *d)
{
    if (d->cooldown == NULL) {
        cooldowns *c = calloc(1, sizeof(*c));
        if (c != NULL) {
            rk_map_init(&c->map);
            rk_heap_init(&c->heap, offsetof(cooldown_entry, heap_pos));
        }
        d->cooldown = c;
    }
    return d->cooldown;
}

/* Set the cooldown of key in cs to until (a new entry, or a later time for
 * an existing one). Returns 0, or -1 when out of memory (cs unchanged). */
int rk__cooldown_set(cooldowns *cs, const char *key, int64_t until)
{
    cooldown_entry *c = rk_map_get(&cs->map, key);
    rk_map_entry *me;
    if (c != NULL) {
        c->until = until;
        rk_heap_update(&cs->heap, c, until);
        return 0;
    }
    c = malloc(sizeof(*c));
    if (c == NULL)
        return -1;
    c->until = until;
    c->heap_pos = RK_HEAP_NONE;
    me = rk_map_put(&cs->map, key, c, NULL);
    if (me == NULL) {
        free(c);
        return -1;
    }
    c->key = me->key;
    if (rk_heap_push(&cs->heap, until, c) != 0) {
        rk_map_del(&cs->map, key);
        free(c);
        return -1;
    }
    return 0;
}

/* Drop the cooldowns of cs that have run out at event time now (until <=
 * now): O(expired x log n). */
void rk__cooldown_expire(cooldowns *cs, int64_t now)
{
    const rk_heap_item *top;
    while ((top = rk_heap_top(&cs->heap)) != NULL && top->key <= now) {
        cooldown_entry *c = top->rec;
        rk_heap_remove(&cs->heap, c);
        rk_map_del(&cs->map, c->key);
        free(c);
    }
}

static const char *const sev_names[] = {"info", "warning", "critical"};

/* Count an alert under "detector rule severity" for the metrics. */
void rk__count_alert(rk__engine *e, const char *det, const char *rule, rk_severity sev)
{
    char key[256];
    uint64_t *n;
    snprintf(key, sizeof(key), "%s %s %s", det, rule, sev_names[sev <= RK_SEV_CRITICAL ? sev : 0]);
    n = rk_map_get(&e->alert_counts, key);
    if (n == NULL) {
        n = calloc(1, sizeof(*n));
        if (n == NULL || rk_map_put(&e->alert_counts, key, n, NULL) == NULL) {
            free(n);
            return;
        }
    }
    (*n)++;
}

static int host_emit(rk_host *h, const rk_alert *a)
{
    rk__engine *e = HOST(h)->eng;
    rk__det *d = e->reg.dets[HOST(h)->idx];
    rk_severity sev = d->severity >= 0 ? (rk_severity)d->severity : a->severity;
    char id[33], legacy[33], key[1024];
    int64_t now_wall;
    rk_alert old;
    int ri, rule;
    bool primed = e->open.primed && e->open.pdet == HOST(h)->idx;

    e->open.primed = false;         /* one emit uses it up */
    e->open.last = UINT32_MAX;      /* none raised yet (hostopen.c's file) */
    if (a->rule == NULL)
        return -1;
    if (d->ops->abi_minor < 4) {
        /* Read no member the plugin's minor does not have: a copy with the
         * ones it has, the later ones zero (status FIRING, no item_code). */
        size_t n = d->ops->abi_minor >= 3 ? offsetof(rk_alert, status)
                 : d->ops->abi_minor >= 1 ? offsetof(rk_alert, item_code)
                                          : offsetof(rk_alert, trigger_key);
        memset(&old, 0, sizeof(old));
        memcpy(&old, a, n);
        a = &old;
    }
    if (!rk__rule_runs(e, d, a))
        return 0;                   /* the other pipeline's rule (cross.c) */
    if (a->status != RK_ALERT_FIRING) {
        const char *status = a->status == RK_ALERT_RESOLVED ? "resolved" :
                             a->status == RK_ALERT_RETRACTED ? "retracted" : NULL;
        if (status == NULL)
            return -1;
        if (primed && e->open.pts == a->ts)
            rk__alert_id_unpack(e->open.pid, id);   /* the open alert's own */
        else
            rk__alert_id(d->alert_name, a, a->trigger_key, id);
        if (e->out->notice(e, id, d->alert_name, a, status, rk__wall_ms()) < 0)
            return -1;
        e->stats.notices_emitted++;
        /* It is no longer open: its record leaves the store. */
        if ((ri = rk__ostore_find(&e->open, a->ts, (uint32_t)HOST(h)->idx, id)) >= 0)
            rk__ostore_remove(&e->open, (uint32_t)ri);
        /* A retracted unfiled alert never held: it leaves `unfiled`. */
        if (a->status == RK_ALERT_RETRACTED && e->ind != NULL &&
            rk__ind_is_unfiled_rule(d->alert_name, a->rule))
            rk__ind_unfiled_retract(e->ind, a->ts, a->subject.unit_id);
        return 1;
    }
    if (a->cooldown > 0) {
        cooldowns *cs = rk__det_cooldowns(d);
        const cooldown_entry *c;
        if (cs == NULL)
            return -1;
        cooldown_key(a, key, sizeof(key));
        c = rk_map_get(&cs->map, key);
        if (c != NULL && a->ts < c->until) {
            e->stats.held_back++;
            return 0;
        }
        if (rk__cooldown_set(cs, key, a->ts + a->cooldown) != 0)
            return -1;
    }
    rk__alert_id(d->alert_name, a, d->ops->abi_minor >= 1 ? a->trigger_key : NULL, id);
    if (e->legacy_ids)
        rk__alert_id_v1(d->alert_name, a, legacy);
    now_wall = rk__wall_ms();
    if (e->out->alert(e, id, e->legacy_ids ? legacy : NULL, d->alert_name, a, sev,
                      now_wall) < 0)
        return -1;
    e->stats.alerts_emitted++;
    rk__count_alert(e, d->alert_name, a->rule, sev);
    if (e->ind != NULL && rk__ind_is_unfiled_rule(d->alert_name, a->rule))
        rk__ind_unfiled(e->ind, a->ts, a->subject.unit_id);
    /* Open until resolved, retracted or closed (alerts.open_ttl after its
     * ts at the latest): a record in the store, checkpointed with the
     * detectors' state. */
    if ((rule = rk__ostore_rule(&e->open, a->rule)) < 0 ||
        rk__ostore_add(&e->open, id, a->ts, (uint32_t)HOST(h)->idx, (uint32_t)rule) < 0)
        return -1;
    return 1;
}

void rk__open_ttl_fire(rk__engine *e, int64_t deadline, const char *key)
{
    const char *sep = strchr(key, '\x1f');
    char det[256];

    if (sep == NULL || (size_t)(sep - key) >= sizeof(det) || strlen(sep + 1) != 32)
        return;
    memcpy(det, key, (size_t)(sep - key));
    det[sep - key] = '\0';
    rk__open_ttl_close(e, deadline, det, sep + 1);
}

void rk__open_ttl_close(rk__engine *e, int64_t deadline, const char *det, const char *id)
{
    char reason[256], dur[32];
    rk_alert a;

    rk_kit_format_duration(e->cfg->open_ttl, dur, sizeof(dur));
    if (e->cfg->lang_en)
        snprintf(reason, sizeof(reason), "The alert stayed open longer than %s "
                 "(alerts.open_ttl) and was closed.", dur);
    else
        snprintf(reason, sizeof(reason), "该告警保持未处理状态已超过%s（alerts.open_ttl），"
                 "已自动关闭。", dur);
    memset(&a, 0, sizeof(a));
    a.rule = "";
    a.status = RK_ALERT_FIRING;     /* unused: the writer gets "closed" */
    a.reason = reason;
    a.change_ts = deadline;
    if (e->out->notice(e, id, det, &a, "closed", rk__wall_ms()) >= 0)
        e->stats.notices_emitted++;
}

static int host_timer_set(rk_host *h, int64_t deadline, const char *key, uint64_t arg)
{
    rk__engine *e = HOST(h)->eng;
    return rk__clock_timer_add(&e->clock, deadline, HOST(h)->idx, key, arg);
}

static int64_t host_now(rk_host *h)
{
    return rk__clock_now(&HOST(h)->eng->clock);
}

static void host_log(rk_host *h, rk_log_level level, const char *fmt, ...)
{
    rk__engine *e = HOST(h)->eng;
    char prefix[96];
    va_list ap;
    snprintf(prefix, sizeof(prefix), "detector %s: ", e->reg.dets[HOST(h)->idx]->name);
    va_start(ap, fmt);
    rk__vlog(level, prefix, fmt, ap);
    va_end(ap);
}

static int64_t host_keep_firing_for(rk_host *h)
{
    return HOST(h)->eng->cfg->keep_firing_for;
}

static const char *host_stream_name(rk_host *h, unsigned s)
{
    rk__engine *e = HOST(h)->eng;
    return s < e->nstreams ? e->stream_keys[s] : "";
}

/* The names list in force now (lists_sync.c installs a new one between
 * callbacks), so a newly loaded list names the next alert. */
static const char *host_name_of(rk_host *h, const char *kind, const char *id)
{
    (void)h;
    return rk__lists_name(rk__lists_in_force(RK_LIST_NAMES), kind, id);
}

/* alerts.language of the configuration in force (a reload swaps e->cfg). */
static const char *host_language(rk_host *h)
{
    const rk__config *cfg = HOST(h)->eng->cfg;
    return cfg != NULL && cfg->alerts_language != NULL ? cfg->alerts_language : "zh-CN";
}

/* The reference lists (ABI minor 3): thin wrappers over the tables in
 * force (lists.c), which are only replaced on the loop between callbacks. */
static int host_whitelist_allowance(rk_host *h, const char *enterprise_id,
                                    long long *allowance)
{
    (void)h;
    return rk__lists_allowance(rk__lists_in_force(RK_LIST_WHITELIST), enterprise_id,
                               allowance) ? 1 : 0;
}

static int host_benchmark_range(rk_host *h, const char *item_code, const char *level,
                                double *min, double *max)
{
    (void)h;
    return rk__lists_benchmark(rk__lists_in_force(RK_LIST_BENCHMARKS), item_code, level,
                               min, max) ? 1 : 0;
}

static int host_exempt_kind(rk_host *h, const char *item_code)
{
    int k;
    (void)h;
    k = rk__lists_exempt(rk__lists_in_force(RK_LIST_EXEMPT), item_code);
    return k == RK_EXEMPT_NO_PENALTY ? RK_EXEMPT_KIND_NO_PENALTY
         : k == RK_EXEMPT_LIGHTER ? RK_EXEMPT_KIND_LIGHTER : RK_EXEMPT_KIND_NONE;
}

static int host_credential_valid(rk_host *h, const char *officer_id, int64_t ts)
{
    const rk__list *l = rk__lists_in_force(RK_LIST_CREDENTIALS);
    if (l == NULL)
        return RK_CREDENTIAL_NO_LIST;
    return rk__lists_credential_valid(l, officer_id,
                                      rk__lists_day(ts, HOST(h)->eng->cfg->tz_offset_s))
           ? RK_CREDENTIAL_VALID : RK_CREDENTIAL_INVALID;
}

/* clock.timezone of the configuration in force (ABI minor 5). */
static int host_tz_offset(rk_host *h)
{
    const rk__config *cfg = HOST(h)->eng->cfg;
    return cfg != NULL ? cfg->tz_offset_s : 8 * 3600;
}

void rk__free_cooldowns(rk__det *d)
{
    cooldowns *cs = d->cooldown;
    if (cs) {
        rk_map_clear(&cs->map, free);
        rk_heap_free(&cs->heap);
        free(cs);
        d->cooldown = NULL;
    }
}

void rk__on_det_removed(rk__engine *e, uint32_t idx)
{
    rk__free_cooldowns(e->reg.dets[idx]);
}

/* ===================================================================
 * Public
 * =================================================================== */

void rk__init_api(rk_host_api *api)
{
    memset(api, 0, sizeof(*api));
    api->abi_major = RK_ABI_MAJOR;
    api->abi_minor = RK_ABI_MINOR;
    api->emit = host_emit;
    api->timer_set = host_timer_set;
    api->now = host_now;
    api->log = host_log;
    api->stream_name = host_stream_name;
    api->name_of = host_name_of;
    api->language = host_language;
    api->whitelist_allowance = host_whitelist_allowance;
    api->benchmark_range = host_benchmark_range;
    api->exempt_kind = host_exempt_kind;
    api->credential_valid = host_credential_valid;
    api->keep_firing_for = host_keep_firing_for;
    api->tz_offset = host_tz_offset;
}
