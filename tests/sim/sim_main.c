/* sinch-sim's main: reads the command line, sets up the modules, the delivery thread and one lws
 * context listening on --host:--port only, prints the one "listening" line tests wait for, and
 * serves until SIGTERM or SIGINT, then frees everything (callbacks still pending are dropped)
 * and exits 0. See tests/sim/README.md. */
#include "sim.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libwebsockets.h>

#define DEFAULT_CHANNELS   "WHATSAPP,SMS,RCS,MESSENGER,VIBERBM,MMS,INSTAGRAM,TELEGRAM"
#define DEFAULT_RECORD_MAX 200000
#define DEFAULT_REPORT_MS  100
#define DEFAULT_RETRY_MS   1000
#define DEFAULT_ATTEMPTS   8
#define TICK_US            (100 * LWS_US_PER_MS) /* how soon a signal is noticed */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* lws_service() sleeps until the next event or timer; this timer bounds the sleep, so a signal
 * that lands just before poll() still stops us within a tick. */
struct ticker {
    lws_sorted_usec_list_t sul;
    struct lws_context *ctx;
};

static void tick(lws_sorted_usec_list_t *sul)
{
    struct ticker *t = lws_container_of(sul, struct ticker, sul);
    lws_sul_schedule(t->ctx, 0, &t->sul, tick, TICK_US);
}

static void usage(FILE *f)
{
    fputs("usage: sinch-sim [--host 127.0.0.1] [--port 8090] [--project-id sim-project]\n"
          "                 [--app-id sim-app] [--key-id sim-key] [--key-secret sim-secret]\n"
          "                 [--token-ttl 3599] [--channels " DEFAULT_CHANNELS "]\n"
          "                 [--record-max 200000] [--verbose]\n"
          "                 [--webhook-url URL] [--webhook-secret S] [--report-delay-ms 100]\n"
          "                 [--webhook-retry-ms 1000] [--webhook-max-attempts 8] [--no-reports]\n"
          "A stand-in for the Sinch Conversation API on loopback; see tests/sim/README.md.\n",
          f);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_channels(struct sim_config *cfg, const char *list)
{
    char *save = NULL;
    free(cfg->channels_buf);
    cfg->channels_buf = strdup(list);
    cfg->n_channels = 0;
    if (!cfg->channels_buf) {
        return false;
    }
    for (char *name = strtok_r(cfg->channels_buf, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        if (!sim_validate_channel_known(name) || cfg->n_channels == SIM_MAX_CHANNELS) {
            fprintf(stderr, "sinch-sim: --channels: \"%s\" is not a Sinch channel\n", name);
            return false;
        }
        cfg->channels[cfg->n_channels++] = name;
    }
    return cfg->n_channels > 0;
}

/* Fills cfg from argv ("--name value" or "--name=value"). Returns 0 to run, 1 on a usage error,
 * 2 for --help. */
static int parse_args(int argc, char **argv, struct sim_config *cfg)
{
    const char *channels = DEFAULT_CHANNELS;
    *cfg = (struct sim_config){
        .host = "127.0.0.1",
        .port = 8090,
        .project_id = "sim-project",
        .app_id = "sim-app",
        .key_id = "sim-key",
        .key_secret = "sim-secret",
        .token_ttl = 3599,
        .record_max = DEFAULT_RECORD_MAX,
        .report_delay_ms = DEFAULT_REPORT_MS,
        .webhook_retry_ms = DEFAULT_RETRY_MS,
        .webhook_max_attempts = DEFAULT_ATTEMPTS,
    };
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i], *value = strchr(arg, '=');
        long n;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            return 2;
        }
        if (strcmp(arg, "--verbose") == 0) {
            cfg->verbose = true;
            continue;
        }
        if (strcmp(arg, "--no-reports") == 0) {
            cfg->no_reports = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "sinch-sim: unexpected argument \"%s\"\n", arg);
            return 1;
        }
        if (value) {
            *value++ = '\0';
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "sinch-sim: %s needs a value\n", arg);
            return 1;
        }
        if (strcmp(arg, "--host") == 0) {
            cfg->host = value;
        } else if (strcmp(arg, "--port") == 0 && parse_long(value, 0, 65535, &n)) {
            cfg->port = (int)n;
        } else if (strcmp(arg, "--project-id") == 0 && value[0]) {
            cfg->project_id = value;
        } else if (strcmp(arg, "--app-id") == 0 && value[0]) {
            cfg->app_id = value;
        } else if (strcmp(arg, "--key-id") == 0 && value[0] && !strchr(value, ':')) {
            cfg->key_id = value;
        } else if (strcmp(arg, "--key-secret") == 0 && value[0]) {
            cfg->key_secret = value;
        } else if (strcmp(arg, "--token-ttl") == 0 && parse_long(value, 1, INT_MAX, &n)) {
            cfg->token_ttl = n;
        } else if (strcmp(arg, "--record-max") == 0 && parse_long(value, 1, LONG_MAX, &n)) {
            cfg->record_max = (size_t)n;
        } else if (strcmp(arg, "--channels") == 0) {
            channels = value;
        } else if (strcmp(arg, "--webhook-url") == 0) {
            if (strlen(value) > SIM_WEBHOOK_URL_MAX || !sim_url_is_loopback(value)) {
                fprintf(stderr, "sinch-sim: --webhook-url must be an http(s) URL on loopback "
                                "(127.0.0.0/8, localhost or [::1]): the simulator calls nothing "
                                "else\n");
                return 1;
            }
            cfg->webhook_url = value;
        } else if (strcmp(arg, "--webhook-secret") == 0) {
            cfg->webhook_secret = value;
        } else if (strcmp(arg, "--report-delay-ms") == 0 && parse_long(value, 0, 600000, &n)) {
            cfg->report_delay_ms = n;
        } else if (strcmp(arg, "--webhook-retry-ms") == 0 && parse_long(value, 1, 3600000, &n)) {
            cfg->webhook_retry_ms = n;
        } else if (strcmp(arg, "--webhook-max-attempts") == 0 && parse_long(value, 1, 100, &n)) {
            cfg->webhook_max_attempts = n;
        } else {
            fprintf(stderr, "sinch-sim: unknown option or bad value: %s %s\n", arg, value);
            return 1;
        }
    }
    return parse_channels(cfg, channels) ? 0 : 1;
}

static bool sim_init(struct sim *s)
{
    char plain[512];
    int n = snprintf(plain, sizeof(plain), "%s:%s", s->cfg.key_id, s->cfg.key_secret);
    size_t b64_len = (size_t)n / 3 * 4 + 8;

    s->app = (struct sim_app){s->cfg.app_id, s->cfg.channels, s->cfg.n_channels};
    sim_ids_init(&s->ids);
    s->basic_b64 = malloc(b64_len);
    s->tokens = sim_tokens_new();
    s->faults = sim_faults_new();
    s->records = sim_records_new(s->cfg.record_max);
    s->webhooks = sim_webhooks_new(s->cfg.webhook_url, s->cfg.webhook_secret);
    s->cblog = sim_cblog_new(s->cfg.record_max);
    if (n < 0 || (size_t)n >= sizeof(plain) || !s->basic_b64 || !s->tokens || !s->faults ||
        !s->records || !s->webhooks || !s->cblog ||
        lws_b64_encode_string(plain, n, s->basic_b64, (int)b64_len) < 0) {
        return false;
    }
    struct sim_deliver_config dc = {
        .app_id = s->cfg.app_id,
        .project_id = s->cfg.project_id,
        .report_delay_ms = s->cfg.report_delay_ms,
        .retry_ms = s->cfg.webhook_retry_ms,
        .max_attempts = (unsigned)s->cfg.webhook_max_attempts,
        .verbose = s->cfg.verbose,
    };
    s->deliver = sim_deliver_new(&dc, s->webhooks, s->cblog);
    if (!s->deliver) {
        return false;
    }
    for (size_t len = strlen(s->basic_b64); len > 0 && s->basic_b64[len - 1] == '=';) {
        s->basic_b64[--len] = '\0';
    }
    return true;
}

/* The delivery thread goes first: it reads the registry and writes the attempt log. */
static void sim_fini(struct sim *s)
{
    sim_deliver_free(s->deliver);
    sim_cblog_free(s->cblog);
    sim_webhooks_free(s->webhooks);
    free(s->reports.reason);
    sim_records_free(s->records);
    sim_faults_free(s->faults);
    sim_tokens_free(s->tokens);
    free(s->basic_b64);
    free(s->cfg.channels_buf);
}

static struct lws_context *listen_on(struct sim *s, int *port)
{
    static const struct lws_protocols *protocols[] = {&sim_http_protocol, NULL};
    struct lws_context_creation_info info;
    bool ipv6 = strchr(s->cfg.host, ':') != NULL;

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | (ipv6 ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6);
    info.user = s;
    info.fd_limit_per_thread = 4096;
    info.max_http_header_pool = 1024; /* delayed answers hold theirs; never let them queue others */
    info.pt_serv_buf_size = 64 * 1024;
    info.timeout_secs = 30;
    info.keepalive_timeout = 120; /* idle keep-alive connections live this long */
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        return NULL;
    }
    info.vhost_name = "sinch-sim";
    info.port = s->cfg.port;
    info.iface = strcmp(s->cfg.host, "localhost") == 0 ? "127.0.0.1" : s->cfg.host;
    info.pprotocols = protocols;
    struct lws_vhost *vh = lws_create_vhost(ctx, &info);
    if (!vh || lws_get_vhost_listen_port(vh) <= 0) {
        lws_context_destroy(ctx);
        return NULL;
    }
    *port = lws_get_vhost_listen_port(vh);
    return ctx;
}

int main(int argc, char **argv)
{
    struct sim s;
    struct ticker ticker = {0};
    struct sigaction sa;
    int port = 0, rc;

    memset(&s, 0, sizeof(s));
    rc = parse_args(argc, argv, &s.cfg);
    if (rc) {
        usage(rc == 2 ? stdout : stderr);
        free(s.cfg.channels_buf);
        return rc == 2 ? 0 : 2;
    }
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    /* Before any thread: libcurl's global setup is not thread-safe. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "sinch-sim: libcurl failed to initialise\n");
        free(s.cfg.channels_buf);
        return 1;
    }
    if (!sim_init(&s)) {
        fprintf(stderr, "sinch-sim: out of memory, or --key-id:--key-secret over 510 bytes\n");
        sim_fini(&s);
        curl_global_cleanup();
        return 1;
    }
    ticker.ctx = listen_on(&s, &port);
    if (!ticker.ctx) {
        fprintf(stderr, "sinch-sim: cannot listen on %s port %d\n", s.cfg.host, s.cfg.port);
        sim_fini(&s);
        curl_global_cleanup();
        return 1;
    }
    lws_sul_schedule(ticker.ctx, 0, &ticker.sul, tick, TICK_US);
    printf(strchr(s.cfg.host, ':') ? "sinch-sim listening on http://[%s]:%d\n"
                                   : "sinch-sim listening on http://%s:%d\n",
           s.cfg.host, port);
    fflush(stdout);

    while (!stop_requested && lws_service(ticker.ctx, 0) >= 0) {
    }
    lws_sul_cancel(&ticker.sul);
    lws_context_destroy(ticker.ctx);
    sim_fini(&s);
    curl_global_cleanup();
    return 0;
}
