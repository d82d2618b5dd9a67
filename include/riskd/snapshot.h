/* riskd/snapshot.h - encoding a detector's state for checkpoints (plugin
 * kit).
 *
 * snapshot() appends its state to an rk_buf (riskd/detector.h) and
 * restore() reads it back; these helpers fix one encoding for both:
 * little-endian integers and doubles, strings as a u32 length and the
 * bytes (NULL as length 0xffffffff), entry refs as 16 bytes.
 *
 *   rk_buf_put_u32, _u64, _i64, _double, _str, _ref, _bytes
 *                      append; a failed allocation sets b->oom and later
 *                      appends do nothing, so check b->oom (or return it)
 *                      once at the end.
 *   rk_buf_reserve, rk_buf_free
 *   rk_rd_init, rk_rd_u32, _u64, _i64, _double, _str, _ref
 *                      read; running out of data (or a bad string length
 *                      or stream number) latches r->err and returns zero
 *                      values, so check r->err once at the end (or in loops,
 *                      to stop early). Never reads past the end.
 *   rk_rd_ts, rk_rd_time
 *                      a timestamp, range-checked (see below): read every
 *                      time with them so a corrupt checkpoint cannot make
 *                      later arithmetic overflow.
 *
 * Start a snapshot with a u32 format version of your own, and keep reading
 * the older versions in restore(): a checkpoint outlives an upgrade.
 * Header-only (static inline).
 */
#ifndef RISKD_SNAPSHOT_H
#define RISKD_SNAPSHOT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/detector.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================
 * Snapshot encoding
 * =================================================================== */

static inline int rk_buf_reserve(rk_buf *b, size_t extra)
{
    size_t need, cap;
    unsigned char *p;
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX - b->len) { b->oom = 1; return -1; }
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = (unsigned char *)realloc(b->data, cap);
    if (p == NULL) { b->oom = 1; return -1; }
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline void rk_buf_put_bytes(rk_buf *b, const void *p, size_t n)
{
    if (n == 0 || (b->len + n > b->cap && rk_buf_reserve(b, n) != 0))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RK_KIT_LE 1
#else
#define RK_KIT_LE 0
#endif

static inline void rk_buf_put_u64(rk_buf *b, uint64_t v)
{
    unsigned char x[8];
    int i;
    if (RK_KIT_LE && b->len + 8 <= b->cap) {   /* the common case: one store */
        memcpy(b->data + b->len, &v, 8);
        b->len += 8;
        return;
    }
    for (i = 0; i < 8; i++) x[i] = (unsigned char)(v >> (8 * i));
    rk_buf_put_bytes(b, x, 8);
}

static inline void rk_buf_put_u32(rk_buf *b, uint32_t v)
{
    unsigned char x[4];
    int i;
    if (RK_KIT_LE && b->len + 4 <= b->cap) {
        memcpy(b->data + b->len, &v, 4);
        b->len += 4;
        return;
    }
    for (i = 0; i < 4; i++) x[i] = (unsigned char)(v >> (8 * i));
    rk_buf_put_bytes(b, x, 4);
}

static inline void rk_buf_put_i64(rk_buf *b, int64_t v) { rk_buf_put_u64(b, (uint64_t)v); }

static inline void rk_buf_put_double(rk_buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    rk_buf_put_u64(b, v);
}

/* A string as u32 length + bytes; NULL is encoded as length 0xffffffff. */
static inline void rk_buf_put_str(rk_buf *b, const char *s)
{
    size_t n;
    if (s == NULL) { rk_buf_put_u32(b, UINT32_MAX); return; }
    n = strlen(s);
    if (n >= UINT32_MAX) { b->oom = 1; return; }
    rk_buf_put_u32(b, (uint32_t)n);
    rk_buf_put_bytes(b, s, n);
}

static inline void rk_buf_put_ref(rk_buf *b, rk_entry_ref r)
{
    rk_buf_put_u64(b, r.ms);
    rk_buf_put_u32(b, r.seq);
    rk_buf_put_u32(b, r.stream);
}

static inline void rk_buf_free(rk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* Reader: every getter returns 0 and sets r->err once the data runs out;
 * check r->err once at the end (or in loops, to stop early). */
typedef struct rk_rd {
    const unsigned char *p;
    const unsigned char *end;
    int err;
} rk_rd;

static inline void rk_rd_init(rk_rd *r, const void *data, size_t len)
{
    r->p = (const unsigned char *)data;
    r->end = r->p + len;
    r->err = 0;
}

static inline int rk_rd_take(rk_rd *r, size_t n)
{
    if (r->err || (size_t)(r->end - r->p) < n) { r->err = 1; return -1; }
    return 0;
}

static inline uint64_t rk_rd_u64(rk_rd *r)
{
    uint64_t v = 0;
    int i;
    if (rk_rd_take(r, 8) != 0) return 0;
    for (i = 0; i < 8; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static inline uint32_t rk_rd_u32(rk_rd *r)
{
    uint32_t v = 0;
    int i;
    if (rk_rd_take(r, 4) != 0) return 0;
    for (i = 0; i < 4; i++) v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    return v;
}

static inline int64_t rk_rd_i64(rk_rd *r) { return (int64_t)rk_rd_u64(r); }

/* Timestamps (Unix ms). A checkpoint is input like any other: a value no
 * event can produce would overflow the arithmetic done on it later (a
 * deadline minus a first scan, a ts plus a window). Every ts an event can
 * carry (years 0000-9999) plus any configured duration (capped at 100
 * years) lies well inside +-2^53 ms (about 285,000 years), and the
 * difference or sum of two such values cannot overflow.
 *   rk_rd_ts    an event time: anything outside +-RK_TS_LIMIT latches err;
 *   rk_rd_time  a deadline or watermark that may also be one of the
 *               sentinels INT64_MIN ("none yet") or INT64_MAX ("never"). */
#define RK_TS_LIMIT ((int64_t)1 << 53)

static inline int64_t rk_rd_ts(rk_rd *r)
{
    int64_t v = rk_rd_i64(r);
    if (v < -RK_TS_LIMIT || v > RK_TS_LIMIT) { r->err = 1; return 0; }
    return v;
}

static inline int64_t rk_rd_time(rk_rd *r)
{
    int64_t v = rk_rd_i64(r);
    if (v == INT64_MIN || v == INT64_MAX)
        return v;
    if (v < -RK_TS_LIMIT || v > RK_TS_LIMIT) { r->err = 1; return 0; }
    return v;
}

static inline double rk_rd_double(rk_rd *r)
{
    uint64_t v = rk_rd_u64(r);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

/* Returns a malloc'ed NUL-terminated copy (caller frees), or NULL for an
 * encoded NULL or on error (then r->err is set). Strings longer than
 * `maxlen` are an error. */
static inline char *rk_rd_str(rk_rd *r, size_t maxlen)
{
    uint32_t n = rk_rd_u32(r);
    char *s;
    if (r->err || n == UINT32_MAX)
        return NULL;
    if (n > maxlen || rk_rd_take(r, n) != 0) { r->err = 1; return NULL; }
    s = (char *)malloc((size_t)n + 1);
    if (s == NULL) { r->err = 1; return NULL; }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    return s;
}

/* Stream numbers a ref read back may carry: below this. A detector built
 * into riskd may run where one engine reads several partitions' streams
 * (numbered 0, 1, ... two per partition); a plugin sees only RK_STREAM_SCAN
 * and RK_STREAM_CASE. */
#define RK_STREAM_REF_LIMIT 2048u

static inline rk_entry_ref rk_rd_ref(rk_rd *r)
{
    rk_entry_ref x;
    x.ms = rk_rd_u64(r);
    x.seq = rk_rd_u32(r);
    x.stream = rk_rd_u32(r);
    if (x.stream >= RK_STREAM_REF_LIMIT) r->err = 1;
    return x;
}

#ifdef __cplusplus
}
#endif
#endif /* RISKD_SNAPSHOT_H */
