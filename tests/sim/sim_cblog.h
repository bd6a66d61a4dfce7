/* The attempt log of GET /_sim/callbacks: one entry per delivery attempt of a callback (its
 * event id, target, trigger, attempt number, the HTTP status or 0 for a connection error, and
 * the body), numbered by a sequence that never restarts. A ring of at most --record-max entries
 * that forgets the oldest first. The delivery thread adds, the loop lists and clears.
 * Thread: any (one mutex inside). */
#ifndef SIM_CBLOG_H
#define SIM_CBLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim_blob.h"
#include "sim_ids.h"
#include "sim_trigger.h"

#define SIM_NONCE_MAX 40 /* a nonce header value with its NUL */
#define SIM_TS_MAX    24 /* a timestamp header value with its NUL */

/* One attempt, as the deliverer reports it; everything is borrowed for the call. */
struct sim_cb_attempt {
    int64_t time_ms;     /* when the attempt started */
    int64_t duration_ms; /* until it ended */
    const char *event_id;
    const char *target;
    const char *webhook_id; /* "" for --webhook-url */
    enum sim_trigger trigger;
    unsigned attempt;      /* 1 for the first */
    int status;            /* the HTTP status, 0 when no answer came (connection error) */
    const char *error;     /* why there was no answer, "" otherwise */
    struct sim_blob *body; /* the log takes its own reference */
    const char *signature; /* "signed", "bad", "stale", "replay", "none" or "unsigned" */
    const char *nonce;     /* the signature headers sent, "" when none */
    const char *timestamp;
    bool final; /* no attempt follows: a 2xx, or the last one allowed */
};

struct sim_cblog;

/* Returns a new log keeping at most `max` attempts, or NULL when out of memory. */
struct sim_cblog *sim_cblog_new(size_t max);
void sim_cblog_free(struct sim_cblog *log); /* accepts NULL */

/* Stores a copy of `a`. Out of memory forgets it quietly (the log is a test aid). */
void sim_cblog_add(struct sim_cblog *log, const struct sim_cb_attempt *a);

/* Returns a new {"callbacks": [...], "next": N} with up to `limit` attempts of seq > since. */
json_t *sim_cblog_list(struct sim_cblog *log, uint64_t since, size_t limit);

/* Forgets every attempt; the sequence goes on. */
void sim_cblog_clear(struct sim_cblog *log);

#endif
