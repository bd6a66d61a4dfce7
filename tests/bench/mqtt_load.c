/* mqtt_load: the MQTT side of tests/bench/run.py. Four modes, each printing one line of
 * key=value figures that run.py parses (and a human can read):
 *   ceiling  one client publishes N QoS 1 messages, another receives them: what the broker can do
 *   burst    N QoS 1 send commands as fast as paho allows, done when all are acknowledged
 *   latency  JSON commands at a steady rate, matched by id against the bridge's outcomes
 *   count    a QoS 1 subscriber that counts what arrives (the bridge's inbound events) until N
 *            distinct message ids are in
 * Runs on the main thread plus paho's threads; the two meet only in `struct bench` under its lock.
 * Benchmarks print figures; nothing here passes or fails on a number. */
#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* QoS 1 publishes in flight at once. Measured here: paho's publish rate peaks near 200 and falls
 * with more (its cost per publish grows with the messages it holds) as with fewer (round trips). */
#define DEFAULT_WINDOW  200
#define PAYLOAD_LEN     60
#define DEFAULT_TIMEOUT 120 /* seconds a mode may run before it gives up */
#define BENCH_TOPIC     "bench/ceiling"
#define BURST_TOPIC     "sinch/send/15551234567"
#define JSON_TOPIC      "sinch/send"
#define BENCH_TO        "+15551234567"
#define OUTCOME_MAX     2048 /* longest outcome payload looked at */
#define COUNT_IDLE_S    15   /* count: give up when nothing arrived for this long after the first */
#define ID_DIGITS_MAX   18   /* count: trailing digits of a message id taken as its number */

struct options {
    const char *mode;
    int port;
    long count; /* ceiling, burst */
    const char *topic;
    bool json;   /* burst: JSON commands with ids on sinch/send */
    double rate; /* latency: commands per second */
    double seconds;
    long window;
    long timeout;      /* seconds */
    bool nagle;        /* leave paho's sockets as they are (see no_delay()) */
    const char *times; /* latency: file for "<n> <published> <outcome>" in epoch ms */
};

/* Shared between the main thread and paho's callbacks. */
struct bench {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long outstanding; /* publishes sent but not acknowledged {lock} */
    long acked;       /* {lock} */
    long failed;      /* publishes paho gave up on {lock} */
    long received;    /* ceiling: messages arrived at the subscriber {lock} */
    double t_last;    /* ceiling: when the last one arrived {lock} */
    bool lost;        /* a connection was lost {lock} */
    /* latency */
    double *t_pub; /* by sequence number: when published, 0 if not yet {lock} */
    double *t_out; /* by sequence number: when its outcome arrived, 0 if none {lock} */
    long n_lat;    /* length of both arrays */
    long outcomes; /* outcomes matched {lock} */
    long errors;   /* of which on sinch/error {lock} */
    long tag;      /* this run's id component, so reruns never repeat an id */
    /* count */
    unsigned char *seen; /* by number: a message id arrived, one bit each {lock} */
    long n_seen;         /* numbers below this are tracked */
    long distinct;       /* {lock} */
    long unnumbered;     /* arrivals without a message id number below n_seen {lock} */
    double t_first;      /* {lock} */
};

/* The outcome of one asynchronous call (connect, subscribe, disconnect). */
struct waiter {
    struct bench *b;
    bool done; /* {b->lock} */
    int rc;    /* {b->lock} */
};

/* Client roles, also the context of on_lost (paho's context is not const). */
static char role_sub[] = "ceiling-sub";
static char role_pub[] = "ceiling-pub";
static char role_burst[] = "burst";
static char role_latency[] = "latency";
static char role_count[] = "count";

static struct bench bench = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "mqtt_load: %s: %s\n", what, MQTTAsync_strerror(rc));
    exit(2);
}

/* Waits until `pred` holds or `deadline` (now_s() time) passes; the lock is held. */
static bool wait_locked(bool (*pred)(const void *), const void *arg, double deadline)
{
    while (!pred(arg)) {
        double left = deadline - now_s();
        struct timespec ts;
        if (left <= 0) {
            return false;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)left;
        ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&bench.cond, &bench.lock, &ts);
    }
    return true;
}

/* ---- calls that are waited for ---- */

static void waiter_finish(struct waiter *w, int rc)
{
    pthread_mutex_lock(&w->b->lock);
    w->done = true;
    w->rc = rc;
    pthread_cond_broadcast(&w->b->cond);
    pthread_mutex_unlock(&w->b->lock);
}

static void on_call_ok(void *context, MQTTAsync_successData *data)
{
    (void)data;
    waiter_finish(context, MQTTASYNC_SUCCESS);
}

static void on_call_failed(void *context, MQTTAsync_failureData *data)
{
    waiter_finish(context, data && data->code ? data->code : MQTTASYNC_FAILURE);
}

static bool waiter_done(const void *arg)
{
    return ((const struct waiter *)arg)->done;
}

static int waiter_wait(struct waiter *w, double seconds)
{
    int rc;
    pthread_mutex_lock(&bench.lock);
    rc = wait_locked(waiter_done, w, now_s() + seconds) ? w->rc : MQTTASYNC_FAILURE;
    pthread_mutex_unlock(&bench.lock);
    return rc;
}

/* ---- callbacks ---- */

static void on_lost(void *context, char *cause)
{
    fprintf(stderr, "mqtt_load: %s lost its connection: %s\n", (const char *)context,
            cause ? cause : "?");
    pthread_mutex_lock(&bench.lock);
    bench.lost = true;
    pthread_cond_broadcast(&bench.cond);
    pthread_mutex_unlock(&bench.lock);
}

static void on_published(void *context, MQTTAsync_successData *data)
{
    (void)context;
    (void)data;
    pthread_mutex_lock(&bench.lock);
    bench.outstanding--;
    bench.acked++;
    pthread_cond_broadcast(&bench.cond);
    pthread_mutex_unlock(&bench.lock);
}

static void on_publish_failed(void *context, MQTTAsync_failureData *data)
{
    (void)context;
    (void)data;
    pthread_mutex_lock(&bench.lock);
    bench.outstanding--;
    bench.failed++;
    pthread_cond_broadcast(&bench.cond);
    pthread_mutex_unlock(&bench.lock);
}

static int on_ceiling_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    double t = now_s();
    (void)context;
    (void)topic_len;
    pthread_mutex_lock(&bench.lock);
    bench.received++;
    bench.t_last = t;
    pthread_cond_broadcast(&bench.cond);
    pthread_mutex_unlock(&bench.lock);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* The burst client subscribes to nothing, but paho wants a handler all the same. */
static int on_unexpected(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    (void)context;
    (void)topic_len;
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* An outcome on sinch/sent or sinch/error: find "id":"lat-<tag>-<n>" and time it. */
static int on_outcome(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    double t = now_s();
    char text[OUTCOME_MAX + 1];
    char needle[64];
    size_t len = msg->payloadlen < OUTCOME_MAX ? (size_t)msg->payloadlen : OUTCOME_MAX;
    bool is_error = strstr(topic, "error") != NULL;
    const char *p;
    (void)context;
    (void)topic_len;

    memcpy(text, msg->payload, len);
    text[len] = '\0';
    snprintf(needle, sizeof(needle), "\"id\":\"lat-%ld-", bench.tag);
    p = strstr(text, needle);
    if (p) {
        char *end;
        long n = strtol(p + strlen(needle), &end, 10);
        pthread_mutex_lock(&bench.lock);
        if (*end == '"' && n >= 0 && n < bench.n_lat && bench.t_pub[n] > 0 && bench.t_out[n] == 0) {
            bench.t_out[n] = t;
            bench.outcomes++;
            bench.errors += is_error;
            pthread_cond_broadcast(&bench.cond);
        }
        pthread_mutex_unlock(&bench.lock);
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* The number of a message: the trailing digits of the "message_id" value, -1 if none. */
static long message_number(const char *payload, size_t len)
{
    static const char key[] = "\"message_id\":\"";
    const size_t klen = sizeof(key) - 1;
    const char *end = payload + len;
    const char *v = NULL;
    const char *q;
    const char *p;
    long n = 0;

    for (p = payload; p + klen <= end; p++) {
        if (memcmp(p, key, klen) == 0) {
            v = p + klen;
            break;
        }
    }
    if (!v || !(q = memchr(v, '"', (size_t)(end - v)))) {
        return -1;
    }
    p = q;
    while (p > v && q - p < ID_DIGITS_MAX && p[-1] >= '0' && p[-1] <= '9') {
        p--;
    }
    if (p == q) {
        return -1;
    }
    for (; p < q; p++) {
        n = n * 10 + (*p - '0');
    }
    return n;
}

static int on_count_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    double t = now_s();
    long n = message_number(msg->payload, (size_t)msg->payloadlen);
    (void)context;
    (void)topic_len;

    pthread_mutex_lock(&bench.lock);
    if (bench.received++ == 0) {
        bench.t_first = t;
    }
    bench.t_last = t;
    if (n >= 0 && n < bench.n_seen) {
        if (!(bench.seen[n / 8] & (1u << (n % 8)))) {
            bench.seen[n / 8] |= (unsigned char)(1u << (n % 8));
            bench.distinct++;
            pthread_cond_broadcast(&bench.cond);
        }
    } else {
        bench.unnumbered++;
    }
    pthread_mutex_unlock(&bench.lock);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* ---- connections ---- */

/* paho 1.3 leaves Nagle's algorithm on and has no hook for socket options, and Nagle against the
 * broker's delayed ACKs holds small packets back for up to 40 ms. Most MQTT clients (Python's
 * paho, mosquitto's own) turn it off, so we do too: every TCP socket of this process connected
 * to the broker's port gets TCP_NODELAY. A shortcut; the fix is a socket option in paho. */
static void no_delay(int port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        int one = 1;
        if (*end || end == e->d_name || fd == dirfd(d)) {
            continue;
        }
        if (getpeername((int)fd, (struct sockaddr *)&peer, &len) == 0 &&
            peer.sin_family == AF_INET && ntohs(peer.sin_port) == port) {
            setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
    }
    closedir(d);
}

static MQTTAsync connect_client(const struct options *o, char *role,
                                MQTTAsync_messageArrived *on_message)
{
    MQTTAsync c;
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    struct waiter w = {.b = &bench};
    char uri[64];
    char id[64];
    int rc;

    /* paho counts queued publishes against maxBufferedMessages even while connected; the
     * window below is what really limits them. */
    copts.MQTTVersion = MQTTVERSION_3_1_1;
    copts.maxBufferedMessages = (int)(o->window * 2 + 100);
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", o->port);
    snprintf(id, sizeof(id), "bench-%s-%ld", role, (long)getpid());
    rc = MQTTAsync_createWithOptions(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts);
    if (rc != MQTTASYNC_SUCCESS) {
        die("create", rc);
    }
    rc = MQTTAsync_setCallbacks(c, role, on_lost, on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        die("set callbacks", rc);
    }
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.cleansession = 1;
    opts.keepAliveInterval = 30;
    opts.maxInflight = (int)(o->window + 10);
    opts.onSuccess = on_call_ok;
    opts.onFailure = on_call_failed;
    opts.context = &w;
    rc = MQTTAsync_connect(c, &opts);
    if (rc != MQTTASYNC_SUCCESS || (rc = waiter_wait(&w, 10)) != MQTTASYNC_SUCCESS) {
        die("connect", rc);
    }
    if (!o->nagle) {
        no_delay(o->port);
    }
    return c;
}

static void subscribe(MQTTAsync c, const char *topic)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    struct waiter w = {.b = &bench};
    int rc;

    opts.onSuccess = on_call_ok;
    opts.onFailure = on_call_failed;
    opts.context = &w;
    rc = MQTTAsync_subscribe(c, topic, 1, &opts);
    if (rc != MQTTASYNC_SUCCESS || (rc = waiter_wait(&w, 10)) != MQTTASYNC_SUCCESS) {
        die("subscribe", rc);
    }
}

static void disconnect(MQTTAsync c)
{
    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
    struct waiter w = {.b = &bench};

    opts.timeout = 2000;
    opts.onSuccess = on_call_ok;
    opts.onFailure = on_call_failed;
    opts.context = &w;
    if (MQTTAsync_disconnect(c, &opts) == MQTTASYNC_SUCCESS) {
        waiter_wait(&w, 3);
    }
    MQTTAsync_destroy(&c);
}

/* ---- publishing ---- */

static bool window_open(const void *arg)
{
    const struct options *o = arg;
    return bench.outstanding < o->window || bench.lost;
}

/* Publishes one QoS 1 message once fewer than o->window are in flight. */
static void publish(MQTTAsync c, const struct options *o, const char *topic, char *payload, int len)
{
    MQTTAsync_responseOptions ropts = MQTTAsync_responseOptions_initializer;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    int rc;

    pthread_mutex_lock(&bench.lock);
    if (!wait_locked(window_open, o, now_s() + (double)o->timeout) || bench.lost) {
        pthread_mutex_unlock(&bench.lock);
        fprintf(stderr, "mqtt_load: no acknowledgements (connection lost or timed out)\n");
        exit(2);
    }
    bench.outstanding++;
    pthread_mutex_unlock(&bench.lock);

    msg.payload = payload;
    msg.payloadlen = len;
    msg.qos = 1;
    ropts.onSuccess = on_published;
    ropts.onFailure = on_publish_failed;
    while ((rc = MQTTAsync_sendMessage(c, topic, &msg, &ropts)) ==
           MQTTASYNC_MAX_BUFFERED_MESSAGES) {
        /* paho's own queue is full: let its send thread catch up */
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        die("publish", rc);
    }
}

static bool all_acked(const void *arg)
{
    return bench.acked + bench.failed >= *(const long *)arg || bench.lost;
}

static int plain_payload(char *buf, size_t size, long n)
{
    /* PAYLOAD_LEN bytes of readable text, numbered so a message can be found in a log */
    int len = snprintf(buf, size, "bench message %08ld ", n);
    while (len < PAYLOAD_LEN && (size_t)len + 1 < size) {
        buf[len++] = 'x';
    }
    buf[len] = '\0';
    return len;
}

/* ---- modes ---- */

static bool received_all(const void *arg)
{
    return bench.received >= *(const long *)arg || bench.lost;
}

/* The ceiling's subscriber. It runs in a process of its own, as the bridge does, so that it has
 * paho threads of its own: paho's MQTTAsync serves every client of a process with one send and
 * one receive thread. Tells the parent it has subscribed ("R"), then "<received> <t_last>". */
static int ceiling_subscriber(const struct options *o, const char *topic, int fd)
{
    MQTTAsync sub = connect_client(o, role_sub, on_ceiling_message);
    char line[64];
    double start;
    int len;

    subscribe(sub, topic);
    if (write(fd, "R", 1) != 1) {
        return 2;
    }
    pthread_mutex_lock(&bench.lock);
    start = now_s();
    /* until everything arrived, nothing arrived for 5 s, or the timeout */
    while (!received_all(&o->count) && now_s() < start + (double)o->timeout) {
        double last = bench.received > 0 ? bench.t_last : start;
        double until =
            last + 5 < start + (double)o->timeout ? last + 5 : start + (double)o->timeout;
        if (!wait_locked(received_all, &o->count, until) && bench.t_last <= last) {
            break;
        }
    }
    len = snprintf(line, sizeof(line), "%ld %.6f\n", bench.received, bench.t_last);
    pthread_mutex_unlock(&bench.lock);
    disconnect(sub);
    return write(fd, line, (size_t)len) == len ? 0 : 2;
}

static int run_ceiling(const struct options *o)
{
    MQTTAsync pub;
    char topic[64];
    char payload[PAYLOAD_LEN + 32];
    char line[64] = "";
    int fds[2];
    pid_t child;
    double t0;
    double t_pub_done;
    double t_last = 0;
    long received = 0;
    ssize_t n;
    int status;

    /* fork before paho starts any thread */
    snprintf(topic, sizeof(topic), "%s/%ld", BENCH_TOPIC, (long)getpid());
    if (pipe(fds) != 0 || (child = fork()) < 0) {
        perror("mqtt_load: fork");
        return 2;
    }
    if (child == 0) {
        close(fds[0]);
        _exit(ceiling_subscriber(o, topic, fds[1]));
    }
    close(fds[1]);
    if (read(fds[0], line, 1) != 1) {
        fprintf(stderr, "mqtt_load: the subscriber did not start\n");
        return 2;
    }
    pub = connect_client(o, role_pub, on_unexpected);
    t0 = now_s();
    for (long i = 0; i < o->count; i++) {
        int len = plain_payload(payload, sizeof(payload), i);
        publish(pub, o, topic, payload, len);
    }
    pthread_mutex_lock(&bench.lock);
    wait_locked(all_acked, &o->count, t0 + (double)o->timeout);
    t_pub_done = now_s();
    pthread_mutex_unlock(&bench.lock);
    disconnect(pub);

    n = read(fds[0], line, sizeof(line) - 1);
    close(fds[0]);
    waitpid(child, &status, 0);
    if (n > 0) {
        char *end;
        line[n] = '\0';
        received = strtol(line, &end, 10);
        t_last = strtod(end, NULL);
    }
    printf("mode=ceiling count=%ld received=%ld publish_s=%.3f seconds=%.3f rate=%.0f\n", o->count,
           received, t_pub_done - t0, t_last - t0,
           received > 0 ? (double)received / (t_last - t0) : 0);
    return received == o->count ? 0 : 1;
}

static int run_burst(const struct options *o)
{
    MQTTAsync pub = connect_client(o, role_burst, on_unexpected);
    const char *topic = o->topic ? o->topic : (o->json ? JSON_TOPIC : BURST_TOPIC);
    char payload[256];
    double t0;
    double t1;
    long acked;
    long failed;

    t0 = now_s();
    for (long i = 0; i < o->count; i++) {
        int len;
        if (o->json) {
            char text[PAYLOAD_LEN + 32];
            plain_payload(text, sizeof(text), i);
            len = snprintf(payload, sizeof(payload),
                           "{\"id\":\"burst-%ld-%ld\",\"to\":\"%s\",\"text\":\"%s\"}",
                           (long)getpid(), i, BENCH_TO, text);
        } else {
            len = plain_payload(payload, sizeof(payload), i);
        }
        publish(pub, o, topic, payload, len);
    }
    pthread_mutex_lock(&bench.lock);
    wait_locked(all_acked, &o->count, t0 + (double)o->timeout);
    t1 = now_s();
    acked = bench.acked;
    failed = bench.failed;
    pthread_mutex_unlock(&bench.lock);

    /* t0 is CLOCK_MONOTONIC, the clock of Python's time.monotonic() on Linux, so run.py can
     * measure from the first publish to the last send the simulator accepted. */
    printf("mode=burst count=%ld acked=%ld failed=%ld t0_mono=%.6f seconds=%.3f rate=%.0f\n",
           o->count, acked, failed, t0, t1 - t0, acked > 0 ? (double)acked / (t1 - t0) : 0);
    disconnect(pub);
    return acked == o->count ? 0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool all_outcomes(const void *arg)
{
    return bench.outcomes >= *(const long *)arg || bench.lost;
}

static double percentile(const double *sorted, long n, double p)
{
    long i = (long)(p / 100.0 * (double)n + 0.999999) - 1; /* nearest rank */
    if (i < 0) {
        i = 0;
    }
    return sorted[i < n ? i : n - 1];
}

/* Epoch ms of a CLOCK_MONOTONIC time: for comparing with the simulator's recorded time_ms. */
static double epoch_ms(double mono)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (mono - now_s() + (double)ts.tv_sec + (double)ts.tv_nsec / 1e9) * 1000.0;
}

static int write_times(const char *path, long n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 2;
    }
    for (long i = 0; i < n; i++) {
        fprintf(f, "%ld %.3f %.3f\n", i, epoch_ms(bench.t_pub[i]),
                bench.t_out[i] > 0 ? epoch_ms(bench.t_out[i]) : 0.0);
    }
    return fclose(f) == 0 ? 0 : 2;
}

static int run_latency(const struct options *o)
{
    MQTTAsync c;
    long n = (long)(o->rate * o->seconds);
    double interval = 1.0 / o->rate;
    double t0;
    double *lat;
    long got = 0;
    long errors;
    int status = 0;
    char payload[256];
    char text[PAYLOAD_LEN + 32];

    if (n <= 0) {
        fprintf(stderr, "mqtt_load: --rate and --seconds must be positive\n");
        return 2;
    }
    bench.tag = (long)getpid();
    bench.n_lat = n;
    bench.t_pub = calloc((size_t)n, sizeof(double));
    bench.t_out = calloc((size_t)n, sizeof(double));
    lat = calloc((size_t)n, sizeof(double));
    if (!bench.t_pub || !bench.t_out || !lat) {
        fprintf(stderr, "mqtt_load: out of memory\n");
        free(lat);
        free(bench.t_pub);
        free(bench.t_out);
        return 2;
    }
    c = connect_client(o, role_latency, on_outcome);
    subscribe(c, "sinch/sent");
    subscribe(c, "sinch/error");

    t0 = now_s();
    for (long i = 0; i < n; i++) {
        double due = t0 + (double)i * interval;
        struct timespec ts;
        int len;
        ts.tv_sec = (time_t)due;
        ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        plain_payload(text, sizeof(text), i);
        len = snprintf(payload, sizeof(payload),
                       "{\"id\":\"lat-%ld-%ld\",\"to\":\"%s\",\"text\":\"%s\"}", bench.tag, i,
                       BENCH_TO, text);
        pthread_mutex_lock(&bench.lock);
        bench.t_pub[i] = now_s();
        pthread_mutex_unlock(&bench.lock);
        publish(c, o, JSON_TOPIC, payload, len);
    }
    pthread_mutex_lock(&bench.lock);
    wait_locked(all_outcomes, &n, now_s() + 10);
    for (long i = 0; i < n; i++) {
        if (bench.t_out[i] > 0) {
            lat[got++] = (bench.t_out[i] - bench.t_pub[i]) * 1000.0;
        }
    }
    errors = bench.errors;
    pthread_mutex_unlock(&bench.lock);
    disconnect(c);
    if (o->times && write_times(o->times, n) != 0) {
        status = 2;
    }

    qsort(lat, (size_t)got, sizeof(double), cmp_double);
    printf("# publish -> outcome on sinch/sent|error: an upper bound of publish -> request, as it "
           "includes Sinch's answer and the outcome's publish\n");
    printf("mode=latency rate=%.0f sent=%ld outcomes=%ld errors=%ld", o->rate, n, got, errors);
    if (got > 0) {
        printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f", percentile(lat, got, 50),
               percentile(lat, got, 90), percentile(lat, got, 99), lat[got - 1]);
    }
    printf("\n");
    free(lat);
    free(bench.t_pub);
    free(bench.t_out);
    return status != 0 ? status : got == n ? 0 : 1;
}

static bool counted_all(const void *arg)
{
    return bench.distinct >= *(const long *)arg || bench.lost;
}

/* Counts what arrives on o->topic until o->count distinct message numbers (0 .. count-1, see
 * message_number()) are in, nothing arrived for COUNT_IDLE_S after the first, or the timeout.
 * Prints "ready" once subscribed, so run.py starts the load only then. */
static int run_count(const struct options *o)
{
    MQTTAsync c;
    double start;
    double deadline;
    long received;
    long distinct;

    bench.n_seen = o->count;
    bench.seen = calloc((size_t)o->count / 8 + 1, 1);
    if (!bench.seen) {
        fprintf(stderr, "mqtt_load: out of memory\n");
        return 2;
    }
    c = connect_client(o, role_count, on_count_message);
    subscribe(c, o->topic ? o->topic : "#");
    printf("ready\n");
    pthread_mutex_lock(&bench.lock);
    start = now_s();
    deadline = start + (double)o->timeout;
    while (!counted_all(&o->count) && now_s() < deadline) {
        double last = bench.received > 0 ? bench.t_last : deadline - COUNT_IDLE_S;
        double until = last + COUNT_IDLE_S < deadline ? last + COUNT_IDLE_S : deadline;
        if (!wait_locked(counted_all, &o->count, until) && bench.t_last <= last) {
            break;
        }
    }
    received = bench.received;
    distinct = bench.distinct;
    /* t_first_mono and t_last_mono are CLOCK_MONOTONIC, comparable with the load's t0_mono */
    printf("mode=count count=%ld received=%ld distinct=%ld duplicates=%ld unnumbered=%ld "
           "t_first_mono=%.6f t_last_mono=%.6f\n",
           o->count, received, distinct, received - distinct - bench.unnumbered, bench.unnumbered,
           bench.t_first, bench.t_last);
    pthread_mutex_unlock(&bench.lock);
    disconnect(c);
    free(bench.seen);
    return distinct == o->count ? 0 : 1;
}

/* ---- command line ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: mqtt_load ceiling --port P --count N [--window W]\n"
            "       mqtt_load burst   --port P --count N [--topic T | --json] [--window W]\n"
            "       mqtt_load latency --port P --rate R --seconds S [--times FILE]\n"
            "       mqtt_load count   --port P --topic FILTER --count N\n"
            "The broker is 127.0.0.1:P. Every mode also takes --timeout SECONDS (default %d) and\n"
            "--nagle (leave Nagle's algorithm on, as paho does by default).\n",
            DEFAULT_TIMEOUT);
    exit(2);
}

static double number(const char *s)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "mqtt_load: not a number: %s\n", s);
        usage();
    }
    return v;
}

int main(int argc, char **argv)
{
    struct options o = {
        .window = DEFAULT_WINDOW, .timeout = DEFAULT_TIMEOUT, .rate = 200, .seconds = 10};

    if (argc < 2) {
        usage();
    }
    o.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o.json = true;
            continue;
        }
        if (strcmp(a, "--nagle") == 0) {
            o.nagle = true;
            continue;
        }
        if (!v) {
            usage();
        }
        i++;
        if (strcmp(a, "--port") == 0) {
            o.port = (int)number(v);
        } else if (strcmp(a, "--count") == 0) {
            o.count = (long)number(v);
        } else if (strcmp(a, "--topic") == 0) {
            o.topic = v;
        } else if (strcmp(a, "--rate") == 0) {
            o.rate = number(v);
        } else if (strcmp(a, "--seconds") == 0) {
            o.seconds = number(v);
        } else if (strcmp(a, "--window") == 0) {
            o.window = (long)number(v);
        } else if (strcmp(a, "--times") == 0) {
            o.times = v;
        } else if (strcmp(a, "--timeout") == 0) {
            o.timeout = (long)number(v);
        } else {
            usage();
        }
    }
    if (o.port <= 0 || o.port > 65535 || o.window < 1) {
        usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(o.mode, "ceiling") == 0 && o.count > 0) {
        return run_ceiling(&o);
    }
    if (strcmp(o.mode, "burst") == 0 && o.count > 0) {
        return run_burst(&o);
    }
    if (strcmp(o.mode, "count") == 0 && o.count > 0) {
        return run_count(&o);
    }
    if (strcmp(o.mode, "latency") == 0 && o.rate > 0) {
        return run_latency(&o);
    }
    usage();
    return 2;
}
