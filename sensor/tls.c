/* tls: TLS stream tracking per flow. See include/tls.h.
 *
 * Each direction goes through up to three phases:
 *   IDLE  no payload seen yet;
 *   HS    the first bytes are reassembled into one buffer of cfg.reasm_cap bytes (allocated
 *         once, on the first payload), records are parsed as soon as they are contiguous and
 *         handshake messages are handed to tls_hs;
 *   TRACK once the handshake part we need is seen (or buffering gave up), the buffer is
 *         freed and only the 5-byte record headers are read; bodies are skipped by sequence
 *         arithmetic, so steady-state packets cost a few comparisons and no allocation.
 */
#define SN_LOG_MOD "tls"
#include "tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "err.h"
#include "json.h"
#include "quic.h"
#include "tls_hs.h"

/* RFC 5246 6.2.3: TLSCiphertext.length MUST NOT exceed 2^14 + 2048. */
#define REC_MAX (16384u + 2048u)
#define REC_HDR 5u
#define CT_CCS 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPDATA 23
#define CT_HEARTBEAT 24

#define CAP_MIN 512u
#define CAP_MAX (1u << 20)
#define FIRST_MAX 64u
/* Without a SYN the first data segment is only a guess at the stream start: a stream that
 * does not begin like a hello is held for this many more segments in case an earlier
 * segment (lower seq) shows up late. */
#define PROBE_SEGS 4u
/* Segments that land beyond a hole without filling it before the hole counts as lost. */
#define OOO_SEGS 64u
#define NO_CUT UINT32_MAX

enum { PH_IDLE, PH_HS, PH_TRACK };
enum { DET_NO = -1, DET_MAYBE = 0, DET_YES = 1, DET_YES_V2 = 2 };
enum { ST_UNKNOWN, ST_TLS, ST_NOT_TLS };
enum { STUCK_NO, STUCK_OVERFLOW, STUCK_GAP };

struct tls_dir {
    /* Reassembly (HS phase). Offsets are relative to base, the seq of buf[0]. */
    uint8_t *buf;       /* cap bytes, then a bitmap of filled bytes; NULL outside HS */
    uint8_t *map;
    uint32_t base;
    uint32_t contig;    /* buf[0, contig) is filled */
    uint32_t hi;        /* highest filled offset + 1 */
    uint32_t rd;        /* next record header */
    uint32_t hs_off, hs_end; /* pending handshake bytes, compacted below rd */
    uint32_t last_n;    /* handshake bytes the last record added */
    uint32_t cut;       /* lowest offset the capture cut (len > caplen) */
    uint16_t last_ver, pend_ver;
    uint8_t phase;
    int8_t det;
    uint8_t probe, ooo;
    bool have_base, guess, overflow, too_big, hs_done, v2;

    /* Record tracker (TRACK phase). */
    bool synced;
    uint8_t hdr_have;
    uint8_t hdr[REC_HDR];
    uint32_t next; /* seq of the next record header */
    uint32_t exp;  /* seq after the last byte seen in order */

    /* Output. */
    uint64_t app_records, app_bytes;
    uint32_t nfirst;
    uint32_t *first;
};

struct sn_tls {
    struct sn_tls_cfg cfg;
    struct sn_tls_stats *st;
    struct sn_tls_stats own_st; /* used when the caller passes no stats */
    struct sn_tls_meta *meta;
    struct sn_quic *quic;  /* QUIC flows, until the ClientHello is in or given up on */
    uint32_t quic_version; /* QUIC flows: the version of the Initials; else 0 */
    bool quic_decrypted;   /* QUIC flows: an Initial decrypted */
    uint8_t state;
    struct tls_dir d[2];
    uint32_t first_store[];
};

static void set_not_tls(struct sn_tls *t);
static void track_segment(struct sn_tls *t, int dir, uint32_t seq, const uint8_t *p,
                          size_t caplen, size_t len, int64_t ts_us);

static inline int32_t seq_diff(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

static inline bool map_get(const struct tls_dir *d, uint32_t i)
{
    return (d->map[i >> 3] >> (i & 7)) & 1;
}

static inline void map_set(struct tls_dir *d, uint32_t i)
{
    d->map[i >> 3] = (uint8_t)(d->map[i >> 3] | (1u << (i & 7)));
}

static inline void map_clr(struct tls_dir *d, uint32_t i)
{
    d->map[i >> 3] = (uint8_t)(d->map[i >> 3] & ~(1u << (i & 7)));
}

/* Marks [i, i + n) filled: partial bytes bit by bit, whole bytes with one memset. */
static void map_set_range(struct tls_dir *d, uint32_t i, uint32_t n)
{
    uint32_t end = i + n;
    while (i < end && (i & 7))
        map_set(d, i++);
    if (end - i >= 8) {
        memset(d->map + (i >> 3), 0xff, (end - i) >> 3);
        i += (end - i) & ~7u;
    }
    while (i < end)
        map_set(d, i++);
}

/* The first offset in [i, lim) whose bit equals `set`, or lim. Skips whole map bytes that
 * cannot hold it, so scanning a filled (or empty) buffer costs one step per 8 bytes. */
static uint32_t map_find(const struct tls_dir *d, uint32_t i, uint32_t lim, bool set)
{
    uint8_t skip = set ? 0x00 : 0xff;
    uint64_t skip64 = set ? 0 : UINT64_MAX;
    while (i < lim) {
        if (!(i & 63) && lim - i >= 64) { /* 64 offsets per step through long runs */
            uint64_t w;
            memcpy(&w, d->map + (i >> 3), sizeof(w));
            if (w == skip64) {
                i += 64;
                continue;
            }
        }
        if (!(i & 7) && lim - i >= 8 && d->map[i >> 3] == skip) {
            i += 8;
            continue;
        }
        if (map_get(d, i) == set)
            return i;
        i++;
    }
    return lim;
}

struct sn_tls *sn_tls_new(const struct sn_tls_cfg *cfg, struct sn_tls_stats *st)
{
    struct sn_tls_cfg c = {.reasm_cap = SN_TLS_DEFAULT_REASM_CAP,
                           .first_records = SN_TLS_DEFAULT_FIRST_RECORDS};
    if (cfg)
        c = *cfg;
    if (c.reasm_cap == 0)
        c.reasm_cap = SN_TLS_DEFAULT_REASM_CAP;
    if (c.reasm_cap < CAP_MIN)
        c.reasm_cap = CAP_MIN;
    if (c.reasm_cap > CAP_MAX)
        c.reasm_cap = CAP_MAX;
    if (c.first_records > FIRST_MAX)
        c.first_records = FIRST_MAX;

    struct sn_tls *t = calloc(1, sizeof(*t) + 2 * c.first_records * sizeof(uint32_t));
    if (!t)
        goto fail;
    t->cfg = c;
    t->st = st ? st : &t->own_st;
    t->meta = sn_tls_meta_new();
    if (!t->meta)
        goto fail;
    sn_tls_meta_set_memo(t->meta, c.fp_memo);
    for (int i = 0; i < 2; i++) {
        t->d[i].first = t->first_store + (size_t)i * c.first_records;
        t->d[i].cut = NO_CUT;
    }
    return t;
fail:
    SN_ERR(ENOMEM, "tls state");
    sn_tls_free(t);
    return NULL;
}

static void dir_free_buf(struct tls_dir *d)
{
    free(d->buf);
    d->buf = d->map = NULL;
}

void sn_tls_free(struct sn_tls *t)
{
    if (!t)
        return;
    dir_free_buf(&t->d[0]);
    dir_free_buf(&t->d[1]);
    sn_quic_free(t->quic);
    sn_tls_meta_free(t->meta);
    free(t);
}

struct sn_tls *sn_tls_new_quic(const struct sn_tls_cfg *cfg, struct sn_tls_stats *st)
{
    if (!cfg || !cfg->quic) {
        SN_ERR(EINVAL, "QUIC needs a decryption context");
        return NULL;
    }
    struct sn_tls *t = sn_tls_new(cfg, st);
    if (!t)
        return NULL;
    t->quic = sn_quic_new(cfg->quic);
    if (!t->quic) {
        sn_tls_free(t);
        return NULL;
    }
    sn_tls_meta_set_quic(t->meta);
    t->quic_version = SN_QUIC_V1; /* replaced by the Initials' version */
    return t;
}

bool sn_tls_is_quic(const struct sn_tls *t)
{
    return t && t->quic_version != 0;
}

bool sn_tls_quic_decrypted(const struct sn_tls *t)
{
    return t && t->quic_decrypted;
}

bool sn_tls_quic_partial(const struct sn_tls *t)
{
    return t && t->quic && sn_quic_started(t->quic);
}

void sn_tls_datagram(struct sn_tls *t, int dir, const uint8_t *payload, size_t caplen)
{
    if (!t || !t->quic || dir != 0 || t->state != ST_UNKNOWN)
        return;
    const uint8_t *hello;
    size_t len;
    int r = sn_quic_datagram(t->quic, payload, caplen, &hello, &len);
    if (sn_quic_version(t->quic)) {
        t->quic_version = sn_quic_version(t->quic);
        t->quic_decrypted = true;
    }
    if (r == SN_QUIC_MORE)
        return;
    if (r == SN_QUIC_HELLO) {
        /* The CRYPTO stream holds handshake messages without a record layer. */
        struct sn_cur c = sn_cur_make(hello, len);
        uint8_t type = sn_cur_u8(&c);
        uint32_t mlen = sn_cur_u24(&c);
        const uint8_t *body = sn_cur_take(&c, mlen);
        if (body && sn_tls_hs_message(t->meta, 0, type, body, mlen, 0) == 0 &&
            sn_tls_meta_has_client_hello(t->meta)) {
            t->state = ST_TLS;
            t->st->flows_tls++;
            t->st->client_hellos++;
        } else {
            t->st->malformed++;
        }
    }
    if (t->state != ST_TLS)
        set_not_tls(t);
    sn_quic_free(t->quic); /* the hello is parsed: its buffer is no longer needed */
    t->quic = NULL;
}

/* RFC 8446 5.1 / RFC 5246 6.2.1:
 *   struct { ContentType type; ProtocolVersion legacy_record_version; uint16 length;
 *            opaque fragment[length]; } TLSPlaintext;
 * type 20..24, version 3.x, length <= 2^14 + 2048. */
static bool rec_hdr_ok(uint8_t type, uint16_t ver, uint16_t len)
{
    return type >= CT_CCS && type <= CT_HEARTBEAT && (ver >> 8) == 3 && (ver & 0xff) <= 4 &&
           len <= REC_MAX;
}

/* A record header the tracker may resynchronise on: application_data, TLS 1.0-1.2 record
 * version, non-empty sane length. */
static bool resync_hdr(const uint8_t *p, size_t caplen)
{
    struct sn_cur c = sn_cur_make(p, caplen);
    uint8_t type = sn_cur_u8(&c);
    uint16_t ver = sn_cur_u16(&c);
    uint16_t len = sn_cur_u16(&c);
    return c.err == 0 && type == CT_APPDATA && ver >= 0x0301 && ver <= 0x0303 && len > 0 &&
           len <= REC_MAX;
}

bool sn_tls_app_record_start(const uint8_t *p, size_t caplen)
{
    return resync_hdr(p, caplen);
}

static void record_seen(struct sn_tls *t, int dir, uint8_t type, uint32_t len, int64_t ts_us)
{
    struct tls_dir *d = &t->d[dir];
    if (d->nfirst < t->cfg.first_records)
        d->first[d->nfirst++] = len;
    if (type == CT_APPDATA) {
        d->app_records++;
        d->app_bytes += len;
    }
    if (t->cfg.on_record)
        t->cfg.on_record(t->cfg.ctx, dir, type, len, ts_us);
}

/* Does a stream start like a hello? Client (dir 0): a handshake record (0x16 0x03 0x0X
 * length) whose first message is a ClientHello (type 1), or an SSLv2-compatible
 * CLIENT-HELLO (RFC 5246 E.2: msb-set 2-byte length, msg_type 1, version 0x0002 or 3.x).
 * Server (dir 1): a handshake record holding a ServerHello (type 2).
 * Returns DET_YES / DET_YES_V2, DET_NO, or DET_MAYBE when too few bytes decide. */
static int detect(const uint8_t *p, size_t n, int dir)
{
    struct sn_cur c = sn_cur_make(p, n);
    uint8_t b[6];
    size_t have = 0;
    while (have < sizeof(b) && sn_cur_peek8(&c, have, &b[have]))
        have++;
    if (have == 0)
        return DET_MAYBE;
    if (b[0] == CT_HANDSHAKE) {
        if (have > 1 && b[1] != 3)
            return DET_NO;
        if (have > 2 && b[2] > 4)
            return DET_NO;
        if (have > 4) {
            unsigned len = (unsigned)b[3] << 8 | b[4];
            if (len < 4 || len > REC_MAX)
                return DET_NO;
        }
        if (have > 5)
            return b[5] == (dir == 0 ? SN_TLS_HS_CLIENT_HELLO : SN_TLS_HS_SERVER_HELLO)
                       ? DET_YES
                       : DET_NO;
        return DET_MAYBE;
    }
    if (dir == 0 && (b[0] & 0x80)) {
        if (have > 2 && b[2] != 1)
            return DET_NO;
        if (have > 3 && b[3] != 0 && b[3] != 3)
            return DET_NO;
        return have > 3 ? DET_YES_V2 : DET_MAYBE;
    }
    return DET_NO;
}

/* Once the flow is known to be TLS, a direction need only start with a sane record header
 * (a server may answer with an alert rather than a ServerHello). */
static int detect_record(const uint8_t *p, size_t n)
{
    struct sn_cur c = sn_cur_make(p, n);
    uint8_t type = sn_cur_u8(&c);
    uint16_t ver = sn_cur_u16(&c);
    uint16_t len = sn_cur_u16(&c);
    if (c.err)
        return DET_MAYBE;
    return rec_hdr_ok(type, ver, len) ? DET_YES : DET_NO;
}

static int detect_dir(const struct sn_tls *t, int dir, const uint8_t *p, size_t n)
{
    int r = detect(p, n, dir);
    if (r == DET_NO && t->state == ST_TLS)
        r = detect_record(p, n);
    return r;
}

/* The direction stops reassembly: the buffered bytes after the last parsed record go
 * through the record tracker (whose header walk starts at rd when synced), then the buffer
 * is freed. */
static void handoff(struct sn_tls *t, int dir, bool synced, int64_t ts_us)
{
    struct tls_dir *d = &t->d[dir];
    if (d->phase == PH_TRACK)
        return;
    d->phase = PH_TRACK;
    d->synced = synced;
    if (!synced)
        t->st->desync++;
    d->hdr_have = 0;
    d->next = d->base + d->rd;
    d->exp = d->base + d->rd;
    if (d->buf) {
        uint32_t i = d->rd;
        while (i < d->hi) {
            uint32_t a = map_find(d, i, d->hi, true);
            if (a >= d->hi)
                break;
            uint32_t b = map_find(d, a, d->hi, false);
            track_segment(t, dir, d->base + a, d->buf + a, b - a, b - a, ts_us);
            i = b;
        }
    }
    dir_free_buf(d);
}

static void set_not_tls(struct sn_tls *t)
{
    t->state = ST_NOT_TLS;
    t->st->flows_not_tls++;
    dir_free_buf(&t->d[0]);
    dir_free_buf(&t->d[1]);
}

/* This direction does not start like TLS. */
static void dir_no(struct sn_tls *t, int dir, int64_t ts_us)
{
    struct tls_dir *d = &t->d[dir];
    d->det = DET_NO;
    if (t->state == ST_UNKNOWN)
        set_not_tls(t);
    else
        handoff(t, dir, false, ts_us);
}

static void dir_yes(struct sn_tls *t, int dir, int r)
{
    struct tls_dir *d = &t->d[dir];
    d->det = DET_YES;
    d->v2 = r == DET_YES_V2;
    if (t->state == ST_UNKNOWN) {
        t->state = ST_TLS;
        t->st->flows_tls++;
    }
}

/* Moves a guessed stream start down to new_base (a segment with a lower seq arrived before
 * anything was parsed). Bytes pushed beyond the cap are dropped and flag an overflow. */
static void rebase(struct sn_tls *t, struct tls_dir *d, uint32_t new_base)
{
    uint32_t cap = t->cfg.reasm_cap;
    uint32_t shift = d->base - new_base;
    d->base = new_base;
    d->contig = 0;
    if (d->hi == 0)
        return;
    uint32_t hi = d->hi + shift;
    if (hi > cap) {
        hi = cap;
        d->overflow = true;
    }
    if (hi > shift) {
        memmove(d->buf + shift, d->buf, hi - shift);
        for (uint32_t i = hi; i-- > shift;) {
            if (map_get(d, i - shift))
                map_set(d, i);
            else
                map_clr(d, i);
        }
    }
    for (uint32_t i = 0; i < shift && i < cap; i++)
        map_clr(d, i);
    d->hi = hi > shift ? hi : 0;
    if (d->cut != NO_CUT)
        d->cut = d->cut + shift < cap ? d->cut + shift : NO_CUT;
}

static int stuck(const struct tls_dir *d)
{
    if (d->overflow || d->too_big)
        return STUCK_OVERFLOW;
    /* contig stops at the first missing byte: blocked at bytes the capture cut (unless a
     * retransmission filled them since, then contig is past the cut). */
    if (d->ooo >= OOO_SEGS || (d->cut != NO_CUT && d->contig == d->cut))
        return STUCK_GAP;
    return STUCK_NO;
}

static void count_stuck(struct sn_tls *t, int why)
{
    if (why == STUCK_OVERFLOW)
        t->st->reasm_overflow++;
    else if (why == STUCK_GAP)
        t->st->reasm_gaps++;
}

/* Appends a handshake record's fragment to the pending handshake bytes. The pending bytes
 * live in the same buffer below rd: every appended byte comes from above rd, so the
 * region never overtakes the records still to parse. */
static void hs_append(struct tls_dir *d, uint32_t off, uint32_t n, uint16_t ver)
{
    if (d->hs_off == d->hs_end)
        d->hs_off = d->hs_end = 0;
    memmove(d->buf + d->hs_end, d->buf + off, n);
    d->hs_end += n;
    d->last_n = n;
    d->last_ver = ver;
}

static bool hs_dir_done(const struct sn_tls *t, int dir, uint8_t type)
{
    if (dir == 0)
        return type == SN_TLS_HS_CLIENT_HELLO;
    /* Server: TLS 1.3 encrypts everything after the ServerHello; TLS 1.2 has nothing more
     * for us after the Certificate (or ServerHelloDone = 14 when there is none). */
    return (type == SN_TLS_HS_SERVER_HELLO && sn_tls_meta_is_tls13(t->meta)) ||
           type == SN_TLS_HS_CERTIFICATE || type == 14;
}

/* RFC 8446 4: struct { HandshakeType msg_type; uint24 length; body[length]; } Handshake;
 * Messages may span records and a record may hold several; each complete one goes to
 * tls_hs with the version of the record that carried its first byte. */
static void hs_messages(struct sn_tls *t, int dir)
{
    struct tls_dir *d = &t->d[dir];
    while (!d->hs_done && d->hs_end - d->hs_off >= 4) {
        uint16_t ver = d->hs_off >= d->hs_end - d->last_n ? d->last_ver : d->pend_ver;
        struct sn_cur c = sn_cur_make(d->buf + d->hs_off, d->hs_end - d->hs_off);
        uint8_t type = sn_cur_u8(&c);
        uint32_t mlen = sn_cur_u24(&c);
        if ((uint64_t)mlen + 4 > t->cfg.reasm_cap) {
            d->too_big = true;
            return;
        }
        const uint8_t *body = sn_cur_take(&c, mlen);
        if (!body)
            break;
        int rc = sn_tls_hs_message(t->meta, dir, type, body, mlen, ver);
        if (rc < 0)
            t->st->malformed++;
        else if (type == SN_TLS_HS_CLIENT_HELLO && dir == 0)
            t->st->client_hellos++;
        else if (type == SN_TLS_HS_SERVER_HELLO && dir == 1)
            t->st->server_hellos++;
        else if (type == SN_TLS_HS_CERTIFICATE && dir == 1)
            t->st->certificates++;
        d->hs_off += 4 + mlen;
        if (hs_dir_done(t, dir, type))
            d->hs_done = true;
    }
    if (d->hs_off < d->hs_end)
        d->pend_ver = d->hs_off >= d->hs_end - d->last_n ? d->last_ver : d->pend_ver;
}

/* SSLv2-compatible ClientHello (RFC 5246 E.2): uint16 msb-set length, then the message. */
static void hs_sslv2(struct sn_tls *t, struct tls_dir *d)
{
    struct sn_cur c = sn_cur_make(d->buf, d->contig);
    uint32_t reclen = (uint32_t)(sn_cur_u16(&c) & 0x7fff) + 2;
    if (c.err)
        return;
    if (reclen > t->cfg.reasm_cap) {
        d->too_big = true;
        return;
    }
    if (d->contig < reclen)
        return;
    if (sn_tls_hs_sslv2(t->meta, d->buf, reclen) < 0)
        t->st->malformed++;
    else
        t->st->client_hellos++;
    d->v2 = false;
    d->rd = reclen;
    d->hs_done = true;
}

/* Parses whatever became contiguous in a HS-phase direction. */
static void hs_process(struct sn_tls *t, int dir, int64_t ts_us)
{
    struct tls_dir *d = &t->d[dir];
    if (d->det == DET_MAYBE) {
        int r = detect_dir(t, dir, d->buf, d->contig);
        int why = stuck(d);
        if (r == DET_NO && d->guess && d->probe < PROBE_SEGS && why == STUCK_NO)
            return; /* maybe an earlier segment is still to come */
        if (r == DET_MAYBE) { /* a hello's first bytes so far, or nothing at the start */
            if (why == STUCK_NO)
                return;
            count_stuck(t, why);
            r = DET_NO;
        }
        if (r == DET_NO) {
            dir_no(t, dir, ts_us);
            return;
        }
        dir_yes(t, dir, r);
    }

    if (d->v2)
        hs_sslv2(t, d);
    while (!d->hs_done && !d->v2 && !d->too_big && d->contig - d->rd >= REC_HDR) {
        struct sn_cur c = sn_cur_make(d->buf + d->rd, d->contig - d->rd);
        uint8_t type = sn_cur_u8(&c);
        uint16_t ver = sn_cur_u16(&c);
        uint16_t len = sn_cur_u16(&c);
        if (!rec_hdr_ok(type, ver, len)) {
            t->st->malformed++;
            handoff(t, dir, false, ts_us);
            return;
        }
        if ((uint64_t)d->rd + REC_HDR + len > t->cfg.reasm_cap) {
            d->too_big = true;
            break;
        }
        if (!sn_cur_skip(&c, len))
            break;
        record_seen(t, dir, type, len, ts_us);
        uint32_t body = d->rd + REC_HDR;
        d->rd = body + len;
        if (type == CT_CCS) {
            sn_tls_meta_note_ccs(t->meta, dir);
            /* RFC 8446 D.4 middlebox compatibility: a server may send ChangeCipherSpec right
             * after a HelloRetryRequest; the real ServerHello still follows in clear. */
            if (!(dir == 1 && sn_tls_meta_hrr(t->meta) && !sn_tls_meta_has_server_hello(t->meta)))
                d->hs_done = true;
        } else if (type == CT_APPDATA || type == CT_ALERT) {
            /* Encrypted data, or a (fatal, in practice) alert: no more cleartext handshake. */
            d->hs_done = true;
        } else if (type == CT_HANDSHAKE) {
            hs_append(d, body, len, ver);
            hs_messages(t, dir);
        }
    }
    if (d->hs_done) {
        handoff(t, dir, true, ts_us);
        return;
    }
    int why = stuck(d);
    if (why != STUCK_NO) {
        count_stuck(t, why);
        handoff(t, dir, true, ts_us);
    }
}

/* Stores a segment into the direction's reassembly buffer (first copy wins). */
static void hs_store(struct sn_tls *t, struct tls_dir *d, uint32_t off, const uint8_t *p,
                     size_t caplen, size_t len)
{
    uint32_t cap = t->cfg.reasm_cap;
    if ((uint64_t)off + len > cap)
        d->overflow = true;
    if (off >= cap)
        return;
    uint32_t n = caplen < cap - off ? (uint32_t)caplen : cap - off;
    if (len > caplen && off + n < cap && off + n < d->cut)
        d->cut = off + n;
    bool fresh = off >= d->hi; /* nothing at or above off is filled yet */
    if (n == 0) {
        /* only the cut or overflow bookkeeping above */
    } else if (fresh) {
        /* Nothing at or above off is filled yet (in-order data): one copy. */
        memcpy(d->buf + off, p, n);
        map_set_range(d, off, n);
    } else {
        /* Overlaps earlier data: copy only the runs still missing. */
        uint32_t i = off, e = off + n;
        while (i < e) {
            uint32_t a = map_find(d, i, e, false);
            if (a >= e)
                break;
            uint32_t b = map_find(d, a, e, true);
            memcpy(d->buf + a, p + (a - off), b - a);
            map_set_range(d, a, b - a);
            i = b;
        }
    }
    if (off + n > d->hi)
        d->hi = off + n;
    if (off > d->contig) {
        if (d->ooo < UINT8_MAX)
            d->ooo++;
        return;
    }
    uint32_t before = d->contig;
    if (fresh && off == d->contig)
        d->contig = off + n; /* in order: filled up to the end, nothing beyond */
    else
        d->contig = map_find(d, d->contig, d->hi, false);
    if (d->contig > before)
        d->ooo = 0;
}

static void hs_segment(struct sn_tls *t, int dir, uint32_t seq, const uint8_t *p,
                       size_t caplen, size_t len, int64_t ts_us)
{
    struct tls_dir *d = &t->d[dir];
    uint32_t cap = t->cfg.reasm_cap;
    bool lowered = false;
    if (!d->have_base) {
        d->base = seq;
        d->have_base = true;
        d->guess = true;
    }
    int32_t rel = seq_diff(seq, d->base);
    if (rel < 0) {
        uint32_t below = (uint32_t)-(int64_t)rel;
        if (d->guess && d->det == DET_MAYBE && d->rd == 0 && below < cap && d->buf) {
            rebase(t, d, seq);
            lowered = true;
        } else {
            /* Before the stream start, or already parsed: keep only the part after base. */
            if (len <= below)
                return;
            size_t skip = below;
            if (skip < caplen) {
                p += skip;
                caplen -= skip;
            } else {
                caplen = 0;
            }
            len -= skip;
        }
        rel = 0;
    }
    uint32_t off = (uint32_t)rel;

    /* Cheap verdict on a known stream start, before any buffer exists. */
    if (!d->buf && !d->guess && off == 0 && caplen > 0 &&
        detect_dir(t, dir, p, caplen) == DET_NO) {
        dir_no(t, dir, ts_us);
        return;
    }
    if (!d->buf) {
        size_t mapsz = (cap + 7) / 8;
        d->buf = malloc((size_t)cap + mapsz);
        if (!d->buf) {
            t->st->reasm_overflow++;
            if (d->det == DET_MAYBE)
                dir_no(t, dir, ts_us);
            else
                handoff(t, dir, true, ts_us);
            return;
        }
        d->map = d->buf + cap;
        memset(d->map, 0, mapsz);
    }
    if (d->guess && d->det == DET_MAYBE && !lowered && d->probe < UINT8_MAX)
        d->probe++;
    hs_store(t, d, off, p, caplen, len);
    hs_process(t, dir, ts_us);
}

static void handle_syn(struct sn_tls *t, struct tls_dir *d, uint32_t isn)
{
    uint32_t start = isn + 1;
    if (d->phase == PH_TRACK)
        return;
    if (!d->have_base) {
        d->base = start;
        d->have_base = true;
        d->guess = false;
        return;
    }
    if (!d->guess)
        return;
    int32_t rel = seq_diff(d->base, start);
    if (rel == 0) {
        d->guess = false;
    } else if (rel > 0 && d->det == DET_MAYBE && d->rd == 0 && (uint32_t)rel < t->cfg.reasm_cap &&
               d->buf) {
        rebase(t, d, start);
        d->guess = false;
    }
}

/* Record tracker: reads only record headers; bodies are skipped by seq arithmetic. A gap
 * costs sync only if the next header (or the rest of a split one) falls in it. Unsynced, a
 * segment that starts with a plausible application_data header resynchronises. */
static void track_segment(struct sn_tls *t, int dir, uint32_t seq, const uint8_t *p,
                          size_t caplen, size_t len, int64_t ts_us)
{
    struct tls_dir *d = &t->d[dir];
    if (len == 0)
        return;
    if (len > UINT32_MAX / 2)
        len = UINT32_MAX / 2;
    if (caplen > len)
        caplen = len;
    if (!p)
        caplen = 0;
    int32_t rel = seq_diff(seq, d->exp);
    uint32_t skip = 0;
    if (rel > 0) {
        t->st->reasm_gaps++;
        if (d->synced && (d->hdr_have || seq_diff(d->next, seq) < 0)) {
            d->synced = false;
            t->st->desync++;
        }
    } else if (rel < 0) {
        uint32_t old = (uint32_t)-(int64_t)rel;
        if (old >= len)
            return; /* retransmission */
        skip = old;
    }
    uint32_t end = seq + (uint32_t)len;
    if (!d->synced) {
        if (skip == 0 && resync_hdr(p, caplen)) {
            d->synced = true;
            d->next = seq;
            d->hdr_have = 0;
        } else {
            d->exp = end;
            return;
        }
    }
    while (d->synced) {
        int32_t o = seq_diff(d->next + d->hdr_have, seq);
        if (o < (int32_t)skip) { /* cannot happen unless state is inconsistent */
            d->synced = false;
            t->st->desync++;
            break;
        }
        if ((size_t)o >= len)
            break;
        if ((size_t)o >= caplen) { /* header bytes the capture cut */
            d->synced = false;
            t->st->desync++;
            break;
        }
        struct sn_cur c = sn_cur_make(p + o, caplen - (size_t)o);
        struct sn_cur h = c; /* a whole header in this segment: read it in place */
        if (d->hdr_have || sn_cur_left(&c) < REC_HDR) {
            /* A header split across segments: gather it in d->hdr. */
            size_t n = REC_HDR - d->hdr_have;
            if (n > sn_cur_left(&c))
                n = sn_cur_left(&c);
            sn_cur_copy(&c, d->hdr + d->hdr_have, n);
            d->hdr_have = (uint8_t)(d->hdr_have + n);
            if (d->hdr_have < REC_HDR) {
                if ((size_t)o + n < len) { /* the segment goes on but the capture does not */
                    d->synced = false;
                    t->st->desync++;
                }
                break;
            }
            h = sn_cur_make(d->hdr, REC_HDR);
        }
        uint8_t type = sn_cur_u8(&h);
        uint16_t ver = sn_cur_u16(&h);
        uint16_t rlen = sn_cur_u16(&h);
        d->hdr_have = 0;
        if (!rec_hdr_ok(type, ver, rlen)) {
            d->synced = false;
            t->st->desync++;
            break;
        }
        record_seen(t, dir, type, rlen, ts_us);
        d->next += REC_HDR + rlen;
    }
    if (seq_diff(end, d->exp) > 0)
        d->exp = end;
}

void sn_tls_segment(struct sn_tls *t, int dir, uint32_t seq, bool syn, const uint8_t *payload,
                    size_t caplen, size_t len, int64_t ts_us)
{
    if (!t || (dir != 0 && dir != 1) || t->state == ST_NOT_TLS)
        return;
    struct tls_dir *d = &t->d[dir];
    if (!payload)
        caplen = 0;
    if (caplen > len)
        caplen = len;
    if (syn) {
        handle_syn(t, d, seq);
        seq += 1;
    }
    if (len == 0)
        return;
    if (d->phase == PH_TRACK) {
        /* Steady state: an in-order segment that lies inside the current record's body only
         * moves exp (what track_segment would conclude, without its checks). */
        uint32_t body_left = d->next - seq;
        if (d->synced && seq == d->exp && d->hdr_have == 0 && (int32_t)body_left >= 0 &&
            body_left >= len && len <= UINT32_MAX / 2) {
            d->exp = seq + (uint32_t)len;
            return;
        }
        track_segment(t, dir, seq, payload, caplen, len, ts_us);
        return;
    }
    if (d->phase == PH_IDLE)
        d->phase = PH_HS;
    hs_segment(t, dir, seq, payload, caplen, len, ts_us);
    /* If buffering ended on this segment, its part beyond the buffer (if any) still goes
     * through the tracker; what was already replayed counts as old. */
    if (t->state != ST_NOT_TLS && d->phase == PH_TRACK)
        track_segment(t, dir, seq, payload, caplen, len, ts_us);
}

bool sn_tls_wants_payload(const struct sn_tls *t)
{
    if (t && t->quic_version)
        return t->quic != NULL;
    return t && t->state != ST_NOT_TLS;
}

bool sn_tls_is_tls(const struct sn_tls *t)
{
    return t && t->state == ST_TLS;
}

bool sn_tls_synced(const struct sn_tls *t, int dir)
{
    if (!t || (dir != 0 && dir != 1) || t->state != ST_TLS || t->quic_version)
        return false;
    const struct tls_dir *d = &t->d[dir];
    switch (d->phase) {
    case PH_TRACK:
        return d->synced;
    case PH_HS:
        return d->det == DET_YES;
    default:
        return true;
    }
}

const struct sn_tls_meta *sn_tls_meta(const struct sn_tls *t)
{
    return t->meta;
}

bool sn_tls_buffering(const struct sn_tls *t, int dir)
{
    return t && (dir == 0 || dir == 1) && t->d[dir].buf != NULL;
}

size_t sn_tls_mem(const struct sn_tls *t)
{
    if (!t)
        return 0;
    size_t n = sizeof(*t) + 2 * t->cfg.first_records * sizeof(uint32_t);
    for (int i = 0; i < 2; i++)
        if (t->d[i].buf)
            n += t->cfg.reasm_cap + (t->cfg.reasm_cap + 7) / 8;
    return n + sn_quic_mem(t->quic);
}

void sn_tls_app_counts(const struct sn_tls *t, int dir, uint64_t *records, uint64_t *bytes)
{
    uint64_t r = 0, b = 0;
    if (t && (dir == 0 || dir == 1)) {
        r = t->d[dir].app_records;
        b = t->d[dir].app_bytes;
    }
    if (records)
        *records = r;
    if (bytes)
        *bytes = b;
}

size_t sn_tls_first_records(const struct sn_tls *t, int dir, const uint32_t **sizes)
{
    if (!t || (dir != 0 && dir != 1)) {
        if (sizes)
            *sizes = NULL;
        return 0;
    }
    if (sizes)
        *sizes = t->d[dir].first;
    return t->d[dir].nfirst;
}

void sn_tls_json(const struct sn_tls *t, struct sn_json *j)
{
    if (!sn_tls_is_tls(t))
        return;
    sn_json_obj_begin(j, "tls");
    if (t->quic_version) {
        sn_json_str(j, "transport", "quic");
        sn_json_str(j, "quic_version", sn_quic_version_name(t->quic_version));
    }
    sn_tls_meta_json(t->meta, j);
    /* QUIC has no TLS records to follow (the stream is encrypted QUIC frames). */
    for (int i = 0; i < 2 && !t->quic_version; i++) {
        const struct tls_dir *d = &t->d[i];
        sn_json_obj_begin(j, i == 0 ? "c2s" : "s2c");
        sn_json_u64(j, "app_records", d->app_records);
        sn_json_u64(j, "app_bytes", d->app_bytes);
        sn_json_arr_begin(j, "first_records");
        for (uint32_t k = 0; k < d->nfirst; k++)
            sn_json_u64(j, NULL, d->first[k]);
        sn_json_arr_end(j);
        sn_json_bool(j, "synced", sn_tls_synced(t, i));
        sn_json_obj_end(j);
    }
    sn_json_obj_end(j);
}
