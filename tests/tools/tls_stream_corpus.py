#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz_tls_stream.c into tests/corpus/tls_stream/: the three
sample connections of tests/tools/tls_stream_samples.py in the fuzzer's input format (see the
top of tests/fuzz_tls_stream.c), in order, reversed, byte-split and cut. Needs python3-scapy.

usage: tests/tools/tls_stream_corpus.py [SHARED_DATA_DIR] [OUT_DIR]
"""
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_stream_samples as ts  # noqa: E402

if len(sys.argv) > 1:
    ts.DATA = sys.argv[1]
OUT = sys.argv[2] if len(sys.argv) > 2 else "tests/corpus/tls_stream"

MAX_SEG = 1200  # keep seeds small: long payloads are split


def encode(segs, base, cap_byte=124, first=8, cut=None):
    out = bytearray([cap_byte, first])
    for d, syn, seq, payload in segs:
        off = (seq - base[d]) & 0xffffffff
        neg = off >= 0x80000000
        if neg:
            off = (-off) & 0xffffffff
        off &= 0xffff
        flags = d | (2 if syn else 0) | (4 if neg else 0)
        c = 0
        if cut is not None and payload and cut < len(payload):
            flags |= 8
            c = cut
        out += struct.pack(">BHHB", flags, off, len(payload), c) + payload
    return bytes(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    rnd = random.Random(1)
    for name, path, cport, last, _ in ts.SAMPLES:
        raw = ts.segments(name, path, cport, last)
        base = [None, None]
        segs = []
        for _, d, syn, seq, _, payload in raw:
            if base[d] is None:
                base[d] = seq + 1 if syn else seq  # fuzzer: data starts at isn + 1
            start = seq + (1 if syn else 0)
            if syn:
                segs.append((d, 1, seq + 1 - 1, b""))
                continue
            for i in range(0, len(payload), MAX_SEG):
                segs.append((d, 0, start + i, payload[i:i + MAX_SEG]))
        # The fuzzer's base is isn + 1 for every direction; offsets are relative to it.
        # A SYN segment's seq is isn: encode it as offset 0 with the SYN flag (the fuzzer
        # subtracts 1 for SYNs).
        fixed = []
        for d, syn, seq, payload in segs:
            fixed.append((d, syn, base[d] if syn else seq, payload))
        data = [s for s in fixed if not s[1]]
        syns = [s for s in fixed if s[1]]
        variants = {
            "inorder": fixed,
            "reversed": syns + data[::-1],
            "shuffled": syns + rnd.sample(data, len(data)),
            "nosyn": data,
        }
        for vname, v in variants.items():
            with open("%s/%s_%s" % (OUT, name, vname), "wb") as f:
                f.write(encode(v, base))
        with open("%s/%s_cut" % (OUT, name), "wb") as f:
            f.write(encode(fixed, base, cut=40))
        with open("%s/%s_smallcap" % (OUT, name), "wb") as f:
            f.write(encode(fixed, base, cap_byte=2))
        # Small pieces of the first client segment: split headers and byte-wise growth.
        small = []
        for d, syn, seq, payload in fixed:
            if syn or d:
                continue
            for i in range(0, min(len(payload), 300), 7):
                small.append((d, 0, seq + i, payload[i:i + 7]))
            break
        with open("%s/%s_split7" % (OUT, name), "wb") as f:
            f.write(encode(syns + small, base))


if __name__ == "__main__":
    main()
