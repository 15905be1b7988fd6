/* digest: the message digests the sensor computes (JA3's MD5; JA4's, certificates' and QUIC
 * key derivation's SHA-256), fetched from libcrypto once per process.
 *
 * OpenSSL 3 resolves EVP_md5()/EVP_sha256() through a locked method-store lookup on every
 * EVP_DigestInit_ex; a method fetched once avoids that. The fetched methods are set by a
 * pthread_once routine, never changed afterwards (shared read-only by all threads) and live
 * until exit. If a fetch fails, the functions fall back to EVP_md5()/EVP_sha256().
 *
 * Ownership: the returned methods are borrowed; never free them. Thread safety: any thread.
 */
#ifndef SN_DIGEST_H
#define SN_DIGEST_H

#include <openssl/types.h>

const EVP_MD *sn_digest_md5(void);
const EVP_MD *sn_digest_sha256(void);

#endif
