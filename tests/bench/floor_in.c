/* floor_in: the least an inbound bridge can do with the bridge's libraries, for run.py --floor.
 * A benchmark yardstick, not a product: no store, no JSON parser, no dedupe; only the mandatory
 * message flow of the webhook contract, on one thread (libwebsockets 4.1's service loop, as the
 * bridge's) plus paho's:
 *   a POST on the webhook path (--path, the bridge's default /webhooks/sinch) of a libwebsockets
 *   HTTP listener on 127.0.0.1, its body read whole (at most 1 MiB, the bridge's limit);
 *   its signature checked by the bridge's own adapters/webhook/signature.c (the 300 s window of
 *   BRIDGE_WEBHOOK_MAX_SKEW's default) and the algorithm header as the bridge checks it: 401 if
 *   either fails;
 *   the message id, the sender and the channel found by text lookup, and the event published
 *   QoS 1 with paho MQTTAsync (MQTT 5, clean start) on <prefix>/inbound/<channel>/<sender> as
 *   {"message_id":..,"from":..,"webhook":<the body as received>}: the id is what mqtt_load count
 *   counts, the body is the event's content;
 *   200 once paho has the publish (not its PUBACK: no store stands behind the answer).
 * Prints "ready" once it listens and is connected; on SIGTERM or SIGINT it stops and prints its
 * counts on stderr. */
#include <ctype.h>
#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/signature.h"
#include "floor_mqtt.h"

#define BODY_MAX         (1024UL * 1024) /* the bridge's SB_WEBHOOK_BODY_MAX */
#define MAX_SKEW_S       300             /* BRIDGE_WEBHOOK_MAX_SKEW's default */
#define DEFAULT_WINDOW   1000 /* QoS 1 events in flight: run.py's BRIDGE_MQTT_MAX_INFLIGHT */
#define HEADER_VALUE_MAX 256
#define TOPIC_MAX        512
#define ANSWER_MAX       256

struct options {
    int port;
    int broker_port;
    const char *secret;
    const char *path;
    const char *prefix;
    long window;
};

struct floor_in {
    const struct options *o;
    struct floor_mqtt mqtt;
    struct lws_context *ctx;
    long published; /* answered 200 */
    long refused;   /* answered anything else */
};

/* One HTTP transaction: lws's per-session data, zeroed for each request on a connection. */
struct txn {
    char *body; /* the webhook's body, while it is read; owned */
    size_t len;
    size_t cap; /* its Content-Length */
};

static volatile sig_atomic_t stopping;
static struct lws_context *service_ctx; /* for the signal handler */

static struct floor_in *floor_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- answers ---- */

static const char *reason(int status)
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
    case 413:
        return "Payload Too Large";
    default:
        return "Service Unavailable";
    }
}

/* Status line, headers and body in one write, then the transaction ends; an answer to anything
 * but a well-formed request also closes the connection. Returns what the callback returns. */
static int answer(struct lws *wsi, int status, const char *body)
{
    unsigned char buf[LWS_PRE + ANSWER_MAX];
    char *start = (char *)buf + LWS_PRE;
    size_t body_len = strlen(body);
    int n = snprintf(start, ANSWER_MAX,
                     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: "
                     "%zu\r\n%s\r\n%s",
                     status, reason(status), body_len, status == 200 ? "" : "connection: close\r\n",
                     body);

    if (n < 0 || n >= ANSWER_MAX) {
        return -1;
    }
    floor_of(wsi)->published += status == 200;
    floor_of(wsi)->refused += status != 200;
    if (lws_write(wsi, (unsigned char *)start, (size_t)n, LWS_WRITE_HTTP_FINAL) != n ||
        status != 200) {
        return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- the webhook ---- */

/* A custom header's value into buf, or NULL when absent, empty or too long. */
static const char *header(struct lws *wsi, const char *name, char *buf)
{
    int name_len = (int)strlen(name);
    int n = lws_hdr_custom_length(wsi, name, name_len);

    if (n <= 0 || n >= HEADER_VALUE_MAX ||
        lws_hdr_custom_copy(wsi, buf, HEADER_VALUE_MAX, name, name_len) < 0) {
        return NULL;
    }
    return buf;
}

/* What the bridge checks before it looks at the body: the signature and, when sent, the
 * algorithm. */
static bool signed_by_sinch(struct lws *wsi, const struct txn *t, const char *secret)
{
    char nonce[HEADER_VALUE_MAX];
    char ts[HEADER_VALUE_MAX];
    char sig[HEADER_VALUE_MAX];
    char alg[HEADER_VALUE_MAX];
    const char *algorithm = header(wsi, "x-sinch-webhook-signature-algorithm:", alg);

    if (sb_signature_verify(secret, t->body, t->len,
                            header(wsi, "x-sinch-webhook-signature-nonce:", nonce),
                            header(wsi, "x-sinch-webhook-signature-timestamp:", ts),
                            header(wsi, "x-sinch-webhook-signature:", sig), (int64_t)time(NULL),
                            MAX_SKEW_S) != SB_SIG_OK) {
        return false;
    }
    return !algorithm || strcmp(algorithm, "HmacSHA256") == 0;
}

/* A topic level: not empty, no wildcard, no separator, and not too long. */
static bool topic_level(const char *s, size_t len)
{
    if (len == 0 || len > 64) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/' || s[i] == '+' || s[i] == '#' || s[i] == '\\') {
            return false;
        }
    }
    return true;
}

/* <prefix>/inbound/<channel in lower case>/<sender>, as the bridge names it. The parts are
 * checked topic levels of at most 64 characters, and the prefix at most TOPIC_MAX / 4. */
static void event_topic(char topic[TOPIC_MAX], const char *prefix, const char *channel,
                        size_t channel_len, const char *from, size_t from_len)
{
    int n = snprintf(topic, TOPIC_MAX, "%s/inbound/", prefix);

    for (size_t i = 0; i < channel_len; i++) {
        topic[n++] = (char)tolower((unsigned char)channel[i]);
    }
    snprintf(topic + n, TOPIC_MAX - (size_t)n, "/%.*s", (int)from_len, from);
}

/* Publishes the event of a verified webhook; returns the HTTP status to answer. */
static int publish_event(struct floor_in *f, const struct txn *t)
{
    const char *id, *from, *channel;
    size_t id_len, from_len, channel_len;
    char topic[TOPIC_MAX];
    size_t cap = t->len + 128 + HEADER_VALUE_MAX;
    char *payload;
    int n;
    int rc;

    if (!floor_json_field(t->body, t->len, "id", &id, &id_len) || id_len > HEADER_VALUE_MAX ||
        !floor_json_field(t->body, t->len, "identity", &from, &from_len) ||
        !topic_level(from, from_len) ||
        !floor_json_field(t->body, t->len, "channel", &channel, &channel_len) ||
        !topic_level(channel, channel_len)) {
        return 400;
    }
    event_topic(topic, f->o->prefix, channel, channel_len, from, from_len);
    payload = malloc(cap);
    if (!payload) {
        return 503;
    }
    n = snprintf(payload, cap,
                 "{\"message_id\":\"%.*s\",\"from\":\"%.*s\",\"webhook\":", (int)id_len, id,
                 (int)from_len, from);
    memcpy(payload + n, t->body, t->len);
    payload[n + t->len] = '}';
    rc = floor_mqtt_publish(&f->mqtt, topic, payload, (size_t)n + t->len + 1);
    free(payload);
    return rc == 0 ? 200 : 503;
}

/* LWS_CALLBACK_HTTP: the headers are in. Only a POST on the webhook path with a body within the
 * limit gets further. */
static int on_headers(struct lws *wsi, struct txn *t, const char *uri, size_t len)
{
    const struct floor_in *f = floor_of(wsi);
    char *u;
    int u_len;
    char value[32];
    char *end;
    unsigned long cl;

    if (strlen(f->o->path) != len || memcmp(uri, f->o->path, len) != 0 ||
        lws_http_get_uri_and_method(wsi, &u, &u_len) != LWSHUMETH_POST) {
        return answer(wsi, 404, "{\"error\":\"not found\"}");
    }
    if (lws_hdr_copy(wsi, value, sizeof(value), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
        return answer(wsi, 400, "{\"error\":\"a Content-Length is required\"}");
    }
    errno = 0;
    cl = strtoul(value, &end, 10);
    if (errno || *end || value[0] == '-' || cl == 0) {
        return answer(wsi, 400, "{\"error\":\"bad Content-Length\"}");
    }
    if (cl > BODY_MAX) {
        return answer(wsi, 413, "{\"error\":\"body larger than 1 MiB\"}");
    }
    t->body = malloc(cl);
    if (!t->body) {
        return -1;
    }
    t->cap = cl;
    t->len = 0;
    return 0;
}

static void on_body(struct txn *t, const void *in, size_t len)
{
    if (!t->body || !in) {
        return;
    }
    if (len > t->cap - t->len) {
        len = t->cap - t->len;
    }
    memcpy(t->body + t->len, in, len);
    t->len += len;
}

static int on_body_complete(struct lws *wsi, struct txn *t)
{
    struct floor_in *f = floor_of(wsi);
    int status;

    if (!t->body) {
        return -1;
    }
    status = signed_by_sinch(wsi, t, f->o->secret) ? publish_event(f, t) : 401;
    free(t->body);
    t->body = NULL;
    return answer(wsi, status,
                  status == 200   ? "{\"status\":\"ok\"}"
                  : status == 401 ? "{\"error\":\"signature\"}"
                                  : "{\"error\":\"refused\"}");
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason_, void *user, void *in,
                    size_t len)
{
    struct txn *t = user;

    switch (reason_) {
    case LWS_CALLBACK_HTTP:
        return on_headers(wsi, t, in, len);
    case LWS_CALLBACK_HTTP_BODY:
        on_body(t, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_complete(wsi, t);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (t) {
            free(t->body);
            t->body = NULL;
        }
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return -1; /* no websockets */
    default:
        return lws_callback_http_dummy(wsi, reason_, user, in, len);
    }
}

/* ---- start and stop ---- */

static const struct lws_protocols protocols[] = {
    {.name = "floor-in", .callback = callback, .per_session_data_size = sizeof(struct txn)},
    {0},
};

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    if (service_ctx) {
        lws_cancel_service(service_ctx); /* a write to lws's event pipe */
    }
}

/* The listener, set up as the bridge sets up its loop's context and its listener's vhost. */
static int listen_on(struct floor_in *f)
{
    struct lws_context_creation_info info;

    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    memset(&info, 0, sizeof(info));
    info.port = f->o->port;
    info.iface = "127.0.0.1";
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    info.protocols = protocols;
    info.user = f;
    info.max_http_header_data = 8192;
    info.max_http_header_pool = 64;
    info.timeout_secs = 10;
    info.keepalive_timeout = 30;
    f->ctx = lws_create_context(&info);
    if (!f->ctx) {
        fprintf(stderr, "floor_in: cannot listen on 127.0.0.1:%d\n", f->o->port);
        return -1;
    }
    service_ctx = f->ctx;
    return 0;
}

/* ---- command line ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: floor_in --port P --broker-port B --secret S [--path /webhooks/sinch]\n"
            "                [--prefix sinch] [--window W]\n"
            "Takes signed webhooks on 127.0.0.1:P, answers 200 and publishes each QoS 1 on\n"
            "<prefix>/inbound/<channel>/<sender>. A benchmark yardstick (run.py --floor).\n");
    exit(2);
}

static long number(const char *s)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0) {
        fprintf(stderr, "floor_in: not a positive number: %s\n", s);
        usage();
    }
    return v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
        }
        if (strcmp(a, "--port") == 0) {
            o->port = (int)number(v);
        } else if (strcmp(a, "--broker-port") == 0) {
            o->broker_port = (int)number(v);
        } else if (strcmp(a, "--secret") == 0) {
            o->secret = v;
        } else if (strcmp(a, "--path") == 0) {
            o->path = v;
        } else if (strcmp(a, "--prefix") == 0) {
            o->prefix = v;
        } else if (strcmp(a, "--window") == 0) {
            o->window = number(v);
        } else {
            usage();
        }
    }
    if (o->port <= 0 || o->port > 65535 || o->broker_port <= 0 || o->broker_port > 65535 ||
        !o->secret || !o->secret[0] || strlen(o->prefix) > TOPIC_MAX / 4) {
        usage();
    }
}

int main(int argc, char **argv)
{
    struct options o = {.path = "/webhooks/sinch", .prefix = "sinch", .window = DEFAULT_WINDOW};
    struct floor_in f = {.o = &o};
    struct sigaction sa;
    sigset_t stop_signals;

    parse_args(argc, argv, &o);
    /* paho's threads start with the stop signals blocked: only this thread takes them. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (floor_mqtt_connect(&f.mqtt, o.broker_port, "floor-in", o.window, NULL, NULL) != 0 ||
        listen_on(&f) != 0) {
        fprintf(stderr, "floor_in: cannot start\n");
        _exit(2); /* paho's threads may be running: no orderly exit */
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
    printf("ready\n");
    fflush(stdout);
    while (!stopping && lws_service(f.ctx, 0) >= 0) {
    }
    service_ctx = NULL;
    lws_context_destroy(f.ctx);
    floor_mqtt_close(&f.mqtt, 2);
    fprintf(stderr, "floor_in: answered_200=%ld refused=%ld events_acked=%ld events_failed=%ld\n",
            f.published, f.refused, f.mqtt.acked, f.mqtt.failed);
    return 0;
}
