/* Unit tests for the flow table (sensor/flow.c): direction and client choice, counters,
 * TCP close with linger, idle and active timeouts, eviction when full, flush order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "decode.h"
#include "flow.h"

#define MAX_ENDS 64

struct ended {
    struct sn_flow f;
    enum sn_flow_end why;
};

static struct ended ends[MAX_ENDS];
static int n_ends;

static void on_end(void *ctx, struct sn_flow *f, enum sn_flow_end why)
{
    (void)ctx;
    if (n_ends < MAX_ENDS) {
        ends[n_ends].f = *f;
        ends[n_ends].why = why;
    }
    n_ends++;
}

static struct sn_flow_table *table(uint32_t max, uint32_t idle, uint32_t active)
{
    n_ends = 0;
    struct sn_flow_cfg cfg = {.max = max, .idle_s = idle, .active_s = active, .vlan_key = true,
                              .on_end = on_end};
    struct sn_flow_table *t = sn_flow_table_new(&cfg);
    assert_non_null(t);
    return t;
}

static struct sn_pkt pkt(const char *src, uint16_t sport, const char *dst, uint16_t dport,
                         uint8_t proto, uint8_t flags, uint32_t ip_len, uint32_t payload,
                         int64_t ts)
{
    struct sn_pkt p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(sn_addr_parse(src, &p.src), 0);
    assert_int_equal(sn_addr_parse(dst, &p.dst), 0);
    p.ipver = p.src.family;
    p.sport = sport;
    p.dport = dport;
    p.proto = proto;
    p.tcp_flags = flags;
    p.ip_len = ip_len;
    p.payload_len = payload;
    p.ts_us = ts;
    return p;
}

static struct sn_flow *feed(struct sn_flow_table *t, struct sn_pkt p, int *dir, bool *is_new)
{
    struct sn_flow *f = sn_flow_packet(t, &p, dir, is_new);
    assert_non_null(f);
    return f;
}

static void test_tcp_handshake_both_directions(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 60, 0);
    int dir;
    bool nw;
    /* Server has the lower address: the SYN still decides who the client is. */
    struct sn_flow *f = feed(t, pkt("10.0.0.9", 40000, "10.0.0.1", 443, 6, SN_TCP_SYN, 60, 0, 1000000), &dir, &nw);
    assert_true(nw);
    assert_int_equal(dir, 0);
    f = feed(t, pkt("10.0.0.1", 443, "10.0.0.9", 40000, 6, SN_TCP_SYN | SN_TCP_ACK, 60, 0, 1000100), &dir, &nw);
    assert_false(nw);
    assert_int_equal(dir, 1);
    f = feed(t, pkt("10.0.0.9", 40000, "10.0.0.1", 443, 6, SN_TCP_ACK | SN_TCP_PSH, 552, 500, 1000200), &dir, &nw);
    assert_int_equal(dir, 0);
    assert_int_equal(f->client_port, 40000);
    assert_int_equal(f->server_port, 443);
    assert_false(f->mid_stream);
    assert_int_equal(f->d[0].pkts, 2);
    assert_int_equal(f->d[0].bytes, 612);
    assert_int_equal(f->d[0].payload, 500);
    assert_int_equal(f->d[1].pkts, 1);
    assert_int_equal(f->d[0].tcp_flags, SN_TCP_SYN | SN_TCP_ACK | SN_TCP_PSH);
    assert_int_equal(sn_flow_active(t), 1);
    sn_flow_flush(t);
    assert_int_equal(n_ends, 1);
    assert_int_equal(ends[0].why, SN_FLOW_END_END);
    assert_int_equal(sn_flow_active(t), 0);
    sn_flow_table_free(t);
}

static void test_synack_first_and_mid_stream(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 60, 0);
    int dir;
    bool nw;
    /* First packet is the SYN+ACK: its receiver is the client. */
    struct sn_flow *f = feed(t, pkt("192.0.2.1", 80, "198.51.100.7", 5555, 6, SN_TCP_SYN | SN_TCP_ACK, 60, 0, 1), &dir, &nw);
    assert_int_equal(dir, 1);
    assert_int_equal(f->client_port, 5555);
    /* Mid-stream: the lower port is the server even when the first packet comes from it. */
    f = feed(t, pkt("192.0.2.1", 443, "198.51.100.7", 6000, 6, SN_TCP_ACK, 1500, 1448, 2), &dir, &nw);
    assert_true(f->mid_stream);
    assert_int_equal(f->server_port, 443);
    assert_int_equal(dir, 1);
    /* UDP: a reply from a well-known port first: reversed. */
    f = feed(t, pkt("192.0.2.53", 53, "198.51.100.7", 33000, 17, 0, 100, 72, 3), &dir, &nw);
    assert_int_equal(f->server_port, 53);
    assert_int_equal(dir, 1);
    /* UDP between two high ports: the first sender is the client. */
    f = feed(t, pkt("198.51.100.9", 40000, "192.0.2.9", 30000, 17, 0, 100, 72, 4), &dir, &nw);
    assert_int_equal(f->client_port, 40000);
    assert_int_equal(dir, 0);
    sn_flow_table_free(t);
}

static void test_fin_linger_then_close(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 60, 0);
    int dir;
    bool nw;
    feed(t, pkt("10.1.1.1", 1234, "10.2.2.2", 80, 6, SN_TCP_SYN, 60, 0, 1000000), &dir, &nw);
    feed(t, pkt("10.1.1.1", 1234, "10.2.2.2", 80, 6, SN_TCP_FIN | SN_TCP_ACK, 52, 0, 2000000), &dir, &nw);
    feed(t, pkt("10.2.2.2", 80, "10.1.1.1", 1234, 6, SN_TCP_FIN | SN_TCP_ACK, 52, 0, 2000100), &dir, &nw);
    /* The last ACK after both FINs still belongs to the flow. */
    struct sn_flow *f = feed(t, pkt("10.1.1.1", 1234, "10.2.2.2", 80, 6, SN_TCP_ACK, 52, 0, 2000200), &dir, &nw);
    assert_false(nw);
    assert_int_equal(f->d[0].pkts, 3);
    assert_int_equal(n_ends, 0);
    /* A packet of another flow well after the linger ends it with reason fin. */
    feed(t, pkt("10.9.9.9", 1, "10.8.8.8", 2, 17, 0, 40, 12, 2000200 + SN_FLOW_CLOSED_LINGER_US + 1), &dir, &nw);
    assert_int_equal(n_ends, 1);
    assert_int_equal(ends[0].why, SN_FLOW_END_FIN);
    assert_int_equal(ends[0].f.d[0].pkts, 3);
    sn_flow_table_free(t);
}

static void test_rst_and_port_reuse(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 60, 0);
    int dir;
    bool nw;
    feed(t, pkt("10.1.1.1", 1234, "10.2.2.2", 80, 6, SN_TCP_SYN, 60, 0, 1000000), &dir, &nw);
    feed(t, pkt("10.2.2.2", 80, "10.1.1.1", 1234, 6, SN_TCP_RST | SN_TCP_ACK, 40, 0, 1000100), &dir, &nw);
    /* A new SYN on the same tuple starts a new flow and ends the old one as rst. */
    feed(t, pkt("10.1.1.1", 1234, "10.2.2.2", 80, 6, SN_TCP_SYN, 60, 0, 1000200), &dir, &nw);
    assert_true(nw);
    assert_int_equal(n_ends, 1);
    assert_int_equal(ends[0].why, SN_FLOW_END_RST);
    sn_flow_flush(t);
    assert_int_equal(n_ends, 2);
    assert_int_equal(ends[1].why, SN_FLOW_END_END);
    sn_flow_table_free(t);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 10, 0);
    int dir;
    bool nw;
    feed(t, pkt("10.0.0.1", 1000, "10.0.0.2", 53, 17, 0, 60, 32, 1000000), &dir, &nw);
    feed(t, pkt("10.0.0.3", 1000, "10.0.0.2", 53, 17, 0, 60, 32, 5000000), &dir, &nw);
    sn_flow_expire(t, 11000001, 0);
    assert_int_equal(n_ends, 1);
    assert_int_equal(ends[0].why, SN_FLOW_END_IDLE);
    assert_int_equal(ends[0].f.client.a[3], 1);
    assert_int_equal(sn_flow_stats(t)->timeouts_idle, 1);
    sn_flow_table_free(t);
}

static void test_active_timeout_interim(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 600, 30);
    int dir;
    bool nw;
    for (int i = 0; i < 100; i++)
        feed(t, pkt("10.0.0.1", 1000, "10.0.0.2", 443, 6, SN_TCP_ACK, 100, 60, 1000000LL * i), &dir, &nw);
    /* Interim records at 30 s, 60 s and 90 s; each holds only its own interval's packets. */
    assert_int_equal(n_ends, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ends[i].why, SN_FLOW_END_ACTIVE);
        assert_int_equal(ends[i].f.d[0].pkts, 30);
    }
    sn_flow_flush(t);
    assert_int_equal(n_ends, 4);
    assert_int_equal(ends[3].f.d[0].pkts, 10);
    sn_flow_table_free(t);
}

static void test_eviction_when_full(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 600, 0);
    int dir;
    bool nw;
    char ip[32];
    for (int i = 0; i < 20; i++) {
        snprintf(ip, sizeof(ip), "10.0.1.%d", i + 1);
        feed(t, pkt(ip, 1000, "10.0.0.2", 80, 17, 0, 60, 32, 1000 + i), &dir, &nw);
    }
    assert_int_equal(sn_flow_active(t), 16);
    assert_int_equal(sn_flow_stats(t)->evicted, 4);
    assert_int_equal(n_ends, 4);
    /* The least recently active flows went first. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ends[i].why, SN_FLOW_END_EVICTED);
        assert_int_equal(ends[i].f.client.a[3], i + 1);
    }
    sn_flow_table_free(t);
}

static void test_vlan_in_key_and_ipv6(void **state)
{
    (void)state;
    struct sn_flow_table *t = table(16, 600, 0);
    int dir;
    bool nw;
    struct sn_pkt a = pkt("2001:db8::1", 5000, "2001:db8::2", 443, 6, SN_TCP_SYN, 80, 0, 1);
    a.vlan = 10;
    struct sn_pkt b = a;
    b.vlan = 20;
    struct sn_flow *fa = feed(t, a, &dir, &nw);
    struct sn_flow *fb = feed(t, b, &dir, &nw);
    assert_true(nw);
    assert_ptr_not_equal(fa, fb);
    assert_int_equal(sn_flow_active(t), 2);
    assert_int_equal(fb->client.family, 6);
    sn_flow_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_handshake_both_directions),
        cmocka_unit_test(test_synack_first_and_mid_stream),
        cmocka_unit_test(test_fin_linger_then_close),
        cmocka_unit_test(test_rst_and_port_reuse),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_active_timeout_interim),
        cmocka_unit_test(test_eviction_when_full),
        cmocka_unit_test(test_vlan_in_key_and_ipv6),
    };
    return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
