/* The running bridge: every module, created by bridge/main.c in order and freed in reverse.
 * bridge/main.c wires the threads' events into loop posts; bridge/app_status.c answers what the
 * bridge says about itself (/readyz, /metrics, P/bridge/health); bridge/app_ops.c runs the
 * operations (control requests, SIGHUP reload, Home Assistant discovery). Only these three
 * files know both the core and the adapters. Thread: loop, unless a function says otherwise. */
#ifndef SB_BRIDGE_APP_H
#define SB_BRIDGE_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapters/mqtt.h"
#include "adapters/sinch.h"
#include "adapters/store.h"
#include "adapters/webhook.h"
#include "bridge/config.h"
#include "bridge/control.h"
#include "bridge/discovery.h"
#include "bridge/inbound.h"
#include "bridge/loop.h"
#include "bridge/outbox.h"

struct app {
    struct sb_config *cfg;   /* SIGHUP changes its reloadable settings in place */
    const char *config_file; /* --config FILE, or NULL */
    struct sb_store *store;
    struct sb_loop *loop;
    struct sb_sinch *sinch;
    struct sb_outbox *outbox;
    struct sb_inbound *inbound;
    struct sb_webhook *webhook;
    struct sb_mqtt *mqtt;
    struct sb_control *control;
    struct sb_timer *stop_timer;
    struct sb_timer *prune_timer;
    struct sb_timer *health_timer;
    struct sb_discovery discovery; /* what was last published, to retract removed aliases */
    int64_t started_ms;
    /* "sent today" (app_status.c): the store's count at the day's first health report, then
     * what the outbox counted since. Loop thread only. */
    int64_t sent_day;       /* local midnight of that day, wall ms; 0: not counted yet */
    int64_t sent_day_base;  /* the store's count then */
    uint64_t sent_day_mark; /* the outbox's sent counter then */
    char send_path[512];
    atomic_bool kick_pending;
    atomic_bool stopping;
    bool stopped;
    pthread_t signal_thread;
};

/* ---- app_status.c ---- */

/* GET /readyz and GET /metrics. */
void sb_app_http_ready(void *arg, struct sb_http_answer *ans);
void sb_app_http_metrics(void *arg, struct sb_http_answer *ans);
/* The P/bridge/health object (new reference), or NULL. */
json_t *sb_app_health(struct app *app);
/* The retained P/bridge/info payload (a new string), or NULL. Thread: any. */
char *sb_app_info(const struct sb_config *cfg, int64_t started_ms);

/* ---- app_ops.c ---- */

/* Creates the control plane and the health timer. */
enum sb_err sb_app_ops_start(struct app *app) SB_MUST_CHECK;
void sb_app_ops_free(struct app *app);
/* The MQTT session came up: discovery (when on) and a first health publish. */
void sb_app_ops_on_connected(struct app *app);
/* A message on P/bridge/request/<action> or Home Assistant's status topic. */
void sb_app_ops_control(struct app *app, const char *topic, const char *payload, size_t len);
/* SIGHUP: reads the configuration again and applies what can change while running; a
 * configuration that does not load changes nothing. Returns the control answer's data
 * ({"changed": [...], "restart_needed": [...]}) or NULL with the reason in why. */
json_t *sb_app_reload(struct app *app, char *why, size_t why_len);

#endif
