/* The control side of callbacks: POST /_sim/inject builds a callback (sim_callbacks.c), fans it
 * out to every target of its trigger with the delivery knobs asked for (duplicates, a broken,
 * stale, missing or replayed signature) and answers at once with the event ids and the body;
 * GET/POST /_sim/delivery-mode say what the delivery reports of the next sends play back.
 * Called by sim_control.c on the loop. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUPLICATES_MAX 100
#define COPY_GAP_MS                                                                                \
    20 /* between copies of one event: they usually arrive in order (no promise)                   \
        */
#define REASON_MAX 2048

static void control_error(struct sim_answer *a, int status, const char *why)
{
    sim_answer_json(a, status, json_pack("{s:s}", "error", why));
}

/* The request body as a JSON object (new); an empty body is {}. NULL after answering 400. */
static json_t *object_body(const struct sim_request *rq, struct sim_answer *a)
{
    json_error_t err;
    if (!rq->body || rq->body_len == 0) {
        return json_object();
    }
    json_t *req = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(req)) {
        char why[256];
        snprintf(why, sizeof(why), "expected a JSON object%s%s", req ? "" : ": ",
                 req ? "" : err.text);
        control_error(a, 400, why);
        json_decref(req);
        return NULL;
    }
    return req;
}

/* ---- POST /_sim/inject ---- */

struct knobs {
    long duplicates;
    enum sim_sig_mode sig;
};

static bool read_knobs(json_t *req, struct knobs *k, struct sim_answer *a)
{
    static const char *const names[] = {
        [SIM_SIG_FRESH] = "valid",
        [SIM_SIG_BAD] = "bad",
        [SIM_SIG_STALE] = "stale",
        [SIM_SIG_NONE] = "none",
        [SIM_SIG_REPLAY] = "same-nonce-replay",
    };
    json_t *dup = json_object_get(req, "duplicates");
    json_t *sig = json_object_get(req, "signature");
    k->duplicates = 0;
    k->sig = SIM_SIG_FRESH;
    if (dup) {
        k->duplicates = json_is_integer(dup) ? (long)json_integer_value(dup) : -1;
        if (k->duplicates < 0 || k->duplicates > DUPLICATES_MAX) {
            control_error(a, 400, "duplicates must be an integer 0..100");
            return false;
        }
    }
    if (sig) {
        bool found = false;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (json_is_string(sig) && strcmp(json_string_value(sig), names[i]) == 0) {
                k->sig = (enum sim_sig_mode)i;
                found = true;
            }
        }
        if (!found) {
            control_error(a, 400,
                          "signature must be \"valid\", \"bad\", \"stale\", \"none\" or "
                          "\"same-nonce-replay\"");
            return false;
        }
    }
    return true;
}

static bool target_copy(struct sim_target *dst, const struct sim_target *src)
{
    *dst = *src;
    dst->url = strdup(src->url);
    dst->secret = src->secret ? strdup(src->secret) : NULL;
    if (!dst->url || (src->secret && !dst->secret)) {
        sim_target_release(dst);
        return false;
    }
    return true;
}

/* Queues the copies of one event for one target; appends their event ids to `ids`. The copies
 * are: the event, then (same-nonce-replay) the identical request again, then `duplicates` more,
 * each freshly signed. */
static void fan_out(struct sim *s, const struct sim_target *target, struct sim_blob *body,
                    enum sim_trigger trigger, const struct knobs *k, int64_t now_ms, json_t *ids)
{
    long copies = 1 + k->duplicates + (k->sig == SIM_SIG_REPLAY ? 1 : 0);
    char nonce[SIM_NONCE_MAX] = "", ts[SIM_TS_MAX] = "";
    if (k->sig == SIM_SIG_REPLAY) {
        sim_ids_ulid(&s->ids, now_ms, nonce);
        snprintf(ts, sizeof(ts), "%lld", (long long)(now_ms / 1000));
    }
    for (long c = 0; c < copies; c++) {
        struct sim_delivery dv = {
            .trigger = trigger,
            .body = body,
            .sig = k->sig == SIM_SIG_REPLAY && c >= 2 ? SIM_SIG_FRESH : k->sig,
            .delay_ms = c * COPY_GAP_MS,
        };
        if (!target_copy(&dv.target, target)) {
            return;
        }
        sim_ids_ulid(&s->ids, now_ms, dv.event_id);
        memcpy(dv.nonce, nonce, sizeof(nonce));
        memcpy(dv.timestamp, ts, sizeof(ts));
        if (sim_deliver_event(s->deliver, &dv)) {
            json_array_append_new(ids, json_string(dv.event_id));
        }
    }
}

void sim_inject_handle(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    struct sim_injected inj;
    struct knobs k;
    struct sim_target targets[SIM_WEBHOOKS_MAX + 1];
    char why[256];
    struct sim_cb_context ctx = {s->cfg.app_id, s->cfg.project_id, rq->now_ms, &s->ids};
    json_t *req = object_body(rq, a);

    if (!req || !read_knobs(req, &k, a)) {
        json_decref(req);
        return;
    }
    if (!sim_callback_inject(req, &ctx, &inj, why, sizeof(why))) {
        control_error(a, 400, why);
        json_decref(req);
        return;
    }
    json_decref(req);
    struct sim_blob *body = sim_blob_take(inj.text);
    inj.text = NULL;
    json_t *ids = json_array();
    if (!body || !ids) {
        control_error(a, 500, "out of memory");
        json_decref(ids);
        sim_blob_unref(body);
        sim_injected_release(&inj);
        return;
    }
    size_t n = sim_webhooks_targets(s->webhooks, inj.trigger, targets);
    for (size_t i = 0; i < n; i++) {
        fan_out(s, &targets[i], body, inj.trigger, &k, rq->now_ms, ids);
        sim_target_release(&targets[i]);
    }
    sim_blob_unref(body);
    sim_answer_json_flags(a, 200,
                          json_pack("{s:o, s:s, s:O}", "event_ids", ids, "trigger",
                                    sim_trigger_name(inj.trigger), "body", inj.json),
                          SIM_CB_DUMP_FLAGS);
    sim_injected_release(&inj);
}

/* ---- /_sim/delivery-mode ---- */

static const char *const mode_names[] = {
    [SIM_REPORTS_NORMAL] = "normal",
    [SIM_REPORTS_FAILED] = "failed",
    [SIM_REPORTS_NONE] = "none",
};

static json_t *mode_json(const struct sim_delivery_mode *m)
{
    json_t *reason = m->reason ? json_loads(m->reason, 0, NULL) : NULL;
    return json_pack("{s:s, s:o, s:o}", "mode", mode_names[m->mode], "reason",
                     reason ? reason : json_null(), "switch_to",
                     m->switch_to[0] ? json_string(m->switch_to) : json_null());
}

void sim_inject_mode_get(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)rq;
    sim_answer_json(a, 200, mode_json(&s->reports));
}

/* A reason object of strings with a `code`; sub_code defaults to UNSPECIFIED_SUB_CODE. Returns
 * its compact text (new), or NULL with `why`. */
static char *read_reason(json_t *reason, char *why, size_t why_len)
{
    const char *key;
    json_t *val;
    if (!json_is_object(reason) || !json_is_string(json_object_get(reason, "code"))) {
        snprintf(why, why_len, "reason must be an object with a \"code\" string");
        return NULL;
    }
    json_object_foreach(reason, key, val)
    {
        if ((strcmp(key, "code") != 0 && strcmp(key, "description") != 0 &&
             strcmp(key, "sub_code") != 0 && strcmp(key, "channel_code") != 0) ||
            !json_is_string(val)) {
            snprintf(why, why_len,
                     "reason takes code, description, sub_code and channel_code, all strings");
            return NULL;
        }
    }
    json_t *r = json_pack("{s:O, s:s, s:s}", "code", json_object_get(reason, "code"), "description",
                          json_string_value(json_object_get(reason, "description"))
                              ? json_string_value(json_object_get(reason, "description"))
                              : "",
                          "sub_code",
                          json_string_value(json_object_get(reason, "sub_code"))
                              ? json_string_value(json_object_get(reason, "sub_code"))
                              : "UNSPECIFIED_SUB_CODE");
    if (r && json_object_get(reason, "channel_code")) {
        json_object_set(r, "channel_code", json_object_get(reason, "channel_code"));
    }
    char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    if (!text || strlen(text) > REASON_MAX) {
        snprintf(why, why_len, "reason is too long");
        free(text);
        return NULL;
    }
    return text;
}

void sim_inject_mode_set(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    char why[160];
    const char *key;
    json_t *val;
    struct sim_delivery_mode m = {.mode = SIM_REPORTS_NORMAL};
    json_t *req = object_body(rq, a);
    if (!req) {
        return;
    }
    json_object_foreach(req, key, val)
    {
        if (strcmp(key, "mode") == 0) {
            size_t i = 0;
            while (i < 3 &&
                   !(json_is_string(val) && strcmp(json_string_value(val), mode_names[i]) == 0)) {
                i++;
            }
            if (i == 3) {
                snprintf(why, sizeof(why), "mode must be \"normal\", \"failed\" or \"none\"");
                goto bad;
            }
            m.mode = (enum sim_report_mode)i;
        } else if (strcmp(key, "reason") == 0) {
            free(m.reason);
            m.reason = json_is_null(val) ? NULL : read_reason(val, why, sizeof(why));
            if (!m.reason && !json_is_null(val)) {
                goto bad;
            }
        } else if (strcmp(key, "switch_to") == 0) {
            if (!json_is_string(val) || !sim_validate_channel_known(json_string_value(val))) {
                snprintf(why, sizeof(why), "switch_to must be a Sinch channel name");
                goto bad;
            }
            snprintf(m.switch_to, sizeof(m.switch_to), "%s", json_string_value(val));
        } else {
            snprintf(why, sizeof(why), "unknown key \"%.40s\" (mode, reason, switch_to)", key);
            goto bad;
        }
    }
    json_decref(req);
    free(s->reports.reason);
    s->reports = m;
    sim_answer_json(a, 200, mode_json(&s->reports));
    return;
bad:
    json_decref(req);
    free(m.reason);
    control_error(a, 400, why);
}
