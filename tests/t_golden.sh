#!/usr/bin/env bash
# Golden tests: each tests/golden/<capture>.jsonl is the expected output of
#   spanprint -r tests/pcap/<capture> --sensor-id golden [options from <capture>.args]
# Regenerate with tests/golden/update.sh after an intended change, and review the diff.
source "$(dirname "$0")/lib/check.sh"
shopt -s nullglob
cd "$ROOT" # relative capture paths, as in the golden files' stats records
for want in tests/golden/*.jsonl; do
    name=$(basename "$want" .jsonl)
    args=()
    [ -f "tests/golden/$name.args" ] && read -r -a args <"tests/golden/$name.args"
    "$SP" -r "tests/pcap/$name" --sensor-id golden "${args[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    check_eq "$name: exit status" 0 "$rc"
    check "$name: output equals golden" diff -u "$want" "$TMP/$name.out"
done
finish
