#!/usr/bin/env bash
# Classic pcap files are replayed by spanprint's own mapped reader (sensor/capture.c), not
# libpcap's: its output must equal the libpcap path's (SN_CAPTURE_LIBPCAP=1) byte for byte,
# errors and warnings included, on every classic capture in tests/pcap, on 49 truncation
# points of one (every 701st byte, and around the headers), and on the format's other shapes
# (big-endian, nanosecond timestamps, records longer than the file's snapshot length).
source "$(dirname "$0")/lib/check.sh"
cd "$ROOT"
PY=/usr/bin/python3
same() { # label, capture file
    local a b
    a=$("$SP" -r "$2" --sensor-id t -o - 2>&1; echo "exit $?")
    b=$(SN_CAPTURE_LIBPCAP=1 "$SP" -r "$2" --sensor-id t -o - 2>&1; echo "exit $?")
    check "$1" [ "$a" = "$b" ]
}
shopt -s nullglob
for f in tests/pcap/*.pcap; do
    same "$(basename "$f"): mapped reader equals libpcap" "$f"
done
f=tests/pcap/v6.pcap
size=$(stat -c %s "$f")
bad=0
for n in 0 10 23 24 25 39 40 41 $(seq 100 701 "$size"); do
    head -c "$n" "$f" >"$TMP/cut.pcap"
    a=$("$SP" -r "$TMP/cut.pcap" --sensor-id t -o - 2>&1; echo "exit $?")
    b=$(SN_CAPTURE_LIBPCAP=1 "$SP" -r "$TMP/cut.pcap" --sensor-id t -o - 2>&1; echo "exit $?")
    [ "$a" = "$b" ] || { bad=$((bad + 1)); echo "# differs when cut at $n bytes" >&2; }
done
check_eq "v6.pcap cut at 49 points: mapped reader equals libpcap" 0 "$bad"
for mode in big nsec; do
    "$PY" tests/tools/pcap_variant.py "$mode" tests/pcap/gaijin_mobile_mixed.pcap "$TMP/$mode.pcap"
    same "gaijin_mobile_mixed.pcap as $mode: mapped reader equals libpcap" "$TMP/$mode.pcap"
done
"$PY" tests/tools/pcap_variant.py snap 200 tests/pcap/gaijin_mobile_mixed.pcap "$TMP/snap.pcap"
same "records longer than the file's snapshot length: mapped reader equals libpcap" "$TMP/snap.pcap"
# the variants really differ from the original (the test would prove nothing otherwise)
differs=0
cmp -s "$TMP/nsec.pcap" tests/pcap/gaijin_mobile_mixed.pcap || differs=1
cmp -s "$TMP/big.pcap" tests/pcap/gaijin_mobile_mixed.pcap || differs=$((differs + 1))
check_eq "the big-endian and nanosecond variants are other files" 2 "$differs"
finish
