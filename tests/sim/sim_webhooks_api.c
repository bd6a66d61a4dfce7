/* The webhook management API (fact 6.1) over the registry: create, list, get, update (with an
 * optional update_mask) and delete, with the auth of the other /v1 endpoints and Sinch's error
 * shape. Called by sim_api.c on the loop. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASK_MAX 256

enum route {
    R_NONE,
    R_CREATE, /* webhooks */
    R_ONE,    /* webhooks/{id} */
    R_LIST,   /* apps/{app}/webhooks */
};

/* Which route `rest` is; *arg points at the webhook id or the app id (`arg_len` bytes). */
static enum route route_of(const char *rest, const char **arg, size_t *arg_len)
{
    static const char tail[] = "/webhooks";
    if (strcmp(rest, "webhooks") == 0) {
        return R_CREATE;
    }
    if (strncmp(rest, "webhooks/", 9) == 0 && rest[9] && !strchr(rest + 9, '/')) {
        *arg = rest + 9;
        *arg_len = strlen(rest + 9);
        return R_ONE;
    }
    if (strncmp(rest, "apps/", 5) == 0) {
        const char *app = rest + 5, *slash = strchr(app, '/');
        if (slash && slash > app && strcmp(slash, tail) == 0) {
            *arg = app;
            *arg_len = (size_t)(slash - app);
            return R_LIST;
        }
    }
    return R_NONE;
}

bool sim_webhooks_api_path(const char *rest)
{
    const char *arg;
    size_t len;
    return route_of(rest, &arg, &len) != R_NONE;
}

static void answer_error(struct sim_answer *a, const struct sim_webhook_error *err)
{
    char message[sizeof(err->field) + sizeof(err->why) + 8];
    if (err->status != 400 || !err->field[0]) {
        sim_answer_error(a, err->status, err->why, NULL, NULL);
        return;
    }
    snprintf(message, sizeof(message), "%s: %s", err->field, err->why);
    sim_answer_error(a, 400, message, err->field, err->why);
}

/* The request's JSON body (new), or NULL after answering 400. */
static json_t *json_body(const struct sim_request *rq, struct sim_answer *a)
{
    json_error_t jerr;
    if (!sim_api_is_json_type(rq->content_type)) {
        sim_answer_error(a, 400, "Content-Type must be application/json", NULL, NULL);
        return NULL;
    }
    json_t *body =
        json_loadb(rq->body ? rq->body : "", rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        char message[256];
        snprintf(message, sizeof(message), "Invalid JSON payload received: %s", jerr.text);
        sim_answer_error(a, 400, message, NULL, NULL);
    }
    return body;
}

/* Gathers the update_mask of a query into "a,b,c": the .NET SDK sends one comma-separated
 * value, Node repeats the parameter, an older spec called it update_mask.paths (fact 6.1). A
 * percent-encoded comma is taken as a comma. */
static void read_mask(const char *query, char *mask, size_t len)
{
    size_t pos = 0;
    for (const char *p = query; *p;) {
        size_t n = strcspn(p, "&");
        size_t skip = strncmp(p, "update_mask=", 12) == 0         ? 12
                      : strncmp(p, "update_mask.paths=", 18) == 0 ? 18
                                                                  : 0;
        if (skip && pos > 0 && pos + 1 < len) {
            mask[pos++] = ',';
        }
        for (size_t i = skip; skip && i < n && pos + 1 < len; i++) {
            if (p[i] == '%' && i + 2 < n && p[i + 1] == '2' &&
                (p[i + 2] == 'C' || p[i + 2] == 'c')) {
                mask[pos++] = ',';
                i += 2;
            } else if (p[i] != ' ') {
                mask[pos++] = p[i];
            }
        }
        p += n;
        p += *p == '&';
    }
    mask[pos] = '\0';
}

static void create(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    struct sim_webhook_error err;
    char id[SIM_ULID_LEN + 1];
    json_t *body = json_body(rq, a);
    if (!body) {
        return;
    }
    sim_ids_ulid(&s->ids, rq->now_ms, id);
    json_t *wh = sim_webhooks_create(s->webhooks, body, s->cfg.app_id, id, &err);
    json_decref(body);
    if (wh) {
        sim_answer_json(a, 200, wh);
    } else {
        answer_error(a, &err);
    }
}

static void update(struct sim *s, const struct sim_request *rq, const char *id,
                   struct sim_answer *a)
{
    struct sim_webhook_error err;
    char mask[MASK_MAX];
    json_t *body = json_body(rq, a);
    if (!body) {
        return;
    }
    read_mask(rq->query, mask, sizeof(mask));
    json_t *wh = sim_webhooks_update(s->webhooks, id, body, mask, s->cfg.app_id, &err);
    json_decref(body);
    if (wh) {
        sim_answer_json(a, 200, wh);
    } else {
        answer_error(a, &err);
    }
}

static void one(struct sim *s, const struct sim_request *rq, const char *id, struct sim_answer *a)
{
    if (rq->method == SIM_PATCH) {
        update(s, rq, id, a);
        return;
    }
    if (rq->method == SIM_DELETE) {
        if (sim_webhooks_delete(s->webhooks, id)) {
            sim_answer_text(a, 200, "{}");
        } else {
            sim_answer_error(a, 404, "Webhook not found", NULL, NULL);
        }
        return;
    }
    json_t *wh = sim_webhooks_get(s->webhooks, id);
    if (wh) {
        sim_answer_json(a, 200, wh);
    } else {
        sim_answer_error(a, 404, "Webhook not found", NULL, NULL);
    }
}

void sim_webhooks_api_handle(struct sim *s, const struct sim_request *rq, const char *rest,
                             bool project_ok, struct sim_answer *a)
{
    const char *arg = NULL;
    size_t arg_len = 0;
    char id[128];
    enum route route = route_of(rest, &arg, &arg_len);
    if (route == R_NONE) {
        /* Not a path of this API (sim_api.c sends only those here): no method is allowed, and
         * R_ONE's branch below would look up a webhook by an id it never found. */
        sim_answer_error(a, 404, "Not Found: no such method or path", NULL, NULL);
        return;
    }
    bool allowed = route == R_CREATE ? rq->method == SIM_POST
                   : route == R_LIST ? rq->method == SIM_GET
                                     : rq->method == SIM_GET || rq->method == SIM_PATCH ||
                                           rq->method == SIM_DELETE;
    if (!allowed) {
        sim_api_method_not_allowed(a, route == R_CREATE ? "POST"
                                      : route == R_LIST ? "GET"
                                                        : "GET, PATCH, DELETE");
        return;
    }
    if (!sim_api_authorised(s, rq, a)) {
        return;
    }
    if (!project_ok) {
        sim_answer_error(a, 404, "Project not found, or not in this region", NULL, NULL);
        return;
    }
    if (route == R_CREATE) {
        create(s, rq, a);
        return;
    }
    if (route == R_LIST) {
        if (arg_len != strlen(s->cfg.app_id) || memcmp(arg, s->cfg.app_id, arg_len) != 0) {
            sim_answer_error(a, 404, "App not found", NULL, NULL);
            return;
        }
        sim_answer_json(a, 200, json_pack("{s:o}", "webhooks", sim_webhooks_list(s->webhooks)));
        return;
    }
    if (arg_len >= sizeof(id)) {
        sim_answer_error(a, 404, "Webhook not found", NULL, NULL);
        return;
    }
    memcpy(id, arg, arg_len);
    id[arg_len] = '\0';
    one(s, rq, id, a);
}
