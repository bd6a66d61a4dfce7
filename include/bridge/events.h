/* Sinch webhook events (facts sections 6.3, 7 and 9) to what the bridge publishes: the topic, the
 * normalised payload of PRODUCT.md "Inbound and delivery payloads" with Sinch's whole event under
 * "raw", the deduplication key, and what the status rule and the id lookup need. Pure: no I/O,
 * no clock. Thread: any. */
#ifndef SB_BRIDGE_EVENTS_H
#define SB_BRIDGE_EVENTS_H

#include <jansson.h>
#include <stddef.h>

#include "bridge/config.h"
#include "bridge/err.h"

enum sb_event_kind {
    SB_EVENT_INBOUND,  /* MESSAGE_INBOUND: P/inbound/<channel>/<sender> */
    SB_EVENT_DELIVERY, /* MESSAGE_DELIVERY: P/delivery/<channel>/<recipient> */
    SB_EVENT_OTHER,    /* every other trigger: P/event/<trigger> */
};

struct sb_event {
    enum sb_event_kind kind;
    char *trigger;    /* upper-case trigger name ("MESSAGE_INBOUND", ...), "UNKNOWN" when no
                       * payload key is known */
    char *topic;      /* below the prefix: "inbound/whatsapp/15551234567" (the alias when the
                       * number has one), "delivery/whatsapp/mom", "event/conversation_start" */
    json_t *payload;  /* the normalised payload, "raw" included (new reference owned here) */
    char *dedupe_key; /* facts section 9's key, prefixed with the trigger; never NULL */
    char *channel;    /* upper-case channel, or NULL */
    char *identity;   /* the contact: E.164 with '+' for phone channels, else Sinch's identity;
                       * NULL when the event names none */
    char *message_id; /* DELIVERY: Sinch's message id; INBOUND choice: the message tapped */
    char *status;     /* DELIVERY: the status */
    char *cmd_id;     /* DELIVERY and choice taps: the command id from the metadata, or NULL
                       * (the caller may find it in the store by message_id and set "id") */
};

/* Parses and normalises one callback body (len bytes). `body_sha256_hex` (64 hex characters)
 * is the key of triggers that carry no id of their own. On success fills *out (release with
 * sb_event_clear()). SB_E_INVAL when the body is not a JSON object (the listener answers 400),
 * with the reason in why; an object with no known payload key is not an error: trigger
 * "UNKNOWN", topic "event/unknown". */
enum sb_err sb_event_parse(const struct sb_config *cfg, const char *body, size_t len,
                           const char *body_sha256_hex, struct sb_event *out, char *why,
                           size_t why_len) SB_MUST_CHECK;

void sb_event_clear(struct sb_event *ev);

/* The place of a delivery status in its channel's order, for "never backwards": 1
 * QUEUED_ON_CHANNEL, 2 DELIVERED, 3 for the final READ, FAILED and SWITCHING_CHANNEL (the
 * next channel's reports have their own order); 0 for an unknown status, which is always
 * published. A report is published when its rank is above the stored one for its message id
 * and channel. */
int sb_delivery_rank(const char *status);

#endif
