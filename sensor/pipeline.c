#define SN_LOG_MOD "pipeline"
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "decode.h"
#include "err.h"
#include "flow.h"
#include "json.h"
#include "log.h"
#include "sink.h"

#define MAX_INPUT_STATS 64

struct input_stat {
    char path[256];
    int dlt;
    uint64_t packets;
    bool truncated;
};

struct sn_pipeline {
    const struct sn_config *cfg;
    struct sn_sink *sink;
    struct sn_decode dec;
    struct sn_flow_table *flows;
    struct sn_json js;
    char sensor[128];
    uint64_t seq;
    uint64_t records[SN_REC_TYPE_MAX];
    uint64_t sink_errors;
    int64_t now_us;
    struct input_stat inputs[MAX_INPUT_STATS];
    unsigned n_inputs;
};

/* ---- record output ---- */

static void begin_record(struct sn_pipeline *p, enum sn_rec_type t)
{
    sn_json_reset(&p->js);
    sn_json_obj_begin(&p->js, NULL);
    sn_json_str(&p->js, "type", sn_rec_type_name(t));
    sn_json_u64(&p->js, "schema", 1);
    sn_json_u64(&p->js, "seq", ++p->seq);
    sn_json_str(&p->js, "sensor", p->sensor);
}

static void end_record(struct sn_pipeline *p, enum sn_rec_type t, const char *key, size_t keylen)
{
    sn_json_obj_end(&p->js);
    sn_json_nl(&p->js);
    if (!sn_json_ok(&p->js)) {
        p->sink_errors++;
        sn_log_ratelimited(SN_LOG_ERROR, "out of memory building a %s record", sn_rec_type_name(t));
        return;
    }
    struct sn_record r = {
        .type = t, .key = key, .keylen = keylen, .data = p->js.buf, .len = p->js.len, .seq = p->seq};
    int rc = p->sink->ops->emit(p->sink, &r);
    if (rc) {
        p->sink_errors++;
        sn_log_ratelimited(SN_LOG_ERROR, "%s", sn_err_last());
        return;
    }
    p->records[t]++;
}

static void tcp_flags_str(uint8_t fl, char out[9])
{
    static const char letters[] = "FSRPAUEC";
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        if (fl & (1u << i))
            out[n++] = letters[i];
    out[n] = '\0';
}

static const char *tunnel_name(uint8_t t)
{
    static const char *const names[] = {"none", "gre", "erspan2", "erspan3", "vxlan", "geneve"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

static void json_endpoint(struct sn_json *j, const char *name, const struct sn_addr *a,
                          uint16_t port, bool has_ports)
{
    char buf[SN_ADDR_STRLEN];
    sn_json_obj_begin(j, name);
    sn_json_str(j, "ip", sn_addr_str(a, buf, sizeof(buf)));
    if (has_ports)
        sn_json_u64(j, "port", port);
    sn_json_obj_end(j);
}

static void json_dir(struct sn_json *j, const char *name, const struct sn_flow_dir *d, bool tcp)
{
    sn_json_obj_begin(j, name);
    sn_json_u64(j, "pkts", d->pkts);
    sn_json_u64(j, "bytes", d->bytes);
    sn_json_u64(j, "payload", d->payload);
    if (tcp) {
        char fl[9];
        tcp_flags_str(d->tcp_flags, fl);
        sn_json_str(j, "tcp_flags", fl);
    }
    sn_json_obj_end(j);
}

static bool proto_has_ports(uint8_t proto)
{
    return proto == 6 || proto == 17 || proto == 132;
}

static void emit_flow(struct sn_pipeline *p, struct sn_flow *f, enum sn_flow_end why)
{
    if (p->cfg->no_flows)
        return;
    struct sn_json *j = &p->js;
    char pbuf[8];
    begin_record(p, SN_REC_FLOW);
    sn_json_str(j, "proto", sn_flow_proto_name(f->proto, pbuf, sizeof(pbuf)));
    int64_t end = f->d[0].last_us > f->d[1].last_us ? f->d[0].last_us : f->d[1].last_us;
    int64_t start = f->interval_us;
    if (end < start)
        end = start;
    sn_json_ts(j, "start", start);
    sn_json_ts(j, "end", end);
    sn_json_dbl(j, "duration", (double)(end - start) / 1e6, 6);
    if (why == SN_FLOW_END_ACTIVE || f->records) {
        sn_json_ts(j, "flow_start", f->first_us);
        sn_json_u64(j, "part", f->records + 1);
    }
    bool ports = proto_has_ports(f->proto) && (f->client_port || f->server_port);
    json_endpoint(j, "client", &f->client, f->client_port, ports);
    json_endpoint(j, "server", &f->server, f->server_port, ports);
    json_dir(j, "c2s", &f->d[0], f->proto == 6);
    json_dir(j, "s2c", &f->d[1], f->proto == 6);
    sn_json_str(j, "end_reason", sn_flow_end_name(why));
    if (f->proto == 6)
        sn_json_bool(j, "mid_stream", f->mid_stream);
    if (f->vlan)
        sn_json_u64(j, "vlan", f->vlan);
    if (f->tunnel) {
        char buf[SN_ADDR_STRLEN];
        sn_json_obj_begin(j, "tunnel");
        sn_json_str(j, "type", tunnel_name(f->tunnel));
        if (f->tunnel_id)
            sn_json_u64(j, "id", f->tunnel_id);
        sn_json_str(j, "outer_src", sn_addr_str(&f->outer_src, buf, sizeof(buf)));
        sn_json_str(j, "outer_dst", sn_addr_str(&f->outer_dst, buf, sizeof(buf)));
        sn_json_obj_end(j);
    }
    char key[SN_ADDR_STRLEN];
    sn_addr_str(&f->client, key, sizeof(key));
    end_record(p, SN_REC_FLOW, key, strlen(key));
}

static void on_flow_end(void *ctx, struct sn_flow *f, enum sn_flow_end why)
{
    struct sn_pipeline *p = ctx;
    emit_flow(p, f, why);
}

/* ---- lifecycle ---- */

struct sn_pipeline *sn_pipeline_new(const struct sn_config *cfg, struct sn_sink *sink,
                                    bool *is_config)
{
    *is_config = false;
    struct sn_pipeline *p = calloc(1, sizeof(*p));
    if (!p) {
        SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->sink = sink;
    sn_decode_init(&p->dec);
    sn_json_init(&p->js);
    if (cfg->sensor_id)
        snprintf(p->sensor, sizeof(p->sensor), "%s", cfg->sensor_id);
    else if (gethostname(p->sensor, sizeof(p->sensor) - 1) != 0)
        snprintf(p->sensor, sizeof(p->sensor), "spanprint");
    struct sn_flow_cfg fc = {
        .max = cfg->flow_max,
        .idle_s = cfg->flow_idle_timeout,
        .active_s = cfg->flow_active_timeout,
        .vlan_key = cfg->flow_vlan_key,
        .on_end = on_flow_end,
        .ctx = p,
    };
    p->flows = sn_flow_table_new(&fc);
    if (!p->flows)
        goto fail;
    return p;
fail:
    sn_pipeline_free(p);
    return NULL;
}

void sn_pipeline_free(struct sn_pipeline *p)
{
    if (!p)
        return;
    sn_flow_table_free(p->flows);
    sn_json_fini(&p->js);
    free(p);
}

void sn_pipeline_packet(struct sn_pipeline *p, int dlt, const uint8_t *data, uint32_t caplen,
                        uint32_t wirelen, int64_t ts_us)
{
    struct sn_pkt pkt;
    if (ts_us > p->now_us)
        p->now_us = ts_us;
    if (sn_decode_packet(&p->dec, dlt, data, caplen, wirelen, ts_us, &pkt) != SN_DEC_OK)
        return;
    int dir;
    bool is_new;
    struct sn_flow *f = sn_flow_packet(p->flows, &pkt, &dir, &is_new);
    if (!f)
        return;
}

void sn_pipeline_input_begin(struct sn_pipeline *p, const char *path, int dlt)
{
    if (p->n_inputs >= MAX_INPUT_STATS)
        return;
    struct input_stat *in = &p->inputs[p->n_inputs++];
    snprintf(in->path, sizeof(in->path), "%s", path);
    in->dlt = dlt;
}

void sn_pipeline_input_end(struct sn_pipeline *p, uint64_t packets, bool truncated)
{
    if (!p->n_inputs)
        return;
    struct input_stat *in = &p->inputs[p->n_inputs - 1];
    in->packets = packets;
    in->truncated = truncated;
}

static void flow_stats_json(const struct sn_flow_stats *st, uint32_t active, struct sn_json *j)
{
    sn_json_u64(j, "created", st->created);
    sn_json_u64(j, "ended", st->ended);
    sn_json_u64(j, "active", active);
    sn_json_u64(j, "evicted", st->evicted);
    sn_json_u64(j, "idle_timeouts", st->timeouts_idle);
    sn_json_u64(j, "closed", st->closed);
    sn_json_u64(j, "interim_records", st->active_records);
}

static void emit_stats(struct sn_pipeline *p)
{
    struct sn_json *j = &p->js;
    begin_record(p, SN_REC_STATS);
    sn_json_arr_begin(j, "inputs");
    for (unsigned i = 0; i < p->n_inputs; i++) {
        sn_json_obj_begin(j, NULL);
        sn_json_str(j, "file", p->inputs[i].path);
        sn_json_u64(j, "linktype", (uint64_t)p->inputs[i].dlt);
        sn_json_u64(j, "packets", p->inputs[i].packets);
        sn_json_bool(j, "truncated", p->inputs[i].truncated);
        sn_json_obj_end(j);
    }
    sn_json_arr_end(j);
    sn_json_obj_begin(j, "decode");
    sn_decode_stats_json(&p->dec.st, j);
    sn_json_obj_end(j);
    sn_json_obj_begin(j, "flows");
    flow_stats_json(sn_flow_stats(p->flows), sn_flow_active(p->flows), j);
    sn_json_obj_end(j);
    sn_json_obj_begin(j, "records");
    sn_json_u64(j, "flow", p->records[SN_REC_FLOW]);
    sn_json_u64(j, "fingerprint", p->records[SN_REC_FINGERPRINT]);
    sn_json_obj_end(j);
    end_record(p, SN_REC_STATS, NULL, 0);
}

void sn_pipeline_finish(struct sn_pipeline *p)
{
    sn_flow_flush(p->flows);
    emit_stats(p);
}

void sn_pipeline_print_stats(const struct sn_pipeline *p, FILE *out)
{
    const struct sn_decode_stats *d = &p->dec.st;
    fprintf(out, "packets %" PRIu64 "\n", d->packets);
    fprintf(out, "ipv4 %" PRIu64 "\nipv6 %" PRIu64 "\ntcp %" PRIu64 "\nudp %" PRIu64 "\n", d->ipv4,
            d->ipv6, d->tcp, d->udp);
    fprintf(out, "fragments %" PRIu64 "\ntunneled %" PRIu64 "\n", d->fragments, d->tunneled);
    for (int r = 1; r < SN_DEC_REASON_MAX; r++)
        fprintf(out, "decode.%s %" PRIu64 "\n", sn_decode_reason_name((enum sn_decode_reason)r),
                d->reason[r]);
    const struct sn_flow_stats *fs = sn_flow_stats(p->flows);
    fprintf(out, "flows.created %" PRIu64 "\nflows.evicted %" PRIu64 "\n", fs->created, fs->evicted);
    fprintf(out, "records.flow %" PRIu64 "\nrecords.fingerprint %" PRIu64 "\n",
            p->records[SN_REC_FLOW], p->records[SN_REC_FINGERPRINT]);
    fprintf(out, "sink.errors %" PRIu64 "\n", p->sink_errors);
    for (unsigned i = 0; i < p->n_inputs; i++)
        fprintf(out, "input %s packets %" PRIu64 "%s\n", p->inputs[i].path, p->inputs[i].packets,
                p->inputs[i].truncated ? " truncated" : "");
}

uint64_t sn_pipeline_sink_errors(const struct sn_pipeline *p)
{
    return p->sink_errors;
}
