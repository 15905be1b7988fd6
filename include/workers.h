/* workers: N pipelines on N threads with deterministic, ordered output (--workers N, N >= 2).
 *
 * The calling thread (the reader) decodes each packet just enough to pick its worker and
 * puts it into that worker's single-producer/single-consumer ring (preallocated, published
 * in batches: no allocation and no lock per packet): a copy of the frame, or, for a classic
 * pcap file replayed from its mapping (sn_workers_packet_ref), only a small entry pointing
 * at the frame, which the worker reads in place (the reader then neither copies 785 MB of
 * frames for the mixed bench capture nor first-touches 16 MB rings). Each worker thread
 * runs its own struct sn_pipeline (own flow table, TLS, nDPI module, geo handle, rules)
 * writing records
 * to a private collector sink that queues them, tagged with the ordinal of the packet (or
 * tick) being processed. The reader merges the workers' queues in (ordinal, worker index,
 * production order) order into the real sink and numbers them ("seq" is written by the
 * merger). Records for ordinal k are released once every worker has processed past k.
 * The output therefore depends only on the input and N, not on thread timing.
 *
 * Sharding. Fingerprints are per client x service, so all flows of a client land on one
 * worker (else the same key would appear once per worker and window): the worker is a hash
 * of the flow's client address (masked to the client prefix when the client key is
 * "prefix"), and both directions and every packet of a flow agree on it. The client is the
 * one the flow table (flow.h) will name: when exactly one port is below 1024 it is the other
 * side (flow.h's rule for UDP and for TCP first seen mid-stream); otherwise (both ports
 * below 1024 or both not, or no ports: ICMP, non-first fragments) it is the SYN or first
 * sender, which only a flow table knows, so the reader keeps one for these flows only
 * (cfg.flow_max entries, as many as all workers' tables together, the workers' timeouts,
 * clock from all packets). Residual split: a TCP
 * connection opened from a port below 1024 to a port above it (active FTP data) is sharded
 * by the other side; its flow record is right, its fingerprint may be built on another
 * worker than the client's other flows to that service.
 *
 * Time. Each packet carries the reader's clock (highest packet time before it, packets of no
 * flow included); a worker moves its pipeline there before the packet (sn_pipeline_advance:
 * every flow past its timeout ends, then windows close). When a packet moves the clock past
 * a fingerprint window's end + grace, every other worker gets that time at once. A single
 * pipeline does the same at such a packet (sn_pipeline_packet: all timed-out flows end
 * before a close, not only the per-packet expiry budget), so flows that time out in a pause
 * count in the same windows whichever worker has them. Results: flow records equal one
 * pipeline's (as a multiset; "seq" and order differ); fingerprints equal too, except the
 * residual split above and a late flow end (its window already closed) in a worker that
 * has no window open: it goes to "the oldest open window", which depends on the other
 * clients the worker has. Measured: identical fingerprints on the 1.4 M-packet mixed bench
 * capture (101,747) and 2 of 28,701 records differing on the TLS one (one pause). Stats
 * counters are summed, except fingerprints.windows_closed, which counts each worker's
 * windows. Per-worker flow tables evict (table full) independently of a single one: a
 * worker holding most flows (one busy client or NAT address) evicts sooner than one
 * pipeline would.
 *
 * Start. Pipeline 0 is created by sn_workers_new on the calling thread, so every error the
 * configuration's files can cause (rules, nDPI protocols, geo databases, pseudonym key) is
 * reported there, before anything is read. The other workers create theirs on their own
 * threads, one after the other (nDPI's set-up is not thread safe; some 25 ms each), while
 * the reader already reads and worker 0 works; nothing is written before all exist.
 *
 * Costs: each worker has its own flow table of cfg.flow_max / N entries (the workers
 * together track as many flows as one pipeline; a worker whose table is full evicts its
 * own least recently active flow), nDPI module, geo handles and a packet ring (16 MB when
 * frames are copied, 1 MB of entries when they are read in place; the mapped file's pages
 * then stay in memory until the slowest worker is done with them, some 10 MB); the reader
 * has a flow table (cfg.flow_max entries) for the ambiguous flows. The reader reads
 * only the headers it needs for the common packet (Ethernet/VLAN, Linux cooked or raw IP,
 * IPv4/IPv6, TCP/UDP with one port below 1024) and decodes fully only the others.
 * Live capture: /metrics and SIGUSR1 show the workers' counters as of their last snapshots
 * (each worker copies its counters under its own lock at every tick, so they lag by up to a
 * second; the packet path takes no lock); SIGHUP reloads every worker; geo databases are not
 * re-checked on ticks (use SIGHUP).
 *
 * Ownership: borrows cfg and sink (they outlive the workers). Packet bytes are borrowed for
 * the call (copied) by sn_workers_packet, until sn_workers_input_end by
 * sn_workers_packet_ref. Thread safety: every sn_workers_* call comes from one thread, the
 * one that owns the sink.
 */
#ifndef SN_WORKERS_H
#define SN_WORKERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct sn_config;
struct sn_sink;
struct sn_workers;

#define SN_WORKERS_MAX 64u

/* Each worker's packet ring. Slack for uneven load: while one worker is busier (its ring
 * full, the reader waiting for it), the others run on what their rings hold, then sleep.
 * 16 MB (some 30000 packets of the benchmark mix) keeps that idle time small: with 4 MB the
 * workers slept a tenth of the time on the benchmark, 32 MB costs more memory for little
 * more. The minimum holds four frames of the largest snaplen (262144). */
#define SN_WORKERS_DEFAULT_RING_BYTES ((size_t)16 << 20)
#define SN_WORKERS_MIN_RING_BYTES ((size_t)1 << 20)
/* The ring when packets come by reference (sn_workers_packet_ref): 56-byte entries, some
 * 18700 packets (2 MB held 37000 and was no faster, with 20 MB more of the file mapped). */
#define SN_WORKERS_REF_RING_BYTES ((size_t)1 << 20)

/* Starts n (2..SN_WORKERS_MAX) worker threads. Returns NULL with SN_ERR set; *is_config as
 * for sn_pipeline_new. */
struct sn_workers *sn_workers_new(const struct sn_config *cfg, struct sn_sink *sink, unsigned n,
                                  bool *is_config);

/* Options (for tests: small rings make the reader wrap and wait). */
struct sn_workers_opts {
    size_t ring_bytes; /* 0: the default; else rounded up to a power of two within
                          [SN_WORKERS_MIN_RING_BYTES, SN_WORKERS_DEFAULT_RING_BYTES] */
    bool refs;         /* packets will come by reference: the default ring is
                          SN_WORKERS_REF_RING_BYTES (copied packets still fit, with less
                          slack) */
};

/* sn_workers_new with options; opts may be NULL (same as sn_workers_new). */
struct sn_workers *sn_workers_new_opts(const struct sn_config *cfg, struct sn_sink *sink,
                                       unsigned n, const struct sn_workers_opts *opts,
                                       bool *is_config);
/* Stops the threads (if sn_workers_finish was not called, without writing anything more) and
 * frees everything. NULL-safe. */
void sn_workers_free(struct sn_workers *w);

/* A packet of the current input; its bytes are copied (borrowed for the call). */
void sn_workers_packet(struct sn_workers *w, int dlt, const uint8_t *data, uint32_t caplen,
                       uint32_t wirelen, int64_t ts_us);
/* The same, without a copy: data must stay valid and unchanged until sn_workers_input_end
 * returns (which waits until the workers have processed every packet of the input). */
void sn_workers_packet_ref(struct sn_workers *w, int dlt, const uint8_t *data, uint32_t caplen,
                           uint32_t wirelen, int64_t ts_us);

/* The oldest packet byte given by sn_workers_packet_ref that a worker may still read
 * (packets of one input come in increasing address order, as from a mapped file); NULL when
 * the workers are done with every packet given so far. */
const uint8_t *sn_workers_oldest_ref(const struct sn_workers *w);

void sn_workers_input_begin(struct sn_workers *w, const char *path, int dlt);
void sn_workers_input_end(struct sn_workers *w, uint64_t packets, bool truncated);
/* As sn_pipeline_input_capture. */
void sn_workers_input_capture(struct sn_workers *w, uint64_t recv, uint64_t drop,
                              uint64_t ifdrop);

/* Live capture: advances every worker's clock (like sn_pipeline_tick) and writes what is
 * ready. */
void sn_workers_tick(struct sn_workers *w, int64_t now_us);
/* SIGHUP: every worker reloads its rules and geo databases between two packets. */
void sn_workers_reload(struct sn_workers *w);
void sn_workers_capture_stats(struct sn_workers *w, uint64_t recv, uint64_t drop,
                              uint64_t ifdrop);

/* End of input: workers end their flows and windows, all records are written in order, then
 * one stats record with the workers' counters summed. Joins the threads. Writes nothing if
 * a worker could not create its pipeline (sn_workers_failed). */
void sn_workers_finish(struct sn_workers *w);

/* After finish: 0, or the error of a worker that could not create its pipeline on its
 * thread (pipelines 1..n-1 are created there; pipeline 0 in sn_workers_new, which reports
 * every configuration error the files can cause): SN_ERR is set on the calling thread,
 * *is_config as for sn_pipeline_new; no record was written. */
int sn_workers_failed(const struct sn_workers *w, bool *is_config);

/* --stats lines (SIGUSR1), summed over the workers, plus each worker's packet count. While
 * the workers run, their counters are those of their last snapshots: each worker takes one
 * at every clock broadcast (each tick of a live capture, about once a second), reload and
 * 65536 packets, so they lag by up to that. */
void sn_workers_print_stats(struct sn_workers *w, FILE *out);
/* Prometheus text, summed over the workers (snapshots while they run, as above). */
void sn_workers_metrics(struct sn_workers *w, FILE *out);

/* Records that could not be written (real sink and workers); valid after finish. */
uint64_t sn_workers_sink_errors(const struct sn_workers *w);

/* The worker a decoded packet's flow goes to (exposed for tests): addresses/ports as in
 * struct sn_pkt; prefix4/prefix6: mask bits for the shard key (32/128 for whole addresses).
 * Symmetric: swapping the two ends gives the same worker. */
struct sn_addr;
unsigned sn_workers_shard(const struct sn_addr *src, uint16_t sport, const struct sn_addr *dst,
                          uint16_t dport, unsigned prefix4, unsigned prefix6, unsigned n);

/* The reader's shortcut (exposed for tests): for the common packet, the client address the
 * shard is taken from, read without a full decode (Ethernet II with at most two VLAN tags,
 * Linux cooked or raw IP; unfragmented IPv4 or IPv6 without extension headers; TCP or UDP
 * with exactly one port below 1024, UDP not on a tunnel port). Returns false for every
 * other frame (the full decode decides). Whenever sn_decode_packet accepts a frame this
 * returns true for, it names the same client as sn_workers_shard does for its ports. */
bool sn_workers_quick_client(int dlt, const uint8_t *data, uint32_t caplen,
                             struct sn_addr *client);

#endif
