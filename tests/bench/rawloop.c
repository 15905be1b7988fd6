/* The benchmark's floor: read pcap files with libpcap and only count packets and bytes.
 * Whatever the sensor does on top of this is what its packet rate pays for.
 *
 *   rawloop FILE [FILE...]    prints "<packets> <captured bytes>" on stdout
 *
 * Built by tests/bench/run.sh with cc -O2; not part of the sensor. */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    uint64_t packets = 0, bytes = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [FILE...]\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        pcap_t *p = pcap_open_offline(argv[i], errbuf);
        if (!p) {
            fprintf(stderr, "rawloop: %s: %s\n", argv[i], errbuf);
            return 1;
        }
        struct pcap_pkthdr *h;
        const u_char *data;
        int rc;
        while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
            packets++;
            bytes += h->caplen;
        }
        if (rc == PCAP_ERROR) {
            fprintf(stderr, "rawloop: %s: %s\n", argv[i], pcap_geterr(p));
            pcap_close(p);
            return 1;
        }
        pcap_close(p);
    }
    printf("%llu %llu\n", (unsigned long long)packets, (unsigned long long)bytes);
    return 0;
}
