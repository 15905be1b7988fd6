/* sink_kafka: records to Apache Kafka, with an on-disk spool so a broker outage loses nothing.
 *
 * Topics: "<topic_prefix>.flows", "<topic_prefix>.fingerprints", "<topic_prefix>.stats".
 * Message key = record key (client key), partitioner murmur2_random (the Java client's), so
 * one client's records share a partition. Headers: schema "1", type ("flow", "fingerprint",
 * "stats"), sensor (sensor id).
 * Producer defaults (each overridable by -X / `kafka.` keys, which are applied after them):
 * enable.idempotence=true, acks=all, compression.codec=SN_SINK_KAFKA_DEFAULT_CODEC,
 * linger.ms=20, message.timeout.ms=30000, statistics.interval.ms=10000.
 *
 * Delivery: a record is handed to librdkafka, or, while the broker is unreachable or the spool
 * still holds older records, appended to the spool (cfg->spool_dir, capped at
 * cfg->spool_max_mb). A failed delivery report (timeout, broker error, purge at close) puts
 * the message in the spool. The spool is replayed in order at open and whenever the broker
 * answers again, before new records. Records are lost only when the spool is full (counted in
 * `dropped`, logged as errors, emit returns -SN_EFULL) or are undeliverable by nature (larger
 * than the broker accepts). See deploy/kafka/README.md for the exact guarantee.
 *
 * flush(s, timeout_ms > 0) waits until everything is acknowledged (or, with --drain, the spool
 * is empty), the broker is found down (records safe in the spool), or the timeout; with
 * --drain it returns -EAGAIN if the spool could not be emptied. flush(s, 0) is a tick that
 * never waits: it serves delivery reports, probes for a broker that was down and resumes the
 * replay. Call it about once a second when no records are emitted (idle live capture), since
 * emit does the same work otherwise.
 *
 * Thread safety: one thread drives the sink (emit/flush/close) and reads sn_sink_kafka_stats;
 * librdkafka callbacks run in it from rd_kafka_poll (log_cb excepted: thread-safe sn_log).
 */
#ifndef SN_SINK_KAFKA_H
#define SN_SINK_KAFKA_H

#include <stdint.h>

#include "sink.h"

#define SN_SINK_KAFKA_DEFAULT_CODEC "zstd"
#define SN_SINK_KAFKA_DEFAULT_LINGER_MS "20"
#define SN_SINK_KAFKA_DEFAULT_MSG_TIMEOUT_MS "30000"
#define SN_SINK_KAFKA_DEFAULT_STATS_MS "10000"
/* Replayed records not yet acknowledged, at most (bounds memory during a replay). */
#define SN_SINK_KAFKA_REPLAY_WINDOW 10000u

struct sn_sink_kafka_stats {
    uint64_t produced;  /* messages handed to librdkafka (new and replayed) */
    uint64_t delivered; /* acknowledged by the broker */
    uint64_t failed;    /* delivery reports with an error (then spooled) */
    uint64_t retried;   /* produce calls retried after the local queue was full */
    uint64_t spooled;   /* records written to the spool */
    uint64_t replayed;  /* records produced from the spool */
    uint64_t dropped;   /* records lost: spool full, or undeliverable */
    uint64_t outages;   /* times the broker became unreachable */
    uint64_t stats_cbs; /* librdkafka statistics callbacks */
    /* From the last librdkafka statistics JSON: */
    uint64_t txmsgs, txmsg_bytes, msg_cnt;
    uint64_t spool_bytes; /* bytes in the spool now */
};

extern const struct sn_sink_ops sn_sink_kafka_ops;

/* Counters of an open kafka sink (zeros if s is not one). */
void sn_sink_kafka_stats(const struct sn_sink *s, struct sn_sink_kafka_stats *out);

#endif
