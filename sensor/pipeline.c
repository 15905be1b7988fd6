#define SN_LOG_MOD "pipeline"
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agg.h"
#include "classify.h"
#include "config.h"
#include "decode.h"
#include "geo.h"
#include "rules.h"
#include "tls.h"
#include "tls_hs.h"
#include "tls_fp.h"
#include "err.h"
#include "flow.h"
#include "json.h"
#include "log.h"
#include "pseudo.h"
#include "quic.h"
#include "sink.h"

#define MAX_INPUT_STATS 64

struct input_stat {
    char path[256];
    int dlt;
    uint64_t packets;
    bool truncated;
    bool live; /* an interface: its own capture counters below */
    uint64_t recv, drop, ifdrop;
};

struct sn_pipeline {
    const struct sn_config *cfg;
    struct sn_sink *sink;
    struct sn_decode dec;
    struct sn_flow_table *flows;
    struct sn_json js;
    char sensor[128];
    char sensor_json[1024]; /* ,"sensor":"<escaped>" and ,"run":N when set: every record's */
    size_t sensor_json_len;
    uint64_t seq;
    uint64_t records[SN_REC_TYPE_MAX];
    uint64_t sink_errors;
    int64_t now_us;
    struct input_stat inputs[MAX_INPUT_STATS];
    unsigned n_inputs;
    bool live;
    uint64_t cap_recv, cap_drop, cap_ifdrop;
    uint64_t bytes; /* wire bytes of every packet read */

    /* later stages */
    struct sn_tls_cfg tls_cfg;
    struct sn_tls_stats tls_st;
    struct sn_quic_ctx *quic; /* QUIC Initial decryption, this thread's */
    struct sn_tls_fp_memo *fp_memo; /* recent JA3/JA4 digests (tls_fp.h) */
    struct sn_classify *cls;
    struct sn_geo *geo;
    struct sn_rules *rules;
    struct sn_rule_memo rule_memo; /* flow_rule's last answer (rules.h) */
    char rules_path[4096];
    uint64_t reloads, reload_errors;
    struct sn_agg *agg;
    struct sn_flow *cur; /* the flow whose TLS segment is being parsed (record callback) */
    struct sn_pseudo *pseudo; /* client addresses are pseudonymised in every record */
    uint8_t pseudo_key[SN_PSEUDO_KEY_MAX];
    bool no_seq; /* records carry no "seq" (a merger numbers them) */
};

/* ---- record output ---- */

/* Appends a literal to o. */
#define PUT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) += sizeof(lit) - 1)

/* Every record starts {"type":..,"schema":1,"seq":N,"sensor":..(,"run":..): written
 * directly, with the sensor part escaped once (sensor_json_make). */
static void begin_record(struct sn_pipeline *p, enum sn_rec_type t)
{
    struct sn_json *j = &p->js;
    sn_json_reset(j);
    sn_json_obj_begin(j, NULL);
    const char *name = sn_rec_type_name(t);
    size_t nlen = strlen(name);
    char *o = sn_json_raw_begin(j, nlen + 64 + p->sensor_json_len);
    if (!o)
        return;
    PUT(o, "\"type\":\"");
    memcpy(o, name, nlen);
    o += nlen;
    PUT(o, "\",\"schema\":1");
    if (!p->no_seq) {
        PUT(o, ",\"seq\":");
        o = sn_json_put_u64(o, ++p->seq);
    }
    memcpy(o, p->sensor_json, p->sensor_json_len);
    sn_json_raw_end(j, o + p->sensor_json_len);
}

/* ,"sensor":"<id>" (escaped) and ,"run":N when there is a run id, for begin_record. */
static void sensor_json_make(struct sn_pipeline *p)
{
    struct sn_json t;
    sn_json_init(&t);
    sn_json_obj_begin(&t, NULL);
    sn_json_str(&t, "sensor", p->sensor);
    if (p->cfg->run_id)
        sn_json_i64(&t, "run", p->cfg->run_id);
    p->sensor_json_len = 0;
    if (sn_json_ok(&t) && t.len < sizeof(p->sensor_json)) { /* 127 bytes escaped fit */
        t.buf[0] = ','; /* the object's '{' */
        memcpy(p->sensor_json, t.buf, t.len);
        p->sensor_json_len = t.len;
    }
    sn_json_fini(&t);
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

/* The flag letters set in fl, in "FSRPAUEC" order; returns how many. */
static size_t tcp_flags_str(uint8_t fl, char out[9])
{
    static const char letters[] = "FSRPAUEC";
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        out[n] = letters[i];
        n += (fl >> i) & 1; /* keep the letter only when its bit is set */
    }
    out[n] = '\0';
    return n;
}

/* The client's address as records show it: in clear, or its keyed pseudonym ("p:" and 16 hex
 * digits of HMAC-SHA256, or with --pseudonym-prefix-preserving a prefix-preserving address),
 * the same form fingerprints use in client.id. */
static size_t client_text(const struct sn_pipeline *p, const struct sn_addr *a,
                          char buf[SN_ADDR_STRLEN])
{
    if (!p->pseudo)
        return sn_addr_fmt(a, buf, SN_ADDR_STRLEN);
    if (p->cfg->pseudonym_prefix_preserving) {
        struct sn_addr out;
        sn_pseudo_prefix(p->pseudo, a, &out);
        return sn_addr_fmt(&out, buf, SN_ADDR_STRLEN);
    }
    _Static_assert(SN_PSEUDO_HEXLEN + 3 <= SN_ADDR_STRLEN, "a pseudonym fits an address buffer");
    buf[0] = 'p';
    buf[1] = ':';
    sn_pseudo_hmac(p->pseudo, a, a->family == 4 ? 32 : 128, buf + 2);
    return 2 + SN_PSEUDO_HEXLEN;
}

/* A literal key and its length, for the sn_json_*_k calls of helpers that take the key as a
 * parameter (the json.h macros only see a literal at its own call site). */
#define KEY(lit) (lit), sizeof(lit) - 1

/* name/namelen: a plain key (KEY()); ip: the address as the record shows it, iplen bytes. */
static void json_endpoint(struct sn_pipeline *p, const char *name, size_t namelen,
                          const struct sn_addr *a, const char *ip, size_t iplen, uint16_t port,
                          bool has_ports)
{
    struct sn_json *j = &p->js;
    sn_json_obj_begin_k(j, name, namelen);
    /* "ip" and "port" written directly: the text is an address or a "p:" pseudonym (hex),
     * nothing to escape. */
    char *o = sn_json_raw_begin(j, iplen + 32);
    if (o) {
        PUT(o, "\"ip\":\"");
        memcpy(o, ip, iplen);
        o += iplen;
        *o++ = '"';
        if (has_ports) {
            PUT(o, ",\"port\":");
            o = sn_json_put_u64(o, port);
        }
        sn_json_raw_end(j, o);
    }
    struct sn_geo_info gi;
    sn_geo_lookup(p->geo, a, &gi);
    sn_geo_json(&gi, j);
    sn_json_obj_end(j);
}

/* The service rule for a flow, from what is known about it now. Borrowed from p->rules.
 * A flow that ends is matched twice in a row with the same facts (settle_flow, then
 * emit_flow): the pipeline's memo answers the second time. */
static const struct sn_rule *flow_rule(struct sn_pipeline *p, const struct sn_flow *f)
{
    if (!p->rules)
        return NULL;
    const struct sn_tls_meta *m = f->tls ? sn_tls_meta(f->tls) : NULL;
    struct sn_rule_query q = {
        .sni = m ? sn_tls_meta_sni(m) : NULL,
        .server = &f->server,
        .server_port = f->server_port,
        .ja4 = m ? sn_tls_meta_ja4(m) : NULL,
        .ja3 = m ? sn_tls_meta_ja3(m) : NULL,
        .app = f->cls ? sn_classify_app_name(p->cls, f->cls) : NULL,
    };
    return sn_rules_match_memo(p->rules, &q, &p->rule_memo);
}

/* name/namelen: a plain key (KEY()). Written directly: four members, twice per record. */
static void json_dir(struct sn_json *j, const char *name, size_t namelen,
                     const struct sn_flow_dir *d, bool tcp)
{
    char *o = sn_json_raw_begin(j, namelen + 160);
    if (!o)
        return;
    *o++ = '"';
    memcpy(o, name, namelen);
    o += namelen;
    PUT(o, "\":{\"pkts\":");
    o = sn_json_put_u64(o, d->pkts);
    PUT(o, ",\"bytes\":");
    o = sn_json_put_u64(o, d->bytes);
    PUT(o, ",\"payload\":");
    o = sn_json_put_u64(o, d->payload);
    if (tcp) {
        PUT(o, ",\"tcp_flags\":\"");
        o += tcp_flags_str(d->tcp_flags, o);
        *o++ = '"';
    }
    *o++ = '}';
    sn_json_raw_end(j, o);
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
    sn_json_ts(j, "duration", end - start); /* seconds with 6 decimals, like the times */
    if (why == SN_FLOW_END_ACTIVE || f->records) {
        sn_json_ts(j, "flow_start", f->first_us);
        sn_json_u64(j, "part", f->records + 1);
    }
    bool ports = proto_has_ports(f->proto) && (f->client_port || f->server_port);
    /* The client's text is also the record's key: made once. */
    char ctext[SN_ADDR_STRLEN], stext[SN_ADDR_STRLEN];
    size_t clen = client_text(p, &f->client, ctext);
    size_t slen = sn_addr_fmt(&f->server, stext, sizeof(stext));
    json_endpoint(p, KEY("client"), &f->client, ctext, clen, f->client_port, ports);
    json_endpoint(p, KEY("server"), &f->server, stext, slen, f->server_port, ports);
    json_dir(j, KEY("c2s"), &f->d[0], f->proto == 6);
    json_dir(j, KEY("s2c"), &f->d[1], f->proto == 6);
    sn_json_str(j, "end_reason", sn_flow_end_name(why));
    if (f->proto == 6)
        sn_json_bool(j, "mid_stream", f->mid_stream);
    if (f->vlan)
        sn_json_u64(j, "vlan", f->vlan);
    if (f->tunnel) {
        char buf[SN_ADDR_STRLEN];
        sn_json_obj_begin(j, "tunnel");
        sn_json_str(j, "type", sn_decode_tunnel_name((enum sn_tunnel)f->tunnel));
        if (f->tunnel_id)
            sn_json_u64(j, "id", f->tunnel_id);
        /* The outer addresses are usually the mirroring infrastructure, but an IP-in-IP or
         * GRE tunnel can start at the client itself: with pseudonymisation on they are left
         * out rather than risk writing a client address. */
        if (!p->pseudo) {
            sn_json_str(j, "outer_src", sn_addr_str(&f->outer_src, buf, sizeof(buf)));
            sn_json_str(j, "outer_dst", sn_addr_str(&f->outer_dst, buf, sizeof(buf)));
        }
        sn_json_obj_end(j);
    }
    if (f->cls)
        sn_classify_json(p->cls, f->cls, j);
    if (f->tls)
        sn_tls_json(f->tls, j);
    const struct sn_rule *rule = flow_rule(p, f);
    if (rule)
        sn_rule_json(rule, j);
    end_record(p, SN_REC_FLOW, ctext, clen);
}

/* Tells the fingerprint stage what is known about the flow: service, SNI, JA4/JA3, ALPN,
 * geo/ASN of both ends. Strings are borrowed for the call. */
static void settle_flow(struct sn_pipeline *p, struct sn_flow *f)
{
    const struct sn_tls_meta *m = f->tls ? sn_tls_meta(f->tls) : NULL;
    const struct sn_rule *rule = flow_rule(p, f);
    struct sn_geo_info cg, sg;
    sn_geo_lookup(p->geo, &f->client, &cg);
    sn_geo_lookup(p->geo, &f->server, &sg);
    struct sn_agg_flowinfo fi = {
        .client = f->client,
        .server = f->server,
        .server_port = f->server_port,
        .service = rule ? sn_rule_service(rule) : NULL,
        .sni = m ? sn_tls_meta_sni(m) : NULL,
        .ja4 = m ? sn_tls_meta_ja4(m) : NULL,
        .ja3 = m ? sn_tls_meta_ja3(m) : NULL,
        .alpn = m ? sn_tls_meta_alpn(m) : NULL,
        .server_asn = sg.asn,
        .server_asn_org = sg.asn_org,
        .client_country = cg.country,
        .client_asn = cg.asn,
        .client_asn_org = cg.asn_org,
    };
    sn_agg_flow_settle(p->agg, f->agg, &fi);
    f->settled = true;
}

static void on_tls_record(void *ctx, int dir, uint8_t content_type, uint32_t len, int64_t ts_us)
{
    struct sn_pipeline *p = ctx;
    if (p->cur && p->cur->agg)
        sn_agg_record(p->agg, p->cur->agg, dir, content_type, len, ts_us,
                      sn_tls_synced(p->cur->tls, dir));
}

static void on_fingerprint(void *ctx, const char *key, size_t keylen, const char *json, size_t len)
{
    struct sn_pipeline *p = ctx;
    struct sn_record r = {.type = SN_REC_FINGERPRINT, .key = key, .keylen = keylen, .data = json,
                          .len = len, .seq = p->seq};
    if (p->sink->ops->emit(p->sink, &r)) {
        p->sink_errors++;
        sn_log_ratelimited(SN_LOG_ERROR, "%s", sn_err_last());
        return;
    }
    p->records[SN_REC_FINGERPRINT]++;
}

/* Frees what later stages hold for a flow that has ended. */
static void release_flow(struct sn_pipeline *p, struct sn_flow *f)
{
    sn_classify_flow_free(p->cls, f->cls);
    f->cls = NULL;
    sn_tls_free(f->tls);
    f->tls = NULL;
}

static void on_flow_end(void *ctx, struct sn_flow *f, enum sn_flow_end why)
{
    struct sn_pipeline *p = ctx;
    /* A QUIC flow that ends while its ClientHello is incomplete was held back from nDPI. */
    if (f->cls && why != SN_FLOW_END_ACTIVE && !f->cls_done && sn_tls_quic_partial(f->tls) &&
        sn_classify_tls(p->cls, f->cls, SN_CLASSIFY_TLS_QUIC, NULL, &f->client, f->client_port,
                        &f->server, f->server_port))
        f->cls_done = true;
    if (f->cls && why != SN_FLOW_END_ACTIVE && !f->cls_done) {
        sn_classify_finish(p->cls, f->cls);
        f->cls_done = true;
    }
    if (f->agg && why != SN_FLOW_END_ACTIVE) {
        settle_flow(p, f); /* the latest facts (ALPN selected, certificate) */
        sn_agg_flow_end(p->agg, f->agg, f->last_us);
        f->agg = NULL;
    }
    emit_flow(p, f, why);
    if (why != SN_FLOW_END_ACTIVE)
        release_flow(p, f);
}

static int load_rules(struct sn_pipeline *p, struct sn_rules **out)
{
    *out = NULL;
    if (!p->rules_path[0])
        return 0;
    *out = sn_rules_load(p->rules_path);
    return *out ? 0 : -SN_ECONFIG;
}

/* ---- lifecycle ---- */

struct sn_pipeline *sn_pipeline_new(const struct sn_config *cfg, struct sn_sink *sink,
                                    bool *is_config)
{
    return sn_pipeline_new_opts(cfg, sink, NULL, is_config);
}

struct sn_pipeline *sn_pipeline_new_opts(const struct sn_config *cfg, struct sn_sink *sink,
                                         const struct sn_pipeline_opts *opts, bool *is_config)
{
    *is_config = false;
    struct sn_pipeline *p = calloc(1, sizeof(*p));
    if (!p) {
        SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    p->no_seq = opts && opts->no_seq;
    p->cfg = cfg;
    p->sink = sink;
    sn_decode_init(&p->dec);
    sn_json_init(&p->js);
    if (cfg->sensor_id)
        snprintf(p->sensor, sizeof(p->sensor), "%s", cfg->sensor_id);
    else if (gethostname(p->sensor, sizeof(p->sensor) - 1) != 0)
        snprintf(p->sensor, sizeof(p->sensor), "spanprint");
    sensor_json_make(p);
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

    p->tls_cfg.reasm_cap = cfg->tls_reasm_cap;
    p->tls_cfg.first_records = cfg->tls_first_records;
    p->tls_cfg.on_record = on_tls_record;
    p->tls_cfg.ctx = p;
    if (!cfg->no_tls) {
        p->quic = sn_quic_ctx_new();
        p->fp_memo = sn_tls_fp_memo_new();
        if (!p->quic || !p->fp_memo)
            goto fail;
        p->tls_cfg.quic = p->quic;
        p->tls_cfg.fp_memo = p->fp_memo;
    }

    if (!cfg->no_fingerprints) {
        struct sn_agg_cfg ac = {
            .window_s = cfg->window,
            .grace_s = cfg->window_grace,
            .max_entries = cfg->agg_max_entries,
            .max_flows = cfg->flow_max,
            .prefix4 = cfg->client_prefix4,
            .prefix6 = cfg->client_prefix6,
            .pseudo_prefix_preserving = cfg->pseudonym_prefix_preserving,
            .sensor_id = p->sensor,
            .run_id = cfg->run_id,
            .seq = p->no_seq ? NULL : &p->seq,
        };
        if (sn_agg_parse_client_key(cfg->client_key, &ac.client_key)) {
            *is_config = true;
            goto fail;
        }
        if (cfg->pseudonym_key) {
            size_t klen;
            if (sn_pseudo_load_key(cfg->pseudonym_key, p->pseudo_key, sizeof(p->pseudo_key),
                                   &klen)) {
                *is_config = true;
                goto fail;
            }
            ac.pseudo_key = p->pseudo_key;
            ac.pseudo_key_len = klen;
            if (!(p->pseudo = sn_pseudo_new(p->pseudo_key, klen)))
                goto fail;
        }
        p->agg = sn_agg_new(&ac, on_fingerprint, p);
        if (!p->agg)
            goto fail;
    }

    /* Rules: --rules, else the shipped rules/ directory (none found: no service labels). */
    char dflt[4096];
    const char *rules_dir = sn_config_default_rules(dflt, sizeof(dflt));
    if (cfg->rules)
        snprintf(p->rules_path, sizeof(p->rules_path), "%s", cfg->rules);
    else if (rules_dir)
        snprintf(p->rules_path, sizeof(p->rules_path), "%s", rules_dir);
    if (load_rules(p, &p->rules)) {
        *is_config = true;
        goto fail;
    }

    if (!cfg->no_ndpi) {
        char protos[4200];
        const char *pf = cfg->ndpi_protos;
        if (!pf && rules_dir) {
            snprintf(protos, sizeof(protos), "%s/ndpi-protos.txt", rules_dir);
            if (access(protos, R_OK) == 0)
                pf = protos;
        }
        struct sn_classify_cfg cc = {.max_pkts = cfg->ndpi_max_pkts, .protos_file = pf};
        p->cls = sn_classify_new(&cc);
        if (!p->cls) {
            *is_config = cfg->ndpi_protos != NULL;
            goto fail;
        }
    }

    if (cfg->geo_city || cfg->geo_asn) {
        p->geo = sn_geo_open(cfg->geo_city, cfg->geo_asn);
        if (!p->geo) {
            *is_config = true;
            goto fail;
        }
        sn_geo_set_lookup_all(p->geo, cfg->geo_lookup_all);
    }
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
    sn_quic_ctx_free(p->quic); /* after the flows: their QUIC state borrows it */
    sn_tls_fp_memo_free(p->fp_memo); /* likewise their TLS state */
    sn_agg_free(p->agg);
    sn_pseudo_free(p->pseudo);
    /* Before nDPI's teardown: freeing this large buffer consolidates glibc's fast bins, which
     * after nDPI's hundred thousand small frees took millions of instructions. */
    sn_json_fini(&p->js);
    sn_classify_free(p->cls);
    sn_geo_free(p->geo);
    sn_rules_free(p->rules);
    free(p);
}

/* Flows whose protocol our parsers can tell from packets nDPI 4.2 has no dissector for: a
 * TCP flow picked up mid-stream whose payload starts with a TLS application_data record
 * header, no hello seen (nDPI's TLS dissector needs a ClientHello or a ServerHello), and a
 * UDP/443 flow that starts with a QUIC short-header packet (no Initial: nDPI's QUIC
 * dissector needs a long header). Fed on, nDPI would run its other dissectors over
 * encrypted bytes up to --ndpi-max-pkts packets and then guess from ports and addresses,
 * which is what it gives at once here. Checked against nDPI's own answers on every flow of
 * the real captures under ../shared/data and tests/ and of the bench captures: no result
 * changed. */
static bool opaque_to_ndpi(const struct sn_flow *f, const struct sn_pkt *pkt, bool is_new)
{
    if (pkt->proto == 6) {
        if (!f->mid_stream)
            return false;
        if (f->tls) {
            const struct sn_tls_meta *m = sn_tls_meta(f->tls);
            if (sn_tls_meta_has_client_hello(m) || sn_tls_meta_has_server_hello(m))
                return false;
        }
        return sn_tls_app_record_start(pkt->payload, pkt->payload_caplen);
    }
    /* RFC 9000 17.3: a short header has the form bit clear and the fixed bit set. */
    return pkt->proto == 17 && is_new && !f->tls && f->server_port == 443 &&
           pkt->payload_caplen > 0 && (pkt->payload[0] & 0xc0) == 0x40;
}

void sn_pipeline_packet(struct sn_pipeline *p, int dlt, const uint8_t *data, uint32_t caplen,
                        uint32_t wirelen, int64_t ts_us)
{
    struct sn_pkt pkt;
    if (ts_us > p->now_us)
        p->now_us = ts_us;
    /* Before a fingerprint window closes, every flow past its idle timeout ends (not only
     * the SN_FLOW_EXPIRE_BUDGET that sn_flow_packet ends per packet), so that a flow timing
     * out in a pause counts in the window it ended in however many time out with it; and the
     * close happens at the first packet past the window's end + grace, whether or not that
     * packet belongs to a flow. The workers' advance does both (workers.h), so their
     * fingerprints equal one pipeline's. */
    if (p->agg && sn_agg_close_due(p->agg, p->now_us))
        sn_pipeline_advance(p, p->now_us);
    if (sn_decode_packet(&p->dec, dlt, data, caplen, wirelen, ts_us, &pkt) != SN_DEC_OK)
        return;
    p->bytes += wirelen;
    int dir;
    bool is_new;
    struct sn_flow *f = sn_flow_packet(p->flows, &pkt, &dir, &is_new);
    if (!f)
        return;
    if (is_new) {
        if (p->cls)
            f->cls = sn_classify_flow_new(p->cls);
        if (pkt.proto == 6 && !p->cfg->no_tls)
            f->tls = sn_tls_new(&p->tls_cfg, &p->tls_st);
        if (p->agg) {
            struct sn_agg_flowinfo fi = {.client = f->client, .server = f->server,
                                         .server_port = f->server_port};
            f->agg = sn_agg_flow_start(p->agg, &fi, pkt.ts_us);
        }
    }
    if (p->agg) {
        sn_agg_advance(p->agg, p->now_us);
        if (f->agg)
            sn_agg_packet(p->agg, f->agg, dir, pkt.ip_len, pkt.payload_len, pkt.ts_us);
    }
    /* QUIC: a UDP flow whose client opens with an Initial gets its ClientHello decrypted by
     * us (see quic.h). Only the first client packet can start it. */
    if (is_new && pkt.proto == 17 && p->quic && dir == 0 &&
        sn_quic_looks_initial(pkt.payload, pkt.payload_caplen, pkt.payload_len))
        f->tls = sn_tls_new_quic(&p->tls_cfg, &p->tls_st);
    bool quic_hold = false;    /* part of a QUIC ClientHello is in: nDPI waits for the rest */
    bool quic_nohello = false; /* QUIC for sure, but the ClientHello did not come together */
    if (f->tls && pkt.proto == 17) {
        if (sn_tls_wants_payload(f->tls))
            sn_tls_datagram(f->tls, dir, pkt.payload, pkt.payload_caplen);
        quic_hold = sn_tls_quic_partial(f->tls);
        if (!sn_tls_is_tls(f->tls) && !sn_tls_wants_payload(f->tls)) {
            quic_nohello = sn_tls_quic_decrypted(f->tls);
            sn_tls_free(f->tls); /* gave up */
            f->tls = NULL;
        }
    } else if (f->tls && (pkt.payload_len || (pkt.tcp_flags & SN_TCP_SYN))) {
        if (sn_tls_wants_payload(f->tls)) {
            p->cur = f;
            sn_tls_segment(f->tls, dir, pkt.seq, (pkt.tcp_flags & SN_TCP_SYN) != 0, pkt.payload,
                           pkt.payload_caplen, pkt.payload_len, pkt.ts_us);
            p->cur = NULL;
        }
        if (!sn_tls_is_tls(f->tls) && !sn_tls_wants_payload(f->tls)) {
            sn_tls_free(f->tls); /* not TLS: nothing to keep */
            f->tls = NULL;
        }
    }
    /* nDPI after our TLS parser: once that has the ClientHello with an SNI, nDPI's host-name
     * matcher names the flow from it, and nDPI never parses the handshake itself (its JA3
     * building and certificate dissection were a third of its cost). The same for QUIC,
     * whose Initial decryption was a quarter of nDPI's cost: while our QUIC parser still
     * gathers the ClientHello (a few client packets at most), nDPI is held back. Otherwise
     * nDPI gets the packet, until it says it is done. */
    if (f->cls && !f->cls_done && !quic_hold) {
        const struct sn_tls_meta *m = f->tls ? sn_tls_meta(f->tls) : NULL;
        enum sn_classify_tls_over over = sn_tls_is_quic(f->tls) || quic_nohello
                                             ? SN_CLASSIFY_TLS_QUIC
                                             : SN_CLASSIFY_TLS_TCP;
        /* nDPI's DNS-over-QUIC rule: the first ALPN offered starts with "doq". */
        const char *alpn = m && over == SN_CLASSIFY_TLS_QUIC ? sn_tls_meta_alpn(m) : NULL;
        if (alpn && strncmp(alpn, "doq", 3) == 0)
            over = SN_CLASSIFY_TLS_DOQ;
        if (((m && sn_tls_meta_has_client_hello(m)) || quic_nohello) &&
            sn_classify_tls(p->cls, f->cls, over, m ? sn_tls_meta_sni(m) : NULL, &f->client,
                            f->client_port, &f->server, f->server_port))
            f->cls_done = true;
        else if (!sn_classify_packet(p->cls, f->cls, pkt.l3, pkt.l3_caplen, pkt.ts_us, dir))
            f->cls_done = true;
        else if (m && sn_tls_meta_has_client_hello(m) && sn_classify_known(f->cls)) {
            /* No SNI: nDPI has seen the ClientHello; its certificate dissection adds
             * nothing we use. */
            sn_classify_finish(p->cls, f->cls);
            f->cls_done = true;
        } else if (!sn_classify_known(f->cls) && opaque_to_ndpi(f, &pkt, is_new)) {
            sn_classify_finish(p->cls, f->cls); /* nDPI's guess, as after its last packet */
            f->cls_done = true;
        }
    }
    /* Settle the fingerprint key once the facts are in: the ClientHello for TLS, the
     * classification otherwise. */
    if (f->agg && !f->settled) {
        bool ready = f->tls ? sn_tls_meta_has_client_hello(sn_tls_meta(f->tls))
                            : (!f->cls || f->cls_done);
        if (ready)
            settle_flow(p, f);
    }
}

void sn_pipeline_reload(struct sn_pipeline *p)
{
    struct sn_rules *nr;
    if (load_rules(p, &nr) == 0) {
        if (nr) {
            sn_rules_free(p->rules);
            p->rules = nr;
        }
        p->reloads++;
        sn_log(SN_LOG_INFO, "rules reloaded from %s (%zu rules)", p->rules_path,
               sn_rules_count(p->rules));
    } else {
        p->reload_errors++;
        sn_log(SN_LOG_ERROR, "reload: %s; keeping the previous rules", sn_err_last());
    }
    if (p->geo && sn_geo_reload(p->geo) != 0) {
        p->reload_errors++;
        sn_log(SN_LOG_ERROR, "reload: %s; keeping the previous databases", sn_err_last());
    }
}

void sn_pipeline_tick(struct sn_pipeline *p, int64_t now_us)
{
    sn_pipeline_advance(p, now_us);
    if (p->geo && sn_geo_reload_if_changed(p->geo) < 0)
        sn_log_ratelimited(SN_LOG_ERROR, "%s; keeping the previous databases", sn_err_last());
}

void sn_pipeline_capture_stats(struct sn_pipeline *p, uint64_t recv, uint64_t drop,
                               uint64_t ifdrop)
{
    p->live = true;
    p->cap_recv = recv;
    p->cap_drop = drop;
    p->cap_ifdrop = ifdrop;
}

void sn_pipeline_input_begin(struct sn_pipeline *p, const char *path, int dlt)
{
    if (p->n_inputs >= MAX_INPUT_STATS)
        return;
    struct input_stat *in = &p->inputs[p->n_inputs++];
    snprintf(in->path, sizeof(in->path), "%s", path);
    in->dlt = dlt;
}

void sn_pipeline_input_capture(struct sn_pipeline *p, uint64_t recv, uint64_t drop,
                               uint64_t ifdrop)
{
    if (!p->n_inputs)
        return;
    struct input_stat *in = &p->inputs[p->n_inputs - 1];
    in->live = true;
    in->recv = recv;
    in->drop = drop;
    in->ifdrop = ifdrop;
}

void sn_pipeline_input_end(struct sn_pipeline *p, uint64_t packets, bool truncated)
{
    if (!p->n_inputs)
        return;
    struct input_stat *in = &p->inputs[p->n_inputs - 1];
    in->packets = packets;
    in->truncated = truncated;
}

/* A named group of counters in the stats record, written in table order. */
struct counter {
    const char *name; /* NULL ends the table */
    uint64_t v;
};

static void json_counters(struct sn_json *j, const char *group, const struct counter *c)
{
    sn_json_obj_begin(j, group);
    for (; c->name; c++)
        sn_json_u64(j, c->name, c->v);
    sn_json_obj_end(j);
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

/* Counters of a pipeline, or of a set of pipelines (workers) summed. */
struct sn_pipeline_counters {
    struct sn_decode_stats dec;
    struct sn_flow_stats fl;
    uint64_t active;
    struct sn_tls_stats tls;
    struct sn_quic_stats quic;
    struct sn_classify_stats cls;
    struct sn_agg_stats agg;
    struct sn_geo_stats geo;
    uint64_t records[SN_REC_TYPE_MAX];
    uint64_t sink_errors, bytes, reloads, reload_errors;
    uint64_t cap_drop, cap_ifdrop; /* the capture's (not summed: one capture) */
    bool has_geo;                  /* geo on: its metrics are written */
};

/* The module stats structs hold only uint64_t counters (their headers say so; the sizes are
 * checked here), so a set of them is summed word by word, and each counter's name is written
 * in one place: the stats record's tables. */
_Static_assert(sizeof(struct sn_flow_stats) % sizeof(uint64_t) == 0, "flow stats: u64 only");
_Static_assert(sizeof(struct sn_tls_stats) % sizeof(uint64_t) == 0, "tls stats: u64 only");
_Static_assert(sizeof(struct sn_quic_stats) % sizeof(uint64_t) == 0, "quic stats: u64 only");
_Static_assert(sizeof(struct sn_classify_stats) % sizeof(uint64_t) == 0, "classify: u64 only");
_Static_assert(sizeof(struct sn_agg_stats) % sizeof(uint64_t) == 0, "agg stats: u64 only");
_Static_assert(sizeof(struct sn_geo_stats) % sizeof(uint64_t) == 0, "geo stats: u64 only");

static void add_counters(void *dst, const void *src, size_t size)
{
    uint64_t *d = dst;
    const uint64_t *x = src;
    for (size_t i = 0; i < size / sizeof(uint64_t); i++)
        d[i] += x[i];
}

#define ADD_COUNTERS(sum, one) add_counters(&(sum), (one), sizeof(sum))

/* p's counters into c (overwritten). */
static void take_counters(const struct sn_pipeline *p, struct sn_pipeline_counters *s)
{
    memset(s, 0, sizeof(*s));
    s->cap_drop = p->cap_drop;
    s->cap_ifdrop = p->cap_ifdrop;
    s->has_geo = p->geo != NULL;
    s->dec = p->dec.st;
    s->fl = *sn_flow_stats(p->flows);
    s->active = sn_flow_active(p->flows);
    s->tls = p->tls_st;
    if (p->quic)
        s->quic = *sn_quic_ctx_stats(p->quic);
    if (p->cls)
        s->cls = sn_classify_stats(p->cls);
    if (p->agg)
        s->agg = *sn_agg_stats(p->agg);
    if (p->geo)
        sn_geo_get_stats(p->geo, &s->geo);
    memcpy(s->records, p->records, sizeof(s->records));
    s->sink_errors = p->sink_errors;
    s->bytes = p->bytes;
    s->reloads = p->reloads;
    s->reload_errors = p->reload_errors;
}

/* The counters of ps[0..n) summed into s; capture drops are ps[0]'s. */
static void sum_stats(struct sn_pipeline *const *ps, unsigned n, struct sn_pipeline_counters *s)
{
    take_counters(ps[0], s);
    for (unsigned i = 1; i < n; i++) {
        struct sn_pipeline_counters one;
        take_counters(ps[i], &one);
        sn_pipeline_counters_add(s, &one);
    }
}

/* A live capture's counters (pcap_stats), as member "capture". */
static void capture_json(struct sn_json *j, uint64_t recv, uint64_t drop, uint64_t ifdrop)
{
    sn_json_obj_begin(j, "capture");
    sn_json_u64(j, "received", recv);
    sn_json_u64(j, "kernel_drops", drop);
    sn_json_u64(j, "interface_drops", ifdrop);
    sn_json_obj_end(j);
}

/* The stats record of ps[0..n) (one pipeline, or the workers of one sensor), written by and
 * through ps[0]: inputs and capture counters are ps[0]'s, everything else is summed. */
static void emit_stats(struct sn_pipeline *const *ps, unsigned n)
{
    struct sn_pipeline *p = ps[0];
    struct sn_json *j = &p->js;
    struct sn_pipeline_counters s;
    sum_stats(ps, n, &s);
    begin_record(p, SN_REC_STATS);
    sn_json_arr_begin(j, "inputs");
    for (unsigned i = 0; i < p->n_inputs; i++) {
        sn_json_obj_begin(j, NULL);
        sn_json_str(j, "file", p->inputs[i].path);
        sn_json_u64(j, "linktype", (uint64_t)p->inputs[i].dlt);
        sn_json_u64(j, "packets", p->inputs[i].packets);
        sn_json_bool(j, "truncated", p->inputs[i].truncated);
        if (p->inputs[i].live)
            capture_json(j, p->inputs[i].recv, p->inputs[i].drop, p->inputs[i].ifdrop);
        sn_json_obj_end(j);
    }
    sn_json_arr_end(j);
    if (p->live) /* all interfaces together */
        capture_json(j, p->cap_recv, p->cap_drop, p->cap_ifdrop);
    sn_json_obj_begin(j, "decode");
    sn_decode_stats_json(&s.dec, j);
    sn_json_obj_end(j);
    sn_json_obj_begin(j, "flows");
    flow_stats_json(&s.fl, (uint32_t)s.active, j);
    sn_json_obj_end(j);
    json_counters(j, "tls", (const struct counter[]){
        {"flows_tls", s.tls.flows_tls},
        {"flows_not_tls", s.tls.flows_not_tls},
        {"client_hellos", s.tls.client_hellos},
        {"server_hellos", s.tls.server_hellos},
        {"certificates", s.tls.certificates},
        {"malformed", s.tls.malformed},
        {"reasm_overflow", s.tls.reasm_overflow},
        {"reasm_gaps", s.tls.reasm_gaps},
        {"desync", s.tls.desync},
        {NULL, 0}});
    if (p->quic)
        json_counters(j, "quic", (const struct counter[]){
            {"flows", s.quic.flows},
            {"initials", s.quic.initials},
            {"client_hellos", s.quic.client_hellos},
            {"bad_packets", s.quic.bad_packets},
            {"gave_up", s.quic.gave_up},
            {"reasm_overflow", s.quic.reasm_overflow},
            {NULL, 0}});
    if (p->cls)
        json_counters(j, "classify", (const struct counter[]){
            {"flows", s.cls.flows},
            {"classified", s.cls.classified},
            {"guessed", s.cls.guessed},
            {"unknown", s.cls.unknown},
            {"by_sni", s.cls.by_sni},
            {"pkts_fed", s.cls.pkts_fed},
            {"bad_pkts", s.cls.bad_pkts},
            {NULL, 0}});
    if (p->agg)
        json_counters(j, "fingerprints", (const struct counter[]){
            {"windows_closed", s.agg.windows_closed},
            {"emitted", s.agg.fingerprints},
            {"flows_pool_full", s.agg.flows_pool_full},
            {"overflow_entries", s.agg.overflow_entries},
            {"overflow_pkts", s.agg.overflow_pkts},
            {"late_pkts", s.agg.late_pkts},
            {"forced_settles", s.agg.forced_settles},
            {NULL, 0}});
    if (p->geo)
        json_counters(j, "geo", (const struct counter[]){
            {"lookups", s.geo.lookups},
            {"cache_hits", s.geo.cache_hits},
            {"not_found", s.geo.not_found},
            {"errors", s.geo.errors},
            {NULL, 0}});
    sn_json_obj_begin(j, "records");
    sn_json_u64(j, "flow", s.records[SN_REC_FLOW]);
    sn_json_u64(j, "fingerprint", s.records[SN_REC_FINGERPRINT]);
    sn_json_obj_end(j);
    end_record(p, SN_REC_STATS, NULL, 0);
}

void sn_pipeline_finish_records(struct sn_pipeline *p)
{
    sn_flow_flush(p->flows);
    if (p->agg)
        sn_agg_finish(p->agg);
}

void sn_pipeline_finish(struct sn_pipeline *p)
{
    sn_pipeline_finish_records(p);
    emit_stats(&p, 1);
}

void sn_pipeline_emit_stats_sum(struct sn_pipeline *const *ps, unsigned n)
{
    if (n)
        emit_stats(ps, n);
}

void sn_pipeline_advance(struct sn_pipeline *p, int64_t now_us)
{
    if (now_us > p->now_us)
        p->now_us = now_us;
    /* Every call, as every packet of a single pipeline does: flows created since the clock
     * last moved may already be past their timeout (input files out of time order). */
    sn_flow_expire(p->flows, p->now_us, 0);
    if (p->agg)
        sn_agg_advance(p->agg, p->now_us);
}

/* The "name value" lines of --stats / SIGUSR1, inputs aside. */
static void print_counters(const struct sn_pipeline_counters *s, FILE *out)
{
    const struct sn_decode_stats *d = &s->dec;
    fprintf(out, "packets %" PRIu64 "\n", d->packets);
    fprintf(out, "ipv4 %" PRIu64 "\nipv6 %" PRIu64 "\ntcp %" PRIu64 "\nudp %" PRIu64 "\n", d->ipv4,
            d->ipv6, d->tcp, d->udp);
    fprintf(out, "fragments %" PRIu64 "\ntunneled %" PRIu64 "\n", d->fragments, d->tunneled);
    for (int r = 1; r < SN_DEC_REASON_MAX; r++)
        fprintf(out, "decode.%s %" PRIu64 "\n", sn_decode_reason_name((enum sn_decode_reason)r),
                d->reason[r]);
    fprintf(out, "flows.created %" PRIu64 "\nflows.evicted %" PRIu64 "\n", s->fl.created,
            s->fl.evicted);
    fprintf(out, "records.flow %" PRIu64 "\nrecords.fingerprint %" PRIu64 "\n",
            s->records[SN_REC_FLOW], s->records[SN_REC_FINGERPRINT]);
    fprintf(out, "sink.errors %" PRIu64 "\n", s->sink_errors);
}

void sn_pipeline_print_stats_sum(struct sn_pipeline *const *ps, unsigned n, FILE *out)
{
    if (!n)
        return;
    const struct sn_pipeline *p = ps[0];
    struct sn_pipeline_counters s;
    sum_stats(ps, n, &s);
    print_counters(&s, out);
    for (unsigned i = 0; i < p->n_inputs; i++)
        fprintf(out, "input %s packets %" PRIu64 "%s\n", p->inputs[i].path, p->inputs[i].packets,
                p->inputs[i].truncated ? " truncated" : "");
}

void sn_pipeline_print_stats(const struct sn_pipeline *p, FILE *out)
{
    struct sn_pipeline *one = (struct sn_pipeline *)p;
    sn_pipeline_print_stats_sum(&one, 1, out);
}

static void metric(FILE *out, const char *name, const char *type, const char *help, uint64_t v)
{
    fprintf(out, "# HELP spanprint_%s %s\n# TYPE spanprint_%s %s\nspanprint_%s %" PRIu64 "\n",
            name, help, name, type, name, v);
}

/* Prometheus text of a set of counters. */
static void write_metrics(const struct sn_pipeline_counters *c, FILE *out)
{
    const struct sn_decode_stats *d = &c->dec;
    metric(out, "packets_total", "counter", "Packets read from the capture.", d->packets);
    metric(out, "bytes_total", "counter", "Bytes (on the wire) read from the capture.", c->bytes);
    metric(out, "reloads_total", "counter", "Successful SIGHUP reloads.", c->reloads);
    metric(out, "reload_errors_total", "counter", "Failed reloads (old rules/databases kept).",
           c->reload_errors);
    if (c->has_geo) {
        metric(out, "geo_lookups_total", "counter", "Geo/ASN lookups.", c->geo.lookups);
        metric(out, "geo_cache_hits_total", "counter", "Geo/ASN lookups served by the cache.",
               c->geo.cache_hits);
    }
    fprintf(out, "# HELP spanprint_drops_total Packets lost or not decoded, by cause.\n"
                 "# TYPE spanprint_drops_total counter\n");
    fprintf(out, "spanprint_drops_total{cause=\"kernel\"} %" PRIu64 "\n", c->cap_drop);
    fprintf(out, "spanprint_drops_total{cause=\"interface\"} %" PRIu64 "\n", c->cap_ifdrop);
    for (int r = 1; r < SN_DEC_REASON_MAX; r++)
        fprintf(out, "spanprint_drops_total{cause=\"decode_%s\"} %" PRIu64 "\n",
                sn_decode_reason_name((enum sn_decode_reason)r), d->reason[r]);
    fprintf(out, "spanprint_drops_total{cause=\"sink\"} %" PRIu64 "\n", c->sink_errors);
    metric(out, "flows_active", "gauge", "Flows in the flow table.", c->active);
    metric(out, "flows_created_total", "counter", "Flows created.", c->fl.created);
    metric(out, "flows_evicted_total", "counter", "Flows evicted because the table was full.",
           c->fl.evicted);
    fprintf(out, "# HELP spanprint_records_total Records written, by type.\n"
                 "# TYPE spanprint_records_total counter\n");
    for (int t = 0; t < SN_REC_TYPE_MAX; t++)
        fprintf(out, "spanprint_records_total{type=\"%s\"} %" PRIu64 "\n",
                sn_rec_type_name((enum sn_rec_type)t), c->records[t]);
}

void sn_pipeline_metrics_sum(struct sn_pipeline *const *ps, unsigned n, FILE *out)
{
    if (!n)
        return;
    struct sn_pipeline_counters s;
    sum_stats(ps, n, &s);
    write_metrics(&s, out);
}

struct sn_pipeline_counters *sn_pipeline_counters_new(void)
{
    struct sn_pipeline_counters *c = calloc(1, sizeof(*c));
    if (!c)
        SN_ERR(ENOMEM, "out of memory for counters");
    return c;
}

void sn_pipeline_counters_free(struct sn_pipeline_counters *c)
{
    free(c);
}

void sn_pipeline_counters_take(const struct sn_pipeline *p, struct sn_pipeline_counters *c)
{
    take_counters(p, c);
}

void sn_pipeline_counters_reset(struct sn_pipeline_counters *c)
{
    memset(c, 0, sizeof(*c));
}

void sn_pipeline_counters_add(struct sn_pipeline_counters *sum,
                              const struct sn_pipeline_counters *c)
{
    sn_decode_stats_add(&sum->dec, &c->dec);
    ADD_COUNTERS(sum->fl, &c->fl);
    sum->active += c->active;
    ADD_COUNTERS(sum->tls, &c->tls);
    ADD_COUNTERS(sum->quic, &c->quic);
    ADD_COUNTERS(sum->cls, &c->cls);
    ADD_COUNTERS(sum->agg, &c->agg);
    ADD_COUNTERS(sum->geo, &c->geo);
    for (int t = 0; t < SN_REC_TYPE_MAX; t++)
        sum->records[t] += c->records[t];
    sum->sink_errors += c->sink_errors;
    sum->bytes += c->bytes;
    sum->reloads += c->reloads;
    sum->reload_errors += c->reload_errors;
    sum->has_geo = sum->has_geo || c->has_geo;
}

void sn_pipeline_counters_set_capture(struct sn_pipeline_counters *c, uint64_t drop,
                                      uint64_t ifdrop, uint64_t sink_errors)
{
    c->cap_drop = drop;
    c->cap_ifdrop = ifdrop;
    c->sink_errors += sink_errors;
}

void sn_pipeline_counters_metrics(const struct sn_pipeline_counters *c, FILE *out)
{
    write_metrics(c, out);
}

void sn_pipeline_counters_print(const struct sn_pipeline_counters *c, FILE *out)
{
    print_counters(c, out);
}

void sn_pipeline_metrics(const struct sn_pipeline *p, FILE *out)
{
    struct sn_pipeline *one = (struct sn_pipeline *)p;
    sn_pipeline_metrics_sum(&one, 1, out);
}

uint64_t sn_pipeline_sink_errors(const struct sn_pipeline *p)
{
    return p->sink_errors;
}
