/* json: an append-only JSON writer into a growable buffer, for NDJSON records.
 *
 * Keys are written in call order, so output is deterministic. Inside an object pass a key;
 * inside an array pass NULL. Strings are escaped (control bytes, quote, backslash; bytes
 * that are not valid UTF-8 become \u00XX of the byte so output is always valid JSON).
 * Allocation failure is sticky: sn_json_ok() turns false and further calls do nothing.
 * The buffer is NUL-terminated after every call (buf[len] == '\0').
 * Ownership: the buffer belongs to the writer; callers read buf[0..len) until the next call.
 * Thread safety: one writer per thread.
 *
 * Keys and speed. Every call that takes a key is a macro over a sn_json_*_k() function that
 * also takes the key's length. When the key is a string literal of at most SN_JSON_LIT_MAX
 * bytes that need no escaping (printable ASCII, no quote or backslash), the macro computes
 * that length at compile time and the writer copies the key as is (no strlen, no scan).
 * Any other key (a variable, a rule attribute, NULL, or a literal that needs escaping) gets
 * SN_JSON_KEY_SCAN and is measured and escaped at run time. Both paths write the same bytes.
 * Contract for direct callers of a *_k() function: pass SN_JSON_KEY_SCAN, or the exact
 * length of a key that needs no escaping. The plain functions (sn_json_u64 etc.) also exist
 * as real functions, e.g. `(sn_json_u64)(j, key, v)` or a function pointer, and scan.
 */
#ifndef SN_JSON_H
#define SN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_JSON_MAX_DEPTH 16

struct sn_json {
    char *buf;
    size_t len, cap;
    int depth;
    bool first[SN_JSON_MAX_DEPTH]; /* no member written yet at this depth */
    bool oom;
};

void sn_json_init(struct sn_json *j);
void sn_json_fini(struct sn_json *j);
/* Empties the buffer, keeps its memory. */
void sn_json_reset(struct sn_json *j);
bool sn_json_ok(const struct sn_json *j);

void sn_json_obj_begin(struct sn_json *j, const char *key);
void sn_json_obj_end(struct sn_json *j);
void sn_json_arr_begin(struct sn_json *j, const char *key);
void sn_json_arr_end(struct sn_json *j);

void sn_json_str(struct sn_json *j, const char *key, const char *val);
/* A string of n bytes (need not be NUL-terminated). */
void sn_json_strn(struct sn_json *j, const char *key, const char *val, size_t n);
void sn_json_u64(struct sn_json *j, const char *key, uint64_t v);
void sn_json_i64(struct sn_json *j, const char *key, int64_t v);
/* A number with `prec` digits after the point (fixed notation, deterministic). */
void sn_json_dbl(struct sn_json *j, const char *key, double v, int prec);
void sn_json_bool(struct sn_json *j, const char *key, bool v);
void sn_json_null(struct sn_json *j, const char *key);
/* Lowercase hex of n bytes as a string. */
void sn_json_hex(struct sn_json *j, const char *key, const uint8_t *p, size_t n);
/* A timestamp in seconds with microseconds: 1700000000.123456 (a JSON number). */
void sn_json_ts(struct sn_json *j, const char *key, int64_t usec);

/* Appends a newline (end of an NDJSON record). */
void sn_json_nl(struct sn_json *j);

/* Direct writing, for record builders that know their text (like agg's fingerprints):
 * sn_json_raw_begin writes the comma due at the current depth and returns where at most n
 * bytes go (room for them and the NUL is reserved), or NULL when out of memory. The caller
 * writes one or more complete members ("key":value, joined by commas; or array values),
 * balanced and already escaped, then passes the end to sn_json_raw_end. */
char *sn_json_raw_begin(struct sn_json *j, size_t n);
void sn_json_raw_end(struct sn_json *j, char *end);

/* ---- keys of known length (see "Keys and speed" above) ---- */

#define SN_JSON_KEY_SCAN ((size_t)-1) /* length unknown: measure and escape at run time */
#define SN_JSON_LIT_MAX 32

void sn_json_obj_begin_k(struct sn_json *j, const char *key, size_t klen);
void sn_json_arr_begin_k(struct sn_json *j, const char *key, size_t klen);
void sn_json_strn_k(struct sn_json *j, const char *key, size_t klen, const char *val, size_t n);
void sn_json_u64_k(struct sn_json *j, const char *key, size_t klen, uint64_t v);
void sn_json_i64_k(struct sn_json *j, const char *key, size_t klen, int64_t v);
void sn_json_dbl_k(struct sn_json *j, const char *key, size_t klen, double v, int prec);
void sn_json_bool_k(struct sn_json *j, const char *key, size_t klen, bool v);
void sn_json_null_k(struct sn_json *j, const char *key, size_t klen);
void sn_json_hex_k(struct sn_json *j, const char *key, size_t klen, const uint8_t *p, size_t n);
void sn_json_ts_k(struct sn_json *j, const char *key, size_t klen, int64_t usec);

/* The value's length is measured here, so a literal value's folds too. */
static inline void sn_json_str_k(struct sn_json *j, const char *key, size_t klen, const char *val)
{
    sn_json_strn_k(j, key, klen, val, __builtin_strlen(val));
}

/* The compile-time length. For a string literal every term below folds to a constant; for
 * any other key __builtin_constant_p(strlen) is false and the key is not evaluated here (the
 * call evaluates it once). Byte i of key k (length n) must need no escaping, or lie past the
 * end. NULL (no key) reads as "". */
#define SN_JSON_KS_(key) ((const char *)((key) ? (key) : ""))
#define SN_JSON_OK_(c) ((unsigned)(unsigned char)(c) - 0x20u < 0x60u && (c) != '"' && (c) != '\\')
#define SN_JSON_C_(k, n, i) ((n) <= (i) || SN_JSON_OK_((k)[(i) < (n) ? (i) : 0]))
#define SN_JSON_C8_(k, n, i)                                                                       \
    (SN_JSON_C_(k, n, (i) + 0) && SN_JSON_C_(k, n, (i) + 1) && SN_JSON_C_(k, n, (i) + 2) &&        \
     SN_JSON_C_(k, n, (i) + 3) && SN_JSON_C_(k, n, (i) + 4) && SN_JSON_C_(k, n, (i) + 5) &&        \
     SN_JSON_C_(k, n, (i) + 6) && SN_JSON_C_(k, n, (i) + 7))
#define SN_JSON_PLAIN_(k, n)                                                                       \
    ((n) <= SN_JSON_LIT_MAX && SN_JSON_C8_(k, n, 0) && SN_JSON_C8_(k, n, 8) &&                    \
     SN_JSON_C8_(k, n, 16) && SN_JSON_C8_(k, n, 24))
#define SN_JSON_KLEN_(key)                                                                         \
    (__builtin_constant_p(__builtin_strlen(SN_JSON_KS_(key))) &&                                   \
             SN_JSON_PLAIN_(SN_JSON_KS_(key), __builtin_strlen(SN_JSON_KS_(key)))                  \
         ? __builtin_strlen(SN_JSON_KS_(key))                                                      \
         : SN_JSON_KEY_SCAN)

#define sn_json_obj_begin(j, key) sn_json_obj_begin_k((j), (key), SN_JSON_KLEN_(key))
#define sn_json_arr_begin(j, key) sn_json_arr_begin_k((j), (key), SN_JSON_KLEN_(key))
#define sn_json_str(j, key, val) sn_json_str_k((j), (key), SN_JSON_KLEN_(key), (val))
#define sn_json_strn(j, key, val, n) sn_json_strn_k((j), (key), SN_JSON_KLEN_(key), (val), (n))
#define sn_json_u64(j, key, v) sn_json_u64_k((j), (key), SN_JSON_KLEN_(key), (v))
#define sn_json_i64(j, key, v) sn_json_i64_k((j), (key), SN_JSON_KLEN_(key), (v))
#define sn_json_dbl(j, key, v, prec) sn_json_dbl_k((j), (key), SN_JSON_KLEN_(key), (v), (prec))
#define sn_json_bool(j, key, v) sn_json_bool_k((j), (key), SN_JSON_KLEN_(key), (v))
#define sn_json_null(j, key) sn_json_null_k((j), (key), SN_JSON_KLEN_(key))
#define sn_json_hex(j, key, p, n) sn_json_hex_k((j), (key), SN_JSON_KLEN_(key), (p), (n))
#define sn_json_ts(j, key, usec) sn_json_ts_k((j), (key), SN_JSON_KLEN_(key), (usec))

/* Writes v in decimal at o (at most 20 bytes, no NUL) and returns the end. The one decimal
 * formatter of the tree: record writers that build text directly (agg, the workers' merger,
 * tls_fp's JA3 lists) use it too. */
char *sn_json_put_u64_big(char *o, uint64_t v); /* v >= 10; json.c's two-digit formatter */

static inline char *sn_json_put_u64(char *o, uint64_t v)
{
    if (v < 10) { /* most counts */
        *o = (char)('0' + v);
        return o + 1;
    }
    return sn_json_put_u64_big(o, v);
}

#endif
