/* tls: per-flow TLS stream tracking: bounded TCP reassembly of the handshake, the record
 * layer, handshake message reassembly (messages spanning records, several per record),
 * hand-off of complete messages to tls_hs, and cheap tracking of record boundaries after
 * the handshake (application_data records counted per direction, for fingerprints).
 *
 * Detection is by content on any port. A flow whose first client bytes are not a TLS
 * ClientHello (or SSLv2 hello) is marked not-TLS and costs nothing afterwards.
 *
 * Ownership: sn_tls_new returns owned memory freed by sn_tls_free (NULL-safe). Payload bytes
 * are borrowed for the call only. Thread safety: one flow, one thread.
 */
#ifndef SN_TLS_H
#define SN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_json;
struct sn_tls_meta;
struct sn_quic_ctx;

#define SN_TLS_DEFAULT_REASM_CAP 16384u
#define SN_TLS_DEFAULT_FIRST_RECORDS 8u

/* Called for each TLS record whose header the tracker has seen (handshake, alert,
 * application data, ...), in stream order per direction. */
typedef void (*sn_tls_record_fn)(void *ctx, int dir, uint8_t content_type, uint32_t len,
                                 int64_t ts_us);

struct sn_tls_fp_memo;

struct sn_tls_cfg {
    uint32_t reasm_cap;     /* bytes buffered per direction before giving up */
    uint32_t first_records; /* sizes of the first N records per direction kept for output */
    sn_tls_record_fn on_record; /* may be NULL */
    void *ctx;
    struct sn_quic_ctx *quic; /* per-thread QUIC decryption (borrowed); NULL: no QUIC */
    struct sn_tls_fp_memo *fp_memo; /* JA3/JA4 digest memo (tls_fp.h; borrowed); may be NULL */
};

/* Per-module counters (summed across workers when read). */
/* Only uint64_t counters: pipeline.c sums a set of these word by word. */
struct sn_tls_stats {
    uint64_t flows_tls, flows_not_tls, client_hellos, server_hellos, certificates;
    uint64_t malformed, reasm_overflow, reasm_gaps, desync;
};

struct sn_tls;

struct sn_tls *sn_tls_new(const struct sn_tls_cfg *cfg, struct sn_tls_stats *st);
void sn_tls_free(struct sn_tls *t);

/* Feeds one TCP segment's payload. dir: 0 = client to server, 1 = server to client.
 * seq: the segment's sequence number; syn: the segment had SYN (its seq is the ISN, data
 * starts at seq + 1). payload/caplen: the captured payload; len: the payload length per the
 * IP header (len > caplen means the capture cut the segment: a gap). */
void sn_tls_segment(struct sn_tls *t, int dir, uint32_t seq, bool syn, const uint8_t *payload,
                    size_t caplen, size_t len, int64_t ts_us);

/* False once the flow is known not to be TLS, or once both handshake parsing and record
 * tracking need no more payload: the caller may stop calling sn_tls_segment. */
bool sn_tls_wants_payload(const struct sn_tls *t);
bool sn_tls_is_tls(const struct sn_tls *t);
/* True when record boundaries are being followed in that direction (else the tracker lost
 * sync and fingerprints fall back to packet bursts). */
bool sn_tls_synced(const struct sn_tls *t, int dir);

/* Does this TCP payload start with a TLS application_data record header (TLS 1.0-1.3 record
 * version, sane length)? A flow picked up mid-stream shows that much of being TLS. */
bool sn_tls_app_record_start(const uint8_t *p, size_t caplen);

/* The handshake metadata (borrowed, never NULL once sn_tls_new succeeded). */
const struct sn_tls_meta *sn_tls_meta(const struct sn_tls *t);

/* Writes `"tls": {...}` into the current object if the flow is TLS; nothing otherwise. */
void sn_tls_json(const struct sn_tls *t, struct sn_json *j);

/* QUIC ------------------------------------------------------------------------------- */

/* A UDP flow whose client sent what looks like a QUIC Initial (sn_quic_looks_initial):
 * the ClientHello is taken from the client's Initial packets (see quic.h) instead of a TCP
 * stream. Needs cfg->quic. Returns owned (free with sn_tls_free), or NULL with SN_ERR set. */
struct sn_tls *sn_tls_new_quic(const struct sn_tls_cfg *cfg, struct sn_tls_stats *st);
/* Feeds one UDP payload of such a flow (dir 1 is ignored: only client Initials are read).
 * Once the ClientHello is in, the flow is TLS (sn_tls_is_tls) and wants no more payload;
 * if it gives up first, it is not TLS. */
void sn_tls_datagram(struct sn_tls *t, int dir, const uint8_t *payload, size_t caplen);
/* True for a flow made by sn_tls_new_quic. */
bool sn_tls_is_quic(const struct sn_tls *t);
/* QUIC flows: a client Initial decrypted (the flow is QUIC for sure, ClientHello or not). */
bool sn_tls_quic_decrypted(const struct sn_tls *t);
/* QUIC flows: part of the ClientHello is in and the rest is still awaited. */
bool sn_tls_quic_partial(const struct sn_tls *t);

/* Additions (tls stream helper) ------------------------------------------------------- */

/* True while that direction holds a reassembly buffer (handshake not yet seen). */
bool sn_tls_buffering(const struct sn_tls *t, int dir);
/* Bytes this flow's TLS state holds now (struct, record-size arrays, reassembly buffers),
 * for the flow table's memcap. */
size_t sn_tls_mem(const struct sn_tls *t);
/* application_data records seen in that direction and their total length (record body
 * bytes). Either out pointer may be NULL. */
void sn_tls_app_counts(const struct sn_tls *t, int dir, uint64_t *records, uint64_t *bytes);
/* Sizes (record body lengths) of the first cfg.first_records records of that direction, in
 * stream order; returns how many are stored. *sizes is borrowed from t. */
size_t sn_tls_first_records(const struct sn_tls *t, int dir, const uint32_t **sizes);

#endif

