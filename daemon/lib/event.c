/* daemon/lib/event.c - one stream entry's JSON -> a validated, typed rk_event.
 *
 * The reader hands every entry's `data` value (bytes with a length, not
 * NUL-terminated) to rk__event_parse(). The JSON is read by rk__jscan()
 * (jscan.c): one pass that returns the object's top-level members with
 * their strings decoded, and accepts only what jansson accepts with the
 * same values. Anything else - invalid JSON, and rare valid shapes it
 * leaves alone (an escaped key, deep nesting, a 19-digit integer) - is
 * decoded by jansson (duplicate keys rejected, the whole buffer must be
 * one value), which gives the verdict and the reason, and its tree is
 * turned into the same member list. Then the `type` picks a row of the
 * event table (riskd(8), INPUT), and each field of that row is checked and
 * copied into the rk_event by the same readers whichever path decoded it.
 * Fields a type does not list, and fields nobody knows, are ignored; an
 * optional field given as null counts as absent.
 *
 * Nothing is copied twice: the event's strings point into the member list,
 * which is kept in an rk__event_mem together with the officers pointer
 * array until the next parse with the same mem (or rk__event_mem_free()).
 * The officers array only grows to the largest array seen, and an array
 * can be no longer than the input, so memory stays bounded by the input
 * size.
 *
 * Both paths allocate from a bump arena owned by the mem, not from malloc
 * (a jansson tree costs a malloc per node and a hash table per object).
 * For the slow path, jansson's allocator hooks (json_set_alloc_funcs)
 * are process-wide, so the arena's functions are installed only around
 * json_loadb, with the mem in a static "current arena" pointer, and the
 * previous functions are put back right after; the conversion to members
 * only looks the tree up (json_object_foreach and friends never allocate).
 * The tree is never json_decref'ed: the next parse, or rk__event_mem_free(),
 * rewinds the arena. The arena's free is a no-op, so the memory jansson
 * frees while parsing (its string buffer as it doubles, a hash table or
 * array it outgrows) stays used until the rewind: at most a small constant
 * times the input's size, bounded like jansson's own tree. The arena
 * (arena.c) keeps one block for the next event, up to 256 KiB, and is
 * watched by AddressSanitizer like malloc'ed memory.
 *
 * The global swap is safe because nothing else can use jansson while
 * json_loadb runs: riskd is one libuv loop on one thread. No uv_queue_work,
 * uv_thread_*, pthread_* or uv_getaddrinfo (libuv's thread pool) in
 * daemon/ or detectors/ (metrics.c and riskctl.c call getaddrinfo()
 * synchronously, and it does not touch jansson); the checkpoint child
 * (engine.c fork()) is forked between parses, so it inherits the ordinary
 * functions. A plugin that starts its own thread and uses jansson on it
 * would race with this swap (and with every other jansson user of the
 * daemon, which share jansson's unlocked hash seed and allocator hooks).
 *
 * A bad entry yields RK_PARSE_INVALID and a one-line reason that starts with
 * the field to blame ("score: expected an integer from 1 to 5"); the reader
 * writes it to the dead-letter stream. An unknown `type` yields
 * RK_PARSE_UNKNOWN and nothing else is checked, so producers can add types
 * before the daemon knows them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Largest integer `ts` / `planned_at`: 9999-12-31T23:59:59.999Z. */
#define RK_MAX_EPOCH_MS INT64_C(253402300799999)

#define TIME_EXPECTED "expected an RFC 3339 time or epoch milliseconds"

/* ===================================================================
 * Type names
 * =================================================================== */

static const char *const type_names[RK_EV__COUNT] = {
    [RK_EV_UNKNOWN] = NULL,
    [RK_EV_INSPECTION_FILED] = "inspection.filed",
    [RK_EV_INSPECTION_SCANNED] = "inspection.scanned",
    [RK_EV_INSPECTION_RATED] = "inspection.rated",
    [RK_EV_INSPECTION_REPORTED] = "inspection.reported",
    [RK_EV_CASE_OPENED] = "case.opened",
    [RK_EV_CASE_DECIDED] = "case.decided",
    [RK_EV_CASE_COMPLAINT] = "case.complaint",
    [RK_EV_CASE_REVIEW] = "case.review",
    [RK_EV_CLOCK_TICK] = "clock.tick",
};

const char *rk__event_type_name(rk_event_type t)
{
    if ((int)t <= (int)RK_EV_UNKNOWN || (int)t >= (int)RK_EV__COUNT)
        return NULL;
    return type_names[t];
}

void rk__event_key_text(const rk_event *ev, char *out, size_t len)
{
    static const char *const keys[RK_EV__COUNT] = {
        [RK_EV_INSPECTION_SCANNED] = "task_id, ts",
        [RK_EV_INSPECTION_RATED] = "task_id, enterprise_id",
        [RK_EV_INSPECTION_REPORTED] = "unit_id, enterprise_id, ts",
        [RK_EV_CASE_OPENED] = "case_id",
        [RK_EV_CASE_COMPLAINT] = "complaint_id",
        [RK_EV_CASE_REVIEW] = "case_id, outcome",
    };
    const char *k = (int)ev->type > 0 && ev->type < RK_EV__COUNT ? keys[ev->type] : NULL;
    snprintf(out, len, "%s: %s already applied with these keys but other values "
             "(only inspection.filed and case.decided can be amended)",
             k ? k : "type", ev->type_name ? ev->type_name : "event");
}

rk_event_type rk__event_type_from_name(const char *name)
{
    if (name == NULL)
        return RK_EV_UNKNOWN;
    for (int t = RK_EV_UNKNOWN + 1; t < RK_EV__COUNT; t++)
        if (strcmp(type_names[t], name) == 0)
            return (rk_event_type)t;
    return RK_EV_UNKNOWN;
}

/* ===================================================================
 * The arena behind the JSON tree (daemon/lib/arena.c)
 * =================================================================== */

/* The arena json_loadb allocates from while arena_malloc is installed. */
static rk__event_mem *cur_arena;

/* jansson's malloc while a parse runs: from cur_arena. */
static void *arena_malloc(size_t n)
{
    return cur_arena != NULL ? rk__arena_alloc(&cur_arena->arena, n) : NULL;
}

/* jansson's free while a parse runs: nothing; the rewind reclaims it. */
static void arena_free(void *p)
{
    (void)p;
}

/* json_loadb(data, len, flags, jerr) with every node in mem's arena (which
 * the caller has rewound). Returns the tree or NULL with jerr filled. */
static json_t *arena_loadb(rk__event_mem *mem, const char *data, size_t len,
                           size_t flags, json_error_t *jerr)
{
    json_malloc_t prev_malloc;
    json_free_t prev_free;

    json_get_alloc_funcs(&prev_malloc, &prev_free);
    cur_arena = mem;
    json_set_alloc_funcs(arena_malloc, arena_free);
    json_t *root = json_loadb(data, len, flags, jerr);
    json_set_alloc_funcs(prev_malloc, prev_free);
    cur_arena = NULL;
    return root;
}

/* ===================================================================
 * Errors
 * =================================================================== */

/* Write a printf-style reason into err (errlen bytes, may be 0) and make it
 * one printable ASCII line: control characters and bytes outside ASCII
 * (they can come from jansson's "near '...'" quote of the input) become '?'.
 * Always returns RK_PARSE_INVALID. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return RK_PARSE_INVALID;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (unsigned char *p = (unsigned char *)err; *p != '\0'; p++)
        if (*p < 0x20 || *p >= 0x7f)
            *p = '?';
    return RK_PARSE_INVALID;
}

/* ===================================================================
 * Field readers
 *
 * Each takes the event object, a field name and where to store the value;
 * `req` says whether the field is required. A required field that is absent
 * or null fails with "<field>: missing"; an optional one is left at its
 * zero/default. They return 0 or RK_PARSE_INVALID with err filled.
 * =================================================================== */

/* Return the field `name` of obj, or NULL when it is absent or null. */
static const rk__jval *field(const rk__jobj *obj, const char *name)
{
    const rk__jval *v = rk__jobj_get(obj, name);
    return v == NULL || v->kind == RK_J_NULL ? NULL : v;
}

/* An identifier: a non-empty string. */
static int get_id(const rk__jobj *obj, const char *name, bool req, const char **out,
                  char *err, size_t errlen)
{
    const rk__jval *v = field(obj, name);
    if (v == NULL)
        return req ? fail(err, errlen, "%s: missing", name) : 0;
    if (v->kind != RK_J_STRING || v->len == 0)
        return fail(err, errlen, "%s: expected a non-empty string", name);
    *out = v->str;
    return 0;
}

/* Free text: an optional string, possibly empty. */
static int get_text(const rk__jobj *obj, const char *name, const char **out,
                    char *err, size_t errlen)
{
    const rk__jval *v = field(obj, name);
    if (v == NULL)
        return 0;
    if (v->kind != RK_J_STRING)
        return fail(err, errlen, "%s: expected a string", name);
    *out = v->str;
    return 0;
}

/* A time: an RFC 3339 string, or an integer of epoch ms in
 * [0, RK_MAX_EPOCH_MS]. An absent optional time leaves *out alone. */
static int get_time(const rk__jobj *obj, const char *name, bool req, int64_t *out,
                    char *err, size_t errlen)
{
    const rk__jval *v = field(obj, name);
    if (v == NULL)
        return req ? fail(err, errlen, "%s: missing", name) : 0;
    if (v->kind == RK_J_STRING) {
        /* A string with an embedded NUL cannot get here (\u0000 is
         * rejected), so the C string is the whole value. */
        if (rk__parse_rfc3339(v->str, out) == 0)
            return 0;
    } else if (v->kind == RK_J_INT) {
        if (v->i >= 0 && v->i <= RK_MAX_EPOCH_MS) {
            *out = (int64_t)v->i;
            return 0;
        }
    }
    return fail(err, errlen, "%s: " TIME_EXPECTED, name);
}

/* An amount in yuan: a JSON number (integer or real) >= 0. */
static int get_amount(const rk__jobj *obj, const char *name, bool req, double *out,
                      char *err, size_t errlen)
{
    const rk__jval *v = field(obj, name);
    if (v == NULL)
        return req ? fail(err, errlen, "%s: missing", name) : 0;
    double d = v->kind == RK_J_INT ? (double)v->i : v->kind == RK_J_REAL ? v->d : -1;
    if (!(d >= 0))
        return fail(err, errlen, "%s: expected a number >= 0", name);
    *out = d + 0.0;                     /* -0.0 becomes 0 */
    return 0;
}

/* One of a list of strings; *out is set to the 1-based index in `names`
 * (the enums of riskd/event.h all start with UNSET = 0). `expect` is the
 * quoted list for the message. */
static int get_enum(const rk__jobj *obj, const char *name, bool req,
                    const char *const *names, const char *expect, int *out,
                    char *err, size_t errlen)
{
    const rk__jval *v = field(obj, name);
    if (v == NULL)
        return req ? fail(err, errlen, "%s: missing", name) : 0;
    if (v->kind == RK_J_STRING) {
        const char *s = v->str;
        for (int i = 0; names[i] != NULL; i++)
            if (strcmp(s, names[i]) == 0) {
                *out = i + 1;
                return 0;
            }
    }
    return fail(err, errlen, "%s: expected one of %s", name, expect);
}

/* `officers`: an array of non-empty strings, pointed to from mem. Required
 * (inspection.filed) it must hold at least one; optional, null and []
 * both mean none. */
static int get_officers(const rk__jobj *obj, bool req, rk_event *ev, rk__event_mem *mem,
                        char *err, size_t errlen)
{
    const rk__jval *v = field(obj, "officers");
    if (v == NULL)
        return req ? fail(err, errlen, "officers: missing") : 0;
    size_t n = v->kind == RK_J_ARRAY ? v->len : 0;
    if (v->kind != RK_J_ARRAY || (req && n == 0))
        return fail(err, errlen, req
                    ? "officers: expected an array of at least 1 non-empty string"
                    : "officers: expected an array of non-empty strings");
    if (n == 0)
        return 0;
    if (n > mem->officers_cap) {
        if (n > SIZE_MAX / sizeof *mem->officers)
            return fail(err, errlen, "officers: out of memory");
        const char **p = realloc(mem->officers, n * sizeof *p);
        if (p == NULL)
            return fail(err, errlen, "officers: out of memory");
        mem->officers = p;
        mem->officers_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        const rk__jval *o = &v->elems[i];
        if (o->kind != RK_J_STRING || o->len == 0)
            return fail(err, errlen, "officers[%zu]: expected a non-empty string", i);
        mem->officers[i] = o->str;
    }
    ev->officers = mem->officers;
    ev->n_officers = n;
    return 0;
}

/* `items`: an optional array of anything; only its length is kept. */
static int get_items(const rk__jobj *obj, rk_event *ev, char *err, size_t errlen)
{
    const rk__jval *v = field(obj, "items");
    if (v == NULL)
        return 0;
    if (v->kind != RK_J_ARRAY)
        return fail(err, errlen, "items: expected an array");
    ev->n_items = v->len;
    return 0;
}

/* `score`: a JSON integer (not 4.0, not "4") from 1 to 5. */
static int get_score(const rk__jobj *obj, rk_event *ev, char *err, size_t errlen)
{
    const rk__jval *v = field(obj, "score");
    if (v == NULL)
        return fail(err, errlen, "score: missing");
    if (v->kind != RK_J_INT || v->i < 1 || v->i > 5)
        return fail(err, errlen, "score: expected an integer from 1 to 5");
    ev->score = (int)v->i;
    return 0;
}

/* ===================================================================
 * The contract's table, one function per type
 * =================================================================== */

static const char *const source_names[] = {
    "inspection", "complaint", "report", "transfer", "other", NULL};
static const char *const leniency_names[] = {
    "none", "lighter", "mitigated", "exempt", NULL};
static const char *const outcome_names[] = {
    "upheld", "revoked", "altered", "confirmed_illegal", "mediated", NULL};

static const char *const kind_names[] = {
    "plan", "random", "complaint", "special", "other", NULL};
static const char *const level_names[] = {"minor", "general", "serious", NULL};

#define KIND_EXPECT "\"plan\", \"random\", \"complaint\", \"special\", \"other\""
#define LEVEL_EXPECT "\"minor\", \"general\", \"serious\""
#define SOURCE_EXPECT \
    "\"inspection\", \"complaint\", \"report\", \"transfer\", \"other\""
#define LENIENCY_EXPECT "\"none\", \"lighter\", \"mitigated\", \"exempt\""
#define OUTCOME_EXPECT \
    "\"upheld\", \"revoked\", \"altered\", \"confirmed_illegal\", \"mediated\""

/* Shorthands: each evaluates a reader and returns on failure. */
#define CHECK(call) do { if ((call) != 0) return RK_PARSE_INVALID; } while (0)
#define REQ_ID(f) CHECK(get_id(o, #f, true, &ev->f, err, errlen))
#define OPT_ID(f) CHECK(get_id(o, #f, false, &ev->f, err, errlen))
#define OPT_TEXT(f) CHECK(get_text(o, #f, &ev->f, err, errlen))
#define OFFICERS(req) CHECK(get_officers(o, req, ev, mem, err, errlen))

/* Check the fields of ev->type (already set, as is ev->ts) in o and fill
 * ev. Returns RK_PARSE_OK or RK_PARSE_INVALID with err filled. */
static int parse_fields(const rk__jobj *o, rk_event *ev, rk__event_mem *mem,
                        char *err, size_t errlen)
{
    int e = 0;

    switch (ev->type) {
    case RK_EV_INSPECTION_FILED:
        REQ_ID(task_id);
        REQ_ID(unit_id);
        OFFICERS(true);
        REQ_ID(enterprise_id);
        ev->planned_at = ev->ts;
        CHECK(get_time(o, "planned_at", false, &ev->planned_at, err, errlen));
        OPT_TEXT(basis);
        CHECK(get_items(o, ev, err, errlen));
        OPT_ID(region);
        e = RK_KIND_PLAN;
        CHECK(get_enum(o, "kind", false, kind_names, KIND_EXPECT, &e, err, errlen));
        ev->kind = (rk_inspection_kind)e;
        OPT_ID(joint_id);
        break;
    case RK_EV_INSPECTION_SCANNED:
        REQ_ID(task_id);
        REQ_ID(enterprise_id);
        OPT_ID(unit_id);
        OFFICERS(false);
        OPT_ID(region);
        break;
    case RK_EV_INSPECTION_RATED:
        REQ_ID(task_id);
        REQ_ID(enterprise_id);
        CHECK(get_score(o, ev, err, errlen));
        OPT_ID(unit_id);
        OFFICERS(false);
        OPT_TEXT(comment);
        OPT_ID(region);
        break;
    case RK_EV_INSPECTION_REPORTED:
        REQ_ID(enterprise_id);
        REQ_ID(unit_id);
        OFFICERS(false);
        OPT_TEXT(note);
        OPT_ID(region);
        break;
    case RK_EV_CASE_OPENED:
        REQ_ID(case_id);
        REQ_ID(unit_id);
        CHECK(get_enum(o, "source", true, source_names, SOURCE_EXPECT, &e,
                       err, errlen));
        ev->source = (rk_case_source)e;
        OPT_ID(task_id);
        OPT_ID(enterprise_id);
        OFFICERS(false);
        OPT_ID(region);
        OPT_ID(item_code);
        OPT_ID(domain);
        break;
    case RK_EV_CASE_DECIDED:
        REQ_ID(case_id);
        REQ_ID(unit_id);
        CHECK(get_amount(o, "fine", true, &ev->fine, err, errlen));
        CHECK(get_amount(o, "confiscation", false, &ev->confiscation, err, errlen));
        OPT_TEXT(item_code);
        OPT_ID(enterprise_id);
        CHECK(get_enum(o, "leniency", false, leniency_names, LENIENCY_EXPECT,
                       &e, err, errlen));
        ev->leniency = (rk_leniency)e;
        OPT_ID(region);
        e = 0;
        CHECK(get_enum(o, "level", false, level_names, LEVEL_EXPECT, &e, err, errlen));
        ev->level = (rk_case_level)e;
        OPT_ID(domain);
        break;
    case RK_EV_CASE_COMPLAINT:
        REQ_ID(complaint_id);
        REQ_ID(unit_id);
        OFFICERS(false);
        OPT_ID(enterprise_id);
        OPT_TEXT(category);
        OPT_ID(region);
        break;
    case RK_EV_CASE_REVIEW:
        REQ_ID(case_id);
        REQ_ID(unit_id);
        CHECK(get_enum(o, "outcome", true, outcome_names, OUTCOME_EXPECT, &e,
                       err, errlen));
        ev->outcome = (rk_review_outcome)e;
        OPT_ID(region);
        OPT_ID(domain);
        OPT_ID(issue);
        break;
    case RK_EV_CLOCK_TICK:
        break;
    default:                            /* not reached: caller checks */
        return fail(err, errlen, "type: unknown");
    }
    return RK_PARSE_OK;
}

/* ===================================================================
 * Entry point
 * =================================================================== */

int rk__event_parse(const char *data, size_t len, rk_event *ev,
                    rk__event_mem *mem, char *err, size_t errlen)
{
    json_error_t jerr;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    memset(ev, 0, sizeof *ev);
    mem->root = NULL;                   /* the previous members die here */
    mem->obj.m = NULL;
    mem->obj.n = 0;
    rk__arena_rewind(&mem->arena, false);

    if (rk__jscan(data, len, &mem->arena, &mem->obj) != 0) {
        /* The slow path: jansson decides, and names what is wrong.
         * JSON_DECODE_ANY so "42" is "not an object" rather than "not
         * JSON"; no JSON_ALLOW_NUL, so every string is a proper C string. */
        rk__arena_rewind(&mem->arena, false);
        mem->root = arena_loadb(mem, data != NULL ? data : "", data != NULL ? len : 0,
                                JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (mem->root == NULL)
            return fail(err, errlen, "data: not valid JSON (%s)", jerr.text);
        if (!json_is_object(mem->root))
            return fail(err, errlen, "data: expected a JSON object");
        if (rk__jobj_from_json(mem->root, &mem->arena, &mem->obj) != 0)
            return fail(err, errlen, "data: out of memory");
    }
    const rk__jobj *o = &mem->obj;

    const rk__jval *t = field(o, "type");
    if (t == NULL)
        return fail(err, errlen, "type: missing");
    if (t->kind != RK_J_STRING)
        return fail(err, errlen, "type: expected a string");
    ev->type = rk__event_type_from_name(t->str);
    if (ev->type == RK_EV_UNKNOWN) {
        ev->type_name = t->str;
        return RK_PARSE_UNKNOWN;
    }
    ev->type_name = rk__event_type_name(ev->type);

    if (get_time(o, "ts", true, &ev->ts, err, errlen) != 0)
        return RK_PARSE_INVALID;
    return parse_fields(o, ev, mem, err, errlen);
}

void rk__event_mem_free(rk__event_mem *mem)
{
    if (mem == NULL)
        return;
    rk__arena_rewind(&mem->arena, true);
    free(mem->officers);
    mem->root = NULL;
    mem->obj.m = NULL;
    mem->obj.n = 0;
    mem->officers = NULL;
    mem->officers_cap = 0;
}
