/* Sinch webhook events to what the bridge publishes: the trigger (facts 6.3, 7.2), the topic and
 * normalised payload of PRODUCT.md "Inbound and delivery payloads" (Sinch's whole callback under
 * "raw"), the deduplication key of facts section 9 and the ids the status rule needs. The webhook
 * listener calls sb_event_parse() for every verified body. Pure: no I/O, no clock; any thread.
 * Everything inside the object is untrusted: any field may be missing, null or of another type. */
#include "bridge/events.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEVEL_MAX  128 /* ours: bytes of an identity in a topic level; "from" keeps it whole */
#define KEY_MAX    512 /* ours: a longer key (a huge id) falls back to the body hash */
#define CMD_ID_MAX 64  /* PRODUCT.md "The send command": id, up to 64 of [A-Za-z0-9._:-] */
#define INDEX_MAX  9   /* digits of a choice index in our postback: far above facts 3.6's 10 */

enum trig {
    T_MESSAGE_INBOUND,
    T_MESSAGE_DELIVERY,
    T_MESSAGE_SUBMIT,
    T_EVENT_INBOUND,
    T_EVENT_DELIVERY,
    T_CONVERSATION_START,
    T_CONVERSATION_STOP,
    T_CONVERSATION_DELETE,
    T_CONTACT_CREATE,
    T_CONTACT_DELETE,
    T_CONTACT_MERGE,
    T_CONTACT_UPDATE,
    T_CONTACT_IDENTITIES_DUPLICATION,
    T_CAPABILITY,
    T_OPT_IN,
    T_OPT_OUT,
    T_CHANNEL_EVENT,
    T_UNSUPPORTED,
    T_SMART_CONVERSATION,
    T_REDACTION,
    T_RECORD_NOTIFICATION,
    T_UNKNOWN,
};

/* facts 6.3: payload key -> trigger, in the table's order (also the order of precedence should
 * a callback ever carry two known keys: facts 7.2 says there is exactly one). */
static const struct {
    const char *key;
    const char *name;
} triggers[] = {
    [T_MESSAGE_INBOUND] = {"message", "MESSAGE_INBOUND"},
    [T_MESSAGE_DELIVERY] = {"message_delivery_report", "MESSAGE_DELIVERY"},
    [T_MESSAGE_SUBMIT] = {"message_submit_notification", "MESSAGE_SUBMIT"},
    [T_EVENT_INBOUND] = {"event", "EVENT_INBOUND"},
    [T_EVENT_DELIVERY] = {"event_delivery_report", "EVENT_DELIVERY"},
    [T_CONVERSATION_START] = {"conversation_start_notification", "CONVERSATION_START"},
    [T_CONVERSATION_STOP] = {"conversation_stop_notification", "CONVERSATION_STOP"},
    [T_CONVERSATION_DELETE] = {"conversation_delete_notification", "CONVERSATION_DELETE"},
    [T_CONTACT_CREATE] = {"contact_create_notification", "CONTACT_CREATE"},
    [T_CONTACT_DELETE] = {"contact_delete_notification", "CONTACT_DELETE"},
    [T_CONTACT_MERGE] = {"contact_merge_notification", "CONTACT_MERGE"},
    [T_CONTACT_UPDATE] = {"contact_update_notification", "CONTACT_UPDATE"},
    [T_CONTACT_IDENTITIES_DUPLICATION] = {"duplicated_contact_identities_notification",
                                          "CONTACT_IDENTITIES_DUPLICATION"},
    [T_CAPABILITY] = {"capability_notification", "CAPABILITY"},
    [T_OPT_IN] = {"opt_in_notification", "OPT_IN"},
    [T_OPT_OUT] = {"opt_out_notification", "OPT_OUT"},
    [T_CHANNEL_EVENT] = {"channel_event_notification", "CHANNEL_EVENT"},
    [T_UNSUPPORTED] = {"unsupported_callback", "UNSUPPORTED"},
    [T_SMART_CONVERSATION] = {"smart_conversation_notification", "SMART_CONVERSATION"},
    [T_REDACTION] = {"message_redaction", "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION"},
    [T_RECORD_NOTIFICATION] = {"record_notification", "RECORD_NOTIFICATION"},
    [T_UNKNOWN] = {NULL, "UNKNOWN"},
};

/* facts 3.1: channels whose identity is not a phone number (PSIDs, chat ids, user keys). A
 * Telegram chat id of 9 digits would pass as E.164, so these never become "+<digits>". Every
 * other channel, unknown ones included, takes E.164 when the identity is one (facts 10.3). */
static const char *const non_phone_channels[] = {
    "MESSENGER", "INSTAGRAM", "TELEGRAM", "KAKAOTALKCHAT", "LINE", "WECHAT", "APPLEBC",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Who an event names: its channel and contact, and the topic levels they give. */
struct party {
    char e164[24];             /* "+<digits>" when the identity is a phone number, else "" */
    const char *alias;         /* borrowed from the config, or NULL */
    char channel_level[32];    /* lower-case channel, or "unknown" */
    char level[LEVEL_MAX + 1]; /* the alias, the digits, the sanitised identity or "unknown" */
};

/* ---- small helpers ---- */

static const char *str_get(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key)); /* NULL unless a string */
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* A new JSON string, or JSON null for NULL. */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A new deep copy of v when it is an object (a "reason"), else JSON null. Copied rather than
 * shared with "raw", so that a caller editing the payload cannot change both. */
static json_t *object_or_null(const json_t *v)
{
    return json_is_object(v) ? json_deep_copy(v) : json_null();
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* *dst = a new copy of s when s is not empty, else NULL. */
static enum sb_err set_nonempty(char **dst, const char *s)
{
    *dst = dup_or_null(nonempty(s));
    return *dst || !nonempty(s) ? SB_OK : SB_E_NOMEM;
}

static char *upper_dup(const char *s)
{
    char *d = dup_or_null(s);

    for (char *p = d; p && *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
    return d;
}

__attribute__((format(printf, 1, 2))) static char *dupf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return NULL;
    }
    s = malloc((size_t)n + 1);
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Copies valid UTF-8 `in` into a topic level of at most out_len - 1 bytes, cut at a character
 * boundary: MQTT forbids '+' and '#' in a topic name, '/' would add a level, and control
 * characters (C0, DEL, C1) are discouraged by the MQTT spec. Empty -> "unknown". */
static void sanitise_level(const char *in, char *out, size_t out_len)
{
    const unsigned char *p = (const unsigned char *)(in ? in : "");
    size_t n = 0;

    while (*p) {
        size_t cp_len = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        bool control = *p < 0x20 || *p == 0x7F || (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F);
        bool bad = control || *p == '/' || *p == '+' || *p == '#';
        size_t w = bad ? 1 : cp_len;

        if (n + w >= out_len) {
            break;
        }
        if (bad) {
            out[n++] = '_';
        } else {
            memcpy(out + n, p, cp_len);
            n += cp_len;
        }
        for (size_t k = 0; k < cp_len && *p; k++) {
            p++; /* jansson checked the UTF-8; the *p test only guards a truncated tail */
        }
    }
    out[n] = '\0';
    if (n == 0) {
        snprintf(out, out_len, "unknown");
    }
}

static bool non_phone(const char *channel)
{
    for (size_t i = 0; channel && i < COUNT(non_phone_channels); i++) {
        if (strcmp(channel, non_phone_channels[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Sets ev->channel and ev->identity from what the event names (either may be NULL) and fills
 * *pt with the topic levels. Empty strings name nothing. */
static enum sb_err name_party(const struct sb_config *cfg, const char *channel,
                              const char *identity, struct sb_event *ev, struct party *pt)
{
    memset(pt, 0, sizeof(*pt));
    channel = nonempty(channel);
    identity = nonempty(identity);
    if (channel && !(ev->channel = upper_dup(channel))) {
        return SB_E_NOMEM;
    }
    sanitise_level(ev->channel, pt->channel_level, sizeof(pt->channel_level));
    for (char *c = pt->channel_level; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    if (!identity) {
        snprintf(pt->level, sizeof(pt->level), "unknown");
        return SB_OK;
    }
    if (!non_phone(ev->channel) && sb_e164_normalise(identity, pt->e164, sizeof(pt->e164))) {
        pt->alias = sb_config_alias_of(cfg, pt->e164);
        snprintf(pt->level, sizeof(pt->level), "%s", pt->alias ? pt->alias : pt->e164 + 1);
        ev->identity = strdup(pt->e164);
    } else {
        pt->e164[0] = '\0';
        sanitise_level(identity, pt->level, sizeof(pt->level));
        ev->identity = strdup(identity);
    }
    return ev->identity ? SB_OK : SB_E_NOMEM;
}

/* The first non-empty timestamp string among a, b, c, as a new JSON value (null when none). */
static json_t *first_time(const char *a, const char *b, const char *c)
{
    return str_or_null(nonempty(a) ? a : nonempty(b) ? b : nonempty(c));
}

static bool cmd_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > CMD_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* Our message_metadata round trip (facts 11.2, PRODUCT.md "Mapping to Sinch"): the JSON string
 * {"id": ..., "metadata": ...}. Sets *id (and *metadata when asked) to new strings, or leaves
 * them NULL when `s` is not ours: not JSON, no valid command id. */
static enum sb_err metadata_parse(const char *s, char **id, char **metadata)
{
    json_t *wrap;
    const char *v;
    enum sb_err err = SB_OK;

    *id = NULL;
    if (metadata) {
        *metadata = NULL;
    }
    if (!nonempty(s) || s[0] != '{') {
        return SB_OK;
    }
    wrap = json_loads(s, JSON_REJECT_DUPLICATES, NULL); /* new, released below */
    v = str_get(wrap, "id");
    if (v && cmd_id_valid(v, strlen(v))) {
        *id = strdup(v);
        err = *id ? SB_OK : SB_E_NOMEM;
        v = str_get(wrap, "metadata");
        if (metadata && v && err == SB_OK) {
            *metadata = strdup(v);
            err = *metadata ? SB_OK : SB_E_NOMEM;
        }
    }
    json_decref(wrap);
    return err;
}

/* Our choice postback "<id>|<index>|<option text>" (include/bridge/command.h): the id as
 * PRODUCT.md allows it, the index as sb_command_postback() writes it (no sign, no leading
 * zero), the text is the rest and may hold '|'. */
static bool postback_parse(const char *pb, size_t *id_len, long *index, const char **text)
{
    const char *bar = pb ? strchr(pb, '|') : NULL;
    const char *d;
    size_t nd;

    if (!bar || !cmd_id_valid(pb, (size_t)(bar - pb))) {
        return false;
    }
    d = bar + 1;
    nd = strspn(d, "0123456789");
    if (nd == 0 || nd > INDEX_MAX || d[nd] != '|' || (d[0] == '0' && nd > 1)) {
        return false;
    }
    *id_len = (size_t)(bar - pb);
    *index = strtol(d, NULL, 10); /* at most 9 digits: cannot overflow */
    *text = d + nd + 1;
    return true;
}

/* ---- the deduplication key (facts section 9) ---- */

/* "<TRIGGER>:<part>|<part>...", or "<TRIGGER>:sha256:<hex>" when the first part (the id) is
 * missing or empty, or the key would pass KEY_MAX. NULL parts are written empty. */
static enum sb_err make_key(struct sb_event *ev, const char *sha, const char *const *parts,
                            size_t n)
{
    char buf[KEY_MAX + 1];
    size_t len;
    int w;

    if (n == 0 || !nonempty(parts[0])) {
        goto hash;
    }
    w = snprintf(buf, sizeof(buf), "%s:", ev->trigger);
    len = (size_t)w;
    for (size_t i = 0; i < n && len < sizeof(buf); i++) {
        w = snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "|" : "", parts[i] ? parts[i] : "");
        len += (size_t)w;
    }
    if (len < sizeof(buf)) {
        ev->dedupe_key = strdup(buf);
        return ev->dedupe_key ? SB_OK : SB_E_NOMEM;
    }
hash:
    ev->dedupe_key = dupf("%s:sha256:%s", ev->trigger, sha);
    return ev->dedupe_key ? SB_OK : SB_E_NOMEM;
}

static enum sb_err dedupe_key(enum trig t, const json_t *p, struct sb_event *ev, const char *sha)
{
    const char *parts[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0;

    switch (t) {
    case T_MESSAGE_INBOUND:
        parts[n++] = str_get(p, "id");
        break;
    case T_MESSAGE_DELIVERY:
        parts[n++] = str_get(p, "message_id");
        parts[n++] = str_get(p, "status");
        parts[n++] = ev->channel;
        if (ev->status &&
            (strcmp(ev->status, "FAILED") == 0 || strcmp(ev->status, "SWITCHING_CHANNEL") == 0)) {
            parts[n++] = str_get(json_object_get(p, "reason"), "code");
        }
        break;
    case T_MESSAGE_SUBMIT:
        parts[n++] = str_get(p, "message_id");
        parts[n++] = ev->channel;
        break;
    case T_EVENT_INBOUND:
        parts[n++] = str_get(p, "id");
        break;
    case T_EVENT_DELIVERY:
        parts[n++] = str_get(p, "event_id");
        parts[n++] = str_get(p, "status");
        break;
    case T_OPT_IN:
    case T_OPT_OUT:
        parts[n++] = str_get(p, "request_id");
        parts[n++] = str_get(p, "status");
        break;
    case T_CAPABILITY:
        parts[n++] = str_get(p, "request_id");
        parts[n++] = str_get(p, "capability_status");
        break;
    default:
        break;
    }
    return make_key(ev, sha, parts, n);
}

/* ---- MESSAGE_INBOUND ---- */

/* The kind and its fields of PRODUCT.md "Inbound and delivery payloads", from the
 * contact_message of facts 7.3, added to `pl`. Returns -1 on ENOMEM (jansson's convention). */
static int inbound_content(const json_t *msg, json_t *pl, struct sb_event *ev, enum sb_err *err)
{
    const json_t *cm = json_object_get(msg, "contact_message");
    const json_t *c;
    int rc = 0;

    if ((c = json_object_get(cm, "text_message")) && json_is_object(c)) {
        rc |= json_object_set_new(pl, "kind", json_string("text"));
        rc |= json_object_set_new(pl, "text", str_or_null(str_get(c, "text")));
    } else if ((c = json_object_get(cm, "media_message")) && json_is_object(c)) {
        json_t *media = json_object(); /* new, handed to pl */
        const char *thumb = str_get(c, "thumbnail_url");
        const char *name = str_get(c, "filename_override");

        /* Filled before it is handed over: a failed set_new releases it. */
        rc |= json_object_set_new(media, "url", str_or_null(str_get(c, "url")));
        if (thumb) {
            rc |= json_object_set_new(media, "thumbnail_url", json_string(thumb));
        }
        if (name) {
            rc |= json_object_set_new(media, "filename_override", json_string(name));
        }
        rc |= json_object_set_new(pl, "kind", json_string("media"));
        rc |= json_object_set_new(pl, "media", media);
    } else if ((c = json_object_get(cm, "media_card_message")) && json_is_object(c)) {
        const char *caption = str_get(c, "caption");

        rc |= json_object_set_new(pl, "kind", json_string("media"));
        rc |= json_object_set_new(pl, "media",
                                  json_pack("{s:o, s:o}", "url", str_or_null(str_get(c, "url")),
                                            "caption", str_or_null(caption)));
        if (caption) {
            rc |= json_object_set_new(pl, "text", json_string(caption));
        }
    } else if ((c = json_object_get(cm, "location_message")) && json_is_object(c)) {
        const json_t *co = json_object_get(c, "coordinates");
        json_t *lat = json_object_get(co, "latitude");  /* borrowed */
        json_t *lon = json_object_get(co, "longitude"); /* borrowed */

        rc |= json_object_set_new(pl, "kind", json_string("location"));
        rc |= json_object_set_new(
            pl, "location",
            json_pack("{s:o, s:o, s:o, s:o}", "lat",
                      json_is_number(lat) ? json_copy(lat) : json_null(), "lon",
                      json_is_number(lon) ? json_copy(lon) : json_null(), "title",
                      str_or_null(str_get(c, "title")), "label", str_or_null(str_get(c, "label"))));
    } else if ((c = json_object_get(cm, "choice_response_message")) && json_is_object(c)) {
        const char *pb = str_get(c, "postback_data");
        const char *text = NULL;
        size_t id_len = 0;
        long index = 0;
        bool ours = postback_parse(pb, &id_len, &index, &text);

        *err = set_nonempty(&ev->message_id, str_get(c, "message_id"));
        if (ours && *err == SB_OK) {
            ev->cmd_id = strndup(pb, id_len);
            *err = ev->cmd_id ? SB_OK : SB_E_NOMEM;
        } else if (*err == SB_OK) {
            /* A postback we did not write (a template quick reply, another sender of the app):
             * the command, if any, is named by the message_metadata round trip (facts 11.2). */
            *err = metadata_parse(str_get(msg, "metadata"), &ev->cmd_id, NULL);
            text = pb;
        }
        rc |= json_object_set_new(pl, "kind", json_string("choice"));
        rc |= json_object_set_new(pl, "text", str_or_null(text));
        rc |= json_object_set_new(pl, "choice",
                                  json_pack("{s:o, s:o, s:o}", "text", str_or_null(text),
                                            "postback", str_or_null(pb), "index",
                                            ours ? json_integer(index) : json_null()));
        rc |= json_object_set_new(pl, "id", str_or_null(ev->cmd_id));
    } else if ((c = json_object_get(cm, "contact_info_message")) && json_is_object(c)) {
        /* No inbound contact card type exists in the models (facts 7.3); should one come as
         * the AppMessage's contact_info_message, it is passed on with the name as text. */
        rc |= json_object_set_new(pl, "kind", json_string("contact"));
        rc |= json_object_set_new(pl, "contact", json_deep_copy(c));
        rc |= json_object_set_new(pl, "text",
                                  str_or_null(str_get(json_object_get(c, "name"), "full_name")));
    } else if ((c = json_object_get(cm, "fallback_message")) && json_is_object(c)) {
        rc |= json_object_set_new(pl, "kind", json_string("fallback"));
        rc |= json_object_set_new(pl, "fallback",
                                  json_pack("{s:o, s:o}", "raw_message",
                                            str_or_null(str_get(c, "raw_message")), "reason",
                                            object_or_null(json_object_get(c, "reason"))));
    } else {
        /* product_response_message, channel_specific_message, whatever comes next: "raw". */
        rc |= json_object_set_new(pl, "kind", json_string("other"));
    }
    return rc;
}

static enum sb_err inbound(const struct sb_config *cfg, const json_t *root, const json_t *msg,
                           struct sb_event *ev)
{
    const json_t *ci = json_object_get(msg, "channel_identity");
    const char *reply_to;
    struct party pt;
    json_t *pl = ev->payload;
    enum sb_err err;
    int rc = 0;

    err = name_party(cfg, str_get(ci, "channel"), str_get(ci, "identity"), ev, &pt);
    if (err != SB_OK) {
        return err;
    }
    ev->topic = dupf("inbound/%s/%s", pt.channel_level, pt.level);
    if (!ev->topic) {
        return SB_E_NOMEM;
    }
    rc |= json_object_set_new(pl, "message_id", str_or_null(str_get(msg, "id")));
    rc |= json_object_set_new(pl, "from", str_or_null(ev->identity));
    if (pt.alias) {
        rc |= json_object_set_new(pl, "alias", json_string(pt.alias));
    }
    rc |= json_object_set_new(pl, "channel", str_or_null(ev->channel));
    /* DISPATCH mode sends "" for both (facts 7.1): passed on as it came. */
    rc |= json_object_set_new(pl, "contact_id", str_or_null(str_get(msg, "contact_id")));
    rc |= json_object_set_new(pl, "conversation_id", str_or_null(str_get(msg, "conversation_id")));
    rc |= inbound_content(msg, pl, ev, &err);
    reply_to = nonempty(str_get(
        json_object_get(json_object_get(msg, "contact_message"), "reply_to"), "message_id"));
    if (reply_to) {
        rc |= json_object_set_new(pl, "reply_to", json_string(reply_to));
    }
    rc |=
        json_object_set_new(pl, "time",
                            first_time(str_get(msg, "accept_time"), str_get(root, "accepted_time"),
                                       str_get(root, "event_time")));
    return rc ? SB_E_NOMEM : err;
}

/* ---- MESSAGE_DELIVERY ---- */

static enum sb_err delivery(const struct sb_config *cfg, const json_t *root, const json_t *rep,
                            struct sb_event *ev)
{
    const json_t *ci = json_object_get(rep, "channel_identity");
    char *metadata = NULL;
    struct party pt;
    json_t *pl = ev->payload;
    enum sb_err err;
    int rc = 0;

    err = name_party(cfg, str_get(ci, "channel"), str_get(ci, "identity"), ev, &pt);
    if (err != SB_OK) {
        return err;
    }
    ev->topic = dupf("delivery/%s/%s", pt.channel_level, pt.level);
    if (!ev->topic || set_nonempty(&ev->message_id, str_get(rep, "message_id")) != SB_OK ||
        set_nonempty(&ev->status, str_get(rep, "status")) != SB_OK) {
        return SB_E_NOMEM;
    }
    /* facts 11.2: the report's metadata is the send request's message_metadata. */
    err = metadata_parse(str_get(rep, "metadata"), &ev->cmd_id, &metadata);
    rc |= json_object_set_new(pl, "message_id", str_or_null(str_get(rep, "message_id")));
    rc |= json_object_set_new(pl, "id", str_or_null(ev->cmd_id));
    rc |= json_object_set_new(pl, "status", str_or_null(str_get(rep, "status")));
    rc |= json_object_set_new(pl, "reason", object_or_null(json_object_get(rep, "reason")));
    rc |= json_object_set_new(pl, "channel", str_or_null(ev->channel));
    rc |= json_object_set_new(pl, "to", str_or_null(ev->identity));
    if (pt.alias) {
        rc |= json_object_set_new(pl, "alias", json_string(pt.alias));
    }
    rc |= json_object_set_new(pl, "metadata", str_or_null(metadata));
    rc |= json_object_set_new(
        pl, "time", first_time(str_get(root, "event_time"), str_get(root, "accepted_time"), NULL));
    free(metadata);
    return rc ? SB_E_NOMEM : err;
}

/* ---- every other trigger ---- */

/* The channel and contact an OTHER event names, for the caller's contact tracking; the payload
 * stays PRODUCT.md's {"trigger", "time", "raw"}. A contact notification may list several
 * identities (facts 7.8): it names none rather than pick one. */
static enum sb_err other(const struct sb_config *cfg, enum trig t, const json_t *root,
                         const json_t *p, struct sb_event *ev)
{
    const json_t *ci = json_object_get(p, "channel_identity");
    const char *channel = str_get(ci, "channel");
    const char *identity = str_get(ci, "identity");
    struct party pt;
    enum sb_err err;
    int rc = 0;

    if (!nonempty(channel)) {
        channel = str_get(p, "channel"); /* opt-in/out, capability, unsupported, smart conv. */
    }
    if (!nonempty(identity)) {
        identity = str_get(p, "identity");
    }
    if (t == T_CHANNEL_EVENT) {
        channel = str_get(json_object_get(p, "channel_event"), "channel");
    } else if (t == T_CONVERSATION_START || t == T_CONVERSATION_STOP ||
               t == T_CONVERSATION_DELETE) {
        channel = str_get(json_object_get(p, "conversation"), "active_channel");
    }
    err = name_party(cfg, channel, identity, ev, &pt);
    if (err != SB_OK) {
        return err;
    }
    ev->topic = dupf("event/%s", ev->trigger);
    if (!ev->topic) {
        return SB_E_NOMEM;
    }
    for (char *c = ev->topic; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    rc |= json_object_set_new(ev->payload, "trigger", json_string(ev->trigger));
    rc |= json_object_set_new(
        ev->payload, "time",
        first_time(str_get(root, "event_time"), str_get(root, "accepted_time"), NULL));
    return rc ? SB_E_NOMEM : SB_OK;
}

/* ---- the API ---- */

enum sb_err sb_event_parse(const struct sb_config *cfg, const char *body, size_t len,
                           const char *body_sha256_hex, struct sb_event *out, char *why,
                           size_t why_len)
{
    json_t *root = NULL; /* new, released at out */
    const json_t *p = NULL;
    json_error_t jerr;
    enum trig t = T_UNKNOWN;
    enum sb_err err = SB_E_INVAL;

    if (why && why_len) {
        why[0] = '\0';
    }
    if (!out || !body_sha256_hex) {
        return SB_E_BUG;
    }
    memset(out, 0, sizeof(*out));
    if (!body || len == 0) {
        snprintf(why, why ? why_len : 0, "empty body");
        goto out;
    }
    /* Strict: duplicate keys, a NUL (also as \u0000) and invalid UTF-8 are all refused. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(why, why ? why_len : 0, "invalid JSON at line %d column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(why, why ? why_len : 0, "not a JSON object");
        goto out;
    }

    err = SB_E_NOMEM;
    for (size_t i = 0; i < T_UNKNOWN; i++) {
        if ((p = json_object_get(root, triggers[i].key))) {
            t = (enum trig)i;
            break;
        }
    }
    out->trigger = strdup(triggers[t].name);
    out->payload = json_object();
    if (!out->trigger || !out->payload) {
        goto out;
    }
    if (t == T_MESSAGE_INBOUND) {
        out->kind = SB_EVENT_INBOUND;
        err = inbound(cfg, root, p, out);
    } else if (t == T_MESSAGE_DELIVERY) {
        out->kind = SB_EVENT_DELIVERY;
        err = delivery(cfg, root, p, out);
    } else {
        /* MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION is a second, redacted copy of an inbound
         * message (facts 7.13): on P/inbound it would fire automations and the 24-hour window
         * twice, so it is an event like the rest. */
        out->kind = SB_EVENT_OTHER;
        err = other(cfg, t, root, p, out);
    }
    if (err != SB_OK) {
        goto out;
    }
    err = dedupe_key(t, p, out, body_sha256_hex);
    if (err != SB_OK) {
        goto out;
    }
    /* "raw" last, so that it follows the normalised fields when printed. */
    err = json_object_set(out->payload, "raw", root) ? SB_E_NOMEM : SB_OK;
out:
    if (err == SB_E_NOMEM) {
        snprintf(why, why ? why_len : 0, "out of memory");
    }
    if (err != SB_OK) {
        sb_event_clear(out);
    }
    json_decref(root);
    return err;
}

void sb_event_clear(struct sb_event *ev)
{
    if (!ev) {
        return;
    }
    free(ev->trigger);
    free(ev->topic);
    json_decref(ev->payload);
    free(ev->dedupe_key);
    free(ev->channel);
    free(ev->identity);
    free(ev->message_id);
    free(ev->status);
    free(ev->cmd_id);
    memset(ev, 0, sizeof(*ev));
}

int sb_delivery_rank(const char *status)
{
    static const struct {
        const char *status;
        int rank;
    } ranks[] = {
        {"QUEUED_ON_CHANNEL", 1}, {"DELIVERED", 2}, {"READ", 3}, {"FAILED", 3},
        {"SWITCHING_CHANNEL", 3},
    };

    for (size_t i = 0; status && i < COUNT(ranks); i++) {
        if (strcmp(status, ranks[i].status) == 0) {
            return ranks[i].rank;
        }
    }
    return 0;
}
