/* cursor: the bounded reader every wire parser goes through.
 *
 * A cursor is a [p, end) window over borrowed bytes. Reads are big-endian unless named
 * _le. Errors are sticky: a read past the end empties the cursor, sets err to -SN_ETRUNC
 * and returns 0, and every later read returns 0, so a parser checks `c.err` once per
 * decision point. A length-prefixed field becomes a sub-cursor (sn_cur_sub) so an inner
 * parser cannot run past its field. Parsers that find malformed (not merely short) input
 * set err to -SN_EPROTO with sn_cur_fail().
 * Thread safety: a cursor is a value; use one per thread.
 */
#ifndef SN_CURSOR_H
#define SN_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"

struct sn_cur {
    const uint8_t *p, *end;
    int err; /* 0, -SN_ETRUNC or -SN_EPROTO */
};

static inline struct sn_cur sn_cur_make(const void *buf, size_t len)
{
    struct sn_cur c = {(const uint8_t *)buf, (const uint8_t *)buf + len, 0};
    if (!buf)
        c.p = c.end = NULL;
    return c;
}

static inline size_t sn_cur_left(const struct sn_cur *c)
{
    return (size_t)(c->end - c->p);
}

static inline bool sn_cur_ok(const struct sn_cur *c)
{
    return c->err == 0;
}

static inline void sn_cur_fail(struct sn_cur *c, int err)
{
    if (!c->err)
        c->err = err;
    c->p = c->end;
}

static inline bool sn_cur_need(struct sn_cur *c, size_t n)
{
    if (c->err || sn_cur_left(c) < n) {
        sn_cur_fail(c, -SN_ETRUNC);
        return false;
    }
    return true;
}

static inline uint8_t sn_cur_u8(struct sn_cur *c)
{
    if (!sn_cur_need(c, 1))
        return 0;
    return *c->p++;
}

static inline uint16_t sn_cur_u16(struct sn_cur *c)
{
    if (!sn_cur_need(c, 2))
        return 0;
    uint16_t v = (uint16_t)(c->p[0] << 8 | c->p[1]);
    c->p += 2;
    return v;
}

static inline uint16_t sn_cur_u16_le(struct sn_cur *c)
{
    if (!sn_cur_need(c, 2))
        return 0;
    uint16_t v = (uint16_t)(c->p[1] << 8 | c->p[0]);
    c->p += 2;
    return v;
}

static inline uint32_t sn_cur_u24(struct sn_cur *c)
{
    if (!sn_cur_need(c, 3))
        return 0;
    uint32_t v = (uint32_t)c->p[0] << 16 | (uint32_t)c->p[1] << 8 | c->p[2];
    c->p += 3;
    return v;
}

static inline uint32_t sn_cur_u32(struct sn_cur *c)
{
    if (!sn_cur_need(c, 4))
        return 0;
    uint32_t v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 |
                 c->p[3];
    c->p += 4;
    return v;
}

static inline uint32_t sn_cur_u32_le(struct sn_cur *c)
{
    if (!sn_cur_need(c, 4))
        return 0;
    uint32_t v = (uint32_t)c->p[3] << 24 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[1] << 8 |
                 c->p[0];
    c->p += 4;
    return v;
}

/* Peeks at byte `off` from the current position without consuming; 0 and false if absent
 * (does not set err). */
static inline bool sn_cur_peek8(const struct sn_cur *c, size_t off, uint8_t *out)
{
    if (c->err || sn_cur_left(c) <= off)
        return false;
    *out = c->p[off];
    return true;
}

static inline bool sn_cur_skip(struct sn_cur *c, size_t n)
{
    if (!sn_cur_need(c, n))
        return false;
    c->p += n;
    return true;
}

/* Skips the run of bytes equal to b at the cursor (QUIC PADDING: up to a kilobyte of zeros),
 * comparing a word at a time. Returns the run's length; never fails. */
static inline size_t sn_cur_skip_run(struct sn_cur *c, uint8_t b)
{
    const uint8_t *p = c->p;
    const uint64_t pat = 0x0101010101010101ull * b;
    for (uint64_t w; c->end - p >= 8 && (memcpy(&w, p, 8), w == pat);)
        p += 8;
    while (p < c->end && *p == b)
        p++;
    size_t n = (size_t)(p - c->p);
    c->p = p;
    return n;
}

/* Copies n bytes into out (which holds at least n). */
static inline bool sn_cur_copy(struct sn_cur *c, void *out, size_t n)
{
    if (!sn_cur_need(c, n))
        return false;
    memcpy(out, c->p, n);
    c->p += n;
    return true;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL (err set). The bytes
 * are borrowed from the cursor's buffer. */
static inline const uint8_t *sn_cur_take(struct sn_cur *c, size_t n)
{
    if (!sn_cur_need(c, n))
        return NULL;
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

/* Takes the next n bytes as a sub-cursor. Fails both cursors if fewer remain. */
static inline struct sn_cur sn_cur_sub(struct sn_cur *c, size_t n)
{
    struct sn_cur s = {c->p, c->p, 0};
    if (!sn_cur_need(c, n)) {
        s.err = c->err;
        return s;
    }
    s.end = c->p + n;
    c->p += n;
    return s;
}

/* The rest of the cursor as a sub-cursor; consumes it. */
static inline struct sn_cur sn_cur_rest(struct sn_cur *c)
{
    return sn_cur_sub(c, sn_cur_left(c));
}

#endif
