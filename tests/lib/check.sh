# Shared helpers for the shell tests (tests/t_*.sh). Source it; call `check NAME CMD...`
# or `check_eq NAME EXPECTED ACTUAL`. Each prints "ok - NAME" or "FAIL - NAME" (with detail)
# and counts; `finish` prints "N passed, N failed" and sets the exit code.
# Paths: $ROOT is the repository, $SP the sanitizer build of the binary (faster plain build
# with SP_PLAIN=1), $TMP a scratch folder removed at exit.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ "${SP_PLAIN:-0}" = 1 ]; then SP=$ROOT/build/spanprint; else SP=$ROOT/build/spanprint-asan; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
_pass=0
_fail=0

check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then
        echo "ok - $name"; _pass=$((_pass + 1))
    else
        echo "FAIL - $name"; printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
        _fail=$((_fail + 1))
    fi
}

check_eq() {
    local name=$1 want=$2 got=$3
    if [ "$want" = "$got" ]; then
        echo "ok - $name"; _pass=$((_pass + 1))
    else
        echo "FAIL - $name"; echo "    want: $want"; echo "    got:  $got"
        _fail=$((_fail + 1))
    fi
}

finish() {
    echo "$_pass passed, $_fail failed"
    [ "$_fail" -eq 0 ]
}
