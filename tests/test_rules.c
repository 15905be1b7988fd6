/* Tests for rules: every match type, most-specific-match precedence, every error message,
 * directory loading, JSON output, and the shipped rules/ directory. Run from the repository
 * root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "json.h"
#include "rules.h"

static struct sn_rules *P(const char *text)
{
    sn_err_clear();
    return sn_rules_parse("t.rules", text, strlen(text));
}

static const char *svc(const struct sn_rule *r)
{
    return r ? sn_rule_service(r) : "(none)";
}

static const char *by_sni(const struct sn_rules *r, const char *sni)
{
    struct sn_rule_query q = {.sni = sni};
    return svc(sn_rules_match(r, &q));
}

static const char *by_addr(const struct sn_rules *r, const char *sni, const char *ip,
                           uint16_t port)
{
    struct sn_addr a;
    assert_int_equal(sn_addr_parse(ip, &a), 0);
    struct sn_rule_query q = {.sni = sni, .server = &a, .server_port = port};
    return svc(sn_rules_match(r, &q));
}

/* ---- match types ---- */

static void test_sni_exact(void **state)
{
    (void)state;
    struct sn_rules *r = P("sni api.openai.com -> service=a\n");
    assert_non_null(r);
    assert_int_equal(sn_rules_count(r), 1);
    assert_string_equal(by_sni(r, "api.openai.com"), "a");
    assert_string_equal(by_sni(r, "API.OpenAI.com"), "a"); /* case-insensitive */
    assert_string_equal(by_sni(r, "api.openai.com."), "a"); /* trailing dot */
    assert_string_equal(by_sni(r, "x.api.openai.com"), "(none)");
    assert_string_equal(by_sni(r, "openai.com"), "(none)");
    assert_string_equal(by_sni(r, "api.openai.co"), "(none)");
    assert_string_equal(by_sni(r, ""), "(none)");
    assert_string_equal(by_sni(r, "."), "(none)");
    assert_string_equal(by_sni(r, NULL), "(none)");
    struct sn_rule_query none = {0};
    assert_null(sn_rules_match(r, &none));
    assert_null(sn_rules_match(NULL, &none));
    /* An over-long name matches nothing and does not overflow. */
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_string_equal(by_sni(r, big), "(none)");
    sn_rules_free(r);
}

static void test_sni_suffix(void **state)
{
    (void)state;
    struct sn_rules *r = P("sni .openai.com -> service=self\n"
                           "sni *.azure.com -> service=sub\n");
    assert_non_null(r);
    assert_string_equal(by_sni(r, "openai.com"), "self"); /* ".d" includes d itself */
    assert_string_equal(by_sni(r, "api.openai.com"), "self");
    assert_string_equal(by_sni(r, "a.b.c.openai.com"), "self");
    assert_string_equal(by_sni(r, "notopenai.com"), "(none)"); /* label boundary */
    assert_string_equal(by_sni(r, "openai.com.evil.net"), "(none)");
    assert_string_equal(by_sni(r, "azure.com"), "(none)"); /* "*.d" needs a label */
    assert_string_equal(by_sni(r, "x.azure.com"), "sub");
    assert_string_equal(by_sni(r, "Management.AZURE.com"), "sub");
    assert_string_equal(by_sni(r, "xazure.com"), "(none)");
    sn_rules_free(r);
}

static void test_sni_glob(void **state)
{
    (void)state;
    struct sn_rules *r = P("sni bedrock-runtime.*.amazonaws.com -> service=bedrock\n"
                           "sni *-aiplatform.googleapis.com -> service=vertex\n"
                           "sni api-v[0-9].example.? -> service=set\n");
    assert_non_null(r);
    assert_string_equal(by_sni(r, "bedrock-runtime.us-east-1.amazonaws.com"), "bedrock");
    assert_string_equal(by_sni(r, "bedrock-runtime.eu-central-1.amazonaws.com"), "bedrock");
    assert_string_equal(by_sni(r, "bedrock.us-east-1.amazonaws.com"), "(none)");
    assert_string_equal(by_sni(r, "bedrock-runtime.amazonaws.com"), "(none)");
    assert_string_equal(by_sni(r, "us-central1-aiplatform.googleapis.com"), "vertex");
    assert_string_equal(by_sni(r, "aiplatform.googleapis.com"), "(none)");
    assert_string_equal(by_sni(r, "api-v2.example.x"), "set");
    assert_string_equal(by_sni(r, "api-vx.example.x"), "(none)");
    assert_string_equal(by_sni(r, "api-v2.example.xy"), "(none)");
    sn_rules_free(r);
}

/* The matcher's globs agree with fnmatch(3) (no flags) on patterns and names made of the
 * characters SNI patterns allow. */
static void test_glob_vs_fnmatch(void **state)
{
    (void)state;
    static const char *const pats[] = {
        "*.a.com", "a*.com", "*a*", "a*b*c", "*-x.y.z", "?.a", "??", "[ab]*", "[!ab].c",
        "[^ab].c", "[a-c]x", "[]a]x", "x[", "x[a", "*[0-9]", "a**b", "*", "?*?", "a.*.b.*.c",
        "[a-]z", "[-a]z", "bedrock-runtime.*.amazonaws.com", "*-aiplatform.googleapis.com",
    };
    static const char *const names[] = {
        "", "a", "b", "ab", "abc", "aXbYc", "x.a.com", "a.com", "ab.com", "q-x.y.z", "-x.y.z",
        "b.a", "ba", "bxx", "d.c", "a.c", "bx", "]x", "x[", "x[a", "v2", "az", "-z", "zz",
        "ab.b", "a..b", "a.1.b.2.c", "a.b.c", "bedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime.amazonaws.com", "us-central1-aiplatform.googleapis.com",
        "aiplatform.googleapis.com", "aaaaaaaaaaaaaaaaaaaab",
    };
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "sni %s -> service=g\n", pats[i]);
        struct sn_rules *r = P(text);
        if (!r)
            fail_msg("%s: %s", pats[i], sn_err_last());
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            bool want = names[k][0] && fnmatch(pats[i], names[k], 0) == 0;
            bool got = strcmp(by_sni(r, names[k]), "g") == 0;
            if (want != got)
                fail_msg("pattern %s name %s: fnmatch %d, rules %d", pats[i], names[k], want, got);
        }
        sn_rules_free(r);
    }
}

static void test_cidr(void **state)
{
    (void)state;
    struct sn_rules *r = P("cidr 104.16.0.0/13 -> service=cf\n"
                           "cidr 104.21.234.0/24 -> service=cf24\n"
                           "cidr 2606:4700::/32 -> service=cf6\n"
                           "cidr 192.0.2.7 -> service=host\n"
                           "cidr 2001:db8::1 -> service=host6\n"
                           "cidr 0.0.0.0/0 -> service=any4\n");
    assert_non_null(r);
    /* Server addresses seen in the ja4 captures: 104.17.24.14, 104.21.234.234, 2606:4700:10::6816:826. */
    assert_string_equal(by_addr(r, NULL, "104.17.24.14", 443), "cf");
    assert_string_equal(by_addr(r, NULL, "104.21.234.234", 443), "cf24"); /* longer prefix */
    assert_string_equal(by_addr(r, NULL, "104.24.0.1", 443), "any4");
    assert_string_equal(by_addr(r, NULL, "2606:4700:10::6816:826", 443), "cf6");
    assert_string_equal(by_addr(r, NULL, "2606:4701::1", 443), "(none)");
    assert_string_equal(by_addr(r, NULL, "192.0.2.7", 443), "host");
    assert_string_equal(by_addr(r, NULL, "192.0.2.8", 443), "any4");
    assert_string_equal(by_addr(r, NULL, "2001:db8::1", 443), "host6");
    assert_string_equal(by_addr(r, NULL, "2001:db8::2", 443), "(none)");
    struct sn_addr unset = {0};
    struct sn_rule_query q = {.server = &unset};
    assert_null(sn_rules_match(r, &q));
    sn_rules_free(r);
}

static void test_port_ja_app(void **state)
{
    (void)state;
    struct sn_rules *r =
        P("port 8443 -> service=p\n"
          "ja4 t13d1516h2_8daaf6152771_02713d6af862 -> service=chrome\n"
          "ja3 E7D705A3286E19EA42F587B344EE6865 -> service=j3\n"
          "app AmazonAWS -> service=aws-app\n"
          "app TLS.Google -> service=google-full\n");
    assert_non_null(r);
    struct sn_rule_query q = {.server_port = 8443};
    assert_string_equal(svc(sn_rules_match(r, &q)), "p");
    q.server_port = 443;
    assert_null(sn_rules_match(r, &q));
    q = (struct sn_rule_query){.ja4 = "T13D1516H2_8daaf6152771_02713d6af862"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "chrome");
    q.ja4 = "t13d1516h2_8daaf6152771_000000000000";
    assert_null(sn_rules_match(r, &q));
    q = (struct sn_rule_query){.ja3 = "e7d705a3286e19ea42f587b344ee6865"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "j3");
    /* app: the whole nDPI name or any dot-separated part (names as printed in the ndpi result files). */
    const char *aws[] = {"AmazonAWS", "TLS.AmazonAWS", "amazonaws", "QUIC.AmazonAWS.Foo"};
    for (size_t i = 0; i < 4; i++) {
        q = (struct sn_rule_query){.app = aws[i]};
        assert_string_equal(svc(sn_rules_match(r, &q)), "aws-app");
    }
    q.app = "TLS.Google";
    assert_string_equal(svc(sn_rules_match(r, &q)), "google-full");
    q.app = "Google";
    assert_null(sn_rules_match(r, &q));
    q.app = "TLS";
    assert_null(sn_rules_match(r, &q));
    q.app = "AmazonAWSx";
    assert_null(sn_rules_match(r, &q));
    sn_rules_free(r);
}

/* The memo answers exactly as sn_rules_match: a string changed in place, a server, a port or
 * another set (even one at the same address) is a new question. */
static void test_memo(void **state)
{
    (void)state;
    static const char text[] = "sni .example.com -> service=ex\n"
                               "cidr 192.0.2.0/24 port 443 -> service=doc443\n"
                               "app Google -> service=g\n"
                               "ja3 e7d705a3286e19ea42f587b344ee6865 -> service=j3\n";
    struct sn_rules *r = P(text);
    assert_non_null(r);
    struct sn_rule_memo m = {0};
    char sni[64] = "www.example.com", app[32] = "TLS.Google";
    struct sn_addr srv;
    assert_int_equal(sn_addr_parse("192.0.2.9", &srv), 0);
    struct sn_rule_query q = {.sni = sni, .server = &srv, .server_port = 443, .app = app};
    for (int round = 0; round < 2; round++) {
        assert_ptr_equal(sn_rules_match_memo(r, &q, &m), sn_rules_match(r, &q));
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "ex");
        strcpy(sni, "www.example.org"); /* same pointer, new content */
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "doc443");
        q.server_port = 80;
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "g");
        strcpy(app, "TLS.Amazon");
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "(none)");
        q.ja3 = "E7D705A3286E19EA42F587B344EE6865";
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "j3");
        q.ja3 = NULL;
        srv.a[3] = 10;
        q.server_port = 443;
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "doc443");
        assert_int_equal(sn_addr_parse("198.51.100.1", &srv), 0);
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "(none)");
        q.server = NULL;
        assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "(none)");
        /* a string too long to remember still gets the right answer */
        char long_sni[300];
        memset(long_sni, 'a', sizeof(long_sni));
        strcpy(long_sni + sizeof(long_sni) - 13, ".example.com");
        q.sni = long_sni;
        assert_ptr_equal(sn_rules_match_memo(r, &q, &m), sn_rules_match(r, &q));
        assert_ptr_equal(sn_rules_match_memo(r, &q, &m), sn_rules_match(r, &q));
        /* back to the start for the next round, with a new set */
        strcpy(sni, "www.example.com");
        strcpy(app, "TLS.Google");
        assert_int_equal(sn_addr_parse("192.0.2.9", &srv), 0);
        q = (struct sn_rule_query){.sni = sni, .server = &srv, .server_port = 443, .app = app};
        sn_rules_free(r);
        r = P(round ? text : "sni www.example.com -> service=other\n");
        assert_non_null(r);
        if (!round) {
            assert_string_equal(svc(sn_rules_match_memo(r, &q, &m)), "other");
            sn_rules_free(r);
            r = P(text); /* perhaps at the same address as the first: still a new set */
        }
    }
    assert_null(sn_rules_match_memo(NULL, &q, &m));
    sn_rules_free(r);
}

/* All conditions of a rule must hold; a missing value fails its condition. */
static void test_conjunction(void **state)
{
    (void)state;
    struct sn_rules *r = P("sni .example.com port 8443 -> service=admin\n"
                           "sni .example.com -> service=site\n"
                           "sni .example.com ja4 t13d_x_y -> service=tool\n"
                           "cidr 192.0.2.0/24 app HTTP -> service=web\n");
    assert_non_null(r);
    assert_string_equal(by_addr(r, "www.example.com", "198.51.100.1", 8443), "admin");
    assert_string_equal(by_addr(r, "www.example.com", "198.51.100.1", 443), "site");
    struct sn_rule_query q = {.sni = "www.example.com", .ja4 = "t13d_x_y"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "tool");
    struct sn_addr a;
    assert_int_equal(sn_addr_parse("192.0.2.1", &a), 0);
    q = (struct sn_rule_query){.server = &a, .app = "HTTP.Google"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "web");
    q.app = NULL;
    assert_null(sn_rules_match(r, &q));
    sn_rules_free(r);
}

/* ---- precedence: most specific match ---- */

static void test_precedence(void **state)
{
    (void)state;
    /* Generic rules first, so first-match would get every case below wrong. */
    struct sn_rules *r = P("sni .com -> service=com\n"
                           "sni .amazonaws.com -> service=aws\n"
                           "sni .azure.com -> service=azure\n"
                           "cidr 0.0.0.0/0 -> service=anywhere\n"
                           "cidr 203.0.113.0/24 -> service=net\n"
                           "sni bedrock-runtime.*.amazonaws.com -> service=bedrock\n"
                           "sni *.openai.azure.com -> service=azure-openai\n"
                           "sni special.openai.azure.com -> service=exact\n"
                           "sni .openai.azure.com port 8443 -> service=port\n");
    assert_non_null(r);
    assert_string_equal(by_sni(r, "shop.com"), "com");
    assert_string_equal(by_sni(r, "s3.amazonaws.com"), "aws");
    assert_string_equal(by_sni(r, "bedrock-runtime.us-east-1.amazonaws.com"), "bedrock");
    assert_string_equal(by_sni(r, "management.azure.com"), "azure");
    assert_string_equal(by_sni(r, "res.openai.azure.com"), "azure-openai");
    assert_string_equal(by_sni(r, "special.openai.azure.com"), "exact");
    /* port adds to the same-length suffix; the exact name still wins. */
    assert_string_equal(by_addr(r, "res.openai.azure.com", "203.0.113.5", 8443), "port");
    assert_string_equal(by_addr(r, "special.openai.azure.com", "203.0.113.5", 8443), "exact");
    /* Any SNI rule beats any CIDR rule; a longer prefix beats a shorter one. */
    assert_string_equal(by_addr(r, "x.com", "203.0.113.5", 443), "com");
    assert_string_equal(by_addr(r, "example.org", "203.0.113.5", 443), "net");
    assert_string_equal(by_addr(r, "example.org", "198.51.100.5", 443), "anywhere");
    assert_string_equal(by_addr(r, NULL, "2001:db8::1", 443), "(none)");
    sn_rules_free(r);

    /* Equal scores: the rule loaded first wins, whatever its kind. */
    r = P("sni *.tie.example -> service=first\n"
          "sni .tie.example -> service=second\n");
    assert_non_null(r);
    assert_string_equal(by_sni(r, "a.tie.example"), "first");
    assert_string_equal(by_sni(r, "tie.example"), "second"); /* only ".d" matches d */
    sn_rules_free(r);
    r = P("sni .tie.example -> service=first\n"
          "sni *.tie.example -> service=second\n");
    assert_non_null(r);
    assert_string_equal(by_sni(r, "a.tie.example"), "first");
    sn_rules_free(r);

    /* A glob with more literal text beats a shorter suffix, a shorter glob loses to a longer
     * suffix. */
    r = P("sni *.example.com -> service=suffix\n"
          "sni a*.example.com -> service=glob\n"
          "sni .b.example.com -> service=longer\n"
          "sni ?.example.com -> service=short-glob\n");
    assert_non_null(r);
    assert_string_equal(by_sni(r, "abc.example.com"), "glob");
    assert_string_equal(by_sni(r, "a.b.example.com"), "longer");
    assert_string_equal(by_sni(r, "z.example.com"), "suffix"); /* tie (2012): first */
    sn_rules_free(r);
}

/* ---- errors ---- */

static void expect_error(const char *text, const char *msg)
{
    struct sn_rules *r = P(text);
    if (r) {
        sn_rules_free(r);
        fail_msg("accepted: %s", text);
    }
    if (strcmp(sn_err_last(), msg) != 0)
        fail_msg("input: %s\nwant: %s\ngot:  %s", text, msg, sn_err_last());
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("sni a.com -> service=a\nhost b.com -> service=b\n",
                 "rules: t.rules:2: unknown field 'host' (sni, cidr, port, ja4, ja3, app)");
    expect_error("# c\n\ncidr 10.0.0.0/33 -> service=x\n",
                 "rules: t.rules:3: bad CIDR '10.0.0.0/33' (prefix length 0..32)");
    expect_error("cidr 10.0.0.1/8 -> service=x\n",
                 "rules: t.rules:1: bad CIDR '10.0.0.1/8' (bits set after the prefix)");
    expect_error("cidr 10.0.0.300/8 -> service=x\n",
                 "rules: t.rules:1: bad CIDR '10.0.0.300/8' (not an IPv4 or IPv6 address)");
    expect_error("cidr 2001:db8::/129 -> service=x\n",
                 "rules: t.rules:1: bad CIDR '2001:db8::/129' (prefix length 0..128)");
    expect_error("cidr 10.0.0.0/ -> service=x\n",
                 "rules: t.rules:1: bad CIDR '10.0.0.0/' (prefix length 0..32)");
    expect_error("sni a.com -> kind=llm-api watch=yes\n", "rules: t.rules:1: missing service=");
    expect_error("sni a.com -> service=a\nsni A.com. -> service=b\n",
                 "rules: t.rules:2: bad sni pattern 'a.com.' (empty label)");
    expect_error("sni a.com -> service=a\n\nsni A.COM -> service=b\n",
                 "rules: t.rules:3: duplicate rule (same match as t.rules:1)");
    expect_error("sni .a.com port 443 -> service=a\nport 443 sni .a.com -> service=b\n",
                 "rules: t.rules:2: duplicate rule (same match as t.rules:1)");
    expect_error("sni a.com sni b.com -> service=a\n",
                 "rules: t.rules:1: duplicate field 'sni' (one per rule; write another rule)");
    expect_error("sni a.com -> service=a kind=x kind=y\n",
                 "rules: t.rules:1: duplicate attribute 'kind'");
    expect_error("sni a.com -> service=a service=b\n",
                 "rules: t.rules:1: duplicate attribute 'service'");
    char longline[SN_RULES_MAX_LINE + 100];
    snprintf(longline, sizeof(longline), "sni a.com -> service=a note=%0*d\n",
             SN_RULES_MAX_LINE, 0);
    expect_error(longline, "rules: t.rules:1: line too long (max 1024 bytes)");
    expect_error("sni a.com service=a\n",
                 "rules: t.rules:1: missing '->' between match fields and attributes");
    expect_error("-> service=a\n", "rules: t.rules:1: no match field before '->'");
    expect_error("sni -> service=a\n", "rules: t.rules:1: missing value for 'sni'");
    expect_error("sni a.com -> service\n",
                 "rules: t.rules:1: bad attribute 'service' (want key=value)");
    expect_error("sni a.com -> service=\n", "rules: t.rules:1: empty value for 'service'");
    expect_error("sni a.com -> service=a Kind=x\n",
                 "rules: t.rules:1: bad attribute key 'Kind' (lowercase letters, digits, '_', '-')");
    expect_error("sni a.com -> service=a watch=maybe\n",
                 "rules: t.rules:1: bad watch value 'maybe' (yes or no)");
    expect_error("sni a.com -> service=a name=b\n",
                 "rules: t.rules:1: attribute 'name' is reserved (the service name is service=)");
    expect_error("port 0 -> service=a\n", "rules: t.rules:1: bad port '0' (1..65535)");
    expect_error("port 65536 -> service=a\n", "rules: t.rules:1: bad port '65536' (1..65535)");
    expect_error("port 44x -> service=a\n", "rules: t.rules:1: bad port '44x' (1..65535)");
    expect_error("ja3 abc -> service=a\n",
                 "rules: t.rules:1: bad ja3 'abc' (want the 32 hex digit MD5)");
    expect_error("ja4 t13d/1 -> service=a\n", "rules: t.rules:1: bad ja4 't13d/1' (character '/')");
    expect_error("sni a/b.com -> service=a\n",
                 "rules: t.rules:1: bad sni pattern 'a/b.com' (character '/')");
    expect_error("sni .. -> service=a\n", "rules: t.rules:1: bad sni pattern '..' (empty label)");
    expect_error("sni a.com -> service=\"a b\n", "rules: t.rules:1: unterminated quote");
    expect_error("sni a.com -> service=a\tnote=\x01\n",
                 "rules: t.rules:1: invalid character (byte 0x01)");
    static const char nul[] = "sni a.com -> service=a\nsni b\0.com -> service=b\n";
    struct sn_rules *r = sn_rules_parse("t.rules", nul, sizeof(nul) - 1);
    assert_null(r);
    assert_string_equal(sn_err_last(), "rules: t.rules:2: invalid character (byte 0x00)");
    char many[SN_RULES_MAX_LINE] = "sni a.com -> service=a";
    for (int i = 0; i < SN_RULES_MAX_ATTRS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), " k%d=v", i);
    expect_error(many, "rules: t.rules:1: too many attributes (max 16)");
}

static void test_syntax_ok(void **state)
{
    (void)state;
    /* CRLF, tabs, comments, quotes, no final newline, a 1024-byte line. */
    char line[SN_RULES_MAX_LINE + 1];
    int pre = snprintf(line, sizeof(line), "sni long.example -> service=l #");
    memset(line + pre, 'x', SN_RULES_MAX_LINE - (size_t)pre);
    line[SN_RULES_MAX_LINE] = '\0';
    char text[4096];
    snprintf(text, sizeof(text),
             "# header\r\n"
             "\r\n"
             "   # indented comment\n"
             "sni\ta.example\t->\tservice=a   # trailing comment\r\n"
             "sni b.example -> service=b provider=\"Google Cloud\" q=\"say \\\"hi\\\" #1\"\n"
             "sni \"c.example\" -> service=c watch=true\n"
             "%s\n"
             "sni d.example -> service=d watch=no",
             line);
    struct sn_rules *r = P(text);
    assert_non_null(r);
    assert_int_equal(sn_rules_count(r), 5);
    struct sn_rule_query q = {.sni = "b.example"};
    const struct sn_rule *b = sn_rules_match(r, &q);
    assert_non_null(b);
    assert_string_equal(sn_rule_attr(b, "provider"), "Google Cloud");
    assert_string_equal(sn_rule_attr(b, "q"), "say \"hi\" #1");
    assert_string_equal(sn_rule_attr(b, "service"), "b");
    assert_null(sn_rule_attr(b, "kind"));
    assert_false(sn_rule_watch(b));
    assert_string_equal(sn_rule_file(b), "t.rules");
    assert_int_equal(sn_rule_line(b), 5);
    q.sni = "c.example";
    assert_true(sn_rule_watch(sn_rules_match(r, &q)));
    q.sni = "d.example";
    assert_false(sn_rule_watch(sn_rules_match(r, &q)));
    assert_int_equal(sn_rule_line(sn_rules_match(r, &q)), 8);
    assert_string_equal(by_sni(r, "long.example"), "l");
    sn_rules_free(r);

    /* Empty and comment-only input: a valid, empty set. */
    r = P("# nothing\n\n");
    assert_non_null(r);
    assert_int_equal(sn_rules_count(r), 0);
    assert_string_equal(by_sni(r, "a.example"), "(none)");
    sn_rules_free(r);
}

/* ---- files and directories ---- */

static char tmpdir[64];

static int setup_tmp(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/sn_rules_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_directory(void **state)
{
    (void)state;
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/d1", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(dir, "20-b.rules", "sni .tie.example -> service=from-b\nsni b.example -> service=b\n");
    write_file(dir, "10-a.rules", "sni *.tie.example -> service=from-a\n");
    write_file(dir, "README.md", "this is not a rule\n");
    write_file(dir, ".hidden.rules", "garbage\n");
    write_file(dir, "notes.rules.bak", "garbage\n");
    snprintf(path, sizeof(path), "%s/sub.rules", dir);
    assert_int_equal(mkdir(path, 0700), 0); /* a directory named *.rules is skipped */

    struct sn_rules *r = sn_rules_load(dir);
    assert_non_null(r);
    assert_int_equal(sn_rules_count(r), 3);
    /* Same score: 10-a.rules loads first, so it wins. */
    struct sn_rule_query q = {.sni = "x.tie.example"};
    const struct sn_rule *m = sn_rules_match(r, &q);
    assert_string_equal(svc(m), "from-a");
    snprintf(path, sizeof(path), "%s/10-a.rules", dir);
    assert_string_equal(sn_rule_file(m), path);
    assert_int_equal(sn_rule_line(m), 1);
    q.sni = "b.example";
    assert_int_equal(sn_rule_line(sn_rules_match(r, &q)), 2);
    sn_rules_free(r);

    /* A trailing slash in the path is fine. */
    snprintf(path, sizeof(path), "%s/", dir);
    r = sn_rules_load(path);
    assert_non_null(r);
    sn_rules_free(r);

    /* One file on its own. */
    snprintf(path, sizeof(path), "%s/20-b.rules", dir);
    r = sn_rules_load(path);
    assert_non_null(r);
    assert_int_equal(sn_rules_count(r), 2);
    sn_rules_free(r);

    /* An error in a later file names that file; duplicates across files name the first. */
    write_file(dir, "30-c.rules", "# c\nsni B.example -> service=again\n");
    sn_err_clear();
    assert_null(sn_rules_load(dir));
    char want[512];
    snprintf(want, sizeof(want), "rules: %s/30-c.rules:2: duplicate rule (same match as %s/20-b.rules:2)",
             dir, dir);
    assert_string_equal(sn_err_last(), want);
    write_file(dir, "30-c.rules", "sni c.example -> service=c\nbogus\n");
    assert_null(sn_rules_load(dir));
    snprintf(want, sizeof(want), "rules: %s/30-c.rules:2: missing '->' between match fields and attributes", dir);
    assert_string_equal(sn_err_last(), want);

    /* A directory without rule files, a missing path. */
    snprintf(path, sizeof(path), "%s/empty", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_null(sn_rules_load(path));
    snprintf(want, sizeof(want), "rules: %s: no *.rules files", path);
    assert_string_equal(sn_err_last(), want);
    assert_null(sn_rules_load("/nonexistent/x.rules"));
    assert_string_equal(sn_err_last(), "rules: /nonexistent/x.rules: No such file or directory");
}

/* ---- JSON ---- */

static void test_json(void **state)
{
    (void)state;
    struct sn_rules *r = P("sni api.openai.com -> service=openai-api kind=llm-api "
                           "provider=openai watch=yes note=\"a \\\"b\\\"\"\n"
                           "sni .example -> service=plain\n");
    assert_non_null(r);
    struct sn_json j;
    sn_json_init(&j);
    struct sn_rule_query q = {.sni = "api.openai.com"};
    sn_json_obj_begin(&j, NULL);
    sn_rule_json(sn_rules_match(r, &q), &j);
    sn_json_obj_end(&j);
    assert_string_equal(j.buf, "{\"service\":{\"name\":\"openai-api\",\"kind\":\"llm-api\","
                               "\"provider\":\"openai\",\"watch\":true,\"note\":\"a \\\"b\\\"\"}}");
    sn_json_reset(&j);
    q.sni = "x.example";
    sn_json_obj_begin(&j, NULL);
    sn_rule_json(sn_rules_match(r, &q), &j);
    sn_json_obj_end(&j);
    assert_string_equal(j.buf, "{\"service\":{\"name\":\"plain\"}}");
    sn_json_fini(&j);
    sn_rules_free(r);
}

/* ---- the shipped rules ---- */

static void test_shipped(void **state)
{
    (void)state;
    struct sn_rules *r = sn_rules_load("rules");
    if (!r)
        fail_msg("%s", sn_err_last());
    assert_true(sn_rules_count(r) > 100);
    static const struct {
        const char *sni, *service;
    } cases[] = {
        {"api.openai.com", "openai-api"},
        {"chatgpt.com", "chatgpt"},
        {"ab.chatgpt.com", "chatgpt"},
        {"chat.openai.com", "chatgpt"},
        {"files.oaiusercontent.com", "openai-content"},
        {"cdn.openai.com", "openai"},
        {"my-resource.openai.azure.com", "azure-openai"},
        {"my-resource.cognitiveservices.azure.com", "azure-ai-services"},
        {"management.azure.com", "azure"},
        {"wd-prod-cp-eu-north-2-fe.northeurope.cloudapp.azure.com", "azure"}, /* ndpi/result */
        {"acct.blob.core.windows.net", "azure"},
        {"api.anthropic.com", "anthropic-api"},
        {"claude.ai", "claude"},
        {"console.anthropic.com", "anthropic"},
        {"generativelanguage.googleapis.com", "google-gemini-api"},
        {"us-central1-aiplatform.googleapis.com", "google-vertex-ai"},
        {"europe-west4-aiplatform.googleapis.com", "google-vertex-ai"},
        {"aiplatform.googleapis.com", "google-vertex-ai"},
        {"clientservices.googleapis.com", "google-cloud"}, /* ndpi/result */
        {"storage.googleapis.com", "google-cloud"},
        {"bedrock-runtime.us-east-1.amazonaws.com", "aws-bedrock"},
        {"bedrock-runtime.eu-central-1.amazonaws.com", "aws-bedrock"},
        {"bedrock-runtime-fips.us-west-2.amazonaws.com", "aws-bedrock"},
        {"bedrock.us-east-1.amazonaws.com", "aws-bedrock"},
        {"runtime.sagemaker.us-east-1.amazonaws.com", "aws-sagemaker-runtime"},
        {"s3.eu-west-1.amazonaws.com", "aws"}, /* ndpi/result */
        {"bolt-prod-s3-eu-west-1.s3.eu-west-1.amazonaws.com", "aws"},
        {"d1234.cloudfront.net", "aws-cloudfront"},
        {"api.mistral.ai", "mistral-api"},
        {"api.deepseek.com", "deepseek-api"},
        {"api.x.ai", "xai-api"},
        {"api.cohere.com", "cohere-api"},
        {"api.cohere.ai", "cohere-api"},
        {"api.groq.com", "groq-api"},
        {"api.together.xyz", "together-api"},
        {"api.together.ai", "together-api"},
        {"api.fireworks.ai", "fireworks-api"},
        {"api.perplexity.ai", "perplexity-api"},
        {"openrouter.ai", "openrouter"},
        {"api-inference.huggingface.co", "huggingface-inference"},
        {"router.huggingface.co", "huggingface-inference"},
        {"abc.us-east-1.aws.endpoints.huggingface.cloud", "huggingface-endpoints"},
        {"dashscope.aliyuncs.com", "alibaba-dashscope"},
        {"oss-cn-hangzhou.aliyuncs.com", "alibaba-cloud"},
        {"e13678.dscb.akamaiedge.net", "akamai"}, /* ndpi/result */
        {"a248.e.akamai.net", "akamai"},
        {"x.fastly.net", "fastly"},
        {"dash.cloudflare.com", "cloudflare"},
        {"example.org", "(none)"},
        {"openai.com.evil.example", "(none)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = by_sni(r, cases[i].sni);
        if (strcmp(got, cases[i].service) != 0)
            fail_msg("%s: want %s, got %s", cases[i].sni, cases[i].service, got);
    }
    struct sn_rule_query q = {.sni = "api.openai.com"};
    const struct sn_rule *m = sn_rules_match(r, &q);
    assert_string_equal(sn_rule_attr(m, "kind"), "llm-api");
    assert_true(sn_rule_watch(m));
    q.sni = "bedrock-runtime.us-east-1.amazonaws.com";
    m = sn_rules_match(r, &q);
    assert_string_equal(sn_rule_attr(m, "kind"), "llm-api");
    assert_true(sn_rule_watch(m));
    q.sni = "s3.amazonaws.com";
    m = sn_rules_match(r, &q);
    assert_string_equal(sn_rule_attr(m, "kind"), "cloud");
    assert_false(sn_rule_watch(m));
    /* Cloudflare by address when there is no SNI (ja4/pcap servers); an SNI rule still wins
     * for a name served from Cloudflare. */
    assert_string_equal(by_addr(r, NULL, "104.21.234.234", 443), "cloudflare");
    assert_string_equal(by_addr(r, NULL, "172.67.24.71", 443), "cloudflare");
    assert_string_equal(by_addr(r, NULL, "2606:4700:10::6816:826", 443), "cloudflare");
    assert_string_equal(by_addr(r, "api.openai.com", "104.18.7.192", 443), "openai-api");
    assert_string_equal(by_addr(r, "unknown.example", "104.18.7.192", 443), "cloudflare");
    assert_string_equal(by_addr(r, NULL, "54.160.114.75", 443), "(none)");

    /* nDPI's names (classify: "master.app"; LLM ones from rules/ndpi-protos.txt) fill gaps,
     * and lift a generic cloud name to the LLM service. */
    q = (struct sn_rule_query){.app = "TLS.OpenAI"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "openai");
    q = (struct sn_rule_query){.app = "TLS.AmazonAWS"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "aws");
    q = (struct sn_rule_query){.sni = "api.openai.com", .app = "TLS.OpenAI"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "openai-api");
    q = (struct sn_rule_query){.sni = "bedrock-xyz.ap-south-2.amazonaws.com", .app = "TLS"};
    assert_string_equal(svc(sn_rules_match(r, &q)), "aws");
    q.app = "TLS.AWSBedrock";
    assert_string_equal(svc(sn_rules_match(r, &q)), "aws-bedrock");
    sn_rules_free(r);
}

/* Rough cost of a match on the shipped set (printed, not asserted). */
static void test_speed(void **state)
{
    (void)state;
    struct sn_rules *r = sn_rules_load("rules");
    assert_non_null(r);
    const char *names[] = {"bedrock-runtime.us-east-1.amazonaws.com", "www.example.org",
                           "a.b.c.d.e.f.example.net", "api.openai.com"};
    struct sn_addr a;
    assert_int_equal(sn_addr_parse("93.184.216.34", &a), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned hits = 0;
    for (int i = 0; i < 100000; i++) {
        struct sn_rule_query q = {.sni = names[i & 3], .server = &a, .server_port = 443};
        hits += sn_rules_match(r, &q) != NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(hits, 50000);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e5;
    printf("# rules match: %.0f ns per flow (%zu rules, this build)\n", ns, sn_rules_count(r));
    sn_rules_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_exact),   cmocka_unit_test(test_sni_suffix),
        cmocka_unit_test(test_sni_glob),    cmocka_unit_test(test_glob_vs_fnmatch),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_port_ja_app), cmocka_unit_test(test_conjunction),
        cmocka_unit_test(test_precedence),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_syntax_ok),   cmocka_unit_test(test_directory),
        cmocka_unit_test(test_json),        cmocka_unit_test(test_shipped),
        cmocka_unit_test(test_speed),       cmocka_unit_test(test_memo),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
