#define SN_LOG_MOD "agg"
#include "agg.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mem.h"
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
#define ORG_MAX 64
#define NWIN 2    /* with grace < window at most two windows are ever open */
#define PEND_SLOTS 2
#define PEND_RECS 8
#define PEND_EX 4
#define BINS SN_AGG_HIST_BINS
#define K SN_AGG_TOPK

/* The largest record: every string at its cap, each byte escaped to 6 ("\u00XX"), plus
 * REC_FIXED for everything else: under 6 KB (keys ~1 KB, ~45 numbers x 21 bytes, 9 x 32
 * histogram bins x 11, 5 x 8 top-k items x ~35), doubled for margin; plus the window part
 * (WPRE_FIXED + the escaped sensor id). */
#define REC_STR_MAX                                                                         \
    (CLIENT_MAX + SERVICE_MAX + 4 + ORG_MAX + K * (SNI_MAX + JA4_MAX + JA3_MAX + ALPN_MAX))
#define REC_FIXED 12288
#define WPRE_FIXED 256

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
 * Values live in a caller-provided [K][stride] char array; len[i] is value i's length. */
struct topk {
    uint32_t n[K];
    uint8_t used;
    uint8_t len[K];
    uint64_t other;
};

/* The same for server ASNs, kept as numbers. */
struct topk_asn {
    uint32_t n[K], v[K];
    uint8_t used;
    uint64_t other;
};

struct ent {
    struct ent *next_free;
    uint64_t hash;
    char client[CLIENT_MAX];
    char service[SERVICE_MAX];
    uint16_t client_len, service_len;
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
    uint32_t hist_nz[H_N]; /* bit b set once hist[h][b] was counted (so it is > 0 unless it
                            * wrapped around): emission and SimHash skip the other bins */
    struct topk t_sni, t_ja4, t_ja3, t_alpn;
    struct topk_asn t_asn;
    /* last: ent_reset leaves them as they are */
    char v_sni[K][SNI_MAX], v_ja4[K][JA4_MAX], v_ja3[K][JA3_MAX], v_alpn[K][ALPN_MAX];
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

/* Pseudonyms cost up to 65 HMACs (prefix-preserving IPv6) and IPv6 text costs inet_ntop:
 * remember recent client ids. */
#define PCACHE_SIZE 1024
struct pcache {
    bool used;
    uint8_t bits;
    struct sn_addr addr;
    char id[64];
};

struct sn_agg {
    uint64_t hist_feat[H_N][BINS]; /* hash of the simhash feature "h:<name>:<bin>" */
    uint64_t ratio_feat[127];      /* hash of "ratio:<sign><q>", q = -63..63 at [q + 63] */
    uint64_t fnv_ja4, fnv_alpn, fnv_service; /* FNV state after "ja4:", "alpn:", "service:" */
    char hist_key[H_N][32];                  /* ,"<name>":[ (no comma for the first) */
    uint8_t hist_key_len[H_N];
    struct sn_agg_cfg cfg;
    struct pcache *pcache; /* PCACHE_SIZE entries */
    int64_t win_us, grace_us;
    char *sensor_id;
    struct sn_pseudo *pseudo;
    sn_agg_emit_fn emit;
    void *ctx;
    int64_t now;
    int64_t close_at; /* earliest end + grace of an open window; INT64_MAX: none open */
    uint64_t gen;
    struct win w[NWIN];
    unsigned tab_size;
    struct ent *ent_free;
    unsigned ent_allocated, ent_limit;
    struct sn_agg_flow *flows_head, *flows_tail, *flow_free;
    unsigned flows_live, flows_allocated;
    struct sn_json j;  /* scratch for strings that need escaping */
    struct sn_json wj; /* the window part of the records being emitted */
    char *rec;         /* the record being emitted: rec_cap bytes, enough for any */
    size_t rec_cap;
    bool rec_fail; /* out of memory while escaping: the record is dropped */
    struct ent **sortbuf;
    struct sn_agg_stats st;
};

/* ---------- small helpers ---------- */

/* Copies src (NULL: "") into dst[cap], truncating; returns the length copied. */
static size_t scopy(char *dst, size_t cap, const char *src)
{
    if (!src) {
        dst[0] = '\0';
        return 0;
    }
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

/* Appends src to the string of length n in dst[cap] (truncating like snprintf); returns the
 * new length. */
static size_t scat(char *dst, size_t cap, size_t n, const char *src)
{
    size_t k = strnlen(src, cap - 1 - n);
    memcpy(dst + n, src, k);
    dst[n + k] = '\0';
    return n + k;
}

static unsigned bin_of(uint64_t v)
{
    if (v == 0)
        return 0;
    unsigned b = (unsigned)(64 - __builtin_clzll(v)); /* floor(log2 v) + 1 */
    return b > BINS - 1 ? BINS - 1 : b;
}

/* Counts v in histogram h of e. */
static inline void hist_add(struct ent *e, unsigned h, uint64_t v)
{
    unsigned b = bin_of(v);
    e->hist[h][b]++;
    e->hist_nz[h] |= 1u << b;
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
        t->len[t->used] = (uint8_t)scopy(vals + t->used * stride, stride, v);
        t->n[t->used++] = n;
        return;
    }
    t->other += n;
}

static void topk_asn_add(struct topk_asn *t, uint32_t v, uint32_t n)
{
    for (unsigned i = 0; i < t->used; i++)
        if (t->v[i] == v) {
            t->n[i] += n;
            return;
        }
    if (t->used < K) {
        t->v[t->used] = v;
        t->n[t->used++] = n;
        return;
    }
    t->other += n;
}

/* ---------- entries and windows ---------- */

/* Zeroes everything but the top-k value arrays (the last members): only the first `used`
 * values of each are ever read. */
static void ent_reset(struct ent *e)
{
    memset(e, 0, offsetof(struct ent, v_sni));
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
    e->client_len = (uint16_t)scopy(e->client, sizeof(e->client), f->ckey);
    e->service_len = (uint16_t)scopy(e->service, sizeof(e->service), f->service);
    e->svc_src = f->svc_src;
    scopy(e->country, sizeof(e->country), f->country);
    e->client_asn = f->client_asn;
    scopy(e->client_asn_org, sizeof(e->client_asn_org), f->client_asn_org);
    w->tab[i] = e;
    w->list[w->n++] = e;
    return e;
}

static void close_win(struct sn_agg *a, struct win *w);

/* close_at = the earliest end + grace of the open windows (INT64_MAX if none); called
 * whenever a window opens or closes. */
static void update_close_at(struct sn_agg *a)
{
    int64_t t = INT64_MAX;
    for (unsigned i = 0; i < NWIN; i++)
        if (a->w[i].open && a->w[i].start + a->win_us + a->grace_us < t)
            t = a->w[i].start + a->win_us + a->grace_us;
    a->close_at = t;
}

/* Closes windows whose end + grace is before a->now, oldest first. Kept out of line so the
 * per-packet check below stays a few instructions. */
static __attribute__((noinline)) void close_due(struct sn_agg *a)
{
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

/* Every packet comes here: with the earliest deadline kept in close_at, nothing more to do
 * while no window is due. */
static inline void advance(struct sn_agg *a, int64_t now_us)
{
    if (now_us > a->now)
        a->now = now_us;
    if (a->now > a->close_at)
        close_due(a);
}

void sn_agg_advance(struct sn_agg *a, int64_t now_us)
{
    advance(a, now_us);
}

bool sn_agg_close_due(const struct sn_agg *a, int64_t now_us)
{
    return a && (now_us > a->now ? now_us : a->now) > a->close_at;
}

/* The open window a timestamp counts in (opened if needed). *late: the timestamp's own
 * window had closed, so the oldest window still open takes it. */
static struct win *win_open_for(struct sn_agg *a, int64_t ts, bool *late);

static inline struct win *win_for(struct sn_agg *a, int64_t ts, bool *late)
{
    advance(a, ts);
    *late = false;
    /* Usually ts falls in an open window: then it is its own window (windows start aligned)
     * and not late (advance closed every window whose end + grace < now). */
    for (unsigned i = 0; i < NWIN; i++) {
        struct win *w = &a->w[i];
        if (w->open && ts >= w->start && (uint64_t)ts - (uint64_t)w->start < (uint64_t)a->win_us)
            return w;
    }
    return win_open_for(a, ts, late);
}

/* win_for when ts's window is not open: it is late, or its window opens now. */
static __attribute__((noinline)) struct win *win_open_for(struct sn_agg *a, int64_t ts,
                                                          bool *late)
{
    int64_t ws = align_down(ts, a->win_us);
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
    update_close_at(a);
    slot->gen = ++a->gen;
    slot->n = 0;
    slot->ovf_used = false;
    ent_reset(slot->ovf);
    slot->ovf->overflow = true;
    slot->ovf->svc_src = SRC_OVERFLOW;
    strcpy(slot->ovf->client, "*");
    strcpy(slot->ovf->service, "*");
    slot->ovf->client_len = slot->ovf->service_len = 1;
    return slot;
}

/* ---------- flows: key, settle, attribution ---------- */

/* The cache slot for addr with tag: a client id's prefix bits, or PC_TEXT for the plain text
 * of a server address. */
#define PC_TEXT 255
static struct pcache *pcache_slot(struct sn_agg *a, const struct sn_addr *addr, unsigned tag)
{
    uint64_t h = sn_simhash_hash64((const char *)addr->a, sizeof(addr->a)) + tag;
    return &a->pcache[h % PCACHE_SIZE];
}

static void client_key(struct sn_agg *a, struct sn_agg_flow *f)
{
    struct sn_addr addr = f->client;
    unsigned max = addr.family == 6 ? 128 : 32;
    unsigned bits = max;
    if (a->cfg.client_key == SN_CLIENT_PREFIX)
        bits = addr.family == 6 ? a->cfg.prefix6 : a->cfg.prefix4;
    if (bits > max)
        bits = max;
    char id[64];
    struct pcache *pc = NULL;
    if (addr.family == 4 || addr.family == 6) {
        pc = pcache_slot(a, &addr, bits);
        if (pc->used && pc->bits == bits && !sn_addr_cmp(&pc->addr, &addr)) {
            memcpy(id, pc->id, sizeof(id));
            goto have_id;
        }
    }
    if (addr.family != 4 && addr.family != 6) {
        strcpy(id, "-");
    } else if (a->pseudo && !a->cfg.pseudo_prefix_preserving) {
        id[0] = 'p';
        id[1] = ':';
        sn_pseudo_hmac(a->pseudo, &addr, bits, id + 2); /* SN_PSEUDO_HEXLEN + NUL fit */
    } else {
        if (a->pseudo) {
            struct sn_addr p;
            sn_pseudo_prefix(a->pseudo, &addr, &p);
            addr = p;
        }
        struct sn_addr m = addr;
        sn_addr_mask(&m, bits);
        sn_addr_str(&m, id, sizeof(id));
    }
    if (pc) {
        pc->used = true;
        pc->bits = (uint8_t)bits;
        pc->addr = f->client;
        memcpy(pc->id, id, sizeof(id));
    }
have_id:;
    /* id (< 64) + "/128" or "|" + JA4 (< JA4_MAX) fit CLIENT_MAX: scat never truncates. */
    size_t n = scat(f->ckey, sizeof(f->ckey), 0, id);
    if (bits < max) {
        char b[8], *p = b + sizeof(b);
        *--p = '\0';
        do
            *--p = (char)('0' + bits % 10);
        while (bits /= 10);
        *--p = '/';
        scat(f->ckey, sizeof(f->ckey), n, p);
    } else if (a->cfg.client_key == SN_CLIENT_IP_JA4) {
        n = scat(f->ckey, sizeof(f->ckey), n, "|");
        scat(f->ckey, sizeof(f->ckey), n, f->ja4[0] ? f->ja4 : "-");
    }
}

static void service_key(struct sn_agg *a, struct sn_agg_flow *f)
{
    if (f->has_label) {
        f->svc_src = SRC_RULE;
    } else if (f->sni[0]) {
        sn_regdom_get(f->sni, strlen(f->sni), f->service, sizeof(f->service));
        f->svc_src = SRC_SNI;
    } else if (f->server_asn) {
        char b[16], *p = b + sizeof(b);
        uint32_t v = f->server_asn;
        *--p = '\0';
        do
            *--p = (char)('0' + v % 10);
        while (v /= 10);
        *--p = 'S';
        *--p = 'A';
        scat(f->service, sizeof(f->service), 0, p);
        f->svc_src = SRC_ASN;
    } else {
        struct pcache *pc = pcache_slot(a, &f->server, PC_TEXT);
        if (!(pc->used && pc->bits == PC_TEXT && !sn_addr_cmp(&pc->addr, &f->server))) {
            pc->used = true;
            pc->bits = PC_TEXT;
            pc->addr = f->server;
            sn_addr_str(&f->server, pc->id, sizeof(pc->id));
        }
        _Static_assert(SERVICE_MAX >= sizeof(pc->id), "service holds an address");
        memcpy(f->service, pc->id, sizeof(pc->id));
        f->svc_src = SRC_IP;
    }
}

/* The flow's entry in window w; the first lookup per window counts the flow active there
 * and adds its categorical values. */
static struct ent *flow_entry_new(struct sn_agg *a, struct sn_agg_flow *f, struct win *w);

static inline struct ent *flow_entry(struct sn_agg *a, struct sn_agg_flow *f, struct win *w)
{
    for (unsigned i = 0; i < NWIN; i++)
        if (f->cache[i].gen == w->gen)
            return f->cache[i].e;
    return flow_entry_new(a, f, w);
}

/* flow_entry's first lookup in w (out of line: the per-packet path is the cache hit). */
static __attribute__((noinline)) struct ent *flow_entry_new(struct sn_agg *a,
                                                            struct sn_agg_flow *f,
                                                            struct win *w)
{
    unsigned victim = 0;
    for (unsigned i = 1; i < NWIN; i++)
        if (f->cache[i].gen < f->cache[victim].gen)
            victim = i;
    struct ent *e = win_entry(a, w, f);
    f->cache[victim].gen = w->gen;
    f->cache[victim].e = e;
    e->flows_active++;
    topk_add(&e->t_sni, e->v_sni[0], SNI_MAX, f->sni, 1);
    topk_add(&e->t_ja4, e->v_ja4[0], JA4_MAX, f->ja4, 1);
    topk_add(&e->t_ja3, e->v_ja3[0], JA3_MAX, f->ja3, 1);
    topk_add(&e->t_alpn, e->v_alpn[0], ALPN_MAX, f->alpn, 1);
    if (f->server_asn)
        topk_asn_add(&e->t_asn, f->server_asn, 1);
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
    hist_add(e, H_RESP_BYTES, x->resp_bytes);
    hist_add(e, H_TTFB, pos(x->ttfb));
    hist_add(e, H_RESP_DUR, pos(x->dur));
    if (x->has_gap)
        hist_add(e, H_GAP, pos(x->gap));
    if (x->method == M_REC) {
        e->ex_rec++;
        e->resp_records += x->resp_records;
        hist_add(e, H_RESP_RECORDS, x->resp_records);
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
    service_key(a, f);
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
        hist_add(e, r->dir ? H_REC_DOWN : H_REC_UP, r->len);
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
    for (unsigned h = 0; h < H_N; h++) {
        for (unsigned b = 0; b < BINS; b++) {
            char feat[64];
            int n = snprintf(feat, sizeof(feat), "h:%s:%u", hist_names[h], b);
            a->hist_feat[h][b] = sn_simhash_hash64(feat, (size_t)n);
        }
        int n = snprintf(a->hist_key[h], sizeof(a->hist_key[h]), "%s\"%s\":[", h ? "," : "",
                         hist_names[h]);
        a->hist_key_len[h] = (uint8_t)n;
    }
    for (int q = -63; q <= 63; q++) {
        char feat[16];
        int n = snprintf(feat, sizeof(feat), "ratio:%+d", q);
        a->ratio_feat[q + 63] = sn_simhash_hash64(feat, (size_t)n);
    }
    a->fnv_ja4 = sn_simhash_fnv(SN_SIMHASH_FNV0, "ja4:", 4);
    a->fnv_alpn = sn_simhash_fnv(SN_SIMHASH_FNV0, "alpn:", 5);
    a->fnv_service = sn_simhash_fnv(SN_SIMHASH_FNV0, "service:", 8);
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
    a->close_at = INT64_MAX;
    a->ent_limit = NWIN * a->cfg.max_entries;
    sn_json_init(&a->j);
    sn_json_init(&a->wj);
    if (cfg->sensor_id && !(a->sensor_id = strdup(cfg->sensor_id)))
        goto fail;
    a->rec_cap = REC_FIXED + 6 * REC_STR_MAX + WPRE_FIXED +
                 6 * (a->sensor_id ? strlen(a->sensor_id) : 0);
    if (!(a->rec = malloc(a->rec_cap)))
        goto fail;
    if (cfg->pseudo_key && cfg->pseudo_key_len) {
        if (!(a->pseudo = sn_pseudo_new(cfg->pseudo_key, cfg->pseudo_key_len)))
            goto fail;
    }
    if (!(a->pcache = calloc(PCACHE_SIZE, sizeof(*a->pcache))))
        goto fail;
    a->tab_size = 16;
    while (a->tab_size < 2 * a->cfg.max_entries)
        a->tab_size <<= 1;
    for (unsigned i = 0; i < NWIN; i++) {
        a->w[i].tab = calloc(a->tab_size, sizeof(*a->w[i].tab));
        a->w[i].list = calloc(a->cfg.max_entries, sizeof(*a->w[i].list));
        a->w[i].ovf = malloc(sizeof(*a->w[i].ovf));
        if (!a->w[i].tab || !a->w[i].list || !a->w[i].ovf)
            goto fail;
        sn_mem_prefault(a->w[i].tab, a->tab_size * sizeof(*a->w[i].tab)); /* see mem.h */
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
    sn_json_fini(&a->wj);
    free(a->rec);
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
        hist_add(e, dir ? H_REC_DOWN : H_REC_UP, len);
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
        hist_add(e, dir ? H_REC_DOWN : H_REC_UP, len);
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
    hist_add(e, H_FLOW_BYTES_DOWN, f->bytes_down);
    hist_add(e, H_FLOW_DUR, pos(f->last_ts - f->start_ts));
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

/* ---------- emission ----------
 * A fingerprint is written straight into a->rec, which sn_agg_new sizes for the largest
 * possible record, so the writers below never check for room. Keys and punctuation are
 * string constants copied whole; numbers are formatted here; strings that need escaping go
 * through json.h (the one place escaping is defined). The parts fixed for a window (sensor,
 * run, window object) are formatted once per window into a->wj. */


#define PUT(o, lit) ((o) = put_n((o), (lit), sizeof(lit) - 1))
/* A literal `,"key":` and a number after it. */
#define PUT_U64(o, lit, v) (PUT(o, lit), (o) = sn_json_put_u64((o), (v)))

static inline char *put_n(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static char *put_bool(char *o, bool v)
{
    return v ? put_n(o, "true", 4) : put_n(o, "false", 5);
}

/* A JSON string: copied as is when it needs no escaping (the usual case), else escaped by
 * json.h in the scratch writer a->j (sets a->rec_fail if that runs out of memory). */
/* True when none of the 8 bytes of x needs escaping (all in 0x20..0x7f, none '"' or '\\'):
 * the high bit of each byte of ok says so for that byte, computed without cross-byte carries. */
static inline bool plain8(uint64_t x)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL, ones = 0x0101010101010101ULL;
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
    uint64_t ok = ~x                              /* < 0x80 */
                  & ((x | ~lo7) - ones * 0x20)    /* (b | 0x80) - 0x20 >= 0x80: b >= 0x20 */
                  & (((q & lo7) + lo7) | q)       /* b != '"' */
                  & (((bs & lo7) + lo7) | bs);    /* b != '\\' */
    return (ok & ~lo7) == ~lo7;
}

static char *put_str(struct sn_agg *a, char *o, const char *s, size_t n)
{
    size_t i = 0;
    for (uint64_t x; i + 8 <= n; i += 8) {
        memcpy(&x, s + i, 8);
        if (!plain8(x))
            break;
    }
    while (i < n && (uint8_t)s[i] >= 0x20 && (uint8_t)s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
        i++;
    if (i == n) {
        *o++ = '"';
        o = put_n(o, s, n);
        *o++ = '"';
        return o;
    }
    sn_json_reset(&a->j);
    sn_json_strn(&a->j, NULL, s, n); /* first value at depth 0: no comma, just the string */
    if (!sn_json_ok(&a->j)) {
        a->rec_fail = true;
        return o;
    }
    return put_n(o, a->j.buf, a->j.len);
}

/* What printf("%.3f", v) writes for v = d / u (u > 0; sn_json_dbl's format), without printf:
 * v * 1000 of the exact binary value v = m 2^e is m 1000 / 2^-e, rounded to nearest with ties
 * to even as glibc's printf does. Huge ratios (never in practice) take snprintf. */
static char *put_ratio(char *o, uint64_t d, uint64_t u)
{
    double v = (double)d / (double)u;
    if (!(v < 1e15)) {
        char b[64];
        int n = snprintf(b, sizeof(b), "%.*f", 3, v);
        return put_n(o, b, (size_t)(n > 0 && n < (int)sizeof(b) ? n : 0));
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    unsigned ex = (unsigned)(bits >> 52 & 0x7ff);
    uint64_t m = bits & ((1ULL << 52) - 1);
    unsigned sh = 1074; /* subnormal: v = m 2^-1074 */
    if (ex) {
        m |= 1ULL << 52;
        sh = 1075 - ex; /* v < 1e15 < 2^50 and m >= 2^52, so the exponent is negative */
    }
    uint64_t n = m * 1000, q = 0; /* n < 2^63 */
    if (sh < 64) {                /* else n / 2^sh < 1/2: rounds to 0 */
        q = n >> sh;
        uint64_t rem = n & ((1ULL << sh) - 1), half = 1ULL << (sh - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
    }
    o = sn_json_put_u64(o, q / 1000);
    unsigned f = (unsigned)(q % 1000);
    o[0] = '.';
    o[1] = (char)('0' + f / 100);
    o[2] = (char)('0' + f / 10 % 10);
    o[3] = (char)('0' + f % 10);
    return o + 4;
}

/* round(1000 * c / total), half up, in integers so any consumer gets the same weight. */
static int64_t share_w(uint64_t c, uint64_t total)
{
    return (int64_t)((2000 * c + total) / (2 * total));
}

static int ratio_bin(const struct ent *e)
{
    uint64_t u = e->bytes[0], d = e->bytes[1];
    uint64_t hi = d >= u ? d : u, lo = d >= u ? u : d;
    uint64_t q = (hi + 1) / (lo + 1);
    int b = 63 - __builtin_clzll(q); /* q >= 1 */
    return d >= u ? b : -b;
}

/* Most features any record can have: every histogram bin, ratio, K ja4 + K alpn, service. */
#define SIM_FEAT_MAX (H_N * BINS + 1 + 2 * K + 1)

/* Appends the "<prefix>:<v>" features of t; fnv_prefix: the FNV state after "<prefix>:". */
static unsigned sim_topk(uint64_t *fh, int64_t *fw, unsigned n, uint64_t fnv_prefix,
                         const struct topk *t, const char *vals, size_t stride)
{
    uint64_t total = t->other;
    for (unsigned i = 0; i < t->used; i++)
        total += t->n[i];
    for (unsigned i = 0; i < t->used; i++) {
        fh[n] = sn_simhash_mix(sn_simhash_fnv(fnv_prefix, vals + i * stride, t->len[i]));
        fw[n++] = share_w(t->n[i], total);
    }
    return n;
}

/* The record's SimHash, as agg.h defines it. Fixed feature strings are hashed once in
 * sn_agg_new; the rest are hashed as prefix state + value, never built as strings. */
static uint64_t ent_simhash(const struct sn_agg *a, const struct ent *e)
{
    uint64_t fh[SIM_FEAT_MAX];
    int64_t fw[SIM_FEAT_MAX];
    unsigned n = 0;
    for (unsigned h = 0; h < H_N; h++) {
        uint32_t nz = e->hist_nz[h];
        if (!nz)
            continue;
        const uint32_t *c = e->hist[h];
        uint64_t total = 0;
        for (uint32_t m = nz; m; m &= m - 1)
            total += c[__builtin_ctz(m)];
        if (!total) /* only if 2^32 counts wrapped a bin around */
            continue;
        /* Smoothed with the kernel [1 2 1] / 4 so that values close to a bin edge count
         * partly in the neighbouring bins: two clients whose values straddle an edge still
         * share features. The bins with a non-zero smoothed count are exactly the non-empty
         * ones and their neighbours. */
        for (uint32_t m = nz | nz << 1 | nz >> 1; m; m &= m - 1) {
            unsigned b = (unsigned)__builtin_ctz(m);
            uint64_t sm = 2 * (uint64_t)c[b];
            if (b > 0)
                sm += c[b - 1];
            if (b + 1 < BINS)
                sm += c[b + 1];
            if (!sm)
                continue;
            fh[n] = a->hist_feat[h][b];
            fw[n++] = share_w(sm, 4 * total);
        }
    }
    if (e->bytes[0] + e->bytes[1]) {
        fh[n] = a->ratio_feat[ratio_bin(e) + 63];
        fw[n++] = 1000;
    }
    n = sim_topk(fh, fw, n, a->fnv_ja4, &e->t_ja4, e->v_ja4[0], JA4_MAX);
    n = sim_topk(fh, fw, n, a->fnv_alpn, &e->t_alpn, e->v_alpn[0], ALPN_MAX);
    fh[n] = sn_simhash_mix(sn_simhash_fnv(a->fnv_service, e->service, e->service_len));
    fw[n++] = 500;
    return sn_simhash_of(fh, fw, n);
}

/* Order of a top-k list: count descending, then value (bytewise). */
static void topk_order(const struct topk *t, const char *vals, size_t stride, unsigned *ord)
{
    for (unsigned i = 0; i < t->used; i++)
        ord[i] = i;
    for (unsigned i = 1; i < t->used; i++) /* insertion sort: K is tiny */
        for (unsigned k = i; k > 0; k--) {
            unsigned x = ord[k], y = ord[k - 1];
            if (t->n[x] != t->n[y] ? t->n[x] < t->n[y]
                                   : strcmp(vals + x * stride, vals + y * stride) >= 0)
                break;
            ord[k] = y;
            ord[k - 1] = x;
        }
}

/* [{"v":"value","n":count},...] in topk_order. */
static char *put_topk(struct sn_agg *a, char *o, const struct topk *t, const char *vals,
                      size_t stride)
{
    unsigned ord[K];
    topk_order(t, vals, stride, ord);
    *o++ = '[';
    for (unsigned i = 0; i < t->used; i++) {
        if (i)
            *o++ = ',';
        PUT(o, "{\"v\":");
        o = put_str(a, o, vals + ord[i] * stride, t->len[ord[i]]);
        PUT_U64(o, ",\"n\":", t->n[ord[i]]);
        *o++ = '}';
    }
    *o++ = ']';
    return o;
}

/* Server ASNs as numbers, ordered like their decimal strings (schema 1 sorted them so). */
static char *put_asns(char *o, const struct topk_asn *t)
{
    unsigned ord[K] = {0};
    if (t->used > 1) {
        char vals[K][12];
        struct topk s = {.used = t->used};
        for (unsigned i = 0; i < t->used; i++) {
            snprintf(vals[i], sizeof(vals[i]), "%u", t->v[i]);
            s.n[i] = t->n[i];
        }
        topk_order(&s, vals[0], sizeof(vals[0]), ord);
    }
    *o++ = '[';
    for (unsigned i = 0; i < t->used; i++) {
        if (i)
            *o++ = ',';
        PUT_U64(o, "{\"v\":", t->v[ord[i]]);
        PUT_U64(o, ",\"n\":", t->n[ord[i]]);
        *o++ = '}';
    }
    *o++ = ']';
    return o;
}

static char *put_dir(char *o, const struct ent *e, int d)
{
    PUT_U64(o, "{\"pkts\":", e->pkts[d]);
    PUT_U64(o, ",\"bytes\":", e->bytes[d]);
    PUT_U64(o, ",\"payload\":", e->payload[d]);
    PUT_U64(o, ",\"tls_records\":", e->recs[d]);
    PUT_U64(o, ",\"tls_bytes\":", e->rec_bytes[d]);
    *o++ = '}';
    return o;
}

/* The window part of every record of w: ,"sensor":..,"run":..,"window":{..}. */
static void window_prefix(struct sn_agg *a, const struct win *w)
{
    struct sn_json *j = &a->wj;
    sn_json_reset(j);
    sn_json_obj_begin(j, NULL);
    if (a->sensor_id)
        sn_json_str(j, "sensor", a->sensor_id);
    if (a->cfg.run_id)
        sn_json_i64(j, "run", a->cfg.run_id);
    sn_json_obj_begin(j, "window");
    sn_json_ts(j, "start", w->start);
    sn_json_ts(j, "end", w->start + a->win_us);
    sn_json_u64(j, "duration_s", a->cfg.window_s);
    sn_json_obj_end(j);
    if (sn_json_ok(j))
        j->buf[0] = ','; /* the object's '{' becomes the comma after "schema" (or "seq") */
}

#define STR_(x) #x
#define STR(x) STR_(x)

static void emit_ent(struct sn_agg *a, const struct ent *e)
{
    char *o = a->rec;
    a->rec_fail = !sn_json_ok(&a->wj);
    PUT(o, "{\"type\":\"fingerprint\",\"schema\":" STR(SN_AGG_SCHEMA));
    if (a->cfg.seq) {
        PUT_U64(o, ",\"seq\":", ++*a->cfg.seq);
    }
    if (a->rec_fail)
        return;
    o = put_n(o, a->wj.buf, a->wj.len);

    PUT(o, ",\"client\":{\"id\":");
    o = put_str(a, o, e->client, e->client_len);
    if (e->overflow)
        PUT(o, ",\"key\":\"overflow\"");
    else if (a->cfg.client_key == SN_CLIENT_PREFIX)
        PUT(o, ",\"key\":\"prefix\"");
    else if (a->cfg.client_key == SN_CLIENT_IP_JA4)
        PUT(o, ",\"key\":\"ip+ja4\"");
    else
        PUT(o, ",\"key\":\"ip\"");
    PUT(o, ",\"pseudonymised\":");
    o = put_bool(o, a->pseudo != NULL);
    if (e->country[0]) {
        PUT(o, ",\"country\":");
        o = put_str(a, o, e->country, strlen(e->country));
    }
    if (e->client_asn) {
        PUT_U64(o, ",\"asn\":", e->client_asn);
    }
    if (e->client_asn_org[0]) {
        PUT(o, ",\"asn_org\":");
        o = put_str(a, o, e->client_asn_org, strlen(e->client_asn_org));
    }

    PUT(o, "},\"service\":{\"name\":");
    o = put_str(a, o, e->service, e->service_len);
    PUT(o, ",\"source\":\"");
    o = put_n(o, svc_src_names[e->svc_src], strlen(svc_src_names[e->svc_src]));
    PUT(o, "\",\"snis\":");
    o = put_topk(a, o, &e->t_sni, e->v_sni[0], SNI_MAX);
    PUT_U64(o, ",\"snis_other\":", e->t_sni.other);
    PUT(o, ",\"asns\":");
    o = put_asns(o, &e->t_asn);

    PUT(o, "},\"overflow\":");
    o = put_bool(o, e->overflow);
    PUT_U64(o, ",\"flows\":{\"started\":", e->flows_started);
    PUT_U64(o, ",\"ended\":", e->flows_ended);
    PUT_U64(o, ",\"active\":", e->flows_active);
    PUT(o, "},\"up\":");
    o = put_dir(o, e, 0);
    PUT(o, ",\"down\":");
    o = put_dir(o, e, 1);
    PUT(o, ",\"ratio_down_up\":");
    if (e->bytes[0])
        o = put_ratio(o, e->bytes[1], e->bytes[0]);
    else
        PUT(o, "null");

    PUT_U64(o, ",\"exchanges\":{\"n\":", e->ex_n);
    if (e->ex_rec && e->ex_burst)
        PUT(o, ",\"method\":\"mixed\"");
    else if (e->ex_rec)
        PUT(o, ",\"method\":\"records\"");
    else if (e->ex_burst)
        PUT(o, ",\"method\":\"bursts\"");
    else
        PUT(o, ",\"method\":\"none\"");
    PUT_U64(o, ",\"n_records\":", e->ex_rec);
    PUT_U64(o, ",\"n_bursts\":", e->ex_burst);
    PUT_U64(o, ",\"request_bytes\":", e->req_bytes);
    PUT_U64(o, ",\"response_bytes\":", e->resp_bytes);
    PUT_U64(o, ",\"response_records\":", e->resp_records);
    PUT_U64(o, ",\"ttfb_us_sum\":", e->ttfb_sum);
    PUT_U64(o, ",\"response_duration_us_sum\":", e->resp_dur_sum);
    PUT_U64(o, ",\"unanswered\":", e->unanswered);

    PUT(o, "},\"hist\":{");
    for (unsigned h = 0; h < H_N; h++) {
        o = put_n(o, a->hist_key[h], a->hist_key_len[h]); /* ,"name":[ */
        unsigned last = e->hist_nz[h] ? 32u - (unsigned)__builtin_clz(e->hist_nz[h]) : 0;
        while (last && !e->hist[h][last - 1]) /* a bin wrapped around to 0 */
            last--;
        for (unsigned b = 0; b < last; b++) {
            if (b)
                *o++ = ',';
            o = sn_json_put_u64(o, e->hist[h][b]);
        }
        *o++ = ']';
    }

    PUT(o, "},\"ja4\":");
    o = put_topk(a, o, &e->t_ja4, e->v_ja4[0], JA4_MAX);
    PUT_U64(o, ",\"ja4_other\":", e->t_ja4.other);
    PUT(o, ",\"ja3\":");
    o = put_topk(a, o, &e->t_ja3, e->v_ja3[0], JA3_MAX);
    PUT_U64(o, ",\"ja3_other\":", e->t_ja3.other);
    PUT(o, ",\"alpn\":");
    o = put_topk(a, o, &e->t_alpn, e->v_alpn[0], ALPN_MAX);
    PUT_U64(o, ",\"alpn_other\":", e->t_alpn.other);

    static const char hex[] = "0123456789abcdef";
    uint64_t sh = ent_simhash(a, e);
    PUT(o, ",\"simhash\":\"");
    for (int i = 60; i >= 0; i -= 4)
        *o++ = hex[sh >> i & 15];
    PUT(o, "\"}\n");
    size_t len = (size_t)(o - a->rec);
    assert(len <= a->rec_cap);
    if (a->rec_fail)
        return;
    a->st.fingerprints++;
    if (a->emit)
        a->emit(a->ctx, e->client, e->client_len, a->rec, len);
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
    window_prefix(a, w);
    for (unsigned i = 0; i < w->n; i++)
        emit_ent(a, a->sortbuf[i]);
    if (w->ovf_used)
        emit_ent(a, w->ovf);
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
    update_close_at(a);
    a->st.windows_closed++;
}
