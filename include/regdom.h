/* regdom: the registrable domain ("eTLD+1") of a host name, for fingerprint service keys.
 *
 * No libpsl dependency: a built-in list of multi-label public suffixes (second-level ccTLD
 * registries such as co.uk, com.au, co.jp, and a few shared hosting suffixes) is checked;
 * otherwise the last two labels are the registrable domain. So api.openai.com -> openai.com,
 * www.bbc.co.uk -> bbc.co.uk, a.b.example.com.au -> example.com.au. The name is lowercased
 * and a trailing dot dropped; a single-label name, an IP literal (digits and dots, or any ':')
 * is returned whole. Thread safety: pure function.
 */
#ifndef SN_REGDOM_H
#define SN_REGDOM_H

#include <stddef.h>

/* Writes the registrable domain of host (n bytes) into out[cap] (NUL-terminated, truncated
 * to cap-1). Returns the output length; 0 for an empty name. */
size_t sn_regdom_get(const char *host, size_t n, char *out, size_t cap);

#endif
