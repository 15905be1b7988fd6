/* simhash: a 64-bit similarity hash over weighted string features (Charikar's SimHash).
 *
 * Reproducible definition (a consumer in any language can recompute it):
 *   h(s)   = fmix64(fnv1a64(s)), where fnv1a64 starts at 0xcbf29ce484222325 and for each
 *            byte does h ^= byte; h *= 0x100000001b3 (mod 2^64), and fmix64 is MurmurHash3's
 *            finaliser: k ^= k >> 33; k *= 0xff51afd7ed558ccd; k ^= k >> 33;
 *            k *= 0xc4ceb9fe1a85ec53; k ^= k >> 33.
 *   v[b]   = sum over features (s, w) of (+w if bit b of h(s) is 1 else -w), w a signed
 *            64-bit integer weight (exact integer arithmetic: no rounding differences).
 *   result = bit b set iff v[b] > 0 (ties give 0).
 * Distance between two hashes: popcount(x ^ y) (0 = same, ~32 = unrelated).
 * Thread safety: pure functions on caller-owned state.
 */
#ifndef SN_SIMHASH_H
#define SN_SIMHASH_H

#include <stddef.h>
#include <stdint.h>

struct sn_simhash {
    int64_t v[64];
};

void sn_simhash_init(struct sn_simhash *s);
/* Adds feature string f (n bytes) with integer weight w. */
void sn_simhash_add(struct sn_simhash *s, const char *f, size_t n, int64_t w);
/* The same with the feature's sn_simhash_hash64() computed beforehand (fixed features). */
void sn_simhash_add_hash(struct sn_simhash *s, uint64_t h, int64_t w);
uint64_t sn_simhash_final(const struct sn_simhash *s);
/* The feature hash h() above. */
uint64_t sn_simhash_hash64(const char *f, size_t n);
/* h() in two steps, to hash "prefix:" + value without building the string:
 * h(a b) = sn_simhash_mix(sn_simhash_fnv(sn_simhash_fnv(SN_SIMHASH_FNV0, a, na), b, nb)). */
#define SN_SIMHASH_FNV0 0xcbf29ce484222325ULL
uint64_t sn_simhash_fnv(uint64_t h, const char *f, size_t n);
uint64_t sn_simhash_mix(uint64_t h);
/* The SimHash of n features (hashes h[i], weights w[i]) at once: the same value as init,
 * add_hash for each, final. Non-negative weights summing below SN_SIMHASH_FAST_MAX take a
 * fast path (16-bit counters, eight to a vector); anything else the int64 one. */
#define SN_SIMHASH_FAST_MAX 32768
uint64_t sn_simhash_of(const uint64_t *h, const int64_t *w, size_t n);
/* Hamming distance. */
unsigned sn_simhash_dist(uint64_t x, uint64_t y);

#endif
