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

/* IPv6 text is written without inet_ntop: it must match glibc's byte for byte. Every
 * zero/non-zero pattern of the eight words, with several values for the non-zero ones (the
 * embedded-IPv4 forms included), and a pseudo-random sweep. */
static void test_ipv6_format_matches_inet_ntop(void **state)
{
    (void)state;
    static const unsigned vals[] = {1, 0xffff, 0xa, 0xab, 0xabc, 0x1000, 0x0102, 0x8000};
    struct sn_addr a = {.family = 6};
    char mine[SN_ADDR_STRLEN], ref[SN_ADDR_STRLEN];
    for (unsigned pat = 0; pat < 256; pat++) {
        for (unsigned v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
            for (int i = 0; i < 8; i++) {
                unsigned w = (pat >> i & 1) ? vals[(v + (unsigned)i) % 8] : 0;
                a.a[2 * i] = (uint8_t)(w >> 8);
                a.a[2 * i + 1] = (uint8_t)w;
            }
            sn_addr_str(&a, mine, sizeof(mine));
            assert_non_null(inet_ntop(AF_INET6, a.a, ref, sizeof(ref)));
            assert_string_equal(mine, ref);
        }
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int n = 0; n < 200000; n++) {
        for (int i = 0; i < 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            unsigned w = (unsigned)(x >> 20) & 0xffff;
            switch ((x >> 40) & 3) { /* mostly zeros, so runs of every length occur */
            case 0:
            case 1: w = 0; break;
            case 2: w &= 0xff; break;
            default: break;
            }
            if (i == 5 && ((x >> 50) & 7) == 0)
                w = 0xffff;
            a.a[2 * i] = (uint8_t)(w >> 8);
            a.a[2 * i + 1] = (uint8_t)w;
        }
        sn_addr_str(&a, mine, sizeof(mine));
        assert_non_null(inet_ntop(AF_INET6, a.a, ref, sizeof(ref)));
        assert_string_equal(mine, ref);
    }
    static const char *const samples[] = {"::", "::1", "::ffff:1.2.3.4", "::1.2.3.4",
                                          "1::", "1:0:0:1::", "fe80::1:0:0:1", "2001:db8::ff00:42:8329",
                                          "1:2:3:4:5:6:7:8", "::ffff:0:1.2.3.4", "64:ff9b::1.2.3.4"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        assert_int_equal(sn_addr_parse(samples[i], &a), 0);
        sn_addr_str(&a, mine, sizeof(mine));
        inet_ntop(AF_INET6, a.a, ref, sizeof(ref));
        assert_string_equal(mine, ref);
    }
    /* Too small a buffer: nothing, as for IPv4. */
    char tiny[8];
    assert_int_equal(sn_addr_parse("2001:db8::1", &a), 0);
    assert_string_equal(sn_addr_str(&a, tiny, sizeof(tiny)), "");
    struct sn_addr none = {0};
    assert_string_equal(sn_addr_str(&none, mine, sizeof(mine)), "");
}

/* The inline word compare orders as family, then memcmp of the bytes. */
static void test_cmp_matches_memcmp(void **state)
{
    (void)state;
    uint64_t x = 0x243f6a8885a308d3ULL;
    for (int n = 0; n < 200000; n++) {
        struct sn_addr a = {0}, b = {0};
        for (int i = 0; i < 16; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a.a[i] = (uint8_t)(x >> 8);
            b.a[i] = (n & 3) == 0 || (x >> 40) % 4 ? a.a[i] : (uint8_t)(x >> 16); /* often equal */
        }
        a.family = (n & 8) ? 6 : 4;
        b.family = (n & 24) == 16 ? 4 : a.family;
        int want = a.family != b.family ? (a.family < b.family ? -1 : 1) : memcmp(a.a, b.a, 16);
        int got = sn_addr_cmp(&a, &b);
        assert_int_equal(want < 0, got < 0);
        assert_int_equal(want > 0, got > 0);
        assert_int_equal(sn_addr_cmp(&a, &a), 0);
    }
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
        cmocka_unit_test(test_ipv6_format_matches_inet_ntop),
        cmocka_unit_test(test_prefix_and_mask),
        cmocka_unit_test(test_cmp_matches_memcmp),
    };
    return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
