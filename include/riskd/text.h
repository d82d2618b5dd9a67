/* riskd/text.h - the sentences people read (plugin kit).
 *
 * An alert's summary is one sentence a section chief understands without
 * the manual: in alerts.language (Chinese by default, English on request),
 * with the names the `names` reference list gives units, officers and
 * enterprises where it knows them and their ids where it does not. These
 * helpers build it the same way in every detector:
 *
 *   rk_kit_name        the name of an id, or the id itself.
 *   rk_kit_lang_en     whether summaries are to be in English.
 *   rk_say             a sentence being built: rk_say_init, then
 *                      rk_say_f (printf), rk_say_who (a unit, officer,
 *                      enterprise ... by name or id), rk_say_officer (the
 *                      unit's name before the officer's), rk_say_window
 *                      ("近30天" / "in the last 30 days"), rk_say_yuan
 *                      ("12.5万元" / "125,000 yuan"), rk_say_num (a number
 *                      without trailing zeros), rk_say_n (a count with its
 *                      English plural); rk_say_text is the result.
 *
 * The conventions: amounts are whole yuan; in Chinese from 10,000 yuan on
 * in 万元 with at most two decimals ("12.5万元", "5万元"), below in 元
 * ("8500元"); in English in yuan with thousands grouped ("125,000
 * yuan"). Windows are days where they are whole days, else hours or
 * minutes. A name's control characters (tabs, line breaks) become spaces,
 * so a summary stays one line. A sentence longer than RK_SAY_MAX bytes is
 * cut at a character boundary, never inside a UTF-8 sequence.
 *
 * The host's name_of and language came with ABI minor 2; a host that
 * leaves them NULL (a test host) gets ids and Chinese. Header-only
 * (static inline).
 */
#ifndef RISKD_TEXT_H
#define RISKD_TEXT_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "riskd/detector.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RK_SAY_MAX 4096

/* The name the names list gives `id` of `kind` ("unit", "officer",
 * "enterprise", "region", "item", "domain"), else id itself (NULL when id
 * is NULL). */
static inline const char *rk_kit_name(const rk_host_api *api, rk_host *host,
                                      const char *kind, const char *id)
{
    const char *n = NULL;
    if (id != NULL && api != NULL && api->name_of != NULL)
        n = api->name_of(host, kind, id);
    return n != NULL && n[0] != '\0' ? n : id;
}

/* 1 when alerts.language is "en", 0 for Chinese (the default). */
static inline int rk_kit_lang_en(const rk_host_api *api, rk_host *host)
{
    const char *l = api != NULL && api->language != NULL ? api->language(host) : NULL;
    return l != NULL && strcmp(l, "en") == 0;
}

typedef struct rk_say {
    const rk_host_api *api;
    rk_host *host;
    int en;                         /* English (else Chinese) */
    size_t len;
    char buf[RK_SAY_MAX];
} rk_say;

static inline void rk_say_init(rk_say *s, const rk_host_api *api, rk_host *host)
{
    s->api = api;
    s->host = host;
    s->en = rk_kit_lang_en(api, host);
    s->len = 0;
    s->buf[0] = '\0';
}

/* Cut the text back to its last complete UTF-8 character. */
static inline void rk__say_clip(rk_say *s)
{
    size_t i, need;
    unsigned char c;
    if (s->len == 0)
        return;
    i = s->len - 1;
    while (i > 0 && ((unsigned char)s->buf[i] & 0xC0) == 0x80)
        i--;
    c = (unsigned char)s->buf[i];
    need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (i + need > s->len)
        s->len = i;
    s->buf[s->len] = '\0';
}

/* Append printf-style text. */
static inline void rk_say_f(rk_say *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static inline void rk_say_f(rk_say *s, const char *fmt, ...)
{
    va_list ap;
    int n;
    size_t room = RK_SAY_MAX - s->len;
    if (room <= 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(s->buf + s->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        s->len = RK_SAY_MAX - 1;
        rk__say_clip(s);
    } else {
        s->len += (size_t)n;
    }
}

/* Append raw text with control characters turned into spaces. */
static inline void rk__say_clean(rk_say *s, const char *t)
{
    size_t from = s->len, i;
    rk_say_f(s, "%s", t);
    for (i = from; i < s->len; i++)
        if ((unsigned char)s->buf[i] < 0x20 || s->buf[i] == 0x7f)
            s->buf[i] = ' ';
}

/* Append what `id` of `kind` is called. A known name: in Chinese the name
 * ("市场监管局"), an officer's with 执法人员 before it ("执法人员王某"); in
 * English the name, an officer's after "officer". An unknown id: its kind
 * and the id ("单位U12", "unit U12"). `cap`: the English words start a
 * sentence ("Unit U12", "Officer Wang"). id NULL: "某单位", "a unit". */
static inline void rk_say_who(rk_say *s, const char *kind, const char *id, int cap)
{
    static const char *const kinds[] = {"unit", "officer", "enterprise", "region", "item",
                                        "domain"};
    static const char *const zh[] = {"单位", "执法人员", "企业", "地区", "事项", "领域"};
    static const char *const en[] = {"unit", "officer", "enterprise", "region", "item",
                                     "domain"};
    const char *name = NULL;
    size_t k = 0;
    while (k < 5 && strcmp(kinds[k], kind) != 0)   /* unknown: "domain" */
        k++;
    if (id != NULL && s->api != NULL && s->api->name_of != NULL)
        name = s->api->name_of(s->host, kind, id);
    if (name != NULL && name[0] == '\0')
        name = NULL;
    if (id == NULL) {
        if (s->en)
            rk_say_f(s, "%s %s", cap ? (k == 2 ? "An" : "A") : (k == 2 ? "an" : "a"), en[k]);
        else
            rk_say_f(s, "某%s", zh[k]);
        return;
    }
    if (name != NULL && k != 1) {
        rk__say_clean(s, name);
        return;
    }
    if (s->en)
        rk_say_f(s, "%c%s ", cap ? en[k][0] - 'a' + 'A' : en[k][0], en[k] + 1);
    else
        rk_say_f(s, "%s", zh[k]);
    rk__say_clean(s, name != NULL ? name : id);
}

/* Append an officer with the unit before: "市场监管局执法人员王某",
 * "officer Wang of Market Supervision Bureau" (unit NULL: the officer
 * alone). */
static inline void rk_say_officer(rk_say *s, const char *unit, const char *officer, int cap)
{
    if (!s->en && unit != NULL)
        rk_say_who(s, "unit", unit, 0);
    rk_say_who(s, "officer", officer, cap);
    if (s->en && unit != NULL) {
        rk_say_f(s, " of ");
        rk_say_who(s, "unit", unit, 0);
    }
}

/* Append a number with at most `decimals` decimals, trailing zeros
 * dropped ("2", "2.5"). */
static inline void rk_say_num(rk_say *s, double v, int decimals)
{
    char b[64];
    size_t n;
    snprintf(b, sizeof(b), "%.*f", decimals, v);
    n = strlen(b);
    if (strchr(b, '.') != NULL) {
        while (n > 0 && b[n - 1] == '0')
            b[--n] = '\0';
        if (n > 0 && b[n - 1] == '.')
            b[--n] = '\0';
    }
    if (strcmp(b, "-0") == 0)
        strcpy(b, "0");
    rk_say_f(s, "%s", b);
}

/* Append a count and its noun: "3 bad ratings", "1 officer" (English; in
 * Chinese the count alone: the caller writes the measure word). */
static inline void rk_say_n(rk_say *s, unsigned long long n, const char *one,
                            const char *many)
{
    if (s->en)
        rk_say_f(s, "%llu %s", n, n == 1 ? one : many);
    else
        rk_say_f(s, "%llu", n);
}

/* Append an amount in yuan, rounded to the yuan: "12.5万元" / "8500元" /
 * "125,000 yuan". */
static inline void rk_say_yuan(rk_say *s, double yuan)
{
    double r = floor(yuan + 0.5);
    if (!s->en) {
        if (r >= 10000) {
            rk_say_num(s, r / 10000.0, 2);
            rk_say_f(s, "万元");
        } else {
            rk_say_f(s, "%.0f元", r);
        }
        return;
    }
    {
        char digits[64], out[96];
        size_t n, i, o = 0;
        snprintf(digits, sizeof(digits), "%.0f", r < 0 ? -r : r);
        n = strlen(digits);
        if (r < 0)
            out[o++] = '-';
        for (i = 0; i < n && o < sizeof(out) - 2; i++) {
            if (i > 0 && (n - i) % 3 == 0)
                out[o++] = ',';
            out[o++] = digits[i];
        }
        out[o] = '\0';
        rk_say_f(s, "%s yuan", out);
    }
}

/* Append a span in days from min_days whole days on, else in hours when
 * whole hours, else in minutes with up to one decimal. */
static inline void rk__say_span(rk_say *s, int64_t ms, int64_t min_days)
{
    const int64_t day = INT64_C(86400000), hour = INT64_C(3600000), min = INT64_C(60000);
    if (ms >= min_days * day && ms % day == 0) {
        long long n = (long long)(ms / day);
        if (s->en) rk_say_f(s, "%lld day%s", n, n == 1 ? "" : "s");
        else rk_say_f(s, "%lld天", n);
    } else if (ms > 0 && ms % hour == 0) {
        long long n = (long long)(ms / hour);
        if (s->en) rk_say_f(s, "%lld hour%s", n, n == 1 ? "" : "s");
        else rk_say_f(s, "%lld小时", n);
    } else {
        rk_say_num(s, (double)ms / (double)min, 1);
        if (s->en) rk_say_f(s, " minute%s", ms == min ? "" : "s");
        else rk_say_f(s, "分钟");
    }
}

/* Append a span of event time (a time limit, a grace): "48小时" / "2
 * days" ... in whole days from two days on ("3天", "3 days"), else hours
 * ("24小时", "24 hours"), else minutes ("1.5分钟", "10 minutes"). */
static inline void rk_say_span(rk_say *s, int64_t ms)
{
    rk__say_span(s, ms, 2);
}

/* Append a window ending now: "近30天" / "in the last 30 days" ("in the
 * last day" for one day, hour or minute). */
static inline void rk_say_window(rk_say *s, int64_t ms)
{
    if (!s->en) {
        rk_say_f(s, "近");
        rk__say_span(s, ms, 1);
    } else if (ms == INT64_C(86400000) || ms == INT64_C(3600000) || ms == INT64_C(60000)) {
        rk_say_f(s, "in the last %s", ms == INT64_C(86400000) ? "day"
                 : ms == INT64_C(3600000) ? "hour" : "minute");
    } else {
        rk_say_f(s, "in the last ");
        rk__say_span(s, ms, 1);
    }
}

/* Append a ratio as a percentage with up to one decimal: "25%". */
static inline void rk_say_pct(rk_say *s, double ratio)
{
    rk_say_num(s, ratio * 100.0, 1);
    rk_say_f(s, "%%");
}

/* The sentence built so far (valid until the rk_say goes). */
static inline const char *rk_say_text(const rk_say *s)
{
    return s->buf;
}

#ifdef __cplusplus
}
#endif
#endif /* RISKD_TEXT_H */
