/* metrics: Prometheus text exposition over HTTP (libmicrohttpd), for live capture.
 *
 * The packet path never touches the server: the main loop renders the counters into text
 * about once a second and publishes a copy with sn_metrics_publish(); the server thread
 * serves the latest copy at /metrics. Only this module includes microhttpd.h.
 * Ownership: sn_metrics_start returns owned; publish copies the text.
 * Thread safety: publish from one thread; the server runs on its own thread.
 */
#ifndef SN_METRICS_H
#define SN_METRICS_H

#include <stddef.h>

struct sn_metrics;

/* Listens on "ADDR:PORT", "[V6ADDR]:PORT" or "PORT" (127.0.0.1). NULL with SN_ERR naming
 * the option on a bad address or a bind failure. */
struct sn_metrics *sn_metrics_start(const char *listen);
void sn_metrics_stop(struct sn_metrics *m);
void sn_metrics_publish(struct sn_metrics *m, const char *text, size_t len);

#endif
