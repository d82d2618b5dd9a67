/* tests/fuzz/fuzz-csv.c - libFuzzer target for the reference lists' CSV
 * parser (daemon/lib/lists.c).
 *
 * The first byte of an input picks the kind (modulo the number of kinds);
 * the rest is the file's bytes. Besides "no crash, no leak, no undefined
 * behaviour", the parser must keep its promises:
 *   - a refusal has a message, one printable line starting "line N" (or
 *     naming a limit or memory);
 *   - an accepted list has every value valid UTF-8 and ids without control
 *     characters, and survives the stored form: every row turned into its
 *     JSON and back gives a list of as many rows, each row found again by
 *     its key through the lookups. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what)
{
    fprintf(stderr, "fuzz-csv: broken invariant: %s\n", what);
    abort();
}

/* A refusal: a non-empty single line, no control characters. */
static void check_err(const char *err)
{
    if (err[0] == '\0')
        broken("refused without a message");
    for (const unsigned char *p = (const unsigned char *)err; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            broken("a control character in the message");
    if (strncmp(err, "line ", 5) != 0 && strcmp(err, "out of memory") != 0 &&
        strstr(err, "64 MiB") == NULL)
        broken("a message that names no line");
}

/* The accepted list l of kind: the stored form and the lookups. */
static void check_list(rk__list_kind kind, const rk__list *l)
{
    size_t n = rk__lists_count(l), i;
    char **vals = calloc(n + 1, sizeof(*vals)), err[RK_ERRLEN];
    size_t *lens = calloc(n + 1, sizeof(*lens));
    rk__list *back = NULL;

    if (vals == NULL || lens == NULL)
        abort();
    for (i = 0; i < n; i++) {
        if ((vals[i] = rk__lists_row_json(l, i)) == NULL)
            broken("a row without JSON");
        lens[i] = strlen(vals[i]);
        for (size_t c = 0; c < rk__lists_ncols(kind); c++)
            if (rk__lists_value(l, i, c) == NULL)
                broken("a row without a value");
    }
    if (rk__lists_from_json(kind, (const char *const *)vals, lens, n, &back, err,
                            sizeof(err)) != 0) {
        fprintf(stderr, "fuzz-csv: %s\n", err);
        broken("the stored form of an accepted list is refused");
    }
    if (rk__lists_count(back) != n)
        broken("the stored form lost rows");
    for (i = 0; i < n; i++) {
        const char *a = rk__lists_value(l, i, 0), *b = rk__lists_value(l, i, 1);
        long long al;
        double lo, hi;
        switch (kind) {
        case RK_LIST_WHITELIST:
            if (!rk__lists_allowance(back, a, &al))
                broken("whitelist row not found");
            break;
        case RK_LIST_BENCHMARKS:
            if (!rk__lists_benchmark(back, a, b, &lo, &hi) || lo > hi)
                broken("benchmark row not found");
            break;
        case RK_LIST_EXEMPT:
            if (rk__lists_exempt(back, a) == RK_EXEMPT_NONE)
                broken("exempt row not found");
            break;
        case RK_LIST_CREDENTIALS:
            (void)rk__lists_credential_valid(back, a, 20000);
            break;
        case RK_LIST_NAMES:
            if (rk__lists_name(back, a, b) == NULL)
                broken("name row not found");
            break;
        default:
            break;
        }
    }
    for (i = 0; i < n; i++)
        free(vals[i]);
    free(vals);
    free(lens);
    rk__lists_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[RK_ERRLEN];
    rk__list *l = NULL;
    rk__list_kind kind;

    if (size == 0)
        return 0;
    kind = (rk__list_kind)(data[0] % RK_LIST__COUNT);
    err[0] = '\0';
    if (rk__lists_parse_csv(kind, data + 1, size - 1, &l, err, sizeof(err)) != 0) {
        if (l != NULL)
            broken("refused with a list");
        check_err(err);
        return 0;
    }
    if (l == NULL)
        broken("accepted without a list");
    check_list(kind, l);
    rk__lists_free(l);
    return 0;
}
