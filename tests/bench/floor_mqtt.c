/* floor_mqtt: see floor_mqtt.h. The callbacks run on paho's threads; the publish window is the
 * only state they share with the caller's threads, under m->lock. */
#include "floor_mqtt.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CALL_TIMEOUT_S 10 /* connect, subscribe: how long to wait for the broker's answer */
#define KEEPALIVE_S    30

/* ---- waiting for one call (connect, subscribe, disconnect) ---- */

static void call_finished(struct floor_mqtt *m, int rc)
{
    pthread_mutex_lock(&m->lock);
    m->call_done = true;
    m->call_rc = rc;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void on_call_ok(void *context, MQTTAsync_successData5 *data)
{
    (void)data;
    call_finished(context, MQTTASYNC_SUCCESS);
}

static void on_call_failed(void *context, MQTTAsync_failureData5 *data)
{
    call_finished(context, data && data->code ? data->code : MQTTASYNC_FAILURE);
}

/* A SUBACK can carry a refusal: a reason code of 0x80 or more. */
static void on_subscribed(void *context, MQTTAsync_successData5 *data)
{
    int rc = MQTTASYNC_SUCCESS;

    if (data && data->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
        rc = MQTTASYNC_FAILURE;
    }
    call_finished(context, rc);
}

/* The absolute CLOCK_REALTIME time `seconds` from now, for pthread_cond_timedwait(). */
static struct timespec deadline_in(int seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    return ts;
}

/* Before handing paho the call: call_wait() then waits for this one's end. */
static void call_begin(struct floor_mqtt *m)
{
    pthread_mutex_lock(&m->lock);
    m->call_done = false;
    m->call_rc = MQTTASYNC_FAILURE;
    pthread_mutex_unlock(&m->lock);
}

/* The call's result, or MQTTASYNC_FAILURE when it did not end within `seconds`. */
static int call_wait(struct floor_mqtt *m, int seconds)
{
    struct timespec until = deadline_in(seconds);
    int rc;

    pthread_mutex_lock(&m->lock);
    while (!m->call_done) {
        if (pthread_cond_timedwait(&m->cond, &m->lock, &until) != 0) {
            break;
        }
    }
    rc = m->call_done ? m->call_rc : MQTTASYNC_FAILURE;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- publishes ---- */

static void on_published(void *context, MQTTAsync_successData5 *data)
{
    struct floor_mqtt *m = context;
    (void)data;
    pthread_mutex_lock(&m->lock);
    m->in_flight--;
    m->acked++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void on_publish_failed(void *context, MQTTAsync_failureData5 *data)
{
    struct floor_mqtt *m = context;
    (void)data;
    pthread_mutex_lock(&m->lock);
    m->in_flight--;
    m->failed++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

int floor_mqtt_publish(struct floor_mqtt *m, const char *topic, const void *payload, size_t len)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    int rc;

    pthread_mutex_lock(&m->lock);
    while (m->in_flight >= m->window) {
        pthread_cond_wait(&m->cond, &m->lock);
    }
    m->in_flight++;
    pthread_mutex_unlock(&m->lock);

    msg.payload = (void *)(uintptr_t)payload; /* paho copies it; its API is not const-correct */
    msg.payloadlen = (int)len;
    msg.qos = 1;
    opts.onSuccess5 = on_published;
    opts.onFailure5 = on_publish_failed;
    opts.context = m;
    rc = MQTTAsync_sendMessage(m->client, topic, &msg, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        /* no callback will come for it */
        pthread_mutex_lock(&m->lock);
        m->in_flight--;
        m->failed++;
        pthread_mutex_unlock(&m->lock);
        fprintf(stderr, "floor: publish to %s: %s\n", topic, MQTTAsync_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- the connection ---- */

/* Set by floor_mqtt_close(): a connection lost from then on is no failure. */
static atomic_bool closing;

static void on_lost(void *context, char *cause)
{
    (void)context;
    if (atomic_load(&closing)) {
        return;
    }
    fprintf(stderr, "floor: lost the broker: %s\n", cause ? cause : "?");
    _exit(3);
}

/* paho wants a message handler even for a client that subscribes to nothing. */
static int on_unexpected(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    (void)context;
    (void)topic_len;
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* paho has no socket option for it: find our TCP socket to the broker's port and turn Nagle's
 * algorithm off on it, or every small publish and PUBACK may wait for the one before. */
static void no_delay(int port)
{
    DIR *d = opendir("/proc/self/fd");
    const struct dirent *e;

    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        int one = 1;

        if (end == e->d_name || *end || fd == dirfd(d)) {
            continue;
        }
        if (getpeername((int)fd, (struct sockaddr *)&peer, &len) == 0 &&
            peer.sin_family == AF_INET && ntohs(peer.sin_port) == port) {
            setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
    }
    closedir(d);
}

int floor_mqtt_connect(struct floor_mqtt *m, int port, const char *client_id, long window,
                       MQTTAsync_messageArrived *on_message, void *context)
{
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer5;
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    char uri[64];
    int rc;

    m->port = port;
    m->window = window;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    /* paho counts the publishes it holds against this even while connected; ours are at most
     * the window */
    copts.maxBufferedMessages = (int)window + 100;
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
    rc = MQTTAsync_createWithOptions(&m->client, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                     &copts);
    if (rc == MQTTASYNC_SUCCESS) {
        rc = MQTTAsync_setCallbacks(m->client, context, on_lost,
                                    on_message ? on_message : on_unexpected, NULL);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "floor: paho client: %s\n", MQTTAsync_strerror(rc));
        return -1;
    }
    opts.cleanstart = 1;
    opts.keepAliveInterval = KEEPALIVE_S;
    opts.maxInflight = (int)window;
    opts.onSuccess5 = on_call_ok;
    opts.onFailure5 = on_call_failed;
    opts.context = m;
    call_begin(m);
    rc = MQTTAsync_connect(m->client, &opts);
    if (rc == MQTTASYNC_SUCCESS) {
        rc = call_wait(m, CALL_TIMEOUT_S);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "floor: connect to %s: %s\n", uri, MQTTAsync_strerror(rc));
        return -1;
    }
    no_delay(port);
    return 0;
}

int floor_mqtt_subscribe(struct floor_mqtt *m, const char *filter)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    int rc;

    opts.onSuccess5 = on_subscribed;
    opts.onFailure5 = on_call_failed;
    opts.context = m;
    call_begin(m);
    rc = MQTTAsync_subscribe(m->client, filter, 1, &opts);
    if (rc == MQTTASYNC_SUCCESS) {
        rc = call_wait(m, CALL_TIMEOUT_S);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "floor: subscribe to %s: %s\n", filter, MQTTAsync_strerror(rc));
        return -1;
    }
    return 0;
}

void floor_mqtt_close(struct floor_mqtt *m, int seconds)
{
    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer5;
    struct timespec until = deadline_in(seconds);

    pthread_mutex_lock(&m->lock);
    while (m->in_flight > 0 && pthread_cond_timedwait(&m->cond, &m->lock, &until) == 0) {
    }
    pthread_mutex_unlock(&m->lock);
    atomic_store(&closing, true);
    opts.timeout = 1000;
    opts.onSuccess5 = on_call_ok;
    opts.onFailure5 = on_call_failed;
    opts.context = m;
    call_begin(m);
    if (MQTTAsync_disconnect(m->client, &opts) == MQTTASYNC_SUCCESS) {
        call_wait(m, 2);
    }
    MQTTAsync_destroy(&m->client);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
}

bool floor_json_field(const char *text, size_t len, const char *key, const char **value,
                      size_t *value_len)
{
    char needle[64];
    int n = snprintf(needle, sizeof(needle), "\"%s\":\"", key);
    const char *end = text + len;

    if (n < 0 || (size_t)n >= sizeof(needle)) {
        return false;
    }
    for (const char *p = text; p + n <= end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (!p || p + n > end) {
            return false;
        }
        if (memcmp(p, needle, (size_t)n) != 0) {
            continue;
        }
        const char *v = p + n;
        for (const char *q = v; q < end; q++) {
            if (*q == '\\') {
                q++; /* the escaped character, whatever it is */
            } else if (*q == '"') {
                *value = v;
                *value_len = (size_t)(q - v);
                return true;
            }
        }
        return false;
    }
    return false;
}
