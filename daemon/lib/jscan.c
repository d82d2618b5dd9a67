/* daemon/lib/jscan.c - one pass over an event's JSON, without building a tree.
 *
 * An event is a flat JSON object: the parser (event.c) needs its top-level
 * members, their scalar values, and the strings of an array (officers). A
 * general JSON library builds a tree of every node and a hash table per
 * object first; for riskd's events that was half of the daemon's CPU during
 * a backlog drain. rk__jscan() reads the bytes once and returns the
 * top-level members in an array, strings decoded into the caller's arena.
 *
 * It is a fast path, not a second JSON implementation with its own error
 * messages: it accepts only input it is sure jansson (json_loadb with
 * JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, as event.c calls it) accepts
 * with exactly the same values, and returns RK__JSCAN_OTHER for anything
 * else - malformed or merely unusual - so event.c hands those to jansson,
 * which gives the verdict and the error text. Input it may pass on although
 * it is valid JSON (jansson then parses it, slowly but correctly):
 *   - a top-level value that is not an object;
 *   - an object key containing a backslash escape;
 *   - more than RK__JSCAN_MAX_MEMBERS top-level members, or more than
 *     NESTED_MAX_KEYS keys in a nested object (duplicates are checked by
 *     comparing with every earlier key);
 *   - nesting deeper than MAX_DEPTH;
 *   - an integer of more than 18 digits (jansson's range check decides);
 *   - a number with a fraction or exponent longer than NUM_MAX bytes, or
 *     one strtod() does not read whole (a locale whose decimal point is not
 *     '.'; jansson converts for that).
 * Everything jansson rejects is passed on too: invalid UTF-8 (overlong
 * forms, surrogates, > U+10FFFF), control characters in strings, bad
 * escapes, \u0000, lone surrogate escapes, leading zeros, duplicate keys at
 * any depth, a real number that overflows, trailing bytes. The differential
 * tests (tests/unit/test-jscan.c, tests/fuzz/fuzz-event.c) check that whatever
 * rk__jscan accepts, jansson accepts with the same members and values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_DEPTH 32
#define NESTED_MAX_KEYS 16
#define NUM_MAX 64

typedef struct jscan {
    const unsigned char *p, *end;
    rk__arena *arena;
} jscan;

static bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static void skip_ws(jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' ||
                             *s->p == '\r'))
        s->p++;
}

/* Is the next byte c? Then step over it. */
static bool eat(jscan *s, unsigned char c)
{
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* Length of the well-formed UTF-8 sequence of 2 to 4 bytes at p (before
 * end), or 0: jansson's rules (utf8.c): no overlong form, no surrogate, at
 * most U+10FFFF. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ||
        (n == 3 && v < 0x800) || (n == 4 && v < 0x10000))
        return 0;
    return n;
}

/* The 4 hex digits at p (p + 4 <= end checked by the caller), or -1. */
static int32_t hex4(const unsigned char *p)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (is_digit(c))
            v |= (int32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (int32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (int32_t)(c - 'A' + 10);
        else
            return -1;
    }
    return v;
}

/* Check the string at s->p (its opening quote) and step past its closing
 * quote. *raw and *rawlen: the bytes between the quotes; *esc: whether they
 * hold an escape. The escapes are checked here, so decode() can trust them.
 * Returns 0 or -1 (not for the fast path). */
static int scan_string(jscan *s, const unsigned char **raw, size_t *rawlen, bool *esc)
{
    const unsigned char *p = s->p + 1, *end = s->end;

    *esc = false;
    *raw = p;
    for (;;) {
        /* The common bytes: printable ASCII other than '"' and '\\'. */
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return -1;
        unsigned c = *p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            size_t n = utf8_len(p, end);
            if (n == 0)
                return -1;
            p += n;
            continue;
        }
        /* A backslash. */
        *esc = true;
        if (end - p < 2)
            return -1;
        c = p[1];
        if (c != 'u') {
            if (strchr("\"\\/bfnrt", (int)c) == NULL || c == '\0')
                return -1;
            p += 2;
            continue;
        }
        if (end - p < 6)
            return -1;
        int32_t v = hex4(p + 2);
        if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
            return -1;                  /* bad hex, \u0000, lone low half */
        p += 6;
        if (v >= 0xD800 && v <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                return -1;
            int32_t lo = hex4(p + 2);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            p += 6;
        }
    }
    *rawlen = (size_t)(p - *raw);
    s->p = p + 1;
    return 0;
}

/* Append code point v as UTF-8 at out; returns the bytes written. */
static size_t put_utf8(char *out, uint32_t v)
{
    if (v < 0x80) {
        out[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        out[0] = (char)(0xC0 | (v >> 6));
        out[1] = (char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        out[0] = (char)(0xE0 | (v >> 12));
        out[1] = (char)(0x80 | ((v >> 6) & 0x3F));
        out[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (v >> 18));
    out[1] = (char)(0x80 | ((v >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((v >> 6) & 0x3F));
    out[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

/* The string scan_string() checked, decoded into the arena and
 * NUL-terminated: v->str, v->len. An escape never decodes to more bytes
 * than it takes (\uXXXX: 6 -> at most 3, a surrogate pair: 12 -> 4), so n
 * + 1 bytes are enough. Returns 0 or -1 (out of memory). */
static int decode(jscan *s, const unsigned char *raw, size_t n, bool esc, rk__jval *v)
{
    char *out = rk__arena_alloc(s->arena, n + 1);
    size_t o = 0;

    if (out == NULL)
        return -1;
    if (!esc) {
        memcpy(out, raw, n);
        o = n;
    } else {
        for (size_t i = 0; i < n;) {
            if (raw[i] != '\\') {
                out[o++] = (char)raw[i++];
                continue;
            }
            unsigned char c = raw[i + 1];
            i += 2;
            switch (c) {
            case 'b': out[o++] = '\b'; break;
            case 'f': out[o++] = '\f'; break;
            case 'n': out[o++] = '\n'; break;
            case 'r': out[o++] = '\r'; break;
            case 't': out[o++] = '\t'; break;
            case 'u': {
                uint32_t cp = (uint32_t)hex4(raw + i);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo = (uint32_t)hex4(raw + i + 2);
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                o += put_utf8(out + o, cp);
                break;
            }
            default: out[o++] = (char)c; break;    /* " \ / */
            }
        }
    }
    out[o] = '\0';
    v->kind = RK_J_STRING;
    v->str = out;
    v->len = o;
    return 0;
}

/* The number at s->p; into *v when v is not NULL. Integers (no fraction,
 * no exponent) like jansson's strtoll, reals like its strtod. */
static int scan_number(jscan *s, rk__jval *v)
{
    const unsigned char *start = s->p, *q = s->p, *end = s->end;
    bool neg = false, real = false;

    if (q < end && *q == '-') {
        neg = true;
        q++;
    }
    if (q >= end)
        return -1;
    if (*q == '0') {
        if (++q < end && is_digit(*q))
            return -1;                  /* leading zero */
    } else if (is_digit(*q)) {
        while (q < end && is_digit(*q))
            q++;
    } else {
        return -1;
    }
    const unsigned char *int_end = q;
    if (q < end && *q == '.') {
        real = true;
        if (++q >= end || !is_digit(*q))
            return -1;
        while (q < end && is_digit(*q))
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        real = true;
        if (++q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || !is_digit(*q))
            return -1;
        while (q < end && is_digit(*q))
            q++;
    }
    s->p = q;
    if (!real) {
        const unsigned char *d = start + (neg ? 1 : 0);
        if (int_end - d > 18)
            return -1;                  /* jansson decides about the range */
        long long x = 0;
        for (; d < int_end; d++)
            x = x * 10 + (*d - '0');
        if (v != NULL) {
            v->kind = RK_J_INT;
            v->i = neg ? -x : x;
        }
        return 0;
    }
    size_t n = (size_t)(q - start);
    char buf[NUM_MAX];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, start, n);
    buf[n] = '\0';
    char *e;
    double d = strtod(buf, &e);
    if (e != buf + n || isinf(d))
        return -1;                      /* another locale; overflow */
    if (v != NULL) {
        v->kind = RK_J_REAL;
        v->d = d;
    }
    return 0;
}

/* The literal `word` (true, false, null) at s->p. */
static int scan_word(jscan *s, const char *word, size_t n, rk__jkind kind, rk__jval *v)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    if (v != NULL)
        v->kind = kind;
    return 0;
}

static int skip_value(jscan *s, int depth);

/* A nested object at s->p ('{'): checked (keys unique), nothing kept. */
static int skip_object(jscan *s, int depth)
{
    struct { const unsigned char *k; size_t n; } keys[NESTED_MAX_KEYS];
    size_t nk = 0;

    if (depth > MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    if (eat(s, '}'))
        return 0;
    for (;;) {
        const unsigned char *k;
        size_t n;
        bool esc;
        if (s->p >= s->end || *s->p != '"' || scan_string(s, &k, &n, &esc) != 0 ||
            esc || nk == NESTED_MAX_KEYS)
            return -1;
        for (size_t i = 0; i < nk; i++)
            if (keys[i].n == n && memcmp(keys[i].k, k, n) == 0)
                return -1;              /* duplicate */
        keys[nk].k = k;
        keys[nk].n = n;
        nk++;
        skip_ws(s);
        if (!eat(s, ':'))
            return -1;
        skip_ws(s);
        if (skip_value(s, depth + 1) != 0)
            return -1;
        skip_ws(s);
        if (eat(s, '}'))
            return 0;
        if (!eat(s, ','))
            return -1;
        skip_ws(s);
    }
}

/* A nested array at s->p ('['): checked, nothing kept. */
static int skip_array(jscan *s, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    if (eat(s, ']'))
        return 0;
    for (;;) {
        if (skip_value(s, depth + 1) != 0)
            return -1;
        skip_ws(s);
        if (eat(s, ']'))
            return 0;
        if (!eat(s, ','))
            return -1;
        skip_ws(s);
    }
}

/* A scalar at s->p into *v (NULL: only checked). Strings are decoded when
 * v is not NULL. */
static int scan_scalar(jscan *s, rk__jval *v)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"': {
        const unsigned char *raw;
        size_t n;
        bool esc;
        if (scan_string(s, &raw, &n, &esc) != 0)
            return -1;
        return v != NULL ? decode(s, raw, n, esc, v) : 0;
    }
    case 't': return scan_word(s, "true", 4, RK_J_TRUE, v);
    case 'f': return scan_word(s, "false", 5, RK_J_FALSE, v);
    case 'n': return scan_word(s, "null", 4, RK_J_NULL, v);
    default: return scan_number(s, v);
    }
}

static int skip_value(jscan *s, int depth)
{
    if (s->p < s->end && *s->p == '{')
        return skip_object(s, depth);
    if (s->p < s->end && *s->p == '[')
        return skip_array(s, depth);
    return scan_scalar(s, NULL);
}

/* Grow the arena array *a of *cap items of `size` bytes to twice as many
 * (the old one stays in the arena until the rewind). */
static int grow(jscan *s, void **a, size_t *cap, size_t size)
{
    size_t ncap = *cap ? 2 * *cap : 8;
    void *na = rk__arena_alloc(s->arena, ncap * size);
    if (na == NULL)
        return -1;
    if (*cap)
        memcpy(na, *a, *cap * size);
    *a = na;
    *cap = ncap;
    return 0;
}

/* A top-level member's array at s->p: its elements into v->elems (strings
 * decoded; a nested array or object only checked, kept as its kind). */
static int top_array(jscan *s, rk__jval *v)
{
    rk__jval *el = NULL;
    size_t n = 0, cap = 0;

    s->p++;
    skip_ws(s);
    if (!eat(s, ']')) {
        for (;;) {
            if (n == cap && grow(s, (void **)&el, &cap, sizeof *el) != 0)
                return -1;
            rk__jval *e = &el[n++];
            memset(e, 0, sizeof *e);
            if (s->p < s->end && (*s->p == '[' || *s->p == '{')) {
                e->kind = *s->p == '[' ? RK_J_ARRAY : RK_J_OBJECT;
                if (skip_value(s, 2) != 0)
                    return -1;
            } else if (scan_scalar(s, e) != 0) {
                return -1;
            }
            skip_ws(s);
            if (eat(s, ']'))
                break;
            if (!eat(s, ','))
                return -1;
            skip_ws(s);
        }
    }
    v->kind = RK_J_ARRAY;
    v->elems = el;
    v->len = n;
    return 0;
}

int rk__jscan(const char *data, size_t len, rk__arena *arena, rk__jobj *out)
{
    rk__jmember *m = NULL;
    size_t n = 0, cap = 0;

    out->m = NULL;
    out->n = 0;
    if (data == NULL)
        return RK__JSCAN_OTHER;
    jscan s = {(const unsigned char *)data, (const unsigned char *)data + len, arena};
    skip_ws(&s);
    if (!eat(&s, '{'))
        return RK__JSCAN_OTHER;
    skip_ws(&s);
    if (!eat(&s, '}')) {
        for (;;) {
            const unsigned char *k;
            size_t kn;
            bool esc;
            if (s.p >= s.end || *s.p != '"' || scan_string(&s, &k, &kn, &esc) != 0 ||
                esc || n == RK__JSCAN_MAX_MEMBERS)
                return RK__JSCAN_OTHER;
            for (size_t i = 0; i < n; i++)
                if (m[i].keylen == kn && memcmp(m[i].key, k, kn) == 0)
                    return RK__JSCAN_OTHER;     /* duplicate */
            if (n == cap && grow(&s, (void **)&m, &cap, sizeof *m) != 0)
                return RK__JSCAN_OTHER;
            rk__jmember *mb = &m[n++];
            memset(mb, 0, sizeof *mb);
            mb->key = (const char *)k;
            mb->keylen = kn;
            skip_ws(&s);
            if (!eat(&s, ':'))
                return RK__JSCAN_OTHER;
            skip_ws(&s);
            int rc;
            if (s.p < s.end && *s.p == '[') {
                rc = top_array(&s, &mb->v);
            } else if (s.p < s.end && *s.p == '{') {
                mb->v.kind = RK_J_OBJECT;
                rc = skip_object(&s, 1);
            } else {
                rc = scan_scalar(&s, &mb->v);
            }
            if (rc != 0)
                return RK__JSCAN_OTHER;
            skip_ws(&s);
            if (eat(&s, '}'))
                break;
            if (!eat(&s, ','))
                return RK__JSCAN_OTHER;
            skip_ws(&s);
        }
    }
    skip_ws(&s);
    if (s.p != s.end)
        return RK__JSCAN_OTHER;         /* trailing bytes */
    out->m = m;
    out->n = n;
    return 0;
}

/* jansson's tree of an object (the slow path) as the same flat members:
 * keys and strings point into the tree, element arrays come from the
 * arena. */
int rk__jobj_from_json(json_t *root, rk__arena *arena, rk__jobj *out)
{
    size_t n = json_object_size(root), i = 0;
    const char *key;
    json_t *v;

    out->n = 0;
    out->m = n ? rk__arena_alloc(arena, n * sizeof *out->m) : NULL;
    if (n && out->m == NULL)
        return -1;
    json_object_foreach(root, key, v) {
        rk__jmember *mb = &out->m[i++];
        memset(mb, 0, sizeof *mb);
        mb->key = key;
        mb->keylen = strlen(key);
        if (json_is_array(v)) {
            size_t ne = json_array_size(v);
            rk__jval *el = ne ? rk__arena_alloc(arena, ne * sizeof *el) : NULL;
            if (ne && el == NULL)
                return -1;
            for (size_t j = 0; j < ne; j++)
                rk__jval_from_json(json_array_get(v, j), &el[j]);
            mb->v.kind = RK_J_ARRAY;
            mb->v.elems = el;
            mb->v.len = ne;
        } else {
            rk__jval_from_json(v, &mb->v);
        }
    }
    out->n = i;
    return 0;
}

void rk__jval_from_json(json_t *j, rk__jval *v)
{
    memset(v, 0, sizeof *v);
    switch (json_typeof(j)) {
    case JSON_OBJECT: v->kind = RK_J_OBJECT; break;
    case JSON_ARRAY:
        v->kind = RK_J_ARRAY;          /* elements: rk__jobj_from_json */
        v->len = json_array_size(j);
        break;
    case JSON_STRING:
        v->kind = RK_J_STRING;
        v->str = json_string_value(j);
        v->len = json_string_length(j);
        break;
    case JSON_INTEGER:
        v->kind = RK_J_INT;
        v->i = json_integer_value(j);
        break;
    case JSON_REAL:
        v->kind = RK_J_REAL;
        v->d = json_real_value(j);
        break;
    case JSON_TRUE: v->kind = RK_J_TRUE; break;
    case JSON_FALSE: v->kind = RK_J_FALSE; break;
    case JSON_NULL: v->kind = RK_J_NULL; break;
    }
}

const rk__jval *rk__jobj_get(const rk__jobj *o, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < o->n; i++)
        if (o->m[i].keylen == n && memcmp(o->m[i].key, name, n) == 0)
            return &o->m[i].v;
    return NULL;
}
