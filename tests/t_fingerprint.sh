#!/usr/bin/env bash
# Fingerprints end to end, through the sensor binary, on the generated captures in
# tests/pcap/fp (see SOURCES.md there for their exact behaviour) and on real captures:
# exact exchange counts, service from the rules, similarity of 20 clients in 3 ASNs and
# distance from a bulk downloader, reconciliation with flow records, determinism,
# pseudonymisation, window options.
source "$(dirname "$0")/lib/check.sh"
P=$ROOT/tests/pcap
FP=$P/fp
ASN=$ROOT/tests/data/geo/GeoLite2-ASN-Test.mmdb
Q="python3 $ROOT/tests/tools/fp_query.py"

"$SP" -r "$FP/llm_stream.pcap" --sensor-id t --window 3600 >"$TMP/stream.jsonl"
check_eq "llm_stream: one fingerprint in one hour window" 1 "$($Q count "$TMP/stream.jsonl")"
check_eq "llm_stream: 50 exchanges" 50 "$($Q get "$TMP/stream.jsonl" 'r["exchanges"]["n"]')"
check_eq "llm_stream: 10000 streamed response records" 10000 "$($Q get "$TMP/stream.jsonl" 'r["exchanges"]["response_records"]')"
check_eq "llm_stream: exchanges found from TLS records" records "$($Q get "$TMP/stream.jsonl" 'r["exchanges"]["method"]')"
check_eq "llm_stream: service from the shipped rules" openai-api "$($Q get "$TMP/stream.jsonl" 'r["service"]["name"]')"
check_eq "llm_stream: response records per exchange in bin 8 (200)" 50 "$($Q get "$TMP/stream.jsonl" 'r["hist"]["response_records"][8]')"
check "llm_stream: totals reconcile with flow records" python3 "$ROOT/tests/tools/reconcile.py" "$TMP/stream.jsonl"
check "llm_stream: the simhash reproduces from the record" python3 "$ROOT/tests/tools/fp_simhash.py" "$TMP/stream.jsonl"

# 20 addresses in 3 ASNs with the same client behaviour; and a bulk downloader.
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --window 600 --geo-asn "$ASN" >"$TMP/20.jsonl"
"$SP" -r "$FP/bulk_download.pcap" --sensor-id t --window 600 --geo-asn "$ASN" >"$TMP/bulk.jsonl"
check_eq "20 clients: 20 fingerprints" 20 "$($Q count "$TMP/20.jsonl")"
d=$($Q maxdist "$TMP/20.jsonl")
check "20 clients: simhashes within 10 bits of each other (max $d)" test "$d" -le 10
d=$($Q mindist "$TMP/20.jsonl" "$TMP/bulk.jsonl")
check "bulk downloader: at least 24 bits from every one of them (min $d)" test "$d" -ge 24
check_eq "20 clients: client ASNs from the database" "[1221, 3320, 7018]" "$(python3 -c "
import json,sys
print(sorted({r['client']['asn'] for r in map(json.loads, open('$TMP/20.jsonl')) if r['type']=='fingerprint'}))")"
check "20 clients: totals reconcile" python3 "$ROOT/tests/tools/reconcile.py" "$TMP/20.jsonl"
check "bulk: totals reconcile" python3 "$ROOT/tests/tools/reconcile.py" "$TMP/bulk.jsonl"
check "all simhashes reproduce" python3 "$ROOT/tests/tools/fp_simhash.py" "$TMP/20.jsonl" "$TMP/bulk.jsonl"

# Real captures: reconciliation across many windows and protocols.
for cap in latest.pcapng tls-sni.pcapng v6.pcap tls_heur__trojan-tcp-tls.pcapng; do
    "$SP" -r "$P/$cap" --sensor-id t --window 1 --window-grace 0 >"$TMP/$cap.jsonl"
    check "$cap: 1 s windows reconcile with flow records" python3 "$ROOT/tests/tools/reconcile.py" "$TMP/$cap.jsonl"
done

# Determinism.
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --window 600 --geo-asn "$ASN" >"$TMP/20b.jsonl"
check "two runs are byte-identical" cmp "$TMP/20.jsonl" "$TMP/20b.jsonl"

# Pseudonymisation: no client address in any record, stable per key, different across keys.
printf 'spanprint-test-key-0123456789abcdef' >"$TMP/k1"
printf 'another-test-key-fedcba9876543210' >"$TMP/k2"
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --pseudonym-key "$TMP/k1" >"$TMP/p1.jsonl"
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --pseudonym-key "$TMP/k1" >"$TMP/p1b.jsonl"
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --pseudonym-key "$TMP/k2" >"$TMP/p2.jsonl"
check "pseudonyms: no client address is written" bash -c "! grep -Eq '\"(1\.128\.0|12\.81\.92|31\.224\.0)\.' '$TMP/p1.jsonl'"
check "pseudonyms: stable for one key" cmp "$TMP/p1.jsonl" "$TMP/p1b.jsonl"
ids1=$(grep -o '"id":"p:[0-9a-f]*"' "$TMP/p1.jsonl" | sort -u)
ids2=$(grep -o '"id":"p:[0-9a-f]*"' "$TMP/p2.jsonl" | sort -u)
check_eq "pseudonyms: 20 distinct per key" 20 "$(wc -l <<<"$ids1")"
check "pseudonyms: different across keys" test -z "$(comm -12 <(echo "$ids1") <(echo "$ids2"))"
check "pseudonyms: flow records use the same pseudonym as fingerprints" bash -c "grep -o '\"client\":{\"ip\":\"p:[0-9a-f]*\"' '$TMP/p1.jsonl' | head -1 | grep -o 'p:[0-9a-f]*' | xargs -I{} grep -q '\"id\":\"{}\"' '$TMP/p1.jsonl'"
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --pseudonym-key "$TMP/k1" --pseudonym-prefix-preserving >"$TMP/pp.jsonl"
check "prefix-preserving: 1.128.0.x clients share a pseudonym /24" test "$(python3 -c "
import json
ids=[r['client']['id'] for r in map(json.loads, open('$TMP/pp.jsonl')) if r['type']=='fingerprint']
print(len({i.rsplit('.',1)[0] for i in ids}))")" -eq 3
check "prefix-preserving: no client address is written" bash -c "! grep -Eq '\"(1\.128\.0|12\.81\.92|31\.224\.0)\.' '$TMP/pp.jsonl'"
"$SP" -r "$P/gre-erspan-vxlan.pcap" --sensor-id t --pseudonym-key "$TMP/k1" >"$TMP/tun.jsonl"
check "pseudonyms: tunnel outer addresses are left out" bash -c "grep -q '\"tunnel\":{\"type\"' '$TMP/tun.jsonl' && ! grep -q 'outer_src' '$TMP/tun.jsonl'"
run_err=$("$SP" -r "$FP/bulk_download.pcap" --pseudonym-key "$TMP/missing" 2>&1); rc=$?
check_eq "missing pseudonym key file exits 2" 2 "$rc"

# Client key by prefix: the 20 addresses fall into 3 /24 prefixes.
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --window 600 --client-key prefix >"$TMP/pfx.jsonl"
check_eq "--client-key prefix: 3 fingerprints for 3 /24s" 3 "$($Q count "$TMP/pfx.jsonl")"
check "--client-key prefix: totals reconcile" python3 "$ROOT/tests/tools/reconcile.py" "$TMP/pfx.jsonl"
"$SP" -r "$FP/llm_20clients.pcap" --client-key bogus >/dev/null 2>"$TMP/err"; rc=$?
check_eq "bad --client-key exits 2" 2 "$rc"

# Overflow entry: with room for 16 entries per window, the rest goes to one overflow entry.
"$SP" -r "$FP/llm_20clients.pcap" --sensor-id t --window 600 --agg-max-entries 16 >"$TMP/ovf.jsonl"
check_eq "overflow: 16 entries plus one overflow entry" 17 "$($Q count "$TMP/ovf.jsonl")"
check "overflow: totals still reconcile" python3 "$ROOT/tests/tools/reconcile.py" "$TMP/ovf.jsonl"
check "overflow: counted in the stats record" grep -q '"overflow_entries":1,' "$TMP/ovf.jsonl"
finish
