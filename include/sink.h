/* sink: where records go. A sink is one file filling in a const ops table; the core never
 * includes a sink's library headers.
 *
 * A record is one NDJSON line (with its trailing '\n') plus the metadata a keyed sink needs.
 * The record's bytes are borrowed for the emit call; a sink that keeps them copies them.
 * Thread safety: a sink is driven from one thread (the output thread).
 */
#ifndef SN_SINK_H
#define SN_SINK_H

#include <stddef.h>
#include <stdint.h>

struct sn_config;

enum sn_rec_type { SN_REC_FLOW = 0, SN_REC_FINGERPRINT, SN_REC_STATS, SN_REC_TYPE_MAX };

struct sn_record {
    enum sn_rec_type type;
    const char *key; /* partition key (client key); may be NULL */
    size_t keylen;
    const char *data; /* one JSON object followed by '\n' */
    size_t len;
    uint64_t seq; /* per-sensor sequence number, also in the JSON as "seq" */
};

struct sn_sink;

struct sn_sink_ops {
    const char *name; /* "file", "kafka" */
    /* Returns 0 or a negative code (SN_ERR has the detail). -SN_ECONFIG: user error. */
    int (*open)(struct sn_sink *s, const struct sn_config *cfg);
    /* Returns 0, or -SN_EFULL (back off and retry), or another negative code. */
    int (*emit)(struct sn_sink *s, const struct sn_record *r);
    int (*flush)(struct sn_sink *s, int timeout_ms);
    void (*close)(struct sn_sink *s); /* frees priv; safe after a failed open */
};

struct sn_sink {
    const struct sn_sink_ops *ops;
    void *priv;
};

/* The record type's name as written in "type": "flow", "fingerprint", "stats". */
const char *sn_rec_type_name(enum sn_rec_type t);

extern const struct sn_sink_ops sn_sink_file_ops;

#endif
