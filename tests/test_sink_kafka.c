/* Tests for sensor/sink_kafka.c against librdkafka's in-process mock cluster: the error
 * paths a real broker does not produce on demand (request errors, a broker down at start,
 * messages in flight at close, a full spool, configuration errors). The real-broker tests
 * are tests/t_kafka.sh. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "sink.h"
#include "sink_kafka.h"

#define PRODUCE_API 0 /* Kafka protocol ApiKey of ProduceRequest */

struct fixture {
    rd_kafka_t *owner; /* the mock cluster needs a client instance to live in */
    rd_kafka_mock_cluster_t *mc;
    char brokers[256];
    char spool[64];
    struct sn_config cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char errstr[256];
    if (!f)
        return -1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    f->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!f->owner)
        return -1;
    f->mc = rd_kafka_mock_cluster_new(f->owner, 1);
    if (!f->mc)
        return -1;
    snprintf(f->brokers, sizeof(f->brokers), "%s", rd_kafka_mock_cluster_bootstraps(f->mc));
    snprintf(f->spool, sizeof(f->spool), "/tmp/test_sink_kafka.XXXXXX");
    if (!mkdtemp(f->spool))
        return -1;
    memset(&f->cfg, 0, sizeof(f->cfg));
    f->cfg.brokers = f->brokers;
    f->cfg.topic_prefix = "test";
    f->cfg.spool_dir = f->spool;
    f->cfg.spool_max_mb = 16;
    f->cfg.flush_timeout = 5;
    f->cfg.sensor_id = "sensor-1";
    /* Short timeouts so failures surface within a test. */
    f->cfg.kafka[f->cfg.n_kafka++] = (struct sn_kv){"message.timeout.ms", "1500", "-X"};
    f->cfg.kafka[f->cfg.n_kafka++] = (struct sn_kv){"statistics.interval.ms", "100", "-X"};
    f->cfg.kafka[f->cfg.n_kafka++] = (struct sn_kv){"log_level", "0", "-X"};
    sn_log_set_level(SN_LOG_ERROR);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->owner);
    DIR *d = opendir(f->spool);
    if (d) {
        struct dirent *de;
        char path[512];
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", f->spool, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(f->spool);
    free(f);
    return 0;
}

/* Record i: type cycles through flow/fingerprint/stats; key "10.0.0.<i%8>"; pad bytes. */
static int emit_n(struct sn_sink *s, uint64_t from, uint64_t to, size_t pad)
{
    static char data[64 << 10];
    for (uint64_t i = from; i < to; i++) {
        char key[32];
        snprintf(key, sizeof(key), "10.0.0.%" PRIu64, i % 8);
        int n = snprintf(data, sizeof(data), "{\"seq\":%" PRIu64 ",\"pad\":\"", i);
        if (pad > sizeof(data) - (size_t)n - 4)
            pad = sizeof(data) - (size_t)n - 4;
        memset(data + n, 'x', pad);
        n += (int)pad;
        n += snprintf(data + n, sizeof(data) - (size_t)n, "\"}\n");
        struct sn_record r = {.type = (enum sn_rec_type)(i % SN_REC_TYPE_MAX),
                              .key = key,
                              .keylen = strlen(key),
                              .data = data,
                              .len = (size_t)n,
                              .seq = i};
        int rc = s->ops->emit(s, &r);
        if (rc)
            return rc;
    }
    return 0;
}

static struct sn_sink_kafka_stats stats(const struct sn_sink *s)
{
    struct sn_sink_kafka_stats st;
    sn_sink_kafka_stats(s, &st);
    return st;
}

static void test_delivers(void **state)
{
    struct fixture *f = *state;
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    assert_int_equal(emit_n(&s, 0, 30, 100), 0);
    assert_int_equal(s.ops->flush(&s, 5000), 0);
    struct sn_sink_kafka_stats st = stats(&s);
    assert_int_equal(st.produced, 30);
    assert_int_equal(st.delivered, 30);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.spooled, 0);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.spool_bytes, 0);
    /* The statistics callback is parsed: txmsgs counts what went out. */
    for (int i = 0; i < 100 && stats(&s).txmsgs < 30; i++) {
        assert_int_equal(s.ops->flush(&s, 0), 0);
        usleep(20000);
    }
    st = stats(&s);
    assert_true(st.stats_cbs > 0);
    assert_int_equal(st.txmsgs, 30);
    assert_true(st.txmsg_bytes > 0);
    s.ops->close(&s);
    assert_null(s.priv);
}

/* The broker refuses every produce request until the messages time out: they go to the
 * spool, and are replayed once the broker accepts again. */
static void test_request_errors_spooled(void **state)
{
    struct fixture *f = *state;
    rd_kafka_resp_err_t errs[200];
    for (size_t i = 0; i < 200; i++)
        errs[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    rd_kafka_mock_push_request_errors_array(f->mc, PRODUCE_API, 200, errs);
    assert_int_equal(emit_n(&s, 0, 10, 50), 0);
    assert_int_equal(s.ops->flush(&s, 5000), 0);
    struct sn_sink_kafka_stats st = stats(&s);
    assert_int_equal(st.delivered, 0);
    assert_int_equal(st.failed, 10);
    assert_int_equal(st.spooled, 10);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.outages, 1);
    assert_true(st.spool_bytes > 0);

    /* While the outage lasts, new records queue behind the spooled ones. */
    assert_int_equal(emit_n(&s, 10, 12, 50), 0);
    assert_int_equal(stats(&s).spooled, 12);

    /* The broker accepts again: the next probe (every 2 s) finds it, the spool is replayed
     * in order before the new record, and everything is delivered. */
    rd_kafka_mock_clear_request_errors(f->mc, PRODUCE_API);
    sleep(2);
    assert_int_equal(emit_n(&s, 12, 13, 50), 0);
    assert_int_equal(s.ops->flush(&s, 5000), 0);
    st = stats(&s);
    assert_int_equal(st.replayed, 12);
    assert_int_equal(st.delivered, 13);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.spool_bytes, 0);
    s.ops->close(&s);
}

/* Started while the broker is down: records are spooled; --drain later delivers them. */
static void test_broker_down_then_drain(void **state)
{
    struct fixture *f = *state;
    rd_kafka_mock_broker_set_down(f->mc, 1);
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    assert_int_equal(emit_n(&s, 0, 25, 200), 0);
    struct sn_sink_kafka_stats st = stats(&s);
    assert_int_equal(st.produced, 0);
    assert_int_equal(st.spooled, 25);
    assert_int_equal(st.outages, 1);
    assert_int_equal(s.ops->flush(&s, 1000), 0); /* a normal exit: safe in the spool */
    s.ops->close(&s);

    /* --drain while still down: reports that the spool could not be emptied. */
    f->cfg.drain = true;
    f->cfg.flush_timeout = 1;
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    assert_int_equal(s.ops->flush(&s, 1000), -EAGAIN);
    assert_non_null(strstr(sn_err_last(), "remain in"));
    s.ops->close(&s);

    rd_kafka_mock_broker_set_up(f->mc, 1);
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    assert_int_equal(s.ops->flush(&s, 5000), 0);
    st = stats(&s);
    assert_int_equal(st.replayed, 25);
    assert_int_equal(st.delivered, 25);
    assert_int_equal(st.spool_bytes, 0);
    s.ops->close(&s);
}

/* Messages still unacknowledged at close are purged into the spool, then sent next time. */
static void test_close_spools_inflight(void **state)
{
    struct fixture *f = *state;
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    f->cfg.kafka[0].val = "10000";
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    rd_kafka_mock_broker_set_rtt(f->mc, 1, 4000);
    assert_int_equal(emit_n(&s, 0, 8, 100), 0);
    assert_int_equal(s.ops->flush(&s, 300), 0);
    assert_int_equal(stats(&s).delivered, 0);
    s.ops->close(&s);

    rd_kafka_mock_broker_set_rtt(f->mc, 1, 0);
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    assert_int_equal(s.ops->flush(&s, 8000), 0);
    struct sn_sink_kafka_stats st = stats(&s);
    assert_int_equal(st.replayed, 8);
    assert_true(st.delivered >= 8);
    assert_int_equal(st.spool_bytes, 0);
    s.ops->close(&s);
}

/* librdkafka's local queue stays full (slow broker, tiny queue): the sink retries for a
 * while, then spools instead of dropping; the spool is sent once the queue drains. */
static void test_queue_full_spools(void **state)
{
    struct fixture *f = *state;
    f->cfg.kafka[0].val = "20000";
    f->cfg.kafka[f->cfg.n_kafka++] = (struct sn_kv){"queue.buffering.max.messages", "4", "-X"};
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    rd_kafka_mock_broker_set_rtt(f->mc, 1, 3000);
    assert_int_equal(emit_n(&s, 0, 12, 30), 0);
    struct sn_sink_kafka_stats st = stats(&s);
    assert_true(st.retried > 0);
    assert_true(st.spooled > 0);
    assert_int_equal(st.dropped, 0);
    rd_kafka_mock_broker_set_rtt(f->mc, 1, 0);
    assert_int_equal(s.ops->flush(&s, 15000), 0);
    st = stats(&s);
    assert_int_equal(st.delivered, 12);
    assert_int_equal(st.spool_bytes, 0);
    s.ops->close(&s);
}

/* A full spool drops records, counts them and says so. */
static void test_spool_full(void **state)
{
    struct fixture *f = *state;
    rd_kafka_mock_broker_set_down(f->mc, 1);
    f->cfg.spool_max_mb = 1;
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    int rc = 0;
    uint64_t i;
    for (i = 0; i < 200 && rc == 0; i++)
        rc = emit_n(&s, i, i + 1, 20000);
    assert_int_equal(rc, -ENOSPC);
    assert_non_null(strstr(sn_err_last(), "spool full"));
    struct sn_sink_kafka_stats st = stats(&s);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.spooled, i - 1);
    assert_true(st.spooled > 40);
    assert_true(st.spool_bytes <= 1 << 20);
    s.ops->close(&s);
}

/* An idempotence failure librdkafka cannot recover from is fatal: the sink stops producing,
 * reports it, and the records are kept in the spool for the next start. */
static void test_fatal_error(void **state)
{
    struct fixture *f = *state;
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    rd_kafka_mock_push_request_errors(f->mc, PRODUCE_API, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(emit_n(&s, 0, 5, 40), 0);
    assert_int_equal(s.ops->flush(&s, 3000), -EPIPE);
    assert_non_null(strstr(sn_err_last(), "fatal"));
    /* Later records are spooled, and emit says the producer is dead. */
    assert_int_equal(emit_n(&s, 5, 6, 40), -EPIPE);
    /* Let acknowledgements of batches already in flight arrive. */
    for (int i = 0; i < 50; i++) {
        assert_int_equal(s.ops->flush(&s, 0), -EPIPE);
        usleep(20000);
    }
    struct sn_sink_kafka_stats st = stats(&s);
    assert_int_equal(st.dropped, 0);
    /* Batches to other partitions may have been acknowledged before the fatal error. */
    uint64_t delivered_before = st.delivered;
    assert_true(delivered_before < 5);
    s.ops->close(&s);

    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    assert_int_equal(s.ops->flush(&s, 5000), 0);
    st = stats(&s);
    assert_int_equal(st.replayed, 6 - delivered_before);
    assert_int_equal(st.delivered, 6 - delivered_before);
    assert_int_equal(st.spool_bytes, 0);
    s.ops->close(&s);
}

static void test_config_errors(void **state)
{
    struct fixture *f = *state;
    struct sn_sink s = {&sn_sink_kafka_ops, NULL};
    f->cfg.kafka[f->cfg.n_kafka++] = (struct sn_kv){"no.such.property", "1", "t.conf:3"};
    assert_int_equal(s.ops->open(&s, &f->cfg), -SN_ECONFIG);
    assert_non_null(strstr(sn_err_last(), "t.conf:3: no.such.property: "));
    s.ops->close(&s);
    assert_null(s.priv);

    f->cfg.kafka[f->cfg.n_kafka - 1] = (struct sn_kv){"acks", "bogus", "-X"};
    assert_int_equal(s.ops->open(&s, &f->cfg), -SN_ECONFIG);
    assert_non_null(strstr(sn_err_last(), "-X: acks: "));
    s.ops->close(&s);

    /* A conflict librdkafka finds only when the producer is created. */
    f->cfg.kafka[f->cfg.n_kafka - 1] = (struct sn_kv){"acks", "1", "-X"};
    assert_int_equal(s.ops->open(&s, &f->cfg), -SN_ECONFIG);
    assert_non_null(strstr(sn_err_last(), "idempotence"));
    s.ops->close(&s);

    /* User settings override the defaults. */
    f->cfg.kafka[f->cfg.n_kafka - 1] = (struct sn_kv){"compression.codec", "zstd", "-X"};
    assert_int_equal(s.ops->open(&s, &f->cfg), 0);
    assert_int_equal(emit_n(&s, 0, 3, 10), 0);
    assert_int_equal(s.ops->flush(&s, 5000), 0);
    assert_int_equal(stats(&s).delivered, 3);
    s.ops->close(&s);

    f->cfg.n_kafka--;
    f->cfg.brokers = NULL;
    assert_int_equal(s.ops->open(&s, &f->cfg), -SN_ECONFIG);
    s.ops->close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_errors_spooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_down_then_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_spools_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_spools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
