/* Unit tests for addresses (sensor/addr.c): formatting (checked against inet_ntop),
 * parsing, prefix match and masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "addr.h"

static void test_ipv4_format_matches_inet_ntop(void **state)
{
    (void)state;
    struct sn_addr a = {.family = 4};
    char mine[SN_ADDR_STRLEN], ref[SN_ADDR_STRLEN];
    /* Every value of each octet position, and a stride over the whole space. */
    for (uint64_t v = 0; v < (1ull << 32); v += 65521) {
        for (int k = 0; k < 4; k++)
            a.a[k] = (uint8_t)(v >> (24 - 8 * k));
        sn_addr_str(&a, mine, sizeof(mine));
        inet_ntop(AF_INET, a.a, ref, sizeof(ref));
        assert_string_equal(mine, ref);
    }
    static const char *const samples[] = {"0.0.0.0", "255.255.255.255", "10.0.0.1", "1.22.133.4",
                                          "100.10.1.0"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        assert_int_equal(sn_addr_parse(samples[i], &a), 0);
        assert_string_equal(sn_addr_str(&a, mine, sizeof(mine)), samples[i]);
    }
    /* A buffer too small for the text gets nothing rather than a cut address. */
    char tiny[8];
    assert_int_equal(sn_addr_parse("255.255.255.255", &a), 0);
    assert_string_equal(sn_addr_str(&a, tiny, sizeof(tiny)), "");
}

static void test_ipv6_parse_format(void **state)
{
    (void)state;
    struct sn_addr a;
    char b[SN_ADDR_STRLEN];
    assert_int_equal(sn_addr_parse("2001:db8:0:0:0:0:0:1", &a), 0);
    assert_int_equal(a.family, 6);
    assert_string_equal(sn_addr_str(&a, b, sizeof(b)), "2001:db8::1");
    assert_int_equal(sn_addr_parse("not an address", &a), -EINVAL);
}

static void test_prefix_and_mask(void **state)
{
    (void)state;
    struct sn_addr a, net;
    char b[SN_ADDR_STRLEN];
    assert_int_equal(sn_addr_parse("192.0.2.77", &a), 0);
    assert_int_equal(sn_addr_parse("192.0.2.0", &net), 0);
    assert_true(sn_addr_in_prefix(&a, &net, 24));
    assert_false(sn_addr_in_prefix(&a, &net, 32));
    assert_true(sn_addr_in_prefix(&a, &net, 25)); /* 77 < 128 */
    sn_addr_mask(&a, 20);
    assert_string_equal(sn_addr_str(&a, b, sizeof(b)), "192.0.0.0");
    assert_int_equal(sn_addr_parse("2001:db8:abcd:12ff::1", &a), 0);
    sn_addr_mask(&a, 56);
    assert_string_equal(sn_addr_str(&a, b, sizeof(b)), "2001:db8:abcd:1200::");
    assert_int_equal(sn_addr_parse("2001:db8::", &net), 0);
    assert_false(sn_addr_in_prefix(&a, &net, 128));
    struct sn_addr v4;
    assert_int_equal(sn_addr_parse("10.0.0.1", &v4), 0);
    assert_false(sn_addr_in_prefix(&v4, &net, 0)); /* families differ */
    assert_true(sn_addr_cmp(&v4, &a) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_format_matches_inet_ntop),
        cmocka_unit_test(test_ipv6_parse_format),
        cmocka_unit_test(test_prefix_and_mask),
    };
    return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
