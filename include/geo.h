/* geo: country/city and ASN enrichment from MaxMind DB files (libmaxminddb).
 *
 * Accepts a City or Country database (GeoIP2/GeoLite2 City, Country, Enterprise, and the
 * DB-IP lite City/Country layout) and an ASN database (GeoLite2-ASN, GeoIP2-ISP, DB-IP ASN
 * lite). Either may be absent. Addresses that are not globally routable (RFC 1918, loopback,
 * link-local, documentation, multicast, CGNAT, ...) get a scope and no lookup.
 *
 * Threads: an sn_geo handle is used by one thread at a time. Each worker gets its own handle
 * with sn_geo_clone(): clones share the opened databases (read-only mmap, reference counted)
 * but each has its own lookup cache and counters, so lookups take no lock. A reload
 * (sn_geo_reload / sn_geo_reload_if_changed, from any one handle, e.g. the main thread's)
 * opens the new files completely, then swaps them in under a mutex and bumps a generation
 * number. Every handle notices the new generation on its next lookup (one atomic load per
 * lookup), takes a reference on the new databases, drops the old ones and invalidates its
 * cache, so no stale answer survives a reload. The old databases are closed when the last
 * handle has moved off them. Replace database files by rename(2) (as geoipupdate does):
 * rewriting a mapped file in place can fault readers.
 *
 * Ownership: strings in sn_geo_info are copied out of the database; the record owns them.
 */
#ifndef SN_GEO_H
#define SN_GEO_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "json.h"

/* Address scope, decided from the address alone before any lookup. */
enum sn_geo_scope {
    SN_GEO_PUBLIC = 0, /* looked up */
    SN_GEO_PRIVATE,    /* 10/8, 172.16/12, 192.168/16, fc00::/7 */
    SN_GEO_LOOPBACK,   /* 127/8, ::1 */
    SN_GEO_LINKLOCAL,  /* 169.254/16, fe80::/10 */
    SN_GEO_DOC,        /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20 */
    SN_GEO_MULTICAST,  /* 224/4, ff00::/8 */
    SN_GEO_CGNAT,      /* 100.64/10 (RFC 6598) */
    SN_GEO_UNSPEC,     /* 0/8, ::, family 0 */
    SN_GEO_RESERVED,   /* 240/4, 255.255.255.255, 192.0.0/24, 198.18/15 */
};

#define SN_GEO_CITY_MAX 64
#define SN_GEO_ORG_MAX 96
#define SN_GEO_CACHE_ENTRIES 4096 /* per handle, direct mapped, ~800 KiB; a power of two */

struct sn_geo_info {
    uint8_t scope;   /* enum sn_geo_scope */
    bool found_city; /* the City/Country database had a record */
    bool found_asn;  /* the ASN database had a record */
    char country[3];   /* ISO 3166-1 alpha-2, "" when unknown */
    char continent[3]; /* "EU", "NA", ... */
    char city[SN_GEO_CITY_MAX];   /* English name, UTF-8, truncated on a character boundary */
    uint32_t asn;                 /* 0 when unknown */
    char asn_org[SN_GEO_ORG_MAX]; /* UTF-8, truncated on a character boundary */
};

/* Counters of one handle. reloads is shared by all clones (do not sum it across handles). */
/* Only uint64_t counters: pipeline.c sums a set of these word by word. */
struct sn_geo_stats {
    uint64_t lookups;    /* public addresses looked up (cache hits included) */
    uint64_t cache_hits;
    uint64_t not_found;  /* lookups where no open database had a record */
    uint64_t errors;     /* libmaxminddb lookup/decoding errors (corrupt data) */
    uint64_t reloads;    /* successful reloads */
};

struct sn_geo;

/* Opens the databases; either path may be NULL (that part off). A path that does not exist
 * logs one warning naming the file and turns that part off (sn_geo_reload_if_changed picks
 * it up when it appears). A corrupt file, or one of the wrong database type (an ASN file as
 * city_path, ...), returns NULL with "geo: <file>: <reason>" in the error ring.
 * Returns owned; free with sn_geo_free. */
struct sn_geo *sn_geo_open(const char *city_path, const char *asn_path);

/* A new handle on the same databases for another thread (own cache and counters).
 * Returns owned, or NULL on allocation failure. */
struct sn_geo *sn_geo_clone(struct sn_geo *g);

/* Accepts NULL. The databases close when the last handle is freed. */
void sn_geo_free(struct sn_geo *g);

/* Fills out (always fully initialised). g may be NULL: scope only. */
void sn_geo_lookup(struct sn_geo *g, const struct sn_addr *a, struct sn_geo_info *out);

/* Also look up non-public addresses (scope is still reported). Off by default; for test
 * captures built on documentation ranges. */
void sn_geo_set_lookup_all(struct sn_geo *g, bool on);

/* The scope of an address, and its name ("public", "private", "loopback", "link-local",
 * "documentation", "multicast", "cgnat", "unspecified", "reserved"). */
uint8_t sn_geo_scope(const struct sn_addr *a);
const char *sn_geo_scope_name(uint8_t scope);

/* Writes members into the current (client or server) object:
 *   "geo": {"country": "GB", "continent": "EU", "city": "London", "scope": "private"}
 *   "asn": {"number": 1221, "org": "Telstra Pty Ltd"}
 * Each member only when known; "scope" only when not public; an object with no member is
 * not written at all. */
void sn_geo_json(const struct sn_geo_info *gi, struct sn_json *j);

/* Reopens both files; the new databases replace the old ones atomically for every handle.
 * On failure the old databases stay in use. A file missing now that was missing at open
 * stays off. Returns 0 or a negative code with "geo: <file>: <reason>" in the error ring. */
int sn_geo_reload(struct sn_geo *g) __attribute__((warn_unused_result));

/* stat()s both files and reloads when one was replaced (device, inode, size or mtime
 * changed, or a missing file appeared). A file that has disappeared is left alone (the old
 * database stays). A replacement that failed to load is not retried until it changes again.
 * Returns 1 when reloaded, 0 when nothing changed, or a negative code (as sn_geo_reload). */
int sn_geo_reload_if_changed(struct sn_geo *g) __attribute__((warn_unused_result));

/* Copies this handle's counters into out. */
void sn_geo_get_stats(const struct sn_geo *g, struct sn_geo_stats *out);

/* The database_type of the open City/Country and ASN databases, or NULL when off. Borrowed:
 * valid until the next reload. For logs at startup. */
const char *sn_geo_city_type(const struct sn_geo *g);
const char *sn_geo_asn_type(const struct sn_geo *g);

#endif
