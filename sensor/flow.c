#define SN_LOG_MOD "flow"
#include "flow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "decode.h"
#include "err.h"
#include "mem.h"

enum { L_FREE = 0, L_OPEN = 1, L_CLOSING = 2 };

struct list {
    struct sn_flow *head, *tail; /* head: least recently active */
};

struct sn_flow_table {
    struct sn_flow_cfg cfg;
    struct sn_flow *pool;
    struct sn_flow *free; /* singly linked through hnext */
    uint32_t fresh;       /* pool[fresh..max) never used yet (zeroed by calloc) */
    struct sn_flow **buckets;
    uint32_t mask;
    uint32_t active;
    uint64_t seed;
    int64_t now_us;
    struct list lists[3];
    struct sn_flow_stats st;
};

/* ---- recency lists ---- */

static void list_unlink(struct sn_flow_table *t, struct sn_flow *f)
{
    struct list *l = &t->lists[f->list];
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
}

static void list_append(struct sn_flow_table *t, struct sn_flow *f, uint8_t which)
{
    struct list *l = &t->lists[which];
    f->list = which;
    f->next = NULL;
    f->prev = l->tail;
    if (l->tail)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
}

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint32_t key_hash(const struct sn_flow_table *t, const struct sn_flow_key *k)
{
    uint64_t w[5];
    memcpy(&w[0], k->lo.a, 8);
    memcpy(&w[1], k->lo.a + 8, 8);
    memcpy(&w[2], k->hi.a, 8);
    memcpy(&w[3], k->hi.a + 8, 8);
    w[4] = (uint64_t)k->lo_port << 48 | (uint64_t)k->hi_port << 32 | (uint64_t)k->vlan << 16 |
           (uint64_t)k->proto << 8 | k->lo.family;
    /* Per word one xor, multiply and rotate (each a bijection of h, so keys that differ in
     * one word never collide), then one full mix: every packet hashes its key. */
    uint64_t h = t->seed;
#pragma GCC unroll 5
    for (int i = 0; i < 5; i++) {
        h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
        h = h << 31 | h >> 33;
    }
    h = mix64(h);
    return (uint32_t)(h ^ h >> 32);
}

static bool key_eq(const struct sn_flow_key *a, const struct sn_flow_key *b)
{
    return a->lo_port == b->lo_port && a->hi_port == b->hi_port && a->proto == b->proto &&
           a->vlan == b->vlan && memcmp(&a->lo, &b->lo, sizeof(a->lo)) == 0 &&
           memcmp(&a->hi, &b->hi, sizeof(a->hi)) == 0;
}

/* Canonical key: the lower (address, port) first, so both directions map to one entry. */
static void make_key(const struct sn_flow_table *t, const struct sn_pkt *p, struct sn_flow_key *k)
{
    int c = sn_addr_cmp(&p->src, &p->dst);
    bool sw = c > 0 || (c == 0 && p->sport > p->dport);
    memset(k, 0, sizeof(*k));
    k->lo = sw ? p->dst : p->src;
    k->hi = sw ? p->src : p->dst;
    k->lo_port = sw ? p->dport : p->sport;
    k->hi_port = sw ? p->sport : p->dport;
    k->proto = p->proto;
    k->vlan = t->cfg.vlan_key ? p->vlan : 0;
}

/* ---- table ---- */

struct sn_flow_table *sn_flow_table_new(const struct sn_flow_cfg *cfg)
{
    struct sn_flow_table *t = calloc(1, sizeof(*t));
    if (!t)
        goto fail;
    t->cfg = *cfg;
    if (t->cfg.max == 0)
        t->cfg.max = SN_FLOW_DEFAULT_MAX;
    uint32_t nb = 1024;
    while (nb < t->cfg.max && nb < (1u << 30))
        nb <<= 1;
    t->mask = nb - 1;
    t->buckets = calloc(nb, sizeof(*t->buckets));
    t->pool = calloc(t->cfg.max, sizeof(*t->pool));
    if (!t->buckets || !t->pool)
        goto fail;
    sn_mem_prefault(t->buckets, nb * sizeof(*t->buckets)); /* read before written: mem.h */
    /* The pool is handed out front to back (t->fresh) before the free list is used: calloc's
     * pages are touched only as flows are first needed, so a sensor tracking 10 k flows does
     * not occupy the memory of max (262 k by default) from the start. */
    if (getrandom(&t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed))
        t->seed = 0x5eed5eed5eed5eedULL; /* hash order never shows in output */
    return t;
fail:
    SN_ERR(ENOMEM, "flow table (%u flows)", cfg->max);
    sn_flow_table_free(t);
    return NULL;
}

void sn_flow_table_free(struct sn_flow_table *t)
{
    if (!t)
        return;
    free(t->buckets);
    free(t->pool);
    free(t);
}

static void hash_remove(struct sn_flow_table *t, struct sn_flow *f)
{
    struct sn_flow **pp = &t->buckets[f->hash & t->mask];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
}

/* Reports the end and returns the entry to the free list. */
static void end_flow(struct sn_flow_table *t, struct sn_flow *f, enum sn_flow_end why)
{
    f->end_reason = why;
    if (t->cfg.on_end)
        t->cfg.on_end(t->cfg.ctx, f, why);
    hash_remove(t, f);
    list_unlink(t, f);
    memset(f, 0, sizeof(*f));
    f->hnext = t->free;
    t->free = f;
    t->active--;
    t->st.ended++;
}

static enum sn_flow_end closing_reason(const struct sn_flow *f)
{
    return f->rst ? SN_FLOW_END_RST : SN_FLOW_END_FIN;
}

void sn_flow_expire(struct sn_flow_table *t, int64_t now_us, unsigned budget)
{
    int64_t idle = (int64_t)t->cfg.idle_s * 1000000;
    unsigned n = 0;
    struct sn_flow *f;
    while ((f = t->lists[L_CLOSING].head) && f->last_us + SN_FLOW_CLOSED_LINGER_US < now_us &&
           (!budget || n < budget)) {
        t->st.closed++;
        end_flow(t, f, closing_reason(f));
        n++;
    }
    while ((f = t->lists[L_OPEN].head) && f->last_us + idle < now_us && (!budget || n < budget)) {
        t->st.timeouts_idle++;
        end_flow(t, f, SN_FLOW_END_IDLE);
        n++;
    }
}

static struct sn_flow *alloc_flow(struct sn_flow_table *t)
{
    if (!t->free && t->fresh < t->cfg.max) {
        struct sn_flow *f = &t->pool[t->fresh++]; /* zeroed by calloc */
        t->active++;
        t->st.created++;
        return f;
    }
    if (!t->free) {
        struct sn_flow *victim = t->lists[L_CLOSING].head;
        if (victim) {
            t->st.closed++;
            end_flow(t, victim, closing_reason(victim));
        } else {
            victim = t->lists[L_OPEN].head;
            t->st.evicted++;
            end_flow(t, victim, SN_FLOW_END_EVICTED);
        }
    }
    struct sn_flow *f = t->free;
    t->free = f->hnext;
    memset(f, 0, sizeof(*f));
    t->active++;
    t->st.created++;
    return f;
}

/* Decides who the client is for a new flow; returns true if the packet's sender is it. */
static bool sender_is_client(const struct sn_pkt *p, bool *mid_stream)
{
    *mid_stream = false;
    if (p->proto == 6) {
        uint8_t fl = p->tcp_flags & (SN_TCP_SYN | SN_TCP_ACK);
        if (fl == SN_TCP_SYN)
            return true;
        if (fl == (SN_TCP_SYN | SN_TCP_ACK))
            return false;
        *mid_stream = true;
        if (p->sport != p->dport)
            return p->sport > p->dport;
        return true;
    }
    if (p->sport < 1024 && p->dport >= 1024)
        return false;
    return true;
}

static void init_flow(struct sn_flow *f, const struct sn_pkt *p, const struct sn_flow_key *k)
{
    bool mid;
    bool cli = sender_is_client(p, &mid);
    f->key = *k;
    f->mid_stream = mid;
    f->proto = p->proto;
    f->ipver = p->ipver;
    f->client = cli ? p->src : p->dst;
    f->server = cli ? p->dst : p->src;
    f->client_port = cli ? p->sport : p->dport;
    f->server_port = cli ? p->dport : p->sport;
    f->first_us = f->last_us = f->interval_us = p->ts_us;
    f->vlan = p->vlan;
    f->tunnel = (uint8_t)p->tunnel;
    f->tunnel_id = p->tunnel_id;
    f->outer_src = p->outer_src;
    f->outer_dst = p->outer_dst;
}

struct sn_flow *sn_flow_packet(struct sn_flow_table *t, const struct sn_pkt *p, int *dir,
                               bool *is_new)
{
    if (p->ts_us > t->now_us)
        t->now_us = p->ts_us;
    sn_flow_expire(t, t->now_us, SN_FLOW_EXPIRE_BUDGET);

    struct sn_flow_key k;
    make_key(t, p, &k);
    uint32_t h = key_hash(t, &k);
    struct sn_flow *f = t->buckets[h & t->mask];
    while (f && !(f->hash == h && key_eq(&f->key, &k)))
        f = f->hnext;

    /* A SYN on a closing flow with the same tuple starts a new connection. */
    if (f && f->list == L_CLOSING && p->proto == 6 &&
        (p->tcp_flags & (SN_TCP_SYN | SN_TCP_ACK)) == SN_TCP_SYN) {
        t->st.closed++;
        end_flow(t, f, closing_reason(f));
        f = NULL;
    }

    *is_new = false;
    if (!f) {
        f = alloc_flow(t);
        f->hash = h;
        init_flow(f, p, &k);
        f->hnext = t->buckets[h & t->mask];
        t->buckets[h & t->mask] = f;
        list_append(t, f, L_OPEN);
        *is_new = true;
    } else {
        list_unlink(t, f);
        list_append(t, f, f->end_reason ? L_CLOSING : L_OPEN);
    }

    int d = sn_addr_cmp(&p->src, &f->client) == 0 && p->sport == f->client_port ? 0 : 1;
    *dir = d;

    /* Active timeout: report the interval so far, then start a new one. */
    if (t->cfg.active_s && p->ts_us - f->interval_us >= (int64_t)t->cfg.active_s * 1000000 &&
        !*is_new) {
        if (t->cfg.on_end)
            t->cfg.on_end(t->cfg.ctx, f, SN_FLOW_END_ACTIVE);
        t->st.active_records++;
        f->records++;
        memset(f->d, 0, sizeof(f->d));
        f->interval_us = p->ts_us;
    }

    struct sn_flow_dir *fd = &f->d[d];
    fd->pkts++;
    fd->bytes += p->ip_len;
    fd->payload += p->payload_len;
    if (!fd->first_us)
        fd->first_us = p->ts_us;
    fd->last_us = p->ts_us;
    if (p->ts_us > f->last_us)
        f->last_us = p->ts_us;

    if (p->proto == 6) {
        fd->tcp_flags |= p->tcp_flags;
        if (p->tcp_flags & SN_TCP_FIN)
            f->fin[d] = true;
        if (p->tcp_flags & SN_TCP_RST)
            f->rst = true;
        if (!f->end_reason && (f->rst || (f->fin[0] && f->fin[1]))) {
            f->end_reason = closing_reason(f);
            list_unlink(t, f);
            list_append(t, f, L_CLOSING);
        }
    }
    return f;
}

void sn_flow_flush(struct sn_flow_table *t)
{
    /* Oldest activity first across both lists, so the order is the order flows went quiet. */
    for (;;) {
        struct sn_flow *a = t->lists[L_OPEN].head, *c = t->lists[L_CLOSING].head;
        if (!a && !c)
            break;
        struct sn_flow *f;
        if (a && c)
            f = c->last_us <= a->last_us ? c : a;
        else
            f = a ? a : c;
        end_flow(t, f, f->list == L_CLOSING ? closing_reason(f) : SN_FLOW_END_END);
    }
}

const struct sn_flow_stats *sn_flow_stats(const struct sn_flow_table *t)
{
    return &t->st;
}

uint32_t sn_flow_active(const struct sn_flow_table *t)
{
    return t->active;
}

const char *sn_flow_end_name(enum sn_flow_end why)
{
    static const char *const names[] = {"none", "fin", "rst", "idle", "active", "evicted", "end"};
    return (unsigned)why < sizeof(names) / sizeof(names[0]) ? names[why] : "none";
}

const char *sn_flow_proto_name(uint8_t proto, char *buf, size_t len)
{
    switch (proto) {
    case 6: return "tcp";
    case 17: return "udp";
    case 1: return "icmp";
    case 58: return "icmp6";
    case 132: return "sctp";
    case 47: return "gre";
    case 50: return "esp";
    default: break;
    }
    snprintf(buf, len, "%u", proto);
    return buf;
}
