/* The control API under /_sim/: health, the fault queue, forced token expiry, the recorded
 * requests and the counters, the webhook registrations and the callback attempts (injections and
 * the delivery mode are in sim_inject.c). No auth and never faulted or recorded: it is the
 * tests' side door. Called by sim_http.c on the loop. */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 1000
#define LIST_MAX     10000

typedef void (*control_fn)(struct sim *s, const struct sim_request *rq, struct sim_answer *a);

static void control_error(struct sim_answer *a, int status, const char *why)
{
    sim_answer_json(a, status, json_pack("{s:s}", "error", why));
}

static void health(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)s;
    (void)rq;
    sim_answer_text(a, 200, "{\"ok\":true}");
}

static void faults_add(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    char why[320];
    size_t queued = 0;
    json_error_t err;
    json_t *req = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, &err);
    if (!req) {
        snprintf(why, sizeof(why), "not JSON: %s", err.text);
        control_error(a, 400, why);
        return;
    }
    if (sim_faults_add(s->faults, req, rq->now_ms, &queued, why, sizeof(why))) {
        sim_answer_json(a, 200, json_pack("{s:I}", "queued", (json_int_t)queued));
    } else {
        control_error(a, 400, why);
    }
    json_decref(req);
}

static void faults_clear(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)rq;
    sim_faults_clear(s->faults);
    sim_answer_text(a, 200, "{\"cleared\":true}");
}

static void tokens_expire(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)rq;
    sim_tokens_expire_all(s->tokens);
    sim_answer_text(a, 200, "{\"expired\":true}");
}

/* Reads the unsigned integer `name` of a query like "since=5&limit=10"; absent leaves *out. */
static bool query_number(const char *query, const char *name, unsigned long long *out)
{
    size_t n = strlen(name);
    const char *p = query;
    while (p && *p) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *digits = p + n + 1;
            char *end;
            errno = 0;
            unsigned long long v = strtoull(digits, &end, 10);
            if (errno || end == digits || (*end && *end != '&') || *digits == '-') {
                return false;
            }
            *out = v;
        }
        p = strchr(p, '&');
        p = p ? p + 1 : NULL;
    }
    return true;
}

static void requests_list(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    unsigned long long since = 0, limit = LIST_DEFAULT;
    if (!query_number(rq->query, "since", &since) || !query_number(rq->query, "limit", &limit)) {
        control_error(a, 400, "since and limit must be non-negative integers");
        return;
    }
    if (limit > LIST_MAX) {
        limit = LIST_MAX;
    }
    sim_answer_json(a, 200, sim_records_list(s->records, since, (size_t)limit));
}

static void requests_clear(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)rq;
    sim_records_clear(s->records);
    sim_cblog_clear(s->cblog);
    memset(&s->stats, 0, sizeof(s->stats));
    sim_answer_text(a, 200, "{\"cleared\":true}");
}

static void callbacks_list(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    unsigned long long since = 0, limit = LIST_DEFAULT;
    if (!query_number(rq->query, "since", &since) || !query_number(rq->query, "limit", &limit)) {
        control_error(a, 400, "since and limit must be non-negative integers");
        return;
    }
    if (limit > LIST_MAX) {
        limit = LIST_MAX;
    }
    json_t *list = sim_cblog_list(s->cblog, since, (size_t)limit);
    json_object_set_new(list, "pending", json_integer((json_int_t)sim_deliver_pending(s->deliver)));
    sim_answer_json_flags(a, 200, list, SIM_CB_DUMP_FLAGS);
}

/* Forgets the attempts and drops every callback still waiting: a clean slate between tests. */
static void callbacks_clear(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)rq;
    sim_deliver_cancel(s->deliver);
    sim_cblog_clear(s->cblog);
    sim_answer_text(a, 200, "{\"cleared\":true}");
}

static void webhooks(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)rq;
    sim_answer_json(a, 200, sim_webhooks_control_json(s->webhooks));
}

static void stats(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    (void)rq;
    sim_answer_json(a, 200, sim_stats_json(&s->stats));
}

static const struct {
    const char *path;
    enum sim_method method;
    control_fn fn;
} routes[] = {
    {"/_sim/health", SIM_GET, health},
    {"/_sim/faults", SIM_POST, faults_add},
    {"/_sim/faults", SIM_DELETE, faults_clear},
    {"/_sim/tokens/expire", SIM_POST, tokens_expire},
    {"/_sim/requests", SIM_GET, requests_list},
    {"/_sim/requests", SIM_DELETE, requests_clear},
    {"/_sim/stats", SIM_GET, stats},
    {"/_sim/webhooks", SIM_GET, webhooks},
    {"/_sim/callbacks", SIM_GET, callbacks_list},
    {"/_sim/callbacks", SIM_DELETE, callbacks_clear},
    {"/_sim/inject", SIM_POST, sim_inject_handle},
    {"/_sim/delivery-mode", SIM_GET, sim_inject_mode_get},
    {"/_sim/delivery-mode", SIM_POST, sim_inject_mode_set},
};

bool sim_control_is_control(const char *path)
{
    return strncmp(path, "/_sim/", 6) == 0 || strcmp(path, "/_sim") == 0;
}

void sim_control_handle(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    bool path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(rq->path, routes[i].path) != 0) {
            continue;
        }
        path_known = true;
        if (routes[i].method == rq->method) {
            routes[i].fn(s, rq, a);
            return;
        }
    }
    if (path_known) {
        control_error(a, 405, "method not allowed here");
    } else {
        control_error(a, 404, "no such control endpoint (see tests/sim/README.md)");
    }
}
