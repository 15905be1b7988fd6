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
}

bool sn_json_ok(const struct sn_json *j)
{
    return !j->oom;
}

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

static inline void put(struct sn_json *j, const char *s, size_t n)
{
    if (j->len + n + 1 > j->cap && !reserve(j, n))
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static inline void putc_(struct sn_json *j, char ch)
{
    if (j->len + 2 > j->cap && !reserve(j, 1))
        return;
    j->buf[j->len++] = ch;
    j->buf[j->len] = '\0';
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

static void put_string(struct sn_json *j, const char *val, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)val;
    putc_(j, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            size_t k = i;
            while (k < n && s[k] >= 0x20 && s[k] < 0x80 && s[k] != '"' && s[k] != '\\')
                k++;
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

/* True when s needs no escaping (printable ASCII without quote or backslash). */
static bool plain_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static void member(struct sn_json *j, const char *key)
{
    bool comma = !j->first[j->depth];
    j->first[j->depth] = false;
    if (!key) {
        if (comma)
            putc_(j, ',');
        return;
    }
    /* Keys are almost always program constants: one copy for `,"key":`. */
    size_t n = strlen(key);
    if (plain_ascii(key, n)) {
        size_t need = n + 4;
        if (j->len + need + 1 > j->cap && !reserve(j, need))
            return;
        char *o = j->buf + j->len;
        if (comma)
            *o++ = ',';
        *o++ = '"';
        memcpy(o, key, n);
        o += n;
        *o++ = '"';
        *o++ = ':';
        *o = '\0';
        j->len = (size_t)(o - j->buf);
        return;
    }
    if (comma)
        putc_(j, ',');
    put_string(j, key, n);
    putc_(j, ':');
}

static void open_(struct sn_json *j, const char *key, char ch)
{
    member(j, key);
    putc_(j, ch);
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

void sn_json_obj_begin(struct sn_json *j, const char *key)
{
    open_(j, key, '{');
}

void sn_json_obj_end(struct sn_json *j)
{
    close_(j, '}');
}

void sn_json_arr_begin(struct sn_json *j, const char *key)
{
    open_(j, key, '[');
}

void sn_json_arr_end(struct sn_json *j)
{
    close_(j, ']');
}

void sn_json_strn(struct sn_json *j, const char *key, const char *val, size_t n)
{
    member(j, key);
    put_string(j, val, n);
}

void sn_json_str(struct sn_json *j, const char *key, const char *val)
{
    sn_json_strn(j, key, val, strlen(val));
}

/* Decimal digits of v into the end of buf[20]; returns the first digit. Faster than
 * snprintf, which dominated record formatting. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void sn_json_u64(struct sn_json *j, const char *key, uint64_t v)
{
    char b[20];
    char *p = u64_digits(v, b + sizeof(b));
    member(j, key);
    put(j, p, (size_t)(b + sizeof(b) - p));
}

void sn_json_i64(struct sn_json *j, const char *key, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%" PRId64, v);
    member(j, key);
    put(j, b, (size_t)n);
}

void sn_json_dbl(struct sn_json *j, const char *key, double v, int prec)
{
    char b[64];
    if (!isfinite(v))
        v = 0;
    int n = snprintf(b, sizeof(b), "%.*f", prec, v);
    member(j, key);
    put(j, b, (size_t)(n > 0 && n < (int)sizeof(b) ? n : 0));
}

void sn_json_bool(struct sn_json *j, const char *key, bool v)
{
    member(j, key);
    put(j, v ? "true" : "false", v ? 4 : 5);
}

void sn_json_null(struct sn_json *j, const char *key)
{
    member(j, key);
    put(j, "null", 4);
}

void sn_json_hex(struct sn_json *j, const char *key, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    member(j, key);
    putc_(j, '"');
    for (size_t i = 0; i < n; i++) {
        char b[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        put(j, b, 2);
    }
    putc_(j, '"');
}

void sn_json_ts(struct sn_json *j, const char *key, int64_t usec)
{
    char b[32];
    uint64_t mag = usec < 0 ? (uint64_t)0 - (uint64_t)usec : (uint64_t)usec;
    char *end = b + sizeof(b), *p = end;
    uint64_t frac = mag % 1000000;
    for (int i = 0; i < 6; i++) {
        *--p = (char)('0' + frac % 10);
        frac /= 10;
    }
    *--p = '.';
    p = u64_digits(mag / 1000000, p);
    if (usec < 0)
        *--p = '-';
    member(j, key);
    put(j, p, (size_t)(end - p));
}

void sn_json_nl(struct sn_json *j)
{
    putc_(j, '\n');
    j->depth = 0;
    j->first[0] = true;
}
