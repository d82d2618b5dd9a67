/* tests/unit/test-rules.c - the table of built-in detectors and rules
 * (daemon/lib/rules.c) that riskctl checks silences against.
 *
 * It must name exactly the detectors the registry builds in
 * (rk__registry_names of an empty configuration), and for each exactly the
 * rules its source raises: the quoted names after `rule = `, `emit(s, ` or
 * `_emit(s, ev, ` in detectors/NAME.c. The subject fields riskctl lets a
 * silence match must be those riskd matches (the fields[] list of
 * daemon/pipeline/silence.c). Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long n;
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc((size_t)n + 1);
    if (s == NULL || fread(s, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(s);
        return NULL;
    }
    s[n] = '\0';
    fclose(f);
    return s;
}

static void test_detectors_are_the_registry(void **state)
{
    char err[RK_ERRLEN], **names;
    json_t *empty = json_object();
    rk__config *cfg;
    size_t n = 0, t = 0;
    (void)state;
    assert_int_equal(rk__config_from_json(empty, &cfg, err, sizeof(err)), 0);
    json_decref(empty);
    if (rk__registry_names(cfg, &names, err, sizeof(err)) != 0)
        fail_msg("rk__registry_names: %s", err);
    for (; names[n] != NULL; n++)
        if (rk__builtin_detector(names[n]) == NULL)
            fail_msg("the registry builds in %s; rules.c does not list it", names[n]);
    while (rk__builtin_rules[t].detector != NULL)
        t++;
    assert_int_equal(n, t);
    rk__registry_names_free(names);
    rk__config_free(cfg);
}

/* Every quoted name right after pat in src, into out (max entries). */
static size_t names_after(const char *src, const char *pat, char out[][64], size_t n,
                          size_t max)
{
    for (const char *p = src; (p = strstr(p, pat)) != NULL && n < max;) {
        const char *q;
        p += strlen(pat);
        if ((q = strchr(p, '"')) == NULL || q - p >= 64)
            continue;
        snprintf(out[n], 64, "%.*s", (int)(q - p), p);
        n++;
    }
    return n;
}

static void test_rules_are_the_sources(void **state)
{
    static const char *const pats[] = {"rule = \"", "emit(s, \"", "_emit(s, ev, \"",
                                       "lc_notice(s, \""};
    const rk__detector_rules *d;
    int bad = 0;
    (void)state;
    for (d = rk__builtin_rules; d->detector != NULL; d++) {
        char path[128], found[64][64];
        char *src;
        size_t n = 0, i, r;
        snprintf(path, sizeof(path), "detectors/%s.c", d->detector);
        if ((src = slurp(path)) == NULL)
            fail_msg("%s not found (run from the repository root)", path);
        for (i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
            n = names_after(src, pats[i], found, n, 64);
        for (i = 0; i < n; i++)
            if (!rk__builtin_rule(d, found[i])) {
                fprintf(stderr, "%s raises rule %s; rules.c does not list it\n", path, found[i]);
                bad++;
            }
        for (r = 0; d->rules[r] != NULL; r++) {
            /* raised where a rule is emitted, or named as a string in a
             * table of the detector's rules */
            char quoted[80];
            int seen = 0;
            for (i = 0; i < n; i++)
                seen |= strcmp(found[i], d->rules[r]) == 0;
            snprintf(quoted, sizeof(quoted), "\"%s\"", d->rules[r]);
            seen |= strstr(src, quoted) != NULL;
            if (!seen) {
                fprintf(stderr, "rules.c lists %s/%s; %s does not raise it\n", d->detector,
                        d->rules[r], path);
                bad++;
            }
        }
        free(src);
    }
    assert_int_equal(bad, 0);
}

static void test_silence_fields(void **state)
{
    char *src = slurp("daemon/pipeline/silence.c"), found[16][64];
    const char *p;
    size_t n = 0, i;
    (void)state;
    if (src == NULL || (p = strstr(src, "fields[N_FIELDS] = {")) == NULL)
        fail_msg("daemon/pipeline/silence.c: no fields[N_FIELDS] list");
    for (p = strchr(p, '{'); *p && *p != '}' && n < 16; p++)
        if (*p == '"') {
            const char *q = strchr(p + 1, '"');
            snprintf(found[n++], 64, "%.*s", (int)(q - p - 1), p + 1);
            p = q;
        }
    free(src);
    for (i = 0; rk__silence_fields[i] != NULL; i++) {
        assert_true(i < n);
        assert_string_equal(rk__silence_fields[i], found[i]);
    }
    assert_int_equal(i, n);
}

static void test_known_words(void **state)
{
    static const char *const w[] = {"a", "bb", "ccc", NULL};
    char buf[8];
    (void)state;
    rk__known_words(buf, sizeof(buf), w);
    assert_string_equal(buf, "a, bb, ");   /* cut to fit, NUL kept */
    assert_non_null(rk__builtin_detector("bad_rating"));
    assert_null(rk__builtin_detector("bad_ratings"));
    assert_true(rk__builtin_rule(rk__builtin_detector("bad_rating"), "unit_ratio"));
    assert_false(rk__builtin_rule(rk__builtin_detector("bad_rating"), "growth"));
    assert_string_equal(rk__silence_fields[0], "unit_id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detectors_are_the_registry),
        cmocka_unit_test(test_rules_are_the_sources),
        cmocka_unit_test(test_silence_fields),
        cmocka_unit_test(test_known_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
