/* daemon/lib/rules.c - the names operators type: the built-in detectors
 * with the rules each raises, and the subject fields a silence can match.
 *
 * One table, so that riskctl refuses a silence for a detector or rule that
 * does not exist (a typo would silence nothing, quietly) and says which
 * names it knows. tests/unit/test-rules.c holds the table to the truth: the
 * detectors the registry builds in, and the rule names each detector's
 * source raises. Plugins' detectors are not here (the plugin ABI does not
 * declare rules): riskctl learns their names from the configuration's
 * plugins and takes any well-formed rule name for them. */
#include <stdio.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

const rk__detector_rules rk__builtin_rules[] = {
    {"unfiled_inspection", {"scan_without_filing", "reported_without_filing",
                            "case_without_filing", "enterprise_mismatch",
                            "filed_not_scanned", NULL}},
    {"bad_rating", {"bad_rating", "officer_repeated", "unit_ratio", NULL}},
    {"fine_growth", {"growth", NULL}},
    {"complaint_cluster", {"cluster", NULL}},
    {"inspection_frequency", {"repeat", "whitelist", "multi_unit", NULL}},
    {"discretion", {"out_of_benchmark", "disparity", "exempt_fined", NULL}},
    {"review_correction", {"corrections", NULL}},
    {"violation_hotspot", {"hotspot", NULL}},
    {"officer_credential", {"uncertified", NULL}},
    {NULL, {NULL}}
};

/* What daemon/pipeline/silence.c matches on. */
const char *const rk__silence_fields[] = {
    "unit_id", "officer_id", "enterprise_id", "task_id", "case_id", "region", NULL
};

const rk__detector_rules *rk__builtin_detector(const char *name)
{
    const rk__detector_rules *d;
    for (d = rk__builtin_rules; d->detector != NULL; d++)
        if (strcmp(d->detector, name) == 0)
            return d;
    return NULL;
}

int rk__builtin_rule(const rk__detector_rules *d, const char *rule)
{
    for (size_t i = 0; d->rules[i] != NULL; i++)
        if (strcmp(d->rules[i], rule) == 0)
            return 1;
    return 0;
}

/* Append ", "-separated names to buf (len bytes), keeping a NUL. */
static void append_names(char *buf, size_t len, const char *const *names, size_t n)
{
    size_t used = strlen(buf);
    for (size_t i = 0; i < n && names[i] != NULL && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w < len - used ? (size_t)w : len - used - 1;
    }
}

void rk__known_words(char *buf, size_t len, const char *const *names)
{
    size_t n = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    while (names[n] != NULL)
        n++;
    append_names(buf, len, names, n);
}
