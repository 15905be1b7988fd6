/* Unit tests for the JSON writer (sensor/json.c): nesting, escaping, numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_object),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_keys_fast_and_escaped),
        cmocka_unit_test(test_numbers_and_hex),
        cmocka_unit_test(test_grows_large),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
