#!/usr/bin/env python3
"""Builds tests/data/tls/{messages,expected}.tsv for tests/test_tls_hs.c from real captures.

Messages: every TCP stream of every capture is reassembled by tshark (`-z follow,tcp,raw`),
then the TLS record layer of each direction is walked here to cut out complete ClientHello,
ServerHello and Certificate handshake messages (and SSLv2-compatible ClientHellos).

Expected values come from tools other than the sensor:
  sni, ja3, ja3s, cert_chain_len   tshark 4.0 (tls.handshake.extensions_server_name,
                                   tls.handshake.ja3, tls.handshake.ja3s, certificate_length)
  ja4                              FoxIO: ja4/expected/rust-insta/*.snap for ja4/pcap, else the
                                   expected-ja4-foxio/*.json (FoxIO's python/ja4.py) per folder
  cert_*                           `openssl x509` (CLI) on the leaf DER cut out here

Usage: tests/tools/tls_hs_fixtures.py [/work/shared/data] [tests/data/tls]
       tests/tools/tls_hs_fixtures.py --corpus [tests/data/tls] [tests/corpus/tls_hs]
         (writes libFuzzer seeds for tests/fuzz_tls_hs.c from a few fixture flows)
Needs tshark, openssl and python3-yaml. Output is deterministic (sorted).
"""
import datetime
import glob
import json
import os
import re
import subprocess
import sys

import yaml

DATA = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "data", "tls")
FOLDERS = ["ja4", "ndpi", "mercury", "pq"]
# Same bytes as another capture (see ja4/MANIFEST.md): left out to keep the fixtures small.
SKIP = {"ja4/tls-sni.pcapng", "ja4/ipv6.pcapng", "ja4/v6.pcap"}
KEEP_TYPES = {1, 2, 11}
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def tshark(args):
    r = subprocess.run(["tshark"] + args, capture_output=True, text=True)
    return r.stdout


def streams_of(pcap):
    out = tshark(["-r", pcap, "-T", "fields", "-e", "tcp.stream", "-Y", "tcp.len > 0"])
    return sorted({int(x) for x in out.split() if x.strip().isdigit()})


def follow(pcap, streams):
    """{stream: (node0, node1, bytes0, bytes1)} from tshark's raw TCP follow."""
    res = {}
    for chunk in range(0, len(streams), 200):
        args = ["-r", pcap, "-q"]
        for s in streams[chunk:chunk + 200]:
            args += ["-z", "follow,tcp,raw,%d" % s]
        cur = None
        for line in tshark(args).splitlines():
            m = re.match(r"Filter: tcp.stream eq (\d+)", line)
            if m:
                cur = [int(m.group(1)), None, None, [], []]
                res[cur[0]] = cur
                continue
            if cur is None or line.startswith("====") or line.startswith("Follow:"):
                continue
            m = re.match(r"Node ([01]): (.*):(\d+)$", line)
            if m:
                cur[1 + int(m.group(1))] = (m.group(2).strip("[]"), int(m.group(3)))
                continue
            if line.startswith("\t"):
                cur[4].append(line.strip())
            elif line.strip():
                cur[3].append(line.strip())
    return {s: (v[1], v[2], bytes.fromhex("".join(v[3])), bytes.fromhex("".join(v[4])))
            for s, v in res.items()}


def find_start(b):
    """Offset of the first TLS handshake record holding a hello, or ('v2', 0), or None."""
    if len(b) >= 3 and b[0] & 0x80 and b[2] == 1 and len(b) >= 5 and b[3] in (0, 3):
        return ("v2", 0)
    for i in range(0, max(0, len(b) - 9)):
        if b[i] == 0x16 and b[i + 1] == 3 and b[i + 2] <= 4 and b[i + 5] in (1, 2):
            ln = b[i + 3] << 8 | b[i + 4]
            if 4 <= ln <= 18432:
                return ("tls", i)
    return None


def messages(b):
    """[(type, record_version, body)] of the cleartext handshake messages of one direction."""
    st = find_start(b)
    if st is None:
        return []
    if st[0] == "v2":
        ln = (b[0] & 0x7F) << 8 | b[1]
        if len(b) < 2 + ln:
            return []
        return [("v2", 2, b[:2 + ln])]
    i = st[1]
    hs = b""
    base = 0    # absolute offset (in the handshake byte stream) of hs[0]
    recs = []   # (absolute offset where a record's fragment starts, record version)
    out = []
    after_ccs = False
    hrr_seen = False
    while i + 5 <= len(b):
        ct, ver, ln = b[i], b[i + 1] << 8 | b[i + 2], b[i + 3] << 8 | b[i + 4]
        if i + 5 + ln > len(b):
            break
        frag = b[i + 5:i + 5 + ln]
        i += 5 + ln
        if ct == 20:
            after_ccs = True
            continue
        if ct != 22:
            if ct == 23 and hrr_seen:
                continue
            break
        if after_ccs:
            # After ChangeCipherSpec only a hello in clear can follow (the second ClientHello
            # or the real ServerHello after a HelloRetryRequest); anything else is encrypted.
            if not (len(frag) >= 4 and frag[0] in (1, 2) and
                    (frag[1] << 16 | frag[2] << 8 | frag[3]) + 4 == len(frag)):
                break
        recs.append((base + len(hs), ver))
        hs += frag
        while len(hs) >= 4:
            t = hs[0]
            ml = hs[1] << 16 | hs[2] << 8 | hs[3]
            if len(hs) < 4 + ml:
                break
            rv = [v for off, v in recs if off <= base][-1]
            body = hs[4:4 + ml]
            if t == 2 and body[2:34] == HRR_RANDOM:
                hrr_seen = True
            out.append((t, rv, body))
            hs = hs[4 + ml:]
            base += 4 + ml
    return out


def ja4_rust(pcap_name):
    p = os.path.join(DATA, "ja4/expected/rust-insta", "ja4__insta@%s.snap" % pcap_name)
    if not os.path.exists(p):
        return {}
    text = open(p).read().split("---", 2)[2]
    res = {}
    for s in yaml.safe_load(text) or []:
        if s.get("transport") == "tcp" and "ja4" in s:
            res[(s["src"], int(s["src_port"]), s["dst"], int(s["dst_port"]))] = s["ja4"]
    return res


def ja4_python(folder, pcap_name):
    p = os.path.join(DATA, folder, "expected-ja4-foxio", pcap_name + ".json")
    if not os.path.exists(p):
        return {}
    res = {}
    for s in json.load(open(p)):
        if "JA4.1" in s:
            res[(s["src"], int(s["srcport"]), s["dst"], int(s["dstport"]))] = s["JA4.1"]
    return res


def tshark_expect(pcap):
    """{stream: {key: value}} from tshark's own dissection (first occurrence per stream)."""
    res = {}

    def put(stream, key, val):
        if val != "":
            res.setdefault(stream, {}).setdefault(key, val)

    out = tshark(["-r", pcap, "-Y", "tcp && tls.handshake.type == 1", "-T", "fields",
                  "-E", "occurrence=f", "-e", "tcp.stream",
                  "-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.ja3"])
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) == 3 and f[0]:
            s = int(f[0])
            if s in res and "ja3" in res[s]:
                continue
            put(s, "sni", f[1])
            put(s, "ja3", f[2])
    # ServerHellos: skip HelloRetryRequests (tshark computes a JA3S for those too).
    out = tshark(["-r", pcap, "-Y", "tcp && tls.handshake.type == 2", "-T", "fields",
                  "-E", "occurrence=a", "-E", "aggregator=|", "-e", "tcp.stream",
                  "-e", "tls.handshake.random", "-e", "tls.handshake.ja3s"])
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) == 3 and f[0]:
            rnds, ja3s = f[1].split("|"), f[2].split("|")
            for r, j in zip(rnds, ja3s):
                if r.replace(":", "").startswith("cf21ad74e59a6111"):
                    continue
                put(int(f[0]), "ja3s", j)
    out = tshark(["-r", pcap, "-Y", "tcp && tls.handshake.type == 11", "-T", "fields",
                  "-E", "occurrence=a", "-E", "aggregator=|", "-e", "tcp.stream",
                  "-e", "tls.handshake.certificate_length"])
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) == 2 and f[0] and f[1]:
            put(int(f[0]), "cert_chain_len", str(len(f[1].split("|"))))
    return res


def openssl_cert(der):
    """Leaf facts from the openssl CLI."""
    def run(args):
        return subprocess.run(["openssl", "x509", "-inform", "DER", "-noout"] + args,
                              input=der, capture_output=True).stdout.decode("utf-8", "replace")
    res = {}
    out = run(["-subject", "-issuer", "-serial", "-dates", "-fingerprint", "-sha256",
               "-nameopt", "RFC2253,-esc_msb"])
    if not out:
        return res
    for line in out.splitlines():
        k, _, v = line.partition("=")
        if k == "subject":
            res["cert_subject"] = v
        elif k == "issuer":
            res["cert_issuer"] = v
        elif k == "serial":
            res["cert_serial"] = v.lower()
        elif k in ("notBefore", "notAfter"):
            t = datetime.datetime.strptime(v.replace(" GMT", ""), "%b %d %H:%M:%S %Y")
            res["cert_not_" + k[3:].lower()] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif k.startswith("sha256 Fingerprint") or k.startswith("SHA256 Fingerprint"):
            res["cert_sha256"] = v.replace(":", "").lower()
    text = run(["-text"])
    m = re.search(r"Public Key Algorithm: (\S+)", text)
    if m:
        res["cert_key_type"] = {"rsaEncryption": "rsa", "id-ecPublicKey": "ec",
                                "ED25519": "ed25519", "ED448": "ed448",
                                "dsaEncryption": "dsa", "rsassaPss": "rsa-pss"}.get(m.group(1), "")
    m = re.search(r"Public-Key: \((\d+) bit\)", text)
    if m:
        res["cert_key_bits"] = m.group(1)
    ext = run(["-ext", "subjectAltName"])
    sans = re.findall(r"DNS:([^,\s]+)", ext)
    if sans:
        res["cert_san"] = ",".join(sans)
    return {k: v for k, v in res.items() if v != ""}


def main():
    msgs, exp = [], []
    seen_msg = set()
    for folder in FOLDERS:
        for pcap in sorted(glob.glob(os.path.join(DATA, folder, "pcap", "*"))):
            name = os.path.basename(pcap)
            tag = "%s/%s" % (folder, name)
            if tag in SKIP:
                continue
            streams = streams_of(pcap)
            if not streams:
                continue
            flows = follow(pcap, streams)
            ja4 = ja4_rust(name) if folder == "ja4" else ja4_python(folder, name)
            ts = tshark_expect(pcap)
            for s in sorted(flows):
                n0, n1, b0, b1 = flows[s]
                if not n0 or not n1:
                    continue
                m0, m1 = messages(b0), messages(b1)
                # The client is the side whose first message is a ClientHello; in a one-sided
                # capture without one, the side that sent a ServerHello is the server.
                def first_is(ms, types):
                    return bool(ms) and ms[0][0] in types
                if (first_is(m1, (1, "v2")) and not first_is(m0, (1, "v2"))) or \
                        (not m1 and first_is(m0, (2, 11))):
                    n0, n1, m0, m1 = n1, n0, m1, m0
                if not m0 and not m1:
                    continue
                flow = "%s\t%d\t%s\t%d\t%s\t%d" % (tag, s, n0[0], n0[1], n1[0], n1[1])
                nmsg = 0
                kept_cert = False
                for d, ms in ((0, m0), (1, m1)):
                    for t, rv, body in ms:
                        if t != "v2" and t not in KEEP_TYPES:
                            continue
                        if t == 11 and (d != 1 or body in seen_msg):
                            continue  # the same chain again: once is enough
                        if t == 11:
                            seen_msg.add(body)
                            kept_cert = True
                        msgs.append("%s\t%d\t%s\t%04x\t%s" % (flow, d, t, rv, body.hex()))
                        nmsg += 1
                        if t == 11 and len(body) > 7:
                            l0 = body[3] << 16 | body[4] << 8 | body[5]
                            for k, v in sorted(openssl_cert(body[6:6 + l0]).items()):
                                exp.append("%s\t%s\t%s\topenssl" % (flow, k, v))
                if not nmsg:
                    continue
                for k, v in sorted(ts.get(s, {}).items()):
                    if k == "cert_chain_len" and not kept_cert:
                        continue
                    exp.append("%s\t%s\t%s\ttshark" % (flow, k, v))
                key = (n0[0], n0[1], n1[0], n1[1])
                if key in ja4:
                    exp.append("%s\tja4\t%s\t%s" % (flow, ja4[key],
                               "foxio-rust" if folder == "ja4" else "foxio-python"))
    os.makedirs(OUT, exist_ok=True)
    hdr = "# pcap\tstream\tclient\tcport\tserver\tsport\t"
    with open(os.path.join(OUT, "messages.tsv"), "w") as f:
        f.write("# Generated by tests/tools/tls_hs_fixtures.py; do not edit.\n")
        f.write(hdr + "dir\ttype\trecord_version\tbody_hex\n")
        f.write("\n".join(msgs) + "\n")
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        f.write("# Generated by tests/tools/tls_hs_fixtures.py; do not edit.\n")
        f.write(hdr + "key\tvalue\tsource\n")
        f.write("\n".join(exp) + "\n")
    print("%d messages, %d expected values" % (len(msgs), len(exp)))


# Seeds for tests/fuzz_tls_hs.c: (flow, which messages) from messages.tsv.
CORPUS_FLOWS = [
    ("ndpi/tls_ech.pcapng\t0", "ech_flow"),
    ("ndpi/selfsigned.pcap\t0", "tls12_selfsigned_flow"),
    ("ndpi/dns_dot.pcap\t0", "tls12_no_sni_flow"),
    ("ja4/tls-non-ascii-alpn.pcapng\t0", "non_ascii_alpn_flow"),
    ("mercury/client_hello_sslv3.pcap\t0", "sslv3_hello"),
    ("pq/chromium-156-x25519mlkem768-2seg.pcap\t0", "pq_flow"),
    ("ndpi/tls_2_reasms.pcapng\t0", "fizz_flow"),
]


def corpus(src, dst):
    """Each seed: entries [selector][u16 length][body] as tests/fuzz_tls_hs.c reads them."""
    os.makedirs(dst, exist_ok=True)
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(src, "messages.tsv"))
            if not l.startswith("#")]
    sel = {"1": 0, "2": 1, "11": 2, "v2": 3}
    for flow, name in CORPUS_FLOWS:
        out = b""
        for r in rows:
            if "\t".join(r[:2]) != flow:
                continue
            body = bytes.fromhex(r[9])
            if len(body) > 0xFFFF:
                continue
            out += bytes([sel[r[7]]]) + len(body).to_bytes(2, "big") + body
        if out:
            open(os.path.join(dst, name), "wb").write(out)
    # RFC 5246 E.2 SSLv2-compatible hello (same bytes as test_tls_hs.c's sslv2_hello).
    v2 = bytes.fromhex("8028010301000f00000010" "0700c0000039000035" "00000a010080" + "5a" * 16)
    open(os.path.join(dst, "sslv2_hello"), "wb").write(bytes([3]) + len(v2).to_bytes(2, "big") + v2)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--corpus":
        here = os.path.dirname(os.path.abspath(__file__))
        corpus(sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "data", "tls"),
               sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "..", "corpus", "tls_hs"))
    else:
        main()
