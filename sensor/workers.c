#define SN_LOG_MOD "workers"
#include "workers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "addr.h"
#include "agg.h"
#include "config.h"
#include "cursor.h"
#include "decode.h"
#include "flow.h"
#include "err.h"
#include "log.h"
#include "pipeline.h"
#include "sink.h"
#include "json.h"

/* ---- packet rings (reader -> worker) ----
 *
 * A byte ring (a power of two in size, SN_WORKERS_DEFAULT_RING_BYTES unless a test asks for
 * less) holding entries: a header and the frame bytes, each padded to 8 bytes. An entry
 * never wraps: when it does not fit before the end of the buffer, the producer skips to the
 * start (with a PAD entry when a header fits there).
 * head/tail are byte positions that only grow; the producer publishes head every BATCH
 * entries (or before it could block), the consumer publishes tail likewise. Sleeping uses a
 * mutex and condition variables only when a ring is empty (worker) or full (reader).
 */
#define BATCH 64u
#define MERGE_EVERY 256u
/* A sleeping side is woken only once this much can be done (or at a flush point): fewer
 * futex calls than waking for every batch. */
#ifndef SN_WORKERS_WAKE_DIV
#define SN_WORKERS_WAKE_DIV 4
#endif
#define CACHELINE 64
#define HUGE_BYTES ((size_t)2 << 20) /* x86-64 huge page */

/* E_PKT: the frame follows the header; E_REF: the frame stays where the caller had it
 * (sn_workers_packet_ref), the entry holds a pointer. */
enum ent_kind { E_PKT = 1, E_REF, E_PAD, E_ADVANCE, E_RELOAD };

struct ent {
    uint32_t kind;
    uint32_t size; /* whole entry, padded */
    int32_t dlt;
    uint32_t caplen, wirelen;
    uint32_t pad_;
    int64_t ts_us;
    int64_t now_us; /* reader's clock before this packet */
    uint64_t ord;
    const uint8_t *ref; /* E_REF: the frame */
};

#define ORD_FINISH (UINT64_MAX - 1) /* records written at end of input */
#define ORD_STATS UINT64_MAX        /* the stats record: last */

/* ---- record queues (worker -> merger) ----
 *
 * A singly linked list of chunks. The worker appends records and publishes `used`; the
 * merger reads up to `used` and, once it has seen `next`, recycles the chunk. Chunks of the
 * standard size are recycled through a free list (a mutex per chunk, not per record).
 */
#define CHUNK_BYTES (256u << 10)

struct chunk {
    _Atomic(struct chunk *) next;
    _Atomic size_t used;
    size_t cap;
    alignas(8) uint8_t data[];
};

/* A queued record: this header, the key, SEQ_ROOM bytes, the data. The merger writes
 * ,"seq":N into the room by moving the data's short head ({"type":...,"schema":N) down in
 * front of it, instead of copying the whole record. */
struct rec {
    uint64_t ord;
    uint32_t type;
    uint32_t keylen;
    uint32_t len;
    uint32_t at; /* where "seq" goes: offset in the data, or NO_SEQ */
};

#define SEQ_ROOM 32u /* ,"seq": and at most 20 digits */
#define NO_SEQ UINT32_MAX

static size_t rec_size(const struct rec *h)
{
    return sizeof(*h) + ((h->keylen + SEQ_ROOM + h->len + 7u) & ~(size_t)7);
}

struct worker {
    /* reader side (producer of packets, consumer of records) */
    alignas(CACHELINE) uint64_t phead;  /* written up to here */
    uint64_t tail_cache;                /* last tail seen */
    unsigned pending;                   /* entries written, not yet published */
    uint64_t pend_first_ord;            /* ord of the first unpublished entry */
    uint64_t last_pub_ord;              /* ord of the last published entry */
    uint64_t last_wr_ord;               /* ord of the last written entry */
    uint64_t dispatched;                /* packets given to this worker */
    struct chunk *rchunk;               /* merger's read position */
    size_t rpos;
    uint8_t *pring;                     /* = ring, size (read here without touching the */
    size_t psize;                       /* worker's cache line) */

    /* shared */
    alignas(CACHELINE) _Atomic uint64_t head; /* published by the reader */
    alignas(CACHELINE) _Atomic uint64_t tail; /* published by the worker */
    _Atomic uint64_t done_ord;                /* last entry fully processed */
    alignas(CACHELINE) _Atomic int cons_sleeping, prod_sleeping;
    _Atomic bool closed; /* no more entries: finish */
    pthread_mutex_t mu;
    pthread_cond_t cv_cons, cv_prod;

    /* worker side */
    alignas(CACHELINE) uint64_t ctail;
    unsigned consumed; /* since the last tail publication */
    uint64_t cur_ord;  /* tag for records produced now */
    struct chunk *wchunk;

    uint8_t *ring;
    size_t size; /* of the ring: a power of two */
    struct sn_pipeline *p; /* NULL while the worker creates it (and if that failed) */
    char err[256];         /* why creating it failed */
    bool err_config;
    struct sn_sink collector;
    struct sn_workers *ws;
    unsigned idx;
    unsigned since_snap; /* packets since the last counters snapshot */

    /* The pipeline's counters as of the last snapshot, for /metrics and SIGUSR1 while the
     * worker runs: written by the worker under snap_mu (at clock broadcasts, reloads and
     * every SNAP_EVERY packets: never a lock per packet), read by the reader. */
    pthread_mutex_t snap_mu;
    struct sn_pipeline_counters *snap;
    pthread_t thr;
    bool started;
};

struct sn_workers {
    const struct sn_config *cfg;
    struct sn_config wcfg; /* the workers' pipelines' copy: cfg with flow_max split */
    struct sn_sink *sink;
    unsigned n;
    size_t ring_bytes; /* each worker's ring */
    struct sn_pipeline_opts popts;
    /* Pipelines 1..n-1 are created on their worker threads while the reader already reads,
     * one at a time (nDPI's set-up is not thread safe). Nothing is written until all exist:
     * should one fail (its files changed since pipeline 0 read them, out of memory), the
     * run ends with its error and no output. */
    pthread_mutex_t create_mu;
    _Atomic unsigned created; /* pipelines created or failed */
    _Atomic bool create_failed;
    bool all_created;         /* reader's copy: created == n, none failed */
    struct worker *w[SN_WORKERS_MAX];
    struct sn_pipeline *ps[SN_WORKERS_MAX];
    struct sn_decode dec; /* the reader's, for the packets sharding needs fully decoded (its
                             counters are not reported) */
    struct sn_flow_table *flows; /* the reader's, for flows with ambiguous ports only: which
                                    end is the client, as the workers will see it */
    unsigned prefix4, prefix6;
    uint64_t packets; /* read so far */
    uint64_t ord;     /* last ordinal given out */
    int64_t now_us;   /* highest packet time so far */
    unsigned since_merge;
    unsigned last_worker; /* the one that got the last packet */
    bool agg;             /* fingerprints on: window closes are broadcast */
    int64_t win_us, grace_us;
    int64_t close_key; /* align_down(now - grace - 1, window) at the last broadcast */
    bool refs;       /* packets of this input given by reference: drain at its end */
    uint64_t seq;    /* records written */
    uint64_t sink_errors;
    struct sn_pipeline_counters *sum; /* the reader's scratch for the workers' snapshots */
    bool finished;

    /* input/capture bookkeeping, applied to pipeline 0 at finish */
    struct {
        char path[256];
        int dlt;
        uint64_t packets;
        bool truncated;
        bool live;
        uint64_t recv, drop, ifdrop;
    } inputs[SN_CONFIG_MAX_INPUTS];
    unsigned n_inputs;
    bool live;
    uint64_t cap_recv, cap_drop, cap_ifdrop;

    /* free chunks */
    pthread_mutex_t free_mu;
    struct chunk *free_chunks;
};

/* ---- chunks ---- */

static struct chunk *chunk_get(struct sn_workers *ws, size_t need)
{
    struct chunk *c = NULL;
    if (need <= CHUNK_BYTES) {
        pthread_mutex_lock(&ws->free_mu);
        c = ws->free_chunks;
        if (c)
            ws->free_chunks = atomic_load_explicit(&c->next, memory_order_relaxed);
        pthread_mutex_unlock(&ws->free_mu);
    }
    size_t cap = need <= CHUNK_BYTES ? CHUNK_BYTES : need;
    if (!c) {
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
    }
    atomic_store_explicit(&c->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&c->used, 0, memory_order_relaxed);
    return c;
}

static void chunk_put(struct sn_workers *ws, struct chunk *c)
{
    if (c->cap != CHUNK_BYTES) {
        free(c);
        return;
    }
    pthread_mutex_lock(&ws->free_mu);
    atomic_store_explicit(&c->next, ws->free_chunks, memory_order_relaxed);
    ws->free_chunks = c;
    pthread_mutex_unlock(&ws->free_mu);
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* ---- collector sink: runs on the worker thread ---- */

static int coll_open(struct sn_sink *s, const struct sn_config *cfg)
{
    (void)s;
    (void)cfg;
    return 0;
}

static const char *seq_at(const char *data, size_t len);

static int coll_emit(struct sn_sink *s, const struct sn_record *r)
{
    struct worker *w = s->priv;
    size_t need = sizeof(struct rec) + align8(r->keylen + SEQ_ROOM + r->len);
    struct chunk *c = w->wchunk;
    size_t used = atomic_load_explicit(&c->used, memory_order_relaxed);
    if (c->cap - used < need) {
        struct chunk *nc = chunk_get(w->ws, need);
        if (!nc) /* the pipeline counts it in its sink errors */
            return SN_ERR(ENOMEM, "out of memory queueing a record");
        atomic_store_explicit(&c->next, nc, memory_order_release);
        w->wchunk = c = nc;
        used = 0;
    }
    const char *at = seq_at(r->data, r->len); /* found here, in parallel, not by the merger */
    struct rec h = {.ord = w->cur_ord, .type = (uint32_t)r->type, .keylen = (uint32_t)r->keylen,
                    .len = (uint32_t)r->len, .at = at ? (uint32_t)(at - r->data) : NO_SEQ};
    uint8_t *d = c->data + used;
    memcpy(d, &h, sizeof(h));
    if (r->keylen)
        memcpy(d + sizeof(h), r->key, r->keylen);
    memcpy(d + sizeof(h) + r->keylen + SEQ_ROOM, r->data, r->len);
    atomic_store_explicit(&c->used, used + need, memory_order_release);
    return 0;
}

static int coll_flush(struct sn_sink *s, int timeout_ms)
{
    (void)s;
    (void)timeout_ms;
    return 0;
}

static void coll_close(struct sn_sink *s)
{
    (void)s;
}

static const struct sn_sink_ops collector_ops = {
    .name = "collector", .open = coll_open, .emit = coll_emit, .flush = coll_flush,
    .close = coll_close};

/* ---- worker thread ---- */

/* Packets between two counter snapshots when no broadcast comes (a replay without
 * fingerprints): a fast replay refreshes them many times a second. */
#define SNAP_EVERY 65536u

static void snapshot(struct worker *w)
{
    w->since_snap = 0;
    pthread_mutex_lock(&w->snap_mu);
    sn_pipeline_counters_take(w->p, w->snap);
    pthread_mutex_unlock(&w->snap_mu);
}

static void wake(pthread_mutex_t *mu, pthread_cond_t *cv, _Atomic int *sleeping)
{
    if (atomic_load(sleeping)) {
        pthread_mutex_lock(mu);
        pthread_cond_signal(cv);
        pthread_mutex_unlock(mu);
    }
}

/* idle: the ring is empty (always wake a waiting reader). */
static void publish_tail(struct worker *w, uint64_t last_ord, bool idle)
{
    atomic_store_explicit(&w->done_ord, last_ord, memory_order_release);
    atomic_store(&w->tail, w->ctail);
    w->consumed = 0;
    if (idle || w->size - (atomic_load_explicit(&w->head, memory_order_relaxed) - w->ctail) >=
                    w->size / 4)
        wake(&w->mu, &w->cv_prod, &w->prod_sleeping);
}

/* Creates the worker's pipeline on its own thread (its memory then comes from this thread's
 * malloc arena too). */
static void worker_create(struct worker *w)
{
    struct sn_workers *ws = w->ws;
    bool is_config;
    pthread_mutex_lock(&ws->create_mu);
    struct sn_pipeline *p = sn_pipeline_new_opts(&ws->wcfg, &w->collector, &ws->popts, &is_config);
    pthread_mutex_unlock(&ws->create_mu);
    if (!p) {
        snprintf(w->err, sizeof(w->err), "%s", sn_err_last());
        w->err_config = is_config;
        atomic_store(&ws->create_failed, true);
    }
    w->p = ws->ps[w->idx] = p; /* read by the reader after the join */
    if (p)
        snapshot(w);
    atomic_fetch_add_explicit(&ws->created, 1, memory_order_release);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t last_ord = 0;
    uint64_t head = 0;
    if (!w->p)
        worker_create(w);
    for (;;) {
        if (w->ctail == head) {
            head = atomic_load_explicit(&w->head, memory_order_acquire);
            if (w->ctail == head) {
                publish_tail(w, last_ord, true);
                pthread_mutex_lock(&w->mu);
                atomic_store(&w->cons_sleeping, 1);
                while (atomic_load(&w->head) == w->ctail && !atomic_load(&w->closed))
                    pthread_cond_wait(&w->cv_cons, &w->mu);
                atomic_store(&w->cons_sleeping, 0);
                pthread_mutex_unlock(&w->mu);
                head = atomic_load_explicit(&w->head, memory_order_acquire);
                if (w->ctail == head)
                    break; /* closed and drained */
            }
        }
        size_t off = (size_t)(w->ctail & (w->size - 1));
        size_t rem = w->size - off;
        if (rem < sizeof(struct ent)) {
            w->ctail += rem;
            continue;
        }
        struct ent e;
        memcpy(&e, w->ring + off, sizeof(e));
        switch (w->p ? e.kind : E_PAD) { /* no pipeline: the run fails, skip everything */
        case E_PKT:
        case E_REF: {
            const uint8_t *frame = e.kind == E_REF ? e.ref : w->ring + off + sizeof(e);
            w->cur_ord = e.ord;
            sn_pipeline_advance(w->p, e.now_us);
            sn_pipeline_packet(w->p, e.dlt, frame, e.caplen, e.wirelen, e.ts_us);
            if (++w->since_snap >= SNAP_EVERY)
                snapshot(w);
            break;
        }
        case E_ADVANCE:
            w->cur_ord = e.ord;
            sn_pipeline_advance(w->p, e.now_us);
            snapshot(w);
            break;
        case E_RELOAD:
            w->cur_ord = e.ord;
            sn_pipeline_reload(w->p);
            snapshot(w);
            break;
        default: /* E_PAD */
            break;
        }
        if (e.kind != E_PAD)
            last_ord = e.ord;
        w->ctail += e.size;
        if (++w->consumed >= BATCH)
            publish_tail(w, last_ord, false);
    }
    w->cur_ord = ORD_FINISH;
    if (w->p)
        sn_pipeline_finish_records(w->p);
    publish_tail(w, ORD_FINISH, true);
    return NULL;
}

/* ---- reader side ---- */

/* force: wake a sleeping worker whatever the backlog (end of input, ticks, ring full). */
static void publish_head(struct worker *w, bool force)
{
    if (w->pending) {
        w->last_pub_ord = w->last_wr_ord;
        w->pend_first_ord = 0;
        w->pending = 0;
        atomic_store(&w->head, w->phead);
    }
    if (force || w->phead - atomic_load_explicit(&w->tail, memory_order_relaxed) >=
                     w->psize / SN_WORKERS_WAKE_DIV)
        wake(&w->mu, &w->cv_cons, &w->cons_sleeping);
}

/* Room for an entry of `size` bytes (header included) at the producer position; skips to
 * the start of the buffer when it does not fit before the end. Waits while the ring is
 * full. Returns where to write. */
static uint8_t *reserve(struct worker *w, size_t size)
{
    size_t off = (size_t)(w->phead & (w->psize - 1));
    size_t rem = w->psize - off;
    size_t skip = rem < size ? rem : 0;
    uint64_t need_end = w->phead + skip + size;
    if (need_end - w->tail_cache > w->psize) {
        w->tail_cache = atomic_load_explicit(&w->tail, memory_order_acquire);
        if (need_end - w->tail_cache > w->psize) {
            /* About to wait for this worker: first hand every worker what is queued for it,
             * so that none sleeps with work waiting meanwhile. */
            for (unsigned i = 0; i < w->ws->n; i++)
                publish_head(w->ws->w[i], true);
            pthread_mutex_lock(&w->mu);
            atomic_store(&w->prod_sleeping, 1);
            while (need_end - (w->tail_cache = atomic_load(&w->tail)) > w->psize)
                pthread_cond_wait(&w->cv_prod, &w->mu);
            atomic_store(&w->prod_sleeping, 0);
            pthread_mutex_unlock(&w->mu);
        }
    }
    if (skip) {
        if (skip >= sizeof(struct ent)) {
            struct ent pad = {.kind = E_PAD, .size = (uint32_t)skip};
            memcpy(w->pring + off, &pad, sizeof(pad));
        }
        w->phead += skip;
    }
    return w->pring + (size_t)(w->phead & (w->psize - 1));
}

/* The entry, then (E_PKT) the frame's caplen bytes from data. */
static void put_entry(struct worker *w, const struct ent *e, const uint8_t *data)
{
    uint8_t *dst = reserve(w, e->size);
    memcpy(dst, e, sizeof(*e));
    if (e->kind == E_PKT && e->caplen)
        memcpy(dst + sizeof(*e), data, e->caplen);
    w->phead += e->size;
    if (!w->pending++)
        w->pend_first_ord = e->ord;
    w->last_wr_ord = e->ord;
    if (w->pending >= BATCH)
        publish_head(w, false);
}

/* Waits until worker w has consumed everything published (its ring is empty). */
static void drain(struct worker *w)
{
    if (atomic_load_explicit(&w->tail, memory_order_acquire) == w->phead)
        return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->prod_sleeping, 1);
    while ((w->tail_cache = atomic_load(&w->tail)) != w->phead)
        pthread_cond_wait(&w->cv_prod, &w->mu);
    atomic_store(&w->prod_sleeping, 0);
    pthread_mutex_unlock(&w->mu);
}

/* Everything worker w can still produce has an ordinal above the returned one. */
static uint64_t low_mark(const struct sn_workers *ws, const struct worker *w)
{
    uint64_t done = atomic_load_explicit(&w->done_ord, memory_order_acquire);
    if (done == ORD_FINISH)
        return ORD_STATS;
    if (done != w->last_pub_ord)
        return done; /* still working on published entries */
    if (w->pending)
        return w->pend_first_ord - 1;
    return ws->ord; /* caught up: later entries get later ordinals */
}

/* The next record of worker w's queue, or NULL. */
static struct rec *peek(struct sn_workers *ws, struct worker *w)
{
    for (;;) {
        struct chunk *c = w->rchunk;
        size_t used = atomic_load_explicit(&c->used, memory_order_acquire);
        if (w->rpos < used)
            return (struct rec *)(c->data + w->rpos);
        struct chunk *nx = atomic_load_explicit(&c->next, memory_order_acquire);
        if (!nx)
            return NULL;
        /* the worker wrote all of c before linking nx */
        used = atomic_load_explicit(&c->used, memory_order_acquire);
        if (w->rpos < used)
            continue;
        w->rchunk = nx;
        w->rpos = 0;
        chunk_put(ws, c);
    }
}

/* Where "seq" goes: after "schema":N, where a single pipeline writes it. Records begin
 * {"type":"<name>","schema":N (pipeline.c), so look there first; a name holds no quote, so
 * this is the first "schema": as a search would find it. NULL: no such member. */
static const char *seq_at(const char *data, size_t len)
{
    static const char head[] = "{\"type\":\"", pat[] = "\"schema\":";
    size_t scan = len < 96 ? len : 96;
    const char *sch = NULL;
    if (scan > sizeof(head) - 1 && memcmp(data, head, sizeof(head) - 1) == 0) {
        const char *q = memchr(data + sizeof(head) - 1, '"', scan - (sizeof(head) - 1));
        if (q && (size_t)(data + scan - q) >= sizeof(pat) + 1 && q[1] == ',' &&
            memcmp(q + 2, pat, sizeof(pat) - 1) == 0)
            sch = q + 2;
    }
    if (!sch)
        sch = memmem(data, scan, pat, sizeof(pat) - 1);
    if (!sch)
        return NULL;
    const char *at = sch + sizeof(pat) - 1;
    while (at < data + len && *at >= '0' && *at <= '9')
        at++;
    return at;
}

/* ,"seq":N into buf (at least 28 bytes); returns its length. */
static size_t fmt_seq(char *buf, uint64_t v)
{
    memcpy(buf, ",\"seq\":", 7);
    return (size_t)(sn_json_put_u64(buf + 7, v) - buf);
}

/* The record (the merger owns its bytes now: the worker never touches them again). */
static void write_record(struct sn_workers *ws, struct rec *h)
{
    char *key = (char *)(h + 1);
    char *data = key + h->keylen + SEQ_ROOM;
    ws->seq++;
    const char *out = data;
    size_t olen = h->len;
    if (h->at != NO_SEQ) {
        char num[32];
        size_t nl = fmt_seq(num, ws->seq); /* <= SEQ_ROOM */
        char *start = data - nl;
        memmove(start, data, h->at);
        memcpy(start + h->at, num, nl);
        out = start;
        olen += nl;
    }
    struct sn_record r = {.type = (enum sn_rec_type)h->type, .key = h->keylen ? key : NULL,
                          .keylen = h->keylen, .data = out, .len = olen, .seq = ws->seq};
    if (ws->sink->ops->emit(ws->sink, &r)) {
        ws->sink_errors++;
        sn_log_ratelimited(SN_LOG_ERROR, "%s", sn_err_last());
    }
}

/* Writes, in (ordinal, worker) order, every queued record whose ordinal is <= bound. */
static void merge_upto(struct sn_workers *ws, uint64_t bound)
{
    struct rec *heads[SN_WORKERS_MAX];
    for (unsigned i = 0; i < ws->n; i++)
        heads[i] = peek(ws, ws->w[i]);
    for (;;) {
        int best = -1;
        for (unsigned i = 0; i < ws->n; i++)
            if (heads[i] && heads[i]->ord <= bound &&
                (best < 0 || heads[i]->ord < heads[best]->ord))
                best = (int)i;
        if (best < 0)
            return;
        struct worker *w = ws->w[best];
        struct rec *h = heads[best];
        w->rpos += rec_size(h);
        write_record(ws, h);
        heads[best] = peek(ws, w);
    }
}

static void merge_ready(struct sn_workers *ws)
{
    if (!ws->all_created) {
        if (atomic_load_explicit(&ws->created, memory_order_acquire) < ws->n ||
            atomic_load(&ws->create_failed))
            return;
        ws->all_created = true;
    }
    uint64_t bound = UINT64_MAX;
    for (unsigned i = 0; i < ws->n; i++) {
        uint64_t lo = low_mark(ws, ws->w[i]);
        if (lo < bound)
            bound = lo;
    }
    if (bound >= ORD_FINISH)
        bound = ORD_FINISH - 1; /* end-of-input records only once all are in (finish) */
    merge_upto(ws, bound);
}

/* ---- shard ---- */

static uint32_t hash_addr(const struct sn_addr *a)
{
    /* FNV-1a over the family and address bytes, then a final mix. */
    uint32_t h = 2166136261u ^ a->family;
    size_t n = a->family == 4 ? 4 : 16;
    for (size_t i = 0; i < n; i++) {
        h ^= a->a[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x45d9f3bu;
    h ^= h >> 16;
    return h;
}

/* The worker of a client address: the hash of the address (masked to the client prefix). */
static unsigned shard_client(const struct sn_addr *c, unsigned prefix4, unsigned prefix6,
                             unsigned n)
{
    unsigned bits = c->family == 4 ? prefix4 : prefix6;
    if (bits >= (c->family == 4 ? 32u : 128u))
        return hash_addr(c) % n;
    struct sn_addr k = *c;
    sn_addr_mask(&k, bits);
    return hash_addr(&k) % n;
}

unsigned sn_workers_shard(const struct sn_addr *src, uint16_t sport, const struct sn_addr *dst,
                          uint16_t dport, unsigned prefix4, unsigned prefix6, unsigned n)
{
    if (n <= 1)
        return 0;
    const struct sn_addr *c;
    if (sport != dport)
        c = sport > dport ? src : dst;
    else
        c = sn_addr_cmp(src, dst) <= 0 ? src : dst;
    return shard_client(c, prefix4, prefix6, n);
}

/* The client of the common packet without a full decode (decode.c's walk for the same
 * bytes names the same addresses and ports): Ethernet II with at most two VLAN tags, Linux
 * cooked (SLL, SLL2) or raw IP; IPv4 unfragmented, or IPv6 with TCP or UDP as the first
 * next header; TCP or UDP with exactly one port below 1024 (the other side is the client,
 * as sn_workers_shard decides); UDP not to or from a tunnel port decode.c enters (VXLAN
 * 4789, VXLAN-GPE 4790, GENEVE 6081, GTP-U 2152). Returns false for anything else, which
 * takes the full decode. A frame decode.c would refuse (a lying length, say) may get a
 * worker here: it is counted there and makes no flow, whichever worker it is. */
bool sn_workers_quick_client(int dlt, const uint8_t *data, uint32_t caplen,
                             struct sn_addr *client)
{
    struct sn_cur c = sn_cur_make(data, caplen);
    uint16_t etype;
    switch (dlt) {
    case 1: /* IEEE 802.3: dst 6 | src 6 | type 2, then 802.1Q tags TPID 2 | TCI 2 */
        sn_cur_skip(&c, 12);
        etype = sn_cur_u16(&c);
        for (int tags = 0; tags < 2 && (etype == 0x8100 || etype == 0x88A8 ||
                                        etype == 0x9100 || etype == 0x9200);
             tags++) {
            sn_cur_skip(&c, 2);
            etype = sn_cur_u16(&c);
        }
        break;
    case 113: /* Linux SLL: pkttype 2 | hatype 2 | halen 2 | addr 8 | protocol 2 */
        sn_cur_skip(&c, 14);
        etype = sn_cur_u16(&c);
        break;
    case 276: /* Linux SLL2: protocol 2 | reserved 2 | ifindex 4 | hatype 2 | pkttype 1 |
                 halen 1 | addr 8 */
        etype = sn_cur_u16(&c);
        sn_cur_skip(&c, 18);
        break;
    case 12:
    case 14:
    case 101: { /* raw IP: the version nibble */
        uint8_t v = 0;
        sn_cur_peek8(&c, 0, &v);
        etype = v >> 4 == 4 ? 0x0800 : v >> 4 == 6 ? 0x86DD : 0;
        break;
    }
    case 228:
        etype = 0x0800;
        break;
    case 229:
        etype = 0x86DD;
        break;
    default:
        return false;
    }
    const uint8_t *src, *dst;
    uint8_t proto, fam;
    if (etype == 0x0800) {
        /* RFC 791: Version 4 | IHL 4 | TOS 8 | Total Length 16 | Identification 16 |
         * Flags 3 | Fragment Offset 13 | TTL 8 | Protocol 8 | Checksum 16 | Source 32 |
         * Destination 32 | Options */
        uint8_t vihl = sn_cur_u8(&c);
        sn_cur_skip(&c, 5);
        uint16_t fo = sn_cur_u16(&c);
        sn_cur_skip(&c, 1);
        proto = sn_cur_u8(&c);
        sn_cur_skip(&c, 2);
        src = sn_cur_take(&c, 4);
        dst = sn_cur_take(&c, 4);
        unsigned ihl = (vihl & 0x0Fu) * 4;
        if (c.err || vihl >> 4 != 4 || ihl < 20 || (fo & 0x3FFFu))
            return false; /* fragments: only the first has ports */
        sn_cur_skip(&c, ihl - 20);
        fam = 4;
    } else if (etype == 0x86DD) {
        /* RFC 8200: Version 4 | Traffic Class 8 | Flow Label 20 | Payload Length 16 |
         * Next Header 8 | Hop Limit 8 | Source 128 | Destination 128 */
        uint8_t v = sn_cur_u8(&c);
        sn_cur_skip(&c, 5);
        proto = sn_cur_u8(&c);
        sn_cur_skip(&c, 1);
        src = sn_cur_take(&c, 16);
        dst = sn_cur_take(&c, 16);
        if (c.err || v >> 4 != 6)
            return false;
        fam = 6;
    } else {
        return false;
    }
    if (proto != 6 && proto != 17)
        return false;
    /* TCP, UDP: Source Port 16 | Destination Port 16 */
    uint16_t sport = sn_cur_u16(&c);
    uint16_t dport = sn_cur_u16(&c);
    if (c.err || (sport < 1024) == (dport < 1024))
        return false;
    if (proto == 17) {
        for (unsigned i = 0; i < 2; i++) {
            uint16_t port = i ? sport : dport;
            if (port == 4789 || port == 4790 || port == 6081 || port == 2152)
                return false;
        }
    }
    const uint8_t *a = sport > dport ? src : dst;
    client->family = fam;
    memset(client->a, 0, sizeof(client->a));
    if (fam == 4)
        memcpy(client->a, a, 4);
    else
        memcpy(client->a, a, 16);
    return true;
}

static unsigned pick(struct sn_workers *ws, int dlt, const uint8_t *data, uint32_t caplen,
                     uint32_t wirelen, int64_t ts_us)
{
    struct sn_addr client;
    if (sn_workers_quick_client(dlt, data, caplen, &client))
        return shard_client(&client, ws->prefix4, ws->prefix6, ws->n);
    struct sn_pkt pkt;
    if (sn_decode_packet(&ws->dec, dlt, data, caplen, wirelen, ts_us, &pkt) != SN_DEC_OK)
        return 0; /* not a flow: counted by worker 0's decoder */
    if ((pkt.sport < 1024) == (pkt.dport < 1024)) {
        /* Ambiguous ports (both below 1024 or both not, or none: ICMP, non-first fragments):
         * the client is the SYN or first sender (flow.h), which only a flow table knows.
         * Such flows carry a small share of the traffic, so the reader keeps a table for
         * them (as many flows as all workers' tables together, the same timeouts: it
         * forgets a flow no sooner than the worker that has it). With
         * one port below 1024, the other side is the client (flow.h's rule for UDP and for
         * TCP flows first seen mid-stream; almost always the SYN sender too). */
        int dir;
        bool is_new;
        sn_flow_expire(ws->flows, ws->now_us, 0);
        struct sn_flow *f = sn_flow_packet(ws->flows, &pkt, &dir, &is_new);
        if (f)
            return shard_client(&f->client, ws->prefix4, ws->prefix6, ws->n);
    }
    return sn_workers_shard(&pkt.src, pkt.sport, &pkt.dst, pkt.dport, ws->prefix4, ws->prefix6,
                            ws->n);
}

/* ---- API ---- */

static void broadcast(struct sn_workers *ws, enum ent_kind kind, int64_t now_us, int skip);

static int64_t floor_to(int64_t t, int64_t w)
{
    int64_t r = t % w;
    return t - (r < 0 ? r + w : r);
}

/* A ring on huge pages where the kernel offers them (transparent huge pages in "madvise"
 * mode): a 16 MB ring is then 8 page faults instead of 4096, and the reader's writes and
 * the worker's reads miss the TLB less. Advice only: without it the ring works the same. */
static uint8_t *ring_alloc(size_t bytes)
{
    size_t align = bytes < HUGE_BYTES ? bytes : HUGE_BYTES;
    uint8_t *r = aligned_alloc(align, bytes);
#ifdef MADV_HUGEPAGE
    if (r && bytes >= HUGE_BYTES)
        (void)madvise(r, bytes, MADV_HUGEPAGE);
#endif
    return r;
}

static void worker_free(struct worker *w)
{
    if (!w)
        return;
    sn_pipeline_free(w->p);
    /* the read and write chunk lists are one list from rchunk on */
    struct chunk *c = w->rchunk;
    while (c) {
        struct chunk *nx = atomic_load(&c->next);
        free(c);
        c = nx;
    }
    free(w->ring);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->snap_mu);
    sn_pipeline_counters_free(w->snap);
    pthread_cond_destroy(&w->cv_cons);
    pthread_cond_destroy(&w->cv_prod);
    free(w);
}

static void stop_threads(struct sn_workers *ws)
{
    for (unsigned i = 0; i < ws->n; i++) {
        struct worker *w = ws->w[i];
        if (!w || !w->started)
            continue;
        publish_head(w, false);
        pthread_mutex_lock(&w->mu);
        atomic_store(&w->closed, true);
        pthread_cond_signal(&w->cv_cons);
        pthread_mutex_unlock(&w->mu);
    }
    for (unsigned i = 0; i < ws->n; i++) {
        struct worker *w = ws->w[i];
        if (w && w->started) {
            pthread_join(w->thr, NULL);
            w->started = false;
        }
    }
}

struct sn_workers *sn_workers_new(const struct sn_config *cfg, struct sn_sink *sink, unsigned n,
                                  bool *is_config)
{
    return sn_workers_new_opts(cfg, sink, n, NULL, is_config);
}

struct sn_workers *sn_workers_new_opts(const struct sn_config *cfg, struct sn_sink *sink,
                                       unsigned n, const struct sn_workers_opts *opts,
                                       bool *is_config)
{
    *is_config = false;
    if (n < 2 || n > SN_WORKERS_MAX) {
        *is_config = true;
        SN_ERR(SN_ECONFIG, "--workers: %u is not in 2..%u", n, SN_WORKERS_MAX);
        return NULL;
    }
    struct sn_workers *ws = calloc(1, sizeof(*ws));
    if (!ws) {
        SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ws->free_mu, NULL);
    pthread_mutex_init(&ws->create_mu, NULL);
    ws->ring_bytes = opts && opts->refs ? SN_WORKERS_REF_RING_BYTES : SN_WORKERS_DEFAULT_RING_BYTES;
    if (opts && opts->ring_bytes) {
        /* a power of two, at least the minimum (which holds 4 largest snaplen frames) */
        ws->ring_bytes = SN_WORKERS_MIN_RING_BYTES;
        while (ws->ring_bytes < opts->ring_bytes && ws->ring_bytes < SN_WORKERS_DEFAULT_RING_BYTES)
            ws->ring_bytes <<= 1;
    }
    size_t ring_bytes = ws->ring_bytes;
    ws->cfg = cfg;
    ws->sink = sink;
    sn_decode_init(&ws->dec);
    ws->prefix4 = ws->prefix6 = 128;
    enum sn_client_key ck;
    if (sn_agg_parse_client_key(cfg->client_key, &ck) == 0 && ck == SN_CLIENT_PREFIX) {
        ws->prefix4 = cfg->client_prefix4 ? cfg->client_prefix4 : SN_AGG_DEFAULT_PREFIX4;
        ws->prefix6 = cfg->client_prefix6 ? cfg->client_prefix6 : SN_AGG_DEFAULT_PREFIX6;
    }
    if (!cfg->no_fingerprints) {
        /* the window and grace as agg.c takes them */
        unsigned win = cfg->window ? cfg->window : SN_AGG_DEFAULT_WINDOW_S;
        unsigned grace = cfg->window_grace >= win ? win - 1 : cfg->window_grace;
        ws->agg = true;
        ws->win_us = (int64_t)win * 1000000;
        ws->grace_us = (int64_t)grace * 1000000;
        ws->close_key = INT64_MIN;
    }
    struct sn_flow_cfg fc = {.max = cfg->flow_max,
                             .idle_s = cfg->flow_idle_timeout,
                             .active_s = cfg->flow_active_timeout,
                             .vlan_key = cfg->flow_vlan_key};
    if (!(ws->flows = sn_flow_table_new(&fc)))
        goto fail;
    /* The workers share the flow budget: n tables of flow_max / n flows hold as many
     * flows as one pipeline (and take its memory), not n times as many. */
    ws->wcfg = *cfg;
    unsigned fmax = cfg->flow_max ? cfg->flow_max : SN_FLOW_DEFAULT_MAX;
    ws->wcfg.flow_max = (fmax + n - 1) / n;
    ws->popts.no_seq = true;
    for (unsigned i = 0; i < n; i++) {
        struct worker *w =
            aligned_alloc(CACHELINE, (sizeof(*w) + CACHELINE - 1) & ~(size_t)(CACHELINE - 1));
        if (!w)
            goto nomem;
        memset(w, 0, sizeof(*w));
        ws->w[i] = w;
        ws->n = i + 1;
        pthread_mutex_init(&w->mu, NULL);
        pthread_mutex_init(&w->snap_mu, NULL);
        pthread_cond_init(&w->cv_cons, NULL);
        pthread_cond_init(&w->cv_prod, NULL);
        w->ws = ws;
        w->idx = i;
        w->size = w->psize = ring_bytes;
        w->ring = w->pring = ring_alloc(ring_bytes);
        w->wchunk = w->rchunk = chunk_get(ws, CHUNK_BYTES);
        w->snap = sn_pipeline_counters_new();
        if (!w->ring || !w->wchunk || !w->snap)
            goto nomem;
        w->collector.ops = &collector_ops;
        w->collector.priv = w;
    }
    if (!(ws->sum = sn_pipeline_counters_new()))
        goto nomem;
    /* Pipeline 0 here, before any thread runs: a bad rules, protos or geo file is reported
     * by the caller before anything is read. Each other worker creates its own on its
     * thread (worker_create), one after the other, while the reader already fills the
     * rings and worker 0 works: their set-up (nDPI's, some 25 ms each) is off the critical
     * path. */
    struct worker *w0 = ws->w[0];
    w0->p = ws->ps[0] = sn_pipeline_new_opts(&ws->wcfg, &w0->collector, &ws->popts, is_config);
    if (!w0->p)
        goto fail;
    sn_pipeline_counters_take(w0->p, w0->snap); /* zeroes, before the thread runs */
    atomic_store(&ws->created, 1);
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = ws->w[i];
        int rc = pthread_create(&w->thr, NULL, worker_main, w);
        if (rc) {
            SN_ERR(rc, "pthread_create: %s", strerror(rc));
            goto fail;
        }
        w->started = true;
        /* "top -H" and perf tell the workers apart (at most 15 characters) */
        char name[16];
        snprintf(name, sizeof(name), "spanprint-w%u", i % SN_WORKERS_MAX); /* i < 64 */
        pthread_setname_np(w->thr, name);
    }
    return ws;
nomem:
    SN_ERR(ENOMEM, "out of memory (%u workers)", n);
fail:
    sn_workers_free(ws);
    return NULL;
}

void sn_workers_free(struct sn_workers *ws)
{
    if (!ws)
        return;
    stop_threads(ws);
    for (unsigned i = 0; i < ws->n; i++)
        worker_free(ws->w[i]);
    struct chunk *c = ws->free_chunks;
    while (c) {
        struct chunk *nx = atomic_load(&c->next);
        free(c);
        c = nx;
    }
    pthread_mutex_destroy(&ws->free_mu);
    pthread_mutex_destroy(&ws->create_mu);
    sn_flow_table_free(ws->flows);
    sn_pipeline_counters_free(ws->sum);
    free(ws);
}

static void dispatch(struct sn_workers *ws, int dlt, const uint8_t *data, uint32_t caplen,
                     uint32_t wirelen, int64_t ts_us, bool ref)
{
    if (!ref && caplen > ws->ring_bytes / 4)
        caplen = (uint32_t)(ws->ring_bytes / 4); /* never: snaplen is at most 262144 */
    ws->packets++;
    unsigned i = pick(ws, dlt, data, caplen, wirelen, ts_us);
    struct worker *w = ws->w[i];
    ws->last_worker = i;
    struct ent e = {.kind = ref ? E_REF : E_PKT,
                    .size = (uint32_t)align8(sizeof(struct ent) + (ref ? 0 : caplen)),
                    .dlt = dlt,
                    .caplen = caplen,
                    .wirelen = wirelen,
                    .ts_us = ts_us,
                    .now_us = ws->now_us,
                    .ord = ++ws->ord,
                    .ref = ref ? data : NULL};
    bool moved = ts_us > ws->now_us;
    if (moved)
        ws->now_us = ts_us;
    w->dispatched++;
    put_entry(w, &e, data);
    /* A single pipeline closes fingerprint windows at the first packet past end + grace,
     * after that packet's flow timeouts and before later ones: so must every worker, or a
     * flow timing out just after a close would settle differently. The packet's own worker
     * does it while processing it; the others get the clock now. */
    if (moved && ws->agg) {
        int64_t key = floor_to(ws->now_us - ws->grace_us - 1, ws->win_us);
        if (key > ws->close_key) {
            bool first = ws->close_key == INT64_MIN;
            ws->close_key = key;
            if (!first)
                broadcast(ws, E_ADVANCE, ws->now_us, (int)i);
        }
    }
    if (++ws->since_merge >= MERGE_EVERY) {
        ws->since_merge = 0;
        merge_ready(ws);
    }
}

void sn_workers_packet(struct sn_workers *ws, int dlt, const uint8_t *data, uint32_t caplen,
                       uint32_t wirelen, int64_t ts_us)
{
    dispatch(ws, dlt, data, caplen, wirelen, ts_us, false);
}

void sn_workers_packet_ref(struct sn_workers *ws, int dlt, const uint8_t *data, uint32_t caplen,
                           uint32_t wirelen, int64_t ts_us)
{
    ws->refs = true;
    dispatch(ws, dlt, data, caplen, wirelen, ts_us, true);
}

const uint8_t *sn_workers_oldest_ref(const struct sn_workers *ws)
{
    const uint8_t *oldest = NULL;
    for (unsigned i = 0; i < ws->n; i++) {
        const struct worker *w = ws->w[i];
        /* The worker may still read every entry from its tail on (the one at the tail may
         * be in use now); the reader wrote them and does not overwrite them before the tail
         * passes, so it can read them back. The first E_REF among them is its oldest. */
        uint64_t t = atomic_load_explicit(&w->tail, memory_order_acquire);
        while (t != w->phead) {
            size_t off = (size_t)(t & (w->psize - 1));
            size_t rem = w->psize - off;
            if (rem < sizeof(struct ent)) {
                t += rem;
                continue;
            }
            struct ent e;
            memcpy(&e, w->pring + off, sizeof(e));
            if (e.kind == E_REF) {
                if (!oldest || (uintptr_t)e.ref < (uintptr_t)oldest)
                    oldest = e.ref;
                break;
            }
            t += e.size;
        }
    }
    return oldest;
}

/* An entry for every worker except `skip` (-1: none). */
static void broadcast(struct sn_workers *ws, enum ent_kind kind, int64_t now_us, int skip)
{
    uint64_t ord = ++ws->ord;
    for (unsigned i = 0; i < ws->n; i++) {
        if ((int)i == skip)
            continue;
        struct ent e = {.kind = kind, .size = sizeof(struct ent), .now_us = now_us, .ord = ord};
        put_entry(ws->w[i], &e, NULL);
        publish_head(ws->w[i], true);
    }
    merge_ready(ws);
}

void sn_workers_tick(struct sn_workers *ws, int64_t now_us)
{
    if (now_us > ws->now_us)
        ws->now_us = now_us;
    broadcast(ws, E_ADVANCE, ws->now_us, -1);
}

void sn_workers_reload(struct sn_workers *ws)
{
    broadcast(ws, E_RELOAD, ws->now_us, -1);
}

void sn_workers_capture_stats(struct sn_workers *ws, uint64_t recv, uint64_t drop,
                              uint64_t ifdrop)
{
    ws->live = true;
    ws->cap_recv = recv;
    ws->cap_drop = drop;
    ws->cap_ifdrop = ifdrop;
}

void sn_workers_input_begin(struct sn_workers *ws, const char *path, int dlt)
{
    if (ws->n_inputs >= sizeof(ws->inputs) / sizeof(ws->inputs[0]))
        return;
    snprintf(ws->inputs[ws->n_inputs].path, sizeof(ws->inputs[0].path), "%s", path);
    ws->inputs[ws->n_inputs].dlt = dlt;
    ws->inputs[ws->n_inputs].packets = 0;
    ws->inputs[ws->n_inputs].truncated = false;
    ws->n_inputs++;
}

void sn_workers_input_end(struct sn_workers *ws, uint64_t packets, bool truncated)
{
    if (!ws->n_inputs)
        return;
    ws->inputs[ws->n_inputs - 1].packets = packets;
    ws->inputs[ws->n_inputs - 1].truncated = truncated;
    for (unsigned i = 0; i < ws->n; i++)
        publish_head(ws->w[i], true);
    if (ws->refs) {
        /* The input's packet bytes may go away after this returns (its capture closes):
         * wait until every worker has consumed every entry. */
        for (unsigned i = 0; i < ws->n; i++)
            drain(ws->w[i]);
        ws->refs = false;
    }
}

void sn_workers_input_capture(struct sn_workers *ws, uint64_t recv, uint64_t drop,
                              uint64_t ifdrop)
{
    if (!ws->n_inputs)
        return;
    ws->inputs[ws->n_inputs - 1].live = true;
    ws->inputs[ws->n_inputs - 1].recv = recv;
    ws->inputs[ws->n_inputs - 1].drop = drop;
    ws->inputs[ws->n_inputs - 1].ifdrop = ifdrop;
}

void sn_workers_finish(struct sn_workers *ws)
{
    if (ws->finished)
        return;
    /* A single pipeline's last packet ended the flows past their timeout at the latest
     * packet time (before it was counted): do the same in every other worker. */
    if (ws->ord)
        broadcast(ws, E_ADVANCE, ws->now_us, (int)ws->last_worker);
    stop_threads(ws); /* each worker drains its ring, then ends its flows and windows */
    if (atomic_load(&ws->create_failed))
        return; /* nothing written (sn_workers_failed says why) */
    merge_upto(ws, ORD_FINISH);
    struct sn_pipeline *p0 = ws->ps[0];
    for (unsigned i = 0; i < ws->n_inputs; i++) {
        sn_pipeline_input_begin(p0, ws->inputs[i].path, ws->inputs[i].dlt);
        sn_pipeline_input_end(p0, ws->inputs[i].packets, ws->inputs[i].truncated);
        if (ws->inputs[i].live)
            sn_pipeline_input_capture(p0, ws->inputs[i].recv, ws->inputs[i].drop,
                                      ws->inputs[i].ifdrop);
    }
    if (ws->live)
        sn_pipeline_capture_stats(p0, ws->cap_recv, ws->cap_drop, ws->cap_ifdrop);
    ws->w[0]->cur_ord = ORD_STATS;
    sn_pipeline_emit_stats_sum(ws->ps, ws->n);
    merge_upto(ws, ORD_STATS);
    ws->finished = true;
}

int sn_workers_failed(const struct sn_workers *ws, bool *is_config)
{
    *is_config = false;
    if (!atomic_load(&ws->create_failed))
        return 0;
    for (unsigned i = 0; i < ws->n; i++) {
        const struct worker *w = ws->w[i];
        if (w->p)
            continue;
        /* the worker's message as it was ("<mod>: <text>"), now on this thread's ring */
        char mod[32] = "workers";
        const char *text = w->err, *colon = strstr(w->err, ": ");
        if (colon && (size_t)(colon - w->err) < sizeof(mod)) {
            memcpy(mod, w->err, (size_t)(colon - w->err));
            mod[colon - w->err] = 0;
            text = colon + 2;
        }
        *is_config = w->err_config;
        return sn_err_push(w->err_config ? SN_ECONFIG : EIO, mod, "%s", text);
    }
    return 0;
}

/* The workers' counters as of their last snapshots, summed into ws->sum (the reader's). */
static void sum_snapshots(struct sn_workers *ws)
{
    sn_pipeline_counters_reset(ws->sum);
    for (unsigned i = 0; i < ws->n; i++) {
        struct worker *w = ws->w[i];
        pthread_mutex_lock(&w->snap_mu);
        sn_pipeline_counters_add(ws->sum, w->snap);
        pthread_mutex_unlock(&w->snap_mu);
    }
    sn_pipeline_counters_set_capture(ws->sum, ws->cap_drop, ws->cap_ifdrop, ws->sink_errors);
}

void sn_workers_print_stats(struct sn_workers *ws, FILE *out)
{
    if (ws->finished) {
        sn_pipeline_print_stats_sum((struct sn_pipeline *const *)ws->ps, ws->n, out);
    } else {
        sum_snapshots(ws);
        sn_pipeline_counters_print(ws->sum, out);
        for (unsigned i = 0; i < ws->n_inputs; i++) /* as a pipeline: packets once it ended */
            fprintf(out, "input %s packets %" PRIu64 "%s\n", ws->inputs[i].path,
                    ws->inputs[i].packets, ws->inputs[i].truncated ? " truncated" : "");
    }
    for (unsigned i = 0; i < ws->n; i++)
        fprintf(out, "worker.%u.packets %" PRIu64 "\n", i, ws->w[i]->dispatched);
    fprintf(out, "worker.records_written %" PRIu64 "\n", ws->seq);
}

void sn_workers_metrics(struct sn_workers *ws, FILE *out)
{
    if (ws->finished) {
        sn_pipeline_metrics_sum((struct sn_pipeline *const *)ws->ps, ws->n, out);
        return;
    }
    sum_snapshots(ws);
    sn_pipeline_counters_metrics(ws->sum, out);
}

uint64_t sn_workers_sink_errors(const struct sn_workers *ws)
{
    uint64_t n = ws->sink_errors;
    for (unsigned i = 0; i < ws->n; i++)
        if (ws->finished && ws->ps[i])
            n += sn_pipeline_sink_errors(ws->ps[i]);
    return n;
}
