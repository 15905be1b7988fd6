#define SN_LOG_MOD "main"
/* spanprint: command-line entry. Parses options, opens inputs and the sink, drives the
 * pipeline, and maps failures to exit codes: 0 ok, 1 runtime error, 2 usage/config error. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "pipeline.h"
#include "sink.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void die_msg(const char *msg)
{
    fprintf(stderr, "spanprint: %s\n", msg);
}

/* Reads every packet of one capture into the pipeline. Returns 0, or 1 when the file was
 * truncated (warned, what was read is kept), or a negative code on a read error. */
static int replay(struct sn_pipeline *p, struct sn_capture *c)
{
    struct sn_capture_pkt pkt;
    uint64_t n = 0;
    int dlt = sn_capture_dlt(c);
    int rc = 0;
    sn_pipeline_input_begin(p, sn_capture_path(c), dlt);
    while (!stop_requested && (rc = sn_capture_next(c, &pkt)) == 1) {
        sn_pipeline_packet(p, dlt, pkt.data, pkt.caplen, pkt.wirelen, pkt.ts_us);
        n++;
    }
    if (stop_requested)
        rc = 0;
    sn_pipeline_input_end(p, n, rc == -SN_ETRUNC);
    if (rc == -SN_ETRUNC) {
        fprintf(stderr, "spanprint: warning: %s; kept the %llu packets read before it\n",
                sn_err_last(), (unsigned long long)n);
        return 1;
    }
    if (rc < 0) {
        die_msg(sn_err_last());
        return rc;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sn_config cfg;
    struct sn_capture *caps[SN_CONFIG_MAX_INPUTS] = {0};
    struct sn_sink sink = {&sn_sink_file_ops, NULL};
    struct sn_pipeline *p = NULL;
    int status = 0;
    bool sink_open = false;

    sn_config_init(&cfg);
    int rc = sn_config_parse_args(&cfg, argc, argv);
    if (rc == 1) {
        sn_config_fini(&cfg);
        return 0;
    }
    if (rc < 0) {
        die_msg(sn_err_last());
        sn_config_fini(&cfg);
        return EXIT_USAGE;
    }
    sn_log_set_level((enum sn_log_level)cfg.log_level);

    if (cfg.iface) {
        die_msg("--interface: live capture is not built yet; use -r FILE");
        status = EXIT_USAGE;
        goto out;
    }

    /* Open every input first, so a missing or unreadable file fails before any output. */
    for (unsigned i = 0; i < cfg.n_inputs; i++) {
        caps[i] = sn_capture_open_file(cfg.inputs[i], cfg.filter);
        if (!caps[i]) {
            die_msg(sn_err_last());
            status = strstr(sn_err_last(), "--filter") ? EXIT_USAGE : EXIT_RUNTIME;
            goto out;
        }
    }

    rc = sink.ops->open(&sink, &cfg);
    sink_open = true;
    if (rc) {
        die_msg(sn_err_last());
        status = rc == -SN_ECONFIG ? EXIT_USAGE : EXIT_RUNTIME;
        goto out;
    }

    bool is_config;
    p = sn_pipeline_new(&cfg, &sink, &is_config);
    if (!p) {
        die_msg(sn_err_last());
        status = is_config ? EXIT_USAGE : EXIT_RUNTIME;
        goto out;
    }

    install_signals();
    unsigned truncated = 0;
    for (unsigned i = 0; i < cfg.n_inputs && !stop_requested; i++) {
        rc = replay(p, caps[i]);
        if (rc == 1)
            truncated++;
        else if (rc < 0)
            status = EXIT_RUNTIME;
        sn_capture_close(caps[i]);
        caps[i] = NULL;
    }
    sn_pipeline_finish(p);
    if (truncated)
        fprintf(stderr, "spanprint: warning: %u input file(s) were truncated\n", truncated);
    if (cfg.stats)
        sn_pipeline_print_stats(p, stderr);
    if (sink.ops->flush(&sink, (int)cfg.flush_timeout * 1000) != 0) {
        die_msg(sn_err_last());
        status = EXIT_RUNTIME;
    }
    if (sn_pipeline_sink_errors(p) && !status) {
        fprintf(stderr, "spanprint: %llu records could not be written\n",
                (unsigned long long)sn_pipeline_sink_errors(p));
        status = EXIT_RUNTIME;
    }

out:
    sn_pipeline_free(p);
    if (sink_open)
        sink.ops->close(&sink);
    for (unsigned i = 0; i < SN_CONFIG_MAX_INPUTS; i++)
        sn_capture_close(caps[i]);
    sn_config_fini(&cfg);
    return status;
}
