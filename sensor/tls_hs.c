/* tls_hs: TLS handshake messages (ClientHello, ServerHello/HelloRetryRequest, TLS <= 1.2
 * Certificate, SSLv2-compatible ClientHello) into per-flow metadata and fingerprints.
 * See include/tls_hs.h.
 *
 * A message is parsed into a local struct and copied into the meta only when it parsed
 * cleanly, so a malformed message never leaves half-filled fields behind. Fingerprints need
 * every list value (not only the capped copies kept for JSON), so the ClientHello lists are
 * collected into a scratch area sized from the message (each 16-bit value comes from two
 * distinct input bytes, so len/2 values always suffice) and hashed before returning.
 */
#define SN_LOG_MOD "tls_hs"

#include "tls_hs.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "err.h"
#include "json.h"
#include "tls_fp.h"
#include "x509.h"

#define SNI_MAX 255u       /* RFC 6066 3: HostName, DNS names fit in 253 */
#define ALPN_BUF 128u      /* offered ALPN names, length-prefixed */
#define ALPN_NAME_MAX 63u  /* longer names are cut in the stored copy */
#define VERSIONS_MAX 8u
#define GROUPS_MAX 16u
#define KS_MAX 8u

/* Extension types (IANA TLS ExtensionType registry). */
enum {
    EXT_SNI = 0x0000,
    EXT_GROUPS = 0x000a,
    EXT_POINT_FORMATS = 0x000b,
    EXT_SIGALGS = 0x000d,
    EXT_ALPN = 0x0010,
    EXT_SESSION_TICKET = 0x0023,
    EXT_PSK = 0x0029,
    EXT_EARLY_DATA = 0x002a,
    EXT_SUPPORTED_VERSIONS = 0x002b,
    EXT_KEY_SHARE = 0x0033,
    EXT_ECH = 0xfe0d,  /* draft-ietf-tls-esni encrypted_client_hello */
    EXT_ESNI = 0xffce, /* the older encrypted_server_name drafts */
};

struct tls_client {
    uint16_t record_version, legacy_version;
    uint16_t versions[VERSIONS_MAX]; /* supported_versions, GREASE removed */
    uint8_t n_versions;
    bool has_versions_ext;
    uint16_t groups[GROUPS_MAX];
    uint8_t n_groups;
    uint16_t n_groups_total;
    uint16_t ks_groups[KS_MAX];
    uint8_t n_ks;
    uint16_t n_ks_total;
    char sni[SNI_MAX + 1];
    uint16_t sni_len;
    bool has_sni_ext, sni_truncated;
    uint8_t alpn[ALPN_BUF]; /* entries: u8 length, bytes */
    uint8_t alpn_used, n_alpn;
    uint16_t n_alpn_total;
    char alpn0[ALPN_NAME_MAX + 1]; /* first offered name, NUL-terminated copy */
    uint8_t session_id[32];
    uint8_t session_id_len;
    bool grease, ech, esni, session_ticket, psk, early_data, sslv2;
    char ja3[SN_TLS_FP_MD5_HEX];
    char ja4[SN_TLS_FP_JA4_LEN];
};

struct tls_server {
    uint16_t legacy_version, version, cipher, ks_group;
    bool has_versions_ext, has_ks, psk;
    char alpn[ALPN_NAME_MAX + 1];
    uint8_t alpn_len;
    bool has_alpn;
    uint8_t session_id[32];
    uint8_t session_id_len;
    char ja3s[SN_TLS_FP_MD5_HEX];
};

struct sn_tls_meta {
    struct tls_client ch;
    struct tls_server sh;
    struct sn_x509_info *leaf; /* allocated when a Certificate arrives */
    uint32_t chain_len;
    uint16_t hrr_group, hrr_cipher;
    uint8_t client_hellos; /* saturating */
    bool quic;             /* the hello came in QUIC CRYPTO frames: no record layer */
    bool has_ch, has_sh, hrr, has_hrr_group, has_cert, cert_error, leaf_ok;
    bool ccs[2];
    struct sn_tls_fp_memo *memo; /* borrowed (the pipeline's), may be NULL */
};

struct sn_tls_meta *sn_tls_meta_new(void)
{
    struct sn_tls_meta *m = calloc(1, sizeof(*m));
    if (!m)
        SN_ERR(ENOMEM, "tls meta");
    return m;
}

void sn_tls_meta_free(struct sn_tls_meta *m)
{
    if (!m)
        return;
    free(m->leaf);
    free(m);
}

/* ---- scratch lists for fingerprints ----------------------------------------------- */

struct scratch {
    uint16_t *base, *heap;
    size_t cap, used;
    uint16_t stack[1024];
};

static int scratch_init(struct scratch *s, size_t len)
{
    s->heap = NULL;
    s->used = 0;
    s->cap = len / 2 + 4;
    s->base = s->stack;
    if (s->cap > sizeof(s->stack) / sizeof(s->stack[0])) {
        s->heap = malloc(s->cap * sizeof(uint16_t));
        if (!s->heap)
            return SN_ERR(ENOMEM, "hello scratch (%zu bytes)", len);
        s->base = s->heap;
    }
    return 0;
}

/* Reads the rest of c as big-endian u16 values into the scratch; -SN_EPROTO if odd. */
static int read_u16s(struct scratch *s, struct sn_cur *c, const uint16_t **out, size_t *n)
{
    size_t k = sn_cur_left(c);
    if (k & 1)
        return -SN_EPROTO;
    k /= 2;
    if (s->used + k > s->cap) /* cannot happen: values come from disjoint input bytes */
        return -SN_EPROTO;
    uint16_t *v = s->base + s->used;
    for (size_t i = 0; i < k; i++)
        v[i] = sn_cur_u16(c);
    s->used += k;
    *out = v;
    *n = k;
    return 0;
}

/* ---- names for JSON ----------------------------------------------------------------- */

static const char *version_name(uint16_t v, char buf[24])
{
    switch (v) {
    case 0x0002: return "SSLv2";
    case 0x0300: return "SSLv3";
    case 0x0301: return "TLSv1.0";
    case 0x0302: return "TLSv1.1";
    case 0x0303: return "TLSv1.2";
    case 0x0304: return "TLSv1.3";
    case 0xfb1a: return "TLSv1.3-fizz"; /* Facebook's Fizz, TLS 1.3 based */
    default: break;
    }
    if ((v >> 8) == 0x7f)
        snprintf(buf, 24, "TLSv1.3-draft%u", v & 0xffu);
    else
        snprintf(buf, 24, "0x%04x", v);
    return buf;
}

static bool version_is_13(uint16_t v)
{
    return v == 0x0304 || (v >> 8) == 0x7f || v == 0xfb1a;
}

struct name16 {
    uint16_t v;
    const char *name;
};

/* IANA TLS Cipher Suites: the ones seen in practice; others print as hex. */
static const struct name16 cipher_names[] = {
    {0x0004, "TLS_RSA_WITH_RC4_128_MD5"},
    {0x0005, "TLS_RSA_WITH_RC4_128_SHA"},
    {0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"},
    {0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"},
    {0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"},
    {0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"},
    {0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"},
    {0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"},
    {0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
    {0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
    {0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0x1301, "TLS_AES_128_GCM_SHA256"},
    {0x1302, "TLS_AES_256_GCM_SHA384"},
    {0x1303, "TLS_CHACHA20_POLY1305_SHA256"},
    {0x1304, "TLS_AES_128_CCM_SHA256"},
    {0x1305, "TLS_AES_128_CCM_8_SHA256"},
    {0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
    {0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
    {0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"},
    {0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
    {0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
    {0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"},
    {0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"},
    {0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
    {0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    {0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    {0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
};

/* IANA TLS Supported Groups, including the post-quantum hybrids. */
static const struct name16 group_names[] = {
    {0x0017, "secp256r1"},
    {0x0018, "secp384r1"},
    {0x0019, "secp521r1"},
    {0x001d, "x25519"},
    {0x001e, "x448"},
    {0x0100, "ffdhe2048"},
    {0x0101, "ffdhe3072"},
    {0x0102, "ffdhe4096"},
    {0x0103, "ffdhe6144"},
    {0x0104, "ffdhe8192"},
    {0x0200, "MLKEM512"},
    {0x0201, "MLKEM768"},
    {0x0202, "MLKEM1024"},
    {0x11eb, "SecP256r1MLKEM768"},
    {0x11ec, "X25519MLKEM768"},
    {0x11ed, "SecP384r1MLKEM1024"},
    {0x6399, "X25519Kyber768Draft00"},
};

static const char *name16_find(const struct name16 *t, size_t n, uint16_t v)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].v == v)
            return t[i].name;
    return NULL;
}

/* "0x%04x" without snprintf: every TLS flow record has at least one (the cipher). */
static void json_hex16(struct sn_json *j, const char *key, uint16_t v)
{
    static const char hx[] = "0123456789abcdef";
    char b[6] = {'0', 'x', hx[v >> 12], hx[(v >> 8) & 15], hx[(v >> 4) & 15], hx[v & 15]};
    sn_json_strn(j, key, b, sizeof(b));
}

static void json_group(struct sn_json *j, const char *key, uint16_t g)
{
    const char *n = name16_find(group_names, sizeof(group_names) / sizeof(group_names[0]), g);
    if (n)
        sn_json_str(j, key, n);
    else
        json_hex16(j, key, g);
}

/* ---- ClientHello ------------------------------------------------------------------ */

/* Everything a ClientHello yields, before it is committed to the meta. */
struct ch_parse {
    struct tls_client c;
    struct sn_tls_fp_hello fp;
    bool seen_sni, seen_alpn, seen_groups, seen_pf, seen_sigalgs, seen_sv, seen_ks;
    struct scratch sc; /* last: ch_parse_new zeroes what comes before it */
};

/* A zeroed ch_parse except for the scratch's 2 KiB stack array, which scratch_init sets up
 * and which is written before it is read (zeroing it cost more than parsing a hello). */
static struct ch_parse *ch_parse_new(const struct sn_tls_meta *m)
{
    struct ch_parse *p = malloc(sizeof(*p));
    if (p) {
        memset(p, 0, offsetof(struct ch_parse, sc));
        p->fp.memo = m->memo;
    }
    return p;
}

/* RFC 6066 3:
 *   struct { NameType name_type; select (name_type) { case host_name: HostName; } name; }
 *       ServerName;                       NameType: host_name(0), HostName<1..2^16-1>
 *   struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
 * The first host_name is kept, capped at SNI_MAX bytes (DNS names are at most 253). */
static void ext_sni(struct tls_client *c, struct sn_cur *d)
{
    struct sn_cur list = sn_cur_sub(d, sn_cur_u16(d));
    while (sn_cur_ok(&list) && sn_cur_left(&list) > 0) {
        uint8_t type = sn_cur_u8(&list);
        struct sn_cur name = sn_cur_sub(&list, sn_cur_u16(&list));
        if (!sn_cur_ok(&list))
            break;
        if (type != 0 || c->sni_len > 0)
            continue;
        size_t n = sn_cur_left(&name);
        if (n > SNI_MAX) {
            n = SNI_MAX;
            c->sni_truncated = true;
        }
        sn_cur_copy(&name, c->sni, n);
        /* A NUL inside the name would end the C string early; show it as '?'. */
        for (size_t i = 0; i < n; i++)
            if (c->sni[i] == '\0')
                c->sni[i] = '?';
        c->sni[n] = '\0';
        c->sni_len = (uint16_t)n;
    }
    if (list.err)
        d->err = list.err;
}

/* RFC 7301 3.1:
 *   opaque ProtocolName<1..2^8-1>;
 *   struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
 * An empty name is malformed per RFC but is kept (JA4 then prints "00"). */
static void ext_alpn(struct ch_parse *p, struct sn_cur *d)
{
    struct tls_client *c = &p->c;
    struct sn_cur list = sn_cur_sub(d, sn_cur_u16(d));
    while (sn_cur_ok(&list) && sn_cur_left(&list) > 0) {
        uint8_t n = sn_cur_u8(&list);
        const uint8_t *name = sn_cur_take(&list, n);
        if (!name)
            break;
        if (c->n_alpn_total == 0) {
            p->fp.alpn0 = name;
            p->fp.alpn0_len = n;
            size_t k = n > ALPN_NAME_MAX ? ALPN_NAME_MAX : n;
            memcpy(c->alpn0, name, k);
            c->alpn0[k] = '\0';
        }
        c->n_alpn_total++;
        size_t k = n > ALPN_NAME_MAX ? ALPN_NAME_MAX : n;
        if ((size_t)c->alpn_used + 1 + k <= ALPN_BUF) {
            c->alpn[c->alpn_used] = (uint8_t)k;
            memcpy(c->alpn + c->alpn_used + 1, name, k);
            c->alpn_used = (uint8_t)(c->alpn_used + 1 + k);
            c->n_alpn++;
        }
    }
    if (list.err)
        d->err = list.err;
}

/* RFC 8446 4.2.8: struct { NamedGroup group; opaque key_exchange<1..2^16-1>; } KeyShareEntry;
 *   struct { KeyShareEntry client_shares<0..2^16-1>; } KeyShareClientHello; */
static void ext_key_share(struct tls_client *c, struct sn_cur *d)
{
    struct sn_cur list = sn_cur_sub(d, sn_cur_u16(d));
    while (sn_cur_ok(&list) && sn_cur_left(&list) > 0) {
        uint16_t g = sn_cur_u16(&list);
        sn_cur_sub(&list, sn_cur_u16(&list));
        if (!sn_cur_ok(&list))
            break;
        if (sn_tls_fp_is_grease(g)) {
            c->grease = true;
            continue;
        }
        c->n_ks_total++;
        if (c->n_ks < KS_MAX)
            c->ks_groups[c->n_ks++] = g;
    }
    if (list.err)
        d->err = list.err;
}

/* One ClientHello extension; d is exactly its extension_data. Only the first occurrence of
 * a type is used (RFC 8446 4.2: duplicates are illegal). */
static int client_ext(struct ch_parse *p, uint16_t type, struct sn_cur *d)
{
    struct tls_client *c = &p->c;
    struct sn_cur list;
    int rc = 0;

    switch (type) {
    case EXT_SNI:
        p->fp.has_sni = true;
        c->has_sni_ext = true;
        if (!p->seen_sni)
            ext_sni(c, d);
        p->seen_sni = true;
        break;
    case EXT_ALPN:
        if (!p->seen_alpn)
            ext_alpn(p, d);
        p->seen_alpn = true;
        break;
    case EXT_GROUPS: /* RFC 8446 4.2.7: NamedGroup named_group_list<2..2^16-1>; */
        if (p->seen_groups)
            break;
        p->seen_groups = true;
        list = sn_cur_sub(d, sn_cur_u16(d));
        if (list.err || (rc = read_u16s(&p->sc, &list, &p->fp.groups, &p->fp.n_groups)) != 0)
            break;
        for (size_t i = 0; i < p->fp.n_groups; i++) {
            uint16_t g = p->fp.groups[i];
            if (sn_tls_fp_is_grease(g)) {
                c->grease = true;
                continue;
            }
            c->n_groups_total++;
            if (c->n_groups < GROUPS_MAX)
                c->groups[c->n_groups++] = g;
        }
        break;
    case EXT_POINT_FORMATS: /* RFC 8422 5.1.2: ECPointFormat ec_point_format_list<1..2^8-1> */
        if (p->seen_pf)
            break;
        p->seen_pf = true;
        {
            uint8_t n = sn_cur_u8(d);
            p->fp.point_formats = sn_cur_take(d, n);
            p->fp.n_point_formats = p->fp.point_formats ? n : 0;
        }
        break;
    case EXT_SIGALGS: /* RFC 8446 4.2.3: SignatureScheme supported_signature_algorithms<2..> */
        if (p->seen_sigalgs)
            break;
        p->seen_sigalgs = true;
        list = sn_cur_sub(d, sn_cur_u16(d));
        if (!list.err)
            rc = read_u16s(&p->sc, &list, &p->fp.sigalgs, &p->fp.n_sigalgs);
        break;
    case EXT_SUPPORTED_VERSIONS: /* RFC 8446 4.2.1: ProtocolVersion versions<2..254>; */
        if (p->seen_sv)
            break;
        p->seen_sv = true;
        list = sn_cur_sub(d, sn_cur_u8(d));
        if (list.err || (rc = read_u16s(&p->sc, &list, &p->fp.versions, &p->fp.n_versions)))
            break;
        p->fp.has_versions_ext = true;
        c->has_versions_ext = true;
        for (size_t i = 0; i < p->fp.n_versions; i++) {
            if (sn_tls_fp_is_grease(p->fp.versions[i]))
                c->grease = true;
            else if (c->n_versions < VERSIONS_MAX)
                c->versions[c->n_versions++] = p->fp.versions[i];
        }
        break;
    case EXT_KEY_SHARE:
        if (!p->seen_ks)
            ext_key_share(c, d);
        p->seen_ks = true;
        break;
    case EXT_SESSION_TICKET: c->session_ticket = true; break;
    case EXT_PSK: c->psk = true; break;
    case EXT_EARLY_DATA: c->early_data = true; break;
    case EXT_ECH: c->ech = true; break;
    case EXT_ESNI: c->esni = true; break;
    default: break;
    }
    if (rc)
        return rc;
    /* The extension's own length said it was complete: an inner overrun is malformed. */
    return d->err ? -SN_EPROTO : 0;
}

static int ch_fingerprints(struct ch_parse *p)
{
    int rc = sn_tls_fp_ja3(&p->fp, p->c.ja3);
    if (!rc)
        rc = sn_tls_fp_ja4(&p->fp, p->c.ja4);
    return rc;
}

static void ch_commit(struct sn_tls_meta *m, const struct tls_client *c)
{
    if (m->client_hellos < UINT8_MAX)
        m->client_hellos++;
    /* The first ClientHello is the fingerprint (a second one follows a HelloRetryRequest
     * and must not replace it). */
    if (m->has_ch)
        return;
    m->ch = *c;
    m->has_ch = true;
}

/* RFC 8446 4.1.2 (RFC 5246 7.4.1.2 is the same up to the optional extensions):
 *   uint16 ProtocolVersion;  opaque Random[32];  uint8 CipherSuite[2];
 *   struct {
 *       ProtocolVersion legacy_version;
 *       Random random;
 *       opaque legacy_session_id<0..32>;
 *       CipherSuite cipher_suites<2..2^16-2>;
 *       opaque legacy_compression_methods<1..2^8-1>;
 *       Extension extensions<8..2^16-1>;       (absent in old TLS <= 1.2 hellos)
 *   } ClientHello;
 *   struct { ExtensionType extension_type; opaque extension_data<0..2^16-1>; } Extension;
 * Empty cipher and compression lists are accepted (they only make odd fingerprints). */
static int client_hello(struct sn_tls_meta *m, const uint8_t *body, size_t len,
                        uint16_t record_version)
{
    struct ch_parse *p = ch_parse_new(m);
    struct sn_cur c = sn_cur_make(body, len);
    int rc;

    if (!p)
        return SN_ERR(ENOMEM, "client hello");
    if ((rc = scratch_init(&p->sc, len)) != 0)
        goto out;
    p->fp.transport = m->quic ? 'q' : 't';
    p->c.record_version = record_version;
    p->c.legacy_version = sn_cur_u16(&c);
    p->fp.legacy_version = p->c.legacy_version;
    sn_cur_skip(&c, 32);
    p->c.session_id_len = sn_cur_u8(&c);
    if (c.err == 0 && p->c.session_id_len > 32) {
        rc = -SN_EPROTO;
        goto out;
    }
    sn_cur_copy(&c, p->c.session_id, p->c.session_id_len);
    struct sn_cur suites = sn_cur_sub(&c, sn_cur_u16(&c));
    sn_cur_sub(&c, sn_cur_u8(&c)); /* compression methods */
    if ((rc = c.err) != 0)
        goto out;
    if ((rc = read_u16s(&p->sc, &suites, &p->fp.ciphers, &p->fp.n_ciphers)) != 0)
        goto out;
    for (size_t i = 0; i < p->fp.n_ciphers; i++)
        if (sn_tls_fp_is_grease(p->fp.ciphers[i]))
            p->c.grease = true;

    if (sn_cur_left(&c) > 0) {
        struct sn_cur exts = sn_cur_sub(&c, sn_cur_u16(&c));
        if ((rc = c.err) != 0)
            goto out;
        /* Each extension takes at least 4 bytes; types go into the scratch as we walk. */
        uint16_t *types = p->sc.base + p->sc.used;
        size_t ntypes = 0;
        p->sc.used += sn_cur_left(&exts) / 4;
        while (sn_cur_left(&exts) > 0) {
            uint16_t type = sn_cur_u16(&exts);
            struct sn_cur d = sn_cur_sub(&exts, sn_cur_u16(&exts));
            if (exts.err) {
                rc = -SN_EPROTO; /* an extension runs past the extensions block */
                goto out;
            }
            types[ntypes++] = type;
            if (sn_tls_fp_is_grease(type)) {
                p->c.grease = true;
                continue;
            }
            if ((rc = client_ext(p, type, &d)) != 0)
                goto out;
        }
        p->fp.exts = types;
        p->fp.n_exts = ntypes;
    }
    if ((rc = ch_fingerprints(p)) != 0)
        goto out;
    ch_commit(m, &p->c);
out:
    free(p->sc.heap);
    free(p);
    return rc;
}

/* RFC 5246 E.2 (SSL 2.0 CLIENT-HELLO sent by TLS clients for compatibility):
 *   uint8 V2CipherSpec[3];
 *   struct {
 *       uint16 msg_length;          (high bit set: 2-byte header, no padding)
 *       uint8 msg_type;             (1)
 *       Version version;
 *       uint16 cipher_spec_length;  (multiple of 3)
 *       uint16 session_id_length;
 *       uint16 challenge_length;
 *       V2CipherSpec cipher_specs[V2ClientHello.cipher_spec_length];
 *       opaque session_id[V2ClientHello.session_id_length];
 *       opaque challenge[V2ClientHello.challenge_length;
 *   } V2ClientHello;
 * Specs whose first byte is zero are TLS cipher suites (E.2); only those enter JA3/JA4. */
int sn_tls_hs_sslv2(struct sn_tls_meta *m, const uint8_t *rec, size_t len)
{
    struct sn_cur c = sn_cur_make(rec, len);
    struct ch_parse *p;
    int rc;

    uint16_t hdr = sn_cur_u16(&c);
    if (c.err)
        return c.err;
    if (!(hdr & 0x8000))
        return -SN_EPROTO;
    struct sn_cur msg = sn_cur_sub(&c, hdr & 0x7fffu);
    if (c.err)
        return c.err;
    uint8_t type = sn_cur_u8(&msg);
    uint16_t version = sn_cur_u16(&msg);
    uint16_t spec_len = sn_cur_u16(&msg);
    uint16_t sid_len = sn_cur_u16(&msg);
    uint16_t chal_len = sn_cur_u16(&msg);
    struct sn_cur specs = sn_cur_sub(&msg, spec_len);
    sn_cur_skip(&msg, (size_t)sid_len + chal_len);
    if (msg.err)
        return msg.err;
    if (type != 1 || spec_len % 3 != 0 || sid_len > 32 || chal_len < 16 || chal_len > 32)
        return -SN_EPROTO;

    p = ch_parse_new(m);
    if (!p)
        return SN_ERR(ENOMEM, "sslv2 hello");
    if ((rc = scratch_init(&p->sc, len)) != 0)
        goto out;
    p->fp.transport = 't';
    p->c.record_version = 0x0002;
    p->c.legacy_version = version;
    p->c.sslv2 = true;
    p->fp.legacy_version = version;
    uint16_t *ciphers = p->sc.base;
    size_t n = 0;
    while (sn_cur_left(&specs) >= 3) {
        uint8_t hi = sn_cur_u8(&specs);
        uint16_t v = sn_cur_u16(&specs);
        if (hi != 0)
            continue; /* an SSL 2.0-only kind */
        ciphers[n++] = v;
        if (sn_tls_fp_is_grease(v))
            p->c.grease = true;
    }
    p->sc.used = n;
    p->fp.ciphers = ciphers;
    p->fp.n_ciphers = n;
    if ((rc = ch_fingerprints(p)) != 0)
        goto out;
    ch_commit(m, &p->c);
out:
    free(p->sc.heap);
    free(p);
    return rc;
}

/* ---- ServerHello ------------------------------------------------------------------ */

/* RFC 8446 4.1.3: SHA-256("HelloRetryRequest") as the random marks a HelloRetryRequest. */
static const uint8_t hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

/* RFC 8446 4.1.3 (RFC 5246 7.4.1.3 is the same up to the optional extensions):
 *   struct {
 *       ProtocolVersion legacy_version = 0x0303;
 *       Random random;
 *       opaque legacy_session_id_echo<0..32>;
 *       CipherSuite cipher_suite;
 *       uint8 legacy_compression_method = 0;
 *       Extension extensions<6..2^16-1>;
 *   } ServerHello;
 * Extensions read: supported_versions (4.2.1: ProtocolVersion selected_version), key_share
 * (4.2.8: KeyShareEntry server_share, or NamedGroup selected_group in a HelloRetryRequest),
 * ALPN (RFC 7301: a list of exactly one name), pre_shared_key (4.2.11: uint16
 * selected_identity). JA3S takes legacy_version, the cipher and the extension types. */
static int server_hello(struct sn_tls_meta *m, const uint8_t *body, size_t len)
{
    struct tls_server s;
    struct sn_cur c = sn_cur_make(body, len);
    uint8_t random[32];
    uint16_t ext_stack[64];
    uint16_t *exts = ext_stack, *heap = NULL;
    size_t next = 0;
    int rc = 0;

    memset(&s, 0, sizeof(s));
    s.legacy_version = sn_cur_u16(&c);
    sn_cur_copy(&c, random, sizeof(random));
    s.session_id_len = sn_cur_u8(&c);
    if (c.err == 0 && s.session_id_len > 32)
        return -SN_EPROTO;
    sn_cur_copy(&c, s.session_id, s.session_id_len);
    s.cipher = sn_cur_u16(&c);
    sn_cur_u8(&c); /* compression method */
    if (c.err)
        return c.err;
    bool hrr = memcmp(random, hrr_random, sizeof(random)) == 0;
    s.version = s.legacy_version;

    if (sn_cur_left(&c) > 0) {
        struct sn_cur eb = sn_cur_sub(&c, sn_cur_u16(&c));
        if (c.err)
            return c.err;
        size_t cap = sn_cur_left(&eb) / 4;
        if (cap > sizeof(ext_stack) / sizeof(ext_stack[0])) {
            heap = malloc(cap * sizeof(uint16_t));
            if (!heap)
                return SN_ERR(ENOMEM, "server hello extensions");
            exts = heap;
        }
        while (sn_cur_left(&eb) > 0) {
            uint16_t type = sn_cur_u16(&eb);
            struct sn_cur d = sn_cur_sub(&eb, sn_cur_u16(&eb));
            if (eb.err) {
                rc = -SN_EPROTO;
                goto out;
            }
            exts[next++] = type;
            switch (type) {
            case EXT_SUPPORTED_VERSIONS:
                s.version = sn_cur_u16(&d);
                s.has_versions_ext = true;
                break;
            case EXT_KEY_SHARE:
                s.ks_group = sn_cur_u16(&d); /* the rest (key_exchange) is not needed */
                s.has_ks = true;
                break;
            case EXT_ALPN:
                if (!s.has_alpn) {
                    struct sn_cur list = sn_cur_sub(&d, sn_cur_u16(&d));
                    uint8_t n = sn_cur_u8(&list);
                    const uint8_t *name = sn_cur_take(&list, n);
                    if (name) {
                        size_t k = n > ALPN_NAME_MAX ? ALPN_NAME_MAX : n;
                        memcpy(s.alpn, name, k);
                        s.alpn[k] = '\0';
                        s.alpn_len = (uint8_t)k;
                        s.has_alpn = true;
                    }
                    if (list.err)
                        d.err = list.err;
                }
                break;
            case EXT_PSK:
                sn_cur_u16(&d);
                s.psk = true;
                break;
            default: break;
            }
            if (d.err) {
                rc = -SN_EPROTO;
                goto out;
            }
        }
    }

    if (hrr) {
        m->hrr = true;
        m->hrr_cipher = s.cipher;
        if (s.has_ks) {
            m->hrr_group = s.ks_group;
            m->has_hrr_group = true;
        }
        goto out; /* the real ServerHello follows the client's second hello */
    }
    if (m->has_sh)
        goto out;
    if ((rc = sn_tls_fp_ja3s(m->memo, s.legacy_version, s.cipher, exts, next, s.ja3s)) != 0)
        goto out;
    m->sh = s;
    m->has_sh = true;
out:
    free(heap);
    return rc;
}

/* ---- Certificate -------------------------------------------------------------------- */

/* RFC 5246 7.4.2:
 *   opaque ASN.1Cert<1..2^24-1>;
 *   struct { ASN.1Cert certificate_list<0..2^24-1>; } Certificate;
 * The sender's certificate comes first; only it is decoded, the rest are counted. TLS 1.3
 * Certificate messages (RFC 8446 4.4.2, another layout) are encrypted and never reach here
 * in clear; a TLS 1.3 meta ignores them. Client certificates (dir 0) are ignored too. */
static int certificate(struct sn_tls_meta *m, int dir, const uint8_t *body, size_t len)
{
    if (dir != 1 || m->has_cert || sn_tls_meta_is_tls13(m))
        return 0;
    struct sn_cur c = sn_cur_make(body, len);
    struct sn_cur list = sn_cur_sub(&c, sn_cur_u24(&c));
    const uint8_t *leaf = NULL;
    size_t leaf_len = 0;
    uint32_t n = 0;

    if (c.err)
        return c.err;
    while (sn_cur_left(&list) > 0) {
        uint32_t k = sn_cur_u24(&list);
        const uint8_t *der = sn_cur_take(&list, k);
        if (!der)
            return -SN_EPROTO; /* a certificate runs past certificate_list */
        if (n == 0) {
            leaf = der;
            leaf_len = k;
        }
        n++;
    }
    m->has_cert = true;
    m->chain_len = n;
    if (!leaf)
        return 0; /* empty list: no certificate sent (allowed for clients only) */
    if (!m->leaf) {
        m->leaf = calloc(1, sizeof(*m->leaf));
        if (!m->leaf)
            return SN_ERR(ENOMEM, "certificate info");
    }
    if (leaf_len == 0 || sn_x509_parse(m->leaf, leaf, leaf_len) != 0) {
        m->cert_error = true;
        return -SN_EPROTO;
    }
    m->leaf_ok = true;
    return 0;
}

int sn_tls_hs_message(struct sn_tls_meta *m, int dir, uint8_t type, const uint8_t *body,
                      size_t len, uint16_t record_version)
{
    if (!body && len)
        return -SN_EPROTO;
    switch (type) {
    case SN_TLS_HS_CLIENT_HELLO:
        return dir == 0 ? client_hello(m, body, len, record_version) : 0;
    case SN_TLS_HS_SERVER_HELLO:
        return dir == 1 ? server_hello(m, body, len) : 0;
    case SN_TLS_HS_CERTIFICATE:
        return certificate(m, dir, body, len);
    default:
        return 0;
    }
}

void sn_tls_meta_note_ccs(struct sn_tls_meta *m, int dir)
{
    if (dir == 0 || dir == 1)
        m->ccs[dir] = true;
}

/* ---- accessors ---------------------------------------------------------------------- */

void sn_tls_meta_set_quic(struct sn_tls_meta *m)
{
    m->quic = true;
}

void sn_tls_meta_set_memo(struct sn_tls_meta *m, struct sn_tls_fp_memo *memo)
{
    m->memo = memo;
}

bool sn_tls_meta_has_client_hello(const struct sn_tls_meta *m)
{
    return m->has_ch;
}

bool sn_tls_meta_hrr(const struct sn_tls_meta *m)
{
    return m->hrr;
}

bool sn_tls_meta_has_server_hello(const struct sn_tls_meta *m)
{
    return m->has_sh;
}

bool sn_tls_meta_is_tls13(const struct sn_tls_meta *m)
{
    return m->has_sh && version_is_13(m->sh.version);
}

const char *sn_tls_meta_sni(const struct sn_tls_meta *m)
{
    return m->has_ch && m->ch.sni_len ? m->ch.sni : NULL;
}

const char *sn_tls_meta_ja3(const struct sn_tls_meta *m)
{
    return m->has_ch ? m->ch.ja3 : NULL;
}

const char *sn_tls_meta_ja3s(const struct sn_tls_meta *m)
{
    return m->has_sh ? m->sh.ja3s : NULL;
}

const char *sn_tls_meta_ja4(const struct sn_tls_meta *m)
{
    return m->has_ch ? m->ch.ja4 : NULL;
}

const char *sn_tls_meta_alpn(const struct sn_tls_meta *m)
{
    if (m->has_sh && m->sh.has_alpn)
        return m->sh.alpn;
    if (m->has_ch && m->ch.n_alpn_total)
        return m->ch.alpn0;
    return NULL;
}

uint16_t sn_tls_meta_version(const struct sn_tls_meta *m)
{
    if (m->has_sh)
        return m->sh.version;
    if (!m->has_ch)
        return 0;
    uint16_t best = 0;
    for (size_t i = 0; i < m->ch.n_versions; i++)
        if (m->ch.versions[i] > best && m->ch.versions[i] <= 0x0304)
            best = m->ch.versions[i];
    return best ? best : m->ch.legacy_version;
}

int sn_tls_meta_cipher(const struct sn_tls_meta *m)
{
    return m->has_sh ? (int)m->sh.cipher : -1;
}

bool sn_tls_meta_ech(const struct sn_tls_meta *m)
{
    return m->has_ch && m->ch.ech;
}

const struct sn_x509_info *sn_tls_meta_leaf(const struct sn_tls_meta *m, uint32_t *chain_len)
{
    if (chain_len)
        *chain_len = m->has_cert ? m->chain_len : 0;
    return m->leaf_ok ? m->leaf : NULL;
}

/* ---- JSON --------------------------------------------------------------------------- */

static void json_cert(const struct sn_tls_meta *m, struct sn_json *j)
{
    sn_json_obj_begin(j, "cert");
    sn_json_u64(j, "chain_len", m->chain_len);
    if (m->leaf_ok)
        sn_x509_json(m->leaf, j);
    if (m->cert_error)
        sn_json_bool(j, "parse_error", true);
    sn_json_obj_end(j);
}

void sn_tls_meta_json(const struct sn_tls_meta *m, struct sn_json *j)
{
    const struct tls_client *c = &m->ch;
    char vb[24];

    if (m->has_ch || m->has_sh)
        sn_json_str(j, "version", version_name(sn_tls_meta_version(m), vb));
    if (m->has_ch) {
        if (!m->quic)
            sn_json_str(j, "record_version", version_name(c->record_version, vb));
        sn_json_arr_begin(j, "client_versions");
        if (c->n_versions) {
            for (size_t i = 0; i < c->n_versions; i++)
                sn_json_str(j, NULL, version_name(c->versions[i], vb));
        } else {
            sn_json_str(j, NULL, version_name(c->legacy_version, vb));
        }
        sn_json_arr_end(j);
        if (c->sni_len) {
            sn_json_strn(j, "sni", c->sni, c->sni_len);
            if (c->ech)
                sn_json_bool(j, "sni_outer", true);
            if (c->sni_truncated)
                sn_json_bool(j, "sni_truncated", true);
        }
        if (c->n_alpn_total) {
            sn_json_arr_begin(j, "alpn");
            for (size_t off = 0, i = 0; i < c->n_alpn; i++) {
                sn_json_strn(j, NULL, (const char *)c->alpn + off + 1, c->alpn[off]);
                off += 1u + c->alpn[off];
            }
            sn_json_arr_end(j);
        }
    }
    if (m->has_sh) {
        if (m->sh.has_alpn)
            sn_json_strn(j, "alpn_selected", m->sh.alpn, m->sh.alpn_len);
        json_hex16(j, "cipher", m->sh.cipher);
        const char *cn = name16_find(cipher_names, sizeof(cipher_names) / sizeof(cipher_names[0]),
                                     m->sh.cipher);
        if (cn)
            sn_json_str(j, "cipher_name", cn);
    }
    if (m->has_ch) {
        sn_json_str(j, "ja3", c->ja3);
        sn_json_str(j, "ja4", c->ja4);
    }
    if (m->has_sh)
        sn_json_str(j, "ja3s", m->sh.ja3s);
    if (m->has_ch) {
        if (c->n_groups_total) {
            sn_json_arr_begin(j, "groups");
            for (size_t i = 0; i < c->n_groups; i++)
                json_group(j, NULL, c->groups[i]);
            sn_json_arr_end(j);
        }
        if (c->n_ks_total) {
            sn_json_arr_begin(j, "key_share_groups");
            for (size_t i = 0; i < c->n_ks; i++)
                json_group(j, NULL, c->ks_groups[i]);
            sn_json_arr_end(j);
        }
        sn_json_bool(j, "ech", c->ech);
        if (c->esni)
            sn_json_bool(j, "esni", true);
        sn_json_bool(j, "grease", c->grease);
        sn_json_bool(j, "session_ticket", c->session_ticket);
        sn_json_bool(j, "psk", c->psk);
        sn_json_bool(j, "early_data", c->early_data);
        if (c->sslv2)
            sn_json_bool(j, "sslv2_hello", true);
    }
    if (m->has_sh) {
        if (m->sh.has_ks)
            json_group(j, "key_share_selected", m->sh.ks_group);
        /* Resumed: TLS 1.3 server accepted a PSK; TLS <= 1.2 server echoed the client's
         * non-empty session id (RFC 5246 7.4.1.3). */
        bool resumed = version_is_13(m->sh.version)
                           ? m->sh.psk
                           : (m->has_ch && m->sh.session_id_len > 0 &&
                              m->sh.session_id_len == c->session_id_len &&
                              memcmp(m->sh.session_id, c->session_id, c->session_id_len) == 0);
        sn_json_bool(j, "resumed", resumed);
    }
    if (m->has_ch || m->has_sh) {
        sn_json_bool(j, "hrr", m->hrr);
        if (m->has_hrr_group)
            json_group(j, "hrr_group", m->hrr_group);
    }
    if (m->has_cert)
        json_cert(m, j);
}
