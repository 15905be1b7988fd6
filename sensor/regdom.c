#define SN_LOG_MOD "regdom"
#include "regdom.h"

#include <stdbool.h>
#include <string.h>

/* Public suffixes of two or more labels under which names are registered one level down.
 * Kept short and sorted only for readability; lookups are linear (once per settled flow),
 * comparing lengths first (known at compile time). */
struct suffix {
    const char *s;
    size_t n;
};
#define S(lit) {(lit), sizeof(lit) - 1}
static const struct suffix multi_suffixes[] = {
    S("ac.jp"), S("ac.uk"), S("ac.za"), S("co.id"), S("co.il"), S("co.in"), S("co.jp"),
    S("co.kr"), S("co.nz"), S("co.th"), S("co.uk"), S("co.za"), S("com.ar"), S("com.au"),
    S("com.br"), S("com.cn"), S("com.co"), S("com.eg"), S("com.hk"), S("com.mx"), S("com.my"),
    S("com.ng"), S("com.pe"), S("com.ph"), S("com.pk"), S("com.sa"), S("com.sg"), S("com.tr"),
    S("com.tw"), S("com.ua"), S("com.vn"), S("edu.au"), S("edu.cn"), S("gov.au"), S("gov.cn"),
    S("gov.uk"), S("govt.nz"), S("gen.nz"), S("go.jp"), S("ltd.uk"), S("me.uk"), S("ne.jp"),
    S("net.au"), S("net.br"), S("net.cn"), S("net.nz"), S("net.uk"), S("or.jp"), S("or.kr"),
    S("org.au"), S("org.br"), S("org.cn"), S("org.nz"), S("org.uk"), S("org.za"), S("plc.uk"),
    S("sch.uk"),
    /* shared hosting: every customer name is its own site */
    S("amazonaws.com"), S("appspot.com"), S("azurewebsites.net"), S("blogspot.com"),
    S("cloudfront.net"), S("github.io"), S("herokuapp.com"), S("netlify.app"), S("pages.dev"),
    S("vercel.app"), S("workers.dev"),
};
#undef S

static bool is_ip_literal(const char *s, size_t n)
{
    bool digits_dots = true;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ':')
            return true;
        if (!(s[i] == '.' || (s[i] >= '0' && s[i] <= '9')))
            digits_dots = false;
    }
    return digits_dots;
}

static bool is_multi_suffix(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(multi_suffixes) / sizeof(multi_suffixes[0]); i++)
        if (multi_suffixes[i].n == n && memcmp(multi_suffixes[i].s, s, n) == 0)
            return true;
    return false;
}

size_t sn_regdom_get(const char *host, size_t n, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    char buf[256];
    if (n > sizeof(buf) - 1)
        n = sizeof(buf) - 1;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    while (n && buf[n - 1] == '.')
        n--;
    size_t start = 0;
    if (n && !is_ip_literal(buf, n)) {
        /* label start offsets from the right: dots[k] is the start of the k-th last label */
        size_t dots[4] = {0, 0, 0, 0};
        unsigned nl = 0;
        for (size_t i = n; i > 0 && nl < 4; i--)
            if (buf[i - 1] == '.')
                dots[nl++] = i;
        /* dots[0] = start of last label, dots[1] = start of last two labels, ... */
        if (nl >= 2 && is_multi_suffix(buf + dots[1], n - dots[1]))
            start = nl >= 3 ? dots[2] : 0;
        else if (nl >= 1)
            start = nl >= 2 ? dots[1] : 0;
    }
    size_t len = n - start;
    if (len > cap - 1)
        len = cap - 1;
    memcpy(out, buf + start, len);
    out[len] = '\0';
    return len;
}
