/* tests/lib/fakehost.c - see fakehost.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakehost.h"
#include "riskd/kit.h"
#include "internal.h"

#define FH(h) ((rk_fakehost *)(void *)(h))

static const char *sev_name(rk_severity s)
{
    return s == RK_SEV_CRITICAL ? "critical" : s == RK_SEV_WARNING ? "warning" : "info";
}

static json_t *subject_json(const rk_alert *a)
{
    const rk_subject *s = &a->subject;
    json_t *o = json_object();
#define F(name) if (s->name) json_object_set_new(o, #name, json_string(s->name));
    F(unit_id) F(officer_id) F(enterprise_id) F(task_id) F(case_id) F(region)
#undef F
    if (a->item_code) json_object_set_new(o, "item_code", json_string(a->item_code));
    if (a->domain) json_object_set_new(o, "domain", json_string(a->domain));
    return o;
}

static int fh_emit(rk_host *h, const rk_alert *a)
{
    rk_fakehost *fh = FH(h);
    json_t *subj = subject_json(a), *o, *ev;
    char *skey = json_dumps(subj, JSON_SORT_KEYS | JSON_COMPACT);
    char ck[1024];
    size_t i, first;
    json_t *last;

    snprintf(ck, sizeof(ck), "%s|%s", a->rule, skey);
    free(skey);
    last = json_object_get(fh->cooldowns, ck);
    if (a->status != RK_ALERT_FIRING) {
        rk__ostore *st = fh->ostore;
        char id[33];
        json_t *at;
        /* Its id: the open alert's it was primed with, as host_emit; its
         * subject that alert's, as the daemon's notice takes it. */
        if (st->primed && st->pts == a->ts)
            rk__alert_id_unpack(st->pid, id);
        else
            rk__alert_id(fh->ops->name, a, a->trigger_key, id);
        st->primed = false;
        if ((at = json_object_get(fh->open_alerts, id)) != NULL) {
            json_t *al = json_array_get(fh->alerts, (size_t)json_integer_value(at));
            json_decref(subj);
            subj = json_deep_copy(json_object_get(al, "subject"));
        }
        /* A notice: past the cooldown, recorded apart. */
        json_array_append_new(fh->notices, json_pack(
            "{s:s, s:s, s:I, s:o, s:s, s:I, s:i}", "rule", a->rule,
            "status", a->status == RK_ALERT_RESOLVED ? "resolved" : "retracted",
            "ts", (json_int_t)a->ts, "subject", subj, "reason", a->reason ? a->reason : "",
            "change_ts", (json_int_t)a->change_ts, "n_evidence", (int)a->n_evidence));
        json_object_set_new(json_array_get(fh->notices, json_array_size(fh->notices) - 1),
                            "trigger_key", a->trigger_key ? json_string(a->trigger_key)
                                                          : json_null());
        json_object_set_new(json_array_get(fh->notices, json_array_size(fh->notices) - 1),
                            "id", json_string(id));
        {                           /* no longer open (found by id, as host_emit) */
            int slot;
            if ((slot = rk__ostore_find(st, a->ts, 0, id)) >= 0) {
                rk__ostore_remove(st, (uint32_t)slot);
                json_object_del(fh->open_alerts, id);
            }
        }
        return 1;
    }
    ((rk__ostore *)fh->ostore)->last = UINT32_MAX;     /* none raised yet */
    ((rk__ostore *)fh->ostore)->primed = false;
    if (a->cooldown > 0 && last != NULL &&
        a->ts < json_integer_value(last) + a->cooldown) {
        fh->held_back++;
        json_decref(subj);
        return 0;
    }
    if (a->cooldown > 0)
        json_object_set_new(fh->cooldowns, ck, json_integer(a->ts));
    ev = json_array();
    first = a->n_evidence > RK_MAX_EVIDENCE ? a->n_evidence - RK_MAX_EVIDENCE : 0;
    for (i = first; i < a->n_evidence; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%u/%llu-%u", a->evidence[i].stream,
                 (unsigned long long)a->evidence[i].ms, a->evidence[i].seq);
        json_array_append_new(ev, json_string(buf));
    }
    o = json_pack("{s:s, s:s, s:I, s:o, s:f, s:f, s:s, s:o, s:I}",
                  "rule", a->rule, "severity", sev_name(a->severity),
                  "ts", (json_int_t)a->ts, "subject", subj,
                  "value", a->value, "threshold", a->threshold,
                  "summary", a->summary ? a->summary : "",
                  "evidence", ev, "cooldown", (json_int_t)a->cooldown);
    json_array_append_new(fh->alerts, o);
    /* open, as the daemon records it (its id, its ts; rk__open_ops.file) */
    {
        rk__ostore *st = fh->ostore;
        char id[33];
        int rule = rk__ostore_rule(st, a->rule);
        rk__alert_id(fh->ops->name, a, a->trigger_key, id);
        if (rule < 0 || rk__ostore_add(st, id, a->ts, 0, (uint32_t)rule) < 0)
            return -1;
        json_object_set_new(fh->open_alerts, id,
                            json_integer((json_int_t)json_array_size(fh->alerts) - 1));
        json_object_set_new(o, "id", json_string(id));
    }
    return 1;
}

/* rk__open_ops, as hostopen.c does them (the store's openkeys.c); a
 * notice primed with an open alert's id is recorded by fh_emit under that
 * id, with the subject of its alert. */
static int fh_file(rk_host *h, const char *rule, const char *key, int64_t resolve_at,
                   const char *unit)
{
    return rk__ostore_file_last(FH(h)->ostore, 0, rule, key, resolve_at, unit);
}

static int fh_alerts(rk_host *h, const char *rule, const char *key, rk__open_seen *out,
                     size_t max)
{
    return rk__ostore_key_alerts(FH(h)->ostore, 0, rule, key, out, max);
}

static int fh_set_resolve(rk_host *h, const char *rule, const char *key, int64_t resolve_at)
{
    return rk__ostore_key_resolve(FH(h)->ostore, 0, rule, key, resolve_at);
}

/* A forgotten alert is no longer open here either. */
static void fh_gone(const rk__oa *r, void *ud)
{
    char id[33];
    rk__alert_id_unpack(r->id, id);
    json_object_del(((rk_fakehost *)ud)->open_alerts, id);
}

static int fh_forget(rk_host *h, const char *rule, const char *key, int64_t ts_from,
                     int64_t ts_to, const unsigned char *pid)
{
    return rk__ostore_key_forget(FH(h)->ostore, 0, rule, key, ts_from, ts_to, pid, fh_gone,
                                 FH(h));
}

static int fh_let_go(rk_host *h, const char *rule, const char *key, int64_t ts_from,
                     int64_t ts_to)
{
    return rk__ostore_key_unfile(FH(h)->ostore, 0, rule, key, ts_from, ts_to);
}

static void fh_prime(rk_host *h, const unsigned char *id, int64_t ts)
{
    rk__ostore *st = FH(h)->ostore;
    st->primed = true;
    st->pts = ts;
    memcpy(st->pid, id, sizeof(st->pid));
}

static const rk__open_ops fh_open_ops = {fh_file, fh_alerts, fh_set_resolve,
                                         fh_forget, fh_let_go, fh_prime};

static int fh_timer_set(rk_host *h, int64_t deadline, const char *key, uint64_t arg)
{
    rk_fakehost *fh = FH(h);
    size_t i;
    if (fh->ntimers == fh->cap) {
        size_t ncap = fh->cap ? fh->cap * 2 : 16;
        rk_fh_timer *t = realloc(fh->timers, ncap * sizeof(*t));
        if (t == NULL) return -1;
        fh->timers = t;
        fh->cap = ncap;
    }
    /* keep sorted by (deadline, seq): insert after equal deadlines */
    i = fh->ntimers;
    while (i > 0 && fh->timers[i - 1].deadline > deadline) {
        fh->timers[i] = fh->timers[i - 1];
        i--;
    }
    fh->timers[i].deadline = deadline;
    fh->timers[i].seq = fh->seq++;
    fh->timers[i].key = strdup(key ? key : "");
    fh->timers[i].arg = arg;
    fh->ntimers++;
    return 0;
}

static int64_t fh_now(rk_host *h) { return FH(h)->now; }

static void fh_log(rk_host *h, rk_log_level level, const char *fmt, ...)
{
    (void)h; (void)level; (void)fmt;
}

static int64_t fh_keep_firing_for(rk_host *h) { return FH(h)->keep_firing_for; }

static const char *fh_stream_name(rk_host *h, unsigned s)
{
    (void)h;
    return s == RK_STREAM_SCAN ? "enforce:scan" : "enforce:case";
}

static const char *fh_name_of(rk_host *h, const char *kind, const char *id)
{
    char key[1024];
    snprintf(key, sizeof(key), "%s/%s", kind, id);
    return json_string_value(json_object_get(FH(h)->names, key));
}

static const char *fh_language(rk_host *h)
{
    return FH(h)->language;
}

void rk_fh_name(rk_fakehost *fh, const char *kind, const char *id, const char *name)
{
    char key[1024];
    snprintf(key, sizeof(key), "%s/%s", kind, id);
    if (name != NULL)
        json_object_set_new(fh->names, key, json_string(name));
    else
        json_object_del(fh->names, key);
}

void rk_fh_language(rk_fakehost *fh, const char *lang)
{
    snprintf(fh->language, sizeof(fh->language), "%s", lang);
}

static int fh_whitelist_allowance(rk_host *h, const char *enterprise_id,
                                  long long *allowance)
{
    return rk__lists_allowance(FH(h)->lists[RK_LIST_WHITELIST], enterprise_id, allowance);
}

static int fh_benchmark_range(rk_host *h, const char *item_code, const char *level,
                              double *min, double *max)
{
    return rk__lists_benchmark(FH(h)->lists[RK_LIST_BENCHMARKS], item_code, level, min, max);
}

static int fh_exempt_kind(rk_host *h, const char *item_code)
{
    int k = rk__lists_exempt(FH(h)->lists[RK_LIST_EXEMPT], item_code);
    return k == RK_EXEMPT_NO_PENALTY ? RK_EXEMPT_KIND_NO_PENALTY
         : k == RK_EXEMPT_LIGHTER ? RK_EXEMPT_KIND_LIGHTER : RK_EXEMPT_KIND_NONE;
}

static int fh_credential_valid(rk_host *h, const char *officer_id, int64_t ts)
{
    const rk__list *l = FH(h)->lists[RK_LIST_CREDENTIALS];
    if (l == NULL)
        return RK_CREDENTIAL_NO_LIST;
    return rk__lists_credential_valid(l, officer_id, rk__lists_day(ts, FH(h)->tz_offset_s))
           ? RK_CREDENTIAL_VALID : RK_CREDENTIAL_INVALID;
}

static int fh_tz_offset(rk_host *h) { return FH(h)->tz_offset_s; }

int rk_fh_list(rk_fakehost *fh, const char *kind, const char *csv)
{
    int k = rk__lists_kind(kind);
    rk__list *l = NULL;
    char err[256];
    if (k < 0)
        return -1;
    if (csv != NULL && rk__lists_parse_csv((rk__list_kind)k, csv, strlen(csv), &l,
                                           err, sizeof(err)) != 0) {
        fprintf(stderr, "rk_fh_list %s: %s\n", kind, err);
        return -1;
    }
    rk__lists_free(fh->lists[k]);
    fh->lists[k] = l;
    return 0;
}

rk_fakehost *rk_fh_new(const rk_detector_ops *ops, const char *cfg_json,
                       char *err, size_t errlen)
{
    rk_fakehost *fh = calloc(1, sizeof(*fh));
    json_error_t jerr;
    json_t *cfg = json_loads(cfg_json ? cfg_json : "{}", 0, &jerr);
    if (fh == NULL || cfg == NULL) {
        snprintf(err, errlen, "bad test config: %s", jerr.text);
        free(fh);
        json_decref(cfg);
        return NULL;
    }
    fh->open = &fh_open_ops;
    fh->ostore = calloc(1, sizeof(rk__ostore));
    fh->open_alerts = json_object();
    fh->api.abi_major = RK_ABI_MAJOR;
    fh->api.abi_minor = RK_ABI_MINOR;
    fh->api.emit = fh_emit;
    fh->api.timer_set = fh_timer_set;
    fh->api.now = fh_now;
    fh->api.log = fh_log;
    fh->api.stream_name = fh_stream_name;
    fh->api.name_of = fh_name_of;
    fh->api.language = fh_language;
    fh->names = json_object();
    rk_fh_language(fh, "zh-CN");
    fh->api.whitelist_allowance = fh_whitelist_allowance;
    fh->api.benchmark_range = fh_benchmark_range;
    fh->api.exempt_kind = fh_exempt_kind;
    fh->api.credential_valid = fh_credential_valid;
    fh->tz_offset_s = 8 * 3600;
    fh->open_ttl = 30 * RK_DAY;
    fh->api.tz_offset = fh_tz_offset;
    fh->api.keep_firing_for = fh_keep_firing_for;
    fh->keep_firing_for = 3600000;
    fh->notices = json_array();
    fh->ops = ops;
    fh->now = INT64_MIN;
    fh->alerts = json_array();
    fh->cooldowns = json_object();
    fh->self = ops->create(&fh->api, (rk_host *)(void *)fh, cfg, err, errlen);
    json_decref(cfg);
    if (fh->self == NULL || fh->ostore == NULL || fh->open_alerts == NULL) {
        if (fh->self != NULL)
            ops->destroy(fh->self);
        free(fh->ostore);
        json_decref(fh->open_alerts);
        json_decref(fh->names);
        json_decref(fh->notices);
        json_decref(fh->alerts);
        json_decref(fh->cooldowns);
        free(fh);
        return NULL;
    }
    return fh;
}

void rk_fh_free(rk_fakehost *fh)
{
    size_t i;
    if (fh == NULL) return;
    if (fh->self) fh->ops->destroy(fh->self);
    for (i = 0; i < fh->ntimers; i++) free(fh->timers[i].key);
    free(fh->timers);
    json_decref(fh->alerts);
    json_decref(fh->cooldowns);
    json_decref(fh->names);
    for (i = 0; i < sizeof(fh->lists) / sizeof(fh->lists[0]); i++)
        rk__lists_free(fh->lists[i]);
    json_decref(fh->notices);
    if (fh->ostore != NULL)
        rk__ostore_free(fh->ostore);
    free(fh->ostore);
    json_decref(fh->open_alerts);
    free(fh);
}

int rk_fh_notice_count(const rk_fakehost *fh, const char *rule, const char *status)
{
    size_t i;
    json_t *n;
    int c = 0;
    json_array_foreach(fh->notices, i, n) {
        if (rule != NULL && rule[0] != '\0' &&
            strcmp(json_string_value(json_object_get(n, "rule")), rule) != 0)
            continue;
        if (status != NULL && strcmp(json_string_value(json_object_get(n, "status")), status) != 0)
            continue;
        c++;
    }
    return c;
}

json_t *rk_fh_notice(const rk_fakehost *fh, size_t i)
{
    return json_array_get(fh->notices, i);
}

void rk_fh_advance(rk_fakehost *fh, int64_t now)
{
    if (now <= fh->now)
        return;
    fh->now = now;
    while (fh->ntimers > 0 && fh->timers[0].deadline < now) {
        rk_fh_timer t = fh->timers[0];
        memmove(fh->timers, fh->timers + 1, (fh->ntimers - 1) * sizeof(*fh->timers));
        fh->ntimers--;
        if (fh->ops->on_timer)
            fh->ops->on_timer(fh->self, t.deadline, t.key, t.arg);
        free(t.key);
    }
    {                               /* alerts.open_ttl, after the timers (apply.c) */
        rk__oa oa;
        while (rk__ostore_pop_due(fh->ostore, now, fh->open_ttl, &oa)) {
            char id[33];
            rk__alert_id_unpack(oa.id, id);
            json_object_del(fh->open_alerts, id);
            fh->closed++;
        }
    }
    if (fh->ops->on_watermark)
        fh->ops->on_watermark(fh->self, now);
}

int rk_fh_event(rk_fakehost *fh, const rk_event *ev)
{
    rk_fh_advance(fh, ev->ts);
    return fh->ops->on_event(fh->self, ev);
}

int rk_fh_count(const rk_fakehost *fh, const char *rule)
{
    size_t i;
    int n = 0;
    for (i = 0; i < json_array_size(fh->alerts); i++) {
        const char *r = json_string_value(json_object_get(json_array_get(fh->alerts, i), "rule"));
        if (rule == NULL || rule[0] == '\0' || (r && strcmp(r, rule) == 0))
            n++;
    }
    return n;
}

json_t *rk_fh_alert(const rk_fakehost *fh, size_t i)
{
    return json_array_get(fh->alerts, i);
}

int rk_fh_roundtrip(rk_fakehost *fh, const char *cfg_json)
{
    rk_buf b = {0};
    char err[256];
    json_t *cfg;
    void *fresh;
    int rc;

    if (fh->ops->snapshot == NULL || fh->ops->restore == NULL)
        return -1;
    if (fh->ops->snapshot(fh->self, &b) != 0 || b.oom) {
        rk_buf_free(&b);
        return -1;
    }
    cfg = json_loads(cfg_json ? cfg_json : "{}", 0, NULL);
    fresh = fh->ops->create(&fh->api, (rk_host *)(void *)fh, cfg, err, sizeof(err));
    json_decref(cfg);
    if (fresh == NULL) {
        rk_buf_free(&b);
        return -1;
    }
    rc = fh->ops->restore(fresh, b.data, b.len, err, sizeof(err));
    rk_buf_free(&b);
    if (rc != 0) {
        fh->ops->destroy(fresh);
        return -1;
    }
    fh->ops->destroy(fh->self);
    fh->self = fresh;
    return 0;
}

rk_entry_ref rk_fh_ref(unsigned stream, uint64_t ms, uint32_t seq)
{
    rk_entry_ref r;
    r.ms = ms;
    r.seq = seq;
    r.stream = stream;
    return r;
}

const char *rk_fh_check_corrupt_restore(rk_fakehost *fh, size_t version_at)
{
    rk_buf b = {0};
    char err[256];
    size_t len, i;
    unsigned char *copy = NULL;
    const char *fail = NULL;

    if (fh->ops->snapshot(fh->self, &b) != 0 || b.len <= 8 || version_at >= b.len) {
        rk_buf_free(&b);
        return "snapshot failed or too short";
    }
    for (len = 0; len < b.len && fail == NULL; len++) {
        err[0] = '\0';
        if (fh->ops->restore(fh->self, b.data, len, err, sizeof(err)) != -1)
            fail = "a truncated snapshot was accepted";
        else if (strncmp(err, "snapshot: ", 10) != 0)
            fail = "a truncation's error does not start with \"snapshot: \"";
        else if (fh->ops->tracked_keys(fh->self) != 0)
            fail = "a refused restore left state behind";
    }
    copy = malloc(b.len + 1);
    if (fail == NULL && copy == NULL)
        fail = "out of memory";
    if (fail == NULL) {
        memcpy(copy, b.data, b.len);
        copy[b.len] = 0;
        if (fh->ops->restore(fh->self, copy, b.len + 1, err, sizeof(err)) != -1)
            fail = "trailing garbage was accepted";
    }
    if (fail == NULL) {
        copy[version_at] ^= 0x10;
        if (fh->ops->restore(fh->self, copy, b.len, err, sizeof(err)) != -1 ||
            strcmp(err, "snapshot: unsupported format version") != 0)
            fail = "another format version was not refused as unsupported";
        copy[version_at] ^= 0x10;
    }
    for (i = 4; fail == NULL && i < b.len; i++) {
        copy[i] ^= 0xa5;
        (void)fh->ops->restore(fh->self, copy, b.len, err, sizeof(err));
        copy[i] ^= 0xa5;
    }
    if (fail == NULL && (fh->ops->restore(fh->self, copy, b.len, err, sizeof(err)) != 0 ||
                         fh->ops->tracked_keys(fh->self) == 0))
        fail = "the intact snapshot no longer restores";
    free(copy);
    rk_buf_free(&b);
    return fail;
}
