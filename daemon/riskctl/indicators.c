/* daemon/riskctl/indicators.c - riskctl indicators: the indicators riskd
 * keeps in Redis (riskd:ind:<scope>:<key>:<period>, see riskd(8),
 * INDICATORS), as a table or one JSON document.
 *
 * The period "month" is the latest month in riskd:ind:periods (the month
 * of riskd's watermark), "previous-month" the one before it; likewise for
 * quarters. With partitions > 1 every partition's hash (suffix ":p<N>")
 * is read, the counts summed and the rates computed again from the sums.
 * The command parses its own options (main.c hands it argv whole), so its
 * options stay out of the other commands' table. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"
#include "pipeline/indicators.h"

/* The figures of one row (ctlread.c), summed over partitions. */
#define F_N RK_CF_N
#define F_COUNTED RK_CF_COUNTED
#define NRATES RK_CTL_NRATES
#define raw_names rk__ctl_ind_fields
#define rates rk__ctl_rates
#define rate_of rk__ctl_rate_of
typedef rk__ctl_row row;

/* The names list stored in Redis (riskctl lists, kind names), read once;
 * NULL when none is loaded or it cannot be read (ids are shown then). */
static rk__list *g_names;

/* The display name of key in scope from the names list, or NULL. */
static const char *name_of(int scope, const char *key)
{
    if (g_names == NULL || scope == RK_IND_ALL)
        return NULL;
    return rk__lists_name(g_names, rk__ind_scope_names[scope], key);
}

/* Columns of the table per alerts.language (zh-CN by default, en). */
static const char *const cols_en[] = {
    "key", "name", "filings", "unfiled", "filing_rate", "scan_rate", "rating_rate",
    "bad_rating_share", "inspections_per_enterprise", "cases_opened", "cases_decided", "fines",
    "lenient_share", "complaints", "reviews", "corrections", "correction_rate",
    "open_critical", "open_warning", "open_info"};
static const char *const cols_zh[] = {
    "编号", "名称", "备案数", "未备案数", "备案率", "按时扫码率", "评价率",
    "差评占比", "户均检查次数", "立案数", "作出处罚决定数", "罚没款(元)",
    "从轻减轻免罚占比", "投诉数", "复议数", "纠错数", "纠错率",
    "严重预警", "一般预警", "提示预警"};
#define NCOLS (sizeof(cols_en) / sizeof(cols_en[0]))
static const char *const scopes_zh[RK_IND_NSCOPES] = {"单位", "执法人员", "区域", "全辖区"};

/* Terminal columns of UTF-8 text: wide (2) for CJK and full-width forms. */
static int dwidth(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int w = 0;
    while (*p) {
        unsigned cp;
        int n;
        if (*p < 0x80) { cp = *p; n = 1; }
        else if ((*p & 0xE0) == 0xC0) { cp = *p & 0x1F; n = 2; }
        else if ((*p & 0xF0) == 0xE0) { cp = *p & 0x0F; n = 3; }
        else { cp = *p & 0x07; n = 4; }
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80) { n = i; break; }
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        p += n;
        w += (cp >= 0x1100 && (cp <= 0x115F || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                               (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                               (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                               (cp >= 0xFFE0 && cp <= 0xFFE6) || cp >= 0x20000)) ? 2 : 1;
    }
    return w;
}

/* Print s in w columns: right-aligned (right) or left-aligned. */
static void cell(const char *s, int w, bool right)
{
    int pad = w - dwidth(s);
    if (right)
        printf(" %*s%s", pad > 0 ? pad : 0, "", s);
    else
        printf("%s%*s", s, pad > 0 ? pad : 0, "");
}

static int usage(FILE *f)
{
    fprintf(f,
            "usage: riskctl [-c FILE] indicators [--scope unit|officer|region|all] [--key ID]\n"
            "         [--period window|month|quarter|previous-month|previous-quarter]\n"
            "         [--sort FIELD] [--json]\n"
            "The indicators riskd keeps per unit, officer, region and for all (riskd(8),\n"
            "INDICATORS): a table with rates as percentages (- where the denominator is 0),\n"
            "or with --json one JSON document. Default: --scope unit --period window,\n"
            "sorted by key; --sort FIELD sorts by that indicator, highest first.\n"
            "Exit status: 0 done, 1 bad usage or unknown key, 2 Redis cannot be reached.\n");
    return f == stdout ? EX_OK : EX_FAIL;
}

static const char *g_sort;
static int cmp_rows(const void *a, const void *b)
{
    const row *x = a, *y = b;
    double vx = 0, vy = 0;
    int nx = 0, ny = 0;
    size_t i;
    if (g_sort == NULL)
        return strcmp(x->key, y->key);
    if (strcmp(g_sort, "fines") == 0) {
        vx = x->fines;
        vy = y->fines;
    }
    for (i = 0; i < F_N; i++)
        if (strcmp(g_sort, raw_names[i]) == 0) {
            vx = (double)x->n[i];
            vy = (double)y->n[i];
        }
    for (i = 0; i < NRATES; i++)
        if (strcmp(g_sort, rates[i].name) == 0) {
            vx = rate_of(x, i, &nx);
            vy = rate_of(y, i, &ny);
        }
    if (nx != ny)
        return nx - ny;             /* nulls last */
    if (vx != vy)
        return vx < vy ? 1 : -1;
    return strcmp(x->key, y->key);
}

static bool sort_field_known(const char *f)
{
    size_t i;
    if (strcmp(f, "fines") == 0 || strcmp(f, "key") == 0)
        return true;
    for (i = 0; i < F_N; i++)
        if (strcmp(f, raw_names[i]) == 0)
            return true;
    for (i = 0; i < NRATES; i++)
        if (strcmp(f, rates[i].name) == 0)
            return true;
    return false;
}

static void fmt_fines(double v, char *buf, size_t len)
{
    size_t n;
    snprintf(buf, len, "%.2f", v);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

static json_t *row_json(const row *r)
{
    json_t *o = json_object();
    size_t i;
    json_object_set_new(o, "key", json_string(r->key));
    json_object_set_new(o, "name", r->name ? json_string(r->name) : json_null());
    for (i = 0; i < F_N; i++)
        json_object_set_new(o, raw_names[i], json_integer(r->n[i]));
    json_object_set_new(o, "fines", json_real(r->fines));
    for (i = 0; i < NRATES; i++) {
        int null;
        double v = rate_of(r, i, &null);
        json_object_set_new(o, rates[i].name,
                            null ? json_null() : json_real(round(v * 1e6) / 1e6));
    }
    json_object_set_new(o, "from", json_string(r->from));
    json_object_set_new(o, "to", json_string(r->to));
    json_object_set_new(o, "updated_at", r->updated[0] ? json_string(r->updated) : json_null());
    return o;
}

static void print_table(const row *rows, size_t n, int scope, const char *label, bool en)
{
    const char *const *cols = en ? cols_en : cols_zh;
    size_t i, c, j;
    int w[NCOLS];
    for (c = 0; c < NCOLS; c++)
        w[c] = dwidth(cols[c]);
    if (w[0] < 16) w[0] = 16;
    if (w[1] < 16) w[1] = 16;
    for (i = 0; i < n; i++) {
        int d = dwidth(rows[i].name ? rows[i].name : "-");
        if (dwidth(rows[i].key) > w[0])
            w[0] = dwidth(rows[i].key);
        if (d > w[1])
            w[1] = d;
    }
    printf("%s %s%s%s\n", en ? rk__ind_scope_names[scope] : scopes_zh[scope],
           en || strcmp(label, "window") != 0 ? label : "滚动窗口",
           n > 0 && rows[0].from[0] ? "  " : "", n > 0 ? rows[0].from : "");
    cell(cols[0], w[0], false);
    printf(" ");
    cell(cols[1], w[1], false);
    for (c = 2; c < NCOLS; c++)
        cell(cols[c], w[c], true);
    printf("\n");
    for (i = 0; i < n; i++) {
        const row *r = &rows[i];
        cell(r->key, w[0], false);
        printf(" ");
        cell(r->name ? r->name : "-", w[1], false);
        for (c = 2; c < NCOLS; c++) {
            char v[48] = "";
            for (j = 0; j < F_N; j++)
                if (strcmp(cols_en[c], raw_names[j]) == 0)
                    snprintf(v, sizeof(v), "%lld", r->n[j]);
            if (strcmp(cols_en[c], "fines") == 0)
                fmt_fines(r->fines, v, sizeof(v));
            for (j = 0; j < NRATES; j++)
                if (strcmp(cols_en[c], rates[j].name) == 0) {
                    int null;
                    double x = rate_of(r, j, &null);
                    if (null)
                        snprintf(v, sizeof(v), "-");
                    else if (rates[j].num == F_COUNTED)
                        snprintf(v, sizeof(v), "%.2f", x);
                    else
                        snprintf(v, sizeof(v), "%.1f%%", x * 100.0);
                }
            cell(v, w[c], true);
        }
        printf("\n");
    }
}

int rk__ctl_indicators(int argc, char **argv)
{
    enum { L_SCOPE = 300, L_KEY, L_PERIOD, L_SORT, L_JSON };
    static const struct option lo[] = {
        RK_CTL_CONN_LONGOPTS,
        {"scope", required_argument, NULL, L_SCOPE}, {"key", required_argument, NULL, L_KEY},
        {"period", required_argument, NULL, L_PERIOD}, {"sort", required_argument, NULL, L_SORT},
        {"json", no_argument, NULL, L_JSON}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const char *const periods[] = {"window", "month", "quarter", "previous-month",
                                          "previous-quarter", NULL};
    opts o;
    rk__config *cfg = NULL;
    conn k;
    const char *scope = "unit", *key = NULL, *period = "window";
    char label[16];
    int opt, json = 0, scope_i = -1, rc = EX_OK, got;
    size_t i, n = 0;
    row *rows = NULL;
    bool ok;

    memset(&o, 0, sizeof(o));
    o.db = -1;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:hp:a:n:", lo, NULL)) != -1) {
        switch (opt) {
        case L_SCOPE: scope = optarg; break;
        case L_KEY: key = optarg; break;
        case L_PERIOD: period = optarg; break;
        case L_SORT: g_sort = optarg; break;
        case L_JSON: json = 1; break;
        case 'h': return usage(stdout);
        default:
            if ((got = rk__ctl_conn_opt(&o, opt, optarg)) > 0)
                break;
            if (got < 0)
                return EX_FAIL;
            rk__ctl_errx("indicators: unknown option or missing value in %s (riskctl "
                         "indicators -h shows its usage)", argv[optind - 1]);
            return EX_FAIL;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "indicators") != 0 || optind + 1 != argc) {
        rk__ctl_errx("indicators: takes no arguments (riskctl indicators -h shows its usage)");
        return EX_FAIL;
    }
    for (i = 0; i < RK_IND_NSCOPES; i++)
        if (strcmp(scope, rk__ind_scope_names[i]) == 0)
            scope_i = (int)i;
    if (scope_i < 0) {
        rk__ctl_errx("--scope: expected unit, officer, region or all");
        return EX_FAIL;
    }
    for (ok = false, i = 0; periods[i]; i++)
        ok = ok || strcmp(period, periods[i]) == 0;
    if (!ok) {
        rk__ctl_errx("--period: expected window, month, quarter, previous-month or "
                     "previous-quarter");
        return EX_FAIL;
    }
    if (g_sort != NULL && !sort_field_known(g_sort)) {
        rk__ctl_errx("--sort: unknown field %s", g_sort);
        return EX_FAIL;
    }
    if (g_sort != NULL && strcmp(g_sort, "key") == 0)
        g_sort = NULL;
    if (scope_i == RK_IND_ALL)
        key = "all";
    if (rk__ctl_load_config(&o, &cfg) != 0)
        return EX_FAIL;
    if (rk__ctl_conn_init(&k, cfg, &o) != 0) {
        rk__config_free(cfg);
        return EX_REDIS;
    }
    g_names = rk__ctl_names_load(&k);
    got = rk__ctl_ind_label(&k, period, label, sizeof(label));
    if (got < 0)
        goto lost;
    if (got > 0) {
        rk__ctl_errx("no %s indicators in Redis yet", period);
        rc = EX_FAIL;
        goto done;
    }
    /* the keys: --key, or the union of the partitions' indexes */
    if (key == NULL) {
        char **keys;
        if (rk__ctl_ind_keys(&k, cfg, scope, &keys, &n) != 0)
            goto lost;
        rows = calloc(n ? n : 1, sizeof(*rows));
        if (rows == NULL)
            exit(EX_FAIL);
        for (i = 0; i < n; i++)
            rows[i].key = keys[i];
        free(keys);
    } else {
        rows = calloc(1, sizeof(*rows));
        if (rows == NULL)
            exit(EX_FAIL);
        rows[0].key = strdup(key);
        n = 1;
    }
    for (i = 0; i < n; i++) {
        int found = rk__ctl_ind_read(&k, cfg, scope, rows[i].key, label, &rows[i]);
        if (found < 0)
            goto lost;
        rows[i].name = name_of(scope_i, rows[i].key);
        if (found == 0 && key != NULL && scope_i != RK_IND_ALL) {
            rk__ctl_errx("no indicators for %s %s in period %s", scope, key, label);
            rc = EX_FAIL;
            goto done;
        }
    }
    qsort(rows, n, sizeof(*rows), cmp_rows);
    if (json) {
        json_t *doc = json_object(), *arr = json_array();
        char *s;
        json_object_set_new(doc, "scope", json_string(scope));
        json_object_set_new(doc, "period", json_string(period));
        json_object_set_new(doc, "label", json_string(label));
        json_object_set_new(doc, "partitions", json_integer(cfg->partitions));
        for (i = 0; i < n; i++)
            json_array_append_new(arr, row_json(&rows[i]));
        json_object_set_new(doc, "rows", arr);
        s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(doc);
    } else {
        print_table(rows, n, scope_i, label,
                    cfg->alerts_language != NULL && strcmp(cfg->alerts_language, "en") == 0);
    }
    goto done;
lost:
    rk__ctl_errx("lost Redis at %s:%d", k.host, k.port);
    rc = EX_REDIS;
done:
    for (i = 0; i < n; i++)
        free(rows[i].key);
    free(rows);
    rk__lists_free(g_names);
    g_names = NULL;
    rk__ctl_conn_close(&k);
    rk__config_free(cfg);
    return rc;
}
