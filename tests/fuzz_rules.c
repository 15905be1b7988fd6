/* libFuzzer target for the rules parser and matcher: the input is a rules file; when it
 * loads, a few flows are matched against it, including one whose SNI, JA4 and app are taken
 * from the input's first token so that patterns get exercised against related names. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "addr.h"
#include "json.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_rules *r = sn_rules_parse("fuzz.rules", (const char *)data, size);
    if (!r)
        return 0;
    char name[300];
    size_t n = 0;
    while (n < size && n < sizeof(name) - 1 && data[n] != '\n' && data[n] != ' ')
        n++;
    memcpy(name, data, n);
    name[n] = '\0';
    struct sn_addr a4, a6;
    if (sn_addr_parse("104.21.234.234", &a4) != 0 || sn_addr_parse("2606:4700::1", &a6) != 0)
        __builtin_trap();
    const struct sn_rule_query qs[] = {
        {.sni = name, .server = &a4, .server_port = 443, .ja4 = name, .ja3 = name, .app = name},
        {.sni = "bedrock-runtime.us-east-1.amazonaws.com", .server = &a6, .server_port = 8443},
        {.sni = "a.b.c.d.example.com.", .app = "TLS.Google"},
        {.server = &a4},
    };
    struct sn_json j;
    sn_json_init(&j);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        const struct sn_rule *m = sn_rules_match(r, &qs[i]);
        if (m) {
            sn_json_obj_begin(&j, NULL);
            sn_rule_json(m, &j);
            sn_json_obj_end(&j);
        }
    }
    sn_json_fini(&j);
    sn_rules_free(r);
    return 0;
}
