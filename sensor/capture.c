#define SN_LOG_MOD "capture"
#include "capture.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "decode.h"
#include "err.h"

#define SN_CAPTURE_FILE_BUF ((size_t)1 << 20)

struct sn_capture {
    pcap_t *pcap;
    char *path;
    char *iobuf; /* replay: the capture file's stdio buffer (freed after pcap_close) */
    struct mapped *map; /* replay of a classic pcap file without libpcap (see below) */
    int dlt;
    bool live;
    int fd;       /* live: pollable descriptor */
    bool no_wait; /* live: next() returns 0 at once when nothing is ready (no poll) */
    /* pcap_stats counters are 32-bit and wrap; keep 64-bit totals */
    uint32_t last_recv, last_drop, last_ifdrop;
    uint64_t recv, drop, ifdrop;
};

static int set_filter(struct sn_capture *c, const char *filter)
{
    if (!filter || !*filter)
        return 0;
    struct bpf_program prog;
    if (pcap_compile(c->pcap, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0)
        return SN_ERR(SN_ECONFIG, "--filter: '%s': %s", filter, pcap_geterr(c->pcap));
    int rc = pcap_setfilter(c->pcap, &prog);
    pcap_freecode(&prog);
    if (rc != 0)
        return SN_ERR(SN_ECONFIG, "--filter: '%s': %s", filter, pcap_geterr(c->pcap));
    return 0;
}

/* ---- classic pcap files, mapped ----
 *
 * libpcap reads a file with fread into its own buffer: two copies of every packet, a third
 * of the raw read loop's time. A classic pcap file (the format of tcpdump -w) is simple
 * enough to walk in a read-only mapping instead: 24 bytes of file header, then records of a
 * 16-byte header and the packet bytes, handed out in place. Only the common case takes this
 * path: version 2.4, micro- or nanosecond magic in either byte order, a link type whose
 * libpcap DLT number is known here, and no BPF filter; pcapng, stdin and anything else stay
 * with libpcap. Every read is checked against the file size: a record cut short ends the
 * file with libpcap's own "truncated dump file" message. Pages already read are dropped
 * from the process (MADV_DONTNEED), so a replay's RSS does not grow with the file. */
#define MAP_DROP_EVERY ((size_t)4 << 20)
#define MAP_MAX_CAPLEN 262144u /* libpcap's largest snapshot length */

struct mapped {
    const uint8_t *base;
    size_t size, off, dropped;
    uint32_t snap; /* the file's snapshot length, as libpcap reads it */
    bool swap, nsec;
    bool hold; /* drop only what sn_capture_release allows */
};

/* Drops the pages of whole MiB below `upto` (an offset). */
static void map_drop(struct mapped *m, size_t upto)
{
    upto &= ~(size_t)0xfffff;
    if (upto > m->dropped) {
        madvise((void *)(m->base + m->dropped), upto - m->dropped, MADV_DONTNEED);
        m->dropped = upto;
    }
}

static uint32_t rd32(const struct mapped *m, size_t off)
{
    uint32_t v;
    memcpy(&v, m->base + off, 4);
    return m->swap ? __builtin_bswap32(v) : v;
}

/* LINKTYPE_ (file) to DLT_ (what pcap_datalink returns), for the link types decode takes;
 * -1: leave the file to libpcap. */
static int map_dlt(uint32_t linktype)
{
    switch (linktype & 0xffffu) { /* the upper bits carry FCS information */
    case 1:   /* EN10MB */
    case 113: /* LINUX_SLL */
    case 276: /* LINUX_SLL2 */
    case 228: /* IPV4 */
    case 229: /* IPV6 */
        return (linktype >> 16) ? -1 : (int)linktype;
    case 101: /* LINKTYPE_RAW */
        return (linktype >> 16) ? -1 : DLT_RAW;
    default:
        return -1;
    }
}

/* Maps path if it is a classic pcap file this reader takes; NULL (and no error) otherwise. */
static struct mapped *map_open(const char *path, int *dlt)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t h[24];
    struct mapped *m = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 24 ||
        pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
        goto out;
    uint32_t magic;
    memcpy(&magic, h, 4);
    bool swap, nsec;
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) {
        swap = false;
        nsec = magic == 0xa1b23c4du;
    } else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) {
        swap = true;
        nsec = magic == 0x4d3cb2a1u;
    } else {
        goto out;
    }
    struct mapped probe = {.base = h, .size = sizeof(h), .swap = swap};
    uint16_t major, minor;
    memcpy(&major, h + 4, 2);
    memcpy(&minor, h + 6, 2);
    if (swap) {
        major = __builtin_bswap16(major);
        minor = __builtin_bswap16(minor);
    }
    int d = map_dlt(rd32(&probe, 20));
    uint32_t snap = rd32(&probe, 16);
    if (snap == 0 || snap > MAP_MAX_CAPLEN)
        snap = MAP_MAX_CAPLEN; /* as libpcap does */
    if (major != 2 || minor != 4 || d < 0)
        goto out;
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED)
        goto out;
    madvise(base, (size_t)st.st_size, MADV_SEQUENTIAL);
    m = calloc(1, sizeof(*m));
    if (!m) {
        munmap(base, (size_t)st.st_size);
        goto out;
    }
    *m = (struct mapped){.base = base, .size = (size_t)st.st_size, .off = 24, .snap = snap,
                         .swap = swap, .nsec = nsec};
    *dlt = d;
out:
    close(fd);
    return m;
}

static void map_close(struct mapped *m)
{
    if (!m)
        return;
    munmap((void *)m->base, m->size);
    free(m);
}

/* 1: a packet; 0: end of file; < 0: truncated or bogus (SN_ERR set). */
static int map_next(struct sn_capture *c, struct sn_capture_pkt *out)
{
    struct mapped *m = c->map;
    size_t left = m->size - m->off;
    if (left == 0)
        return 0;
    if (left < 16)
        return SN_ERR(SN_ETRUNC,
                      "%s: truncated dump file; tried to read 16 header bytes, only got %zu",
                      c->path, left);
    uint32_t sec = rd32(m, m->off), frac = rd32(m, m->off + 4);
    uint32_t caplen = rd32(m, m->off + 8), len = rd32(m, m->off + 12);
    if (caplen > MAP_MAX_CAPLEN)
        return SN_ERR(EIO, "%s: invalid packet capture length %u, bigger than maximum of %u",
                      c->path, caplen, MAP_MAX_CAPLEN);
    if (left - 16 < caplen)
        return SN_ERR(SN_ETRUNC,
                      "%s: truncated dump file; tried to read %u captured bytes, only got %zu",
                      c->path, caplen, left - 16);
    out->ts_us = (int64_t)sec * 1000000 + (m->nsec ? frac / 1000 : frac);
    /* A record longer than the file's snapshot length: libpcap hands out the first snap
     * bytes and skips the rest (old Solaris tcpdump wrote such files). */
    out->caplen = caplen > m->snap ? m->snap : caplen;
    out->wirelen = len;
    out->data = m->base + m->off + 16;
    m->off += 16 + (size_t)caplen;
    /* keep the last MAP_DROP_EVERY bytes: the packet handed out lies in them */
    if (!m->hold && m->off - m->dropped >= 2 * MAP_DROP_EVERY)
        map_drop(m, m->off - MAP_DROP_EVERY);
    return 1;
}

struct sn_capture *sn_capture_open_file(const char *path, const char *filter)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    struct sn_capture *c = calloc(1, sizeof(*c));
    if (!c) {
        SN_ERR(ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    c->path = strdup(path);
    if (!c->path) {
        SN_ERR(ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (strcmp(path, "-") == 0) {
        c->pcap = pcap_fopen_offline_with_tstamp_precision(stdin, PCAP_TSTAMP_PRECISION_MICRO,
                                                           errbuf);
    } else {
        struct stat st;
        if (stat(path, &st) != 0) {
            SN_ERR(errno, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            SN_ERR(EISDIR, "%s: is a directory, not a capture file", path);
            goto fail;
        }
        if (!filter && !getenv("SN_CAPTURE_LIBPCAP")) {
            int dlt;
            c->map = map_open(path, &dlt);
            if (c->map) {
                c->dlt = dlt;
                return c;
            }
        }
        /* libpcap reads a file through stdio, whose default buffer is one 4 KB block: a
         * 1 MB buffer makes 256 times fewer read() calls (a tenth of replay time went to
         * them). pcap_close() closes fp. */
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            SN_ERR(errno, "%s: %s", path, strerror(errno));
            goto fail;
        }
        c->iobuf = malloc(SN_CAPTURE_FILE_BUF);
        if (c->iobuf)
            setvbuf(fp, c->iobuf, _IOFBF, SN_CAPTURE_FILE_BUF);
        c->pcap = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
        if (!c->pcap)
            fclose(fp);
    }
    if (!c->pcap) {
        /* libpcap says "unknown file format" for non-captures and "truncated dump file" for a
         * header cut short; both mean the file is not a readable capture. */
        SN_ERR(SN_EPROTO, "%s: not a readable pcap/pcapng capture (%s)", path, errbuf);
        goto fail;
    }
    c->dlt = pcap_datalink(c->pcap);
    if (!sn_decode_linktype_ok(c->dlt)) {
        const char *n = pcap_datalink_val_to_name(c->dlt);
        SN_ERR(SN_EPROTO, "%s: unsupported link type %d (%s)", path, c->dlt, n ? n : "unknown");
        goto fail;
    }
    if (set_filter(c, filter))
        goto fail;
    return c;
fail:
    sn_capture_close(c);
    return NULL;
}

struct sn_capture *sn_capture_open_live(const char *iface, const char *filter, unsigned snaplen,
                                        unsigned buffer_mb, bool promisc, bool *perm)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    *perm = false;
    struct sn_capture *c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(iface))) {
        SN_ERR(ENOMEM, "%s: out of memory", iface);
        goto fail;
    }
    c->live = true;
    c->pcap = pcap_create(iface, errbuf);
    if (!c->pcap) {
        SN_ERR(ENODEV, "--interface %s: %s", iface, errbuf);
        goto fail;
    }
    pcap_set_snaplen(c->pcap, (int)snaplen);
    pcap_set_promisc(c->pcap, promisc);
    pcap_set_timeout(c->pcap, SN_CAPTURE_TIMEOUT_MS);
    pcap_set_buffer_size(c->pcap, (int)(buffer_mb > 2047 ? 2047u << 20 : buffer_mb << 20));
    pcap_set_tstamp_precision(c->pcap, PCAP_TSTAMP_PRECISION_MICRO);
    int rc = pcap_activate(c->pcap);
    if (rc < 0) {
        const char *why = pcap_geterr(c->pcap);
        if (rc == PCAP_ERROR_PERM_DENIED) {
            *perm = true;
            SN_ERR(EPERM, "--interface %s: no permission to capture (%s); run as root or grant "
                          "CAP_NET_RAW and CAP_NET_ADMIN (setcap cap_net_raw,cap_net_admin=eip)",
                   iface, why);
        } else if (rc == PCAP_ERROR_NO_SUCH_DEVICE) {
            SN_ERR(ENODEV, "--interface %s: no such interface", iface);
        } else if (rc == PCAP_ERROR_IFACE_NOT_UP) {
            SN_ERR(ENETDOWN, "--interface %s: interface is down", iface);
        } else {
            SN_ERR(EIO, "--interface %s: %s", iface, why);
        }
        goto fail;
    }
    if (rc > 0) /* a warning, e.g. promiscuous mode not supported */
        fprintf(stderr, "spanprint: warning: --interface %s: %s\n", iface,
                rc == PCAP_WARNING_PROMISC_NOTSUP ? "promiscuous mode not supported"
                                                  : pcap_geterr(c->pcap));
    c->dlt = pcap_datalink(c->pcap);
    if (!sn_decode_linktype_ok(c->dlt)) {
        const char *n = pcap_datalink_val_to_name(c->dlt);
        SN_ERR(SN_EPROTO, "--interface %s: unsupported link type %d (%s)", iface, c->dlt,
               n ? n : "unknown");
        goto fail;
    }
    if (set_filter(c, filter))
        goto fail;
    /* Non-blocking, with our own poll(): a signal or an idle link returns control to the
     * caller within SN_CAPTURE_TIMEOUT_MS, whatever libpcap's ring does. */
    if (pcap_setnonblock(c->pcap, 1, errbuf) != 0 || (c->fd = pcap_get_selectable_fd(c->pcap)) < 0) {
        SN_ERR(EIO, "--interface %s: cannot poll the capture: %s", iface, errbuf);
        goto fail;
    }
    return c;
fail:
    sn_capture_close(c);
    return NULL;
}

int sn_capture_stats(struct sn_capture *c, uint64_t *recv, uint64_t *drop, uint64_t *ifdrop)
{
    if (!c->live)
        return -ENOTSUP;
    struct pcap_stat ps;
    if (pcap_stats(c->pcap, &ps) == 0) {
        c->recv += (uint32_t)(ps.ps_recv - c->last_recv);
        c->drop += (uint32_t)(ps.ps_drop - c->last_drop);
        c->ifdrop += (uint32_t)(ps.ps_ifdrop - c->last_ifdrop);
        c->last_recv = ps.ps_recv;
        c->last_drop = ps.ps_drop;
        c->last_ifdrop = ps.ps_ifdrop;
    }
    *recv = c->recv;
    *drop = c->drop;
    *ifdrop = c->ifdrop;
    return 0;
}

bool sn_capture_is_live(const struct sn_capture *c)
{
    return c->live;
}

void sn_capture_close(struct sn_capture *c)
{
    if (!c)
        return;
    if (c->pcap)
        pcap_close(c->pcap);
    map_close(c->map);
    free(c->iobuf);
    free(c->path);
    free(c);
}

int sn_capture_next(struct sn_capture *c, struct sn_capture_pkt *out)
{
    if (c->map)
        return map_next(c, out);
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc = pcap_next_ex(c->pcap, &h, &data);
    if (rc == 0 && c->live && !c->no_wait) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, SN_CAPTURE_TIMEOUT_MS) > 0)
            rc = pcap_next_ex(c->pcap, &h, &data);
    }
    if (rc == 1) {
        out->ts_us = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        out->caplen = h->caplen;
        out->wirelen = h->len;
        out->data = data;
        return 1;
    }
    if (rc == PCAP_ERROR_BREAK || rc == 0) /* end of file; live: read timeout */
        return 0;
    const char *msg = pcap_geterr(c->pcap);
    if (msg && strstr(msg, "truncated"))
        return SN_ERR(SN_ETRUNC, "%s: %s", c->path, msg);
    return SN_ERR(EIO, "%s: %s", c->path, msg ? msg : "read error");
}

void sn_capture_set_no_wait(struct sn_capture *c)
{
    c->no_wait = true;
}

void sn_capture_wait(struct sn_capture *const *cs, unsigned n, int timeout_ms)
{
    struct pollfd pfd[SN_CAPTURE_WAIT_MAX];
    unsigned k = 0;
    for (unsigned i = 0; i < n && k < SN_CAPTURE_WAIT_MAX; i++)
        if (cs[i]->live)
            pfd[k++] = (struct pollfd){.fd = cs[i]->fd, .events = POLLIN};
    if (k)
        (void)poll(pfd, k, timeout_ms); /* EINTR (a signal) returns early, as wanted */
}

bool sn_capture_stable(const struct sn_capture *c)
{
    /* The mapping is read-only and private: a page dropped behind the read position
     * (map_next) is read back from the file, unchanged, if touched again. */
    return c->map != NULL;
}

void sn_capture_hold(struct sn_capture *c)
{
    if (c->map)
        c->map->hold = true;
}

void sn_capture_release(struct sn_capture *c, const uint8_t *upto)
{
    struct mapped *m = c->map;
    uintptr_t base = m ? (uintptr_t)m->base : 0, at = (uintptr_t)upto;
    if (!m || at < base + m->dropped || at > base + m->size)
        return;
    if (at - base - m->dropped >= MAP_DROP_EVERY) /* bytes before upto are done with */
        map_drop(m, at - base);
}

int sn_capture_dlt(const struct sn_capture *c)
{
    return c->dlt;
}

const char *sn_capture_path(const struct sn_capture *c)
{
    return c->path;
}

const char *sn_capture_dlt_name(int dlt)
{
    const char *n = pcap_datalink_val_to_name(dlt);
    return n ? n : "unknown";
}
