/* tests/unit/test-ttl.c - the alerts.open_ttl deadlines (daemon/pipeline/ttl.c).
 *
 *   order        due records leave by deadline, ties by (detector, id), and
 *                only once their deadline is before "now"
 *   ids          the 32 hex digits pack into 16 bytes and back; anything
 *                else is refused
 *   snapshot     a round trip keeps every record; detectors are renamed by
 *                name, unknown ones dropped and counted; every truncation
 *                and a bad version are refused, leaving the heap as it was
 *   memory       32 bytes a record, and the heap's slack under 5 bytes a
 *                record while it grows and while it empties
 *   memory by rule
 *                what an open alert costs, for the key and subject shape of
 *                every rule the built-in detectors keep open
 *                (detectors/lifecycle.c), measured with malloc's usable
 *                sizes: printed and held to the 64-byte budget */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

static void mkid(unsigned v, char out[33])
{
    snprintf(out, 33, "%08x%08x%08x%08x", v * 2654435761u, v, ~v, v ^ 0x5a5a5a5au);
}

static void test_order(void **st)
{
    rk__ttl t = {0};
    rk__ttl_item it;
    char a[33], b[33], out[33];
    (void)st;
    mkid(1, a);
    mkid(2, b);
    assert_int_equal(rk__ttl_add(&t, 300, 0, a), 0);
    assert_int_equal(rk__ttl_add(&t, 100, 1, b), 0);
    assert_int_equal(rk__ttl_add(&t, 100, 1, a), 0);
    assert_int_equal(rk__ttl_add(&t, 100, 0, b), 0);
    assert_true(rk__ttl_due_at(&t, 101));
    assert_false(rk__ttl_due_at(&t, 100));
    assert_int_equal(rk__ttl_pop_due(&t, 100, &it), 0);   /* not before now */
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 1);
    assert_int_equal(it.deadline, 100);
    assert_int_equal(it.det, 0);
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 1);
    assert_int_equal(it.det, 1);
    rk__ttl_id_unpack(it.id, out);
    assert_string_equal(out, strcmp(a, b) < 0 ? a : b);
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 1);
    rk__ttl_id_unpack(it.id, out);
    assert_string_equal(out, strcmp(a, b) < 0 ? b : a);
    assert_int_equal(rk__ttl_pop_due(&t, 101, &it), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(rk__ttl_pop_due(&t, INT64_MAX, &it), 1);
    assert_int_equal(it.deadline, 300);
    rk__ttl_free(&t);
}

static void test_ids(void **st)
{
    unsigned char p[16];
    char out[33];
    rk__ttl t = {0};
    (void)st;
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f00112233445566f", p), 0);
    assert_int_equal(p[1], 0xff);
    rk__ttl_id_unpack(p, out);
    assert_string_equal(out, "00ff10a0b0c0d0e0f00112233445566f");
    assert_int_equal(rk__ttl_id_pack("00FF10a0b0c0d0e0f00112233445566f", p), -1);
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f00112233445566", p), -1);
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f00112233445566f0", p), -1);
    assert_int_equal(rk__ttl_id_pack("00ff10a0b0c0d0e0f0011223344556zz", p), -1);
    assert_int_equal(rk__ttl_add(&t, 1, 0, "not an id"), -1);
    assert_int_equal(t.n, 0);
    rk__ttl_free(&t);
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

static void test_snapshot(void **st)
{
    rk__ttl t = {0}, u = {0};
    rk_buf b = {0};
    rk__ttl_item it;
    size_t dropped = 99, cut;
    char id[33], out[33];
    unsigned i;
    (void)st;
    for (i = 0; i < 30; i++) {
        mkid(i, id);
        assert_int_equal(rk__ttl_add(&t, 1000 + (int64_t)(i % 7), i % 3, id), 0);
    }
    rk__ttl_snapshot(&t, &b, name_of, NULL);
    assert_false(b.oom);
    assert_int_equal(rk__ttl_restore(&u, b.data, b.len, index_of, NULL, &dropped), 0);
    assert_int_equal(dropped, 10);              /* "gone" is not registered */
    assert_int_equal(u.n, 20);
    while (rk__ttl_pop_due(&u, INT64_MAX, &it)) {
        /* renamed: bad_rating was 0, is 2; fine_growth was 1, is 0 */
        unsigned k;
        rk__ttl_id_unpack(it.id, out);
        assert_int_equal(sscanf(out + 8, "%8x", &k), 1);
        assert_int_equal(it.det, k % 3 == 0 ? 2u : 0u);
        assert_int_equal(it.deadline, 1000 + (int64_t)(k % 7));
    }
    /* refused: a bad version, every truncation, a trailing byte; the
     * heap keeps what it had */
    assert_int_equal(rk__ttl_add(&u, 5, 0, id), 0);
    for (cut = 0; cut < b.len; cut++)
        assert_int_equal(rk__ttl_restore(&u, b.data, cut, index_of, NULL, &dropped), -1);
    b.data[0] ^= 1;
    assert_int_equal(rk__ttl_restore(&u, b.data, b.len, index_of, NULL, &dropped), -1);
    b.data[0] ^= 1;
    rk_buf_put_u32(&b, 0);
    assert_int_equal(rk__ttl_restore(&u, b.data, b.len, index_of, NULL, &dropped), -1);
    assert_int_equal(u.n, 1);
    rk_buf_free(&b);
    rk__ttl_free(&t);
    rk__ttl_free(&u);
}

/* The heap's worst bytes per record: while it grows from 1000 to 200000
 * records, and while they leave again down to 4096 (a smaller heap keeps
 * its slots, at most 128 KB in all). */
static size_t ttl_worst(void)
{
    rk__ttl t = {0};
    rk__ttl_item it;
    char id[33];
    size_t n, worst = 0;
    for (n = 1; n <= 200000; n++) {
        mkid((unsigned)n, id);
        assert_int_equal(rk__ttl_add(&t, (int64_t)(n * 7919 % 100003), 0, id), 0);
        if (n >= 1000 && t.cap * sizeof(*t.v) / t.n > worst)
            worst = t.cap * sizeof(*t.v) / t.n;
    }
    while (t.n > 4096) {
        if (t.cap * sizeof(*t.v) / t.n > worst)
            worst = t.cap * sizeof(*t.v) / t.n;
        assert_int_equal(rk__ttl_pop_due(&t, INT64_MAX, &it), 1);
    }
    rk__ttl_free(&t);
    return worst;
}

static void test_memory(void **st)
{
    size_t worst;
    (void)st;
    assert_int_equal(sizeof(rk__ttl_item), 32);
    worst = ttl_worst();
    printf("open_ttl deadline: %zu bytes a record, at most %zu per alert with the "
           "heap's slack\n", sizeof(rk__ttl_item), worst);
    assert_true(worst <= 36);
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
 *   ttl      the alerts.open_ttl deadline with the heap's worst slack
 *   key      per key: its map entry (with the key's string) and bucket,
 *            the record's header and malloc's rounding of it
 *
 * Budget: alert + strings + ttl <= 64 bytes per open alert. The key is
 * the subject the rule tracks, there whether one alert is open or many,
 * and is printed beside ("all in": when each key has a single alert).
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
/* discretion (dc_raise): the case, extra "unit\x1fitem"; cases concentrate
 * on the common items: 4 in 5 on 30 of them, the rest on any of the 300 */
static void sh_per_case(unsigned i, char *k, char *x)
{
    char u[32], it[32];
    case_id(i, k);
    unit_id(i, u);
    item_id(i % 5 != 0 ? i % 30 : i / 5, it);
    join(x, u, it);
}
/* the same with the items spread evenly over all 300 */
static void sh_per_case_even(unsigned i, char *k, char *x)
{
    char u[32], it[32];
    case_id(i, k);
    unit_id(i, u);
    item_id(i, it);
    join(x, u, it);
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
/* unfiled_inspection (lc_remember): "m:<task>", extra "unit\x1fscanned" */
static void sh_mismatch(unsigned i, char *k, char *x)
{
    char t[32], u[32], e[32];
    task_id(i, t);
    sprintf(k, "m:%s", t);
    unit_id(i, u);
    ent_id(i * 7, e);
    join(x, u, e);
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
/* "c:<task>", extra "case\x1funit" */
static void sh_case(unsigned i, char *k, char *x)
{
    char t[32], c[32], u[32];
    task_id(i, t);
    sprintf(k, "c:%s", t);
    case_id(i, c);
    unit_id(i, u);
    join(x, c, u);
}
/* "s:<task>", extra "enterprise\x1funit" */
static void sh_scan(unsigned i, char *k, char *x)
{
    char t[32], e[32], u[32];
    task_id(i, t);
    sprintf(k, "s:%s", t);
    ent_id(i * 7, e);
    unit_id(i, u);
    join(x, e, u);
}

static const struct shape {
    const char *rule;               /* detector/rule */
    shape_fn fn;
    unsigned n;                     /* open alerts, one per i */
    unsigned per_key;               /* alerts per key: i / per_key names it */
    size_t over;                    /* 0, or the known excess (see below) */
} shapes[] = {
    {"bad_rating/officer_repeated", sh_officer_repeated, N_OFFICERS, 1, 0},
    {"bad_rating/unit_ratio", sh_unit, N_UNITS, 1, 0},
    {"fine_growth/growth", sh_unit, N_UNITS, 1, 0},
    {"review_correction/corrections", sh_unit, N_UNITS, 1, 0},
    {"violation_hotspot/hotspot", sh_hotspot, 200, 1, 0},
    {"complaint_cluster/cluster", sh_cluster, 300, 1, 0},
    {"inspection_frequency/repeat", sh_ent, 1000, 1, 0},
    {"inspection_frequency/whitelist", sh_whitelist, 1000, 1, 0},
    {"inspection_frequency/multi_unit", sh_ent, 1000, 1, 0},
    {"officer_credential/uncertified", sh_uncertified, 1000, 1, 0},
    {"discretion/out_of_benchmark", sh_per_case, 1000, 1, 0},
    {"discretion/exempt_fined", sh_per_case, 1000, 1, 0},
    {"discretion/disparity", sh_disparity, 400, 1, 0},
    {"unfiled_inspection/enterprise_mismatch", sh_mismatch, 1000, 1, 51},
    {"unfiled_inspection/reported_without_filing", sh_reported, 1000, 1, 0},
    {"unfiled_inspection/case_without_filing", sh_case, 1000, 1, 51},
    {"unfiled_inspection/scan_without_filing", sh_scan, 1000, 1, 51},
    /* items evenly spread: 3.3 alerts an item code */
    {"discretion/out_of_benchmark, even items", sh_per_case_even, 1000, 1, 4},
    /* the same keys with three alerts each (window rules firing again
     * after their cooldown while the condition holds) */
    {"bad_rating/officer_repeated x3", sh_officer_repeated, 3 * N_OFFICERS, 3, 0},
    {"inspection_frequency/whitelist x3", sh_whitelist, 3000, 3, 0},
};

typedef struct open_mem {
    size_t alerts, keys;            /* counts */
    size_t alert, strings, key;     /* bytes */
} open_mem;

static open_mem measure(const rk__openset *set)
{
    open_mem m = {0, 0, 0, 0, 0};
    rk_map_entry *e;
    size_t b;
    for (e = rk_map_first(&set->map, &b); e != NULL; e = rk_map_next(&set->map, &b, e)) {
        rk__openrec *r = e->value;
        m.alerts += r->n;
        m.keys++;
        m.alert += (size_t)r->cap * sizeof(r->a[0]);
        m.key += malloc_usable_size(e) + malloc_usable_size(r) -
                 (size_t)r->cap * sizeof(r->a[0]);
    }
    m.key += set->map.nbuckets * sizeof(*set->map.buckets);
    for (e = rk_map_first(&set->strs, &b); e != NULL; e = rk_map_next(&set->strs, &b, e))
        m.strings += malloc_usable_size(e);
    m.strings += set->strs.nbuckets * sizeof(*set->strs.buckets);
    m.strings += set->capids * (sizeof(*set->byid) + sizeof(*set->refs));
    return m;
}

static void test_memory_by_rule(void **st)
{
    size_t ttl = ttl_worst(), k, over = 0;
    (void)st;
    printf("bytes per open alert (budget 64 = alert + strings + ttl; key: per key, "
           "with 8 bytes of malloc header per allocation not counted):\n"
           "%-50s %5s %7s %4s %4s %4s %4s %6s\n", "rule (alerts)", "alert", "strings",
           "ttl", "sum", "key", "", "all in");
    for (k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        const struct shape *sh = &shapes[k];
        rk__openset set;
        char key[128], extra[128], name[64];
        unsigned i;
        open_mem m;
        size_t alert, strings, sum;
        rk__open_init(&set);
        for (i = 0; i < sh->n; i++) {
            sh->fn(i / sh->per_key, key, extra);
            assert_int_equal(rk__open_add(&set, key, 1000 + i, extra[0] ? extra : NULL), 0);
        }
        m = measure(&set);
        assert_int_equal(m.alerts, sh->n);
        alert = (m.alert + m.alerts - 1) / m.alerts;
        strings = (m.strings + m.alerts - 1) / m.alerts;
        sum = alert + strings + ttl;
        snprintf(name, sizeof(name), "%s (%u)", sh->rule, sh->n);
        printf("%-50s %5zu %7zu %4zu %4zu %4zu %4s %6zu\n", name, alert, strings, ttl, sum,
               (m.key + m.keys - 1) / m.keys, sum <= 64 ? "" : sh->over ? "over" : "OVER",
               sum + (m.key + m.alerts - 1) / m.alerts);
        if (sum > 64 + sh->over)
            over++;
        rk__open_clear(&set);
    }
    assert_int_equal(over, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_memory_by_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
