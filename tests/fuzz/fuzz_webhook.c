/* libFuzzer target: the webhook parser and normaliser, sb_event_parse(), over arbitrary bodies
 * (the listener calls it for every body whose signature is good, so only Sinch can send these;
 * a bug here still takes the bridge down). The input is the body, as received.
 * Oracles, beyond "no crash, no leak, no undefined behaviour":
 *   - only "not a JSON object" is refused, with a reason, and nothing is left in the event;
 *   - the topic is P/inbound/<channel>/<who>, P/delivery/<channel>/<who> or P/event/<trigger>
 *     by kind: valid UTF-8, no empty level, no NUL, no wildcard, no control character, so the
 *     broker takes it and no subscriber's filter is fooled;
 *   - the payload is an object with "raw" equal to the body, and it can be printed as JSON;
 *   - the deduplication key is "<TRIGGER>:..." and at most 512 bytes (events.c's KEY_MAX);
 *   - an identity that is a phone number is published as E.164 with '+';
 *   - the same event written differently (the body re-printed compactly) gives the same
 *     trigger, topic and key: the normalisation depends on the content, not on the bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/signature.h"
#include "bridge/command.h"
#include "bridge/events.h"
#include "fuzz.h"

#define KEY_MAX 512 /* events.c */

static struct sb_config *cfg;

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

static bool has_control(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    for (; *p; p++) {
        /* C0 and DEL, and C1 as UTF-8 (U+0080..U+009F is C2 80..C2 9F). */
        if (*p < 0x20 || *p == 0x7F || (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)) {
            return true;
        }
    }
    return false;
}

static bool non_phone(const struct sb_event *ev)
{
    static const char *const ids[] = {"MESSENGER", "INSTAGRAM", "TELEGRAM", "KAKAOTALKCHAT",
                                      "LINE",      "WECHAT",    "APPLEBC"};

    for (size_t i = 0; ev->channel && i < sizeof(ids) / sizeof(ids[0]); i++) {
        if (strcmp(ev->channel, ids[i]) == 0) {
            return true;
        }
    }
    return false;
}

static size_t levels(const char *topic)
{
    size_t n = 1;

    for (const char *p = topic; *p; p++) {
        n += *p == '/';
    }
    return n;
}

static void check_event(const struct sb_event *ev, const json_t *root)
{
    const char *t = ev->topic;
    size_t tlen;
    size_t klen;
    char e164[24];
    char *printed;

    FUZZ_CHECK(ev->trigger && ev->trigger[0], "no trigger");
    FUZZ_CHECK(t && t[0], "no topic");
    tlen = strlen(t);
    FUZZ_CHECK(sb_utf8_valid(t, tlen) && !strpbrk(t, "+#") && !has_control(t), "topic \"%s\"", t);
    FUZZ_CHECK(t[0] != '/' && t[tlen - 1] != '/' && !strstr(t, "//"), "empty level in \"%s\"", t);
    switch (ev->kind) {
    case SB_EVENT_INBOUND:
        FUZZ_CHECK(strncmp(t, "inbound/", 8) == 0 && levels(t) == 3, "inbound topic \"%s\"", t);
        break;
    case SB_EVENT_DELIVERY:
        FUZZ_CHECK(strncmp(t, "delivery/", 9) == 0 && levels(t) == 3, "delivery topic \"%s\"", t);
        break;
    case SB_EVENT_OTHER:
        FUZZ_CHECK(strncmp(t, "event/", 6) == 0 && levels(t) == 2, "event topic \"%s\"", t);
        break;
    default:
        FUZZ_CHECK(false, "kind %d", (int)ev->kind);
    }
    FUZZ_CHECK(json_is_object(ev->payload), "payload is not an object");
    FUZZ_CHECK(json_equal(json_object_get(ev->payload, "raw"), root), "raw is not the body");
    printed = json_dumps(ev->payload, JSON_COMPACT);
    FUZZ_CHECK(printed != NULL, "the payload of %s cannot be printed", t);
    free(printed);
    FUZZ_CHECK(ev->dedupe_key, "no key");
    klen = strlen(ev->trigger);
    FUZZ_CHECK(strncmp(ev->dedupe_key, ev->trigger, klen) == 0 && ev->dedupe_key[klen] == ':',
               "key \"%s\" of %s", ev->dedupe_key, ev->trigger);
    FUZZ_CHECK(strlen(ev->dedupe_key) <= KEY_MAX, "key of %zu bytes", strlen(ev->dedupe_key));
    /* An identity that is a phone number is published as E.164 with '+', except on the
     * channels whose identities are ids that may look like numbers (facts 3.1). */
    if (ev->identity && sb_e164_normalise(ev->identity, e164, sizeof(e164)) && !non_phone(ev)) {
        FUZZ_CHECK(strcmp(e164, ev->identity) == 0, "identity \"%s\" on %s", ev->identity,
                   ev->channel ? ev->channel : "(no channel)");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    char sha[65];
    char why[256];
    struct sb_event ev;
    struct sb_event again;
    json_t *root;
    char *compact;
    enum sb_err rc;

    sb_sha256_hex(body, size, sha);
    rc = sb_event_parse(cfg, body, size, sha, &ev, why, sizeof(why));
    FUZZ_CHECK(rc == SB_OK || rc == SB_E_INVAL, "rc %d", (int)rc);
    /* The same flags as events.c: what it refuses, this must not parse either. */
    root = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
    if (rc != SB_OK) {
        FUZZ_CHECK(!json_is_object(root), "an object refused: %s", why);
        FUZZ_CHECK(why[0] != '\0', "refused without a reason");
        FUZZ_CHECK(!ev.trigger && !ev.topic && !ev.payload && !ev.dedupe_key,
                   "a refused event holds something");
        json_decref(root);
        return 0;
    }
    FUZZ_CHECK(json_is_object(root), "accepted what is not a JSON object");
    check_event(&ev, root);

    /* The same content in other bytes; the body hash stays, as it only stands in for an id. */
    compact = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    FUZZ_CHECK(compact != NULL, "the body cannot be re-printed");
    rc = sb_event_parse(cfg, compact, strlen(compact), sha, &again, why, sizeof(why));
    FUZZ_CHECK(rc == SB_OK, "the re-printed body was refused: %s", why);
    FUZZ_CHECK(again.kind == ev.kind && strcmp(again.trigger, ev.trigger) == 0 &&
                   strcmp(again.topic, ev.topic) == 0 &&
                   strcmp(again.dedupe_key, ev.dedupe_key) == 0,
               "re-printed: %s %s %s, first: %s %s %s", again.trigger, again.topic,
               again.dedupe_key, ev.trigger, ev.topic, ev.dedupe_key);
    FUZZ_CHECK(json_equal(again.payload, ev.payload), "re-printed payload differs");
    sb_event_clear(&again);
    free(compact);
    sb_event_clear(&ev);
    json_decref(root);
    return 0;
}
