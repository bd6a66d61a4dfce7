/* Callback bodies a "user" or a channel would cause (fact 7): the inbound messages and the
 * canned payload of every other trigger that POST /_sim/inject asks for, plus the envelope and
 * channel identity the delivery reports (sim_reports.c) share. Pure functions of their inputs
 * (ids and clock come in through the context), so tests/unit/test_sim_callbacks.c runs them on
 * a table. Thread: whichever owns the `ids` passed in. */
#ifndef SIM_CALLBACKS_H
#define SIM_CALLBACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim_ids.h"
#include "sim_trigger.h"

#define SIM_INJECT_FROM    "15551234567" /* digits, no '+': as Sinch sends identities */
#define SIM_INJECT_CHANNEL "WHATSAPP"

/* How callback bodies are serialised: compact, and numbers with 15 significant digits, so a
 * latitude of 59.3293 goes out as 59.3293 and not as jansson's round-trip 59.329300000000003. */
#define SIM_CB_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* What every callback body needs besides its payload. */
struct sim_cb_context {
    const char *app_id;
    const char *project_id;
    int64_t now_ms;      /* the callback's accepted_time */
    struct sim_ids *ids; /* fresh message, event and contact ids; borrowed */
};

/* The callback an inject request asks for. */
struct sim_injected {
    enum sim_trigger trigger; /* SIM_TRIGGER_UNKNOWN for a raw body with no payload key */
    char *text;               /* owned: the body bytes to POST */
    json_t *json;             /* owned: the same body as JSON for the answer (a string when the
                               * raw body is not JSON) */
};

/* Builds the callback of an inject request (`req` borrowed; see tests/sim/README.md for its
 * fields). Unknown fields, and fields of another type, are refused: returns false with `why`
 * set. The delivery knobs ("duplicates", "signature") are allowed here and read by the caller. */
bool sim_callback_inject(json_t *req, const struct sim_cb_context *ctx, struct sim_injected *out,
                         char *why, size_t why_len);

/* Frees what `in` owns and zeroes it. */
void sim_injected_release(struct sim_injected *in);

/* {"channel", "identity", "app_id": ""}: a new object. */
json_t *sim_cb_identity(const char *channel, const char *identity);

/* A new envelope {app_id, accepted_time, [event_time,] project_id, <key>: payload,
 * [message_metadata, correlation_id]} that steals `payload`. event_time (a second before
 * accepted_time, without fraction, as channels give it) comes with `with_event_time`;
 * message_metadata ("") and correlation_id come when `correlation_id` is not NULL. */
json_t *sim_cb_envelope(const struct sim_cb_context *ctx, const char *key, json_t *payload,
                        bool with_event_time, const char *correlation_id);

#endif
