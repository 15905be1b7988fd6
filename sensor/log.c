#define SN_LOG_MOD "log"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* The only mutable global besides the config pointer and the stop flag: written once at
 * start-up from the command line, read everywhere. */
static enum sn_log_level level = SN_LOG_WARN;

void sn_log_set_level(enum sn_log_level lvl)
{
    level = lvl;
}

enum sn_log_level sn_log_get_level(void)
{
    return level;
}

void sn_log_write(enum sn_log_level lvl, const char *mod, const char *fmt, ...)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s [%s] ", names[lvl], mod);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
