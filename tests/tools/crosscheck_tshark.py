#!/usr/bin/env python3
"""Cross-checks spanprint's flow records against tshark, an independent dissector.

usage: crosscheck_tshark.py CAPTURE FLOWS.jsonl

For every TCP/UDP packet tshark decodes, takes the innermost IP addresses, ports and IP
length (IPv4 total length, IPv6 40 + payload length), groups them by 5-tuple and direction,
and compares packet and byte counts with the sum of spanprint's flow records (all parts)
for the same 5-tuple. Prints one line per mismatch and a summary; exits 1 on any mismatch.
Used when writing golden expectations; CI does not need tshark.
"""
import collections
import json
import subprocess
import sys


def last(field):
    return field.split(",")[-1] if field else ""


def tshark_flows(cap):
    fields = ["frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.len",
              "ipv6.plen", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"]
    # occurrence=l: the last (innermost) value of fields that repeat in tunnels
    cmd = ["tshark", "-n", "-r", cap, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=l"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    flows = collections.Counter()
    byts = collections.Counter()
    for line in out.splitlines():
        v = dict(zip(fields, line.split("\t")))
        layers = v["frame.protocols"].split(":")
        # the L4 header that follows the innermost IP header
        ips = [i for i, p in enumerate(layers) if p in ("ip", "ipv6")]
        if not ips:
            continue
        if "icmp" in layers or "icmpv6" in layers:
            continue  # ICMP errors quote packets; those belong to the ICMP flow
        inner = ips[-1]
        l4 = layers[inner + 1] if inner + 1 < len(layers) else ""
        if l4 == "tcp" and v["tcp.srcport"]:
            proto, sp, dp = "tcp", v["tcp.srcport"], v["tcp.dstport"]
        elif l4 == "udp" and v["udp.srcport"]:
            proto, sp, dp = "udp", v["udp.srcport"], v["udp.dstport"]
        else:
            continue
        if layers[inner] == "ipv6":
            src, dst, ln = v["ipv6.src"], v["ipv6.dst"], 40 + int(v["ipv6.plen"] or 0)
        else:
            src, dst, ln = v["ip.src"], v["ip.dst"], int(v["ip.len"] or 0)
        key = (proto, src, int(sp), dst, int(dp))
        flows[key] += 1
        byts[key] += ln
    return flows, byts


def main():
    cap, recs = sys.argv[1], sys.argv[2]
    tf, tb = tshark_flows(cap)
    sf, sb = collections.Counter(), collections.Counter()
    for line in open(recs):
        r = json.loads(line)
        if r.get("type") != "flow" or r["proto"] not in ("tcp", "udp") or "port" not in r["client"]:
            continue
        c, s = r["client"], r["server"]
        k0 = (r["proto"], c["ip"], c["port"], s["ip"], s["port"])
        k1 = (r["proto"], s["ip"], s["port"], c["ip"], c["port"])
        sf[k0] += r["c2s"]["pkts"]
        sb[k0] += r["c2s"]["bytes"]
        sf[k1] += r["s2c"]["pkts"]
        sb[k1] += r["s2c"]["bytes"]
    bad = 0
    for k in sorted(set(tf) | set(k for k in sf if sf[k])):
        if tf[k] != sf[k] or tb[k] != sb[k]:
            bad += 1
            print(f"MISMATCH {k}: tshark {tf[k]} pkts {tb[k]} bytes; spanprint {sf[k]} pkts {sb[k]} bytes")
    n = len([k for k in tf])
    print(f"{cap}: {n} directional 5-tuples compared, {bad} mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
