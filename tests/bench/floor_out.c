/* floor_out: the least an outbound bridge can do with the bridge's libraries, for run.py --floor.
 * A benchmark yardstick, not a product: no store, no JSON parser, no dedupe, no retry, no
 * rate limit; only the mandatory message flow of the outbound contract:
 *   a QoS 1 command on <prefix>/send/<recipient> (plain text) or <prefix>/send (JSON with "id",
 *   "to" and "text") arrives through paho MQTTAsync (MQTT 5, clean start), acknowledged by paho
 *   when the handler returns;
 *   a POST to sinch-sim's /v1/projects/<project>/messages:send with a fixed request body, the
 *   recipient and the text put in, over libcurl multi on a thread of its own, with kept-alive
 *   connections (at most --connections, the bridge's BRIDGE_SINCH_CONNECTIONS default of 16) and
 *   basic auth with the key;
 *   on the 200, a QoS 1 outcome on <prefix>/sent (another answer: one on <prefix>/error).
 * paho's receive thread hands each command to the curl thread through a mutex-guarded queue,
 * waking it with curl_multi_wakeup() only when the queue was empty (the thread takes all of it at
 * each turn); the curl thread publishes the outcomes itself. Prints "ready" once subscribed; on
 * SIGTERM or SIGINT it stops and prints its counts on stderr. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "floor_mqtt.h"

#define DEFAULT_CONNECTIONS 16   /* BRIDGE_SINCH_CONNECTIONS' default */
#define DEFAULT_WINDOW      1000 /* QoS 1 outcomes in flight: run.py's BRIDGE_MQTT_MAX_INFLIGHT */
#define TEXT_MAX            4096 /* a longer command is answered on <prefix>/error, never sent */
#define ANSWER_MAX          512  /* of sinch-sim's answer, what is kept to find the message id */
#define FIELD_MAX           128  /* an id, a recipient, a topic */
#define POLL_IDLE_MS        1000
#define REQUEST_TIMEOUT_S   30

struct options {
    int broker_port;
    const char *sim_url;
    const char *project;
    const char *app;
    const char *key_id;
    const char *key_secret;
    const char *prefix;
    long connections;
    long window;
};

/* One command, from its arrival to its outcome. A job without a body (body_len 0) is a command
 * nothing can be sent for: the curl thread answers it on <prefix>/error. */
struct job {
    struct job *next;
    char id[FIELD_MAX]; /* the command's id, or one of ours for a plain-text command */
    char to[FIELD_MAX]; /* the recipient, digits without the '+' */
    size_t body_len;
    char body[]; /* the messages:send request */
};

/* One request in flight: an easy handle set up once and reused, and the start of the answer. */
struct slot {
    CURL *easy;
    struct job *job;
    char answer[ANSWER_MAX];
    size_t answer_len;
};

struct floor_out {
    const struct options *o;
    struct floor_mqtt mqtt;
    char send_prefix[FIELD_MAX]; /* "<prefix>/send" */
    char sent_topic[FIELD_MAX];
    char error_topic[FIELD_MAX];
    CURLM *multi;
    pthread_t thread;

    pthread_mutex_t lock;
    struct job *in_head; /* {lock} arrived, not yet taken by the curl thread */
    struct job *in_tail; /* {lock} */
    bool stop;           /* {lock} */
    long received;       /* {lock} */

    /* The curl thread's own. */
    struct job *backlog; /* taken from the queue, waiting for a free slot */
    struct job *backlog_tail;
    struct slot *slots; /* as many as requests may be in flight */
    long n_slots;
    struct slot **idle; /* the slots without a request */
    long n_idle;
    struct curl_slist *headers;
    char url[512];
    long accepted; /* answered 200 */
    long refused;  /* commands nothing could be sent for */
    long rejected; /* any other answer, or none */
};

/* ---- building the request (paho's receive thread) ---- */

/* The request body: app id, recipient, then the text (the content of a JSON string) and TAIL. */
static const char BODY_HEAD[] =
    "{\"app_id\":\"%s\",\"recipient\":{\"identified_by\":{"
    "\"channel_identities\":[{\"channel\":\"WHATSAPP\","
    "\"identity\":\"%s\"}]}},\"message\":{\"text_message\":{\"text\":\"";
static const char BODY_TAIL[] = "\"}}}";

/* Writes s[0..len) into out as the content of a JSON string; returns the length written. out has
 * room for 6 * len bytes, the longest escape. */
static size_t json_escape(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* A recipient as the request wants it, into out: digits, the '+' dropped. */
static bool recipient(char out[FIELD_MAX], const char *to, size_t len)
{
    if (len > 0 && to[0] == '+') {
        to++;
        len--;
    }
    if (len == 0 || len >= FIELD_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (to[i] < '0' || to[i] > '9') {
            return false;
        }
    }
    memcpy(out, to, len);
    out[len] = '\0';
    return true;
}

/* What a command says: where to, what, and its id (NULL for a plain-text one). */
struct command {
    const char *to, *text, *id;
    size_t to_len, text_len, id_len;
    bool escape; /* text is raw bytes, not yet the content of a JSON string */
};

/* Plain text on <prefix>/send/<recipient>, or JSON with "to", "text" and maybe "id" on
 * <prefix>/send. Returns false when it is neither. */
static bool read_command(const struct floor_out *f, const char *topic, const char *payload,
                         size_t len, struct command *c)
{
    size_t plen = strlen(f->send_prefix);

    memset(c, 0, sizeof(*c));
    if (topic[plen] == '/') {
        c->to = topic + plen + 1;
        c->to_len = strlen(c->to);
        c->text = payload;
        c->text_len = len;
        c->escape = true;
        return true;
    }
    if (!floor_json_field(payload, len, "to", &c->to, &c->to_len) ||
        !floor_json_field(payload, len, "text", &c->text, &c->text_len)) {
        return false;
    }
    if (!floor_json_field(payload, len, "id", &c->id, &c->id_len) || c->id_len >= FIELD_MAX) {
        c->id = NULL;
    }
    return true;
}

/* The job of a command: its request body written out. NULL when nothing can be sent for it. */
static struct job *job_new(const struct floor_out *f, const struct command *c, long seq)
{
    char to[FIELD_MAX];
    size_t text_cap = c->escape ? 6 * c->text_len : c->text_len;
    size_t cap = sizeof(BODY_HEAD) + strlen(f->o->app) + FIELD_MAX + text_cap + sizeof(BODY_TAIL);
    struct job *j;
    int n;

    if (c->text_len > TEXT_MAX || !recipient(to, c->to, c->to_len) ||
        !(j = malloc(sizeof(*j) + cap))) {
        return NULL;
    }
    j->next = NULL;
    memcpy(j->to, to, sizeof(to));
    if (c->id) {
        memcpy(j->id, c->id, c->id_len);
        j->id[c->id_len] = '\0';
    } else {
        snprintf(j->id, sizeof(j->id), "floor-%ld", seq);
    }
    n = snprintf(j->body, cap, BODY_HEAD, f->o->app, to);
    if (c->escape) {
        j->body_len = (size_t)n + json_escape(j->body + n, c->text, c->text_len);
    } else {
        memcpy(j->body + n, c->text, c->text_len);
        j->body_len = (size_t)n + c->text_len;
    }
    memcpy(j->body + j->body_len, BODY_TAIL, sizeof(BODY_TAIL));
    j->body_len += sizeof(BODY_TAIL) - 1;
    return j;
}

/* Publishes the answer to a command that never got to Sinch, or that Sinch refused. Thread: curl.
 */
static void publish_error(struct floor_out *f, const char *id, const char *why)
{
    char payload[FIELD_MAX * 2];
    int n = snprintf(payload, sizeof(payload), "{\"id\":\"%s\",\"error\":\"%s\"}", id, why);
    floor_mqtt_publish(&f->mqtt, f->error_topic, payload, (size_t)n);
}

/* paho's receive thread: queue the command for the curl thread. Returning 1 lets paho
 * acknowledge it. */
static int on_command(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct floor_out *f = context;
    struct command c;
    struct job *j = NULL;
    long seq;
    bool wake;
    (void)topic_len;

    pthread_mutex_lock(&f->lock);
    seq = f->received++;
    pthread_mutex_unlock(&f->lock);
    if (read_command(f, topic, msg->payload, (size_t)msg->payloadlen, &c)) {
        j = job_new(f, &c, seq);
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    /* Its error is published by the curl thread: a publish here, on the thread that reads the
     * PUBACKs, could wait for a window only that thread can open. */
    if (!j && (j = calloc(1, sizeof(*j) + 1)) != NULL) {
        snprintf(j->id, sizeof(j->id), "floor-%ld", seq);
    }
    if (!j) {
        return 1; /* out of memory: counted as not sent at the end */
    }
    pthread_mutex_lock(&f->lock);
    wake = f->in_tail == NULL;
    if (f->in_tail) {
        f->in_tail->next = j;
    } else {
        f->in_head = j;
    }
    f->in_tail = j;
    pthread_mutex_unlock(&f->lock);
    if (wake) {
        curl_multi_wakeup(f->multi);
    }
    return 1;
}

/* ---- the curl thread ---- */

static size_t on_answer(char *data, size_t size, size_t n, void *arg)
{
    struct slot *s = arg;
    size_t len = size * n;
    size_t room = sizeof(s->answer) - s->answer_len;
    size_t take = len < room ? len : room;

    memcpy(s->answer + s->answer_len, data, take);
    s->answer_len += take;
    return len;
}

/* A slot's easy handle with everything but the request's own options set, once. */
static CURL *easy_new(const struct floor_out *f, struct slot *s)
{
    CURL *e = curl_easy_init();

    if (!e) {
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_URL, f->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, f->o->key_id);
    curl_easy_setopt(e, CURLOPT_PASSWORD, f->o->key_secret);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)REQUEST_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)s);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)s);
    return e;
}

/* Hands backlog jobs to curl while a slot is free. */
static void launch(struct floor_out *f)
{
    while (f->backlog && f->n_idle > 0) {
        struct job *j = f->backlog;
        struct slot *s;

        f->backlog = j->next;
        if (!f->backlog) {
            f->backlog_tail = NULL;
        }
        if (j->body_len == 0) {
            f->refused++;
            publish_error(f, j->id, "not a command this floor takes");
            free(j);
            continue;
        }
        s = f->idle[--f->n_idle];
        s->job = j;
        s->answer_len = 0;
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, (const char *)j->body);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)j->body_len);
        curl_multi_add_handle(f->multi, s->easy);
    }
}

/* The outcome of a finished request: on <prefix>/sent with sinch-sim's message id, or an error. */
static void finish(struct floor_out *f, CURL *e, CURLcode result)
{
    struct slot *s = NULL;
    const struct job *j;
    long status = 0;
    const char *mid = NULL;
    size_t mid_len = 0;

    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(f->multi, e);
    j = s->job;
    if (result == CURLE_OK && status == 200 &&
        floor_json_field(s->answer, s->answer_len, "message_id", &mid, &mid_len) &&
        mid_len < FIELD_MAX) {
        char payload[FIELD_MAX * 4];
        int n = snprintf(payload, sizeof(payload),
                         "{\"id\":\"%s\",\"message_id\":\"%.*s\",\"to\":\"+%s\"}", j->id,
                         (int)mid_len, mid, j->to);
        f->accepted++;
        floor_mqtt_publish(&f->mqtt, f->sent_topic, payload, (size_t)n);
    } else {
        char why[64];
        f->rejected++;
        snprintf(why, sizeof(why), "%s", result != CURLE_OK ? curl_easy_strerror(result) : "");
        if (result == CURLE_OK) {
            snprintf(why, sizeof(why), "HTTP %ld", status);
        }
        publish_error(f, j->id, why);
    }
    free(s->job);
    s->job = NULL;
    f->idle[f->n_idle++] = s; /* after the publish: the answer was read from it */
}

/* Takes what paho queued onto the end of the backlog; returns whether to stop. */
static bool take_queue(struct floor_out *f)
{
    struct job *in;
    bool stopping;

    pthread_mutex_lock(&f->lock);
    in = f->in_head;
    f->in_head = f->in_tail = NULL;
    stopping = f->stop;
    pthread_mutex_unlock(&f->lock);
    if (in) {
        if (f->backlog_tail) {
            f->backlog_tail->next = in;
        } else {
            f->backlog = in;
        }
        while (in->next) {
            in = in->next;
        }
        f->backlog_tail = in;
    }
    return stopping;
}

static void *curl_thread(void *arg)
{
    struct floor_out *f = arg;

    prctl(PR_SET_NAME, "curl"); /* its own name in run.py's threads row */
    while (!take_queue(f)) {
        const CURLMsg *m;
        int running;
        int queued;
        int done = 0;

        launch(f);
        curl_multi_perform(f->multi, &running);
        while ((m = curl_multi_info_read(f->multi, &queued)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                finish(f, m->easy_handle, m->data.result);
                done++;
            }
        }
        /* Requests finished: start the next ones at once rather than after a poll. */
        if (done == 0) {
            curl_multi_poll(f->multi, NULL, 0, POLL_IDLE_MS, NULL);
        }
    }
    return NULL;
}

/* ---- start and stop ---- */

static int start(struct floor_out *f)
{
    const struct options *o = f->o;

    snprintf(f->send_prefix, sizeof(f->send_prefix), "%s/send", o->prefix);
    snprintf(f->sent_topic, sizeof(f->sent_topic), "%s/sent", o->prefix);
    snprintf(f->error_topic, sizeof(f->error_topic), "%s/error", o->prefix);
    snprintf(f->url, sizeof(f->url), "%s/v1/projects/%s/messages:send", o->sim_url, o->project);
    pthread_mutex_init(&f->lock, NULL);
    /* As the bridge: twice as many requests handed to curl as it has connections, so that a
     * connection finds its next request waiting. */
    f->n_slots = 2 * o->connections;
    f->slots = calloc((size_t)f->n_slots, sizeof(*f->slots));
    f->idle = calloc((size_t)f->n_slots, sizeof(struct slot *));
    f->headers = curl_slist_append(NULL, "Content-Type: application/json");
    f->headers = curl_slist_append(f->headers, "Accept: application/json");
    f->headers = curl_slist_append(f->headers, "Expect:"); /* no 100-continue round trip */
    f->multi = curl_multi_init();
    if (!f->slots || !f->idle || !f->headers || !f->multi) {
        return -1;
    }
    for (; f->n_idle < f->n_slots; f->n_idle++) {
        struct slot *s = &f->slots[f->n_idle];
        if (!(s->easy = easy_new(f, s))) {
            return -1;
        }
        f->idle[f->n_idle] = s;
    }
    curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, o->connections);
    curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->connections);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, o->connections);
    if (pthread_create(&f->thread, NULL, curl_thread, f) != 0) {
        return -1;
    }
    /* The curl thread is there before the first command can arrive. */
    return floor_mqtt_connect(&f->mqtt, o->broker_port, "floor-out", o->window, on_command, f);
}

static void stop(struct floor_out *f)
{
    struct job *j;

    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_mutex_unlock(&f->lock);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    floor_mqtt_close(&f->mqtt, 2);
    /* What is left was never sent. */
    while ((j = f->backlog) != NULL) {
        f->backlog = j->next;
        free(j);
    }
    while ((j = f->in_head) != NULL) {
        f->in_head = j->next;
        free(j);
    }
    for (long i = 0; i < f->n_slots; i++) {
        if (f->slots[i].job) {
            curl_multi_remove_handle(f->multi, f->slots[i].easy);
            free(f->slots[i].job);
        }
        curl_easy_cleanup(f->slots[i].easy);
    }
    free(f->slots);
    free(f->idle);
    curl_slist_free_all(f->headers);
    curl_multi_cleanup(f->multi);
}

/* ---- command line ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: floor_out --broker-port P --sim-url URL [--project ID] [--app ID]\n"
            "                 [--key-id ID] [--key-secret S] [--prefix P] [--connections N]\n"
            "                 [--window W]\n"
            "Takes QoS 1 commands on <prefix>/send/#, POSTs each to URL's messages:send and\n"
            "publishes its outcome on <prefix>/sent. A benchmark yardstick (run.py --floor).\n");
    exit(2);
}

static long number(const char *s)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0) {
        fprintf(stderr, "floor_out: not a positive number: %s\n", s);
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
        if (strcmp(a, "--broker-port") == 0) {
            o->broker_port = (int)number(v);
        } else if (strcmp(a, "--sim-url") == 0) {
            o->sim_url = v;
        } else if (strcmp(a, "--project") == 0) {
            o->project = v;
        } else if (strcmp(a, "--app") == 0) {
            o->app = v;
        } else if (strcmp(a, "--key-id") == 0) {
            o->key_id = v;
        } else if (strcmp(a, "--key-secret") == 0) {
            o->key_secret = v;
        } else if (strcmp(a, "--prefix") == 0) {
            o->prefix = v;
        } else if (strcmp(a, "--connections") == 0) {
            o->connections = number(v);
        } else if (strcmp(a, "--window") == 0) {
            o->window = number(v);
        } else {
            usage();
        }
    }
    if (o->broker_port > 65535 || !o->sim_url || strlen(o->prefix) > FIELD_MAX / 2) {
        usage();
    }
}

int main(int argc, char **argv)
{
    struct options o = {.project = "sim-project",
                        .app = "sim-app",
                        .key_id = "sim-key",
                        .key_secret = "sim-secret",
                        .prefix = "sinch",
                        .connections = DEFAULT_CONNECTIONS,
                        .window = DEFAULT_WINDOW};
    struct floor_out f = {.o = &o};
    sigset_t stop_signals;
    char filter[FIELD_MAX];
    int sig = 0;

    parse_args(argc, argv, &o);
    /* Blocked before any thread starts, so that only sigwait() below sees them. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    snprintf(filter, sizeof(filter), "%s/send/#", o.prefix);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || start(&f) != 0 ||
        floor_mqtt_subscribe(&f.mqtt, filter) != 0) {
        fprintf(stderr, "floor_out: cannot start\n");
        _exit(2); /* threads may be running: no orderly exit */
    }
    printf("ready\n");
    fflush(stdout);
    sigwait(&stop_signals, &sig);
    stop(&f);
    fprintf(stderr,
            "floor_out: received=%ld accepted=%ld rejected=%ld refused=%ld outcomes_acked=%ld "
            "outcomes_failed=%ld\n",
            f.received, f.accepted, f.rejected, f.refused, f.mqtt.acked, f.mqtt.failed);
    curl_global_cleanup();
    return 0;
}
