/* daemon/riskctl/sample.c - riskctl sample: the month's draw of enforcement
 * actions for accompanying supervision, stratified by unit, reproducible
 * from a published seed, so that anyone can draw it again and check it.
 *
 * The eligible actions come from the input streams themselves (streams.scan
 * and streams.case, every partition's, read whole with XRANGE): riskd keeps
 * only aggregates, and the raw events are what an auditor has too.
 *
 *   inspection  every inspection.filed, the last one read per task_id (an
 *               amendment replaces the filing; streams.scan is read before
 *               streams.case, each in entry order), whose planned_at lies
 *               in the period (clock.timezone).
 *   case        every case.decided, the last one read per case_id, whose ts
 *               lies in the period and whose fine >= --min-fine; officers
 *               (and the enterprise when the decision has none) from the
 *               last case.opened of the case.
 *
 * The draw (riskctl(1), SAMPLE ALGORITHM, says it in full): per unit, the
 * action ids sorted bytewise, each id's key the first 8 bytes of
 * SHA-256(seed, 0x00, id) read big-endian, and the k smallest keys taken
 * (ties by id), k = min(n, max(1, ceil(share * n - 1e-9))); with
 * --weighted, share * n * w * N / S in place of share * n, where w = 1 +
 * the unit's open alerts, N = sum of n and S = sum of n * w over the
 * units. SHA-256 is here (FIPS 180-4) so riskctl needs no crypto library. */
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

/* ===================================================================
 * SHA-256
 * =================================================================== */

typedef struct sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
} sha256;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha256 *s, const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
    e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
    for (i = 0; i < 64; i++) {
        t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sha_init(sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof(h0));
    s->len = 0;
    s->nbuf = 0;
}

static void sha_update(sha256 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->len += n;
    while (n > 0) {
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        n -= take;
        if (s->nbuf == 64) {
            sha_block(s, s->buf);
            s->nbuf = 0;
        }
    }
}

static void sha_final(sha256 *s, unsigned char out[32])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    int i;
    sha_update(s, &pad, 1);
    while (s->nbuf != 56)
        sha_update(s, &zero, 1);
    for (i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_update(s, lenb, 8);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

/* The draw key of id: the first 8 bytes of SHA-256(seed 0x00 id), big-endian. */
static uint64_t draw_key(const char *seed, const char *id)
{
    sha256 s;
    unsigned char d[32], zero = 0;
    uint64_t k = 0;
    int i;
    sha_init(&s);
    sha_update(&s, seed, strlen(seed));
    sha_update(&s, &zero, 1);
    sha_update(&s, id, strlen(id));
    sha_final(&s, d);
    for (i = 0; i < 8; i++)
        k = k << 8 | d[i];
    return k;
}

/* ===================================================================
 * The eligible actions
 * =================================================================== */

typedef struct action {
    char *id, *unit, *enterprise, *officers;    /* officers: ids joined by "," */
    int64_t when;                   /* planned_at (inspection) or ts (case) */
    double fine, confiscation;
    int kind;                       /* rk_inspection_kind */
    size_t seq;                     /* read order */
    uint64_t key;
    int picked;
} action;

typedef struct actions {
    action *v;
    size_t n, cap;
} actions;

static void push(actions *a, const rk_event *ev, const char *id, int64_t when)
{
    action *x;
    size_t i, len = 0;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 1024;
        if ((a->v = realloc(a->v, a->cap * sizeof(*a->v))) == NULL) {
            rk__ctl_errx("out of memory");
            exit(EX_FAIL);
        }
    }
    x = &a->v[a->n];
    memset(x, 0, sizeof(*x));
    x->id = strdup(id);
    x->unit = strdup(ev->unit_id ? ev->unit_id : "");
    x->enterprise = ev->enterprise_id ? strdup(ev->enterprise_id) : NULL;
    for (i = 0; i < ev->n_officers; i++)
        len += strlen(ev->officers[i]) + 1;
    x->officers = calloc(1, len + 1);
    for (i = 0; x->officers && i < ev->n_officers; i++) {
        if (i)
            strcat(x->officers, ",");
        strcat(x->officers, ev->officers[i]);
    }
    x->when = when;
    x->fine = ev->fine;
    x->confiscation = ev->confiscation;
    x->kind = ev->kind;
    x->seq = a->n;
    if (x->id == NULL || x->unit == NULL || x->officers == NULL) {
        rk__ctl_errx("out of memory");
        exit(EX_FAIL);
    }
    a->n++;
}

static void action_free(action *x)
{
    free(x->id);
    free(x->unit);
    free(x->enterprise);
    free(x->officers);
}

/* Keep only the last one read of each id (sorted by id then). */
static int by_id_seq(const void *a, const void *b)
{
    const action *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

static void last_per_id(actions *a)
{
    size_t i, w = 0;
    if (a->n == 0)
        return;
    qsort(a->v, a->n, sizeof(*a->v), by_id_seq);
    for (i = 0; i < a->n; i++) {
        if (i + 1 < a->n && strcmp(a->v[i].id, a->v[i + 1].id) == 0) {
            action_free(&a->v[i]);
            continue;
        }
        a->v[w++] = a->v[i];
    }
    a->n = w;
}

/* The action of id in a (sorted by id, one per id), or NULL. */
static const action *find_id(const actions *a, const char *id)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(a->v[mid].id, id);
        if (c == 0)
            return &a->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

typedef struct stream_ctx {
    int kind_case;
    actions *main_, *opened;
    rk__event_mem mem;
} stream_ctx;

static void take_entry(void *ud, const char *data, size_t len)
{
    stream_ctx *c = ud;
    rk_event ev;
    char err[RK_ERRLEN];
    memset(&ev, 0, sizeof(ev));
    if (rk__event_parse(data, len, &ev, &c->mem, err, sizeof(err)) != RK_PARSE_OK)
        return;
    if (!c->kind_case && ev.type == RK_EV_INSPECTION_FILED)
        push(c->main_, &ev, ev.task_id, ev.planned_at);
    else if (c->kind_case && ev.type == RK_EV_CASE_DECIDED)
        push(c->main_, &ev, ev.case_id, ev.ts);
    else if (c->kind_case && ev.type == RK_EV_CASE_OPENED)
        push(c->opened, &ev, ev.case_id, ev.ts);
}

/* Read one stream whole, adding the events of interest. 0, or an exit code. */
static int read_stream(conn *k, const char *stream, int kind_case, actions *main_,
                       actions *opened)
{
    stream_ctx c;
    int rc;
    memset(&c, 0, sizeof(c));
    c.kind_case = kind_case;
    c.main_ = main_;
    c.opened = opened;
    rc = rk__ctl_each_data(k, stream, "-", PAGE, take_entry, &c);
    rk__event_mem_free(&c.mem);
    return rc;
}

/* ===================================================================
 * The draw
 * =================================================================== */

typedef struct unit_stat {
    const char *unit;
    size_t first, n, k;             /* its actions: v[first .. first + n) */
    long long open;                 /* open alerts (--weighted) */
} unit_stat;

static int by_unit_id(const void *a, const void *b)
{
    const action *x = a, *y = b;
    int c = strcmp(x->unit, y->unit);
    return c ? c : strcmp(x->id, y->id);
}

static int by_key(const void *a, const void *b)
{
    const action *x = *(action *const *)a, *y = *(action *const *)b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->id, y->id);
}

typedef struct open_ud { unit_stat *u; size_t nu; } open_ud;

static void count_open(json_t *a, void *ud)
{
    open_ud *o = ud;
    const char *unit = json_string_value(json_object_get(json_object_get(a, "subject"),
                                                         "unit_id"));
    size_t lo = 0, hi = o->nu;
    if (unit == NULL)
        return;
    while (lo < hi) {               /* units are sorted */
        size_t mid = (lo + hi) / 2;
        int c = strcmp(o->u[mid].unit, unit);
        if (c == 0) {
            o->u[mid].open++;
            return;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
}

static int usage(FILE *f)
{
    fprintf(f,
            "usage: riskctl [options] sample [--period month|quarter] [--at 2025-09|2025Q3]\n"
            "         --seed S [--share F] [--kind inspection|case] [--min-fine N]\n"
            "         [--weighted] [--json]\n"
            "Draws the period's targets for accompanying supervision: per unit the share F\n"
            "(default 0.2) of its filed inspections (or decided cases with fine >= N), at\n"
            "least one per unit that has any, reproducible from the seed S; riskctl(1),\n"
            "SAMPLE ALGORITHM, states the algorithm. Default period: the month of riskd's\n"
            "watermark (riskd:ind:periods).\n"
            "Exit status: 0 done, 1 bad usage, 2 Redis cannot be reached.\n");
    return f == stdout ? EX_OK : EX_FAIL;
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

static const char *kind_word(int kind, bool en)
{
    static const char *const w_en[] = {"plan", "plan", "random", "complaint", "special", "other"};
    static const char *const w_zh[] = {"计划", "计划", "随机", "投诉", "专项", "其他"};
    if (kind < 0 || kind > 5)
        kind = 0;
    return en ? w_en[kind] : w_zh[kind];
}

/* The reason x could be drawn, one sentence. */
static void reason_of(const action *x, const unit_stat *u, bool kind_case, double min_fine,
                      bool en, int tz, char *buf, size_t len)
{
    char day[40], amt[40], minf[40];
    rk__format_rfc3339(x->when, tz, day, sizeof(day));
    day[10] = '\0';
    if (!kind_case) {
        if (en)
            snprintf(buf, len, "inspection filed for %s (kind %s); %zu of the unit's %zu",
                     day, kind_word(x->kind, en), u->k, u->n);
        else
            snprintf(buf, len, "%s%s检查备案（本单位%zu项中抽取%zu项）", day,
                     kind_word(x->kind, en), u->n, u->k);
        return;
    }
    fmt_amount(x->fine, amt, sizeof(amt));
    fmt_amount(min_fine, minf, sizeof(minf));
    if (en)
        snprintf(buf, len, "penalty decided %s, fine %s >= %s; %zu of the unit's %zu", day, amt,
                 minf, u->k, u->n);
    else
        snprintf(buf, len, "%s作出处罚决定，罚款%s元（不低于%s元）（本单位%zu项中抽取%zu项）", day,
                 amt, minf, u->n, u->k);
}

/* "name (id)" of officers, from the names list, joined. */
static void officers_text(const rk__list *names, const char *ids, char *buf, size_t len)
{
    char *copy = strdup(ids), *save = NULL, *t;
    size_t n = 0;
    buf[0] = '\0';
    if (copy == NULL)
        return;
    for (t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const char *nm = names ? rk__lists_name(names, "officer", t) : NULL;
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "," : "",
                              nm ? nm : t);
        if (n >= len)
            break;
    }
    free(copy);
}

/* Terminal columns of UTF-8 text (CJK wide). */
static int dwidth(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int w = 0;
    for (; *p; p++)
        if ((*p & 0xC0) != 0x80)
            w += *p >= 0xE3 && *p <= 0xEF ? 2 : 1;
    return w;
}

static void cell(const char *s, int w)
{
    int pad = w - dwidth(s);
    rk__ctl_put_clean(stdout, s);
    printf("%*s", pad > 0 ? pad + 1 : 1, "");
}

int rk__ctl_sample(int argc, char **argv)
{
    enum { L_PERIOD = 300, L_AT, L_SHARE, L_SEED, L_KIND, L_MINFINE, L_WEIGHTED, L_JSON };
    static const struct option lo[] = {
        RK_CTL_CONN_LONGOPTS,
        {"period", required_argument, NULL, L_PERIOD}, {"at", required_argument, NULL, L_AT},
        {"share", required_argument, NULL, L_SHARE}, {"seed", required_argument, NULL, L_SEED},
        {"kind", required_argument, NULL, L_KIND},
        {"min-fine", required_argument, NULL, L_MINFINE},
        {"weighted", no_argument, NULL, L_WEIGHTED}, {"json", no_argument, NULL, L_JSON},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    opts o;
    rk__config *cfg = NULL;
    conn k;
    const char *period = "month", *at = NULL, *seed = NULL, *kind = "inspection";
    double share = 0.2, min_fine = 0;
    bool weighted = false, json = false, en, kind_case;
    char label[16], *end;
    int opt, rc = EX_OK, want, p, got;
    int32_t idx;
    int64_t from, to;
    actions acts = {0}, opened = {0};
    unit_stat *units = NULL;
    size_t nu = 0, i, j, total_n = 0, total_k = 0;
    rk__list *names = NULL;
    long double sum_nw = 0;

    memset(&o, 0, sizeof(o));
    o.db = -1;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:hp:a:n:", lo, NULL)) != -1) {
        switch (opt) {
        case L_PERIOD: period = optarg; break;
        case L_AT: at = optarg; break;
        case L_SEED: seed = optarg; break;
        case L_KIND: kind = optarg; break;
        case L_WEIGHTED: weighted = true; break;
        case L_JSON: json = true; break;
        case L_SHARE:
            share = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(share > 0 && share <= 1)) {
                rk__ctl_errx("--share: expected a number above 0 and at most 1 (0.2)");
                return EX_FAIL;
            }
            break;
        case L_MINFINE:
            min_fine = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(min_fine >= 0 && min_fine < 1e15)) {
                rk__ctl_errx("--min-fine: expected an amount in yuan >= 0");
                return EX_FAIL;
            }
            break;
        case 'h': return usage(stdout);
        default:
            if ((got = rk__ctl_conn_opt(&o, opt, optarg)) > 0)
                break;
            if (got < 0)
                return EX_FAIL;
            rk__ctl_errx("sample: unknown option or missing value in %s (riskctl sample -h shows "
                         "its usage)", argv[optind - 1]);
            return EX_FAIL;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "sample") != 0 || optind + 1 != argc) {
        rk__ctl_errx("sample: takes no arguments (riskctl sample -h shows its usage)");
        return EX_FAIL;
    }
    if (strcmp(period, "month") != 0 && strcmp(period, "quarter") != 0) {
        rk__ctl_errx("--period: expected month or quarter");
        return EX_FAIL;
    }
    want = period[0] == 'm' ? 1 : 2;
    if (strcmp(kind, "inspection") != 0 && strcmp(kind, "case") != 0) {
        rk__ctl_errx("--kind: expected inspection or case");
        return EX_FAIL;
    }
    kind_case = kind[0] == 'c';
    if (seed == NULL || seed[0] == '\0') {
        rk__ctl_errx("--seed S is required: publish it, so that the draw can be checked");
        return EX_FAIL;
    }
    if (at != NULL && rk__ind_parse_label(at, &idx) != want) {
        rk__ctl_errx("--at: expected a %s such as %s", period, want == 1 ? "2025-09" : "2025Q3");
        return EX_FAIL;
    }
    if (rk__ctl_load_config(&o, &cfg) != 0)
        return EX_FAIL;
    en = cfg->alerts_language != NULL && strcmp(cfg->alerts_language, "en") == 0;
    if (rk__ctl_conn_init(&k, cfg, &o) != 0) {
        rk__config_free(cfg);
        return EX_REDIS;
    }
    if (at == NULL) {
        got = rk__ctl_ind_label(&k, period, label, sizeof(label));
        if (got != 0) {
            if (got > 0)
                rk__ctl_errx("--at: no current %s in Redis yet (riskd:ind:periods); give it",
                             period);
            rc = got < 0 ? EX_REDIS : EX_FAIL;
            goto done;
        }
        rk__ind_parse_label(label, &idx);
    } else {
        snprintf(label, sizeof(label), "%s", at);
    }
    if (want == 1) {
        from = rk__ind_month_start(idx, cfg->tz_offset_s);
        to = rk__ind_month_start(idx + 1, cfg->tz_offset_s);
    } else {
        from = rk__ind_quarter_start(idx, cfg->tz_offset_s);
        to = rk__ind_quarter_start(idx + 1, cfg->tz_offset_s);
    }

    /* the events: streams.scan then streams.case, every partition's */
    for (int s = 0; s < RK_STREAM_COUNT && rc == EX_OK; s++)
        for (p = 0; p < cfg->partitions && rc == EX_OK; p++) {
            rk__config *pc = NULL;
            char err[RK_ERRLEN];
            if (rk__config_partition(cfg, p, &pc, err, sizeof(err)) != 0) {
                rk__ctl_errx("%s", err);
                rc = EX_FAIL;
                break;
            }
            rc = read_stream(&k, pc->stream_key[s], kind_case, &acts, &opened);
            rk__config_free(pc);
        }
    if (rc != EX_OK)
        goto done;
    last_per_id(&acts);
    last_per_id(&opened);
    /* eligibility: in the period (and the fine), with a unit */
    for (i = 0, j = 0; i < acts.n; i++) {
        action *x = &acts.v[i];
        bool ok = x->when >= from && x->when < to && x->unit[0] != '\0' &&
                  (!kind_case || x->fine >= min_fine);
        if (ok && kind_case) {      /* officers and enterprise from the opening */
            const action *op = find_id(&opened, x->id);
            if (op != NULL) {
                free(x->officers);
                x->officers = strdup(op->officers);
                if (x->enterprise == NULL && op->enterprise != NULL)
                    x->enterprise = strdup(op->enterprise);
            }
        }
        if (ok)
            acts.v[j++] = *x;
        else
            action_free(x);
    }
    acts.n = j;
    qsort(acts.v, acts.n, sizeof(*acts.v), by_unit_id);
    for (i = 0; i < acts.n; i++) {
        if (nu == 0 || strcmp(units[nu - 1].unit, acts.v[i].unit) != 0) {
            units = realloc(units, (nu + 1) * sizeof(*units));
            if (units == NULL) {
                rk__ctl_errx("out of memory");
                exit(EX_FAIL);
            }
            memset(&units[nu], 0, sizeof(*units));
            units[nu].unit = acts.v[i].unit;
            units[nu].first = i;
            nu++;
        }
        units[nu - 1].n++;
        acts.v[i].key = draw_key(seed, acts.v[i].id);
    }
    if (weighted && nu > 0) {
        open_ud ou = {units, nu};
        if ((rc = rk__ctl_scan_open(&k, cfg, count_open, &ou)) != EX_OK)
            goto done;
    }
    for (i = 0; i < nu; i++) {
        total_n += units[i].n;
        sum_nw += (long double)units[i].n * (long double)(1 + units[i].open);
    }
    for (i = 0; i < nu; i++) {
        unit_stat *u = &units[i];
        action **sorted = malloc(u->n * sizeof(*sorted));
        double x;
        long long kk;
        if (sorted == NULL) {
            rk__ctl_errx("out of memory");
            exit(EX_FAIL);
        }
        if (weighted) {
            /* integers exact in a double up to 2^53 */
            double prod = (double)u->n * (double)(1 + u->open) * (double)total_n;
            x = share * prod / (double)sum_nw;
        } else {
            x = share * (double)u->n;
        }
        kk = (long long)ceil(x - 1e-9);
        if (kk < 1)
            kk = 1;
        u->k = (size_t)kk > u->n ? u->n : (size_t)kk;
        for (j = 0; j < u->n; j++)
            sorted[j] = &acts.v[u->first + j];
        qsort(sorted, u->n, sizeof(*sorted), by_key);
        for (j = 0; j < u->k; j++)
            sorted[j]->picked = 1;
        total_k += u->k;
        free(sorted);
    }
    names = rk__ctl_names_load(&k);

    if (json) {
        json_t *doc = json_object(), *us = json_array(), *ts = json_array();
        char *s, buf[600];
        json_object_set_new(doc, "period", json_string(label));
        json_object_set_new(doc, "kind", json_string(kind));
        json_object_set_new(doc, "share", json_real(share));
        json_object_set_new(doc, "seed", json_string(seed));
        json_object_set_new(doc, "weighted", json_boolean(weighted));
        if (kind_case)
            json_object_set_new(doc, "min_fine", json_real(min_fine));
        json_object_set_new(doc, "algorithm", json_string("sha256-v1"));
        json_object_set_new(doc, "eligible", json_integer((json_int_t)total_n));
        json_object_set_new(doc, "drawn", json_integer((json_int_t)total_k));
        for (i = 0; i < nu; i++) {
            json_t *u = json_object();
            const char *nm = names ? rk__lists_name(names, "unit", units[i].unit) : NULL;
            json_object_set_new(u, "unit_id", json_string(units[i].unit));
            json_object_set_new(u, "name", nm ? json_string(nm) : json_null());
            json_object_set_new(u, "eligible", json_integer((json_int_t)units[i].n));
            json_object_set_new(u, "drawn", json_integer((json_int_t)units[i].k));
            if (weighted) {
                json_object_set_new(u, "open_alerts", json_integer(units[i].open));
                json_object_set_new(u, "weight", json_integer(1 + units[i].open));
            }
            json_array_append_new(us, u);
        }
        for (i = 0; i < nu; i++)
            for (j = 0; j < units[i].n; j++) {
                const action *x = &acts.v[units[i].first + j];
                json_t *t, *offs;
                char day[40], hex[20], *copy, *save = NULL, *tok;
                if (!x->picked)
                    continue;
                t = json_object();
                offs = json_array();
                json_object_set_new(t, "unit_id", json_string(x->unit));
                json_object_set_new(t, kind_case ? "case_id" : "task_id", json_string(x->id));
                copy = strdup(x->officers);
                for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
                     tok = strtok_r(NULL, ",", &save))
                    json_array_append_new(offs, json_string(tok));
                free(copy);
                json_object_set_new(t, "officers", offs);
                json_object_set_new(t, "enterprise_id",
                                    x->enterprise ? json_string(x->enterprise) : json_null());
                rk__format_rfc3339(x->when, cfg->tz_offset_s, day, sizeof(day));
                day[10] = '\0';
                json_object_set_new(t, "date", json_string(day));
                if (kind_case)
                    json_object_set_new(t, "fine", json_real(x->fine));
                reason_of(x, &units[i], kind_case, min_fine, en, cfg->tz_offset_s, buf,
                          sizeof(buf));
                json_object_set_new(t, "reason", json_string(buf));
                snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)x->key);
                json_object_set_new(t, "key", json_string(hex));
                json_array_append_new(ts, t);
            }
        json_object_set_new(doc, "units", us);
        json_object_set_new(doc, "targets", ts);
        s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(doc);
    } else {
        static const char *const h_en[] = {"unit", "id", "officers", "enterprise", "date",
                                           "reason"};
        static const char *const h_zh[] = {"单位", "编号", "执法人员", "企业", "日期",
                                           "抽取依据"};
        const char *const *h = en ? h_en : h_zh;
        int w[5] = {0, 0, 0, 0, 10};
        char buf[600], offs[600];
        for (i = 0; i < 5; i++)
            w[i] = dwidth(h[i]);
        for (i = 0; i < acts.n; i++) {
            const action *x = &acts.v[i];
            const char *un = names ? rk__lists_name(names, "unit", x->unit) : NULL;
            const char *enm = x->enterprise && names ?
                              rk__lists_name(names, "enterprise", x->enterprise) : NULL;
            if (!x->picked)
                continue;
            officers_text(names, x->officers, offs, sizeof(offs));
            if (dwidth(un ? un : x->unit) > w[0]) w[0] = dwidth(un ? un : x->unit);
            if (dwidth(x->id) > w[1]) w[1] = dwidth(x->id);
            if (dwidth(offs) > w[2]) w[2] = dwidth(offs);
            if (dwidth(enm ? enm : x->enterprise ? x->enterprise : "-") > w[3])
                w[3] = dwidth(enm ? enm : x->enterprise ? x->enterprise : "-");
        }
        if (en)
            printf("%s supervision draw: %s, %zu of %zu eligible in %zu units, share %g, "
                   "seed %s%s\n", label, kind_case ? "decided cases" : "filed inspections",
                   total_k, total_n, nu, share, seed, weighted ? ", weighted by open alerts" : "");
        else
            printf("%s 随机抽取跟班监督对象：%s，%zu个单位共%zu项，抽取%zu项，比例%g，种子 %s%s\n",
                   label, kind_case ? "处罚决定" : "备案检查", nu, total_n, total_k, share,
                   seed, weighted ? "，按未处理预警加权" : "");
        for (i = 0; i < 5; i++)
            cell(h[i], w[i]);
        printf("%s\n", h[5]);
        for (i = 0; i < nu; i++)
            for (j = 0; j < units[i].n; j++) {
                const action *x = &acts.v[units[i].first + j];
                const char *un = names ? rk__lists_name(names, "unit", x->unit) : NULL;
                const char *enm = x->enterprise && names ?
                                  rk__lists_name(names, "enterprise", x->enterprise) : NULL;
                char day[40];
                if (!x->picked)
                    continue;
                officers_text(names, x->officers, offs, sizeof(offs));
                rk__format_rfc3339(x->when, cfg->tz_offset_s, day, sizeof(day));
                day[10] = '\0';
                cell(un ? un : x->unit, w[0]);
                cell(x->id, w[1]);
                cell(offs[0] ? offs : "-", w[2]);
                cell(enm ? enm : x->enterprise ? x->enterprise : "-", w[3]);
                cell(day, w[4]);
                reason_of(x, &units[i], kind_case, min_fine, en, cfg->tz_offset_s, buf,
                          sizeof(buf));
                rk__ctl_put_clean(stdout, buf);
                printf("\n");
            }
    }
done:
    for (i = 0; i < acts.n; i++)
        action_free(&acts.v[i]);
    for (i = 0; i < opened.n; i++)
        action_free(&opened.v[i]);
    free(acts.v);
    free(opened.v);
    free(units);
    rk__lists_free(names);
    rk__ctl_conn_close(&k);
    rk__config_free(cfg);
    return rc;
}
