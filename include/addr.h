/* addr: an IPv4 or IPv6 address as a value type, plus formatting and comparison.
 * IPv4 lives in a[0..3] with a[4..15] zero. Thread safety: pure functions.
 */
#ifndef SN_ADDR_H
#define SN_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

struct sn_addr {
    uint8_t family; /* 4 or 6; 0 when unset */
    uint8_t a[16];
};

/* Writes the textual form (as inet_ntop) into buf (at least SN_ADDR_STRLEN bytes). A buffer
 * too small for the text, or an address with no family, gets "". */
const char *sn_addr_str(const struct sn_addr *a, char *buf, size_t len);
/* The same, returning the text's length (0 for ""). */
size_t sn_addr_fmt(const struct sn_addr *a, char *buf, size_t len);
/* Parses dotted IPv4 or IPv6 text; returns 0 or -EINVAL. */
int sn_addr_parse(const char *s, struct sn_addr *out) __attribute__((warn_unused_result));
/* memcmp-style order: family first, then bytes; returns <0, 0 or >0. Inline: the flow table
 * orders the two addresses of every packet. */
static inline int sn_addr_cmp(const struct sn_addr *x, const struct sn_addr *y)
{
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    for (int h = 0; h < 16; h += 8) {
        uint64_t a, b;
        __builtin_memcpy(&a, x->a + h, 8);
        __builtin_memcpy(&b, y->a + h, 8);
        if (a != b) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            a = __builtin_bswap64(a); /* byte order = numeric order of big-endian words */
            b = __builtin_bswap64(b);
#endif
            return a < b ? -1 : 1;
        }
    }
    return 0;
}
/* True if the first `bits` bits of a equal those of net (same family). */
bool sn_addr_in_prefix(const struct sn_addr *a, const struct sn_addr *net, unsigned bits);
/* Clears all bits after the first `bits` (for /24, /56, /64 client keys). */
void sn_addr_mask(struct sn_addr *a, unsigned bits);

#endif
