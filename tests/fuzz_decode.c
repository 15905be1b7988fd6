/* libFuzzer entry for sensor/decode.c: the first byte picks the link type from a table,
 * the rest is the captured frame. Beyond "no crash, no read past the end" (ASan/UBSan), it
 * checks the decoder's promises: borrowed pointers stay inside the frame, captured lengths
 * never exceed declared ones, and every call is counted exactly once.
 * Seeds: tests/corpus/decode/ (tests/tools/decode_samples_c.py --corpus).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keep in step with LINKS in tests/tools/decode_samples_c.py. */
static const int links[] = {1, 113, 276, 12, 101, 228, 229, 0, 108, 9, 50, 104, 14};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int dlt = links[data[0] % (sizeof(links) / sizeof(links[0]))];
    size_t len = size - 1;
    /* An exact-size copy, so any read past the frame hits the redzone. */
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    if (len)
        memcpy(buf, data + 1, len);

    struct sn_decode d;
    struct sn_pkt p;
    sn_decode_init(&d);
    enum sn_decode_reason r =
        sn_decode_packet(&d, dlt, buf, (uint32_t)len, (uint32_t)len + 7, 42, &p);
    if ((unsigned)r >= SN_DEC_REASON_MAX || d.st.packets != 1 || d.st.reason[r] != 1)
        abort();
    if ((unsigned)p.tunnel >= SN_TUN_MAX)
        abort();
    if (r == SN_DEC_OK) {
        const uint8_t *end = buf + len;
        if (p.ipver != 4 && p.ipver != 6)
            abort();
        if (!p.l3 || p.l3 < buf || p.l3 + p.l3_caplen > end || p.l3_caplen > p.ip_len)
            abort();
        if (p.payload_caplen > p.payload_len)
            abort();
        if (p.payload_caplen && (p.payload < p.l3 || p.payload + p.payload_caplen > end))
            abort();
        if (p.frag && !p.frag_first && (p.sport || p.dport || p.payload_len))
            abort();
        if (d.st.ipv4 + d.st.ipv6 != 1)
            abort();
        if (p.src.family != p.ipver || p.outer_src.family == 0)
            abort();
    }
    free(buf);
    return 0;
}
