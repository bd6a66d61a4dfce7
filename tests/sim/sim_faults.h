/* The fault queue: rules posted to /_sim/faults wait in a FIFO; each request of the kind a rule
 * matches consumes the first such rule (its count goes down, it leaves at 0, -1 never runs out;
 * a rule with for_ms also leaves once that long has passed since it was added) and is answered
 * as the rule says: another status, extra headers, a delay, an answer cut short, or a drop.
 * Times are the caller's clock in milliseconds (sim_now_ms(), the clock of the recorded
 * requests). Thread: the loop. */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SIM_HEADER_VALUE_MAX 512 /* longest Retry-After or WWW-Authenticate a rule may set */

/* Which Sinch endpoint a request went to; a rule matches one of them or all. */
enum sim_endpoint {
    SIM_EP_SEND,     /* POST /v1/projects/{project}/messages:send */
    SIM_EP_TOKEN,    /* POST /oauth2/token */
    SIM_EP_APP,      /* GET /v1/projects/{project}/apps/{app} */
    SIM_EP_OTHER,    /* anything else that is not /_sim/... */
    SIM_EP_WEBHOOKS, /* the webhook management API: .../webhooks, .../apps/{app}/webhooks */
};

/* What a consumed rule asks for; the strings are copies. */
struct sim_fault_hit {
    int status;    /* answer this instead; 0: answer normally */
    long delay_ms; /* answer (or drop) after this long */
    bool drop;     /* close the connection without an answer */
    bool partial;  /* send the headers and half the body, then close (libcurl retries a request
                    * on a reused connection that closes silently, but never a half answer) */
    char retry_after[SIM_HEADER_VALUE_MAX];      /* Retry-After value, "" for none */
    char www_authenticate[SIM_HEADER_VALUE_MAX]; /* WWW-Authenticate value, "" for none */
    char *body;        /* the body to send (owned; free() it), NULL for the default */
    bool body_is_json; /* false for a "raw_body" sent as text/plain */
};

struct sim_faults;

/* Returns a new, empty queue, or NULL when out of memory; free with sim_faults_free(). */
struct sim_faults *sim_faults_new(void);
void sim_faults_free(struct sim_faults *q); /* accepts NULL */

/* Appends the rules of a {"rules":[...]} request (`req` borrowed), added at `now_ms`. All are
 * checked first: on a bad rule nothing is queued, false comes back and `why` says what is wrong.
 * On success the number queued goes to *queued. */
bool sim_faults_add(struct sim_faults *q, json_t *req, int64_t now_ms, size_t *queued, char *why,
                    size_t why_len);

/* Drops the rules whose for_ms has run out by `now_ms`, then consumes the first rule matching
 * `ep` into `hit`. Returns false when none matches. */
bool sim_faults_take(struct sim_faults *q, enum sim_endpoint ep, int64_t now_ms,
                     struct sim_fault_hit *hit);

void sim_faults_clear(struct sim_faults *q);

const char *sim_endpoint_name(enum sim_endpoint ep);

#endif
