/* lists.c - the reference lists: CSV in, validated tables out, lookups.
 *
 * Bureaus keep five lists in spreadsheets (riskctl(1), "lists"): whitelist,
 * benchmarks, exempt, credentials and names. This file owns everything
 * about them that does not talk to Redis:
 *
 *   parsing     a CSV file's bytes (UTF-8 with or without a BOM, RFC 4180
 *               quoting, CRLF or LF) are cut into fields by libcsv in strict
 *               mode, one physical line at a time so that every error names
 *               the line its record starts on. The first record is the
 *               header: it must name each of the kind's columns exactly
 *               once, in any order, and nothing else. Every field is then
 *               checked for its column (ids, counts, amounts, dates, fixed
 *               words; UTF-8 everywhere) and every row's key for
 *               uniqueness. The first error ends the parse with
 *               "line N, column NAME: <what was expected>".
 *   storing     a row is stored in Redis as compact JSON under a hash field
 *               (its key); rk__lists_from_json() rebuilds a table from those
 *               values with the same checks.
 *   looking up  a table is read-only once built: a hash index on the row
 *               key (and, for credentials, on the officer) answers the
 *               detectors' questions in O(1).
 *   in force    the tables riskd currently applies, one per kind, each
 *               replaced whole by rk__lists_install() (daemon/redis/
 *               lists_sync.c calls it when a new version appears). riskd is
 *               single-threaded: a detector that asks rk__lists_in_force()
 *               during a callback gets a table that stays valid until the
 *               callback returns.
 *
 * Memory: a table holds one allocation per row (its fields, back to back)
 * plus one index entry per row (and per officer for credentials). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>

#include "internal.h"
#include "riskd/map.h"

#define MAX_ROWS        1000000
#define MAX_ID_BYTES    256
#define MAX_TEXT_BYTES  1024
#define MAX_FIELDS      64          /* in a header row */
#define MAX_BYTES       (64u * 1024 * 1024)
#define NO_EXPIRY       INT32_MAX

/* ===================================================================
 * The kinds and their columns
 * =================================================================== */

enum coltype {
    T_ID,           /* non-empty, no control characters, <= MAX_ID_BYTES */
    T_OPT_ID,       /* the same, or empty */
    T_TEXT,         /* anything, may be empty; tab and newlines allowed */
    T_NAME,         /* T_TEXT, not empty */
    T_COUNT,        /* integer >= 0 */
    T_AMOUNT,       /* number >= 0, at most two decimals */
    T_DATE,         /* YYYY-MM-DD */
    T_OPT_DATE,     /* the same, or empty */
    T_CHOICE        /* one of a few words */
};

static const char *const exempt_words[] = {"no_penalty", "lighter", NULL};
static const char *const name_words[] = {
    "unit", "officer", "enterprise", "region", "item", "domain", NULL
};

typedef struct colspec {
    const char *name;
    enum coltype type;
    const char *const *words;       /* T_CHOICE */
} colspec;

typedef struct kindspec {
    const char *name;
    size_t ncols;
    colspec cols[RK_LIST_MAXCOLS];
    size_t nkey;
    unsigned key[2];                /* columns of the row key */
    const char *keytext;            /* how errors name the key */
} kindspec;

static const kindspec kinds[RK_LIST__COUNT] = {
    [RK_LIST_WHITELIST] = {"whitelist", 3,
        {{"enterprise_id", T_ID, NULL}, {"allowance", T_COUNT, NULL}, {"note", T_TEXT, NULL}},
        1, {0, 0}, "enterprise_id"},
    [RK_LIST_BENCHMARKS] = {"benchmarks", 4,
        {{"item_code", T_ID, NULL}, {"level", T_OPT_ID, NULL},
         {"min_fine", T_AMOUNT, NULL}, {"max_fine", T_AMOUNT, NULL}},
        2, {0, 1}, "(item_code, level)"},
    [RK_LIST_EXEMPT] = {"exempt", 2,
        {{"item_code", T_ID, NULL}, {"kind", T_CHOICE, exempt_words}},
        1, {0, 0}, "item_code"},
    [RK_LIST_CREDENTIALS] = {"credentials", 4,
        {{"officer_id", T_ID, NULL}, {"unit_id", T_ID, NULL},
         {"valid_from", T_DATE, NULL}, {"valid_until", T_OPT_DATE, NULL}},
        2, {0, 2}, "(officer_id, valid_from)"},
    [RK_LIST_NAMES] = {"names", 3,
        {{"kind", T_CHOICE, name_words}, {"id", T_ID, NULL}, {"name", T_NAME, NULL}},
        2, {0, 1}, "(kind, id)"},
};

int rk__lists_kind(const char *name)
{
    for (int k = 0; k < RK_LIST__COUNT; k++)
        if (strcmp(name, kinds[k].name) == 0)
            return k;
    return -1;
}

const char *rk__lists_kind_name(rk__list_kind k)
{
    return (unsigned)k < RK_LIST__COUNT ? kinds[k].name : "?";
}

size_t rk__lists_ncols(rk__list_kind k)
{
    return kinds[k].ncols;
}

const char *rk__lists_col(rk__list_kind k, size_t col)
{
    return col < kinds[k].ncols ? kinds[k].cols[col].name : NULL;
}

/* ===================================================================
 * Tables
 * =================================================================== */

typedef struct row {
    char *v[RK_LIST_MAXCOLS];       /* canonical column order, "" when empty;
                                     * v[0] is the start of the row's block */
    unsigned line;                  /* source line, 0 from Redis */
    long long count;                /* allowance */
    double lo, hi;                  /* min_fine, max_fine */
    int32_t from, until;            /* days since 1970-01-01; NO_EXPIRY */
    int choice;                     /* index in the column's words */
    int32_t next_same_officer;      /* credentials: next row, -1 none */
} row;

struct rk__list {
    rk__list_kind kind;
    row *rows;
    size_t n, cap;
    rk_map index;                   /* row key -> row index + 1 */
    rk_map officers;                /* credentials: officer -> first row + 1 */
};

static rk__list *list_new(rk__list_kind kind)
{
    rk__list *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->kind = kind;
    rk_map_init(&l->index);
    rk_map_init(&l->officers);
    return l;
}

void rk__lists_free(rk__list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->rows[i].v[0]);
    free(l->rows);
    rk_map_clear(&l->index, NULL);
    rk_map_clear(&l->officers, NULL);
    free(l);
}

rk__list_kind rk__lists_kind_of(const rk__list *l)
{
    return l->kind;
}

size_t rk__lists_count(const rk__list *l)
{
    return l ? l->n : 0;
}

const char *rk__lists_value(const rk__list *l, size_t i, size_t col)
{
    return i < l->n && col < kinds[l->kind].ncols ? l->rows[i].v[col] : NULL;
}

unsigned rk__lists_line(const rk__list *l, size_t i)
{
    return i < l->n ? l->rows[i].line : 0;
}

/* The index key of the values vals[0..n) (ids hold no control characters,
 * so the unit separator cannot occur in them). */
static void join_key(char *out, size_t len, const char *const *vals, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, i ? "\x1f%s" : "%s", vals[i]);
}

/* The row key of row r of kind k into out (at least 2 * MAX_ID_BYTES + 2). */
static void row_key(const kindspec *ks, const row *r, char *out, size_t len)
{
    const char *vals[2] = {r->v[ks->key[0]], r->v[ks->key[1]]};
    join_key(out, len, vals, ks->nkey);
}

/* ===================================================================
 * Field checks
 * =================================================================== */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when the
 * bytes there are not one (overlong forms and surrogates refused). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need, i;
    unsigned long cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2; cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3; cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4; cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return need;
}

/* Is s (n bytes) valid UTF-8? *ctl gets whether it holds a control
 * character (C0 other than tab/CR/LF counted separately in *ctl_strict,
 * DEL, C1). */
static bool utf8_ok(const char *s, size_t n, bool *ctl_any, bool *ctl_bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;
    *ctl_any = *ctl_bad = false;
    while (i < n) {
        if ((k = utf8_seq(p + i, n - i)) == 0)
            return false;
        if (k == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
            *ctl_any = true;
            if (p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
                *ctl_bad = true;
        } else if (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) {
            *ctl_any = *ctl_bad = true;
        }
        i += k;
    }
    return true;
}

static bool is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int32_t days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + (long)doe - 719468);
}

/* Parse "YYYY-MM-DD" (a real calendar date, year 1900..9999). 0 or -1. */
static int parse_date(const char *s, int32_t *out)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long y;
    unsigned m, d, i;
    for (i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return -1;
    if (s[10] != '\0')
        return -1;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    if (y < 1900 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1] + (m == 2 && is_leap(y) ? 1u : 0u))
        return -1;
    *out = days_from_civil(y, m, d);
    return 0;
}

int32_t rk__lists_day(int64_t ms, int tz_offset_s)
{
    int64_t t = ms + (int64_t)tz_offset_s * 1000;
    int64_t day = t / 86400000;
    if (t % 86400000 < 0)
        day--;
    return day < INT32_MIN + 1 ? INT32_MIN + 1 : day > INT32_MAX - 1 ? INT32_MAX - 1
                                                                      : (int32_t)day;
}

/* Check value s (NUL-terminated, n bytes) against column c and fill the
 * typed member of r. Returns NULL, or what was expected. */
static const char *check_value(const colspec *c, const char *s, size_t n, row *r)
{
    bool ctl_any, ctl_bad;
    size_t i;
    if (!utf8_ok(s, n, &ctl_any, &ctl_bad))
        return "expected UTF-8 text (the file has bytes that are not UTF-8 here)";
    if (c->type == T_TEXT || c->type == T_NAME) {
        if (ctl_bad)
            return "expected text without control characters";
        if (n > MAX_TEXT_BYTES)
            return "expected at most 1024 bytes";
        if (c->type == T_NAME && n == 0)
            return "expected a name (it is empty)";
        return NULL;
    }
    if (ctl_any)
        return "expected a value without control characters or line breaks";
    switch (c->type) {
    case T_ID:
    case T_OPT_ID:
        if (n == 0 && c->type == T_ID)
            return "expected an id (it is empty)";
        if (n > MAX_ID_BYTES)
            return "expected an id of at most 256 bytes";
        return NULL;
    case T_COUNT: {
        long long v = 0;
        if (n == 0)
            return "expected an integer >= 0 (it is empty)";
        for (i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return "expected an integer >= 0";
            if (v > 99999999999LL)
                return "expected an integer >= 0 of at most 12 digits";
            v = v * 10 + (s[i] - '0');
        }
        r->count = v;
        return NULL;
    }
    case T_AMOUNT: {
        size_t ip = 0, fp = 0;
        bool dot = false;
        for (i = 0; i < n; i++) {
            if (s[i] == '.' && !dot) {
                dot = true;
            } else if (s[i] >= '0' && s[i] <= '9') {
                if (dot)
                    fp++;
                else
                    ip++;
            } else {
                return "expected a number >= 0";
            }
        }
        if (ip == 0 || (dot && fp == 0))
            return "expected a number >= 0";
        if (fp > 2)
            return "expected a number >= 0 with at most two decimals";
        if (ip > 12)
            return "expected a number >= 0 of at most 12 digits before the point";
        if (strcmp(c->name, "min_fine") == 0)
            r->lo = strtod(s, NULL);
        else
            r->hi = strtod(s, NULL);
        return NULL;
    }
    case T_DATE:
    case T_OPT_DATE: {
        int32_t d;
        if (n == 0) {
            if (c->type == T_DATE)
                return "expected a date YYYY-MM-DD (it is empty)";
            r->until = NO_EXPIRY;
            return NULL;
        }
        if (parse_date(s, &d) != 0)
            return "expected a date YYYY-MM-DD (a real calendar date, year 1900 or later)";
        if (c->type == T_DATE)
            r->from = d;
        else
            r->until = d;
        return NULL;
    }
    case T_CHOICE:
        for (i = 0; c->words[i] != NULL; i++)
            if (strcmp(s, c->words[i]) == 0) {
                r->choice = (int)i;
                return NULL;
            }
        return c->words == exempt_words ? "expected no_penalty or lighter"
                                        : "expected unit, officer, enterprise, region, "
                                          "item or domain";
    default:
        return NULL;
    }
}

/* ===================================================================
 * Adding rows (shared by the CSV and the JSON path)
 * =================================================================== */

static int fail(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Write a printf-formatted message into err. Returns -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Where an error is: "line N, " when the row has a line, and the column. */
static void where(char *out, size_t len, unsigned line, const char *col)
{
    if (line > 0)
        snprintf(out, len, "line %u, column %s", line, col);
    else
        snprintf(out, len, "column %s", col);
}

/* Check the values vals[c] (lens[c] bytes, canonical column order) of one
 * row of l's kind, from source line `line` (0: none), and append it.
 * Returns 0, or -1 with err ("line N, column NAME: ..."). */
static int add_row(rk__list *l, const char *const *vals, const size_t *lens, unsigned line,
                   char *err, size_t errlen)
{
    const kindspec *ks = &kinds[l->kind];
    char key[2 * MAX_ID_BYTES + 8], at[160];
    size_t c, total = 0;
    row r;
    rk_map_entry *e;

    memset(&r, 0, sizeof(r));
    r.line = line;
    r.next_same_officer = -1;
    for (c = 0; c < ks->ncols; c++) {
        const char *why = check_value(&ks->cols[c], vals[c], lens[c], &r);
        if (why != NULL) {
            where(at, sizeof(at), line, ks->cols[c].name);
            return fail(err, errlen, "%s: %s", at, why);
        }
        total += lens[c] + 1;
    }
    if (l->kind == RK_LIST_BENCHMARKS && r.lo > r.hi) {
        where(at, sizeof(at), line, "max_fine");
        return fail(err, errlen, "%s: expected a number >= min_fine (%s)", at, vals[2]);
    }
    if (l->kind == RK_LIST_CREDENTIALS && r.until < r.from) {
        where(at, sizeof(at), line, "valid_until");
        return fail(err, errlen, "%s: expected a date on or after valid_from (%s), "
                    "or empty for no expiry", at, vals[2]);
    }
    if (l->n == MAX_ROWS) {
        where(at, sizeof(at), line, ks->cols[0].name);
        return fail(err, errlen, "%s: more than 1000000 rows", at);
    }
    {
        const char *kv[2] = {vals[ks->key[0]], vals[ks->key[1]]};
        join_key(key, sizeof(key), kv, ks->nkey);
    }
    if ((e = rk_map_find(&l->index, key)) != NULL) {
        const row *first = &l->rows[(uintptr_t)e->value - 1];
        where(at, sizeof(at), line, ks->cols[ks->key[0]].name);
        if (ks->nkey == 1)
            return fail(err, errlen, "%s: duplicate %s %s (first on line %u)", at,
                        ks->keytext, vals[ks->key[0]], first->line);
        return fail(err, errlen, "%s: duplicate %s (%s, %s) (first on line %u)", at,
                    ks->keytext, vals[ks->key[0]], vals[ks->key[1]], first->line);
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        row *nr = realloc(l->rows, ncap * sizeof(*nr));
        if (nr == NULL)
            return fail(err, errlen, "out of memory");
        l->rows = nr;
        l->cap = ncap;
    }
    {
        char *block = malloc(total), *p = block;
        if (block == NULL)
            return fail(err, errlen, "out of memory");
        for (c = 0; c < ks->ncols; c++) {
            memcpy(p, vals[c], lens[c]);
            p[lens[c]] = '\0';
            r.v[c] = p;
            p += lens[c] + 1;
        }
        if (rk_map_put(&l->index, key, (void *)(uintptr_t)(l->n + 1), NULL) == NULL) {
            free(block);
            return fail(err, errlen, "out of memory");
        }
    }
    l->rows[l->n++] = r;
    return 0;
}

/* Link each credentials row to the next of the same officer (after the
 * rows are final: sorting moves them). 0 or -1 (out of memory). */
static int index_officers(rk__list *l)
{
    rk_map_clear(&l->officers, NULL);
    if (l->kind != RK_LIST_CREDENTIALS)
        return 0;
    for (size_t i = l->n; i-- > 0;) {
        rk_map_entry *e = rk_map_find(&l->officers, l->rows[i].v[0]);
        l->rows[i].next_same_officer = e ? (int32_t)((uintptr_t)e->value - 1) : -1;
        if (e != NULL)
            e->value = (void *)(uintptr_t)(i + 1);
        else if (rk_map_put(&l->officers, l->rows[i].v[0], (void *)(uintptr_t)(i + 1),
                            NULL) == NULL)
            return -1;
    }
    return 0;
}

/* ===================================================================
 * CSV
 * =================================================================== */

typedef struct pstate {
    rk__list *l;
    const kindspec *ks;
    unsigned line;                  /* the physical line being fed */
    unsigned row_line;              /* the line the current record began on */
    bool header_done;
    size_t nfile;                   /* columns the header names */
    int colmap[MAX_FIELDS];         /* file column -> canonical column */
    char *fileno_name[MAX_FIELDS];  /* the header's names, for errors */
    /* the record being read */
    rk_buf buf;                     /* field bytes, each NUL-terminated */
    size_t off[MAX_FIELDS + 1];
    size_t len[MAX_FIELDS + 1];
    size_t nf;
    bool failed;
    char *err;
    size_t errlen;
} pstate;

/* The name of file column i for errors: the header's, else its position. */
static const char *colname(const pstate *st, size_t i, char *tmp, size_t len)
{
    if (st->header_done && i < st->nfile && st->fileno_name[i][0] != '\0')
        return st->fileno_name[i];
    snprintf(tmp, len, "%zu", i + 1);
    return tmp;
}

static void stop(pstate *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Record the first error. */
static void stop(pstate *st, const char *fmt, ...)
{
    va_list ap;
    if (st->failed)
        return;
    st->failed = true;
    if (st->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(st->err, st->errlen, fmt, ap);
    va_end(ap);
}

/* libcsv: one field of the current record. */
static void on_field(void *s, size_t n, void *data)
{
    pstate *st = data;
    char tmp[24];
    if (st->failed)
        return;
    if (st->header_done && st->nf >= st->nfile) {
        /* empty fields past the header's (a spreadsheet's ",,") are ignored */
        if (n > 0)
            stop(st, "line %u, column %s: more fields than the header's %zu", st->row_line,
                 colname(st, st->nf, tmp, sizeof(tmp)), st->nfile);
        st->nf++;
        return;
    }
    if (st->nf == MAX_FIELDS) {
        if (st->header_done)
            stop(st, "out of memory");      /* not reached: nfile <= MAX_FIELDS */
        else
            stop(st, "line %u: the header has more than %d columns", st->row_line,
                 MAX_FIELDS);
        return;
    }
    st->off[st->nf] = st->buf.len;
    st->len[st->nf] = n;
    rk_buf_put_bytes(&st->buf, s, n);
    rk_buf_put_bytes(&st->buf, "", 1);
    if (st->buf.oom) {
        stop(st, "out of memory");
        return;
    }
    st->nf++;
}

/* The header record: map its names onto the kind's columns. */
static void header(pstate *st)
{
    const kindspec *ks = st->ks;
    bool seen[RK_LIST_MAXCOLS] = {false};
    size_t i, c;
    char tmp[24];

    for (i = 0; i < st->nf; i++) {
        const char *name = (const char *)st->buf.data + st->off[i];
        bool ctl_any, ctl_bad;
        if (!utf8_ok(name, st->len[i], &ctl_any, &ctl_bad) || ctl_any ||
            st->len[i] > 64) {
            snprintf(tmp, sizeof(tmp), "%zu", i + 1);
            stop(st, "line %u, column %s: expected a column name (%s takes %s%s%s%s%s%s%s)",
                 st->row_line, tmp, ks->name, ks->cols[0].name,
                 ks->ncols > 1 ? ", " : "", ks->ncols > 1 ? ks->cols[1].name : "",
                 ks->ncols > 2 ? ", " : "", ks->ncols > 2 ? ks->cols[2].name : "",
                 ks->ncols > 3 ? ", " : "", ks->ncols > 3 ? ks->cols[3].name : "");
            return;
        }
        if ((st->fileno_name[i] = strdup(name)) == NULL) {
            stop(st, "out of memory");
            return;
        }
        st->nfile = i + 1;
        st->colmap[i] = -1;
        if (name[0] == '\0')
            continue;               /* a column without a name: ignored */
        for (c = 0; c < ks->ncols && strcmp(name, ks->cols[c].name) != 0; c++)
            ;
        if (c == ks->ncols) {
            stop(st, "line %u, column %s: not a column of %s (it takes %s%s%s%s%s%s%s)",
                 st->row_line, name, ks->name, ks->cols[0].name,
                 ks->ncols > 1 ? ", " : "", ks->ncols > 1 ? ks->cols[1].name : "",
                 ks->ncols > 2 ? ", " : "", ks->ncols > 2 ? ks->cols[2].name : "",
                 ks->ncols > 3 ? ", " : "", ks->ncols > 3 ? ks->cols[3].name : "");
            return;
        }
        if (seen[c]) {
            stop(st, "line %u, column %s: named twice in the header", st->row_line, name);
            return;
        }
        seen[c] = true;
        st->colmap[i] = (int)c;
    }
    for (c = 0; c < ks->ncols; c++)
        if (!seen[c]) {
            stop(st, "line %u, column %s: missing from the header (%s needs every one of "
                 "%s%s%s%s%s%s%s)", st->row_line, ks->cols[c].name, ks->name,
                 ks->cols[0].name,
                 ks->ncols > 1 ? ", " : "", ks->ncols > 1 ? ks->cols[1].name : "",
                 ks->ncols > 2 ? ", " : "", ks->ncols > 2 ? ks->cols[2].name : "",
                 ks->ncols > 3 ? ", " : "", ks->ncols > 3 ? ks->cols[3].name : "");
            return;
        }
    st->header_done = true;
}

/* libcsv: the end of a record. */
static void on_record(int c, void *data)
{
    pstate *st = data;
    const char *vals[RK_LIST_MAXCOLS];
    size_t lens[RK_LIST_MAXCOLS];
    size_t i;
    bool blank = true;
    (void)c;

    if (st->failed)
        goto done;
    for (i = 0; i < st->nf && i < (st->header_done ? st->nfile : MAX_FIELDS); i++)
        blank &= st->len[i] == 0;
    if (blank)                      /* ",,," - a spreadsheet's empty row */
        goto done;
    if (!st->header_done) {
        header(st);
        goto done;
    }
    if (st->nf < st->nfile) {
        char tmp[24];
        stop(st, "line %u, column %s: missing (the row has %zu fields, the header %zu)",
             st->row_line, colname(st, st->nf, tmp, sizeof(tmp)), st->nf, st->nfile);
        goto done;
    }
    for (i = 0; i < st->nfile; i++) {
        const char *v = (const char *)st->buf.data + st->off[i];
        if (st->colmap[i] < 0) {
            if (st->len[i] > 0) {
                stop(st, "line %u, column %zu: a value under a column the header does not "
                     "name", st->row_line, i + 1);
                goto done;
            }
            continue;
        }
        vals[st->colmap[i]] = v;
        lens[st->colmap[i]] = st->len[i];
    }
    if (add_row(st->l, vals, lens, st->row_line, st->err, st->errlen) != 0)
        st->failed = true;
done:
    st->nf = 0;
    st->buf.len = 0;
}

static int csv_space(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int csv_term(unsigned char c)
{
    return c == '\r' || c == '\n';
}

int rk__lists_parse_csv(rk__list_kind kind, const void *data, size_t len, rk__list **out,
                        char *err, size_t errlen)
{
    const unsigned char *p = data, *end = p + len;
    struct csv_parser csv;
    pstate st;
    char tmp[24];
    int rc = -1;

    *out = NULL;
    if ((unsigned)kind >= RK_LIST__COUNT)
        return fail(err, errlen, "unknown list kind");
    if (len > MAX_BYTES)
        return fail(err, errlen, "the file has more than 64 MiB");
    if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
        p += 3;
    memset(&st, 0, sizeof(st));
    st.ks = &kinds[kind];
    st.err = err;
    st.errlen = errlen;
    if ((st.l = list_new(kind)) == NULL)
        return fail(err, errlen, "out of memory");
    if (csv_init(&csv, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        rk__lists_free(st.l);
        return fail(err, errlen, "out of memory");
    }
    csv_set_space_func(&csv, csv_space);
    csv_set_term_func(&csv, csv_term);
    /* One physical line at a time (up to and including its LF, or a lone
     * CR): a record ends only at a line end, so when the parser is between
     * records before a line, the next record begins on that line. */
    st.line = 0;
    while (p < end && !st.failed) {
        const unsigned char *q = p;
        while (q < end && *q != '\n' && !(*q == '\r' && (q + 1 == end || q[1] != '\n')))
            q++;
        if (q < end)
            q++;
        st.line++;
        if (csv.pstate == 0)        /* libcsv's ROW_NOT_BEGUN */
            st.row_line = st.line;
        if (csv_parse(&csv, p, (size_t)(q - p), on_field, on_record, &st) != (size_t)(q - p)
            && !st.failed) {
            if (csv_error(&csv) == CSV_EPARSE)
                stop(&st, "line %u, column %s: a quote inside an unquoted field, or text "
                     "after a closing quote (quote the whole field and double each quote "
                     "inside it)", st.line, colname(&st, st.nf, tmp, sizeof(tmp)));
            else
                stop(&st, "line %u: %s", st.line, csv_strerror(csv_error(&csv)));
        }
        p = q;
    }
    if (!st.failed && csv_fini(&csv, on_field, on_record, &st) != 0 && !st.failed)
        stop(&st, "line %u, column %s: a quoted field is not closed before the end of the "
             "file", st.row_line, colname(&st, st.nf, tmp, sizeof(tmp)));
    if (!st.failed && !st.header_done)
        stop(&st, "line 1: the file is empty (a list needs its header row; a header alone "
             "loads an empty list)");
    if (!st.failed && index_officers(st.l) != 0)
        stop(&st, "out of memory");
    if (!st.failed) {
        *out = st.l;
        st.l = NULL;
        rc = 0;
    }
    csv_free(&csv);
    rk_buf_free(&st.buf);
    for (size_t i = 0; i < MAX_FIELDS; i++)
        free(st.fileno_name[i]);
    rk__lists_free(st.l);
    return rc;
}

/* ===================================================================
 * The stored form: one compact JSON object per row
 * =================================================================== */

/* The JSON value of column c of row r. */
static json_t *col_json(const kindspec *ks, const row *r, size_t c)
{
    switch (ks->cols[c].type) {
    case T_COUNT:
        return json_integer(r->count);
    case T_AMOUNT: {
        double v = strcmp(ks->cols[c].name, "min_fine") == 0 ? r->lo : r->hi;
        if (v == floor(v) && v < 1e15)
            return json_integer((json_int_t)v);
        return json_real(v);
    }
    case T_OPT_ID:
    case T_OPT_DATE:
        return r->v[c][0] ? json_string(r->v[c]) : json_null();
    default:
        return json_string(r->v[c]);
    }
}

json_t *rk__lists_row_object(const rk__list *l, size_t i)
{
    const kindspec *ks = &kinds[l->kind];
    json_t *o = json_object();
    if (o == NULL || i >= l->n)
        return o;
    for (size_t c = 0; c < ks->ncols; c++)
        json_object_set_new(o, ks->cols[c].name, col_json(ks, &l->rows[i], c));
    return o;
}

char *rk__lists_row_json(const rk__list *l, size_t i)
{
    json_t *o = rk__lists_row_object(l, i);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)
                : NULL;
    json_decref(o);
    return s;
}

char *rk__lists_row_field(const rk__list *l, size_t i)
{
    const kindspec *ks = &kinds[l->kind];
    const row *r = &l->rows[i];
    json_t *a;
    char *s;
    if (ks->nkey == 1)
        return strdup(r->v[ks->key[0]]);
    a = json_pack("[ss]", r->v[ks->key[0]], r->v[ks->key[1]]);
    s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

static int cmp_rows_kind;

static int cmp_rows(const void *a, const void *b)
{
    const kindspec *ks = &kinds[cmp_rows_kind];
    const row *x = a, *y = b;
    for (size_t k = 0; k < ks->nkey; k++) {
        int c = strcmp(x->v[ks->key[k]], y->v[ks->key[k]]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* Rebuild the index of l after its rows moved. 0 or -1 (out of memory). */
static int reindex(rk__list *l)
{
    const kindspec *ks = &kinds[l->kind];
    char key[2 * MAX_ID_BYTES + 8];
    rk_map_clear(&l->index, NULL);
    for (size_t i = 0; i < l->n; i++) {
        row_key(ks, &l->rows[i], key, sizeof(key));
        if (rk_map_put(&l->index, key, (void *)(uintptr_t)(i + 1), NULL) == NULL)
            return -1;
    }
    return index_officers(l);
}

int rk__lists_from_json(rk__list_kind kind, const char *const *vals, const size_t *lens,
                        size_t n, rk__list **out, char *err, size_t errlen)
{
    const kindspec *ks;
    rk__list *l;
    char nums[RK_LIST_MAXCOLS][48];

    *out = NULL;
    if ((unsigned)kind >= RK_LIST__COUNT)
        return fail(err, errlen, "unknown list kind");
    ks = &kinds[kind];
    if ((l = list_new(kind)) == NULL)
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loadb(vals[i], lens[i], JSON_REJECT_DUPLICATES, NULL);
        const char *v[RK_LIST_MAXCOLS];
        size_t vl[RK_LIST_MAXCOLS];
        int rc = 0;
        if (!json_is_object(o) || json_object_size(o) != ks->ncols) {
            json_decref(o);
            rk__lists_free(l);
            return fail(err, errlen, "stored row %zu: expected an object of %zu columns",
                        i + 1, ks->ncols);
        }
        for (size_t c = 0; c < ks->ncols && rc == 0; c++) {
            json_t *x = json_object_get(o, ks->cols[c].name);
            if (json_is_string(x)) {
                v[c] = json_string_value(x);
                vl[c] = json_string_length(x);
            } else if (json_is_null(x) && (ks->cols[c].type == T_OPT_ID ||
                                           ks->cols[c].type == T_OPT_DATE)) {
                v[c] = "";
                vl[c] = 0;
            } else if (json_is_integer(x) && json_integer_value(x) >= 0) {
                snprintf(nums[c], sizeof(nums[c]), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(x));
                v[c] = nums[c];
                vl[c] = strlen(nums[c]);
            } else if (json_is_real(x) && ks->cols[c].type == T_AMOUNT &&
                       json_real_value(x) >= 0 && json_real_value(x) < 1e12) {
                /* amounts have at most two decimals */
                snprintf(nums[c], sizeof(nums[c]), "%.2f", json_real_value(x));
                v[c] = nums[c];
                vl[c] = strlen(nums[c]);
            } else {
                rc = fail(err, errlen, "stored row %zu, column %s: unexpected value",
                          i + 1, ks->cols[c].name);
            }
        }
        if (rc == 0 && add_row(l, v, vl, 0, err, errlen) != 0) {
            char inner[RK_ERRLEN];
            snprintf(inner, sizeof(inner), "%s", err);
            rc = fail(err, errlen, "stored row %zu: %s", i + 1, inner);
        }
        json_decref(o);
        if (rc != 0) {
            rk__lists_free(l);
            return -1;
        }
    }
    cmp_rows_kind = kind;
    if (l->n > 1)
        qsort(l->rows, l->n, sizeof(*l->rows), cmp_rows);
    if (reindex(l) != 0) {
        rk__lists_free(l);
        return fail(err, errlen, "out of memory");
    }
    *out = l;
    return 0;
}

/* ===================================================================
 * Lookups
 * =================================================================== */

static const row *find1(const rk__list *l, const char *a)
{
    rk_map_entry *e = rk_map_find(&l->index, a);
    return e ? &l->rows[(uintptr_t)e->value - 1] : NULL;
}

static const row *find2(const rk__list *l, const char *a, const char *b)
{
    char key[2 * MAX_ID_BYTES + 8];
    const char *kv[2] = {a, b};
    if (strlen(a) > MAX_ID_BYTES || strlen(b) > MAX_ID_BYTES)
        return NULL;
    join_key(key, sizeof(key), kv, 2);
    return find1(l, key);
}

bool rk__lists_allowance(const rk__list *l, const char *enterprise_id, long long *out)
{
    const row *r;
    if (l == NULL || l->kind != RK_LIST_WHITELIST || enterprise_id == NULL ||
        (r = find1(l, enterprise_id)) == NULL)
        return false;
    *out = r->count;
    return true;
}

bool rk__lists_benchmark(const rk__list *l, const char *item_code, const char *level,
                         double *min, double *max)
{
    const row *r = NULL;
    if (l == NULL || l->kind != RK_LIST_BENCHMARKS || item_code == NULL)
        return false;
    if (level != NULL && level[0] != '\0')
        r = find2(l, item_code, level);
    if (r == NULL)
        r = find2(l, item_code, "");
    if (r == NULL)
        return false;
    *min = r->lo;
    *max = r->hi;
    return true;
}

int rk__lists_exempt(const rk__list *l, const char *item_code)
{
    const row *r;
    if (l == NULL || l->kind != RK_LIST_EXEMPT || item_code == NULL ||
        (r = find1(l, item_code)) == NULL)
        return RK_EXEMPT_NONE;
    return r->choice == 0 ? RK_EXEMPT_NO_PENALTY : RK_EXEMPT_LIGHTER;
}

bool rk__lists_credential_valid(const rk__list *l, const char *officer_id, int32_t day)
{
    rk_map_entry *e;
    if (l == NULL || l->kind != RK_LIST_CREDENTIALS || officer_id == NULL ||
        (e = rk_map_find(&l->officers, officer_id)) == NULL)
        return false;
    for (int32_t i = (int32_t)((uintptr_t)e->value - 1); i >= 0;
         i = l->rows[i].next_same_officer)
        if (l->rows[i].from <= day && day <= l->rows[i].until)
            return true;
    return false;
}

const char *rk__lists_name(const rk__list *l, const char *kind, const char *id)
{
    const row *r;
    if (l == NULL || l->kind != RK_LIST_NAMES || kind == NULL || id == NULL ||
        (r = find2(l, kind, id)) == NULL)
        return NULL;
    return r->v[2];
}

/* ===================================================================
 * The scripts that write and read the stored lists
 * =================================================================== */

/* KEYS[1] the staged rows, KEYS[2] the live hash, KEYS[3] the versions,
 * KEYS[4] the info hash; ARGV[1] kind, ARGV[2] rows, ARGV[3] info JSON.
 * -> {new version, old version, old info or ""}. */
const char rk__lists_swap_lua[] =
    "local n = tonumber(ARGV[2])\n"
    "if n > 0 then\n"
    "  local have = redis.call('HLEN', KEYS[1])\n"
    "  if have ~= n then\n"
    "    return redis.error_reply('the staged rows are incomplete (' .. have .. ' of ' "
    ".. n .. '); nothing changed')\n"
    "  end\n"
    "  redis.call('RENAME', KEYS[1], KEYS[2])\n"
    "  redis.call('PERSIST', KEYS[2])\n"
    "else\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "local old = redis.call('HGET', KEYS[3], ARGV[1]) or '0'\n"
    "local oldinfo = redis.call('HGET', KEYS[4], ARGV[1]) or ''\n"
    "local v = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)\n"
    "redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])\n"
    "return {v, old, oldinfo}\n";

/* KEYS[1] the versions, KEYS[2] the live hash, KEYS[3] the info hash;
 * ARGV[1] kind. -> {version ("0": none), info or "", {row JSON ...}},
 * read at one instant. */
const char rk__lists_fetch_lua[] =
    "return {redis.call('HGET', KEYS[1], ARGV[1]) or '0', "
    "redis.call('HGET', KEYS[3], ARGV[1]) or '', redis.call('HVALS', KEYS[2])}\n";

/* ===================================================================
 * The lists in force
 * =================================================================== */

static struct {
    rk__list *list;
    long long version;
} in_force[RK_LIST__COUNT];

const rk__list *rk__lists_in_force(rk__list_kind kind)
{
    return (unsigned)kind < RK_LIST__COUNT ? in_force[kind].list : NULL;
}

long long rk__lists_version(rk__list_kind kind)
{
    return (unsigned)kind < RK_LIST__COUNT ? in_force[kind].version : 0;
}

void rk__lists_install(rk__list_kind kind, rk__list *l, long long version)
{
    if ((unsigned)kind >= RK_LIST__COUNT) {
        rk__lists_free(l);
        return;
    }
    rk__lists_free(in_force[kind].list);
    in_force[kind].list = l;
    in_force[kind].version = version;
}

void rk__lists_render_metrics(rk_buf *out)
{
    rk__buf_printf(out, "# HELP riskd_list_version The version of each reference list in "
                   "force (0: none loaded).\n# TYPE riskd_list_version gauge\n");
    for (int k = 0; k < RK_LIST__COUNT; k++)
        rk__buf_printf(out, "riskd_list_version{kind=\"%s\"} %lld\n", kinds[k].name,
                       in_force[k].version);
    rk__buf_printf(out, "# HELP riskd_list_rows The rows of each reference list in force.\n"
                   "# TYPE riskd_list_rows gauge\n");
    for (int k = 0; k < RK_LIST__COUNT; k++)
        rk__buf_printf(out, "riskd_list_rows{kind=\"%s\"} %zu\n", kinds[k].name,
                       rk__lists_count(in_force[k].list));
}
