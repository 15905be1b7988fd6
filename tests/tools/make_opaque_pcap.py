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

rng = random.Random(8)
T0 = 1700000000


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def frame(src, dst, proto, l4):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0, ip4(src), ip4(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + l4


def tcp(src, dst, sp, dp, seq, ack, payload):
    return frame(src, dst, 6, struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, 0x18, 65535, 0, 0) + payload)


def udp(src, dst, sp, dp, payload):
    return frame(src, dst, 17, struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload)


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
    pkts.append((t, tcp(*ends, seq[d], seq[1 - d], rec)))
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
pkts.append((t, tcp(C, "192.0.2.12", 50002, 8080, 5000, 7000, req)))
pkts.append((t + 0.01, tcp("192.0.2.12", C, 8080, 50002, 7000, 5000 + len(req), rsp)))

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "pcap", "opaque_to_ndpi.pcap")
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for ts, fr in pkts:
        sec = T0 + int(ts)
        usec = int(round((ts - int(ts)) * 1e6))
        f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)) + fr)
