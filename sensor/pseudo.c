#define SN_LOG_MOD "pseudo"
#include "pseudo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "err.h"

/* HMAC (RFC 2104) over SHA-256 with the padded-key blocks digested once: each MAC copies
 * the two prepared digest states instead of re-deriving them (OpenSSL 3's one-shot HMAC()
 * fetches the algorithm and rebuilds the key schedule on every call, ~30x slower). */
struct sn_pseudo {
    EVP_MD *md;
    EVP_MD_CTX *inner, *outer, *work;
};

int sn_pseudo_load_key(const char *path, uint8_t *key, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return SN_ERR(errno, "%s: %s", path, strerror(errno));
    uint8_t buf[SN_PSEUDO_KEY_MAX + 3];
    size_t n = fread(buf, 1, sizeof(buf), f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr)
        return SN_ERR(EIO, "%s: read error", path);
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    if (n < SN_PSEUDO_KEY_MIN || n > SN_PSEUDO_KEY_MAX || n > cap)
        return SN_ERR(SN_ECONFIG, "%s: key must be %d..%d bytes", path, SN_PSEUDO_KEY_MIN,
                      SN_PSEUDO_KEY_MAX);
    memcpy(key, buf, n);
    *len = n;
    memset(buf, 0, sizeof(buf));
    return 0;
}

struct sn_pseudo *sn_pseudo_new(const uint8_t *key, size_t klen)
{
    enum { BLOCK = 64 };
    uint8_t k[BLOCK], pad[BLOCK];
    struct sn_pseudo *p = calloc(1, sizeof(*p));
    if (!p)
        goto fail;
    p->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    p->inner = EVP_MD_CTX_new();
    p->outer = EVP_MD_CTX_new();
    p->work = EVP_MD_CTX_new();
    if (!p->md || !p->inner || !p->outer || !p->work)
        goto fail;
    memset(k, 0, sizeof(k));
    if (klen > BLOCK) {
        unsigned dl = 0;
        if (!EVP_Digest(key, klen, k, &dl, p->md, NULL))
            goto fail;
    } else {
        memcpy(k, key, klen);
    }
    for (unsigned i = 0; i < BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    if (!EVP_DigestInit_ex(p->inner, p->md, NULL) || !EVP_DigestUpdate(p->inner, pad, BLOCK))
        goto fail;
    for (unsigned i = 0; i < BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    if (!EVP_DigestInit_ex(p->outer, p->md, NULL) || !EVP_DigestUpdate(p->outer, pad, BLOCK))
        goto fail;
    memset(k, 0, sizeof(k));
    memset(pad, 0, sizeof(pad));
    return p;
fail:
    memset(k, 0, sizeof(k));
    memset(pad, 0, sizeof(pad));
    SN_ERR(ENOMEM, "cannot set up HMAC-SHA256");
    sn_pseudo_free(p);
    return NULL;
}

void sn_pseudo_free(struct sn_pseudo *p)
{
    if (!p)
        return;
    EVP_MD_CTX_free(p->inner);
    EVP_MD_CTX_free(p->outer);
    EVP_MD_CTX_free(p->work);
    EVP_MD_free(p->md);
    free(p);
}

void sn_pseudo_mac(const struct sn_pseudo *p, const uint8_t *msg, size_t n, uint8_t out[32])
{
    uint8_t ih[32];
    unsigned len = 0;
    EVP_MD_CTX *w = p->work;
    if (!EVP_MD_CTX_copy_ex(w, p->inner) || !EVP_DigestUpdate(w, msg, n) ||
        !EVP_DigestFinal_ex(w, ih, &len) || !EVP_MD_CTX_copy_ex(w, p->outer) ||
        !EVP_DigestUpdate(w, ih, sizeof(ih)) || !EVP_DigestFinal_ex(w, out, &len))
        memset(out, 0, 32); /* not reached with a working libcrypto; stays deterministic */
}

void sn_pseudo_hmac(const struct sn_pseudo *p, const struct sn_addr *a, unsigned bits,
                    char out[SN_PSEUDO_HEXLEN + 1])
{
    struct sn_addr m = *a;
    sn_addr_mask(&m, bits);
    uint8_t msg[7 + 1 + 16 + 1];
    memcpy(msg, "sn-addr", 7);
    msg[7] = m.family;
    memcpy(msg + 8, m.a, 16);
    msg[24] = (uint8_t)(bits > 255 ? 255 : bits);
    uint8_t mac[32];
    sn_pseudo_mac(p, msg, sizeof(msg), mac);
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < SN_PSEUDO_HEXLEN / 2; i++) {
        out[2 * i] = hx[mac[i] >> 4];
        out[2 * i + 1] = hx[mac[i] & 15];
    }
    out[SN_PSEUDO_HEXLEN] = '\0';
}

void sn_pseudo_prefix(const struct sn_pseudo *p, const struct sn_addr *in, struct sn_addr *out)
{
    unsigned pbits = in->family == 6 ? 64 : 32;
    *out = *in;
    uint8_t msg[5 + 1 + 1 + 16];
    uint8_t mac[32];
    memcpy(msg, "sn-pp", 5);
    msg[5] = in->family;
    for (unsigned i = 0; i < pbits; i++) {
        struct sn_addr m = *in;
        sn_addr_mask(&m, i);
        msg[6] = (uint8_t)i;
        memcpy(msg + 7, m.a, 16);
        sn_pseudo_mac(p, msg, sizeof(msg), mac);
        if (mac[0] & 0x80)
            out->a[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
    }
    if (in->family == 6) {
        uint8_t m2[6 + 1 + 16];
        memcpy(m2, "sn-iid", 6);
        m2[6] = in->family;
        memcpy(m2 + 7, in->a, 16);
        sn_pseudo_mac(p, m2, sizeof(m2), mac);
        memcpy(out->a + 8, mac, 8);
    }
}
