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

/* spread[x]: bit j of nibble x moved to bit 16 j (the low bit of 16-bit lane j). */
static const uint64_t spread[16] = {
    0x0000000000000000ULL, 0x0000000000000001ULL, 0x0000000000010000ULL, 0x0000000000010001ULL,
    0x0000000100000000ULL, 0x0000000100000001ULL, 0x0000000100010000ULL, 0x0000000100010001ULL,
    0x0001000000000000ULL, 0x0001000000000001ULL, 0x0001000000010000ULL, 0x0001000000010001ULL,
    0x0001000100000000ULL, 0x0001000100000001ULL, 0x0001000100010000ULL, 0x0001000100010001ULL,
};

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
     * <= total < 2^15 fits a 16-bit lane, so bit b's P sits in lane b % 4 of acc[b / 4] and
     * one multiply adds a feature's weight to four bits. */
    uint64_t acc[16] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t x = h[i], wi = (uint64_t)w[i];
#pragma GCC unroll 16
        for (unsigned k = 0; k < 16; k++)
            acc[k] += spread[x >> 4 * k & 15] * wi;
    }
    /* Bit set iff v[b] > 0 iff P[b] > floor(total / 2) =: half. Adding 0x7fff - half to each
     * lane sets its bit 15 exactly then, without a carry into the next lane (P + 0x7fff -
     * half < 0x7fff + 2^14). The multiply gathers the four lane bits (at 0, 16, 32, 48 after
     * the shift) into bits 45..48 without collisions. */
    uint64_t c = (0x7fffULL - total / 2) * 0x0001000100010001ULL, r = 0;
    for (unsigned k = 0; k < 16; k++) {
        uint64_t m = (acc[k] + c) >> 15 & 0x0001000100010001ULL;
        r |= (m * 0x0000200040008001ULL >> 45 & 15) << 4 * k;
    }
    return r;
}

unsigned sn_simhash_dist(uint64_t x, uint64_t y)
{
    return (unsigned)__builtin_popcountll(x ^ y);
}
