/* The pure half of the Sinch client's OAuth handling (facts section 2): reading a token answer
 * and the JWT's exp, deciding whether a cached token may still be used, the token endpoint's 429
 * backoff and Retry-After. No I/O, no clock: every time is passed in, so the rules are tested
 * with a table and a fake clock (tests/unit/test_sinch_token.c). Used by sinch_http.c.
 * Thread: any. */
#ifndef SB_ADAPTERS_SINCH_TOKEN_H
#define SB_ADAPTERS_SINCH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/err.h"

/* Refresh this long before the token expires (facts 2.2, the Node SDK's rule). */
#define SB_SINCH_TOKEN_MARGIN_MS 60000
/* The token endpoint's 429 is retried at most this many times (facts 2.2). */
#define SB_SINCH_TOKEN_MAX_RETRIES 3
/* Full jitter: a 429 without Retry-After waits a random time in [0, BASE * 4^attempt]. */
#define SB_SINCH_TOKEN_BACKOFF_BASE_MS 1000
/* With Retry-After, up to this much random time is added. */
#define SB_SINCH_TOKEN_RETRY_AFTER_JITTER_MS 250
/* A Retry-After longer than this (a day) is taken as this. */
#define SB_SINCH_RETRY_AFTER_MAX_MS 86400000L

/* Reads the numeric "exp" claim (seconds since the epoch) of a JWT: the middle of three
 * dot-separated base64url segments, decoded without checking the signature, as the Node SDK
 * does. `jwt` is borrowed. Returns false when it is not a JWT or has no positive numeric exp. */
bool sb_sinch_token_jwt_exp(const char *jwt, int64_t *exp_s);

/* When a token fetched at `fetched_ms` (wall clock, ms since the epoch) expires, in the same
 * clock: the JWT's exp when it has one that lies after fetched_ms, otherwise fetched_ms +
 * expires_in seconds. Returns -1 when neither gives an answer (no exp, expires_in <= 0). */
int64_t sb_sinch_token_expiry_ms(const char *jwt, long expires_in, int64_t fetched_ms);

/* Whether a token fetched at `fetched_ms` and expiring at `expires_ms` may be used at `now_ms`:
 * true while now < expires - margin, where the margin is SB_SINCH_TOKEN_MARGIN_MS, or half the
 * token's lifetime when that is shorter (so a token that lives under two minutes is still
 * used, rather than fetched again for every request). */
bool sb_sinch_token_valid(int64_t fetched_ms, int64_t expires_ms, int64_t now_ms);

/* The wait before retry number `attempt` (0, 1, 2) of a token request answered 429:
 * `retry_after_ms` plus up to SB_SINCH_TOKEN_RETRY_AFTER_JITTER_MS when the answer had a
 * Retry-After (>= 0), else full jitter in [0, BASE * 4^attempt]. `rnd` is a uniformly random
 * 64-bit number, the only source of randomness. */
long sb_sinch_token_backoff_ms(unsigned attempt, long retry_after_ms, uint64_t rnd);

/* Parses a Retry-After value (RFC 9110 10.2.3: delta-seconds, or an HTTP-date in any of its
 * three forms) into milliseconds from `now_ms` (wall clock). A date in the past gives 0; a value
 * beyond SB_SINCH_RETRY_AFTER_MAX_MS is capped. Returns -1 when `value` is NULL or not valid.
 * Also used for the API's answers. */
long sb_sinch_token_retry_after_ms(const char *value, int64_t now_ms);

/* Whether a WWW-Authenticate value says the token expired: it contains "expired", in any case
 * (facts 2.2: no SDK relies on more). NULL gives false. */
bool sb_sinch_token_says_expired(const char *www_authenticate);

/* Parses a 200 answer of the token endpoint (facts 2.1) fetched at `fetched_ms`. On success
 * returns SB_OK, a new string in *access_token (the caller frees it, after wiping it) and its
 * expiry in *expires_ms (see sb_sinch_token_expiry_ms()). SB_E_INVAL when the body is not JSON,
 * has no non-empty access_token, names a token_type other than bearer (in any case), or gives no
 * expiry. Never copies the token into anything else. */
enum sb_err sb_sinch_token_parse(const char *body, size_t len, int64_t fetched_ms,
                                 char **access_token, int64_t *expires_ms) SB_MUST_CHECK;

/* Writes a short printable description of an error answer into `out`: the OAuth
 * error_description (or error) of the token endpoint, or the "message" of the Conversation
 * API's error object (facts 4.1); "" when the body has neither. Control characters become '?'
 * and the text is cut at out_len - 1 bytes. */
void sb_sinch_token_error_text(const char *body, size_t len, char *out, size_t out_len);

#endif
