/* rules: service rules that name the service a flow talks to (rules/README.md has the format).
 *
 * A rule file has one rule per line:
 *     sni api.openai.com -> service=openai-api kind=llm-api provider=openai watch=yes
 * Match fields (all must hold): sni (exact, ".suffix", "*.suffix" or an fnmatch glob), cidr
 * (server address), port (server port), ja4, ja3, app (nDPI protocol name). Attributes are
 * key=value; service= is required. When several rules match, the MOST SPECIFIC one wins (a
 * score: exact SNI > longer suffix/glob > CIDR by prefix length > app > port; see README);
 * ties go to the rule loaded first.
 *
 * Matching is per flow: exact SNI, SNI suffixes (one hash probe per label), JA4, JA3 and app
 * are hash lookups, CIDRs a binary trie walk; only SNI globs are scanned (keep them few).
 *
 * Ownership: a loaded set is immutable; rules returned by sn_rules_match are borrowed from the
 * set and live until sn_rules_free. Thread safety: after loading, any number of threads may
 * call sn_rules_match and the sn_rule_* accessors concurrently. To reload, load a new set and
 * swap the pointer (freeing the old set once no thread uses it).
 */
#ifndef SN_RULES_H
#define SN_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "json.h"

#define SN_RULES_MAX_LINE 1024       /* bytes per line, without the newline */
#define SN_RULES_MAX_ATTRS 16        /* attributes per rule, service= included */
#define SN_RULES_MAX_FILE (16u << 20) /* bytes per file */

struct sn_rules;
struct sn_rule;

/* Loads a file, or a directory: every "*.rules" file in it (not starting with '.'), in
 * byte-wise sorted name order; other files are ignored. Refuses the whole set on any error:
 * NULL with "rules: <file>:<line>: <reason>" in the error ring (just "<path>: <reason>" for
 * an unreadable path or a directory without rule files). Returns owned. */
struct sn_rules *sn_rules_load(const char *path);

/* Parses rules from memory (len bytes, need not be NUL-terminated); name is used in error
 * messages. Same result as sn_rules_load on a file with that content. Returns owned. */
struct sn_rules *sn_rules_parse(const char *name, const char *text, size_t len);

/* Accepts NULL. */
void sn_rules_free(struct sn_rules *r);

/* Number of rules loaded. */
size_t sn_rules_count(const struct sn_rules *r);

/* What is known about a flow. Any member may be NULL / 0 (unknown): a rule with a condition on
 * an unknown value does not match. Strings are compared case-insensitively; a trailing dot on
 * the SNI is ignored. app is nDPI's name, e.g. "TLS.Google": a rule's app matches the whole
 * name or any dot-separated part of it. All borrowed. sn_rules_match_memo compares every
 * member: a new one must be added there too. */
struct sn_rule_query {
    const char *sni;
    const struct sn_addr *server;
    uint16_t server_port;
    const char *ja4, *ja3, *app;
};

/* The winning rule, or NULL when none matches (or r is NULL). Borrowed. */
const struct sn_rule *sn_rules_match(const struct sn_rules *r, const struct sn_rule_query *q);

/* The last question asked and its answer, for a caller that asks about the same flow twice in
 * a row (the pipeline: a flow's fingerprint settle, then its record). Caller-owned (one per
 * pipeline), used by one thread at a time; zero-initialise. It compares the whole query
 * (strings by content) and the set's identity, so a hit is exactly what sn_rules_match would
 * return. */
#define SN_RULES_MEMO_STR 256 /* longer strings are not remembered */
struct sn_rule_memo {
    const struct sn_rules *set; /* compared, never dereferenced */
    uint64_t serial;            /* the set's load number: a new set at an old address differs */
    bool valid, has_server;
    struct sn_addr server;
    uint16_t server_port;
    bool has[4];                /* sni, ja4, ja3, app not NULL */
    char str[4][SN_RULES_MEMO_STR];
    const struct sn_rule *rule;
};

/* sn_rules_match, answered from m when the query equals the last one (m is updated). */
const struct sn_rule *sn_rules_match_memo(const struct sn_rules *r, const struct sn_rule_query *q,
                                          struct sn_rule_memo *m);

/* The rule's service= value. */
const char *sn_rule_service(const struct sn_rule *rule);
/* An attribute's value ("kind", "provider", "watch", ...), or NULL. "service" works too. */
const char *sn_rule_attr(const struct sn_rule *rule, const char *key);
/* watch=yes (true) or watch=no / absent (false). */
bool sn_rule_watch(const struct sn_rule *rule);
/* Where the rule was defined: its file (as named when loading) and line. */
const char *sn_rule_file(const struct sn_rule *rule);
unsigned sn_rule_line(const struct sn_rule *rule);

/* Writes "service": {"name": "...", <attributes in file order>} into the current object;
 * watch is written as a JSON boolean, other attributes as strings. */
void sn_rule_json(const struct sn_rule *rule, struct sn_json *j);

#endif
