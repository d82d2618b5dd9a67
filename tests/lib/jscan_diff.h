/* tests/lib/jscan_diff.h - rk__jscan() against jansson, for tests/unit/test-jscan.c
 * and tests/fuzz/fuzz-event.c (header-only: the fuzzer links no test
 * library).
 *
 * jscan_diff(data, len) runs rk__jscan() on the bytes and, when it accepts
 * them, json_loadb() as event.c's slow path calls it, and checks that
 * jansson accepts too, with the same members: same count, each key found,
 * same kind and value (strings byte for byte, reals bit for bit, arrays
 * element by element). Returns 1 when rk__jscan accepted, 0 when it passed
 * the input on, and -1 with a message on stderr when the two disagree. */
#ifndef RISKD_TESTS_JSCAN_DIFF_H
#define RISKD_TESTS_JSCAN_DIFF_H

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

/* Compare a value rk__jscan produced with jansson's (depth 0: a member's
 * value, whose array elements are compared; 1: an element, of which
 * rk__jscan keeps only the kind when it is an array or object). */
static int jscan_diff_val(const rk__jval *v, json_t *j, int depth)
{
    rk__jval w;

    rk__jval_from_json(j, &w);
    if (v->kind != w.kind)
        return -1;
    switch (v->kind) {
    case RK_J_STRING:
        if (v->len != w.len || memcmp(v->str, w.str, v->len) != 0 ||
            v->str[v->len] != '\0')
            return -1;
        break;
    case RK_J_INT:
        if (v->i != w.i)
            return -1;
        break;
    case RK_J_REAL:
        if (memcmp(&v->d, &w.d, sizeof v->d) != 0)
            return -1;
        break;
    case RK_J_ARRAY:                    /* an element's array: only its kind */
        if (depth == 0 && v->len != w.len)
            return -1;
        if (depth == 0)
            for (size_t i = 0; i < v->len; i++)
                if (jscan_diff_val(&v->elems[i], json_array_get(j, i), 1) != 0)
                    return -1;
        break;
    default:
        break;
    }
    return 0;
}

static int jscan_diff(const char *data, size_t len)
{
    rk__arena arena = {0};
    rk__jobj o;
    int rc = rk__jscan(data, len, &arena, &o), ret = 1;

    if (rc != 0) {
        rk__arena_rewind(&arena, true);
        return 0;
    }
    json_error_t jerr;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (j == NULL) {
        fprintf(stderr, "jscan accepted what jansson rejects: %s\n", jerr.text);
        ret = -1;
    } else if (!json_is_object(j) || json_object_size(j) != o.n) {
        fprintf(stderr, "jscan: %zu members, jansson: %s of %zu\n", o.n,
                json_is_object(j) ? "an object" : "not an object",
                json_is_object(j) ? json_object_size(j) : (size_t)0);
        ret = -1;
    } else {
        for (size_t i = 0; i < o.n && ret == 1; i++) {
            json_t *v = json_object_getn(j, o.m[i].key, o.m[i].keylen);
            if (v == NULL || jscan_diff_val(&o.m[i].v, v, 0) != 0) {
                fprintf(stderr, "jscan and jansson differ at member \"%.*s\"\n",
                        (int)o.m[i].keylen, o.m[i].key);
                ret = -1;
            }
        }
    }
    json_decref(j);
    rk__arena_rewind(&arena, true);
    return ret;
}

#endif
