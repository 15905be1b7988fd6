/* libFuzzer target for the TLS handshake parser (sensor/tls_hs.c, tls_fp.c, x509.c).
 *
 * Input: a sequence of [selector u8][length u16 big-endian][body] entries fed into one meta,
 * so hello/certificate interplay (HRR then ServerHello, Certificate after a TLS 1.3 hello)
 * is reached too. Selector low 2 bits: 0 ClientHello (dir 0), 1 ServerHello (dir 1),
 * 2 Certificate (dir 1), 3 SSLv2 record; bit 2 flips the direction; other bits give the
 * record version's low byte. A short final entry uses whatever bytes remain. The meta is then
 * written as JSON and every accessor is called.
 * Seeds: tests/corpus/tls_hs/ (real messages from tests/data/tls/messages.tsv, made by
 * tests/tools/tls_hs_fixtures.py --corpus).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz_entries.h"
#include "json.h"
#include "tls_hs.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_tls_meta *m = sn_tls_meta_new();
    if (!m)
        return 0;
    size_t off = 0;
    while (off < size) {
        uint8_t sel;
        size_t n;
        uint8_t *body = fuzz_entry_next(data, size, &off, &sel, &n);
        if (!body)
            break;
        int dir = (sel & 3) == 0 ? 0 : 1;
        if (sel & 4)
            dir ^= 1;
        uint16_t rv = (uint16_t)(0x0300 | (sel >> 3));
        int rc;
        switch (sel & 3) {
        case 0: rc = sn_tls_hs_message(m, dir, SN_TLS_HS_CLIENT_HELLO, body, n, rv); break;
        case 1: rc = sn_tls_hs_message(m, dir, SN_TLS_HS_SERVER_HELLO, body, n, rv); break;
        case 2: rc = sn_tls_hs_message(m, dir, SN_TLS_HS_CERTIFICATE, body, n, rv); break;
        default: rc = sn_tls_hs_sslv2(m, body, n); break;
        }
        free(body);
        if (rc != 0 && rc != -SN_ETRUNC && rc != -SN_EPROTO && rc != -ENOMEM)
            abort(); /* an undocumented result */
    }
    sn_tls_meta_note_ccs(m, 0);

    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_json_obj_begin(&j, "tls");
    sn_tls_meta_json(m, &j);
    sn_json_obj_end(&j);
    sn_json_obj_end(&j);
    sn_json_fini(&j);

    volatile size_t sink = 0;
    const char *s;
    if ((s = sn_tls_meta_sni(m)) != NULL)
        sink += strlen(s);
    if ((s = sn_tls_meta_ja3(m)) != NULL)
        sink += strlen(s);
    if ((s = sn_tls_meta_ja3s(m)) != NULL)
        sink += strlen(s);
    if ((s = sn_tls_meta_ja4(m)) != NULL)
        sink += strlen(s);
    if ((s = sn_tls_meta_alpn(m)) != NULL)
        sink += strlen(s);
    sink += (size_t)(sn_tls_meta_is_tls13(m) + sn_tls_meta_has_client_hello(m) +
                     sn_tls_meta_has_server_hello(m) + sn_tls_meta_version(m) +
                     sn_tls_meta_ech(m));
    uint32_t chain = 0;
    const struct sn_x509_info *x = sn_tls_meta_leaf(m, &chain);
    if (x)
        for (size_t i = 0; i < x->n_san; i++)
            sink += strlen(sn_x509_san(x, i));
    (void)sink;
    sn_tls_meta_free(m);
    return 0;
}
