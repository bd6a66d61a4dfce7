/* libFuzzer target: the control plane's request parser, sb_control_request(). Input: the action
 * (the last level of P/bridge/request/<action>) up to the first newline, then the body. The
 * actions run against stand-in operations and a real store in a scratch directory, seeded at
 * start with a few messages to and from mom, so `history` reads real rows; no request writes.
 * Oracles, beyond "no crash, no leak, no undefined behaviour":
 *   - every request is answered exactly once, on P/bridge/response/<action> exactly;
 *   - the answer is a JSON object, "status" ok for a known action with a good body and error
 *     otherwise, an error always with a non-empty "error" and "data": {};
 *   - a body that is an object with "transaction" gets it back, equal; any other body gets none. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/store.h"
#include "bridge/control.h"
#include "fuzz.h"

#define RESPONSE_PREFIX FUZZ_PREFIX "/bridge/response/"

static struct sb_config *cfg;
static struct sb_store *store;
static struct sb_control *control;
static char dir[64];

/* What the one publish of a request carried. */
static struct {
    int count;
    char *topic;
    char *payload;
} answer;

static json_t *op_health(void *ctx)
{
    (void)ctx;
    return json_pack("{s:i}", "uptime_s", 1);
}

static enum sb_err op_discovery(void *ctx, char *why, size_t why_len)
{
    (void)ctx;
    (void)why;
    (void)why_len;
    return SB_OK;
}

static json_t *op_reload(void *ctx, char *why, size_t why_len)
{
    (void)ctx;
    (void)why;
    (void)why_len;
    return json_pack("{s:[],s:[]}", "changed", "restart_needed");
}

static enum sb_err op_publish(void *ctx, const char *topic, const char *payload, size_t len)
{
    (void)ctx;
    answer.count++;
    free(answer.topic);
    free(answer.payload);
    answer.topic = strdup(topic);
    answer.payload = strndup(payload, len);
    FUZZ_CHECK(answer.topic && answer.payload, "strdup");
    return SB_OK;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[600];

    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(dir);
}

static void cleanup(void)
{
    sb_control_free(control);
    sb_store_close(store);
    remove_dir();
    sb_config_free(cfg);
    free(answer.topic);
    free(answer.payload);
}

/* Two commands to mom (one plain text, one JSON) and one message from her. */
static void seed_store(void)
{
    static const char *const payloads[] = {"Dinner at 7?", "{\"to\":\"mom\",\"text\":\"On it\"}"};
    struct sb_store_event ev = {
        .dedupe_key = "MESSAGE_INBOUND:fuzz-1",
        .keep_until_ms = INT64_MAX / 2,
        .topic = FUZZ_PREFIX "/inbound/whatsapp/mom",
        .payload = "{\"message_id\":\"01FUZZIN\",\"from\":\"+46701234567\",\"kind\":\"text\","
                   "\"text\":\"On my way\",\"raw\":{}}",
        .contact = "+46701234567",
        .received_ms = 1700000001000,
    };
    enum sb_store_event_result res;

    for (int i = 0; i < 2; i++) {
        struct sb_store_command c = {.received_ms = 1700000000000 + i,
                                     .topic = FUZZ_PREFIX "/send/mom",
                                     .payload = payloads[i],
                                     .payload_len = strlen(payloads[i]),
                                     .gen_id = "fuzz-gen"};
        int64_t seq = 0;
        FUZZ_CHECK(sb_store_put_command(store, &c, &seq) == SB_OK, "put_command");
        sb_store_stage_attempt(store, seq, "fuzz-cmd", "+46701234567", 1, c.received_ms);
        sb_store_stage_outcome(store, seq, "fuzz-cmd", "+46701234567", "WHATSAPP", "01FUZZOUT",
                               "ACCEPTED", 1, FUZZ_PREFIX "/sent", "{}");
        FUZZ_CHECK(sb_store_flush(store) == SB_OK, "flush");
    }
    FUZZ_CHECK(sb_store_put_event(store, &ev, &res) == SB_OK, "put_event");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sb_control_ops ops = {
        .health = op_health,
        .resend_discovery = op_discovery,
        .reload = op_reload,
        .publish = op_publish,
    };
    char why[256];

    (void)argc;
    (void)argv;
    fuzz_quiet();
    cfg = fuzz_config("WHATSAPP", true);
    snprintf(dir, sizeof(dir), "/tmp/fuzz_control.XXXXXX");
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    FUZZ_CHECK(sb_store_open(dir, &store, why, sizeof(why)) == SB_OK, "store: %s", why);
    FUZZ_CHECK(sb_control_new(cfg, store, &ops, &control) == SB_OK, "control");
    atexit(cleanup);
    seed_store();
    return 0;
}

static bool known_action(const char *a)
{
    return strcmp(a, "health_check") == 0 || strcmp(a, "resend_discovery") == 0 ||
           strcmp(a, "reload") == 0 || strcmp(a, "history") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t alen = nl ? (size_t)(nl - in) : size;
    const char *body = nl ? nl + 1 : in + size;
    size_t blen = size - (size_t)(body - in);
    char *action;
    json_t *rq;
    json_t *got;
    const char *status;
    const char *error;

    /* Only what a broker delivers on P/bridge/request/+: one level of a topic name. */
    if (!fuzz_topic_level(in, alen)) {
        return 0;
    }
    action = strndup(in, alen);
    FUZZ_CHECK(action != NULL, "strndup");
    answer.count = 0;
    sb_control_request(control, action, body, blen);

    FUZZ_CHECK(answer.count == 1, "action \"%s\": %d answers", action, answer.count);
    FUZZ_CHECK(strncmp(answer.topic, RESPONSE_PREFIX, strlen(RESPONSE_PREFIX)) == 0 &&
                   strcmp(answer.topic + strlen(RESPONSE_PREFIX), action) == 0,
               "action \"%s\" answered on \"%s\"", action, answer.topic);
    got = json_loads(answer.payload, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(got), "answer \"%s\"", answer.payload);
    status = json_string_value(json_object_get(got, "status"));
    FUZZ_CHECK(status && (strcmp(status, "ok") == 0 || strcmp(status, "error") == 0),
               "status in \"%s\"", answer.payload);
    error = json_string_value(json_object_get(got, "error"));
    if (strcmp(status, "error") == 0) {
        json_t *d = json_object_get(got, "data");
        FUZZ_CHECK(error && error[0], "an error without a reason: %s", answer.payload);
        FUZZ_CHECK(json_is_object(d) && json_object_size(d) == 0, "error data: %s", answer.payload);
    } else {
        FUZZ_CHECK(known_action(action), "\"%s\" succeeded: %s", action, answer.payload);
        FUZZ_CHECK(!error && json_object_get(got, "data"), "ok answer: %s", answer.payload);
    }

    /* The transaction: the body's, when the body is an object (empty counts as {}) and not over
     * control.c's 64 KiB, which is refused unread. */
    rq = blen == 0       ? json_object()
         : blen <= 65536 ? json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL)
                         : NULL;
    if (!json_is_object(rq)) {
        FUZZ_CHECK(strcmp(status, "error") == 0, "a body that is no object: %s", answer.payload);
        FUZZ_CHECK(!json_object_get(got, "transaction"), "transaction from nowhere");
    } else {
        json_t *t = json_object_get(rq, "transaction");
        FUZZ_CHECK(t ? json_equal(t, json_object_get(got, "transaction"))
                     : !json_object_get(got, "transaction"),
                   "transaction not echoed: %s", answer.payload);
    }
    json_decref(rq);
    json_decref(got);
    free(action);
    return 0;
}
