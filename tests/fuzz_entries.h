/* The input format shared by fuzz_quic.c and fuzz_tls_hs.c: a list of entries
 * [selector u8][length u16 big-endian][body]; a short final entry takes the bytes that remain.
 */
#ifndef SN_FUZZ_ENTRIES_H
#define SN_FUZZ_ENTRIES_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Reads the entry at *off (< size) and moves *off past it. Returns a malloc'd copy of exactly
 * *n body bytes, so that ASan catches reads past the body (free it), or NULL when out of
 * memory. */
static inline uint8_t *fuzz_entry_next(const uint8_t *data, size_t size, size_t *off,
                                       uint8_t *sel, size_t *n)
{
    *sel = data[(*off)++];
    *n = 0;
    if (*off + 2 <= size) {
        *n = (size_t)data[*off] << 8 | data[*off + 1];
        *off += 2;
    }
    if (*n > size - *off)
        *n = size - *off;
    uint8_t *body = malloc(*n ? *n : 1);
    if (!body)
        return NULL;
    memcpy(body, data + *off, *n);
    *off += *n;
    return body;
}

#endif
