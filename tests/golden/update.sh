#!/usr/bin/env bash
# Rewrites the golden outputs from the current build (see tests/t_golden.sh).
set -eu
cd "$(dirname "$0")/../.."
make -s build/spanprint
for f in tests/golden/*.jsonl; do
    name=$(basename "$f" .jsonl)
    args=()
    [ -f "tests/golden/$name.args" ] && read -r -a args <"tests/golden/$name.args"
    build/spanprint -r "tests/pcap/$name" --sensor-id golden "${args[@]}" >"$f"
done
