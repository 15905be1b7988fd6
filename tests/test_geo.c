/* Tests for geo: MaxMind's own fake GeoIP2/GeoLite2 test databases (tests/data/geo, see
 * SOURCES.md; expected values from their source-data JSON and the table in
 * shared/data/maxmind/MANIFEST.md), the project's own spanprint-test-*.mmdb
 * (tests/tools/make_test_mmdb.pl), corrupt databases, reload and the cache.
 * Run from the repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "geo.h"
#include "json.h"
#include "log.h"

#define D "tests/data/geo/"
#define CITY D "GeoIP2-City-Test.mmdb"
#define LCITY D "GeoLite2-City-Test.mmdb"
#define COUNTRY D "GeoIP2-Country-Test.mmdb"
#define LCOUNTRY D "GeoLite2-Country-Test.mmdb"
#define ASN D "GeoLite2-ASN-Test.mmdb"
#define ISP D "GeoIP2-ISP-Test.mmdb"
#define SPCITY D "spanprint-test-city.mmdb"
#define SPASN D "spanprint-test-asn.mmdb"

static void look(struct sn_geo *g, const char *ip, struct sn_geo_info *gi)
{
    struct sn_addr a;
    assert_int_equal(sn_addr_parse(ip, &a), 0);
    sn_geo_lookup(g, &a, gi);
}

static char tmpdir[64];

static int setup_tmp(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/sn_geo_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    assert_non_null(in);
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Atomic replacement, as geoipupdate does it. */
static void replace_file(const char *from, const char *to)
{
    char t[256];
    snprintf(t, sizeof(t), "%s.new", to);
    copy_file(from, t);
    assert_int_equal(rename(t, to), 0);
}

/* Runs fn with stderr captured into buf. */
static void capture_stderr(char *buf, size_t cap, void (*fn)(void *), void *arg)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    fn(arg);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* ---- lookups ---- */

static void test_city_lookup(void **state)
{
    (void)state;
    struct sn_geo *g = sn_geo_open(CITY, NULL);
    assert_non_null(g);
    assert_string_equal(sn_geo_city_type(g), "GeoIP2-City");
    assert_null(sn_geo_asn_type(g));
    struct sn_geo_info gi;

    look(g, "81.2.69.160", &gi);
    assert_int_equal(gi.scope, SN_GEO_PUBLIC);
    assert_true(gi.found_city);
    assert_false(gi.found_asn);
    assert_string_equal(gi.country, "GB");
    assert_string_equal(gi.continent, "EU");
    assert_string_equal(gi.city, "London");

    look(g, "216.160.83.56", &gi);
    assert_string_equal(gi.country, "US");
    assert_string_equal(gi.city, "Milton");
    look(g, "89.160.20.112", &gi);
    assert_string_equal(gi.country, "SE");
    assert_string_equal(gi.city, "Link\xc3\xb6ping");
    look(g, "175.16.199.0", &gi);
    assert_string_equal(gi.country, "CN");
    assert_string_equal(gi.city, "Changchun");
    look(g, "67.43.156.0", &gi); /* country, no city */
    assert_true(gi.found_city);
    assert_string_equal(gi.country, "BT");
    assert_string_equal(gi.city, "");
    look(g, "2001:218::1", &gi); /* IPv6 */
    assert_string_equal(gi.country, "JP");
    assert_string_equal(gi.continent, "AS");
    assert_string_equal(gi.city, "");
    look(g, "::ffff:81.2.69.160", &gi); /* IPv4-mapped is looked up as IPv4 */
    assert_string_equal(gi.city, "London");

    struct sn_geo_stats st;
    sn_geo_get_stats(g, &st);
    assert_int_equal(st.lookups, 7);
    assert_int_equal(st.not_found, 0);
    assert_int_equal(st.errors, 0);
    sn_geo_free(g);

    g = sn_geo_open(LCITY, NULL); /* GeoLite2 layout */
    assert_non_null(g);
    look(g, "81.2.69.160", &gi);
    assert_string_equal(gi.country, "GB");
    assert_string_equal(gi.city, "London");
    sn_geo_free(g);
}

static void test_country_db(void **state)
{
    (void)state;
    const char *files[] = {COUNTRY, LCOUNTRY};
    for (size_t i = 0; i < 2; i++) {
        struct sn_geo *g = sn_geo_open(files[i], NULL);
        assert_non_null(g);
        struct sn_geo_info gi;
        look(g, "81.2.69.160", &gi);
        assert_true(gi.found_city);
        assert_string_equal(gi.country, "GB");
        assert_string_equal(gi.continent, "EU");
        assert_string_equal(gi.city, "");
        look(g, "2001:218::1", &gi);
        assert_string_equal(gi.country, "JP");
        sn_geo_free(g);
    }
}

static void test_asn_lookup(void **state)
{
    (void)state;
    struct sn_geo *g = sn_geo_open(NULL, ASN);
    assert_non_null(g);
    assert_null(sn_geo_city_type(g));
    assert_string_equal(sn_geo_asn_type(g), "GeoLite2-ASN");
    struct sn_geo_info gi;
    look(g, "1.128.0.0", &gi);
    assert_true(gi.found_asn);
    assert_false(gi.found_city);
    assert_int_equal(gi.asn, 1221);
    assert_string_equal(gi.asn_org, "Telstra Pty Ltd");
    assert_string_equal(gi.country, "");
    look(g, "12.81.92.1", &gi);
    assert_int_equal(gi.asn, 7018);
    assert_string_equal(gi.asn_org, "AT&T Services");
    look(g, "149.101.100.1", &gi);
    assert_int_equal(gi.asn, 6167);
    look(g, "2600:6000::1", &gi);
    assert_int_equal(gi.asn, 237);
    assert_string_equal(gi.asn_org, "Merit Network Inc.");
    sn_geo_free(g);

    /* The ISP database carries the same fields. */
    g = sn_geo_open(NULL, ISP);
    assert_non_null(g);
    look(g, "1.128.0.0", &gi);
    assert_int_equal(gi.asn, 1221);
    sn_geo_free(g);
}

static void test_both_and_not_found(void **state)
{
    (void)state;
    struct sn_geo *g = sn_geo_open(CITY, ASN);
    assert_non_null(g);
    struct sn_geo_info gi;
    const char *absent[] = {"1.1.1.1", "8.8.8.8", "9.9.9.9", "2a00:1450::1"};
    for (size_t i = 0; i < 4; i++) {
        look(g, absent[i], &gi);
        assert_int_equal(gi.scope, SN_GEO_PUBLIC);
        assert_false(gi.found_city);
        assert_false(gi.found_asn);
        assert_string_equal(gi.country, "");
        assert_int_equal(gi.asn, 0);
    }
    look(g, "81.2.69.160", &gi); /* in City, not in ASN */
    assert_true(gi.found_city);
    assert_false(gi.found_asn);
    look(g, "1.128.0.0", &gi); /* in ASN, not in City */
    assert_false(gi.found_city);
    assert_int_equal(gi.asn, 1221);
    struct sn_geo_stats st;
    sn_geo_get_stats(g, &st);
    assert_int_equal(st.lookups, 6);
    assert_int_equal(st.not_found, 4);
    assert_int_equal(st.errors, 0);
    sn_geo_free(g);
}

static void test_scope(void **state)
{
    (void)state;
    static const struct {
        const char *ip;
        uint8_t scope;
        const char *name;
    } cases[] = {
        {"10.1.2.3", SN_GEO_PRIVATE, "private"},
        {"172.16.225.48", SN_GEO_PRIVATE, "private"},
        {"172.32.0.1", SN_GEO_PUBLIC, "public"},
        {"192.168.1.169", SN_GEO_PRIVATE, "private"},
        {"127.0.0.1", SN_GEO_LOOPBACK, "loopback"},
        {"169.254.10.1", SN_GEO_LINKLOCAL, "link-local"},
        {"192.0.2.7", SN_GEO_DOC, "documentation"},
        {"198.51.100.1", SN_GEO_DOC, "documentation"},
        {"203.0.113.200", SN_GEO_DOC, "documentation"},
        {"224.0.0.251", SN_GEO_MULTICAST, "multicast"},
        {"239.255.255.250", SN_GEO_MULTICAST, "multicast"},
        {"100.64.0.1", SN_GEO_CGNAT, "cgnat"},
        {"100.128.0.1", SN_GEO_PUBLIC, "public"},
        {"0.0.0.0", SN_GEO_UNSPEC, "unspecified"},
        {"255.255.255.255", SN_GEO_RESERVED, "reserved"},
        {"198.18.0.1", SN_GEO_RESERVED, "reserved"},
        {"::", SN_GEO_UNSPEC, "unspecified"},
        {"::1", SN_GEO_LOOPBACK, "loopback"},
        {"fe80::260:97ff:fe07:69ea", SN_GEO_LINKLOCAL, "link-local"},
        {"fd12:3456::1", SN_GEO_PRIVATE, "private"},
        {"2001:db8:1::1", SN_GEO_DOC, "documentation"},
        {"3fff:1::1", SN_GEO_DOC, "documentation"},
        {"ff02::1", SN_GEO_MULTICAST, "multicast"},
        {"::ffff:10.0.0.1", SN_GEO_PRIVATE, "private"},
        {"2606:4700:10::6816:826", SN_GEO_PUBLIC, "public"},
    };
    struct sn_geo *g = sn_geo_open(CITY, ASN);
    assert_non_null(g);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_addr a;
        assert_int_equal(sn_addr_parse(cases[i].ip, &a), 0);
        assert_int_equal(sn_geo_scope(&a), cases[i].scope);
        assert_string_equal(sn_geo_scope_name(cases[i].scope), cases[i].name);
        struct sn_geo_info gi;
        sn_geo_lookup(g, &a, &gi);
        assert_int_equal(gi.scope, cases[i].scope);
    }
    /* Only the three public ones were looked up. */
    struct sn_geo_stats st;
    sn_geo_get_stats(g, &st);
    assert_int_equal(st.lookups, 3);

    struct sn_addr none = {0};
    struct sn_geo_info gi;
    sn_geo_lookup(g, &none, &gi);
    assert_int_equal(gi.scope, SN_GEO_UNSPEC);
    sn_geo_free(g);

    /* Without a handle: scope only. */
    look(NULL, "10.0.0.1", &gi);
    assert_int_equal(gi.scope, SN_GEO_PRIVATE);
    look(NULL, "81.2.69.160", &gi);
    assert_int_equal(gi.scope, SN_GEO_PUBLIC);
    assert_false(gi.found_city);
}

/* The project's own database maps servers seen in the JA4 captures. */
static void test_spanprint_db(void **state)
{
    (void)state;
    struct sn_geo *g = sn_geo_open(SPCITY, SPASN);
    assert_non_null(g);
    struct sn_geo_info gi;
    look(g, "54.160.114.75", &gi); /* ja4/pcap/tls-handshake.pcapng etc. */
    assert_string_equal(gi.country, "US");
    assert_string_equal(gi.city, "Ashburn");
    assert_int_equal(gi.asn, 14618);
    look(g, "104.21.234.234", &gi);
    assert_int_equal(gi.asn, 13335);
    assert_string_equal(gi.asn_org, "CLOUDFLARENET");
    look(g, "2606:4700:10::6816:826", &gi);
    assert_int_equal(gi.asn, 13335);
    look(g, "34.248.242.11", &gi);
    assert_string_equal(gi.country, "IE");

    /* Documentation ranges are only looked up when asked. */
    look(g, "192.0.2.5", &gi);
    assert_int_equal(gi.scope, SN_GEO_DOC);
    assert_false(gi.found_city);
    sn_geo_set_lookup_all(g, true);
    look(g, "192.0.2.5", &gi);
    assert_int_equal(gi.scope, SN_GEO_DOC);
    assert_string_equal(gi.country, "DE");
    assert_string_equal(gi.city, "Berlin");
    assert_int_equal(gi.asn, 64496);
    look(g, "2001:db8::5", &gi);
    assert_string_equal(gi.country, "SE");
    assert_int_equal(gi.asn, 64499);
    look(g, "203.0.113.9", &gi);
    assert_string_equal(gi.country, "JP");

    /* Over-long names are cut on a UTF-8 character boundary: 40 x U+00D1 (2 bytes) into 63
     * bytes keeps 31 characters, 40 x U+20AC (3 bytes) into 95 keeps 31. */
    look(g, "203.0.113.200", &gi);
    assert_string_equal(gi.country, "ES");
    assert_int_equal(strlen(gi.city), 62);
    for (size_t i = 0; i < 62; i += 2)
        assert_memory_equal(gi.city + i, "\xc3\x91", 2);
    assert_int_equal(strlen(gi.asn_org), 93);
    for (size_t i = 0; i < 93; i += 3)
        assert_memory_equal(gi.asn_org + i, "\xe2\x82\xac", 3);
    assert_int_equal(gi.asn, 64500);
    sn_geo_free(g);
}

static void test_cache(void **state)
{
    (void)state;
    struct sn_geo *g = sn_geo_open(CITY, ASN);
    assert_non_null(g);
    struct sn_geo_info a, b;
    look(g, "81.2.69.160", &a);
    look(g, "81.2.69.160", &b);
    assert_memory_equal(&a, &b, sizeof(a));
    look(g, "1.1.1.1", &a);
    look(g, "1.1.1.1", &b); /* negative answers are cached too */
    assert_false(b.found_city);
    struct sn_geo_stats st;
    sn_geo_get_stats(g, &st);
    assert_int_equal(st.lookups, 4);
    assert_int_equal(st.cache_hits, 2);
    assert_int_equal(st.not_found, 2);

    /* Many distinct addresses evict each other without wrong answers. */
    for (unsigned i = 0; i < 3 * SN_GEO_CACHE_ENTRIES; i++) {
        struct sn_addr x = {.family = 4};
        x.a[0] = 81;
        x.a[1] = 2;
        x.a[2] = (uint8_t)(i >> 8);
        x.a[3] = (uint8_t)i;
        sn_geo_lookup(g, &x, &a);
        if (i < 256) { /* 81.2.0.x */
            assert_false(a.found_city);
        }
    }
    look(g, "81.2.69.160", &a);
    assert_string_equal(a.city, "London");

    /* Cost per lookup, cached and uncached (printed, not asserted: machines differ). */
    struct timespec t0, t1;
    struct sn_addr x;
    assert_int_equal(sn_addr_parse("81.2.69.160", &x), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 200000; i++)
        sn_geo_lookup(g, &x, &a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double hit = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 2e5;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < 200000; i++) {
        x.a[2] = (uint8_t)(i >> 8);
        x.a[3] = (uint8_t)i;
        x.a[1] = (uint8_t)(i >> 16);
        sn_geo_lookup(g, &x, &a);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double miss = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 2e5;
    printf("# geo lookup: %.0f ns cached, %.0f ns mostly uncached (this build)\n", hit, miss);
    sn_geo_free(g);
}

/* ---- errors ---- */

static void test_wrong_type(void **state)
{
    (void)state;
    sn_err_clear();
    assert_null(sn_geo_open(ASN, NULL));
    assert_non_null(strstr(sn_err_last(), "geo: " ASN ": database type 'GeoLite2-ASN'"));
    assert_non_null(strstr(sn_err_last(), "City/Country"));
    assert_null(sn_geo_open(NULL, CITY));
    assert_non_null(strstr(sn_err_last(), CITY ": database type 'GeoIP2-City' is not a ASN"));
    assert_null(sn_geo_open(D "MaxMind-DB-test-ipv4-24.mmdb", NULL));
    assert_non_null(strstr(sn_err_last(), "'Test'"));
    assert_null(sn_geo_open(D "GeoIP2-Connection-Type-Test.mmdb", NULL));
    assert_null(sn_geo_open(CITY, COUNTRY)); /* good city, wrong ASN: whole open fails */
    assert_non_null(strstr(sn_err_last(), COUNTRY));
}

static void test_corrupt(void **state)
{
    (void)state;
    sn_err_clear();
    const char *f = D "GeoIP2-City-Test-Invalid-Node-Count.mmdb";
    assert_null(sn_geo_open(f, NULL));
    char want[256];
    snprintf(want, sizeof(want), "geo: %s: The MaxMind DB file contains invalid metadata", f);
    assert_string_equal(sn_err_last(), want);

    /* Not a database at all. */
    assert_null(sn_geo_open("tests/data/geo/SOURCES.md", NULL));
    assert_non_null(strstr(sn_err_last(), "geo: tests/data/geo/SOURCES.md: "));

    /* A directory. */
    assert_null(sn_geo_open(NULL, "tests/data/geo"));
    assert_non_null(strstr(sn_err_last(), "tests/data/geo"));
}

/* Every deliberately corrupt file from MaxMind-DB's bad-data/ is rejected or, if it opens,
 * answers lookups without crashing (ASan/UBSan watch). */
static void test_bad_data(void **state)
{
    (void)state;
    DIR *d = opendir(D "bad-data");
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".mmdb"))
            continue;
        char path[512];
        snprintf(path, sizeof(path), D "bad-data/%s", e->d_name);
        for (int part = 0; part < 2; part++) {
            sn_err_clear();
            struct sn_geo *g = part ? sn_geo_open(NULL, path) : sn_geo_open(path, NULL);
            if (!g) {
                assert_non_null(strstr(sn_err_last(), path));
                continue;
            }
            const char *ips[] = {"1.1.1.1", "81.2.69.160", "2001:218::1", "::1.2.3.4"};
            for (size_t i = 0; i < 4; i++) {
                struct sn_geo_info gi;
                look(g, ips[i], &gi);
            }
            sn_geo_free(g);
        }
        files++;
    }
    closedir(d);
    assert_int_equal(files, 21);
}

static void open_missing(void *arg)
{
    struct sn_geo **g = arg;
    *g = sn_geo_open("/nonexistent/GeoLite2-City.mmdb", ASN);
}

static void test_missing_file(void **state)
{
    (void)state;
    char out[1024];
    struct sn_geo *g = NULL;
    capture_stderr(out, sizeof(out), open_missing, &g);
    assert_non_null(g);
    assert_non_null(strstr(out, "WARN [geo] /nonexistent/GeoLite2-City.mmdb: no such file"));
    assert_null(strchr(strchr(out, '\n') + 1, 'W')); /* one line */
    assert_null(sn_geo_city_type(g));
    struct sn_geo_info gi;
    look(g, "1.128.0.0", &gi);
    assert_int_equal(gi.asn, 1221);
    look(g, "81.2.69.160", &gi);
    assert_false(gi.found_city);
    /* Still missing: nothing to do, no error. */
    assert_int_equal(sn_geo_reload_if_changed(g), 0);
    assert_int_equal(sn_geo_reload(g), 0);
    sn_geo_free(g);

    /* Both off. */
    g = sn_geo_open(NULL, NULL);
    assert_non_null(g);
    look(g, "81.2.69.160", &gi);
    assert_false(gi.found_city);
    assert_false(gi.found_asn);
    assert_int_equal(sn_geo_reload_if_changed(g), 0);
    sn_geo_free(g);
}

/* ---- reload ---- */

static void test_reload(void **state)
{
    (void)state;
    char city[256], asn[256];
    snprintf(city, sizeof(city), "%s/city.mmdb", tmpdir);
    snprintf(asn, sizeof(asn), "%s/asn.mmdb", tmpdir);
    copy_file(CITY, city);
    copy_file(ASN, asn);
    struct sn_geo *g = sn_geo_open(city, asn);
    assert_non_null(g);
    struct sn_geo *w = sn_geo_clone(g); /* a worker's handle */
    assert_non_null(w);
    struct sn_geo_info gi;
    look(g, "81.2.69.160", &gi);
    assert_string_equal(gi.city, "London");
    look(w, "81.2.69.160", &gi); /* cached in both handles now */
    look(w, "81.2.69.160", &gi);
    assert_string_equal(gi.city, "London");
    assert_int_equal(sn_geo_reload_if_changed(g), 0);

    /* Replace the City file with the project's database. */
    replace_file(SPCITY, city);
    assert_int_equal(sn_geo_reload_if_changed(g), 1);
    assert_string_equal(sn_geo_city_type(g), "Spanprint-Test-City");
    look(g, "81.2.69.160", &gi);
    assert_false(gi.found_city); /* no stale cached London */
    look(w, "81.2.69.160", &gi);
    assert_false(gi.found_city);
    assert_string_equal(gi.country, "");
    look(w, "54.160.114.75", &gi);
    assert_string_equal(gi.country, "US");
    assert_int_equal(gi.asn, 0); /* the ASN file is still MaxMind's */
    look(w, "1.128.0.0", &gi);
    assert_int_equal(gi.asn, 1221);
    assert_int_equal(sn_geo_reload_if_changed(g), 0);
    struct sn_geo_stats st;
    sn_geo_get_stats(w, &st);
    assert_int_equal(st.reloads, 1);

    /* A corrupt replacement: error, the old databases keep answering, and it is not retried
     * until the file changes again. */
    sn_err_clear();
    replace_file(D "GeoIP2-City-Test-Invalid-Node-Count.mmdb", city);
    int rc = sn_geo_reload_if_changed(g);
    assert_true(rc < 0);
    assert_non_null(strstr(sn_err_last(), "invalid metadata"));
    assert_non_null(strstr(sn_err_last(), city));
    assert_int_equal(sn_geo_reload_if_changed(g), 0);
    look(w, "54.160.114.75", &gi);
    assert_string_equal(gi.country, "US");
    /* A wrong-type replacement is refused too. */
    replace_file(ASN, city);
    assert_true(sn_geo_reload_if_changed(g) < 0);
    assert_non_null(strstr(sn_err_last(), "database type"));
    look(g, "54.160.114.75", &gi);
    assert_string_equal(gi.country, "US");

    /* Then a good one. */
    replace_file(LCITY, city);
    assert_int_equal(sn_geo_reload_if_changed(g), 1);
    look(w, "81.2.69.160", &gi);
    assert_string_equal(gi.city, "London");
    assert_string_equal(sn_geo_city_type(w), "GeoLite2-City");

    /* Explicit reload with a file gone: error, old kept. A vanished file is left alone by
     * reload_if_changed (it may be mid-replace). */
    assert_int_equal(unlink(asn), 0);
    assert_int_equal(sn_geo_reload_if_changed(g), 0);
    rc = sn_geo_reload(g);
    assert_int_equal(rc, -2 /* -ENOENT */);
    assert_non_null(strstr(sn_err_last(), asn));
    look(w, "1.128.0.0", &gi);
    assert_int_equal(gi.asn, 1221);
    copy_file(SPASN, asn);
    assert_int_equal(sn_geo_reload(g), 0);
    look(w, "54.160.114.75", &gi);
    assert_int_equal(gi.asn, 14618);
    sn_geo_get_stats(g, &st);
    assert_int_equal(st.reloads, 3);

    /* The original handle can go first; the clone keeps the databases alive. */
    sn_geo_free(g);
    look(w, "54.160.114.75", &gi);
    assert_int_equal(gi.asn, 14618);
    assert_int_equal(sn_geo_reload_if_changed(w), 0);
    sn_geo_free(w);
}

/* A part missing at start is picked up when the file appears. */
static void test_reload_appears(void **state)
{
    (void)state;
    char asn[256];
    snprintf(asn, sizeof(asn), "%s/later-asn.mmdb", tmpdir);
    sn_log_set_level(SN_LOG_ERROR); /* the expected warning */
    struct sn_geo *g = sn_geo_open(CITY, asn);
    sn_log_set_level(SN_LOG_WARN);
    assert_non_null(g);
    struct sn_geo_info gi;
    look(g, "1.128.0.0", &gi);
    assert_false(gi.found_asn);
    replace_file(ASN, asn);
    assert_int_equal(sn_geo_reload_if_changed(g), 1);
    look(g, "1.128.0.0", &gi);
    assert_int_equal(gi.asn, 1221);
    sn_geo_free(g);
}

struct worker {
    struct sn_geo *g;
    volatile int *stop;
    unsigned long n, bad;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sn_addr a;
    if (sn_addr_parse("54.160.114.75", &a) != 0)
        return NULL;
    while (!*w->stop) {
        struct sn_geo_info gi;
        sn_geo_lookup(w->g, &a, &gi);
        /* Either database answers US for it; a torn result would not. */
        if (strcmp(gi.country, "US") != 0 || (gi.asn != 14618 && gi.asn != 0))
            w->bad++;
        w->n++;
    }
    return NULL;
}

/* Workers on clones keep looking up while the main thread replaces and reloads. */
static void test_reload_threads(void **state)
{
    (void)state;
    char city[256], asn[256];
    snprintf(city, sizeof(city), "%s/tcity.mmdb", tmpdir);
    snprintf(asn, sizeof(asn), "%s/tasn.mmdb", tmpdir);
    copy_file(SPCITY, city);
    copy_file(SPASN, asn);
    struct sn_geo *g = sn_geo_open(city, asn);
    assert_non_null(g);
    volatile int stop = 0;
    struct worker ws[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        ws[i] = (struct worker){.g = sn_geo_clone(g), .stop = &stop};
        assert_non_null(ws[i].g);
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        replace_file(SPCITY, city);
        replace_file(i % 2 ? SPASN : ASN, asn);
        assert_int_equal(sn_geo_reload(g), 0);
    }
    stop = 1;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ws[i].bad, 0);
        assert_true(ws[i].n > 0);
        sn_geo_free(ws[i].g);
    }
    sn_geo_free(g);
}

/* ---- JSON ---- */

static const char *json_of(struct sn_json *j, const struct sn_geo_info *gi)
{
    sn_json_reset(j);
    sn_json_obj_begin(j, NULL);
    sn_geo_json(gi, j);
    sn_json_obj_end(j);
    assert_true(sn_json_ok(j));
    return j->buf;
}

static void test_json(void **state)
{
    (void)state;
    struct sn_geo *g = sn_geo_open(CITY, ASN);
    assert_non_null(g);
    struct sn_json j;
    sn_json_init(&j);
    struct sn_geo_info gi;
    look(g, "81.2.69.160", &gi);
    assert_string_equal(json_of(&j, &gi),
                        "{\"geo\":{\"country\":\"GB\",\"continent\":\"EU\",\"city\":\"London\"}}");
    look(g, "1.128.0.0", &gi);
    assert_string_equal(json_of(&j, &gi), "{\"asn\":{\"number\":1221,\"org\":\"Telstra Pty Ltd\"}}");
    look(g, "1.1.1.1", &gi);
    assert_string_equal(json_of(&j, &gi), "{}");
    look(g, "192.168.1.1", &gi);
    assert_string_equal(json_of(&j, &gi), "{\"geo\":{\"scope\":\"private\"}}");
    sn_geo_free(g);

    g = sn_geo_open(SPCITY, SPASN);
    assert_non_null(g);
    sn_geo_set_lookup_all(g, true);
    look(g, "198.51.100.20", &gi);
    assert_string_equal(json_of(&j, &gi),
                        "{\"geo\":{\"country\":\"FR\",\"continent\":\"EU\",\"city\":\"Paris\","
                        "\"scope\":\"documentation\"},"
                        "\"asn\":{\"number\":64497,\"org\":\"Spanprint Test Net 2\"}}");
    sn_geo_free(g);
    sn_json_fini(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_city_lookup),
        cmocka_unit_test(test_country_db),
        cmocka_unit_test(test_asn_lookup),
        cmocka_unit_test(test_both_and_not_found),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_spanprint_db),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_reload_appears),
        cmocka_unit_test(test_reload_threads),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
