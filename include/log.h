/* log: leveled logging to stderr as "LEVEL [mod] text".
 *
 * sn_log() checks the level before evaluating its arguments. Each .c defines SN_LOG_MOD
 * before including this header. sn_debug() compiles out unless SN_DEBUG is defined.
 * sn_log_ratelimited() prints at most once per second per call site and reports how many
 * lines it suppressed. Thread safety: safe from any thread (one write(2) per line).
 */
#ifndef SN_LOG_H
#define SN_LOG_H

#include <stdbool.h>
#include <time.h>

enum sn_log_level { SN_LOG_ERROR = 0, SN_LOG_WARN, SN_LOG_INFO, SN_LOG_DEBUG };

#ifndef SN_LOG_MOD
#define SN_LOG_MOD "spanprint"
#endif

void sn_log_set_level(enum sn_log_level lvl);
enum sn_log_level sn_log_get_level(void);
void sn_log_write(enum sn_log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sn_log(lvl, ...)                                                                   \
    do {                                                                                   \
        if ((lvl) <= sn_log_get_level())                                                   \
            sn_log_write((lvl), SN_LOG_MOD, __VA_ARGS__);                                  \
    } while (0)

#define sn_error(...) sn_log(SN_LOG_ERROR, __VA_ARGS__)
#define sn_warn(...) sn_log(SN_LOG_WARN, __VA_ARGS__)
#define sn_info(...) sn_log(SN_LOG_INFO, __VA_ARGS__)
#ifdef SN_DEBUG
#define sn_debug(...) sn_log(SN_LOG_DEBUG, __VA_ARGS__)
#else
#define sn_debug(...) ((void)0)
#endif

/* Per call site state for sn_log_ratelimited. */
struct sn_log_rl {
    time_t last;
    unsigned long suppressed;
};

#define sn_log_ratelimited(lvl, ...)                                                       \
    do {                                                                                   \
        static _Thread_local struct sn_log_rl rl_;                                         \
        time_t now_ = time(NULL);                                                          \
        if (now_ != rl_.last) {                                                            \
            if (rl_.suppressed && (lvl) <= sn_log_get_level())                             \
                sn_log_write((lvl), SN_LOG_MOD, "(%lu similar lines suppressed)",          \
                             rl_.suppressed);                                              \
            rl_.last = now_;                                                               \
            rl_.suppressed = 0;                                                            \
            sn_log((lvl), __VA_ARGS__);                                                    \
        } else {                                                                           \
            rl_.suppressed++;                                                              \
        }                                                                                  \
    } while (0)

#endif
