/* Unit tests for the JSON writer (sensor/json.c): nesting, escaping, numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

static void test_nested_object(void **state)
{
    (void)state;
    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_json_str(&j, "type", "flow");
    sn_json_u64(&j, "schema", 1);
    sn_json_obj_begin(&j, "client");
    sn_json_str(&j, "ip", "10.0.0.1");
    sn_json_u64(&j, "port", 443);
    sn_json_obj_end(&j);
    sn_json_arr_begin(&j, "alpn");
    sn_json_str(&j, NULL, "h2");
    sn_json_str(&j, NULL, "http/1.1");
    sn_json_arr_end(&j);
    sn_json_bool(&j, "ok", true);
    sn_json_i64(&j, "neg", -5);
    sn_json_null(&j, "none");
    sn_json_obj_end(&j);
    sn_json_nl(&j);
    assert_string_equal(j.buf, "{\"type\":\"flow\",\"schema\":1,\"client\":{\"ip\":\"10.0.0.1\","
                               "\"port\":443},\"alpn\":[\"h2\",\"http/1.1\"],\"ok\":true,"
                               "\"neg\":-5,\"none\":null}\n");
    /* A second record after reset starts clean. */
    sn_json_reset(&j);
    sn_json_obj_begin(&j, NULL);
    sn_json_u64(&j, "a", 1);
    sn_json_obj_end(&j);
    assert_string_equal(j.buf, "{\"a\":1}");
    sn_json_fini(&j);
}

static void test_escaping(void **state)
{
    (void)state;
    struct sn_json j;
    sn_json_init(&j);
    /* quote, backslash, control byte, valid UTF-8 (é), invalid byte 0xff, NUL inside. */
    static const char s[] = "a\"b\\c\n\x01\xc3\xa9\xff" "z\0y";
    sn_json_strn(&j, NULL, s, sizeof(s) - 1);
    assert_string_equal(j.buf, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\\u00ffz\\u0000y\"");
    sn_json_fini(&j);
}

static void test_keys_fast_and_escaped(void **state)
{
    (void)state;
    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_json_u64(&j, "plain_key-1", 1);
    sn_json_u64(&j, "needs \"escaping\"", 2);
    sn_json_u64(&j, "caf\xc3\xa9", 3);
    sn_json_obj_end(&j);
    assert_string_equal(j.buf, "{\"plain_key-1\":1,\"needs \\\"escaping\\\"\":2,\"caf\xc3\xa9\":3}");
    sn_json_fini(&j);
}

static void test_numbers_and_hex(void **state)
{
    (void)state;
    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_json_ts(&j, "t", 1700000000123456LL);
    sn_json_ts(&j, "neg", -1);
    sn_json_dbl(&j, "d", 2.0 / 3.0, 3);
    static const uint8_t h[] = {0x00, 0xab, 0xff};
    sn_json_hex(&j, "h", h, sizeof(h));
    sn_json_u64(&j, "max", UINT64_MAX);
    sn_json_obj_end(&j);
    assert_string_equal(j.buf, "{\"t\":1700000000.123456,\"neg\":-0.000001,\"d\":0.667,"
                               "\"h\":\"00abff\",\"max\":18446744073709551615}");
    sn_json_fini(&j);
}

static void test_grows_large(void **state)
{
    (void)state;
    struct sn_json j;
    sn_json_init(&j);
    sn_json_arr_begin(&j, NULL);
    for (int i = 0; i < 10000; i++)
        sn_json_u64(&j, NULL, 12345);
    sn_json_arr_end(&j);
    assert_true(sn_json_ok(&j));
    assert_int_equal(j.len, 2 + 10000 * 5 + 9999);
    sn_json_fini(&j);
}

/* Literal keys take the compile-time path (length folded, no scan); the real functions and
 * non-literal keys take the run-time path. Both must write the same bytes. */
static void test_key_paths_agree(void **state)
{
    (void)state;
    static const char *const keys[] = {"a", "ab", "abc", "abcd", "abcdefg", "abcdefgh",
                                       "abcdefghijklmnop", "abcdefghijklmnopq",
                                       "0123456789012345678901234567890123456789", "",
                                       "x\"y", "caf\xc3\xa9", "tab\there", "back\\slash"};
    struct sn_json a, b;
    sn_json_init(&a);
    sn_json_init(&b);
    sn_json_obj_begin(&a, NULL);
    (sn_json_obj_begin)(&b, NULL);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *k = keys[i];
        sn_json_u64(&a, k, i);
        (sn_json_u64)(&b, k, i);
        sn_json_str(&a, k, "v");
        (sn_json_str)(&b, k, "v");
    }
    /* literal keys against the same keys through the scanning functions */
    sn_json_u64(&a, "interim_records", 1);
    (sn_json_u64)(&b, "interim_records", 1);
    sn_json_i64(&a, "neg", -7);
    (sn_json_i64)(&b, "neg", -7);
    sn_json_bool(&a, "ok", false);
    (sn_json_bool)(&b, "ok", false);
    sn_json_null(&a, "none");
    (sn_json_null)(&b, "none");
    sn_json_ts(&a, "t", 1);
    (sn_json_ts)(&b, "t", 1);
    sn_json_dbl(&a, "d", 0.5, 2);
    (sn_json_dbl)(&b, "d", 0.5, 2);
    static const uint8_t h[] = {1, 2};
    sn_json_hex(&a, "h", h, 2);
    (sn_json_hex)(&b, "h", h, 2);
    sn_json_strn(&a, "s", "xyz", 2);
    (sn_json_strn)(&b, "s", "xyz", 2);
    sn_json_arr_begin(&a, "exactly_thirty_two_bytes_long_ab");
    (sn_json_arr_begin)(&b, "exactly_thirty_two_bytes_long_ab");
    sn_json_arr_end(&a);
    sn_json_arr_end(&b);
    sn_json_obj_begin(&a, "q\"uote");
    (sn_json_obj_begin)(&b, "q\"uote");
    sn_json_obj_end(&a);
    sn_json_obj_end(&b);
    sn_json_obj_end(&a);
    sn_json_obj_end(&b);
    assert_int_equal(a.len, b.len);
    assert_string_equal(a.buf, b.buf);
    assert_non_null(strstr(a.buf, ",\"x\\\"y\":"));
    assert_non_null(strstr(a.buf, ",\"q\\\"uote\":{}"));
    /* the compile-time length: a plain literal folds, anything else scans */
    assert_int_equal(SN_JSON_KLEN_(NULL) == 0 || SN_JSON_KLEN_(NULL) == SN_JSON_KEY_SCAN, 1);
    assert_true(SN_JSON_KLEN_("a\"b") == SN_JSON_KEY_SCAN);
    assert_true(SN_JSON_KLEN_("caf\xc3\xa9") == SN_JSON_KEY_SCAN);
    assert_true(SN_JSON_KLEN_("0123456789012345678901234567890123") == SN_JSON_KEY_SCAN);
    sn_json_fini(&a);
    sn_json_fini(&b);
}

/* Strings of every length up to 40 with one byte that needs escaping at every position: the
 * word-at-a-time plain test must find it wherever it is. */
static void test_string_scan_positions(void **state)
{
    (void)state;
    static const char bad[] = {'"', '\\', '\n', 0x01, 0x1f, (char)0x80, (char)0xff};
    struct sn_json j;
    sn_json_init(&j);
    char s[48], want[512];
    for (size_t n = 0; n <= 40; n++) {
        memset(s, 'a', sizeof(s));
        /* all plain, including the top printable bytes */
        if (n)
            s[n - 1] = '~';
        sn_json_reset(&j);
        sn_json_strn(&j, NULL, s, n);
        snprintf(want, sizeof(want), "\"%.*s\"", (int)n, s);
        assert_string_equal(j.buf, want);
        for (size_t pos = 0; pos < n; pos++) {
            for (size_t b = 0; b < sizeof(bad); b++) {
                memset(s, 'a', sizeof(s));
                s[pos] = bad[b];
                sn_json_reset(&j);
                sn_json_strn(&j, NULL, s, n);
                unsigned char c = (unsigned char)bad[b];
                char esc[8];
                if (c == '"' || c == '\\')
                    snprintf(esc, sizeof(esc), "\\%c", c);
                else
                    snprintf(esc, sizeof(esc), "\\u00%02x", c);
                snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)pos, s, esc,
                         (int)(n - pos - 1), s + pos + 1);
                assert_string_equal(j.buf, want);
            }
        }
    }
    sn_json_fini(&j);
}

/* Integers at every digit-count boundary. */
static void test_integer_boundaries(void **state)
{
    (void)state;
    struct sn_json j;
    sn_json_init(&j);
    char want[32];
    uint64_t p = 1;
    for (int d = 0; d < 20; d++) {
        uint64_t vals[] = {p - 1, p, p + 1, p * 9 + (p - 1)};
        for (size_t i = 0; i < 4; i++) {
            if (d == 19 && i == 3)
                vals[i] = UINT64_MAX;
            sn_json_reset(&j);
            sn_json_u64(&j, NULL, vals[i]);
            snprintf(want, sizeof(want), "%" PRIu64, vals[i]);
            assert_string_equal(j.buf, want);
            char direct[24];
            char *e = sn_json_put_u64(direct, vals[i]); /* the direct writers' formatter */
            assert_int_equal((size_t)(e - direct), strlen(want));
            assert_memory_equal(direct, want, strlen(want));
            sn_json_reset(&j);
            sn_json_i64(&j, NULL, -(int64_t)(vals[i] & INT64_MAX));
            snprintf(want, sizeof(want), "%" PRId64, -(int64_t)(vals[i] & INT64_MAX));
            assert_string_equal(j.buf, want);
        }
        if (d < 19)
            p *= 10;
    }
    sn_json_reset(&j);
    sn_json_i64(&j, NULL, INT64_MIN);
    assert_string_equal(j.buf, "-9223372036854775808");
    sn_json_reset(&j);
    sn_json_ts(&j, NULL, INT64_MIN);
    assert_string_equal(j.buf, "-9223372036854.775808");
    sn_json_fini(&j);
}

/* Writes the literal through sn_json_raw_begin/_end. */
#define RAW(j, lit)                                                                                \
    do {                                                                                           \
        char *o_ = sn_json_raw_begin((j), sizeof(lit) - 1);                                        \
        assert_non_null(o_);                                                                       \
        memcpy(o_, (lit), sizeof(lit) - 1);                                                        \
        sn_json_raw_end((j), o_ + sizeof(lit) - 1);                                                \
    } while (0)

/* Direct writing takes the comma due at its depth and leaves the writer usable. */
static void test_raw_members(void **state)
{
    (void)state;
    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    RAW(&j, "\"a\":1,\"b\":{}");
    sn_json_u64(&j, "c", 2);
    RAW(&j, "\"d\":3");
    sn_json_arr_begin(&j, "e");
    RAW(&j, "4");
    RAW(&j, "5");
    sn_json_arr_end(&j);
    sn_json_obj_end(&j);
    assert_true(sn_json_ok(&j));
    assert_string_equal(j.buf, "{\"a\":1,\"b\":{},\"c\":2,\"d\":3,\"e\":[4,5]}");
    sn_json_fini(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_object),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_keys_fast_and_escaped),
        cmocka_unit_test(test_numbers_and_hex),
        cmocka_unit_test(test_grows_large),
        cmocka_unit_test(test_key_paths_agree),
        cmocka_unit_test(test_string_scan_positions),
        cmocka_unit_test(test_integer_boundaries),
        cmocka_unit_test(test_raw_members),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
