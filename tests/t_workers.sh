#!/usr/bin/env bash
# --workers N: N pipelines on N threads. For every test capture: the output with 2 workers
# is byte-identical across runs (deterministic merge), has the same flow records as one
# worker (as a multiset, ignoring "seq" and time fields), numbers "seq" 1..n in output order,
# ends with one stats record whose decode counters and record counts equal the single
# worker's, and its fingerprint totals reconcile with its flow records. On the generated
# fingerprint captures the fingerprints equal the single-worker ones. --workers 1 is the
# single pipeline, byte for byte. --flow-max is split between the workers. Flows timing
# out in a gap that closes a window count in the same windows as with one worker.
source "$(dirname "$0")/lib/check.sh"
shopt -s nullglob
cd "$ROOT"
CMP="python3 tests/tools/compare_flows.py"
ASN=tests/data/geo/GeoLite2-ASN-Test.mmdb
CITY=tests/data/geo/GeoIP2-City-Test.mmdb

# seq is 1..n in order; exactly one stats record, the last line.
seq_ok() {
    python3 - "$1" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
seqs = [r["seq"] for r in recs]
assert seqs == list(range(1, len(recs) + 1)), seqs[:20]
assert [r["type"] for r in recs].count("stats") == 1 and recs[-1]["type"] == "stats"
EOF
}

# The stats members that do not depend on how flows were split: decode, records, tls, inputs.
stats_eq() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
def st(p):
    r = [json.loads(l) for l in open(p)][-1]
    return {k: r.get(k) for k in ("inputs", "decode", "records", "tls")}, \
        (r["flows"]["created"], r["flows"]["ended"], r["flows"]["active"])
a, b = st(sys.argv[1]), st(sys.argv[2])
if a != b:
    print(a); print(b); sys.exit(1)
EOF
}

run_pair() { # name, options...: single vs two workers
    local name=$1; shift
    "$SP" --sensor-id t "$@" >"$TMP/$name.1" 2>"$TMP/$name.1.err"
    local rc1=$?
    "$SP" --sensor-id t --workers 2 "$@" >"$TMP/$name.2a" 2>"$TMP/$name.2a.err"
    check_eq "$name: 2 workers exit status as 1 worker" "$rc1" "$?"
    if [ "$rc1" != 0 ]; then # refused input (bad-linktype): same message, no records
        check "$name: same message as 1 worker" cmp "$TMP/$name.1.err" "$TMP/$name.2a.err"
        check "$name: same output as 1 worker" cmp "$TMP/$name.1" "$TMP/$name.2a"
        return
    fi
    "$SP" --sensor-id t --workers 2 "$@" >"$TMP/$name.2b" 2>/dev/null
    check "$name: 2 workers, identical output in two runs" cmp "$TMP/$name.2a" "$TMP/$name.2b"
    check "$name: same flow records as 1 worker" $CMP "$TMP/$name.1" "$TMP/$name.2a" flow
    check "$name: seq 1..n, one stats record, last" seq_ok "$TMP/$name.2a"
    check "$name: stats decode/records/tls/flow counts as 1 worker" \
        stats_eq "$TMP/$name.1" "$TMP/$name.2a"
    if python3 tests/tools/reconcile.py "$TMP/$name.1" >/dev/null 2>&1; then
        check "$name: fingerprint totals reconcile" python3 tests/tools/reconcile.py "$TMP/$name.2a"
    fi
}

for cap in tests/pcap/*.pcap*; do
    name=$(basename "$cap")
    run_pair "$name" -r "$cap" --geo-asn "$ASN" --geo-city "$CITY" --geo-lookup-all
done

for cap in tests/pcap/fp/*.pcap; do
    name=fp-$(basename "$cap")
    for win in 60 600; do
        run_pair "$name-w$win" -r "$cap" --window "$win" --geo-asn "$ASN"
        check "$name-w$win: same fingerprints as 1 worker" \
            $CMP "$TMP/$name-w$win.1" "$TMP/$name-w$win.2a" fingerprint
    done
done

# Several inputs in one run (time goes back between files), 2, 3 and 8 workers; v6.pcap has
# ICMPv6 flows whose first sender is the higher address (sharded through the reader's
# flow table).
ALL=()
for cap in tests/pcap/fp/*.pcap tests/pcap/tls-sni.pcapng tests/pcap/v6.pcap; do ALL+=(-r "$cap"); done
run_pair "all-inputs" "${ALL[@]}" --geo-asn "$ASN"
for n in 2 3 8; do
    "$SP" --sensor-id t --workers $n "${ALL[@]}" --geo-asn "$ASN" >"$TMP/all.$n" 2>/dev/null
    check_eq "all-inputs: $n workers exit status" 0 "$?"
    check "all-inputs: $n workers, same flow records as 1" $CMP "$TMP/all-inputs.1" "$TMP/all.$n" flow
    check "all-inputs: $n workers, same fingerprints as 1" \
        $CMP "$TMP/all-inputs.1" "$TMP/all.$n" fingerprint
    check "all-inputs: $n workers, totals reconcile" python3 tests/tools/reconcile.py "$TMP/all.$n"
    check "all-inputs: $n workers, seq 1..n" seq_ok "$TMP/all.$n"
done

# Client key by prefix: shards by the prefix, so fingerprints still match.
run_pair "prefix-key" -r tests/pcap/fp/llm_20clients.pcap --client-key prefix --window 600
check "prefix-key: same fingerprints as 1 worker" \
    $CMP "$TMP/prefix-key.1" "$TMP/prefix-key.2a" fingerprint

# expiry_gap.pcap (tests/tools/make_expiry_gap_pcap.py): 166 flows time out in one capture
# gap closed by packets of no flow (ARP). All end before the window closes, in one pipeline
# and in every worker (before that, one pipeline ended 64 per packet and 2 workers wrote 167
# fingerprints against one pipeline's 269).
"$SP" --sensor-id t -r tests/pcap/expiry_gap.pcap >"$TMP/gap.1" 2>/dev/null
check "expiry_gap: the 166 flows end in the window they were active in" \
    grep -q '"flows":{"started":166,"ended":166}' <(python3 -c '
import json, sys
s = {"started": 0, "ended": 0}
first = None
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["type"] != "fingerprint": continue
    first = first or r["window"]["start"]
    if r["window"]["start"] == first:
        for k in s: s[k] += r["flows"][k]
print(json.dumps({"flows": s}, separators=(",", ":")))' "$TMP/gap.1")
for n in 2 3 8; do
    "$SP" --sensor-id t --workers $n -r tests/pcap/expiry_gap.pcap >"$TMP/gap.$n" 2>/dev/null
    check "expiry_gap: $n workers, same fingerprints as 1" $CMP "$TMP/gap.1" "$TMP/gap.$n" fingerprint
    check "expiry_gap: $n workers, same flow records as 1" $CMP "$TMP/gap.1" "$TMP/gap.$n" flow
done

# --flow-max is shared by the workers: each tracks flow_max / N flows. tls-sni.pcapng has one
# client, so one worker gets every flow: 2 workers with --flow-max 32 evict as one pipeline
# with --flow-max 16 (63 of 79 flows), and small tables stay deterministic.
"$SP" --sensor-id t --flow-max 16 -r tests/pcap/tls-sni.pcapng >"$TMP/fm1" 2>/dev/null
"$SP" --sensor-id t --workers 2 --flow-max 32 -r tests/pcap/tls-sni.pcapng >"$TMP/fm2a" 2>/dev/null
check_eq "--flow-max 32, 2 workers: exit status" 0 "$?"
"$SP" --sensor-id t --workers 2 --flow-max 32 -r tests/pcap/tls-sni.pcapng >"$TMP/fm2b" 2>/dev/null
check "--flow-max 32, 2 workers: identical output in two runs" cmp "$TMP/fm2a" "$TMP/fm2b"
check "--flow-max 32, 2 workers: flow records as 1 worker with 16" $CMP "$TMP/fm1" "$TMP/fm2a" flow
check "--flow-max 32, 2 workers: fingerprints as 1 worker with 16" \
    $CMP "$TMP/fm1" "$TMP/fm2a" fingerprint
check "--flow-max 32, 2 workers: seq 1..n" seq_ok "$TMP/fm2a"
check_eq "--flow-max 32, 2 workers: evictions as 1 worker with 16" \
    "$(tail -1 "$TMP/fm1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"]["evicted"])')" \
    "$(tail -1 "$TMP/fm2a" | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"]["evicted"])')"

# --workers 1 is the single pipeline.
"$SP" --sensor-id t --workers 1 -r tests/pcap/tls-sni.pcapng >"$TMP/w1" 2>/dev/null
"$SP" --sensor-id t -r tests/pcap/tls-sni.pcapng >"$TMP/w0" 2>/dev/null
check "--workers 1: byte-identical to the default" cmp "$TMP/w0" "$TMP/w1"

# --stats with workers prints summed counters.
"$SP" --sensor-id t --workers 2 --stats -r tests/pcap/tls-sni.pcapng -o /dev/null 2>"$TMP/st2"
"$SP" --sensor-id t --stats -r tests/pcap/tls-sni.pcapng -o /dev/null 2>"$TMP/st1"
grep -v '^worker\.' "$TMP/st2" >"$TMP/st2s"
check "--stats: same counter lines with 2 workers" diff "$TMP/st1" "$TMP/st2s"
check_eq "--stats: packets per worker add up" "$(awk '/^packets /{print $2}' "$TMP/st1")" \
    "$(awk '/^worker\.[0-9]+\.packets /{n += $2} END {print n}' "$TMP/st2")"

# Bad values are refused (config table range 1..64).
"$SP" --workers 0 -r tests/pcap/v6.pcap >/dev/null 2>&1
check_eq "--workers 0: usage error" 2 "$?"

finish
