/* tests/unit/test-httpreq.c - httpreq.c: requests read in pieces, the
 * bounds, the kept headers and the refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const want[] = {"Authorization", "Last-Event-ID"};

static int feed_all(rk__httpreq *r, const char *s, size_t step)
{
    size_t n = strlen(s), i;
    int rc = 0;
    for (i = 0; i < n && rc == 0; i += step)
        rc = rk__httpreq_feed(r, s + i, n - i < step ? n - i : step);
    return rc;
}

static void test_whole_and_in_pieces(void **st)
{
    static const char req[] = "GET /api/events?x=1 HTTP/1.1\r\nHost: a\r\n"
                              "last-event-id: 1700000000000-3\r\n"
                              "Authorization: Bearer s3cret\r\n\r\n";
    size_t step;
    (void)st;
    for (step = 1; step <= sizeof(req); step++) {
        rk__httpreq r;
        const char *q = NULL;
        rk__httpreq_init(&r, want, 2);
        assert_int_equal(feed_all(&r, req, step), 1);
        assert_string_equal(rk__httpreq_path(&r, &q), "/api/events");
        assert_string_equal(q, "x=1");
        assert_int_equal(rk__httpreq_method(&r), HTTP_GET);
        assert_string_equal(rk__httpreq_header(&r, 0), "Bearer s3cret");
        assert_string_equal(rk__httpreq_header(&r, 1), "1700000000000-3");
    }
}

static void test_header_absent_and_more_than_one_request(void **st)
{
    rk__httpreq r;
    (void)st;
    rk__httpreq_init(&r, want, 2);
    assert_int_equal(feed_all(&r, "HEAD /healthz HTTP/1.0\r\n\r\nGET /other HTTP/1.0\r\n\r\n", 64),
                     1);
    assert_string_equal(rk__httpreq_path(&r, NULL), "/healthz");
    assert_int_equal(rk__httpreq_method(&r), HTTP_HEAD);
    assert_null(rk__httpreq_header(&r, 0));
    assert_null(rk__httpreq_header(&r, 5));
}

static void test_refusals(void **st)
{
    rk__httpreq r;
    char big[RK_HTTPREQ_MAX + 64], line[64];
    size_t i;
    (void)st;
    rk__httpreq_init(&r, want, 2);
    assert_int_equal(feed_all(&r, "garbage\r\n\r\n", 4), 400);
    /* a body is read and dropped: the caller sees the POST (and says 405) */
    rk__httpreq_init(&r, want, 2);
    assert_int_equal(feed_all(&r, "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 8), 1);
    assert_int_equal(rk__httpreq_method(&r), HTTP_POST);
    rk__httpreq_init(&r, want, 2);
    assert_int_equal(feed_all(&r, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "3\r\nabc\r\n0\r\n\r\n", 8), 1);
    /* a URL longer than RK_HTTPREQ_URL_MAX */
    rk__httpreq_init(&r, want, 2);
    snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\n\r\n", RK_HTTPREQ_URL_MAX, 0);
    assert_int_equal(feed_all(&r, big, 100), 414);
    /* too many header lines */
    rk__httpreq_init(&r, want, 2);
    assert_int_equal(feed_all(&r, "GET / HTTP/1.1\r\n", 100), 0);
    for (i = 0; i < RK_HTTPREQ_HEADERS_MAX; i++) {
        snprintf(line, sizeof(line), "X-%zu: y\r\n", i);
        assert_int_equal(rk__httpreq_feed(&r, line, strlen(line)), 0);
    }
    assert_int_equal(feed_all(&r, "X-last: y\r\n\r\n", 100), 431);
    /* a kept header longer than RK_HTTPREQ_VALUE_MAX */
    rk__httpreq_init(&r, want, 2);
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nAuthorization: %0*d\r\n\r\n",
             RK_HTTPREQ_VALUE_MAX + 1, 0);
    assert_int_equal(feed_all(&r, big, 300), 431);
    assert_null(rk__httpreq_header(&r, 0));
    /* a head longer than RK_HTTPREQ_MAX */
    rk__httpreq_init(&r, want, 2);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(feed_all(&r, big, 1000), 431);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_and_in_pieces),
        cmocka_unit_test(test_header_absent_and_more_than_one_request),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
