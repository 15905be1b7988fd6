/* x509: leaf certificate metadata. See include/x509.h.
 *
 * Two decoders with one output: our DER walker (parse_fast) for the common certificate
 * shapes, and libcrypto (parse_libcrypto: d2i_X509 and X509_* accessors) for everything the
 * walker does not take. libcrypto's formatting is the reference the walker reproduces.
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
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cursor.h"
#include "err.h"
#include "json.h"
#include "digest.h"

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

static bool der_sha256(const uint8_t *der, size_t len, unsigned char md[32])
{
    unsigned int mdlen = 0;
    return EVP_Digest(der, len, md, &mdlen, sn_digest_sha256(), NULL) == 1 && mdlen == 32;
}

/* ---- Our DER walker ----------------------------------------------------------------------
 * d2i_X509 builds every field of the certificate and OpenSSL 3 then runs its provider
 * decoder on the public key: ~1.5 M instructions per certificate, while we print a dozen
 * fields. So certificates are walked here, over the bounded cursor, extracting exactly
 * what the libcrypto path prints and formatting it the same way.
 *
 * The walker takes only a strict, common subset: DER lengths, single-byte tags, names made
 * of ASCII strings with attribute types in name_attrs[], UTCTime/GeneralizedTime in their
 * DER forms, RSA, EC (P-256/384/521) and Ed25519/Ed448 keys, SANs made of primitive
 * names. Anything else (or anything it doubts) goes to the libcrypto path, which stays the
 * reference: the results then match by construction, and tests/test_x509.c checks the
 * walker against it on every certificate of the test captures.
 *
 * RFC 5280 4.1:
 *   Certificate ::= SEQUENCE { tbsCertificate TBSCertificate,
 *        signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
 *   TBSCertificate ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1,
 *        serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name,
 *        validity SEQUENCE { notBefore Time, notAfter Time }, subject Name,
 *        subjectPublicKeyInfo SEQUENCE { algorithm AlgorithmIdentifier,
 *                                        subjectPublicKey BIT STRING },
 *        issuerUniqueID [1] IMPLICIT OPTIONAL, subjectUniqueID [2] IMPLICIT OPTIONAL,
 *        extensions [3] EXPLICIT SEQUENCE OF Extension OPTIONAL }
 */
enum { FAST_OK = 0, FAST_NO = 1 }; /* FAST_NO: not decoded here, use libcrypto */

#define T_BOOL 0x01
#define T_INT 0x02
#define T_BITS 0x03
#define T_OCTETS 0x04
#define T_NULL 0x05
#define T_OID 0x06
#define T_UTF8 0x0c
#define T_NUMERIC 0x12
#define T_PRINTABLE 0x13
#define T_T61 0x14
#define T_IA5 0x16
#define T_UTCTIME 0x17
#define T_GENTIME 0x18
#define T_SEQ 0x30
#define T_SET 0x31

#define NAME_ENTRIES_MAX 32

/* X.690 8.1: one TLV with a low tag number and a definite length in its minimal form
 * (X.690 10.1). Returns the tag with *val covering the contents, or -1 with c failed. */
static int der_tlv(struct sn_cur *c, struct sn_cur *val)
{
    uint8_t tag = sn_cur_u8(c);
    uint8_t l0 = sn_cur_u8(c);
    size_t n = l0;
    if (l0 == 0x81) {
        n = sn_cur_u8(c);
        if (n < 0x80)
            sn_cur_fail(c, -SN_EPROTO);
    } else if (l0 == 0x82) {
        n = sn_cur_u16(c);
        if (n < 0x100)
            sn_cur_fail(c, -SN_EPROTO);
    } else if (l0 == 0x83) {
        n = sn_cur_u24(c);
        if (n < 0x10000)
            sn_cur_fail(c, -SN_EPROTO);
    } else if (l0 >= 0x80) {
        sn_cur_fail(c, -SN_EPROTO); /* indefinite or huge */
    }
    if ((tag & 0x1f) == 0x1f)
        sn_cur_fail(c, -SN_EPROTO); /* high tag number form */
    *val = sn_cur_sub(c, n);
    return c->err ? -1 : tag;
}

static bool der_expect(struct sn_cur *c, int tag, struct sn_cur *val)
{
    return der_tlv(c, val) == tag;
}

static bool der_peek_tag(const struct sn_cur *c, uint8_t tag)
{
    uint8_t b;
    return sn_cur_peek8(c, 0, &b) && b == tag;
}

static bool cur_eq(const struct sn_cur *c, const uint8_t *v, size_t n)
{
    return sn_cur_left(c) == n && memcmp(c->p, v, n) == 0;
}

/* X.690 8.19: what libcrypto's OBJECT decoder accepts: non-empty, the last octet ends a
 * subidentifier, and no subidentifier starts with a 0x80 padding octet. */
static bool oid_ok(const struct sn_cur *o)
{
    size_t n = sn_cur_left(o);
    if (n == 0 || (o->p[n - 1] & 0x80))
        return false;
    for (size_t i = 0; i < n; i++)
        if (o->p[i] == 0x80 && (i == 0 || !(o->p[i - 1] & 0x80)))
            return false;
    return true;
}

/* INTEGER contents that are positive, non-zero-length and minimally encoded; *mag is set
 * to the magnitude (without the 0x00 sign octet), as libcrypto stores it. */
static bool int_positive(const struct sn_cur *v, struct sn_cur *mag)
{
    size_t n = sn_cur_left(v);
    if (n == 0 || (v->p[0] & 0x80))
        return false;
    *mag = *v;
    if (n > 1 && v->p[0] == 0) {
        if (!(v->p[1] & 0x80))
            return false; /* padding libcrypto rejects */
        mag->p++;
    }
    return true;
}

/* AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }, where we
 * take only absent or NULL parameters. *oid is the algorithm; *has_params tells which. */
static bool algid(struct sn_cur *c, struct sn_cur *oid, bool *has_params)
{
    struct sn_cur a, par;
    if (!der_expect(c, T_SEQ, &a) || !der_expect(&a, T_OID, oid) || !oid_ok(oid))
        return false;
    *has_params = sn_cur_left(&a) > 0;
    if (*has_params && (!der_expect(&a, T_NULL, &par) || sn_cur_left(&par) != 0))
        return false;
    return sn_cur_left(&a) == 0 && a.err == 0;
}

/* ---- Names: X509_NAME_print_ex(XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) ----------------
 * RFC 5280 4.1.2.4: Name ::= SEQUENCE OF RelativeDistinguishedName,
 *   RDN ::= SET SIZE (1..MAX) OF SEQUENCE { type OID, value ANY }.
 * Printed most specific first (entries in reverse), ',' between RDNs and '+' inside one,
 * "sn=value" with libcrypto's short name for the type. */
struct name_attr {
    uint8_t len;
    uint8_t oid[11];
    const char *sn;
};

/* Attribute types seen in TLS certificates, with OpenSSL's short names (test_x509 checks
 * each against OBJ_nid2sn). Other types go to libcrypto, which knows hundreds. */
static const struct name_attr name_attrs[] = {
    {3, {0x55, 0x04, 0x03}, "CN"},
    {3, {0x55, 0x04, 0x06}, "C"},
    {3, {0x55, 0x04, 0x0a}, "O"},
    {3, {0x55, 0x04, 0x0b}, "OU"},
    {3, {0x55, 0x04, 0x08}, "ST"},
    {3, {0x55, 0x04, 0x07}, "L"},
    {3, {0x55, 0x04, 0x05}, "serialNumber"},
    {3, {0x55, 0x04, 0x09}, "street"},
    {3, {0x55, 0x04, 0x11}, "postalCode"},
    {3, {0x55, 0x04, 0x0f}, "businessCategory"},
    {3, {0x55, 0x04, 0x04}, "SN"},
    {3, {0x55, 0x04, 0x2a}, "GN"},
    {3, {0x55, 0x04, 0x0c}, "title"},
    {3, {0x55, 0x04, 0x0d}, "description"},
    {3, {0x55, 0x04, 0x29}, "name"},
    {3, {0x55, 0x04, 0x2b}, "initials"},
    {3, {0x55, 0x04, 0x2c}, "generationQualifier"},
    {3, {0x55, 0x04, 0x2e}, "dnQualifier"},
    {3, {0x55, 0x04, 0x41}, "pseudonym"},
    {3, {0x55, 0x04, 0x61}, "organizationIdentifier"},
    {9, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01}, "emailAddress"},
    {10, {0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19}, "DC"},
    {10, {0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01}, "UID"},
    {11, {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x01}, "jurisdictionL"},
    {11, {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x02}, "jurisdictionST"},
    {11, {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x03}, "jurisdictionC"},
};

static const char *name_attr_sn(const struct sn_cur *oid)
{
    for (size_t i = 0; i < sizeof(name_attrs) / sizeof(name_attrs[0]); i++)
        if (cur_eq(oid, name_attrs[i].oid, name_attrs[i].len))
            return name_attrs[i].sn;
    return NULL;
}

/* A bounded output string: bytes beyond cap - 1 are dropped (the names are ASCII here, so
 * this is the libcrypto path's UTF-8-safe cut). */
struct strout {
    char *s;
    size_t cap, n;
};

static void so_put(struct strout *o, const char *p, size_t n)
{
    for (size_t i = 0; i < n && o->n + 1 < o->cap; i++)
        o->s[o->n++] = p[i];
}

/* One ASCII value with RFC 2253 escaping as libcrypto does it with ESC_2253 | ESC_CTRL:
 * ",+\"\\<>;" get a backslash, a leading '#' or ' ' and a trailing ' ' too (a one-character
 * value counts as trailing only), control characters and DEL become \XX. */
static void so_value(struct strout *o, const uint8_t *v, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = v[i];
        bool last = i + 1 == n, first = i == 0 && !last;
        if (c < 0x20 || c == 0x7f) {
            char e[3] = {'\\', hx[c >> 4], hx[c & 15]};
            so_put(o, e, 3);
            continue;
        }
        bool esc = strchr(",+\"\\<>;", c) != NULL || (first && (c == '#' || c == ' ')) ||
                   (last && c == ' ');
        if (esc)
            so_put(o, "\\", 1);
        so_put(o, (const char *)&c, 1);
    }
}

struct name_ent {
    const char *sn;
    const uint8_t *v;
    size_t n;
    unsigned set;
};

static bool name_walk(struct sn_cur *c, char *out, size_t cap)
{
    struct name_ent ent[NAME_ENTRIES_MAX];
    size_t nent = 0;
    unsigned set = 0;
    struct sn_cur name, rdn, atv, oid, val;
    if (!der_expect(c, T_SEQ, &name))
        return false;
    while (sn_cur_left(&name) > 0) {
        if (!der_expect(&name, T_SET, &rdn) || sn_cur_left(&rdn) == 0)
            return false;
        while (sn_cur_left(&rdn) > 0) {
            if (!der_expect(&rdn, T_SEQ, &atv) || !der_expect(&atv, T_OID, &oid) ||
                !oid_ok(&oid))
                return false;
            int tag = der_tlv(&atv, &val);
            if (tag != T_UTF8 && tag != T_PRINTABLE && tag != T_IA5 && tag != T_T61 &&
                tag != T_NUMERIC)
                return false;
            if (sn_cur_left(&atv) != 0 || sn_cur_left(&val) == 0 || nent == NAME_ENTRIES_MAX)
                return false;
            for (const uint8_t *p = val.p; p < val.end; p++)
                if (*p & 0x80)
                    return false; /* libcrypto converts and validates non-ASCII text */
            const char *sn = name_attr_sn(&oid);
            if (!sn)
                return false;
            ent[nent++] = (struct name_ent){sn, val.p, sn_cur_left(&val), set};
        }
        set++;
    }
    if (name.err)
        return false;
    struct strout o = {out, cap, 0};
    for (size_t k = nent; k-- > 0;) {
        if (k + 1 < nent)
            so_put(&o, ent[k].set == ent[k + 1].set ? "+" : ",", 1);
        so_put(&o, ent[k].sn, strlen(ent[k].sn));
        so_put(&o, "=", 1);
        so_value(&o, ent[k].v, ent[k].n);
    }
    out[o.n] = '\0';
    return true;
}

/* ---- Validity ----------------------------------------------------------------------------
 * RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY) or GeneralizedTime
 * YYYYMMDDHHMMSSZ; we take exactly these forms with a real calendar date. */
static bool digits(const uint8_t *p, size_t n, unsigned *v)
{
    unsigned r = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        r = r * 10 + (unsigned)(p[i] - '0');
    }
    *v = r;
    return true;
}

static bool time_walk(struct sn_cur *c, char *out, size_t cap)
{
    static const uint8_t mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    struct sn_cur t;
    int tag = der_tlv(c, &t);
    size_t n = sn_cur_left(&t), yl;
    unsigned y, mo, d, h, mi, s;
    if (tag == T_UTCTIME && n == 13)
        yl = 2;
    else if (tag == T_GENTIME && n == 15)
        yl = 4;
    else
        return false;
    const uint8_t *p = t.p;
    if (!digits(p, yl, &y) || !digits(p + yl, 2, &mo) || !digits(p + yl + 2, 2, &d) ||
        !digits(p + yl + 4, 2, &h) || !digits(p + yl + 6, 2, &mi) ||
        !digits(p + yl + 8, 2, &s) || p[yl + 10] != 'Z')
        return false;
    if (yl == 2)
        y += y < 50 ? 2000 : 1900;
    if (y < 1000 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (unsigned)(mo == 2 && leap) || cap < 21)
        return false;
    /* strftime("%Y-%m-%dT%H:%M:%SZ") of the same date; y has four digits here. */
    unsigned f[6] = {y / 100, y % 100, mo, d, h, mi};
    static const char sep[] = "\0\0--T:"; /* before each field */
    char *o = out;
    for (int i = 0; i < 6; i++) {
        if (i > 1)
            *o++ = sep[i];
        *o++ = (char)('0' + f[i] / 10);
        *o++ = (char)('0' + f[i] % 10);
    }
    *o++ = ':';
    *o++ = (char)('0' + s / 10);
    *o++ = (char)('0' + s % 10);
    *o++ = 'Z';
    *o = '\0';
    return true;
}

/* ---- Public key --------------------------------------------------------------------------
 * RFC 3279 2.3.1 / RFC 5480 2 / RFC 8410 3. */
static const uint8_t OID_RSA[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t OID_EC[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_ED25519[] = {0x2b, 0x65, 0x70};
static const uint8_t OID_ED448[] = {0x2b, 0x65, 0x71};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};

struct curve {
    uint8_t len;
    uint8_t oid[8];
    const char *name; /* OpenSSL's group name */
    int nid;
    uint32_t bits;    /* of the group order, as EVP_PKEY_get_bits reports */
    size_t coord;     /* field element bytes */
};

static const struct curve curves[] = {
    {8, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, "prime256v1", NID_X9_62_prime256v1,
     256, 32},
    {5, {0x2b, 0x81, 0x04, 0x00, 0x22}, "secp384r1", NID_secp384r1, 384, 48},
    {5, {0x2b, 0x81, 0x04, 0x00, 0x23}, "secp521r1", NID_secp521r1, 521, 66},
};
#define NCURVES (sizeof(curves) / sizeof(curves[0]))

/* libcrypto drops an EC key whose point is not on its curve, so we must check that too; the
 * arithmetic stays with libcrypto. The groups are built once and only read afterwards
 * (EC_POINT_oct2point takes the group const), so threads share them. */
static EC_GROUP *curve_groups[NCURVES];
static pthread_once_t curve_once = PTHREAD_ONCE_INIT;

static void curve_groups_new(void)
{
    for (size_t i = 0; i < NCURVES; i++)
        curve_groups[i] = EC_GROUP_new_by_curve_name(curves[i].nid);
    ERR_clear_error();
}

static bool ec_point_on_curve(size_t ci, const uint8_t *pt, size_t n)
{
    pthread_once(&curve_once, curve_groups_new);
    const EC_GROUP *g = curve_groups[ci];
    if (!g)
        return false;
    EC_POINT *p = EC_POINT_new(g);
    bool ok = p && EC_POINT_oct2point(g, p, pt, n, NULL) == 1;
    EC_POINT_free(p);
    ERR_clear_error();
    return ok;
}

static uint32_t mag_bits(const struct sn_cur *m)
{
    size_t n = sn_cur_left(m);
    uint32_t b = 0;
    for (uint8_t top = m->p[0]; top; top >>= 1)
        b++;
    return (uint32_t)(n - 1) * 8 + b;
}

static bool key_walk(struct sn_x509_info *x, struct sn_cur *c)
{
    struct sn_cur spki, alg, oid, bits, par;
    if (!der_expect(c, T_SEQ, &spki) || !der_expect(&spki, T_SEQ, &alg) ||
        !der_expect(&alg, T_OID, &oid) || !oid_ok(&oid) || !der_expect(&spki, T_BITS, &bits) ||
        sn_cur_left(&spki) != 0 || sn_cur_u8(&bits) != 0 || bits.err)
        return false;
    if (cur_eq(&oid, OID_RSA, sizeof(OID_RSA))) {
        /* RFC 3279 2.3.1: parameters NULL; RSAPublicKey ::= SEQUENCE { n, e INTEGER } */
        struct sn_cur rsa, n, e, nm, em;
        if (!der_expect(&alg, T_NULL, &par) || sn_cur_left(&par) || sn_cur_left(&alg) ||
            !der_expect(&bits, T_SEQ, &rsa) || sn_cur_left(&bits) ||
            !der_expect(&rsa, T_INT, &n) || !der_expect(&rsa, T_INT, &e) || sn_cur_left(&rsa) ||
            !int_positive(&n, &nm) || !int_positive(&e, &em) || nm.p[0] == 0 || em.p[0] == 0)
            return false;
        strcpy(x->key_type, "rsa");
        x->key_bits = mag_bits(&nm);
        return true;
    }
    if (cur_eq(&oid, OID_EC, sizeof(OID_EC))) {
        /* RFC 5480 2.1.1: namedCurve parameters; ECPoint uncompressed 04 || X || Y */
        if (!der_expect(&alg, T_OID, &par) || sn_cur_left(&alg))
            return false;
        for (size_t i = 0; i < NCURVES; i++) {
            if (!cur_eq(&par, curves[i].oid, curves[i].len))
                continue;
            size_t n = sn_cur_left(&bits);
            if (n != 1 + 2 * curves[i].coord || bits.p[0] != 0x04 ||
                !ec_point_on_curve(i, bits.p, n))
                return false;
            strcpy(x->key_type, "ec");
            strcpy(x->curve, curves[i].name);
            x->key_bits = curves[i].bits;
            return true;
        }
        return false;
    }
    /* RFC 8410 3: parameters absent, the raw key in the BIT STRING. */
    if (cur_eq(&oid, OID_ED25519, sizeof(OID_ED25519)) && !sn_cur_left(&alg) &&
        sn_cur_left(&bits) == 32) {
        strcpy(x->key_type, "ed25519");
        x->key_bits = 256; /* EVP_PKEY_get_bits, not the 253 of the curve */
        return true;
    }
    if (cur_eq(&oid, OID_ED448, sizeof(OID_ED448)) && !sn_cur_left(&alg) &&
        sn_cur_left(&bits) == 57) {
        strcpy(x->key_type, "ed448");
        x->key_bits = 456;
        return true;
    }
    return false;
}

/* ---- Extensions --------------------------------------------------------------------------
 * RFC 5280 4.1: Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
 *   extnValue OCTET STRING }. 4.2.1.6: GeneralNames ::= SEQUENCE OF GeneralName; we take
 * rfc822Name [1], dNSName [2], URI [6] (IA5String), iPAddress [7] (OCTET STRING) and
 * directoryName [4]. */
static bool san_walk(struct sn_x509_info *x, struct sn_cur *v)
{
    struct sn_cur names, g;
    if (!der_expect(v, T_SEQ, &names) || sn_cur_left(v))
        return false;
    while (sn_cur_left(&names) > 0) {
        int tag = der_tlv(&names, &g);
        if (tag == 0xa4) {
            /* directoryName [4] EXPLICIT Name: must decode (as a Name we take) */
            char scratch[SN_X509_NAME_MAX];
            if (!name_walk(&g, scratch, sizeof(scratch)) || sn_cur_left(&g))
                return false;
            continue;
        }
        if (tag != 0x81 && tag != 0x82 && tag != 0x86 && tag != 0x87)
            return false;
        if (tag != 0x82)
            continue;
        /* Same rules as add_sans() on the libcrypto path. */
        x->n_san_total++;
        size_t slen = sn_cur_left(&g);
        if (slen == 0 || x->n_san >= SN_X509_SAN_MAX || memchr(g.p, 0, slen) ||
            x->san_len + slen + 1 > sizeof(x->san))
            continue;
        memcpy(x->san + x->san_len, g.p, slen);
        x->san_len += slen;
        x->san[x->san_len++] = '\0';
        x->n_san++;
    }
    return names.err == 0;
}

static bool ext_walk(struct sn_x509_info *x, struct sn_cur *c)
{
    struct sn_cur wrap, exts, ext, oid, crit, val, san = {NULL, NULL, 0};
    int nsan = 0;
    if (!der_expect(c, 0xa3, &wrap) || !der_expect(&wrap, T_SEQ, &exts) || sn_cur_left(&wrap))
        return false;
    while (sn_cur_left(&exts) > 0) {
        if (!der_expect(&exts, T_SEQ, &ext) || !der_expect(&ext, T_OID, &oid) || !oid_ok(&oid))
            return false;
        if (der_peek_tag(&ext, T_BOOL) &&
            (!der_expect(&ext, T_BOOL, &crit) || sn_cur_left(&crit) != 1))
            return false;
        if (!der_expect(&ext, T_OCTETS, &val) || sn_cur_left(&ext))
            return false;
        if (cur_eq(&oid, OID_SAN, sizeof(OID_SAN))) {
            san = val;
            nsan++;
        }
    }
    if (exts.err || nsan > 1) /* libcrypto ignores a repeated SAN: rare, leave it there */
        return false;
    return nsan == 0 || san_walk(x, &san);
}

static int parse_fast(struct sn_x509_info *x, const uint8_t *der, size_t len)
{
    struct sn_cur top = sn_cur_make(der, len), cert, tbs, v, ver, serial, mag, alg, val;
    bool params;
    memset(x, 0, sizeof(*x));
    if (!der_expect(&top, T_SEQ, &cert) || sn_cur_left(&top) ||
        !der_expect(&cert, T_SEQ, &tbs) || !algid(&cert, &alg, &params) ||
        !der_expect(&cert, T_BITS, &v) || sn_cur_left(&cert) || sn_cur_u8(&v) > 7 || v.err)
        return FAST_NO;
    if (der_peek_tag(&tbs, 0xa0)) {
        if (!der_expect(&tbs, 0xa0, &v) || !der_expect(&v, T_INT, &ver) || sn_cur_left(&v) ||
            sn_cur_left(&ver) != 1 || ver.p[0] > 2)
            return FAST_NO;
    }
    if (!der_expect(&tbs, T_INT, &serial) || !int_positive(&serial, &mag) ||
        !algid(&tbs, &alg, &params))
        return FAST_NO;
    if (!name_walk(&tbs, x->issuer, sizeof(x->issuer)) || !der_expect(&tbs, T_SEQ, &val) ||
        !time_walk(&val, x->not_before, sizeof(x->not_before)) ||
        !time_walk(&val, x->not_after, sizeof(x->not_after)) || sn_cur_left(&val) ||
        !name_walk(&tbs, x->subject, sizeof(x->subject)) || !key_walk(x, &tbs))
        return FAST_NO;
    if (sn_cur_left(&tbs) && !ext_walk(x, &tbs))
        return FAST_NO;
    if (sn_cur_left(&tbs) || tbs.err)
        return FAST_NO;
    hex_lower(mag.p, sn_cur_left(&mag), x->serial, sizeof(x->serial));
    return FAST_OK;
}

/* ---- libcrypto path ---------------------------------------------------------------------- */

static int parse_libcrypto(struct sn_x509_info *x, const uint8_t *der, size_t len)
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

    add_sans(x, cert);
    add_key(x, cert);
    X509_free(cert);
    ERR_clear_error(); /* accessors that found nothing (no SAN, odd key) may have queued errors */
    return 0;
}

/* Either path, then the fingerprint (computed once by the caller). */
static int parse_with_md(struct sn_x509_info *x, const uint8_t *der, size_t len,
                         const unsigned char *md)
{
    int rc = 0;
    if (parse_fast(x, der, len) != FAST_OK)
        rc = parse_libcrypto(x, der, len);
    if (rc == 0 && md)
        hex_lower(md, 32, x->sha256, sizeof(x->sha256));
    return rc;
}

int sn_x509_parse_fast(struct sn_x509_info *out, const uint8_t *der, size_t len)
{
    unsigned char md[32];
    if (!der || len == 0 || parse_fast(out, der, len) != FAST_OK) {
        memset(out, 0, sizeof(*out));
        return -SN_EPROTO;
    }
    if (der_sha256(der, len, md))
        hex_lower(md, 32, out->sha256, sizeof(out->sha256));
    return 0;
}

int sn_x509_parse_libcrypto(struct sn_x509_info *out, const uint8_t *der, size_t len)
{
    unsigned char md[32];
    int rc = parse_libcrypto(out, der, len);
    if (rc == 0 && der_sha256(der, len, md))
        hex_lower(md, 32, out->sha256, sizeof(out->sha256));
    return rc;
}

/* ---- Cache ------------------------------------------------------------------------------
 * Servers send the same leaf again and again: each thread keeps a small direct-mapped cache
 * of decoded leaves, keyed by the DER bytes themselves (a hit costs one memcmp, not the
 * SHA-256 of the certificate). Leaves up to CACHE_DER_MAX bytes are cached; larger ones are
 * decoded every time. The cache is per thread (no locks, ~360 KiB), allocated on first use,
 * and freed by a thread-exit destructor. */
#define CACHE_SLOTS 64u
#define CACHE_DER_MAX 4096u

struct cache_slot {
    uint32_t der_len; /* 0: empty */
    struct sn_x509_info info;
    uint8_t der[CACHE_DER_MAX];
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void)
{
    if (pthread_key_create(&cache_key, free) != 0)
        cache_key = (pthread_key_t)-1;
}

/* The slot for a certificate: picked by its length and last eight bytes, which are the end
 * of the signature and so as good as random. */
static struct cache_slot *cache_slot_for(const uint8_t *der, size_t len)
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
    uint64_t h = len;
    for (size_t i = 0; i < 8 && i < len; i++)
        h = h << 8 ^ der[len - 1 - i];
    h *= 0x9e3779b97f4a7c15ull;
    return &cache[(h >> 32) % CACHE_SLOTS];
}

int sn_x509_parse(struct sn_x509_info *x, const uint8_t *der, size_t len)
{
    unsigned char md[32];
    if (!der || len == 0 || len > LONG_MAX)
        return parse_libcrypto(x, der, len);
    struct cache_slot *s = len <= CACHE_DER_MAX ? cache_slot_for(der, len) : NULL;
    if (s && s->der_len == len && memcmp(s->der, der, len) == 0) {
        *x = s->info;
        return 0;
    }
    bool have_md = der_sha256(der, len, md);
    int rc = parse_with_md(x, der, len, have_md ? md : NULL);
    if (rc == 0 && s && have_md) {
        s->der_len = (uint32_t)len;
        memcpy(s->der, der, len);
        s->info = *x;
    }
    return rc;
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
