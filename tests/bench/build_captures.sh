#!/usr/bin/env bash
# Builds the two benchmark captures from the third-party test pcaps in shared/data, and caches
# them in tests/bench/data/ (git-ignored). A capture is rebuilt only when it is missing or was
# built with other parameters.
#
#   mixed.pcap  every Ethernet capture of shared/data/{ja4,ndpi,mercury,pq}/pcap, concatenated
#               (mergecap -a) into one base, then the base repeated until it holds
#               BENCH_MIXED_PKTS packets (default 1400000); copy i is rewritten with
#               `tcprewrite --seed=i`, so every copy has its own client and server addresses.
#   tls.pcap    the same, from the captures of ja4/ and ndpi/ that carry a TLS handshake over
#               TCP (tshark `tcp && tls.handshake`), repeated to BENCH_TLS_PKTS (default 560000).
#
# Each source is converted to pcap (editcap -F pcap; pcapng → pcap) and moved in time by
# retime.py so that it starts one second after the previous one ends, with any pause of more
# than BENCH_MAX_GAP seconds (default 1) inside it shortened to one second; each copy is shifted
# past the previous copy. The result reads like one long capture whose clock goes forward and
# that is busy all along, as a sensor's input is: several sources glue sessions recorded months
# apart together (ndpi/pcap/quic.pcap spans a year), and 150 copies of such pauses would run the
# pcap clock past 2106 and make the sensor close ~100 empty 60 s windows per 10k packets, which
# live traffic never asks of it. Sources with a
# link type other than Ethernet are skipped (tcprewrite 4.4 turns DLT_NULL/SLL/raw-IP into
# Ethernet frames with EtherType 0, and cannot read SLL2 or PPP), as are files editcap cannot
# write as pcap and files tcprewrite rejects. What was used and skipped is written beside each
# capture in <name>.sources.txt; the one-line summary in <name>.info is what run.sh prints.
#
# Usage: tests/bench/build_captures.sh [--force]
# Environment: SHARED_DATA (default <repo>/../shared/data), BENCH_MIXED_PKTS, BENCH_TLS_PKTS,
# BENCH_MAX_GAP.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/data
SRC=${SHARED_DATA:-$ROOT/../shared/data}
[ -d "$SRC" ] || SRC=/work/shared/data
MIXED_PKTS=${BENCH_MIXED_PKTS:-1400000}
TLS_PKTS=${BENCH_TLS_PKTS:-560000}
MAX_GAP=${BENCH_MAX_GAP:-1}
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

die() { echo "build_captures: $*" >&2; exit 1; }
[ -d "$SRC" ] || die "no test data folder $SRC (set SHARED_DATA)"
SRC=$(cd "$SRC" && pwd)

mkdir -p "$OUT"
# What a capture depends on: the targets, the list of source files with their sizes, this script.
stamp_of() {
    local target=$1
    {
        echo "target=$target gap=$MAX_GAP"
        cksum <"$HERE/retime.py"
        (cd "$SRC" && ls -l ja4/pcap ndpi/pcap mercury/pcap pq/pcap 2>/dev/null | awk '{print $5, $9}')
        cksum <"${BASH_SOURCE[0]}"
    } | cksum | cut -d' ' -f1
}
MIXED_STAMP=$(stamp_of "$MIXED_PKTS")
TLS_STAMP=$(stamp_of "$TLS_PKTS")
fresh() { # name stamp
    [ "$FORCE" = 0 ] && [ -s "$OUT/$1.pcap" ] && [ -f "$OUT/$1.stamp" ] &&
        [ "$(cat "$OUT/$1.stamp")" = "$2" ]
}
if fresh mixed "$MIXED_STAMP" && fresh tls "$TLS_STAMP"; then
    exit 0
fi

for t in capinfos editcap mergecap tcprewrite tshark python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found (Debian: tshark, wireshark-common, tcpreplay, python3)"
done
t_start=$(date +%s)
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src"

# 1. Per source: check the link type, convert to pcap, move it onto the common clock.
#    list.tsv: index, relative path, packets, folder (one line per source kept)
cursor=1700000000000000 # microseconds: 2023-11-14T22:13:20Z, where the first source starts
idx=0
: >"$WORK/list.tsv"
: >"$WORK/skipped.txt"
for dir in ja4 ndpi mercury pq; do
    for f in "$SRC/$dir"/pcap/*; do
        [ -f "$f" ] || continue
        rel=${f#"$SRC"/}
        IFS=$'\t' read -r _ encap count < <(capinfos -T -r -c -E "$f" 2>/dev/null) ||
            { echo "$rel: capinfos cannot read it" >>"$WORK/skipped.txt"; continue; }
        if [ "$encap" != ether ]; then
            echo "$rel: link type $encap" >>"$WORK/skipped.txt"; continue
        fi
        if ! [ "${count:-0}" -gt 0 ] 2>/dev/null; then
            echo "$rel: no packets" >>"$WORK/skipped.txt"; continue
        fi
        idx=$((idx + 1))
        out=$WORK/src/$(printf '%04d' "$idx").pcap
        if ! editcap -F pcap "$f" "$WORK/conv.pcap" >/dev/null 2>"$WORK/err"; then
            echo "$rel: editcap cannot write it as pcap ($(head -c 120 "$WORK/err" | tr '\n' ' '))" \
                >>"$WORK/skipped.txt"
            rm -f "$out"; idx=$((idx - 1)); continue
        fi
        last=$(python3 "$HERE/retime.py" "$WORK/conv.pcap" "$out" "$cursor" "$MAX_GAP") ||
            die "retime.py failed on $rel"
        if ! tcprewrite --seed=1 -i "$out" -o "$WORK/probe.pcap" >/dev/null 2>"$WORK/err"; then
            echo "$rel: tcprewrite rejects it ($(grep -v '^$' "$WORK/err" | tail -1 | head -c 120))" \
                >>"$WORK/skipped.txt"
            rm -f "$out"; idx=$((idx - 1)); continue
        fi
        printf '%04d\t%s\t%s\t%s\n' "$idx" "$rel" "$count" "$dir" >>"$WORK/list.tsv"
        cursor=$((last + 1000000))
    done
done
[ -s "$WORK/list.tsv" ] || die "no usable capture in $SRC"

# 2. Which sources of ja4/ and ndpi/ carry TLS over TCP: one tshark per source (a single pass
#    over all of them would mix up sources that reuse the same 5-tuple), two at a time.
export WORK
awk -F'\t' '$4 == "ja4" || $4 == "ndpi" { print $1 }' "$WORK/list.tsv" | xargs -P 2 -I{} bash -c '
    n=$(tshark -r "$WORK/src/{}.pcap" -Y "tcp && tls.handshake" -T fields -e frame.number 2>/dev/null | wc -l)
    [ "$n" -gt 0 ] && touch "$WORK/src/{}.tls"; true'
awk -F'\t' -v w="$WORK/src" '{ f = w "/" $1 ".tls"; if ((getline _ < f) >= 0) { print; close(f) } }' \
    "$WORK/list.tsv" >"$WORK/tls.tsv"
[ -s "$WORK/tls.tsv" ] || die "tshark found no TLS handshake in ja4/ or ndpi/"

# 3. Base = the kept sources in order; capture = base repeated, copy i rewritten with seed i and
#    shifted past copy i-1. Copies are made two at a time (2 cores).
build_one() { # name list.tsv target_packets stamp
    local name=$1 list=$2 target=$3 stamp=$4
    local base=$WORK/$name.base.pcap
    cut -f1 "$list" | sed "s|.*|$WORK/src/&.pcap|" | xargs mergecap -a -F pcap -w "$base"
    local bpk first last copies period
    IFS=$'\t' read -r _ bpk first last < <(capinfos -T -r -c -a -e -S "$base")
    copies=$(((target + bpk - 1) / bpk))
    period=$(awk -v f="$first" -v l="$last" 'BEGIN { printf "%d", int(l - f) + 2 }')
    mkdir -p "$WORK/$name.copies"
    export WORK base period name
    seq 1 "$copies" | xargs -P 2 -I{} bash -c '
        i={}; c=$(printf "%s/%s.copies/%05d.pcap" "$WORK" "$name" "$i")
        tcprewrite --seed="$i" -i "$base" -o "$c.tmp" >/dev/null &&
        editcap -t $(( (i - 1) * period )) "$c.tmp" "$c" && rm -f "$c.tmp"' ||
        die "making the copies of $name failed"
    (cd "$WORK/$name.copies" && ls | sort | xargs mergecap -a -F pcap -w "$OUT/$name.pcap.tmp")
    mv -f "$OUT/$name.pcap.tmp" "$OUT/$name.pcap"
    rm -f "$OUT/$name".first*.pcap # run.sh's callgrind slices of the old capture
    rm -rf "$WORK/$name.copies"

    local pk bytes nsrc
    IFS=$'\t' read -r _ pk bytes < <(capinfos -T -r -c -s "$OUT/$name.pcap")
    nsrc=$(wc -l <"$list")
    {
        echo "# $name.pcap: $copies copies (tcprewrite --seed=1..$copies) of a base of $nsrc captures, $bpk packets,"
        echo "# each source retimed to start 1 s after the previous one, pauses > ${MAX_GAP} s in it cut to 1 s"
        echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $SRC by tests/bench/build_captures.sh"
        echo "# used (index, path under shared/data, packets):"
        awk -F'\t' '{ printf "%s  %s  %s\n", $1, $2, $3 }' "$list"
        echo "# skipped (all captures of shared/data/{ja4,ndpi,mercury,pq}/pcap not used above):"
        if [ "$name" = tls ]; then
            awk -F'\t' 'NR == FNR { tls[$2] = 1; next } !($2 in tls) { print $2 ": no TLS handshake over TCP (or not in ja4/, ndpi/)" }' \
                "$list" "$WORK/list.tsv"
        fi
        cat "$WORK/skipped.txt"
    } >"$OUT/$name.sources.txt"
    local dirs
    dirs=$(cut -f4 "$list" | sort -u | paste -sd, -)
    echo "$name.pcap: $pk packets, $((bytes / 1000000)) MB of packet data; $copies copies (tcprewrite --seed=1..$copies) of $nsrc captures ($bpk packets) from shared/data/{$dirs}/pcap, one after another in time (pauses > ${MAX_GAP} s cut to 1 s); $(grep -c . "$WORK/skipped.txt") skipped for link type/format (list: tests/bench/data/$name.sources.txt)" \
        >"$OUT/$name.info"
    echo "$stamp" >"$OUT/$name.stamp"
}

fresh mixed "$MIXED_STAMP" || build_one mixed "$WORK/list.tsv" "$MIXED_PKTS" "$MIXED_STAMP"
fresh tls "$TLS_STAMP" || build_one tls "$WORK/tls.tsv" "$TLS_PKTS" "$TLS_STAMP"
echo "build_captures: done in $(($(date +%s) - t_start)) s" >&2
cat "$OUT/mixed.info" "$OUT/tls.info" >&2
