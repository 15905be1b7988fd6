#define SN_LOG_MOD "addr"
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

/* Dotted quad without inet_ntop, whose sprintf showed up in profiles: every record
 * formats two addresses. */
static void ipv4_str(const uint8_t *q, char *buf, size_t len)
{
    char tmp[16];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = q[i];
        if (v >= 100)
            tmp[n++] = (char)('0' + v / 100);
        if (v >= 10)
            tmp[n++] = (char)('0' + v / 10 % 10);
        tmp[n++] = (char)('0' + v % 10);
        tmp[n++] = i < 3 ? '.' : '\0';
    }
    if (n <= len)
        memcpy(buf, tmp, n);
}

const char *sn_addr_str(const struct sn_addr *a, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (a->family == 4)
        ipv4_str(a->a, buf, len);
    else if (a->family == 6)
        inet_ntop(AF_INET6, a->a, buf, (socklen_t)len);
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

int sn_addr_cmp(const struct sn_addr *x, const struct sn_addr *y)
{
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    return memcmp(x->a, y->a, 16);
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
