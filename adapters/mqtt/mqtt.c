/* paho MQTTAsync behind sb_mqtt: connection options from the config, the will and the retained
 * state/info, subscriptions on every (re)connection, and callbacks translated into our handlers.
 * Runs on paho's threads except sb_mqtt_new/start/stop/free and replacing a client (the loop).
 *
 * paho 1.3 (at least 1.3.11 to 1.3.13) has a use-after-free that this file works around. When the
 * first write of a QoS 1 PUBLISH fails outright (EPIPE, ECONNRESET: the broker closed the
 * connection a moment before; a broker restart in the middle of a burst does it), paho calls the
 * publish's onFailure and frees the command's topic and payload (MQTTAsync_processCommand, the
 * SOCKET_ERROR branch), but the copy of the message it keeps in its in-flight list, to resend after
 * a reconnection, still points at them. After the reconnection it resends freed memory: the broker
 * drops the connection ("malformed packet") and does again at every reconnection, for good; or it
 * takes the garbage and publishes it, and its PUBACK makes paho free the memory a second time.
 * Such a client must never reconnect nor be destroyed. So a publish failing that way poisons its
 * client: automatic reconnection is switched off when its connection is lost, the client is
 * abandoned (a bounded leak: its in-flight and queued messages), the publishes it still owed a
 * result are reported failed (their owners publish them again), and a new client takes over with
 * the same client id and the broker's persistent session.
 *
 * The publish window. paho's send thread sends a queued publish when a new command wakes it or
 * after a second of sleep; a PUBACK that makes room in its in-flight window (maxInflight, our
 * BRIDGE_MQTT_MAX_INFLIGHT) does not wake it. A backlog handed to paho at once (an inbox after a
 * broker outage) would drain one window a second: 20 messages a second at the default. So this
 * file hands paho no more publishes than its window holds and keeps the rest in a queue of its
 * own; each result that frees a slot posts to the loop, which hands over the next ones (every
 * hand-over is a new command, which wakes paho's send thread at once). The queue is never
 * handed over from paho's callbacks: paho calls them holding its own (error-checking) mutex. */
#include "adapters/mqtt.h"

#include <MQTTAsync.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge/log.h"

#define SESSION_EXPIRY_S (7 * 24 * 3600) /* PRODUCT.md: the session outlives a week's outage */
#define KEEPALIVE_S      30
#define MAX_BUFFERED     (1 << 20) /* paho counts queued publishes even while connected */
#define RETRY_FIRST_MS   2000
#define TOPIC_MAX        512

struct pub_ctx;
static void pump(void *arg);

/* A publish waiting for a slot in the window: a copy of what sb_mqtt_publish() was given. */
struct queued {
    struct queued *next;
    char *topic;
    void *payload;
    size_t len;
    bool retain;
    void *correlation;
    size_t correlation_len;
    uint64_t tag;
};

struct sb_mqtt {
    const struct sb_config *cfg;
    struct sb_loop *loop;
    struct sb_mqtt_handlers handlers;
    void *arg;
    char *uri;                 /* MQTT_URL in paho's spelling */
    _Atomic(MQTTAsync) client; /* replaced (on the loop) only when poisoned, see the top */
    atomic_int poison;         /* of `client`: enum poison */
    pthread_mutex_t pubs_lock;
    struct pub_ctx *pubs; /* publishes waiting for their result, under pubs_lock */
    pthread_mutex_t info_lock;
    char *info; /* retained P/bridge/info payload {info_lock} */
    pthread_mutex_t window_lock;
    size_t window;                /* publishes paho may have at once: BRIDGE_MQTT_MAX_INFLIGHT */
    size_t in_window;             /* handed to paho, result not reported yet {window_lock} */
    struct queued *queue;         /* waiting for a slot, oldest first {window_lock} */
    struct queued **queue_end;    /* {window_lock} */
    atomic_bool pump_posted;      /* a pump() is queued on the loop */
    char state_topic[TOPIC_MAX];  /* P/bridge/state */
    char info_topic[TOPIC_MAX];   /* P/bridge/info */
    char sub_send[TOPIC_MAX];     /* P/send, with $share/<group>/ when shared */
    char sub_send_any[TOPIC_MAX]; /* P/send/+ */
    /* Not shared: every bridge of a group answers its own control requests, and each follows
     * Home Assistant's status. */
    char sub_control[TOPIC_MAX];   /* P/bridge/request/+ */
    char sub_ha_status[TOPIC_MAX]; /* <BRIDGE_HA_PREFIX>/status, "" without discovery */
    size_t control_prefix_len;     /* of "P/bridge/request/" */
    atomic_bool up;
    /* Connected, subscribed or not: set first thing in on_connected, cleared when the
     * connection is lost or closed. sb_mqtt_publish() reads it instead of asking paho, whose
     * MQTTAsync_isConnected() takes paho's mutex, which paho holds while it calls on_connected
     * (the error-checking mutex refused the second lock, and its unlock then released paho's). */
    atomic_bool link;
    atomic_bool ever_connected; /* after the first connection paho reconnects by itself */
    atomic_bool stopping;
    struct sb_timer *retry; /* first connection attempts, until paho's reconnect takes over */
};

enum poison {
    CLIENT_OK,
    CLIENT_POISONED, /* lost a message to paho's use-after-free; still connected */
    CLIENT_DEAD,     /* ...and disconnected for good: to be replaced */
};

static bool v5(const struct sb_mqtt *m)
{
    return m->cfg->mqtt_version == 5;
}

/* paho speaks tcp:// and ssl://; users write mqtt:// and mqtts:// (ws:// and wss:// are the
 * same in both). */
static char *paho_uri(const char *url)
{
    const char *rest = NULL;
    const char *scheme = NULL;
    if (strncmp(url, "mqtt://", 7) == 0) {
        scheme = "tcp://", rest = url + 7;
    } else if (strncmp(url, "mqtts://", 8) == 0) {
        scheme = "ssl://", rest = url + 8;
    } else {
        return strdup(url);
    }
    size_t n = strlen(scheme) + strlen(rest) + 1;
    char *uri = malloc(n);
    if (uri) {
        snprintf(uri, n, "%s%s", scheme, rest);
    }
    return uri;
}

static bool is_tls(const char *url)
{
    return strncmp(url, "mqtts://", 8) == 0 || strncmp(url, "wss://", 6) == 0;
}

/* The broker's port from MQTT_URL: explicit, or the scheme's default. */
static int broker_port(const char *url)
{
    const char *host = strstr(url, "://");
    const char *colon;
    char *end;

    host = host ? host + 3 : url;
    colon = host[0] == '[' ? strstr(host, "]:") : strchr(host, ':');
    if (colon) {
        long port;
        port = strtol(colon + (host[0] == '[' ? 2 : 1), &end, 10);
        if (port > 0 && port < 65536) {
            return (int)port;
        }
    }
    if (strncmp(url, "mqtts://", 8) == 0) {
        return 8883;
    }
    if (strncmp(url, "wss://", 6) == 0) {
        return 443;
    }
    return strncmp(url, "ws://", 5) == 0 ? 80 : 1883;
}

/* paho 1.3 leaves Nagle's algorithm on and has no hook to change it, so each small publish
 * (an outcome, a PUBACK) can wait ~5 ms for the next one (measured: p50 publish -> outcome
 * 5.3 ms with it, under 1 ms without). Once connected, find our TCP socket to the broker's
 * port and set TCP_NODELAY on it. A shortcut: the proper fix is an option in paho. */
static void no_delay_to_broker(const struct sb_mqtt *m)
{
    int port = broker_port(m->cfg->mqtt_url);
    long max_fd = sysconf(_SC_OPEN_MAX);

    for (int fd = 3; fd < (max_fd > 0 && max_fd < 4096 ? max_fd : 4096); fd++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int type = 0, one = 1;
        socklen_t tlen = sizeof(type);
        int peer_port = -1;

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM ||
            getpeername(fd, (struct sockaddr *)&peer, &len) != 0) {
            continue;
        }
        if (peer.ss_family == AF_INET) {
            peer_port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
        } else if (peer.ss_family == AF_INET6) {
            peer_port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
        }
        if (peer_port == port) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
    }
}

/* ---- callbacks (paho's threads) ---- */

static void on_subscribed(void *context, MQTTAsync_successData *data)
{
    struct sb_mqtt *m = context;
    (void)data;
    sb_log(SB_LOG_NOTICE, "mqtt", "subscribed to %s, %s and %s%s%s", m->sub_send, m->sub_send_any,
           m->sub_control, m->sub_ha_status[0] ? " and " : "", m->sub_ha_status);
    atomic_store(&m->up, true);
    if (m->handlers.connection) {
        m->handlers.connection(m->arg, true);
    }
    /* Publishes queued when the connection went wait for a slot; start them off. */
    if (!atomic_exchange(&m->pump_posted, true) && sb_loop_post(m->loop, pump, m) != SB_OK) {
        atomic_store(&m->pump_posted, false);
    }
}

static void on_subscribed5(void *context, MQTTAsync_successData5 *data)
{
    for (int i = 0; i < data->alt.sub.reasonCodeCount; i++) {
        if (data->alt.sub.reasonCodes[i] >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
            sb_log(SB_LOG_ERROR, "mqtt", "the broker refused subscription %d: %s", i,
                   MQTTReasonCode_toString(data->alt.sub.reasonCodes[i]));
        }
    }
    on_subscribed(context, NULL);
}

/* On the loop: MQTTAsync_reconnect() takes paho's mutex, which its thread calling us holds. */
static void reconnect_now(void *arg)
{
    struct sb_mqtt *m = arg;
    if (!atomic_load(&m->stopping) && atomic_load(&m->poison) == CLIENT_OK) {
        MQTTAsync_reconnect(atomic_load(&m->client));
    }
}

static void subscribe_failed(struct sb_mqtt *m)
{
    if (!atomic_load(&m->stopping) && sb_loop_post(m->loop, reconnect_now, m) != SB_OK) {
        sb_log(SB_LOG_ERROR, "mqtt", "cannot schedule a reconnection");
    }
}

static void on_subscribe_failed(void *context, MQTTAsync_failureData *data)
{
    sb_log(SB_LOG_ERROR, "mqtt", "subscribe failed (%d); reconnecting", data ? data->code : 0);
    subscribe_failed(context);
}

static void on_subscribe_failed5(void *context, MQTTAsync_failureData5 *data)
{
    sb_log(SB_LOG_ERROR, "mqtt", "subscribe failed: %s (%d); reconnecting",
           data ? MQTTReasonCode_toString(data->reasonCode) : "?", data ? data->code : 0);
    subscribe_failed(context);
}

/* Publishes a copy of the retained info, so that no lock of ours is held inside paho's. */
static enum sb_err publish_info(struct sb_mqtt *m)
{
    enum sb_err err;
    char *info;

    pthread_mutex_lock(&m->info_lock);
    info = strdup(m->info);
    pthread_mutex_unlock(&m->info_lock);
    if (!info) {
        return SB_E_NOMEM;
    }
    err = sb_mqtt_publish(m, m->info_topic, info, strlen(info), true, NULL, 0, 0);
    free(info);
    return err;
}

/* On every connection, first or automatic: the persistent session keeps our subscriptions, but
 * subscribing again is cheap and covers a broker that lost its state. */
static void on_connected(void *context, char *cause)
{
    struct sb_mqtt *m = context;
    char *const topics[] = {m->sub_send, m->sub_send_any, m->sub_control, m->sub_ha_status};
    int n_topics = m->sub_ha_status[0] ? 4 : 3;
    int qos[] = {1, 1, 1, 1};
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    MQTTSubscribe_options sub_opts[4] = {
        MQTTSubscribe_options_initializer, MQTTSubscribe_options_initializer,
        MQTTSubscribe_options_initializer, MQTTSubscribe_options_initializer};
    int rc;

    (void)cause;
    atomic_store(&m->link, true);
    atomic_store(&m->ever_connected, true);
    no_delay_to_broker(m);
    sb_log(SB_LOG_NOTICE, "mqtt", "connected to %s as %s (MQTT %s)", m->cfg->mqtt_url,
           m->cfg->mqtt_client_id, v5(m) ? "5" : "3.1.1");
    rc = sb_mqtt_publish(m, m->state_topic, "online", 6, true, NULL, 0, 0);
    if (rc == SB_OK) {
        rc = publish_info(m);
    }
    if (rc != SB_OK) {
        sb_log(SB_LOG_WARN, "mqtt", "could not publish the bridge state");
    }

    opts.context = m;
    if (v5(m)) {
        opts.onSuccess5 = on_subscribed5;
        opts.onFailure5 = on_subscribe_failed5;
        opts.subscribeOptionsCount = n_topics;
        opts.subscribeOptionsList = sub_opts;
    } else {
        opts.onSuccess = on_subscribed;
        opts.onFailure = on_subscribe_failed;
    }
    rc = MQTTAsync_subscribeMany(atomic_load(&m->client), n_topics, topics, qos, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        sb_log(SB_LOG_ERROR, "mqtt", "subscribe: %s", MQTTAsync_strerror(rc));
    }
}

static void replace_client(void *arg);

static void on_connection_lost(void *context, char *cause)
{
    struct sb_mqtt *m = context;
    int expected = CLIENT_POISONED;
    bool poisoned = atomic_compare_exchange_strong(&m->poison, &expected, CLIENT_DEAD);

    atomic_store(&m->link, false);
    atomic_store(&m->up, false);
    if (poisoned) {
        /* paho calls this before it schedules the automatic reconnection, which must not happen
         * (see the top): a disconnect with the connection gone only switches it off. */
        MQTTAsync_disconnect(atomic_load(&m->client), NULL);
    }
    if (!atomic_load(&m->stopping)) {
        sb_log(SB_LOG_WARN, "mqtt", "connection lost (%s); %s", cause ? cause : "no reason given",
               poisoned ? "replacing the client" : "reconnecting");
    }
    if (m->handlers.connection) {
        m->handlers.connection(m->arg, false);
    }
    /* Posted after the connection's loss, so the loop sees them in that order. */
    if (poisoned && !atomic_load(&m->stopping) &&
        sb_loop_post(m->loop, replace_client, m) != SB_OK) {
        sb_log(SB_LOG_ERROR, "mqtt", "cannot schedule the client's replacement");
    }
}

/* A control request or Home Assistant's status, as opposed to a send command. */
static bool is_control(const struct sb_mqtt *m, const char *topic)
{
    return strncmp(topic, m->sub_control, m->control_prefix_len) == 0 ||
           (m->sub_ha_status[0] && strcmp(topic, m->sub_ha_status) == 0);
}

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *pm)
{
    struct sb_mqtt *m = context;
    struct sb_mqtt_message msg = {0};
    char *topic_z = topic;
    char *response_topic = NULL;

    /* paho gives a length only when the topic holds a NUL; such a topic is not ours to route. */
    if (topic_len > 0 && (size_t)topic_len != strlen(topic)) {
        sb_log(SB_LOG_WARN, "mqtt", "dropped a message whose topic contains a NUL byte");
        goto out;
    }
    msg.topic = topic_z;
    msg.payload = pm->payload;
    msg.len = (size_t)pm->payloadlen;
    if (v5(m)) {
        MQTTProperty *p =
            MQTTProperties_getProperty(&pm->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
        if (p && p->value.data.len > 0) {
            response_topic = strndup(p->value.data.data, (size_t)p->value.data.len);
            msg.response_topic = response_topic;
        }
        p = MQTTProperties_getProperty(&pm->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
        if (p && p->value.data.len > 0) {
            msg.correlation = p->value.data.data;
            msg.correlation_len = (size_t)p->value.data.len;
        }
    }
    if (is_control(m, topic_z)) {
        if (m->handlers.control) {
            m->handlers.control(m->arg, &msg);
        }
    } else {
        m->handlers.message(m->arg, &msg);
    }
out:
    free(response_topic);
    MQTTAsync_freeMessage(&pm);
    MQTTAsync_free(topic);
    /* Always 1: a 0 would make paho queue the message in memory AND acknowledge it, which is
     * exactly the loss we avoid. The handler returns only once the message is safe. */
    return 1;
}

/* One publish waiting for its result: the context of its paho callbacks, and in m->pubs. */
struct pub_ctx {
    struct sb_mqtt *m;
    MQTTAsync client; /* the client it was given to */
    uint64_t tag;
    atomic_bool reported; /* its result went to handlers.published, by paho or by us */
    struct pub_ctx *prev, *next;
};

static void pubs_unlink(struct sb_mqtt *m, struct pub_ctx *pc)
{
    if (pc->prev) {
        pc->prev->next = pc->next;
    } else {
        m->pubs = pc->next;
    }
    if (pc->next) {
        pc->next->prev = pc->prev;
    }
    pc->prev = pc->next = NULL;
}

/* A publish's result came: its slot is free. Thread: paho's (or the loop's). */
static void release_slot(struct sb_mqtt *m)
{
    bool waiting;

    pthread_mutex_lock(&m->window_lock);
    m->in_window--;
    waiting = m->queue != NULL;
    pthread_mutex_unlock(&m->window_lock);
    if (waiting && !atomic_exchange(&m->pump_posted, true) &&
        sb_loop_post(m->loop, pump, m) != SB_OK) {
        atomic_store(&m->pump_posted, false); /* out of memory: the next result tries again */
    }
}

static void published(struct pub_ctx *pc, bool ok)
{
    struct sb_mqtt *m = pc->m;

    if (atomic_exchange(&pc->reported, true)) {
        return; /* reported failed when its client was abandoned; it stays allocated */
    }
    pthread_mutex_lock(&m->pubs_lock);
    pubs_unlink(m, pc);
    pthread_mutex_unlock(&m->pubs_lock);
    if (pc->tag != 0 && m->handlers.published) {
        m->handlers.published(m->arg, pc->tag, ok);
    }
    free(pc);
    release_slot(m);
}

/* A failure with paho's SOCKET_ERROR is the one of MQTTAsync_processCommand after a failed
 * write: the message it keeps for the resend points at freed memory (see the top). The other
 * failures of a publish have other codes: a refusal in the PUBACK 0, a destroyed client
 * MQTTASYNC_OPERATION_INCOMPLETE. Thread: paho's send thread, before it frees the memory. */
static void check_poisoned(struct pub_ctx *pc, int code)
{
    struct sb_mqtt *m = pc->m;
    int expected = CLIENT_OK;

    if (code == MQTTASYNC_FAILURE && pc->client == atomic_load(&m->client) &&
        atomic_compare_exchange_strong(&m->poison, &expected, CLIENT_POISONED)) {
        sb_log(SB_LOG_ERROR, "mqtt",
               "a publish failed in the middle of its write; paho's copy of it for the resend "
               "is lost, so its client will be replaced");
    }
}

static void on_published(void *context, MQTTAsync_successData *data)
{
    (void)data;
    published(context, true);
}

static void on_published5(void *context, MQTTAsync_successData5 *data)
{
    /* A PUBACK with a reason code >= 0x80 means the broker refused it. */
    published(context, data->reasonCode < MQTTREASONCODE_UNSPECIFIED_ERROR);
}

static void on_publish_failed(void *context, MQTTAsync_failureData *data)
{
    check_poisoned(context, data ? data->code : 0);
    published(context, false);
}

static void on_publish_failed5(void *context, MQTTAsync_failureData5 *data)
{
    check_poisoned(context, data ? data->code : 0);
    published(context, false);
}

/* ---- connecting ---- */

static void connect_now(void *arg);

static void on_connect_failed_common(struct sb_mqtt *m, const char *why)
{
    if (atomic_load(&m->ever_connected)) {
        /* paho's automatic reconnect is retrying already, with its own backoff. */
        sb_log(SB_LOG_DEBUG, "mqtt", "reconnect to %s failed: %s", m->cfg->mqtt_url, why);
        return;
    }
    sb_log(SB_LOG_WARN, "mqtt", "cannot connect to %s: %s; retrying in %d s", m->cfg->mqtt_url, why,
           RETRY_FIRST_MS / 1000);
    /* A paho thread: the timer belongs to the loop. */
    if (!atomic_load(&m->stopping) && sb_loop_post(m->loop, connect_now, m) != SB_OK) {
        sb_log(SB_LOG_ERROR, "mqtt", "cannot schedule a reconnection");
    }
}

static void on_connect_failed(void *context, MQTTAsync_failureData *data)
{
    on_connect_failed_common(context, data && data->message ? data->message
                                      : data                ? MQTTAsync_strerror(data->code)
                                                            : "?");
}

static void on_connect_failed5(void *context, MQTTAsync_failureData5 *data)
{
    on_connect_failed_common(context, data && data->message ? data->message
                                      : data ? MQTTReasonCode_toString(data->reasonCode)
                                             : "?");
}

/* NOLINTNEXTLINE(misc-no-recursion): replace_client() calls it after setting CLIENT_OK */
static void connect_attempt(void *arg)
{
    struct sb_mqtt *m = arg;
    const struct sb_config *cfg = m->cfg;
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty expiry = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL,
                           .value.integer4 = SESSION_EXPIRY_S};
    MQTTAsync_connectOptions *o = v5(m) ? &opts5 : &opts;
    int rc;

    if (atomic_load(&m->stopping)) {
        return;
    }
    if (atomic_load(&m->poison) == CLIENT_DEAD) {
        replace_client(m); /* it failed to create the new client, and now tries again */
        return;
    }
    if (atomic_load(&m->poison) != CLIENT_OK) {
        return; /* replaced once its connection is lost */
    }
    o->keepAliveInterval = KEEPALIVE_S;
    o->automaticReconnect = 1;
    o->minRetryInterval = 1;
    o->maxRetryInterval = 30;
    o->connectTimeout = 10;
    /* At most this many QoS 1 publishes unacknowledged (BRIDGE_MQTT_MAX_INFLIGHT). A broker
     * takes no more than its Receive Maximum (mosquitto: max_inflight_messages, 20 by default)
     * and drops a client that sends more; paho re-sends everything in flight at once after a
     * reconnect, so a larger window could get the bridge dropped again at every reconnect, for
     * good. paho learns the broker's value only from the CONNACK, after this is set. */
    o->maxInflight = (int)cfg->mqtt_max_inflight;
    o->context = m;
    if (v5(m)) {
        o->cleanstart = 0;
        MQTTProperties_add(&props, &expiry);
        o->connectProperties = &props;
        o->onFailure5 = on_connect_failed5;
    } else {
        o->cleansession = 0;
        o->onFailure = on_connect_failed;
    }
    o->username = cfg->mqtt_username;
    o->password = cfg->mqtt_password;
    will.topicName = m->state_topic;
    will.message = "offline";
    will.retained = 1;
    will.qos = 1;
    o->will = &will;
    if (is_tls(cfg->mqtt_url)) {
        ssl.trustStore = cfg->mqtt_ca_file;
        ssl.keyStore = cfg->mqtt_cert_file;
        ssl.privateKey = cfg->mqtt_key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
        o->ssl = &ssl;
    }
    rc = MQTTAsync_connect(atomic_load(&m->client), o);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS) {
        on_connect_failed_common(m, MQTTAsync_strerror(rc));
    }
}

/* On the loop: wait a little, then try again. */
static void connect_now(void *arg)
{
    struct sb_mqtt *m = arg;
    if (!atomic_load(&m->stopping)) {
        sb_timer_arm(m->retry, RETRY_FIRST_MS);
    }
}

/* paho's log lines, routed into ours: its errors as errors, the rest (a version banner, protocol
 * traces) only at debug. */
static void paho_trace(enum MQTTASYNC_TRACE_LEVELS level, char *message)
{
    sb_log(level >= MQTTASYNC_TRACE_ERROR ? SB_LOG_ERROR : SB_LOG_DEBUG, "paho", "%s", message);
}

/* ---- the API ---- */

static void topic_of(char *dst, const struct sb_config *cfg, bool shared, const char *suffix)
{
    if (shared && cfg->share_group) {
        snprintf(dst, TOPIC_MAX, "$share/%s/%s/%s", cfg->share_group, cfg->topic_prefix, suffix);
    } else {
        snprintf(dst, TOPIC_MAX, "%s/%s", cfg->topic_prefix, suffix);
    }
}

/* A paho client for m->uri and the client id, with our callbacks. Thread: loop. */
static int create_client(struct sb_mqtt *m, MQTTAsync *out)
{
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer;
    MQTTAsync client = NULL;
    int rc;

    copts.MQTTVersion = v5(m) ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    copts.sendWhileDisconnected = 0;
    copts.maxBufferedMessages = MAX_BUFFERED;
    rc = MQTTAsync_createWithOptions(&client, m->uri, m->cfg->mqtt_client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts);
    if (rc == MQTTASYNC_SUCCESS) {
        MQTTAsync_setCallbacks(client, m, on_connection_lost, on_message, NULL);
        MQTTAsync_setConnected(client, m, on_connected);
        *out = client;
    }
    return rc;
}

/* On the loop, after a poisoned client lost its connection (see the top). The old client is left
 * as it is, disconnected for good: destroying it would free the lost message's memory again. */
/* NOLINTNEXTLINE(misc-no-recursion): connect_attempt() calls it only on CLIENT_DEAD */
static void replace_client(void *arg)
{
    struct sb_mqtt *m = arg;
    MQTTAsync old = atomic_load(&m->client);
    MQTTAsync fresh = NULL;
    struct pub_ctx *owed = NULL;
    size_t n_owed = 0;
    int rc;

    if (atomic_load(&m->stopping) || atomic_load(&m->poison) != CLIENT_DEAD) {
        return;
    }
    rc = create_client(m, &fresh);
    if (rc != MQTTASYNC_SUCCESS) {
        sb_log(SB_LOG_ERROR, "mqtt", "cannot create a new client: %s; retrying in %d s",
               MQTTAsync_strerror(rc), RETRY_FIRST_MS / 1000);
        sb_timer_arm(m->retry, RETRY_FIRST_MS);
        return;
    }
    /* The old client's publishes that have no result yet never will: paho reports them only on
     * a PUBACK (it will not reconnect) or when destroyed (it will not be). They fail here, and
     * stay allocated: the old client still holds them as the context of its callbacks. */
    pthread_mutex_lock(&m->pubs_lock);
    for (struct pub_ctx *pc = m->pubs, *next; pc; pc = next) {
        next = pc->next;
        if (pc->client == old) {
            pubs_unlink(m, pc);
            if (!atomic_exchange(&pc->reported, true)) {
                pc->next = owed;
                owed = pc;
                n_owed++;
            }
        }
    }
    pthread_mutex_unlock(&m->pubs_lock);
    sb_log(SB_LOG_WARN, "mqtt", "new client for %s; %zu publishes of the old one to be made again",
           m->cfg->mqtt_url, n_owed);
    atomic_store(&m->client, fresh);
    atomic_store(&m->poison, CLIENT_OK);
    for (struct pub_ctx *pc = owed; pc; pc = pc->next) {
        if (pc->tag != 0 && m->handlers.published) {
            m->handlers.published(m->arg, pc->tag, false);
        }
    }
    pthread_mutex_lock(&m->window_lock);
    m->in_window -= n_owed; /* their slots in the publish window are free again */
    pthread_mutex_unlock(&m->window_lock);
    /* A reconnection: when it fails, paho's automatic reconnection retries it. */
    connect_attempt(m);
}

enum sb_err sb_mqtt_new(const struct sb_config *cfg, struct sb_loop *loop,
                        const struct sb_mqtt_handlers *handlers, void *arg, const char *info,
                        struct sb_mqtt **out)
{
    MQTTAsync client = NULL;
    struct sb_mqtt *m = calloc(1, sizeof(*m));
    int rc;

    if (!m) {
        return SB_E_NOMEM;
    }
    pthread_mutex_init(&m->pubs_lock, NULL);
    pthread_mutex_init(&m->info_lock, NULL);
    pthread_mutex_init(&m->window_lock, NULL);
    m->window = (size_t)cfg->mqtt_max_inflight;
    m->queue_end = &m->queue;
    atomic_init(&m->pump_posted, false);
    m->cfg = cfg;
    m->loop = loop;
    m->handlers = *handlers;
    m->arg = arg;
    atomic_init(&m->client, NULL);
    atomic_init(&m->poison, CLIENT_OK);
    atomic_init(&m->up, false);
    atomic_init(&m->link, false);
    atomic_init(&m->ever_connected, false);
    atomic_init(&m->stopping, false);
    topic_of(m->state_topic, cfg, false, "bridge/state");
    topic_of(m->info_topic, cfg, false, "bridge/info");
    topic_of(m->sub_send, cfg, true, "send");
    topic_of(m->sub_send_any, cfg, true, "send/+");
    topic_of(m->sub_control, cfg, false, "bridge/request/+");
    m->control_prefix_len = strlen(m->sub_control) - 1; /* up to the '+' */
    if (cfg->ha_discovery) {
        snprintf(m->sub_ha_status, sizeof(m->sub_ha_status), "%s/status", cfg->ha_prefix);
    }
    m->uri = paho_uri(cfg->mqtt_url);
    m->info = strdup(info);
    if (!m->uri || !m->info || sb_timer_new(loop, connect_attempt, m, &m->retry) != SB_OK) {
        sb_mqtt_free(m);
        return SB_E_NOMEM;
    }

    MQTTAsync_setTraceCallback(paho_trace);
    MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
    rc = create_client(m, &client);
    if (rc != MQTTASYNC_SUCCESS) {
        sb_log(SB_LOG_ERROR, "mqtt", "cannot create the client for %s: %s", cfg->mqtt_url,
               MQTTAsync_strerror(rc));
        sb_mqtt_free(m);
        return SB_E_CONFIG;
    }
    atomic_store(&m->client, client);
    *out = m;
    return SB_OK;
}

enum sb_err sb_mqtt_start(struct sb_mqtt *m)
{
    connect_attempt(m);
    return SB_OK;
}

/* Hands one publish to paho; its slot in the window is taken. */
static enum sb_err send_now(struct sb_mqtt *m, const char *topic, const void *payload, size_t len,
                            bool retain, const void *correlation, size_t correlation_len,
                            uint64_t tag)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTProperty corr;
    struct pub_ctx *pc;
    int rc;

    if (len > (size_t)256 * 1024 * 1024) {
        return SB_E_INVAL;
    }
    if (atomic_load(&m->poison) != CLIENT_OK) {
        return SB_E_MQTT; /* its client is about to be replaced */
    }
    pc = calloc(1, sizeof(*pc));
    if (!pc) {
        return SB_E_NOMEM;
    }
    pc->m = m;
    pc->client = atomic_load(&m->client);
    pc->tag = tag;
    atomic_init(&pc->reported, false);
    msg.payload = (void *)(uintptr_t)payload; /* paho copies it; its API is not const-correct */
    msg.payloadlen = (int)len;
    msg.qos = 1;
    msg.retained = retain;
    opts.context = pc;
    if (v5(m)) {
        opts.onSuccess5 = on_published5;
        opts.onFailure5 = on_publish_failed5;
        if (correlation && correlation_len > 0) {
            corr.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
            corr.value.data.data = (char *)(uintptr_t)correlation;
            corr.value.data.len = (int)correlation_len;
            MQTTProperties_add(&msg.properties, &corr);
        }
    } else {
        opts.onSuccess = on_published;
        opts.onFailure = on_publish_failed;
    }
    /* Listed before paho has it: its callback can come before sendMessage returns. */
    pthread_mutex_lock(&m->pubs_lock);
    pc->next = m->pubs;
    if (m->pubs) {
        m->pubs->prev = pc;
    }
    m->pubs = pc;
    pthread_mutex_unlock(&m->pubs_lock);
    rc = MQTTAsync_sendMessage(pc->client, topic, &msg, &opts);
    MQTTProperties_free(&msg.properties);
    if (rc != MQTTASYNC_SUCCESS) {
        /* No callback will come. */
        pthread_mutex_lock(&m->pubs_lock);
        pubs_unlink(m, pc);
        pthread_mutex_unlock(&m->pubs_lock);
        free(pc);
        if (rc != MQTTASYNC_DISCONNECTED) {
            sb_log(SB_LOG_WARN, "mqtt", "publish to %s: %s", topic, MQTTAsync_strerror(rc));
        }
        return SB_E_MQTT;
    }
    return SB_OK;
}

static void queued_free(struct queued *q)
{
    free(q->topic);
    free(q->payload);
    free(q->correlation);
    free(q);
}

static struct queued *queued_new(const char *topic, const void *payload, size_t len, bool retain,
                                 const void *correlation, size_t correlation_len, uint64_t tag)
{
    struct queued *q = calloc(1, sizeof(*q));

    if (!q || !(q->topic = strdup(topic)) || !(q->payload = malloc(len ? len : 1)) ||
        (correlation_len && !(q->correlation = malloc(correlation_len)))) {
        if (q) {
            queued_free(q);
        }
        return NULL;
    }
    memcpy(q->payload, payload, len);
    q->len = len;
    q->retain = retain;
    if (correlation_len) {
        memcpy(q->correlation, correlation, correlation_len);
    }
    q->correlation_len = correlation_len;
    q->tag = tag;
    return q;
}

/* The loop: hands queued publishes to paho while the window has room. One that paho refuses (the
 * connection went) is reported failed, so its owner publishes it again once connected. */
static void pump(void *arg)
{
    struct sb_mqtt *m = arg;

    atomic_store(&m->pump_posted, false);
    for (;;) {
        struct queued *q;

        pthread_mutex_lock(&m->window_lock);
        q = m->in_window < m->window ? m->queue : NULL;
        if (q) {
            m->queue = q->next;
            if (!m->queue) {
                m->queue_end = &m->queue;
            }
            m->in_window++;
        }
        pthread_mutex_unlock(&m->window_lock);
        if (!q) {
            return;
        }
        if (send_now(m, q->topic, q->payload, q->len, q->retain, q->correlation, q->correlation_len,
                     q->tag) != SB_OK) {
            pthread_mutex_lock(&m->window_lock);
            m->in_window--;
            pthread_mutex_unlock(&m->window_lock);
            if (q->tag != 0 && m->handlers.published) {
                m->handlers.published(m->arg, q->tag, false);
            }
        }
        queued_free(q);
    }
}

enum sb_err sb_mqtt_publish(struct sb_mqtt *m, const char *topic, const void *payload, size_t len,
                            bool retain, const void *correlation, size_t correlation_len,
                            uint64_t tag)
{
    struct queued *q;

    if (len > (size_t)256 * 1024 * 1024) {
        return SB_E_INVAL;
    }
    if (!atomic_load(&m->link) || atomic_load(&m->poison) != CLIENT_OK) {
        return SB_E_MQTT; /* the caller keeps it and publishes it again once connected */
    }
    pthread_mutex_lock(&m->window_lock);
    if (m->in_window < m->window && !m->queue) {
        m->in_window++;
        pthread_mutex_unlock(&m->window_lock);
        enum sb_err err =
            send_now(m, topic, payload, len, retain, correlation, correlation_len, tag);
        if (err != SB_OK) {
            pthread_mutex_lock(&m->window_lock);
            m->in_window--;
            pthread_mutex_unlock(&m->window_lock);
        }
        return err;
    }
    pthread_mutex_unlock(&m->window_lock);
    q = queued_new(topic, payload, len, retain, correlation, correlation_len, tag);
    if (!q) {
        return SB_E_NOMEM;
    }
    pthread_mutex_lock(&m->window_lock);
    *m->queue_end = q;
    m->queue_end = &q->next;
    pthread_mutex_unlock(&m->window_lock);
    /* The window may have emptied in between: the pump looks again. */
    if (!atomic_exchange(&m->pump_posted, true) && sb_loop_post(m->loop, pump, m) != SB_OK) {
        atomic_store(&m->pump_posted, false);
    }
    return SB_OK;
}

enum sb_err sb_mqtt_set_info(struct sb_mqtt *m, const char *info)
{
    char *copy = strdup(info);
    enum sb_err err;

    if (!copy) {
        return SB_E_NOMEM;
    }
    pthread_mutex_lock(&m->info_lock);
    free(m->info);
    m->info = copy;
    pthread_mutex_unlock(&m->info_lock);
    err = publish_info(m);
    /* Not connected: on_connected publishes the new one. */
    return err == SB_E_MQTT ? SB_OK : err;
}

bool sb_mqtt_connected(const struct sb_mqtt *m)
{
    return atomic_load(&m->up);
}

/* Publishes handed to paho without a result yet, or queued for the window. */
static bool window_busy(struct sb_mqtt *m)
{
    bool busy;

    pthread_mutex_lock(&m->window_lock);
    busy = m->in_window > 0 || m->queue != NULL;
    pthread_mutex_unlock(&m->window_lock);
    return busy;
}

void sb_mqtt_stop(struct sb_mqtt *m, int timeout_ms)
{
    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions opts5 = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync client;

    if (!m || atomic_exchange(&m->stopping, true)) {
        return;
    }
    sb_timer_cancel(m->retry);
    client = atomic_load(&m->client);
    if (MQTTAsync_isConnected(client) && atomic_load(&m->poison) == CLIENT_OK) {
        /* The clean-stop "offline": the will covers every other kind of stop. */
        if (sb_mqtt_publish(m, m->state_topic, "offline", 7, true, NULL, 0, 0) != SB_OK) {
            sb_log(SB_LOG_WARN, "mqtt", "could not publish offline");
        }
        /* Our publishes' PUBACKs first. paho's disconnect would wait for them too, but it looks
         * again only when its send thread next wakes, which a PUBACK does not do: every stop
         * took a second. With nothing in flight the disconnect goes at once. */
        for (int waited = 0; waited < timeout_ms && window_busy(m); waited += 5) {
            pump(m);
            sb_sleep_ms(5);
        }
        /* Disconnect waits up to `timeout` for in-flight publishes to complete. */
        opts.timeout = timeout_ms;
        opts5.timeout = timeout_ms;
        if (v5(m)) {
            /* Reason 0x00 keeps the session (and, by MQTT 5, suppresses the will). */
            opts5.reasonCode = MQTTREASONCODE_NORMAL_DISCONNECTION;
        }
        MQTTAsync_disconnect(client, v5(m) ? &opts5 : &opts);
        for (int waited = 0; waited < timeout_ms && MQTTAsync_isConnected(client); waited += 10) {
            sb_sleep_ms(10);
        }
    }
    atomic_store(&m->link, false);
    atomic_store(&m->up, false);
}

void sb_mqtt_free(struct sb_mqtt *m)
{
    MQTTAsync client;

    if (!m) {
        return;
    }
    client = atomic_load(&m->client);
    if (client && atomic_load(&m->poison) != CLIENT_OK) {
        /* Not destroyed, which would free the lost message's memory again (see the top). Once
         * disconnected (paho calls on_connection_lost before it says so) it calls nothing any
         * more; until then m must stay. */
        MQTTAsync_disconnect(client, NULL);
        for (int waited = 0; MQTTAsync_isConnected(client); waited += 10) {
            if (waited >= 2000) {
                return;
            }
            sb_sleep_ms(10);
        }
    } else if (client) {
        MQTTAsync_destroy(&client);
    }
    sb_timer_free(m->retry);
    /* paho's threads are gone: what they posted for m (a pump of the publish queue, a
     * reconnection) must not run once m is freed. */
    sb_loop_cancel(m->loop, m);
    /* The clients not destroyed are disconnected for good and call nothing any more; their
     * publishes left in m->pubs stay allocated, as the context of their callbacks. */
    pthread_mutex_destroy(&m->pubs_lock);
    free(m->uri);
    free(m->info);
    pthread_mutex_destroy(&m->info_lock);
    /* Publishes never handed to paho: their owners keep them in the store for the next start. */
    while (m->queue) {
        struct queued *q = m->queue;
        m->queue = q->next;
        queued_free(q);
    }
    pthread_mutex_destroy(&m->window_lock);
    free(m);
}

/* ---- --check-config ---- */

struct check {
    atomic_int state; /* 0 waiting, 1 connected, -1 failed */
    char why[256];
};

static void check_ok(void *context, MQTTAsync_successData *data)
{
    (void)data;
    atomic_store(&((struct check *)context)->state, 1);
}

static void check_ok5(void *context, MQTTAsync_successData5 *data)
{
    (void)data;
    atomic_store(&((struct check *)context)->state, 1);
}

static void check_failed(void *context, MQTTAsync_failureData *data)
{
    struct check *c = context;
    snprintf(c->why, sizeof(c->why), "%s",
             data && data->message ? data->message : MQTTAsync_strerror(data ? data->code : -1));
    atomic_store(&c->state, -1);
}

static void check_failed5(void *context, MQTTAsync_failureData5 *data)
{
    struct check *c = context;
    snprintf(c->why, sizeof(c->why), "%s",
             data && data->message ? data->message
             : data                ? MQTTReasonCode_toString(data->reasonCode)
                                   : "?");
    atomic_store(&c->state, -1);
}

enum sb_err sb_mqtt_check(const struct sb_config *cfg, int timeout_ms, char *why, size_t why_len)
{
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTAsync_connectOptions *o = cfg->mqtt_version == 5 ? &opts5 : &opts;
    MQTTAsync client = NULL;
    struct check c = {.why = ""};
    char client_id[128];
    char *uri = paho_uri(cfg->mqtt_url);
    enum sb_err err = SB_E_MQTT;
    int rc;

    atomic_init(&c.state, 0);
    snprintf(client_id, sizeof(client_id), "%.100s-check", cfg->mqtt_client_id);
    copts.MQTTVersion = cfg->mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    if (!uri) {
        snprintf(why, why_len, "out of memory");
        return SB_E_NOMEM;
    }
    rc = MQTTAsync_createWithOptions(&client, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                     &copts);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(why, why_len, "MQTT_URL %s: %s", cfg->mqtt_url, MQTTAsync_strerror(rc));
        goto out;
    }
    o->connectTimeout = (timeout_ms + 999) / 1000;
    o->context = &c;
    o->username = cfg->mqtt_username;
    o->password = cfg->mqtt_password;
    if (cfg->mqtt_version == 5) {
        o->cleanstart = 1;
        o->onSuccess5 = check_ok5;
        o->onFailure5 = check_failed5;
    } else {
        o->cleansession = 1;
        o->onSuccess = check_ok;
        o->onFailure = check_failed;
    }
    if (is_tls(cfg->mqtt_url)) {
        ssl.trustStore = cfg->mqtt_ca_file;
        ssl.keyStore = cfg->mqtt_cert_file;
        ssl.privateKey = cfg->mqtt_key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        o->ssl = &ssl;
    }
    rc = MQTTAsync_connect(client, o);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(why, why_len, "broker %s: %s", cfg->mqtt_url, MQTTAsync_strerror(rc));
        goto out;
    }
    for (int waited = 0; atomic_load(&c.state) == 0 && waited < timeout_ms + 1000; waited += 10) {
        sb_sleep_ms(10);
    }
    if (atomic_load(&c.state) == 1) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 1000;
        MQTTAsync_disconnect(client, &d);
        err = SB_OK;
    } else {
        snprintf(why, why_len, "broker %s: %s", cfg->mqtt_url,
                 c.why[0] ? c.why : "no answer in time");
    }
out:
    if (client) {
        MQTTAsync_destroy(&client);
    }
    free(uri);
    return err;
}
