/* The delivery thread: POSTs callbacks to their targets with libcurl's multi interface, signs
 * each attempt (fact 8), retries non-2xx answers and connection errors after retry_ms, then
 * twice that, and so on (fact 9 leaves the schedule open; this is the doubling the SMS API
 * documents), up to max_attempts, and logs every attempt. It also plays back delivery reports:
 * a send's report plan waits here until each report is due, and is fanned out to the targets
 * of MESSAGE_DELIVERY at that moment. The loop hands work over through a mutex-guarded queue and
 * curl_multi_wakeup(), so it never waits on the network. Thread: the functions below run on
 * the loop; the deliverer's own thread does the rest. */
#ifndef SIM_DELIVER_H
#define SIM_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_blob.h"
#include "sim_cblog.h"
#include "sim_reports.h"
#include "sim_webhooks.h"

/* How an attempt is signed (when its target has a secret). */
enum sim_sig_mode {
    SIM_SIG_FRESH,  /* a new nonce and the current time on every attempt */
    SIM_SIG_BAD,    /* as FRESH, then one character of the signature changed */
    SIM_SIG_STALE,  /* correctly signed, but the timestamp is an hour old */
    SIM_SIG_NONE,   /* no signature headers at all */
    SIM_SIG_REPLAY, /* the fixed nonce and timestamp of the delivery, on every attempt */
};

struct sim_deliver_config {
    const char *app_id;     /* borrowed for the deliverer's life */
    const char *project_id; /* borrowed for the deliverer's life */
    long report_delay_ms;   /* before each report of a send */
    long retry_ms;          /* first retry after this; doubles each time */
    unsigned max_attempts;  /* per callback and target */
    bool verbose;           /* one line per attempt on stderr */
};

/* One callback to one target, as the loop hands it over. */
struct sim_delivery {
    struct sim_target target; /* stolen by sim_deliver_event() */
    char event_id[SIM_ULID_LEN + 1];
    enum sim_trigger trigger;
    struct sim_blob *body; /* borrowed: the deliverer takes its own reference */
    enum sim_sig_mode sig;
    long delay_ms;              /* the first attempt waits this long */
    char nonce[SIM_NONCE_MAX];  /* SIM_SIG_REPLAY: the nonce of every attempt */
    char timestamp[SIM_TS_MAX]; /* SIM_SIG_REPLAY: the timestamp of every attempt */
};

struct sim_deliver;

/* Starts the thread. `cfg` is copied; `reg` and `log` are borrowed and must outlive the
 * deliverer. Returns NULL when out of memory or when the thread cannot start. */
struct sim_deliver *sim_deliver_new(const struct sim_deliver_config *cfg, struct sim_webhooks *reg,
                                    struct sim_cblog *log);

/* Stops the thread (attempts in flight are abandoned) and frees every pending callback.
 * Accepts NULL. */
void sim_deliver_free(struct sim_deliver *d);

/* Queues one delivery. Takes ownership of dv->target (zeroing it) whether or not it succeeds;
 * false when out of memory. */
bool sim_deliver_event(struct sim_deliver *d, struct sim_delivery *dv);

/* Queues the reports of a send accepted at `accepted_ms`. Takes ownership of `plan` (freeing
 * it on failure); false when out of memory. */
bool sim_deliver_report(struct sim_deliver *d, struct sim_report_plan *plan, int64_t accepted_ms);

/* Drops every report and delivery queued so far, in flight or waiting for a retry. */
void sim_deliver_cancel(struct sim_deliver *d);

/* Reports, deliveries and retries not yet finished. */
size_t sim_deliver_pending(struct sim_deliver *d);

#endif
