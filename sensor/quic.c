/* quic: ClientHello extraction from client QUIC Initial packets. See include/quic.h.
 *
 * Cost: a flow's keys are derived once, from the DCID of its first client Initial (five
 * HMAC-SHA256 over a digest method fetched once per thread); each Initial then costs one
 * AES-128-ECB block (header protection) and one AES-128-GCM decryption of ~1.2 KB, with
 * cipher contexts reused across packets. Nothing is allocated per packet: the plaintext goes
 * to the per-thread scratch buffer, CRYPTO data to the per-thread reassembly buffer, and only
 * a flow whose ClientHello is still incomplete after a datagram gets a buffer of its own
 * (freed with the flow state).
 */
#define SN_LOG_MOD "quic"
#include "quic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cursor.h"
#include "err.h"
#include "digest.h"

#define CID_MAX 20u     /* RFC 9000 17.2: connection IDs are at most 20 bytes (v1, v2) */
#define PKT_MAX 16384u  /* larger Initials are not decrypted (real ones are <= 1500 bytes) */
#define SAMPLE_LEN 16u
#define TAG_LEN 16u
#define HS_HDR 4u
#define HS_CLIENT_HELLO 1

/* Initial salts (the HKDF-Extract salt for the client's first DCID), by family. */
enum { SALT_D22, SALT_D23, SALT_D29, SALT_V1, SALT_V2, SALT_T050, SALT_T051, NSALTS };

struct sn_quic_ctx {
    const EVP_MD *sha256; /* borrowed from digest.c */
    EVP_CIPHER *ecb, *gcm;
    EVP_MD_CTX *work;
    EVP_MD_CTX *key_in, *key_out; /* HMAC pads of the client secret at hand */
    EVP_MD_CTX *salt_in[NSALTS], *salt_out[NSALTS]; /* ... of each salt */
    EVP_CIPHER_CTX *ecb_ctx, *gcm_ctx;
    struct sn_quic_stats st;
    uint8_t plain[PKT_MAX];
    uint8_t aad[PKT_MAX];
    /* CRYPTO reassembly for a flow without a buffer of its own, during one sn_quic_datagram
     * call (and the hello it returns, until the next call): SN_QUIC_CRYPTO_CAP bytes, then
     * the bitmap. Most ClientHellos complete in their flow's first datagram, so most flows
     * never allocate (see crypto_store, sn_quic_datagram). */
    uint8_t reasm[SN_QUIC_CRYPTO_CAP + SN_QUIC_CRYPTO_CAP / 8];
};

struct sn_quic {
    struct sn_quic_ctx *cx;
    uint32_t version; /* of the keys below; 0: none yet */
    uint8_t frames;   /* FRAMES_*: the version's frame encoding */
    uint8_t key[16], iv[12], hp[16];
    uint8_t dcid[CID_MAX];
    uint8_t dcid_len;
    uint8_t datagrams;
    bool done, overflow;
    int64_t largest_pn; /* -1 before the first */
    uint8_t *buf; /* SN_QUIC_CRYPTO_CAP bytes, then a bitmap of filled bytes: owned, or
                     borrowed cx->reasm during a call (see crypto_store) */
    uint8_t *map;
    uint32_t contig; /* buf[0, contig) is filled */
    uint32_t hi;     /* highest filled offset + 1 */
};

static const uint8_t salts[NSALTS][20] = {
    /* draft-ietf-quic-tls-21/22 5.2 (also mvfst's draft-22 version) */
    [SALT_D22] = {0x7f, 0xbc, 0xdb, 0x0e, 0x7c, 0x66, 0xbb, 0xe9, 0x19, 0x3a, 0x96, 0xcd, 0x21,
                  0x51, 0x9e, 0xbd, 0x7a, 0x02, 0x64, 0x4a},
    /* draft-ietf-quic-tls-23..28 5.2 */
    [SALT_D23] = {0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b,
                  0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02},
    /* draft-ietf-quic-tls-29..32 5.2 */
    [SALT_D29] = {0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c,
                  0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99},
    /* RFC 9001 5.2 (since draft-ietf-quic-tls-33) */
    [SALT_V1] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4,
                 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a},
    /* RFC 9369 3.3.1 */
    [SALT_V2] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e,
                 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9},
    /* Google's T050 and T051 (Chromium's, as Wireshark and nDPI have them) */
    [SALT_T050] = {0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43,
                   0xa2, 0x36, 0x7c, 0x60, 0x48, 0x83, 0x10},
    [SALT_T051] = {0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12,
                   0x4f, 0xc8, 0xcc, 0xda, 0x6e, 0x03, 0x3d},
};

/* How the frames of a decrypted Initial are encoded: RFC 9000 19, or Google's (T05x). */
enum { FRAMES_IETF, FRAMES_GQUIC };

/* Per-version constants. Every version here carries a TLS 1.3 ClientHello in the CRYPTO
 * stream of its client Initials, protected as RFC 9001 5 says (keys HKDF-SHA256 from the first
 * DCID, AES-128-GCM, AES-128-ECB header protection). They differ in the salt, the labels (v2:
 * "quicv2 key"... instead of "quic key"..., RFC 9369 3.3.2), the long-header packet types (v2
 * moves them, RFC 9369 3.2) and, for Google's T05x, the frame encoding. The IETF drafts from
 * 22 on have v1's long header (8-bit CID lengths, Token, Length), packet types and the frame
 * types an Initial holds. nDPI 4.2 decrypts the same set (its draft-34 keys are wrong, see
 * quic.h); Google's Q050 carries a QUIC-crypto CHLO, not TLS, and is left to nDPI. */
struct version_info {
    uint32_t version;
    const char *name; /* Wireshark's names, shortened */
    uint8_t salt;
    bool v2_labels;
    uint8_t initial_type, retry_type;
    uint8_t frames;
};

#define IETF_DRAFT(n, s) {0xff000000u | (n), "draft-" #n, s, false, 0, 3, FRAMES_IETF}

/* The common versions first: version_find walks the table. */
static const struct version_info versions[] = {
    {SN_QUIC_V1, "1", SALT_V1, false, 0, 3, FRAMES_IETF},
    {SN_QUIC_V2, "2", SALT_V2, true, 1, 0, FRAMES_IETF},
    IETF_DRAFT(29, SALT_D29),
    IETF_DRAFT(27, SALT_D23),
    IETF_DRAFT(23, SALT_D23),
    IETF_DRAFT(24, SALT_D23),
    IETF_DRAFT(25, SALT_D23),
    IETF_DRAFT(26, SALT_D23),
    IETF_DRAFT(28, SALT_D23),
    IETF_DRAFT(30, SALT_D29),
    IETF_DRAFT(31, SALT_D29),
    IETF_DRAFT(32, SALT_D29),
    IETF_DRAFT(33, SALT_V1),
    IETF_DRAFT(34, SALT_V1),
    /* Facebook's mvfst: its draft-22 and draft-27 versions and its experimental one, which
     * Wireshark and nDPI key as draft-27. */
    {SN_QUIC_MVFST_22, "mvfst-draft-22", SALT_D22, false, 0, 3, FRAMES_IETF},
    {SN_QUIC_MVFST_27, "mvfst-draft-27", SALT_D23, false, 0, 3, FRAMES_IETF},
    {SN_QUIC_MVFST_EXP, "mvfst-exp", SALT_D23, false, 0, 3, FRAMES_IETF},
    /* Google's TLS versions: IETF long header and packet protection, gQUIC frames. */
    {SN_QUIC_T050, "T050", SALT_T050, false, 0, 3, FRAMES_GQUIC},
    {SN_QUIC_T051, "T051", SALT_T051, false, 0, 3, FRAMES_GQUIC},
};

#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

/* RFC 9000 15: versions 0x?a?a?a?a are reserved, to force version negotiation. A client that
 * opens with one (the interop runner's "V" test, quic-go, ...) protects the Initial with the
 * keys of the draft it speaks; like Wireshark and nDPI we try draft-29's. */
static const struct version_info forcing_vn = {
    0x0a0a0a0au, "forcing-vn", SALT_D29, false, 0, 3, FRAMES_IETF,
};

static const struct version_info *version_find(uint32_t v)
{
    for (size_t i = 0; i < NVERSIONS; i++)
        if (versions[i].version == v)
            return &versions[i];
    if ((v & 0x0f0f0f0fu) == 0x0a0a0a0au)
        return &forcing_vn;
    return NULL;
}

const char *sn_quic_version_name(uint32_t v)
{
    const struct version_info *vi = version_find(v);
    return vi ? vi->name : NULL;
}

/* ---- per-thread context ---------------------------------------------------------- */

static int hmac_prep(struct sn_quic_ctx *cx, const uint8_t *key, size_t klen, EVP_MD_CTX *in,
                     EVP_MD_CTX *out);

struct sn_quic_ctx *sn_quic_ctx_new(void)
{
    struct sn_quic_ctx *cx = calloc(1, sizeof(*cx));
    if (!cx)
        goto fail;
    /* Fetched once: OpenSSL 3 otherwise looks each algorithm up in a locked store on every
     * init (SHA-256 is fetched once per process, by digest.c). */
    cx->sha256 = sn_digest_sha256();
    cx->ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    cx->gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    cx->work = EVP_MD_CTX_new();
    cx->key_in = EVP_MD_CTX_new();
    cx->key_out = EVP_MD_CTX_new();
    cx->ecb_ctx = EVP_CIPHER_CTX_new();
    cx->gcm_ctx = EVP_CIPHER_CTX_new();
    /* The cipher contexts are set up here, once: a packet then only sets a key (and the
     * nonce), as passing the cipher again would free and rebuild the provider's context. */
    if (!cx->sha256 || !cx->ecb || !cx->gcm || !cx->work || !cx->key_in || !cx->key_out ||
        !cx->ecb_ctx || !cx->gcm_ctx ||
        !EVP_EncryptInit_ex2(cx->ecb_ctx, cx->ecb, NULL, NULL, NULL) ||
        !EVP_CIPHER_CTX_set_padding(cx->ecb_ctx, 0) ||
        !EVP_DecryptInit_ex2(cx->gcm_ctx, cx->gcm, NULL, NULL, NULL))
        goto fail;
    /* The salts are constants: their HMAC pads are digested once, here. */
    for (size_t i = 0; i < NSALTS; i++) {
        cx->salt_in[i] = EVP_MD_CTX_new();
        cx->salt_out[i] = EVP_MD_CTX_new();
        if (!cx->salt_in[i] || !cx->salt_out[i] ||
            hmac_prep(cx, salts[i], sizeof(salts[i]), cx->salt_in[i], cx->salt_out[i]))
            goto fail;
    }
    return cx;
fail:
    SN_ERR(ENOMEM, "cannot set up QUIC Initial decryption");
    sn_quic_ctx_free(cx);
    return NULL;
}

void sn_quic_ctx_free(struct sn_quic_ctx *cx)
{
    if (!cx)
        return;
    EVP_MD_CTX_free(cx->work);
    EVP_MD_CTX_free(cx->key_in);
    EVP_MD_CTX_free(cx->key_out);
    for (size_t i = 0; i < NSALTS; i++) {
        EVP_MD_CTX_free(cx->salt_in[i]);
        EVP_MD_CTX_free(cx->salt_out[i]);
    }
    EVP_CIPHER_CTX_free(cx->ecb_ctx);
    EVP_CIPHER_CTX_free(cx->gcm_ctx);
    EVP_CIPHER_free(cx->ecb);
    EVP_CIPHER_free(cx->gcm);
    free(cx);
}

const struct sn_quic_stats *sn_quic_ctx_stats(const struct sn_quic_ctx *cx)
{
    return &cx->st;
}

/* ---- key derivation: RFC 5869 HKDF, RFC 8446 7.1 HKDF-Expand-Label ---------------- */

/* RFC 2104 HMAC-SHA256 of keys of at most one block (as all keys here are).
 * In OpenSSL 3 every EVP_DigestInit_ex and EVP_MD_CTX_copy_ex frees and allocates the
 * provider's digest state, so each costs about what one SHA-256 block does. A key used
 * several times (the salts, the client secret) has its padded blocks digested once:
 * hmac_prep digests (key ^ ipad) into `in` and (key ^ opad) into `out`; hmac_run continues
 * copies of them. A key used once (the initial secret) goes through hmac_once, which digests
 * the padded blocks along with the message: as many blocks, two state setups fewer. */
static void hmac_pads(const uint8_t *key, size_t klen, uint8_t ipad[64], uint8_t opad[64])
{
    memset(ipad, 0x36, 64);
    memset(opad, 0x5c, 64);
    for (size_t i = 0; i < klen; i++) {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
}

static int hmac_prep(struct sn_quic_ctx *cx, const uint8_t *key, size_t klen, EVP_MD_CTX *in,
                     EVP_MD_CTX *out)
{
    uint8_t ipad[64], opad[64];
    if (klen > sizeof(ipad))
        return -EINVAL;
    hmac_pads(key, klen, ipad, opad);
    if (!EVP_DigestInit_ex(in, cx->sha256, NULL) || !EVP_DigestUpdate(in, ipad, sizeof(ipad)) ||
        !EVP_DigestInit_ex(out, cx->sha256, NULL) || !EVP_DigestUpdate(out, opad, sizeof(opad)))
        return -ENOMEM;
    return 0;
}

static int hmac_run(struct sn_quic_ctx *cx, const EVP_MD_CTX *in, const EVP_MD_CTX *out,
                    const uint8_t *msg, size_t mlen, uint8_t mac[32])
{
    uint8_t ih[32];
    unsigned int n;
    EVP_MD_CTX *w = cx->work;
    if (!EVP_MD_CTX_copy_ex(w, in) || !EVP_DigestUpdate(w, msg, mlen) ||
        !EVP_DigestFinal_ex(w, ih, &n) || !EVP_MD_CTX_copy_ex(w, out) ||
        !EVP_DigestUpdate(w, ih, sizeof(ih)) || !EVP_DigestFinal_ex(w, mac, &n))
        return -ENOMEM;
    return 0;
}

static int hmac_once(struct sn_quic_ctx *cx, const uint8_t *key, size_t klen, const uint8_t *msg,
                     size_t mlen, uint8_t mac[32])
{
    uint8_t ipad[64], opad[64], ih[32];
    unsigned int n;
    EVP_MD_CTX *w = cx->work;
    if (klen > sizeof(ipad))
        return -EINVAL;
    hmac_pads(key, klen, ipad, opad);
    if (!EVP_DigestInit_ex(w, cx->sha256, NULL) || !EVP_DigestUpdate(w, ipad, sizeof(ipad)) ||
        !EVP_DigestUpdate(w, msg, mlen) || !EVP_DigestFinal_ex(w, ih, &n) ||
        !EVP_DigestInit_ex(w, cx->sha256, NULL) || !EVP_DigestUpdate(w, opad, sizeof(opad)) ||
        !EVP_DigestUpdate(w, ih, sizeof(ih)) || !EVP_DigestFinal_ex(w, mac, &n))
        return -ENOMEM;
    return 0;
}

/* HKDF-Expand-Label(secret, Label, "", L) for L <= 32 (one HMAC block) is HMAC(secret,
 * HkdfLabel || 0x01) cut to L bytes, with
 *   struct { uint16 length = L; opaque label<7..255> = "tls13 " + Label;
 *            opaque context<0..255> = ""; } HkdfLabel;
 * The labels are constants, so each HkdfLabel || 0x01 is spelled out here: L (2 bytes), the
 * label's length (1 byte), the label, an empty context (0) and the counter (1). */
struct expand_info {
    const char *bytes;
    uint8_t len; /* of bytes */
};

#define EXPAND_INFO(l, ll, label)                                                                 \
    {"\0" l ll "tls13 " label "\0\1", sizeof("\0" l ll "tls13 " label "\0\1") - 1}

static const struct expand_info info_client_in = EXPAND_INFO("\x20", "\x0f", "client in");
/* RFC 9001 5.1 and 5.4 (v1 and the drafts), RFC 9369 3.3.2 (v2): key, iv, hp */
static const struct expand_info info_v1[3] = {
    EXPAND_INFO("\x10", "\x0e", "quic key"),
    EXPAND_INFO("\x0c", "\x0d", "quic iv"),
    EXPAND_INFO("\x10", "\x0d", "quic hp"),
};
static const struct expand_info info_v2[3] = {
    EXPAND_INFO("\x10", "\x10", "quicv2 key"),
    EXPAND_INFO("\x0c", "\x0f", "quicv2 iv"),
    EXPAND_INFO("\x10", "\x0f", "quicv2 hp"),
};

int sn_quic_client_keys(struct sn_quic_ctx *cx, uint32_t version, const uint8_t *dcid,
                        size_t dcid_len, uint8_t key[16], uint8_t iv[12], uint8_t hp[16])
{
    const struct version_info *vi = version_find(version);
    uint8_t initial[32], client[32], t[3][32];
    int rc;
    if (!vi)
        return -EINVAL;
    const struct expand_info *info = vi->v2_labels ? info_v2 : info_v1;
    const uint8_t *ci = (const uint8_t *)info_client_in.bytes;
    /* RFC 9001 5.2: initial_secret = HKDF-Extract(initial_salt, client_dst_connection_id);
     * client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32); the
     * key, iv and hp are expanded from client_initial_secret. */
    if ((rc = hmac_run(cx, cx->salt_in[vi->salt], cx->salt_out[vi->salt], dcid, dcid_len,
                       initial)) ||
        (rc = hmac_once(cx, initial, sizeof(initial), ci, info_client_in.len, client)) ||
        (rc = hmac_prep(cx, client, sizeof(client), cx->key_in, cx->key_out)))
        return rc;
    for (size_t i = 0; i < 3; i++)
        if ((rc = hmac_run(cx, cx->key_in, cx->key_out, (const uint8_t *)info[i].bytes,
                           info[i].len, t[i])))
            return rc;
    memcpy(key, t[0], 16);
    memcpy(iv, t[1], 12);
    memcpy(hp, t[2], 16);
    return 0;
}

/* ---- per-flow state -------------------------------------------------------------- */

struct sn_quic *sn_quic_new(struct sn_quic_ctx *cx)
{
    struct sn_quic *q = calloc(1, sizeof(*q));
    if (!q) {
        SN_ERR(ENOMEM, "quic state");
        return NULL;
    }
    q->cx = cx;
    q->largest_pn = -1;
    cx->st.flows++;
    return q;
}

static bool buf_owned(const struct sn_quic *q)
{
    return q->buf && q->buf != q->cx->reasm;
}

void sn_quic_free(struct sn_quic *q)
{
    if (!q)
        return;
    if (buf_owned(q))
        free(q->buf);
    free(q);
}

uint32_t sn_quic_version(const struct sn_quic *q)
{
    return q && q->largest_pn >= 0 ? q->version : 0;
}

bool sn_quic_started(const struct sn_quic *q)
{
    return q && q->hi > 0;
}

size_t sn_quic_mem(const struct sn_quic *q)
{
    if (!q)
        return 0;
    return sizeof(*q) + (buf_owned(q) ? SN_QUIC_CRYPTO_CAP + SN_QUIC_CRYPTO_CAP / 8 : 0);
}

/* RFC 9000 16: variable-length integer, the two high bits of the first byte give its length
 * (1, 2, 4 or 8 bytes). */
static uint64_t varint(struct sn_cur *c)
{
    uint8_t b0;
    if (!sn_cur_peek8(c, 0, &b0)) {
        sn_cur_fail(c, -SN_ETRUNC);
        return 0;
    }
    size_t n = (size_t)1 << (b0 >> 6);
    const uint8_t *p = sn_cur_take(c, n);
    if (!p)
        return 0;
    uint64_t v = p[0] & 0x3f;
    for (size_t i = 1; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

bool sn_quic_looks_initial(const uint8_t *p, size_t caplen, size_t len)
{
    struct sn_cur c = sn_cur_make(p, caplen);
    uint8_t first = sn_cur_u8(&c);
    uint32_t v = sn_cur_u32(&c);
    if (c.err || len < 1200 || (first & 0xc0) != 0xc0)
        return false;
    const struct version_info *vi = version_find(v);
    return vi && ((first >> 4) & 3) == vi->initial_type;
}

/* ---- CRYPTO stream reassembly ----------------------------------------------------- */

static inline bool map_get(const struct sn_quic *q, uint32_t i)
{
    return (q->map[i >> 3] >> (i & 7)) & 1;
}

/* Marks [i, i + n) filled: the end bytes with masks, the whole bytes between with memset. */
static void map_set_range(struct sn_quic *q, uint32_t i, uint32_t n)
{
    if (!n)
        return;
    uint32_t first = i >> 3, last = (i + n - 1) >> 3;
    uint8_t head = (uint8_t)(0xffu << (i & 7));              /* bits i & 7 .. 7 */
    uint8_t tail = (uint8_t)(0xffu >> (7 - ((i + n - 1) & 7))); /* bits 0 .. (i + n - 1) & 7 */
    if (first == last) {
        q->map[first] |= head & tail;
        return;
    }
    q->map[first] |= head;
    memset(q->map + first + 1, 0xff, last - first - 1);
    q->map[last] |= tail;
}

/* The first unfilled offset from c on, at most hi (bits are set below hi only): bit by bit
 * up to a byte boundary, then 64 and 8 bytes at a time while full. */
static uint32_t map_gap(const struct sn_quic *q, uint32_t c, uint32_t hi)
{
    for (; c < hi && (c & 7); c++)
        if (!map_get(q, c))
            return c;
    for (uint64_t w; hi - c >= 64 && (memcpy(&w, q->map + (c >> 3), 8), w == ~0ull);)
        c += 64;
    while (hi - c >= 8 && q->map[c >> 3] == 0xff)
        c += 8;
    while (c < hi && map_get(q, c))
        c++;
    return c;
}

/* Stores CRYPTO data at its stream offset. Data sent again at an offset must be the same
 * (RFC 9000 19.6), so overlaps are simply overwritten. Bytes beyond the cap are dropped and
 * flag an overflow. A flow without a buffer borrows the per-thread cx->reasm for the call;
 * sn_quic_datagram gives it one of its own if the ClientHello is still incomplete after it. */
static void crypto_store(struct sn_quic *q, uint64_t off, const uint8_t *data, size_t n)
{
    if (!q->buf) {
        q->buf = q->cx->reasm;
        q->map = q->buf + SN_QUIC_CRYPTO_CAP;
        memset(q->map, 0, SN_QUIC_CRYPTO_CAP / 8); /* the previous borrower's bits */
    }
    if (off >= SN_QUIC_CRYPTO_CAP) {
        q->overflow = n > 0;
        return;
    }
    if (off + n > SN_QUIC_CRYPTO_CAP) {
        q->overflow = true;
        n = (size_t)(SN_QUIC_CRYPTO_CAP - off);
    }
    uint32_t o = (uint32_t)off;
    memcpy(q->buf + o, data, n);
    map_set_range(q, o, (uint32_t)n);
    if (o + n > q->hi)
        q->hi = o + (uint32_t)n;
    /* Data starting beyond the contiguous prefix cannot extend it. Otherwise [0, o + n) is
     * filled now: advance from there over data stored earlier (so each byte is scanned once
     * per flow). */
    if (o > q->contig)
        return;
    q->contig = map_gap(q, o + (uint32_t)n > q->contig ? o + (uint32_t)n : q->contig, q->hi);
}

/* ---- frames: RFC 9000 19 (those allowed in Initial packets, 12.4) ------------------ */

/* CRYPTO { Offset (i), Length (i), Crypto Data (..) }: the same fields in gQUIC's CRYPTO
 * frame (T05x). */
static int crypto_frame(struct sn_quic *q, struct sn_cur *c)
{
    uint64_t off = varint(c);
    uint64_t n = varint(c);
    if (n > sn_cur_left(c))
        return -SN_EPROTO;
    const uint8_t *d = sn_cur_take(c, (size_t)n);
    if (!d)
        return -SN_EPROTO;
    crypto_store(q, off, d, (size_t)n);
    return 0;
}

/* Google's frames in T050/T051 Initials (as Chromium's QuicFramer writes them from version
 * 47 on, and Wireshark decodes them): a one-byte type; CRYPTO 0x08 with IETF varints,
 * PING 0x07, and PADDING 0x00, which fills the rest of the packet. Anything else ends the
 * walk (CRYPTO data before it is kept): an ACK (0x40..0x7f), which only a retransmitted
 * Initial may carry ahead of its CRYPTO frame, or a STREAM frame (0x80..0xff). */
static int gquic_frames(struct sn_quic *q, const uint8_t *p, size_t len)
{
    struct sn_cur c = sn_cur_make(p, len);
    while (sn_cur_left(&c)) {
        switch (sn_cur_u8(&c)) {
        case 0x00:
            return 0;
        case 0x07:
            break;
        case 0x08:
            if (crypto_frame(q, &c) < 0)
                return -SN_EPROTO;
            break;
        default:
            return -SN_EPROTO;
        }
    }
    return 0;
}

/* Walks a decrypted Initial payload. Returns 0, or -SN_EPROTO for a malformed or
 * unexpected frame (CRYPTO data before it is kept). */
static int frames(struct sn_quic *q, const uint8_t *p, size_t len)
{
    if (q->frames == FRAMES_GQUIC)
        return gquic_frames(q, p, len);
    struct sn_cur c = sn_cur_make(p, len);
    while (sn_cur_left(&c) && !c.err) {
        uint64_t type = varint(&c);
        switch (type) {
        case 0x00: /* PADDING: runs of zero bytes */
            sn_cur_skip_run(&c, 0);
            break;
        case 0x01: /* PING */
            break;
        case 0x02:   /* ACK { Largest, Delay, Range Count, First Range, (Gap, Length)... } */
        case 0x03: { /* ACK with ECN counts (three more varints) */
            varint(&c);
            varint(&c);
            uint64_t ranges = varint(&c);
            varint(&c);
            for (uint64_t i = 0; i < ranges && !c.err; i++) {
                varint(&c);
                varint(&c);
            }
            if (type == 0x03) {
                varint(&c);
                varint(&c);
                varint(&c);
            }
            break;
        }
        case 0x06: /* CRYPTO */
            if (crypto_frame(q, &c) < 0)
                return -SN_EPROTO;
            break;
        case 0x1c: /* CONNECTION_CLOSE: nothing more for us in this packet */
            return 0;
        default:
            return -SN_EPROTO;
        }
    }
    return c.err ? -SN_EPROTO : 0;
}

/* ---- packet protection: RFC 9001 5.3 (AEAD), 5.4 (header protection) -------------- */

/* RFC 9000 A.3: the full packet number closest to the next expected one. */
static int64_t decode_pn(int64_t largest, uint64_t truncated, unsigned bits)
{
    int64_t expected = largest + 1;
    int64_t win = (int64_t)1 << bits, hwin = win / 2, mask = win - 1;
    int64_t cand = (expected & ~mask) | (int64_t)truncated;
    if (cand <= expected - hwin && cand < ((int64_t)1 << 62) - win)
        return cand + win;
    if (cand > expected + hwin && cand >= win)
        return cand - win;
    return cand;
}

/* Removes header protection and decrypts one Initial: pkt[0, pn_off) is the header up to
 * the packet number, pkt[pn_off, pn_off + rest) the packet number and protected payload.
 * Plaintext goes to cx->plain; returns its length, or -SN_EPROTO. */
static int unprotect(struct sn_quic *q, const uint8_t *pkt, size_t pn_off, size_t rest)
{
    struct sn_quic_ctx *cx = q->cx;
    uint8_t mask[16], nonce[12];
    int n, n2;
    if (rest < 4 + SAMPLE_LEN || pn_off + rest > PKT_MAX)
        return -SN_EPROTO;
    /* Sample: 16 bytes starting 4 bytes after the packet number's start. */
    if (!EVP_EncryptInit_ex2(cx->ecb_ctx, NULL, q->hp, NULL, NULL) ||
        !EVP_EncryptUpdate(cx->ecb_ctx, mask, &n, pkt + pn_off + 4, SAMPLE_LEN) || n != 16)
        return -SN_EPROTO;
    uint8_t first = (uint8_t)(pkt[0] ^ (mask[0] & 0x0f)); /* long header: low 4 bits */
    size_t pn_len = (size_t)(first & 3) + 1;
    if (rest < pn_len + TAG_LEN + 1)
        return -SN_EPROTO;
    memcpy(cx->aad, pkt, pn_off + pn_len);
    cx->aad[0] = first;
    uint64_t tpn = 0;
    for (size_t i = 0; i < pn_len; i++) {
        cx->aad[pn_off + i] = (uint8_t)(pkt[pn_off + i] ^ mask[1 + i]);
        tpn = tpn << 8 | cx->aad[pn_off + i];
    }
    int64_t pn = decode_pn(q->largest_pn, tpn, (unsigned)(8 * pn_len));
    /* Nonce: the IV XORed with the packet number, left-padded to 12 bytes. */
    memcpy(nonce, q->iv, sizeof(nonce));
    for (size_t i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)((uint64_t)pn >> (8 * i));
    const uint8_t *ct = pkt + pn_off + pn_len;
    size_t ct_len = rest - pn_len - TAG_LEN;
    EVP_CIPHER_CTX *g = cx->gcm_ctx;
    if (!EVP_DecryptInit_ex2(g, NULL, q->key, nonce, NULL) ||
        !EVP_DecryptUpdate(g, NULL, &n, cx->aad, (int)(pn_off + pn_len)) ||
        !EVP_DecryptUpdate(g, cx->plain, &n, ct, (int)ct_len) ||
        !EVP_CIPHER_CTX_ctrl(g, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(ct + ct_len)) ||
        EVP_DecryptFinal_ex(g, cx->plain + n, &n2) <= 0)
        return -SN_EPROTO;
    if (pn > q->largest_pn)
        q->largest_pn = pn;
    return (int)ct_len;
}

/* Derives the flow's keys from this Initial's DCID (first Initial, or after a Retry, when
 * the client starts over with the DCID the server chose). */
static bool set_keys(struct sn_quic *q, const struct version_info *vi, uint32_t version,
                     const uint8_t *dcid, size_t dcid_len)
{
    if (sn_quic_client_keys(q->cx, version, dcid, dcid_len, q->key, q->iv, q->hp))
        return false;
    q->version = version;
    q->frames = vi->frames;
    memcpy(q->dcid, dcid, dcid_len);
    q->dcid_len = (uint8_t)dcid_len;
    q->largest_pn = -1;
    return true;
}

/* One client Initial. */
static void initial(struct sn_quic *q, const struct version_info *vi, uint32_t version,
                    const uint8_t *dcid, size_t dcid_len,
                    const uint8_t *pkt, size_t pn_off, size_t rest)
{
    struct sn_quic_ctx *cx = q->cx;
    bool same = q->version == version && q->dcid_len == dcid_len &&
                memcmp(q->dcid, dcid, dcid_len) == 0;
    if (!q->version) {
        if (!set_keys(q, vi, version, dcid, dcid_len)) {
            cx->st.bad_packets++;
            return;
        }
        same = true; /* keyed from this DCID just now: no other keys to try */
    }
    int n = unprotect(q, pkt, pn_off, rest);
    if (n < 0 && !same && q->version) {
        /* Later Initials carry the server's chosen DCID but keep the original keys; only a
         * Retry restarts them from a new DCID. Try that before calling the packet bad. */
        uint8_t key[16], iv[12], hp[16];
        uint32_t ov = q->version;
        int64_t opn = q->largest_pn;
        memcpy(key, q->key, 16);
        memcpy(iv, q->iv, 12);
        memcpy(hp, q->hp, 16);
        uint8_t odcid[CID_MAX], olen = q->dcid_len;
        memcpy(odcid, q->dcid, olen);
        if (set_keys(q, vi, version, dcid, dcid_len))
            n = unprotect(q, pkt, pn_off, rest);
        if (n < 0) { /* restore the original keys */
            q->version = ov;
            q->largest_pn = opn;
            memcpy(q->key, key, 16);
            memcpy(q->iv, iv, 12);
            memcpy(q->hp, hp, 16);
            memcpy(q->dcid, odcid, olen);
            q->dcid_len = olen;
        }
    }
    if (n < 0) {
        cx->st.bad_packets++;
        return;
    }
    cx->st.initials++;
    if (frames(q, cx->plain, (size_t)n) < 0)
        cx->st.bad_packets++;
}

/* RFC 9000 17.2 / 17.2.2:
 *   Long Header Packet { Header Form (1) = 1, Fixed Bit (1) = 1, Long Packet Type (2),
 *     Type-Specific Bits (4), Version (32), DCID Length (8), DCID (0..160),
 *     SCID Length (8), SCID (0..160), ... }
 *   Initial: ... Token Length (i), Token (..), Length (i), Packet Number (8..32),
 *     Packet Payload (8..)
 * A datagram may hold several long-header packets (coalesced, 12.2), each with its Length;
 * a short-header packet can only come last. */
static void datagram(struct sn_quic *q, const uint8_t *p, size_t caplen)
{
    struct sn_cur c = sn_cur_make(p, caplen);
    while (sn_cur_left(&c) && !q->done) {
        const uint8_t *pkt = c.p;
        uint8_t first = sn_cur_u8(&c);
        if (!(first & 0x80))
            return; /* short header */
        uint32_t version = sn_cur_u32(&c);
        uint8_t dcil = sn_cur_u8(&c);
        const uint8_t *dcid = sn_cur_take(&c, dcil);
        uint8_t scil = sn_cur_u8(&c);
        sn_cur_skip(&c, scil);
        const struct version_info *vi = version_find(version);
        if (c.err || !vi || dcil > CID_MAX || scil > CID_MAX)
            return; /* version negotiation, an unknown version, or cut */
        uint8_t type = (first >> 4) & 3;
        bool is_initial = type == vi->initial_type;
        /* Retry (v1 type 3, v2 type 0) has no Length: it ends the datagram. */
        if (type == vi->retry_type)
            return;
        if (is_initial)
            sn_cur_skip(&c, (size_t)varint(&c)); /* token */
        uint64_t len = varint(&c);
        if (c.err || len > sn_cur_left(&c)) {
            if (is_initial)
                q->cx->st.bad_packets++;
            return;
        }
        size_t pn_off = (size_t)(c.p - pkt);
        sn_cur_skip(&c, (size_t)len);
        if (is_initial && (!q->version || q->version == version))
            initial(q, vi, version, dcid, dcil, pkt, pn_off, (size_t)len);
    }
}

/* One datagram, then the ClientHello check (sn_quic_datagram's results). */
static int step(struct sn_quic *q, const uint8_t *p, size_t caplen, const uint8_t **hello,
                size_t *hello_len)
{
    if (q->datagrams < UINT8_MAX)
        q->datagrams++;
    if (p && caplen)
        datagram(q, p, caplen);
    /* RFC 8446 4: Handshake { msg_type (1), length (3), body }: the CRYPTO stream of a
     * client's Initials starts with its ClientHello. */
    if (q->contig >= HS_HDR) {
        struct sn_cur h = sn_cur_make(q->buf, q->contig);
        uint8_t type = sn_cur_u8(&h);
        uint32_t mlen = sn_cur_u24(&h);
        if (type != HS_CLIENT_HELLO || HS_HDR + (uint64_t)mlen > SN_QUIC_CRYPTO_CAP) {
            if (type == HS_CLIENT_HELLO)
                q->cx->st.reasm_overflow++;
            q->done = true;
            q->cx->st.gave_up++;
            return SN_QUIC_DONE;
        }
        if (q->contig >= HS_HDR + mlen) {
            q->done = true;
            q->cx->st.client_hellos++;
            *hello = q->buf;
            *hello_len = HS_HDR + mlen;
            return SN_QUIC_HELLO;
        }
    }
    if (q->datagrams >= SN_QUIC_MAX_DATAGRAMS || (q->overflow && q->contig < HS_HDR)) {
        if (q->overflow)
            q->cx->st.reasm_overflow++;
        q->done = true;
        q->cx->st.gave_up++;
        return SN_QUIC_DONE;
    }
    return SN_QUIC_MORE;
}

/* Moves a flow's CRYPTO data out of the borrowed cx->reasm into a buffer of its own. */
static bool own_buf(struct sn_quic *q)
{
    uint8_t *b = malloc(SN_QUIC_CRYPTO_CAP + SN_QUIC_CRYPTO_CAP / 8);
    if (!b)
        return false;
    size_t mapped = (q->hi + 7) / 8; /* map bits are set below hi only */
    memcpy(b, q->buf, q->hi);
    memcpy(b + SN_QUIC_CRYPTO_CAP, q->map, mapped);
    memset(b + SN_QUIC_CRYPTO_CAP + mapped, 0, SN_QUIC_CRYPTO_CAP / 8 - mapped);
    q->buf = b;
    q->map = b + SN_QUIC_CRYPTO_CAP;
    return true;
}

int sn_quic_datagram(struct sn_quic *q, const uint8_t *p, size_t caplen, const uint8_t **hello,
                     size_t *hello_len)
{
    if (!q || q->done)
        return SN_QUIC_DONE;
    int r = step(q, p, caplen, hello, hello_len);
    if (q->buf != q->cx->reasm)
        return r;
    /* The flow borrowed cx->reasm for this call. Done: leave it (a hello stays there until
     * the next call on this ctx). Still under way: keep the data in a buffer of its own. */
    if (r == SN_QUIC_MORE && own_buf(q))
        return r;
    if (r == SN_QUIC_MORE) { /* no memory: give up on the flow */
        q->done = true;
        q->cx->st.gave_up++;
        r = SN_QUIC_DONE;
    }
    q->buf = q->map = NULL;
    return r;
}
