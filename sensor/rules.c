#define SN_LOG_MOD "rules"
#include "rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

/* Specificity weights (rules/README.md documents them): a rule's score is the sum over its
 * conditions; the bands are wide enough that an exact SNI always beats any suffix or glob, and
 * any SNI condition beats CIDR + app + port together. */
#define W_FP 4000     /* ja4 or ja3 */
#define W_EXACT 3000  /* + name length */
#define W_PATTERN 2000 /* suffix or glob, + literal characters */
#define W_CIDR 1000   /* + prefix length */
#define W_APP 500
#define W_PORT 100

#define SNI_MAX 253 /* DNS name limit; longer query names match no SNI rule */
#define FP_MAX 128  /* ja3 (32 hex) / ja4 (36) / ja4_r fits easily */
#define APP_MAX 64
#define VAL_MAX 255

enum sni_kind { SNI_NONE = 0, SNI_EXACT, SNI_SUFFIX_SELF, SNI_SUFFIX_SUB, SNI_GLOB };

struct attr {
    char *key, *val;
};

struct sn_rule {
    uint8_t sni_kind;
    bool has_cidr, has_port;
    int watch; /* -1 unset, 0, 1 */
    char *sni; /* lowercase; exact name, suffix domain (no leading "." / "*."), or glob */
    const char *glob_tail; /* the literal end of a glob, checked first */
    size_t glob_tail_len;
    size_t sni_len;
    struct sn_addr cidr;
    uint8_t cidr_bits;
    uint16_t port;
    char *ja4, *ja3, *app;
    char *service;
    struct attr attrs[SN_RULES_MAX_ATTRS]; /* service excluded, file order */
    unsigned nattrs;
    unsigned score;
    uint32_t index; /* load order */
    const char *file;
    unsigned line;
    char *canon; /* canonical form of the conditions, for duplicate detection */
};

struct ivec {
    uint32_t *v;
    uint32_t n, cap;
};

struct smap_ent {
    const char *key; /* borrowed from a rule */
    uint32_t hash, next;
    struct ivec ids;
};

/* String -> rule indices; chained through ent[].next, UINT32_MAX ends a chain. */
struct smap {
    uint32_t *bucket;
    uint32_t mask;
    struct smap_ent *ent;
    uint32_t n, cap;
};

struct trie_node {
    uint32_t child[2]; /* 0: none (the root is node 0 and never a child) */
    struct ivec ids;
};

struct trie {
    struct trie_node *node;
    uint32_t n, cap;
};

struct sn_rules {
    struct sn_rule **rule;
    uint32_t n, cap;
    char **file;
    size_t nfile;
    struct smap canon; /* canonical conditions -> the rule with them */
    struct smap exact, suffix, ja4, ja3, app;
    struct ivec glob, other;
    struct trie trie[2]; /* IPv4, IPv6 */
    bool any_sni, any_ja4, any_ja3, any_app; /* some rule has that condition */
    uint64_t serial; /* load number, for sn_rule_memo */
};

/* ---- small containers ---- */

static int ivec_push(struct ivec *v, uint32_t x)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 4;
        uint32_t *p = realloc(v->v, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

/* Hash of the n bytes at s: eight bytes per step (rule lookups hash every SNI suffix, JA4
 * and JA3 of every flow), then a finaliser. */
static uint32_t hash_mem(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    size_t i = 0;
    for (uint64_t x; i + 8 <= n; i += 8) {
        memcpy(&x, s + i, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    if (i < n) {
        uint64_t x = 0;
        for (unsigned k = 0; i < n; i++, k += 8)
            x |= (uint64_t)(uint8_t)s[i] << k;
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static void smap_fini(struct smap *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        free(m->ent[i].ids.v);
    free(m->ent);
    free(m->bucket);
    memset(m, 0, sizeof(*m));
}

/* The entry for key (n = strlen(key)), or NULL. */
static const struct smap_ent *smap_get(const struct smap *m, const char *key, size_t n)
{
    if (!m->bucket)
        return NULL;
    uint32_t h = hash_mem(key, n);
    for (uint32_t i = m->bucket[h & m->mask]; i != UINT32_MAX; i = m->ent[i].next)
        if (m->ent[i].hash == h && strcmp(m->ent[i].key, key) == 0)
            return &m->ent[i];
    return NULL;
}

static int smap_rehash(struct smap *m, uint32_t nb)
{
    uint32_t *b = malloc(nb * sizeof(*b));
    if (!b)
        return -ENOMEM;
    memset(b, 0xff, nb * sizeof(*b));
    for (uint32_t i = 0; i < m->n; i++) {
        uint32_t s = m->ent[i].hash & (nb - 1);
        m->ent[i].next = b[s];
        b[s] = i;
    }
    free(m->bucket);
    m->bucket = b;
    m->mask = nb - 1;
    return 0;
}

/* Adds id under key (creating the entry). *first gets the first id stored under key. */
static int smap_add(struct smap *m, const char *key, uint32_t id, uint32_t *first)
{
    size_t klen = strlen(key);
    const struct smap_ent *found = smap_get(m, key, klen);
    struct smap_ent *e = (struct smap_ent *)found;
    if (!e) {
        if (m->n == m->cap) {
            uint32_t cap = m->cap ? m->cap * 2 : 16;
            struct smap_ent *p = realloc(m->ent, cap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            m->ent = p;
            m->cap = cap;
        }
        e = &m->ent[m->n];
        memset(e, 0, sizeof(*e));
        e->key = key;
        e->hash = hash_mem(key, klen);
        uint32_t nb = m->bucket ? m->mask + 1 : 0;
        m->n++;
        if (m->n * 2 > nb) {
            if (smap_rehash(m, nb ? nb * 2 : 32) < 0) {
                m->n--;
                return -ENOMEM;
            }
        } else {
            uint32_t s = e->hash & m->mask;
            e->next = m->bucket[s];
            m->bucket[s] = m->n - 1;
        }
    }
    if (first)
        *first = e->ids.n ? e->ids.v[0] : id;
    return ivec_push(&e->ids, id);
}

static void trie_fini(struct trie *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        free(t->node[i].ids.v);
    free(t->node);
    memset(t, 0, sizeof(*t));
}

static int trie_add(struct trie *t, const uint8_t *a, unsigned bits, uint32_t id)
{
    if (!t->n) {
        t->node = calloc(64, sizeof(*t->node));
        if (!t->node)
            return -ENOMEM;
        t->cap = 64;
        t->n = 1;
    }
    uint32_t cur = 0;
    for (unsigned i = 0; i < bits; i++) {
        unsigned b = (a[i / 8] >> (7 - i % 8)) & 1;
        if (!t->node[cur].child[b]) {
            if (t->n == t->cap) {
                struct trie_node *p = realloc(t->node, t->cap * 2 * sizeof(*p));
                if (!p)
                    return -ENOMEM;
                memset(p + t->cap, 0, t->cap * sizeof(*p));
                t->node = p;
                t->cap *= 2;
            }
            t->node[cur].child[b] = t->n++;
        }
        cur = t->node[cur].child[b];
    }
    return ivec_push(&t->node[cur].ids, id);
}

/* ---- rules ---- */

static void rule_free(struct sn_rule *r)
{
    if (!r)
        return;
    free(r->sni);
    free(r->ja4);
    free(r->ja3);
    free(r->app);
    free(r->service);
    for (unsigned i = 0; i < r->nattrs; i++) {
        free(r->attrs[i].key);
        free(r->attrs[i].val);
    }
    free(r->canon);
    free(r);
}

void sn_rules_free(struct sn_rules *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        rule_free(r->rule[i]);
    free(r->rule);
    for (size_t i = 0; i < r->nfile; i++)
        free(r->file[i]);
    free(r->file);
    smap_fini(&r->canon);
    smap_fini(&r->exact);
    smap_fini(&r->suffix);
    smap_fini(&r->ja4);
    smap_fini(&r->ja3);
    smap_fini(&r->app);
    free(r->glob.v);
    free(r->other.v);
    trie_fini(&r->trie[0]);
    trie_fini(&r->trie[1]);
    free(r);
}

size_t sn_rules_count(const struct sn_rules *r)
{
    return r ? r->n : 0;
}

/* ---- parsing ---- */

struct ctx {
    struct sn_rules *set;
    const char *file;
    unsigned line;
};

#define FAIL(c, ...) fail_at((c), __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static int fail_at(const struct ctx *c, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return SN_ERR(SN_ECONFIG, "%s:%u: %s", c->file, c->line, msg);
}

struct tok {
    char *s;
    bool quoted;
};

#define MAX_TOK (SN_RULES_MAX_LINE / 2 + 1)

/* Splits a line into whitespace-separated tokens, in place. A '#' at the start of a token
 * starts a comment. "..." quotes (with \" and \\) may appear anywhere in a token. */
static int tokenize(const struct ctx *c, char *line, struct tok *tok, unsigned *ntok)
{
    char *p = line, *w;
    *ntok = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            return 0;
        if (*ntok == MAX_TOK)
            return FAIL(c, "too many tokens");
        struct tok *t = &tok[(*ntok)++];
        t->s = w = p;
        t->quoted = false;
        while (*p && *p != ' ' && *p != '\t') {
            if (*p == '"') {
                t->quoted = true;
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    *w++ = *p++;
                }
                if (*p != '"')
                    return FAIL(c, "unterminated quote");
                p++;
            } else {
                *w++ = *p++;
            }
        }
        bool end = !*p;
        *w = '\0';
        if (end)
            return 0;
        p++;
    }
}

/* ASCII lowercase (what tolower does in the C locale the sensor runs in), inline: matching
 * lowercases every query string of every flow. */
static inline char lower_c(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = lower_c(*s);
}

/* Literal characters of a glob: '*' and '?' count nothing, a [...] set counts one. */
static size_t glob_literals(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '*' || *s == '?')
            continue;
        if (*s == '[') {
            const char *e = strchr(s + 1 + (s[1] == ']'), ']');
            if (e) {
                s = e;
                n++;
                continue;
            }
        }
        n++;
    }
    return n;
}

static int parse_sni(const struct ctx *c, struct sn_rule *r, char *v)
{
    lower(v);
    size_t n = strlen(v);
    if (n == 0 || n > SNI_MAX + 2)
        return FAIL(c, "bad sni pattern '%s' (empty or longer than %d)", v, SNI_MAX);
    for (const char *s = v; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".-_*?[]!^", *s))
            return FAIL(c, "bad sni pattern '%s' (character '%c')", v, *s);
    bool meta = strpbrk(v, "*?[") != NULL;
    const char *dom = v;
    if (v[0] == '*' && v[1] == '.' && !strpbrk(v + 2, "*?[")) {
        r->sni_kind = SNI_SUFFIX_SUB;
        dom = v + 2;
    } else if (meta) {
        r->sni_kind = SNI_GLOB;
    } else if (v[0] == '.') {
        r->sni_kind = SNI_SUFFIX_SELF;
        dom = v + 1;
    } else {
        r->sni_kind = SNI_EXACT;
    }
    if (r->sni_kind != SNI_GLOB) {
        if (!*dom || dom[0] == '.' || dom[strlen(dom) - 1] == '.' || strstr(dom, ".."))
            return FAIL(c, "bad sni pattern '%s' (empty label)", v);
        if (strpbrk(dom, "]!^"))
            return FAIL(c, "bad sni pattern '%s' (character outside a glob)", v);
    }
    if (!(r->sni = strdup(dom)))
        return SN_ERR(ENOMEM, "out of memory");
    r->sni_len = strlen(r->sni);
    if (r->sni_kind == SNI_GLOB) {
        /* The literal tail after the last metacharacter ('[' sets end at their ']'). */
        const char *t = r->sni;
        for (const char *s = r->sni; *s; s++)
            if (*s == '*' || *s == '?' || *s == ']')
                t = s + 1;
        r->glob_tail = t;
        r->glob_tail_len = strlen(t);
        r->score += W_PATTERN + (unsigned)glob_literals(r->sni);
    } else if (r->sni_kind == SNI_EXACT) {
        r->score += W_EXACT + (unsigned)r->sni_len;
    } else {
        r->score += W_PATTERN + (unsigned)r->sni_len + 1; /* the dot before the domain */
    }
    return 0;
}

static int parse_cidr(const struct ctx *c, struct sn_rule *r, const char *v)
{
    char buf[64];
    if (strlen(v) >= sizeof(buf))
        return FAIL(c, "bad CIDR '%.60s' (too long)", v);
    strcpy(buf, v);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (sn_addr_parse(buf, &r->cidr) != 0)
        return FAIL(c, "bad CIDR '%s' (not an IPv4 or IPv6 address)", v);
    unsigned max = r->cidr.family == 4 ? 32 : 128, bits = max;
    if (slash) {
        char *end;
        errno = 0;
        unsigned long b = strtoul(slash + 1, &end, 10);
        if (!isdigit((unsigned char)slash[1]) || *end || errno || b > max)
            return FAIL(c, "bad CIDR '%s' (prefix length 0..%u)", v, max);
        bits = (unsigned)b;
    }
    struct sn_addr m = r->cidr;
    sn_addr_mask(&m, bits);
    if (sn_addr_cmp(&m, &r->cidr) != 0)
        return FAIL(c, "bad CIDR '%s' (bits set after the prefix)", v);
    r->cidr_bits = (uint8_t)bits;
    r->has_cidr = true;
    r->score += W_CIDR + bits;
    return 0;
}

static int parse_port(const struct ctx *c, struct sn_rule *r, const char *v)
{
    char *end;
    errno = 0;
    unsigned long p = strtoul(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end || errno || p < 1 || p > 65535)
        return FAIL(c, "bad port '%s' (1..65535)", v);
    r->port = (uint16_t)p;
    r->has_port = true;
    r->score += W_PORT;
    return 0;
}

static int parse_str(const struct ctx *c, char **dst, const char *field, char *v, size_t max,
                     const char *allowed)
{
    lower(v);
    size_t n = strlen(v);
    if (n == 0 || n > max)
        return FAIL(c, "bad %s '%.60s' (1..%zu characters)", field, v, max);
    for (const char *s = v; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(allowed, *s))
            return FAIL(c, "bad %s '%.60s' (character '%c')", field, v, *s);
    if (!(*dst = strdup(v)))
        return SN_ERR(ENOMEM, "out of memory");
    return 0;
}

static int parse_ja3(const struct ctx *c, struct sn_rule *r, char *v)
{
    lower(v);
    if (strlen(v) != 32 || strspn(v, "0123456789abcdef") != 32)
        return FAIL(c, "bad ja3 '%.60s' (want the 32 hex digit MD5)", v);
    r->score += W_FP;
    return parse_str(c, &r->ja3, "ja3", v, 32, "");
}

static bool key_ok(const char *k)
{
    if (!islower((unsigned char)k[0]))
        return false;
    for (; *k; k++)
        if (!islower((unsigned char)*k) && !isdigit((unsigned char)*k) && *k != '_' && *k != '-')
            return false;
    return true;
}

static int parse_attr(const struct ctx *c, struct sn_rule *r, const struct tok *t)
{
    char *eq = strchr(t->s, '=');
    if (!eq || eq == t->s)
        return FAIL(c, "bad attribute '%.60s' (want key=value)", t->s);
    *eq = '\0';
    char *k = t->s, *v = eq + 1;
    if (!key_ok(k) || strlen(k) > 32)
        return FAIL(c, "bad attribute key '%.60s' (lowercase letters, digits, '_', '-')", k);
    if (!*v)
        return FAIL(c, "empty value for '%s'", k);
    if (strlen(v) > VAL_MAX)
        return FAIL(c, "value of '%s' longer than %d", k, VAL_MAX);
    if (strcmp(k, "name") == 0)
        return FAIL(c, "attribute 'name' is reserved (the service name is service=)");
    bool dup = r->service && strcmp(k, "service") == 0;
    for (unsigned i = 0; i < r->nattrs && !dup; i++)
        dup = strcmp(r->attrs[i].key, k) == 0;
    if (dup)
        return FAIL(c, "duplicate attribute '%s'", k);
    if (strcmp(k, "service") == 0) {
        if (!(r->service = strdup(v)))
            return SN_ERR(ENOMEM, "out of memory");
        return 0;
    }
    if (strcmp(k, "watch") == 0) {
        if (!strcmp(v, "yes") || !strcmp(v, "true"))
            r->watch = 1;
        else if (!strcmp(v, "no") || !strcmp(v, "false"))
            r->watch = 0;
        else
            return FAIL(c, "bad watch value '%.60s' (yes or no)", v);
    }
    if (r->nattrs == SN_RULES_MAX_ATTRS - 1)
        return FAIL(c, "too many attributes (max %d)", SN_RULES_MAX_ATTRS);
    struct attr *a = &r->attrs[r->nattrs];
    a->key = strdup(k);
    a->val = strdup(v);
    r->nattrs++;
    if (!a->key || !a->val)
        return SN_ERR(ENOMEM, "out of memory");
    return 0;
}

enum field { F_SNI, F_CIDR, F_PORT, F_JA4, F_JA3, F_APP, NFIELDS };
static const char *const field_name[NFIELDS] = {"sni", "cidr", "port", "ja4", "ja3", "app"};

static int parse_cond(const struct ctx *c, struct sn_rule *r, const struct tok *f,
                      struct tok *v, unsigned *seen)
{
    int fi = -1;
    for (int i = 0; i < NFIELDS; i++)
        if (!f->quoted && strcmp(f->s, field_name[i]) == 0)
            fi = i;
    if (fi < 0)
        return FAIL(c, "unknown field '%.60s' (sni, cidr, port, ja4, ja3, app)", f->s);
    if (*seen & (1u << fi))
        return FAIL(c, "duplicate field '%s' (one per rule; write another rule)", f->s);
    *seen |= 1u << fi;
    switch (fi) {
    case F_SNI: return parse_sni(c, r, v->s);
    case F_CIDR: return parse_cidr(c, r, v->s);
    case F_PORT: return parse_port(c, r, v->s);
    case F_JA4: r->score += W_FP; return parse_str(c, &r->ja4, "ja4", v->s, FP_MAX, "_");
    case F_JA3: return parse_ja3(c, r, v->s);
    default: r->score += W_APP; return parse_str(c, &r->app, "app", v->s, APP_MAX, "_-+.");
    }
}

/* The conditions in a fixed order, so equal match sets give equal strings. */
static char *canon_of(const struct sn_rule *r)
{
    char a[SN_ADDR_STRLEN] = "";
    if (r->has_cidr)
        sn_addr_str(&r->cidr, a, sizeof(a));
    char *s = NULL;
    if (asprintf(&s, "s%u:%s|c%s/%u|p%u|4%s|3%s|a%s", r->sni_kind, r->sni ? r->sni : "", a,
                 r->has_cidr ? r->cidr_bits : 0, r->port, r->ja4 ? r->ja4 : "",
                 r->ja3 ? r->ja3 : "", r->app ? r->app : "") < 0)
        return NULL;
    return s;
}

static int add_rule(struct ctx *c, struct sn_rule *r)
{
    struct sn_rules *set = c->set;
    if (!(r->canon = canon_of(r)))
        return SN_ERR(ENOMEM, "out of memory");
    if (set->n == set->cap) {
        uint32_t cap = set->cap ? set->cap * 2 : 64;
        struct sn_rule **p = realloc(set->rule, cap * sizeof(*p));
        if (!p)
            return SN_ERR(ENOMEM, "out of memory");
        set->rule = p;
        set->cap = cap;
    }
    uint32_t first;
    if (smap_add(&set->canon, r->canon, set->n, &first) < 0)
        return SN_ERR(ENOMEM, "out of memory");
    if (first != set->n) {
        const struct sn_rule *o = set->rule[first];
        return FAIL(c, "duplicate rule (same match as %s:%u)", o->file, o->line);
    }
    r->index = set->n;
    set->rule[set->n++] = r;
    return 0;
}

static int parse_line(struct ctx *c, char *line)
{
    for (const char *s = line; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return FAIL(c, "invalid character (byte 0x%02x)", (unsigned char)*s);
    struct tok tok[MAX_TOK];
    unsigned n;
    int rc = tokenize(c, line, tok, &n);
    if (rc < 0 || n == 0)
        return rc;
    unsigned arrow = n;
    for (unsigned i = 0; i < n; i++)
        if (!tok[i].quoted && strcmp(tok[i].s, "->") == 0) {
            arrow = i;
            break;
        }
    if (arrow == n)
        return FAIL(c, "missing '->' between match fields and attributes");
    if (arrow == 0)
        return FAIL(c, "no match field before '->'");

    struct sn_rule *r = calloc(1, sizeof(*r));
    if (!r)
        return SN_ERR(ENOMEM, "out of memory");
    r->watch = -1;
    r->file = c->file;
    r->line = c->line;
    unsigned seen = 0;
    for (unsigned i = 0; i < arrow && rc == 0; i += 2) {
        if (i + 1 == arrow)
            rc = FAIL(c, "missing value for '%.60s'", tok[i].s);
        else
            rc = parse_cond(c, r, &tok[i], &tok[i + 1], &seen);
    }
    for (unsigned i = arrow + 1; i < n && rc == 0; i++)
        rc = parse_attr(c, r, &tok[i]);
    if (rc == 0 && !r->service)
        rc = FAIL(c, "missing service=");
    if (rc == 0)
        rc = add_rule(c, r);
    if (rc < 0)
        rule_free(r);
    return rc;
}

static int parse_buf(struct ctx *c, const char *text, size_t len)
{
    char line[SN_RULES_MAX_LINE + 2];
    const char *p = text, *end = text + len;
    c->line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        c->line++;
        size_t n = (size_t)(e - p);
        if (n && e[-1] == '\r')
            n--;
        if (n > SN_RULES_MAX_LINE)
            return FAIL(c, "line too long (max %d bytes)", SN_RULES_MAX_LINE);
        memcpy(line, p, n);
        line[n] = '\0';
        if (memchr(p, '\0', n))
            return FAIL(c, "invalid character (byte 0x00)");
        int rc = parse_line(c, line);
        if (rc < 0)
            return rc;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static const char *keep_name(struct sn_rules *set, const char *name)
{
    char **p = realloc(set->file, (set->nfile + 1) * sizeof(*p));
    if (!p)
        return NULL;
    set->file = p;
    if (!(p[set->nfile] = strdup(name)))
        return NULL;
    return p[set->nfile++];
}

static int parse_into(struct sn_rules *set, const char *name, const char *text, size_t len)
{
    struct ctx c = {.set = set};
    if (!(c.file = keep_name(set, name)))
        return SN_ERR(ENOMEM, "out of memory");
    return parse_buf(&c, text, len);
}

/* ---- indexes ---- */

static int build_index(struct sn_rules *set)
{
    static atomic_uint_fast64_t loads;
    set->serial = atomic_fetch_add(&loads, 1) + 1;
    for (uint32_t i = 0; i < set->n; i++) {
        const struct sn_rule *r = set->rule[i];
        int rc;
        set->any_sni |= r->sni_kind != 0;
        set->any_ja4 |= r->ja4 != NULL;
        set->any_ja3 |= r->ja3 != NULL;
        set->any_app |= r->app != NULL;
        if (r->sni_kind == SNI_EXACT)
            rc = smap_add(&set->exact, r->sni, i, NULL);
        else if (r->sni_kind == SNI_SUFFIX_SELF || r->sni_kind == SNI_SUFFIX_SUB)
            rc = smap_add(&set->suffix, r->sni, i, NULL);
        else if (r->sni_kind == SNI_GLOB)
            rc = ivec_push(&set->glob, i);
        else if (r->ja4)
            rc = smap_add(&set->ja4, r->ja4, i, NULL);
        else if (r->ja3)
            rc = smap_add(&set->ja3, r->ja3, i, NULL);
        else if (r->has_cidr)
            rc = trie_add(&set->trie[r->cidr.family == 4 ? 0 : 1], r->cidr.a, r->cidr_bits, i);
        else if (r->app)
            rc = smap_add(&set->app, r->app, i, NULL);
        else
            rc = ivec_push(&set->other, i);
        if (rc < 0)
            return SN_ERR(ENOMEM, "out of memory");
    }
    /* Duplicate detection is done; its strings stay owned by the rules. */
    smap_fini(&set->canon);
    return 0;
}

struct sn_rules *sn_rules_parse(const char *name, const char *text, size_t len)
{
    struct sn_rules *set = calloc(1, sizeof(*set));
    if (!set) {
        SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    if (parse_into(set, name, text, len) < 0 || build_index(set) < 0) {
        sn_rules_free(set);
        return NULL;
    }
    return set;
}

/* Reads a whole file (capped). Returns 0 and an owned buffer, or an error in the ring. */
static int read_file(const char *path, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SN_ERR(errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return SN_ERR(EINVAL, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SN_RULES_MAX_FILE) {
        close(fd);
        return SN_ERR(EFBIG, "%s: larger than %u bytes", path, SN_RULES_MAX_FILE);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = malloc(cap);
    if (!b) {
        close(fd);
        return SN_ERR(ENOMEM, "out of memory");
    }
    for (;;) {
        ssize_t k = read(fd, b + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            free(b);
            close(fd);
            return SN_ERR(e, "%s: %s", path, strerror(e));
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n == cap) { /* grew while reading */
            free(b);
            close(fd);
            return SN_ERR(EAGAIN, "%s: changed while reading", path);
        }
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;
}

static int rules_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 6 && strcmp(d->d_name + n - 6, ".rules") == 0;
}

static int bytewise(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int load_file(struct sn_rules *set, const char *path)
{
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len);
    if (rc < 0)
        return rc;
    rc = parse_into(set, path, buf, len);
    free(buf);
    return rc;
}

struct sn_rules *sn_rules_load(const char *path)
{
    struct sn_rules *set = calloc(1, sizeof(*set));
    if (!set) {
        SN_ERR(ENOMEM, "out of memory");
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        SN_ERR(errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        struct dirent **ents;
        int n = scandir(path, &ents, rules_filter, bytewise);
        if (n < 0) {
            SN_ERR(errno, "%s: %s", path, strerror(errno));
            goto fail;
        }
        int rc = n ? 0 : SN_ERR(SN_ECONFIG, "%s: no *.rules files", path);
        size_t plen = strlen(path);
        bool slash = plen && path[plen - 1] == '/';
        for (int i = 0; i < n; i++) {
            char *f = NULL;
            if (rc == 0 && asprintf(&f, "%s%s%s", path, slash ? "" : "/", ents[i]->d_name) < 0)
                rc = SN_ERR(ENOMEM, "out of memory");
            else if (rc == 0 && !is_dir(f))
                rc = load_file(set, f);
            free(f);
            free(ents[i]);
        }
        free(ents);
        if (rc < 0)
            goto fail;
    } else if (load_file(set, path) < 0) {
        goto fail;
    }
    if (build_index(set) < 0)
        goto fail;
    return set;
fail:
    sn_rules_free(set);
    return NULL;
}

/* ---- matching ---- */

struct q {
    const char *sni; /* lowercase, no trailing dot; NULL if unknown */
    size_t sni_len;
    const char *ja4, *ja3, *app;
    const struct sn_addr *server;
    uint16_t port;
};

static bool ends_with_label(const char *name, size_t n, const char *dom, size_t dn)
{
    return n > dn && name[n - dn - 1] == '.' && memcmp(name + n - dn, dom, dn) == 0;
}

static bool app_matches(const char *pat, const char *app)
{
    size_t pn = strlen(pat);
    for (const char *p = app;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == pn && memcmp(p, pat, n) == 0)
            return true;
        if (!dot)
            break;
        p = dot + 1;
    }
    return strcmp(pat, app) == 0;
}

/* One glob element at p ('?', a [...] set, or a literal) against c: sets *ok, returns the
 * element's length. A '[' without its ']' is a literal, as in fnmatch(3). */
static size_t glob_elem(const char *p, char c, bool *ok)
{
    if (*p == '?') {
        *ok = true;
        return 1;
    }
    if (*p == '[') {
        const char *q = p + 1;
        bool neg = *q == '!' || *q == '^', hit = false;
        if (neg)
            q++;
        const char *first = q;
        while (*q && (*q != ']' || q == first)) {
            if (q[1] == '-' && q[2] && q[2] != ']') {
                hit |= c >= q[0] && c <= q[2];
                q += 3;
            } else {
                hit |= c == *q;
                q++;
            }
        }
        if (*q == ']') {
            *ok = hit != neg;
            return (size_t)(q - p) + 1;
        }
    }
    *ok = *p == c;
    return 1;
}

/* fnmatch(pattern, name, 0) for the characters SNI patterns allow (no backslash), without
 * glibc's locale and multibyte work: on a mismatch, retry after the last '*' with one more
 * character absorbed by it. O(len(p) * len(s)) at worst. */
static bool glob_match(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '*') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        bool ok = false;
        size_t n = *p ? glob_elem(p, *s, &ok) : 0;
        if (ok) {
            p += n;
            s++;
            continue;
        }
        if (!star_p)
            return false;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*')
        p++;
    return !*p;
}

static bool rule_matches(const struct sn_rule *r, const struct q *q)
{
    if (r->sni_kind) {
        if (!q->sni)
            return false;
        switch (r->sni_kind) {
        case SNI_EXACT:
            if (q->sni_len != r->sni_len || memcmp(q->sni, r->sni, q->sni_len) != 0)
                return false;
            break;
        case SNI_SUFFIX_SELF:
            if (!(q->sni_len == r->sni_len && memcmp(q->sni, r->sni, q->sni_len) == 0) &&
                !ends_with_label(q->sni, q->sni_len, r->sni, r->sni_len))
                return false;
            break;
        case SNI_SUFFIX_SUB:
            if (!ends_with_label(q->sni, q->sni_len, r->sni, r->sni_len))
                return false;
            break;
        default: {
            size_t tn = r->glob_tail_len;
            if (q->sni_len < tn || memcmp(q->sni + q->sni_len - tn, r->glob_tail, tn) != 0)
                return false;
            if (!glob_match(r->sni, q->sni))
                return false;
        }
        }
    }
    if (r->has_cidr && (!q->server || !sn_addr_in_prefix(q->server, &r->cidr, r->cidr_bits)))
        return false;
    if (r->has_port && q->port != r->port)
        return false;
    if (r->ja4 && (!q->ja4 || strcmp(r->ja4, q->ja4) != 0))
        return false;
    if (r->ja3 && (!q->ja3 || strcmp(r->ja3, q->ja3) != 0))
        return false;
    if (r->app && (!q->app || !app_matches(r->app, q->app)))
        return false;
    return true;
}

struct best {
    const struct sn_rules *set;
    const struct q *q;
    const struct sn_rule *rule;
};

static void consider(struct best *b, uint32_t id)
{
    const struct sn_rule *r = b->set->rule[id];
    if (b->rule && (r->score < b->rule->score ||
                    (r->score == b->rule->score && r->index > b->rule->index)))
        return;
    if (rule_matches(r, b->q))
        b->rule = r;
}

static void consider_all(struct best *b, const struct ivec *v)
{
    for (uint32_t i = 0; i < v->n; i++)
        consider(b, v->v[i]);
}

static void consider_key(struct best *b, const struct smap *m, const char *key, size_t n)
{
    const struct smap_ent *e = smap_get(m, key, n);
    if (e)
        consider_all(b, &e->ids);
}

/* Lowercases src into dst (cap bytes), its length in *len; false if it does not fit or is
 * empty. */
static bool norm(char *dst, size_t cap, const char *src, size_t *len)
{
    if (!src)
        return false;
    size_t n = 0;
    for (; n < cap && src[n]; n++)
        dst[n] = lower_c(src[n]);
    if (n == 0 || n >= cap)
        return false;
    dst[n] = '\0';
    *len = n;
    return true;
}

const struct sn_rule *sn_rules_match(const struct sn_rules *r, const struct sn_rule_query *in)
{
    if (!r || !in || r->n == 0)
        return NULL;
    char sni[SNI_MAX + 2], ja4[FP_MAX + 1], ja3[FP_MAX + 1], app[APP_MAX * 2 + 1];
    struct q q = {.server = in->server && in->server->family ? in->server : NULL,
                  .port = in->server_port};
    /* A value no rule looks at is not normalised (nor used: rule_matches only reads the
     * values of a rule's own conditions). */
    size_t sni_n;
    if (r->any_sni && norm(sni, sizeof(sni), in->sni, &sni_n)) {
        q.sni_len = sni_n;
        if (sni[q.sni_len - 1] == '.')
            sni[--q.sni_len] = '\0';
        if (q.sni_len)
            q.sni = sni;
    }
    size_t ja4_n = 0, ja3_n = 0, app_n = 0;
    q.ja4 = r->any_ja4 && norm(ja4, sizeof(ja4), in->ja4, &ja4_n) ? ja4 : NULL;
    q.ja3 = r->any_ja3 && norm(ja3, sizeof(ja3), in->ja3, &ja3_n) ? ja3 : NULL;
    q.app = r->any_app && norm(app, sizeof(app), in->app, &app_n) ? app : NULL;

    struct best b = {.set = r, .q = &q};
    if (q.sni) {
        consider_key(&b, &r->exact, q.sni, q.sni_len);
        if (r->suffix.n) {
            for (const char *p = q.sni; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
                consider_key(&b, &r->suffix, p, q.sni_len - (size_t)(p - q.sni));
        }
        consider_all(&b, &r->glob);
    }
    if (q.ja4)
        consider_key(&b, &r->ja4, q.ja4, ja4_n);
    if (q.ja3)
        consider_key(&b, &r->ja3, q.ja3, ja3_n);
    if (q.server) {
        const struct trie *t = &r->trie[q.server->family == 4 ? 0 : 1];
        unsigned max = q.server->family == 4 ? 32 : 128;
        uint32_t cur = 0;
        for (unsigned i = 0; t->n; i++) {
            consider_all(&b, &t->node[cur].ids);
            if (i == max)
                break;
            unsigned bit = (q.server->a[i / 8] >> (7 - i % 8)) & 1;
            if (!(cur = t->node[cur].child[bit]))
                break;
        }
    }
    if (q.app && r->app.n) {
        consider_key(&b, &r->app, q.app, app_n);
        char part[sizeof(app)];
        for (const char *p = q.app;;) {
            const char *dot = strchr(p, '.');
            if (!dot && p == q.app)
                break; /* a single name was looked up whole */
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            memcpy(part, p, n);
            part[n] = '\0';
            consider_key(&b, &r->app, part, n);
            if (!dot)
                break;
            p = dot + 1;
        }
    }
    consider_all(&b, &r->other);
    return b.rule;
}

/* Copies s into the memo slot; false when it does not fit (then nothing is remembered). */
static bool memo_put(struct sn_rule_memo *m, int i, const char *s)
{
    m->has[i] = s != NULL;
    if (!s)
        return true;
    size_t n = strnlen(s, SN_RULES_MEMO_STR);
    if (n == SN_RULES_MEMO_STR)
        return false;
    memcpy(m->str[i], s, n + 1);
    return true;
}

static bool memo_eq(const struct sn_rule_memo *m, int i, const char *s)
{
    return s ? m->has[i] && strcmp(m->str[i], s) == 0 : !m->has[i];
}

const struct sn_rule *sn_rules_match_memo(const struct sn_rules *r, const struct sn_rule_query *q,
                                          struct sn_rule_memo *m)
{
    if (!r || !q)
        return sn_rules_match(r, q);
    bool has_server = q->server != NULL;
    if (m->valid && m->set == r && m->serial == r->serial && m->has_server == has_server &&
        (!has_server || (m->server.family == q->server->family &&
                         memcmp(m->server.a, q->server->a, sizeof(m->server.a)) == 0)) &&
        m->server_port == q->server_port && memo_eq(m, 0, q->sni) && memo_eq(m, 1, q->ja4) &&
        memo_eq(m, 2, q->ja3) && memo_eq(m, 3, q->app))
        return m->rule;
    m->rule = sn_rules_match(r, q);
    m->set = r;
    m->serial = r->serial;
    m->has_server = has_server;
    if (has_server)
        m->server = *q->server;
    m->server_port = q->server_port;
    m->valid = memo_put(m, 0, q->sni) && memo_put(m, 1, q->ja4) && memo_put(m, 2, q->ja3) &&
               memo_put(m, 3, q->app);
    return m->rule;
}

/* ---- accessors ---- */

const char *sn_rule_service(const struct sn_rule *rule)
{
    return rule->service;
}

const char *sn_rule_attr(const struct sn_rule *rule, const char *key)
{
    if (strcmp(key, "service") == 0)
        return rule->service;
    for (unsigned i = 0; i < rule->nattrs; i++)
        if (strcmp(rule->attrs[i].key, key) == 0)
            return rule->attrs[i].val;
    return NULL;
}

bool sn_rule_watch(const struct sn_rule *rule)
{
    return rule->watch == 1;
}

const char *sn_rule_file(const struct sn_rule *rule)
{
    return rule->file;
}

unsigned sn_rule_line(const struct sn_rule *rule)
{
    return rule->line;
}

void sn_rule_json(const struct sn_rule *rule, struct sn_json *j)
{
    sn_json_obj_begin(j, "service");
    sn_json_str(j, "name", rule->service);
    for (unsigned i = 0; i < rule->nattrs; i++) {
        if (strcmp(rule->attrs[i].key, "watch") == 0)
            sn_json_bool(j, "watch", rule->watch == 1);
        else
            sn_json_str(j, rule->attrs[i].key, rule->attrs[i].val);
    }
    sn_json_obj_end(j);
}
