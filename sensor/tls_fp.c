/* tls_fp: JA3, JA3S and JA4 from parsed hello fields. See include/tls_fp.h.
 *
 * Every fingerprint is produced by one routine that emits its source string piece by piece
 * into an "out" that is either a digest context or a bounded buffer, so the hashed string and
 * the debug string are the same bytes by construction and no list length needs a buffer.
 */
#define SN_LOG_MOD "tls_fp"

#include "tls_fp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "err.h"
#include "json.h"
#include "digest.h"

bool sn_tls_fp_is_grease(uint16_t v)
{
    /* RFC 8701 2: both bytes equal, each of the form 0x?A. */
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

const char *sn_tls_fp_ja4_version(uint16_t v)
{
    switch (v) {
    case 0x0304: return "13";
    case 0x0303: return "12";
    case 0x0302: return "11";
    case 0x0301: return "10";
    case 0x0300: return "s3";
    case 0x0002: return "s2";
    case 0xfeff: return "d1";
    case 0xfefd: return "d2";
    case 0xfefc: return "d3";
    default: return "00";
    }
}

/* A sink for fingerprint source strings: a digest, a bounded buffer, or both. The digest
 * input is staged and fed in large pieces: a source string is made of many one- to
 * five-byte pieces, and each EVP_DigestUpdate costs far more than the bytes it hashes.
 * A string that fits the stage is hashed in one piece at the end (or found in the memo
 * below); only longer ones open a digest context and stream. */
struct fp_out {
    int which;      /* MD_NONE: buffer only; else the digest */
    EVP_MD_CTX *md; /* opened at the first flush */
    char *buf;
    size_t cap, len; /* len counts every byte emitted, even past cap */
    bool md_err;
    size_t nstage;
    char stage[512];
};

enum { MD_NONE, MD_MD5, MD_SHA256 };

static const EVP_MD *md_type(int which)
{
    return which == MD_MD5 ? sn_digest_md5() : sn_digest_sha256();
}

static void out_flush(struct fp_out *o)
{
    if (!o->md && !o->md_err) {
        o->md = EVP_MD_CTX_new();
        if (!o->md || EVP_DigestInit_ex(o->md, md_type(o->which), NULL) != 1)
            o->md_err = true;
    }
    if (o->nstage && !o->md_err && EVP_DigestUpdate(o->md, o->stage, o->nstage) != 1)
        o->md_err = true;
    o->nstage = 0;
}

static void out_put(struct fp_out *o, const char *s, size_t n)
{
    if (o->which != MD_NONE) {
        if (o->nstage + n > sizeof(o->stage))
            out_flush(o);
        if (n > sizeof(o->stage)) {
            if (!o->md_err && EVP_DigestUpdate(o->md, s, n) != 1)
                o->md_err = true;
        } else if (n <= 8) {
            for (size_t i = 0; i < n; i++) /* short pieces: no memcpy call */
                o->stage[o->nstage + i] = s[i];
            o->nstage += n;
        } else {
            memcpy(o->stage + o->nstage, s, n);
            o->nstage += n;
        }
    }
    if (o->buf && o->cap > 0 && o->len < o->cap - 1) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void out_str(struct fp_out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* Decimal without snprintf: JA3 strings are made of dozens of small numbers per hello. */
static void out_dec(struct fp_out *o, unsigned v)
{
    char tmp[16];
    char *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_put(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void out_finish_buf(struct fp_out *o)
{
    if (o->buf && o->cap > 0)
        o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
}

/* Lists are formatted into a local buffer and emitted in a few large pieces: one out_put
 * per value was most of the cost of a fingerprint. */
#define LIST_BUF 256
#define LIST_ITEM_MAX 6 /* separator + 5 decimal digits (or 4 hex) */

/* Writes v in decimal at p; returns the digits written (1-5). */
static size_t put_dec16(char *p, uint16_t v)
{
    return (size_t)(sn_json_put_u64(p, v) - p);
}

/* Decimal list joined by '-', GREASE skipped (JA3). */
static void out_dec_list(struct fp_out *o, const uint16_t *v, size_t n)
{
    char buf[LIST_BUF];
    size_t k = 0;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (sn_tls_fp_is_grease(v[i]))
            continue;
        if (k > sizeof(buf) - LIST_ITEM_MAX) {
            out_put(o, buf, k);
            k = 0;
        }
        if (!first)
            buf[k++] = '-';
        k += put_dec16(buf + k, v[i]);
        first = false;
    }
    out_put(o, buf, k);
}

/* 4-digit lowercase hex list joined by ',' (JA4). Input has GREASE removed already. */
static void out_hex_list(struct fp_out *o, const uint16_t *v, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    char buf[LIST_BUF];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > sizeof(buf) - LIST_ITEM_MAX) {
            out_put(o, buf, k);
            k = 0;
        }
        if (i)
            buf[k++] = ',';
        buf[k++] = hx[v[i] >> 12];
        buf[k++] = hx[(v[i] >> 8) & 15];
        buf[k++] = hx[(v[i] >> 4) & 15];
        buf[k++] = hx[v[i] & 15];
    }
    out_put(o, buf, k);
}

static void hex_lower(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Recent fingerprints, per thread. Most hellos come from a few client builds, so the same
 * lists recur (JA4's sorted ones even when a browser shuffles its extensions, which changes
 * JA3); a repeat costs building a key and a compare instead of formatting the source string
 * and hashing it. The key is the list values the source string is made of (GREASE removed,
 * each list after its length where several are joined), so equal keys of one kind mean
 * equal strings: a hit gives the digest the hash would. Eight ways per set (two or four
 * left conflict misses with a few hundred distinct lists, common in a busy capture), the
 * least recently used one is replaced. 512 slots, about 150 KB per thread that makes
 * fingerprints. */
#define MEMO_SETS 64
#define MEMO_WAYS 8
#define MEMO_KEY_MAX 128 /* values; longer keys (hostile or odd hellos) are never memoised */

enum { MK_JA3 = 1, MK_JA3S, MK_JA4_B, MK_JA4_C };

struct memo_key {
    uint16_t v[MEMO_KEY_MAX];
    size_t n;
    bool over; /* did not fit: no memo */
};

struct memo_slot {
    uint16_t n; /* key values; 0: empty */
    uint8_t kind, mdlen;
    uint32_t used; /* the table's clock at the last hit or fill: the oldest is replaced */
    unsigned char md[32];
    uint16_t key[MEMO_KEY_MAX];
};

struct sn_tls_fp_memo {
    struct memo_slot way[MEMO_SETS][MEMO_WAYS];
    uint32_t clock;
};

struct sn_tls_fp_memo *sn_tls_fp_memo_new(void)
{
    struct sn_tls_fp_memo *t = calloc(1, sizeof(*t));
    if (!t)
        SN_ERR(ENOMEM, "fingerprint memo (%zu bytes)", sizeof(*t));
    return t;
}

void sn_tls_fp_memo_free(struct sn_tls_fp_memo *t)
{
    free(t);
}

static void key_add(struct memo_key *k, uint16_t x)
{
    if (k->n < MEMO_KEY_MAX)
        k->v[k->n++] = x;
    else
        k->over = true;
}

/* A list's length, then its values without GREASE (what out_dec_list writes). */
static void key_list(struct memo_key *k, const uint16_t *v, size_t n)
{
    size_t at = k->n, cnt = 0;
    key_add(k, 0);
    for (size_t i = 0; i < n && !k->over; i++)
        if (!sn_tls_fp_is_grease(v[i])) {
            key_add(k, v[i]);
            cnt++;
        }
    if (!k->over)
        k->v[at] = (uint16_t)cnt; /* cnt < MEMO_KEY_MAX */
}

/* Set index of a key: 8 bytes per step, then a finaliser (only spreads the sets). */
static unsigned memo_set(int kind, const struct memo_key *k)
{
    const unsigned char *s = (const unsigned char *)k->v;
    size_t n = k->n * sizeof(k->v[0]), i = 0;
    uint64_t h = (uint64_t)n * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)kind;
    for (uint64_t x; i + 8 <= n; i += 8) {
        memcpy(&x, s + i, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    for (; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (unsigned)(h % MEMO_SETS);
}

static bool memo_get(struct sn_tls_fp_memo *t, int kind, const struct memo_key *k, unsigned set,
                     unsigned char *md, unsigned int *mdlen)
{
    for (unsigned w = 0; w < MEMO_WAYS; w++) {
        struct memo_slot *m = &t->way[set][w];
        if (m->n == k->n && m->kind == kind &&
            memcmp(m->key, k->v, k->n * sizeof(k->v[0])) == 0) {
            memcpy(md, m->md, m->mdlen);
            *mdlen = m->mdlen;
            m->used = ++t->clock;
            return true;
        }
    }
    return false;
}

static void memo_put(struct sn_tls_fp_memo *t, int kind, const struct memo_key *k, unsigned set,
                     const unsigned char *md, unsigned int mdlen)
{
    if (mdlen > sizeof(t->way[0][0].md))
        return;
    struct memo_slot *m = &t->way[set][0];
    for (unsigned w = 1; w < MEMO_WAYS; w++) /* the oldest (by age, so the clock may wrap) */
        if (t->clock - t->way[set][w].used > t->clock - m->used)
            m = &t->way[set][w];
    m->n = (uint16_t)k->n;
    m->kind = (uint8_t)kind;
    m->mdlen = (uint8_t)mdlen;
    m->used = ++t->clock;
    memcpy(m->md, md, mdlen);
    memcpy(m->key, k->v, k->n * sizeof(k->v[0]));
}

/* Starts a digest sink. Nothing to allocate: see fp_out. */
static void md_begin(struct fp_out *o, int which)
{
    o->which = which;
    o->md = NULL;
    o->buf = NULL;
    o->cap = o->len = o->nstage = 0;
    o->md_err = false;
}

/* Finishes a digest sink into md/mdlen and frees it: a string that stayed in the stage is
 * hashed in one piece. Returns 0 or an error. */
static int md_final(struct fp_out *o, unsigned char *md, unsigned int *mdlen)
{
    int rc = 0;
    if (!o->md && !o->md_err) {
        if (EVP_Digest(o->stage, o->nstage, md, mdlen, md_type(o->which), NULL) != 1)
            rc = SN_ERR(ENOMEM, "EVP_Digest");
        return rc;
    }
    out_flush(o);
    if (o->md_err || EVP_DigestFinal_ex(o->md, md, mdlen) != 1)
        rc = SN_ERR(ENOMEM, "EVP_DigestFinal_ex");
    EVP_MD_CTX_free(o->md);
    o->md = NULL;
    return rc;
}

/* Writes the source string of a fingerprint into a digest sink. */
typedef void (*emit_fn)(struct fp_out *o, const void *arg);

/* The first `nhex` lowercase hex digits (+ NUL) of the digest of emit's string, from the
 * memo under (kind, key) when there, else computed and remembered. */
static int fp_digest(struct sn_tls_fp_memo *memo, int kind, const struct memo_key *k,
                     int which, emit_fn emit, const void *arg, char *out, size_t nhex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    struct sn_tls_fp_memo *t = !k->over && k->n > 0 ? memo : NULL;
    unsigned set = t ? memo_set(kind, k) : 0;
    if (!t || !memo_get(t, kind, k, set, md, &mdlen)) {
        struct fp_out o;
        md_begin(&o, which);
        emit(&o, arg);
        int rc = md_final(&o, md, &mdlen);
        if (rc)
            return rc;
        if (t)
            memo_put(t, kind, k, set, md, mdlen);
    }
    if (nhex > 2 * (size_t)mdlen)
        nhex = 2 * (size_t)mdlen;
    hex_lower(md, (nhex + 1) / 2, hex); /* only the bytes shown: JA4 keeps 6 of 32 */
    memcpy(out, hex, nhex);
    out[nhex] = '\0';
    return 0;
}

/* JA3 = SSLVersion,Cipher,SSLExtension,EllipticCurve,EllipticCurvePointFormat (decimal). */
static void ja3_emit(struct fp_out *o, const struct sn_tls_fp_hello *h)
{
    out_dec(o, h->legacy_version);
    out_put(o, ",", 1);
    out_dec_list(o, h->ciphers, h->n_ciphers);
    out_put(o, ",", 1);
    out_dec_list(o, h->exts, h->n_exts);
    out_put(o, ",", 1);
    out_dec_list(o, h->groups, h->n_groups);
    out_put(o, ",", 1);
    for (size_t i = 0; i < h->n_point_formats; i++) {
        if (i)
            out_put(o, "-", 1);
        out_dec(o, h->point_formats[i]);
    }
}

static void ja3_emit_cb(struct fp_out *o, const void *arg)
{
    ja3_emit(o, arg);
}

int sn_tls_fp_ja3(const struct sn_tls_fp_hello *h, char out[SN_TLS_FP_MD5_HEX])
{
    struct memo_key k = {.n = 0};
    key_add(&k, h->legacy_version);
    key_list(&k, h->ciphers, h->n_ciphers);
    key_list(&k, h->exts, h->n_exts);
    key_list(&k, h->groups, h->n_groups);
    key_add(&k, (uint16_t)(h->n_point_formats < MEMO_KEY_MAX ? h->n_point_formats : 0));
    if (h->n_point_formats >= MEMO_KEY_MAX)
        k.over = true;
    for (size_t i = 0; i < h->n_point_formats && !k.over; i++)
        key_add(&k, h->point_formats[i]);
    return fp_digest(h->memo, MK_JA3, &k, MD_MD5, ja3_emit_cb, h, out, 32);
}

size_t sn_tls_fp_ja3_string(const struct sn_tls_fp_hello *h, char *buf, size_t cap)
{
    struct fp_out o = {.buf = buf, .cap = cap};
    ja3_emit(&o, h);
    out_finish_buf(&o);
    return o.len;
}

struct ja3s_in {
    uint16_t version, cipher;
    const uint16_t *exts;
    size_t n_exts;
};

static void ja3s_emit_cb(struct fp_out *o, const void *arg)
{
    const struct ja3s_in *in = arg;
    out_dec(o, in->version);
    out_put(o, ",", 1);
    out_dec(o, in->cipher);
    out_put(o, ",", 1);
    out_dec_list(o, in->exts, in->n_exts);
}

int sn_tls_fp_ja3s(struct sn_tls_fp_memo *memo, uint16_t version, uint16_t cipher,
                   const uint16_t *exts, size_t n_exts, char out[SN_TLS_FP_MD5_HEX])
{
    struct ja3s_in in = {version, cipher, exts, n_exts};
    struct memo_key k = {.n = 0};
    key_add(&k, version);
    key_add(&k, cipher);
    key_list(&k, exts, n_exts);
    return fp_digest(memo, MK_JA3S, &k, MD_MD5, ja3s_emit_cb, &in, out, 32);
}

/* ---- JA4 ---------------------------------------------------------------------------- */

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return (x > y) - (x < y);
}

/* LSD radix sort, low byte then high byte, through tmp[n]: linear, for long lists. */
static void radix_u16(uint16_t *v, uint16_t *tmp, size_t n)
{
    size_t lo[257] = {0}, hi[257] = {0};
    for (size_t i = 0; i < n; i++) {
        lo[(v[i] & 0xff) + 1]++;
        hi[(v[i] >> 8) + 1]++;
    }
    for (unsigned b = 1; b < 257; b++) {
        lo[b] += lo[b - 1];
        hi[b] += hi[b - 1];
    }
    for (size_t i = 0; i < n; i++) /* stable by low byte into tmp */
        tmp[lo[v[i] & 0xff]++] = v[i];
    for (size_t i = 0; i < n; i++) /* stable by high byte back into v */
        v[hi[tmp[i] >> 8]++] = tmp[i];
}

/* Ascending sort of a hello's lists. Real hellos have a few dozen values, where insertion
 * sort beats anything else; longer lists (some clients offer over a hundred cipher suites)
 * take a radix sort, and very long (hostile) ones qsort's n log n without a buffer. */
static void sort_u16(uint16_t *v, size_t n)
{
    if (n > 64) {
        uint16_t tmp[1024];
        if (n <= sizeof(tmp) / sizeof(tmp[0]))
            radix_u16(v, tmp, n);
        else
            qsort(v, n, sizeof(uint16_t), cmp_u16);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint16_t x = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static bool ascii_alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The parts of JA4 that need sorting, with GREASE (and for extensions SNI/ALPN) removed. */
struct ja4_lists {
    uint16_t *ciphers, *exts, *sigalgs;
    size_t n_ciphers, n_exts, n_sigalgs;
    unsigned cipher_count, ext_count; /* for JA4_a: GREASE excluded, SNI/ALPN included */
    uint16_t *heap;
    uint16_t stack[384];
};

static size_t copy_no_grease(uint16_t *dst, const uint16_t *src, size_t n, bool drop_sni_alpn)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (sn_tls_fp_is_grease(src[i]))
            continue;
        if (drop_sni_alpn && (src[i] == 0x0000 || src[i] == 0x0010))
            continue;
        dst[k++] = src[i];
    }
    return k;
}

static size_t count_no_grease(const uint16_t *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !sn_tls_fp_is_grease(v[i]);
    return k;
}

static int ja4_lists_make(struct ja4_lists *l, const struct sn_tls_fp_hello *h)
{
    size_t need = h->n_ciphers + h->n_exts + h->n_sigalgs;
    uint16_t *mem = l->stack;

    l->heap = NULL;
    if (need > sizeof(l->stack) / sizeof(l->stack[0])) {
        l->heap = malloc(need * sizeof(uint16_t));
        if (!l->heap)
            return SN_ERR(ENOMEM, "ja4 lists (%zu values)", need);
        mem = l->heap;
    }
    l->ciphers = mem;
    l->n_ciphers = copy_no_grease(l->ciphers, h->ciphers, h->n_ciphers, false);
    l->exts = l->ciphers + l->n_ciphers;
    l->n_exts = copy_no_grease(l->exts, h->exts, h->n_exts, true);
    l->sigalgs = l->exts + l->n_exts;
    l->n_sigalgs = copy_no_grease(l->sigalgs, h->sigalgs, h->n_sigalgs, false);
    sort_u16(l->ciphers, l->n_ciphers);
    sort_u16(l->exts, l->n_exts);

    l->cipher_count = (unsigned)(l->n_ciphers > 99 ? 99 : l->n_ciphers);
    size_t ne = count_no_grease(h->exts, h->n_exts);
    l->ext_count = (unsigned)(ne > 99 ? 99 : ne);
    return 0;
}

/* JA4_a: transport, version, d/i, cipher count, extension count, ALPN chars (10 chars). */
static void ja4_a(const struct sn_tls_fp_hello *h, const struct ja4_lists *l, char out[11])
{
    uint16_t ver = h->legacy_version;
    bool have = false;
    static const char hx[] = "0123456789abcdef";
    char alpn[3] = "00";

    /* JA4.md: highest supported_versions value, GREASE ignored; else the hello's version. */
    if (h->has_versions_ext) {
        uint16_t best = 0;
        for (size_t i = 0; i < h->n_versions; i++) {
            if (sn_tls_fp_is_grease(h->versions[i]))
                continue;
            if (!have || h->versions[i] > best)
                best = h->versions[i];
            have = true;
        }
        if (have)
            ver = best;
    }
    if (h->alpn0 && h->alpn0_len > 0) {
        uint8_t f = h->alpn0[0], b = h->alpn0[h->alpn0_len - 1];
        if (ascii_alnum(f) && ascii_alnum(b)) {
            alpn[0] = (char)f;
            alpn[1] = (char)b;
        } else {
            /* JA4.md: first and last characters of the hex of the whole first value. */
            alpn[0] = hx[f >> 4];
            alpn[1] = hx[b & 15];
        }
    }
    /* snprintf(out, 11, "%c%s%c%02u%02u%s", ...) written out: it ran once per hello. */
    char tmp[32];
    const char *vs = sn_tls_fp_ja4_version(ver); /* two characters */
    size_t k = 0;
    tmp[k++] = h->transport ? h->transport : 't';
    for (size_t i = 0; vs[i] && k < 16; i++)
        tmp[k++] = vs[i];
    tmp[k++] = h->has_sni ? 'd' : 'i';
    tmp[k++] = (char)('0' + l->cipher_count % 100 / 10);
    tmp[k++] = (char)('0' + l->cipher_count % 10);
    tmp[k++] = (char)('0' + l->ext_count % 100 / 10);
    tmp[k++] = (char)('0' + l->ext_count % 10);
    tmp[k++] = alpn[0];
    tmp[k++] = alpn[1];
    if (k > 10)
        k = 10; /* snprintf's cut */
    memcpy(out, tmp, k);
    out[k] = '\0';
}

static void ja4_c_emit(struct fp_out *o, const struct ja4_lists *l)
{
    out_hex_list(o, l->exts, l->n_exts);
    if (l->n_sigalgs) {
        out_put(o, "_", 1);
        out_hex_list(o, l->sigalgs, l->n_sigalgs);
    }
}

static void ja4_c_emit_cb(struct fp_out *o, const void *arg)
{
    ja4_c_emit(o, arg);
}

static void ja4_b_emit_cb(struct fp_out *o, const void *arg)
{
    const struct ja4_lists *l = arg;
    out_hex_list(o, l->ciphers, l->n_ciphers);
}

int sn_tls_fp_ja4(const struct sn_tls_fp_hello *h, char out[SN_TLS_FP_JA4_LEN])
{
    struct ja4_lists l;
    char a[11], b[13] = "000000000000", c[13] = "000000000000";
    int rc = ja4_lists_make(&l, h);
    if (rc)
        return rc;
    ja4_a(h, &l, a);
    /* JA4.md: an empty list gives twelve zeros rather than the hash of "". */
    if (l.n_ciphers) {
        struct memo_key k = {.n = 0}; /* the sorted list itself */
        for (size_t i = 0; i < l.n_ciphers && !k.over; i++)
            key_add(&k, l.ciphers[i]);
        if ((rc = fp_digest(h->memo, MK_JA4_B, &k, MD_SHA256, ja4_b_emit_cb, &l, b, 12)) != 0)
            goto done;
    }
    /* JA4.md: "If there are no extensions in the sorted extensions list" (SNI and ALPN are
     * not in it), twelve zeros, even if signature algorithms were present. FoxIO's Python
     * agrees (ndpi tls_cipher_lens: ..._000000000000); nDPI hashes "" there instead. */
    if (l.n_exts) {
        struct memo_key k = {.n = 0}; /* sorted extensions after their count, then sigalgs */
        key_add(&k, (uint16_t)(l.n_exts < MEMO_KEY_MAX ? l.n_exts : 0));
        if (l.n_exts >= MEMO_KEY_MAX)
            k.over = true;
        for (size_t i = 0; i < l.n_exts && !k.over; i++)
            key_add(&k, l.exts[i]);
        for (size_t i = 0; i < l.n_sigalgs && !k.over; i++)
            key_add(&k, l.sigalgs[i]);
        if ((rc = fp_digest(h->memo, MK_JA4_C, &k, MD_SHA256, ja4_c_emit_cb, &l, c, 12)) != 0)
            goto done;
    }
    /* snprintf(out, SN_TLS_FP_JA4_LEN, "%s_%s_%s", a, b, c): 10 + 1 + 12 + 1 + 12 chars */
    size_t na = strlen(a);
    memcpy(out, a, na);
    out[na] = '_';
    memcpy(out + na + 1, b, 12);
    out[na + 13] = '_';
    memcpy(out + na + 14, c, 13);
done:
    free(l.heap);
    return rc;
}

size_t sn_tls_fp_ja4_raw(const struct sn_tls_fp_hello *h, char *buf, size_t cap)
{
    struct ja4_lists l;
    struct fp_out o = {.buf = buf, .cap = cap};
    char a[11];
    if (ja4_lists_make(&l, h) != 0) {
        if (buf && cap)
            buf[0] = '\0';
        return 0;
    }
    ja4_a(h, &l, a);
    out_str(&o, a);
    out_put(&o, "_", 1);
    out_hex_list(&o, l.ciphers, l.n_ciphers);
    out_put(&o, "_", 1);
    ja4_c_emit(&o, &l);
    out_finish_buf(&o);
    free(l.heap);
    return o.len;
}
