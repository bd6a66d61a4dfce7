/* Request recording for GET /_sim/requests: every request to a Sinch endpoint is kept with its
 * raw body (parsed only when listed, so recording stays cheap), numbered by a sequence that
 * never restarts. A ring of at most --record-max entries: the oldest are forgotten first.
 * Also the counters of GET /_sim/stats. Thread: the loop. */
#ifndef SIM_RECORD_H
#define SIM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim_faults.h"
#include "sim_ids.h"

enum sim_auth_kind {
    SIM_AUTH_NONE,
    SIM_AUTH_BEARER,
    SIM_AUTH_BASIC,
};

/* One request as it is recorded. */
struct sim_record {
    uint64_t seq;
    int64_t time_ms; /* epoch ms when it had fully arrived */
    enum sim_endpoint endpoint;
    enum sim_auth_kind auth;
    int status; /* the status answered, 0 for a dropped connection */
    char method[8];
    char *path; /* owned */
    char *body; /* owned, NUL-terminated; NULL when the request had none */
    size_t body_len;
    char message_id[SIM_ULID_LEN + 1]; /* "" unless a send was accepted */
};

/* The counters of GET /_sim/stats; zeroed by DELETE /_sim/requests. */
struct sim_stats {
    uint64_t requests; /* requests to Sinch endpoints, whatever the answer */
    uint64_t sends_accepted;
    uint64_t sends_rejected; /* messages:send answered 4xx by the checks (not by a fault) */
    uint64_t token_requests;
    uint64_t tokens_issued;
    uint64_t faults_applied;
    uint64_t max_sends_in_one_second; /* messages:send requests (any outcome), per wall second */
    int64_t cur_second;
    uint64_t cur_second_sends;
};

struct sim_records;

/* Returns a new recorder keeping at most `max` requests, or NULL when out of memory. */
struct sim_records *sim_records_new(size_t max);
void sim_records_free(struct sim_records *r); /* accepts NULL */

/* Stores `rec`, giving it the next seq. Takes ownership of rec->path and rec->body (and sets
 * them to NULL) whether or not it succeeds. Returns the seq, 0 when out of memory. */
uint64_t sim_records_add(struct sim_records *r, struct sim_record *rec);

/* Returns a new {"requests":[...], "next": N} with up to `limit` requests of seq > since. */
json_t *sim_records_list(const struct sim_records *r, uint64_t since, size_t limit);

/* Forgets every request; the sequence goes on from where it was. */
void sim_records_clear(struct sim_records *r);

/* Counts one messages:send request towards max_sends_in_one_second. */
void sim_stats_count_send(struct sim_stats *st, int64_t now_ms);
/* Returns a new JSON object with the counters. */
json_t *sim_stats_json(const struct sim_stats *st);

#endif
