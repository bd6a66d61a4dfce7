/* What the bridge says about itself: GET /readyz, GET /metrics (Prometheus text), the
 * P/bridge/health object and the retained P/bridge/info. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/app.h"
#include "bridge/health.h"
#include "bridge/log.h"

/* GET /readyz: ready when the broker is connected and the store takes writes. */
void sb_app_http_ready(void *arg, struct sb_http_answer *ans)
{
    struct app *app = arg;
    json_t *reasons = json_array();
    int64_t depth;

    if (!sb_mqtt_connected(app->mqtt)) {
        json_array_append_new(reasons, json_string("MQTT broker not connected"));
    }
    if (sb_store_depth(app->store, &depth) != SB_OK || sb_inbound_store_failing(app->inbound)) {
        json_array_append_new(reasons, json_string("store not writable"));
    }
    bool ready = json_array_size(reasons) == 0;
    json_t *o = json_pack("{s:b,s:o}", "ready", ready, "reasons", reasons);
    ans->status = ready ? 200 : 503;
    ans->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
}

void sb_app_http_metrics(void *arg, struct sb_http_answer *ans)
{
    struct app *app = arg;
    struct sb_outbox_stats st;
    int64_t depth = -1, inbox = -1;
    size_t len = 0;
    FILE *f = open_memstream(&ans->body, &len);

    if (!f) {
        ans->status = 500;
        return;
    }
    sb_outbox_stats(app->outbox, &st);
    if (sb_store_depth(app->store, &depth) != SB_OK || sb_store_inbox_depth(app->store, &inbox)) {
        sb_log(SB_LOG_WARN, "bridge", "metrics: the store did not answer");
    }
    const struct {
        const char *name, *type, *help;
        long long value;
    } rows[] = {
        {"commands_received_total", "counter", "Send commands taken from the store.",
         (long long)st.received},
        {"commands_sent_total", "counter", "Commands Sinch accepted.", (long long)st.sent},
        {"commands_failed_total", "counter", "Commands that ended on the error topic.",
         (long long)st.failed},
        {"retries_total", "counter", "Retries of requests to Sinch.", (long long)st.retried},
        {"outbox_depth", "gauge", "Commands stored and not finished.", (long long)depth},
        {"inbox_depth", "gauge", "Webhook events stored and not yet published.", (long long)inbox},
        {"mqtt_connected", "gauge", "1 while the MQTT session is up.",
         sb_mqtt_connected(app->mqtt) ? 1 : 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fprintf(f, "# HELP sinch_bridge_%s %s\n# TYPE sinch_bridge_%s %s\nsinch_bridge_%s %lld\n",
                rows[i].name, rows[i].help, rows[i].name, rows[i].type, rows[i].name,
                rows[i].value);
    }
    fprintf(f, "# HELP sinch_bridge_commands_failed_by_code_total Commands on the error topic, by "
               "code.\n# TYPE sinch_bridge_commands_failed_by_code_total counter\n");
    for (int i = 0; i < SB_OUTBOX_ERR_COUNT; i++) {
        fprintf(f, "sinch_bridge_commands_failed_by_code_total{code=\"%s\"} %llu\n",
                sb_outbox_error_name((enum sb_outbox_error)i), (unsigned long long)st.failed_by[i]);
    }
    static const double bounds[] = {SB_OUTBOX_LATENCY_BUCKETS};
    uint64_t cumulative = 0;
    fprintf(f, "# HELP sinch_bridge_sinch_latency_seconds Time Sinch took to answer a send.\n"
               "# TYPE sinch_bridge_sinch_latency_seconds histogram\n");
    for (int i = 0; i <= SB_OUTBOX_LATENCY_N; i++) {
        cumulative += st.latency[i];
        if (i < SB_OUTBOX_LATENCY_N) {
            fprintf(f, "sinch_bridge_sinch_latency_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
                    (unsigned long long)cumulative);
        } else {
            fprintf(f, "sinch_bridge_sinch_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cumulative);
        }
    }
    fprintf(f,
            "sinch_bridge_sinch_latency_seconds_sum %g\nsinch_bridge_sinch_latency_seconds_count "
            "%llu\n",
            st.latency_sum, (unsigned long long)st.latency_count);
    sb_inbound_metrics(app->inbound, f);
    fclose(f);
    ans->status = 200;
    ans->content_type = "text/plain; version=0.0.4";
}

char *sb_app_info(const struct sb_config *cfg, int64_t started_ms)
{
    char started[32];
    time_t now = (time_t)(started_ms / 1000);
    struct tm tm;
    json_t *contacts = json_array();
    char *text;

    gmtime_r(&now, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (size_t i = 0; i < cfg->n_contacts; i++) {
        json_array_append_new(contacts, json_string(cfg->contacts[i].alias));
    }
    json_t *info =
        json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:[s],s:s,s:o}", "api_version", 1, "version",
                  SB_VERSION, "started_at", started, "region", cfg->region, "project_id",
                  cfg->project_id, "app_id", cfg->app_id, "channels", cfg->default_channel,
                  "topic_prefix", cfg->topic_prefix, "contacts", contacts);
    text = info ? json_dumps(info, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(info);
    return text;
}

/* Local midnight today, in wall ms: "sent today" follows the clock of the bridge's host (TZ). */
static int64_t local_midnight_ms(int64_t now_ms)
{
    time_t now = (time_t)(now_ms / 1000);
    struct tm tm;

    localtime_r(&now, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}

/* Commands Sinch accepted since local midnight, -1 when the store cannot say. The store counts
 * once a day (and after a start), then the outbox's own counter carries it on: the store's count
 * visits each of the day's commands under the store's lock (95 ms for 120,000 of them, seconds
 * with a cold cache), which at every health report held up everything the store serves. */
static int64_t sent_today(struct app *app, int64_t now_ms, uint64_t sent)
{
    int64_t midnight = local_midnight_ms(now_ms);
    int64_t n;

    if (app->sent_day != midnight) {
        if (sb_store_count_sent_since(app->store, midnight, &n) != SB_OK) {
            return -1;
        }
        app->sent_day = midnight;
        app->sent_day_base = n;
        app->sent_day_mark = sent;
    }
    return app->sent_day_base + (int64_t)(sent - app->sent_day_mark);
}

json_t *sb_app_health(struct app *app)
{
    struct sb_sinch_stats ss;
    struct sb_health h = {0};
    int64_t now = sb_wall_ms();
    json_t *out;

    sb_sinch_stats(app->sinch, &ss);
    sb_outbox_stats(app->outbox, &h.outbox);
    h.uptime_s = (now - app->started_ms) / 1000;
    h.mqtt_up = sb_mqtt_connected(app->mqtt);
    h.oauth = app->cfg->auth == SB_AUTH_OAUTH;
    h.token_valid = ss.token_valid;
    h.sinch_last_status = ss.last_status;
    if (sb_store_depth(app->store, &h.outbox_depth) != SB_OK) {
        h.outbox_depth = -1;
    }
    if (sb_store_inbox_depth(app->store, &h.inbox_depth) != SB_OK) {
        h.inbox_depth = -1;
    }
    h.sent_today = sent_today(app, now, h.outbox.sent);
    h.webhooks = sb_inbound_results_json(app->inbound);
    out = sb_health_json(&h);
    json_decref(h.webhooks);
    return out;
}
