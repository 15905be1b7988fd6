/* libFuzzer target for the TLS stream module (sensor/tls.c) with the real tls_hs parser.
 *
 * Input format (tests/tools/tls_stream_corpus.py writes seeds in it):
 *   byte 0        reassembly cap: 512 + 128 * b (the module clamps it)
 *   byte 1        first_records (the module clamps it to 64)
 *   then segments, each a 6-byte header and its payload:
 *     flags       bit 0 direction (1 = server to client), bit 1 SYN, bit 2 offset is
 *                 negative, bit 3 the capture cut the segment (caplen = len - cut)
 *     off (u16)   sequence offset from the direction's base (an ISN near 2^32, so streams
 *                 wrap around), in bytes
 *     len (u16)   payload length; the payload is the next len input bytes (fewer at the end)
 *     cut (u8)    bytes the capture cut, with flag bit 3
 * Invariants checked: callbacks get a valid direction and a record length within the RFC
 * limit, in stream order, and every accessor is defined at every step.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "json.h"
#include "tls.h"
#include "tls_hs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_rec(void *ctx, int dir, uint8_t type, uint32_t len, int64_t ts_us)
{
    uint64_t *n = ctx;
    (void)ts_us;
    if ((dir != 0 && dir != 1) || len > 16384 + 2048 || type < 20 || type > 24)
        abort();
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_cur c = sn_cur_make(data, size);
    uint32_t cap = 512u + 128u * sn_cur_u8(&c);
    uint32_t first = sn_cur_u8(&c);
    if (c.err)
        return 0;
    uint64_t nrec = 0;
    struct sn_tls_stats st = {0};
    struct sn_tls_cfg cfg = {.reasm_cap = cap, .first_records = first, .on_record = on_rec,
                             .ctx = &nrec};
    struct sn_tls *t = sn_tls_new(&cfg, &st);
    if (!t)
        return 0;
    static const uint32_t isn[2] = {0xfffff000u, 0x7ffffff0u};
    int64_t ts = 0;
    while (sn_cur_left(&c) >= 6) {
        uint8_t flags = sn_cur_u8(&c);
        uint16_t off = sn_cur_u16(&c);
        uint16_t len = sn_cur_u16(&c);
        uint8_t cut = sn_cur_u8(&c);
        size_t n = len < sn_cur_left(&c) ? len : sn_cur_left(&c);
        const uint8_t *p = sn_cur_take(&c, n);
        int dir = flags & 1;
        bool syn = flags & 2;
        uint32_t seq = (flags & 4) ? isn[dir] + 1 - off : isn[dir] + 1 + off;
        if (syn)
            seq -= 1;
        size_t caplen = n;
        if ((flags & 8) && cut < n)
            caplen = n - cut;
        /* The payload copy lets ASan catch reads past caplen. */
        uint8_t *copy = malloc(caplen ? caplen : 1);
        if (!copy)
            break;
        if (caplen)
            memcpy(copy, p, caplen);
        sn_tls_segment(t, dir, seq, syn, caplen ? copy : NULL, caplen, n, ts++);
        free(copy);
        (void)sn_tls_wants_payload(t);
        (void)sn_tls_synced(t, dir);
        if (!sn_tls_meta(t))
            abort();
    }
    struct sn_json j;
    sn_json_init(&j);
    sn_json_obj_begin(&j, NULL);
    sn_tls_json(t, &j);
    sn_json_obj_end(&j);
    sn_json_fini(&j);
    const uint32_t *sizes;
    size_t nf = sn_tls_first_records(t, 0, &sizes);
    if (nf > first || nf > 64)
        abort();
    sn_tls_free(t);
    return 0;
}
