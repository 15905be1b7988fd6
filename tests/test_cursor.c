/* Unit tests for the bounded cursor (include/cursor.h) and the error ring (sensor/err.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "err.h"

static void test_reads_big_endian(void **state)
{
    (void)state;
    static const uint8_t b[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a};
    struct sn_cur c = sn_cur_make(b, sizeof(b));
    assert_int_equal(sn_cur_u8(&c), 0x01);
    assert_int_equal(sn_cur_u16(&c), 0x0203);
    assert_int_equal(sn_cur_u24(&c), 0x040506);
    assert_int_equal(sn_cur_u32(&c), 0x0708090a);
    assert_int_equal(sn_cur_left(&c), 0);
    assert_int_equal(c.err, 0);
}

static void test_little_endian(void **state)
{
    (void)state;
    static const uint8_t b[] = {0x02, 0x00, 0x00, 0x00, 0x34, 0x12};
    struct sn_cur c = sn_cur_make(b, sizeof(b));
    assert_int_equal(sn_cur_u32_le(&c), 2);
    assert_int_equal(sn_cur_u16_le(&c), 0x1234);
}

static void test_short_read_is_sticky(void **state)
{
    (void)state;
    static const uint8_t b[] = {0xaa, 0xbb, 0xcc};
    struct sn_cur c = sn_cur_make(b, sizeof(b));
    assert_int_equal(sn_cur_u16(&c), 0xaabb);
    assert_int_equal(sn_cur_u16(&c), 0); /* only one byte left */
    assert_int_equal(c.err, -SN_ETRUNC);
    assert_int_equal(sn_cur_left(&c), 0);
    assert_int_equal(sn_cur_u8(&c), 0); /* sticky: the remaining byte is gone too */
    assert_int_equal(c.err, -SN_ETRUNC);
}

static void test_sub_cursor_bounds_inner_parser(void **state)
{
    (void)state;
    /* A 2-byte length prefix, 3 bytes of field, then a trailer the inner parser must not see. */
    static const uint8_t b[] = {0x00, 0x03, 0x11, 0x22, 0x33, 0x99};
    struct sn_cur c = sn_cur_make(b, sizeof(b));
    struct sn_cur sub = sn_cur_sub(&c, sn_cur_u16(&c));
    assert_int_equal(sn_cur_left(&sub), 3);
    assert_int_equal(sn_cur_u16(&sub), 0x1122);
    assert_int_equal(sn_cur_u16(&sub), 0); /* would run into the trailer */
    assert_int_equal(sub.err, -SN_ETRUNC);
    assert_int_equal(c.err, 0);
    assert_int_equal(sn_cur_u8(&c), 0x99);
}

static void test_sub_cursor_too_long_fails_both(void **state)
{
    (void)state;
    static const uint8_t b[] = {0x00, 0x09, 0x11};
    struct sn_cur c = sn_cur_make(b, sizeof(b));
    struct sn_cur sub = sn_cur_sub(&c, sn_cur_u16(&c));
    assert_int_equal(sub.err, -SN_ETRUNC);
    assert_int_equal(c.err, -SN_ETRUNC);
    assert_int_equal(sn_cur_left(&sub), 0);
}

static void test_take_copy_peek_fail(void **state)
{
    (void)state;
    static const uint8_t b[] = {1, 2, 3, 4};
    struct sn_cur c = sn_cur_make(b, sizeof(b));
    uint8_t v;
    assert_true(sn_cur_peek8(&c, 3, &v));
    assert_int_equal(v, 4);
    assert_false(sn_cur_peek8(&c, 4, &v));
    assert_int_equal(c.err, 0);
    const uint8_t *t = sn_cur_take(&c, 2);
    assert_ptr_equal(t, b);
    uint8_t out[2];
    assert_true(sn_cur_copy(&c, out, 2));
    assert_int_equal(out[1], 4);
    assert_null(sn_cur_take(&c, 1));
    struct sn_cur d = sn_cur_make(b, sizeof(b));
    sn_cur_fail(&d, -SN_EPROTO);
    assert_int_equal(d.err, -SN_EPROTO);
    sn_cur_fail(&d, -SN_ETRUNC); /* the first error stays */
    assert_int_equal(d.err, -SN_EPROTO);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    struct sn_cur c = sn_cur_make(NULL, 10);
    assert_int_equal(sn_cur_left(&c), 0);
    assert_int_equal(sn_cur_u8(&c), 0);
    assert_int_equal(c.err, -SN_ETRUNC);
}

/* sn_cur_skip_run: every run length around the word size, at every alignment, in exactly
 * sized buffers (ASan sees any overread). */
static void test_skip_run(void **state)
{
    (void)state;
    for (size_t off = 0; off < 8; off++) {
        for (size_t run = 0; run < 40; run++) {
            for (size_t tail = 0; tail < 3; tail++) {
                size_t len = off + run + tail;
                uint8_t *b = malloc(len ? len : 1);
                assert_non_null(b);
                memset(b, 0x11, len);
                memset(b + off, 0, run);
                struct sn_cur c = sn_cur_make(b, len);
                assert_true(sn_cur_skip(&c, off));
                assert_int_equal(sn_cur_skip_run(&c, 0), run);
                assert_int_equal(sn_cur_left(&c), tail);
                assert_int_equal(sn_cur_skip_run(&c, 0), 0);
                assert_int_equal(sn_cur_skip_run(&c, 0x11), tail);
                assert_true(sn_cur_ok(&c));
                free(b);
            }
        }
    }
    struct sn_cur c = sn_cur_make(NULL, 0);
    assert_int_equal(sn_cur_skip_run(&c, 0), 0);
}

static void test_error_ring(void **state)
{
    (void)state;
    sn_err_clear();
    assert_string_equal(sn_err_last(), "");
    assert_int_equal(sn_err_push(SN_EPROTO, "tls", "bad %s", "hello"), -SN_EPROTO);
    assert_string_equal(sn_err_last(), "tls: bad hello");
    for (int i = 0; i < 40; i++)
        sn_err_push(5, "x", "n%d", i);
    assert_string_equal(sn_err_last(), "x: n39");
    assert_string_equal(sn_err_str(-SN_ETRUNC), "truncated input");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_big_endian),
        cmocka_unit_test(test_little_endian),
        cmocka_unit_test(test_short_read_is_sticky),
        cmocka_unit_test(test_sub_cursor_bounds_inner_parser),
        cmocka_unit_test(test_sub_cursor_too_long_fails_both),
        cmocka_unit_test(test_take_copy_peek_fail),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_skip_run),
        cmocka_unit_test(test_error_ring),
    };
    return cmocka_run_group_tests_name("cursor", tests, NULL, NULL);
}
