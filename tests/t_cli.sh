#!/usr/bin/env bash
# Command-line behaviour: help/version, exit codes and messages for user errors, config
# files and precedence, stdin, -o, several inputs, truncated captures, determinism.
source "$(dirname "$0")/lib/check.sh"
P=$ROOT/tests/pcap

run() { # run ARGS...: sets $out, $err, $rc
    "$SP" "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
    out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
}

run --help
check_eq "--help exits 0" 0 "$rc"
check "--help shows usage and options" grep -q -- '--flow-max' "$TMP/out"
run --version
check_eq "--version exits 0" 0 "$rc"
check "--version names the program" grep -q '^spanprint [0-9]' "$TMP/out"

run --no-such-option
check_eq "unknown option exits 2" 2 "$rc"
check "unknown option is named" grep -q "no-such-option" "$TMP/err"
run
check_eq "no input exits 2" 2 "$rc"
check "no input says how to give one" grep -q -- "-r FILE" "$TMP/err"
run -i lo -i lo
check_eq "an interface given twice exits 2" 2 "$rc"
check "an interface given twice is named" grep -q -- "--interface: interface 'lo' given twice" "$TMP/err"
printf 'interface = spv9\ninterface = spv8\n' >"$TMP/ifaces.conf"
run -c "$TMP/ifaces.conf" --dump-config
check "config file: interface repeated, each kept in order" \
    bash -c "grep '^interface = ' '$TMP/out' | tr '\n' ' ' | grep -qx 'interface = spv9 interface = spv8 '"
run -c "$TMP/ifaces.conf" -i spv7 --dump-config
check "-i on the command line replaces the file's interfaces" \
    bash -c "grep '^interface = ' '$TMP/out' | tr '\n' ' ' | grep -qx 'interface = spv7 '"
run -r "$P/sample.pcapng" --flow-max abc
check_eq "bad number exits 2" 2 "$rc"
check "bad number names the option" grep -q -- "--flow-max: 'abc'" "$TMP/err"
run -r "$P/sample.pcapng" --flow-max 1
check_eq "out-of-range exits 2" 2 "$rc"
check "out-of-range gives the range" grep -q "out of range" "$TMP/err"
run -r "$P/sample.pcapng" extra-arg
check_eq "stray argument exits 2" 2 "$rc"

run -r "$TMP/missing.pcap"
check_eq "missing file exits 1" 1 "$rc"
check "missing file is named with the reason" grep -q "missing.pcap: No such file" "$TMP/err"
check_eq "missing file: no output" "" "$out"
run -r "$ROOT/README.md"
check_eq "not a capture exits 1" 1 "$rc"
check "not a capture is said" grep -q "README.md: not a readable pcap" "$TMP/err"
run -r "$P/bad-linktype.pcap"
check_eq "unsupported link type exits 1" 1 "$rc"
check "unsupported link type is named" grep -q "unsupported link type 147" "$TMP/err"
run -r "$P/sample.pcapng" -f 'not a (valid filter'
check_eq "bad BPF filter exits 2" 2 "$rc"

run -r "$P/truncated.pcapng" --sensor-id t
check_eq "truncated capture exits 0" 0 "$rc"
check "truncated capture warns" grep -q "truncated" "$TMP/err"
check "truncated capture keeps packets read" grep -q '"type":"flow"' "$TMP/out"
check "stats record marks the input truncated" grep -q '"truncated":true' "$TMP/out"

# Same output from a file, from stdin, and with -o.
"$SP" -r "$P/sample.pcapng" --sensor-id t >"$TMP/a" 2>/dev/null
"$SP" -r - --sensor-id t <"$P/sample.pcapng" >"$TMP/b" 2>/dev/null
"$SP" -r "$P/sample.pcapng" --sensor-id t -o "$TMP/c" 2>/dev/null
check "stdin gives the same flows as the file" diff <(grep -v '"type":"stats"' "$TMP/a") <(grep -v '"type":"stats"' "$TMP/b")
check "-o writes the same records as stdout" cmp "$TMP/a" "$TMP/c"
"$SP" -r "$P/sample.pcapng" --sensor-id t >"$TMP/d" 2>/dev/null
check "two runs are byte-identical" cmp "$TMP/a" "$TMP/d"
run -r "$P/sample.pcapng" -o "$TMP/no/such/dir/out.json"
check_eq "unwritable -o exits 2" 2 "$rc"
check "unwritable -o is named" grep -q -- "--output: $TMP/no/such/dir/out.json" "$TMP/err"

# Several inputs, in order: the stats record lists both with their packet counts.
run -r "$P/v6.pcap" -r "$P/sll2_tls.pcap" --sensor-id t
check_eq "two inputs exit 0" 0 "$rc"
check "stats lists both inputs in order" grep -q '"inputs":\[{"file":"[^"]*v6.pcap","linktype":1,"packets":161,"truncated":false},{"file":"[^"]*sll2_tls.pcap","linktype":276,"packets":1' "$TMP/out"

# Config file: values apply, the command line wins, errors name file:line.
printf '# test config\nsensor-id = fromfile\nflow_idle_timeout = 30\n' >"$TMP/ok.conf"
run -c "$TMP/ok.conf" -r "$P/sll2_tls.pcap"
check "config file value applies" grep -q '"sensor":"fromfile"' "$TMP/out"
run -c "$TMP/ok.conf" -r "$P/sll2_tls.pcap" --sensor-id cli
check "command line wins over config file" grep -q '"sensor":"cli"' "$TMP/out"
run -c "$TMP/ok.conf" --dump-config
check "--dump-config shows file values" grep -q '^flow-idle-timeout = 30$' "$TMP/out"
printf 'sensor-id = x\nno_such_key = 1\n' >"$TMP/bad.conf"
run -c "$TMP/bad.conf" -r "$P/sll2_tls.pcap"
check_eq "unknown config key exits 2" 2 "$rc"
check "unknown config key names file:line" grep -q "bad.conf:2: unknown key 'no_such_key'" "$TMP/err"
printf 'flow-max = lots\n' >"$TMP/bad2.conf"
run -c "$TMP/bad2.conf" -r "$P/sll2_tls.pcap"
check "bad config value names file:line and key" grep -q "bad2.conf:1: flow-max: 'lots'" "$TMP/err"
printf 'just words\n' >"$TMP/bad3.conf"
run -c "$TMP/bad3.conf" -r "$P/sll2_tls.pcap"
check "config line without = is explained" grep -q "bad3.conf:1: expected" "$TMP/err"
run -c "$TMP/none.conf" -r "$P/sll2_tls.pcap"
check_eq "missing config file exits 2" 2 "$rc"

finish
