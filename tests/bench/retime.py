#!/usr/bin/env python3
"""Move a classic pcap file onto the benchmark's clock (used by build_captures.sh).

    retime.py IN OUT START_US MAX_GAP_S

Writes IN to OUT with the first packet at START_US (microseconds since the epoch) and every
later packet the same distance after its predecessor as in IN, except that a jump of more than
MAX_GAP_S seconds (forward or backward) becomes one second. Several of the source captures are
recordings of separate sessions glued together, months apart (ndpi/pcap/quic.pcap spans a year);
repeated 150 times those gaps would run the 32-bit pcap clock past 2106, and replayed traffic
that idles for months is not what a sensor sees. Prints the last packet's time (microseconds).
Only the timestamps change; packet data and lengths are copied as they are.
"""
import struct
import sys


def main() -> int:
    src, dst, start_us, max_gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    max_gap_us = int(max_gap * 1_000_000)
    with open(src, "rb") as f:
        data = f.read()
    if len(data) < 24:
        sys.exit(f"retime: {src}: not a pcap file")
    magic = data[:4]
    formats = {
        b"\xd4\xc3\xb2\xa1": ("<", 1), b"\xa1\xb2\xc3\xd4": (">", 1),
        b"\x4d\x3c\xb2\xa1": ("<", 1000), b"\xa1\xb2\x3c\x4d": (">", 1000),
    }
    if magic not in formats:
        sys.exit(f"retime: {src}: not a classic pcap file")
    end, sub_per_us = formats[magic]  # sub-second unit: microseconds or nanoseconds
    sub_per_s = 1_000_000 * sub_per_us
    rec = struct.Struct(end + "IIII")
    out = bytearray(data[:24])
    off = 24
    prev_in = None
    cur = start_us * sub_per_us  # in the file's own sub-second unit
    while off + 16 <= len(data):
        sec, sub, caplen, wirelen = rec.unpack_from(data, off)
        t = sec * sub_per_s + sub
        if prev_in is not None:
            delta = t - prev_in
            if abs(delta) > max_gap_us * sub_per_us:
                delta = sub_per_s
            cur += delta
        prev_in = t
        out += rec.pack(cur // sub_per_s, cur % sub_per_s, caplen, wirelen)
        out += data[off + 16:off + 16 + caplen]
        off += 16 + caplen
    with open(dst, "wb") as f:
        f.write(out)
    print(cur // sub_per_us)
    return 0


if __name__ == "__main__":
    sys.exit(main())
