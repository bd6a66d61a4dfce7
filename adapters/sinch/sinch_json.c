/* Conversation API bodies: a validated struct sb_command to the messages:send request (facts
 * section 3, field for field; PRODUCT.md "Mapping to Sinch"), and Sinch's answers back: the
 * accepted answer (3.4) and the error object (4.1). The Sinch client calls these. Pure: no I/O,
 * so any thread may run them; the command is only read. */
#include "adapters/sinch_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL_MIN 3L            /* facts 3.1: Sinch's ttl range starts at 3 s */
#define TTL_MAX 315576000000L /* facts 3.1: and ends here */

/* Every helper below returns a new json_t, or NULL when jansson failed (out of memory). The
 * json_object_set_new() family and json_pack()'s "o" steal their value even when they fail
 * (jansson >= 2.12), so a failure half way leaks nothing; "O" takes a reference of its own. */

/* {"text": text} */
static json_t *text_object(const char *text)
{
    return json_pack("{s:s}", "text", text); /* new */
}

/* A template of the command (content or fallback_template) as a template_message: WhatsApp's
 * own channel_template when WhatsApp comes first, else Sinch's omni_template (facts 3.3, 10.4).
 * The command's template was checked by sb_command_parse(): id present, language in WhatsApp's
 * underscore form when WhatsApp comes first, params an object of strings. */
static json_t *template_message(json_t *tpl, bool whatsapp)
{
    const char *id = json_string_value(json_object_get(tpl, "id"));
    const char *language = json_string_value(json_object_get(tpl, "language"));
    const char *version = json_string_value(json_object_get(tpl, "version"));
    json_t *params = json_object_get(tpl, "params"); /* borrowed */
    json_t *ref = json_object();                     /* new; handed to msg below */
    json_t *msg = NULL;                              /* new; returned */
    int rc = ref ? 0 : -1;

    rc |= json_object_set_new(ref, "template_id", json_string(id));
    if (whatsapp) {
        if (language) {
            rc |= json_object_set_new(ref, "language_code", json_string(language));
        }
        /* json_object_set() takes its own reference: params stays the command's too. */
        rc |= params ? json_object_set(ref, "parameters", params)
                     : json_object_set_new(ref, "parameters", json_object());
        if (version) {
            rc |= json_object_set_new(ref, "version", json_string(version));
        }
        msg = json_pack("{s:{s:{s:O}}}", "template_message", "channel_template", "WHATSAPP", ref);
    } else {
        /* omni_template requires a version; Sinch accepts "latest" (facts 3.3). */
        rc |= json_object_set_new(ref, "version", json_string(version ? version : "latest"));
        if (language) {
            rc |= json_object_set_new(ref, "language_code", json_string(language));
        }
        rc |= params ? json_object_set(ref, "parameters", params)
                     : json_object_set_new(ref, "parameters", json_object());
        msg = json_pack("{s:{s:O}}", "template_message", "omni_template", ref);
    }
    json_decref(ref); /* "O" took its own reference */
    if (rc != 0) {
        json_decref(msg);
        return NULL;
    }
    return msg;
}

/* The postback of each option names the command, so a tap can be traced back (PRODUCT.md
 * "Choice taps"; facts 3.3: always set postback_data when you need to recognise the tap). */
static json_t *choice_message(const char *id, json_t *choice)
{
    json_t *options = json_object_get(choice, "options"); /* borrowed */
    json_t *choices = json_array();                       /* new; handed to the result */
    int rc = choices ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < json_array_size(options); i++) {
        const char *option = json_string_value(json_array_get(options, i));
        char *postback = sb_command_postback(id, i, option);
        rc = postback ? json_array_append_new(choices,
                                              json_pack("{s:{s:s}, s:s}", "text_message", "text",
                                                        option, "postback_data", postback))
                      : -1;
        free(postback);
    }
    if (rc != 0) {
        json_decref(choices);
        return NULL;
    }
    return json_pack("{s:{s:o, s:o}}", "choice_message", "text_message",
                     text_object(json_string_value(json_object_get(choice, "text"))), "choices",
                     choices); /* "o" steals both, also on failure */
}

static json_t *location_message(json_t *loc)
{
    const char *title = json_string_value(json_object_get(loc, "title"));
    const char *label = json_string_value(json_object_get(loc, "label"));
    /* title is required by Sinch (facts 3.3, 3.8); the command's is optional. */
    json_t *msg = json_pack("{s:{s:f, s:f}, s:s}", "coordinates", "latitude",
                            json_number_value(json_object_get(loc, "lat")), "longitude",
                            json_number_value(json_object_get(loc, "lon")), "title",
                            title ? title : "Location"); /* new; handed to the result */

    if (msg && label && json_object_set_new(msg, "label", json_string(label)) != 0) {
        json_decref(msg);
        return NULL;
    }
    return json_pack("{s:o}", "location_message", msg);
}

/* The AppMessage of the command: exactly one content field (facts 3.3). */
static json_t *app_message(const struct sb_command *cmd, bool whatsapp)
{
    json_t *c = cmd->content; /* borrowed */
    const char *caption;

    switch (cmd->kind) {
    case SB_CONTENT_TEXT:
        return json_pack("{s:o}", "text_message", text_object(json_string_value(c)));
    case SB_CONTENT_MEDIA:
        caption = json_string_value(json_object_get(c, "caption"));
        /* media_message has no caption; a card with the media and a description has one. */
        if (caption) {
            return json_pack("{s:{s:s, s:{s:O}}}", "card_message", "description", caption,
                             "media_message", "url", json_object_get(c, "url"));
        }
        return json_pack("{s:{s:O}}", "media_message", "url", json_object_get(c, "url"));
    case SB_CONTENT_TEMPLATE:
        return template_message(c, whatsapp);
    case SB_CONTENT_CHOICE:
        return choice_message(cmd->id, c);
    case SB_CONTENT_LOCATION:
        return location_message(c);
    case SB_CONTENT_MESSAGE:
        return json_incref(c); /* passed through as is: a new reference for the caller */
    }
    return NULL;
}

/* facts 3.2: a contact, or one identity per channel, in the order of the channels. Phone
 * identities are sent as digits without '+' (facts 10.3: Sinch writes them that way). */
static json_t *recipient(const struct sb_command *cmd)
{
    json_t *ids; /* new; handed to the result */
    int rc = 0;

    if (cmd->contact_id) {
        return json_pack("{s:s}", "contact_id", cmd->contact_id);
    }
    ids = json_array();
    if (!ids || !cmd->to) {
        json_decref(ids);
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(cmd->channels); i++) {
        rc |= json_array_append_new(ids, json_pack("{s:O, s:s}", "channel",
                                                   json_array_get(cmd->channels, i), "identity",
                                                   cmd->to[0] == '+' ? cmd->to + 1 : cmd->to));
    }
    if (rc != 0) {
        json_decref(ids);
        return NULL;
    }
    return json_pack("{s:{s:o}}", "identified_by", "channel_identities", ids);
}

/* message_metadata: the JSON string {"id"} or {"id", "metadata"}, compact, in that order.
 * bridge/command.c builds the same string to check Sinch's 1024-character limit. */
static json_t *message_metadata(const struct sb_command *cmd)
{
    json_t *wrap = cmd->metadata ? json_pack("{s:s, s:s}", "id", cmd->id, "metadata", cmd->metadata)
                                 : json_pack("{s:s}", "id", cmd->id); /* new */
    char *s = wrap ? json_dumps(wrap, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_t *str = s ? json_string(s) : NULL; /* new; returned */

    free(s);
    json_decref(wrap);
    return str;
}

enum sb_err sb_sinch_json_send(const struct sb_command *cmd, const char *app_id, long ttl_left,
                               bool use_fallback, char **body)
{
    json_t *root = NULL; /* new, released at out */
    json_t *message;     /* new, handed to root */
    bool whatsapp;
    char ttl[32];
    enum sb_err err = SB_E_INVAL;

    *body = NULL;
    /* A negative ttl_left means the command expired: the caller reports it, nothing is sent. */
    if (!cmd || !app_id || ttl_left < 0 || json_array_size(cmd->channels) == 0 ||
        (!cmd->to && !cmd->contact_id) || !cmd->content ||
        (use_fallback && !cmd->fallback_template)) {
        goto out;
    }
    err = SB_E_NOMEM;
    whatsapp = strcmp(json_string_value(json_array_get(cmd->channels, 0)), "WHATSAPP") == 0;
    message = use_fallback ? template_message(cmd->fallback_template, whatsapp)
                           : app_message(cmd, whatsapp);
    /* "o" steals message and the recipient, "O" takes a reference to the channels. */
    root = json_pack("{s:s, s:o, s:o, s:O, s:o, s:s}", "app_id", app_id, "recipient",
                     recipient(cmd), "message", message, "channel_priority_order", cmd->channels,
                     "message_metadata", message_metadata(cmd), "correlation_id", cmd->id);
    if (!root) {
        goto out;
    }
    if (ttl_left > 0) {
        /* Sinch takes "<n>s" with n from 3 to 315576000000 (facts 3.1). */
        long n = ttl_left < TTL_MIN ? TTL_MIN : ttl_left > TTL_MAX ? TTL_MAX : ttl_left;
        snprintf(ttl, sizeof(ttl), "%lds", n);
        if (json_object_set_new(root, "ttl", json_string(ttl)) != 0) {
            goto out;
        }
    }
    *body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (*body) {
        err = SB_OK;
    }
out:
    json_decref(root);
    return err;
}

enum sb_err sb_sinch_json_accepted(const char *body, size_t len, char **message_id,
                                   char **accepted_time)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL; /* new, released at out */
    const char *id = json_string_value(json_object_get(root, "message_id"));
    const char *at = json_string_value(json_object_get(root, "accepted_time"));
    enum sb_err err = SB_E_INVAL;

    *message_id = NULL;
    *accepted_time = NULL;
    /* Sinch queued the message once it answered 2xx with an id; a missing or odd accepted_time
     * must not turn that into a failure (the outbox would send it again), so it becomes "". */
    if (!id || id[0] == '\0') {
        goto out;
    }
    err = SB_E_NOMEM;
    *message_id = strdup(id);
    *accepted_time = strdup(at ? at : "");
    if (!*message_id || !*accepted_time) {
        free(*message_id);
        free(*accepted_time);
        *message_id = NULL;
        *accepted_time = NULL;
        goto out;
    }
    err = SB_OK;
out:
    json_decref(root);
    return err;
}

json_t *sb_sinch_json_error(const char *body, size_t len)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL; /* new, released below */
    json_t *error = json_object_get(root, "error");              /* borrowed from root */

    if (!json_is_object(error)) {
        error = NULL;
    }
    json_incref(error); /* a new reference for the caller, outliving root */
    json_decref(root);
    return error;
}
