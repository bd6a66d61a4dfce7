/* The outcome payloads of PRODUCT.md "Outcomes": what P/sent and P/error carry (and a
 * command's MQTT 5 Response Topic). Pure: builds JSON text, nothing else. Thread: any. */
#ifndef SB_BRIDGE_OUTCOME_H
#define SB_BRIDGE_OUTCOME_H

#include <jansson.h>
#include <stddef.h>

#define SB_EXCERPT_BYTES 256 /* PRODUCT.md: errors without an id carry this much of the payload */

struct sb_outcome_sent {
    const char *id;
    const char *message_id;    /* Sinch's */
    const char *to;            /* E.164 with '+', or NULL */
    const char *contact_id;    /* or NULL */
    const char *alias;         /* the alias the command named, or NULL */
    const char *channel;       /* the first channel of the priority list */
    const char *accepted_time; /* Sinch's, or "" */
    int attempts;
};

struct sb_outcome_error {
    const char *id;         /* NULL when the payload could not be parsed: "id": null */
    const char *to;         /* or NULL */
    const char *contact_id; /* or NULL */
    const char *alias;      /* or NULL */
    const char *code;       /* PRODUCT.md's error code */
    const char *message;    /* for humans */
    long http_status;       /* 0: not sent */
    json_t *sinch;          /* Sinch's inner error object (borrowed), or NULL */
    int attempts;
    const char *topic;   /* with id NULL: the topic it came on */
    const char *payload; /* with id NULL: the payload, of which an excerpt is kept */
    size_t payload_len;
};

/* Each returns a new compact JSON string (free()), or NULL on ENOMEM. */
char *sb_outcome_sent_json(const struct sb_outcome_sent *s);
char *sb_outcome_error_json(const struct sb_outcome_error *e);

/* The first `max` bytes of `s` as valid UTF-8: each invalid or cut sequence becomes U+FFFD.
 * Returns a new NUL-terminated string (free()), or NULL on ENOMEM. */
char *sb_utf8_excerpt(const char *s, size_t len, size_t max);

#endif
