/* x509: metadata of one DER certificate (the TLS leaf). Our own DER walker decodes the
 * common shapes; anything else goes through OpenSSL libcrypto, whose output the walker
 * reproduces byte for byte.
 *
 * All fields are fixed-size NUL-terminated strings; long values are cut (at a UTF-8
 * character boundary) and SANs beyond the buffer are counted, not stored.
 * Ownership: the info struct is the caller's; der bytes are borrowed for the call.
 * Thread safety: no shared state (libcrypto 3 is thread-safe for these calls).
 */
#ifndef SN_X509_H
#define SN_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_json;

#define SN_X509_NAME_MAX 256   /* subject / issuer one-line string incl. NUL */
#define SN_X509_SERIAL_MAX 65  /* 32 octets as hex + NUL (RFC 5280 4.1.2.2 allows 20) */
#define SN_X509_SAN_BUF 1024   /* DNS SANs, NUL-separated */
#define SN_X509_SAN_MAX 32     /* DNS SANs stored at most */

struct sn_x509_info {
    char subject[SN_X509_NAME_MAX]; /* RFC 2253 order and escaping, UTF-8 kept */
    char issuer[SN_X509_NAME_MAX];
    char serial[SN_X509_SERIAL_MAX]; /* lowercase hex of the INTEGER's content octets */
    char not_before[24];             /* ISO-8601 UTC: 2024-01-31T12:00:00Z */
    char not_after[24];
    char sha256[65];                 /* of the whole DER, lowercase hex */
    char key_type[16];               /* "rsa", "ec", "ed25519", ... or "" */
    char curve[32];                  /* EC group name ("prime256v1") or "" */
    uint32_t key_bits;
    uint16_t n_san;       /* DNS names stored in san[] */
    uint32_t n_san_total; /* DNS names in the certificate */
    size_t san_len;       /* bytes used in san[] */
    char san[SN_X509_SAN_BUF];
};

/* Decodes `len` bytes of DER. Returns 0, or -SN_EPROTO when libcrypto rejects it (out is
 * then zeroed). Results are cached per thread, keyed by the DER bytes. */
int sn_x509_parse(struct sn_x509_info *out, const uint8_t *der, size_t len)
    __attribute__((warn_unused_result));

/* The two decoders behind sn_x509_parse, uncached, for tests and fuzzing:
 * _fast is the DER walker alone: 0, or -SN_EPROTO when it does not take the certificate
 * (out zeroed); _libcrypto is the OpenSSL path alone (same results as sn_x509_parse). */
int sn_x509_parse_fast(struct sn_x509_info *out, const uint8_t *der, size_t len)
    __attribute__((warn_unused_result));
int sn_x509_parse_libcrypto(struct sn_x509_info *out, const uint8_t *der, size_t len)
    __attribute__((warn_unused_result));

/* The i-th stored DNS SAN (borrowed from x), or NULL when i >= x->n_san. */
const char *sn_x509_san(const struct sn_x509_info *x, size_t i);

/* Writes the members subject, issuer, san (array), serial, not_before, not_after, sha256,
 * key_type, key_bits, curve into the current JSON object (empty values are left out). */
void sn_x509_json(const struct sn_x509_info *x, struct sn_json *j);

#endif
