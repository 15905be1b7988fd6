/* Unit tests for sensor/x509.c: our DER walker against libcrypto, which stays the oracle.
 *
 * 1. Every certificate under tests/data/x509 (cut out of the test captures, plus a few made
 *    by gen.sh; see SOURCES.md): whatever the walker takes must decode exactly as the
 *    libcrypto path does, and every certificate from a capture must be taken.
 * 2. Certificates built here with libcrypto: every name attribute type the walker knows
 *    (its short name must be OpenSSL's), every ASCII character first, inside, last and alone
 *    in a value, each string type, multi-valued RDNs, serials, times and SANs.
 * 3. Every prefix and many one-byte changes of real certificates: the walker either declines
 *    or agrees with libcrypto.
 * Run from the repository root (make test does); SN_X509_DATA=dir overrides the path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "x509.h"

static const char *data_dir(void)
{
    const char *d = getenv("SN_X509_DATA");
    return d && *d ? d : "tests/data/x509";
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        if (k == 0)
            break;
        n += k;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void print_info(const char *tag, const struct sn_x509_info *x)
{
    fprintf(stderr, "  %s: subject=[%s] issuer=[%s] serial=%s nb=%s na=%s key=%s/%u/%s san=%u/%u\n",
            tag, x->subject, x->issuer, x->serial, x->not_before, x->not_after, x->key_type,
            x->key_bits, x->curve, x->n_san, x->n_san_total);
    for (size_t i = 0; i < x->n_san; i++)
        fprintf(stderr, "    san[%zu]=%s\n", i, sn_x509_san(x, i));
}

/* Decodes with both paths. Returns 1 when the walker took it (and then it must agree),
 * 0 when it declined. */
static int check_one(const char *what, const uint8_t *der, size_t len)
{
    struct sn_x509_info a, b;
    int rf = sn_x509_parse_fast(&a, der, len);
    int rl = sn_x509_parse_libcrypto(&b, der, len);
    if (rf != 0)
        return 0;
    if (rl != 0 || memcmp(&a, &b, sizeof(a)) != 0) {
        fprintf(stderr, "%s: walker and libcrypto differ (libcrypto rc %d)\n", what, rl);
        print_info("walker", &a);
        print_info("libcrypto", &b);
        fail();
    }
    /* The cached entry point gives the same, twice. */
    struct sn_x509_info c;
    assert_int_equal(sn_x509_parse(&c, der, len), 0);
    assert_memory_equal(&c, &b, sizeof(c));
    assert_int_equal(sn_x509_parse(&c, der, len), 0);
    assert_memory_equal(&c, &b, sizeof(c));
    return 1;
}

/* ---- 1. certificate files ------------------------------------------------------------ */

/* Capture certificates the walker leaves to libcrypto on purpose. */
static bool known_decline(const char *file)
{
    static const char *const list[] = {
        "45f7246e18837abc.der", /* badcurveball.pcap: explicit EC curve parameters */
    };
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        if (strcmp(file, list[i]) == 0)
            return true;
    return false;
}

static void test_files_match_libcrypto(void **state)
{
    (void)state;
    DIR *d = opendir(data_dir());
    assert_non_null(d);
    struct dirent *e;
    int files = 0, taken = 0, capture_declined = 0;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".der") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", data_dir(), e->d_name);
        size_t len = 0;
        uint8_t *der = read_all(path, &len);
        assert_non_null(der);
        struct sn_x509_info ref;
        assert_int_equal(sn_x509_parse_libcrypto(&ref, der, len), 0);
        int t = check_one(e->d_name, der, len);
        taken += t;
        if (!t && strncmp(e->d_name, "gen-", 4) != 0 && !known_decline(e->d_name)) {
            fprintf(stderr, "%s: from a capture but declined by the walker\n", e->d_name);
            capture_declined++;
        }
        files++;
        free(der);
    }
    closedir(d);
    fprintf(stderr, "x509 files: %d, walker took %d\n", files, taken);
    assert_true(files >= 80);
    assert_int_equal(capture_declined, 0);
}

/* ---- 2. certificates built here ------------------------------------------------------ */

static EVP_PKEY *test_key(const char *alg)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    if (strcmp(alg, "EC") == 0)
        assert_int_equal(EVP_PKEY_CTX_set_group_name(c, "P-256"), 1);
    if (strcmp(alg, "RSA") == 0)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, 1024), 1);
    assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

/* A signed certificate with the given subject and optional SAN/serial/validity. */
static uint8_t *make_cert(EVP_PKEY *key, X509_NAME *subj, const char *san, long serial,
                          long days, size_t *len)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), days * 86400));
    assert_int_equal(X509_set_subject_name(x, subj), 1);
    assert_int_equal(X509_set_issuer_name(x, subj), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (san) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, NULL) > 0 || X509_sign(x, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    X509_free(x);
    *len = (size_t)n;
    return der;
}

static int check_name(EVP_PKEY *key, X509_NAME *n, const char *what)
{
    size_t len;
    uint8_t *der = make_cert(key, n, NULL, 1, 30, &len);
    int t = check_one(what, der, len);
    OPENSSL_free(der);
    return t;
}

static const char *const known_attrs[] = {
    "CN", "C", "O", "OU", "ST", "L", "serialNumber", "street", "postalCode",
    "businessCategory", "SN", "GN", "title", "description", "name", "initials",
    "generationQualifier", "dnQualifier", "pseudonym", "organizationIdentifier",
    "emailAddress", "DC", "UID", "jurisdictionL", "jurisdictionST", "jurisdictionC",
};

static void test_built_names(void **state)
{
    (void)state;
    EVP_PKEY *key = test_key("EC");
    char what[128];
    int built = 0, taken = 0;

    /* Each attribute type the walker knows: taken, and printed with OpenSSL's short name. */
    for (size_t i = 0; i < sizeof(known_attrs) / sizeof(known_attrs[0]); i++) {
        X509_NAME *n = X509_NAME_new();
        const char *v = strcmp(known_attrs[i], "C") == 0 || strstr(known_attrs[i], "jurisdictionC")
                            ? "DE"
                            : "value";
        assert_int_equal(X509_NAME_add_entry_by_txt(n, known_attrs[i], MBSTRING_ASC,
                                                    (const unsigned char *)v, -1, -1, 0),
                         1);
        snprintf(what, sizeof(what), "attr %s", known_attrs[i]);
        int t = check_name(key, n, what);
        if (!t)
            fprintf(stderr, "%s: declined\n", what);
        assert_int_equal(t, 1);
        X509_NAME_free(n);
    }

    /* Every ASCII character alone, first, inside and last, in each string type. */
    static const int types[] = {V_ASN1_UTF8STRING, V_ASN1_PRINTABLESTRING, V_ASN1_IA5STRING,
                                V_ASN1_T61STRING};
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        for (int c = 0; c < 0x80; c++) {
            unsigned char vals[4][4] = {{(unsigned char)c},
                                        {(unsigned char)c, 'a', 'b'},
                                        {'a', (unsigned char)c, 'b'},
                                        {'a', 'b', (unsigned char)c}};
            size_t lens[4] = {1, 3, 3, 3};
            X509_NAME *n = X509_NAME_new();
            for (int k = 0; k < 4; k++) {
                ASN1_OBJECT *o = OBJ_nid2obj(NID_commonName);
                X509_NAME_ENTRY *ne = X509_NAME_ENTRY_create_by_OBJ(NULL, o, types[ti], vals[k],
                                                                    (int)lens[k]);
                assert_non_null(ne);
                assert_int_equal(X509_NAME_add_entry(n, ne, -1, 0), 1);
                X509_NAME_ENTRY_free(ne);
            }
            snprintf(what, sizeof(what), "type %d char 0x%02x", types[ti], c);
            taken += check_name(key, n, what);
            built++;
            X509_NAME_free(n);
        }
    }

    /* Multi-valued RDNs, an attribute type the walker does not know, non-ASCII text. */
    {
        X509_NAME *n = X509_NAME_new();
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Org", -1, -1, 0);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"a", -1, -1, 0);
        X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"b", -1, -1, -1);
        X509_NAME_add_entry_by_txt(n, "L", MBSTRING_ASC, (const unsigned char *)"c", -1, -1, 0);
        X509_NAME_add_entry_by_txt(n, "ST", MBSTRING_ASC, (const unsigned char *)"d", -1, -1, -1);
        X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"DE", -1, -1, -1);
        assert_int_equal(check_name(key, n, "multi-valued"), 1);
        X509_NAME_free(n);
    }
    {
        X509_NAME *n = X509_NAME_new();
        X509_NAME_add_entry_by_txt(n, "houseIdentifier", MBSTRING_ASC,
                                   (const unsigned char *)"h", -1, -1, 0);
        X509_NAME_add_entry_by_txt(n, "1.2.3.4.5", MBSTRING_ASC, (const unsigned char *)"x", -1,
                                   -1, 0);
        assert_int_equal(check_name(key, n, "unknown attrs"), 0); /* declined, not wrong */
        X509_NAME_free(n);
    }
    {
        X509_NAME *n = X509_NAME_new();
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)"Z\xc3\xbcrich", -1, -1, 0);
        assert_int_equal(check_name(key, n, "utf8"), 0);
        X509_NAME_free(n);
    }
    {
        /* Longer than the output buffer: cut the same way. */
        X509_NAME *n = X509_NAME_new();
        char v[61];
        memset(v, 'q', 60);
        v[60] = '\0';
        v[17] = ',';
        for (int i = 0; i < 6; i++)
            X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)v, -1, -1,
                                       0);
        assert_int_equal(check_name(key, n, "long"), 1);
        X509_NAME_free(n);
    }
    fprintf(stderr, "built names: %d, walker took %d\n", built, taken);
    assert_true(taken >= built / 2);
    EVP_PKEY_free(key);
}

static void test_built_keys_serials_sans(void **state)
{
    (void)state;
    static const char *const algs[] = {"EC", "RSA", "ED25519", "ED448", "X25519"};
    static const long serials[] = {0, 1, 127, 128, 255, 256, 0x7fffffffL, -1, -128, -129};
    static const long days[] = {1, 30, 365 * 30, 365 * 80};
    static const char *const sans[] = {
        "DNS:a.example",
        "DNS:a.example,DNS:b.example,IP:192.0.2.1,email:x@a.example,URI:http://a.example/",
        "IP:2001:db8::1",
        "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:u@a.example,DNS:c.example",
        "dirName:dir_sect",
        "RID:1.2.3.4,DNS:d.example",
    };
    char what[96];
    for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
        EVP_PKEY *key = test_key(algs[a]);
        if (strcmp(algs[a], "X25519") == 0) {
            /* cannot sign: sign with an EC key over an X25519 subject key instead */
            EVP_PKEY *signer = test_key("EC");
            X509 *x = X509_new();
            X509_NAME *n = X509_NAME_new();
            X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"x", -1,
                                       -1, 0);
            X509_set_version(x, 2);
            ASN1_INTEGER_set(X509_get_serialNumber(x), 5);
            X509_gmtime_adj(X509_getm_notBefore(x), 0);
            X509_gmtime_adj(X509_getm_notAfter(x), 86400);
            X509_set_subject_name(x, n);
            X509_set_issuer_name(x, n);
            X509_set_pubkey(x, key);
            assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
            unsigned char *der = NULL;
            int len = i2d_X509(x, &der);
            check_one("x25519 key", der, (size_t)len);
            OPENSSL_free(der);
            X509_free(x);
            X509_NAME_free(n);
            EVP_PKEY_free(signer);
            EVP_PKEY_free(key);
            continue;
        }
        X509_NAME *n = X509_NAME_new();
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"k.example",
                                   -1, -1, 0);
        for (size_t s = 0; s < sizeof(serials) / sizeof(serials[0]); s++) {
            for (size_t d = 0; d < sizeof(days) / sizeof(days[0]); d++) {
                size_t len;
                uint8_t *der = make_cert(key, n, s == 0 ? sans[d % 6] : NULL, serials[s],
                                         days[d], &len);
                snprintf(what, sizeof(what), "%s serial %ld days %ld", algs[a], serials[s],
                         days[d]);
                int t = check_one(what, der, len);
                if (serials[s] >= 0 && a < 4 && (s != 0 || d % 6 < 3) && !t) {
                    fprintf(stderr, "%s: declined\n", what);
                    fail();
                }
                OPENSSL_free(der);
            }
        }
        for (size_t k = 0; k < sizeof(sans) / sizeof(sans[0]); k++) {
            if (strncmp(sans[k], "dirName", 7) == 0)
                continue; /* needs a config section */
            size_t len;
            uint8_t *der = make_cert(key, n, sans[k], 9, 30, &len);
            snprintf(what, sizeof(what), "%s san %zu", algs[a], k);
            check_one(what, der, len);
            OPENSSL_free(der);
        }
        X509_NAME_free(n);
        EVP_PKEY_free(key);
    }
}

/* ---- 3. truncated and changed certificates ------------------------------------------- */

static void test_prefixes_and_mutations(void **state)
{
    (void)state;
    static const char *const pick[] = {"gen-escapes.der", "gen-ed25519.der", "gen-rsa1024.der"};
    for (size_t i = 0; i < sizeof(pick) / sizeof(pick[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", data_dir(), pick[i]);
        size_t len = 0;
        uint8_t *der = read_all(path, &len);
        assert_non_null(der);
        struct sn_x509_info x;
        for (size_t n = 0; n < len; n++)
            assert_int_equal(sn_x509_parse_fast(&x, der, n), -SN_EPROTO);
        uint8_t *m = malloc(len);
        assert_non_null(m);
        static const uint8_t repl[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
        int taken = 0;
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t r = 0; r < sizeof(repl); r++) {
                memcpy(m, der, len);
                if (m[pos] == repl[r])
                    continue;
                m[pos] = repl[r];
                char what[96];
                snprintf(what, sizeof(what), "%s byte %zu = 0x%02x", pick[i], pos, repl[r]);
                taken += check_one(what, m, len);
            }
        }
        fprintf(stderr, "%s: %zu bytes, %d changed copies taken by the walker\n", pick[i], len,
                taken);
        free(m);
        free(der);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_match_libcrypto),
        cmocka_unit_test(test_built_names),
        cmocka_unit_test(test_built_keys_serials_sans),
        cmocka_unit_test(test_prefixes_and_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
