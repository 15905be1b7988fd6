/* capture: packet sources through libpcap. Offline files (pcap and pcapng, "-" for stdin)
 * now; live interfaces later. Only this module includes pcap.h.
 *
 * Ownership: sn_capture_open_file returns an owned handle; packet bytes returned by
 * sn_capture_next are borrowed until the next call on the same handle.
 * Thread safety: one handle, one thread.
 */
#ifndef SN_CAPTURE_H
#define SN_CAPTURE_H

#include <stdint.h>

struct sn_capture;

struct sn_capture_pkt {
    int64_t ts_us;
    uint32_t caplen, wirelen;
    const uint8_t *data;
};

/* Opens a capture file ("-" reads stdin), with an optional BPF filter (NULL: none).
 * Returns NULL with SN_ERR naming the file and the reason: missing, not a capture,
 * unsupported link type, bad filter. */
struct sn_capture *sn_capture_open_file(const char *path, const char *filter);
void sn_capture_close(struct sn_capture *c);

/* 1: a packet; 0: end of file; -SN_ETRUNC: the file ends mid-record (what was read
 * stays valid; SN_ERR has the detail); another negative code: read error. */
int sn_capture_next(struct sn_capture *c, struct sn_capture_pkt *out);

int sn_capture_dlt(const struct sn_capture *c);
const char *sn_capture_path(const struct sn_capture *c);
/* The link type's name as libpcap spells it, e.g. "EN10MB". */
const char *sn_capture_dlt_name(int dlt);

#endif
