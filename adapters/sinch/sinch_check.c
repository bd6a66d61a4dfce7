/* The blocking side of the Sinch client, on a plain easy handle with no client thread running:
 * sb_sinch_check() for --check-config (a token fetch under OAuth and one GET of the app), and the
 * request and token helpers sinch_register.c uses too. Shares the request setup of sinch_http.c
 * through sinch_http_internal.h. Thread: main, before the loop. */
#include "adapters/sinch.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/sinch_http_internal.h"
#include "adapters/sinch_token.h"

/* A blocking request on `e`: the token request (token), or `method` on url with the JSON
 * `body` (or none), authorised with `bearer` or, without one, the key. Returns the curl code;
 * the answer is in *resp and hd. */
CURLcode sb_sinch_sync_request(CURL *e, const struct sb_config *cfg, const char *method,
                               const char *url, const char *body, bool token, const char *bearer,
                               struct sb_sinch_buf *resp, struct sb_sinch_hdrs *hd, char *errbuf,
                               long *status)
{
    struct curl_slist *headers = sb_sinch_make_headers(token  ? "application/x-www-form-urlencoded"
                                                       : body ? "application/json"
                                                              : NULL);
    CURLcode rc;

    errbuf[0] = '\0';
    if (!headers) {
        return CURLE_OUT_OF_MEMORY;
    }
    curl_easy_reset(e);
    sb_sinch_buf_reset(resp);
    hd->retry_after[0] = '\0';
    hd->www_auth[0] = '\0';
    sb_sinch_easy_common(e, cfg, url, headers, resp, errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sb_sinch_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)hd);
    if (token) {
        sb_sinch_easy_token_request(e, cfg);
    } else {
        if (body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        } else {
            curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        }
        if (bearer) {
            curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
            curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, bearer);
        } else {
            sb_sinch_easy_basic_auth(e, cfg);
        }
    }
    *status = 0;
    rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(headers);
    return rc;
}

enum sb_err sb_sinch_status_err(long status)
{
    if (status == 401 || status == 403) {
        return SB_E_AUTH;
    }
    if (status == 404) {
        return SB_E_NOTFOUND;
    }
    if (status == 429) {
        return SB_E_RATE;
    }
    if (status >= 500) {
        return SB_E_SERVER;
    }
    return SB_E_REJECTED;
}

/* Fetches a token, blocking, retrying a 429 as the client does. */
enum sb_err sb_sinch_sync_token(CURL *e, const struct sb_config *cfg, char **token, char *why,
                                size_t why_len)
{
    char errbuf[CURL_ERROR_SIZE];
    struct sb_sinch_hdrs hd;
    struct sb_sinch_buf resp = {0};
    char text[160];
    enum sb_err err;
    long status = 0;
    uint64_t rnd = (uint64_t)sb_sinch_clock_ms(CLOCK_MONOTONIC) * 0x9E3779B97F4A7C15ull;

    for (unsigned attempt = 0;; attempt++) {
        CURLcode rc = sb_sinch_sync_request(e, cfg, "POST", cfg->auth_url, NULL, true, NULL, &resp,
                                            &hd, errbuf, &status);
        if (rc != CURLE_OK) {
            snprintf(why, why_len, "token: %s (%s)", errbuf[0] ? errbuf : curl_easy_strerror(rc),
                     cfg->auth_url);
            err = rc == CURLE_OUT_OF_MEMORY ? SB_E_NOMEM : sb_sinch_curl_err(rc);
            goto out;
        }
        if (status != 429 || attempt >= SB_SINCH_TOKEN_MAX_RETRIES) {
            break;
        }
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        long delay = sb_sinch_token_backoff_ms(
            attempt,
            sb_sinch_token_retry_after_ms(hd.retry_after, sb_sinch_clock_ms(CLOCK_REALTIME)),
            rnd >> 11);
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (status >= 200 && status < 300) {
        int64_t expires;
        err = sb_sinch_token_parse(resp.data, resp.len, sb_sinch_clock_ms(CLOCK_REALTIME), token,
                                   &expires);
        if (err != SB_OK) {
            snprintf(why, why_len, "token: HTTP %ld from %s without a usable access_token", status,
                     cfg->auth_url);
            err = SB_E_AUTH;
        }
        goto out;
    }
    sb_sinch_token_error_text(resp.data, resp.len, text, sizeof(text));
    snprintf(why, why_len, "token: HTTP %ld from %s%s%s", status, cfg->auth_url,
             text[0] ? ": " : "", text);
    err = status == 429 ? SB_E_RATE : status >= 500 ? SB_E_SERVER : SB_E_AUTH;
out:
    free(resp.data);
    return err;
}

enum sb_err sb_sinch_check(const struct sb_config *cfg, char *why, size_t why_len)
{
    char errbuf[CURL_ERROR_SIZE];
    struct sb_sinch_hdrs hd;
    struct sb_sinch_buf resp = {0};
    char *token = NULL, *project = NULL, *app = NULL, *url = NULL;
    char text[160];
    enum sb_err err;
    CURL *e = NULL;
    long status = 0;
    CURLcode rc;

    if (why_len > 0) {
        why[0] = '\0';
    }
    if (!sb_sinch_cfg_usable(cfg) || !cfg->project_id || !cfg->app_id) {
        snprintf(why, why_len, "incomplete Sinch configuration");
        return SB_E_CONFIG;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(why, why_len, "libcurl failed to initialise");
        return SB_E_BUG;
    }
    err = SB_E_NOMEM;
    if (!(e = curl_easy_init())) {
        goto out;
    }
    if (cfg->auth == SB_AUTH_OAUTH) {
        err = sb_sinch_sync_token(e, cfg, &token, why, why_len);
        if (err != SB_OK) {
            goto out;
        }
    }
    err = SB_E_NOMEM;
    project = curl_easy_escape(e, cfg->project_id, 0);
    app = curl_easy_escape(e, cfg->app_id, 0);
    if (!project || !app) {
        goto out;
    }
    size_t url_len = strlen(cfg->api_url) + strlen(project) + strlen(app) + 32;
    if (!(url = malloc(url_len))) {
        goto out;
    }
    snprintf(url, url_len, "%s/v1/projects/%s/apps/%s", cfg->api_url, project, app);
    rc = sb_sinch_sync_request(e, cfg, "GET", url, NULL, false, token, &resp, &hd, errbuf, &status);
    if (rc != CURLE_OK) {
        snprintf(why, why_len, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        err = rc == CURLE_OUT_OF_MEMORY ? SB_E_NOMEM : sb_sinch_curl_err(rc);
        goto out;
    }
    if (status == 200) {
        err = SB_OK;
        goto out;
    }
    sb_sinch_token_error_text(resp.data, resp.len, text, sizeof(text));
    err = sb_sinch_status_err(status);
    if (status == 404) {
        snprintf(why, why_len,
                 "app or project not found - is SINCH_REGION the app's region? (HTTP 404 from "
                 "GET %s%s%s)",
                 url, text[0] ? ": " : "", text);
    } else if (status == 401 || status == 403) {
        snprintf(why, why_len,
                 "credentials refused: HTTP %ld from GET %s%s%s (check SINCH_KEY_ID, "
                 "SINCH_KEY_SECRET and SINCH_PROJECT_ID)",
                 status, url, text[0] ? ": " : "", text);
    } else {
        snprintf(why, why_len, "HTTP %ld from GET %s%s%s", status, url, text[0] ? ": " : "", text);
    }
out:
    if (err == SB_E_NOMEM && why_len > 0 && why[0] == '\0') {
        snprintf(why, why_len, "out of memory");
    }
    free(resp.data);
    free(url);
    curl_free(project);
    curl_free(app);
    sb_sinch_wipe_free(token);
    curl_easy_cleanup(e);
    curl_global_cleanup();
    return err;
}
