#!/usr/bin/env bash
# The benchmark behind `make bench`: figures only, no pass/fail on timings.
#
# Builds (once) the two captures with build_captures.sh, then runs, alternating and
# BENCH_RUNS times each (default 3), on page-cached files:
#   raw libpcap loop (rawloop.c, cc -O2)        mixed, tls
#   build/spanprint -r CAP -o FILE (on /dev/shm) --geo-city/--geo-asn (MaxMind test DBs)
#                                                mixed, tls   (+ --workers 2, + each --no-*
#                                                              stage switch its --help lists,
#                                                              + the Kafka sink if BENCH_KAFKA=1)
#   ndpiReader -q -i CAP -C out.csv              mixed, tls
#   pmacctd (savefile, src_host,dst_host, print) mixed, tls
#   tshark SNI + JA3 of every ClientHello        tls
# and prints median wall and CPU seconds, packets/s, ns/packet, peak RSS and the packet-rate
# ratio against spanprint; then instructions per packet under callgrind on a slice of each
# capture (spanprint and the raw loop), which does not depend on the machine's load.
# A missing tool gives "n/a" rows, never a failure. The report also goes to
# tests/bench/out/latest.txt; every tool's output and stderr stay in tests/bench/out/.
#
# Environment:
#   BENCH_RUNS=5          timed runs per row
#   BENCH_KAFKA=0         1: also time spanprint's Kafka sink against tests/kafka/broker.sh
#   BENCH_LIVE=1          0: skip the live-capture rate on a veth pair (tests/bench/live_rate.sh)
#   BENCH_KAFKA_ARGS      spanprint options that select the Kafka sink (default: guessed
#                         from --help, e.g. "-b 127.0.0.1:9092 --topic-prefix bench")
#   BENCH_VARIANTS        spanprint stage switches to time, ';'-separated (default: every
#                         --no-* option in --help but live-capture ones); "none" for none
#   BENCH_CALLGRIND=1     0 skips the callgrind section
#   BENCH_SLICE=50000     packets in the callgrind slice (a slice of BENCH_SLICE/5 gives the
#                         start-up cost, so the marginal per-packet figure excludes it)
#   BENCH_CAPS="mixed tls"  which captures to time
#   SPANPRINT             binary to time (default build/spanprint)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DATA=$HERE/data
OUT=$HERE/out
RUNS=${BENCH_RUNS:-5}
SP=${SPANPRINT:-$ROOT/build/spanprint}
CAPS=${BENCH_CAPS:-mixed tls}
SLICE=${BENCH_SLICE:-50000}
SLICE_SMALL=$((SLICE / 5))
mkdir -p "$OUT"
rm -f "$OUT"/row*.stdout "$OUT"/row*.stderr "$OUT"/time.* "$OUT"/callgrind.* "$OUT/runs.tsv"
REPORT=$OUT/latest.txt
: >"$REPORT.tmp"
say() { printf '%s\n' "$*" | tee -a "$REPORT.tmp"; }
have() { command -v "$1" >/dev/null 2>&1; }
t0=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tools -------------------------------------------------------------------------------
TIME=/usr/bin/time
if [ ! -x "$TIME" ]; then
    echo "bench: /usr/bin/time missing; installing the Debian 'time' package" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1; }; } ||
        { echo "bench: cannot install 'time'; GNU time is required" >&2; exit 1; }
fi

RAW=$OUT/rawloop
if ! cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$RAW" "$HERE/rawloop.c" \
    $(pkg-config --cflags --libs libpcap 2>/dev/null || echo -lpcap); then
    echo "bench: cannot build the raw libpcap loop" >&2
    RAW=
fi

# ---- captures ----------------------------------------------------------------------------
if ! "$HERE/build_captures.sh"; then
    echo "bench: building the captures failed" >&2
    exit 1
fi
declare -A PKTS
for c in $CAPS; do
    [ -s "$DATA/$c.pcap" ] || { echo "bench: no capture $DATA/$c.pcap" >&2; exit 1; }
    cat "$DATA/$c.pcap" >/dev/null # into the page cache
    if [ -n "$RAW" ]; then
        PKTS[$c]=$("$RAW" "$DATA/$c.pcap" | cut -d' ' -f1)
    else
        PKTS[$c]=$(capinfos -T -r -c "$DATA/$c.pcap" | cut -f2)
    fi
done

# ---- what spanprint offers ---------------------------------------------------------------
SP_OK=0
SP_HELP=
if [ -x "$SP" ]; then
    SP_HELP=$("$SP" --help 2>&1 || true)
    SP_OK=1
fi
sp_has() { grep -q -e "$1" <<<"$SP_HELP"; }
SP_STATS=
[ "$SP_OK" = 1 ] && sp_has '--stats' && SP_STATS=--stats
# The full pipeline enriches with geo/ASN: MaxMind's test databases (few addresses match, but
# every lookup is made), and writes its NDJSON to a real file, as the issue's targets say.
GEO_CITY=$ROOT/tests/data/geo/GeoLite2-City-Test.mmdb
GEO_ASN=$ROOT/tests/data/geo/GeoLite2-ASN-Test.mmdb
GEO_ARGS=()
if [ "$SP_OK" = 1 ] && sp_has '--geo-city' && [ -s "$GEO_CITY" ] && [ -s "$GEO_ASN" ]; then
    GEO_ARGS=(--geo-city "$GEO_CITY" --geo-asn "$GEO_ASN")
    SP_STATS="$SP_STATS --geo-city $(printf '%q' "$GEO_CITY") --geo-asn $(printf '%q' "$GEO_ASN")"
fi
# On tmpfs when there is one: the file's write cost stays in the figures, the disk's does not.
SP_OUT=$OUT/spanprint.ndjson
[ -d /dev/shm ] && [ -w /dev/shm ] && SP_OUT=/dev/shm/spanprint-bench.$$.ndjson
VARIANTS=()
if [ "$SP_OK" = 1 ]; then
    if [ -n "${BENCH_VARIANTS:-}" ]; then
        [ "$BENCH_VARIANTS" = none ] || IFS=';' read -r -a VARIANTS <<<"$BENCH_VARIANTS"
    else
        # Stage switches only: live-capture options (--no-promisc) change nothing offline.
        mapfile -t VARIANTS < <(grep -E -- '--no-[a-z0-9-]+' <<<"$SP_HELP" |
            grep -viE 'interface|live|promisc' | grep -oE -- '--no-[a-z0-9-]+' | sort -u)
    fi
fi

# ---- the rows ------------------------------------------------------------------------------
# One row: label, capture, command (a string run by bash -c; stdout/stderr go to files).
R_LABEL=() R_CAP=() R_CMD=() R_NA=()
row() { R_LABEL+=("$1"); R_CAP+=("$2"); R_CMD+=("$3"); R_NA+=("${4:-}"); }
q() { printf '%q' "$1"; }

for c in $CAPS; do
    cap=$DATA/$c.pcap
    if [ -n "$RAW" ]; then row "raw libpcap loop" "$c" "$(q "$RAW") $(q "$cap")"
    else row "raw libpcap loop" "$c" "" "rawloop.c did not build"; fi

    if [ "$SP_OK" = 1 ]; then
        row "spanprint" "$c" "$(q "$SP") -r $(q "$cap") -o $(q "$SP_OUT") $SP_STATS"
        if sp_has '--workers'; then
            row "spanprint --workers 2" "$c" "$(q "$SP") -r $(q "$cap") -o $(q "$SP_OUT") --workers 2 $SP_STATS"
        fi
        for v in "${VARIANTS[@]}"; do
            row "spanprint $v" "$c" "$(q "$SP") -r $(q "$cap") -o $(q "$SP_OUT") $v $SP_STATS"
        done
        if [ "${#VARIANTS[@]}" -gt 1 ]; then
            row "spanprint ${VARIANTS[*]}" "$c" "$(q "$SP") -r $(q "$cap") -o $(q "$SP_OUT") ${VARIANTS[*]} $SP_STATS"
        fi
    else
        row "spanprint" "$c" "" "$SP not built"
    fi

    if have ndpiReader; then
        row "ndpiReader -q -C" "$c" "ndpiReader -q -i $(q "$cap") -C $(q "$OUT/ndpiReader.$c.csv")"
    else
        row "ndpiReader -q -C" "$c" "" "ndpiReader missing (Debian libndpi-bin)"
    fi

    if have pmacctd; then
        sed -e "s|@CAP@|$cap|" -e "s|@OUT@|$OUT/pmacctd.$c.csv|" "$HERE/pmacctd.conf" >"$OUT/pmacctd.$c.conf"
        row "pmacctd print src/dst_host" "$c" "pmacctd -f $(q "$OUT/pmacctd.$c.conf")"
    else
        row "pmacctd print src/dst_host" "$c" "" "pmacctd missing (Debian pmacct)"
    fi

    if [ "$c" = tls ]; then
        if have tshark; then
            row "tshark SNI+JA3 of ClientHellos" "$c" \
                "tshark -r $(q "$cap") -Y tls.handshake.type==1 -T fields -e tls.handshake.extensions_server_name -e tls.handshake.ja3"
        else
            row "tshark SNI+JA3 of ClientHellos" "$c" "" "tshark missing"
        fi
    fi
done

# Kafka: only on request, against the project's test broker.
KAFKA_STARTED=0
KAFKA_PREFIX=bench$(date +%s) # fresh topics, so the messages of this run can be counted
KAFKA_NOTE=
KAFKA_OK=0
if [ "${BENCH_KAFKA:-0}" = 1 ]; then
    BROKER=$ROOT/tests/kafka/broker.sh
    kargs=${BENCH_KAFKA_ARGS:-}
    if [ -z "$kargs" ] && [ "$SP_OK" = 1 ]; then
        if sp_has '--brokers'; then kargs="--brokers 127.0.0.1:${KAFKA_PORT:-9092}"; fi
        if [ -n "$kargs" ] && sp_has '--topic-prefix'; then kargs="$kargs --topic-prefix $KAFKA_PREFIX"; fi
        if [ -n "$kargs" ] && sp_has '--spool-dir'; then
            mkdir -p "$OUT/kafka-spool"; kargs="$kargs --spool-dir $OUT/kafka-spool"
        fi
    fi
    why=
    if [ ! -x "$BROKER" ]; then why="tests/kafka/broker.sh missing"
    elif [ "$SP_OK" != 1 ]; then why="$SP not built"
    elif [ -z "$kargs" ]; then why="no Kafka option in spanprint --help (set BENCH_KAFKA_ARGS)"
    elif ! "$BROKER" status >/dev/null 2>&1; then
        if "$BROKER" start >"$OUT/kafka-broker.log" 2>&1; then KAFKA_STARTED=1
        else why="broker did not start (see out/kafka-broker.log)"; fi
    fi
    [ -z "$why" ] && KAFKA_OK=1
    for c in $CAPS; do
        if [ -z "$why" ]; then
            row "spanprint Kafka sink" "$c" "$(q "$SP") -r $(q "$DATA/$c.pcap") $kargs $SP_STATS"
        else
            row "spanprint Kafka sink" "$c" "" "$why"
        fi
    done
fi

# ---- timed runs, alternating ---------------------------------------------------------------
declare -A T_WALL T_CPU T_RSS T_FAIL
printf 'tool\tcapture\trun\twall_s user_s sys_s maxrss_kb\n' >"$OUT/runs.tsv"
NROWS=${#R_LABEL[@]}
for ((run = 1; run <= RUNS; run++)); do
    for ((i = 0; i < NROWS; i++)); do
        [ -n "${R_NA[$i]}" ] && continue
        [ -n "${T_FAIL[$i]:-}" ] && continue
        tag=$(printf '%02d' "$i")
        # pmacctd writes its output file itself; start each run without the previous one.
        rm -f "$OUT/pmacctd.${R_CAP[$i]}.csv"
        if "$TIME" -o "$OUT/time.$tag" -f '%e %U %S %M' bash -c "exec ${R_CMD[$i]}" \
            >"$OUT/row$tag.stdout" 2>"$OUT/row$tag.stderr"; then
            read -r e u s m <"$OUT/time.$tag"
            T_WALL[$i]+="$e "
            T_CPU[$i]+="$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') "
            T_RSS[$i]+="$m "
        else
            T_FAIL[$i]="$(head -n 1 "$OUT/time.$tag" | sed 's/^Command //'); see out/row$tag.stderr"
        fi
        printf '%s\t%s\t%d\t%s\n' "${R_LABEL[$i]}" "${R_CAP[$i]}" "$run" "$(tail -n 1 "$OUT/time.$tag")" \
            >>"$OUT/runs.tsv"
        [ -t 2 ] && printf '\rbench: run %d/%d, row %d/%d ' "$run" "$RUNS" $((i + 1)) "$NROWS" >&2
    done
    [ -t 2 ] || echo "bench: run $run/$RUNS done ($(($(date +%s) - t0)) s)" >&2
done
[ -t 2 ] && printf '\r%60s\r' '' >&2
if [ "$KAFKA_OK" = 1 ]; then
    # Did the records reach the broker? Count what the runs left on the flow topic.
    if have kcat; then
        n=$(timeout 120 kcat -b "127.0.0.1:${KAFKA_PORT:-9092}" -C -t "$KAFKA_PREFIX.flows" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l)
        KAFKA_NOTE="Kafka: $n messages on topic $KAFKA_PREFIX.flows after $RUNS runs per capture"
        [ "$n" -gt 0 ] || KAFKA_NOTE="$KAFKA_NOTE: the Kafka rows measured no delivery"
    fi
fi
[ "$KAFKA_STARTED" = 1 ] && "$ROOT/tests/kafka/broker.sh" stop >/dev/null 2>&1
rm -f "$SP_OUT"

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -n 1; }
# paired ROW_TIMES SP_TIMES: the median over runs of (row's time / spanprint's time in the same
# run). The rows of one run follow each other within seconds, so the machine's drift from run
# to run (a third, on the 2-core VMs) cancels out of each run's ratio.
paired() { awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); m = split(b, y, " ");
    if (m < n) n = m; k = 0; for (i = 1; i <= n; i++) if (y[i] > 0) r[++k] = x[i] / y[i];
    if (!k) exit; for (i = 2; i <= k; i++) { v = r[i]; for (j = i - 1; j > 0 && r[j] > v; j--) r[j + 1] = r[j]; r[j + 1] = v }
    print (k % 2 ? r[(k + 1) / 2] : (r[k / 2] + r[k / 2 + 1]) / 2) }'; }

# ---- report ----------------------------------------------------------------------------------
mem_kb=$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
say "Spanprint benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "machine: $(nproc) CPUs ($cpu), $((mem_kb / 1024 / 1024)) GiB RAM, $(uname -sr)"
say "load average (1/5/15 min) at start: $load0, at end: $(cut -d' ' -f1-3 /proc/loadavg) — wall times suffer from other load, cpu times and callgrind much less"
ver() { [ -n "$2" ] && printf '%s %s' "$1" "$2" || printf '%s n/a' "$1"; }
say "tools: $(ver nDPI "$(ndpiReader -h 2>/dev/null | head -n 1 | grep -oE '[0-9]+\.[0-9.]+')");" \
    "$(ver pmacctd "$(pmacctd -V 2>&1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)");" \
    "$(ver tshark "$(tshark -v 2>/dev/null | head -n 1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)");" \
    "$(ver libpcap "$(pkg-config --modversion libpcap 2>/dev/null)");" \
    "$(ver valgrind "$(valgrind --version 2>/dev/null | sed 's/valgrind-//')")"
say "captures (page-cached; packets counted by the raw loop):"
for c in $CAPS; do say "  $(cat "$DATA/$c.info" 2>/dev/null || echo "$c.pcap")"; done
say "runs: $RUNS per row, alternating; median wall time; cpu = user+sys (median), cpu ns/p from it;"
say "  peak RSS = max of the runs; every run's figures: out/runs.tsv"
say "ratio = spanprint's packet rate / the row's rate on the same capture (>1: spanprint is faster), from"
say "  the medians; paired = the median over runs of the row's time / spanprint's time in that run"
say "  (steadier when the machine's speed drifts between runs)"
say ""

lw=4
for l in "${R_LABEL[@]}"; do [ "${#l}" -gt "$lw" ] && lw=${#l}; done
dashes() { printf '%*s' "$1" '' | tr ' ' -; }
fmt="%-${lw}s %-7s %9s %7s %10s %8s %8s %7s  %-6s %s"
say "$(printf "$fmt" tool capture "median s" "cpu s" "packets/s" "ns/pkt" "cpu ns/p" "RSS MB" paired "ratio")"
say "$(printf "$fmt" "$(dashes "$lw")" ------- --------- ------- ---------- -------- -------- ------- ------ --------------------)"
declare -A SP_RATE RAW_RATE SP_WALLS
for ((i = 0; i < NROWS; i++)); do
    if [ -z "${R_NA[$i]}" ] && [ -z "${T_FAIL[$i]:-}" ]; then
        w=$(median <<<"${T_WALL[$i]}")
        r=$(awk -v p="${PKTS[${R_CAP[$i]}]}" -v w="$w" 'BEGIN { printf "%.0f", (w > 0 ? p / w : 0) }')
        [ "${R_LABEL[$i]}" = spanprint ] && SP_RATE[${R_CAP[$i]}]=$r && SP_WALLS[${R_CAP[$i]}]=${T_WALL[$i]}
        [ "${R_LABEL[$i]}" = "raw libpcap loop" ] && RAW_RATE[${R_CAP[$i]}]=$r
    fi
done
for ((i = 0; i < NROWS; i++)); do
    c=${R_CAP[$i]}
    if [ -n "${R_NA[$i]}" ]; then
        say "$(printf "$fmt" "${R_LABEL[$i]}" "$c" n/a n/a n/a n/a n/a n/a n/a "(${R_NA[$i]})")"; continue
    fi
    if [ -n "${T_FAIL[$i]:-}" ]; then
        say "$(printf "$fmt" "${R_LABEL[$i]}" "$c" n/a n/a n/a n/a n/a n/a n/a "(failed: ${T_FAIL[$i]})")"; continue
    fi
    w=$(median <<<"${T_WALL[$i]}")
    cpu_s=$(median <<<"${T_CPU[$i]}")
    rss=$(awk -v k="$(maxof <<<"${T_RSS[$i]}")" 'BEGIN { printf "%.1f", k / 1024 }')
    p=${PKTS[$c]}
    rate=$(awk -v p="$p" -v w="$w" 'BEGIN { printf "%.0f", (w > 0 ? p / w : 0) }')
    nspp=$(awk -v p="$p" -v w="$w" 'BEGIN { printf "%.0f", w * 1e9 / p }')
    cnspp=$(awk -v p="$p" -v w="$cpu_s" 'BEGIN { printf "%.0f", w * 1e9 / p }')
    sp=${SP_RATE[$c]:-}
    if [ -z "$sp" ]; then ratio=n/a
    elif [ "${R_LABEL[$i]}" = "raw libpcap loop" ]; then
        ratio=$(awk -v s="$sp" -v r="$rate" 'BEGIN { printf "%.2f (spanprint = %.1f%% of raw)", s / r, 100 * s / r }')
    else
        ratio=$(awk -v s="$sp" -v r="$rate" 'BEGIN { printf "%.2f", (r > 0 ? s / r : 0) }')
    fi
    pr=$(paired "${T_WALL[$i]}" "${SP_WALLS[$c]:-}")
    [ -n "$pr" ] && pr=$(awk -v r="$pr" 'BEGIN { printf "%.2f", r }') || pr=n/a
    say "$(printf "$fmt" "${R_LABEL[$i]}" "$c" "$w" "$cpu_s" "$rate" "$nspp" "$cnspp" "$rss" "$pr" "$ratio")"
done
say ""
say "notes: pmacctd's wall time includes ~4 s of its own fixed sleeps (2 s after start, 2 s before exit"
say "  when reading a savefile) and short waits for its print plugin; its cpu column excludes them."
say "  tshark decodes every packet fully (two-pass off); it runs on the TLS capture only."
[ -n "$KAFKA_NOTE" ] && say "  $KAFKA_NOTE"
# What spanprint says it did (its --stats of the last plain run), to check it read everything.
for ((i = 0; i < NROWS; i++)); do
    [ "${R_LABEL[$i]}" = spanprint ] && [ -s "$OUT/row$(printf '%02d' "$i").stderr" ] || continue
    st=$(grep -E '^(packets|flows\.created|records\.[a-z_]+) [0-9]+$' "$OUT/row$(printf '%02d' "$i").stderr" |
        tr ' ' '=' | paste -sd' ' -)
    [ -n "$st" ] && say "  spanprint --stats on ${R_CAP[$i]}: $st (capture: ${PKTS[${R_CAP[$i]}]} packets)"
done

# ---- callgrind: instructions per packet ------------------------------------------------------
if [ "${BENCH_CALLGRIND:-1}" = 1 ]; then
    say ""
    if ! have valgrind; then
        say "instructions per packet: n/a (valgrind missing)"
    else
        say "Instructions per packet (valgrind --tool=callgrind, total Ir; first $SLICE_SMALL and first $SLICE packets of each capture)"
        cfmt='%-22s %-7s %16s %16s %12s %14s'
        say "$(printf "$cfmt" program capture "Ir ($SLICE_SMALL pkts)" "Ir ($SLICE pkts)" "Ir/packet" "marginal Ir/pkt")"
        say "$(printf "$cfmt" ---------------------- ------- ---------------- ---------------- ------------ --------------)"
        for c in $CAPS; do
            for n in "$SLICE_SMALL" "$SLICE"; do
                s=$DATA/$c.first$n.pcap
                # classic pcap, as the timed captures (editcap writes pcapng unless told)
                editcap -F pcap -r "$DATA/$c.pcap" "$s" "1-$n" >/dev/null 2>&1 || rm -f "$s"
            done
            for prog in raw spanprint; do
                if [ "$prog" = raw ]; then
                    [ -n "$RAW" ] || { say "$(printf "$cfmt" "raw libpcap loop" "$c" n/a n/a n/a n/a)"; continue; }
                    cmd=("$RAW")
                else
                    [ "$SP_OK" = 1 ] || { say "$(printf "$cfmt" spanprint "$c" n/a n/a n/a n/a)"; continue; }
                    cmd=("$SP" -o /dev/null "${GEO_ARGS[@]}" -r)
                fi
                irs=()
                for n in "$SLICE_SMALL" "$SLICE"; do
                    cg=$OUT/callgrind.$prog.$c.$n.out
                    rm -f "$cg"
                    if [ -s "$DATA/$c.first$n.pcap" ] &&
                        valgrind --tool=callgrind --callgrind-out-file="$cg" "${cmd[@]}" "$DATA/$c.first$n.pcap" \
                            >/dev/null 2>"$OUT/callgrind.$prog.$c.$n.log"; then
                        irs+=("$(awk '/^(summary|totals):/ { print $2; exit }' "$cg")")
                        [ "$prog" = spanprint ] && [ "$n" = "$SLICE" ] && have callgrind_annotate &&
                            callgrind_annotate --inclusive=yes "$cg" 2>/dev/null | head -n 80 \
                                >"$OUT/callgrind.$prog.$c.top.txt"
                    else
                        irs+=("")
                    fi
                done
                label=$prog; [ "$prog" = raw ] && label="raw libpcap loop"
                if [ -n "${irs[0]}" ] && [ -n "${irs[1]}" ]; then
                    per=$(awk -v i="${irs[1]}" -v n="$SLICE" 'BEGIN { printf "%.0f", i / n }')
                    marg=$(awk -v a="${irs[0]}" -v b="${irs[1]}" -v n0="$SLICE_SMALL" -v n1="$SLICE" \
                        'BEGIN { printf "%.0f", (b - a) / (n1 - n0) }')
                    say "$(printf "$cfmt" "$label" "$c" "${irs[0]}" "${irs[1]}" "$per" "$marg")"
                else
                    say "$(printf "$cfmt" "$label" "$c" n/a n/a n/a "n/a (see out/callgrind.$prog.$c.*.log)")"
                fi
            done
        done
        say "Ir/packet = total Ir of the $SLICE-packet run / $SLICE (includes start-up: nDPI init etc.);"
        say "marginal = (Ir($SLICE) - Ir($SLICE_SMALL)) / $((SLICE - SLICE_SMALL)), the per-packet cost without start-up."
        say "where spanprint's instructions go (inclusive): out/callgrind.spanprint.<capture>.top.txt"
    fi
fi

if [ "${BENCH_LIVE:-1}" = 1 ]; then
    say ""
    while IFS= read -r line; do say "$line"; done < <(SPANPRINT="$SP" tests/bench/live_rate.sh 2>&1)
fi

say ""
say "bench took $(($(date +%s) - t0)) s; outputs in tests/bench/out/ (row commands: out/rows.txt)"
for ((i = 0; i < NROWS; i++)); do
    printf 'row%02d %s [%s]: %s\n' "$i" "${R_LABEL[$i]}" "${R_CAP[$i]}" "${R_CMD[$i]:-n/a}"
done >"$OUT/rows.txt"
mv -f "$REPORT.tmp" "$REPORT"
