/* libFuzzer target: the topic router, sb_outbox_topic_recipient(), which turns the topic a
 * command came on (P/send or P/send/<recipient>) into the recipient sb_command_parse() gets.
 * Input: a first line that is tried as BRIDGE_TOPIC_PREFIX (kept when the configuration's own
 * check accepts it, else "sinch"), then the topic name.
 * Oracles: an MQTT topic matcher written here from the spec (4.7) says which topics our two
 * subscriptions deliver; for each of those the router must agree (P/send: no recipient;
 * P/send/+: the last level), and a topic it accepts must start with the send prefix. The
 * recipient must then resolve as README.md "Topics" says: E.164 digits or an alias, else
 * invalid_recipient; outside BRIDGE_ALLOW_TO, not_allowed. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/command.h"
#include "bridge/config_values.h"
#include "bridge/outbox.h"
#include "fuzz.h"

#define PREFIX_MAX 256 /* the configuration refuses more than 128 bytes */

static struct sb_config *cfg; /* WHATSAPP, contacts, allow list */

static void cleanup(void)
{
    sb_config_free(cfg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    cfg = fuzz_config("WHATSAPP", true);
    atexit(cleanup);
    return 0;
}

/* Whether topic name `t` matches topic filter `f` (MQTT 5 4.7): level by level, '+' matches one
 * whole level (an empty one too), '#' the parent level and everything below it. Our filters
 * never start with a wildcard, so the special case of '$' topics (4.7.2) does not arise. */
static bool mqtt_match(const char *f, const char *t)
{
    for (;;) {
        size_t fl = strcspn(f, "/");
        size_t tl = strcspn(t, "/");

        if (fl == 1 && f[0] == '#') {
            return true;
        }
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0)) {
            return false;
        }
        f += fl;
        t += tl;
        if (*f == '\0' || *t == '\0') {
            /* "a/#" also matches "a": the filter's next level is a lone '#'. */
            return *f == *t || strcmp(f, "/#") == 0;
        }
        f++;
        t++;
    }
}

/* E.164 as README.md's topic table states it, written here rather than borrowed from config.c:
 * 8 to 15 digits, the first not 0 (a '+' cannot occur in a topic name). */
static bool e164_digits(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return s[n] == '\0' && n >= 8 && n <= 15 && s[0] != '0';
}

/* The recipient must resolve the way the README promises. */
static void check_resolution(const char *recipient)
{
    static const char text[] = "fuzz";
    struct sb_command cmd;
    struct sb_command_error err;
    const char *number = NULL;
    char e164[24];
    enum sb_err rc;

    rc = sb_command_parse(cfg, recipient, text, sizeof(text) - 1, "gen-1", &cmd, &err);
    if (e164_digits(recipient)) {
        snprintf(e164, sizeof(e164), "+%s", recipient);
        number = e164;
    } else {
        number = sb_config_number_of(cfg, recipient);
    }
    if (!number) {
        FUZZ_CHECK(rc == SB_E_INVAL && err.code && strcmp(err.code, "invalid_recipient") == 0,
                   "recipient \"%s\" is neither E.164 nor an alias, yet rc %d code %s", recipient,
                   rc, err.code ? err.code : "(none)");
    } else if (!sb_config_allowed(cfg, number)) {
        FUZZ_CHECK(rc == SB_E_INVAL && err.code && strcmp(err.code, "not_allowed") == 0,
                   "recipient \"%s\" (%s) is outside the allow list, yet rc %d code %s", recipient,
                   number, rc, err.code ? err.code : "(none)");
    } else {
        FUZZ_CHECK(rc == SB_OK, "recipient \"%s\" refused: %s: %s", recipient,
                   err.code ? err.code : "(none)", err.message);
        FUZZ_CHECK(cmd.to && strcmp(cmd.to, number) == 0, "recipient \"%s\" went to %s", recipient,
                   cmd.to ? cmd.to : "(null)");
    }
    sb_command_clear(&cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    char prefix[PREFIX_MAX + 1] = FUZZ_PREFIX;
    char send_prefix[PREFIX_MAX + 8];
    char filter_one[PREFIX_MAX + 16];
    char *topic;
    const char *recipient;
    size_t topic_len;
    bool ok = false;
    bool is_send;
    bool is_send_any;

    if (nl && (size_t)(nl - in) <= PREFIX_MAX) {
        char problem[128];
        char candidate[PREFIX_MAX + 1];
        size_t n = (size_t)(nl - in);
        memcpy(candidate, in, n);
        candidate[n] = '\0';
        /* What the configuration accepts, and what a broker would (UTF-8, no NUL). */
        if (n > 0 && !memchr(candidate, '\0', n) && sb_utf8_valid(candidate, n) &&
            sb_config_check_topic_part(candidate, problem, sizeof(problem))) {
            memcpy(prefix, candidate, n + 1);
        }
    }
    if (nl) {
        topic_len = size - (size_t)(nl - in) - 1;
        in = nl + 1;
    } else {
        topic_len = size;
    }
    /* A topic name no broker would deliver (MQTT 5 4.7.3: UTF-8, at least one character, no
     * wildcard; 1.5.4: no NUL) is not an input of the router. */
    if (topic_len == 0 || !sb_utf8_valid(in, topic_len) || memchr(in, '\0', topic_len) ||
        memchr(in, '+', topic_len) || memchr(in, '#', topic_len)) {
        return 0;
    }
    topic = malloc(topic_len + 1);
    if (!topic) {
        return 0;
    }
    memcpy(topic, in, topic_len);
    topic[topic_len] = '\0';

    /* As sb_outbox_new() and sb_mqtt_new() build them. */
    snprintf(send_prefix, sizeof(send_prefix), "%s/send", prefix);
    snprintf(filter_one, sizeof(filter_one), "%s/send/+", prefix);
    is_send = mqtt_match(send_prefix, topic);
    is_send_any = mqtt_match(filter_one, topic);
    recipient = sb_outbox_topic_recipient(send_prefix, topic, &ok);

    FUZZ_CHECK(!(is_send && is_send_any), "\"%s\" matches both filters", topic);
    if (is_send) {
        FUZZ_CHECK(ok && !recipient, "\"%s\" is P/send, yet ok %d recipient %s", topic, ok,
                   recipient ? recipient : "(null)");
    }
    if (is_send_any) {
        const char *last = strrchr(topic, '/') + 1;
        FUZZ_CHECK(ok && recipient == last, "\"%s\" is P/send/+, yet ok %d recipient %s", topic, ok,
                   recipient ? recipient : "(null)");
    }
    if (ok) {
        size_t n = strlen(send_prefix);
        FUZZ_CHECK(strncmp(topic, send_prefix, n) == 0 && (topic[n] == '\0' || topic[n] == '/'),
                   "\"%s\" accepted under %s", topic, send_prefix);
        /* More levels ("P/send/a/b") cannot come from P/send/+; one level must be one of ours. */
        FUZZ_CHECK(!recipient || strchr(recipient, '/') || is_send_any,
                   "\"%s\" gave one-level recipient \"%s\" that P/send/+ would not deliver", topic,
                   recipient);
    } else {
        FUZZ_CHECK(!recipient && !is_send && !is_send_any, "\"%s\" refused but subscribed", topic);
    }
    if (is_send_any) {
        check_resolution(recipient);
    }
    free(topic);
    return 0;
}
