#!/usr/bin/env bash
# SIGHUP reloads the service rules without losing flows: a replay fed through a pipe is
# paused, the rules file is changed and SIGHUP sent, and the flows that end afterwards carry
# the new label while the earlier ones kept the old one. A broken rules file on reload keeps
# the previous rules (the flows fed after it keep the new label) and says why. Also SIGUSR1 (statistics) during a replay.
source "$(dirname "$0")/lib/check.sh"
FP=$ROOT/tests/pcap/fp
mkdir -p "$TMP/rules"
echo 'sni api.openai.com -> service=label-a kind=llm-api' >"$TMP/rules/test.rules"
# The same capture one hour later, without its file header, to append to the stream.
cat >"$TMP/shift.py" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
out, off = bytearray(), 24
while off + 16 <= len(data):
    sec, usec, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
    out += struct.pack(endian + "IIII", sec + int(sys.argv[3]), usec, incl, orig)
    out += data[off + 16:off + 16 + incl]
    off += 16 + incl
open(sys.argv[2], "wb").write(out)
PY
python3 "$TMP/shift.py" "$FP/llm_20clients.pcap" "$TMP/later.body" 3600
python3 "$TMP/shift.py" "$FP/llm_20clients.pcap" "$TMP/later2.body" 7200
mkfifo "$TMP/in"
"$SP" -r - --rules "$TMP/rules" --sensor-id t --no-fingerprints <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
spid=$!
exec 3>"$TMP/in"
cat "$FP/llm_20clients.pcap" >&3
sleep 1.5
kill -USR1 "$spid"
echo 'sni api.openai.com -> service=label-b kind=llm-api' >"$TMP/rules/test.rules"
kill -HUP "$spid"
sleep 1
cat "$TMP/later.body" >&3
sleep 1
printf 'this is not a rule\n' >"$TMP/rules/test.rules"
kill -HUP "$spid"
sleep 1
cat "$TMP/later2.body" >&3
sleep 1
exec 3>&-
wait "$spid"; rc=$?
check_eq "replay with reloads exits 0" 0 "$rc"
a=$(grep -c '"service":{"name":"label-a"' "$TMP/out")
b=$(grep -c '"service":{"name":"label-b"' "$TMP/out")
check "flows that ended before SIGHUP kept the old label ($a)" test "$a" -ge 15
check "flows after SIGHUP have the new label ($b)" test "$b" -ge 40
check_eq "no flow was lost across reloads" 60 "$(grep -c '"type":"flow"' "$TMP/out")"
check "a broken rules file on reload is reported with file:line" grep -q 'test.rules:1' "$TMP/err"
check "a broken rules file on reload keeps the previous rules" grep -q 'keeping the previous rules' "$TMP/err"
check "SIGUSR1 prints statistics during a replay" grep -q '^packets [0-9]' "$TMP/err"
finish
