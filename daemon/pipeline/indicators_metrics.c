/* indicators_metrics.c - the indicators on /metrics: the `all` scope over
 * the rolling window (every count, the fines and each rate) and, with
 * indicators.per_unit_metrics, each unit's filing and scan rate, at most
 * RK_IND_UNIT_SERIES units (the first by id; the others are counted, not
 * shown) so that the label cardinality stays bounded. A rate whose
 * denominator is 0 has no sample. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define RK_IND_UNIT_SERIES 5000

typedef struct unit_list {
    const char **v;
    size_t n, cap;
    bool oom;
} unit_list;

static void add_unit(const char *key, void *ud)
{
    unit_list *l = ud;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        const char **nv = realloc(l->v, nc * sizeof(*nv));
        if (nv == NULL) {
            l->oom = true;
            return;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = key;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A label value with \, " and newline escaped (ids are short; longer ones
 * are cut). */
static void label_value(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; *s && n + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            out[n++] = '\\';
            out[n++] = *s;
        } else if (*s == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

static void rate_sample(rk__prom *m, const char *name, const char *labels, int64_t num,
                        int64_t den)
{
    if (den != 0)
        rk__prom_sample(m, name, "{%s} %.6f", labels, (double)num / (double)den);
}

void rk__ind_metrics(rk__engine *e, rk__prom *m)
{
    static const struct { const char *name; int num, den; } rates[] = {
        {"filing_rate", RK_IC_FILINGS, -1},
        {"scan_rate", RK_IC_SCANNED_BY_DEADLINE, RK_IC_DEADLINE_PASSED},
        {"rating_rate", RK_IC_RATED, RK_IC_SCANNED},
        {"bad_rating_share", RK_IC_BAD_RATINGS, RK_IC_RATINGS},
        {"inspections_per_enterprise", RK_IC_COUNTED, RK_IC_ENTERPRISES},
        {"lenient_share", RK_IC_LENIENT, RK_IC_CASES_DECIDED},
        {"correction_rate", RK_IC_CORRECTIONS, RK_IC_REVIEWS},
    };
    rk__ind_counts c;
    int64_t from, to;
    char label[16], lab[64];
    size_t i;

    if (e->ind == NULL)
        return;
    rk__ind_get(e->ind, RK_IND_ALL, "all", RK_IND_WINDOW, &c, &from, &to, label);
    rk__prom_family(m, "riskd_indicator",
                    "# HELP riskd_indicator The indicators of the whole jurisdiction over "
                    "indicators.window (counts, fines in yuan, rates in [0,1]).\n"
                    "# TYPE riskd_indicator gauge\n");
    for (i = 0; i < RK_IC_N; i++)
        rk__prom_sample(m, "riskd_indicator", "{indicator=\"%s\"} %d",
                        rk__ind_counter_names[i], (int)c.c[i]);
    rk__prom_sample(m, "riskd_indicator", "{indicator=\"fines\"} %.2f",
                    (double)c.fines_fen / 100.0);
    for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        int64_t den = rates[i].den < 0
                          ? (int64_t)c.c[RK_IC_FILINGS] + c.c[RK_IC_UNFILED]
                          : (int64_t)c.c[rates[i].den];
        snprintf(lab, sizeof(lab), "indicator=\"%s\"", rates[i].name);
        rate_sample(m, "riskd_indicator", lab, c.c[rates[i].num], den);
    }

    rk__prom_family(m, "riskd_indicator_amendments_expired_total",
                    "# HELP riskd_indicator_amendments_expired_total Amendments of a filing or "
                    "decision whose indicator record had expired (counted as new).\n"
                    "# TYPE riskd_indicator_amendments_expired_total counter\n");
    rk__prom_sample(m, "riskd_indicator_amendments_expired_total", " %llu",
                    (unsigned long long)rk__ind_expired_amendments(e->ind));

    if (!e->cfg->ind_per_unit_metrics)
        return;
    {
        unit_list l = {0};
        size_t shown;
        rk__ind_keys(e->ind, RK_IND_UNIT, add_unit, &l);
        if (l.n > 1)
            qsort(l.v, l.n, sizeof(*l.v), cmp_str);
        shown = l.n < RK_IND_UNIT_SERIES ? l.n : RK_IND_UNIT_SERIES;
        rk__prom_family(m, "riskd_unit_filing_rate",
                        "# HELP riskd_unit_filing_rate A unit's filing rate over "
                        "indicators.window (indicators.per_unit_metrics).\n"
                        "# TYPE riskd_unit_filing_rate gauge\n");
        for (i = 0; i < shown; i++) {
            char v[200], labels[220];
            rk__ind_get(e->ind, RK_IND_UNIT, l.v[i], RK_IND_WINDOW, &c, &from, &to, label);
            label_value(l.v[i], v, sizeof(v));
            snprintf(labels, sizeof(labels), "unit=\"%s\"", v);
            rate_sample(m, "riskd_unit_filing_rate", labels, c.c[RK_IC_FILINGS],
                        (int64_t)c.c[RK_IC_FILINGS] + c.c[RK_IC_UNFILED]);
        }
        rk__prom_family(m, "riskd_unit_scan_rate",
                        "# HELP riskd_unit_scan_rate A unit's scan rate over "
                        "indicators.window (indicators.per_unit_metrics).\n"
                        "# TYPE riskd_unit_scan_rate gauge\n");
        for (i = 0; i < shown; i++) {
            char v[200], labels[220];
            rk__ind_get(e->ind, RK_IND_UNIT, l.v[i], RK_IND_WINDOW, &c, &from, &to, label);
            label_value(l.v[i], v, sizeof(v));
            snprintf(labels, sizeof(labels), "unit=\"%s\"", v);
            rate_sample(m, "riskd_unit_scan_rate", labels, c.c[RK_IC_SCANNED_BY_DEADLINE],
                        c.c[RK_IC_DEADLINE_PASSED]);
        }
        rk__prom_family(m, "riskd_unit_series_omitted",
                        "# HELP riskd_unit_series_omitted Units left out of the per-unit "
                        "series (beyond the bound).\n"
                        "# TYPE riskd_unit_series_omitted gauge\n");
        rk__prom_sample(m, "riskd_unit_series_omitted", " %zu", l.n - shown);
        free(l.v);
    }
}
