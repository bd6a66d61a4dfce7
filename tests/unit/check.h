/* The unit tests' few assertions. Each test program counts its checks and ends with
 * "N passed, N failed" on a line of its own; it exits 1 when anything failed. */
#ifndef SB_TESTS_CHECK_H
#define SB_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed;
static int check_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* Like CHECK, with a printf-style note that says which table row failed. */
#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Functions, not expressions in the macro: cppcheck took CHECK_STR(s, "x") for a literal
 * compared with NULL. */
static inline int check_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static inline const char *check_shown(const char *s)
{
    return s ? s : "(null)";
}

#define CHECK_STR(a, b)                                                                            \
    CHECKF(check_streq((a), (b)), "\"%s\" != \"%s\"", check_shown(a), check_shown(b))

static inline int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
