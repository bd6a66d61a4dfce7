/* Home Assistant discovery messages. Full key names rather than HA's abbreviations, so a user
 * reading a retained config with mosquitto_sub understands it. The event entities' value
 * templates turn our payloads into what HA's MQTT event entity wants: a JSON object whose
 * `event_type` is one of `event_types`, every other key becoming an attribute. They use
 * value_json.get() so that a key a payload lacks is null rather than a template error. */
#include "bridge/discovery.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC_MAX 512

/* PRODUCT.md's inbound kinds and Sinch's delivery statuses. */
static const char *const inbound_kinds[] = {"text",    "media",    "choice", "location",
                                            "contact", "fallback", "other"};
static const char *const delivery_statuses[] = {"QUEUED_ON_CHANNEL", "DELIVERED", "READ", "FAILED",
                                                "SWITCHING_CHANNEL"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char inbound_template[] =
    "{{ {'event_type': value_json.kind, 'text': value_json.get('text'),"
    " 'from': value_json.get('from'), 'channel': value_json.get('channel'),"
    " 'choice': value_json.get('choice'), 'id': value_json.get('id'),"
    " 'message_id': value_json.get('message_id')} | to_json }}";
static const char delivery_template[] =
    "{{ {'event_type': value_json.status, 'id': value_json.get('id'),"
    " 'to': value_json.get('to'), 'channel': value_json.get('channel'),"
    " 'reason': value_json.get('reason'), 'message_id': value_json.get('message_id')}"
    " | to_json }}";

struct builder {
    const struct sb_config *cfg;
    struct sb_discovery *out;
    char node[128];        /* sinch_bridge_<prefix>, HA's node_id: [a-zA-Z0-9_-] only */
    char avail[TOPIC_MAX]; /* P/bridge/state */
    json_t *device;
    json_t *origin;
};

/* HA's node and object ids allow [a-zA-Z0-9_-]; anything else (a '/' in the prefix) is '_'. */
static void id_part(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 1 < cap; src++) {
        char c = *src;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        dst[n++] = (char)(ok ? c : '_');
    }
    dst[n] = '\0';
}

static json_t *string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_array_append_new(a, json_string(v[i]));
    }
    return a;
}

/* Adds the keys every entity shares, then appends the message. Steals `o`. */
static enum sb_err add(struct builder *b, const char *component, const char *object, json_t *o)
{
    char topic[TOPIC_MAX];
    char unique[TOPIC_MAX];
    struct sb_discovery_entry *grown;
    char *payload;

    if (!o) {
        return SB_E_NOMEM;
    }
    snprintf(topic, sizeof(topic), "%s/%s/%s/%s/config", b->cfg->ha_prefix, component, b->node,
             object);
    snprintf(unique, sizeof(unique), "%s_%s", b->node, object);
    if (json_object_set_new(o, "unique_id", json_string(unique)) ||
        json_object_set(o, "device", b->device) || json_object_set(o, "origin", b->origin) ||
        json_object_set_new(o, "availability_topic", json_string(b->avail)) ||
        json_object_set_new(o, "payload_available", json_string("online")) ||
        json_object_set_new(o, "payload_not_available", json_string("offline")) ||
        json_object_set_new(o, "qos", json_integer(1))) {
        json_decref(o);
        return SB_E_NOMEM;
    }
    payload = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    grown = realloc(b->out->v, (b->out->n + 1) * sizeof(*grown));
    if (!payload || !grown) {
        free(payload);
        if (grown) {
            b->out->v = grown;
        }
        return SB_E_NOMEM;
    }
    b->out->v = grown;
    grown[b->out->n].topic = strdup(topic);
    grown[b->out->n].payload = payload;
    if (!grown[b->out->n].topic) {
        free(payload);
        return SB_E_NOMEM;
    }
    b->out->n++;
    return SB_OK;
}

static enum sb_err add_alias(struct builder *b, const char *alias)
{
    const char *p = b->cfg->topic_prefix;
    char id[96], object[128], topic[TOPIC_MAX], name[160];
    enum sb_err err;

    id_part(id, sizeof(id), alias);

    snprintf(object, sizeof(object), "%s", id);
    snprintf(topic, sizeof(topic), "%s/send/%s", p, alias);
    err = add(
        b, "notify", object,
        json_pack("{s:s,s:s,s:s}", "name", alias, "command_topic", topic, "icon", "mdi:whatsapp"));

    if (err == SB_OK) {
        snprintf(object, sizeof(object), "%s_inbound", id);
        snprintf(topic, sizeof(topic), "%s/inbound/+/%s", p, alias);
        snprintf(name, sizeof(name), "%s message", alias);
        err = add(b, "event", object,
                  json_pack("{s:s,s:s,s:o,s:s,s:s}", "name", name, "state_topic", topic,
                            "event_types", string_array(inbound_kinds, COUNT(inbound_kinds)),
                            "value_template", inbound_template, "icon", "mdi:message-text"));
    }
    if (err == SB_OK) {
        snprintf(object, sizeof(object), "%s_delivery", id);
        snprintf(topic, sizeof(topic), "%s/delivery/+/%s", p, alias);
        snprintf(name, sizeof(name), "%s delivery", alias);
        err =
            add(b, "event", object,
                json_pack("{s:s,s:s,s:o,s:s,s:s}", "name", name, "state_topic", topic,
                          "event_types", string_array(delivery_statuses, COUNT(delivery_statuses)),
                          "value_template", delivery_template, "icon", "mdi:message-check"));
    }
    return err;
}

static enum sb_err add_sensors(struct builder *b)
{
    char health[TOPIC_MAX], error[TOPIC_MAX];
    enum sb_err err;

    snprintf(health, sizeof(health), "%s/bridge/health", b->cfg->topic_prefix);
    snprintf(error, sizeof(error), "%s/error", b->cfg->topic_prefix);
    err = add(b, "sensor", "outbox_depth",
              json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name", "Outbox depth", "state_topic",
                        health, "value_template", "{{ value_json.store.outbox_depth }}",
                        "unit_of_measurement", "messages", "state_class", "measurement",
                        "entity_category", "diagnostic", "icon", "mdi:tray-full"));
    if (err == SB_OK) {
        err =
            add(b, "sensor", "sent_today",
                json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", "Messages sent today", "state_topic",
                          health, "value_template", "{{ value_json.counters.sent_today }}",
                          "unit_of_measurement", "messages", "state_class", "total_increasing",
                          "icon", "mdi:message-arrow-right"));
    }
    if (err == SB_OK) {
        err =
            add(b, "sensor", "last_error",
                json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", "Last error", "state_topic", error,
                          "value_template", "{{ value_json.error.code }}", "json_attributes_topic",
                          error, "entity_category", "diagnostic", "icon", "mdi:alert-circle"));
    }
    return err;
}

enum sb_err sb_discovery_build(const struct sb_config *cfg, struct sb_discovery *out)
{
    struct builder b = {.cfg = cfg, .out = out};
    char prefix[96];
    enum sb_err err = SB_OK;

    sb_discovery_clear(out);
    id_part(prefix, sizeof(prefix), cfg->topic_prefix);
    snprintf(b.node, sizeof(b.node), "sinch_bridge_%s", prefix);
    snprintf(b.avail, sizeof(b.avail), "%s/bridge/state", cfg->topic_prefix);
    b.device = json_pack("{s:[s],s:s,s:s,s:s,s:s}", "identifiers", b.node, "name", "Sinch bridge",
                         "manufacturer", "sinch-bridge", "model",
                         "MQTT bridge to the Sinch Conversation API", "sw_version", SB_VERSION);
    b.origin = json_pack("{s:s,s:s}", "name", "sinch-bridge", "sw_version", SB_VERSION);
    if (!b.device || !b.origin) {
        err = SB_E_NOMEM;
    }
    for (size_t i = 0; err == SB_OK && i < cfg->n_contacts; i++) {
        err = add_alias(&b, cfg->contacts[i].alias);
    }
    if (err == SB_OK) {
        err = add_sensors(&b);
    }
    json_decref(b.device);
    json_decref(b.origin);
    if (err != SB_OK) {
        sb_discovery_clear(out);
    }
    return err;
}

bool sb_discovery_has(const struct sb_discovery *d, const char *topic)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->v[i].topic, topic) == 0) {
            return true;
        }
    }
    return false;
}

void sb_discovery_clear(struct sb_discovery *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].topic);
        free(d->v[i].payload);
    }
    free(d->v);
    d->v = NULL;
    d->n = 0;
}
