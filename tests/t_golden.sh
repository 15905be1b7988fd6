#!/usr/bin/env bash
# Golden tests: each tests/golden/<capture>.jsonl is the expected output of
#   spanprint -r tests/pcap/<capture> --sensor-id golden [options from <capture>.args]
# Regenerate with tests/golden/update.sh after an intended change, and review the diff.
source "$(dirname "$0")/lib/check.sh"
shopt -s nullglob
for want in "$ROOT"/tests/golden/*.jsonl; do
    name=$(basename "$want" .jsonl)
    args=()
    [ -f "$ROOT/tests/golden/$name.args" ] && read -r -a args <"$ROOT/tests/golden/$name.args"
    "$SP" -r "$ROOT/tests/pcap/$name" --sensor-id golden "${args[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    check_eq "$name: exit status" 0 "$rc"
    check "$name: output equals golden" diff -u "$want" "$TMP/$name.out"
done
finish
