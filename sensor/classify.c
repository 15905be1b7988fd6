/* classify: the nDPI wrapper. See include/classify.h.
 *
 * This is the only file that includes nDPI. Its API changed several times; everything that
 * differs between releases is behind the small compat helpers below (sn_ndpi_*), chosen on
 * NDPI_MAJOR/NDPI_MINOR from ndpi_define.h. Built and tested here against Debian 12's nDPI
 * 4.2; the other branches follow nDPI's public headers and examples of those releases:
 *
 *   release  change that matters here
 *   4.2      ndpi_init_detection_module(ndpi_init_prefs); ndpi_detection_process_packet(mod,
 *            flow, l3, len, time_ms); ndpi_detection_giveup(mod, flow, enable_guess,
 *            &was_guessed); ndpi_protocol = { master_protocol, app_protocol, category };
 *            ndpi_extra_dissection_possible(); ndpi_set_protocol_detection_bitmask2() needed.
 *   4.6      ndpi_detection_process_packet() gains a last `struct ndpi_flow_input_info *`
 *            argument (optional; we pass the packet direction we know).
 *   4.10     ndpi_init_detection_module(struct ndpi_global_context *) (NULL: none);
 *            configuration moves to ndpi_set_config(), guessing on give-up becomes the
 *            "dpi.guess_on_giveup" knob, so ndpi_detection_giveup(mod, flow, &was_guessed).
 *   4.12     ndpi_master_app_protocol: ndpi_protocol.proto.{master,app}_protocol.
 *   5.0      ndpi_set_protocol_detection_bitmask2() and NDPI_PROTOCOL_BITMASK removed (all
 *            protocols on by default); ndpi_extra_dissection_possible() removed, the result
 *            of ndpi_detection_process_packet() carries a `state` instead
 *            (NDPI_STATE_INSPECTING/PARTIAL/MONITORING/CLASSIFIED);
 *            ndpi_detection_giveup(mod, flow); ndpi_finalize_initialization() returns int.
 *   6.0      (seen in later sources) ndpi_init_detection_module() also takes a licence type:
 *            refused below until someone decides which licence the sensor declares.
 *
 * Version-independent choices: the flow struct is sized with
 * ndpi_detection_get_sizeof_ndpi_flow_struct() and allocated/freed with ndpi_flow_malloc() /
 * ndpi_flow_free() (the latter frees the flow's own allocations too in every release);
 * names are built from ndpi_get_proto_name() (ndpi_protocol2name() changed its argument
 * type); "guessed" is derived from the ids before and after the give-up rather than from
 * nDPI's was_guessed flag (gone in 5.0).
 */
#define SN_LOG_MOD "classify"
#include "classify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <ndpi_api.h>

#include "addr.h"
#include "cursor.h"
#include "err.h"
#include "json.h"

#ifndef NDPI_MAJOR
#error "ndpi_define.h did not define NDPI_MAJOR/NDPI_MINOR"
#endif

#define SN_NDPI_VER(maj, min) ((maj) * 100 + (min))
#define SN_NDPI_THIS SN_NDPI_VER(NDPI_MAJOR, NDPI_MINOR)
#define SN_NDPI_AT_LEAST(maj, min) (SN_NDPI_THIS >= SN_NDPI_VER(maj, min))

#if SN_NDPI_AT_LEAST(6, 0)
#error "nDPI >= 6.0: ndpi_init_detection_module() needs a licence type; pick one in sn_ndpi_init()"
#endif

/* ndpi_protocol layout: 4.12 nested the two ids in an ndpi_master_app_protocol `proto`. */
#if SN_NDPI_AT_LEAST(4, 12)
#define SN_NDPI_MASTER(p) ((p).proto.master_protocol)
#define SN_NDPI_APP(p) ((p).proto.app_protocol)
#else
#define SN_NDPI_MASTER(p) ((p).master_protocol)
#define SN_NDPI_APP(p) ((p).app_protocol)
#endif

struct sn_classify {
    struct ndpi_detection_module_struct *mod;
    unsigned max_pkts;
    uint32_t flow_size; /* ndpi_detection_get_sizeof_ndpi_flow_struct() */
    struct sn_classify_stats st;
};

struct sn_classify_flow {
    struct ndpi_flow_struct *nf; /* NULL once classification is over */
    uint16_t master, app;        /* nDPI protocol ids, NDPI_PROTOCOL_UNKNOWN (0) if none */
    int category;                /* ndpi_protocol_category_t, 0 = unspecified */
    uint32_t pkts;               /* packets fed */
    uint32_t known_at;           /* pkts when a protocol was first known; 0: not yet */
    bool done, guessed;
    char name[SN_CLASSIFY_NAME_MAX];
};

/* ---- compat helpers: every version-dependent nDPI call is here ---- */

static struct ndpi_detection_module_struct *sn_ndpi_init(void)
{
#if SN_NDPI_AT_LEAST(4, 10)
    return ndpi_init_detection_module(NULL); /* no global context: caches stay per module */
#else
    return ndpi_init_detection_module(ndpi_no_prefs);
#endif
}

static void sn_ndpi_enable_all(struct ndpi_detection_module_struct *mod)
{
#if SN_NDPI_AT_LEAST(5, 0)
    (void)mod; /* every protocol is enabled by default */
#else
    NDPI_PROTOCOL_BITMASK all;
    NDPI_BITMASK_SET_ALL(all);
    ndpi_set_protocol_detection_bitmask2(mod, &all);
#endif
}

static int sn_ndpi_finalize(struct ndpi_detection_module_struct *mod)
{
#if SN_NDPI_AT_LEAST(5, 0)
    return ndpi_finalize_initialization(mod) == 0 ? 0 : -1;
#else
    /* void before 5.0 in some releases: call it as a statement */
    ndpi_finalize_initialization(mod);
    return 0;
#endif
}

static ndpi_protocol sn_ndpi_process(struct ndpi_detection_module_struct *mod,
                                     struct ndpi_flow_struct *nf, const uint8_t *l3,
                                     unsigned short len, uint64_t time_ms, int dir)
{
#if SN_NDPI_AT_LEAST(4, 6)
    struct ndpi_flow_input_info in;
    memset(&in, 0, sizeof(in));
    in.in_pkt_dir = dir ? NDPI_IN_PKT_DIR_S_TO_C : NDPI_IN_PKT_DIR_C_TO_S;
    in.seen_flow_beginning = NDPI_FLOW_BEGINNING_UNKNOWN;
    return ndpi_detection_process_packet(mod, nf, l3, len, time_ms, &in);
#else
    (void)dir; /* nDPI works the direction out itself (first packet = client) */
    return ndpi_detection_process_packet(mod, nf, l3, len, time_ms);
#endif
}

/* True when nDPI needs no more packets for this flow, given the result of the last one. */
static bool sn_ndpi_done(struct ndpi_detection_module_struct *mod, struct ndpi_flow_struct *nf,
                         ndpi_protocol p)
{
#if SN_NDPI_AT_LEAST(5, 0)
    (void)mod;
    (void)nf;
    /* MONITORING: the protocol will not change, nDPI would only collect metadata. */
    return p.state == NDPI_STATE_CLASSIFIED || p.state == NDPI_STATE_MONITORING;
#else
    if (SN_NDPI_MASTER(p) == NDPI_PROTOCOL_UNKNOWN && SN_NDPI_APP(p) == NDPI_PROTOCOL_UNKNOWN)
        return false;
    return !ndpi_extra_dissection_possible(mod, nf);
#endif
}

static ndpi_protocol sn_ndpi_giveup(struct ndpi_detection_module_struct *mod,
                                    struct ndpi_flow_struct *nf)
{
#if SN_NDPI_AT_LEAST(5, 0)
    return ndpi_detection_giveup(mod, nf);
#elif SN_NDPI_AT_LEAST(4, 10)
    u_int8_t was_guessed = 0; /* guessing itself is the "dpi.guess_on_giveup" knob (on) */
    return ndpi_detection_giveup(mod, nf, &was_guessed);
#else
    u_int8_t was_guessed = 0;
    return ndpi_detection_giveup(mod, nf, 1 /* enable_guess */, &was_guessed);
#endif
}

/* ---- module ---- */

const char *sn_classify_ndpi_version(void)
{
    return ndpi_revision();
}

/* ---- protocols file ----
 *
 * nDPI's loader (4.2) prints unknown lines to stdout and still returns 0, and "loads" a
 * directory, so the file is checked here first and any error refuses the whole file with
 * "path:line: reason". Accepted lines (nDPI's example/protos.txt format):
 *   rule[,rule...]@Name   rule: host:"name" | ip:addr[/bits][:port] | tcp:ports | udp:ports
 *                               | nbpf:"filter"        ports: n or n-m
 *   ip_risk_mask:..., host_risk_mask:..., trusted_issuer_dn:...   (passed through)
 * Blank lines and lines starting with '#' are ignored.
 */

static bool name_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "n" or "n-m", 1..65535. */
static bool ports_ok(const char *s, size_t n)
{
    unsigned long v = 0;
    size_t digits = 0, dashes = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (unsigned long)(s[i] - '0');
            if (++digits > 5 || v > 65535)
                return false;
        } else if (s[i] == '-' && digits && !dashes) {
            dashes++;
            digits = 0;
            v = 0;
        } else {
            return false;
        }
    }
    return digits > 0;
}

/* Checks one rule (s, n bytes: no '@', commas only inside quotes). NULL if fine. */
static const char *rule_error(const char *s, size_t n)
{
    if (starts(s, "host:") || starts(s, "nbpf:")) {
        if (n < 8 || s[5] != '"' || s[n - 1] != '"')
            return "expected host:\"name\" (quoted)";
        for (size_t i = 6; i + 1 < n; i++)
            if (s[i] == '"' || s[i] == ' ' || s[i] == '\t')
                return "quote or blank inside a host name";
        return NULL;
    }
    if (starts(s, "tcp:") || starts(s, "udp:"))
        return ports_ok(s + 4, n - 4) ? NULL : "expected tcp:port or udp:port[-port]";
    if (starts(s, "ip:")) {
        if (n < 5)
            return "expected ip:address";
        for (size_t i = 3; i < n; i++)
            if (!strchr("0123456789abcdefABCDEF.:/[]", s[i]))
                return "bad character in ip: rule";
        return NULL;
    }
    return "unknown rule (host:, ip:, tcp:, udp:, nbpf:)";
}

/* Checks one line without its newline. NULL if fine. */
static const char *line_error(char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
        line[--n] = 0;
    if (!n || line[0] == '#')
        return NULL;
    if (starts(line, "ip_risk_mask:") || starts(line, "host_risk_mask:") ||
        starts(line, "trusted_issuer_dn:"))
        return NULL;
    char *at = strrchr(line, '@');
    if (!at)
        return "missing @Protocol";
    size_t nlen = strlen(at + 1);
    if (!nlen || nlen >= SN_CLASSIFY_NAME_MAX / 2)
        return "protocol name empty or too long";
    for (const char *q = at + 1; *q; q++)
        if (!name_char((unsigned char)*q))
            return "protocol name: letters, digits, '_' and '-' only";
    if (at == line)
        return "no rule before @";
    /* split at commas outside quotes */
    const char *rule = line;
    bool quoted = false;
    for (const char *q = line; q <= at; q++) {
        if (q < at && *q == '"')
            quoted = !quoted;
        if (q == at || (*q == ',' && !quoted)) {
            const char *e = rule_error(rule, (size_t)(q - rule));
            if (e)
                return e;
            rule = q + 1;
        }
    }
    return quoted ? "unbalanced quote" : NULL;
}

static int check_protos_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        int e = errno;
        return SN_ERR(e, "%s: cannot read nDPI protocols file: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return SN_ERR(EINVAL, "%s: nDPI protocols file is not a regular file", path);
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        const char *e = line_error(line);
        if (e) {
            rc = SN_ERR(SN_ECONFIG, "%s:%u: %s", path, lineno, e);
            break;
        }
    }
    if (!rc && ferror(fp))
        rc = SN_ERR(EIO, "%s: read error", path);
    free(line);
    fclose(fp);
    return rc;
}

static int load_protos(struct sn_classify *c, const char *path)
{
    int rc = check_protos_file(path);
    if (rc < 0)
        return rc;
    rc = ndpi_load_protocols_file(c->mod, path);
    if (rc != 0)
        return SN_ERR(SN_ECONFIG, "%s: nDPI rejected the protocols file (error %d)", path, rc);
    return 0;
}

struct sn_classify *sn_classify_new(const struct sn_classify_cfg *cfg)
{
    struct sn_classify *c = calloc(1, sizeof(*c));
    if (!c) {
        SN_ERR(ENOMEM, "detection context");
        return NULL;
    }
    c->max_pkts = cfg && cfg->max_pkts ? cfg->max_pkts : SN_CLASSIFY_DEFAULT_MAX_PKTS;
    c->flow_size = ndpi_detection_get_sizeof_ndpi_flow_struct();
    c->mod = sn_ndpi_init();
    if (!c->mod) {
        SN_ERR(ENOMEM, "nDPI detection module (%s)", ndpi_revision());
        goto fail;
    }
    sn_ndpi_enable_all(c->mod);
    if (cfg && cfg->protos_file && load_protos(c, cfg->protos_file) < 0)
        goto fail;
    if (sn_ndpi_finalize(c->mod) < 0) {
        SN_ERR(SN_ECONFIG, "nDPI initialisation failed (%s)", ndpi_revision());
        goto fail;
    }
    return c;
fail:
    sn_classify_free(c);
    return NULL;
}

void sn_classify_free(struct sn_classify *c)
{
    if (!c)
        return;
    if (c->mod)
        ndpi_exit_detection_module(c->mod);
    free(c);
}

struct sn_classify_stats sn_classify_stats(const struct sn_classify *c)
{
    struct sn_classify_stats z = {0};
    return c ? c->st : z;
}

/* ---- flows ---- */

struct sn_classify_flow *sn_classify_flow_new(struct sn_classify *c)
{
    if (!c) {
        SN_ERR(EINVAL, "flow without a detection context");
        return NULL;
    }
    struct sn_classify_flow *f = calloc(1, sizeof(*f));
    if (!f) {
        SN_ERR(ENOMEM, "flow state");
        return NULL;
    }
    f->nf = ndpi_flow_malloc(c->flow_size);
    if (!f->nf) {
        SN_ERR(ENOMEM, "nDPI flow (%u bytes)", (unsigned)c->flow_size);
        free(f);
        return NULL;
    }
    memset(f->nf, 0, c->flow_size); /* nDPI requires a zeroed flow */
    snprintf(f->name, sizeof(f->name), "Unknown");
    c->st.flows++;
    return f;
}

static void release_ndpi_flow(struct sn_classify_flow *f)
{
    if (f->nf) {
        ndpi_flow_free(f->nf);
        f->nf = NULL;
    }
}

void sn_classify_flow_free(struct sn_classify *c, struct sn_classify_flow *f)
{
    (void)c;
    if (!f)
        return;
    release_ndpi_flow(f);
    free(f);
}

static bool known(const struct sn_classify_flow *f)
{
    return f->master != NDPI_PROTOCOL_UNKNOWN || f->app != NDPI_PROTOCOL_UNKNOWN;
}

bool sn_classify_known(const struct sn_classify_flow *f)
{
    return f && known(f);
}

/* nDPI names are short (< 32 bytes); a longer custom one is cut, never overflows. */
static void build_name(const struct sn_classify *c, struct sn_classify_flow *f)
{
    const char *m = f->master ? ndpi_get_proto_name(c->mod, f->master) : NULL;
    const char *a = f->app ? ndpi_get_proto_name(c->mod, f->app) : NULL;
    if (m && a && f->master != f->app)
        snprintf(f->name, sizeof(f->name), "%s.%s", m, a);
    else if (a || m)
        snprintf(f->name, sizeof(f->name), "%s", a ? a : m);
    else
        snprintf(f->name, sizeof(f->name), "Unknown");
}

/* Takes the ids of a result; an unknown result never erases a known one. */
static void take_result(const struct sn_classify *c, struct sn_classify_flow *f, ndpi_protocol p)
{
    uint16_t m = (uint16_t)SN_NDPI_MASTER(p), a = (uint16_t)SN_NDPI_APP(p);
    if (m == NDPI_PROTOCOL_UNKNOWN && a == NDPI_PROTOCOL_UNKNOWN)
        return;
    if (m != f->master || a != f->app) {
        f->master = m;
        f->app = a;
        build_name(c, f);
    }
    if (p.category != NDPI_PROTOCOL_CATEGORY_UNSPECIFIED)
        f->category = (int)p.category;
}

/* Classification is over: give up (guess) if nothing is known, count, release nDPI's state. */
static void conclude(struct sn_classify *c, struct sn_classify_flow *f)
{
    if (f->done)
        return;
    f->done = true;
    if (known(f)) {
        c->st.classified++;
    } else if (f->nf) {
        take_result(c, f, sn_ndpi_giveup(c->mod, f->nf));
        if (known(f)) {
            f->guessed = true;
            c->st.guessed++;
        } else {
            c->st.unknown++;
        }
    } else {
        c->st.unknown++;
    }
    release_ndpi_flow(f);
}

bool sn_classify_packet(struct sn_classify *c, struct sn_classify_flow *f, const uint8_t *l3,
                        size_t l3_len, int64_t ts_us, int dir)
{
    if (!c || !f || f->done || !f->nf)
        return false;

    /* nDPI parses the IP header itself; refuse only what cannot be an IP packet. */
    if (!l3 || l3_len < 20) {
        c->st.bad_pkts++;
        return true;
    }
    struct sn_cur cur = sn_cur_make(l3, l3_len);
    uint8_t v = (uint8_t)(sn_cur_u8(&cur) >> 4);
    if (!sn_cur_ok(&cur) || (v != 4 && v != 6) || (v == 6 && l3_len < 40)) {
        c->st.bad_pkts++;
        return true;
    }
    /* nDPI takes an unsigned short length; an IP packet is never longer than 65535 bytes
     * (jumbograms aside), and the headers nDPI needs are at the start anyway. */
    unsigned short len = l3_len > 65535 ? 65535 : (unsigned short)l3_len;
    uint64_t ms = ts_us > 0 ? (uint64_t)ts_us / 1000u : 0;

    ndpi_protocol p = sn_ndpi_process(c->mod, f->nf, l3, len, ms, dir);
    f->pkts++;
    c->st.pkts_fed++;
    take_result(c, f, p);

    /* nDPI may go on dissecting a named flow for metadata we do not use (SSH's HASSH,
     * QUIC's later packets...); a few packets more allow its usual refinements (a QUIC
     * ClientHello over two packets, an HTTP response's content type), then it stops. */
    if (known(f) && !f->known_at)
        f->known_at = f->pkts;
    if ((f->known_at && f->pkts - f->known_at >= SN_CLASSIFY_REFINE_PKTS) ||
        sn_ndpi_done(c->mod, f->nf, p) || f->pkts >= c->max_pkts) {
        conclude(c, f);
        return false;
    }
    return true;
}

/* TLS's own refinement by port, as nDPI's TLS dissector makes it (mail over implicit TLS). */
static uint16_t tls_master_by_port(uint16_t sport, uint16_t dport)
{
    if (sport == 465 || dport == 465 || sport == 587 || dport == 587)
        return NDPI_PROTOCOL_MAIL_SMTPS;
    if (sport == 993 || dport == 993)
        return NDPI_PROTOCOL_MAIL_IMAPS;
    if (sport == 995 || dport == 995)
        return NDPI_PROTOCOL_MAIL_POPS;
    return NDPI_PROTOCOL_TLS;
}

/* nDPI's guess from its address lists (client first, then server, as nDPI checks the first
 * packet's source and destination); IPv4 only, like nDPI's list in the releases we support. */
static uint16_t proto_by_address(struct sn_classify *c, const struct sn_addr *client,
                                 const struct sn_addr *server)
{
    const struct sn_addr *ends[2] = {client, server};
    for (unsigned i = 0; i < 2; i++) {
        if (!ends[i] || ends[i]->family != 4)
            continue;
        struct in_addr in;
        memcpy(&in.s_addr, ends[i]->a, 4);
        uint16_t id = (uint16_t)ndpi_network_ptree_match(c->mod, &in);
        if (id != NDPI_PROTOCOL_UNKNOWN)
            return id;
    }
    return NDPI_PROTOCOL_UNKNOWN;
}

bool sn_classify_tls(struct sn_classify *c, struct sn_classify_flow *f,
                     enum sn_classify_tls_over over, const char *sni,
                     const struct sn_addr *client, uint16_t client_port,
                     const struct sn_addr *server, uint16_t server_port)
{
    if (!c || !f || f->done || !f->nf)
        return false;
    bool quic = over != SN_CLASSIFY_TLS_TCP;
    /* QUIC without a name: nDPI says "QUIC" (plus its address guess). */
    if ((!sni || !sni[0]) && !quic)
        return false;
    size_t n = sni ? strnlen(sni, 255) : 0;
    /* A wildcard-looking name matches as its suffix, as nDPI does for SNI. */
    if (n > 2 && sni[0] == '*' && sni[1] == '.') {
        sni++;
        n--;
    }
    char name[256];
    if (n)
        memcpy(name, sni, n);
    name[n] = '\0';
    /* QUIC: nDPI's QUIC dissector matches the SNI under QUIC and has no port refinement. */
    uint16_t base = quic ? NDPI_PROTOCOL_QUIC : NDPI_PROTOCOL_TLS;
    uint16_t master = quic ? NDPI_PROTOCOL_QUIC : tls_master_by_port(client_port, server_port);
    ndpi_protocol_match_result m;
    memset(&m, 0, sizeof(m));
    uint16_t app = n ? ndpi_match_host_subprotocol(c->mod, f->nf, name, (u_int)n, &m, base)
                     : NDPI_PROTOCOL_UNKNOWN;
    ndpi_protocol p;
    memset(&p, 0, sizeof(p));
    if (app != NDPI_PROTOCOL_UNKNOWN) {
        master = base; /* a named service: the port refinement no longer applies */
        p.category = m.protocol_category;
    } else {
        /* No name matched: nDPI says "TLS" or "QUIC" (or the mail protocol), with the
         * application guessed from its address lists when one matches ("TLS.AmazonAWS"). */
        app = master == base ? proto_by_address(c, client, server) : NDPI_PROTOCOL_UNKNOWN;
        if (app == NDPI_PROTOCOL_UNKNOWN)
            app = master;
    }
    /* DNS over QUIC: nDPI renames the flow after its SNI match (keeping that category). */
    if (over == SN_CLASSIFY_TLS_DOQ)
        app = NDPI_PROTOCOL_DOH_DOT;
    SN_NDPI_MASTER(p) = master;
    SN_NDPI_APP(p) = app;
    if (p.category == NDPI_PROTOCOL_CATEGORY_UNSPECIFIED)
        p.category = ndpi_get_proto_category(c->mod, p);
    take_result(c, f, p);
    c->st.by_sni++;
    conclude(c, f);
    return true;
}

void sn_classify_finish(struct sn_classify *c, struct sn_classify_flow *f)
{
    if (!c || !f)
        return;
    conclude(c, f);
}

const char *sn_classify_app_name(const struct sn_classify *c, const struct sn_classify_flow *f)
{
    (void)c;
    return f ? f->name : "Unknown";
}

void sn_classify_json(const struct sn_classify *c, const struct sn_classify_flow *f,
                      struct sn_json *j)
{
    if (!c || !f || !j)
        return;
    sn_json_obj_begin(j, "app");
    sn_json_str(j, "proto", f->name);
    if (known(f)) {
        uint16_t lower = f->master ? f->master : f->app;
        sn_json_str(j, "master", ndpi_get_proto_name(c->mod, lower));
        if (f->master && f->app && f->master != f->app)
            sn_json_str(j, "app", ndpi_get_proto_name(c->mod, f->app));
        if (f->category != NDPI_PROTOCOL_CATEGORY_UNSPECIFIED)
            sn_json_str(j, "category",
                        ndpi_category_get_name(c->mod, (ndpi_protocol_category_t)f->category));
        if (f->guessed)
            sn_json_bool(j, "guessed", true);
    }
    sn_json_obj_end(j);
}
