/* flow: the bidirectional flow table.
 *
 * Flows are keyed by a canonical 5-tuple (lower address/port first) plus, optionally, the
 * VLAN id. The table is a preallocated pool of `max` entries with a hash index and two
 * recency lists: open flows (idle timeout) and closing flows (TCP FIN from both sides or RST:
 * a short linger so the final ACKs still belong to the flow). When the pool is full the least
 * recently active flow is evicted (end reason "evicted") and counted. Time is packet time,
 * so replay is deterministic. No allocation after sn_flow_table_new: the pool is allocated
 * there in full (sizeof(struct sn_flow) = 328 bytes per entry, plus 8 to 16 bytes of hash index
 * per entry); the pool's pages are touched only as entries are first used, the hash index's
 * at once (mem.h: it is read before it is written).
 *
 * Who is the client: the sender of a SYN without ACK (or the receiver of a SYN+ACK). For a
 * TCP flow first seen mid-stream, the side with the lower port is the server (ties: the
 * first sender is the client). For UDP and other protocols, the first sender is the client,
 * unless its port is below 1024 and the other is not (the capture began with a reply).
 *
 * Ownership: the table owns its flows; a struct sn_flow pointer handed to a callback is
 * valid until the callback returns (end) or the next table call (lookup).
 * Thread safety: one table per worker thread.
 */
#ifndef SN_FLOW_H
#define SN_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct sn_pkt;

#define SN_FLOW_DEFAULT_MAX 262144u
#define SN_FLOW_DEFAULT_IDLE 120u    /* seconds */
#define SN_FLOW_DEFAULT_ACTIVE 1800u /* seconds */
#define SN_FLOW_CLOSED_LINGER_US 5000000 /* microseconds after FIN+FIN or RST */
#define SN_FLOW_EXPIRE_BUDGET 64u    /* flows expired per packet at most */

enum sn_flow_end {
    SN_FLOW_END_NONE = 0,
    SN_FLOW_END_FIN,
    SN_FLOW_END_RST,
    SN_FLOW_END_IDLE,
    SN_FLOW_END_ACTIVE, /* interim record of a long flow; the flow goes on */
    SN_FLOW_END_EVICTED,
    SN_FLOW_END_END, /* end of input */
};

struct sn_flow_dir {
    uint64_t pkts, bytes, payload; /* bytes: IP bytes; payload: L4 payload bytes */
    int64_t first_us, last_us;     /* 0 when no packet in this direction yet */
    uint8_t tcp_flags;             /* OR of flags seen */
};

struct sn_flow_key {
    struct sn_addr lo, hi;
    uint16_t lo_port, hi_port;
    uint16_t vlan;
    uint8_t proto;
};

struct sn_tls;
struct sn_classify_flow;
struct sn_agg_flow;

struct sn_flow {
    /* table bookkeeping */
    struct sn_flow *hnext;
    struct sn_flow *prev, *next; /* recency list */
    uint32_t hash;
    uint8_t list; /* which recency list: 0 free, 1 open, 2 closing */

    struct sn_flow_key key;
    struct sn_addr client, server;
    uint16_t client_port, server_port;
    uint8_t proto;
    uint8_t ipver;
    bool mid_stream; /* first packet was not a SYN (TCP) */
    bool fin[2];     /* FIN seen per direction (0 client->server) */
    bool rst;
    enum sn_flow_end end_reason; /* set when the flow is closing or ends */

    int64_t first_us, last_us;
    int64_t interval_us; /* start of the current reporting interval (active timeout) */
    struct sn_flow_dir d[2]; /* 0 client->server, 1 server->client, since interval_us */
    uint64_t records;        /* interim records emitted so far */

    uint16_t vlan;
    uint8_t tunnel;
    uint32_t tunnel_id;
    struct sn_addr outer_src, outer_dst;

    /* per-flow state of later stages, owned by the pipeline */
    struct sn_tls *tls;
    struct sn_classify_flow *cls;
    struct sn_agg_flow *agg;
    uint32_t l7_pkts; /* packets fed to classification */
    bool cls_done, settled;
};

/* Only uint64_t counters: pipeline.c sums a set of these word by word. */
struct sn_flow_stats {
    uint64_t created, ended, evicted, active_records, timeouts_idle, closed;
    uint64_t no_ports; /* packets of port-less protocols or non-first fragments */
};

/* Called when a flow ends (or, for SN_FLOW_END_ACTIVE, reaches the active timeout; the
 * counters are reset to start the next interval after it returns). */
typedef void (*sn_flow_end_fn)(void *ctx, struct sn_flow *f, enum sn_flow_end why);

struct sn_flow_cfg {
    uint32_t max;
    uint32_t idle_s, active_s;
    bool vlan_key;
    sn_flow_end_fn on_end;
    void *ctx;
};

struct sn_flow_table;

/* Returns owned table, or NULL (SN_ERR has the reason). */
struct sn_flow_table *sn_flow_table_new(const struct sn_flow_cfg *cfg);
void sn_flow_table_free(struct sn_flow_table *t);

/* Finds or creates the flow of a decoded packet, accounts the packet to it, and reports
 * its direction in *dir (0 client->server). Expires idle flows first (bounded work).
 * Returns NULL only for packets that cannot belong to a flow (never when the table is
 * full: the oldest flow is evicted). *is_new is set for a new flow. */
struct sn_flow *sn_flow_packet(struct sn_flow_table *t, const struct sn_pkt *p, int *dir,
                               bool *is_new);

/* Ends every flow whose timeout has passed at `now_us` (all of them when budget is 0). */
void sn_flow_expire(struct sn_flow_table *t, int64_t now_us, unsigned budget);

/* Ends every flow (end of input): open flows with SN_FLOW_END_END, closing ones with their
 * FIN/RST reason, oldest activity first. */
void sn_flow_flush(struct sn_flow_table *t);

const struct sn_flow_stats *sn_flow_stats(const struct sn_flow_table *t);
uint32_t sn_flow_active(const struct sn_flow_table *t);

const char *sn_flow_end_name(enum sn_flow_end why);
/* "tcp", "udp", "icmp", "icmp6", or the number as text in buf. */
const char *sn_flow_proto_name(uint8_t proto, char *buf, size_t len);

#endif
