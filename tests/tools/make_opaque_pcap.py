#!/usr/bin/python3
"""Writes tests/pcap/opaque_to_ndpi.pcap: flows whose protocol nDPI 4.2 cannot dissect from the
packets it gets, picked up after their handshakes (see opaque_to_ndpi in sensor/pipeline.c).

  1. TCP 10.9.0.1:50000 <-> 192.0.2.10:443, mid-stream (no SYN): 12 segments, each one TLS 1.2
     application_data record (17 03 03 len) of pseudo-random bytes, client and server in turn.
  2. UDP 10.9.0.1:50001 <-> 192.0.2.11:443: 12 QUIC short-header datagrams (first byte 01xxxxxx,
     8-byte connection id, pseudo-random rest), client and server in turn.
  3. TCP 10.9.0.1:50002 <-> 192.0.2.12:8080, mid-stream: an HTTP request and response (nDPI
     names it: the control flow, fed as usual).

Plain Python (no scapy), fixed seed and timestamps: the output is the same on every run.
Usage: tests/tools/make_opaque_pcap.py [OUT]
"""
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawpcap import tcp, udp, write  # noqa: E402

rng = random.Random(8)
T0 = 1700000000

pkts = []
t = 0.0
C = "10.9.0.1"
# 1. TLS application data, mid-stream
seq = [1000, 900000]
for i in range(12):
    d = i % 2
    body = bytes(rng.getrandbits(8) for _ in range(64 + 16 * i))
    rec = b"\x17\x03\x03" + struct.pack("!H", len(body)) + body
    ends = (C, "192.0.2.10", 50000, 443) if d == 0 else ("192.0.2.10", C, 443, 50000)
    pkts.append((t, tcp(*ends, seq[d], seq[1 - d], 0x18, rec)))
    seq[d] += len(rec)
    t += 0.01
# 2. QUIC short headers
cid = bytes(rng.getrandbits(8) for _ in range(8))
for i in range(12):
    d = i % 2
    body = bytes([0x40 | rng.getrandbits(6)]) + cid + bytes(rng.getrandbits(8) for _ in range(40 + 20 * i))
    ends = (C, "192.0.2.11", 50001, 443) if d == 0 else ("192.0.2.11", C, 443, 50001)
    pkts.append((t, udp(*ends, body)))
    t += 0.01
# 3. HTTP, mid-stream
req = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n"
rsp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"
pkts.append((t, tcp(C, "192.0.2.12", 50002, 8080, 5000, 7000, 0x18, req)))
pkts.append((t + 0.01, tcp("192.0.2.12", C, 8080, 50002, 7000, 5000 + len(req), 0x18, rsp)))

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "pcap", "opaque_to_ndpi.pcap")
write(out, pkts, T0)
