#define SN_LOG_MOD "json"
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sn_json_init(struct sn_json *j)
{
    memset(j, 0, sizeof(*j));
    j->first[0] = true;
}

void sn_json_fini(struct sn_json *j)
{
    free(j->buf);
    sn_json_init(j);
}

void sn_json_reset(struct sn_json *j)
{
    j->len = 0;
    j->depth = 0;
    j->first[0] = true;
    j->oom = false;
    if (j->buf)
        j->buf[0] = '\0';
}

bool sn_json_ok(const struct sn_json *j)
{
    return !j->oom;
}

/* Room for n more bytes and the NUL. */
static bool reserve(struct sn_json *j, size_t n)
{
    if (j->oom)
        return false;
    if (j->len + n + 1 <= j->cap)
        return true;
    size_t cap = j->cap ? j->cap : 512;
    while (cap < j->len + n + 1)
        cap *= 2;
    char *b = realloc(j->buf, cap);
    if (!b) {
        j->oom = true;
        return false;
    }
    j->buf = b;
    j->cap = cap;
    return true;
}

/* Where n more bytes (and the NUL) go, or NULL when out of memory. Write them, then end()
 * at the new end. */
static inline char *room(struct sn_json *j, size_t n)
{
    if (j->len + n + 1 > j->cap && !reserve(j, n))
        return NULL;
    return j->buf + j->len;
}

/* The buffer now ends at o: one NUL per call rather than one per piece. */
static inline void end(struct sn_json *j, char *o)
{
    *o = '\0';
    j->len = (size_t)(o - j->buf);
}

/* memcpy for the short pieces records are made of (keys, numbers, addresses): a few fixed
 * size moves instead of a library call. */
static inline char *copy(char *o, const char *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        memcpy(o, s, 8);
        memcpy(o + n - 8, s + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(o, s, 4);
        memcpy(o + n - 4, s + n - 4, 4);
    } else if (n > 16) {
        memcpy(o, s, n);
    } else if (n) { /* 1 to 3 bytes: first, middle and last cover them all */
        o[0] = s[0];
        o[n / 2] = s[n / 2];
        o[n - 1] = s[n - 1];
    }
    return o + n;
}

static inline void put(struct sn_json *j, const char *s, size_t n)
{
    char *o = room(j, n);
    if (o)
        end(j, copy(o, s, n));
}

static inline void putc_(struct sn_json *j, char ch)
{
    char *o = room(j, 1);
    if (o) {
        *o++ = ch;
        end(j, o);
    }
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static inline bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* How many leading bytes of s need no escaping (printable ASCII without quote or
 * backslash). Eight bytes per step: a byte below 0x20, with the top bit set, or equal to a
 * quote or backslash sets its top bit in the test word (exact for "any byte", which is all
 * that is asked; the byte loop then finds which). */
static size_t plain_prefix(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
        uint64_t t = ((x - ONES * 0x20) & ~x) | x | ((q - ONES) & ~q) | ((b - ONES) & ~b);
        if (t & HIGHS)
            break;
    }
    while (i < n && plain_byte(s[i]))
        i++;
    return i;
}

/* The general string writer: escapes what needs it. */
static void put_string(struct sn_json *j, const char *val, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)val;
    putc_(j, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (plain_byte(c)) {
            size_t k = i + plain_prefix(val + i, n - i);
            put(j, (const char *)s + i, k - i);
            i = k;
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(j, e, 2);
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(s + i, n - i);
            if (l) {
                put(j, (const char *)s + i, l);
                i += l;
                continue;
            }
        }
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        put(j, e, 6);
        i++;
    }
    putc_(j, '"');
}

/* True when all n bytes of s need no escaping: plain_prefix() == n, without its byte loop
 * (the last word overlaps the one before it; short strings go by halves). */
static inline bool all_plain(const char *s, size_t n)
{
    uint64_t x, t = 0;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8) {
            memcpy(&x, s + i, 8);
            uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
            t |= ((x - ONES * 0x20) & ~x) | x | ((q - ONES) & ~q) | ((b - ONES) & ~b);
        }
        memcpy(&x, s + n - 8, 8);
    } else if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        x = (uint64_t)hi << 32 | lo;
    } else {
        for (size_t i = 0; i < n; i++)
            if (!plain_byte((unsigned char)s[i]))
                return false;
        return true;
    }
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    t |= ((x - ONES * 0x20) & ~x) | x | ((q - ONES) & ~q) | ((b - ONES) & ~b);
    return !(t & HIGHS);
}

/* `,"key":` for a plain key of known length, with room for the value's vn bytes after it
 * (and the NUL); returns where the value goes, or NULL when out of memory. */
static inline __attribute__((always_inline)) char *plain_key(struct sn_json *j, const char *key,
                                                             size_t klen, bool comma, size_t vn)
{
    char *o = room(j, (size_t)comma + klen + 3 + vn);
    if (!o)
        return NULL;
    if (comma)
        *o++ = ',';
    *o++ = '"';
    o = copy(o, key, klen);
    *o++ = '"';
    *o++ = ':';
    return o;
}

/* member() for a key of unknown length: measured (libc's strlen is word-at-a-time) and
 * checked, then escaped only when it must be. */
static char *member_scan(struct sn_json *j, const char *key, bool comma, size_t vn)
{
    size_t klen = strlen(key);
    if (!all_plain(key, klen)) {
        if (comma)
            putc_(j, ',');
        put_string(j, key, klen);
        putc_(j, ':');
        return room(j, vn);
    }
    return plain_key(j, key, klen, comma, vn);
}

/* Starts a member: the comma when one is due, then `"key":` inside an object. Returns where
 * the value's vn bytes go (room for them and the NUL is reserved), or NULL when out of
 * memory. klen is the key's length when the caller knows it is plain (see json.h), else
 * SN_JSON_KEY_SCAN. */
static inline __attribute__((always_inline)) char *member(struct sn_json *j, const char *key,
                                                          size_t klen, size_t vn)
{
    bool comma = !j->first[j->depth];
    j->first[j->depth] = false;
    if (!key) {
        char *o = room(j, (size_t)comma + vn);
        if (o && comma)
            *o++ = ',';
        return o;
    }
    if (klen == SN_JSON_KEY_SCAN)
        return member_scan(j, key, comma, vn);
    return plain_key(j, key, klen, comma, vn);
}

static void open_(struct sn_json *j, const char *key, size_t klen, char ch)
{
    char *o = member(j, key, klen, 1);
    if (o) {
        *o++ = ch;
        end(j, o);
    }
    if (j->depth + 1 < SN_JSON_MAX_DEPTH) {
        j->depth++;
        j->first[j->depth] = true;
    } else {
        j->oom = true; /* too deep is a programmer error; refuse rather than corrupt */
    }
}

static void close_(struct sn_json *j, char ch)
{
    putc_(j, ch);
    if (j->depth > 0)
        j->depth--;
}

void sn_json_obj_begin_k(struct sn_json *j, const char *key, size_t klen)
{
    open_(j, key, klen, '{');
}

void sn_json_obj_end(struct sn_json *j)
{
    close_(j, '}');
}

void sn_json_arr_begin_k(struct sn_json *j, const char *key, size_t klen)
{
    open_(j, key, klen, '[');
}

void sn_json_arr_end(struct sn_json *j)
{
    close_(j, ']');
}

/* The test word for eight bytes: a top bit is set for a byte below 0x20, with the top bit
 * set, or equal to a quote or backslash (see plain_prefix). */
static inline uint64_t special8(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    return (((x - ONES * 0x20) & ~x) | x | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

/* Copies n bytes of s to o (room for them) and tells whether all were plain: one pass
 * instead of a check and then a copy. */
static inline bool copy_plain(char *o, const char *s, size_t n)
{
    uint64_t x, t = 0;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, s + i, 8);
            memcpy(o + i, &x, 8);
            t |= special8(x);
        }
        memcpy(&x, s + n - 8, 8); /* the last word, overlapping the one before */
        memcpy(o + n - 8, &x, 8);
        return !(t | special8(x));
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        memcpy(o, &lo, 4);
        memcpy(o + n - 4, &hi, 4);
        return !special8((uint64_t)hi << 32 | lo);
    }
    if (!n)
        return true;
    /* 1 to 3 bytes: first, middle and last cover them all; the rest of the test word is a
     * plain filler. */
    unsigned char a = (unsigned char)s[0], m = (unsigned char)s[n / 2], z = (unsigned char)s[n - 1];
    o[0] = (char)a;
    o[n / 2] = (char)m;
    o[n - 1] = (char)z;
    return !special8((ONES * 'a' & ~0xffffffull) | (uint64_t)z << 16 | (uint64_t)m << 8 | a);
}

void sn_json_strn_k(struct sn_json *j, const char *key, size_t klen, const char *val, size_t n)
{
    char *o = member(j, key, klen, n + 2);
    if (!o)
        return;
    *o = '"';
    if (copy_plain(o + 1, val, n)) { /* the usual case: one reservation, one pass */
        o[n + 1] = '"';
        end(j, o + n + 2);
        return;
    }
    end(j, o); /* keep the key; the value needs escaping */
    put_string(j, val, n);
}

static const char pairs[] = /* "00" to "99" */
    "00010203040506070809101112131415161718192021222324252627282930"
    "31323334353637383940414243444546474849505152535455565758596061"
    "62636465666768697071727374757677787980818283848586878889909192"
    "93949596979899";

/* Decimal digits of v ending at e; returns the first digit. Two digits per division, in
 * 32-bit arithmetic once v fits. Faster than snprintf, which dominated record formatting. */
static inline __attribute__((always_inline)) char *u64_digits(uint64_t v, char *e)
{
    char *p = e;
    while (v > UINT32_MAX) {
        uint64_t q = v / 100;
        p -= 2;
        memcpy(p, pairs + 2 * (v - q * 100), 2);
        v = q;
    }
    uint32_t w = (uint32_t)v;
    while (w >= 100) {
        uint32_t q = w / 100;
        p -= 2;
        memcpy(p, pairs + 2 * (w - q * 100), 2);
        w = q;
    }
    if (w >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * w, 2);
    } else {
        *--p = (char)('0' + w);
    }
    return p;
}

/* Number of decimal digits of v (1 for 0): from its bit length, 1233/4096 ~ log10(2). */
static inline size_t ndigits(uint64_t v)
{
    static const uint64_t pow10[20] = {
        1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
        100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
        10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
        100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull};
    if (v < 100) /* most counters */
        return 1 + (v >= 10);
    v |= 1; /* same digit count (powers of ten are even) */
    unsigned n = (unsigned)(64 - __builtin_clzll(v)) * 1233 >> 12;
    return n + (v >= pow10[n]);
}

char *sn_json_put_u64_big(char *o, uint64_t v)
{
    char *e = o + ndigits(v);
    u64_digits(v, e);
    return e;
}

/* Writes a member whose value is the n bytes at s (already JSON text). */
static inline __attribute__((always_inline)) void raw_member(struct sn_json *j, const char *key, size_t klen, const char *s, size_t n)
{
    char *o = member(j, key, klen, n);
    if (o)
        end(j, copy(o, s, n));
}

static __attribute__((noinline)) void u64_any(struct sn_json *j, const char *key, size_t klen,
                                               uint64_t v)
{
    size_t n = ndigits(v);
    char *o = member(j, key, klen, n); /* digits go straight into the buffer */
    if (o) {
        u64_digits(v, o + n);
        end(j, o + n);
    }
}

void sn_json_u64_k(struct sn_json *j, const char *key, size_t klen, uint64_t v)
{
    /* The common cases inline with no call on their way, so no registers to save: no key (an
     * array element) or a known one, and room in the buffer. The rest goes to u64_any. */
    size_t n = ndigits(v);
    bool comma = !j->first[j->depth];
    size_t kn = key ? klen + 3 : 0;
    if ((key && klen == SN_JSON_KEY_SCAN) || j->len + comma + kn + n + 1 > j->cap) {
        u64_any(j, key, klen, v);
        return;
    }
    j->first[j->depth] = false;
    char *o = j->buf + j->len;
    if (comma)
        *o++ = ',';
    if (key) {
        *o++ = '"';
        o = copy(o, key, klen);
        *o++ = '"';
        *o++ = ':';
    }
    u64_digits(v, o + n);
    end(j, o + n);
}

void sn_json_i64_k(struct sn_json *j, const char *key, size_t klen, int64_t v)
{
    char b[24];
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(mag, b + sizeof(b));
    if (v < 0)
        *--p = '-';
    raw_member(j, key, klen, p, (size_t)(b + sizeof(b) - p));
}

void sn_json_dbl_k(struct sn_json *j, const char *key, size_t klen, double v, int prec)
{
    char b[64];
    if (!isfinite(v))
        v = 0;
    int n = snprintf(b, sizeof(b), "%.*f", prec, v);
    raw_member(j, key, klen, b, (size_t)(n > 0 && n < (int)sizeof(b) ? n : 0));
}

void sn_json_bool_k(struct sn_json *j, const char *key, size_t klen, bool v)
{
    raw_member(j, key, klen, v ? "true" : "false", v ? 4 : 5);
}

void sn_json_null_k(struct sn_json *j, const char *key, size_t klen)
{
    raw_member(j, key, klen, "null", 4);
}

void sn_json_hex_k(struct sn_json *j, const char *key, size_t klen, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n > (SIZE_MAX - 2) / 2) {
        j->oom = true;
        return;
    }
    char *o = member(j, key, klen, 2 * n + 2);
    if (!o)
        return;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        *o++ = hex[p[i] >> 4];
        *o++ = hex[p[i] & 15];
    }
    *o++ = '"';
    end(j, o);
}

void sn_json_ts_k(struct sn_json *j, const char *key, size_t klen, int64_t usec)
{
    uint64_t mag = usec < 0 ? (uint64_t)0 - (uint64_t)usec : (uint64_t)usec;
    uint64_t sec = mag / 1000000;
    uint32_t frac = (uint32_t)(mag % 1000000);
    size_t n = (usec < 0) + ndigits(sec) + 7; /* [-]seconds.micros */
    char *o = member(j, key, klen, n);
    if (!o)
        return;
    char *e = o + n;
    uint32_t lo = frac % 10000; /* six digits with leading zeros, as three pairs */
    memcpy(e - 6, pairs + 2 * (frac / 10000), 2);
    memcpy(e - 4, pairs + 2 * (lo / 100), 2);
    memcpy(e - 2, pairs + 2 * (lo % 100), 2);
    e[-7] = '.';
    u64_digits(sec, e - 7);
    if (usec < 0)
        *o = '-';
    end(j, e);
}

char *sn_json_raw_begin(struct sn_json *j, size_t n)
{
    return member(j, NULL, 0, n);
}

void sn_json_raw_end(struct sn_json *j, char *o)
{
    end(j, o);
}

void sn_json_nl(struct sn_json *j)
{
    putc_(j, '\n');
    j->depth = 0;
    j->first[0] = true;
}

/* ---- the same calls as real functions (the header's macros call the _k forms) ---- */

void(sn_json_obj_begin)(struct sn_json *j, const char *key)
{
    sn_json_obj_begin_k(j, key, SN_JSON_KEY_SCAN);
}

void(sn_json_arr_begin)(struct sn_json *j, const char *key)
{
    sn_json_arr_begin_k(j, key, SN_JSON_KEY_SCAN);
}

void(sn_json_str)(struct sn_json *j, const char *key, const char *val)
{
    sn_json_strn_k(j, key, SN_JSON_KEY_SCAN, val, strlen(val));
}

void(sn_json_strn)(struct sn_json *j, const char *key, const char *val, size_t n)
{
    sn_json_strn_k(j, key, SN_JSON_KEY_SCAN, val, n);
}

void(sn_json_u64)(struct sn_json *j, const char *key, uint64_t v)
{
    sn_json_u64_k(j, key, SN_JSON_KEY_SCAN, v);
}

void(sn_json_i64)(struct sn_json *j, const char *key, int64_t v)
{
    sn_json_i64_k(j, key, SN_JSON_KEY_SCAN, v);
}

void(sn_json_dbl)(struct sn_json *j, const char *key, double v, int prec)
{
    sn_json_dbl_k(j, key, SN_JSON_KEY_SCAN, v, prec);
}

void(sn_json_bool)(struct sn_json *j, const char *key, bool v)
{
    sn_json_bool_k(j, key, SN_JSON_KEY_SCAN, v);
}

void(sn_json_null)(struct sn_json *j, const char *key)
{
    sn_json_null_k(j, key, SN_JSON_KEY_SCAN);
}

void(sn_json_hex)(struct sn_json *j, const char *key, const uint8_t *p, size_t n)
{
    sn_json_hex_k(j, key, SN_JSON_KEY_SCAN, p, n);
}

void(sn_json_ts)(struct sn_json *j, const char *key, int64_t usec)
{
    sn_json_ts_k(j, key, SN_JSON_KEY_SCAN, usec);
}
