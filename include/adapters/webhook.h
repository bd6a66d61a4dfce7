/* The HTTP listener (libwebsockets, a vhost on the loop's context): POST BRIDGE_WEBHOOK_PATH,
 * GET /healthz, /readyz and /metrics; 404 and 405 for the rest. It knows HTTP and its limits,
 * not Sinch: a request it accepts goes to the handlers, which fill in the answer.
 * Limits: a body over 1 MiB is answered 413 before it is read; a request without
 * Content-Length is answered 411 and the connection closed; headers are bounded; a slow or idle
 * connection is closed after a few seconds. The webhook handler may answer later (a deferred
 * answer, below), so that a turn's webhooks share one store commit; every other answer is
 * written at once. Thread: loop, for everything. */
#ifndef SB_ADAPTERS_WEBHOOK_H
#define SB_ADAPTERS_WEBHOOK_H

#include <stddef.h>

#include "bridge/config.h"
#include "bridge/err.h"
#include "bridge/loop.h"

#define SB_WEBHOOK_BODY_MAX ((size_t)1024 * 1024) /* PRODUCT.md: 413 over 1 MiB */

struct sb_webhook;

/* A webhook request whose answer the handler gives later, with sb_webhook_answer(). Opaque:
 * it outlives its connection when the client goes away first (the answer is then dropped). */
struct sb_webhook_pending;

/* ans->status of a handler that keeps rq->pending and answers later. */
#define SB_HTTP_PENDING 0

/* A webhook POST; everything borrowed for the call, except `pending` (see there). Header
 * values are NULL when absent. */
struct sb_webhook_request {
    const char *body; /* NUL-terminated after body_len bytes */
    size_t body_len;
    const char *content_type;
    const char *nonce;     /* x-sinch-webhook-signature-nonce */
    const char *timestamp; /* x-sinch-webhook-signature-timestamp */
    const char *signature; /* x-sinch-webhook-signature */
    const char *algorithm; /* x-sinch-webhook-signature-algorithm */
    /* For a deferred answer: a handler that sets ans->status to SB_HTTP_PENDING takes this
     * handle and must pass it to sb_webhook_answer() exactly once; with any other status it
     * leaves it alone. NULL when the listener had no memory for one: answer now. */
    struct sb_webhook_pending *pending;
};

/* What a handler answers. body is owned (free()) and may be NULL. */
struct sb_http_answer {
    int status;
    const char *content_type; /* static string; application/json when NULL */
    char *body;
};

struct sb_webhook_handlers {
    void (*webhook)(void *arg, const struct sb_webhook_request *rq, struct sb_http_answer *ans);
    void (*ready)(void *arg, struct sb_http_answer *ans);   /* GET /readyz */
    void (*metrics)(void *arg, struct sb_http_answer *ans); /* GET /metrics */
};

/* Starts listening on BRIDGE_LISTEN. cfg and loop are borrowed; handlers copied. */
enum sb_err sb_webhook_new(const struct sb_config *cfg, struct sb_loop *loop,
                           const struct sb_webhook_handlers *handlers, void *arg,
                           struct sb_webhook **out) SB_MUST_CHECK;
/* Stops listening and frees. Accepts NULL. Handles still held stay valid for
 * sb_webhook_answer() (which then drops the answer). */
void sb_webhook_free(struct sb_webhook *wh);

/* Answers a deferred request: `status` with `body` (borrowed: copied; NULL for none), written
 * as soon as the connection can take it. Releases the handle in every case: when the client
 * went away meanwhile, the answer is dropped. Accepts NULL. */
void sb_webhook_answer(struct sb_webhook_pending *p, int status, const char *body);

#endif
