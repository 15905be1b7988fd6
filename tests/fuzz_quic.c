/* libFuzzer target for QUIC Initial parsing (sensor/quic.c) and the hand-off of the
 * ClientHello to the TLS parser (sensor/tls.c, tls_hs.c).
 *
 * Random bytes almost never pass the AEAD tag, so the frame walker and the CRYPTO
 * reassembly would stay unreached. The input is therefore a list of entries
 * [flags u8][length u16 big-endian][bytes]: with flag bit 0 clear the bytes are the plaintext
 * payload (frames) of a client Initial that this harness protects itself (QUIC v1, v2 with
 * bit 1, Google's T050 (gQUIC frames) with bit 3, a fixed DCID, packet number = entry index,
 * bit 2 makes it a 4-byte packet number)
 * and sends as one datagram; with bit 0 set they are sent as a raw datagram. All entries go
 * to one flow through sn_tls_datagram, as the pipeline feeds them; the result is written as
 * JSON. A short final entry uses whatever bytes remain.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz_entries.h"
#include "json.h"
#include "quic.h"
#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t dcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};

/* RFC 9001 5: builds a protected client Initial around `plain` into out; returns its length
 * or 0. */
static size_t seal(struct sn_quic_ctx *cx, uint32_t version, uint32_t pn, bool pn4,
                   const uint8_t *plain, size_t n, uint8_t *out, size_t cap)
{
    uint8_t key[16], iv[12], hp[16], mask[16];
    if (sn_quic_client_keys(cx, version, dcid, sizeof(dcid), key, iv, hp))
        return 0;
    size_t pn_len = pn4 ? 4 : 1;
    size_t body = pn_len + n + 16; /* Length: packet number, payload, tag */
    /* The header-protection sample needs 4 + 16 bytes from the packet number's start. */
    if (body < 20 || body > 16383 || 7 + sizeof(dcid) + 4 + body > cap)
        return 0;
    size_t o = 0;
    uint8_t type = version == SN_QUIC_V2 ? 1 : 0;
    out[o++] = (uint8_t)(0xc0 | type << 4 | (pn_len - 1));
    for (int i = 3; i >= 0; i--)
        out[o++] = (uint8_t)(version >> (8 * i));
    out[o++] = sizeof(dcid);
    memcpy(out + o, dcid, sizeof(dcid));
    o += sizeof(dcid);
    out[o++] = 0; /* SCID length */
    out[o++] = 0; /* token length */
    out[o++] = (uint8_t)(0x40 | body >> 8);
    out[o++] = (uint8_t)body;
    size_t pn_off = o;
    for (size_t i = 0; i < pn_len; i++)
        out[o++] = (uint8_t)(pn >> (8 * (pn_len - 1 - i)));
    uint8_t nonce[12];
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 4; i++)
        nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l;
    int ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce) &&
             EVP_EncryptUpdate(c, NULL, &l, out, (int)o) &&
             EVP_EncryptUpdate(c, out + o, &l, plain, (int)n) &&
             EVP_EncryptFinal_ex(c, out + o + n, &l) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + o + n);
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return 0;
    o += n + 16;
    c = EVP_CIPHER_CTX_new();
    ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL) &&
         EVP_EncryptUpdate(c, mask, &l, out + pn_off + 4, 16);
    EVP_CIPHER_CTX_free(c);
    if (!ok)
        return 0;
    out[0] ^= mask[0] & 0x0f;
    for (size_t i = 0; i < pn_len; i++)
        out[pn_off + i] ^= mask[1 + i];
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sn_quic_ctx *cx;
    static uint8_t pkt[20000];
    if (!cx && !(cx = sn_quic_ctx_new()))
        return 0;
    struct sn_tls_cfg cfg = {.quic = cx};
    struct sn_tls *t = sn_tls_new_quic(&cfg, NULL);
    if (!t)
        return 0;
    size_t off = 0;
    uint32_t idx = 0;
    while (off < size && sn_tls_wants_payload(t)) {
        uint8_t flags;
        size_t n;
        uint8_t *copy = fuzz_entry_next(data, size, &off, &flags, &n);
        if (!copy)
            break;
        if (flags & 1) {
            sn_tls_datagram(t, 0, copy, n);
        } else {
            uint32_t v = flags & 8 ? SN_QUIC_T050 : flags & 2 ? SN_QUIC_V2 : SN_QUIC_V1;
            size_t len = seal(cx, v, idx, flags & 4, copy, n, pkt, sizeof(pkt));
            if (len) {
                uint8_t *dg = malloc(len);
                if (dg) {
                    memcpy(dg, pkt, len);
                    sn_tls_datagram(t, 0, dg, len);
                    free(dg);
                }
            }
        }
        free(copy);
        idx++;
    }
    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_tls_json(t, &j);
    sn_json_obj_end(&j);
    sn_json_fini(&j);
    sn_tls_free(t);
    return 0;
}
