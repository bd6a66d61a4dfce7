/* The outbox (include/bridge/outbox.h): commands from the store to their one outcome.
 *
 * A command in memory is a `job`. Its life: loaded from the store -> admitted (parsed,
 * validated, deduplicated, limited) or refused -> READY (waits for a token of the bucket) ->
 * IN_FLIGHT (one request at Sinch) -> RETRY_WAIT (backoff) -> ... -> PUBLISHING (outcome stored,
 * publish awaiting the broker's PUBACK) -> done. Only the loop touches any of it. */
#include "bridge/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/sinch_json.h"
#include "bridge/command.h"
#include "bridge/log.h"
#include "bridge/outcome.h"
#include "bridge/ratelimit.h"

#define WINDOW             2048 /* commands in memory at most; the rest wait in the store */
#define LOAD_BATCH         256  /* load again once this many places are free */
#define RETRY_BASE_MS      500
#define REPUBLISH_MS       1000
#define HOUR_MS            (3600 * 1000LL)
#define WHATSAPP_WINDOW_MS (24 * HOUR_MS) /* facts 10.1: the customer service window */

enum job_state {
    JOB_READY,
    JOB_IN_FLIGHT,
    JOB_RETRY_WAIT,
    JOB_PUBLISHING,
    JOB_WAIT_MQTT,
};

struct job {
    struct sb_outbox *ob;
    struct job *prev, *next; /* every job in memory: ob->jobs */
    struct job *q_next;      /* in ob->ready or ob->wait_mqtt */
    enum job_state state;
    int64_t seq;
    int64_t received_ms; /* wall clock */
    int64_t deadline_ms; /* wall clock: received + min(ttl, BRIDGE_MAX_AGE) */
    char *response_topic;
    void *correlation;
    size_t correlation_len;
    struct sb_store_command *row; /* a copy of the stored row, until the job is admitted */
    struct sb_command cmd;
    bool use_fallback; /* WhatsApp's window is closed: send the fallback_template instead */
    int attempts;      /* HTTP requests to messages:send so far */
    unsigned retries;  /* backoff exponent */
    int64_t handed_ms;
    long last_status;       /* of the last answer, for the `expired` outcome */
    struct sb_timer *timer; /* retry wait */
    char *outcome_topic;
    char *outcome;
    int pubs_pending;
    bool pub_failed;
};

struct fifo {
    struct job *head, *tail;
};

/* Per-recipient times of commands handed to Sinch in the last hour (BRIDGE_RECIPIENT_LIMIT). */
struct recipient {
    struct recipient *next;
    char *to;
    int64_t *times; /* ascending */
    size_t n, cap;
};

#define RECIPIENT_BUCKETS 256

struct sb_outbox {
    const struct sb_config *cfg;
    struct sb_loop *loop;
    struct sb_store *store;
    struct sb_outbox_io io;
    char send_prefix[512]; /* "P/send" */
    char sent_topic[512];
    char error_topic[512];
    struct job *jobs;
    size_t active;
    size_t in_flight;
    /* Requests handed to the Sinch client at once: enough to keep every connection busy, and
     * no more, since each one is a possible duplicate if the bridge dies (facts 11.1). */
    size_t max_in_flight;
    int64_t last_loaded;     /* seq of the last row loaded */
    size_t loaded;           /* rows seen by the current load */
    bool more;               /* the store may hold unloaded rows */
    struct fifo loaded_jobs; /* rows just loaded, to admit once the store is free again */
    struct fifo ready;
    struct fifo wait_mqtt;
    struct fifo later; /* retries that got no timer of their own (out of memory) */
    struct sb_bucket bucket;
    struct sb_timer *pump_timer;
    struct sb_timer *later_timer; /* moves `later` back to `ready` */
    struct sb_timer *republish_timer;
    bool mqtt_up;
    bool draining;
    sb_loop_fn drained;
    void *drained_arg;
    uint32_t rnd;
    struct recipient *recipients[RECIPIENT_BUCKETS];
    struct sb_outbox_stats stats;
};

static void pump(struct sb_outbox *ob);
static void publish_outcome(struct job *j);

/* ---- small helpers ---- */

static void fifo_push(struct fifo *f, struct job *j)
{
    j->q_next = NULL;
    if (f->tail) {
        f->tail->q_next = j;
    } else {
        f->head = j;
    }
    f->tail = j;
}

static struct job *fifo_pop(struct fifo *f)
{
    struct job *j = f->head;
    if (j) {
        f->head = j->q_next;
        if (!f->head) {
            f->tail = NULL;
        }
        j->q_next = NULL;
    }
    return j;
}

static uint32_t next_rand(struct sb_outbox *ob)
{
    /* xorshift32: jitter needs spread, not secrecy. */
    uint32_t x = ob->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ob->rnd = x;
    return x;
}

static const char *recipient_of(const struct job *j)
{
    return j->cmd.to ? j->cmd.to : j->cmd.contact_id;
}

static const char *first_channel(const struct job *j)
{
    return j->cmd.channels ? json_string_value(json_array_get(j->cmd.channels, 0)) : NULL;
}

static void row_free(struct sb_store_command *row)
{
    if (row) {
        free((char *)(uintptr_t)row->topic);
        free((char *)(uintptr_t)row->payload);
        free((char *)(uintptr_t)row->gen_id);
        free(row);
    }
}

/* The store's rows are borrowed during its callback only, which may not call the store again:
 * keep what admitting the command needs. */
static struct sb_store_command *row_copy(const struct sb_store_command *in)
{
    struct sb_store_command *row = calloc(1, sizeof(*row));
    char *payload = malloc(in->payload_len + 1);

    if (!row || !payload) {
        free(row);
        free(payload);
        return NULL;
    }
    memcpy(payload, in->payload, in->payload_len);
    payload[in->payload_len] = '\0';
    row->payload = payload;
    row->payload_len = in->payload_len;
    row->topic = strdup(in->topic);
    row->gen_id = strdup(in->gen_id);
    if (!row->topic || !row->gen_id) {
        row_free(row);
        return NULL;
    }
    return row;
}

static void job_free(struct job *j)
{
    struct sb_outbox *ob = j->ob;

    if (j->prev) {
        j->prev->next = j->next;
    } else {
        ob->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    ob->active--;
    sb_timer_free(j->timer);
    row_free(j->row);
    sb_command_clear(&j->cmd);
    free(j->response_topic);
    free(j->correlation);
    free(j->outcome_topic);
    free(j->outcome);
    free(j);
}

/* ---- outcomes ---- */

/* The outcome is decided: store it (staged, flushed at the end of this turn) and publish it. */
static void finish(struct job *j, const char *topic, char *payload, const char *message_id,
                   const char *status)
{
    struct sb_outbox *ob = j->ob;

    j->outcome_topic = strdup(topic);
    j->outcome = payload;
    if (!j->outcome_topic || !j->outcome) {
        /* Out of memory: leave the command PENDING in the store; a restart retries it. */
        sb_log(SB_LOG_ERROR, "outbox", "cmd %s: out of memory deciding its outcome", j->cmd.id);
        job_free(j);
        return;
    }
    sb_store_stage_outcome(ob->store, j->seq, j->cmd.id[0] ? j->cmd.id : NULL, recipient_of(j),
                           first_channel(j), message_id, status, j->attempts, topic, payload);
    publish_outcome(j);
}

static void fail(struct job *j, const char *code, const char *message, long http_status,
                 json_t *sinch, const char *topic, const char *payload, size_t payload_len)
{
    struct sb_outbox *ob = j->ob;
    struct sb_outcome_error e = {
        .id = j->cmd.id[0] ? j->cmd.id : NULL,
        .to = j->cmd.to,
        .contact_id = j->cmd.contact_id,
        .alias = j->cmd.alias,
        .code = code,
        .message = message,
        .http_status = http_status,
        .sinch = sinch,
        .attempts = j->attempts,
        .topic = topic,
        .payload = payload,
        .payload_len = payload_len,
    };
    ob->stats.failed++;
    for (int i = 0; i < SB_OUTBOX_ERR_COUNT; i++) {
        if (strcmp(code, sb_outbox_error_name((enum sb_outbox_error)i)) == 0) {
            ob->stats.failed_by[i]++;
            ob->stats.last_error = i;
            ob->stats.last_error_ms = sb_wall_ms();
        }
    }
    sb_log(SB_LOG_INFO, "outbox", "cmd %s failed: %s: %s (attempts %d)", e.id ? e.id : "(no id)",
           code, message, j->attempts);
    finish(j, ob->error_topic, sb_outcome_error_json(&e), NULL, code);
}

static void accepted(struct job *j, const struct sb_outbox_result *res)
{
    struct sb_outbox *ob = j->ob;
    char *message_id = NULL;
    char *accepted_time = NULL;

    if (sb_sinch_json_accepted(res->body, res->body_len, &message_id, &accepted_time) != SB_OK) {
        /* Accepted, but we cannot name the message: still "sent", never resend (a duplicate). */
        sb_log(SB_LOG_WARN, "outbox", "cmd %s: HTTP %ld without a message_id", j->cmd.id,
               res->status);
    }
    struct sb_outcome_sent s = {
        .id = j->cmd.id,
        .message_id = message_id ? message_id : "",
        .to = j->cmd.to,
        .contact_id = j->cmd.contact_id,
        .alias = j->cmd.alias,
        .channel = first_channel(j),
        .accepted_time = accepted_time ? accepted_time : "",
        .attempts = j->attempts,
    };
    ob->stats.sent++;
    sb_bucket_recover(&ob->bucket);
    sb_log(SB_LOG_INFO, "outbox", "cmd %s sent to %s as %s (attempts %d)", j->cmd.id,
           recipient_of(j), s.message_id, j->attempts);
    finish(j, ob->sent_topic, sb_outcome_sent_json(&s), message_id, "ACCEPTED");
    free(message_id);
    free(accepted_time);
}

static void expire(struct job *j)
{
    char why[160];
    if (j->last_status > 0) {
        snprintf(why, sizeof(why), "not accepted by Sinch in time; last answer HTTP %ld",
                 j->last_status);
    } else if (j->attempts > 0) {
        snprintf(why, sizeof(why), "not accepted by Sinch in time; Sinch was unreachable");
    } else {
        snprintf(why, sizeof(why), "expired before it could be sent");
    }
    fail(j, "expired", why, j->last_status, NULL, NULL, NULL, 0);
}

/* ---- publishing outcomes ---- */

static void wait_for_mqtt(struct job *j)
{
    struct sb_outbox *ob = j->ob;
    j->state = JOB_WAIT_MQTT;
    fifo_push(&ob->wait_mqtt, j);
    if (ob->mqtt_up && !sb_timer_armed(ob->republish_timer)) {
        sb_timer_arm(ob->republish_timer, REPUBLISH_MS);
    }
}

static void publish_outcome(struct job *j)
{
    struct sb_outbox *ob = j->ob;
    size_t len = strlen(j->outcome);
    uint64_t tag = (uint64_t)(uintptr_t)j;

    j->state = JOB_PUBLISHING;
    j->pubs_pending = 0;
    j->pub_failed = false;
    if (!ob->mqtt_up) {
        wait_for_mqtt(j);
        return;
    }
    if (ob->io.publish(ob->io.ctx, j->outcome_topic, j->outcome, len, NULL, 0, tag) == SB_OK) {
        j->pubs_pending++;
    } else {
        j->pub_failed = true;
    }
    if (j->response_topic) {
        if (ob->io.publish(ob->io.ctx, j->response_topic, j->outcome, len, j->correlation,
                           j->correlation_len, tag) == SB_OK) {
            j->pubs_pending++;
        } else {
            j->pub_failed = true;
        }
    }
    if (j->pubs_pending == 0) {
        wait_for_mqtt(j);
    }
}

static void republish(void *arg)
{
    struct sb_outbox *ob = arg;
    struct fifo waiting = ob->wait_mqtt;

    ob->wait_mqtt = (struct fifo){NULL, NULL};
    for (struct job *j = fifo_pop(&waiting); j; j = fifo_pop(&waiting)) {
        publish_outcome(j);
    }
}

/* ---- loading and admitting ---- */

static struct recipient *recipient_times(struct sb_outbox *ob, const char *to, int64_t now)
{
    size_t h = 5381;
    for (const char *p = to; *p; p++) {
        h = h * 33 + (unsigned char)*p;
    }
    struct recipient **slot = &ob->recipients[h % RECIPIENT_BUCKETS];
    for (struct recipient *r = *slot; r; r = r->next) {
        if (strcmp(r->to, to) == 0) {
            return r;
        }
    }
    struct recipient *r = calloc(1, sizeof(*r));
    if (!r || !(r->to = strdup(to))) {
        free(r);
        return NULL;
    }
    /* First sight in this process: commands handed before a restart count too. Their exact
     * times are not kept, so they count as handed now (errs on the side of sending less). */
    int64_t before = 0;
    if (sb_store_count_handed(ob->store, to, now - HOUR_MS, &before) == SB_OK && before > 0) {
        r->times = malloc((size_t)before * sizeof(*r->times));
        if (r->times) {
            for (int64_t i = 0; i < before; i++) {
                r->times[r->n++] = now;
            }
            r->cap = (size_t)before;
        }
    }
    r->next = *slot;
    *slot = r;
    return r;
}

/* BRIDGE_RECIPIENT_LIMIT: counts commands admitted for sending in the last hour. */
static bool recipient_allowed(struct sb_outbox *ob, const char *to, int64_t now)
{
    struct recipient *r = recipient_times(ob, to, now);
    size_t old = 0;

    if (!r) {
        return true; /* out of memory: do not refuse a command for it */
    }
    while (old < r->n && r->times[old] <= now - HOUR_MS) {
        old++;
    }
    if (old > 0) {
        memmove(r->times, r->times + old, (r->n - old) * sizeof(*r->times));
        r->n -= old;
    }
    if ((long)r->n >= ob->cfg->recipient_limit) {
        return false;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        int64_t *t = realloc(r->times, cap * sizeof(*t));
        if (!t) {
            return true;
        }
        r->times = t;
        r->cap = cap;
    }
    r->times[r->n++] = now;
    return true;
}

const char *sb_outbox_topic_recipient(const char *send_prefix, const char *topic, bool *ok)
{
    size_t n = strlen(send_prefix);
    *ok = strncmp(topic, send_prefix, n) == 0 && (topic[n] == '\0' || topic[n] == '/');
    return *ok && topic[n] == '/' ? topic + n + 1 : NULL;
}

/* BRIDGE_WINDOW_CHECK: free-form WhatsApp content only within 24 hours of the recipient's last
 * message to us (facts 10.1); the time of each contact's last inbound message is in the store. A
 * template needs no window. A store that cannot answer does not block the send: Sinch's FAILED
 * report (OUTSIDE_ALLOWED_SENDING_WINDOW) still tells the truth. */
static bool window_open(struct sb_outbox *ob, const struct job *j, int64_t now)
{
    const char *channel = first_channel(j);
    int64_t last = 0;

    if (!ob->cfg->window_check || !j->cmd.to || !channel || strcmp(channel, "WHATSAPP") != 0 ||
        j->cmd.kind == SB_CONTENT_TEMPLATE ||
        (j->cmd.kind == SB_CONTENT_MESSAGE &&
         json_object_get(j->cmd.content, "template_message"))) {
        return true;
    }
    if (sb_store_last_inbound(ob->store, j->cmd.to, &last) != SB_OK) {
        return true;
    }
    return now - last < WHATSAPP_WINDOW_MS;
}

/* Decides whether a loaded command may be sent: READY, or refused with its error. */
static void admit(struct sb_outbox *ob, struct job *j)
{
    struct sb_store_command *row = j->row; /* ours now: freed below, whatever happens */
    struct sb_command_error cerr = {0};
    bool topic_ok;
    const char *recipient = sb_outbox_topic_recipient(ob->send_prefix, row->topic, &topic_ok);
    int64_t now = sb_wall_ms();
    bool duplicate = false;
    char why[320];

    j->row = NULL;
    ob->stats.received++;
    if (!topic_ok) {
        fail(j, "invalid_command", "not a command topic", 0, NULL, row->topic, row->payload,
             row->payload_len);
        goto out;
    }
    if (sb_command_parse(ob->cfg, recipient, row->payload, row->payload_len, row->gen_id, &j->cmd,
                         &cerr) != SB_OK) {
        fail(j, cerr.code, cerr.message, 0, NULL, row->topic, row->payload, row->payload_len);
        goto out;
    }
    long life = ob->cfg->max_age;
    if (j->cmd.ttl > 0 && j->cmd.ttl < life) {
        life = j->cmd.ttl;
    }
    j->deadline_ms = j->received_ms + (int64_t)life * 1000;

    if (j->cmd.dedupe_key &&
        sb_store_dedupe_claim(ob->store, j->cmd.dedupe_key, j->seq, now,
                              (int64_t)j->cmd.dedupe_window * 1000, &duplicate) != SB_OK) {
        /* The store is failing: keep the command for a later start rather than guess. */
        sb_log(SB_LOG_ERROR, "outbox", "cmd %s: dedupe lookup failed; left for later", j->cmd.id);
        job_free(j);
        goto out;
    }
    if (duplicate) {
        snprintf(why, sizeof(why), "dedupe_key \"%.256s\" was used within %ld s", j->cmd.dedupe_key,
                 j->cmd.dedupe_window);
        fail(j, "duplicate", why, 0, NULL, NULL, NULL, 0);
        goto out;
    }
    if (!window_open(ob, j, now)) {
        if (!j->cmd.fallback_template) {
            fail(j, "window_closed",
                 "WhatsApp's 24-hour window with this recipient is closed; send a template or "
                 "give the command a fallback_template",
                 0, NULL, NULL, NULL, 0);
            goto out;
        }
        j->use_fallback = true;
    }
    if (ob->cfg->recipient_limit > 0 && !recipient_allowed(ob, recipient_of(j), now)) {
        snprintf(why, sizeof(why), "more than %ld messages to this recipient within an hour",
                 ob->cfg->recipient_limit);
        fail(j, "rate_limited", why, 0, NULL, NULL, NULL, 0);
        goto out;
    }
    j->state = JOB_READY;
    fifo_push(&ob->ready, j);
out:
    row_free(row);
}

static void load_row(void *arg, const struct sb_store_command *row)
{
    struct sb_outbox *ob = arg;
    struct job *j = calloc(1, sizeof(*j));

    ob->last_loaded = row->seq; /* where a load that fails half-way resumes */
    ob->loaded++;
    if (!j) {
        return; /* stays in the store; found again after a restart */
    }
    j->ob = ob;
    j->seq = row->seq;
    j->received_ms = row->received_ms;
    j->attempts = row->attempts;
    j->next = ob->jobs;
    if (ob->jobs) {
        ob->jobs->prev = j;
    }
    ob->jobs = j;
    ob->active++;
    if (row->response_topic) {
        j->response_topic = strdup(row->response_topic);
    }
    if (row->correlation_len > 0 && (j->correlation = malloc(row->correlation_len))) {
        memcpy(j->correlation, row->correlation, row->correlation_len);
        j->correlation_len = row->correlation_len;
    }
    if (row->state == SB_STORE_OUTCOME) {
        /* Decided before a restart, not yet acknowledged by the broker: publish it again. */
        j->outcome_topic = strdup(row->outcome_topic);
        j->outcome = strdup(row->outcome);
        if (!j->outcome_topic || !j->outcome) {
            job_free(j);
            return;
        }
        publish_outcome(j);
        return;
    }
    j->row = row_copy(row);
    if (!j->row) {
        job_free(j);
        return;
    }
    fifo_push(&ob->loaded_jobs, j);
}

static void maybe_load(struct sb_outbox *ob)
{
    if (!ob->more || ob->draining || ob->active + LOAD_BATCH > WINDOW) {
        return;
    }
    size_t want = WINDOW - ob->active;
    int64_t through = 0;
    enum sb_err err;

    ob->loaded = 0;
    err = sb_store_load_unfinished(ob->store, ob->last_loaded, want, load_row, ob, &through);
    for (struct job *j = fifo_pop(&ob->loaded_jobs); j; j = fifo_pop(&ob->loaded_jobs)) {
        admit(ob, j);
    }
    if (err != SB_OK) {
        sb_log(SB_LOG_ERROR, "outbox", "cannot load commands from the store: %s", sb_strerror(err));
        return;
    }
    /* A full batch: there may be more. Fewer: none now; a new command kicks us again (the
     * kick is requested after its row is committed, so this SELECT or the next one sees it). */
    ob->last_loaded = through;
    ob->more = ob->loaded == want;
    pump(ob);
}

/* ---- sending ---- */

static void retry_due(void *arg)
{
    struct job *j = arg;
    j->state = JOB_READY;
    fifo_push(&j->ob->ready, j);
    pump(j->ob);
}

static void retry(struct job *j, long retry_after_ms)
{
    struct sb_outbox *ob = j->ob;
    int64_t now = sb_wall_ms();
    int64_t delay = sb_backoff_ms(j->retries, RETRY_BASE_MS,
                                  (int64_t)ob->cfg->retry_max_delay * 1000, next_rand(ob));

    j->retries++;
    ob->stats.retried++;
    if (retry_after_ms > delay) {
        delay = retry_after_ms;
    }
    if (now + delay > j->deadline_ms) {
        delay = j->deadline_ms > now ? j->deadline_ms - now : 0;
    }
    j->state = JOB_RETRY_WAIT;
    /* Without memory for a timer of its own, the job waits with the others in that case for
     * the outbox's own timer (made at start), and goes back to the ready list when it fires. */
    if (!j->timer && sb_timer_new(ob->loop, retry_due, j, &j->timer) != SB_OK) {
        fifo_push(&ob->later, j);
        sb_timer_arm(ob->later_timer, delay);
        return;
    }
    sb_log(SB_LOG_INFO, "outbox", "cmd %s: retry %u in %lld ms (last HTTP %ld)", j->cmd.id,
           j->retries, (long long)delay, j->last_status);
    sb_timer_arm(j->timer, delay);
}

static void send_job(struct sb_outbox *ob, struct job *j, int64_t now)
{
    char *body = NULL;
    long ttl_left = 0;

    if (j->cmd.ttl > 0) {
        ttl_left = (long)((j->received_ms + (int64_t)j->cmd.ttl * 1000 - now + 999) / 1000);
    }
    if (sb_sinch_json_send(&j->cmd, ob->cfg->app_id, ttl_left, j->use_fallback, &body) != SB_OK) {
        fail(j, "invalid_command", "the command could not be turned into a Sinch request", 0, NULL,
             NULL, NULL, 0);
        return;
    }
    j->attempts++;
    if (j->handed_ms == 0) {
        j->handed_ms = now;
    }
    sb_store_stage_attempt(ob->store, j->seq, j->cmd.id, recipient_of(j), j->attempts,
                           j->handed_ms);
    j->state = JOB_IN_FLIGHT;
    ob->in_flight++;
    if (ob->io.send(ob->io.ctx, (uint64_t)(uintptr_t)j, body) != SB_OK) {
        ob->in_flight--;
        retry(j, -1);
    }
}

static void pump(struct sb_outbox *ob)
{
    while (!ob->draining && ob->ready.head && ob->in_flight < ob->max_in_flight) {
        int64_t now = sb_wall_ms();
        if (now >= ob->ready.head->deadline_ms) {
            expire(fifo_pop(&ob->ready));
            continue;
        }
        int64_t wait = sb_bucket_take(&ob->bucket, sb_mono_ms());
        if (wait > 0) {
            sb_timer_arm(ob->pump_timer, wait);
            return;
        }
        send_job(ob, fifo_pop(&ob->ready), now);
    }
}

static void pump_due(void *arg)
{
    pump(arg);
}

static void later_due(void *arg)
{
    struct sb_outbox *ob = arg;

    for (struct job *j = fifo_pop(&ob->later); j; j = fifo_pop(&ob->later)) {
        j->state = JOB_READY;
        fifo_push(&ob->ready, j);
    }
    pump(ob);
}

static void check_drained(struct sb_outbox *ob)
{
    if (ob->draining && ob->in_flight == 0 && ob->drained) {
        sb_loop_fn done = ob->drained;
        ob->drained = NULL;
        done(ob->drained_arg);
    }
}

/* ---- the API ---- */

void sb_outbox_on_result(struct sb_outbox *ob, const struct sb_outbox_result *res)
{
    struct job *j = (struct job *)(uintptr_t)res->tag;
    long status = res->status;

    static const double bounds[] = {SB_OUTBOX_LATENCY_BUCKETS};

    ob->in_flight--;
    if (res->err == SB_OK) {
        size_t b = 0;
        while (b < SB_OUTBOX_LATENCY_N && res->seconds > bounds[b]) {
            b++;
        }
        ob->stats.latency[b]++;
        ob->stats.latency_sum += res->seconds;
        ob->stats.latency_count++;
    }
    if (res->requests > 1) {
        j->attempts += res->requests - 1;
    }
    if (res->err == SB_OK) {
        j->last_status = status;
    }
    if (res->err == SB_OK && status >= 200 && status < 300) {
        accepted(j, res);
    } else if (res->err == SB_OK && status == 429) {
        sb_bucket_slow(&ob->bucket, sb_mono_ms(),
                       res->retry_after_ms > 0 ? res->retry_after_ms : 0);
        retry(j, res->retry_after_ms);
    } else if ((res->err == SB_OK && (status == 408 || status >= 500)) ||
               (res->err != SB_OK && res->err != SB_E_AUTH)) {
        /* A 408 or 5xx, a timeout, no answer: Sinch or the way there is in trouble. Every send
         * slows down as for a 429 (the bucket halves, to its floor), and wins its pace back
         * with each success, so an outage costs a request every other second instead of the
         * full rate of retries. Without a rate limit, each command's own backoff is all. */
        sb_bucket_slow(&ob->bucket, sb_mono_ms(), 0);
        retry(j, res->retry_after_ms);
    } else if ((res->err == SB_OK && (status == 401 || status == 403)) || res->err == SB_E_AUTH) {
        json_t *sinch = res->body ? sb_sinch_json_error(res->body, res->body_len) : NULL;
        fail(j, "auth_failed",
             res->err == SB_E_AUTH ? "the token endpoint refused the credentials"
                                   : "Sinch refused the credentials",
             res->err == SB_OK ? status : 0, sinch, NULL, NULL, 0);
        json_decref(sinch);
    } else {
        json_t *sinch = res->body ? sb_sinch_json_error(res->body, res->body_len) : NULL;
        const char *msg = json_string_value(json_object_get(sinch, "message"));
        fail(j, "sinch_rejected", msg ? msg : "Sinch refused the request", status, sinch, NULL,
             NULL, 0);
        json_decref(sinch);
    }
    check_drained(ob);
    pump(ob);
}

void sb_outbox_on_published(struct sb_outbox *ob, uint64_t tag, bool ok)
{
    struct job *j = (struct job *)(uintptr_t)tag;

    if (!ok) {
        j->pub_failed = true;
    }
    if (--j->pubs_pending > 0) {
        return;
    }
    if (j->pub_failed) {
        wait_for_mqtt(j);
        return;
    }
    sb_store_stage_done(ob->store, j->seq, sb_wall_ms());
    job_free(j);
    maybe_load(ob);
}

void sb_outbox_on_mqtt(struct sb_outbox *ob, bool up)
{
    ob->mqtt_up = up;
    if (up) {
        republish(ob);
    }
}

void sb_outbox_kick(struct sb_outbox *ob)
{
    ob->more = true;
    maybe_load(ob);
}

void sb_outbox_drain(struct sb_outbox *ob, sb_loop_fn done, void *arg)
{
    ob->draining = true;
    ob->drained = done;
    ob->drained_arg = arg;
    sb_timer_cancel(ob->pump_timer);
    sb_timer_cancel(ob->later_timer);
    check_drained(ob);
}

const char *sb_outbox_error_name(enum sb_outbox_error e)
{
    static const char *const names[] = {
#define X(code) #code,
        SB_OUTBOX_ERROR_CODES
#undef X
    };
    return (size_t)e < SB_OUTBOX_ERR_COUNT ? names[e] : "unknown";
}

void sb_outbox_reconfigure(struct sb_outbox *ob)
{
    sb_bucket_set_rate(&ob->bucket, ob->cfg->rate_limit);
    pump(ob); /* a higher limit may let waiting commands go now */
}

void sb_outbox_stats(const struct sb_outbox *ob, struct sb_outbox_stats *out)
{
    *out = ob->stats;
    out->active = ob->active;
    out->in_flight = ob->in_flight;
}

enum sb_err sb_outbox_new(const struct sb_config *cfg, struct sb_loop *loop, struct sb_store *store,
                          const struct sb_outbox_io *io, struct sb_outbox **out)
{
    struct sb_outbox *ob = calloc(1, sizeof(*ob));

    if (!ob) {
        return SB_E_NOMEM;
    }
    ob->cfg = cfg;
    ob->loop = loop;
    ob->store = store;
    ob->io = *io;
    ob->more = true;
    ob->stats.last_error = -1;
    ob->max_in_flight = 2 * (size_t)cfg->sinch_connections;
    ob->rnd = (uint32_t)sb_mono_ms() ^ ((uint32_t)getpid() << 16) ^ 0x9e3779b9u;
    snprintf(ob->send_prefix, sizeof(ob->send_prefix), "%s/send", cfg->topic_prefix);
    snprintf(ob->sent_topic, sizeof(ob->sent_topic), "%s/sent", cfg->topic_prefix);
    snprintf(ob->error_topic, sizeof(ob->error_topic), "%s/error", cfg->topic_prefix);
    sb_bucket_init(&ob->bucket, cfg->rate_limit, sb_mono_ms());
    if (sb_timer_new(loop, pump_due, ob, &ob->pump_timer) != SB_OK ||
        sb_timer_new(loop, later_due, ob, &ob->later_timer) != SB_OK ||
        sb_timer_new(loop, republish, ob, &ob->republish_timer) != SB_OK) {
        sb_outbox_free(ob);
        return SB_E_NOMEM;
    }
    *out = ob;
    return SB_OK;
}

void sb_outbox_free(struct sb_outbox *ob)
{
    if (!ob) {
        return;
    }
    while (ob->jobs) {
        /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): it unlinks the job through j->ob, = ob */
        job_free(ob->jobs);
    }
    for (size_t i = 0; i < RECIPIENT_BUCKETS; i++) {
        while (ob->recipients[i]) {
            struct recipient *r = ob->recipients[i];
            ob->recipients[i] = r->next;
            free(r->to);
            free(r->times);
            free(r);
        }
    }
    sb_timer_free(ob->pump_timer);
    sb_timer_free(ob->later_timer);
    sb_timer_free(ob->republish_timer);
    free(ob);
}
