#!/usr/bin/python3
"""Writes the small synthetic captures used by tests/test_decode.c into tests/data/decode/.

Encapsulations that no shared real capture has (QinQ with 0x88A8/0x9100 TPIDs, MPLS,
GRE with checksum/key/sequence, GRE transparent Ethernet bridging, ERSPAN type III with the
platform subheader, VXLAN on 4789, GENEVE carrying IP, IPv6 extension-header chains, IPv4
options and fragments, IP-in-IP, DLT_LOOP / LINKTYPE_IPV4 / LINKTYPE_IPV6 / PPP_HDLC links,
and a too-deep GRE nest). Deterministic: fixed addresses, ports, payloads and timestamps.

Run with Debian's python3-scapy:  /usr/bin/python3 tests/tools/make_decode_pcaps.py
"""
import os
import sys

from scapy.all import (Ether, Dot1Q, Dot1AD, IP, IPv6, TCP, UDP, ICMP, GRE, Raw,
                       IPOption_Router_Alert, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, PcapWriter, fragment)
from scapy.contrib.mpls import MPLS
from scapy.contrib.erspan import ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.layers.vxlan import VXLAN
from scapy.layers.ipsec import AH
from scapy.layers.ppp import PPPoE, PPP

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "decode")

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
PAYLOAD = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"


def write(name, pkts, linktype=1):
    path = os.path.join(OUT, name)
    w = PcapWriter(path, linktype=linktype, sync=True)
    w.write_header(None)
    for i, p in enumerate(pkts):
        raw = bytes(p)
        w.write_packet(raw, sec=1700000000 + i, usec=0)
    w.close()
    print(f"{name}: {len(pkts)} packet(s)")


def tcp4(src="192.0.2.1", dst="198.51.100.2", sport=40000, dport=80, flags="PA"):
    return (IP(src=src, dst=dst, ttl=64, id=1) /
            TCP(sport=sport, dport=dport, seq=1000, ack=2000, flags=flags, window=512) /
            Raw(PAYLOAD))


def main():
    os.makedirs(OUT, exist_ok=True)

    # IEEE 802.1ad S-tag (0x88A8) + 802.1Q C-tag; and a pre-standard 0x9100 outer TPID.
    write("qinq_88a8.pcap", [Ether(src=MAC_A, dst=MAC_B) / Dot1AD(vlan=100, prio=3) /
                             Dot1Q(vlan=200) / tcp4()])
    write("qinq_9100.pcap", [Ether(src=MAC_A, dst=MAC_B, type=0x9100) / Dot1Q(vlan=300) /
                             Dot1Q(vlan=301) /
                             IP(src="192.0.2.7", dst="198.51.100.8") /
                             UDP(sport=5353, dport=53) / Raw(b"\x12\x34" + b"\x00" * 10)])

    # RFC 3032 label stack (2 labels) carrying IPv4; and an Ethernet pseudowire with the
    # RFC 4385 control word carrying IPv6/UDP.
    write("mpls_ip.pcap", [Ether(src=MAC_A, dst=MAC_B, type=0x8847) /
                           MPLS(label=16, s=0, ttl=64) / MPLS(label=17, s=1, ttl=64) / tcp4()])
    inner = (Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") /
             IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=33) /
             UDP(sport=1234, dport=5678) / Raw(b"pw-payload"))
    write("mpls_pw.pcap", [Ether(src=MAC_A, dst=MAC_B, type=0x8847) /
                           MPLS(label=99, s=1, ttl=255) / Raw(b"\x00\x00\x00\x05") / inner])

    # RFC 2516 PPPoE session (0x8864) carrying PPP protocol 0x0057 (IPv6) / UDP.
    write("pppoe.pcap", [Ether(src=MAC_A, dst=MAC_B) / PPPoE(sessionid=0x1234) /
                         PPP(proto=0x0057) /
                         IPv6(src="2001:db8:e::1", dst="2001:db8:e::2", hlim=64) /
                         UDP(sport=5060, dport=5060) / Raw(b"OPTIONS sip:x SIP/2.0\r\n")])

    # RFC 2784/2890 GRE with checksum, key and sequence number carrying IPv4.
    write("gre_ckey.pcap", [Ether(src=MAC_A, dst=MAC_B) /
                            IP(src="203.0.113.1", dst="203.0.113.2") /
                            GRE(chksum_present=1, key_present=1, seqnum_present=1,
                                key=0x01020304, sequence_number=7) /
                            tcp4(src="10.1.0.1", dst="10.2.0.2", sport=33000, dport=443,
                                 flags="S")])
    # GRE transparent Ethernet bridging (0x6558).
    write("gre_teb.pcap", [Ether(src=MAC_A, dst=MAC_B) /
                           IP(src="203.0.113.1", dst="203.0.113.2") /
                           GRE(key_present=1, key=42, proto=0x6558) /
                           Ether(src="02:00:00:00:02:01", dst="02:00:00:00:02:02") /
                           Dot1Q(vlan=55) /
                           IP(src="10.9.0.1", dst="10.9.0.2") /
                           UDP(sport=10000, dport=20000) / Raw(b"teb")])
    # ERSPAN type III with the optional platform-specific subheader (O=1), session 0x155.
    write("erspan3.pcap", [Ether(src=MAC_A, dst=MAC_B) /
                           IP(src="203.0.113.10", dst="203.0.113.20") /
                           GRE(seqnum_present=1, sequence_number=1, proto=0x22eb) /
                           ERSPAN_III(vlan=10, session_id=0x155, timestamp=0x11223344,
                                      ft=0, hw=5, o=1) /
                           ERSPAN_PlatformSpecific(platf_id=3, info1=0x123, info2=0xdeadbeef) /
                           Ether(src="02:00:00:00:03:01", dst="02:00:00:00:03:02") /
                           tcp4(src="172.16.0.1", dst="172.16.0.2", sport=50000, dport=22)])
    # RFC 7348 VXLAN (dst 4789) carrying IPv6/TCP.
    write("vxlan6.pcap", [Ether(src=MAC_A, dst=MAC_B) /
                          IP(src="192.0.2.100", dst="192.0.2.200") /
                          UDP(sport=49152, dport=4789) / VXLAN(flags=0x08, vni=5000) /
                          Ether(src="02:00:00:00:04:01", dst="02:00:00:00:04:02") /
                          IPv6(src="2001:db8:1::10", dst="2001:db8:2::20", hlim=60) /
                          TCP(sport=55555, dport=443, seq=1, ack=0, flags="S")])
    # RFC 8926 GENEVE with one option, protocol 0x0800 (IP directly, no inner Ethernet).
    g = GENEVE(vni=0xABCDE, proto=0x0800, optionlen=2,
               options=b"\x01\x02\x80\x01\x00\x00\x00\x0c")
    write("geneve_ip.pcap", [Ether(src=MAC_A, dst=MAC_B) /
                             IPv6(src="2001:db8::a", dst="2001:db8::b") /
                             UDP(sport=40001, dport=6081) / g /
                             IP(src="10.0.0.1", dst="10.0.0.2", ttl=5) /
                             UDP(sport=53000, dport=53) / Raw(b"\xab\xcd" + b"\x00" * 10)])

    # RFC 8200 extension-header chain: hop-by-hop, routing, destination options,
    # fragment (first, M=1), AH, then TCP.
    p6 = (Ether(src=MAC_A, dst=MAC_B) /
          IPv6(src="2001:db8::1", dst="2001:db8::99", hlim=64) /
          IPv6ExtHdrHopByHop() /
          IPv6ExtHdrRouting(type=0, addresses=["2001:db8::50"], segleft=1) /
          IPv6ExtHdrDestOpt() /
          IPv6ExtHdrFragment(offset=0, m=1, id=0x1234) /
          AH(nh=6, payloadlen=4, spi=0x100, seq=1, icv=b"\x11" * 12) /
          TCP(sport=1111, dport=2222, seq=5, ack=6, flags="A") / Raw(b"x" * 16))
    # non-first fragment of the same datagram
    p6b = (Ether(src=MAC_A, dst=MAC_B) /
           IPv6(src="2001:db8::1", dst="2001:db8::99", hlim=64) /
           IPv6ExtHdrFragment(offset=8, m=0, id=0x1234, nh=6) / Raw(b"y" * 24))
    write("ip6_ext.pcap", [p6, p6b])

    # IPv4 with a Router Alert option (IHL 6), and an IPv4/UDP datagram in two fragments.
    write("ip4_opt.pcap", [Ether(src=MAC_A, dst=MAC_B) /
                           IP(src="192.0.2.1", dst="224.0.0.22", ttl=1,
                              options=[IPOption_Router_Alert()]) /
                           UDP(sport=7000, dport=7001) / Raw(b"opt")])
    frags = fragment(IP(src="192.0.2.33", dst="198.51.100.44", id=77) /
                     UDP(sport=4444, dport=5555) / Raw(b"F" * 64), fragsize=32)
    write("ip4_frag.pcap", [Ether(src=MAC_A, dst=MAC_B) / f for f in frags])

    # IPv6-in-IPv4 (protocol 41).
    write("ipip.pcap", [Ether(src=MAC_A, dst=MAC_B) /
                        IP(src="198.51.100.1", dst="198.51.100.2", proto=41) /
                        IPv6(src="2001:db8:6::1", dst="2001:db8:6::2") /
                        UDP(sport=3000, dport=4000) / Raw(b"6in4")])

    # Too deep: five nested GRE tunnels (SN_DECODE_MAX_TUNNELS is 4).
    deep = tcp4(src="10.5.5.1", dst="10.5.5.2")
    for i in range(5):
        deep = IP(src=f"203.0.113.{i + 1}", dst=f"203.0.113.{i + 101}") / GRE() / deep
    write("gre_deep.pcap", [Ether(src=MAC_A, dst=MAC_B) / deep])

    # Link types: DLT_LOOP (108, network-order AF_INET6 = 24 as on OpenBSD),
    # LINKTYPE_IPV4 (228), LINKTYPE_IPV6 (229), DLT_PPP_SERIAL (50: FF 03 + protocol).
    ip6udp = (IPv6(src="2001:db8::7", dst="2001:db8::8") /
              UDP(sport=123, dport=123) / Raw(b"\x23" + b"\x00" * 47))
    write("loop.pcap", [b"\x00\x00\x00\x18" + bytes(ip6udp)], linktype=108)
    write("ipv4.pcap", [tcp4(flags="S")], linktype=228)
    write("ipv6.pcap", [ip6udp], linktype=229)
    write("ppp_hdlc.pcap", [b"\xff\x03\x00\x21" + bytes(tcp4(flags="FA"))], linktype=50)
    return 0


if __name__ == "__main__":
    sys.exit(main())
