/* host.c - the host API detectors call: emit, timer_set, now, log,
 * stream_name, implemented on struct rk_host {engine, detector index}.
 *
 * emit() applies the detector's severity override and the cooldown per
 * (rule, subject), derives the alert id from the alert's content and hands
 * the alert to the engine's output (output.h): the live writer or the
 * replay writer. A notice (status resolved or retracted, ABI minor 2)
 * carries the original alert's content, so it gets the alert's id, and
 * goes to the output's notice writer, past the cooldown. It also owns the cooldowns (a map and a heap by end time
 * per detector) and the per-rule alert counts of the metrics. */
#include "engine_int.h"


/* ===================================================================
 * Host API
 * =================================================================== */

#define HOST(h) ((struct rk_host *)(void *)(h))

static void cooldown_key(const rk_alert *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", a->rule,
             a->subject.unit_id ? a->subject.unit_id : "",
             a->subject.officer_id ? a->subject.officer_id : "",
             a->subject.enterprise_id ? a->subject.enterprise_id : "",
             a->subject.task_id ? a->subject.task_id : "",
             a->subject.case_id ? a->subject.case_id : "",
             a->subject.region ? a->subject.region : "");
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

    if (a->rule == NULL)
        return -1;
    /* A plugin of minor < 2 has no status member: never read it. */
    if (d->ops->abi_minor >= 2 && a->status != RK_ALERT_FIRING) {
        const char *status = a->status == RK_ALERT_RESOLVED ? "resolved" :
                             a->status == RK_ALERT_RETRACTED ? "retracted" : NULL;
        if (status == NULL)
            return -1;
        rk__alert_id(d->alert_name, a, a->trigger_key, id);
        if (e->out->notice(e, id, d->alert_name, a, status, rk__wall_ms()) < 0)
            return -1;
        e->stats.notices_emitted++;
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
    /* alerts.open_ttl: close it then, if still open (a timer of event
     * time, checkpointed with the detectors'). */
    if (a->ts <= INT64_MAX - e->cfg->open_ttl) {
        snprintf(key, sizeof(key), "%s\x1f%s", d->alert_name, id);
        if (rk__clock_timer_add(&e->clock, a->ts + e->cfg->open_ttl, RK__TIMER_OPEN_TTL,
                                key, 0) != 0)
            return -1;
    }
    return 1;
}

void rk__open_ttl_fire(rk__engine *e, int64_t deadline, const char *key)
{
    const char *sep = strchr(key, '\x1f');
    char det[256], reason[256], dur[32];
    rk_alert a;

    if (sep == NULL || (size_t)(sep - key) >= sizeof(det) || strlen(sep + 1) != 32)
        return;
    memcpy(det, key, (size_t)(sep - key));
    det[sep - key] = '\0';
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
    if (e->out->notice(e, sep + 1, det, &a, "closed", rk__wall_ms()) >= 0)
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

static const char *host_language(rk_host *h)
{
    return HOST(h)->eng->cfg->lang_en ? "en" : "zh-CN";
}

static const char *host_stream_name(rk_host *h, unsigned s)
{
    rk__engine *e = HOST(h)->eng;
    return s < RK_STREAM_COUNT ? e->stream_keys[s] : "";
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
    api->keep_firing_for = host_keep_firing_for;
    api->language = host_language;
}
