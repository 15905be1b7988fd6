#!/usr/bin/env bash
# Runs every test `make test` built: unit test binaries (cmocka), shell tests (tests/t_*.sh)
# and each fuzz target for a short time on its seed corpus. Prints one summary line,
# "N passed, N failed", and exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
pass=0
fail=0
failed=()

# Reads a log's summary: cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" or
# the plain "N passed, N failed". Sets $p and $f.
summary() {
    local log=$1
    p=$(grep -E '^\[  PASSED  \] [0-9]+|^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 |
        grep -Eo '[0-9]+' | head -1)
    f=$(grep -E '^\[  FAILED  \] [0-9]+ test|^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 |
        grep -Eo '[0-9]+ (test|failed)' | grep -Eo '[0-9]+')
    p=${p:-0}
    f=${f:-0}
}

mkdir -p build/logs
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log=build/logs/$name.log
    echo "== $name"
    "$t" >"$log" 2>&1
    rc=$?
    grep -E '^\[ *(PASSED|FAILED|  OK|RUN) *\]|FAIL' "$log" | grep -v '^\[ RUN' | grep -v '^\[       OK' | tail -n 15
    summary "$log"
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; tail -n 30 "$log"; fi
    pass=$((pass + p))
    fail=$((fail + f))
    [ "$f" -eq 0 ] || failed+=("$name")
done

for t in tests/t_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    log=build/logs/$name.log
    echo "== $name"
    bash "$t" >"$log" 2>&1
    rc=$?
    grep -E '^(ok|FAIL|SKIP) ' "$log" | grep -v '^ok ' | head -n 40
    grep -A20 '^FAIL ' "$log" | head -n 60
    summary "$log"
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; tail -n 30 "$log"; fi
    pass=$((pass + p))
    fail=$((fail + f))
    [ "$f" -eq 0 ] || failed+=("$name")
    grep -E '^[0-9]+ passed' "$log" | tail -1 | sed 's/^/   /'
done

for fz in build/fuzz/fuzz_*; do
    [ -x "$fz" ] || continue
    name=$(basename "$fz")
    corpus=tests/corpus/${name#fuzz_}
    work=build/fuzz-work/$name
    mkdir -p "$work"
    echo "== $name (${FUZZ_SECONDS}s)"
    if "$fz" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
        "$work" $( [ -d "$corpus" ] && echo "$corpus" ) >build/logs/$name.log 2>&1; then
        pass=$((pass + 1))
        grep -E '^#[0-9]+ *DONE' build/logs/$name.log | tail -1
    else
        fail=$((fail + 1)); failed+=("$name")
        tail -n 40 build/logs/$name.log
    fi
done

[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
