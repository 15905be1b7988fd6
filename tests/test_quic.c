/* Unit tests for QUIC Initial decryption and ClientHello extraction (sensor/quic.c, and its
 * use through sensor/tls.c).
 *
 * 1. RFC 9001 Appendix A.1 and RFC 9369 Appendix A.1: client Initial key, IV and
 *    header-protection key for the DCID 0x8394c8f03e515708.
 * 2. Real client Initials (tests/data/quic/initials.tsv, UDP payloads cut out with tshark 4.0,
 *    see tests/data/quic/SOURCES.md): QUIC v1 (Chrome, ClientHello in 11 CRYPTO frames), a
 *    ClientHello split over two Initials (also fed in reverse order), QUIC v2, draft-29 with
 *    out-of-order CRYPTO frames; drafts 23, 24, 27, 28, 32 and 34, mvfst's draft-22 and
 *    experimental versions, Google's T050 (gQUIC frames) and a reserved version 0x0a0a0a0a
 *    keyed as draft-29. SNI and JA3 must equal tshark's, JA4 FoxIO's where known.
 * 3. Every prefix of every datagram: a defined result, never a crash.
 * 4. Bad input: a corrupted packet is counted and not used; the flow is given up on after
 *    SN_QUIC_MAX_DATAGRAMS datagrams.
 * 5. Flows interleaved on one ctx, one of them mid-ClientHello.
 * Run from the repository root (make test does); SN_QUIC_FIXTURES=file overrides the path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "quic.h"
#include "tls.h"
#include "tls_hs.h"

#define MAX_FIX 24
#define MAX_DGRAMS 8

struct fixture {
    char name[128], version[16], sni[256], ja3[40], ja4[40];
    uint8_t *dg[MAX_DGRAMS];
    size_t len[MAX_DGRAMS];
    size_t n;
};

static struct fixture fix[MAX_FIX];
static size_t nfix;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static uint8_t *unhex(const char *s, size_t n, size_t *out_len)
{
    uint8_t *b = malloc(n / 2 + 1);
    assert_non_null(b);
    for (size_t i = 0; i + 1 < n; i += 2)
        b[i / 2] = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
    *out_len = n / 2;
    return b;
}

static void copy_field(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int load_fixtures(void **state)
{
    (void)state;
    const char *path = getenv("SN_QUIC_FIXTURES");
    FILE *f = fopen(path ? path : "tests/data/quic/initials.tsv", "r");
    if (!f)
        return -1;
    static char line[65536];
    while (fgets(line, sizeof(line), f) && nfix < MAX_FIX) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        struct fixture *x = &fix[nfix];
        char *col[6];
        size_t nc = 0;
        char *p = line;
        while (nc < 6) {
            col[nc++] = p;
            char *t = strchr(p, '\t');
            if (!t)
                break;
            *t = '\0';
            p = t + 1;
        }
        if (nc != 6)
            continue;
        copy_field(x->name, sizeof(x->name), col[0], strlen(col[0]));
        copy_field(x->version, sizeof(x->version), col[1], strlen(col[1]));
        copy_field(x->sni, sizeof(x->sni), col[2], strlen(col[2]));
        copy_field(x->ja3, sizeof(x->ja3), col[3], strlen(col[3]));
        copy_field(x->ja4, sizeof(x->ja4), col[4], strlen(col[4]));
        char *d = col[5];
        while (*d && *d != '\n' && x->n < MAX_DGRAMS) {
            size_t n = strcspn(d, ",\n");
            x->dg[x->n] = unhex(d, n, &x->len[x->n]);
            x->n++;
            d += n;
            if (*d == ',')
                d++;
        }
        nfix++;
    }
    fclose(f);
    return nfix ? 0 : -1;
}

static int free_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < nfix; i++)
        for (size_t k = 0; k < fix[i].n; k++)
            free(fix[i].dg[k]);
    return 0;
}

static void assert_hex(const uint8_t *b, size_t n, const char *want)
{
    char got[80];
    for (size_t i = 0; i < n; i++)
        snprintf(got + 2 * i, 3, "%02x", b[i]);
    assert_string_equal(got, want);
}

/* RFC 9001 A.1 (v1) and RFC 9369 A.1 (v2): client_initial_secret's key, iv, hp. */
static void test_rfc_keys(void **state)
{
    (void)state;
    static const uint8_t dcid[] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
    struct sn_quic_ctx *cx = sn_quic_ctx_new();
    assert_non_null(cx);
    uint8_t key[16], iv[12], hp[16];
    assert_int_equal(sn_quic_client_keys(cx, SN_QUIC_V1, dcid, sizeof(dcid), key, iv, hp), 0);
    assert_hex(key, 16, "1f369613dd76d5467730efcbe3b1a22d");
    assert_hex(iv, 12, "fa044b2f42a3fd3b46fb255c");
    assert_hex(hp, 16, "9f50449e04a0e810283a1e9933adedd2");
    assert_int_equal(sn_quic_client_keys(cx, SN_QUIC_V2, dcid, sizeof(dcid), key, iv, hp), 0);
    assert_hex(key, 16, "8b1a0bc121284290a29e0971b5cd045d");
    assert_hex(iv, 12, "91f73e2351d8fa91660e909f");
    assert_hex(hp, 16, "45b95e15235d6f45a6b19cbcb0294ba9");
    assert_int_not_equal(sn_quic_client_keys(cx, 0x12345678u, dcid, sizeof(dcid), key, iv, hp),
                         0);
    sn_quic_ctx_free(cx);
}

/* Feeds datagrams (in the order given by idx) through the tls module as the pipeline does
 * and checks the hello against the fixture. */
static void run_flow(struct sn_quic_ctx *cx, const struct fixture *x, const size_t *idx)
{
    struct sn_tls_cfg cfg = {.quic = cx};
    struct sn_tls_stats st = {0};
    struct sn_tls *t = sn_tls_new_quic(&cfg, &st);
    assert_non_null(t);
    assert_true(sn_quic_looks_initial(x->dg[idx[0]], x->len[idx[0]], x->len[idx[0]]));
    for (size_t k = 0; k < x->n; k++) {
        assert_true(sn_tls_wants_payload(t));
        sn_tls_datagram(t, 0, x->dg[idx[k]], x->len[idx[k]]);
        if (k + 1 < x->n)
            assert_true(sn_tls_quic_partial(t));
    }
    assert_false(sn_tls_wants_payload(t));
    assert_true(sn_tls_is_tls(t));
    assert_true(sn_tls_is_quic(t));
    const struct sn_tls_meta *m = sn_tls_meta(t);
    if (x->sni[0])
        assert_string_equal(sn_tls_meta_sni(m), x->sni);
    else
        assert_null(sn_tls_meta_sni(m));
    assert_string_equal(sn_tls_meta_ja3(m), x->ja3);
    assert_true(sn_tls_meta_ja4(m)[0] == 'q');
    if (x->ja4[0])
        assert_string_equal(sn_tls_meta_ja4(m), x->ja4);
    assert_int_equal(st.client_hellos, 1);

    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_tls_json(t, &j);
    sn_json_obj_end(&j);
    assert_true(sn_json_ok(&j));
    char want[64];
    snprintf(want, sizeof(want), "\"quic_version\":\"%s\"", x->version);
    assert_non_null(strstr(j.buf, "\"tls\":{\"transport\":\"quic\""));
    assert_non_null(strstr(j.buf, want));
    assert_null(strstr(j.buf, "record_version"));
    assert_null(strstr(j.buf, "\"c2s\""));
    sn_json_fini(&j);
    sn_tls_free(t);
}

static void test_fixtures(void **state)
{
    (void)state;
    struct sn_quic_ctx *cx = sn_quic_ctx_new();
    assert_non_null(cx);
    size_t idx[MAX_DGRAMS];
    bool multi = false;
    for (size_t i = 0; i < nfix; i++) {
        const struct fixture *x = &fix[i];
        print_message("%s\n", x->name);
        for (size_t k = 0; k < x->n; k++)
            idx[k] = k;
        run_flow(cx, x, idx);
        if (x->n > 1) { /* the ClientHello's Initials in reverse order */
            multi = true;
            for (size_t k = 0; k < x->n; k++)
                idx[k] = x->n - 1 - k;
            run_flow(cx, x, idx);
        }
    }
    assert_true(multi);
    assert_int_equal(sn_quic_ctx_stats(cx)->bad_packets, 0);
    sn_quic_ctx_free(cx);
}

/* Every prefix of every datagram, alone: never a crash, never a hello (a cut Initial fails its
 * AEAD tag or its Length). */
static void test_prefixes(void **state)
{
    (void)state;
    struct sn_quic_ctx *cx = sn_quic_ctx_new();
    assert_non_null(cx);
    for (size_t i = 0; i < nfix; i++) {
        for (size_t k = 0; k < fix[i].n; k++) {
            for (size_t n = 0; n < fix[i].len[k]; n++) {
                uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
                assert_non_null(copy);
                memcpy(copy, fix[i].dg[k], n);
                struct sn_quic *q = sn_quic_new(cx);
                assert_non_null(q);
                const uint8_t *h = NULL;
                size_t hl = 0;
                int r = sn_quic_datagram(q, copy, n, &h, &hl);
                assert_true(r == SN_QUIC_MORE || r == SN_QUIC_DONE);
                sn_quic_free(q);
                free(copy);
            }
        }
    }
    sn_quic_ctx_free(cx);
}

/* A corrupted Initial is counted, not used; after SN_QUIC_MAX_DATAGRAMS the flow is given up
 * on and the tls state says not TLS. */
static void test_bad_packet(void **state)
{
    (void)state;
    struct sn_quic_ctx *cx = sn_quic_ctx_new();
    assert_non_null(cx);
    const struct fixture *x = &fix[0];
    uint8_t *bad = malloc(x->len[0]);
    assert_non_null(bad);
    memcpy(bad, x->dg[0], x->len[0]);
    bad[x->len[0] - 1] ^= 0x01; /* the AEAD tag */
    struct sn_tls_cfg cfg = {.quic = cx};
    struct sn_tls *t = sn_tls_new_quic(&cfg, NULL);
    assert_non_null(t);
    for (unsigned k = 0; k < SN_QUIC_MAX_DATAGRAMS; k++) {
        assert_true(sn_tls_wants_payload(t));
        sn_tls_datagram(t, 0, bad, x->len[0]);
        sn_tls_datagram(t, 1, x->dg[0], x->len[0]); /* server direction: ignored */
    }
    assert_false(sn_tls_wants_payload(t));
    assert_false(sn_tls_is_tls(t));
    assert_false(sn_tls_quic_decrypted(t));
    const struct sn_quic_stats *st = sn_quic_ctx_stats(cx);
    assert_int_equal(st->bad_packets, SN_QUIC_MAX_DATAGRAMS);
    assert_int_equal(st->gave_up, 1);
    assert_int_equal(st->client_hellos, 0);
    sn_tls_free(t);

    /* The good packet after bad ones still decrypts. */
    struct sn_quic *q = sn_quic_new(cx);
    const uint8_t *h;
    size_t hl;
    assert_int_equal(sn_quic_datagram(q, bad, x->len[0], &h, &hl), SN_QUIC_MORE);
    assert_int_equal(sn_quic_datagram(q, x->dg[0], x->len[0], &h, &hl), SN_QUIC_HELLO);
    assert_true(hl > 4 && h[0] == 1);
    assert_int_equal(sn_quic_datagram(q, x->dg[0], x->len[0], &h, &hl), SN_QUIC_DONE);
    sn_quic_free(q);
    free(bad);
    sn_quic_ctx_free(cx);
}

/* Feeds a fixture's datagrams in order to a new flow; returns the hello (copied, owned). */
static uint8_t *hello_alone(struct sn_quic_ctx *cx, const struct fixture *x, size_t *len)
{
    struct sn_quic *q = sn_quic_new(cx);
    assert_non_null(q);
    const uint8_t *h = NULL;
    int r = SN_QUIC_MORE;
    for (size_t k = 0; k < x->n && r == SN_QUIC_MORE; k++)
        r = sn_quic_datagram(q, x->dg[k], x->len[k], &h, len);
    assert_int_equal(r, SN_QUIC_HELLO);
    uint8_t *copy = malloc(*len);
    assert_non_null(copy);
    memcpy(copy, h, *len);
    sn_quic_free(q);
    return copy;
}

/* Feeds one datagram, which must complete the ClientHello `want`. */
static void feed_hello(struct sn_quic *q, const uint8_t *dg, size_t len, const uint8_t *want,
                       size_t wl)
{
    const uint8_t *h = NULL;
    size_t hl = 0;
    assert_int_equal(sn_quic_datagram(q, dg, len, &h, &hl), SN_QUIC_HELLO);
    assert_int_equal(hl, wl);
    assert_memory_equal(h, want, wl);
}

/* Flows of one ctx interleaved: a ClientHello over two Initials (in order, and in reverse)
 * keeps its first part while another flow's whole ClientHello goes through the ctx's
 * reassembly buffer in between. */
static void test_interleaved(void **state)
{
    (void)state;
    struct sn_quic_ctx *cx = sn_quic_ctx_new();
    assert_non_null(cx);
    const struct fixture *one = &fix[0], *two = NULL;
    for (size_t i = 0; i < nfix && !two; i++)
        if (fix[i].n == 2)
            two = &fix[i];
    assert_non_null(two);
    assert_int_equal(one->n, 1);
    size_t l1, l2, hl;
    uint8_t *h1 = hello_alone(cx, one, &l1), *h2 = hello_alone(cx, two, &l2);
    const uint8_t *h;

    struct sn_quic *a = sn_quic_new(cx), *b = sn_quic_new(cx), *c = sn_quic_new(cx),
                   *d = sn_quic_new(cx);
    assert_true(a && b && c && d);
    assert_int_equal(sn_quic_datagram(a, two->dg[0], two->len[0], &h, &hl), SN_QUIC_MORE);
    feed_hello(b, one->dg[0], one->len[0], h1, l1);
    assert_int_equal(sn_quic_datagram(c, two->dg[1], two->len[1], &h, &hl), SN_QUIC_MORE);
    feed_hello(a, two->dg[1], two->len[1], h2, l2);
    feed_hello(d, one->dg[0], one->len[0], h1, l1);
    feed_hello(c, two->dg[0], two->len[0], h2, l2);
    sn_quic_free(a);
    sn_quic_free(b);
    sn_quic_free(c);
    sn_quic_free(d);
    assert_int_equal(sn_quic_ctx_stats(cx)->client_hellos, 6);
    free(h1);
    free(h2);
    sn_quic_ctx_free(cx);
}

static void test_looks_initial(void **state)
{
    (void)state;
    const struct fixture *x = &fix[0];
    assert_true(sn_quic_looks_initial(x->dg[0], x->len[0], x->len[0]));
    assert_false(sn_quic_looks_initial(x->dg[0], x->len[0], 1199)); /* under 1200 bytes */
    assert_false(sn_quic_looks_initial(x->dg[0], 4, x->len[0]));    /* cut before the version */
    assert_false(sn_quic_looks_initial(NULL, 0, 0));
    uint8_t b[8];
    memcpy(b, x->dg[0], sizeof(b));
    b[0] = 0x40; /* short header */
    assert_false(sn_quic_looks_initial(b, sizeof(b), 1200));
    memcpy(b, x->dg[0], sizeof(b));
    b[0] = (uint8_t)(b[0] | 0x30); /* Retry type in v1 */
    assert_false(sn_quic_looks_initial(b, sizeof(b), 1200));
    memcpy(b, x->dg[0], sizeof(b));
    b[4] = 0x02; /* version 0x00000002: unknown */
    assert_false(sn_quic_looks_initial(b, sizeof(b), 1200));
    assert_string_equal(sn_quic_version_name(SN_QUIC_DRAFT29), "draft-29");
    assert_string_equal(sn_quic_version_name(0xff000017u), "draft-23");
    assert_string_equal(sn_quic_version_name(0xff000022u), "draft-34");
    assert_string_equal(sn_quic_version_name(SN_QUIC_MVFST_27), "mvfst-draft-27");
    assert_string_equal(sn_quic_version_name(SN_QUIC_T051), "T051");
    assert_string_equal(sn_quic_version_name(0xdadadadau), "forcing-vn");
    assert_null(sn_quic_version_name(0));
    assert_null(sn_quic_version_name(0xff000016u)); /* draft-22: not decrypted */
    assert_null(sn_quic_version_name(0xff000023u)); /* there was no draft-35 */
    assert_null(sn_quic_version_name(0x51303530u)); /* Q050: a CHLO, not TLS */
    assert_null(sn_quic_version_name(0xfaceb003u));
    assert_null(sn_quic_version_name(0x0a0a0a0bu));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_keys),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_bad_packet),
        cmocka_unit_test(test_interleaved),
        cmocka_unit_test(test_looks_initial),
    };
    return cmocka_run_group_tests_name("quic", tests, load_fixtures, free_fixtures);
}
