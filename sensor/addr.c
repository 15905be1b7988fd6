#define SN_LOG_MOD "addr"
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* Dotted quad at p without inet_ntop, whose sprintf showed up in profiles: every record
 * formats two addresses. Returns the end (no NUL). */
static char *ipv4_put(char *p, const uint8_t *q)
{
    static const char pairs[] = /* "00" to "99" */
        "00010203040506070809101112131415161718192021222324252627282930"
        "31323334353637383940414243444546474849505152535455565758596061"
        "62636465666768697071727374757677787980818283848586878889909192"
        "93949596979899";
    for (int i = 0; i < 4; i++) {
        unsigned v = q[i];
        if (v >= 100) {
            unsigned h = v >= 200 ? 2 : 1;
            *p++ = (char)('0' + h);
            v -= 100 * h;
            memcpy(p, pairs + 2 * v, 2);
            p += 2;
        } else if (v >= 10) {
            memcpy(p, pairs + 2 * v, 2);
            p += 2;
        } else {
            *p++ = (char)('0' + v);
        }
        *p++ = '.';
    }
    return p - 1; /* no dot after the last octet */
}

/* IPv6 text exactly as glibc's inet_ntop writes it (itself RFC 5952 but for the embedded
 * IPv4 forms): lowercase hex without leading zeros; the first longest run of at least two
 * zero words becomes "::"; ::a.b.c.d and ::ffff:a.b.c.d show the IPv4 address dotted. Its
 * sprintf per word cost ~5,700 instructions per address. Returns the end (no NUL). */
static char *ipv6_put(char *p, const uint8_t *b)
{
    static const char hex[] = "0123456789abcdef";
    unsigned w[8];
    int best = -1, bestlen = 0, cur = -1, curlen = 0;
    for (int i = 0; i < 8; i++) {
        w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
        if (w[i]) {
            cur = -1;
            continue;
        }
        if (cur < 0) {
            cur = i;
            curlen = 0;
        }
        if (++curlen > bestlen) { /* strictly longer: the first run wins a tie */
            best = cur;
            bestlen = curlen;
        }
    }
    if (bestlen < 2)
        best = -1;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + bestlen) {
            if (i == best)
                *p++ = ':';
            continue;
        }
        if (i)
            *p++ = ':';
        if (i == 6 && best == 0 && (bestlen == 6 || (bestlen == 5 && w[5] == 0xffff)))
            return ipv4_put(p, b + 12);
        unsigned v = w[i];
        if (v >= 0x1000)
            *p++ = hex[v >> 12];
        if (v >= 0x100)
            *p++ = hex[(v >> 8) & 15];
        if (v >= 0x10)
            *p++ = hex[(v >> 4) & 15];
        *p++ = hex[v & 15];
    }
    if (best >= 0 && best + bestlen == 8)
        *p++ = ':';
    return p;
}

/* The text at p (room for SN_ADDR_STRLEN bytes); returns its end (no NUL). */
static char *addr_put(const struct sn_addr *a, char *p)
{
    if (a->family == 4)
        return ipv4_put(p, a->a);
    if (a->family == 6)
        return ipv6_put(p, a->a);
    return p;
}

size_t sn_addr_fmt(const struct sn_addr *a, char *buf, size_t len)
{
    if (len >= SN_ADDR_STRLEN) { /* the usual case: room for any address */
        char *e = addr_put(a, buf);
        *e = '\0';
        return (size_t)(e - buf);
    }
    if (len == 0)
        return 0;
    char tmp[SN_ADDR_STRLEN];
    size_t n = (size_t)(addr_put(a, tmp) - tmp);
    if (n >= len) /* a buffer too small gets nothing rather than a cut address */
        n = 0;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

const char *sn_addr_str(const struct sn_addr *a, char *buf, size_t len)
{
    sn_addr_fmt(a, buf, len);
    return buf;
}

int sn_addr_parse(const char *s, struct sn_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, out->a) == 1) {
        out->family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->a) == 1) {
        out->family = 6;
        return 0;
    }
    return -EINVAL;
}

bool sn_addr_in_prefix(const struct sn_addr *a, const struct sn_addr *net, unsigned bits)
{
    if (a->family != net->family)
        return false;
    unsigned max = a->family == 4 ? 32 : 128;
    if (bits > max)
        bits = max;
    unsigned full = bits / 8, rem = bits % 8;
    if (memcmp(a->a, net->a, full) != 0)
        return false;
    if (rem) {
        uint8_t m = (uint8_t)(0xff << (8 - rem));
        if ((a->a[full] & m) != (net->a[full] & m))
            return false;
    }
    return true;
}

void sn_addr_mask(struct sn_addr *a, unsigned bits)
{
    unsigned max = a->family == 4 ? 32 : 128;
    if (bits >= max)
        return;
    unsigned full = bits / 8, rem = bits % 8;
    if (rem) {
        a->a[full] &= (uint8_t)(0xff << (8 - rem));
        full++;
    }
    memset(a->a + full, 0, 16 - full);
}
