/* tls_fp: TLS client/server fingerprints computed from already parsed hello fields.
 *
 *   JA3  (Salesforce): MD5 of "version,ciphers,extensions,groups,point_formats", each list
 *        decimal values joined by '-', GREASE values removed (RFC 8701).
 *   JA3S (Salesforce): MD5 of "version,cipher,extensions".
 *   JA4  (FoxIO, BSD-3-Clause; technical_details/JA4.md): "t13d1516h2_<12 hex>_<12 hex>".
 * JA4S/JA4X and the other JA4+ methods are under a non-commercial licence and are not here.
 *
 * Lists are passed in wire order and may still contain GREASE values: the functions skip
 * them. Hashes use libcrypto's EVP interface. A memo (struct sn_tls_fp_memo, 151,556 bytes,
 * one per pipeline) remembers the digests of recent lists, so a repeated hello costs neither
 * formatting nor hashing; a hit is exact (the whole list is compared).
 * Ownership: all pointers are borrowed for the call; sn_tls_fp_memo_new returns owned.
 * Thread safety: any thread; a memo is used by one thread at a time.
 */
#ifndef SN_TLS_FP_H
#define SN_TLS_FP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_TLS_FP_MD5_HEX 33 /* 32 hex digits + NUL */
#define SN_TLS_FP_JA4_LEN 37 /* "t13d1516h2_8daaf6152771_e5627efa2ab1" + NUL */

/* Recent digests (512 slots). NULL wherever a memo is taken means none: every digest is
 * computed. */
struct sn_tls_fp_memo;
struct sn_tls_fp_memo *sn_tls_fp_memo_new(void); /* NULL with SN_ERR set */
void sn_tls_fp_memo_free(struct sn_tls_fp_memo *t); /* accepts NULL */

/* The ClientHello facts JA3 and JA4 use. */
struct sn_tls_fp_hello {
    struct sn_tls_fp_memo *memo; /* borrowed, may be NULL */
    char transport;          /* JA4 prefix: 't' TCP, 'q' QUIC, 'd' DTLS */
    uint16_t legacy_version; /* ClientHello.legacy_version (JA3) */
    const uint16_t *versions; /* supported_versions values (JA4 takes the highest) */
    size_t n_versions;
    bool has_versions_ext;   /* supported_versions present, else JA4 uses legacy_version */
    bool has_sni;            /* server_name extension present: JA4 "d", else "i" */
    const uint8_t *alpn0;    /* first ALPN protocol name, NULL when no ALPN values */
    size_t alpn0_len;
    const uint16_t *ciphers;
    size_t n_ciphers;
    const uint16_t *exts; /* extension types */
    size_t n_exts;
    const uint16_t *groups; /* supported_groups */
    size_t n_groups;
    const uint8_t *point_formats;
    size_t n_point_formats;
    const uint16_t *sigalgs; /* signature_algorithms, wire order */
    size_t n_sigalgs;
};

/* RFC 8701 GREASE: 0x0a0a, 0x1a1a, ... 0xfafa. */
bool sn_tls_fp_is_grease(uint16_t v);

/* JA4's two-character version code for a protocol version ("13", "s3", "d2", "00"). */
const char *sn_tls_fp_ja4_version(uint16_t v);

/* Each writes a NUL-terminated lowercase fingerprint into out. Returns 0 or -ENOMEM
 * (libcrypto could not allocate a digest context). */
int sn_tls_fp_ja3(const struct sn_tls_fp_hello *h, char out[SN_TLS_FP_MD5_HEX])
    __attribute__((warn_unused_result));
int sn_tls_fp_ja3s(struct sn_tls_fp_memo *memo, uint16_t version, uint16_t cipher,
                   const uint16_t *exts, size_t n_exts, char out[SN_TLS_FP_MD5_HEX])
    __attribute__((warn_unused_result));
int sn_tls_fp_ja4(const struct sn_tls_fp_hello *h, char out[SN_TLS_FP_JA4_LEN])
    __attribute__((warn_unused_result));

/* The JA3 source string (what is hashed) into buf, truncated to cap - 1 bytes and always
 * NUL-terminated when cap > 0. Returns the untruncated length (like snprintf). For debugging
 * and tests. */
size_t sn_tls_fp_ja3_string(const struct sn_tls_fp_hello *h, char *buf, size_t cap);

/* JA4_r, the unhashed JA4 ("t13d1516h2_002f,0035,..._0005,...,ff01_0403,..."), with the same
 * truncation rules as sn_tls_fp_ja3_string. */
size_t sn_tls_fp_ja4_raw(const struct sn_tls_fp_hello *h, char *buf, size_t cap);

#endif
