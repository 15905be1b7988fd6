/* pseudo: keyed pseudonymisation of client addresses (HMAC-SHA256).
 *
 * Two forms, both stable for one key and unrelated across keys:
 *  - sn_pseudo_hmac: an opaque pseudonym, the first 8 bytes of
 *      HMAC-SHA256(key, "sn-addr" || family(1 byte: 4|6) || addr(16 bytes, IPv4 in the first 4,
 *      rest zero, bits after `bits` cleared) || bits(1 byte))
 *    as 16 lowercase hex digits. `bits` is the client prefix length (32/128 for a host).
 *  - sn_pseudo_prefix: prefix-preserving (Crypto-PAn style): two addresses sharing their first
 *    k bits map to addresses sharing exactly their first k bits. Output bit i (from the most
 *    significant, i < 32 for IPv4, i < 64 for IPv6) = input bit i XOR the top bit of
 *      HMAC-SHA256(key, "sn-pp" || family || i(1 byte) || addr with bits i.. cleared (16 bytes)).
 *    IPv6 bits 64..127 (the interface identifier) are replaced by bytes 0..7 of
 *      HMAC-SHA256(key, "sn-iid" || family || addr(16 bytes)),
 *    so IPv6 prefixes are preserved down to /64. Cost: 32 (IPv4) or 65 (IPv6) HMACs per call:
 *    call once per flow, not per packet.
 * Keys are read from a file: its bytes, less one trailing "\n" or "\r\n", at least
 * SN_PSEUDO_KEY_MIN and at most SN_PSEUDO_KEY_MAX bytes.
 * Thread safety: a struct sn_pseudo is read-only after sn_pseudo_new, but use one per thread
 * (OpenSSL digest contexts are copied from it on every call).
 */
#ifndef SN_PSEUDO_H
#define SN_PSEUDO_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define SN_PSEUDO_KEY_MIN 16
#define SN_PSEUDO_KEY_MAX 256
#define SN_PSEUDO_HEXLEN 16

/* Reads a key file into key[cap]; *len gets its length. Returns 0, -errno, or
 * -SN_ECONFIG (too short/long), with a message in the error ring. */
int sn_pseudo_load_key(const char *path, uint8_t *key, size_t cap, size_t *len)
    __attribute__((warn_unused_result));

/* A keyed pseudonymiser: the HMAC key schedule is computed once here, so each HMAC costs
 * two SHA-256 compressions of the message. Returns owned memory (sn_pseudo_free, NULL-safe)
 * or NULL (error ring). The key is copied. */
struct sn_pseudo;
struct sn_pseudo *sn_pseudo_new(const uint8_t *key, size_t klen);
void sn_pseudo_free(struct sn_pseudo *p);

/* HMAC-SHA256(key, msg) into out. */
void sn_pseudo_mac(const struct sn_pseudo *p, const uint8_t *msg, size_t n, uint8_t out[32]);

/* Writes the 16-hex-digit pseudonym of a's first `bits` bits into out (NUL-terminated). */
void sn_pseudo_hmac(const struct sn_pseudo *p, const struct sn_addr *a, unsigned bits,
                    char out[SN_PSEUDO_HEXLEN + 1]);

/* Prefix-preserving pseudonym of `in` into `out` (same family). */
void sn_pseudo_prefix(const struct sn_pseudo *p, const struct sn_addr *in, struct sn_addr *out);

#endif
