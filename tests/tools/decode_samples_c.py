#!/usr/bin/python3
"""Prints the C hex arrays of tests/test_decode.c from the captures they come from.

Real frames come from /work/shared/data (see tests/data/decode/SOURCES.md), synthetic ones
from tests/data/decode/*.pcap (made by make_decode_pcaps.py). A sample may be cut to a
snaplen; the test then passes the frame's original length as wirelen.
Run: /usr/bin/python3 tests/tools/decode_samples_c.py > /tmp/samples.c
With --corpus DIR it instead writes libFuzzer seeds for tests/fuzz_decode.c: one byte
selecting the link type (index into LINKS, the same table as the fuzzer's) + the frame.
With --extract it copies each real frame used, unchanged, into a one-frame capture
tests/data/decode/real_<name>.pcap (same link type), so the arrays can be rebuilt without
the shared data folder: frames are read from there when the shared file is missing.
"""
import os
import sys
import textwrap

from scapy.utils import RawPcapReader, RawPcapNgReader, RawPcapWriter

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHARED = os.environ.get("SHARED_DATA", "/work/shared/data")
GEN = os.path.join(ROOT, "tests", "data", "decode")

# name, file, 1-based frame number, snaplen (0: whole frame), comment
SAMPLES = [
    ("eth_tcp_syn", f"{SHARED}/ndpi/pcap/443-curl.pcap", 1, 0,
     "Ethernet II / IPv4 / TCP SYN with options (MSS, WS, TS, SACK_PERM)"),
    ("eth_qinq_ack_pad", f"{SHARED}/ndpi/pcap/ja3_lots_of_cipher_suites.pcap", 3, 0,
     "Ethernet / 802.1Q / 802.1Q / IPv4 / TCP ACK, 6 bytes of Ethernet padding"),
    ("eth_ip6_hbh_mld", f"{SHARED}/ja4/pcap/dhcpv6.pcap", 1, 0,
     "Ethernet / IPv6 / hop-by-hop (router alert) / ICMPv6 MLDv2 report"),
    ("eth_ip6_udp", f"{SHARED}/ja4/pcap/dhcpv6.pcap", 2, 0,
     "Ethernet / IPv6 / UDP 546 -> 547 DHCPv6 Solicit"),
    ("sll_tcp_syn", f"{SHARED}/ndpi/pcap/tls_heur__trojan-tcp-tls.pcapng", 1, 0,
     "Linux SLL / IPv4 / TCP SYN"),
    ("sll_udp_dns", f"{SHARED}/ndpi/pcap/tls_heur__trojan-tcp-tls.pcapng", 8, 0,
     "Linux SLL / IPv4 / UDP DNS query"),
    ("sll2_tls_cut", f"{SHARED}/mercury/pcap/sll2_tls.pcap", 1, 96,
     "Linux SLL2 / IPv4 / TCP ClientHello, cut to a 96-byte snaplen (frame is 589)"),
    ("ppp_ip6_icmp6", f"{SHARED}/mercury/pcap/quic_ppp.pcap", 1, 0,
     "PPP (protocol 0x0057) / IPv6 / ICMPv6 neighbor solicitation"),
    ("ppp_ip_udp", f"{SHARED}/mercury/pcap/quic_ppp.pcap", 8, 0,
     "PPP (protocol 0x0021) / IPv4 / UDP QUIC handshake"),
    ("raw_tcp_syn", f"{SHARED}/ndpi/pcap/gaijin_mobile_mixed.pcap", 1, 0,
     "raw IP (DLT_RAW) / IPv4 / TCP SYN"),
    ("null_ip4", f"{SHARED}/ndpi/pcap/selfsigned.pcap", 1, 0,
     "BSD loopback (DLT_NULL, AF_INET 2 little-endian) / IPv4 / TCP SYN"),
    ("null_ip6", f"{SHARED}/ja4/pcap/http-empty-useragent.pcap", 1, 0,
     "BSD loopback (DLT_NULL, AF_INET6 30 = Darwin) / IPv6 / TCP SYN"),
    ("gre_tcp", f"{SHARED}/ja4/pcap/gre-sample.pcap", 11, 0,
     "Ethernet / IPv4 / GRE (no options) / IPv4 / TCP SYN+ECE+CWR"),
    ("erspan2_gpe", f"{SHARED}/ja4/pcap/gre-erspan-vxlan.pcap", 1, 0,
     "Ethernet / IPv4 / GRE(S) / ERSPAN II / Ethernet / IPv4 / UDP 4790 VXLAN-GPE / "
     "Ethernet / IPv4 / TCP SYN"),
    ("geneve_tcp", f"{SHARED}/ja4/pcap/tcpdump-geneve.pcap", 3, 0,
     "Ethernet / IPv4 / UDP 6081 GENEVE (no options) / Ethernet / IPv4 / TCP SYN"),
    ("geneve_icmp", f"{SHARED}/ja4/pcap/tcpdump-geneve.pcap", 1, 0,
     "Ethernet / IPv4 / UDP 6081 GENEVE (one critical option) / Ethernet / IPv4 / ICMP echo"),
    ("gtpu_tcp", f"{SHARED}/ndpi/pcap/tls_change_cipher.pcap", 1, 0,
     "Ethernet / 802.1Q / 802.1Q / IPv4 / UDP 2152 GTP-U / IPv4 / TCP SYN+ACK"),
    ("eth_arp", f"{SHARED}/ja4/pcap/tls3.pcapng", 10, 0,
     "Ethernet / ARP request (padded to 60 bytes): not IP"),
    ("qinq_88a8", f"{GEN}/qinq_88a8.pcap", 1, 0,
     "Ethernet / 802.1ad S-tag 100 (0x88A8) / 802.1Q 200 / IPv4 / TCP"),
    ("qinq_9100", f"{GEN}/qinq_9100.pcap", 1, 0,
     "Ethernet / 0x9100 tag 300 / 802.1Q 301 / IPv4 / UDP"),
    ("mpls_ip", f"{GEN}/mpls_ip.pcap", 1, 0, "Ethernet / MPLS 16 / MPLS 17 (S) / IPv4 / TCP"),
    ("mpls_pw", f"{GEN}/mpls_pw.pcap", 1, 0,
     "Ethernet / MPLS 99 (S) / PW control word / Ethernet / IPv6 / UDP"),
    ("pppoe", f"{GEN}/pppoe.pcap", 1, 0,
     "Ethernet / PPPoE session / PPP 0x57 (compressed protocol field) / IPv6 / UDP"),
    ("gre_ckey", f"{GEN}/gre_ckey.pcap", 1, 0,
     "Ethernet / IPv4 / GRE C+K+S key 0x01020304 / IPv4 / TCP SYN"),
    ("gre_teb", f"{GEN}/gre_teb.pcap", 1, 0,
     "Ethernet / IPv4 / GRE K 0x6558 / Ethernet / 802.1Q 55 / IPv4 / UDP"),
    ("erspan3", f"{GEN}/erspan3.pcap", 1, 0,
     "Ethernet / IPv4 / GRE 0x22EB / ERSPAN III O=1 + platform subheader / Ethernet / "
     "IPv4 / TCP"),
    ("vxlan6", f"{GEN}/vxlan6.pcap", 1, 0,
     "Ethernet / IPv4 / UDP 4789 VXLAN 5000 / Ethernet / IPv6 / TCP SYN"),
    ("geneve_ip", f"{GEN}/geneve_ip.pcap", 1, 0,
     "Ethernet / IPv6 / UDP 6081 GENEVE proto 0x0800, one option / IPv4 / UDP"),
    ("ip6_ext", f"{GEN}/ip6_ext.pcap", 1, 0,
     "Ethernet / IPv6 / HBH / routing / dest opts / fragment (first) / AH / TCP"),
    ("ip6_frag2", f"{GEN}/ip6_ext.pcap", 2, 0,
     "Ethernet / IPv6 / fragment (offset 8, last) / data"),
    ("ip4_opt", f"{GEN}/ip4_opt.pcap", 1, 0,
     "Ethernet / IPv4 IHL 6 (router alert) / UDP"),
    ("ip4_frag1", f"{GEN}/ip4_frag.pcap", 1, 0, "Ethernet / IPv4 first fragment (MF) / UDP"),
    ("ip4_frag3", f"{GEN}/ip4_frag.pcap", 3, 0, "Ethernet / IPv4 last fragment (offset 7)"),
    ("ipip", f"{GEN}/ipip.pcap", 1, 0, "Ethernet / IPv4 proto 41 / IPv6 / UDP"),
    ("gre_deep", f"{GEN}/gre_deep.pcap", 1, 0, "Ethernet / 5 x (IPv4 / GRE) / IPv4 / TCP"),
    ("loop_ip6", f"{GEN}/loop.pcap", 1, 0, "DLT_LOOP (AF 24 big-endian) / IPv6 / UDP"),
    ("linktype_ipv4", f"{GEN}/ipv4.pcap", 1, 0, "LINKTYPE_IPV4 / TCP SYN"),
    ("linktype_ipv6", f"{GEN}/ipv6.pcap", 1, 0, "LINKTYPE_IPV6 / UDP"),
    ("ppp_hdlc", f"{GEN}/ppp_hdlc.pcap", 1, 0, "PPP_HDLC (FF 03 0021) / IPv4 / TCP FIN+ACK"),
]


# Must match the link table in tests/fuzz_decode.c.
LINKS = [1, 113, 276, 12, 101, 228, 229, 0, 108, 9, 50, 104, 14]

CORPUS = {
    "eth_tcp_syn": 1, "eth_qinq_ack_pad": 1, "eth_ip6_hbh_mld": 1, "sll_udp_dns": 113,
    "sll2_tls_cut": 276, "raw_tcp_syn": 101, "null_ip6": 0, "ppp_ip_udp": 9,
    "erspan2_gpe": 1, "geneve_icmp": 1, "gtpu_tcp": 1, "gre_ckey": 1, "gre_teb": 1,
    "erspan3": 1, "vxlan6": 1, "geneve_ip": 1, "ip6_ext": 1, "mpls_pw": 1, "ip4_frag1": 1,
    "ipip": 1, "pppoe": 1, "loop_ip6": 108, "linktype_ipv6": 229, "ppp_hdlc": 50,
}


def write_corpus(out):
    os.makedirs(out, exist_ok=True)
    for name, path, n, snap, _comment in SAMPLES:
        if name not in CORPUS:
            continue
        data = frame(path, n, name)
        if snap:
            data = data[:snap]
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([LINKS.index(CORPUS[name])]) + data)


def read_frame(path, n):
    """(bytes, linktype) of frame n."""
    try:
        r = RawPcapReader(path)
        for i, (data, _meta) in enumerate(r, 1):
            if i == n:
                return data, r.linktype
    except Exception:
        r = RawPcapNgReader(path)
        for i, (data, meta) in enumerate(r, 1):
            if i == n:
                return data, meta.linktype
    raise SystemExit(f"{path}: no frame {n}")


def extracted(name):
    return os.path.join(GEN, f"real_{name}.pcap")


def frame(path, n, name=None):
    if path.startswith(SHARED) and not os.path.exists(path) and name:
        return read_frame(extracted(name), 1)[0]
    return read_frame(path, n)[0]


def extract():
    for name, path, n, _snap, _comment in SAMPLES:
        if not path.startswith(SHARED):
            continue
        data, lt = read_frame(path, n)
        w = RawPcapWriter(extracted(name), linktype=lt, sync=True)
        w.write_header(None)
        w.write_packet(data, sec=1700000000, usec=0)
        w.close()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
        write_corpus(sys.argv[2])
        return
    if len(sys.argv) == 2 and sys.argv[1] == "--extract":
        extract()
        return
    for name, path, n, snap, comment in SAMPLES:
        data = frame(path, n, name)
        wire = len(data)
        if snap:
            data = data[:snap]
        rel = path.replace(SHARED + "/", "shared/data/").replace(GEN + "/", "tests/data/decode/")
        text = textwrap.wrap(f"{comment}.", 92)
        print("/* " + "\n * ".join(text) + f"\n * {rel} frame {n}" +
              (f", first {snap} of {wire} bytes" if snap else "") + " */")
        print(f"static const uint8_t {name}[] = {{")
        for i in range(0, len(data), 12):
            print("    " + " ".join(f"0x{b:02x}," for b in data[i:i + 12]))
        print("};")
        if snap:
            print(f"#define {name}_wirelen {wire}u")
        print()


if __name__ == "__main__":
    main()
