#define SN_LOG_MOD "kafka"
/* The Kafka sink: librdkafka producer plus the on-disk spool (spool.c) for what it cannot
 * deliver. The only file that includes librdkafka's header. */
#include "sink_kafka.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "spool.h"

/* While the broker is unreachable, ask it for metadata this often (and wait this long). */
#define PROBE_EVERY_MS 2000
#define PROBE_WAIT_MS 200
#define OPEN_PROBE_WAIT_MS 3000
/* A full local queue: poll and retry this many times, QFULL_WAIT_MS each, then spool. */
#define QFULL_TRIES 50
#define QFULL_WAIT_MS 20

struct kafka_priv {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topics[SN_REC_TYPE_MAX];
    struct sn_spool *spool;
    char *spool_dir;
    char sensor[128];
    int flush_timeout_ms;
    bool drain;
    bool outage;  /* broker unreachable: new records go to the spool, replay paused */
    bool fatal;   /* librdkafka raised a fatal error: the producer is unusable */
    bool flushed; /* flush ran (close need not wait again) */
    int64_t next_probe_ms;
    char fatal_msg[256];
    /* A spooled record the local queue had no room for: sent first when there is room. */
    struct {
        bool has;
        struct sn_record rec;
        uint64_t seg;
        char *buf;
        size_t cap;
    } held;
    struct sn_sink_kafka_stats st;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- librdkafka callbacks (served by rd_kafka_poll in the sink's thread, except log_cb) ---- */

static void enter_outage(struct kafka_priv *k, const char *why)
{
    if (k->outage)
        return;
    k->outage = true;
    k->st.outages++;
    k->next_probe_ms = now_ms() + PROBE_EVERY_MS;
    sn_warn("broker unreachable (%s): records go to the spool %s until it answers", why,
            k->spool_dir);
}

static enum sn_rec_type type_of(const struct kafka_priv *k, const rd_kafka_topic_t *rkt)
{
    for (int t = 0; t < SN_REC_TYPE_MAX; t++)
        if (k->topics[t] == rkt)
            return (enum sn_rec_type)t;
    return SN_REC_FLOW;
}

/* Errors that resending cannot fix: the record is dropped (and counted) rather than
 * replayed forever. */
static bool undeliverable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
        return true;
    default:
        return false;
    }
}

static void count_drop(struct kafka_priv *k, const char *why)
{
    k->st.dropped++;
    sn_log_ratelimited(SN_LOG_ERROR, "record DROPPED (%s); %" PRIu64 " dropped so far", why,
                       k->st.dropped);
}

/* Appends r to the spool. Returns 0, or -ENOSPC when the record is lost (counted, logged). */
static int spool_record(struct kafka_priv *k, const struct sn_record *r)
{
    int rc = sn_spool_append(k->spool, r);
    if (rc == 0) {
        k->st.spooled++;
        return 0;
    }
    count_drop(k, sn_err_last());
    return SN_ERR(ENOSPC, "spool %s: record dropped: %s", k->spool_dir,
                  rc == -SN_EFULL ? "spool full" : sn_err_str(rc));
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct kafka_priv *k = opaque;
    uint64_t seg = (uint64_t)(uintptr_t)m->_private; /* spool segment, 0 for a new record */
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        k->st.delivered++;
        if (seg)
            sn_spool_settle(k->spool, seg);
        if (k->outage) {
            k->outage = false;
            sn_info("broker answers again; replaying the spool");
        }
        return;
    }
    k->st.failed++;
    if (undeliverable(m->err)) {
        count_drop(k, rd_kafka_err2str(m->err));
        if (seg)
            sn_spool_settle(k->spool, seg);
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT &&
        m->err != RD_KAFKA_RESP_ERR__FATAL)
        enter_outage(k, rd_kafka_err2str(m->err));
    struct sn_record r = {
        .type = type_of(k, m->rkt),
        .key = m->key,
        .keylen = m->key_len,
        .data = m->payload,
        .len = m->len,
        .seq = 0,
    };
    if (sn_spool_append(k->spool, &r) == 0) {
        k->st.spooled++;
        if (seg)
            sn_spool_settle(k->spool, seg);
    } else if (seg) {
        /* Its original stays in the spool unsettled: replayed at the next start. */
        sn_log_ratelimited(SN_LOG_WARN, "could not re-spool a replayed record (%s); it stays "
                           "in its segment for the next start", sn_err_last());
    } else {
        count_drop(k, sn_err_last());
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_priv *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[200];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        if (!k->fatal)
            sn_error("fatal error, producer stopped: %s: %s", rd_kafka_err2name(orig), buf);
        k->fatal = true;
        snprintf(k->fatal_msg, sizeof(k->fatal_msg), "%s: %s", rd_kafka_err2name(orig), buf);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        enter_outage(k, reason);
    else if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
        sn_debug("%s", reason); /* log_cb already said it */
    else
        sn_log_ratelimited(SN_LOG_WARN, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                           reason);
}

/* Called from librdkafka's threads; sn_log is thread-safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* syslog levels. librdkafka reports a refused connection at 3 (LOG_ERR); the sink
     * handles that as an outage, so it is a warning here. */
    enum sn_log_level lvl = level <= 2 ? SN_LOG_ERROR : level <= 4 ? SN_LOG_WARN
                          : level <= 6 ? SN_LOG_INFO : SN_LOG_DEBUG;
    if (lvl <= SN_LOG_WARN)
        sn_log_ratelimited(lvl, "%s: %s", fac, buf);
    else
        sn_log(lvl, "%s: %s", fac, buf);
}

/* The value of a top-level integer field ("key":123) in librdkafka's statistics JSON: a scan
 * that tracks nesting depth and strings, so the per-broker and per-partition fields of the
 * same name are skipped. */
static bool stats_u64(const char *json, size_t len, const char *key, uint64_t *out)
{
    char pat[64];
    int n = snprintf(pat, sizeof(pat), "\"%s\":", key);
    if (n <= 0 || (size_t)n >= sizeof(pat))
        return false;
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '"') {
            if (depth == 1 && len - i >= (size_t)n && memcmp(json + i, pat, (size_t)n) == 0) {
                uint64_t v = 0;
                bool any = false;
                for (i += (size_t)n; i < len && json[i] >= '0' && json[i] <= '9'; i++) {
                    if (v > UINT64_MAX / 10)
                        return false;
                    v = v * 10 + (uint64_t)(json[i] - '0');
                    any = true;
                }
                if (any)
                    *out = v;
                return any;
            }
            in_str = true;
        }
    }
    return false;
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    struct kafka_priv *k = opaque;
    k->st.stats_cbs++;
    stats_u64(json, len, "txmsgs", &k->st.txmsgs);
    stats_u64(json, len, "txmsg_bytes", &k->st.txmsg_bytes);
    stats_u64(json, len, "msg_cnt", &k->st.msg_cnt);
    return 0; /* librdkafka frees json */
}

/* ---- producing ---- */

/* Hands r to librdkafka (copied). seg: the spool segment r was read from, or 0. A full local
 * queue is polled and retried up to max_tries times. Returns 0; -SN_EFULL (queue still full),
 * -EMSGSIZE (never deliverable), -EPIPE (fatal), or -EIO. */
static int produce(struct kafka_priv *k, const struct sn_record *r, uint64_t seg, int max_tries)
{
    const char *tname = sn_rec_type_name(r->type);
    for (int tries = 0;; tries++) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(k->topics[r->type]),
            RD_KAFKA_V_KEY(r->key, r->key ? r->keylen : 0),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)r->data, r->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADER("schema", "1", 1),
            RD_KAFKA_V_HEADER("type", tname, -1), RD_KAFKA_V_HEADER("sensor", k->sensor, -1),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seg), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->st.produced++;
            return 0;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (tries >= max_tries)
                return SN_ERR(SN_EFULL, "local queue full for %d ms", tries * QFULL_WAIT_MS);
            k->st.retried++;
            rd_kafka_poll(k->rk, QFULL_WAIT_MS);
            continue;
        }
        if (err == RD_KAFKA_RESP_ERR__FATAL)
            return SN_ERR(EPIPE, "fatal: %s", k->fatal_msg);
        if (undeliverable(err))
            return SN_ERR(EMSGSIZE, "%s record of %zu bytes: %s", tname, r->len,
                          rd_kafka_err2str(err));
        return SN_ERR(EIO, "produce: %s", rd_kafka_err2str(err));
    }
}

static bool hold(struct kafka_priv *k, const struct sn_spool_entry *e)
{
    size_t need = e->rec.keylen + e->rec.len + 1;
    if (need > k->held.cap) {
        char *b = realloc(k->held.buf, need);
        if (!b)
            return false;
        k->held.buf = b;
        k->held.cap = need;
    }
    memcpy(k->held.buf, e->rec.data, e->rec.len);
    if (e->rec.key)
        memcpy(k->held.buf + e->rec.len, e->rec.key, e->rec.keylen);
    k->held.rec = e->rec;
    k->held.rec.data = k->held.buf;
    k->held.rec.key = e->rec.key ? k->held.buf + e->rec.len : NULL;
    k->held.seg = e->seg;
    k->held.has = true;
    return true;
}

/* Produces one spooled record without waiting. Returns true to go on with the next. */
static bool replay_one(struct kafka_priv *k, const struct sn_record *r, uint64_t seg)
{
    int rc = produce(k, r, seg, 0);
    if (rc == 0) {
        k->st.replayed++;
        return true;
    }
    if (rc == -EMSGSIZE) {
        count_drop(k, sn_err_last());
        sn_spool_settle(k->spool, seg);
        return true;
    }
    return false; /* queue full or fatal: try again later */
}

/* Moves spooled records, oldest first, into librdkafka while the broker answers and the local
 * queue has room. */
static void pump(struct kafka_priv *k)
{
    if (k->outage || k->fatal)
        return;
    if (k->held.has) {
        if (!replay_one(k, &k->held.rec, k->held.seg))
            return;
        k->held.has = false;
    }
    while (!k->outage && !k->fatal && sn_spool_unsettled(k->spool) < SN_SINK_KAFKA_REPLAY_WINDOW) {
        struct sn_spool_entry e;
        int rc = sn_spool_next(k->spool, &e);
        if (rc == -ENODATA)
            return;
        if (rc < 0) {
            sn_log_ratelimited(SN_LOG_ERROR, "%s", sn_err_last());
            return;
        }
        if (replay_one(k, &e.rec, e.seg))
            continue;
        if (!hold(k, &e)) {
            /* No memory to keep it: it goes back to the spool's end. */
            if (sn_spool_append(k->spool, &e.rec) == 0) {
                k->st.spooled++;
                sn_spool_settle(k->spool, e.seg);
            }
        }
        return;
    }
}

/* The held record back into the spool (at close), so its segment can be settled. */
static void unhold(struct kafka_priv *k)
{
    if (!k->held.has)
        return;
    if (sn_spool_append(k->spool, &k->held.rec) == 0) {
        k->st.spooled++;
        sn_spool_settle(k->spool, k->held.seg);
    }
    k->held.has = false;
}

/* While in an outage, asks the broker for metadata (at most every PROBE_EVERY_MS). */
static void maybe_probe(struct kafka_priv *k, int wait_ms, int every_ms)
{
    if (!k->outage || k->fatal)
        return;
    int64_t now = now_ms();
    if (now < k->next_probe_ms)
        return;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(k->rk, 0, k->topics[SN_REC_FLOW], &md, wait_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        k->outage = false;
        sn_info("broker answers again; replaying %" PRIu64 " spooled bytes",
                sn_spool_bytes(k->spool));
        return;
    }
    k->next_probe_ms = now_ms() + every_ms;
}

/* ---- sink ops ---- */

static int kafka_open(struct sn_sink *s, const struct sn_config *cfg)
{
    char errstr[512];
    struct kafka_priv *k = calloc(1, sizeof(*k));
    s->priv = k;
    if (!k)
        return SN_ERR(ENOMEM, "out of memory");
    if (!cfg->brokers || !*cfg->brokers)
        return SN_ERR(SN_ECONFIG, "--brokers: no broker given");
    if (!cfg->spool_dir || !*cfg->spool_dir)
        return SN_ERR(SN_ECONFIG, "--spool-dir: a spool directory is required");
    const char *prefix = cfg->topic_prefix && *cfg->topic_prefix ? cfg->topic_prefix : "spanprint";
    if (cfg->sensor_id)
        snprintf(k->sensor, sizeof(k->sensor), "%s", cfg->sensor_id);
    else if (gethostname(k->sensor, sizeof(k->sensor) - 1) != 0)
        snprintf(k->sensor, sizeof(k->sensor), "spanprint");
    k->drain = cfg->drain;
    k->flush_timeout_ms = (int)cfg->flush_timeout * 1000;
    if (!(k->spool_dir = strdup(cfg->spool_dir)))
        return SN_ERR(ENOMEM, "out of memory");

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf)
        return SN_ERR(ENOMEM, "out of memory");
    /* Defaults for no loss and the Java client's partitioning; -X / kafka.* come after. */
    static const char *const defaults[][2] = {
        {"client.id", "spanprint"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.codec", SN_SINK_KAFKA_DEFAULT_CODEC},
        {"linger.ms", SN_SINK_KAFKA_DEFAULT_LINGER_MS},
        {"partitioner", "murmur2_random"},
        {"message.timeout.ms", SN_SINK_KAFKA_DEFAULT_MSG_TIMEOUT_MS},
        {"statistics.interval.ms", SN_SINK_KAFKA_DEFAULT_STATS_MS},
    };
    if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return SN_ERR(SN_ECONFIG, "--brokers: %s", errstr);
    }
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return SN_ERR(EINVAL, "default %s: %s", defaults[i][0], errstr);
        }
    }
    for (unsigned i = 0; i < cfg->n_kafka; i++) {
        const struct sn_kv *kv = &cfg->kafka[i];
        if (rd_kafka_conf_set(conf, kv->key, kv->val, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return SN_ERR(SN_ECONFIG, "%s: %s: %s", kv->origin ? kv->origin : "-X", kv->key,
                          errstr);
        }
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!k->rk) {
        rd_kafka_conf_destroy(conf);
        return SN_ERR(SN_ECONFIG, "%s", errstr);
    }
    static const char *const suffix[SN_REC_TYPE_MAX] = {"flows", "fingerprints", "stats"};
    for (int t = 0; t < SN_REC_TYPE_MAX; t++) {
        char name[256];
        snprintf(name, sizeof(name), "%s.%s", prefix, suffix[t]);
        k->topics[t] = rd_kafka_topic_new(k->rk, name, NULL);
        if (!k->topics[t])
            return SN_ERR(SN_ECONFIG, "topic %s: %s", name,
                          rd_kafka_err2str(rd_kafka_last_error()));
    }
    k->spool = sn_spool_open(cfg->spool_dir, (uint64_t)cfg->spool_max_mb << 20);
    if (!k->spool) /* not writable, not a directory, or in use: the user must fix it */
        return SN_ERR(SN_ECONFIG, "--spool-dir: %s", sn_err_last());
    uint64_t held = sn_spool_bytes(k->spool);
    if (held)
        sn_info("spool %s holds %" PRIu64 " bytes from an earlier run; sending them first",
                k->spool_dir, held);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(k->rk, 0, k->topics[SN_REC_FLOW], &md, OPEN_PROBE_WAIT_MS);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* A missing topic on a broker that does not create topics fails every delivery
         * after message.timeout.ms: say so now. */
        if (md->topic_cnt == 1 && md->topics[0].err)
            sn_warn("topic %s not available yet (%s): a cluster that creates topics on use "
                    "creates it now; otherwise create it (deploy/kafka/create-topics.sh), "
                    "records are spooled meanwhile",
                    md->topics[0].topic, rd_kafka_err2str(md->topics[0].err));
        rd_kafka_metadata_destroy(md);
        pump(k);
    } else {
        enter_outage(k, rd_kafka_err2str(err));
    }
    return 0;
}

static int kafka_emit(struct sn_sink *s, const struct sn_record *r)
{
    struct kafka_priv *k = s->priv;
    if (!k || !k->rk || !k->spool)
        return SN_ERR(EINVAL, "kafka sink is not open");
    if ((unsigned)r->type >= SN_REC_TYPE_MAX)
        return SN_ERR(EINVAL, "record type %d", (int)r->type);
    rd_kafka_poll(k->rk, 0);
    if (k->fatal) {
        int rc = spool_record(k, r);
        return rc ? rc : SN_ERR(EPIPE, "fatal: %s (record spooled)", k->fatal_msg);
    }
    maybe_probe(k, PROBE_WAIT_MS, PROBE_EVERY_MS);
    pump(k);
    /* Older records still in the spool go first: new ones queue behind them. */
    if (k->outage || k->held.has || !sn_spool_drained(k->spool))
        return spool_record(k, r);
    int rc = produce(k, r, 0, QFULL_TRIES);
    if (rc == 0)
        return 0;
    if (rc == -EMSGSIZE) {
        count_drop(k, sn_err_last());
        return rc;
    }
    int rc2 = spool_record(k, r);
    if (rc == -EPIPE)
        return rc2 ? rc2 : rc;
    return rc2;
}

static bool all_sent(struct kafka_priv *k)
{
    return rd_kafka_outq_len(k->rk) == 0 && !k->held.has && sn_spool_drained(k->spool) &&
           sn_spool_unsettled(k->spool) == 0;
}

static int kafka_flush(struct sn_sink *s, int timeout_ms)
{
    struct kafka_priv *k = s->priv;
    if (!k || !k->rk || !k->spool)
        return SN_ERR(EINVAL, "kafka sink is not open");
    if (timeout_ms <= 0) {
        /* A tick: serve delivery reports, look for the broker, resume replay; no waiting. */
        rd_kafka_poll(k->rk, 0);
        if (k->fatal)
            return SN_ERR(EPIPE, "fatal: %s", k->fatal_msg);
        maybe_probe(k, PROBE_WAIT_MS, PROBE_EVERY_MS);
        pump(k);
        return 0;
    }
    k->flushed = true;
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        rd_kafka_poll(k->rk, 20);
        if (k->fatal)
            break;
        /* --drain keeps asking for the broker until the deadline; a normal exit does not
         * wait for one that is down (its records are safe in the spool). */
        maybe_probe(k, PROBE_WAIT_MS, k->drain ? 500 : PROBE_EVERY_MS);
        pump(k);
        if (all_sent(k))
            break;
        if (k->outage && !k->drain && rd_kafka_outq_len(k->rk) == 0)
            break;
        if (now_ms() >= deadline)
            break;
    }
    if (k->fatal)
        return SN_ERR(EPIPE, "fatal: %s", k->fatal_msg);
    int outq = rd_kafka_outq_len(k->rk);
    if (outq > 0)
        sn_warn("%d messages still unacknowledged after %d ms; they go to the spool", outq,
                timeout_ms);
    if (!all_sent(k) && sn_spool_bytes(k->spool))
        sn_warn("spool %s holds %" PRIu64 " bytes; they are sent on the next start or with "
                "--drain", k->spool_dir, sn_spool_bytes(k->spool));
    if (k->drain && !all_sent(k))
        return SN_ERR(EAGAIN, "--drain: broker unreachable; %" PRIu64 " bytes remain in %s",
                      sn_spool_bytes(k->spool), k->spool_dir);
    return 0;
}

static void kafka_close(struct sn_sink *s)
{
    struct kafka_priv *k = s->priv;
    if (!k)
        return;
    if (k->rk) {
        if (!k->flushed && k->spool && !k->fatal)
            (void)kafka_flush(s, k->flush_timeout_ms);
        /* What is still queued or in flight goes to the spool via its delivery report
         * (__PURGE_QUEUE / __PURGE_INFLIGHT). An in-flight message the broker did store is
         * then sent again at the next start: a duplicate, never a loss. */
        if (k->spool)
            unhold(k);
        if (k->spool && rd_kafka_outq_len(k->rk) > 0) {
            rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(k->rk, 2000);
        }
        for (int t = 0; t < SN_REC_TYPE_MAX; t++)
            if (k->topics[t])
                rd_kafka_topic_destroy(k->topics[t]);
        rd_kafka_destroy(k->rk);
        k->rk = NULL;
        struct sn_sink_kafka_stats *st = &k->st;
        sn_info("produced %" PRIu64 ", delivered %" PRIu64 ", failed %" PRIu64 ", spooled %" PRIu64
                ", replayed %" PRIu64 ", dropped %" PRIu64 "; spool holds %" PRIu64 " bytes",
                st->produced, st->delivered, st->failed, st->spooled, st->replayed, st->dropped,
                k->spool ? sn_spool_bytes(k->spool) : 0);
        if (st->dropped)
            sn_error("%" PRIu64 " records were DROPPED (spool full or undeliverable)",
                     st->dropped);
    }
    sn_spool_close(k->spool);
    free(k->held.buf);
    free(k->spool_dir);
    free(k);
    s->priv = NULL;
}

void sn_sink_kafka_stats(const struct sn_sink *s, struct sn_sink_kafka_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!s || s->ops != &sn_sink_kafka_ops || !s->priv)
        return;
    const struct kafka_priv *k = s->priv;
    *out = k->st;
    out->spool_bytes = k->spool ? sn_spool_bytes(k->spool) : 0;
}

const struct sn_sink_ops sn_sink_kafka_ops = {
    .name = "kafka",
    .open = kafka_open,
    .emit = kafka_emit,
    .flush = kafka_flush,
    .close = kafka_close,
};
