#!/usr/bin/python3
"""Writes pcaps with known fingerprint behaviour into tests/pcap/fp/ (or the given folder).

Each capture is Ethernet/IPv4/TCP with TLS-looking streams: a three-way handshake, a
ClientHello with an SNI and a full, browser- or curl-like extension set (so JA3/JA4 are
computable), a TLS 1.2 abbreviated (session resumption) handshake, ServerHello, ChangeCipherSpec,
encrypted Finished, then application_data records of the stated sizes, one streamed record per
TCP segment for the LLM patterns, and a FIN close. Record bodies are pseudo-random bytes.
Output is deterministic (fixed seeds, fixed timestamps): running it twice gives identical files.

  llm_stream.pcap     client 1.128.0.10 (AS1221 in MaxMind's test ASN DB) -> 23.32.1.10:443
                      (AS35994), SNI api.openai.com, ALPN h2. One connection, 50 exchanges:
                      a 1024-byte request record, 200 ms to the first response record, 200
                      response records of 64 bytes 10 ms apart, 1 s think time. Client ACK
                      after every 16th response segment.
  llm_20clients.pcap  the same behaviour, scaled down (6 exchanges, 30..49 records of 50..89
                      bytes, ~1 KB requests, jittered timing) from 20 addresses in 3 ASNs:
                      1.128.0.x (AS1221), 12.81.92.x (AS7018), 31.224.0.x (AS3320), one
                      connection each, starting 5 s apart, all inside one 600 s window.
  bulk_download.pcap  client 198.51.100.7 -> 23.32.1.20:443, SNI downloads.example.com, ALPN
                      http/1.1, curl-like ClientHello. Two connections, each 2 downloads of
                      128 KiB (a 300-byte request, 8 records of 16408 bytes in 1448-byte
                      segments), client ACK every 2 segments.

Timestamps start at 1700000400 s (a multiple of 60 and 600) plus 1 s.

Usage: tests/tools/gen_traffic.py [OUTDIR]     (needs python3-scapy)
"""

import os
import random
import struct
import sys
from decimal import Decimal

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

BASE = 1700000400 + 1  # seconds
MSS = 1448
CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"

# ---------- TLS messages ----------


def u8(v):
    return struct.pack("!B", v)


def u16(v):
    return struct.pack("!H", v)


def u24(v):
    return struct.pack("!I", v)[1:]


def vec8(b):
    return u8(len(b)) + b


def vec16(b):
    return u16(len(b)) + b


def ext(t, body):
    return u16(t) + vec16(body)


def record(ct, body, version=0x0303):
    return u8(ct) + u16(version) + vec16(body)


def handshake(t, body):
    return u8(t) + u24(len(body)) + body


CHROME_SUITES = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
                 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
CURL_SUITES = [0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8, 0xCCAA,
               0xC02B, 0xC02F, 0x009E, 0xC024, 0xC028, 0x006B, 0xC023, 0xC027, 0x0067,
               0xC00A, 0xC014, 0x0039, 0xC009, 0xC013, 0x0033, 0x009D, 0x009C, 0x003D,
               0x003C, 0x0035, 0x002F, 0x00FF]
SIG_ALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def client_hello(rng, sni, alpn, style):
    """RFC 8446 4.1.2 ClientHello in a TLS record (legacy version 0x0301 on the record)."""
    sni_b = sni.encode()
    alpn_list = b"".join(vec8(p.encode()) for p in alpn)
    key_share = u16(0x001D) + vec16(bytes(rng.getrandbits(8) for _ in range(32)))
    exts = [
        ext(0x0000, vec16(u8(0) + vec16(sni_b))),                      # server_name
        ext(0x0017, b""),                                              # extended_master_secret
        ext(0xFF01, u8(0)),                                            # renegotiation_info
        ext(0x000A, vec16(u16(0x001D) + u16(0x0017) + u16(0x0018))),   # supported_groups
        ext(0x000B, vec8(u8(0))),                                      # ec_point_formats
        ext(0x0023, b""),                                              # session_ticket
        ext(0x0010, vec16(alpn_list)),                                 # ALPN
        ext(0x000D, vec16(b"".join(u16(s) for s in SIG_ALGS))),        # signature_algorithms
        ext(0x0033, vec16(key_share)),                                 # key_share
        ext(0x002D, vec8(u8(1))),                                      # psk_key_exchange_modes
        ext(0x002B, vec8(u16(0x0304) + u16(0x0303))),                  # supported_versions
    ]
    if style == "chrome":
        suites = CHROME_SUITES
        exts += [
            ext(0x0005, u8(1) + u16(0) + u16(0)),                      # status_request
            ext(0x0012, b""),                                          # signed_certificate_timestamp
            ext(0x001B, vec8(u16(2))),                                 # compress_certificate
            ext(0x4469, vec16(vec8(b"h2"))),                           # application_settings
            ext(0x0015, bytes(rng.randrange(60, 120))),                # padding
        ]
    else:
        suites = CURL_SUITES
        exts += [ext(0x0016, b"")]                                     # encrypt_then_mac
    body = (u16(0x0303) + bytes(rng.getrandbits(8) for _ in range(32))
            + vec8(bytes(rng.getrandbits(8) for _ in range(32)))
            + vec16(b"".join(u16(s) for s in suites)) + vec8(u8(0)) + vec16(b"".join(exts)))
    return record(22, handshake(1, body), version=0x0301)


def server_hello(rng, alpn):
    """TLS 1.2 ServerHello (RFC 5246 7.4.1.3) resuming a session, with the chosen ALPN."""
    exts = ext(0xFF01, u8(0)) + ext(0x0017, b"") + ext(0x0010, vec16(vec8(alpn.encode())))
    body = (u16(0x0303) + bytes(rng.getrandbits(8) for _ in range(32))
            + vec8(bytes(rng.getrandbits(8) for _ in range(32))) + u16(0xC02F) + u8(0)
            + vec16(exts))
    return record(22, handshake(2, body))


def ccs():
    return record(20, b"\x01")


def enc(rng, ct, n):
    """A record of n pseudo-random (ciphertext-like) bytes."""
    return record(ct, bytes(rng.getrandbits(8) for _ in range(n)))


# ---------- TCP connection writer ----------


class Conn:
    def __init__(self, out, rng, cli, srv, cport, sport=443):
        self.out, self.rng = out, rng
        self.cli, self.srv, self.cport, self.sport = cli, srv, cport, sport
        self.seq = [1000000 + cport * 7, 2000000 + cport * 13]  # next seq per direction
        self.ipid = [1, 1]

    def _emit(self, d, t, flags, payload=b""):
        src, dst = (self.cli, self.srv) if d == 0 else (self.srv, self.cli)
        sp, dp = (self.cport, self.sport) if d == 0 else (self.sport, self.cport)
        smac, dmac = (CLIENT_MAC, SERVER_MAC) if d == 0 else (SERVER_MAC, CLIENT_MAC)
        ack = self.seq[1 - d] if "A" in flags else 0
        p = (Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, id=self.ipid[d], ttl=64, flags="DF")
             / TCP(sport=sp, dport=dp, seq=self.seq[d], ack=ack, flags=flags, window=65535))
        if payload:
            p = p / payload
        p.time = Decimal(t).quantize(Decimal("0.000001"))
        self.out.write(p)
        self.ipid[d] = (self.ipid[d] + 1) & 0xFFFF
        self.seq[d] = (self.seq[d] + len(payload) + (1 if ("S" in flags or "F" in flags) else 0)) \
            & 0xFFFFFFFF

    def open(self, t):
        self._emit(0, t, "S")
        self._emit(1, t + 0.02, "SA")
        self._emit(0, t + 0.04, "A")
        return t + 0.04

    def data(self, d, t, payload, ack_every=0):
        """Sends payload in MSS segments 0.1 ms apart; the peer ACKs every ack_every segments."""
        segs = [payload[i:i + MSS] for i in range(0, len(payload), MSS)]
        for i, s in enumerate(segs):
            self._emit(d, t, "PA", s)
            if ack_every and (i + 1) % ack_every == 0:
                self._emit(1 - d, t + 0.00005, "A")
            t += 0.0001
        return t

    def close(self, t):
        self._emit(0, t, "FA")
        self._emit(1, t + 0.02, "FA")
        self._emit(0, t + 0.04, "A")
        return t + 0.04


def tls_open(conn, rng, t, sni, alpn, style):
    t = conn.open(t)
    conn.data(0, t + 0.0001, client_hello(rng, sni, alpn, style))
    t += 0.05
    conn.data(1, t, server_hello(rng, alpn[0]) + ccs() + enc(rng, 22, 40))
    t += 0.05
    conn.data(0, t, ccs() + enc(rng, 22, 40))
    return t + 0.01


def llm_session(conn, rng, t, exchanges, req, records, rec_len, ttfb, chunk_gap, think):
    """Each argument after exchanges is a callable returning that exchange's value."""
    for _ in range(exchanges):
        t = conn.data(0, t, enc(rng, 23, req()))
        t += ttfb()
        n = records()
        for r in range(n):
            conn.data(1, t, enc(rng, 23, rec_len()))
            if r % 16 == 15:
                conn._emit(0, t + 0.0005, "A")
            t += chunk_gap()
        conn._emit(0, t, "A")
        t += think()
    return t


def gen_llm_stream(path):
    rng = random.Random(1)
    with PcapWriter(path, linktype=1, sync=False) as out:
        c = Conn(out, rng, "1.128.0.10", "23.32.1.10", 40001)
        t = tls_open(c, rng, BASE, "api.openai.com", ["h2", "http/1.1"], "chrome")
        t = llm_session(c, rng, t + 0.5, 50, lambda: 1024, lambda: 200, lambda: 64,
                        lambda: 0.2, lambda: 0.01, lambda: 1.0)
        c.close(t)


def gen_llm_20clients(path):
    rng = random.Random(2)
    nets = ["1.128.0.", "12.81.92.", "31.224.0."]
    conns = []
    with PcapWriter(path, linktype=1, sync=False) as out:
        # One capture sorted by time: build each client's packets into a list, then merge.
        class Buf:
            def __init__(self):
                self.pkts = []

            def write(self, p):
                self.pkts.append(p)

        for i in range(20):
            b = Buf()
            crng = random.Random(100 + i)
            c = Conn(b, crng, nets[i % 3] + str(10 + i), "23.32.1.10", 41000 + i)
            t = tls_open(c, crng, BASE + 5 * i, "api.openai.com", ["h2", "http/1.1"], "chrome")
            t = llm_session(c, crng, t + 0.3, 6,
                            lambda: crng.randrange(960, 1090),
                            lambda: crng.randrange(30, 50),
                            lambda: crng.randrange(50, 90),
                            lambda: crng.uniform(0.15, 0.35),
                            lambda: crng.uniform(0.015, 0.03),
                            lambda: crng.uniform(1.0, 3.0))
            c.close(t)
            conns.append(b.pkts)
        allp = [p for ps in conns for p in ps]
        allp.sort(key=lambda p: p.time)  # stable: ties keep client order
        for p in allp:
            out.write(p)
    del rng


def gen_bulk(path):
    rng = random.Random(3)
    with PcapWriter(path, linktype=1, sync=False) as out:
        t = BASE + 7
        for k in range(2):
            c = Conn(out, rng, "198.51.100.7", "23.32.1.20", 42000 + k)
            t = tls_open(c, rng, t, "downloads.example.com", ["http/1.1"], "curl")
            for _ in range(2):
                t = c.data(0, t, enc(rng, 23, 300))
                t += 0.08
                body = b"".join(enc(rng, 23, 16408) for _ in range(8))
                t = c.data(1, t, body, ack_every=2)
                t += 0.2
            t = c.close(t) + 1.0


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "pcap", "fp")
    os.makedirs(outdir, exist_ok=True)
    gen_llm_stream(os.path.join(outdir, "llm_stream.pcap"))
    gen_llm_20clients(os.path.join(outdir, "llm_20clients.pcap"))
    gen_bulk(os.path.join(outdir, "bulk_download.pcap"))


if __name__ == "__main__":
    main()
