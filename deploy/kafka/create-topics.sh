#!/usr/bin/env bash
# Creates spanprint's Kafka topics. Idempotent: a topic that exists is left as it is.
#
#   deploy/kafka/create-topics.sh BOOTSTRAP [PREFIX]      (PREFIX = --topic-prefix, default spanprint)
#
# Environment:
#   PARTITIONS       partitions of PREFIX.flows and PREFIX.fingerprints (default 12); records
#                    are keyed by client, so one client's records stay in one partition
#   REPLICATION      replication factor (default 3)
#   MIN_ISR          min.insync.replicas (default 2 with REPLICATION >= 3, else 1); with the
#                    sensor's acks=all a write survives the loss of REPLICATION - MIN_ISR brokers
#   FLOWS_RETENTION_MS, FINGERPRINTS_RETENTION_MS, STATS_RETENTION_MS
#                    (defaults 7 days, 30 days, 7 days)
#   KAFKA_TOPICS     the kafka-topics command (default kafka-topics.sh from a Kafka install),
#                    e.g. "java -cp tests/kafka/lib/* org.apache.kafka.tools.TopicCommand"
#   COMMAND_CONFIG   a client properties file for TLS/SASL (passed as --command-config)
set -euo pipefail

BOOT=${1:?usage: $0 BOOTSTRAP [PREFIX]}
PREFIX=${2:-spanprint}
PARTITIONS=${PARTITIONS:-12}
REPLICATION=${REPLICATION:-3}
MIN_ISR=${MIN_ISR:-$((REPLICATION >= 3 ? 2 : 1))}
read -r -a KT <<<"${KAFKA_TOPICS:-kafka-topics.sh}"
extra=()
[ -n "${COMMAND_CONFIG:-}" ] && extra=(--command-config "$COMMAND_CONFIG")

create() { # NAME PARTITIONS RETENTION_MS
    "${KT[@]}" --bootstrap-server "$BOOT" "${extra[@]}" --create --if-not-exists \
        --topic "$PREFIX.$1" --partitions "$2" --replication-factor "$REPLICATION" \
        --config min.insync.replicas="$MIN_ISR" --config retention.ms="$3" \
        --config compression.type=producer
    echo "topic $PREFIX.$1: ok"
}

create flows "$PARTITIONS" "${FLOWS_RETENTION_MS:-604800000}"
create fingerprints "$PARTITIONS" "${FINGERPRINTS_RETENTION_MS:-2592000000}"
# Statistics records carry no key: one partition keeps them in order.
create stats 1 "${STATS_RETENTION_MS:-604800000}"
