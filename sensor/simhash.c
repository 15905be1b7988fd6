#define SN_LOG_MOD "simhash"
#include "simhash.h"

#include <string.h>

void sn_simhash_init(struct sn_simhash *s)
{
    memset(s, 0, sizeof(*s));
}

uint64_t sn_simhash_hash64(const char *f, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)f[i];
        h *= 0x100000001b3ULL;
    }
    /* FNV-1a alone barely changes the low bits for strings differing in one late byte;
     * the finaliser spreads every input bit over all 64 output bits. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

void sn_simhash_add(struct sn_simhash *s, const char *f, size_t n, int64_t w)
{
    sn_simhash_add_hash(s, sn_simhash_hash64(f, n), w);
}

void sn_simhash_add_hash(struct sn_simhash *s, uint64_t h, int64_t w)
{
    for (unsigned b = 0; b < 64; b++)
        s->v[b] += (h >> b & 1) ? w : -w;
}

uint64_t sn_simhash_final(const struct sn_simhash *s)
{
    uint64_t r = 0;
    for (unsigned b = 0; b < 64; b++)
        if (s->v[b] > 0)
            r |= 1ULL << b;
    return r;
}

unsigned sn_simhash_dist(uint64_t x, uint64_t y)
{
    return (unsigned)__builtin_popcountll(x ^ y);
}
