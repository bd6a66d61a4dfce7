/* libFuzzer target: a send command as the outbox admits it (bridge/outbox.c, admit()). The
 * first byte picks the topic and the configuration, the rest is the MQTT payload:
 *   bits 0-1: 0 P/send, 1 P/send/15551234567, 2 P/send/mom, 3 P/send/<the payload's first
 *             line> (the rest is then the payload);
 *   bit 2:    SMS as the default channel and no allow list, instead of WHATSAPP and one.
 * The topic goes through the topic router, the payload through sb_command_parse().
 * Oracles, beyond "no crash, no leak, no undefined behaviour":
 *   - a refusal carries one of PRODUCT.md's codes and a non-empty UTF-8 message, and its
 *     P/error outcome can be built (it is JSON: invalid UTF-8 would make it NULL);
 *   - an accepted command has exactly one recipient, in E.164 and inside BRIDGE_ALLOW_TO, 1 to 8
 *     upper-case channels, a content, a valid id, and a P/sent outcome that can be built;
 *   - its messages:send body can be built, and the strict simulator's validator
 *     (tests/sim/sim_validate.c) accepts it: command.c promises that nothing Sinch would refuse
 *     for a reason we can see leaves the bridge. Raw "message" commands are left out (their
 *     content is Sinch's to judge, by design), and so are channels Sinch does not know. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/sinch_json.h"
#include "bridge/command.h"
#include "bridge/outbox.h"
#include "bridge/outcome.h"
#include "fuzz.h"
#include "sim_validate.h"

#define GEN_ID   "fuzz-gen-0001"
#define MAX_CHAN 8 /* command.c's MAX_CHANNELS */

static struct sb_config *cfg_wa;  /* WHATSAPP by default, with an allow list */
static struct sb_config *cfg_sms; /* SMS by default, no allow list */

static void cleanup(void)
{
    sb_config_free(cfg_wa);
    sb_config_free(cfg_sms);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    cfg_wa = fuzz_config("WHATSAPP", true);
    cfg_sms = fuzz_config("SMS", false);
    atexit(cleanup);
    return 0;
}

static bool id_chars(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-");
    return n <= SB_COMMAND_ID_MAX && s[n] == '\0';
}

static void check_refused(const struct sb_command *cmd, const struct sb_command_error *err,
                          const char *topic, const char *payload, size_t len)
{
    struct sb_outcome_error e = {
        .id = cmd->id[0] ? cmd->id : NULL,
        .to = cmd->to,
        .contact_id = cmd->contact_id,
        .alias = cmd->alias,
        .code = err->code,
        .message = err->message,
        .topic = topic,
        .payload = payload,
        .payload_len = len,
    };
    char *json;

    FUZZ_CHECK(err->code && (strcmp(err->code, "invalid_command") == 0 ||
                             strcmp(err->code, "invalid_recipient") == 0 ||
                             strcmp(err->code, "not_allowed") == 0),
               "code %s", err->code ? err->code : "(null)");
    FUZZ_CHECK(err->message[0] != '\0', "%s without a message", err->code);
    FUZZ_CHECK(sb_utf8_valid(err->message, strlen(err->message)), "message not UTF-8: %s",
               err->message);
    json = sb_outcome_error_json(&e);
    FUZZ_CHECK(json != NULL, "the P/error outcome of \"%s\" cannot be built", err->message);
    free(json);
}

/* The messages:send body of cmd (with its fallback_template instead when `fallback`), checked by
 * the simulator's validator when every channel is one Sinch knows. */
static void check_request(const struct sb_command *cmd, bool fallback)
{
    const char *channels[MAX_CHAN];
    size_t n = json_array_size(cmd->channels);
    struct sim_app app = {.app_id = FUZZ_APP_ID, .channels = channels, .n_channels = n};
    struct sim_verdict v;
    bool known = true;
    char *body = NULL;

    FUZZ_CHECK(sb_sinch_json_send(cmd, FUZZ_APP_ID, cmd->ttl, fallback, &body) == SB_OK,
               "cmd %s: no messages:send body", cmd->id);
    for (size_t i = 0; i < n; i++) {
        channels[i] = json_string_value(json_array_get(cmd->channels, i));
        known = known && sim_validate_channel_known(channels[i]);
    }
    if (known && (fallback || cmd->kind != SB_CONTENT_MESSAGE)) {
        FUZZ_CHECK(sim_validate_send_text(body, strlen(body), &app, &v) == 200,
                   "cmd %s accepted, but Sinch would answer %d: %s: %s\nbody: %s", cmd->id,
                   v.status, v.field, v.description, body);
    }
    free(body);
}

static void check_accepted(const struct sb_config *cfg, const char *recipient,
                           const struct sb_command *cmd)
{
    size_t n = json_array_size(cmd->channels);
    struct sb_outcome_sent s = {
        .id = cmd->id,
        .message_id = "01FUZZMESSAGE",
        .to = cmd->to,
        .contact_id = cmd->contact_id,
        .alias = cmd->alias,
        .channel = json_string_value(json_array_get(cmd->channels, 0)),
        .accepted_time = "",
        .attempts = 1,
    };
    char *json;

    FUZZ_CHECK(cmd->id[0] && id_chars(cmd->id), "id \"%s\"", cmd->id);
    FUZZ_CHECK(!cmd->to != !cmd->contact_id, "to %s, contact_id %s", cmd->to ? cmd->to : "-",
               cmd->contact_id ? cmd->contact_id : "-");
    FUZZ_CHECK(!recipient || cmd->to, "the topic named %s, yet no number", recipient);
    if (cmd->to) {
        char e164[24];
        FUZZ_CHECK(sb_e164_normalise(cmd->to, e164, sizeof(e164)) && strcmp(e164, cmd->to) == 0,
                   "to \"%s\" is not E.164 with '+'", cmd->to);
        FUZZ_CHECK(sb_config_allowed(cfg, cmd->to), "to %s is outside BRIDGE_ALLOW_TO", cmd->to);
    }
    if (cmd->alias) {
        const char *number = sb_config_number_of(cfg, cmd->alias);
        FUZZ_CHECK(number && cmd->to && strcmp(number, cmd->to) == 0, "alias %s is not %s",
                   cmd->alias, cmd->to ? cmd->to : "(null)");
    }
    FUZZ_CHECK(n >= 1 && n <= MAX_CHAN, "%zu channels", n);
    for (size_t i = 0; i < n; i++) {
        const char *c = json_string_value(json_array_get(cmd->channels, i));
        FUZZ_CHECK(c && c[0] && c[strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_")] == '\0',
                   "channel \"%s\"", c ? c : "(not a string)");
    }
    FUZZ_CHECK(cmd->content != NULL && cmd->kind <= SB_CONTENT_MESSAGE, "kind %d", (int)cmd->kind);
    FUZZ_CHECK(cmd->ttl >= 0, "ttl %ld", cmd->ttl);
    FUZZ_CHECK(!cmd->dedupe_key == (cmd->dedupe_window == 0), "dedupe_key %s window %ld",
               cmd->dedupe_key ? cmd->dedupe_key : "-", cmd->dedupe_window);
    json = sb_outcome_sent_json(&s);
    FUZZ_CHECK(json != NULL, "cmd %s: the P/sent outcome cannot be built", cmd->id);
    free(json);
    check_request(cmd, false);
    if (cmd->fallback_template) {
        check_request(cmd, true);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct sb_config *cfg;
    const char *payload;
    const char *recipient;
    struct sb_command cmd;
    struct sb_command_error err;
    char topic[256];
    size_t len;
    bool ok = false;
    enum sb_err rc;

    if (size == 0) {
        return 0;
    }
    cfg = data[0] & 4 ? cfg_sms : cfg_wa;
    payload = (const char *)data + 1;
    len = size - 1;
    switch (data[0] & 3) {
    case 0:
        snprintf(topic, sizeof(topic), FUZZ_PREFIX "/send");
        break;
    case 1:
        snprintf(topic, sizeof(topic), FUZZ_PREFIX "/send/15551234567");
        break;
    case 2:
        snprintf(topic, sizeof(topic), FUZZ_PREFIX "/send/mom");
        break;
    default: {
        const char *nl = memchr(payload, '\n', len);
        size_t n = nl ? (size_t)(nl - payload) : len;
        /* Only what a broker would deliver on P/send/+: one level of a topic name. */
        if (n > 128 || !fuzz_topic_level(payload, n)) {
            return 0;
        }
        snprintf(topic, sizeof(topic), FUZZ_PREFIX "/send/%.*s", (int)n, payload);
        payload += nl ? n + 1 : n;
        len -= nl ? n + 1 : n;
        break;
    }
    }
    recipient = sb_outbox_topic_recipient(FUZZ_PREFIX "/send", topic, &ok);
    FUZZ_CHECK(ok && (recipient != NULL) == ((data[0] & 3) != 0), "topic %s: ok %d", topic, ok);

    rc = sb_command_parse(cfg, recipient, payload, len, GEN_ID, &cmd, &err);
    FUZZ_CHECK(rc == SB_OK || rc == SB_E_INVAL, "rc %d", (int)rc);
    FUZZ_CHECK(strlen(cmd.id) <= SB_COMMAND_ID_MAX && id_chars(cmd.id), "id \"%s\"", cmd.id);
    if (rc == SB_OK) {
        check_accepted(cfg, recipient, &cmd);
    } else {
        check_refused(&cmd, &err, topic, payload, len);
    }
    sb_command_clear(&cmd);
    return 0;
}
