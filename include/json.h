/* json: an append-only JSON writer into a growable buffer, for NDJSON records.
 *
 * Keys are written in call order, so output is deterministic. Inside an object pass a key;
 * inside an array pass NULL. Strings are escaped (control bytes, quote, backslash; bytes
 * that are not valid UTF-8 become \u00XX of the byte so output is always valid JSON).
 * Allocation failure is sticky: sn_json_ok() turns false and further calls do nothing.
 * Ownership: the buffer belongs to the writer; sn_json_take() hands it to the caller.
 * Thread safety: one writer per thread.
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

#endif
