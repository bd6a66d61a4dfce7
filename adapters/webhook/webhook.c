/* The HTTP listener: an lws vhost on the loop's context. It routes the few endpoints, gathers a
 * webhook's body within its limit, hands complete requests to the handlers and writes their
 * answers (status line, headers and body in one write): at once, or, for a webhook the handler
 * deferred, from LWS_CALLBACK_HTTP_WRITEABLE once sb_webhook_answer() gave the answer. Only a
 * deferred answer keeps its connection open for the next request, and only when nothing
 * followed its request (answer_now(), on_body_completion()). Thread: loop. */
#include "adapters/webhook.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge/log.h"

#define PATH_MAX_LEN     256
#define HEADER_VALUE_MAX 256 /* signature headers are ~44 characters; longer ones are refused */
#define HEADER_ROOM      512
#define BODY_TIMEOUT_S   10 /* a client must send its whole body within this */
#define ANSWER_TIMEOUT_S 30 /* a deferred answer that never comes (a bug) frees the connection */

struct txn;

/* A deferred answer. Two owners while it is unanswered: the connection (txn->pending) and the
 * handler. sb_webhook_answer() hands the handler's share to the connection, which writes the
 * answer and frees it; a connection that closes first lets go of its share (wsi NULL) and the
 * handler's answer frees it unwritten. Unanswered ones are listed in the webhook, so that
 * freeing the listener can let go of them too. */
struct sb_webhook_pending {
    struct sb_webhook_pending *prev, *next; /* in wh->pending while unanswered and connected */
    struct sb_webhook *wh;
    struct lws *wsi; /* NULL once the connection let go */
    struct txn *t;   /* its transaction (lws's per-session data), while wsi is set */
    bool answered;
    struct sb_http_answer ans;
};

struct sb_webhook {
    const struct sb_config *cfg;
    struct sb_webhook_handlers handlers;
    void *arg;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[2];
    struct sb_webhook_pending *pending; /* unanswered deferred answers, newest first */
};

enum endpoint { EP_WEBHOOK, EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_NONE };

/* One HTTP transaction: lws zeroes it for each request on a connection. */
struct txn {
    enum endpoint ep;
    char *body; /* the webhook body, NUL-terminated; owned */
    size_t body_len;
    size_t body_cap; /* its Content-Length */
    bool close_after;
    struct sb_webhook_pending *pending; /* a deferred answer, while the handler has it */
    int64_t answer_by;                  /* sb_mono_ms() deadline of the deferred answer */
};

static struct sb_webhook *webhook_of(struct lws *wsi)
{
    return lws_vhost_user(lws_get_vhost(wsi));
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Writes the answer and ends the transaction. Returns what the callback must return (-1
 * closes the connection). Frees ans->body. */
static int answer(struct lws *wsi, struct txn *t, struct sb_http_answer *ans, const char *allow)
{
    size_t body_len = ans->body ? strlen(ans->body) : 0;
    size_t need = LWS_PRE + HEADER_ROOM + body_len;
    unsigned char *buf = malloc(need);
    int rc = -1;

    if (!buf) {
        goto out;
    }
    unsigned char *start = buf + LWS_PRE;
    int n = snprintf((char *)start, HEADER_ROOM,
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n%s%s%s%s\r\n",
                     ans->status, reason_phrase(ans->status),
                     ans->content_type ? ans->content_type : "application/json", body_len,
                     allow ? "allow: " : "", allow ? allow : "", allow ? "\r\n" : "",
                     t->close_after ? "connection: close\r\n" : "");
    if (n < 0 || n >= HEADER_ROOM) {
        goto out;
    }
    if (body_len) {
        memcpy(start + n, ans->body, body_len);
    }
    int len = n + (int)body_len;
    if (lws_write(wsi, start, (size_t)len, LWS_WRITE_HTTP_FINAL) != len || t->close_after) {
        goto out;
    }
    rc = lws_http_transaction_completed(wsi) ? -1 : 0;
out:
    free(buf);
    free(ans->body);
    ans->body = NULL;
    return rc;
}

/* An answer given at once, from inside lws's read of the request: it ends the connection. lws
 * 4.1 reads whatever followed the request (a pipelined one) into a buffer of its own, which
 * we cannot see from here; were the connection kept, it would parse the next request from
 * that buffer, feed the start of its headers to us as a POST's body, and, once that
 * transaction ended inside its loop over the buffer (LRS_DEFERRING_ACTION consumes nothing),
 * spin there for good: the loop stopped, every connection left in CLOSE_WAIT. A client that
 * pipelined sends the rest again on a new connection (RFC 9112 9.3.2). Only webhooks, answered
 * later, keep their connections (on_body_completion()). */
static int answer_now(struct lws *wsi, struct txn *t, struct sb_http_answer *ans, const char *allow)
{
    t->close_after = true;
    return answer(wsi, t, ans, allow);
}

static int answer_error(struct lws *wsi, struct txn *t, int status, const char *message,
                        const char *allow)
{
    struct sb_http_answer ans = {.status = status};
    size_t n = strlen(message) + 32;
    ans.body = malloc(n);
    if (ans.body) {
        snprintf(ans.body, n, "{\"error\":\"%s\"}", message);
    }
    return answer_now(wsi, t, &ans, allow);
}

/* A custom header's value into buf, or NULL when absent, empty or too long. */
static const char *custom_header(struct lws *wsi, const char *name, char *buf, int len)
{
    int n = lws_hdr_custom_length(wsi, name, (int)strlen(name));
    if (n <= 0 || n >= len || lws_hdr_custom_copy(wsi, buf, len, name, (int)strlen(name)) < 0) {
        return NULL;
    }
    return buf;
}

/* ---- deferred answers ---- */

static void unlist(struct sb_webhook_pending *p)
{
    if (!p->wh) {
        return;
    }
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        p->wh->pending = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
    p->prev = p->next = NULL;
    p->wh = NULL;
}

static struct sb_webhook_pending *pending_new(struct sb_webhook *wh, struct lws *wsi, struct txn *t)
{
    struct sb_webhook_pending *p = calloc(1, sizeof(*p));

    if (!p) {
        return NULL;
    }
    p->wh = wh;
    p->wsi = wsi;
    p->t = t;
    p->next = wh->pending;
    if (p->next) {
        p->next->prev = p;
    }
    wh->pending = p;
    return p;
}

/* The connection lets go of its deferred answer (it closes, or its transaction ends): an
 * answered one is freed unwritten, an unanswered one waits for the handler's answer. */
static void release_pending(struct txn *t)
{
    struct sb_webhook_pending *p = t->pending;

    if (!p) {
        return;
    }
    t->pending = NULL;
    if (p->answered) {
        free(p->ans.body);
        free(p);
        return;
    }
    unlist(p);
    p->wsi = NULL;
    p->t = NULL;
}

void sb_webhook_answer(struct sb_webhook_pending *p, int status, const char *body)
{
    if (!p) {
        return;
    }
    if (!p->wsi) {
        free(p); /* the client went away: nobody to answer */
        return;
    }
    unlist(p);
    p->answered = true;
    p->ans.status = status;
    p->ans.body = body ? strdup(body) : NULL; /* NULL on OOM: the status alone still goes */
    lws_callback_on_writable(p->wsi);
}

/* ---- handlers ---- */

static int run_webhook(struct lws *wsi, struct txn *t)
{
    struct sb_webhook *wh = webhook_of(wsi);
    char nonce[HEADER_VALUE_MAX], ts[HEADER_VALUE_MAX], sig[HEADER_VALUE_MAX];
    char alg[HEADER_VALUE_MAX], ctype[HEADER_VALUE_MAX];
    struct sb_http_answer ans = {.status = 500};
    struct sb_webhook_pending *p = pending_new(wh, wsi, t);
    struct sb_webhook_request rq = {
        .body = t->body ? t->body : "",
        .body_len = t->body_len,
        .nonce = custom_header(wsi, "x-sinch-webhook-signature-nonce:", nonce, sizeof(nonce)),
        .timestamp = custom_header(wsi, "x-sinch-webhook-signature-timestamp:", ts, sizeof(ts)),
        .signature = custom_header(wsi, "x-sinch-webhook-signature:", sig, sizeof(sig)),
        .algorithm = custom_header(wsi, "x-sinch-webhook-signature-algorithm:", alg, sizeof(alg)),
        .pending = p,
    };
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0 &&
        lws_hdr_copy(wsi, ctype, sizeof(ctype), WSI_TOKEN_HTTP_CONTENT_TYPE) > 0) {
        rq.content_type = ctype;
    }
    wh->handlers.webhook(wh->arg, &rq, &ans);
    free(t->body);
    t->body = NULL;
    if (p && ans.status == SB_HTTP_PENDING) {
        /* Written by on_writeable(); the handler may have answered already (a full batch). */
        t->pending = p;
        t->answer_by = sb_mono_ms() + (int64_t)ANSWER_TIMEOUT_S * 1000;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, ANSWER_TIMEOUT_S);
        return 0;
    }
    if (p) {
        unlist(p);
        free(p);
    }
    if (ans.status == SB_HTTP_PENDING) {
        ans.status = 500; /* a handler that defers without a handle: a bug */
    }
    return answer_now(wsi, t, &ans, NULL);
}

/* LWS_CALLBACK_HTTP_WRITEABLE with an answered deferred request: writes the answer. */
static int on_writeable(struct lws *wsi, struct txn *t)
{
    struct sb_webhook_pending *p = t->pending;
    struct sb_http_answer ans;

    t->pending = NULL;
    ans = p->ans;
    free(p);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    return answer(wsi, t, &ans, NULL);
}

static int run_get(struct lws *wsi, struct txn *t)
{
    struct sb_webhook *wh = webhook_of(wsi);
    struct sb_http_answer ans = {.status = 200};

    switch (t->ep) {
    case EP_HEALTHZ:
        ans.body = strdup("{\"status\":\"ok\"}");
        break;
    case EP_READYZ:
        wh->handlers.ready(wh->arg, &ans);
        break;
    case EP_METRICS:
        wh->handlers.metrics(wh->arg, &ans);
        break;
    default:
        return answer_error(wsi, t, 404, "not found", NULL);
    }
    return answer_now(wsi, t, &ans, NULL);
}

static enum endpoint route(const struct sb_webhook *wh, const char *path)
{
    if (strcmp(path, wh->cfg->webhook_path) == 0) {
        return EP_WEBHOOK;
    }
    if (strcmp(path, "/healthz") == 0) {
        return EP_HEALTHZ;
    }
    if (strcmp(path, "/readyz") == 0) {
        return EP_READYZ;
    }
    if (strcmp(path, "/metrics") == 0) {
        return EP_METRICS;
    }
    return EP_NONE;
}

/* LWS_CALLBACK_HTTP: the headers are in. */
static int on_headers(struct lws *wsi, struct txn *t, const char *uri, size_t len)
{
    struct sb_webhook *wh = webhook_of(wsi);
    char path[PATH_MAX_LEN];
    char *u;
    int ulen;
    int method = lws_http_get_uri_and_method(wsi, &u, &ulen);
    char value[32];

    if (len >= sizeof(path)) {
        return answer_error(wsi, t, 404, "not found", NULL);
    }
    memcpy(path, uri, len);
    path[len] = '\0';
    t->ep = route(wh, path);
    if (t->ep == EP_NONE) {
        t->close_after =
            method == LWSHUMETH_POST || method == LWSHUMETH_PUT || method == LWSHUMETH_PATCH;
        return answer_error(wsi, t, 404, "not found", NULL);
    }
    if (t->ep != EP_WEBHOOK) {
        if (method != LWSHUMETH_GET) {
            t->close_after = method != LWSHUMETH_OPTIONS && method != LWSHUMETH_DELETE;
            return answer_error(wsi, t, 405, "method not allowed", "GET");
        }
        return run_get(wsi, t);
    }
    if (method != LWSHUMETH_POST) {
        t->close_after = method == LWSHUMETH_PUT || method == LWSHUMETH_PATCH;
        return answer_error(wsi, t, 405, "method not allowed", "POST");
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
        lws_hdr_copy(wsi, value, sizeof(value), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
        /* lws 4.1 has no chunked request bodies and would read the rest of the connection as
         * this body: answer, then close. */
        t->close_after = true;
        return answer_error(wsi, t, 411, "a Content-Length is required", NULL);
    }
    char *end;
    errno = 0;
    unsigned long long cl = strtoull(value, &end, 10);
    if (*end || errno || value[0] == '-' || value[0] == '\0') {
        t->close_after = true;
        return answer_error(wsi, t, 400, "Content-Length is not a number", NULL);
    }
    if (cl > SB_WEBHOOK_BODY_MAX) {
        /* Refused before a byte of it is read; closing spares us reading it at all. */
        t->close_after = true;
        return answer_error(wsi, t, 413, "body larger than 1 MiB", NULL);
    }
    t->body = malloc((size_t)cl + 1);
    if (!t->body) {
        return -1;
    }
    t->body_cap = (size_t)cl;
    t->body_len = 0;
    /* A client that trickles its body (slowloris) is cut off. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, BODY_TIMEOUT_S);
    return 0;
}

static int on_body(struct txn *t, const void *in, size_t len)
{
    if (!t->body || !in) {
        return 0;
    }
    if (len > t->body_cap - t->body_len) {
        len = t->body_cap - t->body_len;
    }
    memcpy(t->body + t->body_len, in, len);
    t->body_len += len;
    return 0;
}

/* LWS_CALLBACK_HTTP_BODY_COMPLETION: the body is in. */
static int on_body_completion(struct lws *wsi, struct txn *t)
{
    if (t->pending) {
        /* Bytes followed the body while the answer is deferred (a pipelining client, or
         * garbage): lws 4.1 keeps them in its own buffer and calls this again at every service
         * until the answer is written. The request is handled once. Kept open, the connection
         * would have lws parse the next request from that buffer and spin (answer_now()), so
         * the deferred answer closes it. lws cleared the answer's timeout before calling: set
         * it again, to the same deadline. */
        int64_t left_ms = t->answer_by - sb_mono_ms();
        t->close_after = true;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
                        left_ms > 1000 ? (int)((left_ms + 999) / 1000) : 1);
        return 0;
    }
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    if (t->body) {
        t->body[t->body_len] = '\0';
    }
    return run_webhook(wsi, t);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct txn *t = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_headers(wsi, t, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(t, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_completion(wsi, t);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (t && t->pending && t->pending->answered) {
            return on_writeable(wsi, t);
        }
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        /* Whichever of these lws gives first; the rest find nothing left to free. */
        if (t) {
            free(t->body);
            t->body = NULL;
            release_pending(t);
        }
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return -1; /* no websockets, no h2c here */
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

enum sb_err sb_webhook_new(const struct sb_config *cfg, struct sb_loop *loop,
                           const struct sb_webhook_handlers *handlers, void *arg,
                           struct sb_webhook **out)
{
    struct lws_context_creation_info info;
    struct sb_webhook *wh = calloc(1, sizeof(*wh));

    if (!wh) {
        return SB_E_NOMEM;
    }
    wh->cfg = cfg;
    wh->handlers = *handlers;
    wh->arg = arg;
    wh->protocols[0] = (struct lws_protocols){
        .name = "sb-http",
        .callback = callback,
        .per_session_data_size = sizeof(struct txn),
    };
    memset(&info, 0, sizeof(info));
    info.vhost_name = "sinch-bridge";
    info.port = cfg->listen_port;
    /* lws takes a literal address or an interface name; "0.0.0.0" and "::" mean all. */
    info.iface = strcmp(cfg->listen_host, "0.0.0.0") == 0 || strcmp(cfg->listen_host, "::") == 0
                     ? NULL
                     : cfg->listen_host;
    /* lws 4.1 binds an IPv6 socket, where it cannot apply an IPv4 address: BRIDGE_LISTEN=
     * 127.0.0.1:8080 listened on every interface. An IPv4 address gets an IPv4 socket. */
    if (info.iface && strchr(info.iface, ':') == NULL && strchr(info.iface, '.') != NULL) {
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info.protocols = wh->protocols;
    info.user = wh;
    info.keepalive_timeout = 30;
    wh->vhost = lws_create_vhost(sb_loop_lws(loop), &info);
    if (!wh->vhost) {
        sb_log(SB_LOG_ERROR, "http", "cannot listen on %s:%d", cfg->listen_host, cfg->listen_port);
        free(wh);
        return SB_E_IO;
    }
    sb_log(SB_LOG_NOTICE, "http", "listening on %s:%d (webhook %s)", cfg->listen_host,
           lws_get_vhost_listen_port(wh->vhost), cfg->webhook_path);
    *out = wh;
    return SB_OK;
}

void sb_webhook_free(struct sb_webhook *wh)
{
    if (!wh) {
        return;
    }
    /* lws closes the vhost's connections later (at its next service, or with the context): let
     * go of the unanswered deferred answers now, so that their handlers' answers are dropped
     * and no connection refers to them. */
    while (wh->pending) {
        struct sb_webhook_pending *p = wh->pending;
        if (p->t) {
            p->t->pending = NULL;
        }
        unlist(p);
        p->wsi = NULL;
        p->t = NULL;
    }
    lws_vhost_destroy(wh->vhost);
    free(wh);
}
