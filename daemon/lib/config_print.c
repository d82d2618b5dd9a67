/* daemon/lib/config_print.c - the effective configuration as JSON
 * (riskd --print-config): every key, with the value riskd runs with.
 *
 * The sections outside "detectors" are written from the parsed rk__config,
 * so what is printed is what the parser made of the file: defaults filled
 * in, durations in their largest exact unit ("24h" given as "1d" prints
 * "1d"), streams.consumer the host name when the file leaves it out. The
 * detectors' own keys are theirs to parse (registry.c), so "detectors"
 * is each built-in detector's documented defaults (BUILTIN_DEFAULTS below,
 * the same as config/riskd.json and riskd-detectors(7); test-config checks
 * it against the shipped file) with the file's object for that detector
 * laid over it key by key (an array such as "rules" replaces the default
 * whole, as it does in the detector); plugins' detectors as the file gives
 * them. */
#include <stdio.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

static const char BUILTIN_DEFAULTS[] =
    "{\"unfiled_inspection\": {\"grace\": \"10m\", \"report_tolerance\": \"24h\","
    "  \"scan_deadline\": \"24h\", \"retention\": \"30d\"},"
    " \"bad_rating\": {\"bad_score\": 2, \"officer_window\": \"30d\", \"officer_min_bad\": 3,"
    "  \"unit_window\": \"30d\", \"unit_min_ratings\": 20, \"unit_max_bad_ratio\": 0.2},"
    " \"fine_growth\": {\"period\": \"30d\", \"baseline_periods\": 6, \"min_history\": 3,"
    "  \"min_growth\": 0.5, \"min_z\": 2.0, \"min_amount\": 50000},"
    " \"complaint_cluster\": {\"rules\": ["
    "  {\"group_by\": \"unit_id\", \"window\": \"7d\", \"min_count\": 5},"
    "  {\"group_by\": \"officer_id\", \"window\": \"30d\", \"min_count\": 3}]},"
    " \"inspection_frequency\": {\"limits\": [{\"window\": \"1d\", \"max\": 1},"
    "  {\"window\": \"7d\", \"max\": 2}, {\"window\": \"30d\", \"max\": 3}],"
    "  \"exclude_kinds\": [\"complaint\"], \"multi_min_units\": 2, \"multi_window\": \"7d\"},"
    " \"discretion\": {\"window\": \"90d\", \"min_cases\": 5, \"max_ratio\": 2.0},"
    " \"review_correction\": {\"window\": \"90d\", \"min_count\": 3, \"min_share\": 0.3},"
    " \"violation_hotspot\": {\"period\": \"30d\", \"baseline_periods\": 3, \"min_count\": 20,"
    "  \"min_growth\": 1.0},"
    " \"officer_credential\": {}}";

static json_t *dur(int64_t ms)
{
    char b[32];
    rk_kit_format_duration(ms, b, sizeof(b));
    return json_string(b);
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *str_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The detectors section: built-in defaults with cfg's objects over them. */
static json_t *detectors(const rk__config *cfg, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *d = json_loads(BUILTIN_DEFAULTS, 0, &jerr), *v, *base;
    const char *name;
    if (d == NULL) {
        rk_kit_errf(err, errlen, "built-in detector defaults: %s", jerr.text);
        return NULL;
    }
    json_object_foreach(cfg->detectors, name, v) {
        if ((base = json_object_get(d, name)) != NULL && json_is_object(v)) {
            if (json_object_update(base, v) != 0)
                goto oom;
        } else if (json_object_set(d, name, v) != 0) {
            goto oom;
        }
    }
    return d;
oom:
    json_decref(d);
    rk_kit_errf(err, errlen, "out of memory");
    return NULL;
}

json_t *rk__config_effective(const rk__config *c, char *err, size_t errlen)
{
    char tz[16];
    int off = c->tz_offset_s < 0 ? -c->tz_offset_s : c->tz_offset_s;
    json_t *det, *root;

    snprintf(tz, sizeof(tz), "%c%02d:%02d", c->tz_offset_s < 0 ? '-' : '+', off / 3600,
             off % 3600 / 60);
    if ((det = detectors(c, err, errlen)) == NULL)
        return NULL;
    root = json_pack(
        "{s:{s:s, s:i, s:o, s:o, s:i, s:o, s:s, s:i, s:o, s:o},"
        " s:{s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:i},"
        " s:{s:s, s:s, s:I, s:o, s:s, s:o, s:o, s:s},"
        " s:{s:b, s:o, s:s, s:o},"
        " s:{s:s},"
        " s:{s:o, s:s, s:o, s:o, s:o},"
        " s:{s:o, s:b},"
        " s:{s:s, s:o, s:i, s:o},"
        " s:i, s:o, s:o}",
        "redis", "host", c->redis_host, "port", c->redis_port,
        "password", str_or_null(c->redis_password), "username", str_or_null(c->redis_username),
        "db", c->redis_db, "sentinels", str_array(c->redis_sentinels, c->n_sentinels),
        "master_name", c->redis_master_name, "wait_replicas", c->redis_wait_replicas,
        "wait_timeout", dur(c->redis_wait_timeout),
        "cluster", str_array(c->redis_cluster, c->n_cluster),
        "streams", "scan", c->stream_key[RK_STREAM_SCAN], "case", c->stream_key[RK_STREAM_CASE],
        "group", c->group, "consumer", c->consumer, "start", c->start, "batch", c->batch,
        "claim_idle", dur(c->claim_idle), "max_deliveries", c->max_deliveries,
        "alerts", "stream", c->alerts_stream, "channel_prefix", c->channel_prefix,
        "maxlen", (json_int_t)c->alerts_maxlen, "dedupe_ttl", dur(c->dedupe_ttl),
        "language", c->alerts_language, "keep_firing_for", dur(c->keep_firing_for),
        "open_ttl", dur(c->open_ttl), "open_key", c->alerts_open_key,
        "clock", "wall_advance", (int)c->wall_advance, "idle", dur(c->clock_idle),
        "timezone", tz, "allowed_lateness", dur(c->allowed_lateness),
        "metrics", "listen", c->metrics_listen,
        "state", "interval", dur(c->state_interval), "key", c->state_key,
        "task_retention", dur(c->task_retention), "dedupe_window", dur(c->dedupe_window),
        "lease_ttl", dur(c->lease_ttl),
        "indicators", "window", dur(c->ind_window), "per_unit_metrics",
        (int)c->ind_per_unit_metrics,
        "web", "listen", c->web_listen, "token", str_or_null(c->web_token),
        "history", c->web_history, "keepalive", dur(c->web_keepalive),
        "partitions", c->partitions, "plugins", str_array(c->plugins, c->n_plugins),
        "detectors", det);
    if (root == NULL)
        rk_kit_errf(err, errlen, "out of memory");
    return root;
}
