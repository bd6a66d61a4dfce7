/* The bridge's operations: control requests (P/bridge/request/<action>), the SIGHUP reload,
 * Home Assistant discovery (published at every connection, when HA says it is online, on
 * request and after a reload; aliases removed by a reload are retracted with an empty retained
 * config), and the P/bridge/health publish every BRIDGE_HEALTH_INTERVAL seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/app.h"
#include "bridge/log.h"

#define TOPIC_MAX 512

extern char **environ;

static enum sb_err publish(struct app *app, const char *topic, const char *payload, size_t len,
                           bool retain)
{
    if (!app->mqtt) {
        return SB_E_STOPPED; /* shutting down */
    }
    return sb_mqtt_publish(app->mqtt, topic, payload, len, retain, NULL, 0, 0);
}

/* ---- Home Assistant discovery ---- */

static enum sb_err publish_discovery(struct app *app, char *why, size_t why_len)
{
    struct sb_discovery fresh = {0};
    enum sb_err err = SB_OK;

    if (!app->mqtt || !sb_mqtt_connected(app->mqtt)) {
        /* Published at the next connection; what to retract is remembered until then. */
        snprintf(why, why_len, "the MQTT broker is not connected");
        return SB_E_MQTT;
    }
    if (sb_discovery_build(app->cfg, &fresh) != SB_OK) {
        snprintf(why, why_len, "out of memory");
        return SB_E_NOMEM;
    }
    for (size_t i = 0; err == SB_OK && i < app->discovery.n; i++) {
        if (!sb_discovery_has(&fresh, app->discovery.v[i].topic)) {
            /* An empty retained config removes the entity from HA and the broker. */
            err = publish(app, app->discovery.v[i].topic, "", 0, true);
        }
    }
    for (size_t i = 0; err == SB_OK && i < fresh.n; i++) {
        err = publish(app, fresh.v[i].topic, fresh.v[i].payload, strlen(fresh.v[i].payload), true);
    }
    if (err != SB_OK) {
        snprintf(why, why_len, "publishing failed: %s", sb_err_name(err));
        sb_discovery_clear(&fresh);
        return err;
    }
    sb_discovery_clear(&app->discovery);
    app->discovery = fresh;
    sb_log(SB_LOG_INFO, "ops", "Home Assistant discovery published: %zu entities", fresh.n);
    return SB_OK;
}

/* ---- health ---- */

static void publish_health(struct app *app)
{
    char topic[TOPIC_MAX];
    json_t *h = sb_app_health(app);
    char *text = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(h);
    snprintf(topic, sizeof(topic), "%s/bridge/health", app->cfg->topic_prefix);
    if (text && publish(app, topic, text, strlen(text), false) != SB_OK) {
        sb_log(SB_LOG_DEBUG, "ops", "health not published: MQTT is down");
    }
    free(text);
}

static void arm_health(struct app *app)
{
    if (app->cfg->health_interval > 0) {
        sb_timer_arm(app->health_timer, app->cfg->health_interval * 1000);
    } else {
        sb_timer_cancel(app->health_timer);
    }
}

static void health_due(void *arg)
{
    struct app *app = arg;
    publish_health(app);
    arm_health(app);
}

/* ---- reload ---- */

/* "A, B" -> ["A", "B"] */
static json_t *names_array(const char *list)
{
    json_t *a = json_array();
    const char *p = list;

    while (a && *p) {
        const char *end = strstr(p, ", ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(a, json_stringn(p, n));
        p += n + (end ? 2 : 0);
    }
    return a;
}

json_t *sb_app_reload(struct app *app, char *why, size_t why_len)
{
    struct sb_config *fresh = NULL;
    struct sb_config_diff diff;
    char load_why[512];
    char discovery_why[128];
    char *info;

    if (sb_config_load(app->config_file, environ, &fresh, load_why, sizeof(load_why)) != SB_OK) {
        snprintf(why, why_len, "the configuration did not load, nothing changed: %s", load_why);
        sb_log(SB_LOG_ERROR, "ops", "reload: %s", why);
        return NULL;
    }
    sb_config_reload(app->cfg, fresh, &diff);
    sb_config_free(fresh); /* now holding the replaced values */
    sb_log_setup(app->cfg->log_level, app->cfg->log_format);
    sb_outbox_reconfigure(app->outbox);
    arm_health(app);
    info = sb_app_info(app->cfg, app->started_ms);
    if (!info || (app->mqtt && sb_mqtt_set_info(app->mqtt, info) != SB_OK)) {
        sb_log(SB_LOG_WARN, "ops", "reload: P/bridge/info not updated");
    }
    free(info);
    if (app->cfg->ha_discovery && strstr(diff.changed, "BRIDGE_CONTACTS") &&
        publish_discovery(app, discovery_why, sizeof(discovery_why)) != SB_OK) {
        sb_log(SB_LOG_WARN, "ops", "reload: discovery not published yet: %s", discovery_why);
    }
    sb_log(SB_LOG_NOTICE, "ops", "reloaded%s%s%s%s", diff.changed[0] ? ": " : ", nothing changed",
           diff.changed, diff.restart[0] ? "; these need a restart and keep their value: " : "",
           diff.restart);
    return json_pack("{s:o,s:o}", "changed", names_array(diff.changed), "restart_needed",
                     names_array(diff.restart));
}

/* ---- control requests ---- */

static json_t *op_health(void *ctx)
{
    return sb_app_health(ctx);
}

static enum sb_err op_discovery(void *ctx, char *why, size_t why_len)
{
    return publish_discovery(ctx, why, why_len);
}

static json_t *op_reload(void *ctx, char *why, size_t why_len)
{
    return sb_app_reload(ctx, why, why_len);
}

static enum sb_err op_publish(void *ctx, const char *topic, const char *payload, size_t len)
{
    return publish(ctx, topic, payload, len, false);
}

void sb_app_ops_control(struct app *app, const char *topic, const char *payload, size_t len)
{
    char prefix[TOPIC_MAX];
    size_t n =
        (size_t)snprintf(prefix, sizeof(prefix), "%s/bridge/request/", app->cfg->topic_prefix);

    if (!app->mqtt) {
        return; /* arrived as the bridge stopped: no answer can go out */
    }
    if (strncmp(topic, prefix, n) == 0) {
        sb_control_request(app->control, topic + n, payload, len);
        return;
    }
    /* Home Assistant's birth message: it (re)started and needs the configs again. */
    if (app->cfg->ha_discovery && len == 6 && memcmp(payload, "online", 6) == 0) {
        char why[128];
        sb_log(SB_LOG_NOTICE, "ops", "Home Assistant is online: publishing discovery");
        if (publish_discovery(app, why, sizeof(why)) != SB_OK) {
            sb_log(SB_LOG_WARN, "ops", "discovery: %s", why);
        }
    }
}

void sb_app_ops_on_connected(struct app *app)
{
    char why[128];

    if (!app->mqtt) {
        return;
    }
    if (app->cfg->ha_discovery && publish_discovery(app, why, sizeof(why)) != SB_OK) {
        sb_log(SB_LOG_WARN, "ops", "discovery: %s", why);
    }
    if (app->cfg->health_interval > 0) {
        publish_health(app);
    }
}

enum sb_err sb_app_ops_start(struct app *app)
{
    struct sb_control_ops ops = {
        .health = op_health,
        .resend_discovery = op_discovery,
        .reload = op_reload,
        .publish = op_publish,
        .ctx = app,
    };

    if (sb_control_new(app->cfg, app->store, &ops, &app->control) != SB_OK ||
        sb_timer_new(app->loop, health_due, app, &app->health_timer) != SB_OK) {
        return SB_E_NOMEM;
    }
    arm_health(app);
    return SB_OK;
}

void sb_app_ops_free(struct app *app)
{
    sb_control_free(app->control);
    app->control = NULL;
    sb_timer_free(app->health_timer);
    app->health_timer = NULL;
    sb_discovery_clear(&app->discovery);
}
