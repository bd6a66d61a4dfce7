/* Delivery reports (fact 7.4) for an accepted messages:send: what the send said (recipient,
 * channels, metadata, correlation id) kept in one small allocation, the sequence of statuses
 * the current delivery mode plays back, and the body of each. Building a plan is all
 * messages:send pays; the bodies are built on the delivery thread when each report is due.
 * Pure functions. Thread: any. */
#ifndef SIM_REPORTS_H
#define SIM_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim_callbacks.h"
#include "sim_ids.h"

#define SIM_CHANNEL_NAME_MAX 32

enum sim_report_mode {
    SIM_REPORTS_NORMAL, /* QUEUED_ON_CHANNEL, DELIVERED, READ */
    SIM_REPORTS_FAILED, /* QUEUED_ON_CHANNEL, FAILED (or SWITCHING_CHANNEL and on) */
    SIM_REPORTS_NONE,   /* no reports */
};

/* Set by POST /_sim/delivery-mode; applies to sends from then on. Thread: the loop. */
struct sim_delivery_mode {
    enum sim_report_mode mode;
    char *reason;                         /* owned JSON object text; NULL: the default */
    char switch_to[SIM_CHANNEL_NAME_MAX]; /* "" for none */
};

/* What the reports of one send need; every string points into the same allocation. */
struct sim_report_plan {
    char message_id[SIM_ULID_LEN + 1];
    bool failed;
    const char *channel;        /* the first channel tried */
    const char *identity;       /* the recipient there, as sent; "" for a contact_id */
    const char *contact_id;     /* "" unless the recipient was a contact_id */
    const char *next_channel;   /* where a failure switches to; NULL for none */
    const char *next_identity;  /* the recipient there */
    const char *metadata;       /* the send's message_metadata, "" when absent */
    const char *correlation_id; /* the send's correlation_id, "" when absent */
    const char *reason;         /* JSON object text for FAILED/SWITCHING_CHANNEL; NULL: default */
};

/* One report of a plan. */
struct sim_report_step {
    const char *status;   /* "QUEUED_ON_CHANNEL" ... */
    const char *channel;  /* borrowed from the plan */
    const char *identity; /* borrowed from the plan */
    bool with_reason;
};

/* Returns a new plan for the accepted send `body` (borrowed, already validated) that got
 * `message_id`, under `mode`; `default_channel` is used when the send names no channel (a
 * contact_id recipient without channel_priority_order). NULL when out of memory. Free with
 * free(). */
struct sim_report_plan *sim_report_plan_new(json_t *body, const char *message_id,
                                            const struct sim_delivery_mode *mode,
                                            const char *default_channel);

/* The report number `step` (0 first) of the plan; false when the plan has no more. */
bool sim_report_step(const struct sim_report_plan *p, unsigned step, struct sim_report_step *out);

/* A new MESSAGE_DELIVERY callback body for report `step`, or NULL when there is no such step
 * or memory ran out. */
json_t *sim_report_body(const struct sim_report_plan *p, unsigned step,
                        const struct sim_cb_context *ctx);

#endif
