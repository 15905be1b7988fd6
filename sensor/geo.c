#define SN_LOG_MOD "geo"
#include "geo.h"

#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "err.h"
#include "log.h"

/* Which file a database came from, to notice replacement without reopening it. */
struct file_id {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
};

enum { PART_CITY = 0, PART_ASN, NPARTS };

/* One generation of opened databases. Immutable once published; reference counted by the
 * shared state (while current) and by every handle using it. */
struct geo_dbs {
    atomic_uint refs;
    bool open[NPARTS];
    MMDB_s db[NPARTS];
    struct file_id id[NPARTS];
};

/* State shared by a handle and its clones. */
struct geo_shared {
    atomic_uint refs;            /* handles */
    pthread_mutex_t mu;          /* guards cur and gen writes; held only to swap/take a ref */
    pthread_mutex_t reload_mu;   /* serialises reloads (opening files happens outside mu) */
    struct geo_dbs *cur;
    atomic_uint_fast64_t gen;    /* bumped on every swap */
    atomic_uint_fast64_t reloads;
    char *path[NPARTS];
    struct file_id failed[NPARTS]; /* a replacement that failed: don't retry until it changes */
    bool have_failed[NPARTS];
};

struct cache_ent {
    uint32_t gen; /* valid when equal to the handle's cache_gen */
    struct sn_addr addr;
    struct sn_geo_info info;
};

struct sn_geo {
    struct geo_shared *sh;
    struct geo_dbs *dbs; /* this handle's reference */
    uint_fast64_t gen;   /* generation of dbs */
    uint32_t cache_gen;
    bool lookup_all;
    struct cache_ent *cache;
    struct sn_geo_stats st;
};

static const char *const part_name[NPARTS] = {"City/Country", "ASN"};

/* ---- address scope ---- */

/* Networks as big-endian words with their masks, so a test is one AND and compare per entry
 * (it runs for both ends of every flow record and fingerprint settle). */
struct scope_net4 {
    uint32_t net, mask;
    uint8_t scope;
};

struct scope_net6 {
    uint64_t hi, lo, mhi, mlo; /* address words and masks, most significant first */
    uint8_t scope;
};

#define NET4(a, b, c, d, bits, scope)                                                              \
    {(uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d),               \
     ~0u << (32 - (bits)), scope}
#define NET6(hi, lo, bits, scope)                                                                  \
    {hi, lo, ~0ull << ((bits) >= 64 ? 0 : 64 - (bits)),                                            \
     (bits) > 64 ? ~0ull << ((bits) > 64 ? 128 - (bits) : 0) : 0, scope}

/* IANA special-purpose registries (RFC 6890 and updates); first match wins, so more specific
 * prefixes come first where they nest. */
static const struct scope_net4 scope4[] = {
    NET4(0, 0, 0, 0, 8, SN_GEO_UNSPEC),
    NET4(10, 0, 0, 0, 8, SN_GEO_PRIVATE),
    NET4(100, 64, 0, 0, 10, SN_GEO_CGNAT),
    NET4(127, 0, 0, 0, 8, SN_GEO_LOOPBACK),
    NET4(169, 254, 0, 0, 16, SN_GEO_LINKLOCAL),
    NET4(172, 16, 0, 0, 12, SN_GEO_PRIVATE),
    NET4(192, 0, 0, 0, 24, SN_GEO_RESERVED),
    NET4(192, 0, 2, 0, 24, SN_GEO_DOC),
    NET4(192, 168, 0, 0, 16, SN_GEO_PRIVATE),
    NET4(198, 18, 0, 0, 15, SN_GEO_RESERVED),
    NET4(198, 51, 100, 0, 24, SN_GEO_DOC),
    NET4(203, 0, 113, 0, 24, SN_GEO_DOC),
    NET4(224, 0, 0, 0, 4, SN_GEO_MULTICAST),
    NET4(240, 0, 0, 0, 4, SN_GEO_RESERVED), /* includes 255.255.255.255 */
};

static const struct scope_net6 scope6[] = {
    NET6(0, 0, 128, SN_GEO_UNSPEC),
    NET6(0, 1, 128, SN_GEO_LOOPBACK),
    NET6(0x20010db800000000ull, 0, 32, SN_GEO_DOC),
    NET6(0x3fff000000000000ull, 0, 20, SN_GEO_DOC), /* RFC 9637 */
    NET6(0xfc00000000000000ull, 0, 7, SN_GEO_PRIVATE),
    NET6(0xfe80000000000000ull, 0, 10, SN_GEO_LINKLOCAL),
    NET6(0xff00000000000000ull, 0, 8, SN_GEO_MULTICAST),
};

#undef NET4
#undef NET6

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ::ffff:a.b.c.d carries an IPv4 address; classify and look it up as one. */
static bool is_v4_mapped(const struct sn_addr *a)
{
    static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return a->family == 6 && memcmp(a->a, pfx, 12) == 0;
}

/* first4[o]: some scope4 entry can match an address whose first octet is o. Most addresses
 * are public, and this answers them without walking the table. */
static bool first4[256];
static pthread_once_t first4_once = PTHREAD_ONCE_INIT;

static void first4_init(void)
{
    for (uint32_t o = 0; o < 256; o++)
        for (size_t i = 0; i < sizeof(scope4) / sizeof(scope4[0]); i++)
            if (((o << 24 ^ scope4[i].net) & scope4[i].mask & 0xff000000u) == 0)
                first4[o] = true;
}

static uint8_t scope4_of(const uint8_t *b)
{
    pthread_once(&first4_once, first4_init);
    if (!first4[b[0]])
        return SN_GEO_PUBLIC;
    uint32_t x = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    for (size_t i = 0; i < sizeof(scope4) / sizeof(scope4[0]); i++)
        if (((x ^ scope4[i].net) & scope4[i].mask) == 0)
            return scope4[i].scope;
    return SN_GEO_PUBLIC;
}

uint8_t sn_geo_scope(const struct sn_addr *a)
{
    if (a->family == 4)
        return scope4_of(a->a);
    if (a->family != 6)
        return SN_GEO_UNSPEC;
    uint64_t hi = be64(a->a), lo = be64(a->a + 8);
    if (hi == 0 && lo >> 32 == 0xffff) /* IPv4-mapped */
        return scope4_of(a->a + 12);
    for (size_t i = 0; i < sizeof(scope6) / sizeof(scope6[0]); i++)
        if (((hi ^ scope6[i].hi) & scope6[i].mhi) == 0 && ((lo ^ scope6[i].lo) & scope6[i].mlo) == 0)
            return scope6[i].scope;
    return SN_GEO_PUBLIC;
}

const char *sn_geo_scope_name(uint8_t scope)
{
    static const char *const names[] = {
        [SN_GEO_PUBLIC] = "public",       [SN_GEO_PRIVATE] = "private",
        [SN_GEO_LOOPBACK] = "loopback",   [SN_GEO_LINKLOCAL] = "link-local",
        [SN_GEO_DOC] = "documentation",   [SN_GEO_MULTICAST] = "multicast",
        [SN_GEO_CGNAT] = "cgnat",         [SN_GEO_UNSPEC] = "unspecified",
        [SN_GEO_RESERVED] = "reserved",
    };
    if (scope < sizeof(names) / sizeof(names[0]) && names[scope])
        return names[scope];
    return "unknown";
}

/* ---- opening ---- */

static void file_id_of(const struct stat *st, struct file_id *id)
{
    id->exists = true;
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtim = st->st_mtim;
}

static bool file_id_eq(const struct file_id *x, const struct file_id *y)
{
    if (x->exists != y->exists)
        return false;
    if (!x->exists)
        return true;
    return x->dev == y->dev && x->ino == y->ino && x->size == y->size &&
           x->mtim.tv_sec == y->mtim.tv_sec && x->mtim.tv_nsec == y->mtim.tv_nsec;
}

static bool type_ok(int part, const char *type)
{
    if (!type)
        return false;
    if (part == PART_CITY)
        return strstr(type, "City") || strstr(type, "Country") || strstr(type, "Enterprise");
    return strstr(type, "ASN") || strstr(type, "ISP");
}

static void dbs_close(struct geo_dbs *d)
{
    if (!d)
        return;
    for (int i = 0; i < NPARTS; i++)
        if (d->open[i])
            MMDB_close(&d->db[i]);
    free(d);
}

static void dbs_put(struct geo_dbs *d)
{
    if (d && atomic_fetch_sub(&d->refs, 1) == 1)
        dbs_close(d);
}

/* Opens one part. A missing file is not an error: *missing is set and the part stays off. */
static int open_part(struct geo_dbs *d, int part, const char *path, bool *missing)
{
    struct stat st;
    *missing = false;
    if (!path)
        return 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            *missing = true;
            return 0;
        }
        return SN_ERR(errno, "%s: %s", path, strerror(errno));
    }
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &d->db[part]);
    if (rc != MMDB_SUCCESS)
        return SN_ERR(SN_ECONFIG, "%s: %s", path, MMDB_strerror(rc));
    d->open[part] = true;
    file_id_of(&st, &d->id[part]);
    const char *type = d->db[part].metadata.database_type;
    if (!type_ok(part, type))
        return SN_ERR(SN_ECONFIG, "%s: database type '%s' is not a %s database", path,
                      type ? type : "(none)", part_name[part]);
    return 0;
}

/* Opens both parts into a new generation. warn: log a warning for a missing file. */
static struct geo_dbs *dbs_open(char *const path[NPARTS], bool warn, int *rc, bool missing[])
{
    struct geo_dbs *d = calloc(1, sizeof(*d));
    if (!d) {
        *rc = SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    atomic_init(&d->refs, 1);
    for (int i = 0; i < NPARTS; i++) {
        *rc = open_part(d, i, path[i], &missing[i]);
        if (*rc < 0) {
            dbs_close(d);
            return NULL;
        }
        if (missing[i] && warn)
            sn_warn("%s: no such file; %s enrichment off", path[i], part_name[i]);
    }
    *rc = 0;
    return d;
}

static void shared_put(struct geo_shared *sh)
{
    if (!sh || atomic_fetch_sub(&sh->refs, 1) != 1)
        return;
    dbs_put(sh->cur);
    for (int i = 0; i < NPARTS; i++)
        free(sh->path[i]);
    pthread_mutex_destroy(&sh->mu);
    pthread_mutex_destroy(&sh->reload_mu);
    free(sh);
}

static struct sn_geo *handle_new(struct geo_shared *sh)
{
    struct sn_geo *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->cache = calloc(SN_GEO_CACHE_ENTRIES, sizeof(*g->cache));
    if (!g->cache) {
        free(g);
        return NULL;
    }
    g->cache_gen = 1;
    atomic_fetch_add(&sh->refs, 1);
    g->sh = sh;
    pthread_mutex_lock(&sh->mu);
    g->dbs = sh->cur;
    atomic_fetch_add(&g->dbs->refs, 1);
    g->gen = atomic_load(&sh->gen);
    pthread_mutex_unlock(&sh->mu);
    return g;
}

struct sn_geo *sn_geo_open(const char *city_path, const char *asn_path)
{
    struct geo_shared *sh = calloc(1, sizeof(*sh));
    if (!sh) {
        SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&sh->mu, NULL);
    pthread_mutex_init(&sh->reload_mu, NULL);
    atomic_init(&sh->refs, 1);
    atomic_init(&sh->gen, 1);
    atomic_init(&sh->reloads, 0);
    const char *p[NPARTS] = {city_path, asn_path};
    for (int i = 0; i < NPARTS; i++) {
        if (p[i] && !(sh->path[i] = strdup(p[i]))) {
            SN_ERR(ENOMEM, "out of memory");
            goto fail;
        }
    }
    int rc;
    bool missing[NPARTS];
    sh->cur = dbs_open(sh->path, true, &rc, missing);
    if (!sh->cur)
        goto fail;
    struct sn_geo *g = handle_new(sh);
    if (!g) {
        SN_ERR(ENOMEM, "out of memory");
        goto fail;
    }
    shared_put(sh); /* the handle holds it now */
    return g;
fail:
    shared_put(sh);
    return NULL;
}

struct sn_geo *sn_geo_clone(struct sn_geo *g)
{
    struct sn_geo *c = handle_new(g->sh);
    if (!c) {
        SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    c->lookup_all = g->lookup_all;
    return c;
}

void sn_geo_free(struct sn_geo *g)
{
    if (!g)
        return;
    dbs_put(g->dbs);
    shared_put(g->sh);
    free(g->cache);
    free(g);
}

void sn_geo_set_lookup_all(struct sn_geo *g, bool on)
{
    if (g)
        g->lookup_all = on;
}

/* ---- reload ---- */

/* Moves this handle to the current generation if a reload happened. */
static void handle_sync(struct sn_geo *g)
{
    struct geo_shared *sh = g->sh;
    if (atomic_load_explicit(&sh->gen, memory_order_acquire) == g->gen)
        return;
    pthread_mutex_lock(&sh->mu);
    struct geo_dbs *old = g->dbs;
    g->dbs = sh->cur;
    atomic_fetch_add(&g->dbs->refs, 1);
    g->gen = atomic_load(&sh->gen);
    pthread_mutex_unlock(&sh->mu);
    dbs_put(old);
    g->cache_gen++;
    if (g->cache_gen == 0) { /* wrapped: entries from 4 billion reloads ago would match */
        memset(g->cache, 0, SN_GEO_CACHE_ENTRIES * sizeof(*g->cache));
        g->cache_gen = 1;
    }
}

/* Called with reload_mu held. */
static int reload_locked(struct sn_geo *g)
{
    struct geo_shared *sh = g->sh;
    int rc;
    bool missing[NPARTS];
    struct geo_dbs *d = dbs_open(sh->path, false, &rc, missing);
    if (!d)
        return rc;
    /* A file that was loaded and is gone now: keep the old databases. */
    for (int i = 0; i < NPARTS; i++) {
        if (missing[i] && sh->cur->open[i]) {
            dbs_close(d);
            return SN_ERR(ENOENT, "%s: no such file; keeping the loaded database", sh->path[i]);
        }
    }
    pthread_mutex_lock(&sh->mu);
    struct geo_dbs *old = sh->cur;
    sh->cur = d;
    atomic_fetch_add_explicit(&sh->gen, 1, memory_order_release);
    pthread_mutex_unlock(&sh->mu);
    dbs_put(old);
    atomic_fetch_add(&sh->reloads, 1);
    for (int i = 0; i < NPARTS; i++)
        sh->have_failed[i] = false;
    handle_sync(g);
    return 0;
}

int sn_geo_reload(struct sn_geo *g)
{
    pthread_mutex_lock(&g->sh->reload_mu);
    int rc = reload_locked(g);
    pthread_mutex_unlock(&g->sh->reload_mu);
    return rc;
}

int sn_geo_reload_if_changed(struct sn_geo *g)
{
    struct geo_shared *sh = g->sh;
    struct file_id now[NPARTS];
    bool changed = false;
    int rc = 0;
    pthread_mutex_lock(&sh->reload_mu);
    for (int i = 0; i < NPARTS; i++) {
        memset(&now[i], 0, sizeof(now[i]));
        struct stat st;
        if (!sh->path[i] || stat(sh->path[i], &st) != 0)
            continue; /* gone (perhaps mid-replace): keep what is loaded */
        file_id_of(&st, &now[i]);
        if (file_id_eq(&now[i], &sh->cur->id[i]))
            continue;
        if (sh->have_failed[i] && file_id_eq(&now[i], &sh->failed[i]))
            continue;
        changed = true;
    }
    if (changed) {
        rc = reload_locked(g);
        if (rc < 0) {
            for (int i = 0; i < NPARTS; i++) {
                sh->failed[i] = now[i];
                sh->have_failed[i] = now[i].exists;
            }
        } else {
            rc = 1;
        }
    }
    pthread_mutex_unlock(&sh->reload_mu);
    return rc;
}

/* ---- lookup ---- */

/* Copies at most cap-1 bytes, cutting before an incomplete UTF-8 sequence. */
static void copy_utf8(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--; /* src[n] is the first byte not copied: don't split its sequence */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Returns true if the value exists as a string; counts decoding errors. */
static bool get_str(struct sn_geo *g, MMDB_entry_s *e, char *dst, size_t cap, const char *const *path)
{
    MMDB_entry_data_s d;
    int rc = MMDB_aget_value(e, &d, path);
    if (rc != MMDB_SUCCESS) {
        if (rc != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
            g->st.errors++;
        return false;
    }
    if (!d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING)
        return false;
    copy_utf8(dst, cap, d.utf8_string, d.data_size);
    return true;
}

static bool find(struct sn_geo *g, int part, const struct sockaddr *sa, MMDB_entry_s *e)
{
    int merr = 0;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(&g->dbs->db[part], sa, &merr);
    if (merr == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
        return false;
    if (merr != MMDB_SUCCESS) {
        g->st.errors++;
        return false;
    }
    if (!r.found_entry)
        return false;
    *e = r.entry;
    return true;
}

static void db_lookup(struct sn_geo *g, const struct sn_addr *a, struct sn_geo_info *out)
{
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    const struct sockaddr *sa;
    if (a->family == 4 || is_v4_mapped(a)) {
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        memcpy(&s4.sin_addr, a->family == 4 ? a->a : a->a + 12, 4);
        sa = (const struct sockaddr *)&s4;
    } else {
        memset(&s6, 0, sizeof(s6));
        s6.sin6_family = AF_INET6;
        memcpy(&s6.sin6_addr, a->a, 16);
        sa = (const struct sockaddr *)&s6;
    }
    static const char *const p_country[] = {"country", "iso_code", NULL};
    static const char *const p_continent[] = {"continent", "code", NULL};
    static const char *const p_city[] = {"city", "names", "en", NULL};
    static const char *const p_asn[] = {"autonomous_system_number", NULL};
    static const char *const p_org[] = {"autonomous_system_organization", NULL};
    MMDB_entry_s e;
    if (g->dbs->open[PART_CITY] && find(g, PART_CITY, sa, &e)) {
        out->found_city = true;
        get_str(g, &e, out->country, sizeof(out->country), p_country);
        get_str(g, &e, out->continent, sizeof(out->continent), p_continent);
        get_str(g, &e, out->city, sizeof(out->city), p_city);
    }
    if (g->dbs->open[PART_ASN] && find(g, PART_ASN, sa, &e)) {
        out->found_asn = true;
        MMDB_entry_data_s d;
        int rc = MMDB_aget_value(&e, &d, p_asn);
        if (rc == MMDB_SUCCESS && d.has_data) {
            if (d.type == MMDB_DATA_TYPE_UINT32)
                out->asn = d.uint32;
            else if (d.type == MMDB_DATA_TYPE_UINT16)
                out->asn = d.uint16;
            else if (d.type == MMDB_DATA_TYPE_UINT64 && d.uint64 <= UINT32_MAX)
                out->asn = (uint32_t)d.uint64;
        } else if (rc != MMDB_SUCCESS && rc != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR) {
            g->st.errors++;
        }
        get_str(g, &e, out->asn_org, sizeof(out->asn_org), p_org);
    }
}

static uint32_t addr_hash(const struct sn_addr *a)
{
    uint64_t x, y;
    memcpy(&x, a->a, 8);
    memcpy(&y, a->a + 8, 8);
    uint64_t h = (x ^ (y * 0x9e3779b97f4a7c15ULL) ^ a->family) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return (uint32_t)(h >> 33);
}

void sn_geo_lookup(struct sn_geo *g, const struct sn_addr *a, struct sn_geo_info *out)
{
    memset(out, 0, sizeof(*out));
    out->scope = sn_geo_scope(a);
    if (!g || a->family == 0 || (out->scope != SN_GEO_PUBLIC && !g->lookup_all))
        return;
    handle_sync(g);
    g->st.lookups++;
    struct cache_ent *ce = &g->cache[addr_hash(a) & (SN_GEO_CACHE_ENTRIES - 1)];
    if (ce->gen == g->cache_gen && ce->addr.family == a->family &&
        memcmp(ce->addr.a, a->a, 16) == 0) {
        g->st.cache_hits++;
        *out = ce->info;
    } else {
        db_lookup(g, a, out);
        ce->gen = g->cache_gen;
        ce->addr = *a;
        ce->info = *out;
    }
    if (!out->found_city && !out->found_asn)
        g->st.not_found++;
}

/* ---- output ---- */

void sn_geo_json(const struct sn_geo_info *gi, struct sn_json *j)
{
    bool pub = gi->scope == SN_GEO_PUBLIC;
    if (gi->country[0] || gi->continent[0] || gi->city[0] || !pub) {
        sn_json_obj_begin(j, "geo");
        if (gi->country[0])
            sn_json_str(j, "country", gi->country);
        if (gi->continent[0])
            sn_json_str(j, "continent", gi->continent);
        if (gi->city[0])
            sn_json_str(j, "city", gi->city);
        if (!pub)
            sn_json_str(j, "scope", sn_geo_scope_name(gi->scope));
        sn_json_obj_end(j);
    }
    if (gi->asn || gi->asn_org[0]) {
        sn_json_obj_begin(j, "asn");
        if (gi->asn)
            sn_json_u64(j, "number", gi->asn);
        if (gi->asn_org[0])
            sn_json_str(j, "org", gi->asn_org);
        sn_json_obj_end(j);
    }
}

void sn_geo_get_stats(const struct sn_geo *g, struct sn_geo_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!g)
        return;
    *out = g->st;
    out->reloads = atomic_load(&g->sh->reloads);
}

const char *sn_geo_city_type(const struct sn_geo *g)
{
    return g && g->dbs->open[PART_CITY] ? g->dbs->db[PART_CITY].metadata.database_type : NULL;
}

const char *sn_geo_asn_type(const struct sn_geo *g)
{
    return g && g->dbs->open[PART_ASN] ? g->dbs->db[PART_ASN].metadata.database_type : NULL;
}
