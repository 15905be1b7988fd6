#!/usr/bin/env bash
# Live-capture rate: replays a capture with tcpreplay into one end of a veth pair (two
# network namespaces made here and removed at exit) at increasing packet rates while
# spanprint captures on the other end, and reports, for each rate, what the sensor received
# and what the kernel dropped; then the highest rate with zero drops.
# usage: tests/bench/live_rate.sh [CAPTURE]   (root, ip netns, tcpreplay)
# Env: LIVE_RATES="20000 50000 ..." (packets/s; "top" = tcpreplay --topspeed), SPANPRINT.
set -u
cd "$(dirname "$0")/../.."
SP=${SPANPRINT:-build/spanprint}
CAP=${1:-tests/bench/data/tls.first50000.pcap}
RATES=${LIVE_RATES:-"25000 50000 100000 200000 400000 top"}
if [ "$(id -u)" -ne 0 ] || ! command -v tcpreplay >/dev/null || [ ! -x "$SP" ] || [ ! -f "$CAP" ]; then
    echo "live rate: n/a (needs root, tcpreplay, $SP and $CAP)"
    exit 0
fi
A=sp_rate_a$$
B=sp_rate_b$$
TMP=$(mktemp -d)
cleanup() { ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add "$A" && ip netns add "$B" || { echo "live rate: n/a (ip netns failed)"; exit 0; }
ip link add spr0 netns "$A" type veth peer name spr1 netns "$B"
for x in "$A:spr0" "$B:spr1"; do
    n=${x%%:*}; i=${x#*:}
    ip netns exec "$n" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$n" link set "$i" mtu 9000 up
done
echo "live capture on a veth pair: $CAP (frames over 9000 bytes cannot be sent)"
printf '%-10s %12s %10s %10s %10s %12s\n' "asked" "achieved/s" "sent" "received" "drops" "processed"
best=none
for r in $RATES; do
    out=$TMP/$r.jsonl
    ip netns exec "$A" "$SP" -i spr0 --sensor-id rate --buffer-mb 64 -o "$out" 2>"$TMP/$r.err" &
    pid=$!
    sleep 1
    if [ "$r" = top ]; then arg=--topspeed; else arg=--pps=$r; fi
    ip netns exec "$B" tcpreplay -i spr1 "$arg" "$CAP" >"$TMP/$r.replay" 2>&1
    sent=$(awk '/Successful packets:/ {print $3}' "$TMP/$r.replay")
    rate=$(grep -o '[0-9.]* pps' "$TMP/$r.replay" | head -1 | cut -d' ' -f1)
    sleep 1
    kill -TERM "$pid"; wait "$pid"
    recv=$(grep -o '"received":[0-9]*' "$out" | cut -d: -f2)
    drop=$(grep -o '"kernel_drops":[0-9]*' "$out" | cut -d: -f2)
    proc=$(grep -o '"decode":{"packets":[0-9]*' "$out" | grep -o '[0-9]*$')
    printf '%-10s %12s %10s %10s %10s %12s\n' "$r" "${rate:-?}" "${sent:-?}" "${recv:-?}" "${drop:-?}" "${proc:-?}"
    [ "${drop:-1}" = 0 ] && [ -n "$recv" ] && [ "$recv" -gt 0 ] && best="${rate:-?} ($r)"
done
echo "highest replay rate with zero drops: $best packets/s (tcpreplay cannot go faster than \"top\" here)"
