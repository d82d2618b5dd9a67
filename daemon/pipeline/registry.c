/* registry.c - the detectors riskd runs: built-ins and plugins.
 *
 * Built-in detectors are linked in; plugins are shared objects named in the
 * config key "plugins". A plugin is loaded the way Redis loads modules:
 * dlopen(RTLD_NOW | RTLD_LOCAL), one dlsym of RK_DETECTOR_ENTRY, then the
 * ops table is checked (ABI major equal, minor not newer than ours, a valid
 * name that no other detector has, the mandatory callbacks present); any
 * failure is one specific error and a dlclose.
 *
 * The registry also owns each detector's configuration: detectors.<name>
 * may hold "enabled" (default true) and "severity" (an override for every
 * rule), checked here; the rest is the detector's own and is validated by
 * its create(). A key under "detectors" that names no detector is an error.
 *
 * Indices are stable for the life of the process (timers and hosts refer
 * to detectors by index): a detector that is disabled or whose plugin was
 * removed keeps its slot with a NULL instance. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

static const rk_detector_ops *const builtins[] = {
    &rk__det_unfiled_inspection,
    &rk__det_bad_rating,
    &rk__det_fine_growth,
    &rk__det_complaint_cluster,
    &rk__det_inspection_frequency,
    &rk__det_discretion,
    &rk__det_review_correction,
    &rk__det_violation_hotspot,
    &rk__det_officer_credential,
};
#define N_BUILTINS (sizeof(builtins) / sizeof(builtins[0]))

static const char *const severity_names[] = {"info", "warning", "critical", NULL};

/* One detector as the configuration describes it, before anything is
 * created. */
typedef struct plan_item {
    const rk_detector_ops *ops;
    void *dl;                       /* owned until handed to the registry */
    const char *path;
    int enabled;
    int severity;
    json_t *cfg;                    /* owned */
    char name[96];                  /* instance: "<detector>" or "<detector>#<i>" */
    json_t *match;                  /* owned; an override's match, else NULL */
    int override;                   /* index in overrides, or -1 */
} plan_item;

typedef struct plan {
    plan_item *items;
    size_t n;
} plan;

static void plan_free(plan *p, int close_dl)
{
    size_t i;
    for (i = 0; i < p->n; i++) {
        json_decref(p->items[i].cfg);
        json_decref(p->items[i].match);
        if (close_dl && p->items[i].dl)
            dlclose(p->items[i].dl);
    }
    free(p->items);
    p->items = NULL;
    p->n = 0;
}

static int valid_name(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static const plan_item *plan_find(const plan *p, const char *name)
{
    size_t i;
    for (i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0)
            return &p->items[i];
    return NULL;
}

/* Load one plugin. reuse_dl, when not NULL, is a handle already loaded
 * for the same path (a reload keeps it). Returns the ops or NULL with err. */
static const rk_detector_ops *load_plugin(const char *path, size_t i,
                                          void **dl_out, char *err, size_t errlen)
{
    void *dl;
    union { void *p; rk_detector_entry_fn fn; } sym;
    const rk_detector_ops *ops;

    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        rk_kit_errf(err, errlen, "plugins[%zu]: cannot load %s: %s", i, path, dlerror());
        return NULL;
    }
    sym.p = dlsym(dl, RK_DETECTOR_ENTRY);
    if (sym.p == NULL) {
        rk_kit_errf(err, errlen, "plugins[%zu]: %s does not export %s", i, path,
                    RK_DETECTOR_ENTRY);
        goto fail_dlclose;
    }
    ops = sym.fn();
    if (ops == NULL) {
        rk_kit_errf(err, errlen, "plugins[%zu]: %s returned no detector", i, path);
        goto fail_dlclose;
    }
    if (ops->abi_major != RK_ABI_MAJOR) {
        rk_kit_errf(err, errlen, "plugins[%zu]: %s was built for detector ABI %u.%u, "
                    "riskd speaks %u.%u (major differs)", i, path, ops->abi_major,
                    ops->abi_minor, RK_ABI_MAJOR, RK_ABI_MINOR);
        goto fail_dlclose;
    }
    if (ops->abi_minor > RK_ABI_MINOR) {
        rk_kit_errf(err, errlen, "plugins[%zu]: %s was built for detector ABI %u.%u, "
                    "newer than riskd's %u.%u", i, path, ops->abi_major,
                    ops->abi_minor, RK_ABI_MAJOR, RK_ABI_MINOR);
        goto fail_dlclose;
    }
    if (!valid_name(ops->name)) {
        rk_kit_errf(err, errlen, "plugins[%zu]: %s has an invalid detector name "
                    "(expected [a-z0-9_]+)", i, path);
        goto fail_dlclose;
    }
    if (ops->create == NULL || ops->on_event == NULL || ops->destroy == NULL) {
        rk_kit_errf(err, errlen, "plugins[%zu]: %s: detector %s lacks create, "
                    "on_event or destroy", i, path, ops->name);
        goto fail_dlclose;
    }
    *dl_out = dl;
    return ops;

fail_dlclose:
    dlclose(dl);
    return NULL;
}

static const char *const subject_fields[] = {
    "unit_id", "officer_id", "enterprise_id", "task_id", "case_id", "region", NULL
};

/* Per-key overrides: detectors.<name>.overrides is a list of
 * {"match": {subject field: value, ...}, "set": {threshold keys}}. Each
 * becomes an instance of its own, "<name>#<i>", created from the base
 * config with "set" merged over it (the detector validates it like any
 * config), that receives the events matching "match" instead of the base
 * instance (apply.c routes them; the first matching override wins). Takes
 * "overrides" out of every base item's cfg; appends the override items. */
static int plan_overrides(plan *p, char *err, size_t errlen)
{
    size_t i, n0 = p->n, k;
    for (i = 0; i < n0; i++) {
        json_t *ov = json_incref(json_object_get(p->items[i].cfg, "overrides")), *o;
        size_t total;
        if (ov == NULL)
            continue;
        json_object_del(p->items[i].cfg, "overrides");
        if (!json_is_array(ov)) {
            rk_kit_errf(err, errlen, "detectors.%s.overrides: expected an array of "
                        "{\"match\": {...}, \"set\": {...}}", p->items[i].name);
            json_decref(ov);
            return -1;
        }
        total = p->n + json_array_size(ov);
        {
            plan_item *grown = realloc(p->items, (total ? total : 1) * sizeof(*grown));
            if (grown == NULL) {
                json_decref(ov);
                rk_kit_errf(err, errlen, "out of memory");
                return -1;
            }
            p->items = grown;
        }
        json_array_foreach(ov, k, o) {
            static const char *const keys[] = {"match", "set", NULL};
            plan_item *base = &p->items[i], *it = &p->items[p->n];
            json_t *match = json_object_get(o, "match"), *set = json_object_get(o, "set"), *v;
            const char *mk;
            char prefix[160];

            snprintf(prefix, sizeof(prefix), "detectors.%s.overrides[%zu].", base->name, k);
            if (!json_is_object(o)) {
                rk_kit_errf(err, errlen, "detectors.%s.overrides[%zu]: expected an object",
                            base->name, k);
                goto fail;
            }
            if (rk_kit_cfg_known_keys(o, prefix, keys, err, errlen) != 0)
                goto fail;
            if (!json_is_object(match) || json_object_size(match) == 0) {
                rk_kit_errf(err, errlen, "%smatch: expected an object of subject fields", prefix);
                goto fail;
            }
            if (!json_is_object(set)) {
                rk_kit_errf(err, errlen, "%sset: expected an object of thresholds", prefix);
                goto fail;
            }
            json_object_foreach(match, mk, v) {
                int f, known = 0;
                for (f = 0; subject_fields[f]; f++)
                    known |= strcmp(mk, subject_fields[f]) == 0;
                if (!known) {
                    rk_kit_errf(err, errlen, "%smatch.%s: not a subject field (expected one "
                                "of unit_id, officer_id, enterprise_id, task_id, case_id, "
                                "region)", prefix, mk);
                    goto fail;
                }
                if (!json_is_string(v) || json_string_length(v) == 0) {
                    rk_kit_errf(err, errlen, "%smatch.%s: expected a non-empty string", prefix, mk);
                    goto fail;
                }
            }
            if (json_object_get(set, "overrides") != NULL) {
                rk_kit_errf(err, errlen, "%sset.overrides: overrides do not nest", prefix);
                goto fail;
            }
            memset(it, 0, sizeof(*it));
            it->ops = base->ops;
            it->path = base->path;
            it->enabled = base->enabled;
            it->severity = base->severity;
            it->override = (int)k;
            snprintf(it->name, sizeof(it->name), "%.64s#%zu", base->ops->name, k);
            it->cfg = json_deep_copy(base->cfg);
            it->match = json_deep_copy(match);
            if (it->cfg == NULL || it->match == NULL ||
                json_object_update(it->cfg, set) != 0) {
                json_decref(it->cfg);
                json_decref(it->match);
                rk_kit_errf(err, errlen, "out of memory");
                goto fail;
            }
            p->n++;
        }
        json_decref(ov);
        continue;
fail:
        json_decref(ov);
        return -1;
    }
    return 0;
}

/* Turn cfg into a plan: every detector with its own config, plugins
 * loaded (or reused from reg, by path). Validates "enabled", "severity"
 * and unknown detector names; does not call create(). */
static int make_plan(const rk__config *cfg, const rk__registry *reg, plan *p,
                     char *err, size_t errlen)
{
    size_t i, total = N_BUILTINS + cfg->n_plugins;
    const char *key;
    json_t *v;

    p->items = calloc(total ? total : 1, sizeof(*p->items));
    p->n = 0;
    if (p->items == NULL) {
        rk_kit_errf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < N_BUILTINS; i++) {
        p->items[p->n].ops = builtins[i];
        p->items[p->n].override = -1;
        snprintf(p->items[p->n].name, sizeof(p->items[p->n].name), "%s", builtins[i]->name);
        p->n++;
    }
    for (i = 0; i < cfg->n_plugins; i++) {
        plan_item *it = &p->items[p->n];
        size_t k;
        const rk_detector_ops *ops = NULL;
        void *dl = NULL;

        for (k = 0; reg != NULL && k < reg->n; k++) {
            if (reg->dets[k]->path && reg->dets[k]->ops &&
                strcmp(reg->dets[k]->path, cfg->plugins[i]) == 0) {
                ops = reg->dets[k]->ops;  /* already loaded: reuse */
                break;
            }
        }
        if (ops == NULL) {
            ops = load_plugin(cfg->plugins[i], i, &dl, err, errlen);
            if (ops == NULL)
                goto fail;
        }
        if (plan_find(p, ops->name) != NULL) {
            rk_kit_errf(err, errlen, "plugins[%zu]: %s: a detector named \"%s\" "
                        "is already loaded", i, cfg->plugins[i], ops->name);
            if (dl) dlclose(dl);
            goto fail;
        }
        it->ops = ops;
        it->dl = dl;
        it->path = cfg->plugins[i];
        it->override = -1;
        snprintf(it->name, sizeof(it->name), "%s", ops->name);
        p->n++;
    }
    json_object_foreach(cfg->detectors, key, v) {
        (void)v;
        if (plan_find(p, key) == NULL) {
            rk_kit_errf(err, errlen, "detectors.%s: unknown detector (not built in "
                        "and not provided by any plugin)", key);
            goto fail;
        }
    }
    for (i = 0; i < p->n; i++) {
        plan_item *it = &p->items[i];
        json_t *sub = json_object_get(cfg->detectors, it->ops->name);
        char prefix[96];

        snprintf(prefix, sizeof(prefix), "detectors.%s.", it->ops->name);
        if (sub != NULL && !json_is_object(sub)) {
            rk_kit_errf(err, errlen, "detectors.%s: expected an object", it->ops->name);
            goto fail;
        }
        if (rk_kit_cfg_bool(sub, prefix, "enabled", 1, &it->enabled, err, errlen) != 0 ||
            rk_kit_cfg_enum(sub, prefix, "severity", severity_names, -1,
                            &it->severity, err, errlen) != 0)
            goto fail;
        it->cfg = sub ? json_deep_copy(sub) : json_object();
        if (it->cfg == NULL) {
            rk_kit_errf(err, errlen, "out of memory");
            goto fail;
        }
        json_object_del(it->cfg, "enabled");
        json_object_del(it->cfg, "severity");
    }
    if (plan_overrides(p, err, errlen) != 0)
        goto fail;
    return 0;

fail:
    plan_free(p, 1);
    return -1;
}

/* A host API that swallows everything: used to validate configurations by
 * creating throwaway instances. */
static int null_emit(rk_host *h, const rk_alert *a) { (void)h; (void)a; return 0; }
static int null_timer(rk_host *h, int64_t d, const char *k, uint64_t a)
{ (void)h; (void)d; (void)k; (void)a; return 0; }
static int64_t null_now(rk_host *h) { (void)h; return INT64_MIN; }
static void null_log(rk_host *h, rk_log_level l, const char *fmt, ...)
{ (void)h; (void)l; (void)fmt; }
static const char *null_stream(rk_host *h, unsigned s) { (void)h; (void)s; return ""; }
static int null_allowance(rk_host *h, const char *e, long long *a)
{ (void)h; (void)e; (void)a; return 0; }
static int null_benchmark(rk_host *h, const char *i, const char *l, double *lo, double *hi)
{ (void)h; (void)i; (void)l; (void)lo; (void)hi; return 0; }
static int null_exempt(rk_host *h, const char *i) { (void)h; (void)i; return 0; }
static int null_credential(rk_host *h, const char *o, int64_t t)
{ (void)h; (void)o; (void)t; return RK_CREDENTIAL_NO_LIST; }
static int64_t null_keep(rk_host *h) { (void)h; return 0; }
static const char *null_language(rk_host *h) { (void)h; return "zh-CN"; }
static int null_tz(rk_host *h) { (void)h; return 8 * 3600; }
static const rk_host_api null_api = {
    RK_ABI_MAJOR, RK_ABI_MINOR, null_emit, null_timer, null_now, null_log, null_stream,
    NULL, null_language,            /* name_of (none: ids), language */
    null_allowance, null_benchmark, null_exempt, null_credential,
    null_keep, null_tz
};

/* Create and destroy each enabled detector once to validate its config. */
static int validate_plan(const plan *p, char *err, size_t errlen)
{
    size_t i;
    struct rk_host dummy = {NULL, NULL, 0};
    for (i = 0; i < p->n; i++) {
        const plan_item *it = &p->items[i];
        char derr[RK_ERRLEN];
        void *self;
        if (!it->enabled)
            continue;
        derr[0] = '\0';
        self = it->ops->create(&null_api, &dummy, it->cfg, derr, sizeof(derr));
        if (self == NULL) {
            if (it->override >= 0)
                rk_kit_errf(err, errlen, "detectors.%s.overrides[%d].set.%s", it->ops->name,
                            it->override, derr[0] ? derr : "invalid configuration");
            else
                rk_kit_errf(err, errlen, "detectors.%s.%s", it->ops->name,
                            derr[0] ? derr : "invalid configuration");
            return -1;
        }
        it->ops->destroy(self);
    }
    return 0;
}

int rk__registry_check(const rk__config *cfg, char *err, size_t errlen)
{
    plan p;
    int rc;
    if (make_plan(cfg, NULL, &p, err, errlen) != 0)
        return -1;
    rc = validate_plan(&p, err, errlen);
    plan_free(&p, 1);
    return rc;
}

int rk__registry_find(const rk__registry *reg, const char *name)
{
    size_t i;
    for (i = 0; i < reg->n; i++)
        if (reg->dets[i]->ops && strcmp(reg->dets[i]->name, name) == 0)
            return (int)i;
    return -1;
}

/* An override instance names its base instance (same alert name, no
 * match); a base instance names itself. */
static void link_base(rk__registry *reg, rk__det *d)
{
    int b = d->match ? rk__registry_find(reg, d->alert_name) : (int)d->host.idx;
    d->base = b >= 0 ? (uint32_t)b : d->host.idx;
}

static rk__det *det_append(rk__registry *reg, const plan_item *it, struct rk__engine *eng)
{
    rk__det *d;
    if (reg->n == reg->cap) {
        size_t ncap = reg->cap ? reg->cap * 2 : 8;
        rk__det **a = realloc(reg->dets, ncap * sizeof(*a));
        if (a == NULL)
            return NULL;
        reg->dets = a;
        reg->cap = ncap;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->name = strdup(it->name);
    d->alert_name = strdup(it->ops->name);
    d->path = it->path ? strdup(it->path) : NULL;
    if (d->name == NULL || d->alert_name == NULL || (it->path && d->path == NULL)) {
        free(d->name);
        free(d->alert_name);
        free(d->path);
        free(d);
        return NULL;
    }
    d->ops = it->ops;
    d->severity = -1;
    d->match = json_incref(it->match);
    d->host.open = &rk__host_open_ops;
    d->host.eng = eng;
    d->host.idx = (uint32_t)reg->n;
    reg->dets[reg->n++] = d;
    link_base(reg, d);
    return d;
}

/* Create the instance of d from plan item it. */
static int det_create(rk__det *d, const plan_item *it, const rk_host_api *api,
                      char *err, size_t errlen)
{
    char derr[RK_ERRLEN];
    derr[0] = '\0';
    d->self = d->ops->create(api, (rk_host *)&d->host, it->cfg, derr, sizeof(derr));
    if (d->self == NULL) {
        if (it->override >= 0)
            rk_kit_errf(err, errlen, "detectors.%s.overrides[%d].set.%s", d->alert_name,
                        it->override, derr[0] ? derr : "invalid configuration");
        else
            rk_kit_errf(err, errlen, "detectors.%s.%s", d->name,
                        derr[0] ? derr : "invalid configuration");
        return -1;
    }
    json_decref(d->cfg);
    d->cfg = json_incref(it->cfg);
    d->severity = it->severity;
    return 0;
}

int rk__registry_load(rk__registry *reg, const rk__config *cfg,
                      const rk_host_api *api, struct rk__engine *eng,
                      char *err, size_t errlen)
{
    plan p;
    size_t i;

    memset(reg, 0, sizeof(*reg));
    if (make_plan(cfg, NULL, &p, err, errlen) != 0)
        return -1;
    for (i = 0; i < p.n; i++) {
        rk__det *d = det_append(reg, &p.items[i], eng);
        if (d == NULL) {
            rk_kit_errf(err, errlen, "out of memory");
            goto fail;
        }
        d->dl = p.items[i].dl;
        p.items[i].dl = NULL;       /* the registry owns it now */
        if (p.items[i].enabled && det_create(d, &p.items[i], api, err, errlen) != 0)
            goto fail;
    }
    plan_free(&p, 1);
    return 0;

fail:
    plan_free(&p, 1);
    rk__registry_free(reg);
    return -1;
}

int rk__registry_reload(rk__registry *reg, const rk__config *cfg,
                        const rk_host_api *api, struct rk__engine *eng,
                        void (*on_removed)(struct rk__engine *eng, uint32_t idx),
                        char *err, size_t errlen)
{
    plan p;
    size_t i;

    if (make_plan(cfg, reg, &p, err, errlen) != 0)
        return -1;
    if (validate_plan(&p, err, errlen) != 0) {
        plan_free(&p, 1);
        return -1;
    }
    /* Phase 2: nothing below may fail on configuration grounds (create()
     * and reconfigure() accepted these configs a moment ago). */
    for (i = 0; i < reg->n; i++) {
        rk__det *d = reg->dets[i];
        const plan_item *it;
        if (d->ops == NULL)
            continue;
        it = plan_find(&p, d->name);
        if (it == NULL || !it->enabled || it->ops != d->ops) {
            if (d->self) {
                on_removed(eng, d->host.idx);
                d->ops->destroy(d->self);
                d->self = NULL;
                rk__log(RK_LOG_NOTICE, "detector %s stopped", d->name);
            }
            if (it == NULL && d->dl) {  /* plugin removed */
                dlclose(d->dl);
                d->dl = NULL;
                d->ops = NULL;
            }
            continue;
        }
        if (d->self == NULL) {
            if (det_create(d, it, api, err, errlen) != 0)
                rk__log(RK_LOG_ERR, "%s", err);
            else
                rk__log(RK_LOG_NOTICE, "detector %s started", d->name);
        } else if (!json_equal(d->cfg, it->cfg)) {
            char derr[RK_ERRLEN];
            derr[0] = '\0';
            if (d->ops->reconfigure == NULL) {
                rk__log(RK_LOG_WARNING, "detector %s cannot be reconfigured in place; "
                        "its old thresholds stay until restart", d->name);
            } else if (d->ops->reconfigure(d->self, it->cfg, derr, sizeof(derr)) != 0) {
                rk__log(RK_LOG_ERR, "detectors.%s.%s", d->name, derr);
            } else {
                json_decref(d->cfg);
                d->cfg = json_incref(it->cfg);
            }
        }
        d->severity = it->severity;
        json_decref(d->match);
        d->match = json_incref(it->match);
    }
    /* Plugins and overrides new to this configuration. */
    for (i = 0; i < p.n; i++) {
        plan_item *it = &p.items[i];
        rk__det *d;
        int have = rk__registry_find(reg, it->name);
        if (have >= 0 && reg->dets[have]->ops == it->ops)
            continue;               /* built-in or already loaded */
        if (it->dl == NULL && it->override < 0)
            continue;
        d = det_append(reg, it, eng);
        if (d == NULL) {
            rk__log(RK_LOG_ERR, "out of memory adding detector %s", it->ops->name);
            continue;
        }
        d->dl = it->dl;
        it->dl = NULL;
        if (it->enabled && det_create(d, it, api, err, errlen) != 0)
            rk__log(RK_LOG_ERR, "%s", err);
        else if (d->path && it->override < 0)
            rk__log(RK_LOG_NOTICE, "detector %s loaded from %s", d->name, d->path);
        else
            rk__log(RK_LOG_NOTICE, "detector %s started", d->name);
    }
    plan_free(&p, 1);
    return 0;
}

void rk__registry_free(rk__registry *reg)
{
    size_t i;
    for (i = 0; i < reg->n; i++) {
        rk__det *d = reg->dets[i];
        if (d->self)
            d->ops->destroy(d->self);
        json_decref(d->cfg);
        if (d->dl)
            dlclose(d->dl);
        json_decref(d->match);
        free(d->name);
        free(d->alert_name);
        free(d->path);
        free(d);
    }
    free(reg->dets);
    memset(reg, 0, sizeof(*reg));
}

int rk__registry_names(const rk__config *cfg, char ***names, char *err, size_t errlen)
{
    plan p;
    size_t i, n;
    char **v;

    *names = NULL;
    if (make_plan(cfg, NULL, &p, err, errlen) != 0)
        return -1;
    v = calloc(p.n + 1, sizeof(*v));
    for (i = 0, n = 0; v != NULL && i < p.n; i++) {
        if (p.items[i].override >= 0)   /* "<name>#<i>": its base is listed */
            continue;
        if ((v[n++] = strdup(p.items[i].ops->name)) == NULL)
            break;
    }
    plan_free(&p, 1);
    if (v == NULL || (n > 0 && v[n - 1] == NULL)) {
        rk__registry_names_free(v);
        rk_kit_errf(err, errlen, "out of memory");
        return -1;
    }
    *names = v;
    return 0;
}

void rk__registry_names_free(char **names)
{
    for (size_t i = 0; names != NULL && names[i] != NULL; i++)
        free(names[i]);
    free(names);
}
