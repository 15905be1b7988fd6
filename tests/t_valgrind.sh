#!/usr/bin/env bash
# The optimised binary under valgrind memcheck: no invalid reads or writes, no use of
# uninitialised memory, no definite or indirect leaks, on captures that exercise every stage
# (TLS with certificates, tunnels, geo, fingerprints, pseudonyms, two workers).
source "$(dirname "$0")/lib/check.sh"
if ! command -v valgrind >/dev/null; then
    echo "SKIP - valgrind not installed"
    finish
    exit $?
fi
P=$ROOT/tests/pcap
G=$ROOT/tests/data/geo
VG=(valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect)
BIN=$ROOT/build/spanprint
printf 'spanprint-test-key-0123456789abcdef' >"$TMP/key"
check "memcheck: TLS captures with geo databases" "${VG[@]}" "$BIN" -r "$P/latest.pcapng" \
    -r "$P/tls-sni.pcapng" -r "$P/gre-erspan-vxlan.pcap" --geo-city "$G/GeoIP2-City-Test.mmdb" \
    --geo-asn "$G/GeoLite2-ASN-Test.mmdb" -o /dev/null
check "memcheck: fingerprints, pseudonyms, two workers" "${VG[@]}" "$BIN" \
    -r "$P/fp/llm_20clients.pcap" --workers 2 --pseudonym-key "$TMP/key" -o /dev/null
check "memcheck: truncated capture and odd link types" "${VG[@]}" "$BIN" -r "$P/truncated.pcapng" \
    -r "$P/sll2_tls.pcap" -r "$P/quic_ppp.pcap" -r "$P/tls_heur__trojan-tcp-tls.pcapng" -o /dev/null
finish
