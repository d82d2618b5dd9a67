/* tests/unit/test-lists.c - the reference lists' CSV parser, stored form
 * and lookups (daemon/lib/lists.c). Each error is checked as the exact
 * message an operator reads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Parse text as kind; assert it is accepted; return the list. */
static rk__list *ok(rk__list_kind kind, const char *text)
{
    char err[RK_ERRLEN] = "";
    rk__list *l = NULL;
    int rc = rk__lists_parse_csv(kind, text, strlen(text), &l, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "refused: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(l);
    return l;
}

/* Parse len bytes as kind; assert the refusal reads exactly `want`. */
static void refused_n(rk__list_kind kind, const char *text, size_t len, const char *want)
{
    char err[RK_ERRLEN] = "";
    rk__list *l = (rk__list *)1;
    assert_int_equal(rk__lists_parse_csv(kind, text, len, &l, err, sizeof(err)), -1);
    assert_null(l);
    assert_string_equal(err, want);
}

static void refused(rk__list_kind kind, const char *text, const char *want)
{
    refused_n(kind, text, strlen(text), want);
}

/* ===================================================================
 * Accepted files
 * =================================================================== */

static void test_whitelist_basic(void **state)
{
    rk__list *l = ok(RK_LIST_WHITELIST,
                     "enterprise_id,allowance,note\nE1,3,\"重点企业, 每年三次\"\nE2,0,\n");
    long long a = -1;
    (void)state;
    assert_int_equal(rk__lists_count(l), 2);
    assert_true(rk__lists_allowance(l, "E1", &a));
    assert_int_equal(a, 3);
    assert_true(rk__lists_allowance(l, "E2", &a));
    assert_int_equal(a, 0);
    assert_false(rk__lists_allowance(l, "E3", &a));
    assert_string_equal(rk__lists_value(l, 0, 2), "重点企业, 每年三次");
    assert_int_equal(rk__lists_line(l, 1), 3);
    rk__lists_free(l);
}

static void test_bom_crlf_any_order(void **state)
{
    /* BOM, CRLF, the columns in another order, spaces around unquoted
     * fields, a trailing row without a line end */
    rk__list *l = ok(RK_LIST_BENCHMARKS,
                     "\xef\xbb\xbfmax_fine, item_code ,level,min_fine\r\n"
                     "5000,A01,,500\r\n"
                     " 20000.50 ,A01,严重,5000\r\n"
                     "100,B02,1,0");
    double lo, hi;
    (void)state;
    assert_int_equal(rk__lists_count(l), 3);
    assert_true(rk__lists_benchmark(l, "A01", "严重", &lo, &hi));
    assert_true(lo == 5000 && hi == 20000.5);
    assert_true(rk__lists_benchmark(l, "A01", "轻微", &lo, &hi));   /* the any-level row */
    assert_true(lo == 500 && hi == 5000);
    assert_true(rk__lists_benchmark(l, "A01", NULL, &lo, &hi));
    assert_true(lo == 500 && hi == 5000);
    assert_false(rk__lists_benchmark(l, "B02", "2", &lo, &hi));     /* no any-level row */
    assert_true(rk__lists_benchmark(l, "B02", "1", &lo, &hi));
    assert_true(lo == 0 && hi == 100);
    rk__lists_free(l);
}

static void test_quoting(void **state)
{
    /* Embedded commas, newlines (LF and CRLF) and doubled quotes; a long
     * Chinese name with quotes in it. */
    const char *long_name = "宁夏回族自治区银川市兴庆区“诚信”农产品批发市场经营管理有限责任公司"
                            "第三分公司（原\"老字号\"门店）";
    char text[2048];
    rk__list *l;
    (void)state;
    snprintf(text, sizeof(text),
             "kind,id,name\n"
             "unit,U1,\"市场监管局, 兴庆分局\"\n"
             "officer,O7,\"王\n某\"\n"
             "enterprise,E1,\"宁夏回族自治区银川市兴庆区“诚信”农产品批发市场经营管理有限责任公司"
             "第三分公司（原\"\"老字号\"\"门店）\"\r\n"
             "region,R1,\"多行\r\n名称\"\r\n"
             "item,I9,\"\"\"引号\"\"\"\n");
    l = ok(RK_LIST_NAMES, text);
    assert_int_equal(rk__lists_count(l), 5);
    assert_string_equal(rk__lists_name(l, "unit", "U1"), "市场监管局, 兴庆分局");
    assert_string_equal(rk__lists_name(l, "officer", "O7"), "王\n某");
    assert_string_equal(rk__lists_name(l, "enterprise", "E1"), long_name);
    assert_string_equal(rk__lists_name(l, "region", "R1"), "多行\r\n名称");
    assert_string_equal(rk__lists_name(l, "item", "I9"), "\"引号\"");
    assert_null(rk__lists_name(l, "unit", "O7"));
    assert_null(rk__lists_name(l, "officer", "U1"));
    /* A record spanning lines: the next one is numbered by its own line. */
    assert_int_equal(rk__lists_line(l, 1), 3);
    assert_int_equal(rk__lists_line(l, 2), 5);
    assert_int_equal(rk__lists_line(l, 3), 6);
    assert_int_equal(rk__lists_line(l, 4), 8);
    rk__lists_free(l);
}

static void test_header_only_and_blank_rows(void **state)
{
    rk__list *l = ok(RK_LIST_EXEMPT, "item_code,kind\n");
    (void)state;
    assert_int_equal(rk__lists_count(l), 0);
    assert_int_equal(rk__lists_exempt(l, "A"), RK_EXEMPT_NONE);
    rk__lists_free(l);
    /* Blank lines and a spreadsheet's empty rows (",,") are skipped, and
     * line numbers still count them. */
    l = ok(RK_LIST_EXEMPT, "\nitem_code,kind\n\nA,no_penalty\n,\n\nB,lighter\n");
    assert_int_equal(rk__lists_count(l), 2);
    assert_int_equal(rk__lists_exempt(l, "A"), RK_EXEMPT_NO_PENALTY);
    assert_int_equal(rk__lists_exempt(l, "B"), RK_EXEMPT_LIGHTER);
    assert_int_equal(rk__lists_line(l, 1), 7);
    rk__lists_free(l);
}

static void test_unnamed_columns(void **state)
{
    /* A spreadsheet's export with an empty column in the middle, empty
     * columns after the last one and rows longer than the header: the
     * columns without a name are ignored while their fields are empty. */
    rk__list *l = ok(RK_LIST_EXEMPT, "item_code,,kind,,\nA,,lighter,,\nB,,no_penalty,,,,\n");
    (void)state;
    assert_int_equal(rk__lists_count(l), 2);
    assert_int_equal(rk__lists_exempt(l, "B"), RK_EXEMPT_NO_PENALTY);
    rk__lists_free(l);
    refused(RK_LIST_EXEMPT, "item_code,,kind\nA,x,lighter\n",
            "line 2, column 2: a value under a column the header does not name");
    refused(RK_LIST_EXEMPT, "item_code,kind,,\nA,lighter,,,y\n",
            "line 2, column 5: more fields than the header's 4");
}

static void test_credentials(void **state)
{
    rk__list *l = ok(RK_LIST_CREDENTIALS,
                     "officer_id,unit_id,valid_from,valid_until\n"
                     "O1,U1,2024-01-01,2024-12-31\n"
                     "O1,U1,2025-03-01,\n"
                     "O2,U1,2024-02-29,2024-02-29\n");
    int32_t d;
    (void)state;
    d = rk__lists_day(INT64_C(1704067200000), 0);       /* 2024-01-01T00:00Z */
    assert_true(rk__lists_credential_valid(l, "O1", d));
    assert_true(rk__lists_credential_valid(l, "O1", d + 365));     /* 2024-12-31 */
    assert_false(rk__lists_credential_valid(l, "O1", d + 366));    /* 2025-01-01: gap */
    assert_false(rk__lists_credential_valid(l, "O1", d - 1));
    assert_true(rk__lists_credential_valid(l, "O1", d + 425));     /* 2025-03-01 */
    assert_true(rk__lists_credential_valid(l, "O1", d + 100000));  /* no expiry */
    assert_true(rk__lists_credential_valid(l, "O2", d + 59));      /* 2024-02-29 */
    assert_false(rk__lists_credential_valid(l, "O2", d + 60));
    assert_false(rk__lists_credential_valid(l, "O3", d));
    assert_false(rk__lists_credential_valid(NULL, "O1", d));
    /* 2023-12-31T20:00Z is 2024-01-01 in UTC+8 */
    assert_int_equal(rk__lists_day(INT64_C(1704052800000), 8 * 3600), d);
    assert_int_equal(rk__lists_day(INT64_C(1704052800000), 0), d - 1);
    assert_int_equal(rk__lists_day(-1, 0), -1);
    rk__lists_free(l);
}

/* ===================================================================
 * Refused files: the exact messages
 * =================================================================== */

static void test_empty_file(void **state)
{
    (void)state;
    refused_n(RK_LIST_WHITELIST, "", 0, "line 1: the file is empty (a list needs its header "
              "row; a header alone loads an empty list)");
    refused(RK_LIST_WHITELIST, "\xef\xbb\xbf\r\n\n", "line 1: the file is empty (a list needs "
            "its header row; a header alone loads an empty list)");
}

static void test_header_errors(void **state)
{
    (void)state;
    refused(RK_LIST_BENCHMARKS, "item_code,level,min_fine\nA,,1\n",
            "line 1, column max_fine: missing from the header (benchmarks needs every one of "
            "item_code, level, min_fine, max_fine)");
    refused(RK_LIST_WHITELIST, "enterprise_id,allowance,note,owner\n",
            "line 1, column owner: not a column of whitelist (it takes enterprise_id, "
            "allowance, note)");
    refused(RK_LIST_EXEMPT, "item_code,kind,kind\n",
            "line 1, column kind: named twice in the header");
    refused(RK_LIST_EXEMPT, "item_code,\xff\n",
            "line 1, column 2: expected a column name (exempt takes item_code, kind)");
}

static void test_value_errors(void **state)
{
    (void)state;
    refused(RK_LIST_BENCHMARKS,
            "item_code,level,min_fine,max_fine\n"
            "A,,0,1\nB,,0,1\nC,,0,1\nD,,0,1\nE,,0,1\nF,,0,1\nG,,0,1\n"
            "H,,0,1\nI,,0,1\nJ,,0,1\nK,,0,1\nL,,0,1\n"
            "M,,0,-5\n",
            "line 14, column max_fine: expected a number >= 0");
    refused(RK_LIST_BENCHMARKS, "item_code,level,min_fine,max_fine\nA,,\"1,500\",2000\n",
            "line 2, column min_fine: expected a number >= 0");
    refused(RK_LIST_BENCHMARKS, "item_code,level,min_fine,max_fine\nA,,1.505,2000\n",
            "line 2, column min_fine: expected a number >= 0 with at most two decimals");
    refused(RK_LIST_BENCHMARKS, "item_code,level,min_fine,max_fine\nA,,500,200\n",
            "line 2, column max_fine: expected a number >= min_fine (500)");
    refused(RK_LIST_WHITELIST, "enterprise_id,allowance,note\nE1,2.5,\n",
            "line 2, column allowance: expected an integer >= 0");
    refused(RK_LIST_WHITELIST, "enterprise_id,allowance,note\nE1,,x\n",
            "line 2, column allowance: expected an integer >= 0 (it is empty)");
    refused(RK_LIST_WHITELIST, "note,allowance,enterprise_id\nx,1,\n",
            "line 2, column enterprise_id: expected an id (it is empty)");
    refused(RK_LIST_EXEMPT, "item_code,kind\nA,none\n",
            "line 2, column kind: expected no_penalty or lighter");
    refused(RK_LIST_NAMES, "kind,id,name\nperson,P1,张三\n",
            "line 2, column kind: expected unit, officer, enterprise, region, item or domain");
    refused(RK_LIST_NAMES, "kind,id,name\nunit,U1,\n",
            "line 2, column name: expected a name (it is empty)");
    refused(RK_LIST_NAMES, "kind,id,name\nunit,\"U\n1\",x\n",
            "line 2, column id: expected a value without control characters or line breaks");
    refused(RK_LIST_CREDENTIALS, "officer_id,unit_id,valid_from,valid_until\n"
            "O1,U1,2025-02-29,\n",
            "line 2, column valid_from: expected a date YYYY-MM-DD (a real calendar date, "
            "year 1900 or later)");
    refused(RK_LIST_CREDENTIALS, "officer_id,unit_id,valid_from,valid_until\n"
            "O1,U1,2025-3-1,\n",
            "line 2, column valid_from: expected a date YYYY-MM-DD (a real calendar date, "
            "year 1900 or later)");
    refused(RK_LIST_CREDENTIALS, "officer_id,unit_id,valid_from,valid_until\n"
            "O1,U1,2025-03-01,2025-02-28\n",
            "line 2, column valid_until: expected a date on or after valid_from "
            "(2025-03-01), or empty for no expiry");
}

static void test_invalid_utf8(void **state)
{
    static const char nul[] = "kind,id,name\nunit,U1,a\0b\n";
    (void)state;
    /* GBK bytes of 王 where UTF-8 was expected */
    refused(RK_LIST_NAMES, "kind,id,name\nofficer,O1,\xcd\xf5\n",
            "line 2, column name: expected UTF-8 text (the file has bytes that are not UTF-8 "
            "here)");
    /* an overlong encoding of '/', and a UTF-16 surrogate */
    refused(RK_LIST_NAMES, "kind,id,name\nofficer,O1,ok\nunit,\xc0\xaf,x\n",
            "line 3, column id: expected UTF-8 text (the file has bytes that are not UTF-8 "
            "here)");
    refused(RK_LIST_NAMES, "kind,id,name\nunit,U1,\xed\xa0\x80\n",
            "line 2, column name: expected UTF-8 text (the file has bytes that are not UTF-8 "
            "here)");
    /* a NUL byte */
    refused_n(RK_LIST_NAMES, nul, sizeof(nul) - 1,
              "line 2, column name: expected text without control characters");
}

static void test_row_shape_and_quotes(void **state)
{
    (void)state;
    refused(RK_LIST_EXEMPT, "item_code,kind\nA,lighter,extra\n",
            "line 2, column 3: more fields than the header's 2");
    refused(RK_LIST_WHITELIST, "enterprise_id,allowance,note\nE1,3\n",
            "line 2, column note: missing (the row has 2 fields, the header 3)");
    refused(RK_LIST_NAMES, "kind,id,name\nunit,U1,王\"某\"\n",
            "line 2, column name: a quote inside an unquoted field, or text after a closing "
            "quote (quote the whole field and double each quote inside it)");
    refused(RK_LIST_NAMES, "kind,id,name\nunit,U1,\"王\"某\n",
            "line 2, column name: a quote inside an unquoted field, or text after a closing "
            "quote (quote the whole field and double each quote inside it)");
    refused(RK_LIST_NAMES, "kind,id,name\nunit,U1,ok\nunit,U2,\"never\nclosed\n",
            "line 3, column name: a quoted field is not closed before the end of the file");
}

static void test_duplicates(void **state)
{
    (void)state;
    refused(RK_LIST_WHITELIST, "enterprise_id,allowance,note\nE1,1,\nE2,1,\nE1,5,again\n",
            "line 4, column enterprise_id: duplicate enterprise_id E1 (first on line 2)");
    refused(RK_LIST_BENCHMARKS, "item_code,level,min_fine,max_fine\nA,,1,2\nA,1,1,2\nA,,3,4\n",
            "line 4, column item_code: duplicate (item_code, level) (A, ) (first on line 2)");
    refused(RK_LIST_NAMES, "kind,id,name\nunit,X1,甲\nofficer,X1,乙\nunit,X1,丙\n",
            "line 4, column kind: duplicate (kind, id) (unit, X1) (first on line 2)");
    refused(RK_LIST_CREDENTIALS, "officer_id,unit_id,valid_from,valid_until\n"
            "O1,U1,2024-01-01,\nO1,U2,2024-01-01,2025-01-01\n",
            "line 3, column officer_id: duplicate (officer_id, valid_from) (O1, 2024-01-01) "
            "(first on line 2)");
    refused(RK_LIST_EXEMPT, "item_code,kind\nA,lighter\nA,lighter\n",
            "line 3, column item_code: duplicate item_code A (first on line 2)");
}

/* ===================================================================
 * The stored form
 * =================================================================== */

static void test_json_round_trip(void **state)
{
    static const char *const files[RK_LIST__COUNT] = {
        "enterprise_id,allowance,note\nE2,0,\nE1,3,\"重点, \"\"A\"\"\"\n",
        "item_code,level,min_fine,max_fine\nA,,500,5000.5\nA,2,0.01,10\n",
        "item_code,kind\nB,lighter\nA,no_penalty\n",
        "officer_id,unit_id,valid_from,valid_until\nO1,U1,2024-01-01,\nO1,U1,2023-01-01,"
        "2023-12-31\n",
        "kind,id,name\nofficer,O1,\"王\n某\"\nunit,U1,市场监管局\n",
    };
    (void)state;
    for (int k = 0; k < RK_LIST__COUNT; k++) {
        rk__list *l = ok((rk__list_kind)k, files[k]), *back = NULL;
        size_t n = rk__lists_count(l);
        char *vals[4], *fields[4], err[RK_ERRLEN];
        size_t lens[4];
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
            vals[i] = rk__lists_row_json(l, i);
            fields[i] = rk__lists_row_field(l, i);
            assert_non_null(vals[i]);
            lens[i] = strlen(vals[i]);
        }
        assert_int_equal(rk__lists_from_json((rk__list_kind)k, (const char *const *)vals,
                                             lens, n, &back, err, sizeof(err)), 0);
        assert_int_equal(rk__lists_count(back), n);
        /* the same rows, sorted by key */
        for (size_t i = 0; i < n; i++) {
            size_t j = 0;
            char *again;
            for (; j < n; j++) {
                again = rk__lists_row_json(back, j);
                int same = strcmp(again, vals[i]) == 0;
                free(again);
                if (same)
                    break;
            }
            assert_true(j < n);
        }
        assert_true(strcmp(rk__lists_value(back, 0, 0), rk__lists_value(back, 1, 0)) <= 0);
        for (size_t i = 0; i < n; i++) {
            free(vals[i]);
            free(fields[i]);
        }
        rk__lists_free(back);
        rk__lists_free(l);
    }
}

static void test_json_forms(void **state)
{
    rk__list *l = ok(RK_LIST_BENCHMARKS, "item_code,level,min_fine,max_fine\nA,,500,5000.5\n");
    char *s = rk__lists_row_json(l, 0), *f = rk__lists_row_field(l, 0);
    (void)state;
    assert_string_equal(s, "{\"item_code\":\"A\",\"level\":null,\"min_fine\":500,"
                           "\"max_fine\":5000.5}");
    assert_string_equal(f, "[\"A\",\"\"]");
    free(s);
    free(f);
    rk__lists_free(l);
    l = ok(RK_LIST_WHITELIST, "enterprise_id,allowance,note\nE1,3,甲\n");
    s = rk__lists_row_json(l, 0);
    f = rk__lists_row_field(l, 0);
    assert_string_equal(s, "{\"enterprise_id\":\"E1\",\"allowance\":3,\"note\":\"甲\"}");
    assert_string_equal(f, "E1");
    free(s);
    free(f);
    rk__lists_free(l);
}

static void test_json_refused(void **state)
{
    const char *bad[] = {
        "{\"enterprise_id\":\"E1\",\"allowance\":-1,\"note\":\"\"}",
        "{\"enterprise_id\":\"E1\",\"allowance\":1}",
        "not json",
    };
    size_t lens[3];
    char err[RK_ERRLEN];
    rk__list *l = NULL;
    (void)state;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(bad[i]);
    assert_int_equal(rk__lists_from_json(RK_LIST_WHITELIST, bad, lens, 1, &l, err,
                                         sizeof(err)), -1);
    assert_string_equal(err, "stored row 1, column allowance: unexpected value");
    assert_int_equal(rk__lists_from_json(RK_LIST_WHITELIST, bad + 1, lens + 1, 1, &l, err,
                                         sizeof(err)), -1);
    assert_string_equal(err, "stored row 1: expected an object of 3 columns");
    assert_int_equal(rk__lists_from_json(RK_LIST_WHITELIST, bad + 2, lens + 2, 1, &l, err,
                                         sizeof(err)), -1);
    assert_null(l);
}

static void test_in_force(void **state)
{
    rk__list *l = ok(RK_LIST_NAMES, "kind,id,name\nunit,U1,兴庆分局\n");
    rk_buf b = {0};
    (void)state;
    assert_null(rk__lists_in_force(RK_LIST_NAMES));
    assert_int_equal(rk__lists_version(RK_LIST_NAMES), 0);
    rk__lists_install(RK_LIST_NAMES, l, 7);
    assert_ptr_equal(rk__lists_in_force(RK_LIST_NAMES), l);
    assert_string_equal(rk__lists_name(rk__lists_in_force(RK_LIST_NAMES), "unit", "U1"),
                        "兴庆分局");
    rk__lists_render_metrics(&b);
    rk_buf_put_bytes(&b, "", 1);
    assert_non_null(strstr((char *)b.data, "riskd_list_version{kind=\"names\"} 7\n"));
    assert_non_null(strstr((char *)b.data, "riskd_list_rows{kind=\"names\"} 1\n"));
    assert_non_null(strstr((char *)b.data, "riskd_list_version{kind=\"whitelist\"} 0\n"));
    rk_buf_free(&b);
    rk__lists_install(RK_LIST_NAMES, NULL, 0);
    assert_null(rk__lists_in_force(RK_LIST_NAMES));
    /* a lookup on the wrong kind answers "not listed" */
    l = ok(RK_LIST_EXEMPT, "item_code,kind\nA,lighter\n");
    assert_null(rk__lists_name(l, "unit", "A"));
    rk__lists_free(l);
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(rk__lists_kind("credentials"), RK_LIST_CREDENTIALS);
    assert_int_equal(rk__lists_kind("names"), RK_LIST_NAMES);
    assert_int_equal(rk__lists_kind("Names"), -1);
    assert_string_equal(rk__lists_kind_name(RK_LIST_BENCHMARKS), "benchmarks");
    assert_int_equal(rk__lists_ncols(RK_LIST_BENCHMARKS), 4);
    assert_string_equal(rk__lists_col(RK_LIST_BENCHMARKS, 3), "max_fine");
    assert_null(rk__lists_col(RK_LIST_EXEMPT, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whitelist_basic),
        cmocka_unit_test(test_bom_crlf_any_order),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_header_only_and_blank_rows),
        cmocka_unit_test(test_unnamed_columns),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_row_shape_and_quotes),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_forms),
        cmocka_unit_test(test_json_refused),
        cmocka_unit_test(test_in_force),
        cmocka_unit_test(test_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
