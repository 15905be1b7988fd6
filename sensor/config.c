#define SN_LOG_MOD "config"
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

enum ktype { K_STR, K_UINT, K_BOOL, K_INPUT, K_IFACE, K_KV, K_FILE, K_ACTION };

struct key {
    const char *name; /* long option and file key */
    int shortopt;     /* 0 if none */
    enum ktype type;
    size_t off;
    const char *def; /* default as text (NULL: none) */
    unsigned min, max;
    const char *arg; /* argument name for --help */
    const char *help;
};

#define F(field) offsetof(struct sn_config, field)

/* Every option, once. Long options and config-file keys are these names. */
static const struct key keys[] = {
    {"read", 'r', K_INPUT, 0, NULL, 0, 0, "FILE",
     "read a pcap or pcapng file (repeatable, in order; - is stdin)"},
    {"output", 'o', K_STR, F(output), NULL, 0, 0, "FILE", "write NDJSON records to FILE (default stdout)"},
    {"config", 'c', K_FILE, 0, NULL, 0, 0, "FILE", "read `key = value` options from FILE"},
    {"interface", 'i', K_IFACE, 0, NULL, 0, 0, "IFACE",
     "capture live from IFACE (repeatable: all into one flow table)"},
    {"filter", 'f', K_STR, F(filter), NULL, 0, 0, "BPF", "BPF filter expression"},
    {"snaplen", 0, K_UINT, F(snaplen), "262144", 64, 262144, "N", "live capture snapshot length"},
    {"buffer-mb", 0, K_UINT, F(buffer_mb), "64", 1, 4096, "N", "live capture kernel buffer (MiB)"},
    {"no-promisc", 0, K_BOOL, F(no_promisc), "false", 0, 1, NULL, "do not put the interface in promiscuous mode"},
    {"pid-file", 0, K_STR, F(pid_file), NULL, 0, 0, "FILE", "write the process id to FILE"},
    {"user", 0, K_STR, F(user), NULL, 0, 0, "USER", "after opening the capture, run as USER"},
    {"metrics", 0, K_STR, F(metrics), NULL, 0, 0, "[ADDR:]PORT",
     "serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR default 127.0.0.1)"},
    {"stats", 0, K_BOOL, F(stats), "false", 0, 1, NULL, "print counters to stderr at exit"},
    {"sensor-id", 0, K_STR, F(sensor_id), NULL, 0, 0, "ID", "sensor id in every record (default: host name)"},
    {"log-level", 0, K_UINT, F(log_level), "1", 0, 3, "N", "0 error, 1 warn, 2 info, 3 debug"},
    {"flow-max", 0, K_UINT, F(flow_max), "262144", 16, 50000000, "N", "maximum flows tracked at once (preallocated)"},
    {"flow-idle-timeout", 0, K_UINT, F(flow_idle_timeout), "120", 1, 86400, "SECONDS", "end flows idle this long"},
    {"flow-active-timeout", 0, K_UINT, F(flow_active_timeout), "1800", 0, 604800, "SECONDS",
     "interim record for flows active this long (0: never)"},
    {"flow-vlan-key", 0, K_BOOL, F(flow_vlan_key), "true", 0, 1, NULL, "VLAN id is part of the flow key"},
    {"tls-reasm-cap", 0, K_UINT, F(tls_reasm_cap), "16384", 1024, 1048576, "BYTES",
     "TLS handshake bytes buffered per direction"},
    {"no-tls", 0, K_BOOL, F(no_tls), "false", 0, 1, NULL, "turn TLS parsing off (no tls object)"},
    {"tls-first-records", 0, K_UINT, F(tls_first_records), "8", 0, 64, "N", "sizes of the first N TLS records kept"},
    {"ndpi-max-pkts", 0, K_UINT, F(ndpi_max_pkts), "24", 1, 1000, "N", "packets per flow fed to nDPI at most"},
    {"no-ndpi", 0, K_BOOL, F(no_ndpi), "false", 0, 1, NULL, "turn nDPI classification off"},
    {"ndpi-protos", 0, K_STR, F(ndpi_protos), NULL, 0, 0, "FILE",
     "nDPI custom protocols file (default: ndpi-protos.txt in the rules directory)"},
    {"geo-city", 0, K_STR, F(geo_city), NULL, 0, 0, "FILE", "MaxMind/DB-IP City or Country database"},
    {"geo-asn", 0, K_STR, F(geo_asn), NULL, 0, 0, "FILE", "MaxMind/DB-IP ASN database"},
    {"geo-lookup-all", 0, K_BOOL, F(geo_lookup_all), "false", 0, 1, NULL,
     "look up private and documentation addresses too (test databases)"},
    {"rules", 0, K_STR, F(rules), NULL, 0, 0, "PATH", "service rules file or directory (default: shipped rules/)"},
    {"window", 0, K_UINT, F(window), "60", 1, 86400, "SECONDS", "fingerprint window length"},
    {"window-grace", 0, K_UINT, F(window_grace), "5", 0, 3600, "SECONDS", "wait this long past a window's end"},
    {"client-key", 0, K_STR, F(client_key), "ip", 0, 0, "MODE", "fingerprint client key: ip, prefix or ip+ja4"},
    {"client-prefix4", 0, K_UINT, F(client_prefix4), "24", 8, 32, "BITS", "IPv4 prefix for --client-key prefix"},
    {"client-prefix6", 0, K_UINT, F(client_prefix6), "56", 16, 128, "BITS", "IPv6 prefix for --client-key prefix"},
    {"agg-max-entries", 0, K_UINT, F(agg_max_entries), "65536", 16, 4194304, "N",
     "client x service entries per window before the overflow entry"},
    {"pseudonym-key", 0, K_STR, F(pseudonym_key), NULL, 0, 0, "FILE", "HMAC key file: pseudonymise client addresses"},
    {"pseudonym-prefix-preserving", 0, K_BOOL, F(pseudonym_prefix_preserving), "false", 0, 1, NULL,
     "pseudonyms keep shared prefixes (addresses in one /24 stay in one pseudonym /24)"},
    {"no-fingerprints", 0, K_BOOL, F(no_fingerprints), "false", 0, 1, NULL, "write flow records only"},
    {"no-flows", 0, K_BOOL, F(no_flows), "false", 0, 1, NULL, "write fingerprints only, no flow records"},
    {"brokers", 'b', K_STR, F(brokers), NULL, 0, 0, "HOST:PORT,...", "send records to Kafka"},
    {"topic-prefix", 0, K_STR, F(topic_prefix), "spanprint", 0, 0, "P", "Kafka topics P.flows, P.fingerprints and P.stats"},
    {"kafka", 'X', K_KV, 0, NULL, 0, 0, "KEY=VALUE", "librdkafka property (repeatable)"},
    {"spool-dir", 0, K_STR, F(spool_dir), "/var/spool/spanprint", 0, 0, "DIR", "Kafka spool directory"},
    {"spool-max-mb", 0, K_UINT, F(spool_max_mb), "1024", 1, 1048576, "N", "Kafka spool size cap (MiB)"},
    {"flush-timeout", 0, K_UINT, F(flush_timeout), "10", 0, 3600, "SECONDS", "Kafka flush wait at exit"},
    {"drain", 0, K_BOOL, F(drain), "false", 0, 1, NULL, "send what the Kafka spool holds, then exit"},
    {"workers", 0, K_UINT, F(workers), "1", 1, 64, "N", "worker threads"},
    {"dump-config", 0, K_ACTION, 0, NULL, 0, 0, NULL, "print every option with its effective value"},
    {"verbose", 'v', K_ACTION, 0, NULL, 0, 0, NULL, "more log output (repeatable)"},
    {"help", 'h', K_ACTION, 0, NULL, 0, 0, NULL, "show this help"},
    {"version", 'V', K_ACTION, 0, NULL, 0, 0, NULL, "show the version"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static bool set_mask[NKEYS]; /* keys given on the command line (start-up only) */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "spanprint: out of memory\n");
        exit(1);
    }
    return d;
}

static void set_str(struct sn_config *cfg, const struct key *k, const char *v)
{
    char **slot = (char **)((char *)cfg + k->off);
    free(*slot);
    *slot = xstrdup(v);
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Sets one key from text; `where` names it for messages: "--name" or "file:line: name". */
static int set_value(struct sn_config *cfg, const struct key *k, const char *v,
                     const char *where)
{
    switch (k->type) {
    case K_STR:
        if (!*v)
            return SN_ERR(SN_ECONFIG, "%s: empty value", where);
        set_str(cfg, k, v);
        return 0;
    case K_UINT: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (!isdigit((unsigned char)*v) || *end || errno)
            return SN_ERR(SN_ECONFIG, "%s: '%s' is not a whole number", where, v);
        if (n < k->min || n > k->max)
            return SN_ERR(SN_ECONFIG, "%s: %lu is out of range %u..%u", where, n, k->min,
                          k->max);
        *(unsigned *)((char *)cfg + k->off) = (unsigned)n;
        return 0;
    }
    case K_BOOL: {
        bool b;
        if (parse_bool(v, &b))
            return SN_ERR(SN_ECONFIG, "%s: '%s' is not true/false", where, v);
        *(bool *)((char *)cfg + k->off) = b;
        return 0;
    }
    case K_INPUT:
        if (cfg->n_inputs >= SN_CONFIG_MAX_INPUTS)
            return SN_ERR(SN_ECONFIG, "%s: more than %d inputs", where, SN_CONFIG_MAX_INPUTS);
        cfg->inputs[cfg->n_inputs++] = xstrdup(v);
        return 0;
    case K_IFACE:
        for (unsigned i = 0; i < cfg->n_ifaces; i++)
            if (strcmp(cfg->ifaces[i], v) == 0)
                return SN_ERR(SN_ECONFIG, "%s: interface '%s' given twice", where, v);
        if (cfg->n_ifaces >= SN_CONFIG_MAX_IFACES)
            return SN_ERR(SN_ECONFIG, "%s: more than %d interfaces", where, SN_CONFIG_MAX_IFACES);
        cfg->ifaces[cfg->n_ifaces++] = xstrdup(v);
        return 0;
    case K_KV: {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v)
            return SN_ERR(SN_ECONFIG, "%s: '%s' is not KEY=VALUE", where, v);
        if (cfg->n_kafka >= SN_CONFIG_MAX_KV)
            return SN_ERR(SN_ECONFIG, "%s: more than %d Kafka properties", where, SN_CONFIG_MAX_KV);
        struct sn_kv *kv = &cfg->kafka[cfg->n_kafka++];
        kv->key = strndup(v, (size_t)(eq - v));
        kv->val = xstrdup(eq + 1);
        kv->origin = xstrdup(where);
        return 0;
    }
    default:
        return SN_ERR(SN_ECONFIG, "%s: cannot be set here", where);
    }
}

static const struct key *find_key(const char *name)
{
    char norm[64];
    size_t n = strlen(name);
    if (n >= sizeof(norm))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '_' ? '-' : name[i];
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, norm) == 0)
            return &keys[i];
    return NULL;
}

void sn_config_init(struct sn_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].def) {
            int rc = set_value(cfg, &keys[i], keys[i].def, "default");
            (void)rc;
        }
    }
}

void sn_config_fini(struct sn_config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].type == K_STR)
            free(*(char **)((char *)cfg + keys[i].off));
    for (unsigned i = 0; i < cfg->n_inputs; i++)
        free(cfg->inputs[i]);
    for (unsigned i = 0; i < cfg->n_ifaces; i++)
        free(cfg->ifaces[i]);
    for (unsigned i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].val);
        free(cfg->kafka[i].origin);
    }
    memset(cfg, 0, sizeof(*cfg));
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int sn_config_load_file(struct sn_config *cfg, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return SN_ERR(SN_ECONFIG, "%s: %s", path, strerror(errno));
    char line[4096];
    unsigned lineno = 0;
    bool inputs_from_cli = cfg->n_inputs > 0;
    int rc = 0;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        char origin[600];
        snprintf(origin, sizeof(origin), "%s:%u", path, lineno);
        if (!strchr(line, '\n') && !feof(fp)) {
            rc = SN_ERR(SN_ECONFIG, "%s: line longer than %zu bytes", origin, sizeof(line) - 1);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = SN_ERR(SN_ECONFIG, "%s: expected `key = value`", origin);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') || (val[0] == '\'' && val[vl - 1] == '\''))) {
            val[vl - 1] = '\0';
            val++;
        }
        if (strncmp(key, "kafka.", 6) == 0) {
            char kv[4096];
            snprintf(kv, sizeof(kv), "%s=%s", key + 6, val);
            if ((rc = set_value(cfg, find_key("kafka"), kv, origin)))
                break;
            continue;
        }
        const struct key *k = find_key(key);
        char where[700];
        snprintf(where, sizeof(where), "%s: %s", origin, key);
        if (!k || k->type == K_ACTION || k->type == K_FILE) {
            rc = SN_ERR(SN_ECONFIG, "%s: unknown key '%s'", origin, key);
            break;
        }
        if (set_mask[k - keys])
            continue; /* the command line wins */
        if (k->type == K_INPUT && inputs_from_cli)
            continue;
        if ((rc = set_value(cfg, k, val, where)))
            break;
    }
    if (!rc && ferror(fp))
        rc = SN_ERR(SN_ECONFIG, "%s: read error", path);
    fclose(fp);
    return rc;
}

#ifndef SN_DATADIR
#define SN_DATADIR "/usr/local/share/spanprint"
#endif

const char *sn_config_default_rules(char *buf, size_t len)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, len, "%s/../rules", exe);
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                return buf;
        }
    }
    snprintf(buf, len, "%s/rules", SN_DATADIR);
    struct stat st;
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
        return buf;
    return NULL;
}

void sn_config_usage(FILE *out)
{
    fprintf(out,
            "Usage: spanprint -r FILE [-r FILE ...] [-o FILE] [options]\n"
            "       spanprint -i IFACE [options]\n"
            "Reconstructs flows and TLS metadata from packet captures and writes NDJSON\n"
            "flow and fingerprint records (or sends them to Kafka with -b).\n\nOptions:\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        char left[64];
        if (k->shortopt)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", k->shortopt, k->name, k->arg ? " " : "",
                     k->arg ? k->arg : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", k->name, k->arg ? " " : "",
                     k->arg ? k->arg : "");
        fprintf(out, "  %-34s %s", left, k->help);
        if (k->def && k->type != K_BOOL)
            fprintf(out, " [%s]", k->def);
        fputc('\n', out);
    }
    fprintf(out, "\nEvery long option is also a config-file key (`flow-max = 1000`); a file's\n"
                 "`kafka.KEY = VALUE` lines are librdkafka properties. Command-line options win.\n"
                 "Exit status: 0 success, 1 runtime error, 2 usage or configuration error.\n");
}

void sn_config_dump(const struct sn_config *cfg, FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        const char *p = (const char *)cfg + k->off;
        switch (k->type) {
        case K_STR: {
            const char *s = *(char *const *)p;
            fprintf(out, "%s = %s\n", k->name, s ? s : "");
            break;
        }
        case K_UINT: fprintf(out, "%s = %u\n", k->name, *(const unsigned *)p); break;
        case K_BOOL: fprintf(out, "%s = %s\n", k->name, *(const bool *)p ? "true" : "false"); break;
        case K_INPUT:
            for (unsigned j = 0; j < cfg->n_inputs; j++)
                fprintf(out, "%s = %s\n", k->name, cfg->inputs[j]);
            break;
        case K_IFACE:
            for (unsigned j = 0; j < cfg->n_ifaces; j++)
                fprintf(out, "%s = %s\n", k->name, cfg->ifaces[j]);
            break;
        case K_KV:
            for (unsigned j = 0; j < cfg->n_kafka; j++)
                fprintf(out, "kafka.%s = %s\n", cfg->kafka[j].key, cfg->kafka[j].val);
            break;
        default: break;
        }
    }
}

int sn_config_parse_args(struct sn_config *cfg, int argc, char **argv)
{
    struct option longopts[NKEYS + 1];
    char shortopts[3 * NKEYS + 2];
    size_t ns = 0;
    shortopts[ns++] = ':';
    for (size_t i = 0; i < NKEYS; i++) {
        bool has_arg = keys[i].type != K_BOOL && keys[i].type != K_ACTION;
        longopts[i] = (struct option){keys[i].name, has_arg ? required_argument : no_argument,
                                      NULL, (int)(1000 + i)};
        if (keys[i].shortopt) {
            shortopts[ns++] = (char)keys[i].shortopt;
            if (has_arg)
                shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = '\0';
    memset(&longopts[NKEYS], 0, sizeof(longopts[0]));
    memset(set_mask, 0, sizeof(set_mask));

    const char *config_file = NULL;
    bool want_help = false, want_version = false, want_dump = false;
    int verbose = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const struct key *k = NULL;
        if (c == '?') {
            if (optopt)
                return SN_ERR(SN_ECONFIG, "unknown option '-%c' (see --help)", optopt);
            return SN_ERR(SN_ECONFIG, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
        if (c == ':') {
            if (optopt && optopt < 256)
                return SN_ERR(SN_ECONFIG, "option '-%c' needs an argument", optopt);
            return SN_ERR(SN_ECONFIG, "option '%s' needs an argument", argv[optind - 1]);
        }
        if (c >= 1000)
            k = &keys[c - 1000];
        else
            for (size_t i = 0; i < NKEYS; i++)
                if (keys[i].shortopt == c)
                    k = &keys[i];
        if (!k)
            return SN_ERR(SN_ECONFIG, "unknown option (see --help)");
        set_mask[k - keys] = true;
        char origin[80];
        snprintf(origin, sizeof(origin), "--%s", k->name);
        if (k->type == K_KV)
            snprintf(origin, sizeof(origin), "-X");
        switch (k->type) {
        case K_ACTION:
            if (strcmp(k->name, "help") == 0)
                want_help = true;
            else if (strcmp(k->name, "version") == 0)
                want_version = true;
            else if (strcmp(k->name, "dump-config") == 0)
                want_dump = true;
            else if (strcmp(k->name, "verbose") == 0)
                verbose++;
            break;
        case K_FILE: config_file = optarg; break;
        case K_BOOL: *(bool *)((char *)cfg + k->off) = true; break;
        default: {
            int rc = set_value(cfg, k, optarg, origin);
            if (rc)
                return rc;
        }
        }
    }
    if (optind < argc)
        return SN_ERR(SN_ECONFIG, "unexpected argument '%s' (inputs are given with -r)",
                      argv[optind]);
    if (want_help) {
        sn_config_usage(stdout);
        return 1;
    }
    if (want_version) {
        printf("spanprint %s (%s)\n", SN_VERSION, SN_GITREV);
        return 1;
    }
    if (config_file) {
        int rc = sn_config_load_file(cfg, config_file);
        if (rc)
            return rc;
    }
    if (verbose) {
        unsigned lvl = cfg->log_level + (unsigned)verbose;
        cfg->log_level = lvl > 3 ? 3 : lvl;
    }
    if (strcmp(cfg->client_key, "ip") && strcmp(cfg->client_key, "prefix") &&
        strcmp(cfg->client_key, "ip+ja4"))
        return SN_ERR(SN_ECONFIG, "--client-key: '%s' is not ip, prefix or ip+ja4",
                      cfg->client_key);
    if (want_dump) {
        sn_config_dump(cfg, stdout);
        return 1;
    }
    if (!cfg->n_inputs && !cfg->n_ifaces && !cfg->drain)
        return SN_ERR(SN_ECONFIG, "no input: give -r FILE or -i IFACE (see --help)");
    if (cfg->n_inputs && cfg->n_ifaces)
        return SN_ERR(SN_ECONFIG, "-r and -i cannot be combined");
    if (cfg->drain && !cfg->brokers)
        return SN_ERR(SN_ECONFIG, "--drain needs --brokers (it sends the Kafka spool)");
    if (cfg->user && !cfg->n_ifaces)
        return SN_ERR(SN_ECONFIG, "--user applies to live capture (-i) only");
    return 0;
}
