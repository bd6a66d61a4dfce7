/* Logging: one line an event on stderr, written with a single write(2) so threads never
 * interleave. Text by default, one JSON object a line with BRIDGE_LOG_FORMAT=json.
 * Thread: any. The level is checked before anything is formatted. Never log a secret. */
#ifndef SB_BRIDGE_LOG_H
#define SB_BRIDGE_LOG_H

#include <stdbool.h>

enum sb_log_level {
    SB_LOG_ERROR,  /* a human must act */
    SB_LOG_WARN,   /* degraded but recovering */
    SB_LOG_NOTICE, /* state changes: connected, listening */
    SB_LOG_INFO,   /* one line per message handled */
    SB_LOG_DEBUG,  /* headers and bodies */
};

enum sb_log_format {
    SB_LOG_TEXT,
    SB_LOG_JSON,
};

/* Thread: any (an atomic store); called at start and on reload. */
void sb_log_setup(enum sb_log_level level, enum sb_log_format format);
/* Thread: any. */
bool sb_log_enabled(enum sb_log_level level);
/* Parses "error", "warn", "notice", "info", "debug". Returns false on anything else. */
bool sb_log_level_parse(const char *s, enum sb_log_level *out);

void sb_log_at(enum sb_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sb_log(level, module, ...)                                                                 \
    do {                                                                                           \
        if (sb_log_enabled(level)) {                                                               \
            sb_log_at(level, module, __VA_ARGS__);                                                 \
        }                                                                                          \
    } while (0)

#endif
