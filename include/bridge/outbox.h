/* The outbox: every command from the store to exactly one outcome. It loads unfinished commands
 * from the store in a bounded window (the queue lives in the store, not in memory), validates
 * them, paces sends with the token bucket, retries 5xx/429/network errors with backoff and
 * jitter until ttl or BRIDGE_MAX_AGE, and publishes the outcome on P/sent or P/error (and the
 * command's Response Topic), marking the command done only when the broker acknowledged it.
 * Thread: loop, for every function. */
#ifndef SB_BRIDGE_OUTBOX_H
#define SB_BRIDGE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/store.h"
#include "bridge/config.h"
#include "bridge/err.h"
#include "bridge/loop.h"

struct sb_outbox;

/* The two outbound sides, a seam so tests can record what would go out. */
struct sb_outbox_io {
    /* Hands a messages:send body to Sinch; the answer comes back through sb_outbox_on_result()
     * with the same tag. Steals body. */
    enum sb_err (*send)(void *ctx, uint64_t tag, char *body);
    /* Publishes at QoS 1; the broker's answer comes back through sb_outbox_on_published().
     * SB_E_MQTT when not connected. */
    enum sb_err (*publish)(void *ctx, const char *topic, const char *payload, size_t len,
                           const void *correlation, size_t correlation_len, uint64_t tag);
    void *ctx;
};

/* What Sinch answered to one send (borrowed for the call). */
struct sb_outbox_result {
    uint64_t tag;
    enum sb_err err;  /* SB_OK when an HTTP answer came; see include/adapters/sinch.h */
    long status;      /* HTTP status */
    const char *body; /* may be NULL */
    size_t body_len;
    long retry_after_ms; /* -1 when absent */
    int requests;        /* HTTP requests made for it (2 after a refresh-and-retry) */
    double seconds;      /* how long the last request took */
};

/* PRODUCT.md's error codes, for the failure counters. */
#define SB_OUTBOX_ERROR_CODES                                                                      \
    X(invalid_command)                                                                             \
    X(invalid_recipient)                                                                           \
    X(not_allowed)                                                                                 \
    X(duplicate)                                                                                   \
    X(window_closed)                                                                               \
    X(rate_limited)                                                                                \
    X(sinch_rejected)                                                                              \
    X(auth_failed)                                                                                 \
    X(expired)

enum sb_outbox_error {
#define X(code) SB_OUTBOX_ERR_##code,
    SB_OUTBOX_ERROR_CODES
#undef X
        SB_OUTBOX_ERR_COUNT
};

/* Upper bounds (seconds) of the Sinch latency histogram's buckets; +Inf is implied. */
#define SB_OUTBOX_LATENCY_BUCKETS 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
#define SB_OUTBOX_LATENCY_N       11

struct sb_outbox_stats {
    uint64_t received;                       /* commands taken from the store for the first time */
    uint64_t sent;                           /* accepted by Sinch */
    uint64_t failed;                         /* ended on P/error */
    uint64_t retried;                        /* retries scheduled */
    uint64_t failed_by[SB_OUTBOX_ERR_COUNT]; /* ended on P/error, by code */
    uint64_t latency[SB_OUTBOX_LATENCY_N + 1]; /* Sinch answers by bucket (the last: +Inf) */
    double latency_sum;                        /* seconds, over every answer */
    uint64_t latency_count;
    int last_error;        /* enum sb_outbox_error of the last failure, -1 before any */
    int64_t last_error_ms; /* its wall time */
    size_t active;         /* commands in memory */
    size_t in_flight;      /* requests to Sinch under way */
};

/* cfg, loop, store are borrowed and must outlive the outbox; io is copied. */
enum sb_err sb_outbox_new(const struct sb_config *cfg, struct sb_loop *loop, struct sb_store *store,
                          const struct sb_outbox_io *io, struct sb_outbox **out) SB_MUST_CHECK;
/* Frees every command in memory (they stay in the store). Accepts NULL. */
void sb_outbox_free(struct sb_outbox *ob);

/* New commands are in the store: load what the window allows. */
void sb_outbox_kick(struct sb_outbox *ob);
void sb_outbox_on_result(struct sb_outbox *ob, const struct sb_outbox_result *res);
void sb_outbox_on_published(struct sb_outbox *ob, uint64_t tag, bool ok);
void sb_outbox_on_mqtt(struct sb_outbox *ob, bool up);

/* SIGHUP changed the configuration in place: take the new rate limit (the other settings are
 * read where they are used). */
void sb_outbox_reconfigure(struct sb_outbox *ob);

/* Stops handing commands to Sinch; calls done(arg) once no request is in flight (at once when
 * none is). What is not finished stays in the store for the next start. */
void sb_outbox_drain(struct sb_outbox *ob, sb_loop_fn done, void *arg);

void sb_outbox_stats(const struct sb_outbox *ob, struct sb_outbox_stats *out);

/* The topic router: the recipient level of a command topic, given `send_prefix` ("P/send").
 * Returns NULL for P/send itself and a pointer into `topic` (borrowed) for P/send/<r>; sets *ok
 * to false for a topic that is neither (it cannot come from our subscriptions). Pure, so
 * Thread: any. Exported rather than static only so that tests/fuzz/fuzz_topic.c can reach it. */
const char *sb_outbox_topic_recipient(const char *send_prefix, const char *topic, bool *ok);

/* The name of an error code ("invalid_command", ...). */
const char *sb_outbox_error_name(enum sb_outbox_error e);

#endif
