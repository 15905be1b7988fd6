/* decode: link layer to L4, through tunnels, into a struct sn_pkt.
 *
 * Supported link types (DLT_*): EN10MB (with 802.1Q/802.1ad/QinQ tags incl. 0x9100/0x9200
 * TPIDs, MPLS label stacks, PPPoE sessions, 802.2 SNAP), LINUX_SLL, LINUX_SLL2,
 * RAW/IPV4/IPV6 (DLT 12, 14, 101, 228, 229), NULL and LOOP (BSD loopback), PPP, PPP_SERIAL
 * (RFC 1662 or Cisco HDLC framing) and C_HDLC. Tunnels: GRE (incl. ERSPAN type I, II and
 * III, transparent Ethernet bridging), VXLAN (UDP 4789), VXLAN-GPE (4790), GENEVE (6081),
 * GTP-U G-PDU (2152) and IP-in-IP (4, 41); they are decapsulated only for unfragmented
 * packets. The packet describes the innermost flow, the outermost IP addresses are kept in
 * outer_*. IPv6 extension headers are walked (ESP and No Next Header end the walk); a
 * zero IP length (TCP segmentation offload) takes the frame's length.
 * All wire reads go through struct sn_cur; nothing past caplen is read. No allocation.
 * Thread safety: one struct sn_decode per thread (it holds counters).
 */
#ifndef SN_DECODE_H
#define SN_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct sn_json;

enum sn_tunnel { SN_TUN_NONE = 0, SN_TUN_GRE, SN_TUN_ERSPAN2, SN_TUN_ERSPAN3, SN_TUN_VXLAN,
                 SN_TUN_GENEVE,
                 /* additions */
                 SN_TUN_VXLAN_GPE, /* UDP 4790, draft-ietf-nvo3-vxlan-gpe */
                 SN_TUN_GTPU,      /* UDP 2152, 3GPP TS 29.281 G-PDU; id = TEID */
                 SN_TUN_IPIP,      /* IP protocol 4 / 41 (IPv4 or IPv6 in IP) */
                 SN_TUN_ERSPAN1,   /* GRE 0x88BE without sequence number: no ERSPAN header */
                 SN_TUN_MAX };

/* Nesting limits: more tunnels, or more VLAN tags + MPLS labels in total, give
 * SN_DEC_TOO_DEEP. */
#define SN_DECODE_MAX_TUNNELS 4
#define SN_DECODE_MAX_TAGS 8

struct sn_pkt {
    int64_t ts_us;
    uint32_t caplen, wirelen;

    /* innermost IP header */
    uint8_t ipver; /* 4 or 6 */
    struct sn_addr src, dst;
    uint8_t proto;       /* IP protocol number of the L4 header (after IPv6 ext headers) */
    uint8_t ttl;         /* TTL / hop limit */
    uint32_t ip_len;     /* IP bytes of this packet per its header (total length, or 40 +
                            payload length for IPv6), not capped by caplen */
    const uint8_t *l3;   /* borrowed: start of the innermost IP header */
    size_t l3_caplen;    /* captured bytes from l3 on, at most ip_len (no L2 padding) */

    /* fragments: only the first fragment (offset 0) carries ports */
    bool frag;       /* any fragment (MF set or offset > 0) */
    bool frag_first; /* offset 0 (also true for unfragmented packets) */

    /* L4 */
    uint16_t sport, dport;   /* 0 for protocols without ports */
    uint8_t tcp_flags;       /* SN_TCP_* */
    uint32_t seq, ack;
    uint32_t payload_len;    /* L4 payload bytes per the IP length fields (UDP: per the UDP
                                length, which may not exceed the IP one); 0 for non-first
                                fragments */
    const uint8_t *payload;  /* borrowed: L4 payload; NULL when payload_caplen is 0 */
    size_t payload_caplen;   /* captured payload bytes (<= payload_len); 0 when TCP options
                                were cut by snaplen (ports/flags/seq are still set) */
    uint8_t icmp_type, icmp_code; /* ICMP / ICMPv6 (addition) */

    /* L2 */
    uint16_t vlan; /* outermost 802.1Q/802.1ad VLAN id, 0 if none */

    /* tunnel */
    enum sn_tunnel tunnel; /* outermost tunnel, SN_TUN_NONE if none */
    uint32_t tunnel_id;    /* of the outermost tunnel: VNI, ERSPAN session id, GRE key, GTP
                              TEID; 0 if none */
    struct sn_addr outer_src, outer_dst; /* the outermost IP header's addresses (equal to
                                            src/dst when there is no tunnel) */
};

#define SN_TCP_FIN 0x01
#define SN_TCP_SYN 0x02
#define SN_TCP_RST 0x04
#define SN_TCP_PSH 0x08
#define SN_TCP_ACK 0x10
#define SN_TCP_URG 0x20
#define SN_TCP_ECE 0x40
#define SN_TCP_CWR 0x80

/* Why a packet did not yield an IP flow; each reason is a counter. */
enum sn_decode_reason {
    SN_DEC_OK = 0,
    SN_DEC_NON_IP,          /* ARP, LLDP, STP, ...: not an error */
    SN_DEC_TRUNC_L2,
    SN_DEC_TRUNC_IP,
    SN_DEC_TRUNC_L4,
    SN_DEC_BAD_IP_VERSION,
    SN_DEC_BAD_IP_HDRLEN,
    SN_DEC_BAD_IP_LEN,      /* total length lies (shorter than header, etc.) */
    SN_DEC_BAD_IP6_EXT,
    SN_DEC_BAD_TCP_HDRLEN,
    SN_DEC_BAD_UDP_LEN,
    SN_DEC_BAD_TUNNEL,
    SN_DEC_TOO_DEEP,        /* too many nested tunnels or tags */
    SN_DEC_UNSUPPORTED_LINK,
    SN_DEC_REASON_MAX
};

struct sn_decode_stats {
    uint64_t packets, ipv4, ipv6, tcp, udp, icmp, icmp6, other_l4, fragments, tunneled;
    uint64_t reason[SN_DEC_REASON_MAX];
};

struct sn_decode {
    struct sn_decode_stats st;
};

void sn_decode_init(struct sn_decode *d);

/* True if the link type (a DLT_ value) is decoded. */
bool sn_decode_linktype_ok(int dlt);

/* Decodes one captured frame. Returns SN_DEC_OK (0) when pkt describes an IP packet
 * (ports/flags set when the L4 header was there), else the reason (also counted in d->st).
 * On any other result pkt is zeroed or partly filled and must not be used as a flow.
 * A TRUNC_* result means the frame ended inside a header: for TCP that is the 20-byte fixed
 * header (options cut by snaplen still give OK, with payload_caplen 0).
 * pkt points into data (borrowed for the caller's callback only). */
enum sn_decode_reason sn_decode_packet(struct sn_decode *d, int dlt, const uint8_t *data,
                                       uint32_t caplen, uint32_t wirelen, int64_t ts_us,
                                       struct sn_pkt *pkt);

/* Counter name for a reason, e.g. "trunc_ip". */
const char *sn_decode_reason_name(enum sn_decode_reason r);
/* Short name of a tunnel type: "none", "gre", "erspan2", ..., "unknown" (addition). */
const char *sn_decode_tunnel_name(enum sn_tunnel t);

/* Writes the counters as members of the current JSON object (caller opens it). */
void sn_decode_stats_json(const struct sn_decode_stats *st, struct sn_json *j);
/* Adds b into a (summing worker counters). */
void sn_decode_stats_add(struct sn_decode_stats *a, const struct sn_decode_stats *b);

#endif
