#define SN_LOG_MOD "regdom"
#include "regdom.h"

#include <stdbool.h>
#include <string.h>

/* Public suffixes of two or more labels under which names are registered one level down.
 * Kept short and sorted only for readability; lookups are linear (called once per flow). */
static const char *const multi_suffixes[] = {
    "ac.jp", "ac.uk", "ac.za", "co.id", "co.il", "co.in", "co.jp", "co.kr", "co.nz", "co.th",
    "co.uk", "co.za", "com.ar", "com.au", "com.br", "com.cn", "com.co", "com.eg", "com.hk",
    "com.mx", "com.my", "com.ng", "com.pe", "com.ph", "com.pk", "com.sa", "com.sg", "com.tr",
    "com.tw", "com.ua", "com.vn", "edu.au", "edu.cn", "gov.au", "gov.cn", "gov.uk", "govt.nz",
    "gen.nz", "go.jp", "ltd.uk", "me.uk", "ne.jp", "net.au", "net.br", "net.cn", "net.nz",
    "net.uk", "or.jp", "or.kr", "org.au", "org.br", "org.cn", "org.nz", "org.uk", "org.za",
    "plc.uk", "sch.uk",
    /* shared hosting: every customer name is its own site */
    "amazonaws.com", "appspot.com", "azurewebsites.net", "blogspot.com", "cloudfront.net",
    "github.io", "herokuapp.com", "netlify.app", "pages.dev", "vercel.app", "workers.dev",
};

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
        if (strlen(multi_suffixes[i]) == n && memcmp(multi_suffixes[i], s, n) == 0)
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
