#!/usr/bin/python3
"""Reference implementation of the fingerprint "simhash" (schema 1), for consumers.

Reads fingerprint NDJSON (files or stdin), recomputes each record's SimHash from the record's
own fields as documented in deploy/schema/fingerprint.schema.json and include/agg.h, and
checks it against the "simhash" value. Exit status 1 on any mismatch.
With --dist, also prints the pairwise Hamming distances of the records read.

Usage: tests/tools/fp_simhash.py [--dist] [FILE...]
"""

import fileinput
import json
import sys

M64 = (1 << 64) - 1
HISTS = ["flow_bytes_down", "flow_duration_us", "record_bytes_up", "record_bytes_down",
         "response_bytes", "response_records", "ttfb_us", "response_duration_us", "gap_us"]


def h64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h


def share(c, t):
    return (2000 * c + t) // (2 * t)


def features(r):
    f = []
    for name in HISTS:
        c = r["hist"][name] + [0] * (32 - len(r["hist"][name]))
        t = sum(c)
        if not t:
            continue
        for b in range(32):
            s = 2 * c[b] + (c[b - 1] if b > 0 else 0) + (c[b + 1] if b < 31 else 0)
            if s:
                f.append(("h:%s:%d" % (name, b), share(s, 4 * t)))
    up, down = r["up"]["bytes"], r["down"]["bytes"]
    if up + down:
        hi, lo = max(up, down), min(up, down)
        q = ((hi + 1) // (lo + 1)).bit_length() - 1
        f.append(("ratio:%s%d" % ("-" if down < up and q else "+", q), 1000))
    for field in ("ja4", "alpn"):
        t = sum(x["n"] for x in r[field]) + r[field + "_other"]
        for x in r[field]:
            f.append(("%s:%s" % (field, x["v"]), share(x["n"], t)))
    f.append(("service:" + r["service"]["name"], 500))
    return f


def simhash(r):
    v = [0] * 64
    for s, w in features(r):
        h = h64(s)
        for b in range(64):
            v[b] += w if (h >> b) & 1 else -w
    return sum(1 << b for b in range(64) if v[b] > 0)


def main():
    args = sys.argv[1:]
    dist = "--dist" in args
    args = [a for a in args if a != "--dist"]
    recs, bad = [], 0
    for line in fileinput.input(args):
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get("type") != "fingerprint":
            continue
        mine = "%016x" % simhash(r)
        if mine != r["simhash"]:
            bad += 1
            print("MISMATCH %s %s: record %s, computed %s" % (r["client"]["id"],
                  r["service"]["name"], r["simhash"], mine))
        recs.append(r)
    print("%d records, %d mismatches" % (len(recs), bad))
    if dist:
        for i, a in enumerate(recs):
            for b in recs[i + 1:]:
                d = bin(int(a["simhash"], 16) ^ int(b["simhash"], 16)).count("1")
                print("%2d %s %s" % (d, a["client"]["id"], b["client"]["id"]))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
