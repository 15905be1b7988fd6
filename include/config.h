/* config: every option, from one table, loaded from the command line and a config file.
 *
 * The table (config.c) names each key, its type, default, range, the field it fills and its
 * help text; the command line's long options are the same keys (--flow-max 1000 and
 * `flow-max = 1000` in a file, with '-' and '_' equivalent). Command-line values win over
 * file values. Keys prefixed `kafka.` in a file, and -X key=value on the command line, are
 * kept as (key, value, origin) for librdkafka.
 * Ownership: sn_config_fini frees every string the config holds.
 */
#ifndef SN_CONFIG_H
#define SN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SN_CONFIG_MAX_INPUTS 64
#define SN_CONFIG_MAX_IFACES 16
#define SN_CONFIG_MAX_KV 128

/* A librdkafka property with where it came from, for error messages. */
struct sn_kv {
    char *key, *val;
    char *origin; /* "file.conf:12" or "-X" */
};

enum sn_client_key { SN_CLIENT_IP = 0, SN_CLIENT_PREFIX, SN_CLIENT_IP_JA4 };

struct sn_config {
    /* input */
    char *inputs[SN_CONFIG_MAX_INPUTS]; /* -r FILE, in order; "-" is stdin */
    unsigned n_inputs;
    char *ifaces[SN_CONFIG_MAX_IFACES]; /* -i IFACE (live capture; repeatable: one flow table
                                           for all, e.g. the two directions of a tap) */
    unsigned n_ifaces;
    char *filter; /* -f BPF */
    unsigned snaplen;
    unsigned buffer_mb;
    bool no_promisc;
    char *pid_file;
    char *user;    /* drop privileges to this user after opening the capture */
    char *metrics; /* Prometheus listen address, NULL: off */

    /* output */
    char *output; /* -o FILE; NULL means stdout */
    bool stats;   /* --stats: counters on stderr at exit */
    char *sensor_id;
    int64_t run_id; /* live capture: start time in microseconds, written as "run"; 0 in replay */
    unsigned log_level; /* 0 error .. 3 debug */

    /* flows */
    unsigned flow_max;
    unsigned flow_idle_timeout;   /* seconds */
    unsigned flow_active_timeout; /* seconds; interim records for long flows */
    bool flow_vlan_key;

    /* tls */
    unsigned tls_reasm_cap; /* bytes buffered per direction */
    unsigned tls_first_records;

    /* classification and enrichment */
    unsigned ndpi_max_pkts;
    bool no_ndpi;
    char *ndpi_protos; /* nDPI custom protocols file; default <rules dir>/ndpi-protos.txt */
    char *geo_city, *geo_asn, *rules;
    bool geo_lookup_all; /* also look up private/documentation addresses (tests) */

    /* fingerprints */
    unsigned window;       /* seconds */
    unsigned window_grace; /* seconds */
    char *client_key;      /* "ip", "prefix", "ip+ja4" */
    unsigned client_prefix4, client_prefix6;
    unsigned agg_max_entries;
    char *pseudonym_key; /* file holding the HMAC key */
    bool pseudonym_prefix_preserving;
    bool no_fingerprints;
    bool no_tls; /* no TLS parsing (benchmarks: the cost of the TLS stage) */
    bool no_flows;       /* fingerprints only */

    /* kafka */
    char *brokers;
    char *topic_prefix;
    char *spool_dir;
    unsigned spool_max_mb;
    unsigned flush_timeout; /* seconds */
    bool drain;
    struct sn_kv kafka[SN_CONFIG_MAX_KV];
    unsigned n_kafka;

    /* threads */
    unsigned workers;
};

/* Fills defaults. */
void sn_config_init(struct sn_config *cfg);
void sn_config_fini(struct sn_config *cfg);

/* Parses argv (and the -c file it names). Returns 0; 1 when --help/--version/--dump-config
 * printed what was asked (caller exits 0); or -SN_ECONFIG with one line in the error ring
 * naming the option or file:line (caller prints it and exits 2). */
int sn_config_parse_args(struct sn_config *cfg, int argc, char **argv)
    __attribute__((warn_unused_result));

/* Loads `key = value` lines from a file into cfg, without overriding keys marked as set
 * from the command line. Returns 0 or -SN_ECONFIG ("file:line: key: reason"). */
int sn_config_load_file(struct sn_config *cfg, const char *path)
    __attribute__((warn_unused_result));

/* The rules directory shipped with spanprint: <dir of the binary>/../rules when run from a
 * checkout (build/spanprint), else SN_DATADIR/rules. Writes into buf; NULL if none exists. */
const char *sn_config_default_rules(char *buf, size_t len);

void sn_config_usage(FILE *out);
void sn_config_dump(const struct sn_config *cfg, FILE *out);

#endif
