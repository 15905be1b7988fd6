/* classify: application protocol classification with nDPI.
 *
 * The only module that includes nDPI's headers. One struct sn_classify (an nDPI detection
 * module) per worker thread; one struct sn_classify_flow per flow. The pipeline feeds each
 * packet's IP header onwards (no L2) to sn_classify_packet() until it returns false, then
 * calls sn_classify_finish() when the flow ends (or earlier, when it wants a result), and
 * reads the result with sn_classify_app_name() / sn_classify_json().
 *
 * Feeding stops by itself once nDPI has a protocol and no further dissection is useful, or
 * SN_CLASSIFY_REFINE_PKTS packets after the first result (nDPI would otherwise go on for
 * metadata we do not use, e.g. certificates or SSH key exchanges), or after cfg.max_pkts; at that
 * point an unclassified flow is given up on (nDPI may guess by port or address) and the
 * nDPI per-flow state is released, so a long flow keeps only a few bytes here.
 *
 * Names: "TLS.YouTube" (master.app) when nDPI knows both, else the one it knows, else
 * "Unknown". Custom protocols from cfg.protos_file (nDPI's protocols file format, see
 * rules/ndpi-protos.txt) give names such as "TLS.OpenAI" even where nDPI has no such id.
 *
 * Ownership: sn_classify_new() returns owned; sn_classify_flow_new() returns owned (free it
 * with sn_classify_flow_free() on the same struct sn_classify). Packet bytes are borrowed for
 * the call only. Returned strings are borrowed from the flow (valid until the flow is freed
 * or fed again).
 * Thread safety: an sn_classify and its flows are used by one thread only. Creating several
 * sn_classify at once from different threads is not allowed by nDPI: create them one after
 * the other (e.g. at start-up, before the workers run).
 */
#ifndef SN_CLASSIFY_H
#define SN_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_addr;
struct sn_json;

#define SN_CLASSIFY_DEFAULT_MAX_PKTS 24u
#define SN_CLASSIFY_REFINE_PKTS 4u /* packets fed after the first result, at most */
#define SN_CLASSIFY_NAME_MAX 64 /* longest name kept, with the NUL */

struct sn_classify_cfg {
    unsigned max_pkts;       /* stop feeding after this many packets per flow; 0: default */
    const char *protos_file; /* nDPI custom protocols file, or NULL; borrowed for the call */
};

/* Only uint64_t counters: pipeline.c sums a set of these word by word. */
struct sn_classify_stats {
    uint64_t flows;      /* sn_classify_flow_new() calls that succeeded */
    uint64_t classified; /* flows nDPI classified by inspection */
    uint64_t guessed;    /* flows that got a protocol only from the give-up guess */
    uint64_t unknown;    /* flows that ended without any protocol */
    uint64_t by_sni;     /* TLS/QUIC flows named from our parser's SNI (sn_classify_tls) */
    uint64_t pkts_fed;   /* packets handed to nDPI */
    uint64_t bad_pkts;   /* packets refused: too short, or not IPv4/IPv6 */
};

struct sn_classify;
struct sn_classify_flow;

/* A detection module with nDPI's default protocols plus cfg->protos_file (if set). cfg may
 * be NULL (defaults). Returns owned, or NULL with SN_ERR set (for an unreadable or invalid
 * protos file the message names the file). Not thread safe (see above). */
struct sn_classify *sn_classify_new(const struct sn_classify_cfg *cfg)
    __attribute__((warn_unused_result));
/* Accepts NULL. All flows of c must have been freed before. */
void sn_classify_free(struct sn_classify *c);

/* Per-flow state (the nDPI flow struct comes from nDPI's own allocator). Returns owned, or
 * NULL with SN_ERR set on allocation failure. */
struct sn_classify_flow *sn_classify_flow_new(struct sn_classify *c)
    __attribute__((warn_unused_result));
/* Accepts NULL. */
void sn_classify_flow_free(struct sn_classify *c, struct sn_classify_flow *f);

/* Feeds one packet. l3 points to the IPv4 or IPv6 header, l3_len is the number of captured
 * bytes from there (borrowed), ts_us the packet time, dir 0 = client to server, 1 = server to
 * client. Returns true while nDPI still wants packets; false once the flow is classified and
 * no more dissection is useful, after max_pkts packets, or when f is NULL or finished. */
bool sn_classify_packet(struct sn_classify *c, struct sn_classify_flow *f, const uint8_t *l3,
                        size_t l3_len, int64_t ts_us, int dir);

/* Classifies a TLS flow from the SNI of its ClientHello, as read by our own parser, instead
 * of feeding nDPI the handshake: nDPI's host-name matcher names the application ("TLS.Google",
 * a custom protocol from cfg.protos_file, or plain "TLS", with nDPI's guess from its address
 * lists when the name does not match ("TLS.AmazonAWS"); "TLS.IMAPS" etc. on the implicit-TLS
 * mail ports, as nDPI's TLS dissector refines them), and classification ends (nDPI's per-flow
 * state is released). Returns false, doing nothing, when sni is NULL or empty, or the flow's
 * classification is over already. */
/* Over QUIC (SN_CLASSIFY_TLS_QUIC) the names are nDPI's QUIC ones: "QUIC.YouTube", or "QUIC"
 * (with the address-list guess, "QUIC.Azure"), no port refinement; there a NULL or empty sni
 * (a QUIC flow without a usable ClientHello) gives "QUIC" plus the address guess.
 * SN_CLASSIFY_TLS_DOQ is QUIC whose ClientHello offers "doq..." first (DNS over QUIC, RFC
 * 9250 and its drafts): nDPI's QUIC dissector then says "QUIC.DoH_DoT", whatever the SNI. */
enum sn_classify_tls_over { SN_CLASSIFY_TLS_TCP, SN_CLASSIFY_TLS_QUIC, SN_CLASSIFY_TLS_DOQ };
bool sn_classify_tls(struct sn_classify *c, struct sn_classify_flow *f,
                     enum sn_classify_tls_over over, const char *sni,
                     const struct sn_addr *client, uint16_t client_port,
                     const struct sn_addr *server, uint16_t server_port);

/* Ends classification: if nDPI has no protocol yet it gives up (and may guess from ports or
 * addresses). Idempotent; later sn_classify_packet() calls return false. Accepts NULL f. */
void sn_classify_finish(struct sn_classify *c, struct sn_classify_flow *f);

/* True once the flow has a protocol (by inspection or by guess). */
bool sn_classify_known(const struct sn_classify_flow *f);

/* "TLS.Google", "DNS", "QUIC.YouTube", "Unknown"... Borrowed from f. NULL f: "Unknown". */
const char *sn_classify_app_name(const struct sn_classify *c, const struct sn_classify_flow *f);

/* Writes the member "app": {"proto": "TLS.YouTube", "master": "TLS", "app": "YouTube",
 * "category": "Media"} into the current JSON object. "master" is the lower protocol (or the
 * only one), "app" is present only for a two-level result, "category" only when nDPI has one,
 * "guessed": true only when the result is a give-up guess. An unclassified flow gives
 * {"proto": "Unknown"}. Writes nothing for a NULL f. */
void sn_classify_json(const struct sn_classify *c, const struct sn_classify_flow *f,
                      struct sn_json *j);

/* A copy of the counters of c (zeroes for NULL). */
struct sn_classify_stats sn_classify_stats(const struct sn_classify *c);

/* nDPI's version string as linked (ndpi_revision()), for logs. Borrowed, static. */
const char *sn_classify_ndpi_version(void);

#endif
