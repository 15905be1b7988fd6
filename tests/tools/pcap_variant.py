#!/usr/bin/env python3
"""Rewrites a classic little-endian microsecond pcap file in another of the format's shapes,
for tests/t_capture.sh (spanprint's own pcap reader against libpcap's):
  pcap_variant.py big IN OUT     the same file in big-endian byte order
  pcap_variant.py nsec IN OUT    nanosecond timestamps (magic 0xa1b23c4d)
  pcap_variant.py snap N IN OUT  file header snapshot length set to N (records keep their
                                 captured length, so longer ones exceed it)
"""
import struct
import sys


def records(data):
    off = 24
    while off + 16 <= len(data):
        sec, frac, cap, wire = struct.unpack_from("<IIII", data, off)
        yield sec, frac, cap, wire, data[off + 16:off + 16 + cap]
        off += 16 + cap


def main():
    mode = sys.argv[1]
    args = sys.argv[2:]
    snap = None
    if mode == "snap":
        snap, args = int(args[0]), args[1:]
    src, dst = args
    data = open(src, "rb").read()
    magic, major, minor, zone, sigfigs, snaplen, link = struct.unpack_from("<IHHiIII", data, 0)
    assert magic == 0xA1B2C3D4, "expects a little-endian microsecond pcap"
    end = ">" if mode == "big" else "<"
    if mode == "nsec":
        magic = 0xA1B23C4D
    if snap is not None:
        snaplen = snap
    out = [struct.pack(end + "IHHiIII", magic, major, minor, zone, sigfigs, snaplen, link)]
    for sec, frac, cap, wire, body in records(data):
        if mode == "nsec":
            frac = frac * 1000 + 999  # sub-microsecond digits that must be truncated away
        out.append(struct.pack(end + "IIII", sec, frac, cap, wire) + body)
    open(dst, "wb").write(b"".join(out))


if __name__ == "__main__":
    main()
