#define SN_LOG_MOD "capture"
#include "capture.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "decode.h"
#include "err.h"

struct sn_capture {
    pcap_t *pcap;
    char *path;
    int dlt;
};

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
        c->pcap = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO,
                                                          errbuf);
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
    if (filter && *filter) {
        struct bpf_program prog;
        if (pcap_compile(c->pcap, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            SN_ERR(SN_ECONFIG, "--filter: '%s': %s", filter, pcap_geterr(c->pcap));
            goto fail;
        }
        int rc = pcap_setfilter(c->pcap, &prog);
        pcap_freecode(&prog);
        if (rc != 0) {
            SN_ERR(SN_ECONFIG, "--filter: '%s': %s", filter, pcap_geterr(c->pcap));
            goto fail;
        }
    }
    return c;
fail:
    sn_capture_close(c);
    return NULL;
}

void sn_capture_close(struct sn_capture *c)
{
    if (!c)
        return;
    if (c->pcap)
        pcap_close(c->pcap);
    free(c->path);
    free(c);
}

int sn_capture_next(struct sn_capture *c, struct sn_capture_pkt *out)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc = pcap_next_ex(c->pcap, &h, &data);
    if (rc == 1) {
        out->ts_us = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        out->caplen = h->caplen;
        out->wirelen = h->len;
        out->data = data;
        return 1;
    }
    if (rc == PCAP_ERROR_BREAK)
        return 0;
    const char *msg = pcap_geterr(c->pcap);
    if (msg && strstr(msg, "truncated"))
        return SN_ERR(SN_ETRUNC, "%s: %s", c->path, msg);
    return SN_ERR(EIO, "%s: %s", c->path, msg ? msg : "read error");
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
