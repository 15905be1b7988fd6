/* x509: leaf certificate metadata through libcrypto. See include/x509.h.
 *
 * No hand-written ASN.1: d2i_X509 decodes, and every field comes from an X509_* accessor.
 */
#define SN_LOG_MOD "x509"

#include "x509.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "json.h"

/* Cuts s (n bytes) to at most cap-1 bytes without splitting a UTF-8 sequence; copies it
 * NUL-terminated into out. */
static void copy_utf8_cut(char *out, size_t cap, const char *s, size_t n)
{
    if (cap == 0)
        return;
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/* RFC 2253 string (most specific RDN first) with UTF-8 left unescaped, so names in other
 * scripts stay readable; the JSON writer escapes whatever is not valid UTF-8. */
static void name_line(const X509_NAME *name, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    out[0] = '\0';
    if (!b)
        return;
    if (name && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        long n = BIO_get_mem_data(b, &data);
        if (n > 0 && data)
            copy_utf8_cut(out, cap, data, (size_t)n);
    }
    BIO_free(b);
}

static void time_iso(const ASN1_TIME *t, char *out, size_t cap)
{
    struct tm tm;
    out[0] = '\0';
    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return;
    if (strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
}

static void hex_lower(const unsigned char *p, size_t n, char *out, size_t cap)
{
    static const char hx[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < n && k + 2 < cap; i++) {
        out[k++] = hx[p[i] >> 4];
        out[k++] = hx[p[i] & 15];
    }
    out[k] = '\0';
}

static void add_sans(struct sn_x509_info *x, X509 *cert)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens)
        return;
    int n = sk_GENERAL_NAME_num(gens);
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (!g || g->type != GEN_DNS)
            continue;
        x->n_san_total++;
        const ASN1_IA5STRING *s = g->d.dNSName;
        int slen = ASN1_STRING_length(s);
        const unsigned char *sp = ASN1_STRING_get0_data(s);
        if (slen <= 0 || !sp || x->n_san >= SN_X509_SAN_MAX)
            continue;
        /* A name with an embedded NUL could not be read back from the packed buffer. */
        if (memchr(sp, 0, (size_t)slen))
            continue;
        if (x->san_len + (size_t)slen + 1 > sizeof(x->san))
            continue;
        memcpy(x->san + x->san_len, sp, (size_t)slen);
        x->san_len += (size_t)slen;
        x->san[x->san_len++] = '\0';
        x->n_san++;
    }
    GENERAL_NAMES_free(gens);
}

static void add_key(struct sn_x509_info *x, X509 *cert)
{
    EVP_PKEY *pk = X509_get0_pubkey(cert); /* not a new reference */
    const char *t = NULL;
    if (!pk)
        return;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA: t = "rsa"; break;
    case EVP_PKEY_RSA_PSS: t = "rsa-pss"; break;
    case EVP_PKEY_EC: t = "ec"; break;
    case EVP_PKEY_DSA: t = "dsa"; break;
    case EVP_PKEY_DH: t = "dh"; break;
    case EVP_PKEY_ED25519: t = "ed25519"; break;
    case EVP_PKEY_ED448: t = "ed448"; break;
    case EVP_PKEY_X25519: t = "x25519"; break;
    case EVP_PKEY_X448: t = "x448"; break;
    default: t = EVP_PKEY_get0_type_name(pk); break;
    }
    if (t)
        copy_utf8_cut(x->key_type, sizeof(x->key_type), t, strlen(t));
    int bits = EVP_PKEY_get_bits(pk);
    x->key_bits = bits > 0 ? (uint32_t)bits : 0;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        size_t gl = 0;
        if (EVP_PKEY_get_group_name(pk, x->curve, sizeof(x->curve), &gl) != 1)
            x->curve[0] = '\0';
    }
}

/* Decoding a certificate (and above all its public key) with OpenSSL 3 costs far more than
 * the rest of a handshake, and servers send the same leaf again and again. So each thread
 * keeps a small direct-mapped cache of decoded leaves keyed by the DER's SHA-256 (which the
 * record needs anyway). The cache is per thread (no locks), allocated on first use, and freed
 * by a thread-exit destructor. */
#define CACHE_SLOTS 64u

struct cache_slot {
    bool used;
    unsigned char md[32];
    struct sn_x509_info info;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void)
{
    if (pthread_key_create(&cache_key, free) != 0)
        cache_key = (pthread_key_t)-1;
}

static struct cache_slot *cache_slot_for(const unsigned char md[32])
{
    pthread_once(&cache_once, cache_key_init);
    if (cache_key == (pthread_key_t)-1)
        return NULL;
    struct cache_slot *cache = pthread_getspecific(cache_key);
    if (!cache) {
        cache = calloc(CACHE_SLOTS, sizeof(*cache));
        if (!cache || pthread_setspecific(cache_key, cache) != 0) {
            free(cache);
            return NULL;
        }
    }
    return &cache[(md[0] | (unsigned)md[1] << 8) % CACHE_SLOTS];
}

static int parse_uncached(struct sn_x509_info *x, const uint8_t *der, size_t len);

int sn_x509_parse(struct sn_x509_info *x, const uint8_t *der, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!der || len == 0 || len > LONG_MAX ||
        EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return parse_uncached(x, der, len);
    struct cache_slot *s = cache_slot_for(md);
    if (s && s->used && memcmp(s->md, md, 32) == 0) {
        *x = s->info;
        return 0;
    }
    int rc = parse_uncached(x, der, len);
    if (rc == 0 && s) {
        s->used = true;
        memcpy(s->md, md, 32);
        s->info = *x;
    }
    return rc;
}

static int parse_uncached(struct sn_x509_info *x, const uint8_t *der, size_t len)
{
    memset(x, 0, sizeof(*x));
    if (!der || len == 0 || len > LONG_MAX)
        return SN_ERR(SN_EPROTO, "empty certificate");
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    if (!cert) {
        ERR_clear_error(); /* the thread's libcrypto error queue is not ours to fill */
        return SN_ERR(SN_EPROTO, "d2i_X509 failed (%zu bytes)", len);
    }

    name_line(X509_get_subject_name(cert), x->subject, sizeof(x->subject));
    name_line(X509_get_issuer_name(cert), x->issuer, sizeof(x->issuer));

    const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
    if (sn) {
        int n = ASN1_STRING_length(sn);
        const unsigned char *d = ASN1_STRING_get0_data(sn);
        if (n > 0 && d)
            hex_lower(d, (size_t)n, x->serial, sizeof(x->serial));
        else
            copy_utf8_cut(x->serial, sizeof(x->serial), "00", 2);
    }
    time_iso(X509_get0_notBefore(cert), x->not_before, sizeof(x->not_before));
    time_iso(X509_get0_notAfter(cert), x->not_after, sizeof(x->not_after));

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) == 1)
        hex_lower(md, mdlen, x->sha256, sizeof(x->sha256));

    add_sans(x, cert);
    add_key(x, cert);
    X509_free(cert);
    ERR_clear_error(); /* accessors that found nothing (no SAN, odd key) may have queued errors */
    return 0;
}

const char *sn_x509_san(const struct sn_x509_info *x, size_t i)
{
    size_t off = 0;
    if (i >= x->n_san)
        return NULL;
    for (size_t k = 0; k < i; k++)
        off += strlen(x->san + off) + 1;
    return x->san + off;
}

static void str_if(struct sn_json *j, const char *key, const char *v)
{
    if (v[0])
        sn_json_str(j, key, v);
}

void sn_x509_json(const struct sn_x509_info *x, struct sn_json *j)
{
    str_if(j, "subject", x->subject);
    str_if(j, "issuer", x->issuer);
    if (x->n_san_total) {
        sn_json_arr_begin(j, "san");
        for (size_t i = 0; i < x->n_san; i++)
            sn_json_str(j, NULL, sn_x509_san(x, i));
        sn_json_arr_end(j);
        if (x->n_san_total > x->n_san)
            sn_json_u64(j, "san_total", x->n_san_total);
    }
    str_if(j, "serial", x->serial);
    str_if(j, "not_before", x->not_before);
    str_if(j, "not_after", x->not_after);
    str_if(j, "sha256", x->sha256);
    str_if(j, "key_type", x->key_type);
    if (x->key_bits)
        sn_json_u64(j, "key_bits", x->key_bits);
    str_if(j, "curve", x->curve);
}
