/* capture: packet sources. Live interfaces and pcapng/stdin/filtered replay through libpcap;
 * classic pcap files replayed through a read-only mapping of our own (capture.c says which;
 * the environment variable SN_CAPTURE_LIBPCAP=1 sends those to libpcap too, for comparison,
 * as tests/t_capture.sh does). Only this module includes pcap.h.
 *
 * Ownership: sn_capture_open_file returns an owned handle; packet bytes returned by
 * sn_capture_next are borrowed until the next call on the same handle (until
 * sn_capture_close when sn_capture_stable says so).
 * Thread safety: one handle, one thread.
 */
#ifndef SN_CAPTURE_H
#define SN_CAPTURE_H

#include <stdbool.h>
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

/* Opens a live capture on an interface (TPACKET_V3 through libpcap): snaplen bytes per
 * packet, a kernel buffer of buffer_mb MiB, promiscuous unless told otherwise, and a read
 * timeout of SN_CAPTURE_TIMEOUT_MS so the caller regains control when traffic is idle.
 * Returns NULL with SN_ERR naming the interface; a missing capture capability is said
 * plainly (*perm set), so the caller can say how to grant it. */
struct sn_capture *sn_capture_open_live(const char *iface, const char *filter, unsigned snaplen,
                                        unsigned buffer_mb, bool promisc, bool *perm);

#define SN_CAPTURE_TIMEOUT_MS 100

/* Kernel counters of a live capture (pcap_stats): packets received, dropped by the kernel
 * (buffer full), dropped by the interface. Returns 0, or -ENOTSUP for files. */
int sn_capture_stats(struct sn_capture *c, uint64_t *recv, uint64_t *drop, uint64_t *ifdrop);
bool sn_capture_is_live(const struct sn_capture *c);

/* 1: a packet; 0: end of file (offline) or read timeout (live); -SN_ETRUNC: the file ends
 * mid-record (what was read stays valid; SN_ERR has the detail); another negative code: read
 * error. */
int sn_capture_next(struct sn_capture *c, struct sn_capture_pkt *out);

/* Several live captures in one loop (-i repeated): after set_no_wait, next() on a live
 * capture returns 0 at once when no packet is ready, and the caller waits for any of them
 * with sn_capture_wait (poll on their descriptors, at most timeout_ms; a signal ends it
 * early). Files are skipped by wait. At most SN_CAPTURE_WAIT_MAX captures. */
#define SN_CAPTURE_WAIT_MAX 16
void sn_capture_set_no_wait(struct sn_capture *c);
void sn_capture_wait(struct sn_capture *const *cs, unsigned n, int timeout_ms);

/* Whether the packet bytes sn_capture_next returns stay valid and unchanged until
 * sn_capture_close, not only until the next call: classic pcap files replayed from the
 * mapping (live capture, pcapng, stdin and filtered replay reuse libpcap's buffers). */
bool sn_capture_stable(const struct sn_capture *c);
/* For a stable capture whose packet bytes the caller keeps past the next call (workers
 * reading them in place): from now on pages already read are dropped from the process only
 * behind what sn_capture_release allows, no longer right behind the read position. */
void sn_capture_hold(struct sn_capture *c);
/* After sn_capture_hold: no packet byte before upto (a byte of a packet returned by
 * sn_capture_next) is in use any more. */
void sn_capture_release(struct sn_capture *c, const uint8_t *upto);

int sn_capture_dlt(const struct sn_capture *c);
const char *sn_capture_path(const struct sn_capture *c);
/* The link type's name as libpcap spells it, e.g. "EN10MB". */
const char *sn_capture_dlt_name(int dlt);

#endif
