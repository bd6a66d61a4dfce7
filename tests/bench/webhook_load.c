/* webhook_load: the webhook side of tests/bench/run.py. POSTs N distinct MESSAGE_INBOUND
 * webhooks, each signed the way Sinch signs them (HMAC-SHA256 of body "." nonce "." timestamp,
 * base64), over C keep-alive connections with libcurl's multi interface, and prints one line
 * `mode=webhooks key=value ...`: the rate, the answers and the latency of each request (handed
 * to curl -> whole answer read). Single-threaded. A benchmark, not a test: it prints figures. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONNECTIONS 16
#define DEFAULT_SENDERS     100
#define DEFAULT_TIMEOUT     120 /* seconds the whole run may take */
#define BODY_MAX            1024
#define ID_DIGITS           18 /* message ids: "WL", 6 hex of the tag, 18 digits: 26 */
#define STATUS_KINDS        8  /* distinct non-200 statuses remembered for the summary */

struct options {
    const char *url;
    const char *secret;
    long count;
    long connections;
    long senders;
    double rate; /* 0: as fast as the connections allow */
    long timeout;
    long tag; /* this run's id component, so reruns never repeat a message id */
};

/* One connection's request in flight. The body and headers live as long as the transfer. */
struct slot {
    CURL *easy;
    struct curl_slist *headers;
    char body[BODY_MAX];
    long n;         /* the request's number, -1 when idle */
    double started; /* when it was handed to curl (--rate: when it was due) */
};

struct run {
    double *lat; /* ms, by request number */
    long done;
    long ok;
    long non200;
    long failed; /* no HTTP answer at all (connection refused, reset, timed out) */
    long status[STATUS_KINDS];
    long status_n[STATUS_KINDS];
    char first_error[CURL_ERROR_SIZE];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* A MESSAGE_INBOUND callback as Sinch sends it, text only (the integration tests' shape). */
static int inbound_body(char *buf, size_t size, const struct options *o, long n, char *id,
                        size_t id_size)
{
    char sender[32];

    snprintf(id, id_size, "WL%06lX%0*ld", (unsigned long)o->tag & 0xffffffUL, ID_DIGITS, n);
    snprintf(sender, sizeof(sender), "1555%07ld", n % o->senders);
    return snprintf(buf, size,
                    "{\"app_id\":\"sim-app\",\"project_id\":\"sim-project\","
                    "\"accepted_time\":\"2026-11-28T14:23:45.123Z\","
                    "\"event_time\":\"2026-11-28T14:23:44Z\","
                    "\"message\":{\"id\":\"%s\",\"direction\":\"TO_APP\","
                    "\"contact_message\":{\"text_message\":{\"text\":\"bench webhook %08ld\"}},"
                    "\"channel_identity\":{\"channel\":\"WHATSAPP\",\"identity\":\"%s\","
                    "\"app_id\":\"\"},\"conversation_id\":\"\",\"contact_id\":\"\","
                    "\"metadata\":\"\",\"accept_time\":\"2026-11-28T14:23:45.101Z\","
                    "\"processing_mode\":\"DISPATCH\"},"
                    "\"message_metadata\":\"\",\"correlation_id\":\"\"}",
                    id, n, sender);
}

/* base64(HMAC-SHA256(secret, body "." nonce "." timestamp)), into out (at least 45 bytes). */
static bool sign(const char *secret, const char *body, size_t body_len, const char *nonce,
                 const char *timestamp, char *out)
{
    char data[BODY_MAX + 128];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    int len = snprintf(data, sizeof(data), "%.*s.%s.%s", (int)body_len, body, nonce, timestamp);

    if (len < 0 || (size_t)len >= sizeof(data) ||
        !HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, (size_t)len,
              mac, &mac_len)) {
        return false;
    }
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
    return true;
}

/* Prepares slot s for request n and hands it to curl: a fresh body, nonce, timestamp and
 * signature every time, as a real redelivery-free stream from Sinch would have. */
static bool start_request(CURLM *multi, struct slot *s, const struct options *o, long n, double due)
{
    char id[40];
    char nonce[48];
    char ts[24];
    char sig[64];
    char h[128];
    int len = inbound_body(s->body, sizeof(s->body), o, n, id, sizeof(id));

    if (len < 0 || (size_t)len >= sizeof(s->body)) {
        return false;
    }
    snprintf(nonce, sizeof(nonce), "n-%lx-%ld", (unsigned long)o->tag, n);
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    if (!sign(o->secret, s->body, (size_t)len, nonce, ts, sig)) {
        return false;
    }
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    /* "Expect:" off: curl would otherwise wait for a 100 Continue on larger bodies. */
    const char *fixed[] = {"Content-Type: application/json",
                           "Expect:", "x-sinch-webhook-signature-algorithm: HmacSHA256"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        s->headers = curl_slist_append(s->headers, fixed[i]);
    }
    snprintf(h, sizeof(h), "x-sinch-webhook-signature-nonce: %s", nonce);
    s->headers = curl_slist_append(s->headers, h);
    snprintf(h, sizeof(h), "x-sinch-webhook-signature-timestamp: %s", ts);
    s->headers = curl_slist_append(s->headers, h);
    snprintf(h, sizeof(h), "x-sinch-webhook-signature: %s", sig);
    s->headers = curl_slist_append(s->headers, h);
    if (!s->headers) {
        return false;
    }
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    s->n = n;
    s->started = due > 0 ? due : now_s();
    return curl_multi_add_handle(multi, s->easy) == CURLM_OK;
}

static void finish_request(struct run *r, struct slot *s, CURLcode result)
{
    long status = 0;
    double t = now_s();

    r->lat[s->n] = (t - s->started) * 1000.0;
    r->done++;
    if (result != CURLE_OK) {
        r->failed++;
        if (!r->first_error[0]) {
            snprintf(r->first_error, sizeof(r->first_error), "%s", curl_easy_strerror(result));
        }
    } else {
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            r->ok++;
        } else {
            r->non200++;
            for (int i = 0; i < STATUS_KINDS; i++) {
                if (r->status[i] == status || r->status[i] == 0) {
                    r->status[i] = status;
                    r->status_n[i]++;
                    break;
                }
            }
        }
    }
    s->n = -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, long n, double p)
{
    long i = (long)(p / 100.0 * (double)n + 0.999999) - 1; /* nearest rank */
    if (i < 0) {
        i = 0;
    }
    return sorted[i < n ? i : n - 1];
}

static int run(const struct options *o)
{
    struct run r = {0};
    struct slot *slots = calloc((size_t)o->connections, sizeof(*slots));
    CURLM *multi = curl_multi_init();
    long next = 0;
    double t0;
    double t1;
    double deadline;
    double interval = o->rate > 0 ? 1.0 / o->rate : 0;
    int status = 2;

    r.lat = calloc((size_t)o->count, sizeof(double));
    if (!slots || !multi || !r.lat) {
        fprintf(stderr, "webhook_load: out of memory\n");
        goto out;
    }
    /* At most one connection per slot, all kept open between requests. */
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->connections);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, o->connections);
    for (long i = 0; i < o->connections; i++) {
        struct slot *s = &slots[i];
        s->n = -1;
        s->easy = curl_easy_init();
        if (!s->easy) {
            fprintf(stderr, "webhook_load: curl_easy_init failed\n");
            goto out;
        }
        curl_easy_setopt(s->easy, CURLOPT_URL, o->url);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    }

    t0 = now_s();
    deadline = t0 + (double)o->timeout;
    while (r.done < o->count && now_s() < deadline) {
        int running;
        int queued;
        int wait_ms = 100;
        int finished = 0;
        CURLMsg *m;

        /* Fill idle slots: all of them at once, or those whose request is due (--rate). */
        for (long i = 0; i < o->connections && next < o->count; i++) {
            double due = interval > 0 ? t0 + (double)next * interval : 0;
            if (slots[i].n >= 0) {
                continue;
            }
            if (due > 0 && due > now_s()) {
                break;
            }
            if (!start_request(multi, &slots[i], o, next, due)) {
                fprintf(stderr, "webhook_load: cannot prepare request %ld\n", next);
                goto out;
            }
            next++;
        }
        if (interval > 0 && next < o->count) {
            double left = t0 + (double)next * interval - now_s();
            wait_ms = left <= 0 ? 0 : left * 1000 < 100 ? (int)(left * 1000) : 100;
        }
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &queued)) != NULL) {
            struct slot *s = NULL;
            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            finish_request(&r, s, m->data.result);
            curl_multi_remove_handle(multi, m->easy_handle);
            finished++;
        }
        /* A slot that just finished takes its next request at once: waiting first would wait out
         * the whole wait_ms when no other transfer is left to wake the poll (every answer read
         * in one perform: one connection, or a server that answers them all in one go). */
        if (r.done < o->count && finished == 0) {
            curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
        }
    }
    t1 = now_s();

    qsort(r.lat, (size_t)r.done, sizeof(double), cmp_double);
    /* t0 is CLOCK_MONOTONIC, the clock of Python's time.monotonic() on Linux, so run.py can
     * measure from the first webhook to the last event its subscriber received. */
    printf("mode=webhooks sent=%ld ok=%ld non200=%ld failed=%ld connections=%ld t0_mono=%.6f "
           "seconds=%.3f rate=%.0f",
           r.done, r.ok, r.non200, r.failed, o->connections, t0, t1 - t0,
           r.done > 0 ? (double)r.done / (t1 - t0) : 0);
    if (o->rate > 0) {
        printf(" target_rate=%.0f", o->rate);
    }
    if (r.done > 0) {
        printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f", percentile(r.lat, r.done, 50),
               percentile(r.lat, r.done, 90), percentile(r.lat, r.done, 99), r.lat[r.done - 1]);
    }
    printf("\n");
    for (int i = 0; i < STATUS_KINDS && r.status[i]; i++) {
        fprintf(stderr, "webhook_load: HTTP %ld: %ld answers\n", r.status[i], r.status_n[i]);
    }
    if (r.first_error[0]) {
        fprintf(stderr, "webhook_load: %ld requests failed, the first with: %s\n", r.failed,
                r.first_error);
    }
    status = r.ok == o->count ? 0 : 1;
out:
    for (long i = 0; slots && i < o->connections; i++) {
        if (slots[i].easy) {
            if (slots[i].n >= 0) {
                curl_multi_remove_handle(multi, slots[i].easy);
            }
            curl_easy_cleanup(slots[i].easy);
        }
        curl_slist_free_all(slots[i].headers);
    }
    curl_multi_cleanup(multi);
    free(slots);
    free(r.lat);
    return status;
}

/* ---- command line ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: webhook_load --url URL --secret S --count N [--connections C] [--rate R]\n"
            "                    [--senders K] [--timeout SECONDS]\n"
            "POSTs N signed MESSAGE_INBOUND webhooks with distinct message ids to URL over C\n"
            "keep-alive connections (default %d), as fast as they go or R a second; senders\n"
            "are K numbers 1555000000x (default %d). Exit 0: all answered 200.\n",
            DEFAULT_CONNECTIONS, DEFAULT_SENDERS);
    exit(2);
}

static double number(const char *s)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "webhook_load: not a number: %s\n", s);
        usage();
    }
    return v;
}

int main(int argc, char **argv)
{
    struct options o = {.connections = DEFAULT_CONNECTIONS,
                        .senders = DEFAULT_SENDERS,
                        .timeout = DEFAULT_TIMEOUT,
                        .tag = (long)getpid()};
    int status;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            o.url = v;
        } else if (strcmp(a, "--secret") == 0) {
            o.secret = v;
        } else if (strcmp(a, "--count") == 0) {
            o.count = (long)number(v);
        } else if (strcmp(a, "--connections") == 0) {
            o.connections = (long)number(v);
        } else if (strcmp(a, "--senders") == 0) {
            o.senders = (long)number(v);
        } else if (strcmp(a, "--rate") == 0) {
            o.rate = number(v);
        } else if (strcmp(a, "--timeout") == 0) {
            o.timeout = (long)number(v);
        } else {
            usage();
        }
    }
    if (!o.url || !o.secret || o.count <= 0 || o.connections < 1 || o.senders < 1 ||
        o.senders > 10000000) {
        usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "webhook_load: curl_global_init failed\n");
        return 2;
    }
    status = run(&o);
    curl_global_cleanup();
    return status;
}
