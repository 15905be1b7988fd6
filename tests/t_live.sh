#!/usr/bin/env bash
# Live capture on a veth pair between two network namespaces: tcpreplay sends test captures
# from one end, spanprint captures on the other. The flow records must equal those of
# offline replay of the same capture (timestamps aside) with zero drops; SIGTERM mid-capture
# exits 0 with every record flushed; a top-speed run reports its drop counters. Also checks
# two interfaces in one process, the Prometheus endpoint (one pipeline and --workers 2),
# --pid-file and --user. Skipped (not failed) without root/netns.
source "$(dirname "$0")/lib/check.sh"
NS_A=sp_live_a$$
NS_B=sp_live_b$$
if [ "$(id -u)" -ne 0 ] || ! command -v tcpreplay >/dev/null || ! ip netns add "$NS_A" 2>/dev/null; then
    echo "SKIP - live capture needs root, ip netns and tcpreplay"
    finish
    exit $?
fi
cleanup() { ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add "$NS_B"
ip link add spv0 netns "$NS_A" type veth peer name spv1 netns "$NS_B"
ip link add spv2 netns "$NS_A" type veth peer name spv3 netns "$NS_B" # a second link: -i twice
for ns in "$NS_A:spv0" "$NS_B:spv1" "$NS_A:spv2" "$NS_B:spv3"; do
    n=${ns%%:*}; i=${ns#*:}
    ip netns exec "$n" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$n" link set "$i" mtu 9000 up
    ip -n "$n" link set lo up
done
for i in spv0 spv2; do ip netns exec "$NS_A" sysctl -q -w net.ipv6.conf.$i.disable_ipv6=1 2>/dev/null; done
for i in spv1 spv3; do ip netns exec "$NS_B" sysctl -q -w net.ipv6.conf.$i.disable_ipv6=1 2>/dev/null; done

# Captures with frames that fit a 9000-byte MTU (tcpreplay cannot send bigger ones).
CAPS=(latest.pcapng tls-sni.pcapng v6.pcap)

start_sensor() { # OUT [extra args]: starts spanprint on spv0, sets $spid
    local out=$1; shift
    ip netns exec "$NS_A" "$SP" -i spv0 --sensor-id live -o "$out" "$@" 2>"$out.err" &
    spid=$!
    for _ in $(seq 50); do grep -q . "$out.err" 2>/dev/null && break; [ -e "/proc/$spid" ] || break; sleep 0.1;
        ip netns exec "$NS_A" cat /proc/net/packet 2>/dev/null | grep -q . && break; done
    sleep 1
}

for cap in "${CAPS[@]}"; do
    start_sensor "$TMP/$cap.live"
    ip netns exec "$NS_B" tcpreplay -q -i spv1 --pps 500 "$ROOT/tests/pcap/$cap" >"$TMP/$cap.replay" 2>&1
    sleep 0.5
    kill -TERM "$spid"; wait "$spid"; rc=$?
    check_eq "$cap: SIGTERM mid-capture exits 0" 0 "$rc"
    "$SP" -r "$ROOT/tests/pcap/$cap" --sensor-id live -o "$TMP/$cap.offline"
    check "$cap: live flows equal offline replay" python3 "$ROOT/tests/tools/compare_flows.py" "$TMP/$cap.offline" "$TMP/$cap.live"
    check "$cap: zero kernel drops at a moderate rate" grep -q '"kernel_drops":0,"interface_drops":0' "$TMP/$cap.live"
    check "$cap: the stats record is flushed at SIGTERM" grep -q '"type":"stats"' "$TMP/$cap.live"
    check "$cap: live records carry the run id, replayed ones do not" bash -c "grep -q '\"sensor\":\"live\",\"run\":[1-9]' '$TMP/$cap.live' && ! grep -q '\"run\":' '$TMP/$cap.offline'"
done

# Two interfaces in one process (-i twice, as for the two directions of a tap): one flow
# table for both; the flow records equal offline replay of both captures, and the stats
# record lists each interface with its packets.
start_sensor "$TMP/two.live" -i spv2 --metrics 127.0.0.1:19392
ip netns exec "$NS_B" tcpreplay -q -i spv1 --pps 500 "$ROOT/tests/pcap/latest.pcapng" >/dev/null 2>&1 &
rp=$!
ip netns exec "$NS_B" tcpreplay -q -i spv3 --pps 500 "$ROOT/tests/pcap/v6.pcap" >/dev/null 2>&1
wait "$rp"
sleep 1.5
ip netns exec "$NS_A" curl -s http://127.0.0.1:19392/metrics >"$TMP/two.metrics"
kill -TERM "$spid"; wait "$spid"; rc=$?
check_eq "-i twice: SIGTERM exits 0" 0 "$rc"
"$SP" -r "$ROOT/tests/pcap/latest.pcapng" -r "$ROOT/tests/pcap/v6.pcap" --sensor-id live -o "$TMP/two.offline"
check "-i twice: flows of both links equal offline replay of both captures" python3 "$ROOT/tests/tools/compare_flows.py" "$TMP/two.offline" "$TMP/two.live"
n_latest=$(grep -o '"file":"[^"]*/latest.pcapng","linktype":[0-9]*,"packets":[0-9]*' "$TMP/two.offline" | grep -o '[0-9]*$')
n_v6=$(grep -o '"file":"[^"]*/v6.pcap","linktype":[0-9]*,"packets":[0-9]*' "$TMP/two.offline" | grep -o '[0-9]*$')
check "-i twice: each interface's capture counters, zero drops" grep -q "\"file\":\"spv0\",\"linktype\":1,\"packets\":$n_latest,\"truncated\":false,\"capture\":{\"received\":$n_latest,\"kernel_drops\":0,\"interface_drops\":0}},{\"file\":\"spv2\",\"linktype\":1,\"packets\":$n_v6,\"truncated\":false,\"capture\":{\"received\":$n_v6,\"kernel_drops\":0," "$TMP/two.live"
check "-i twice: /metrics has each interface's packets and drops" bash -c "grep -qx 'spanprint_interface_packets_total{interface=\"spv0\"} $n_latest' '$TMP/two.metrics' && grep -qx 'spanprint_interface_packets_total{interface=\"spv2\"} $n_v6' '$TMP/two.metrics' && grep -qx 'spanprint_interface_drops_total{interface=\"spv2\",cause=\"kernel\"} 0' '$TMP/two.metrics'"
check "-i twice: the capture totals sum both interfaces" grep -q "\"capture\":{\"received\":$((n_latest + n_v6)),\"kernel_drops\":0,\"interface_drops\":0},\"decode\"" "$TMP/two.live"
for py in /usr/bin/python3 python3; do # the one with python3-jsonschema, as t_schema.sh
    "$py" -c 'import jsonschema' 2>/dev/null && break
done
check "-i twice: the stats record matches its schema" "$py" "$ROOT/tests/tools/validate_schema.py" "$TMP/two.live"

# A tap delivers each direction on its own port: the client's datagrams on spv2, the
# server's on spv0, in turns. One flow table: one flow with both directions counted.
python3 -c "
import sys; sys.path.insert(0, '$ROOT/tests/tools'); import rawpcap as r
up = lambda n: [(i * 0.01, r.udp('10.9.0.1', '10.9.0.2', 40000, 5000, b'up%d' % i)) for i in range(n)]
down = lambda n: [(i * 0.01, r.udp('10.9.0.2', '10.9.0.1', 5000, 40000, b'down%d' % i)) for i in range(n)]
r.write('$TMP/tap1.pcap', up(3), 1700000000); r.write('$TMP/tap2.pcap', down(2), 1700000001)
r.write('$TMP/tap3.pcap', up(2), 1700000002)"
start_sensor "$TMP/tap.live" -i spv2
for t in spv3:tap1 spv1:tap2 spv3:tap3; do
    ip netns exec "$NS_B" tcpreplay -q -i "${t%%:*}" "$TMP/${t#*:}.pcap" >/dev/null 2>&1; sleep 0.3
done
kill -TERM "$spid"; wait "$spid"
check_eq "tap: one flow for both directions" 1 "$(grep '"type":"flow"' "$TMP/tap.live" | grep -c '"client":{"ip":"10.9.0.1","port":40000,')"
check "tap: the client's 5 and the server's 2 datagrams in it" grep -q '"c2s":{"pkts":5,[^}]*},"s2c":{"pkts":2,' "$TMP/tap.live"

# Top speed with a tiny kernel buffer: whatever is lost is reported, not hidden.
start_sensor "$TMP/fast.live" --buffer-mb 1 --metrics 127.0.0.1:19390 --pid-file "$TMP/sp.pid"
check_eq "--pid-file holds the pid" "$spid" "$(cat "$TMP/sp.pid" 2>/dev/null)"
for _ in 1 2 3; do ip netns exec "$NS_B" tcpreplay -q -i spv1 --topspeed "$ROOT/tests/pcap/tls-sni.pcapng" >/dev/null 2>&1; done
sleep 1.5
ip netns exec "$NS_A" curl -s http://127.0.0.1:19390/metrics >"$TMP/metrics.txt"
check "metrics endpoint serves packet counters" grep -q '^spanprint_packets_total [1-9]' "$TMP/metrics.txt"
check "metrics endpoint reports kernel drops" grep -q '^spanprint_drops_total{cause="kernel"} [0-9]' "$TMP/metrics.txt"
kill -USR1 "$spid"; sleep 0.5
check "SIGUSR1 writes statistics to stderr" grep -q '^packets ' "$TMP/fast.live.err"
kill -TERM "$spid"; wait "$spid"
check "top-speed run reports its drop counters" grep -Eq '"capture":\{"received":[0-9]+,"kernel_drops":[0-9]+,"interface_drops":[0-9]+\}' "$TMP/fast.live"
recv=$(grep -o '"received":[0-9]*' "$TMP/fast.live" | cut -d: -f2)
pkts=$(grep -o '"decode":{"packets":[0-9]*' "$TMP/fast.live" | grep -o '[0-9]*$')
drops=$(grep -o '"kernel_drops":[0-9]*' "$TMP/fast.live" | cut -d: -f2)
check_eq "received = processed + kernel drops" "$recv" "$((pkts + drops))"
check "--pid-file is removed at exit" test ! -e "$TMP/sp.pid"

# --workers: /metrics and SIGUSR1 sum the workers' counters while they run (each worker
# snapshots its counters at every tick); two ticks after the traffic, they count every packet.
start_sensor "$TMP/w2.live" --workers 2 --metrics 127.0.0.1:19391
ip netns exec "$NS_B" tcpreplay -q -i spv1 --pps 2000 "$ROOT/tests/pcap/tls-sni.pcapng" >/dev/null 2>&1
sleep 2.5
ip netns exec "$NS_A" curl -s http://127.0.0.1:19391/metrics >"$TMP/w2.metrics"
kill -USR1 "$spid"; sleep 1.5
kill -TERM "$spid"; wait "$spid"
final=$(grep -o '"decode":{"packets":[0-9]*' "$TMP/w2.live" | grep -o '[0-9]*$')
check "--workers 2: the capture got packets" test "${final:-0}" -gt 0
check_eq "--workers 2: /metrics counts every packet while the workers run" \
    "spanprint_packets_total $final" "$(grep '^spanprint_packets_total ' "$TMP/w2.metrics")"
check "--workers 2: /metrics sums the workers' flows" grep -Eq '^spanprint_flows_created_total [1-9]' "$TMP/w2.metrics"
check "--workers 2: SIGUSR1 prints the workers' packet count" grep -q "^packets $final\$" "$TMP/w2.live.err"
check "--workers 2: the interface's own capture counters in the stats record" \
    grep -q "\"file\":\"spv0\",\"linktype\":1,\"packets\":$final,\"truncated\":false,\"capture\":{\"received\":" "$TMP/w2.live"

# Privilege drop: capture opened as root, then runs as nobody.
start_sensor "$TMP/user.live" --user nobody
check_eq "--user: the sensor runs as nobody" "nobody" "$(ps -o user= -p "$spid" | tr -d ' ')"
kill -TERM "$spid"; wait "$spid"; rc=$?
check_eq "--user run exits 0" 0 "$rc"
run_err=$("$SP" -i no-such-if0 2>&1); rc=$?
check_eq "missing interface exits 1" 1 "$rc"
check "missing interface is named" grep -q "no-such-if0" <<<"$run_err"
finish
