/* openstore.c - the open alerts the daemon keeps: one record per alert
 * written and not yet resolved, retracted or closed, how it is found, and
 * when alerts.open_ttl closes it.
 *
 * A record (48 bytes) holds the alert id's 16 packed bytes, the alert's ts
 * (its open_ttl deadline is ts + alerts.open_ttl, the setting in force),
 * the hash of the key its detector looks it up by, its resolve time, the
 * detector's index, the rule and the unit (small indices into the store's
 * tables of names). The unit is what the detector filed beside the key:
 * a unit id, or its extra fields joined by 0x1f ("officer<US>unit"); each
 * is kept once (in one string arena, found through a small hash table),
 * counted by the open alerts naming it, and its index given back, for the
 * next new one, when the last of them goes. Records sit in slots of one
 * array and keep their slot while the store is not tidied. Two structures of 4-byte slot numbers
 * find them:
 *   the index  open addressing (Robin Hood linear probing, at most 4/5
 *              full, grown by an eighth) by (detector, key hash), several
 *              records of one key side by side; a look-up for a key with
 *              no record stops at the first record nearer its home than
 *              the key would be (a few probes, however full); a removed
 *              record leaves it at once (backward shift: no tombstones). Until a detector files an
 *              alert under its own key (rk__ostore_rekey), its key hash is
 *              the id's first 8 bytes, so a notice finds its alert by id;
 *   the heap   a min-heap by (ts, detector, id): its top is the next
 *              open_ttl close. A removed record stays in it (its slot
 *              unused) until it surfaces or the store is tidied.
 * Live, replay and a restored checkpoint close in one order: a pure
 * function of the records.
 *
 * Removed slots are given back by rk__ostore_tidy once they are more than
 * a sixty-fourth of the store (the live records move together and the heap
 * and index are built again: O(n), so O(1) a removal over time); adds and
 * open_ttl pops tidy, as no caller holds a slot number then. Arrays grow
 * by a thirty-second (the index by an eighth, at most 4/5 full) and are
 * given back when tidied, so an open alert costs its 48 bytes, 4 in the
 * heap, 5 to 5.7 in the index and a few of slack (59 at worst, test-ttl);
 * a resolved one nothing once tidied.
 *
 * Checkpoint section (in the engine's state, after the indicators):
 *   u32 version (3), u32 n_names, n_names x str detector name,
 *   u32 n_rules, n_rules x str rule, u32 n_units, n_units x str unit
 *   (those in use, numbered in their order),
 *   u64 n, n x (16 bytes id, i64 ts, u32 name index, u32 rule,
 *   u64 key hash, i64 resolve_at, u32 unit)
 * in (ts, detector name index, id) order. Read too: version 2 (the sorted
 * array of the release before: no units, n x (16 bytes id, i64 ts, u32
 * name index, u32 rule), key hashes the ids') and version 1, the deadline
 * heap before it (u32 1, names, u64 n, n x (i64 deadline, u32 name index,
 * 16 bytes id)): each record an open alert of ts deadline -
 * alerts.open_ttl (rule unknown), so every alert it kept stays open. A
 * record of a detector no longer registered is dropped on restore. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engine_int.h"

#define OSTORE_SNAP_VERSION 3u
#define OSTORE_SNAP_V2 2u
#define OSTORE_SNAP_V1 1u
#define OSTORE_MAX_NAMES 65535u     /* rules; units in an old snapshot */
#define OSTORE_MAX_UNITS (UINT32_MAX / 4)
#define OSTORE_REC_V2 32u           /* a record in the snapshot, version 2 */
#define OSTORE_REC_V3 52u           /* version 3 */
#define OSTORE_EMPTY UINT32_MAX     /* an empty index slot */
#define OSTORE_MAX_SLOTS (UINT32_MAX / 2)

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int rk__alert_id_pack(const char *hex, unsigned char out[16])
{
    size_t i;
    for (i = 0; i < 16; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo;
        if (hi < 0 || (lo = hexval((unsigned char)hex[2 * i + 1])) < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return hex[32] == '\0' ? 0 : -1;
}

void rk__alert_id_unpack(const unsigned char id[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

void rk__ostore_init(rk__ostore *s)
{
    memset(s, 0, sizeof(*s));
}

static void free_names(char **v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void rk__ostore_free(rk__ostore *s)
{
    free_names(s->rules, s->nrules);
    free(s->rhash);
    free(s->ustr);
    free(s->uoff);
    free(s->urefs);
    free(s->uidx);
    free(s->v);
    free(s->heap);
    free(s->idx);
    rk__ostore_init(s);
}

/* The index of name in v[n] (added when new), or -1. */
static int intern(char ***v, uint32_t *n, const char *name)
{
    uint32_t i;
    char **nv, *c;
    for (i = 0; i < *n; i++)
        if (strcmp((*v)[i], name) == 0)
            return (int)i;
    if (*n >= OSTORE_MAX_NAMES || (c = strdup(name)) == NULL)
        return -1;
    if ((nv = realloc(*v, (*n + 1) * sizeof(*nv))) == NULL) {
        free(c);
        return -1;
    }
    *v = nv;
    nv[*n] = c;
    return (int)(*n)++;
}

int rk__ostore_rule(rk__ostore *s, const char *rule)
{
    return intern(&s->rules, &s->nrules, rule);
}

const char *rk__ostore_rule_name(const rk__ostore *s, uint32_t rule)
{
    return rule < s->nrules ? s->rules[rule] : "";
}

/* ---- the units ------------------------------------------------------
 * Each unit (or extra) once, NUL-terminated, in one string arena; by id:
 * its offset there (OSTORE_EMPTY: a free id) and the live records naming
 * it (a free id: the next free one + 1); found through an open-addressing
 * table of ids + 1 (0: empty; at most 3/4 full, built again when a unit
 * goes - units are few and go rarely). The arena is packed again once
 * half of it is strings no longer in use. So a unit costs its string, 8
 * bytes by id and 5 to 10 in the table: a county's units cost a
 * few bytes per open alert however many alerts name them. */

static uint32_t unit_home(const rk__ostore *s, const char *str)
{
    return (uint32_t)XXH3_64bits(str, strlen(str)) & (s->capuidx - 1);
}

/* The id of unit, or -1. */
static int unit_find(const rk__ostore *s, const char *unit)
{
    uint32_t i, e;
    if (s->capuidx == 0)
        return -1;
    for (i = unit_home(s, unit); (e = s->uidx[i]) != 0; i = (i + 1) & (s->capuidx - 1))
        if (s->uoff[e - 1] != OSTORE_EMPTY && strcmp(s->ustr + s->uoff[e - 1], unit) == 0)
            return (int)(e - 1);
    return -1;
}

/* The table again, of cap (a power of two) entries. */
static int uidx_build(rk__ostore *s, uint32_t cap)
{
    uint32_t *ni = calloc(cap, sizeof(*ni)), id;
    if (ni == NULL)
        return -1;
    free(s->uidx);
    s->uidx = ni;
    s->capuidx = cap;
    for (id = 0; id < s->nunits; id++)
        if (s->uoff[id] != OSTORE_EMPTY) {
            uint32_t i = unit_home(s, s->ustr + s->uoff[id]);
            while (ni[i] != 0)
                i = (i + 1) & (cap - 1);
            ni[i] = id + 1;
        }
    return 0;
}

/* The arena without the strings no longer in use. */
static void ustr_pack(rk__ostore *s)
{
    char *na = malloc(s->ulen - s->udead > 0 ? s->ulen - s->udead : 1);
    uint32_t id, at = 0;
    if (na == NULL)
        return;                     /* kept as it is */
    for (id = 0; id < s->nunits; id++)
        if (s->uoff[id] != OSTORE_EMPTY) {
            size_t n = strlen(s->ustr + s->uoff[id]) + 1;
            memcpy(na + at, s->ustr + s->uoff[id], n);
            s->uoff[id] = at;
            at += (uint32_t)n;
        }
    free(s->ustr);
    s->ustr = na;
    s->ulen = s->ucap = at;
    s->udead = 0;
}

int rk__ostore_unit(rk__ostore *s, const char *unit)
{
    size_t n = strlen(unit) + 1;
    uint32_t id, i;
    int at = unit_find(s, unit);
    if (at >= 0)
        return at;
    if (n > OSTORE_MAX_UNITS - s->ulen || (s->ufree == 0 && s->nunits >= OSTORE_MAX_UNITS))
        return -1;
    if (s->ufree == 0 && s->nunits == s->capunits) {
        uint32_t cap = s->capunits < 8 ? 8 : s->capunits + s->capunits / 8;
        uint32_t *no = realloc(s->uoff, cap * sizeof(*no)), *nr;
        if (no == NULL)
            return -1;
        s->uoff = no;
        if ((nr = realloc(s->urefs, cap * sizeof(*nr))) == NULL)
            return -1;
        s->urefs = nr;
        s->capunits = cap;
    }
    if ((uint64_t)(s->nulive + 1) * 4 > (uint64_t)s->capuidx * 3 &&
        uidx_build(s, s->capuidx == 0 ? 16 : 2 * s->capuidx) != 0)
        return -1;
    if (s->ulen + n > s->ucap) {
        uint64_t cap = (uint64_t)s->ucap + s->ucap / 8;
        char *na;
        if (cap < s->ulen + n)
            cap = s->ulen + n + 64;
        if (cap > OSTORE_MAX_UNITS || (na = realloc(s->ustr, (size_t)cap)) == NULL)
            return -1;
        s->ustr = na;
        s->ucap = (uint32_t)cap;
    }
    id = s->ufree != 0 ? s->ufree - 1 : s->nunits;
    if (s->ufree != 0)
        s->ufree = s->urefs[id];
    else
        s->nunits++;
    memcpy(s->ustr + s->ulen, unit, n);
    s->uoff[id] = s->ulen;
    s->ulen += (uint32_t)n;
    s->urefs[id] = 0;
    s->nulive++;
    for (i = unit_home(s, unit); s->uidx[i] != 0; i = (i + 1) & (s->capuidx - 1))
        ;
    s->uidx[i] = id + 1;
    return (int)id;
}

static bool unit_live(const rk__ostore *s, uint32_t unit)
{
    return unit < s->nunits && s->uoff[unit] != OSTORE_EMPTY;
}

const char *rk__ostore_unit_name(const rk__ostore *s, uint32_t unit)
{
    return unit_live(s, unit) ? s->ustr + s->uoff[unit] : "";
}

/* One more live record names unit. */
static void unit_ref(rk__ostore *s, uint32_t unit)
{
    if (unit_live(s, unit))
        s->urefs[unit]++;
}

/* One live record fewer names unit: the last one gives its id back. */
static void unit_unref(rk__ostore *s, uint32_t unit)
{
    if (!unit_live(s, unit) || (s->urefs[unit] > 0 && --s->urefs[unit] > 0))
        return;
    s->udead += (uint32_t)strlen(s->ustr + s->uoff[unit]) + 1;
    s->uoff[unit] = OSTORE_EMPTY;
    s->urefs[unit] = s->ufree;
    s->ufree = unit + 1;
    s->nulive--;
    if (s->nulive == 0) {           /* none left: all of it goes */
        free(s->ustr);
        free(s->uoff);
        free(s->urefs);
        free(s->uidx);
        s->ustr = NULL;
        s->uoff = s->urefs = s->uidx = NULL;
        s->ulen = s->ucap = s->udead = s->nunits = s->capunits = s->ufree = s->capuidx = 0;
        return;
    }
    if (s->udead > s->ulen / 2)
        ustr_pack(s);
    (void)uidx_build(s, s->capuidx);    /* same size: cannot fail to fit */
}

uint64_t rk__ostore_keyhash(const char *key, size_t len, uint64_t seed)
{
    return XXH3_64bits_withSeed(key, len, seed);
}

uint64_t rk__ostore_rule_keyhash(const char *rule, const char *key)
{
    return rk__ostore_keyhash(key, strlen(key), XXH3_64bits(rule, strlen(rule)));
}

static uint64_t id_hash(const unsigned char id[16])
{
    uint64_t h;
    memcpy(&h, id, sizeof(h));
    return h;
}

/* ---- the index ----------------------------------------------------- */

static uint32_t home(const rk__ostore *s, uint32_t det, uint64_t keyhash)
{
    uint64_t h = (keyhash ^ ((uint64_t)det * UINT64_C(0x9e3779b97f4a7c15))) *
                 UINT64_C(0xff51afd7ed558ccd);
    return (uint32_t)(((h >> 32) * s->capidx) >> 32);
}

/* How far from its home position the record in slot e lies at i. */
static uint32_t dist(const rk__ostore *s, uint32_t e, uint32_t i)
{
    uint32_t h = home(s, s->v[e].det, s->v[e].keyhash);
    return i >= h ? i - h : i + s->capidx - h;
}

/* Robin Hood insertion: a record passed on its way takes the place of one
 * nearer to its home, which goes on. */
static void idx_put(rk__ostore *s, uint32_t slot)
{
    uint32_t i = home(s, s->v[slot].det, s->v[slot].keyhash), d = 0, x = slot;
    for (;;) {
        uint32_t e = s->idx[i], de;
        if (e == OSTORE_EMPTY) {
            s->idx[i] = x;
            return;
        }
        if ((de = dist(s, e, i)) < d) {
            s->idx[i] = x;
            x = e;
            d = de;
        }
        i = i + 1 == s->capidx ? 0 : i + 1;
        d++;
    }
}

/* Index of cap entries for the live slots (their number: live). */
static int idx_build(rk__ostore *s, uint32_t cap)
{
    uint32_t *ni, k;
    if (cap < 16)
        cap = 16;
    if ((ni = malloc((size_t)cap * sizeof(*ni))) == NULL)
        return -1;
    memset(ni, 0xff, (size_t)cap * sizeof(*ni));
    free(s->idx);
    s->idx = ni;
    s->capidx = cap;
    for (k = 0; k < s->n; k++)
        if (s->v[k].det != RK__OSTORE_FREE)
            idx_put(s, k);
    return 0;
}

/* Room in the index for one more live record. */
static int idx_room(rk__ostore *s)
{
    uint64_t live = rk__ostore_count(s) + 1, cap;
    if (live * 5 <= (uint64_t)s->capidx * 4)
        return 0;
    cap = (uint64_t)s->capidx + s->capidx / 8;
    if (cap * 4 < live * 5)
        cap = live * 5 / 4 + 1;
    if (cap > UINT32_MAX - 1)
        return -1;
    return idx_build(s, (uint32_t)cap);
}

static void idx_del(rk__ostore *s, uint32_t slot)
{
    const rk__oa *r = &s->v[slot];
    uint32_t i = home(s, r->det, r->keyhash), j, e;
    while (s->idx[i] != slot) {
        if (s->idx[i] == OSTORE_EMPTY)
            return;                 /* not there (cannot happen) */
        i = i + 1 == s->capidx ? 0 : i + 1;
    }
    /* backward shift: the entries after it that are not at home move up */
    for (;;) {
        j = i + 1 == s->capidx ? 0 : i + 1;
        if ((e = s->idx[j]) == OSTORE_EMPTY || dist(s, e, j) == 0)
            break;
        s->idx[i] = e;
        i = j;
    }
    s->idx[i] = OSTORE_EMPTY;
}

int rk__ostore_next_key(const rk__ostore *s, uint32_t det, uint64_t keyhash, uint32_t *it)
{
    uint32_t i;
    if (s->capidx == 0)
        return -1;
    i = home(s, det, keyhash);
    i = (uint32_t)(((uint64_t)i + *it) % s->capidx);
    while (*it < s->capidx) {
        uint32_t e = s->idx[i];
        if (e == OSTORE_EMPTY)
            break;
        if (s->v[e].det == det && s->v[e].keyhash == keyhash) {
            (*it)++;
            return (int)e;
        }
        if (dist(s, e, i) < *it)
            break;                  /* it would lie before this one */
        (*it)++;
        i = i + 1 == s->capidx ? 0 : i + 1;
    }
    *it = s->capidx;
    return -1;
}

/* A record of a key, sorted by (ts, id). */
typedef struct keyrec {
    int64_t ts;
    unsigned char id[16];
    uint32_t slot;
} keyrec;

static int keyrec_cmp(const void *a, const void *b)
{
    const keyrec *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return memcmp(x->id, y->id, sizeof(x->id));
}

/* The index of rule and its keys' hash seed (the name's hash), or -1
 * when no alert of it was ever open. Detectors ask for a key's alerts
 * several times an event, so the answer for a name's hash is remembered
 * (a found rule checked with one strcmp; "none" good while no rule is
 * added); else the hashes of the rules' names, kept beside them, are
 * compared before their strings. */
static int rule_find(rk__ostore *s, const char *rule, uint64_t *seed)
{
    uint64_t h = XXH3_64bits(rule, strlen(rule));
    size_t q = (size_t)(h % (sizeof(s->rq) / sizeof(s->rq[0])));
    uint32_t i;
    *seed = h;
    if (s->rq[q].h == h) {
        if (s->rq[q].idx == UINT32_MAX && s->rq[q].nrules == s->nrules)
            return -1;
        if (s->rq[q].idx < s->nrules && strcmp(s->rules[s->rq[q].idx], rule) == 0)
            return (int)s->rq[q].idx;
    }
    if (s->nrhash < s->nrules) {
        uint64_t *nh = realloc(s->rhash, s->nrules * sizeof(*nh));
        if (nh != NULL) {
            s->rhash = nh;
            for (; s->nrhash < s->nrules; s->nrhash++)
                nh[s->nrhash] = XXH3_64bits(s->rules[s->nrhash], strlen(s->rules[s->nrhash]));
        }
    }
    for (i = 0; i < s->nrules; i++)
        if ((i >= s->nrhash || s->rhash[i] == h) && strcmp(s->rules[i], rule) == 0)
            break;
    s->rq[q].h = h;
    s->rq[q].idx = i < s->nrules ? i : UINT32_MAX;
    s->rq[q].nrules = s->nrules;
    return i < s->nrules ? (int)i : -1;
}

int rk__ostore_key_slots(rk__ostore *s, uint32_t det, const char *rule, const char *key,
                         int64_t from, int64_t to, uint32_t **out)
{
    uint32_t it = 0, n = 0, cap = 0, i, r;
    uint64_t kh, seed;
    keyrec *v = NULL;
    int slot, ri;

    *out = NULL;
    if ((ri = rule_find(s, rule, &seed)) < 0)
        return 0;                   /* no alert of the rule was ever open */
    r = (uint32_t)ri;
    kh = rk__ostore_keyhash(key, strlen(key), seed);
    while ((slot = rk__ostore_next_key(s, det, kh, &it)) >= 0) {
        const rk__oa *o = &s->v[slot];
        if (o->rule != r || o->ts < from || o->ts > to)
            continue;
        if (n == cap) {
            keyrec *nv;
            if (cap >= (uint32_t)INT32_MAX / 2 ||
                (nv = realloc(v, (size_t)(cap = cap ? 2 * cap : 8) * sizeof(*v))) == NULL) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[n].ts = o->ts;
        memcpy(v[n].id, o->id, sizeof(v[n].id));
        v[n++].slot = (uint32_t)slot;
    }
    if (n == 0)
        return 0;
    if (n > 1)
        qsort(v, n, sizeof(*v), keyrec_cmp);
    if ((*out = malloc((size_t)n * sizeof(**out))) == NULL) {
        free(v);
        return -1;
    }
    for (i = 0; i < n; i++)
        (*out)[i] = v[i].slot;
    free(v);
    return (int)n;
}

/* ---- the heap ------------------------------------------------------ */

/* A record's detector; a removed one's is kept in its rule (see
 * rk__ostore_remove), so its place in the heap holds until it surfaces. */
static uint16_t det_of(const rk__oa *r)
{
    return r->det == RK__OSTORE_FREE ? r->rule : r->det;
}

/* (ts, det, id) order of two records: <0, 0, >0. */
static int cmp_oa(const rk__oa *x, const rk__oa *y)
{
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (det_of(x) != det_of(y))
        return det_of(x) < det_of(y) ? -1 : 1;
    return memcmp(x->id, y->id, 16);
}

static bool heap_less(const rk__ostore *s, uint32_t a, uint32_t b)
{
    return cmp_oa(&s->v[s->heap[a]], &s->v[s->heap[b]]) < 0;
}

static void heap_swap(rk__ostore *s, uint32_t a, uint32_t b)
{
    uint32_t t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

static void sift_up(rk__ostore *s, uint32_t i)
{
    while (i > 0 && heap_less(s, i, (i - 1) / 2)) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(rk__ostore *s, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < s->nheap && heap_less(s, l, m))
            m = l;
        if (l + 1 < s->nheap && heap_less(s, l + 1, m))
            m = l + 1;
        if (m == i)
            return;
        heap_swap(s, i, m);
        i = m;
    }
}

/* Grow a by a thirty-second (at least 64, at least need) of size each. */
static int grow(void **a, uint32_t *cap, uint32_t need, size_t size)
{
    uint64_t ncap = *cap < 64 ? 64 : (uint64_t)*cap + *cap / 32;
    void *na;
    if (ncap < need)
        ncap = need;
    if (ncap > OSTORE_MAX_SLOTS || (na = realloc(*a, (size_t)ncap * size)) == NULL)
        return -1;
    *a = na;
    *cap = (uint32_t)ncap;
    return 0;
}

/* Shrink a to n + n/64 (at least 64) when more than a thirty-second is
 * free. */
static void shrink(void **a, uint32_t *cap, uint32_t n, size_t size)
{
    uint32_t ncap = n + n / 64 > 64 ? n + n / 64 : 64;
    void *na;
    if (n == 0) {
        free(*a);
        *a = NULL;
        *cap = 0;
        return;
    }
    if (*cap <= 64 || *cap - *cap / 32 <= n)
        return;
    if ((na = realloc(*a, (size_t)ncap * size)) != NULL) {
        *a = na;
        *cap = ncap;
    }
}

/* ---- records ------------------------------------------------------- */

/* Move the live records together, build the heap and index again, give
 * back what is far more than needed. On out of memory for the index it
 * stays as it was (its slots renumbered in place). */
static void compact(rk__ostore *s)
{
    uint32_t i, j = 0, *ren = NULL;
    bool have_ren = s->capidx > 0 && (ren = malloc((size_t)s->n * sizeof(*ren))) != NULL;
    for (i = 0; i < s->n; i++) {
        if (s->v[i].det == RK__OSTORE_FREE)
            continue;
        if (have_ren)
            ren[i] = j;
        s->v[j++] = s->v[i];
    }
    s->n = j;
    s->dead = 0;
    shrink((void **)&s->v, &s->cap, s->n, sizeof(*s->v));
    /* the heap: every live slot, heapified (O(n)) */
    for (i = 0; i < s->n; i++)
        s->heap[i] = i;
    s->nheap = s->n;
    shrink((void **)&s->heap, &s->capheap, s->nheap, sizeof(*s->heap));
    for (i = s->nheap / 2; i-- > 0;)
        sift_down(s, i);
    if (s->n == 0) {
        free(s->idx);
        s->idx = NULL;
        s->capidx = 0;
    } else if (idx_build(s, (uint32_t)((uint64_t)s->n * 4 / 3 + 1)) != 0 && have_ren) {
        for (i = 0; i < s->capidx; i++)     /* keep the old one, renumbered */
            if (s->idx[i] != OSTORE_EMPTY)
                s->idx[i] = ren[s->idx[i]];
    }
    free(ren);
}

void rk__ostore_tidy(rk__ostore *s)
{
    if (s->dead > 0 && (s->dead == s->n || (s->dead > 64 && s->dead > s->n / 64)))
        compact(s);
}

int rk__ostore_find(const rk__ostore *s, int64_t ts, uint32_t det, const char *id)
{
    unsigned char p[16];
    uint32_t it = 0;
    int slot;
    if (det >= RK__OSTORE_FREE || rk__alert_id_pack(id, p) != 0)
        return -1;
    while ((slot = rk__ostore_next_key(s, det, id_hash(p), &it)) >= 0)
        if (s->v[slot].ts == ts && memcmp(s->v[slot].id, p, 16) == 0)
            return slot;
    return -1;
}

int rk__ostore_add_packed(rk__ostore *s, const unsigned char id[16], int64_t ts,
                          uint32_t det, uint32_t rule)
{
    char hex[33];
    rk__oa *r;
    int at;
    s->last = UINT32_MAX;
    if (det >= RK__OSTORE_FREE || rule > UINT16_MAX)
        return -1;
    rk__alert_id_unpack(id, hex);
    if ((at = rk__ostore_find(s, ts, det, hex)) >= 0) {
        s->last = (uint32_t)at;
        return 1;                   /* written twice: one alert */
    }
    rk__ostore_tidy(s);
    if ((s->n == s->cap && grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0) ||
        (s->nheap == s->capheap &&
         grow((void **)&s->heap, &s->capheap, s->nheap + 1, sizeof(*s->heap)) != 0) ||
        idx_room(s) != 0)
        return -1;
    r = &s->v[s->n];
    memcpy(r->id, id, sizeof(r->id));
    r->ts = ts;
    r->keyhash = id_hash(id);
    r->resolve_at = INT64_MAX;
    r->det = (uint16_t)det;
    r->rule = (uint16_t)rule;
    r->unit = RK__OSTORE_NO_UNIT;
    s->last = s->n++;
    idx_put(s, s->last);
    s->heap[s->nheap++] = s->last;
    sift_up(s, s->nheap - 1);
    return 0;
}

int rk__ostore_add(rk__ostore *s, const char *id, int64_t ts, uint32_t det, uint32_t rule)
{
    unsigned char p[16];
    if (rk__alert_id_pack(id, p) != 0)
        return -1;
    return rk__ostore_add_packed(s, p, ts, det, rule);
}

int rk__ostore_rekey(rk__ostore *s, uint32_t slot, uint64_t keyhash, int64_t resolve_at,
                     uint32_t unit)
{
    uint32_t it = 0;
    int other;
    if (slot >= s->n || s->v[slot].det == RK__OSTORE_FREE)
        return -1;
    /* the same alert filed already (written twice): one record */
    while ((other = rk__ostore_next_key(s, s->v[slot].det, keyhash, &it)) >= 0)
        if ((uint32_t)other != slot && s->v[other].ts == s->v[slot].ts &&
            memcmp(s->v[other].id, s->v[slot].id, 16) == 0) {
            unit_ref(s, unit);
            rk__ostore_remove(s, slot);
            unit_unref(s, s->v[other].unit);
            s->v[other].resolve_at = resolve_at;
            s->v[other].unit = unit;
            return 1;
        }
    unit_ref(s, unit);
    unit_unref(s, s->v[slot].unit);
    idx_del(s, slot);
    s->v[slot].keyhash = keyhash;
    s->v[slot].resolve_at = resolve_at;
    s->v[slot].unit = unit;
    idx_put(s, slot);
    return 0;
}

int rk__ostore_unfile(rk__ostore *s, uint32_t slot)
{
    if (slot >= s->n || s->v[slot].det == RK__OSTORE_FREE)
        return -1;
    return rk__ostore_rekey(s, slot, id_hash(s->v[slot].id), INT64_MAX, s->v[slot].unit);
}

void rk__ostore_remove(rk__ostore *s, uint32_t slot)
{
    if (slot >= s->n || s->v[slot].det == RK__OSTORE_FREE)
        return;
    idx_del(s, slot);
    unit_unref(s, s->v[slot].unit);
    s->v[slot].rule = s->v[slot].det;  /* its key in the heap unchanged */
    s->v[slot].det = RK__OSTORE_FREE;
    s->dead++;
}

/* Pop the heap's removed records off its top. */
static void skip_dead(rk__ostore *s)
{
    while (s->nheap > 0 && s->v[s->heap[0]].det == RK__OSTORE_FREE) {
        s->heap[0] = s->heap[--s->nheap];
        sift_down(s, 0);
    }
}

bool rk__ostore_due_at(const rk__ostore *s, int64_t w, int64_t ttl)
{
    uint32_t i;
    const rk__oa *r = NULL;
    if (s->nheap == 0)
        return false;
    if (s->v[s->heap[0]].det != RK__OSTORE_FREE) {
        r = &s->v[s->heap[0]];
    } else {
        /* the top was removed: the earliest live record (a linear scan,
         * rare: pops and tidies take removed ones off the top) */
        for (i = 0; i < s->n; i++)
            if (s->v[i].det != RK__OSTORE_FREE && (r == NULL || cmp_oa(&s->v[i], r) < 0))
                r = &s->v[i];
        if (r == NULL)
            return false;
    }
    return r->ts <= INT64_MAX - ttl && r->ts + ttl < w;
}

int rk__ostore_pop_due(rk__ostore *s, int64_t now, int64_t ttl, rk__oa *out)
{
    rk__ostore_tidy(s);
    skip_dead(s);
    if (s->nheap == 0)
        return 0;
    *out = s->v[s->heap[0]];
    if (!(out->ts <= INT64_MAX - ttl && out->ts + ttl < now))
        return 0;
    rk__ostore_remove(s, s->heap[0]);
    skip_dead(s);
    return 1;
}

size_t rk__ostore_bytes(const rk__ostore *s)
{
    return (size_t)s->cap * sizeof(*s->v) + (size_t)s->capheap * sizeof(*s->heap) +
           (size_t)s->capidx * sizeof(*s->idx);
}

/* ---- checkpoint ---------------------------------------------------- */

static int ptr_cmp(const void *a, const void *b)
{
    return cmp_oa(*(const rk__oa *const *)a, *(const rk__oa *const *)b);
}

static void put_names(rk_buf *out, char **v, uint32_t n)
{
    uint32_t i;
    rk_buf_put_u32(out, n);
    for (i = 0; i < n; i++)
        rk_buf_put_str(out, v[i]);
}

void rk__ostore_snapshot(const rk__ostore *s, rk_buf *out,
                         const char *(*det_name)(uint32_t det, void *ud), void *ud)
{
    uint32_t maxdet = 0, i, k = 0;
    size_t live = rk__ostore_count(s);
    const rk__oa **order = NULL;
    uint32_t *remap = NULL, nlive = 0;  /* the units in use, numbered again */

    if ((live > 0 && (order = malloc(live * sizeof(*order))) == NULL) ||
        (s->nunits > 0 && (remap = malloc(s->nunits * sizeof(*remap))) == NULL)) {
        free(order);
        out->oom = true;
        return;
    }
    for (i = 0; i < s->nunits; i++)
        remap[i] = unit_live(s, i) ? nlive++ : RK__OSTORE_NO_UNIT;
    for (i = 0; i < s->n; i++)
        if (s->v[i].det != RK__OSTORE_FREE) {
            order[k++] = &s->v[i];
            if (s->v[i].det + 1u > maxdet)
                maxdet = s->v[i].det + 1u;
        }
    if (live > 1)
        qsort(order, live, sizeof(*order), ptr_cmp);
    rk_buf_put_u32(out, OSTORE_SNAP_VERSION);
    rk_buf_put_u32(out, maxdet);
    for (i = 0; i < maxdet; i++)
        rk_buf_put_str(out, det_name(i, ud));
    put_names(out, s->rules, s->nrules);
    rk_buf_put_u32(out, nlive);
    for (i = 0; i < s->nunits; i++)
        if (unit_live(s, i))
            rk_buf_put_str(out, rk__ostore_unit_name(s, i));
    rk_buf_put_u64(out, (uint64_t)live);
    if (rk_buf_reserve(out, live * OSTORE_REC_V3) == 0)
        for (k = 0; k < live; k++) {
            const rk__oa *r = order[k];
            rk_buf_put_bytes(out, r->id, sizeof(r->id));
            rk_buf_put_i64(out, r->ts);
            rk_buf_put_u32(out, r->det);
            rk_buf_put_u32(out, r->rule);
            rk_buf_put_u64(out, r->keyhash);
            rk_buf_put_i64(out, r->resolve_at);
            rk_buf_put_u32(out, r->unit < s->nunits ? remap[r->unit] : RK__OSTORE_NO_UNIT);
        }
    free(order);
    free(remap);
}

/* The names table of every version into map (index -> detector or -1). */
static int *read_names(rk_rd *rd, uint32_t *nnames,
                       int (*det_index)(const char *name, void *ud), void *ud)
{
    uint32_t i;
    int *map = NULL;
    *nnames = rk_rd_u32(rd);
    if (rd->err || *nnames > 4096 ||
        (*nnames > 0 && (map = calloc(*nnames, sizeof(*map))) == NULL)) {
        rd->err = 1;
        return NULL;
    }
    for (i = 0; i < *nnames && !rd->err; i++) {
        char *name = rk_rd_str(rd, 256);
        map[i] = name != NULL ? det_index(name, ud) : -1;
        free(name);
    }
    return map;
}

/* A rules or units table, each name once, into the store's. */
static void read_table(rk_rd *rd, char ***v, uint32_t *n)
{
    uint32_t count = rk_rd_u32(rd), i;
    if (rd->err || count > OSTORE_MAX_NAMES) {
        rd->err = 1;
        return;
    }
    for (i = 0; i < count && !rd->err; i++) {
        char *name = rk_rd_str(rd, 256);
        if (name == NULL || intern(v, n, name) != (int)i)
            rd->err = 1;            /* a repeated name too */
        free(name);
    }
}

/* The units table (version 3), each unit once, into the store's. */
static void read_units(rk_rd *rd, rk__ostore *tmp)
{
    uint32_t count = rk_rd_u32(rd), i;
    if (rd->err || count > OSTORE_MAX_UNITS || count > (size_t)(rd->end - rd->p) / 4) {
        rd->err = 1;
        return;
    }
    for (i = 0; i < count && !rd->err; i++) {
        char *name = rk_rd_str(rd, 4096);
        if (name == NULL || rk__ostore_unit(tmp, name) != (int)i)
            rd->err = 1;            /* a repeated unit too */
        free(name);
    }
}

/* Count the restored records naming each unit; give back the unnamed. */
static void units_settle(rk__ostore *s)
{
    uint32_t i;
    for (i = 0; i < s->n; i++)
        unit_ref(s, s->v[i].unit);
    for (i = 0; i < s->nunits; i++)
        if (unit_live(s, i) && s->urefs[i] == 0)
            unit_unref(s, i);
}

/* Append a restored record (sorted and indexed by rk__ostore_restore). */
static int put_raw(rk__ostore *s, const rk__oa *r)
{
    if (s->n == s->cap && grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0)
        return -1;
    s->v[s->n++] = *r;
    return 0;
}

static void restore_v1(rk_rd *rd, rk__ostore *tmp, const int *map, uint32_t nnames,
                       int64_t ttl, size_t *dropped)
{
    uint64_t n = rk_rd_u64(rd), k;
    if (rd->err || n > (uint64_t)(rd->end - rd->p) / 28)
        rd->err = 1;
    for (k = 0; k < n && !rd->err; k++) {
        rk__oa r;
        int64_t deadline = rk_rd_ts(rd);
        uint32_t di = rk_rd_u32(rd);
        if (rk_rd_take(rd, sizeof(r.id)) != 0 || di >= nnames) {
            rd->err = 1;
            break;
        }
        memcpy(r.id, rd->p, sizeof(r.id));
        rd->p += sizeof(r.id);
        if (map[di] < 0) {
            (*dropped)++;
            continue;
        }
        /* the deadline was ts + open_ttl (a ts no event can have: corrupt) */
        r.ts = deadline - ttl;
        r.keyhash = id_hash(r.id);
        r.resolve_at = INT64_MAX;
        r.det = (uint16_t)map[di];
        r.rule = RK__OSTORE_NO_RULE;
        r.unit = RK__OSTORE_NO_UNIT;
        if (r.ts < -RK_TS_LIMIT || put_raw(tmp, &r) != 0)
            rd->err = 1;
    }
}

/* Versions 2 and 3. */
static void restore_v23(rk_rd *rd, rk__ostore *tmp, const int *map, uint32_t nnames,
                        uint32_t version, size_t *dropped)
{
    size_t recbytes = version == OSTORE_SNAP_V2 ? OSTORE_REC_V2 : OSTORE_REC_V3;
    uint64_t n, k;
    read_table(rd, &tmp->rules, &tmp->nrules);
    if (version != OSTORE_SNAP_V2)
        read_units(rd, tmp);
    n = rk_rd_u64(rd);
    if (rd->err || n > (uint64_t)(rd->end - rd->p) / recbytes)
        rd->err = 1;
    for (k = 0; k < n && !rd->err; k++) {
        rk__oa r;
        uint32_t di, rule;
        if (rk_rd_take(rd, sizeof(r.id)) != 0)
            break;
        memcpy(r.id, rd->p, sizeof(r.id));
        rd->p += sizeof(r.id);
        r.ts = rk_rd_ts(rd);
        di = rk_rd_u32(rd);
        rule = rk_rd_u32(rd);
        r.keyhash = id_hash(r.id);
        r.resolve_at = INT64_MAX;
        r.unit = RK__OSTORE_NO_UNIT;
        if (version != OSTORE_SNAP_V2) {
            r.keyhash = rk_rd_u64(rd);
            r.resolve_at = rk_rd_time(rd);
            r.unit = rk_rd_u32(rd);
        }
        if (rd->err || di >= nnames ||
            (rule >= tmp->nrules && rule != RK__OSTORE_NO_RULE) ||
            (r.unit >= tmp->nunits && r.unit != RK__OSTORE_NO_UNIT)) {
            rd->err = 1;
            break;
        }
        if (map[di] < 0) {
            (*dropped)++;
            continue;
        }
        r.det = (uint16_t)map[di];
        r.rule = (uint16_t)rule;
        if (put_raw(tmp, &r) != 0)
            rd->err = 1;
    }
}

static int oa_cmp(const void *a, const void *b)
{
    return cmp_oa(a, b);
}

/* Sort, one record per alert, heap and index. */
static int restore_build(rk__ostore *s)
{
    uint32_t i, j;
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), oa_cmp);
    for (i = j = 0; i < s->n; i++)
        if (j == 0 || cmp_oa(&s->v[j - 1], &s->v[i]) != 0)
            s->v[j++] = s->v[i];
    s->n = j;
    if (s->n == 0)
        return 0;
    if ((s->heap = malloc((size_t)s->n * sizeof(*s->heap))) == NULL)
        return -1;
    s->capheap = s->nheap = s->n;
    for (i = 0; i < s->n; i++)
        s->heap[i] = i;             /* sorted: a heap already */
    return idx_build(s, (uint32_t)((uint64_t)s->n * 4 / 3 + 1));
}

int rk__ostore_restore(rk__ostore *s, const void *data, size_t len,
                       int (*det_index)(const char *name, void *ud), void *ud,
                       int64_t ttl, size_t *dropped)
{
    rk_rd rd;
    uint32_t version, nnames;
    int *map;
    rk__ostore tmp;

    *dropped = 0;
    rk__ostore_init(&tmp);
    rk_rd_init(&rd, data, len);
    version = rk_rd_u32(&rd);
    if (rd.err || version < OSTORE_SNAP_V1 || version > OSTORE_SNAP_VERSION)
        return -1;
    map = read_names(&rd, &nnames, det_index, ud);
    if (!rd.err) {
        if (version == OSTORE_SNAP_V1)
            restore_v1(&rd, &tmp, map, nnames, ttl, dropped);
        else
            restore_v23(&rd, &tmp, map, nnames, version, dropped);
    }
    free(map);
    if (rd.err || rd.p != rd.end || restore_build(&tmp) != 0) {
        rk__ostore_free(&tmp);
        return -1;
    }
    units_settle(&tmp);
    rk__ostore_free(s);
    *s = tmp;
    return 0;
}
