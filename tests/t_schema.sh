#!/usr/bin/env bash
# Schema conformance: every record the sensor writes must validate against its schema in
# deploy/schema/ (flow, fingerprint, stats; JSON Schema draft 2020-12, additionalProperties
# false on the objects whose keys we own, so an undocumented key fails). Runs the sensor on
# every test capture with the MaxMind test databases (--geo-lookup-all), on option variants
# that switch record parts on and off, on a capture rewritten into the test databases'
# ranges (so geo country/continent/city appear), and on a short live capture; validates the
# golden files; and checks that the validator rejects undocumented keys and wrong types.
# Needs python3-jsonschema (Debian package); tcprewrite for the geo rewrite.
source "$(dirname "$0")/lib/check.sh"
shopt -s nullglob
P=$ROOT/tests/pcap
GEO_DIR=$ROOT/tests/data/geo
GEO=(--geo-city "$GEO_DIR/GeoIP2-City-Test.mmdb" --geo-asn "$GEO_DIR/GeoLite2-ASN-Test.mmdb" --geo-lookup-all)
DELIBERATELY_BROKEN=" bad-linktype.pcap " # the sensor refuses these: no records to validate

PY=
for py in /usr/bin/python3 python3; do
    if "$py" -c 'import jsonschema; jsonschema.Draft202012Validator' 2>/dev/null; then PY=$py; break; fi
done
if [ -z "$PY" ]; then
    check "python3-jsonschema (draft 2020-12) is installed" false
    finish
    exit $?
fi
VALIDATE=("$PY" "$ROOT/tests/tools/validate_schema.py")

# Outputs are validated in one validator call at the end (a python start per file is slow).
# run_valid NAME SPANPRINT-ARGS...: runs the sensor now and queues its output under NAME;
# queue_file NAME FILE queues an existing file. validate_queued then gives one check line per
# NAME: the sensor exited 0, every line is valid against its schema, seq increases, and the
# last record is the one stats record.
NAMES=()
OUTS=()
RCS=()
run_valid() {
    local name=$1; shift
    local out=$TMP/run${#OUTS[@]}.jsonl
    "$SP" "$@" >"$out" 2>"$out.err"
    RCS+=($?)
    NAMES+=("$name")
    OUTS+=("$out")
}
queue_file() {
    RCS+=(0)
    NAMES+=("$1")
    OUTS+=("$2")
}
verdict() { # RC OUT: the sensor's exit status, then OUT's lines in the validator's report
    local rc=$1 out=$2
    if [ "$rc" -ne 0 ]; then echo "spanprint exited $rc"; cat "$out.err" 2>/dev/null; return 1; fi
    grep -F "$out:" "$TMP/validate.out"
    awk -v p="$out: " 'index($0, p) == 1 && / lines \(/ { found = 1; ok = ($0 ~ /: ok$/) }
        END { exit !(found && ok) }' "$TMP/validate.out"
}
validate_queued() {
    "${VALIDATE[@]}" --check-seq --require-stats "${OUTS[@]}" >"$TMP/validate.out" 2>&1
    for i in "${!OUTS[@]}"; do
        check "${NAMES[$i]}" verdict "${RCS[$i]}" "${OUTS[$i]}"
    done
}

# The schemas: valid draft 2020-12, one per record type, every documented key described.
check "schemas are valid draft 2020-12, one per type" "${VALIDATE[@]}" /dev/null
check "every key in flow and stats schemas has a description" "$PY" - \
    "$ROOT/deploy/schema/flow.schema.json" "$ROOT/deploy/schema/stats.schema.json" <<'EOF'
import json, sys
def resolve(schema, node):
    if "$ref" in node:
        target = schema
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**target, **node}
    return node
def walk(schema, node, path, bad):
    for key, sub in node.get("properties", {}).items():
        p = f"{path}.{key}" if path else key
        sub = resolve(schema, sub)
        if "description" not in sub and not (path == "" and key in ("type", "schema")):
            bad.append(p)
        walk(schema, sub, p, bad)
    if isinstance(node.get("items"), dict):
        walk(schema, resolve(schema, node["items"]), path + "[]", bad)
bad = []
for f in sys.argv[1:]:
    s = json.load(open(f))
    walk(s, s, "", bad)
if bad:
    print("no description:", ", ".join(bad))
sys.exit(1 if bad else 0)
EOF

# Every capture, with the geo databases.
# (ref/ndpi/quic*: every QUIC version spanprint decrypts, for the quic_version names)
for cap in "$P"/*.pcap "$P"/*.pcapng "$P"/fp/*.pcap "$P"/fp/*.pcapng "$P"/tls/*.pcap "$P"/tls/*.pcapng \
    "$P"/ref/ndpi/quic*.pcap "$P"/ref/ndpi/quic*.pcapng; do
    rel=${cap#"$P"/}
    case "$DELIBERATELY_BROKEN" in *" $rel "*) continue ;; esac
    run_valid "$rel: all records valid" -r "$cap" --sensor-id schema "${GEO[@]}"
done

# Golden files (the outputs t_golden.sh compares byte for byte).
for g in "$ROOT"/tests/golden/*.jsonl; do
    queue_file "golden $(basename "$g"): all records valid" "$g"
done

# Option variants: parts of records that only appear with some options.
printf 'spanprint-test-key-0123456789abcdef' >"$TMP/key"
run_valid "pseudonymised clients (HMAC)" -r "$P/tls-sni.pcapng" --pseudonym-key "$TMP/key"
run_valid "pseudonymised clients (prefix-preserving)" -r "$P/fp/llm_20clients.pcap" \
    --pseudonym-key "$TMP/key" --pseudonym-prefix-preserving "${GEO[@]}"
run_valid "interim records (--flow-active-timeout 1)" -r "$P/latest.pcapng" --flow-active-timeout 1
interim=${OUTS[-1]}
run_valid "--no-ndpi --no-fingerprints" -r "$P/sample.pcapng" --no-ndpi --no-fingerprints
run_valid "--no-flows" -r "$P/tls-sni.pcapng" --no-flows
run_valid "--client-key ip+ja4 --window 1" -r "$P/tls-sni.pcapng" --client-key ip+ja4 --window 1 --window-grace 0
run_valid "--client-key prefix" -r "$P/v6.pcap" --client-key prefix "${GEO[@]}"
run_valid "two inputs, the second stdin" -r "$P/v6.pcap" -r - <"$P/sll2_tls.pcap"
run_valid "--tls-first-records 0" -r "$P/tls-sni.pcapng" --tls-first-records 0
run_valid "--tls-first-records 64" -r "$P/tls-sni.pcapng" --tls-first-records 64
run_valid "--flow-max 16 (evictions)" -r "$P/tls-sni.pcapng" --flow-max 16
run_valid "--agg-max-entries 16 (overflow fingerprint)" -r "$P/fp/llm_20clients.pcap" --window 600 --agg-max-entries 16
run_valid "--flow-vlan-key" -r "$P/gre-erspan-vxlan.pcap" --flow-vlan-key
run_valid "--workers 3" -r "$P/tls-sni.pcapng" --workers 3 "${GEO[@]}"
run_valid "--workers 2, fingerprints of 20 clients" -r "$P/fp/llm_20clients.pcap" --workers 2 "${GEO[@]}"
# A rules file with attributes of its own: copied into service as strings (watch as boolean).
cat >"$TMP/custom.rules" <<'EOF'
sni .mzstatic.com -> service=apple-cdn kind=cdn provider=apple watch=no note="custom attribute" team_2=net
sni .google.com -> service=google kind=web watch=yes
EOF
run_valid "custom rule attributes" -r "$P/tls-sni.pcapng" --rules "$TMP/custom.rules"
custom=${OUTS[-1]}

# Geo country/continent/city and ASN from the MaxMind test databases: a TLS capture rewritten
# into their ranges (81.2.69.142: London, GB; 89.160.20.115: Linköping, SE, AS29518).
have_geo_rewrite=0
if command -v tcprewrite >/dev/null &&
    tcprewrite --pnat=198.18.0.2/32:81.2.69.142/32,198.18.0.1/32:89.160.20.115/32 --fixcsum \
        -i "$P/tls/pq_orig.pcap" -o "$TMP/geo.pcap" >/dev/null 2>&1; then
    have_geo_rewrite=1
    run_valid "geo: City and ASN databases, rewritten capture" -r "$TMP/geo.pcap" \
        --geo-city "$GEO_DIR/GeoIP2-City-Test.mmdb" --geo-asn "$GEO_DIR/GeoLite2-ASN-Test.mmdb"
    geo=${OUTS[-1]}
    run_valid "geo: Country and ISP databases, rewritten capture" -r "$TMP/geo.pcap" \
        --geo-city "$GEO_DIR/GeoIP2-Country-Test.mmdb" --geo-asn "$GEO_DIR/GeoIP2-ISP-Test.mmdb"
else
    echo "SKIP - geo rewrite needs tcprewrite"
fi

# Live capture (stats.capture): a moment on the loopback of a private network namespace.
NS=sp_schema$$
have_live=0
if [ "$(id -u)" -eq 0 ] && ip netns add "$NS" 2>/dev/null; then
    have_live=1
    ip -n "$NS" link set lo up
    ip netns exec "$NS" "$SP" -i lo --sensor-id live -o "$TMP/live.jsonl" 2>"$TMP/live.jsonl.err" &
    spid=$!
    sleep 1
    ip netns exec "$NS" bash -c 'for i in 1 2 3; do echo x >/dev/udp/127.0.0.1/9; sleep 0.1; done' 2>/dev/null
    sleep 0.5
    kill -TERM "$spid"
    wait "$spid"
    live_rc=$?
    ip netns del "$NS"
    RCS+=("$live_rc")
    NAMES+=("live capture: exits 0 on SIGTERM, all records valid")
    OUTS+=("$TMP/live.jsonl")
else
    echo "SKIP - live capture needs root and ip netns"
fi

validate_queued

# Checks that the variants above really produced the parts they are there for.
check "interim records carry flow_start and part" grep -q '"flow_start":[0-9.]*,"part":2,' "$interim"
check "custom rule attributes are written in file order" grep -qF \
    '"service":{"name":"apple-cdn","kind":"cdn","provider":"apple","watch":false,"note":"custom attribute","team_2":"net"}' "$custom"
if [ "$have_geo_rewrite" = 1 ]; then
    check "geo: country, continent, city and ASN are written" grep -qF \
        '"server":{"ip":"89.160.20.115","port":443,"geo":{"country":"SE","continent":"EU","city":"Linköping"},"asn":{"number":29518,"org":"Bredband2 AB"}}' \
        "$geo"
fi
if [ "$have_live" = 1 ]; then
    check "live: stats has the capture counters" grep -q '"capture":{"received":[0-9]*,"kernel_drops":' "$TMP/live.jsonl"
fi

# The validator rejects what it must: undocumented keys, wrong types, unknown record types.
# Each mutation changes the records of a valid output (one file per mutation); every file must
# then fail.
"$SP" -r "$P/tls/pq_orig.pcap" "${GEO[@]}" >"$TMP/base.jsonl" 2>/dev/null
check "unmutated base records are valid" "${VALIDATE[@]}" --require-stats "$TMP/base.jsonl"
MUT_NAMES=()
MUT_OUTS=()
mutate() { # NAME PYTHON-STATEMENT: applied to each record r (dict) of the base output
    local out=$TMP/mut${#MUT_OUTS[@]}.jsonl
    "$PY" -c "
import json
changed = 0
for line in open('$TMP/base.jsonl'):
    r = json.loads(line)
    before = json.dumps(r)
    $2
    changed += json.dumps(r) != before
    print(json.dumps(r))
assert changed, 'the mutation changed nothing'" >"$out" 2>"$out.err"
    MUT_NAMES+=("$1")
    MUT_OUTS+=("$out")
}
mutate "an undocumented top-level flow key" "r.update({'new_key': 1}) if r['type'] == 'flow' else None"
mutate "an undocumented key in flow.tls" "r['tls'].update({'ja4s': 'x'}) if r['type'] == 'flow' else None"
mutate "an undocumented key in flow.tls.c2s" "r['tls']['c2s'].update({'x': 1}) if r['type'] == 'flow' else None"
mutate "an undocumented key in flow.client.geo" "r['client']['geo'].update({'region': 'x'}) if r['type'] == 'flow' else None"
mutate "a number as a string (flow c2s.pkts)" "r['c2s'].update({'pkts': str(r['c2s']['pkts'])}) if r['type'] == 'flow' else None"
mutate "a string as a number (flow tls.cipher)" "r['tls'].update({'cipher': 4865}) if r['type'] == 'flow' else None"
mutate "a missing required key (flow end_reason)" "r.pop('end_reason') if r['type'] == 'flow' else None"
mutate "an undocumented key in stats.decode" "r['decode'].update({'bad_sctp': 0}) if r['type'] == 'stats' else None"
mutate "a negative counter in stats.flows" "r['flows'].update({'created': -1}) if r['type'] == 'stats' else None"
mutate "an undocumented fingerprint key" "r.update({'extra': []}) if r['type'] == 'fingerprint' else None"
mutate "an unknown record type" "r.update({'type': 'flows'}) if r['type'] == 'stats' else None"
mutate "schema version 2" "r.update({'schema': 2})"
mutate "a non-boolean service.watch" "r.update({'service': {'name': 's', 'watch': 'yes'}}) if r['type'] == 'flow' else None"
mutate "a non-string service attribute" "r.update({'service': {'name': 's', 'weight': 3}}) if r['type'] == 'flow' else None"
"${VALIDATE[@]}" "${MUT_OUTS[@]}" >"$TMP/mut.out" 2>&1
rejected() { # OUT: the mutation ran and the validator reported errors for OUT
    local out=$1
    if [ -s "$out.err" ]; then cat "$out.err"; return 1; fi
    grep -F "$out:" "$TMP/mut.out" | head -n 3
    awk -v p="$out: " 'index($0, p) == 1 && / lines \(/ { found = 1; bad = ($0 ~ / errors?$/) }
        END { exit !(found && bad) }' "$TMP/mut.out"
}
for i in "${!MUT_OUTS[@]}"; do
    check "rejects ${MUT_NAMES[$i]}" rejected "${MUT_OUTS[$i]}"
done
finish
