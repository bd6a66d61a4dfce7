/* The Sinch HTTP client (include/adapters/sinch.h): libcurl's multi interface on a thread of its
 * own. Any thread queues jobs with sb_sinch_submit(); the Sinch thread takes them, runs them over
 * kept-alive connections, keeps the OAuth token (facts section 2: cached, refreshed 60 s early,
 * one fetch for every waiting job, 429 backed off, refresh-and-retry once on "401 expired"), and
 * hands every job's result to the done callback; sinch_check.c holds the blocking variant for
 * --check-config. The functions of the section "the Sinch thread" run only on that thread. */
#include "adapters/sinch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "adapters/sinch_http_internal.h"
#include "adapters/sinch_token.h"
#include "bridge/log.h"

#define MOD "sinch"
/* An answer larger than this is an error (STYLE: every buffer fed by the network has a cap). */
#define BODY_MAX           ((size_t)4 * 1024 * 1024)
#define CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_TIMEOUT_S  30L
/* curl_multi_poll() returns at least this often even when nothing happens (stop is also
 * signalled by curl_multi_wakeup(), so this is only a safety net). */
#define IDLE_POLL_MS  1000
#define EASY_POOL_MAX 256
#define USER_AGENT    "sinch-bridge/" SB_VERSION

enum job_kind {
    JOB_API,   /* a caller's request to the Conversation API */
    JOB_TOKEN, /* the one token fetch of the client */
};

struct job {
    struct job *next; /* in the incoming queue, the parked list or the active list */
    struct job *prev; /* in the active list only */
    enum job_kind kind;
    char method[8];
    char *url;        /* api_url + path, or auth_url */
    const char *path; /* points into url: what the logs show */
    char *body;       /* request body or NULL (owned) */
    size_t body_len;
    struct curl_slist *headers; /* Accept, Content-Type, Expect */
    CURL *easy;                 /* while in the multi handle */
    struct sb_sinch_buf resp;   /* the answer's body */
    struct sb_sinch_hdrs hd;    /* of the answer */
    char errbuf[CURL_ERROR_SIZE];
    uint64_t token_gen;          /* generation of the token the request carried */
    bool retried;                /* the one refresh-and-retry was used */
    struct sb_sinch_result *res; /* allocated at submit, so finishing cannot fail */
};

struct sb_sinch {
    const struct sb_config *cfg; /* borrowed, read-only */
    sb_sinch_done_fn done;
    void *done_arg;
    pthread_t thread;
    CURLM *multi;

    pthread_mutex_t lock;
    struct job *in_head;       /* {lock} submitted, not yet taken by the thread */
    struct job *in_tail;       /* {lock} */
    bool stop;                 /* {lock} */
    long st_last_status;       /* {lock} */
    uint64_t st_requests;      /* {lock} */
    uint64_t st_token_fetches; /* {lock} */
    int64_t st_tok_fetched_ms; /* {lock} 0 when no token */
    int64_t st_tok_expires_ms; /* {lock} */

    /* Owned by the Sinch thread (and by sb_sinch_free() after the join). */
    struct job *active; /* API jobs in the multi handle */
    struct job *parked; /* API jobs waiting for the token fetch */
    struct job *parked_tail;
    struct job *token_job;  /* the token fetch, when one is in the multi handle */
    char *token;            /* the access token (secret) or NULL */
    int64_t tok_fetched_ms; /* wall clock */
    int64_t tok_expires_ms;
    uint64_t token_gen;     /* incremented for every new token */
    bool token_busy;        /* a fetch (or its 429 wait) is under way: single flight */
    unsigned token_attempt; /* 429 retries used by the current fetch */
    int64_t token_retry_at; /* monotonic ms of the next 429 retry, 0 when none */
    uint64_t rnd;           /* splitmix64 state for the backoff's jitter */
    CURL **pool;            /* idle easy handles, reused */
    size_t n_pool;
    size_t pool_cap;
};

/* ---- small helpers (any thread) ---- */

int64_t sb_sinch_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Overwrites a secret before it is freed; volatile so the stores are not optimised away. */
void sb_sinch_wipe_free(char *p)
{
    if (p) {
        for (volatile char *v = p; *v; v++) {
            *v = '\0';
        }
        free(p);
    }
}

static char *str_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        snprintf(s, la + lb + 1, "%s%s", a, b);
    }
    return s;
}

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

static long timeout_ms(const struct sb_config *cfg)
{
    long secs = cfg->sinch_timeout > 0 ? cfg->sinch_timeout : DEFAULT_TIMEOUT_S;
    return secs * 1000;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sb_sinch_buf *b = userdata;
    size_t n = size * nmemb;

    if (n > BODY_MAX || b->len + n > BODY_MAX) {
        b->overflow = true;
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void sb_sinch_buf_reset(struct sb_sinch_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Copies the value of header `name` from the header line `line` into `out`, if it is that
 * header (case-insensitive, facts 2.2 and 4.3). */
static void capture_header(const char *line, size_t len, const char *name, char *out,
                           size_t out_len)
{
    size_t nl = strlen(name);

    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) {
        return;
    }
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    size_t n = (size_t)(end - v);
    if (n >= out_len) {
        n = out_len - 1;
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

size_t sb_sinch_on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sb_sinch_hdrs *h = userdata;
    size_t n = size * nmemb;

    /* A new status line (after a 100 Continue, say) starts a new answer. */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        h->retry_after[0] = '\0';
        h->www_auth[0] = '\0';
        return n;
    }
    capture_header(ptr, n, "Retry-After", h->retry_after, sizeof(h->retry_after));
    capture_header(ptr, n, "WWW-Authenticate", h->www_auth, sizeof(h->www_auth));
    return n;
}

/* The options every request shares; the caller adds method, body and auth. */
void sb_sinch_easy_common(CURL *e, const struct sb_config *cfg, const char *url,
                          struct curl_slist *headers, struct sb_sinch_buf *resp, char *errbuf)
{
    long total = timeout_ms(cfg);

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     total < CONNECT_TIMEOUT_MS ? total : CONNECT_TIMEOUT_MS);
    /* Facts 11.4: HTTP/1.1 with keep-alive is the proven path; over TLS let ALPN pick h2.
     * Known: when a reused connection dies before any byte of the answer, curl re-sends the
     * request once on a fresh one (Curl_retry_request), POSTs included. For messages:send that
     * is one more possible duplicate inside the at-least-once window of facts 11.1; only
     * CURLOPT_FORBID_REUSE (no keep-alive at all) would turn it off. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     is_https(url) ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    errbuf[0] = '\0';
}

void sb_sinch_easy_basic_auth(CURL *e, const struct sb_config *cfg)
{
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, cfg->key_id);
    curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->key_secret);
}

/* POST grant_type=client_credentials with the key as Basic credentials (facts 2.1). */
void sb_sinch_easy_token_request(CURL *e, const struct sb_config *cfg)
{
    static const char form[] = "grant_type=client_credentials";
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(sizeof(form) - 1));
    sb_sinch_easy_basic_auth(e, cfg);
}

struct curl_slist *sb_sinch_make_headers(const char *content_type)
{
    char ct[80];
    /* "Expect:" drops Expect: 100-continue, a round trip (or a second) on bodies over 1 KiB.
     * Without a body, "Content-Type:" stops curl from adding its form type to a bare POST. */
    const char *lines[] = {"Accept: application/json", "Expect:", ct};
    struct curl_slist *l = NULL;

    snprintf(ct, sizeof(ct), "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct curl_slist *t = curl_slist_append(l, lines[i]);
        if (!t) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = t;
    }
    return l;
}

enum sb_err sb_sinch_curl_err(CURLcode rc)
{
    return rc == CURLE_OPERATION_TIMEDOUT ? SB_E_TIMEOUT : SB_E_NET;
}

/* Whether the request surely never reached the server (facts 11.1: safe to resend). */
static bool never_sent(CURL *e, CURLcode rc)
{
    curl_off_t sent = 0;

    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return true;
    default:
        break;
    }
    /* A timeout while connecting, say: not a byte of the request was written. */
    if (curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent == 0) {
        return true;
    }
    return false;
}

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    if (!j) {
        return;
    }
    if (j->easy) {
        curl_easy_cleanup(j->easy); /* only a job that never got into the multi handle */
    }
    free(j->url);
    free(j->body);
    curl_slist_free_all(j->headers);
    free(j->resp.data);
    sb_sinch_result_free(j->res);
    free(j);
}

void sb_sinch_result_free(struct sb_sinch_result *res)
{
    if (res) {
        free(res->body);
        free(res);
    }
}

/* ---- the Sinch thread ---- */

static uint64_t next_random(struct sb_sinch *s)
{
    /* splitmix64: enough for jitter, which only has to spread clients apart */
    uint64_t z = (s->rnd += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static CURL *easy_take(struct sb_sinch *s)
{
    if (s->n_pool > 0) {
        CURL *e = s->pool[--s->n_pool];
        curl_easy_reset(e); /* connections live in the multi handle's cache, not here */
        return e;
    }
    return curl_easy_init();
}

static void easy_give_back(struct sb_sinch *s, CURL *e)
{
    if (!e) {
        return;
    }
    if (s->n_pool < s->pool_cap) {
        s->pool[s->n_pool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Removes the job's handle from the multi handle and keeps it for the next job. */
static void job_detach(struct sb_sinch *s, struct job *j)
{
    if (j->easy) {
        curl_multi_remove_handle(s->multi, j->easy);
        easy_give_back(s, j->easy);
        j->easy = NULL;
    }
}

static void active_unlink(struct sb_sinch *s, struct job *j)
{
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        s->active = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    j->next = j->prev = NULL;
}

/* Hands the result to the caller and frees the job. */
static void job_finish(struct sb_sinch *s, struct job *j)
{
    struct sb_sinch_result *res = j->res;

    j->res = NULL;
    job_free(j);
    s->done(s->done_arg, res);
}

static void drop_token(struct sb_sinch *s)
{
    sb_sinch_wipe_free(s->token);
    s->token = NULL;
    pthread_mutex_lock(&s->lock);
    s->st_tok_fetched_ms = 0;
    s->st_tok_expires_ms = 0;
    pthread_mutex_unlock(&s->lock);
}

static void start_token_fetch(struct sb_sinch *s);

/* Puts an API job's request into the multi handle, with the current token under OAuth. */
static void launch(struct sb_sinch *s, struct job *j)
{
    const struct sb_config *cfg = s->cfg;
    CURL *e = easy_take(s);

    if (!e) {
        j->res->err = SB_E_NOMEM;
        job_finish(s, j);
        return;
    }
    j->easy = e;
    sb_sinch_buf_reset(&j->resp);
    j->hd.retry_after[0] = '\0';
    j->hd.www_auth[0] = '\0';

    sb_sinch_easy_common(e, cfg, j->url, j->headers, &j->resp, j->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sb_sinch_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)&j->hd);
    if (strcmp(j->method, "GET") != 0 && strcmp(j->method, "POST") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, j->method);
    }
    if (j->body || strcmp(j->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body ? j->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
    }
    if (cfg->auth == SB_AUTH_OAUTH) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, s->token);
        j->token_gen = s->token_gen;
    } else {
        sb_sinch_easy_basic_auth(e, cfg);
    }
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
        j->res->err = SB_E_BUG;
        job_detach(s, j);
        job_finish(s, j);
        return;
    }
    j->res->requests++;
    j->next = s->active;
    j->prev = NULL;
    if (s->active) {
        s->active->prev = j;
    }
    s->active = j;
    pthread_mutex_lock(&s->lock);
    s->st_requests++;
    pthread_mutex_unlock(&s->lock);
}

/* Starts an API job: at once with basic auth or a usable token, else parked until the one
 * token fetch ends (facts 2.2: proactive refresh, single flight). */
static void start_api(struct sb_sinch *s, struct job *j)
{
    if (s->cfg->auth == SB_AUTH_OAUTH) {
        if (s->token && !sb_sinch_token_valid(s->tok_fetched_ms, s->tok_expires_ms,
                                              sb_sinch_clock_ms(CLOCK_REALTIME))) {
            sb_log(SB_LOG_INFO, MOD, "token expires soon, fetching a new one");
            drop_token(s);
        }
        if (!s->token) {
            j->next = NULL;
            if (s->parked_tail) {
                s->parked_tail->next = j;
            } else {
                s->parked = j;
            }
            s->parked_tail = j;
            if (!s->token_busy) {
                s->token_busy = true;
                s->token_attempt = 0;
                start_token_fetch(s);
            }
            return;
        }
    }
    launch(s, j);
}

/* Ends every parked job with `err`: no token could be had. */
static void fail_parked(struct sb_sinch *s, enum sb_err err)
{
    struct job *j = s->parked;

    s->parked = s->parked_tail = NULL;
    s->token_busy = false;
    s->token_attempt = 0;
    s->token_retry_at = 0;
    while (j) {
        struct job *next = j->next;
        j->next = NULL;
        j->res->err = err;
        j->res->maybe_sent = false; /* a 401 before it, if any, was surely not accepted */
        job_finish(s, j);
        j = next;
    }
}

static void start_token_fetch(struct sb_sinch *s)
{
    const struct sb_config *cfg = s->cfg;
    struct job *j = calloc(1, sizeof(*j));

    if (!j || !(j->url = strdup(cfg->auth_url)) ||
        !(j->headers = sb_sinch_make_headers("application/x-www-form-urlencoded")) ||
        !(j->easy = easy_take(s))) {
        job_free(j);
        fail_parked(s, SB_E_NOMEM);
        return;
    }
    j->kind = JOB_TOKEN;
    j->path = j->url;
    snprintf(j->method, sizeof(j->method), "POST");
    sb_sinch_easy_common(j->easy, cfg, j->url, j->headers, &j->resp, j->errbuf);
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, (void *)j);
    curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, sb_sinch_on_header);
    curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, (void *)&j->hd);
    sb_sinch_easy_token_request(j->easy, cfg);
    if (curl_multi_add_handle(s->multi, j->easy) != CURLM_OK) {
        curl_easy_cleanup(j->easy);
        j->easy = NULL;
        job_free(j);
        fail_parked(s, SB_E_BUG);
        return;
    }
    s->token_job = j;
    pthread_mutex_lock(&s->lock);
    s->st_token_fetches++;
    pthread_mutex_unlock(&s->lock);
}

/* The token fetch ended: cache the token and start the parked jobs, wait and retry a 429, or
 * fail the parked jobs (the outbox retries them later, which triggers a new fetch). */
static void token_done(struct sb_sinch *s, struct job *j, CURLcode rc)
{
    const struct sb_config *cfg = s->cfg;
    long status = 0;
    char text[160];

    s->token_job = NULL;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        sb_log(SB_LOG_WARN, MOD, "token: %s (%s)",
               j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc), cfg->auth_url);
        fail_parked(s, sb_sinch_curl_err(rc));
        goto out;
    }
    if (status >= 200 && status < 300) {
        int64_t now = sb_sinch_clock_ms(CLOCK_REALTIME);
        char *tok = NULL;
        int64_t expires = 0;
        if (sb_sinch_token_parse(j->resp.data, j->resp.len, now, &tok, &expires) != SB_OK) {
            sb_log(SB_LOG_WARN, MOD, "token: HTTP %ld from %s without a usable access_token",
                   status, cfg->auth_url);
            fail_parked(s, SB_E_SERVER);
            goto out;
        }
        sb_sinch_wipe_free(s->token);
        s->token = tok;
        s->tok_fetched_ms = now;
        s->tok_expires_ms = expires;
        s->token_gen++;
        s->token_busy = false;
        s->token_attempt = 0;
        pthread_mutex_lock(&s->lock);
        s->st_tok_fetched_ms = now;
        s->st_tok_expires_ms = expires;
        pthread_mutex_unlock(&s->lock);
        sb_log(SB_LOG_NOTICE, MOD, "token fetched, expires in %lld s",
               (long long)((expires - now) / 1000));
        /* Launch the parked jobs with this token without asking again whether it is valid: a
         * token that lives only seconds must still serve the jobs that waited for it. */
        struct job *p = s->parked;
        s->parked = s->parked_tail = NULL;
        while (p) {
            struct job *next = p->next;
            p->next = NULL;
            launch(s, p);
            p = next;
        }
        goto out;
    }
    sb_sinch_token_error_text(j->resp.data, j->resp.len, text, sizeof(text));
    if (status == 429) {
        if (s->token_attempt < SB_SINCH_TOKEN_MAX_RETRIES) {
            long ra =
                sb_sinch_token_retry_after_ms(j->hd.retry_after, sb_sinch_clock_ms(CLOCK_REALTIME));
            long delay = sb_sinch_token_backoff_ms(s->token_attempt, ra, next_random(s));
            s->token_attempt++;
            s->token_retry_at = sb_sinch_clock_ms(CLOCK_MONOTONIC) + delay;
            sb_log(SB_LOG_WARN, MOD, "token: HTTP 429 from %s, retry %u of %d in %ld ms",
                   cfg->auth_url, s->token_attempt, SB_SINCH_TOKEN_MAX_RETRIES, delay);
            goto out;
        }
        sb_log(SB_LOG_WARN, MOD, "token: HTTP 429 from %s, giving up after %d retries",
               cfg->auth_url, SB_SINCH_TOKEN_MAX_RETRIES);
        fail_parked(s, SB_E_RATE);
        goto out;
    }
    sb_log(SB_LOG_WARN, MOD, "token: HTTP %ld from %s%s%s", status, cfg->auth_url,
           text[0] ? ": " : "", text);
    fail_parked(s, status >= 500 ? SB_E_SERVER : SB_E_AUTH);
out:
    job_detach(s, j);
    job_free(j);
}

/* An API request ended: retry it once after a refresh when the token expired (facts 2.2),
 * otherwise hand the answer over whatever its status. */
static void api_done(struct sb_sinch *s, struct job *j, CURLcode rc)
{
    struct sb_sinch_result *res = j->res;
    curl_off_t us = 0;
    long status = 0;

    active_unlink(s, j);
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME_T, &us);
    res->seconds = (double)us / 1e6;
    res->status = status;
    if (status > 0) {
        pthread_mutex_lock(&s->lock);
        s->st_last_status = status;
        pthread_mutex_unlock(&s->lock);
    }
    sb_log(SB_LOG_DEBUG, MOD, "%s %s -> %ld in %lld ms%s%s (tag %llu)", j->method, j->path, status,
           (long long)(us / 1000), rc != CURLE_OK ? ": " : "",
           rc != CURLE_OK ? (j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc)) : "",
           (unsigned long long)res->tag);

    if (rc == CURLE_OK && status == 401 && s->cfg->auth == SB_AUTH_OAUTH && !j->retried &&
        sb_sinch_token_says_expired(j->hd.www_auth)) {
        j->retried = true;
        /* Drop the token only if it is still the one that failed: another job may already
         * have brought a new one. */
        if (s->token && j->token_gen == s->token_gen) {
            sb_log(SB_LOG_INFO, MOD, "token expired early (401), fetching a new one");
            drop_token(s);
        }
        job_detach(s, j);
        start_api(s, j);
        return;
    }

    if (rc == CURLE_OK) {
        res->err = SB_OK;
        res->maybe_sent = true;
    } else if (j->resp.overflow) {
        sb_log(SB_LOG_WARN, MOD, "%s %s: answer larger than %zu bytes (tag %llu)", j->method,
               j->path, BODY_MAX, (unsigned long long)res->tag);
        res->err = SB_E_NET;
        res->maybe_sent = true;
    } else {
        res->err = sb_sinch_curl_err(rc);
        res->maybe_sent = !never_sent(j->easy, rc);
    }
    if (rc == CURLE_OK && j->resp.data) {
        res->body = j->resp.data;
        res->body_len = j->resp.len;
        memset(&j->resp, 0, sizeof(j->resp));
    }
    res->retry_after_ms =
        sb_sinch_token_retry_after_ms(j->hd.retry_after, sb_sinch_clock_ms(CLOCK_REALTIME));
    job_detach(s, j);
    job_finish(s, j);
}

static void drain_done(struct sb_sinch *s)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(s->multi, &left))) {
        char *priv = NULL;
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct job *j = (struct job *)(void *)priv;
        if (!j) {
            continue;
        }
        if (j->kind == JOB_TOKEN) {
            token_done(s, j, rc);
        } else {
            api_done(s, j, rc);
        }
    }
}

static void *run(void *arg)
{
    struct sb_sinch *s = arg;

    for (;;) {
        struct job *in;
        int running = 0;

        pthread_mutex_lock(&s->lock);
        if (s->stop) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        in = s->in_head;
        s->in_head = s->in_tail = NULL;
        pthread_mutex_unlock(&s->lock);
        while (in) {
            struct job *next = in->next;
            in->next = NULL;
            start_api(s, in);
            in = next;
        }

        int timeout = IDLE_POLL_MS;
        if (s->token_retry_at) {
            int64_t wait = s->token_retry_at - sb_sinch_clock_ms(CLOCK_MONOTONIC);
            if (wait <= 0) {
                s->token_retry_at = 0;
                start_token_fetch(s);
            } else if (wait < timeout) {
                timeout = (int)wait;
            }
        }
        curl_multi_perform(s->multi, &running);
        drain_done(s);
        /* The token retry may have been scheduled just now. */
        if (s->token_retry_at) {
            int64_t wait = s->token_retry_at - sb_sinch_clock_ms(CLOCK_MONOTONIC);
            timeout = wait <= 0 ? 0 : (wait < timeout ? (int)wait : timeout);
        }
        curl_multi_poll(s->multi, NULL, 0, timeout, NULL);
    }
    return NULL;
}

/* ---- the interface (include/adapters/sinch.h) ---- */

bool sb_sinch_cfg_usable(const struct sb_config *cfg)
{
    if (!cfg || !cfg->api_url || !cfg->key_id || !cfg->key_secret) {
        return false;
    }
    return cfg->auth != SB_AUTH_OAUTH || cfg->auth_url;
}

enum sb_err sb_sinch_new(const struct sb_config *cfg, sb_sinch_done_fn done, void *arg,
                         struct sb_sinch **out)
{
    struct sb_sinch *s;
    long conns;

    if (!sb_sinch_cfg_usable(cfg) || !done || !out) {
        return SB_E_INVAL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return SB_E_BUG;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        curl_global_cleanup();
        return SB_E_NOMEM;
    }
    s->cfg = cfg;
    s->done = done;
    s->done_arg = arg;
    s->rnd = (uint64_t)sb_sinch_clock_ms(CLOCK_REALTIME) ^
             ((uint64_t)sb_sinch_clock_ms(CLOCK_MONOTONIC) << 20) ^ (uint64_t)(uintptr_t)s;
    conns = cfg->sinch_connections > 0 ? cfg->sinch_connections : 16;
    s->pool_cap = conns < EASY_POOL_MAX ? (size_t)conns : EASY_POOL_MAX;
    s->pool = calloc(s->pool_cap, sizeof(*s->pool));
    s->multi = curl_multi_init();
    if (!s->pool || !s->multi || pthread_mutex_init(&s->lock, NULL) != 0) {
        curl_multi_cleanup(s->multi);
        free(s->pool);
        free(s);
        curl_global_cleanup();
        return SB_E_NOMEM;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    /* Keep every idle connection up to the limit, plus the token host's. */
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, conns + 2);
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        curl_multi_cleanup(s->multi);
        free(s->pool);
        free(s);
        curl_global_cleanup();
        return SB_E_NOMEM;
    }
    *out = s;
    return SB_OK;
}

enum sb_err sb_sinch_submit(struct sb_sinch *s, uint64_t tag, const char *method, const char *path,
                            char *body)
{
    enum sb_err err = SB_E_INVAL;
    struct job *j = NULL;

    if (!s || !method || !path || path[0] != '/' ||
        (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 &&
         strcmp(method, "PATCH") != 0 && strcmp(method, "DELETE") != 0)) {
        goto out;
    }
    err = SB_E_NOMEM;
    j = calloc(1, sizeof(*j));
    if (!j || !(j->res = calloc(1, sizeof(*j->res))) ||
        !(j->url = str_join(s->cfg->api_url, path)) ||
        !(j->headers = sb_sinch_make_headers(body ? "application/json" : NULL))) {
        goto out;
    }
    j->kind = JOB_API;
    snprintf(j->method, sizeof(j->method), "%s", method);
    j->path = j->url + strlen(s->cfg->api_url);
    j->body = body;
    j->body_len = body ? strlen(body) : 0;
    body = NULL; /* the job owns it now */
    j->res->tag = tag;
    j->res->retry_after_ms = -1;
    j->res->maybe_sent = false;

    pthread_mutex_lock(&s->lock);
    if (s->stop) {
        pthread_mutex_unlock(&s->lock);
        err = SB_E_STOPPED;
        goto out;
    }
    /* The thread takes the whole queue each time it looks, so only a push onto an empty queue
     * needs to wake it: a burst of submits costs one wake-up, not one each. */
    bool wake = s->in_tail == NULL;
    if (s->in_tail) {
        s->in_tail->next = j;
    } else {
        s->in_head = j;
    }
    s->in_tail = j;
    pthread_mutex_unlock(&s->lock);
    j = NULL;
    if (wake) {
        curl_multi_wakeup(s->multi);
    }
    err = SB_OK;
out:
    job_free(j);
    free(body); /* the header says submit takes ownership of body: on failure too */
    return err;
}

void sb_sinch_free(struct sb_sinch *s)
{
    struct job *j;

    if (!s) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
    curl_multi_wakeup(s->multi);
    pthread_join(s->thread, NULL);

    /* The thread is gone: whatever is left is dropped without a callback. */
    j = s->active;
    s->active = NULL;
    while (j) {
        struct job *next = j->next;
        job_detach(s, j);
        job_free(j);
        j = next;
    }
    if (s->token_job) {
        job_detach(s, s->token_job);
        job_free(s->token_job);
    }
    while ((j = s->parked)) {
        s->parked = j->next;
        job_free(j);
    }
    while ((j = s->in_head)) {
        s->in_head = j->next;
        job_free(j);
    }
    while (s->n_pool > 0) {
        curl_easy_cleanup(s->pool[--s->n_pool]);
    }
    free(s->pool);
    curl_multi_cleanup(s->multi);
    sb_sinch_wipe_free(s->token);
    pthread_mutex_destroy(&s->lock);
    free(s);
    curl_global_cleanup();
}

void sb_sinch_stats(struct sb_sinch *s, struct sb_sinch_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!s) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    out->last_status = s->st_last_status;
    out->requests = s->st_requests;
    out->token_fetches = s->st_token_fetches;
    out->token_valid = s->cfg->auth == SB_AUTH_OAUTH && s->st_tok_expires_ms > 0 &&
                       sb_sinch_token_valid(s->st_tok_fetched_ms, s->st_tok_expires_ms,
                                            sb_sinch_clock_ms(CLOCK_REALTIME));
    pthread_mutex_unlock(&s->lock);
}
