/* libFuzzer target: the dotenv parser behind --config, sb_dotenv_parse(). The input is the file.
 * Oracles, beyond "no crash, no leak, no undefined behaviour":
 *   - every pair has a key of [A-Za-z_][A-Za-z0-9_]* and comes with a line number that grows and
 *     stays within the file's lines;
 *   - a refusal says "<name>:<line>: " and then only one of dotenv.c's fixed problems, possibly
 *     after the key: the message never quotes the line's text, which may be a secret;
 *   - round trip: the pairs written back as KEY="value" (with \n \t \r \" \\ escaped) parse to
 *     exactly the same pairs. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/dotenv.h"
#include "fuzz.h"

#define MAX_PAIRS 256 /* the rest of a longer file is parsed, not remembered */
#define NAME      "fuzz.env"

struct pairs {
    size_t n;
    size_t seen;
    unsigned last_line;
    unsigned max_line;
    char *key[MAX_PAIRS];
    char *value[MAX_PAIRS];
};

/* dotenv.c's problems, word for word: anything else in a message is text from the file. */
static const char *const problems[] = {
    "expected KEY=value",
    "invalid character in the key",
    "unexpected text after the closing quote",
    "unterminated double quote",
    "unterminated single quote",
    "unknown escape in double quotes (use \\n, \\t, \\r, \\\" or \\\\)",
    "NUL byte in the line",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static bool key_ok(const char *k)
{
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    return k[0] && strchr(first, k[0]) &&
           k[strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789")] == '\0';
}

static enum sb_err on_pair(const char *key, const char *value, unsigned line, void *arg, char *why,
                           size_t why_len)
{
    struct pairs *p = arg;

    (void)why;
    (void)why_len;
    FUZZ_CHECK(key_ok(key), "key \"%s\"", key);
    FUZZ_CHECK(line > p->last_line && line <= p->max_line, "line %u after %u (of %u)", line,
               p->last_line, p->max_line);
    p->last_line = line;
    p->seen++;
    if (p->n < MAX_PAIRS) {
        p->key[p->n] = strdup(key);
        p->value[p->n] = strdup(value);
        FUZZ_CHECK(p->key[p->n] && p->value[p->n], "strdup");
        p->n++;
    }
    return SB_OK;
}

static void pairs_free(struct pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->key[i]);
        free(p->value[i]);
    }
}

static unsigned count_lines(const char *s, size_t len)
{
    unsigned n = 1;

    for (size_t i = 0; i < len; i++) {
        n += s[i] == '\n';
    }
    return n;
}

/* "fuzz.env:<line>: " then [<key>: ] then a known problem, and nothing else. A message that
 * filled the buffer was cut (a long key does it): then what is left need only begin that way. */
static void check_message(const char *why, size_t why_len)
{
    const char *p = why;
    bool cut = strlen(why) == why_len - 1;
    size_t n = strlen(NAME);
    size_t digits;

    FUZZ_CHECK(strncmp(p, NAME ":", n + 1) == 0, "message \"%s\"", why);
    p += n + 1;
    digits = strspn(p, "0123456789");
    FUZZ_CHECK(digits > 0 && strncmp(p + digits, ": ", 2) == 0, "message \"%s\"", why);
    p += digits + 2;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++) {
            if (cut ? strncmp(p, problems[i], strlen(p)) == 0 : strcmp(p, problems[i]) == 0) {
                return;
            }
        }
        /* Not a problem yet: a key and ": " may come first, once. */
        n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789");
        if (cut && pass == 0 && strlen(p + n) < 2 && strncmp(p + n, ": ", strlen(p + n)) == 0) {
            return; /* cut inside the key or its ": " */
        }
        FUZZ_CHECK(pass == 0 && n > 0 && strncmp(p + n, ": ", 2) == 0, "message \"%s\"", why);
        p += n + 2;
    }
}

/* The letter that follows the backslash when `c` is escaped in a double-quoted value ("\n" for a
 * newline, "\"" for a quote), 0 when `c` stands as it is. */
static char escape_letter(char c)
{
    switch (c) {
    case '\n':
        return 'n';
    case '\t':
        return 't';
    case '\r':
        return 'r';
    case '"':
    case '\\':
        return c;
    default:
        return 0;
    }
}

/* The pairs as a file that double-quotes every value. Returns a new string (free()). */
static char *write_back(const struct pairs *p, size_t *len)
{
    size_t cap = 1;
    char *out;
    char *w;

    for (size_t i = 0; i < p->n; i++) {
        cap += strlen(p->key[i]) + 4 + 2 * strlen(p->value[i]);
    }
    out = malloc(cap);
    FUZZ_CHECK(out != NULL, "malloc");
    w = out;
    for (size_t i = 0; i < p->n; i++) {
        size_t k = strlen(p->key[i]);
        memcpy(w, p->key[i], k);
        w += k;
        *w++ = '=';
        *w++ = '"';
        for (const char *v = p->value[i]; *v; v++) {
            char e = escape_letter(*v);
            if (e) {
                *w++ = '\\';
                *w++ = e;
            } else {
                *w++ = *v;
            }
        }
        *w++ = '"';
        *w++ = '\n';
    }
    *w = '\0';
    *len = (size_t)(w - out);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct pairs first = {.max_line = count_lines(text, size)};
    struct pairs second = {0};
    char why[256] = "";
    char *again;
    size_t again_len = 0;
    enum sb_err rc;

    rc = sb_dotenv_parse(text, size, NAME, on_pair, &first, why, sizeof(why));
    FUZZ_CHECK(rc == SB_OK || rc == SB_E_CONFIG, "rc %d", (int)rc);
    if (rc == SB_E_CONFIG) {
        check_message(why, sizeof(why));
    }
    /* Whatever was read before a bad line is what a fixed file would give: it round-trips too. */
    again = write_back(&first, &again_len);
    second.max_line = count_lines(again, again_len);
    rc = sb_dotenv_parse(again, again_len, NAME, on_pair, &second, why, sizeof(why));
    FUZZ_CHECK(rc == SB_OK, "the written-back file was refused: %s", why);
    FUZZ_CHECK(second.n == first.n, "%zu pairs, then %zu", first.n, second.n);
    for (size_t i = 0; i < first.n; i++) {
        FUZZ_CHECK(strcmp(first.key[i], second.key[i]) == 0 &&
                       strcmp(first.value[i], second.value[i]) == 0,
                   "pair %zu: %s=\"%s\", then %s=\"%s\"", i, first.key[i], first.value[i],
                   second.key[i], second.value[i]);
    }
    free(again);
    pairs_free(&first);
    pairs_free(&second);
    return 0;
}
