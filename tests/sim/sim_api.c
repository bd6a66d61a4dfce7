/* The Sinch endpoints: the OAuth2 token endpoint (fact 2.1), messages:send (facts 3.1-3.8) and
 * the app read (fact 1.2), with Sinch's auth rules (facts 2.1-2.3) and error shapes (fact 4);
 * an accepted send hands its delivery-report plan to the deliverer, and the webhook management
 * paths go to sim_webhooks_api.c. Called by sim_http.c once a request has fully arrived and no
 * fault replaced its answer. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define V1_PREFIX "/v1/projects/"

/* A path under /v1/projects/{project}/ that we serve. */
struct v1_route {
    enum sim_endpoint ep;
    const char *project; /* points into the path, `project_len` bytes */
    size_t project_len;
    const char *app;  /* NUL-terminated (the path's tail) for SIM_EP_APP */
    const char *rest; /* the path after the project and its slash */
};

enum auth_result {
    AUTH_OK,
    AUTH_EXPIRED, /* a bearer token of ours past its expiry */
    AUTH_BAD,     /* unknown token, wrong key, no credentials */
};

static bool parse_v1(const char *path, struct v1_route *r)
{
    *r = (struct v1_route){.ep = SIM_EP_OTHER};
    if (strncmp(path, V1_PREFIX, sizeof(V1_PREFIX) - 1) != 0) {
        return false;
    }
    const char *project = path + sizeof(V1_PREFIX) - 1;
    const char *slash = strchr(project, '/');
    if (!slash || slash == project) {
        return false;
    }
    r->project = project;
    r->project_len = (size_t)(slash - project);
    const char *rest = slash + 1;
    r->rest = rest;
    if (strcmp(rest, "messages:send") == 0) {
        r->ep = SIM_EP_SEND;
        return true;
    }
    if (sim_webhooks_api_path(rest)) {
        r->ep = SIM_EP_WEBHOOKS;
        return true;
    }
    if (strncmp(rest, "apps/", 5) == 0 && rest[5] && !strchr(rest + 5, '/')) {
        r->ep = SIM_EP_APP;
        r->app = rest + 5;
        return true;
    }
    return false;
}

enum sim_endpoint sim_api_endpoint(const char *path)
{
    struct v1_route r;
    if (strcmp(path, "/oauth2/token") == 0) {
        return SIM_EP_TOKEN;
    }
    return parse_v1(path, &r) ? r.ep : SIM_EP_OTHER;
}

/* "Bearer xyz" -> "xyz" when the scheme matches (case-insensitively, fact 2.1), else NULL. */
static const char *credentials(const char *authorization, const char *scheme)
{
    size_t n = strlen(scheme);
    if (strncasecmp(authorization, scheme, n) != 0 || authorization[n] != ' ') {
        return NULL;
    }
    authorization += n;
    while (*authorization == ' ') {
        authorization++;
    }
    return authorization;
}

/* Basic credentials compare as base64 text; trailing '=' padding is optional on both sides. */
static bool basic_matches(const struct sim *s, const char *b64)
{
    size_t n = strlen(b64);
    while (n > 0 && (b64[n - 1] == '=' || b64[n - 1] == ' ')) {
        n--;
    }
    return n == strlen(s->basic_b64) && memcmp(b64, s->basic_b64, n) == 0;
}

static enum auth_result check_auth(struct sim *s, const struct sim_request *rq)
{
    const char *cred = credentials(rq->authorization, "Bearer");
    if (cred) {
        switch (sim_tokens_check(s->tokens, cred, strlen(cred), rq->now_ms / 1000)) {
        case SIM_TOKEN_VALID:
            return AUTH_OK;
        case SIM_TOKEN_EXPIRED:
            return AUTH_EXPIRED;
        case SIM_TOKEN_UNKNOWN:
            return AUTH_BAD;
        }
    }
    cred = credentials(rq->authorization, "Basic");
    return cred && basic_matches(s, cred) ? AUTH_OK : AUTH_BAD;
}

/* Answers 401 and returns false unless the request may use the API. The SDKs refresh their
 * token and retry once when WWW-Authenticate contains "expired" (fact 2.2), so only an expired
 * token of ours says so. */
bool sim_api_authorised(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    enum auth_result res = check_auth(s, rq);
    if (res == AUTH_OK) {
        return true;
    }
    if (res == AUTH_EXPIRED) {
        sim_answer_error(a, 401, "Request had invalid authentication credentials: token expired",
                         NULL, NULL);
        snprintf(a->www_authenticate, sizeof(a->www_authenticate), "%s",
                 "Bearer error=\"invalid_token\", error_description=\"token expired\"");
    } else {
        sim_answer_error(a, 401, "Request had invalid authentication credentials", NULL, NULL);
        snprintf(a->www_authenticate, sizeof(a->www_authenticate), "%s",
                 "Bearer error=\"invalid_token\"");
    }
    return false;
}

void sim_api_method_not_allowed(struct sim_answer *a, const char *allow)
{
    sim_answer_error(a, 405, "Method Not Allowed", NULL, NULL);
    a->allow = allow;
}

static bool project_is_ours(const struct sim *s, const struct v1_route *r)
{
    return r->project_len == strlen(s->cfg.project_id) &&
           memcmp(r->project, s->cfg.project_id, r->project_len) == 0;
}

static void project_not_found(struct sim_answer *a)
{
    sim_answer_error(a, 404, "Project not found, or not in this region", NULL, NULL);
}

/* ---- POST /oauth2/token ---- */

static void oauth_error(struct sim_answer *a, int status, const char *error, const char *why)
{
    sim_answer_json(a, status, json_pack("{s:s, s:s}", "error", error, "error_description", why));
}

/* True when the form body has grant_type=client_credentials among its pairs. */
static bool grant_is_client_credentials(const char *body, size_t len)
{
    static const char want[] = "grant_type=client_credentials";
    const char *p = body, *end = body + len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t n = (size_t)((amp ? amp : end) - p);
        if (n == sizeof(want) - 1 && memcmp(p, want, n) == 0) {
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

static void handle_token(struct sim *s, const struct sim_request *rq, struct sim_answer *a)
{
    char token[SIM_TOKEN_MAX], body[SIM_TOKEN_MAX + 128];
    const char *cred = credentials(rq->authorization, "Basic");

    if (rq->method != SIM_POST) {
        sim_api_method_not_allowed(a, "POST");
        return;
    }
    if (!cred || !basic_matches(s, cred)) {
        oauth_error(a, 401, "invalid_client",
                    "Client authentication failed: send HTTP Basic key_id:key_secret");
        return;
    }
    if (!rq->body || !grant_is_client_credentials(rq->body, rq->body_len)) {
        oauth_error(a, 400, "unsupported_grant_type",
                    "The form body must carry grant_type=client_credentials");
        return;
    }
    if (!sim_tokens_issue(s->tokens, &s->ids, rq->now_ms / 1000, s->cfg.token_ttl, token)) {
        oauth_error(a, 500, "server_error", "out of memory");
        return;
    }
    s->stats.tokens_issued++;
    snprintf(
        body, sizeof(body),
        "{\"access_token\":\"%s\",\"expires_in\":%ld,\"scope\":\"\",\"token_type\":\"bearer\"}",
        token, s->cfg.token_ttl);
    sim_answer_text(a, 200, body);
}

/* ---- POST /v1/projects/{project}/messages:send ---- */

/* "application/json", optionally with parameters ("; charset=utf-8"). */
bool sim_api_is_json_type(const char *content_type)
{
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;
    return strncasecmp(content_type, json, n) == 0 &&
           (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

/* Whether an accepted send gets delivery reports: some target takes MESSAGE_DELIVERY (only then,
 * so tests without webhooks see no traffic), and neither --no-reports nor mode "none" says no. */
static bool reports_wanted(const struct sim *s)
{
    return !s->cfg.no_reports && s->reports.mode != SIM_REPORTS_NONE &&
           sim_webhooks_subscribed(s->webhooks, SIM_TRIGGER_MESSAGE_DELIVERY);
}

/* Checks a send. When its delivery reports will be played back, the parsed body comes back in
 * *parsed (new) for the report plan; otherwise the validator parses it alone, as before, and
 * a send costs nothing more than it did. */
static bool send_checks(struct sim *s, const struct sim_request *rq, const struct v1_route *r,
                        struct sim_answer *a, json_t **parsed)
{
    struct sim_verdict v;
    const char *text = rq->body ? rq->body : "";

    if (!sim_api_authorised(s, rq, a)) {
        return false;
    }
    if (!project_is_ours(s, r)) {
        project_not_found(a);
        return false;
    }
    if (!sim_api_is_json_type(rq->content_type)) {
        sim_answer_error(a, 400, "Content-Type must be application/json", NULL, NULL);
        return false;
    }
    if (reports_wanted(s)) {
        *parsed = json_loadb(text, rq->body_len, JSON_REJECT_DUPLICATES, NULL);
    }
    int status = *parsed ? sim_validate_send(*parsed, &s->app, &v)
                         : sim_validate_send_text(text, rq->body_len, &s->app, &v);
    if (status == 200) {
        return true;
    }
    if (v.status == 404) {
        sim_answer_error(a, 404, v.description, NULL, NULL);
    } else {
        char message[SIM_FIELD_MAX + SIM_WHY_MAX + 8];
        snprintf(message, sizeof(message), "%s%s%s", v.field, v.field[0] ? ": " : "",
                 v.description);
        sim_answer_error(a, 400, message, v.field[0] ? v.field : NULL, v.description);
    }
    return false;
}

static void handle_send(struct sim *s, const struct sim_request *rq, const struct v1_route *r,
                        struct sim_answer *a, struct sim_record *rec)
{
    char body[128], when[SIM_TIME_LEN + 1];
    json_t *parsed = NULL;

    if (rq->method != SIM_POST) {
        sim_api_method_not_allowed(a, "POST");
        return;
    }
    if (!send_checks(s, rq, r, a, &parsed)) {
        s->stats.sends_rejected++;
        json_decref(parsed);
        return;
    }
    sim_ids_ulid(&s->ids, rq->now_ms, rec->message_id);
    sim_time_rfc3339(rq->now_ms, when);
    snprintf(body, sizeof(body), "{\"message_id\":\"%s\",\"accepted_time\":\"%s\"}",
             rec->message_id, when);
    sim_answer_text(a, 200, body);
    s->stats.sends_accepted++;
    if (parsed) {
        /* Out of memory only loses the reports; the send was accepted all the same. */
        struct sim_report_plan *plan =
            sim_report_plan_new(parsed, rec->message_id, &s->reports, s->cfg.channels[0]);
        if (plan) {
            sim_deliver_report(s->deliver, plan, rq->now_ms);
        }
        json_decref(parsed);
    }
}

/* ---- GET /v1/projects/{project}/apps/{app} ---- */

static void handle_app(struct sim *s, const struct sim_request *rq, const struct v1_route *r,
                       struct sim_answer *a)
{
    if (rq->method != SIM_GET) {
        sim_api_method_not_allowed(a, "GET");
        return;
    }
    if (!sim_api_authorised(s, rq, a)) {
        return;
    }
    if (!project_is_ours(s, r)) {
        project_not_found(a);
        return;
    }
    if (strcmp(r->app, s->cfg.app_id) != 0) {
        sim_answer_error(a, 404, "App not found", NULL, NULL);
        return;
    }
    json_t *credentials_list = json_array();
    for (size_t i = 0; i < s->cfg.n_channels; i++) {
        json_array_append_new(credentials_list,
                              json_pack("{s:s, s:{s:s, s:s}}", "channel", s->cfg.channels[i],
                                        "state", "status", "ACTIVE", "description", ""));
    }
    sim_answer_json(
        a, 200,
        json_pack("{s:s, s:s, s:o, s:s, s:{s:i, s:i, s:i}, s:{s:s, s:i}, s:{s:s, s:i}, s:s, "
                  "s:{s:i, s:i}}",
                  "id", s->cfg.app_id, "display_name", "sinch-sim", "channel_credentials",
                  credentials_list, "conversation_metadata_report_view", "NONE", "rate_limits",
                  "inbound", 25, "outbound", 25, "webhooks", 25, "retention_policy",
                  "retention_type", "MESSAGE_EXPIRE_POLICY", "ttl_days", 180,
                  "dispatch_retention_policy", "retention_type", "MESSAGE_EXPIRE_POLICY",
                  "ttl_days", 0, "processing_mode", "DISPATCH", "queue_stats", "outbound_size", 0,
                  "outbound_limit", 500000));
}

/* A /v1 request goes where its path leads, as parse_v1() read it: `ep` only says whether to
 * look (the caller's sim_api_endpoint() of the same path, made for the faults and the record). */
void sim_api_handle(struct sim *s, enum sim_endpoint ep, const struct sim_request *rq,
                    struct sim_answer *a, struct sim_record *rec)
{
    struct v1_route r;

    if (ep == SIM_EP_TOKEN) {
        handle_token(s, rq, a);
    } else if (ep == SIM_EP_OTHER || !parse_v1(rq->path, &r)) {
        sim_answer_error(a, 404, "Not Found: no such method or path", NULL, NULL);
    } else if (r.ep == SIM_EP_WEBHOOKS) {
        sim_webhooks_api_handle(s, rq, r.rest, project_is_ours(s, &r), a);
    } else if (r.ep == SIM_EP_SEND) {
        handle_send(s, rq, &r, a, rec);
    } else {
        handle_app(s, rq, &r, a);
    }
}

/* OAuth error codes (RFC 6749 5.2) for the token endpoint's faults. */
static const char *oauth_code(int status)
{
    if (status == 401) {
        return "invalid_client";
    }
    if (status == 503) {
        return "temporarily_unavailable";
    }
    if (status == 429) {
        return "rate_limited";
    }
    return status >= 500 ? "server_error" : "invalid_request";
}

void sim_api_fault_body(enum sim_endpoint ep, int status, struct sim_answer *a)
{
    if (status < 400) {
        sim_answer_text(a, status, "{}");
    } else if (ep == SIM_EP_TOKEN) {
        oauth_error(a, status, oauth_code(status), sim_reason_phrase(status));
    } else {
        sim_answer_error(a, status, sim_reason_phrase(status), NULL, NULL);
    }
}
