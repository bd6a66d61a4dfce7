/* The log sink: formats one line (text or JSON) into a stack buffer and writes it to stderr in
 * one write(2), so lines from the loop, paho's threads and the curl thread never interleave. */
#include "bridge/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static atomic_int cur_level = SB_LOG_INFO;
static atomic_int cur_format = SB_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

void sb_log_setup(enum sb_log_level level, enum sb_log_format format)
{
    atomic_store(&cur_level, (int)level);
    atomic_store(&cur_format, (int)format);
}

bool sb_log_enabled(enum sb_log_level level)
{
    return (int)level <= atomic_load_explicit(&cur_level, memory_order_relaxed);
}

bool sb_log_level_parse(const char *s, enum sb_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum sb_log_level)i;
            return true;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = SB_LOG_WARN;
        return true;
    }
    return false;
}

/* Appends `s` JSON-escaped; control bytes become \u00XX, other bytes pass through. */
static size_t json_escape(char *dst, size_t cap, size_t pos, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[pos++] = '\\';
            dst[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(dst + pos, cap - pos, "\\u%04x", c);
        } else {
            dst[pos++] = (char)c;
        }
    }
    return pos;
}

void sb_log_at(enum sb_log_level level, const char *module, const char *fmt, ...)
{
    char msg[LINE_MAX_BYTES];
    char line[LINE_MAX_BYTES + 256];
    struct timespec ts;
    struct tm tm;
    char when[40];
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    if (atomic_load_explicit(&cur_format, memory_order_relaxed) == SB_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"",
                             when, level_names[level]);
        n = json_escape(line, sizeof(line), n, module);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"msg\":\"");
        n = json_escape(line, sizeof(line) - 3, n, msg);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}\n");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %-6s %s: %s\n", when, level_names[level],
                             module, msg);
    }
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    /* A short write to stderr is not worth a retry loop: logging must never block the caller. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
