#!/usr/bin/env bash
# TLS stream reassembly end to end: the real Chromium post-quantum capture (ClientHello in two
# TCP segments) and its variants with the segments reordered and/or retransmitted
# (tests/pcap/tls/pq_*.pcap, made by tests/tools/make_pq_variants.py; see
# tests/data/tls_stream/SOURCES.md). Every variant must give, per connection, the same SNI,
# JA4, JA3 and client record sizes as the original, and the original must match the reference
# values for this capture (/work/shared/data/pq/MANIFEST.md: FoxIO's JA4; tshark's JA3, which
# differs per connection because Chromium permutes its extensions).
source "$(dirname "$0")/lib/check.sh"
cd "$ROOT"

SNI=api.example-llm.test
JA4=t13d1517h2_8daaf6152771_cb7bf5808d99
JA3_1=b265b24179f0870df63cb6f5b43b1969
JA3_2=2c2452cd978b24004f89e07434e058df

# One line per TCP flow with a "tls" object: client port, sni, ja4, ja3, c2s first record
# sizes.
summary() {
    python3 -c '
import json, sys
rows = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") != "flow" or "tls" not in r:
        continue
    t = r["tls"]
    first = t.get("c2s", {}).get("first_records")
    rows.append("%s %s %s %s %s" % (r["client"]["port"], t.get("sni"), t.get("ja4"),
                                    t.get("ja3"),
                                    ",".join(map(str, first)) if first is not None else None))
print("\n".join(sorted(rows)))
' "$1"
}

for f in tests/pcap/tls/pq_*.pcap; do
    name=$(basename "$f" .pcap)
    "$SP" -r "$f" --sensor-id t_tls >"$TMP/$name.ndjson" 2>"$TMP/$name.err"
    check_eq "$name: exit status" 0 "$?"
    summary "$TMP/$name.ndjson" >"$TMP/$name.sum"
done

want="60674 $SNI $JA4 $JA3_1 1987,1,53,667
60680 $SNI $JA4 $JA3_2 1987,1,53"
check_eq "pq_orig: SNI, JA4, JA3 and client records of both connections" "$want" \
    "$(cat "$TMP/pq_orig.sum")"
for v in pq_reordered pq_retrans pq_reordered_retrans; do
    check_eq "$v: same SNI, JA4, JA3 and client records as pq_orig" "$(cat "$TMP/pq_orig.sum")" \
        "$(cat "$TMP/$v.sum")"
done
finish
