/* tests/integration/test-report.c - riskctl report end to end: a known
 * quarter (2025Q3, with June events so that the previous quarter exists)
 * of filings, scans, ratings, cases, complaints and reviews for three
 * units goes through a real riskd; one visit reported without a filing
 * raises a critical alert that stays open. riskctl report --period quarter
 * --at 2025Q3 writes the bulletin; the file must carry no http:// or
 * https:// address (nothing to fetch), then headless Chromium prints it to
 * PDF and pdftotext must find the title, the section titles, a unit's name
 * from the names list, the headline figures riskd wrote for the quarter,
 * and at least one page per section (print CSS page breaks). The quarter
 * drains in one fast backlog, yet its three months are in Redis and in
 * the page's monthly chart. Units U1 and U2 are in region R1, U3 in R2:
 * --scope region ranks exactly a region's units; so it does with four
 * partitions, whose shares the report sums. Chromium
 * (Debian `chromium`) and pdftotext (`poppler-utils`) missing is a
 * failure, not a skip: .ci/run installs them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"

#define N_FILINGS 24                /* planned in Q3: 8 per month */

typedef struct fixture {
    it_env env;
    char dir[256];
    char cfg[300];
    int parts;                      /* partitions (0: none) */
    char task[64][16];              /* with partitions: each task's unit, */
    int task_unit[64];              /* to route its scans and ratings */
    int ntasks;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL)
        return -1;
    if (it_tmpdir(f->dir, sizeof(f->dir), "report") != 0)
        return -1;
    snprintf(f->cfg, sizeof(f->cfg), "%s/ctl.json", f->dir);
    if (it_write_config(f->cfg, f->env.redis.port, "{}") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

/* CRC-32 as zlib computes it (the partition rule riskd(8) gives
 * producers). */
static uint32_t crc32_of(const char *s)
{
    uint32_t c = 0xffffffffu;
    for (; *s; s++) {
        c ^= (unsigned char)*s;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* The value of "field":"..." in the JSON text ev, copied into out. */
static bool field(const char *ev, const char *name, char *out, size_t n)
{
    char pat[40];
    const char *p, *q;
    snprintf(pat, sizeof(pat), "\"%s\":\"", name);
    if ((p = strstr(ev, pat)) == NULL)
        return false;
    p += strlen(pat);
    if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= n)
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return true;
}

/* XADD an event; with partitions, to the partition of its unit as a
 * producer routes it (a scan or a rating by its task's filing), a tick to
 * every partition. */
static void add(fixture *f, bool scan, const char *fmt, ...)
{
    char buf[1024], unit[16], task[16], key[64];
    int p, i;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (f->parts <= 1) {
        it_xadd(f->env.c, scan ? "enforce:scan" : "enforce:case", buf, NULL, 0);
        return;
    }
    if (strstr(buf, "\"clock.tick\"") != NULL) {
        for (p = 0; p < f->parts; p++) {
            snprintf(key, sizeof(key), "%s:{%d}", scan ? "enforce:scan" : "enforce:case", p);
            it_xadd(f->env.c, key, buf, NULL, 0);
        }
        return;
    }
    if (!field(buf, "unit_id", unit, sizeof(unit))) {
        assert_true(field(buf, "task_id", task, sizeof(task)));
        for (i = 0; i < f->ntasks && strcmp(f->task[i], task) != 0; i++)
            ;
        assert_true(i < f->ntasks);
        snprintf(unit, sizeof(unit), "U%d", f->task_unit[i]);
    } else if (strstr(buf, "\"inspection.filed\"") != NULL) {
        assert_true(f->ntasks < 64 && field(buf, "task_id", task, sizeof(task)));
        snprintf(f->task[f->ntasks], sizeof(f->task[0]), "%s", task);
        f->task_unit[f->ntasks++] = atoi(unit + 1);
    }
    p = (int)(crc32_of(unit) % (uint32_t)f->parts);
    snprintf(key, sizeof(key), "%s:{%d}", scan ? "enforce:scan" : "enforce:case", p);
    it_xadd(f->env.c, key, buf, NULL, 0);
}

static void write_quarter(fixture *f)
{
    int i;
    /* June: the previous quarter */
    for (i = 0; i < 4; i++)
        add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-06-%02dT08:00:00+08:00\","
            "\"task_id\":\"P%d\",\"unit_id\":\"U%d\",\"officers\":[\"O%d\"],"
            "\"enterprise_id\":\"E%d\",\"region\":\"R%d\"}", 10 + i, i, 1 + i % 3, 1 + i % 3, i,
            i % 3 == 2 ? 2 : 1);
    /* Q3: 8 filings a month, 3 units; every one scanned, most in time */
    for (i = 0; i < N_FILINGS; i++) {
        int mon = 7 + i / 8, day = 2 + (i % 8) * 3;
        add(f, true, "{\"type\":\"inspection.filed\",\"ts\":\"2025-%02d-%02dT08:00:00+08:00\","
            "\"task_id\":\"T%02d\",\"unit_id\":\"U%d\",\"officers\":[\"O%d\"],"
            "\"enterprise_id\":\"E%d\",\"region\":\"R%d\"}", mon, day, i, 1 + i % 3, 1 + i % 3,
            i % 10, i % 3 == 2 ? 2 : 1);
        add(f, true, "{\"type\":\"inspection.scanned\",\"ts\":\"2025-%02d-%02dT%02d:30:00+08:00\","
            "\"task_id\":\"T%02d\",\"enterprise_id\":\"E%d\"}", mon, i % 5 == 4 ? day + 2 : day,
            i % 5 == 4 ? 9 : 8, i, i % 10);
        add(f, true, "{\"type\":\"inspection.rated\",\"ts\":\"2025-%02d-%02dT12:00:00+08:00\","
            "\"task_id\":\"T%02d\",\"enterprise_id\":\"E%d\",\"score\":%d}",
            mon, i % 5 == 4 ? day + 2 : day, i, i % 10, i % 4 == 0 ? 1 : 5);
    }
    /* a visit an enterprise reports, never filed: reported_without_filing */
    add(f, true, "{\"type\":\"inspection.reported\",\"ts\":\"2025-09-20T15:00:00+08:00\","
        "\"unit_id\":\"U2\",\"enterprise_id\":\"E77\",\"officers\":[\"O2\"]}");
    /* cases */
    for (i = 0; i < 6; i++) {
        add(f, false, "{\"type\":\"case.opened\",\"ts\":\"2025-08-%02dT10:00:00+08:00\","
            "\"case_id\":\"K%d\",\"unit_id\":\"U%d\",\"source\":\"report\","
            "\"enterprise_id\":\"E%d\",\"officers\":[\"O%d\"]}", 1 + i, i, 1 + i % 3, i,
            1 + i % 3);
        add(f, false, "{\"type\":\"case.decided\",\"ts\":\"2025-09-%02dT10:00:00+08:00\","
            "\"case_id\":\"K%d\",\"unit_id\":\"U%d\",\"fine\":%s,\"leniency\":\"%s\"}", 1 + i, i,
            1 + i % 3, i == 0 ? "20576.13" : "20576", i % 2 ? "lighter" : "none");
    }
    add(f, false, "{\"type\":\"case.complaint\",\"ts\":\"2025-08-15T10:00:00+08:00\","
        "\"complaint_id\":\"C1\",\"unit_id\":\"U1\",\"officers\":[\"O1\"]}");
    add(f, false, "{\"type\":\"case.review\",\"ts\":\"2025-09-25T10:00:00+08:00\","
        "\"case_id\":\"K1\",\"unit_id\":\"U2\",\"outcome\":\"revoked\"}");
    add(f, false, "{\"type\":\"case.review\",\"ts\":\"2025-09-26T10:00:00+08:00\","
        "\"case_id\":\"K2\",\"unit_id\":\"U3\",\"outcome\":\"upheld\"}");
    add(f, true, "{\"type\":\"clock.tick\",\"ts\":\"2025-09-30T23:00:00+08:00\"}");
    add(f, false, "{\"type\":\"clock.tick\",\"ts\":\"2025-09-30T23:00:00+08:00\"}");
}

/* riskd has written the quarter (all its filings and the unfiled visit) and
 * the open critical alert. */
static bool written(void *arg)
{
    fixture *f = arg;
    redisReply *r = it_cmd(f->env.c, "HGET riskd:ind:all:all:2025Q3 filings");
    bool ok = r->type == REDIS_REPLY_STRING && atoi(r->str) == N_FILINGS;
    freeReplyObject(r);
    if (!ok)
        return false;
    r = it_cmd(f->env.c, "HGET riskd:ind:all:all:2025Q3 unfiled");
    ok = r->type == REDIS_REPLY_STRING && atoi(r->str) == 1;
    freeReplyObject(r);
    return ok && it_int(f->env.c, "EXISTS riskd:ind:all:all:2025Q2") == 1 &&
           it_int(f->env.c, "HLEN riskd:open") >= 1;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;
    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL)
        buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* text with every white-space character removed (pdftotext breaks lines). */
static void squeeze(char *s)
{
    char *w = s;
    for (; *s; s++)
        if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '\f' && *s != '\r')
            *w++ = *s;
    *w = '\0';
}

static void has(const char *text, const char *want, const char *what)
{
    char *w = strdup(want);
    assert_non_null(w);
    squeeze(w);
    if (strstr(text, w) == NULL)
        fail_msg("%s: \"%s\" not found", what, want);
    free(w);
}

/* The units ranked in the page at path (its units section): each of
 * want[] in it, none of not[]. */
static void ranks(const char *path, const char *const *want, const char *const *not)
{
    char *page = slurp(path), *sec, *end;
    assert_non_null(page);
    sec = strstr(page, "<section id=\"units\">");
    assert_non_null(sec);
    end = strstr(sec, "</section>");
    assert_non_null(end);
    *end = '\0';
    for (; *want != NULL; want++)
        if (strstr(sec, *want) == NULL)
            fail_msg("%s: unit %s not ranked", path, *want);
    for (; *not != NULL; not++)
        if (strstr(sec, *not) != NULL)
            fail_msg("%s: unit %s ranked, not in the region", path, *not);
    free(page);
}

/* riskctl report --scope region for R1 (units U1, U2) and R2 (U3) into
 * html: each ranks exactly its region's units. */
static void regions_ranked(fixture *f, itc_result *r, const char *html)
{
    static const char *const want[2][3] = {{">U1<", ">U2<", NULL}, {">U3<", NULL, NULL}};
    static const char *const not[2][3] = {{"U3", NULL, NULL}, {"U1", "U2", NULL}};
    for (int i = 0; i < 2; i++) {
        const char *a[] = {"-c", f->cfg, "report", "--period", "quarter", "--at", "2025Q3",
                           "--scope", "region", "--key", i == 0 ? "R1" : "R2", "--top", "0",
                           "--out", html, NULL};
        itc_run(r, f->dir, 30000, a);
        if (r->status != 0)
            fail_msg("riskctl report --scope region --key R%d: exit %d: %s", i + 1, r->status,
                     r->err);
        ranks(html, want[i], not[i]);
    }
}

static void test_quarter_report(void **state)
{
    fixture *f = *state;
    itc_result *r = malloc(sizeof(*r));
    char html[300], pdf[300], txt[300], cmd[1400], names[300], rate[32];
    char *page, *text;
    redisReply *h;
    FILE *fp;

    assert_non_null(r);
    if (access("/usr/bin/chromium", X_OK) != 0 || access("/usr/bin/pdftotext", X_OK) != 0 ||
        access("/usr/bin/pdfinfo", X_OK) != 0)
        fail_msg("test-report needs chromium and poppler-utils (pdftotext, pdfinfo): "
                 "apt-get install chromium poppler-utils fonts-noto-cjk");
    write_quarter(f);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, "{}"), 0);
    if (!it_wait_until(written, f, 30000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not write the quarter's indicators");
    }
    snprintf(names, sizeof(names), "%s/names.csv", f->dir);
    fp = fopen(names, "wb");
    assert_non_null(fp);
    fputs("kind,id,name\nunit,U1,银川市兴庆区市场监督管理局\nunit,U2,金凤区市场监督管理局\n",
          fp);
    fclose(fp);
    {
        const char *a[] = {"-c", f->cfg, "lists", "load", "names", names, NULL};
        itc_run(r, f->dir, 15000, a);
        assert_int_equal(r->status, 0);
    }

    snprintf(html, sizeof(html), "%s/q3.html", f->dir);
    {
        const char *a[] = {"-c", f->cfg, "report", "--period", "quarter", "--at", "2025Q3",
                           "--out", html, NULL};
        itc_run(r, f->dir, 30000, a);
        if (r->status != 0)
            fail_msg("riskctl report: exit %d: %s", r->status, r->err);
    }
    /* every month of the quarter is in Redis, though drained at once */
    for (int m = 7; m <= 9; m++) {
        h = it_cmd(f->env.c, "HGET riskd:ind:all:all:2025-%02d filings", m);
        if (h->type != REDIS_REPLY_STRING || atoi(h->str) != N_FILINGS / 3)
            fail_msg("riskd:ind:all:all:2025-%02d: not %d filings", m, N_FILINGS / 3);
        freeReplyObject(h);
    }
    page = slurp(html);
    assert_non_null(page);
    /* the monthly chart has the three months, no month is missing */
    assert_non_null(strstr(page, "2025-07"));
    assert_null(strstr(page, "Redis 中无该月数据"));
    /* self-contained: nothing to fetch */
    assert_null(strstr(page, "http://"));
    assert_null(strstr(page, "https://"));
    assert_null(strstr(page, "<script"));
    assert_null(strstr(page, "<img"));
    assert_null(strstr(page, "<link"));
    assert_null(strstr(page, "url("));
    assert_non_null(strstr(page, "<svg"));
    assert_non_null(strstr(page, "Noto Sans CJK SC"));
    assert_non_null(strstr(page, "break-inside:avoid"));
    assert_non_null(strstr(page, "break-before:page"));
    free(page);

    /* printed by Chromium, read back */
    snprintf(pdf, sizeof(pdf), "%s/q3.pdf", f->dir);
    snprintf(txt, sizeof(txt), "%s/q3.txt", f->dir);
    snprintf(cmd, sizeof(cmd), "cd %s && HOME=%s timeout 90 /usr/bin/chromium --headless "
             "--no-sandbox --disable-gpu --no-pdf-header-footer --print-to-pdf=%s file://%s "
             "> chromium.log 2>&1", f->dir, f->dir, pdf, html);
    if (system(cmd) != 0 || access(pdf, R_OK) != 0)
        fail_msg("chromium could not print %s (see %s/chromium.log)", html, f->dir);
    snprintf(cmd, sizeof(cmd), "/usr/bin/pdftotext -layout -enc UTF-8 %s %s", pdf, txt);
    assert_int_equal(system(cmd), 0);
    text = slurp(txt);
    assert_non_null(text);
    squeeze(text);
    has(text, "2025年第三季度执法监督季度白皮书", "title");
    has(text, "一、主要指标", "section");
    has(text, "二、单位风险排名", "section");
    has(text, "三、预警分布（按检测器和规则）", "section");
    has(text, "四、未处理的严重预警", "section");
    has(text, "银川市兴庆区市场监督管理局", "unit name");
    has(text, "金凤区市场监督管理局", "unit name");
    has(text, "reported_without_filing", "the critical alert's rule");
    /* the headline figures riskd wrote: filings, fines, filing rate */
    has(text, "备案检查数24", "filings");
    has(text, "罚没款（元）123456.13", "fines");
    h = it_cmd(f->env.c, "HGET riskd:ind:all:all:2025Q3 filing_rate");
    assert_int_equal(h->type, REDIS_REPLY_STRING);
    snprintf(rate, sizeof(rate), "备案率%.1f%%", atof(h->str) * 100);
    freeReplyObject(h);
    has(text, rate, "filing rate");
    has(text, "96.0%", "filing rate 24/25");
    free(text);
    /* a page per section at least */
    snprintf(cmd, sizeof(cmd), "/usr/bin/pdfinfo %s | awk '/^Pages:/ { n = $2 } END { exit !(n >= 5) }'",
             pdf);
    if (system(cmd) != 0)
        fail_msg("the PDF has fewer than 5 pages: sections do not start on a page of their own");

    /* English on request; a unit's own report */
    {
        const char *a[] = {"-c", f->cfg, "report", "--period", "quarter", "--at", "2025Q3",
                           "--scope", "unit", "--key", "U2", "--lang", "en", "--out", html,
                           NULL};
        itc_run(r, f->dir, 30000, a);
        assert_int_equal(r->status, 0);
        page = slurp(html);
        assert_non_null(page);
        assert_non_null(strstr(page, "Enforcement supervision white paper, 2025 Q3"));
        assert_non_null(strstr(page, "1. Headline indicators"));
        assert_non_null(strstr(page, "金凤区市场监督管理局"));
        assert_non_null(strstr(page, "reported_without_filing"));
        assert_null(strstr(page, "银川市兴庆区市场监督管理局"));
        free(page);
    }
    /* a region's report ranks that region's units only */
    regions_ranked(f, r, html);
    /* refusals */
    {
        const char *a[] = {"-c", f->cfg, "report", "--period", "quarter", "--at", "2025-09",
                           "--out", html, NULL};
        itc_run(r, f->dir, 30000, a);
        assert_int_equal(r->status, 1);
        assert_non_null(strstr(r->err, "--at"));
    }
    {
        const char *a[] = {"-c", f->cfg, "report", "--period", "quarter", "--at", "2024Q1",
                           "--out", html, NULL};
        itc_run(r, f->dir, 30000, a);
        assert_int_equal(r->status, 1);
        assert_non_null(strstr(r->err, "no indicators"));
    }
    free(r);
}

/* Every partition's share of the quarter is written (:p<N> hashes). */
static bool written_parts(void *arg)
{
    fixture *f = arg;
    int filings = 0;
    for (int p = 0; p < f->parts; p++) {
        redisReply *r = it_cmd(f->env.c, "HGET riskd:ind:all:all:2025Q3:p%d filings", p);
        if (r->type == REDIS_REPLY_STRING)
            filings += atoi(r->str);
        freeReplyObject(r);
    }
    return filings == N_FILINGS;
}

/* With four partitions (U1 and U3 in partition 0, U2 in 2: crc32), each
 * writes its units' share; the report sums them (the quarter's filings)
 * and a region's report still ranks exactly the region's units, whose
 * hashes are in different partitions. */
static void test_partitioned_region_report(void **state)
{
    fixture *f = *state;
    itc_result *r = malloc(sizeof(*r));
    char html[300], *page;
    const char *cfg = "{\"partitions\":4}";

    assert_non_null(r);
    assert_true(crc32_of("123456789") == 0xcbf43926u);
    assert_true(crc32_of("U1") % 4 == 0 && crc32_of("U2") % 4 == 2 && crc32_of("U3") % 4 == 0);
    f->parts = 4;
    assert_int_equal(it_write_config(f->cfg, f->env.redis.port, cfg), 0);
    write_quarter(f);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, cfg), 0);
    if (!it_wait_until(written_parts, f, 30000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("riskd did not write both partitions' shares of the quarter");
    }
    snprintf(html, sizeof(html), "%s/q3p.html", f->dir);
    regions_ranked(f, r, html);
    {
        const char *a[] = {"-c", f->cfg, "report", "--period", "quarter", "--at", "2025Q3",
                           "--out", html, NULL};
        itc_run(r, f->dir, 30000, a);
        if (r->status != 0)
            fail_msg("riskctl report: exit %d: %s", r->status, r->err);
        page = slurp(html);
        assert_non_null(page);
        squeeze(page);
        has(page, "备案检查数</td><td class=\"n\">24</td>", "the quarter's filings summed over the partitions");
        free(page);
    }
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quarter_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitioned_region_report, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
