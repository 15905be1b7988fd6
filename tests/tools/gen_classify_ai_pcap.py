#!/usr/bin/python3
"""Makes tests/data/classify/ai_sni.pcap for tests/test_classify.c.

Takes the real TLS 1.2 ClientHello of tests/data/classify/443-git.pcap (git/libcurl to
github.com, from nDPI's test captures) with its TCP handshake, and writes one flow per
server name below: SYN, SYN+ACK, ACK and the ClientHello with the server_name extension
(RFC 6066 section 3) replaced and every enclosing length fixed (extensions block, handshake
message, TLS record, IP total length; checksums recomputed by scapy). Each flow gets its own
client port (40001, 40002, ...) so the test can tell them apart.

Run from the repository root with Debian's scapy:
    /usr/bin/python3 tests/tools/gen_classify_ai_pcap.py
"""
import struct
import sys

from scapy.all import IP, TCP, Raw, rdpcap, wrpcap  # noqa: E402

SRC = "tests/data/classify/443-git.pcap"
DST = "tests/data/classify/ai_sni.pcap"

# Order matters: the C test refers to flows by client port 40001 + index.
NAMES = [
    "api.openai.com",
    "chatgpt.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "bedrock-runtime.us-east-1.amazonaws.com",
    "my-resource.openai.azure.com",
    "api.mistral.ai",
    "api.deepseek.com",
    "www.example.org",  # negative: not an AI service
]


def patch_sni(record: bytes, name: str) -> bytes:
    # RFC 8446 5.1 TLSPlaintext: type(1) version(2) length(2) fragment
    ctype, rver, rlen = struct.unpack("!BHH", record[:5])
    assert ctype == 22 and rlen == len(record) - 5, "one whole handshake record expected"
    hs = record[5:]
    # RFC 8446 4: Handshake: msg_type(1) length(3) body; 4.1.2 ClientHello
    assert hs[0] == 1
    body = hs[4:]
    p = 2 + 32  # legacy_version, random
    p += 1 + body[p]  # legacy_session_id<0..32>
    p += 2 + struct.unpack("!H", body[p:p + 2])[0]  # cipher_suites<2..2^16-2>
    p += 1 + body[p]  # legacy_compression_methods<1..2^8-1>
    ext_total = struct.unpack("!H", body[p:p + 2])[0]
    exts = body[p + 2:p + 2 + ext_total]
    assert p + 2 + ext_total == len(body)
    out = b""
    q = 0
    found = False
    while q < len(exts):
        etype, elen = struct.unpack("!HH", exts[q:q + 4])
        edata = exts[q + 4:q + 4 + elen]
        if etype == 0:  # RFC 6066 3: ServerNameList { NameType(0) HostName<1..2^16-1> }
            hn = name.encode()
            entry = struct.pack("!BH", 0, len(hn)) + hn
            edata = struct.pack("!H", len(entry)) + entry
            found = True
        out += struct.pack("!HH", etype, len(edata)) + edata
        q += 4 + elen
    assert found, "ClientHello without server_name"
    body = body[:p] + struct.pack("!H", len(out)) + out
    hs = bytes([1]) + struct.pack("!I", len(body))[1:] + body
    return struct.pack("!BHH", 22, rver, len(hs)) + hs


def main() -> int:
    pkts = rdpcap(SRC)
    syn = synack = ack = hello = None
    for pk in pkts:
        if TCP not in pk:
            continue
        t = pk[TCP]
        payload = bytes(t.payload)
        if t.flags == "S" and syn is None:
            syn = pk
        elif t.flags == "SA" and synack is None:
            synack = pk
        elif syn is not None and synack is not None and ack is None and not payload:
            ack = pk
        elif payload[:1] == b"\x16" and len(payload) > 5 and payload[5] == 1:
            hello = pk
            break
    assert syn and synack and ack and hello, "handshake + ClientHello not found"
    cport = syn[TCP].sport
    out = []
    for i, name in enumerate(NAMES):
        port = 40001 + i
        for pk in (syn, synack, ack, hello):
            q = pk.copy()
            if q[TCP].sport == cport:
                q[TCP].sport = port
            else:
                q[TCP].dport = port
            if pk is hello:
                q[TCP].remove_payload()
                q[TCP].add_payload(Raw(patch_sni(bytes(pk[TCP].payload), name)))
            del q[IP].len
            del q[IP].chksum
            del q[TCP].chksum
            q.time = pk.time + i  # one second apart per flow
            out.append(q.__class__(bytes(q)))
            out[-1].time = q.time
    wrpcap(DST, out)
    print(f"wrote {len(out)} packets ({len(NAMES)} flows) to {DST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
