/* Send commands: an MQTT payload of P/send or P/send/<recipient> parsed and checked against
 * PRODUCT.md "The send command" and "Details", so that nothing Sinch would refuse for a reason
 * we can see leaves the bridge. The router calls sb_command_parse() for every command it takes.
 * Pure (no I/O, no clock), so it runs on any thread; the config is only read. */
#include "bridge/command.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PRODUCT.md "Outcomes" codes this module decides. */
#define CODE_INVALID   "invalid_command"
#define CODE_RECIPIENT "invalid_recipient"
#define CODE_NOT_ALLOW "not_allowed"

#define MAX_CHANNELS          8            /* ours: a fallback list longer than this is a mistake */
#define MAX_CHANNEL_NAME      32           /* ours: Sinch's longest today is 13 (KAKAOTALKCHAT) */
#define MAX_CONTACT_ID        128          /* ours: Sinch's contact ids are 26-character ULIDs */
#define MAX_OPTIONS           10           /* facts 3.6: choices in a choice_message */
#define WA_MAX_TEXT           4096         /* facts 3.6: WhatsApp free-form text */
#define WA_MAX_BUTTONS        3            /* facts 3.6: WhatsApp reply buttons (Meta) */
#define WA_MAX_BUTTON_TITLE   20           /* facts 3.6: reply button title (Meta) */
#define MAX_MESSAGE_METADATA  1024         /* facts 3.1: message_metadata, characters */
#define MAX_DEDUPE_KEY        256          /* ours: the key is stored and indexed */
#define MAX_DEDUPE_WINDOW     31536000L    /* ours: one year */
#define DEFAULT_DEDUPE_WINDOW 3600L        /* PRODUCT.md "Defaults" */
#define MAX_TTL               315576000000 /* facts 3.1: Sinch's ttl range ends here */
#define EXCERPT_BYTES         48           /* user text quoted in an error message */

struct parse {
    const struct sb_config *cfg;  /* borrowed */
    struct sb_command *out;       /* borrowed: what we fill */
    struct sb_command_error *err; /* borrowed: filled on failure */
    bool whatsapp;                /* the first channel is WHATSAPP: Meta's limits apply */
};

/* The fields a command may carry; anything else is a typo and refused. */
static const char *const command_fields[] = {
    "id",       "to",         "contact_id",    "channel",           "channels", "text",
    "media",    "template",   "choice",        "location",          "message",  "ttl",
    "metadata", "dedupe_key", "dedupe_window", "fallback_template",
};
static const char *const content_fields[] = {"text",   "media",    "template",
                                             "choice", "location", "message"};
static const enum sb_content_kind content_kinds[] = {
    SB_CONTENT_TEXT,   SB_CONTENT_MEDIA,    SB_CONTENT_TEMPLATE,
    SB_CONTENT_CHOICE, SB_CONTENT_LOCATION, SB_CONTENT_MESSAGE,
};
/* facts 3.3: the content fields of an AppMessage, of which a message holds exactly one. */
static const char *const app_message_contents[] = {
    "text_message",     "media_message", "template_message",
    "choice_message",   "card_message",  "carousel_message",
    "location_message", "list_message",  "contact_info_message",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

bool sb_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned int c = p[i];
        size_t more;
        uint32_t cp;
        uint32_t min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false; /* a stray continuation byte, C0/C1 (always overlong), F5..FF */
        }
        if (len - i - 1 < more) {
            return false; /* truncated sequence */
        }
        for (size_t k = 1; k <= more; k++) {
            unsigned int b = p[i + k];
            if ((b & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (b & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false; /* overlong, past Unicode, or a UTF-16 surrogate */
        }
        i += more + 1;
    }
    return true;
}

/* Characters (code points) of valid UTF-8: what Sinch and Meta count in their limits. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

/* The length of the longest prefix of s (at most max bytes) that ends on a character boundary,
 * so a cut never leaves half a character in an error message (it is published as JSON). */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

/* Writes into buf a short quote of user input s for an error message. Returns buf. */
static const char *excerpt(const char *s, char *buf, size_t buf_len)
{
    size_t len = strlen(s);
    size_t n = utf8_cut(s, len, buf_len - 4);

    snprintf(buf, buf_len, "%.*s%s", (int)n, s, n < len ? "..." : "");
    return buf;
}

static enum sb_err fail(struct parse *p, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the refusal in p->err. Returns SB_E_INVAL so callers can `return fail(...)`. */
static enum sb_err fail(struct parse *p, const char *code, const char *fmt, ...)
{
    va_list ap;
    size_t len;

    p->err->code = code;
    va_start(ap, fmt);
    vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
    va_end(ap);
    /* vsnprintf may have cut the last character in two; the message is published as JSON. */
    len = strlen(p->err->message);
    while (len > 0 && !sb_utf8_valid(p->err->message, len)) {
        p->err->message[--len] = '\0';
    }
    return SB_E_INVAL;
}

static enum sb_err nomem(struct parse *p)
{
    p->err->code = NULL; /* not a refusal: the caller sees SB_E_NOMEM */
    snprintf(p->err->message, sizeof(p->err->message), "out of memory");
    return SB_E_NOMEM;
}

static enum sb_err dup_into(struct parse *p, char **dst, const char *s)
{
    *dst = strdup(s);
    return *dst ? SB_OK : nomem(p);
}

/* Refuses a field of obj that is not in allowed[]: a typo must not be silently ignored.
 * `where` is the object's path ("" for the command itself, else "media." and the like). */
static enum sb_err check_fields(struct parse *p, json_t *obj, const char *where,
                                const char *const *allowed, size_t n_allowed)
{
    char buf[EXCERPT_BYTES];

    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t i = 0;
        while (i < n_allowed && strcmp(key, allowed[i]) != 0) {
            i++;
        }
        if (i == n_allowed) {
            return fail(p, CODE_INVALID, "%s%s: unknown field", where,
                        excerpt(key, buf, sizeof(buf)));
        }
    }
    return SB_OK;
}

/* Reads obj[key] as a string. Absent: *out is NULL and it is an error only when `required`.
 * Present: it must be a string, non-empty unless `may_be_empty`, and at most max_chars
 * characters (0: no limit). `path` names the field in the error ("media.url"). */
static enum sb_err get_string(struct parse *p, json_t *obj, const char *key, const char *path,
                              bool required, bool may_be_empty, size_t max_chars, const char **out)
{
    json_t *v = json_object_get(obj, key); /* borrowed */

    *out = NULL;
    if (!v) {
        return required ? fail(p, CODE_INVALID, "%s: is required", path) : SB_OK;
    }
    if (!json_is_string(v)) {
        return fail(p, CODE_INVALID, "%s: must be a string", path);
    }
    if (!may_be_empty && json_string_length(v) == 0) {
        return fail(p, CODE_INVALID, "%s: must not be empty%s", path,
                    required ? "" : " (leave it out instead)");
    }
    if (max_chars > 0 && utf8_chars(json_string_value(v), json_string_length(v)) > max_chars) {
        return fail(p, CODE_INVALID, "%s: at most %zu characters", path, max_chars);
    }
    *out = json_string_value(v);
    return SB_OK;
}

static bool id_valid(const char *s, size_t len)
{
    if (len == 0 || len > SB_COMMAND_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* The command's id, else gen_id; set first, so every later refusal can name the command. */
static enum sb_err parse_id(struct parse *p, json_t *cmd, const char *gen_id)
{
    json_t *v = json_object_get(cmd, "id"); /* borrowed */

    snprintf(p->out->id, sizeof(p->out->id), "%s", gen_id ? gen_id : "");
    if (!v) {
        return SB_OK;
    }
    /* A bad id is refused under the generated one, so the error still has a name. */
    if (!json_is_string(v) || !id_valid(json_string_value(v), json_string_length(v))) {
        return fail(p, CODE_INVALID, "id: must be 1 to %d characters of A-Z a-z 0-9 . _ : -",
                    SB_COMMAND_ID_MAX);
    }
    snprintf(p->out->id, sizeof(p->out->id), "%s", json_string_value(v));
    return SB_OK;
}

/* An E.164 number ('+' optional) or a contact alias into out->to (and out->alias).
 * `what` names where it came from in the error ("to", "the topic's recipient"). */
static enum sb_err resolve_recipient(struct parse *p, const char *s, const char *what)
{
    char e164[24];
    const char *number;
    enum sb_err err;

    if (sb_e164_normalise(s, e164, sizeof(e164))) {
        return dup_into(p, &p->out->to, e164);
    }
    number = sb_config_number_of(p->cfg, s); /* borrowed from cfg */
    if (!number) {
        char buf[EXCERPT_BYTES];
        return fail(p, CODE_RECIPIENT,
                    "%s: \"%s\" is neither an E.164 number (8 to 15 digits, '+' optional) nor a "
                    "contact alias",
                    what, excerpt(s, buf, sizeof(buf)));
    }
    err = dup_into(p, &p->out->to, number);
    if (err == SB_OK) {
        err = dup_into(p, &p->out->alias, s);
    }
    return err;
}

/* to / contact_id of a command on P/send, or the topic's recipient on P/send/<recipient>;
 * then BRIDGE_ALLOW_TO. */
static enum sb_err parse_recipient(struct parse *p, json_t *cmd, const char *topic_recipient)
{
    json_t *to = cmd ? json_object_get(cmd, "to") : NULL;              /* borrowed */
    json_t *contact = cmd ? json_object_get(cmd, "contact_id") : NULL; /* borrowed */
    enum sb_err err;

    if (topic_recipient) {
        /* PRODUCT.md "Payload parsing": the topic names the recipient, the body must not. */
        if (to) {
            return fail(p, CODE_INVALID,
                        "to: not allowed on a send/<recipient> topic, which names the recipient");
        }
        if (contact) {
            return fail(p, CODE_INVALID,
                        "contact_id: not allowed on a send/<recipient> topic, "
                        "which names the recipient");
        }
        err = resolve_recipient(p, topic_recipient, "the topic's recipient");
    } else if (to && contact) {
        return fail(p, CODE_INVALID, "to, contact_id: give one of them, not both");
    } else if (to) {
        if (!json_is_string(to)) {
            return fail(p, CODE_INVALID, "to: must be a string");
        }
        err = resolve_recipient(p, json_string_value(to), "to");
    } else if (contact) {
        if (!json_is_string(contact)) {
            return fail(p, CODE_INVALID, "contact_id: must be a string");
        }
        if (json_string_length(contact) == 0 || json_string_length(contact) > MAX_CONTACT_ID) {
            return fail(p, CODE_RECIPIENT, "contact_id: must be 1 to %d characters",
                        MAX_CONTACT_ID);
        }
        /* A contact's number is known only to Sinch: BRIDGE_ALLOW_TO cannot apply. */
        return dup_into(p, &p->out->contact_id, json_string_value(contact));
    } else {
        return fail(p, CODE_INVALID, "to or contact_id is required");
    }
    if (err != SB_OK) {
        return err;
    }
    if (!sb_config_allowed(p->cfg, p->out->to)) {
        return fail(p, CODE_NOT_ALLOW, "to: %s is not in BRIDGE_ALLOW_TO", p->out->to);
    }
    return SB_OK;
}

/* One channel name: [A-Za-z_]+, upper-cased into buf. */
static enum sb_err channel_name(struct parse *p, json_t *v, const char *path, char *buf,
                                size_t buf_len)
{
    const char *s;
    size_t len;

    if (!json_is_string(v)) {
        return fail(p, CODE_INVALID, "%s: must be a string", path);
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 || len > MAX_CHANNEL_NAME || len >= buf_len) {
        return fail(p, CODE_INVALID, "%s: must be a channel name of 1 to %d letters", path,
                    MAX_CHANNEL_NAME);
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        } else if (!((c >= 'A' && c <= 'Z') || c == '_')) {
            return fail(p, CODE_INVALID, "%s: a channel name is letters and '_' (WHATSAPP, SMS)",
                        path);
        }
        buf[i] = c;
    }
    buf[len] = '\0';
    return SB_OK;
}

/* channel, or channels (an ordered fallback list), or SINCH_DEFAULT_CHANNEL. */
static enum sb_err parse_channels(struct parse *p, json_t *cmd)
{
    json_t *one = cmd ? json_object_get(cmd, "channel") : NULL;   /* borrowed */
    json_t *list = cmd ? json_object_get(cmd, "channels") : NULL; /* borrowed */
    json_t *channels = json_array(); /* new; handed to out->channels below */
    char name[MAX_CHANNEL_NAME + 1];
    char path[48];
    enum sb_err err = SB_OK;

    if (!channels) {
        return nomem(p);
    }
    p->out->channels = channels;
    if (one && list) {
        return fail(p, CODE_INVALID, "channel, channels: give one of them, not both");
    }
    if (one) {
        err = channel_name(p, one, "channel", name, sizeof(name));
        if (err == SB_OK && json_array_append_new(channels, json_string(name)) != 0) {
            err = nomem(p);
        }
    } else if (list) {
        size_t n = json_is_array(list) ? json_array_size(list) : 0;
        if (n == 0 || n > MAX_CHANNELS) {
            return fail(p, CODE_INVALID, "channels: must be a list of 1 to %d channel names",
                        MAX_CHANNELS);
        }
        for (size_t i = 0; i < n && err == SB_OK; i++) {
            snprintf(path, sizeof(path), "channels[%zu]", i);
            err = channel_name(p, json_array_get(list, i), path, name, sizeof(name));
            for (size_t k = 0; err == SB_OK && k < i; k++) {
                if (strcmp(json_string_value(json_array_get(channels, k)), name) == 0) {
                    err = fail(p, CODE_INVALID, "%s: %s is listed twice", path, name);
                }
            }
            if (err == SB_OK && json_array_append_new(channels, json_string(name)) != 0) {
                err = nomem(p);
            }
        }
    } else {
        const char *def = p->cfg->default_channel ? p->cfg->default_channel : "WHATSAPP";
        if (json_array_append_new(channels, json_string(def)) != 0) {
            err = nomem(p);
        }
    }
    if (err == SB_OK) {
        p->whatsapp = strcmp(json_string_value(json_array_get(channels, 0)), "WHATSAPP") == 0;
    }
    return err;
}

static enum sb_err check_text(struct parse *p, json_t *v, const char *path)
{
    if (!json_is_string(v)) {
        return fail(p, CODE_INVALID, "%s: must be a string", path);
    }
    if (json_string_length(v) == 0) {
        return fail(p, CODE_INVALID, "%s: must not be empty", path);
    }
    if (p->whatsapp && utf8_chars(json_string_value(v), json_string_length(v)) > WA_MAX_TEXT) {
        return fail(p, CODE_INVALID, "%s: at most %d characters on WhatsApp", path, WA_MAX_TEXT);
    }
    return SB_OK;
}

static enum sb_err check_media(struct parse *p, json_t *v)
{
    static const char *const fields[] = {"url", "caption"};
    const char *url;
    const char *caption;
    enum sb_err err;

    if (!json_is_object(v)) {
        return fail(p, CODE_INVALID, "media: must be an object {\"url\", \"caption\"}");
    }
    err = check_fields(p, v, "media.", fields, COUNT(fields));
    if (err == SB_OK) {
        err = get_string(p, v, "url", "media.url", true, false, 0, &url);
    }
    if (err == SB_OK && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        err = fail(p, CODE_INVALID, "media.url: must be an http:// or https:// URL");
    }
    if (err == SB_OK && strcspn(url, " \t\r\n") != strlen(url)) {
        err = fail(p, CODE_INVALID, "media.url: must not contain white space");
    }
    if (err == SB_OK) {
        err = get_string(p, v, "caption", "media.caption", false, false, 0, &caption);
    }
    return err;
}

/* WhatsApp takes a template only in the language it was approved in, written with an
 * underscore (facts 3.3, 10.4): "en", "en_US", "pt_BR"; also "fil" and the like. */
static bool whatsapp_language(const char *s)
{
    size_t n = 0;

    while (s[n] >= 'a' && s[n] <= 'z') {
        n++;
    }
    if (n < 2 || n > 3) {
        return false;
    }
    if (s[n] == '\0') {
        return true;
    }
    return s[n] == '_' && s[n + 1] >= 'A' && s[n + 1] <= 'Z' && s[n + 2] >= 'A' &&
           s[n + 2] <= 'Z' && s[n + 3] == '\0';
}

/* template and fallback_template: {"id", "language"?, "version"?, "params"?}. */
static enum sb_err check_template(struct parse *p, json_t *v, const char *name)
{
    static const char *const fields[] = {"id", "language", "version", "params"};
    char where[32];
    char path[48];
    char buf[EXCERPT_BYTES];
    const char *s;
    json_t *params; /* borrowed */
    enum sb_err err;

    if (!json_is_object(v)) {
        return fail(p, CODE_INVALID,
                    "%s: must be an object {\"id\", \"language\", \"version\", "
                    "\"params\"}",
                    name);
    }
    snprintf(where, sizeof(where), "%s.", name);
    err = check_fields(p, v, where, fields, COUNT(fields));
    if (err != SB_OK) {
        return err;
    }
    snprintf(path, sizeof(path), "%s.id", name);
    err = get_string(p, v, "id", path, true, false, 0, &s);
    if (err != SB_OK) {
        return err;
    }
    snprintf(path, sizeof(path), "%s.language", name);
    err = get_string(p, v, "language", path, p->whatsapp, false, 0, &s);
    if (err != SB_OK) {
        return err;
    }
    if (s && p->whatsapp && !whatsapp_language(s)) { /* s is required for WhatsApp */
        if (strchr(s, '-')) {
            return fail(p, CODE_INVALID,
                        "%s: WhatsApp wants the underscore form: use en_US, not en-US", path);
        }
        return fail(p, CODE_INVALID,
                    "%s: \"%s\" is not a WhatsApp language code such as en or en_US", path,
                    excerpt(s, buf, sizeof(buf)));
    }
    snprintf(path, sizeof(path), "%s.version", name);
    err = get_string(p, v, "version", path, false, false, 0, &s);
    if (err != SB_OK) {
        return err;
    }
    params = json_object_get(v, "params");
    if (params) {
        if (!json_is_object(params)) {
            return fail(p, CODE_INVALID, "%s.params: must be an object of strings", name);
        }
        for (void *it = json_object_iter(params); it; it = json_object_iter_next(params, it)) {
            /* "" is fine: a quick-reply payload must be present even when empty (10.4). */
            if (!json_is_string(json_object_iter_value(it))) {
                return fail(p, CODE_INVALID, "%s.params.%s: must be a string", name,
                            excerpt(json_object_iter_key(it), buf, sizeof(buf)));
            }
        }
    }
    return SB_OK;
}

static enum sb_err check_choice(struct parse *p, json_t *v)
{
    static const char *const fields[] = {"text", "options"};
    json_t *options; /* borrowed */
    size_t n;
    size_t max = p->whatsapp ? WA_MAX_BUTTONS : MAX_OPTIONS;
    char path[48];
    enum sb_err err;

    if (!json_is_object(v)) {
        return fail(p, CODE_INVALID, "choice: must be an object {\"text\", \"options\"}");
    }
    err = check_fields(p, v, "choice.", fields, COUNT(fields));
    if (err != SB_OK) {
        return err;
    }
    if (!json_object_get(v, "text")) {
        return fail(p, CODE_INVALID, "choice.text: is required");
    }
    err = check_text(p, json_object_get(v, "text"), "choice.text");
    if (err != SB_OK) {
        return err;
    }
    options = json_object_get(v, "options");
    if (!options) {
        return fail(p, CODE_INVALID, "choice.options: is required");
    }
    if (!json_is_array(options)) {
        return fail(p, CODE_INVALID, "choice.options: must be a list of strings");
    }
    n = json_array_size(options);
    if (n == 0 || n > max) {
        return fail(p, CODE_INVALID, "choice.options: must have 1 to %zu options%s", max,
                    p->whatsapp ? " on WhatsApp (reply buttons)" : "");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(options, i); /* borrowed */
        snprintf(path, sizeof(path), "choice.options[%zu]", i);
        if (!json_is_string(o)) {
            return fail(p, CODE_INVALID, "%s: must be a string", path);
        }
        if (json_string_length(o) == 0) {
            return fail(p, CODE_INVALID, "%s: must not be empty", path);
        }
        if (p->whatsapp &&
            utf8_chars(json_string_value(o), json_string_length(o)) > WA_MAX_BUTTON_TITLE) {
            return fail(p, CODE_INVALID, "%s: at most %d characters on WhatsApp", path,
                        WA_MAX_BUTTON_TITLE);
        }
    }
    return SB_OK;
}

static enum sb_err check_coordinate(struct parse *p, json_t *v, const char *path, double limit)
{
    if (!v) {
        return fail(p, CODE_INVALID, "%s: is required", path);
    }
    if (!json_is_number(v) || json_number_value(v) < -limit || json_number_value(v) > limit) {
        return fail(p, CODE_INVALID, "%s: must be a number from %g to %g", path, -limit, limit);
    }
    return SB_OK;
}

static enum sb_err check_location(struct parse *p, json_t *v)
{
    static const char *const fields[] = {"lat", "lon", "title", "label"};
    const char *s;
    enum sb_err err;

    if (!json_is_object(v)) {
        return fail(p, CODE_INVALID,
                    "location: must be an object {\"lat\", \"lon\", \"title\", "
                    "\"label\"}");
    }
    err = check_fields(p, v, "location.", fields, COUNT(fields));
    if (err == SB_OK) {
        err = check_coordinate(p, json_object_get(v, "lat"), "location.lat", 90.0);
    }
    if (err == SB_OK) {
        err = check_coordinate(p, json_object_get(v, "lon"), "location.lon", 180.0);
    }
    if (err == SB_OK) {
        err = get_string(p, v, "title", "location.title", false, false, 0, &s);
    }
    if (err == SB_OK) {
        err = get_string(p, v, "label", "location.label", false, false, 0, &s);
    }
    return err;
}

/* A raw AppMessage goes to Sinch as is; only its one content field is checked here, and other
 * AppMessage fields (explicit_channel_message, agent...) are Sinch's to judge. */
static enum sb_err check_message(struct parse *p, json_t *v)
{
    const char *found = NULL;

    if (!json_is_object(v)) {
        return fail(p, CODE_INVALID, "message: must be a Conversation API message object");
    }
    for (size_t i = 0; i < COUNT(app_message_contents); i++) {
        json_t *c = json_object_get(v, app_message_contents[i]); /* borrowed */
        if (!c) {
            continue;
        }
        if (found) {
            return fail(p, CODE_INVALID, "message: has both %s and %s; give exactly one", found,
                        app_message_contents[i]);
        }
        if (!json_is_object(c)) {
            return fail(p, CODE_INVALID, "message.%s: must be an object", app_message_contents[i]);
        }
        found = app_message_contents[i];
    }
    if (!found) {
        return fail(p, CODE_INVALID,
                    "message: needs one of text_message, media_message, template_message, "
                    "choice_message, card_message, carousel_message, location_message, "
                    "list_message, contact_info_message");
    }
    return SB_OK;
}

/* Exactly one of text, media, template, choice, location, message; checked, then kept. */
static enum sb_err parse_content(struct parse *p, json_t *cmd)
{
    json_t *content = NULL; /* borrowed */
    size_t which = 0;
    char names[96] = "";
    size_t n_found = 0;
    enum sb_err err;

    for (size_t i = 0; i < COUNT(content_fields); i++) {
        json_t *v = json_object_get(cmd, content_fields[i]); /* borrowed */
        if (v) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof(names) - used, "%s%s", n_found ? ", " : "",
                     content_fields[i]);
            content = v;
            which = i;
            n_found++;
        }
    }
    if (n_found == 0) {
        return fail(p, CODE_INVALID,
                    "one of text, media, template, choice, location, message is required");
    }
    if (n_found > 1) {
        return fail(p, CODE_INVALID,
                    "%s: give exactly one of text, media, template, choice, location, message",
                    names);
    }
    switch (content_kinds[which]) {
    case SB_CONTENT_TEXT:
        err = check_text(p, content, "text");
        break;
    case SB_CONTENT_MEDIA:
        err = check_media(p, content);
        break;
    case SB_CONTENT_TEMPLATE:
        err = check_template(p, content, "template");
        break;
    case SB_CONTENT_CHOICE:
        err = check_choice(p, content);
        break;
    case SB_CONTENT_LOCATION:
        err = check_location(p, content);
        break;
    case SB_CONTENT_MESSAGE:
    default:
        err = check_message(p, content);
        break;
    }
    if (err != SB_OK) {
        return err;
    }
    p->out->kind = content_kinds[which];
    p->out->content = json_incref(content); /* new reference, owned by out */
    return SB_OK;
}

/* Reads obj[key] as a JSON integer in [min, max] into *out; absent leaves *out alone. */
static enum sb_err get_integer(struct parse *p, json_t *obj, const char *key, json_int_t min,
                               json_int_t max, long *out)
{
    json_t *v = json_object_get(obj, key); /* borrowed */

    if (!v) {
        return SB_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        return fail(p, CODE_INVALID,
                    "%s: must be a whole number of seconds from %" JSON_INTEGER_FORMAT
                    " to %" JSON_INTEGER_FORMAT,
                    key, min, max);
    }
    *out = (long)json_integer_value(v);
    return SB_OK;
}

/* message_metadata is the JSON string {"id": ..., "metadata": ...} (PRODUCT.md "Mapping to
 * Sinch"); Sinch takes at most 1024 characters of it (facts 3.1). This builds it exactly as
 * adapters/sinch/sinch_json.c does, so what passes here fits there. */
static enum sb_err check_metadata(struct parse *p, const char *metadata)
{
    json_t *wrap = json_pack("{s:s, s:s}", "id", p->out->id, "metadata", metadata); /* new */
    char *s = wrap ? json_dumps(wrap, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    enum sb_err err = SB_OK;

    if (!s) {
        err = nomem(p);
    } else if (utf8_chars(s, strlen(s)) > MAX_MESSAGE_METADATA) {
        err = fail(p, CODE_INVALID,
                   "metadata: too long; with the id it must fit Sinch's %d characters of "
                   "message_metadata",
                   MAX_MESSAGE_METADATA);
    }
    free(s);
    json_decref(wrap);
    return err;
}

/* ttl, metadata, dedupe_key, dedupe_window, fallback_template. */
static enum sb_err parse_options(struct parse *p, json_t *cmd)
{
    json_t *fallback = json_object_get(cmd, "fallback_template"); /* borrowed */
    const char *s;
    enum sb_err err;

    err = get_integer(p, cmd, "ttl", 1, MAX_TTL, &p->out->ttl);
    if (err != SB_OK) {
        return err;
    }
    err = get_string(p, cmd, "metadata", "metadata", false, true, 0, &s);
    if (err == SB_OK && s) {
        err = check_metadata(p, s);
        if (err == SB_OK) {
            err = dup_into(p, &p->out->metadata, s);
        }
    }
    if (err != SB_OK) {
        return err;
    }
    err = get_string(p, cmd, "dedupe_key", "dedupe_key", false, false, MAX_DEDUPE_KEY, &s);
    if (err == SB_OK && s) {
        err = dup_into(p, &p->out->dedupe_key, s);
    }
    if (err != SB_OK) {
        return err;
    }
    if (json_object_get(cmd, "dedupe_window") && !p->out->dedupe_key) {
        return fail(p, CODE_INVALID, "dedupe_window: needs a dedupe_key");
    }
    if (p->out->dedupe_key) {
        p->out->dedupe_window = DEFAULT_DEDUPE_WINDOW;
    }
    err = get_integer(p, cmd, "dedupe_window", 1, MAX_DEDUPE_WINDOW, &p->out->dedupe_window);
    if (err != SB_OK) {
        return err;
    }
    if (fallback) {
        err = check_template(p, fallback, "fallback_template");
        if (err != SB_OK) {
            return err;
        }
        p->out->fallback_template = json_incref(fallback); /* new reference, owned by out */
    }
    return SB_OK;
}

/* The payload of P/send/<recipient> that is not a JSON object: its bytes are the text. */
static enum sb_err parse_plain_text(struct parse *p, const char *recipient, const char *payload,
                                    size_t len, const char *gen_id)
{
    json_t *text; /* new; handed to out->content */
    enum sb_err err;

    snprintf(p->out->id, sizeof(p->out->id), "%s", gen_id ? gen_id : "");
    err = parse_recipient(p, NULL, recipient);
    if (err == SB_OK) {
        err = parse_channels(p, NULL);
    }
    if (err != SB_OK) {
        return err;
    }
    text = json_stringn(payload, len);
    if (!text) {
        return nomem(p); /* the payload was checked to be UTF-8 without NUL */
    }
    p->out->kind = SB_CONTENT_TEXT;
    p->out->content = text;
    return check_text(p, text, "text");
}

/* Whether jansson refused a payload that is a JSON object in form but breaks one of its rules
 * or ours: a duplicate key, \u0000, a number out of range, nesting too deep. On
 * P/send/<recipient> such a payload is a bad command, not a text that happens to look like one. */
static bool refused_object(const char *payload, size_t len, const json_error_t *jerr)
{
    size_t i = 0;

    while (i < len &&
           (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\r' || payload[i] == '\n')) {
        i++;
    }
    if (i == len || payload[i] != '{') {
        return false;
    }
    switch (json_error_code(jerr)) {
    case json_error_duplicate_key:
    case json_error_null_character:
    case json_error_null_byte_in_key:
    case json_error_numeric_overflow:
    case json_error_stack_overflow:
        return true;
    default:
        return false;
    }
}

enum sb_err sb_command_parse(const struct sb_config *cfg, const char *recipient,
                             const char *payload, size_t len, const char *gen_id,
                             struct sb_command *out, struct sb_command_error *err)
{
    struct parse p = {.cfg = cfg, .out = out, .err = err, .whatsapp = false};
    json_error_t jerr;
    json_t *cmd = NULL; /* new, released at out */
    enum sb_err rc;

    memset(out, 0, sizeof(*out));
    err->code = NULL;
    err->message[0] = '\0';
    if (!payload) {
        payload = ""; /* an MQTT message may be empty */
        len = 0;
    }

    /* Until the payload is known to be a command, out->id stays "" ("id": null on P/error). */
    if (len > SB_COMMAND_MAX_BYTES) {
        return fail(&p, CODE_INVALID, "payload: %zu bytes, more than the %zu allowed", len,
                    SB_COMMAND_MAX_BYTES);
    }
    if (len > 0 && memchr(payload, '\0', len)) {
        return fail(&p, CODE_INVALID, "payload: contains a NUL byte");
    }
    if (!sb_utf8_valid(payload, len)) {
        return fail(&p, CODE_INVALID, "payload: not valid UTF-8");
    }
    /* Duplicate keys are refused: which of two "to" would we believe? */
    cmd = json_loadb(payload, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!cmd && json_error_code(&jerr) == json_error_out_of_memory) {
        return nomem(&p);
    }
    if (!cmd || !json_is_object(cmd)) {
        if (recipient && !(!cmd && refused_object(payload, len, &jerr))) {
            /* PRODUCT.md "Payload parsing": anything else on P/send/<recipient>, `42` and
             * `{oops` included, is the text, byte for byte. */
            json_decref(cmd);
            return parse_plain_text(&p, recipient, payload, len, gen_id);
        }
        if (cmd) {
            rc = fail(&p, CODE_INVALID, "payload: must be a JSON object (a send command)");
        } else {
            rc = fail(&p, CODE_INVALID, "payload: bad JSON: %s at line %d column %d", jerr.text,
                      jerr.line, jerr.column);
        }
        goto out;
    }

    rc = parse_id(&p, cmd, gen_id);
    if (rc == SB_OK) {
        rc = check_fields(&p, cmd, "", command_fields, COUNT(command_fields));
    }
    if (rc == SB_OK) {
        rc = parse_recipient(&p, cmd, recipient);
    }
    if (rc == SB_OK) {
        rc = parse_channels(&p, cmd);
    }
    if (rc == SB_OK) {
        rc = parse_content(&p, cmd);
    }
    if (rc == SB_OK) {
        rc = parse_options(&p, cmd);
    }
out:
    json_decref(cmd);
    return rc;
}

void sb_command_clear(struct sb_command *cmd)
{
    if (!cmd) {
        return;
    }
    free(cmd->to);
    free(cmd->contact_id);
    free(cmd->alias);
    json_decref(cmd->channels);
    json_decref(cmd->content);
    json_decref(cmd->fallback_template);
    free(cmd->metadata);
    free(cmd->dedupe_key);
    memset(cmd, 0, sizeof(*cmd));
}

char *sb_command_postback(const char *id, size_t index, const char *option)
{
    int n = snprintf(NULL, 0, "%s|%zu|%s", id, index, option);
    char *s;

    if (n < 0) {
        return NULL;
    }
    s = malloc((size_t)n + 1);
    if (s) {
        snprintf(s, (size_t)n + 1, "%s|%zu|%s", id, index, option);
    }
    return s;
}
