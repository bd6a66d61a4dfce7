/* The durable store: SQLite in WAL mode under BRIDGE_DATA_DIR. It holds every command from the
 * moment paho hands it over (before the broker gets its PUBACK) until its outcome is published,
 * then keeps a short history (message ids for delivery reports, the history request).
 *
 * Threads: sb_store_put_command() runs on paho's receive thread and commits before it returns;
 * everything else runs on the loop. One connection, guarded by the store's mutex; a thread of
 * the store's own copies the WAL into the database, so no commit waits for an fsync. The loop's
 * writes are staged in memory and applied by sb_store_flush() in one transaction, so a burst
 * of a thousand outcomes costs one commit; a loop turn's webhook events are stored by
 * sb_store_put_events() in one transaction, which takes the staged writes along. */
#ifndef SB_ADAPTERS_STORE_H
#define SB_ADAPTERS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/err.h"

struct sb_store;

enum sb_store_state {
    SB_STORE_PENDING = 0, /* received, not finished: to be (re)sent */
    SB_STORE_OUTCOME = 1, /* outcome decided and stored, its publish not yet acknowledged */
    SB_STORE_DONE = 2,    /* outcome published; kept as history */
};

/* One command row. In put_command the caller fills the inputs; rows handed to a load callback
 * are borrowed: valid during the call only. */
struct sb_store_command {
    int64_t seq;         /* row id, assigned by put_command; the order of arrival */
    int64_t received_ms; /* wall clock, ms since the epoch */
    const char *topic;   /* the MQTT topic it came on */
    const char *payload; /* the payload bytes, not NUL-terminated */
    size_t payload_len;
    const char *response_topic; /* MQTT 5 Response Topic, or NULL */
    const void *correlation;    /* MQTT 5 Correlation Data, or NULL */
    size_t correlation_len;
    const char *gen_id; /* the id to use when the payload has none (a UUID) */
    /* Filled on load only: */
    enum sb_store_state state;
    int attempts;              /* HTTP requests made so far */
    const char *outcome_topic; /* state OUTCOME: where the outcome goes */
    const char *outcome;       /* state OUTCOME: the outcome payload (JSON text) */
};

/* Opens (creating when needed) <dir>/sinch-bridge.db, migrating the schema. `dir` is created
 * when missing. One store a directory: <dir>/sinch-bridge.lock is flock()ed while it is open,
 * and a second open fails ("in use by another process"). On failure writes the reason into
 * `why`. */
enum sb_err sb_store_open(const char *dir, struct sb_store **out, char *why,
                          size_t why_len) SB_MUST_CHECK;
/* Flushes staged writes, closes. Accepts NULL. Thread: loop, after every other thread stopped. */
void sb_store_close(struct sb_store *st);

/* Inserts a command and commits before returning; sets *seq. Thread: any. */
enum sb_err sb_store_put_command(struct sb_store *st, const struct sb_store_command *cmd,
                                 int64_t *seq) SB_MUST_CHECK;

typedef void (*sb_store_command_fn)(void *arg, const struct sb_store_command *row);

/* Calls fn for up to `max` unfinished rows (PENDING or OUTCOME) with seq > after, in seq order.
 * Sets *through to the seq up to which it looked: pass it as the next call's `after`. It is the
 * last row's seq after a full load, and beyond it after a short one, which walked past finished
 * rows to the end of the table (so that the history is walked once, not at every load).
 * fn runs under the store's lock: it may stage writes (sb_store_stage_*) but must not call any
 * other store function (an error-checking mutex turns that into SB_E_BUG, not a deadlock).
 * Thread: loop. */
enum sb_err sb_store_load_unfinished(struct sb_store *st, int64_t after, size_t max,
                                     sb_store_command_fn fn, void *arg,
                                     int64_t *through) SB_MUST_CHECK;

/* Staged writes (Thread: loop). Strings are copied. Applied in order by sb_store_flush(). */
/* A request to Sinch is about to be made: attempts so far (this one included); `handed_ms` is
 * the time of the first request (0 keeps what the row has). cmd_id and recipient (E.164 with
 * '+', or a contact id) are recorded for the history and the per-recipient limit. */
void sb_store_stage_attempt(struct sb_store *st, int64_t seq, const char *cmd_id,
                            const char *recipient, int attempts, int64_t handed_ms);
/* The outcome is decided: the row moves to OUTCOME with what history needs. Any of the strings
 * may be NULL. */
void sb_store_stage_outcome(struct sb_store *st, int64_t seq, const char *cmd_id,
                            const char *recipient, const char *channel, const char *message_id,
                            const char *status, int attempts, const char *outcome_topic,
                            const char *outcome);
/* The outcome's publish was acknowledged: the row moves to DONE. */
void sb_store_stage_done(struct sb_store *st, int64_t seq, int64_t now_ms);
/* Applies every staged write in one transaction. On failure the staged writes are kept and
 * tried again by the next flush. Thread: loop. */
enum sb_err sb_store_flush(struct sb_store *st) SB_MUST_CHECK;
/* Number of staged writes not yet flushed. Thread: loop. */
size_t sb_store_staged(const struct sb_store *st);

/* "Send once until cleared": claims `key` for the command `seq` until now + window. Sets
 * *duplicate when another command holds an unexpired claim on the key; a claim already held by
 * the same seq (a restart re-processing it) is not a duplicate. Commits at once. Thread: loop. */
enum sb_err sb_store_dedupe_claim(struct sb_store *st, const char *key, int64_t seq, int64_t now_ms,
                                  int64_t window_ms, bool *duplicate) SB_MUST_CHECK;

/* Deletes history: DONE rows finished before `before_ms` and delivery statuses (issue 3) not
 * updated since `before_ms`. Deletes what expired by `now_ms` (the wall clock): dedupe claims
 * and webhook event keys whose until_ms <= now_ms; a key's own keep_until_ms governs how long
 * it deduplicates (promise 2), not the history period. Inbox rows and contacts are never
 * pruned. Thread: loop. */
enum sb_err sb_store_prune(struct sb_store *st, int64_t before_ms, int64_t now_ms) SB_MUST_CHECK;

/* Number of unfinished rows (PENDING + OUTCOME). Thread: any. */
enum sb_err sb_store_depth(struct sb_store *st, int64_t *depth) SB_MUST_CHECK;

/* Times (ms) at which commands to `recipient` were first handed to Sinch since `since_ms`,
 * counted: for BRIDGE_RECIPIENT_LIMIT after a restart. Thread: loop. */
enum sb_err sb_store_count_handed(struct sb_store *st, const char *recipient, int64_t since_ms,
                                  int64_t *n) SB_MUST_CHECK;

/* The command id and recipient of a Sinch message id, for delivery reports (issue 3).
 * *cmd_id and *recipient are new strings (free()), or NULL when unknown. Thread: loop. */
enum sb_err sb_store_lookup_message(struct sb_store *st, const char *message_id, char **cmd_id,
                                    char **recipient) SB_MUST_CHECK;

/* ---- Inbound (issue 3): webhook events stored before their 200, published from the inbox ---- */

enum sb_store_event_result {
    SB_STORE_EVENT_STORED,    /* new: in the inbox, to be published */
    SB_STORE_EVENT_DUPLICATE, /* its key was seen before: nothing stored, nothing to publish */
    SB_STORE_EVENT_STALE,     /* a delivery report at or below its message's stored rank: the
                               * key is kept (a redelivery stays a duplicate), not published */
};

/* One verified, normalised webhook event to keep. The caller fills the inputs, whose strings
 * are borrowed for the call; sb_store_put_events() sets result and seq. */
struct sb_store_event {
    const char *dedupe_key; /* the event's key (facts section 9); kept until keep_until_ms */
    int64_t keep_until_ms;  /* at least 24 h from now (PRODUCT.md promise 2) */
    const char *topic;      /* the full topic to publish on */
    const char *payload;    /* the JSON text to publish */
    const char *message_id; /* delivery reports: Sinch's message id, else NULL */
    const char *channel;    /* delivery reports: the channel, else NULL */
    int rank;               /* delivery reports: sb_delivery_rank() of the status, else 0 */
    const char *status;     /* delivery reports: the status name, else NULL */
    const char *contact; /* MESSAGE_INBOUND: the sender (BRIDGE_WINDOW_CHECK, history), else NULL */
    int64_t received_ms; /* wall clock */
    /* Set by sb_store_put_events(): */
    enum sb_store_event_result result; /* what was decided */
    int64_t seq; /* STORED: its inbox row (for sb_store_stage_inbox_done()), else 0 */
};

/* Stores a batch of events in ONE transaction, committed before it returns (the webhooks'
 * 200s follow): for each, in order, the dedupe key, then (unless duplicate or stale) the inbox
 * row, the message's new rank and the contact's last inbound time. What an earlier event of
 * the batch wrote counts for the later ones, so the rules stay exact inside a batch: a second
 * copy of an event is DUPLICATE, and a DELIVERED after a READ of the same message is STALE.
 * A delivery report with rank 0 is always stored. Sets every event's result and seq.
 * On failure (a full disk) nothing of the batch is kept, not even a key, and every result is
 * DUPLICATE (nothing to publish): the listener answers 503 and Sinch delivers them again.
 * SB_E_INVAL, with nothing written, when an event lacks its key, topic or payload.
 * The writes staged by sb_store_stage_*() go in the same transaction (one commit a loop turn),
 * under a savepoint: when one of them fails they are undone and stay staged for the next
 * sb_store_flush(), and the events are committed all the same. Thread: loop. */
enum sb_err sb_store_put_events(struct sb_store *st, struct sb_store_event *evs,
                                size_t n) SB_MUST_CHECK;

/* sb_store_put_events() of the one event `ev` (borrowed; its result and seq are not set),
 * committed before it returns. Thread: loop. */
enum sb_err sb_store_put_event(struct sb_store *st, const struct sb_store_event *ev,
                               enum sb_store_event_result *result) SB_MUST_CHECK;

/* An inbox row; borrowed during the callback only (same rules as sb_store_load_unfinished). */
struct sb_store_inbox_row {
    int64_t seq;
    const char *topic;
    const char *payload;
};
typedef void (*sb_store_inbox_fn)(void *arg, const struct sb_store_inbox_row *row);

/* Calls fn for up to `max` inbox rows with seq > after, in seq order (the order they were
 * stored in, so per sender too). Thread: loop. */
enum sb_err sb_store_load_inbox(struct sb_store *st, int64_t after, size_t max,
                                sb_store_inbox_fn fn, void *arg) SB_MUST_CHECK;

/* Staged: the broker acknowledged inbox row `seq`: delete it (flushed with the others). */
void sb_store_stage_inbox_done(struct sb_store *st, int64_t seq);

/* Rows waiting in the inbox. Thread: any. */
enum sb_err sb_store_inbox_depth(struct sb_store *st, int64_t *depth) SB_MUST_CHECK;

/* The last time (wall ms) `contact` sent us a message, 0 when never (BRIDGE_WINDOW_CHECK).
 * Thread: loop. */
enum sb_err sb_store_last_inbound(struct sb_store *st, const char *contact,
                                  int64_t *when_ms) SB_MUST_CHECK;

/* ---- History (issue 4): the control plane's history request ---- */

/* One message to or from a contact; borrowed during the callback only. */
struct sb_store_history_row {
    bool inbound;        /* from the contact; else a command sent to it */
    int64_t at_ms;       /* received (inbound) or first handed to Sinch (outbound), wall ms */
    const char *payload; /* inbound: the published JSON; outbound: the command as received */
    size_t payload_len;
    const char *cmd_id;     /* outbound: the command's id */
    const char *channel;    /* outbound: the channel it went out on, or NULL */
    const char *message_id; /* outbound: Sinch's message id, or NULL */
    const char *status;     /* outbound: the latest delivery status (DELIVERED, READ, ...), else
                             * the outcome (ACCEPTED or an error code), or NULL while unfinished */
};
typedef void (*sb_store_history_fn)(void *arg, const struct sb_store_history_row *row);

/* Calls fn for the last `limit` messages to and from `contact` (E.164 with '+', or a contact
 * id), newest first: commands handed to Sinch and inbound messages kept for the history
 * period. Thread: loop. */
enum sb_err sb_store_history(struct sb_store *st, const char *contact, int limit,
                             sb_store_history_fn fn, void *arg) SB_MUST_CHECK;

/* Commands Sinch accepted whose outcome was published since `since_ms` (wall ms), for the
 * "messages sent today" sensor. Thread: loop. */
enum sb_err sb_store_count_sent_since(struct sb_store *st, int64_t since_ms,
                                      int64_t *count) SB_MUST_CHECK;

#endif
