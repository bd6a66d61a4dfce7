/* The HTTP side: one lws protocol that takes every request (there are no mounts), gathers its
 * body, hands it to the control API or to a fault or to the Sinch handlers, records it, and
 * writes the answer - at once in the same callback (the fast path: status line, headers and body
 * in one write), or from HTTP_WRITEABLE when an lws_sul timer ends a fault's delay, so a slow
 * answer never holds up other connections. Thread: the loop. */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libwebsockets.h>

#define PATH_MAX_LEN  512  /* longer paths are cut, and then match no endpoint */
#define AUTH_MAX_LEN  1024 /* an Authorization header longer than this is refused as unknown */
#define QUERY_MAX_LEN 512
#define HEADER_ROOM   (2 * SIM_HEADER_VALUE_MAX + 512)
#define STACK_ANSWER  8192 /* answers up to this size are written from a stack buffer */

/* One HTTP transaction: lws allocates it zeroed for each request on a connection (it is the
 * protocol's per-session data, re-bound per transaction) and we release what it holds on
 * HTTP_DROP_PROTOCOL or CLOSED_HTTP. */
struct txn {
    struct lws *wsi;
    lws_sorted_usec_list_t sul; /* ends the delay of a faulted answer */
    enum sim_method method;
    const char *method_name;
    char path[PATH_MAX_LEN];
    char *body; /* owned until the recorder takes it */
    size_t body_len;
    size_t body_cap; /* the Content-Length; more is never stored */
    struct sim_answer ans;
    bool waiting;     /* the delay timer is running; the answer is ready */
    bool close_after; /* close once answered: lws would take what follows for a body */
    bool http10;      /* the request was HTTP/1.0 */
    bool keepalive10; /* ... and asked for keep-alive, which 1.0 must be told it got */
};

static struct sim *sim_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static void txn_release(struct txn *t)
{
    lws_sul_cancel(&t->sul);
    free(t->body);
    t->body = NULL;
    sim_answer_reset(&t->ans);
    t->waiting = false;
}

static void set_method(struct txn *t, struct lws *wsi)
{
    static const struct {
        int lws;
        enum sim_method method;
        const char *name;
    } methods[] = {
        {LWSHUMETH_GET, SIM_GET, "GET"},
        {LWSHUMETH_POST, SIM_POST, "POST"},
        {LWSHUMETH_PUT, SIM_PUT, "PUT"},
        {LWSHUMETH_PATCH, SIM_PATCH, "PATCH"},
        {LWSHUMETH_DELETE, SIM_DELETE, "DELETE"},
        {LWSHUMETH_OPTIONS, SIM_OTHER_METHOD, "OPTIONS"},
        {LWSHUMETH_HEAD, SIM_OTHER_METHOD, "HEAD"},
    };
    char *uri;
    int uri_len;
    int m = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    t->method = SIM_OTHER_METHOD;
    t->method_name = "OTHER";
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (methods[i].lws == m) {
            t->method = methods[i].method;
            t->method_name = methods[i].name;
        }
    }
}

/* Copies header `h` into buf; "" when absent, "?" when it does not fit (so it never matches). */
static void header(struct lws *wsi, enum lws_token_indexes h, char *buf, int len)
{
    if (lws_hdr_total_length(wsi, h) <= 0) {
        buf[0] = '\0';
    } else if (lws_hdr_copy(wsi, buf, len, h) < 0) {
        snprintf(buf, (size_t)len, "?");
    }
}

/* Joins the URL arguments, which lws keeps as one fragment each, into "a=1&b=2". */
static void query(struct lws *wsi, char *buf, size_t len)
{
    char frag[QUERY_MAX_LEN];
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
         i++) {
        int n = snprintf(buf + pos, len - pos, "%s%s", pos ? "&" : "", frag);
        if (n < 0 || (size_t)n >= len - pos) {
            break;
        }
        pos += (size_t)n;
    }
}

static enum sim_auth_kind auth_kind(const char *authorization)
{
    if (strncasecmp(authorization, "Bearer ", 7) == 0) {
        return SIM_AUTH_BEARER;
    }
    if (strncasecmp(authorization, "Basic ", 6) == 0) {
        return SIM_AUTH_BASIC;
    }
    return SIM_AUTH_NONE;
}

/* ---- writing the answer ---- */

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    if (!value || !value[0]) {
        return 0;
    }
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* The status line of HTTP/1, written by us rather than lws so that every status has its reason
 * phrase (lws 4.1 leaves 429's empty), in the version the request used. */
static int add_status(struct lws *wsi, const struct txn *t, bool h2, int status, unsigned char **p,
                      unsigned char *end)
{
    char line[64];
    if (h2) {
        return lws_add_http_header_status(wsi, (unsigned int)status, p, end);
    }
    int n = snprintf(line, sizeof(line), "HTTP/1.%d %d %s", t->http10 ? 0 : 1, status,
                     sim_reason_phrase(status));
    return lws_add_http_header_by_name(wsi, NULL, (const unsigned char *)line, n, p, end);
}

/* Writes the answer and ends the transaction. HTTP/1 gets status line, headers and body in one
 * write (one send(2) per answer); an HTTP/2 stream (after an h2c upgrade) needs a HEADERS and
 * a DATA frame, so two. Returns what the callback must return: -1 closes the connection (or
 * the h2 stream). `t` is gone afterwards (lws re-binds the user space). */
static int write_answer(struct lws *wsi, struct txn *t)
{
    unsigned char stack_buf[LWS_PRE + STACK_ANSWER];
    struct sim_answer *a = &t->ans;
    size_t need = LWS_PRE + HEADER_ROOM + a->body_len;
    unsigned char *buf = need <= sizeof(stack_buf) ? stack_buf : malloc(need);
    const char *ctype = a->content_type ? a->content_type : "application/json";
    bool h2 = lws_get_network_wsi(wsi) != wsi;
    const char *connection = h2               ? NULL
                             : t->close_after ? "close"
                             : t->keepalive10 ? "keep-alive"
                                              : NULL;
    int rc = -1;

    if (a->drop || !buf) {
        goto out;
    }
    unsigned char *start = buf + LWS_PRE, *p = start, *end = start + HEADER_ROOM;
    if (add_status(wsi, t, h2, a->status, &p, end) ||
        add_header(wsi, "content-type:", ctype, &p, end) ||
        lws_add_http_header_content_length(wsi, a->body_len, &p, end) ||
        add_header(wsi, "connection:", connection, &p, end) ||
        add_header(wsi, "retry-after:", a->retry_after, &p, end) ||
        add_header(wsi, "www-authenticate:", a->www_authenticate, &p, end) ||
        add_header(wsi, "allow:", a->allow, &p, end)) {
        goto out;
    }
    if (h2) {
        if (lws_finalize_write_http_header(wsi, start, &p, end)) {
            goto out;
        }
        p = start;
    } else if (lws_finalize_http_header(wsi, &p, end)) {
        goto out;
    }
    if (a->body_len) {
        memcpy(p, a->body, a->body_len);
        p += a->body_len;
    }
    int len = (int)(p - start);
    if (a->partial) {
        len -= (int)(a->body_len - a->body_len / 2); /* then close: the client sees a short body */
    }
    if (lws_write(wsi, start, (size_t)len, LWS_WRITE_HTTP_FINAL) != len || t->close_after ||
        a->partial) {
        goto out;
    }
    sim_answer_reset(a);
    rc = lws_http_transaction_completed(wsi) ? -1 : 0;
out:
    if (buf != stack_buf) {
        free(buf);
    }
    return rc;
}

static void delay_over(lws_sorted_usec_list_t *sul)
{
    struct txn *t = lws_container_of(sul, struct txn, sul);
    lws_callback_on_writable(t->wsi);
}

static int answer(struct lws *wsi, struct txn *t)
{
    if (t->ans.delay_ms <= 0) {
        return write_answer(wsi, t);
    }
    /* lws's own "content is late" timeout would close us during a long delay. */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    t->waiting = true;
    lws_sul_schedule(lws_get_context(wsi), 0, &t->sul, delay_over,
                     (lws_usec_t)t->ans.delay_ms * LWS_US_PER_MS);
    return 0;
}

/* ---- handling a complete request ---- */

static void log_request(const struct txn *t, uint64_t seq, const struct sim_record *rec,
                        bool faulted)
{
    char line[PATH_MAX_LEN + 128];
    static const char *const auth_names[] = {"none", "bearer", "basic"};
    int n = snprintf(line, sizeof(line), "sinch-sim: #%llu %s %s -> %d%s (%s, auth %s%s%s)\n",
                     (unsigned long long)seq, t->method_name, t->path, rec->status,
                     t->ans.drop      ? " dropped"
                     : t->ans.partial ? " cut short"
                                      : "",
                     sim_endpoint_name(rec->endpoint), auth_names[rec->auth],
                     faulted ? ", fault" : "", t->ans.delay_ms > 0 ? ", delayed" : "");
    if (n > 0 &&
        write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line)) < 0) {
        /* stderr is gone; nothing better to do */
    }
}

/* A fault replaces the answer (status, body), adds headers, delays it, cuts it short or drops
 * the connection; with none of status and drop the request is answered as usual, after the
 * delay (and cut short if asked). */
static void apply_fault(struct sim *s, enum sim_endpoint ep, const struct sim_request *rq,
                        struct sim_fault_hit *hit, struct txn *t, struct sim_record *rec)
{
    struct sim_answer *a = &t->ans;
    if (hit->drop) {
        a->drop = true;
    } else if (hit->status) {
        if (hit->body) {
            sim_answer_take(a, hit->status, hit->body_is_json ? "application/json" : "text/plain",
                            hit->body, strlen(hit->body));
            hit->body = NULL;
        } else {
            sim_api_fault_body(ep, hit->status, a);
        }
    } else {
        sim_api_handle(s, ep, rq, a, rec);
    }
    if (hit->retry_after[0]) {
        memcpy(a->retry_after, hit->retry_after, sizeof(a->retry_after));
    }
    if (hit->www_authenticate[0]) {
        memcpy(a->www_authenticate, hit->www_authenticate, sizeof(a->www_authenticate));
    }
    a->delay_ms = hit->delay_ms;
    a->partial = hit->partial && !hit->drop;
    free(hit->body);
}

static void handle_sinch(struct sim *s, const struct sim_request *rq, struct txn *t,
                         enum sim_endpoint ep)
{
    struct sim_fault_hit hit;
    struct sim_record rec = {
        .time_ms = rq->now_ms,
        .endpoint = ep,
        .auth = auth_kind(rq->authorization),
    };
    bool faulted = sim_faults_take(s->faults, ep, rq->now_ms, &hit);

    s->stats.requests++;
    if (ep == SIM_EP_SEND) {
        sim_stats_count_send(&s->stats, rq->now_ms);
    } else if (ep == SIM_EP_TOKEN) {
        s->stats.token_requests++;
    }
    if (faulted) {
        s->stats.faults_applied++;
        apply_fault(s, ep, rq, &hit, t, &rec);
    } else {
        sim_api_handle(s, ep, rq, &t->ans, &rec);
    }
    rec.status = t->ans.drop ? 0 : t->ans.status;
    snprintf(rec.method, sizeof(rec.method), "%s", t->method_name);
    rec.path = strdup(t->path);
    rec.body = t->body;
    rec.body_len = t->body_len;
    t->body = NULL;
    uint64_t seq = sim_records_add(s->records, &rec);
    if (s->cfg.verbose) {
        log_request(t, seq, &rec, faulted);
    }
}

static int dispatch(struct lws *wsi, struct txn *t)
{
    struct sim *s = sim_of(wsi);
    char authorization[AUTH_MAX_LEN], content_type[128], args[QUERY_MAX_LEN];
    struct sim_request rq = {
        .method = t->method,
        .method_name = t->method_name,
        .path = t->path,
        .query = args,
        .authorization = authorization,
        .content_type = content_type,
        .body = t->body,
        .body_len = t->body_len,
        .now_ms = sim_now_ms(),
    };

    header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, authorization, sizeof(authorization));
    header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, content_type, sizeof(content_type));
    if (t->body) {
        t->body[t->body_len] = '\0';
    }
    if (sim_control_is_control(t->path)) {
        query(wsi, args, sizeof(args));
        sim_control_handle(s, &rq, &t->ans);
    } else {
        /* Only the webhook API reads a query (update_mask); sends skip the work. */
        enum sim_endpoint ep = sim_api_endpoint(t->path);
        args[0] = '\0';
        if (ep == SIM_EP_WEBHOOKS) {
            query(wsi, args, sizeof(args));
        }
        handle_sinch(s, &rq, t, ep);
    }
    return answer(wsi, t);
}

/* Refuses a request whose body we will not read (no length, too long): answers at once. */
static int refuse(struct lws *wsi, struct txn *t, int status, const char *why)
{
    sim_answer_error(&t->ans, status, why, NULL, NULL);
    return write_answer(wsi, t);
}

/* LWS_CALLBACK_HTTP: the headers are in. Requests without a body are handled now; others
 * get their buffer, sized once from Content-Length. */
static int on_headers(struct lws *wsi, struct txn *t, const char *uri, size_t len)
{
    char value[32];

    t->wsi = wsi;
    set_method(t, wsi);
    header(wsi, WSI_TOKEN_HTTP, value, sizeof(value));
    t->http10 = strcmp(value, "HTTP/1.0") == 0;
    header(wsi, WSI_TOKEN_CONNECTION, value, sizeof(value));
    t->keepalive10 = t->http10 && strcasecmp(value, "keep-alive") == 0;
    if (len >= sizeof(t->path)) {
        len = sizeof(t->path) - 1;
    }
    memcpy(t->path, uri, len);
    t->path[len] = '\0';
    if (t->method != SIM_POST && t->method != SIM_PUT && t->method != SIM_PATCH) {
        return dispatch(wsi, t);
    }
    header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, value, sizeof(value));
    if (!value[0]) {
        /* lws 4.1 reads a bodiless POST as "100 MB to come" and has no chunked request bodies:
         * answer, then close, since lws would take the next request for this one's body. */
        t->close_after = true;
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
            return refuse(wsi, t, 411, "Length Required: send a Content-Length, not chunks");
        }
        return dispatch(wsi, t);
    }
    char *end;
    errno = 0;
    unsigned long long cl = strtoull(value, &end, 10);
    if (*end || errno || value[0] == '-') {
        t->close_after = true;
        return refuse(wsi, t, 400, "Bad Request: Content-Length is not a number");
    }
    if (cl > SIM_BODY_MAX) {
        /* Answered before the body; lws then discards the body and keeps the connection. */
        return refuse(wsi, t, 413, "Payload Too Large: the limit is 4 MiB");
    }
    t->body = malloc((size_t)cl + 1);
    if (!t->body) {
        return -1;
    }
    t->body_cap = (size_t)cl;
    header(wsi, WSI_TOKEN_HTTP_EXPECT, value, sizeof(value));
    if (strcasecmp(value, "100-continue") == 0) {
        /* libcurl waits a second for this before sending a large body; lws does not send it. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        unsigned char buf[LWS_PRE + sizeof(cont)];
        memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
        if (lws_write(wsi, buf + LWS_PRE, sizeof(cont) - 1, LWS_WRITE_HTTP_HEADERS) !=
            (int)sizeof(cont) - 1) {
            return -1;
        }
    }
    return 0;
}

static int on_body(struct txn *t, const void *in, size_t len)
{
    if (!t->body || !in) {
        return 0; /* a body we refused, or the empty call lws makes for Content-Length: 0 */
    }
    if (len > t->body_cap - t->body_len) {
        len = t->body_cap - t->body_len;
    }
    memcpy(t->body + t->body_len, in, len);
    t->body_len += len;
    return 0;
}

/* An Upgrade header. lws 4.1 serves h2c for requests without a body, but an upgrading POST
 * never reaches us (its body is lost in the switch), and we speak no WebSocket: those get a 400
 * that says why, and the connection is closed. */
static int confirm_upgrade(struct lws *wsi, const char *protocol)
{
    static const char body[] =
        "{\"error\":{\"code\":400,\"message\":\"sinch-sim speaks HTTP/1.1 (h2c only without a "
        "request body): do not send Upgrade here\",\"status\":\"INVALID_ARGUMENT\","
        "\"details\":[]}}";
    unsigned char buf[LWS_PRE + sizeof(body) + 160];
    char value[32];

    header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, value, sizeof(value));
    bool has_body = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 ||
                    lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0 ||
                    lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI) > 0 ||
                    (value[0] && strcmp(value, "0") != 0);
    if (strcasecmp(protocol, "h2c") == 0 && !has_body) {
        return 0;
    }
    int n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
                     "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\nconnection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
    if (n > 0 && (size_t)n < sizeof(buf) - LWS_PRE) {
        lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL);
    }
    return -1;
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
        return dispatch(wsi, t);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(wsi, in);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (t && t->waiting) {
            t->waiting = false;
            return write_answer(wsi, t);
        }
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (t) {
            txn_release(t);
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols sim_http_protocol = {
    .name = "sinch-sim",
    .callback = callback,
    .per_session_data_size = sizeof(struct txn),
};
