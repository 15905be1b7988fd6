/* agg: per-client, per-service windowed volume fingerprints.
 *
 * A flow record says one connection happened; a fingerprint says how one client used one
 * service during one time window, in a form that lets a consumer find the same behaviour
 * behind other addresses (deploy/schema/fingerprint.schema.json describes each field).
 *
 * Windows. Tumbling, cfg.window_s long (default 60), aligned to the Unix epoch, on packet
 * timestamps (never wall time), so replaying a capture gives the same output. Every packet
 * counts in the window its timestamp falls in. A window closes once a packet time (or
 * sn_agg_advance's now) passes its end + cfg.grace_s; sn_agg_finish closes all. A packet for
 * a window that already closed (late beyond the grace) counts in the oldest open window
 * (stats.late_pkts), so totals stay exact.
 *
 * Key: client x service. Client = the client address (cfg.client_key SN_CLIENT_IP), its
 * prefix (SN_CLIENT_PREFIX: /prefix4, /prefix6), or address + "|" + JA4 (SN_CLIENT_IP_JA4).
 * With a pseudonymisation key the address is replaced before anything is written (see
 * pseudo.h): opaque "p:<16 hex>" or, with cfg.pseudo_prefix_preserving, a prefix-preserving
 * address. Service = the rules label, else the registrable domain of the SNI (regdom.h),
 * else "AS<n>" of the server ASN, else the server address. With SN_CLIENT_IP_JA4 a flow
 * settled before its JA4 is known gets "<addr>|-".
 *
 * Settling. Packets arrive before the service is known (SYN, ClientHello). Until
 * sn_agg_flow_settle() the flow keeps its counts per window in its own state (at most two
 * windows, a few exchanges, a few records); at settle they are added to the entries of the
 * windows they were seen in. If a window must close, or the flow's pending space runs out,
 * before settle, the flow is settled provisionally (service from server ASN, else server IP;
 * stats.forced_settles). A later settle then only updates SNI/JA4/JA3/ALPN for later windows:
 * a flow's key never changes once settled (stats.late_settles).
 *
 * Exchanges. A request is a run of client->server application data; its response is the run
 * of server->client data that follows, until the client sends the next request, the flow
 * ends, or the window of the response's last byte closes with no data since (the response
 * was idle for at least the grace period). Exchanges count in the window in which they
 * complete. Two methods:
 *  - "records": TLS application_data records (content type 23) from the stream tracker
 *    (sn_agg_record with synced = true). Handshake records are not exchanges. Response
 *    records per exchange = streamed-chunk count.
 *  - "bursts": TCP/UDP payload runs from sn_agg_packet, for non-TLS flows and once the
 *    tracker lost record sync (sn_agg_desync). No record counts.
 *  A client record/packet smaller than SN_AGG_CTRL_MAX bytes during a response does not end
 *  it (HTTP/2 WINDOW_UPDATE, PING and SETTINGS ACK frames, TLS 1.3 KeyUpdate). HTTP/2 and
 *  HTTP/3 multiplex: a real request sent while another response still streams ends that
 *  exchange early, and concurrent responses merge into one; so an exchange is one turn of
 *  the conversation (client speaks, server answers), not one HTTP request. TLS 1.3 sends its
 *  encrypted handshake as application data: server data before any request is ignored, and
 *  a first client record of exactly 53 or 69 bytes (the encrypted Finished) is not a request,
 *  so session tickets sent after it are ignored too; a ticket that arrives after the first
 *  request started counts as the start of its response.
 *  Time to first byte = first response byte time - last request byte time; response duration
 *  = last - first response byte time; gap = next request start - previous response end.
 *
 * Histograms: 32 bins, bin(v) = 0 for v = 0, else min(31, floor(log2 v) + 1), i.e. bin b >= 1
 * holds [2^(b-1), 2^b); bin 31 holds everything >= 2^30. Times in microseconds.
 *
 * Other fields: flows.active = flows with any event in the window; flows.started/ended by
 * the window of sn_agg_flow_start/_end. flow_bytes_down = the flow's down IP bytes over its
 * whole life and flow_duration_us = its last packet - its start, both added at flow end.
 * Categorical values (SNI, JA4, JA3, ALPN, server ASN) count once per active flow and
 * window: the first SN_AGG_TOPK distinct values exactly, later ones in "<field>_other".
 *
 * SimHash ("simhash", 16 hex digits; simhash.h has the hash and the bit rule). Features, in
 * this order, each a string with an integer weight; share(c, t) = floor((2000 c + t) / 2t),
 * i.e. round(1000 c / t) with halves up:
 *  1. for each histogram, in the order of the "hist" object, with total t = sum of its bins
 *     (skipped when t = 0), for each bin b in 0..31 with s_b = c[b-1] + 2 c[b] + c[b+1] > 0
 *     (c[-1] = c[32] = 0): "h:<name>:<b>" (b in decimal) weight share(s_b, 4 t);
 *  2. if up + down bytes > 0: "ratio:<sign><q>" weight 1000, q = floor(log2(floor((hi + 1) /
 *     (lo + 1)))) with hi/lo the larger/smaller of down and up bytes, sign "-" when
 *     down < up and q > 0, else "+" (balanced traffic is "+0");
 *  3. for each listed "ja4" value v with count n, t = sum of counts + ja4_other: "ja4:<v>"
 *     weight share(n, t); then the same for "alpn" ("alpn:<v>");
 *  4. "service:<service.name>" weight 500.
 * Everything needed is in the record itself, so a consumer can recompute and check it.
 *
 * Bounds. cfg.max_entries live client x service entries per window; beyond it traffic goes
 * to the window's single overflow entry (client "*", service "*", "overflow": true;
 * stats.overflow_*). cfg.max_flows flow states (sn_agg_flow_start returns NULL beyond it;
 * every call accepts a NULL flow and counts that traffic in the overflow entry). Per flow
 * about 1.5 KB, per entry about 5 KB, allocated once per flow/entry (never per packet) and
 * reused. Fixed per aggregator: the window indexes (24 to 40 bytes x max_entries per window,
 * plus a sort buffer), a 1024-slot client id cache (85 KB) and one record buffer sized for
 * the largest record (32 KB + 6 x the sensor id). The totals reconcile exactly: summed over
 * all fingerprints (overflow included), up/down pkts and bytes equal what was passed to
 * sn_agg_packet.
 *
 * Output order is deterministic: windows in time order; in a window entries sorted by client
 * key then service (bytewise), the overflow entry last.
 *
 * Typical pipeline calls, per flow:
 *   f = sn_agg_flow_start(a, &fi, ts);            // at flow creation: addresses, port, geo
 *   sn_agg_packet(a, f, dir, ip_len, payload_len, ts);     // every packet, before TLS
 *   sn_agg_record(a, f, dir, ct, len, ts, sn_tls_synced(t, dir)); // from tls on_record
 *   sn_agg_flow_settle(a, f, &fi);                 // once SNI/JA4/label known (or at end)
 *   sn_agg_desync(a, f);                           // if the TLS tracker lost sync
 *   sn_agg_flow_end(a, f, ts);                     // flow ends or is evicted; f is freed
 * and sn_agg_advance(a, now) on idle ticks (live), sn_agg_finish(a) at end of input.
 * Not at interim (active-timeout) flow records: the flow goes on. With several workers, give
 * all flows of one client address (or prefix) to the same worker, or the same key appears
 * once per worker and window.
 *
 * Ownership: sn_agg_new returns owned memory (sn_agg_free, NULL-safe); cfg strings and key
 * are copied. All strings passed in are borrowed for the call. The emit callback's key and
 * json are borrowed for the call. Thread safety: one struct sn_agg per worker thread.
 */
#ifndef SN_AGG_H
#define SN_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h" /* enum sn_client_key */

#define SN_AGG_DEFAULT_WINDOW_S 60u
#define SN_AGG_DEFAULT_GRACE_S 5u
#define SN_AGG_DEFAULT_MAX_ENTRIES 4096u
#define SN_AGG_MAX_ENTRIES_LIMIT (1u << 22) /* larger max_entries values are clamped */
#define SN_AGG_DEFAULT_MAX_FLOWS 262144u
#define SN_AGG_DEFAULT_PREFIX4 24u
#define SN_AGG_DEFAULT_PREFIX6 56u
#define SN_AGG_HIST_BINS 32
#define SN_AGG_TOPK 8       /* distinct values kept per categorical field and entry */
#define SN_AGG_CTRL_MAX 48u /* client records/payloads below this do not end a response */
#define SN_AGG_SCHEMA 1

struct sn_agg_cfg {
    unsigned window_s;    /* 0 -> default; >= 1 */
    unsigned grace_s;     /* clamped below window_s */
    unsigned max_entries; /* per window; 0 -> default; at most SN_AGG_MAX_ENTRIES_LIMIT */
    unsigned max_flows;   /* live flow states; 0 -> default */
    enum sn_client_key client_key;
    unsigned prefix4, prefix6; /* for SN_CLIENT_PREFIX; 0 -> defaults 24 / 56 */
    const uint8_t *pseudo_key; /* NULL: addresses in clear */
    size_t pseudo_key_len;
    bool pseudo_prefix_preserving;
    const char *sensor_id; /* may be NULL */
    int64_t run_id;        /* written as "run" after "sensor" when non-zero (live capture) */
    uint64_t *seq; /* optional record sequence counter shared with the pipeline (same thread):
                      when set, each fingerprint gets "seq": ++*seq after "schema" */
};

/* One fingerprint NDJSON line including its final '\n'. key (keylen bytes, no NUL) is the
 * client key as written in "client.id": use it as the partition key. */
typedef void (*sn_agg_emit_fn)(void *ctx, const char *key, size_t keylen, const char *json,
                               size_t len);

/* Facts the pipeline knows about a flow; all strings may be NULL or "" (unknown). */
struct sn_agg_flowinfo {
    struct sn_addr client, server;
    uint16_t server_port;
    const char *service; /* rules label, or NULL */
    const char *sni, *ja4, *ja3;
    const char *alpn; /* negotiated protocol if known, else the client's first offer */
    uint32_t server_asn; /* 0 unknown */
    const char *server_asn_org; /* accepted, not written in schema 1 */
    const char *client_country; /* ISO code */
    uint32_t client_asn;
    const char *client_asn_org;
};

/* Only uint64_t counters: pipeline.c sums a set of these word by word. */
struct sn_agg_stats {
    uint64_t windows_closed, fingerprints, flows_started, flows_ended;
    uint64_t flows_pool_full;             /* sn_agg_flow_start returned NULL */
    uint64_t overflow_entries;            /* windows whose overflow entry was used */
    uint64_t overflow_pkts, overflow_bytes; /* traffic counted in overflow entries */
    uint64_t late_pkts;      /* packets for an already closed window */
    uint64_t forced_settles; /* flows settled provisionally */
    uint64_t late_settles;   /* settle calls after a forced settle */
    uint64_t entry_alloc_fail;
};

struct sn_agg;
struct sn_agg_flow;

struct sn_agg *sn_agg_new(const struct sn_agg_cfg *cfg, sn_agg_emit_fn emit, void *ctx);
/* Frees everything without emitting (call sn_agg_finish first to emit). NULL-safe. */
void sn_agg_free(struct sn_agg *a);

/* A new flow at ts_us. fi needs client, server, server_port; anything else known so far is
 * taken too (geo, ASNs). Returns the flow state (owned by agg: keep the pointer in the flow
 * entry until sn_agg_flow_end), or NULL when cfg.max_flows states are live (counted; pass the
 * NULL on, its traffic goes to the overflow entry). */
struct sn_agg_flow *sn_agg_flow_start(struct sn_agg *a, const struct sn_agg_flowinfo *fi,
                                      int64_t ts_us);

/* Service, SNI, JA4/JA3, ALPN now known. The first call fixes the flow's key (service rule
 * described above; unset fields of fi keep what flow_start had). Later calls update only
 * SNI/JA4/JA3/ALPN. */
void sn_agg_flow_settle(struct sn_agg *a, struct sn_agg_flow *f, const struct sn_agg_flowinfo *fi);

/* Every packet of the flow, exactly those the flow records count (this is the only source
 * of pkts/bytes; records add none). dir 0 = client to server (up), 1 = server to client
 * (down). ip_bytes: the IP length counted in flow records; payload: L4 payload length. */
void sn_agg_packet(struct sn_agg *a, struct sn_agg_flow *f, int dir, uint32_t ip_bytes,
                   uint32_t payload, int64_t ts_us);

/* A TLS record header seen by the stream tracker (tls.h on_record). synced: the tracker
 * follows record boundaries in that direction (sn_tls_synced). Application data (23) drives
 * the records exchange method; other types only switch the flow to records mode. */
void sn_agg_record(struct sn_agg *a, struct sn_agg_flow *f, int dir, uint8_t content_type,
                   uint32_t len, int64_t ts_us, bool synced);

/* The TLS tracker lost record sync on this flow: the exchange in progress completes (as
 * records), and exchanges come from packet bursts from now on. */
void sn_agg_desync(struct sn_agg *a, struct sn_agg_flow *f);

/* The flow ended (FIN/RST, idle or eviction) at ts_us. Settles it if needed, completes its
 * last exchange, adds its duration and bytes to the histograms, and frees f. */
void sn_agg_flow_end(struct sn_agg *a, struct sn_agg_flow *f, int64_t ts_us);

/* Closes (emits) windows whose end + grace < now_us. Packets call it implicitly. */
void sn_agg_advance(struct sn_agg *a, int64_t now_us);
/* Would sn_agg_advance(a, now_us) close a window? */
bool sn_agg_close_due(const struct sn_agg *a, int64_t now_us);

/* End of input: ends every live flow at its last packet time (their pointers become
 * invalid: end flows yourself first if you want another end time), then closes all
 * windows in time order. The agg may be used again afterwards. */
void sn_agg_finish(struct sn_agg *a);

const struct sn_agg_stats *sn_agg_stats(const struct sn_agg *a);

/* Parses "ip", "prefix", "ip+ja4"; returns 0 or -SN_ECONFIG. */
int sn_agg_parse_client_key(const char *s, enum sn_client_key *out)
    __attribute__((warn_unused_result));

/* Parses the 16 hex digits of a "simhash" value into *out; returns 0 or -SN_EPROTO. */
int sn_agg_parse_simhash(const char *hex, uint64_t *out) __attribute__((warn_unused_result));

#endif
