/* Inbound (include/bridge/inbound.h): webhook -> verified -> staged -> (turn end) stored in one
 * commit -> 200 -> published from memory.
 *
 * The inbox publisher keeps a bounded window of stored rows in memory, publishes them in order,
 * and deletes each when its PUBACK comes (staged, flushed at the end of the loop turn). Rows
 * just committed join the window directly; only what did not fit (or came after rows still in
 * the store) is read back. A row whose publish failed waits for the broker and is published
 * again; after a crash every row still in the store is. Thread: loop. */
#include "bridge/inbound.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/signature.h"
#include "bridge/events.h"
#include "bridge/log.h"

#define INBOX_WINDOW 1024
#define INBOX_BATCH  128
/* Webhook events one transaction takes. A turn serves each ready connection once, so this is
 * reached only with hundreds of busy connections; a bigger turn then commits more than once. */
#define STAGE_MAX    256
#define KEEP_KEYS_MS (48LL * 3600 * 1000) /* PRODUCT.md: at least 24 h; twice that */
#define REPUBLISH_MS 1000

/* Webhook results, for the counters: the label values of sinch_bridge_webhooks_total. */
enum result {
    R_PUBLISHED, /* stored, to be published */
    R_DUPLICATE,
    R_STALE,
    R_BAD_SIGNATURE,
    R_MALFORMED,
    R_NO_SECRET,
    R_STORE_FAILED,
    R_COUNT,
};
static const char *const result_names[R_COUNT] = {"stored",        "duplicate", "stale_status",
                                                  "bad_signature", "malformed", "no_secret",
                                                  "store_failed"};

struct trigger_count {
    struct trigger_count *next;
    char *trigger;
    uint64_t n[R_COUNT];
};

struct row {
    struct row *next;
    struct sb_inbound *in;
    int64_t seq;
    char *topic;
    char *payload;
    bool waiting; /* for the broker */
};

/* A verified event of this turn, waiting for the turn's commit. */
struct staged {
    struct sb_webhook_pending *pending; /* its request, answered after the commit */
    struct sb_event ev;                 /* trigger, key and ids (owned); payload tree freed */
    char *topic;                        /* owned until a row takes it */
    char *payload;                      /* owned until a row takes it */
};

struct sb_inbound {
    const struct sb_config *cfg;
    struct sb_store *store;
    sb_inbound_publish_fn publish;
    void *ctx;
    struct row *rows; /* in memory: published, awaiting PUBACK, or waiting for the broker */
    struct row **rows_tail;
    size_t n_rows;
    int64_t last_loaded;
    bool more;
    bool mqtt_up;
    bool store_failing;
    struct sb_timer *republish_timer;
    struct trigger_count *counts; /* webhooks by trigger and result, for /metrics */
    struct staged *staged;        /* STAGE_MAX: this turn's events, not yet committed */
    struct sb_store_event *batch; /* STAGE_MAX, parallel to staged: what the store gets */
    size_t n_staged;
    uint64_t commits; /* transactions that stored webhook events, for /metrics */
};

/* ---- counters ---- */

static void count(struct sb_inbound *in, const char *trigger, enum result r)
{
    struct trigger_count *c = in->counts;

    while (c && strcmp(c->trigger, trigger) != 0) {
        c = c->next;
    }
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c || !(c->trigger = strdup(trigger))) {
            free(c);
            return;
        }
        c->next = in->counts;
        in->counts = c;
    }
    c->n[r]++;
}

void sb_inbound_metrics(const struct sb_inbound *in, FILE *out)
{
    fprintf(out, "# HELP sinch_bridge_webhooks_total Webhooks received, by trigger and result.\n"
                 "# TYPE sinch_bridge_webhooks_total counter\n");
    for (const struct trigger_count *c = in->counts; c; c = c->next) {
        for (int r = 0; r < R_COUNT; r++) {
            if (c->n[r]) {
                fprintf(out, "sinch_bridge_webhooks_total{trigger=\"%s\",result=\"%s\"} %llu\n",
                        c->trigger, result_names[r], (unsigned long long)c->n[r]);
            }
        }
    }
    fprintf(out,
            "# HELP sinch_bridge_inbox_in_memory Stored webhook events being published.\n"
            "# TYPE sinch_bridge_inbox_in_memory gauge\nsinch_bridge_inbox_in_memory %zu\n",
            in->n_rows);
    fprintf(out,
            "# HELP sinch_bridge_inbox_commits_total Store transactions that took webhook events"
            " (the webhooks of one loop turn share one).\n"
            "# TYPE sinch_bridge_inbox_commits_total counter\nsinch_bridge_inbox_commits_total "
            "%llu\n",
            (unsigned long long)in->commits);
}

json_t *sb_inbound_results_json(const struct sb_inbound *in)
{
    uint64_t total[R_COUNT] = {0};
    json_t *o = json_object();

    for (const struct trigger_count *c = in->counts; c; c = c->next) {
        for (int r = 0; r < R_COUNT; r++) {
            total[r] += c->n[r];
        }
    }
    for (int r = 0; o && r < R_COUNT; r++) {
        json_object_set_new(o, result_names[r], json_integer((json_int_t)total[r]));
    }
    return o;
}

bool sb_inbound_store_failing(const struct sb_inbound *in)
{
    return in->store_failing;
}

/* ---- publishing the inbox ---- */

static void row_free(struct row *r)
{
    free(r->topic);
    free(r->payload);
    free(r);
}

static void publish_row(struct row *r)
{
    struct sb_inbound *in = r->in;
    r->waiting = true;
    if (in->mqtt_up && in->publish(in->ctx, r->topic, r->payload, strlen(r->payload),
                                   (uint64_t)(uintptr_t)r | 1) == SB_OK) {
        r->waiting = false;
    } else if (in->mqtt_up && !sb_timer_armed(in->republish_timer)) {
        sb_timer_arm(in->republish_timer, REPUBLISH_MS);
    }
}

static void load_row(void *arg, const struct sb_store_inbox_row *sr)
{
    struct sb_inbound *in = arg;
    struct row *r = calloc(1, sizeof(*r));

    in->last_loaded = sr->seq;
    if (!r || !(r->topic = strdup(sr->topic)) || !(r->payload = strdup(sr->payload))) {
        if (r) {
            row_free(r);
        }
        return; /* stays in the store; published after a restart */
    }
    r->in = in;
    r->seq = sr->seq;
    *in->rows_tail = r;
    in->rows_tail = &r->next;
    in->n_rows++;
}

static void maybe_load(struct sb_inbound *in)
{
    if (!in->more || in->n_rows + INBOX_BATCH > INBOX_WINDOW) {
        return;
    }
    struct row **first_new = in->rows_tail;
    size_t before = in->n_rows;
    size_t want = INBOX_WINDOW - in->n_rows;

    if (sb_store_load_inbox(in->store, in->last_loaded, want, load_row, in) != SB_OK) {
        sb_log(SB_LOG_ERROR, "inbound", "cannot load the inbox");
        return;
    }
    in->more = in->n_rows - before == want;
    /* Published after the load, not inside its callback: the store is locked there. */
    for (struct row *r = *first_new; r; r = r->next) {
        publish_row(r);
    }
}

/* The stored events of the batch just committed join the window and are published from memory,
 * not read back. Unless older rows still wait in the store (they go first: order per sender) or
 * the window is full: then they stay in the store for maybe_load() to take in order. */
static void adopt(struct sb_inbound *in, size_t n)
{
    struct row **first_new = in->rows_tail;

    for (size_t i = 0; i < n; i++) {
        struct staged *s = &in->staged[i];
        struct row *r = NULL;
        if (in->batch[i].result != SB_STORE_EVENT_STORED) {
            continue;
        }
        if (in->more || in->n_rows >= INBOX_WINDOW || !(r = calloc(1, sizeof(*r)))) {
            in->more = true; /* from here on, in order from the store */
            continue;
        }
        r->in = in;
        r->seq = in->batch[i].seq;
        r->topic = s->topic;
        r->payload = s->payload;
        s->topic = s->payload = NULL;
        *in->rows_tail = r;
        in->rows_tail = &r->next;
        in->n_rows++;
        in->last_loaded = r->seq;
    }
    for (struct row *r = *first_new; r; r = r->next) {
        publish_row(r);
    }
    maybe_load(in);
}

static void republish(void *arg)
{
    struct sb_inbound *in = arg;
    for (struct row *r = in->rows; r; r = r->next) {
        if (r->waiting) {
            publish_row(r);
        }
    }
}

void sb_inbound_on_published(struct sb_inbound *in, uint64_t tag, bool ok)
{
    struct row *done = (struct row *)(uintptr_t)(tag & ~(uint64_t)1);

    if (!ok) {
        done->waiting = true;
        if (!sb_timer_armed(in->republish_timer)) {
            sb_timer_arm(in->republish_timer, REPUBLISH_MS);
        }
        return;
    }
    for (struct row **p = &in->rows; *p; p = &(*p)->next) {
        if (*p == done) {
            *p = done->next;
            if (in->rows_tail == &done->next) {
                in->rows_tail = p;
            }
            break;
        }
    }
    in->n_rows--;
    sb_store_stage_inbox_done(in->store, done->seq);
    row_free(done);
    maybe_load(in);
}

void sb_inbound_on_mqtt(struct sb_inbound *in, bool up)
{
    in->mqtt_up = up;
    if (up) {
        republish(in);
    }
}

void sb_inbound_start(struct sb_inbound *in)
{
    in->more = true;
    maybe_load(in);
}

/* ---- the webhook ---- */

static void answer(struct sb_http_answer *ans, int status, const char *body)
{
    ans->status = status;
    ans->body = strdup(body);
}

/* The command id of a delivery report or choice tap whose metadata did not carry it: from the
 * store, by Sinch's message id (the command's row keeps it). */
static void recover_id(struct sb_inbound *in, struct sb_event *ev)
{
    char *cmd_id = NULL;
    char *recipient = NULL;

    if (ev->cmd_id || !ev->message_id || ev->message_id[0] == '\0') {
        return;
    }
    if (sb_store_lookup_message(in->store, ev->message_id, &cmd_id, &recipient) == SB_OK &&
        cmd_id) {
        json_object_set_new(ev->payload, "id", json_string(cmd_id));
        ev->cmd_id = cmd_id;
        cmd_id = NULL;
    }
    free(cmd_id);
    free(recipient);
}

static void staged_clear(struct staged *s)
{
    sb_event_clear(&s->ev);
    free(s->topic);
    free(s->payload);
    s->topic = s->payload = NULL;
    s->pending = NULL;
}

/* Renders the parsed event s->ev into its topic and payload and fills the store's record. The
 * JSON tree is freed here: the text is what is stored and published. */
static enum sb_err stage(struct sb_inbound *in, struct staged *s, struct sb_store_event *se)
{
    const struct sb_config *cfg = in->cfg;
    const struct sb_event *ev = &s->ev;
    size_t tn = strlen(cfg->topic_prefix) + strlen(ev->topic) + 2;
    int64_t now = sb_wall_ms();

    s->topic = malloc(tn);
    s->payload = json_dumps(ev->payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s->topic || !s->payload) {
        return SB_E_NOMEM;
    }
    snprintf(s->topic, tn, "%s/%s", cfg->topic_prefix, ev->topic);
    json_decref(s->ev.payload);
    s->ev.payload = NULL;
    bool delivery = ev->kind == SB_EVENT_DELIVERY;
    *se = (struct sb_store_event){
        .dedupe_key = ev->dedupe_key,
        .keep_until_ms = now + KEEP_KEYS_MS,
        .topic = s->topic,
        .payload = s->payload,
        .message_id = delivery ? ev->message_id : NULL,
        .channel = delivery ? ev->channel : NULL,
        .rank = delivery ? sb_delivery_rank(ev->status) : 0,
        .status = delivery ? ev->status : NULL,
        .contact = ev->kind == SB_EVENT_INBOUND ? ev->identity : NULL,
        .received_ms = now,
    };
    return SB_OK;
}

/* Sinch sends application/json (parameters such as charset allowed). A request that names
 * another type is not one of Sinch's webhooks: 415. One without a type is taken, since a proxy
 * on the way may drop the header; its body still has to be a signed JSON object. */
static bool json_content_type(const char *type)
{
    static const char json[] = "application/json";
    size_t n;

    if (!type) {
        return true;
    }
    n = strcspn(type, "; \t");
    return n == sizeof(json) - 1 && strncasecmp(type, json, n) == 0;
}

/* Refuses a request that does not come from Sinch: 503 without a secret, 401 on a bad
 * signature. Returns whether it was refused. */
static bool refuse_unsigned(struct sb_inbound *in, const struct sb_webhook_request *rq,
                            struct sb_http_answer *ans)
{
    const struct sb_config *cfg = in->cfg;

    if (!cfg->webhook_secret && !cfg->webhook_insecure) {
        count(in, "UNKNOWN", R_NO_SECRET);
        answer(ans, 503, "{\"error\":\"webhook secret not configured\"}");
        return true;
    }
    if (!cfg->webhook_secret) {
        return false;
    }
    enum sb_sig_verdict v =
        sb_signature_verify(cfg->webhook_secret, rq->body, rq->body_len, rq->nonce, rq->timestamp,
                            rq->signature, sb_wall_ms() / 1000, cfg->webhook_max_skew);
    if (v == SB_SIG_OK && rq->algorithm && strcmp(rq->algorithm, "HmacSHA256") != 0) {
        v = SB_SIG_MISMATCH;
    }
    if (v == SB_SIG_OK) {
        return false;
    }
    count(in, "UNKNOWN", R_BAD_SIGNATURE);
    sb_log(SB_LOG_WARN, "inbound", "webhook refused: signature %s", sb_sig_verdict_name(v));
    ans->status = 401;
    ans->body = malloc(64);
    if (ans->body) {
        snprintf(ans->body, 64, "{\"error\":\"signature %s\"}", sb_sig_verdict_name(v));
    }
    return true;
}

void sb_inbound_webhook(struct sb_inbound *in, const struct sb_webhook_request *rq,
                        struct sb_http_answer *ans)
{
    struct staged *s = &in->staged[in->n_staged]; /* n_staged < STAGE_MAX: flushed when full */
    char why[256];
    char sha[65];

    if (!json_content_type(rq->content_type)) {
        count(in, "UNKNOWN", R_MALFORMED);
        answer(ans, 415, "{\"error\":\"the content type must be application/json\"}");
        return;
    }
    if (refuse_unsigned(in, rq, ans)) {
        return;
    }
    sb_sha256_hex(rq->body, rq->body_len, sha);
    if (sb_event_parse(in->cfg, rq->body, rq->body_len, sha, &s->ev, why, sizeof(why)) != SB_OK) {
        count(in, "UNKNOWN", R_MALFORMED);
        answer(ans, 400, "{\"error\":\"malformed: not a JSON object\"}");
        sb_log(SB_LOG_WARN, "inbound", "webhook refused: %s", why);
        staged_clear(s);
        return;
    }
    recover_id(in, &s->ev);
    if (!rq->pending || stage(in, s, &in->batch[in->n_staged]) != SB_OK) {
        answer(ans, 503, "{\"error\":\"out of memory\"}");
        staged_clear(s);
        return;
    }
    s->pending = rq->pending;
    ans->status = SB_HTTP_PENDING;
    if (++in->n_staged == STAGE_MAX) {
        sb_inbound_flush(in);
    }
}

/* Counts, logs and answers one event of a batch once the commit decided it. */
static void settle(struct sb_inbound *in, struct staged *s, const struct sb_store_event *se,
                   bool committed)
{
    const struct sb_event *ev = &s->ev;

    if (!committed) {
        count(in, ev->trigger, R_STORE_FAILED);
        sb_webhook_answer(s->pending, 503, "{\"error\":\"cannot store the event\"}");
        s->pending = NULL;
        return;
    }
    count(in, ev->trigger,
          se->result == SB_STORE_EVENT_STORED      ? R_PUBLISHED
          : se->result == SB_STORE_EVENT_DUPLICATE ? R_DUPLICATE
                                                   : R_STALE);
    sb_log(SB_LOG_INFO, "inbound", "%s%s%s%s%s -> %s (%s)", ev->trigger, ev->message_id ? " " : "",
           ev->message_id ? ev->message_id : "", ev->cmd_id ? " of cmd " : "",
           ev->cmd_id ? ev->cmd_id : "", se->topic,
           se->result == SB_STORE_EVENT_STORED      ? "stored"
           : se->result == SB_STORE_EVENT_DUPLICATE ? "duplicate"
                                                    : "stale status, not published");
    sb_webhook_answer(s->pending, 200, "{\"status\":\"ok\"}");
    s->pending = NULL;
}

/* Order matters: the commit, then the answers (promise 1: stored before its 200), then the
 * publishes. The answers are written as soon as their connections are writable, at the next
 * service pass; an event is published once whatever happened to its request. */
void sb_inbound_flush(struct sb_inbound *in)
{
    size_t n = in ? in->n_staged : 0;
    enum sb_err err;

    if (n == 0) {
        return;
    }
    in->n_staged = 0;
    err = sb_store_put_events(in->store, in->batch, n);
    in->store_failing = err != SB_OK;
    if (err == SB_OK) {
        in->commits++;
        sb_log(SB_LOG_DEBUG, "inbound", "%zu webhook events in one commit", n);
    } else {
        /* 503: Sinch delivers them again (facts section 9); the store logged why. */
        sb_log(SB_LOG_WARN, "inbound", "%zu webhook events not stored: answered 503", n);
    }
    for (size_t i = 0; i < n; i++) {
        settle(in, &in->staged[i], &in->batch[i], err == SB_OK);
    }
    if (err == SB_OK) {
        adopt(in, n);
    }
    for (size_t i = 0; i < n; i++) {
        staged_clear(&in->staged[i]);
    }
}

enum sb_err sb_inbound_new(const struct sb_config *cfg, struct sb_loop *loop,
                           struct sb_store *store, sb_inbound_publish_fn publish, void *ctx,
                           struct sb_inbound **out)
{
    struct sb_inbound *in = calloc(1, sizeof(*in));

    if (!in) {
        return SB_E_NOMEM;
    }
    in->cfg = cfg;
    in->store = store;
    in->publish = publish;
    in->ctx = ctx;
    in->rows_tail = &in->rows;
    in->staged = calloc(STAGE_MAX, sizeof(*in->staged));
    in->batch = calloc(STAGE_MAX, sizeof(*in->batch));
    if (!in->staged || !in->batch ||
        sb_timer_new(loop, republish, in, &in->republish_timer) != SB_OK) {
        free(in->staged);
        free(in->batch);
        free(in);
        return SB_E_NOMEM;
    }
    *out = in;
    return SB_OK;
}

void sb_inbound_free(struct sb_inbound *in)
{
    if (!in) {
        return;
    }
    /* Normally empty: every turn's end commits. Refused, not stored: Sinch delivers again. */
    for (size_t i = 0; i < in->n_staged; i++) {
        sb_webhook_answer(in->staged[i].pending, 503, "{\"error\":\"stopping\"}");
        staged_clear(&in->staged[i]);
    }
    free(in->staged);
    free(in->batch);
    while (in->rows) {
        struct row *r = in->rows;
        in->rows = r->next;
        row_free(r);
    }
    while (in->counts) {
        struct trigger_count *c = in->counts;
        in->counts = c->next;
        free(c->trigger);
        free(c);
    }
    sb_timer_free(in->republish_timer);
    free(in);
}
