/* pipeline: one worker's packet path: decode -> flow table -> TLS -> classification ->
 * enrichment -> rules -> fingerprints, and the flow/fingerprint/stats records it writes to
 * a sink. Replay feeds it packets in file order; time is packet time.
 *
 * Ownership: the pipeline borrows cfg and sink (they outlive it). Packet bytes are borrowed
 * for the call. Thread safety: one pipeline per thread.
 */
#ifndef SN_PIPELINE_H
#define SN_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct sn_config;
struct sn_sink;
struct sn_pipeline;

/* Returns NULL with SN_ERR set; *is_config tells whether the cause is the user's config
 * (a bad rules file, a corrupt database: exit 2). */
struct sn_pipeline *sn_pipeline_new(const struct sn_config *cfg, struct sn_sink *sink,
                                    bool *is_config);
void sn_pipeline_free(struct sn_pipeline *p);

/* Options for a pipeline that is one of several workers (workers.h). */
struct sn_pipeline_opts {
    bool no_seq; /* records (flows, fingerprints, stats) carry no "seq": the merger that
                    orders the workers' records numbers them */
};

/* sn_pipeline_new with options; opts may be NULL (same as sn_pipeline_new). */
struct sn_pipeline *sn_pipeline_new_opts(const struct sn_config *cfg, struct sn_sink *sink,
                                         const struct sn_pipeline_opts *opts, bool *is_config);

void sn_pipeline_packet(struct sn_pipeline *p, int dlt, const uint8_t *data, uint32_t caplen,
                        uint32_t wirelen, int64_t ts_us);

/* Per-input bookkeeping for the stats record. */
void sn_pipeline_input_begin(struct sn_pipeline *p, const char *path, int dlt);
void sn_pipeline_input_end(struct sn_pipeline *p, uint64_t packets, bool truncated);
/* The capture counters of the input last ended, when it is a live interface (each interface
 * gets its own in the stats record; sn_pipeline_capture_stats gives their sum). */
void sn_pipeline_input_capture(struct sn_pipeline *p, uint64_t recv, uint64_t drop,
                               uint64_t ifdrop);

/* End of input: ends all flows, closes all windows, writes the stats record. */
void sn_pipeline_finish(struct sn_pipeline *p);

/* End of input without the stats record: ends all flows and closes all windows (a worker;
 * the stats record of all workers comes from sn_pipeline_emit_stats_sum). */
void sn_pipeline_finish_records(struct sn_pipeline *p);

/* Writes one stats record for ps[0..n) through ps[0] (its sink, its "seq" setting): the
 * inputs and capture counters are ps[0]'s (call input_begin/_end/capture_stats on ps[0]),
 * every other counter is the sum over the n pipelines. No other thread may use them. */
void sn_pipeline_emit_stats_sum(struct sn_pipeline *const *ps, unsigned n);

/* Moves the pipeline's clock to now_us (packet time base) if that is later: ends the flows
 * whose timeout has passed (no budget) and closes fingerprint windows, as packets of other
 * workers would have done in a single pipeline. No geo reload check (unlike tick). */
void sn_pipeline_advance(struct sn_pipeline *p, int64_t now_us);

/* Human-readable counters ("name value" lines) for --stats. */
void sn_pipeline_print_stats(const struct sn_pipeline *p, FILE *out);
/* The same, summed over ps[0..n) (inputs from ps[0]). */
void sn_pipeline_print_stats_sum(struct sn_pipeline *const *ps, unsigned n, FILE *out);

/* Advances time without a packet (live capture when traffic is idle): flows and windows
 * time out by now_us, a wall-clock time in the packets' time base. */
void sn_pipeline_tick(struct sn_pipeline *p, int64_t now_us);

/* Reloads rules and geo databases (SIGHUP); on error keeps the old ones and logs why. */
void sn_pipeline_reload(struct sn_pipeline *p);

/* Live capture counters to report (kernel/interface drops). */
void sn_pipeline_capture_stats(struct sn_pipeline *p, uint64_t recv, uint64_t drop,
                               uint64_t ifdrop);

/* Writes Prometheus text exposition of every counter. */
void sn_pipeline_metrics(const struct sn_pipeline *p, FILE *out);
/* The same, summed over ps[0..n) (capture counters from ps[0]). */
void sn_pipeline_metrics_sum(struct sn_pipeline *const *ps, unsigned n, FILE *out);

/* A snapshot of a pipeline's counters (every counter of the stats record), for a thread
 * that does not run the pipeline: the workers' /metrics and SIGUSR1 while they run. Taken
 * by the pipeline's own thread (take), then read under the taker's own lock.
 * Ownership: new returns owned (NULL with SN_ERR set), free accepts NULL. */
struct sn_pipeline_counters;
struct sn_pipeline_counters *sn_pipeline_counters_new(void);
void sn_pipeline_counters_free(struct sn_pipeline_counters *c);
/* Overwrites c with p's counters now (capture drops included). From p's thread only. */
void sn_pipeline_counters_take(const struct sn_pipeline *p, struct sn_pipeline_counters *c);
void sn_pipeline_counters_reset(struct sn_pipeline_counters *c);
/* Adds c's counters into sum (capture drops excepted: see set_capture). */
void sn_pipeline_counters_add(struct sn_pipeline_counters *sum,
                              const struct sn_pipeline_counters *c);
/* The capture's drop counters, and sink errors counted outside the pipelines (the workers'
 * merger), into c. */
void sn_pipeline_counters_set_capture(struct sn_pipeline_counters *c, uint64_t drop,
                                      uint64_t ifdrop, uint64_t sink_errors);
/* As sn_pipeline_metrics and sn_pipeline_print_stats (without the input lines) do. */
void sn_pipeline_counters_metrics(const struct sn_pipeline_counters *c, FILE *out);
void sn_pipeline_counters_print(const struct sn_pipeline_counters *c, FILE *out);

/* Number of records the sink refused (write errors); non-zero makes the exit status 1. */
uint64_t sn_pipeline_sink_errors(const struct sn_pipeline *p);

#endif
