#!/usr/bin/python3
"""Writes tests/pcap/expiry_gap.pcap: more flows time out in one capture gap than a pipeline
ends per packet (SN_FLOW_EXPIRE_BUDGET, 64), and the gap closes a fingerprint window.

  1. From T0 + 1 s, 10 ms apart: 16 TCP connections (SYN, SYN+ACK, ACK, FIN, FIN, ACK) from
     10.1.0.1..16 to 192.0.2.201:80, then 150 DNS exchanges (query, answer 1 ms later) from
     10.1.1.1..150 port 40000 to 192.0.2.1..20:53; the clients spread over the workers.
  2. An ARP request at T0 + 125 s and another at T0 + 126 s: past the window's end + grace
     and every flow's timeout, but they belong to no flow.
  3. From T0 + 130 s, 100 ms apart: 6 DNS queries 10.2.0.1:40000 -> 192.0.2.99:53.

The first ARP closes the window: before it does, every one of the 166 flows ends, not only
the SN_FLOW_EXPIRE_BUDGET (64) a packet ends otherwise, so all count in the window they were
active in. With --workers N (whose reader broadcasts the clock to every worker, ARP included)
the fingerprints must be the same.

Plain Python (no scapy), fixed timestamps: the output is the same on every run.
Usage: tests/tools/make_expiry_gap_pcap.py [OUT]
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawpcap import ETH, ip4, tcp, udp, write  # noqa: E402

T0 = 1700000000


def dns(qid, answer):
    q = b"\x07example\x03com\x00\x00\x01\x00\x01"
    if not answer:
        return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + q + \
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + ip4("192.0.2.250")


SYN, ACK, FIN = 0x02, 0x10, 0x01
pkts = []
t = 1.0
for i in range(16):
    c, s = f"10.1.0.{i + 1}", "192.0.2.201"
    cp = 50000 + i
    for k, (fwd, fl) in enumerate([(1, SYN), (0, SYN | ACK), (1, ACK), (1, FIN | ACK), (0, FIN | ACK), (1, ACK)]):
        p = tcp(c, s, cp, 80, 1000, 2000, fl) if fwd else tcp(s, c, 80, cp, 2000, 1000, fl)
        pkts.append((t + k * 0.001, p))
    t += 0.01
for i in range(150):
    c, s = f"10.1.1.{i + 1}", f"192.0.2.{i % 20 + 1}"
    pkts.append((t, udp(c, s, 40000, 53, dns(i, False))))
    pkts.append((t + 0.001, udp(s, c, 53, 40000, dns(i, True))))
    t += 0.01
arp = ETH[:6] + b"\x02\0\0\0\0\x03" + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + \
    b"\x02\0\0\0\0\x03" + ip4("10.1.0.254") + b"\0" * 6 + ip4("10.1.0.1")
pkts.append((125.0, arp))
pkts.append((126.0, arp))
for i in range(6):
    pkts.append((130.0 + i * 0.1, udp("10.2.0.1", "192.0.2.99", 40000, 53, dns(1000 + i, False))))

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "pcap", "expiry_gap.pcap")
write(out, pkts, T0)
