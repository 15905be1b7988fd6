#define SN_LOG_MOD "main"
/* spanprint: command-line entry. Parses options, opens inputs and the sink, drives the
 * pipeline from files or a live interface, handles signals, and maps failures to exit
 * codes: 0 ok, 1 runtime error, 2 usage/config error. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "sink.h"
#include "sink_kafka.h"
#include "workers.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static volatile sig_atomic_t stop_requested, reload_requested, stats_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else if (sig == SIGUSR1)
        stats_requested = 1;
    else
        stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    /* Restart interrupted reads: a signal during a replay must not look like a read error.
     * (The live loop's poll() returns on a signal anyway.) */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

static void die_msg(const char *msg)
{
    fprintf(stderr, "spanprint: %s\n", msg);
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drops root for `user` once the capture is open: groups, gid, uid, and no way back. */
static int drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return SN_ERR(SN_ECONFIG, "--user: no such user '%s'", user);
    if (setgroups(0, NULL) != 0 && errno != EPERM)
        return SN_ERR(errno, "--user %s: setgroups: %s", user, strerror(errno));
    if (setgid(pw->pw_gid) != 0)
        return SN_ERR(errno, "--user %s: setgid: %s", user, strerror(errno));
    if (setuid(pw->pw_uid) != 0)
        return SN_ERR(errno, "--user %s: setuid: %s", user, strerror(errno));
    if (pw->pw_uid != 0 && setuid(0) == 0)
        return SN_ERR(EPERM, "--user %s: could regain root after dropping it", user);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return 0;
}

static void kafka_metrics(const struct sn_sink *s, FILE *out)
{
    struct sn_sink_kafka_stats k;
    sn_sink_kafka_stats(s, &k);
    fprintf(out, "# HELP spanprint_kafka_messages_total Kafka messages by outcome.\n"
                 "# TYPE spanprint_kafka_messages_total counter\n");
    const struct {
        const char *n;
        uint64_t v;
    } rows[] = {{"produced", k.produced}, {"delivered", k.delivered}, {"failed", k.failed},
                {"retried", k.retried},   {"spooled", k.spooled},     {"replayed", k.replayed},
                {"dropped", k.dropped}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        fprintf(out, "spanprint_kafka_messages_total{outcome=\"%s\"} %llu\n", rows[i].n,
                (unsigned long long)rows[i].v);
    fprintf(out, "# HELP spanprint_kafka_spool_bytes Bytes waiting in the Kafka spool.\n"
                 "# TYPE spanprint_kafka_spool_bytes gauge\nspanprint_kafka_spool_bytes %llu\n",
            (unsigned long long)k.spool_bytes);
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void label_value(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', out);
        if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

/* Each live interface's own counters (the pipeline's metrics have their sum). */
static void interface_metrics(struct sn_capture *const *cs, unsigned n, FILE *out)
{
    static const char *const names[3] = {"packets_total", "drops_total", "drops_total"};
    static const char *const causes[3] = {NULL, "kernel", "interface"};
    fprintf(out, "# HELP spanprint_interface_packets_total Packets the interface's capture "
                 "received (pcap_stats ps_recv).\n"
                 "# TYPE spanprint_interface_packets_total counter\n"
                 "# HELP spanprint_interface_drops_total Packets the interface's capture "
                 "dropped, by cause.\n"
                 "# TYPE spanprint_interface_drops_total counter\n");
    for (unsigned k = 0; k < n; k++) {
        uint64_t v[3];
        if (sn_capture_stats(cs[k], &v[0], &v[1], &v[2]) != 0)
            continue;
        for (int i = 0; i < 3; i++) {
            fprintf(out, "spanprint_interface_%s{interface=\"", names[i]);
            label_value(out, sn_capture_path(cs[k]));
            if (causes[i])
                fprintf(out, "\",cause=\"%s", causes[i]);
            fprintf(out, "\"} %llu\n", (unsigned long long)v[i]);
        }
    }
}

static void publish_metrics(struct sn_metrics *m, struct sn_pipeline *p, struct sn_workers *w,
                            const struct sn_sink *s, struct sn_capture *const *cs, unsigned n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    if (w)
        sn_workers_metrics(w, f);
    else
        sn_pipeline_metrics(p, f);
    interface_metrics(cs, n, f);
    if (s->ops == &sn_sink_kafka_ops)
        kafka_metrics(s, f);
    fclose(f);
    sn_metrics_publish(m, buf, len);
    free(buf);
}

/* SIGUSR1: counters to stderr; SIGHUP: reload rules and geo databases. For one pipeline
 * (p) or the workers (w), whichever runs. */
static void serve_signals(struct sn_pipeline *p, struct sn_workers *w)
{
    if (stats_requested) {
        stats_requested = 0;
        if (w)
            sn_workers_print_stats(w, stderr);
        else
            sn_pipeline_print_stats(p, stderr);
    }
    if (reload_requested) {
        reload_requested = 0;
        if (w)
            sn_workers_reload(w);
        else
            sn_pipeline_reload(p);
    }
}

/* Hands the live captures' kernel counters (received, dropped), summed, to whichever runs. */
static void pass_capture_stats(struct sn_capture *const *cs, unsigned n, struct sn_pipeline *p,
                               struct sn_workers *w)
{
    uint64_t recv = 0, drop = 0, ifdrop = 0;
    for (unsigned k = 0; k < n; k++) {
        uint64_t r, d, i;
        if (sn_capture_stats(cs[k], &r, &d, &i) != 0)
            return;
        recv += r;
        drop += d;
        ifdrop += i;
    }
    if (w)
        sn_workers_capture_stats(w, recv, drop, ifdrop);
    else
        sn_pipeline_capture_stats(p, recv, drop, ifdrop);
}

static void input_begin(struct sn_pipeline *p, struct sn_workers *w, const struct sn_capture *c)
{
    if (w)
        sn_workers_input_begin(w, sn_capture_path(c), sn_capture_dlt(c));
    else
        sn_pipeline_input_begin(p, sn_capture_path(c), sn_capture_dlt(c));
}

static void input_end(struct sn_pipeline *p, struct sn_workers *w, uint64_t n, bool truncated)
{
    if (w)
        sn_workers_input_end(w, n, truncated);
    else
        sn_pipeline_input_end(p, n, truncated);
}

_Static_assert(SN_CONFIG_MAX_IFACES <= SN_CAPTURE_WAIT_MAX, "every interface can be waited on");

/* Reads packets into the pipeline until the input ends (a file) or a stop signal (live).
 * cs[0..n): one file, or every live interface (-i repeated), read in turn into the one
 * pipeline, waiting on all of them while none has a packet. Returns 0, or 1 when a file was
 * truncated (warned, what was read is kept), or a negative code on a read error. */
static int run_capture(struct sn_pipeline *p, struct sn_workers *w, struct sn_capture *const *cs,
                       unsigned n, struct sn_metrics *m, struct sn_sink *sink)
{
    struct sn_capture_pkt pkt;
    uint64_t got[SN_CAPTURE_WAIT_MAX] = {0};
    bool live = sn_capture_is_live(cs[0]);
    bool ref = w && n == 1 && sn_capture_stable(cs[0]); /* workers read the frames in place */
    int64_t next_tick = mono_ms() + 1000;
    int rc = 0;
    if (ref)
        sn_capture_hold(cs[0]);
    if (n > 1)
        for (unsigned k = 0; k < n; k++)
            sn_capture_set_no_wait(cs[k]);
    input_begin(p, w, cs[0]);
    bool done = false;
    while (!stop_requested && !done) {
        bool any = false;
        for (unsigned k = 0; k < n; k++) {
            rc = sn_capture_next(cs[k], &pkt);
            if (rc == 1) {
                int dlt = sn_capture_dlt(cs[k]);
                if (ref) {
                    sn_workers_packet_ref(w, dlt, pkt.data, pkt.caplen, pkt.wirelen, pkt.ts_us);
                    /* Pages the workers are done with leave the process (RSS stays flat). */
                    if ((got[0] & 4095) == 0) {
                        const uint8_t *old = sn_workers_oldest_ref(w);
                        sn_capture_release(cs[0], old ? old : pkt.data);
                    }
                } else if (w) {
                    sn_workers_packet(w, dlt, pkt.data, pkt.caplen, pkt.wirelen, pkt.ts_us);
                } else {
                    sn_pipeline_packet(p, dlt, pkt.data, pkt.caplen, pkt.wirelen, pkt.ts_us);
                }
                got[k]++;
                any = true;
            } else if (rc < 0 || !live) {
                done = true;
                break;
            }
        }
        if (done)
            break;
        if (!live) {
            /* Replay: signals are handled between packets too (stdin may be a slow pipe). */
            serve_signals(p, w);
            continue;
        }
        if (n > 1 && !any)
            sn_capture_wait(cs, n, SN_CAPTURE_TIMEOUT_MS);
        /* Live: once a second, advance time by the wall clock and publish counters. */
        int64_t now = mono_ms();
        if (now >= next_tick || stats_requested || reload_requested) {
            next_tick = now + 1000;
            pass_capture_stats(cs, n, p, w);
            if (w)
                sn_workers_tick(w, wall_us());
            else
                sn_pipeline_tick(p, wall_us());
            sink->ops->flush(sink, 0); /* delivery reports, outage recovery */
            if (m)
                publish_metrics(m, p, w, sink, cs, n);
            serve_signals(p, w);
        }
    }
    if (live)
        pass_capture_stats(cs, n, p, w);
    if (stop_requested || rc == 1)
        rc = 0;
    for (unsigned k = 0; k < n; k++) { /* the other interfaces after the first, in -i order */
        if (k)
            input_begin(p, w, cs[k]);
        input_end(p, w, got[k], k == 0 && rc == -SN_ETRUNC);
        uint64_t recv, drop, ifdrop;
        if (live && sn_capture_stats(cs[k], &recv, &drop, &ifdrop) == 0) {
            if (w)
                sn_workers_input_capture(w, recv, drop, ifdrop);
            else
                sn_pipeline_input_capture(p, recv, drop, ifdrop);
        }
    }
    if (rc == -SN_ETRUNC) {
        fprintf(stderr, "spanprint: warning: %s; kept the %llu packets read before it\n",
                sn_err_last(), (unsigned long long)got[0]);
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
    unsigned n_caps = 0;
    struct sn_sink sink = {&sn_sink_file_ops, NULL};
    struct sn_pipeline *p = NULL;
    struct sn_workers *w = NULL;
    struct sn_metrics *metrics = NULL;
    int status = 0;
    bool sink_open = false, pid_written = false;

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
    /* Early, so a SIGTERM while a large capture ring is being set up still exits cleanly. */
    install_signals();

    /* Open every input first, so a missing or unreadable file fails before any output. */
    /* (sensor, run, seq) identifies a record across restarts of a live sensor; replay leaves
     * "run" out so that its output stays byte-identical from run to run. */
    if (cfg.n_ifaces)
        cfg.run_id = wall_us();
    for (unsigned i = 0; i < cfg.n_ifaces; i++) {
        bool perm;
        caps[n_caps] = sn_capture_open_live(cfg.ifaces[i], cfg.filter, cfg.snaplen,
                                            cfg.buffer_mb, !cfg.no_promisc, &perm);
        if (!caps[n_caps]) {
            die_msg(sn_err_last());
            status = strstr(sn_err_last(), "--filter") ? EXIT_USAGE : EXIT_RUNTIME;
            goto out;
        }
        n_caps++;
    }
    for (unsigned i = 0; i < cfg.n_inputs; i++) {
        caps[n_caps] = sn_capture_open_file(cfg.inputs[i], cfg.filter);
        if (!caps[n_caps]) {
            die_msg(sn_err_last());
            status = strstr(sn_err_last(), "--filter") ? EXIT_USAGE : EXIT_RUNTIME;
            goto out;
        }
        n_caps++;
    }
    if (cfg.pid_file) {
        FILE *pf = fopen(cfg.pid_file, "w");
        if (!pf) {
            fprintf(stderr, "spanprint: --pid-file: %s: %s\n", cfg.pid_file, strerror(errno));
            status = EXIT_USAGE;
            goto out;
        }
        fprintf(pf, "%ld\n", (long)getpid());
        fclose(pf);
        pid_written = true;
    }

    if (cfg.brokers)
        sink.ops = &sn_sink_kafka_ops;
    rc = sink.ops->open(&sink, &cfg);
    sink_open = true;
    if (rc) {
        die_msg(sn_err_last());
        status = rc == -SN_ECONFIG ? EXIT_USAGE : EXIT_RUNTIME;
        goto out;
    }
    if (cfg.drain && !n_caps) {
        /* --drain: opening the sink replayed the spool; wait for delivery, then stop. */
        if (sink.ops->flush(&sink, (int)cfg.flush_timeout * 1000) != 0) {
            die_msg(sn_err_last());
            status = EXIT_RUNTIME;
        }
        goto out;
    }

    /* Outputs and the pid file are open; from here on nothing needs root. */
    if (cfg.user && drop_privileges(cfg.user) != 0) {
        die_msg(sn_err_last());
        status = EXIT_RUNTIME;
        goto out;
    }

    bool is_config;
    if (cfg.workers > 1) {
        /* Every input a mapped file: the workers get packets by reference (small rings). */
        struct sn_workers_opts wo = {.refs = n_caps > 0};
        for (unsigned i = 0; i < n_caps; i++)
            wo.refs = wo.refs && sn_capture_stable(caps[i]);
        w = sn_workers_new_opts(&cfg, &sink, cfg.workers, &wo, &is_config);
    } else {
        p = sn_pipeline_new(&cfg, &sink, &is_config);
    }
    if (!p && !w) {
        die_msg(sn_err_last());
        status = is_config ? EXIT_USAGE : EXIT_RUNTIME;
        goto out;
    }
    if (cfg.metrics && !(metrics = sn_metrics_start(cfg.metrics))) {
        die_msg(sn_err_last());
        status = EXIT_USAGE;
        goto out;
    }

    unsigned truncated = 0;
    /* Files one after the other; live interfaces all at once. */
    unsigned per_run = cfg.n_ifaces ? n_caps : 1;
    for (unsigned i = 0; i < n_caps && !stop_requested; i += per_run) {
        rc = run_capture(p, w, &caps[i], per_run, metrics, &sink);
        if (rc == 1)
            truncated++;
        else if (rc < 0)
            status = EXIT_RUNTIME;
        for (unsigned k = i; k < i + per_run; k++) {
            sn_capture_close(caps[k]);
            caps[k] = NULL;
        }
    }
    if (w) {
        sn_workers_finish(w);
        if (sn_workers_failed(w, &is_config)) {
            die_msg(sn_err_last());
            status = is_config ? EXIT_USAGE : EXIT_RUNTIME;
            goto out;
        }
    } else {
        sn_pipeline_finish(p);
    }
    if (truncated)
        fprintf(stderr, "spanprint: warning: %u input file(s) were truncated\n", truncated);
    if (cfg.stats) {
        if (w)
            sn_workers_print_stats(w, stderr);
        else
            sn_pipeline_print_stats(p, stderr);
    }
    if (sink.ops->flush(&sink, (int)cfg.flush_timeout * 1000) != 0) {
        die_msg(sn_err_last());
        status = EXIT_RUNTIME;
    }
    uint64_t sink_errors = w ? sn_workers_sink_errors(w) : sn_pipeline_sink_errors(p);
    if (sink_errors && !status) {
        fprintf(stderr, "spanprint: %llu records could not be written\n",
                (unsigned long long)sink_errors);
        status = EXIT_RUNTIME;
    }

out:
    sn_metrics_stop(metrics);
    sn_pipeline_free(p);
    sn_workers_free(w);
    if (sink_open)
        sink.ops->close(&sink);
    for (unsigned i = 0; i < SN_CONFIG_MAX_INPUTS; i++)
        sn_capture_close(caps[i]);
    if (pid_written)
        unlink(cfg.pid_file);
    sn_config_fini(&cfg);
    return status;
}
