/* The control plane: parses a request, runs the action, answers with the caller's transaction.
 * A bad request (not JSON, not an object, an unknown action, a bad field) is answered with
 * status "error" and a message saying what is wrong; nothing else happens. */
#include "bridge/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/log.h"
#include "bridge/outcome.h"

#define HISTORY_LIMIT     20  /* the default `limit` of a history request */
#define HISTORY_LIMIT_MAX 200 /* its largest */
#define REQUEST_MAX_BYTES 65536

struct sb_control {
    const struct sb_config *cfg;
    struct sb_store *store;
    struct sb_control_ops ops;
};

enum sb_err sb_control_new(const struct sb_config *cfg, struct sb_store *store,
                           const struct sb_control_ops *ops, struct sb_control **out)
{
    struct sb_control *c = calloc(1, sizeof(*c));
    if (!c) {
        return SB_E_NOMEM;
    }
    c->cfg = cfg;
    c->store = store;
    c->ops = *ops;
    *out = c;
    return SB_OK;
}

void sb_control_free(struct sb_control *c)
{
    free(c);
}

/* ---- history ---- */

static json_t *iso_time(int64_t ms)
{
    char buf[40];
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;

    gmtime_r(&sec, &tm);
    n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The text of a command as it was received: its "text" when it is a JSON object with one, the
 * payload itself when it is plain text (P/send/<recipient>), else null (a template, media...). */
static json_t *command_text(const char *payload, size_t len)
{
    json_t *cmd = json_loadb(payload, len, 0, NULL);
    json_t *text;

    if (cmd) {
        text = json_is_object(cmd) ? json_incref(json_object_get(cmd, "text")) : NULL;
        json_decref(cmd);
        return json_is_string(text) ? text : (json_decref(text), json_null());
    }
    text = json_stringn(payload, len); /* NULL when not UTF-8 */
    return text ? text : json_null();
}

struct history {
    json_t *messages;
    bool failed;
};

static void history_row(void *arg, const struct sb_store_history_row *row)
{
    struct history *h = arg;
    json_t *m;

    if (row->inbound) {
        /* The published payload without Sinch's raw event, which can be large. */
        json_t *ev = json_loadb(row->payload, row->payload_len, 0, NULL);
        const char *key;
        json_t *v;

        m = json_pack("{s:s,s:o}", "direction", "in", "time", iso_time(row->at_ms));
        json_object_foreach(ev, key, v)
        {
            if (m && strcmp(key, "raw") != 0 && strcmp(key, "time") != 0) {
                json_object_set(m, key, v);
            }
        }
        json_decref(ev);
    } else {
        m = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "direction", "out", "time",
                      iso_time(row->at_ms), "id", string_or_null(row->cmd_id), "channel",
                      string_or_null(row->channel), "message_id", string_or_null(row->message_id),
                      "status", string_or_null(row->status), "text",
                      command_text(row->payload, row->payload_len));
    }
    if (!m || json_array_append_new(h->messages, m) != 0) {
        h->failed = true;
    }
}

static json_t *history(struct sb_control *c, const json_t *rq, char *why, size_t why_len)
{
    const json_t *jc = json_object_get(rq, "contact");
    const json_t *jl = json_object_get(rq, "limit");
    const char *contact = json_string_value(jc);
    const char *number;
    char e164[24];
    json_int_t limit = HISTORY_LIMIT;
    struct history h = {0};
    json_t *data;

    if (!contact || !*contact) {
        snprintf(why, why_len, "history needs \"contact\": an alias, a number or a contact id");
        return NULL;
    }
    if (jl) {
        limit = json_is_integer(jl) ? json_integer_value(jl) : 0;
        if (limit < 1 || limit > HISTORY_LIMIT_MAX) {
            snprintf(why, why_len, "\"limit\" must be a whole number from 1 to %d",
                     HISTORY_LIMIT_MAX);
            return NULL;
        }
    }
    number = sb_config_number_of(c->cfg, contact);
    if (!number && sb_e164_normalise(contact, e164, sizeof(e164))) {
        number = e164;
    }
    h.messages = json_array();
    if (!h.messages ||
        sb_store_history(c->store, number ? number : contact, (int)limit, history_row, &h) !=
            SB_OK ||
        h.failed) {
        json_decref(h.messages);
        snprintf(why, why_len, "the store could not be read");
        return NULL;
    }
    data = json_pack("{s:s,s:o,s:o}", "contact", contact, "number", string_or_null(number),
                     "messages", h.messages);
    if (!data) {
        snprintf(why, why_len, "out of memory");
    }
    return data;
}

/* ---- requests ---- */

static json_t *run_action(struct sb_control *c, const char *action, const json_t *rq, char *why,
                          size_t why_len)
{
    if (strcmp(action, "health_check") == 0) {
        json_t *h = c->ops.health(c->ops.ctx);
        if (!h) {
            snprintf(why, why_len, "out of memory");
        }
        return h;
    }
    if (strcmp(action, "resend_discovery") == 0) {
        if (!c->cfg->ha_discovery) {
            snprintf(why, why_len, "Home Assistant discovery is off (BRIDGE_HA_DISCOVERY=0)");
            return NULL;
        }
        return c->ops.resend_discovery(c->ops.ctx, why, why_len) == SB_OK ? json_object() : NULL;
    }
    if (strcmp(action, "reload") == 0) {
        return c->ops.reload(c->ops.ctx, why, why_len);
    }
    if (strcmp(action, "history") == 0) {
        return history(c, rq, why, why_len);
    }
    snprintf(why, why_len,
             "unknown action \"%.64s\"; one of health_check, resend_discovery, reload, history",
             action);
    return NULL;
}

void sb_control_request(struct sb_control *c, const char *action, const char *payload, size_t len)
{
    char *topic = NULL;
    char why[512] = "";
    char *error = NULL;
    json_error_t jerr;
    json_t *rq = NULL;
    json_t *data = NULL;
    json_t *answer;
    char *text;
    int n;

    if (len == 0) {
        rq = json_object();
    } else if (len > REQUEST_MAX_BYTES) {
        snprintf(why, sizeof(why), "request over %d bytes", REQUEST_MAX_BYTES);
    } else if (!(rq = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr))) {
        snprintf(why, sizeof(why), "the request is not JSON: %s", jerr.text);
    } else if (!json_is_object(rq)) {
        snprintf(why, sizeof(why), "the request must be a JSON object");
    }
    if (!why[0]) {
        data = run_action(c, action, rq, why, sizeof(why));
    }
    if (data) {
        answer = json_pack("{s:s,s:o}", "status", "ok", "data", data);
    } else {
        /* The reason may quote the request: jansson's error text shows the bytes near the
         * error, the unknown action is cut at 64 bytes, and either can end in half a character.
         * Made valid UTF-8 here, since json_pack() refuses anything else and the request would
         * get no answer at all (found by tests/fuzz/fuzz_control.c). */
        const char *reason = why[0] ? why : "failed";
        error = sb_utf8_excerpt(reason, strlen(reason), sizeof(why));
        answer =
            error ? json_pack("{s:s,s:{},s:s}", "status", "error", "data", "error", error) : NULL;
        sb_log(SB_LOG_WARN, "control", "%s: %s", action, reason);
    }
    if (answer && json_is_object(rq) && json_object_get(rq, "transaction")) {
        json_object_set(answer, "transaction", json_object_get(rq, "transaction"));
    }
    json_decref(rq);
    text = answer ? json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(answer);
    free(error);
    /* Sized to the action: a topic level may be far longer than any fixed buffer, and a cut
     * topic would answer on another action's topic (found by tests/fuzz/fuzz_control.c). */
    n = snprintf(NULL, 0, "%s/bridge/response/%s", c->cfg->topic_prefix, action);
    topic = n < 0 ? NULL : malloc((size_t)n + 1);
    if (topic) {
        snprintf(topic, (size_t)n + 1, "%s/bridge/response/%s", c->cfg->topic_prefix, action);
    }
    if (!text || !topic || c->ops.publish(c->ops.ctx, topic, text, strlen(text)) != SB_OK) {
        sb_log(SB_LOG_WARN, "control", "could not answer %s", action);
    }
    free(topic);
    free(text);
}
