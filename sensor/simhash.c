#define SN_LOG_MOD "simhash"
#include "simhash.h"

#include <stdbool.h>
#include <string.h>

void sn_simhash_init(struct sn_simhash *s)
{
    memset(s, 0, sizeof(*s));
}

uint64_t sn_simhash_fnv(uint64_t h, const char *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)f[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t sn_simhash_mix(uint64_t h)
{
    /* FNV-1a alone barely changes the low bits for strings differing in one late byte;
     * the finaliser spreads every input bit over all 64 output bits. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t sn_simhash_hash64(const char *f, size_t n)
{
    return sn_simhash_mix(sn_simhash_fnv(SN_SIMHASH_FNV0, f, n));
}

void sn_simhash_add(struct sn_simhash *s, const char *f, size_t n, int64_t w)
{
    sn_simhash_add_hash(s, sn_simhash_hash64(f, n), w);
}

void sn_simhash_add_hash(struct sn_simhash *s, uint64_t h, int64_t w)
{
    for (unsigned b = 0; b < 64; b++) {
        int64_t m = (int64_t)(h >> b & 1) - 1; /* 0 for a set bit, -1 for a clear one */
        s->v[b] += (w ^ m) - m;                /* +w or -w without a branch */
    }
}

uint64_t sn_simhash_final(const struct sn_simhash *s)
{
    uint64_t r = 0;
    for (unsigned b = 0; b < 64; b++)
        r |= (uint64_t)(s->v[b] > 0) << b;
    return r;
}

/* Eight 16-bit lanes (GCC vector extension: SSE2 on x86-64, plain code elsewhere). */
typedef uint16_t lanes16 __attribute__((vector_size(16)));

/* byte_lanes[x]: lane j all ones when bit j of byte x is set, else zero. */
#define BL1_(x, j) (uint16_t)(((x) >> (j) & 1) ? 0xffff : 0)
#define BL_(x)                                                                                   \
    {BL1_(x, 0), BL1_(x, 1), BL1_(x, 2), BL1_(x, 3), BL1_(x, 4), BL1_(x, 5), BL1_(x, 6),         \
     BL1_(x, 7)}
#define BL4_(x) BL_(x), BL_((x) + 1), BL_((x) + 2), BL_((x) + 3)
#define BL16_(x) BL4_(x), BL4_((x) + 4), BL4_((x) + 8), BL4_((x) + 12)
#define BL64_(x) BL16_(x), BL16_((x) + 16), BL16_((x) + 32), BL16_((x) + 48)
static const lanes16 byte_lanes[256] = {BL64_(0), BL64_(64), BL64_(128), BL64_(192)};

uint64_t sn_simhash_of(const uint64_t *h, const int64_t *w, size_t n)
{
    uint64_t total = 0;
    bool fast = true;
    for (size_t i = 0; i < n && fast; i++) {
        fast = w[i] >= 0 && (uint64_t)w[i] < SN_SIMHASH_FAST_MAX;
        total += fast ? (uint64_t)w[i] : 0;
        fast = fast && total < SN_SIMHASH_FAST_MAX;
    }
    if (!fast) {
        struct sn_simhash s;
        sn_simhash_init(&s);
        for (size_t i = 0; i < n; i++)
            sn_simhash_add_hash(&s, h[i], w[i]);
        return sn_simhash_final(&s);
    }
    /* v[b] = 2 P[b] - total, with P[b] the weight of the features whose bit b is set. P[b]
     * <= total < 2^15 fits a 16-bit lane: bit b's P sits in lane b % 8 of acc[b / 8], and one
     * masked add per byte of a feature's hash adds its weight to eight bits. */
    lanes16 acc[8];
    for (unsigned k = 0; k < 8; k++)
        acc[k] = (lanes16){0};
    for (size_t i = 0; i < n; i++) {
        uint64_t x = h[i];
        lanes16 wv = (lanes16){0} + (uint16_t)w[i];
#pragma GCC unroll 8
        for (unsigned k = 0; k < 8; k++)
            acc[k] += byte_lanes[x >> 8 * k & 255] & wv;
    }
    /* Bit set iff v[b] > 0 iff P[b] > floor(total / 2). The multiply gathers the low bits of
     * four lanes (at 0, 16, 32, 48) into bits 45..48 without collisions. */
    lanes16 half = (lanes16){0} + (uint16_t)(total / 2);
    uint64_t r = 0;
#pragma GCC unroll 8
    for (unsigned k = 0; k < 8; k++) {
        lanes16 gt = acc[k] > half; /* all ones where greater */
        uint64_t q[2];
        memcpy(q, &gt, sizeof(q));
        for (unsigned i = 0; i < 2; i++) {
            uint64_t m = q[i] & 0x0001000100010001ULL;
            r |= (m * 0x0000200040008001ULL >> 45 & 15) << (8 * k + 4 * i);
        }
    }
    return r;
}

unsigned sn_simhash_dist(uint64_t x, uint64_t y)
{
    return (unsigned)__builtin_popcountll(x ^ y);
}
