/* The HTTP listener (libwebsockets, a vhost on the loop's context): POST BRIDGE_WEBHOOK_PATH,
 * GET /healthz, /readyz and /metrics; 404 and 405 for the rest. It knows HTTP and its limits,
 * not Sinch: a request it accepts goes to the handlers, which fill in the answer.
 * Limits: a body over 1 MiB is answered 413 before it is read; a request without
 * Content-Length is answered 411 and the connection closed; headers are bounded; a slow or idle
 * connection is closed after a few seconds. Thread: loop, for everything. */
#ifndef SB_ADAPTERS_WEBHOOK_H
#define SB_ADAPTERS_WEBHOOK_H

#include <stddef.h>

#include "bridge/config.h"
#include "bridge/err.h"
#include "bridge/loop.h"

#define SB_WEBHOOK_BODY_MAX (1024 * 1024) /* PRODUCT.md: 413 over 1 MiB */

struct sb_webhook;

/* A webhook POST; everything borrowed for the call. Header values are NULL when absent. */
struct sb_webhook_request {
    const char *body; /* NUL-terminated after body_len bytes */
    size_t body_len;
    const char *content_type;
    const char *nonce;     /* x-sinch-webhook-signature-nonce */
    const char *timestamp; /* x-sinch-webhook-signature-timestamp */
    const char *signature; /* x-sinch-webhook-signature */
    const char *algorithm; /* x-sinch-webhook-signature-algorithm */
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
/* Stops listening and frees. Accepts NULL. */
void sb_webhook_free(struct sb_webhook *wh);

#endif
