/* err: project error codes and the per-thread message ring.
 *
 * A fallible function returns 0 or a negative code: -errno where one fits, else one of
 * the SN_E* codes below. Details go into a 16-entry per-thread ring through SN_ERR(),
 * which returns the negated code so a caller can write `return SN_ERR(EIO, "...")`.
 * Thread safety: the ring is thread-local; every function here is safe from any thread.
 */
#ifndef SN_ERR_H
#define SN_ERR_H

#include <stddef.h>

#define SN_ETRUNC 1000 /* input incomplete: snaplen, partial segment, short file */
#define SN_EPROTO 1001 /* input malformed */
#define SN_EFULL 1002  /* a bounded table or queue is full: back off */
#define SN_ECONFIG 1003 /* a configuration value or file is wrong */

#ifndef SN_LOG_MOD
#define SN_LOG_MOD "spanprint"
#endif

/* Formats "<mod>: <text>" into the ring; returns -code. */
int sn_err_push(int code, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SN_ERR(code, ...) sn_err_push((code), SN_LOG_MOD, __VA_ARGS__)

/* The newest message in this thread's ring, or "" when none. Borrowed: valid until the
 * 16th next SN_ERR() on this thread. */
const char *sn_err_last(void);

/* A short text for a code (positive or negative): strerror() for errno values. */
const char *sn_err_str(int code);

/* Empties this thread's ring (tests use it). */
void sn_err_clear(void);

#endif
