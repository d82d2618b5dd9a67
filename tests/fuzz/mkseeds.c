/* tests/fuzz/mkseeds.c - writes seed inputs for fuzz-restore.
 *
 * Usage: mkseeds DIR. Every file written is one fuzz-restore input: a
 * target byte (0 clock, 1 tasks, 2.. the built-in detectors in registry
 * order, as fuzz-restore.c numbers them, then the natural keys of
 * dedupe.c, the open alerts of openstore.c, then the indicators)
 * followed by a valid snapshot of
 * that target, once empty and once holding state built from a few events
 * around 2025-03-01 about the ids fuzz-restore feeds (t1, t2, u1, o1, ...),
 * so the fuzzer starts from blobs every restore accepts. Detector state is
 * built through tests/lib/fakehost with the default configuration. The
 * bound detectors' targets (after the indicators) get the same state with
 * the fake host's open alerts: u64 n, the store's section of n bytes, the
 * detector's snapshot; once filed by the detector ("-bound", with a record
 * of another built-in and one of a detector no longer registered beside
 * them) and once kept by the detector itself, the store holding the
 * alerts by id only, as the release before left them ("-bound-old").
 * Exits 0, or 1 with a message when something cannot be built or
 * written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakehost.h"
#include "riskd/kit.h"
#include "internal.h"
#include "pipeline/indicators.h"

#define T0 INT64_C(1740792600000)

static const rk_detector_ops *const dets[] = {
    &rk__det_unfiled_inspection,
    &rk__det_bad_rating,
    &rk__det_fine_growth,
    &rk__det_complaint_cluster,
    &rk__det_inspection_frequency,
    &rk__det_discretion,
    &rk__det_review_correction,
    &rk__det_violation_hotspot,
    &rk__det_officer_credential,
};
#define N_DETS (sizeof(dets) / sizeof(dets[0]))

/* Write target byte + buf to DIR/name. Returns 0 or -1 with a message. */
static int write_seed(const char *dir, const char *name, unsigned target,
                      const rk_buf *buf)
{
    char path[4096];
    unsigned char t = (unsigned char)target;
    FILE *f;
    int ok;

    if (buf->oom) {
        fprintf(stderr, "mkseeds: %s: out of memory\n", name);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "wb")) == NULL) {
        perror(path);
        return -1;
    }
    ok = fwrite(&t, 1, 1, f) == 1 &&
         (buf->len == 0 || fwrite(buf->data, 1, buf->len, f) == buf->len);
    if (fclose(f) != 0 || !ok) {
        perror(path);
        return -1;
    }
    return 0;
}

static const char *det_name(uint32_t det, void *ud)
{
    (void)ud;
    return det < N_DETS ? dets[det]->name : "gone";
}

static int seeds_clock(const char *dir)
{
    rk__clock c;
    rk_buf b = {0};
    int rc;

    rk__clock_init(&c);
    rk__clock_snapshot(&c, &b, det_name, NULL);
    rc = write_seed(dir, "clock-empty", 0, &b);
    rk_buf_free(&b);
    rk__clock_observe(&c, RK_STREAM_SCAN, T0);
    rk__clock_observe(&c, RK_STREAM_CASE, T0 - RK_MINUTE);
    rk__clock_advance(&c, T0 - RK_MINUTE);
    if (rc != 0 ||
        rk__clock_timer_add(&c, T0 + RK_DAY, 0, "n:t1", 0) != 0 ||
        rk__clock_timer_add(&c, T0 + 10 * RK_MINUTE, 0, "s:t2", 0) != 0 ||
        rk__clock_timer_add(&c, T0 + 10 * RK_MINUTE, 0, "c:c1", 0) != 0 ||
        rk__clock_timer_add(&c, T0, 7, "x", 3) != 0) {   /* 7: unknown */
        rk__clock_free(&c);
        return -1;
    }
    rk__clock_snapshot(&c, &b, det_name, NULL);
    rc = write_seed(dir, "clock-timers", 0, &b);
    rk_buf_free(&b);
    rk__clock_free(&c);
    return rc;
}

static int seeds_tasks(const char *dir)
{
    static const char *const offs[] = {"o1", "o2"};
    rk__tasks t;
    rk_buf b = {0};
    rk_event ev;
    int rc;

    rk__tasks_init(&t);
    rk__tasks_snapshot(&t, &b);
    rc = write_seed(dir, "tasks-empty", 1, &b);
    rk_buf_free(&b);
    memset(&ev, 0, sizeof(ev));
    ev.type = RK_EV_INSPECTION_FILED;
    ev.ts = T0;
    ev.planned_at = T0 + RK_HOUR;
    ev.task_id = "t1";
    ev.unit_id = "u1";
    ev.enterprise_id = "e1";
    ev.officers = offs;
    ev.n_officers = 2;
    ev.ref = rk_fh_ref(RK_STREAM_SCAN, (uint64_t)T0, 0);
    if (rc != 0 || rk__tasks_add(&t, &ev, 30 * RK_DAY, false) != 0) {
        rk__tasks_free(&t);
        return -1;
    }
    ev.task_id = "t2";
    ev.n_officers = 1;
    ev.enterprise_id = NULL;
    ev.ts = T0 + 5;
    if (rk__tasks_add(&t, &ev, 30 * RK_DAY, false) != 0) {
        rk__tasks_free(&t);
        return -1;
    }
    rk__tasks_snapshot(&t, &b);
    rc = write_seed(dir, "tasks-two", 1, &b);
    rk_buf_free(&b);
    rk__tasks_free(&t);
    return rc;
}

/* Natural keys (target 2 + N_DETS): empty, and three keys. */
static int seeds_dedupe(const char *dir)
{
    rk__dedupe d;
    rk_buf b = {0};
    unsigned target = 2 + (unsigned)N_DETS;
    int rc;
    rk__dedupe_init(&d);
    rk__dedupe_set_window(&d, 400 * RK_DAY);
    rk__dedupe_snapshot(&d, &b);
    rc = write_seed(dir, "dedupe-empty", target, &b);
    rk_buf_free(&b);
    if (rc != 0 || rk__dedupe_record(&d, rk__dedupe_filing_key("t1"), 7, T0) != 0 ||
        rk__dedupe_record(&d, UINT64_C(0x8000000000000001), 8, T0) != 0 ||
        rk__dedupe_record(&d, 42, 9, T0 + 3 * RK_DAY) != 0) {
        rk__dedupe_free(&d);
        return -1;
    }
    rk__dedupe_snapshot(&d, &b);
    rc = write_seed(dir, "dedupe-three", target, &b);
    rk_buf_free(&b);
    rk__dedupe_free(&d);
    return rc;
}

/* The open alerts (target 3 + N_DETS): empty, a few of two detectors and
 * one no longer registered, and the same in the format of the release
 * before (the deadline heap: u32 1, names, u64 n, n x (i64 deadline, u32
 * name index, 16 bytes id)). */
static int seeds_ttl(const char *dir)
{
    static const char *const ids[] = {
        "0123456789abcdef0123456789abcdef", "00000000000000000000000000000001",
        "ffffffffffffffffffffffffffffffff", "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"};
    static const int64_t days[] = {30, 30, 31, 29};
    rk__ostore t;
    rk_buf b = {0};
    unsigned target = 3 + (unsigned)N_DETS, i;
    int rc, rule;

    rk__ostore_init(&t);
    rk__ostore_snapshot(&t, &b, det_name, NULL);
    rc = write_seed(dir, "ttl-empty", target, &b);
    rk_buf_free(&b);
    rule = rk__ostore_rule(&t, "growth");
    for (i = 0; i < 4; i++)
        (void)rk__ostore_add(&t, ids[i], T0 + (days[i] - 1) * RK_DAY,
                             i == 2 ? (unsigned)N_DETS : i, rule < 0 ? 0 : (unsigned)rule);
    /* the last one filed under a key of its detector's, with a unit */
    rule = rk__ostore_unit(&t, "640104000001");
    (void)rk__ostore_rekey(&t, t.last, rk__ostore_keyhash("640104000001", 12, 1),
                           T0 + 40 * RK_DAY, rule < 0 ? RK__OSTORE_NO_UNIT : (unsigned)rule);
    rk__ostore_snapshot(&t, &b, det_name, NULL);
    if (rc == 0)
        rc = write_seed(dir, "ttl-four", target, &b);
    rk_buf_free(&b);
    rk__ostore_free(&t);
    rk_buf_put_u32(&b, 1);
    rk_buf_put_u32(&b, (uint32_t)N_DETS + 1);
    for (i = 0; i <= (unsigned)N_DETS; i++)
        rk_buf_put_str(&b, det_name(i, NULL));
    rk_buf_put_u64(&b, 4);
    for (i = 0; i < 4; i++) {
        unsigned char p[16];
        (void)rk__alert_id_pack(ids[i], p);
        rk_buf_put_i64(&b, T0 + days[i] * RK_DAY);
        rk_buf_put_u32(&b, i == 2 ? (uint32_t)N_DETS : i);
        rk_buf_put_bytes(&b, p, sizeof(p));
    }
    if (rc == 0)
        rc = write_seed(dir, "ttl-four-v1", target, &b);
    rk_buf_free(&b);
    return rc;
}

/* Indicators (target 4 + N_DETS): empty, and after filings (one joint,
 * one amended), scans, a rating, decisions and time moving on. */
static int seeds_indicators(const char *dir)
{
    static const char *const offs[] = {"o1", "o2"};
    unsigned target = 4 + (unsigned)N_DETS;
    rk__ind_settings s;
    rk__ind *ind;
    rk_buf b = {0};
    rk_event ev;
    int rc, i;
    memset(&s, 0, sizeof(s));
    s.window = 30 * RK_DAY;
    s.scan_deadline = RK_DAY;
    s.bad_score = 2;
    s.exclude_kinds = 1u << RK_KIND_COMPLAINT;
    s.tz_offset_s = 8 * 3600;
    if ((ind = rk__ind_new(&s)) == NULL)
        return -1;
    rc = rk__ind_snapshot(ind, &b) == 0 ? write_seed(dir, "indicators-empty", target, &b) : -1;
    rk_buf_free(&b);
    for (i = 0; i < 10 && rc == 0; i++) {
        memset(&ev, 0, sizeof(ev));
        ev.type = i < 4 ? RK_EV_INSPECTION_FILED : i < 6 ? RK_EV_INSPECTION_SCANNED
                  : i < 7 ? RK_EV_INSPECTION_RATED : RK_EV_CASE_DECIDED;
        ev.ts = T0 + i * 3600000;
        ev.planned_at = ev.ts + (i == 3 ? 3 * RK_DAY : 0);
        ev.task_id = i % 2 ? "t1" : "t2";
        ev.case_id = i == 9 ? "c2" : "c1";
        ev.unit_id = "u1";
        ev.region = i == 0 ? "r1" : NULL;
        ev.enterprise_id = i == 2 ? "e2" : "e1";
        ev.joint_id = i < 2 ? "j1" : NULL;
        ev.officers = offs;
        ev.n_officers = (size_t)(1 + i % 2);
        ev.score = 1;
        ev.fine = 250.5;
        ev.leniency = RK_LENIENCY_LIGHTER;
        ev.flags = i == 2 || i == 8 ? RK_EVF_AMENDED : 0;
        rc = rk__ind_event(ind, &ev);
        rk__ind_advance(ind, ev.ts);
    }
    rk__ind_unfiled(ind, T0, "u1");
    rk__ind_advance(ind, T0 + 2 * RK_DAY);
    if (rc == 0)
        rc = rk__ind_snapshot(ind, &b) == 0 ? write_seed(dir, "indicators-some", target, &b)
                                           : -1;
    rk_buf_free(&b);
    rk__ind_free(ind);
    return rc;
}

/* Build some state in fh: events of every type around T0. */
static void feed(rk_fakehost *fh)
{
    static const char *const offs[] = {"o1", "o2"};
    rk_event ev;
    uint32_t seq = 0;

    for (int i = 0; i < 4; i++) {
        int64_t ts = T0 + i * RK_HOUR;
        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_FILED; ev.ts = ts; ev.planned_at = ts;
        ev.task_id = i % 2 ? "t1" : "t3"; ev.unit_id = "u1";
        ev.enterprise_id = "e1"; ev.officers = offs; ev.n_officers = 2;
        ev.ref = rk_fh_ref(RK_STREAM_SCAN, (uint64_t)ts, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_SCANNED; ev.ts = ts + 1;
        ev.task_id = "t2"; ev.enterprise_id = "e2"; ev.unit_id = "u2";
        ev.ref = rk_fh_ref(RK_STREAM_SCAN, (uint64_t)ts + 1, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_RATED; ev.ts = ts + 2; ev.score = 1 + i % 3;
        ev.task_id = "t1"; ev.enterprise_id = "e1"; ev.unit_id = "u1";
        ev.officers = offs; ev.n_officers = 1;
        ev.ref = rk_fh_ref(RK_STREAM_SCAN, (uint64_t)ts + 2, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_REPORTED; ev.ts = ts + 3;
        ev.enterprise_id = "e9"; ev.unit_id = "u1";
        ev.ref = rk_fh_ref(RK_STREAM_SCAN, (uint64_t)ts + 3, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_OPENED; ev.ts = ts + 4; ev.case_id = i % 2 ? "c1" : "c2";
        ev.unit_id = "u1"; ev.task_id = "t4"; ev.source = RK_SOURCE_INSPECTION;
        ev.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts + 4, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_DECIDED; ev.ts = ts - 40 * RK_DAY * i + 5;
        ev.case_id = "c1"; ev.unit_id = "u1"; ev.fine = 1000.0 * (i + 1);
        ev.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts + 5, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_COMPLAINT; ev.ts = ts + 6; ev.complaint_id = "k1";
        ev.unit_id = "u1"; ev.officers = offs; ev.n_officers = 2;
        ev.enterprise_id = "e1"; ev.region = "r1";
        ev.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts + 6, seq++);
        rk_fh_event(fh, &ev);

        /* The practice detectors' fields: an item over its benchmark and
         * exempt, an area, a correcting review. */
        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_DECIDED; ev.ts = ts + 7;
        ev.case_id = i % 2 ? "d1" : "d2"; ev.unit_id = i % 2 ? "u1" : "u2";
        ev.fine = 1000.0 * (i + 1); ev.item_code = "i1";
        ev.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts + 7, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_OPENED; ev.ts = ts + 8; ev.case_id = "c9";
        ev.unit_id = "u1"; ev.source = RK_SOURCE_REPORT; ev.region = "r1"; ev.domain = "d1";
        ev.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts + 8, seq++);
        rk_fh_event(fh, &ev);

        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_CASE_REVIEW; ev.ts = ts + 9; ev.case_id = "c1";
        ev.unit_id = "u1"; ev.outcome = RK_OUTCOME_REVOKED;
        ev.ref = rk_fh_ref(RK_STREAM_CASE, (uint64_t)ts + 9, seq++);
        rk_fh_event(fh, &ev);
    }
}

/* The fake host keeps every record under detector index 0: ud names it;
 * 1 is another built-in, 2 one no longer registered (seed_bound). */
static const char *fh_det_name(uint32_t det, void *ud)
{
    unsigned i;
    if (det == 0)
        return (const char *)ud;
    for (i = 0; det == 1 && i < N_DETS; i++)
        if (strcmp(dets[i]->name, (const char *)ud) != 0)
            return dets[i]->name;
    return "gone";
}

static rk_fakehost *seed_host(unsigned i)
{
    char err[RK_ERRLEN];
    rk_fakehost *fh;

    if ((fh = rk_fh_new(dets[i], "{}", err, sizeof(err))) == NULL) {
        fprintf(stderr, "mkseeds: %s: %s\n", dets[i]->name, err);
        return NULL;
    }
    /* Lists for the practice detectors, about the ids fed below. */
    if (rk_fh_list(fh, "whitelist", "enterprise_id,allowance,note\ne1,0,\n") != 0 ||
        rk_fh_list(fh, "benchmarks", "item_code,level,min_fine,max_fine\ni1,,0,500\n") != 0 ||
        rk_fh_list(fh, "exempt", "item_code,kind\ni1,no_penalty\n") != 0 ||
        rk_fh_list(fh, "credentials", "officer_id,unit_id,valid_from,valid_until\n"
                   "o1,u1,2024-01-01,\n") != 0) {
        fprintf(stderr, "mkseeds: a sample list was refused\n");
        rk_fh_free(fh);
        return NULL;
    }
    return fh;
}

/* A bound detector's seed: the state feed() builds on a host with open
 * ops (bound) or without (the detector keeps its alerts). */
static int seed_bound(const char *dir, unsigned i, int bound)
{
    char name[128];
    rk_fakehost *fh = seed_host(i);
    rk_buf st = {0}, b = {0};
    int rc;

    if (fh == NULL)
        return -1;
    if (!bound)
        fh->open = NULL;
    feed(fh);
    if (bound) {                    /* beside them: another built-in's, a gone one's */
        int rule = rk__ostore_rule(fh->ostore, "growth");
        if (rule < 0 ||
            rk__ostore_add(fh->ostore, "0123456789abcdef0123456789abcdef", T0, 1,
                           (uint32_t)rule) != 0 ||
            rk__ostore_add(fh->ostore, "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0", T0, 2,
                           (uint32_t)rule) != 0) {
            rk_fh_free(fh);
            return -1;
        }
    }
    rk__ostore_snapshot(fh->ostore, &st, fh_det_name, (void *)(uintptr_t)dets[i]->name);
    rk_buf_put_u64(&b, (uint64_t)st.len);
    rk_buf_put_bytes(&b, st.data, st.len);
    rc = st.oom ? -1 : dets[i]->snapshot(fh->self, &b);
    snprintf(name, sizeof(name), "%s-bound%s", dets[i]->name, bound ? "" : "-old");
    rc = rc != 0 ? -1 : write_seed(dir, name, 5 + (unsigned)N_DETS + i, &b);
    rk_buf_free(&st);
    rk_buf_free(&b);
    rk_fh_free(fh);
    return rc;
}

static int seeds_detector(const char *dir, unsigned i)
{
    char name[128];
    rk_fakehost *fh = seed_host(i);
    rk_buf b = {0};
    int rc;

    if (fh == NULL)
        return -1;
    rc = dets[i]->snapshot(fh->self, &b);
    snprintf(name, sizeof(name), "%s-empty", dets[i]->name);
    rc = rc != 0 ? -1 : write_seed(dir, name, 2 + i, &b);
    rk_buf_free(&b);
    feed(fh);
    if (rc == 0)
        rc = dets[i]->snapshot(fh->self, &b);
    snprintf(name, sizeof(name), "%s-state", dets[i]->name);
    rc = rc != 0 ? -1 : write_seed(dir, name, 2 + i, &b);
    rk_buf_free(&b);
    rk_fh_free(fh);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkseeds DIR\n");
        return 2;
    }
    if (seeds_clock(argv[1]) != 0 || seeds_tasks(argv[1]) != 0 ||
        seeds_dedupe(argv[1]) != 0 || seeds_ttl(argv[1]) != 0 ||
        seeds_indicators(argv[1]) != 0)
        return 1;
    for (unsigned i = 0; i < N_DETS; i++)
        if (seeds_detector(argv[1], i) != 0 || seed_bound(argv[1], i, 1) != 0 ||
            seed_bound(argv[1], i, 0) != 0)
            return 1;
    return 0;
}
