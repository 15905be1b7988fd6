#!/usr/bin/python3
"""Makes tests/pcap/tls/pq_*.pcap from the real Chromium 156 post-quantum capture
(/work/shared/data/pq/pcap/chromium-156-x25519mlkem768-2seg.pcap, see its MANIFEST.md):
two TLS 1.3 connections whose ClientHello (about 1.99 KB, X25519MLKEM768 key share) spans two
TCP segments. Packets are copied byte for byte (checksums stay valid); only their order in
the file and their timestamps change:

  pq_orig.pcap        unchanged copy
  pq_reordered.pcap   in each connection the two ClientHello segments swap places
  pq_retrans.pcap     in each connection the first ClientHello segment is sent again
                      (a retransmission) after the second one, 1 ms later
  pq_reordered_retrans.pcap  both: second segment, first segment, first segment again

SNI and JA4 must be the same for every variant (tests/t_tls.sh). Needs python3-scapy.

usage: tests/tools/make_pq_variants.py [SRC_PCAP] [OUT_DIR]
"""
import copy
import sys

from scapy.all import TCP, rdpcap, wrpcap

SRC = sys.argv[1] if len(sys.argv) > 1 else \
    "/work/shared/data/pq/pcap/chromium-156-x25519mlkem768-2seg.pcap"
OUT = sys.argv[2] if len(sys.argv) > 2 else "tests/pcap/tls"


def hello_segments(pkts):
    """Index pairs (first, second) of the two client data segments that carry each
    connection's ClientHello: the first two client-to-443 segments with payload."""
    seen = {}
    for i, p in enumerate(pkts):
        if TCP not in p or p[TCP].dport != 443 or not bytes(p[TCP].payload):
            continue
        seen.setdefault(p[TCP].sport, []).append(i)
    pairs = []
    for sport, idx in sorted(seen.items()):
        first, second = idx[0], idx[1]
        assert bytes(pkts[first][TCP].payload)[0] == 0x16, "first segment starts a record"
        pairs.append((first, second))
    return pairs


def retimed(pkt, t):
    q = copy.deepcopy(pkt)
    q.time = t
    return q


def main():
    pkts = list(rdpcap(SRC))
    pairs = hello_segments(pkts)
    assert len(pairs) == 2, pairs

    wrpcap(OUT + "/pq_orig.pcap", pkts)

    # Reordered: swap the two segments, keeping the file's timestamps in place.
    reo = list(pkts)
    for a, b in pairs:
        reo[a], reo[b] = retimed(pkts[b], pkts[a].time), retimed(pkts[a], pkts[b].time)
    wrpcap(OUT + "/pq_reordered.pcap", reo)

    # Retransmitted: the first segment again right after the second.
    ret = []
    firsts = {a: b for a, b in pairs}
    seconds = {b: a for a, b in pairs}
    for i, p in enumerate(pkts):
        ret.append(p)
        if i in seconds:
            ret.append(retimed(pkts[seconds[i]], p.time + 0.001))
    wrpcap(OUT + "/pq_retrans.pcap", ret)

    # Both: second, first, first again.
    both = []
    for i, p in enumerate(pkts):
        if i in firsts:
            both.append(retimed(pkts[firsts[i]], p.time))
        elif i in seconds:
            a = seconds[i]
            both.append(retimed(pkts[a], p.time))
            both.append(retimed(pkts[a], p.time + 0.001))
        else:
            both.append(p)
    wrpcap(OUT + "/pq_reordered_retrans.pcap", both)


main()
