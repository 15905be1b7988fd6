"""Plain-Python pieces for the small generated test captures (no scapy): Ethernet/IPv4 frames
with a correct IP checksum (TCP/UDP checksums left 0: nothing here checks them), TCP
segments, UDP datagrams, and a classic pcap writer (microseconds, link type Ethernet).
Used by make_opaque_pcap.py and make_expiry_gap_pcap.py; deterministic for fixed inputs."""
import struct

ETH = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01"


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
    return ETH + b"\x08\x00" + ip + l4


def tcp(src, dst, sp, dp, seq, ack, flags, payload=b""):
    return frame(src, dst, 6, struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload)


def udp(src, dst, sp, dp, payload):
    return frame(src, dst, 17, struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload)


def write(path, pkts, t0):
    """pkts: (seconds after t0, frame bytes) in order."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, fr in pkts:
            sec, usec = t0 + int(ts), int(round((ts - int(ts)) * 1e6))
            if usec >= 1000000:
                sec, usec = sec + 1, usec - 1000000
            f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)) + fr)
