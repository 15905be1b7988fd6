/* quic: the client's TLS ClientHello out of QUIC Initial packets.
 *
 * QUIC (RFC 9000) carries the TLS handshake in CRYPTO frames; Initial packets are encrypted
 * with keys anyone can derive from the Destination Connection ID of the client's first
 * Initial (RFC 9001 5.2). For a UDP flow this module recognises client long-header Initials
 * of the versions whose Initials carry a TLS ClientHello and that nDPI 4.2 also decrypts:
 *   - QUIC v1 (RFC 9000/9001) and v2 (RFC 9369);
 *   - the IETF drafts 23 to 34 (salts of draft-ietf-quic-tls-23, -29 and -33). nDPI 4.2 keys
 *     draft-34 like its QUIC v2 draft (salt 0xa707c203..., "quicv2" labels) and so fails to
 *     decrypt it; we use draft-34's own keys (those of v1);
 *   - Facebook's mvfst versions 0xfaceb001 (draft-22), 0xfaceb002 (draft-27) and 0xfaceb00e
 *     (experimental, keyed as draft-27);
 *   - Google's T050 and T051 (IETF header and packet protection, own salts, gQUIC frames);
 *   - the reserved versions 0x?a?a?a?a (RFC 9000 15, forcing version negotiation), which
 *     clients protect with their own draft's keys: tried with draft-29's, as nDPI does.
 * Not: drafts up to 22 (nDPI 4.2 neither), Google's Q0xx (QUIC crypto, no TLS; nDPI reads
 * their CHLO), the QUIC v2 drafts 0xff020000 / 0x709a50c4.
 * It derives the client Initial keys (HKDF-SHA256), removes header protection (AES-128-ECB),
 * decrypts (AES-128-GCM), walks the frames and reassembles the CRYPTO stream by offset in a
 * bounded buffer, until the ClientHello handshake message is complete (it may span several
 * CRYPTO frames and several Initial packets, in any order). The caller hands that message to
 * tls_hs.
 * Server Initials and Handshake packets use other keys and are not looked at.
 *
 * Per thread: one struct sn_quic_ctx (the fetched libcrypto objects, decryption and CRYPTO
 * reassembly scratch buffers and the counters). Per flow: one struct sn_quic (keys, CRYPTO
 * reassembly once a ClientHello spans datagrams).
 * Ownership: constructors return owned memory, freed by the matching _free (NULL-safe).
 * Datagram bytes are borrowed for the call; the ClientHello returned by sn_quic_datagram is
 * borrowed from the flow state or the ctx until the next sn_quic_datagram call on any flow
 * of that ctx, sn_quic_free or sn_quic_ctx_free.
 * Thread safety: a ctx and the flows fed through it belong to one thread.
 */
#ifndef SN_QUIC_H
#define SN_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Client datagrams a flow is looked at before giving up without a complete ClientHello. */
#define SN_QUIC_MAX_DATAGRAMS 6u
/* CRYPTO stream bytes buffered per flow (a post-quantum ClientHello is about 1.8 KB). */
#define SN_QUIC_CRYPTO_CAP 8192u

#define SN_QUIC_V1 0x00000001u
#define SN_QUIC_V2 0x6b3343cfu
#define SN_QUIC_DRAFT29 0xff00001du
#define SN_QUIC_MVFST_22 0xfaceb001u
#define SN_QUIC_MVFST_27 0xfaceb002u
#define SN_QUIC_MVFST_EXP 0xfaceb00eu
#define SN_QUIC_T050 0x54303530u
#define SN_QUIC_T051 0x54303531u

/* Only uint64_t counters: pipeline.c sums a set of these word by word. */
struct sn_quic_stats {
    uint64_t flows;         /* flows whose client sent something that looked like an Initial */
    uint64_t initials;      /* client Initial packets decrypted */
    uint64_t client_hellos; /* complete ClientHellos handed on */
    uint64_t bad_packets;   /* Initials that failed: malformed header, frames, or decryption */
    uint64_t gave_up;       /* flows given up on without a ClientHello */
    uint64_t reasm_overflow; /* CRYPTO data beyond SN_QUIC_CRYPTO_CAP */
};

/* sn_quic_datagram results. */
enum { SN_QUIC_MORE = 0, SN_QUIC_HELLO = 1, SN_QUIC_DONE = 2 };

struct sn_quic_ctx;
struct sn_quic;

/* Fetches the hash and ciphers once. Returns owned, or NULL with SN_ERR set. */
struct sn_quic_ctx *sn_quic_ctx_new(void) __attribute__((warn_unused_result));
void sn_quic_ctx_free(struct sn_quic_ctx *cx);
/* The counters (borrowed). */
const struct sn_quic_stats *sn_quic_ctx_stats(const struct sn_quic_ctx *cx);

/* Cheap test on a UDP payload: a long-header Initial of a version we decrypt, padded to the
 * 1200 bytes a client's Initial datagram must have (RFC 9000 14.1). len is the payload length
 * per the IP header. */
bool sn_quic_looks_initial(const uint8_t *p, size_t caplen, size_t len);

/* Per-flow state (no buffer until an Initial decrypts), using cx (borrowed: it must outlive
 * the flow state). Returns owned, or NULL (SN_ERR). */
struct sn_quic *sn_quic_new(struct sn_quic_ctx *cx) __attribute__((warn_unused_result));
void sn_quic_free(struct sn_quic *q);

/* Feeds one client-to-server datagram (caplen captured bytes). Returns SN_QUIC_HELLO with
 * *hello / *hello_len set to the whole ClientHello handshake message (4-byte header
 * included) once it is complete, SN_QUIC_DONE once the flow is given up on (or was done
 * already), else SN_QUIC_MORE. Never fails otherwise: bad packets are counted. */
int sn_quic_datagram(struct sn_quic *q, const uint8_t *p, size_t caplen, const uint8_t **hello,
                     size_t *hello_len);

/* CRYPTO data has arrived (the ClientHello is under way). */
bool sn_quic_started(const struct sn_quic *q);
/* The version of the flow's first decrypted Initial, 0 before one. */
uint32_t sn_quic_version(const struct sn_quic *q);
/* The names of the versions above, after Wireshark's: "1", "2", "draft-23".."draft-34",
 * "mvfst-draft-22", "mvfst-draft-27", "mvfst-exp", "T050", "T051", "forcing-vn" (any
 * 0x?a?a?a?a); NULL for other values. */
const char *sn_quic_version_name(uint32_t v);
/* Bytes this flow's state holds now. */
size_t sn_quic_mem(const struct sn_quic *q);

/* Exposed for tests: the client Initial key, IV and header-protection key (RFC 9001 5.2)
 * for a Destination Connection ID. Returns 0 or -EINVAL (unknown version) / -ENOMEM. */
int sn_quic_client_keys(struct sn_quic_ctx *cx, uint32_t version, const uint8_t *dcid,
                        size_t dcid_len, uint8_t key[16], uint8_t iv[12], uint8_t hp[16])
    __attribute__((warn_unused_result));

#endif
