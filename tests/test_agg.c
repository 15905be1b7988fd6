/* Unit tests for agg (fingerprints), simhash, pseudo and regdom. The API is driven with
 * synthetic event sequences whose counts are known exactly; the pcaps written by
 * tests/tools/gen_traffic.py (tests/pcap/fp/) are replayed through a minimal
 * Ethernet/IPv4/TCP reader and TLS record walk in this file (the generated captures only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg.h"
#include "err.h"
#include "pseudo.h"
#include "regdom.h"
#include "simhash.h"

#define SEC 1000000LL
/* 1700000040 s is a multiple of 60 and of 3600 * k + 2040; windows below start here. */
#define T0 (1700000040LL * SEC)
#define JA4_PY "t13d1516h2_8daaf6152771_b0da82dd1658"
#define JA4_CURL "t13d3112h2_e8f1e7e78f70_6bebaf5329ac"

/* ---------- captured output ---------- */

struct out {
    char *buf;
    size_t len, cap;
    unsigned n;
    char *keys; /* partition keys, '\n'-separated */
    size_t klen, kcap;
};

static void grow_append(char **b, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        *b = realloc(*b, c);
        assert_non_null(*b);
        *cap = c;
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
}

static void emit_cb(void *ctx, const char *key, size_t keylen, const char *json, size_t len)
{
    struct out *o = ctx;
    assert_true(len > 0 && json[len - 1] == '\n');
    assert_null(memchr(json, '\n', len - 1));
    grow_append(&o->buf, &o->len, &o->cap, json, len);
    const char *all = getenv("SN_AGG_DUMP_ALL"); /* every record, for schema checks */
    if (all) {
        FILE *df = fopen(all, "a");
        assert_non_null(df);
        fwrite(json, 1, len, df);
        fclose(df);
    }
    grow_append(&o->keys, &o->klen, &o->kcap, key, keylen);
    grow_append(&o->keys, &o->klen, &o->kcap, "\n", 1);
    o->n++;
}

static void out_free(struct out *o)
{
    free(o->buf);
    free(o->keys);
    memset(o, 0, sizeof(*o));
}

/* The i-th line (0-based) as a malloc'd string. */
static char *line_at(const struct out *o, unsigned i)
{
    const char *p = o->buf;
    for (unsigned k = 0; k < i; k++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *e = strchr(p, '\n');
    assert_non_null(e);
    return strndup(p, (size_t)(e - p));
}

/* The first line containing every given substring (NULL-terminated list), or NULL. */
static char *find_line(const struct out *o, ...)
{
    for (unsigned i = 0; i < o->n; i++) {
        char *l = line_at(o, i);
        va_list ap;
        va_start(ap, o);
        bool all = true;
        for (const char *s; (s = va_arg(ap, const char *));)
            if (!strstr(l, s))
                all = false;
        va_end(ap);
        if (all)
            return l;
        free(l);
    }
    return NULL;
}

/* The unsigned number right after `path` in line (path includes the key's quotes and ':'). */
static uint64_t num(const char *line, const char *path)
{
    const char *p = strstr(line, path);
    if (!p)
        fail_msg("'%s' not in %s", path, line);
    return strtoull(p + strlen(path), NULL, 10);
}

static uint64_t simhash_of(const char *line)
{
    const char *p = strstr(line, "\"simhash\":\"");
    assert_non_null(p);
    char hx[17];
    memcpy(hx, p + 11, 16);
    hx[16] = '\0';
    uint64_t v;
    assert_int_equal(sn_agg_parse_simhash(hx, &v), 0);
    return v;
}

/* The numbers of a histogram array, e.g. hist(line, "response_records", bins). */
static unsigned hist(const char *line, const char *name, uint64_t bins[SN_AGG_HIST_BINS])
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":[", name);
    const char *p = strstr(line, key);
    assert_non_null(p);
    p += strlen(key);
    memset(bins, 0, SN_AGG_HIST_BINS * sizeof(bins[0]));
    unsigned n = 0;
    while (*p != ']') {
        char *end;
        bins[n++] = strtoull(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
        assert_true(n <= SN_AGG_HIST_BINS);
    }
    return n;
}

/* ---------- a small traffic driver ---------- */

struct drv {
    struct sn_agg *a;
    uint64_t pkts[2], bytes[2];
};

static struct sn_agg_flowinfo info(const char *cli, const char *srv, uint32_t srv_asn)
{
    struct sn_agg_flowinfo fi;
    memset(&fi, 0, sizeof(fi));
    assert_int_equal(sn_addr_parse(cli, &fi.client), 0);
    assert_int_equal(sn_addr_parse(srv, &fi.server), 0);
    fi.server_port = 443;
    fi.server_asn = srv_asn;
    return fi;
}

static void pkt(struct drv *d, struct sn_agg_flow *f, int dir, uint32_t ipb, uint32_t pl,
                int64_t ts)
{
    sn_agg_packet(d->a, f, dir, ipb, pl, ts);
    d->pkts[dir]++;
    d->bytes[dir] += ipb;
}

/* One TLS record alone in one TCP segment (IPv4, no options: 40 header bytes). */
static void rec(struct drv *d, struct sn_agg_flow *f, int dir, uint8_t ct, uint32_t len,
                int64_t ts)
{
    pkt(d, f, dir, 40 + 5 + len, 5 + len, ts);
    sn_agg_record(d->a, f, dir, ct, len, ts, true);
}

/* TCP handshake, ClientHello, settle, a TLS 1.2 abbreviated handshake. Returns next ts. */
static int64_t tls_open(struct drv *d, struct sn_agg_flow *f, struct sn_agg_flowinfo *fi,
                        int64_t ts, const char *sni, const char *ja4, bool settle)
{
    pkt(d, f, 0, 60, 0, ts);
    pkt(d, f, 1, 60, 0, ts + 20000);
    pkt(d, f, 0, 52, 0, ts + 40000);
    rec(d, f, 0, 22, 512, ts + 40100);
    fi->sni = sni;
    fi->ja4 = ja4;
    fi->ja3 = "e7d705a3286e19ea42f587b344ee6865";
    fi->alpn = "h2";
    if (settle)
        sn_agg_flow_settle(d->a, f, fi);
    rec(d, f, 1, 22, 91, ts + 60000);
    rec(d, f, 1, 20, 1, ts + 60001);
    rec(d, f, 1, 22, 40, ts + 60002);
    rec(d, f, 0, 20, 1, ts + 80000);
    rec(d, f, 0, 22, 40, ts + 80001);
    return ts + 100000;
}

struct llm_shape {
    unsigned exchanges, records, rec_len, req_len;
    int64_t ttfb, chunk_gap, think;
};

/* Exchanges of one request record answered by `records` streamed records. Returns ts. */
static int64_t llm(struct drv *d, struct sn_agg_flow *f, int64_t ts, const struct llm_shape *s,
                   unsigned seed)
{
    for (unsigned x = 0; x < s->exchanges; x++) {
        unsigned j = seed ? (seed * 2654435761u + x * 40503u) >> 8 : 0;
        rec(d, f, 0, 23, s->req_len + (seed ? j % 64 : 0), ts);
        ts += s->ttfb + (seed ? (int64_t)(j % 50000) : 0);
        unsigned n = s->records + (seed ? j % 20 : 0);
        for (unsigned r = 0; r < n; r++) {
            rec(d, f, 1, 23, s->rec_len + (seed ? (j + r * 7) % 24 : 0), ts);
            if (r % 16 == 15)
                pkt(d, f, 0, 52, 0, ts + 100); /* an ACK now and then */
            ts += s->chunk_gap;
        }
        ts += s->think;
    }
    return ts;
}

static struct sn_agg *mk(struct out *o, unsigned window, unsigned grace, unsigned max_entries)
{
    struct sn_agg_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.window_s = window;
    cfg.grace_s = grace;
    cfg.max_entries = max_entries;
    cfg.sensor_id = "s1";
    struct sn_agg *a = sn_agg_new(&cfg, emit_cb, o);
    assert_non_null(a);
    return a;
}

/* Sums up/down pkts and bytes over every emitted fingerprint. */
static void sum_out(const struct out *o, uint64_t pk[2], uint64_t by[2], uint64_t fl[2])
{
    pk[0] = pk[1] = by[0] = by[1] = fl[0] = fl[1] = 0;
    for (unsigned i = 0; i < o->n; i++) {
        char *l = line_at(o, i);
        pk[0] += num(l, "\"up\":{\"pkts\":");
        pk[1] += num(l, "\"down\":{\"pkts\":");
        const char *u = strstr(l, "\"up\":{");
        const char *dn = strstr(l, "\"down\":{");
        by[0] += num(u, "\"bytes\":");
        by[1] += num(dn, "\"bytes\":");
        fl[0] += num(l, "\"flows\":{\"started\":");
        fl[1] += num(l, "\"ended\":");
        free(l);
    }
}

/* ---------- tests ---------- */

/* 50 exchanges of 1 KB requests answered by 200 streamed 100-byte records each. */
static void test_llm_exact(void **state)
{
    (void)state;
    struct out o = {0};
    struct drv d = {.a = mk(&o, 3600, 5, 0)};
    struct sn_agg_flowinfo fi = info("10.1.2.3", "23.32.1.10", 35994);
    fi.client_country = "AU";
    fi.client_asn = 1221;
    fi.client_asn_org = "Telstra Pty Ltd";
    int64_t ts = 1700002800LL * SEC; /* a multiple of 3600 s */
    struct sn_agg_flow *f = sn_agg_flow_start(d.a, &fi, ts);
    assert_non_null(f);
    ts = tls_open(&d, f, &fi, ts, "api.openai.com", JA4_PY, true);
    struct llm_shape s = {50, 200, 100, 1024, 200000, 10000, 1000000};
    ts = llm(&d, f, ts, &s, 0);
    pkt(&d, f, 0, 52, 0, ts);
    sn_agg_flow_end(d.a, f, ts);
    assert_int_equal(o.n, 0); /* window still open */
    sn_agg_finish(d.a);
    assert_int_equal(o.n, 1);
    char *l = line_at(&o, 0);
    assert_non_null(strstr(l, "{\"type\":\"fingerprint\",\"schema\":1,\"sensor\":\"s1\","
                              "\"window\":{\"start\":1700002800.000000,"
                              "\"end\":1700006400.000000,\"duration_s\":3600}"));
    assert_non_null(strstr(l, "\"client\":{\"id\":\"10.1.2.3\",\"key\":\"ip\","
                              "\"pseudonymised\":false,\"country\":\"AU\",\"asn\":1221,"
                              "\"asn_org\":\"Telstra Pty Ltd\"}"));
    assert_non_null(strstr(l, "\"service\":{\"name\":\"openai.com\",\"source\":\"sni\","
                              "\"snis\":[{\"v\":\"api.openai.com\",\"n\":1}],\"snis_other\":0,"
                              "\"asns\":[{\"v\":35994,\"n\":1}]}"));
    assert_non_null(strstr(l, "\"flows\":{\"started\":1,\"ended\":1,\"active\":1}"));
    assert_int_equal(num(l, "\"up\":{\"pkts\":"), d.pkts[0]);
    assert_int_equal(num(l, "\"down\":{\"pkts\":"), d.pkts[1]);
    assert_int_equal(num(strstr(l, "\"up\":{"), "\"bytes\":"), d.bytes[0]);
    assert_int_equal(num(strstr(l, "\"down\":{"), "\"bytes\":"), d.bytes[1]);
    assert_int_equal(num(l, "\"down\":{\"pkts\":"), 1 + 3 + 50 * 200);
    assert_int_equal(num(l, "\"tls_records\":"), 50); /* up: application data only */
    assert_int_equal(num(strstr(l, "\"down\":{"), "\"tls_records\":"), 10000);
    assert_int_equal(num(strstr(l, "\"down\":{"), "\"tls_bytes\":"), 1000000);
    assert_non_null(strstr(l, "\"exchanges\":{\"n\":50,\"method\":\"records\",\"n_records\":50,"
                              "\"n_bursts\":0,\"request_bytes\":51200,"
                              "\"response_bytes\":1000000,\"response_records\":10000,"
                              "\"ttfb_us_sum\":10000000,"
                              "\"response_duration_us_sum\":99500000,\"unanswered\":0}"));
    uint64_t b[SN_AGG_HIST_BINS];
    /* 200 records: floor(log2 200) + 1 = 8 */
    assert_int_equal(hist(l, "response_records", b), 9);
    assert_int_equal(b[8], 50);
    assert_int_equal(hist(l, "record_bytes_down", b), 8); /* 100 bytes -> bin 7 */
    assert_int_equal(b[7], 10000);
    assert_int_equal(hist(l, "record_bytes_up", b), 12); /* 1024 -> bin 11 */
    assert_int_equal(b[11], 50);
    assert_int_equal(hist(l, "response_bytes", b), 16); /* 20000 -> bin 15 */
    assert_int_equal(b[15], 50);
    assert_int_equal(hist(l, "ttfb_us", b), 19); /* 200000 us -> bin 18 */
    assert_int_equal(b[18], 50);
    assert_int_equal(hist(l, "gap_us", b), 21); /* think 1 s after the last chunk + 10 ms */
    assert_int_equal(b[20], 49);
    assert_int_equal(hist(l, "flow_duration_us", b), 29);
    assert_int_equal(b[28], 1); /* ~161 s */
    assert_non_null(strstr(l, "\"ja4\":[{\"v\":\"" JA4_PY "\",\"n\":1}],\"ja4_other\":0"));
    assert_non_null(strstr(l, "\"alpn\":[{\"v\":\"h2\",\"n\":1}]"));
    assert_non_null(strstr(l, "\"overflow\":false"));
    assert_string_equal(o.keys, "10.1.2.3\n");
    free(l);
    const struct sn_agg_stats *st = sn_agg_stats(d.a);
    assert_int_equal(st->fingerprints, 1);
    assert_int_equal(st->forced_settles, 0);
    sn_agg_free(d.a);
    out_free(&o);
}

/* Per-packet attribution across a window boundary, with the key settled in the later
 * window; the grace period; late packets; forced (provisional) settles. */
static void test_window_boundaries(void **state)
{
    (void)state;
    struct out o = {0};
    struct drv d = {.a = mk(&o, 60, 5, 0)};
    struct sn_agg_flowinfo fi = info("10.0.0.1", "23.32.1.10", 35994);
    struct sn_agg_flow *f = sn_agg_flow_start(d.a, &fi, T0 + 59999999);
    pkt(&d, f, 0, 60, 0, T0 + 59999999);            /* window A (last microsecond) */
    pkt(&d, f, 1, 60, 0, T0 + 60 * SEC);            /* window B (first microsecond) */
    fi.sni = "api.openai.com";
    sn_agg_flow_settle(d.a, f, &fi);
    /* a second flow never settled by the pipeline */
    struct sn_agg_flowinfo gi = info("10.0.0.2", "23.32.1.11", 35994);
    struct sn_agg_flow *g = sn_agg_flow_start(d.a, &gi, T0 + 10 * SEC);
    pkt(&d, g, 0, 100, 48, T0 + 10 * SEC);
    pkt(&d, f, 0, 1000, 948, T0 + 65 * SEC);         /* end + grace: A still open */
    assert_int_equal(o.n, 0);
    pkt(&d, f, 0, 1000, 948, T0 + 65 * SEC + 1);     /* passes it: A closes */
    assert_int_equal(o.n, 2);
    char *a1 = find_line(&o, "\"id\":\"10.0.0.1\"", "\"start\":1700000040.000000", NULL);
    assert_non_null(a1);
    assert_non_null(strstr(a1, "\"name\":\"openai.com\""));
    assert_non_null(strstr(a1, "\"flows\":{\"started\":1,\"ended\":0,\"active\":1}"));
    assert_int_equal(num(a1, "\"up\":{\"pkts\":"), 1);
    assert_int_equal(num(a1, "\"down\":{\"pkts\":"), 0);
    char *a2 = find_line(&o, "\"id\":\"10.0.0.2\"", NULL);
    assert_non_null(a2);
    assert_non_null(strstr(a2, "\"service\":{\"name\":\"AS35994\",\"source\":\"asn\""));
    assert_int_equal(sn_agg_stats(d.a)->forced_settles, 1);
    /* the late settle keeps the provisional key */
    gi.sni = "chat.openai.com";
    sn_agg_flow_settle(d.a, g, &gi);
    assert_int_equal(sn_agg_stats(d.a)->late_settles, 1);
    /* a packet for the closed window A counts in B, the oldest open one */
    pkt(&d, g, 1, 200, 148, T0 + 30 * SEC);
    assert_int_equal(sn_agg_stats(d.a)->late_pkts, 1);
    sn_agg_flow_end(d.a, g, T0 + 70 * SEC);
    sn_agg_flow_end(d.a, f, T0 + 70 * SEC);
    sn_agg_finish(d.a);
    assert_int_equal(o.n, 4);
    char *b1 = find_line(&o, "\"id\":\"10.0.0.1\"", "\"start\":1700000100.000000", NULL);
    assert_non_null(b1);
    assert_int_equal(num(b1, "\"up\":{\"pkts\":"), 2);
    assert_int_equal(num(b1, "\"down\":{\"pkts\":"), 1);
    assert_non_null(strstr(b1, "\"flows\":{\"started\":0,\"ended\":1,\"active\":1}"));
    char *b2 = find_line(&o, "\"id\":\"10.0.0.2\"", "\"start\":1700000100.000000", NULL);
    assert_non_null(b2);
    assert_non_null(strstr(b2, "\"name\":\"AS35994\""));
    assert_non_null(strstr(b2, "\"snis\":[{\"v\":\"chat.openai.com\",\"n\":1}]"));
    assert_int_equal(num(b2, "\"down\":{\"pkts\":"), 1);
    /* emitted in window order */
    char *l0 = line_at(&o, 0), *l3 = line_at(&o, 3);
    assert_non_null(strstr(l0, "\"start\":1700000040.000000"));
    assert_non_null(strstr(l3, "\"start\":1700000100.000000"));
    uint64_t pk[2], by[2], fl[2];
    sum_out(&o, pk, by, fl);
    assert_int_equal(pk[0], d.pkts[0]);
    assert_int_equal(pk[1], d.pkts[1]);
    assert_int_equal(by[0], d.bytes[0]);
    assert_int_equal(by[1], d.bytes[1]);
    assert_int_equal(fl[0], 2);
    assert_int_equal(fl[1], 2);
    free(a1), free(a2), free(b1), free(b2), free(l0), free(l3);
    sn_agg_free(d.a);
    out_free(&o);
}

/* TLS 1.3: the encrypted handshake and the client Finished are application data records,
 * session tickets follow the Finished; none of it is an exchange. */
static void test_tls13_handshake(void **state)
{
    (void)state;
    struct out o = {0};
    struct drv d = {.a = mk(&o, 60, 5, 0)};
    struct sn_agg_flowinfo fi = info("10.0.0.1", "23.32.1.10", 35994);
    int64_t ts = T0;
    struct sn_agg_flow *f = sn_agg_flow_start(d.a, &fi, ts);
    pkt(&d, f, 0, 60, 0, ts);
    pkt(&d, f, 1, 60, 0, ts + 100);
    pkt(&d, f, 0, 52, 0, ts + 200);
    rec(&d, f, 0, 22, 1700, ts + 300);
    fi.sni = "api.openai.com";
    sn_agg_flow_settle(d.a, f, &fi);
    rec(&d, f, 1, 22, 122, ts + 20000);
    rec(&d, f, 1, 20, 1, ts + 20001);
    rec(&d, f, 1, 23, 27, ts + 20002);   /* EncryptedExtensions */
    rec(&d, f, 1, 23, 3500, ts + 20003); /* Certificate */
    rec(&d, f, 1, 23, 286, ts + 20004);  /* CertificateVerify */
    rec(&d, f, 1, 23, 53, ts + 20005);   /* Finished */
    rec(&d, f, 0, 20, 1, ts + 40000);
    rec(&d, f, 0, 23, 53, ts + 40001);   /* client Finished */
    rec(&d, f, 1, 23, 250, ts + 60000);  /* NewSessionTicket x2 */
    rec(&d, f, 1, 23, 250, ts + 60001);
    struct llm_shape s = {3, 5, 100, 500, 100000, 10000, 200000};
    ts = llm(&d, f, ts + 100000, &s, 0);
    sn_agg_flow_end(d.a, f, ts);
    sn_agg_finish(d.a);
    assert_int_equal(o.n, 1);
    char *l = line_at(&o, 0);
    assert_non_null(strstr(l, "\"exchanges\":{\"n\":3,\"method\":\"records\",\"n_records\":3,"
                              "\"n_bursts\":0,\"request_bytes\":1500,\"response_bytes\":1500,"
                              "\"response_records\":15,"));
    assert_int_equal(num(l, "\"tls_records\":"), 4); /* up: Finished + 3 requests */
    free(l);
    sn_agg_free(d.a);
    out_free(&o);
}

/* A response idle past its window's close completes in that window, not at the next
 * request minutes later; the gap to the next request is still measured. */
static void test_exchange_idle_close(void **state)
{
    (void)state;
    struct out o = {0};
    struct drv d = {.a = mk(&o, 60, 5, 0)};
    struct sn_agg_flowinfo fi = info("10.0.0.1", "23.32.1.10", 35994);
    struct sn_agg_flow *f = sn_agg_flow_start(d.a, &fi, T0);
    int64_t ts = tls_open(&d, f, &fi, T0, "api.openai.com", JA4_PY, true);
    struct llm_shape s = {1, 100, 100, 1024, 100000, 10000, 0};
    llm(&d, f, ts + 10 * SEC, &s, 0); /* response 10.2 s .. 11.2 s */
    pkt(&d, f, 0, 52, 0, T0 + 64 * SEC); /* an ACK: still within the grace */
    assert_int_equal(o.n, 0);
    pkt(&d, f, 0, 52, 0, T0 + 66 * SEC); /* window A closes */
    assert_int_equal(o.n, 1);
    char *a1 = line_at(&o, 0);
    assert_non_null(strstr(a1, "\"exchanges\":{\"n\":1,\"method\":\"records\""));
    assert_int_equal(num(a1, "\"response_records\":"), 100);
    llm(&d, f, T0 + 200 * SEC, &s, 0);
    sn_agg_flow_end(d.a, f, T0 + 202 * SEC);
    sn_agg_finish(d.a);
    assert_int_equal(o.n, 3); /* A, the ACK's window B, and the window at 180 s */
    char *c = find_line(&o, "\"start\":1700000220.000000", NULL);
    assert_non_null(c);
    assert_non_null(strstr(c, "\"exchanges\":{\"n\":1,"));
    uint64_t b[SN_AGG_HIST_BINS];
    assert_int_equal(hist(c, "gap_us", b), 29); /* 200 - 11.2 s = ~1.89e8 us: bin 28 */
    assert_int_equal(b[28], 1);
    free(a1);
    free(c);
    sn_agg_free(d.a);
    out_free(&o);
}

/* Non-TLS flows use payload bursts; a desynced TLS flow falls back to them too. */
static void test_bursts_and_desync(void **state)
{
    (void)state;
    struct out o = {0};
    struct drv d = {.a = mk(&o, 60, 5, 0)};
    struct sn_agg_flowinfo fi = info("10.0.0.1", "192.0.2.80", 0);
    fi.server_port = 80;
    fi.service = "web";
    struct sn_agg_flow *f = sn_agg_flow_start(d.a, &fi, T0);
    int64_t ts = T0;
    for (int x = 0; x < 3; x++) {
        pkt(&d, f, 0, 440, 400, ts);
        pkt(&d, f, 1, 1500, 1460, ts + 30000);
        pkt(&d, f, 1, 1500, 1460, ts + 31000);
        pkt(&d, f, 0, 52, 0, ts + 32000);  /* ACKs carry no payload */
        pkt(&d, f, 0, 60, 8, ts + 33000);  /* small control data inside the response */
        pkt(&d, f, 1, 540, 500, ts + 34000);
        ts += SEC;
    }
    pkt(&d, f, 0, 440, 400, ts); /* a request with no answer */
    sn_agg_flow_end(d.a, f, ts);
    /* a TLS flow that loses sync after one exchange */
    struct sn_agg_flowinfo gi = info("10.0.0.2", "23.32.1.10", 35994);
    struct sn_agg_flow *g = sn_agg_flow_start(d.a, &gi, T0);
    ts = tls_open(&d, g, &gi, T0, "api.openai.com", JA4_PY, true);
    struct llm_shape s = {1, 10, 100, 1024, 100000, 10000, 500000};
    ts = llm(&d, g, ts, &s, 0);
    sn_agg_desync(d.a, g);
    pkt(&d, g, 0, 1000, 960, ts);
    pkt(&d, g, 1, 1000, 960, ts + 1000);
    sn_agg_flow_end(d.a, g, ts + 2000);
    sn_agg_finish(d.a);
    assert_int_equal(o.n, 2);
    char *l = find_line(&o, "\"id\":\"10.0.0.1\"", NULL);
    assert_non_null(strstr(l, "\"service\":{\"name\":\"web\",\"source\":\"rule\""));
    assert_non_null(strstr(l, "\"exchanges\":{\"n\":3,\"method\":\"bursts\",\"n_records\":0,"
                              "\"n_bursts\":3,\"request_bytes\":1200,"
                              "\"response_bytes\":10260,\"response_records\":0,"
                              "\"ttfb_us_sum\":90000,\"response_duration_us_sum\":12000,"
                              "\"unanswered\":1}"));
    assert_non_null(strstr(l, "\"ratio_down_up\":5.067")); /* 10620 / 2096 */
    char *m = find_line(&o, "\"id\":\"10.0.0.2\"", NULL);
    assert_non_null(strstr(m, "\"exchanges\":{\"n\":2,\"method\":\"mixed\",\"n_records\":1,"
                              "\"n_bursts\":1,"));
    free(l);
    free(m);
    sn_agg_free(d.a);
    out_free(&o);
}

/* More client x service pairs than max_entries: the rest goes to one overflow entry. Flow
 * states beyond max_flows (NULL flows) go there too. */
static void test_overflow(void **state)
{
    (void)state;
    struct out o = {0};
    struct sn_agg_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.window_s = 60;
    cfg.max_entries = 2;
    cfg.max_flows = 4;
    uint64_t seq = 41;
    cfg.seq = &seq;
    struct drv d = {.a = sn_agg_new(&cfg, emit_cb, &o)};
    assert_non_null(d.a);
    struct sn_agg_flow *f[6];
    for (int i = 0; i < 6; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
        struct sn_agg_flowinfo fi = info(ip, "23.32.1.10", 35994);
        f[i] = sn_agg_flow_start(d.a, &fi, T0 + i);
        if (i < 4)
            assert_non_null(f[i]);
        else
            assert_null(f[i]);
        fi.sni = "api.openai.com";
        sn_agg_flow_settle(d.a, f[i], &fi);
    }
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < 3; k++)
            pkt(&d, f[i], k & 1, 100, 60, T0 + 1000 + i * 10 + k);
        sn_agg_record(d.a, f[i], 1, 23, 55, T0 + 2000, true);
        sn_agg_flow_end(d.a, f[i], T0 + 3000);
    }
    sn_agg_finish(d.a);
    assert_int_equal(o.n, 3);
    char *l0 = line_at(&o, 0), *l1 = line_at(&o, 1), *l2 = line_at(&o, 2);
    assert_non_null(strstr(l0, "\"id\":\"10.0.0.1\""));
    assert_non_null(strstr(l1, "\"id\":\"10.0.0.2\""));
    assert_non_null(strstr(l2, "\"client\":{\"id\":\"*\",\"key\":\"overflow\""));
    assert_non_null(strstr(l0, "\"schema\":1,\"seq\":42,\"window\""));
    assert_non_null(strstr(l2, "\"schema\":1,\"seq\":44,\"window\""));
    assert_int_equal(seq, 44);
    assert_non_null(strstr(l2, "\"service\":{\"name\":\"*\",\"source\":\"overflow\""));
    assert_non_null(strstr(l2, "\"overflow\":true"));
    assert_non_null(strstr(l2, "\"flows\":{\"started\":4,\"ended\":4,\"active\":2}"));
    assert_int_equal(num(l2, "\"up\":{\"pkts\":"), 8);
    assert_int_equal(num(l2, "\"down\":{\"pkts\":"), 4);
    assert_int_equal(num(strstr(l2, "\"down\":{"), "\"tls_records\":"), 4);
    const struct sn_agg_stats *st = sn_agg_stats(d.a);
    assert_int_equal(st->overflow_entries, 1);
    assert_int_equal(st->overflow_pkts, 12);
    assert_int_equal(st->overflow_bytes, 1200);
    assert_int_equal(st->flows_pool_full, 2);
    uint64_t pk[2], by[2], fl[2];
    sum_out(&o, pk, by, fl);
    assert_int_equal(pk[0] + pk[1], 18);
    assert_int_equal(by[0], d.bytes[0]);
    assert_int_equal(by[1], d.bytes[1]);
    assert_int_equal(fl[0], 6);
    assert_int_equal(fl[1], 6);
    free(l0), free(l1), free(l2);
    sn_agg_free(d.a);
    out_free(&o);
}

static void run_keyed(struct out *o, const uint8_t *key, size_t klen, bool pp,
                      enum sn_client_key ck, const char *const *clients, int n)
{
    struct sn_agg_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.window_s = 60;
    cfg.pseudo_key = key;
    cfg.pseudo_key_len = klen;
    cfg.pseudo_prefix_preserving = pp;
    cfg.client_key = ck;
    struct sn_agg *a = sn_agg_new(&cfg, emit_cb, o);
    assert_non_null(a);
    for (int i = 0; i < n; i++) {
        struct sn_agg_flowinfo fi = info(clients[i], "23.32.1.10", 35994);
        struct sn_agg_flow *f = sn_agg_flow_start(a, &fi, T0);
        fi.sni = "api.openai.com";
        fi.ja4 = JA4_PY;
        sn_agg_flow_settle(a, f, &fi);
        sn_agg_packet(a, f, 0, 100, 60, T0 + 1);
        sn_agg_flow_end(a, f, T0 + 2);
    }
    sn_agg_finish(a);
    sn_agg_free(a);
}

static void test_pseudonyms(void **state)
{
    (void)state;
    static const char *const cl[] = {"10.9.8.7", "10.9.8.200", "2001:db8:1:2::5"};
    const uint8_t k1[] = "0123456789abcdef-key-one";
    const uint8_t k2[] = "0123456789abcdef-key-two";
    struct out a = {0}, b = {0}, c = {0};
    run_keyed(&a, k1, sizeof(k1) - 1, false, SN_CLIENT_IP, cl, 3);
    run_keyed(&b, k1, sizeof(k1) - 1, false, SN_CLIENT_IP, cl, 3);
    run_keyed(&c, k2, sizeof(k2) - 1, false, SN_CLIENT_IP, cl, 3);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.buf, b.buf); /* stable per key */
    assert_null(strstr(a.buf, "10.9.8"));
    assert_null(strstr(a.buf, "2001:db8"));
    assert_non_null(strstr(a.buf, "\"pseudonymised\":true"));
    char hx[SN_PSEUDO_HEXLEN + 1], want[64];
    struct sn_addr ad;
    struct sn_pseudo *ps1 = sn_pseudo_new(k1, sizeof(k1) - 1);
    struct sn_pseudo *ps2 = sn_pseudo_new(k2, sizeof(k2) - 1);
    assert_non_null(ps1);
    assert_non_null(ps2);
    assert_int_equal(sn_addr_parse("10.9.8.7", &ad), 0);
    sn_pseudo_hmac(ps1, &ad, 32, hx);
    snprintf(want, sizeof(want), "\"id\":\"p:%s\"", hx);
    assert_non_null(strstr(a.buf, want));
    assert_null(strstr(c.buf, want)); /* another key, another pseudonym */
    for (unsigned i = 0; i < 3; i++) {
        char *x = line_at(&a, i), *y = line_at(&c, i);
        assert_string_not_equal(strstr(x, "\"id\""), strstr(y, "\"id\""));
        free(x), free(y);
    }
    /* prefix-preserving form: same /24 (IPv4) -> same pseudo /24 */
    struct sn_addr x1, x2, p1, p2, q1;
    assert_int_equal(sn_addr_parse("10.9.8.7", &x1), 0);
    assert_int_equal(sn_addr_parse("10.9.8.200", &x2), 0);
    sn_pseudo_prefix(ps1, &x1, &p1);
    sn_pseudo_prefix(ps1, &x2, &p2);
    sn_pseudo_prefix(ps2, &x1, &q1);
    assert_int_equal(p1.family, 4);
    assert_true(sn_addr_in_prefix(&p2, &p1, 24));
    assert_false(sn_addr_in_prefix(&p2, &p1, 32));
    assert_int_not_equal(memcmp(p1.a, x1.a, 4), 0);
    assert_int_not_equal(memcmp(p1.a, q1.a, 4), 0);
    /* the common prefix length is kept exactly: 10.9.8.7 vs 10.9.8.200 share 24 bits */
    assert_int_not_equal(p1.a[3] & 0x80, p2.a[3] & 0x80);
    struct out pp = {0}, pf = {0};
    run_keyed(&pp, k1, sizeof(k1) - 1, true, SN_CLIENT_IP, cl, 3);
    char ab[SN_ADDR_STRLEN];
    snprintf(want, sizeof(want), "\"id\":\"%s\"", sn_addr_str(&p1, ab, sizeof(ab)));
    assert_non_null(strstr(pp.buf, want));
    /* prefix keys: the two IPv4 clients share one /24 entry */
    run_keyed(&pf, k1, sizeof(k1) - 1, true, SN_CLIENT_PREFIX, cl, 3);
    assert_int_equal(pf.n, 2);
    sn_addr_mask(&p1, 24);
    snprintf(want, sizeof(want), "\"id\":\"%s/24\"", sn_addr_str(&p1, ab, sizeof(ab)));
    assert_non_null(strstr(pf.buf, want));
    assert_non_null(strstr(pf.buf, "/56\""));
    assert_non_null(strstr(pf.buf, "\"flows\":{\"started\":2,"));
    /* repeated clients (pseudonym cache hits) keep their pseudonym */
    static const char *const rep[] = {"10.9.8.7", "2001:db8:1:2::5", "10.9.8.7",
                                      "2001:db8:1:2::5"};
    struct out r1 = {0}, r2 = {0};
    run_keyed(&r1, k1, sizeof(k1) - 1, true, SN_CLIENT_IP, rep, 4);
    run_keyed(&r2, k1, sizeof(k1) - 1, false, SN_CLIENT_IP, rep, 4);
    assert_int_equal(r1.n, 2);
    assert_int_equal(r2.n, 2);
    sn_pseudo_prefix(ps1, &x1, &p1);
    snprintf(want, sizeof(want), "\"id\":\"%s\",", sn_addr_str(&p1, ab, sizeof(ab)));
    assert_non_null(strstr(r1.buf, want));
    assert_non_null(strstr(r1.buf, "\"flows\":{\"started\":2,"));
    snprintf(want, sizeof(want), "\"id\":\"p:%s\"", hx);
    assert_non_null(strstr(r2.buf, want));
    out_free(&r1), out_free(&r2);
    /* key file loading */
    char path[] = "/tmp/test_agg_keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789abcdef-key-one\n", 25), 25);
    close(fd);
    uint8_t kb[SN_PSEUDO_KEY_MAX];
    size_t kl = 0;
    assert_int_equal(sn_pseudo_load_key(path, kb, sizeof(kb), &kl), 0);
    assert_int_equal(kl, sizeof(k1) - 1);
    assert_memory_equal(kb, k1, kl);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "short\n", 6), 6);
    close(fd);
    assert_int_equal(sn_pseudo_load_key(path, kb, sizeof(kb), &kl), -SN_ECONFIG);
    unlink(path);
    assert_true(sn_pseudo_load_key("/nonexistent/key", kb, sizeof(kb), &kl) < 0);
    /* IPv6: prefix kept down to /64, the interface id replaced */
    struct sn_addr v1, v2, w1, w2;
    assert_int_equal(sn_addr_parse("2001:db8:1:2::5", &v1), 0);
    assert_int_equal(sn_addr_parse("2001:db8:1:3::5", &v2), 0);
    sn_pseudo_prefix(ps1, &v1, &w1);
    sn_pseudo_prefix(ps1, &v2, &w2);
    assert_true(sn_addr_in_prefix(&w2, &w1, 63));
    assert_false(sn_addr_in_prefix(&w2, &w1, 64));
    assert_int_not_equal(memcmp(w1.a + 8, v1.a + 8, 8), 0);
    sn_pseudo_free(ps1);
    sn_pseudo_free(ps2);
    sn_pseudo_free(NULL);
    out_free(&a), out_free(&b), out_free(&c), out_free(&pp), out_free(&pf);
}

/* RFC 4231 test cases 2 and 6 (a key longer than the SHA-256 block). */
static void test_hmac_vectors(void **state)
{
    (void)state;
    static const uint8_t want2[32] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
        0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
        0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    static const uint8_t want6[32] = {
        0x60, 0xe4, 0x31, 0x59, 0x1e, 0xe0, 0xb6, 0x7f, 0x0d, 0x8a, 0x26,
        0xaa, 0xcb, 0xf5, 0xb7, 0x7f, 0x8e, 0x0b, 0xc6, 0x21, 0x37, 0x28,
        0xc5, 0x14, 0x05, 0x46, 0x04, 0x0f, 0x0e, 0xe3, 0x7f, 0x54};
    uint8_t mac[32];
    struct sn_pseudo *p = sn_pseudo_new((const uint8_t *)"Jefe", 4);
    assert_non_null(p);
    const char *m2 = "what do ya want for nothing?";
    sn_pseudo_mac(p, (const uint8_t *)m2, strlen(m2), mac);
    assert_memory_equal(mac, want2, 32);
    sn_pseudo_mac(p, (const uint8_t *)m2, strlen(m2), mac); /* state reused correctly */
    assert_memory_equal(mac, want2, 32);
    sn_pseudo_free(p);
    uint8_t key[131];
    memset(key, 0xaa, sizeof(key));
    p = sn_pseudo_new(key, sizeof(key));
    assert_non_null(p);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    sn_pseudo_mac(p, (const uint8_t *)m6, strlen(m6), mac);
    assert_memory_equal(mac, want6, 32);
    sn_pseudo_free(p);
}

static void test_client_keys(void **state)
{
    (void)state;
    static const char *const cl[] = {"10.9.8.7", "10.9.8.200"};
    struct out o = {0};
    run_keyed(&o, NULL, 0, false, SN_CLIENT_IP_JA4, cl, 2);
    assert_non_null(strstr(o.buf, "\"id\":\"10.9.8.7|" JA4_PY "\",\"key\":\"ip+ja4\""));
    out_free(&o);
    run_keyed(&o, NULL, 0, false, SN_CLIENT_PREFIX, cl, 2);
    assert_int_equal(o.n, 1);
    assert_non_null(strstr(o.buf, "\"id\":\"10.9.8.0/24\",\"key\":\"prefix\""));
    assert_string_equal(o.keys, "10.9.8.0/24\n");
    out_free(&o);
    enum sn_client_key k;
    assert_int_equal(sn_agg_parse_client_key("ip+ja4", &k), 0);
    assert_int_equal(k, SN_CLIENT_IP_JA4);
    assert_int_equal(sn_agg_parse_client_key("prefix", &k), 0);
    assert_int_equal(k, SN_CLIENT_PREFIX);
    assert_int_equal(sn_agg_parse_client_key("mac", &k), -SN_ECONFIG);
    uint64_t v;
    assert_int_equal(sn_agg_parse_simhash("00000000000000ff", &v), 0);
    assert_int_equal(v, 255);
    assert_int_equal(sn_agg_parse_simhash("00000000000000f", &v), -SN_EPROTO);
    assert_int_equal(sn_agg_parse_simhash("00000000000000fg", &v), -SN_EPROTO);
}

static uint32_t rnd(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    return (*x >> 8) & 0xffff;
}

/* A deterministic pseudo-random mix of flows, clients, settle times, late and NULL flows,
 * over several windows with a tight entry cap. */
static void random_run(struct out *o, struct drv *d, unsigned seed, bool reverse)
{
    struct sn_agg_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.window_s = 10;
    cfg.grace_s = 2;
    cfg.max_entries = 12;
    cfg.max_flows = 150;
    d->a = sn_agg_new(&cfg, emit_cb, o);
    assert_non_null(d->a);
    enum { NF = 200 };
    struct sn_agg_flow *fl[NF];
    struct sn_agg_flowinfo fi[NF];
    char sni[NF][32];
    uint32_t x = seed;
#define RND() rnd(&x)
    for (int i = 0; i < NF; i++) {
        char ip[32];
        unsigned n3 = RND() % 3, n20 = RND() % 20;
        snprintf(ip, sizeof(ip), "10.0.%u.%u", n3, n20);
        fi[i] = info(ip, "23.32.1.10", RND() % 2 ? 35994 : 0);
        snprintf(sni[i], sizeof(sni[i]), "s%u.example.com", RND() % 5);
        fl[i] = NULL;
    }
    int64_t ts = T0;
    uint64_t ended = 0;
    bool done[NF] = {false}, started[NF] = {false}, settled[NF] = {false};
    for (int step = 0; step < 6000; step++) {
        int i = (int)(RND() % NF);
        if (reverse)
            i = NF - 1 - i;
        ts += RND() % 40000;
        int64_t t = ts - (RND() % 8 == 0 ? (int64_t)(RND() % 3000) * 1000 : 0); /* disorder */
        if (done[i])
            continue;
        if (!started[i]) {
            fl[i] = sn_agg_flow_start(d->a, &fi[i], t);
            started[i] = true;
            continue;
        }
        unsigned r = RND() % 100;
        if (r < 3) {
            sn_agg_flow_end(d->a, fl[i], t);
            done[i] = true;
            ended++;
        } else if (r < 10 && !settled[i]) {
            fi[i].sni = sni[i];
            sn_agg_flow_settle(d->a, fl[i], &fi[i]);
            settled[i] = true;
        } else if (r < 20) {
            int dir = (int)(RND() & 1);
            uint32_t len = RND() % 2000;
            bool synced = RND() % 4 != 0;
            sn_agg_record(d->a, fl[i], dir, 23, len, t, synced);
        } else {
            uint32_t pl = RND() % 3 ? RND() % 1400 : 0;
            pkt(d, fl[i], (int)(RND() & 1), 40 + pl, pl, t);
        }
    }
#undef RND
    for (int i = 0; i < NF; i++)
        if (started[i] && !done[i] && !fl[i]) /* the pipeline ends its NULL flows too */
            sn_agg_flow_end(d->a, NULL, ts);
    sn_agg_finish(d->a);
}

static void test_reconcile_and_determinism(void **state)
{
    (void)state;
    struct out o1 = {0}, o2 = {0}, o3 = {0};
    struct drv d1 = {0}, d2 = {0}, d3 = {0};
    random_run(&o1, &d1, 7, false);
    random_run(&o2, &d2, 7, false);
    random_run(&o3, &d3, 8, false);
    assert_true(o1.n > 20);
    assert_int_equal(o1.len, o2.len);
    assert_memory_equal(o1.buf, o2.buf, o1.len); /* byte-identical */
    assert_string_equal(o1.keys, o2.keys);
    for (int r = 0; r < 2; r++) {
        struct out *o = r ? &o3 : &o1;
        struct drv *d = r ? &d3 : &d1;
        uint64_t pk[2], by[2], fl[2];
        sum_out(o, pk, by, fl);
        assert_int_equal(pk[0], d->pkts[0]);
        assert_int_equal(pk[1], d->pkts[1]);
        assert_int_equal(by[0], d->bytes[0]);
        assert_int_equal(by[1], d->bytes[1]);
        assert_int_equal(fl[0], fl[1]); /* every started flow ended */
        const struct sn_agg_stats *st = sn_agg_stats(d->a);
        assert_true(st->overflow_entries > 0);
        assert_true(st->flows_pool_full > 0);
        assert_true(st->forced_settles > 0);
        assert_true(st->late_pkts > 0);
        assert_int_equal(st->flows_started, st->flows_ended);
        /* windows appear in time order */
        double prev = 0;
        for (unsigned i = 0; i < o->n; i++) {
            char *l = line_at(o, i);
            double s = strtod(strstr(l, "\"start\":") + 8, NULL);
            assert_true(s >= prev);
            prev = s;
            free(l);
        }
        sn_agg_free(d->a);
    }
    sn_agg_free(d2.a);
    out_free(&o1), out_free(&o2), out_free(&o3);

    /* The same flows inserted in another order give the same fingerprints. */
    struct out p = {0}, q = {0};
    for (int r = 0; r < 2; r++) {
        struct out *o = r ? &q : &p;
        struct drv d = {.a = mk(o, 60, 5, 0)};
        for (int k = 0; k < 5; k++) {
            int i = r ? 4 - k : k;
            char ip[32];
            snprintf(ip, sizeof(ip), "10.0.0.%d", 9 - i);
            struct sn_agg_flowinfo fi = info(ip, "23.32.1.10", 35994);
            struct sn_agg_flow *f = sn_agg_flow_start(d.a, &fi, T0 + 1000);
            int64_t ts = tls_open(&d, f, &fi, T0 + 1000, i % 2 ? "a.example.org" : "b.example.net",
                                  JA4_PY, true);
            struct llm_shape s = {3, 20, 100, 500, 100000, 10000, 100000};
            llm(&d, f, ts, &s, (unsigned)i + 1);
        }
        sn_agg_finish(d.a);
        sn_agg_free(d.a);
    }
    assert_int_equal(p.n, 5);
    assert_string_equal(p.buf, q.buf);
    out_free(&p), out_free(&q);
}

/* SimHash: the same behaviour from 20 addresses in 3 ASNs lands close together, a bulk
 * downloader and a chatty small-object client far away. */
static void test_simhash_similarity(void **state)
{
    (void)state;
    struct out o = {0};
    struct drv d = {.a = mk(&o, 600, 5, 0)};
    static const char *const nets[3] = {"1.128.0.", "12.81.92.", "31.224.0."};
    static const uint32_t asns[3] = {1221, 7018, 3320};
    int64_t base = 1700000400LL * SEC; /* a multiple of 600 s */
    for (int c = 0; c < 20; c++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "%s%d", nets[c % 3], 10 + c);
        struct sn_agg_flowinfo fi = info(ip, "23.32.1.10", 35994);
        fi.client_asn = asns[c % 3];
        int64_t ts = base + c * 1000 * 1000 + 1;
        for (int fl = 0; fl < 2; fl++) {
            struct sn_agg_flow *f = sn_agg_flow_start(d.a, &fi, ts);
            ts = tls_open(&d, f, &fi, ts, "api.openai.com", JA4_PY, true);
            struct llm_shape s = {12, 190, 90, 1000, 250000, 20000, 2000000};
            ts = llm(&d, f, ts, &s, (unsigned)(c * 7 + fl + 1));
            sn_agg_flow_end(d.a, f, ts);
            ts += 5 * SEC;
        }
    }
    /* bulk downloader: big records, few exchanges, another TLS client */
    struct sn_agg_flowinfo bi = info("198.51.100.7", "23.32.1.20", 35994);
    int64_t ts = base + 7 * SEC;
    for (int fl = 0; fl < 2; fl++) {
        struct sn_agg_flow *f = sn_agg_flow_start(d.a, &bi, ts);
        ts = tls_open(&d, f, &bi, ts, "downloads.example.com", JA4_CURL, true);
        struct llm_shape s = {4, 64, 16384, 300, 80000, 1000, 200000};
        ts = llm(&d, f, ts, &s, 3);
        sn_agg_flow_end(d.a, f, ts);
    }
    /* same service and TLS client, other behaviour: one short answer per request */
    struct sn_agg_flowinfo ci = info("198.51.100.9", "23.32.1.10", 35994);
    ts = base + 9 * SEC;
    for (int fl = 0; fl < 2; fl++) {
        struct sn_agg_flow *f = sn_agg_flow_start(d.a, &ci, ts);
        ts = tls_open(&d, f, &ci, ts, "api.openai.com", JA4_PY, true);
        struct llm_shape s = {30, 2, 3000, 300, 40000, 1000, 300000};
        ts = llm(&d, f, ts, &s, 5);
        sn_agg_flow_end(d.a, f, ts);
    }
    sn_agg_finish(d.a);
    assert_int_equal(o.n, 22);
    uint64_t h[20];
    int n = 0;
    uint64_t bulk = 0, chat = 0;
    for (unsigned i = 0; i < o.n; i++) {
        char *l = line_at(&o, i);
        if (strstr(l, "198.51.100.7"))
            bulk = simhash_of(l);
        else if (strstr(l, "198.51.100.9"))
            chat = simhash_of(l);
        else
            h[n++] = simhash_of(l);
        free(l);
    }
    assert_int_equal(n, 20);
    unsigned maxin = 0, minout = 64;
    for (int i = 0; i < 20; i++) {
        for (int k = i + 1; k < 20; k++) {
            unsigned dd = sn_simhash_dist(h[i], h[k]);
            maxin = dd > maxin ? dd : maxin;
        }
        unsigned db = sn_simhash_dist(h[i], bulk);
        minout = db < minout ? db : minout;
    }
    unsigned minchat = 64;
    for (int i = 0; i < 20; i++) {
        unsigned dc = sn_simhash_dist(h[i], chat);
        minchat = dc < minchat ? dc : minchat;
    }
    print_message("simhash: max distance among 20 = %u, min to bulk = %u, to chat = %u\n",
                  maxin, minout, minchat);
    assert_true(maxin <= 8);
    assert_true(minout >= 20);
    assert_true(minchat >= 12);
    sn_agg_free(d.a);
    out_free(&o);
}

/* Reproduction vectors for consumers (also in fingerprint.schema.json). */
static void test_simhash_definition(void **state)
{
    (void)state;
    assert_int_equal(sn_simhash_hash64("h:response_records:8", 20), 0xc177f648e8793b93ULL);
    assert_int_equal(sn_simhash_hash64("service:openai.com", 18), 0x7beffbdba42f619dULL);
    struct sn_simhash s;
    sn_simhash_init(&s);
    assert_int_equal(sn_simhash_final(&s), 0);
    sn_simhash_add(&s, "service:openai.com", 18, 500);
    assert_int_equal(sn_simhash_final(&s), 0x7beffbdba42f619dULL); /* one feature: its hash */
    sn_simhash_add(&s, "h:response_records:8", 20, 1000);
    assert_int_equal(sn_simhash_final(&s), 0xc177f648e8793b93ULL); /* heavier one wins */
    assert_int_equal(sn_simhash_dist(0, ~0ULL), 64);
    assert_int_equal(sn_simhash_dist(0xf0, 0x0f), 8);
}

/* sn_simhash_of (packed counters when it can) equals the feature-by-feature definition, and
 * the two-step hash equals the one-step one. */
static void test_simhash_batch(void **state)
{
    (void)state;
    uint32_t x = 12345;
    uint64_t h[64];
    int64_t w[64];
    for (unsigned it = 0; it < 20000; it++) {
        unsigned n = rnd(&x) % 40, mode = it % 4;
        for (unsigned i = 0; i < n; i++) {
            h[i] = (uint64_t)rnd(&x) << 32 | rnd(&x);
            if (i && rnd(&x) % 3 == 0) /* near-duplicates: ties in many bits */
                h[i] = h[rnd(&x) % i] ^ (1ULL << (rnd(&x) % 64));
            w[i] = mode == 0   ? (int64_t)(rnd(&x) % 1001)
                   : mode == 1 ? (int64_t)(rnd(&x) % 3)
                   : mode == 2 ? (int64_t)(rnd(&x) % 4000) - 500 /* negative: slow path */
                               : (int64_t)(rnd(&x) % 40000);      /* large sums: slow path */
        }
        struct sn_simhash s;
        sn_simhash_init(&s);
        for (unsigned i = 0; i < n; i++)
            sn_simhash_add_hash(&s, h[i], w[i]);
        assert_int_equal(sn_simhash_of(h, w, n), sn_simhash_final(&s));
    }
    uint64_t st = sn_simhash_fnv(SN_SIMHASH_FNV0, "service:", 8);
    assert_int_equal(sn_simhash_mix(sn_simhash_fnv(st, "openai.com", 10)),
                     sn_simhash_hash64("service:openai.com", 18));
}

/* "ratio_down_up" is written as printf("%.3f") would, ties included. */
static void test_ratio_format(void **state)
{
    (void)state;
    static const uint32_t cases[][2] = {
        {1, 16}, {3, 16}, {5, 16}, {1, 8}, {1, 3}, {2, 3}, {1000, 7}, {7, 1000}, {1, 2000},
        {1, 1999}, {1, 2001}, {5, 10000}, {15, 10000}, {25, 10000}, {4294967295u, 1},
        {1, 4294967295u}, {123456789, 1024}, {2049, 4096}, {3, 2048}, {0, 5}, {5, 5},
    };
    uint32_t x = 777;
    for (unsigned i = 0; i < 60; i++) {
        uint32_t up = i < sizeof(cases) / sizeof(cases[0]) ? cases[i][1] : 1 + rnd(&x) % 100000;
        uint32_t down = i < sizeof(cases) / sizeof(cases[0]) ? cases[i][0] : rnd(&x) % 1000000;
        struct out o = {0};
        struct sn_agg *a = mk(&o, 60, 5, 0);
        struct sn_agg_flowinfo fi = info("10.0.0.1", "10.0.0.2", 0);
        struct sn_agg_flow *f = sn_agg_flow_start(a, &fi, T0);
        sn_agg_packet(a, f, 0, up, 0, T0);
        sn_agg_packet(a, f, 1, down, 0, T0 + 1);
        sn_agg_finish(a);
        assert_int_equal(o.n, 1);
        char want[64], *l = line_at(&o, 0);
        snprintf(want, sizeof(want), "\"ratio_down_up\":%.3f,", (double)down / (double)up);
        if (!strstr(l, want))
            fail_msg("%u/%u: want %s in %s", down, up, want, l);
        free(l);
        sn_agg_free(a);
        out_free(&o);
    }
}

/* The largest records: every string at its cap and escaped six-fold, every top-k list full,
 * every histogram bin used (the record buffer is sized once; ASan checks it holds). */
static void test_largest_record(void **state)
{
    (void)state;
    char big[8][300], sensor[200];
    for (unsigned k = 0; k < 8; k++) {
        memset(big[k], 0x01, sizeof(big[k]) - 1);
        big[k][0] = (char)('a' + k); /* distinct values */
        big[k][sizeof(big[k]) - 1] = '\0';
    }
    memset(sensor, '"', sizeof(sensor) - 1);
    sensor[sizeof(sensor) - 1] = '\0';
    for (int mode = 0; mode < 2; mode++) {
        struct out o = {0};
        uint64_t seq = UINT64_MAX - 10;
        struct sn_agg_cfg cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.sensor_id = sensor;
        cfg.run_id = INT64_MIN + 1;
        cfg.seq = &seq;
        cfg.client_key = mode ? SN_CLIENT_IP_JA4 : SN_CLIENT_IP;
        struct sn_agg *a = sn_agg_new(&cfg, emit_cb, &o);
        assert_non_null(a);
        for (unsigned k = 0; k < 8; k++) {
            struct sn_agg_flowinfo fi = info("2001:db8:1234:5678:9abc:def0:1234:5678",
                                             "10.0.0.2", 4294967295u - k);
            fi.service = big[0];
            fi.client_country = big[1];
            fi.client_asn = 4294967295u;
            fi.client_asn_org = big[2];
            fi.sni = big[k];
            fi.ja4 = big[mode ? 1 : (k + 1) % 8]; /* ip+ja4: one client key */
            fi.ja3 = big[(k + 2) % 8];
            fi.alpn = big[(k + 3) % 8];
            struct sn_agg_flow *f = sn_agg_flow_start(a, &fi, T0 + k);
            sn_agg_flow_settle(a, f, &fi);
            for (unsigned b = 0; b < 32; b++) {
                uint32_t len = b ? 1u << (b - 1) : 0;
                sn_agg_packet(a, f, (int)(b & 1), 4294967295u, 4294967295u, T0 + 10 + b);
                sn_agg_record(a, f, 0, 23, len, T0 + 10 + b, true);
                sn_agg_record(a, f, 1, 23, len, T0 + 10 + b, true);
            }
            sn_agg_flow_end(a, f, T0 + 50 * SEC);
        }
        sn_agg_finish(a);
        assert_true(o.n >= 1);
        char *l = find_line(&o, "\"record_bytes_up\":[8,8,8", NULL);
        assert_non_null(l);
        assert_non_null(strstr(l, "\\u0001\\u0001"));
        assert_non_null(strstr(l, "\"sensor\":\"\\\"\\\""));
        assert_non_null(strstr(l, ",\"n\":1}]")); /* full top-k lists */
        print_message("largest record (%s): %zu bytes\n", mode ? "ip+ja4" : "ip", strlen(l));
        free(l);
        sn_agg_free(a);
        out_free(&o);
    }
}

static void test_regdom(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"api.openai.com", "openai.com"},   {"API.OpenAI.com.", "openai.com"},
        {"openai.com", "openai.com"},       {"www.bbc.co.uk", "bbc.co.uk"},
        {"bbc.co.uk", "bbc.co.uk"},         {"a.b.example.com.au", "example.com.au"},
        {"co.uk", "co.uk"},                 {"localhost", "localhost"},
        {"192.0.2.1", "192.0.2.1"},         {"2001:db8::1", "2001:db8::1"},
        {"x.y.myapp.herokuapp.com", "myapp.herokuapp.com"},
        {"generativelanguage.googleapis.com", "googleapis.com"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        size_t n = sn_regdom_get(cases[i][0], strlen(cases[i][0]), out, sizeof(out));
        assert_string_equal(out, cases[i][1]);
        assert_int_equal(n, strlen(cases[i][1]));
    }
    char small[5];
    assert_int_equal(sn_regdom_get("api.openai.com", 14, small, sizeof(small)), 4);
    assert_string_equal(small, "open");
    char e[8];
    assert_int_equal(sn_regdom_get("", 0, e, sizeof(e)), 0);
}

/* ---------- end to end on the generated captures ---------- */

#define FP_DIR "tests/pcap/fp/"

struct tstream { /* per flow and direction: TLS record walk over an in-order stream */
    uint64_t skip;   /* record body bytes still to pass */
    uint8_t hdr[5];
    unsigned hlen;
};

struct pflow {
    struct sn_addr cli, srv;
    uint16_t cport, sport;
    struct sn_agg_flow *f;
    struct sn_agg_flowinfo fi;
    char sni[256];
    struct tstream ts[2];
    bool settled, fin[2];
};

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* The SNI of a ClientHello record body (RFC 8446 4.1.2, RFC 6066 3), or "". Test-only
 * parser of the generated captures; bounds-checked throughout. */
static void ch_sni(const uint8_t *p, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    size_t o = 4 + 2 + 32; /* handshake header, version, random */
    if (n < o + 1)
        return;
    o += 1 + p[o];                          /* session id */
    if (n < o + 2)
        return;
    o += 2 + be16(p + o);                   /* cipher suites */
    if (n < o + 1)
        return;
    o += 1 + p[o];                          /* compression */
    if (n < o + 2)
        return;
    size_t end = o + 2 + be16(p + o);
    o += 2;
    while (o + 4 <= end && end <= n) {
        uint16_t type = be16(p + o), len = be16(p + o + 2);
        o += 4;
        if (o + len > end)
            return;
        if (type == 0 && len >= 5) {
            size_t nl = be16(p + o + 3);
            if (5 + nl <= len && nl < cap) {
                memcpy(out, p + o + 5, nl);
                out[nl] = '\0';
            }
            return;
        }
        o += len;
    }
}

/* Walks the payload for record headers; calls sn_agg_record for each. */
static void walk(struct sn_agg *a, struct pflow *pf, int dir, const uint8_t *p, size_t n,
                 int64_t ts)
{
    struct tstream *s = &pf->ts[dir];
    size_t o = 0;
    while (o < n) {
        if (s->skip) {
            size_t k = n - o < s->skip ? n - o : (size_t)s->skip;
            s->skip -= k;
            o += k;
            continue;
        }
        s->hdr[s->hlen++] = p[o++];
        if (s->hlen < 5)
            continue;
        s->hlen = 0;
        uint32_t len = be16(s->hdr + 3);
        sn_agg_record(a, pf->f, dir, s->hdr[0], len, ts, true);
        if (s->hdr[0] == 22 && dir == 0 && !pf->settled && o + len <= n) {
            ch_sni(p + o, len, pf->sni, sizeof(pf->sni));
            pf->fi.sni = pf->sni;
            pf->fi.ja4 = strstr(pf->sni, "download") ? JA4_CURL : JA4_PY;
            sn_agg_flow_settle(a, pf->f, &pf->fi);
            pf->settled = true;
        }
        s->skip = len;
    }
}

/* Replays a generated capture (Ethernet, IPv4, TCP) through the agg API. Returns the
 * number of packets; pk/by get the per-direction totals. */
static unsigned replay(struct sn_agg *a, const char *path, uint64_t pk[2], uint64_t by[2])
{
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, eb);
    if (!pc)
        fail_msg("%s: %s (run tests/tools/gen_traffic.py)", path, eb);
    assert_int_equal(pcap_datalink(pc), DLT_EN10MB);
    enum { MAXF = 64 };
    struct pflow *fl = calloc(MAXF, sizeof(*fl));
    unsigned nf = 0, np = 0;
    struct pcap_pkthdr *h;
    const uint8_t *d;
    pk[0] = pk[1] = by[0] = by[1] = 0;
    while (pcap_next_ex(pc, &h, &d) == 1) {
        np++;
        assert_true(h->caplen >= 54 && be16(d + 12) == 0x0800 && d[14 + 9] == 6);
        int64_t ts = (int64_t)h->ts.tv_sec * SEC + h->ts.tv_usec;
        const uint8_t *ip = d + 14;
        unsigned ihl = (ip[0] & 15u) * 4u, iplen = be16(ip + 2);
        const uint8_t *tcp = ip + ihl;
        unsigned thl = (tcp[12] >> 4) * 4u;
        uint8_t flags = tcp[13];
        size_t pl = iplen - ihl - thl;
        struct sn_addr src = {.family = 4}, dst = {.family = 4};
        memcpy(src.a, ip + 12, 4);
        memcpy(dst.a, ip + 16, 4);
        uint16_t sp = be16(tcp), dp = be16(tcp + 2);
        struct pflow *pf = NULL;
        int dir = 0;
        for (unsigned i = 0; i < nf; i++) {
            if (!sn_addr_cmp(&fl[i].cli, &src) && fl[i].cport == sp && fl[i].sport == dp)
                pf = &fl[i], dir = 0;
            else if (!sn_addr_cmp(&fl[i].cli, &dst) && fl[i].cport == dp && fl[i].sport == sp)
                pf = &fl[i], dir = 1;
            if (pf && (pf->fin[0] || pf->fin[1]) && (flags & 0x02)) /* port reuse */
                pf = NULL;
            if (pf)
                break;
        }
        if (!pf) {
            assert_true(flags & 0x02);
            if (nf == MAXF) { /* recycle ended slots */
                unsigned k = 0;
                for (unsigned i = 0; i < nf; i++)
                    if (fl[i].f)
                        fl[k++] = fl[i];
                nf = k;
                memset(&fl[nf], 0, (MAXF - nf) * sizeof(*fl));
            }
            assert_true(nf < MAXF);
            pf = &fl[nf++];
            pf->cli = src, pf->srv = dst, pf->cport = sp, pf->sport = dp;
            pf->fi.client = src;
            pf->fi.server = dst;
            pf->fi.server_port = dp;
            pf->fi.server_asn = 35994;
            pf->f = sn_agg_flow_start(a, &pf->fi, ts);
            dir = 0;
        }
        sn_agg_packet(a, pf->f, dir, iplen, (uint32_t)pl, ts);
        pk[dir]++;
        by[dir] += iplen;
        if (pl)
            walk(a, pf, dir, tcp + thl, pl, ts);
        bool both = pf->fin[0] && pf->fin[1];
        if (flags & 0x01)
            pf->fin[dir] = true;
        /* ends on RST, or on the last ACK after both FINs */
        if (pf->f && ((flags & 0x04) || (both && !(flags & 0x01)))) {
            sn_agg_flow_end(a, pf->f, ts);
            pf->f = NULL;
        }
    }
    free(fl);
    pcap_close(pc);
    sn_agg_finish(a);
    return np;
}

static void test_pcap_llm(void **state)
{
    (void)state;
    struct out o = {0};
    struct sn_agg *a = mk(&o, 3600, 5, 0);
    uint64_t pk[2], by[2], s[2], sb[2], fl[2];
    unsigned np = replay(a, FP_DIR "llm_stream.pcap", pk, by);
    assert_true(np > 10000);
    assert_int_equal(o.n, 1);
    sum_out(&o, s, sb, fl);
    assert_int_equal(s[0], pk[0]);
    assert_int_equal(s[1], pk[1]);
    assert_int_equal(sb[0], by[0]);
    assert_int_equal(sb[1], by[1]);
    char *l = line_at(&o, 0);
    assert_non_null(strstr(l, "\"service\":{\"name\":\"openai.com\",\"source\":\"sni\","
                              "\"snis\":[{\"v\":\"api.openai.com\",\"n\":1}]"));
    assert_non_null(strstr(l, "\"exchanges\":{\"n\":50,\"method\":\"records\""));
    assert_int_equal(num(l, "\"response_records\":"), 50 * 200);
    assert_int_equal(num(l, "\"request_bytes\":"), 50 * 1024);
    uint64_t b[SN_AGG_HIST_BINS];
    hist(l, "response_records", b);
    assert_int_equal(b[8], 50);
    hist(l, "record_bytes_up", b);
    assert_int_equal(b[11], 50);
    assert_non_null(strstr(l, "\"flows\":{\"started\":1,\"ended\":1,\"active\":1}"));
    free(l);
    sn_agg_free(a);
    out_free(&o);
}

static void test_pcap_similarity(void **state)
{
    (void)state;
    struct out o = {0}, q = {0};
    struct sn_agg *a = mk(&o, 600, 5, 0);
    uint64_t pk[2], by[2], s[2], sb[2], fl[2];
    replay(a, FP_DIR "llm_20clients.pcap", pk, by);
    sum_out(&o, s, sb, fl);
    assert_int_equal(s[0] + s[1], pk[0] + pk[1]);
    assert_int_equal(sb[0] + sb[1], by[0] + by[1]);
    assert_int_equal(o.n, 20);
    uint64_t h[20];
    for (unsigned i = 0; i < 20; i++) {
        char *l = line_at(&o, i);
        h[i] = simhash_of(l);
        assert_non_null(strstr(l, "\"name\":\"openai.com\""));
        assert_non_null(strstr(l, "\"method\":\"records\""));
        free(l);
    }
    struct sn_agg *b = mk(&q, 600, 5, 0);
    replay(b, FP_DIR "bulk_download.pcap", pk, by);
    const char *dump = getenv("SN_AGG_DUMP"); /* for tests/tools/fp_simhash.py checks */
    if (dump) {
        FILE *df = fopen(dump, "w");
        assert_non_null(df);
        fwrite(o.buf, 1, o.len, df);
        fwrite(q.buf, 1, q.len, df);
        fclose(df);
    }
    assert_int_equal(q.n, 1);
    char *bl = line_at(&q, 0);
    uint64_t bulk = simhash_of(bl);
    sum_out(&q, s, sb, fl);
    assert_int_equal(sb[1], by[1]);
    unsigned maxin = 0, minout = 64;
    for (int i = 0; i < 20; i++) {
        for (int k = i + 1; k < 20; k++) {
            unsigned dd = sn_simhash_dist(h[i], h[k]);
            maxin = dd > maxin ? dd : maxin;
        }
        unsigned db = sn_simhash_dist(h[i], bulk);
        minout = db < minout ? db : minout;
    }
    print_message("pcap simhash: max distance among 20 = %u, min to bulk = %u\n", maxin, minout);
    assert_true(maxin <= 8);
    assert_true(minout >= 20);
    free(bl);
    sn_agg_free(a);
    sn_agg_free(b);
    out_free(&o);
    out_free(&q);
}

/* Two replays of the same capture are byte-identical. */
static void test_pcap_determinism(void **state)
{
    (void)state;
    struct out o1 = {0}, o2 = {0};
    uint64_t pk[2], by[2];
    struct sn_agg *a = mk(&o1, 60, 5, 0), *b = mk(&o2, 60, 5, 0);
    replay(a, FP_DIR "llm_20clients.pcap", pk, by);
    replay(b, FP_DIR "llm_20clients.pcap", pk, by);
    assert_true(o1.n > 20); /* 60 s windows: several per client */
    assert_int_equal(o1.len, o2.len);
    assert_memory_equal(o1.buf, o2.buf, o1.len);
    sn_agg_free(a);
    sn_agg_free(b);
    out_free(&o1);
    out_free(&o2);
}

int main(void)
{
    /* the pcap tests open files relative to the repository root */
    if (access(FP_DIR, F_OK) != 0 && access("../" FP_DIR, F_OK) == 0 && chdir("..") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_exact),
        cmocka_unit_test(test_window_boundaries),
        cmocka_unit_test(test_tls13_handshake),
        cmocka_unit_test(test_exchange_idle_close),
        cmocka_unit_test(test_bursts_and_desync),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_pseudonyms),
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_client_keys),
        cmocka_unit_test(test_reconcile_and_determinism),
        cmocka_unit_test(test_simhash_similarity),
        cmocka_unit_test(test_simhash_definition),
        cmocka_unit_test(test_simhash_batch),
        cmocka_unit_test(test_ratio_format),
        cmocka_unit_test(test_largest_record),
        cmocka_unit_test(test_regdom),
        cmocka_unit_test(test_pcap_llm),
        cmocka_unit_test(test_pcap_similarity),
        cmocka_unit_test(test_pcap_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
