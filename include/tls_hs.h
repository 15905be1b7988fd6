/* tls_hs: TLS handshake message parser and fingerprints (JA3, JA3S, JA4) and certificate
 * metadata (via libcrypto). Input is whole handshake messages, already reassembled by the
 * tls stream module; output is the metadata that the flow record's "tls" object shows.
 *
 * Ownership: sn_tls_meta_new returns owned memory freed by sn_tls_meta_free (NULL-safe).
 * Strings returned by accessors are borrowed from the meta and live as long as it.
 * Thread safety: a meta belongs to one flow, used by one thread.
 */
#ifndef SN_TLS_HS_H
#define SN_TLS_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_json;
struct sn_tls_meta;

/* Handshake types (RFC 8446 4, RFC 5246 7.4). */
#define SN_TLS_HS_CLIENT_HELLO 1
#define SN_TLS_HS_SERVER_HELLO 2
#define SN_TLS_HS_CERTIFICATE 11

struct sn_tls_meta *sn_tls_meta_new(void);
void sn_tls_meta_free(struct sn_tls_meta *m);

/* Parses one complete handshake message: `type` and `body` (the body after the 4-byte
 * handshake header, `len` bytes). dir: 0 = client to server, 1 = server to client.
 * record_version is the version field of the TLS record that carried its first byte.
 * Returns 0, -SN_EPROTO (malformed; counted by the caller) or -SN_ETRUNC. Messages of
 * other types are ignored (return 0). */
int sn_tls_hs_message(struct sn_tls_meta *m, int dir, uint8_t type, const uint8_t *body,
                      size_t len, uint16_t record_version)
    __attribute__((warn_unused_result));

/* Parses an SSLv2-compatible ClientHello record (RFC 5246 E.2), `len` bytes starting at
 * the 2-byte record header. Returns 0 or a negative code. */
int sn_tls_hs_sslv2(struct sn_tls_meta *m, const uint8_t *rec, size_t len)
    __attribute__((warn_unused_result));

/* The handshake travels in QUIC CRYPTO frames (call before the ClientHello): JA4 starts
 * with 'q' and the JSON has no record_version. */
void sn_tls_meta_set_quic(struct sn_tls_meta *m);

/* The fingerprint memo (tls_fp.h) this flow's JA3/JA3S/JA4 go through: borrowed, must
 * outlive m; NULL (the default): none. */
struct sn_tls_fp_memo;
void sn_tls_meta_set_memo(struct sn_tls_meta *m, struct sn_tls_fp_memo *memo);

/* Records the negotiated record-layer facts the stream sees (ChangeCipherSpec seen, ...). */
void sn_tls_meta_note_ccs(struct sn_tls_meta *m, int dir);

/* The first ClientHello is the one fingerprinted; a second one (after a HelloRetryRequest)
 * is parsed and counted but does not replace it. A HelloRetryRequest is not a ServerHello:
 * has_server_hello (and is_tls13) stay false until the real ServerHello arrives. */
bool sn_tls_meta_has_client_hello(const struct sn_tls_meta *m);
bool sn_tls_meta_has_server_hello(const struct sn_tls_meta *m);
/* A HelloRetryRequest was seen (the real ServerHello follows it in clear). */
bool sn_tls_meta_hrr(const struct sn_tls_meta *m);
/* TLS 1.3 (negotiated): certificates are encrypted, so the handshake is done for us once
 * the ServerHello is seen. */
bool sn_tls_meta_is_tls13(const struct sn_tls_meta *m);

/* Borrowed strings, or NULL when not seen. */
const char *sn_tls_meta_sni(const struct sn_tls_meta *m);
const char *sn_tls_meta_ja3(const struct sn_tls_meta *m);
const char *sn_tls_meta_ja3s(const struct sn_tls_meta *m);
const char *sn_tls_meta_ja4(const struct sn_tls_meta *m);
const char *sn_tls_meta_alpn(const struct sn_tls_meta *m); /* first offered / selected */

/* Additions (tls_hs helper). */
struct sn_x509_info;

/* The negotiated version (ServerHello, supported_versions overriding legacy_version), else
 * the client's highest offer (supported_versions up to TLS 1.3, else legacy_version), else 0
 * when no hello was seen. 0x0304 = TLS 1.3. */
uint16_t sn_tls_meta_version(const struct sn_tls_meta *m);
/* The negotiated cipher suite, or -1 before a ServerHello. */
int sn_tls_meta_cipher(const struct sn_tls_meta *m);
/* The ClientHello carried encrypted_client_hello (0xfe0d): the SNI is the outer one. */
bool sn_tls_meta_ech(const struct sn_tls_meta *m);
/* The decoded leaf certificate of a TLS <= 1.2 Certificate message (borrowed), or NULL;
 * *chain_len (if not NULL) gets the number of certificates sent (0 when none seen). */
const struct sn_x509_info *sn_tls_meta_leaf(const struct sn_tls_meta *m, uint32_t *chain_len);

/* Writes the members of the flow record's "tls" object (the caller opens and closes it):
 * version, sni, alpn, cipher, ja3, ja3s, ja4, cert, ... Absent keys mean not seen. */
void sn_tls_meta_json(const struct sn_tls_meta *m, struct sn_json *j);

#endif
