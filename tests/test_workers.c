/* Unit tests for workers: the shard function (symmetric, by the likely client, by prefix),
 * and N pipelines on N threads against one pipeline on the generated fingerprint captures
 * (tests/pcap/fp, made by tests/tools/gen_traffic.py) and v6.pcap: same records as a
 * multiset once "seq" is taken out, "seq" 1..n in output order, one stats record last,
 * byte-identical output across runs, and clean teardown without finish. Run from the
 * repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "capture.h"
#include "config.h"
#include "decode.h"
#include "err.h"
#include "pipeline.h"
#include "sink.h"
#include "workers.h"

#define FP_DIR "tests/pcap/fp/"

/* ---------- shard ---------- */

static struct sn_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct sn_addr x = {.family = 4};
    x.a[0] = a;
    x.a[1] = b;
    x.a[2] = c;
    x.a[3] = d;
    return x;
}

static void test_shard_symmetric(void **state)
{
    (void)state;
    uint32_t r = 12345;
    for (int i = 0; i < 5000; i++) {
        r = r * 1103515245u + 12345u;
        struct sn_addr s = v4(10, (uint8_t)(r >> 8), (uint8_t)(r >> 16), (uint8_t)(r >> 24));
        r = r * 1103515245u + 12345u;
        struct sn_addr d = v4(192, 0, (uint8_t)(r >> 8), (uint8_t)(r >> 16));
        uint16_t sp = (uint16_t)(r >> 3), dp = (uint16_t)(i % 3 ? r >> 17 : sp);
        for (unsigned n = 2; n <= 8; n++) {
            unsigned a = sn_workers_shard(&s, sp, &d, dp, 32, 128, n);
            unsigned b = sn_workers_shard(&d, dp, &s, sp, 32, 128, n);
            assert_int_equal(a, b);
            assert_true(a < n);
        }
    }
}

/* A client's flows to any server (client port above the server's) land on one worker. */
static void test_shard_by_client(void **state)
{
    (void)state;
    struct sn_addr c = v4(10, 1, 2, 3);
    unsigned want = sn_workers_shard(&c, 50000, &(struct sn_addr){0}, 0, 32, 128, 4);
    unsigned seen[4] = {0};
    for (unsigned i = 0; i < 200; i++) {
        struct sn_addr s = v4(203, 0, (uint8_t)i, (uint8_t)(i * 7));
        uint16_t sport = (uint16_t)(1024 + i * 97), dport = i % 2 ? 443 : 53;
        assert_int_equal(sn_workers_shard(&c, sport, &s, dport, 32, 128, 4), want);
        assert_int_equal(sn_workers_shard(&s, dport, &c, sport, 32, 128, 4), want);
        /* and different clients spread over the workers */
        struct sn_addr c2 = v4(10, 9, (uint8_t)i, (uint8_t)(i ^ 0x5a));
        seen[sn_workers_shard(&c2, sport, &s, dport, 32, 128, 4)]++;
    }
    for (unsigned w = 0; w < 4; w++)
        assert_true(seen[w] > 20);
    /* equal ports: the lower address decides */
    struct sn_addr lo = v4(10, 0, 0, 1), hi = v4(10, 0, 0, 2), other = v4(1, 1, 1, 1);
    assert_int_equal(sn_workers_shard(&lo, 500, &hi, 500, 32, 128, 7),
                     sn_workers_shard(&lo, 2000, &other, 80, 32, 128, 7));
    /* n = 1: always 0 */
    assert_int_equal(sn_workers_shard(&lo, 500, &hi, 600, 32, 128, 1), 0);
}

/* With a client prefix, every address of the prefix goes to one worker. */
static void test_shard_prefix(void **state)
{
    (void)state;
    struct sn_addr s = v4(198, 51, 100, 7);
    struct sn_addr c0 = v4(10, 7, 7, 0);
    unsigned want = sn_workers_shard(&c0, 40000, &s, 443, 24, 56, 5);
    unsigned spread[5] = {0};
    for (unsigned i = 0; i < 256; i++) {
        struct sn_addr c = v4(10, 7, 7, (uint8_t)i);
        assert_int_equal(sn_workers_shard(&c, 40000, &s, 443, 24, 56, 5), want);
        spread[sn_workers_shard(&c, 40000, &s, 443, 32, 128, 5)]++;
    }
    for (unsigned w = 0; w < 5; w++)
        assert_true(spread[w] > 20); /* without the prefix they spread */
    struct sn_addr a6 = {.family = 6}, b6 = {.family = 6};
    a6.a[0] = b6.a[0] = 0x20;
    a6.a[1] = b6.a[1] = 0x01;
    a6.a[6] = 0x11;
    b6.a[6] = 0x11;
    a6.a[15] = 1;
    b6.a[15] = 2;
    b6.a[7] = 0x80; /* same /56, different /64 */
    assert_int_equal(sn_workers_shard(&a6, 40000, &s, 443, 24, 56, 9),
                     sn_workers_shard(&b6, 40000, &s, 443, 24, 56, 9));
}

/* ---------- the reader's shortcut ---------- */

/* What the shortcut must agree with: when the full decode accepts the frame, the client
 * sn_workers_shard takes from its addresses and ports (the side with the higher port). */
static void expect_quick_agrees(int dlt, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                                unsigned *quick, unsigned *full)
{
    struct sn_addr qc;
    bool q = sn_workers_quick_client(dlt, data, caplen, &qc);
    struct sn_decode dec;
    sn_decode_init(&dec);
    struct sn_pkt pkt;
    if (sn_decode_packet(&dec, dlt, data, caplen, wirelen, 0, &pkt) != SN_DEC_OK)
        return; /* no flow: any worker will do */
    (*full)++;
    if (!q)
        return;
    (*quick)++;
    assert_true((pkt.sport < 1024) != (pkt.dport < 1024));
    const struct sn_addr *want = pkt.sport > pkt.dport ? &pkt.src : &pkt.dst;
    assert_int_equal(sn_addr_cmp(&qc, want), 0);
}

/* Every packet of every test capture (and of the benchmark slices, when present), and every
 * prefix of its first 160 bytes (snaplen cuts; the shortcut reads no further). */
static void test_quick_client_captures(void **state)
{
    (void)state;
    static const char *const pats[] = {"tests/pcap/*.pcap*", "tests/pcap/fp/*.pcap",
                                       "tests/pcap/tls/*.pcap*",
                                       "tests/bench/data/*.first10000.pcap"};
    unsigned quick = 0, full = 0, files = 0;
    for (size_t g = 0; g < sizeof(pats) / sizeof(pats[0]); g++) {
        glob_t gl;
        if (glob(pats[g], 0, NULL, &gl) != 0)
            continue;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            struct sn_capture *c = sn_capture_open_file(gl.gl_pathv[i], NULL);
            if (!c)
                continue; /* bad-linktype.pcap and the like */
            files++;
            int dlt = sn_capture_dlt(c);
            struct sn_capture_pkt pk;
            while (sn_capture_next(c, &pk) == 1) {
                expect_quick_agrees(dlt, pk.data, pk.caplen, pk.wirelen, &quick, &full);
                uint32_t upto = pk.caplen < 160 ? pk.caplen : 160;
                unsigned q2 = 0, f2 = 0;
                for (uint32_t n = 0; n < upto; n++)
                    expect_quick_agrees(dlt, pk.data, n, pk.wirelen, &q2, &f2);
            }
            sn_capture_close(c);
        }
        globfree(&gl);
    }
    assert_true(files > 10);
    assert_true(quick > full / 2); /* most packets take the shortcut */
}

/* Frames the shortcut must leave to the full decode, and a double-tagged IPv4 with options
 * it must read right. */
static void test_quick_client_frames(void **state)
{
    (void)state;
    /* Ethernet, 802.1ad + 802.1Q, IPv4 (IHL 6: one option word), UDP 53 -> 40000 */
    uint8_t f[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xA8, 0x00, 0x64, 0x81, 0x00,
                   0x00, 0xC8, 0x08, 0x00,
                   /* IPv4 */ 0x46, 0, 0, 36, 0, 1, 0x00, 0x00, 64, 17, 0, 0, 192, 0, 2, 53,
                   198, 51, 100, 7, 1, 1, 1, 1,
                   /* UDP */ 0, 53, 0x9C, 0x40, 0, 8, 0, 0};
    struct sn_addr c;
    assert_true(sn_workers_quick_client(1, f, sizeof(f), &c));
    assert_int_equal(c.family, 4);
    assert_int_equal(c.a[0], 198);
    assert_int_equal(c.a[3], 7);
    unsigned q = 0, n = 0;
    expect_quick_agrees(1, f, sizeof(f), sizeof(f), &q, &n);
    assert_int_equal(q, 1);
    /* to a tunnel port (GTP-U 2152 from 53): the inner packet is the flow */
    uint8_t t[sizeof(f)];
    memcpy(t, f, sizeof(f));
    t[48] = 2152 >> 8;
    t[49] = 2152 & 0xFF;
    assert_false(sn_workers_quick_client(1, t, sizeof(t), &c));
    /* a first fragment (MF) */
    memcpy(t, f, sizeof(f));
    t[28] = 0x20;
    assert_false(sn_workers_quick_client(1, t, sizeof(t), &c));
    /* both ports above 1023: the reader's flow table decides */
    memcpy(t, f, sizeof(f));
    t[46] = 0x10;
    assert_false(sn_workers_quick_client(1, t, sizeof(t), &c));
    /* three tags: more than the shortcut reads */
    uint8_t t3[sizeof(f) + 4];
    memcpy(t3, f, 16);
    memcpy(t3 + 16, (const uint8_t[]){0x81, 0x00, 0x00, 0x01}, 4);
    memcpy(t3 + 20, f + 16, sizeof(f) - 16);
    assert_false(sn_workers_quick_client(1, t3, sizeof(t3), &c));
    q = n = 0;
    expect_quick_agrees(1, t3, sizeof(t3), sizeof(t3), &q, &n);
    assert_int_equal(n, 1); /* the full decode takes it */
}

/* ---------- memory sink ---------- */

struct mem {
    char *buf;
    size_t len, cap;
    unsigned n;
    uint64_t last_seq;
    bool seq_ok;
};

static int mem_open(struct sn_sink *s, const struct sn_config *cfg)
{
    (void)s;
    (void)cfg;
    return 0;
}

static int mem_emit(struct sn_sink *s, const struct sn_record *r)
{
    struct mem *m = s->priv;
    if (m->len + r->len + 1 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1 << 16;
        while (cap < m->len + r->len + 1)
            cap *= 2;
        m->buf = realloc(m->buf, cap);
        assert_non_null(m->buf);
        m->cap = cap;
    }
    memcpy(m->buf + m->len, r->data, r->len);
    m->len += r->len;
    m->buf[m->len] = '\0';
    m->n++;
    if (r->seq != m->last_seq + 1)
        m->seq_ok = false;
    m->last_seq = r->seq;
    /* the JSON carries the same seq, right after "schema" */
    char want[64];
    snprintf(want, sizeof(want), "\"schema\":1,\"seq\":%" PRIu64 ",", r->seq);
    if (!memmem(r->data, r->len < 80 ? r->len : 80, want, strlen(want)))
        m->seq_ok = false;
    return 0;
}

static int mem_flush(struct sn_sink *s, int t)
{
    (void)s;
    (void)t;
    return 0;
}

static void mem_close(struct sn_sink *s)
{
    (void)s;
}

static const struct sn_sink_ops mem_ops = {"mem", mem_open, mem_emit, mem_flush, mem_close};

/* Runs the captures through 1 pipeline (n = 1) or n workers with rings of `ring` bytes (0:
 * the default), giving the workers packets by reference (as main does for mapped files) when
 * `ref`; output in m. */
static void run_opts(const char *const *paths, unsigned np, unsigned n, size_t ring, bool ref,
                     struct mem *m)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.sensor_id = strdup("t");
    cfg.window = 600;
    memset(m, 0, sizeof(*m));
    m->seq_ok = true;
    struct sn_sink sink = {&mem_ops, m};
    bool is_config;
    struct sn_pipeline *p = NULL;
    struct sn_workers *w = NULL;
    if (n == 1)
        assert_non_null(p = sn_pipeline_new(&cfg, &sink, &is_config));
    else
        assert_non_null(w = sn_workers_new_opts(
                            &cfg, &sink, n,
                            &(struct sn_workers_opts){.ring_bytes = ring, .refs = ref},
                            &is_config));
    for (unsigned i = 0; i < np; i++) {
        struct sn_capture *c = sn_capture_open_file(paths[i], NULL);
        assert_non_null(c);
        int dlt = sn_capture_dlt(c);
        bool by_ref = w && ref && sn_capture_stable(c);
        if (by_ref)
            sn_capture_hold(c);
        if (w)
            sn_workers_input_begin(w, paths[i], dlt);
        else
            sn_pipeline_input_begin(p, paths[i], dlt);
        struct sn_capture_pkt pk;
        uint64_t cnt = 0;
        while (sn_capture_next(c, &pk) == 1) {
            if (by_ref) {
                sn_workers_packet_ref(w, dlt, pk.data, pk.caplen, pk.wirelen, pk.ts_us);
                if (cnt % 64 == 0) {
                    const uint8_t *old = sn_workers_oldest_ref(w);
                    assert_true(!old || old <= pk.data);
                    sn_capture_release(c, old ? old : pk.data);
                }
            } else if (w)
                sn_workers_packet(w, dlt, pk.data, pk.caplen, pk.wirelen, pk.ts_us);
            else
                sn_pipeline_packet(p, dlt, pk.data, pk.caplen, pk.wirelen, pk.ts_us);
            cnt++;
        }
        if (w)
            sn_workers_input_end(w, cnt, false);
        else
            sn_pipeline_input_end(p, cnt, false);
        sn_capture_close(c);
    }
    if (w) {
        sn_workers_finish(w);
        assert_int_equal(sn_workers_sink_errors(w), 0);
        sn_workers_free(w);
    } else {
        sn_pipeline_finish(p);
        sn_pipeline_free(p);
    }
    sn_config_fini(&cfg);
}

static void run_ring(const char *const *paths, unsigned np, unsigned n, size_t ring,
                     struct mem *m)
{
    run_opts(paths, np, n, ring, false, m);
}

static void run(const char *const *paths, unsigned np, unsigned n, struct mem *m)
{
    run_ring(paths, np, n, 0, m);
}

/* The records' lines with "seq":N taken out, sorted, joined (for multiset comparison). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *canon(const struct mem *m, const char *type_prefix)
{
    char *copy = strdup(m->buf);
    char **lines = calloc(m->n + 1, sizeof(*lines));
    size_t k = 0;
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, type_prefix, strlen(type_prefix)))
            continue;
        char *s = strstr(l, ",\"seq\":");
        if (s) {
            char *e = s + 7;
            while (*e >= '0' && *e <= '9')
                e++;
            memmove(s, e, strlen(e) + 1);
        }
        lines[k++] = l;
    }
    qsort(lines, k, sizeof(*lines), cmp_str);
    size_t total = 1;
    for (size_t i = 0; i < k; i++)
        total += strlen(lines[i]) + 1;
    char *out = malloc(total);
    out[0] = '\0';
    char *p = out;
    for (size_t i = 0; i < k; i++)
        p += sprintf(p, "%s\n", lines[i]);
    free(lines);
    free(copy);
    return out;
}

static void expect_same(const struct mem *a, const struct mem *b, const char *type_prefix)
{
    char *x = canon(a, type_prefix), *y = canon(b, type_prefix);
    assert_true(strlen(x) > 10);
    assert_string_equal(x, y);
    free(x);
    free(y);
}

/* v6.pcap (time goes back to 1999 after the others) has ICMPv6 flows whose first sender is
 * the higher address: sharded through the reader's flow table. */
static const char *const fp_caps[] = {FP_DIR "llm_20clients.pcap", FP_DIR "llm_stream.pcap",
                                      FP_DIR "bulk_download.pcap", "tests/pcap/v6.pcap"};

static void test_workers_equal_single(void **state)
{
    (void)state;
    struct mem one, two, two_again, four;
    run(fp_caps, 4, 1, &one);
    run(fp_caps, 4, 2, &two);
    run(fp_caps, 4, 2, &two_again);
    run(fp_caps, 4, 4, &four);
    assert_true(one.seq_ok);
    assert_true(two.seq_ok);
    assert_true(four.seq_ok);
    assert_int_equal(one.n, two.n);
    assert_int_equal(one.n, four.n);
    /* deterministic */
    assert_int_equal(two.len, two_again.len);
    assert_memory_equal(two.buf, two_again.buf, two.len);
    /* flows and fingerprints: the same records (window bounds included) */
    expect_same(&one, &two, "{\"type\":\"flow\"");
    expect_same(&one, &two, "{\"type\":\"fingerprint\"");
    expect_same(&one, &four, "{\"type\":\"flow\"");
    expect_same(&one, &four, "{\"type\":\"fingerprint\"");
    /* one stats record, last, with the same decode counters and record counts */
    const char *st = strstr(two.buf, "{\"type\":\"stats\"");
    assert_non_null(st);
    assert_int_equal(strlen(st), strchr(st, '\n') - st + 1);
    const char *st1 = strstr(one.buf, "{\"type\":\"stats\"");
    assert_non_null(st1);
    const char *d1 = strstr(st1, "\"decode\":"), *d2 = strstr(st, "\"decode\":");
    assert_memory_equal(d1, d2, (size_t)(strchr(d1, '}') - d1));
    const char *r1 = strstr(st1, "\"records\":"), *r2 = strstr(st, "\"records\":");
    assert_string_equal(r1, r2);
    free(one.buf);
    free(two.buf);
    free(two_again.buf);
    free(four.buf);
}

/* The smallest rings (1 MB; the captures hold 3 MB): the reader wraps around and waits for
 * full rings, and the output is byte for byte the same as with the default rings. */
static void test_workers_small_rings(void **state)
{
    (void)state;
    struct mem big, small, small3, big3;
    run(fp_caps, 4, 2, &big);
    run_ring(fp_caps, 4, 2, 1, &small);
    run(fp_caps, 4, 3, &big3);
    run_ring(fp_caps, 4, 3, SN_WORKERS_MIN_RING_BYTES, &small3);
    assert_true(small.seq_ok);
    assert_int_equal(big.len, small.len);
    assert_memory_equal(big.buf, small.buf, big.len);
    assert_int_equal(big3.len, small3.len);
    assert_memory_equal(big3.buf, small3.buf, big3.len);
    free(big.buf);
    free(small.buf);
    free(big3.buf);
    free(small3.buf);
}

/* Packets by reference (mapped classic pcap files; the workers read the frames in place,
 * small rings): byte for byte the output of copied packets, with 2 and 3 workers, and with
 * one input (tls-sni.pcapng) that is not mapped and is copied in the same run. */
static void test_workers_by_reference(void **state)
{
    (void)state;
    static const char *const caps[] = {FP_DIR "llm_20clients.pcap", "tests/pcap/tls-sni.pcapng",
                                       FP_DIR "llm_stream.pcap", FP_DIR "bulk_download.pcap",
                                       "tests/pcap/v6.pcap"};
    for (unsigned n = 2; n <= 3; n++) {
        struct mem copy, ref;
        run(caps, 5, n, &copy);
        run_opts(caps, 5, n, 0, true, &ref);
        assert_true(ref.seq_ok);
        assert_int_equal(copy.len, ref.len);
        assert_memory_equal(copy.buf, ref.buf, copy.len);
        free(copy.buf);
        free(ref.buf);
    }
}

/* Freed without finish (error path in main): threads stop, nothing leaks, nothing written
 * beyond what was ready. */
static void test_free_without_finish(void **state)
{
    (void)state;
    struct sn_config cfg;
    sn_config_init(&cfg);
    struct mem m = {.seq_ok = true};
    struct sn_sink sink = {&mem_ops, &m};
    bool is_config;
    struct sn_workers *w = sn_workers_new(&cfg, &sink, 3, &is_config);
    assert_non_null(w);
    struct sn_capture *c = sn_capture_open_file(FP_DIR "llm_20clients.pcap", NULL);
    assert_non_null(c);
    struct sn_capture_pkt pk;
    while (sn_capture_next(c, &pk) == 1)
        sn_workers_packet(w, sn_capture_dlt(c), pk.data, pk.caplen, pk.wirelen, pk.ts_us);
    sn_capture_close(c);
    sn_workers_free(w);
    assert_true(m.seq_ok);
    assert_null(m.buf ? strstr(m.buf, "\"type\":\"stats\"") : NULL);
    free(m.buf);
    sn_config_fini(&cfg);
}

static void test_bad_count(void **state)
{
    (void)state;
    struct sn_config cfg;
    sn_config_init(&cfg);
    struct mem m = {0};
    struct sn_sink sink = {&mem_ops, &m};
    bool is_config = false;
    assert_null(sn_workers_new(&cfg, &sink, 1, &is_config));
    assert_true(is_config);
    assert_null(sn_workers_new(&cfg, &sink, SN_WORKERS_MAX + 1, &is_config));
    sn_workers_free(NULL);
    sn_config_fini(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_symmetric),
        cmocka_unit_test(test_shard_by_client),
        cmocka_unit_test(test_shard_prefix),
        cmocka_unit_test(test_quick_client_captures),
        cmocka_unit_test(test_quick_client_frames),
        cmocka_unit_test(test_workers_equal_single),
        cmocka_unit_test(test_workers_small_rings),
        cmocka_unit_test(test_workers_by_reference),
        cmocka_unit_test(test_free_without_finish),
        cmocka_unit_test(test_bad_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
