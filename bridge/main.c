/* sinch-bridge: reads the configuration, creates the modules in order (store, loop, Sinch
 * client, outbox, inbound, control plane, MQTT, listener), runs the loop, and frees them in
 * reverse. It wires paho's, curl's and the signal thread's events into loop posts; what the
 * bridge reports and its operations are in app_status.c and app_ops.c (include/bridge/app.h). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge/app.h"
#include "bridge/log.h"
#include "bridge/uuid.h"

#define STOP_TIMEOUT_MS 10000 /* SIGTERM: in-flight requests get this long to finish */
#define PRUNE_EVERY_MS  (3600 * 1000LL)
#define HISTORY_MS      (7LL * 24 * 3600 * 1000) /* finished commands are kept a week */

extern char **environ;

/* ---- from other threads to the loop ---- */

static void kick(void *arg)
{
    struct app *app = arg;
    atomic_store(&app->kick_pending, false);
    sb_outbox_kick(app->outbox);
}

static void request_kick(struct app *app)
{
    /* One kick per loop turn is enough: it loads every row committed before it runs. */
    if (!atomic_exchange(&app->kick_pending, true) && sb_loop_post(app->loop, kick, app) != SB_OK) {
        atomic_store(&app->kick_pending, false);
    }
}

/* paho's receive thread: the command is committed to the store before this returns, and only
 * then does paho send the broker its PUBACK. A store that fails holds the broker back instead
 * of losing the command: we wait and try again, and the broker keeps it meanwhile. */
static void on_mqtt_message(void *arg, const struct sb_mqtt_message *msg)
{
    struct app *app = arg;
    char gen_id[SB_UUID_LEN + 1];
    struct sb_store_command row = {
        .topic = msg->topic,
        .payload = msg->payload,
        .payload_len = msg->len,
        .response_topic = msg->response_topic,
        .correlation = msg->correlation,
        .correlation_len = msg->correlation_len,
        .gen_id = gen_id,
    };
    int64_t seq;
    unsigned failures = 0;

    sb_uuid_v4(gen_id);
    row.received_ms = sb_wall_ms();
    while (sb_store_put_command(app->store, &row, &seq) != SB_OK) {
        if (failures++ % 50 == 0) {
            sb_log(SB_LOG_ERROR, "bridge",
                   "cannot store a command from %s; holding it at the broker until the store "
                   "works again",
                   msg->topic);
        }
        if (atomic_load(&app->stopping)) {
            /* Returning would acknowledge a command we do not have. The broker still holds it
             * (no PUBACK yet); leave without one. */
            sb_log(SB_LOG_ERROR, "bridge", "stopping with the store failing: exiting now");
            _exit(1);
        }
        sb_sleep_ms(failures < 10 ? 10 : 200);
    }
    request_kick(app);
}

struct conn_post {
    struct app *app;
    bool up;
};

static void conn_changed(void *arg)
{
    struct conn_post *p = arg;
    sb_outbox_on_mqtt(p->app->outbox, p->up);
    sb_inbound_on_mqtt(p->app->inbound, p->up);
    if (p->up) {
        sb_app_ops_on_connected(p->app);
    }
    free(p);
}

static void on_mqtt_connection(void *arg, bool up)
{
    struct conn_post *p = malloc(sizeof(*p));
    if (p) {
        *p = (struct conn_post){arg, up};
        if (sb_loop_post(((struct app *)arg)->loop, conn_changed, p) != SB_OK) {
            free(p);
        }
    }
}

struct control_post {
    struct app *app;
    char *topic;
    char *payload;
    size_t len;
};

static void control_run(void *arg)
{
    struct control_post *p = arg;
    sb_app_ops_control(p->app, p->topic, p->payload, p->len);
    free(p->topic);
    free(p->payload);
    free(p);
}

/* paho's receive thread: a control request or Home Assistant's status. Not stored (a request
 * lost to a crash is asked again, like any request that got no answer); run on the loop. */
static void on_mqtt_control(void *arg, const struct sb_mqtt_message *msg)
{
    struct app *app = arg;
    struct control_post *p = calloc(1, sizeof(*p));

    if (p) {
        p->app = app;
        p->topic = strdup(msg->topic);
        p->payload = malloc(msg->len + 1);
        p->len = msg->len;
    }
    if (!p || !p->topic || !p->payload) {
        sb_log(SB_LOG_ERROR, "bridge", "out of memory taking a request on %s", msg->topic);
        if (p) {
            free(p->topic);
            free(p->payload);
            free(p);
        }
        return;
    }
    memcpy(p->payload, msg->payload, msg->len);
    p->payload[msg->len] = '\0';
    if (sb_loop_post(app->loop, control_run, p) != SB_OK) {
        free(p->topic);
        free(p->payload);
        free(p);
    }
}

struct pub_post {
    struct app *app;
    uint64_t tag;
    bool ok;
};

/* Both publish with a pointer as the tag: the outbox's jobs as they are, the inbound rows with
 * the low bit set (pointers are aligned, so it is free). */
static void pub_done(void *arg)
{
    struct pub_post *p = arg;
    if (p->tag & 1) {
        sb_inbound_on_published(p->app->inbound, p->tag, p->ok);
    } else {
        sb_outbox_on_published(p->app->outbox, p->tag, p->ok);
    }
    free(p);
}

static void on_mqtt_published(void *arg, uint64_t tag, bool ok)
{
    struct pub_post *p = malloc(sizeof(*p));
    if (!p) {
        /* The outcome stays OUTCOME in the store and is published again after a restart. */
        sb_log(SB_LOG_ERROR, "bridge", "out of memory tracking a publish");
        return;
    }
    *p = (struct pub_post){arg, tag, ok};
    if (sb_loop_post(((struct app *)arg)->loop, pub_done, p) != SB_OK) {
        free(p);
    }
}

struct result_post {
    struct app *app;
    struct sb_sinch_result *res;
};

static void sinch_done(void *arg)
{
    struct result_post *p = arg;
    struct sb_sinch_result *r = p->res;
    struct sb_outbox_result res = {
        .tag = r->tag,
        .err = r->err,
        .status = r->status,
        .body = r->body,
        .body_len = r->body_len,
        .retry_after_ms = r->retry_after_ms,
        .requests = r->requests,
        .seconds = r->seconds,
    };
    sb_outbox_on_result(p->app->outbox, &res);
    sb_sinch_result_free(r);
    free(p);
}

/* The curl thread. */
static void on_sinch_result(void *arg, struct sb_sinch_result *res)
{
    struct result_post *p = malloc(sizeof(*p));
    if (p) {
        *p = (struct result_post){arg, res};
        if (sb_loop_post(((struct app *)arg)->loop, sinch_done, p) == SB_OK) {
            return;
        }
        free(p);
    }
    /* Lost only in memory: the command is in the store and is sent again after a restart. */
    sb_log(SB_LOG_ERROR, "bridge", "out of memory passing a Sinch answer to the loop");
    sb_sinch_result_free(res);
}

/* ---- the outbox's two outbound sides ---- */

/* During shutdown the posts still queued run after the adapters are gone (run()): then the
 * outbound sides refuse, and what they refused stays in the store for the next start. */
static enum sb_err io_send(void *ctx, uint64_t tag, char *body)
{
    struct app *app = ctx;
    if (!app->sinch) {
        free(body);
        return SB_E_STOPPED;
    }
    return sb_sinch_submit(app->sinch, tag, "POST", app->send_path, body);
}

static enum sb_err io_publish(void *ctx, const char *topic, const char *payload, size_t len,
                              const void *correlation, size_t correlation_len, uint64_t tag)
{
    struct app *app = ctx;
    if (!app->mqtt) {
        return SB_E_STOPPED;
    }
    return sb_mqtt_publish(app->mqtt, topic, payload, len, false, correlation, correlation_len,
                           tag);
}

static enum sb_err inbound_publish(void *ctx, const char *topic, const char *payload, size_t len,
                                   uint64_t tag)
{
    struct app *app = ctx;
    if (!app->mqtt) {
        return SB_E_STOPPED;
    }
    return sb_mqtt_publish(app->mqtt, topic, payload, len, false, NULL, 0, tag);
}

/* ---- the HTTP listener's handlers ---- */

static void http_webhook(void *arg, const struct sb_webhook_request *rq, struct sb_http_answer *ans)
{
    struct app *app = arg;
    sb_inbound_webhook(app->inbound, rq, ans);
}

/* ---- the loop's own work ---- */

/* The end of a loop turn. The webhooks first: their requests wait for this commit. */
static void flush_store(void *arg)
{
    struct app *app = arg;
    sb_inbound_flush(app->inbound);
    if (sb_store_staged(app->store) > 0 && sb_store_flush(app->store) != SB_OK) {
        /* The ops stay staged and the next turn tries again; outcomes already published are
         * at worst published again after a restart (at-least-once). */
        sb_log(SB_LOG_WARN, "bridge", "store flush failed; retrying next turn");
    }
}

static void prune(void *arg)
{
    struct app *app = arg;
    int64_t now = sb_wall_ms();
    if (sb_store_prune(app->store, now - HISTORY_MS, now) != SB_OK) {
        sb_log(SB_LOG_WARN, "bridge", "pruning the history failed");
    }
    sb_timer_arm(app->prune_timer, PRUNE_EVERY_MS);
}

static void finish_stop(void *arg)
{
    struct app *app = arg;
    if (app->stopped) {
        return;
    }
    app->stopped = true;
    sb_timer_cancel(app->stop_timer);
    sb_mqtt_stop(app->mqtt, 2000);
    sb_loop_stop(app->loop);
}

static void stop_timeout(void *arg)
{
    sb_log(SB_LOG_WARN, "bridge", "requests still in flight after %d s; they resume at start",
           STOP_TIMEOUT_MS / 1000);
    finish_stop(arg);
}

static void begin_stop(void *arg)
{
    struct app *app = arg;
    if (app->stopped || sb_timer_armed(app->stop_timer)) {
        return;
    }
    sb_log(SB_LOG_NOTICE, "bridge", "stopping: finishing the requests in flight");
    sb_timer_arm(app->stop_timer, STOP_TIMEOUT_MS);
    sb_outbox_drain(app->outbox, finish_stop, app);
}

static void reload(void *arg)
{
    char why[512];
    json_t *done = sb_app_reload(arg, why, sizeof(why));

    json_decref(done); /* sb_app_reload() logged what happened */
}

/* Signals are blocked in every thread and taken here with sigwait(), so no handler ever runs
 * in the middle of paho's, curl's or the loop's code. SIGUSR1 ends the thread at exit. */
static void *signal_main(void *arg)
{
    struct app *app = arg;
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        if (sigwait(&set, &sig) != 0 || sig == SIGUSR1) {
            return NULL;
        }
        if (sig == SIGHUP) {
            if (sb_loop_post(app->loop, reload, app) != SB_OK) {
                sb_log(SB_LOG_ERROR, "bridge", "cannot reload: out of memory");
            }
        } else {
            atomic_store(&app->stopping, true);
            if (sb_loop_post(app->loop, begin_stop, app) != SB_OK) {
                sb_loop_stop(app->loop);
            }
        }
    }
}

/* ---- start-up ---- */

static int check_config(const struct sb_config *cfg)
{
    char why[512];

    if (sb_mqtt_check(cfg, 5000, why, sizeof(why)) != SB_OK) {
        fprintf(stderr, "sinch-bridge: MQTT: %s\n", why);
        return 1;
    }
    printf("MQTT: connected to %s\n", cfg->mqtt_url);
    if (sb_sinch_check(cfg, why, sizeof(why)) != SB_OK) {
        fprintf(stderr, "sinch-bridge: Sinch: %s\n", why);
        return 1;
    }
    printf("Sinch: app %s of project %s readable in region %s (%s auth)\n", cfg->app_id,
           cfg->project_id, cfg->region, cfg->auth == SB_AUTH_OAUTH ? "OAuth" : "basic");
    printf("configuration OK\n");
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sinch-bridge [--config FILE] [--check-config] [--help] [--version]\n\n"
               "Bridges MQTT send commands to the Sinch Conversation API.\n"
               "Configuration comes from the environment and the optional dotenv FILE (the\n"
               "environment wins):\n\n");
    sb_config_print_help(f);
}

static int run(struct app *app)
{
    const struct sb_config *cfg = app->cfg;
    char why[512];
    char *info = NULL;
    int rc = 1;
    sigset_t set;
    struct sb_outbox_io io = {.send = io_send, .publish = io_publish, .ctx = app};
    struct sb_mqtt_handlers handlers = {
        .message = on_mqtt_message,
        .control = on_mqtt_control,
        .connection = on_mqtt_connection,
        .published = on_mqtt_published,
    };
    struct sb_webhook_handlers http = {
        .webhook = http_webhook,
        .ready = sb_app_http_ready,
        .metrics = sb_app_http_metrics,
    };

    /* Block the signals before any thread starts, so every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must be what a full disk is: an error the store reports (webhooks get
     * 503, commands wait at the broker), not a signal that kills the bridge. */
    signal(SIGXFSZ, SIG_IGN);

    snprintf(app->send_path, sizeof(app->send_path), "/v1/projects/%s/messages:send",
             cfg->project_id);
    if (cfg->register_webhook) {
        /* Before anything runs. A failure is logged, and the bridge runs on: sending does not
         * need the webhook, and one registered by an earlier start still delivers. */
        char target[1024];
        snprintf(target, sizeof(target), "%s%s", cfg->public_url, cfg->webhook_path);
        if (sb_sinch_register_webhook(cfg, target, why, sizeof(why)) != SB_OK) {
            sb_log(SB_LOG_ERROR, "bridge", "BRIDGE_REGISTER_WEBHOOK: %s", why);
        }
    }
    if (sb_store_open(cfg->data_dir, &app->store, why, sizeof(why)) != SB_OK) {
        sb_log(SB_LOG_ERROR, "bridge", "store: %s", why);
        return 1;
    }
    if (sb_loop_new(&app->loop) != SB_OK ||
        sb_timer_new(app->loop, stop_timeout, app, &app->stop_timer) != SB_OK ||
        sb_timer_new(app->loop, prune, app, &app->prune_timer) != SB_OK) {
        sb_log(SB_LOG_ERROR, "bridge", "cannot create the loop");
        goto out;
    }
    sb_loop_set_turn_end(app->loop, flush_store, app);
    if (sb_sinch_new(cfg, on_sinch_result, app, &app->sinch) != SB_OK ||
        sb_outbox_new(cfg, app->loop, app->store, &io, &app->outbox) != SB_OK ||
        sb_inbound_new(cfg, app->loop, app->store, inbound_publish, app, &app->inbound) != SB_OK ||
        sb_app_ops_start(app) != SB_OK) {
        sb_log(SB_LOG_ERROR, "bridge", "cannot start the Sinch client");
        goto out;
    }
    info = sb_app_info(cfg, app->started_ms);
    if (!info || sb_mqtt_new(cfg, app->loop, &handlers, app, info, &app->mqtt) != SB_OK) {
        sb_log(SB_LOG_ERROR, "bridge", "cannot create the MQTT client");
        goto out;
    }
    if (sb_webhook_new(cfg, app->loop, &http, app, &app->webhook) != SB_OK) {
        goto out; /* logged: cannot listen */
    }
    if (!cfg->webhook_secret && cfg->webhook_insecure) {
        sb_log(SB_LOG_WARN, "bridge",
               "BRIDGE_WEBHOOK_INSECURE=1: unsigned webhooks are accepted from anyone who can "
               "reach %s:%d",
               cfg->listen_host, cfg->listen_port);
    }
    if (pthread_create(&app->signal_thread, NULL, signal_main, app) != 0) {
        sb_log(SB_LOG_ERROR, "bridge", "cannot start the signal thread");
        goto out;
    }
    sb_log(SB_LOG_NOTICE, "bridge",
           "sinch-bridge %s: project %s, app %s, region %s, Sinch at %s, topics under %s/",
           SB_VERSION, cfg->project_id, cfg->app_id, cfg->region, cfg->api_url, cfg->topic_prefix);
    if (sb_mqtt_start(app->mqtt) != SB_OK) {
        goto out_signals;
    }
    sb_outbox_kick(app->outbox); /* what an earlier run left unfinished */
    sb_inbound_start(app->inbound);
    sb_timer_arm(app->prune_timer, 60 * 1000LL);
    sb_loop_run(app->loop);
    rc = 0;
out_signals:
    pthread_kill(app->signal_thread, SIGUSR1);
    pthread_join(app->signal_thread, NULL);
out:
    /* Stop every thread that posts, then run what they posted, then free in reverse. */
    sb_sinch_free(app->sinch);
    app->sinch = NULL;
    sb_mqtt_free(app->mqtt);
    app->mqtt = NULL;
    sb_webhook_free(app->webhook);
    app->webhook = NULL;
    if (app->loop) {
        sb_loop_run_pending(app->loop);
    }
    sb_outbox_free(app->outbox);
    sb_inbound_free(app->inbound);
    sb_app_ops_free(app);
    sb_timer_free(app->stop_timer);
    sb_timer_free(app->prune_timer);
    sb_store_close(app->store);
    sb_loop_free(app->loop);
    free(info);
    if (rc == 0) {
        sb_log(SB_LOG_NOTICE, "bridge", "stopped");
    }
    return rc;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    bool check = false;
    char why[512];
    struct app app = {0};
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("sinch-bridge %s\n", SB_VERSION);
            return 0;
        } else {
            fprintf(stderr, "sinch-bridge: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (sb_config_load(file, environ, &app.cfg, why, sizeof(why)) != SB_OK) {
        fprintf(stderr, "sinch-bridge: %s\n", why);
        return 1;
    }
    sb_log_setup(app.cfg->log_level, app.cfg->log_format);
    app.config_file = file;
    app.started_ms = sb_wall_ms();
    atomic_init(&app.kick_pending, false);
    atomic_init(&app.stopping, false);
    rc = check ? check_config(app.cfg) : run(&app);
    sb_config_free(app.cfg);
    return rc;
}
