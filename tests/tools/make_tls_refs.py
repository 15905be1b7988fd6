#!/usr/bin/python3
"""Writes the reference TLS fingerprints used by tests/t_tls_refs.sh.

For every capture in tests/pcap/ref/<set>/ (copies of /work/shared/data/<set>/pcap/, see
tests/pcap/ref/SOURCES.md) this writes tests/data/tls_refs/<set>/<capture>.tsv, one line per
TCP or QUIC (UDP) flow (matched by addresses and ports, never by stream numbers) with the
columns

    client_ip client_port server_ip server_port sni ja3 ja3s ja4

- sni, ja3: from the flow's first ClientHello as tshark 4.0 decodes it
  (tls.handshake.extensions_server_name, tls.handshake.ja3);
- ja3s: from the flow's first ServerHello (tls.handshake.ja3s); TCP only: over QUIC the
  ServerHello is in the server's Initial, which the sensor does not decrypt (by design, it reads
  the client's Initials only), so there is nothing to compare;
- ja4: FoxIO's expected client JA4 for the flow: the Rust tool's insta snapshot
  (<shared>/ja4/expected/rust-insta/ja4__insta@<capture>.snap, TCP and UDP streams) for the ja4
  set, FoxIO's python/ja4.py output (<shared>/<set>/expected-ja4-foxio/<capture>.json, "JA4.1")
  for the others.

An empty field means the tool did not report that value for the flow (nothing to compare).
The client is the sender of the first ClientHello, else the receiver of the first
ServerHello, else FoxIO's "src". Needs tshark 4.0 and python3-yaml; only run to regenerate
(CI uses the committed .tsv files):

    /usr/bin/python3 tests/tools/make_tls_refs.py [--shared /work/shared/data]

It also prints, for the ja4 set, where FoxIO's Rust and Python outputs disagree on a TCP
client JA4 (information for the reviewer, not written to the fixtures).
"""
import argparse
import glob
import ipaddress
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PCAPS = os.path.join(ROOT, "tests", "pcap", "ref")
OUT = os.path.join(ROOT, "tests", "data", "tls_refs")
SETS = ("ja4", "ndpi", "mercury", "pq")
COLUMNS = ("client_ip", "client_port", "server_ip", "server_port", "sni", "ja3", "ja3s", "ja4")
FIELDS = ("ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport",
          "tls.handshake.type", "tls.handshake.extensions_server_name", "tls.handshake.ja3",
          "tls.handshake.ja3s", "udp.srcport", "udp.dstport")
SEP = "\x1f"  # tshark field separator: cannot appear in any of these fields


def norm_ip(s):
    return str(ipaddress.ip_address(s.strip()))


def last(v):
    """Innermost value of a repeated field (tunnels give outer,inner)."""
    parts = [p for p in v.split(",") if p]
    return parts[-1] if parts else ""


def flow_key(a, b):
    return tuple(sorted((a, b)))


class Flow:
    def __init__(self):
        self.client = None  # (ip, port)
        self.server = None
        self.ch_seen = False
        self.sh_seen = False
        self.sni = ""
        self.ja3 = ""
        self.ja3s = ""
        self.ja4 = ""
        self.order = None


def tshark_flows(pcap, flows):
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "(tcp || udp) && (tls.handshake.type==1 || tls.handshake.type==2)",
           "-T", "fields", "-E", "separator=" + SEP, "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for n, line in enumerate(out.splitlines()):
        v = line.split(SEP)
        if len(v) != len(FIELDS):
            sys.exit("%s: unexpected tshark line %r" % (pcap, line))
        # TCP, or QUIC (tshark decrypts client and server Initials) on UDP.
        src = (norm_ip(last(v[0]) or last(v[1])), int(last(v[2]) or last(v[10])))
        dst = (norm_ip(last(v[3]) or last(v[4])), int(last(v[5]) or last(v[11])))
        types = v[6].split(",")
        key = flow_key(src, dst)
        fl = flows.setdefault(key, Flow())
        if fl.order is None:
            fl.order = n
        if "1" in types:
            if fl.ch_seen and fl.sh_seen and fl.client == src:
                print("  note: %s %s: another ClientHello after the ServerHello (renegotiation or "
                      "port reuse); the first one is kept" % (os.path.basename(pcap), key))
            if not fl.ch_seen:
                fl.ch_seen = True
                fl.client, fl.server = src, dst
                # Several hellos in one packet: the first value belongs to the first hello.
                fl.sni = v[7].split(",")[0]
                fl.ja3 = v[8].split(",")[0]
        if "2" in types and not fl.sh_seen:
            fl.sh_seen = True
            if fl.client is None:
                fl.client, fl.server = dst, src
            if not last(v[10]):  # TCP (see ja3s above)
                fl.ja3s = v[9].split(",")[0]


def rust_ja4(name):
    path = os.path.join(SHARED, "ja4", "expected", "rust-insta", "ja4__insta@%s.snap" % name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        docs = list(yaml.safe_load_all(f))
    res = []
    for s in docs[-1] or []:
        if s.get("transport") not in ("tcp", "udp") or "ja4" not in s:
            continue
        res.append(((norm_ip(s["src"]), int(s["src_port"])),
                    (norm_ip(s["dst"]), int(s["dst_port"])), s["ja4"]))
    return res


def python_ja4(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    res = []
    for s in data:
        if "JA4.1" not in s:
            continue
        res.append(((norm_ip(s["src"]), int(s["srcport"])),
                    (norm_ip(s["dst"]), int(s["dstport"])), s["JA4.1"]))
    return res


def add_ja4(flows, entries, what):
    for src, dst, ja4 in entries:
        fl = flows.setdefault(flow_key(src, dst), Flow())
        if fl.client is None:
            fl.client, fl.server = src, dst
            fl.order = 1 << 30
        if fl.ja4 and fl.ja4 != ja4:
            print("  note: %s lists %s twice (%s, %s); the first is kept" % (what, (src, dst),
                                                                             fl.ja4, ja4))
            continue
        fl.ja4 = fl.ja4 or ja4


def main():
    global SHARED
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default="/work/shared/data")
    SHARED = ap.parse_args().shared
    ver = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    if " 4.0." not in ver:
        print("warning: the fixtures were made with tshark 4.0.17, this is %r" % ver)
    total = 0
    for set_ in SETS:
        os.makedirs(os.path.join(OUT, set_), exist_ok=True)
        for pcap in sorted(glob.glob(os.path.join(PCAPS, set_, "*"))):
            name = os.path.basename(pcap)
            if name.endswith(".md"):
                continue
            flows = {}
            tshark_flows(pcap, flows)
            if set_ == "ja4":
                rust = rust_ja4(name)
                add_ja4(flows, rust or [], "rust snapshot of " + name)
                py = python_ja4(os.path.join(SHARED, "ja4", "expected", "python", name + ".json"))
                rk = {flow_key(a, b): j for a, b, j in rust or []}
                for a, b, j in py or []:
                    k = flow_key(a, b)
                    if k in flows and flows[k].client != a:
                        continue  # python's stream that is not the client side
                    if rk.get(k) != j:
                        print("  FoxIO rust vs python differ: %s %s:%d -> %s:%d rust=%s python=%s"
                              % (name, a[0], a[1], b[0], b[1], rk.get(k), j))
            else:
                py = python_ja4(os.path.join(SHARED, set_, "expected-ja4-foxio", name + ".json"))
                add_ja4(flows, py or [], "FoxIO python output for " + name)
            rows = [fl for fl in flows.values() if fl.sni or fl.ja3 or fl.ja3s or fl.ja4]
            rows.sort(key=lambda fl: fl.order)
            out = os.path.join(OUT, set_, name + ".tsv")
            with open(out, "w") as f:
                f.write("\t".join(COLUMNS) + "\n")
                for fl in rows:
                    f.write("\t".join([fl.client[0], str(fl.client[1]), fl.server[0],
                                       str(fl.server[1]), fl.sni, fl.ja3, fl.ja3s, fl.ja4]) + "\n")
            total += len(rows)
            print("%s/%s: %d flows" % (set_, name, len(rows)))
    print("%d flows in total" % total)


if __name__ == "__main__":
    main()
