#define SN_LOG_MOD "agg"
#include "agg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "pseudo.h"
#include "regdom.h"
#include "simhash.h"

#define CLIENT_MAX 112
#define SERVICE_MAX 256
#define SNI_MAX 256
#define JA4_MAX 40
#define JA3_MAX 36
#define ALPN_MAX 16
#define ASN_MAX 12
#define ORG_MAX 64
#define NWIN 2    /* with grace < window at most two windows are ever open */
#define PEND_SLOTS 2
#define PEND_RECS 8
#define PEND_EX 4
#define BINS SN_AGG_HIST_BINS
#define K SN_AGG_TOPK

/* Histograms, in output and SimHash order. */
enum { H_FLOW_BYTES_DOWN, H_FLOW_DUR, H_REC_UP, H_REC_DOWN, H_RESP_BYTES, H_RESP_RECORDS,
       H_TTFB, H_RESP_DUR, H_GAP, H_N };
static const char *const hist_names[H_N] = {
    "flow_bytes_down", "flow_duration_us", "record_bytes_up", "record_bytes_down",
    "response_bytes", "response_records", "ttfb_us", "response_duration_us", "gap_us",
};

enum svc_src { SRC_RULE, SRC_SNI, SRC_ASN, SRC_IP, SRC_OVERFLOW };
static const char *const svc_src_names[] = {"rule", "sni", "asn", "ip", "overflow"};

enum { M_NONE = 0, M_REC = 1, M_BURST = 2 };
enum { PH_IDLE, PH_REQ, PH_RESP };

/* The first K distinct values seen, counted exactly; later distinct values count in `other`.
 * Values live in a caller-provided [K][stride] char array. */
struct topk {
    uint32_t n[K];
    uint8_t used;
    uint64_t other;
};

struct ent {
    struct ent *next_free;
    uint64_t hash;
    char client[CLIENT_MAX];
    char service[SERVICE_MAX];
    uint8_t svc_src;
    bool overflow;
    char country[4];
    uint32_t client_asn;
    char client_asn_org[ORG_MAX];
    uint64_t flows_started, flows_ended, flows_active;
    uint64_t pkts[2], bytes[2], payload[2], recs[2], rec_bytes[2];
    uint64_t ex_n, ex_rec, ex_burst, req_bytes, resp_bytes, resp_records;
    uint64_t ttfb_sum, resp_dur_sum, unanswered;
    uint32_t hist[H_N][BINS];
    struct topk t_sni, t_ja4, t_ja3, t_alpn, t_asn;
    char v_sni[K][SNI_MAX], v_ja4[K][JA4_MAX], v_ja3[K][JA3_MAX], v_alpn[K][ALPN_MAX],
        v_asn[K][ASN_MAX];
};

struct win {
    bool open;
    int64_t start;
    uint64_t gen; /* unique per opened window: validates flows' entry caches */
    struct ent **tab;
    struct ent **list;
    unsigned n;
    struct ent *ovf;
    bool ovf_used;
};

struct pend_slot {
    bool used, started;
    int64_t ws;
    uint64_t pkts[2], bytes[2], payload[2], recs[2], rec_bytes[2];
};

struct pend_rec {
    uint32_t len;
    uint8_t dir, slot;
};

struct exch {
    int64_t ws; /* window of completion (pending only) */
    uint8_t method;
    bool has_gap;
    uint64_t req_bytes, resp_bytes;
    uint32_t resp_records;
    int64_t ttfb, dur, gap;
};

struct sn_agg_flow {
    struct sn_agg_flow *prev, *next; /* live list, insertion order */
    struct sn_agg_flow *next_free;
    bool settled, forced, records_mode, desynced;
    bool up_app_seen; /* a client application_data record was seen (records mode) */
    struct sn_addr client, server;
    uint16_t port;
    uint32_t server_asn, client_asn;
    bool has_label; /* service[] holds the rules label (before settle too) */
    char sni[SNI_MAX], ja4[JA4_MAX], ja3[JA3_MAX], alpn[ALPN_MAX];
    char country[4];
    char client_asn_org[ORG_MAX];
    char ckey[CLIENT_MAX];
    char service[SERVICE_MAX];
    uint8_t svc_src;
    int64_t start_ts, last_ts;
    uint64_t bytes_down;
    struct {
        uint64_t gen;
        struct ent *e;
    } cache[NWIN];
    /* not yet attributed (before settle) */
    struct pend_slot slot[PEND_SLOTS];
    struct pend_rec prec[PEND_RECS];
    uint8_t n_prec;
    struct exch pex[PEND_EX];
    uint8_t n_pex;
    /* exchange tracker */
    uint8_t ph;
    bool have_prev;
    int64_t req_start, req_last, resp_first, resp_last, prev_resp_end;
    uint64_t req_bytes, resp_bytes;
    uint32_t resp_records;
};

/* Pseudonyms cost up to 65 HMACs (prefix-preserving IPv6): remember recent ones. */
#define PCACHE_SIZE 1024
struct pcache {
    bool used;
    uint8_t bits;
    struct sn_addr addr;
    char id[64];
};

struct sn_agg {
    uint64_t hist_feat[H_N][BINS]; /* hash of the simhash feature "h:<name>:<bin>" */
    struct sn_agg_cfg cfg;
    struct pcache *pcache; /* PCACHE_SIZE entries, only with a pseudonymisation key */
    int64_t win_us, grace_us;
    char *sensor_id;
    struct sn_pseudo *pseudo;
    sn_agg_emit_fn emit;
    void *ctx;
    int64_t now;
    uint64_t gen;
    struct win w[NWIN];
    unsigned tab_size;
    struct ent *ent_free;
    unsigned ent_allocated, ent_limit;
    struct sn_agg_flow *flows_head, *flows_tail, *flow_free;
    unsigned flows_live, flows_allocated;
    struct sn_json j;
    struct ent **sortbuf;
    struct sn_agg_stats st;
};

/* ---------- small helpers ---------- */

static void scopy(char *dst, size_t cap, const char *src)
{
    if (!src) {
        dst[0] = '\0';
        return;
    }
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static unsigned bin_of(uint64_t v)
{
    if (v == 0)
        return 0;
    unsigned b = (unsigned)(64 - __builtin_clzll(v)); /* floor(log2 v) + 1 */
    return b > BINS - 1 ? BINS - 1 : b;
}

static uint64_t pos(int64_t v)
{
    return v < 0 ? 0 : (uint64_t)v;
}

static int64_t align_down(int64_t t, int64_t w)
{
    int64_t r = t % w;
    if (r < 0)
        r += w;
    return t - r;
}

static uint64_t ent_hash(const char *client, const char *service)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = client; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    for (const char *p = service; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static void topk_add(struct topk *t, char *vals, size_t stride, const char *v, uint32_t n)
{
    if (!v || !v[0])
        return;
    for (unsigned i = 0; i < t->used; i++)
        if (strncmp(vals + i * stride, v, stride - 1) == 0) {
            t->n[i] += n;
            return;
        }
    if (t->used < K) {
        scopy(vals + t->used * stride, stride, v);
        t->n[t->used++] = n;
        return;
    }
    t->other += n;
}

/* ---------- entries and windows ---------- */

static void ent_reset(struct ent *e)
{
    memset(e, 0, sizeof(*e));
}

static struct ent *ent_alloc(struct sn_agg *a)
{
    struct ent *e = a->ent_free;
    if (e) {
        a->ent_free = e->next_free;
    } else {
        if (a->ent_allocated >= a->ent_limit)
            return NULL;
        e = malloc(sizeof(*e));
        if (!e)
            return NULL;
        a->ent_allocated++;
    }
    ent_reset(e);
    return e;
}

static void ent_release(struct sn_agg *a, struct ent *e)
{
    e->next_free = a->ent_free;
    a->ent_free = e;
}

static struct win *win_find(struct sn_agg *a, int64_t ws)
{
    for (unsigned i = 0; i < NWIN; i++)
        if (a->w[i].open && a->w[i].start == ws)
            return &a->w[i];
    return NULL;
}

static struct ent *win_overflow(struct sn_agg *a, struct win *w)
{
    if (!w->ovf_used) {
        w->ovf_used = true;
        a->st.overflow_entries++;
    }
    return w->ovf;
}

/* The entry for (client, service) in w, created if the window has room, else overflow. */
static struct ent *win_entry(struct sn_agg *a, struct win *w, const struct sn_agg_flow *f)
{
    uint64_t h = ent_hash(f->ckey, f->service);
    unsigned mask = a->tab_size - 1, i = (unsigned)h & mask;
    for (;; i = (i + 1) & mask) {
        struct ent *e = w->tab[i];
        if (!e)
            break;
        if (e->hash == h && strcmp(e->client, f->ckey) == 0 && strcmp(e->service, f->service) == 0)
            return e;
    }
    if (w->n >= a->cfg.max_entries)
        return win_overflow(a, w);
    struct ent *e = ent_alloc(a);
    if (!e) {
        a->st.entry_alloc_fail++;
        return win_overflow(a, w);
    }
    e->hash = h;
    scopy(e->client, sizeof(e->client), f->ckey);
    scopy(e->service, sizeof(e->service), f->service);
    e->svc_src = f->svc_src;
    scopy(e->country, sizeof(e->country), f->country);
    e->client_asn = f->client_asn;
    scopy(e->client_asn_org, sizeof(e->client_asn_org), f->client_asn_org);
    w->tab[i] = e;
    w->list[w->n++] = e;
    return e;
}

static void close_win(struct sn_agg *a, struct win *w);

/* Closes windows whose end + grace is before now. */
void sn_agg_advance(struct sn_agg *a, int64_t now_us)
{
    if (now_us > a->now)
        a->now = now_us;
    for (;;) {
        struct win *oldest = NULL;
        for (unsigned i = 0; i < NWIN; i++)
            if (a->w[i].open && (!oldest || a->w[i].start < oldest->start))
                oldest = &a->w[i];
        if (!oldest || oldest->start + a->win_us + a->grace_us >= a->now)
            return;
        close_win(a, oldest);
    }
}

/* The open window a timestamp counts in (opened if needed). *late: the timestamp's own
 * window had closed, so the oldest window still open takes it. */
static struct win *win_for(struct sn_agg *a, int64_t ts, bool *late)
{
    sn_agg_advance(a, ts);
    int64_t ws = align_down(ts, a->win_us);
    *late = false;
    if (ws + a->win_us + a->grace_us < a->now) {
        *late = true;
        int64_t lo = a->now - a->win_us - a->grace_us; /* first start not closed: >= lo */
        ws = align_down(lo, a->win_us);
        if (ws < lo)
            ws += a->win_us;
    }
    struct win *w = win_find(a, ws);
    if (w)
        return w;
    struct win *slot = NULL;
    for (unsigned i = 0; i < NWIN; i++)
        if (!a->w[i].open) {
            slot = &a->w[i];
            break;
        }
    if (!slot) { /* cannot happen while grace < window; keep bounded anyway */
        struct win *oldest = &a->w[0];
        for (unsigned i = 1; i < NWIN; i++)
            if (a->w[i].start < oldest->start)
                oldest = &a->w[i];
        close_win(a, oldest);
        slot = oldest;
    }
    slot->open = true;
    slot->start = ws;
    slot->gen = ++a->gen;
    slot->n = 0;
    slot->ovf_used = false;
    ent_reset(slot->ovf);
    slot->ovf->overflow = true;
    slot->ovf->svc_src = SRC_OVERFLOW;
    strcpy(slot->ovf->client, "*");
    strcpy(slot->ovf->service, "*");
    return slot;
}

/* ---------- flows: key, settle, attribution ---------- */

static void client_key(struct sn_agg *a, struct sn_agg_flow *f)
{
    char ab[SN_ADDR_STRLEN];
    struct sn_addr addr = f->client;
    unsigned max = addr.family == 6 ? 128 : 32;
    unsigned bits = max;
    if (a->cfg.client_key == SN_CLIENT_PREFIX)
        bits = addr.family == 6 ? a->cfg.prefix6 : a->cfg.prefix4;
    if (bits > max)
        bits = max;
    char id[64];
    struct pcache *pc = NULL;
    if (a->pcache && (addr.family == 4 || addr.family == 6)) {
        uint64_t h = sn_simhash_hash64((const char *)addr.a, sizeof(addr.a)) + bits;
        pc = &a->pcache[h % PCACHE_SIZE];
        if (pc->used && pc->bits == bits && !sn_addr_cmp(&pc->addr, &addr)) {
            memcpy(id, pc->id, sizeof(id));
            goto have_id;
        }
    }
    if (addr.family != 4 && addr.family != 6) {
        strcpy(id, "-");
    } else if (a->pseudo && !a->cfg.pseudo_prefix_preserving) {
        char hx[SN_PSEUDO_HEXLEN + 1];
        sn_pseudo_hmac(a->pseudo, &addr, bits, hx);
        snprintf(id, sizeof(id), "p:%s", hx);
    } else {
        if (a->pseudo) {
            struct sn_addr p;
            sn_pseudo_prefix(a->pseudo, &addr, &p);
            addr = p;
        }
        struct sn_addr m = addr;
        sn_addr_mask(&m, bits);
        snprintf(id, sizeof(id), "%s", sn_addr_str(&m, ab, sizeof(ab)));
    }
    if (pc) {
        pc->used = true;
        pc->bits = (uint8_t)bits;
        pc->addr = f->client;
        memcpy(pc->id, id, sizeof(id));
    }
have_id:
    if (bits < max)
        snprintf(f->ckey, sizeof(f->ckey), "%s/%u", id, bits);
    else if (a->cfg.client_key == SN_CLIENT_IP_JA4)
        snprintf(f->ckey, sizeof(f->ckey), "%s|%s", id, f->ja4[0] ? f->ja4 : "-");
    else
        snprintf(f->ckey, sizeof(f->ckey), "%s", id);
}

static void service_key(struct sn_agg_flow *f)
{
    char ab[SN_ADDR_STRLEN];
    if (f->has_label) {
        f->svc_src = SRC_RULE;
    } else if (f->sni[0]) {
        sn_regdom_get(f->sni, strlen(f->sni), f->service, sizeof(f->service));
        f->svc_src = SRC_SNI;
    } else if (f->server_asn) {
        snprintf(f->service, sizeof(f->service), "AS%u", f->server_asn);
        f->svc_src = SRC_ASN;
    } else {
        snprintf(f->service, sizeof(f->service), "%s", sn_addr_str(&f->server, ab, sizeof(ab)));
        f->svc_src = SRC_IP;
    }
}

/* The flow's entry in window w; the first lookup per window counts the flow active there
 * and adds its categorical values. */
static struct ent *flow_entry(struct sn_agg *a, struct sn_agg_flow *f, struct win *w)
{
    unsigned victim = 0;
    for (unsigned i = 0; i < NWIN; i++) {
        if (f->cache[i].gen == w->gen)
            return f->cache[i].e;
        if (f->cache[i].gen < f->cache[victim].gen)
            victim = i;
    }
    struct ent *e = win_entry(a, w, f);
    f->cache[victim].gen = w->gen;
    f->cache[victim].e = e;
    e->flows_active++;
    topk_add(&e->t_sni, e->v_sni[0], SNI_MAX, f->sni, 1);
    topk_add(&e->t_ja4, e->v_ja4[0], JA4_MAX, f->ja4, 1);
    topk_add(&e->t_ja3, e->v_ja3[0], JA3_MAX, f->ja3, 1);
    topk_add(&e->t_alpn, e->v_alpn[0], ALPN_MAX, f->alpn, 1);
    if (f->server_asn) {
        char s[ASN_MAX];
        snprintf(s, sizeof(s), "%u", f->server_asn);
        topk_add(&e->t_asn, e->v_asn[0], ASN_MAX, s, 1);
    }
    return e;
}

static void ent_traffic(struct sn_agg *a, struct ent *e, int dir, uint64_t pkts, uint64_t bytes,
                        uint64_t payload)
{
    e->pkts[dir] += pkts;
    e->bytes[dir] += bytes;
    e->payload[dir] += payload;
    if (e->overflow) {
        a->st.overflow_pkts += pkts;
        a->st.overflow_bytes += bytes;
    }
}

static void ent_exchange(struct ent *e, const struct exch *x)
{
    e->ex_n++;
    e->req_bytes += x->req_bytes;
    e->resp_bytes += x->resp_bytes;
    e->ttfb_sum += pos(x->ttfb);
    e->resp_dur_sum += pos(x->dur);
    e->hist[H_RESP_BYTES][bin_of(x->resp_bytes)]++;
    e->hist[H_TTFB][bin_of(pos(x->ttfb))]++;
    e->hist[H_RESP_DUR][bin_of(pos(x->dur))]++;
    if (x->has_gap)
        e->hist[H_GAP][bin_of(pos(x->gap))]++;
    if (x->method == M_REC) {
        e->ex_rec++;
        e->resp_records += x->resp_records;
        e->hist[H_RESP_RECORDS][bin_of(x->resp_records)]++;
    } else {
        e->ex_burst++;
    }
}

static struct win *pend_window(struct sn_agg *a, int64_t ws)
{
    struct win *w = win_find(a, ws);
    if (!w) { /* not reached: windows with pending data force a settle before closing */
        bool late;
        w = win_for(a, ws, &late);
    }
    return w;
}

/* Fixes the key from what the flow knows and moves pending counts into entries. */
static void do_settle(struct sn_agg *a, struct sn_agg_flow *f)
{
    f->settled = true;
    client_key(a, f);
    service_key(f);
    for (unsigned s = 0; s < PEND_SLOTS; s++) {
        struct pend_slot *p = &f->slot[s];
        if (!p->used)
            continue;
        struct ent *e = flow_entry(a, f, pend_window(a, p->ws));
        if (p->started)
            e->flows_started++;
        for (int d = 0; d < 2; d++) {
            ent_traffic(a, e, d, p->pkts[d], p->bytes[d], p->payload[d]);
            e->recs[d] += p->recs[d];
            e->rec_bytes[d] += p->rec_bytes[d];
        }
    }
    for (unsigned i = 0; i < f->n_prec; i++) {
        const struct pend_rec *r = &f->prec[i];
        struct ent *e = flow_entry(a, f, pend_window(a, f->slot[r->slot].ws));
        e->hist[r->dir ? H_REC_DOWN : H_REC_UP][bin_of(r->len)]++;
    }
    for (unsigned i = 0; i < f->n_pex; i++)
        ent_exchange(flow_entry(a, f, pend_window(a, f->pex[i].ws)), &f->pex[i]);
    memset(f->slot, 0, sizeof(f->slot));
    f->n_prec = 0;
    f->n_pex = 0;
}

static void force_settle(struct sn_agg *a, struct sn_agg_flow *f)
{
    a->st.forced_settles++;
    f->forced = true;
    do_settle(a, f);
}

static struct pend_slot *pend_slot(struct sn_agg_flow *f, int64_t ws, unsigned *idx)
{
    for (unsigned i = 0; i < PEND_SLOTS; i++)
        if (f->slot[i].used && f->slot[i].ws == ws) {
            *idx = i;
            return &f->slot[i];
        }
    for (unsigned i = 0; i < PEND_SLOTS; i++)
        if (!f->slot[i].used) {
            memset(&f->slot[i], 0, sizeof(f->slot[i]));
            f->slot[i].used = true;
            f->slot[i].ws = ws;
            *idx = i;
            return &f->slot[i];
        }
    return NULL;
}

static void add_exchange(struct sn_agg *a, struct sn_agg_flow *f, struct win *w,
                         const struct exch *x)
{
    if (!f->settled) {
        if (f->n_pex < PEND_EX) {
            f->pex[f->n_pex] = *x;
            f->pex[f->n_pex++].ws = w->start;
            return;
        }
        force_settle(a, f);
    }
    ent_exchange(flow_entry(a, f, w), x);
}

/* Completes the exchange in progress (a response was seen) in window w. */
static void exch_complete(struct sn_agg *a, struct sn_agg_flow *f, struct win *w)
{
    struct exch x;
    memset(&x, 0, sizeof(x));
    x.method = f->records_mode ? M_REC : M_BURST;
    x.req_bytes = f->req_bytes;
    x.resp_bytes = f->resp_bytes;
    x.resp_records = f->resp_records;
    x.ttfb = f->resp_first - f->req_last;
    x.dur = f->resp_last - f->resp_first;
    x.has_gap = f->have_prev;
    x.gap = f->req_start - f->prev_resp_end;
    f->have_prev = true;
    f->prev_resp_end = f->resp_last;
    f->ph = PH_IDLE;
    add_exchange(a, f, w, &x);
}

static void exch_data(struct sn_agg *a, struct sn_agg_flow *f, struct win *w, int dir,
                      uint32_t bytes, uint32_t recs, int64_t ts)
{
    if (dir == 0) {
        if (f->ph == PH_RESP) {
            if (bytes < SN_AGG_CTRL_MAX)
                return; /* flow-control frame inside a response */
            exch_complete(a, f, w);
        }
        if (f->ph == PH_IDLE) {
            f->ph = PH_REQ;
            f->req_start = ts;
            f->req_bytes = 0;
        }
        f->req_bytes += bytes;
        f->req_last = ts;
        return;
    }
    if (f->ph == PH_IDLE)
        return; /* server speaks first: no request to answer */
    if (f->ph == PH_REQ) {
        f->ph = PH_RESP;
        f->resp_first = ts;
        f->resp_bytes = 0;
        f->resp_records = 0;
    }
    f->resp_bytes += bytes;
    f->resp_records += recs;
    f->resp_last = ts;
}

static void exch_reset(struct sn_agg_flow *f)
{
    f->ph = PH_IDLE;
    f->have_prev = false;
}

/* ---------- public API ---------- */

struct sn_agg *sn_agg_new(const struct sn_agg_cfg *cfg, sn_agg_emit_fn emit, void *ctx)
{
    struct sn_agg *a = calloc(1, sizeof(*a));
    if (!a)
        goto fail;
    a->cfg = *cfg;
    for (unsigned h = 0; h < H_N; h++)
        for (unsigned b = 0; b < BINS; b++) {
            char feat[64];
            int n = snprintf(feat, sizeof(feat), "h:%s:%u", hist_names[h], b);
            a->hist_feat[h][b] = sn_simhash_hash64(feat, (size_t)n);
        }
    if (!a->cfg.window_s)
        a->cfg.window_s = SN_AGG_DEFAULT_WINDOW_S;
    if (a->cfg.grace_s >= a->cfg.window_s)
        a->cfg.grace_s = a->cfg.window_s - 1;
    if (!a->cfg.max_entries)
        a->cfg.max_entries = SN_AGG_DEFAULT_MAX_ENTRIES;
    if (a->cfg.max_entries > SN_AGG_MAX_ENTRIES_LIMIT)
        a->cfg.max_entries = SN_AGG_MAX_ENTRIES_LIMIT;
    if (!a->cfg.max_flows)
        a->cfg.max_flows = SN_AGG_DEFAULT_MAX_FLOWS;
    if (!a->cfg.prefix4)
        a->cfg.prefix4 = SN_AGG_DEFAULT_PREFIX4;
    if (!a->cfg.prefix6)
        a->cfg.prefix6 = SN_AGG_DEFAULT_PREFIX6;
    a->cfg.sensor_id = NULL;
    a->cfg.pseudo_key = NULL;
    a->win_us = (int64_t)a->cfg.window_s * 1000000;
    a->grace_us = (int64_t)a->cfg.grace_s * 1000000;
    a->emit = emit;
    a->ctx = ctx;
    a->now = INT64_MIN;
    a->ent_limit = NWIN * a->cfg.max_entries;
    sn_json_init(&a->j);
    if (cfg->sensor_id && !(a->sensor_id = strdup(cfg->sensor_id)))
        goto fail;
    if (cfg->pseudo_key && cfg->pseudo_key_len) {
        if (!(a->pseudo = sn_pseudo_new(cfg->pseudo_key, cfg->pseudo_key_len)))
            goto fail;
        if (!(a->pcache = calloc(PCACHE_SIZE, sizeof(*a->pcache))))
            goto fail;
    }
    a->tab_size = 16;
    while (a->tab_size < 2 * a->cfg.max_entries)
        a->tab_size <<= 1;
    for (unsigned i = 0; i < NWIN; i++) {
        a->w[i].tab = calloc(a->tab_size, sizeof(*a->w[i].tab));
        a->w[i].list = calloc(a->cfg.max_entries, sizeof(*a->w[i].list));
        a->w[i].ovf = malloc(sizeof(*a->w[i].ovf));
        if (!a->w[i].tab || !a->w[i].list || !a->w[i].ovf)
            goto fail;
    }
    a->sortbuf = calloc(a->cfg.max_entries, sizeof(*a->sortbuf));
    if (!a->sortbuf)
        goto fail;
    return a;
fail:
    SN_ERR(ENOMEM, "aggregator (%u entries per window)", cfg->max_entries);
    sn_agg_free(a);
    return NULL;
}

void sn_agg_free(struct sn_agg *a)
{
    if (!a)
        return;
    for (unsigned i = 0; i < NWIN; i++) {
        for (unsigned k = 0; a->w[i].open && k < a->w[i].n; k++)
            free(a->w[i].list[k]);
        free(a->w[i].tab);
        free(a->w[i].list);
        free(a->w[i].ovf);
    }
    while (a->ent_free) {
        struct ent *e = a->ent_free;
        a->ent_free = e->next_free;
        free(e);
    }
    while (a->flows_head) {
        struct sn_agg_flow *f = a->flows_head;
        a->flows_head = f->next;
        free(f);
    }
    while (a->flow_free) {
        struct sn_agg_flow *f = a->flow_free;
        a->flow_free = f->next_free;
        free(f);
    }
    free(a->sortbuf);
    free(a->sensor_id);
    if (a->pcache) {
        memset(a->pcache, 0, PCACHE_SIZE * sizeof(*a->pcache));
        free(a->pcache);
    }
    sn_pseudo_free(a->pseudo);
    sn_json_fini(&a->j);
    free(a);
}

const struct sn_agg_stats *sn_agg_stats(const struct sn_agg *a)
{
    return &a->st;
}

static void take_info(struct sn_agg_flow *f, const struct sn_agg_flowinfo *fi, bool keyfields)
{
    if (keyfields) {
        if (fi->service && fi->service[0]) {
            scopy(f->service, sizeof(f->service), fi->service);
            f->has_label = true;
        }
        if (fi->server_asn)
            f->server_asn = fi->server_asn;
        if (fi->client_country && fi->client_country[0])
            scopy(f->country, sizeof(f->country), fi->client_country);
        if (fi->client_asn)
            f->client_asn = fi->client_asn;
        if (fi->client_asn_org && fi->client_asn_org[0])
            scopy(f->client_asn_org, sizeof(f->client_asn_org), fi->client_asn_org);
    }
    if (fi->sni && fi->sni[0])
        scopy(f->sni, sizeof(f->sni), fi->sni);
    if (fi->ja4 && fi->ja4[0])
        scopy(f->ja4, sizeof(f->ja4), fi->ja4);
    if (fi->ja3 && fi->ja3[0])
        scopy(f->ja3, sizeof(f->ja3), fi->ja3);
    if (fi->alpn && fi->alpn[0])
        scopy(f->alpn, sizeof(f->alpn), fi->alpn);
}

struct sn_agg_flow *sn_agg_flow_start(struct sn_agg *a, const struct sn_agg_flowinfo *fi,
                                      int64_t ts_us)
{
    bool late;
    struct win *w = win_for(a, ts_us, &late);
    struct sn_agg_flow *f = NULL;
    if (a->flows_live < a->cfg.max_flows) {
        f = a->flow_free;
        if (f)
            a->flow_free = f->next_free;
        else if ((f = malloc(sizeof(*f))))
            a->flows_allocated++;
    }
    if (!f) {
        a->st.flows_pool_full++;
        win_overflow(a, w)->flows_started++;
        return NULL;
    }
    memset(f, 0, sizeof(*f));
    a->flows_live++;
    a->st.flows_started++;
    f->prev = a->flows_tail;
    if (a->flows_tail)
        a->flows_tail->next = f;
    else
        a->flows_head = f;
    a->flows_tail = f;
    f->client = fi->client;
    f->server = fi->server;
    f->port = fi->server_port;
    take_info(f, fi, true);
    f->start_ts = f->last_ts = ts_us;
    unsigned idx;
    struct pend_slot *p = pend_slot(f, w->start, &idx);
    p->started = true; /* a fresh flow always has a free slot */
    return f;
}

void sn_agg_flow_settle(struct sn_agg *a, struct sn_agg_flow *f, const struct sn_agg_flowinfo *fi)
{
    if (!f)
        return;
    if (f->settled) {
        if (f->forced)
            a->st.late_settles++;
        take_info(f, fi, false);
        return;
    }
    take_info(f, fi, true);
    do_settle(a, f);
}

void sn_agg_packet(struct sn_agg *a, struct sn_agg_flow *f, int dir, uint32_t ip_bytes,
                   uint32_t payload, int64_t ts_us)
{
    bool late;
    dir = dir ? 1 : 0;
    struct win *w = win_for(a, ts_us, &late);
    if (late)
        a->st.late_pkts++;
    if (!f) {
        ent_traffic(a, win_overflow(a, w), dir, 1, ip_bytes, payload);
        return;
    }
    if (ts_us > f->last_ts)
        f->last_ts = ts_us;
    if (dir)
        f->bytes_down += ip_bytes;
    if (!f->settled) {
        unsigned idx;
        struct pend_slot *p = pend_slot(f, w->start, &idx);
        if (p) {
            p->pkts[dir]++;
            p->bytes[dir] += ip_bytes;
            p->payload[dir] += payload;
        } else {
            force_settle(a, f);
        }
    }
    if (f->settled)
        ent_traffic(a, flow_entry(a, f, w), dir, 1, ip_bytes, payload);
    if (!f->records_mode && payload > 0)
        exch_data(a, f, w, dir, payload, 0, ts_us);
}

void sn_agg_record(struct sn_agg *a, struct sn_agg_flow *f, int dir, uint8_t content_type,
                   uint32_t len, int64_t ts_us, bool synced)
{
    bool late;
    dir = dir ? 1 : 0;
    if (f && synced && !f->records_mode && !f->desynced) {
        f->records_mode = true; /* discard the burst state built from handshake packets */
        exch_reset(f);
    }
    if (content_type != 23)
        return;
    struct win *w = win_for(a, ts_us, &late);
    if (!f) {
        struct ent *e = win_overflow(a, w);
        e->recs[dir]++;
        e->rec_bytes[dir] += len;
        e->hist[dir ? H_REC_DOWN : H_REC_UP][bin_of(len)]++;
        return;
    }
    if (!f->settled) {
        unsigned idx;
        struct pend_slot *p = pend_slot(f, w->start, &idx);
        if (p && f->n_prec < PEND_RECS) {
            p->recs[dir]++;
            p->rec_bytes[dir] += len;
            f->prec[f->n_prec].len = len;
            f->prec[f->n_prec].dir = (uint8_t)dir;
            f->prec[f->n_prec++].slot = (uint8_t)idx;
        } else {
            force_settle(a, f);
        }
    }
    if (f->settled) {
        struct ent *e = flow_entry(a, f, w);
        e->recs[dir]++;
        e->rec_bytes[dir] += len;
        e->hist[dir ? H_REC_DOWN : H_REC_UP][bin_of(len)]++;
    }
    if (f->records_mode && synced) {
        /* TLS 1.3 encrypts the client's Finished as application data: a first client record of
         * exactly 53 or 69 bytes (Finished with SHA-256/SHA-384, AEAD tag 16) is taken as that
         * and does not start a request; the server's tickets after it then find no request. */
        if (dir == 0 && !f->up_app_seen && (len == 53 || len == 69)) {
            f->up_app_seen = true;
            return;
        }
        if (dir == 0)
            f->up_app_seen = true;
        exch_data(a, f, w, dir, len, 1, ts_us);
    }
}

void sn_agg_desync(struct sn_agg *a, struct sn_agg_flow *f)
{
    if (!f || f->desynced)
        return;
    f->desynced = true;
    if (f->records_mode && f->ph == PH_RESP) { /* the answer so far was seen in records */
        bool late;
        exch_complete(a, f, win_for(a, f->last_ts, &late));
    }
    f->records_mode = false;
    f->ph = PH_IDLE;
}

void sn_agg_flow_end(struct sn_agg *a, struct sn_agg_flow *f, int64_t ts_us)
{
    bool late;
    struct win *w = win_for(a, ts_us, &late);
    if (!f) {
        win_overflow(a, w)->flows_ended++;
        return;
    }
    if (!f->settled)
        force_settle(a, f);
    if (f->ph == PH_RESP)
        exch_complete(a, f, w);
    struct ent *e = flow_entry(a, f, w);
    if (f->ph == PH_REQ)
        e->unanswered++;
    e->flows_ended++;
    e->hist[H_FLOW_BYTES_DOWN][bin_of(f->bytes_down)]++;
    e->hist[H_FLOW_DUR][bin_of(pos(f->last_ts - f->start_ts))]++;
    a->st.flows_ended++;
    if (f->prev)
        f->prev->next = f->next;
    else
        a->flows_head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        a->flows_tail = f->prev;
    a->flows_live--;
    f->next_free = a->flow_free;
    a->flow_free = f;
}

void sn_agg_finish(struct sn_agg *a)
{
    while (a->flows_head)
        sn_agg_flow_end(a, a->flows_head, a->flows_head->last_ts);
    for (;;) {
        struct win *oldest = NULL;
        for (unsigned i = 0; i < NWIN; i++)
            if (a->w[i].open && (!oldest || a->w[i].start < oldest->start))
                oldest = &a->w[i];
        if (!oldest)
            break;
        close_win(a, oldest);
    }
    a->now = INT64_MIN;
}

int sn_agg_parse_client_key(const char *s, enum sn_client_key *out)
{
    if (!strcmp(s, "ip"))
        *out = SN_CLIENT_IP;
    else if (!strcmp(s, "prefix"))
        *out = SN_CLIENT_PREFIX;
    else if (!strcmp(s, "ip+ja4"))
        *out = SN_CLIENT_IP_JA4;
    else
        return SN_ERR(SN_ECONFIG, "client key '%s': expected ip, prefix or ip+ja4", s);
    return 0;
}

int sn_agg_parse_simhash(const char *hex, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return -SN_EPROTO;
        v = v << 4 | d;
    }
    if (hex[16] != '\0')
        return -SN_EPROTO;
    *out = v;
    return 0;
}

/* ---------- emission ---------- */

/* round(1000 * c / total), half up, in integers so any consumer gets the same weight. */
static int64_t share_w(uint64_t c, uint64_t total)
{
    return (int64_t)((2000 * c + total) / (2 * total));
}

static void sim_topk(struct sn_simhash *s, const char *prefix, const struct topk *t,
                     const char *vals, size_t stride)
{
    uint64_t total = t->other;
    for (unsigned i = 0; i < t->used; i++)
        total += t->n[i];
    char buf[SNI_MAX + 16];
    for (unsigned i = 0; i < t->used; i++) {
        int n = snprintf(buf, sizeof(buf), "%s:%s", prefix, vals + i * stride);
        sn_simhash_add(s, buf, (size_t)n, share_w(t->n[i], total));
    }
}

static int ratio_bin(const struct ent *e)
{
    uint64_t u = e->bytes[0], d = e->bytes[1];
    uint64_t hi = d >= u ? d : u, lo = d >= u ? u : d;
    uint64_t q = (hi + 1) / (lo + 1);
    int b = 63 - __builtin_clzll(q); /* q >= 1 */
    return d >= u ? b : -b;
}

static uint64_t ent_simhash(const struct sn_agg *a, const struct ent *e)
{
    struct sn_simhash s;
    sn_simhash_init(&s);
    char buf[SERVICE_MAX + 32];
    for (unsigned h = 0; h < H_N; h++) {
        uint64_t total = 0;
        for (unsigned b = 0; b < BINS; b++)
            total += e->hist[h][b];
        if (!total)
            continue;
        /* Smoothed with the kernel [1 2 1] / 4 so that values close to a bin edge count
         * partly in the neighbouring bins: two clients whose values straddle an edge still
         * share features. */
        for (unsigned b = 0; b < BINS; b++) {
            uint64_t sm = 2 * (uint64_t)e->hist[h][b];
            if (b > 0)
                sm += e->hist[h][b - 1];
            if (b + 1 < BINS)
                sm += e->hist[h][b + 1];
            if (!sm)
                continue;
            sn_simhash_add_hash(&s, a->hist_feat[h][b], share_w(sm, 4 * total));
        }
    }
    if (e->bytes[0] + e->bytes[1]) {
        int n = snprintf(buf, sizeof(buf), "ratio:%+d", ratio_bin(e));
        sn_simhash_add(&s, buf, (size_t)n, 1000);
    }
    sim_topk(&s, "ja4", &e->t_ja4, e->v_ja4[0], JA4_MAX);
    sim_topk(&s, "alpn", &e->t_alpn, e->v_alpn[0], ALPN_MAX);
    int n = snprintf(buf, sizeof(buf), "service:%s", e->service);
    sn_simhash_add(&s, buf, (size_t)n, 500);
    return sn_simhash_final(&s);
}

static int topk_cmp_idx(const struct topk *t, const char *vals, size_t stride, unsigned x,
                        unsigned y)
{
    if (t->n[x] != t->n[y])
        return t->n[x] > t->n[y] ? -1 : 1;
    return strcmp(vals + x * stride, vals + y * stride);
}

/* Writes [{"v": value, "n": count}, ...] sorted by count desc, then value. */
static void json_topk(struct sn_json *j, const char *key, const struct topk *t,
                      const char *vals, size_t stride, bool asn)
{
    unsigned ord[K];
    for (unsigned i = 0; i < t->used; i++)
        ord[i] = i;
    for (unsigned i = 1; i < t->used; i++) /* insertion sort: K is tiny */
        for (unsigned k = i; k > 0 && topk_cmp_idx(t, vals, stride, ord[k], ord[k - 1]) < 0;
             k--) {
            unsigned tmp = ord[k];
            ord[k] = ord[k - 1];
            ord[k - 1] = tmp;
        }
    sn_json_arr_begin(j, key);
    for (unsigned i = 0; i < t->used; i++) {
        sn_json_obj_begin(j, NULL);
        if (asn)
            sn_json_u64(j, "v", strtoull(vals + ord[i] * stride, NULL, 10));
        else
            sn_json_str(j, "v", vals + ord[i] * stride);
        sn_json_u64(j, "n", t->n[ord[i]]);
        sn_json_obj_end(j);
    }
    sn_json_arr_end(j);
}

static void json_dir(struct sn_json *j, const char *key, const struct ent *e, int d)
{
    sn_json_obj_begin(j, key);
    sn_json_u64(j, "pkts", e->pkts[d]);
    sn_json_u64(j, "bytes", e->bytes[d]);
    sn_json_u64(j, "payload", e->payload[d]);
    sn_json_u64(j, "tls_records", e->recs[d]);
    sn_json_u64(j, "tls_bytes", e->rec_bytes[d]);
    sn_json_obj_end(j);
}

static const char *client_key_name(enum sn_client_key k)
{
    return k == SN_CLIENT_PREFIX ? "prefix" : k == SN_CLIENT_IP_JA4 ? "ip+ja4" : "ip";
}

static void emit_ent(struct sn_agg *a, const struct win *w, const struct ent *e)
{
    struct sn_json *j = &a->j;
    sn_json_reset(j);
    sn_json_obj_begin(j, NULL);
    sn_json_str(j, "type", "fingerprint");
    sn_json_u64(j, "schema", SN_AGG_SCHEMA);
    if (a->cfg.seq)
        sn_json_u64(j, "seq", ++*a->cfg.seq);
    if (a->sensor_id)
        sn_json_str(j, "sensor", a->sensor_id);
    if (a->cfg.run_id)
        sn_json_i64(j, "run", a->cfg.run_id);
    sn_json_obj_begin(j, "window");
    sn_json_ts(j, "start", w->start);
    sn_json_ts(j, "end", w->start + a->win_us);
    sn_json_u64(j, "duration_s", a->cfg.window_s);
    sn_json_obj_end(j);

    sn_json_obj_begin(j, "client");
    sn_json_str(j, "id", e->client);
    sn_json_str(j, "key", e->overflow ? "overflow" : client_key_name(a->cfg.client_key));
    sn_json_bool(j, "pseudonymised", a->pseudo != NULL);
    if (e->country[0])
        sn_json_str(j, "country", e->country);
    if (e->client_asn)
        sn_json_u64(j, "asn", e->client_asn);
    if (e->client_asn_org[0])
        sn_json_str(j, "asn_org", e->client_asn_org);
    sn_json_obj_end(j);

    sn_json_obj_begin(j, "service");
    sn_json_str(j, "name", e->service);
    sn_json_str(j, "source", svc_src_names[e->svc_src]);
    json_topk(j, "snis", &e->t_sni, e->v_sni[0], SNI_MAX, false);
    sn_json_u64(j, "snis_other", e->t_sni.other);
    json_topk(j, "asns", &e->t_asn, e->v_asn[0], ASN_MAX, true);
    sn_json_obj_end(j);

    sn_json_bool(j, "overflow", e->overflow);
    sn_json_obj_begin(j, "flows");
    sn_json_u64(j, "started", e->flows_started);
    sn_json_u64(j, "ended", e->flows_ended);
    sn_json_u64(j, "active", e->flows_active);
    sn_json_obj_end(j);
    json_dir(j, "up", e, 0);
    json_dir(j, "down", e, 1);
    if (e->bytes[0])
        sn_json_dbl(j, "ratio_down_up", (double)e->bytes[1] / (double)e->bytes[0], 3);
    else
        sn_json_null(j, "ratio_down_up");

    sn_json_obj_begin(j, "exchanges");
    sn_json_u64(j, "n", e->ex_n);
    sn_json_str(j, "method", e->ex_rec && e->ex_burst ? "mixed"
                             : e->ex_rec              ? "records"
                             : e->ex_burst            ? "bursts"
                                                      : "none");
    sn_json_u64(j, "n_records", e->ex_rec);
    sn_json_u64(j, "n_bursts", e->ex_burst);
    sn_json_u64(j, "request_bytes", e->req_bytes);
    sn_json_u64(j, "response_bytes", e->resp_bytes);
    sn_json_u64(j, "response_records", e->resp_records);
    sn_json_u64(j, "ttfb_us_sum", e->ttfb_sum);
    sn_json_u64(j, "response_duration_us_sum", e->resp_dur_sum);
    sn_json_u64(j, "unanswered", e->unanswered);
    sn_json_obj_end(j);

    sn_json_obj_begin(j, "hist");
    for (unsigned h = 0; h < H_N; h++) {
        unsigned last = 0;
        for (unsigned b = 0; b < BINS; b++)
            if (e->hist[h][b])
                last = b + 1;
        sn_json_arr_begin(j, hist_names[h]);
        for (unsigned b = 0; b < last; b++)
            sn_json_u64(j, NULL, e->hist[h][b]);
        sn_json_arr_end(j);
    }
    sn_json_obj_end(j);

    json_topk(j, "ja4", &e->t_ja4, e->v_ja4[0], JA4_MAX, false);
    sn_json_u64(j, "ja4_other", e->t_ja4.other);
    json_topk(j, "ja3", &e->t_ja3, e->v_ja3[0], JA3_MAX, false);
    sn_json_u64(j, "ja3_other", e->t_ja3.other);
    json_topk(j, "alpn", &e->t_alpn, e->v_alpn[0], ALPN_MAX, false);
    sn_json_u64(j, "alpn_other", e->t_alpn.other);

    uint64_t sh = ent_simhash(a, e);
    char hx[17];
    snprintf(hx, sizeof(hx), "%016llx", (unsigned long long)sh);
    sn_json_str(j, "simhash", hx);
    sn_json_obj_end(j);
    sn_json_nl(j);
    if (!sn_json_ok(j))
        return;
    a->st.fingerprints++;
    if (a->emit)
        a->emit(a->ctx, e->client, strlen(e->client), j->buf, j->len);
}

static int ent_cmp(const void *x, const void *y)
{
    const struct ent *p = *(const struct ent *const *)x, *q = *(const struct ent *const *)y;
    int c = strcmp(p->client, q->client);
    return c ? c : strcmp(p->service, q->service);
}

static bool flow_pending_in(const struct sn_agg_flow *f, int64_t ws)
{
    for (unsigned i = 0; i < PEND_SLOTS; i++)
        if (f->slot[i].used && f->slot[i].ws == ws)
            return true;
    for (unsigned i = 0; i < f->n_pex; i++)
        if (f->pex[i].ws == ws)
            return true;
    return false;
}

static void close_win(struct sn_agg *a, struct win *w)
{
    /* A response whose last byte was seen in this window and nothing since (so idle for at
     * least the grace period) completes here rather than at the next request. Unsettled
     * flows with counts in this window settle provisionally now, so nothing they saw here is
     * lost or moved to another window. */
    int64_t end = w->start + a->win_us;
    for (struct sn_agg_flow *f = a->flows_head; f; f = f->next) {
        if (f->ph == PH_RESP && f->resp_last < end) {
            if (!f->settled)
                force_settle(a, f);
            exch_complete(a, f, w);
        }
        if (!f->settled && flow_pending_in(f, w->start))
            force_settle(a, f);
    }
    memcpy(a->sortbuf, w->list, w->n * sizeof(*w->list));
    qsort(a->sortbuf, w->n, sizeof(*a->sortbuf), ent_cmp);
    for (unsigned i = 0; i < w->n; i++)
        emit_ent(a, w, a->sortbuf[i]);
    if (w->ovf_used)
        emit_ent(a, w, w->ovf);
    /* Clear the index: slot by slot when the window was sparse (windows are often nearly
     * empty, and a replay that jumps ahead closes many), else all at once. */
    if ((size_t)w->n * 8 < a->tab_size) {
        unsigned mask = a->tab_size - 1;
        for (unsigned k = 0; k < w->n; k++) {
            struct ent *e = w->list[k];
            unsigned i = (unsigned)e->hash & mask;
            while (w->tab[i] != e) /* e is in the table: found before wrapping around */
                i = (i + 1) & mask;
            w->tab[i] = NULL;
        }
    } else {
        memset(w->tab, 0, a->tab_size * sizeof(*w->tab));
    }
    for (unsigned i = 0; i < w->n; i++)
        ent_release(a, w->list[i]);
    w->n = 0;
    w->open = false;
    a->st.windows_closed++;
}
