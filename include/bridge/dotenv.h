/* The dotenv parser behind --config: `KEY=value` lines, `#` comments, blank lines, an optional
 * `export ` prefix, values bare or in single or double quotes. Called by config.c only; it knows
 * nothing of the keys. Thread: any (no global state). Its messages never quote a line's text,
 * since the line may hold a secret. */
#ifndef SB_BRIDGE_DOTENV_H
#define SB_BRIDGE_DOTENV_H

#include <stddef.h>

#include "bridge/err.h"

#define SB_DOTENV_MAX_BYTES                                                                        \
    ((size_t)1024 * 1024) /* a config file is small; refuse anything larger */

/* Called once for each KEY=value line, in file order. `key` and `value` are borrowed (the value
 * already unquoted and unescaped; it may be a secret: do not log it); `line` is 1-based.
 * Return SB_OK to go on; anything else stops the parse and is returned as it is, so a callback
 * that fails writes its own message into `why`. */
typedef enum sb_err (*sb_dotenv_fn)(const char *key, const char *value, unsigned line, void *arg,
                                    char *why, size_t why_len);

/* Parses `len` bytes of `text` (need not be NUL-terminated); `name` (borrowed) is the file name
 * used in messages. A malformed line returns SB_E_CONFIG with "name:line: what is wrong" in
 * `why`. Returns SB_E_NOMEM when out of memory. Working copies are wiped before they are freed. */
enum sb_err sb_dotenv_parse(const char *text, size_t len, const char *name, sb_dotenv_fn fn,
                            void *arg, char *why, size_t why_len) SB_MUST_CHECK;

/* Reads the file at `path` (at most SB_DOTENV_MAX_BYTES) and parses it like sb_dotenv_parse().
 * A file that cannot be read returns SB_E_IO with the path and the reason in `why`. */
enum sb_err sb_dotenv_read(const char *path, sb_dotenv_fn fn, void *arg, char *why,
                           size_t why_len) SB_MUST_CHECK;

#endif
