#define SN_LOG_MOD "err"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RING 16
#define MSG 256

static _Thread_local char ring[RING][MSG];
static _Thread_local unsigned head; /* index of the next slot to write */
static _Thread_local unsigned used;

int sn_err_push(int code, const char *mod, const char *fmt, ...)
{
    char *slot = ring[head % RING];
    int n = snprintf(slot, MSG, "%s: ", mod);
    if (n < 0 || n >= MSG)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(slot + n, MSG - (size_t)n, fmt, ap);
    va_end(ap);
    head++;
    if (used < RING)
        used++;
    return code > 0 ? -code : code;
}

const char *sn_err_last(void)
{
    if (!used)
        return "";
    return ring[(head + RING - 1) % RING];
}

void sn_err_clear(void)
{
    used = 0;
    head = 0;
}

const char *sn_err_str(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case SN_ETRUNC: return "truncated input";
    case SN_EPROTO: return "malformed input";
    case SN_EFULL: return "table or queue full";
    case SN_ECONFIG: return "configuration error";
    default: return strerror(code);
    }
}
