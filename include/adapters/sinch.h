/* The Sinch HTTP client: libcurl's multi interface on a thread of its own, many requests in
 * flight over kept-alive connections (at most BRIDGE_SINCH_CONNECTIONS), OAuth2 tokens (fetched,
 * cached, refreshed 60 s before expiry, one fetch shared by every waiting request, refresh-and-
 * retry once on a 401 whose WWW-Authenticate says "expired", token endpoint 429 backed off) or
 * basic auth. It knows HTTP and auth, not commands: results go back raw to the caller's
 * callback, which posts them to the loop. */
#ifndef SB_ADAPTERS_SINCH_H
#define SB_ADAPTERS_SINCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/config.h"
#include "bridge/err.h"

struct sb_sinch;

struct sb_sinch_result {
    uint64_t tag;    /* the caller's tag from sb_sinch_submit() */
    enum sb_err err; /* SB_OK when an HTTP answer came, whatever its status;
                      * SB_E_NET / SB_E_TIMEOUT when none came;
                      * SB_E_AUTH when no token could be had (token endpoint said 4xx);
                      * SB_E_RATE / SB_E_SERVER / SB_E_NET when the token endpoint kept
                      * failing that way */
    long status;     /* HTTP status of the last request, 0 when none */
    char *body;      /* the answer's body, NUL-terminated (owned by the result), or NULL */
    size_t body_len;
    long retry_after_ms; /* Retry-After of the answer (seconds or HTTP-date), -1 when absent */
    int requests;        /* requests made to the API for this job: 2 after a refresh-and-retry */
    double seconds;      /* duration of the last request */
    bool maybe_sent;     /* false when the request surely never reached Sinch (connect failed) */
};

/* Thread: the Sinch thread. Takes ownership of `res` (free with sb_sinch_result_free()). Must
 * return quickly: post to the loop and return. */
typedef void (*sb_sinch_done_fn)(void *arg, struct sb_sinch_result *res);

/* Starts the client thread. `cfg` is borrowed and must outlive the client. */
enum sb_err sb_sinch_new(const struct sb_config *cfg, sb_sinch_done_fn done, void *arg,
                         struct sb_sinch **out) SB_MUST_CHECK;

/* Queues a request: `method` ("GET", "POST", "PATCH"), `path` below SINCH_API_URL (e.g.
 * "/v1/projects/p/messages:send"), `body` JSON or NULL; takes ownership of body (free()).
 * Thread: any. Every submitted job ends in exactly one call of `done`, except when the client
 * is freed first. */
enum sb_err sb_sinch_submit(struct sb_sinch *s, uint64_t tag, const char *method, const char *path,
                            char *body) SB_MUST_CHECK;

/* Stops the thread and frees; jobs not finished are dropped without a callback (they live in
 * the store and resume after a restart). Accepts NULL. Thread: not the Sinch thread. */
void sb_sinch_free(struct sb_sinch *s);

void sb_sinch_result_free(struct sb_sinch_result *res);

/* What health and metrics report. Thread: any. */
struct sb_sinch_stats {
    bool token_valid;  /* OAuth: a token is cached and not within 60 s of expiry */
    long last_status;  /* status of the last API answer, 0 before any */
    uint64_t requests; /* API requests made */
    uint64_t token_fetches;
};
void sb_sinch_stats(struct sb_sinch *s, struct sb_sinch_stats *out);

/* For --check-config, blocking: fetches a token (OAuth) and reads the app
 * (GET /v1/projects/{project}/apps/{app}), which proves credentials, project, app and region.
 * Returns SB_OK, or an error with the reason in `why` (a wrong region answers 404). Never puts a
 * secret in `why`. Thread: any, with no client running. */
enum sb_err sb_sinch_check(const struct sb_config *cfg, char *why, size_t why_len) SB_MUST_CHECK;

/* BRIDGE_REGISTER_WEBHOOK: makes sure the app has a webhook whose target is `target`, with the
 * triggers the bridge handles and SINCH_WEBHOOK_SECRET as its secret: updates the webhook with
 * that target when there is one, creates it when there is none (facts 6.2: a target may exist
 * once per app), so a restart never duplicates it. Blocking. On failure the reason is in why,
 * never a secret. Thread: any, with no client running. */
enum sb_err sb_sinch_register_webhook(const struct sb_config *cfg, const char *target, char *why,
                                      size_t why_len) SB_MUST_CHECK;

#endif
