/* tests/fuzz/fuzz-config.c - libFuzzer target for the configuration loader.
 *
 * Each input is a configuration file's bytes. They are parsed the way
 * rk__config_load() parses a file (jansson, any value, duplicate keys
 * refused) and handed to rk__config_from_json(). When that accepts the
 * document, the detector configurations are checked too, with
 * rk__registry_check(), which creates and destroys each enabled built-in
 * detector with its part of "detectors". So that nothing is ever dlopen'ed,
 * "plugins" is first deleted from the document and the config is built
 * again from what is left; that second build must succeed as well (a
 * config's validity may not depend on its plugin list).
 *
 * Besides "no crash, no leak, no undefined behaviour", an accepted config
 * must hold what config.c promises (non-empty names, ports and ranges, a
 * "detectors" object), and every error must be a non-empty message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message naming the broken promise `what`. */
static void broken(const char *what)
{
    fprintf(stderr, "fuzz-config: broken invariant: %s\n", what);
    abort();
}

/* A string the config must hold: present and non-empty. */
static void need_str(const char *s, const char *what)
{
    if (s == NULL || s[0] == '\0')
        broken(what);
}

/* Check what config.c promises about an accepted config. */
static void check_config(const rk__config *c)
{
    need_str(c->redis_host, "redis.host");
    need_str(c->stream_key[RK_STREAM_SCAN], "streams.scan");
    need_str(c->stream_key[RK_STREAM_CASE], "streams.case");
    if (strcmp(c->stream_key[0], c->stream_key[1]) == 0)
        broken("streams.scan == streams.case");
    need_str(c->group, "streams.group");
    need_str(c->consumer, "streams.consumer");
    need_str(c->start, "streams.start");
    need_str(c->alerts_stream, "alerts.stream");
    need_str(c->state_key, "state.key");
    if (c->channel_prefix == NULL || c->metrics_listen == NULL)
        broken("alerts.channel_prefix / metrics.listen NULL");
    if (c->redis_port < 1 || c->redis_port > 65535 || c->redis_db < 0)
        broken("redis.port / redis.db range");
    if (c->redis_username != NULL && c->redis_password == NULL)
        broken("username without password");
    if (c->batch < 1 || c->batch > 100000 || c->max_deliveries < 1)
        broken("streams.batch / max_deliveries range");
    if (c->alerts_maxlen < 1 || c->dedupe_ttl < RK_SECOND ||
        c->clock_idle < 100 || c->state_interval < 100 ||
        c->task_retention < RK_SECOND || c->claim_idle < RK_SECOND)
        broken("duration / maxlen minimum");
    if (c->tz_offset_s < -86400 || c->tz_offset_s > 86400)
        broken("clock.timezone range");
    if (c->metrics_listen[0] != '\0' &&
        (c->metrics_host == NULL || c->metrics_port < 0 || c->metrics_port > 65535))
        broken("metrics.listen parsed");
    if (!json_is_object(c->detectors) || c->root == NULL)
        broken("detectors is not an object");
    if (c->n_plugins > 0 && c->plugins == NULL)
        broken("plugins NULL with n_plugins > 0");
    for (size_t i = 0; i < c->n_plugins; i++)
        need_str(c->plugins[i], "plugins[i]");
}

static void check_err(const char *err)
{
    if (err[0] == '\0')
        broken("failure without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[RK_ERRLEN];
    json_error_t jerr;
    rk__config *cfg = NULL;
    json_t *root;

    root = json_loadb((const char *)data, size,
                      JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return 0;
    err[0] = '\0';
    if (rk__config_from_json(root, &cfg, err, sizeof(err)) != 0) {
        check_err(err);
        if (cfg != NULL)
            broken("failure with a config");
        json_decref(root);
        return 0;
    }
    check_config(cfg);
    rk__config_free(cfg);
    cfg = NULL;

    /* No plugins: nothing may be dlopen'ed. */
    json_object_del(root, "plugins");
    if (rk__config_from_json(root, &cfg, err, sizeof(err)) != 0)
        broken("accepted config refused without its plugins");
    check_config(cfg);
    if (cfg->n_plugins != 0)
        broken("plugins left after deleting them");
    err[0] = '\0';
    if (rk__registry_check(cfg, err, sizeof(err)) != 0)
        check_err(err);
    rk__config_free(cfg);
    json_decref(root);
    return 0;
}
