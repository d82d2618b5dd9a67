/* daemon/riskctl/report.c - riskctl report: the bureau's periodic bulletin
 * (monthly notice, quarterly white paper) as one self-contained HTML file.
 *
 * Sources, all in Redis: the indicator hashes riskd writes (ctlread.c) for
 * the period, the one before it and the months of the period; the alert
 * stream from the period's start (alerts raised in the period: ts within
 * it, not retracted); the open-alert hash (open critical alerts). Names
 * come from the names list.
 *
 * The page has five sections (headline indicators with their change, the
 * units ranked by risk score, alerts by detector and rule, the open
 * critical alerts, notes on the figures) and inline SVG charts, no script,
 * no image and no address outside the file: it opens offline and names a
 * CJK font stack instead of shipping fonts. Print CSS: A4, each section
 * on a new page, no table row, chart or small table cut across pages
 * (break-inside: avoid), table headers repeated.
 *
 * The risk score of a unit (also printed in the page and in riskctl(1)):
 *   5 x critical + 2 x warning + 1 x info alerts raised in the period for
 *   the unit (subject.unit_id), not retracted,
 *   + 20 x (1 - filing_rate) + 10 x (1 - scan_rate)
 *   + 10 x bad_rating_share + 10 x correction_rate,
 * a null rate adding 0; ranked highest first, ties by unit id. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"
#include "pipeline/indicators.h"

#define PAGE 10000
#define MAX_CRITICAL 200            /* open critical alerts listed */
#define CHART_UNITS 15              /* units in the risk chart */

enum { SEV_INFO, SEV_WARNING, SEV_CRITICAL, SEV_N };

typedef struct unit_row {
    rk__ctl_row r;
    long long al[SEV_N];            /* alerts raised in the period */
    double score;
} unit_row;

typedef struct rule_row {
    char *detector, *rule;
    long long n[SEV_N];
} rule_row;

typedef struct report {
    const rk__config *cfg;
    bool en;
    int scope;                      /* RK_IND_UNIT, RK_IND_REGION or RK_IND_ALL */
    const char *key;                /* "all" for all */
    int want;                       /* 1 month, 2 quarter */
    int32_t idx;
    char label[16], prev_label[16];
    int64_t from, to;
    rk__list *names;
    rk__ctl_row head, prev;
    bool have_prev;
    rk__ctl_row months[3];
    char month_labels[3][16];
    bool have_month[3];
    unit_row *units;
    size_t nunits;
    rule_row *rules;
    size_t nrules;
    long long al_total[SEV_N];
    long long *buckets[SEV_N];      /* alerts per day (month) or week (quarter) */
    size_t nbuckets;
    int64_t bucket_ms;
    json_t *critical;               /* open critical alerts of the scope */
    long long open_sev[SEV_N];
} report;

static int sev_of(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "critical") == 0)
        return SEV_CRITICAL;
    if (strcmp(s, "warning") == 0)
        return SEV_WARNING;
    if (strcmp(s, "info") == 0)
        return SEV_INFO;
    return -1;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Is the alert a (its subject) within the report's scope? */
static bool in_scope(const report *rp, const json_t *a)
{
    const json_t *sub = json_object_get(a, "subject");
    const char *v;
    if (rp->scope == RK_IND_ALL)
        return true;
    v = jstr(sub, rp->scope == RK_IND_UNIT ? "unit_id" : "region");
    return v != NULL && strcmp(v, rp->key) == 0;
}

/* ===================================================================
 * Reading
 * =================================================================== */

static unit_row *unit_find(report *rp, const char *unit)
{
    size_t lo = 0, hi = rp->nunits;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(rp->units[mid].r.key, unit);
        if (c == 0)
            return &rp->units[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Keep of keys[0..*n) the units whose hash for label says region (field
 * region, riskd(8) INDICATORS; in any partition's hash), pipelined; the
 * others are freed. 0, or -1 Redis lost. */
static int keep_region(conn *k, const rk__config *cfg, const char *label, const char *region,
                       char **keys, size_t *n)
{
    size_t i, from, kept = 0;
    int p;
    for (from = 0; from < *n; from += 500) {     /* 500 keys a round */
        size_t to = from + 500 < *n ? from + 500 : *n;
        for (i = from; i < to; i++)
            for (p = 0; p < cfg->partitions; p++) {
                if (cfg->partitions > 1)
                    redisAppendCommand(k->c, "HGET riskd:ind:unit:%s:%s:p%d region", keys[i],
                                       label, p);
                else
                    redisAppendCommand(k->c, "HGET riskd:ind:unit:%s:%s region", keys[i], label);
            }
        for (i = from; i < to; i++) {
            bool in = false;
            for (p = 0; p < cfg->partitions; p++) {
                redisReply *r = NULL;
                if (redisGetReply(k->c, (void **)&r) != REDIS_OK || r == NULL)
                    return -1;
                in |= r->type == REDIS_REPLY_STRING && strcmp(r->str, region) == 0;
                freeReplyObject(r);
            }
            {
                char *key = keys[i];
                keys[i] = NULL;
                if (in)
                    keys[kept++] = key;
                else
                    free(key);
            }
        }
    }
    *n = kept;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const unit_row *)a)->r.key, ((const unit_row *)b)->r.key);
}

typedef struct alerts_ctx {
    report *rp;
    json_t *seen;                   /* id -> [rule index, severity, unit, bucket] */
} alerts_ctx;

static void take_alert(void *ud, const char *data, size_t len)
{
    alerts_ctx *c = ud;
    report *rp = c->rp;
    json_t *a;
    const char *st, *aid;
    int64_t ts;

    a = json_loadb(data, len, 0, NULL);
    aid = jstr(a, "id");
    st = jstr(a, "status");
    if (aid == NULL) {
        json_decref(a);
        return;
    }
    if (st != NULL && strcmp(st, "retracted") == 0) {
        json_object_del(c->seen, aid);
    } else if ((st == NULL || strcmp(st, "firing") == 0) &&
               json_object_get(c->seen, aid) == NULL && jstr(a, "ts") != NULL &&
               rk__parse_rfc3339(jstr(a, "ts"), &ts) == 0 && ts >= rp->from &&
               ts < rp->to && sev_of(jstr(a, "severity")) >= 0 &&
               in_scope(rp, a)) {
        const char *det = jstr(a, "detector"), *rule = jstr(a, "rule");
        const char *unit = jstr(json_object_get(a, "subject"), "unit_id");
        size_t ri;
        for (ri = 0; ri < rp->nrules; ri++)
            if (strcmp(rp->rules[ri].detector, det ? det : "?") == 0 &&
                strcmp(rp->rules[ri].rule, rule ? rule : "?") == 0)
                break;
        if (ri == rp->nrules) {
            rp->rules = realloc(rp->rules, (rp->nrules + 1) * sizeof(*rp->rules));
            if (rp->rules == NULL)
                exit(EX_FAIL);
            memset(&rp->rules[ri], 0, sizeof(rp->rules[ri]));
            rp->rules[ri].detector = strdup(det ? det : "?");
            rp->rules[ri].rule = strdup(rule ? rule : "?");
            rp->nrules++;
        }
        json_object_set_new(c->seen, aid,
                            json_pack("[iisi]", (int)ri, sev_of(jstr(a, "severity")),
                                      unit ? unit : "",
                                      (int)((ts - rp->from) / rp->bucket_ms)));
    }
    json_decref(a);
}

/* The alerts raised in the period (ts within it, not retracted), from the
 * alert stream read from the period's start. */
static int read_alerts(conn *k, report *rp)
{
    alerts_ctx c = {rp, json_object()};
    char start[64];
    const char *id;
    json_t *v, *seen = c.seen;
    int rc;

    snprintf(start, sizeof(start), "%lld", (long long)(rp->from > 0 ? rp->from : 0));
    rc = rk__ctl_each_data(k, rp->cfg->alerts_stream, start, PAGE, take_alert, &c);
    json_object_foreach(seen, id, v) {
        int ri = (int)json_integer_value(json_array_get(v, 0));
        int sev = (int)json_integer_value(json_array_get(v, 1));
        const char *unit = json_string_value(json_array_get(v, 2));
        size_t b = (size_t)json_integer_value(json_array_get(v, 3));
        unit_row *u = unit ? unit_find(rp, unit) : NULL;
        rp->rules[ri].n[sev]++;
        rp->al_total[sev]++;
        if (u != NULL)
            u->al[sev]++;
        if (b < rp->nbuckets)
            rp->buckets[sev][b]++;
    }
    json_decref(seen);
    return rc;
}

static void take_open(json_t *a, void *ud)
{
    report *rp = ud;
    int sev = sev_of(jstr(a, "severity"));
    if (sev < 0 || !in_scope(rp, a))
        return;
    rp->open_sev[sev]++;
    if (sev == SEV_CRITICAL)
        json_array_append(rp->critical, a);
}

static int by_ts_desc(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int64_t ta = 0, tb = 0;
    if (jstr(a, "ts"))
        rk__parse_rfc3339(jstr(a, "ts"), &ta);
    if (jstr(b, "ts"))
        rk__parse_rfc3339(jstr(b, "ts"), &tb);
    if (ta != tb)
        return ta > tb ? -1 : 1;
    return strcmp(jstr(a, "id") ? jstr(a, "id") : "", jstr(b, "id") ? jstr(b, "id") : "");
}

static double unit_score(const unit_row *u)
{
    double s = 5.0 * (double)u->al[SEV_CRITICAL] + 2.0 * (double)u->al[SEV_WARNING] +
               (double)u->al[SEV_INFO];
    int null;
    double v;
    v = rk__ctl_rate_of(&u->r, (size_t)rk__ctl_rate_index("filing_rate"), &null);
    if (!null)
        s += 20.0 * (1.0 - v);
    v = rk__ctl_rate_of(&u->r, (size_t)rk__ctl_rate_index("scan_rate"), &null);
    if (!null)
        s += 10.0 * (1.0 - v);
    v = rk__ctl_rate_of(&u->r, (size_t)rk__ctl_rate_index("bad_rating_share"), &null);
    if (!null)
        s += 10.0 * v;
    v = rk__ctl_rate_of(&u->r, (size_t)rk__ctl_rate_index("correction_rate"), &null);
    if (!null)
        s += 10.0 * v;
    return round(s * 10.0) / 10.0;
}

static int by_score(const void *a, const void *b)
{
    const unit_row *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(x->r.key, y->r.key);
}

static int by_rule_total(const void *a, const void *b)
{
    const rule_row *x = a, *y = b;
    long long tx = x->n[0] + x->n[1] + x->n[2], ty = y->n[0] + y->n[1] + y->n[2];
    int c;
    if (tx != ty)
        return tx > ty ? -1 : 1;
    c = strcmp(x->detector, y->detector);
    return c ? c : strcmp(x->rule, y->rule);
}

/* ===================================================================
 * Writing
 * =================================================================== */

/* HTML text: & < > " ' escaped, control characters dropped. */
static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if (c >= 0x20 && c != 0x7f)
                fputc(c, f);
        }
    }
}

static const char *T(const report *rp, const char *zh, const char *en)
{
    return rp->en ? en : zh;
}

static void fmt_amount(double v, char *buf, size_t len)
{
    size_t n;
    snprintf(buf, len, "%.2f", v);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

/* The headline rows: a count (field index), fines, or a rate. */
typedef struct hl { const char *zh, *en, *field; } hl;
static const hl headline[] = {
    {"备案检查数", "inspections filed", "filings"},
    {"未备案检查数", "inspections without filing", "unfiled"},
    {"备案率", "filing rate", "filing_rate"},
    {"按时扫码率", "scan rate", "scan_rate"},
    {"评价率", "rating rate", "rating_rate"},
    {"差评占比", "bad rating share", "bad_rating_share"},
    {"户均检查次数", "inspections per enterprise", "inspections_per_enterprise"},
    {"立案数", "cases opened", "cases_opened"},
    {"处罚决定数", "penalty decisions", "cases_decided"},
    {"罚没款（元）", "fines and confiscations (yuan)", "fines"},
    {"从轻减轻免罚占比", "lenient share", "lenient_share"},
    {"投诉数", "complaints", "complaints"},
    {"复议数", "reviews", "reviews"},
    {"纠错数", "corrections", "corrections"},
    {"纠错率", "correction rate", "correction_rate"},
};
#define NHEAD (sizeof(headline) / sizeof(headline[0]))

/* The value of field in r: 0 count, 1 amount, 2 rate (percent), 3 ratio;
 * *null for a null rate. */
static int value_of(const rk__ctl_row *r, const char *field, double *v, int *null)
{
    int ri = rk__ctl_rate_index(field);
    *null = 0;
    if (strcmp(field, "fines") == 0) {
        *v = r->fines;
        return 1;
    }
    if (ri >= 0) {
        *v = rk__ctl_rate_of(r, (size_t)ri, null);
        return strcmp(field, "inspections_per_enterprise") == 0 ? 3 : 2;
    }
    for (size_t i = 0; i < RK_CF_N; i++)
        if (strcmp(field, rk__ctl_ind_fields[i]) == 0)
            *v = (double)r->n[i];
    return 0;
}

static void fmt_value(int kind, double v, int null, char *buf, size_t len)
{
    if (null)
        snprintf(buf, len, "—");
    else if (kind == 0)
        snprintf(buf, len, "%.0f", v);
    else if (kind == 1)
        fmt_amount(v, buf, len);
    else if (kind == 2)
        snprintf(buf, len, "%.1f%%", v * 100.0);
    else
        snprintf(buf, len, "%.2f", v);
}

static void fmt_change(const report *rp, int kind, double now, int nnull, double before,
                       int bnull, char *buf, size_t len)
{
    double d = now - before;
    if (!rp->have_prev || nnull || bnull) {
        snprintf(buf, len, "—");
    } else if (kind == 2) {
        snprintf(buf, len, "%+.1f %s", d * 100.0, T(rp, "个百分点", "pp"));
    } else if (kind == 3) {
        snprintf(buf, len, "%+.2f", d);
    } else {
        char a[48];
        fmt_amount(fabs(d), a, sizeof(a));
        if (before != 0)
            snprintf(buf, len, "%s%s (%+.1f%%)", d < 0 ? "-" : "+", a, d / before * 100.0);
        else
            snprintf(buf, len, "%s%s", d < 0 ? "-" : "+", a);
    }
}

/* A vertical bar chart: groups (labels) of nser bars (stacked or side by
 * side); vals[s][g]; pct: values are shares, axis 0-100 %. */
static void svg_bars(FILE *f, const char *title, size_t ng, const char *const *labels,
                     size_t nser, const char *const *sernames, const char *const *colors,
                     double *const *vals, bool stacked, bool pct)
{
    const double W = 680, H = 240, L = 50, R = 10, Tp = 30, B = 40;
    double max = 0, gw, bw;
    size_t g, s;
    char num[48];
    for (g = 0; g < ng; g++) {
        double sum = 0;
        for (s = 0; s < nser; s++) {
            if (stacked)
                sum += vals[s][g];
            else if (vals[s][g] > max)
                max = vals[s][g];
        }
        if (stacked && sum > max)
            max = sum;
    }
    if (pct)
        max = 1;
    else                            /* whole-number ticks */
        max = ceil(max / 4.0) * 4.0;
    if (max <= 0)
        max = 1;
    gw = (W - L - R) / (double)(ng ? ng : 1);
    bw = stacked ? gw * 0.7 : gw * 0.8 / (double)(nser ? nser : 1);
    fprintf(f, "<figure><svg viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=\"img\">"
            "<text x=\"%.0f\" y=\"18\" class=\"ct\">", W, H, L);
    esc(f, title);
    fputs("</text>", f);
    for (int t = 0; t <= 4; t++) {
        double y = H - B - (H - B - Tp) * t / 4.0, v = max * t / 4.0;
        if (pct)
            snprintf(num, sizeof(num), "%.0f%%", v * 100);
        else
            fmt_amount(v >= 10 ? round(v) : v, num, sizeof(num));
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" class=\"gl\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" class=\"ax\" text-anchor=\"end\">%s</text>",
                L, y, W - R, y, L - 4, y + 4, num);
    }
    for (g = 0; g < ng; g++) {
        double base = H - B, x0 = L + gw * (double)g + (gw - (stacked ? bw : bw * (double)nser)) / 2;
        for (s = 0; s < nser; s++) {
            double v = vals[s][g] < 0 ? 0 : vals[s][g];
            double h = (H - B - Tp) * v / max;
            double x = stacked ? x0 : x0 + bw * (double)s;
            double y = stacked ? base - h : H - B - h;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                    "fill=\"%s\"/>", x, y, bw > 1 ? bw - 1 : bw, h, colors[s]);
            if (stacked)
                base -= h;
        }
        if (ng <= 16 || g % (ng / 16 + 1) == 0) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" class=\"ax\" text-anchor=\"middle\">",
                    L + gw * (double)g + gw / 2, H - B + 14);
            esc(f, labels[g]);
            fputs("</text>", f);
        }
    }
    for (s = 0; s < nser; s++) {
        double x = L + 130.0 * (double)s;
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\">", x, H - 14, colors[s], x + 14, H - 5);
        esc(f, sernames[s]);
        fputs("</text>", f);
    }
    fputs("</svg></figure>\n", f);
}

/* A horizontal bar chart of n labelled values. */
static void svg_hbars(FILE *f, const char *title, size_t n, const char *const *labels,
                      const double *vals, const char *color)
{
    const double W = 680, row = 20, L = 220, Tp = 30;
    double max = 0, H = Tp + row * (double)n + 10;
    size_t i;
    char num[48];
    for (i = 0; i < n; i++)
        if (vals[i] > max)
            max = vals[i];
    if (max <= 0)
        max = 1;
    fprintf(f, "<figure><svg viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=\"img\">"
            "<text x=\"10\" y=\"18\" class=\"ct\">", W, H);
    esc(f, title);
    fputs("</text>", f);
    for (i = 0; i < n; i++) {
        double y = Tp + row * (double)i, w = (W - L - 60) * vals[i] / max;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"ax\" text-anchor=\"end\">", L - 6,
                y + 14);
        esc(f, labels[i]);
        fmt_amount(vals[i], num, sizeof(num));
        fprintf(f, "</text><rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" "
                "fill=\"%s\"/><text x=\"%.1f\" y=\"%.0f\" class=\"ax\">%s</text>", L, y + 3,
                w < 1 ? 1 : w, row - 6, color, L + w + 4, y + 14, num);
    }
    fputs("</svg></figure>\n", f);
}

static const char *unit_name(const report *rp, const char *unit)
{
    const char *n = rp->names ? rk__lists_name(rp->names, "unit", unit) : NULL;
    return n ? n : unit;
}

static void period_title(const report *rp, char *buf, size_t len)
{
    int y = rp->want == 1 ? rp->idx / 12 : rp->idx / 4;
    int m = rp->want == 1 ? rp->idx % 12 + 1 : rp->idx % 4 + 1;
    static const char *const qzh[] = {"一", "二", "三", "四"};
    static const char *const mon[] = {"January", "February", "March", "April", "May", "June",
                                      "July", "August", "September", "October", "November",
                                      "December"};
    if (rp->want == 1 && rp->en)
        snprintf(buf, len, "%s %d", mon[m - 1], y);
    else if (rp->want == 1)
        snprintf(buf, len, "%d年%d月", y, m);
    else if (rp->en)
        snprintf(buf, len, "%d Q%d", y, m);
    else
        snprintf(buf, len, "%d年第%s季度", y, qzh[m - 1]);
}

static void write_css(FILE *f)
{
    fputs("<style>\n"
          "body{font-family:\"Noto Sans CJK SC\",\"Noto Sans SC\",\"Source Han Sans SC\","
          "\"PingFang SC\",\"Hiragino Sans GB\",\"Microsoft YaHei\",\"WenQuanYi Micro Hei\","
          "\"Noto Sans\",sans-serif;color:#222;margin:2em auto;max-width:60em;line-height:1.5}\n"
          "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:2px solid "
          "#444;padding-bottom:.2em;margin-top:1.6em}\n"
          ".meta{color:#555;font-size:.9em}\n"
          "table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.9em;"
          "break-inside:avoid}\n"
          "th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left}"
          "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\n"
          "thead{display:table-header-group}th{background:#eee}\n"
          "tr,figure,svg,.note{break-inside:avoid;page-break-inside:avoid}\n"
          "figure{margin:.8em 0}svg{max-width:100%;height:auto}\n"
          "svg .ct{font-size:14px;font-weight:bold}svg .ax{font-size:11px;fill:#333}"
          "svg .gl{stroke:#ddd;stroke-width:1}\n"
          ".up{color:#b03020}.down{color:#207040}\n"
          "@page{size:A4;margin:15mm}\n"
          "@media print{body{margin:0;max-width:none;font-size:10.5pt}"
          "section{break-before:page;page-break-before:always}"
          "section.first{break-before:auto;page-break-before:auto}"
          "h2{break-after:avoid;page-break-after:avoid}}\n"
          "</style>\n", f);
}

static void write_html(FILE *f, report *rp, size_t top)
{
    char title[128], ptitle[64], buf[128], buf2[128], when[40];
    const char *scope_name;
    size_t i, s;
    double *vals[4];
    const char *labels[32];

    period_title(rp, ptitle, sizeof(ptitle));
    if (rp->scope == RK_IND_ALL)
        scope_name = T(rp, "全辖区", "the whole jurisdiction");
    else if (rp->scope == RK_IND_UNIT)
        scope_name = unit_name(rp, rp->key);
    else {
        const char *n = rp->names ? rk__lists_name(rp->names, "region", rp->key) : NULL;
        scope_name = n ? n : rp->key;
    }
    if (rp->en)
        snprintf(title, sizeof(title), "%s, %s",
                 rp->want == 1 ? "Enforcement supervision bulletin" :
                                 "Enforcement supervision white paper", ptitle);
    else
        snprintf(title, sizeof(title), "%s%s", ptitle,
                 rp->want == 1 ? "执法监督月度通报" : "执法监督季度白皮书");
    rk__format_rfc3339(rk__wall_ms(), rp->cfg->tz_offset_s, when, sizeof(when));
    when[16] = '\0';
    when[10] = ' ';
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width\">\n<title>",
            rp->en ? "en" : "zh-CN");
    esc(f, title);
    fputs(" - ", f);
    esc(f, scope_name);
    fputs("</title>\n", f);
    write_css(f);
    fputs("</head>\n<body>\n<header><h1>", f);
    esc(f, title);
    fputs("</h1>\n<p class=\"meta\">", f);
    fprintf(f, "%s", T(rp, "范围：", "Scope: "));
    esc(f, scope_name);
    if (rp->scope != RK_IND_ALL) {
        fputs(" (", f);
        esc(f, rp->key);
        fputs(")", f);
    }
    fprintf(f, "%s%s%s%s", T(rp, "　期间：", " · Period: "), rp->label,
            T(rp, "（对比上期 ", " (compared with "), rp->prev_label);
    fprintf(f, "%s%s</p>\n</header>\n", T(rp, "）　生成时间：", ") · Generated: "), when);

    /* 1. headline */
    fprintf(f, "<section class=\"first\" id=\"headline\"><h2>%s</h2>\n",
            T(rp, "一、主要指标", "1. Headline indicators"));
    fprintf(f, "<table><thead><tr><th>%s</th><th class=\"n\">%s</th><th class=\"n\">%s</th>"
            "<th class=\"n\">%s</th></tr></thead><tbody>\n", T(rp, "指标", "Indicator"),
            T(rp, "本期", "This period"), T(rp, "上期", "Previous period"),
            T(rp, "变化", "Change"));
    for (i = 0; i < NHEAD; i++) {
        double v, pv;
        int nn, pn, kind = value_of(&rp->head, headline[i].field, &v, &nn);
        char a[64], b[64], c[96];
        value_of(&rp->prev, headline[i].field, &pv, &pn);
        fmt_value(kind, v, nn, a, sizeof(a));
        if (rp->have_prev)
            fmt_value(kind, pv, pn, b, sizeof(b));
        else
            snprintf(b, sizeof(b), "—");
        fmt_change(rp, kind, v, nn, pv, pn, c, sizeof(c));
        fprintf(f, "<tr><td>%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                "<td class=\"n\">%s</td></tr>\n", rp->en ? headline[i].en : headline[i].zh,
                a, b, c);
    }
    fprintf(f, "<tr><td>%s</td><td class=\"n\">%lld</td><td class=\"n\">—</td>"
            "<td class=\"n\">—</td></tr>\n", T(rp, "本期预警数", "alerts raised"),
            rp->al_total[0] + rp->al_total[1] + rp->al_total[2]);
    fprintf(f, "<tr><td>%s</td><td class=\"n\">%lld / %lld / %lld</td><td class=\"n\">—</td>"
            "<td class=\"n\">—</td></tr>\n",
            T(rp, "当前未处理预警（严重/一般/提示）", "open alerts now (critical/warning/info)"),
            rp->open_sev[SEV_CRITICAL], rp->open_sev[SEV_WARNING], rp->open_sev[SEV_INFO]);
    fputs("</tbody></table>\n", f);
    /* the months: counts and rates */
    {
        static const char *const cf[] = {"filings", "cases_decided", "complaints"};
        static const char *const rf[] = {"filing_rate", "scan_rate", "correction_rate"};
        static const char *const colors[] = {"#3b6ea5", "#e0a030", "#7a9a3a"};
        const char *cn[3], *rn[3];
        double cv[3][3], rv[3][3];
        size_t nm = 0;
        const char *ml[3];
        for (i = 0; i < 3; i++) {
            if (!rp->have_month[i])
                continue;
            ml[nm] = rp->month_labels[i];
            for (s = 0; s < 3; s++) {
                int nl;
                value_of(&rp->months[i], cf[s], &cv[s][nm], &nl);
                value_of(&rp->months[i], rf[s], &rv[s][nm], &nl);
                if (nl)
                    rv[s][nm] = 0;
            }
            nm++;
        }
        cn[0] = T(rp, "备案检查数", "inspections filed");
        cn[1] = T(rp, "处罚决定数", "penalty decisions");
        cn[2] = T(rp, "投诉数", "complaints");
        rn[0] = T(rp, "备案率", "filing rate");
        rn[1] = T(rp, "按时扫码率", "scan rate");
        rn[2] = T(rp, "纠错率", "correction rate");
        if (nm > 0) {
            double *cp[3] = {cv[0], cv[1], cv[2]}, *rpp[3] = {rv[0], rv[1], rv[2]};
            svg_bars(f, T(rp, "各月数量", "Counts by month"), nm, ml, 3, cn, colors, cp,
                     false, false);
            svg_bars(f, T(rp, "各月比率", "Rates by month"), nm, ml, 3, rn, colors, rpp,
                     false, true);
        }
        for (i = 0; i < 3; i++)     /* riskd writes every month it saw events of */
            if (!rp->have_month[i])
                fprintf(f, rp->en ? "<p class=\"meta\">%s: no figures for this month in Redis "
                                    "(riskd saw no event of it for this scope).</p>\n"
                                  : "<p class=\"meta\">%s：Redis 中无该月数据（riskd 未收到本范围该月的事件）。"
                                    "</p>\n", rp->month_labels[i]);
    }
    fputs("</section>\n", f);

    /* 2. units */
    fprintf(f, "<section id=\"units\"><h2>%s</h2>\n", T(rp, "二、单位风险排名",
                                                        "2. Units ranked by risk"));
    fprintf(f, "<p class=\"note\">%s</p>\n",
            T(rp, "风险分 = 5 × 本期严重预警数 + 2 × 一般预警数 + 1 × 提示预警数"
                  "（按告警对象的单位统计，已撤回的不计）+ 20 × (1 − 备案率) + 10 × (1 − 按时扫码率)"
                  " + 10 × 差评占比 + 10 × 纠错率；比率无数据（分母为0）时该项记0。"
                  "按风险分从高到低排列，同分按单位编号排列。",
                  "Risk score = 5 × critical + 2 × warning + 1 × info alerts raised in the "
                  "period for the unit (by the alert's subject, retracted ones not counted) "
                  "+ 20 × (1 − filing rate) + 10 × (1 − scan rate) + 10 × bad rating share "
                  "+ 10 × correction rate; a rate without data (denominator 0) adds 0. "
                  "Highest first, ties by unit id."));
    if (rp->nunits > top && top > 0) {
        fprintf(f, rp->en ? "<p class=\"meta\">The %zu highest of %zu units.</p>\n"
                          : "<p class=\"meta\">%zu个单位中风险分最高的%zu个。</p>\n",
                rp->en ? top : rp->nunits, rp->en ? rp->nunits : top);
    }
    fprintf(f, "<table><thead><tr><th class=\"n\">%s</th><th>%s</th><th class=\"n\">%s</th>"
            "<th class=\"n\">%s</th><th class=\"n\">%s</th><th class=\"n\">%s</th>"
            "<th class=\"n\">%s</th><th class=\"n\">%s</th><th class=\"n\">%s</th></tr></thead>"
            "<tbody>\n", T(rp, "名次", "Rank"), T(rp, "单位", "Unit"),
            T(rp, "风险分", "Score"), T(rp, "预警（严重/一般/提示）", "Alerts (crit/warn/info)"),
            T(rp, "备案检查数", "Filed"), T(rp, "备案率", "Filing rate"),
            T(rp, "按时扫码率", "Scan rate"), T(rp, "差评占比", "Bad ratings"),
            T(rp, "纠错率", "Correction rate"));
    for (i = 0; i < rp->nunits && (top == 0 || i < top); i++) {
        const unit_row *u = &rp->units[i];
        static const char *const rf[] = {"filing_rate", "scan_rate", "bad_rating_share",
                                         "correction_rate"};
        fprintf(f, "<tr><td class=\"n\">%zu</td><td>", i + 1);
        esc(f, unit_name(rp, u->r.key));
        if (strcmp(unit_name(rp, u->r.key), u->r.key) != 0) {
            fputs(" <span class=\"meta\">", f);
            esc(f, u->r.key);
            fputs("</span>", f);
        }
        fprintf(f, "</td><td class=\"n\">%.1f</td><td class=\"n\">%lld / %lld / %lld</td>"
                "<td class=\"n\">%lld</td>", u->score, u->al[SEV_CRITICAL], u->al[SEV_WARNING],
                u->al[SEV_INFO], u->r.n[RK_CF_FILINGS]);
        for (s = 0; s < 4; s++) {
            double v;
            int nl, kind = value_of(&u->r, rf[s], &v, &nl);
            fmt_value(kind, v, nl, buf, sizeof(buf));
            fprintf(f, "<td class=\"n\">%s</td>", buf);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    if (rp->nunits > 0) {
        size_t n = rp->nunits < CHART_UNITS ? rp->nunits : CHART_UNITS;
        const char *ul[CHART_UNITS] = {0};
        double uv[CHART_UNITS] = {0};
        for (i = 0; i < n; i++) {
            ul[i] = unit_name(rp, rp->units[i].r.key);
            uv[i] = rp->units[i].score;
        }
        svg_hbars(f, T(rp, "风险分最高的单位", "Highest risk scores"), n, ul, uv, "#b04030");
    }
    fputs("</section>\n", f);

    /* 3. alerts by detector and rule */
    fprintf(f, "<section id=\"alerts\"><h2>%s</h2>\n",
            T(rp, "三、预警分布（按检测器和规则）", "3. Alerts by detector and rule"));
    fprintf(f, "<table><thead><tr><th>%s</th><th>%s</th><th class=\"n\">%s</th>"
            "<th class=\"n\">%s</th><th class=\"n\">%s</th><th class=\"n\">%s</th></tr></thead>"
            "<tbody>\n", T(rp, "检测器", "Detector"), T(rp, "规则", "Rule"),
            T(rp, "严重", "Critical"), T(rp, "一般", "Warning"), T(rp, "提示", "Info"),
            T(rp, "合计", "Total"));
    for (i = 0; i < rp->nrules; i++) {
        const rule_row *r = &rp->rules[i];
        fputs("<tr><td>", f);
        esc(f, r->detector);
        fputs("</td><td>", f);
        esc(f, r->rule);
        fprintf(f, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld"
                "</td><td class=\"n\">%lld</td></tr>\n", r->n[SEV_CRITICAL], r->n[SEV_WARNING],
                r->n[SEV_INFO], r->n[0] + r->n[1] + r->n[2]);
    }
    fprintf(f, "<tr><th colspan=\"2\">%s</th><th class=\"n\">%lld</th><th class=\"n\">%lld</th>"
            "<th class=\"n\">%lld</th><th class=\"n\">%lld</th></tr>\n</tbody></table>\n",
            T(rp, "合计", "Total"), rp->al_total[SEV_CRITICAL], rp->al_total[SEV_WARNING],
            rp->al_total[SEV_INFO], rp->al_total[0] + rp->al_total[1] + rp->al_total[2]);
    if (rp->nbuckets > 0 && rp->nbuckets <= 32) {
        static const char *const colors[] = {"#c0392b", "#e0a030", "#7f9cc0"};
        const char *sn[3];
        double *bv[3];
        char bl[32][16];
        for (i = 0; i < rp->nbuckets; i++) {
            rk__format_rfc3339(rp->from + (int64_t)i * rp->bucket_ms, rp->cfg->tz_offset_s,
                               buf2, sizeof(buf2));
            snprintf(bl[i], sizeof(bl[i]), "%.5s", buf2 + 5);
            labels[i] = bl[i];
        }
        sn[0] = T(rp, "严重", "critical");
        sn[1] = T(rp, "一般", "warning");
        sn[2] = T(rp, "提示", "info");
        for (s = 0; s < 3; s++) {
            vals[s] = malloc(rp->nbuckets * sizeof(double));
            if (vals[s] == NULL)
                exit(EX_FAIL);
            for (i = 0; i < rp->nbuckets; i++)
                vals[s][i] = (double)rp->buckets[SEV_CRITICAL - s][i];
            bv[s] = vals[s];
        }
        svg_bars(f, rp->want == 1 ? T(rp, "每日预警数", "Alerts per day")
                                  : T(rp, "每周预警数", "Alerts per week"),
                 rp->nbuckets, labels, 3, sn, colors, bv, true, false);
        for (s = 0; s < 3; s++)
            free(vals[s]);
    }
    fputs("</section>\n", f);

    /* 4. open critical alerts */
    fprintf(f, "<section id=\"critical\"><h2>%s</h2>\n",
            T(rp, "四、未处理的严重预警", "4. Open critical alerts"));
    if (json_array_size(rp->critical) == 0) {
        fprintf(f, "<p>%s</p>\n", T(rp, "无。", "None."));
    } else {
        size_t n = json_array_size(rp->critical);
        if (n > MAX_CRITICAL)
            fprintf(f, rp->en ? "<p class=\"meta\">The latest %d of %zu.</p>\n"
                              : "<p class=\"meta\">共%2$zu条，列出最近的%1$d条。</p>\n",
                    MAX_CRITICAL, n);
        fprintf(f, "<table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
                "</tr></thead><tbody>\n", T(rp, "时间", "Time"), T(rp, "检测器/规则", "Rule"),
                T(rp, "单位", "Unit"), T(rp, "摘要", "Summary"), T(rp, "状态", "Status"));
        for (i = 0; i < n && i < MAX_CRITICAL; i++) {
            const json_t *a = json_array_get(rp->critical, i);
            const char *unit = jstr(json_object_get(a, "subject"), "unit_id");
            const char *st = jstr(a, "status");
            fputs("<tr><td>", f);
            esc(f, jstr(a, "ts") ? jstr(a, "ts") : "");
            fputs("</td><td>", f);
            esc(f, jstr(a, "detector"));
            fputs("/", f);
            esc(f, jstr(a, "rule"));
            fputs("</td><td>", f);
            esc(f, unit ? unit_name(rp, unit) : "—");
            fputs("</td><td>", f);
            esc(f, jstr(a, "summary"));
            fputs("</td><td>", f);
            if (st != NULL && strcmp(st, "acknowledged") == 0)
                fputs(T(rp, "已认领", "acknowledged"), f);
            else
                fputs(T(rp, "待处理", "firing"), f);
            fputs("</td></tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
    }
    fputs("</section>\n", f);

    /* 5. notes */
    fprintf(f, "<section id=\"notes\"><h2>%s</h2>\n<div class=\"note\">", T(rp, "五、说明",
                                                                           "5. Notes"));
    fputs(T(rp,
            "<p>指标按事件时间统计（时区 clock.timezone），重复事件不计，更正的备案和处罚决定以最新为准。"
            "备案率 = 备案检查数 ÷（备案检查数 + 未备案检查数）；按时扫码率 = 按时扫码的备案 ÷ 已过扫码期限的备案；"
            "评价率 = 有评价的已扫码检查 ÷ 已扫码检查；差评占比 = 差评数 ÷ 评价数；"
            "户均检查次数 = 计入的检查数 ÷ 被检查企业数；从轻减轻免罚占比 = 从轻、减轻或免罚的决定 ÷ 处罚决定数；"
            "纠错率 = 复议中被撤销、变更或确认违法的 ÷ 复议数。分母为0的比率记为“—”。</p>"
            "<p>本期预警数为告警时间在本期内、未撤回的预警；未处理预警为生成本报告时仍未解除、撤回或关闭的预警。</p>",
            "<p>Indicators are counted on event time (clock.timezone); repeated events are not "
            "counted and amended filings and decisions count as amended. Filing rate = filed ÷ "
            "(filed + inspections without filing); scan rate = filings scanned by their deadline "
            "÷ filings whose deadline has passed; rating rate = scanned inspections rated ÷ "
            "scanned; bad rating share = bad ratings ÷ ratings; inspections per enterprise = "
            "counted inspections ÷ enterprises inspected; lenient share = lighter, mitigated or "
            "exempt decisions ÷ decisions; correction rate = reviews revoked, altered or "
            "confirmed illegal ÷ reviews. A rate with a zero denominator is shown as —.</p>"
            "<p>Alerts raised are those whose time lies in the period, retracted ones not "
            "counted; open alerts are those neither resolved, retracted nor closed when this "
            "report was made.</p>"), f);
    fputs("</div></section>\n</body>\n</html>\n", f);
}

static int usage(FILE *f)
{
    fprintf(f,
            "usage: riskctl [options] report --period month|quarter [--at 2025-09|2025Q3]\n"
            "         [--scope unit|region|all] [--key ID] [--top N] [--lang zh-CN|en]\n"
            "         --out FILE.html\n"
            "Writes the period's bulletin as one self-contained HTML file (no network needed\n"
            "to open it; prints to A4): headline indicators against the previous period,\n"
            "units ranked by risk score (the N highest, default 50; 0 all), alerts by\n"
            "detector and rule, the open critical alerts, charts. Language: alerts.language\n"
            "unless --lang. Default --at: the latest period in riskd:ind:periods.\n"
            "Exit status: 0 done, 1 bad usage or no indicators, 2 Redis cannot be reached.\n");
    return f == stdout ? EX_OK : EX_FAIL;
}

int rk__ctl_report(int argc, char **argv)
{
    enum { L_PERIOD = 300, L_AT, L_SCOPE, L_KEY, L_OUT, L_TOP, L_LANG };
    static const struct option lo[] = {
        RK_CTL_CONN_LONGOPTS,
        {"period", required_argument, NULL, L_PERIOD}, {"at", required_argument, NULL, L_AT},
        {"scope", required_argument, NULL, L_SCOPE}, {"key", required_argument, NULL, L_KEY},
        {"out", required_argument, NULL, L_OUT}, {"top", required_argument, NULL, L_TOP},
        {"lang", required_argument, NULL, L_LANG}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    opts o;
    rk__config *cfg = NULL;
    conn k;
    report rp;
    const char *period = NULL, *at = NULL, *scope = "all", *key = NULL, *out = NULL;
    const char *lang = NULL;
    char tmp[4200], *end;
    long top = 50;
    int opt, rc = EX_OK, got, i;
    size_t j;
    char **keys = NULL;
    size_t nkeys = 0;
    FILE *f;

    memset(&o, 0, sizeof(o));
    memset(&rp, 0, sizeof(rp));
    o.db = -1;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:hp:a:n:", lo, NULL)) != -1) {
        switch (opt) {
        case L_PERIOD: period = optarg; break;
        case L_AT: at = optarg; break;
        case L_SCOPE: scope = optarg; break;
        case L_KEY: key = optarg; break;
        case L_OUT: out = optarg; break;
        case L_LANG: lang = optarg; break;
        case L_TOP:
            top = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || top < 0 || top > 1000000) {
                rk__ctl_errx("--top: expected a number of units (0: all)");
                return EX_FAIL;
            }
            break;
        case 'h': return usage(stdout);
        default:
            if ((got = rk__ctl_conn_opt(&o, opt, optarg)) > 0)
                break;
            if (got < 0)
                return EX_FAIL;
            rk__ctl_errx("report: unknown option or missing value in %s (riskctl report -h shows "
                         "its usage)", argv[optind - 1]);
            return EX_FAIL;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "report") != 0 || optind + 1 != argc) {
        rk__ctl_errx("report: takes no arguments (riskctl report -h shows its usage)");
        return EX_FAIL;
    }
    if (period == NULL || (strcmp(period, "month") != 0 && strcmp(period, "quarter") != 0)) {
        rk__ctl_errx("--period: expected month or quarter");
        return EX_FAIL;
    }
    rp.want = period[0] == 'm' ? 1 : 2;
    if (strcmp(scope, "all") == 0)
        rp.scope = RK_IND_ALL;
    else if (strcmp(scope, "unit") == 0)
        rp.scope = RK_IND_UNIT;
    else if (strcmp(scope, "region") == 0)
        rp.scope = RK_IND_REGION;
    else {
        rk__ctl_errx("--scope: expected unit, region or all");
        return EX_FAIL;
    }
    if (rp.scope != RK_IND_ALL && (key == NULL || key[0] == '\0')) {
        rk__ctl_errx("--scope %s needs --key ID", scope);
        return EX_FAIL;
    }
    rp.key = rp.scope == RK_IND_ALL ? "all" : key;
    if (out == NULL || out[0] == '\0') {
        rk__ctl_errx("--out FILE.html is required");
        return EX_FAIL;
    }
    if (lang != NULL && strcmp(lang, "en") != 0 && strcmp(lang, "zh-CN") != 0) {
        rk__ctl_errx("--lang: expected zh-CN or en");
        return EX_FAIL;
    }
    if (at != NULL && rk__ind_parse_label(at, &rp.idx) != rp.want) {
        rk__ctl_errx("--at: expected a %s such as %s", period,
                     rp.want == 1 ? "2025-09" : "2025Q3");
        return EX_FAIL;
    }
    if (rk__ctl_load_config(&o, &cfg) != 0)
        return EX_FAIL;
    rp.cfg = cfg;
    rp.en = lang ? strcmp(lang, "en") == 0
                 : cfg->alerts_language != NULL && strcmp(cfg->alerts_language, "en") == 0;
    if (rk__ctl_conn_init(&k, cfg, &o) != 0) {
        rk__config_free(cfg);
        return EX_REDIS;
    }
    if (at == NULL) {
        got = rk__ctl_ind_label(&k, period, rp.label, sizeof(rp.label));
        if (got != 0) {
            if (got > 0)
                rk__ctl_errx("no %s indicators in Redis yet", period);
            rc = got < 0 ? EX_REDIS : EX_FAIL;
            goto done;
        }
        rk__ind_parse_label(rp.label, &rp.idx);
    } else {
        snprintf(rp.label, sizeof(rp.label), "%s", at);
    }
    if (rp.want == 1) {
        rk__ind_month_label(rp.idx - 1, rp.prev_label, sizeof(rp.prev_label));
        rp.from = rk__ind_month_start(rp.idx, cfg->tz_offset_s);
        rp.to = rk__ind_month_start(rp.idx + 1, cfg->tz_offset_s);
        rp.bucket_ms = RK_DAY;
        for (i = 0; i < 3; i++)     /* the month and the two before it */
            rk__ind_month_label(rp.idx - 2 + i, rp.month_labels[i], 16);
    } else {
        rk__ind_quarter_label(rp.idx - 1, rp.prev_label, sizeof(rp.prev_label));
        rp.from = rk__ind_quarter_start(rp.idx, cfg->tz_offset_s);
        rp.to = rk__ind_quarter_start(rp.idx + 1, cfg->tz_offset_s);
        rp.bucket_ms = 7 * RK_DAY;
        for (i = 0; i < 3; i++)     /* the quarter's months */
            rk__ind_month_label(rp.idx * 3 + i, rp.month_labels[i], 16);
    }
    rp.nbuckets = (size_t)((rp.to - rp.from + rp.bucket_ms - 1) / rp.bucket_ms);
    for (i = 0; i < SEV_N; i++)
        if ((rp.buckets[i] = calloc(rp.nbuckets, sizeof(long long))) == NULL)
            exit(EX_FAIL);
    rp.names = rk__ctl_names_load(&k);

    /* the headline: this period, the previous one, the months */
    got = rk__ctl_ind_read(&k, cfg, rk__ind_scope_names[rp.scope], rp.key, rp.label, &rp.head);
    if (got < 0)
        goto lost;
    if (got == 0) {
        rk__ctl_errx("no indicators for %s %s in %s (riskd writes the months and quarters "
                     "it saw events of)", scope, rp.key, rp.label);
        rc = EX_FAIL;
        goto done;
    }
    got = rk__ctl_ind_read(&k, cfg, rk__ind_scope_names[rp.scope], rp.key, rp.prev_label,
                           &rp.prev);
    if (got < 0)
        goto lost;
    rp.have_prev = got > 0;
    for (i = 0; i < 3; i++) {
        got = rk__ctl_ind_read(&k, cfg, rk__ind_scope_names[rp.scope], rp.key,
                               rp.month_labels[i], &rp.months[i]);
        if (got < 0)
            goto lost;
        rp.have_month[i] = got > 0;
    }
    /* the units: all (scope all), the region's (their hashes say so), or the one */
    if (rp.scope == RK_IND_UNIT) {
        keys = malloc(sizeof(*keys));
        if (keys == NULL || (keys[0] = strdup(rp.key)) == NULL)
            exit(EX_FAIL);
        nkeys = 1;
    } else if (rk__ctl_ind_keys(&k, cfg, "unit", &keys, &nkeys) != 0 ||
               (rp.scope == RK_IND_REGION &&
                keep_region(&k, cfg, rp.label, rp.key, keys, &nkeys) != 0)) {
        goto lost;
    }
    rp.units = calloc(nkeys ? nkeys : 1, sizeof(*rp.units));
    if (rp.units == NULL)
        exit(EX_FAIL);
    {
        rk__ctl_row *got_rows = calloc(nkeys ? nkeys : 1, sizeof(*got_rows));
        int *found = calloc(nkeys ? nkeys : 1, sizeof(*found));
        if (got_rows == NULL || found == NULL)
            exit(EX_FAIL);
        for (j = 0; j < nkeys; j++)
            got_rows[j].key = keys[j];
        got = rk__ctl_ind_read_many(&k, cfg, "unit", rp.label, got_rows, nkeys, found);
        for (j = 0; j < nkeys && got == 0; j++) {
            if (found[j] > 0)       /* the row owns the key now, or it is gone */
                rp.units[rp.nunits++].r = got_rows[j];
            else
                free(keys[j]);
            keys[j] = NULL;
        }
        free(got_rows);
        free(found);
        if (got < 0)
            goto lost;
    }
    free(keys);
    keys = NULL;
    qsort(rp.units, rp.nunits, sizeof(*rp.units), by_key);
    if ((rc = read_alerts(&k, &rp)) != EX_OK)
        goto done;
    for (j = 0; j < rp.nunits; j++)
        rp.units[j].score = unit_score(&rp.units[j]);
    qsort(rp.units, rp.nunits, sizeof(*rp.units), by_score);
    if (rp.nrules > 0)              /* (rules NULL: no alert in the scope) */
        qsort(rp.rules, rp.nrules, sizeof(*rp.rules), by_rule_total);
    rp.critical = json_array();
    if ((rc = rk__ctl_scan_open(&k, cfg, take_open, &rp)) != EX_OK)
        goto done;
    {
        size_t n = json_array_size(rp.critical);
        json_t **v = malloc((n ? n : 1) * sizeof(*v));
        if (v == NULL)
            exit(EX_FAIL);
        for (j = 0; j < n; j++)
            v[j] = json_incref(json_array_get(rp.critical, j));
        qsort(v, n, sizeof(*v), by_ts_desc);
        json_array_clear(rp.critical);
        for (j = 0; j < n; j++)
            json_array_append_new(rp.critical, v[j]);
        free(v);
    }

    /* write to FILE.tmp, then rename over FILE */
    snprintf(tmp, sizeof(tmp), "%s.tmp", out);
    if (strlen(out) > 4000 || (f = fopen(tmp, "w")) == NULL) {
        rk__ctl_errx("--out %s: cannot write it", out);
        rc = EX_FAIL;
        goto done;
    }
    write_html(f, &rp, (size_t)top);
    if (ferror(f) | (fclose(f) != 0) || rename(tmp, out) != 0) {
        rk__ctl_errx("--out %s: writing failed", out);
        remove(tmp);
        rc = EX_FAIL;
    }
    goto done;
lost:
    rk__ctl_errx("lost Redis at %s:%d", k.host, k.port);
    rc = EX_REDIS;
done:
    if (keys != NULL)
        rk__ctl_keys_free(keys, nkeys);
    for (j = 0; j < rp.nunits; j++)
        free(rp.units[j].r.key);
    free(rp.units);
    for (j = 0; j < rp.nrules; j++) {
        free(rp.rules[j].detector);
        free(rp.rules[j].rule);
    }
    free(rp.rules);
    for (i = 0; i < SEV_N; i++)
        free(rp.buckets[i]);
    json_decref(rp.critical);
    rk__lists_free(rp.names);
    rk__ctl_conn_close(&k);
    rk__config_free(cfg);
    return rc;
}
