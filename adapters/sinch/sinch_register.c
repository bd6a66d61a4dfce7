/* BRIDGE_REGISTER_WEBHOOK: the app's webhook for this bridge, created once and updated on every
 * start (facts 6.1 and 6.2): list the app's webhooks, PATCH the one whose target is ours, POST a
 * new one when none is. Blocking, on the main thread before the loop runs. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/sinch.h"
#include "adapters/sinch_http_internal.h"
#include "bridge/log.h"

/* Every trigger the bridge publishes. Left out: MESSAGE_SUBMIT (a second callback for every
 * send), and the paid or "to be confirmed" ones (SMART_CONVERSATION, the redaction copy of
 * inbound messages, RECORD_NOTIFICATION). */
static const char *const triggers[] = {
    "MESSAGE_INBOUND",
    "MESSAGE_DELIVERY",
    "EVENT_INBOUND",
    "EVENT_DELIVERY",
    "CONVERSATION_START",
    "CONVERSATION_STOP",
    "CONVERSATION_DELETE",
    "CONTACT_CREATE",
    "CONTACT_DELETE",
    "CONTACT_MERGE",
    "CONTACT_UPDATE",
    "CONTACT_IDENTITIES_DUPLICATION",
    "CAPABILITY",
    "OPT_IN",
    "OPT_OUT",
    "CHANNEL_EVENT",
    "UNSUPPORTED",
};

/* The webhook body: target, type, triggers, secret (and app_id when creating). */
static char *webhook_body(const struct sb_config *cfg, const char *target, bool create)
{
    json_t *o = json_object();
    json_t *t = json_array();
    char *text;

    for (size_t i = 0; i < sizeof(triggers) / sizeof(triggers[0]); i++) {
        json_array_append_new(t, json_string(triggers[i]));
    }
    if (create) {
        json_object_set_new(o, "app_id", json_string(cfg->app_id));
    }
    json_object_set_new(o, "target", json_string(target));
    json_object_set_new(o, "target_type", json_string("HTTP"));
    json_object_set_new(o, "triggers", t);
    if (cfg->webhook_secret) {
        json_object_set_new(o, "secret", json_string(cfg->webhook_secret));
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* The id of the app's webhook whose target is `target` (new string), or NULL. */
static char *find_webhook(const char *body, size_t len, const char *target)
{
    json_t *root = json_loadb(body ? body : "", body ? len : 0, 0, NULL);
    json_t *hooks = json_object_get(root, "webhooks");
    json_t *h;
    size_t i;
    char *id = NULL;

    json_array_foreach(hooks, i, h)
    {
        const char *t = json_string_value(json_object_get(h, "target"));
        const char *hid = json_string_value(json_object_get(h, "id"));
        if (t && hid && strcmp(t, target) == 0) {
            id = strdup(hid);
            break;
        }
    }
    json_decref(root);
    return id;
}

enum sb_err sb_sinch_register_webhook(const struct sb_config *cfg, const char *target, char *why,
                                      size_t why_len)
{
    char errbuf[CURL_ERROR_SIZE];
    struct sb_sinch_hdrs hd;
    struct sb_sinch_buf resp = {0};
    char *token = NULL, *id = NULL, *body = NULL, *url = NULL;
    enum sb_err err = SB_E_NOMEM;
    long status = 0;
    CURL *e = NULL;
    CURLcode rc;
    size_t url_len = strlen(cfg->api_url) + strlen(cfg->project_id) + strlen(cfg->app_id) + 128;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(why, why_len, "libcurl failed to initialise");
        return SB_E_BUG;
    }
    if (!(e = curl_easy_init()) || !(url = malloc(url_len))) {
        goto out;
    }
    if (cfg->auth == SB_AUTH_OAUTH && (err = sb_sinch_sync_token(e, cfg, &token, why, why_len))) {
        goto out;
    }
    /* Project and app ids are [A-Za-z0-9._-] (config.c checks): nothing to escape. */
    snprintf(url, url_len, "%s/v1/projects/%s/apps/%s/webhooks", cfg->api_url, cfg->project_id,
             cfg->app_id);
    rc = sb_sinch_sync_request(e, cfg, "GET", url, NULL, false, token, &resp, &hd, errbuf, &status);
    if (rc != CURLE_OK || status != 200) {
        snprintf(why, why_len, "listing the app's webhooks: %s",
                 rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "HTTP error");
        err = rc != CURLE_OK ? sb_sinch_curl_err(rc) : sb_sinch_status_err(status);
        goto out;
    }
    id = find_webhook(resp.data, resp.len, target);
    if (!(body = webhook_body(cfg, target, id == NULL))) {
        err = SB_E_NOMEM;
        goto out;
    }
    if (id) {
        snprintf(url, url_len,
                 "%s/v1/projects/%s/webhooks/%s?update_mask=target,target_type,"
                 "triggers%s",
                 cfg->api_url, cfg->project_id, id, cfg->webhook_secret ? ",secret" : "");
    } else {
        snprintf(url, url_len, "%s/v1/projects/%s/webhooks", cfg->api_url, cfg->project_id);
    }
    rc = sb_sinch_sync_request(e, cfg, id ? "PATCH" : "POST", url, body, false, token, &resp, &hd,
                               errbuf, &status);
    if (rc != CURLE_OK || status < 200 || status >= 300) {
        snprintf(why, why_len, "%s the webhook: %s%.160s", id ? "updating" : "creating",
                 rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "HTTP error: ",
                 rc != CURLE_OK ? "" : (resp.data ? resp.data : ""));
        err = rc != CURLE_OK ? sb_sinch_curl_err(rc) : sb_sinch_status_err(status);
        goto out;
    }
    sb_log(SB_LOG_NOTICE, "sinch", "webhook %s %s for %s", id ? id : "", id ? "updated" : "created",
           target);
    err = SB_OK;
out:
    if (err == SB_E_NOMEM && why_len > 0 && why[0] == '\0') {
        snprintf(why, why_len, "out of memory");
    }
    sb_sinch_wipe_free(body); /* it holds the webhook secret */
    free(resp.data);
    free(url);
    free(id);
    sb_sinch_wipe_free(token);
    curl_easy_cleanup(e);
    curl_global_cleanup();
    return err;
}
