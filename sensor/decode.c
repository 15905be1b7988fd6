#define SN_LOG_MOD "decode"
#include "decode.h"

#include <string.h>

#include "cursor.h"
#include "json.h"

/* The decoder is a small state machine: each step parses one header from the current
 * window (s->c) and names the next header kind, until an L4 header ends the walk. Tunnels
 * restart the walk at an inner Ethernet or IP header with a window that is the tunnel's
 * payload, so nothing past the outer packet's captured bytes is ever read. No recursion,
 * no allocation; nesting is bounded by SN_DECODE_MAX_TUNNELS / SN_DECODE_MAX_TAGS. */

enum next {
    NX_ETH,   /* Ethernet II / 802.3 header */
    NX_ETYPE, /* dispatch on s->etype, the window starts after the ethertype */
    NX_IP,    /* IPv4 or IPv6 by version nibble */
    NX_IP4,
    NX_IP6,
    NX_PPP,  /* PPP protocol field (optionally after FF 03) */
    NX_MPLS, /* MPLS label stack */
    NX_DONE,
};

#define STEP_MAX 64 /* belt and braces over the per-kind limits */

#define ETH_IP4 0x0800
#define ETH_IP6 0x86DD
#define ETH_VLAN 0x8100
#define ETH_QINQ 0x88A8
#define ETH_QINQ_OLD1 0x9100
#define ETH_QINQ_OLD2 0x9200
#define ETH_MPLS_UC 0x8847
#define ETH_MPLS_MC 0x8848
#define ETH_PPPOE_S 0x8864
#define ETH_PPP 0x880B
#define ETH_TEB 0x6558
#define ETH_ERSPAN2 0x88BE
#define ETH_ERSPAN3 0x22EB

#define PORT_VXLAN 4789
#define PORT_VXLAN_GPE 4790
#define PORT_GENEVE 6081
#define PORT_GTPU 2152

#define IP6_EXT_MAX 16

struct dstate {
    struct sn_decode *d;
    struct sn_pkt *pkt;
    struct sn_cur c;   /* the window of the header being parsed */
    uint32_t decl;     /* IP-declared bytes left after the L3 headers (L4 steps only) */
    uint16_t etype;    /* NX_ETYPE input */
    uint8_t proto;     /* L4 protocol after the IP headers */
    uint8_t tunnels, tags, ips;
    bool vlan_set;
    enum next next;
};

static enum sn_decode_reason tunnel_enter(struct dstate *s, enum sn_tunnel t, uint32_t id)
{
    if (++s->tunnels > SN_DECODE_MAX_TUNNELS)
        return SN_DEC_TOO_DEEP;
    if (s->pkt->tunnel == SN_TUN_NONE) {
        s->pkt->tunnel = t;
        s->pkt->tunnel_id = id;
    }
    return SN_DEC_OK;
}

/* IEEE 802.3 clause 3.2: dst(6) src(6) type/length(2). A length (<= 1500) means an 802.2
 * LLC header follows; only SNAP (AA AA 03, OUI, type) carries an ethertype. */
static enum sn_decode_reason step_eth(struct dstate *s)
{
    sn_cur_skip(&s->c, 12);
    uint16_t t = sn_cur_u16(&s->c);
    if (s->c.err)
        return SN_DEC_TRUNC_L2;
    if (t <= 1500) {
        uint32_t llc = sn_cur_u24(&s->c);
        if (s->c.err)
            return SN_DEC_TRUNC_L2;
        if (llc != 0xAAAA03)
            return SN_DEC_NON_IP;
        sn_cur_skip(&s->c, 3); /* OUI */
        t = sn_cur_u16(&s->c);
        if (s->c.err)
            return SN_DEC_TRUNC_L2;
    }
    s->etype = t;
    s->next = NX_ETYPE;
    return SN_DEC_OK;
}

/* Ethertype dispatch. IEEE 802.1Q 9.6: a tag is TPID(2) TCI(2: PCP 3, DEI 1, VID 12); the
 * TPID is what brought us here, so read TCI then the next type. 802.1ad S-tags use 0x88A8;
 * 0x9100/0x9200 are pre-standard QinQ TPIDs still seen in the wild.
 * RFC 2516 5.4: PPPoE session: VER 4 | TYPE 4 | CODE 8 | SESSION_ID 16 | LENGTH 16, PPP. */
static enum sn_decode_reason step_etype(struct dstate *s)
{
    switch (s->etype) {
    case ETH_IP4:
        s->next = NX_IP4;
        return SN_DEC_OK;
    case ETH_IP6:
        s->next = NX_IP6;
        return SN_DEC_OK;
    case ETH_VLAN:
    case ETH_QINQ:
    case ETH_QINQ_OLD1:
    case ETH_QINQ_OLD2: {
        if (++s->tags > SN_DECODE_MAX_TAGS)
            return SN_DEC_TOO_DEEP;
        uint16_t tci = sn_cur_u16(&s->c);
        uint16_t t = sn_cur_u16(&s->c);
        if (s->c.err)
            return SN_DEC_TRUNC_L2;
        if (!s->vlan_set) {
            s->pkt->vlan = tci & 0x0FFF;
            s->vlan_set = true;
        }
        s->etype = t;
        return SN_DEC_OK; /* stay in NX_ETYPE */
    }
    case ETH_MPLS_UC:
    case ETH_MPLS_MC:
        s->next = NX_MPLS;
        return SN_DEC_OK;
    case ETH_PPPOE_S: {
        uint8_t vt = sn_cur_u8(&s->c);
        uint8_t code = sn_cur_u8(&s->c);
        sn_cur_skip(&s->c, 4);
        if (s->c.err)
            return SN_DEC_TRUNC_L2;
        if (vt != 0x11 || code != 0)
            return SN_DEC_NON_IP;
        s->next = NX_PPP;
        return SN_DEC_OK;
    }
    case ETH_PPP:
        s->next = NX_PPP;
        return SN_DEC_OK;
    case ETH_TEB:
        s->next = NX_ETH;
        return SN_DEC_OK;
    default:
        return SN_DEC_NON_IP; /* ARP, LLDP, STP, IPX, ... */
    }
}

/* RFC 3032 2.1: label stack entries of Label 20 | TC 3 | S 1 | TTL 8, the last with S set.
 * What follows is not typed: IP by its version nibble, 0 starts the RFC 4385 pseudowire
 * control word (then Ethernet), anything else is taken as an Ethernet pseudowire without
 * control word (RFC 4448). */
static enum sn_decode_reason step_mpls(struct dstate *s)
{
    for (;;) {
        if (++s->tags > SN_DECODE_MAX_TAGS)
            return SN_DEC_TOO_DEEP;
        uint32_t e = sn_cur_u32(&s->c);
        if (s->c.err)
            return SN_DEC_TRUNC_L2;
        if (e & 0x100)
            break;
    }
    uint8_t b;
    if (!sn_cur_peek8(&s->c, 0, &b))
        return SN_DEC_TRUNC_L2;
    switch (b >> 4) {
    case 4:
        s->next = NX_IP4;
        break;
    case 6:
        s->next = NX_IP6;
        break;
    case 0:
        if (!sn_cur_skip(&s->c, 4))
            return SN_DEC_TRUNC_L2;
        s->next = NX_ETH;
        break;
    default:
        s->next = NX_ETH;
        break;
    }
    return SN_DEC_OK;
}

/* RFC 1661 2: Protocol 8/16 bits (PFC: an odd first octet is a 1-octet field), optionally
 * preceded by RFC 1662 3.1 Address 0xFF Control 0x03. 0x0021 IPv4, 0x0057 IPv6,
 * 0x0281/0x0283 MPLS (RFC 3032 4.3). */
static enum sn_decode_reason step_ppp(struct dstate *s)
{
    uint8_t a;
    if (sn_cur_peek8(&s->c, 0, &a) && a == 0xFF) {
        sn_cur_skip(&s->c, 1);
        if (sn_cur_u8(&s->c) != 0x03)
            return s->c.err ? SN_DEC_TRUNC_L2 : SN_DEC_NON_IP;
    }
    uint16_t proto = sn_cur_u8(&s->c);
    if (!(proto & 1))
        proto = (uint16_t)(proto << 8 | sn_cur_u8(&s->c));
    if (s->c.err)
        return SN_DEC_TRUNC_L2;
    switch (proto) {
    case 0x0021:
        s->next = NX_IP4;
        return SN_DEC_OK;
    case 0x0057:
        s->next = NX_IP6;
        return SN_DEC_OK;
    case 0x0281:
    case 0x0283:
        s->next = NX_MPLS;
        return SN_DEC_OK;
    default:
        return SN_DEC_NON_IP; /* LCP, IPCP, CCP, compressed data, ... */
    }
}

static enum sn_decode_reason step_l4(struct dstate *s);

static inline void set_addr(struct sn_addr *a, uint8_t fam, const uint8_t *p)
{
    a->family = fam;
    memset(a->a, 0, sizeof(a->a));
    memcpy(a->a, p, fam == 4 ? 4 : 16);
}

/* Resets what an inner IP header replaces (the innermost header wins). */
static void ip_reset(struct sn_pkt *p)
{
    p->frag = false;
    p->frag_first = true;
    p->sport = p->dport = 0;
    p->tcp_flags = 0;
    p->seq = p->ack = 0;
    p->payload_len = 0;
    p->payload = NULL;
    p->payload_caplen = 0;
    p->icmp_type = p->icmp_code = 0;
}

static inline void ip_common(struct dstate *s, uint8_t ver, const uint8_t *l3, size_t l3_cap,
                             const uint8_t *src, const uint8_t *dst)
{
    struct sn_pkt *p = s->pkt;
    if (s->ips)
        ip_reset(p); /* the first IP header finds pkt freshly zeroed */
    p->frag_first = true;
    p->ipver = ver;
    set_addr(&p->src, ver, src);
    set_addr(&p->dst, ver, dst);
    p->l3 = l3;
    p->l3_caplen = l3_cap < p->ip_len ? l3_cap : p->ip_len;
    if (s->ips++ == 0) {
        p->outer_src = p->src;
        p->outer_dst = p->dst;
    }
}

/* The window for what follows the IP headers: at most `decl` bytes (the IP length fields;
 * drops L2 padding), fewer when the capture was cut. */
static void ip_window(struct dstate *s, uint32_t decl)
{
    s->decl = decl;
    size_t left = sn_cur_left(&s->c);
    if (left > decl)
        s->c.end = s->c.p + decl;
}

/* A zero IP length is what TCP segmentation offload (or an RFC 2675 jumbogram) leaves in
 * a captured super-packet: the frame's length is then the packet's. Not-captured bytes
 * (wirelen - caplen) count when this is the outermost IP header. `cap` covers the IP
 * header. */
static uint32_t offload_len(const struct dstate *s, size_t cap)
{
    uint64_t n = cap;
    if (s->ips == 0 && s->pkt->wirelen > s->pkt->caplen)
        n += s->pkt->wirelen - s->pkt->caplen;
    return n > UINT32_MAX - 65536 ? UINT32_MAX - 65536 : (uint32_t)n;
}

/* RFC 791 3.1: Version 4 | IHL 4 | TOS 8 | Total Length 16 | Identification 16 |
 * Flags 3 | Fragment Offset 13 | TTL 8 | Protocol 8 | Checksum 16 | Source 32 |
 * Destination 32 | Options (IHL*4 - 20). */
static enum sn_decode_reason step_ip4(struct dstate *s)
{
    s->next = NX_DONE;
    const uint8_t *l3 = s->c.p;
    size_t cap = sn_cur_left(&s->c);
    uint8_t vihl = sn_cur_u8(&s->c);
    if (s->c.err)
        return SN_DEC_TRUNC_IP;
    if (vihl >> 4 != 4)
        return SN_DEC_BAD_IP_VERSION;
    unsigned ihl = (vihl & 0x0Fu) * 4;
    if (ihl < 20)
        return SN_DEC_BAD_IP_HDRLEN;
    sn_cur_skip(&s->c, 1);
    uint32_t tot = sn_cur_u16(&s->c);
    sn_cur_skip(&s->c, 2);
    uint16_t fo = sn_cur_u16(&s->c);
    uint8_t ttl = sn_cur_u8(&s->c);
    uint8_t proto = sn_cur_u8(&s->c);
    sn_cur_skip(&s->c, 2);
    const uint8_t *src = sn_cur_take(&s->c, 4);
    const uint8_t *dst = sn_cur_take(&s->c, 4);
    sn_cur_skip(&s->c, ihl - 20);
    if (s->c.err)
        return SN_DEC_TRUNC_IP;
    if (tot == 0)
        tot = offload_len(s, cap);
    if (tot < ihl)
        return SN_DEC_BAD_IP_LEN;

    struct sn_pkt *p = s->pkt;
    p->ip_len = tot;
    ip_common(s, 4, l3, cap, src, dst);
    p->ttl = ttl;
    p->proto = proto;
    ip_window(s, tot - ihl);
    unsigned off = fo & 0x1FFFu;
    if ((fo & 0x2000u) || off) {
        p->frag = true;
        p->frag_first = off == 0;
        s->d->st.fragments++;
        if (off)
            return SN_DEC_OK; /* non-first fragment: no L4 header; next stays NX_DONE */
    }
    s->proto = proto;
    return step_l4(s);
}

/* RFC 8200 3: Version 4 | Traffic Class 8 | Flow Label 20 | Payload Length 16 |
 * Next Header 8 | Hop Limit 8 | Source 128 | Destination 128, then the extension header
 * chain (RFC 8200 4): hop-by-hop 0, routing 43, destination options 60 and the RFC 7045
 * list (135 mobility, 139 HIP, 140 shim6, 253/254 experiments) are Next Header 8 |
 * Hdr Ext Len 8 (8-octet units, not counting the first 8); fragment 44 is 8 octets
 * (RFC 8200 4.5: Next Header | Reserved | Offset 13 | Res 2 | M 1 | Identification 32);
 * AH 51 has Payload Len in 4-octet units minus 2 (RFC 4302 2.2). ESP 50 and No Next
 * Header 59 end the chain. */
static enum sn_decode_reason step_ip6(struct dstate *s)
{
    s->next = NX_DONE;
    const uint8_t *l3 = s->c.p;
    size_t cap = sn_cur_left(&s->c);
    uint8_t v = 0;
    if (!sn_cur_peek8(&s->c, 0, &v) || !sn_cur_need(&s->c, 40))
        return SN_DEC_TRUNC_IP;
    if (v >> 4 != 6)
        return SN_DEC_BAD_IP_VERSION;
    sn_cur_skip(&s->c, 4);
    uint32_t plen = sn_cur_u16(&s->c);
    uint8_t nh = sn_cur_u8(&s->c);
    uint8_t hlim = sn_cur_u8(&s->c);
    const uint8_t *src = sn_cur_take(&s->c, 16);
    const uint8_t *dst = sn_cur_take(&s->c, 16);

    struct sn_pkt *p = s->pkt;
    if (plen == 0 && nh != 59)
        plen = offload_len(s, cap) - 40;
    p->ip_len = 40u + plen;
    ip_common(s, 6, l3, cap, src, dst);
    p->ttl = hlim;
    ip_window(s, plen);

    for (unsigned n = 0;; n++) {
        unsigned hl;
        switch (nh) {
        case 0:
        case 43:
        case 60:
        case 135:
        case 139:
        case 140:
        case 253:
        case 254:
        case 51: {
            if (n >= IP6_EXT_MAX || s->decl < 8)
                return SN_DEC_BAD_IP6_EXT;
            uint8_t nnh = sn_cur_u8(&s->c);
            uint8_t len = sn_cur_u8(&s->c);
            if (s->c.err)
                return SN_DEC_TRUNC_IP;
            hl = nh == 51 ? ((unsigned)len + 2) * 4 : ((unsigned)len + 1) * 8;
            if (hl > s->decl)
                return SN_DEC_BAD_IP6_EXT;
            if (!sn_cur_skip(&s->c, hl - 2))
                return SN_DEC_TRUNC_IP;
            s->decl -= hl;
            nh = nnh;
            continue;
        }
        case 44: {
            if (n >= IP6_EXT_MAX || s->decl < 8)
                return SN_DEC_BAD_IP6_EXT;
            uint8_t nnh = sn_cur_u8(&s->c);
            sn_cur_skip(&s->c, 1);
            uint16_t fo = sn_cur_u16(&s->c);
            sn_cur_skip(&s->c, 4);
            if (s->c.err)
                return SN_DEC_TRUNC_IP;
            s->decl -= 8;
            nh = nnh;
            if (!p->frag)
                s->d->st.fragments++;
            p->frag = true;
            p->frag_first = (fo >> 3) == 0;
            if (!p->frag_first) {
                p->proto = nh;
                return SN_DEC_OK; /* non-first fragment: no L4 header, chain not parsed */
            }
            continue;
        }
        default:
            break;
        }
        break;
    }
    p->proto = nh;
    s->proto = nh;
    return step_l4(s);
}

static void set_payload(struct dstate *s, uint32_t len)
{
    struct sn_pkt *p = s->pkt;
    p->payload_len = len;
    size_t left = sn_cur_left(&s->c);
    if (left > len)
        left = len;
    p->payload_caplen = left;
    p->payload = left ? s->c.p : NULL;
}

/* The L4 header needs `n` bytes: declared too short is a length lie (or a tiny first
 * fragment, which is legal and just has no L4 header), captured too short is truncation. */
static enum sn_decode_reason l4_need(struct dstate *s, uint32_t n, bool *skip)
{
    *skip = false;
    if (s->decl < n) {
        if (s->pkt->frag) {
            *skip = true;
            return SN_DEC_OK;
        }
        return SN_DEC_BAD_IP_LEN;
    }
    if (sn_cur_left(&s->c) < n)
        return SN_DEC_TRUNC_L4;
    return SN_DEC_OK;
}

/* RFC 2784 2.1 / RFC 2890 2: C 1 | R 1 | K 1 | S 1 | Reserved0 9 | Ver 3 | Protocol 16,
 * then [Checksum 16 | Reserved1 16] if C, [Key 32] if K, [Sequence 32] if S. Version 1 is
 * PPTP's enhanced GRE (RFC 2637), left as a plain GRE flow; other versions and RFC 1701
 * routing are malformed here. Protocol 0x88BE is ERSPAN type II, or type I when S is clear;
 * 0x22EB is ERSPAN type III (draft-foschiano-erspan-03). */
static enum sn_decode_reason tun_gre(struct dstate *s, bool *plain)
{
    uint16_t fv = sn_cur_u16(&s->c);
    uint16_t proto = sn_cur_u16(&s->c);
    if (s->c.err)
        return SN_DEC_TRUNC_L4;
    unsigned ver = fv & 7u;
    if (ver == 1) {
        *plain = true;
        return SN_DEC_OK;
    }
    if (ver != 0 || (fv & 0x4000u))
        return SN_DEC_BAD_TUNNEL;
    uint32_t key = 0;
    if (fv & 0x8000u)
        sn_cur_skip(&s->c, 4);
    if (fv & 0x2000u)
        key = sn_cur_u32(&s->c);
    if (fv & 0x1000u)
        sn_cur_skip(&s->c, 4);
    if (s->c.err)
        return SN_DEC_TRUNC_L4;

    if (proto == ETH_ERSPAN2) {
        if (!(fv & 0x1000u)) {
            s->next = NX_ETH;
            return tunnel_enter(s, SN_TUN_ERSPAN1, 0);
        }
        /* ERSPAN II: Ver 4 (=1) | VLAN 12 | COS 3 | En 2 | T 1 | Session ID 10 |
         * Reserved 12 | Index 20, then the mirrored Ethernet frame. */
        uint32_t w = sn_cur_u32(&s->c);
        sn_cur_skip(&s->c, 4);
        if (s->c.err)
            return SN_DEC_TRUNC_L4;
        if (w >> 28 != 1)
            return SN_DEC_BAD_TUNNEL;
        s->next = NX_ETH;
        return tunnel_enter(s, SN_TUN_ERSPAN2, w & 0x3FFu);
    }
    if (proto == ETH_ERSPAN3) {
        /* ERSPAN III: Ver 4 (=2) | VLAN 12 | COS 3 | BSO 2 | T 1 | Session ID 10 |
         * Timestamp 32 | SGT 16 | P 1 | FT 5 | Hw ID 6 | D 1 | Gra 2 | O 1, then an 8-octet
         * platform specific subheader if O. FT 0: Ethernet frame, FT 2: IP packet. */
        uint32_t w = sn_cur_u32(&s->c);
        sn_cur_skip(&s->c, 4);
        uint32_t w3 = sn_cur_u32(&s->c);
        if (w3 & 1u)
            sn_cur_skip(&s->c, 8);
        if (s->c.err)
            return SN_DEC_TRUNC_L4;
        unsigned ft = (w3 >> 10) & 0x1Fu;
        if (w >> 28 != 2 || (ft != 0 && ft != 2))
            return SN_DEC_BAD_TUNNEL;
        s->next = ft == 0 ? NX_ETH : NX_IP;
        return tunnel_enter(s, SN_TUN_ERSPAN3, w & 0x3FFu);
    }
    s->etype = proto;
    s->next = NX_ETYPE;
    return tunnel_enter(s, SN_TUN_GRE, key);
}

/* RFC 7348 5: Flags 8 (I = 0x08) | Reserved 24 | VNI 24 | Reserved 8, then Ethernet. */
static enum sn_decode_reason tun_vxlan(struct dstate *s)
{
    uint8_t fl = sn_cur_u8(&s->c);
    sn_cur_skip(&s->c, 3);
    uint32_t vni = sn_cur_u24(&s->c);
    sn_cur_skip(&s->c, 1);
    if (s->c.err)
        return SN_DEC_TRUNC_L4;
    if (!(fl & 0x08))
        return SN_DEC_BAD_TUNNEL;
    s->next = NX_ETH;
    return tunnel_enter(s, SN_TUN_VXLAN, vni);
}

/* draft-ietf-nvo3-vxlan-gpe-12 3.1: R R Ver 2 | I | P | B | O | Reserved 16 |
 * Next Protocol 8 | VNI 24 | Reserved 8. Next Protocol (if P): 1 IPv4, 2 IPv6,
 * 3 Ethernet, 4 NSH, 5 MPLS; without P the payload is Ethernet. */
static enum sn_decode_reason tun_vxlan_gpe(struct dstate *s)
{
    uint8_t fl = sn_cur_u8(&s->c);
    sn_cur_skip(&s->c, 2);
    uint8_t np = sn_cur_u8(&s->c);
    uint32_t vni = sn_cur_u24(&s->c);
    sn_cur_skip(&s->c, 1);
    if (s->c.err)
        return SN_DEC_TRUNC_L4;
    if (fl & 0x30)
        return SN_DEC_BAD_TUNNEL;
    static const uint8_t nx[] = {NX_DONE, NX_IP4, NX_IP6, NX_ETH, NX_DONE, NX_MPLS};
    enum next n = NX_ETH;
    if (fl & 0x04)
        n = np < sizeof(nx) ? (enum next)nx[np] : NX_DONE;
    enum sn_decode_reason r = tunnel_enter(s, SN_TUN_VXLAN_GPE, (fl & 0x08) ? vni : 0);
    if (r)
        return r;
    if (n == NX_DONE)
        return SN_DEC_NON_IP; /* NSH or unknown payload */
    s->next = n;
    return SN_DEC_OK;
}

/* RFC 8926 3.4: Ver 2 | Opt Len 6 | O 1 | C 1 | Rsvd 6 | Protocol Type 16 | VNI 24 |
 * Reserved 8 | Options (Opt Len * 4 octets). Protocol 0x6558 is Ethernet. */
static enum sn_decode_reason tun_geneve(struct dstate *s)
{
    uint8_t b0 = sn_cur_u8(&s->c);
    sn_cur_skip(&s->c, 1);
    uint16_t proto = sn_cur_u16(&s->c);
    uint32_t vni = sn_cur_u24(&s->c);
    sn_cur_skip(&s->c, 1);
    sn_cur_skip(&s->c, (b0 & 0x3Fu) * 4u);
    if (s->c.err)
        return SN_DEC_TRUNC_L4;
    if (b0 >> 6)
        return SN_DEC_BAD_TUNNEL;
    s->etype = proto;
    s->next = NX_ETYPE;
    return tunnel_enter(s, SN_TUN_GENEVE, vni);
}

/* 3GPP TS 29.281 5.1: Version 3 (=1) | PT 1 (=1) | spare | E | S | PN | Message Type 8 |
 * Length 16 | TEID 32, then Sequence 16 | N-PDU 8 | Next Extension Type 8 if any of E/S/PN,
 * then extension headers (5.2: Length 8 in 4-octet units | contents | Next Type 8).
 * Only G-PDU (255) carries a user packet; echo, error indication and end marker stay a
 * plain UDP flow. */
static enum sn_decode_reason tun_gtpu(struct dstate *s, bool *plain)
{
    uint8_t fl = sn_cur_u8(&s->c);
    uint8_t type = sn_cur_u8(&s->c);
    sn_cur_skip(&s->c, 2);
    uint32_t teid = sn_cur_u32(&s->c);
    if (s->c.err)
        return SN_DEC_TRUNC_L4;
    if ((fl & 0xF0) != 0x30)
        return SN_DEC_BAD_TUNNEL;
    if (type != 255) {
        *plain = true;
        return SN_DEC_OK;
    }
    if (fl & 0x07) {
        sn_cur_skip(&s->c, 3);
        uint8_t ext = sn_cur_u8(&s->c);
        for (unsigned n = 0; ext && !s->c.err; n++) {
            uint8_t len = sn_cur_u8(&s->c);
            if (s->c.err)
                break;
            if (len == 0 || n >= 8)
                return SN_DEC_BAD_TUNNEL;
            sn_cur_skip(&s->c, (size_t)len * 4 - 2);
            ext = sn_cur_u8(&s->c);
        }
        if (s->c.err)
            return SN_DEC_TRUNC_L4;
    }
    s->next = NX_IP;
    return tunnel_enter(s, SN_TUN_GTPU, teid);
}

/* After the IP headers: the L4 header (RFC 9293 3.1 TCP, RFC 768 UDP, RFC 792 / RFC 4443
 * ICMP) and, for tunnel protocols of unfragmented packets, the tunnel header. Sets s->next
 * to continue into a tunnel, else leaves NX_DONE. */
static enum sn_decode_reason step_l4(struct dstate *s)
{
    struct sn_pkt *p = s->pkt;
    enum sn_decode_reason r;
    bool skip;
    switch (s->proto) {
    case 6: {
        /* Source Port 16 | Destination Port 16 | Sequence 32 | Ack 32 | Data Offset 4 |
         * Reserved 4 | Flags 8 | Window 16 | Checksum 16 | Urgent 16 | Options */
        if ((r = l4_need(s, 20, &skip)) || skip)
            return r;
        p->sport = sn_cur_u16(&s->c);
        p->dport = sn_cur_u16(&s->c);
        p->seq = sn_cur_u32(&s->c);
        p->ack = sn_cur_u32(&s->c);
        unsigned doff = (unsigned)(sn_cur_u8(&s->c) >> 4) * 4;
        p->tcp_flags = sn_cur_u8(&s->c);
        sn_cur_skip(&s->c, 6);
        if (doff < 20 || doff > s->decl)
            return SN_DEC_BAD_TCP_HDRLEN;
        /* Options cut by snaplen: keep the header fields, report no captured payload. */
        if (sn_cur_skip(&s->c, doff - 20))
            set_payload(s, s->decl - doff);
        else
            p->payload_len = s->decl - doff;
        return SN_DEC_OK;
    }
    case 17: {
        /* Source Port 16 | Destination Port 16 | Length 16 | Checksum 16 */
        if ((r = l4_need(s, 8, &skip)) || skip)
            return r;
        p->sport = sn_cur_u16(&s->c);
        p->dport = sn_cur_u16(&s->c);
        uint16_t ulen = sn_cur_u16(&s->c);
        sn_cur_skip(&s->c, 2);
        /* A first fragment carries only part of the datagram the UDP length covers. */
        if (ulen < 8 || (!p->frag && ulen > s->decl))
            return SN_DEC_BAD_UDP_LEN;
        set_payload(s, p->frag ? s->decl - 8 : ulen - 8u);
        if (p->frag)
            return SN_DEC_OK;
        s->c.end = s->c.p + p->payload_caplen;
        bool plain = false;
        switch (p->dport) {
        case PORT_VXLAN:
            return tun_vxlan(s);
        case PORT_VXLAN_GPE:
            return tun_vxlan_gpe(s);
        case PORT_GENEVE:
            return tun_geneve(s);
        case PORT_GTPU:
            r = tun_gtpu(s, &plain);
            if (plain)
                s->next = NX_DONE;
            return r;
        default:
            return SN_DEC_OK;
        }
    }
    case 1:
    case 58:
        /* Type 8 | Code 8 | Checksum 16 | Rest of Header 32 */
        if ((r = l4_need(s, 8, &skip)) || skip)
            return r;
        p->icmp_type = sn_cur_u8(&s->c);
        p->icmp_code = sn_cur_u8(&s->c);
        sn_cur_skip(&s->c, 6);
        set_payload(s, s->decl - 8);
        return SN_DEC_OK;
    case 47: {
        const uint8_t *start = s->c.p;
        set_payload(s, s->decl);
        if (p->frag)
            return SN_DEC_OK;
        bool plain = false;
        r = tun_gre(s, &plain);
        if (plain) {
            s->c.p = start;
            s->next = NX_DONE;
        }
        return r;
    }
    case 4:
    case 41:
        set_payload(s, s->decl);
        if (p->frag)
            return SN_DEC_OK;
        s->next = s->proto == 4 ? NX_IP4 : NX_IP6;
        return tunnel_enter(s, SN_TUN_IPIP, 0);
    default:
        set_payload(s, s->decl);
        return SN_DEC_OK;
    }
}

/* BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD,
 * OpenBSD), 28 (FreeBSD), 30 (Darwin) or 10 (Linux). */
static enum next loop_family(uint32_t fam)
{
    switch (fam) {
    case 2:
        return NX_IP4;
    case 10:
    case 24:
    case 28:
    case 30:
        return NX_IP6;
    default:
        return NX_DONE;
    }
}

/* The link header for a DLT; sets s->next (NX_DONE: not IP). */
static enum sn_decode_reason step_link(struct dstate *s, int dlt)
{
    switch (dlt) {
    case 1: /* DLT_EN10MB */
        s->next = NX_ETH;
        return SN_DEC_OK;
    case 113: /* DLT_LINUX_SLL: pkttype 16 | hatype 16 | halen 16 | addr 64 | protocol 16 */
        sn_cur_skip(&s->c, 14);
        s->etype = sn_cur_u16(&s->c);
        s->next = NX_ETYPE;
        return s->c.err ? SN_DEC_TRUNC_L2 : SN_DEC_OK;
    case 276: /* DLT_LINUX_SLL2: protocol 16 | reserved 16 | ifindex 32 | hatype 16 |
                 pkttype 8 | halen 8 | addr 64 */
        s->etype = sn_cur_u16(&s->c);
        sn_cur_skip(&s->c, 18);
        s->next = NX_ETYPE;
        return s->c.err ? SN_DEC_TRUNC_L2 : SN_DEC_OK;
    case 12:  /* DLT_RAW (most platforms) */
    case 14:  /* DLT_RAW (OpenBSD) */
    case 101: /* LINKTYPE_RAW */
        s->next = NX_IP;
        return SN_DEC_OK;
    case 228: /* LINKTYPE_IPV4 */
        s->next = NX_IP4;
        return SN_DEC_OK;
    case 229: /* LINKTYPE_IPV6 */
        s->next = NX_IP6;
        return SN_DEC_OK;
    case 0: { /* DLT_NULL: 4-octet family in the capturing host's byte order */
        uint32_t fam = sn_cur_u32_le(&s->c);
        if (s->c.err)
            return SN_DEC_TRUNC_L2;
        if (fam > 0xFFFF)
            fam = __builtin_bswap32(fam);
        s->next = loop_family(fam);
        return s->next == NX_DONE ? SN_DEC_NON_IP : SN_DEC_OK;
    }
    case 108: { /* DLT_LOOP: the same family, network byte order */
        uint32_t fam = sn_cur_u32(&s->c);
        if (s->c.err)
            return SN_DEC_TRUNC_L2;
        s->next = loop_family(fam);
        return s->next == NX_DONE ? SN_DEC_NON_IP : SN_DEC_OK;
    }
    case 9: /* DLT_PPP: RFC 1661, optional RFC 1662 FF 03 */
        s->next = NX_PPP;
        return SN_DEC_OK;
    case 50:    /* DLT_PPP_SERIAL: RFC 1662 framing, or Cisco HDLC (0x0F / 0x8F) */
    case 104: { /* DLT_C_HDLC: Address 8 | Control 8 | Protocol (an ethertype) 16 */
        uint8_t a;
        if (!sn_cur_peek8(&s->c, 0, &a))
            return SN_DEC_TRUNC_L2;
        if (dlt == 50 && a != 0x0F && a != 0x8F) {
            s->next = NX_PPP;
            return SN_DEC_OK;
        }
        sn_cur_skip(&s->c, 2);
        s->etype = sn_cur_u16(&s->c);
        s->next = NX_ETYPE;
        return s->c.err ? SN_DEC_TRUNC_L2 : SN_DEC_OK;
    }
    default:
        return SN_DEC_UNSUPPORTED_LINK;
    }
}

bool sn_decode_linktype_ok(int dlt)
{
    switch (dlt) {
    case 0:
    case 1:
    case 9:
    case 12:
    case 14:
    case 50:
    case 101:
    case 104:
    case 108:
    case 113:
    case 228:
    case 229:
    case 276:
        return true;
    default:
        return false;
    }
}

void sn_decode_init(struct sn_decode *d)
{
    memset(d, 0, sizeof(*d));
}

static enum sn_decode_reason walk(struct dstate *s, int dlt)
{
    enum sn_decode_reason r = step_link(s, dlt);
    if (r)
        return r;
    for (unsigned steps = 0; steps < STEP_MAX; steps++) {
        switch (s->next) {
        case NX_ETH:
            r = step_eth(s);
            break;
        case NX_ETYPE:
            r = step_etype(s);
            break;
        case NX_IP: {
            uint8_t v;
            if (!sn_cur_peek8(&s->c, 0, &v))
                return SN_DEC_TRUNC_IP;
            if (v >> 4 == 4)
                s->next = NX_IP4;
            else if (v >> 4 == 6)
                s->next = NX_IP6;
            else
                return SN_DEC_BAD_IP_VERSION;
            continue;
        }
        case NX_IP4:
            r = step_ip4(s);
            break;
        case NX_IP6:
            r = step_ip6(s);
            break;
        case NX_PPP:
            r = step_ppp(s);
            break;
        case NX_MPLS:
            r = step_mpls(s);
            break;
        case NX_DONE:
            return SN_DEC_OK;
        }
        if (r)
            return r;
    }
    return SN_DEC_TOO_DEEP;
}

enum sn_decode_reason sn_decode_packet(struct sn_decode *d, int dlt, const uint8_t *data,
                                       uint32_t caplen, uint32_t wirelen, int64_t ts_us,
                                       struct sn_pkt *pkt)
{
    memset(pkt, 0, sizeof(*pkt));
    pkt->ts_us = ts_us;
    pkt->caplen = caplen;
    pkt->wirelen = wirelen;
    struct dstate s = {.d = d, .pkt = pkt, .c = sn_cur_make(data, caplen), .next = NX_DONE};
    struct sn_decode_stats *st = &d->st;
    st->packets++;
    enum sn_decode_reason r = walk(&s, dlt);
    if (r == SN_DEC_OK && pkt->ipver == 0)
        r = SN_DEC_NON_IP; /* cannot happen: every path to OK passes an IP header */
    st->reason[r]++;
    if (r != SN_DEC_OK)
        return r;
    if (pkt->ipver == 4)
        st->ipv4++;
    else
        st->ipv6++;
    switch (pkt->proto) {
    case 6:
        st->tcp++;
        break;
    case 17:
        st->udp++;
        break;
    case 1:
        st->icmp++;
        break;
    case 58:
        st->icmp6++;
        break;
    default:
        st->other_l4++;
        break;
    }
    if (pkt->tunnel != SN_TUN_NONE)
        st->tunneled++;
    return SN_DEC_OK;
}

static const char *const reason_names[SN_DEC_REASON_MAX] = {
    [SN_DEC_OK] = "ok",
    [SN_DEC_NON_IP] = "non_ip",
    [SN_DEC_TRUNC_L2] = "trunc_l2",
    [SN_DEC_TRUNC_IP] = "trunc_ip",
    [SN_DEC_TRUNC_L4] = "trunc_l4",
    [SN_DEC_BAD_IP_VERSION] = "bad_ip_version",
    [SN_DEC_BAD_IP_HDRLEN] = "bad_ip_hdrlen",
    [SN_DEC_BAD_IP_LEN] = "bad_ip_len",
    [SN_DEC_BAD_IP6_EXT] = "bad_ip6_ext",
    [SN_DEC_BAD_TCP_HDRLEN] = "bad_tcp_hdrlen",
    [SN_DEC_BAD_UDP_LEN] = "bad_udp_len",
    [SN_DEC_BAD_TUNNEL] = "bad_tunnel",
    [SN_DEC_TOO_DEEP] = "too_deep",
    [SN_DEC_UNSUPPORTED_LINK] = "unsupported_link",
};

const char *sn_decode_reason_name(enum sn_decode_reason r)
{
    if ((unsigned)r >= SN_DEC_REASON_MAX || !reason_names[r])
        return "unknown";
    return reason_names[r];
}

static const char *const tunnel_names[SN_TUN_MAX] = {
    [SN_TUN_NONE] = "none",         [SN_TUN_GRE] = "gre",       [SN_TUN_ERSPAN2] = "erspan2",
    [SN_TUN_ERSPAN3] = "erspan3",   [SN_TUN_VXLAN] = "vxlan",   [SN_TUN_GENEVE] = "geneve",
    [SN_TUN_VXLAN_GPE] = "vxlan_gpe", [SN_TUN_GTPU] = "gtpu",   [SN_TUN_IPIP] = "ipip",
    [SN_TUN_ERSPAN1] = "erspan1",
};

const char *sn_decode_tunnel_name(enum sn_tunnel t)
{
    if ((unsigned)t >= SN_TUN_MAX || !tunnel_names[t])
        return "unknown";
    return tunnel_names[t];
}

void sn_decode_stats_json(const struct sn_decode_stats *st, struct sn_json *j)
{
    sn_json_u64(j, "packets", st->packets);
    sn_json_u64(j, "ipv4", st->ipv4);
    sn_json_u64(j, "ipv6", st->ipv6);
    sn_json_u64(j, "tcp", st->tcp);
    sn_json_u64(j, "udp", st->udp);
    sn_json_u64(j, "icmp", st->icmp);
    sn_json_u64(j, "icmp6", st->icmp6);
    sn_json_u64(j, "other_l4", st->other_l4);
    sn_json_u64(j, "fragments", st->fragments);
    sn_json_u64(j, "tunneled", st->tunneled);
    for (unsigned r = 0; r < SN_DEC_REASON_MAX; r++)
        sn_json_u64(j, sn_decode_reason_name((enum sn_decode_reason)r), st->reason[r]);
}

void sn_decode_stats_add(struct sn_decode_stats *a, const struct sn_decode_stats *b)
{
    a->packets += b->packets;
    a->ipv4 += b->ipv4;
    a->ipv6 += b->ipv6;
    a->tcp += b->tcp;
    a->udp += b->udp;
    a->icmp += b->icmp;
    a->icmp6 += b->icmp6;
    a->other_l4 += b->other_l4;
    a->fragments += b->fragments;
    a->tunneled += b->tunneled;
    for (unsigned r = 0; r < SN_DEC_REASON_MAX; r++)
        a->reason[r] += b->reason[r];
}
