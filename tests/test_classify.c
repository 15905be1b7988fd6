/* Unit tests for the nDPI wrapper (sensor/classify.c).
 *
 * Real captures from nDPI's regression set (tests/data/classify/, see SOURCES.md) are read
 * with libpcap, decoded with sn_decode_packet(), grouped into flows by 5-tuple here (the
 * first sender is the client, direction 0), fed to sn_classify_packet() until it says stop,
 * and finished at the end of the capture. Each checked flow's name must equal the protocol
 * that nDPI's own ndpiReader printed for it in <capture>.out (the "[proto: N/NAME]" field).
 * Where nDPI releases disagree (DNS sub-classification by server address), only the master
 * protocol is compared. ai_sni.pcap (made by tests/tools/gen_classify_ai_pcap.py from a real
 * ClientHello) checks rules/ndpi-protos.txt: SNI api.openai.com must give TLS.OpenAI.
 *
 * Data directory: $SN_CLASSIFY_DATA, default tests/data/classify (run from the repo root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "classify.h"
#include "decode.h"
#include "err.h"
#include "json.h"

#define MAX_FLOWS 128
#define PROTOS_FILE "rules/ndpi-protos.txt"

struct tflow {
    uint8_t proto;
    struct sn_addr cli, srv; /* client = sender of the first packet */
    uint16_t cport, sport;
    struct sn_classify_flow *cf;
    bool feeding;
    unsigned pkts, fed;
};

struct run {
    struct tflow f[MAX_FLOWS];
    int n;
    unsigned ip_pkts;
};

static const char *data_dir(void)
{
    const char *d = getenv("SN_CLASSIFY_DATA");
    return d && *d ? d : "tests/data/classify";
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", data_dir(), name);
}

static struct tflow *lookup(struct run *r, const struct sn_pkt *p, int *dir)
{
    for (int i = 0; i < r->n; i++) {
        struct tflow *f = &r->f[i];
        if (f->proto != p->proto)
            continue;
        if (!sn_addr_cmp(&f->cli, &p->src) && !sn_addr_cmp(&f->srv, &p->dst) &&
            f->cport == p->sport && f->sport == p->dport) {
            *dir = 0;
            return f;
        }
        if (!sn_addr_cmp(&f->cli, &p->dst) && !sn_addr_cmp(&f->srv, &p->src) &&
            f->cport == p->dport && f->sport == p->sport) {
            *dir = 1;
            return f;
        }
    }
    return NULL;
}

/* Feeds a whole capture through c, then finishes every flow. */
static void run_pcap(struct sn_classify *c, const char *name, struct run *r)
{
    char path[512], errbuf[PCAP_ERRBUF_SIZE];
    path_of(path, sizeof(path), name);
    pcap_t *pc = pcap_open_offline(path, errbuf);
    if (!pc)
        fail_msg("%s: %s", path, errbuf);
    int dlt = pcap_datalink(pc);
    assert_true(sn_decode_linktype_ok(dlt));
    struct sn_decode dec;
    sn_decode_init(&dec);
    memset(r, 0, sizeof(*r));

    struct pcap_pkthdr *h;
    const u_char *data;
    while (pcap_next_ex(pc, &h, &data) == 1) {
        struct sn_pkt p;
        int64_t ts = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        if (sn_decode_packet(&dec, dlt, data, h->caplen, h->len, ts, &p) != SN_DEC_OK)
            continue;
        r->ip_pkts++;
        int dir = 0;
        struct tflow *f = lookup(r, &p, &dir);
        if (!f) {
            assert_true(r->n < MAX_FLOWS);
            f = &r->f[r->n++];
            f->proto = p.proto;
            f->cli = p.src;
            f->srv = p.dst;
            f->cport = p.sport;
            f->sport = p.dport;
            f->cf = sn_classify_flow_new(c);
            assert_non_null(f->cf);
            f->feeding = true;
        }
        f->pkts++;
        if (f->feeding) {
            f->fed++;
            f->feeding = sn_classify_packet(c, f->cf, p.l3, p.l3_caplen, ts, dir);
        }
    }
    pcap_close(pc);
    for (int i = 0; i < r->n; i++)
        sn_classify_finish(c, r->f[i].cf);
    if (getenv("SN_CLASSIFY_VERBOSE")) { /* shows what nDPI said, for debugging */
        for (int i = 0; i < r->n; i++) {
            char a[SN_ADDR_STRLEN], b[SN_ADDR_STRLEN];
            struct tflow *f = &r->f[i];
            fprintf(stderr, "%s: %s:%u -> %s:%u fed %u/%u: %s\n", name,
                    sn_addr_str(&f->cli, a, sizeof(a)), f->cport,
                    sn_addr_str(&f->srv, b, sizeof(b)), f->sport, f->fed, f->pkts,
                    sn_classify_app_name(c, f->cf));
        }
    }
}

static void free_run(struct sn_classify *c, struct run *r)
{
    for (int i = 0; i < r->n; i++)
        sn_classify_flow_free(c, r->f[i].cf);
    r->n = 0;
}

/* The flow whose client is cli:cport (as text) and server port sport. */
static struct tflow *find(struct run *r, const char *cli, uint16_t cport, uint16_t sport)
{
    struct sn_addr a;
    assert_int_equal(sn_addr_parse(cli, &a), 0);
    for (int i = 0; i < r->n; i++) {
        struct tflow *f = &r->f[i];
        if ((!sn_addr_cmp(&f->cli, &a) && f->cport == cport && f->sport == sport) ||
            (!sn_addr_cmp(&f->srv, &a) && f->sport == cport && f->cport == sport))
            return f;
    }
    fail_msg("no flow %s:%u <-> :%u", cli, cport, sport);
    return NULL;
}

/* From tests/data/classify/<pcap>.out: the NAME of "[proto: N/NAME]" on the line that has
 * both endpoints (" a:pa " and " b:pb ", either order). */
static void expected_proto(const char *pcap, const char *a, const char *b, char *out,
                           size_t len)
{
    char path[512], ea[80], eb[80], line[8192];
    snprintf(path, sizeof(path), "%s/%s.out", data_dir(), pcap);
    snprintf(ea, sizeof(ea), " %s ", a);
    snprintf(eb, sizeof(eb), " %s ", b);
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("%s: cannot open", path);
    out[0] = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (!strstr(line, ea) || !strstr(line, eb))
            continue;
        const char *p = strstr(line, "[proto: ");
        const char *slash = p ? strchr(p, '/') : NULL;
        const char *end = slash ? strchr(slash, ']') : NULL;
        if (end && (size_t)(end - slash - 1) < len) {
            memcpy(out, slash + 1, (size_t)(end - slash - 1));
            out[end - slash - 1] = 0;
        }
        break;
    }
    fclose(fp);
    if (!out[0])
        fail_msg("%s: no line for %s <-> %s", path, a, b);
}

static struct sn_classify *new_ctx(const char *protos)
{
    struct sn_classify_cfg cfg = {.max_pkts = 0, .protos_file = protos};
    struct sn_classify *c = sn_classify_new(&cfg);
    if (!c)
        fail_msg("sn_classify_new: %s", sn_err_last());
    return c;
}

/* Checks one flow against ndpiReader's .out line. */
static void check_flow(struct run *r, const char *pcap, const char *cli, uint16_t cport,
                       const char *srv, uint16_t sport, bool master_only)
{
    char a[80], b[80], want[64];
    /* ndpiReader writes IPv6 endpoints as [addr]:port */
    snprintf(a, sizeof(a), strchr(cli, ':') ? "[%s]:%u" : "%s:%u", cli, cport);
    snprintf(b, sizeof(b), strchr(srv, ':') ? "[%s]:%u" : "%s:%u", srv, sport);
    expected_proto(pcap, a, b, want, sizeof(want));
    struct tflow *f = find(r, cli, cport, sport);
    const char *got = sn_classify_app_name(NULL, f->cf);
    if (master_only) {
        size_t n = strcspn(want, ".");
        if (strncmp(got, want, n) != 0 || (got[n] != 0 && got[n] != '.'))
            fail_msg("%s %s: got %s, want master of %s", pcap, a, got, want);
    } else if (strcmp(got, want) != 0) {
        fail_msg("%s %s: got %s, want %s", pcap, a, got, want);
    }
}

/* Renders the "app" member of a flow as JSON text into out. */
static void app_json(struct sn_classify *c, struct sn_classify_flow *f, char *out, size_t len)
{
    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_classify_json(c, f, &j);
    sn_json_obj_end(&j);
    assert_true(sn_json_ok(&j));
    snprintf(out, len, "%.*s", (int)j.len, j.buf);
    sn_json_fini(&j);
}

/* git (libcurl) to github.com, TLS 1.2: nDPI names it from the SNI. Feeding stops after the
 * server certificate (nDPI's extra dissection), long before the end of the flow. */
static void test_tls_github(void **state)
{
    (void)state;
    struct sn_classify *c = new_ctx(NULL);
    struct run r;
    run_pcap(c, "443-git.pcap", &r);
    check_flow(&r, "443-git.pcap", "192.168.1.13", 55744, "140.82.114.4", 443, false);
    struct tflow *f = find(&r, "192.168.1.13", 55744, 443);
    assert_string_equal(sn_classify_app_name(c, f->cf), "TLS.Github");
    assert_true(sn_classify_known(f->cf));
    assert_true(f->fed < f->pkts);
    assert_true(f->fed <= SN_CLASSIFY_DEFAULT_MAX_PKTS);

    char js[256];
    app_json(c, f->cf, js, sizeof(js));
    assert_string_equal(js, "{\"app\":{\"proto\":\"TLS.Github\",\"master\":\"TLS\","
                            "\"app\":\"Github\",\"category\":\"Collaborative\"}}");

    struct sn_classify_stats st = sn_classify_stats(c);
    assert_int_equal(st.flows, 1);
    assert_int_equal(st.classified, 1);
    assert_int_equal(st.guessed + st.unknown, 0);
    assert_int_equal(st.pkts_fed, f->fed);
    free_run(c, &r);
    sn_classify_free(c);
}

/* sn_classify_tls names a flow from an SNI without nDPI seeing the handshake; each name must
 * be the one nDPI gives when it is fed the real handshake (the feeding tests above, and the
 * bench captures for the address-list guess). */
static void test_tls_from_sni(void **state)
{
    (void)state;
    static const struct {
        const char *sni, *cli, *srv;
        uint16_t cport, sport;
        const char *json;
    } cases[] = {
        /* as test_tls_github, where nDPI read the SNI from 443-git.pcap */
        {"github.com", "192.168.1.13", "140.82.114.4", 55744, 443,
         "{\"app\":{\"proto\":\"TLS.Github\",\"master\":\"TLS\",\"app\":\"Github\","
         "\"category\":\"Collaborative\"}}"},
        /* a custom protocol of rules/ndpi-protos.txt, as test_custom_protos_ai */
        {"api.openai.com", "192.168.1.13", "10.0.0.2", 40001, 443, NULL},
        /* no name matches: plain TLS; on the implicit-TLS mail ports, nDPI's port refinement */
        {"www.example.org", "192.168.1.13", "10.0.0.2", 40009, 443,
         "{\"app\":{\"proto\":\"TLS\",\"master\":\"TLS\",\"category\":\"Web\"}}"},
        {"mail.example.org", "192.168.1.13", "10.0.0.2", 40010, 993,
         "{\"app\":{\"proto\":\"IMAPS\",\"master\":\"IMAPS\",\"category\":\"Email\"}}"},
        {"mail.example.org", "192.168.1.13", "10.0.0.2", 40011, 995,
         "{\"app\":{\"proto\":\"POPS\",\"master\":\"POPS\",\"category\":\"Email\"}}"},
        /* no name matches, but the server is on nDPI's AmazonAWS address list (a flow of
         * tests/bench's TLS capture, where nDPI fed the handshake said the same) */
        {"bolt-prod-s3-eu-west-1.s3.eu-west-1.amazonaws.com", "125.169.68.25", "111.235.79.25",
         59927, 443,
         "{\"app\":{\"proto\":\"TLS.AmazonAWS\",\"master\":\"TLS\",\"app\":\"AmazonAWS\","
         "\"category\":\"Cloud\"}}"},
    };
    struct sn_classify *c = new_ctx(PROTOS_FILE);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_addr cli, srv;
        assert_int_equal(sn_addr_parse(cases[i].cli, &cli), 0);
        assert_int_equal(sn_addr_parse(cases[i].srv, &srv), 0);
        struct sn_classify_flow *f = sn_classify_flow_new(c);
        assert_non_null(f);
        assert_true(sn_classify_tls(c, f, SN_CLASSIFY_TLS_TCP, cases[i].sni, &cli, cases[i].cport, &srv,
                                    cases[i].sport));
        if (cases[i].json) {
            char js[256];
            app_json(c, f, js, sizeof(js));
            if (strcmp(js, cases[i].json) != 0)
                fail_msg("%s: got %s, want %s", cases[i].sni, js, cases[i].json);
        } else {
            assert_string_equal(sn_classify_app_name(c, f), "TLS.OpenAI");
        }
        /* classification is over: nothing more is fed, a second call does nothing */
        uint8_t ip[40] = {0x45};
        assert_false(sn_classify_packet(c, f, ip, sizeof(ip), 1, 0));
        assert_false(sn_classify_tls(c, f, SN_CLASSIFY_TLS_TCP, cases[i].sni, &cli, 1, &srv, 443));
        sn_classify_flow_free(c, f);
    }
    /* no SNI: nothing happens, nDPI is still to be fed */
    struct sn_classify_flow *f = sn_classify_flow_new(c);
    struct sn_addr a;
    assert_int_equal(sn_addr_parse("10.0.0.1", &a), 0);
    assert_false(sn_classify_tls(c, f, SN_CLASSIFY_TLS_TCP, NULL, &a, 1, &a, 443));
    assert_false(sn_classify_tls(c, f, SN_CLASSIFY_TLS_TCP, "", &a, 1, &a, 443));
    assert_false(sn_classify_known(f));
    sn_classify_flow_free(c, f);

    struct sn_classify_stats st = sn_classify_stats(c);
    assert_int_equal(st.by_sni, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(st.classified, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(st.pkts_fed, 0);
    sn_classify_free(c);
}

/* DNS over QUIC (doq.pcapng of nDPI's tests: draft-32, ALPN "doq-i00", no SNI): nDPI 4.2
 * says "QUIC.DoH_DoT" (ndpiReader on that capture); with an SNI the name is still DoH_DoT. */
static void test_quic_doq(void **state)
{
    (void)state;
    struct sn_classify *c = new_ctx(NULL);
    struct sn_addr cli, srv;
    assert_int_equal(sn_addr_parse("::1", &cli), 0);
    assert_int_equal(sn_addr_parse("::1", &srv), 0);
    const char *snis[] = {NULL, "dns.example.org"};
    for (size_t i = 0; i < 2; i++) {
        struct sn_classify_flow *f = sn_classify_flow_new(c);
        assert_non_null(f);
        assert_true(sn_classify_tls(c, f, SN_CLASSIFY_TLS_DOQ, snis[i], &cli, 47826, &srv, 784));
        char js[256];
        app_json(c, f, js, sizeof(js));
        assert_string_equal(js, "{\"app\":{\"proto\":\"QUIC.DoH_DoT\",\"master\":\"QUIC\","
                                "\"app\":\"DoH_DoT\",\"category\":\"Network\"}}");
        sn_classify_flow_free(c, f);
    }
    sn_classify_free(c);
}

/* curl to www.ntop.org and DNS-over-TLS to 8.8.8.8:853 (no SNI). */
static void test_tls_ntop_and_dot(void **state)
{
    (void)state;
    struct sn_classify *c = new_ctx(NULL);
    struct run r;
    run_pcap(c, "443-curl.pcap", &r);
    check_flow(&r, "443-curl.pcap", "192.168.1.13", 55523, "178.62.197.130", 443, false);
    assert_string_equal(sn_classify_app_name(c, find(&r, "192.168.1.13", 55523, 443)->cf),
                        "TLS.ntop");
    free_run(c, &r);

    run_pcap(c, "dns_dot.pcap", &r);
    check_flow(&r, "dns_dot.pcap", "192.168.1.185", 58290, "8.8.8.8", 853, false);
    assert_string_equal(sn_classify_app_name(c, find(&r, "192.168.1.185", 58290, 853)->cf),
                        "TLS.DoH_DoT");
    free_run(c, &r);
    sn_classify_free(c);
}

/* Google QUIC sessions: GMail, YouTube and Google by the CHLO's SNI. */
static void test_quic(void **state)
{
    (void)state;
    struct sn_classify *c = new_ctx(NULL);
    struct run r;
    run_pcap(c, "quic.pcap", &r);
    check_flow(&r, "quic.pcap", "192.168.1.109", 57833, "216.58.212.101", 443, false);
    check_flow(&r, "quic.pcap", "192.168.1.105", 34438, "216.58.210.238", 443, false);
    check_flow(&r, "quic.pcap", "192.168.1.105", 40030, "216.58.201.227", 443, false);
    check_flow(&r, "quic.pcap", "192.168.1.105", 45669, "172.217.16.4", 443, false);
    assert_string_equal(sn_classify_app_name(c, find(&r, "192.168.1.105", 34438, 443)->cf),
                        "QUIC.YouTube");

    char js[256];
    app_json(c, find(&r, "192.168.1.105", 34438, 443)->cf, js, sizeof(js));
    assert_string_equal(js, "{\"app\":{\"proto\":\"QUIC.YouTube\",\"master\":\"QUIC\","
                            "\"app\":\"YouTube\",\"category\":\"Media\"}}");
    free_run(c, &r);
    sn_classify_free(c);
}

/* Plain DNS to 8.8.8.8 in a mixed capture. ndpiReader's snapshot says "DNS", nDPI 4.2 adds
 * the resolver (DNS.Google): compare the master protocol. Also a TLS flow of the same file
 * (wdcp.microsoft.com) for the exact name. */
static void test_dns(void **state)
{
    (void)state;
    struct sn_classify *c = new_ctx(NULL);
    struct run r;
    run_pcap(c, "tls_certificate_too_long.pcap", &r);
    check_flow(&r, "tls_certificate_too_long.pcap", "192.168.1.121", 52251, "8.8.8.8", 53,
               true);
    check_flow(&r, "tls_certificate_too_long.pcap", "192.168.1.121", 51998, "8.8.8.8", 53,
               true);
    check_flow(&r, "tls_certificate_too_long.pcap", "192.168.1.121", 53911, "40.113.10.47", 443,
               false);
    /* IPv6: link-local mDNS to ff02::fb */
    check_flow(&r, "tls_certificate_too_long.pcap", "fe80::1059:a858:f9e7:cf94", 5353, "ff02::fb",
               5353, false);
    const char *dns = sn_classify_app_name(c, find(&r, "192.168.1.121", 52251, 53)->cf);
    assert_true(strncmp(dns, "DNS", 3) == 0);

    struct sn_classify_stats st = sn_classify_stats(c);
    assert_int_equal(st.flows, (uint64_t)r.n);
    assert_int_equal(st.classified + st.guessed + st.unknown, (uint64_t)r.n);
    free_run(c, &r);
    sn_classify_free(c);
}

/* rules/ndpi-protos.txt on ClientHellos whose SNI was set to AI API hosts. */
static void test_custom_protos_ai(void **state)
{
    (void)state;
    static const struct {
        uint16_t port;
        const char *name;
    } want[] = {
        {40001, "TLS.OpenAI"},      /* api.openai.com */
        {40002, "TLS.OpenAI"},      /* chatgpt.com */
        {40003, "TLS.Anthropic"},   /* api.anthropic.com */
        {40004, "TLS.GoogleGemini"}, /* generativelanguage.googleapis.com */
        {40005, "TLS.AWSBedrock"},  /* bedrock-runtime.us-east-1.amazonaws.com */
        {40006, "TLS.AzureOpenAI"}, /* my-resource.openai.azure.com */
        {40007, "TLS.MistralAI"},   /* api.mistral.ai */
        {40008, "TLS.DeepSeek"},    /* api.deepseek.com */
    };
    struct sn_classify *c = new_ctx(PROTOS_FILE);
    struct run r;
    run_pcap(c, "ai_sni.pcap", &r);
    assert_int_equal(r.n, 9);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct tflow *f = find(&r, "192.168.1.13", want[i].port, 443);
        const char *got = sn_classify_app_name(c, f->cf);
        if (strcmp(got, want[i].name) != 0)
            fail_msg("port %u: got %s, want %s", want[i].port, got, want[i].name);
    }
    /* www.example.org: TLS, and no AI name */
    const char *other = sn_classify_app_name(c, find(&r, "192.168.1.13", 40009, 443)->cf);
    assert_true(strncmp(other, "TLS", 3) == 0);
    assert_null(strstr(other, "OpenAI"));

    char js[256];
    app_json(c, find(&r, "192.168.1.13", 40001, 443)->cf, js, sizeof(js));
    assert_non_null(strstr(js, "\"proto\":\"TLS.OpenAI\",\"master\":\"TLS\",\"app\":\"OpenAI\""));
    free_run(c, &r);
    sn_classify_free(c);

    /* Without the file nDPI 4.2 has no such name (later releases may know OpenAI). */
    c = new_ctx(NULL);
    run_pcap(c, "ai_sni.pcap", &r);
    const char *plain = sn_classify_app_name(c, find(&r, "192.168.1.13", 40005, 443)->cf);
    assert_null(strstr(plain, "AWSBedrock"));
    assert_true(strncmp(plain, "TLS", 3) == 0);
    free_run(c, &r);
    sn_classify_free(c);
}

static void test_missing_protos_file(void **state)
{
    (void)state;
    sn_err_clear();
    struct sn_classify_cfg cfg = {.max_pkts = 0, .protos_file = "/nonexistent/ndpi-protos.txt"};
    struct sn_classify *c = sn_classify_new(&cfg);
    assert_null(c);
    const char *msg = sn_err_last();
    assert_non_null(strstr(msg, "classify: "));
    assert_non_null(strstr(msg, "/nonexistent/ndpi-protos.txt"));
    assert_non_null(strstr(msg, "No such file"));
}

/* A protocols file with a bad line is refused whole, with file:line; so is a directory. */
static void test_bad_protos_file(void **state)
{
    (void)state;
    char path[512], want[600];
    path_of(path, sizeof(path), "bad-protos.txt");
    struct sn_classify_cfg cfg = {.max_pkts = 0, .protos_file = path};
    sn_err_clear();
    assert_null(sn_classify_new(&cfg));
    snprintf(want, sizeof(want), "classify: %s:6: expected host:\"name\" (quoted)", path);
    assert_string_equal(sn_err_last(), want);

    cfg.protos_file = data_dir();
    assert_null(sn_classify_new(&cfg));
    assert_non_null(strstr(sn_err_last(), "not a regular file"));

    /* nDPI's own example file (Debian's copy of example/protos.txt) is accepted */
    cfg.protos_file = "/usr/share/doc/libndpi-dev/protos.txt";
    FILE *fp = fopen(cfg.protos_file, "r");
    if (fp) {
        fclose(fp);
        struct sn_classify *c = sn_classify_new(&cfg);
        if (!c)
            fail_msg("%s", sn_err_last());
        sn_classify_free(c);
    }
}

/* max_pkts 2: the TCP handshake alone is fed, then nDPI gives up and guesses by port. */
static void test_max_pkts_guess(void **state)
{
    (void)state;
    struct sn_classify_cfg cfg = {.max_pkts = 2, .protos_file = NULL};
    struct sn_classify *c = sn_classify_new(&cfg);
    assert_non_null(c);
    struct run r;
    run_pcap(c, "443-git.pcap", &r);
    struct tflow *f = find(&r, "192.168.1.13", 55744, 443);
    assert_int_equal(f->fed, 2);
    assert_string_equal(sn_classify_app_name(c, f->cf), "TLS");
    char js[256];
    app_json(c, f->cf, js, sizeof(js));
    assert_non_null(strstr(js, "\"guessed\":true"));
    struct sn_classify_stats st = sn_classify_stats(c);
    assert_int_equal(st.guessed, 1);
    assert_int_equal(st.classified, 0);
    /* finished flows take no more packets, and finishing twice changes nothing */
    sn_classify_finish(c, f->cf);
    assert_false(sn_classify_packet(c, f->cf, (const uint8_t *)"E", 1, 0, 0));
    assert_int_equal(sn_classify_stats(c).guessed, 1);
    free_run(c, &r);
    sn_classify_free(c);
}

/* A flow that never gets a protocol: one UDP packet between unknown ports. */
static void test_unknown_and_bad_input(void **state)
{
    (void)state;
    /* RFC 791 IPv4 header + RFC 768 UDP header, 4 bytes of payload, ports 40000 -> 40001 */
    static const uint8_t udp[] = {
        0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, /* IPv4 */
        0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,                         /* addrs */
        0x9c, 0x40, 0x9c, 0x41, 0x00, 0x0c, 0x00, 0x00,                         /* UDP */
        0xde, 0xad, 0xbe, 0xef};
    struct sn_classify *c = new_ctx(NULL);
    struct sn_classify_flow *f = sn_classify_flow_new(c);
    assert_non_null(f);
    assert_string_equal(sn_classify_app_name(c, f), "Unknown");
    assert_true(sn_classify_packet(c, f, udp, sizeof(udp), 1000000, 0));
    sn_classify_finish(c, f);
    assert_false(sn_classify_known(f));
    assert_string_equal(sn_classify_app_name(c, f), "Unknown");
    char js[128];
    app_json(c, f, js, sizeof(js));
    assert_string_equal(js, "{\"app\":{\"proto\":\"Unknown\"}}");
    assert_int_equal(sn_classify_stats(c).unknown, 1);
    sn_classify_flow_free(c, f);

    /* refused input is counted, not fed */
    f = sn_classify_flow_new(c);
    static const uint8_t v5[20] = {0x55};
    assert_true(sn_classify_packet(c, f, NULL, 40, 0, 0));
    assert_true(sn_classify_packet(c, f, udp, 19, 0, 0));
    assert_true(sn_classify_packet(c, f, v5, sizeof(v5), 0, 0));
    assert_true(sn_classify_packet(c, f, udp, 24, 0, 1)); /* IPv6 nibble check: v4 ok */
    struct sn_classify_stats st = sn_classify_stats(c);
    assert_int_equal(st.bad_pkts, 3);
    assert_int_equal(st.pkts_fed, 2);
    sn_classify_flow_free(c, f); /* freed mid-detection: no leak */

    /* NULL-safety */
    sn_classify_flow_free(c, NULL);
    sn_classify_finish(c, NULL);
    assert_false(sn_classify_packet(c, NULL, udp, sizeof(udp), 0, 0));
    assert_string_equal(sn_classify_app_name(c, NULL), "Unknown");
    assert_false(sn_classify_known(NULL));
    sn_classify_free(c);
    sn_classify_free(NULL);
    struct sn_classify_stats z = sn_classify_stats(NULL);
    assert_int_equal(z.flows, 0);
}

/* Every prefix of a real ClientHello packet (the 4th packet of 443-git.pcap) is fed to a
 * fresh flow after the handshake: a defined result each time, no crash, no leak. */
static void test_prefixes(void **state)
{
    (void)state;
    char path[512], errbuf[PCAP_ERRBUF_SIZE];
    path_of(path, sizeof(path), "443-git.pcap");
    pcap_t *pc = pcap_open_offline(path, errbuf);
    assert_non_null(pc);
    int dlt = pcap_datalink(pc);
    struct sn_decode dec;
    sn_decode_init(&dec);
    static uint8_t pkts[4][2048];
    size_t lens[4];
    int dirs[4] = {0, 1, 0, 0};
    struct pcap_pkthdr *h;
    const u_char *data;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pcap_next_ex(pc, &h, &data), 1);
        struct sn_pkt p;
        assert_int_equal(sn_decode_packet(&dec, dlt, data, h->caplen, h->len, 0, &p),
                         SN_DEC_OK);
        assert_true(p.l3_caplen <= sizeof(pkts[i]));
        memcpy(pkts[i], p.l3, p.l3_caplen);
        lens[i] = p.l3_caplen;
    }
    pcap_close(pc);

    struct sn_classify *c = new_ctx(NULL);
    for (size_t n = 0; n <= lens[3]; n++) {
        struct sn_classify_flow *f = sn_classify_flow_new(c);
        assert_non_null(f);
        for (int i = 0; i < 3; i++)
            (void)sn_classify_packet(c, f, pkts[i], lens[i], 1000 * i, dirs[i]);
        /* a heap copy of exactly n bytes, so ASan sees any read past the prefix */
        uint8_t *cut = malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, pkts[3], n);
        (void)sn_classify_packet(c, f, cut, n, 4000, 0);
        free(cut);
        sn_classify_finish(c, f);
        assert_non_null(sn_classify_app_name(c, f));
        sn_classify_flow_free(c, f);
    }
    sn_classify_free(c);
}

/* Two detection contexts (two workers) live side by side and classify independently. */
static void test_two_contexts(void **state)
{
    (void)state;
    struct sn_classify *a = new_ctx(NULL);
    struct sn_classify *b = new_ctx(PROTOS_FILE);
    struct run r;
    run_pcap(a, "443-git.pcap", &r);
    assert_string_equal(sn_classify_app_name(a, find(&r, "192.168.1.13", 55744, 443)->cf),
                        "TLS.Github");
    free_run(a, &r);
    run_pcap(b, "ai_sni.pcap", &r);
    assert_string_equal(sn_classify_app_name(b, find(&r, "192.168.1.13", 40001, 443)->cf),
                        "TLS.OpenAI");
    free_run(b, &r);
    assert_int_equal(sn_classify_stats(a).flows, 1);
    assert_int_equal(sn_classify_stats(b).flows, 9);
    sn_classify_free(a);
    sn_classify_free(b);
    assert_non_null(sn_classify_ndpi_version());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_github),
        cmocka_unit_test(test_tls_from_sni),
        cmocka_unit_test(test_tls_ntop_and_dot),
        cmocka_unit_test(test_quic_doq),
        cmocka_unit_test(test_quic),
        cmocka_unit_test(test_dns),
        cmocka_unit_test(test_custom_protos_ai),
        cmocka_unit_test(test_missing_protos_file),
        cmocka_unit_test(test_bad_protos_file),
        cmocka_unit_test(test_max_pkts_guess),
        cmocka_unit_test(test_unknown_and_bad_input),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_two_contexts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
