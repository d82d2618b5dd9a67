/* detectors/lifecycle.c - the open alerts of a built-in detector's window
 * and sum rules, kept until they are resolved (riskd-detectors(7),
 * LIFECYCLE).
 *
 * A window rule's condition (n bad ratings of an officer within a window,
 * ...) holds from the event that makes it true until the window has let go
 * of enough items. The detector records each alert it fires for a key
 * (rk__open_add: the alert's ts and, when its subject has a field beside
 * the key, that field's value) and, after every event of the key while the
 * condition holds, the time the condition will stop holding without new
 * events (S, from the window's items) plus alerts.keep_firing_for: the
 * time to resolve (rk__open_due). It arms a timer at that time; when the
 * timer fires and the key's resolve time is still that deadline, the
 * condition has not held again since S: every open alert of the key is
 * resolved (one notice each) and the record dropped. A later event that
 * makes the condition hold again moves the resolve time, so the timer
 * armed before finds another time and does nothing. Everything is a
 * function of event time, so a replay and a restart resolve alike.
 *
 * Memory of a set that keeps its alerts itself (a host without open ops,
 * or the keys an older snapshot left; a bound set's alerts cost only
 * riskd's record, riskd-detectors(7) "Memory of an open alert"): per key
 * with open alerts one map entry (the key's string and 16 bytes) and one
 * record allocation, a 16-byte header followed by
 * the key's alerts, 16 bytes each, grown to the exact count up to 8
 * alerts and by an eighth beyond, so the allocation's slack is malloc's
 * own rounding (fixed per key) plus at most 2 bytes an alert. An alert is
 * its ts and two 4-byte string ids: the extra's part before the first
 * PR_SEP and the part after it, each interned per set (one
 * reference-counted copy - a map entry of 16 bytes + the string, and 12
 * bytes in the id tables - however many open alerts carry it), so a unit
 * or an item code named by many alerts costs its string once, whatever
 * the other field is. Snapshot: u32 n, then per key str key, i64
 * resolve_at, u32 n alerts, n x (i64 ts, u32 has_extra, [str extra]) -
 * the same bytes as before the strings were interned.
 *
 * Bound to its host (rk__open_bind), a set keeps no alert itself: the alert
 * an emit raised is filed in the daemon's open alerts under (rule, key)
 * with the key's resolve time and its unit (the extra; rk__open_ops.file),
 * rk__open_get copies a key's alerts from there into the set's one scratch
 * record, rk__open_due moves their resolve time, and rk__open_remove /
 * rk__open_drop forget them once the detector has emitted their notices.
 * Only the keys of an older snapshot (rk__open_read) stay in the map, as
 * before, until they are resolved; rk__open_put writes just those. */
#include "riskd/kit.h"
#include "internal.h"

#define OPEN_MAX_ID 65536

void rk__open_init(rk__openset *set)
{
    memset(set, 0, sizeof(*set));
    rk_map_init(&set->map);
    rk_map_init(&set->strs);
}

/* The id of the interned copy of s[0..len) with one more reference, or 0
 * when out of memory. */
static uint32_t str_ref(rk__openset *set, const char *s, size_t len)
{
    char buf[128], *k = buf;
    rk_map_entry *e;
    uint32_t id;
    if (len >= sizeof(buf) && (k = malloc(len + 1)) == NULL)
        return 0;
    memcpy(k, s, len);
    k[len] = '\0';
    if ((e = rk_map_find(&set->strs, k)) != NULL) {
        id = (uint32_t)(uintptr_t)e->value;
        set->refs[id - 1]++;
        goto out;
    }
    id = 0;
    if (set->freeid == 0 && set->nids == set->capids) {
        uint32_t ncap = set->capids < 16 ? 16 : set->capids + set->capids / 8;
        const char **nb;
        uint32_t *nr;
        if (ncap <= set->capids)
            goto out;
        if ((nb = realloc(set->byid, ncap * sizeof(*nb))) == NULL)
            goto out;
        set->byid = nb;
        if ((nr = realloc(set->refs, ncap * sizeof(*nr))) == NULL)
            goto out;
        set->refs = nr;
        set->capids = ncap;
    }
    id = set->freeid != 0 ? set->freeid : set->nids + 1;
    if ((e = rk_map_put(&set->strs, k, (void *)(uintptr_t)id, NULL)) == NULL) {
        id = 0;
        goto out;
    }
    if (id == set->freeid)
        set->freeid = set->refs[id - 1];
    else
        set->nids++;
    set->byid[id - 1] = e->key;
    set->refs[id - 1] = 1;
out:
    if (k != buf)
        free(k);
    return id;
}

static void str_unref(rk__openset *set, uint32_t id)
{
    if (id == 0 || --set->refs[id - 1] > 0)
        return;
    rk_map_del(&set->strs, set->byid[id - 1]);
    set->byid[id - 1] = NULL;
    set->refs[id - 1] = set->freeid;    /* a free slot chains the next */
    set->freeid = id;
}

/* Whether oa is an alert of set's scratch record. */
static int in_scratch(const rk__openset *set, const rk__open_alert *oa)
{
    return set->sc != NULL && oa >= set->sc->a && oa < set->sc->a + set->sc->n;
}

const char *rk__open_field(const rk__openset *set, const rk__open_alert *oa, int i)
{
    uint32_t id = oa->x[i != 0];
    if (in_scratch(set, oa))        /* x[1]: 1 + where the part after the separator starts */
        return id == 0 ? NULL : i == 0 ? set->sunit[oa->x[0] - 1]
                                       : set->sunit[oa->x[0] - 1] + oa->x[1] - 1;
    return id != 0 ? set->byid[id - 1] : NULL;
}

size_t rk__open_extra(const rk__openset *set, const rk__open_alert *oa, char *buf, size_t n)
{
    const char *a = rk__open_field(set, oa, 0), *b = rk__open_field(set, oa, 1);
    size_t la, lb;
    if (a == NULL) {
        if (n > 0)
            buf[0] = '\0';
        return 0;
    }
    la = strlen(a);
    lb = b != NULL ? strlen(b) + 1 : 0;
    if (la + lb < n) {
        memcpy(buf, a, la);
        if (b != NULL) {
            buf[la] = PR_OPEN_SEP;
            memcpy(buf + la + 1, b, lb - 1);
        }
        buf[la + lb] = '\0';
    } else if (n > 0) {
        buf[0] = '\0';
    }
    return la + lb + 1;
}

static void rec_release(rk__openset *set, rk__openrec *r)
{
    uint32_t i;
    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++) {
        str_unref(set, r->a[i].x[0]);
        str_unref(set, r->a[i].x[1]);
    }
    free(r);
}

static void scratch_free(rk__openset *set)
{
    uint32_t i;
    if (set->sc != NULL)
        for (i = 0; i < set->sc->n; i++)
            free(set->sunit[i]);
    free(set->sc);
    free(set->sunit);
    free(set->sid);
    free(set->skey);
    set->sc = NULL;
    set->sunit = NULL;
    set->sid = NULL;
    set->skey = NULL;
    set->scap = 0;
}

void rk__open_clear(rk__openset *set)
{
    rk_host *h = set->h;
    const char *rule = set->rule;
    const char *(*rule_of)(const char *) = set->rule_of;
    rk_map_clear(&set->map, free);  /* the alerts' strings go with strs */
    rk_map_clear(&set->strs, NULL);
    free(set->byid);
    free(set->refs);
    scratch_free(set);
    rk__open_init(set);
    set->h = h;
    set->rule = rule;
    set->rule_of = rule_of;
}

void rk__open_bind(rk__openset *set, rk_host *h, const char *rule)
{
    set->h = h;
    set->rule = rule;
}

void rk__open_bind_by(rk__openset *set, rk_host *h, const char *(*rule_of)(const char *key))
{
    set->h = h;
    set->rule = NULL;
    set->rule_of = rule_of;
}

/* The rule of key's alerts in a bound set, or NULL. */
static const char *rule_for(const rk__openset *set, const char *key)
{
    return set->rule != NULL ? set->rule : set->rule_of != NULL ? set->rule_of(key) : NULL;
}

/* The host's open ops when set is bound to a host that has them and key
 * has a rule. */
static const rk__open_ops *bound(const rk__openset *set, const char *key)
{
    return set->h != NULL && rule_for(set, key) != NULL ? rk__open_ops_of(set->h) : NULL;
}

/* key's alerts in the host's open alerts copied into set's scratch record
 * (NULL: none, or out of memory). */
static rk__openrec *scratch_get(rk__openset *set, const rk__open_ops *ops, const char *key)
{
    rk__open_seen one[8], *seen = one;
    uint32_t i;
    int n = ops->alerts(set->h, rule_for(set, key), key, one, 8);
    if (n > 8) {
        if ((seen = malloc((size_t)n * sizeof(*seen))) == NULL)
            return NULL;
        n = ops->alerts(set->h, rule_for(set, key), key, seen, (size_t)n);
    }
    if (set->sc != NULL)
        for (i = 0; i < set->sc->n; i++)
            free(set->sunit[i]);
    if (set->sc != NULL)
        set->sc->n = 0;
    if (n > 0 && (uint32_t)n > set->scap) {
        rk__openrec *nr = realloc(set->sc, sizeof(*nr) + (size_t)n * sizeof(nr->a[0]));
        char **nu = nr != NULL ? realloc(set->sunit, (size_t)n * sizeof(*nu)) : NULL;
        unsigned char (*ni)[16] = nu != NULL ? realloc(set->sid, (size_t)n * sizeof(*ni))
                                             : NULL;
        if (nr != NULL)
            set->sc = nr;
        if (nu != NULL)
            set->sunit = nu;
        if (ni == NULL)
            n = -1;
        else {
            set->sid = ni;
            set->scap = (uint32_t)n;
            set->sc->cap = (uint32_t)n;
        }
    }
    free(set->skey);
    set->skey = n > 0 ? strdup(key) : NULL;
    if (n <= 0 || set->skey == NULL) {
        if (seen != one)
            free(seen);
        return NULL;
    }
    set->sc->resolve_at = seen[0].resolve_at;
    for (i = 0; i < (uint32_t)n; i++) {
        set->sc->a[i].ts = seen[i].ts;
        char *sep;
        set->sunit[i] = seen[i].unit != NULL ? strdup(seen[i].unit) : NULL;
        memcpy(set->sid[i], seen[i].id, sizeof(set->sid[i]));
        set->sc->a[i].x[0] = set->sunit[i] != NULL ? i + 1 : 0;
        set->sc->a[i].x[1] = 0;
        set->sc->n = i + 1;
        if (set->sunit[i] != NULL && (sep = strchr(set->sunit[i], PR_OPEN_SEP)) != NULL) {
            *sep = '\0';            /* the two parts, as rk__open_field gives them */
            set->sc->a[i].x[1] = (uint32_t)(sep - set->sunit[i]) + 2;
        }
    }
    if (seen != one)
        free(seen);
    return set->sc;
}

int rk__open_bound(const rk__openset *set, const char *key)
{
    return bound(set, key) != NULL && rk_map_find(&set->map, key) == NULL;
}

void rk__open_prime(const rk__openset *set, const rk__open_alert *oa)
{
    const rk__open_ops *ops;
    if (in_scratch(set, oa) && set->h != NULL && (ops = rk__open_ops_of(set->h)) != NULL &&
        ops->prime != NULL)
        ops->prime(set->h, set->sid[oa - set->sc->a], oa->ts);
}

rk__openrec *rk__open_get(const rk__openset *set, const char *key)
{
    rk__openrec *r = rk_map_get(&set->map, key);
    const rk__open_ops *ops = bound(set, key);
    if (r != NULL || ops == NULL)
        return r;
    return scratch_get((rk__openset *)(uintptr_t)set, ops, key);
}

/* key's record with room for one more alert (created, or grown in place
 * of the old one), or NULL when out of memory (the set unchanged). */
static rk__openrec *rec_room(rk__openset *set, const char *key)
{
    rk_map_entry *e = rk_map_find(&set->map, key);
    rk__openrec *r = e != NULL ? e->value : NULL, *nr;
    uint32_t ncap;
    if (r != NULL && r->n < r->cap)
        return r;
    ncap = r == NULL ? 1 : r->cap < 8 ? r->cap + 1 : r->cap + r->cap / 8;
    if (r != NULL && ncap <= r->cap)
        return NULL;                /* UINT32_MAX alerts */
    if ((nr = realloc(r, sizeof(*nr) + (size_t)ncap * sizeof(nr->a[0]))) == NULL)
        return NULL;
    nr->cap = ncap;
    if (r != NULL) {
        e->value = nr;
        return nr;
    }
    nr->resolve_at = INT64_MAX;
    nr->n = 0;
    if (rk_map_put(&set->map, key, nr, NULL) == NULL) {
        free(nr);
        return NULL;
    }
    return nr;
}

int rk__open_add(rk__openset *set, const char *key, int64_t ts, const char *extra)
{
    const rk__open_ops *ops = bound(set, key);
    rk__openrec *r;
    uint32_t x0 = 0, x1 = 0;
    if (ops != NULL && rk_map_find(&set->map, key) == NULL) {
        /* The alert just raised, filed with the key's resolve time. */
        rk__open_seen first;
        int64_t at = ops->alerts(set->h, rule_for(set, key), key, &first, 1) > 0 ? first.resolve_at
                                                                         : INT64_MAX;
        (void)ts;
        return ops->file(set->h, rule_for(set, key), key, at, extra) < 0 ? -1 : 0;
    }
    if ((r = rec_room(set, key)) == NULL)
        return -1;
    if (extra != NULL) {
        const char *sep = strchr(extra, PR_OPEN_SEP);
        x0 = str_ref(set, extra, sep != NULL ? (size_t)(sep - extra) : strlen(extra));
        if (x0 != 0 && sep != NULL && (x1 = str_ref(set, sep + 1, strlen(sep + 1))) == 0) {
            str_unref(set, x0);
            x0 = 0;
        }
        if (x0 == 0) {
            if (r->n == 0)
                free(rk_map_del(&set->map, key));
            return -1;
        }
    }
    r->a[r->n].ts = ts;
    r->a[r->n].x[0] = x0;
    r->a[r->n].x[1] = x1;
    r->n++;
    return 0;
}

void rk__open_remove(rk__openset *set, rk__openrec *r, uint32_t i)
{
    const rk__open_ops *ops = r == set->sc && set->skey != NULL ? bound(set, set->skey)
                                                                : NULL;
    if (ops != NULL) {
        (void)ops->forget(set->h, rule_for(set, set->skey), set->skey, r->a[i].ts, r->a[i].ts, set->sid[i]);
        free(set->sunit[i]);
        memmove(&set->sunit[i], &set->sunit[i + 1], (r->n - i - 1) * sizeof(set->sunit[0]));
        memmove(&set->sid[i], &set->sid[i + 1], (r->n - i - 1) * sizeof(set->sid[0]));
        memmove(&r->a[i], &r->a[i + 1], (r->n - i - 1) * sizeof(r->a[0]));
        r->n--;
        for (i = 0; i < r->n; i++)
            r->a[i].x[0] = set->sunit[i] != NULL ? i + 1 : 0;
        return;
    }
    str_unref(set, r->a[i].x[0]);
    str_unref(set, r->a[i].x[1]);
    memmove(&r->a[i], &r->a[i + 1], (r->n - i - 1) * sizeof(r->a[0]));
    r->n--;
}

void rk__open_let_go(rk__openset *set, const char *key, int64_t ts_to)
{
    rk__openrec *r = rk_map_get(&set->map, key);
    const rk__open_ops *ops = bound(set, key);
    uint32_t i = 0;
    if (r != NULL) {
        while (i < r->n)
            if (r->a[i].ts <= ts_to)
                rk__open_remove(set, r, i);
            else
                i++;
        if (r->n == 0)
            rk__open_drop(set, key);
        return;
    }
    if (ops == NULL)
        return;
    (void)ops->let_go(set->h, rule_for(set, key), key, INT64_MIN, ts_to);
    if (set->sc != NULL && set->skey != NULL && strcmp(set->skey, key) == 0) {
        for (i = 0; i < set->sc->n; i++)
            free(set->sunit[i]);
        set->sc->n = 0;
    }
}

void rk__open_drop(rk__openset *set, const char *key)
{
    const rk__open_ops *ops = bound(set, key);
    rk__openrec *r = rk_map_del(&set->map, key);
    if (r != NULL || ops == NULL) {
        rec_release(set, r);
        return;
    }
    (void)ops->forget(set->h, rule_for(set, key), key, INT64_MIN, INT64_MAX, NULL);
    if (set->sc != NULL && set->skey != NULL && strcmp(set->skey, key) == 0) {
        uint32_t i;
        for (i = 0; i < set->sc->n; i++)
            free(set->sunit[i]);
        set->sc->n = 0;
    }
}

int rk__open_due(const rk__openset *set, const char *key, int64_t stops_at, int64_t keep,
                 int64_t *arm_at)
{
    rk__openrec *r = rk_map_get(&set->map, key);
    const rk__open_ops *ops = bound(set, key);
    rk__open_seen first;
    int64_t due = stops_at > INT64_MAX - keep ? INT64_MAX : stops_at + keep;
    if (r == NULL && ops != NULL) {
        if (ops->alerts(set->h, rule_for(set, key), key, &first, 1) <= 0 ||
            due == first.resolve_at || due == INT64_MAX ||
            ops->set_resolve(set->h, rule_for(set, key), key, due) < 0)
            return 0;
        *arm_at = due;
        return 1;
    }
    if (r == NULL)
        return 0;
    if (due == r->resolve_at || due == INT64_MAX)
        return 0;
    r->resolve_at = due;
    *arm_at = due;
    return 1;
}

size_t rk__open_count(const rk__openset *set)
{
    rk_map_entry *e;
    size_t b, n = 0;
    for (e = rk_map_first(&set->map, &b); e != NULL; e = rk_map_next(&set->map, &b, e))
        n += ((const rk__openrec *)e->value)->n;
    return n;
}

void rk__open_put(rk_buf *out, const rk__openset *set)
{
    rk_map_entry *e;
    size_t b;
    uint32_t i;
    rk_buf_put_u32(out, (uint32_t)set->map.count);
    for (e = rk_map_first(&set->map, &b); e != NULL; e = rk_map_next(&set->map, &b, e)) {
        const rk__openrec *r = e->value;
        rk_buf_put_str(out, e->key);
        rk_buf_put_i64(out, r->resolve_at);
        rk_buf_put_u32(out, r->n);
        for (i = 0; i < r->n; i++) {
            const char *fa = rk__open_field(set, &r->a[i], 0);
            const char *fb = rk__open_field(set, &r->a[i], 1);
            rk_buf_put_i64(out, r->a[i].ts);
            rk_buf_put_u32(out, fa != NULL);
            if (fb != NULL) {        /* as rk_buf_put_str("a" PR_OPEN_SEP "b") */
                size_t la = strlen(fa), lb = strlen(fb);
                rk_buf_put_u32(out, (uint32_t)(la + 1 + lb));
                rk_buf_put_bytes(out, fa, la);
                rk_buf_put_bytes(out, "\x1f", 1);
                rk_buf_put_bytes(out, fb, lb);
            } else if (fa != NULL) {
                rk_buf_put_str(out, fa);
            }
        }
    }
}

int rk__open_read(rk_rd *rd, rk__openset *set)
{
    uint32_t n = rk_rd_u32(rd), i, k, m;
    if (rd->err || n > (size_t)(rd->end - rd->p) / 16)
        goto bad;
    for (i = 0; i < n; i++) {
        char *key = rk_rd_str(rd, OPEN_MAX_ID);
        int64_t resolve_at;
        if (key == NULL || rk_map_find(&set->map, key) != NULL) {
            free(key);
            goto bad;
        }
        resolve_at = rk_rd_time(rd);
        m = rk_rd_u32(rd);
        if (rd->err || m > (size_t)(rd->end - rd->p) / 12 ||
            rec_room(set, key) == NULL) {   /* a key may have none left */
            free(key);
            goto bad;
        }
        for (k = 0; k < m; k++) {
            int64_t ts = rk_rd_ts(rd);
            char *x = rk_rd_u32(rd) ? rk_rd_str(rd, OPEN_MAX_ID) : NULL;
            int rc = rd->err ? -1 : rk__open_add(set, key, ts, x);
            free(x);
            if (rc != 0) {
                free(key);
                goto bad;
            }
        }
        rk__open_get(set, key)->resolve_at = resolve_at;
        free(key);
    }
    return 0;
bad:
    rd->err = 1;
    rk__open_clear(set);
    return -1;
}
