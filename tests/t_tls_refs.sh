#!/usr/bin/env bash
# TLS fingerprints end to end against other tools, on real captures: for every capture in
# tests/pcap/ref/ (copies of the TLS-over-TCP captures in /work/shared/data, listed in
# tests/pcap/ref/SOURCES.md) run the sensor and compare, per TCP or QUIC flow (matched by addresses
# and ports), SNI, JA3 and JA3S with what tshark 4.0 reports (tls.handshake.extensions_server_name,
# tls.handshake.ja3, tls.handshake.ja3s), the client JA4 with FoxIO's reference outputs, and
# that the sensor's client side is the ClientHello sender.
# The expectations are committed in tests/data/tls_refs/<set>/<capture>.tsv (written by
# tests/tools/make_tls_refs.py), so this test needs neither tshark nor FoxIO's tools.
#
# One check per capture and field kind. A check fails on any difference not listed in
# tests/data/tls_refs/known_differences.tsv (capture, field, flow, expected, what the sensor
# gives, reason), and also when a listed difference no longer occurs, so the list stays honest.
source "$(dirname "$0")/lib/check.sh"
cd "$ROOT"

REFS=tests/data/tls_refs
PCAPS=tests/pcap/ref

# Prints a detail file and succeeds if the status is "ok" (for `check`).
verdict() {
    [ -s "$2" ] && cat "$2"
    [ "$1" = ok ]
}

for tsv in "$REFS"/*/*.tsv; do
    rel=${tsv#"$REFS"/}
    cap=${rel%.tsv}
    out=$TMP/${cap//\//__}.ndjson
    "$SP" -r "$PCAPS/$cap" --sensor-id t_tls_refs >"$out" 2>"$out.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "exit status $rc on $PCAPS/$cap" >>"$out.err"
        check "$cap: sensor runs cleanly" verdict fail "$out.err"
    fi
done

python3 - "$REFS" "$TMP" >"$TMP/results" 2>"$TMP/compare.err" <<'EOF'
import csv, glob, ipaddress, json, os, sys

refs, tmp = sys.argv[1], sys.argv[2]
KINDS = (("sni", "SNI", "tshark"), ("ja3", "JA3", "tshark"), ("ja3s", "JA3S", "tshark"),
         ("ja4", "JA4", None), ("client", "client side", "tshark"))
NONE = "(none)"


def ip(s):
    return str(ipaddress.ip_address(s))


def read_tsv(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:]]


known = {}
for k in read_tsv(os.path.join(refs, "known_differences.tsv")):
    key = (k["capture"], k["field"], ip(k["client_ip"]), int(k["client_port"]),
           ip(k["server_ip"]), int(k["server_port"]))
    known[key] = k
used = set()
results = []
n_detail = 0


def emit(status, name, lines):
    global n_detail
    n_detail += 1
    path = os.path.join(tmp, "detail.%d" % n_detail)
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    results.append("%s\t%s\t%s" % (status, name, path))


for tsv in sorted(glob.glob(os.path.join(refs, "*", "*.tsv"))):
    cap = os.path.relpath(tsv, refs)[:-4]
    ndjson = os.path.join(tmp, cap.replace("/", "__") + ".ndjson")
    # Sensor flow records by unordered endpoint pair; a pair may have several records
    # (interim records, a reused port), any of them may carry the expected value.
    recs = {}
    try:
        with open(ndjson) as f:
            for line in f:
                r = json.loads(line)
                if r.get("type") != "flow" or r.get("proto") not in ("tcp", "udp"):
                    continue
                c = (ip(r["client"]["ip"]), int(r["client"]["port"]))
                s = (ip(r["server"]["ip"]), int(r["server"]["port"]))
                recs.setdefault(tuple(sorted((c, s))), []).append((c, r.get("tls")))
    except (OSError, ValueError) as e:
        emit("fail", "%s: sensor output is NDJSON" % cap, [str(e)])
        continue
    rows = read_tsv(tsv)
    for field, label, tool in KINDS:
        # JA4 expectations: FoxIO's Rust tool (insta snapshots) for the ja4 set, FoxIO's
        # python/ja4.py for the others (see tests/tools/make_tls_refs.py).
        tool = tool or ("FoxIO-rust" if cap.startswith("ja4/") else "FoxIO-python")
        n = match = nknown = 0
        bad, notes = [], []
        for row in rows:
            c = (ip(row["client_ip"]), int(row["client_port"]))
            s = (ip(row["server_ip"]), int(row["server_port"]))
            flow = "%s:%d -> %s:%d" % (c[0], c[1], s[0], s[1])
            found = recs.get(tuple(sorted((c, s))), [])
            if field == "client":
                # The sensor's client must be the ClientHello sender (or the ServerHello's
                # receiver on server-only flows).
                want = "%s:%d" % c
                got = sorted({"%s:%d" % rc for rc, _ in found})
            else:
                want = row[field]
                got = sorted({t.get(field) for _, t in found if t and t.get(field)})
            if not want:
                continue
            n += 1
            why = ""
            if not found:
                why = " (no flow record for these endpoints)"
            elif not any(t for _, t in found):
                why = " (flow has no tls object)"
            elif field != "client" and any(rc != c for rc, _ in found):
                why = " (sensor calls %s:%d the client)" % found[0][0]
            kkey = (cap, field, c[0], c[1], s[0], s[1])
            k = known.get(kkey)
            if k:
                used.add(kkey)
            if want in got:
                match += 1
                if k:
                    bad.append("%s: listed in known_differences.tsv but now matches (%s); "
                               "remove the entry" % (flow, want))
                continue
            shown = ",".join(got) if got else NONE
            if k and k["got"] == shown:
                nknown += 1
                notes.append("  known: %s: want %s, got %s (%s)" % (flow, want, shown,
                                                                   k["reason"]))
                continue
            bad.append("%s: want %s, got %s%s%s" % (flow, want, shown, why,
                       " [known_differences.tsv expects %s]" % k["got"] if k else ""))
        if n == 0:
            continue
        name = "%s: %s matches %s on %d of %d flows" % (cap, label, tool, match, n)
        if nknown:
            name += " (%d known difference%s)" % (nknown, "s" if nknown > 1 else "")
        emit("fail" if bad else "ok", name, bad + (notes if bad else []))
        # Totals for the summary line.
        results.append("#\t%s\t%s\t%d\t%d\t%d" % (field, tool, n, match, nknown))

stale = [k for k in known if k not in used]
emit("fail" if stale else "ok",
     "known_differences.tsv: all %d entries name a compared flow and field" % len(known),
     ["not compared (wrong capture, flow, field, or empty expectation): %s" % "\t".join(
         map(str, k)) for k in stale])
print("\n".join(results))
EOF
rc=$?
check "comparison script runs" sh -c "cat '$TMP/compare.err'; [ $rc -eq 0 ]"

declare -A tot_n tot_m tot_k
while IFS=$'\t' read -r status name detail rest; do
    if [ "$status" = "#" ]; then
        IFS=$'\t' read -r tool n m k <<<"$detail	$rest"
        name="$name vs $tool"
        tot_n[$name]=$(( ${tot_n[$name]:-0} + n ))
        tot_m[$name]=$(( ${tot_m[$name]:-0} + m ))
        tot_k[$name]=$(( ${tot_k[$name]:-0} + k ))
        continue
    fi
    check "$name" verdict "$status" "$detail"
done <"$TMP/results"
for f in "${!tot_n[@]}"; do
    echo "# $f: ${tot_m[$f]} of ${tot_n[$f]} flows match, ${tot_k[$f]} known differences"
done | sort
finish
