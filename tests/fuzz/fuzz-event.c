/* tests/fuzz/fuzz-event.c - libFuzzer target for the event parser.
 *
 * Each input is one stream entry's `data` bytes (not NUL-terminated, so
 * AddressSanitizer catches a read past the end) handed to rk__event_parse()
 * with one rk__event_mem reused across inputs, as the reader does. Besides
 * "no crash, no leak, no undefined behaviour", the result must keep the
 * parser's promises: RK_PARSE_OK gives a known type with its name, a ts in
 * the range an RFC 3339 time or epoch milliseconds can give, and every
 * field the contract requires for the type (non-empty strings, at least one
 * officer for a filing, a score from 1 to 5, amounts >= 0, a source or
 * outcome); RK_PARSE_UNKNOWN gives the unknown type's name; and
 * RK_PARSE_INVALID gives a non-empty reason on one printable line. And the
 * parser's fast path (rk__jscan) must agree with jansson: what it accepts,
 * json_loadb accepts with the same members and values (jscan_diff.h). A
 * broken promise aborts, which libFuzzer reports as a crash. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "jscan_diff.h"

/* The ts range: 0000-01-01T00:00:00+23:59 to 9999-12-31T23:59:60.999-23:59
 * (epoch milliseconds are a subset). */
#define TS_MIN (INT64_C(-62167219200000) - INT64_C(86340000))
#define TS_MAX (INT64_C(253402300799999) + INT64_C(86340000))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message naming the broken promise `what`. */
static void broken(const char *what)
{
    fprintf(stderr, "fuzz-event: broken invariant: %s\n", what);
    abort();
}

/* A required identifier: present and non-empty (strlen reads it whole). */
static void need_id(const char *s, const char *what)
{
    if (s == NULL || strlen(s) == 0)
        broken(what);
}

/* An optional string: NULL, or readable to its NUL. */
static void opt_str(const char *s)
{
    if (s != NULL)
        (void)strlen(s);
}

/* The natural key and value digest of an accepted event (dedupe.c): every
 * type but clock.tick has one, it reads every field (ASan), and it is a
 * function of the event: computed again, and on a copy whose strings live
 * elsewhere, it is the same. The key ignores the values outside it: a copy
 * with every optional string dropped keeps the key of the types whose key
 * has none of them. */
static void check_dedupe(const rk_event *ev)
{
    uint64_t k1, k2;
    uint32_t d1, d2;
    rk_event copy = *ev;
    int rc = rk__dedupe_event(ev, &k1, &d1);
    if ((rc == 0) != (ev->type != RK_EV_CLOCK_TICK))
        broken("dedupe: a type without a key, or a tick with one");
    if (rc != 0)
        return;
    if (rk__dedupe_event(&copy, &k2, &d2) != 0 || k1 != k2 || d1 != d2)
        broken("dedupe: key or digest not a function of the event");
    copy.region = NULL;
    copy.basis = copy.comment = copy.note = copy.category = NULL;
    if (rk__dedupe_event(&copy, &k2, &d2) != 0 || k1 != k2)
        broken("dedupe: an optional field changed the natural key");
    if (ev->type == RK_EV_INSPECTION_FILED &&
        rk__dedupe_filing_key(ev->task_id) != k1)
        broken("dedupe: the filing key of a filing is not its key");
}

/* Check an event rk__event_parse() accepted. */
static void check_ok(const rk_event *ev)
{
    size_t i;

    if ((int)ev->type <= (int)RK_EV_UNKNOWN || (int)ev->type >= (int)RK_EV__COUNT)
        broken("OK with an unknown type");
    if (ev->type_name == NULL || strcmp(ev->type_name, rk__event_type_name(ev->type)) != 0)
        broken("OK without the type's name");
    if (ev->ts < TS_MIN || ev->ts > TS_MAX)
        broken("OK with ts outside the representable range");
    if (ev->n_officers > 0 && ev->officers == NULL)
        broken("officers NULL with n_officers > 0");
    for (i = 0; i < ev->n_officers; i++)
        need_id(ev->officers[i], "officers[i] empty");
    opt_str(ev->task_id); opt_str(ev->unit_id); opt_str(ev->enterprise_id);
    opt_str(ev->case_id); opt_str(ev->complaint_id); opt_str(ev->region);
    opt_str(ev->basis); opt_str(ev->comment); opt_str(ev->note);
    opt_str(ev->category); opt_str(ev->item_code);

    switch (ev->type) {
    case RK_EV_INSPECTION_FILED:
        need_id(ev->task_id, "filed: task_id");
        need_id(ev->unit_id, "filed: unit_id");
        need_id(ev->enterprise_id, "filed: enterprise_id");
        if (ev->n_officers < 1)
            broken("filed: no officers");
        if (ev->planned_at < TS_MIN || ev->planned_at > TS_MAX)
            broken("filed: planned_at out of range");
        break;
    case RK_EV_INSPECTION_SCANNED:
        need_id(ev->task_id, "scanned: task_id");
        need_id(ev->enterprise_id, "scanned: enterprise_id");
        break;
    case RK_EV_INSPECTION_RATED:
        need_id(ev->task_id, "rated: task_id");
        need_id(ev->enterprise_id, "rated: enterprise_id");
        if (ev->score < 1 || ev->score > 5)
            broken("rated: score out of 1..5");
        break;
    case RK_EV_INSPECTION_REPORTED:
        need_id(ev->enterprise_id, "reported: enterprise_id");
        need_id(ev->unit_id, "reported: unit_id");
        break;
    case RK_EV_CASE_OPENED:
        need_id(ev->case_id, "opened: case_id");
        need_id(ev->unit_id, "opened: unit_id");
        if (ev->source < RK_SOURCE_INSPECTION || ev->source > RK_SOURCE_OTHER)
            broken("opened: source");
        break;
    case RK_EV_CASE_DECIDED:
        need_id(ev->case_id, "decided: case_id");
        need_id(ev->unit_id, "decided: unit_id");
        if (!isfinite(ev->fine) || ev->fine < 0 || signbit(ev->fine))
            broken("decided: fine");
        if (!isfinite(ev->confiscation) || ev->confiscation < 0 ||
            signbit(ev->confiscation))
            broken("decided: confiscation");
        if ((int)ev->leniency < RK_LENIENCY_UNSET || ev->leniency > RK_LENIENCY_EXEMPT)
            broken("decided: leniency");
        break;
    case RK_EV_CASE_COMPLAINT:
        need_id(ev->complaint_id, "complaint: complaint_id");
        need_id(ev->unit_id, "complaint: unit_id");
        break;
    case RK_EV_CASE_REVIEW:
        need_id(ev->case_id, "review: case_id");
        need_id(ev->unit_id, "review: unit_id");
        if (ev->outcome < RK_OUTCOME_UPHELD || ev->outcome > RK_OUTCOME_MEDIATED)
            broken("review: outcome");
        break;
    default:
        break;
    }
}

/* Check the reason of an RK_PARSE_INVALID: non-empty, one printable line. */
static void check_invalid(const char *err, size_t errlen)
{
    size_t n = strnlen(err, errlen);
    if (n == 0)
        broken("INVALID without a reason");
    if (n == errlen)
        broken("reason not terminated");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] >= 0x7f)
            broken("reason is not one printable line");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rk__event_mem mem;           /* reused, as by the reader */
    char err[RK_ERRLEN];
    rk_event ev;
    int rc;

    if (jscan_diff((const char *)data, size) < 0)
        broken("rk__jscan accepted what jansson reads differently");
    memset(err, 'x', sizeof(err));
    rc = rk__event_parse((const char *)data, size, &ev, &mem, err, sizeof(err));
    switch (rc) {
    case RK_PARSE_OK:
        check_ok(&ev);
        check_dedupe(&ev);
        break;
    case RK_PARSE_UNKNOWN:
        if (ev.type != RK_EV_UNKNOWN || ev.type_name == NULL)
            broken("UNKNOWN without the type's name");
        if (rk__event_type_from_name(ev.type_name) != RK_EV_UNKNOWN)
            broken("UNKNOWN for a known type");
        break;
    case RK_PARSE_INVALID:
        check_invalid(err, sizeof(err));
        break;
    default:
        broken("unexpected return value");
    }
    /* A short err buffer must be filled and terminated too. */
    if (rc == RK_PARSE_INVALID) {
        char small[8];
        memset(small, 'x', sizeof(small));
        if (rk__event_parse((const char *)data, size, &ev, &mem, small,
                            sizeof(small)) != RK_PARSE_INVALID)
            broken("result depends on the err buffer");
        check_invalid(small, sizeof(small));
    }
    return 0;
}
