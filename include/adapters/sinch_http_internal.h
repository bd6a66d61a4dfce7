/* Internal to the Sinch client: what sinch_http.c (the client thread) shares with sinch_check.c
 * (the blocking --check-config), so that both build their requests the same way: one answer
 * buffer, the headers read from an answer, and the easy-handle setup. Nothing else includes this.
 * Every function here touches only its arguments: Thread: any. */
#ifndef SB_ADAPTERS_SINCH_HTTP_INTERNAL_H
#define SB_ADAPTERS_SINCH_HTTP_INTERNAL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bridge/config.h"
#include "bridge/err.h"

#define SB_SINCH_HDR_VALUE_MAX 256

/* An answer's body, filled by the write callback sb_sinch_easy_common() installs. */
struct sb_sinch_buf {
    char *data; /* NUL-terminated when not NULL */
    size_t len;
    size_t cap;
    bool overflow; /* the answer went past BODY_MAX (sinch_http.c) */
};

/* The two headers an answer is read for; both "" when absent. */
struct sb_sinch_hdrs {
    char retry_after[SB_SINCH_HDR_VALUE_MAX]; /* facts 4.3 */
    char www_auth[SB_SINCH_HDR_VALUE_MAX];    /* facts 2.2: "expired" in it means refresh */
};

/* Milliseconds of clock `id` (CLOCK_REALTIME or CLOCK_MONOTONIC). */
int64_t sb_sinch_clock_ms(clockid_t id);

/* Overwrites the secret `p` and frees it. Accepts NULL. */
void sb_sinch_wipe_free(char *p);

/* Frees the data of `b` and empties it, ready for another answer. */
void sb_sinch_buf_reset(struct sb_sinch_buf *b);

/* CURLOPT_HEADERFUNCTION; its CURLOPT_HEADERDATA is a struct sb_sinch_hdrs. */
size_t sb_sinch_on_header(char *ptr, size_t size, size_t nmemb, void *userdata);

/* The options every request shares; the caller adds method, body and auth. `url`, `headers`,
 * `resp` and `errbuf` (CURL_ERROR_SIZE bytes) are borrowed and must outlive the transfer. */
void sb_sinch_easy_common(CURL *e, const struct sb_config *cfg, const char *url,
                          struct curl_slist *headers, struct sb_sinch_buf *resp, char *errbuf);

/* The key as HTTP basic credentials. */
void sb_sinch_easy_basic_auth(CURL *e, const struct sb_config *cfg);

/* Makes `e` the OAuth token request: a POST of the client_credentials grant with basic auth. */
void sb_sinch_easy_token_request(CURL *e, const struct sb_config *cfg);

/* Returns a new header list (Accept, Expect, Content-Type: `content_type` or none; free with
 * curl_slist_free_all()), or NULL when out of memory. */
struct curl_slist *sb_sinch_make_headers(const char *content_type);

/* SB_E_TIMEOUT for a curl timeout, else SB_E_NET. */
enum sb_err sb_sinch_curl_err(CURLcode rc);

/* Whether `cfg` has what any request needs: API URL, key, and the token URL under OAuth. */
bool sb_sinch_cfg_usable(const struct sb_config *cfg);

/* ---- blocking requests (sinch_check.c): --check-config and webhook registration ---- */

/* One blocking request on `e`: the token request when `token`, else `method` on `url` with the
 * JSON `body` (NULL: none), authorised with `bearer` or, when NULL, the key (basic). Returns the
 * curl code; the answer is in *resp and *hd, the status in *status. */
CURLcode sb_sinch_sync_request(CURL *e, const struct sb_config *cfg, const char *method,
                               const char *url, const char *body, bool token, const char *bearer,
                               struct sb_sinch_buf *resp, struct sb_sinch_hdrs *hd, char *errbuf,
                               long *status);

/* Fetches a token, blocking, retrying a 429 like the client. *token is new (wipe and free it
 * with sb_sinch_wipe_free()). On failure the reason is in why, never a secret. */
enum sb_err sb_sinch_sync_token(CURL *e, const struct sb_config *cfg, char **token, char *why,
                                size_t why_len);

/* The error code of an HTTP status: SB_E_AUTH, SB_E_NOTFOUND, SB_E_RATE, SB_E_SERVER or
 * SB_E_REJECTED. */
enum sb_err sb_sinch_status_err(long status);

#endif
