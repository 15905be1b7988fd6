/* libFuzzer target for the certificate decoders (sensor/x509.c), differential: whatever our
 * DER walker decodes, libcrypto must decode to exactly the same fields; the walker must never
 * take a certificate libcrypto rejects. The cached entry point must agree with libcrypto too.
 * Seeds: tests/corpus/x509/ (a few certificates copied from tests/data/x509; a copy of the
 * whole of tests/data/x509 makes a larger seed set).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so ASan catches reads past the certificate. */
    uint8_t *der = malloc(size ? size : 1);
    if (!der)
        return 0;
    memcpy(der, data, size);
    struct sn_x509_info *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    if (!a || !b)
        goto out;
    int rf = sn_x509_parse_fast(a, der, size);
    int rl = sn_x509_parse_libcrypto(b, der, size);
    if (rf == 0 && (rl != 0 || memcmp(a, b, sizeof(*a)) != 0)) {
        fprintf(stderr, "walker [%s|%s|%s|%s|%s|%s|%u|%s|%u/%u] libcrypto rc %d [%s|%s|%s|%s|%s|%s|%u|%s|%u/%u]\n",
                a->subject, a->issuer, a->serial, a->not_before, a->not_after, a->key_type,
                a->key_bits, a->curve, a->n_san, a->n_san_total, rl, b->subject, b->issuer,
                b->serial, b->not_before, b->not_after, b->key_type, b->key_bits, b->curve,
                b->n_san, b->n_san_total);
        abort();
    }
    int rc = sn_x509_parse(a, der, size);
    if (rc != rl || (rc == 0 && memcmp(a, b, sizeof(*a)) != 0))
        abort();
    if (rc == 0) {
        for (size_t i = 0; sn_x509_san(a, i); i++)
            (void)strlen(sn_x509_san(a, i));
    }
out:
    free(a);
    free(b);
    free(der);
    return 0;
}
