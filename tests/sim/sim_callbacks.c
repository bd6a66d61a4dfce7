/* Inject bodies. A request is read in two passes: its keys are checked against what its type
 * allows (so a typo fails loudly), then the payload is built with jansson, in the field order
 * of fact 7's examples (jansson keeps insertion order), and serialised once. */
#include "sim_callbacks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_validate.h"

enum inject_type { T_TEXT, T_MEDIA, T_CHOICE, T_LOCATION, T_EVENT, T_RAW };

static const struct {
    const char *name;
    const char *keys; /* the keys this type adds to the common ones, space-separated */
} types[] = {
    [T_TEXT] = {"text", "text reply_to"},
    [T_MEDIA] = {"media", "url caption reply_to"},
    [T_CHOICE] = {"choice", "message_id postback_data"},
    [T_LOCATION] = {"location", "lat lon title label reply_to"},
    [T_EVENT] = {"event", "trigger message_id status"},
    [T_RAW] = {"raw", "body trigger"},
};

static const char common_keys[] = "type from channel metadata correlation_id duplicates signature";

/* What every payload builder sees. */
struct build {
    json_t *req;
    const struct sim_cb_context *ctx;
    const char *from, *channel, *metadata;
    char why[200];
};

static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && strncmp(p, word, n) == 0) {
            return true;
        }
        p += len;
        p += *p == ' ';
    }
    return false;
}

static const char *str_field(json_t *req, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(req, key));
    return s ? s : def;
}

/* RFC 3339 without fraction ("2024-06-15T14:23:44Z"), as channels give event_time. */
static void time_seconds(int64_t ms, char *out, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *sim_cb_identity(const char *channel, const char *identity)
{
    return json_pack("{s:s, s:s, s:s}", "channel", channel, "identity", identity, "app_id", "");
}

json_t *sim_cb_envelope(const struct sim_cb_context *ctx, const char *key, json_t *payload,
                        bool with_event_time, const char *correlation_id)
{
    char accepted[SIM_TIME_LEN + 1];
    sim_time_rfc3339(ctx->now_ms, accepted);
    json_t *env = json_pack("{s:s, s:s}", "app_id", ctx->app_id, "accepted_time", accepted);
    if (!env || !payload) {
        json_decref(env);
        json_decref(payload);
        return NULL;
    }
    if (with_event_time) {
        char event[32];
        time_seconds(ctx->now_ms - 1000, event, sizeof(event));
        json_object_set_new(env, "event_time", json_string(event));
    }
    json_object_set_new(env, "project_id", json_string(ctx->project_id));
    json_object_set_new(env, key, payload);
    if (correlation_id) {
        json_object_set_new(env, "message_metadata", json_string(""));
        json_object_set_new(env, "correlation_id", json_string(correlation_id));
    }
    return env;
}

static void new_id(const struct build *b, char *out)
{
    sim_ids_ulid(b->ctx->ids, b->ctx->now_ms, out);
}

/* ---- MESSAGE_INBOUND ---- */

/* The contact_message of a text, media, choice or location inject; NULL with b->why. */
static json_t *contact_message(struct build *b, enum inject_type type)
{
    json_t *req = b->req, *m = NULL;
    switch (type) {
    case T_TEXT:
        m = json_pack("{s:{s:s}}", "text_message", "text", str_field(req, "text", "Hello"));
        break;
    case T_MEDIA:
        if (!json_is_string(json_object_get(req, "url"))) {
            snprintf(b->why, sizeof(b->why), "media needs \"url\", a string");
            return NULL;
        }
        m = json_object_get(req, "caption")
                ? json_pack("{s:{s:O, s:s}}", "media_card_message", "url",
                            json_object_get(req, "url"), "caption", str_field(req, "caption", ""))
                : json_pack("{s:{s:O}}", "media_message", "url", json_object_get(req, "url"));
        break;
    case T_CHOICE:
        if (!json_is_string(json_object_get(req, "message_id")) ||
            !json_is_string(json_object_get(req, "postback_data"))) {
            snprintf(b->why, sizeof(b->why),
                     "choice needs \"message_id\" (the app message tapped) and \"postback_data\"");
            return NULL;
        }
        m = json_pack("{s:{s:O, s:O}}", "choice_response_message", "message_id",
                      json_object_get(req, "message_id"), "postback_data",
                      json_object_get(req, "postback_data"));
        break;
    case T_LOCATION:
        if (!json_is_number(json_object_get(req, "lat")) ||
            !json_is_number(json_object_get(req, "lon"))) {
            snprintf(b->why, sizeof(b->why), "location needs \"lat\" and \"lon\", numbers");
            return NULL;
        }
        m = json_pack("{s:{s:s}}", "location_message", "title", str_field(req, "title", ""));
        if (m && json_object_get(req, "label")) {
            json_object_set_new(json_object_get(m, "location_message"), "label",
                                json_string(str_field(req, "label", "")));
        }
        if (m) {
            json_object_set_new(
                json_object_get(m, "location_message"), "coordinates",
                json_pack("{s:f, s:f}", "latitude", json_number_value(json_object_get(req, "lat")),
                          "longitude", json_number_value(json_object_get(req, "lon"))));
        }
        break;
    default:
        break;
    }
    if (m && json_is_string(json_object_get(req, "reply_to"))) {
        json_object_set_new(m, "reply_to",
                            json_pack("{s:O}", "message_id", json_object_get(req, "reply_to")));
    }
    return m;
}

/* The `message` (or `message_redaction`) payload around a contact message (stolen). */
static json_t *inbound(struct build *b, json_t *content)
{
    char id[SIM_ULID_LEN + 1], accept[SIM_TIME_LEN + 1];
    new_id(b, id);
    sim_time_rfc3339(b->ctx->now_ms - 12, accept);
    return json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s}", "id", id, "direction",
                     "TO_APP", "contact_message", content, "channel_identity",
                     sim_cb_identity(b->channel, b->from), "conversation_id", "", "contact_id", "",
                     "metadata", b->metadata, "accept_time", accept, "processing_mode", "DISPATCH");
}

/* ---- the canned payloads of the other triggers (facts 7.4-7.13) ---- */

static json_t *contact(struct build *b)
{
    char id[SIM_ULID_LEN + 1];
    new_id(b, id);
    return json_pack("{s:s, s:[o], s:[s], s:s, s:s, s:s, s:s, s:s}", "id", id, "channel_identities",
                     sim_cb_identity(b->channel, b->from), "channel_priority", b->channel,
                     "display_name", "Unknown", "email", "", "external_id", "", "metadata", "",
                     "language", "UNSPECIFIED");
}

static json_t *conversation(struct build *b, bool active)
{
    char id[SIM_ULID_LEN + 1], contact_id[SIM_ULID_LEN + 1], last[32];
    new_id(b, id);
    new_id(b, contact_id);
    time_seconds(b->ctx->now_ms - 1000, last, sizeof(last));
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:{}, s:s}}", "conversation", "id", id,
                     "app_id", b->ctx->app_id, "contact_id", contact_id, "active_channel",
                     b->channel, "active", active, "last_received", last, "metadata", "",
                     "metadata_json", "correlation_id", "");
}

/* The payload of trigger `t`, or NULL with b->why. */
static json_t *canned(struct build *b, enum sim_trigger t)
{
    char id[SIM_ULID_LEN + 1], id2[SIM_ULID_LEN + 1], accept[SIM_TIME_LEN + 1];
    const char *ch = b->channel, *from = b->from;
    const char *message_id = str_field(b->req, "message_id", NULL);
    const char *status = str_field(b->req, "status", "DELIVERED");
    new_id(b, id);
    new_id(b, id2);
    sim_time_rfc3339(b->ctx->now_ms - 20, accept);

    switch (t) {
    case SIM_TRIGGER_MESSAGE_INBOUND:
        return inbound(b, json_pack("{s:{s:s}}", "text_message", "text", "Hello"));
    case SIM_TRIGGER_MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION:
        return inbound(
            b, json_pack("{s:{s:s}}", "text_message", "text", "My card number is {CREDIT_CARD}"));
    case SIM_TRIGGER_MESSAGE_DELIVERY:
        return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s}", "message_id",
                         message_id ? message_id : id, "conversation_id", "", "status", status,
                         "channel_identity", sim_cb_identity(ch, from), "contact_id", "",
                         "metadata", b->metadata, "processing_mode", "DISPATCH");
    case SIM_TRIGGER_MESSAGE_SUBMIT:
        return json_pack("{s:s, s:s, s:o, s:s, s:{s:{s:s}}, s:s, s:s}", "message_id",
                         message_id ? message_id : id, "conversation_id", "", "channel_identity",
                         sim_cb_identity(ch, from), "contact_id", "", "submitted_message",
                         "text_message", "text", "Hello from the app", "metadata", b->metadata,
                         "processing_mode", "DISPATCH");
    case SIM_TRIGGER_EVENT_INBOUND:
        return json_pack("{s:s, s:s, s:{s:{}}, s:o, s:s, s:s, s:s, s:s}", "id", id, "direction",
                         "TO_APP", "contact_event", "composing_event", "channel_identity",
                         sim_cb_identity(ch, from), "contact_id", "", "conversation_id", "",
                         "accept_time", accept, "processing_mode", "DISPATCH");
    case SIM_TRIGGER_EVENT_DELIVERY:
        return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "event_id", message_id ? message_id : id,
                         "status", status, "channel_identity", sim_cb_identity(ch, from),
                         "contact_id", "", "metadata", b->metadata, "processing_mode", "DISPATCH");
    case SIM_TRIGGER_CONVERSATION_START:
        return conversation(b, true);
    case SIM_TRIGGER_CONVERSATION_STOP:
    case SIM_TRIGGER_CONVERSATION_DELETE:
        return conversation(b, false);
    case SIM_TRIGGER_CONTACT_CREATE:
    case SIM_TRIGGER_CONTACT_DELETE:
    case SIM_TRIGGER_CONTACT_UPDATE:
        return json_pack("{s:o}", "contact", contact(b));
    case SIM_TRIGGER_CONTACT_MERGE:
        return json_pack("{s:o, s:o}", "preserved_contact", contact(b), "deleted_contact",
                         contact(b));
    case SIM_TRIGGER_CONTACT_IDENTITIES_DUPLICATION:
        return json_pack("{s:[{s:s, s:[s, s]}]}", "duplicated_identities", "channel", ch,
                         "contact_ids", id, id2);
    case SIM_TRIGGER_CAPABILITY:
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:[]}", "request_id", id, "contact_id", "",
                         "channel", ch, "identity", from, "capability_status", "CAPABILITY_FULL",
                         "channel_capabilities");
    case SIM_TRIGGER_OPT_IN:
    case SIM_TRIGGER_OPT_OUT:
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "request_id", id, "contact_id", "",
                         "channel", ch, "identity", from, "status",
                         t == SIM_TRIGGER_OPT_IN ? "OPT_IN_SUCCEEDED" : "OPT_OUT_SUCCEEDED",
                         "processing_mode", "DISPATCH");
    case SIM_TRIGGER_CHANNEL_EVENT:
        return json_pack("{s:{s:s, s:s, s:{s:s}}}", "channel_event", "channel", ch, "event_type",
                         "WHATS_APP_QUALITY_RATING_CHANGED", "additional_data", "quality_rating",
                         "YELLOW");
    case SIM_TRIGGER_UNSUPPORTED:
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "channel", ch, "payload",
                         "{\"statuses\":[{\"id\":\"wamid.example\",\"status\":\"deleted\"}]}",
                         "processing_mode", "DISPATCH", "id", id, "contact_id", "",
                         "conversation_id", "", "channel_identity", sim_cb_identity(ch, from));
    case SIM_TRIGGER_SMART_CONVERSATION:
        return json_pack("{s:s, s:o, s:s, s:s, s:s, s:{s:[{s:s, s:s, s:f}]}}", "contact_id", "",
                         "channel_identity", sim_cb_identity(ch, from), "channel", ch, "message_id",
                         message_id ? message_id : id, "conversation_id", "", "analysis_results",
                         "ml_sentiment_result", "message", "Hello", "sentiment", "positive",
                         "score", 0.93);
    case SIM_TRIGGER_RECORD_NOTIFICATION:
        return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "entity_id", id, "record_status",
                         "EVENT_RECORD_STORED", "channel_identity", sim_cb_identity(ch, from),
                         "contact_id", "", "conversation_id", "", "processing_mode", "DISPATCH");
    default:
        snprintf(b->why, sizeof(b->why), "no canned body for this trigger");
        return NULL;
    }
}

/* True for the triggers whose callbacks carry event_time, message_metadata and correlation_id
 * (the message and event ones); notifications carry neither (facts 7.7-7.12). */
static bool message_like(enum sim_trigger t)
{
    return t <= SIM_TRIGGER_EVENT_DELIVERY ||
           t == SIM_TRIGGER_MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION;
}

/* ---- raw bodies ---- */

static enum sim_trigger detect(json_t *body)
{
    const char *key;
    json_t *val;
    enum sim_trigger t;
    json_object_foreach(body, key, val)
    {
        if (sim_trigger_from_key(key, &t)) {
            return t;
        }
    }
    return SIM_TRIGGER_UNKNOWN;
}

static bool raw(struct build *b, struct sim_injected *out)
{
    json_t *body = json_object_get(b->req, "body");
    const char *trigger = str_field(b->req, "trigger", NULL);
    if (json_is_string(body)) {
        out->text = strdup(json_string_value(body));
        out->json = json_loads(json_string_value(body), JSON_DECODE_ANY, NULL);
        if (!out->json) {
            out->json = json_copy(body);
        }
    } else if (json_is_object(body)) {
        out->text = json_dumps(body, SIM_CB_DUMP_FLAGS);
        out->json = json_incref(body);
    } else {
        snprintf(b->why, sizeof(b->why),
                 "raw needs \"body\": an object (sent compact) or a string (sent as is)");
        return false;
    }
    if (trigger && !sim_trigger_parse(trigger, &out->trigger)) {
        snprintf(b->why, sizeof(b->why), "\"trigger\" is not a webhook trigger name");
        return false;
    }
    if (!trigger) {
        out->trigger = detect(out->json);
    }
    if (!out->text || !out->json) {
        snprintf(b->why, sizeof(b->why), "out of memory");
        return false;
    }
    return true;
}

/* ---- the request ---- */

static bool check_keys(struct build *b, enum inject_type type)
{
    const char *key;
    json_t *val;
    json_object_foreach(b->req, key, val)
    {
        if (!word_in(common_keys, key) && !word_in(types[type].keys, key)) {
            snprintf(b->why, sizeof(b->why), "\"%.40s\" is not a field of a %s inject", key,
                     types[type].name);
            return false;
        }
        bool is_number =
            strcmp(key, "lat") == 0 || strcmp(key, "lon") == 0 || strcmp(key, "duplicates") == 0;
        if (!is_number && strcmp(key, "body") != 0 && !json_is_string(val)) {
            snprintf(b->why, sizeof(b->why), "\"%.40s\" must be a string", key);
            return false;
        }
    }
    return true;
}

bool sim_callback_inject(json_t *req, const struct sim_cb_context *ctx, struct sim_injected *out,
                         char *why, size_t why_len)
{
    struct build b = {.req = req, .ctx = ctx};
    const char *type_name = str_field(req, "type", "text");
    enum inject_type type = T_TEXT;
    bool found = false;
    json_t *payload = NULL;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(type_name, types[i].name) == 0) {
            type = (enum inject_type)i;
            found = true;
        }
    }
    if (!json_is_object(req)) {
        snprintf(b.why, sizeof(b.why), "the body must be a JSON object");
        goto bad;
    }
    if (!found) {
        snprintf(b.why, sizeof(b.why),
                 "\"type\" must be text, media, choice, location, event or raw");
        goto bad;
    }
    if (!check_keys(&b, type)) {
        goto bad;
    }
    b.from = str_field(req, "from", SIM_INJECT_FROM);
    b.channel = str_field(req, "channel", SIM_INJECT_CHANNEL);
    b.metadata = str_field(req, "metadata", "");
    if (!b.from[0] || !sim_validate_channel_known(b.channel)) {
        snprintf(b.why, sizeof(b.why), "\"from\" must be non-empty, \"channel\" a Sinch channel");
        goto bad;
    }
    if (type == T_RAW) {
        if (!raw(&b, out)) {
            goto bad;
        }
        return true;
    }
    if (type == T_EVENT) {
        const char *trigger = str_field(req, "trigger", "");
        if (!sim_trigger_parse(trigger, &out->trigger)) {
            snprintf(b.why, sizeof(b.why), "event needs \"trigger\", a webhook trigger name");
            goto bad;
        }
        payload = canned(&b, out->trigger);
    } else {
        out->trigger = SIM_TRIGGER_MESSAGE_INBOUND;
        json_t *content = contact_message(&b, type);
        payload = content ? inbound(&b, content) : NULL;
    }
    if (!payload) {
        if (!b.why[0]) {
            snprintf(b.why, sizeof(b.why), "out of memory");
        }
        goto bad;
    }
    out->json =
        sim_cb_envelope(ctx, sim_trigger_key(out->trigger), payload, message_like(out->trigger),
                        message_like(out->trigger) ? str_field(req, "correlation_id", "") : NULL);
    out->text = out->json ? json_dumps(out->json, SIM_CB_DUMP_FLAGS) : NULL;
    if (!out->text) {
        snprintf(b.why, sizeof(b.why), "out of memory");
        goto bad;
    }
    return true;
bad:
    sim_injected_release(out);
    snprintf(why, why_len, "%s", b.why);
    return false;
}

void sim_injected_release(struct sim_injected *in)
{
    free(in->text);
    json_decref(in->json);
    memset(in, 0, sizeof(*in));
}
