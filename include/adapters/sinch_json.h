/* Conversation API bodies: a validated command to the messages:send request of facts section 3,
 * field for field, and Sinch's answers (accepted, error object) back. Pure: no I/O.
 * Thread: any. */
#ifndef SB_ADAPTERS_SINCH_JSON_H
#define SB_ADAPTERS_SINCH_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "bridge/command.h"
#include "bridge/err.h"

/* Builds the messages:send body for `cmd`, sent by `app_id`.
 * `ttl_left` is the seconds left before the command expires (0: send no ttl); it is sent as
 * "<n>s", at least "3s". With `use_fallback` the command's fallback_template replaces its
 * content (WhatsApp's 24-hour window is closed).
 * Returns SB_OK and a new compact JSON string in *body (free()). */
enum sb_err sb_sinch_json_send(const struct sb_command *cmd, const char *app_id, long ttl_left,
                               bool use_fallback, char **body) SB_MUST_CHECK;

/* Parses a 2xx answer of messages:send. On success *message_id and *accepted_time are new
 * strings (free()); accepted_time may be "" when Sinch sent none. SB_E_INVAL when the body is
 * not the expected shape. */
enum sb_err sb_sinch_json_accepted(const char *body, size_t len, char **message_id,
                                   char **accepted_time) SB_MUST_CHECK;

/* Sinch's inner error object ({"code", "message", "status", "details"}) of an error answer, as
 * a new reference, or NULL when the body has none (not JSON, a proxy's page). */
json_t *sb_sinch_json_error(const char *body, size_t len);

#endif
