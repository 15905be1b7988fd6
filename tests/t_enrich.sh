#!/usr/bin/env bash
# Classification and enrichment through the binary: nDPI application names (custom LLM
# protocols included), geo/ASN of both ends from MaxMind's test databases and from the
# project's own tiny database (tests/tools/make_test_mmdb.pl), scopes of private addresses,
# service rules from the shipped rules/, and the errors a user can cause with databases
# and rules files.
source "$(dirname "$0")/lib/check.sh"
P=$ROOT/tests/pcap
G=$ROOT/tests/data/geo
flow_of() { # FILE SERVER_IP: the first flow record to that server
    grep '"type":"flow"' "$1" | grep -m1 "\"server\":{\"ip\":\"$2\""
}

"$SP" -r "$P/latest.pcapng" --sensor-id t --geo-city "$G/spanprint-test-city.mmdb" \
    --geo-asn "$G/spanprint-test-asn.mmdb" >"$TMP/latest.jsonl"
r=$(flow_of "$TMP/latest.jsonl" 34.212.93.65)
check "server geo from the test database" grep -q '"server":{"ip":"34.212.93.65","port":443,"geo":{"country":"US","continent":"NA","city":"Boardman"},"asn":{"number":16509,"org":"AMAZON-02"}}' <<<"$r"
check "private client marked, not looked up" grep -q '"client":{"ip":"172.16.225.48","port":52936,"geo":{"scope":"private"}}' <<<"$r"
check "nDPI application and category" grep -q '"app":{"proto":"TLS.AmazonAWS","master":"TLS","app":"AmazonAWS","category":"Cloud"}' <<<"$r"
check "service rule from the shipped rules" grep -q '"service":{"name":"aws"' <<<"$r"
check "geo counters in the stats record" grep -Eq '"geo":\{"lookups":[1-9][0-9]*,"cache_hits":[1-9]' "$TMP/latest.jsonl"

# MaxMind's own test databases: 81.2.69.160 is GB/London in GeoIP2-City-Test, 1.128.0.0/11
# is AS1221 Telstra in GeoLite2-ASN-Test (see tests/data/geo/SOURCES.md).
"$SP" -r "$P/fp/llm_stream.pcap" --sensor-id t --geo-city "$G/GeoIP2-City-Test.mmdb" \
    --geo-asn "$G/GeoLite2-ASN-Test.mmdb" --window 3600 >"$TMP/stream.jsonl"
r=$(grep -m1 '"type":"flow"' "$TMP/stream.jsonl")
check "client ASN from MaxMind's ASN test database" grep -q '"client":{"ip":"1.128.0.10","port":[0-9]*,"asn":{"number":1221,"org":"Telstra Pty Ltd"}}' <<<"$r"
check "custom nDPI protocol names an LLM API" grep -q '"app":{"proto":"TLS.OpenAI"' <<<"$r"
check "LLM API service with its attributes" grep -q '"service":{"name":"openai-api","kind":"llm-api"' <<<"$r"
check "fingerprint carries the client ASN" grep -q '"client":{"id":"1.128.0.10","key":"ip","pseudonymised":false,"asn":1221' "$TMP/stream.jsonl"

# Documentation ranges are only looked up with --geo-lookup-all (test databases).
"$SP" -r "$P/fp/bulk_download.pcap" --sensor-id t --geo-city "$G/spanprint-test-city.mmdb" \
    --geo-lookup-all >"$TMP/bulk.jsonl"
check "--geo-lookup-all looks up documentation addresses" grep -q '"client":{"ip":"198.51.100.7","port":[0-9]*,"geo":{"country":"FR","continent":"EU","city":"Paris"' "$TMP/bulk.jsonl"
"$SP" -r "$P/fp/bulk_download.pcap" --sensor-id t --geo-city "$G/spanprint-test-city.mmdb" >"$TMP/bulk2.jsonl"
check "documentation addresses marked without lookup" grep -q '"client":{"ip":"198.51.100.7","port":[0-9]*,"geo":{"scope":"documentation"}' "$TMP/bulk2.jsonl"

# Flows nDPI cannot dissect from what it gets (tests/tools/make_opaque_pcap.py): TLS records
# picked up mid-stream and QUIC short headers get nDPI's port guess after one packet each,
# the same answer nDPI gives after all 12; the HTTP control flow is fed as usual (2).
"$SP" -r "$P/opaque_to_ndpi.pcap" --sensor-id t >"$TMP/opaque.jsonl"
check "mid-stream TLS records: nDPI's guess" grep -q '"server":{"ip":"192.0.2.10","port":443[,}].*"app":{"proto":"TLS","master":"TLS","category":"Web","guessed":true}' "$TMP/opaque.jsonl"
check "QUIC short headers: nDPI's answer (Unknown)" grep -q '"server":{"ip":"192.0.2.11","port":443[,}].*"app":{"proto":"Unknown"}' "$TMP/opaque.jsonl"
check "HTTP control flow named" grep -q '"server":{"ip":"192.0.2.12","port":8080[,}].*"app":{"proto":"HTTP"' "$TMP/opaque.jsonl"
check "one packet each to nDPI for the opaque flows, two for HTTP" grep -q '"pkts_fed":4,' "$TMP/opaque.jsonl"

# User errors.
"$SP" -r "$P/sll2_tls.pcap" --geo-city "$TMP/missing.mmdb" >"$TMP/o" 2>"$TMP/e"; rc=$?
check_eq "missing database: enrichment off, exit 0" 0 "$rc"
check_eq "missing database: one warning naming the file" 1 "$(grep -c 'missing.mmdb' "$TMP/e")"
"$SP" -r "$P/sll2_tls.pcap" --geo-city "$G/bad-data/$(ls "$G/bad-data" | head -1)" >"$TMP/o" 2>"$TMP/e"; rc=$?
check_eq "corrupt database: exit 2" 2 "$rc"
check "corrupt database: the file is named" grep -q 'bad-data/' "$TMP/e"
"$SP" -r "$P/sll2_tls.pcap" --geo-city "$G/GeoLite2-ASN-Test.mmdb" >"$TMP/o" 2>"$TMP/e"; rc=$?
check_eq "an ASN database given as the city database: exit 2" 2 "$rc"
printf 'sni example.com -> service=ok\nsni -> service=broken\n' >"$TMP/bad.rules"
"$SP" -r "$P/sll2_tls.pcap" --rules "$TMP/bad.rules" >"$TMP/o" 2>"$TMP/e"; rc=$?
check_eq "broken rules file: exit 2" 2 "$rc"
check "broken rules file: file:line in the message" grep -q 'bad.rules:2' "$TMP/e"
"$SP" -r "$P/sll2_tls.pcap" --ndpi-protos "$TMP/nope.txt" >"$TMP/o" 2>"$TMP/e"; rc=$?
check_eq "missing nDPI protocols file: exit 2" 2 "$rc"
check "missing nDPI protocols file: named" grep -q 'nope.txt' "$TMP/e"
"$SP" -r "$P/latest.pcapng" --no-ndpi --sensor-id t >"$TMP/nondpi.jsonl"
check "--no-ndpi: no app object" bash -c "! grep -q '\"app\":' '$TMP/nondpi.jsonl'"
"$SP" -r "$P/latest.pcapng" --no-tls --sensor-id t >"$TMP/notls.jsonl"
check "--no-tls: no flow has a tls object" bash -c "! grep '\"type\":\"flow\"' '$TMP/notls.jsonl' | grep -q '\"tls\":'"
finish
