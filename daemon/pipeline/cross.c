/* cross.c - the rules that look across units, and which pipeline runs them.
 *
 * With partitions > 1 each partition's pipeline sees only its units'
 * events (producers route by crc32(unit_id)). Most rules are about one unit
 * or one of its officers and see everything they need there. A few compare
 * or count across units:
 *
 *   inspection_frequency  repeat, whitelist, multi_unit (an enterprise is
 *                         inspected by several units)
 *   discretion            disparity (a unit against all the others)
 *   violation_hotspot     hotspot (a region and domain span units)
 *   complaint_cluster     cluster, grouped by enterprise_id or region
 *
 * Those run in one more leased pipeline, the cross pipeline (pipeline
 * index `partitions`, node.c): it reads the scan and case streams of every
 * partition (2 per partition, stream si of partition si / 2, in the order
 * of the partitions) in one event-time merge, under its own consumer group
 * <group>:cross, checkpoint <state.key>:{cross}, lease and epoch. The
 * partition pipelines drop these rules' alerts and notices before
 * cooldowns and output, so their other rules keep their ids, cooldowns and
 * lifecycle; the cross pipeline runs only the built-in detectors that have
 * such rules and writes only those rules' alerts. Alert ids depend on the
 * alert's content, not on the entry or the stream, so they are the ids one
 * riskd gives. Plugins run in the partition pipelines only; the cross
 * pipeline writes no indicators and records no filings in the register (the
 * partition pipelines do both). With one partition, or on a Redis Cluster
 * (whose slots keep the partitions' streams apart), there is no cross
 * pipeline and every pipeline runs every rule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* The built-in detectors with rules across units. */
static const char *const cross_dets[] = {
    "inspection_frequency", "discretion", "violation_hotspot", "complaint_cluster", NULL
};

int rk__engine_role_of(const rk__config *cfg)
{
    if (!rk__config_has_cross(cfg))
        return RK__ROLE_ALL;
    return rk__config_is_cross(cfg) ? RK__ROLE_CROSS : RK__ROLE_PARTITION;
}

bool rk__rule_is_cross(const char *detector, const rk_alert *a)
{
    if (detector == NULL || a == NULL || a->rule == NULL)
        return false;
    if (strcmp(detector, "inspection_frequency") == 0)
        return strcmp(a->rule, "repeat") == 0 || strcmp(a->rule, "whitelist") == 0 ||
               strcmp(a->rule, "multi_unit") == 0;
    if (strcmp(detector, "discretion") == 0)
        return strcmp(a->rule, "disparity") == 0;
    if (strcmp(detector, "violation_hotspot") == 0)
        return strcmp(a->rule, "hotspot") == 0;
    if (strcmp(detector, "complaint_cluster") == 0)
        /* grouped by enterprise_id or region: no unit, no officer */
        return strcmp(a->rule, "cluster") == 0 && a->subject.unit_id == NULL &&
               a->subject.officer_id == NULL;
    return false;
}

bool rk__rule_runs(const rk__engine *e, const rk__det *d, const rk_alert *a)
{
    bool cross;
    if (e->role == RK__ROLE_ALL)
        return true;
    cross = d->dl == NULL && rk__rule_is_cross(d->alert_name, a);
    return e->role == RK__ROLE_CROSS ? cross : !cross;
}

bool rk__det_runs(const rk__engine *e, const rk__det *d)
{
    size_t i;
    if (e->role != RK__ROLE_CROSS)
        return true;
    if (d->dl != NULL)
        return false;               /* plugins: the partition pipelines */
    for (i = 0; cross_dets[i] != NULL; i++)
        if (strcmp(d->alert_name, cross_dets[i]) == 0)
            return true;
    return false;
}

int rk__cross_streams(rk__engine *e, const rk__config *cfg)
{
    unsigned si, n = 2u * (unsigned)cfg->partitions;
    if (n > RK__MAX_STREAMS)
        return -1;
    e->own_keys = calloc(n, sizeof(*e->own_keys));
    if (e->own_keys == NULL)
        return -1;
    e->nstreams = n;
    for (si = 0; si < n; si++) {
        const char *base = cfg->stream_key[rk__stream_kind(si)];
        size_t len = strlen(base) + 16;
        if ((e->own_keys[si] = malloc(len)) == NULL)
            return -1;              /* (rk__cross_free frees what there is) */
        snprintf(e->own_keys[si], len, "%s:{%u}", base, si / RK_STREAM_COUNT);
    }
    return 0;
}

void rk__cross_free(rk__engine *e)
{
    unsigned si;
    if (e->own_keys == NULL)
        return;
    for (si = 0; si < e->nstreams; si++)
        free(e->own_keys[si]);
    free(e->own_keys);
    e->own_keys = NULL;
}
