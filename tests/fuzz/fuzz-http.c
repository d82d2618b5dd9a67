/* tests/fuzz/fuzz-http.c - libFuzzer target for the HTTP request reader
 * (daemon/lib/httpreq.c) that riskd's metrics endpoint and riskweb share.
 *
 * The first byte of an input sets the size of the pieces the rest is fed
 * in (1..256 bytes), as a slow or hostile client would send them. Besides
 * "no crash, no leak, no undefined behaviour", the reader keeps its
 * promises: it answers only 0, 1 or one of its refusal statuses; a
 * complete request has a path that starts with '/' or '*' or is a full
 * URL, within RK_HTTPREQ_URL_MAX; kept headers stay within
 * RK_HTTPREQ_VALUE_MAX; and it never reads past RK_HTTPREQ_MAX bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what)
{
    fprintf(stderr, "fuzz-http: broken invariant: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const want[] = {"Authorization", "Cookie", "Last-Event-ID"};
    rk__httpreq *r;
    size_t step, i;
    int rc = 0;

    if (size < 1)
        return 0;
    step = (size_t)data[0] + 1;
    data++;
    size--;
    r = malloc(sizeof(*r));
    if (r == NULL)
        return 0;
    rk__httpreq_init(r, want, 3);
    for (i = 0; i < size && rc == 0; i += step)
        rc = rk__httpreq_feed(r, (const char *)data + i, size - i < step ? size - i : step);
    if (rc != 0 && rc != 1 && rc != 400 && rc != 414 && rc != 431)
        broken("an unexpected answer");
    if (r->received > RK_HTTPREQ_MAX)
        broken("read past the head's bound");
    if (rc == 1) {
        const char *q = NULL, *p = rk__httpreq_path(r, &q);
        if (strlen(p) > RK_HTTPREQ_URL_MAX)
            broken("a path past the URL bound");
        for (i = 0; i < 3; i++) {
            const char *v = rk__httpreq_header(r, i);
            if (v != NULL && strlen(v) > RK_HTTPREQ_VALUE_MAX)
                broken("a header value past its bound");
        }
        if (q != NULL && (q < r->url || q > r->url + RK_HTTPREQ_URL_MAX))
            broken("a query outside the URL");
    }
    free(r);
    return 0;
}
