/* tests/integration/test-indicators-live.c - the indicators of a known
 * month, end to end: riskd against a real redis-server.
 *
 * A month (September 2025, with a few August events so that the quarter
 * differs from the month and the window) of filings, scans on time and
 * late, ratings (good and bad), cases opened and decided (fines,
 * confiscation, leniency), complaints, reviews (upheld and corrections),
 * one duplicate entry, one amended filing and one amended decision, one
 * scan and one reported visit without a filing, goes through riskd. Every
 * field of the hashes riskd:ind:<scope>:<key>:<period> for one unit, one
 * officer, one region and `all`, for the window, the month and the
 * quarter, is compared with figures this file computes from the same
 * event list (model() below: its own reading of riskd(8) INDICATORS, not
 * the module; open_critical/open_warning/open_info counted from the open
 * hash riskd:open, and U1's are not all 0; a unit's region). Then riskd is killed (SIGKILL), the hashes deleted and
 * riskd started again: it writes the same hashes from its restored state
 * and riskctl indicators --json reports what it reported before the
 * kill; riskd --replay leaves every
 * indicator hash as it was (a replay writes nothing). The JSON of one key
 * is checked exactly and the table shows the figures, rates as
 * percentages with one decimal, names from the names list, headers in
 * Chinese by default and in English with alerts.language "en". /metrics carries the `all` figures of
 * the window and, with indicators.per_unit_metrics, each unit's filing and
 * scan rate. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "itest.h"
#include "itest_ctl.h"

#define H_MS INT64_C(3600000)
#define SCAN_DEADLINE (24 * H_MS)   /* detectors.unfiled_inspection.scan_deadline */
#define GRACE (10 * 60000)          /* detectors.unfiled_inspection.grace */
#define BAD_SCORE 2                 /* detectors.bad_rating.bad_score */

enum { FILED, SCANNED, RATED, REPORTED, OPENED, DECIDED, COMPLAINT, REVIEW };

/* One event of the month; times are "MM-DDTHH:MM" in 2025, +08:00. */
typedef struct tev {
    int type;
    const char *ts;
    const char *id;                 /* task_id, case_id or complaint_id */
    const char *unit, *off1, *off2, *region, *ent;
    const char *planned;            /* filings: planned_at (NULL: ts) */
    const char *kind;               /* filings: kind (NULL: plan) */
    const char *joint;
    int score;                      /* ratings */
    const char *fine;               /* decisions: fine, confiscation (JSON numbers) */
    const char *conf;
    const char *word;               /* leniency, outcome, source */
} tev;

/* In the order they are written (per stream). */
static const tev month[] = {
    /* August: in the quarter only */
    {FILED, "08-20T08:00", "T10", "U1", "O1", NULL, "R1", "E8", "08-20T09:00", NULL, NULL, 0, 0, 0, 0},
    {SCANNED, "08-20T09:30", "T10", "U1", "O1", NULL, "R1", "E8", 0, 0, 0, 0, 0, 0, 0},
    {COMPLAINT, "08-25T10:00", "P0", "U1", "O1", NULL, "R1", NULL, 0, 0, 0, 0, 0, 0, 0},
    /* September */
    {FILED, "09-02T08:00", "T1", "U1", "O1", "O2", "R1", "E1", "09-02T09:00", NULL, NULL, 0, 0, 0, 0},
    {SCANNED, "09-02T09:30", "T1", "U1", "O1", "O2", "R1", "E1", 0, 0, 0, 0, 0, 0, 0},
    {RATED, "09-02T12:00", "T1", "U1", "O1", "O2", "R1", "E1", 0, 0, 0, 5, 0, 0, 0},
    {FILED, "09-03T08:00", "T8", "U3", "O4", NULL, "R2", "E6", "09-03T09:00", NULL, NULL, 0, 0, 0, 0},
    {SCANNED, "09-03T09:20", "T8", "U3", "O4", NULL, "R2", "E6", 0, 0, 0, 0, 0, 0, 0},
    {RATED, "09-03T11:00", "T8", "U3", "O4", NULL, "R2", "E6", 0, 0, 0, 4, 0, 0, 0},
    {OPENED, "09-04T10:00", "K1", "U1", "O1", NULL, "R1", "E1", 0, 0, 0, 0, 0, 0, "complaint"},
    {FILED, "09-05T08:00", "T2", "U1", "O1", NULL, "R1", "E2", "09-05T09:00", NULL, NULL, 0, 0, 0, 0},
    {OPENED, "09-06T10:00", "K2", "U1", "O2", NULL, "R1", "E2", 0, 0, 0, 0, 0, 0, "report"},
    {OPENED, "09-07T10:00", "K3", "U3", "O4", NULL, "R2", "E6", 0, 0, 0, 0, 0, 0, "other"},
    {SCANNED, "09-07T10:00", "T2", "U1", "O1", NULL, "R1", "E2", 0, 0, 0, 0, 0, 0, 0},
    {RATED, "09-07T12:00", "T2", "U1", "O1", NULL, "R1", "E2", 0, 0, 0, 1, 0, 0, 0},
    {FILED, "09-07T18:00", "T9", "U2", "O3", NULL, "R1", "E7", "09-08T09:00", NULL, NULL, 0, 0, 0, 0},
    {FILED, "09-09T08:00", "T3", "U1", "O1", "O2", "R1", "E1", "09-10T09:00", "random", NULL, 0, 0, 0, 0},
    {COMPLAINT, "09-09T10:00", "P1", "U1", "O1", NULL, "R1", NULL, 0, 0, 0, 0, 0, 0, 0},
    {DECIDED, "09-10T10:00", "K1", "U1", NULL, NULL, "R1", "E1", 0, 0, 0, 0, "5000", "0", "none"},
    /* the amendment: T3 rescheduled to the 12th */
    {FILED, "09-11T08:00", "T3", "U1", "O1", "O2", "R1", "E1", "09-12T09:00", "random", NULL, 0, 0, 0, 0},
    {SCANNED, "09-12T10:00", "T3", "U1", "O1", "O2", "R1", "E1", 0, 0, 0, 0, 0, 0, 0},
    /* the decision of K1 corrected */
    {DECIDED, "09-12T10:00", "K1", "U1", NULL, NULL, "R1", "E1", 0, 0, 0, 0, "3000", "250.5", "lighter"},
    {FILED, "09-14T08:00", "T4", "U1", "O2", NULL, "R1", "E3", "09-15T09:00", "complaint", NULL, 0, 0, 0, 0},
    {DECIDED, "09-16T10:00", "K2", "U1", NULL, NULL, "R1", "E2", 0, 0, 0, 0, "1200.75", NULL, "mitigated"},
    {DECIDED, "09-17T10:00", "K3", "U3", NULL, NULL, "R2", "E6", 0, 0, 0, 0, "800", NULL, "none"},
    /* a scan with no filing at all (scan_without_filing after the grace) */
    {SCANNED, "09-18T14:00", "TX", "U2", "O3", NULL, "R1", "E9", 0, 0, 0, 0, 0, 0, 0},
    {COMPLAINT, "09-19T10:00", "P2", "U1", "O2", NULL, "R1", NULL, 0, 0, 0, 0, 0, 0, 0},
    /* a joint inspection: one for R1 and all, one each for U1/O1, U2/O3 */
    {FILED, "09-19T18:00", "T5", "U1", "O1", NULL, "R1", "E4", "09-20T09:00", NULL, "J1", 0, 0, 0, 0},
    {FILED, "09-19T18:05", "T6", "U2", "O3", NULL, "R1", "E4", "09-20T09:00", NULL, "J1", 0, 0, 0, 0},
    {SCANNED, "09-20T09:10", "T5", "U1", "O1", NULL, "R1", "E4", 0, 0, 0, 0, 0, 0, 0},
    {RATED, "09-20T11:00", "T5", "U1", "O1", NULL, "R1", "E4", 0, 0, 0, 2, 0, 0, 0},
    {COMPLAINT, "09-21T10:00", "P3", "U2", "O3", NULL, "R1", NULL, 0, 0, 0, 0, 0, 0, 0},
    {SCANNED, "09-21T11:00", "T6", "U2", "O3", NULL, "R1", "E4", 0, 0, 0, 0, 0, 0, 0},
    {REVIEW, "09-22T10:00", "K1", "U1", NULL, NULL, "R1", NULL, 0, 0, 0, 0, 0, 0, "upheld"},
    {REVIEW, "09-23T10:00", "K2", "U1", NULL, NULL, "R1", NULL, 0, 0, 0, 0, 0, 0, "altered"},
    {REVIEW, "09-24T10:00", "K3", "U3", NULL, NULL, "R2", NULL, 0, 0, 0, 0, 0, 0, "revoked"},
    /* a visit an enterprise reports, never filed */
    {REPORTED, "09-25T15:00", NULL, "U1", "O2", NULL, "R1", "E10", 0, 0, 0, 0, 0, 0, 0},
    {REVIEW, "09-26T10:00", "K1", "U1", NULL, NULL, "R1", NULL, 0, 0, 0, 0, 0, 0, "confirmed_illegal"},
    /* K2 opened again, the very same event: a duplicate */
    {OPENED, "09-06T10:00", "K2", "U1", "O2", NULL, "R1", "E2", 0, 0, 0, 0, 0, 0, "report"},
    /* planned today: its deadline has not passed */
    {FILED, "09-30T09:00", "T7", "U1", "O1", NULL, "R1", "E5", "09-30T10:00", NULL, NULL, 0, 0, 0, 0},
    {SCANNED, "09-30T10:05", "T7", "U1", "O1", NULL, "R1", "E5", 0, 0, 0, 0, 0, 0, 0},
};
#define NMONTH (sizeof(month) / sizeof(month[0]))
#define NOW "09-30T23:00"           /* the final clock.tick */

static int64_t ms_of(const char *mdhm)
{
    int mo, d, h, mi;
    int64_t days;
    static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    if (sscanf(mdhm, "%d-%dT%d:%d", &mo, &d, &h, &mi) != 4)
        abort();
    /* days from 1970-01-01 to 2025-01-01: 20089 */
    days = 20089 + cum[mo - 1] + d - 1;
    return days * 86400000 + (int64_t)h * H_MS + (int64_t)mi * 60000 - 8 * H_MS;
}

/* ---- the event JSON ---- */

static const char *type_name(int t)
{
    static const char *const n[] = {"inspection.filed", "inspection.scanned", "inspection.rated",
                                    "inspection.reported", "case.opened", "case.decided",
                                    "case.complaint", "case.review"};
    return n[t];
}

static void event_json(const tev *e, char *buf, size_t len)
{
    size_t n = 0;
#define ADD(...) (n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__))
    ADD("{\"type\":\"%s\",\"ts\":\"2025-%s:00+08:00\"", type_name(e->type), e->ts);
    if (e->id)
        ADD(",\"%s\":\"%s\"", e->type <= REPORTED ? "task_id" : e->type == COMPLAINT
                              ? "complaint_id" : "case_id", e->id);
    ADD(",\"unit_id\":\"%s\"", e->unit);
    if (e->off1 && e->off2)
        ADD(",\"officers\":[\"%s\",\"%s\"]", e->off1, e->off2);
    else if (e->off1)
        ADD(",\"officers\":[\"%s\"]", e->off1);
    if (e->region)
        ADD(",\"region\":\"%s\"", e->region);
    if (e->ent)
        ADD(",\"enterprise_id\":\"%s\"", e->ent);
    if (e->planned)
        ADD(",\"planned_at\":\"2025-%s:00+08:00\"", e->planned);
    if (e->kind)
        ADD(",\"kind\":\"%s\"", e->kind);
    if (e->joint)
        ADD(",\"joint_id\":\"%s\"", e->joint);
    if (e->type == RATED)
        ADD(",\"score\":%d", e->score);
    if (e->type == DECIDED) {
        ADD(",\"fine\":%s", e->fine);
        if (e->conf)
            ADD(",\"confiscation\":%s", e->conf);
        ADD(",\"leniency\":\"%s\"", e->word);
    }
    if (e->type == REVIEW)
        ADD(",\"outcome\":\"%s\"", e->word);
    if (e->type == OPENED)
        ADD(",\"source\":\"%s\"", e->word);
    ADD("}");
#undef ADD
}

/* ---- the model: riskd(8) INDICATORS read independently ---- */

enum { SC_UNIT, SC_OFFICER, SC_REGION, SC_ALL };
enum {
    M_FILINGS, M_UNFILED, M_SBD, M_DLP, M_SCANNED, M_RATED, M_RATINGS, M_BAD, M_COUNTED,
    M_ENTERPRISES, M_OPENED, M_DECIDED, M_LENIENT, M_COMPLAINTS, M_REVIEWS, M_CORRECTIONS, M_N
};
typedef struct figures {
    long long n[M_N];
    long long fen;
} figures;

/* Does event e (its who) count for scope/key? */
static bool is_for(const tev *e, int scope, const char *key)
{
    switch (scope) {
    case SC_UNIT: return strcmp(e->unit, key) == 0;
    case SC_OFFICER:
        return (e->off1 && strcmp(e->off1, key) == 0) || (e->off2 && strcmp(e->off2, key) == 0);
    case SC_REGION: return e->region && strcmp(e->region, key) == 0;
    default: return true;
    }
}

/* The last event of type/id (the amendment wins), or NULL. */
static const tev *last_of(int type, const char *id)
{
    const tev *r = NULL;
    size_t i;
    for (i = 0; i < NMONTH; i++)
        if (month[i].type == type && month[i].id && strcmp(month[i].id, id) == 0)
            r = &month[i];
    return r;
}

/* Is month[i] the first event of its natural key (later copies are
 * duplicates or amendments)? */
static bool first_of_key(size_t i)
{
    size_t j;
    for (j = 0; j < i; j++) {
        if (month[j].type != month[i].type || !month[j].id || !month[i].id ||
            strcmp(month[j].id, month[i].id) != 0)
            continue;
        if (month[i].type == REVIEW && strcmp(month[i].word, month[j].word) != 0)
            continue;
        if (month[i].type == SCANNED && strcmp(month[i].ts, month[j].ts) != 0)
            continue;
        return false;
    }
    return true;
}

static bool in(int64_t t, int64_t from, int64_t to) { return t >= from && t < to; }

static figures model(int scope, const char *key, int64_t from, int64_t to)
{
    figures f;
    int64_t now = ms_of(NOW);
    const char *ents[64], *joints[64];
    size_t i, j, nents = 0, njoints = 0;
    memset(&f, 0, sizeof(f));
    for (i = 0; i < NMONTH; i++) {
        const tev *e = &month[i];
        if (!first_of_key(i))
            continue;
        switch (e->type) {
        case FILED: {
            const tev *fl = last_of(FILED, e->id), *sc = NULL;
            int64_t planned = ms_of(fl->planned);
            bool dup = false;
            for (j = 0; j < NMONTH; j++)
                if (month[j].type == SCANNED && strcmp(month[j].id, e->id) == 0 &&
                    (sc == NULL || ms_of(month[j].ts) < ms_of(sc->ts)))
                    sc = &month[j];
            if (!is_for(fl, scope, key) || !in(planned, from, to))
                break;
            f.n[M_FILINGS]++;
            if (planned + SCAN_DEADLINE < now) {
                f.n[M_DLP]++;
                if (sc && ms_of(sc->ts) <= planned + SCAN_DEADLINE)
                    f.n[M_SBD]++;
            }
            if (fl->kind && strcmp(fl->kind, "complaint") == 0)
                break;
            for (j = 0; j < njoints && fl->joint; j++)
                dup = dup || strcmp(joints[j], fl->joint) == 0;
            if (dup)
                break;
            if (fl->joint)
                joints[njoints++] = fl->joint;
            f.n[M_COUNTED]++;
            for (j = 0; j < nents; j++)
                dup = dup || strcmp(ents[j], fl->ent) == 0;
            if (!dup) {
                ents[nents++] = fl->ent;
                f.n[M_ENTERPRISES]++;
            }
            break;
        }
        case SCANNED: {
            /* the first scan of a task counts, for its filing's who */
            const tev *fl = last_of(FILED, e->id), *who = fl ? fl : e;
            bool first = true, rated = false;
            for (j = 0; j < NMONTH; j++) {
                if (month[j].type == SCANNED && j != i && strcmp(month[j].id, e->id) == 0 &&
                    ms_of(month[j].ts) < ms_of(e->ts))
                    first = false;
                if (month[j].type == RATED && strcmp(month[j].id, e->id) == 0)
                    rated = true;
            }
            if (!first)
                break;
            if (fl == NULL && is_for(e, scope, key) && scope != SC_OFFICER &&
                in(ms_of(e->ts) + GRACE, from, to))
                f.n[M_UNFILED]++;    /* scan_without_filing, for the scan's unit */
            if (!is_for(who, scope, key) || !in(ms_of(e->ts), from, to))
                break;
            f.n[M_SCANNED]++;
            if (rated)
                f.n[M_RATED]++;
            break;
        }
        case RATED:
            if (!is_for(e, scope, key) || !in(ms_of(e->ts), from, to))
                break;
            f.n[M_RATINGS]++;
            if (e->score <= BAD_SCORE)
                f.n[M_BAD]++;
            break;
        case REPORTED:              /* reported_without_filing, for its unit */
            if (scope != SC_OFFICER && is_for(e, scope, key) && in(ms_of(e->ts), from, to))
                f.n[M_UNFILED]++;
            break;
        case OPENED:
            if (is_for(e, scope, key) && in(ms_of(e->ts), from, to))
                f.n[M_OPENED]++;
            break;
        case DECIDED: {
            const tev *d = last_of(DECIDED, e->id);
            if (!is_for(d, scope, key) || !in(ms_of(d->ts), from, to))
                break;
            f.n[M_DECIDED]++;
            f.fen += llround(atof(d->fine) * 100) + (d->conf ? llround(atof(d->conf) * 100) : 0);
            if (strcmp(d->word, "none") != 0)
                f.n[M_LENIENT]++;
            break;
        }
        case COMPLAINT:
            if (is_for(e, scope, key) && in(ms_of(e->ts), from, to))
                f.n[M_COMPLAINTS]++;
            break;
        case REVIEW:
            if (!is_for(e, scope, key) || !in(ms_of(e->ts), from, to))
                break;
            f.n[M_REVIEWS]++;
            if (strcmp(e->word, "upheld") != 0 && strcmp(e->word, "mediated") != 0)
                f.n[M_CORRECTIONS]++;
            break;
        }
    }
    return f;
}

/* num/den as the layout writes it: up to 6 decimals, no trailing zeros. */
static void rate_text(long long num, long long den, char *buf, size_t len)
{
    size_t n;
    if (den == 0) {
        snprintf(buf, len, "null");
        return;
    }
    snprintf(buf, len, "%.6f", (double)num / (double)den);
    n = strlen(buf);
    while (buf[n - 1] == '0')
        buf[--n] = '\0';
    if (buf[n - 1] == '.')
        buf[--n] = '\0';
}

/* The expected hash: field -> string. */
static json_t *expected_hash(const figures *f, const char *from, const char *to)
{
    static const char *const names[M_N] = {
        "filings", "unfiled", "scanned_by_deadline", "deadline_passed", "scanned", "rated",
        "ratings", "bad_ratings", "counted_inspections", "enterprises", "cases_opened",
        "cases_decided", "lenient", "complaints", "reviews", "corrections"};
    static const struct { const char *name; int num, den; } rates[] = {
        {"filing_rate", M_FILINGS, -1}, {"scan_rate", M_SBD, M_DLP},
        {"rating_rate", M_RATED, M_SCANNED}, {"bad_rating_share", M_BAD, M_RATINGS},
        {"inspections_per_enterprise", M_COUNTED, M_ENTERPRISES},
        {"lenient_share", M_LENIENT, M_DECIDED}, {"correction_rate", M_CORRECTIONS, M_REVIEWS}};
    json_t *o = json_object();
    char v[64];
    size_t i;
    for (i = 0; i < M_N; i++) {
        snprintf(v, sizeof(v), "%lld", f->n[i]);
        json_object_set_new(o, names[i], json_string(v));
    }
    for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        long long den = rates[i].den < 0 ? f->n[M_FILINGS] + f->n[M_UNFILED]
                                         : f->n[rates[i].den];
        rate_text(f->n[rates[i].num], den, v, sizeof(v));
        json_object_set_new(o, rates[i].name, json_string(v));
    }
    if (f->fen % 100 == 0)
        snprintf(v, sizeof(v), "%lld", f->fen / 100);
    else if (f->fen % 10 == 0)
        snprintf(v, sizeof(v), "%lld.%lld", f->fen / 100, f->fen % 100 / 10);
    else
        snprintf(v, sizeof(v), "%lld.%02lld", f->fen / 100, f->fen % 100);
    json_object_set_new(o, "fines", json_string(v));
    json_object_set_new(o, "open_critical", json_string("0"));
    json_object_set_new(o, "open_warning", json_string("0"));
    json_object_set_new(o, "open_info", json_string("0"));
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "to", json_string(to));
    return o;
}

/* The hash in Redis as an object (updated_at checked and dropped). */
static json_t *redis_hash(redisContext *c, const char *key)
{
    redisReply *r = it_cmd(c, "HGETALL %s", key);
    json_t *o = json_object();
    size_t i;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        json_object_set_new(o, r->element[i]->str, json_string(r->element[i + 1]->str));
    freeReplyObject(r);
    return o;
}

/* ---- fixture ---- */

typedef struct fixture {
    it_env env;                     /* first (it_fixture_new) */
    char dir[256];
    char ctlcfg[300];
    int mport;
} fixture;

static int setup(void **state)
{
    fixture *f = it_fixture_new(sizeof(*f));
    if (f == NULL || it_tmpdir(f->dir, sizeof(f->dir), "indlive") != 0) {
        it_fixture_free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_fixture_free(*state);
    return 0;
}

typedef struct probe {
    const char *scope, *key, *period;
    int sc;
    const char *from, *to;          /* as riskd writes them */
} probe;

static const probe probes[] = {
    {"unit", "U1", "window", SC_UNIT, "2025-09-01T00:00:00.000+08:00", "2025-10-01T00:00:00.000+08:00"},
    {"unit", "U1", "2025-09", SC_UNIT, "2025-09-01T00:00:00.000+08:00", "2025-10-01T00:00:00.000+08:00"},
    {"unit", "U1", "2025Q3", SC_UNIT, "2025-07-01T00:00:00.000+08:00", "2025-10-01T00:00:00.000+08:00"},
    {"officer", "O1", "window", SC_OFFICER, "2025-09-01T00:00:00.000+08:00",
     "2025-10-01T00:00:00.000+08:00"},
    {"officer", "O1", "2025Q3", SC_OFFICER, "2025-07-01T00:00:00.000+08:00",
     "2025-10-01T00:00:00.000+08:00"},
    {"region", "R1", "2025-09", SC_REGION, "2025-09-01T00:00:00.000+08:00",
     "2025-10-01T00:00:00.000+08:00"},
    {"region", "R1", "2025Q3", SC_REGION, "2025-07-01T00:00:00.000+08:00",
     "2025-10-01T00:00:00.000+08:00"},
    {"all", "all", "window", SC_ALL, "2025-09-01T00:00:00.000+08:00", "2025-10-01T00:00:00.000+08:00"},
    {"all", "all", "2025-09", SC_ALL, "2025-09-01T00:00:00.000+08:00", "2025-10-01T00:00:00.000+08:00"},
    {"all", "all", "2025Q3", SC_ALL, "2025-07-01T00:00:00.000+08:00", "2025-10-01T00:00:00.000+08:00"},
};
#define NPROBES (sizeof(probes) / sizeof(probes[0]))

/* The open alerts of the hash riskd:open whose subject names key (unit_id,
 * officer_id, region; every one for all), by severity: critical, warning,
 * info - riskd(8) INDICATORS, read from the hash itself. */
static void open_counts(redisContext *c, int sc, const char *key, long long n[3])
{
    static const char *const field[] = {"unit_id", "officer_id", "region", NULL};
    redisReply *r = it_cmd(c, "HVALS riskd:open");
    size_t i;
    n[0] = n[1] = n[2] = 0;
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        json_t *a = json_loads(r->element[i]->str, 0, NULL);
        const char *sev = json_string_value(json_object_get(a, "severity"));
        const char *v = field[sc] ? json_string_value(json_object_get(
                                        json_object_get(a, "subject"), field[sc])) : key;
        if (sev != NULL && v != NULL && strcmp(v, key) == 0)
            n[strcmp(sev, "critical") == 0 ? 0 : strcmp(sev, "warning") == 0 ? 1 : 2]++;
        json_decref(a);
    }
    freeReplyObject(r);
}

/* The region a unit's hashes name: the last one its events carry (every
 * unit here keeps one region). */
static const char *unit_region(const char *unit)
{
    const char *r = NULL;
    size_t i;
    for (i = 0; i < NMONTH; i++)
        if (strcmp(month[i].unit, unit) == 0 && month[i].region != NULL)
            r = month[i].region;
    return r;
}

static json_t *expected_of(redisContext *c, const probe *p)
{
    int64_t from = strcmp(p->period, "2025Q3") == 0 ? ms_of("07-01T00:00") : ms_of("09-01T00:00");
    /* October 1st 00:00 +08:00 */
    int64_t to = ms_of("09-30T00:00") + 24 * H_MS;
    figures fg = model(p->sc, p->key, from, to);
    json_t *o = expected_hash(&fg, p->from, p->to);
    long long n[3];
    char v[32];
    open_counts(c, p->sc, p->key, n);
    snprintf(v, sizeof(v), "%lld", n[0]);
    json_object_set_new(o, "open_critical", json_string(v));
    snprintf(v, sizeof(v), "%lld", n[1]);
    json_object_set_new(o, "open_warning", json_string(v));
    snprintf(v, sizeof(v), "%lld", n[2]);
    json_object_set_new(o, "open_info", json_string(v));
    if (p->sc == SC_UNIT && unit_region(p->key) != NULL)
        json_object_set_new(o, "region", json_string(unit_region(p->key)));
    return o;
}

/* Every probed hash equals the model (updated_at aside). */
static bool all_equal(void *arg)
{
    fixture *f = arg;
    size_t i;
    bool ok = true;
    for (i = 0; i < NPROBES && ok; i++) {
        char key[128];
        json_t *want = expected_of(f->env.c, &probes[i]), *got;
        snprintf(key, sizeof(key), "riskd:ind:%s:%s:%s", probes[i].scope, probes[i].key,
                 probes[i].period);
        got = redis_hash(f->env.c, key);
        json_object_del(got, "updated_at");
        ok = json_equal(want, got);
        json_decref(want);
        json_decref(got);
    }
    return ok;
}

static void write_month(fixture *f)
{
    char buf[1024];
    size_t i;
    for (i = 0; i < NMONTH; i++) {
        event_json(&month[i], buf, sizeof(buf));
        it_xadd(f->env.c, month[i].type >= OPENED ? "enforce:case" : "enforce:scan", buf, NULL, 0);
    }
    snprintf(buf, sizeof(buf), "{\"type\":\"clock.tick\",\"ts\":\"2025-%s:00+08:00\"}", NOW);
    it_xadd(f->env.c, "enforce:scan", buf, NULL, 0);
    it_xadd(f->env.c, "enforce:case", buf, NULL, 0);
}

static void ctl(fixture *f, itc_result *r, const char *const *args)
{
    itc_run(r, f->dir, 15000, args);
    if (r->status != 0)
        fail_msg("riskctl %s: exit %d: %s", args[2], r->status, r->err);
}

/* The rows of riskctl indicators --json without updated_at. */
static json_t *ctl_json(fixture *f, itc_result *r, const char *scope, const char *period)
{
    const char *args[] = {"-c", f->ctlcfg, "indicators", "--scope", scope, "--period", period,
                          "--json", NULL};
    json_t *doc, *row;
    size_t i;
    ctl(f, r, args);
    doc = json_loads(r->out, 0, NULL);
    assert_non_null(doc);
    json_array_foreach(json_object_get(doc, "rows"), i, row)
        json_object_del(row, "updated_at");
    return doc;
}

/* Every riskd:ind:* key and its content. */
static json_t *ind_dump(redisContext *c)
{
    redisReply *r = it_cmd(c, "KEYS riskd:ind:*");
    json_t *o = json_object();
    size_t i;
    for (i = 0; i < r->elements; i++) {
        const char *k = r->element[i]->str;
        redisReply *t = it_cmd(c, "TYPE %s", k);
        if (strcmp(t->str, "hash") == 0) {
            json_object_set_new(o, k, redis_hash(c, k));
        } else {
            redisReply *z = it_cmd(c, "ZRANGE %s 0 -1 WITHSCORES", k);
            json_t *a = json_array();
            size_t j;
            for (j = 0; j < z->elements; j++)
                json_array_append_new(a, json_string(z->element[j]->str));
            json_object_set_new(o, k, a);
            freeReplyObject(z);
        }
        freeReplyObject(t);
    }
    freeReplyObject(r);
    return o;
}

/* A rate of the model as /metrics renders it (%.6f), or -1 for none. */
static double metric_rate(long long num, long long den)
{
    char buf[32];
    if (den == 0)
        return -1;
    snprintf(buf, sizeof(buf), "%.6f", (double)num / (double)den);
    return atof(buf);
}

/* /metrics: the `all` window figures and the per-unit rates. */
static void check_metrics(fixture *f)
{
    static const char *const counts[M_N] = {
        "filings", "unfiled", "scanned_by_deadline", "deadline_passed", "scanned", "rated",
        "ratings", "bad_ratings", "counted_inspections", "enterprises", "cases_opened",
        "cases_decided", "lenient", "complaints", "reviews", "corrections"};
    static const char *const units[] = {"U1", "U2", "U3"};
    int64_t from = ms_of("09-01T00:00"), to = ms_of("09-30T00:00") + 24 * H_MS;
    figures all = model(SC_ALL, "all", from, to);
    char series[128];
    size_t i;
    for (i = 0; i < M_N; i++) {
        snprintf(series, sizeof(series), "riskd_indicator{indicator=\"%s\"}", counts[i]);
        if (it_metric(f->mport, series) != (double)all.n[i])
            fail_msg("%s: %g, want %lld", series, it_metric(f->mport, series), all.n[i]);
    }
    assert_true(it_metric(f->mport, "riskd_indicator{indicator=\"fines\"}") ==
                (double)all.fen / 100.0);
    assert_true(it_metric(f->mport, "riskd_indicator{indicator=\"filing_rate\"}") ==
                metric_rate(all.n[M_FILINGS], all.n[M_FILINGS] + all.n[M_UNFILED]));
    assert_true(it_metric(f->mport, "riskd_indicator{indicator=\"scan_rate\"}") ==
                metric_rate(all.n[M_SBD], all.n[M_DLP]));
    assert_true(it_metric(f->mport, "riskd_indicator{indicator=\"correction_rate\"}") ==
                metric_rate(all.n[M_CORRECTIONS], all.n[M_REVIEWS]));
    assert_true(it_metric(f->mport, "riskd_indicator{indicator=\"inspections_per_enterprise\"}")
                == metric_rate(all.n[M_COUNTED], all.n[M_ENTERPRISES]));
    for (i = 0; i < 3; i++) {
        figures u = model(SC_UNIT, units[i], from, to);
        snprintf(series, sizeof(series), "riskd_unit_filing_rate{unit=\"%s\"}", units[i]);
        assert_true(it_metric(f->mport, series) ==
                    metric_rate(u.n[M_FILINGS], u.n[M_FILINGS] + u.n[M_UNFILED]));
        snprintf(series, sizeof(series), "riskd_unit_scan_rate{unit=\"%s\"}", units[i]);
        assert_true(it_metric(f->mport, series) == metric_rate(u.n[M_SBD], u.n[M_DLP]));
    }
    /* the three units, no more series than that */
    assert_true(it_metric_sum(f->mport, "riskd_unit_filing_rate") > 0);
    assert_true(it_metric(f->mport, "riskd_unit_series_omitted") == 0);
    {
        char *body = malloc(1 << 20);
        const char *p;
        int n = 0;
        assert_non_null(body);
        assert_int_equal(it_http_get(f->mport, "/metrics", body, 1 << 20), 200);
        for (p = body; (p = strstr(p, "\nriskd_unit_scan_rate{")) != NULL; p++)
            n++;
        assert_int_equal(n, 3);
        free(body);
    }
}

static void test_known_month(void **state)
{
    fixture *f = *state;
    itc_result *r = malloc(sizeof(*r));
    json_t *scopes[4], *doc, *before, *after;
    static const char *const sn[4] = {"unit", "officer", "region", "all"};
    char json[256], args[1200], errfile[300];
    size_t i;
    int rc;

    assert_non_null(r);
    snprintf(f->ctlcfg, sizeof(f->ctlcfg), "%s/ctl.json", f->dir);
    assert_int_equal(it_write_config(f->ctlcfg, f->env.redis.port, "{}"), 0);
    f->mport = it_free_port();
    snprintf(json, sizeof(json), "{\"metrics\":{\"listen\":\"127.0.0.1:%d\"},"
             "\"indicators\":{\"per_unit_metrics\":true}}", f->mport);
    write_month(f);
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, json), 0);
    if (!it_wait_until(all_equal, f, 30000)) {
        /* show the first difference */
        for (i = 0; i < NPROBES; i++) {
            char key[128], *a, *b;
            json_t *want = expected_of(f->env.c, &probes[i]), *got;
            snprintf(key, sizeof(key), "riskd:ind:%s:%s:%s", probes[i].scope, probes[i].key,
                     probes[i].period);
            got = redis_hash(f->env.c, key);
            json_object_del(got, "updated_at");
            a = json_dumps(want, JSON_SORT_KEYS);
            b = json_dumps(got, JSON_SORT_KEYS);
            if (!json_equal(want, got))
                fprintf(stderr, "%s\n want %s\n got  %s\n", key, a, b);
            free(a);
            free(b);
            json_decref(want);
            json_decref(got);
        }
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("the indicators in Redis differ from the model");
    }
    /* the model is not vacuous: the unit's month has every kind of figure */
    {
        json_t *u = redis_hash(f->env.c, "riskd:ind:unit:U1:2025-09");
        assert_string_equal(json_string_value(json_object_get(u, "filings")), "6");
        assert_string_equal(json_string_value(json_object_get(u, "unfiled")), "1");
        assert_string_equal(json_string_value(json_object_get(u, "scan_rate")), "0.6");
        assert_string_equal(json_string_value(json_object_get(u, "fines")), "4451.25");
        assert_string_equal(json_string_value(json_object_get(u, "cases_opened")), "2");
        assert_string_equal(json_string_value(json_object_get(u, "correction_rate")),
                            "0.666667");
        assert_non_null(json_object_get(u, "updated_at"));
        json_decref(u);
    }

    check_metrics(f);

    /* a names list: riskctl indicators shows the names */
    {
        char names[300];
        FILE *fp;
        snprintf(names, sizeof(names), "%s/names.csv", f->dir);
        fp = fopen(names, "wb");
        assert_non_null(fp);
        fputs("kind,id,name\n"
              "unit,U1,银川市兴庆区市场监督管理局\n"
              "officer,O1,王某\n"
              "region,R1,兴庆区\n", fp);
        fclose(fp);
        const char *a[] = {"-c", f->ctlcfg, "lists", "load", "names", names, NULL};
        ctl(f, r, a);
    }

    /* riskctl indicators --json of one key, exactly */
    {
        const char *a[] = {"-c", f->ctlcfg, "indicators", "--scope", "unit", "--key", "U1",
                           "--period", "month", "--json", NULL};
        json_t *row;
        char *s, want[2048];
        long long on[3];
        /* U1's unfiled visit is an open critical alert: the counts are not all 0 */
        open_counts(f->env.c, SC_UNIT, "U1", on);
        assert_true(on[0] >= 1);
        ctl(f, r, a);
        doc = json_loads(r->out, 0, NULL);
        assert_non_null(doc);
        row = json_array_get(json_object_get(doc, "rows"), 0);
        assert_non_null(json_object_get(row, "updated_at"));
        json_object_del(row, "updated_at");
        s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
        snprintf(want, sizeof(want), "{\"label\":\"2025-09\",\"partitions\":1,\"period\":\"month\",\"rows\":[{"
               "\"bad_rating_share\":0.666667,\"bad_ratings\":2,\"cases_decided\":2,"
               "\"cases_opened\":2,\"complaints\":2,\"correction_rate\":0.666667,"
               "\"corrections\":2,\"counted_inspections\":5,\"deadline_passed\":5,\"enterprises\":4,"
               "\"filing_rate\":0.857143,\"filings\":6,\"fines\":4451.25,"
               "\"from\":\"2025-09-01T00:00:00.000+08:00\",\"inspections_per_enterprise\":1.25,"
               "\"key\":\"U1\",\"lenient\":2,\"lenient_share\":1.0,"
               "\"name\":\"银川市兴庆区市场监督管理局\","
               "\"open_critical\":%lld,\"open_info\":%lld,\"open_warning\":%lld,\"rated\":3,"
               "\"rating_rate\":0.6,\"ratings\":3,\"reviews\":3,\"scan_rate\":0.6,"
               "\"scanned\":5,\"scanned_by_deadline\":3,\"to\":\"2025-10-01T00:00:00.000+08:00\","
               "\"unfiled\":1}],\"scope\":\"unit\"}", on[0], on[2], on[1]);
        assert_string_equal(s, want);
        free(s);
        json_decref(doc);
    }
    /* the table: the figures, rates as percentages with one decimal */
    {
        const char *a[] = {"-c", f->ctlcfg, "indicators", "--scope", "unit", "--period",
                           "month", NULL};
        ctl(f, r, a);
        /* Chinese by default, with the names */
        assert_non_null(strstr(r->out, "单位 2025-09"));
        assert_non_null(strstr(r->out, "备案率"));
        assert_non_null(strstr(r->out, "按时扫码率"));
        assert_non_null(strstr(r->out, "银川市兴庆区市场监督管理局"));
        assert_null(strstr(r->out, "filing_rate"));
        assert_non_null(strstr(r->out, "U1"));
        assert_non_null(strstr(r->out, "U3"));
        assert_non_null(strstr(r->out, " 85.7%"));
        assert_non_null(strstr(r->out, " 60.0%"));
        assert_non_null(strstr(r->out, " 66.7%"));
        assert_non_null(strstr(r->out, " 100.0%"));
        assert_non_null(strstr(r->out, " 4451.25"));
        assert_non_null(strstr(r->out, " 1.25"));
    }

    /* alerts.language "en": English headers, names kept */
    {
        char encfg[300];
        const char *a[] = {"-c", encfg, "indicators", "--scope", "officer", "--period",
                           "window", NULL};
        snprintf(encfg, sizeof(encfg), "%s/ctl-en.json", f->dir);
        assert_int_equal(it_write_config(encfg, f->env.redis.port,
                                         "{\"alerts\":{\"language\":\"en\"}}"), 0);
        ctl(f, r, a);
        assert_non_null(strstr(r->out, "officer window"));
        assert_non_null(strstr(r->out, "filing_rate"));
        assert_non_null(strstr(r->out, "王某"));
        assert_null(strstr(r->out, "备案率"));
    }

    /* SIGKILL and restart: the same figures */
    for (i = 0; i < 4; i++)
        scopes[i] = ctl_json(f, r, sn[i], "quarter");
    it_riskd_signal(&f->env.riskd, SIGKILL);
    it_riskd_wait(&f->env.riskd, 10000);
    /* the hashes go: what is read next comes from the restarted riskd's
     * restored state (and the entries it applies again) */
    {
        redisReply *k = it_cmd(f->env.c, "KEYS riskd:ind:*");
        for (i = 0; i < k->elements; i++)
            freeReplyObject(it_cmd(f->env.c, "DEL %s", k->element[i]->str));
        freeReplyObject(k);
    }
    assert_int_equal(it_riskd_start(&f->env.riskd, f->env.redis.port, json), 0);
    if (!it_wait_until(all_equal, f, 30000)) {
        it_riskd_dump_log(&f->env.riskd);
        fail_msg("the restarted riskd did not write the same indicators");
    }
    for (i = 0; i < 4; i++) {
        json_t *now = ctl_json(f, r, sn[i], "quarter");
        if (!json_equal(scopes[i], now))
            fail_msg("riskctl indicators --scope %s differs after the restart", sn[i]);
        json_decref(now);
        json_decref(scopes[i]);
    }

    /* a replay writes nothing: every indicator key as it was */
    it_riskd_signal(&f->env.riskd, SIGTERM);
    assert_int_equal(it_riskd_wait(&f->env.riskd, 15000), 0);
    before = ind_dump(f->env.c);
    snprintf(errfile, sizeof(errfile), "%s/replay.err", f->dir);
    snprintf(args, sizeof(args), "%s/riskd --replay -c %s > /dev/null 2> %s", it_build_dir(),
             f->env.riskd.cfg, errfile);
    rc = system(args);
    assert_int_equal(rc, 0);
    after = ind_dump(f->env.c);
    assert_true(json_object_size(before) > 10);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_known_month, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
