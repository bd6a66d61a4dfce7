/* Inbound (include/bridge/inbound.h): webhook -> verified -> stored -> 200 -> published.
 *
 * The inbox publisher keeps a bounded window of stored rows in memory, publishes them in order,
 * and deletes each when its PUBACK comes (staged, flushed at the end of the loop turn). A row
 * whose publish failed waits for the broker and is published again; after a crash every row
 * still in the store is. Thread: loop. */
#include "bridge/inbound.h"

#include <stdlib.h>
#include <string.h>

#include "adapters/signature.h"
#include "bridge/events.h"
#include "bridge/log.h"

#define INBOX_WINDOW 1024
#define INBOX_BATCH  128
#define KEEP_KEYS_MS (48 * 3600 * 1000LL) /* PRODUCT.md: at least 24 h; twice that */
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

void sb_inbound_webhook(struct sb_inbound *in, const struct sb_webhook_request *rq,
                        struct sb_http_answer *ans)
{
    const struct sb_config *cfg = in->cfg;
    struct sb_event ev = {0};
    char why[256];
    char sha[65];
    char *topic = NULL;
    char *payload = NULL;
    enum sb_store_event_result result;

    if (!cfg->webhook_secret && !cfg->webhook_insecure) {
        count(in, "UNKNOWN", R_NO_SECRET);
        answer(ans, 503, "{\"error\":\"webhook secret not configured\"}");
        return;
    }
    if (cfg->webhook_secret) {
        enum sb_sig_verdict v = sb_signature_verify(cfg->webhook_secret, rq->body, rq->body_len,
                                                    rq->nonce, rq->timestamp, rq->signature,
                                                    sb_wall_ms() / 1000, cfg->webhook_max_skew);
        if (v == SB_SIG_OK && rq->algorithm && strcmp(rq->algorithm, "HmacSHA256") != 0) {
            v = SB_SIG_MISMATCH;
        }
        if (v != SB_SIG_OK) {
            count(in, "UNKNOWN", R_BAD_SIGNATURE);
            sb_log(SB_LOG_WARN, "inbound", "webhook refused: signature %s", sb_sig_verdict_name(v));
            ans->status = 401;
            ans->body = malloc(64);
            if (ans->body) {
                snprintf(ans->body, 64, "{\"error\":\"signature %s\"}", sb_sig_verdict_name(v));
            }
            return;
        }
    }
    sb_sha256_hex(rq->body, rq->body_len, sha);
    if (sb_event_parse(cfg, rq->body, rq->body_len, sha, &ev, why, sizeof(why)) != SB_OK) {
        count(in, "UNKNOWN", R_MALFORMED);
        answer(ans, 400, "{\"error\":\"malformed: not a JSON object\"}");
        sb_log(SB_LOG_WARN, "inbound", "webhook refused: %s", why);
        goto out;
    }
    recover_id(in, &ev);
    size_t tn = strlen(cfg->topic_prefix) + strlen(ev.topic) + 2;
    topic = malloc(tn);
    payload = json_dumps(ev.payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!topic || !payload) {
        answer(ans, 503, "{\"error\":\"out of memory\"}");
        goto out;
    }
    snprintf(topic, tn, "%s/%s", cfg->topic_prefix, ev.topic);
    struct sb_store_event se = {
        .dedupe_key = ev.dedupe_key,
        .keep_until_ms = sb_wall_ms() + KEEP_KEYS_MS,
        .topic = topic,
        .payload = payload,
        .message_id = ev.kind == SB_EVENT_DELIVERY ? ev.message_id : NULL,
        .channel = ev.kind == SB_EVENT_DELIVERY ? ev.channel : NULL,
        .rank = ev.kind == SB_EVENT_DELIVERY ? sb_delivery_rank(ev.status) : 0,
        .status = ev.kind == SB_EVENT_DELIVERY ? ev.status : NULL,
        .contact = ev.kind == SB_EVENT_INBOUND ? ev.identity : NULL,
        .received_ms = sb_wall_ms(),
    };
    if (sb_store_put_event(in->store, &se, &result) != SB_OK) {
        /* 503: Sinch delivers it again later (facts section 9). */
        in->store_failing = true;
        count(in, ev.trigger, R_STORE_FAILED);
        answer(ans, 503, "{\"error\":\"cannot store the event\"}");
        goto out;
    }
    in->store_failing = false;
    count(in, ev.trigger,
          result == SB_STORE_EVENT_STORED      ? R_PUBLISHED
          : result == SB_STORE_EVENT_DUPLICATE ? R_DUPLICATE
                                               : R_STALE);
    sb_log(SB_LOG_INFO, "inbound", "%s%s%s%s%s -> %s (%s)", ev.trigger, ev.message_id ? " " : "",
           ev.message_id ? ev.message_id : "", ev.cmd_id ? " of cmd " : "",
           ev.cmd_id ? ev.cmd_id : "", topic,
           result == SB_STORE_EVENT_STORED      ? "stored"
           : result == SB_STORE_EVENT_DUPLICATE ? "duplicate"
                                                : "stale status, not published");
    answer(ans, 200, "{\"status\":\"ok\"}");
    if (result == SB_STORE_EVENT_STORED) {
        in->more = true;
        maybe_load(in);
    }
out:
    free(topic);
    free(payload);
    sb_event_clear(&ev);
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
    if (sb_timer_new(loop, republish, in, &in->republish_timer) != SB_OK) {
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
