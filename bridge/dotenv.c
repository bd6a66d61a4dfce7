/* The dotenv parser behind --config (see include/bridge/dotenv.h). One working copy of the text
 * is cut into lines and each line is parsed in place; the copy is wiped before it is freed, since
 * it holds the file's secrets. Called by config.c on whichever thread loads the configuration. */
#include "bridge/dotenv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum line_kind {
    LINE_SKIP, /* blank or a comment */
    LINE_PAIR, /* KEY=value */
    LINE_BAD,  /* malformed: `problem` says why, `key` is set when it was read */
};

static void say(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    if (!why || why_len == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--) {
        *v++ = 0;
    }
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static char *skip_blanks(char *s)
{
    while (is_blank(*s)) {
        s++;
    }
    return s;
}

static bool is_key_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9');
}

/* Trims blanks at the end of the string that starts at `s`. */
static void trim_end(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && is_blank(s[n - 1])) {
        s[--n] = '\0';
    }
}

/* After a closing quote only blanks and a comment may follow. */
static bool only_comment_after(char *s)
{
    s = skip_blanks(s);
    return *s == '\0' || *s == '#';
}

/* "..." with \n, \t, \r, \", \\ escapes, unescaped in place. `s` points after the opening quote.
 * Returns the problem, or NULL on success with the value in *value. */
static const char *parse_double_quoted(char *s, char **value)
{
    char *w = s;

    *value = s;
    for (char *r = s; *r; r++) {
        if (*r == '"') {
            *w = '\0';
            return only_comment_after(r + 1) ? NULL : "unexpected text after the closing quote";
        }
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        r++;
        switch (*r) {
        case 'n':
            *w++ = '\n';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case '"':
        case '\\':
            *w++ = *r;
            break;
        case '\0':
            return "unterminated double quote";
        default:
            /* Refused rather than kept: a Windows path in double quotes would otherwise lose
             * or keep its backslashes depending on the next letter. Single quotes are literal. */
            return "unknown escape in double quotes (use \\n, \\t, \\r, \\\" or \\\\)";
        }
    }
    return "unterminated double quote";
}

/* '...' is literal. `s` points after the opening quote. */
static const char *parse_single_quoted(char *s, char **value)
{
    char *end = strchr(s, '\'');

    if (!end) {
        return "unterminated single quote";
    }
    *end = '\0';
    *value = s;
    return only_comment_after(end + 1) ? NULL : "unexpected text after the closing quote";
}

/* A bare value runs to the end of the line; a '#' after a blank starts a comment (as in
 * python-dotenv and docker compose), so "a#b" keeps its '#'. Trailing blanks are trimmed. */
static void parse_bare(char *s, char **value)
{
    for (char *p = s; *p; p++) {
        if (*p == '#' && p > s && is_blank(p[-1])) {
            *p = '\0';
            break;
        }
    }
    trim_end(s);
    *value = s;
}

/* Parses one NUL-terminated line in place. */
static enum line_kind parse_line(char *s, char **key, char **value, const char **problem)
{
    char *key_end;

    *key = NULL;
    *value = NULL;
    s = skip_blanks(s);
    if (*s == '\0' || *s == '#') {
        return LINE_SKIP;
    }
    if (strncmp(s, "export", 6) == 0 && is_blank(s[6])) {
        s = skip_blanks(s + 6);
    }
    if (!is_key_start(*s)) {
        *problem = "expected KEY=value";
        return LINE_BAD;
    }
    key_end = s;
    while (is_key_char(*key_end)) {
        key_end++;
    }
    *key = s;
    s = skip_blanks(key_end);
    if (*s != '=') {
        *problem = *s == '\0' || is_blank(*key_end) ? "expected KEY=value"
                                                    : "invalid character in the key";
        *key = NULL; /* not a key we read whole: do not name it */
        return LINE_BAD;
    }
    *key_end = '\0';
    s = skip_blanks(s + 1);
    if (*s == '"') {
        *problem = parse_double_quoted(s + 1, value);
    } else if (*s == '\'') {
        *problem = parse_single_quoted(s + 1, value);
    } else {
        parse_bare(s, value);
        *problem = NULL;
    }
    return *problem ? LINE_BAD : LINE_PAIR;
}

enum sb_err sb_dotenv_parse(const char *text, size_t len, const char *name, sb_dotenv_fn fn,
                            void *arg, char *why, size_t why_len)
{
    enum sb_err err = SB_OK;
    char *buf;
    char *line;
    unsigned lineno = 0;

    if (!text || !fn) {
        say(why, why_len, "%s: nothing to parse", name ? name : "(config)");
        return SB_E_INVAL;
    }
    if (!name) {
        name = "(config)";
    }
    buf = malloc(len + 1);
    if (!buf) {
        say(why, why_len, "%s: out of memory", name);
        return SB_E_NOMEM;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    line = buf;
    if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3; /* a UTF-8 byte order mark, as some editors write */
    }
    while (line < buf + len) {
        char *nl = memchr(line, '\n', (size_t)(buf + len - line));
        char *key;
        char *value;
        const char *problem = NULL;

        lineno++;
        if (nl) {
            *nl = '\0';
        }
        if (strlen(line) != (size_t)((nl ? nl : buf + len) - line)) {
            say(why, why_len, "%s:%u: NUL byte in the line", name, lineno);
            err = SB_E_CONFIG;
            break;
        }
        switch (parse_line(line, &key, &value, &problem)) {
        case LINE_SKIP:
            break;
        case LINE_BAD:
            if (key) {
                say(why, why_len, "%s:%u: %s: %s", name, lineno, key, problem);
            } else {
                say(why, why_len, "%s:%u: %s", name, lineno, problem);
            }
            err = SB_E_CONFIG;
            break;
        case LINE_PAIR:
            err = fn(key, value, lineno, arg, why, why_len);
            break;
        }
        if (err != SB_OK || !nl) {
            break;
        }
        line = nl + 1;
    }
    wipe(buf, len + 1);
    free(buf);
    return err;
}

enum sb_err sb_dotenv_read(const char *path, sb_dotenv_fn fn, void *arg, char *why, size_t why_len)
{
    enum sb_err err = SB_E_IO;
    char reason[128] = "";
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    if (!path) {
        say(why, why_len, "no config file named");
        return SB_E_INVAL;
    }
    f = fopen(path, "rb");
    if (!f) {
        strerror_r(errno, reason, sizeof(reason));
        say(why, why_len, "%s: cannot open: %s", path, reason);
        return SB_E_IO;
    }
    /* Unbuffered: stdio's own buffer would keep a copy of the secrets that nobody wipes. */
    setvbuf(f, NULL, _IONBF, 0);
    text = malloc(SB_DOTENV_MAX_BYTES + 1);
    if (!text) {
        say(why, why_len, "%s: out of memory", path);
        err = SB_E_NOMEM;
        goto out;
    }
    len = fread(text, 1, SB_DOTENV_MAX_BYTES + 1, f);
    if (ferror(f)) {
        strerror_r(errno, reason, sizeof(reason));
        say(why, why_len, "%s: cannot read: %s", path, reason);
        goto out;
    }
    if (len > SB_DOTENV_MAX_BYTES) {
        say(why, why_len, "%s: larger than %zu bytes", path, (size_t)SB_DOTENV_MAX_BYTES);
        err = SB_E_CONFIG;
        goto out;
    }
    err = sb_dotenv_parse(text, len, path, fn, arg, why, why_len);
out:
    if (text) {
        wipe(text, len);
        free(text);
    }
    fclose(f);
    return err;
}
