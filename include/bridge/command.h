/* Send commands: an MQTT payload (P/send or P/send/<recipient>) parsed and validated into a
 * struct sb_command, every form of PRODUCT.md "The send command". Pure: no I/O, no clock.
 * Thread: any (reads only the immutable config). */
#ifndef SB_BRIDGE_COMMAND_H
#define SB_BRIDGE_COMMAND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "bridge/config.h"
#include "bridge/err.h"

#define SB_COMMAND_MAX_BYTES ((size_t)64 * 1024) /* PRODUCT.md: larger is invalid_command */
#define SB_COMMAND_ID_MAX    64

enum sb_content_kind {
    SB_CONTENT_TEXT,     /* content: JSON string */
    SB_CONTENT_MEDIA,    /* content: {"url", "caption"?} */
    SB_CONTENT_TEMPLATE, /* content: {"id", "language"?, "version"?, "params"?} */
    SB_CONTENT_CHOICE,   /* content: {"text", "options": [string...]} */
    SB_CONTENT_LOCATION, /* content: {"lat", "lon", "title"?, "label"?} */
    SB_CONTENT_MESSAGE,  /* content: a raw Conversation API AppMessage object */
};

struct sb_command {
    char id[SB_COMMAND_ID_MAX + 1]; /* the command's id, or the generated one; "" when unknown */
    char *to;                       /* E.164 with '+'; NULL when contact_id is used */
    char *contact_id;               /* Sinch contact id, or NULL */
    char *alias;                    /* the alias the command named (topic or "to"), or NULL */
    json_t *channels;               /* array of upper-case channel names, at least one */
    enum sb_content_kind kind;
    json_t *content;           /* the content field's value (new reference owned here) */
    json_t *fallback_template; /* a template object like content of SB_CONTENT_TEMPLATE, or NULL */
    long ttl;                  /* seconds, 0 when not given */
    char *metadata;            /* or NULL */
    char *dedupe_key;          /* or NULL */
    long dedupe_window;        /* seconds; 3600 when a key is given without a window */
};

struct sb_command_error {
    const char *code; /* PRODUCT.md's code: "invalid_command", "invalid_recipient", "not_allowed" */
    char message[256]; /* for humans: names the field and what is wrong */
};

/* Parses `payload` (len bytes, not NUL-terminated) that arrived on P/send (recipient NULL) or
 * on P/send/<recipient> (recipient is that topic level: E.164 digits or an alias).
 * `gen_id` is used as the id when the command has none.
 * On success returns SB_OK and fills *out (release with sb_command_clear()).
 * On failure returns SB_E_INVAL, fills *err, and leaves in *out what was learnt before the
 * failure: out->id is "" when the payload could not be parsed as a command at all, else the
 * command's (or the generated) id; out->to when it was valid. Call sb_command_clear() either way.
 */
enum sb_err sb_command_parse(const struct sb_config *cfg, const char *recipient,
                             const char *payload, size_t len, const char *gen_id,
                             struct sb_command *out, struct sb_command_error *err) SB_MUST_CHECK;

/* Releases what *cmd holds and zeroes it. Accepts a zeroed command. */
void sb_command_clear(struct sb_command *cmd);

/* The postback_data set on option `index` (0-based) of a choice command, so the tap names the
 * command: "<id>|<index>|<option text>". Returns a new string (free()), or NULL on ENOMEM. */
char *sb_command_postback(const char *id, size_t index, const char *option);

/* Whether `s` (len bytes) is valid UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF). */
bool sb_utf8_valid(const char *s, size_t len);

#endif
