#!/usr/bin/env bash
# The Kafka sink against a real single-node broker (tests/kafka/broker.sh, KRaft, port
# $KAFKA_PORT, default 19092): records, keys, headers and topics match the file sink's output
# for the same input; a broker down at start, a --drain, and a SIGTERM during an outage lose
# nothing. Needs java, mvn (first run fetches the broker's jars), kcat and python3.
# SPANPRINT=path overrides the binary under test.
source "$(dirname "${BASH_SOURCE[0]}")/lib/check.sh"
SP=${SPANPRINT:-$SP}
export KAFKA_PORT=${KAFKA_PORT:-19092}
B=127.0.0.1:$KAFKA_PORT
BROKER=$ROOT/tests/kafka/broker.sh
PCAP1=$ROOT/tests/pcap/tls-sni.pcapng
PCAP2=$ROOT/tests/pcap/v6.pcap
RUN=t$(date +%s)$$ # topic prefix per run: earlier runs' messages never count

for tool in java mvn kcat python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL - $tool is required for the Kafka tests"
        _fail=$((_fail + 1))
        finish
        exit 1
    fi
done

# One run at a time: two runs would stop and start the same broker under each other.
mkdir -p "$ROOT/tests/kafka/run"
exec 5>"$ROOT/tests/kafka/run/t_kafka.lock"
flock 5

# A binary whose main does not select the Kafka sink for -b writes NDJSON to stdout instead:
# say so once rather than fail every check below. (Port 9 is closed: nothing is sent.)
"$SP" -r "$PCAP1" -b 127.0.0.1:9 --spool-dir "$TMP/spool-probe" --flush-timeout 0 \
    >"$TMP/probe.out" 2>/dev/null
if [ -s "$TMP/probe.out" ]; then
    echo "FAIL - $SP ignores -b: records went to stdout, not to the Kafka sink"
    _fail=$((_fail + 1))
    finish
    exit 1
fi

we_started=0
cleanup() {
    [ -n "${sensor_pid:-}" ] && kill "$sensor_pid" 2>/dev/null
    [ "$we_started" = 1 ] && "$BROKER" stop >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

# A broker already running on this port (a developer's) is left running at the end.
"$BROKER" status || we_started=1
check "broker starts" "$BROKER" start

# The topics of prefix $1 as "topic<TAB>key<TAB>headers<TAB>payload" lines (payloads end in
# '\n'). A topic that was never written is skipped.
consume() {
    local t
    for t in flows fingerprints stats; do
        kcat -C -b "$B" -t "$1.$t" -e -q -f '%t\t%k\t%h\t%s' 2>/dev/null || true
    done
}

# compare KAFKA_TSV FILE_JSONL...: Kafka holds exactly the records of the files (as a
# multiset), each on its type's topic, keyed by the flow's client address (no key for
# stats), with the schema/type/sensor headers. The statistics record a --drain run writes
# (no inputs) is left out.
compare() {
    python3 - "$@" <<'EOF'
import json, sys
kafka, files = sys.argv[1], sys.argv[2:]
want = sorted(l for f in files for l in open(f, encoding="utf-8") if l.strip())
got, errs = [], []
topic_of = {"flow": "flows", "fingerprint": "fingerprints", "stats": "stats"}
for line in open(kafka, encoding="utf-8"):
    if not line.strip():
        continue
    topic, key, hdrs, payload = line.rstrip("\n").split("\t", 3)
    rec = json.loads(payload)
    if rec["type"] == "stats" and rec.get("inputs") == []:
        continue
    got.append(payload + "\n")
    t = rec["type"]
    if not topic.endswith("." + topic_of[t]):
        errs.append(f"{t} record on topic {topic}")
    want_key = rec["client"]["ip"] if t == "flow" else ""
    if t != "fingerprint" and key != want_key:
        errs.append(f"seq {rec['seq']}: key {key!r}, want {want_key!r}")
    h = dict(kv.split("=", 1) for kv in hdrs.split(","))
    if h != {"schema": "1", "type": t, "sensor": rec["sensor"]}:
        errs.append(f"seq {rec['seq']}: headers {hdrs}")
got.sort()
if got != want:
    errs.append(f"{len(got)} records in Kafka, {len(want)} from the file sink")
    gs, ws = set(got), set(want)
    for l in list(ws - gs)[:3]:
        errs.append("missing: " + l[:120])
    for l in list(gs - ws)[:3]:
        errs.append("unexpected: " + l[:120])
    if gs == ws:
        errs.append("same records, different counts (duplicates)")
for e in errs[:10]:
    print(e)
sys.exit(1 if errs else 0)
EOF
}

no_segments() { ! ls "$1"/*.spool >/dev/null 2>&1; }
has_segments() { ls "$1"/*.spool >/dev/null 2>&1; }

common=(--sensor-id t_kafka -b "$B")

# --- 1. broker up: same records as the file sink -----------------------------------------
"$SP" -r "$PCAP1" -r "$PCAP2" --sensor-id t_kafka -o "$TMP/file12.jsonl" 2>"$TMP/file.err"
check_eq "file sink reference" 0 $?
"$SP" -r "$PCAP1" --sensor-id t_kafka -o "$TMP/file1.jsonl" 2>/dev/null
"$SP" -r "$PCAP1" -r "$PCAP2" "${common[@]}" --topic-prefix "$RUN.up" \
    --spool-dir "$TMP/spool-up" 2>"$TMP/up.err"
check_eq "kafka run exits 0" 0 $?
consume "$RUN.up" >"$TMP/up.tsv"
check "kafka holds the file sink's records, keys, headers" compare "$TMP/up.tsv" "$TMP/file12.jsonl"
check "nothing left in the spool" no_segments "$TMP/spool-up"
check_eq "no drops logged" "" "$(grep -i dropped "$TMP/up.err" | grep -v 'dropped 0')"

# --- 2. broker down at start: spooled; --drain delivers ----------------------------------
"$BROKER" stop >/dev/null
"$SP" -r "$PCAP1" "${common[@]}" --topic-prefix "$RUN.down" --spool-dir "$TMP/spool-down" \
    --flush-timeout 2 2>"$TMP/down.err"
check_eq "run with the broker down exits 0" 0 $?
check "records are in the spool" has_segments "$TMP/spool-down"
check "the outage is logged" grep -q unreachable "$TMP/down.err"
"$SP" --drain "${common[@]}" --topic-prefix "$RUN.down" --spool-dir "$TMP/spool-down" \
    --flush-timeout 2 2>"$TMP/drain-down.err"
rc=$?
check "--drain with the broker down fails" test "$rc" -ne 0
check "--drain with the broker down keeps the spool" has_segments "$TMP/spool-down"
check "broker restarts" "$BROKER" start
"$SP" --drain "${common[@]}" --topic-prefix "$RUN.down" --spool-dir "$TMP/spool-down" \
    2>"$TMP/drain.err"
check_eq "--drain exits 0" 0 $?
check "--drain empties the spool" no_segments "$TMP/spool-down"
consume "$RUN.down" >"$TMP/down.tsv"
check "every spooled record reached Kafka" compare "$TMP/down.tsv" "$TMP/file1.jsonl"

# --- 3. SIGTERM during an outage, then a normal run with the broker up ---------------------
# The sensor reads a capture from a FIFO that stays open (as from a live source), gets
# SIGTERM with the broker down, and exits through its normal shutdown: flows still in the
# table become records, everything goes to the spool. The next run (broker up) sends the
# spool before its own records. SIGTERM may land while a read blocks (SA_RESTART), so one
# more packet is written after it to wake the reader; what the sensor emits therefore depends
# on timing, and the check is on sequence numbers: the SIGTERM run's records in Kafka must be
# exactly seq 1..N, N being its last (stats) record's seq: none missing, none twice.
"$BROKER" stop >/dev/null
mkfifo "$TMP/fifo"
"$SP" -r "$TMP/fifo" -b "$B" --sensor-id t_kafka_term --topic-prefix "$RUN.term" \
    --spool-dir "$TMP/spool-term" --flush-timeout 2 2>"$TMP/term.err" &
sensor_pid=$!
exec 7>"$TMP/fifo"
cat "$PCAP2" >&7
sleep 5 # the sensor has read the packets and waits for more
kill -TERM "$sensor_pid"
sleep 1
# The first packet record of the classic pcap: 24-byte file header, 16-byte record header.
python3 - "$PCAP2" >&7 <<'EOF2'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<I", b[32:36])[0]
sys.stdout.buffer.write(b[24:40 + n])
EOF2
for _ in $(seq 60); do
    kill -0 "$sensor_pid" 2>/dev/null || break
    sleep 0.5
done
if kill -0 "$sensor_pid" 2>/dev/null; then
    kill -KILL "$sensor_pid"
    rc=timeout
else
    wait "$sensor_pid"
    rc=$?
fi
sensor_pid=
exec 7>&-
check_eq "SIGTERM with the broker down exits 0 within 30 s" 0 "$rc"
check "records are in the spool after SIGTERM" has_segments "$TMP/spool-term"
check "broker restarts again" "$BROKER" start
"$SP" -r "$PCAP1" "${common[@]}" --topic-prefix "$RUN.term" --spool-dir "$TMP/spool-term" \
    2>"$TMP/term2.err"
check_eq "next run exits 0" 0 $?
check "next run empties the spool" no_segments "$TMP/spool-term"
consume "$RUN.term" >"$TMP/term.tsv"
grep -v '"sensor":"t_kafka_term"' "$TMP/term.tsv" >"$TMP/term-new.tsv"
check "the next run's records all reached Kafka" compare "$TMP/term-new.tsv" "$TMP/file1.jsonl"
seqs_complete() {
    python3 - "$TMP/term.tsv" <<'EOF2'
import json, sys
seqs, last = [], None
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line.rstrip("\n").split("\t", 3)[3])
    if rec["sensor"] != "t_kafka_term":
        continue
    seqs.append(rec["seq"])
    if rec["type"] == "stats":
        last = rec["seq"]
if last is None:
    sys.exit("no stats record from the SIGTERM run")
want = list(range(1, last + 1))
if sorted(seqs) != want:
    missing = sorted(set(want) - set(seqs))
    dup = sorted(s for s in set(seqs) if seqs.count(s) > 1)
    sys.exit(f"{len(seqs)} records, want {last}; missing {missing[:10]}, twice {dup[:10]}")
print(f"{last} records")
EOF2
}
check "the SIGTERM run's records all reached Kafka once" seqs_complete

finish
