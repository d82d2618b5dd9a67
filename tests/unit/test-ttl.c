/* tests/unit/test-ttl.c - the open alerts and their alerts.open_ttl
 * closes (daemon/pipeline/openstore.c).
 *
 *   order        due records leave by ts + ttl, ties by (detector, id), and
 *                only once ts + ttl is before "now"
 *   ids          the 32 hex digits pack into 16 bytes and back; anything
 *                else is refused
 *   find/remove  an alert is found by (ts, detector, id), written twice it
 *                is one; once removed it is neither found nor closed
 *   keys         records filed under a key hash (rekey) are found by
 *                (detector, key hash), several a key, among thousands of
 *                colliding ones, and leave the index and heap when removed
 *                in any order; their slots stay until tidied; one written
 *                again after filing is one record once filed
 *   churn        200000 alerts added (some late) and most removed again in
 *                random order: every live one still found and closed once,
 *                in order; the store compacts and gives memory back
 *   snapshot     a round trip keeps every record (key hash, resolve_at,
 *                unit) and writes the same bytes; detectors are renamed by
 *                name, unknown ones dropped and counted; every truncation
 *                and a bad version are refused, leaving the store as it was
 *   old formats  the deadline heap (version 1) and the sorted array
 *                (version 2) the releases before wrote restore into the
 *                store: every alert open, found by its id, closed at its
 *                deadline
 *   memory       48 bytes a record, and the store's bytes per open alert
 *                (slots, heap, index) with their slack while it grows and
 *                empties
 *   memory by rule
 *                what an open alert costs, for the key and subject shape of
 *                every rule the built-in detectors keep open
 *                (detectors/lifecycle.c), measured with malloc's usable
 *                sizes: printed; the store's part held to the 64-byte
 *                budget */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

static void mkid(unsigned v, char out[33])
{
    snprintf(out, 33, "%08x%08x%08x%08x", v * 2654435761u, v, ~v, v ^ 0x5a5a5a5au);
}

static void test_order(void **st)
{
    rk__ostore s;
    rk__oa oa;
    char a[33], b[33], out[33];
    (void)st;
    rk__ostore_init(&s);
    mkid(1, a);
    mkid(2, b);
    assert_int_equal(rk__ostore_add(&s, a, 300, 0, 0), 0);
    assert_int_equal(rk__ostore_add(&s, b, 100, 1, 0), 0);
    assert_int_equal(rk__ostore_add(&s, a, 100, 1, 0), 0);
    assert_int_equal(rk__ostore_add(&s, b, 100, 0, 0), 0);
    assert_true(rk__ostore_due_at(&s, 111, 10));
    assert_false(rk__ostore_due_at(&s, 110, 10));
    assert_int_equal(rk__ostore_pop_due(&s, 110, 10, &oa), 0);   /* not before now */
    assert_int_equal(rk__ostore_pop_due(&s, 111, 10, &oa), 1);
    assert_int_equal(oa.ts, 100);
    assert_int_equal(oa.det, 0);
    assert_int_equal(rk__ostore_pop_due(&s, 111, 10, &oa), 1);
    assert_int_equal(oa.det, 1);
    rk__alert_id_unpack(oa.id, out);
    assert_string_equal(out, strcmp(a, b) < 0 ? a : b);
    assert_int_equal(rk__ostore_pop_due(&s, 111, 10, &oa), 1);
    rk__alert_id_unpack(oa.id, out);
    assert_string_equal(out, strcmp(a, b) < 0 ? b : a);
    assert_int_equal(rk__ostore_pop_due(&s, 111, 10, &oa), 0);
    assert_int_equal(rk__ostore_count(&s), 1);
    /* a longer open_ttl (a reload) moves every deadline */
    assert_int_equal(rk__ostore_pop_due(&s, 320, 20, &oa), 0);
    assert_int_equal(rk__ostore_pop_due(&s, 321, 20, &oa), 1);
    assert_int_equal(oa.ts, 300);
    assert_int_equal(rk__ostore_count(&s), 0);
    assert_false(rk__ostore_due_at(&s, INT64_MAX, 0));
    rk__ostore_free(&s);
}

static void test_ids(void **st)
{
    unsigned char p[16];
    char out[33];
    rk__ostore s;
    (void)st;
    rk__ostore_init(&s);
    assert_int_equal(rk__alert_id_pack("00ff10a0b0c0d0e0f00112233445566f", p), 0);
    assert_int_equal(p[1], 0xff);
    rk__alert_id_unpack(p, out);
    assert_string_equal(out, "00ff10a0b0c0d0e0f00112233445566f");
    assert_int_equal(rk__alert_id_pack("00FF10a0b0c0d0e0f00112233445566f", p), -1);
    assert_int_equal(rk__alert_id_pack("00ff10a0b0c0d0e0f00112233445566", p), -1);
    assert_int_equal(rk__alert_id_pack("00ff10a0b0c0d0e0f00112233445566f0", p), -1);
    assert_int_equal(rk__alert_id_pack("00ff10a0b0c0d0e0f0011223344556zz", p), -1);
    assert_int_equal(rk__ostore_add(&s, "not an id", 1, 0, 0), -1);
    assert_int_equal(rk__ostore_add(&s, "00ff10a0b0c0d0e0f00112233445566f", 1, 65536, 0), -1);
    assert_int_equal(rk__ostore_add(&s, "00ff10a0b0c0d0e0f00112233445566f", 1, 0, 65536), -1);
    assert_int_equal(rk__ostore_count(&s), 0);
    assert_int_equal(rk__ostore_find(&s, 1, 0, "00ff10a0b0c0d0e0f00112233445566f"), -1);
    assert_int_equal(rk__ostore_find(&s, 1, 0, "bad"), -1);
    rk__ostore_free(&s);
}

static void test_find_remove(void **st)
{
    rk__ostore s;
    rk__oa oa;
    char id[33], got[33];
    int ri, k;
    (void)st;
    rk__ostore_init(&s);
    assert_int_equal(rk__ostore_rule(&s, "unit_ratio"), 0);
    assert_int_equal(rk__ostore_rule(&s, "growth"), 1);
    assert_int_equal(rk__ostore_rule(&s, "unit_ratio"), 0);
    assert_string_equal(rk__ostore_rule_name(&s, 1), "growth");
    assert_string_equal(rk__ostore_rule_name(&s, 7), "");
    for (k = 0; k < 10; k++) {
        mkid((unsigned)k, id);
        assert_int_equal(rk__ostore_add(&s, id, 1000 + k, (uint32_t)(k % 2), 1), 0);
    }
    /* written twice: one alert */
    mkid(3, id);
    assert_int_equal(rk__ostore_add(&s, id, 1003, 1, 1), 1);
    assert_int_equal(rk__ostore_count(&s), 10);
    /* one id under another detector: another alert */
    mkid(4, id);
    assert_int_equal(rk__ostore_add(&s, id, 1004, 1, 0), 0);
    ri = rk__ostore_find(&s, 1004, 1, id);
    assert_true(ri >= 0);
    assert_int_equal(s.v[ri].rule, 0);
    ri = rk__ostore_find(&s, 1004, 0, id);
    assert_true(ri >= 0);
    assert_int_equal(s.v[ri].rule, 1);
    assert_int_equal(rk__ostore_find(&s, 1004, 2, id), -1);
    assert_int_equal(rk__ostore_find(&s, 1005, 0, id), -1);     /* another ts */
    rk__ostore_remove(&s, (uint32_t)ri);
    assert_int_equal(rk__ostore_find(&s, 1004, 0, id), -1);
    assert_true(rk__ostore_find(&s, 1004, 1, id) >= 0);          /* the other stays */
    assert_int_equal(rk__ostore_count(&s), 10);
    rk__ostore_remove(&s, (uint32_t)rk__ostore_find(&s, 1004, 1, id));
    rk__ostore_remove(&s, (uint32_t)rk__ostore_find(&s, 1004, 1, id));  /* -1: nothing */
    assert_int_equal(rk__ostore_count(&s), 9);
    /* the oldest removed: the next one is due, not the removed one */
    mkid(0, id);
    rk__ostore_remove(&s, (uint32_t)rk__ostore_find(&s, 1000, 0, id));
    assert_false(rk__ostore_due_at(&s, 1001 + 5, 5));
    assert_true(rk__ostore_due_at(&s, 1001 + 6, 5));
    assert_int_equal(rk__ostore_pop_due(&s, INT64_MAX, 0, &oa), 1);
    assert_int_equal(oa.ts, 1001);
    mkid(1, id);
    assert_int_equal(rk__ostore_find(&s, 1001, 1, id), -1);      /* closed: gone */
    /* a late one goes before the rest */
    mkid(77, id);
    assert_int_equal(rk__ostore_add(&s, id, 500, 0, 0), 0);
    assert_int_equal(rk__ostore_pop_due(&s, INT64_MAX, 0, &oa), 1);
    assert_int_equal(oa.ts, 500);
    /* everything else closes once, the removed ones never */
    k = 0;
    while (rk__ostore_pop_due(&s, INT64_MAX, 0, &oa)) {
        rk__alert_id_unpack(oa.id, got);
        mkid(4, id);
        assert_string_not_equal(got, id);
        assert_int_equal(oa.ts, 1002 + k + (oa.ts >= 1004));
        k++;
    }
    assert_int_equal(k, 7);
    assert_int_equal(rk__ostore_count(&s), 0);
    assert_int_equal(rk__ostore_bytes(&s), 0);                   /* given back */
    rk__ostore_free(&s);
}

/* A pseudo-random sequence (deterministic). */
static uint32_t rnd(uint64_t *x)
{
    *x = *x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(*x >> 33);
}

/* ts of alert k: in order, every tenth one up to 5000 late */
static int64_t churn_ts(unsigned k)
{
    return (int64_t)k * 10 - (k % 10 == 0 ? (int64_t)(k * 7919u % 5000u) : 0);
}

static void test_churn(void **st)
{
    enum { N = 200000 };
    rk__ostore s;
    rk__oa oa;
    unsigned char *gone = calloc(N, 1);
    uint64_t x = 7;
    size_t live = N, peak = 0;
    int64_t last = INT64_MIN;
    char id[33], got[33];
    unsigned k, closed = 0;
    (void)st;
    assert_non_null(gone);
    rk__ostore_init(&s);
    for (k = 0; k < N; k++) {
        mkid(k, id);
        assert_int_equal(rk__ostore_add(&s, id, churn_ts(k), k % 5, k % 3), 0);
    }
    peak = rk__ostore_bytes(&s);
    /* resolve nine in ten, in random order */
    while (live > N / 10) {
        unsigned v = rnd(&x) % N;
        int ri;
        if (gone[v])
            continue;
        mkid(v, id);
        ri = rk__ostore_find(&s, churn_ts(v), v % 5, id);
        assert_true(ri >= 0);
        assert_int_equal(s.v[ri].rule, v % 3);
        rk__ostore_remove(&s, (uint32_t)ri);
        gone[v] = 1;
        live--;
    }
    assert_int_equal(rk__ostore_count(&s), live);
    rk__ostore_tidy(&s);
    assert_true(rk__ostore_bytes(&s) < peak / 8);            /* memory given back */
    for (k = 0; k < N; k++) {
        mkid(k, id);
        assert_int_equal(rk__ostore_find(&s, churn_ts(k), k % 5, id) >= 0, !gone[k]);
    }
    while (rk__ostore_pop_due(&s, INT64_MAX, 0, &oa)) {
        unsigned v;
        assert_true(oa.ts >= last);
        last = oa.ts;
        rk__alert_id_unpack(oa.id, got);
        assert_int_equal(sscanf(got + 8, "%8x", &v), 1);
        assert_false(gone[v]);
        gone[v] = 1;
        closed++;
    }
    assert_int_equal(closed, N / 10);
    rk__ostore_free(&s);
    free(gone);
}

/* The slots of (det, keyhash), sorted, into out; their number. */
static size_t key_slots(const rk__ostore *s, uint32_t det, uint64_t kh, int *out, size_t max)
{
    uint32_t it = 0;
    size_t n = 0, i, j;
    int slot;
    while ((slot = rk__ostore_next_key(s, det, kh, &it)) >= 0) {
        assert_true(n < max);
        out[n++] = slot;
    }
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static void test_keys(void **st)
{
    enum { N = 6000, KEYS = 1000 };
    rk__ostore s;
    rk__oa oa;
    int *slot = calloc(N, sizeof(int)), got[16];
    unsigned char *gone = calloc(N, 1);
    uint64_t x = 3, kh[4];
    char id[33], key[32];
    unsigned k, live = N;
    int64_t last = INT64_MIN;
    (void)st;
    assert_non_null(slot);
    assert_non_null(gone);
    rk__ostore_init(&s);
    assert_int_equal(rk__ostore_unit(&s, "640104000001"), 0);
    assert_int_equal(rk__ostore_unit(&s, "640104000002"), 1);
    assert_int_equal(rk__ostore_unit(&s, "640104000001"), 0);
    assert_string_equal(rk__ostore_unit_name(&s, 1), "640104000002");
    assert_string_equal(rk__ostore_unit_name(&s, RK__OSTORE_NO_UNIT), "");
    /* seeded: one key, another rule, another hash */
    assert_true(rk__ostore_keyhash("u1", 2, 1) != rk__ostore_keyhash("u1", 2, 2));
    assert_true(rk__ostore_keyhash("u1", 2, 1) == rk__ostore_keyhash("u1", 2, 1));
    /* six alerts a key (k % KEYS), two detectors, filed as they are added */
    for (k = 0; k < N; k++) {
        uint64_t h;
        snprintf(key, sizeof(key), "key%u", k % KEYS);
        h = rk__ostore_keyhash(key, strlen(key), 7);
        mkid(k, id);
        assert_int_equal(rk__ostore_add(&s, id, churn_ts(k), k % KEYS % 2, 0), 0);
        slot[k] = (int)s.last;
        assert_int_equal(rk__ostore_rekey(&s, s.last, h, 1000 + k % KEYS, k % 2), 0);
        /* no longer found by its id: filed under its key */
        assert_int_equal(rk__ostore_find(&s, churn_ts(k), k % KEYS % 2, id), -1);
    }
    assert_int_equal(rk__ostore_rekey(&s, N + 5, 0, 0, 0), -1);
    /* written again after it was filed: a second record until filed, then one */
    {
        uint64_t h0;
        int got0[16];
        mkid(0, id);
        snprintf(key, sizeof(key), "key0");
        h0 = rk__ostore_keyhash(key, strlen(key), 7);
        assert_int_equal(rk__ostore_add(&s, id, churn_ts(0), 0, 0), 0);
        assert_int_equal(rk__ostore_count(&s), N + 1);
        assert_int_equal(rk__ostore_rekey(&s, s.last, h0, 77, 0), 1);
        assert_int_equal(rk__ostore_count(&s), N);
        assert_int_equal(key_slots(&s, 0, h0, got0, 16), 6);
        assert_int_equal(got0[0], slot[0]);
        assert_int_equal(rk__ostore_at(&s, (uint32_t)slot[0])->resolve_at, 77);
    }
    for (k = 0; k < 4; k++) {
        snprintf(key, sizeof(key), "key%u", k);
        kh[k] = rk__ostore_keyhash(key, strlen(key), 7);
    }
    /* key 1's six, and none under the other detector */
    assert_int_equal(key_slots(&s, 1, kh[1], got, 16), 6);
    for (k = 0; k < 6; k++) {
        const rk__oa *r = rk__ostore_at(&s, (uint32_t)got[k]);
        assert_int_equal(got[k], slot[1 + k * KEYS]);
        assert_int_equal(r->resolve_at, 1001);
        assert_int_equal(r->unit, (1 + k * KEYS) % 2);
    }
    assert_int_equal(key_slots(&s, 0, kh[1], got, 16), 0);
    /* remove in random order: the rest of each key still found, the heap
     * closes only the live ones, slots keep their numbers */
    while (live > N / 3) {
        unsigned v = rnd(&x) % N;
        if (gone[v])
            continue;
        rk__ostore_remove(&s, (uint32_t)slot[v]);
        rk__ostore_remove(&s, (uint32_t)slot[v]);       /* twice: nothing */
        gone[v] = 1;
        live--;
    }
    assert_int_equal(rk__ostore_count(&s), live);
    for (k = 0; k < KEYS; k++) {
        unsigned i, n = 0;
        uint64_t h;
        snprintf(key, sizeof(key), "key%u", k);
        h = rk__ostore_keyhash(key, strlen(key), 7);
        for (i = k; i < N; i += KEYS)
            n += !gone[i];
        assert_int_equal(key_slots(&s, k % 2, h, got, 16), n);
        for (i = 0; i < n; i++)
            assert_int_equal(rk__ostore_at(&s, (uint32_t)got[i])->keyhash, h);
    }
    /* a tidy renumbers: still found by key, closed in order, each once */
    rk__ostore_tidy(&s);
    assert_int_equal(s.n, live);
    k = 0;
    while (rk__ostore_pop_due(&s, INT64_MAX, 0, &oa)) {
        char got_id[33];
        unsigned v;
        assert_true(oa.ts >= last);
        last = oa.ts;
        rk__alert_id_unpack(oa.id, got_id);
        assert_int_equal(sscanf(got_id + 8, "%8x", &v), 1);
        assert_false(gone[v]);
        gone[v] = 1;
        k++;
    }
    assert_int_equal(k, live);
    assert_int_equal(rk__ostore_bytes(&s), 0);
    rk__ostore_free(&s);
    free(slot);
    free(gone);
}

static const char *const names_a[] = {"bad_rating", "fine_growth", "gone"};
static const char *const names_b[] = {"fine_growth", "x", "bad_rating"};

static const char *name_of(uint32_t det, void *ud)
{
    (void)ud;
    return det < 3 ? names_a[det] : "";
}

static int index_of(const char *name, void *ud)
{
    int i;
    (void)ud;
    for (i = 0; i < 3; i++)
        if (strcmp(names_b[i], name) == 0)
            return i;
    return -1;
}

static int index_same(const char *name, void *ud);

/* The slot of the record of ts filed under key hash 77 (detector 0). */
static uint32_t slot77(const rk__ostore *s, int64_t ts)
{
    uint32_t it = 0;
    int slot;
    while ((slot = rk__ostore_next_key(s, 0, 77, &it)) >= 0)
        if (s->v[slot].ts == ts)
            return (uint32_t)slot;
    fail_msg("no record of ts %lld", (long long)ts);
    return UINT32_MAX;
}

/* Units (or a detector's extras) live while an open alert names them: the
 * last one to go gives the unit's index back (taken by the next new one),
 * a checkpoint writes only the units in use, and a store whose alerts
 * each name a unit of their own stays as big as its open alerts. */
static void test_units(void **st)
{
    enum { N = 20000 };
    rk__ostore s, w;
    rk_buf b = {0};
    size_t dropped;
    char id[33], u[32];
    unsigned k;
    uint32_t peak = 0;
    (void)st;
    rk__ostore_init(&s);
    rk__ostore_init(&w);
    assert_int_equal(rk__ostore_rule(&s, "r"), 0);
    for (k = 0; k < N; k++) {
        int un;
        mkid(k, id);
        snprintf(u, sizeof(u), "case%u\x1funit", k);
        assert_int_equal(rk__ostore_add(&s, id, 1000 + k, 0, 0), 0);
        assert_true((un = rk__ostore_unit(&s, u)) >= 0);
        assert_int_equal(rk__ostore_rekey(&s, s.last, 77, INT64_MAX, (uint32_t)un), 0);
        if (k >= 10) {              /* ten open at a time */
            rk__ostore_remove(&s, slot77(&s, 1000 + k - 10));
            if (s.nunits > peak)
                peak = s.nunits;
        }
    }
    assert_true(peak <= 16);
    assert_int_equal(s.nulive, 10);
    /* the arena was packed as units went: about the ten live strings */
    assert_true(s.ulen - s.udead <= 10 * 16 && s.ucap <= 1024);
    /* a live unit is found again (its id), after all the churn */
    snprintf(u, sizeof(u), "case%u\x1funit", N - 3);
    assert_int_equal(rk__ostore_unit(&s, u), (int)s.v[slot77(&s, 1000 + N - 3)].unit);
    assert_int_equal(s.nulive, 10);
    /* one alert filed with another unit: the old one goes */
    assert_int_equal(rk__ostore_rekey(&s, slot77(&s, 1000 + N - 1), 77, INT64_MAX,
                                      (uint32_t)rk__ostore_unit(&s, "U9")), 0);
    assert_int_equal(s.nulive, 10);
    rk__ostore_snapshot(&s, &b, name_of, NULL);
    assert_false(b.oom);
    assert_int_equal(rk__ostore_restore(&w, b.data, b.len, index_same, NULL, 0, &dropped), 0);
    assert_int_equal(w.nunits, 10);
    assert_int_equal(w.nulive, 10);
    assert_string_equal(rk__ostore_unit_name(&w, w.v[slot77(&w, 1000 + N - 1)].unit), "U9");
    while (rk__ostore_count(&s) > 0) {
        rk__oa oa;
        assert_int_equal(rk__ostore_pop_due(&s, INT64_MAX, 0, &oa), 1);
    }
    assert_int_equal(s.nulive, 0);
    rk_buf_free(&b);
    rk__ostore_free(&s);
    rk__ostore_free(&w);
}

static int index_same(const char *name, void *ud)
{
    int i;
    (void)ud;
    for (i = 0; i < 3; i++)
        if (strcmp(names_a[i], name) == 0)
            return i;
    return -1;
}

static void test_snapshot(void **st)
{
    rk__ostore s, u, w;
    rk_buf b = {0}, b2 = {0};
    rk__oa oa;
    size_t dropped = 99, cut;
    char id[33], out[33];
    unsigned i;
    (void)st;
    rk__ostore_init(&s);
    rk__ostore_init(&u);
    rk__ostore_init(&w);
    assert_int_equal(rk__ostore_rule(&s, "r0"), 0);
    assert_int_equal(rk__ostore_rule(&s, "r1"), 1);
    for (i = 0; i < 30; i++) {
        mkid(i, id);
        assert_int_equal(rk__ostore_add(&s, id, 1000 + (int64_t)(i % 7), i % 3, i % 2), 0);
    }
    mkid(6, id);
    rk__ostore_remove(&s, (uint32_t)rk__ostore_find(&s, 1006, 0, id));
    /* two filed under a key, one with a unit */
    assert_int_equal(rk__ostore_unit(&s, "640104000001"), 0);
    mkid(9, id);
    assert_int_equal(rk__ostore_rekey(&s, (uint32_t)rk__ostore_find(&s, 1002, 0, id),
                                      rk__ostore_keyhash("k", 1, 1), 5000, 0), 0);
    mkid(10, id);
    assert_int_equal(rk__ostore_rekey(&s, (uint32_t)rk__ostore_find(&s, 1003, 1, id),
                                      rk__ostore_keyhash("k", 1, 1), INT64_MAX,
                                      RK__OSTORE_NO_UNIT), 0);
    rk__ostore_snapshot(&s, &b, name_of, NULL);
    assert_false(b.oom);
    /* the same detectors: the same bytes again */
    assert_int_equal(rk__ostore_restore(&w, b.data, b.len, index_same, NULL, 0, &dropped), 0);
    assert_int_equal(dropped, 0);
    rk__ostore_snapshot(&w, &b2, name_of, NULL);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    mkid(4, id);
    assert_int_equal(w.v[rk__ostore_find(&w, 1004, 1, id)].rule, 0);
    mkid(7, id);
    assert_string_equal(rk__ostore_rule_name(&w, w.v[rk__ostore_find(&w, 1000, 1, id)].rule),
                        "r1");
    mkid(6, id);
    assert_int_equal(rk__ostore_find(&w, 1006, 0, id), -1);
    {
        int got[4];
        const rk__oa *r;
        assert_int_equal(key_slots(&w, 0, rk__ostore_keyhash("k", 1, 1), got, 4), 1);
        r = rk__ostore_at(&w, (uint32_t)got[0]);
        assert_int_equal(r->ts, 1002);
        assert_int_equal(r->resolve_at, 5000);
        assert_string_equal(rk__ostore_unit_name(&w, r->unit), "640104000001");
        assert_int_equal(key_slots(&w, 1, rk__ostore_keyhash("k", 1, 1), got, 4), 1);
        r = rk__ostore_at(&w, (uint32_t)got[0]);
        assert_int_equal(r->ts, 1003);
        assert_int_equal(r->resolve_at, INT64_MAX);
        assert_int_equal(r->unit, RK__OSTORE_NO_UNIT);
    }
    /* renamed: bad_rating was 0, is 2; fine_growth was 1, is 0 */
    assert_int_equal(rk__ostore_restore(&u, b.data, b.len, index_of, NULL, 0, &dropped), 0);
    assert_int_equal(dropped, 10);              /* "gone" is not registered */
    assert_int_equal(rk__ostore_count(&u), 19);
    while (rk__ostore_pop_due(&u, INT64_MAX, 0, &oa)) {
        unsigned k;
        rk__alert_id_unpack(oa.id, out);
        assert_int_equal(sscanf(out + 8, "%8x", &k), 1);
        assert_int_equal(oa.det, k % 3 == 0 ? 2u : 0u);
        assert_int_equal(oa.ts, 1000 + (int64_t)(k % 7));
    }
    /* refused: a bad version, every truncation, a trailing byte; the
     * store keeps what it had */
    mkid(99, id);
    assert_int_equal(rk__ostore_add(&u, id, 5, 0, 0), 0);
    for (cut = 0; cut < b.len; cut++)
        assert_int_equal(rk__ostore_restore(&u, b.data, cut, index_of, NULL, 0, &dropped), -1);
    b.data[0] ^= 4;
    assert_int_equal(rk__ostore_restore(&u, b.data, b.len, index_of, NULL, 0, &dropped), -1);
    b.data[0] ^= 4;
    rk_buf_put_u32(&b, 0);
    assert_int_equal(rk__ostore_restore(&u, b.data, b.len, index_of, NULL, 0, &dropped), -1);
    assert_int_equal(rk__ostore_count(&u), 1);
    assert_true(rk__ostore_find(&u, 5, 0, id) >= 0);
    rk_buf_free(&b);
    rk_buf_free(&b2);
    rk__ostore_free(&s);
    rk__ostore_free(&u);
    rk__ostore_free(&w);
}

/* The open_ttl section the release before wrote (its ttl.c, version 1):
 * u32 1, u32 n_names, names, u64 n, n x (i64 deadline, u32 name index,
 * 16 bytes id). Written here as it did. */
static void put_v1(rk_buf *b, unsigned n)
{
    unsigned i;
    rk_buf_put_u32(b, 1);
    rk_buf_put_u32(b, 3);
    for (i = 0; i < 3; i++)
        rk_buf_put_str(b, names_a[i]);
    rk_buf_put_u64(b, n);
    for (i = 0; i < n; i++) {
        char id[33];
        unsigned char p[16];
        mkid(i, id);
        assert_int_equal(rk__alert_id_pack(id, p), 0);
        rk_buf_put_i64(b, 86400000 + 1000 + (int64_t)i);
        rk_buf_put_u32(b, i % 3);
        rk_buf_put_bytes(b, p, sizeof(p));
    }
}

/* The section the release before wrote (openstore.c, version 2): u32 2,
 * names, u32 n_rules, rules, u64 n, n x (16 bytes id, i64 ts, u32 name
 * index, u32 rule), sorted by (ts, name index, id). */
static void put_v2(rk_buf *b, unsigned n)
{
    unsigned i;
    rk_buf_put_u32(b, 2);
    rk_buf_put_u32(b, 3);
    for (i = 0; i < 3; i++)
        rk_buf_put_str(b, names_a[i]);
    rk_buf_put_u32(b, 2);
    rk_buf_put_str(b, "r0");
    rk_buf_put_str(b, "r1");
    rk_buf_put_u64(b, n);
    for (i = 0; i < n; i++) {
        char id[33];
        unsigned char p[16];
        mkid(i, id);
        assert_int_equal(rk__alert_id_pack(id, p), 0);
        rk_buf_put_bytes(b, p, sizeof(p));
        rk_buf_put_i64(b, 1000 + (int64_t)i);
        rk_buf_put_u32(b, i % 3);
        rk_buf_put_u32(b, i == 4 ? RK__OSTORE_NO_RULE : i % 2);
    }
}

static void test_v2_format(void **st)
{
    rk__ostore s;
    rk_buf b = {0};
    rk__oa oa;
    size_t dropped = 9, cut;
    char id[33];
    unsigned i, closed = 0;
    (void)st;
    rk__ostore_init(&s);
    put_v2(&b, 10);
    assert_false(b.oom);
    assert_int_equal(rk__ostore_restore(&s, b.data, b.len, index_same, NULL, 0, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(rk__ostore_count(&s), 10);
    for (i = 0; i < 10; i++) {
        const rk__oa *r;
        mkid(i, id);
        r = rk__ostore_at(&s, (uint32_t)rk__ostore_find(&s, 1000 + (int64_t)i, i % 3, id));
        assert_non_null(r);
        assert_int_equal(r->rule, i == 4 ? RK__OSTORE_NO_RULE : i % 2);
        assert_int_equal(r->resolve_at, INT64_MAX);
        assert_int_equal(r->unit, RK__OSTORE_NO_UNIT);
    }
    assert_string_equal(rk__ostore_rule_name(&s, 1), "r1");
    while (rk__ostore_pop_due(&s, INT64_MAX, 0, &oa)) {
        assert_int_equal(oa.ts, 1000 + (int64_t)closed);
        closed++;
    }
    assert_int_equal(closed, 10);
    for (cut = 0; cut < b.len; cut++)
        assert_int_equal(rk__ostore_restore(&s, b.data, cut, index_same, NULL, 0, &dropped),
                         -1);
    rk_buf_free(&b);
    rk__ostore_free(&s);
}

static void test_old_format(void **st)
{
    rk__ostore s;
    rk_buf b = {0};
    rk__oa oa;
    size_t dropped = 0, cut;
    char id[33];
    unsigned i, closed = 0;
    (void)st;
    rk__ostore_init(&s);
    put_v1(&b, 12);
    assert_false(b.oom);
    assert_int_equal(rk__ostore_restore(&s, b.data, b.len, index_same, NULL, 86400000,
                                        &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(rk__ostore_count(&s), 12);
    /* each open, found by its id, its ts the deadline less open_ttl */
    for (i = 0; i < 12; i++) {
        int ri;
        mkid(i, id);
        ri = rk__ostore_find(&s, 1000 + (int64_t)i, i % 3, id);
        assert_true(ri >= 0);
        assert_int_equal(s.v[ri].rule, RK__OSTORE_NO_RULE);
    }
    /* one resolved since; the rest close at their old deadlines */
    mkid(5, id);
    rk__ostore_remove(&s, (uint32_t)rk__ostore_find(&s, 1005, 2, id));
    assert_int_equal(rk__ostore_pop_due(&s, 86400000 + 1000, 86400000, &oa), 0);
    while (rk__ostore_pop_due(&s, INT64_MAX, 86400000, &oa)) {
        assert_true(oa.ts + 86400000 >= 86400000 + 1000);
        closed++;
    }
    assert_int_equal(closed, 11);
    /* its truncations are refused */
    for (cut = 0; cut < b.len; cut++)
        assert_int_equal(rk__ostore_restore(&s, b.data, cut, index_same, NULL, 86400000,
                                            &dropped), -1);
    rk_buf_free(&b);
    rk__ostore_free(&s);
}

/* The store's worst bytes per open alert (the array with its slack):
 * while it grows from 1000 to 200000 alerts, and while they are resolved in
 * random order down to 4096. */
static size_t store_worst(void)
{
    enum { N = 200000 };
    rk__ostore s;
    unsigned char *gone = calloc(N, 1);
    uint64_t x = 11;
    char id[33];
    size_t n, worst = 0, live = N;
    assert_non_null(gone);
    rk__ostore_init(&s);
    for (n = 0; n < N; n++) {
        mkid((unsigned)n, id);
        assert_int_equal(rk__ostore_add(&s, id, churn_ts((unsigned)n), 0, 0), 0);
        if (n + 1 >= 1000 && rk__ostore_bytes(&s) / (n + 1) > worst)
            worst = rk__ostore_bytes(&s) / (n + 1);
    }
    while (live > 4096) {
        unsigned v = rnd(&x) % N;
        if (gone[v])
            continue;
        mkid(v, id);
        rk__ostore_remove(&s, (uint32_t)rk__ostore_find(&s, churn_ts(v), 0, id));
        rk__ostore_tidy(&s);        /* as the next add or open_ttl pop does */
        gone[v] = 1;
        live--;
        if (rk__ostore_bytes(&s) / live > worst)
            worst = rk__ostore_bytes(&s) / live;
    }
    rk__ostore_free(&s);
    free(gone);
    return worst;
}

static void test_memory(void **st)
{
    size_t worst;
    (void)st;
    assert_int_equal(sizeof(rk__oa), 48);
    worst = store_worst();
    printf("open alert: %zu bytes a record, at most %zu with the heap, the index and "
           "their slack\n", sizeof(rk__oa), worst);
    assert_true(worst <= 64);
}

/* ===================================================================
 * Memory by rule. A county bureau's open alerts: 40 units (12-character
 * ids), 10 officers each, 3000 enterprises (18-character credit codes),
 * 300 item codes, tasks and cases of 14 characters, each alert its own
 * task or case. Per rule, its keys and extras as the detector forms them
 * (the rule's comment names the function). Counted with
 * malloc_usable_size (glibc adds 8 bytes of header per allocation):
 *
 *   alert    the alert's slot in its key's record (16 bytes, with the
 *            record's growth slack)
 *   strings  the interned extras (each field apart): each distinct string
 *            once (its map entry, bucket and id slots), divided among the
 *            alerts that carry it
 *   riskd    riskd's record of the open alert (openstore.c: its id, ts,
 *            detector, rule, key hash, resolve_at and unit) with the
 *            heap, the index and their worst slack
 *   key      per key: its map entry (with the key's string) and bucket,
 *            the record's header and malloc's rounding of it
 *
 * Budget: 64 bytes per open alert all in. The store's record carries what
 * lifecycle.c's map keeps today (key hash, resolve_at, unit), so once the
 * detectors find their alerts in the store (lifecycle.c a facade over it)
 * the riskd column is the whole cost; it is held to the budget now. Until
 * then the table prints what lifecycle.c's map still adds: alert and
 * strings per alert, and per key its map entry (with the key's string) and
 * bucket ("all in": when each key has a single alert).
 * =================================================================== */

#define N_UNITS 40u
#define N_OFFICERS 400u             /* officer o is in unit o / 10 */
#define N_ENTS 3000u
#define N_ITEMS 300u

static void unit_id(unsigned u, char *out) { sprintf(out, "640104%06u", u % N_UNITS); }
static void officer_id(unsigned o, char *out) { sprintf(out, "6401040%05u", o % N_OFFICERS); }
static void ent_id(unsigned e, char *out) { sprintf(out, "91640104MA%08u", e % N_ENTS); }
static void task_id(unsigned t, char *out) { sprintf(out, "RW2026%08u", t); }
static void case_id(unsigned c, char *out) { sprintf(out, "AJ2026%08u", c); }
static void item_id(unsigned i, char *out) { sprintf(out, "SP-%03u", i % N_ITEMS); }

/* key and extra ("" for none) of alert i of a rule */
typedef void (*shape_fn)(unsigned i, char *key, char *extra);

static void join(char *out, const char *a, const char *b)
{
    sprintf(out, "%s\x1f%s", a, b);
}

/* bad_rating: officer (br_officer), extra its unit */
static void sh_officer_repeated(unsigned i, char *k, char *x)
{
    officer_id(i, k);
    unit_id(i / 10, x);
}
/* bad_rating, fine_growth, review_correction: the unit */
static void sh_unit(unsigned i, char *k, char *x)
{
    unit_id(i, k);
    x[0] = '\0';
}
/* violation_hotspot: "region\x1fdomain" */
static void sh_hotspot(unsigned i, char *k, char *x)
{
    sprintf(k, "6401%02u\x1f" "domain%u", i % 20, i / 20);
    x[0] = '\0';
}
/* complaint_cluster: "<group_by>:<window ms>:<key>" */
static void sh_cluster(unsigned i, char *k, char *x)
{
    char e[32];
    ent_id(i, e);
    sprintf(k, "2:604800000:%s", e);
    x[0] = '\0';
}
/* inspection_frequency repeat, multi_unit: the enterprise */
static void sh_ent(unsigned i, char *k, char *x)
{
    ent_id(i, k);
    x[0] = '\0';
}
/* inspection_frequency whitelist (fi_raise): the enterprise, extra the unit */
static void sh_whitelist(unsigned i, char *k, char *x)
{
    ent_id(i, k);
    unit_id(i, x);
}
/* officer_credential (oc_event): the task, extra "officer\x1funit"; the
 * officers without a valid credential are few (1 in 20), each named on
 * every filing he or she takes part in */
static void sh_uncertified(unsigned i, char *k, char *x)
{
    char o[32], u[32];
    unsigned off = i % (N_OFFICERS / 20) * 20;
    task_id(i, k);
    officer_id(off, o);
    unit_id(off / 10, u);
    join(x, o, u);
}
/* discretion (dc_raise): the case alone (its notices take the alert's id
 * from riskd, their reasons name the amended decision's unit and item) */
static void sh_per_case(unsigned i, char *k, char *x)
{
    case_id(i, k);
    x[0] = '\0';
}
/* discretion disparity: "unit\x1fitem" */
static void sh_disparity(unsigned i, char *k, char *x)
{
    char u[32], it[32];
    unit_id(i, u);
    item_id(i / N_UNITS, it);
    join(k, u, it);
    x[0] = '\0';
}
/* unfiled_inspection (lc_remember): "m:<task>\x1f<scanned>", extra "unit\x1f" */
static void sh_mismatch(unsigned i, char *k, char *x)
{
    char t[32], u[32], e[32];
    task_id(i, t);
    ent_id(i * 7, e);
    sprintf(k, "m:%s\x1f%s", t, e);
    unit_id(i, u);
    join(x, u, "");
}
/* "r:<unit>\x1f<enterprise>", no extra */
static void sh_reported(unsigned i, char *k, char *x)
{
    char u[32], e[32];
    unit_id(i, u);
    ent_id(i * 7, e);
    sprintf(k, "r:%s\x1f%s", u, e);
    x[0] = '\0';
}
/* "c:<task>" and "s:<task>", extra "\x1funit" (the case and the scanned
 * enterprise are the alert's, kept by riskd with its subject) */
static void sh_task_unit(unsigned i, char *k, char *x)
{
    char t[32], u[32];
    task_id(i, t);
    sprintf(k, "%c:%s", i % 2 ? 'c' : 's', t);
    unit_id(i, u);
    join(x, "", u);
}

static const struct shape {
    const char *rule;               /* detector/rule */
    shape_fn fn;
    unsigned n;                     /* open alerts, one per i */
    unsigned per_key;               /* alerts per key: i / per_key names it */
    size_t extra;                   /* 1: files an extra (shared by the
                                       alerts of a unit or officer) */
} shapes[] = {
    {"bad_rating/officer_repeated", sh_officer_repeated, N_OFFICERS, 1, 1},
    {"bad_rating/unit_ratio", sh_unit, N_UNITS, 1, 0},
    {"fine_growth/growth", sh_unit, N_UNITS, 1, 0},
    {"review_correction/corrections", sh_unit, N_UNITS, 1, 0},
    {"violation_hotspot/hotspot", sh_hotspot, 200, 1, 0},
    {"complaint_cluster/cluster", sh_cluster, 300, 1, 0},
    {"inspection_frequency/repeat", sh_ent, 1000, 1, 0},
    {"inspection_frequency/whitelist", sh_whitelist, 1000, 1, 1},
    {"inspection_frequency/multi_unit", sh_ent, 1000, 1, 0},
    {"officer_credential/uncertified", sh_uncertified, 1000, 1, 1},
    {"discretion/out_of_benchmark", sh_per_case, 1000, 1, 0},
    {"discretion/exempt_fined", sh_per_case, 1000, 1, 0},
    /* disparity: the detector lists an item's keys from its decisions'
     * units, keeping nothing per alert (dc_open_keys) */
    {"discretion/disparity", sh_disparity, 400, 1, 0},
    {"unfiled_inspection/enterprise_mismatch", sh_mismatch, 1000, 1, 1},
    {"unfiled_inspection/reported_without_filing", sh_reported, 1000, 1, 0},
    {"unfiled_inspection/case_without_filing", sh_task_unit, 1000, 1, 1},
    {"unfiled_inspection/scan_without_filing", sh_task_unit, 1000, 1, 1},
    /* the same keys with three alerts each (window rules firing again
     * after their cooldown while the condition holds) */
    {"bad_rating/officer_repeated x3", sh_officer_repeated, 3 * N_OFFICERS, 3, 1},
    {"inspection_frequency/whitelist x3", sh_whitelist, 3000, 3, 1},
};

/* The units' share of the store: the arena, the offsets and counts by
 * id, the table of ids, each with its slack. */
static size_t units_bytes(const rk__ostore *s)
{
    return s->ucap + (size_t)s->capunits * (sizeof(*s->uoff) + sizeof(*s->urefs)) +
           (size_t)s->capuidx * sizeof(*s->uidx);
}

static void test_memory_by_rule(void **st)
{
    size_t rec = store_worst(), k;
    (void)st;
    printf("bytes per open alert (budget 64 all in): riskd's record with the heap, the "
           "index and their worst slack, and the share of the units (or extras) it names; "
           "the detector keeps none of it:\n%-50s %5s %5s %6s\n", "rule (alerts)", "riskd",
           "units", "all in");
    for (k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        const struct shape *sh = &shapes[k];
        rk__ostore s;
        char key[128], extra[128], name[64], id[33];
        const char *rule = strchr(sh->rule, '/') + 1;
        unsigned i;
        size_t units, all;
        rk__ostore_init(&s);
        assert_int_equal(rk__ostore_rule(&s, rule), 0);
        for (i = 0; i < sh->n; i++) {
            int u = -1;
            sh->fn(i / sh->per_key, key, extra);
            mkid(i, id);
            assert_int_equal(rk__ostore_add(&s, id, 1000 + i, 0, 0), 0);
            if (extra[0] != '\0')
                assert_true((u = rk__ostore_unit(&s, extra)) >= 0);
            assert_true(rk__ostore_rekey(&s, s.last, rk__ostore_rule_keyhash(rule, key),
                                         INT64_MAX, u < 0 ? RK__OSTORE_NO_UNIT
                                                          : (uint32_t)u) >= 0);
        }
        assert_int_equal(rk__ostore_count(&s), sh->n);
        units = (units_bytes(&s) + sh->n - 1) / sh->n;
        all = rec + units;
        snprintf(name, sizeof(name), "%s (%u)", sh->rule, sh->n);
        printf("%-50s %5zu %5zu %6zu %s\n", name, rec, units, all, all <= 64 ? "" : "OVER");
        assert_true(all <= 64);
        assert_true(sh->extra != 0 || units == 0);
        rk__ostore_free(&s);
    }
    printf("riskd's record alone: %zu bytes (budget 64)\n", rec);
    assert_true(rec <= 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_find_remove),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_old_format),
        cmocka_unit_test(test_v2_format),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_memory_by_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
