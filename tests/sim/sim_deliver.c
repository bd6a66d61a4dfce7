/* The deliverer. Its thread owns a binary heap of jobs ordered by due time (reports waiting
 * for their next status, deliveries waiting for their first attempt or a retry) and up to
 * MAX_IN_FLIGHT attempts in a curl multi handle; curl_multi_poll() sleeps until the next job
 * is due, a transfer moves, or the loop calls curl_multi_wakeup() after queueing work. */
#include "sim_deliver.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sim_sign.h"

#define MAX_IN_FLIGHT      64
#define ATTEMPT_TIMEOUT_MS 10000 /* an answer slower than this is a failed attempt */
#define CONNECT_TIMEOUT_MS 2000
#define IDLE_POLL_MS       1000
#define MAX_RETRY_MS       (24L * 3600 * 1000) /* the doubling stops growing here */
#define STALE_S            3600

/* A delivery: one callback body to one target, through its attempts. */
struct delivery {
    struct sim_target target;
    char event_id[SIM_ULID_LEN + 1];
    enum sim_trigger trigger;
    struct sim_blob *body;
    enum sim_sig_mode sig;
    unsigned attempt; /* attempts started */
    char fixed_nonce[SIM_NONCE_MAX];
    char fixed_ts[SIM_TS_MAX];
    /* The attempt in flight. */
    CURL *easy;
    struct curl_slist *headers;
    int64_t started_ms;
    char nonce[SIM_NONCE_MAX];
    char ts[SIM_TS_MAX];
    char errbuf[CURL_ERROR_SIZE];
};

/* What waits in the heap: a report plan, or a delivery (allocated in the same block, so a
 * send's report job stays small: there may be hundreds of thousands of them). */
struct job {
    struct job *next; /* in the incoming queue */
    int64_t due_ms;
    uint64_t order;               /* ties in the heap go first-come first-served */
    struct sim_report_plan *plan; /* a report job: the plan ... */
    unsigned step;                /* ... and the step due next */
    struct delivery *dv;          /* a delivery job: points just behind the job */
};

struct sim_deliver {
    struct sim_deliver_config cfg;
    struct sim_webhooks *reg;
    struct sim_cblog *log;
    CURLM *multi;
    pthread_t thread;
    atomic_size_t pending; /* jobs alive, anywhere */

    pthread_mutex_t lock;
    struct job *in_head; /* {lock} queued by the loop */
    struct job *in_tail; /* {lock} */
    bool stop;           /* {lock} */
    bool cancel;         /* {lock} drop what the thread holds */
    int64_t wake_at;     /* {lock} when the sleeping thread wakes anyway; INT64_MIN: awake */

    /* The thread's own. */
    struct job **heap;
    size_t heap_len, heap_cap;
    uint64_t next_order;
    struct job *in_flight[MAX_IN_FLIGHT];
    size_t n_in_flight;
    struct sim_ids ids; /* event ids and nonces; the loop's generator is the loop's */
};

/* ---- jobs ---- */

static void job_free(struct sim_deliver *d, struct job *j)
{
    if (!j) {
        return;
    }
    if (j->dv && j->dv->easy) {
        curl_multi_remove_handle(d->multi, j->dv->easy);
        curl_easy_cleanup(j->dv->easy);
    }
    if (j->dv) {
        curl_slist_free_all(j->dv->headers);
        sim_target_release(&j->dv->target);
        sim_blob_unref(j->dv->body);
    }
    free(j->plan);
    free(j);
    atomic_fetch_sub(&d->pending, 1);
}

/* A report job, or with `delivery` a delivery job. */
static struct job *job_new(struct sim_deliver *d, bool delivery)
{
    struct job *j = calloc(1, sizeof(*j) + (delivery ? sizeof(struct delivery) : 0));
    if (j) {
        j->dv = delivery ? (struct delivery *)(j + 1) : NULL;
        atomic_fetch_add(&d->pending, 1);
    }
    return j;
}

/* ---- the heap ---- */

static bool before(const struct job *a, const struct job *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
}

static void swap(struct job **h, size_t a, size_t b)
{
    struct job *t = h[a];
    h[a] = h[b];
    h[b] = t;
}

/* Files `j` by its due time; on out of memory the job is dropped. */
static void heap_push(struct sim_deliver *d, struct job *j)
{
    if (d->heap_len == d->heap_cap) {
        size_t cap = d->heap_cap ? d->heap_cap * 2 : 256;
        /* The type, not sizeof(*h): clang-tidy 14 takes *h, a struct job *, for a mistake. */
        struct job **h = realloc(d->heap, cap * sizeof(struct job *));
        if (!h) {
            job_free(d, j);
            return;
        }
        d->heap = h;
        d->heap_cap = cap;
    }
    j->order = d->next_order++;
    size_t i = d->heap_len++;
    d->heap[i] = j;
    while (i > 0 && before(d->heap[i], d->heap[(i - 1) / 2])) {
        swap(d->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct job *heap_pop(struct sim_deliver *d)
{
    struct job *top = d->heap[0];
    d->heap[0] = d->heap[--d->heap_len];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->heap_len && before(d->heap[l], d->heap[m])) {
            m = l;
        }
        if (r < d->heap_len && before(d->heap[r], d->heap[m])) {
            m = r;
        }
        if (m == i) {
            break;
        }
        swap(d->heap, i, m);
        i = m;
    }
    return top;
}

/* ---- one attempt ---- */

static size_t discard(char *ptr, size_t size, size_t n, void *user)
{
    (void)ptr;
    (void)user;
    return size * n;
}

/* libcurl calls this once connected: a last check that the peer really is on loopback, whatever
 * a name resolved to. */
static int loopback_only(void *user, char *primary_ip, char *local_ip, int primary_port,
                         int local_port)
{
    unsigned char a[16];
    (void)user;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (inet_pton(AF_INET, primary_ip, a) == 1) {
        return a[0] == 127 ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
    }
    return strcmp(primary_ip, "::1") == 0 || strncmp(primary_ip, "::ffff:127.", 11) == 0
               ? CURL_PREREQFUNC_OK
               : CURL_PREREQFUNC_ABORT;
}

static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l) {
        *list = l;
    }
    return l != NULL;
}

/* The signature headers of this attempt, per the job's mode; none without a secret. */
static bool sign_headers(struct sim_deliver *d, struct job *j, int64_t now_ms)
{
    struct delivery *v = j->dv;
    char sig[SIM_SIGNATURE_LEN + 1];
    v->nonce[0] = v->ts[0] = '\0';
    if (!v->target.secret || v->sig == SIM_SIG_NONE) {
        return true;
    }
    if (v->sig == SIM_SIG_REPLAY) {
        memcpy(v->nonce, v->fixed_nonce, sizeof(v->nonce));
        memcpy(v->ts, v->fixed_ts, sizeof(v->ts));
    } else {
        sim_ids_ulid(&d->ids, now_ms, v->nonce);
        snprintf(v->ts, sizeof(v->ts), "%lld",
                 (long long)(now_ms / 1000 - (v->sig == SIM_SIG_STALE ? STALE_S : 0)));
    }
    if (!sim_sign(v->target.secret, sim_blob_data(v->body), sim_blob_len(v->body), v->nonce, v->ts,
                  sig)) {
        return false;
    }
    if (v->sig == SIM_SIG_BAD) {
        sig[0] = sig[0] == 'A' ? 'B' : 'A';
    }
    return add_header(&v->headers, "x-sinch-webhook-signature-timestamp", v->ts) &&
           add_header(&v->headers, "x-sinch-webhook-signature-nonce", v->nonce) &&
           add_header(&v->headers, "x-sinch-webhook-signature-algorithm", "HmacSHA256") &&
           add_header(&v->headers, "x-sinch-webhook-signature", sig);
}

/* Starts the next attempt of delivery `j`; false when it could not (the job is then given up). */
static bool start(struct sim_deliver *d, struct job *j, int64_t now_ms)
{
    struct delivery *v = j->dv;
    v->attempt++;
    v->started_ms = now_ms;
    v->errbuf[0] = '\0';
    v->easy = curl_easy_init();
    if (!v->easy || !add_header(&v->headers, "Content-Type", "application/json") ||
        !add_header(&v->headers, "Expect", "") || !sign_headers(d, j, now_ms)) {
        return false;
    }
    CURL *e = v->easy;
    curl_easy_setopt(e, CURLOPT_URL, v->target.url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, sim_blob_data(v->body));
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sim_blob_len(v->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, v->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sinch-sim");
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, v->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ATTEMPT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never through an http_proxy from the environment */
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, loopback_only);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    /* Loopback https is a test receiver with a certificate of its own making. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
        return false;
    }
    d->in_flight[d->n_in_flight++] = j;
    return true;
}

static const char *sig_name(const struct delivery *v)
{
    static const char *const names[] = {"signed", "bad", "stale", "none", "replay"};
    return v->target.secret ? names[v->sig] : "unsigned";
}

static void log_attempt(struct sim_deliver *d, struct job *j, int status, const char *error,
                        bool final, int64_t now_ms)
{
    struct delivery *v = j->dv;
    struct sim_cb_attempt a = {
        .time_ms = v->started_ms,
        .duration_ms = now_ms - v->started_ms,
        .event_id = v->event_id,
        .target = v->target.url,
        .webhook_id = v->target.webhook_id,
        .trigger = v->trigger,
        .attempt = v->attempt,
        .status = status,
        .error = error,
        .body = v->body,
        .signature = sig_name(v),
        .nonce = v->nonce,
        .timestamp = v->ts,
        .final = final,
    };
    sim_cblog_add(d->log, &a);
    if (d->cfg.verbose) {
        char line[1024];
        int n = snprintf(line, sizeof(line), "sinch-sim: callback %s %s -> %s attempt %u: %d%s%s\n",
                         v->event_id, sim_trigger_name(v->trigger), v->target.url, v->attempt,
                         status, error[0] ? " " : "", error);
        if (n > 0 &&
            write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line)) < 0) {
            /* stderr is gone; nothing better to do */
        }
    }
}

/* An attempt ended (status 0: no answer): log it, then retry later or finish. */
static void finish(struct sim_deliver *d, struct job *j, int status, const char *error,
                   int64_t now_ms)
{
    struct delivery *v = j->dv;
    bool ok = status >= 200 && status < 300;
    bool final = ok || v->attempt >= d->cfg.max_attempts;
    log_attempt(d, j, status, error, final, now_ms);
    if (v->easy) {
        curl_multi_remove_handle(d->multi, v->easy);
        curl_easy_cleanup(v->easy);
        v->easy = NULL;
    }
    curl_slist_free_all(v->headers);
    v->headers = NULL;
    if (final) {
        job_free(d, j);
        return;
    }
    long wait = d->cfg.retry_ms;
    for (unsigned i = 1; i < v->attempt && wait < MAX_RETRY_MS; i++) {
        wait *= 2;
    }
    j->due_ms = now_ms + (wait < MAX_RETRY_MS ? wait : MAX_RETRY_MS);
    heap_push(d, j);
}

static void drop_in_flight(struct sim_deliver *d, const struct job *j)
{
    for (size_t i = 0; i < d->n_in_flight; i++) {
        if (d->in_flight[i] == j) {
            d->in_flight[i] = d->in_flight[--d->n_in_flight];
            return;
        }
    }
}

static void reap(struct sim_deliver *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        char *priv = NULL;
        long status = 0;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct job *j = (struct job *)priv;
        if (rc == CURLE_OK) {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        }
        drop_in_flight(d, j);
        finish(d, j, (int)status,
               rc == CURLE_OK     ? ""
               : j->dv->errbuf[0] ? j->dv->errbuf
                                  : curl_easy_strerror(rc),
               sim_now_ms());
    }
}

/* ---- reports ---- */

/* Report `j->step` of a plan is due: one delivery per target of MESSAGE_DELIVERY now, then the
 * plan waits for its next step. */
static void fan_out(struct sim_deliver *d, struct job *j, int64_t now_ms)
{
    struct sim_target targets[SIM_WEBHOOKS_MAX + 1];
    size_t n = sim_webhooks_targets(d->reg, SIM_TRIGGER_MESSAGE_DELIVERY, targets);
    struct sim_cb_context ctx = {d->cfg.app_id, d->cfg.project_id, now_ms, &d->ids};
    struct sim_blob *body = NULL;
    if (n > 0) {
        json_t *json = sim_report_body(j->plan, j->step, &ctx);
        body = json ? sim_blob_take(json_dumps(json, SIM_CB_DUMP_FLAGS)) : NULL;
        json_decref(json);
    }
    for (size_t i = 0; i < n; i++) {
        struct job *dj = body ? job_new(d, true) : NULL;
        if (!dj) {
            sim_target_release(&targets[i]);
            continue;
        }
        dj->dv->target = targets[i];
        sim_ids_ulid(&d->ids, now_ms, dj->dv->event_id);
        dj->dv->trigger = SIM_TRIGGER_MESSAGE_DELIVERY;
        dj->dv->body = sim_blob_ref(body);
        dj->due_ms = now_ms;
        heap_push(d, dj);
    }
    sim_blob_unref(body);
    struct sim_report_step next;
    if (sim_report_step(j->plan, ++j->step, &next)) {
        j->due_ms += d->cfg.report_delay_ms;
        heap_push(d, j);
    } else {
        job_free(d, j);
    }
}

/* ---- the thread ---- */

static void drop_all(struct sim_deliver *d)
{
    while (d->n_in_flight > 0) {
        job_free(d, d->in_flight[--d->n_in_flight]);
    }
    while (d->heap_len > 0) {
        job_free(d, d->heap[--d->heap_len]);
    }
}

/* Starts whatever is due, as far as MAX_IN_FLIGHT allows. */
static void start_due(struct sim_deliver *d)
{
    int64_t now = sim_now_ms();
    while (d->heap_len > 0 && d->heap[0]->due_ms <= now) {
        struct job *j = d->heap[0];
        if (j->plan) {
            fan_out(d, heap_pop(d), now);
            continue;
        }
        if (d->n_in_flight == MAX_IN_FLIGHT) {
            return; /* a finishing transfer wakes the poll */
        }
        heap_pop(d);
        if (!start(d, j, now)) {
            finish(d, j, 0, "sinch-sim could not start the request (out of memory?)", now);
        }
    }
}

/* How long the poll may sleep: until the next job is due, unless it waits for a free slot
 * (then a transfer's activity wakes the poll). */
static int next_wait(const struct sim_deliver *d)
{
    if (d->heap_len == 0) {
        return IDLE_POLL_MS;
    }
    const struct job *top = d->heap[0];
    int64_t wait = top->due_ms - sim_now_ms();
    if (wait <= 0) {
        return !top->plan && d->n_in_flight == MAX_IN_FLIGHT ? IDLE_POLL_MS : 0;
    }
    return wait < IDLE_POLL_MS ? (int)wait : IDLE_POLL_MS;
}

static void *run(void *arg)
{
    struct sim_deliver *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        struct job *in = d->in_head;
        bool stop = d->stop, cancel = d->cancel;
        d->in_head = d->in_tail = NULL;
        d->cancel = false;
        pthread_mutex_unlock(&d->lock);
        if (cancel || stop) {
            drop_all(d);
        }
        while (in) {
            struct job *next = in->next;
            in->next = NULL;
            if (stop) {
                job_free(d, in);
            } else {
                heap_push(d, in);
            }
            in = next;
        }
        if (stop) {
            return NULL;
        }
        int running;
        curl_multi_perform(d->multi, &running);
        reap(d);
        start_due(d);
        if (d->n_in_flight > 0) {
            curl_multi_perform(d->multi, &running);
            reap(d);
        }
        int wait = next_wait(d);
        pthread_mutex_lock(&d->lock);
        if (d->in_head || d->stop || d->cancel) {
            wait = 0;
        } else {
            d->wake_at = sim_now_ms() + wait;
        }
        pthread_mutex_unlock(&d->lock);
        /* A wakeup between the unlock and the poll is kept by curl for the poll. */
        curl_multi_poll(d->multi, NULL, 0, wait, NULL);
        pthread_mutex_lock(&d->lock);
        d->wake_at = INT64_MIN;
        pthread_mutex_unlock(&d->lock);
    }
}

struct sim_deliver *sim_deliver_new(const struct sim_deliver_config *cfg, struct sim_webhooks *reg,
                                    struct sim_cblog *log)
{
    struct sim_deliver *d = calloc(1, sizeof(*d));
    if (!d) {
        return NULL;
    }
    d->cfg = *cfg;
    d->reg = reg;
    d->log = log;
    atomic_init(&d->pending, 0);
    d->wake_at = INT64_MIN;
    sim_ids_init(&d->ids);
    pthread_mutex_init(&d->lock, NULL);
    d->multi = curl_multi_init();
    if (!d->multi || pthread_create(&d->thread, NULL, run, d) != 0) {
        if (d->multi) {
            curl_multi_cleanup(d->multi);
        }
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

void sim_deliver_free(struct sim_deliver *d)
{
    if (!d) {
        return;
    }
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_mutex_unlock(&d->lock);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    curl_multi_cleanup(d->multi);
    free(d->heap);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Hands `j` to the thread. The wakeup (a write(2)) is needed only when the thread sleeps past
 * the job's due time: under load most sends' reports fall due after the thread's next wake, so
 * messages:send seldom pays a system call for them. */
static void enqueue(struct sim_deliver *d, struct job *j)
{
    pthread_mutex_lock(&d->lock);
    if (d->in_tail) {
        d->in_tail->next = j;
    } else {
        d->in_head = j;
    }
    d->in_tail = j;
    bool wake = j->due_ms < d->wake_at;
    if (wake) {
        d->wake_at = INT64_MIN;
    }
    pthread_mutex_unlock(&d->lock);
    if (wake) {
        curl_multi_wakeup(d->multi);
    }
}

bool sim_deliver_event(struct sim_deliver *d, struct sim_delivery *dv)
{
    struct job *j = job_new(d, true);
    if (!j) {
        sim_target_release(&dv->target);
        return false;
    }
    struct delivery *v = j->dv;
    v->target = dv->target;
    memset(&dv->target, 0, sizeof(dv->target));
    memcpy(v->event_id, dv->event_id, sizeof(v->event_id));
    v->trigger = dv->trigger;
    v->body = sim_blob_ref(dv->body);
    v->sig = dv->sig;
    j->due_ms = sim_now_ms() + dv->delay_ms;
    memcpy(v->fixed_nonce, dv->nonce, sizeof(v->fixed_nonce));
    memcpy(v->fixed_ts, dv->timestamp, sizeof(v->fixed_ts));
    enqueue(d, j);
    return true;
}

bool sim_deliver_report(struct sim_deliver *d, struct sim_report_plan *plan, int64_t accepted_ms)
{
    struct job *j = job_new(d, false);
    if (!j) {
        free(plan);
        return false;
    }
    j->plan = plan;
    j->due_ms = accepted_ms + d->cfg.report_delay_ms;
    enqueue(d, j);
    return true;
}

void sim_deliver_cancel(struct sim_deliver *d)
{
    pthread_mutex_lock(&d->lock);
    struct job *in = d->in_head;
    d->in_head = d->in_tail = NULL;
    d->cancel = true;
    pthread_mutex_unlock(&d->lock);
    while (in) {
        struct job *next = in->next;
        job_free(d, in); /* never started, so no curl handle: safe on this thread */
        in = next;
    }
    curl_multi_wakeup(d->multi);
}

size_t sim_deliver_pending(struct sim_deliver *d)
{
    return atomic_load(&d->pending);
}
